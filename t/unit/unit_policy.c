/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Deny rules, serial numbers and time-boxed rules: what mtls_policy_match
 * decides and how it says why, the times the parser accepts, and the
 * span in which a decision holds. */

#include <apr_strings.h>
#include <openssl/bn.h>
#include <string.h>

#include "unit.h"

#define T(s) ((apr_time_t)(s)*APR_USEC_PER_SEC)

static apr_time_t parsed(const char *text, int end)
{
    apr_time_t t = -1;
    return mtls_time_parse(pool, text, end, &t) ? -1 : t;
}

static void times(void)
{
    char buf[MTLS_TIME_TEXT_LEN];
    static const char *const bad[] = {"2027-02-29",
                                      "2027-13-01",
                                      "2027-00-10",
                                      "2027-04-31",
                                      "2027-03-31T24:00:00Z",
                                      "2027-03-31T18:00:00",
                                      "2027-03-31 18:00:00Z",
                                      "1969-12-31",
                                      "27-03-31",
                                      "2027-03-31T18:00Z",
                                      "2027-03-31T18:00:00+2:00",
                                      "2027-03-31T18:00:00.Z",
                                      "1970-01-01T00:00:00+01:00",
                                      "",
                                      "2027-03-31x"};
    size_t i;

    check(parsed("1970-01-02", 0) == T(86400), "time: a date is its midnight");
    check(parsed("1970-01-02", 1) == T(2 * 86400),
          "time: a not_after date ends at the next midnight");
    check(parsed("2024-02-29", 0) == T(1709164800), "time: a leap day");
    check(parsed("2027-03-31T18:00:00Z", 0) == T(1806516000),
          "time: RFC 3339 in UTC");
    check(parsed("2027-03-31t20:00:00.123+02:00", 0) == T(1806516000) + 123000,
          "time: an offset, a fraction in microseconds, lowercase t");
    check(parsed("2027-03-31T18:00:00.0000019Z", 0) == T(1806516000) + 1,
          "time: digits past the microsecond do not count");
    check(parsed("2027-03-31T17:00:00-01:00", 1) == T(1806516000),
          "time: a negative offset; end_of_day only for dates");
    check(strcmp(mtls_time_text(buf, T(1806516000)), "2027-03-31T18:00:00Z") ==
              0,
          "time: printed back in UTC");
    check(strcmp(mtls_time_text(buf, parsed("2024-02-29", 1)),
                 "2024-03-01T00:00:00Z") == 0,
          "time: the end of a leap day");
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        check(parsed(bad[i], 0) == -1,
              apr_psprintf(pool, "time: '%s' refused", bad[i]));
}

/* The serial number of id's certificate in hex, as openssl prints it. */
static const char *serial_hex(const mtls_identity_t *id, int colons)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(id->cert), NULL);
    char *hex = BN_bn2hex(bn), *out;
    out = apr_pstrdup(pool, hex);
    if (colons && strlen(out) == 2)
        out = apr_pstrcat(pool, "00:", out, NULL);
    OPENSSL_free(hex);
    BN_free(bn);
    return out;
}

static mtls_ruleset_t *deny_set(const char *line, const char **err)
{
    mtls_ruleset_t *rs = mtls_ruleset_make_deny(pool);
    *err = mtls_ruleset_add_rule(rs, pool, line, "deny.conf:1", NULL);
    mtls_ruleset_finish(rs);
    return rs;
}

static mtls_ruleset_t *allow_set(const char *line)
{
    mtls_ruleset_t *rs = mtls_ruleset_make(pool);
    if (mtls_ruleset_add_rule(rs, pool, line, "allow.conf:1", NULL))
        return NULL;
    mtls_ruleset_finish(rs);
    return rs;
}

/* What allow and one deny line decide for id at now: 1 admitted, 0
 * refused (*m says why), -1 the deny line does not load. */
static int decide(const mtls_identity_t *id, const char *deny,
                  const mtls_ruleset_t *allow, apr_time_t now, mtls_match_t *m)
{
    const char *err;
    const mtls_ruleset_t *d = deny_set(deny, &err);
    if (err)
        return -1;
    return mtls_policy_match(allow, &d, 1, id, now, NULL, NULL, m) != NULL;
}

static void denies(const pki_t *k)
{
    const mtls_identity_t *bob =
        leaf(k, (const char *const[]){"CN", "bob", NULL}, NULL, BY_CA_A);
    const mtls_ruleset_t *all =
        allow_set(apr_pstrcat(pool, "issuer=", k->ca_pin, NULL));
    const char *sn = serial_hex(k->id, 0), *err;
    mtls_match_t m;
    apr_time_t now = apr_time_now();

    check(decide(bob, "subject=CN=alice", all, now, &m) == 1,
          "deny: another subject is admitted by the allow rule");
    check(
        decide(k->id, "subject=\"CN=alice,O=Acme Inc.,C=US\"", all, now, &m) ==
                0 &&
            m.miss == MTLS_MISS_DENIED &&
            strcmp(mtls_policy_reason(pool, &m), "denied by deny.conf:1") == 0,
        "deny: by subject, before the allow rule that admits it");
    check(decide(k->id,
                 apr_pstrcat(pool, "issuer=", k->ca_pin, " serial=", sn, NULL),
                 all, now, &m) == 0,
          "deny: by issuer and serial");
    check(decide(k->id,
                 apr_pstrcat(pool, "issuer=", k->ca_pin,
                             " serial=", serial_hex(k->id, 1), NULL),
                 all, now, &m) == 0,
          "deny: a serial with colons and a leading zero byte");
    check(decide(k->id_b,
                 apr_pstrcat(pool, "issuer=", k->ca_pin, " serial=", sn, NULL),
                 NULL, now, &m) == 0 &&
              m.miss == MTLS_MISS_NO_RULE,
          "deny: the same serial from another CA is not denied");
    check(decide(bob,
                 apr_pstrcat(pool, "issuer=", k->ca_pin, " serial=", sn, NULL),
                 all, now, &m) == 1,
          "deny: another serial of the same CA is not denied");
    check(decide(k->id, "san=DNS:alice.example.com", all, now, &m) == 0,
          "deny: by SAN");
    deny_set("serial=01", &err);
    check(err_has(err, "serial= needs issuer="), "deny: serial alone refused");
    deny_set(apr_pstrcat(pool, "issuer=", k->ca_pin, " serial=0x1", NULL),
             &err);
    check(err_has(err, "hex digits"), "deny: a serial that is not hex");
    check(allow_set(apr_pstrcat(pool, "issuer=", k->ca_pin, " serial=01",
                                NULL)) == NULL,
          "allow: serial= is a deny rule's key only");
}

static void windows(const pki_t *k)
{
    const mtls_ruleset_t *rs =
        allow_set("subject=\"CN=alice,O=Acme Inc.,C=US\" "
                  "not_before=2027-01-01 not_after=2027-03-31");
    mtls_match_t m;
    apr_time_t lo = 0, hi = APR_INT64_MAX;
    const char *err;

    check(mtls_ruleset_match_at(rs, k->id, parsed("2027-02-01", 0), NULL, NULL,
                                &m) != NULL,
          "window: inside");
    check(mtls_ruleset_match_at(rs, k->id, parsed("2027-03-31T23:59:59Z", 0),
                                NULL, NULL, &m) != NULL,
          "window: all of the not_after date is inside");
    check(mtls_ruleset_match_at(rs, k->id, parsed("2027-04-01", 0), NULL, NULL,
                                &m) == NULL &&
              m.miss == MTLS_MISS_EXPIRED &&
              strcmp(mtls_policy_reason(pool, &m),
                     "rule allow.conf:1 expired at 2027-04-01T00:00:00Z") == 0,
          "window: expired, and the reason says when");
    check(mtls_ruleset_match_at(rs, k->id, parsed("2026-12-31T23:59:59Z", 0),
                                NULL, NULL, &m) == NULL &&
              m.miss == MTLS_MISS_NOT_YET &&
              strcmp(mtls_policy_reason(pool, &m),
                     "rule allow.conf:1 not yet valid until "
                     "2027-01-01T00:00:00Z") == 0,
          "window: not yet valid");
    check(mtls_ruleset_match_at(rs, k->id_b, parsed("2027-02-01", 0), NULL,
                                NULL, &m) != NULL,
          "window: inside, for another CA's alice (no issuer constraint)");
    check(mtls_ruleset_span(rs, parsed("2027-02-01", 0), &lo, &hi) &&
              lo == parsed("2027-01-01", 0) && hi == parsed("2027-03-31", 1),
          "window: the span of a decision is between two bounds");
    lo = 0;
    hi = APR_INT64_MAX;
    check(mtls_ruleset_span(rs, parsed("2028-01-01", 0), &lo, &hi) &&
              lo == parsed("2027-03-31", 1) && hi == APR_INT64_MAX,
          "window: after the last bound the decision holds for ever");
    check(
        mtls_ruleset_match_at(allow_set("subject=\"CN=alice,O=Acme Inc.,C=US\" "
                                        "not_after=1970-01-01T00:00:00Z"),
                              k->id, apr_time_now(), NULL, NULL, &m) == NULL &&
            m.miss == MTLS_MISS_EXPIRED &&
            strcmp(mtls_policy_reason(pool, &m),
                   "rule allow.conf:1 expired at 1970-01-01T00:00:00Z") == 0,
        "window: a rule that ended at the epoch has ended");
    deny_set("subject=CN=x not_before=1970-01-01T00:00:00Z "
             "not_after=1970-01-01T00:00:00Z",
             &err);
    check(err_has(err, "is not before"),
          "window: an empty window at the epoch is refused");
    deny_set("subject=CN=x not_before=2027-02-01 not_after=2027-01-31", &err);
    check(err_has(err, "not_before=2027-02-01 is not before "
                       "not_after=2027-01-31"),
          "window: an inverted window is refused");
    deny_set("subject=CN=x not_after=2027-13-01", &err);
    check(err_has(err, "not_after="), "window: a bad date names its key");
    check(decide(k->id,
                 "subject=\"CN=alice,O=Acme Inc.,C=US\" not_after=2027-01-01",
                 rs, parsed("2027-02-01", 0), &m) == 1,
          "window: an expired deny rule no longer refuses");
}

void test_policy(const pki_t *k)
{
    times();
    denies(k);
    windows(k);
}
