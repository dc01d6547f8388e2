/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Certificate to identity: the keys a client certificate is matched by.
 * See mtls_identity.h. */

#include <apr_strings.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "mtls_dn.h"
#include "mtls_identity.h"

static apr_status_t free_cert(void *cert)
{
    X509_free(cert);
    return APR_SUCCESS;
}

static void id_add_key(mtls_identity_t *id, mtls_key_t k)
{
    if (apr_hash_get(id->keyset, k.data, k.len))
        return;
    apr_hash_set(id->keyset, k.data, k.len, "");
    APR_ARRAY_PUSH(id->keys, mtls_key_t) = k;
}

/* May a prefix rule match this URI? Not if it holds a "." or ".." path
 * segment, a percent-escape, a backslash or a semicolon: "ns/prod/../admin",
 * "ns/prod/%2e%2e/admin" or "ns/prod/..;/admin" (a path parameter, which
 * Java servlet containers drop) is below "ns/prod" as a string but not
 * as a path, to whoever normalises it later. SPIFFE IDs hold none of
 * them. Exact URI rules still compare the whole string. */
static int uri_prefix_safe(const char *v, apr_size_t len)
{
    apr_size_t i;
    for (i = 0; i < len; i++) {
        apr_size_t n;
        if (v[i] == '%' || v[i] == '\\' || v[i] == ';')
            return 0;
        if (v[i] != '/')
            continue;
        for (n = 0; i + 1 + n < len && v[i + 1 + n] == '.'; n++)
            ;
        if ((n == 1 || n == 2) && (i + 1 + n == len || v[i + 1 + n] == '/'))
            return 0;
    }
    return 1;
}

static void id_add_uri(apr_pool_t *p, mtls_identity_t *id, const char *v,
                       apr_size_t len)
{
    mtls_key_t *u;
    id_add_key(id, mtls_key_make(p, MTLS_K_URI, v, len));
    if (!uri_prefix_safe(v, len))
        return;
    u = apr_array_push(id->uris);
    u->data = v;
    u->len = len;
}

int mtls_sans_each(X509 *cert, mtls_san_fn *fn, void *baton)
{
    int crit = -1, i;
    GENERAL_NAMES *gens;

    /* A malformed extension leaves errors on OpenSSL's per-thread queue. */
    ERR_set_mark();
    gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    ERR_pop_to_mark();
    if (gens == NULL)
        return crit == -1 ? 0 : -1; /* -1: absent; else bad or repeated */
    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const ASN1_STRING *s = NULL;

        /* Only these four types are strings; the others (dirName,
         * otherName, ...) are structures. */
        if (g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI ||
            g->type == GEN_IPADD)
            s = GENERAL_NAME_get0_value(g, NULL);
        fn(baton, g->type, s ? ASN1_STRING_get0_data(s) : NULL,
           s ? (apr_size_t)ASN1_STRING_length(s) : 0);
    }
    GENERAL_NAMES_free(gens);
    return 1;
}

const char *mtls_san_ip_text(const unsigned char *v, apr_size_t len, char *buf,
                             apr_size_t size)
{
    int af = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
    return af ? inet_ntop(af, v, buf, (socklen_t)size) : NULL;
}

typedef struct {
    apr_pool_t *p;
    mtls_identity_t *id;
} san_baton;

static void id_add_san(void *baton, int type, const unsigned char *data,
                       apr_size_t len)
{
    san_baton *b = baton;
    apr_pool_t *p = b->p;
    mtls_identity_t *id = b->id;
    const char *v;
    mtls_san_t *san;

    if (data == NULL)
        return;
    /* Copied: the identity outlives the decoded extension. */
    v = apr_pstrmemdup(p, (const char *)data, len);
    san = apr_array_push(id->sans);
    san->type = type;
    san->v = v;
    san->len = len;
    if (type == GEN_IPADD) {
        if (len == 4)
            id_add_key(id, mtls_key_make(p, MTLS_K_IP4, v, 4));
        else if (len == 16)
            id_add_key(id, mtls_key_make(p, MTLS_K_IP6, v, 16));
        return;
    }
    if (len == 0 || memchr(v, '\0', len))
        return; /* a NUL byte never matches */
    if (type == GEN_DNS)
        id_add_key(id, mtls_key_dns(p, v, len));
    else if (type == GEN_EMAIL)
        id_add_key(id, mtls_key_email(p, v, len));
    else
        id_add_uri(p, id, v, len);
}

/* The trusted certificates that really issued cert: same name, key
 * identifiers and usage (X509_check_issued) and a valid signature.
 * Looked up in the trust store, never in what the client sent, so the
 * answer is the same after session resumption. */
static void id_add_issuers(apr_pool_t *p, mtls_identity_t *id, X509 *cert,
                           X509_STORE *store)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *cands = NULL;
    unsigned char *fps;
    int i;

    if (ctx && X509_STORE_CTX_init(ctx, store, cert, NULL))
        cands = X509_STORE_CTX_get1_certs(ctx, X509_get_issuer_name(cert));
    if (cands) {
        fps = apr_palloc(p, MTLS_FP_LEN * (apr_size_t)sk_X509_num(cands));
        for (i = 0; i < sk_X509_num(cands); i++) {
            X509 *ca = sk_X509_value(cands, i);
            unsigned char *fp = fps + MTLS_FP_LEN * id->n_issuers;
            unsigned int n = 0;
            EVP_PKEY *key = X509_get0_pubkey(ca);
            if (ca == cert || key == NULL ||
                X509_check_issued(ca, cert) != X509_V_OK ||
                X509_verify(cert, key) != 1 ||
                !X509_digest(ca, EVP_sha256(), fp, &n) || n != MTLS_FP_LEN)
                continue;
            id->n_issuers++;
            id_add_key(id, mtls_key_make(p, MTLS_K_ISSUER, fp, MTLS_FP_LEN));
        }
        id->issuer_fps = fps;
        sk_X509_pop_free(cands, X509_free);
    }
    X509_STORE_CTX_free(ctx);
}

static const char *name_text(apr_pool_t *p, const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    const char *text = "";
    char *data;
    long n;
    if (b == NULL)
        return text;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0 &&
        (n = BIO_get_mem_data(b, &data)) > 0)
        text = apr_pstrmemdup(p, data, (apr_size_t)n);
    BIO_free(b);
    return text;
}

/* Everything matching needs: subject and certificate keys, SANs and the
 * trusted issuers. */
static void add_full_identity(apr_pool_t *p, mtls_identity_t *id, X509 *cert,
                              X509_STORE *store)
{
    unsigned int n = 0;

    if (mtls_name_key(p, id->subject, &id->subject_key))
        id_add_key(id, mtls_key_subject_index(p, &id->subject_key));
    if (X509_digest(cert, EVP_sha256(), id->cert_fp, &n) && n == MTLS_FP_LEN)
        id_add_key(id, mtls_key_make(p, MTLS_K_CERT, id->cert_fp, MTLS_FP_LEN));
    {
        san_baton b = {p, id};
        id->san_malformed = mtls_sans_each(cert, id_add_san, &b) < 0;
    }
    if (store)
        id_add_issuers(p, id, cert, store);
}

mtls_identity_t *mtls_identity_build(apr_pool_t *p, X509 *cert,
                                     X509_STORE *store, int full)
{
    mtls_identity_t *id = apr_pcalloc(p, sizeof(*id));

    /* A forged CA's bad signature or a malformed SAN leaves errors on
     * OpenSSL's per-thread queue; leave it as it was found. */
    ERR_set_mark();
    X509_up_ref(cert);
    apr_pool_cleanup_register(p, cert, free_cert, apr_pool_cleanup_null);
    id->cert = cert;
    id->keys = apr_array_make(p, 8, sizeof(mtls_key_t));
    id->keyset = apr_hash_make(p);
    id->uris = apr_array_make(p, 1, sizeof(mtls_key_t));
    id->sans = apr_array_make(p, 4, sizeof(mtls_san_t));
    id->subject = X509_get_subject_name(cert);
    id->subject_text = name_text(p, id->subject);
    if (full) {
        id->full = 1;
        add_full_identity(p, id, cert, store);
    }
    ERR_pop_to_mark();
    return id;
}
