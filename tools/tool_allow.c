/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls-authz-rule: the MTLSAllow lines that admit a certificate, and
 * the MTLSAllowIssuerFingerprint lines of CA certificates (--issuer). */

#include <apr_hash.h>
#include <apr_strings.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "mtls_policy.h"
#include "tool.h"

/* ---- checking a directive as httpd would hand it over --------------- */

/* Checks a printed line as httpd would read it: no ${ (httpd would
 * expand it), no control byte, no trailing '\' or space (a continuation
 * line), not longer than httpd's line limit. */
const char *tool_line_problem(const char *text, const char *dir)
{
    size_t len = strlen(text), dlen = strlen(dir);
    const char *s;

    if (strncmp(text, dir, dlen) != 0 || text[dlen] != ' ')
        return dlen == 9 ? "not an MTLSAllow line" : "not an MTLSDeny line";
    if (strstr(text, "${"))
        return "it contains ${, which httpd would expand";
    for (s = text; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return "it contains a control character";
    }
    if (text[len - 1] == '\\' || text[len - 1] == ' ')
        return "it ends with a backslash or a space";
    if (len > 8000)
        return "it is longer than httpd's line limit";
    return NULL;
}

/* Checks the printed line (tool_line_problem), then compiles its
 * arguments with the module's parser into an allow ruleset (deny: a
 * deny ruleset) and puts id to mtls_policy_match, the server's own
 * decision. NULL if that admits id (deny: refuses it by that rule). */
static const char *check_line(apr_pool_t *p, const char *text,
                              const mtls_identity_t *id, int deny)
{
    const char *dir = deny ? "MTLSDeny" : "MTLSAllow";
    mtls_ruleset_t *rs =
        deny ? mtls_ruleset_make_deny(p) : mtls_ruleset_make(p);
    const mtls_ruleset_t *const denies[1] = {rs};
    mtls_match_t m;
    const char *err = tool_line_problem(text, dir);

    if (err)
        return err;
    err = mtls_ruleset_add_rule(rs, p, text + strlen(dir) + 1, "check", NULL);
    if (err)
        return apr_psprintf(p, "the module's parser refuses it: %s", err);
    mtls_ruleset_finish(rs);
    if (deny)
        return mtls_policy_match(NULL, denies, 1, id, apr_time_now(), NULL,
                                 NULL, &m) == NULL &&
                       m.miss == MTLS_MISS_DENIED
                   ? NULL
                   : "it does not refuse the certificate";
    return mtls_policy_match(rs, NULL, 0, id, apr_time_now(), NULL, NULL, &m) !=
                   NULL
               ? NULL
               : "it does not admit the certificate";
}

void tool_checked_line(tool_t *t, const char *prefix, const char *text,
                       const mtls_identity_t *id, int deny)
{
    const char *err = check_line(t->p, text, id, deny);
    if (err && t->err == NULL)
        t->err = apr_psprintf(t->p, "internal error: '%s': %s", text, err);
    tool_line(t, apr_pstrcat(t->p, prefix, text, NULL));
}

/* An MTLSAllow line that must admit id. */
static void rule_line(tool_t *t, const char *prefix, const char *text,
                      const mtls_identity_t *id)
{
    tool_checked_line(t, prefix, text, id, 0);
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
            s->shown = apr_pstrcat(p, "IP:", tool_show(p, d, len),
                                   " (malformed)", NULL);
            s->why = "not 4 or 16 bytes: never matches";
            return;
        }
        v = apr_pstrdup(p, v);
        s->shown = apr_pstrcat(
            p, "IP:", tool_show(p, (const unsigned char *)v, strlen(v)), NULL);
    }
    else {
        v = apr_pstrmemdup(p, (const char *)d, len);
        s->shown = apr_pstrcat(p, name, ":", tool_show(p, d, len), NULL);
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

int tool_issuer_mode(tool_t *t, const char *path)
{
    apr_array_header_t *certs;
    const char *err = tool_load_certs(t->p, path, &certs);
    int i;

    if (err) {
        fprintf(stderr, "mtls-authz-rule: %s\n", err);
        return EXIT_INPUT;
    }
    tool_line(t, apr_psprintf(t->p, "# mtls-authz-rule --issuer: %s",
                              tool_show_path(t->p, path)));
    tool_line(t, "# Each CA must also be in the host's SSLCACertificateFile.");
    for (i = 0; i < certs->nelts; i++) {
        X509 *ca = APR_ARRAY_IDX(certs, i, X509 *);
        const char *fp = tool_fp_of(t->p, ca);
        if (X509_check_ca(ca) < 1) {
            fprintf(stderr,
                    "mtls-authz-rule: %s: certificate %d (%s) is not a CA "
                    "certificate, so it signs no client certificate; to pin "
                    "this certificate itself, run without --issuer\n",
                    path, i + 1, tool_show_dn(t->p, X509_get_subject_name(ca)));
            return EXIT_INPUT;
        }
        if (fp == NULL) {
            t->err = "internal error: cannot compute a fingerprint";
            return EXIT_INTERNAL;
        }
        tool_line(t, apr_pstrcat(t->p, "# ",
                                 tool_show_dn(t->p, X509_get_subject_name(ca)),
                                 NULL));
        tool_line(t,
                  apr_pstrcat(t->p, "MTLSAllowIssuerFingerprint ", fp, NULL));
    }
    return EXIT_OK;
}

/* The leaf and its identity, its issuer looked up as the module looks it
 * up in the host's trust store: in the --ca file, or else in the rest of
 * the leaf's own file. An exit code, EXIT_OK if c is filled in. */
static int load_leaf(tool_t *t, cert_t *c)
{
    apr_pool_t *p = t->p;
    apr_array_header_t *certs, *cas;
    X509_STORE *store = tool_store(p);
    const char *err;
    int i;

    if (store == NULL)
        return EXIT_INTERNAL;
    if ((err = tool_load_certs(p, c->path, &certs)) != NULL ||
        (c->ca_path && (err = tool_load_certs(p, c->ca_path, &cas)) != NULL)) {
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
                c->ca_path, c->path,
                tool_show_dn(p, X509_get_issuer_name(c->leaf)));
        return EXIT_INPUT;
    }
    return EXIT_OK;
}

/* The fingerprint, the subject as a rule states it, and the SANs. */
static int read_leaf(tool_t *t, cert_t *c)
{
    const X509_NAME *name = X509_get_subject_name(c->leaf);

    c->cert_fp = tool_fp_of(t->p, c->leaf);
    if (c->cert_fp == NULL) {
        t->err = "internal error: cannot compute a fingerprint";
        return EXIT_INTERNAL;
    }
    c->has_nul = 0;
    c->subject = X509_NAME_entry_count(name) == 0
                     ? NULL
                     : tool_encode_dn(t->p, name, &c->has_nul);
    if (c->has_nul)
        c->subject = NULL;
    c->sans = read_sans(t->p, c->leaf);
    return EXIT_OK;
}

/* The comment lines on what the certificate is: its file, subject,
 * issuer and the issuer's fingerprints. */
void tool_header_lines(tool_t *t, const cert_t *c, const char *mode)
{
    apr_pool_t *p = t->p;
    const char *issuer_src = c->ca_path ? c->ca_path : c->path;
    int i;

    tool_line(t, apr_psprintf(p, "# mtls-authz-rule%s: %s%s", mode,
                              tool_show_path(p, c->path),
                              c->ca_path
                                  ? apr_psprintf(p, " --ca %s",
                                                 tool_show_path(p, c->ca_path))
                                  : ""));
    tool_line(t, apr_pstrcat(p, "# subject: ",
                             tool_show_dn(p, X509_get_subject_name(c->leaf)),
                             NULL));
    tool_line(t, apr_pstrcat(p, "# issuer:  ",
                             tool_show_dn(p, X509_get_issuer_name(c->leaf)),
                             NULL));
    for (i = 0; i < c->id->n_issuers; i++) {
        tool_line(
            t, apr_psprintf(p, "#          sha256:%s (from %s)",
                            mtls_fp_hex(p, c->id->issuer_fps + i * MTLS_FP_LEN),
                            tool_show_path(p, issuer_src)));
    }
    if (c->id->n_issuers == 0)
        tool_line(t, "#          sha256 unknown: run again with --ca FILE "
                     "naming the issuing CA or the SSLCACertificateFile");
    if (X509_check_ca(c->leaf) >= 1)
        tool_line(t,
                  "# Note: this is a CA certificate; to pin it as an issuer, "
                  "use --issuer");
}

/* The comment lines on the SANs, and on a subject no rule can state. */
static void name_lines(tool_t *t, const cert_t *c)
{
    int i;

    tool_line(t,
              c->sans->nelts ? "# subjectAltName:" : "# subjectAltName: none");
    for (i = 0; i < c->sans->nelts; i++) {
        const san_t *s = &APR_ARRAY_IDX(c->sans, i, san_t);
        tool_line(t, apr_psprintf(t->p, "#   %s%s%s", s->shown,
                                  s->why ? ": no rule, " : "",
                                  s->why ? s->why : ""));
    }
    if (X509_NAME_entry_count(X509_get_subject_name(c->leaf)) > 0 &&
        c->subject == NULL)
        tool_line(t, c->has_nul
                         ? "# No subject rule: the subject has a NUL byte."
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
        tool_line(t, "# This subject, issued by this CA:");
        active = apr_psprintf(t->p, "MTLSAllow \"subject=%s\" issuer=%s",
                              c->subject, fp);
    }
    else if (best) {
        tool_line(t, "# This SAN, issued by this CA:");
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
            tool_line(t, "# Or instead one of its SANs, from the same CA:");
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
            tool_line(t,
                      "# Or more broadly, any name in its domain or address in "
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
        tool_line(t, "# With --ca, a rule for this subject from its issuer:");
        tool_line(t, apr_psprintf(t->p,
                                  "# MTLSAllow \"subject=%s\" "
                                  "issuer=sha256:<issuing CA>",
                                  c->subject));
    }
    if (active) {
        tool_line(t,
                  "# Or only this one certificate (no longer matches when it "
                  "is renewed):");
        rule_line(t, "# ", pin, c->id);
    }
    else {
        tool_line(t,
                  "# Only this one certificate (no longer matches when it is "
                  "renewed):");
        rule_line(t, "", pin, c->id);
    }
}

int tool_load_leaf(tool_t *t, cert_t *c)
{
    int rc = load_leaf(t, c);
    return rc == EXIT_OK ? read_leaf(t, c) : rc;
}

int tool_cert_mode(tool_t *t, const char *path, const char *ca_path)
{
    cert_t c;
    int rc;

    memset(&c, 0, sizeof(c));
    c.path = path;
    c.ca_path = ca_path;
    if ((rc = tool_load_leaf(t, &c)) != EXIT_OK)
        return rc;
    tool_header_lines(t, &c, "");
    name_lines(t, &c);
    rule_lines(t, &c);
    return t->err ? EXIT_INTERNAL : EXIT_OK;
}
