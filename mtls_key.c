/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Keys: values normalised so that equal keys mean equal values. See
 * mtls_key.h. */

#include <apr_strings.h>
#include <string.h>

#include "mtls_key.h"

mtls_key_t mtls_key_make(apr_pool_t *p, char tag, const void *v, apr_size_t len)
{
    mtls_key_t k;
    char *d = apr_palloc(p, len + 1);
    d[0] = tag;
    memcpy(d + 1, v, len);
    k.data = d;
    k.len = len + 1;
    return k;
}

/* ASCII only, whatever the locale, as OpenSSL's canonical form. */
static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static void ascii_lower(char *s, apr_size_t len)
{
    apr_size_t i;
    for (i = 0; i < len; i++)
        s[i] = lower(s[i]);
}

/* DNS names compare case-insensitively, ignoring one trailing dot. */
mtls_key_t mtls_key_dns(apr_pool_t *p, const char *v, apr_size_t len)
{
    mtls_key_t k;
    if (len > 1 && v[len - 1] == '.')
        len--;
    k = mtls_key_make(p, MTLS_K_DNS, v, len);
    ascii_lower((char *)k.data + 1, len);
    return k;
}

mtls_key_t mtls_key_dns_suffix(apr_pool_t *p, const char *v, apr_size_t len)
{
    mtls_key_t k = mtls_key_dns(p, v, len);
    ((char *)k.data)[0] = MTLS_K_DNS_SUFFIX;
    return k;
}

apr_size_t mtls_key_net(char buf[MTLS_NET_KEY_MAX], const unsigned char *addr,
                        apr_size_t alen, unsigned bits)
{
    apr_size_t i;
    buf[0] = alen == 4 ? MTLS_K_IP4_NET : MTLS_K_IP6_NET;
    buf[1] = (char)bits;
    for (i = 0; i < alen; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8
                        : bits > 8 * i      ? bits - 8 * i
                                            : 0;
        buf[2 + i] = (char)(addr[i] & (0xff00u >> keep));
    }
    return alen + 2;
}

/* Email: the domain after the last '@' is case-insensitive, the local
 * part is compared exactly. */
mtls_key_t mtls_key_email(apr_pool_t *p, const char *v, apr_size_t len)
{
    mtls_key_t k = mtls_key_make(p, MTLS_K_EMAIL, v, len);
    apr_size_t at = len;
    while (at > 0 && v[at - 1] != '@')
        at--;
    if (at > 0)
        ascii_lower((char *)k.data + 1 + at, len - at);
    return k;
}

/* What a subject is indexed by: a 64-bit FNV-1a digest of its canonical
 * key, so that each request hashes 9 bytes rather than the whole name.
 * Rules found under it are confirmed against the full key. */
void mtls_key_subject_digest(const mtls_key_t *subject,
                             unsigned char d[MTLS_SUBJECT_INDEX_LEN])
{
    apr_uint64_t h = APR_UINT64_C(14695981039346656037);
    apr_size_t i;
    d[0] = MTLS_K_SUBJECT;
    for (i = 0; i < subject->len; i++) {
        h ^= (unsigned char)subject->data[i];
        h *= APR_UINT64_C(1099511628211);
    }
    for (i = 1; i < MTLS_SUBJECT_INDEX_LEN; i++)
        d[i] = (unsigned char)(h >> (8 * (i - 1)));
}

mtls_key_t mtls_key_subject_index(apr_pool_t *p, const mtls_key_t *subject)
{
    unsigned char d[MTLS_SUBJECT_INDEX_LEN];
    mtls_key_t k;
    mtls_key_subject_digest(subject, d);
    k.data = apr_pmemdup(p, d, sizeof(d));
    k.len = sizeof(d);
    return k;
}

const char *mtls_fp_hex(apr_pool_t *p, const unsigned char *fp)
{
    static const char hex[] = "0123456789abcdef";
    char *s = apr_palloc(p, MTLS_FP_LEN * 2 + 1);
    int i;
    for (i = 0; i < MTLS_FP_LEN; i++) {
        s[2 * i] = hex[fp[i] >> 4];
        s[2 * i + 1] = hex[fp[i] & 15];
    }
    s[MTLS_FP_LEN * 2] = '\0';
    return s;
}

const char *mtls_fp_parse(apr_pool_t *p, const char *text,
                          unsigned char out[MTLS_FP_LEN])
{
    const char *colon = strchr(text, ':'), *s;
    int n = 0, hi = -1;

    if (colon == NULL)
        return apr_psprintf(p, "'%s': expected sha256:<64 hex digits>", text);
    if ((colon - text == 4 && strncasecmp(text, "sha1", 4) == 0) ||
        (colon - text == 3 && strncasecmp(text, "md5", 3) == 0))
        return apr_psprintf(p, "'%s': %.*s is too weak; use sha256:<hex>", text,
                            (int)(colon - text), text);
    if (colon - text != 6 || strncasecmp(text, "sha256", 6) != 0)
        return apr_psprintf(p,
                            "'%s': unsupported hash '%.*s'; use sha256:<hex>",
                            text, (int)(colon - text), text);
    for (s = colon + 1; *s; s++) {
        int v;
        if (*s == ':' && hi < 0 && n > 0 && s[1] != '\0')
            continue; /* separator between byte pairs */
        if ((v = mtls_hex_digit(*s)) < 0)
            return apr_psprintf(p, "'%s': not a hex fingerprint", text);
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (n == MTLS_FP_LEN)
            break;
        out[n++] = (unsigned char)(hi << 4 | v);
        hi = -1;
    }
    if (n != MTLS_FP_LEN || hi >= 0 || *s)
        return apr_psprintf(p,
                            "'%s': a sha256 fingerprint has 32 bytes "
                            "(64 hex digits)",
                            text);
    return NULL;
}

int mtls_hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}
