/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls_identity: what a client certificate says about its holder, as the
 * keys that rules are matched against. Pure APR + OpenSSL, no httpd. */

#ifndef MTLS_IDENTITY_H
#define MTLS_IDENTITY_H

#include <openssl/evp.h>

#include "mtls_key.h"

typedef struct mtls_identity mtls_identity_t;

/* How an identity's trusted issuers were found (for the debug log). */
typedef enum {
    MTLS_ISSUERS_NONE = 0, /* not looked for: no store, or not full */
    MTLS_ISSUERS_CHAIN,    /* the handshake's verified chain */
    MTLS_ISSUERS_CACHE,    /* the process's issuer cache */
    MTLS_ISSUERS_STORE     /* looked up and checked in the trust store */
} mtls_issuers_from_e;

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
    unsigned char cert_fp[MTLS_FP_LEN]; /* if has_cert_fp */
    int has_cert_fp;                    /* and the identity has a cert= key */
    int n_issuers;                      /* trusted CAs that really signed it */
    const unsigned char *issuer_fps;    /* n_issuers * MTLS_FP_LEN */
    apr_array_header_t *keys;           /* mtls_key_t: every lookup key */
    apr_hash_t *keyset;                 /* the same keys, for membership */
    apr_array_header_t *uris;           /* mtls_key_t: URI SANs that prefix
                                           rules may match, untagged */
    apr_array_header_t *sans;           /* mtls_san_t, in certificate order */
    int san_malformed;                  /* SAN extension undecodable/repeated */
    int full;                         /* all of it read, not just the subject */
    mtls_issuers_from_e issuers_from; /* how the issuers were found */
};

/* Builds the identity of cert. store is the trust store that the
 * issuer is looked up in (may be NULL: no issuer is then known). The
 * certificate is referenced until p is cleared. Never fails: attributes
 * that cannot be read simply produce no key. Unless full, only the
 * subject is filled in: enough to log an unverified certificate without
 * doing work for whoever sent it. */
mtls_identity_t *mtls_identity_build(apr_pool_t *p, X509 *cert,
                                     X509_STORE *store, int full);

/* The subject in RFC 4514 form (X509_NAME_print_ex, XN_FLAG_RFC2253),
 * formatted into p on each call: "" if it cannot be printed. It is not
 * kept in the identity, which HTTP/2 streams share across threads. */
const char *mtls_identity_subject_text(apr_pool_t *p,
                                       const mtls_identity_t *id);

/* ---- finding the issuers cheaply ------------------------------------------
 *
 * The issuers of a certificate are the trust store's certificates that
 * really issued it (X509_check_issued and a valid signature). Checking a
 * signature is most of the cost of a new connection, so two shortcuts
 * give the same answer without it:
 * - the TLS layer may know it (mtls_ssl.c: the verified chain of this
 *   connection's own handshake, when its issuer is the only certificate
 *   of that name in the store);
 * - a per-process cache of earlier answers (below). */

/* At most this many issuers are cached for one certificate; a certificate
 * with more is looked up each time. */
#define MTLS_ISSUER_CACHE_MAX 4

/* A fixed-size, thread-safe cache: (trust store, SHA-256 of the leaf) ->
 * the SHA-256 of each trusted issuer.
 * - Keyed on: the store's address and the leaf's digest. The answer
 *   depends on the leaf and on the store's certificates of the leaf's
 *   issuer name. A store only grows, by lazy lookups
 *   (SSLCACertificatePath), and OpenSSL looks a name up only while the
 *   store holds no certificate of that name; answers with no issuer are
 *   not cached. So an entry stays right for as long as the store lives
 *   (unless a hashed-directory file holds certificates of a name other
 *   than its hash says).
 * - Invalidated by: nothing; entries are replaced when their set is full.
 *   The cache must die with the stores it was filled for, since a later
 *   store could reuse an address: create it in a pool that does (httpd's
 *   child pool: a child serves one configuration generation).
 * - Changed by: mtls_identity_build_ex with full set, i.e. only for
 *   certificates that counted as verified, never by what an unverified
 *   client sends. Entries round up to a power of two, four ways per set. */
typedef struct mtls_issuer_cache mtls_issuer_cache_t;

/* NULL without memory or locks. The memory is calloc'ed outside p (most
 * of it stays untouched until used) and freed with p. */
mtls_issuer_cache_t *mtls_issuer_cache_create(apr_pool_t *p,
                                              apr_size_t entries);
/* The number of issuers of (store, leaf_fp) copied into fps (room for
 * MTLS_ISSUER_CACHE_MAX), or -1 if not cached. */
int mtls_issuer_cache_get(mtls_issuer_cache_t *c, const void *store,
                          const unsigned char *leaf_fp, unsigned char *fps);
/* Records (or replaces) an answer; ignored if n > MTLS_ISSUER_CACHE_MAX. */
void mtls_issuer_cache_put(mtls_issuer_cache_t *c, const void *store,
                           const unsigned char *leaf_fp,
                           const unsigned char *fps, int n);
/* Entries in use and slots in all, for tests. */
void mtls_issuer_cache_stats(mtls_issuer_cache_t *c, apr_size_t *used,
                             apr_size_t *slots);

typedef struct {
    /* The SHA-256 of the one and only trusted issuer, if the caller
     * established it (mtls_ssl_chain_issuer), else NULL. */
    const unsigned char *issuer_fp;
    mtls_issuer_cache_t *cache; /* may be NULL */
    /* No rule pins a certificate: its digest (a cert= key) is computed
     * only where the issuers must be looked up (the cache key). */
    int no_cert_key;
} mtls_issuer_hint_t;

/* mtls_identity_build, with the issuers taken from hint when it knows
 * them. With hint NULL it is mtls_identity_build. */
mtls_identity_t *mtls_identity_build_ex(apr_pool_t *p, X509 *cert,
                                        X509_STORE *store, int full,
                                        const mtls_issuer_hint_t *hint);

/* id's certificate's SHA-256: id->cert_fp, or computed into buf where
 * the identity was built without it. NULL if it cannot be computed. */
const unsigned char *mtls_identity_cert_fp(const mtls_identity_t *id,
                                           unsigned char buf[MTLS_FP_LEN]);

/* Fetches SHA-256 once for the process, so that each digest skips the
 * provider lookup. Call before threads start (httpd's child_init); until
 * then, and if it fails, EVP_sha256() is used. */
void mtls_identity_process_init(void);
/* The SHA-256 digest in use (for the other digests of the module). */
const EVP_MD *mtls_sha256(void);

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
