/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls-authz-rule: prints the mod_mtls_authz directives that admit a
 * given client certificate, or pin a given CA (see docs/rule-tool.md).
 *
 * Every rule it prints is first compiled with the module's own parser
 * (mtls_rules.c, mtls_dn.c) exactly as httpd would hand it over, and
 * matched against the certificate; a rule that does not admit it is
 * never printed. Output is written only once everything succeeded. */

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "mtls_dn.h"
#include "mtls_identity.h"
#include "mtls_rules.h"
#include "mtls_version.h"

#define TOOL_VERSION MTLS_AUTHZ_VERSION

/* Exit codes, as documented in --help and docs/rule-tool.md. */
#define EXIT_OK 0
#define EXIT_USAGE 1
#define EXIT_INPUT 2
#define EXIT_INTERNAL 3

#define MAX_FILE (4 * 1024 * 1024) /* bytes read from one file */

static const char usage_text[] =
    "usage: mtls-authz-rule [--ca FILE] CERT\n"
    "       mtls-authz-rule --issuer CA-CERT\n"
    "       mtls-authz-rule --help | --version\n"
    "\n"
    "Prints mod_mtls_authz directives for a certificate, ready to paste\n"
    "into a <Location>, each checked with the module's own parser.\n"
    "\n"
    "  CERT          a client certificate, PEM or DER; in a PEM file with\n"
    "                several certificates (a chain) the first is the client\n"
    "                certificate and the others may include its issuer.\n"
    "                '-' reads standard input.\n"
    "  --ca FILE     the CA certificate(s) the server trusts (e.g. the\n"
    "                SSLCACertificateFile): the one that signed CERT gives\n"
    "                issuer=sha256:... Without --ca the issuer is looked\n"
    "                for in CERT's own file.\n"
    "  --issuer      CA-CERT is a CA certificate (or a PEM bundle of them):\n"
    "                print an MTLSAllowIssuerFingerprint line for each.\n"
    "  --help        this text.\n"
    "  --version     the version.\n"
    "\n"
    "The active MTLSAllow line is: subject + issuer; if the subject cannot\n"
    "be used, a SAN + issuer; without a known issuer, the certificate's\n"
    "own fingerprint (cert=). The other choices follow as comments.\n"
    "\n"
    "Exit status: 0 printed; 1 usage error; 2 a file is missing, is not\n"
    "a certificate, or is not what the option needs (nothing printed);\n"
    "3 a rule failed its own check (a bug: nothing printed).\n";

typedef struct {
    apr_pool_t *p;
    apr_array_header_t *out; /* const char *: output lines */
    const char *err;         /* first internal error */
} tool_t;

/* ---- reading certificates ---------------------------------------------- */

static const char *read_file(apr_pool_t *p, const char *path, char **data,
                             size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf;
    size_t n = 0, r;

    if (f == NULL)
        return apr_psprintf(p, "%s: %s", path, strerror(errno));
    buf = apr_palloc(p, MAX_FILE + 1);
    while ((r = fread(buf + n, 1, MAX_FILE + 1 - n, f)) > 0) {
        n += r;
        if (n > MAX_FILE)
            break;
    }
    if (ferror(f)) {
        int e = errno;
        if (f != stdin)
            fclose(f);
        return apr_psprintf(p, "%s: %s", path, strerror(e));
    }
    if (f != stdin)
        fclose(f);
    if (n > MAX_FILE)
        return apr_psprintf(p, "%s: larger than %d bytes: not a certificate",
                            path, MAX_FILE);
    *data = buf;
    *len = n;
    return NULL;
}

static apr_status_t free_x509(void *x)
{
    X509_free(x);
    return APR_SUCCESS;
}

static void keep(apr_pool_t *p, apr_array_header_t *certs, X509 *x)
{
    apr_pool_cleanup_register(p, x, free_x509, apr_pool_cleanup_null);
    APR_ARRAY_PUSH(certs, X509 *) = x;
}

/* Every certificate in path, PEM (other PEM blocks such as keys are
 * skipped) or a single DER certificate. */
static const char *load_certs(apr_pool_t *p, const char *path,
                              apr_array_header_t **out)
{
    apr_array_header_t *certs = apr_array_make(p, 4, sizeof(X509 *));
    char *data = NULL;
    size_t len = 0;
    const char *err = read_file(p, path, &data, &len);
    BIO *b;
    X509 *x;

    if (err)
        return err;
    if (len == 0)
        return apr_psprintf(p, "%s: empty file: not a certificate", path);
    b = BIO_new_mem_buf(data, (int)len);
    if (b == NULL)
        return "out of memory";
    while ((x = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL)) != NULL)
        keep(p, certs, x);
    BIO_free(b);
    if (certs->nelts == 0) {
        const unsigned char *d = (const unsigned char *)data;
        x = d2i_X509(NULL, &d, (long)len);
        if (x && d != (const unsigned char *)data + len) {
            X509_free(x);
            x = NULL;
        }
        if (x)
            keep(p, certs, x);
    }
    ERR_clear_error();
    if (certs->nelts == 0)
        return apr_psprintf(p,
                            "%s: not a certificate (expected an X.509 "
                            "certificate in PEM or DER form)",
                            path);
    *out = certs;
    return NULL;
}

/* ---- text -----------------------------------------------------------------
 */

static void line(tool_t *t, const char *s)
{
    APR_ARRAY_PUSH(t->out, const char *) = s;
}

/* For comments: printable ASCII as is, anything else (and the
 * backslash, so that no line can end with one) as \xHH. */
static const char *show(apr_pool_t *p, const unsigned char *s, size_t len)
{
    char *o = apr_palloc(p, len * 4 + 1), *q = o;
    size_t i;
    for (i = 0; i < len; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
            *q++ = (char)s[i];
        else
            q += sprintf(q, "\\x%02x", s[i]);
    }
    *q = '\0';
    return o;
}

/* A file name as the comments show it. */
static const char *show_path(apr_pool_t *p, const char *path)
{
    return show(p, (const unsigned char *)path, strlen(path));
}

/* ---- subject DNs in RFC 4514 form ------------------------------------ */

/* The string types OpenSSL compares by their UTF-8 text (X509_NAME_cmp's
 * canonical form); anything else is compared as its encoding and so must
 * be written as #<BER hex>. */
static int is_text_type(int type)
{
    switch (type) {
    case V_ASN1_UTF8STRING:
    case V_ASN1_BMPSTRING:
    case V_ASN1_UNIVERSALSTRING:
    case V_ASN1_PRINTABLESTRING:
    case V_ASN1_T61STRING:
    case V_ASN1_IA5STRING:
    case V_ASN1_VISIBLESTRING:
        return 1;
    default:
        return 0;
    }
}

/* An RFC 4514 value. Besides RFC 4514's own escapes: '"' and '\' are
 * written as \22 and \5C (so that no escape can reach httpd's word
 * splitter as \"), '$' as \24 (httpd expands ${VAR} in every line),
 * leading and trailing spaces as \20 (so no line ends in '\ ' that an
 * editor could trim into a line continuation), controls as \XX. */
static const char *escape_value(apr_pool_t *p, const unsigned char *s,
                                size_t len)
{
    char *o = apr_palloc(p, len * 3 + 1), *q = o;
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (c == ',' || c == '+' || c == ';' || c == '<' || c == '>' ||
            (c == '#' && i == 0)) {
            *q++ = '\\';
            *q++ = (char)c;
        }
        else if (c < 0x20 || c == 0x7f || c == '"' || c == '\\' || c == '$' ||
                 (c == ' ' && (i == 0 || i == len - 1))) {
            q += sprintf(q, "\\%02X", c);
        }
        else {
            *q++ = (char)c;
        }
    }
    *q = '\0';
    return o;
}

static const char *hex_value(apr_pool_t *p, const X509_NAME_ENTRY *e)
{
    ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
    ASN1_TYPE *at = ASN1_TYPE_new();
    unsigned char *der = NULL;
    const char *res = NULL;
    int n;

    if (at == NULL)
        return NULL;
    ASN1_TYPE_set1(at, ASN1_STRING_type(v), v);
    n = i2d_ASN1_TYPE(at, &der);
    if (n > 0) {
        char *o = apr_palloc(p, 2 * (apr_size_t)n + 2), *q = o;
        int i;
        *q++ = '#';
        for (i = 0; i < n; i++)
            q += sprintf(q, "%02x", der[i]);
        res = o;
    }
    OPENSSL_free(der);
    ASN1_TYPE_free(at);
    return res;
}

/* Does text parse (as the module parses it) into exactly this one
 * attribute? */
static int attr_round_trips(apr_pool_t *p, const char *text,
                            const X509_NAME_ENTRY *e)
{
    X509_NAME *want = X509_NAME_new();
    mtls_key_t want_key, got;
    int ok = 0;
    if (want && X509_NAME_add_entry(want, e, -1, 0) &&
        mtls_name_key(p, want, &want_key) &&
        mtls_dn_parse(p, text, &got) == NULL)
        ok = want_key.len == got.len &&
             memcmp(want_key.data, got.data, got.len) == 0;
    X509_NAME_free(want);
    return ok;
}

/* TYPE=VALUE for one attribute: OpenSSL's short name (as its RFC 2253
 * output shows) or else the dotted OID; the text value, or else #hex. */
static const char *encode_attr(apr_pool_t *p, const X509_NAME_ENTRY *e,
                               int *has_nul)
{
    ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(e);
    ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
    const char *types[2], *values[2], *hex = hex_value(p, e);
    char oid[128];
    int nid = OBJ_obj2nid(obj), i, j;

    types[0] = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
    types[1] =
        OBJ_obj2txt(oid, sizeof(oid), obj, 1) > 0 ? apr_pstrdup(p, oid) : NULL;
    values[0] = NULL;
    {
        /* Other types may still come back as themselves from text (a
         * NumericString for INN, say); the round trip decides. */
        unsigned char *u = NULL;
        int n = ASN1_STRING_to_UTF8(&u, v);
        if (n >= 0) {
            if (memchr(u, '\0', (size_t)n) && is_text_type(ASN1_STRING_type(v)))
                *has_nul = 1;
            values[0] = escape_value(p, u, (size_t)n);
            OPENSSL_free(u);
        }
    }
    values[1] = hex;
    for (j = 0; j < 2; j++) {
        for (i = 0; i < 2; i++) {
            const char *text;
            if (types[i] == NULL || values[j] == NULL)
                continue;
            text = apr_pstrcat(p, types[i], "=", values[j], NULL);
            if (attr_round_trips(p, text, e))
                return text;
        }
    }
    return NULL;
}

/* The RFC 4514 form of name (last RDN first, '+' within an RDN), or NULL
 * if an attribute cannot be written so that the module parses it back.
 * *has_nul: a text value has a NUL byte. */
static const char *encode_dn(apr_pool_t *p, const X509_NAME *name, int *has_nul)
{
    int n = X509_NAME_entry_count(name), i, start;
    const char *dn = "";

    *has_nul = 0;
    /* Walk RDNs from the last; within one, keep the certificate's order. */
    for (i = n - 1; i >= 0; i = start - 1) {
        int set = X509_NAME_ENTRY_set(X509_NAME_get_entry(name, i)), k;
        const char *rdn = "";
        start = i;
        while (start > 0 &&
               X509_NAME_ENTRY_set(X509_NAME_get_entry(name, start - 1)) == set)
            start--;
        for (k = start; k <= i; k++) {
            const char *a =
                encode_attr(p, X509_NAME_get_entry(name, k), has_nul);
            if (a == NULL)
                return NULL;
            rdn = k == start ? a : apr_pstrcat(p, rdn, "+", a, NULL);
        }
        dn = *dn ? apr_pstrcat(p, dn, ",", rdn, NULL) : rdn;
    }
    return dn;
}

/* For comments: the DN, or OpenSSL's own rendering when it has none. */
static const char *show_dn(apr_pool_t *p, const X509_NAME *name)
{
    int has_nul;
    const char *dn = encode_dn(p, name, &has_nul);
    if (X509_NAME_entry_count(name) == 0)
        return "(empty)";
    if (dn == NULL) {
        char *s = X509_NAME_oneline(name, NULL, 0);
        dn = show(p, (const unsigned char *)(s ? s : "?"), strlen(s ? s : "?"));
        OPENSSL_free(s);
    }
    /* encode_dn escapes controls and never ends in '\' or a space. */
    return dn;
}

/* ---- checking a directive as httpd would hand it over --------------- */

/* Checks the printed line: no ${ (httpd would expand it), no control
 * byte, no trailing '\' or space (a continuation line); then compiles
 * its arguments with the module's parser and matches id. NULL if it
 * admits id. */
static const char *check_rule(apr_pool_t *p, const char *text,
                              const mtls_identity_t *id)
{
    static const char dir[] = "MTLSAllow ";
    mtls_ruleset_t *rs = mtls_ruleset_make(p);
    mtls_miss_e miss;
    const char *err, *s;
    size_t len = strlen(text);

    if (strncmp(text, dir, sizeof(dir) - 1) != 0)
        return "not an MTLSAllow line";
    if (strstr(text, "${"))
        return "it contains ${, which httpd would expand";
    for (s = text; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return "it contains a control character";
    }
    if (len == 0 || text[len - 1] == '\\' || text[len - 1] == ' ')
        return "it ends with a backslash or a space";
    if (len > 8000)
        return "it is longer than httpd's line limit";
    err = mtls_ruleset_add_rule(rs, p, text + sizeof(dir) - 1, "check", NULL);
    if (err)
        return apr_psprintf(p, "the module's parser refuses it: %s", err);
    if (mtls_ruleset_match(rs, id, NULL, NULL, &miss) == NULL)
        return "it does not admit the certificate";
    return NULL;
}

/* A rule line that must pass check_rule, or the run fails (exit 3). */
static void rule_line(tool_t *t, const char *prefix, const char *text,
                      const mtls_identity_t *id)
{
    const char *err = check_rule(t->p, text, id);
    if (err && t->err == NULL)
        t->err = apr_psprintf(t->p, "internal error: '%s': %s", text, err);
    line(t, apr_pstrcat(t->p, prefix, text, NULL));
}

/* ---- SANs ------------------------------------------------------------- */

typedef struct {
    const char *shown; /* for the comment */
    const char *word;  /* san=... for a rule, or NULL */
    const char *why;   /* why there is no rule */
    const char *broad; /* san=DNS:.parent or san=IP:net/len, or NULL */
    int rank;          /* which makes the better active rule: lower */
} san_t;

/* A SAN value as one word for httpd and mtls_next_word: no spaces can
 * occur (the parser refuses them), and each '"' becomes "\"" (open a
 * quote, an escaped quote, close it). */
static const char *san_word(apr_pool_t *p, const char *type, const char *v)
{
    const char *w = apr_pstrcat(p, "san=", type, ":", NULL);
    for (; *v; v++) {
        char c[2] = {*v, '\0'};
        w = apr_pstrcat(p, w, *v == '"' ? "\"\\\"\"" : c, NULL);
    }
    return w;
}

/* The SAN types that rules can name, as rules write them, in the order
 * the active rule prefers them. */
static const struct {
    int type;
    const char *name;
} san_types[] = {
    {GEN_URI, "URI"},
    {GEN_DNS, "DNS"},
    {GEN_EMAIL, "email"},
    {GEN_IPADD, "IP"},
};

/* The name of a SAN type that rules cannot name. */
static const char *other_san_name(int type)
{
    return type == GEN_OTHERNAME ? "otherName"
           : type == GEN_DIRNAME ? "dirName"
           : type == GEN_RID     ? "registeredID"
                                 : "x400Address/ediPartyName";
}

/* Why no san= rule is offered for a SAN, or NULL if san=name:v admits
 * it. v is its value as text (an address in text form), len its length
 * in the certificate. */
static const char *san_no_rule(apr_pool_t *p, int type, const char *name,
                               const char *v, size_t len)
{
    mtls_key_t k;

    if (type != GEN_IPADD && memchr(v, '\0', len))
        return "it contains a NUL byte: never matches";
    if (type == GEN_URI && len >= 2 && strcmp(v + len - 2, "/*") == 0)
        return "a rule ending in /* is a prefix, not this exact URI";
    if (type == GEN_DNS && v[0] == '.')
        return "a rule with a leading dot is a DNS suffix, not this exact "
               "name";
    if (strstr(v, "${"))
        return "httpd would expand ${ in a rule";
    if (mtls_san_parse(p, apr_pstrcat(p, name, ":", v, NULL), &k))
        return "the module cannot match it (space, control or "
               "non-ASCII character)";
    return NULL;
}

/* The parent domain of a DNS name as a suffix rule word: "a.b.example"
 * gives san=DNS:.b.example. NULL where the parent would be a top-level
 * domain, or the name has an empty label (no suffix rule matches it). */
static const char *dns_broad(apr_pool_t *p, const char *v)
{
    mtls_key_t k = mtls_key_dns(p, v, strlen(v));
    const char *name = apr_pstrmemdup(p, k.data + 1, k.len - 1);
    const char *parent = strchr(name, '.');

    if (name[0] == '.' || strstr(name, "..") || parent == NULL ||
        strchr(parent + 1, '.') == NULL || parent[strlen(parent) - 1] == '.')
        return NULL;
    return san_word(p, "DNS", parent);
}

/* The network around an IP SAN as a rule word: its /24, its /64, or for
 * an IPv4-mapped IPv6 address the /120 that is its IPv4 /24. None for
 * other addresses in ::/64 (::1, ::): that /64 holds every mapped
 * address. */
static const char *ip_broad(apr_pool_t *p, const unsigned char *d, size_t len)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
                                             0, 0, 0, 0, 0xff, 0xff};
    unsigned char net[16];
    char buf[INET6_ADDRSTRLEN];
    unsigned bits = len == 4 ? 24 : memcmp(d, mapped, 12) == 0 ? 120 : 64;

    if (bits == 64 && memcmp(d, mapped, 8) == 0)
        return NULL;
    memcpy(net, d, len);
    memset(net + bits / 8, 0, len - bits / 8);
    if (mtls_san_ip_text(net, len, buf, sizeof(buf)) == NULL)
        return NULL;
    return apr_psprintf(p, "san=IP:%s/%u", buf, bits);
}

/* One SAN for the comment, with its rule word or why it has none. */
static void describe_san(apr_pool_t *p, san_t *s, int type, const char *name,
                         const unsigned char *d, size_t len)
{
    const char *v;

    if (d == NULL) {
        s->shown = apr_pstrcat(p, name, ":?", NULL);
        s->why = "unreadable";
        return;
    }
    if (type == GEN_IPADD) {
        char buf[INET6_ADDRSTRLEN];
        v = mtls_san_ip_text(d, len, buf, sizeof(buf));
        if (v == NULL) {
            s->shown =
                apr_pstrcat(p, "IP:", show(p, d, len), " (malformed)", NULL);
            s->why = "not 4 or 16 bytes: never matches";
            return;
        }
        v = apr_pstrdup(p, v);
        s->shown = apr_pstrcat(
            p, "IP:", show(p, (const unsigned char *)v, strlen(v)), NULL);
    }
    else {
        v = apr_pstrmemdup(p, (const char *)d, len);
        s->shown = apr_pstrcat(p, name, ":", show(p, d, len), NULL);
    }
    s->why = san_no_rule(p, type, name, v, len);
    if (s->why == NULL) {
        s->word = san_word(p, name, v);
        s->broad = type == GEN_DNS     ? dns_broad(p, v)
                   : type == GEN_IPADD ? ip_broad(p, d, len)
                                       : NULL;
    }
}

typedef struct {
    apr_pool_t *p;
    apr_array_header_t *sans; /* san_t */
} san_baton;

static void add_san(void *baton, int type, const unsigned char *d,
                    apr_size_t len)
{
    san_baton *b = baton;
    san_t *s = apr_array_push(b->sans);
    size_t i;

    s->word = NULL;
    s->why = NULL;
    s->broad = NULL;
    s->rank = 9;
    for (i = 0; i < sizeof(san_types) / sizeof(san_types[0]); i++) {
        if (san_types[i].type == type) {
            s->rank = (int)i;
            describe_san(b->p, s, type, san_types[i].name, d, len);
            return;
        }
    }
    s->shown = other_san_name(type);
    s->why = "mod_mtls_authz matches DNS, email, URI and IP SANs only";
}

/* The certificate's SANs in its order, as the module reads them. */
static apr_array_header_t *read_sans(apr_pool_t *p, X509 *cert)
{
    san_baton b;

    b.p = p;
    b.sans = apr_array_make(p, 4, sizeof(san_t));
    if (mtls_sans_each(cert, add_san, &b) < 0) {
        san_t *s = apr_array_push(b.sans);
        s->shown = "(malformed or repeated subjectAltName extension)";
        s->word = NULL;
        s->broad = NULL;
        s->why = "the module matches no SAN of this certificate";
        s->rank = 9;
    }
    return b.sans;
}

/* ---- the two modes ------------------------------------------------------ */

static const char *fp_of(apr_pool_t *p, X509 *x)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!X509_digest(x, EVP_sha256(), md, &n) || n != MTLS_FP_LEN)
        return NULL;
    return apr_pstrcat(p, "sha256:", mtls_fp_hex(p, md), NULL);
}

static int issuer_mode(tool_t *t, const char *path)
{
    apr_array_header_t *certs;
    const char *err = load_certs(t->p, path, &certs);
    int i;

    if (err) {
        fprintf(stderr, "mtls-authz-rule: %s\n", err);
        return EXIT_INPUT;
    }
    line(t, apr_psprintf(t->p, "# mtls-authz-rule --issuer: %s",
                         show_path(t->p, path)));
    line(t, "# Each CA must also be in the host's SSLCACertificateFile.");
    for (i = 0; i < certs->nelts; i++) {
        X509 *ca = APR_ARRAY_IDX(certs, i, X509 *);
        const char *fp = fp_of(t->p, ca);
        if (X509_check_ca(ca) < 1) {
            fprintf(stderr,
                    "mtls-authz-rule: %s: certificate %d (%s) is not a CA "
                    "certificate, so it signs no client certificate; to pin "
                    "this certificate itself, run without --issuer\n",
                    path, i + 1, show_dn(t->p, X509_get_subject_name(ca)));
            return EXIT_INPUT;
        }
        if (fp == NULL) {
            t->err = "internal error: cannot compute a fingerprint";
            return EXIT_INTERNAL;
        }
        line(t, apr_pstrcat(t->p, "# ",
                            show_dn(t->p, X509_get_subject_name(ca)), NULL));
        line(t, apr_pstrcat(t->p, "MTLSAllowIssuerFingerprint ", fp, NULL));
    }
    return EXIT_OK;
}

static apr_status_t free_store(void *s)
{
    X509_STORE_free(s);
    return APR_SUCCESS;
}

/* What cert mode knows about the client certificate. */
typedef struct {
    const char *path, *ca_path; /* as given */
    X509 *leaf;
    mtls_identity_t *id;      /* with the issuers found in the trust store */
    const char *subject;      /* RFC 4514, or NULL if no rule can state it */
    int has_nul;              /* a subject value has a NUL byte */
    apr_array_header_t *sans; /* san_t */
    const char *cert_fp;
} cert_t;

/* The leaf and its identity, its issuer looked up as the module looks it
 * up in the host's trust store: in the --ca file, or else in the rest of
 * the leaf's own file. An exit code, EXIT_OK if c is filled in. */
static int load_leaf(tool_t *t, cert_t *c)
{
    apr_pool_t *p = t->p;
    apr_array_header_t *certs, *cas;
    X509_STORE *store = X509_STORE_new();
    const char *err;
    int i;

    if (store == NULL)
        return EXIT_INTERNAL;
    apr_pool_cleanup_register(p, store, free_store, apr_pool_cleanup_null);
    if ((err = load_certs(p, c->path, &certs)) != NULL ||
        (c->ca_path && (err = load_certs(p, c->ca_path, &cas)) != NULL)) {
        fprintf(stderr, "mtls-authz-rule: %s\n", err);
        return EXIT_INPUT;
    }
    c->leaf = APR_ARRAY_IDX(certs, 0, X509 *);
    if (c->ca_path == NULL) {
        cas = apr_array_make(p, 1, sizeof(X509 *));
        for (i = 1; i < certs->nelts; i++)
            APR_ARRAY_PUSH(cas, X509 *) = APR_ARRAY_IDX(certs, i, X509 *);
    }
    for (i = 0; i < cas->nelts; i++)
        X509_STORE_add_cert(store, APR_ARRAY_IDX(cas, i, X509 *));
    ERR_clear_error();
    c->id = mtls_identity_build(p, c->leaf, store, 1);
    if (c->ca_path && c->id->n_issuers == 0) {
        fprintf(stderr,
                "mtls-authz-rule: %s: no certificate in it signed %s "
                "(whose issuer is %s)\n",
                c->ca_path, c->path, show_dn(p, X509_get_issuer_name(c->leaf)));
        return EXIT_INPUT;
    }
    return EXIT_OK;
}

/* The fingerprint, the subject as a rule states it, and the SANs. */
static int read_leaf(tool_t *t, cert_t *c)
{
    const X509_NAME *name = X509_get_subject_name(c->leaf);

    c->cert_fp = fp_of(t->p, c->leaf);
    if (c->cert_fp == NULL) {
        t->err = "internal error: cannot compute a fingerprint";
        return EXIT_INTERNAL;
    }
    c->has_nul = 0;
    c->subject = X509_NAME_entry_count(name) == 0
                     ? NULL
                     : encode_dn(t->p, name, &c->has_nul);
    if (c->has_nul)
        c->subject = NULL;
    c->sans = read_sans(t->p, c->leaf);
    return EXIT_OK;
}

/* The comment lines on what the certificate is: its file, subject,
 * issuer and the issuer's fingerprints. */
static void header_lines(tool_t *t, const cert_t *c)
{
    apr_pool_t *p = t->p;
    const char *issuer_src = c->ca_path ? c->ca_path : c->path;
    int i;

    line(t, apr_psprintf(p, "# mtls-authz-rule: %s%s", show_path(p, c->path),
                         c->ca_path ? apr_psprintf(p, " --ca %s",
                                                   show_path(p, c->ca_path))
                                    : ""));
    line(t, apr_pstrcat(p, "# subject: ",
                        show_dn(p, X509_get_subject_name(c->leaf)), NULL));
    line(t, apr_pstrcat(p, "# issuer:  ",
                        show_dn(p, X509_get_issuer_name(c->leaf)), NULL));
    for (i = 0; i < c->id->n_issuers; i++) {
        line(t,
             apr_psprintf(p, "#          sha256:%s (from %s)",
                          mtls_fp_hex(p, c->id->issuer_fps + i * MTLS_FP_LEN),
                          show_path(p, issuer_src)));
    }
    if (c->id->n_issuers == 0)
        line(t, "#          sha256 unknown: run again with --ca FILE "
                "naming the issuing CA or the SSLCACertificateFile");
    if (X509_check_ca(c->leaf) >= 1)
        line(t, "# Note: this is a CA certificate; to pin it as an issuer, "
                "use --issuer");
}

/* The comment lines on the SANs, and on a subject no rule can state. */
static void name_lines(tool_t *t, const cert_t *c)
{
    int i;

    line(t, c->sans->nelts ? "# subjectAltName:" : "# subjectAltName: none");
    for (i = 0; i < c->sans->nelts; i++) {
        const san_t *s = &APR_ARRAY_IDX(c->sans, i, san_t);
        line(t,
             apr_psprintf(t->p, "#   %s%s%s", s->shown,
                          s->why ? ": no rule, " : "", s->why ? s->why : ""));
    }
    if (X509_NAME_entry_count(X509_get_subject_name(c->leaf)) > 0 &&
        c->subject == NULL)
        line(t, c->has_nul ? "# No subject rule: the subject has a NUL byte."
                           : "# No subject rule: the module cannot express "
                             "this subject.");
}

/* The SAN that makes the best active rule, or NULL if none can. */
static const san_t *best_san(const cert_t *c)
{
    const san_t *best = NULL;
    int i;

    for (i = 0; i < c->sans->nelts; i++) {
        const san_t *s = &APR_ARRAY_IDX(c->sans, i, san_t);
        if (s->word && (best == NULL || s->rank < best->rank))
            best = s;
    }
    return best;
}

/* With a known issuer, the active rule: subject + issuer, else the best
 * SAN + issuer. Returns it, or NULL if there is none. */
static const char *active_rule(tool_t *t, const cert_t *c, const char *fp)
{
    const san_t *best = best_san(c);
    const char *active;

    if (c->subject) {
        line(t, "# This subject, issued by this CA:");
        active = apr_psprintf(t->p, "MTLSAllow \"subject=%s\" issuer=%s",
                              c->subject, fp);
    }
    else if (best) {
        line(t, "# This SAN, issued by this CA:");
        active = apr_psprintf(t->p, "MTLSAllow %s issuer=%s", best->word, fp);
    }
    else {
        return NULL;
    }
    rule_line(t, "", active, c->id);
    return active;
}

/* Every other SAN + issuer rule, commented out. active is not NULL
 * here if any SAN has a rule: active_rule took the best of them. */
static void san_alternatives(tool_t *t, const cert_t *c, const char *fp,
                             const char *active)
{
    int i, n = 0;

    for (i = 0; i < c->sans->nelts; i++) {
        const san_t *s = &APR_ARRAY_IDX(c->sans, i, san_t);
        const char *r;
        if (s->word == NULL)
            continue;
        r = apr_psprintf(t->p, "MTLSAllow %s issuer=%s", s->word, fp);
        if (strcmp(r, active) == 0)
            continue;
        if (!n++)
            line(t, "# Or instead one of its SANs, from the same CA:");
        rule_line(t, "# ", r, c->id);
    }
}

/* The suffix and network rules around the SANs, commented out: they
 * admit this certificate and others of the same CA in its domain or
 * network. Each once, however many SANs share it. */
static void broad_alternatives(tool_t *t, const cert_t *c, const char *fp)
{
    apr_hash_t *seen = apr_hash_make(t->p);
    int i, n = 0;

    for (i = 0; i < c->sans->nelts; i++) {
        const san_t *s = &APR_ARRAY_IDX(c->sans, i, san_t);
        if (s->broad == NULL ||
            apr_hash_get(seen, s->broad, APR_HASH_KEY_STRING))
            continue;
        apr_hash_set(seen, s->broad, APR_HASH_KEY_STRING, "");
        if (!n++)
            line(t, "# Or more broadly, any name in its domain or address in "
                    "its network, from the same CA:");
        rule_line(t, "# ",
                  apr_psprintf(t->p, "MTLSAllow %s issuer=%s", s->broad, fp),
                  c->id);
    }
}

/* The rule lines: the active one, the other choices as comments, and
 * last the certificate pin, which is active if nothing else is. */
static void rule_lines(tool_t *t, const cert_t *c)
{
    const char *active = NULL,
               *pin = apr_pstrcat(t->p, "MTLSAllow cert=", c->cert_fp, NULL);

    if (c->id->n_issuers > 0) {
        const char *fp = apr_pstrcat(
            t->p, "sha256:", mtls_fp_hex(t->p, c->id->issuer_fps), NULL);
        active = active_rule(t, c, fp);
        san_alternatives(t, c, fp, active);
        broad_alternatives(t, c, fp);
    }
    else if (c->subject) {
        line(t, "# With --ca, a rule for this subject from its issuer:");
        line(t, apr_psprintf(t->p,
                             "# MTLSAllow \"subject=%s\" "
                             "issuer=sha256:<issuing CA>",
                             c->subject));
    }
    if (active) {
        line(t, "# Or only this one certificate (no longer matches when it "
                "is renewed):");
        rule_line(t, "# ", pin, c->id);
    }
    else {
        line(t, "# Only this one certificate (no longer matches when it is "
                "renewed):");
        rule_line(t, "", pin, c->id);
    }
}

static int cert_mode(tool_t *t, const char *path, const char *ca_path)
{
    cert_t c;
    int rc;

    memset(&c, 0, sizeof(c));
    c.path = path;
    c.ca_path = ca_path;
    if ((rc = load_leaf(t, &c)) != EXIT_OK ||
        (rc = read_leaf(t, &c)) != EXIT_OK)
        return rc;
    header_lines(t, &c);
    name_lines(t, &c);
    rule_lines(t, &c);
    return t->err ? EXIT_INTERNAL : EXIT_OK;
}

/* ---- the command line ------------------------------------------------- */

typedef struct {
    const char *ca, *file;
    int issuer;
} args_t;

#define ARGS_GO_ON (-1)

/* Takes argv[*i] (and the value of an option that has one). Returns
 * ARGS_GO_ON, or the exit code if the run ends here. */
static int parse_arg(int argc, const char *const *argv, int *i, args_t *a)
{
    const char *arg = argv[*i];

    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    if (strcmp(arg, "--version") == 0) {
        printf("mtls-authz-rule %s (mod_mtls_authz, %s)\n", TOOL_VERSION,
               OpenSSL_version(OPENSSL_VERSION));
        return EXIT_OK;
    }
    if (strcmp(arg, "--issuer") == 0) {
        a->issuer = 1;
    }
    else if (strcmp(arg, "--ca") == 0) {
        if (*i + 1 >= argc || a->ca) {
            fputs("mtls-authz-rule: --ca needs one FILE (see --help)\n",
                  stderr);
            return EXIT_USAGE;
        }
        a->ca = argv[++*i];
    }
    else if (strcmp(arg, "--") == 0 && *i + 1 < argc && a->file == NULL) {
        a->file = argv[++*i];
    }
    else if (arg[0] == '-' && arg[1] != '\0') {
        fprintf(stderr, "mtls-authz-rule: unknown option '%s' (see --help)\n",
                arg);
        return EXIT_USAGE;
    }
    else if (a->file) {
        fputs("mtls-authz-rule: one certificate file at a time (see --help)\n",
              stderr);
        return EXIT_USAGE;
    }
    else {
        a->file = arg;
    }
    return ARGS_GO_ON;
}

/* The whole command line, in order: ARGS_GO_ON or the exit code. */
static int parse_args(int argc, const char *const *argv, args_t *a)
{
    int i, rc;

    a->ca = a->file = NULL;
    a->issuer = 0;
    for (i = 1; i < argc; i++) {
        if ((rc = parse_arg(argc, argv, &i, a)) != ARGS_GO_ON)
            return rc;
    }
    if (a->file == NULL || (a->issuer && a->ca)) {
        fputs(a->file ? "mtls-authz-rule: --issuer takes no --ca\n"
                      : "mtls-authz-rule: no certificate file given\n",
              stderr);
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    return ARGS_GO_ON;
}

/* Prints the lines if the mode succeeded, else why not. The exit code. */
static int finish(tool_t *t, int rc)
{
    int i;

    if (rc == EXIT_OK && t->err == NULL) {
        for (i = 0; i < t->out->nelts; i++)
            printf("%s\n", APR_ARRAY_IDX(t->out, i, const char *));
        if (fflush(stdout) != 0) {
            perror("mtls-authz-rule: stdout");
            rc = EXIT_INTERNAL;
        }
    }
    else if (t->err) {
        fprintf(stderr, "mtls-authz-rule: %s\n", t->err);
        rc = EXIT_INTERNAL;
    }
    return rc;
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;
    tool_t t;
    args_t a;
    int rc;

    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS ||
        apr_pool_create(&p, NULL) != APR_SUCCESS) {
        fputs("mtls-authz-rule: cannot initialise APR\n", stderr);
        return EXIT_INTERNAL;
    }
    if ((rc = parse_args(argc, argv, &a)) != ARGS_GO_ON)
        return rc;
    t.p = p;
    t.out = apr_array_make(p, 32, sizeof(const char *));
    t.err = NULL;
    rc = finish(&t, a.issuer ? issuer_mode(&t, a.file)
                             : cert_mode(&t, a.file, a.ca));
    apr_pool_destroy(p);
    apr_terminate();
    return rc;
}
