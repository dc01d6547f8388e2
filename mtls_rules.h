/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls_rules: the rules of mod_mtls_authz: parsed, indexed, matched.
 *
 * Pure APR + OpenSSL, no httpd: parsed and compiled at config time,
 * looked up at request time, unit-tested and fuzzed without a server. */

#ifndef MTLS_RULES_H
#define MTLS_RULES_H

#include <apr_time.h>

#include "mtls_identity.h"
#include "mtls_key.h"

/* What few rules have: kept apart so that a million plain rules do not
 * pay for it. */
typedef struct {
    mtls_key_t serial;     /* MTLS_K_SERIAL key; data NULL: none */
    apr_time_t not_before; /* 0: none */
    apr_time_t not_after;  /* the first instant it no longer holds; 0: none */
    int deny;              /* an MTLSDeny rule */
} mtls_rule_ext_t;

typedef struct mtls_rule_t mtls_rule_t;
struct mtls_rule_t {
    const char *source;          /* "file:line" of the directive */
    mtls_key_t subject;          /* data NULL: no subject constraint */
    const unsigned char *issuer; /* NULL: no issuer constraint */
    const unsigned char *cert;   /* NULL: no certificate pin */
    apr_array_header_t *sans;    /* mtls_key_t, all present; may be NULL */
    const mtls_rule_ext_t *ext;  /* NULL: no serial, no window, allow */
    mtls_rule_t *next;           /* next rule indexed under the same key */
};

/* The rules of one configuration scope, compiled into hash indexes
 * (mtls_rules.c). */
typedef struct mtls_ruleset mtls_ruleset_t;

typedef enum {
    MTLS_MISS_NONE = 0, /* matched */
    MTLS_MISS_NO_RULE,  /* no rule matched */
    MTLS_MISS_ISSUER,   /* a rule matched except for its issuer */
    MTLS_MISS_EXPIRED,  /* a rule matched except for its not_after */
    MTLS_MISS_NOT_YET,  /* a rule matched except for its not_before */
    MTLS_MISS_DENIED    /* a deny rule matched (mtls_policy.h) */
} mtls_miss_e;

/* The outcome of matching: the rule that matched, or why none did. */
typedef struct {
    const mtls_rule_t *rule; /* NULL: none matched */
    mtls_miss_e miss;        /* MTLS_MISS_NONE exactly when rule is set */
    /* EXPIRED and NOT_YET: the rule that matched but for its window;
     * DENIED: the deny rule. Else NULL. */
    const mtls_rule_t *near;
} mtls_match_t;

/* Called for each candidate rule tried, for debug logging. */
typedef void mtls_trace_fn(void *baton, const mtls_rule_t *rule,
                           mtls_miss_e result);

/* Parsers (mtls_dn_parse and mtls_fp_parse are the others). Each returns
 * NULL on success or an error message allocated in p (without the
 * directive name; the caller adds it). */
const char *mtls_san_parse(apr_pool_t *p, const char *text, mtls_key_t *out);

/* The next word of a directive's arguments into *word (NULL at the end).
 * A word or a part of it may be double-quoted; inside quotes \" is a quote.
 * Nothing else is unescaped, so DN escapes such as \, and \\ reach the DN
 * parser intact. Returns an error for an unbalanced quote. */
const char *mtls_next_word(apr_pool_t *p, const char **line, char **word);

mtls_ruleset_t *mtls_ruleset_make(apr_pool_t *p);
/* A set of MTLSDeny rules: MTLSAllow syntax plus serial= (with issuer=);
 * only whole rules (mtls_ruleset_add_rule), no issuer gate. */
mtls_ruleset_t *mtls_ruleset_make_deny(apr_pool_t *p);
int mtls_ruleset_is_deny(const mtls_ruleset_t *rs);
const char *mtls_ruleset_add_subject(mtls_ruleset_t *rs, apr_pool_t *p,
                                     const char *dn, const char *source);
const char *mtls_ruleset_add_san(mtls_ruleset_t *rs, apr_pool_t *p,
                                 const char *san, const char *source);
const char *mtls_ruleset_add_issuer(mtls_ruleset_t *rs, apr_pool_t *p,
                                    const char *fp, const char *source,
                                    const unsigned char **fp_out);
/* One MTLSAllow line: space-separated key=value words, quoted as httpd
 * quotes arguments. The issuer pin, if any, is returned through pin_out
 * (may be NULL). */
const char *mtls_ruleset_add_rule(mtls_ruleset_t *rs, apr_pool_t *p,
                                  const char *line, const char *source,
                                  const unsigned char **pin_out);
/* The same, with the words and the message in tmp, which the caller
 * clears between rules (a rule file's loader). */
const char *mtls_ruleset_add_rule_tmp(mtls_ruleset_t *rs, apr_pool_t *p,
                                      apr_pool_t *tmp, const char *line,
                                      const char *source,
                                      const unsigned char **pin_out);
/* n bytes, unaligned, that live as long as rs: packed with its rules
 * (for their sources). */
char *mtls_ruleset_alloc(mtls_ruleset_t *rs, apr_size_t n);
int mtls_ruleset_is_empty(const mtls_ruleset_t *rs);
/* Does some MTLSAllow line of rs pin a certificate (cert=)? */
int mtls_ruleset_pins_certs(const mtls_ruleset_t *rs);
/* How many MTLSAllow lines rs holds. */
int mtls_ruleset_n_rules(const mtls_ruleset_t *rs);

/* Once a scope's rules are complete: NULL, or why one of them can never
 * match (an MTLSAllow issuer= outside the scope's issuer gate), in p. */
const char *mtls_ruleset_check(const mtls_ruleset_t *rs, apr_pool_t *p);

/* Once a scope's rules are complete, at startup: sorts the instants at
 * which its time-boxed rules start or end, for mtls_ruleset_span. */
void mtls_ruleset_finish(mtls_ruleset_t *rs);

/* Narrows [*lo, *hi) to the span around now in which no rule of rs
 * starts or ends: a match at now holds for any instant of it. Returns 0
 * if that cannot be told (rs has time-boxed rules and was not finished). */
int mtls_ruleset_span(const mtls_ruleset_t *rs, apr_time_t now, apr_time_t *lo,
                      apr_time_t *hi);

/* Calls fn for each time-boxed rule of rs, in the order they were added. */
typedef void mtls_window_fn(void *baton, const mtls_rule_t *rule);
void mtls_ruleset_windows(const mtls_ruleset_t *rs, mtls_window_fn *fn,
                          void *baton);

/* How many rules rs holds: every directive and rule-file line that made
 * one (MTLSAllow*, MTLSDeny*), in the order they were added. */
int mtls_ruleset_count(const mtls_ruleset_t *rs);
typedef void mtls_rule_fn(void *baton, const mtls_rule_t *rule, int i);
void mtls_ruleset_each(const mtls_ruleset_t *rs, mtls_rule_fn *fn, void *baton);
/* Where those rules are: n rules at base are rules first .. first+n-1.
 * A rule's place is told from its address (mtls_stats.c). */
typedef void mtls_slab_fn(void *baton, const mtls_rule_t *base, int n,
                          int first);
void mtls_ruleset_slabs(const mtls_ruleset_t *rs, mtls_slab_fn *fn,
                        void *baton);

/* 64 bits of a SHA-256 of what rule r matches (its keys, window and
 * kind, not where it is written) and of salt: the same rule in the same
 * place (salt) gets the same digest in the next configuration. */
apr_uint64_t mtls_rule_digest(const mtls_rule_t *r, const char *salt);

/* The rule of rs that matches id at the instant now, or NULL; m says
 * which and why (m->near for a rule outside its window). */
const mtls_rule_t *mtls_ruleset_match_at(const mtls_ruleset_t *rs,
                                         const mtls_identity_t *id,
                                         apr_time_t now, mtls_trace_fn *trace,
                                         void *baton, mtls_match_t *m);

/* mtls_ruleset_match_at now, for tests and tools. */
const mtls_rule_t *mtls_ruleset_match(const mtls_ruleset_t *rs,
                                      const mtls_identity_t *id,
                                      mtls_trace_fn *trace, void *baton,
                                      mtls_miss_e *miss);

#endif
