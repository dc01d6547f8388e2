/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Distinguished names as lookup keys.
 *
 * A subject is reduced to the canonical encoding that X509_NAME_cmp
 * compares: per RDN a DER SET of (OID, value), with string values
 * converted to UTF-8, ASCII lowercased and white space trimmed and
 * collapsed. Rules are parsed from RFC 4514 text (OpenSSL 3 exports no
 * such parser) straight into that encoding, without building an
 * X509_NAME: at 100,000 rules that would cost seconds and over a
 * kilobyte per rule. Certificates go through the same encoder, so equal
 * keys mean X509_NAME_cmp would say equal, byte for byte; the unit tests
 * check the bytes against OpenSSL's own hash of its canonical form. */

#include <apr_strings.h>
#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <stdlib.h>
#include <openssl/x509.h>
#include <string.h>

#include "mtls_dn.h"

/* Attribute type names are case-insensitive (RFC 4512) but OBJ_txt2nid
 * is not. These are the names RFC 4514 and OpenSSL's RFC 2253 output
 * use; any other type can be written as a dotted OID. */
static const struct {
    const char *name;
    int nid;
} dn_types[] = {
    {"CN", NID_commonName},
    {"L", NID_localityName},
    {"ST", NID_stateOrProvinceName},
    {"O", NID_organizationName},
    {"OU", NID_organizationalUnitName},
    {"C", NID_countryName},
    {"STREET", NID_streetAddress},
    {"DC", NID_domainComponent},
    {"UID", NID_userId},
    {"emailAddress", NID_pkcs9_emailAddress},
    {"serialNumber", NID_serialNumber},
    {"SN", NID_surname},
    {"GN", NID_givenName},
    {"title", NID_title},
    {"initials", NID_initials},
    {"pseudonym", NID_pseudonym},
    {"generationQualifier", NID_generationQualifier},
    {"dnQualifier", NID_dnQualifier},
    {"name", NID_name},
    {"postalCode", NID_postalCode},
    {"businessCategory", NID_businessCategory},
    {"organizationIdentifier", NID_organizationIdentifier},
    {"description", NID_description},
    {"jurisdictionC", NID_jurisdictionCountryName},
    {"jurisdictionST", NID_jurisdictionStateOrProvinceName},
    {"jurisdictionL", NID_jurisdictionLocalityName},
};

/* ---- the canonical encoding --------------------------------------- */

/* The string types X509_NAME_cmp compares as canonical UTF-8 (OpenSSL's
 * ASN1_MASK_CANON); other types compare as they are encoded. */
#define CANON_MASK                                                             \
    (B_ASN1_UTF8STRING | B_ASN1_BMPSTRING | B_ASN1_UNIVERSALSTRING |           \
     B_ASN1_PRINTABLESTRING | B_ASN1_T61STRING | B_ASN1_IA5STRING |            \
     B_ASN1_VISIBLESTRING)

typedef struct {
    const unsigned char *der;
    apr_size_t len;
    int rdn; /* which RDN, counted as added */
} canon_entry;

typedef struct {
    apr_pool_t *tmp; /* scratch, freed by the caller */
    apr_array_header_t *entries;
    int rdn;
} canon_builder;

static void canon_init(canon_builder *b, apr_pool_t *tmp)
{
    b->tmp = tmp;
    b->entries = apr_array_make(tmp, 8, sizeof(canon_entry));
    b->rdn = -1;
}

/* Bytes of a DER length field. */
static apr_size_t der_len_size(apr_size_t n)
{
    apr_size_t s = 1;
    if (n < 128)
        return 1;
    for (; n; n >>= 8)
        s++;
    return s;
}

static unsigned char *der_put_header(unsigned char *p, unsigned char tag,
                                     apr_size_t n)
{
    apr_size_t s = der_len_size(n), i;
    *p++ = tag;
    if (s == 1) {
        *p++ = (unsigned char)n;
        return p;
    }
    *p++ = (unsigned char)(0x80 | (s - 1));
    for (i = s - 1; i > 0; i--)
        *p++ = (unsigned char)(n >> (8 * (i - 1)));
    return p;
}

static int c_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* X509_NAME_cmp's canonical form of a UTF-8 value, into out (which has
 * room for len bytes). Returns the length written. */
static apr_size_t canon_text(unsigned char *out, const unsigned char *in,
                             apr_size_t len)
{
    unsigned char *o = out;
    while (len > 0 && c_space(*in)) {
        in++;
        len--;
    }
    while (len > 0 && c_space(in[len - 1]))
        len--;
    while (len > 0) {
        if (c_space(*in)) {
            *o++ = ' ';
            while (len > 0 && c_space(*in)) {
                in++;
                len--;
            }
            continue;
        }
        *o++ = (*in >= 'A' && *in <= 'Z') ? (unsigned char)(*in + 32) : *in;
        in++;
        len--;
    }
    return (apr_size_t)(o - out);
}

/* Adds one attribute: tag is the value's universal tag; a value of a
 * CANON_MASK type must already be UTF-8. new_rdn starts a new RDN. */
static int canon_add(canon_builder *b, const ASN1_OBJECT *obj, int tag,
                     const unsigned char *v, apr_size_t vlen, int new_rdn)
{
    const unsigned char *oid = OBJ_get0_data(obj);
    apr_size_t olen = OBJ_length(obj);
    unsigned char *val, *der, *p;
    apr_size_t n, inner;
    canon_entry *e;

    if (oid == NULL || olen == 0 || tag <= 0 || tag >= 31 ||
        tag == V_ASN1_SEQUENCE || tag == V_ASN1_SET)
        return 0;
    if (ASN1_tag2bit(tag) & CANON_MASK) {
        val = apr_palloc(b->tmp, vlen + 1);
        vlen = canon_text(val, v, vlen);
        tag = V_ASN1_UTF8STRING;
    }
    else {
        val = (unsigned char *)v;
    }
    inner = 1 + der_len_size(olen) + olen + 1 + der_len_size(vlen) + vlen;
    n = 1 + der_len_size(inner) + inner;
    p = der = apr_palloc(b->tmp, n);
    p = der_put_header(p, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, inner);
    p = der_put_header(p, V_ASN1_OBJECT, olen);
    memcpy(p, oid, olen);
    p += olen;
    p = der_put_header(p, (unsigned char)tag, vlen);
    if (vlen) /* an empty value may have no data pointer at all */
        memcpy(p, val, vlen);
    if (new_rdn || b->rdn < 0)
        b->rdn++;
    e = apr_array_push(b->entries);
    e->der = der;
    e->len = n;
    e->rdn = b->rdn;
    return 1;
}

/* Adds a value as a certificate holds it: converted to UTF-8 first if it
 * is compared canonically. */
static int canon_add_string(canon_builder *b, const ASN1_OBJECT *obj,
                            const ASN1_STRING *s, int new_rdn)
{
    int type = ASN1_STRING_type(s), ok;
    unsigned char *utf8 = NULL;
    int n;

    if (type <= 0 || type >= 31)
        return 0;
    if (!(ASN1_tag2bit(type) & CANON_MASK))
        return canon_add(b, obj, type, ASN1_STRING_get0_data(s),
                         (apr_size_t)ASN1_STRING_length(s), new_rdn);
    if ((n = ASN1_STRING_to_UTF8(&utf8, s)) < 0)
        return 0;
    ok = canon_add(b, obj, V_ASN1_UTF8STRING, utf8, (apr_size_t)n, new_rdn);
    OPENSSL_free(utf8);
    return ok;
}

/* DER order of a SET OF, as OpenSSL sorts it. */
static int der_cmp(const void *a, const void *b)
{
    const canon_entry *x = a, *y = b;
    apr_size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->der, y->der, n);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* The key: MTLS_K_SUBJECT and the RDNs, each a sorted DER SET; in the
 * order added, or reversed (RFC 4514 writes the last RDN first). */
static mtls_key_t canon_finish(canon_builder *b, apr_pool_t *p, int reverse)
{
    canon_entry *es = (canon_entry *)b->entries->elts;
    int n = b->entries->nelts, n_rdns = b->rdn + 1, i, r;
    /* start[r]..start[r + 1]: the entries of RDN r, contiguous */
    int *start = apr_palloc(b->tmp, sizeof(int) * (apr_size_t)(n_rdns + 1));
    apr_size_t *set = apr_palloc(b->tmp, sizeof(*set) * (apr_size_t)n_rdns);
    apr_size_t total = 1;
    unsigned char *out, *q;
    mtls_key_t k;

    for (r = 0, i = 0; r < n_rdns; r++) {
        start[r] = i;
        set[r] = 0;
        for (; i < n && es[i].rdn == r; i++)
            set[r] += es[i].len;
        qsort(es + start[r], (size_t)(i - start[r]), sizeof(*es), der_cmp);
        total += 1 + der_len_size(set[r]) + set[r];
    }
    start[n_rdns] = n;
    q = out = apr_palloc(p, total);
    *q++ = MTLS_K_SUBJECT;
    for (i = 0; i < n_rdns; i++) {
        r = reverse ? n_rdns - 1 - i : i;
        q = der_put_header(q, V_ASN1_SET | V_ASN1_CONSTRUCTED, set[r]);
        for (int j = start[r]; j < start[r + 1]; j++) {
            memcpy(q, es[j].der, es[j].len);
            q += es[j].len;
        }
    }
    k.data = (const char *)out;
    k.len = (apr_size_t)(q - out);
    return k;
}

int mtls_name_key(apr_pool_t *p, const X509_NAME *name, mtls_key_t *out)
{
    canon_builder b;
    apr_pool_t *tmp;
    int i, ok = 1, prev_set = -1;

    if (apr_pool_create(&tmp, p) != APR_SUCCESS)
        return 0;
    canon_init(&b, tmp);
    for (i = 0; ok && i < X509_NAME_entry_count(name); i++) {
        const X509_NAME_ENTRY *ne = X509_NAME_get_entry(name, i);
        int set = X509_NAME_ENTRY_set(ne);
        ok = canon_add_string(&b, X509_NAME_ENTRY_get_object(ne),
                              X509_NAME_ENTRY_get_data(ne), set != prev_set);
        prev_set = set;
    }
    if (ok)
        *out = canon_finish(&b, p, 0);
    apr_pool_destroy(tmp);
    return ok;
}

/* ---- the RFC 4514 parser ------------------------------------------- */

typedef struct {
    apr_pool_t *p; /* scratch and error messages */
    const char *s; /* cursor */
    const char *start;
    canon_builder b;
    int new_rdn;
} dn_cursor;

static const char *dn_err(dn_cursor *c, const char *what)
{
    return apr_psprintf(c->p, "%s at offset %d", what, (int)(c->s - c->start));
}

static void skip_spaces(dn_cursor *c)
{
    while (*c->s == ' ')
        c->s++;
}

static int is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static ASN1_OBJECT *type_object(const char *type)
{
    size_t i;
    if (is_digit(type[0]))
        return OBJ_txt2obj(type, 1);
    for (i = 0; i < sizeof(dn_types) / sizeof(dn_types[0]); i++) {
        /* The first letter first: a million-rule file parses this. */
        if ((type[0] | 0x20) == (dn_types[i].name[0] | 0x20) &&
            strcasecmp(type, dn_types[i].name) == 0)
            return OBJ_nid2obj(dn_types[i].nid);
    }
    /* Any other name OpenSSL knows, spelt as OpenSSL spells it. */
    {
        int nid = OBJ_sn2nid(type);
        if (nid == NID_undef)
            nid = OBJ_ln2nid(type);
        return nid == NID_undef ? NULL : OBJ_nid2obj(nid);
    }
}

static const char *parse_type(dn_cursor *c, ASN1_OBJECT **obj)
{
    const char *b;
    char *type;

    skip_spaces(c);
    b = c->s;
    if (is_alpha(*c->s)) {
        while (is_alpha(*c->s) || is_digit(*c->s) || *c->s == '-')
            c->s++;
    }
    else if (is_digit(*c->s)) {
        /* A numericoid (RFC 4512): digits separated by single dots.
         * OpenSSL would read "2.5.4..3" as 2.5.4.0.3, another type. */
        while (is_digit(*c->s) || (*c->s == '.' && is_digit(c->s[1])))
            c->s++;
    }
    if (c->s == b)
        return dn_err(c, "expected an attribute type such as CN");
    type = apr_pstrmemdup(c->p, b, c->s - b);
    skip_spaces(c);
    if (*c->s != '=')
        return dn_err(c, apr_psprintf(c->p, "expected '=' after '%s'", type));
    c->s++;
    *obj = type_object(type);
    if (*obj == NULL)
        return apr_psprintf(
            c->p, "unknown attribute type '%s' (use a dotted OID)", type);
    return NULL;
}

/* Does a string value hold a NUL character? Refused in a '#' value as
 * in an escaped one: such a name is an attack, not a client to allow. */
static int has_nul(const ASN1_STRING *s)
{
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, s), nul;
    if (n < 0)
        return 0; /* not text: compared as encoded */
    nul = memchr(utf8, 0, (size_t)n) != NULL;
    OPENSSL_free(utf8);
    return nul;
}

/* "#" hexstring: the BER encoding of a string value (RFC 4514 2.4). */
static const char *parse_hex_value(dn_cursor *c, const ASN1_OBJECT *obj)
{
    const char *b = ++c->s;
    unsigned char *der, *q;
    const unsigned char *dp;
    apr_size_t n, i;
    ASN1_TYPE *at;
    const char *err = NULL;

    while (mtls_hex_digit(*c->s) >= 0)
        c->s++;
    n = c->s - b;
    if (n == 0 || n % 2)
        return dn_err(c, "a '#' value needs an even number of hex digits");
    q = der = apr_palloc(c->p, n / 2);
    for (i = 0; i < n; i += 2)
        *q++ = (unsigned char)(mtls_hex_digit(b[i]) << 4 |
                               mtls_hex_digit(b[i + 1]));
    dp = der;
    at = d2i_ASN1_TYPE(NULL, &dp, (long)(n / 2));
    /* Only the string types a certificate's name can hold. */
    if (at == NULL || dp != der + n / 2 || at->type <= 0 || at->type >= 31 ||
        !(ASN1_tag2bit(at->type) & (B_ASN1_PRINTABLE)) ||
        at->type == V_ASN1_SEQUENCE) {
        err = dn_err(c, "a '#' value must be the BER encoding of a string");
    }
    else if (has_nul(at->value.asn1_string)) {
        err = dn_err(c, "a NUL byte is not allowed in a value");
    }
    else if (!canon_add_string(&c->b, obj, at->value.asn1_string, c->new_rdn)) {
        err = dn_err(c, "the '#' value is not allowed for this attribute");
    }
    ASN1_TYPE_free(at);
    skip_spaces(c);
    return err;
}

/* The same checks X509_NAME_add_entry_by_OBJ makes: valid UTF-8, and the
 * attribute's size and character set limits from OpenSSL's table (C is
 * two printable characters, CN at most 64, ...). */
static int printable_char(unsigned char ch)
{
    return ch != 0 &&
           ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || strchr(" '()+,-./:=?", ch) != NULL);
}

/* The string type X509_NAME_add_entry_by_OBJ would give the value, or
 * -1 where it would refuse it: not UTF-8, or outside the attribute's
 * size and character set limits from OpenSSL's table (C is two printable
 * characters, CN at most 64, ...). ASCII values, nearly all of them, are
 * decided here; others by OpenSSL. */
/* ASN1_STRING_TABLE_get, remembered for the last few types: two binary
 * searches per attribute otherwise, on every rule of a rule file. Per
 * thread (.htaccess files are parsed by request threads); keyed on
 * OpenSSL's static objects, which live as long as the process, as do
 * the table's entries. */
static ASN1_STRING_TABLE *string_table(const ASN1_OBJECT *obj)
{
    static __thread struct {
        const ASN1_OBJECT *obj;
        ASN1_STRING_TABLE *tbl;
    } memo[8];
    static __thread unsigned next;
    ASN1_STRING_TABLE *tbl;
    unsigned i;

    for (i = 0; i < sizeof(memo) / sizeof(memo[0]); i++) {
        if (memo[i].obj == obj)
            return memo[i].tbl;
    }
    tbl = ASN1_STRING_TABLE_get(OBJ_obj2nid(obj));
    /* Only OpenSSL's static objects (OBJ_nid2obj): a dotted OID is an
     * object of its own, freed after the parse. */
    if (OBJ_get0_data(obj) &&
        (ASN1_OBJECT *)obj == OBJ_nid2obj(OBJ_obj2nid(obj))) {
        memo[next % (sizeof(memo) / sizeof(memo[0]))].tbl = tbl;
        memo[next % (sizeof(memo) / sizeof(memo[0]))].obj = obj;
        next++;
    }
    return tbl;
}

static int value_type(const ASN1_OBJECT *obj, const char *v, apr_size_t len)
{
    ASN1_STRING_TABLE *tbl = string_table(obj);
    unsigned long mask = ASN1_STRING_get_default_mask();
    long minsize = 0, maxsize = 0;
    apr_size_t i;
    int ascii = 1, printable = 1, t;

    if (tbl == NULL) {
        mask &= DIRSTRING_TYPE;
    }
    else {
        mask = (tbl->flags & STABLE_NO_MASK) ? tbl->mask : mask & tbl->mask;
        minsize = tbl->minsize;
        maxsize = tbl->maxsize;
    }
    for (i = 0; i < len && ascii; i++) {
        ascii = (unsigned char)v[i] < 0x80;
        printable = printable && printable_char((unsigned char)v[i]);
    }
    /* NumericString, the one type compared as encoded, is OpenSSL's. */
    if (ascii && !(mask & B_ASN1_NUMERICSTRING)) {
        if ((minsize > 0 && (long)len < minsize) ||
            (maxsize > 0 && (long)len > maxsize))
            return -1;
        /* Each of these compares as UTF-8, and all but PrintableString
         * hold any ASCII character. */
        if (mask & (B_ASN1_UTF8STRING | B_ASN1_T61STRING | B_ASN1_BMPSTRING |
                    B_ASN1_UNIVERSALSTRING | B_ASN1_IA5STRING))
            return V_ASN1_UTF8STRING;
        if ((mask & B_ASN1_PRINTABLESTRING) && printable)
            return V_ASN1_UTF8STRING;
    }
    t = ASN1_mbstring_ncopy(NULL, (const unsigned char *)v, (int)len,
                            MBSTRING_UTF8, mask, minsize, maxsize);
    return t > 0 ? t : -1;
}

/* The escape at c->s, \XX or \ and a special character: its byte, or -1
 * and *err. */
static int parse_escape(dn_cursor *c, const char **err)
{
    int hi = mtls_hex_digit(c->s[1]),
        lo = hi < 0 ? -1 : mtls_hex_digit(c->s[2]);
    int byte;
    if (hi >= 0 && lo >= 0) {
        byte = hi << 4 | lo;
        c->s += 3;
    }
    else if (c->s[1] && strchr(" \"#+,;<=>\\", c->s[1])) {
        byte = (unsigned char)c->s[1];
        c->s += 2;
    }
    else {
        *err = dn_err(c, "bad escape (use \\, \\+ \\\" \\\\ or \\XX)");
        return -1;
    }
    if (byte == 0) {
        *err = dn_err(c, "a NUL byte is not allowed in a value");
        return -1;
    }
    return byte;
}

static const char *parse_string_value(dn_cursor *c, const ASN1_OBJECT *obj)
{
    const char *e;
    char *buf;
    apr_size_t len = 0, keep = 0; /* keep: length without trailing spaces */
    int type;

    /* Allocate for this value, not for the rest of the DN: a DN of n
     * RDNs must not cost memory quadratic in its length. */
    for (e = c->s; *e && *e != ',' && *e != '+'; e++) {
        if (e[0] == '\\' && e[1])
            e++;
    }
    buf = apr_palloc(c->p, (apr_size_t)(e - c->s) + 1);

    while (*c->s && *c->s != ',' && *c->s != '+') {
        char ch = *c->s;
        if (ch == '\\') {
            const char *err = NULL;
            int byte = parse_escape(c, &err);
            if (byte < 0)
                return err;
            buf[len++] = (char)byte;
            keep = len;
            continue;
        }
        if (ch == '"' || ch == ';' || ch == '<' || ch == '>')
            return dn_err(
                c,
                apr_psprintf(c->p, "'%c' must be escaped as '\\%c'", ch, ch));
        buf[len++] = ch;
        if (ch != ' ')
            keep = len;
        c->s++;
    }
    if ((type = value_type(obj, buf, keep)) < 0) {
        if (keep == 0)
            return dn_err(c, "empty value not allowed for this attribute");
        return apr_psprintf(c->p,
                            "value '%s' is not valid UTF-8 or not allowed "
                            "for this attribute",
                            apr_pstrmemdup(c->p, buf, keep));
    }
    /* A NumericString's ASCII text is its encoding, and every other
     * type compares as this UTF-8. */
    if (!canon_add(&c->b, obj,
                   ASN1_tag2bit(type) & CANON_MASK ? V_ASN1_UTF8STRING : type,
                   (unsigned char *)buf, keep, c->new_rdn))
        return "cannot encode this DN";
    return NULL;
}

/* One RDN: its attributes, joined by '+'. */
static const char *parse_rdn(dn_cursor *c)
{
    c->new_rdn = 1;
    for (;;) {
        ASN1_OBJECT *obj = NULL;
        const char *err = parse_type(c, &obj);
        if (err == NULL) {
            if (*c->s == '#')
                err = parse_hex_value(c, obj);
            else
                err = parse_string_value(c, obj);
        }
        ASN1_OBJECT_free(obj);
        if (err)
            return err;
        if (*c->s != '+' && *c->s != ',' && *c->s != '\0')
            return dn_err(c, "expected ',' or '+' after a value");
        if (*c->s != '+')
            return NULL;
        c->s++;
        c->new_rdn = 0; /* the next attribute joins this RDN */
    }
}

/* The parse itself: scratch, messages and the key all in tmp. */
static const char *dn_parse_in(apr_pool_t *tmp, const char *text,
                               mtls_key_t *out)
{
    dn_cursor c;
    const char *err = NULL;

    c.p = tmp;
    c.s = c.start = text;
    canon_init(&c.b, c.p);
    skip_spaces(&c);
    if (*c.s == '/')
        err = "this looks like the legacy /C=../CN=.. form; write the DN "
              "in RFC 4514 form, e.g. CN=alice,O=Acme,C=US";
    else if (*c.s == '\0')
        err = "empty DN";

    while (err == NULL) {
        if ((err = parse_rdn(&c)) != NULL)
            break;
        if (*c.s == '\0')
            break;
        c.s++; /* ',' */
        skip_spaces(&c);
        if (*c.s == '\0')
            err = dn_err(&c, "empty RDN after ','");
    }
    if (err == NULL)
        *out = canon_finish(&c.b, tmp, 1);
    return err;
}

const char *mtls_dn_parse_tmp(apr_pool_t *tmp, const char *text,
                              mtls_key_t *out)
{
    return dn_parse_in(tmp, text, out);
}

const char *mtls_dn_parse(apr_pool_t *p, const char *text, mtls_key_t *out)
{
    apr_pool_t *tmp;
    mtls_key_t k;
    const char *err;

    /* Scratch in a subpool: only the key stays in p. */
    if (apr_pool_create(&tmp, p) != APR_SUCCESS)
        return "out of memory";
    err = dn_parse_in(tmp, text, &k);
    if (err == NULL) {
        out->data = apr_pmemdup(p, k.data, k.len);
        out->len = k.len;
    }
    else {
        err = apr_pstrdup(p, err);
    }
    apr_pool_destroy(tmp);
    return err;
}
