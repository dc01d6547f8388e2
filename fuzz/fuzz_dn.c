/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* libFuzzer target: the RFC 4514 DN parser (mtls_dn_parse).
 *
 * The parser writes the canonical encoding that X509_NAME_cmp compares
 * (per RDN a DER SET of OID and canonical value) straight into a key.
 * Besides not crashing or leaking, for every DN that parses:
 *   - the key is DER that OpenSSL decodes as a name, and OpenSSL's own
 *     canonical form of that name is the key again (same SHA-1 as
 *     X509_NAME_hash_ex; canonicalising twice changes nothing);
 *   - printed back in RFC 2253 form by OpenSSL (as mod_ssl and the deny
 *     log print names) and parsed again, it gives the same key. A failure
 *     there means the parser put bytes in another attribute or RDN than
 *     OpenSSL does. */

#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "under_test.h"

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

/* The name whose canonical encoding the key is: the key's RDN SETs in a
 * SEQUENCE. */
static X509_NAME *name_of_key(apr_pool_t *p, const mtls_key_t *k)
{
    size_t len = k->len - 1, hdr;
    unsigned char *der = apr_palloc(p, len + 6), *q = der;
    const unsigned char *d;
    X509_NAME *name;

    *q++ = 0x30;
    if (len < 0x80) {
        *q++ = (unsigned char)len;
    }
    else if (len < 0x10000) {
        *q++ = 0x82;
        *q++ = (unsigned char)(len >> 8);
        *q++ = (unsigned char)len;
    }
    else {
        abort(); /* inputs are at most 4 KiB */
    }
    hdr = (size_t)(q - der);
    memcpy(q, k->data + 1, len);
    d = der;
    name = d2i_X509_NAME(NULL, &d, (long)(hdr + len));
    if (name == NULL || d != der + hdr + len) {
        fprintf(stderr, "fuzz: the subject key is not a DER name\n");
        abort();
    }
    return name;
}

static int same_key(const mtls_key_t *a, const mtls_key_t *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    mtls_key_t key, again;
    const char *text;
    X509_NAME *name;

    if (size > 4096)
        return -1; /* a DN in a config line; longer adds only time */
    p = fuzz_begin();
    if (mtls_dn_parse(p, fuzz_cstring(p, data, size), &key) == NULL) {
        if (key.data == NULL || key.len < 1 || key.data[0] != MTLS_K_SUBJECT)
            abort();
        name = name_of_key(p, &key);
        fuzz_check_name_key(p, name);
        if (!mtls_name_key(p, name, &again) || !same_key(&key, &again)) {
            fprintf(stderr, "fuzz: canonicalising the key changed it\n");
            abort();
        }
        /* Printing escapes a NUL byte from a '#' value as \00, which the
         * parser refuses on purpose: only a successful reparse is
         * compared. */
        text = printable(name) ? print_rfc2253(p, name) : NULL;
        if (text && *text && mtls_dn_parse(p, text, &again) == NULL &&
            !same_key(&key, &again)) {
            fprintf(stderr, "round trip changed the DN: '%.*s' -> '%s'\n",
                    (int)size, (const char *)data, text);
            abort();
        }
        X509_NAME_free(name);
    }
    fuzz_end(p);
    return 0;
}
