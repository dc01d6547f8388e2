/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls-authz-rule: the rules of a --config file, as the module's own
 * code compiles the directives of one httpd scope: MTLSAllow and bare
 * rules (so that an MTLSAllowFile is itself a configuration), MTLSDeny,
 * MTLSAllowFile and MTLSDenyFile (mtls_rulefile_load), and the one-field
 * directives MTLSAllowSubject, MTLSAllowSAN, MTLSAllowIssuerFingerprint.
 * Each rule's source is "file:line", as the server names it. */

#include <apr_strings.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mtls_file.h"
#include "tool.h"

typedef struct {
    apr_pool_t *p;
    tool_config_t *cf;
    const char *dir; /* of the configuration file, for relative paths */
    const char *source;
} loader_t;

static mtls_ruleset_t *allow_rules(loader_t *l)
{
    if (l->cf->allow == NULL)
        l->cf->allow = mtls_ruleset_make(l->p);
    return l->cf->allow;
}

static mtls_ruleset_t *deny_rules(loader_t *l)
{
    if (l->cf->deny == NULL)
        l->cf->deny = mtls_ruleset_make_deny(l->p);
    return l->cf->deny;
}

static int is_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* ---- the directives ------------------------------------------------------ */

typedef const char *value_fn(loader_t *l, const char *value);

static const char *subject_value(loader_t *l, const char *v)
{
    return mtls_ruleset_add_subject(allow_rules(l), l->p, v, l->source);
}

static const char *san_value(loader_t *l, const char *v)
{
    return mtls_ruleset_add_san(allow_rules(l), l->p, v, l->source);
}

static const char *issuer_value(loader_t *l, const char *v)
{
    const unsigned char *fp = NULL;
    const char *err =
        mtls_ruleset_add_issuer(allow_rules(l), l->p, v, l->source, &fp);
    tool_gate_t *g;

    if (err == NULL && fp) {
        g = apr_array_push(l->cf->gates);
        memcpy(g->fp, fp, MTLS_FP_LEN);
        g->source = l->source;
    }
    return err;
}

/* Each word of args, as mtls_conf.c splits a one-field directive's. */
static const char *each_value(loader_t *l, const char *args, value_fn *fn)
{
    int n = 0;

    for (;;) {
        char *word;
        const char *err = mtls_next_word(l->p, &args, &word);
        if (err == NULL && word == NULL)
            break;
        if (err == NULL)
            err = fn(l, word);
        if (err)
            return err;
        n++;
    }
    return n ? NULL : "needs at least one value";
}

/* The path of a rule file: relative to the configuration's directory. */
static const char *rule_file(loader_t *l, const char *args, const char **path)
{
    char *word = NULL, *more = NULL;
    const char *err = mtls_next_word(l->p, &args, &word);

    if (err == NULL && word)
        err = mtls_next_word(l->p, &args, &more);
    if (err)
        return err;
    if (word == NULL || *word == '\0' || more)
        return "takes one path";
    *path = word[0] == '/' || l->dir == NULL
                ? word
                : apr_pstrcat(l->p, l->dir, "/", word, NULL);
    return NULL;
}

static const char *load_file(loader_t *l, const char *args, int deny)
{
    const char *path = NULL, *err = rule_file(l, args, &path);
    apr_pool_t *tmp;
    int n = 0;

    if (err)
        return err;
    if (apr_pool_create(&tmp, l->p) != APR_SUCCESS)
        return "out of memory";
    err = mtls_rulefile_load(deny ? deny_rules(l) : allow_rules(l), l->p, tmp,
                             path, NULL, NULL, &n);
    apr_pool_destroy(tmp);
    if (err == NULL && n == 0)
        fprintf(stderr, "mtls-authz-rule: warning: %s: %s %s has no rule\n",
                l->source, deny ? "MTLSDenyFile" : "MTLSAllowFile", path);
    return err;
}

/* ---- one line --------------------------------------------------------------
 */

/* The directives, by name (case-insensitive, as httpd reads them). */
enum { D_ALLOW, D_DENY, D_ALLOW_FILE, D_DENY_FILE, D_SUBJECT, D_SAN, D_ISSUER };
static const char *const directives[] = {"MTLSAllow",
                                         "MTLSDeny",
                                         "MTLSAllowFile",
                                         "MTLSDenyFile",
                                         "MTLSAllowSubject",
                                         "MTLSAllowSAN",
                                         "MTLSAllowIssuerFingerprint"};
#define N_DIRECTIVES ((int)(sizeof(directives) / sizeof(directives[0])))

static const char *directive(loader_t *l, int which, const char *args)
{
    switch (which) {
    case D_ALLOW:
        return mtls_ruleset_add_rule(allow_rules(l), l->p, args, l->source,
                                     NULL);
    case D_DENY:
        return mtls_ruleset_add_rule(deny_rules(l), l->p, args, l->source,
                                     NULL);
    case D_ALLOW_FILE:
        return load_file(l, args, 0);
    case D_DENY_FILE:
        return load_file(l, args, 1);
    case D_SUBJECT:
        return each_value(l, args, subject_value);
    case D_SAN:
        return each_value(l, args, san_value);
    default:
        return each_value(l, args, issuer_value);
    }
}

/* One line, without its newline: a directive, a bare allow rule, a
 * comment or blank. NULL or the error (with file:line). */
static const char *config_line(loader_t *l, char *line, size_t len)
{
    char *s = line, *e = line + len, *w;
    const char *err;
    int i;

    while (e > s && is_space(e[-1])) /* CR too; httpd drops trailing space */
        *--e = '\0';
    while (is_space(*s))
        s++;
    if (*s == '\0' || *s == '#')
        return NULL;
    for (w = s; *w && !is_space(*w); w++)
        ;
    for (i = 0; i < N_DIRECTIVES; i++) {
        size_t n = strlen(directives[i]);
        if ((size_t)(w - s) == n && strncasecmp(s, directives[i], n) == 0)
            break;
    }
    if (i < N_DIRECTIVES) {
        while (is_space(*w))
            w++;
        err = directive(l, i, w);
        return err ? apr_psprintf(l->p, "%s: %s: %s", l->source, directives[i],
                                  err)
                   : NULL;
    }
    if (memchr(s, '=', (size_t)(w - s)) == NULL)
        return apr_psprintf(l->p,
                            "%s: '%.*s' is not a rule (key=value words) nor "
                            "a directive this tool reads (MTLSAllow, "
                            "MTLSDeny, MTLSAllowFile, MTLSDenyFile, "
                            "MTLSAllowSubject, MTLSAllowSAN, "
                            "MTLSAllowIssuerFingerprint)",
                            l->source, (int)(w - s > 60 ? 60 : w - s), s);
    err = mtls_ruleset_add_rule(allow_rules(l), l->p, s, l->source, NULL);
    return err ? apr_psprintf(l->p, "%s: %s", l->source, err) : NULL;
}

/* ---- the file
 * ---------------------------------------------------------------- */

static const char *read_lines(loader_t *l, const char *path, FILE *f)
{
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0;
    const char *err = NULL;

    while (err == NULL && (n = getline(&buf, &cap, f)) >= 0) {
        lineno++;
        l->source = apr_psprintf(l->p, "%s:%d", path, lineno);
        if (n > 0 && buf[n - 1] == '\n')
            buf[--n] = '\0';
        if (strlen(buf) != (size_t)n)
            err = apr_psprintf(l->p, "%s: contains a NUL byte", l->source);
        else
            err = config_line(l, buf, (size_t)n);
    }
    if (err == NULL && ferror(f))
        err = apr_psprintf(l->p, "%s: %s", path, strerror(errno));
    free(buf);
    return err;
}

/* After the last rule, as the server does at startup: refuse a rule
 * that can never match, and sort the instants of time-boxed rules. */
static const char *finish(apr_pool_t *p, const char *path, mtls_ruleset_t *rs)
{
    const char *err;

    if (rs == NULL)
        return NULL;
    if ((err = mtls_ruleset_check(rs, p)) != NULL)
        return apr_psprintf(p, "%s: %s", path, err);
    mtls_ruleset_finish(rs);
    return NULL;
}

const char *tool_config_load(apr_pool_t *p, const char *path,
                             tool_config_t **out)
{
    loader_t l;
    const char *slash = strrchr(path, '/'), *err;
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return apr_psprintf(p, "%s: %s", path, strerror(errno));
    l.p = p;
    l.cf = apr_pcalloc(p, sizeof(*l.cf));
    l.cf->path = path;
    l.cf->gates = apr_array_make(p, 2, sizeof(tool_gate_t));
    l.dir = slash ? apr_pstrmemdup(p, path, (apr_size_t)(slash - path)) : NULL;
    if (slash == path)
        l.dir = "";
    err = read_lines(&l, path, f);
    fclose(f);
    if (err == NULL)
        err = finish(p, path, l.cf->allow);
    if (err == NULL)
        err = finish(p, path, l.cf->deny);
    if (err == NULL)
        *out = l.cf;
    return err;
}
