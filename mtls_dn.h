/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls_dn: distinguished names as keys: the canonical encoding that
 * OpenSSL's X509_NAME_cmp compares, from RFC 4514 text or a certificate.
 * Pure APR + OpenSSL, no httpd. */

#ifndef MTLS_DN_H
#define MTLS_DN_H

#include "mtls_key.h"

/* The key of an RFC 4514 DN; NULL or an error in p. */
const char *mtls_dn_parse(apr_pool_t *p, const char *text, mtls_key_t *out);
/* The same, with the key, the message and all scratch in tmp: for a
 * caller that parses many and clears tmp in between. */
const char *mtls_dn_parse_tmp(apr_pool_t *tmp, const char *text,
                              mtls_key_t *out);

/* The key of a certificate's name; 0 if a value has no canonical form. */
int mtls_name_key(apr_pool_t *p, const X509_NAME *name, mtls_key_t *out);

#endif
