/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Certificate -> identity (mtls_identity_build): the issuers found in
 * the trust store, the SANs read, and what it leaves behind. */

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "unit.h"

/* Regression: a dirName SAN is a structure, not a string; it crashed
 * identity extraction. Other SANs still count. */
static void dirname_san(const pki_t *k)
{
    X509_NAME *n = cb_name(alice);
    X509 *x = cb_start(n, k->ca, k->leaf_key, next_serial());
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
    cb_sign(x, k->ca_key);
    did = mtls_identity_build(pool, x, k->store, 1);
    check(ADMITS(did, "MTLSAllowSAN DNS:alice.example.com") == 1,
          "dirName SAN is skipped, DNS SAN still matches");
    GENERAL_NAMES_free(gens);
    X509_free(x);
    X509_NAME_free(n);
}

void test_identity(pki_t *k)
{
    ERR_clear_error(); /* from the parser tests before */
    k->id = leaf(k, alice, ALICE_SANS, BY_CA_A);
    k->id_b = leaf(k, alice, ALICE_SANS, BY_CA_B);
    k->id_forged = leaf(k, alice, ALICE_SANS, BY_FORGED);
    check(k->id->n_issuers == 1, "issuer found in the store");
    check(k->id_forged->n_issuers == 0,
          "forged CA with the same DN is no issuer");
    check(ERR_peek_error() == 0,
          "identity extraction leaves OpenSSL's error queue as it was");
    dirname_san(k);
}
