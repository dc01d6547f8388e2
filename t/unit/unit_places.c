/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Where each rule is (mtls_ruleset_each, _slabs) and what it is
 * (mtls_rule_digest): what the counters of the status page are keyed on,
 * across restarts. */

#include <apr_strings.h>
#include <string.h>

#include "unit.h"

typedef struct {
    const mtls_rule_t *rules[4200];
    int n, in_order;
} walk_t;

static void walk(void *baton, const mtls_rule_t *rule, int i)
{
    walk_t *w = baton;
    if (i != w->n)
        w->in_order = 0;
    if (w->n < 4200)
        w->rules[w->n] = rule;
    w->n++;
}

typedef struct {
    const walk_t *w;
    int covered, bad;
} slabs_t;

static void slab(void *baton, const mtls_rule_t *base, int n, int first)
{
    slabs_t *s = baton;
    int j;
    for (j = 0; j < n; j++) {
        if (first + j >= s->w->n || s->w->rules[first + j] != base + j)
            s->bad++;
    }
    s->covered += n;
}

static int san_is(const mtls_rule_t *r, const char *dns)
{
    const mtls_key_t *k;
    if (r->sans == NULL || r->sans->nelts != 1)
        return 0;
    k = &APR_ARRAY_IDX(r->sans, 0, mtls_key_t);
    return k->len == strlen(dns) + 1 &&
           memcmp(k->data + 1, dns, k->len - 1) == 0;
}

/* Every rule made, refused ones taken back, in order, found again from
 * its address; past the largest slab too. */
static void places(void)
{
    mtls_ruleset_t *rs = mtls_ruleset_make(pool);
    static walk_t w;
    slabs_t s = {&w, 0, 0};
    int i, ok = 1;

    for (i = 0; i < 4100 && ok; i++) {
        const char *line = apr_psprintf(pool, "san=DNS:h%d.example", i);
        ok = mtls_ruleset_add_rule(rs, pool, line, "f:1", NULL) == NULL;
        if (i == 5)
            ok = ok && mtls_ruleset_add_rule(rs, pool, "subject=nonsense",
                                             "f:2", NULL) != NULL;
        if (i == 6)
            ok = ok && mtls_ruleset_add_san(rs, pool, "DNS:", "f:3") != NULL &&
                 mtls_ruleset_add_subject(rs, pool, "CN=x,,", "f:4") != NULL &&
                 mtls_ruleset_add_issuer(rs, pool, "sha256:00", "f:5", NULL) !=
                     NULL &&
                 mtls_ruleset_add_rule(rs, pool, "not_after=2020-01-01", "f:6",
                                       NULL) != NULL;
    }
    check(ok, "places: 4100 rules added, five refused ones in between");
    check(mtls_ruleset_count(rs) == 4100,
          "places: the refused rules are taken back");
    w.n = 0;
    w.in_order = 1;
    mtls_ruleset_each(rs, walk, &w);
    check(w.n == 4100 && w.in_order, "places: each rule once, in order");
    check(w.n > 4099 && san_is(w.rules[7], "h7.example") &&
              san_is(w.rules[4099], "h4099.example"),
          "places: the i-th rule is the i-th line, after a refused one too");
    mtls_ruleset_slabs(rs, slab, &s);
    check(s.covered == 4100 && s.bad == 0,
          "places: the slabs hold exactly the rules, at their places");
    check(mtls_ruleset_count(NULL) == 0, "places: no ruleset, no rules");
}

static apr_uint64_t digest_of(const char *line, const char *salt, int deny)
{
    mtls_ruleset_t *rs =
        deny ? mtls_ruleset_make_deny(pool) : mtls_ruleset_make(pool);
    static walk_t w;
    if (mtls_ruleset_add_rule(rs, pool, line, "f:1", NULL) != NULL)
        return 0;
    w.n = 0;
    mtls_ruleset_each(rs, walk, &w);
    return w.n == 1 ? mtls_rule_digest(w.rules[0], salt) : 0;
}

/* The same rule, however written and wherever, has one digest; any
 * change to what it matches, its window, its kind or its scope another. */
static void digests(const pki_t *k)
{
    const char *pin = apr_pstrcat(pool, "issuer=", k->ca_pin, NULL);
    const char *base =
        apr_pstrcat(pool, "\"subject=CN=alice,O=Acme Inc.,C=US\" ", pin, NULL);
    apr_uint64_t d = digest_of(base, "s", 0);
    check(d != 0, "digest: made");
    check(digest_of(apr_pstrcat(pool, "  ", pin,
                                "   \"subject=cn=alice, o=Acme Inc., c=US\"",
                                NULL),
                    "s", 0) == d,
          "digest: word order, spacing and DN case do not change it");
    check(digest_of(base, "t", 0) != d, "digest: another scope, another");
    check(digest_of(apr_pstrcat(pool, base, " not_after=2030-01-01", NULL), "s",
                    0) != d,
          "digest: a window changes it");
    check(digest_of(apr_pstrcat(pool, base, " san=DNS:a.example", NULL), "s",
                    0) != d,
          "digest: another constraint changes it");
    check(digest_of("\"subject=CN=bob,O=Acme Inc.,C=US\"", "s", 0) !=
              digest_of("\"subject=CN=alice,O=Acme Inc.,C=US\"", "s", 0),
          "digest: another subject, another");
    check(digest_of(base, "s", 1) != d, "digest: a deny rule is another");
    check(digest_of("san=DNS:a.example", "s", 0) !=
              digest_of("san=DNS:b.example", "s", 0),
          "digest: another SAN, another");
}

void test_places(const pki_t *k)
{
    places();
    digests(k);
}
