/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include "httpd.h"
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

static void set_san(apr_pool_t *p, apr_table_t *env, const char *type, int *n,
                    const char *v, apr_size_t len)
{
    if (!safe(v, len))
        return;
    apr_table_setn(env, apr_psprintf(p, "MTLS_CLIENT_SAN_%s_%d", type, (*n)++),
                   apr_pstrmemdup(p, v, len));
}

static void set_sans(apr_pool_t *p, apr_table_t *env, const mtls_identity_t *id)
{
    int n_dns = 0, n_email = 0, n_uri = 0, n_ip = 0, i;
    for (i = 0; i < id->sans->nelts; i++) {
        const mtls_san_t *s = &APR_ARRAY_IDX(id->sans, i, mtls_san_t);
        if (s->type == GEN_IPADD) {
            char buf[INET6_ADDRSTRLEN];
            const char *text = mtls_san_ip_text((const unsigned char *)s->v,
                                                s->len, buf, sizeof(buf));
            if (text)
                set_san(p, env, "IP", &n_ip, text, strlen(text));
        }
        else if (s->type == GEN_DNS)
            set_san(p, env, "DNS", &n_dns, s->v, s->len);
        else if (s->type == GEN_EMAIL)
            set_san(p, env, "EMAIL", &n_email, s->v, s->len);
        else
            set_san(p, env, "URI", &n_uri, s->v, s->len);
    }
}

apr_table_t *mtls_env_prepare(apr_pool_t *p, const mtls_identity_t *id)
{
    apr_table_t *env = apr_table_make(p, 8);
    const char *subject = mtls_identity_subject_text(p, id);

    if (safe(subject, strlen(subject)))
        apr_table_setn(env, "MTLS_CLIENT_SUBJECT", subject);
    apr_table_setn(env, "MTLS_CLIENT_CERT_SHA256", mtls_fp_hex(p, id->cert_fp));
    if (id->n_issuers > 0)
        apr_table_setn(env, "MTLS_CLIENT_ISSUER_SHA256",
                       mtls_fp_hex(p, id->issuer_fps));
    set_sans(p, env, id);
    return env;
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

int mtls_env_intact(const request_rec *r, const mtls_env_mark_t *mark)
{
    const apr_array_header_t *a = apr_table_elts(r->subprocess_env);
    const apr_table_entry_t *e = (const apr_table_entry_t *)a->elts;
    int i, n = 0;
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
