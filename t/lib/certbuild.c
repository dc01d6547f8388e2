/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include <apr_strings.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>

#include "certbuild.h"

static void need(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "certbuild: %s failed\n", what);
        abort();
    }
}

EVP_PKEY *cb_key(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    need(key != NULL, "EVP_EC_gen");
    return key;
}

X509_NAME *cb_name(const char *const *e)
{
    X509_NAME *n = X509_NAME_new();
    need(n != NULL, "X509_NAME_new");
    for (; e[0]; e += 2) {
        int set = e[0][0] == '+' ? -1 : 0;
        need(X509_NAME_add_entry_by_txt(n, e[0] + (set ? 1 : 0), MBSTRING_UTF8,
                                        (const unsigned char *)e[1], -1, -1,
                                        set),
             e[0]);
    }
    return n;
}

X509 *cb_start(const X509_NAME *subject, X509 *issuer, EVP_PKEY *key,
               long serial)
{
    X509 *x = X509_new();
    need(x != NULL, "X509_new");
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_subject_name(x, subject);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject);
    X509_set_pubkey(x, key);
    return x;
}

void cb_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    need(ext != NULL && X509_add_ext(x, ext, -1), value);
    X509_EXTENSION_free(ext);
}

int cb_sign(X509 *x, EVP_PKEY *issuer_key)
{
    return X509_sign(x, issuer_key, EVP_sha256()) > 0;
}

X509 *cb_ca(const X509_NAME *subject, EVP_PKEY *key, long serial)
{
    X509 *x = cb_start(subject, NULL, key, serial);
    cb_add_ext(x, NULL, NID_basic_constraints, "critical,CA:TRUE");
    need(cb_sign(x, key), "signing a CA");
    return x;
}

X509 *cb_leaf(const X509_NAME *subject, const char *san, X509 *ca,
              EVP_PKEY *ca_key, EVP_PKEY *key, long serial)
{
    X509 *x = cb_start(subject, ca, key, serial);
    if (san)
        cb_add_ext(x, ca, NID_subject_alt_name, san);
    need(cb_sign(x, ca_key), "signing a leaf");
    return x;
}

const char *cb_pin(apr_pool_t *p, X509 *x)
{
    unsigned char fp[MTLS_FP_LEN];
    unsigned int n = 0;
    need(X509_digest(x, EVP_sha256(), fp, &n) && n == sizeof(fp),
         "X509_digest");
    return apr_pstrcat(p, "sha256:", mtls_fp_hex(p, fp), NULL);
}

unsigned long cb_key_hash(const mtls_key_t *k)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    /* The key's first byte is its tag (MTLS_K_SUBJECT). */
    SHA1((const unsigned char *)k->data + 1, k->len - 1, md);
    return (unsigned long)md[0] | (unsigned long)md[1] << 8 |
           (unsigned long)md[2] << 16 | (unsigned long)md[3] << 24;
}
