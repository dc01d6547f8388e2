/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include "httpd.h"
#include "apr_strings.h"
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "mtls_env.h"

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

static void set_sans(apr_pool_t *p, apr_table_t *env, X509 *cert)
{
    int n_dns = 0, n_email = 0, n_uri = 0, n_ip = 0, i;
    GENERAL_NAMES *gens =
        X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (gens == NULL)
        return;
    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const ASN1_STRING *s;
        const char *v;
        apr_size_t len;

        if (g->type != GEN_DNS && g->type != GEN_EMAIL && g->type != GEN_URI &&
            g->type != GEN_IPADD)
            continue;
        s = GENERAL_NAME_get0_value(g, NULL);
        if (s == NULL)
            continue;
        v = (const char *)ASN1_STRING_get0_data(s);
        len = (apr_size_t)ASN1_STRING_length(s);
        if (g->type == GEN_IPADD) {
            char text[INET6_ADDRSTRLEN];
            int af = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
            if (af && inet_ntop(af, v, text, sizeof(text)))
                set_san(p, env, "IP", &n_ip, text, strlen(text));
        }
        else if (g->type == GEN_DNS)
            set_san(p, env, "DNS", &n_dns, v, len);
        else if (g->type == GEN_EMAIL)
            set_san(p, env, "EMAIL", &n_email, v, len);
        else
            set_san(p, env, "URI", &n_uri, v, len);
    }
    GENERAL_NAMES_free(gens);
}

apr_table_t *mtls_env_prepare(apr_pool_t *p, const mtls_identity_t *id)
{
    apr_table_t *env = apr_table_make(p, 8);

    if (id->subject_text && safe(id->subject_text, strlen(id->subject_text)))
        apr_table_setn(env, "MTLS_CLIENT_SUBJECT", id->subject_text);
    apr_table_setn(env, "MTLS_CLIENT_CERT_SHA256", mtls_fp_hex(p, id->cert_fp));
    if (id->n_issuers > 0)
        apr_table_setn(env, "MTLS_CLIENT_ISSUER_SHA256",
                       mtls_fp_hex(p, id->issuer_fps));
    /* A malformed extension leaves errors on OpenSSL's queue. */
    ERR_set_mark();
    set_sans(p, env, id->cert);
    ERR_pop_to_mark();
    return env;
}

void mtls_env_set(request_rec *r, const mtls_rule_t *rule,
                  const mtls_identity_t *id)
{
    const apr_array_header_t *a;
    const apr_table_entry_t *t;
    int i;

    apr_table_setn(r->subprocess_env, "MTLS_AUTHZ_RULE", rule->source);
    if (id->env == NULL)
        return;
    /* Copied: a renegotiation can replace the connection's identity
     * while a request (or its internal redirect) still holds these. */
    a = apr_table_elts(id->env);
    t = (const apr_table_entry_t *)a->elts;
    for (i = 0; i < a->nelts; i++)
        apr_table_set(r->subprocess_env, t[i].key, t[i].val);
}
