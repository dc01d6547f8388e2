/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls_policy: one decision from a scope's deny rules and allow rules,
 * and its reason as the log line and the rule tool say it. Pure APR +
 * OpenSSL, no httpd: the server and mtls-authz-rule --check share it. */

#ifndef MTLS_POLICY_H
#define MTLS_POLICY_H

#include "mtls_rules.h"

/* Deny rules first: the first of denies (n_denies sets of MTLSDeny
 * rules, in order) that matches id at now refuses it (MTLS_MISS_DENIED,
 * m->near the deny rule). Otherwise the allow rules decide; allow NULL
 * admits nobody (MTLS_MISS_NO_RULE). */
const mtls_rule_t *mtls_policy_match(const mtls_ruleset_t *allow,
                                     const mtls_ruleset_t *const *denies,
                                     int n_denies, const mtls_identity_t *id,
                                     apr_time_t now, mtls_trace_fn *trace,
                                     void *baton, mtls_match_t *m);

/* Why m admits nobody, in p: "denied by <source>", "rule <source>
 * expired at <time>", "rule <source> not yet valid until <time>",
 * "issuer not allowed" or "no rule matched". */
const char *mtls_policy_reason(apr_pool_t *p, const mtls_match_t *m);

#endif
