/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls_env: the client identity of an admitted request, as environment
 * variables for mod_headers, mod_log_config, mod_rewrite, CGI and
 * mod_proxy (through RequestHeader). */

#ifndef MTLS_ENV_H
#define MTLS_ENV_H

#include "httpd.h"
#include "mtls_rules.h"

/* What mtls_env_set added: one block of names and values, and the rule
 * source. n == 0: nothing. */
typedef struct {
    const char *block;
    apr_size_t size;
    const char *rule;
    int n;
} mtls_env_mark_t;

/* Adds to r->subprocess_env, which holds no MTLS_* variable (the caller
 * removed them), the rule's source and vars (from mtls_env_prepare):
 *   MTLS_AUTHZ_RULE            "file:line" of the rule that admitted r
 *   MTLS_CLIENT_SUBJECT        the subject, RFC 4514
 *   MTLS_CLIENT_CERT_SHA256    the certificate's fingerprint, lowercase hex
 *   MTLS_CLIENT_ISSUER_SHA256  the trusted CA that signed it, if known
 *   MTLS_CLIENT_SAN_<T>_<n>    T = DNS, EMAIL, URI, IP; n from 0, in the
 *                              certificate's order
 * Values with control characters, NUL bytes or non-ASCII bytes are left
 * out: they could split a header line when forwarded. */
void mtls_env_set(request_rec *r, const mtls_rule_t *rule,
                  const apr_table_t *vars, mtls_env_mark_t *mark);

/* Are r's MTLS_* variables exactly what mark recorded (none if n == 0),
 * names and values, with nothing changed or added since? */
int mtls_env_intact(const request_rec *r, const mtls_env_mark_t *mark);

/* Removes from r->subprocess_env every variable whose name starts with
 * MTLS_ (apr tables compare names case-insensitively, and so do %{...}e
 * lookups) that is not what mark recorded (mark NULL: all of them). The
 * namespace is this module's alone, whatever set it. A variable of that
 * name set by someone else goes entirely, this module's value too. */
void mtls_env_scrub(request_rec *r, const mtls_env_mark_t *mark);

/* Adds again what mark recorded (after a scrub). */
void mtls_env_restore(request_rec *r, const mtls_env_mark_t *mark);

/* The identity's variables (all but MTLS_AUTHZ_RULE), in p. */
apr_table_t *mtls_env_prepare(apr_pool_t *p, const mtls_identity_t *id);

/* One of the variables above, by name (case-insensitive), in p; rule is
 * MTLS_AUTHZ_RULE's value. NULL if id has no such variable. */
const char *mtls_env_var(apr_pool_t *p, const mtls_identity_t *id,
                         const char *rule, const char *name);

#endif
