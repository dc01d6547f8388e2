/*
 * forge.c - issue a test leaf certificate whose subject the openssl CLI
 * cannot express (e.g. an attribute value with an embedded NUL byte).
 *
 * Usage:
 *   forge [-start DAYS] [-days DAYS] [-ext NAME=VALUE]... [-patch FROM=TO]
 *         CA.crt CA.key LEAF.key OUT.crt [TYPE[@ENC]=VALUE [+TYPE=VALUE]...]
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
 *                   PrintableString, most others UTF8String).  No
 *                   attribute at all makes an empty subject.
 *                   TYPE#=HEX gives the value as the DER of any string
 *                   type instead, e.g. C#=0c03555341 (UTF8String "USA").
 *   @ENC            the value's ASN.1 string type instead of the default:
 *                   bmp (BMPString) or univ (UniversalString), converted
 *                   from the UTF-8 VALUE; t61 (T61String) or printable
 *                   (PrintableString), VALUE's bytes as they are.
 *   -start DAYS     notBefore = now + DAYS days (default -1)
 *   -days DAYS      notAfter  = now + DAYS days (default 3650)
 *   -ext NAME=VALUE add an extension in openssl config syntax, e.g.
 *                   -ext 'subjectAltName=DNS:a.example'; replaces the
 *                   default extension of the same NAME.
 *   -patch FROM=TO  after building, replace the bytes FROM (hex, found
 *                   exactly once in the DER of the to-be-signed part) by
 *                   TO (hex, same length) and sign again, so that a
 *                   certificate can carry bytes that OpenSSL would never
 *                   encode itself (e.g. a malformed extension).
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
#include <openssl/crypto.h>
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
    fputs("usage: forge [-start DAYS] [-days DAYS] [-ext NAME=VALUE]... "
          "[-patch FROM=TO]\n"
          "             CA.crt CA.key LEAF.key OUT.crt "
          "[TYPE[@ENC]=VALUE [+TYPE=VALUE]...]\n", stderr);
    exit(2);
}

static void fail(const char *what)
{
    fprintf(stderr, "forge: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

/* A hex digit's value, -1 for any other character. */
static int hexval(char c)
{
    return OPENSSL_hexchar2int((unsigned char)c);
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

/* Decodes a UTF-8 string into code points; returns the count. */
static size_t utf8_decode(const unsigned char *s, size_t len, unsigned long *cp)
{
    size_t i = 0, n = 0;

    while (i < len) {
        unsigned long c = s[i];
        int more = c < 0x80 ? 0 : c < 0xe0 ? 1 : c < 0xf0 ? 2 : 3;

        if (more)
            c &= 0x3f >> more;
        if (more && i + (size_t)more >= len) {
            fputs("forge: truncated UTF-8\n", stderr);
            exit(2);
        }
        for (i++; more > 0; more--, i++)
            c = c << 6 | (s[i] & 0x3f);
        cp[n++] = c;
    }
    return n;
}

/* VALUE (len bytes) as an ASN.1 string of encoding enc, in buf; sets
 * *type. Returns the encoded length. */
static size_t encode_value(const char *enc, const unsigned char *v, size_t len,
                           unsigned char *buf, int *type)
{
    unsigned long cp[4096];
    size_t n, i, w;

    if (strcmp(enc, "t61") == 0 || strcmp(enc, "printable") == 0) {
        *type = enc[0] == 't' ? V_ASN1_T61STRING : V_ASN1_PRINTABLESTRING;
        memcpy(buf, v, len);
        return len;
    }
    if (strcmp(enc, "bmp") == 0)
        *type = V_ASN1_BMPSTRING, w = 2;
    else if (strcmp(enc, "univ") == 0)
        *type = V_ASN1_UNIVERSALSTRING, w = 4;
    else
        usage();
    if (len > sizeof(cp) / sizeof(cp[0]))
        usage();
    n = utf8_decode(v, len, cp);
    for (i = 0; i < n; i++) {
        size_t b;

        for (b = 0; b < w; b++)
            buf[i * w + b] = (unsigned char)(cp[i] >> (8 * (w - 1 - b)));
    }
    return n * w;
}

static size_t unhex(const char *s, unsigned char *out, size_t max)
{
    size_t n = 0;

    while (s[0] != '\0') {
        if (hexval(s[0]) < 0 || hexval(s[1]) < 0 || n == max)
            usage();
        out[n++] = (unsigned char)(hexval(s[0]) << 4 | hexval(s[1]));
        s += 2;
    }
    return n;
}

/* Replaces the bytes FROM by TO in der (n bytes), spec being FROM=TO in
 * hex; FROM must occur exactly once. */
static void apply_patch(unsigned char *der, size_t n, const char *spec)
{
    unsigned char from[256], to[256], *hit = NULL;
    char *copy = malloc(strlen(spec) + 1), *eq;
    size_t nf, nt, i;

    if (copy == NULL)
        fail("out of memory");
    strcpy(copy, spec);
    eq = strchr(copy, '=');
    if (eq == NULL)
        usage();
    *eq = '\0';
    nf = unhex(copy, from, sizeof(from));
    nt = unhex(eq + 1, to, sizeof(to));
    if (nf == 0 || nf != nt)
        usage();
    for (i = 0; i + nf <= n; i++) {
        if (memcmp(der + i, from, nf) == 0) {
            if (hit != NULL)
                fail("-patch: FROM occurs more than once");
            hit = der + i;
        }
    }
    if (hit == NULL)
        fail("-patch: FROM not found");
    memcpy(hit, to, nt);
    free(copy);
}

/* The DER of a BIT STRING { 0 unused bits, the SHA-256 signature of
 * data by key }; returns its length. */
static int sign_bits(EVP_PKEY *key, const unsigned char *data, size_t n,
                     unsigned char **der)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
    unsigned char *sig = NULL;
    size_t siglen = 0;
    int nbits;

    if (md == NULL || bits == NULL)
        fail("out of memory");
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1
        || EVP_DigestSign(md, NULL, &siglen, data, n) != 1
        || (sig = malloc(siglen)) == NULL
        || EVP_DigestSign(md, sig, &siglen, data, n) != 1)
        fail("signing");
    if (!ASN1_BIT_STRING_set(bits, sig, (int)siglen))
        fail("bit string");
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    nbits = i2d_ASN1_BIT_STRING(bits, der);
    if (nbits <= 0)
        fail("bit string");
    ASN1_BIT_STRING_free(bits);
    free(sig);
    EVP_MD_CTX_free(md);
    return nbits;
}

/* Replaces FROM by TO in x's to-be-signed DER, signs that with key and
 * returns the whole certificate's DER in *out. */
static int patch_and_sign(X509 *x, EVP_PKEY *key, const char *spec,
                          unsigned char **out)
{
    unsigned char *tbs = NULL, *alg = NULL, *bits = NULL, *p;
    int ntbs, nalg, nbits, total;

    ntbs = i2d_re_X509_tbs(x, &tbs);
    nalg = i2d_X509_ALGOR(X509_get0_tbs_sigalg(x), &alg);
    if (ntbs <= 0 || nalg <= 0)
        fail("encoding the certificate");
    apply_patch(tbs, (size_t)ntbs, spec);
    nbits = sign_bits(key, tbs, (size_t)ntbs, &bits);
    /* SEQUENCE { tbs, algorithm, signature } */
    total = ASN1_object_size(1, ntbs + nalg + nbits, V_ASN1_SEQUENCE);
    p = *out = malloc((size_t)total);
    if (p == NULL)
        fail("out of memory");
    ASN1_put_object(&p, 1, ntbs + nalg + nbits, V_ASN1_SEQUENCE,
                    V_ASN1_UNIVERSAL);
    memcpy(p, tbs, (size_t)ntbs);
    p += ntbs;
    memcpy(p, alg, (size_t)nalg);
    p += nalg;
    memcpy(p, bits, (size_t)nbits);
    OPENSSL_free(tbs);
    OPENSSL_free(alg);
    OPENSSL_free(bits);
    return total;
}

/* What the options ask for. */
struct options {
    long start, days;
    const char *patch;
    char *ext[MAX_EXTS][2]; /* -ext NAME=VALUE, split at the '=' */
    size_t n_ext;
};

/* Reads the options into o; returns the index of the first argument. */
static int parse_options(int argc, char **argv, struct options *o)
{
    int argi = 1;

    o->start = -1;
    o->days = 3650;
    o->patch = NULL;
    o->n_ext = 0;
    while (argi < argc && argv[argi][0] == '-') {
        const char *opt = argv[argi];
        char *arg;

        if (argi + 1 >= argc)
            usage();
        arg = argv[argi + 1];
        if (strcmp(opt, "-start") == 0) {
            o->start = parse_days(arg);
        } else if (strcmp(opt, "-days") == 0) {
            o->days = parse_days(arg);
        } else if (strcmp(opt, "-patch") == 0) {
            o->patch = arg;
        } else if (strcmp(opt, "-ext") == 0) {
            char *eq = strchr(arg, '=');

            if (eq == NULL || eq == arg || o->n_ext == MAX_EXTS)
                usage();
            *eq = '\0';
            o->ext[o->n_ext][0] = arg;
            o->ext[o->n_ext][1] = eq + 1;
            o->n_ext++;
        } else {
            usage();
        }
        argi += 2;
    }
    if (argc - argi < 4)
        usage();
    return argi;
}

/* TYPE#=HEX (hex points after the '='): the value is this DER, of any
 * string type. */
static void add_der_field(X509_NAME *subj, const char *type, const char *hex,
                          int set)
{
    const unsigned char *d;
    unsigned char *der;
    ASN1_TYPE *at;
    size_t n = strlen(hex) / 2, k;
    unsigned int b;

    der = OPENSSL_malloc(n + 1);
    for (k = 0; der && k < n && sscanf(hex + 2 * k, "%2x", &b) == 1; k++)
        der[k] = (unsigned char)b;
    d = der;
    at = der && k == n ? d2i_ASN1_TYPE(NULL, &d, (long)n) : NULL;
    if (at == NULL || at->type == V_ASN1_BOOLEAN || at->type == V_ASN1_NULL
        || at->type == V_ASN1_OBJECT || at->type == V_ASN1_SEQUENCE
        || at->type == V_ASN1_SET
        || !X509_NAME_add_entry_by_txt(subj, type, at->type,
                                       at->value.asn1_string->data,
                                       at->value.asn1_string->length,
                                       -1, set)) {
        fprintf(stderr, "forge: bad DER attribute %s\n", type);
        fail("TYPE#=HEX");
    }
    ASN1_TYPE_free(at);
    OPENSSL_free(der);
}

/* Adds one subject attribute argument, [+]TYPE[@ENC]=VALUE or
 * [+]TYPE#=HEX, to subj. */
static void add_field(X509_NAME *subj, char *field)
{
    int set = 0, type = MBSTRING_UTF8;
    char *eq, *at;
    unsigned char *value;
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
        eq[-1] = '\0';
        add_der_field(subj, field, eq + 1, set);
        return;
    }
    len = unescape(eq + 1);
    value = (unsigned char *)(eq + 1);
    at = strchr(field, '@');
    if (at != NULL) {
        *at = '\0';
        value = malloc(len * 4 + 1);
        if (value == NULL)
            fail("out of memory");
        len = encode_value(at + 1, (unsigned char *)(eq + 1), len, value,
                           &type);
    }
    if (!X509_NAME_add_entry_by_txt(subj, field, type, value, (int)len,
                                    -1, set)) {
        fprintf(stderr, "forge: bad subject attribute %s\n", field);
        fail("X509_NAME_add_entry_by_txt");
    }
}

/* The default extensions that no -ext replaces, then the -ext ones. */
static void add_extensions(X509 *x, X509 *ca, const struct options *o)
{
    X509V3_CTX ctx;
    size_t i, j;

    X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
    for (i = 0; i < N_DEFAULT_EXTS; i++) {
        int overridden = 0;

        for (j = 0; j < o->n_ext; j++)
            if (strcmp(o->ext[j][0], default_exts[i][0]) == 0)
                overridden = 1;
        if (!overridden)
            add_ext(x, &ctx, default_exts[i][0], default_exts[i][1]);
    }
    for (j = 0; j < o->n_ext; j++)
        add_ext(x, &ctx, o->ext[j][0], o->ext[j][1]);
}

/* The certificate for key and subj, issued by ca, signed with cakey. */
static X509 *issue(X509 *ca, EVP_PKEY *cakey, EVP_PKEY *key, X509_NAME *subj,
                   const struct options *o)
{
    X509 *x = X509_new();
    BIGNUM *bn = BN_new();

    if (x == NULL || bn == NULL)
        fail("out of memory");
    if (!X509_set_version(x, X509_VERSION_3)
        || !BN_rand(bn, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY)
        || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL
        || !X509_set_issuer_name(x, X509_get_subject_name(ca))
        || !X509_set_subject_name(x, subj)
        || !X509_set_pubkey(x, key)
        || X509_gmtime_adj(X509_getm_notBefore(x), o->start * 86400L) == NULL
        || X509_time_adj_ex(X509_getm_notAfter(x), (int)o->days, 0, NULL) == NULL)
        fail("building the certificate");
    add_extensions(x, ca, o);
    if (X509_sign(x, cakey, EVP_sha256()) <= 0)
        fail("X509_sign");
    BN_free(bn);
    return x;
}

/* Writes x to path as PEM, patched and signed again first if asked. */
static void write_cert(const char *path, X509 *x, EVP_PKEY *cakey,
                       const char *patch)
{
    BIO *out = BIO_new_file(path, "w");
    unsigned char *der = NULL;
    int nder = patch ? patch_and_sign(x, cakey, patch, &der) : 0;

    if (out == NULL
        || !(patch ? PEM_write_bio(out, PEM_STRING_X509, "", der, nder)
                   : PEM_write_bio_X509(out, x))
        || BIO_free(out) != 1) {
        fprintf(stderr, "forge: cannot write %s\n", path);
        fail("write");
    }
    free(der);
}

int main(int argc, char **argv)
{
    struct options o;
    int argi = parse_options(argc, argv, &o), i;
    X509 *ca = load_cert(argv[argi]);
    EVP_PKEY *cakey = load_key(argv[argi + 1]);
    EVP_PKEY *key = load_key(argv[argi + 2]);
    X509_NAME *subj = X509_NAME_new();
    X509 *x;

    if (subj == NULL)
        fail("out of memory");
    if (X509_check_private_key(ca, cakey) != 1)
        fail("CA key does not match CA certificate");
    /* Subject, in the order given. */
    for (i = argi + 4; i < argc; i++)
        add_field(subj, argv[i]);
    x = issue(ca, cakey, key, subj, &o);
    write_cert(argv[argi + 3], x, cakey, o.patch);

    X509_NAME_free(subj);
    X509_free(x);
    EVP_PKEY_free(key);
    EVP_PKEY_free(cakey);
    X509_free(ca);
    return 0;
}
