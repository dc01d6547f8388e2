/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* libFuzzer target: the RFC 4514 DN parser (mtls_dn_parse).
 *
 * Besides not crashing or leaking, a DN that parses must survive a round
 * trip: printed back in RFC 2253 form by OpenSSL (as mod_ssl and the
 * deny log print it), it parses again to an equal name. A failure there
 * means the parser put some bytes in a different attribute or RDN than
 * OpenSSL does. */

#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "mtls_rules.h"

/* Can the printed form say everything the name holds? OpenSSL prints at
 * most 79 characters of a dotted OID, and prints a value of a type that
 * it does not canonicalise (NumericString, say, from a '#' value) as
 * text, which parses back as UTF8String: a different value to
 * X509_NAME_cmp. Only names without either are round-tripped. */
static int printable(const X509_NAME *name)
{
    int i;
    for (i = 0; i < X509_NAME_entry_count(name); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
        int type = X509_NAME_ENTRY_get_data(e)->type;
        if (OBJ_obj2txt(NULL, 0, X509_NAME_ENTRY_get_object(e), 1) >= 79)
            return 0;
        if (type != V_ASN1_UTF8STRING && type != V_ASN1_BMPSTRING &&
            type != V_ASN1_UNIVERSALSTRING && type != V_ASN1_PRINTABLESTRING &&
            type != V_ASN1_T61STRING && type != V_ASN1_IA5STRING &&
            type != V_ASN1_VISIBLESTRING)
            return 0;
    }
    return 1;
}

static const char *print_rfc2253(apr_pool_t *p, const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    const char *text = NULL;
    char *data;
    long n;
    if (b == NULL)
        return NULL;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0 &&
        (n = BIO_get_mem_data(b, &data)) >= 0)
        text = fuzz_cstring(p, (const uint8_t *)data, (size_t)n);
    BIO_free(b);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    X509_NAME *name = NULL, *again = NULL;
    const char *text;

    if (size > 4096)
        return -1; /* a DN in a config line; longer adds only time */
    p = fuzz_begin();
    if (mtls_dn_parse(p, fuzz_cstring(p, data, size), &name) == NULL) {
        if (name == NULL || X509_NAME_cmp(name, name) != 0)
            abort();
        text = printable(name) ? print_rfc2253(p, name) : NULL;
        /* Printing escapes a NUL byte from a '#' value as \00, which the
         * parser refuses on purpose: only a successful reparse is
         * compared. */
        if (text && *text && mtls_dn_parse(p, text, &again) == NULL &&
            X509_NAME_cmp(name, again) != 0) {
            fprintf(stderr, "round trip changed the DN: '%.*s' -> '%s'\n",
                    (int)size, (const char *)data, text);
            abort();
        }
    }
    fuzz_end(p);
    return 0;
}
