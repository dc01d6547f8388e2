/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* The unit tests: one function per area of the module's pure code. */

#include <apr_general.h>
#include <stdio.h>

#include "unit.h"

int main(void)
{
    pki_t k;
    int failed;

    /* Line by line: under SANITIZE=1 a leak report ends the process
     * without flushing stdio. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    apr_initialize();
    apr_pool_create(&pool, NULL);
    pki_init(&k);

    test_dn();
    test_identity(&k);
    test_icache(&k);
    test_rules(&k);
    test_sans(&k);
    test_nets(&k);
    test_rulefile(&k);
    test_policy(&k);
    test_places(&k);

    failed = unit_failures();
    /* Everything freed, so that leak detection (SANITIZE=1) sees only
     * what the code under test forgets. */
    apr_pool_destroy(pool);
    pki_free(&k);
    apr_terminate();
    return failed ? 1 : 0;
}
