/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls_stats: what the decisions were, shared by all child processes.
 *
 * - Counters per rule (admissions, last admission, denials attributed)
 *   and per scope (decisions by outcome and reason) in one shared memory
 *   segment, made in post_config and inherited by the children; atomic
 *   increments, no lock.
 * - The recently seen client certificates in a mod_socache cache,
 *   written once per connection and certificate, never per request.
 * - The expiry watch: a warning when an admitted certificate expires
 *   soon, once per certificate per child per hour. */

#ifndef MTLS_STATS_H
#define MTLS_STATS_H

#include "httpd.h"
#include "http_config.h"
#include "mtls_rules.h"

/* A configuration section with directives of this module: decisions are
 * counted per scope. Made while the configuration is read; its label once
 * it is complete (post_config). */
typedef struct mtls_scope mtls_scope_t;

typedef enum {
    MTLS_OUT_ADMITTED = 0,
    MTLS_OUT_DENIED,
    MTLS_OUT_AUDITED,
    MTLS_OUT_OTHER, /* Require mtls refused, another Require line admitted */
    MTLS_N_OUTCOMES
} mtls_outcome_stat_e;

typedef enum {
    MTLS_WHY_RULE = 0,
    MTLS_WHY_NO_RULE_MATCHED,
    MTLS_WHY_ISSUER,
    MTLS_WHY_EXPIRED,
    MTLS_WHY_NOT_YET,
    MTLS_WHY_DENIED,
    MTLS_WHY_NO_CERT,
    MTLS_WHY_PLAIN_HTTP,
    MTLS_WHY_NOT_VERIFIED,
    MTLS_WHY_NO_RULE_IN_SCOPE,
    MTLS_WHY_HTACCESS,
    MTLS_WHY_NEGATED,
    MTLS_WHY_INTERNAL,
    MTLS_N_WHYS
} mtls_why_e;

const char *mtls_stats_outcome_name(int outcome);
const char *mtls_stats_why_name(int why);

/* ---- configuration time ------------------------------------------------- */

void mtls_stats_pre_config(apr_pool_t *pconf);
/* The scope of the section cmd is in, made once per section. */
mtls_scope_t *mtls_stats_scope(cmd_parms *cmd);
/* Counts rs's rules under scope (NULL: the catch-all scope). */
void mtls_stats_add_ruleset(const mtls_ruleset_t *rs, mtls_scope_t *scope);
/* MTLSAuthzSeenCache */
const char *mtls_stats_set_cache(cmd_parms *cmd, void *dummy, const char *arg);
/* MTLSAuthzExpiryWarning */
const char *mtls_stats_set_expiry(cmd_parms *cmd, void *dummy, const char *arg);
int mtls_stats_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);
void mtls_stats_child_init(apr_pool_t *pchild, server_rec *s);

/* ---- request time -------------------------------------------------------- */

void mtls_stats_decision(const mtls_scope_t *scope, mtls_outcome_stat_e o,
                         mtls_why_e why);
/* Does mtls_stats_admitted want the connection's seen slot: is the
 * seen cache or the expiry watch on? */
int mtls_stats_watching(void);
/* rule admitted r, for the certificate of id: counts it, and once per
 * connection and certificate (seen: the connection's slot for it, see
 * mtls_conn_seen; NULL: none) records the client and watches its expiry. */
void mtls_stats_admitted(request_rec *r, const mtls_rule_t *rule,
                         const mtls_identity_t *id, void **seen);
/* The end of a connection's record: its last count goes to the cache. */
void mtls_stats_seen_end(void *seen);
/* A refusal the log line attributes to rule. */
void mtls_stats_refused_by(const mtls_rule_t *rule);

/* ---- the status page ---------------------------------------------------- */

typedef struct {
    const mtls_rule_t *rule;
    /* Its file:line, and "#2", "#3" ... for the second and later rules of
     * one directive (MTLSAllowSubject "a" "b"): unique in its scope. */
    const char *name;
    const char *scope;
    apr_uint64_t admissions, denials;
    apr_time_t last, since; /* last 0: never */
} mtls_stats_rule_t;

typedef struct {
    const char *subject, *issuer, *rule;
    unsigned char issuer_fp[MTLS_FP_LEN], cert_fp[MTLS_FP_LEN];
    apr_time_t not_after, last_seen;
    apr_uint64_t requests;
} mtls_stats_client_t;

typedef struct {
    int ready; /* the counters exist (not during httpd -t) */
    apr_time_t started, restarted;
    const char *cache; /* the seen cache's provider, or NULL: off */
} mtls_stats_info_t;

void mtls_stats_info(mtls_stats_info_t *info);
typedef int mtls_stats_rule_fn(void *baton, const mtls_stats_rule_t *rule);
void mtls_stats_each_rule(apr_pool_t *p, mtls_stats_rule_fn *fn, void *baton);
typedef void mtls_stats_decision_fn(void *baton, const char *scope, int outcome,
                                    int why, apr_uint64_t n);
void mtls_stats_each_decision(mtls_stats_decision_fn *fn, void *baton);
/* The recently seen clients, soonest expiry first, in p. */
apr_array_header_t *mtls_stats_clients(request_rec *r, apr_pool_t *p);

#endif
