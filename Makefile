# mod_mtls_authz — see README.md. `make`, `make test`, `make demo`.

APXS ?= $(shell command -v apxs2 2>/dev/null || command -v apxs 2>/dev/null || echo apxs)
CC ?= cc
WARN = -Wall -Wextra -Werror
MODULE = .libs/mod_mtls_authz.so
SRC = mod_mtls_authz.c mtls_conf.c mtls_conn.c mtls_access.c mtls_rules.c mtls_dn.c
HDR = mod_mtls_authz.h mtls_conf.h mtls_conn.h mtls_access.h mtls_rules.h
APR_CFLAGS = $(shell pkg-config --cflags apr-1 2>/dev/null || echo -I/usr/include/apr-1.0)
APR_LIBS = $(shell pkg-config --libs apr-1 2>/dev/null || echo -lapr-1)
BUILD = build

.PHONY: all install deps test unit demo bench bench-smoke clean format check-format

all: $(MODULE)

$(MODULE): $(SRC) $(HDR) Makefile
	$(APXS) -c -n mtls_authz $(foreach f,$(WARN) $(EXTRA_CFLAGS),-Wc,$(f)) \
	    $(EXTRA_LDFLAGS) -lssl -lcrypto $(SRC)

install: $(MODULE)
	$(APXS) -i -n mtls_authz mod_mtls_authz.la

# Checks the system packages; installs missing ones with apt-get (as root)
# after saying so, or lists them and stops.
deps:
	@sh scripts/deps.sh

# Unit tests of the matching code, without httpd.
$(BUILD)/unit: t/unit/unit.c mtls_rules.c mtls_dn.c mtls_rules.h
	@mkdir -p $(BUILD)
	$(CC) $(WARN) -g $(APR_CFLAGS) -I. -o $@ t/unit/unit.c mtls_rules.c mtls_dn.c \
	    $(APR_LIBS) -lcrypto

# A test-only consumer of mod_mtls_authz.h, loaded by the suite.
$(BUILD)/mod_mtls_probe.so: t/probe/mod_mtls_probe.c mod_mtls_authz.h
	@mkdir -p $(BUILD)
	$(CC) $(WARN) -shared -fPIC -g $(shell $(APXS) -q EXTRA_CPPFLAGS) \
	    -I$(shell $(APXS) -q INCLUDEDIR) $(APR_CFLAGS) -I. -o $@ $<

unit: $(BUILD)/unit
	$(BUILD)/unit

test: deps
	@$(MAKE) --no-print-directory all $(BUILD)/unit $(BUILD)/mod_mtls_probe.so
	@sh scripts/run-tests.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo.sh

# Side-by-side benchmark against Require expr (bench/run.pl; ~25 min on
# 2 cores): writes bench/RESULTS.md and bench/per-request.png. BENCH_*
# variables tune it (see the top of bench/run.pl).
bench:
	@sh scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@perl bench/run.pl

# The same harness with tiny N, a few hundred requests and one round, for
# CI: fails when the harness breaks, never on timings.
bench-smoke:
	@sh scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@BENCH_SMOKE=1 perl bench/run.pl

format:
	clang-format -i $(SRC) $(HDR) t/unit/unit.c t/probe/mod_mtls_probe.c

check-format:
	clang-format --dry-run --Werror $(SRC) $(HDR) t/unit/unit.c t/probe/mod_mtls_probe.c

clean:
	rm -rf .libs *.la *.lo *.slo *.o $(BUILD) t/pki/out t/logs t/conf/httpd.conf \
	    t/conf/apache_test_config.pm t/conf/extra.conf t/conf/modperl_inc.pl \
	    t/TEST t/htdocs/index.html
