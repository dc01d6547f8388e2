/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls_status: SetHandler mtls-authz-status, the counters and the
 * recently seen clients of mtls_stats as HTML, JSON (?json) or the
 * Prometheus text format (?prometheus). */

#ifndef MTLS_STATUS_H
#define MTLS_STATUS_H

#include "httpd.h"

#define MTLS_STATUS_HANDLER "mtls-authz-status"

int mtls_status_handler(request_rec *r);

#endif
