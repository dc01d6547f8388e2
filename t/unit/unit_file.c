/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* MTLSAllowFile's rule files (mtls_rulefile_load), written to a
 * directory of their own that is removed afterwards. */

#include <apr_strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

static char *dir;

/* What one load gave: the error, the rules counted, the pins reported. */
typedef struct {
    mtls_ruleset_t *rs;
    const char *path, *err;
    int n, pins;
    const char *pin_source;
    const unsigned char *pin;
} load_t;

static void on_pin(void *baton, const unsigned char *fp, const char *source)
{
    load_t *l = baton;
    l->pins++;
    l->pin = fp;
    l->pin_source = source;
}

static load_t load_path(const char *path)
{
    load_t l = {mtls_ruleset_make(pool), path, NULL, -1, 0, NULL, NULL};
    l.err = mtls_rulefile_load(l.rs, pool, pool, path, on_pin, &l, &l.n);
    return l;
}

/* The files written, removed at the end. */
static const char *names[16];
static int n_names;

/* Writes len bytes of text to a file of dir and loads it. */
static load_t load(const char *name, const char *text, size_t len)
{
    const char *path = apr_pstrcat(pool, dir, "/", name, NULL);
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && fwrite(text, 1, len, f) == len;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    if (!ok)
        printf("# cannot write %s\n", path);
    if (n_names < (int)(sizeof(names) / sizeof(names[0])))
        names[n_names++] = path;
    return load_path(path);
}

#define LOAD(name, text) load(name, text, sizeof(text) - 1)

/* err is "<path>:<line>: ..." (line 0: "<path>: ...") and says needle. */
static int err_at(const load_t *l, int line, const char *needle)
{
    const char *at = line ? apr_psprintf(pool, "%s:%d: ", l->path, line)
                          : apr_pstrcat(pool, l->path, ": ", NULL);
    return l->err && strncmp(l->err, at, strlen(at)) == 0 &&
           strstr(l->err + strlen(at), needle) != NULL;
}

/* The source of the rule of l that admits id, or "" if none does. */
static const char *admitted_by(const load_t *l, const mtls_identity_t *id)
{
    mtls_miss_e miss;
    const mtls_rule_t *r = mtls_ruleset_match(l->rs, id, NULL, NULL, &miss);
    return r ? r->source : "";
}

static void good_files(const pki_t *k)
{
    load_t l = LOAD("plain", "san=DNS:bob.example.net\n"
                             "subject=\"CN=alice,O=Acme Inc.,C=US\"\n"
                             "san=URI:urn:x san=email:j@x\n");
    check(l.err == NULL && l.n == 3, "rule file: one rule per line");
    check(strcmp(admitted_by(&l, k->id),
                 apr_pstrcat(pool, l.path, ":2", NULL)) == 0,
          "rule file: a rule's source is path:line");
    l = LOAD("comments", "# partner clients\n"
                         "\n"
                         " \t \n"
                         "   # indented comment\n"
                         "san=DNS:bob.example.net\n"
                         "\n"
                         "subject=\"CN=alice,O=Acme Inc.,C=US\"");
    check(l.err == NULL && l.n == 2,
          "rule file: comments and blank lines skipped, last line unended");
    check(strcmp(admitted_by(&l, k->id),
                 apr_pstrcat(pool, l.path, ":7", NULL)) == 0,
          "rule file: skipped lines still count for path:line");
    l = LOAD("crlf", "# from Windows\r\n"
                     "\r\n"
                     "subject=\"CN=alice,O=Acme Inc.,C=US\"\r\n");
    check(l.err == NULL && l.n == 1 && *admitted_by(&l, k->id),
          "rule file: CRLF line ends");
    l = LOAD("empty", "");
    check(l.err == NULL && l.n == 0 && mtls_ruleset_is_empty(l.rs),
          "rule file: an empty file has no rule and no error");
}

static void directive_word(const pki_t *k)
{
    unsigned char fp[MTLS_FP_LEN];
    const char *text = apr_pstrcat(pool,
                                   "MTLSAllow san=DNS:bob.example.net\n"
                                   "  mtlsallow\tsubject=\"CN=alice,O=Acme "
                                   "Inc.,C=US\" issuer=",
                                   k->ca_pin, "\n", NULL);
    load_t l = load("pasted", text, strlen(text));
    check(l.err == NULL && l.n == 2 && *admitted_by(&l, k->id),
          "rule file: a leading MTLSAllow word, in any case, is dropped");
    check(l.pins == 1 && mtls_fp_parse(pool, k->ca_pin, fp) == NULL && l.pin &&
              memcmp(l.pin, fp, sizeof(fp)) == 0 &&
              strcmp(l.pin_source, apr_pstrcat(pool, l.path, ":2", NULL)) == 0,
          "rule file: each pinned issuer reported with its path:line");
    l = LOAD("other", "san=DNS:bob.example.net\n"
                      "# a pasted one-field directive\n"
                      "MTLSAllowSubject CN=alice\n");
    check(err_at(&l, 3, "MTLSAllowSubject is not allowed in a rule file"),
          "rule file: another directive refused, at path:line");
    l = LOAD("bare", "\n  MTLSAllow  \n");
    check(err_at(&l, 2, "needs at least one of"),
          "rule file: MTLSAllow alone is an empty rule");
}

static void bad_files(void)
{
    load_t l = LOAD("bad", "san=DNS:bob.example.net\n"
                           "bogus=1\n"
                           "san=DNS:carol.example.net\n");
    check(err_at(&l, 2, "unknown key 'bogus'"),
          "rule file: a bad rule refused, at path:line");
    check(l.n == 1, "rule file: the rules before the bad one counted");
    l = LOAD("nul", "san=DNS:bob.example.net\n"
                    "san=DNS:a\0b.example.net\n");
    check(err_at(&l, 0, "contains a NUL byte") && l.n == 0 &&
              mtls_ruleset_is_empty(l.rs),
          "rule file: a NUL byte refuses the whole file");
    l = load_path(apr_pstrcat(pool, dir, "/missing", NULL));
    check(err_at(&l, 0, "cannot read") && l.n == 0,
          "rule file: a missing file cannot be read");
    l = load_path(dir);
    check(err_at(&l, 0, "not a regular file") && l.n == 0,
          "rule file: a directory is not a rule file");
}

/* The loader reads in chunks of 256 KiB: lines across a chunk's end, a
 * line longer than a chunk, and a NUL byte far from the start must read
 * as they would if the file were read whole. */
static void large_files(const pki_t *k)
{
    const char *alice = "subject=\"CN=alice,O=Acme Inc.,C=US\"";
    apr_size_t pad = 300 * 1024, n, i;
    char *text = malloc(3 * pad), *q = text;
    load_t l;

    if (text == NULL) {
        check(0, "rule file: memory for the large files");
        return;
    }
    /* Many short lines: line i is "san=DNS:h<i>.example.net". */
    for (i = 1; (apr_size_t)(q - text) < pad; i++)
        q += sprintf(q, "san=DNS:h%d.example.net\n", (int)i);
    n = i - 1;
    q += sprintf(q, "# %*s\n", (int)pad, "a comment longer than a chunk");
    q += sprintf(q, "%s\r\n%s", alice, "san=DNS:last.example.net");
    l = load("large", text, (size_t)(q - text));
    check(l.err == NULL && l.n == (int)n + 2 &&
              strcmp(admitted_by(&l, k->id),
                     apr_psprintf(pool, "%s:%d", l.path, (int)n + 2)) == 0,
          "rule file: lines across chunks, a line longer than a chunk");
    memset(text, 'x', 2 * pad);
    memcpy(text, "san=DNS:x", 9);
    text[2 * pad - 1] = '\0';
    l = load("late-nul", text, 2 * pad);
    check(err_at(&l, 0, "contains a NUL byte") && l.n == 0 &&
              mtls_ruleset_is_empty(l.rs),
          "rule file: a NUL byte past the first chunk refuses the file");
    free(text);
}

void test_rulefile(const pki_t *k)
{
    const char *tmp = getenv("TMPDIR");
    int i;
    dir = apr_pstrcat(pool, tmp && *tmp ? tmp : "/tmp", "/mtls-unit.XXXXXX",
                      NULL);
    if (mkdtemp(dir) == NULL) {
        check(0, "rule file: a directory for the test files");
        return;
    }
    good_files(k);
    directive_word(k);
    bad_files();
    large_files(k);
    for (i = 0; i < n_names; i++)
        unlink(names[i]);
    if (rmdir(dir) != 0)
        printf("# cannot remove %s\n", dir);
}
