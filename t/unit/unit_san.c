/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Rules by subjectAltName: how DNS, email, URI and IP values match, URI
 * prefixes, and the values the SAN parser refuses. */

#include <apr_strings.h>

#include "unit.h"

static void by_type(const mtls_identity_t *id)
{
    check(ADMITS(id, "MTLSAllowSAN DNS:ALICE.example.com.") == 1,
          "DNS case-insensitive, trailing dot");
    check(ADMITS(id, "MTLSAllowSAN DNS:alice.example.com..") == 0,
          "only one trailing dot ignored");
    check(ADMITS(id, "MTLSAllowSAN DNS:*.example.com") == 0,
          "wildcard in a rule is literal");
    check(ADMITS(id, "MTLSAllowSAN email:Alice@example.com") == 1,
          "email domain case-insensitive");
    check(ADMITS(id, "MTLSAllowSAN email:alice@Example.COM") == 0,
          "email local part exact");
    check(ADMITS(id, "MTLSAllowSAN URI:spiffe://example.org/ns/prod/*") == 1,
          "URI prefix");
    check(ADMITS(id, "MTLSAllowSAN URI:spiffe://example.org/ns/pro/*") == 0,
          "URI prefix only at a / boundary");
    check(ADMITS(id,
                 "MTLSAllowSAN URI:spiffe://example.org/ns/prod/sa/alice/*") ==
              1,
          "URI prefix matches the path itself");
    check(ADMITS(id, "MTLSAllowSAN URI:spiffe://example.org/ns/prod") == 0,
          "URI exact is exact");
    check(ADMITS(id,
                 "MTLSAllowSAN URI:SPIFFE://example.org/ns/prod/sa/alice") == 0,
          "URI case-sensitive");
    check(ADMITS(id, "MTLSAllowSAN IP:192.0.2.7") == 1, "IPv4");
    check(ADMITS(id, "MTLSAllowSAN IP:::ffff:192.0.2.7") == 0,
          "IPv4-mapped IPv6 is not IPv4");
    check(ADMITS(id, "MTLSAllowSAN IP:2001:0db8:0:0:0:0:0:0007") == 1,
          "IPv6 compared as address");
    check(ADMITS(id, "MTLSAllowSAN ip:192.0.2.8") == 0, "IP deny");
}

/* A long URI with many '/' is probed only up to the longest prefix rule;
 * the prefix rule as MTLSAllow constraint too. */
static void deep_uri(const pki_t *k)
{
    char *uri = apr_pstrcat(pool, "URI:spiffe://example.org/ns/prod", NULL);
    int i;
    const mtls_identity_t *deep;
    for (i = 0; i < 2000; i++)
        uri = apr_pstrcat(pool, uri, "/a", NULL);
    deep = leaf(k, alice, uri, BY_CA_A);
    check(ADMITS(deep, "MTLSAllowSAN URI:spiffe://example.org/ns/prod/*") == 1,
          "deep URI under a prefix");
    check(ADMITS(deep, "MTLSAllowSAN URI:spiffe://example.org/ns/pro/*") == 0,
          "deep URI not under a non-boundary prefix");
    check(ADMITS(deep, "MTLSAllow san=URI:spiffe://example.org/ns/* "
                       "san=URI:spiffe://example.org/ns/prod/a/*") == 1,
          "MTLSAllow with two prefix constraints");
    check(ADMITS(deep, "MTLSAllow san=URI:spiffe://example.org/ns/* "
                       "san=URI:spiffe://example.org/ns/dev/*") == 0,
          "MTLSAllow prefix constraint that does not hold");
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
    check(ADMITS(id, "MTLSAllowSAN foo:bar") == -1, "unknown SAN type");
    check(ADMITS(id, "MTLSAllowSAN IP:300.1.1.1") == -1, "bad IP");
    check(ADMITS(id, "MTLSAllowSAN email:nobody") == -1, "bad email");
    check(ADMITS(id, "MTLSAllowSAN URI:/*") == -1, "empty URI prefix");
}

void test_sans(const pki_t *k)
{
    by_type(k->id);
    deep_uri(k);
    uri_segments(k);
    refused(k->id);
}
