/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls-authz-rule --check and --diff reports:
 *   text  one line per certificate: "CERT: admit: rule FILE:LINE
 *         (constraints)" or "CERT: refuse: REASON";
 *   tsv   a header line, then tab-separated fixed columns; a tab,
 *         newline, carriage return or backslash in a field is written
 *         \t, \n, \r, \\;
 *   json  one document; strings escaped as RFC 8259 says, bytes that are
 *         not UTF-8 as U+FFFD. */

#include <apr_strings.h>
#include <stdio.h>
#include <string.h>

#include "mtls_time.h"
#include "tool.h"

/* ---- escaping ------------------------------------------------------------ */

static const char *tsv_field(apr_pool_t *p, const char *s)
{
    char *o = apr_palloc(p, strlen(s) * 2 + 1), *q = o;

    for (; *s; s++) {
        const char *e = *s == '\t'   ? "\\t"
                        : *s == '\n' ? "\\n"
                        : *s == '\r' ? "\\r"
                        : *s == '\\' ? "\\\\"
                                     : NULL;
        if (e) {
            memcpy(q, e, 2);
            q += 2;
        }
        else {
            *q++ = *s;
        }
    }
    *q = '\0';
    return o;
}

/* The length of the valid UTF-8 sequence at s, or 0. */
static int utf8_len(const unsigned char *s)
{
    int n = s[0] >= 0xf0 && s[0] <= 0xf4   ? 4
            : s[0] >= 0xe0 && s[0] <= 0xef ? 3
            : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
                                           : 0;
    int i;

    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    }
    /* No overlong forms, surrogates or code points past U+10FFFF. */
    if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) ||
        (n == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (n == 4 && s[0] == 0xf0 && s[1] < 0x90) ||
        (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

/* A JSON string, quoted; NULL as null. */
static const char *json_str(apr_pool_t *p, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    char *o, *q;

    if (str == NULL)
        return "null";
    o = q = apr_palloc(p, strlen(str) * 6 + 3);
    *q++ = '"';
    while (*s) {
        int n = *s >= 0x80 ? utf8_len(s) : 1;
        if (*s == '"' || *s == '\\') {
            *q++ = '\\';
            *q++ = (char)*s;
        }
        else if (*s < 0x20 || *s == 0x7f)
            q += sprintf(q, "\\u%04x", *s);
        else if (n == 0)
            q += sprintf(q, "\\ufffd");
        else {
            memcpy(q, s, (size_t)n);
            q += n;
        }
        s += n ? n : 1;
    }
    *q++ = '"';
    *q = '\0';
    return o;
}

static const char *json_list(apr_pool_t *p, const apr_array_header_t *a)
{
    const char *o = "[";
    int i;

    for (i = 0; a && i < a->nelts; i++)
        o = apr_pstrcat(p, o, i ? ", " : "",
                        json_str(p, APR_ARRAY_IDX(a, i, const char *)), NULL);
    return apr_pstrcat(p, o, "]", NULL);
}

/* ---- one decision -----------------------------------------------------------
 */

static const char *what_text(apr_pool_t *p, const apr_array_header_t *a)
{
    const char *o = "";
    int i;

    for (i = 0; a && i < a->nelts; i++)
        o = apr_pstrcat(p, o, i ? ", " : "", APR_ARRAY_IDX(a, i, const char *),
                        NULL);
    return o;
}

/* The rule and why, as text: "rule F:L (subject, issuer)" or the
 * reason, with the deny rule's constraints. */
static const char *desc(apr_pool_t *p, const tool_decision_t *d)
{
    const char *what = what_text(p, d->what);

    if (d->admit)
        return apr_psprintf(p, "rule %s (%s)", d->rule, what);
    return *what ? apr_psprintf(p, "%s (%s)", d->reason, what) : d->reason;
}

/* The TSV columns decision, rule, reason/constraints. */
static const char *tsv_decision(apr_pool_t *p, const tool_decision_t *d)
{
    const char *detail = d->admit ? what_text(p, d->what) : desc(p, d);

    return apr_pstrcat(p, d->admit ? "admit" : "refuse", "\t",
                       d->rule ? tsv_field(p, d->rule) : "-", "\t",
                       tsv_field(p, detail), NULL);
}

static const char *json_decision(apr_pool_t *p, const tool_decision_t *d)
{
    return apr_psprintf(p,
                        "\"decision\": \"%s\", \"rule\": %s, "
                        "\"constraints\": %s, \"reason\": %s",
                        d->admit ? "admit" : "refuse", json_str(p, d->rule),
                        json_list(p, d->what),
                        json_str(p, d->admit ? NULL : d->reason));
}

static const char *json_at(apr_pool_t *p, apr_time_t at)
{
    char t[MTLS_TIME_TEXT_LEN];
    return json_str(p, mtls_time_text(t, at));
}

/* ---- the reports
 * -------------------------------------------------------------- */

void tool_report_check(tool_t *t, tool_format_e fmt, const char *config,
                       apr_time_t at, const tool_cert_t *certs,
                       const tool_decision_t *d, int n)
{
    apr_pool_t *p = t->p;
    int i;

    if (fmt == FMT_TSV)
        tool_line(t, "cert\tdecision\trule\treason");
    if (fmt == FMT_JSON)
        tool_line(t, apr_psprintf(p,
                                  "{\"config\": %s, \"at\": %s, "
                                  "\"certificates\": [",
                                  json_str(p, config), json_at(p, at)));
    for (i = 0; i < n; i++) {
        const tool_cert_t *c = &certs[i];
        if (fmt == FMT_TSV)
            tool_line(t, apr_pstrcat(p, tsv_field(p, c->path), "\t",
                                     tsv_decision(p, &d[i]), NULL));
        else if (fmt == FMT_JSON)
            tool_line(
                t, apr_psprintf(p, "  {\"cert\": %s, \"subject\": %s, %s}%s",
                                json_str(p, c->path), json_str(p, c->subject),
                                json_decision(p, &d[i]), i + 1 < n ? "," : ""));
        else
            tool_line(t, apr_psprintf(
                             p, "%s: %s: %s", tool_show_path(p, c->path),
                             d[i].admit ? "admit" : "refuse", desc(p, &d[i])));
    }
    if (fmt == FMT_JSON)
        tool_line(t, "]}");
}

static void diff_line(tool_t *t, tool_format_e fmt, const tool_cert_t *c,
                      const tool_decision_t *od, const tool_decision_t *nd,
                      int last)
{
    apr_pool_t *p = t->p;

    if (fmt == FMT_TSV)
        tool_line(t, apr_pstrcat(p, tsv_field(p, c->path), "\t",
                                 tsv_decision(p, od), "\t", tsv_decision(p, nd),
                                 NULL));
    else if (fmt == FMT_JSON)
        tool_line(t, apr_psprintf(p,
                                  "  {\"cert\": %s, \"subject\": %s, "
                                  "\"old\": {%s}, \"new\": {%s}}%s",
                                  json_str(p, c->path), json_str(p, c->subject),
                                  json_decision(p, od), json_decision(p, nd),
                                  last ? "" : ","));
    else
        tool_line(t, apr_psprintf(p, "%s: %s -> %s: was %s; now %s",
                                  tool_show_path(p, c->path),
                                  od->admit ? "admit" : "refuse",
                                  nd->admit ? "admit" : "refuse", desc(p, od),
                                  desc(p, nd)));
}

void tool_report_diff(tool_t *t, tool_format_e fmt, const char *old_path,
                      const char *new_path, apr_time_t at,
                      const tool_cert_t *certs, const tool_decision_t *old_d,
                      const tool_decision_t *new_d, int n)
{
    apr_pool_t *p = t->p;
    int i, last = -1;

    for (i = 0; i < n; i++) {
        if (old_d[i].admit != new_d[i].admit)
            last = i;
    }
    if (fmt == FMT_TSV)
        tool_line(t, "cert\told\told_rule\told_reason\tnew\tnew_rule\t"
                     "new_reason");
    if (fmt == FMT_JSON)
        tool_line(t, apr_psprintf(p,
                                  "{\"old\": %s, \"new\": %s, \"at\": %s, "
                                  "\"changed\": [",
                                  json_str(p, old_path), json_str(p, new_path),
                                  json_at(p, at)));
    for (i = 0; i < n; i++) {
        if (old_d[i].admit != new_d[i].admit)
            diff_line(t, fmt, &certs[i], &old_d[i], &new_d[i], i == last);
    }
    if (fmt == FMT_JSON)
        tool_line(t, "]}");
}
