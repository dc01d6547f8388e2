/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include <apr_file_io.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <string.h>

#include "mtls_file.h"

/* The file is read whole: a rule file is configuration, read at startup
 * and on graceful restart, and its text goes away with ptemp. */
static const char *read_file(apr_pool_t *p, apr_pool_t *ptemp, const char *path,
                             char **text, apr_size_t *len)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t got = 0;
    apr_status_t rv;
    char buf[120];

    rv = apr_file_open(&f, path, APR_READ | APR_BINARY, APR_OS_DEFAULT, ptemp);
    if (rv == APR_SUCCESS)
        rv = apr_file_info_get(&fi, APR_FINFO_TYPE | APR_FINFO_SIZE, f);
    if (rv != APR_SUCCESS)
        return apr_psprintf(p, "%s: cannot read: %s", path,
                            apr_strerror(rv, buf, sizeof(buf)));
    if (fi.filetype != APR_REG)
        return apr_psprintf(p, "%s: not a regular file", path);
    *text = apr_palloc(ptemp, (apr_size_t)fi.size + 1);
    if (fi.size > 0)
        rv = apr_file_read_full(f, *text, (apr_size_t)fi.size, &got);
    apr_file_close(f);
    if (rv != APR_SUCCESS || got != (apr_size_t)fi.size)
        return apr_psprintf(p, "%s: cannot read: %s", path,
                            rv != APR_SUCCESS
                                ? apr_strerror(rv, buf, sizeof(buf))
                                : "the file changed while it was read");
    (*text)[got] = '\0';
    *len = got;
    return NULL;
}

/* A line may be a pasted directive: "MTLSAllow <rule>". Any other
 * directive name would fail as a key=value word; say why instead. */
static const char *strip_directive(apr_pool_t *p, const char **line)
{
    const char *s = *line, *e = s;
    while (*e && !apr_isspace(*e))
        e++;
    if (e - s == 9 && strncasecmp(s, "MTLSAllow", 9) == 0) {
        *line = e;
        return NULL;
    }
    if (e - s > 9 && strncasecmp(s, "MTLSAllow", 9) == 0 &&
        memchr(s, '=', (apr_size_t)(e - s)) == NULL)
        return apr_psprintf(p,
                            "%.*s is not allowed in a rule file: write each "
                            "rule as MTLSAllow's arguments (subject=, san=, "
                            "issuer=, cert=)",
                            (int)(e - s), s);
    return NULL;
}

const char *mtls_rulefile_load(mtls_ruleset_t *rs, apr_pool_t *p,
                               apr_pool_t *ptemp, const char *path,
                               mtls_pin_fn *pin, void *baton, int *n_rules)
{
    char *text = NULL, *line, *next;
    apr_size_t len = 0;
    int lineno = 0;
    const char *err = read_file(p, ptemp, path, &text, &len);

    *n_rules = 0;
    if (err)
        return err;
    if (memchr(text, '\0', len))
        return apr_psprintf(p, "%s: contains a NUL byte: not a rule file",
                            path);
    for (line = text; line && *line; line = next) {
        const char *rule = line, *source;
        const unsigned char *fp = NULL;
        char *end;

        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        end = line + strlen(line);
        if (end > line && end[-1] == '\r') /* CRLF files */
            *--end = '\0';
        while (apr_isspace(*rule))
            rule++;
        if (*rule == '\0' || *rule == '#')
            continue;
        source = apr_psprintf(p, "%s:%d", path, lineno);
        err = strip_directive(ptemp, &rule);
        if (err == NULL)
            err = mtls_ruleset_add_rule(rs, p, rule, source, &fp);
        if (err)
            return apr_psprintf(p, "%s: %s", source, err);
        if (fp && pin)
            pin(baton, fp, source);
        (*n_rules)++;
    }
    return NULL;
}
