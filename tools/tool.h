/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls-authz-rule's own declarations, shared by its files:
 *   mtls-authz-rule.c  the command line, the modes' dispatch, output
 *   tool_util.c        reading certificates, text for comments
 *   tool_dn.c          subject DNs in RFC 4514 form
 *   tool_allow.c       MTLSAllow lines for a certificate, --issuer
 *   tool_deny.c        MTLSDeny lines for a certificate (--deny)
 *   tool_config.c      a configuration's rules (--config, --diff)
 *   tool_check.c       the decision for a certificate (--check, --diff)
 *   tool_report.c      --check and --diff as text, TSV or JSON */

#ifndef MTLS_TOOL_H
#define MTLS_TOOL_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/x509.h>

#include "mtls_identity.h"
#include "mtls_rules.h"
#include "mtls_version.h"

#define TOOL_VERSION MTLS_AUTHZ_VERSION

/* Exit codes, as documented in --help and docs/rule-tool.md. */
#define EXIT_OK 0
#define EXIT_USAGE 1
#define EXIT_INPUT 2
#define EXIT_INTERNAL 3
#define EXIT_REFUSED 4 /* --check: refused; --diff: a decision changed */

typedef struct {
    apr_pool_t *p;
    apr_array_header_t *out; /* const char *: output lines */
    const char *err;         /* first internal error */
} tool_t;

/* ---- tool_util.c ---- */

/* Every certificate in path, PEM (other PEM blocks such as keys are
 * skipped) or a single DER certificate; '-' is standard input. */
const char *tool_load_certs(apr_pool_t *p, const char *path,
                            apr_array_header_t **out);
/* Appends an output line. */
void tool_line(tool_t *t, const char *s);
/* For comments: printable ASCII as is, anything else (and '\') as \xHH. */
const char *tool_show(apr_pool_t *p, const unsigned char *s, size_t len);
const char *tool_show_path(apr_pool_t *p, const char *path);
/* "sha256:<hex>" of a certificate, or NULL. */
const char *tool_fp_of(apr_pool_t *p, X509 *x);
/* An empty trust store, freed with p; NULL without memory. */
X509_STORE *tool_store(apr_pool_t *p);

/* ---- tool_dn.c ---- */

/* The RFC 4514 form of name that the module parses back to the same
 * name, or NULL; *has_nul: a text value has a NUL byte. */
const char *tool_encode_dn(apr_pool_t *p, const X509_NAME *name, int *has_nul);
/* For comments and reports: the DN, or OpenSSL's rendering. */
const char *tool_show_dn(apr_pool_t *p, const X509_NAME *name);

/* ---- tool_allow.c ---- */

/* What a mode that prints rules knows about the client certificate. */
typedef struct {
    const char *path, *ca_path; /* as given */
    X509 *leaf;
    mtls_identity_t *id;      /* with the issuers found in the trust store */
    const char *subject;      /* RFC 4514, or NULL if no rule can state it */
    int has_nul;              /* a subject value has a NUL byte */
    apr_array_header_t *sans; /* tool_allow.c's san_t */
    const char *cert_fp;
} cert_t;

/* Loads c->path (and c->ca_path) and reads the leaf: an exit code. */
int tool_load_leaf(tool_t *t, cert_t *c);
/* The comment lines on the certificate: its file, subject, issuer.
 * mode: "" or " --deny" for the first line. */
void tool_header_lines(tool_t *t, const cert_t *c, const char *mode);
/* Why the directive line text (dir "MTLSAllow" or "MTLSDeny" and its
 * arguments) could not be pasted into httpd's configuration as it is,
 * or NULL. */
const char *tool_line_problem(const char *text, const char *dir);
/* Prints text after prefix, once the module's parser has compiled it
 * (an MTLSAllow line, deny: an MTLSDeny line) and the server's decision
 * for id is what it says: admitted, or refused by that rule. A line that
 * is not fails the run (t->err, exit 3), printed or not. */
void tool_checked_line(tool_t *t, const char *prefix, const char *text,
                       const mtls_identity_t *id, int deny);
int tool_cert_mode(tool_t *t, const char *path, const char *ca_path);
int tool_issuer_mode(tool_t *t, const char *path);

/* ---- tool_deny.c ---- */

int tool_deny_mode(tool_t *t, const char *path, const char *ca_path);

/* ---- tool_config.c ---- */

/* An MTLSAllowIssuerFingerprint value: the issuer gate of the scope. */
typedef struct {
    unsigned char fp[MTLS_FP_LEN];
    const char *source;
} tool_gate_t;

/* The rules of one --config file, as one httpd scope holds them. */
typedef struct {
    const char *path;
    mtls_ruleset_t *allow;     /* NULL if the file has no allow rule */
    mtls_ruleset_t *deny;      /* NULL if it has no deny rule */
    apr_array_header_t *gates; /* tool_gate_t, in order */
} tool_config_t;

/* Reads path; NULL or the error, which names file:line. */
const char *tool_config_load(apr_pool_t *p, const char *path,
                             tool_config_t **out);

/* ---- tool_check.c ---- */

/* One certificate, verified and its identity built, for any number of
 * configurations. */
typedef struct {
    const char *path;    /* as given */
    X509 *leaf;          /* NULL: not read (err says why) */
    mtls_identity_t *id; /* NULL unless verified */
    const char *verify;  /* NULL, or OpenSSL's reason it is not verified */
    const char *subject; /* for reports */
} tool_cert_t;

/* The decision for one certificate under one configuration. */
typedef struct {
    int admit;
    const char *rule; /* the rule that admits, denies, or is out of its
                         window; NULL for none */
    /* const char *: the constraints of the rule that admits or denies
     * ("subject", "san=DNS:x", "issuer", ...); NULL for none */
    apr_array_header_t *what;
    const char *reason; /* refuse: why, as the server logs it */
} tool_decision_t;

/* Reads and verifies path against store at the instant at (mod_ssl's
 * verification: the rest of the file as untrusted intermediates). NULL
 * or an input error. */
const char *tool_cert_read(apr_pool_t *p, X509_STORE *store, const char *path,
                           apr_time_t at, tool_cert_t *c);
/* The decision of mtls_policy_match for c under cf at the instant at. */
void tool_decide(apr_pool_t *p, const tool_config_t *cf, const tool_cert_t *c,
                 apr_time_t at, tool_decision_t *d);
/* The CA certificates of path in a trust store, or an input error. */
const char *tool_ca_store(apr_pool_t *p, const char *path, X509_STORE **out);

typedef enum { FMT_TEXT = 0, FMT_TSV, FMT_JSON } tool_format_e;

/* What --check and --diff were given. */
typedef struct {
    const char *ca;
    const char *config;            /* --check */
    const char *old_cfg, *new_cfg; /* --diff */
    apr_time_t at;
    tool_format_e fmt;
    const char *const *files;
    int n_files;
} tool_check_args_t;

int tool_check_mode(tool_t *t, const tool_check_args_t *a);
int tool_diff_mode(tool_t *t, const tool_check_args_t *a);

/* ---- tool_report.c ---- */

/* One line per certificate (JSON: one document), into t->out. */
void tool_report_check(tool_t *t, tool_format_e fmt, const char *config,
                       apr_time_t at, const tool_cert_t *certs,
                       const tool_decision_t *d, int n);
/* Only the certificates whose decision changed from old to new. */
void tool_report_diff(tool_t *t, tool_format_e fmt, const char *old_path,
                      const char *new_path, apr_time_t at,
                      const tool_cert_t *certs, const tool_decision_t *old_d,
                      const tool_decision_t *new_d, int n);

#endif
