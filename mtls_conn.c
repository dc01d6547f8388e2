/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* The client identity of a connection: one reference-counted handle per
 * certificate a handshake delivered, cached on the connection. See
 * mtls_conn.h. */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_atomic.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"
#include <string.h>

#include "mtls_conf.h"
#include "mtls_conn.h"
#include "mtls_ssl.h"

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
    mtls_conn_memo_t memo; /* for cur; cleared when cur is replaced */
    void *seen;            /* mtls_stats' record of cur_cert: ends with it */
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

static mtls_conn_seen_end_fn *seen_end;

void mtls_conn_on_seen_end(mtls_conn_seen_end_fn *fn)
{
    seen_end = fn;
}

/* The end of cur's record: the connection ends or cur is replaced. */
static void seen_done(mtls_conn_t *cc)
{
    if (cc->seen && seen_end)
        seen_end(cc->seen);
    cc->seen = NULL;
}

static apr_status_t conn_cleanup(void *data)
{
    mtls_conn_t *cc = data;
    seen_done(cc);
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

/* ---- extraction --------------------------------------------------------- */

static const char *issuers_from_text(mtls_issuers_from_e from)
{
    switch (from) {
    case MTLS_ISSUERS_CHAIN:
        return "the handshake's verified chain";
    case MTLS_ISSUERS_CACHE:
        return "the process's issuer cache";
    case MTLS_ISSUERS_STORE:
        return "the trust store";
    default:
        return "nowhere";
    }
}

/* A new handle (one reference) for peer. The verification result is read
 * first: an unverified certificate only gets its subject read, for the
 * log, so whoever sends one cannot make the server do more work. */
static mtls_conn_id_t *extract(request_rec *r, mtls_conn_t *cc, conn_rec *tls_c,
                               X509 *peer, long live)
{
    apr_pool_t *p;
    mtls_conn_id_t *h;
    mtls_identity_t *id;
    X509_STORE *store = mtls_ssl_trust_store(cc->ssl);
    mtls_issuer_hint_t hint = {NULL, NULL, 0};

    if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS)
        return NULL;
    h = apr_pcalloc(p, sizeof(*h));
    h->pool = p;
    h->refs = 1;
    h->unverified = mtls_ssl_unverified(p, r, tls_c, cc->ssl, live);
    if (h->unverified == NULL) {
        hint.issuer_fp = mtls_ssl_chain_issuer(cc->ssl, peer, store);
        hint.cache = mtls_ssl_issuer_cache();
        hint.no_cert_key = !mtls_conf_cert_pins();
    }
    id = mtls_identity_build_ex(p, peer, store, h->unverified == NULL, &hint);
    h->id = id;
    cc->extractions++;
    if (APLOGrdebug(r)) {
        ap_log_rerror(
            APLOG_MARK, APLOG_DEBUG, 0, r,
            "identity extracted (%lu on this connection): subject "
            "\"%s\", %d trusted issuer(s) from %s, %d key(s), %s%s",
            cc->extractions,
            ap_escape_logitem(r->pool, mtls_identity_subject_text(r->pool, id)),
            id->n_issuers, issuers_from_text(id->issuers_from), id->keys->nelts,
            h->unverified ? "not verified: " : "verified",
            h->unverified ? ap_escape_logitem(r->pool, h->unverified) : "");
        if (id->san_malformed)
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                          "the subjectAltName extension is "
                          "malformed or repeated: no SAN rule can match");
    }
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
    /* An .htaccess file read since may pin certificates: then the
     * identity needs its certificate's digest too. */
    if (cc->cur == NULL || cc->cur_cert != peer || cc->cur_verr != live ||
        (cc->cur->id->full && !cc->cur->id->has_cert_fp &&
         mtls_conf_cert_pins())) {
        mtls_conn_id_t *h = extract(r, cc, tls_c, peer, live);
        if (h == NULL)
            return NULL;
        handle_release(cc->cur);
        cc->cur = h;
        memset(&cc->memo, 0, sizeof(cc->memo));
        /* The record is the certificate's: a new handle for the same one
         * (a cert= pin read since, on HTTP/2 too) keeps it, as streams on
         * other threads may be using it. */
        if (cc->cur_cert != peer)
            seen_done(cc);
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
    if (cc == NULL || cc->ssl == NULL || !mtls_ssl_on(tls_c))
        return MTLS_CONN_NO_TLS;
    peer = SSL_get0_peer_certificate(cc->ssl);
    if (peer == NULL)
        return MTLS_CONN_NO_CERT;
    live = SSL_get_verify_result(cc->ssl);

    /* Streams of one h2 connection run in parallel threads. h2 allows
     * neither renegotiation nor post-handshake auth, so the handle never
     * changes once made; the lock is for making it. */
#if APR_HAS_THREADS
    if (c->master) {
        if (cc->mutex == NULL)
            return MTLS_CONN_ERROR;
        apr_thread_mutex_lock(cc->mutex);
    }
#endif
    h = current(r, cc, tls_c, peer, live);
    if (h && h != *held)
        apr_atomic_inc32(&h->refs);
#if APR_HAS_THREADS
    if (c->master)
        apr_thread_mutex_unlock(cc->mutex);
#endif
    if (h == NULL)
        return MTLS_CONN_ERROR;
    if (h != *held) {
        /* r's own reference, for r's whole life */
        handle_pin(h, r->pool);
        *held = h;
    }
    return h->unverified ? MTLS_CONN_UNVERIFIED : MTLS_CONN_VERIFIED;
}

int mtls_conn_still(request_rec *r, const mtls_conn_id_t *held)
{
    conn_rec *c = r->connection;
    const mtls_conn_t *cc;

    /* h2 allows no renegotiation: a stream's handle never changes. */
    if (c->master)
        return held != NULL;
    cc = conn_get(c);
    return cc && cc->ssl && held && cc->cur == held &&
           SSL_get0_peer_certificate(cc->ssl) == cc->cur_cert &&
           SSL_get_verify_result(cc->ssl) == cc->cur_verr;
}

STACK_OF(X509) *
    mtls_conn_verified_chain(request_rec *r, const mtls_conn_id_t *held)
{
    conn_rec *c = r->connection;
    const mtls_conn_t *cc = conn_get(c->master ? c->master : c);
    STACK_OF(X509) * chain;

    if (cc == NULL || cc->ssl == NULL || held == NULL || held->unverified ||
        !mtls_conn_still(r, held))
        return NULL;
    /* chain[0] is the peer object of the handshake that built it (see
     * mtls_ssl_chain_issuer). */
    chain = SSL_get0_verified_chain(cc->ssl);
    if (chain == NULL || sk_X509_num(chain) < 1 ||
        sk_X509_value(chain, 0) != held->id->cert)
        return NULL;
    return chain;
}

mtls_conn_memo_t *mtls_conn_memo(request_rec *r, const mtls_conn_id_t *held)
{
    mtls_conn_t *cc;
    if (r->connection->master)
        return NULL;
    cc = conn_get(r->connection);
    return cc && cc->cur == held ? &cc->memo : NULL;
}

void **mtls_conn_seen(request_rec *r, const mtls_conn_id_t *held)
{
    conn_rec *c = r->connection->master ? r->connection->master : r->connection;
    mtls_conn_t *cc = conn_get(c);
    if (cc == NULL || held == NULL || cc->cur != held)
        return NULL;
    return &cc->seen;
}
