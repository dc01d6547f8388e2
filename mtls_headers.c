/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* MTLSForwardHeaders. See mtls_headers.h.
 *
 * Where the headers are the module's, a request meets it three times:
 * in header_parser (before any access check can refuse it, so that an
 * error document, which shares the request headers, never sees the
 * client's), in fixups with the request's outcome (mtls_access.c's
 * settle), and in the fixup re-checks just before mod_headers and last,
 * before mod_proxy's handler builds the backend's request. */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "mtls_conf.h"
#include "mtls_headers.h"

APLOG_USE_MODULE(mtls_authz);

/* The names as set, and as compared: lower case, '-' between words. */
static const char *const hdr_names[3] = {"Client-Cert", "Client-Cert-Chain",
                                         "X-Forwarded-Client-Cert"};
static const char *const hdr_lower[3] = {"client-cert", "client-cert-chain",
                                         "x-forwarded-client-cert"};
#define HDR_CERT 0
#define HDR_CHAIN 1
#define HDR_XFCC 2

static int mode_of(const request_rec *r)
{
    const mtls_dir_conf_t *dc =
        ap_get_module_config(r->per_dir_config, &mtls_authz_module);
    return dc ? mtls_dir_forward(dc) : MTLS_FWD_OFF;
}

int mtls_headers_scope(const request_rec *r)
{
    for (; r; r = r->prev ? r->prev : r->main) {
        if (mode_of(r) != MTLS_FWD_OFF)
            return 1;
    }
    return 0;
}

/* Is name (len bytes) want, ignoring case, '_' for '-' and trailing
 * blanks? WSGI, PHP and CGI-style backends read '-' and '_' alike. */
static int same_name(const char *name, apr_size_t len, const char *want)
{
    apr_size_t i;
    for (i = 0; *want; i++, want++) {
        char c;
        if (i >= len)
            return 0;
        c = (char)apr_tolower(name[i]);
        if ((c == '_' ? '-' : c) != *want)
            return 0;
    }
    for (; i < len; i++) {
        if (name[i] != ' ' && name[i] != '\t')
            return 0;
    }
    return 1;
}

static int lookalike_n(const char *name, apr_size_t len)
{
    int i;
    /* The first letter first: this runs over every request header. */
    if (len == 0 || ((name[0] | 0x20) != 'c' && (name[0] | 0x20) != 'x'))
        return 0;
    for (i = 0; i < 3; i++) {
        if (same_name(name, len, hdr_lower[i]))
            return 1;
    }
    return 0;
}

static int lookalike(const char *name)
{
    return name && lookalike_n(name, strlen(name));
}

/* Does value (a Connection header) name a lookalike? With out, also
 * sets *out to value without those names (NULL if nothing is left). */
static int connection_names(apr_pool_t *p, const char *value, char **out)
{
    const char *s = value;
    /* ", " between the names kept: at most twice the length. */
    char *kept = out ? apr_pcalloc(p, 2 * strlen(value) + 1) : NULL;
    int found = 0;

    while (*s) {
        const char *tok;
        apr_size_t len;
        while (*s == ',' || apr_isspace(*s))
            s++;
        tok = s;
        while (*s && *s != ',' && !apr_isspace(*s))
            s++;
        len = (apr_size_t)(s - tok);
        if (len && lookalike_n(tok, len))
            found = 1;
        else if (len && kept) {
            if (*kept)
                strcat(kept, ", ");
            strncat(kept, tok, len);
        }
    }
    if (out)
        *out = kept && *kept ? kept : NULL;
    return found;
}

/* mod_proxy removes from what it forwards every header that the
 * Connection header names (hop-by-hop): "Connection: Client-Cert" would
 * take the module's own away. Such names go from that header. */
static void strip_connection(request_rec *r)
{
    const apr_array_header_t *a = apr_table_elts(r->headers_in);
    apr_table_entry_t *e = (apr_table_entry_t *)a->elts;
    int i;
    for (i = 0; i < a->nelts; i++) {
        char *kept;
        if (e[i].key == NULL || strcasecmp(e[i].key, "Connection") != 0 ||
            e[i].val == NULL || !connection_names(r->pool, e[i].val, &kept))
            continue;
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "MTLSForwardHeaders: removed the names of its headers "
                      "from the request's Connection header");
        /* The value alone changes: the table's index is by name. */
        e[i].val = kept ? kept : "";
    }
}

/* Removes every lookalike, whoever set it (every header of that exact
 * name goes: this module's too, which the caller sets again). */
static void strip(request_rec *r)
{
    apr_table_t *t = r->headers_in;
    const apr_array_header_t *a = apr_table_elts(t);
    int i = 0;
    while (i < a->nelts) {
        const apr_table_entry_t *e = &APR_ARRAY_IDX(a, i, apr_table_entry_t);
        if (lookalike(e->key)) {
            if (APLOGrdebug(r))
                ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                              "MTLSForwardHeaders: removed the request "
                              "header '%s'",
                              ap_escape_logitem(r->pool, e->key));
            /* Every entry of that name goes; the rest moves down to i. */
            apr_table_unset(t, e->key);
        }
        else {
            i++;
        }
    }
    strip_connection(r);
}

int mtls_headers_early(request_rec *r)
{
    if (mtls_headers_scope(r))
        strip(r);
    return DECLINED;
}

/* ---- the values ------------------------------------------------------- */

static void put(request_rec *r, mtls_hdr_mark_t *mark, int which,
                const char *value)
{
    apr_table_setn(r->headers_in, hdr_names[which], value);
    mark->v[which] = value;
    mark->n++;
}

/* An RFC 8941 Byte Sequence of x's DER: ":base64:", or NULL. */
static const char *sf_binary(apr_pool_t *p, X509 *x)
{
    int len = i2d_X509(x, NULL), n;
    unsigned char *der, *q;
    char *out;
    if (len <= 0)
        return NULL;
    der = q = apr_palloc(p, (apr_size_t)len);
    if (i2d_X509(x, &q) != len)
        return NULL;
    out = apr_palloc(p, (apr_size_t)(4 * ((len + 2) / 3)) + 3);
    out[0] = ':';
    n = EVP_EncodeBlock((unsigned char *)out + 1, der, len);
    if (n <= 0)
        return NULL;
    out[n + 1] = ':';
    out[n + 2] = '\0';
    return out;
}

/* RFC 9440: Client-Cert, the certificate that admitted r; and
 * Client-Cert-Chain, the rest of the chain OpenSSL verified for it in
 * this connection's handshake, up to and including the trust anchor,
 * only where that is known (not after a session resumption). Never the
 * chain the client sent. */
static void set_rfc9440(request_rec *r, const mtls_conn_id_t *h,
                        mtls_hdr_mark_t *mark)
{
    STACK_OF(X509) *chain = mtls_conn_verified_chain(r, h);
    const char *leaf = sf_binary(r->pool, h->id->cert);
    apr_array_header_t *items;
    int i, n = chain ? sk_X509_num(chain) : 0;

    if (leaf == NULL)
        return;
    put(r, mark, HDR_CERT, leaf);
    if (n < 2)
        return;
    items = apr_array_make(r->pool, 2 * n, sizeof(const char *));
    for (i = 1; i < n; i++) {
        const char *item = sf_binary(r->pool, sk_X509_value(chain, i));
        if (item == NULL)
            return;
        if (i > 1)
            APR_ARRAY_PUSH(items, const char *) = ", ";
        APR_ARRAY_PUSH(items, const char *) = item;
    }
    put(r, mark, HDR_CHAIN, apr_array_pstrcat(r->pool, items, 0));
}

/* Printable ASCII only: the value becomes part of a request header. */
static int printable(const char *v, apr_size_t len)
{
    apr_size_t i;
    for (i = 0; i < len; i++) {
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] >= 0x7f)
            return 0;
    }
    return 1;
}

/* One XFCC value as Envoy writes it: double-quoted where it holds ',',
 * ';' or '=' (or always), with '"' escaped by a backslash; '\' is
 * escaped too, so that a quoted value reads back unambiguously. */
static const char *xfcc_value(apr_pool_t *p, const char *v, apr_size_t len,
                              int always)
{
    apr_size_t i, extra = 0;
    int quote = always;
    char *out, *o;
    for (i = 0; i < len; i++) {
        if (strchr(",;=\"\\", v[i]))
            quote = 1;
        if (v[i] == '"' || v[i] == '\\')
            extra++;
    }
    if (!quote)
        return apr_pstrmemdup(p, v, len);
    o = out = apr_palloc(p, len + extra + 3);
    *o++ = '"';
    for (i = 0; i < len; i++) {
        if (v[i] == '"' || v[i] == '\\')
            *o++ = '\\';
        *o++ = v[i];
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

/* ";URI=..." for each URI SAN, then ";DNS=..." for each DNS SAN, in the
 * certificate's order; values that are not printable ASCII (control
 * characters, NUL bytes) are left out, as from the variables. */
static void xfcc_sans(apr_pool_t *p, const mtls_identity_t *id, int type,
                      const char *key, apr_array_header_t *parts)
{
    int i;
    for (i = 0; id->sans && i < id->sans->nelts; i++) {
        const mtls_san_t *s = &APR_ARRAY_IDX(id->sans, i, mtls_san_t);
        if (s->type != type || s->len == 0 || !printable(s->v, s->len))
            continue;
        APR_ARRAY_PUSH(parts, const char *) = key;
        APR_ARRAY_PUSH(parts, const char *) = xfcc_value(p, s->v, s->len, 0);
    }
}

/* Envoy's X-Forwarded-Client-Cert, one element: Hash (the SHA-256 of the
 * certificate, hex), Subject (RFC 4514, always quoted), URI and DNS. */
static void set_xfcc(request_rec *r, const mtls_conn_id_t *h,
                     mtls_hdr_mark_t *mark)
{
    apr_pool_t *p = r->pool;
    const mtls_identity_t *id = h->id;
    apr_array_header_t *parts = apr_array_make(p, 16, sizeof(const char *));
    unsigned char buf[MTLS_FP_LEN];
    const unsigned char *fp = mtls_identity_cert_fp(id, buf);
    const char *subject = mtls_identity_subject_text(p, id);

    if (fp == NULL)
        return;
    APR_ARRAY_PUSH(parts, const char *) = "Hash=";
    APR_ARRAY_PUSH(parts, const char *) = mtls_fp_hex(p, fp);
    if (printable(subject, strlen(subject))) {
        APR_ARRAY_PUSH(parts, const char *) = ";Subject=";
        APR_ARRAY_PUSH(parts, const char *) =
            xfcc_value(p, subject, strlen(subject), 1);
    }
    xfcc_sans(p, id, GEN_URI, ";URI=", parts);
    xfcc_sans(p, id, GEN_DNS, ";DNS=", parts);
    put(r, mark, HDR_XFCC, apr_array_pstrcat(p, parts, 0));
}

void mtls_headers_settle(request_rec *r, const mtls_conn_id_t *h,
                         mtls_hdr_mark_t *mark)
{
    int mode;
    memset(mark, 0, sizeof(*mark));
    if (!mtls_headers_scope(r))
        return;
    strip(r);
    mode = mode_of(r);
    if (h == NULL || h->unverified || !h->id->full || mode == MTLS_FWD_OFF)
        return;
    if (mode == MTLS_FWD_RFC9440)
        set_rfc9440(r, h, mark);
    else
        set_xfcc(r, h, mark);
}

/* Is e a header that mark recorded, name and value? */
static int ours(const mtls_hdr_mark_t *mark, const apr_table_entry_t *e)
{
    int i;
    for (i = 0; i < 3; i++) {
        if (mark->v[i] && e->key == hdr_names[i] && e->val == mark->v[i])
            return 1;
    }
    return 0;
}

int mtls_headers_intact(const request_rec *r, const mtls_hdr_mark_t *mark)
{
    const apr_array_header_t *a;
    const apr_table_entry_t *e;
    int i, n = 0;

    if (mark->n == 0 && !mtls_headers_scope(r))
        return 1;
    a = apr_table_elts(r->headers_in);
    e = (const apr_table_entry_t *)a->elts;
    for (i = 0; i < a->nelts; i++) {
        if (ours(mark, &e[i]))
            n++;
        else if (lookalike(e[i].key))
            return 0;
        else if (e[i].key && e[i].val &&
                 strcasecmp(e[i].key, "Connection") == 0 &&
                 connection_names(r->pool, e[i].val, NULL))
            return 0;
    }
    return n == mark->n;
}
