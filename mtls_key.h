/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls_key: the values that rules and certificates are compared as.
 * Pure APR + OpenSSL, no httpd. */

#ifndef MTLS_KEY_H
#define MTLS_KEY_H

#include <apr_hash.h>
#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/x509.h>

#define MTLS_FP_LEN 32 /* SHA-256 */

/* Every identity attribute and every rule constraint is reduced to a
 * "key": a tag byte followed by the normalised value. Equal keys mean
 * equal values under docs/reference.md's matching rules, so a lookup is
 * one hash probe. A subject's key is the canonical encoding that
 * X509_NAME_cmp compares (mtls_dn.c); it is indexed by a digest of that
 * and confirmed in full. */
enum {
    MTLS_K_SUBJECT = 'S',
    MTLS_K_CERT = 'C',
    MTLS_K_ISSUER = 'F',
    MTLS_K_DNS = 'D',
    MTLS_K_EMAIL = 'E',
    MTLS_K_URI = 'U',
    MTLS_K_URI_PREFIX = 'P',
    MTLS_K_IP4 = '4',
    MTLS_K_IP6 = '6',
    /* A domain that DNS names strictly below it match: the tag and the
     * domain without its leading dot, as mtls_key_dns normalises it. An
     * identity holds one per label suffix of each DNS SAN. */
    MTLS_K_DNS_SUFFIX = 'd',
    /* A network: the tag, the prefix length (one byte) and the address
     * with its host bits clear (4 or 16 bytes). Never in an identity:
     * each IP SAN is masked to each configured length at match time. */
    MTLS_K_IP4_NET = 'n',
    MTLS_K_IP6_NET = 'N',
    /* A serial number: the tag, '-' for a negative one, and the
     * magnitude in big-endian bytes without leading zeros. Deny rules
     * pair it with issuer=: serials are unique only per CA. */
    MTLS_K_SERIAL = 'Z'
};

/* The longest network key: tag, length, 16 bytes. */
#define MTLS_NET_KEY_MAX 18

typedef struct {
    const char *data;
    apr_size_t len;
} mtls_key_t;

/* Lowercase hex of a fingerprint, in p. */
const char *mtls_fp_hex(apr_pool_t *p, const unsigned char *fp);
/* The value of a hex digit, or -1. */
int mtls_hex_digit(char ch);

mtls_key_t mtls_key_make(apr_pool_t *p, char tag, const void *v,
                         apr_size_t len);
/* DNS names compare case-insensitively, ignoring one trailing dot. */
mtls_key_t mtls_key_dns(apr_pool_t *p, const char *v, apr_size_t len);
/* The suffix key of the DNS domain v (without a leading dot): as
 * mtls_key_dns, tagged MTLS_K_DNS_SUFFIX. */
mtls_key_t mtls_key_dns_suffix(apr_pool_t *p, const char *v, apr_size_t len);
/* The network key of addr (alen 4 or 16 bytes) cut to bits, into buf;
 * returns its length. */
apr_size_t mtls_key_net(char buf[MTLS_NET_KEY_MAX], const unsigned char *addr,
                        apr_size_t alen, unsigned bits);
/* The domain after the last '@' is case-insensitive, the local part
 * exact. */
mtls_key_t mtls_key_email(apr_pool_t *p, const char *v, apr_size_t len);
/* What a subject's canonical key is indexed by: MTLS_K_SUBJECT and a
 * digest of the key, in p or into d. */
#define MTLS_SUBJECT_INDEX_LEN 9
mtls_key_t mtls_key_subject_index(apr_pool_t *p, const mtls_key_t *subject);
void mtls_key_subject_digest(const mtls_key_t *subject,
                             unsigned char d[MTLS_SUBJECT_INDEX_LEN]);

/* "sha256:<64 hex digits>" (':' between byte pairs allowed) into out;
 * NULL or an error in p. */
const char *mtls_fp_parse(apr_pool_t *p, const char *text,
                          unsigned char out[MTLS_FP_LEN]);

#endif
