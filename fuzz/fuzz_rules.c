/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* libFuzzer target: the directive parsers, the rule compiler, the rule
 * files of MTLSAllowFile and MTLSDenyFile, deny rules and time-boxed
 * rules, and the decision that puts deny rules first.
 *
 * The input is a configuration scope, one directive per line:
 * "MTLSAllowSubject ...", "MTLSAllowSAN ...",
 * "MTLSAllowIssuerFingerprint ..." (split into words by mtls_next_word,
 * as mtls_conf.c does), "MTLSDeny ..." (into a deny ruleset, where
 * serial= is a key) or "MTLSAllow ..." (any other line is taken as
 * MTLSAllow arguments). That reaches the word tokenizer and the DN, SAN,
 * IP, network, DNS suffix, fingerprint, serial and time parsers. A line
 * that is just "MTLSAllowFile" or "MTLSDenyFile" ends the directives:
 * every byte after it, NULs included, is a rule file that the allow
 * ruleset or a second deny ruleset (as a nested scope's MTLSDenyFile
 * would add) loads with mtls_rulefile_load, as that directive does.
 *
 * Before parsing, "@ca" is replaced by the hex fingerprint of the CA
 * that issued the fixed identities and "@c0", "@c1", "@c2" by theirs, so
 * that issuer=, cert= and serial= rules written by the fuzzer can match.
 *
 * The rules that load are then matched against the fixed client
 * identities at a fixed instant (FUZZ_NOW), each ruleset alone and
 * through mtls_policy_match, so the compiled indexes are walked too, and
 * checked against what the reference says about windows and deny
 * rules. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create, memmem */
#endif
#include <apr_strings.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "certbuild.h"
#include "fuzz_common.h"
#include "under_test.h"

#define N_IDS 3
static mtls_identity_t *ids[N_IDS];
/* Their serial numbers: one byte, three, and a negative one. */
static const long serials[N_IDS] = {1, 0x1a2b3c, -7};

/* The instant every input is matched at, 2027-01-01T00:00:00Z, and the
 * first the time printer cannot write in four digits (10000-01-01). */
#define FUZZ_NOW apr_time_from_sec(APR_INT64_C(1798761600))
#define YEAR_10000 apr_time_from_sec(APR_INT64_C(253402300800))

/* What "@ca", "@c0".."@c2" stand for: 64 hex digits each. */
static char ca_hex[2 * MTLS_FP_LEN + 1], cert_hex[N_IDS][2 * MTLS_FP_LEN + 1];

/* The rule file: an anonymous memory file, rewritten for each input and
 * opened by path, so that mtls_rulefile_load reads it as it reads any
 * file, and nothing is left behind however the run ends. */
static int file_fd = -1;
static const char *file_path;

/* A leaf or, without an issuer, a CA named O=Acme Inc.,CN=cn. */
static X509 *make_cert(const char *cn, const char *san, X509 *ca,
                       EVP_PKEY *ca_key, EVP_PKEY *key, long serial)
{
    const char *const dn[] = {"O", "Acme Inc.", "CN", cn, NULL};
    X509_NAME *n = cb_name(dn);
    X509 *x =
        ca ? cb_leaf(n, san, ca, ca_key, key, serial) : cb_ca(n, key, serial);
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
    X509 *ca = make_cert("CA", NULL, NULL, ca_key, ca_key, 1);
    X509_STORE *store = X509_STORE_new();
    int i;

    if (store == NULL || !X509_STORE_add_cert(store, ca))
        abort();
    for (i = 0; i < N_IDS; i++) {
        X509 *x = make_cert(cns[i], sans[i], ca, ca_key, key, serials[i]);
        ids[i] = mtls_identity_build(fuzz_pool(), x, store, 1);
        X509_free(x);
        if (ids[i] == NULL || !ids[i]->has_cert_fp || ids[i]->n_issuers != 1)
            fuzz_check("no fingerprint or issuer", "an identity");
        strcpy(cert_hex[i], mtls_fp_hex(fuzz_pool(), ids[i]->cert_fp));
    }
    strcpy(ca_hex, mtls_fp_hex(fuzz_pool(), ids[0]->issuer_fps));
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

/* Written apart from mtls_rules.c: does the rule args hold a
 * not_after= word, or a not_before= word after the epoch (a rule that
 * starts at 1970-01-01T00:00:00Z holds at every instant, as one without
 * not_before=)? Only for a line the parser took, so the times parse. */
static int has_window(apr_pool_t *p, const char *args)
{
    char *word;
    while (mtls_next_word(p, &args, &word) == NULL && word != NULL) {
        apr_time_t t = 0;
        if (strncasecmp(word, "not_after=", 10) == 0)
            return 1;
        if (strncasecmp(word, "not_before=", 11) == 0 &&
            mtls_time_parse(p, word + 11, 0, &t) == NULL && t > 0)
            return 1;
    }
    return 0;
}

/* Time-boxed rules a ruleset holds, as mtls_ruleset_windows counts them. */
static void count_window(void *baton, const mtls_rule_t *r)
{
    (void)r;
    ++*(int *)baton;
}

static int n_windows(const mtls_ruleset_t *rs)
{
    int n = 0;
    mtls_ruleset_windows(rs, count_window, &n);
    return n;
}

/* One MTLSAllow or MTLSDeny line into rs: a line it takes with a window
 * must be a time-boxed rule (whatever instant its bounds name). */
static const char *add_line(mtls_ruleset_t *rs, apr_pool_t *p, const char *args)
{
    const unsigned char *pin = NULL;
    int before = n_windows(rs);
    const char *err = mtls_ruleset_add_rule(rs, p, args, "fuzz:1", &pin);
    if (err == NULL && n_windows(rs) != before + has_window(p, args)) {
        fprintf(stderr, "'%s': taken, but %s\n", args,
                has_window(p, args) ? "not as a time-boxed rule"
                                    : "as a time-boxed rule");
        abort();
    }
    return err;
}

/* The directive lines, as mtls_conf.c hands them over: MTLSDeny lines
 * to deny, the others to rs. */
static void load_directives(mtls_ruleset_t *rs, mtls_ruleset_t *deny,
                            apr_pool_t *p, char *text)
{
    char *line, *next;
    for (line = text; line; line = next) {
        const char *args, *err = NULL;
        if ((next = strchr(line, '\n')) != NULL)
            *next++ = '\0';
        if (starts(line, "MTLSAllowSubject", &args))
            err = each_value(rs, p, args, subject_value);
        else if (starts(line, "MTLSAllowSAN", &args))
            err = each_value(rs, p, args, san_value);
        else if (starts(line, "MTLSAllowIssuerFingerprint", &args))
            err = each_value(rs, p, args, issuer_value);
        else if (starts(line, "MTLSDeny", &args))
            err = add_line(deny, p, args);
        else if (starts(line, "MTLSAllow", &args))
            err = add_line(rs, p, args);
        else
            err = add_line(rs, p, line);
        (void)err; /* a refused directive is fine; the rest still load */
    }
}

/* The lines that end the directives and start a rule file: an allow
 * file, or a deny file. */
static const char *const file_marks[2] = {"MTLSAllowFile\n", "MTLSDenyFile\n"};

/* The first mark at the start of a line, and which (*deny). */
static const uint8_t *find_mark(const uint8_t *data, size_t size, int *deny)
{
    const uint8_t *best = NULL, *end = data + size;
    int k;
    for (k = 0; k < 2; k++) {
        const uint8_t *m = data;
        size_t len = strlen(file_marks[k]);
        while ((m = memmem(m, (size_t)(end - m), file_marks[k], len))) {
            if (m == data || m[-1] == '\n')
                break;
            m++;
        }
        if (m && (best == NULL || m < best)) {
            best = m;
            *deny = k;
        }
    }
    return best;
}

/* data with "@ca" and "@c0".."@c2" replaced by the fingerprints they
 * stand for, in p; its length in *out_len. */
static uint8_t *expand(apr_pool_t *p, const uint8_t *data, size_t size,
                       size_t *out_len)
{
    uint8_t *out = apr_palloc(p, size * 22 + 1); /* 3 bytes -> 64 */
    size_t i = 0, n = 0;
    while (i < size) {
        const char *hex = NULL;
        if (i + 3 <= size && data[i] == '@' && data[i + 1] == 'c') {
            if (data[i + 2] == 'a')
                hex = ca_hex;
            else if (data[i + 2] >= '0' && data[i + 2] < '0' + N_IDS)
                hex = cert_hex[data[i + 2] - '0'];
        }
        if (hex) {
            memcpy(out + n, hex, 2 * MTLS_FP_LEN);
            n += 2 * MTLS_FP_LEN;
            i += 3;
        }
        else
            out[n++] = data[i++];
    }
    *out_len = n;
    return out;
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

/* ---- the oracle of windows and deny rules ---------------------------------
 */

/* FUZZ_RULES_VERBOSE set: each identity's decision on stderr, to see
 * what a replayed input does. */
static int verbose = -1;

static void bad_match(const char *what, int id, const mtls_match_t *m)
{
    fprintf(stderr, "identity %d: %s (rule %s, miss %d, near %s)\n", id, what,
            m->rule ? m->rule->source : "none", (int)m->miss,
            m->near ? m->near->source : "none");
    abort();
}

/* Written apart from mtls_rules.c: why x's window does not hold at t
 * (MTLS_MISS_NONE: it holds). 0 is "none" for either bound. */
static mtls_miss_e window_at(const mtls_rule_ext_t *x, apr_time_t t)
{
    if (x == NULL)
        return MTLS_MISS_NONE;
    if (x->not_before && t < x->not_before)
        return MTLS_MISS_NOT_YET;
    if (x->not_after && t >= x->not_after)
        return MTLS_MISS_EXPIRED;
    return MTLS_MISS_NONE;
}

static int same_match(const mtls_match_t *a, const mtls_match_t *b)
{
    return a->rule == b->rule && a->miss == b->miss && a->near == b->near;
}

/* One ruleset's match of id at t, with the checks that hold for any
 * ruleset: a match and its reason agree, a rule near a match is one
 * that missed only by its window, at t, and the kind of rule is the
 * kind of set. */
static mtls_match_t match_checked(const mtls_ruleset_t *rs, int i, apr_time_t t)
{
    mtls_match_t m;
    int tried = 0, deny = mtls_ruleset_is_deny(rs);
    const mtls_rule_t *r =
        mtls_ruleset_match_at(rs, ids[i], t, trace, &tried, &m);
    if (r != m.rule || (r == NULL) == (m.miss == MTLS_MISS_NONE))
        bad_match("a match and its reason disagree", i, &m);
    if (mtls_ruleset_is_empty(rs) && r != NULL)
        bad_match("no rule admits nobody", i, &m);
    if (m.miss == MTLS_MISS_DENIED)
        bad_match("a ruleset alone never says denied", i, &m);
    if ((m.near != NULL) !=
        (m.miss == MTLS_MISS_EXPIRED || m.miss == MTLS_MISS_NOT_YET))
        bad_match("a near rule exactly for a window's miss", i, &m);
    if (r && window_at(r->ext, t) != MTLS_MISS_NONE)
        bad_match("a rule matched outside its window", i, &m);
    if (m.near && window_at(m.near->ext, t) != m.miss)
        bad_match("the near rule's window is not the reason given", i, &m);
    if (r && (deny ? r->ext == NULL || !r->ext->deny
                   : r->ext != NULL && r->ext->deny))
        bad_match("a rule of the other kind", i, &m);
    return m;
}

/* The time printer, read back: each bound of a window prints as
 * YYYY-MM-DDTHH:MM:SSZ, which parses to its second (a fraction is kept
 * in the rule, not printed). Bounds from 10000-01-01 on
 * (not_after=9999-12-31 ends there) print with a five-digit year, which
 * the parser refuses: not checked. */
static void window_bounds(void *baton, const mtls_rule_t *r)
{
    apr_pool_t *p = baton;
    apr_time_t b[2] = {r->ext->not_before, r->ext->not_after};
    int k;
    if (b[0] && b[1] && b[0] >= b[1])
        abort(); /* an inverted window is refused */
    for (k = 0; k < 2; k++) {
        char text[MTLS_TIME_TEXT_LEN];
        apr_time_t back = -1;
        if (b[k] == 0)
            continue;
        if (b[k] >= YEAR_10000)
            continue;
        mtls_time_text(text, b[k]);
        if (strlen(text) != 20 || mtls_time_parse(p, text, 0, &back) ||
            back != b[k] - b[k] % APR_USEC_PER_SEC) {
            fprintf(stderr, "%s: bound %" APR_INT64_T_FMT " printed as %s\n",
                    r->source, (apr_int64_t)b[k], text);
            abort();
        }
    }
}

/* The reason of decision pm for identity i, as the log line says it. */
static const char *check_reason(apr_pool_t *p, const mtls_match_t *pm, int i)
{
    const char *why = mtls_policy_reason(p, pm);
    if (pm->miss == MTLS_MISS_DENIED) {
        if (strcmp(why, apr_pstrcat(p, "denied by ", pm->near->source, NULL)))
            bad_match(why, i, pm);
    }
    else if (pm->miss == MTLS_MISS_EXPIRED || pm->miss == MTLS_MISS_NOT_YET) {
        char t[MTLS_TIME_TEXT_LEN];
        int expired = pm->miss == MTLS_MISS_EXPIRED;
        const char *want = apr_psprintf(
            p,
            expired ? "rule %s expired at %s"
                    : "rule %s not yet valid until %s",
            pm->near->source,
            mtls_time_text(t, expired ? pm->near->ext->not_after
                                      : pm->near->ext->not_before));
        if (strcmp(why, want))
            bad_match(why, i, pm);
    }
    else if (strcmp(why, pm->miss == MTLS_MISS_ISSUER ? "issuer not allowed"
                         : pm->miss == MTLS_MISS_NONE ? why
                                                      : "no rule matched"))
        bad_match(why, i, pm);
    return why;
}

/* Every check of one identity i against the scope: the allow rules, the
 * directives' deny rules and the deny file's. */
static void check_identity(apr_pool_t *p, const mtls_ruleset_t *allow,
                           const mtls_ruleset_t *const denies[2], int i)
{
    apr_time_t now = FUZZ_NOW, lo = 0, hi = APR_INT64_MAX;
    mtls_match_t a = match_checked(allow, i, now), d[2], pm, pm2;
    const mtls_rule_t *r;
    const char *why;
    int k, tried = 0;

    d[0] = match_checked(denies[0], i, now);
    d[1] = match_checked(denies[1], i, now);

    /* A rule that matched but for its window matches inside it (or
     * another rule does first). */
    if (a.near) {
        const mtls_rule_ext_t *x = a.near->ext;
        apr_time_t in = x->not_before ? x->not_before : x->not_after - 1;
        if (match_checked(allow, i, in).rule == NULL)
            bad_match("the near rule does not match inside its window", i, &a);
    }

    /* Deny rules first: the first deny set that matches refuses, naming
     * its rule; else the allow rules decide, as they do alone. */
    r = mtls_policy_match(allow, denies, 2, ids[i], now, trace, &tried, &pm);
    if (r != pm.rule)
        bad_match("policy: the rule returned is not the match's", i, &pm);
    for (k = 0; k < 2 && d[k].rule == NULL; k++)
        ;
    if (k < 2 ? pm.rule || pm.miss != MTLS_MISS_DENIED || pm.near != d[k].rule
              : !same_match(&pm, &a))
        bad_match("policy: not what the deny and allow sets say", i, &pm);
    /* With no allow rules at all, nobody is admitted. */
    mtls_policy_match(NULL, denies, 2, ids[i], now, NULL, NULL, &pm2);
    if (pm2.rule || pm2.miss != (k < 2 ? MTLS_MISS_DENIED : MTLS_MISS_NO_RULE))
        bad_match("policy without allow rules", i, &pm2);

    why = check_reason(p, &pm, i);

    if (verbose)
        fprintf(stderr, "identity %d: %s%s%s\n", i,
                pm.rule ? "admitted by " : why, pm.rule ? pm.rule->source : "",
                pm.rule && pm.rule->ext ? " (time-boxed)" : "");

    /* No rule of the three sets starts or ends within [lo, hi): the
     * decision is the same at both ends as at now. */
    if (!mtls_ruleset_span(allow, now, &lo, &hi) ||
        !mtls_ruleset_span(denies[0], now, &lo, &hi) ||
        !mtls_ruleset_span(denies[1], now, &lo, &hi) || lo > now || hi <= now)
        bad_match("no span around now", i, &pm);
    for (k = 0; k < 2; k++) {
        apr_time_t t = k ? hi - 1 : lo;
        mtls_match_t at = match_checked(allow, i, t);
        if (!same_match(&at, &a))
            bad_match("the allow rules decide otherwise within the span", i,
                      &at);
        mtls_policy_match(allow, denies, 2, ids[i], t, NULL, NULL, &at);
        if (!same_match(&at, &pm))
            bad_match("the policy decides otherwise within the span", i, &at);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    mtls_ruleset_t *rs, *deny, *deny_file;
    const mtls_ruleset_t *denies[2];
    const uint8_t *mark;
    uint8_t *text;
    size_t n, len;
    int i, file_deny = 0;

    if (ids[0] == NULL)
        fuzz_once(init);
    if (verbose < 0)
        verbose = getenv("FUZZ_RULES_VERBOSE") != NULL;
    if (size > 8192)
        return -1;
    p = fuzz_begin();
    rs = mtls_ruleset_make(p);
    deny = mtls_ruleset_make_deny(p);
    deny_file = mtls_ruleset_make_deny(p);
    if (mtls_ruleset_is_deny(rs) || !mtls_ruleset_is_deny(deny))
        abort();
    text = expand(p, data, size, &len);
    mark = find_mark(text, len, &file_deny);
    n = mark ? (size_t)(mark - text) : len;
    load_directives(rs, deny, p, fuzz_cstring(p, text, n));
    if (mark) {
        size_t m = strlen(file_marks[file_deny]);
        load_file(file_deny ? deny_file : rs, p, mark + m, len - n - m);
    }
    mtls_ruleset_finish(rs);
    mtls_ruleset_finish(deny);
    mtls_ruleset_finish(deny_file);
    mtls_ruleset_windows(rs, window_bounds, p);
    mtls_ruleset_windows(deny, window_bounds, p);
    mtls_ruleset_windows(deny_file, window_bounds, p);
    denies[0] = deny;
    denies[1] = deny_file;
    for (i = 0; i < N_IDS; i++)
        check_identity(p, rs, denies, i);
    fuzz_end(p);
    return 0;
}
