/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* DNS-suffix and network (CIDR) SAN rules: label boundaries, case and a
 * trailing dot, /0, /32 and /128, IPv4-mapped addresses, overlapping
 * networks, and the values the parser refuses. */

#include <apr_strings.h>

#include "unit.h"

static void suffix_below(const pki_t *k)
{
    static const admit_case_t below[] = {
        {"MTLSAllowSAN DNS:.partner.example", 1, "suffix: one label below"},
        {"MTLSAllowSAN DNS:.PARTNER.Example.", 1,
         "suffix: case-insensitive, the rule's trailing dot ignored"},
        {"MTLSAllowSAN DNS:.example", 1, "suffix: two labels below"},
        {"MTLSAllowSAN DNS:.artner.example", 0,
         "suffix: only at a label boundary"},
        {"MTLSAllowSAN DNS:.a.partner.example", 0,
         "suffix: never the name itself"},
        {"MTLSAllowSAN DNS:a.partner.example", 1, "exact DNS still exact"},
        {"MTLSAllow san=DNS:.partner.example", 1, "suffix in MTLSAllow"},
    };
    static const admit_case_t self[] = {
        {"MTLSAllowSAN DNS:.partner.example", 0,
         "suffix: the domain itself is not below it"},
        {"MTLSAllow san=DNS:.partner.example", 0,
         "suffix in MTLSAllow: not the domain itself"},
    };
    static const admit_case_t evil[] = {
        {"MTLSAllowSAN DNS:.partner.example", 0,
         "suffix: evilpartner.example is not below partner.example"},
    };
    static const admit_case_t dotted[] = {
        {"MTLSAllowSAN DNS:.partner.example", 1,
         "suffix: the SAN's case and trailing dot ignored"},
        {"MTLSAllowSAN DNS:.b.partner.example", 1, "suffix: the parent"},
        {"MTLSAllowSAN DNS:.b.partner.example.", 1,
         "suffix: trailing dots on both"},
    };
    CHECK_CASES(leaf(k, alice, "DNS:a.partner.example", BY_CA_A), below);
    CHECK_CASES(leaf(k, alice, "DNS:partner.example", BY_CA_A), self);
    CHECK_CASES(leaf(k, alice, "DNS:evilpartner.example", BY_CA_A), evil);
    CHECK_CASES(leaf(k, alice, "DNS:A.B.Partner.Example.", BY_CA_A), dotted);
}

static void suffix_odd(const pki_t *k)
{
    static const admit_case_t empty[] = {
        {"MTLSAllowSAN DNS:.partner.example", 0,
         "suffix: a SAN with an empty label is below nothing"},
        {"MTLSAllowSAN DNS:a..partner.example", 1,
         "a SAN with an empty label: the certificate holds it"},
    };
    static const admit_case_t wild[] = {
        {"MTLSAllowSAN DNS:.partner.example", 1,
         "suffix: a wildcard SAN is a name below the domain"},
        {"MTLSAllowSAN DNS:.x.partner.example", 0,
         "suffix: a wildcard SAN is not below a name it would cover"},
    };
    static const admit_case_t refused[] = {
        {"MTLSAllowSAN DNS:..partner.example", -1, "suffix: empty label"},
        {"MTLSAllowSAN DNS:.partner..example", -1,
         "suffix: empty label inside"},
        {"MTLSAllowSAN DNS:.partner.example..", -1,
         "suffix: two trailing dots"},
        {"MTLSAllowSAN DNS:.", -1, "suffix: a dot alone"},
        {"MTLSAllowSAN DNS:..", -1, "suffix: two dots alone"},
        {"MTLSAllow san=DNS:.partner.ex\"\"ample\"\"x\"\"..y", -1,
         "suffix in MTLSAllow: empty label"},
    };
    CHECK_CASES(leaf(k, alice, "DNS:a..partner.example", BY_CA_A), empty);
    CHECK_CASES(leaf(k, alice, "DNS:*.partner.example", BY_CA_A), wild);
    CHECK_CASES(k->id, refused);
}

static void net_v4(const pki_t *k)
{
    static const admit_case_t v4[] = {
        {"MTLSAllowSAN IP:10.20.0.0/16", 1, "IPv4 network"},
        {"MTLSAllowSAN IP:10.21.0.0/16", 0, "IPv4 network: another one"},
        {"MTLSAllowSAN IP:0.0.0.0/0", 1, "IPv4 /0: every IPv4 address"},
        {"MTLSAllowSAN IP:10.20.3.4/32", 1, "IPv4 /32: the address"},
        {"MTLSAllowSAN IP:10.20.3.5/32", 0, "IPv4 /32: another address"},
        {"MTLSAllowSAN IP:10.20.3.4/31", 1, "IPv4 /31"},
        {"MTLSAllowSAN IP:10.20.3.0/25", 1, "IPv4 /25: lower half"},
        {"MTLSAllowSAN IP:10.20.3.128/25", 0, "IPv4 /25: upper half"},
        {"MTLSAllowSAN IP:::/0", 0, "IPv6 /0 holds no IPv4 address"},
        {"MTLSAllow san=IP:10.0.0.0/8", 1, "IPv4 network in MTLSAllow"},
        {"MTLSAllow san=IP:11.0.0.0/8", 0, "IPv4 network in MTLSAllow: no"},
    };
    static const admit_case_t mapped[] = {
        {"MTLSAllowSAN IP:10.20.0.0/16", 0,
         "IPv4-mapped SAN not in an IPv4 network"},
        {"MTLSAllowSAN IP:0.0.0.0/0", 0, "IPv4-mapped SAN not in IPv4 /0"},
        {"MTLSAllow san=IP:10.20.0.0/16", 0,
         "IPv4-mapped SAN not in an IPv4 network (MTLSAllow)"},
        {"MTLSAllowSAN IP:::ffff:0:0/96", 1,
         "IPv4-mapped SAN in the IPv6 mapped network"},
        {"MTLSAllowSAN IP:::/0", 1, "IPv4-mapped SAN in IPv6 /0"},
    };
    CHECK_CASES(leaf(k, alice, "IP:10.20.3.4", BY_CA_A), v4);
    CHECK_CASES(leaf(k, alice, "IP:::ffff:10.20.3.4", BY_CA_A), mapped);
}

static void net_v6(const pki_t *k)
{
    static const admit_case_t v6[] = {
        {"MTLSAllowSAN IP:2001:db8::/32", 1, "IPv6 network"},
        {"MTLSAllowSAN IP:2001:db9::/32", 0, "IPv6 network: another one"},
        {"MTLSAllowSAN IP:2001:DB8:0::7/128", 1, "IPv6 /128: the address"},
        {"MTLSAllowSAN IP:2001:db8::6/127", 1, "IPv6 /127"},
        {"MTLSAllowSAN IP:2001:db8::4/127", 0, "IPv6 /127: next door"},
        {"MTLSAllowSAN IP:::/0", 1, "IPv6 /0"},
        {"MTLSAllowSAN IP:0.0.0.0/0", 0, "IPv4 /0 holds no IPv6 address"},
        {"MTLSAllow san=IP:2001:db8::/32", 1, "IPv6 network in MTLSAllow"},
    };
    CHECK_CASES(leaf(k, alice, "IP:2001:db8::7", BY_CA_A), v6);
}

static void net_refused(const pki_t *k)
{
    static const admit_case_t bad[] = {
        {"MTLSAllowSAN IP:10.20.1.0/16", -1, "host bits set refused"},
        {"MTLSAllowSAN IP:2001:db8::1/32", -1, "IPv6 host bits set refused"},
        {"MTLSAllowSAN IP:10.0.0.0/33", -1, "IPv4 /33 refused"},
        {"MTLSAllowSAN IP:2001:db8::/129", -1, "IPv6 /129 refused"},
        {"MTLSAllowSAN IP:10.0.0.0/", -1, "empty prefix length refused"},
        {"MTLSAllowSAN IP:10.0.0.0/08", -1, "leading zero refused"},
        {"MTLSAllowSAN IP:10.0.0.0/+8", -1, "sign refused"},
        {"MTLSAllowSAN IP:10.0.0.0/8/8", -1, "two slashes refused"},
        {"MTLSAllowSAN IP:10.0.0/8", -1, "short address refused"},
        {"MTLSAllow san=IP:10.20.1.0/16", -1,
         "host bits set refused in MTLSAllow"},
    };
    mtls_key_t key;
    CHECK_CASES(k->id, bad);
    check(err_has(mtls_san_parse(pool, "IP:10.20.1.0/16", &key),
                  "host bits set; the network is 10.20.0.0/16"),
          "host bits: the message names the network");
    check(err_has(mtls_san_parse(pool, "IP:2001:db8::1/32", &key),
                  "the network is 2001:db8::/32"),
          "IPv6 host bits: the message names the network");
    check(err_has(mtls_san_parse(pool, "DNS:..x", &key), ".partner.example"),
          "suffix: the message shows the form");
}

/* Networks that overlap, several prefix lengths, and suffix and network
 * constraints together with others on one MTLSAllow line. */
static void overlapping(const pki_t *k)
{
    const mtls_identity_t *id =
        leaf(k, alice, "DNS:a.partner.example,IP:10.20.3.4", BY_CA_A);
    const mtls_identity_t *dns_only =
        leaf(k, alice, "DNS:a.partner.example", BY_CA_A);
    const char *other_ca = apr_pstrcat(pool, "issuer=", k->ca2_pin, NULL);
    const char *narrow_other =
        apr_pstrcat(pool, "MTLSAllow san=IP:10.20.3.0/24 ", other_ca, NULL);

    check(ADMITS(id, narrow_other, "MTLSAllow san=IP:10.0.0.0/8") == 1,
          "overlap: a broader network admits where a narrower one's issuer "
          "fails");
    check(ADMITS(id, narrow_other) == 0,
          "overlap: the narrower network alone, wrong issuer");
    check(ADMITS(id, "MTLSAllowSAN IP:10.20.0.0/16",
                 "MTLSAllowSAN IP:10.20.0.0/16",
                 "MTLSAllowSAN IP:10.0.0.0/12") == 1,
          "overlap: the same network twice and a wider one");
    check(ADMITS(id, "MTLSAllowSAN IP:10.30.0.0/16",
                 "MTLSAllowSAN IP:10.0.0.0/12", "MTLSAllowSAN IP:10.64.0.0/10",
                 "MTLSAllowSAN IP:10.20.3.0/24") == 1,
          "four prefix lengths: the one that holds the SAN found");
    check(ADMITS(id, "MTLSAllowSAN IP:10.30.0.0/16",
                 "MTLSAllowSAN IP:10.64.0.0/10") == 0,
          "two prefix lengths, neither holds the SAN");
    check(ADMITS(id, "MTLSAllow san=DNS:.partner.example "
                     "san=IP:10.20.0.0/16") == 1,
          "suffix and network on one line: both hold");
    check(ADMITS(dns_only, "MTLSAllow san=DNS:.partner.example "
                           "san=IP:10.20.0.0/16") == 0,
          "suffix and network on one line: no IP SAN");
    check(ADMITS(id, "MTLSAllow san=URI:spiffe://x/* "
                     "san=DNS:.partner.example") == 0,
          "a URI prefix and a suffix: the prefix fails");
    check(ADMITS(id, apr_pstrcat(pool, "MTLSAllow san=DNS:.partner.example ",
                                 other_ca, NULL)) == 0,
          "suffix with another CA's issuer pin");
    check(ADMITS(id, "MTLSAllow san=DNS:a.partner.example "
                     "san=DNS:.partner.example") == 1,
          "exact and suffix on one line");
}

/* With 100,000 suffix rules and 100,000 networks, a match tries only the
 * rules under the certificate's own label suffixes and networks: the
 * probes are bounded by labels and distinct prefix lengths, so the rules
 * tried (counted by the trace) do not grow with the rules loaded. */
static void count_tried(void *baton, const mtls_rule_t *rule,
                        mtls_miss_e result)
{
    (void)rule;
    (void)result;
    ++*(int *)baton;
}

static int tried(const mtls_ruleset_t *rs, const mtls_identity_t *id,
                 int *admitted)
{
    mtls_miss_e miss;
    int n = 0;
    *admitted = mtls_ruleset_match(rs, id, count_tried, &n, &miss) != NULL;
    return n;
}

static void at_scale(const pki_t *k)
{
    apr_pool_t *p;
    mtls_ruleset_t *rs;
    const char *err = NULL;
    int i, ok, n;

    apr_pool_create(&p, pool);
    rs = mtls_ruleset_make(p);
    for (i = 0; i < 100000 && err == NULL; i++) {
        unsigned a = (unsigned)i * 16; /* a /28 in 10.0.0.0/8 */
        err = mtls_ruleset_add_rule(
            rs, p, apr_psprintf(p, "san=DNS:.h%d.partner.example", i), "s",
            NULL);
        if (err == NULL)
            err = mtls_ruleset_add_rule(rs, p,
                                        apr_psprintf(p, "san=IP:10.%u.%u.%u/28",
                                                     a >> 16 & 255,
                                                     a >> 8 & 255, a & 255),
                                        "n", NULL);
    }
    for (i = 8; i <= 24 && err == NULL; i += 8)
        err = mtls_ruleset_add_rule(
            rs, p,
            apr_psprintf(p, "san=IP:172.%d.0.0/%d", 16 + i, i == 8 ? 16 : i),
            "l", NULL);
    check(err == NULL && mtls_ruleset_n_rules(rs) == 200003,
          "scale: 100,000 suffix and 100,000 network rules load");
    n = tried(rs, leaf(k, alice, "DNS:a.b.h77777.partner.example", BY_CA_A),
              &ok);
    check(ok && n == 1, apr_psprintf(p,
                                     "scale: a suffix match tries one "
                                     "rule (%d)",
                                     n));
    n = tried(rs, leaf(k, alice, "IP:10.18.254.33", BY_CA_A), &ok);
    check(ok && n == 1,
          apr_psprintf(p, "scale: a network match tries one rule (%d)", n));
    n = tried(rs,
              leaf(k, alice,
                   "DNS:a.b.nowhere.example,IP:192.0.2.7,IP:2001:db8::7",
                   BY_CA_A),
              &ok);
    check(!ok && n == 0,
          apr_psprintf(p, "scale: a certificate outside tries none (%d)", n));
    apr_pool_destroy(p);
}

void test_nets(const pki_t *k)
{
    suffix_below(k);
    suffix_odd(k);
    net_v4(k);
    net_v6(k);
    net_refused(k);
    overlapping(k);
    at_scale(k);
}
