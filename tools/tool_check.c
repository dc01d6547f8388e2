/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls-authz-rule --check and --diff: the decision the module would take
 * for each certificate, and why. The certificate is verified as mod_ssl
 * verifies a client's (X509_verify_cert against the trust store, the
 * rest of its file as the chain the client sent, purpose sslclient);
 * its identity is built by mtls_identity_build and the decision is
 * mtls_policy_match's, the function the server calls. */

#include <apr_strings.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <string.h>

#include "mtls_policy.h"
#include "mtls_time.h"
#include "tool.h"

const char *tool_ca_store(apr_pool_t *p, const char *path, X509_STORE **out)
{
    apr_array_header_t *cas;
    X509_STORE *store;
    const char *err = tool_load_certs(p, path, &cas);
    int i;

    if (err)
        return err;
    if ((store = tool_store(p)) == NULL)
        return "out of memory";
    for (i = 0; i < cas->nelts; i++)
        X509_STORE_add_cert(store, APR_ARRAY_IDX(cas, i, X509 *));
    ERR_clear_error();
    *out = store;
    return NULL;
}

/* ---- verification ------------------------------------------------------- */

/* NULL if leaf verifies against store at the instant at with the
 * untrusted certificates of certs (after the first), else OpenSSL's
 * reason. */
static const char *verify(apr_pool_t *p, X509_STORE *store,
                          apr_array_header_t *certs, apr_time_t at)
{
    X509 *leaf = APR_ARRAY_IDX(certs, 0, X509 *);
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    const char *why = "out of memory";
    int i;

    for (i = 1; chain && i < certs->nelts; i++)
        sk_X509_push(chain, APR_ARRAY_IDX(certs, i, X509 *));
    if (chain && ctx && X509_STORE_CTX_init(ctx, store, leaf, chain)) {
        /* What OpenSSL sets for a server verifying its client. */
        X509_STORE_CTX_set_default(ctx, "ssl_client");
        X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx),
                                   (time_t)apr_time_sec(at));
        if (X509_verify_cert(ctx) == 1)
            why = NULL;
        else
            why = apr_pstrdup(p, X509_verify_cert_error_string(
                                     X509_STORE_CTX_get_error(ctx)));
    }
    X509_STORE_CTX_free(ctx);
    sk_X509_free(chain); /* the certificates belong to the pool */
    ERR_clear_error();
    return why;
}

const char *tool_cert_read(apr_pool_t *p, X509_STORE *store, const char *path,
                           apr_time_t at, tool_cert_t *c)
{
    apr_array_header_t *certs;
    const char *err = tool_load_certs(p, path, &certs);

    memset(c, 0, sizeof(*c));
    c->path = path;
    if (err)
        return err;
    c->leaf = APR_ARRAY_IDX(certs, 0, X509 *);
    c->subject = tool_show_dn(p, X509_get_subject_name(c->leaf));
    c->verify = verify(p, store, certs, at);
    if (c->verify == NULL)
        c->id = mtls_identity_build(p, c->leaf, store, 1);
    return NULL;
}

/* ---- what matched ------------------------------------------------------- */

/* A SAN constraint as a rule writes it. */
static const char *san_text(apr_pool_t *p, const mtls_key_t *k)
{
    const unsigned char *v = (const unsigned char *)k->data + 1;
    apr_size_t n = k->len - 1;
    char buf[INET6_ADDRSTRLEN];

    switch (k->data[0]) {
    case MTLS_K_DNS:
        return apr_pstrcat(p, "san=DNS:", tool_show(p, v, n), NULL);
    case MTLS_K_DNS_SUFFIX:
        return apr_pstrcat(p, "san=DNS:.", tool_show(p, v, n), NULL);
    case MTLS_K_EMAIL:
        return apr_pstrcat(p, "san=email:", tool_show(p, v, n), NULL);
    case MTLS_K_URI:
        return apr_pstrcat(p, "san=URI:", tool_show(p, v, n), NULL);
    case MTLS_K_URI_PREFIX:
        return apr_pstrcat(p, "san=URI:", tool_show(p, v, n), "/*", NULL);
    case MTLS_K_IP4:
    case MTLS_K_IP6:
        return apr_pstrcat(
            p, "san=IP:", mtls_san_ip_text(v, n, buf, sizeof(buf)) ? buf : "?",
            NULL);
    case MTLS_K_IP4_NET:
    case MTLS_K_IP6_NET:
        return apr_psprintf(
            p, "san=IP:%s/%u",
            mtls_san_ip_text(v + 1, n - 1, buf, sizeof(buf)) ? buf : "?",
            (unsigned)v[0]);
    default:
        return "san";
    }
}

/* The MTLSAllowIssuerFingerprint that let id through the issuer gate:
 * as the module's index keeps it, the last one of a fingerprint. */
static const char *gate_of(const tool_config_t *cf, const mtls_identity_t *id)
{
    int i, j;

    for (i = 0; i < id->n_issuers; i++) {
        for (j = cf->gates->nelts - 1; j >= 0; j--) {
            const tool_gate_t *g = &APR_ARRAY_IDX(cf->gates, j, tool_gate_t);
            if (memcmp(g->fp, id->issuer_fps + i * MTLS_FP_LEN, MTLS_FP_LEN) ==
                0)
                return g->source;
        }
    }
    return NULL;
}

static void add(apr_array_header_t *a, const char *s)
{
    APR_ARRAY_PUSH(a, const char *) = s;
}

/* The constraints of rule, each of which id met; for an allow rule (cf
 * not NULL) the scope's issuer gate too. */
static apr_array_header_t *constraints(apr_pool_t *p, const tool_config_t *cf,
                                       const mtls_rule_t *r,
                                       const mtls_identity_t *id)
{
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(const char *));
    char t[MTLS_TIME_TEXT_LEN];
    int i, named = r->cert || r->subject.data || r->sans;

    if (r->cert)
        add(a, "cert");
    if (r->subject.data)
        add(a, "subject");
    for (i = 0; r->sans && i < r->sans->nelts; i++)
        add(a, san_text(p, &APR_ARRAY_IDX(r->sans, i, mtls_key_t)));
    if (r->issuer)
        add(a, "issuer");
    if (r->ext && r->ext->serial.data)
        add(a, "serial");
    if (r->ext && r->ext->not_before)
        add(a, apr_pstrcat(p, "from ", mtls_time_text(t, r->ext->not_before),
                           NULL));
    if (r->ext && r->ext->not_after)
        add(a, apr_pstrcat(p, "until ", mtls_time_text(t, r->ext->not_after),
                           NULL));
    if (cf && named && cf->gates->nelts) {
        const char *g = gate_of(cf, id);
        add(a, apr_pstrcat(p, "issuer gate ", g ? g : "?", NULL));
    }
    return a;
}

void tool_decide(apr_pool_t *p, const tool_config_t *cf, const tool_cert_t *c,
                 apr_time_t at, tool_decision_t *d)
{
    const mtls_ruleset_t *denies[1];
    const mtls_rule_t *rule;
    mtls_match_t m;
    int n = 0;

    memset(d, 0, sizeof(*d));
    if (c->verify) {
        d->reason = apr_pstrcat(p, "not verified: ", c->verify, NULL);
        return;
    }
    if (cf->deny)
        denies[n++] = cf->deny;
    rule = mtls_policy_match(cf->allow, denies, n, c->id, at, NULL, NULL, &m);
    if (rule) {
        d->admit = 1;
        d->rule = rule->source;
        d->what = constraints(p, cf, rule, c->id);
        return;
    }
    d->reason = mtls_policy_reason(p, &m);
    if (m.near) {
        d->rule = m.near->source;
        if (m.miss == MTLS_MISS_DENIED)
            d->what = constraints(p, NULL, m.near, c->id);
    }
}

/* ---- the modes ------------------------------------------------------------
 */

/* The trust store and every certificate, verified: EXIT_OK or why not
 * (on stderr). */
static int read_all(tool_t *t, const tool_check_args_t *a, tool_cert_t **certs)
{
    X509_STORE *store = NULL;
    const char *err = tool_ca_store(t->p, a->ca, &store);
    int i;

    *certs = apr_pcalloc(t->p, sizeof(tool_cert_t) * (apr_size_t)a->n_files);
    for (i = 0; err == NULL && i < a->n_files; i++)
        err = tool_cert_read(t->p, store, a->files[i], a->at, &(*certs)[i]);
    if (err) {
        fprintf(stderr, "mtls-authz-rule: %s\n", err);
        return EXIT_INPUT;
    }
    return EXIT_OK;
}

static int load_config(tool_t *t, const char *path, tool_config_t **cf)
{
    const char *err = tool_config_load(t->p, path, cf);

    if (err) {
        fprintf(stderr, "mtls-authz-rule: %s\n", err);
        return EXIT_INPUT;
    }
    if ((*cf)->allow == NULL)
        fprintf(stderr,
                "mtls-authz-rule: warning: %s has no allow rule: every "
                "certificate is refused\n",
                path);
    return EXIT_OK;
}

int tool_check_mode(tool_t *t, const tool_check_args_t *a)
{
    tool_config_t *cf;
    tool_cert_t *certs;
    tool_decision_t *d;
    int rc, i, refused = 0;

    if ((rc = load_config(t, a->config, &cf)) != EXIT_OK ||
        (rc = read_all(t, a, &certs)) != EXIT_OK)
        return rc;
    d = apr_pcalloc(t->p, sizeof(*d) * (apr_size_t)a->n_files);
    for (i = 0; i < a->n_files; i++) {
        tool_decide(t->p, cf, &certs[i], a->at, &d[i]);
        refused |= !d[i].admit;
    }
    tool_report_check(t, a->fmt, a->config, a->at, certs, d, a->n_files);
    return refused ? EXIT_REFUSED : EXIT_OK;
}

int tool_diff_mode(tool_t *t, const tool_check_args_t *a)
{
    tool_config_t *old_cf, *new_cf;
    tool_cert_t *certs;
    tool_decision_t *od, *nd;
    int rc, i, changed = 0;

    if ((rc = load_config(t, a->old_cfg, &old_cf)) != EXIT_OK ||
        (rc = load_config(t, a->new_cfg, &new_cf)) != EXIT_OK ||
        (rc = read_all(t, a, &certs)) != EXIT_OK)
        return rc;
    od = apr_pcalloc(t->p, sizeof(*od) * (apr_size_t)a->n_files);
    nd = apr_pcalloc(t->p, sizeof(*nd) * (apr_size_t)a->n_files);
    for (i = 0; i < a->n_files; i++) {
        tool_decide(t->p, old_cf, &certs[i], a->at, &od[i]);
        tool_decide(t->p, new_cf, &certs[i], a->at, &nd[i]);
        changed |= od[i].admit != nd[i].admit;
    }
    tool_report_diff(t, a->fmt, a->old_cfg, a->new_cfg, a->at, certs, od, nd,
                     a->n_files);
    return changed ? EXIT_REFUSED : EXIT_OK;
}
