/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Rule parsing, rule compilation into hash indexes, and matching. See
 * mtls_rules.h. */

#include <apr_lib.h>
#include <apr_network_io.h>
#include <apr_strings.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <sys/mman.h>

#include "mtls_dn.h"
#include "mtls_identity.h"
#include "mtls_rules.h"
#include "mtls_time.h"

/* Rules indexed by one key each. URI prefixes are kept apart, keyed by
 * the raw prefix, so that a certificate's URI can be probed at each '/'
 * without copying it. DNS suffix keys are in exact: the identity holds
 * one per label suffix of its names. Network keys are too, and the
 * distinct prefix lengths that they hold bound the probes for each IP
 * SAN. */
typedef struct {
    apr_hash_t *exact;     /* key -> mtls_rule_t chain */
    apr_hash_t *prefixes;  /* URI prefix (no tag) -> mtls_rule_t chain */
    apr_size_t max_prefix; /* the longest prefix bounds the probes */
    unsigned char lens4[32], lens6[128]; /* network prefix lengths, */
    int n_lens4, n_lens6;                /* longest first, distinct */
} mtls_index_t;

typedef struct {
    mtls_rule_t *base;
    int n, cap;
} rule_slab_t;

struct mtls_ruleset {
    /* The one-field directives (MTLSAllowSubject/SAN) form one rule:
     * the subject or a SAN in `names`. */
    mtls_index_t names;
    /* MTLSAllowIssuerFingerprint: a gate over every rule of the scope,
     * the one-field rule and each MTLSAllow line alike. With no other
     * rule in the scope it admits every client of those CAs. */
    apr_hash_t *issuers;      /* 'F'+fp -> mtls_rule_t (issuer only) */
    mtls_rule_t *issuer_rule; /* first issuer directive, for reporting */
    /* Each MTLSAllow line, indexed under one of its own keys. */
    mtls_index_t rules;
    int n_rules;              /* MTLSAllow lines */
    int pins_certs;           /* some MTLSAllow line has cert= */
    apr_hash_t *fps;          /* interned fingerprints */
    apr_hash_t *rule_issuers; /* fp -> first MTLSAllow rule with issuer=fp */
    /* The last issuer= texts parsed and their interned fingerprints:
     * rule files repeat a few pins on every line. */
    struct {
        char text[80];
        const unsigned char *fp;
    } pins_seen[4];
    unsigned pins_next;
    int deny; /* MTLSDeny rules: serial= allowed */
    /* The time-boxed rules (mtls_rule_t *), and once finished the sorted
     * distinct instants at which one starts or ends. */
    apr_array_header_t *windowed;
    apr_time_t *bounds;
    int n_bounds, finished;
    /* Every rule in the order made, in slabs of their own (rule_slab_t),
     * so that a rule's place can be told from its address. */
    apr_array_header_t *rule_slabs;
    int n_all;
    /* The rules' keys and sources, packed into slabs from the ruleset's
     * pool (see arena_get). */
    apr_pool_t *pool;
    char *arena;
    apr_size_t arena_left, slab;
};

/* DNS, email and URI SANs are IA5Strings: printable ASCII here. */
static const char *check_ia5(apr_pool_t *p, const char *what, const char *v)
{
    const unsigned char *s;
    if (*v == '\0')
        return apr_psprintf(p, "empty %s value", what);
    for (s = (const unsigned char *)v; *s; s++) {
        if (*s <= 0x20 || *s >= 0x7f)
            return apr_psprintf(p,
                                "%s value '%s' has a space, control or "
                                "non-ASCII character (use its ASCII form)",
                                what, v);
    }
    return NULL;
}

/* ".partner.example": names strictly below partner.example. */
static const char *dns_suffix_parse(apr_pool_t *p, const char *v,
                                    apr_size_t vlen, mtls_key_t *out)
{
    const char *d = v + 1;
    apr_size_t n = vlen - 1;

    if (n > 1 && d[n - 1] == '.')
        n--; /* one trailing dot, as for an exact name */
    if (n == 0 || d[0] == '.' || d[n - 1] == '.' ||
        strstr(apr_pstrmemdup(p, d, n), "..") != NULL)
        return apr_psprintf(p,
                            "'%s': a DNS suffix is a dot and a domain "
                            "with no empty label, as .partner.example",
                            v);
    *out = mtls_key_dns_suffix(p, d, n);
    return NULL;
}

/* The prefix length after '/': decimal digits, no sign, no leading zero,
 * at most max; or -1. */
static int prefix_len(const char *s, int max)
{
    int n = 0;
    if (*s == '\0' || (s[0] == '0' && s[1] != '\0'))
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || (n = n * 10 + (*s - '0')) > max)
            return -1;
    }
    return n;
}

/* An address, or a network "addr/len" with no host bits set. A /32 or
 * /128 network is that one address. */
static const char *ip_parse(apr_pool_t *p, const char *v, mtls_key_t *out)
{
    const char *slash = strchr(v, '/');
    const char *addr = slash ? apr_pstrmemdup(p, v, slash - v) : v;
    unsigned char a[16];
    char net[MTLS_NET_KEY_MAX];
    apr_size_t alen = 4, nlen;
    int bits;

    if (inet_pton(AF_INET, addr, a) != 1) {
        alen = 16;
        if (inet_pton(AF_INET6, addr, a) != 1)
            return apr_psprintf(p, "'%s' is not an IPv4 or IPv6 %s", v,
                                slash ? "network" : "address");
    }
    bits = slash ? prefix_len(slash + 1, (int)(8 * alen)) : (int)(8 * alen);
    if (bits < 0)
        return apr_psprintf(p, "'%s': the prefix length must be 0 to %d", v,
                            (int)(8 * alen));
    if (bits == (int)(8 * alen)) {
        *out = mtls_key_make(p, alen == 4 ? MTLS_K_IP4 : MTLS_K_IP6, a, alen);
        return NULL;
    }
    nlen = mtls_key_net(net, a, alen, (unsigned)bits);
    if (memcmp(net + 2, a, alen) != 0) {
        char buf[INET6_ADDRSTRLEN];
        return apr_psprintf(
            p, "'%s' has host bits set; the network is %s/%d", v,
            mtls_san_ip_text((unsigned char *)net + 2, alen, buf, sizeof(buf)),
            bits);
    }
    *out = mtls_key_make(p, net[0], net + 1, nlen - 1);
    return NULL;
}

const char *mtls_san_parse(apr_pool_t *p, const char *text, mtls_key_t *out)
{
    const char *colon = strchr(text, ':'), *v, *err;
    apr_size_t tlen, vlen;

    if (colon == NULL)
        return apr_psprintf(p,
                            "'%s': expected <type>:<value> with type DNS, "
                            "email, URI or IP",
                            text);
    tlen = colon - text;
    v = colon + 1;
    vlen = strlen(v);
    if (tlen == 3 && strncasecmp(text, "DNS", 3) == 0) {
        if ((err = check_ia5(p, "DNS", v)) != NULL)
            return err;
        if (strcmp(v, ".") == 0)
            return "'.' is not a DNS name";
        if (v[0] == '.')
            return dns_suffix_parse(p, v, vlen, out);
        *out = mtls_key_dns(p, v, vlen);
        return NULL;
    }
    if (tlen == 5 && strncasecmp(text, "email", 5) == 0) {
        const char *at = strrchr(v, '@');
        if ((err = check_ia5(p, "email", v)) != NULL)
            return err;
        if (at == NULL || at == v || at[1] == '\0')
            return apr_psprintf(p, "'%s' is not an email address", v);
        *out = mtls_key_email(p, v, vlen);
        return NULL;
    }
    if (tlen == 3 && strncasecmp(text, "URI", 3) == 0) {
        if ((err = check_ia5(p, "URI", v)) != NULL)
            return err;
        if (vlen >= 2 && strcmp(v + vlen - 2, "/*") == 0) {
            if (vlen == 2)
                return "a URI prefix needs something before '/*'";
            *out = mtls_key_make(p, MTLS_K_URI_PREFIX, v, vlen - 2);
        }
        else {
            *out = mtls_key_make(p, MTLS_K_URI, v, vlen);
        }
        return NULL;
    }
    if (tlen == 2 && strncasecmp(text, "IP", 2) == 0)
        return ip_parse(p, v, out);
    return apr_psprintf(p,
                        "unknown SAN type '%.*s' (use DNS, email, URI or IP)",
                        (int)tlen, text);
}

/* ---- rule sets -------------------------------------------------------- */

static void index_init(apr_pool_t *p, mtls_index_t *idx)
{
    idx->exact = apr_hash_make(p);
    idx->prefixes = apr_hash_make(p);
    idx->max_prefix = 0;
    idx->n_lens4 = idx->n_lens6 = 0;
}

/* Records a network key's prefix length, keeping lens sorted longest
 * first: the most specific network is tried first. */
static void lens_add(unsigned char *lens, int *n, unsigned char bits)
{
    int i, j;
    for (i = 0; i < *n && lens[i] >= bits; i++) {
        if (lens[i] == bits)
            return;
    }
    for (j = *n; j > i; j--)
        lens[j] = lens[j - 1];
    lens[i] = bits;
    (*n)++;
}

static int index_is_empty(const mtls_index_t *idx)
{
    return apr_hash_count(idx->exact) == 0 &&
           apr_hash_count(idx->prefixes) == 0;
}

static void index_add(mtls_index_t *idx, mtls_key_t key, mtls_rule_t *rule)
{
    apr_hash_t *h = idx->exact;
    if (key.data[0] == MTLS_K_URI_PREFIX) {
        h = idx->prefixes;
        key.data++;
        key.len--;
        if (key.len > idx->max_prefix)
            idx->max_prefix = key.len;
    }
    else if (key.data[0] == MTLS_K_IP4_NET)
        lens_add(idx->lens4, &idx->n_lens4, (unsigned char)key.data[1]);
    else if (key.data[0] == MTLS_K_IP6_NET)
        lens_add(idx->lens6, &idx->n_lens6, (unsigned char)key.data[1]);
    rule->next = apr_hash_get(h, key.data, key.len);
    apr_hash_set(h, key.data, key.len, rule);
}

mtls_ruleset_t *mtls_ruleset_make(apr_pool_t *p)
{
    mtls_ruleset_t *rs = apr_pcalloc(p, sizeof(*rs));
    rs->pool = p;
    index_init(p, &rs->names);
    index_init(p, &rs->rules);
    rs->issuers = apr_hash_make(p);
    rs->fps = apr_hash_make(p);
    rs->rule_issuers = apr_hash_make(p);
    rs->rule_slabs = apr_array_make(p, 1, sizeof(rule_slab_t));
    return rs;
}

mtls_ruleset_t *mtls_ruleset_make_deny(apr_pool_t *p)
{
    mtls_ruleset_t *rs = mtls_ruleset_make(p);
    rs->deny = 1;
    return rs;
}

int mtls_ruleset_is_deny(const mtls_ruleset_t *rs)
{
    return rs->deny;
}

/* Memory that lives as long as rs. A million rules in 8 KiB pool blocks
 * would be over 20,000 blocks, each its own mmap and munmap in APR's
 * allocator, and a pad after each small piece; slabs that double up to
 * 1 MiB keep both small, and a scope of one rule still takes little. */
#define MTLS_SLAB_FIRST 1024
#define MTLS_SLAB_MAX (1024 * 1024)

/* A slab is filled at once: populated in one call where Linux can,
 * rather than by a page fault per 4 KiB page, which costs much more
 * (in a virtual machine above all). */
static void slab_populate(char *m, apr_size_t n)
{
#ifdef MADV_POPULATE_WRITE
    apr_uintptr_t page = 4096, b = ((apr_uintptr_t)m + page - 1) & ~(page - 1),
                  e = ((apr_uintptr_t)m + n) & ~(page - 1);
    if (e > b)
        (void)madvise((void *)b, (size_t)(e - b), MADV_POPULATE_WRITE);
#else
    (void)m;
    (void)n;
#endif
}

static void *arena_get(mtls_ruleset_t *rs, apr_size_t n, apr_size_t align)
{
    apr_size_t pad = (apr_size_t)(-(apr_uintptr_t)rs->arena) & (align - 1);
    char *m;
    if (n + pad > rs->arena_left) {
        if (n > MTLS_SLAB_MAX / 8)
            return apr_palloc(rs->pool, n);
        rs->slab = rs->slab ? rs->slab * 2 : MTLS_SLAB_FIRST;
        while (rs->slab < n)
            rs->slab *= 2;
        if (rs->slab > MTLS_SLAB_MAX)
            rs->slab = MTLS_SLAB_MAX;
        rs->arena = apr_palloc(rs->pool, rs->slab); /* aligned */
        rs->arena_left = rs->slab;
        slab_populate(rs->arena, rs->slab);
        pad = 0;
    }
    m = rs->arena + pad;
    rs->arena += n + pad;
    rs->arena_left -= n + pad;
    return m;
}

char *mtls_ruleset_alloc(mtls_ruleset_t *rs, apr_size_t n)
{
    return arena_get(rs, n, 1);
}

/* A key as mtls_key_make makes it, in rs. */
static mtls_key_t key_make(mtls_ruleset_t *rs, char tag, const void *v,
                           apr_size_t len)
{
    mtls_key_t k;
    char *d = arena_get(rs, len + 1, 1);
    d[0] = tag;
    memcpy(d + 1, v, len);
    k.data = d;
    k.len = len + 1;
    return k;
}

static mtls_key_t key_copy(mtls_ruleset_t *rs, mtls_key_t k)
{
    char *d = arena_get(rs, k.len, 1);
    memcpy(d, k.data, k.len);
    k.data = d;
    return k;
}

/* One copy of each fingerprint per scope: large allowlists repeat the
 * same few issuers. */
static const unsigned char *fp_intern(mtls_ruleset_t *rs, apr_pool_t *p,
                                      const unsigned char *fp)
{
    unsigned char *copy = apr_hash_get(rs->fps, fp, MTLS_FP_LEN);
    if (copy == NULL) {
        copy = apr_pmemdup(p, fp, MTLS_FP_LEN);
        apr_hash_set(rs->fps, copy, MTLS_FP_LEN, copy);
    }
    return copy;
}

int mtls_ruleset_n_rules(const mtls_ruleset_t *rs)
{
    return rs->n_rules;
}

int mtls_ruleset_pins_certs(const mtls_ruleset_t *rs)
{
    return rs && rs->pins_certs;
}

int mtls_ruleset_is_empty(const mtls_ruleset_t *rs)
{
    return rs == NULL || (index_is_empty(&rs->names) &&
                          apr_hash_count(rs->issuers) == 0 && rs->n_rules == 0);
}

const char *mtls_ruleset_check(const mtls_ruleset_t *rs, apr_pool_t *p)
{
    apr_hash_index_t *hi;
    char k[1 + MTLS_FP_LEN];

    if (apr_hash_count(rs->issuers) == 0)
        return NULL;
    k[0] = MTLS_K_ISSUER;
    for (hi = apr_hash_first(p, rs->rule_issuers); hi; hi = apr_hash_next(hi)) {
        const void *fp;
        void *v;
        const mtls_rule_t *r;
        apr_hash_this(hi, &fp, NULL, &v);
        r = v;
        memcpy(k + 1, fp, MTLS_FP_LEN);
        if (apr_hash_get(rs->issuers, k, sizeof(k)) == NULL)
            return apr_psprintf(
                p,
                "the rule at %s pins issuer=sha256:%s, which is not one "
                "of the MTLSAllowIssuerFingerprint values of its scope "
                "(%s); every rule there must also satisfy those, so this "
                "one can never match",
                r->source, mtls_fp_hex(p, fp), rs->issuer_rule->source);
    }
    return NULL;
}

/* Rule slabs double from 8 rules up to 4096: a scope of one rule takes
 * little, a million rules few slabs. */
#define MTLS_RULE_SLAB_FIRST 8
#define MTLS_RULE_SLAB_MAX 4096

static mtls_rule_t *rule_make(mtls_ruleset_t *rs, const char *source)
{
    rule_slab_t *sl =
        rs->rule_slabs->nelts
            ? &APR_ARRAY_IDX(rs->rule_slabs, rs->rule_slabs->nelts - 1,
                             rule_slab_t)
            : NULL;
    mtls_rule_t *r;
    if (sl == NULL || sl->n == sl->cap) {
        int cap = sl ? sl->cap * 2 : MTLS_RULE_SLAB_FIRST;
        if (cap > MTLS_RULE_SLAB_MAX)
            cap = MTLS_RULE_SLAB_MAX;
        sl = apr_array_push(rs->rule_slabs);
        sl->base = apr_palloc(rs->pool, cap * sizeof(mtls_rule_t));
        sl->n = 0;
        sl->cap = cap;
        if (cap == MTLS_RULE_SLAB_MAX)
            slab_populate((char *)sl->base, cap * sizeof(mtls_rule_t));
    }
    r = &sl->base[sl->n++];
    rs->n_all++;
    memset(r, 0, sizeof(*r));
    r->source = source;
    return r;
}

/* Takes back the rule just made, which its directive refused. */
static const char *rule_unmake(mtls_ruleset_t *rs, const char *err)
{
    APR_ARRAY_IDX(rs->rule_slabs, rs->rule_slabs->nelts - 1, rule_slab_t).n--;
    rs->n_all--;
    return err;
}

int mtls_ruleset_count(const mtls_ruleset_t *rs)
{
    return rs ? rs->n_all : 0;
}

void mtls_ruleset_each(const mtls_ruleset_t *rs, mtls_rule_fn *fn, void *baton)
{
    int i, j, k = 0;
    for (i = 0; rs && i < rs->rule_slabs->nelts; i++) {
        const rule_slab_t *sl = &APR_ARRAY_IDX(rs->rule_slabs, i, rule_slab_t);
        for (j = 0; j < sl->n; j++)
            fn(baton, &sl->base[j], k++);
    }
}

void mtls_ruleset_slabs(const mtls_ruleset_t *rs, mtls_slab_fn *fn, void *baton)
{
    int i, k = 0;
    for (i = 0; rs && i < rs->rule_slabs->nelts; i++) {
        const rule_slab_t *sl = &APR_ARRAY_IDX(rs->rule_slabs, i, rule_slab_t);
        if (sl->n)
            fn(baton, sl->base, sl->n, k);
        k += sl->n;
    }
}

static void digest_part(EVP_MD_CTX *md, const void *v, apr_size_t len)
{
    apr_uint32_t n = (apr_uint32_t)len;
    EVP_DigestUpdate(md, &n, sizeof(n));
    if (len)
        EVP_DigestUpdate(md, v, len);
}

apr_uint64_t mtls_rule_digest(const mtls_rule_t *r, const char *salt)
{
    static const unsigned char none[1] = {0};
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    apr_uint64_t v = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int i;

    if (md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(md);
        return 0;
    }
    digest_part(md, salt, strlen(salt));
    digest_part(md, r->subject.data, r->subject.data ? r->subject.len : 0);
    digest_part(md, r->issuer ? r->issuer : none, r->issuer ? MTLS_FP_LEN : 0);
    digest_part(md, r->cert ? r->cert : none, r->cert ? MTLS_FP_LEN : 0);
    for (i = 0; r->sans && i < r->sans->nelts; i++) {
        const mtls_key_t *k = &APR_ARRAY_IDX(r->sans, i, mtls_key_t);
        digest_part(md, k->data, k->len);
    }
    if (r->ext) {
        apr_int64_t t[3] = {r->ext->not_before, r->ext->not_after,
                            r->ext->deny};
        digest_part(md, t, sizeof(t));
        digest_part(md, r->ext->serial.data,
                    r->ext->serial.data ? r->ext->serial.len : 0);
    }
    if (EVP_DigestFinal_ex(md, d, &dlen) && dlen >= sizeof(v))
        memcpy(&v, d, sizeof(v));
    EVP_MD_CTX_free(md);
    return v;
}

static mtls_key_t subject_index(mtls_ruleset_t *rs, const mtls_key_t *subject)
{
    unsigned char d[MTLS_SUBJECT_INDEX_LEN];
    mtls_key_subject_digest(subject, d);
    return key_copy(rs, (mtls_key_t){(const char *)d, sizeof(d)});
}

static void rule_add_san(apr_pool_t *p, mtls_rule_t *r, mtls_key_t k)
{
    if (r->sans == NULL)
        r->sans = apr_array_make(p, 1, sizeof(mtls_key_t));
    APR_ARRAY_PUSH(r->sans, mtls_key_t) = k;
}

const char *mtls_ruleset_add_subject(mtls_ruleset_t *rs, apr_pool_t *p,
                                     const char *dn, const char *source)
{
    mtls_rule_t *r = rule_make(rs, source);
    const char *err = mtls_dn_parse(p, dn, &r->subject);
    if (err)
        return rule_unmake(rs, apr_psprintf(p, "bad DN '%s': %s", dn, err));
    index_add(&rs->names, subject_index(rs, &r->subject), r);
    return NULL;
}

const char *mtls_ruleset_add_san(mtls_ruleset_t *rs, apr_pool_t *p,
                                 const char *san, const char *source)
{
    mtls_rule_t *r = rule_make(rs, source);
    mtls_key_t k;
    const char *err = mtls_san_parse(p, san, &k);
    if (err)
        return rule_unmake(rs, err);
    rule_add_san(p, r, k);
    index_add(&rs->names, k, r);
    return NULL;
}

const char *mtls_ruleset_add_issuer(mtls_ruleset_t *rs, apr_pool_t *p,
                                    const char *fp, const char *source,
                                    const unsigned char **fp_out)
{
    mtls_rule_t *r = rule_make(rs, source);
    unsigned char buf[MTLS_FP_LEN];
    mtls_key_t k;
    const char *err = mtls_fp_parse(p, fp, buf);
    if (err)
        return rule_unmake(rs, err);
    r->issuer = fp_intern(rs, p, buf);
    k = mtls_key_make(p, MTLS_K_ISSUER, buf, MTLS_FP_LEN);
    apr_hash_set(rs->issuers, k.data, k.len, r);
    if (rs->issuer_rule == NULL)
        rs->issuer_rule = r;
    if (fp_out)
        *fp_out = r->issuer;
    return NULL;
}

/* isspace() in the C locale, which httpd runs in, without a call per
 * character: a million-line rule file is tokenised at startup. */
static int is_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Where the word at s ends: at an unquoted space or the end. *quoted
 * says whether a quote is left open, *escaped whether a \" occurs inside
 * quotes. Runs between special characters are skipped with strcspn,
 * which is vectorised: a million-line rule file is tokenised at startup. */
static const char *word_end(const char *s, int *quoted, int *escaped)
{
    const char *e = s;
    while (*e) {
        if (!*quoted) {
            e += strcspn(e, "\" \t\n\v\f\r");
            if (*e != '"')
                break;
            *quoted = 1;
            e++;
            continue;
        }
        e += strcspn(e, "\"\\");
        if (*e == '\0')
            break;
        if (*e == '"')
            *quoted = 0;
        else if (e[1] == '"') {
            *escaped = 1;
            e++;
        }
        e++;
    }
    return e;
}

const char *mtls_next_word(apr_pool_t *p, const char **line, char **word)
{
    const char *s = *line, *e;
    char *out;
    int quoted = 0, escaped = 0;

    while (is_space(*s))
        s++;
    if (*s == '\0') {
        *word = NULL;
        *line = s;
        return NULL;
    }
    /* Allocate for this word, not for the rest of the line: a line of n
     * words must not cost memory quadratic in its length. */
    e = word_end(s, &quoted, &escaped);
    out = *word = apr_palloc(p, (apr_size_t)(e - s) + 1);
    if (!escaped) {
        /* Nearly every word: the quotes go, nothing else changes. */
        while (s < e) {
            const char *q = memchr(s, '"', (apr_size_t)(e - s));
            apr_size_t n = (apr_size_t)((q ? q : e) - s);
            memcpy(out, s, n);
            out += n;
            s += n + (q != NULL);
        }
        *out = '\0';
        *line = e;
        return quoted ? "unbalanced double quote" : NULL;
    }
    quoted = 0;
    while (*s && (quoted || !is_space(*s))) {
        if (*s == '"') {
            quoted = !quoted;
            s++;
            continue;
        }
        if (quoted && s[0] == '\\' && s[1] == '"') {
            *out++ = '"';
            s += 2;
            continue;
        }
        *out++ = *s++;
    }
    *out = '\0';
    *line = s;
    return quoted ? "unbalanced double quote" : NULL;
}

static const unsigned char *pin_seen(const mtls_ruleset_t *rs, const char *v)
{
    unsigned i;
    for (i = 0; i < sizeof(rs->pins_seen) / sizeof(rs->pins_seen[0]); i++) {
        if (rs->pins_seen[i].fp && strcmp(v, rs->pins_seen[i].text) == 0)
            return rs->pins_seen[i].fp;
    }
    return NULL;
}

static void pin_remember(mtls_ruleset_t *rs, const char *v,
                         const unsigned char *fp)
{
    unsigned i =
        rs->pins_next++ % (sizeof(rs->pins_seen) / sizeof(rs->pins_seen[0]));
    if (strlen(v) >= sizeof(rs->pins_seen[i].text))
        return;
    strcpy(rs->pins_seen[i].text, v);
    rs->pins_seen[i].fp = fp;
}

/* serial=: hex digits, ':' between bytes allowed, an optional leading
 * '-'; leading zeros do not count. Into MTLS_K_SERIAL's key. */
#define MTLS_SERIAL_MAX 64 /* bytes; RFC 5280 allows 20 */
static const char *serial_parse(mtls_ruleset_t *rs, apr_pool_t *tmp,
                                const char *v, mtls_key_t *out)
{
    char hex[2 * MTLS_SERIAL_MAX + 1];
    unsigned char key[2 + MTLS_SERIAL_MAX];
    const char *s = v + (*v == '-');
    int nh = 1, nk = 0, seen = 0, i; /* hex[0]: pads an odd count */

    hex[0] = '0';
    key[nk++] = MTLS_K_SERIAL;
    if (*v == '-')
        key[nk++] = '-';
    for (; *s; s++) {
        if (*s == ':' && seen && s[1] != '\0' && s[1] != ':')
            continue;
        seen = 1;
        if (mtls_hex_digit(*s) < 0 || nh > 2 * MTLS_SERIAL_MAX)
            return apr_psprintf(tmp,
                                "serial=%s: expected up to %d hex digits, "
                                "':' between bytes allowed",
                                v, 2 * MTLS_SERIAL_MAX);
        if (nh > 1 || *s != '0')
            hex[nh++] = *s; /* leading zeros dropped */
        else if (s[1] == '\0')
            hex[nh++] = '0'; /* all zeros: serial 0 */
    }
    if (nh == 1)
        return apr_psprintf(tmp, "serial=%s: expected hex digits", v);
    for (i = nh % 2; i + 1 < nh; i += 2) {
        int b = mtls_hex_digit(hex[i]) << 4 | mtls_hex_digit(hex[i + 1]);
        if (b != 0 || nk > 1 + (*v == '-'))
            key[nk++] = (unsigned char)b;
    }
    *out = key_copy(rs, (mtls_key_t){(const char *)key, (apr_size_t)nk});
    return NULL;
}

/* What a line sets besides its constraints: serial= and the window,
 * with the words as written for messages. */
typedef struct {
    mtls_rule_ext_t x;
    const char *nb_text, *na_text;
} rule_extra_t;

/* not_before=, not_after= and (deny rules) serial=. Returns 1 and *err
 * if word is one of them. */
static int extra_word(mtls_ruleset_t *rs, apr_pool_t *tmp, const char *word,
                      const char *v, rule_extra_t *e, const char **err)
{
    int nb = strcasecmp(word, "not_before") == 0;
    *err = NULL;
    if (nb || strcasecmp(word, "not_after") == 0) {
        if (nb ? e->nb_text != NULL : e->na_text != NULL)
            *err = apr_psprintf(tmp, "%s= given twice", word);
        else if ((*err = mtls_time_parse(
                      tmp, v, !nb, nb ? &e->x.not_before : &e->x.not_after)) !=
                 NULL)
            *err = apr_psprintf(tmp, "%s=%s", word, *err);
        else if (nb)
            e->nb_text = v;
        else
            e->na_text = v;
        return 1;
    }
    if (rs->deny && strcasecmp(word, "serial") == 0) {
        if (e->x.serial.data)
            *err = "serial= given twice";
        else
            *err = serial_parse(rs, tmp, v, &e->x.serial);
        return 1;
    }
    return 0;
}

/* The message for an unknown key. */
static const char *unknown_key(const mtls_ruleset_t *rs, apr_pool_t *tmp,
                               const char *word)
{
    return apr_psprintf(tmp,
                        "unknown key '%s' (use subject, san, issuer, cert%s, "
                        "not_before or not_after)",
                        word, rs->deny ? ", serial" : "");
}

/* One constraint word: subject=, san=, issuer= or cert=. */
static const char *constraint_word(mtls_ruleset_t *rs, apr_pool_t *p,
                                   apr_pool_t *tmp, mtls_rule_t *r,
                                   const char *word, const char *v)
{
    const char *err;
    mtls_key_t k;
    int is_issuer = strcasecmp(word, "issuer") == 0;
    unsigned char fp[MTLS_FP_LEN];

    if (strcasecmp(word, "subject") == 0) {
        if (r->subject.data)
            return "subject= given twice";
        if ((err = mtls_dn_parse_tmp(tmp, v, &k)) != NULL)
            return apr_psprintf(tmp, "bad DN '%s': %s", v, err);
        r->subject = key_copy(rs, k);
        return NULL;
    }
    if (strcasecmp(word, "san") == 0) {
        if ((err = mtls_san_parse(tmp, v, &k)) != NULL)
            return err;
        rule_add_san(p, r, key_copy(rs, k));
        return NULL;
    }
    if (!is_issuer && strcasecmp(word, "cert") != 0)
        return unknown_key(rs, tmp, word);
    if (is_issuer ? r->issuer != NULL : r->cert != NULL)
        return apr_psprintf(tmp, "%s= given twice", word);
    if (is_issuer && (r->issuer = pin_seen(rs, v)) != NULL)
        return NULL;
    if ((err = mtls_fp_parse(tmp, v, fp)) != NULL)
        return apr_psprintf(tmp, "%s=%s", word, err);
    if (is_issuer) {
        r->issuer = fp_intern(rs, p, fp);
        pin_remember(rs, v, r->issuer);
    }
    else
        r->cert = memcpy(arena_get(rs, MTLS_FP_LEN, 1), fp, MTLS_FP_LEN);
    return NULL;
}

/* A line's extras, once all its words are read: serial= needs issuer=,
 * a window must not be empty. Attached to r where there are any. */
static const char *extra_finish(mtls_ruleset_t *rs, apr_pool_t *tmp,
                                mtls_rule_t *r, const rule_extra_t *e)
{
    mtls_rule_ext_t *x;
    if (e->x.serial.data && r->issuer == NULL)
        return "serial= needs issuer=: a serial number is unique only "
               "within one CA";
    if (e->nb_text && e->na_text && e->x.not_before >= e->x.not_after)
        return apr_psprintf(tmp, "not_before=%s is not before not_after=%s",
                            e->nb_text, e->na_text);
    if (!rs->deny && !e->nb_text && !e->na_text)
        return NULL;
    x = arena_get(rs, sizeof(*x), sizeof(void *));
    *x = e->x;
    /* 0 is "no end": an end at the epoch itself is its first microsecond,
     * which prints the same. (A start at the epoch is no bound at all.) */
    if (e->na_text && x->not_after == 0)
        x->not_after = 1;
    x->deny = rs->deny;
    r->ext = x;
    return NULL;
}

/* Parses one MTLSAllow (or MTLSDeny) line into r; words and messages in
 * tmp. */
static const char *rule_parse(mtls_ruleset_t *rs, apr_pool_t *p,
                              apr_pool_t *tmp, mtls_rule_t *r, const char *line)
{
    rule_extra_t e;
    const char *err;
    char *word;

    memset(&e, 0, sizeof(e));
    for (;;) {
        char *eq;
        if ((err = mtls_next_word(tmp, &line, &word)) != NULL)
            return err;
        if (word == NULL)
            return extra_finish(rs, tmp, r, &e);
        eq = strchr(word, '=');
        if (eq == NULL)
            return apr_psprintf(tmp,
                                "'%s': expected key=value with key "
                                "subject, san, issuer, cert%s, not_before or "
                                "not_after",
                                word, rs->deny ? ", serial" : "");
        *eq = '\0';
        if (extra_word(rs, tmp, word, eq + 1, &e, &err)) {
            if (err)
                return err;
            continue;
        }
        if ((err = constraint_word(rs, p, tmp, r, word, eq + 1)) != NULL)
            return err;
    }
}

/* How selective a SAN key is, as an anchor: an exact value, then a DNS
 * suffix or a network, then a URI prefix. */
static int san_rank(const mtls_key_t *k)
{
    switch (k->data[0]) {
    case MTLS_K_URI_PREFIX:
        return 1;
    case MTLS_K_DNS_SUFFIX:
    case MTLS_K_IP4_NET:
    case MTLS_K_IP6_NET:
        return 2;
    default:
        return 3;
    }
}

/* The key a rule is indexed under: its most selective constraint, a
 * certificate, then a serial number, then a subject, then a SAN by
 * san_rank, then the issuer. */
static mtls_key_t rule_anchor(mtls_ruleset_t *rs, const mtls_rule_t *r)
{
    mtls_key_t anchor = {NULL, 0}, k;
    int i;
    if (r->cert)
        return key_make(rs, MTLS_K_CERT, r->cert, MTLS_FP_LEN);
    if (r->ext && r->ext->serial.data)
        return r->ext->serial;
    if (r->subject.data)
        return subject_index(rs, &r->subject);
    for (i = 0; r->sans && i < r->sans->nelts; i++) {
        k = APR_ARRAY_IDX(r->sans, i, mtls_key_t);
        if (anchor.data == NULL || san_rank(&k) > san_rank(&anchor))
            anchor = k;
    }
    if (anchor.data == NULL && r->issuer)
        anchor = key_make(rs, MTLS_K_ISSUER, r->issuer, MTLS_FP_LEN);
    return anchor;
}

const char *mtls_ruleset_add_rule_tmp(mtls_ruleset_t *rs, apr_pool_t *p,
                                      apr_pool_t *tmp, const char *line,
                                      const char *source,
                                      const unsigned char **pin_out)
{
    mtls_rule_t *r = rule_make(rs, source);
    mtls_key_t anchor;
    const char *err = rule_parse(rs, p, tmp, r, line);

    if (err)
        return rule_unmake(rs, err);
    anchor = rule_anchor(rs, r);
    if (anchor.data == NULL)
        return rule_unmake(
            rs, "needs at least one of subject=, san=, issuer=, cert=");
    index_add(&rs->rules, anchor, r);
    rs->n_rules++;
    if (r->ext && (r->ext->not_before || r->ext->not_after)) {
        if (rs->windowed == NULL)
            rs->windowed = apr_array_make(p, 4, sizeof(mtls_rule_t *));
        APR_ARRAY_PUSH(rs->windowed, mtls_rule_t *) = r;
        rs->finished = 0;
    }
    if (r->cert)
        rs->pins_certs = 1;
    if (r->issuer && !apr_hash_get(rs->rule_issuers, r->issuer, MTLS_FP_LEN))
        apr_hash_set(rs->rule_issuers, r->issuer, MTLS_FP_LEN, r);
    if (pin_out)
        *pin_out = r->issuer;
    return NULL;
}

const char *mtls_ruleset_add_rule(mtls_ruleset_t *rs, apr_pool_t *p,
                                  const char *line, const char *source,
                                  const unsigned char **pin_out)
{
    apr_pool_t *tmp;
    const char *err;

    /* The words are copies of the line: scratch, not kept per rule. */
    if (apr_pool_create(&tmp, p) != APR_SUCCESS)
        return "out of memory";
    err = mtls_ruleset_add_rule_tmp(rs, p, tmp, line, source, pin_out);
    if (err)
        err = apr_pstrdup(p, err);
    apr_pool_destroy(tmp);
    return err;
}

/* ---- matching ---------------------------------------------------------- */

static int id_has(const mtls_identity_t *id, char tag, const void *v,
                  apr_size_t len)
{
    char buf[1 + MTLS_FP_LEN];
    buf[0] = tag;
    memcpy(buf + 1, v, len);
    return apr_hash_get(id->keyset, buf, len + 1) != NULL;
}

/* Has id a URI SAN equal to prefix or below it at a '/'? */
static int id_has_uri_prefix(const mtls_identity_t *id, const char *prefix,
                             apr_size_t plen)
{
    int i;
    for (i = 0; i < id->uris->nelts; i++) {
        const mtls_key_t *u = &APR_ARRAY_IDX(id->uris, i, mtls_key_t);
        if (u->len >= plen && memcmp(u->data, prefix, plen) == 0 &&
            (u->len == plen || u->data[plen] == '/'))
            return 1;
    }
    return 0;
}

/* Has id an IP SAN inside the network k? An IPv4-mapped IPv6 SAN is 16
 * bytes, so it is never inside an IPv4 network. */
static int id_has_net(const mtls_identity_t *id, const mtls_key_t *k)
{
    apr_size_t alen = k->data[0] == MTLS_K_IP4_NET ? 4 : 16;
    char buf[MTLS_NET_KEY_MAX];
    int i;
    for (i = 0; i < id->sans->nelts; i++) {
        const mtls_san_t *s = &APR_ARRAY_IDX(id->sans, i, mtls_san_t);
        if (s->type == GEN_IPADD && s->len == alen &&
            mtls_key_net(buf, (const unsigned char *)s->v, alen,
                         (unsigned char)k->data[1]) == k->len &&
            memcmp(buf, k->data, k->len) == 0)
            return 1;
    }
    return 0;
}

static int id_has_san(const mtls_identity_t *id, const mtls_key_t *k)
{
    if (k->data[0] == MTLS_K_URI_PREFIX)
        return id_has_uri_prefix(id, k->data + 1, k->len - 1);
    if (k->data[0] == MTLS_K_IP4_NET || k->data[0] == MTLS_K_IP6_NET)
        return id_has_net(id, k);
    return apr_hash_get(id->keyset, k->data, k->len) != NULL;
}

/* Is now outside r's window? */
static mtls_miss_e window_check(const mtls_rule_ext_t *x, apr_time_t now)
{
    if (x->not_before && now < x->not_before)
        return MTLS_MISS_NOT_YET;
    if (x->not_after && now >= x->not_after)
        return MTLS_MISS_EXPIRED;
    return MTLS_MISS_NONE;
}

/* Does r match id at now? Its window is checked last, so that a miss
 * names the window only if nothing else kept r from matching. */
static mtls_miss_e rule_check(const mtls_rule_t *r, const mtls_identity_t *id,
                              apr_time_t now)
{
    int i;
    if (r->cert && !id_has(id, MTLS_K_CERT, r->cert, MTLS_FP_LEN))
        return MTLS_MISS_NO_RULE;
    if (r->ext && r->ext->serial.data &&
        apr_hash_get(id->keyset, r->ext->serial.data, r->ext->serial.len) ==
            NULL)
        return MTLS_MISS_NO_RULE;
    if (r->subject.data &&
        (id->subject_key.len != r->subject.len ||
         memcmp(id->subject_key.data, r->subject.data, r->subject.len) != 0))
        return MTLS_MISS_NO_RULE;
    for (i = 0; r->sans && i < r->sans->nelts; i++) {
        if (!id_has_san(id, &APR_ARRAY_IDX(r->sans, i, mtls_key_t)))
            return MTLS_MISS_NO_RULE;
    }
    if (r->issuer && !id_has(id, MTLS_K_ISSUER, r->issuer, MTLS_FP_LEN))
        return MTLS_MISS_ISSUER;
    return r->ext ? window_check(r->ext, now) : MTLS_MISS_NONE;
}

typedef struct {
    const mtls_identity_t *id;
    apr_time_t now;
    int issuer_ok;
    mtls_trace_fn *trace;
    void *baton;
    mtls_miss_e miss;
    const mtls_rule_t *near; /* the first rule missed only by its window */
} match_ctx;

static const mtls_rule_t *try_chain(match_ctx *m, const mtls_rule_t *r)
{
    for (; r; r = r->next) {
        mtls_miss_e res = rule_check(r, m->id, m->now);
        if (res != MTLS_MISS_NO_RULE && !m->issuer_ok)
            res = MTLS_MISS_ISSUER;
        if (m->trace)
            m->trace(m->baton, r, res);
        if (res == MTLS_MISS_NONE)
            return r;
        /* The reason logged: a window over an issuer over no match. */
        if ((res == MTLS_MISS_EXPIRED || res == MTLS_MISS_NOT_YET) &&
            m->near == NULL) {
            m->near = r;
            m->miss = res;
        }
        else if (res == MTLS_MISS_ISSUER && m->near == NULL)
            m->miss = MTLS_MISS_ISSUER;
    }
    return NULL;
}

/* Tries the network rules: each IP SAN cut to each prefix length that
 * the index holds. */
static const mtls_rule_t *net_match(const mtls_index_t *idx, match_ctx *m)
{
    const mtls_identity_t *id = m->id;
    char buf[MTLS_NET_KEY_MAX];
    int i, j;

    for (i = 0; i < id->sans->nelts; i++) {
        const mtls_san_t *s = &APR_ARRAY_IDX(id->sans, i, mtls_san_t);
        const unsigned char *lens = s->len == 4 ? idx->lens4 : idx->lens6;
        int n = s->len == 4 ? idx->n_lens4 : s->len == 16 ? idx->n_lens6 : 0;
        if (s->type != GEN_IPADD)
            continue;
        for (j = 0; j < n; j++) {
            apr_size_t klen =
                mtls_key_net(buf, (const unsigned char *)s->v, s->len, lens[j]);
            const mtls_rule_t *r =
                try_chain(m, apr_hash_get(idx->exact, buf, klen));
            if (r)
                return r;
        }
    }
    return NULL;
}

/* Tries the rules indexed under each of the identity's keys (DNS suffix
 * keys among them), each IP SAN's networks, and the prefix rules at each
 * '/' of each URI SAN up to the longest prefix configured. The work
 * depends on the certificate and on the distinct prefix lengths, not on
 * the number of rules. */
static const mtls_rule_t *index_match(const mtls_index_t *idx, match_ctx *m)
{
    const mtls_identity_t *id = m->id;
    const mtls_rule_t *r;
    int i;

    if (apr_hash_count(idx->exact)) {
        for (i = 0; i < id->keys->nelts; i++) {
            const mtls_key_t *k = &APR_ARRAY_IDX(id->keys, i, mtls_key_t);
            r = try_chain(m, apr_hash_get(idx->exact, k->data, k->len));
            if (r)
                return r;
        }
    }
    if ((idx->n_lens4 || idx->n_lens6) && (r = net_match(idx, m)) != NULL)
        return r;
    if (apr_hash_count(idx->prefixes)) {
        for (i = 0; i < id->uris->nelts; i++) {
            const mtls_key_t *u = &APR_ARRAY_IDX(id->uris, i, mtls_key_t);
            apr_size_t n;
            for (n = 1; n <= u->len && n <= idx->max_prefix; n++) {
                if (n < u->len && u->data[n] != '/')
                    continue;
                r = try_chain(m, apr_hash_get(idx->prefixes, u->data, n));
                if (r)
                    return r;
            }
        }
    }
    return NULL;
}

/* The issuer directive that admits one of id's issuers, if any. */
static const mtls_rule_t *issuer_match(const mtls_ruleset_t *rs,
                                       const mtls_identity_t *id)
{
    char buf[1 + MTLS_FP_LEN];
    int i;
    buf[0] = MTLS_K_ISSUER;
    for (i = 0; i < id->n_issuers; i++) {
        const mtls_rule_t *r;
        memcpy(buf + 1, id->issuer_fps + i * MTLS_FP_LEN, MTLS_FP_LEN);
        if ((r = apr_hash_get(rs->issuers, buf, sizeof(buf))) != NULL)
            return r;
    }
    return NULL;
}

const mtls_rule_t *mtls_ruleset_match_at(const mtls_ruleset_t *rs,
                                         const mtls_identity_t *id,
                                         apr_time_t now, mtls_trace_fn *trace,
                                         void *baton, mtls_match_t *res)
{
    match_ctx m = {id, now, 1, trace, baton, MTLS_MISS_NO_RULE, NULL};
    const mtls_rule_t *r = NULL, *by_issuer = NULL;
    int gated = apr_hash_count(rs->issuers) != 0;
    int names = !index_is_empty(&rs->names);

    /* The issuer gate holds for every rule of the scope: a rule that
     * matches a client of another CA reports "issuer not allowed". */
    if (gated) {
        by_issuer = issuer_match(rs, id);
        m.issuer_ok = by_issuer != NULL;
    }
    if (names)
        r = index_match(&rs->names, &m);
    if (r == NULL && rs->n_rules)
        r = index_match(&rs->rules, &m);
    if (r == NULL && gated && !names && rs->n_rules == 0) {
        /* The gate alone: every client of those CAs. */
        if (trace)
            trace(baton, rs->issuer_rule,
                  m.issuer_ok ? MTLS_MISS_NONE : MTLS_MISS_ISSUER);
        if (m.issuer_ok)
            r = by_issuer;
        else
            m.miss = MTLS_MISS_ISSUER;
    }
    res->rule = r;
    res->miss = r ? MTLS_MISS_NONE : m.miss;
    res->near = r ? NULL : m.near;
    return r;
}

const mtls_rule_t *mtls_ruleset_match(const mtls_ruleset_t *rs,
                                      const mtls_identity_t *id,
                                      mtls_trace_fn *trace, void *baton,
                                      mtls_miss_e *miss)
{
    mtls_match_t m;
    const mtls_rule_t *r =
        mtls_ruleset_match_at(rs, id, apr_time_now(), trace, baton, &m);
    *miss = m.miss;
    return r;
}

/* ---- time-boxed rules ---------------------------------------------------- */

static int time_cmp(const void *a, const void *b)
{
    apr_time_t x = *(const apr_time_t *)a, y = *(const apr_time_t *)b;
    return x < y ? -1 : x > y;
}

void mtls_ruleset_finish(mtls_ruleset_t *rs)
{
    int i, n = 0;
    if (rs->windowed == NULL) {
        rs->finished = 1;
        return;
    }
    rs->bounds = apr_palloc(rs->pool, sizeof(apr_time_t) * 2 *
                                          (apr_size_t)rs->windowed->nelts);
    for (i = 0; i < rs->windowed->nelts; i++) {
        const mtls_rule_ext_t *x =
            APR_ARRAY_IDX(rs->windowed, i, const mtls_rule_t *)->ext;
        if (x->not_before)
            rs->bounds[n++] = x->not_before;
        if (x->not_after)
            rs->bounds[n++] = x->not_after;
    }
    qsort(rs->bounds, (size_t)n, sizeof(apr_time_t), time_cmp);
    rs->n_bounds = n;
    rs->finished = 1;
}

int mtls_ruleset_span(const mtls_ruleset_t *rs, apr_time_t now, apr_time_t *lo,
                      apr_time_t *hi)
{
    int a = 0, b;
    if (rs->windowed == NULL)
        return 1;
    if (!rs->finished)
        return 0;
    /* The first bound after now: a rule's window starts or ends there. */
    b = rs->n_bounds;
    while (a < b) {
        int mid = a + (b - a) / 2;
        if (rs->bounds[mid] <= now)
            a = mid + 1;
        else
            b = mid;
    }
    if (a < rs->n_bounds && rs->bounds[a] < *hi)
        *hi = rs->bounds[a];
    if (a > 0 && rs->bounds[a - 1] > *lo)
        *lo = rs->bounds[a - 1];
    return 1;
}

void mtls_ruleset_windows(const mtls_ruleset_t *rs, mtls_window_fn *fn,
                          void *baton)
{
    int i;
    for (i = 0; rs->windowed && i < rs->windowed->nelts; i++)
        fn(baton, APR_ARRAY_IDX(rs->windowed, i, const mtls_rule_t *));
}
