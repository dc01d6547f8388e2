/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls_headers: MTLSForwardHeaders. The admitted client's certificate as
 * request headers for a proxied backend (RFC 9440's Client-Cert and
 * Client-Cert-Chain, or Envoy's X-Forwarded-Client-Cert), and the
 * removal of every request header that a backend could take for one of
 * them, whoever sent it. */

#ifndef MTLS_HEADERS_H
#define MTLS_HEADERS_H

#include "httpd.h"
#include "mtls_conn.h"

/* The headers this module set in a request: each value it set, by
 * header (Client-Cert, Client-Cert-Chain, X-Forwarded-Client-Cert;
 * NULL: not set), and how many. n == 0: none. */
typedef struct {
    const char *v[3];
    int n;
} mtls_hdr_mark_t;

/* Are these headers the module's in r: is MTLSForwardHeaders rfc9440 or
 * xfcc in effect for r, or for a request whose request headers r shares
 * or copies (the request an internal redirect left, the main request of
 * a subrequest)? */
int mtls_headers_scope(const request_rec *r);

/* httpd's header_parser hook (main requests, internal redirects), which
 * runs once r's configuration is known and before any access check can
 * refuse it: removes the lookalikes where they are the module's, so
 * that no refusal, error document or later phase sees the client's. */
int mtls_headers_early(request_rec *r);

/* Where they are the module's: removes from r->headers_in every header
 * whose name is one of the three, ignoring case, '-' versus '_' and
 * trailing blanks, and such names from the Connection header (mod_proxy
 * drops what it names); then, where h is the identity that admitted r
 * and r's configuration asks for them, sets the headers of its mode.
 * mark records what was set. */
void mtls_headers_settle(request_rec *r, const mtls_conn_id_t *h,
                         mtls_hdr_mark_t *mark);

/* Are the lookalikes in r->headers_in exactly what mark recorded (none
 * where n == 0), and the Connection header free of their names? Costs
 * one look at the configuration where they are not the module's. */
int mtls_headers_intact(const request_rec *r, const mtls_hdr_mark_t *mark);

#endif
