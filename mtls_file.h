/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls_file: MTLSAllowFile's rule files. Pure APR, no httpd: each line
 * is handed to mtls_ruleset_add_rule exactly as an MTLSAllow directive's
 * arguments would be. */

#ifndef MTLS_FILE_H
#define MTLS_FILE_H

#include "mtls_rules.h"

/* Called for each rule that pins an issuer. */
typedef void mtls_pin_fn(void *baton, const unsigned char *fp,
                         const char *source);

/* Adds the rules of the file at path to rs: one rule per line in
 * MTLSAllow syntax (optionally preceded by the word MTLSAllow), blank
 * lines and lines whose first non-blank character is '#' skipped. Each
 * rule's source is "path:line". Rules and sources are allocated in p, the
 * file's text in ptemp. Returns NULL, or an error in p that starts with
 * "path:line: " (or "path: " for a file that cannot be read); *n_rules is
 * the number of rules added. */
const char *mtls_rulefile_load(mtls_ruleset_t *rs, apr_pool_t *p,
                               apr_pool_t *ptemp, const char *path,
                               mtls_pin_fn *pin, void *baton, int *n_rules);

#endif
