/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_ssl.h"
#include <string.h>

#include "mtls_conf.h"
#include "mtls_conn.h"

APLOG_USE_MODULE(mtls_authz);

/* Per connection. On an HTTP/2 stream the SSL belongs to the master
 * connection, while the identity is cached on the stream's own
 * connection: streams run in parallel and must not share a cache. */
typedef struct {
    SSL *ssl;              /* from pre_handshake; master only */
    apr_pool_t *pool;      /* holds id; cleared when the cert changes */
    const X509 *seen_cert; /* id holds a reference, so no ABA */
    long seen_verr;
    const mtls_identity_t *id;
    const char *verify; /* SSL_CLIENT_VERIFY when id was built */
    unsigned long extractions;
} mtls_conn_t;

static mtls_conn_t *conn_get(conn_rec *c, int create)
{
    mtls_conn_t *cc = ap_get_module_config(c->conn_config, &mtls_authz_module);
    if (cc == NULL && create) {
        cc = apr_pcalloc(c->pool, sizeof(*cc));
        ap_set_module_config(c->conn_config, &mtls_authz_module, cc);
    }
    return cc;
}

int mtls_pre_handshake(conn_rec *c, SSL *ssl, int is_proxy)
{
    if (!is_proxy)
        conn_get(c, 1)->ssl = ssl;
    return DECLINED;
}

static void extract(request_rec *r, mtls_conn_t *cc, conn_rec *tls_c, SSL *ssl,
                    X509 *peer, long verr)
{
    if (cc->pool == NULL)
        apr_pool_create(&cc->pool, r->connection->pool);
    else
        apr_pool_clear(cc->pool);
    cc->id = mtls_identity_build(cc->pool, peer,
                                 SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl)));
    cc->verify = ap_ssl_var_lookup(cc->pool, r->server, tls_c, NULL,
                                   "SSL_CLIENT_VERIFY");
    cc->seen_cert = peer;
    cc->seen_verr = verr;
    cc->extractions++;
    ap_log_rerror(
        APLOG_MARK, APLOG_DEBUG, 0, r,
        "mtls_authz: identity extracted (%lu on this connection): "
        "subject \"%s\", %d trusted issuer(s), %d key(s), verify %s",
        cc->extractions, ap_escape_logitem(r->pool, cc->id->subject_text),
        cc->id->n_issuers, cc->id->keys->nelts, cc->verify ? cc->verify : "-");
}

mtls_conn_status_e mtls_conn_identity(request_rec *r,
                                      const mtls_identity_t **id,
                                      const char **detail)
{
    conn_rec *c = r->connection;
    conn_rec *tls_c = c->master ? c->master : c;
    mtls_conn_t *tc = conn_get(tls_c, 0), *cc;
    X509 *peer;
    long verr;

    *id = NULL;
    *detail = NULL;
    if (tc == NULL || tc->ssl == NULL)
        return MTLS_CONN_NO_TLS;
    peer = SSL_get0_peer_certificate(tc->ssl);
    if (peer == NULL)
        return MTLS_CONN_NO_CERT;
    verr = SSL_get_verify_result(tc->ssl);

    /* Redo only when renegotiation or post-handshake auth changed the
     * certificate or its verification result. */
    cc = conn_get(c, 1);
    if (cc->id == NULL || peer != cc->seen_cert || verr != cc->seen_verr)
        extract(r, cc, tls_c, tc->ssl, peer, verr);
    *id = cc->id;

    if (verr != X509_V_OK) {
        *detail = X509_verify_cert_error_string(verr);
        return MTLS_CONN_UNVERIFIED;
    }
    if (cc->verify == NULL || strcmp(cc->verify, "SUCCESS") != 0) {
        *detail = cc->verify ? cc->verify : "SSL_CLIENT_VERIFY is not set";
        return MTLS_CONN_UNVERIFIED;
    }
    return MTLS_CONN_VERIFIED;
}

const mtls_identity_t *mtls_conn_cached_identity(conn_rec *c)
{
    const mtls_conn_t *cc = conn_get(c, 0);
    return cc ? cc->id : NULL;
}
