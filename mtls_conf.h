/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls_conf: directives, per-directory and per-server configuration, and
 * the startup checks that refuse a configuration that cannot work. */

#ifndef MTLS_CONF_H
#define MTLS_CONF_H

#include "httpd.h"
#include "http_config.h"
#include "mtls_rules.h"
#include "mtls_stats.h"

#define MTLS_UNSET (-1)

/* MTLSAuthzMode */
#define MTLS_MODE_ENFORCE 0
#define MTLS_MODE_AUDIT 1

/* MTLSForwardHeaders */
#define MTLS_FWD_OFF 0
#define MTLS_FWD_RFC9440 1 /* Client-Cert, Client-Cert-Chain */
#define MTLS_FWD_XFCC 2    /* X-Forwarded-Client-Cert */

/* Per-directory configuration. What an .htaccess file sets can only
 * narrow what it inherits: it may turn enforcement on but never off, ask
 * for Enforce but never Audit, and its rules are gates that a client must
 * pass in addition to the rules of the server configuration, never
 * instead of them. */
typedef struct {
    int enforce;    /* MTLS_UNSET, 0 or 1 */
    int enforce_ht; /* enforce == 1 came from an .htaccess, not the server */
    int mode;       /* MTLS_UNSET, MTLS_MODE_ENFORCE or _AUDIT */
    int export_env; /* MTLSExportEnv: MTLS_UNSET, 0 or 1 */
    int forward;    /* MTLSForwardHeaders: MTLS_UNSET or MTLS_FWD_* */
    mtls_ruleset_t *rules; /* the server configuration's; NULL: none */
    /* MTLSDeny rules: this scope's own, and (const mtls_ruleset_t *) every
     * scope's in effect here, enclosing ones first. A scope adds to what
     * it inherits and can never drop any. NULL: none. */
    mtls_ruleset_t *deny_rules;
    const apr_array_header_t *denies;
    mtls_ruleset_t *ht_rules; /* this .htaccess file's own; also a gate */
    /* const mtls_ruleset_t *: the rules of every .htaccess in scope; a
     * client must pass each. NULL: none. */
    const apr_array_header_t *gates;
    /* The innermost section of the server configuration with a directive
     * of this module: decisions are counted under it. NULL: none. */
    mtls_scope_t *scope;
} mtls_dir_conf_t;

extern module AP_MODULE_DECLARE_DATA mtls_authz_module;
extern const command_rec mtls_cmds[];

void *mtls_dir_create(apr_pool_t *p, char *dir);
void *mtls_dir_merge(apr_pool_t *p, void *basev, void *addv);
void *mtls_srv_create(apr_pool_t *p, server_rec *s);
void *mtls_srv_merge(apr_pool_t *p, void *basev, void *addv);

int mtls_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);
int mtls_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                      server_rec *s);
int mtls_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                     server_rec *s);
/* The fingerprints of the CAs that SSL host s trusts (mtls_ssl.c). */
void mtls_conf_set_trusted(server_rec *s, apr_hash_t *fps);

/* How a "Require mtls" line is written. */
#define MTLS_REQUIRE_HTACCESS 1 /* in an .htaccess file */
#define MTLS_REQUIRE_NOT 2      /* "Require not mtls": a grant denies */

/* For the "Require mtls" provider's parser: records where it is used,
 * for the startup checks, and returns MTLS_REQUIRE_* flags. */
int mtls_conf_note_require(cmd_parms *cmd);

/* Does some <AuthzProviderAlias> of the provider exist? */
int mtls_conf_aliases_used(void);
/* Does some rule read so far (server configuration or .htaccess) pin a
 * certificate? */
int mtls_conf_cert_pins(void);

/* Does some "Require not <name>" negate this alias of the provider? */
int mtls_conf_alias_negated(const char *name);

/* MTLSExportEnv of a merged configuration (default Off). */
#define mtls_dir_export_env(dc) ((dc)->export_env == 1)

/* MTLSForwardHeaders of a merged configuration (default off). */
#define mtls_dir_forward(dc) ((dc)->forward > 0 ? (dc)->forward : MTLS_FWD_OFF)

/* MTLSAuthzMode of a merged configuration. */
#define mtls_dir_audit(dc) ((dc)->mode == MTLS_MODE_AUDIT)

#endif
