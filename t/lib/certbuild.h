/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* cb_: certificates built in memory, for the unit tests and the fuzz
 * targets alike. Every certificate is X.509 v3, valid from an hour ago
 * for two hours, with a P-256 key, signed with SHA-256.
 *
 * cb_start and cb_sign do not judge what they are given: a fuzz target
 * hands them names that OpenSSL cannot encode, on purpose, and looks at
 * the result. Everything else aborts on a failure, which in a test can
 * only be a mistake in the test. */

#ifndef CERTBUILD_H
#define CERTBUILD_H

#include <apr_pools.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "under_test.h"

/* A new P-256 key. */
EVP_PKEY *cb_key(void);

/* A name from NULL-terminated (type, value) pairs in ASN.1 order, the
 * values UTF-8; a type starting with '+' joins the previous RDN. */
X509_NAME *cb_name(const char *const *entries);

/* An unsigned certificate without extensions for key, named subject and
 * issued by issuer (NULL: by itself). */
X509 *cb_start(const X509_NAME *subject, X509 *issuer, EVP_PKEY *key,
               long serial);

/* Adds an extension written in OpenSSL's configuration syntax, e.g.
 * NID_subject_alt_name and "DNS:a.example,IP:192.0.2.1". */
void cb_add_ext(X509 *x, X509 *issuer, int nid, const char *value);

/* Signs x with its issuer's key: 1 on success, 0 if OpenSSL refuses
 * (a subject it cannot encode, say). */
int cb_sign(X509 *x, EVP_PKEY *issuer_key);

/* A self-signed CA certificate (basicConstraints critical, CA:TRUE). */
X509 *cb_ca(const X509_NAME *subject, EVP_PKEY *key, long serial);

/* A leaf certificate for key, signed by ca, with the subjectAltNames of
 * san (configuration syntax as for cb_add_ext) unless san is NULL. */
X509 *cb_leaf(const X509_NAME *subject, const char *san, X509 *ca,
              EVP_PKEY *ca_key, EVP_PKEY *key, long serial);

/* x's SHA-256 fingerprint as the rules write it: "sha256:<hex>". */
const char *cb_pin(apr_pool_t *p, X509 *x);

/* The hash X509_NAME_hash_ex computes for the name whose subject key k
 * is. The module's key is OpenSSL's canonical encoding byte for byte, so
 * this equals OpenSSL's hash of the name exactly when it is. */
unsigned long cb_key_hash(const mtls_key_t *k);

#endif
