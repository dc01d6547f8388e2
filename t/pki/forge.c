/*
 * forge.c - issue a test leaf certificate whose subject the openssl CLI
 * cannot express (e.g. an attribute value with an embedded NUL byte).
 *
 * Usage:
 *   forge [-start DAYS] [-days DAYS] [-ext NAME=VALUE]...
 *         CA.crt CA.key LEAF.key OUT.crt TYPE=VALUE [+TYPE=VALUE]...
 *
 *   CA.crt, CA.key  issuer certificate and private key (PEM)
 *   LEAF.key        the new certificate's private key (PEM); its public
 *                   half goes into the certificate
 *   OUT.crt         where to write the certificate (PEM)
 *   TYPE=VALUE      subject attributes in ASN.1 order (C first, CN last),
 *                   each in its own RDN; a leading '+' adds the attribute
 *                   to the previous RDN (multi-valued RDN).  TYPE is a
 *                   short name or OID (C, O, OU, CN, UID, 2.5.4.3, ...).
 *                   VALUE is UTF-8; "\xHH" is the byte 0xHH and "\\" a
 *                   backslash.  Types follow OpenSSL's defaults (C is a
 *                   PrintableString, most others UTF8String).
 *                   TYPE#=HEX gives the value as the DER of any string
 *                   type instead, e.g. C#=0c03555341 (UTF8String "USA").
 *   -start DAYS     notBefore = now + DAYS days (default -1)
 *   -days DAYS      notAfter  = now + DAYS days (default 3650)
 *   -ext NAME=VALUE add an extension in openssl config syntax, e.g.
 *                   -ext 'subjectAltName=DNS:a.example'; replaces the
 *                   default extension of the same NAME.
 *
 * Default extensions (client leaf): basicConstraints=CA:FALSE,
 * keyUsage=digitalSignature, extendedKeyUsage=clientAuth,
 * subjectKeyIdentifier=hash, authorityKeyIdentifier=keyid.
 * The serial number is random; the signature is SHA-256.
 *
 * Build: cc -Wall -Wextra -Werror -o forge forge.c -lcrypto
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define MAX_EXTS 32

static const char *const default_exts[][2] = {
    { "basicConstraints", "CA:FALSE" },
    { "keyUsage", "digitalSignature" },
    { "extendedKeyUsage", "clientAuth" },
    { "subjectKeyIdentifier", "hash" },
    { "authorityKeyIdentifier", "keyid" },
};
#define N_DEFAULT_EXTS (sizeof(default_exts) / sizeof(default_exts[0]))

static void usage(void)
{
    fputs("usage: forge [-start DAYS] [-days DAYS] [-ext NAME=VALUE]...\n"
          "             CA.crt CA.key LEAF.key OUT.crt "
          "TYPE=VALUE [+TYPE=VALUE]...\n", stderr);
    exit(2);
}

static void fail(const char *what)
{
    fprintf(stderr, "forge: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes \xHH and \\ in place; returns the decoded length. */
static size_t unescape(char *s)
{
    char *in = s, *out = s;

    while (*in != '\0') {
        if (*in != '\\') {
            *out++ = *in++;
        } else if (in[1] == '\\') {
            *out++ = '\\';
            in += 2;
        } else if (in[1] == 'x' && hexval(in[2]) >= 0 && hexval(in[3]) >= 0) {
            *out++ = (char)(hexval(in[2]) << 4 | hexval(in[3]));
            in += 4;
        } else {
            fprintf(stderr, "forge: bad escape in \"%s\" "
                    "(use \\xHH or \\\\)\n", s);
            exit(2);
        }
    }
    return (size_t)(out - s);
}

static X509 *load_cert(const char *path)
{
    BIO *b = BIO_new_file(path, "r");
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    if (x == NULL) {
        fprintf(stderr, "forge: cannot read certificate %s\n", path);
        fail("load_cert");
    }
    return x;
}

static EVP_PKEY *load_key(const char *path)
{
    BIO *b = BIO_new_file(path, "r");
    EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)
                            : NULL;

    BIO_free(b);
    if (k == NULL) {
        fprintf(stderr, "forge: cannot read private key %s\n", path);
        fail("load_key");
    }
    return k;
}

static long parse_days(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < -36500 || v > 36500)
        usage();
    return v;
}

static void add_ext(X509 *x, X509V3_CTX *ctx, const char *name,
                    const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf(NULL, ctx, name, value);

    if (ext == NULL) {
        fprintf(stderr, "forge: bad extension %s=%s\n", name, value);
        fail("add_ext");
    }
    if (!X509_add_ext(x, ext, -1))
        fail("X509_add_ext");
    X509_EXTENSION_free(ext);
}

int main(int argc, char **argv)
{
    long start = -1, days = 3650;
    char *extra[MAX_EXTS][2];
    size_t n_extra = 0, i, j;
    int argi = 1;

    while (argi < argc && argv[argi][0] == '-') {
        if (argi + 1 >= argc)
            usage();
        if (strcmp(argv[argi], "-start") == 0) {
            start = parse_days(argv[argi + 1]);
        } else if (strcmp(argv[argi], "-days") == 0) {
            days = parse_days(argv[argi + 1]);
        } else if (strcmp(argv[argi], "-ext") == 0) {
            char *eq = strchr(argv[argi + 1], '=');

            if (eq == NULL || eq == argv[argi + 1] || n_extra == MAX_EXTS)
                usage();
            *eq = '\0';
            extra[n_extra][0] = argv[argi + 1];
            extra[n_extra][1] = eq + 1;
            n_extra++;
        } else {
            usage();
        }
        argi += 2;
    }
    if (argc - argi < 5)
        usage();

    const char *ca_crt = argv[argi], *ca_key = argv[argi + 1];
    const char *leaf_key = argv[argi + 2], *out_path = argv[argi + 3];
    X509 *ca = load_cert(ca_crt);
    EVP_PKEY *cakey = load_key(ca_key);
    EVP_PKEY *key = load_key(leaf_key);
    X509 *x = X509_new();
    X509_NAME *subj = X509_NAME_new();
    BIGNUM *bn = BN_new();
    X509V3_CTX ctx;

    if (x == NULL || subj == NULL || bn == NULL)
        fail("out of memory");
    if (X509_check_private_key(ca, cakey) != 1)
        fail("CA key does not match CA certificate");

    /* Subject, in the order given. */
    for (i = (size_t)argi + 4; i < (size_t)argc; i++) {
        char *field = argv[i];
        int set = 0;
        char *eq;
        size_t len;

        if (field[0] == '+') {
            if (X509_NAME_entry_count(subj) == 0)
                usage();
            set = -1;           /* join the previous RDN */
            field++;
        }
        eq = strchr(field, '=');
        if (eq == NULL || eq == field)
            usage();
        *eq = '\0';
        if (eq[-1] == '#') {
            /* TYPE#=HEX: the value is this DER (any string type). */
            const unsigned char *d;
            unsigned char *der;
            ASN1_TYPE *at;
            size_t n = strlen(eq + 1) / 2, k;
            unsigned int b;

            eq[-1] = '\0';
            der = OPENSSL_malloc(n + 1);
            for (k = 0; der && k < n && sscanf(eq + 1 + 2 * k, "%2x", &b) == 1; k++)
                der[k] = (unsigned char)b;
            d = der;
            at = der && k == n ? d2i_ASN1_TYPE(NULL, &d, (long)n) : NULL;
            if (at == NULL || at->type == V_ASN1_BOOLEAN || at->type == V_ASN1_NULL
                || at->type == V_ASN1_OBJECT || at->type == V_ASN1_SEQUENCE
                || at->type == V_ASN1_SET
                || !X509_NAME_add_entry_by_txt(subj, field, at->type,
                                               at->value.asn1_string->data,
                                               at->value.asn1_string->length,
                                               -1, set)) {
                fprintf(stderr, "forge: bad DER attribute %s\n", field);
                fail("TYPE#=HEX");
            }
            ASN1_TYPE_free(at);
            OPENSSL_free(der);
            continue;
        }
        len = unescape(eq + 1);
        if (!X509_NAME_add_entry_by_txt(subj, field, MBSTRING_UTF8,
                                        (unsigned char *)(eq + 1), (int)len,
                                        -1, set)) {
            fprintf(stderr, "forge: bad subject attribute %s\n", field);
            fail("X509_NAME_add_entry_by_txt");
        }
    }

    if (!X509_set_version(x, X509_VERSION_3)
        || !BN_rand(bn, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY)
        || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL
        || !X509_set_issuer_name(x, X509_get_subject_name(ca))
        || !X509_set_subject_name(x, subj)
        || !X509_set_pubkey(x, key)
        || X509_gmtime_adj(X509_getm_notBefore(x), start * 86400L) == NULL
        || X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) == NULL)
        fail("building the certificate");

    X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
    for (i = 0; i < N_DEFAULT_EXTS; i++) {
        int overridden = 0;

        for (j = 0; j < n_extra; j++)
            if (strcmp(extra[j][0], default_exts[i][0]) == 0)
                overridden = 1;
        if (!overridden)
            add_ext(x, &ctx, default_exts[i][0], default_exts[i][1]);
    }
    for (j = 0; j < n_extra; j++)
        add_ext(x, &ctx, extra[j][0], extra[j][1]);

    if (X509_sign(x, cakey, EVP_sha256()) <= 0)
        fail("X509_sign");

    BIO *out = BIO_new_file(out_path, "w");

    if (out == NULL || !PEM_write_bio_X509(out, x) || BIO_free(out) != 1) {
        fprintf(stderr, "forge: cannot write %s\n", out_path);
        fail("write");
    }

    BN_free(bn);
    X509_NAME_free(subj);
    X509_free(x);
    EVP_PKEY_free(key);
    EVP_PKEY_free(cakey);
    X509_free(ca);
    return 0;
}
