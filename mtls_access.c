/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_request.h"
#include "apr_lib.h"
#include "apr_strings.h"

#include "mtls_access.h"
#include "mtls_conf.h"
#include "mtls_conn.h"
#include "mtls_env.h"

APLOG_USE_MODULE(mtls_authz);

/* The decision for one request, in r->request_config. */
typedef struct {
    request_rec *owner;        /* the request it was taken for */
    int denied;                /* MTLSAuthz On answered 403 */
    int would_deny;            /* the rules do not admit the client */
    int audit;                 /* ... but MTLSAuthzMode Audit let it pass */
    int pending;               /* Require mtls: the denial is not logged yet */
    const char *line;          /* if would_deny: the denial, for the log */
    const mtls_rule_t *rule;   /* what admitted it */
    const mtls_identity_t *id; /* whom it admitted */
} mtls_req_t;

/* Recorded by the fixups hook on a request that passed the access phase
 * with no decision of its own (see admitting_rule). Never written. */
static mtls_req_t passed_unchecked;

static const char *issuer_text(request_rec *r, const mtls_identity_t *id)
{
    if (id == NULL)
        return "-";
    if (!id->full)
        return "not checked (certificate not verified)";
    if (id->n_issuers == 0)
        return "unknown (not in the trust store)";
    return apr_pstrcat(r->pool, "sha256:", mtls_fp_hex(r->pool, id->issuer_fps),
                       NULL);
}

/* Records why the rules do not admit r: the text of the one line logged
 * per denial, in which every string that the client chose is escaped so
 * that it cannot forge log lines. */
static void refuse(request_rec *r, mtls_req_t *rq, const char *reason,
                   const mtls_identity_t *id)
{
    rq->would_deny = 1;
    rq->line =
        apr_psprintf(r->pool, "%s: %s; subject \"%s\", issuer %s",
                     ap_escape_logitem(r->pool, r->uri), reason,
                     id ? ap_escape_logitem(r->pool, id->subject_text) : "-",
                     issuer_text(r, id));
}

/* The denial line, at error level like AH01630. In Audit mode the same
 * line, marked, at warning level: nothing was denied. */
static void log_denial(request_rec *r, const mtls_req_t *rq, int level)
{
    if (rq->audit)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "mtls_authz: AUDIT (admitted): client denied by server "
                      "configuration: %s",
                      rq->line);
    else
        ap_log_rerror(APLOG_MARK, level, 0, r,
                      "mtls_authz: client denied by server configuration: %s",
                      rq->line);
}

static void trace_rule(void *baton, const mtls_rule_t *rule, mtls_miss_e m)
{
    request_rec *r = baton;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "mtls_authz: rule %s: %s",
                  rule->source,
                  m == MTLS_MISS_NONE     ? "matched"
                  : m == MTLS_MISS_ISSUER ? "issuer not allowed"
                                          : "no match");
}

/* Matches r's client against dc's rules: sets rq->rule and rq->id, or
 * calls refuse(). no_rule is the reason when the scope has no rule. */
static void evaluate(request_rec *r, const mtls_dir_conf_t *dc, mtls_req_t *rq,
                     const char *no_rule)
{
    const mtls_identity_t *id;
    const char *detail;
    const mtls_rule_t *rule;
    mtls_miss_e miss;

    switch (mtls_conn_identity(r, &id, &detail)) {
    case MTLS_CONN_NO_TLS:
        refuse(r, rq, "no certificate (plain HTTP)", NULL);
        return;
    case MTLS_CONN_NO_CERT:
        refuse(r, rq, "no certificate", NULL);
        return;
    case MTLS_CONN_UNVERIFIED:
        refuse(r, rq,
               apr_pstrcat(r->pool, "not verified: ",
                           ap_escape_logitem(r->pool, detail), NULL),
               id);
        return;
    case MTLS_CONN_ERROR:
        refuse(r, rq, "internal error (out of memory)", NULL);
        return;
    case MTLS_CONN_VERIFIED:
        break;
    }
    if (mtls_ruleset_is_empty(dc->rules)) {
        refuse(r, rq, no_rule, id);
        return;
    }
    rule = mtls_ruleset_match(dc->rules, id, APLOGrdebug(r) ? trace_rule : NULL,
                              r, &miss);
    if (rule == NULL) {
        refuse(r, rq,
               miss == MTLS_MISS_ISSUER ? "issuer not allowed"
                                        : "no rule matched",
               id);
        return;
    }
    rq->rule = rule;
    rq->id = id;
}

static mtls_req_t *req_get(request_rec *r)
{
    return ap_get_module_config(r->request_config, &mtls_authz_module);
}

static mtls_req_t *req_new(request_rec *r)
{
    mtls_req_t *rq = apr_pcalloc(r->pool, sizeof(*rq));
    rq->owner = r;
    ap_set_module_config(r->request_config, &mtls_authz_module, rq);
    return rq;
}

/* The merged configuration if this module enforces here, else NULL. */
static const mtls_dir_conf_t *enforcing(request_rec *r)
{
    const mtls_dir_conf_t *dc =
        ap_get_module_config(r->per_dir_config, &mtls_authz_module);
    return dc->enforce == 1 ? dc : NULL;
}

/* Decides r for MTLSAuthz On and records the decision for the _ex hook,
 * Require mtls and the optional functions. */
static int decide_once(request_rec *r, const mtls_dir_conf_t *dc)
{
    mtls_req_t *rq = req_new(r);
    evaluate(r, dc, rq, "MTLSAuthz On but no MTLSAllow* rule applies here");
    if (!rq->would_deny)
        return DECLINED;
    rq->audit = mtls_dir_audit(dc);
    rq->denied = !rq->audit;
    log_denial(r, rq, APLOG_ERR);
    return rq->denied ? HTTP_FORBIDDEN : DECLINED;
}

/* Runs after mod_ssl's access check, which may first renegotiate or ask
 * for the certificate after the handshake (per-location SSLVerifyClient). */
int mtls_access_checker(request_rec *r)
{
    const mtls_dir_conf_t *dc = enforcing(r);
    return dc ? decide_once(r, dc) : DECLINED;
}

/* Under "Satisfy Any" a 403 from the access checkers only means "now try
 * authentication", and an earlier checker's 403 may have kept ours from
 * running at all. This hook runs before authn in that case and makes the
 * denial final, deciding now if the access checker did not. */
int mtls_access_checker_ex(request_rec *r)
{
    const mtls_dir_conf_t *dc = enforcing(r);
    const mtls_req_t *rq;

    if (dc == NULL)
        return DECLINED;
    rq = ap_get_module_config(r->request_config, &mtls_authz_module);
    if (rq == NULL)
        return decide_once(r, dc);
    return rq->denied ? HTTP_FORBIDDEN : DECLINED;
}

/* "Require mtls": the same rules and the same decision as MTLSAuthz On,
 * as an authorization provider, so that mod_authz_core can combine it
 * with other Require lines. mod_authz_core may ask twice per request
 * (before and after authentication): the decision is taken once.
 *
 * A denial is never AUTHZ_DENIED_NO_USER: logging in does not fix a
 * certificate. Whether it is final depends on the other Require lines
 * (in <RequireAny> another may grant), so its log line waits for the
 * outcome; see log_pending and mtls_fixups. In Audit mode the provider
 * abstains (AUTHZ_NEUTRAL) where it would deny: the other Require lines
 * decide as if it were not there. */
static apr_status_t log_pending(void *data)
{
    mtls_req_t *rq = data;
    request_rec *r = rq->owner;
    if (rq->pending) {
        /* A 401 to a client that has not tried a user yet is a login
         * prompt, not the end of the request. */
        int level = r->status == HTTP_UNAUTHORIZED && r->user == NULL
                        ? APLOG_INFO
                        : APLOG_ERR;
        rq->pending = 0;
        log_denial(r, rq, level);
    }
    return APR_SUCCESS;
}

authz_status mtls_require_check(request_rec *r, const char *require_line,
                                const void *parsed)
{
    const mtls_dir_conf_t *dc =
        ap_get_module_config(r->per_dir_config, &mtls_authz_module);
    mtls_req_t *rq = req_get(r);
    (void)require_line;
    (void)parsed;

    if (rq == NULL || rq == &passed_unchecked) {
        rq = req_new(r);
        evaluate(r, dc, rq, "Require mtls but no MTLSAllow* rule applies here");
        if (rq->would_deny && mtls_dir_audit(dc)) {
            rq->audit = 1;
            log_denial(r, rq, APLOG_WARNING);
        }
        else if (rq->would_deny) {
            rq->pending = 1;
            /* Before the pool's subpools go: r must still be whole. */
            apr_pool_pre_cleanup_register(r->pool, rq, log_pending);
        }
    }
    if (!rq->would_deny)
        return AUTHZ_GRANTED;
    return rq->audit ? AUTHZ_NEUTRAL : AUTHZ_DENIED;
}

const char *mtls_require_parse(cmd_parms *cmd, const char *require_line,
                               const void **parsed)
{
    const char *s = require_line;
    (void)parsed;
    while (s && apr_isspace(*s))
        s++;
    if (s && *s)
        return apr_psprintf(cmd->pool,
                            "Require mtls takes no argument (got '%s'); the "
                            "rules are the MTLSAllow* directives in scope",
                            s);
    mtls_conf_note_require(cmd);
    return NULL;
}

/* The decision that r inherits when httpd skipped its access checks:
 * the previous or parent request with the same configuration. */
static mtls_req_t *inherited(request_rec *r)
{
    if (r->prev && r->prev->per_dir_config == r->per_dir_config)
        return req_get(r->prev);
    if (r->main && r->main->per_dir_config == r->per_dir_config)
        return req_get(r->main);
    return NULL;
}

static const mtls_rule_t *admitting_rule(request_rec *r,
                                         const mtls_identity_t **idp);

/* Fixups run only for requests that passed the access phase. One that
 * carries no decision of ours skipped the checks (same configuration as
 * an earlier request) or was decided as a subrequest (DirectoryIndex's
 * fast redirect happens later in fixups): it takes the decision of the
 * request it skipped them for, or is marked for admitting_rule. Early,
 * so that the identity variables are there for mod_headers, mod_rewrite
 * and handlers. */
int mtls_fixups(request_rec *r)
{
    mtls_req_t *rq = req_get(r);
    const mtls_identity_t *id = NULL;
    const mtls_rule_t *rule;

    if (rq == NULL) {
        rq = inherited(r);
        ap_set_module_config(r->request_config, &mtls_authz_module,
                             rq ? rq : &passed_unchecked);
    }
    else if (rq->owner == r && rq->pending) {
        /* Another Require line admitted it: not a denial after all. */
        rq->pending = 0;
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "mtls_authz: Require mtls was not satisfied (%s), but "
                      "another Require line admitted the request",
                      rq->line);
    }
    rule = admitting_rule(r, &id);
    if (rule && id)
        mtls_env_set(r, rule, id);
    return DECLINED;
}

/* The rule that admitted r and the identity it admitted, or NULL. */
static const mtls_rule_t *admitting_rule(request_rec *r,
                                         const mtls_identity_t **idp)
{
    const mtls_req_t *rq = req_get(r);
    const mtls_dir_conf_t *dc;
    const mtls_identity_t *id;
    const char *detail;
    mtls_miss_e miss;
    const mtls_rule_t *rule;

    *idp = NULL;
    if (rq != &passed_unchecked) {
        if (rq == NULL || rq->would_deny || rq->rule == NULL)
            return NULL;
        *idp = rq->id;
        return rq->rule;
    }
    /* Admitted without a decision recorded here: match again, quietly,
     * against the configuration r has now. */
    dc = enforcing(r);
    if (dc == NULL || mtls_ruleset_is_empty(dc->rules) ||
        mtls_conn_identity(r, &id, &detail) != MTLS_CONN_VERIFIED)
        return NULL;
    rule = mtls_ruleset_match(dc->rules, id, NULL, NULL, &miss);
    if (rule)
        *idp = id;
    return rule;
}

const char *mtls_authz_matched_rule(request_rec *r)
{
    const mtls_identity_t *id;
    const mtls_rule_t *rule = admitting_rule(r, &id);
    return rule ? rule->source : NULL;
}

/* A copy: a renegotiation later in the request may replace the identity. */
const char *mtls_authz_client_subject(request_rec *r)
{
    const mtls_identity_t *id;
    return admitting_rule(r, &id) && id ? apr_pstrdup(r->pool, id->subject_text)
                                        : NULL;
}
