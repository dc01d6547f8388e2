/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include "httpd.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include <openssl/x509v3.h>
#include <string.h>

#include "mtls_env.h"
#include "mtls_identity.h"

/* Printable ASCII only: the value may become a request header. */
static int safe(const char *v, apr_size_t len)
{
    apr_size_t i;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c >= 0x7f)
            return 0;
    }
    return len > 0;
}

/* Calls fn for each SAN that becomes a variable, with the variable's type
 * name and number (per type, from 0, in the certificate's order, counting
 * only what is exported) and its value. Stops when fn returns nonzero. */
typedef int san_var_fn(void *baton, const char *type, int n, const char *v,
                       apr_size_t len);

static int san_vars(const mtls_identity_t *id, san_var_fn *fn, void *baton)
{
    int n[4] = {0, 0, 0, 0}, i;
    for (i = 0; i < id->sans->nelts; i++) {
        const mtls_san_t *s = &APR_ARRAY_IDX(id->sans, i, mtls_san_t);
        char buf[INET6_ADDRSTRLEN];
        const char *v = s->v;
        apr_size_t len = s->len;
        int t = s->type == GEN_DNS     ? 0
                : s->type == GEN_EMAIL ? 1
                : s->type == GEN_URI   ? 2
                                       : 3;
        static const char *const names[4] = {"DNS", "EMAIL", "URI", "IP"};
        if (s->type == GEN_IPADD) {
            v = mtls_san_ip_text((const unsigned char *)s->v, s->len, buf,
                                 sizeof(buf));
            len = v ? strlen(v) : 0;
        }
        if (v == NULL || !safe(v, len))
            continue;
        if (fn(baton, names[t], n[t]++, v, len))
            return 1;
    }
    return 0;
}

typedef struct {
    apr_pool_t *p;
    apr_table_t *env;
} prep_baton;

static int set_san(void *baton, const char *type, int n, const char *v,
                   apr_size_t len)
{
    prep_baton *b = baton;
    apr_table_setn(b->env, apr_psprintf(b->p, "MTLS_CLIENT_SAN_%s_%d", type, n),
                   apr_pstrmemdup(b->p, v, len));
    return 0;
}

apr_table_t *mtls_env_prepare(apr_pool_t *p, const mtls_identity_t *id)
{
    prep_baton b = {p, apr_table_make(p, 8)};
    const char *subject = mtls_identity_subject_text(p, id);
    unsigned char buf[MTLS_FP_LEN];
    const unsigned char *cert_fp = mtls_identity_cert_fp(id, buf);

    if (safe(subject, strlen(subject)))
        apr_table_setn(b.env, "MTLS_CLIENT_SUBJECT", subject);
    if (cert_fp != NULL)
        apr_table_setn(b.env, "MTLS_CLIENT_CERT_SHA256",
                       mtls_fp_hex(p, cert_fp));
    if (id->n_issuers > 0)
        apr_table_setn(b.env, "MTLS_CLIENT_ISSUER_SHA256",
                       mtls_fp_hex(p, id->issuer_fps));
    san_vars(id, set_san, &b);
    return b.env;
}

typedef struct {
    apr_pool_t *p;
    const char *type; /* wanted */
    apr_size_t type_len;
    long n;
    const char *found;
} find_baton;

static int find_san(void *baton, const char *type, int n, const char *v,
                    apr_size_t len)
{
    find_baton *b = baton;
    if (n != b->n || strlen(type) != b->type_len ||
        strncasecmp(type, b->type, b->type_len) != 0)
        return 0;
    b->found = apr_pstrmemdup(b->p, v, len);
    return 1;
}

/* MTLS_CLIENT_SAN_<T>_<n>: suffix is "<T>_<n>". */
static const char *san_var(apr_pool_t *p, const mtls_identity_t *id,
                           const char *suffix)
{
    const char *us = strrchr(suffix, '_');
    char *end;
    find_baton b = {p, suffix, 0, 0, NULL};

    if (us == NULL || us == suffix || !apr_isdigit(us[1]))
        return NULL;
    b.type_len = (apr_size_t)(us - suffix);
    b.n = strtol(us + 1, &end, 10);
    if (*end != '\0' || (us[1] == '0' && us[2] != '\0'))
        return NULL;
    san_vars(id, find_san, &b);
    return b.found;
}

const char *mtls_env_var(apr_pool_t *p, const mtls_identity_t *id,
                         const char *rule, const char *name)
{
    if (strcasecmp(name, "MTLS_AUTHZ_RULE") == 0)
        return apr_pstrdup(p, rule);
    if (strcasecmp(name, "MTLS_CLIENT_SUBJECT") == 0) {
        const char *subject = mtls_identity_subject_text(p, id);
        return safe(subject, strlen(subject)) ? subject : NULL;
    }
    if (strcasecmp(name, "MTLS_CLIENT_CERT_SHA256") == 0) {
        unsigned char buf[MTLS_FP_LEN];
        const unsigned char *fp = mtls_identity_cert_fp(id, buf);
        return fp ? mtls_fp_hex(p, fp) : NULL;
    }
    if (strcasecmp(name, "MTLS_CLIENT_ISSUER_SHA256") == 0)
        return id->n_issuers > 0 ? mtls_fp_hex(p, id->issuer_fps) : NULL;
    if (strncasecmp(name, "MTLS_CLIENT_SAN_", 16) == 0)
        return san_var(p, id, name + 16);
    return NULL;
}

static const char rule_var[] = "MTLS_AUTHZ_RULE";

void mtls_env_set(request_rec *r, const mtls_rule_t *rule,
                  const apr_table_t *vars, mtls_env_mark_t *mark)
{
    const apr_array_header_t *a;
    const apr_table_entry_t *t;
    apr_size_t size = 0, n;
    char *buf;
    int i;

    apr_table_addn(r->subprocess_env, rule_var, rule->source);
    mark->rule = rule->source;
    mark->block = NULL;
    mark->size = 0;
    mark->n = 1;
    if (vars == NULL)
        return;
    /* Copied, in one block, so that the request's variables never point
     * into an identity: httpd copies a subrequest's variables into its
     * parent (fast redirects), which may outlive the identity. */
    a = apr_table_elts(vars);
    t = (const apr_table_entry_t *)a->elts;
    for (i = 0; i < a->nelts; i++)
        size += strlen(t[i].key) + strlen(t[i].val) + 2;
    buf = apr_palloc(r->pool, size);
    mark->block = buf;
    mark->size = size;
    for (i = 0; i < a->nelts; i++) {
        char *k = buf, *v;
        n = strlen(t[i].key) + 1;
        memcpy(k, t[i].key, n);
        v = k + n;
        n = strlen(t[i].val) + 1;
        memcpy(v, t[i].val, n);
        buf = v + n;
        apr_table_addn(r->subprocess_env, k, v);
        mark->n++;
    }
}

static int in_block(const mtls_env_mark_t *m, const char *s)
{
    return m->block && s >= m->block && s < m->block + m->size;
}

/* Is this entry one that mark recorded, name and value? */
static int ours(const mtls_env_mark_t *m, const apr_table_entry_t *e)
{
    return m && m->n &&
           ((e->key == rule_var && e->val == m->rule) ||
            (in_block(m, e->key) && in_block(m, e->val)));
}

static int in_namespace(const apr_table_entry_t *e)
{
    /* The first letter first: this runs over every entry several times
     * per request. */
    return e->key && (e->key[0] == 'M' || e->key[0] == 'm') &&
           strncasecmp(e->key + 1, "TLS_", 4) == 0;
}

/* Does t hold a name of the namespace? One tight pass: this runs several
 * times per request, over every entry. */
static int any_in_namespace(const apr_table_t *t)
{
    const apr_array_header_t *a = apr_table_elts(t);
    const apr_table_entry_t *e = (const apr_table_entry_t *)a->elts;
    int i;
    for (i = 0; i < a->nelts; i++) {
        if (e[i].key && (e[i].key[0] | 0x20) == 'm' && in_namespace(&e[i]))
            return 1;
    }
    return 0;
}

int mtls_env_intact(const request_rec *r, const mtls_env_mark_t *mark)
{
    const apr_array_header_t *a = apr_table_elts(r->subprocess_env);
    const apr_table_entry_t *e = (const apr_table_entry_t *)a->elts;
    int i, n = 0;
    if (mark->n == 0)
        return !any_in_namespace(r->subprocess_env);
    for (i = 0; i < a->nelts; i++) {
        if (ours(mark, &e[i]))
            n++;
        else if (in_namespace(&e[i]))
            return 0;
    }
    return n == mark->n;
}

void mtls_env_scrub(request_rec *r, const mtls_env_mark_t *mark)
{
    apr_table_t *t = r->subprocess_env;
    const apr_array_header_t *a = apr_table_elts(t);
    int i = 0;
    if ((mark == NULL || mark->n == 0) && !any_in_namespace(t))
        return;
    while (i < a->nelts) {
        const apr_table_entry_t *e = &APR_ARRAY_IDX(a, i, apr_table_entry_t);
        if (!ours(mark, e) && in_namespace(e))
            /* Every entry of that name goes; the rest moves down to i. */
            apr_table_unset(t, e->key);
        else
            i++;
    }
}

void mtls_env_restore(request_rec *r, const mtls_env_mark_t *mark)
{
    const char *p = mark->block, *end = mark->block + mark->size;
    if (mark->n == 0)
        return;
    apr_table_addn(r->subprocess_env, rule_var, mark->rule);
    while (p && p < end) {
        const char *k = p, *v = k + strlen(k) + 1;
        apr_table_addn(r->subprocess_env, k, v);
        p = v + strlen(v) + 1;
    }
}
