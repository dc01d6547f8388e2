/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* libFuzzer target, structure-aware: a certificate built from the fuzz
 * bytes (subject attributes and subjectAltNames with arbitrary types and
 * bytes, NULs included), properly signed by a CA in the trust store, then
 * read by mtls_identity_build and matched. Mutating DER mostly breaks the
 * encoding; this reaches the SAN and subject code with well-formed
 * certificates holding hostile values, and checks what the docs
 * promise:
 *   - a DNS, email, URI or IP SAN is matched by a rule naming its value;
 *   - a SAN with a NUL byte never matches a rule naming the part before
 *     the NUL;
 *   - a repeated SAN extension (undecodable for OpenSSL) admits nobody
 *     by SAN.
 *
 * Input: one flags byte, then records of [kind][length][bytes]. */

#include <apr_strings.h>
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "mtls_rules.h"

static X509 *ca;
static EVP_PKEY *ca_key, *leaf_key;
static X509_STORE *store;

static void init(void)
{
    X509_NAME *n = X509_NAME_new();
    ca_key = EVP_EC_gen("P-256");
    leaf_key = EVP_EC_gen("P-256");
    ca = X509_new();
    store = X509_STORE_new();
    if (n == NULL || ca_key == NULL || leaf_key == NULL || ca == NULL ||
        store == NULL)
        abort();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                               (const unsigned char *)"Gen CA", -1, -1, 0);
    X509_set_version(ca, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(ca), 1);
    X509_gmtime_adj(X509_getm_notBefore(ca), 0);
    X509_gmtime_adj(X509_getm_notAfter(ca), 3600);
    X509_set_subject_name(ca, n);
    X509_set_issuer_name(ca, n);
    X509_set_pubkey(ca, ca_key);
    {
        X509V3_CTX ctx;
        X509_EXTENSION *e;
        X509V3_set_ctx(&ctx, ca, ca, NULL, NULL, 0);
        e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
                                "critical,CA:TRUE");
        X509_add_ext(ca, e, -1);
        X509_EXTENSION_free(e);
    }
    if (!X509_sign(ca, ca_key, EVP_sha256()) || !X509_STORE_add_cert(store, ca))
        abort();
    X509_NAME_free(n);
}

#define MAX_SANS 16

typedef struct {
    int type; /* GEN_DNS, GEN_EMAIL, GEN_URI, GEN_IPADD */
    const uint8_t *v;
    size_t len;
} san_t;

/* Reads [kind][len][bytes]; 0 at the end of the input. */
static int next_record(const uint8_t **d, size_t *n, uint8_t *kind,
                       const uint8_t **v, size_t *len)
{
    if (*n < 2)
        return 0;
    *kind = (*d)[0];
    *len = (*d)[1];
    if (*len > *n - 2)
        *len = *n - 2;
    *v = *d + 2;
    *d += 2 + *len;
    *n -= 2 + *len;
    return 1;
}

/* kind: bit 2 joins the previous RDN, bits 3-4 the attribute, bits 5-7
 * the string type. */
static void add_name_entry(X509_NAME *name, uint8_t kind, const uint8_t *v,
                           size_t len)
{
    static const int nids[] = {NID_commonName, NID_organizationName,
                               NID_pkcs9_emailAddress, NID_countryName};
    static const int types[] = {V_ASN1_UTF8STRING,      V_ASN1_PRINTABLESTRING,
                                V_ASN1_IA5STRING,       V_ASN1_BMPSTRING,
                                V_ASN1_UNIVERSALSTRING, V_ASN1_T61STRING,
                                V_ASN1_NUMERICSTRING,   V_ASN1_VISIBLESTRING};
    /* A raw type (not MBSTRING_*) stores the bytes as they are, valid for
     * the type or not, as a hostile CA could. */
    X509_NAME_add_entry_by_NID(name, nids[(kind >> 3) & 3],
                               types[(kind >> 5) & 7], v, (int)len, -1,
                               (kind & 4) ? -1 : 0);
}

static GENERAL_NAME *make_gen(int type, const uint8_t *v, size_t len)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_STRING *s =
        type == GEN_IPADD ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
    if (g == NULL || s == NULL || !ASN1_STRING_set(s, v, (int)len))
        abort();
    GENERAL_NAME_set0_value(g, type, s);
    return g;
}

/* The rule text naming a SAN's value, or NULL if a rule cannot name it
 * (the parsers refuse spaces, controls and non-ASCII). Stops at a NUL. */
static const char *rule_for(apr_pool_t *p, const san_t *s)
{
    static const char *const prefix[] = {
        [GEN_DNS] = "DNS:", [GEN_EMAIL] = "email:", [GEN_URI] = "URI:"};
    size_t i;
    if (s->type == GEN_IPADD) {
        char buf[INET6_ADDRSTRLEN];
        if (s->len != 4 && s->len != 16)
            return NULL;
        if (!inet_ntop(s->len == 4 ? AF_INET : AF_INET6, s->v, buf,
                       sizeof(buf)))
            abort();
        return apr_pstrcat(p, "IP:", buf, NULL);
    }
    for (i = 0; i < s->len && s->v[i]; i++) {
        if (s->v[i] <= 0x20 || s->v[i] >= 0x7f)
            return NULL;
    }
    if (i == 0)
        return NULL;
    return apr_pstrcat(p, prefix[s->type],
                       apr_pstrmemdup(p, (const char *)s->v, i), NULL);
}

/* Written apart from mtls_rules.c, as the oracle: may a URI prefix rule
 * match this URI SAN? Not with a '.' or '..' path segment, '%', '\\' or
 * ';' in it (docs/reference.md, "How values match"). */
static int prefix_may_match(const uint8_t *v, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        if (v[i] == '%' || v[i] == '\\' || v[i] == ';')
            return 0;
        if (v[i] == '/' && i + 1 < len && v[i + 1] == '.' &&
            (i + 2 == len || v[i + 2] == '/' ||
             (v[i + 2] == '.' && (i + 3 == len || v[i + 3] == '/'))))
            return 0;
    }
    return 1;
}

static int admits(apr_pool_t *p, const mtls_identity_t *id, const char *san)
{
    mtls_ruleset_t *rs = mtls_ruleset_make(p);
    mtls_miss_e miss;
    if (mtls_ruleset_add_san(rs, p, san, "fuzz:1") != NULL)
        return -1; /* the parser refuses it: nothing to check */
    return mtls_ruleset_match(rs, id, NULL, NULL, &miss) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int san_types[] = {GEN_DNS, GEN_EMAIL, GEN_URI, GEN_IPADD};
    san_t sans[MAX_SANS];
    int n_sans = 0, i, repeated, signed_ok;
    uint8_t flags, kind;
    const uint8_t *v;
    size_t len;
    apr_pool_t *p;
    X509 *x;
    X509_NAME *subject;
    GENERAL_NAMES *gens;
    const mtls_identity_t *id;

    if (store == NULL)
        fuzz_once(init);
    if (size < 1 || size > 4096)
        return -1;
    flags = data[0];
    data++;
    size--;
    repeated = (flags & 2) != 0;

    x = X509_new();
    subject = X509_NAME_new();
    gens = sk_GENERAL_NAME_new_null();
    if (x == NULL || subject == NULL || gens == NULL)
        abort();
    while (next_record(&data, &size, &kind, &v, &len)) {
        if ((kind & 3) == 0) {
            add_name_entry(subject, kind, v, len);
        }
        else if (n_sans < MAX_SANS) {
            san_t *s = &sans[n_sans++];
            s->type = san_types[(kind >> 2) & 3];
            s->v = v;
            s->len = len;
            sk_GENERAL_NAME_push(gens, make_gen(s->type, v, len));
        }
    }
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 2);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_subject_name(x, subject);
    X509_set_issuer_name(x, X509_get_subject_name(ca));
    X509_set_pubkey(x, leaf_key);
    if (n_sans > 0 || (flags & 1)) {
        X509_add1_ext_i2d(x, NID_subject_alt_name, gens, flags & 4 ? 1 : 0,
                          X509V3_ADD_APPEND);
        if (repeated)
            X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
                              X509V3_ADD_APPEND);
    }
    /* Fails if the subject cannot be encoded (an odd-length BMPString,
     * say); the certificate is still read, unsigned. */
    signed_ok = X509_sign(x, ca_key, EVP_sha256()) > 0;

    p = fuzz_begin();
    id = mtls_identity_build(p, x, store, 1);
    fuzz_check_name_key(p, X509_get_subject_name(x));
    /* Signed by the trusted CA: it is found and verified, unless the
     * certificate repeats an extension, which OpenSSL marks invalid. */
    if (signed_ok && !repeated && id->n_issuers != 1)
        abort();
    for (i = 0; i < n_sans; i++) {
        const san_t *s = &sans[i];
        const char *rule = rule_for(p, s);
        int has_nul = s->type != GEN_IPADD && memchr(s->v, 0, s->len);
        int others = 0, j, r, unsafe_prefix;
        if (rule == NULL)
            continue;
        for (j = 0; j < n_sans; j++)
            others += j != i && sans[j].type == s->type;
        r = admits(p, id, rule);
        if (r < 0)
            continue;
        /* A value ending in a slash and a star is a prefix rule, which a URI
         * holding a dot segment, '%', '\\' or ';' never matches. */
        unsafe_prefix = s->type == GEN_URI && strlen(rule) >= 2 &&
                        strcmp(rule + strlen(rule) - 2, "/*") == 0 &&
                        !prefix_may_match(s->v, s->len);
        if (unsafe_prefix && others == 0 && r) {
            fprintf(stderr, "the prefix rule '%s' matched a URI it must not\n",
                    rule);
            abort();
        }
        if (unsafe_prefix)
            continue;
        if (repeated && r) {
            fprintf(stderr, "a repeated SAN extension admitted '%s'\n", rule);
            abort();
        }
        if (!repeated && !has_nul && !r) {
            fprintf(stderr, "the SAN '%s' is not matched by its rule\n", rule);
            abort();
        }
        if (has_nul && others == 0 && r) {
            fprintf(stderr, "a SAN with a NUL matched '%s'\n", rule);
            abort();
        }
    }
    fuzz_end(p);
    sk_GENERAL_NAME_pop_free(gens, GENERAL_NAME_free);
    X509_NAME_free(subject);
    X509_free(x);
    return 0;
}
