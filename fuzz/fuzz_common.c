/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Shared by the fuzz targets: APR setup, and apr_palloc made visible to
 * AddressSanitizer.
 *
 * APR carves allocations out of 8 KiB blocks, so a write past the end of
 * one pool allocation lands in the next one and ASan sees nothing. Here
 * every apr_palloc (and apr_pcalloc, a macro over it) made by the code
 * under test is its own malloc, freed by a pool cleanup: an overflow of
 * a parser's buffer is then a heap-buffer-overflow report. Only the pool
 * of the input being run (fuzz_begin to fuzz_end) is served so: APR keeps
 * its pools where LeakSanitizer does not look, so a long-lived pool's
 * blocks would look leaked. The real apr_palloc also serves the cleanup
 * records of our blocks. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <apr_general.h>
#include <apr_pools.h>
#include <dlfcn.h>
#include <openssl/x509.h>
#include <sanitizer/lsan_interface.h>
#include <stdio.h>
#include <stdlib.h>

#include "certbuild.h"
#include "fuzz_common.h"
#include "under_test.h"

typedef void *palloc_fn(apr_pool_t *p, apr_size_t size);

static palloc_fn *real_palloc;
static int in_palloc, tracking;

static apr_status_t free_block(void *block)
{
    free(block);
    return APR_SUCCESS;
}

void *apr_palloc(apr_pool_t *p, apr_size_t size)
{
    void *block;
    if (real_palloc == NULL)
        real_palloc = (palloc_fn *)dlsym(RTLD_NEXT, "apr_palloc");
    if (in_palloc || !tracking)
        return real_palloc(p, size);
    in_palloc = 1;
    block = malloc(size ? size : 1);
    if (block == NULL)
        abort();
    apr_pool_cleanup_register(p, block, free_block, apr_pool_cleanup_null);
    in_palloc = 0;
    return block;
}

apr_pool_t *fuzz_begin(void)
{
    apr_pool_t *p;
    if (apr_pool_create(&p, fuzz_pool()) != APR_SUCCESS)
        abort();
    tracking = 1;
    return p;
}

void fuzz_end(apr_pool_t *p)
{
    tracking = 0;
    apr_pool_destroy(p);
}

void fuzz_check(const char *err, const char *what)
{
    if (err) {
        fprintf(stderr, "fuzz: %s: %s\n", what, err);
        abort();
    }
}

void fuzz_once(void (*init)(void))
{
    __lsan_disable();
    init();
    __lsan_enable();
}

apr_pool_t *fuzz_pool(void)
{
    static apr_pool_t *root;
    if (root == NULL) {
        if (apr_initialize() != APR_SUCCESS ||
            apr_pool_create(&root, NULL) != APR_SUCCESS) {
            fprintf(stderr, "fuzz: cannot initialise APR\n");
            abort();
        }
    }
    return root;
}

char *fuzz_cstring(apr_pool_t *p, const uint8_t *data, size_t size)
{
    char *s = apr_palloc(p, size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Does name hold a value that is a SEQUENCE or a SET? OpenSSL's
 * canonical form copies such a value as it is; mtls_name_key gives the
 * name no key. The same matches follow: the DN parser refuses such a
 * value, so no subject rule can name one. */
static int has_constructed_value(const X509_NAME *name)
{
    int i;
    for (i = 0; i < X509_NAME_entry_count(name); i++) {
        int t = ASN1_STRING_type(
            X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
        if (t == V_ASN1_SEQUENCE || t == V_ASN1_SET)
            return 1;
    }
    return 0;
}

void fuzz_check_name_key(apr_pool_t *p, const X509_NAME *name)
{
    mtls_key_t k;
    unsigned long ours, theirs;
    int ok = 0, have = mtls_name_key(p, name, &k);

    theirs = X509_NAME_hash_ex(name, NULL, NULL, &ok);
    if (!have && !ok)
        return; /* neither can compare this name */
    if (!have && has_constructed_value(name))
        return;
    if (have != ok) {
        fprintf(stderr, "fuzz: mtls_name_key %s, OpenSSL's canonical form %s\n",
                have ? "succeeds" : "fails", ok ? "succeeds" : "fails");
        abort();
    }
    ours = cb_key_hash(&k);
    if (ours != theirs) {
        fprintf(stderr,
                "fuzz: the subject key is not OpenSSL's canonical "
                "form (hash %08lx, OpenSSL %08lx)\n",
                ours, theirs);
        abort();
    }
}
