/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Certificate to identity: the keys a client certificate is matched by.
 * See mtls_identity.h. */

#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
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

/* The exact key of a DNS SAN and a suffix key for each domain above it:
 * "a.b.example" is below "b.example" and "example". A name with an empty
 * label ("a..b", ".b") is below nothing: which label would be the one
 * below the domain is not clear. The work is bounded by the labels. */
static void id_add_dns(apr_pool_t *p, mtls_identity_t *id, const char *v,
                       apr_size_t len)
{
    mtls_key_t k = mtls_key_dns(p, v, len);
    const char *name = k.data + 1;
    apr_size_t n = k.len - 1, i;

    id_add_key(id, k);
    if (n == 0 || name[0] == '.' || name[n - 1] == '.' ||
        memchr(name, '.', n) == NULL)
        return;
    for (i = 1; i + 1 < n; i++) {
        if (name[i] == '.' && name[i + 1] == '.')
            return;
    }
    for (i = 1; i + 1 < n; i++) {
        if (name[i] == '.')
            id_add_key(id, mtls_key_make(p, MTLS_K_DNS_SUFFIX, name + i + 1,
                                         n - i - 1));
    }
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
        id_add_dns(p, id, v, len);
    else if (type == GEN_EMAIL)
        id_add_key(id, mtls_key_email(p, v, len));
    else
        id_add_uri(p, id, v, len);
}

/* ---- the SHA-256 digest ------------------------------------------------- */

/* EVP_sha256() is a legacy method without a provider: each digest with
 * it fetches the provider's implementation again. */
static EVP_MD *fetched_sha256;

void mtls_identity_process_init(void)
{
    if (fetched_sha256 == NULL)
        fetched_sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

const EVP_MD *mtls_sha256(void)
{
    return fetched_sha256 ? fetched_sha256 : EVP_sha256();
}

/* X509_digest's value, without its test for a cached SHA-1 (a name
 * lookup) on every call. */
static int cert_digest(const X509 *x, unsigned char *fp)
{
    unsigned char *der = NULL;
    unsigned int n = 0;
    int len = i2d_X509(x, &der);
    int ok = len > 0 &&
             EVP_Digest(der, (size_t)len, fp, &n, mtls_sha256(), NULL) &&
             n == MTLS_FP_LEN;
    OPENSSL_free(der);
    return ok;
}

/* ---- the issuer cache ------------------------------------------------------
 */

#define ICACHE_WAYS 4

typedef struct {
    const void *store; /* NULL: free */
    unsigned char leaf[MTLS_FP_LEN];
    int n;
    unsigned char fps[MTLS_ISSUER_CACHE_MAX * MTLS_FP_LEN];
} icache_entry;

struct mtls_issuer_cache {
    icache_entry *e;   /* nsets * ICACHE_WAYS */
    unsigned char *rr; /* per set: the way to replace next */
    apr_size_t nsets;  /* a power of two */
#if APR_HAS_THREADS
    apr_thread_mutex_t *mutex;
#endif
};

static apr_status_t icache_free(void *data)
{
    mtls_issuer_cache_t *c = data;
    free(c->e);
    free(c->rr);
    return APR_SUCCESS;
}

mtls_issuer_cache_t *mtls_issuer_cache_create(apr_pool_t *p, apr_size_t entries)
{
    mtls_issuer_cache_t *c = apr_pcalloc(p, sizeof(*c));
    apr_size_t nsets = 1;

    while (nsets * ICACHE_WAYS < entries && nsets < ((apr_size_t)1 << 24))
        nsets <<= 1;
    c->nsets = nsets;
#if APR_HAS_THREADS
    if (apr_thread_mutex_create(&c->mutex, APR_THREAD_MUTEX_DEFAULT, p) !=
        APR_SUCCESS)
        return NULL;
#endif
    c->e = calloc(nsets * ICACHE_WAYS, sizeof(icache_entry));
    c->rr = calloc(nsets, 1);
    if (c->e == NULL || c->rr == NULL) {
        free(c->e);
        free(c->rr);
        return NULL;
    }
    apr_pool_cleanup_register(p, c, icache_free, apr_pool_cleanup_null);
    return c;
}

/* The set of (store, leaf): the digest's bytes are uniform, the store
 * only separates configurations that share a certificate. */
static icache_entry *icache_set(mtls_issuer_cache_t *c, const void *store,
                                const unsigned char *leaf)
{
    apr_size_t h;
    apr_uintptr_t s = (apr_uintptr_t)store;
    memcpy(&h, leaf, sizeof(h));
    h ^= (apr_size_t)(s >> 4);
    return c->e + (h & (c->nsets - 1)) * ICACHE_WAYS;
}

static void icache_lock(mtls_issuer_cache_t *c)
{
#if APR_HAS_THREADS
    apr_thread_mutex_lock(c->mutex);
#else
    (void)c;
#endif
}

static void icache_unlock(mtls_issuer_cache_t *c)
{
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(c->mutex);
#else
    (void)c;
#endif
}

int mtls_issuer_cache_get(mtls_issuer_cache_t *c, const void *store,
                          const unsigned char *leaf_fp, unsigned char *fps)
{
    icache_entry *set;
    int i, n = -1;

    if (c == NULL || store == NULL)
        return -1;
    icache_lock(c);
    set = icache_set(c, store, leaf_fp);
    for (i = 0; i < ICACHE_WAYS; i++) {
        if (set[i].store == store &&
            memcmp(set[i].leaf, leaf_fp, MTLS_FP_LEN) == 0) {
            n = set[i].n;
            memcpy(fps, set[i].fps, (apr_size_t)n * MTLS_FP_LEN);
            break;
        }
    }
    icache_unlock(c);
    return n;
}

void mtls_issuer_cache_put(mtls_issuer_cache_t *c, const void *store,
                           const unsigned char *leaf_fp,
                           const unsigned char *fps, int n)
{
    icache_entry *set, *slot = NULL;
    int i;

    if (c == NULL || store == NULL || n < 0 || n > MTLS_ISSUER_CACHE_MAX)
        return;
    icache_lock(c);
    set = icache_set(c, store, leaf_fp);
    for (i = 0; i < ICACHE_WAYS && slot == NULL; i++)
        if (set[i].store == store &&
            memcmp(set[i].leaf, leaf_fp, MTLS_FP_LEN) == 0)
            slot = &set[i];
    for (i = 0; i < ICACHE_WAYS && slot == NULL; i++)
        if (set[i].store == NULL)
            slot = &set[i];
    if (slot == NULL) {
        apr_size_t si = (apr_size_t)(set - c->e) / ICACHE_WAYS;
        slot = &set[c->rr[si]];
        c->rr[si] = (unsigned char)((c->rr[si] + 1) % ICACHE_WAYS);
    }
    slot->store = store;
    memcpy(slot->leaf, leaf_fp, MTLS_FP_LEN);
    slot->n = n;
    if (n > 0)
        memcpy(slot->fps, fps, (apr_size_t)n * MTLS_FP_LEN);
    icache_unlock(c);
}

void mtls_issuer_cache_stats(mtls_issuer_cache_t *c, apr_size_t *used,
                             apr_size_t *slots)
{
    apr_size_t i;
    *used = 0;
    *slots = c->nsets * ICACHE_WAYS;
    icache_lock(c);
    for (i = 0; i < *slots; i++)
        if (c->e[i].store)
            (*used)++;
    icache_unlock(c);
}

/* ---- issuers ------------------------------------------------------------ */

static void id_set_issuers(apr_pool_t *p, mtls_identity_t *id,
                           const unsigned char *fps, int n)
{
    int i;
    id->n_issuers = n;
    id->issuer_fps =
        n ? apr_pmemdup(p, fps, (apr_size_t)n * MTLS_FP_LEN) : apr_palloc(p, 1);
    for (i = 0; i < n; i++)
        id_add_key(id, mtls_key_make(p, MTLS_K_ISSUER,
                                     id->issuer_fps + i * MTLS_FP_LEN,
                                     MTLS_FP_LEN));
}

/* The trusted certificates that really issued cert: same name, key
 * identifiers and usage (X509_check_issued) and a valid signature.
 * Looked up in the trust store, never in what the client sent, so the
 * answer is the same after session resumption. Returns 0 if the store
 * could not be asked (no memory): an answer not to remember. */
static int id_add_issuers(apr_pool_t *p, mtls_identity_t *id, X509 *cert,
                          X509_STORE *store)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *cands = NULL;
    unsigned char *fps;
    int i, asked;

    if (ctx && X509_STORE_CTX_init(ctx, store, cert, NULL))
        cands = X509_STORE_CTX_get1_certs(ctx, X509_get_issuer_name(cert));
    asked = cands != NULL;
    if (cands) {
        fps = apr_palloc(p, MTLS_FP_LEN * (apr_size_t)sk_X509_num(cands) + 1);
        for (i = 0; i < sk_X509_num(cands); i++) {
            X509 *ca = sk_X509_value(cands, i);
            unsigned char *fp = fps + MTLS_FP_LEN * id->n_issuers;
            EVP_PKEY *key = X509_get0_pubkey(ca);
            if (ca == cert || key == NULL ||
                X509_check_issued(ca, cert) != X509_V_OK ||
                X509_verify(cert, key) != 1 || !cert_digest(ca, fp))
                continue;
            id->n_issuers++;
            id_add_key(id, mtls_key_make(p, MTLS_K_ISSUER, fp, MTLS_FP_LEN));
        }
        id->issuer_fps = fps;
        sk_X509_pop_free(cands, X509_free);
    }
    X509_STORE_CTX_free(ctx);
    return asked;
}

/* The issuers from the hint, the cache or the store, in that order; the
 * cache is keyed on the leaf's digest, so it needs cert_fp. */
static void find_issuers(apr_pool_t *p, mtls_identity_t *id, X509 *cert,
                         X509_STORE *store, int have_fp,
                         const mtls_issuer_hint_t *hint)
{
    mtls_issuer_cache_t *cache = hint && have_fp ? hint->cache : NULL;
    unsigned char fps[MTLS_ISSUER_CACHE_MAX * MTLS_FP_LEN];
    int n;

    if (hint && hint->issuer_fp) {
        id_set_issuers(p, id, hint->issuer_fp, 1);
        id->issuers_from = MTLS_ISSUERS_CHAIN;
        mtls_issuer_cache_put(cache, store, id->cert_fp, hint->issuer_fp, 1);
        return;
    }
    n = mtls_issuer_cache_get(cache, store, id->cert_fp, fps);
    if (n >= 0) {
        id_set_issuers(p, id, fps, n);
        id->issuers_from = MTLS_ISSUERS_CACHE;
        return;
    }
    /* None found is not remembered: it costs no signature check, and a
     * CA added to an SSLCACertificatePath directory is found later. */
    id->issuers_from = MTLS_ISSUERS_STORE;
    if (id_add_issuers(p, id, cert, store) && id->n_issuers > 0)
        mtls_issuer_cache_put(cache, store, id->cert_fp, id->issuer_fps,
                              id->n_issuers);
}

const unsigned char *mtls_identity_cert_fp(const mtls_identity_t *id,
                                           unsigned char buf[MTLS_FP_LEN])
{
    if (id->has_cert_fp)
        return id->cert_fp;
    return cert_digest(id->cert, buf) ? buf : NULL;
}

const char *mtls_identity_subject_text(apr_pool_t *p, const mtls_identity_t *id)
{
    BIO *b;
    const char *text = "";
    char *data;
    long n;

    /* The print leaves errors on OpenSSL's per-thread queue if it fails. */
    ERR_set_mark();
    b = BIO_new(BIO_s_mem());
    if (b != NULL) {
        if (X509_NAME_print_ex(b, id->subject, 0, XN_FLAG_RFC2253) >= 0 &&
            (n = BIO_get_mem_data(b, &data)) > 0)
            text = apr_pstrmemdup(p, data, (apr_size_t)n);
        BIO_free(b);
    }
    ERR_pop_to_mark();
    return text;
}

/* The serial number's key, for MTLSDeny issuer= serial=: '-' for a
 * negative one, then the magnitude without leading zero bytes. */
static void id_add_serial(apr_pool_t *p, mtls_identity_t *id, X509 *cert)
{
    const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
    const unsigned char *d;
    unsigned char *k;
    int len, n = 0;

    if (sn == NULL || (len = ASN1_STRING_length(sn)) < 0)
        return;
    d = ASN1_STRING_get0_data(sn);
    while (len > 0 && *d == 0) {
        d++;
        len--;
    }
    k = apr_palloc(p, (apr_size_t)len + 2);
    k[n++] = MTLS_K_SERIAL;
    if (ASN1_STRING_type(sn) == V_ASN1_NEG_INTEGER)
        k[n++] = '-';
    memcpy(k + n, d, (apr_size_t)len);
    id_add_key(id, (mtls_key_t){(const char *)k, (apr_size_t)(n + len)});
}

/* Everything matching needs: subject and certificate keys, SANs, the
 * serial number and the trusted issuers. */
static void add_full_identity(apr_pool_t *p, mtls_identity_t *id, X509 *cert,
                              X509_STORE *store, const mtls_issuer_hint_t *hint)
{
    int have_fp = 0;

    if (mtls_name_key(p, id->subject, &id->subject_key))
        id_add_key(id, mtls_key_subject_index(p, &id->subject_key));
    /* A digest of the whole certificate is a fifth of what a new
     * connection costs the module: only for cert= rules, or to look the
     * issuers up in the cache. */
    if (!(hint && hint->no_cert_key && hint->issuer_fp)) {
        have_fp = cert_digest(cert, id->cert_fp);
        if (have_fp) {
            id->has_cert_fp = 1;
            id_add_key(id,
                       mtls_key_make(p, MTLS_K_CERT, id->cert_fp, MTLS_FP_LEN));
        }
    }
    {
        san_baton b = {p, id};
        id->san_malformed = mtls_sans_each(cert, id_add_san, &b) < 0;
    }
    id_add_serial(p, id, cert);
    if (store)
        find_issuers(p, id, cert, store, have_fp, hint);
}

mtls_identity_t *mtls_identity_build_ex(apr_pool_t *p, X509 *cert,
                                        X509_STORE *store, int full,
                                        const mtls_issuer_hint_t *hint)
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
    if (full) {
        id->full = 1;
        add_full_identity(p, id, cert, store, hint);
    }
    ERR_pop_to_mark();
    return id;
}

mtls_identity_t *mtls_identity_build(apr_pool_t *p, X509 *cert,
                                     X509_STORE *store, int full)
{
    return mtls_identity_build_ex(p, cert, store, full, NULL);
}
