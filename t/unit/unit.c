/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Unit tests of the module's pure code (mtls_rules.c, mtls_dn.c,
 * mtls_file.c), without httpd: certificates are built in memory with
 * t/lib/certbuild.c. Here is what every area uses; the areas are in
 * unit_*.c, and main in main.c. */

#include <apr_general.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"

apr_pool_t *pool;
static int passed, failed;

int unit_failures(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    return failed;
}

const char *const alice[] = {"C", "US", "O", "Acme Inc.", "CN", "alice", NULL};

void check(int cond, const char *what)
{
    if (cond) {
        passed++;
        printf("ok %d - %s\n", passed + failed, what);
    }
    else {
        failed++;
        printf("not ok %d - %s\n", passed + failed, what);
    }
}

long next_serial(void)
{
    return passed + failed + 1;
}

void pki_init(pki_t *k)
{
    static const char *const ca_dn[] = {"O", "Test", "CN", "CA A", NULL};
    static const char *const ca2_dn[] = {"O", "Test", "CN", "CA B", NULL};
    X509_NAME *n;
    memset(k, 0, sizeof(*k));
    k->ca_key = cb_key();
    k->ca2_key = cb_key();
    k->forged_key = cb_key();
    k->leaf_key = cb_key();
    /* The forged CA copies CA A's name, serial number included. */
    n = cb_name(ca_dn);
    k->ca = cb_ca(n, k->ca_key, 1);
    k->forged = cb_ca(n, k->forged_key, 1);
    X509_NAME_free(n);
    n = cb_name(ca2_dn);
    k->ca2 = cb_ca(n, k->ca2_key, 1);
    X509_NAME_free(n);
    k->store = X509_STORE_new();
    X509_STORE_add_cert(k->store, k->ca);
    X509_STORE_add_cert(k->store, k->ca2);
    k->ca_pin = cb_pin(pool, k->ca);
    k->ca2_pin = cb_pin(pool, k->ca2);
    k->forged_pin = cb_pin(pool, k->forged);
}

void pki_free(pki_t *k)
{
    X509_STORE_free(k->store);
    X509_free(k->ca);
    X509_free(k->ca2);
    X509_free(k->forged);
    EVP_PKEY_free(k->ca_key);
    EVP_PKEY_free(k->ca2_key);
    EVP_PKEY_free(k->forged_key);
    EVP_PKEY_free(k->leaf_key);
}

const mtls_identity_t *leaf(const pki_t *k, const char *const *dn,
                            const char *san, int issuer)
{
    X509_NAME *n = cb_name(dn);
    X509 *ca = issuer == BY_CA_A   ? k->ca
               : issuer == BY_CA_B ? k->ca2
                                   : k->forged;
    EVP_PKEY *key = issuer == BY_CA_A   ? k->ca_key
                    : issuer == BY_CA_B ? k->ca2_key
                                        : k->forged_key;
    X509 *x = cb_leaf(n, san, ca, key, k->leaf_key, next_serial());
    const mtls_identity_t *id = mtls_identity_build(pool, x, k->store, 1);
    X509_NAME_free(n);
    X509_free(x);
    return id;
}

int admits(const mtls_identity_t *id, const char *const *lines)
{
    mtls_ruleset_t *rs = mtls_ruleset_make(pool);
    mtls_miss_e miss;
    for (; *lines; lines++) {
        const char *l = *lines, *sp = strchr(l, ' '), *err;
        const char *v = sp ? sp + 1 : "";
        if (strncmp(l, "MTLSAllowSubject ", 17) == 0)
            err = mtls_ruleset_add_subject(rs, pool, v, "t:1");
        else if (strncmp(l, "MTLSAllowSAN ", 13) == 0)
            err = mtls_ruleset_add_san(rs, pool, v, "t:1");
        else if (strncmp(l, "MTLSAllowIssuerFingerprint ", 27) == 0)
            err = mtls_ruleset_add_issuer(rs, pool, v, "t:1", NULL);
        else
            err = mtls_ruleset_add_rule(rs, pool, v, "t:1", NULL);
        if (err) {
            printf("# config error: %s\n", err);
            return -1;
        }
    }
    return mtls_ruleset_match(rs, id, NULL, NULL, &miss) != NULL;
}

void check_cases(const mtls_identity_t *id, const admit_case_t *c, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        check(ADMITS(id, c[i].line) == c[i].admits, c[i].what);
}

int err_has(const char *err, const char *needle)
{
    return err != NULL && strstr(err, needle) != NULL;
}
