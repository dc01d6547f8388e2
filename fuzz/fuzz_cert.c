/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* libFuzzer target: certificate identity extraction and rule matching.
 *
 * The input is a DER certificate: arbitrary bytes, or mutations of the
 * real certificates in corpus/cert/ (made by mkseeds.sh and signed by the
 * CA in fuzz_cert_ca.h, which is the trust store here, so the issuer
 * lookup and signature check run on every input that still names it).
 * Each certificate that OpenSSL decodes is read as mod_ssl would hand it
 * over, subject-only and in full, and matched against rules that name
 * the seeds' subjects, SANs of every type, URI prefixes and the CA. */

#include <apr_strings.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include "certbuild.h"
#include "fuzz_cert_ca.h"
#include "fuzz_common.h"
#include "under_test.h"

static X509_STORE *store;
static mtls_ruleset_t *rules;

static void init(void)
{
    /* Every kind of rule, each naming something in the seeds. */
    static const char *const allow[] = {
        "\"subject=CN=alice,O=Acme Inc.,C=US\"",
        "\"subject=UID=7+CN=bob,O=Acme\" san=DNS:bob.example.net",
        "subject=CN=second,CN=first san=IP:::1",
        "san=email:Alice@example.com san=IP:192.0.2.7",
        "san=URI:spiffe://example.org/ns/prod/*",
        "san=URI:urn:x san=email:j@x",
        "san=IP:2001:db8::7",
        "san=DNS:*.example.net",
        NULL};
    BIO *b = BIO_new_mem_buf(fuzz_cert_ca_pem, -1);
    X509 *ca = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    apr_pool_t *p = fuzz_pool();
    const char *pin;
    int i;

    store = X509_STORE_new();
    if (ca == NULL || store == NULL || !X509_STORE_add_cert(store, ca))
        abort();
    pin = cb_pin(p, ca);
    rules = mtls_ruleset_make(p);
    for (i = 0; allow[i]; i++)
        fuzz_check(mtls_ruleset_add_rule(rules, p, allow[i], "fuzz:1", NULL),
                   allow[i]);
    fuzz_check(mtls_ruleset_add_rule(rules, p,
                                     apr_pstrcat(p, "issuer=", pin, NULL),
                                     "fuzz:2", NULL),
               "issuer rule");
    fuzz_check(mtls_ruleset_add_rule(
                   rules, p,
                   apr_pstrcat(p, "\"subject=CN=no san,OU=a\\,b\\+c\" issuer=",
                               pin, NULL),
                   "fuzz:3", NULL),
               "subject+issuer rule");
    fuzz_check(mtls_ruleset_add_subject(rules, p,
                                        "CN=J\xc3\xbcrgen,O=Gr\xc3\xbc\xc3\x9f"
                                        "e,C=DE",
                                        "fuzz:4"),
               "subject directive");
    fuzz_check(
        mtls_ruleset_add_san(rules, p, "DNS:alice.example.com", "fuzz:5"),
        "SAN directive");
    fuzz_check(mtls_ruleset_add_issuer(rules, p, pin, "fuzz:6", NULL),
               "issuer directive");
    X509_free(ca);
    BIO_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *d = data;
    apr_pool_t *p;
    X509 *x;

    if (store == NULL)
        fuzz_once(init);
    if ((x = d2i_X509(NULL, &d, (long)size)) == NULL)
        return 0;
    p = fuzz_begin();
    {
        mtls_identity_t *brief = mtls_identity_build(p, x, store, 0);
        mtls_identity_t *id = mtls_identity_build(p, x, store, 1);
        mtls_identity_t *no_store = mtls_identity_build(p, x, NULL, 1);
        mtls_miss_e miss;
        const mtls_rule_t *r;

        if (mtls_identity_subject_text(p, brief) == NULL ||
            mtls_identity_subject_text(p, id) == NULL ||
            brief->keys->nelts != 0)
            abort();
        fuzz_check_name_key(p, X509_get_subject_name(x));
        /* Unknown issuer: never a trusted issuer. */
        if (no_store->n_issuers != 0)
            abort();
        r = mtls_ruleset_match(rules, id, NULL, NULL, &miss);
        if ((r == NULL) == (miss == MTLS_MISS_NONE))
            abort();
        /* A rule that needs the issuer never admits without a trust
         * store to find it in. */
        r = mtls_ruleset_match(rules, no_store, NULL, NULL, &miss);
        if (r && (r->issuer || strcmp(r->source, "fuzz:4") == 0 ||
                  strcmp(r->source, "fuzz:5") == 0))
            abort(); /* fuzz:4/5 share the scope's issuer directive */
        /* The subject-only identity carries no keys, so nothing can
         * match it. */
        if (mtls_ruleset_match(rules, brief, NULL, NULL, &miss) != NULL)
            abort();
    }
    /* The identities hold references: freeing ours first is how the
     * module uses it too (mod_ssl owns the peer certificate). */
    X509_free(x);
    fuzz_end(p);
    return 0;
}
