/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* libFuzzer target: the directive parsers and the rule compiler.
 *
 * The input is a configuration scope, one directive per line:
 * "MTLSAllowSubject ...", "MTLSAllowSAN ...",
 * "MTLSAllowIssuerFingerprint ..." (split into words by mtls_next_word,
 * as mtls_conf.c does) or "MTLSAllow ..." (any other line is taken as
 * MTLSAllow arguments). That reaches the word tokenizer and the DN, SAN,
 * IP and fingerprint parsers. The rules that load are then matched
 * against a few fixed client identities, so the compiled indexes are
 * walked too. */

#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "mtls_identity.h"

#define N_IDS 3
static mtls_identity_t *ids[N_IDS];

static X509 *make_cert(const char *cn, const char *san, X509 *ca,
                       EVP_PKEY *ca_key, EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    X509V3_CTX ctx;
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
                               (const unsigned char *)"Acme Inc.", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : n);
    X509_set_pubkey(x, key);
    X509V3_set_ctx(&ctx, ca ? ca : x, x, NULL, NULL, 0);
    if (san) {
        X509_EXTENSION *e =
            X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    else {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(
            NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    X509_sign(x, ca_key, EVP_sha256());
    X509_NAME_free(n);
    return x;
}

/* Identities built once, in the process pool: a CA and leaves whose
 * names the seed corpus uses. */
static void init_ids(void)
{
    static const char *const sans[N_IDS] = {
        "DNS:alice.example.com,email:Alice@Example.COM,"
        "URI:spiffe://example.org/ns/prod/sa/alice,IP:192.0.2.7,"
        "IP:2001:db8::7",
        "DNS:*.example.net,URI:spiffe://example.org/ns/prod,IP:::1",
        "email:bob@example.net,URI:urn:x"};
    static const char *const cns[N_IDS] = {"alice", "bob", "carol"};
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *key = EVP_EC_gen("P-256");
    X509 *ca = make_cert("CA", NULL, NULL, ca_key, ca_key);
    X509_STORE *store = X509_STORE_new();
    int i;

    if (ca_key == NULL || key == NULL || ca == NULL || store == NULL)
        abort();
    X509_STORE_add_cert(store, ca);
    for (i = 0; i < N_IDS; i++) {
        X509 *x = make_cert(cns[i], sans[i], ca, ca_key, key);
        ids[i] = mtls_identity_build(fuzz_pool(), x, store, 1);
        X509_free(x);
    }
    /* The identities hold their own references; the store is only
     * needed while they are built. */
    X509_STORE_free(store);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
}

static void trace(void *baton, const mtls_rule_t *rule, mtls_miss_e result)
{
    (void)result;
    if (rule == NULL || rule->source == NULL)
        abort(); /* every rule tried is one that was loaded */
    ++*(int *)baton;
}

typedef const char *value_fn(mtls_ruleset_t *rs, apr_pool_t *p, const char *v);

static const char *subject_value(mtls_ruleset_t *rs, apr_pool_t *p,
                                 const char *v)
{
    return mtls_ruleset_add_subject(rs, p, v, "fuzz:1");
}

static const char *san_value(mtls_ruleset_t *rs, apr_pool_t *p, const char *v)
{
    return mtls_ruleset_add_san(rs, p, v, "fuzz:1");
}

static const char *issuer_value(mtls_ruleset_t *rs, apr_pool_t *p,
                                const char *v)
{
    const unsigned char *fp = NULL;
    const char *err = mtls_ruleset_add_issuer(rs, p, v, "fuzz:1", &fp);
    if (err == NULL && fp == NULL)
        abort();
    return err;
}

/* As mtls_conf.c's each_value: every word of args is one value. */
static const char *each_value(mtls_ruleset_t *rs, apr_pool_t *p,
                              const char *args, value_fn *fn)
{
    for (;;) {
        const char *before = args, *err;
        char *word;
        if ((err = mtls_next_word(p, &args, &word)) != NULL)
            return err;
        if (word == NULL)
            return NULL;
        /* The tokenizer always makes progress and never yields more
         * than it consumed. */
        if (args <= before || strlen(word) > (size_t)(args - before))
            abort();
        if ((err = fn(rs, p, word)) != NULL)
            return err;
    }
}

static int starts(const char *line, const char *directive, const char **args)
{
    size_t n = strlen(directive);
    if (strncmp(line, directive, n) != 0 || (line[n] != ' ' && line[n]))
        return 0;
    *args = line + n;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    mtls_ruleset_t *rs;
    char *text, *line, *next;
    int i;

    if (ids[0] == NULL)
        fuzz_once(init_ids);
    if (size > 8192)
        return -1;
    p = fuzz_begin();
    rs = mtls_ruleset_make(p);
    text = fuzz_cstring(p, data, size);
    for (line = text; line; line = next) {
        const char *args, *err = NULL;
        const unsigned char *pin = NULL;
        if ((next = strchr(line, '\n')) != NULL)
            *next++ = '\0';
        if (starts(line, "MTLSAllowSubject", &args))
            err = each_value(rs, p, args, subject_value);
        else if (starts(line, "MTLSAllowSAN", &args))
            err = each_value(rs, p, args, san_value);
        else if (starts(line, "MTLSAllowIssuerFingerprint", &args))
            err = each_value(rs, p, args, issuer_value);
        else if (starts(line, "MTLSAllow", &args))
            err = mtls_ruleset_add_rule(rs, p, args, "fuzz:1", &pin);
        else
            err = mtls_ruleset_add_rule(rs, p, line, "fuzz:1", &pin);
        (void)err; /* a refused directive is fine; the rest still load */
    }
    for (i = 0; i < N_IDS; i++) {
        mtls_miss_e miss = MTLS_MISS_NONE;
        int tried = 0;
        const mtls_rule_t *r =
            mtls_ruleset_match(rs, ids[i], trace, &tried, &miss);
        if ((r == NULL) == (miss == MTLS_MISS_NONE))
            abort(); /* a match and its reason must agree */
        if (mtls_ruleset_is_empty(rs) && r != NULL)
            abort(); /* no rule admits nobody */
    }
    fuzz_end(p);
    return 0;
}
