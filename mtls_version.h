/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* The version of mod_mtls_authz: the one place it is written. The
 * module's startup debug line and `mtls-authz-rule --version` print it;
 * the Makefile reads it for the Debian package, whose debian/changelog
 * must name the same version (make deb and t/version.t check), as must
 * the man pages' footers (t/man.t). */

#ifndef MTLS_VERSION_H
#define MTLS_VERSION_H

#define MTLS_AUTHZ_VERSION "1.0"

#endif
