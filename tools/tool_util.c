/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls-authz-rule: reading certificates, and text for comments. */

#include <apr_strings.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

#include "tool.h"

#define MAX_FILE (4 * 1024 * 1024) /* bytes read from one file */

/* ---- reading certificates ---------------------------------------------- */

/* The file's bytes in tmp (a scratch pool: up to MAX_FILE), or an error
 * in p. */
static const char *read_file(apr_pool_t *p, apr_pool_t *tmp, const char *path,
                             char **data, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf;
    size_t n = 0, r;

    if (f == NULL)
        return apr_psprintf(p, "%s: %s", path, strerror(errno));
    buf = apr_palloc(tmp, MAX_FILE + 1);
    while ((r = fread(buf + n, 1, MAX_FILE + 1 - n, f)) > 0) {
        n += r;
        if (n > MAX_FILE)
            break;
    }
    if (ferror(f)) {
        int e = errno;
        if (f != stdin)
            fclose(f);
        return apr_psprintf(p, "%s: %s", path, strerror(e));
    }
    if (f != stdin)
        fclose(f);
    if (n > MAX_FILE)
        return apr_psprintf(p, "%s: larger than %d bytes: not a certificate",
                            path, MAX_FILE);
    *data = buf;
    *len = n;
    return NULL;
}

static apr_status_t free_x509(void *x)
{
    X509_free(x);
    return APR_SUCCESS;
}

static void keep(apr_pool_t *p, apr_array_header_t *certs, X509 *x)
{
    apr_pool_cleanup_register(p, x, free_x509, apr_pool_cleanup_null);
    APR_ARRAY_PUSH(certs, X509 *) = x;
}

/* The certificates in data: PEM (other PEM blocks such as keys are
 * skipped) or a single DER certificate. */
static void parse_certs(apr_pool_t *p, const char *data, size_t len,
                        apr_array_header_t *certs)
{
    BIO *b = BIO_new_mem_buf(data, (int)len);
    X509 *x;

    if (b == NULL)
        return;
    while ((x = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL)) != NULL)
        keep(p, certs, x);
    BIO_free(b);
    if (certs->nelts == 0) {
        const unsigned char *d = (const unsigned char *)data;
        x = d2i_X509(NULL, &d, (long)len);
        if (x && d != (const unsigned char *)data + len) {
            X509_free(x);
            x = NULL;
        }
        if (x)
            keep(p, certs, x);
    }
    ERR_clear_error();
}

const char *tool_load_certs(apr_pool_t *p, const char *path,
                            apr_array_header_t **out)
{
    apr_array_header_t *certs = apr_array_make(p, 4, sizeof(X509 *));
    apr_pool_t *tmp;
    char *data = NULL;
    size_t len = 0;
    const char *err;

    if (apr_pool_create(&tmp, p) != APR_SUCCESS)
        return "out of memory";
    err = read_file(p, tmp, path, &data, &len);
    if (err == NULL && len == 0)
        err = apr_psprintf(p, "%s: empty file: not a certificate", path);
    if (err == NULL)
        parse_certs(p, data, len, certs);
    apr_pool_destroy(tmp);
    if (err == NULL && certs->nelts == 0)
        err = apr_psprintf(p,
                           "%s: not a certificate (expected an X.509 "
                           "certificate in PEM or DER form)",
                           path);
    if (err == NULL)
        *out = certs;
    return err;
}

/* ---- text -----------------------------------------------------------------
 */

void tool_line(tool_t *t, const char *s)
{
    APR_ARRAY_PUSH(t->out, const char *) = s;
}

/* For comments: printable ASCII as is, anything else (and the
 * backslash, so that no line can end with one) as \xHH. */
const char *tool_show(apr_pool_t *p, const unsigned char *s, size_t len)
{
    char *o = apr_palloc(p, len * 4 + 1), *q = o;
    size_t i;
    for (i = 0; i < len; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
            *q++ = (char)s[i];
        else
            q += sprintf(q, "\\x%02x", s[i]);
    }
    *q = '\0';
    return o;
}

/* A file name as the comments show it. */
const char *tool_show_path(apr_pool_t *p, const char *path)
{
    return tool_show(p, (const unsigned char *)path, strlen(path));
}

/* ---- digests and stores -------------------------------------------------- */

const char *tool_fp_of(apr_pool_t *p, X509 *x)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!X509_digest(x, EVP_sha256(), md, &n) || n != MTLS_FP_LEN)
        return NULL;
    return apr_pstrcat(p, "sha256:", mtls_fp_hex(p, md), NULL);
}

static apr_status_t free_store(void *s)
{
    X509_STORE_free(s);
    return APR_SUCCESS;
}

X509_STORE *tool_store(apr_pool_t *p)
{
    X509_STORE *store = X509_STORE_new();
    if (store)
        apr_pool_cleanup_register(p, store, free_store, apr_pool_cleanup_null);
    return store;
}
