/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* The access decision, in the order a request meets it:
 *
 *   decide()   the rules in scope against the certificate on the
 *              connection now: a decision, cached per request for its
 *              policy and identity, and per connection (the memo) for
 *              the next request with the same rules and certificate;
 *   take()     what an entry point makes of it: admitted, denied,
 *              pending (Require mtls), audited or unlisted, and the one
 *              log line of a refusal;
 *   access     MTLSAuthz On (mtls_access_checker, _ex);
 *   authz      Require mtls (mtls_require_check);
 *   fixups     settle(): what an admitted request exports (variables,
 *              and MTLSForwardHeaders' request headers), decided again
 *              where its configuration or certificate changed;
 *   logging    mtls_log_transaction: the namespace as this module left it.
 */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_request.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include <string.h>

#include "mtls_access.h"
#include "mtls_conf.h"
#include "mtls_conn.h"
#include "mtls_env.h"
#include "mtls_headers.h"
#include "mtls_policy.h"
#include "mtls_stats.h"

APLOG_USE_MODULE(mtls_authz);

/* What the client must satisfy: no deny rule in scope matches, and the
 * rules of the server configuration in scope and every .htaccess gate
 * admit it. gates_alone: with no server rule in scope, the gates decide
 * (the enforcer itself came from an .htaccess); otherwise no server rule
 * means nobody passes. */
typedef struct {
    const mtls_ruleset_t *rules;
    const apr_array_header_t *denies;
    const apr_array_header_t *gates;
    int gates_alone;
} mtls_policy_t;

/* One decision, valid only for the policy and the identity it was taken
 * with: an <AuthzProviderAlias> merges other rules into the same request,
 * and a renegotiation in a subrequest puts another certificate on the
 * connection. */
typedef struct mtls_decision mtls_decision_t;
struct mtls_decision {
    mtls_policy_t policy;
    mtls_conn_status_e status;
    const mtls_conn_id_t *h; /* VERIFIED/UNVERIFIED: pinned to the request */
    const mtls_rule_t *rule; /* what admitted it; NULL: refused */
    const char *reason;      /* why not, unless no_rule */
    const mtls_rule_t *near; /* the rule the reason names, or NULL */
    mtls_why_e why;          /* the reason, for the counters */
    int no_rule;             /* refused: no rule applies in scope */
    int logged;              /* its denial line was written or is pending */
    int counted;             /* it is in the counters */
    int negated;             /* pending, from a negated Require mtls */
    mtls_decision_t *next;
};

/* What an entry point made of a decision. */
typedef enum {
    OUTCOME_NONE = 0, /* not asked */
    OUTCOME_ADMITTED, /* by d->rule, for the identity of d->h */
    OUTCOME_DENIED,   /* refused, and logged */
    OUTCOME_PENDING,  /* refused by Require mtls: logged if r ends refused */
    OUTCOME_AUDITED,  /* refused by the rules, let through by Audit mode */
    OUTCOME_UNLISTED  /* not admitted, where only admission matters */
} mtls_outcome_e;

/* Who takes a decision, and how. */
typedef enum {
    ASK_ENFORCE, /* MTLSAuthz On, or a fixup re-check: a refusal is final */
    ASK_REQUIRE, /* Require mtls: other Require lines may still admit r */
    ASK_EXPORT   /* only what is admitted matters: no refusal, no line */
} mtls_ask_e;

typedef struct {
    mtls_ask_e how;
    const char *who; /* "MTLSAuthz On" or "Require mtls", for the log */
    int audit;       /* MTLSAuthzMode Audit */
    int negated;     /* under a negation a grant of the rules refuses */
} mtls_asker_t;

/* Per request, in r->request_config, allocated in r->pool; never shared
 * with another request (an internal redirect or subrequest gets its own
 * and looks up only what "Require mtls" granted, see inherited_grant). */
typedef struct {
    request_rec *r;
    const mtls_conn_id_t *held;          /* the latest identity pinned to r */
    mtls_decision_t *decisions;          /* every one taken for r */
    mtls_outcome_e gate;                 /* MTLSAuthz On, in the access phase */
    mtls_decision_t *gate_d;             /* the decision it took */
    const mtls_decision_t *granted;      /* "Require mtls" admitted r by it */
    const ap_conf_vector_t *access_conf; /* r->per_dir_config at access */
    apr_array_header_t *pending; /* its denials, logged if r is refused */
    mtls_decision_t first;       /* the first decision's storage */
    /* What the last settle() found and exported. */
    int settled;
    const ap_conf_vector_t *conf; /* r->per_dir_config then */
    const mtls_rule_t *rule;
    const mtls_conn_id_t *id;
    mtls_env_mark_t env;
    mtls_hdr_mark_t hdr; /* MTLSForwardHeaders' request headers */
    int counted;         /* the client's request is in the counters */
} mtls_req_t;

static mtls_req_t *state_get(request_rec *r)
{
    return ap_get_module_config(r->request_config, &mtls_authz_module);
}

static mtls_req_t *state(request_rec *r)
{
    mtls_req_t *st = state_get(r);
    if (st == NULL) {
        st = apr_pcalloc(r->pool, sizeof(*st));
        st->r = r;
        ap_set_module_config(r->request_config, &mtls_authz_module, st);
    }
    return st;
}

static const mtls_dir_conf_t *dir_conf(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &mtls_authz_module);
}

static mtls_policy_t policy_of(const mtls_dir_conf_t *dc, int ht_enforcer)
{
    mtls_policy_t pol;
    pol.rules = mtls_ruleset_is_empty(dc->rules) ? NULL : dc->rules;
    pol.denies = dc->denies;
    pol.gates = dc->gates;
    pol.gates_alone = ht_enforcer && pol.rules == NULL && pol.gates != NULL;
    return pol;
}

static int same_policy(const mtls_policy_t *a, const mtls_policy_t *b)
{
    return a->rules == b->rules && a->denies == b->denies &&
           a->gates == b->gates && a->gates_alone == b->gates_alone;
}

/* ---- the decision ------------------------------------------------------- */

static void trace_rule(void *baton, const mtls_rule_t *rule, mtls_miss_e m)
{
    request_rec *r = baton;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "%s %s: %s",
                  rule->ext && rule->ext->deny ? "deny rule" : "rule",
                  rule->source,
                  m == MTLS_MISS_NONE      ? "matched"
                  : m == MTLS_MISS_ISSUER  ? "issuer not allowed"
                  : m == MTLS_MISS_EXPIRED ? "expired"
                  : m == MTLS_MISS_NOT_YET ? "not yet valid"
                                           : "no match");
}

/* The deny rules and the server configuration's rules: *m says what
 * admitted or refused. No rule at all in scope leaves m->miss NO_RULE
 * and m->near NULL. */
static void match_rules(request_rec *r, const mtls_policy_t *pol,
                        const mtls_identity_t *id, mtls_match_t *m)
{
    mtls_trace_fn *trace = APLOGrdebug(r) ? trace_rule : NULL;
    const apr_array_header_t *dn = pol->denies;
    mtls_policy_match(pol->rules,
                      dn ? (const mtls_ruleset_t *const *)dn->elts : NULL,
                      dn ? dn->nelts : 0, id, r->request_time, trace, r, m);
}

static mtls_why_e why_of(const mtls_match_t *m)
{
    switch (m->miss) {
    case MTLS_MISS_NONE:
        return MTLS_WHY_RULE;
    case MTLS_MISS_ISSUER:
        return MTLS_WHY_ISSUER;
    case MTLS_MISS_EXPIRED:
        return MTLS_WHY_EXPIRED;
    case MTLS_MISS_NOT_YET:
        return MTLS_WHY_NOT_YET;
    case MTLS_MISS_DENIED:
        return MTLS_WHY_DENIED;
    default:
        return MTLS_WHY_NO_RULE_MATCHED;
    }
}

/* What m says of d. */
static void decided(request_rec *r, mtls_decision_t *d, const mtls_match_t *m)
{
    d->rule = m->rule;
    d->why = why_of(m);
    if (m->rule == NULL) {
        d->reason = mtls_policy_reason(r->pool, m);
        d->near = m->near;
    }
}

/* Fills d's outcome for a verified identity from m, what the deny rules
 * and the server configuration's rules made of it, and the .htaccess
 * gates. */
static void match_gates(request_rec *r, mtls_decision_t *d,
                        const mtls_identity_t *id, const mtls_match_t *m)
{
    const mtls_policy_t *pol = &d->policy;
    mtls_trace_fn *trace = APLOGrdebug(r) ? trace_rule : NULL;
    const mtls_rule_t *rule = m->rule;
    int i;

    if (rule == NULL && (pol->rules || m->miss == MTLS_MISS_DENIED)) {
        decided(r, d, m);
        return;
    }
    if (rule == NULL && !pol->gates_alone) {
        d->no_rule = 1;
        d->why = MTLS_WHY_NO_RULE_IN_SCOPE;
        return;
    }
    for (i = 0; pol->gates && i < pol->gates->nelts; i++) {
        mtls_match_t gm;
        const mtls_rule_t *g = mtls_ruleset_match_at(
            APR_ARRAY_IDX(pol->gates, i, const mtls_ruleset_t *), id,
            r->request_time, trace, r, &gm);
        if (g == NULL) {
            d->reason = apr_pstrcat(r->pool, mtls_policy_reason(r->pool, &gm),
                                    " (rules of an .htaccess)", NULL);
            d->why = MTLS_WHY_HTACCESS;
            return;
        }
        if (rule == NULL)
            rule = g;
    }
    d->rule = rule;
    d->why = MTLS_WHY_RULE;
}

/* The span of time in which what pol's rules decide at now holds: 0 if
 * it cannot be told, or there are more deny sets than the memo keeps. */
static int memo_span(const mtls_policy_t *pol, apr_time_t now,
                     mtls_conn_memo_t *memo)
{
    int i, n = pol->denies ? pol->denies->nelts : 0;
    memo->from = 0;
    memo->until = APR_INT64_MAX;
    if (n > MTLS_MEMO_DENIES ||
        !mtls_ruleset_span(pol->rules, now, &memo->from, &memo->until))
        return 0;
    for (i = 0; i < n; i++) {
        const mtls_ruleset_t *d =
            APR_ARRAY_IDX(pol->denies, i, const mtls_ruleset_t *);
        if (!mtls_ruleset_span(d, now, &memo->from, &memo->until))
            return 0;
        memo->denies[i] = d;
    }
    memo->n_denies = n;
    return 1;
}

/* Does memo hold the decision of pol's rules at now? */
static int memo_hit(const mtls_conn_memo_t *memo, const mtls_policy_t *pol,
                    apr_time_t now)
{
    int i, n = pol->denies ? pol->denies->nelts : 0;
    if (memo->rules != pol->rules || memo->n_denies != n || now < memo->from ||
        now >= memo->until)
        return 0;
    for (i = 0; i < n; i++) {
        if (memo->denies[i] !=
            APR_ARRAY_IDX(pol->denies, i, const mtls_ruleset_t *))
            return 0;
    }
    return 1;
}

/* The rules' decision, remembered on the connection for the next request
 * with the same rules and certificate in the same span of time: a
 * keep-alive request then costs a compare. Only the server
 * configuration's rules, without .htaccess gates, and not while debug
 * logging traces each rule tried. */
static void match_memo(request_rec *r, mtls_decision_t *d)
{
    mtls_conn_memo_t *memo = NULL;
    mtls_match_t m;

    if (d->policy.rules && d->policy.gates == NULL && !APLOGrdebug(r))
        memo = mtls_conn_memo(r, d->h);
    if (memo && memo_hit(memo, &d->policy, r->request_time)) {
        m.rule = memo->rule;
        m.miss = memo->miss;
        m.near = memo->near;
        decided(r, d, &m);
        return;
    }
    match_rules(r, &d->policy, d->h->id, &m);
    match_gates(r, d, d->h->id, &m);
    if (memo) {
        memo->rules = NULL;
        if (!memo_span(&d->policy, r->request_time, memo))
            return;
        memo->rules = d->policy.rules;
        memo->rule = m.rule;
        memo->miss = m.miss;
        memo->near = m.near;
    }
}

/* The connection's identity now: the one r holds if nothing changed on
 * the connection since it was taken. */
static mtls_conn_status_e identity_now(request_rec *r, mtls_req_t *st)
{
    if (st->held && mtls_conn_still(r, st->held))
        return st->held->unverified ? MTLS_CONN_UNVERIFIED : MTLS_CONN_VERIFIED;
    return mtls_conn_identity(r, &st->held);
}

/* The decision for r under pol and the certificate on r's connection now:
 * the one taken before for exactly these, or a new one. */
static mtls_decision_t *decide(request_rec *r, mtls_req_t *st,
                               const mtls_policy_t *pol)
{
    mtls_conn_status_e status = identity_now(r, st);
    const mtls_conn_id_t *h =
        status == MTLS_CONN_VERIFIED || status == MTLS_CONN_UNVERIFIED
            ? st->held
            : NULL;
    mtls_decision_t *d;

    for (d = st->decisions; d; d = d->next) {
        if (d->status == status && d->h == h && same_policy(&d->policy, pol))
            return d;
    }
    /* Most requests take one decision: no allocation for it. */
    if (st->decisions == NULL)
        d = &st->first;
    else
        d = apr_pcalloc(r->pool, sizeof(*d));
    d->policy = *pol;
    d->status = status;
    d->h = h;
    d->next = st->decisions;
    st->decisions = d;
    switch (status) {
    case MTLS_CONN_NO_TLS:
        d->reason = "no certificate (plain HTTP)";
        d->why = MTLS_WHY_PLAIN_HTTP;
        break;
    case MTLS_CONN_NO_CERT:
        d->reason = "no certificate";
        d->why = MTLS_WHY_NO_CERT;
        break;
    case MTLS_CONN_UNVERIFIED:
        d->why = MTLS_WHY_NOT_VERIFIED;
        d->reason = apr_pstrcat(
            r->pool,
            "not verified: ", ap_escape_logitem(r->pool, h->unverified), NULL);
        break;
    case MTLS_CONN_ERROR:
        d->reason = "internal error (out of memory)";
        d->why = MTLS_WHY_INTERNAL;
        break;
    case MTLS_CONN_VERIFIED:
        match_memo(r, d);
        break;
    }
    return d;
}

/* ---- refusals and their log line ---------------------------------------- */

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

/* Why d refused r, as the one line logged per denial says it; every
 * string the client chose is escaped so that it cannot forge log lines.
 * who: MTLSAuthz On or Require mtls, for the reason "no rule applies". */
static const char *denial_text(request_rec *r, const mtls_decision_t *d,
                               const char *who)
{
    const mtls_identity_t *id = d->h ? d->h->id : NULL;
    const char *reason =
        d->rule      ? apr_psprintf(r->pool, "listed by rule %s (negated %s)",
                                    d->rule->source, who)
        : d->no_rule ? apr_pstrcat(r->pool, who,
                                   " but no MTLSAllow* rule applies here", NULL)
                     : d->reason;
    return apr_psprintf(
        r->pool, "%s: %s; subject \"%s\", issuer %s",
        ap_escape_logitem(r->pool, r->uri), reason,
        id ? ap_escape_logitem(r->pool, mtls_identity_subject_text(r->pool, id))
           : "-",
        issuer_text(r, id));
}

static void log_denial(request_rec *r, const mtls_decision_t *d,
                       const char *who, int level, int audit)
{
    ap_log_rerror(APLOG_MARK, audit ? APLOG_WARNING : level, 0, r,
                  "%sclient denied by server configuration: %s",
                  audit ? "AUDIT (admitted): " : "", denial_text(r, d, who));
}

/* ---- counting ----------------------------------------------------------- */

static void record_refused(request_rec *r, const mtls_decision_t *d,
                           mtls_outcome_stat_e o, int negated)
{
    mtls_stats_decision(dir_conf(r)->scope, o,
                        negated && d->rule ? MTLS_WHY_NEGATED : d->why);
    if (o != MTLS_OUT_OTHER && !(negated && d->rule))
        mtls_stats_refused_by(d->near);
}

/* A client's request is counted once, with the first decision taken as
 * final for it: an admission, or a refusal as its log line is written.
 * Its internal redirects may decide again, and log, but count nothing
 * more; its subrequests (a DirectoryIndex, an SSI include, a directory
 * listing's entries) are parts of its answer and count nothing. */
static int count_first(request_rec *r, mtls_decision_t *d)
{
    request_rec *top = r;
    mtls_req_t *st;
    if (d->counted)
        return 0;
    d->counted = 1;
    if (r->main)
        return 0;
    while (top->prev)
        top = top->prev;
    st = state(top);
    if (st->counted)
        return 0;
    st->counted = 1;
    if (top != r && st->pending && st->pending->nelts) {
        /* A redirect (its ErrorDocument) of a request that Require mtls
         * refused: that refusal is the request's count. */
        mtls_decision_t *p = APR_ARRAY_IDX(st->pending, 0, mtls_decision_t *);
        p->counted = 1;
        record_refused(top, p, MTLS_OUT_DENIED, p->negated);
        return 0;
    }
    return 1;
}

static void count_admitted(request_rec *r, mtls_decision_t *d)
{
    if (!count_first(r, d))
        return;
    mtls_stats_decision(dir_conf(r)->scope, MTLS_OUT_ADMITTED, MTLS_WHY_RULE);
    mtls_stats_admitted(r, d->rule, d->h->id,
                        mtls_stats_watching() ? mtls_conn_seen(r, d->h) : NULL);
}

static void count_refused(request_rec *r, mtls_decision_t *d,
                          mtls_outcome_stat_e o, int negated)
{
    if (count_first(r, d))
        record_refused(r, d, o, negated);
}

/* Require mtls's denials are final only if no other Require line admits
 * r: they are logged when r ends, if it ends refused (mtls_fixups runs
 * only for admitted requests, and drops them). */
static apr_status_t log_pending(void *data)
{
    mtls_req_t *st = data;
    request_rec *r = st->r;
    /* A 401 to a client that has not tried a user yet is a login prompt,
     * not the end of the request. */
    int level = r->status == HTTP_UNAUTHORIZED && r->user == NULL ? APLOG_INFO
                                                                  : APLOG_ERR;
    int i;
    for (i = 0; i < st->pending->nelts; i++) {
        mtls_decision_t *d = APR_ARRAY_IDX(st->pending, i, mtls_decision_t *);
        log_denial(r, d, "Require mtls", level, 0);
        count_refused(r, d, MTLS_OUT_DENIED, d->negated);
    }
    st->pending->nelts = 0;
    return APR_SUCCESS;
}

static void pend(request_rec *r, mtls_req_t *st, mtls_decision_t *d)
{
    if (st->pending == NULL) {
        st->pending = apr_array_make(r->pool, 1, sizeof(d));
        /* Before the pool's subpools go: r must still be whole. */
        apr_pool_pre_cleanup_register(r->pool, st, log_pending);
    }
    APR_ARRAY_PUSH(st->pending, mtls_decision_t *) = d;
}

/* What asker a makes of decision d: every entry point takes its decision
 * here. A refusal is logged once per decision, however often it is
 * asked: now, when r ends (Require mtls), or marked AUDIT. */
static mtls_outcome_e take(request_rec *r, mtls_req_t *st, mtls_decision_t *d,
                           const mtls_asker_t *a)
{
    if (d->rule && !a->negated) {
        if (a->how != ASK_EXPORT)
            count_admitted(r, d);
        return OUTCOME_ADMITTED;
    }
    if (a->how == ASK_EXPORT)
        return OUTCOME_UNLISTED;
    if (!d->logged) {
        d->logged = 1;
        if (a->audit) {
            log_denial(r, d, a->who, APLOG_WARNING, 1);
            count_refused(r, d, MTLS_OUT_AUDITED, a->negated);
        }
        else if (a->how == ASK_REQUIRE) {
            d->negated = a->negated;
            pend(r, st, d);
        }
        else {
            log_denial(r, d, a->who, APLOG_ERR, 0);
            count_refused(r, d, MTLS_OUT_DENIED, a->negated);
        }
    }
    return a->audit                ? OUTCOME_AUDITED
           : a->how == ASK_REQUIRE ? OUTCOME_PENDING
                                   : OUTCOME_DENIED;
}

static void scrub(request_rec *r)
{
    mtls_env_scrub(r, NULL);
}

/* ---- access: MTLSAuthz On ----------------------------------------------- */

static int gate(request_rec *r, const mtls_dir_conf_t *dc)
{
    mtls_req_t *st = state(r);
    mtls_policy_t pol = policy_of(dc, dc->enforce_ht);
    const mtls_asker_t a = {ASK_ENFORCE, "MTLSAuthz On", mtls_dir_audit(dc), 0};

    mtls_decision_t *d = decide(r, st, &pol);

    st->gate_d = d;
    st->gate = take(r, st, d, &a);
    if (st->gate != OUTCOME_ADMITTED)
        scrub(r);
    return st->gate == OUTCOME_DENIED ? HTTP_FORBIDDEN : DECLINED;
}

/* Runs after mod_ssl's access check, which may first renegotiate or ask
 * for the certificate after the handshake (per-location SSLVerifyClient). */
int mtls_access_checker(request_rec *r)
{
    const mtls_dir_conf_t *dc = dir_conf(r);
    /* Before any other module can refuse the request (an ErrorDocument
     * and the access log would see what SetEnvIf put in the namespace). */
    scrub(r);
    /* The configuration authorization runs under, for settle(): the
     * provider cannot tell it while an alias's section is merged in. */
    if (dc->enforce == 1 || mtls_conf_aliases_used())
        state(r)->access_conf = r->per_dir_config;
    return dc->enforce == 1 ? gate(r, dc) : DECLINED;
}

/* Under "Satisfy Any" a 403 from the access checkers only means "now try
 * authentication", and an earlier checker's 403 may have kept ours from
 * running at all. This hook runs before authn in that case and makes the
 * denial final, deciding now if the access checker did not. */
int mtls_access_checker_ex(request_rec *r)
{
    const mtls_dir_conf_t *dc = dir_conf(r);
    const mtls_req_t *st;

    if (dc->enforce != 1)
        return DECLINED;
    st = state_get(r);
    if (st == NULL || st->gate == OUTCOME_NONE)
        return gate(r, dc);
    return st->gate == OUTCOME_DENIED ? HTTP_FORBIDDEN : DECLINED;
}

/* ---- authorization: Require mtls ---------------------------------------- */

/* The MTLS_REQUIRE_* flags of a Require line, as its parsed argument
 * (NULL for none). */
static const int require_flags[] = {0, 1, 2, 3};

const char *mtls_require_parse(cmd_parms *cmd, const char *require_line,
                               const void **parsed)
{
    const char *s = require_line;
    int flags;
    while (s && apr_isspace(*s))
        s++;
    if (s && *s)
        return apr_psprintf(cmd->pool,
                            "Require mtls takes no argument (got '%s'); the "
                            "rules are the MTLSAllow* directives in scope",
                            s);
    flags = mtls_conf_note_require(cmd);
    *parsed = flags ? &require_flags[flags] : NULL;
    return NULL;
}

/* What a grant exports, in fixups. An alias that some Require line
 * negates may be negated here: mod_authz_core tells only its name, so
 * its grants export nothing. */
static void grant(request_rec *r, mtls_req_t *st, const mtls_decision_t *d)
{
    if (st->granted == NULL && !mtls_conf_alias_negated(apr_table_get(
                                   r->notes, AUTHZ_PROVIDER_NAME_NOTE)))
        st->granted = d;
}

/* The same rules as MTLSAuthz On, as an authorization provider, so that
 * mod_authz_core can combine it with other Require lines. It may ask
 * several times per request (before and after authentication, and once
 * per <AuthzProviderAlias> with its own rules): each question is answered
 * from the decision for its own rules.
 *
 * A denial is never AUTHZ_DENIED_NO_USER: logging in does not fix a
 * certificate. Whether it is final depends on the other Require lines
 * (in <RequireAny> another may grant), so its log line waits for the
 * outcome (log_pending). In Audit mode the provider abstains
 * (AUTHZ_NEUTRAL) where it would deny: the other Require lines decide as
 * if it were not there.
 *
 * Under an odd number of negations ("Require not", <RequireNone>,
 * <RequireNotAll>) mod_authz_core turns a grant into a denial and a
 * denial into "neutral": there the rules' grant is what refuses, and the
 * module admits nobody, so nothing is exported and a mismatch is not
 * logged. */
authz_status mtls_require_check(request_rec *r, const char *require_line,
                                const void *parsed)
{
    const mtls_dir_conf_t *dc = dir_conf(r);
    mtls_req_t *st = state(r);
    int flags = parsed ? *(const int *)parsed : 0;
    mtls_policy_t pol = policy_of(dc, flags & MTLS_REQUIRE_HTACCESS);
    mtls_decision_t *d = decide(r, st, &pol);
    const mtls_asker_t a = {ASK_REQUIRE, "Require mtls", mtls_dir_audit(dc),
                            flags & MTLS_REQUIRE_NOT};
    mtls_outcome_e o;
    (void)require_line;

    /* Without aliases, authorization runs under the configuration of the
     * access phase. */
    if (st->access_conf == NULL && !mtls_conf_aliases_used())
        st->access_conf = r->per_dir_config;
    if (a.negated && d->rule == NULL) {
        scrub(r);
        return AUTHZ_DENIED;
    }
    o = take(r, st, d, &a);
    if (o == OUTCOME_ADMITTED) {
        grant(r, st, d);
        return AUTHZ_GRANTED;
    }
    if (!a.negated)
        scrub(r);
    if (o == OUTCOME_AUDITED)
        return AUTHZ_NEUTRAL;
    return a.negated ? AUTHZ_GRANTED : AUTHZ_DENIED;
}

/* ---- fixups: what an admitted request exports ---------------------------- */

/* Inheritance. httpd skips the access checks of an internal redirect
 * with the same configuration as the request it came from, and of a
 * subrequest with its parent's: such a request takes only what
 * "Require mtls" granted there (MTLSAuthz On needs nothing: settle()
 * enforces it again). Nothing else is inherited: settle() decides for
 * the configuration the request has and the certificate on the
 * connection now. */
static const mtls_decision_t *inherited_grant(const request_rec *r)
{
    const request_rec *from = NULL;
    const mtls_req_t *o;
    if (r->prev && r->prev->per_dir_config == r->per_dir_config)
        from = r->prev;
    else if (r->main && r->main->per_dir_config == r->per_dir_config)
        from = r->main;
    if (from && (o = state_get((request_rec *)from)) != NULL)
        return o->granted;
    return NULL;
}

/* r's state in fixups, or NULL where the module has nothing to settle:
 * it does not enforce under r's configuration and "Require mtls" granted
 * nothing to r or to the request r inherits from. */
static mtls_req_t *fixup_state(request_rec *r)
{
    mtls_req_t *st = state_get(r);
    const mtls_decision_t *g;
    if (st)
        return st;
    g = inherited_grant(r);
    if (g == NULL && dir_conf(r)->enforce != 1)
        return NULL;
    st = state(r);
    st->granted = g;
    return st;
}

/* Which rules r's export answers to, and who refuses if they no longer
 * admit the certificate. Returns 0 if r has nothing to export. */
static int settle_policy(request_rec *r, const mtls_req_t *st,
                         mtls_policy_t *pol, mtls_asker_t *a)
{
    const mtls_dir_conf_t *dc = dir_conf(r);
    const mtls_decision_t *gd = st->granted;

    a->negated = 0;
    a->audit = 0;
    if (dc->enforce == 1) {
        *pol = policy_of(dc, dc->enforce_ht);
        a->how = ASK_ENFORCE;
        a->who = "MTLSAuthz On";
        a->audit = mtls_dir_audit(dc);
    }
    else if (gd && (st->access_conf == NULL ||
                    st->access_conf == r->per_dir_config)) {
        /* Granted under this configuration: it holds only while its rules
         * admit the certificate on the connection. */
        *pol = gd->policy;
        a->how = ASK_ENFORCE;
        a->who = "Require mtls";
    }
    else if (gd) {
        /* A fast redirect (MultiViews, DirectoryIndex) since: its
         * subrequest was authorized under the configuration r has now.
         * Export what that configuration's rules admit, if anything. */
        *pol = policy_of(dc, 0);
        a->how = ASK_EXPORT;
        a->who = NULL;
    }
    else {
        return 0;
    }
    return 1;
}

/* Exports what r is admitted by now, under the configuration it has now
 * and the certificate on the connection now; decides again where either
 * changed since the access phase (a fast redirect in mod_negotiation or
 * mod_dir, a renegotiation in a subrequest, a redirect that skipped the
 * access checks). A request whose certificate its rules no longer admit
 * is refused. */
/* Did MTLSAuthz On admit r in the access phase under the configuration
 * r has now, for the certificate on the connection now? Then that is
 * settle()'s decision too. */
static int gate_holds(request_rec *r, const mtls_req_t *st)
{
    return st->gate == OUTCOME_ADMITTED &&
           st->access_conf == r->per_dir_config && st->gate_d->h == st->held &&
           mtls_conn_still(r, st->held);
}

static int settle(request_rec *r, mtls_req_t *st)
{
    mtls_policy_t pol;
    mtls_asker_t a;
    mtls_decision_t *d = NULL;
    mtls_outcome_e o = OUTCOME_NONE;

    scrub(r);
    st->settled = 1;
    st->conf = r->per_dir_config;
    st->rule = NULL;
    st->id = NULL;
    st->env.n = 0;
    if (gate_holds(r, st)) {
        d = st->gate_d;
        o = OUTCOME_ADMITTED;
    }
    else if (settle_policy(r, st, &pol, &a)) {
        d = decide(r, st, &pol);
        o = take(r, st, d, &a);
    }
    if (o == OUTCOME_ADMITTED) {
        /* The variables are read on demand (mtls_var_lookup); into the
         * environment only where the configuration asks. */
        if (mtls_dir_export_env(dir_conf(r)))
            mtls_env_set(r, d->rule, mtls_env_prepare(r->pool, d->h->id),
                         &st->env);
        st->rule = d->rule;
        st->id = d->h;
    }
    /* Refused, audited or admitted by another Require line: the
     * lookalikes go all the same, and only an admission sets any. */
    mtls_headers_settle(r, st->id, &st->hdr);
    return o == OUTCOME_DENIED ? HTTP_FORBIDDEN : DECLINED;
}

/* A request the module has nothing to settle for: nothing of its own in
 * the namespace, nor in its request headers. */
static int settle_none(request_rec *r)
{
    mtls_hdr_mark_t none;
    scrub(r);
    mtls_headers_settle(r, NULL, &none);
    return DECLINED;
}

/* Fixups run only for requests that passed the access phase. First, so
 * that the variables are there for mod_rewrite, mod_headers and
 * handlers, and before mod_dir's fast redirect. */
int mtls_fixups(request_rec *r)
{
    mtls_req_t *st = fixup_state(r);
    int i;
    if (st == NULL)
        return settle_none(r);
    /* Another Require line admitted r: its pending denials were none. */
    for (i = 0; st->pending && i < st->pending->nelts; i++) {
        mtls_decision_t *d = APR_ARRAY_IDX(st->pending, i, mtls_decision_t *);
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "Require mtls was not satisfied (%s), but another "
                      "Require line admitted the request",
                      denial_text(r, d, "Require mtls"));
        count_refused(r, d, MTLS_OUT_OTHER, d->negated);
    }
    if (st->pending)
        st->pending->nelts = 0;
    return settle(r, st);
}

/* Has anything that settle() depends on changed since it ran? */
static int unsettled(request_rec *r, mtls_req_t *st)
{
    return !st->settled || st->conf != r->per_dir_config ||
           (st->rule && !mtls_conn_still(r, st->id)) ||
           !mtls_env_intact(r, &st->env) || !mtls_headers_intact(r, &st->hdr);
}

/* Later in fixups (just before mod_headers', and last): mod_dir's fast
 * redirect may have changed r's configuration, and its subrequest the
 * certificate; modules in between may have set variables in this
 * module's namespace. */
int mtls_fixups_recheck(request_rec *r)
{
    mtls_req_t *st = fixup_state(r);
    const mtls_conn_id_t *before;
    int rc;

    if (st == NULL)
        return settle_none(r);
    before = st->id;
    if (!unsettled(r, st))
        return DECLINED;
    rc = settle(r, st);
    /* Modules in between (mod_rewrite, mod_headers) may already have
     * used the identity exported before: a request must not go on with
     * two certificates' identities. A renegotiation to another
     * certificate during fixups (mod_dir's subrequest) ends it. */
    if (rc == DECLINED && before && st->id &&
        X509_cmp(before->id->cert, st->id->id->cert) != 0) {
        ap_log_rerror(
            APLOG_MARK, APLOG_ERR, 0, r,
            "client denied by server configuration: "
            "%s: the client certificate changed after its identity "
            "was exported (a renegotiation during fixups); subject "
            "\"%s\", earlier \"%s\"",
            ap_escape_logitem(r->pool, r->uri),
            ap_escape_logitem(r->pool,
                              mtls_identity_subject_text(r->pool, st->id->id)),
            ap_escape_logitem(r->pool,
                              mtls_identity_subject_text(r->pool, before->id)));
        scrub(r);
        st->rule = NULL;
        st->id = NULL;
        st->env.n = 0;
        mtls_headers_settle(r, NULL, &st->hdr);
        return HTTP_FORBIDDEN;
    }
    return rc;
}

/* ---- logging: the last word on the namespace ---------------------------- */

/* Before mod_log_config writes the request: whatever a handler or an
 * error path set there goes. */
int mtls_log_transaction(request_rec *r)
{
    for (; r; r = r->next) {
        const mtls_req_t *st = state_get(r);
        if (st && st->rule) {
            if (!mtls_env_intact(r, &st->env)) {
                /* A handler changed some (SSI #set): the module's again. */
                scrub(r);
                mtls_env_restore(r, &st->env);
            }
        }
        else {
            scrub(r);
        }
    }
    return DECLINED;
}

/* ---- for other modules -------------------------------------------------- */

const char *mtls_authz_matched_rule(request_rec *r)
{
    const mtls_req_t *st = state_get(r);
    return st && st->rule ? st->rule->source : NULL;
}

/* The identity variables of the request this module admitted, on
 * demand: for ap_ssl_var_lookup (mod_headers' %{...}s, mod_rewrite's
 * %{SSL:...}) and ap_expr's %{MTLS_...}. Nothing before fixups has
 * settled what admitted the request, so nothing is there before. */
const char *mtls_var_lookup(apr_pool_t *p, server_rec *s, conn_rec *c,
                            request_rec *r, const char *name)
{
    const mtls_req_t *st;
    (void)s;
    (void)c;
    if (r == NULL || name == NULL || (name[0] != 'M' && name[0] != 'm') ||
        strncasecmp(name, "MTLS_", 5) != 0)
        return NULL;
    st = state_get(r);
    if (st == NULL || st->rule == NULL || !mtls_conn_still(r, st->id))
        return NULL;
    return mtls_env_var(p ? p : r->pool, st->id->id, st->rule->source, name);
}

static const char *expr_var(ap_expr_eval_ctx_t *ctx, const void *data)
{
    return mtls_var_lookup(ctx->p, ctx->s, ctx->c, ctx->r, data);
}

int mtls_expr_lookup(ap_expr_lookup_parms *parms)
{
    if (parms->type != AP_EXPR_FUNC_VAR ||
        strncasecmp(parms->name, "MTLS_", 5) != 0)
        return DECLINED;
    *parms->func = expr_var;
    *parms->data = parms->name;
    return OK;
}

/* A copy: the request may outlive nothing of ours, but callers may keep
 * the string as long as the request. */
const char *mtls_authz_client_subject(request_rec *r)
{
    const mtls_req_t *st = state_get(r);
    return st && st->rule ? mtls_identity_subject_text(r->pool, st->id->id)
                          : NULL;
}
