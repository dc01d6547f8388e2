/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* What mod_ssl and OpenSSL's SSL tell this module. See mtls_ssl.h. */

#include "httpd.h"
#include "http_config.h"
#include "http_ssl.h"
#include "apr_hash.h"
#include "apr_strings.h"
#include <string.h>

#include "mtls_conf.h"
#include "mtls_ssl.h"

int mtls_ssl_init_server(server_rec *s, apr_pool_t *p, int is_proxy,
                         SSL_CTX *ctx)
{
    apr_hash_t *trusted;
    STACK_OF(X509_OBJECT) * objs;
    int i;

    if (is_proxy || ctx == NULL)
        return DECLINED;
    trusted = apr_hash_make(p);
    objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
    for (i = 0; i < sk_X509_OBJECT_num(objs); i++) {
        X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        unsigned char *fp = apr_palloc(p, MTLS_FP_LEN);
        unsigned int n = 0;
        if (ca && X509_digest(ca, EVP_sha256(), fp, &n) && n == MTLS_FP_LEN)
            apr_hash_set(trusted, fp, MTLS_FP_LEN, "");
    }
    mtls_conf_set_trusted(s, trusted);
    return DECLINED;
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
