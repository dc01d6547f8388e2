/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_ssl.h"
#include "apr_atomic.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"
#include <string.h>

#include "mtls_conf.h"
#include "mtls_conn.h"
#include "mtls_env.h"

APLOG_USE_MODULE(mtls_authz);

/* Per TLS connection, on the connection that holds the SSL: for HTTP/2
 * that is the master connection, shared by streams running in parallel
 * threads, so there the current handle is read and replaced under the
 * connection's mutex (created on the master's own thread). */
typedef struct {
    SSL *ssl;             /* from pre_handshake */
    mtls_conn_id_t *cur;  /* holds one reference; NULL before the first */
    const X509 *cur_cert; /* cur's certificate (it holds a reference) */
    long cur_verr;        /* SSL_get_verify_result when cur was built */
    unsigned long extractions;
#if APR_HAS_THREADS
    apr_thread_mutex_t *mutex;
#endif
} mtls_conn_t;

static mtls_conn_t *conn_get(conn_rec *c)
{
    return ap_get_module_config(c->conn_config, &mtls_authz_module);
}

/* ---- handles ------------------------------------------------------------ */

static void handle_release(mtls_conn_id_t *h)
{
    if (h && apr_atomic_dec32(&h->refs) == 0)
        apr_pool_destroy(h->pool);
}

static apr_status_t handle_release_cleanup(void *data)
{
    handle_release(data);
    return APR_SUCCESS;
}

/* Gives h's reference to pool p. */
static void handle_pin(mtls_conn_id_t *h, apr_pool_t *p)
{
    apr_pool_cleanup_register(p, h, handle_release_cleanup,
                              apr_pool_cleanup_null);
}

static apr_status_t conn_cleanup(void *data)
{
    mtls_conn_t *cc = data;
    handle_release(cc->cur);
    cc->cur = NULL;
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

/* ---- verification ------------------------------------------------------- */

/* The verify result stored in the TLS session. OpenSSL sets it with the
 * peer certificate in the handshake that delivered that certificate,
 * serialises it with the session (shmcb, tickets) and restores it on
 * resumption, in any process. The SSL's own value cannot be trusted:
 * mod_ssl's access hook resets it to X509_V_OK on every TLS 1.2 request
 * where a verify mode applies, and on a resumed session its verify
 * callback (which marks GENEROUS) never runs. OpenSSL has no getter for
 * the session's value, but SSL_set_session copies it into an SSL: a
 * scratch SSL that never handshakes (freeing it in its "before" state
 * leaves the session cache alone). */
static long session_verify_result(SSL *ssl)
{
    SSL_SESSION *sess = SSL_get_session(ssl);
    SSL *scratch;
    long v = X509_V_ERR_UNSPECIFIED;

    if (sess == NULL)
        return v;
    scratch = SSL_new(SSL_get_SSL_CTX(ssl));
    if (scratch == NULL)
        return X509_V_ERR_OUT_OF_MEM;
    if (SSL_set_session(scratch, sess))
        v = SSL_get_verify_result(scratch);
    SSL_free(scratch);
    return v;
}

/* Why the certificate does not count as verified, or NULL. All three
 * must agree: mod_ssl's SSL_CLIENT_VERIFY (it alone knows GENEROUS from
 * a handshake on this connection), the session's stored result (it alone
 * survives resumption), and the SSL's live result (renegotiation). */
static const char *why_unverified(apr_pool_t *p, request_rec *r,
                                  conn_rec *tls_c, SSL *ssl, long live)
{
    const char *var =
        ap_ssl_var_lookup(p, r->server, tls_c, NULL, "SSL_CLIENT_VERIFY");
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

/* ---- extraction --------------------------------------------------------- */

/* A new handle (one reference) for peer. The verification result is read
 * first: an unverified certificate only gets its subject read, for the
 * log, so whoever sends one cannot make the server do more work. */
static mtls_conn_id_t *extract(request_rec *r, mtls_conn_t *cc, conn_rec *tls_c,
                               X509 *peer, long live)
{
    apr_pool_t *p;
    mtls_conn_id_t *h;
    mtls_identity_t *id;

    if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS)
        return NULL;
    h = apr_pcalloc(p, sizeof(*h));
    h->pool = p;
    h->refs = 1;
    h->unverified = why_unverified(p, r, tls_c, cc->ssl, live);
    id = mtls_identity_build(p, peer,
                             SSL_CTX_get_cert_store(SSL_get_SSL_CTX(cc->ssl)),
                             h->unverified == NULL);
    if (id->full)
        id->env = mtls_env_prepare(p, id);
    h->id = id;
    cc->extractions++;
    ap_log_rerror(
        APLOG_MARK, APLOG_DEBUG, 0, r,
        "identity extracted (%lu on this connection): subject "
        "\"%s\", %d trusted issuer(s), %d key(s), %s%s",
        cc->extractions, ap_escape_logitem(r->pool, id->subject_text),
        id->n_issuers, id->keys->nelts,
        h->unverified ? "not verified: " : "verified",
        h->unverified ? ap_escape_logitem(r->pool, h->unverified) : "");
    if (id->san_malformed)
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "the subjectAltName extension is "
                      "malformed or repeated: no SAN rule can match");
    return h;
}

/* The handle for peer: cc's current one, or a new one that replaces it
 * (cc holds the reference). Returns NULL only without memory.
 * Keyed on the certificate object, which a handshake creates (a
 * renegotiation, a post-handshake authentication and a resumption each
 * decode their own) and cur keeps alive, and on the live verify result,
 * which mod_ssl's quick renegotiation sets without a handshake. */
static mtls_conn_id_t *current(request_rec *r, mtls_conn_t *cc, conn_rec *tls_c,
                               X509 *peer, long live)
{
    if (cc->cur == NULL || cc->cur_cert != peer || cc->cur_verr != live) {
        mtls_conn_id_t *h = extract(r, cc, tls_c, peer, live);
        if (h == NULL)
            return NULL;
        handle_release(cc->cur);
        cc->cur = h;
        cc->cur_cert = peer;
        cc->cur_verr = live;
    }
    return cc->cur;
}

mtls_conn_status_e mtls_conn_identity(request_rec *r,
                                      const mtls_conn_id_t **held)
{
    conn_rec *c = r->connection;
    conn_rec *tls_c = c->master ? c->master : c;
    mtls_conn_t *cc = conn_get(tls_c);
    mtls_conn_id_t *h;
    X509 *peer;
    long live;

    /* mod_ssl frees the SSL when plain HTTP reaches a TLS port, and still
     * serves the "400 speaking plain HTTP" request (and its ErrorDocument)
     * on that connection: ask mod_ssl whether TLS is still on first. */
    if (cc == NULL || cc->ssl == NULL || !ap_ssl_conn_is_ssl(tls_c))
        return MTLS_CONN_NO_TLS;
    peer = SSL_get0_peer_certificate(cc->ssl);
    if (peer == NULL)
        return MTLS_CONN_NO_CERT;
    live = SSL_get_verify_result(cc->ssl);

    if (c->master == NULL) {
        h = current(r, cc, tls_c, peer, live);
        if (h && h != *held)
            apr_atomic_inc32(&h->refs);
    }
    else {
        /* Streams of one h2 connection run in parallel threads. h2 allows
         * neither renegotiation nor post-handshake auth, so the handle
         * never changes once made; the lock is for making it. */
#if APR_HAS_THREADS
        if (cc->mutex == NULL)
            return MTLS_CONN_ERROR;
        apr_thread_mutex_lock(cc->mutex);
#endif
        h = current(r, cc, tls_c, peer, live);
        if (h && h != *held)
            apr_atomic_inc32(&h->refs);
#if APR_HAS_THREADS
        apr_thread_mutex_unlock(cc->mutex);
#endif
    }
    if (h == NULL)
        return MTLS_CONN_ERROR;
    if (h != *held) {
        /* r's own reference, for r's whole life */
        handle_pin(h, r->pool);
        *held = h;
    }
    return h->unverified ? MTLS_CONN_UNVERIFIED : MTLS_CONN_VERIFIED;
}
