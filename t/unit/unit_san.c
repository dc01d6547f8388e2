/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Rules by subjectAltName: how DNS, email, URI and IP values match, URI
 * prefixes, and the values the SAN parser refuses. */

#include <apr_strings.h>

#include "unit.h"

/* How a rule's value matches a SAN of each type. */
static void by_type(const mtls_identity_t *id)
{
    static const admit_case_t dns[] = {
        {"MTLSAllowSAN DNS:ALICE.example.com.", 1,
         "DNS case-insensitive, trailing dot"},
        {"MTLSAllowSAN DNS:alice.example.com..", 0,
         "only one trailing dot ignored"},
        {"MTLSAllowSAN DNS:*.example.com", 0, "wildcard in a rule is literal"},
    };
    static const admit_case_t email[] = {
        {"MTLSAllowSAN email:Alice@example.com", 1,
         "email domain case-insensitive"},
        {"MTLSAllowSAN email:alice@Example.COM", 0, "email local part exact"},
    };
    static const admit_case_t uri[] = {
        {"MTLSAllowSAN URI:spiffe://example.org/ns/prod/*", 1, "URI prefix"},
        {"MTLSAllowSAN URI:spiffe://example.org/ns/pro/*", 0,
         "URI prefix only at a / boundary"},
        {"MTLSAllowSAN URI:spiffe://example.org/ns/prod/sa/alice/*", 1,
         "URI prefix matches the path itself"},
        {"MTLSAllowSAN URI:spiffe://example.org/ns/prod", 0,
         "URI exact is exact"},
        {"MTLSAllowSAN URI:SPIFFE://example.org/ns/prod/sa/alice", 0,
         "URI case-sensitive"},
    };
    static const admit_case_t ip[] = {
        {"MTLSAllowSAN IP:192.0.2.7", 1, "IPv4"},
        {"MTLSAllowSAN IP:::ffff:192.0.2.7", 0, "IPv4-mapped IPv6 is not IPv4"},
        {"MTLSAllowSAN IP:2001:0db8:0:0:0:0:0:0007", 1,
         "IPv6 compared as address"},
        {"MTLSAllowSAN ip:192.0.2.8", 0, "IP deny"},
    };
    CHECK_CASES(id, dns);
    CHECK_CASES(id, email);
    CHECK_CASES(id, uri);
    CHECK_CASES(id, ip);
}

/* A long URI with many '/' is probed only up to the longest prefix rule;
 * the prefix rule as MTLSAllow constraint too. */
static const admit_case_t deep_cases[] = {
    {"MTLSAllowSAN URI:spiffe://example.org/ns/prod/*", 1,
     "deep URI under a prefix"},
    {"MTLSAllowSAN URI:spiffe://example.org/ns/pro/*", 0,
     "deep URI not under a non-boundary prefix"},
    {"MTLSAllow san=URI:spiffe://example.org/ns/* "
     "san=URI:spiffe://example.org/ns/prod/a/*",
     1, "MTLSAllow with two prefix constraints"},
    {"MTLSAllow san=URI:spiffe://example.org/ns/* "
     "san=URI:spiffe://example.org/ns/dev/*",
     0, "MTLSAllow prefix constraint that does not hold"},
};

static void deep_uri(const pki_t *k)
{
    char *uri = apr_pstrcat(pool, "URI:spiffe://example.org/ns/prod", NULL);
    int i;
    const mtls_identity_t *deep;
    for (i = 0; i < 2000; i++)
        uri = apr_pstrcat(pool, uri, "/a", NULL);
    deep = leaf(k, alice, uri, BY_CA_A);
    CHECK_CASES(deep, deep_cases);
}

/* URI prefix rules and dot segments, escapes, backslashes */
static void uri_segments(const pki_t *k)
{
    static const struct {
        const char *uri;
        int prefix; /* does the ns/prod prefix rule match? */
    } u[] = {
        {"spiffe://example.org/ns/prod/../admin", 0},
        {"spiffe://example.org/ns/prod/..", 0},
        {"spiffe://example.org/ns/prod/./x", 0},
        {"spiffe://example.org/ns/prod/%2e%2e/admin", 0},
        {"spiffe://example.org/ns/prod/a%2Fb", 0},
        {"spiffe://example.org/ns/prod/..;/admin", 0},
        {"spiffe://example.org/ns/prod/a;b", 0},
        {"spiffe://example.org/ns/prod/..x", 1},
        {"spiffe://example.org/ns/prod/.../x", 1},
        {"spiffe://example.org/ns/prod/a.b/c", 1},
    };
    size_t i;
    for (i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
        const mtls_identity_t *x =
            leaf(k, alice, apr_pstrcat(pool, "URI:", u[i].uri, NULL), BY_CA_A);
        check(ADMITS(x, "MTLSAllowSAN URI:spiffe://example.org/ns/prod/*") ==
                  u[i].prefix,
              apr_psprintf(pool, "URI prefix rule and %s: %s", u[i].uri,
                           u[i].prefix ? "matches" : "never matches"));
        check(ADMITS(x, apr_pstrcat(pool, "MTLSAllowSAN URI:", u[i].uri,
                                    NULL)) == 1,
              apr_psprintf(pool, "exact URI rule and %s: matches", u[i].uri));
    }
}

static void refused(const mtls_identity_t *id)
{
    static const admit_case_t cases[] = {
        {"MTLSAllowSAN foo:bar", -1, "unknown SAN type"},
        {"MTLSAllowSAN IP:300.1.1.1", -1, "bad IP"},
        {"MTLSAllowSAN email:nobody", -1, "bad email"},
        {"MTLSAllowSAN URI:/*", -1, "empty URI prefix"},
    };
    CHECK_CASES(id, cases);
}

void test_sans(const pki_t *k)
{
    by_type(k->id);
    deep_uri(k);
    uri_segments(k);
    refused(k->id);
}
