/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Unit tests of the matching code (mtls_rules.c, mtls_dn.c), without
 * httpd: certificates are built in memory with OpenSSL. */

#include <apr_general.h>
#include <apr_strings.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "mtls_identity.h"

static int passed, failed;
static apr_pool_t *pool;

static void check(int cond, const char *what)
{
    if (cond) {
        passed++;
        printf("ok %d - %s\n", passed + failed, what);
    }
    else {
        failed++;
        printf("not ok %d - %s\n", passed + failed, what);
    }
}

static EVP_PKEY *new_key(void)
{
    return EVP_EC_gen("P-256");
}

/* entries: NULL-terminated (type, value) pairs in ASN.1 order; a type
 * starting with '+' joins the previous RDN. value_len < 0: strlen. */
static X509_NAME *name_of(const char *const *e)
{
    X509_NAME *n = X509_NAME_new();
    for (; e[0]; e += 2) {
        int set = e[0][0] == '+' ? -1 : 0;
        X509_NAME_add_entry_by_txt(n, e[0] + (set ? 1 : 0), MBSTRING_UTF8,
                                   (const unsigned char *)e[1], -1, -1, set);
    }
    return n;
}

static X509 *make_cert(X509_NAME *subject, const char *san, X509 *ca,
                       EVP_PKEY *ca_key, EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509V3_CTX ctx;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(passed + failed + 1));
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_subject_name(x, subject);
    X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : subject);
    X509_set_pubkey(x, key);
    X509V3_set_ctx(&ctx, ca ? ca : x, x, NULL, NULL, 0);
    if (san) {
        X509_EXTENSION *ext =
            X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (ca == NULL) {
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(
            NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(x, ca_key, EVP_sha256());
    return x;
}

typedef struct {
    X509 *ca, *ca2, *forged;
    EVP_PKEY *ca_key, *ca2_key, *forged_key, *leaf_key;
    X509_STORE *store; /* trusts ca and ca2 */
    const char *ca_pin, *ca2_pin, *forged_pin;
} pki_t;

static const char *pin_of(X509 *x)
{
    unsigned char fp[32];
    unsigned int n;
    X509_digest(x, EVP_sha256(), fp, &n);
    return apr_pstrcat(pool, "sha256:", mtls_fp_hex(pool, fp), NULL);
}

static void pki_init(pki_t *k)
{
    static const char *const ca_dn[] = {"O", "Test", "CN", "CA A", NULL};
    static const char *const ca2_dn[] = {"O", "Test", "CN", "CA B", NULL};
    X509_NAME *n;
    k->ca_key = new_key();
    k->ca2_key = new_key();
    k->forged_key = new_key();
    k->leaf_key = new_key();
    n = name_of(ca_dn);
    k->ca = make_cert(n, NULL, NULL, k->ca_key, k->ca_key);
    k->forged = make_cert(n, NULL, NULL, k->forged_key, k->forged_key);
    X509_NAME_free(n);
    n = name_of(ca2_dn);
    k->ca2 = make_cert(n, NULL, NULL, k->ca2_key, k->ca2_key);
    X509_NAME_free(n);
    k->store = X509_STORE_new();
    X509_STORE_add_cert(k->store, k->ca);
    X509_STORE_add_cert(k->store, k->ca2);
    k->ca_pin = pin_of(k->ca);
    k->ca2_pin = pin_of(k->ca2);
    k->forged_pin = pin_of(k->forged);
}

static void pki_free(pki_t *k)
{
    X509_STORE_free(k->store);
    X509_free(k->ca);
    X509_free(k->ca2);
    X509_free(k->forged);
    EVP_PKEY_free(k->ca_key);
    EVP_PKEY_free(k->ca2_key);
    EVP_PKEY_free(k->forged_key);
    EVP_PKEY_free(k->leaf_key);
}

static const char *const alice[] = {"C",  "US",    "O", "Acme Inc.",
                                    "CN", "alice", NULL};

static const mtls_identity_t *leaf(pki_t *k, const char *const *dn,
                                   const char *san, int issuer)
{
    X509_NAME *n = name_of(dn);
    X509 *ca = issuer == 0 ? k->ca : issuer == 1 ? k->ca2 : k->forged;
    EVP_PKEY *key = issuer == 0   ? k->ca_key
                    : issuer == 1 ? k->ca2_key
                                  : k->forged_key;
    X509 *x = make_cert(n, san, ca, key, k->leaf_key);
    const mtls_identity_t *id = mtls_identity_build(pool, x, k->store, 1);
    X509_NAME_free(n);
    X509_free(x);
    return id;
}

/* Does a scope made of these directive lines admit id? Each line is
 * "Directive value". */
static int admits(const mtls_identity_t *id, const char *const *lines)
{
    mtls_ruleset_t *rs = mtls_ruleset_make(pool);
    mtls_miss_e miss;
    for (; *lines; lines++) {
        const char *l = *lines, *sp = strchr(l, ' '), *err;
        const char *v = sp ? sp + 1 : "";
        if (strncmp(l, "MTLSAllowSubject ", 17) == 0)
            err = mtls_ruleset_add_subject(rs, pool, v, "t:1");
        else if (strncmp(l, "MTLSAllowSAN ", 13) == 0)
            err = mtls_ruleset_add_san(rs, pool, v, "t:1");
        else if (strncmp(l, "MTLSAllowIssuerFingerprint ", 27) == 0)
            err = mtls_ruleset_add_issuer(rs, pool, v, "t:1", NULL);
        else
            err = mtls_ruleset_add_rule(rs, pool, v, "t:1", NULL);
        if (err) {
            printf("# config error: %s\n", err);
            return -1;
        }
    }
    return mtls_ruleset_match(rs, id, NULL, NULL, &miss) != NULL;
}

#define ADMITS(id, ...) admits(id, (const char *const[]){__VA_ARGS__, NULL})

/* err names the problem: non-NULL and containing needle. */
static int err_has(const char *err, const char *needle)
{
    return err != NULL && strstr(err, needle) != NULL;
}

static int parse_fails(const char *dn, const char *needle)
{
    mtls_key_t k;
    const char *err = mtls_dn_parse(pool, dn, &k);
    if (err == NULL)
        return 0;
    return needle == NULL || strstr(err, needle) != NULL;
}

static int keys_equal(mtls_key_t a, mtls_key_t b)
{
    return a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
}

/* The parsed DN has the key of the certificate name built from entries. */
static int dn_equal(const char *dn, const char *const *entries)
{
    X509_NAME *b = name_of(entries);
    mtls_key_t ka, kb;
    int eq = mtls_dn_parse(pool, dn, &ka) == NULL &&
             mtls_name_key(pool, b, &kb) && keys_equal(ka, kb);
    X509_NAME_free(b);
    return eq;
}

/* Our key is byte for byte OpenSSL's canonical encoding: its SHA-1, as
 * X509_NAME_hash_ex computes it, matches. */
static int key_is_openssl_canon(const X509_NAME *name)
{
    mtls_key_t k;
    unsigned char md[20];
    unsigned long h;
    int ok = 0;
    if (!mtls_name_key(pool, name, &k))
        return 0;
    SHA1((const unsigned char *)k.data + 1, k.len - 1, md);
    h = (unsigned long)md[0] | (unsigned long)md[1] << 8 |
        (unsigned long)md[2] << 16 | (unsigned long)md[3] << 24;
    return X509_NAME_hash_ex(name, NULL, NULL, &ok) == h && ok;
}

int main(void)
{
    pki_t k;
    const mtls_identity_t *id, *id_b, *id_forged;
    const char *sans = "DNS:alice.example.com,email:Alice@Example.COM,"
                       "URI:spiffe://example.org/ns/prod/sa/alice,"
                       "IP:192.0.2.7,IP:2001:db8::7";
    unsigned char fp[32];

    /* Line by line: under SANITIZE=1 a leak report ends the process
     * without flushing stdio. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    apr_initialize();
    apr_pool_create(&pool, NULL);
    pki_init(&k);

    /* DN parser */
    check(dn_equal("CN=alice,O=Acme Inc.,C=US", alice), "RFC 4514 DN");
    check(dn_equal("cn=alice, o=Acme Inc. ,c=US", alice),
          "type case and spaces around separators");
    check(dn_equal("2.5.4.3=alice,O=Acme Inc.,C=US", alice), "dotted OID");
    check(dn_equal("CN=#0c05616c696365,O=Acme Inc.,C=US", alice),
          "#hex BER value");
    check(!dn_equal("O=Acme Inc.,CN=alice,C=US", alice), "RDN order matters");
    check(!dn_equal("CN=alice\\,O=Acme Inc.\\,C=US", alice),
          "escaped comma is not a separator");
    {
        static const char *const multi[] = {
            "C", "US", "O", "Acme Inc.", "UID", "7", "+CN", "alice", NULL};
        static const char *const sep[] = {
            "C", "US", "O", "Acme Inc.", "UID", "7", "CN", "alice", NULL};
        check(dn_equal("UID=7+CN=alice,O=Acme Inc.,C=US", multi),
              "multi-valued RDN");
        check(dn_equal("CN=alice+UID=7,O=Acme Inc.,C=US", multi),
              "multi-valued RDN in either order");
        check(!dn_equal("UID=7+CN=alice,O=Acme Inc.,C=US", sep),
              "multi-valued RDN differs from separate RDNs");
        check(dn_equal("CN=alice,UID=7,O=Acme Inc.,C=US", sep),
              "separate RDNs");
    }
    check(parse_fails("/C=US/O=Acme/CN=alice", "legacy"),
          "legacy form refused");
    check(parse_fails("", "empty"), "empty DN refused");
    check(parse_fails("CN=alice,", "empty RDN"), "trailing comma refused");
    check(parse_fails("XX=alice", "unknown attribute"), "unknown type refused");
    check(parse_fails("CN=al\\00ice", "NUL"), "NUL escape refused");
    check(parse_fails("CN=a;b", "escaped"), "unescaped ; refused");
    check(parse_fails("CN=a\\q", "escape"), "bad escape refused");
    check(parse_fails("CN alice", "'='"), "missing = refused");
    check(parse_fails("C=USA", NULL), "country of three letters refused");
    check(parse_fails("CN=,O=x", "empty value"), "empty value refused");
    check(parse_fails("CN=#zz", NULL), "bad hex refused");
    check(parse_fails("CN=#020101", "string"), "#hex INTEGER refused");
    {
        /* INN is a NumericString, compared as encoded, not as UTF-8. */
        X509_NAME *n = X509_NAME_new();
        mtls_key_t kn, kp;
        X509_NAME_add_entry_by_txt(n, "INN", MBSTRING_UTF8,
                                   (const unsigned char *)"123456789012", -1,
                                   -1, 0);
        check(mtls_name_key(pool, n, &kn) &&
                  mtls_dn_parse(pool, "INN=123456789012", &kp) == NULL &&
                  keys_equal(kn, kp) && key_is_openssl_canon(n),
              "NumericString attribute (INN) as OpenSSL types it");
        X509_NAME_free(n);
    }
    check(parse_fails("CN=#0c0b616c696365002e6576696c", "NUL"),
          "NUL in a #hex value refused");
    check(parse_fails("CN=#1e0400610000", "NUL"),
          "NUL in a #hex BMPString refused");

    /* The key is OpenSSL's canonical encoding, so it compares as
     * X509_NAME_cmp does: checked against OpenSSL's hash of it. */
    {
        static const char *const names[][9] = {
            {"C", "US", "O", "Acme Inc.", "CN", "alice", NULL},
            {"C", "US", "O", "  Acme   \tInc.  ", "CN", "ALICE", NULL},
            {"C", "US", "O", "x", "UID", "7", "+CN", "alice", NULL},
            {"CN", "caf\xc3\xa9 \xe2\x82\xac", NULL},
            {"DC", "org", "DC", "example", "CN", "a,b+c", NULL},
        };
        size_t i;
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            X509_NAME *n = name_of(names[i]);
            check(key_is_openssl_canon(n), "key = OpenSSL canonical form");
            X509_NAME_free(n);
        }
    }
    {
        /* Other string types than UTF-8: BMP, Universal, T61, IA5, and a
         * multi-valued RDN whose DER order differs from the written one. */
        X509_NAME *n = X509_NAME_new(), *u = X509_NAME_new();
        static const unsigned char bmp[] = {0, 'A', 0, 'l', 0x20, 0xac};
        static const unsigned char ucs[] = {0, 0, 0, 'B', 0, 1, 0xf6, 0x00};
        mtls_key_t kn, ku;
        X509_NAME_add_entry_by_NID(n, NID_commonName, V_ASN1_BMPSTRING, bmp,
                                   sizeof(bmp), -1, 0);
        X509_NAME_add_entry_by_NID(n, NID_organizationName,
                                   V_ASN1_UNIVERSALSTRING, ucs, sizeof(ucs), -1,
                                   0);
        X509_NAME_add_entry_by_NID(n, NID_localityName, V_ASN1_T61STRING,
                                   (const unsigned char *)"Z\xfcrich", -1, -1,
                                   0);
        X509_NAME_add_entry_by_NID(n, NID_pkcs9_emailAddress, V_ASN1_IA5STRING,
                                   (const unsigned char *)"A@B.C", -1, -1, -1);
        X509_NAME_add_entry_by_NID(n, NID_dnQualifier, V_ASN1_PRINTABLESTRING,
                                   (const unsigned char *)"Q", -1, -1, -1);
        check(key_is_openssl_canon(n),
              "key = OpenSSL canonical form (BMP, Universal, T61, IA5)");
        /* The same name in UTF-8 compares equal, as X509_NAME_cmp says. */
        X509_NAME_add_entry_by_NID(u, NID_commonName, MBSTRING_UTF8,
                                   (const unsigned char *)"Al\xe2\x82\xac", -1,
                                   -1, 0);
        X509_NAME_add_entry_by_NID(u, NID_organizationName, MBSTRING_UTF8,
                                   (const unsigned char *)"b\xf0\x9f\x98\x80",
                                   -1, -1, 0);
        X509_NAME_add_entry_by_NID(u, NID_localityName, MBSTRING_UTF8,
                                   (const unsigned char *)"z\xc3\xbcrich", -1,
                                   -1, 0);
        X509_NAME_add_entry_by_NID(u, NID_dnQualifier, MBSTRING_UTF8,
                                   (const unsigned char *)"q", -1, -1, -1);
        X509_NAME_add_entry_by_NID(u, NID_pkcs9_emailAddress, MBSTRING_UTF8,
                                   (const unsigned char *)"a@b.c", -1, -1, -1);
        check(mtls_name_key(pool, n, &kn) && mtls_name_key(pool, u, &ku) &&
                  keys_equal(kn, ku) && X509_NAME_cmp(n, u) == 0,
              "string types compare as UTF-8, as X509_NAME_cmp");
        check(dn_equal("O=b\xf0\x9f\x98\x80,CN=AL\xe2\x82\xac",
                       (const char *const[]){"CN", "Al\xe2\x82\xac", "O",
                                             "b\xf0\x9f\x98\x80", NULL}),
              "non-ASCII is compared exactly, ASCII case-insensitively");
        X509_NAME_free(n);
        X509_NAME_free(u);
    }
    /* Found by fuzz_dn: OpenSSL reads an empty arc as 0. */
    check(parse_fails("2.5.4..3=alice", "expected '='"),
          "dotted OID with an empty arc refused");
    check(parse_fails("2.5.4.3.=alice", "expected '='"),
          "dotted OID with a trailing dot refused");

    /* words of a directive line */
    {
        const char *line = "\"CN=back\\\\slash,O=a\\,b\"  plain \"\"";
        char *w1 = NULL, *w2 = NULL, *w3 = NULL, *w4 = NULL;
        const char *e1 = mtls_next_word(pool, &line, &w1);
        const char *e2 = mtls_next_word(pool, &line, &w2);
        const char *e3 = mtls_next_word(pool, &line, &w3);
        const char *e4 = mtls_next_word(pool, &line, &w4);
        const char *bad = "\"CN=x", *e5;
        char *w5;
        static const char *const bs[] = {"O", "a,b", "CN", "back\\slash", NULL};
        check(!e1 && !e2 && !e3 && !e4 && w4 == NULL,
              "words: quoted, plain, empty, end");
        check(w1 && strcmp(w1, "CN=back\\\\slash,O=a\\,b") == 0,
              "words: DN escapes reach the DN parser intact");
        check(w1 && dn_equal(w1, bs), "words: \\\\ and \\, as RFC 4514 says");
        check(w2 && strcmp(w2, "plain") == 0 && w3 && *w3 == '\0',
              "words: plain word and empty quoted word");
        e5 = mtls_next_word(pool, &bad, &w5);
        check(e5 && strstr(e5, "unbalanced"),
              "words: unbalanced quote refused");
    }

    /* fingerprints */
    check(mtls_fp_parse(pool, k.ca_pin, fp) == NULL, "sha256 fingerprint");
    check(mtls_fp_parse(pool,
                        "SHA256:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:"
                        "67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89",
                        fp) == NULL,
          "colons and upper case");
    check(err_has(mtls_fp_parse(pool,
                                "sha1:00112233445566778899aabbccddeeff0011"
                                "2233",
                                fp),
                  "too weak"),
          "sha1 refused as too weak");
    check(
        err_has(mtls_fp_parse(pool, "md5:00112233445566778899aabbccddeeff", fp),
                "too weak"),
        "md5 refused as too weak");
    check(mtls_fp_parse(pool, "sha256:abcd", fp) != NULL, "short refused");
    check(mtls_fp_parse(pool,
                        "sha256:zz112233445566778899aabbccddeeff00112233445566"
                        "778899aabbccddeeff",
                        fp) != NULL,
          "non-hex refused");
    check(mtls_fp_parse(pool,
                        "sha256:00112233445566778899aabbccddeeff00112233445566"
                        "778899aabbccddeeff00",
                        fp) != NULL,
          "long refused");

    ERR_clear_error(); /* from the parser tests above */
    id = leaf(&k, alice, sans, 0);
    id_b = leaf(&k, alice, sans, 1);
    id_forged = leaf(&k, alice, sans, 2);
    check(id->n_issuers == 1, "issuer found in the store");
    check(id_forged->n_issuers == 0, "forged CA with the same DN is no issuer");
    check(ERR_peek_error() == 0,
          "identity extraction leaves OpenSSL's error queue as it was");

    /* subject */
    check(ADMITS(id, "MTLSAllowSubject CN=alice,O=Acme Inc.,C=US") == 1,
          "subject allow");
    check(ADMITS(id, "MTLSAllowSubject CN=ALICE,O=acme inc.,C=us") == 1,
          "subject ASCII case-insensitive (X509_NAME_cmp)");
    check(ADMITS(id, "MTLSAllowSubject CN=bob,O=Acme Inc.,C=US") == 0,
          "subject deny");
    check(ADMITS(id, "MTLSAllowSubject CN=alice,O=Acme Inc.") == 0,
          "missing RDN does not match");
    check(ADMITS(id, "MTLSAllowSubject CN=alice,OU=x,O=Acme Inc.,C=US") == 0,
          "extra RDN does not match");

    /* SANs */
    check(ADMITS(id, "MTLSAllowSAN DNS:ALICE.example.com.") == 1,
          "DNS case-insensitive, trailing dot");
    check(ADMITS(id, "MTLSAllowSAN DNS:alice.example.com..") == 0,
          "only one trailing dot ignored");
    check(ADMITS(id, "MTLSAllowSAN DNS:*.example.com") == 0,
          "wildcard in a rule is literal");
    check(ADMITS(id, "MTLSAllowSAN email:Alice@example.com") == 1,
          "email domain case-insensitive");
    check(ADMITS(id, "MTLSAllowSAN email:alice@Example.COM") == 0,
          "email local part exact");
    check(ADMITS(id, "MTLSAllowSAN URI:spiffe://example.org/ns/prod/*") == 1,
          "URI prefix");
    check(ADMITS(id, "MTLSAllowSAN URI:spiffe://example.org/ns/pro/*") == 0,
          "URI prefix only at a / boundary");
    check(ADMITS(id,
                 "MTLSAllowSAN URI:spiffe://example.org/ns/prod/sa/alice/*") ==
              1,
          "URI prefix matches the path itself");
    check(ADMITS(id, "MTLSAllowSAN URI:spiffe://example.org/ns/prod") == 0,
          "URI exact is exact");
    check(ADMITS(id,
                 "MTLSAllowSAN URI:SPIFFE://example.org/ns/prod/sa/alice") == 0,
          "URI case-sensitive");
    check(ADMITS(id, "MTLSAllowSAN IP:192.0.2.7") == 1, "IPv4");
    check(ADMITS(id, "MTLSAllowSAN IP:::ffff:192.0.2.7") == 0,
          "IPv4-mapped IPv6 is not IPv4");
    check(ADMITS(id, "MTLSAllowSAN IP:2001:0db8:0:0:0:0:0:0007") == 1,
          "IPv6 compared as address");
    check(ADMITS(id, "MTLSAllowSAN ip:192.0.2.8") == 0, "IP deny");
    {
        /* Regression: a dirName SAN is a structure, not a string; it
         * crashed identity extraction. Other SANs still count. */
        X509_NAME *n = name_of(alice);
        X509 *x = make_cert(n, NULL, k.ca, k.ca_key, k.leaf_key);
        GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
        GENERAL_NAME *dir = GENERAL_NAME_new(), *dns = GENERAL_NAME_new();
        ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
        const mtls_identity_t *did;
        ASN1_STRING_set(ia5, "alice.example.com", -1);
        GENERAL_NAME_set0_value(dir, GEN_DIRNAME, X509_NAME_dup(n));
        GENERAL_NAME_set0_value(dns, GEN_DNS, ia5);
        sk_GENERAL_NAME_push(gens, dir);
        sk_GENERAL_NAME_push(gens, dns);
        X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT);
        X509_sign(x, k.ca_key, EVP_sha256());
        did = mtls_identity_build(pool, x, k.store, 1);
        check(ADMITS(did, "MTLSAllowSAN DNS:alice.example.com") == 1,
              "dirName SAN is skipped, DNS SAN still matches");
        GENERAL_NAMES_free(gens);
        X509_free(x);
        X509_NAME_free(n);
    }
    {
        /* A long URI with many '/' is probed only up to the longest
         * prefix rule; the prefix rule as MTLSAllow constraint too. */
        char *uri = apr_pstrcat(pool, "URI:spiffe://example.org/ns/prod", NULL);
        int i;
        const mtls_identity_t *deep;
        for (i = 0; i < 2000; i++)
            uri = apr_pstrcat(pool, uri, "/a", NULL);
        deep = leaf(&k, alice, uri, 0);
        check(ADMITS(deep, "MTLSAllowSAN URI:spiffe://example.org/ns/prod/*") ==
                  1,
              "deep URI under a prefix");
        check(ADMITS(deep, "MTLSAllowSAN URI:spiffe://example.org/ns/pro/*") ==
                  0,
              "deep URI not under a non-boundary prefix");
        check(ADMITS(deep, "MTLSAllow san=URI:spiffe://example.org/ns/* "
                           "san=URI:spiffe://example.org/ns/prod/a/*") == 1,
              "MTLSAllow with two prefix constraints");
        check(ADMITS(deep, "MTLSAllow san=URI:spiffe://example.org/ns/* "
                           "san=URI:spiffe://example.org/ns/dev/*") == 0,
              "MTLSAllow prefix constraint that does not hold");
    }

    /* issuer */
    check(ADMITS(id, apr_pstrcat(pool, "MTLSAllowIssuerFingerprint ", k.ca_pin,
                                 NULL)) == 1,
          "issuer allow");
    check(ADMITS(id_b, apr_pstrcat(pool, "MTLSAllowIssuerFingerprint ",
                                   k.ca_pin, NULL)) == 0,
          "issuer deny");
    check(ADMITS(id_forged, apr_pstrcat(pool, "MTLSAllowIssuerFingerprint ",
                                        k.forged_pin, NULL)) == 0,
          "untrusted forged CA never matches");
    check(ADMITS(id_b, "MTLSAllowSubject CN=alice,O=Acme Inc.,C=US",
                 apr_pstrcat(pool, "MTLSAllowIssuerFingerprint ", k.ca_pin,
                             NULL)) == 0,
          "one-field rule: subject and issuer must both hold");

    /* MTLSAllow */
    {
        const char *rule_a = apr_pstrcat(
            pool,
            "MTLSAllow \"subject=CN=alice,O=Acme Inc.,C=US\" issuer=", k.ca_pin,
            NULL);
        const char *rule_b = apr_pstrcat(
            pool, "MTLSAllow subject=\"CN=alice,O=Acme Inc.,C=US\" issuer=",
            k.ca2_pin, NULL);
        check(ADMITS(id, rule_a) == 1, "MTLSAllow subject+issuer");
        check(ADMITS(id_b, rule_a) == 0, "MTLSAllow binds to its CA");
        check(ADMITS(id_b, rule_a, rule_b) == 1, "second rule binds CA B");
        check(ADMITS(id, "MTLSAllow san=DNS:alice.example.com "
                         "san=URI:spiffe://example.org/ns/*") == 1,
              "MTLSAllow two SANs");
        check(ADMITS(id, "MTLSAllow san=DNS:alice.example.com "
                         "san=URI:spiffe://example.org/ns/dev/*") == 0,
              "MTLSAllow every SAN must hold");
        check(ADMITS(id, apr_pstrcat(pool, "MTLSAllow cert=", pin_of(id->cert),
                                     NULL)) == 1,
              "MTLSAllow cert pin");
        check(ADMITS(id_b, apr_pstrcat(pool, "MTLSAllow cert=",
                                       pin_of(id->cert), NULL)) == 0,
              "MTLSAllow cert pin deny");
        check(ADMITS(id, "MTLSAllow bogus=1") == -1, "unknown key refused");
        check(ADMITS(id, "MTLSAllow") == -1, "empty rule refused");
        check(ADMITS(id, "MTLSAllow subject=CN=a subject=CN=b") == -1,
              "duplicate subject refused");
        check(ADMITS(id, "MTLSAllow \"subject=CN=a") == -1,
              "unbalanced quote refused");
    }
    /* MTLSAllowIssuerFingerprint gates every rule of its scope */
    {
        static const char *const bob[] = {"C",  "US",  "O", "Acme Inc.",
                                          "CN", "bob", NULL};
        const mtls_identity_t *bob_a = leaf(&k, bob, NULL, 0);
        const char *gate_a =
            apr_pstrcat(pool, "MTLSAllowIssuerFingerprint ", k.ca_pin, NULL);
        const char *alice_rule =
            "MTLSAllow \"subject=CN=alice,O=Acme Inc.,C=US\"";
        check(ADMITS(bob_a, gate_a) == 1, "issuer gate alone: the whole CA");
        check(ADMITS(bob_a, gate_a, alice_rule) == 0,
              "issuer gate and an MTLSAllow line: not the whole CA");
        check(ADMITS(id, gate_a, alice_rule) == 1,
              "issuer gate and an MTLSAllow line: that client of the CA");
        check(ADMITS(id_b, gate_a, alice_rule) == 0,
              "issuer gate holds for MTLSAllow lines too");
        check(ADMITS(bob_a, gate_a,
                     "MTLSAllowSubject CN=alice,O=Acme Inc.,C=US",
                     alice_rule) == 0,
              "issuer gate, one-field and MTLSAllow rules: not the whole CA");
        check(ADMITS(bob_a, gate_a, alice_rule,
                     apr_pstrcat(pool, "MTLSAllow issuer=", k.ca_pin, NULL)) ==
                  1,
              "a deliberate whole-CA rule under its own gate");
        {
            mtls_ruleset_t *rs = mtls_ruleset_make(pool);
            mtls_ruleset_add_issuer(rs, pool, k.ca_pin, "t:1", NULL);
            mtls_ruleset_add_rule(
                rs, pool,
                apr_pstrcat(pool, "subject=CN=bob issuer=", k.ca2_pin, NULL),
                "t:2", NULL);
            check(err_has(mtls_ruleset_check(rs, pool), "t:2") &&
                      err_has(mtls_ruleset_check(rs, pool), "t:1"),
                  "a rule pinning an issuer outside the gate is refused");
            mtls_ruleset_add_issuer(rs, pool, k.ca2_pin, "t:3", NULL);
            check(mtls_ruleset_check(rs, pool) == NULL,
                  "... and accepted once the gate holds its issuer");
        }
    }

    /* URI prefix rules and dot segments, escapes, backslashes */
    {
        static const struct {
            const char *uri;
            int prefix; /* does the ns/prod prefix rule match? */
        } u[] = {
            {"spiffe://example.org/ns/prod/../admin", 0},
            {"spiffe://example.org/ns/prod/..", 0},
            {"spiffe://example.org/ns/prod/./x", 0},
            {"spiffe://example.org/ns/prod/%2e%2e/admin", 0},
            {"spiffe://example.org/ns/prod/a%2Fb", 0},
            {"spiffe://example.org/ns/prod/..;/admin", 0},
            {"spiffe://example.org/ns/prod/a;b", 0},
            {"spiffe://example.org/ns/prod/..x", 1},
            {"spiffe://example.org/ns/prod/.../x", 1},
            {"spiffe://example.org/ns/prod/a.b/c", 1},
        };
        size_t i;
        for (i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
            const mtls_identity_t *x =
                leaf(&k, alice, apr_pstrcat(pool, "URI:", u[i].uri, NULL), 0);
            check(
                ADMITS(x, "MTLSAllowSAN URI:spiffe://example.org/ns/prod/*") ==
                    u[i].prefix,
                apr_psprintf(pool, "URI prefix rule and %s: %s", u[i].uri,
                             u[i].prefix ? "matches" : "never matches"));
            check(
                ADMITS(x, apr_pstrcat(pool, "MTLSAllowSAN URI:", u[i].uri,
                                      NULL)) == 1,
                apr_psprintf(pool, "exact URI rule and %s: matches", u[i].uri));
        }
    }

    check(ADMITS(id, "MTLSAllowSAN foo:bar") == -1, "unknown SAN type");
    check(ADMITS(id, "MTLSAllowSAN IP:300.1.1.1") == -1, "bad IP");
    check(ADMITS(id, "MTLSAllowSAN email:nobody") == -1, "bad email");
    check(ADMITS(id, "MTLSAllowSAN URI:/*") == -1, "empty URI prefix");

    printf("%d passed, %d failed\n", passed, failed);
    /* Everything freed, so that leak detection (SANITIZE=1) sees only
     * what the code under test forgets. */
    apr_pool_destroy(pool);
    pki_free(&k);
    apr_terminate();
    return failed ? 1 : 0;
}
