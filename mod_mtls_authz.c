/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mod_mtls_authz: which verified TLS client certificates may reach which
 * locations. This file holds only the module record and its hooks; see
 * mtls_conf.c (directives, startup checks), mtls_ssl.c (what mod_ssl
 * tells), mtls_conn.c (the identity of a connection's certificate),
 * mtls_access.c (the decision), mtls_env.c (variables for admitted
 * requests), mtls_headers.c (MTLSForwardHeaders), mtls_stats.c (counters,
 * recently seen clients, the expiry watch), mtls_status.c (the status handler),
 * and, without httpd,
 * mtls_identity.c (certificate to keys), mtls_rules.c / mtls_dn.c (rules and
 * matching), mtls_file.c (rule files). */

#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_ssl.h"
#include "apr_optional.h"
#include "apr_optional_hooks.h"
#include "mod_auth.h"

#include "mod_mtls_authz.h"
#include "mtls_access.h"
#include "mtls_conf.h"
#include "mtls_conn.h"
#include "mtls_headers.h"
#include "mtls_ssl.h"
#include "mtls_stats.h"
#include "mtls_status.h"

static const authz_provider require_mtls = {
    &mtls_require_check,
    &mtls_require_parse,
};

static void register_hooks(apr_pool_t *p)
{
    /* mod_ssl's access check may renegotiate or request the certificate
     * post-handshake; before it there may be no certificate yet. */
    static const char *const after_ssl[] = {"mod_ssl.c", NULL};
    static const char *const before_headers[] = {"mod_headers.c", NULL};

    ap_hook_pre_config(mtls_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(mtls_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(mtls_post_config, after_ssl, NULL, APR_HOOK_MIDDLE);

    /* Per-conf: subrequests and internal redirects with a different
     * per-dir configuration are checked again; same ones are not. */
    ap_hook_check_access(mtls_access_checker, after_ssl, NULL, APR_HOOK_MIDDLE,
                         AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_check_access_ex(mtls_access_checker_ex, NULL, NULL, APR_HOOK_FIRST,
                            AP_AUTH_INTERNAL_PER_CONF);

    /* "Require mtls"; per-conf like the hooks above. */
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "mtls",
                              AUTHZ_PROVIDER_VERSION, &require_mtls,
                              AP_AUTH_INTERNAL_PER_CONF);

    /* MTLSForwardHeaders: the client's lookalikes go once the
     * configuration is known, before any access check can refuse the
     * request (an error document shares its request headers). */
    ap_hook_header_parser(mtls_headers_early, NULL, NULL,
                          APR_HOOK_REALLY_FIRST);

    /* Before mod_rewrite's fixups, which read the identity variables,
     * and mod_dir's, which may fast-redirect to a subrequest; again just
     * before mod_headers builds request headers from them (mod_rewrite
     * and mod_env may have set some in between); and after all. */
    ap_hook_fixups(mtls_fixups, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_fixups(mtls_fixups_recheck, NULL, before_headers, APR_HOOK_LAST);
    ap_hook_fixups(mtls_fixups_recheck, NULL, NULL, APR_HOOK_REALLY_LAST);
    /* Before mod_log_config. */
    ap_hook_log_transaction(mtls_log_transaction, NULL, NULL,
                            APR_HOOK_REALLY_FIRST);

    /* The identity variables on demand: before mod_ssl, which knows
     * nothing of MTLS_* names. */
    ap_hook_ssl_var_lookup(mtls_var_lookup, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_expr_lookup(mtls_expr_lookup, NULL, NULL, APR_HOOK_MIDDLE);

    /* Per process: the issuer cache and the scratch SSL (mtls_ssl.c). */
    ap_hook_child_init(mtls_ssl_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* Per process: the seen cache's lock, the expiry watch (mtls_stats.c). */
    ap_hook_child_init(mtls_stats_child_init, NULL, NULL, APR_HOOK_MIDDLE);

    ap_hook_handler(mtls_status_handler, NULL, NULL, APR_HOOK_MIDDLE);

    APR_OPTIONAL_HOOK(ssl, pre_handshake, mtls_pre_handshake, NULL, NULL,
                      APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ssl, init_server, mtls_ssl_init_server, NULL, NULL,
                      APR_HOOK_MIDDLE);

    /* What a connection recorded for the status page ends with it. */
    mtls_conn_on_seen_end(mtls_stats_seen_end);

    APR_REGISTER_OPTIONAL_FN(mtls_authz_matched_rule);
    APR_REGISTER_OPTIONAL_FN(mtls_authz_client_subject);
}

AP_DECLARE_MODULE(mtls_authz) = {
    STANDARD20_MODULE_STUFF, mtls_dir_create,
    mtls_dir_merge,          mtls_srv_create,
    mtls_srv_merge,          mtls_cmds,
    register_hooks,          AP_MODULE_FLAG_ALWAYS_MERGE,
};
