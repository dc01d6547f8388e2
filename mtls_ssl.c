/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* What mod_ssl and OpenSSL's SSL tell this module. See mtls_ssl.h. */

#include "httpd.h"
#include "http_config.h"
#include "http_ssl.h"
#include "apr_hash.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"
#include <openssl/x509v3.h>
#include <string.h>

#include "mtls_conf.h"
#include "mtls_ssl.h"

/* The certificates of the SSL hosts' trust stores as mod_ssl loaded them
 * (SSLCACertificateFile; SSLCACertificatePath loads lazily, later, in
 * each child: those are not here), by object address -> their SHA-256.
 * Made in the parent at startup, read-only in children; it lives in the
 * configuration pool, as do the SSL_CTXs that hold the certificates, so
 * an address here is a live store certificate for as long as the map is
 * reachable: no other live certificate (one a client sent) can have it. */
static apr_hash_t *store_certs;

static apr_status_t store_certs_gone(void *data)
{
    (void)data;
    store_certs = NULL;
    return APR_SUCCESS;
}

int mtls_ssl_init_server(server_rec *s, apr_pool_t *p, int is_proxy,
                         SSL_CTX *ctx)
{
    apr_hash_t *trusted;
    STACK_OF(X509_OBJECT) * objs;
    int i;

    if (is_proxy || ctx == NULL)
        return DECLINED;
    if (store_certs == NULL) {
        store_certs = apr_hash_make(p);
        apr_pool_cleanup_register(p, NULL, store_certs_gone,
                                  apr_pool_cleanup_null);
    }
    trusted = apr_hash_make(p);
    objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
    for (i = 0; i < sk_X509_OBJECT_num(objs); i++) {
        X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        unsigned char *fp = apr_palloc(p, MTLS_FP_LEN);
        unsigned int n = 0;
        if (ca && X509_digest(ca, EVP_sha256(), fp, &n) && n == MTLS_FP_LEN) {
            X509 **key = apr_pmemdup(p, &ca, sizeof(ca));
            apr_hash_set(trusted, fp, MTLS_FP_LEN, "");
            apr_hash_set(store_certs, key, sizeof(*key), fp);
        }
    }
    mtls_conf_set_trusted(s, trusted);
    return DECLINED;
}

/* Is ca the only certificate in store with its subject name? Then it is
 * the only candidate that the slow path (X509_STORE_CTX_get1_certs by
 * the leaf's issuer name) would find, the store's objects being sorted
 * by type and name. Asked each time, under the store's lock: a lazy
 * lookup (SSLCACertificatePath) may add a certificate of the same name
 * after startup. */
static int sole_of_its_name(X509_STORE *store, X509 *ca)
{
    STACK_OF(X509_OBJECT) * objs;
    const X509_NAME *name = X509_get_subject_name(ca);
    int i, n, sole = 0;

    if (!X509_STORE_lock(store))
        return 0;
    objs = X509_STORE_get0_objects(store);
    n = sk_X509_OBJECT_num(objs);
    i = X509_OBJECT_idx_by_subject(objs, X509_LU_X509, name);
    if (i >= 0 && i < n &&
        X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i)) == ca) {
        X509 *prev =
            i > 0 ? X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i - 1))
                  : NULL;
        X509 *next =
            i + 1 < n ? X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i + 1))
                      : NULL;
        sole = (prev == NULL ||
                X509_NAME_cmp(X509_get_subject_name(prev), name) != 0) &&
               (next == NULL ||
                X509_NAME_cmp(X509_get_subject_name(next), name) != 0);
    }
    X509_STORE_unlock(store);
    return sole;
}

/* After a full handshake (or a renegotiation, or a post-handshake
 * authentication) on this connection, OpenSSL keeps the chain it built
 * and verified: ssl_verify_cert_chain sets it from the X509_STORE_CTX
 * whose leaf is the first certificate the client sent, which
 * tls_process_client_certificate then makes the session's peer. So
 * chain[0] is the peer object itself, and chain[1] the certificate whose
 * name, key identifier, key usage and signature OpenSSL checked for it.
 * A resumed session has no chain (the SSL is new); an abbreviated
 * renegotiation keeps the older chain, whose leaf is then another
 * object. If chain[1] is a store certificate (store_certs) and the only
 * one of its name, it is exactly what the slow path finds: the sole
 * candidate, which passes X509_check_issued (checked again here, it is
 * cheap) and the signature check (done by OpenSSL, as the verify result,
 * checked by the caller, says). */
const unsigned char *mtls_ssl_chain_issuer(SSL *ssl, X509 *peer,
                                           X509_STORE *store)
{
    STACK_OF(X509) * chain;
    X509 *ca;
    const unsigned char *fp;

    if (store_certs == NULL || store == NULL)
        return NULL;
    chain = SSL_get0_verified_chain(ssl);
    if (chain == NULL || sk_X509_num(chain) < 2 ||
        sk_X509_value(chain, 0) != peer)
        return NULL;
    ca = sk_X509_value(chain, 1);
    if (ca == peer)
        return NULL;
    fp = apr_hash_get(store_certs, &ca, sizeof(ca));
    if (fp == NULL || X509_check_issued(ca, peer) != X509_V_OK ||
        !sole_of_its_name(store, ca))
        return NULL;
    return fp;
}

/* ---- per process --------------------------------------------------------- */

/* Certificates the issuer cache remembers per process (about 180 bytes
 * each; untouched memory until used). */
#define MTLS_ISSUER_CACHE_ENTRIES 4096

static mtls_issuer_cache_t *issuer_cache;

/* One SSL that never handshakes, for session_verify_result, with its own
 * SSL_CTX; used under scratch_mutex. */
static SSL_CTX *scratch_ctx;
static SSL *scratch;
#if APR_HAS_THREADS
static apr_thread_mutex_t *scratch_mutex;
#endif

static apr_status_t child_gone(void *data)
{
    (void)data;
    issuer_cache = NULL;
    SSL_free(scratch);
    scratch = NULL;
    SSL_CTX_free(scratch_ctx);
    scratch_ctx = NULL;
#if APR_HAS_THREADS
    scratch_mutex = NULL;
#endif
    return APR_SUCCESS;
}

void mtls_ssl_child_init(apr_pool_t *pchild, server_rec *s)
{
    (void)s;
    mtls_identity_process_init();
    issuer_cache = mtls_issuer_cache_create(pchild, MTLS_ISSUER_CACHE_ENTRIES);
#if APR_HAS_THREADS
    if (apr_thread_mutex_create(&scratch_mutex, APR_THREAD_MUTEX_DEFAULT,
                                pchild) != APR_SUCCESS)
        scratch_mutex = NULL;
    else
#endif
    {
        scratch_ctx = SSL_CTX_new(TLS_server_method());
        scratch = scratch_ctx ? SSL_new(scratch_ctx) : NULL;
    }
    apr_pool_cleanup_register(pchild, NULL, child_gone, apr_pool_cleanup_null);
}

mtls_issuer_cache_t *mtls_ssl_issuer_cache(void)
{
    return issuer_cache;
}

int mtls_ssl_on(conn_rec *c)
{
    return ap_ssl_conn_is_ssl(c);
}

X509_STORE *mtls_ssl_trust_store(SSL *ssl)
{
    return SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
}

/* The verify result stored in the TLS session. OpenSSL sets it with the
 * peer certificate in the handshake that delivered that certificate,
 * serialises it with the session (shmcb, tickets) and restores it on
 * resumption, in any process. The SSL's own value cannot be trusted:
 * mod_ssl's access hook resets it to X509_V_OK on every TLS 1.2 request
 * where a verify mode applies, and on a resumed session its verify
 * callback (which marks GENEROUS) never runs. OpenSSL has no getter for
 * the session's value, but SSL_set_session copies it into an SSL: a
 * scratch SSL that never handshakes. In its "before" state
 * SSL_set_session never touches a session cache (ssl_clear_bad_session
 * acts only on an SSL past its handshake); it takes a reference to the
 * session and copies its verify_result. One scratch SSL per process,
 * under a mutex, and the session handed back at once; before child_init
 * (or if it failed) one per call. */
static long session_verify_result(SSL *ssl)
{
    SSL_SESSION *sess = SSL_get_session(ssl);
    SSL *own;
    long v = X509_V_ERR_UNSPECIFIED;

    if (sess == NULL)
        return v;
#if APR_HAS_THREADS
    if (scratch && scratch_mutex &&
        apr_thread_mutex_lock(scratch_mutex) == APR_SUCCESS) {
#else
    if (scratch) {
#endif
        SSL_set_verify_result(scratch, X509_V_ERR_UNSPECIFIED);
        if (SSL_set_session(scratch, sess))
            v = SSL_get_verify_result(scratch);
        SSL_set_session(scratch, NULL);
#if APR_HAS_THREADS
        apr_thread_mutex_unlock(scratch_mutex);
#endif
        return v;
    }
    own = SSL_new(SSL_get_SSL_CTX(ssl));
    if (own == NULL)
        return X509_V_ERR_OUT_OF_MEM;
    if (SSL_set_session(own, sess))
        v = SSL_get_verify_result(own);
    SSL_free(own);
    return v;
}

/* Why the certificate does not count as verified, or NULL. All three
 * must agree: mod_ssl's SSL_CLIENT_VERIFY (it alone knows GENEROUS from
 * a handshake on this connection), the session's stored result (it alone
 * survives resumption), and the SSL's live result (renegotiation). */
const char *mtls_ssl_unverified(apr_pool_t *p, request_rec *r, conn_rec *c,
                                SSL *ssl, long live)
{
    const char *var =
        ap_ssl_var_lookup(p, r->server, c, NULL, "SSL_CLIENT_VERIFY");
    long stored;

    if (live != X509_V_OK)
        return X509_verify_cert_error_string(live);
    if (var == NULL || *var == '\0')
        return "SSL_CLIENT_VERIFY unset";
    if (strcmp(var, "SUCCESS") != 0)
        return var;
    stored = session_verify_result(ssl);
    if (stored != X509_V_OK)
        return apr_pstrcat(p, X509_verify_cert_error_string(stored),
                           " (the TLS session's verify result)", NULL);
    return NULL;
}
