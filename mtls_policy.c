/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* Deny rules, then allow rules. See mtls_policy.h. */

#include <apr_strings.h>

#include "mtls_policy.h"
#include "mtls_time.h"

const mtls_rule_t *mtls_policy_match(const mtls_ruleset_t *allow,
                                     const mtls_ruleset_t *const *denies,
                                     int n_denies, const mtls_identity_t *id,
                                     apr_time_t now, mtls_trace_fn *trace,
                                     void *baton, mtls_match_t *m)
{
    int i;
    for (i = 0; i < n_denies; i++) {
        mtls_match_t dm;
        const mtls_rule_t *d =
            mtls_ruleset_match_at(denies[i], id, now, trace, baton, &dm);
        if (d) {
            m->rule = NULL;
            m->miss = MTLS_MISS_DENIED;
            m->near = d;
            return NULL;
        }
    }
    if (allow == NULL) {
        m->rule = NULL;
        m->miss = MTLS_MISS_NO_RULE;
        m->near = NULL;
        return NULL;
    }
    return mtls_ruleset_match_at(allow, id, now, trace, baton, m);
}

const char *mtls_policy_reason(apr_pool_t *p, const mtls_match_t *m)
{
    char t[MTLS_TIME_TEXT_LEN];
    switch (m->miss) {
    case MTLS_MISS_DENIED:
        return apr_pstrcat(p, "denied by ", m->near->source, NULL);
    case MTLS_MISS_EXPIRED:
        return apr_psprintf(p, "rule %s expired at %s", m->near->source,
                            mtls_time_text(t, m->near->ext->not_after));
    case MTLS_MISS_NOT_YET:
        return apr_psprintf(p, "rule %s not yet valid until %s",
                            m->near->source,
                            mtls_time_text(t, m->near->ext->not_before));
    case MTLS_MISS_ISSUER:
        return "issuer not allowed";
    default:
        return "no rule matched";
    }
}
