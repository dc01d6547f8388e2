/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_request.h"
#include "apr_strings.h"

#include "mtls_access.h"
#include "mtls_conf.h"
#include "mtls_conn.h"

APLOG_USE_MODULE(mtls_authz);

/* The decision for one request, in r->request_config. */
typedef struct {
    int denied;
    const mtls_rule_t *rule; /* what admitted it */
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

/* One line per denial, at error level like AH01630; every string that
 * the client chose is escaped so that it cannot forge log lines. */
static int deny(request_rec *r, mtls_req_t *rq, const char *reason,
                const mtls_identity_t *id)
{
    rq->denied = 1;
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  "mtls_authz: client denied by server configuration: %s: "
                  "%s; subject \"%s\", issuer %s",
                  ap_escape_logitem(r->pool, r->uri), reason,
                  id ? ap_escape_logitem(r->pool, id->subject_text) : "-",
                  issuer_text(r, id));
    return HTTP_FORBIDDEN;
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

static int decide(request_rec *r, const mtls_dir_conf_t *dc, mtls_req_t *rq)
{
    const mtls_identity_t *id;
    const char *detail;
    const mtls_rule_t *rule;
    mtls_miss_e miss;

    switch (mtls_conn_identity(r, &id, &detail)) {
    case MTLS_CONN_NO_TLS:
        return deny(r, rq, "no certificate (plain HTTP)", NULL);
    case MTLS_CONN_NO_CERT:
        return deny(r, rq, "no certificate", NULL);
    case MTLS_CONN_UNVERIFIED:
        return deny(r, rq,
                    apr_pstrcat(r->pool, "not verified: ",
                                ap_escape_logitem(r->pool, detail), NULL),
                    id);
    case MTLS_CONN_ERROR:
        return deny(r, rq, "internal error (out of memory)", NULL);
    case MTLS_CONN_VERIFIED:
        break;
    }
    if (mtls_ruleset_is_empty(dc->rules))
        return deny(r, rq, "MTLSAuthz On but no MTLSAllow* rule applies here",
                    id);

    rule = mtls_ruleset_match(dc->rules, id, APLOGrdebug(r) ? trace_rule : NULL,
                              r, &miss);
    if (rule == NULL)
        return deny(r, rq,
                    miss == MTLS_MISS_ISSUER ? "issuer not allowed"
                                             : "no rule matched",
                    id);
    rq->rule = rule;
    return DECLINED;
}

/* The merged configuration if this module enforces here, else NULL. */
static const mtls_dir_conf_t *enforcing(request_rec *r)
{
    const mtls_dir_conf_t *dc =
        ap_get_module_config(r->per_dir_config, &mtls_authz_module);
    return dc->enforce == 1 ? dc : NULL;
}

/* Decides r and records the decision for the _ex hook and the optional
 * functions. */
static int decide_once(request_rec *r, const mtls_dir_conf_t *dc)
{
    mtls_req_t *rq = apr_pcalloc(r->pool, sizeof(*rq));
    ap_set_module_config(r->request_config, &mtls_authz_module, rq);
    return decide(r, dc, rq);
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

/* Fixups run only for requests that passed the access phase. One that
 * carries no decision of ours skipped the checks (same configuration as
 * an earlier request) or was decided as a subrequest (DirectoryIndex's
 * fast redirect happens later in fixups). Mark it for admitting_rule. */
int mtls_fixups(request_rec *r)
{
    if (ap_get_module_config(r->request_config, &mtls_authz_module) == NULL)
        ap_set_module_config(r->request_config, &mtls_authz_module,
                             &passed_unchecked);
    return DECLINED;
}

/* The rule that admitted r, or NULL. */
static const mtls_rule_t *admitting_rule(request_rec *r)
{
    const mtls_req_t *rq =
        ap_get_module_config(r->request_config, &mtls_authz_module);
    const mtls_dir_conf_t *dc;
    const mtls_identity_t *id;
    const char *detail;
    mtls_miss_e miss;

    if (rq != &passed_unchecked)
        return rq && !rq->denied ? rq->rule : NULL;
    /* Admitted without a decision recorded here: match again, quietly,
     * against the configuration r has now. */
    dc = enforcing(r);
    if (dc == NULL || mtls_ruleset_is_empty(dc->rules) ||
        mtls_conn_identity(r, &id, &detail) != MTLS_CONN_VERIFIED)
        return NULL;
    return mtls_ruleset_match(dc->rules, id, NULL, NULL, &miss);
}

const char *mtls_authz_matched_rule(request_rec *r)
{
    const mtls_rule_t *rule = admitting_rule(r);
    return rule ? rule->source : NULL;
}

/* A copy: a renegotiation later in the request may replace the identity. */
const char *mtls_authz_client_subject(request_rec *r)
{
    const mtls_identity_t *id =
        admitting_rule(r) ? mtls_conn_cached_identity(r->connection) : NULL;
    return id ? apr_pstrdup(r->pool, id->subject_text) : NULL;
}
