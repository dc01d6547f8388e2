/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls_access: the access decision, its log line, and what it tells
 * other modules about an admitted request. */

#ifndef MTLS_ACCESS_H
#define MTLS_ACCESS_H

#include "httpd.h"
#include "http_config.h"
#include "mod_auth.h"
#include "ap_expr.h"

int mtls_access_checker(request_rec *r);
int mtls_access_checker_ex(request_rec *r);
int mtls_fixups(request_rec *r);
int mtls_fixups_recheck(request_rec *r);
int mtls_log_transaction(request_rec *r);

/* The "Require mtls" authorization provider. */
authz_status mtls_require_check(request_rec *r, const char *require_line,
                                const void *parsed);
const char *mtls_require_parse(cmd_parms *cmd, const char *require_line,
                               const void **parsed);

/* The MTLS_* variables on demand: the ssl_var_lookup hook, and ap_expr's
 * %{MTLS_...}. */
const char *mtls_var_lookup(apr_pool_t *p, server_rec *s, conn_rec *c,
                            request_rec *r, const char *name);
int mtls_expr_lookup(ap_expr_lookup_parms *parms);

const char *mtls_authz_matched_rule(request_rec *r);
const char *mtls_authz_client_subject(request_rec *r);

#endif
