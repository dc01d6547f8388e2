/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Test-only module: a consumer of mod_mtls_authz.h. It reports what the
 * optional functions say about each request in response headers, so the
 * suite can check them from the client side. */

#include "httpd.h"
#include "http_config.h"
#include "http_request.h"
#include "apr_optional.h"

#include "mod_mtls_authz.h"

static APR_OPTIONAL_FN_TYPE(mtls_authz_matched_rule) * matched_rule;
static APR_OPTIONAL_FN_TYPE(mtls_authz_client_subject) * client_subject;

static void retrieve(void)
{
    matched_rule = APR_RETRIEVE_OPTIONAL_FN(mtls_authz_matched_rule);
    client_subject = APR_RETRIEVE_OPTIONAL_FN(mtls_authz_client_subject);
}

/* Runs after the access checks and fixups, just before the handler. */
static void report(request_rec *r)
{
    const char *rule, *subject;
    if (matched_rule == NULL || client_subject == NULL) {
        apr_table_setn(r->headers_out, "X-MTLS-Rule", "no optional function");
        return;
    }
    rule = matched_rule(r);
    subject = client_subject(r);
    apr_table_setn(r->headers_out, "X-MTLS-Rule", rule ? rule : "-");
    apr_table_setn(r->headers_out, "X-MTLS-Subject", subject ? subject : "-");
}

static void register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_optional_fn_retrieve(retrieve, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_filter(report, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(mtls_probe) = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, register_hooks,
    AP_MODULE_FLAG_NONE,
};
