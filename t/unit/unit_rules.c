/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Directive words and fingerprints, and the rules by subject and issuer:
 * the one-field directives, MTLSAllow lines and the issuer gate. */

#include <apr_strings.h>
#include <string.h>

#include "unit.h"

/* words of a directive line */
static void words(void)
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
    check(e5 && strstr(e5, "unbalanced"), "words: unbalanced quote refused");
    {
        const char *l = "a\"b c\"d \"x\\\"y\" \"p\\q\"\tx\\\"y";
        char *v1 = NULL, *v2 = NULL, *v3 = NULL, *v4 = NULL;
        const char *f1 = mtls_next_word(pool, &l, &v1);
        const char *f2 = mtls_next_word(pool, &l, &v2);
        const char *f3 = mtls_next_word(pool, &l, &v3);
        const char *f4 = mtls_next_word(pool, &l, &v4);
        check(!f1 && v1 && strcmp(v1, "ab cd") == 0,
              "words: quotes inside a word, a space quoted");
        check(!f2 && v2 && strcmp(v2, "x\"y") == 0,
              "words: \\\" inside quotes is a quote");
        check(!f3 && v3 && strcmp(v3, "p\\q") == 0,
              "words: a backslash before another character stays; a tab "
              "ends the word");
        check(f4 && strstr(f4, "unbalanced"),
              "words: \\\" outside quotes opens one");
    }
}

static void fingerprints(const pki_t *k)
{
    unsigned char fp[MTLS_FP_LEN];
    check(mtls_fp_parse(pool, k->ca_pin, fp) == NULL, "sha256 fingerprint");
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
}

static void subject(const pki_t *k)
{
    static const admit_case_t cases[] = {
        {"MTLSAllowSubject CN=alice,O=Acme Inc.,C=US", 1, "subject allow"},
        {"MTLSAllowSubject CN=ALICE,O=acme inc.,C=us", 1,
         "subject ASCII case-insensitive (X509_NAME_cmp)"},
        {"MTLSAllowSubject CN=bob,O=Acme Inc.,C=US", 0, "subject deny"},
        {"MTLSAllowSubject CN=alice,O=Acme Inc.", 0,
         "missing RDN does not match"},
        {"MTLSAllowSubject CN=alice,OU=x,O=Acme Inc.,C=US", 0,
         "extra RDN does not match"},
    };
    CHECK_CASES(k->id, cases);
}

static void issuer(const pki_t *k)
{
    check(ADMITS(k->id, apr_pstrcat(pool, "MTLSAllowIssuerFingerprint ",
                                    k->ca_pin, NULL)) == 1,
          "issuer allow");
    check(ADMITS(k->id_b, apr_pstrcat(pool, "MTLSAllowIssuerFingerprint ",
                                      k->ca_pin, NULL)) == 0,
          "issuer deny");
    check(ADMITS(k->id_forged, apr_pstrcat(pool, "MTLSAllowIssuerFingerprint ",
                                           k->forged_pin, NULL)) == 0,
          "untrusted forged CA never matches");
    check(ADMITS(k->id_b, "MTLSAllowSubject CN=alice,O=Acme Inc.,C=US",
                 apr_pstrcat(pool, "MTLSAllowIssuerFingerprint ", k->ca_pin,
                             NULL)) == 0,
          "one-field rule: subject and issuer must both hold");
}

static void allow(const pki_t *k)
{
    static const admit_case_t cases[] = {
        {"MTLSAllow san=DNS:alice.example.com "
         "san=URI:spiffe://example.org/ns/*",
         1, "MTLSAllow two SANs"},
        {"MTLSAllow san=DNS:alice.example.com "
         "san=URI:spiffe://example.org/ns/dev/*",
         0, "MTLSAllow every SAN must hold"},
        {"MTLSAllow bogus=1", -1, "unknown key refused"},
        {"MTLSAllow", -1, "empty rule refused"},
        {"MTLSAllow subject=CN=a subject=CN=b", -1,
         "duplicate subject refused"},
        {"MTLSAllow \"subject=CN=a", -1, "unbalanced quote refused"},
    };
    const mtls_identity_t *id = k->id, *id_b = k->id_b;
    const char *rule_a = apr_pstrcat(
        pool,
        "MTLSAllow \"subject=CN=alice,O=Acme Inc.,C=US\" issuer=", k->ca_pin,
        NULL);
    const char *rule_b = apr_pstrcat(
        pool,
        "MTLSAllow subject=\"CN=alice,O=Acme Inc.,C=US\" issuer=", k->ca2_pin,
        NULL);
    const char *cert_rule =
        apr_pstrcat(pool, "MTLSAllow cert=", cb_pin(pool, id->cert), NULL);

    check(ADMITS(id, rule_a) == 1, "MTLSAllow subject+issuer");
    check(ADMITS(id_b, rule_a) == 0, "MTLSAllow binds to its CA");
    check(ADMITS(id_b, rule_a, rule_b) == 1, "second rule binds CA B");
    check(ADMITS(id, cert_rule) == 1, "MTLSAllow cert pin");
    check(ADMITS(id_b, cert_rule) == 0, "MTLSAllow cert pin deny");
    CHECK_CASES(id, cases);
}

/* A rule that pins an issuer outside the scope's gate is a mistake. */
static void gate_check(const pki_t *k)
{
    mtls_ruleset_t *rs = mtls_ruleset_make(pool);
    mtls_ruleset_add_issuer(rs, pool, k->ca_pin, "t:1", NULL);
    mtls_ruleset_add_rule(
        rs, pool, apr_pstrcat(pool, "subject=CN=bob issuer=", k->ca2_pin, NULL),
        "t:2", NULL);
    check(err_has(mtls_ruleset_check(rs, pool), "t:2") &&
              err_has(mtls_ruleset_check(rs, pool), "t:1"),
          "a rule pinning an issuer outside the gate is refused");
    mtls_ruleset_add_issuer(rs, pool, k->ca2_pin, "t:3", NULL);
    check(mtls_ruleset_check(rs, pool) == NULL,
          "... and accepted once the gate holds its issuer");
}

/* MTLSAllowIssuerFingerprint gates every rule of its scope */
static void gate(const pki_t *k)
{
    static const char *const bob[] = {"C",  "US",  "O", "Acme Inc.",
                                      "CN", "bob", NULL};
    const mtls_identity_t *bob_a = leaf(k, bob, NULL, BY_CA_A);
    const char *gate_a =
        apr_pstrcat(pool, "MTLSAllowIssuerFingerprint ", k->ca_pin, NULL);
    const char *alice_rule = "MTLSAllow \"subject=CN=alice,O=Acme Inc.,C=US\"";

    check(ADMITS(bob_a, gate_a) == 1, "issuer gate alone: the whole CA");
    check(ADMITS(bob_a, gate_a, alice_rule) == 0,
          "issuer gate and an MTLSAllow line: not the whole CA");
    check(ADMITS(k->id, gate_a, alice_rule) == 1,
          "issuer gate and an MTLSAllow line: that client of the CA");
    check(ADMITS(k->id_b, gate_a, alice_rule) == 0,
          "issuer gate holds for MTLSAllow lines too");
    check(ADMITS(bob_a, gate_a, "MTLSAllowSubject CN=alice,O=Acme Inc.,C=US",
                 alice_rule) == 0,
          "issuer gate, one-field and MTLSAllow rules: not the whole CA");
    check(ADMITS(bob_a, gate_a, alice_rule,
                 apr_pstrcat(pool, "MTLSAllow issuer=", k->ca_pin, NULL)) == 1,
          "a deliberate whole-CA rule under its own gate");
    gate_check(k);
}

void test_rules(const pki_t *k)
{
    words();
    fingerprints(k);
    subject(k);
    issuer(k);
    allow(k);
    gate(k);
}
