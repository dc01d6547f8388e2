/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* RFC 4514 string -> X509_NAME. OpenSSL 3 exports no such parser.
 *
 * The result is compared with X509_NAME_cmp, never as a string, so the
 * parser only has to get the structure right: which bytes belong to
 * which attribute of which RDN. */

#include <apr_strings.h>
#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <string.h>

#include "mtls_rules.h"

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

typedef struct {
    apr_pool_t *p;
    const char *s; /* cursor */
    const char *start;
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

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
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
        if (strcasecmp(type, dn_types[i].name) == 0)
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
        while (is_digit(*c->s) || *c->s == '.')
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

/* "#" hexstring: the BER encoding of the value (RFC 4514 2.4). */
static const char *parse_hex_value(dn_cursor *c, ASN1_OBJECT *obj,
                                   X509_NAME *name, int set)
{
    const char *b = ++c->s;
    unsigned char *der, *q;
    const unsigned char *dp;
    apr_size_t n, i;
    ASN1_TYPE *at;
    const char *err = NULL;

    while (hexval(*c->s) >= 0)
        c->s++;
    n = c->s - b;
    if (n == 0 || n % 2)
        return dn_err(c, "a '#' value needs an even number of hex digits");
    q = der = apr_palloc(c->p, n / 2);
    for (i = 0; i < n; i += 2)
        *q++ = (unsigned char)(hexval(b[i]) << 4 | hexval(b[i + 1]));
    dp = der;
    at = d2i_ASN1_TYPE(NULL, &dp, (long)(n / 2));
    if (at == NULL || dp != der + n / 2 || at->type == V_ASN1_SEQUENCE ||
        at->type == V_ASN1_SET || at->type == V_ASN1_BOOLEAN ||
        at->type == V_ASN1_NULL || at->type == V_ASN1_OBJECT) {
        err = dn_err(c, "a '#' value must be the BER encoding of a string");
    }
    else if (!X509_NAME_add_entry_by_OBJ(
                 name, obj, at->type, at->value.asn1_string->data,
                 at->value.asn1_string->length, -1, set)) {
        err = dn_err(c, "the '#' value is not allowed for this attribute");
    }
    ASN1_TYPE_free(at);
    skip_spaces(c);
    return err;
}

static const char *parse_string_value(dn_cursor *c, ASN1_OBJECT *obj,
                                      X509_NAME *name, int set)
{
    char *buf = apr_palloc(c->p, strlen(c->s) + 1);
    apr_size_t len = 0, keep = 0; /* keep: length without trailing spaces */

    while (*c->s && *c->s != ',' && *c->s != '+') {
        char ch = *c->s;
        if (ch == '\\') {
            int hi = hexval(c->s[1]), lo = hi < 0 ? -1 : hexval(c->s[2]);
            if (hi >= 0 && lo >= 0) {
                ch = (char)(hi << 4 | lo);
                c->s += 3;
            }
            else if (c->s[1] && strchr(" \"#+,;<=>\\", c->s[1])) {
                ch = c->s[1];
                c->s += 2;
            }
            else {
                return dn_err(c, "bad escape (use \\, \\+ \\\" \\\\ or \\XX)");
            }
            if (ch == '\0')
                return dn_err(c, "a NUL byte is not allowed in a value");
            buf[len++] = ch;
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
    if (!X509_NAME_add_entry_by_OBJ(name, obj, MBSTRING_UTF8,
                                    (unsigned char *)buf, (int)keep, -1, set)) {
        if (keep == 0)
            return dn_err(c, "empty value not allowed for this attribute");
        return apr_psprintf(c->p,
                            "value '%s' is not valid UTF-8 or not allowed "
                            "for this attribute",
                            apr_pstrmemdup(c->p, buf, keep));
    }
    return NULL;
}

/* Appends one RDN's attributes to rdn, the first one in a new set. */
static const char *parse_rdn(dn_cursor *c, X509_NAME *rdn)
{
    int set = 0;

    for (;;) {
        ASN1_OBJECT *obj = NULL;
        const char *err = parse_type(c, &obj);
        if (err == NULL) {
            if (*c->s == '#')
                err = parse_hex_value(c, obj, rdn, set);
            else
                err = parse_string_value(c, obj, rdn, set);
        }
        ASN1_OBJECT_free(obj);
        if (err)
            return err;
        if (*c->s != '+' && *c->s != ',' && *c->s != '\0')
            return dn_err(c, "expected ',' or '+' after a value");
        if (*c->s != '+')
            return NULL;
        c->s++;
        set = -1; /* the next attribute joins this RDN */
    }
}

static apr_status_t free_name(void *name)
{
    X509_NAME_free(name);
    return APR_SUCCESS;
}

const char *mtls_dn_parse(apr_pool_t *p, const char *text, X509_NAME **out)
{
    dn_cursor c = {p, text, text};
    apr_array_header_t *rdn_start = apr_array_make(p, 8, sizeof(int));
    X509_NAME *rdns = X509_NAME_new(), *name = NULL;
    const char *err = NULL;
    int i, j, n;

    skip_spaces(&c);
    if (*c.s == '/')
        err = "this looks like the legacy /C=../CN=.. form; write the DN "
              "in RFC 4514 form, e.g. CN=alice,O=Acme,C=US";
    else if (*c.s == '\0')
        err = "empty DN";
    else if (rdns == NULL)
        err = "out of memory";

    /* Parse in written order into rdns (one RDN per set), then copy the
     * RDNs in reverse: RFC 4514 writes the last RDN first. */
    while (err == NULL) {
        APR_ARRAY_PUSH(rdn_start, int) = X509_NAME_entry_count(rdns);
        if ((err = parse_rdn(&c, rdns)) != NULL)
            break;
        if (*c.s == '\0')
            break;
        c.s++; /* ',' */
        skip_spaces(&c);
        if (*c.s == '\0')
            err = dn_err(&c, "empty RDN after ','");
    }

    if (err == NULL && (name = X509_NAME_new()) == NULL)
        err = "out of memory";
    n = X509_NAME_entry_count(rdns);
    for (i = rdn_start->nelts - 1; err == NULL && i >= 0; i--) {
        int first = APR_ARRAY_IDX(rdn_start, i, int);
        for (j = first; j < n; j++) {
            if (!X509_NAME_add_entry(name, X509_NAME_get_entry(rdns, j), -1,
                                     j == first ? 0 : -1)) {
                err = "out of memory";
                break;
            }
        }
        n = first;
    }
    /* Encode now: X509_NAME_cmp would otherwise cache the canonical
     * form lazily, writing to a name that threads share. */
    if (err == NULL && i2d_X509_NAME(name, NULL) <= 0)
        err = "cannot encode this DN";
    X509_NAME_free(rdns);
    if (err) {
        X509_NAME_free(name);
        return err;
    }
    apr_pool_cleanup_register(p, name, free_name, apr_pool_cleanup_null);
    *out = name;
    return NULL;
}
