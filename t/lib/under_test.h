/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* The module's headers as the unit tests, the fuzz targets and the
 * certificate builder see them: its pure code, without httpd. They
 * include this file and no module header of their own, so that a
 * declaration moving between the module's headers is one line here. */

#ifndef UNDER_TEST_H
#define UNDER_TEST_H

#include "mtls_dn.h"
#include "mtls_file.h"
#include "mtls_identity.h"
#include "mtls_key.h"
#include "mtls_policy.h"
#include "mtls_rules.h"
#include "mtls_time.h"

#endif
