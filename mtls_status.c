/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* The status handler; see mtls_status.h and docs/status.md. Everything it
 * prints is read from mtls_stats at the moment of the request: nothing is
 * kept between requests. */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"
#include <string.h>

#include "mtls_stats.h"
#include "mtls_status.h"
#include "mtls_time.h"
#include "mtls_version.h"

APLOG_USE_MODULE(mtls_authz);

typedef enum { FMT_HTML, FMT_JSON, FMT_PROM } status_fmt_e;

static const char *when(apr_pool_t *p, apr_time_t t)
{
    char buf[MTLS_TIME_TEXT_LEN];
    if (t == 0)
        return NULL;
    mtls_time_text(buf, t);
    return apr_pstrdup(p, buf);
}

/* ---- JSON ---------------------------------------------------------------- */

static const char *json_str(apr_pool_t *p, const char *s)
{
    apr_size_t n = 2;
    const unsigned char *u;
    char *out, *o;
    if (s == NULL)
        return "null";
    for (u = (const unsigned char *)s; *u; u++)
        n += *u < 0x20 ? 6 : (*u == '"' || *u == '\\') ? 2 : 1;
    o = out = apr_palloc(p, n + 1);
    *o++ = '"';
    for (u = (const unsigned char *)s; *u; u++) {
        if (*u < 0x20) {
            apr_snprintf(o, 7, "\\u%04x", *u);
            o += 6;
            continue;
        }
        if (*u == '"' || *u == '\\')
            *o++ = '\\';
        *o++ = (char)*u;
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

typedef struct {
    request_rec *r;
    int n;
} out_t;

static int json_rule(void *baton, const mtls_stats_rule_t *v)
{
    out_t *o = baton;
    apr_pool_t *p = o->r->pool;
    ap_rprintf(o->r,
               "%s\n    {\"rule\": %s, \"scope\": %s, \"kind\": \"%s\", "
               "\"admissions\": %" APR_UINT64_T_FMT
               ", \"denials\": %" APR_UINT64_T_FMT
               ", \"last_admission\": %s, \"since\": %s}",
               o->n++ ? "," : "", json_str(p, v->name), json_str(p, v->scope),
               v->rule->ext && v->rule->ext->deny ? "deny" : "allow",
               v->admissions, v->denials, json_str(p, when(p, v->last)),
               json_str(p, when(p, v->since)));
    return 1;
}

static void json_decision(void *baton, const char *scope, int outcome, int why,
                          apr_uint64_t n)
{
    out_t *o = baton;
    ap_rprintf(o->r,
               "%s\n    {\"scope\": %s, \"outcome\": \"%s\", \"reason\": "
               "\"%s\", \"count\": %" APR_UINT64_T_FMT "}",
               o->n++ ? "," : "", json_str(o->r->pool, scope),
               mtls_stats_outcome_name(outcome), mtls_stats_why_name(why), n);
}

static long days_left(apr_time_t not_after, apr_time_t now)
{
    return not_after > now
               ? (long)((not_after - now) / apr_time_from_sec(86400))
               : 0;
}

static void json_clients(request_rec *r, const apr_array_header_t *cs,
                         apr_time_t now)
{
    apr_pool_t *p = r->pool;
    int i;
    for (i = 0; i < cs->nelts; i++) {
        const mtls_stats_client_t *c =
            &APR_ARRAY_IDX(cs, i, mtls_stats_client_t);
        ap_rprintf(r,
                   "%s\n    {\"subject\": %s, \"issuer\": %s, "
                   "\"issuer_sha256\": \"%s\", \"cert_sha256\": \"%s\", "
                   "\"not_after\": %s, \"days_left\": %ld, \"rule\": %s, "
                   "\"last_seen\": %s, \"requests\": %" APR_UINT64_T_FMT "}",
                   i ? "," : "", json_str(p, c->subject),
                   json_str(p, c->issuer), mtls_fp_hex(p, c->issuer_fp),
                   mtls_fp_hex(p, c->cert_fp),
                   json_str(p, when(p, c->not_after)),
                   days_left(c->not_after, now), json_str(p, c->rule),
                   json_str(p, when(p, c->last_seen)), c->requests);
    }
}

static void status_json(request_rec *r, const mtls_stats_info_t *info,
                        const apr_array_header_t *cs, apr_time_t now)
{
    apr_pool_t *p = r->pool;
    out_t o = {r, 0};
    ap_set_content_type(r, "application/json");
    ap_rprintf(r,
               "{\n  \"version\": \"%s\",\n  \"now\": %s,\n  \"started\": "
               "%s,\n  \"restarted\": %s,\n  \"seen_cache\": %s,\n"
               "  \"rules\": [",
               MTLS_AUTHZ_VERSION, json_str(p, when(p, now)),
               json_str(p, when(p, info->started)),
               json_str(p, when(p, info->restarted)), json_str(p, info->cache));
    mtls_stats_each_rule(r->pool, json_rule, &o);
    ap_rputs("\n  ],\n  \"clients\": [", r);
    json_clients(r, cs, now);
    ap_rputs("\n  ],\n  \"decisions\": [", r);
    o.n = 0;
    mtls_stats_each_decision(json_decision, &o);
    ap_rputs("\n  ]\n}\n", r);
}

/* ---- Prometheus ---------------------------------------------------------- */

/* A label value: backslash, double quote and newline escaped. */
static const char *prom_val(apr_pool_t *p, const char *s)
{
    apr_size_t n = 0;
    const char *c;
    char *out, *o;
    for (c = s; *c; c++)
        n += (*c == '\\' || *c == '"' || *c == '\n') ? 2 : 1;
    o = out = apr_palloc(p, n + 1);
    for (c = s; *c; c++) {
        if (*c == '\\' || *c == '"' || *c == '\n') {
            *o++ = '\\';
            *o++ = *c == '\n' ? 'n' : *c;
        }
        else {
            *o++ = *c;
        }
    }
    *o = '\0';
    return out;
}

static void prom_family(request_rec *r, const char *name, const char *type,
                        const char *help)
{
    ap_rprintf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef struct {
    request_rec *r;
    int what; /* 0 admissions, 1 denials, 2 last admission */
} prom_rules_t;

static int prom_rule(void *baton, const mtls_stats_rule_t *v)
{
    prom_rules_t *pr = baton;
    request_rec *r = pr->r;
    const char *labels;
    if (pr->what == 2 && v->last == 0)
        return 1;
    labels =
        apr_psprintf(r->pool, "{rule=\"%s\",scope=\"%s\"}",
                     prom_val(r->pool, v->name), prom_val(r->pool, v->scope));
    if (pr->what == 2)
        ap_rprintf(r,
                   "mtls_authz_rule_last_admission_timestamp_seconds%s "
                   "%" APR_TIME_T_FMT "\n",
                   labels, apr_time_sec(v->last));
    else
        ap_rprintf(r, "mtls_authz_rule_%s_total%s %" APR_UINT64_T_FMT "\n",
                   pr->what ? "denials" : "admissions", labels,
                   pr->what ? v->denials : v->admissions);
    return 1;
}

static void prom_decision(void *baton, const char *scope, int outcome, int why,
                          apr_uint64_t n)
{
    request_rec *r = baton;
    ap_rprintf(r,
               "mtls_authz_decisions_total{outcome=\"%s\",reason=\"%s\","
               "scope=\"%s\"} %" APR_UINT64_T_FMT "\n",
               mtls_stats_outcome_name(outcome), mtls_stats_why_name(why),
               prom_val(r->pool, scope), n);
}

static void prom_rules(request_rec *r)
{
    prom_rules_t pr = {r, 0};
    prom_family(r, "mtls_authz_rule_admissions_total", "counter",
                "Requests each rule admitted.");
    mtls_stats_each_rule(r->pool, prom_rule, &pr);
    pr.what = 1;
    prom_family(r, "mtls_authz_rule_denials_total", "counter",
                "Requests refused that the log line attributes to each rule "
                "(a deny rule, or a rule outside its time window).");
    mtls_stats_each_rule(r->pool, prom_rule, &pr);
    pr.what = 2;
    prom_family(r, "mtls_authz_rule_last_admission_timestamp_seconds", "gauge",
                "When each rule last admitted a request (Unix time).");
    mtls_stats_each_rule(r->pool, prom_rule, &pr);
}

static void status_prom(request_rec *r, const mtls_stats_info_t *info,
                        const apr_array_header_t *cs)
{
    apr_pool_t *p = r->pool;
    int i;
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    prom_family(r, "mtls_authz_start_time_seconds", "gauge",
                "When the counters began (Unix time): httpd's start.");
    ap_rprintf(r, "mtls_authz_start_time_seconds %" APR_TIME_T_FMT "\n",
               apr_time_sec(info->started));
    prom_family(r, "mtls_authz_decisions_total", "counter",
                "Access decisions per location scope, by outcome and "
                "reason.");
    mtls_stats_each_decision(prom_decision, r);
    prom_rules(r);
    prom_family(r, "mtls_authz_client_cert_not_after_timestamp_seconds",
                "gauge",
                "When each recently admitted client certificate expires "
                "(Unix time).");
    for (i = 0; i < cs->nelts; i++) {
        const mtls_stats_client_t *c =
            &APR_ARRAY_IDX(cs, i, mtls_stats_client_t);
        ap_rprintf(r,
                   "mtls_authz_client_cert_not_after_timestamp_seconds"
                   "{subject=\"%s\",issuer_sha256=\"%s\",cert_sha256=\"%s\"} "
                   "%" APR_TIME_T_FMT "\n",
                   prom_val(p, c->subject), mtls_fp_hex(p, c->issuer_fp),
                   mtls_fp_hex(p, c->cert_fp), apr_time_sec(c->not_after));
    }
}

/* ---- HTML ---------------------------------------------------------------- */

static const char *h(apr_pool_t *p, const char *s)
{
    return s ? ap_escape_html2(p, s, 1) : "";
}

static const char *const css =
    "body{font-family:sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;margin-bottom:2em}"
    "th,td{border:1px solid #bbb;padding:.25em .6em;text-align:left;"
    "vertical-align:top}th{background:#eee}td.n{text-align:right}"
    "tr.unused td{color:#888}tr.soon td{background:#fff3cd}"
    "tr.deny td:first-child{font-weight:bold}";

typedef struct {
    request_rec *r;
    apr_time_t now;
} html_t;

static int html_rule(void *baton, const mtls_stats_rule_t *v)
{
    html_t *x = baton;
    request_rec *r = x->r;
    apr_pool_t *p = r->pool;
    int deny = v->rule->ext && v->rule->ext->deny;
    int unused = v->admissions == 0 && v->denials == 0;
    ap_rprintf(
        r,
        "<tr class=\"%s\"><td>%s</td><td>%s</td><td>%s</td>"
        "<td class=\"n\">%" APR_UINT64_T_FMT "</td><td>%s</td>"
        "<td class=\"n\">%" APR_UINT64_T_FMT "</td><td>%s</td></tr>\n",
        unused ? "unused"
        : deny ? "deny"
               : "",
        deny ? "deny" : "allow", h(p, v->name), h(p, v->scope), v->admissions,
        v->last ? when(p, v->last) : "-", v->denials,
        unused ? apr_pstrcat(p, "never used since ", when(p, v->since), NULL)
               : "");
    return 1;
}

static void html_decision(void *baton, const char *scope, int outcome, int why,
                          apr_uint64_t n)
{
    request_rec *r = baton;
    ap_rprintf(r,
               "<tr><td>%s</td><td>%s</td><td>%s</td><td class=\"n\">"
               "%" APR_UINT64_T_FMT "</td></tr>\n",
               h(r->pool, scope), mtls_stats_outcome_name(outcome),
               mtls_stats_why_name(why), n);
}

static void html_clients(request_rec *r, const mtls_stats_info_t *info,
                         const apr_array_header_t *cs, apr_time_t now)
{
    apr_pool_t *p = r->pool;
    int i;
    ap_rputs("<h2>Recently seen clients</h2>\n", r);
    if (info->cache == NULL)
        ap_rputs("<p>Off: no MTLSAuthzSeenCache (load mod_socache_shmcb, or "
                 "name a provider).</p>\n",
                 r);
    ap_rputs("<table id=\"clients\">\n<tr><th>Subject</th><th>Issuer</th>"
             "<th>Expires</th><th>Days left</th><th>Admitted by</th>"
             "<th>Last seen</th><th>Requests</th></tr>\n",
             r);
    for (i = 0; i < cs->nelts; i++) {
        const mtls_stats_client_t *c =
            &APR_ARRAY_IDX(cs, i, mtls_stats_client_t);
        long d = days_left(c->not_after, now);
        ap_rprintf(r,
                   "<tr class=\"%s\"><td>%s</td><td>%s<br><small>sha256:%s"
                   "</small></td><td>%s</td><td class=\"n\">%ld</td>"
                   "<td>%s</td><td>%s</td><td class=\"n\">%" APR_UINT64_T_FMT
                   "</td></tr>\n",
                   d < 30 ? "soon" : "", h(p, c->subject), h(p, c->issuer),
                   mtls_fp_hex(p, c->issuer_fp), when(p, c->not_after), d,
                   h(p, c->rule), when(p, c->last_seen), c->requests);
    }
    ap_rputs("</table>\n", r);
}

static void status_html(request_rec *r, const mtls_stats_info_t *info,
                        const apr_array_header_t *cs, apr_time_t now)
{
    apr_pool_t *p = r->pool;
    html_t x = {r, now};
    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rprintf(r,
               "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
               "charset=\"utf-8\"><title>mod_mtls_authz status</title>"
               "<style>%s</style></head><body>\n<h1>mod_mtls_authz "
               "status</h1>\n<p>Version %s. Now %s. Counting since %s; last "
               "restart %s. Other formats: <a href=\"?json\">JSON</a>, <a "
               "href=\"?prometheus\">Prometheus</a>.</p>\n",
               css, MTLS_AUTHZ_VERSION, when(p, now), when(p, info->started),
               when(p, info->restarted));
    ap_rputs("<h2>Rules</h2>\n<table id=\"rules\">\n<tr><th>Kind</th>"
             "<th>Rule</th><th>Scope</th><th>Admissions</th>"
             "<th>Last admission</th><th>Denials</th><th>Note</th></tr>\n",
             r);
    mtls_stats_each_rule(r->pool, html_rule, &x);
    ap_rputs("</table>\n", r);
    html_clients(r, info, cs, now);
    ap_rputs("<h2>Decisions</h2>\n<table id=\"decisions\">\n<tr>"
             "<th>Scope</th><th>Outcome</th><th>Reason</th><th>Count</th>"
             "</tr>\n",
             r);
    mtls_stats_each_decision(html_decision, r);
    ap_rputs("</table>\n</body></html>\n", r);
}

/* ---- the handler --------------------------------------------------------- */

/* The query is the format's name alone, or with an empty value (as
 * Prometheus sends a scrape's params: ?prometheus=). */
static int is_arg(const char *args, const char *name)
{
    apr_size_t n = strlen(name);
    return strncmp(args, name, n) == 0 &&
           (args[n] == '\0' || (args[n] == '=' && args[n + 1] == '\0'));
}

/* Was an .htaccess file read for r? Its author could have set the
 * handler: the page names every client and rule, so only the server
 * configuration may put it somewhere. */
static int htaccess_read(const request_rec *r)
{
    const struct htaccess_result *h;
    for (h = r->htaccess; h; h = h->next) {
        if (h->htaccess)
            return 1;
    }
    return 0;
}

static int status_page(request_rec *r)
{
    mtls_stats_info_t info;
    status_fmt_e fmt;
    const apr_array_header_t *cs;
    apr_time_t now = apr_time_now();

    r->allowed = AP_METHOD_BIT << M_GET;
    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED;
    if (htaccess_read(r)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "%s: not served where an .htaccess file applies "
                      "(it could have set the handler); use AllowOverride "
                      "None for this location's directory",
                      MTLS_STATUS_HANDLER);
        return HTTP_FORBIDDEN;
    }
    if (r->args == NULL || *r->args == '\0' || is_arg(r->args, "html"))
        fmt = FMT_HTML;
    else if (is_arg(r->args, "json"))
        fmt = FMT_JSON;
    else if (is_arg(r->args, "prometheus"))
        fmt = FMT_PROM;
    else
        return HTTP_BAD_REQUEST;
    mtls_stats_info(&info);
    if (!info.ready)
        return HTTP_SERVICE_UNAVAILABLE;
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    cs = mtls_stats_clients(r, r->pool);
    if (fmt == FMT_JSON)
        status_json(r, &info, cs, now);
    else if (fmt == FMT_PROM)
        status_prom(r, &info, cs);
    else
        status_html(r, &info, cs, now);
    return OK;
}

/* Every request asks; most handlers are content types. */
int mtls_status_handler(request_rec *r)
{
    if (r->handler == NULL || r->handler[0] != 'm' ||
        strcmp(r->handler, MTLS_STATUS_HANDLER) != 0)
        return DECLINED;
    return status_page(r);
}
