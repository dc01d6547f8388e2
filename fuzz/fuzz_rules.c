/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* libFuzzer target: the directive parsers, the rule compiler and the
 * rule files of MTLSAllowFile.
 *
 * The input is a configuration scope, one directive per line:
 * "MTLSAllowSubject ...", "MTLSAllowSAN ...",
 * "MTLSAllowIssuerFingerprint ..." (split into words by mtls_next_word,
 * as mtls_conf.c does) or "MTLSAllow ..." (any other line is taken as
 * MTLSAllow arguments). That reaches the word tokenizer and the DN, SAN,
 * IP, network, DNS suffix and fingerprint parsers. A line that is just
 * "MTLSAllowFile" ends the directives: every byte after it, NULs included, is a
 * rule file that the scope loads with mtls_rulefile_load, as that directive
 * does. The rules that load are then matched against a few fixed client
 * identities, so the compiled indexes are walked too. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create, memmem */
#endif
#include <apr_strings.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "certbuild.h"
#include "fuzz_common.h"
#include "under_test.h"

#define N_IDS 3
static mtls_identity_t *ids[N_IDS];

/* The rule file: an anonymous memory file, rewritten for each input and
 * opened by path, so that mtls_rulefile_load reads it as it reads any
 * file, and nothing is left behind however the run ends. */
static int file_fd = -1;
static const char *file_path;

/* A leaf or, without an issuer, a CA named O=Acme Inc.,CN=cn. */
static X509 *make_cert(const char *cn, const char *san, X509 *ca,
                       EVP_PKEY *ca_key, EVP_PKEY *key)
{
    const char *const dn[] = {"O", "Acme Inc.", "CN", cn, NULL};
    X509_NAME *n = cb_name(dn);
    X509 *x = ca ? cb_leaf(n, san, ca, ca_key, key, 1) : cb_ca(n, key, 1);
    X509_NAME_free(n);
    return x;
}

/* Identities built once, in the process pool: a CA and leaves whose
 * names the seed corpus uses; and the rule file. */
static void init(void)
{
    static const char *const sans[N_IDS] = {
        "DNS:alice.example.com,email:Alice@Example.COM,"
        "URI:spiffe://example.org/ns/prod/sa/alice,IP:192.0.2.7,"
        "IP:2001:db8::7",
        "DNS:*.example.net,URI:spiffe://example.org/ns/prod,IP:::1",
        /* parenthesised: one element made of two literals */
        ("email:bob@example.net,URI:urn:x,DNS:a.b.partner.example,"
         "IP:10.20.3.4,IP:::ffff:10.20.3.4")};
    static const char *const cns[N_IDS] = {"alice", "bob", "carol"};
    EVP_PKEY *ca_key = cb_key(), *key = cb_key();
    X509 *ca = make_cert("CA", NULL, NULL, ca_key, ca_key);
    X509_STORE *store = X509_STORE_new();
    int i;

    if (store == NULL || !X509_STORE_add_cert(store, ca))
        abort();
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
    if ((file_fd = memfd_create("fuzz_rules", 0)) < 0)
        fuzz_check("cannot create it", "the rule file");
    file_path = apr_psprintf(fuzz_pool(), "/proc/self/fd/%d", file_fd);
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

/* The directive lines, as mtls_conf.c hands them over. */
static void load_directives(mtls_ruleset_t *rs, apr_pool_t *p, char *text)
{
    char *line, *next;
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
}

/* The line that ends the directives and starts the rule file. */
#define FILE_MARK "MTLSAllowFile\n"
#define FILE_MARK_LEN (sizeof(FILE_MARK) - 1)

static const uint8_t *find_mark(const uint8_t *data, size_t size)
{
    const uint8_t *m = data, *end = data + size;
    while ((m = memmem(m, (size_t)(end - m), FILE_MARK, FILE_MARK_LEN))) {
        if (m == data || m[-1] == '\n')
            return m;
        m++;
    }
    return NULL;
}

/* Written apart from mtls_file.c, as the oracle: how many of the first
 * `lines` lines of the file hold a rule, being neither blank nor a '#'
 * comment. *last: whether the last of them does. */
static int rule_lines(const uint8_t *t, size_t len, int lines, int *last)
{
    size_t i = 0;
    int n = 0, line;
    for (line = 1; i < len && line <= lines; line++) {
        while (i < len && t[i] != '\n' && isspace(t[i]))
            i++;
        *last = i < len && t[i] != '\n' && t[i] != '#';
        n += *last;
        while (i < len && t[i] != '\n')
            i++;
        i++;
    }
    return n;
}

/* Every error and every rule's source names the file first. */
static int names_file(const char *s)
{
    size_t n = strlen(file_path);
    return s && strncmp(s, file_path, n) == 0 && s[n] == ':';
}

static void on_pin(void *baton, const unsigned char *fp, const char *source)
{
    if (fp == NULL || !names_file(source))
        abort();
    ++*(int *)baton;
}

static void bad_load(int n, const char *err)
{
    fprintf(stderr, "%d rules loaded from the rule file, then: %s\n", n,
            err ? err : "the end");
    abort();
}

/* The file's errors name a line ("path:N: ..."), but for a NUL byte
 * ("path: ..."): 0 then. */
static int error_line(const char *err)
{
    const char *at = err + strlen(file_path) + 1;
    return *at == ' ' ? 0 : atoi(at);
}

static void load_file(mtls_ruleset_t *rs, apr_pool_t *p, const uint8_t *t,
                      size_t len)
{
    int before = mtls_ruleset_n_rules(rs), n = -1, pins = 0, line, is_rule = 0;
    const char *err;

    if (ftruncate(file_fd, 0) != 0 ||
        pwrite(file_fd, t, len, 0) != (ssize_t)len)
        fuzz_check("cannot write it", "the rule file");
    err = mtls_rulefile_load(rs, p, p, file_path, on_pin, &pins, &n);
    /* The rules it counts are the rules the scope took. */
    if (n < 0 || mtls_ruleset_n_rules(rs) - before != n || pins > n)
        abort();
    if (err && !names_file(err))
        abort();
    if (memchr(t, '\0', len)) {
        if (err == NULL || error_line(err) != 0 || n != 0)
            abort(); /* a file with a NUL byte is refused whole */
        return;
    }
    if (err == NULL) {
        if (n != rule_lines(t, len, INT_MAX, &is_rule))
            bad_load(n, err);
        return;
    }
    /* Stopped at a rule line that failed: every rule line before it was
     * taken (and, as counted above, nothing after). */
    line = error_line(err);
    if (line <= 0 || n != rule_lines(t, len, line - 1, &is_rule))
        bad_load(n, err);
    rule_lines(t, len, line, &is_rule);
    if (!is_rule)
        bad_load(n, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    mtls_ruleset_t *rs;
    const uint8_t *mark;
    size_t n;
    int i;

    if (ids[0] == NULL)
        fuzz_once(init);
    if (size > 8192)
        return -1;
    p = fuzz_begin();
    rs = mtls_ruleset_make(p);
    mark = find_mark(data, size);
    n = mark ? (size_t)(mark - data) : size;
    load_directives(rs, p, fuzz_cstring(p, data, n));
    if (mark)
        load_file(rs, p, mark + FILE_MARK_LEN, size - n - FILE_MARK_LEN);
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
