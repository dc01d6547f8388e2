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

#include "certbuild.h"
#include "fuzz_common.h"
#include "under_test.h"

static X509 *ca;
static EVP_PKEY *ca_key, *leaf_key;
static X509_STORE *store;

static void init(void)
{
    static const char *const dn[] = {"CN", "Gen CA", NULL};
    X509_NAME *n = cb_name(dn);
    ca_key = cb_key();
    leaf_key = cb_key();
    ca = cb_ca(n, ca_key, 1);
    store = X509_STORE_new();
    if (store == NULL || !X509_STORE_add_cert(store, ca))
        abort();
    X509_NAME_free(n);
}

#define MAX_SANS 16

typedef struct {
    int type; /* GEN_DNS, GEN_EMAIL, GEN_URI, GEN_IPADD */
    const uint8_t *v;
    size_t len;
} san_t;

/* What the input asks for. flags: bit 0 a SAN extension even without a
 * SAN, bit 1 the extension twice, bit 2 critical. */
typedef struct {
    uint8_t flags;
    X509_NAME *subject;
    GENERAL_NAMES *gens;
    san_t sans[MAX_SANS];
    int n_sans;
} spec_t;

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

/* Reads the records of the input into spec: kind's low two bits 0 for
 * a subject attribute, else a SAN of the type in bits 2-3. */
static void read_spec(spec_t *spec, const uint8_t *data, size_t size)
{
    static const int san_types[] = {GEN_DNS, GEN_EMAIL, GEN_URI, GEN_IPADD};
    uint8_t kind;
    const uint8_t *v;
    size_t len;

    spec->flags = data[0];
    spec->subject = X509_NAME_new();
    spec->gens = sk_GENERAL_NAME_new_null();
    spec->n_sans = 0;
    if (spec->subject == NULL || spec->gens == NULL)
        abort();
    data++;
    size--;
    while (next_record(&data, &size, &kind, &v, &len)) {
        if ((kind & 3) == 0) {
            add_name_entry(spec->subject, kind, v, len);
        }
        else if (spec->n_sans < MAX_SANS) {
            san_t *s = &spec->sans[spec->n_sans++];
            s->type = san_types[(kind >> 2) & 3];
            s->v = v;
            s->len = len;
            sk_GENERAL_NAME_push(spec->gens, make_gen(s->type, v, len));
        }
    }
}

/* The certificate spec asks for, signed by the CA if OpenSSL can: it
 * cannot if the subject cannot be encoded (an odd-length BMPString,
 * say), and the certificate is then read unsigned. */
static X509 *make_cert(const spec_t *spec, int *signed_ok)
{
    X509 *x = cb_start(spec->subject, ca, leaf_key, 2);
    if (spec->n_sans > 0 || (spec->flags & 1)) {
        X509_add1_ext_i2d(x, NID_subject_alt_name, spec->gens,
                          spec->flags & 4 ? 1 : 0, X509V3_ADD_APPEND);
        if (spec->flags & 2)
            X509_add1_ext_i2d(x, NID_subject_alt_name, spec->gens, 0,
                              X509V3_ADD_APPEND);
    }
    *signed_ok = cb_sign(x, ca_key);
    return x;
}

/* What the README promises about the i-th SAN of spec and its rule. */
static void check_san(apr_pool_t *p, const mtls_identity_t *id,
                      const spec_t *spec, int i)
{
    const san_t *s = &spec->sans[i];
    const char *rule = rule_for(p, s);
    int repeated = (spec->flags & 2) != 0;
    int has_nul = s->type != GEN_IPADD && memchr(s->v, 0, s->len);
    int others = 0, j, r, unsafe_prefix;
    if (rule == NULL)
        return;
    for (j = 0; j < spec->n_sans; j++)
        others += j != i && spec->sans[j].type == s->type;
    if ((r = admits(p, id, rule)) < 0)
        return;
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
        return;
    if (repeated && r) {
        fprintf(stderr, "a repeated SAN extension admitted '%s'\n", rule);
        abort();
    }
    /* A DNS value with a leading dot is a suffix rule: it matches names
     * below it, not the SAN it was written from. */
    if (s->type == GEN_DNS && s->len > 0 && s->v[0] == '.')
        return;
    if (!repeated && !has_nul && !r) {
        fprintf(stderr, "the SAN '%s' is not matched by its rule\n", rule);
        abort();
    }
    if (has_nul && others == 0 && r) {
        fprintf(stderr, "a SAN with a NUL matched '%s'\n", rule);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spec_t spec;
    int i, signed_ok;
    apr_pool_t *p;
    X509 *x;
    const mtls_identity_t *id;

    if (store == NULL)
        fuzz_once(init);
    if (size < 1 || size > 4096)
        return -1;
    read_spec(&spec, data, size);
    x = make_cert(&spec, &signed_ok);

    p = fuzz_begin();
    id = mtls_identity_build(p, x, store, 1);
    fuzz_check_name_key(p, X509_get_subject_name(x));
    /* Signed by the trusted CA: it is found and verified, unless the
     * certificate repeats an extension, which OpenSSL marks invalid. */
    if (signed_ok && !(spec.flags & 2) && id->n_issuers != 1)
        abort();
    for (i = 0; i < spec.n_sans; i++)
        check_san(p, id, &spec, i);
    fuzz_end(p);
    sk_GENERAL_NAME_pop_free(spec.gens, GENERAL_NAME_free);
    X509_NAME_free(spec.subject);
    X509_free(x);
    return 0;
}
