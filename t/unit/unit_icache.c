/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* The issuer cache (mtls_issuer_cache_t) and the ways
 * mtls_identity_build_ex finds the issuers: a hint, the cache, the
 * store. The answer must not depend on the way. */

#include <apr_strings.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "unit.h"

/* A distinct fake digest for each seed, spread over the bytes that pick a
 * cache set. */
static void fp_of(unsigned char *fp, int seed)
{
    int i;
    unsigned int v = (unsigned int)seed * 2654435761u;
    for (i = 0; i < MTLS_FP_LEN; i++)
        fp[i] = (unsigned char)(i < 4 ? (unsigned int)seed >> (8 * i)
                                      : v >> (8 * (i % 4)));
}

static void cache_keying(void)
{
    mtls_issuer_cache_t *c = mtls_issuer_cache_create(pool, 64);
    unsigned char leaf1[MTLS_FP_LEN], leaf2[MTLS_FP_LEN];
    unsigned char ca[2 * MTLS_FP_LEN], got[MTLS_ISSUER_CACHE_MAX * MTLS_FP_LEN];
    int store_a, store_b; /* any two distinct addresses */

    fp_of(leaf1, 1);
    fp_of(leaf2, 2);
    fp_of(ca, 100);
    fp_of(ca + MTLS_FP_LEN, 101);
    check(c != NULL, "issuer cache: created");
    check(mtls_issuer_cache_get(c, &store_a, leaf1, got) == -1,
          "issuer cache: empty at first");
    mtls_issuer_cache_put(c, &store_a, leaf1, ca, 1);
    check(mtls_issuer_cache_get(c, &store_a, leaf1, got) == 1 &&
              memcmp(got, ca, MTLS_FP_LEN) == 0,
          "issuer cache: (store, leaf) gives back its issuer");
    check(mtls_issuer_cache_get(c, &store_b, leaf1, got) == -1,
          "issuer cache: the same leaf under another store is a miss");
    check(mtls_issuer_cache_get(c, &store_a, leaf2, got) == -1,
          "issuer cache: another leaf under the same store is a miss");
    check(mtls_issuer_cache_get(c, NULL, leaf1, got) == -1,
          "issuer cache: no store, no answer");
    mtls_issuer_cache_put(c, &store_a, leaf1, ca, 2);
    check(mtls_issuer_cache_get(c, &store_a, leaf1, got) == 2 &&
              memcmp(got, ca, 2 * MTLS_FP_LEN) == 0,
          "issuer cache: a second answer for a key replaces the first");
    {
        apr_size_t used, slots;
        mtls_issuer_cache_stats(c, &used, &slots);
        check(used == 1, "issuer cache: a replaced answer takes no new slot");
    }
    mtls_issuer_cache_put(c, &store_b, leaf2, ca, MTLS_ISSUER_CACHE_MAX + 1);
    check(mtls_issuer_cache_get(c, &store_b, leaf2, got) == -1,
          "issuer cache: more issuers than it holds are not cached");
    check(mtls_issuer_cache_get(NULL, &store_a, leaf1, got) == -1,
          "issuer cache: none at all is a miss");
}

static void cache_bounds(void)
{
    mtls_issuer_cache_t *c = mtls_issuer_cache_create(pool, 16);
    unsigned char leaf[MTLS_FP_LEN], ca[MTLS_FP_LEN];
    unsigned char got[MTLS_ISSUER_CACHE_MAX * MTLS_FP_LEN];
    apr_size_t used, slots;
    int store, i, hits = 0;

    fp_of(ca, 7);
    for (i = 0; i < 5000; i++) {
        fp_of(leaf, 1000 + i);
        mtls_issuer_cache_put(c, &store, leaf, ca, 1);
    }
    mtls_issuer_cache_stats(c, &used, &slots);
    check(slots == 16 && used <= slots,
          "issuer cache: 5,000 leaves fill 16 slots, no more");
    fp_of(leaf, 1000 + 4999);
    check(mtls_issuer_cache_get(c, &store, leaf, got) == 1,
          "issuer cache: the latest answer is kept");
    for (i = 0; i < 5000; i++) {
        fp_of(leaf, 1000 + i);
        if (mtls_issuer_cache_get(c, &store, leaf, got) == 1)
            hits++;
    }
    check(hits > 0 && hits <= 16,
          "issuer cache: at most as many answers as slots survive");
}

static X509 *alice_by(const pki_t *k, X509 *ca, EVP_PKEY *key)
{
    X509_NAME *n = cb_name(alice);
    X509 *x = cb_leaf(n, ALICE_SANS, ca, key, k->leaf_key, next_serial());
    X509_NAME_free(n);
    return x;
}

static int same_issuers(const mtls_identity_t *a, const mtls_identity_t *b)
{
    return a->n_issuers == b->n_issuers &&
           (a->n_issuers == 0 ||
            memcmp(a->issuer_fps, b->issuer_fps,
                   (size_t)a->n_issuers * MTLS_FP_LEN) == 0);
}

/* The answer is the same from the store, from the cache, and (for a sole
 * issuer) from the hint; an unverified certificate touches nothing. */
static void ways_agree(const pki_t *k)
{
    mtls_issuer_cache_t *c = mtls_issuer_cache_create(pool, 64);
    mtls_issuer_hint_t hint = {NULL, c, 0};
    X509 *x = alice_by(k, k->ca, k->ca_key);
    X509 *forged = alice_by(k, k->forged, k->forged_key);
    const mtls_identity_t *slow, *cached, *brief, *f1, *f2, *hinted;
    unsigned char ca_fp[MTLS_FP_LEN];
    unsigned int n = 0;
    apr_size_t used, slots;

    brief = mtls_identity_build_ex(pool, x, k->store, 0, &hint);
    mtls_issuer_cache_stats(c, &used, &slots);
    check(brief->issuers_from == MTLS_ISSUERS_NONE && used == 0,
          "identity: a partial (unverified) identity neither looks up nor "
          "fills the cache");
    slow = mtls_identity_build_ex(pool, x, k->store, 1, &hint);
    cached = mtls_identity_build_ex(pool, x, k->store, 1, &hint);
    check(slow->issuers_from == MTLS_ISSUERS_STORE && slow->n_issuers == 1,
          "identity: first time, the issuer comes from the store");
    check(cached->issuers_from == MTLS_ISSUERS_CACHE &&
              same_issuers(slow, cached),
          "identity: second time, the same issuer from the cache");
    check(ADMITS(cached, apr_pstrcat(pool, "MTLSAllowIssuerFingerprint ",
                                     k->ca_pin, NULL)) == 1 &&
              ADMITS(cached, apr_pstrcat(pool, "MTLSAllowIssuerFingerprint ",
                                         k->ca2_pin, NULL)) == 0,
          "identity: a cached issuer matches its pin and only it");

    f1 = mtls_identity_build_ex(pool, forged, k->store, 1, &hint);
    f2 = mtls_identity_build_ex(pool, forged, k->store, 1, &hint);
    check(f1->n_issuers == 0 && f2->n_issuers == 0 &&
              f2->issuers_from == MTLS_ISSUERS_STORE,
          "identity: a leaf of a forged CA has no issuer, and that is not "
          "cached");

    X509_digest(k->ca, EVP_sha256(), ca_fp, &n);
    {
        mtls_issuer_cache_t *c2 = mtls_issuer_cache_create(pool, 64);
        mtls_issuer_hint_t h2 = {ca_fp, c2, 0};
        const mtls_identity_t *after;
        h2.issuer_fp = ca_fp;
        hinted = mtls_identity_build_ex(pool, x, k->store, 1, &h2);
        h2.issuer_fp = NULL;
        after = mtls_identity_build_ex(pool, x, k->store, 1, &h2);
        check(hinted->issuers_from == MTLS_ISSUERS_CHAIN &&
                  same_issuers(hinted, slow),
              "identity: the hint gives the issuer the store gives");
        check(after->issuers_from == MTLS_ISSUERS_CACHE &&
                  same_issuers(after, slow),
              "identity: the hint's answer is cached for a resumption");
    }
    {
        mtls_issuer_hint_t h3 = {NULL, NULL, 1};
        const mtls_identity_t *lean;
        unsigned char buf[MTLS_FP_LEN];
        const unsigned char *fp;
        X509_digest(k->ca, EVP_sha256(), ca_fp, &n);
        h3.issuer_fp = ca_fp;
        lean = mtls_identity_build_ex(pool, x, k->store, 1, &h3);
        fp = mtls_identity_cert_fp(lean, buf);
        check(!lean->has_cert_fp &&
                  lean->keys->nelts == slow->keys->nelts - 1 &&
                  same_issuers(lean, slow) && fp == buf &&
                  memcmp(fp, slow->cert_fp, MTLS_FP_LEN) == 0,
              "identity: without cert= rules and with the chain's issuer, no "
              "digest and no cert= key; computed on demand, the same");
        h3.issuer_fp = NULL;
        lean = mtls_identity_build_ex(pool, x, k->store, 1, &h3);
        check(lean->has_cert_fp &&
                  mtls_identity_cert_fp(lean, buf) == lean->cert_fp,
              "identity: without the chain's issuer, the digest is computed "
              "(the cache key)");
    }
    check(memcmp(slow->cert_fp, cached->cert_fp, MTLS_FP_LEN) == 0 &&
              X509_digest(x, EVP_sha256(), ca_fp, &n) &&
              memcmp(ca_fp, slow->cert_fp, MTLS_FP_LEN) == 0,
          "identity: cert_fp is X509_digest's SHA-256");
    check(strcmp(mtls_identity_subject_text(pool, slow),
                 "CN=alice,O=Acme Inc.,C=US") == 0 &&
              strcmp(mtls_identity_subject_text(pool, brief),
                     "CN=alice,O=Acme Inc.,C=US") == 0,
          "identity: the subject text, on demand, in RFC 4514 order");
    X509_free(x);
    X509_free(forged);
}

/* A CA re-issued with the same name and key: both issued the leaf; the
 * cache keeps both. */
static void reissued_ca(const pki_t *k)
{
    static const char *const ca_dn[] = {"O", "Test", "CN", "CA A", NULL};
    X509_NAME *n = cb_name(ca_dn);
    X509 *again = cb_ca(n, k->ca_key, 2);
    X509_STORE *store = X509_STORE_new();
    mtls_issuer_cache_t *c = mtls_issuer_cache_create(pool, 64);
    mtls_issuer_hint_t hint = {NULL, c, 0};
    X509 *x = alice_by(k, k->ca, k->ca_key);
    const mtls_identity_t *slow, *cached;

    X509_STORE_add_cert(store, k->ca);
    X509_STORE_add_cert(store, again);
    slow = mtls_identity_build_ex(pool, x, store, 1, &hint);
    cached = mtls_identity_build_ex(pool, x, store, 1, &hint);
    check(slow->n_issuers == 2 && slow->issuers_from == MTLS_ISSUERS_STORE,
          "identity: a CA re-issued with the same name and key: two issuers");
    check(cached->issuers_from == MTLS_ISSUERS_CACHE &&
              same_issuers(slow, cached),
          "identity: both re-issued CAs come back from the cache");
    check(ADMITS(cached, apr_pstrcat(pool, "MTLSAllowIssuerFingerprint ",
                                     cb_pin(pool, again), NULL)) == 1,
          "identity: the re-issued CA's pin matches a cached identity");
    X509_free(x);
    X509_STORE_free(store);
    X509_free(again);
    X509_NAME_free(n);
}

void test_icache(const pki_t *k)
{
    cache_keying();
    cache_bounds();
    ways_agree(k);
    reissued_ca(k);
}
