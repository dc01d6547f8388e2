/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls_rules: the rules of mod_mtls_authz, and keys.
 *
 * Pure APR + OpenSSL, no httpd: parsed and compiled at config time,
 * looked up at request time, unit-tested and fuzzed without a server. */

#ifndef MTLS_RULES_H
#define MTLS_RULES_H

#include <apr_hash.h>
#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/x509.h>

#define MTLS_FP_LEN 32 /* SHA-256 */

/* Every identity attribute and every rule constraint is reduced to a
 * "key": a tag byte followed by the normalised value. Equal keys mean
 * equal values under docs/reference.md's matching rules, so a lookup is
 * one hash probe. A subject's key is the canonical encoding that
 * X509_NAME_cmp compares (mtls_dn.c); it is indexed by a digest of that
 * and confirmed in full. */
enum {
    MTLS_K_SUBJECT = 'S',
    MTLS_K_CERT = 'C',
    MTLS_K_ISSUER = 'F',
    MTLS_K_DNS = 'D',
    MTLS_K_EMAIL = 'E',
    MTLS_K_URI = 'U',
    MTLS_K_URI_PREFIX = 'P',
    MTLS_K_IP4 = '4',
    MTLS_K_IP6 = '6'
};

typedef struct {
    const char *data;
    apr_size_t len;
} mtls_key_t;

typedef struct mtls_rule_t mtls_rule_t;
struct mtls_rule_t {
    const char *source;          /* "file:line" of the directive */
    mtls_key_t subject;          /* data NULL: no subject constraint */
    const unsigned char *issuer; /* NULL: no issuer constraint */
    const unsigned char *cert;   /* NULL: no certificate pin */
    apr_array_header_t *sans;    /* mtls_key_t, all present; may be NULL */
    mtls_rule_t *next;           /* next rule indexed under the same key */
};

/* The rules of one configuration scope, compiled into hash indexes
 * (mtls_rules.c). */
typedef struct mtls_ruleset mtls_ruleset_t;

/* What a client certificate says, as keys (mtls_identity.h). */
typedef struct mtls_identity mtls_identity_t;

typedef enum {
    MTLS_MISS_NONE = 0, /* matched */
    MTLS_MISS_NO_RULE,  /* no rule matched */
    MTLS_MISS_ISSUER    /* a rule matched except for its issuer */
} mtls_miss_e;

/* Called for each candidate rule tried, for debug logging. */
typedef void mtls_trace_fn(void *baton, const mtls_rule_t *rule,
                           mtls_miss_e result);

/* Parsers. Each returns NULL on success or an error message allocated
 * in p (without the directive name; the caller adds it). */
const char *mtls_dn_parse(apr_pool_t *p, const char *text, mtls_key_t *out);
/* The key of a certificate's name; 0 if a value has no canonical form. */
int mtls_name_key(apr_pool_t *p, const X509_NAME *name, mtls_key_t *out);
const char *mtls_fp_parse(apr_pool_t *p, const char *text,
                          unsigned char out[MTLS_FP_LEN]);
const char *mtls_san_parse(apr_pool_t *p, const char *text, mtls_key_t *out);

/* The next word of a directive's arguments into *word (NULL at the end).
 * A word or a part of it may be double-quoted; inside quotes \" is a quote.
 * Nothing else is unescaped, so DN escapes such as \, and \\ reach the DN
 * parser intact. Returns an error for an unbalanced quote. */
const char *mtls_next_word(apr_pool_t *p, const char **line, char **word);

mtls_ruleset_t *mtls_ruleset_make(apr_pool_t *p);
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
int mtls_ruleset_is_empty(const mtls_ruleset_t *rs);
/* How many MTLSAllow lines rs holds. */
int mtls_ruleset_n_rules(const mtls_ruleset_t *rs);

/* Once a scope's rules are complete: NULL, or why one of them can never
 * match (an MTLSAllow issuer= outside the scope's issuer gate), in p. */
const char *mtls_ruleset_check(const mtls_ruleset_t *rs, apr_pool_t *p);

/* The rule that admits id, or NULL with *miss saying why not. */
const mtls_rule_t *mtls_ruleset_match(const mtls_ruleset_t *rs,
                                      const mtls_identity_t *id,
                                      mtls_trace_fn *trace, void *baton,
                                      mtls_miss_e *miss);

/* Lowercase hex of a fingerprint, in p. */
const char *mtls_fp_hex(apr_pool_t *p, const unsigned char *fp);
/* The value of a hex digit, or -1. */
int mtls_hex_digit(char ch);

/* Keys, as both rules and identities make them. */
mtls_key_t mtls_key_make(apr_pool_t *p, char tag, const void *v,
                         apr_size_t len);
/* DNS names compare case-insensitively, ignoring one trailing dot. */
mtls_key_t mtls_key_dns(apr_pool_t *p, const char *v, apr_size_t len);
/* The domain after the last '@' is case-insensitive, the local part
 * exact. */
mtls_key_t mtls_key_email(apr_pool_t *p, const char *v, apr_size_t len);
/* What a subject's canonical key is indexed by. */
mtls_key_t mtls_key_subject_index(apr_pool_t *p, const mtls_key_t *subject);

#endif
