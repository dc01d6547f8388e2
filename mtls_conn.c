/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_ssl.h"
#include "apr_thread_mutex.h"
#include <string.h>

#include "mtls_conf.h"
#include "mtls_conn.h"
#include "mtls_env.h"

APLOG_USE_MODULE(mtls_authz);

/* Per TLS connection, on the connection that holds the SSL: for HTTP/2
 * that is the master connection, shared by streams running in parallel
 * threads, so there the cache is filled under the connection's mutex and
 * never changed afterwards (h2 allows neither renegotiation nor
 * post-handshake auth). The identity lives in its own unmanaged pool: a
 * stream's thread must not allocate from the master connection's pool. */
typedef struct {
    SSL *ssl;              /* from pre_handshake */
    apr_pool_t *pool;      /* holds id; replaced when the cert changes */
    const X509 *seen_cert; /* id holds a reference, so no ABA */
    long seen_verr;
    const mtls_identity_t *id;
    const char *unverified; /* NULL if verified, else why not */
    unsigned long extractions;
#if APR_HAS_THREADS
    apr_thread_mutex_t *mutex; /* created on the master's own thread */
#endif
} mtls_conn_t;

static mtls_conn_t *conn_get(conn_rec *c)
{
    return ap_get_module_config(c->conn_config, &mtls_authz_module);
}

static apr_status_t conn_cleanup(void *data)
{
    mtls_conn_t *cc = data;
    if (cc->pool)
        apr_pool_destroy(cc->pool);
    cc->pool = NULL;
    cc->id = NULL;
    return APR_SUCCESS;
}

int mtls_pre_handshake(conn_rec *c, SSL *ssl, int is_proxy)
{
    mtls_conn_t *cc;
    if (is_proxy)
        return DECLINED;
    cc = apr_pcalloc(c->pool, sizeof(*cc));
    cc->ssl = ssl;
#if APR_HAS_THREADS
    if (apr_thread_mutex_create(&cc->mutex, APR_THREAD_MUTEX_DEFAULT,
                                c->pool) != APR_SUCCESS)
        cc->mutex = NULL; /* h2 streams are then denied */
#endif
    ap_set_module_config(c->conn_config, &mtls_authz_module, cc);
    apr_pool_cleanup_register(c->pool, cc, conn_cleanup, apr_pool_cleanup_null);
    return DECLINED;
}

/* Fills cc's identity from peer, in p. The verification result is read
 * first: an unverified certificate only gets its subject read, for the
 * log, so whoever sends one cannot make the server do more work. */
static void build(request_rec *r, mtls_conn_t *cc, apr_pool_t *p,
                  conn_rec *tls_c, X509 *peer, long verr)
{
    const char *verify =
        ap_ssl_var_lookup(p, r->server, tls_c, NULL, "SSL_CLIENT_VERIFY");
    mtls_identity_t *id;

    if (verr != X509_V_OK)
        cc->unverified = X509_verify_cert_error_string(verr);
    else if (verify == NULL || strcmp(verify, "SUCCESS") != 0)
        cc->unverified = verify && *verify ? verify : "SSL_CLIENT_VERIFY unset";
    else
        cc->unverified = NULL;
    id = mtls_identity_build(p, peer,
                             SSL_CTX_get_cert_store(SSL_get_SSL_CTX(cc->ssl)),
                             cc->unverified == NULL);
    if (id->full)
        id->env = mtls_env_prepare(p, id);
    cc->id = id;
    cc->seen_cert = peer;
    cc->seen_verr = verr;
    cc->extractions++;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  "mtls_authz: identity extracted (%lu on this connection): "
                  "subject \"%s\", %d trusted issuer(s), %d key(s), %s",
                  cc->extractions,
                  ap_escape_logitem(r->pool, cc->id->subject_text),
                  cc->id->n_issuers, cc->id->keys->nelts,
                  cc->unverified ? "not verified" : "verified");
    if (cc->id->san_malformed)
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "mtls_authz: the subjectAltName extension is "
                      "malformed or repeated: no SAN rule can match");
}

/* Replaces cc's identity; only where no other thread can be reading it.
 * Returns false when no pool could be had. */
static int extract(request_rec *r, mtls_conn_t *cc, conn_rec *tls_c, X509 *peer,
                   long verr)
{
    if (cc->pool)
        apr_pool_destroy(cc->pool);
    cc->id = NULL;
    if (apr_pool_create_unmanaged_ex(&cc->pool, NULL, NULL) != APR_SUCCESS) {
        cc->pool = NULL;
        return 0;
    }
    build(r, cc, cc->pool, tls_c, peer, verr);
    return 1;
}

static int is_current(const mtls_conn_t *cc, const X509 *peer, long verr)
{
    return cc->id && cc->seen_cert == peer && cc->seen_verr == verr;
}

mtls_conn_status_e mtls_conn_identity(request_rec *r,
                                      const mtls_identity_t **id,
                                      const char **detail)
{
    conn_rec *c = r->connection;
    conn_rec *tls_c = c->master ? c->master : c;
    mtls_conn_t *cc = conn_get(tls_c), snap;
    X509 *peer;
    long verr;

    *id = NULL;
    *detail = NULL;
    /* mod_ssl frees the SSL when plain HTTP reaches a TLS port, and still
     * serves the "400 speaking plain HTTP" request (and its ErrorDocument)
     * on that connection: ask mod_ssl whether TLS is still on first. */
    if (cc == NULL || cc->ssl == NULL || !ap_ssl_conn_is_ssl(tls_c))
        return MTLS_CONN_NO_TLS;
    peer = SSL_get0_peer_certificate(cc->ssl);
    if (peer == NULL)
        return MTLS_CONN_NO_CERT;
    verr = SSL_get_verify_result(cc->ssl);

    if (c->master == NULL) {
        /* Redo only when renegotiation or post-handshake auth changed
         * the certificate or its verification result. */
        if (!is_current(cc, peer, verr) && !extract(r, cc, tls_c, peer, verr))
            return MTLS_CONN_ERROR;
        snap = *cc;
    }
    else {
#if APR_HAS_THREADS
        if (cc->mutex == NULL)
            return MTLS_CONN_ERROR;
        apr_thread_mutex_lock(cc->mutex);
#endif
        if (cc->id == NULL)
            extract(r, cc, tls_c, peer, verr);
        snap = *cc;
#if APR_HAS_THREADS
        apr_thread_mutex_unlock(cc->mutex);
#endif
        if (snap.id == NULL)
            return MTLS_CONN_ERROR;
        /* Never expected on h2; then decide for this stream alone. */
        if (!is_current(&snap, peer, verr))
            build(r, &snap, r->pool, tls_c, peer, verr);
    }
    *id = snap.id;
    if (snap.unverified) {
        *detail = snap.unverified;
        return MTLS_CONN_UNVERIFIED;
    }
    return MTLS_CONN_VERIFIED;
}

const mtls_identity_t *mtls_conn_cached_identity(conn_rec *c)
{
    const mtls_conn_t *cc = conn_get(c->master ? c->master : c);
    return cc ? cc->id : NULL;
}
