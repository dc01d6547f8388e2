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

/* Is held still the identity on r's connection, with the same certificate
 * and verify result? Cheaper than mtls_conn_identity, for re-checks
 * within a request that already holds it. */
int mtls_conn_still(request_rec *r, const mtls_conn_id_t *held);

/* The chain OpenSSL built and verified, leaf first, in the handshake
 * that delivered held's certificate on r's connection; NULL where held
 * is not verified or no longer the connection's, or where that chain is
 * not known: a resumed session has none, and an abbreviated
 * renegotiation keeps an older handshake's (whose leaf is another
 * object). Owned by the SSL; never what the client merely sent. */
STACK_OF(X509) *
    mtls_conn_verified_chain(request_rec *r, const mtls_conn_id_t *held);

/* One decision remembered per connection, so that the next request on
 * it with the same rules costs a comparison.
 * - Keyed on: the allow rules and the deny rules (which live as long as
 *   the configuration, and so the connection), the connection's current
 *   handle, and a span of time in which no time-boxed rule of them starts
 *   or ends.
 * - Invalidated by: the handle's replacement (which clears it); a request
 *   time outside the span.
 * - Changed by: the thread serving the connection, never for HTTP/2
 *   streams, which share the connection across threads. */
#define MTLS_MEMO_DENIES 4
typedef struct {
    const void *rules; /* NULL: empty */
    const void *denies[MTLS_MEMO_DENIES];
    int n_denies;
    apr_time_t from, until;         /* it holds for from <= t < until */
    const struct mtls_rule_t *rule; /* what admitted, or NULL */
    int miss;                       /* else why not */
    const struct mtls_rule_t *near; /* and which rule it names */
} mtls_conn_memo_t;

/* r's connection's memo, valid for held, or NULL where there is none
 * (HTTP/2, or held is no longer the connection's current handle). */
mtls_conn_memo_t *mtls_conn_memo(request_rec *r, const mtls_conn_id_t *held);

/* Where mtls_stats keeps its record of held's admissions on r's
 * connection (the one that holds the SSL, for HTTP/2 the master); NULL
 * where held is no longer the connection's current handle.
 * - Keyed on: the connection's certificate; found through its current
 *   handle.
 * - Invalidated by: another certificate on the connection (which ends
 *   it); a new handle for the same certificate keeps it.
 * - Changed by: mtls_stats, with an atomic compare-and-swap (HTTP/2
 *   streams share it across threads). */
void **mtls_conn_seen(request_rec *r, const mtls_conn_id_t *held);
/* What ends such a record (it is the connection's until then). */
typedef void mtls_conn_seen_end_fn(void *seen);
void mtls_conn_on_seen_end(mtls_conn_seen_end_fn *fn);

#endif
