/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_strings.h"
#include "apr_lib.h"
#include "apr_file_io.h"
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "http_core.h"
#include "mtls_conf.h"
#include "mtls_file.h"
#include "mtls_time.h"
#include "mtls_version.h"

APLOG_USE_MODULE(mtls_authz);

typedef struct {
    const unsigned char *fp;
    const char *source;
} mtls_pin_t;

/* What the startup checks need to know about one (virtual) server. */
typedef struct {
    apr_array_header_t *pins;     /* mtls_pin_t, first use of each issuer */
    apr_hash_t *pinned;           /* fingerprints in pins */
    apr_array_header_t *enforced; /* "file:line" of each MTLSAuthz On */
    apr_array_header_t *required; /* "file:line" of each Require mtls */
    int n_rule_directives;
    apr_array_header_t *rulesets; /* mtls_ruleset_t *, each scope's */
    apr_hash_t *trusted;          /* CA fingerprints from mod_ssl, or NULL */
} mtls_srv_conf_t;

/* "file:line" of the first MTLSAuthz On or Require mtls, and which of
 * the two it is, for the mod_ssl check. */
static const char *first_enforced;
static const char *first_enforced_by;
/* Aliases of this module's provider (<AuthzProviderAlias mtls name>) that
 * some "Require not name" negates, for the provider: a grant there is a
 * denial. Rebuilt from the configuration tree at each check_config. */
static apr_hash_t *negated_aliases;
/* Does some <AuthzProviderAlias> use this module's provider? */
static int aliases_used;
/* Does some rule pin a certificate? Set while any configuration is read,
 * an .htaccess file too (in the process that reads it), never cleared
 * until the next generation's: identities then carry the digest. */
static volatile int cert_pins;

/* ---- per-directory configuration ---------------------------------------- */

void *mtls_dir_create(apr_pool_t *p, char *dir)
{
    mtls_dir_conf_t *dc = apr_pcalloc(p, sizeof(*dc));
    (void)dir;
    dc->enforce = MTLS_UNSET;
    dc->mode = MTLS_UNSET;
    dc->export_env = MTLS_UNSET;
    dc->forward = MTLS_UNSET;
    return dc;
}

/* Rulesets of base, then those of add: .htaccess gates, deny rules. */
static const apr_array_header_t *merge_sets(apr_pool_t *p,
                                            const apr_array_header_t *base,
                                            const apr_array_header_t *add)
{
    apr_array_header_t *g;
    if (add == NULL || add == base)
        return base;
    if (base == NULL)
        return add;
    g = apr_array_copy(p, base);
    apr_array_cat(g, add);
    return g;
}

/* Every field of mtls_dir_conf_t is listed here: an unset field (UNSET or
 * NULL) inherits, a set one replaces, so a child scope of the server
 * configuration can turn enforcement back Off and a scope's rules replace
 * the inherited ones; deny rules add up. What an .htaccess sets cannot
 * weaken anything (its directives refuse Off and Audit; its rules only
 * add gates), and an .htaccess that turns on enforcement already on
 * leaves it the server's. */
static int dir_unset(const mtls_dir_conf_t *dc)
{
    return dc->enforce == MTLS_UNSET && dc->mode == MTLS_UNSET &&
           dc->export_env == MTLS_UNSET && dc->forward == MTLS_UNSET &&
           dc->rules == NULL && dc->ht_rules == NULL && dc->gates == NULL &&
           dc->denies == NULL && dc->scope == NULL;
}

void *mtls_dir_merge(apr_pool_t *p, void *basev, void *addv)
{
    mtls_dir_conf_t *base = basev, *add = addv;
    mtls_dir_conf_t *dc;

    /* httpd merges per request for <Location> and .htaccess: a scope
     * that sets nothing of this module's changes nothing, without a copy
     * (merged configurations are never written to). */
    if (dir_unset(add))
        return base;
    if (dir_unset(base))
        return add;
    dc = apr_pcalloc(p, sizeof(*dc));
    if (add->enforce == MTLS_UNSET || (add->enforce_ht && base->enforce == 1)) {
        dc->enforce = base->enforce;
        dc->enforce_ht = base->enforce_ht;
    }
    else {
        dc->enforce = add->enforce;
        dc->enforce_ht = add->enforce_ht;
    }
    dc->mode = add->mode != MTLS_UNSET ? add->mode : base->mode;
    dc->export_env =
        add->export_env != MTLS_UNSET ? add->export_env : base->export_env;
    dc->forward = add->forward != MTLS_UNSET ? add->forward : base->forward;
    dc->rules = add->rules ? add->rules : base->rules;
    dc->gates = merge_sets(p, base->gates, add->gates);
    dc->denies = merge_sets(p, base->denies, add->denies);
    dc->scope = add->scope ? add->scope : base->scope;
    return dc;
}

/* An .htaccess file: httpd parses those with one pool for both (see
 * ap_check_cmd_context's NOT_IN_HTACCESS). */
static int in_htaccess(const cmd_parms *cmd)
{
    return cmd->pool == cmd->temp_pool;
}

/* Each (virtual) server has its own: the flag AP_MODULE_FLAG_ALWAYS_MERGE
 * makes httpd create one for a host that sets none of these directives
 * too, rather than share the main server's. */
void *mtls_srv_create(apr_pool_t *p, server_rec *s)
{
    mtls_srv_conf_t *sc = apr_pcalloc(p, sizeof(*sc));
    (void)s;
    sc->pins = apr_array_make(p, 4, sizeof(mtls_pin_t));
    sc->pinned = apr_hash_make(p);
    sc->enforced = apr_array_make(p, 2, sizeof(const char *));
    sc->required = apr_array_make(p, 2, sizeof(const char *));
    sc->rulesets = apr_array_make(p, 4, sizeof(mtls_ruleset_t *));
    return sc;
}

/* What a host's startup checks need is about its own directives; the
 * main server's sections are counted where they apply (check_config). */
void *mtls_srv_merge(apr_pool_t *p, void *basev, void *addv)
{
    (void)p;
    (void)basev;
    return addv;
}

/* A "Require mtls" is mod_authz_core's directive: where it is a host's
 * only use of this module, httpd has not created the host's config yet. */
static mtls_srv_conf_t *srv_conf(server_rec *s)
{
    mtls_srv_conf_t *sc =
        ap_get_module_config(s->module_config, &mtls_authz_module);
    if (sc == NULL) {
        sc = mtls_srv_create(s->process->pconf, s);
        ap_set_module_config(s->module_config, &mtls_authz_module, sc);
    }
    return sc;
}

void mtls_conf_set_trusted(server_rec *s, apr_hash_t *fps)
{
    srv_conf(s)->trusted = fps;
}

/* ---- directives --------------------------------------------------------- */

static const char *source_of(cmd_parms *cmd)
{
    return apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename,
                        cmd->directive->line_num);
}

/* httpd prints about 8 KB of a message at most; of a longer one keep
 * the start (the value) and the end (what is wrong with it). */
#define MTLS_ERR_HEAD 256
#define MTLS_ERR_TAIL 512

static const char *directive_error(cmd_parms *cmd, const char *err)
{
    apr_size_t n = strlen(err);
    if (n > MTLS_ERR_HEAD + MTLS_ERR_TAIL + 64)
        err = apr_psprintf(
            cmd->pool, "%.*s[... %" APR_SIZE_T_FMT " bytes left out ...]%s",
            MTLS_ERR_HEAD, err, n - MTLS_ERR_HEAD - MTLS_ERR_TAIL,
            err + n - MTLS_ERR_TAIL);
    return apr_pstrcat(cmd->pool, cmd->cmd->name, ": ", err, NULL);
}

/* The line numbers of file that hold a NUL byte, as a hash of ints (empty
 * if it cannot be read), read once per configuration pass. */
static apr_hash_t *nul_lines(cmd_parms *cmd, const char *file)
{
    apr_hash_t *files = NULL, *lines;
    apr_file_t *f;
    char buf[8192];
    apr_size_t n, i;
    int line = 1;

    apr_pool_userdata_get((void **)&files, "mtls_authz_nul_lines",
                          cmd->temp_pool);
    if (files == NULL) {
        files = apr_hash_make(cmd->temp_pool);
        apr_pool_userdata_setn(files, "mtls_authz_nul_lines", NULL,
                               cmd->temp_pool);
    }
    if ((lines = apr_hash_get(files, file, APR_HASH_KEY_STRING)) != NULL)
        return lines;
    lines = apr_hash_make(cmd->temp_pool);
    apr_hash_set(files, apr_pstrdup(cmd->temp_pool, file), APR_HASH_KEY_STRING,
                 lines);
    if (apr_file_open(&f, file, APR_FOPEN_READ, APR_OS_DEFAULT,
                      cmd->temp_pool) != APR_SUCCESS)
        return lines;
    while (n = sizeof(buf), apr_file_read(f, buf, &n) == APR_SUCCESS) {
        for (i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                line++;
            }
            else if (buf[i] == '\0') {
                int *key = apr_palloc(cmd->temp_pool, sizeof(*key));
                *key = line;
                apr_hash_set(lines, key, sizeof(*key), "");
            }
        }
    }
    apr_file_close(f);
    return lines;
}

/* httpd's configuration reader ends a line at a NUL byte and silently
 * drops the rest, so "MTLSAllow subject=... <NUL> issuer=..." would lose
 * its issuer constraint and admit more than written. Such a line is an
 * error. (The directive's own file is read again to see it.) */
static const char *nul_check(cmd_parms *cmd)
{
    const ap_directive_t *d = cmd->directive;
    if (d == NULL || d->filename == NULL ||
        !apr_hash_get(nul_lines(cmd, d->filename), &d->line_num,
                      sizeof(d->line_num)))
        return NULL;
    return directive_error(cmd, "this line holds a NUL byte, and httpd "
                                "ignores everything after it");
}

/* The rule set a directive in this scope adds to: the scope's own, or
 * in an .htaccess the file's gate. */
/* Where a directive of this module may not be: inside <Limit> or
 * <LimitExcept>, which it would ignore (so "MTLSAuthz Off" in
 * <Limit POST> would open GET too), or on a line with a NUL byte. */
static const char *context_check(cmd_parms *cmd)
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_LIMIT);
    return err ? err : nul_check(cmd);
}

/* The section cmd is in, for the counters: never an .htaccess file,
 * which makes no scope of its own. */
static mtls_scope_t *note_scope(cmd_parms *cmd, mtls_dir_conf_t *dc)
{
    if (dc->scope == NULL && !in_htaccess(cmd))
        dc->scope = mtls_stats_scope(cmd);
    return dc->scope;
}

static mtls_ruleset_t *scope_rules(cmd_parms *cmd, mtls_dir_conf_t *dc)
{
    mtls_srv_conf_t *sc;
    if (in_htaccess(cmd)) {
        /* Its own gate at once: httpd merges parsed sections into each
         * other as well as into merged ones (the directory walk starts
         * from its first section), so a parsed config must be complete. */
        if (dc->ht_rules == NULL) {
            apr_array_header_t *g =
                apr_array_make(cmd->pool, 1, sizeof(mtls_ruleset_t *));
            dc->ht_rules = mtls_ruleset_make(cmd->pool);
            APR_ARRAY_PUSH(g, mtls_ruleset_t *) = dc->ht_rules;
            dc->gates = g;
        }
        return dc->ht_rules;
    }
    sc = srv_conf(cmd->server);
    if (dc->rules == NULL) {
        dc->rules = mtls_ruleset_make(cmd->pool);
        APR_ARRAY_PUSH(sc->rulesets, mtls_ruleset_t *) = dc->rules;
        mtls_stats_add_ruleset(dc->rules, note_scope(cmd, dc));
    }
    sc->n_rule_directives++;
    return dc->rules;
}

/* The first directive that pins each issuer, for the startup check. */
static void record_pin(cmd_parms *cmd, const unsigned char *fp,
                       const char *source)
{
    mtls_srv_conf_t *sc;
    mtls_pin_t *pin;
    if (fp == NULL || in_htaccess(cmd))
        return;
    sc = srv_conf(cmd->server);
    if (apr_hash_get(sc->pinned, fp, MTLS_FP_LEN))
        return;
    apr_hash_set(sc->pinned, fp, MTLS_FP_LEN, fp);
    pin = apr_array_push(sc->pins);
    pin->fp = fp;
    pin->source = source;
}

static void note_enforcing(const char *src, const char *by)
{
    if (first_enforced == NULL) {
        first_enforced = src;
        first_enforced_by = by;
    }
}

static const char *set_enforce(cmd_parms *cmd, void *dcfg, int on)
{
    mtls_dir_conf_t *dc = dcfg;
    const char *err = ap_check_cmd_context(cmd, NOT_IN_LIMIT);
    if (err)
        return err;
    if (in_htaccess(cmd)) {
        if (!on)
            return directive_error(cmd,
                                   "Off is not allowed in .htaccess, which "
                                   "may only narrow what the server "
                                   "configuration enforces");
        dc->enforce = 1;
        dc->enforce_ht = 1;
        return NULL;
    }
    dc->enforce = on;
    note_scope(cmd, dc);
    if (on) {
        const char *src = source_of(cmd);
        APR_ARRAY_PUSH(srv_conf(cmd->server)->enforced, const char *) = src;
        note_enforcing(src, "MTLSAuthz On");
    }
    return NULL;
}

/* Does mod_authz_core turn a grant of this Require line into a denial?
 * Each "not" on the line and each <RequireNone> or <RequireNotAll> around
 * it negates once; mod_authz_core reshapes the sections (De Morgan) but
 * keeps that parity. */
static int require_negated(apr_pool_t *p, const ap_directive_t *d)
{
    const char *args = d->args;
    int neg = strcasecmp(ap_getword_conf(p, &args), "not") == 0;
    for (d = d->parent; d; d = d->parent) {
        if (strcasecmp(d->directive, "<RequireNone") == 0 ||
            strcasecmp(d->directive, "<RequireNotAll") == 0)
            neg = !neg;
        else if (strcasecmp(d->directive, "<RequireAll") != 0 &&
                 strcasecmp(d->directive, "<RequireAny") != 0)
            break;
    }
    return neg;
}

int mtls_conf_note_require(cmd_parms *cmd)
{
    const char *src;
    int flags = 0;
    /* mod_authz_core takes "not" off before it asks the provider to
     * parse the rest; the directive still has it, and its sections. */
    if (cmd->directive && require_negated(cmd->temp_pool, cmd->directive))
        flags |= MTLS_REQUIRE_NOT;
    if (in_htaccess(cmd))
        return flags | MTLS_REQUIRE_HTACCESS;
    /* mod_authz_core parses an alias's Require arguments after walking
     * its section: cmd->directive is then the section's last child. */
    if (cmd->directive &&
        (strcasecmp(cmd->directive->directive, "<AuthzProviderAlias") == 0 ||
         (cmd->directive->parent &&
          strcasecmp(cmd->directive->parent->directive,
                     "<AuthzProviderAlias") == 0)))
        aliases_used = 1;
    src = source_of(cmd);
    APR_ARRAY_PUSH(srv_conf(cmd->server)->required, const char *) = src;
    note_enforcing(src, "Require mtls");
    return flags;
}

static const char *set_mode(cmd_parms *cmd, void *dcfg, const char *arg)
{
    mtls_dir_conf_t *dc = dcfg;
    const char *err = ap_check_cmd_context(cmd, NOT_IN_LIMIT);
    if (err)
        return err;
    if (strcasecmp(arg, "Enforce") == 0)
        dc->mode = MTLS_MODE_ENFORCE;
    else if (strcasecmp(arg, "Audit") == 0 && in_htaccess(cmd))
        return directive_error(cmd, "Audit is not allowed in .htaccess, "
                                    "which may only narrow what the server "
                                    "configuration enforces");
    else if (strcasecmp(arg, "Audit") == 0)
        dc->mode = MTLS_MODE_AUDIT;
    else
        return directive_error(
            cmd,
            apr_psprintf(cmd->pool, "'%s': expected Enforce or Audit", arg));
    note_scope(cmd, dc);
    return NULL;
}

typedef const char *value_fn(cmd_parms *cmd, mtls_dir_conf_t *dc,
                             const char *value, const char *source);

/* The one-field directives take several values. httpd's ITERATE would
 * stop at an empty "" and silently drop the rest of the line, and its
 * unescaping of \\ would change DN escapes; the words are split here, as
 * MTLSAllow's are, and an empty one is an error like any other. */
static const char *each_value(cmd_parms *cmd, void *dcfg, const char *args,
                              value_fn *fn)
{
    const char *source = source_of(cmd); /* one copy for all values */
    int n = 0;
    const char *nul = context_check(cmd);
    if (nul)
        return nul;
    for (;;) {
        char *word;
        const char *err = mtls_next_word(cmd->temp_pool, &args, &word);
        if (err == NULL && word == NULL)
            break;
        if (err == NULL)
            err = fn(cmd, dcfg, word, source);
        if (err)
            return directive_error(cmd, err);
        n++;
    }
    return n ? NULL : directive_error(cmd, "needs at least one value");
}

static const char *subject_value(cmd_parms *cmd, mtls_dir_conf_t *dc,
                                 const char *v, const char *source)
{
    return mtls_ruleset_add_subject(scope_rules(cmd, dc), cmd->pool, v, source);
}

static const char *san_value(cmd_parms *cmd, mtls_dir_conf_t *dc, const char *v,
                             const char *source)
{
    return mtls_ruleset_add_san(scope_rules(cmd, dc), cmd->pool, v, source);
}

static const char *issuer_value(cmd_parms *cmd, mtls_dir_conf_t *dc,
                                const char *v, const char *source)
{
    const unsigned char *fp = NULL;
    const char *err = mtls_ruleset_add_issuer(scope_rules(cmd, dc), cmd->pool,
                                              v, source, &fp);
    if (err == NULL)
        record_pin(cmd, fp, source);
    return err;
}

static const char *add_subject(cmd_parms *cmd, void *dcfg, const char *args)
{
    return each_value(cmd, dcfg, args, subject_value);
}

static const char *add_san(cmd_parms *cmd, void *dcfg, const char *args)
{
    return each_value(cmd, dcfg, args, san_value);
}

static const char *add_issuer(cmd_parms *cmd, void *dcfg, const char *args)
{
    return each_value(cmd, dcfg, args, issuer_value);
}

static const char *add_rule(cmd_parms *cmd, void *dcfg, const char *args)
{
    const unsigned char *fp = NULL;
    const char *source = source_of(cmd);
    const char *err = context_check(cmd);
    mtls_ruleset_t *rs;
    if (err)
        return err;
    rs = scope_rules(cmd, dcfg);
    err = mtls_ruleset_add_rule(rs, cmd->pool, args, source, &fp);
    if (err)
        return directive_error(cmd, err);
    if (mtls_ruleset_pins_certs(rs))
        cert_pins = 1;
    record_pin(cmd, fp, source);
    return NULL;
}

/* This scope's deny rules. Not from an .htaccess, not even where
 * AllowOverrideList names the directive: a deny list is the server
 * configuration's. */
static const char *deny_scope(cmd_parms *cmd, mtls_dir_conf_t *dc,
                              mtls_ruleset_t **rs)
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_LIMIT | NOT_IN_HTACCESS);
    if (err == NULL)
        err = nul_check(cmd);
    if (err)
        return err;
    if (dc->deny_rules == NULL) {
        apr_array_header_t *d =
            apr_array_make(cmd->pool, 1, sizeof(mtls_ruleset_t *));
        dc->deny_rules = mtls_ruleset_make_deny(cmd->pool);
        APR_ARRAY_PUSH(d, mtls_ruleset_t *) = dc->deny_rules;
        dc->denies = d;
        APR_ARRAY_PUSH(srv_conf(cmd->server)->rulesets, mtls_ruleset_t *) =
            dc->deny_rules;
        mtls_stats_add_ruleset(dc->deny_rules, note_scope(cmd, dc));
    }
    *rs = dc->deny_rules;
    return NULL;
}

static const char *add_deny(cmd_parms *cmd, void *dcfg, const char *args)
{
    mtls_ruleset_t *rs;
    const char *err = deny_scope(cmd, dcfg, &rs);
    if (err)
        return err;
    err = mtls_ruleset_add_rule(rs, cmd->pool, args, source_of(cmd), NULL);
    if (err)
        return directive_error(cmd, err);
    if (mtls_ruleset_pins_certs(rs))
        cert_pins = 1;
    return NULL;
}

static void file_pin(void *baton, const unsigned char *fp, const char *source)
{
    record_pin(baton, fp, source);
}

/* MTLSExportEnv: not from an .htaccess, not even where AllowOverrideList
 * names it (which bypasses the command's RSRC_CONF | ACCESS_CONF). */
static const char *set_export_env(cmd_parms *cmd, void *dcfg, int on)
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_HTACCESS);
    if (err)
        return err;
    ((mtls_dir_conf_t *)dcfg)->export_env = on ? 1 : 0;
    return NULL;
}

/* MTLSForwardHeaders: not from an .htaccess, not even where
 * AllowOverrideList names it. What a backend is told about the client
 * is the server configuration's choice, as with MTLSExportEnv; and Off
 * there would hand the backend again whatever the client sends under
 * these names, which no .htaccess may do. */
static const char *set_forward(cmd_parms *cmd, void *dcfg, const char *arg)
{
    mtls_dir_conf_t *dc = dcfg;
    const char *err = ap_check_cmd_context(cmd, NOT_IN_LIMIT | NOT_IN_HTACCESS);
    if (err == NULL)
        err = nul_check(cmd);
    if (err)
        return err;
    if (strcasecmp(arg, "rfc9440") == 0)
        dc->forward = MTLS_FWD_RFC9440;
    else if (strcasecmp(arg, "xfcc") == 0)
        dc->forward = MTLS_FWD_XFCC;
    else if (strcasecmp(arg, "off") == 0)
        dc->forward = MTLS_FWD_OFF;
    else
        return directive_error(
            cmd, apr_psprintf(cmd->pool, "'%s': expected rfc9440, xfcc or off",
                              arg));
    return NULL;
}

/* Rules from a file into rs (cmd->info: "deny" for MTLSDenyFile). */
static const char *load_rule_file(cmd_parms *cmd, mtls_ruleset_t *rs,
                                  const char *path)
{
    int n = 0;
    const char *err =
        mtls_rulefile_load(rs, cmd->pool, cmd->temp_pool, path,
                           mtls_ruleset_is_deny(rs) ? NULL : file_pin, cmd, &n);
    if (err)
        return directive_error(cmd, err);
    if (mtls_ruleset_pins_certs(rs))
        cert_pins = 1;
    /* No server: while the configuration is read, only that reaches
     * stderr (at startup) or the main error log (on restart). */
    if (n == 0)
        ap_log_error(
            APLOG_MARK, APLOG_WARNING, 0, NULL, "%s %s (%s) has no rule: %s",
            cmd->cmd->name, path, source_of(cmd),
            mtls_ruleset_is_deny(rs) ? "it refuses nobody"
                                     : "no client passes where it applies");
    return NULL;
}

/* Like one MTLSAllow (MTLSDeny) directive per line of the file. The file
 * is read whenever the configuration is, so a graceful restart re-reads
 * it. */
static const char *add_rule_file(cmd_parms *cmd, void *dcfg, const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);
    mtls_ruleset_t *rs;
    const char *err = ap_check_cmd_context(cmd, NOT_IN_LIMIT | NOT_IN_HTACCESS);

    /* Not even where AllowOverrideList names it: it would let .htaccess
     * authors read any file the server can read, and re-read it on every
     * request. */
    if (err)
        return err;
    if (path == NULL || *arg == '\0')
        return directive_error(
            cmd, apr_psprintf(cmd->pool, "'%s': invalid path", arg));
    if (cmd->info != NULL) {
        if ((err = deny_scope(cmd, dcfg, &rs)) != NULL)
            return err;
    }
    else
        rs = scope_rules(cmd, dcfg);
    return load_rule_file(cmd, rs, path);
}

#define MTLS_CONTEXT (RSRC_CONF | ACCESS_CONF | OR_AUTHCFG)

const command_rec mtls_cmds[] = {
    AP_INIT_FLAG("MTLSAuthz", set_enforce, NULL, MTLS_CONTEXT,
                 "On|Off: admit only clients with a verified certificate "
                 "that an MTLSAllow* rule matches (default Off)"),
    AP_INIT_TAKE1("MTLSAuthzMode", set_mode, NULL, MTLS_CONTEXT,
                  "Enforce|Audit: Audit admits what the rules would deny "
                  "and logs the denial marked AUDIT (default Enforce)"),
    AP_INIT_RAW_ARGS("MTLSAllowSubject", add_subject, NULL, MTLS_CONTEXT,
                     "\"<DN>\"...: allowed subject DNs in RFC 4514 form, "
                     "e.g. \"CN=billing,O=Acme Inc.,C=US\" (default none)"),
    AP_INIT_RAW_ARGS("MTLSAllowSAN", add_san, NULL, MTLS_CONTEXT,
                     "<type>:<value>...: allowed subjectAltNames, type DNS, "
                     "email, URI (a trailing /* is a path prefix) or IP "
                     "(default none)"),
    AP_INIT_RAW_ARGS("MTLSAllowIssuerFingerprint", add_issuer, NULL,
                     MTLS_CONTEXT,
                     "sha256:<hex>...: the client certificate must be signed "
                     "by one of these trusted CA certificates (default any)"),
    AP_INIT_RAW_ARGS("MTLSAllow", add_rule, NULL, MTLS_CONTEXT,
                     "key=value...: one rule whose every constraint must "
                     "hold; keys subject=<DN>, san=<type>:<value>, "
                     "issuer=sha256:<hex>, cert=sha256:<hex>, and "
                     "not_before=/not_after=<date> for a time-boxed rule "
                     "(default none)"),
    /* Not in .htaccess: what CGI scripts and SSI see is the server
     * configuration's choice, as with SSLOptions +StdEnvVars. */
    AP_INIT_FLAG("MTLSExportEnv", set_export_env, NULL, RSRC_CONF | ACCESS_CONF,
                 "On|Off: also put the identity variables of an admitted "
                 "request into its environment, for CGI, SSI, PHP and "
                 "%{...}e (default Off: %{...}s and expressions read them "
                 "on demand)"),
    /* Not in .htaccess: what a backend learns is the server
     * configuration's choice (see set_forward). */
    AP_INIT_TAKE1("MTLSForwardHeaders", set_forward, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "rfc9440|xfcc|off: the admitted client's certificate as "
                  "request headers for a proxied backend (RFC 9440 "
                  "Client-Cert and Client-Cert-Chain, or Envoy's "
                  "X-Forwarded-Client-Cert), after removing every request "
                  "header that could pass for one of them (default off)"),
    /* Not in .htaccess: it would let .htaccess authors read any file the
     * server can read, and re-read it on every request. */
    AP_INIT_TAKE1("MTLSAllowFile", add_rule_file, NULL, RSRC_CONF | ACCESS_CONF,
                  "<path>: MTLSAllow rules from a file, one per line, # "
                  "comments; relative to ServerRoot (default none)"),
    /* Not in .htaccess: a deny list is the server configuration's, and
     * nothing below it may drop one. */
    AP_INIT_RAW_ARGS("MTLSDeny", add_deny, NULL, RSRC_CONF | ACCESS_CONF,
                     "key=value...: refuse the clients this rule matches, "
                     "before any MTLSAllow* rule; MTLSAllow's keys and "
                     "serial=<hex> (with issuer=); nested scopes add to the "
                     "deny rules they inherit (default none)"),
    AP_INIT_TAKE1("MTLSDenyFile", add_rule_file, "deny",
                  RSRC_CONF | ACCESS_CONF,
                  "<path>: MTLSDeny rules from a file, one per line, # "
                  "comments; relative to ServerRoot (default none)"),
    AP_INIT_TAKE1("MTLSAuthzExpiryWarning", mtls_stats_set_expiry, NULL,
                  RSRC_CONF,
                  "<days>: warn when an admitted client certificate expires "
                  "within this many days, once per certificate per child "
                  "per hour; 0 turns it off (default 30)"),
    AP_INIT_TAKE1("MTLSAuthzSeenCache", mtls_stats_set_cache, NULL, RSRC_CONF,
                  "<provider>[:<args>]|none: the mod_socache cache of the "
                  "recently seen client certificates, for the status page "
                  "(default shmcb, 512 KB, where mod_socache_shmcb is "
                  "loaded)"),
    {NULL}};

int mtls_conf_aliases_used(void)
{
    return aliases_used;
}

int mtls_conf_cert_pins(void)
{
    return cert_pins;
}

/* ---- startup checks ----------------------------------------------------- */

int mtls_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    first_enforced = NULL;
    negated_aliases = NULL;
    aliases_used = 0;
    cert_pins = 0;
    first_enforced_by = NULL;
    mtls_stats_pre_config(pconf);
    return OK;
}

static const char *server_name(apr_pool_t *p, server_rec *s)
{
    return apr_psprintf(p, "%s:%u (%s:%d)",
                        s->server_hostname ? s->server_hostname : "-",
                        (unsigned)s->port, s->defn_name ? s->defn_name : "-",
                        s->defn_line_number);
}

/* A server where `what` (MTLSAuthz On or Require mtls) is used but no
 * rule is configured would deny every request: refuse to start. */
static int refuse_without_rules(server_rec *s, server_rec *vs,
                                const apr_array_header_t *uses,
                                const char *what, int rules, apr_pool_t *ptemp)
{
    if (uses->nelts == 0 || rules > 0)
        return 0;
    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                 "%s (%s) but no MTLSAllow, MTLSAllowFile, "
                 "MTLSAllowSubject, MTLSAllowSAN or MTLSAllowIssuerFingerprint "
                 "is configured for %s: every request would be denied",
                 what, APR_ARRAY_IDX(uses, 0, const char *),
                 server_name(ptemp, vs));
    return 1;
}

/* A rule that can never match is surely a mistake. */
static int refuse_dead_rules(server_rec *s, apr_pool_t *ptemp)
{
    server_rec *vs;
    int i;
    for (vs = s; vs; vs = vs->next) {
        const apr_array_header_t *sets = srv_conf(vs)->rulesets;
        for (i = 0; i < sets->nelts; i++) {
            const char *err = mtls_ruleset_check(
                APR_ARRAY_IDX(sets, i, const mtls_ruleset_t *), ptemp);
            if (err) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "%s", err);
                return 1;
            }
        }
    }
    return 0;
}

/* ---- time-boxed rules at startup ----------------------------------------- */

#define MTLS_WINDOW_NOTICE apr_time_from_sec(7 * 86400)
#define MTLS_WINDOW_LINES 20

typedef struct {
    server_rec *s;
    apr_time_t now;
    int expired, expiring;
} window_report_t;

/* A rule that has ended, or ends within a week: the operator should
 * know before a client finds out. */
static void report_window(void *baton, const mtls_rule_t *rule)
{
    window_report_t *w = baton;
    apr_time_t end = rule->ext->not_after;
    const char *kind = rule->ext->deny ? "deny rule" : "rule";
    char t[MTLS_TIME_TEXT_LEN];

    if (end == 0 || end > w->now + MTLS_WINDOW_NOTICE)
        return;
    if (end <= w->now && w->expired++ < MTLS_WINDOW_LINES)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, w->s,
                     "%s %s expired at %s: it no longer matches any client",
                     kind, rule->source, mtls_time_text(t, end));
    else if (end > w->now && w->expiring++ < MTLS_WINDOW_LINES)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, w->s,
                     "%s %s expires at %s, within 7 days", kind, rule->source,
                     mtls_time_text(t, end));
}

/* Sorts each ruleset's window bounds (for the per-connection memo) and
 * reports the rules that ended or end soon. */
static void finish_rulesets(server_rec *s)
{
    window_report_t w = {s, apr_time_now(), 0, 0};
    server_rec *vs;
    int i;
    for (vs = s; vs; vs = vs->next) {
        const apr_array_header_t *sets = srv_conf(vs)->rulesets;
        for (i = 0; i < sets->nelts; i++) {
            mtls_ruleset_t *rs = APR_ARRAY_IDX(sets, i, mtls_ruleset_t *);
            mtls_ruleset_finish(rs);
            mtls_ruleset_windows(rs, report_window, &w);
        }
    }
    if (w.expired > MTLS_WINDOW_LINES)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "... and %d more rules that expired",
                     w.expired - MTLS_WINDOW_LINES);
    if (w.expiring > MTLS_WINDOW_LINES)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "... and %d more rules that expire within 7 days",
                     w.expiring - MTLS_WINDOW_LINES);
}

/* ---- Require lines that others may bypass ------------------------------- */

int mtls_conf_alias_negated(const char *name)
{
    return negated_aliases && name &&
           apr_hash_get(negated_aliases, name, APR_HASH_KEY_STRING) != NULL;
}

/* The i-th word of a directive's arguments, without a section's '>'. */
static const char *arg_word(apr_pool_t *p, const ap_directive_t *d, int i)
{
    const char *args = d->args;
    char *w = NULL;
    for (; i >= 0; i--)
        w = ap_getword_conf(p, &args);
    if (*w && w[strlen(w) - 1] == '>')
        w[strlen(w) - 1] = '\0';
    return w;
}

/* The provider a Require line names, after any "not"; *neg says if. */
static const char *require_names(apr_pool_t *p, const ap_directive_t *d,
                                 int *neg)
{
    const char *w = arg_word(p, d, 0);
    *neg = strcasecmp(w, "not") == 0;
    return *neg ? arg_word(p, d, 1) : w;
}

/* Does a Require line name this module's provider, or an alias of it? */
static int requires_mtls(apr_pool_t *p, const ap_directive_t *d,
                         apr_hash_t *aliases)
{
    const char *w;
    int neg;
    if (strcasecmp(d->directive, "Require") != 0)
        return 0;
    w = require_names(p, d, &neg);
    return strcasecmp(w, "mtls") == 0 ||
           apr_hash_get(aliases, w, APR_HASH_KEY_STRING) != NULL;
}

static void find_aliases(apr_pool_t *p, const ap_directive_t *d,
                         apr_hash_t *aliases)
{
    for (; d; d = d->next) {
        if (strcasecmp(d->directive, "<AuthzProviderAlias") == 0 &&
            strcasecmp(arg_word(p, d, 0), "mtls") == 0)
            apr_hash_set(aliases, arg_word(p, d, 1), APR_HASH_KEY_STRING, "");
        find_aliases(p, d->first_child, aliases);
    }
}

static void find_negated(apr_pool_t *p, const ap_directive_t *d,
                         apr_hash_t *aliases, apr_hash_t *negated)
{
    for (; d; d = d->next) {
        int neg;
        const char *w;
        if (strcasecmp(d->directive, "Require") == 0 &&
            (w = require_names(p, d, &neg),
             apr_hash_get(aliases, w, APR_HASH_KEY_STRING)) &&
            require_negated(p, d) &&
            !apr_hash_get(negated, w, APR_HASH_KEY_STRING))
            apr_hash_set(negated, apr_pstrdup(p, w), APR_HASH_KEY_STRING, d);
        find_negated(p, d->first_child, aliases, negated);
    }
}

/* An alias of this module's provider used both negated and not: the
 * provider learns only its name, so none of its grants can count as an
 * admission (no variables), which its positive uses would not expect. */
static void warn_mixed_aliases(server_rec *s, apr_pool_t *p,
                               const ap_directive_t *d, apr_hash_t *aliases)
{
    for (; d; d = d->next) {
        int neg;
        const char *w;
        const ap_directive_t *n;
        if (strcasecmp(d->directive, "Require") == 0 &&
            (w = require_names(p, d, &neg),
             apr_hash_get(aliases, w, APR_HASH_KEY_STRING)) &&
            !require_negated(p, d) &&
            (n = apr_hash_get(negated_aliases, w, APR_HASH_KEY_STRING)))
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         "Require %s (%s:%d): that alias is also "
                         "negated (%s:%d), and this module learns only an "
                         "alias's name: none of its grants sets the identity "
                         "variables; give the negated uses an alias of their "
                         "own",
                         d->args, d->filename, d->line_num, n->filename,
                         n->line_num);
        warn_mixed_aliases(s, p, d->first_child, aliases);
    }
}

/* Does this directive let .htaccess files set Require or Satisfy? */
static int lets_htaccess_authorize(apr_pool_t *p, const ap_directive_t *d)
{
    int list = strcasecmp(d->directive, "AllowOverrideList") == 0, i;
    if (!list && strcasecmp(d->directive, "AllowOverride") != 0)
        return 0;
    for (i = 0;; i++) {
        const char *w = arg_word(p, d, i);
        if (*w == '\0')
            return 0;
        if (list
                ? strcasecmp(w, "Require") == 0 || strcasecmp(w, "Satisfy") == 0
                : strcasecmp(w, "All") == 0 || strcasecmp(w, "AuthConfig") == 0)
            return 1;
    }
}

/* The enclosing <VirtualHost>, or NULL in the main server. */
static const ap_directive_t *vhost_of(const ap_directive_t *d)
{
    for (; d; d = d->parent) {
        if (strcasecmp(d->directive, "<VirtualHost") == 0)
            return d;
    }
    return NULL;
}

/* The first directive that lets .htaccess files authorize, for the main
 * server (whose <Directory> sections apply to every virtual host), for
 * each <VirtualHost>, and anywhere (*any: a main-server section applies
 * in every virtual host, so any of theirs counts). */
static void find_overrides(apr_pool_t *p, const ap_directive_t *d,
                           apr_hash_t *found, const ap_directive_t **any)
{
    for (; d; d = d->next) {
        if (lets_htaccess_authorize(p, d)) {
            const ap_directive_t **key = apr_palloc(p, sizeof(*key));
            *key = vhost_of(d);
            if (!apr_hash_get(found, key, sizeof(*key)))
                apr_hash_set(found, key, sizeof(*key), d);
            if (*any == NULL)
                *any = d;
        }
        find_overrides(p, d->first_child, found, any);
    }
}

/* The Satisfy Any of a section: a Satisfy line of its own or of a
 * <Limit>, <LimitExcept> or <If> in it, the last one winning (NULL for
 * Satisfy All); or inherited when it has none. */
static const ap_directive_t *satisfy_of(apr_pool_t *p, const ap_directive_t *d,
                                        const ap_directive_t *inherited)
{
    for (; d; d = d->next) {
        if (strcasecmp(d->directive, "Satisfy") == 0)
            inherited = strcasecmp(arg_word(p, d, 0), "any") == 0 ? d : NULL;
        else if (strcasecmp(d->directive, "<Limit") == 0 ||
                 strcasecmp(d->directive, "<LimitExcept") == 0 ||
                 strcasecmp(d->directive, "<If") == 0 ||
                 strcasecmp(d->directive, "<ElseIf") == 0 ||
                 strcasecmp(d->directive, "<Else") == 0) {
            const ap_directive_t *in = satisfy_of(p, d->first_child, NULL);
            if (in)
                inherited = in;
        }
    }
    return inherited;
}

typedef struct {
    server_rec *s;
    apr_pool_t *p;
    apr_hash_t *aliases;
    apr_hash_t *overrides;
    const ap_directive_t *any_override;
    /* AllowOverride directive -> the Require lines it exposes */
    apr_hash_t *exposed;
} walk_ctx;

/* Warns for each Require naming this module's provider that something
 * outside this module can bypass:
 * - Satisfy Any, set in its section or one around it (the last of a
 *   section winning): mod_access_compat's host-based check, which admits
 *   everyone where no Allow or Deny applies, then admits the request
 *   without mod_authz_core asking any Require line. Sections that only
 *   overlap (two <Location>s) are not seen, nor is an .htaccess.
 * - AllowOverride AuthConfig (or All, or AllowOverrideList with Require
 *   or Satisfy) in the same server: an .htaccess may then replace the
 *   Require lines, even a <Location>'s through an <If> (merged after
 *   <Location>), or set Satisfy Any.
 * MTLSAuthz On is exposed to neither. */
static void warn_requires(walk_ctx *w, const ap_directive_t *first,
                          const ap_directive_t *any)
{
    const ap_directive_t *d, *vh = NULL, *ov;
    any = satisfy_of(w->p, first, any);
    for (d = first; d; d = d->next) {
        if (requires_mtls(w->p, d, w->aliases)) {
            if (any)
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, w->s,
                             "Require %s (%s:%d) is under "
                             "Satisfy Any (%s:%d): there mod_access_compat "
                             "can admit a client without mod_authz_core "
                             "asking it; use MTLSAuthz On, which Satisfy Any "
                             "cannot bypass, or Satisfy All",
                             d->args, d->filename, d->line_num, any->filename,
                             any->line_num);
            vh = vhost_of(d);
            if (vh == NULL) {
                ov = w->any_override;
            }
            else if ((ov = apr_hash_get(w->overrides, &vh, sizeof(vh))) ==
                     NULL) {
                vh = NULL;
                ov = apr_hash_get(w->overrides, &vh, sizeof(vh));
            }
            if (ov) {
                apr_array_header_t *l =
                    apr_hash_get(w->exposed, &ov, sizeof(ov));
                if (l == NULL) {
                    const ap_directive_t **key = apr_palloc(w->p, sizeof(*key));
                    *key = ov;
                    l = apr_array_make(w->p, 4, sizeof(d));
                    apr_hash_set(w->exposed, key, sizeof(*key), l);
                }
                APR_ARRAY_PUSH(l, const ap_directive_t *) = d;
            }
        }
        if (d->first_child &&
            strcasecmp(d->directive, "<AuthzProviderAlias") != 0)
            warn_requires(w, d->first_child, any);
    }
}

/* The configuration tree's Require lines of this module's provider. */
static void check_requires(server_rec *s, apr_pool_t *pconf, apr_pool_t *ptemp)
{
    apr_hash_index_t *hi;
    walk_ctx w;
    w.s = s;
    w.p = ptemp;
    w.aliases = apr_hash_make(ptemp);
    w.overrides = apr_hash_make(ptemp);
    w.any_override = NULL;
    find_aliases(ptemp, ap_conftree, w.aliases);
    negated_aliases = apr_hash_make(pconf);
    find_negated(pconf, ap_conftree, w.aliases, negated_aliases);
    warn_mixed_aliases(s, ptemp, ap_conftree, w.aliases);
    find_overrides(ptemp, ap_conftree, w.overrides, &w.any_override);
    w.exposed = apr_hash_make(ptemp);
    warn_requires(&w, ap_conftree, NULL);
    /* One warning per AllowOverride, naming the first line it exposes. */
    for (hi = apr_hash_first(ptemp, w.exposed); hi; hi = apr_hash_next(hi)) {
        const void *k;
        void *v;
        const ap_directive_t *ov, *d;
        const apr_array_header_t *l;
        apr_hash_this(hi, &k, NULL, &v);
        ov = *(const ap_directive_t *const *)k;
        l = v;
        d = APR_ARRAY_IDX(l, 0, const ap_directive_t *);
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "Require %s (%s:%d)%s: %s %s (%s:%d) lets "
                     ".htaccess files replace Require lines, even a "
                     "<Location>'s (through <If>), and set Satisfy Any; where "
                     "they must not open what those protect, use MTLSAuthz "
                     "On, which no .htaccess can weaken",
                     d->args, d->filename, d->line_num,
                     l->nelts > 1
                         ? apr_psprintf(ptemp,
                                        " and %d more Require line(s) of this "
                                        "module",
                                        l->nelts - 1)
                         : "",
                     ov->directive, ov->args, ov->filename, ov->line_num);
    }
}

/* Runs for "httpd -t" too, unlike post_config. */
int mtls_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                      server_rec *s)
{
    mtls_srv_conf_t *main_sc = srv_conf(s);
    int total_rules = 0;
    server_rec *vs;
    (void)plog;

    if (first_enforced && ap_find_linked_module("mod_ssl.c") == NULL) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "%s (%s) needs mod_ssl, which is not loaded",
                     first_enforced_by, first_enforced);
        return !OK;
    }
    for (vs = s; vs; vs = vs->next)
        total_rules += srv_conf(vs)->n_rule_directives;
    for (vs = s; vs; vs = vs->next) {
        mtls_srv_conf_t *sc = srv_conf(vs);
        /* Sections of the main server apply to every virtual host. */
        int rules = vs == s
                        ? total_rules
                        : sc->n_rule_directives + main_sc->n_rule_directives;
        if (refuse_without_rules(s, vs, sc->enforced, "MTLSAuthz On", rules,
                                 ptemp) ||
            refuse_without_rules(s, vs, sc->required, "Require mtls", rules,
                                 ptemp))
            return !OK;
    }
    if (refuse_dead_rules(s, ptemp))
        return !OK;
    finish_rulesets(s);
    check_requires(s, pconf, ptemp);
    return OK;
}

static int trusts(server_rec *s, const unsigned char *fp)
{
    mtls_srv_conf_t *sc = srv_conf(s);
    return sc->trusted && apr_hash_get(sc->trusted, fp, MTLS_FP_LEN);
}

/* A pin configured in virtual host s must be trusted there. One in the
 * main server's sections applies to every host, but a host may replace
 * those rules or not ask for client certificates at all, so it must be
 * trusted by at least one SSL host (and the others are warned about).
 * Returns the host to name in the refusal, or NULL. */
static server_rec *untrusting_host(server_rec *main_s, server_rec *s,
                                   const unsigned char *fp, const char *source,
                                   apr_pool_t *ptemp)
{
    server_rec *vs;
    int trusted = 0;
    if (s != main_s)
        return trusts(s, fp) ? NULL : s;
    for (vs = main_s; vs; vs = vs->next) {
        if (srv_conf(vs)->trusted == NULL)
            continue;
        if (trusts(vs, fp))
            trusted++;
        else
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_s,
                         "%s: issuer sha256:%s is not trusted by "
                         "%s; that pin can never match there",
                         source, mtls_fp_hex(ptemp, fp),
                         server_name(ptemp, vs));
    }
    return trusted ? NULL : main_s;
}

/* After mod_ssl's post_config, which ran mtls_init_server for each
 * SSL host: every pinned issuer must be a CA that host trusts, or the
 * pin could never match and is surely a mistake. */
int mtls_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                     server_rec *s)
{
    server_rec *vs;
    int i;
    (void)plog;

    for (vs = s; vs; vs = vs->next) {
        mtls_srv_conf_t *sc = srv_conf(vs);
        for (i = 0; i < sc->pins->nelts; i++) {
            const mtls_pin_t *pin = &APR_ARRAY_IDX(sc->pins, i, mtls_pin_t);
            server_rec *where =
                untrusting_host(s, vs, pin->fp, pin->source, ptemp);
            if (where == NULL)
                continue;
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         "%s: issuer sha256:%s is not a CA "
                         "certificate in the trust store "
                         "(SSLCACertificateFile) of %s",
                         pin->source, mtls_fp_hex(ptemp, pin->fp),
                         server_name(ptemp, where));
            return !OK;
        }
    }
    /* Which build is running, once per configuration (not for the first
     * pass at startup, which httpd throws away). */
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG)
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s,
                     "mod_mtls_authz/%s loaded (%s)", MTLS_AUTHZ_VERSION,
                     OpenSSL_version(OPENSSL_VERSION));
    return mtls_stats_post_config(pconf, ptemp, s);
}
