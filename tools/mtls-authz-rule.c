/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls-authz-rule: prints the mod_mtls_authz directives that admit or
 * refuse a given client certificate, or pin a given CA; and tells what
 * the module would decide for certificates under a configuration (see
 * docs/rule-tool.md).
 *
 * Every rule it prints is first compiled with the module's own parser
 * (mtls_rules.c, mtls_dn.c) exactly as httpd would hand it over, and
 * matched against the certificate; a rule that does not admit (or, for
 * --deny, refuse) it is never printed. Every decision it reports is
 * mtls_policy_match's, the server's own. Output is written only once
 * everything succeeded. This file: the command line; tool.h lists the
 * others. */

#include <apr_general.h>
#include <apr_strings.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "mtls_time.h"
#include "tool.h"

static const char usage_text[] =
    "usage: mtls-authz-rule [--ca FILE] CERT\n"
    "       mtls-authz-rule --issuer CA-CERT\n"
    "       mtls-authz-rule --deny [--ca FILE] CERT\n"
    "       mtls-authz-rule --check --config FILE --ca FILE [--at TIME]\n"
    "                       [--format text|tsv|json] CERT...\n"
    "       mtls-authz-rule --diff OLD NEW --ca FILE [--at TIME]\n"
    "                       [--format text|tsv|json] CERT...\n"
    "       mtls-authz-rule --help | --version\n"
    "\n"
    "Prints mod_mtls_authz directives for a certificate, ready to paste\n"
    "into a <Location>, each checked with the module's own parser; or\n"
    "tells what the module decides for certificates, and why.\n"
    "\n"
    "  CERT          a client certificate, PEM or DER; in a PEM file with\n"
    "                several certificates (a chain) the first is the client\n"
    "                certificate and the others may include its issuer.\n"
    "                '-' reads standard input.\n"
    "  --ca FILE     the CA certificate(s) the server trusts (e.g. the\n"
    "                SSLCACertificateFile): the one that signed CERT gives\n"
    "                issuer=sha256:... Without --ca the issuer is looked\n"
    "                for in CERT's own file.\n"
    "  --issuer      CA-CERT is a CA certificate (or a PEM bundle of them):\n"
    "                print an MTLSAllowIssuerFingerprint line for each.\n"
    "  --deny        print the MTLSDeny line that refuses CERT alone\n"
    "                (cert=sha256:...) and, as a comment, the same by\n"
    "                issuer and serial number.\n"
    "  --check       for each CERT, the decision of the rules in --config:\n"
    "                admit and the rule (file:line) and what of it matched,\n"
    "                or refuse and why. CERT is verified against --ca as\n"
    "                mod_ssl verifies a client (the rest of its file is the\n"
    "                chain the client sends).\n"
    "  --config FILE the rules: MTLSAllow, MTLSDeny, MTLSAllowFile,\n"
    "                MTLSDenyFile, MTLSAllowSubject, MTLSAllowSAN,\n"
    "                MTLSAllowIssuerFingerprint lines, or bare rules (a\n"
    "                rule file); relative paths are relative to FILE's\n"
    "                directory.\n"
    "  --diff OLD NEW  like --check for two such files: only the\n"
    "                certificates whose decision (admit or refuse) differs.\n"
    "  --at TIME     decide (and verify) at TIME, YYYY-MM-DD or RFC 3339\n"
    "                (2027-03-31T18:00:00Z), instead of now.\n"
    "  --format F    text (default: one line per certificate), tsv (a\n"
    "                header line, then cert, decision, rule, reason) or\n"
    "                json (one document).\n"
    "  --help        this text.\n"
    "  --version     the version.\n"
    "\n"
    "The active MTLSAllow line is: subject + issuer; if the subject cannot\n"
    "be used, a SAN + issuer; without a known issuer, the certificate's\n"
    "own fingerprint (cert=). The other choices follow as comments.\n"
    "\n"
    "Exit status: 0 printed; 1 usage error; 2 a file is missing, is not a\n"
    "certificate, or is not what the option needs, or a --config line is\n"
    "wrong (nothing printed); 3 a rule failed its own check (a bug:\n"
    "nothing printed); 4 printed, and --check refused some certificate or\n"
    "--diff found some decision changed (with 0 every certificate was\n"
    "admitted, no decision changed).\n";

/* ---- the command line ------------------------------------------------- */

typedef enum {
    MODE_CERT = 0,
    MODE_ISSUER,
    MODE_DENY,
    MODE_CHECK,
    MODE_DIFF
} mode_e;

typedef struct {
    mode_e mode;
    int n_modes;
    const char *ca, *config, *at, *format, *old_cfg, *new_cfg;
    apr_array_header_t *files; /* const char * */
} args_t;

#define ARGS_GO_ON (-1)

static int usage_error(const char *msg)
{
    fprintf(stderr, "mtls-authz-rule: %s (see --help)\n", msg);
    return EXIT_USAGE;
}

static int set_mode(args_t *a, mode_e mode)
{
    a->mode = mode;
    if (++a->n_modes > 1)
        return usage_error("one of --issuer, --deny, --check, --diff at a "
                           "time");
    return ARGS_GO_ON;
}

/* An option with a value: "--opt VALUE" or "--opt=VALUE". Returns 0 if
 * arg is not opt, 1 if *out was set, -1 if the value is missing or
 * given twice. */
static int opt_value(int argc, const char *const *argv, int *i, const char *opt,
                     const char **out)
{
    const char *arg = argv[*i];
    size_t n = strlen(opt);

    if (strncmp(arg, opt, n) != 0 || (arg[n] != '\0' && arg[n] != '='))
        return 0;
    if (*out)
        return -1;
    if (arg[n] == '=')
        *out = arg + n + 1;
    else if (*i + 1 < argc)
        *out = argv[++*i];
    else
        return -1;
    return 1;
}

/* --ca, --config, --at, --format: ARGS_GO_ON if arg is one of them and
 * taken, EXIT_USAGE if it is one but wrong, 0 if it is none. */
static int value_option(int argc, const char *const *argv, int *i, args_t *a)
{
    static const char *const names[] = {"--ca", "--config", "--at", "--format"};
    const char **slots[] = {&a->ca, &a->config, &a->at, &a->format};
    int k;

    for (k = 0; k < 4; k++) {
        int r = opt_value(argc, argv, i, names[k], slots[k]);
        if (r > 0)
            return ARGS_GO_ON;
        if (r < 0) {
            fprintf(stderr, "mtls-authz-rule: %s needs one %s (see --help)\n",
                    names[k],
                    k == 2   ? "TIME"
                    : k == 3 ? "text, tsv or json"
                             : "FILE");
            return EXIT_USAGE;
        }
    }
    return 0;
}

/* The options without a value, and --diff OLD NEW. */
static int flag_option(int argc, const char *const *argv, int *i, args_t *a)
{
    const char *arg = argv[*i];

    if (strcmp(arg, "--issuer") == 0)
        return set_mode(a, MODE_ISSUER);
    if (strcmp(arg, "--deny") == 0)
        return set_mode(a, MODE_DENY);
    if (strcmp(arg, "--check") == 0)
        return set_mode(a, MODE_CHECK);
    if (strcmp(arg, "--diff") == 0) {
        if (*i + 2 >= argc)
            return usage_error("--diff needs two files, OLD and NEW");
        a->old_cfg = argv[++*i];
        a->new_cfg = argv[++*i];
        return set_mode(a, MODE_DIFF);
    }
    return 0;
}

/* Takes argv[*i] (and the value of an option that has one). Returns
 * ARGS_GO_ON, or the exit code if the run ends here. */
static int parse_arg(int argc, const char *const *argv, int *i, args_t *a)
{
    const char *arg = argv[*i];
    int rc;

    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    if (strcmp(arg, "--version") == 0) {
        printf("mtls-authz-rule %s (mod_mtls_authz, %s)\n", TOOL_VERSION,
               OpenSSL_version(OPENSSL_VERSION));
        return EXIT_OK;
    }
    if ((rc = flag_option(argc, argv, i, a)) != 0 ||
        (rc = value_option(argc, argv, i, a)) != 0)
        return rc;
    if (strcmp(arg, "--") == 0) {
        while (++*i < argc)
            APR_ARRAY_PUSH(a->files, const char *) = argv[*i];
        return ARGS_GO_ON;
    }
    if (arg[0] == '-' && arg[1] != '\0') {
        fprintf(stderr, "mtls-authz-rule: unknown option '%s' (see --help)\n",
                arg);
        return EXIT_USAGE;
    }
    APR_ARRAY_PUSH(a->files, const char *) = arg;
    return ARGS_GO_ON;
}

/* What each mode needs and refuses, once all is read. */
static const char *args_problem(const args_t *a)
{
    int many = a->mode == MODE_CHECK || a->mode == MODE_DIFF;

    if (a->files->nelts == 0)
        return "no certificate file given";
    if (!many && a->files->nelts > 1)
        return "one certificate file at a time";
    if (a->mode == MODE_ISSUER && a->ca)
        return "--issuer takes no --ca";
    if (!many && (a->config || a->at || a->format))
        return "--config, --at and --format go with --check or --diff";
    if (a->mode == MODE_CHECK && a->config == NULL)
        return "--check needs --config FILE";
    if (a->mode == MODE_DIFF && a->config)
        return "--diff takes its two files, not --config";
    if (many && a->ca == NULL)
        return "--check and --diff need --ca FILE: the CA certificates the "
               "server trusts, to verify each certificate as mod_ssl does";
    return NULL;
}

/* The whole command line, in order: ARGS_GO_ON or the exit code. */
static int parse_args(apr_pool_t *p, int argc, const char *const *argv,
                      args_t *a)
{
    const char *problem;
    int i, rc;

    memset(a, 0, sizeof(*a));
    a->files = apr_array_make(p, 4, sizeof(const char *));
    for (i = 1; i < argc; i++) {
        if ((rc = parse_arg(argc, argv, &i, a)) != ARGS_GO_ON)
            return rc;
    }
    if ((problem = args_problem(a)) != NULL) {
        fprintf(stderr, "mtls-authz-rule: %s\n", problem);
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    return ARGS_GO_ON;
}

/* --at and --format into c: ARGS_GO_ON or EXIT_USAGE. */
static int check_args(apr_pool_t *p, const args_t *a, tool_check_args_t *c)
{
    const char *err = NULL;

    memset(c, 0, sizeof(*c));
    c->ca = a->ca;
    c->config = a->config;
    c->old_cfg = a->old_cfg;
    c->new_cfg = a->new_cfg;
    c->files = (const char *const *)a->files->elts;
    c->n_files = a->files->nelts;
    c->at = apr_time_now();
    if (a->at && (err = mtls_time_parse(p, a->at, 0, &c->at)) != NULL)
        return usage_error(apr_psprintf(p, "--at '%s': %s", a->at, err));
    if (a->format == NULL || strcmp(a->format, "text") == 0)
        c->fmt = FMT_TEXT;
    else if (strcmp(a->format, "tsv") == 0)
        c->fmt = FMT_TSV;
    else if (strcmp(a->format, "json") == 0)
        c->fmt = FMT_JSON;
    else
        return usage_error(apr_psprintf(
            p, "--format '%s': expected text, tsv or json", a->format));
    return ARGS_GO_ON;
}

/* Prints the lines if the mode succeeded, else why not. The exit code. */
static int finish(tool_t *t, int rc)
{
    int i;

    if ((rc == EXIT_OK || rc == EXIT_REFUSED) && t->err == NULL) {
        for (i = 0; i < t->out->nelts; i++)
            printf("%s\n", APR_ARRAY_IDX(t->out, i, const char *));
        if (fflush(stdout) != 0) {
            perror("mtls-authz-rule: stdout");
            rc = EXIT_INTERNAL;
        }
    }
    else if (t->err) {
        fprintf(stderr, "mtls-authz-rule: %s\n", t->err);
        rc = EXIT_INTERNAL;
    }
    return rc;
}

static int run(tool_t *t, const args_t *a)
{
    const char *file = APR_ARRAY_IDX(a->files, 0, const char *);
    tool_check_args_t c;
    int rc;

    switch (a->mode) {
    case MODE_ISSUER:
        return tool_issuer_mode(t, file);
    case MODE_DENY:
        return tool_deny_mode(t, file, a->ca);
    case MODE_CHECK:
    case MODE_DIFF:
        if ((rc = check_args(t->p, a, &c)) != ARGS_GO_ON)
            return rc;
        return a->mode == MODE_CHECK ? tool_check_mode(t, &c)
                                     : tool_diff_mode(t, &c);
    default:
        return tool_cert_mode(t, file, a->ca);
    }
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;
    tool_t t;
    args_t a;
    int rc;

    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS ||
        apr_pool_create(&p, NULL) != APR_SUCCESS) {
        fputs("mtls-authz-rule: cannot initialise APR\n", stderr);
        return EXIT_INTERNAL;
    }
    if ((rc = parse_args(p, argc, argv, &a)) == ARGS_GO_ON) {
        t.p = p;
        t.out = apr_array_make(p, 32, sizeof(const char *));
        t.err = NULL;
        rc = finish(&t, run(&t, &a));
    }
    apr_pool_destroy(p);
    apr_terminate();
    return rc;
}
