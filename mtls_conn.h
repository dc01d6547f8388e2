/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls_conn: the connection's SSL (recorded by mod_ssl's pre_handshake
 * hook) and the client identity extracted from it once per certificate. */

#ifndef MTLS_CONN_H
#define MTLS_CONN_H

#include "httpd.h"
#include "mtls_identity.h"
#include "mtls_ssl.h"

typedef enum {
    MTLS_CONN_VERIFIED = 0,
    MTLS_CONN_NO_TLS, /* plain HTTP, or TLS not from mod_ssl */
    MTLS_CONN_NO_CERT,
    MTLS_CONN_UNVERIFIED, /* the handle says why; its identity is partial */
    MTLS_CONN_ERROR       /* out of memory or locks */
} mtls_conn_status_e;

/* One extraction: the certificate a handshake delivered, whether it was
 * verified, and its identity. Immutable once built; reference-counted,
 * so that a renegotiation can replace the connection's certificate while
 * a request still holds the one it was decided for. */
typedef struct mtls_conn_id mtls_conn_id_t;
struct mtls_conn_id {
    const mtls_identity_t *id;
    const char *unverified; /* NULL if verified, else why not */
    const apr_table_t *env; /* its variables (mtls_env.c), if verified */
    apr_pool_t *pool;       /* holds id; destroyed with the last reference */
    apr_uint32_t refs;
};

int mtls_pre_handshake(conn_rec *c, SSL *ssl, int is_proxy);

/* The client identity on r's connection now. For VERIFIED and UNVERIFIED
 * *held is the handle, valid for r's whole life: if it is not already
 * *held, a reference is taken and released with r->pool, and *held is
 * set to it. For the other states *held is left alone. */
mtls_conn_status_e mtls_conn_identity(request_rec *r,
                                      const mtls_conn_id_t **held);

#endif
