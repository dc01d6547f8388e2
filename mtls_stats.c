/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Counters, the recently seen clients and the expiry watch; see
 * mtls_stats.h.
 *
 * The counters of a configuration generation:
 * - Keyed on: a rule's place in the registry (its ruleset's first slot
 *   and its place there), found from its address (ranges); a scope's
 *   slot. Both fixed in post_config, before the children fork.
 * - Invalidated by: the end of the generation (pconf is cleared). Just
 *   before, the parent copies every rule's counts out under a digest of
 *   what it matches and its scope's label (carry_take); the next
 *   generation takes the counts of the rules with the same digest.
 * - Changed by: the children, with atomic increments only; the parent
 *   writes carried counts before it forks. */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_core.h"
#include "http_request.h"
#include "ap_provider.h"
#include "ap_socache.h"
#include "util_mutex.h"
#include "apr_atomic.h"
#include "apr_global_mutex.h"
#include "apr_shm.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtls_stats.h"
#include "mtls_time.h"

APLOG_USE_MODULE(mtls_authz);

struct mtls_scope {
    server_rec *s;
    const ap_directive_t *section; /* NULL: the (virtual) server's level */
    const char *label;
    int slot;
};

typedef struct {
    const mtls_ruleset_t *rs;
    mtls_scope_t *scope;
    int base; /* its first rule's slot */
} stats_set_t;

typedef struct {
    apr_uintptr_t lo, hi; /* [lo, hi): n rules */
    int slot;
} stats_range_t;

typedef struct {
    volatile apr_uint64_t admissions, denials, last;
    apr_uint64_t since; /* 0: since httpd started */
} rule_ctr_t;

typedef struct {
    apr_time_t started, restarted;
} shm_head_t;

#define N_SCOPE_CTRS (MTLS_N_OUTCOMES * MTLS_N_WHYS)

/* The request path's atomics: one instruction each where the compiler
 * has the builtins, rather than a call into APR. */
#if defined(__GNUC__) || defined(__clang__)
#define CTR_INC64(p) ((void)__atomic_fetch_add((p), 1, __ATOMIC_RELAXED))
#define CTR_SET64(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define CTR_INC32(p) ((void)__atomic_fetch_add((p), 1, __ATOMIC_RELAXED))
#define PTR_GET(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#else
#define CTR_INC64(p) ((void)apr_atomic_inc64(p))
#define CTR_SET64(p, v) apr_atomic_set64((p), (v))
#define CTR_INC32(p) ((void)apr_atomic_inc32(p))
#define PTR_GET(p) apr_atomic_casptr((volatile void **)(p), NULL, NULL)
#endif

/* This generation's, set while the configuration is read and in
 * post_config, read-only in the children. */
static apr_array_header_t *sets;   /* stats_set_t */
static apr_array_header_t *scopes; /* mtls_scope_t *; [0] the catch-all */
static stats_range_t *ranges;
static int n_ranges, n_rules;
static shm_head_t *head;
static rule_ctr_t *rule_ctrs;
static volatile apr_uint64_t *scope_ctrs;
static server_rec *main_server;

#define EXPIRY_UNSET (-1)
static int expiry_days = EXPIRY_UNSET;

static const ap_socache_provider_t *cache_prov;
static ap_socache_instance_t *cache_inst;
static const char *cache_name; /* as configured; "none": off */
static apr_global_mutex_t *cache_mutex;
#define CACHE_MUTEX "mtls-authz-seen"
#define cache_on() (cache_inst != NULL && cache_prov != NULL)
#define SEEN_FOR apr_time_from_sec(31 * 86400)

static const char *const outcome_names[MTLS_N_OUTCOMES] = {"admitted", "denied",
                                                           "audited", "other"};
static const char *const why_names[MTLS_N_WHYS] = {"rule",
                                                   "no_rule_matched",
                                                   "issuer_not_allowed",
                                                   "rule_expired",
                                                   "rule_not_yet_valid",
                                                   "denied_by_rule",
                                                   "no_certificate",
                                                   "plain_http",
                                                   "not_verified",
                                                   "no_rule_in_scope",
                                                   "htaccess_rules",
                                                   "negated",
                                                   "internal_error"};

const char *mtls_stats_outcome_name(int o)
{
    return o >= 0 && o < MTLS_N_OUTCOMES ? outcome_names[o] : "-";
}

const char *mtls_stats_why_name(int why)
{
    return why >= 0 && why < MTLS_N_WHYS ? why_names[why] : "-";
}

/* ---- configuration time ------------------------------------------------- */

void mtls_stats_pre_config(apr_pool_t *pconf)
{
    mtls_scope_t *any = apr_pcalloc(pconf, sizeof(*any));
    any->label = "-";
    sets = apr_array_make(pconf, 16, sizeof(stats_set_t));
    scopes = apr_array_make(pconf, 16, sizeof(mtls_scope_t *));
    APR_ARRAY_PUSH(scopes, mtls_scope_t *) = any;
    ranges = NULL;
    n_ranges = n_rules = 0;
    head = NULL;
    rule_ctrs = NULL;
    scope_ctrs = NULL;
    expiry_days = EXPIRY_UNSET;
    cache_prov = NULL;
    cache_inst = NULL;
    cache_name = NULL;
    cache_mutex = NULL;
    ap_mutex_register(pconf, CACHE_MUTEX, NULL, APR_LOCK_DEFAULT, 0);
}

mtls_scope_t *mtls_stats_scope(cmd_parms *cmd)
{
    mtls_scope_t *sc = apr_pcalloc(cmd->pool, sizeof(*sc));
    const ap_directive_t *sec = cmd->directive ? cmd->directive->parent : NULL;
    if (sec && strcasecmp(sec->directive, "<VirtualHost") == 0)
        sec = NULL;
    sc->s = cmd->server;
    sc->section = sec;
    APR_ARRAY_PUSH(scopes, mtls_scope_t *) = sc;
    return sc;
}

void mtls_stats_add_ruleset(const mtls_ruleset_t *rs, mtls_scope_t *scope)
{
    stats_set_t *set = apr_array_push(sets);
    set->rs = rs;
    set->scope = scope ? scope : APR_ARRAY_IDX(scopes, 0, mtls_scope_t *);
    set->base = 0;
}

const char *mtls_stats_set_expiry(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    char *end;
    long v;
    (void)dummy;
    if (err)
        return err;
    v = strtol(arg, &end, 10);
    if (*arg < '0' || *arg > '9' || *end || v > 3650)
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a number of days from 0 (off) "
                            "to 3650",
                            cmd->cmd->name, arg);
    expiry_days = (int)v;
    return NULL;
}

const char *mtls_stats_set_cache(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *colon, *name, *args = NULL;
    (void)dummy;
    if (err)
        return err;
    if (strcasecmp(arg, "none") == 0) {
        cache_name = "none";
        cache_prov = NULL;
        cache_inst = NULL;
        return NULL;
    }
    colon = strchr(arg, ':');
    name = colon ? apr_pstrmemdup(cmd->pool, arg, colon - arg) : arg;
    if (colon)
        args = colon + 1;
    cache_prov = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name,
                                    AP_SOCACHE_PROVIDER_VERSION);
    if (cache_prov == NULL)
        return apr_psprintf(cmd->pool,
                            "%s: no socache provider '%s' (load "
                            "mod_socache_%s)",
                            cmd->cmd->name, name, name);
    err = cache_prov->create(&cache_inst, args, cmd->temp_pool, cmd->pool);
    if (err)
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
    cache_name = name;
    return NULL;
}

/* "<host>:<port>" of s, or "<host>" where its port is not known. */
static const char *server_label(apr_pool_t *p, const server_rec *s)
{
    const char *host = s->server_hostname ? s->server_hostname : "-";
    unsigned port = s->port;
    if (port == 0 && s->is_virtual && s->addrs)
        port = s->addrs->host_port;
    return port ? apr_psprintf(p, "%s:%u", host, port) : host;
}

static const char *scope_label(apr_pool_t *p, const mtls_scope_t *sc)
{
    const char *srv = server_label(p, sc->s);
    const ap_directive_t *d = sc->section;
    const char *args;
    if (d == NULL)
        return srv;
    args = d->args ? d->args : "";
    return apr_pstrcat(p, srv, " ", d->directive, " ", args,
                       *args && args[strlen(args) - 1] == '>' ? "" : ">", NULL);
}

/* Every scope's label, unique: where two sections have the same one,
 * each gets its place. */
static void label_scopes(apr_pool_t *p)
{
    apr_hash_t *n = apr_hash_make(p);
    int i;
    for (i = 1; i < scopes->nelts; i++) {
        mtls_scope_t *sc = APR_ARRAY_IDX(scopes, i, mtls_scope_t *);
        int *k;
        sc->label = scope_label(p, sc);
        k = apr_hash_get(n, sc->label, APR_HASH_KEY_STRING);
        if (k == NULL) {
            k = apr_pcalloc(p, sizeof(*k));
            apr_hash_set(n, sc->label, APR_HASH_KEY_STRING, k);
        }
        (*k)++;
    }
    for (i = 1; i < scopes->nelts; i++) {
        mtls_scope_t *sc = APR_ARRAY_IDX(scopes, i, mtls_scope_t *);
        const int *k = apr_hash_get(n, sc->label, APR_HASH_KEY_STRING);
        if (*k > 1 && sc->section)
            sc->label =
                apr_psprintf(p, "%s (%s:%d)", sc->label, sc->section->filename,
                             sc->section->line_num);
        else if (*k > 1)
            sc->label = apr_psprintf(p, "%s (%s:%d)", sc->label,
                                     sc->s->defn_name ? sc->s->defn_name : "-",
                                     sc->s->defn_line_number);
    }
    for (i = 0; i < scopes->nelts; i++)
        APR_ARRAY_IDX(scopes, i, mtls_scope_t *)->slot = i;
}

static void add_range(void *baton, const mtls_rule_t *base, int n, int first)
{
    const stats_set_t *set = baton;
    stats_range_t *r = &ranges[n_ranges++];
    r->lo = (apr_uintptr_t)base;
    r->hi = (apr_uintptr_t)(base + n);
    r->slot = set->base + first;
}

static void count_slabs(void *baton, const mtls_rule_t *base, int n, int first)
{
    (void)base;
    (void)n;
    (void)first;
    (*(int *)baton)++;
}

static int range_cmp(const void *a, const void *b)
{
    const stats_range_t *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Slots for every rule, and the address ranges that find them. */
static void place_rules(apr_pool_t *p)
{
    int i, slabs = 0;
    n_rules = 0;
    for (i = 0; i < sets->nelts; i++) {
        stats_set_t *set = &APR_ARRAY_IDX(sets, i, stats_set_t);
        set->base = n_rules;
        n_rules += mtls_ruleset_count(set->rs);
        mtls_ruleset_slabs(set->rs, count_slabs, &slabs);
    }
    ranges = apr_pcalloc(p, (slabs + 1) * sizeof(*ranges));
    n_ranges = 0;
    for (i = 0; i < sets->nelts; i++) {
        stats_set_t *set = &APR_ARRAY_IDX(sets, i, stats_set_t);
        mtls_ruleset_slabs(set->rs, add_range, set);
    }
    qsort(ranges, n_ranges, sizeof(*ranges), range_cmp);
}

static int rule_slot(const mtls_rule_t *rule)
{
    apr_uintptr_t a = (apr_uintptr_t)rule;
    int lo = 0, hi = n_ranges - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (a < ranges[mid].lo)
            hi = mid - 1;
        else if (a >= ranges[mid].hi)
            lo = mid + 1;
        else
            return ranges[mid].slot +
                   (int)((a - ranges[mid].lo) / sizeof(mtls_rule_t));
    }
    return -1;
}

/* A cache entry: this header, then subject, issuer and rule, each
 * followed by a NUL. */
typedef struct {
    apr_int64_t not_after, last_seen;
    apr_uint64_t requests;
    unsigned char issuer_fp[MTLS_FP_LEN];
} seen_head_t;

/* ---- carrying counts across a restart ----------------------------------- */

/* In the parent process's pool, which outlives every generation (and
 * this module's code, which httpd unloads at a restart): malloc'ed,
 * freed by the generation that takes it. */
#define CARRY_KEY "mtls_authz_stats_carry"
#define STARTED_KEY "mtls_authz_stats_started"

typedef struct {
    apr_uint64_t digest, admissions, denials, last, since;
} carry_rule_t;

typedef struct {
    apr_uint64_t digest;
    apr_uint64_t n[N_SCOPE_CTRS];
} carry_scope_t;

/* A seen cache entry: its id (the certificate's SHA-256) and data. */
typedef struct carry_seen carry_seen_t;
struct carry_seen {
    carry_seen_t *next;
    unsigned int len;
    unsigned char id[MTLS_FP_LEN];
    unsigned char data[1];
};

typedef struct {
    apr_time_t restarted;
    int n_rules, n_scopes;
    carry_rule_t *rules; /* sorted by digest */
    carry_scope_t *scopes;
    carry_seen_t *seen;
} carry_t;

typedef struct {
    pid_t parent;
    apr_pool_t *process_pool;
} carry_ctx_t;

static apr_uint64_t label_digest(const char *s)
{
    apr_uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int carry_cmp(const void *a, const void *b)
{
    const carry_rule_t *x = a, *y = b;
    return x->digest < y->digest ? -1 : x->digest > y->digest;
}

typedef struct {
    carry_t *c;
    const stats_set_t *set;
} carry_walk_t;

static void carry_rule(void *baton, const mtls_rule_t *rule, int i)
{
    carry_walk_t *w = baton;
    carry_rule_t *cr = &w->c->rules[w->c->n_rules++];
    const rule_ctr_t *ctr = &rule_ctrs[w->set->base + i];
    cr->digest = mtls_rule_digest(rule, w->set->scope->label);
    cr->admissions = ctr->admissions;
    cr->denials = ctr->denials;
    cr->last = ctr->last;
    cr->since = ctr->since ? ctr->since : (apr_uint64_t)head->started;
}

static int cache_lock(void);
static void cache_unlock(void);

static apr_status_t carry_seen_one(ap_socache_instance_t *inst, server_rec *s,
                                   void *userctx, const unsigned char *id,
                                   unsigned int idlen,
                                   const unsigned char *data,
                                   unsigned int datalen, apr_pool_t *pool)
{
    carry_t *c = userctx;
    carry_seen_t *e;
    (void)inst;
    (void)s;
    (void)pool;
    if (idlen != MTLS_FP_LEN || (e = malloc(sizeof(*e) + datalen)) == NULL)
        return APR_SUCCESS;
    memcpy(e->id, id, MTLS_FP_LEN);
    memcpy(e->data, data, datalen);
    e->len = datalen;
    e->next = c->seen;
    c->seen = e;
    return APR_SUCCESS;
}

/* The recently seen clients, which the next generation's cache would
 * otherwise start without. */
static void carry_seen_take(carry_t *c)
{
    apr_pool_t *p;
    if (!cache_on() || cache_prov->iterate == NULL ||
        apr_pool_create(&p, NULL) != APR_SUCCESS)
        return;
    if (cache_lock()) {
        cache_prov->iterate(cache_inst, main_server, c, carry_seen_one, p);
        cache_unlock();
    }
    apr_pool_destroy(p);
}

static void carry_seen_give(carry_t *c, apr_pool_t *p)
{
    carry_seen_t *e, *next;
    apr_time_t now = apr_time_now();
    for (e = c->seen; e; e = next) {
        seen_head_t h;
        next = e->next;
        /* Each keeps the end it had: a month after it was last seen. */
        if (cache_on() && e->len >= sizeof(h)) {
            memcpy(&h, e->data, sizeof(h));
            if (h.last_seen + SEEN_FOR > now)
                cache_prov->store(cache_inst, main_server, e->id, MTLS_FP_LEN,
                                  h.last_seen + SEEN_FOR, e->data, e->len, p);
        }
        free(e);
    }
    c->seen = NULL;
}

/* Before this generation's pools go (a pre-cleanup, while its rules are
 * whole), in the parent only: every rule's and scope's counts, for the
 * next generation. */
static apr_status_t carry_take(void *data)
{
    const carry_ctx_t *ctx = data;
    carry_t *c;
    int i;

    /* A restart only: at exit nothing follows, and a child ending its
     * pools has nothing to give. */
    if (getpid() != ctx->parent || rule_ctrs == NULL ||
        ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_DESTROY_CONFIG)
        return APR_SUCCESS;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return APR_SUCCESS;
    c->restarted = head->restarted;
    c->rules = malloc((n_rules + 1) * sizeof(carry_rule_t));
    c->scopes = malloc(scopes->nelts * sizeof(carry_scope_t));
    if (c->rules == NULL || c->scopes == NULL) {
        free(c->rules);
        free(c->scopes);
        free(c);
        return APR_SUCCESS;
    }
    for (i = 0; i < sets->nelts; i++) {
        carry_walk_t w = {c, &APR_ARRAY_IDX(sets, i, stats_set_t)};
        mtls_ruleset_each(w.set->rs, carry_rule, &w);
    }
    qsort(c->rules, c->n_rules, sizeof(carry_rule_t), carry_cmp);
    carry_seen_take(c);
    for (i = 0; i < scopes->nelts; i++) {
        carry_scope_t *cs = &c->scopes[c->n_scopes++];
        cs->digest =
            label_digest(APR_ARRAY_IDX(scopes, i, mtls_scope_t *)->label);
        memcpy(cs->n, (const void *)&scope_ctrs[i * N_SCOPE_CTRS],
               sizeof(cs->n));
    }
    apr_pool_userdata_set(c, CARRY_KEY, NULL, ctx->process_pool);
    return APR_SUCCESS;
}

static carry_rule_t *carry_find(carry_t *c, apr_uint64_t digest)
{
    int lo = 0, hi = c->n_rules - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (c->rules[mid].digest < digest)
            lo = mid + 1;
        else if (c->rules[mid].digest > digest)
            hi = mid - 1;
        else {
            /* the first of equal digests not taken yet: a rule written
             * twice in one scope keeps each count once */
            while (mid > 0 && c->rules[mid - 1].digest == digest)
                mid--;
            while (mid < c->n_rules && c->rules[mid].digest == digest &&
                   c->rules[mid].since == 0)
                mid++;
            return mid < c->n_rules && c->rules[mid].digest == digest
                       ? &c->rules[mid]
                       : NULL;
        }
    }
    return NULL;
}

static void carry_give(void *baton, const mtls_rule_t *rule, int i)
{
    carry_walk_t *w = baton;
    rule_ctr_t *ctr = &rule_ctrs[w->set->base + i];
    carry_rule_t *cr =
        carry_find(w->c, mtls_rule_digest(rule, w->set->scope->label));
    if (cr == NULL) {
        ctr->since = (apr_uint64_t)head->restarted; /* new here */
        return;
    }
    /* Only what differs from zero: the pages of a million rules that
     * never matched stay untouched. */
    if (cr->admissions || cr->denials || cr->last) {
        ctr->admissions = cr->admissions;
        ctr->denials = cr->denials;
        ctr->last = cr->last;
    }
    if (cr->since != (apr_uint64_t)head->started)
        ctr->since = cr->since;
    cr->since = 0; /* taken */
}

/* The counts of the rules and scopes that the last generation had too. */
static void carry_apply(carry_t *c)
{
    int i, j;
    for (i = 0; i < sets->nelts; i++) {
        carry_walk_t w = {c, &APR_ARRAY_IDX(sets, i, stats_set_t)};
        mtls_ruleset_each(w.set->rs, carry_give, &w);
    }
    for (i = 0; i < scopes->nelts; i++) {
        apr_uint64_t d =
            label_digest(APR_ARRAY_IDX(scopes, i, mtls_scope_t *)->label);
        for (j = 0; j < c->n_scopes; j++) {
            if (c->scopes[j].digest == d) {
                memcpy((void *)&scope_ctrs[i * N_SCOPE_CTRS], c->scopes[j].n,
                       sizeof(c->scopes[j].n));
                c->scopes[j].digest = 0;
                break;
            }
        }
    }
}

/* ---- post_config -------------------------------------------------------- */

static apr_time_t *started_at(apr_pool_t *process_pool)
{
    void *v = NULL;
    apr_pool_userdata_get(&v, STARTED_KEY, process_pool);
    if (v == NULL) {
        apr_time_t *t = apr_palloc(process_pool, sizeof(*t));
        *t = apr_time_now();
        apr_pool_userdata_set(t, STARTED_KEY, apr_pool_cleanup_null,
                              process_pool);
        v = t;
    }
    return v;
}

static int make_counters(apr_pool_t *pconf, server_rec *s)
{
    apr_size_t size = APR_ALIGN_DEFAULT(sizeof(shm_head_t)) +
                      (apr_size_t)n_rules * sizeof(rule_ctr_t) +
                      (apr_size_t)scopes->nelts * N_SCOPE_CTRS * 8;
    apr_shm_t *shm;
    char *base;
    apr_status_t rv = apr_shm_create(&shm, size, NULL, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     "cannot make %" APR_SIZE_T_FMT
                     " bytes of shared memory for the counters",
                     size);
        return !OK;
    }
    /* Anonymous shared memory is zero: nothing to touch for a rule that
     * is never used, so a million rules cost no resident memory here. */
    base = apr_shm_baseaddr_get(shm);
    head = (shm_head_t *)base;
    rule_ctrs = (rule_ctr_t *)(base + APR_ALIGN_DEFAULT(sizeof(shm_head_t)));
    scope_ctrs = (volatile apr_uint64_t *)(rule_ctrs + n_rules);
    return OK;
}

static int cache_init(apr_pool_t *pconf, server_rec *s);

int mtls_stats_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    carry_ctx_t *ctx;
    void *carry = NULL;

    main_server = s;
    /* httpd throws the first pass at startup away. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    label_scopes(pconf);
    place_rules(pconf);
    if (make_counters(pconf, s) != OK)
        return !OK;
    head->started = *started_at(s->process->pool);
    head->restarted = apr_time_now();
    if (cache_init(pconf, s) != OK)
        return !OK;
    apr_pool_userdata_get(&carry, CARRY_KEY, s->process->pool);
    if (carry) {
        carry_t *c = carry;
        carry_apply(c);
        carry_seen_give(c, ptemp);
        free(c->rules);
        free(c->scopes);
        free(c);
        apr_pool_userdata_set(NULL, CARRY_KEY, NULL, s->process->pool);
    }
    else {
        head->restarted = head->started;
    }
    ctx = apr_palloc(pconf, sizeof(*ctx));
    ctx->parent = getpid();
    ctx->process_pool = s->process->pool;
    apr_pool_pre_cleanup_register(pconf, ctx, carry_take);
    return OK;
}

/* ---- request time: counters ---------------------------------------------- */

void mtls_stats_decision(const mtls_scope_t *scope, mtls_outcome_stat_e o,
                         mtls_why_e why)
{
    int slot = scope ? scope->slot : 0;
    if (scope_ctrs == NULL || slot < 0 || slot >= scopes->nelts)
        return;
    CTR_INC64(&scope_ctrs[slot * N_SCOPE_CTRS + o * MTLS_N_WHYS + why]);
}

void mtls_stats_refused_by(const mtls_rule_t *rule)
{
    int slot = rule && rule_ctrs ? rule_slot(rule) : -1;
    if (slot >= 0)
        CTR_INC64(&rule_ctrs[slot].denials);
}

static void seen_note(request_rec *r, const mtls_rule_t *rule,
                      const mtls_identity_t *id, void **seen);

int mtls_stats_watching(void)
{
    return cache_on() || expiry_days != 0;
}

void mtls_stats_admitted(request_rec *r, const mtls_rule_t *rule,
                         const mtls_identity_t *id, void **seen)
{
    int slot = rule_ctrs ? rule_slot(rule) : -1;
    if (slot >= 0) {
        CTR_INC64(&rule_ctrs[slot].admissions);
        CTR_SET64(&rule_ctrs[slot].last, (apr_uint64_t)r->request_time);
    }
    if (seen)
        seen_note(r, rule, id, seen);
}

/* ---- the recently seen clients ------------------------------------------- */

#define SEEN_MAX 2048
#define SEEN_EVERY apr_time_from_sec(60)
#define SEEN_SUBJECT_MAX 1200
#define SEEN_ISSUER_MAX 400
#define SEEN_RULE_MAX 300
/* A subject, issuer or rule longer than its maximum is cut. */
typedef char seen_fits[sizeof(seen_head_t) + SEEN_SUBJECT_MAX +
                                   SEEN_ISSUER_MAX + SEEN_RULE_MAX + 3 <=
                               SEEN_MAX
                           ? 1
                           : -1];

/* What one connection recorded of its current certificate: malloc'ed
 * (HTTP/2 streams make it on their own threads), freed when the
 * connection ends or its certificate is replaced (seen_end). */
typedef struct {
    volatile apr_uint32_t pending; /* admissions not yet in the cache */
    volatile apr_uint64_t written; /* when they last went there */
    unsigned char fp[MTLS_FP_LEN];
    apr_size_t len;
    unsigned char data[SEEN_MAX];
} seen_conn_t;

static int cache_lock(void)
{
    return cache_mutex == NULL ||
           apr_global_mutex_lock(cache_mutex) == APR_SUCCESS;
}

static void cache_unlock(void)
{
    if (cache_mutex)
        apr_global_mutex_unlock(cache_mutex);
}

/* Adds n requests to sc's entry (or makes it anew from sc), last seen
 * now. Under the cache's lock: one per connection, never per request. */
static void seen_write(seen_conn_t *sc, apr_uint64_t n, apr_pool_t *p)
{
    unsigned char buf[SEEN_MAX];
    unsigned int len = sizeof(buf);
    seen_head_t h;
    apr_time_t now = apr_time_now();

    if (!cache_on() || !cache_lock())
        return;
    if (cache_prov->retrieve(cache_inst, main_server, sc->fp, MTLS_FP_LEN, buf,
                             &len, p) != APR_SUCCESS ||
        len < sizeof(h)) {
        memcpy(buf, sc->data, sc->len);
        len = (unsigned int)sc->len;
        memcpy(&h, buf, sizeof(h));
        h.requests = 0;
    }
    else {
        memcpy(&h, buf, sizeof(h));
        /* this connection's rule: the one that admitted the
         * certificate first on the connection that writes last */
        memcpy(buf, sc->data, sc->len);
        len = (unsigned int)sc->len;
    }
    h.requests += n;
    h.last_seen = now;
    memcpy(buf, &h, sizeof(h));
    cache_prov->store(cache_inst, main_server, sc->fp, MTLS_FP_LEN,
                      now + SEEN_FOR, buf, len, p);
    cache_unlock();
}

void mtls_stats_seen_end(void *data)
{
    seen_conn_t *sc = data;
    apr_uint32_t n = apr_atomic_xchg32(&sc->pending, 0);
    apr_pool_t *p;
    if (n && cache_on() && apr_pool_create(&p, NULL) == APR_SUCCESS) {
        seen_write(sc, n, p);
        apr_pool_destroy(p);
    }
    free(sc);
}

/* s at d + at, cut to max bytes (at a UTF-8 character's start) and
 * NUL-terminated; returns where the next one goes. The caller's maxima
 * add up to less than SEEN_MAX. */
static apr_size_t put_str(unsigned char *d, apr_size_t at, const char *s,
                          apr_size_t max)
{
    apr_size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(d + at, s, n);
    d[at + n] = '\0';
    return at + n + 1;
}

static apr_time_t cert_not_after(X509 *cert)
{
    struct tm tm;
    const ASN1_TIME *t = X509_get0_notAfter(cert);
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    return apr_time_from_sec((apr_time_t)timegm(&tm));
}

static void expiry_watch(request_rec *r, const mtls_rule_t *rule,
                         const seen_conn_t *sc, const seen_head_t *h,
                         const char *subject, const char *issuer);

/* The issuer's name as the subject is printed: RFC 2253. */
static const char *issuer_text(apr_pool_t *p, X509 *cert)
{
    BIO *b = BIO_new(BIO_s_mem());
    const char *out = "";
    char *m;
    long n;
    if (b &&
        X509_NAME_print_ex(b, X509_get_issuer_name(cert), 0,
                           XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0 &&
        (n = BIO_get_mem_data(b, &m)) >= 0)
        out = apr_pstrmemdup(p, m, (apr_size_t)n);
    BIO_free(b);
    return out;
}

static void seen_first(request_rec *r, const mtls_rule_t *rule,
                       const mtls_identity_t *id, void **slot);

/* The client's entry, once per connection and certificate; later
 * admissions on the connection only count. */
static void seen_note(request_rec *r, const mtls_rule_t *rule,
                      const mtls_identity_t *id, void **slot)
{
    seen_conn_t *sc = PTR_GET(slot);
    apr_uint64_t last;
    if (sc == NULL) {
        seen_first(r, rule, id, slot);
        return;
    }
    CTR_INC32(&sc->pending);
    /* A long connection (keep-alive, HTTP/2) writes what it counted once
     * a minute, not only when it ends: its client's last_seen stays
     * true, and a restart loses a minute of its requests at most. */
    last = sc->written;
    /* Signed: a stream of an HTTP/2 connection may have arrived before
     * the one that wrote last. */
    if ((apr_int64_t)((apr_uint64_t)r->request_time - last) > SEEN_EVERY &&
        cache_on() &&
        apr_atomic_cas64(&sc->written, (apr_uint64_t)r->request_time, last) ==
            last) {
        apr_uint32_t n = apr_atomic_xchg32(&sc->pending, 0);
        if (n)
            seen_write(sc, n, r->pool);
    }
}

/* Per child: the start of the seen entry of each certificate admitted
 * lately (its header, subject and issuer), so that its client's next
 * connection neither hashes the certificate nor prints its names again.
 * - Keyed on: the certificate's signature (its CA's, unique to it),
 *   confirmed by the serial number and issuer of the certificate kept.
 * - Invalidated by: growing past KNOWN_MAX (emptied).
 * - Changed by: any thread of the child, under stats_mutex. */
#define KNOWN_MAX 1024
typedef struct {
    X509 *cert; /* a reference */
    unsigned char fp[MTLS_FP_LEN];
    apr_size_t len;
    unsigned char data[1];
} known_t;
static apr_pool_t *known_pool;
static apr_hash_t *known;
#if APR_HAS_THREADS
static apr_thread_mutex_t *stats_mutex;
#endif

static int stats_lock(void)
{
#if APR_HAS_THREADS
    return stats_mutex == NULL ||
           apr_thread_mutex_lock(stats_mutex) == APR_SUCCESS;
#else
    return 1;
#endif
}

static void stats_unlock(void)
{
#if APR_HAS_THREADS
    if (stats_mutex)
        apr_thread_mutex_unlock(stats_mutex);
#endif
}

static apr_status_t known_free(void *data)
{
    X509_free(((known_t *)data)->cert);
    return APR_SUCCESS;
}

/* Fills sc's hash and the start of its data from what is known of cert;
 * returns where the rule goes, or 0 if cert is not known. */
static apr_size_t known_copy(X509 *cert, const unsigned char *key, int klen,
                             seen_conn_t *sc)
{
    const known_t *k;
    apr_size_t at = 0;
    if (known == NULL || !stats_lock())
        return 0;
    k = apr_hash_get(known, key, klen);
    /* The same signature, serial number and issuer: the same
     * certificate. Not X509_cmp, which would cache the extensions of a
     * certificate restored from a resumed session (thousands of
     * instructions) to compare SHA-1s. */
    if (k &&
        ASN1_INTEGER_cmp(X509_get0_serialNumber(k->cert),
                         X509_get0_serialNumber(cert)) == 0 &&
        X509_NAME_cmp(X509_get_issuer_name(k->cert),
                      X509_get_issuer_name(cert)) == 0) {
        memcpy(sc->fp, k->fp, MTLS_FP_LEN);
        memcpy(sc->data, k->data, k->len);
        at = k->len;
    }
    stats_unlock();
    return at;
}

static void known_add(X509 *cert, const unsigned char *key, int klen,
                      const seen_conn_t *sc, apr_size_t at)
{
    known_t *k;
    if (known == NULL || !stats_lock())
        return;
    if (apr_hash_count(known) >= KNOWN_MAX) {
        apr_pool_clear(known_pool);
        known = apr_hash_make(known_pool);
    }
    k = apr_palloc(known_pool, sizeof(*k) + at);
    k->cert = cert;
    X509_up_ref(cert);
    memcpy(k->fp, sc->fp, MTLS_FP_LEN);
    memcpy(k->data, sc->data, at);
    k->len = at;
    apr_pool_cleanup_register(known_pool, k, known_free, apr_pool_cleanup_null);
    apr_hash_set(known, apr_pmemdup(known_pool, key, klen), klen, k);
    stats_unlock();
}

/* The header, subject and issuer of id's entry into sc; returns where
 * the rule goes. */
static apr_size_t seen_make(request_rec *r, const mtls_identity_t *id,
                            seen_conn_t *sc)
{
    const ASN1_BIT_STRING *sig = NULL;
    const unsigned char *key = NULL;
    int klen = 0;
    seen_head_t h;
    apr_size_t at;

    X509_get0_signature(&sig, NULL, id->cert);
    if (sig && (klen = ASN1_STRING_length(sig)) > 0)
        key = ASN1_STRING_get0_data(sig);
    if (key && (at = known_copy(id->cert, key, klen, sc)) != 0)
        return at;
    memmove(sc->fp, mtls_identity_cert_fp(id, sc->fp), MTLS_FP_LEN);
    memset(&h, 0, sizeof(h));
    h.not_after = cert_not_after(id->cert);
    h.requests = 1;
    if (id->n_issuers)
        memcpy(h.issuer_fp, id->issuer_fps, MTLS_FP_LEN);
    memcpy(sc->data, &h, sizeof(h));
    at = put_str(sc->data, sizeof(h), mtls_identity_subject_text(r->pool, id),
                 SEEN_SUBJECT_MAX);
    at = put_str(sc->data, at, issuer_text(r->pool, id->cert), SEEN_ISSUER_MAX);
    if (key)
        known_add(id->cert, key, klen, sc, at);
    return at;
}

static void seen_first(request_rec *r, const mtls_rule_t *rule,
                       const mtls_identity_t *id, void **slot)
{
    seen_conn_t *sc;
    seen_head_t h;
    const char *subject, *issuer;

    if ((sc = malloc(sizeof(*sc))) == NULL)
        return;
    /* Whole before it is shared: another stream of an HTTP/2 connection
     * may use it as soon as it is on the connection. */
    sc->pending = 0;
    sc->written = (apr_uint64_t)r->request_time;
    sc->len =
        put_str(sc->data, seen_make(r, id, sc), rule->source, SEEN_RULE_MAX);
    if (apr_atomic_casptr((volatile void **)slot, sc, NULL) != NULL) {
        /* another stream of this connection was first */
        free(sc);
        seen_note(r, rule, id, slot);
        return;
    }
    if (cache_on())
        seen_write(sc, 1, r->pool);
    memcpy(&h, sc->data, sizeof(h));
    subject = (const char *)sc->data + sizeof(h);
    issuer = subject + strlen(subject) + 1;
    expiry_watch(r, rule, sc, &h, subject, issuer);
}

/* ---- the expiry watch ---------------------------------------------------- */

/* Per child: when each certificate was last warned about.
 * - Keyed on: the certificate's SHA-256.
 * - Invalidated by: an hour passing; emptied when it grows past
 *   WARNED_MAX (a warning may then come again early).
 * - Changed by: any thread of the child, under stats_mutex. */
#define WARNED_MAX 4096
static apr_pool_t *warn_pool;
static apr_hash_t *warned;

static int warn_due(const unsigned char *fp, apr_time_t now)
{
    apr_time_t *last;
    int due = 0;
    if (warn_pool == NULL)
        return 0;
    if (!stats_lock())
        return 0;
    last = apr_hash_get(warned, fp, MTLS_FP_LEN);
    if (last == NULL || now - *last >= apr_time_from_sec(3600)) {
        if (last == NULL && apr_hash_count(warned) >= WARNED_MAX) {
            apr_pool_clear(warn_pool);
            warned = apr_hash_make(warn_pool);
        }
        if (last == NULL) {
            unsigned char *k = apr_pmemdup(warn_pool, fp, MTLS_FP_LEN);
            last = apr_palloc(warn_pool, sizeof(*last));
            apr_hash_set(warned, k, MTLS_FP_LEN, last);
        }
        *last = now;
        due = 1;
    }
    stats_unlock();
    return due;
}

static void expiry_watch(request_rec *r, const mtls_rule_t *rule,
                         const seen_conn_t *sc, const seen_head_t *h,
                         const char *subject, const char *issuer)
{
    int days = expiry_days == EXPIRY_UNSET ? 30 : expiry_days;
    apr_time_t now = apr_time_now();
    char t[MTLS_TIME_TEXT_LEN];

    if (days == 0 || h->not_after == 0 ||
        h->not_after - now > apr_time_from_sec((apr_time_t)days * 86400) ||
        !warn_due(sc->fp, now))
        return;
    mtls_time_text(t, h->not_after);
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  "client certificate expires at %s (in %d days): subject "
                  "\"%s\", issuer \"%s\" sha256:%s, admitted by rule %s",
                  t,
                  h->not_after > now
                      ? (int)((h->not_after - now) / apr_time_from_sec(86400))
                      : 0,
                  ap_escape_logitem(r->pool, subject),
                  ap_escape_logitem(r->pool, issuer),
                  mtls_fp_hex(r->pool, h->issuer_fp),
                  ap_escape_logitem(r->pool, rule->source));
}

void mtls_stats_child_init(apr_pool_t *pchild, server_rec *s)
{
    (void)s;
    if (cache_mutex)
        apr_global_mutex_child_init(
            &cache_mutex, apr_global_mutex_lockfile(cache_mutex), pchild);
#if APR_HAS_THREADS
    if (apr_thread_mutex_create(&stats_mutex, APR_THREAD_MUTEX_DEFAULT,
                                pchild) != APR_SUCCESS)
        return;
#endif
    if (apr_pool_create(&warn_pool, pchild) != APR_SUCCESS ||
        apr_pool_create(&known_pool, pchild) != APR_SUCCESS) {
        warn_pool = known_pool = NULL;
        return;
    }
    warned = apr_hash_make(warn_pool);
    known = apr_hash_make(known_pool);
}

/* ---- the cache's life ---------------------------------------------------- */

static apr_status_t cache_destroy(void *data)
{
    if (cache_inst && cache_prov)
        cache_prov->destroy(cache_inst, data);
    cache_inst = NULL;
    return APR_SUCCESS;
}

static int cache_init(apr_pool_t *pconf, server_rec *s)
{
    struct ap_socache_hints hints = {MTLS_FP_LEN, 256, apr_time_from_sec(600)};
    const char *err;
    apr_status_t rv;

    if (cache_name == NULL) {
        cache_prov = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, "shmcb",
                                        AP_SOCACHE_PROVIDER_VERSION);
        if (cache_prov == NULL) {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                         "MTLSAuthzSeenCache: off (mod_socache_shmcb is "
                         "not loaded)");
            return OK;
        }
        err = cache_prov->create(&cache_inst, NULL, pconf, pconf);
        if (err) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         "MTLSAuthzSeenCache: %s", err);
            return !OK;
        }
        cache_name = "shmcb";
    }
    if (cache_prov == NULL || cache_inst == NULL)
        return OK;
    if (cache_prov->flags & AP_SOCACHE_FLAG_NOTMPSAFE) {
        rv = ap_global_mutex_create(&cache_mutex, NULL, CACHE_MUTEX, NULL, s,
                                    pconf, 0);
        if (rv != APR_SUCCESS)
            return !OK;
    }
    rv = cache_prov->init(cache_inst, "mtls-authz-seen", &hints, s, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     "MTLSAuthzSeenCache: cannot initialise the %s cache",
                     cache_name);
        return !OK;
    }
    apr_pool_cleanup_register(pconf, s, cache_destroy, apr_pool_cleanup_null);
    return OK;
}

/* ---- the status page ----------------------------------------------------- */

void mtls_stats_info(mtls_stats_info_t *info)
{
    info->ready = head != NULL;
    info->started = head ? head->started : 0;
    info->restarted = head ? head->restarted : 0;
    info->cache = cache_on() ? cache_name : NULL;
}

typedef struct {
    const stats_set_t *set;
    mtls_stats_rule_fn *fn;
    void *baton;
    int stop;
    apr_pool_t *p;
    const char *last; /* the previous rule's source, and how many had it */
    int n;
} each_rule_t;

static void each_rule(void *baton, const mtls_rule_t *rule, int i)
{
    each_rule_t *e = baton;
    const rule_ctr_t *c = &rule_ctrs[e->set->base + i];
    mtls_stats_rule_t v;
    if (e->stop)
        return;
    v.rule = rule;
    e->n = e->last && strcmp(e->last, rule->source) == 0 ? e->n + 1 : 1;
    e->last = rule->source;
    v.name = e->n == 1 ? rule->source
                       : apr_psprintf(e->p, "%s#%d", rule->source, e->n);
    v.scope = e->set->scope->label;
    v.admissions = apr_atomic_read64((volatile apr_uint64_t *)&c->admissions);
    v.denials = apr_atomic_read64((volatile apr_uint64_t *)&c->denials);
    v.last = (apr_time_t)apr_atomic_read64((volatile apr_uint64_t *)&c->last);
    v.since = c->since ? (apr_time_t)c->since : head->started;
    e->stop = !e->fn(e->baton, &v);
}

void mtls_stats_each_rule(apr_pool_t *p, mtls_stats_rule_fn *fn, void *baton)
{
    int i;
    each_rule_t e = {NULL, fn, baton, 0, p, NULL, 0};
    if (rule_ctrs == NULL)
        return;
    for (i = 0; i < sets->nelts && !e.stop; i++) {
        e.set = &APR_ARRAY_IDX(sets, i, stats_set_t);
        e.last = NULL;
        mtls_ruleset_each(e.set->rs, each_rule, &e);
    }
}

void mtls_stats_each_decision(mtls_stats_decision_fn *fn, void *baton)
{
    int i, k;
    if (scope_ctrs == NULL)
        return;
    for (i = 0; i < scopes->nelts; i++) {
        for (k = 0; k < N_SCOPE_CTRS; k++) {
            apr_uint64_t n =
                apr_atomic_read64(&scope_ctrs[i * N_SCOPE_CTRS + k]);
            if (n)
                fn(baton, APR_ARRAY_IDX(scopes, i, mtls_scope_t *)->label,
                   k / MTLS_N_WHYS, k % MTLS_N_WHYS, n);
        }
    }
}

static apr_status_t collect(ap_socache_instance_t *inst, server_rec *s,
                            void *userctx, const unsigned char *id,
                            unsigned int idlen, const unsigned char *data,
                            unsigned int datalen, apr_pool_t *pool)
{
    apr_array_header_t *out = userctx;
    mtls_stats_client_t *c;
    seen_head_t h;
    const char *str, *end;
    (void)inst;
    (void)s;
    (void)pool;
    if (idlen != MTLS_FP_LEN || datalen < sizeof(h) + 3 ||
        data[datalen - 1] != '\0')
        return APR_SUCCESS;
    memcpy(&h, data, sizeof(h));
    c = apr_array_push(out);
    memcpy(c->cert_fp, id, MTLS_FP_LEN);
    memcpy(c->issuer_fp, h.issuer_fp, MTLS_FP_LEN);
    c->not_after = h.not_after;
    c->last_seen = h.last_seen;
    c->requests = h.requests;
    str = (const char *)data + sizeof(h);
    end = (const char *)data + datalen;
    c->subject = apr_pstrdup(out->pool, str);
    str += strlen(str) + 1;
    c->issuer = str < end ? apr_pstrdup(out->pool, str) : "";
    str += strlen(c->issuer) + 1;
    c->rule = str < end ? apr_pstrdup(out->pool, str) : "";
    return APR_SUCCESS;
}

static int client_cmp(const void *a, const void *b)
{
    const mtls_stats_client_t *x = a, *y = b;
    if (x->not_after != y->not_after)
        return x->not_after < y->not_after ? -1 : 1;
    return memcmp(x->cert_fp, y->cert_fp, MTLS_FP_LEN);
}

apr_array_header_t *mtls_stats_clients(request_rec *r, apr_pool_t *p)
{
    apr_array_header_t *out =
        apr_array_make(p, 16, sizeof(mtls_stats_client_t));
    if (!cache_on() || cache_prov->iterate == NULL || !cache_lock())
        return out;
    cache_prov->iterate(cache_inst, r->server, out, collect, p);
    cache_unlock();
    qsort(out->elts, out->nelts, sizeof(mtls_stats_client_t), client_cmp);
    return out;
}
