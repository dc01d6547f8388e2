/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls_identity: what a client certificate says about its holder, as the
 * keys that rules are matched against. Pure APR + OpenSSL, no httpd. */

#ifndef MTLS_IDENTITY_H
#define MTLS_IDENTITY_H

#include "mtls_key.h"

typedef struct mtls_identity mtls_identity_t;

/* A DNS, email, URI or IP subjectAltName as the certificate holds it;
 * type is OpenSSL's GEN_DNS, GEN_EMAIL, GEN_URI or GEN_IPADD. */
typedef struct {
    int type;
    const char *v; /* a copy; may hold a NUL byte */
    apr_size_t len;
} mtls_san_t;

struct mtls_identity {
    X509 *cert;               /* referenced for the pool's life */
    const X509_NAME *subject; /* owned by cert */
    mtls_key_t subject_key;   /* data NULL if it has no canonical form */
    unsigned char cert_fp[MTLS_FP_LEN];
    int n_issuers;                   /* trusted CAs that really signed it */
    const unsigned char *issuer_fps; /* n_issuers * MTLS_FP_LEN */
    apr_array_header_t *keys;        /* mtls_key_t: every lookup key */
    apr_hash_t *keyset;              /* the same keys, for membership */
    apr_array_header_t *uris;        /* mtls_key_t: URI SANs that prefix
                                        rules may match, untagged */
    apr_array_header_t *sans;        /* mtls_san_t, in certificate order */
    const char *subject_text;        /* RFC 4514, for logs */
    int san_malformed;               /* SAN extension undecodable/repeated */
    int full;                        /* all of it read, not just the subject */
};

/* Builds the identity of cert. store is the trust store that the
 * issuer is looked up in (may be NULL: no issuer is then known). The
 * certificate is referenced until p is cleared. Never fails: attributes
 * that cannot be read simply produce no key. Unless full, only the
 * subject text is filled in: enough to log an unverified certificate
 * without doing work for whoever sent it. */
mtls_identity_t *mtls_identity_build(apr_pool_t *p, X509 *cert,
                                     X509_STORE *store, int full);

/* Called for each subjectAltName, in the certificate's order. type is
 * OpenSSL's GEN_* type; v and len are the value of a DNS, email, URI or
 * IP name (the bytes as the certificate holds them, not a copy), and v
 * is NULL for the other types, which are structures, or if unreadable. */
typedef void mtls_san_fn(void *baton, int type, const unsigned char *v,
                         apr_size_t len);

/* Walks cert's subjectAltName extension. Returns 0 if it has none, 1 if
 * it has one, -1 if the extension is undecodable or repeated (then fn is
 * not called: no SAN of such a certificate can match). Leaves OpenSSL's
 * error queue as it was found. */
int mtls_sans_each(X509 *cert, mtls_san_fn *fn, void *baton);

/* An IP SAN's text form (4 or 16 bytes) in buf, or NULL if malformed. */
const char *mtls_san_ip_text(const unsigned char *v, apr_size_t len, char *buf,
                             apr_size_t size);

#endif
