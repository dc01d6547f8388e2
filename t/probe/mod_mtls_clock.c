/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Test-only module: a request that carries "X-Test-Clock: <seconds since
 * the epoch>" gets that as its request time, so that the suite can ask
 * about time-boxed rules at any instant without waiting. Never loaded
 * outside the tests that name it. */

#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"

static int set_clock(request_rec *r)
{
    const char *v = apr_table_get(r->headers_in, "X-Test-Clock");
    char *end;
    apr_int64_t secs;
    if (v == NULL)
        return DECLINED;
    secs = apr_strtoi64(v, &end, 10);
    if (*end == '\0' && secs > 0)
        r->request_time = apr_time_from_sec(secs);
    return DECLINED;
}

static void register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_post_read_request(set_clock, NULL, NULL, APR_HOOK_REALLY_FIRST);
}

AP_DECLARE_MODULE(mtls_clock) = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, register_hooks,
    AP_MODULE_FLAG_NONE,
};
