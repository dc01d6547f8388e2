/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <apr_pools.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The process-wide parent pool; each input gets a subpool of it that is
 * destroyed afterwards, so leak detection sees whatever the code under
 * test forgets to release through its pool cleanups. */
apr_pool_t *fuzz_pool(void);

/* A subpool for one input, whose allocations ASan checks one by one
 * (see fuzz_common.c); fuzz_end destroys it. */
apr_pool_t *fuzz_begin(void);
void fuzz_end(apr_pool_t *p);

/* Runs a target's setup: what it keeps for the whole run lives in
 * fuzz_pool(), where LeakSanitizer cannot see that it is still used, so
 * its allocations are exempt from leak reports. */
void fuzz_once(void (*init)(void));

/* Setup of a target that must not fail: aborts naming what failed. */
void fuzz_check(const char *err, const char *what);

/* The input as a NUL-terminated string in p (it may hold NULs of its
 * own: the code under test then sees only the part before the first). */
char *fuzz_cstring(apr_pool_t *p, const uint8_t *data, size_t size);

/* The module's key for a name must be OpenSSL's canonical encoding, the
 * one X509_NAME_cmp compares: same SHA-1 as X509_NAME_hash_ex, and
 * computable exactly when OpenSSL's is. Aborts otherwise. */
void fuzz_check_name_key(apr_pool_t *p, const X509_NAME *name);

#endif
