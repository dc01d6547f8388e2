/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Shared by the unit test files: one file per area of the module's pure
 * code, each with one entry point that main (unit.c) calls. */

#ifndef UNIT_H
#define UNIT_H

#include <apr_pools.h>
#include <openssl/x509.h>

#include "certbuild.h"
#include "under_test.h"

/* Everything a test allocates; destroyed at the end. */
extern apr_pool_t *pool;

/* One TAP line, "ok N - what" or "not ok N - what". */
void check(int cond, const char *what);

/* A serial number for the next certificate: the number of the next
 * check, so that no two leaves built for different checks share one. */
long next_serial(void);

/* Two trusted CAs, a forged one with CA A's name, and the identities of
 * alice (ALICE_SANS) as each of them issues her; test_identity makes the
 * identities, which the later areas use. */
typedef struct {
    X509 *ca, *ca2, *forged;
    EVP_PKEY *ca_key, *ca2_key, *forged_key, *leaf_key;
    X509_STORE *store; /* trusts ca and ca2 */
    const char *ca_pin, *ca2_pin, *forged_pin;
    const mtls_identity_t *id, *id_b, *id_forged;
} pki_t;

enum { BY_CA_A, BY_CA_B, BY_FORGED };

extern const char *const alice[]; /* C=US, O=Acme Inc., CN=alice */
#define ALICE_SANS                                                             \
    "DNS:alice.example.com,email:Alice@Example.COM,"                           \
    "URI:spiffe://example.org/ns/prod/sa/alice,"                               \
    "IP:192.0.2.7,IP:2001:db8::7"

/* The identity, in full, of a leaf with this subject and these SANs
 * (cb_leaf's syntax) issued by BY_CA_A, BY_CA_B or BY_FORGED. */
const mtls_identity_t *leaf(const pki_t *k, const char *const *dn,
                            const char *san, int issuer);

/* Does a scope made of these directive lines admit id? Each line is
 * "Directive value"; 1 yes, 0 no, -1 the scope does not load. */
int admits(const mtls_identity_t *id, const char *const *lines);
#define ADMITS(id, ...) admits(id, (const char *const[]){__VA_ARGS__, NULL})

/* One check of a one-line scope: its line, what admits() must say, and
 * the check's name. */
typedef struct {
    const char *line;
    int admits;
    const char *what;
} admit_case_t;

void check_cases(const mtls_identity_t *id, const admit_case_t *c, size_t n);
#define CHECK_CASES(id, cases)                                                 \
    check_cases(id, cases, sizeof(cases) / sizeof(cases[0]))

/* err names the problem: non-NULL and containing needle. */
int err_has(const char *err, const char *needle);

/* The parsed DN has the key of the certificate name built from entries
 * (cb_name's syntax). */
int dn_equal(const char *dn, const char *const *entries);

/* The areas, in the order main runs them. */
void test_dn(void);
void pki_init(pki_t *k);
void pki_free(pki_t *k);
/* Prints the tally; the number of failed checks. */
int unit_failures(void);

void test_identity(pki_t *k);
void test_icache(const pki_t *k);
void test_rules(const pki_t *k);
void test_sans(const pki_t *k);
void test_nets(const pki_t *k);
void test_rulefile(const pki_t *k);
void test_policy(const pki_t *k);
void test_places(const pki_t *k);

#endif
