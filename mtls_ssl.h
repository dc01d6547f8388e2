/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls_ssl: what this module learns from mod_ssl and from OpenSSL's SSL
 * of a connection: mod_ssl's optional hooks, the trusted CAs of each
 * SSL host, and whether a client certificate counts as verified. */

#ifndef MTLS_SSL_H
#define MTLS_SSL_H

#include "httpd.h"
#include <openssl/ssl.h>

#if defined(__has_include)
#if __has_include("mod_ssl_openssl.h")
#include "mod_ssl_openssl.h"
#define MTLS_HAVE_MOD_SSL_OPENSSL_H 1
#endif
#endif

#ifndef MTLS_HAVE_MOD_SSL_OPENSSL_H
/* Debian's apache2-dev lacks mod_ssl_openssl.h, but its mod_ssl runs
 * these hooks. Optional hooks are found by name, so these declarations
 * must match mod_ssl_openssl.h exactly. */
typedef int ssl_HOOK_pre_handshake_t(conn_rec *c, SSL *ssl, int is_proxy);
typedef int ssl_HOOK_init_server_t(server_rec *s, apr_pool_t *p, int is_proxy,
                                   SSL_CTX *ctx);
#endif

#include "mtls_identity.h"

/* mod_ssl's init_server hook: records the fingerprints of the CAs that
 * s trusts, for the startup checks, and by certificate object, for
 * mtls_ssl_chain_issuer. */
int mtls_ssl_init_server(server_rec *s, apr_pool_t *p, int is_proxy,
                         SSL_CTX *ctx);

/* httpd's child_init hook: what each process keeps for the life of the
 * child (which serves one configuration generation): the issuer cache
 * and the scratch SSL that reads a session's verify result. */
void mtls_ssl_child_init(apr_pool_t *pchild, server_rec *s);

/* The process's issuer cache, or NULL (before child_init). */
mtls_issuer_cache_t *mtls_ssl_issuer_cache(void);

/* The SHA-256 of the one trusted certificate that issued peer, when this
 * connection's own handshake established it, or NULL. Call only for a
 * certificate that counts as verified (mtls_ssl_unverified). */
const unsigned char *mtls_ssl_chain_issuer(SSL *ssl, X509 *peer,
                                           X509_STORE *store);

/* Is TLS from mod_ssl still on for c (the connection holding the SSL)? */
int mtls_ssl_on(conn_rec *c);

/* The trust store that ssl's client certificates are verified against. */
X509_STORE *mtls_ssl_trust_store(SSL *ssl);

/* Why the peer certificate of ssl (on connection c, for request r) does
 * not count as verified, in p, or NULL. live is SSL_get_verify_result. */
const char *mtls_ssl_unverified(apr_pool_t *p, request_rec *r, conn_rec *c,
                                SSL *ssl, long live);

#endif
