/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mod_mtls_authz: the interface other modules may use.
 *
 * Both functions are APR optional functions: look them up in your
 * post_config or optional_fn_retrieve hook and check for NULL (the
 * module may not be loaded):
 *
 *   APR_OPTIONAL_FN_TYPE(mtls_authz_matched_rule) *matched =
 *       APR_RETRIEVE_OPTIONAL_FN(mtls_authz_matched_rule);
 *
 * They answer for requests that this module admitted, from the fixups
 * phase on; otherwise (not enforced in this scope, denied, or called
 * before fixups) they return NULL. The strings live as long as the
 * request. */

#ifndef MOD_MTLS_AUTHZ_H
#define MOD_MTLS_AUTHZ_H

#include "apr_optional.h"
#include "httpd.h"

/* "file:line" of the rule that admitted r: an MTLSAllow line, a
 * one-field directive, or a line of an MTLSAllowFile. */
APR_DECLARE_OPTIONAL_FN(const char *, mtls_authz_matched_rule,
                        (request_rec * r));

/* The admitted client certificate's subject, in RFC 4514 form. */
APR_DECLARE_OPTIONAL_FN(const char *, mtls_authz_client_subject,
                        (request_rec * r));

#endif
