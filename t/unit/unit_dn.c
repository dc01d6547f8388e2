/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* The RFC 4514 DN parser (mtls_dn_parse) and the key of a certificate's
 * name (mtls_name_key), which must be OpenSSL's canonical encoding. */

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "unit.h"

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

int dn_equal(const char *dn, const char *const *entries)
{
    X509_NAME *b = cb_name(entries);
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
    int ok = 0;
    if (!mtls_name_key(pool, name, &k))
        return 0;
    return X509_NAME_hash_ex(name, NULL, NULL, &ok) == cb_key_hash(&k) && ok;
}

static void dn_forms(void)
{
    static const char *const multi[] = {"C", "US",  "O",     "Acme Inc.", "UID",
                                        "7", "+CN", "alice", NULL};
    static const char *const sep[] = {"C", "US", "O",     "Acme Inc.", "UID",
                                      "7", "CN", "alice", NULL};

    check(dn_equal("CN=alice,O=Acme Inc.,C=US", alice), "RFC 4514 DN");
    check(dn_equal("cn=alice, o=Acme Inc. ,c=US", alice),
          "type case and spaces around separators");
    check(dn_equal("2.5.4.3=alice,O=Acme Inc.,C=US", alice), "dotted OID");
    check(dn_equal("CN=#0c05616c696365,O=Acme Inc.,C=US", alice),
          "#hex BER value");
    check(!dn_equal("O=Acme Inc.,CN=alice,C=US", alice), "RDN order matters");
    check(!dn_equal("CN=alice\\,O=Acme Inc.\\,C=US", alice),
          "escaped comma is not a separator");
    check(dn_equal("UID=7+CN=alice,O=Acme Inc.,C=US", multi),
          "multi-valued RDN");
    check(dn_equal("CN=alice+UID=7,O=Acme Inc.,C=US", multi),
          "multi-valued RDN in either order");
    check(!dn_equal("UID=7+CN=alice,O=Acme Inc.,C=US", sep),
          "multi-valued RDN differs from separate RDNs");
    check(dn_equal("CN=alice,UID=7,O=Acme Inc.,C=US", sep), "separate RDNs");
}

/* A certificate's name whose O value is a SEQUENCE (DER: O = empty
 * SEQUENCE) has no key, and no rule can write one: nothing matches it. */
static void dn_constructed_value(void)
{
    static const unsigned char der[] = {0x30, 0x0b, 0x31, 0x09, 0x30,
                                        0x07, 0x06, 0x03, 0x55, 0x04,
                                        0x0a, 0x30, 0x00};
    const unsigned char *d = der;
    X509_NAME *n = d2i_X509_NAME(NULL, &d, sizeof(der));
    mtls_key_t k;
    check(n != NULL && !mtls_name_key(pool, n, &k),
          "a name with a SEQUENCE value has no key");
    check(parse_fails("O=#3000", "string"),
          "a '#' value that is a SEQUENCE refused");
    X509_NAME_free(n);
}

static void dn_refused(void)
{
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
    check(parse_fails("CN=#0c0b616c696365002e6576696c", "NUL"),
          "NUL in a #hex value refused");
    check(parse_fails("CN=#1e0400610000", "NUL"),
          "NUL in a #hex BMPString refused");
    /* Found by fuzz_dn: OpenSSL reads an empty arc as 0. */
    check(parse_fails("2.5.4..3=alice", "expected '='"),
          "dotted OID with an empty arc refused");
    check(parse_fails("2.5.4.3.=alice", "expected '='"),
          "dotted OID with a trailing dot refused");
}

/* The key is OpenSSL's canonical encoding, so it compares as
 * X509_NAME_cmp does: checked against OpenSSL's hash of it. */
static void dn_canonical(void)
{
    static const char *const names[][9] = {
        {"C", "US", "O", "Acme Inc.", "CN", "alice", NULL},
        {"C", "US", "O", "  Acme   \tInc.  ", "CN", "ALICE", NULL},
        {"C", "US", "O", "x", "UID", "7", "+CN", "alice", NULL},
        {"CN", "caf\xc3\xa9 \xe2\x82\xac", NULL},
        {"DC", "org", "DC", "example", "CN", "a,b+c", NULL},
    };
    /* INN is a NumericString, compared as encoded, not as UTF-8. */
    X509_NAME *n = X509_NAME_new();
    mtls_key_t kn, kp;
    size_t i;

    X509_NAME_add_entry_by_txt(n, "INN", MBSTRING_UTF8,
                               (const unsigned char *)"123456789012", -1, -1,
                               0);
    check(mtls_name_key(pool, n, &kn) &&
              mtls_dn_parse(pool, "INN=123456789012", &kp) == NULL &&
              keys_equal(kn, kp) && key_is_openssl_canon(n),
          "NumericString attribute (INN) as OpenSSL types it");
    X509_NAME_free(n);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        n = cb_name(names[i]);
        check(key_is_openssl_canon(n), "key = OpenSSL canonical form");
        X509_NAME_free(n);
    }
}

/* Adds (nid, type, bytes) entries; len < 0: strlen. set: as
 * X509_NAME_add_entry_by_NID's. */
typedef struct {
    int nid, type;
    const char *v;
    int len, set;
} entry_t;

static X509_NAME *name_typed(const entry_t *e, size_t n)
{
    X509_NAME *name = X509_NAME_new();
    size_t i;
    for (i = 0; i < n; i++)
        X509_NAME_add_entry_by_NID(name, e[i].nid, e[i].type,
                                   (const unsigned char *)e[i].v, e[i].len, -1,
                                   e[i].set);
    return name;
}

/* Other string types than UTF-8: BMP, Universal, T61, IA5, and a
 * multi-valued RDN whose DER order differs from the written one. */
static void dn_string_types(void)
{
    static const entry_t typed[] = {
        {NID_commonName, V_ASN1_BMPSTRING, "\0A\0l\x20\xac", 6, 0},
        {NID_organizationName, V_ASN1_UNIVERSALSTRING, "\0\0\0B\0\1\xf6\0", 8,
         0},
        {NID_localityName, V_ASN1_T61STRING, "Z\xfcrich", -1, 0},
        {NID_pkcs9_emailAddress, V_ASN1_IA5STRING, "A@B.C", -1, -1},
        {NID_dnQualifier, V_ASN1_PRINTABLESTRING, "Q", -1, -1},
    };
    /* The same name in UTF-8 compares equal, as X509_NAME_cmp says. */
    static const entry_t utf8[] = {
        {NID_commonName, MBSTRING_UTF8, "Al\xe2\x82\xac", -1, 0},
        {NID_organizationName, MBSTRING_UTF8, "b\xf0\x9f\x98\x80", -1, 0},
        {NID_localityName, MBSTRING_UTF8, "z\xc3\xbcrich", -1, 0},
        {NID_dnQualifier, MBSTRING_UTF8, "q", -1, -1},
        {NID_pkcs9_emailAddress, MBSTRING_UTF8, "a@b.c", -1, -1},
    };
    X509_NAME *n = name_typed(typed, sizeof(typed) / sizeof(typed[0]));
    X509_NAME *u = name_typed(utf8, sizeof(utf8) / sizeof(utf8[0]));
    mtls_key_t kn, ku;

    check(key_is_openssl_canon(n),
          "key = OpenSSL canonical form (BMP, Universal, T61, IA5)");
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

void test_dn(void)
{
    dn_forms();
    dn_refused();
    dn_constructed_value();
    dn_canonical();
    dn_string_types();
}
