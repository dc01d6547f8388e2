/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls-authz-rule: subject DNs in the RFC 4514 form that the module's
 * parser (mtls_dn.c) reads back to the same X.509 name. */

#include <apr_strings.h>
#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <stdio.h>
#include <string.h>

#include "mtls_dn.h"
#include "tool.h"

/* The string types OpenSSL compares by their UTF-8 text (X509_NAME_cmp's
 * canonical form); anything else is compared as its encoding and so must
 * be written as #<BER hex>. */
static int is_text_type(int type)
{
    switch (type) {
    case V_ASN1_UTF8STRING:
    case V_ASN1_BMPSTRING:
    case V_ASN1_UNIVERSALSTRING:
    case V_ASN1_PRINTABLESTRING:
    case V_ASN1_T61STRING:
    case V_ASN1_IA5STRING:
    case V_ASN1_VISIBLESTRING:
        return 1;
    default:
        return 0;
    }
}

/* An RFC 4514 value. Besides RFC 4514's own escapes: '"' and '\' are
 * written as \22 and \5C (so that no escape can reach httpd's word
 * splitter as \"), '$' as \24 (httpd expands ${VAR} in every line),
 * leading and trailing spaces as \20 (so no line ends in '\ ' that an
 * editor could trim into a line continuation), controls as \XX. */
static const char *escape_value(apr_pool_t *p, const unsigned char *s,
                                size_t len)
{
    char *o = apr_palloc(p, len * 3 + 1), *q = o;
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (c == ',' || c == '+' || c == ';' || c == '<' || c == '>' ||
            (c == '#' && i == 0)) {
            *q++ = '\\';
            *q++ = (char)c;
        }
        else if (c < 0x20 || c == 0x7f || c == '"' || c == '\\' || c == '$' ||
                 (c == ' ' && (i == 0 || i == len - 1))) {
            q += sprintf(q, "\\%02X", c);
        }
        else {
            *q++ = (char)c;
        }
    }
    *q = '\0';
    return o;
}

static const char *hex_value(apr_pool_t *p, const X509_NAME_ENTRY *e)
{
    ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
    ASN1_TYPE *at = ASN1_TYPE_new();
    unsigned char *der = NULL;
    const char *res = NULL;
    int n;

    if (at == NULL)
        return NULL;
    ASN1_TYPE_set1(at, ASN1_STRING_type(v), v);
    n = i2d_ASN1_TYPE(at, &der);
    if (n > 0) {
        char *o = apr_palloc(p, 2 * (apr_size_t)n + 2), *q = o;
        int i;
        *q++ = '#';
        for (i = 0; i < n; i++)
            q += sprintf(q, "%02x", der[i]);
        res = o;
    }
    OPENSSL_free(der);
    ASN1_TYPE_free(at);
    return res;
}

/* Does text parse (as the module parses it) into exactly this one
 * attribute? */
static int attr_round_trips(apr_pool_t *p, const char *text,
                            const X509_NAME_ENTRY *e)
{
    X509_NAME *want = X509_NAME_new();
    mtls_key_t want_key, got;
    int ok = 0;
    if (want && X509_NAME_add_entry(want, e, -1, 0) &&
        mtls_name_key(p, want, &want_key) &&
        mtls_dn_parse(p, text, &got) == NULL)
        ok = want_key.len == got.len &&
             memcmp(want_key.data, got.data, got.len) == 0;
    X509_NAME_free(want);
    return ok;
}

/* TYPE=VALUE for one attribute: OpenSSL's short name (as its RFC 2253
 * output shows) or else the dotted OID; the text value, or else #hex. */
static const char *encode_attr(apr_pool_t *p, const X509_NAME_ENTRY *e,
                               int *has_nul)
{
    ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(e);
    ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
    const char *types[2], *values[2], *hex = hex_value(p, e);
    char oid[128];
    int nid = OBJ_obj2nid(obj), i, j;

    types[0] = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
    types[1] =
        OBJ_obj2txt(oid, sizeof(oid), obj, 1) > 0 ? apr_pstrdup(p, oid) : NULL;
    values[0] = NULL;
    {
        /* Other types may still come back as themselves from text (a
         * NumericString for INN, say); the round trip decides. */
        unsigned char *u = NULL;
        int n = ASN1_STRING_to_UTF8(&u, v);
        if (n >= 0) {
            if (memchr(u, '\0', (size_t)n) && is_text_type(ASN1_STRING_type(v)))
                *has_nul = 1;
            values[0] = escape_value(p, u, (size_t)n);
            OPENSSL_free(u);
        }
    }
    values[1] = hex;
    for (j = 0; j < 2; j++) {
        for (i = 0; i < 2; i++) {
            const char *text;
            if (types[i] == NULL || values[j] == NULL)
                continue;
            text = apr_pstrcat(p, types[i], "=", values[j], NULL);
            if (attr_round_trips(p, text, e))
                return text;
        }
    }
    return NULL;
}

/* The RFC 4514 form of name (last RDN first, '+' within an RDN), or NULL
 * if an attribute cannot be written so that the module parses it back.
 * *has_nul: a text value has a NUL byte. */
const char *tool_encode_dn(apr_pool_t *p, const X509_NAME *name, int *has_nul)
{
    int n = X509_NAME_entry_count(name), i, start;
    const char *dn = "";

    *has_nul = 0;
    /* Walk RDNs from the last; within one, keep the certificate's order. */
    for (i = n - 1; i >= 0; i = start - 1) {
        int set = X509_NAME_ENTRY_set(X509_NAME_get_entry(name, i)), k;
        const char *rdn = "";
        start = i;
        while (start > 0 &&
               X509_NAME_ENTRY_set(X509_NAME_get_entry(name, start - 1)) == set)
            start--;
        for (k = start; k <= i; k++) {
            const char *a =
                encode_attr(p, X509_NAME_get_entry(name, k), has_nul);
            if (a == NULL)
                return NULL;
            rdn = k == start ? a : apr_pstrcat(p, rdn, "+", a, NULL);
        }
        dn = *dn ? apr_pstrcat(p, dn, ",", rdn, NULL) : rdn;
    }
    return dn;
}

/* For comments: the DN, or OpenSSL's own rendering when it has none. */
const char *tool_show_dn(apr_pool_t *p, const X509_NAME *name)
{
    int has_nul;
    const char *dn = tool_encode_dn(p, name, &has_nul);
    if (X509_NAME_entry_count(name) == 0)
        return "(empty)";
    if (dn == NULL) {
        char *s = X509_NAME_oneline(name, NULL, 0);
        dn = tool_show(p, (const unsigned char *)(s ? s : "?"),
                       strlen(s ? s : "?"));
        OPENSSL_free(s);
    }
    /* encode_dn escapes controls and never ends in '\' or a space. */
    return dn;
}
