/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include <apr_file_io.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <string.h>

#include "mtls_file.h"

/* A rule file is read in chunks, never whole: a million rules are over
 * 100 MB of text, which ptemp would hold until the end of the
 * configuration read. It is read twice: once to check that it is text
 * (no NUL byte) before a rule is taken from it, then line by line. */
#define MTLS_CHUNK (256 * 1024)

typedef struct {
    apr_file_t *f;
    const char *path;
    apr_off_t size; /* as it was opened: what is read, at most */
    apr_off_t left; /* of size, still to read */
    char *buf;      /* in ptemp; a longer line doubles it */
    apr_size_t cap, beg, end;
} reader_t;

static const char *read_error(apr_pool_t *p, const reader_t *rd,
                              apr_status_t rv)
{
    char buf[120];
    return apr_psprintf(p, "%s: cannot read: %s", rd->path,
                        apr_strerror(rv, buf, sizeof(buf)));
}

static const char *reader_open(reader_t *rd, apr_pool_t *p, apr_pool_t *ptemp,
                               const char *path)
{
    apr_finfo_t fi;
    apr_status_t rv;

    rd->path = path;
    rv = apr_file_open(&rd->f, path, APR_READ | APR_BINARY, APR_OS_DEFAULT,
                       ptemp);
    if (rv == APR_SUCCESS)
        rv = apr_file_info_get(&fi, APR_FINFO_TYPE | APR_FINFO_SIZE, rd->f);
    if (rv != APR_SUCCESS)
        return read_error(p, rd, rv);
    if (fi.filetype != APR_REG)
        return apr_psprintf(p, "%s: not a regular file", path);
    rd->size = rd->left = fi.size;
    rd->cap = MTLS_CHUNK;
    rd->buf = apr_palloc(ptemp, rd->cap);
    rd->beg = rd->end = 0;
    return NULL;
}

/* More of the file after buf[end], keeping a byte for a terminator. A
 * file that shrank since it was opened ends early: an error, as it was
 * when the file was read whole. */
static const char *reader_fill(reader_t *rd, apr_pool_t *p, apr_size_t *got)
{
    apr_size_t want = rd->cap - 1 - rd->end;
    apr_status_t rv;

    if ((apr_off_t)want > rd->left)
        want = (apr_size_t)rd->left;
    *got = 0;
    rv = apr_file_read_full(rd->f, rd->buf + rd->end, want, got);
    if (rv != APR_SUCCESS)
        return read_error(p, rd, rv);
    rd->end += *got;
    rd->left -= (apr_off_t)*got;
    return NULL;
}

/* The first pass: all of the file readable, and no NUL byte in it. */
static const char *reader_check(reader_t *rd, apr_pool_t *p)
{
    apr_off_t start = 0;
    apr_size_t got;
    int nul = 0;
    const char *err;

    while (rd->left > 0) {
        rd->end = 0;
        if ((err = reader_fill(rd, p, &got)) != NULL)
            return err;
        nul = nul || memchr(rd->buf, '\0', rd->end) != NULL;
    }
    if (nul)
        return apr_psprintf(p, "%s: contains a NUL byte: not a rule file",
                            rd->path);
    rd->beg = rd->end = 0;
    rd->left = rd->size;
    if (apr_file_seek(rd->f, APR_SET, &start) != APR_SUCCESS)
        return apr_psprintf(p, "%s: cannot read: %s", rd->path,
                            "the file changed while it was read");
    return NULL;
}

/* The next line, without its '\n', into *line (NULL at the end). */
static const char *reader_line(reader_t *rd, apr_pool_t *p, apr_pool_t *ptemp,
                               char **line)
{
    for (;;) {
        char *s = rd->buf + rd->beg;
        char *nl = memchr(s, '\n', rd->end - rd->beg);
        apr_size_t got;
        const char *err;

        if (nl) {
            *nl = '\0';
            *line = s;
            rd->beg = (apr_size_t)(nl - rd->buf) + 1;
            return NULL;
        }
        if (rd->left == 0) { /* the last line, unended, or none */
            rd->buf[rd->end] = '\0';
            *line = rd->beg < rd->end ? s : NULL;
            rd->beg = rd->end;
            return NULL;
        }
        /* A partial line: to the front, in a larger buffer if it fills
         * this one. */
        memmove(rd->buf, s, rd->end - rd->beg);
        rd->end -= rd->beg;
        rd->beg = 0;
        if (rd->end + 1 >= rd->cap) {
            char *big = apr_palloc(ptemp, rd->cap * 2);
            memcpy(big, rd->buf, rd->end);
            rd->buf = big;
            rd->cap *= 2;
        }
        if ((err = reader_fill(rd, p, &got)) != NULL)
            return err;
        /* Checked in the first pass: a NUL now is a file rewritten
         * while it is read. */
        if (memchr(rd->buf + rd->end - got, '\0', got))
            return apr_psprintf(p, "%s: cannot read: %s", rd->path,
                                "the file changed while it was read");
    }
}

/* A line may be a pasted directive: "MTLSAllow <rule>" in an allow file,
 * "MTLSDeny <rule>" in a deny file. The other one, or any other
 * directive name, would fail as a key=value word or worse be taken for
 * the wrong kind of rule; say why instead. */
static const char *strip_directive(apr_pool_t *p, const mtls_ruleset_t *rs,
                                   const char **line)
{
    const char *s = *line, *e = s;
    const char *own = mtls_ruleset_is_deny(rs) ? "MTLSDeny" : "MTLSAllow";
    const char *other = mtls_ruleset_is_deny(rs) ? "MTLSAllow" : "MTLSDeny";
    apr_size_t n;

    while (*e && !apr_isspace(*e))
        e++;
    n = (apr_size_t)(e - s);
    if (n == strlen(own) && strncasecmp(s, own, n) == 0) {
        *line = e;
        return NULL;
    }
    if (n >= strlen(other) && strncasecmp(s, other, strlen(other)) == 0 &&
        memchr(s, '=', n) == NULL)
        return apr_psprintf(
            p,
            "%.*s is not allowed in %s rule file: it holds "
            "only %s rules",
            (int)n, s, mtls_ruleset_is_deny(rs) ? "a deny" : "an allow", own);
    if (n > strlen(own) && strncasecmp(s, own, strlen(own)) == 0 &&
        memchr(s, '=', n) == NULL)
        return apr_psprintf(p,
                            "%.*s is not allowed in a rule file: write each "
                            "rule as %s's arguments (subject=, san=, "
                            "issuer=, cert=)",
                            (int)n, s, own);
    return NULL;
}

/* "path:line", packed with the rules of rs. */
static const char *source_make(mtls_ruleset_t *rs, const char *path,
                               apr_size_t plen, int lineno)
{
    char digits[24], *s;
    int nd = 0, i;
    unsigned int v = (unsigned int)lineno;

    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    s = mtls_ruleset_alloc(rs, plen + 1 + (apr_size_t)nd + 1);
    memcpy(s, path, plen);
    s[plen] = ':';
    for (i = 0; i < nd; i++)
        s[plen + 1 + i] = digits[nd - 1 - i];
    s[plen + 1 + nd] = '\0';
    return s;
}

const char *mtls_rulefile_load(mtls_ruleset_t *rs, apr_pool_t *p,
                               apr_pool_t *ptemp, const char *path,
                               mtls_pin_fn *pin, void *baton, int *n_rules)
{
    reader_t rd = {0};
    apr_pool_t *tmp; /* one rule's scratch, cleared for the next */
    apr_size_t plen = strlen(path);
    char *line = NULL;
    int lineno = 0;
    const char *err = reader_open(&rd, p, ptemp, path);

    *n_rules = 0;
    if (err == NULL)
        err = reader_check(&rd, p);
    if (err == NULL && apr_pool_create(&tmp, ptemp) != APR_SUCCESS)
        err = "out of memory";
    while (err == NULL && (err = reader_line(&rd, p, ptemp, &line)) == NULL &&
           line) {
        const char *rule = line, *source;
        const unsigned char *fp = NULL;
        char *end = line + strlen(line);

        lineno++;
        if (end > line && end[-1] == '\r') /* CRLF files */
            *--end = '\0';
        while (apr_isspace(*rule))
            rule++;
        if (*rule == '\0' || *rule == '#')
            continue;
        apr_pool_clear(tmp);
        source = source_make(rs, path, plen, lineno);
        err = strip_directive(tmp, rs, &rule);
        if (err == NULL)
            err = mtls_ruleset_add_rule_tmp(rs, p, tmp, rule, source, &fp);
        if (err)
            return apr_psprintf(p, "%s: %s", source, err);
        if (fp && pin)
            pin(baton, fp, source);
        (*n_rules)++;
    }
    if (rd.f)
        apr_file_close(rd.f);
    return err;
}
