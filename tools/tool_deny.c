/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls-authz-rule --deny: the MTLSDeny lines that refuse one
 * certificate. Each is compiled with the module's parser into a deny
 * ruleset and put to mtls_policy_match, the server's own decision, which
 * must refuse the certificate by that rule; a line that does not is
 * never printed. */

#include <apr_strings.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <string.h>

#include "tool.h"

/* The serial number as serial= takes it: uppercase hex, '-' for a
 * negative one (as `openssl x509 -serial` prints it). */
static const char *serial_hex(apr_pool_t *p, X509 *x)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    const char *res = hex ? apr_pstrdup(p, hex) : NULL;

    OPENSSL_free(hex);
    BN_free(bn);
    return res;
}

int tool_deny_mode(tool_t *t, const char *path, const char *ca_path)
{
    apr_pool_t *p = t->p;
    const char *serial;
    cert_t c;
    int rc;

    memset(&c, 0, sizeof(c));
    c.path = path;
    c.ca_path = ca_path;
    if ((rc = tool_load_leaf(t, &c)) != EXIT_OK)
        return rc;
    if ((serial = serial_hex(p, c.leaf)) == NULL) {
        t->err = "internal error: cannot read the serial number";
        return EXIT_INTERNAL;
    }
    tool_header_lines(t, &c, " --deny");
    tool_line(t, apr_pstrcat(p, "# serial:  ", serial, NULL));
    tool_line(t, "# Refuse this one certificate:");
    tool_checked_line(t, "", apr_pstrcat(p, "MTLSDeny cert=", c.cert_fp, NULL),
                      c.id, 1);
    if (c.id->n_issuers > 0) {
        tool_line(t, "# Or the same by its issuer and serial number (as a "
                     "CRL names it):");
        tool_checked_line(t, "# ",
                          apr_psprintf(p, "MTLSDeny issuer=sha256:%s serial=%s",
                                       mtls_fp_hex(p, c.id->issuer_fps),
                                       serial),
                          c.id, 1);
    }
    else {
        tool_line(t, "# With --ca, the same by its issuer and serial number:");
        tool_line(t, apr_pstrcat(p,
                                 "# MTLSDeny issuer=sha256:<issuing CA> "
                                 "serial=",
                                 serial, NULL));
    }
    return t->err ? EXIT_INTERNAL : EXIT_OK;
}
