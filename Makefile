# mod_mtls_authz — see README.md. `make`, `make test`, `make demo`.
# Hardening (fuzz/README.md): `make fuzz`, `make fuzz-smoke`,
# `make test SANITIZE=1`, `make valgrind`.

APXS ?= $(shell command -v apxs2 2>/dev/null || command -v apxs 2>/dev/null || echo apxs)
CC ?= cc
WARN = -Wall -Wextra -Werror
MODULE = .libs/mod_mtls_authz.so
# The module's code without httpd, which the tool, the unit tests and the
# fuzz targets link.
PURE_SRC = mtls_key.c mtls_dn.c mtls_identity.c mtls_rules.c mtls_file.c \
    mtls_time.c mtls_policy.c
PURE_HDR = mtls_key.h mtls_dn.h mtls_identity.h mtls_rules.h mtls_file.h \
    mtls_time.h mtls_policy.h mtls_version.h
# The version, from the one place it is written (mtls_version.h).
VERSION := $(shell sed -n 's/^\#define MTLS_AUTHZ_VERSION "\(.*\)"$$/\1/p' mtls_version.h)
SRC = mod_mtls_authz.c mtls_conf.c mtls_ssl.c mtls_conn.c mtls_access.c \
    mtls_env.c mtls_headers.c mtls_stats.c mtls_status.c $(PURE_SRC)
HDR = mod_mtls_authz.h mtls_conf.h mtls_ssl.h mtls_conn.h mtls_access.h \
    mtls_env.h mtls_headers.h mtls_stats.h mtls_status.h $(PURE_HDR)
APR_CFLAGS = $(shell pkg-config --cflags apr-1 2>/dev/null || echo -I/usr/include/apr-1.0)
APR_LIBS = $(shell pkg-config --libs apr-1 2>/dev/null || echo -lapr-1)
BUILD = build
# Every C file of ours that clang-format keeps in shape.
FORMAT_SRC = $(SRC) $(HDR) $(TOOL_SRC) $(TOOL_HDR) $(UNIT_SRC) $(UNIT_HDR) $(TESTLIB_SRC) \
    $(TESTLIB_HDR) t/probe/mod_mtls_probe.c t/probe/mod_mtls_clock.c \
    soak/client.c $(FUZZ_SRC) fuzz/fuzz_common.h
# What the unit tests and the fuzz targets share (t/lib/): the
# certificate builder and the one header through which they include the
# module's.
TESTLIB_SRC = t/lib/certbuild.c
TESTLIB_HDR = t/lib/certbuild.h t/lib/under_test.h
UNIT_SRC = t/unit/main.c t/unit/unit.c t/unit/unit_dn.c t/unit/unit_identity.c \
    t/unit/unit_icache.c \
    t/unit/unit_rules.c t/unit/unit_san.c t/unit/unit_net.c t/unit/unit_file.c \
    t/unit/unit_policy.c t/unit/unit_places.c
UNIT_HDR = t/unit/unit.h
TOOL = $(BUILD)/mtls-authz-rule
TOOL_SRC = tools/mtls-authz-rule.c tools/tool_util.c tools/tool_dn.c \
    tools/tool_allow.c tools/tool_deny.c tools/tool_config.c \
    tools/tool_check.c tools/tool_report.c
TOOL_HDR = tools/tool.h

# SANITIZE=1: the module, the unit tests and the probe module are built
# with ASan and UBSan, and the suite runs httpd with the ASan runtime
# preloaded (scripts/run-tests.sh). The flags are recorded in
# $(BUILD)/flags, so switching SANITIZE on or off rebuilds everything.
ifeq ($(SANITIZE),1)
SAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all \
    -fno-omit-frame-pointer
endif

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_TARGETS = dn rules cert certgen
FUZZ_BIN = $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)
FUZZ_SRC = fuzz/fuzz_common.c fuzz/fuzz_dn.c fuzz/fuzz_rules.c fuzz/fuzz_cert.c \
    fuzz/fuzz_certgen.c
FUZZ_HDR = fuzz/fuzz_common.h fuzz/fuzz_cert_ca.h

.PHONY: all install deps test unit demo soak soak-smoke bench bench-smoke \
    bench-allowfile clean format check-format fuzz fuzz-smoke fuzz-build \
    valgrind deb deb-check screenshot FORCE

all: $(MODULE) $(TOOL)

$(MODULE): $(SRC) $(HDR) Makefile $(BUILD)/flags
	$(APXS) -c -n mtls_authz \
	    $(foreach f,$(WARN) $(SAN_FLAGS) $(EXTRA_CFLAGS),-Wc,$(f)) \
	    $(foreach f,$(SAN_FLAGS),-Wl,$(f)) \
	    $(EXTRA_LDFLAGS) -lssl -lcrypto $(SRC)

# Rewritten only when the sanitizer flags change, so that what depends
# on it is rebuilt exactly then.
$(BUILD)/flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(SAN_FLAGS)' | cmp -s - $@ || echo '$(SAN_FLAGS)' >$@

# `make install`: the module into apxs's LIBEXECDIR, the tool into
# $(BINDIR), the man pages mtls-authz-rule(1) and mod_mtls_authz(8)
# into $(MANDIR)/man1 and man8 (beside the tool, where man finds them
# through PATH), and on a Debian-style layout (a mods-available/ directory
# in apxs's SYSCONFDIR, e.g. /etc/apache2) mtls_authz.load and
# mtls_authz.conf there for a2enmod. DESTDIR is prepended to every path
# (for packaging); MODS_AVAILABLE= (empty) skips the a2enmod files.
# An existing mtls_authz.conf is left alone: it may have been edited.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
LIBEXECDIR = $(shell $(APXS) -q LIBEXECDIR)
SYSCONFDIR = $(shell $(APXS) -q SYSCONFDIR)
MODS_AVAILABLE ?= $(if $(wildcard $(SYSCONFDIR)/mods-available),$(SYSCONFDIR)/mods-available)

install: all
	install -d "$(DESTDIR)$(LIBEXECDIR)" "$(DESTDIR)$(BINDIR)" \
	    "$(DESTDIR)$(MANDIR)/man1" "$(DESTDIR)$(MANDIR)/man8"
	install -m 644 $(MODULE) "$(DESTDIR)$(LIBEXECDIR)/mod_mtls_authz.so"
	install -m 755 $(TOOL) "$(DESTDIR)$(BINDIR)/mtls-authz-rule"
	install -m 644 man/mtls-authz-rule.1 "$(DESTDIR)$(MANDIR)/man1/mtls-authz-rule.1"
	install -m 644 man/mod_mtls_authz.8 "$(DESTDIR)$(MANDIR)/man8/mod_mtls_authz.8"
	@if [ -n "$(MODS_AVAILABLE)" ]; then \
	    set -e; d="$(DESTDIR)$(MODS_AVAILABLE)"; \
	    install -d "$$d"; \
	    sed 's|/usr/lib/apache2/modules/|$(LIBEXECDIR)/|' conf/mtls_authz.load \
	        >"$$d/mtls_authz.load.tmp"; \
	    chmod 644 "$$d/mtls_authz.load.tmp"; \
	    mv "$$d/mtls_authz.load.tmp" "$$d/mtls_authz.load"; \
	    echo "installed $$d/mtls_authz.load"; \
	    if [ -e "$$d/mtls_authz.conf" ]; then \
	        echo "kept $$d/mtls_authz.conf (it exists)"; \
	    else \
	        install -m 644 conf/mtls_authz.conf "$$d/mtls_authz.conf"; \
	        echo "installed $$d/mtls_authz.conf"; \
	    fi; \
	    echo "enable with: a2enmod mtls_authz (it enables ssl too)"; \
	else \
	    echo "no mods-available directory: add to httpd.conf:"; \
	    echo "    LoadModule mtls_authz_module $(LIBEXECDIR)/mod_mtls_authz.so"; \
	fi

# The Debian package (HACKING.md, "The Debian package"): `make deb` builds
# libapache2-mod-mtls-authz_$(VERSION)_ARCH.deb here from debian/ (in a
# copy of the tree under build/deb/), checks that debian/changelog is for
# $(VERSION), and runs lintian (no error, no warning). `make deb-check`
# (root) installs it in a throwaway Debian root under build/deb-check/,
# sends TLS client-certificate requests through it, and removes it.
deb:
	@sh scripts/deps.sh deb
	@sh scripts/deb.sh

deb-check: deb
	@bash scripts/deb-check.sh

# Checks the system packages; installs missing ones with apt-get (as root)
# after saying so, or lists them and stops.
deps:
	@sh scripts/deps.sh

# The certificate -> rule tool: the module's own parser and matcher
# ($(PURE_SRC)) check every rule it prints.
$(TOOL): $(TOOL_SRC) $(TOOL_HDR) $(PURE_SRC) $(PURE_HDR) Makefile
	@mkdir -p $(BUILD)
	$(CC) $(WARN) -O2 -g $(CPPFLAGS) $(CFLAGS) $(APR_CFLAGS) -I. -o $@ $(TOOL_SRC) \
	    $(PURE_SRC) $(LDFLAGS) $(APR_LIBS) -lcrypto

# Unit tests of the pure code (rules, DN, rule files), without httpd.
$(BUILD)/unit: $(UNIT_SRC) $(UNIT_HDR) $(TESTLIB_SRC) $(TESTLIB_HDR) \
    $(PURE_SRC) $(PURE_HDR) $(BUILD)/flags
	@mkdir -p $(BUILD)
	$(CC) $(WARN) -g $(SAN_FLAGS) $(APR_CFLAGS) -I. -It/lib -o $@ $(UNIT_SRC) \
	    $(TESTLIB_SRC) $(PURE_SRC) $(APR_LIBS) -lcrypto

# A test-only consumer of mod_mtls_authz.h, loaded by the suite.
$(BUILD)/mod_mtls_probe.so: t/probe/mod_mtls_probe.c mod_mtls_authz.h \
    $(BUILD)/flags
	@mkdir -p $(BUILD)
	$(CC) $(WARN) -shared -fPIC -g $(SAN_FLAGS) $(shell $(APXS) -q EXTRA_CPPFLAGS) \
	    -I$(shell $(APXS) -q INCLUDEDIR) $(APR_CFLAGS) -I. -o $@ $<

# Test-only: a request's time from its X-Test-Clock header.
$(BUILD)/mod_mtls_clock.so: t/probe/mod_mtls_clock.c $(BUILD)/flags
	@mkdir -p $(BUILD)
	$(CC) $(WARN) -shared -fPIC -g $(SAN_FLAGS) $(shell $(APXS) -q EXTRA_CPPFLAGS) \
	    -I$(shell $(APXS) -q INCLUDEDIR) $(APR_CFLAGS) -I. -o $@ $<

unit: $(BUILD)/unit
	$(BUILD)/unit

test:
	@sh scripts/deps.sh $(if $(filter 1,$(SANITIZE)),sanitize)
	@$(MAKE) --no-print-directory all $(BUILD)/unit $(BUILD)/mod_mtls_probe.so \
	    $(BUILD)/mod_mtls_clock.so
	@MTLS_SANITIZE=$(SANITIZE) sh scripts/run-tests.sh

# libFuzzer targets (fuzz/): clang with ASan and UBSan.
$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.c $(FUZZ_HDR) \
    $(TESTLIB_SRC) $(TESTLIB_HDR) $(PURE_SRC) $(PURE_HDR)
	@mkdir -p $(BUILD)/fuzz
	$(FUZZ_CC) $(WARN) $(FUZZ_FLAGS) $(APR_CFLAGS) -I. -It/lib -Ifuzz -o $@ $< \
	    fuzz/fuzz_common.c $(TESTLIB_SRC) $(PURE_SRC) $(APR_LIBS) -lcrypto -ldl

fuzz-build: $(FUZZ_BIN)

# Each target for FUZZ_SECONDS (default 60) from its seed corpus.
fuzz:
	@sh scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory fuzz-build
	@sh scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# A few seconds each, and every saved regression input: for CI.
fuzz-smoke:
	@sh scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory fuzz-build
	@sh scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

# The suite with httpd -X under valgrind memcheck.
valgrind:
	@sh scripts/deps.sh valgrind
	@$(MAKE) --no-print-directory SANITIZE= all $(BUILD)/unit \
	    $(BUILD)/mod_mtls_probe.so $(BUILD)/mod_mtls_clock.so
	@MTLS_VALGRIND=1 sh scripts/run-tests.sh

# Load time and memory of a 100,000-line MTLSAllowFile (N=... to change).
bench-allowfile:
	@sh scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@sh scripts/bench-allowfile.sh $(N)

# The load generator of the soak runs (soak/soak.sh).
$(BUILD)/soak-client: soak/client.c
	@mkdir -p $(BUILD)
	$(CC) $(WARN) -O2 -g -pthread -o $@ soak/client.c -lssl -lcrypto

# 1,000,000 keep-alive requests (SOAK_REQUESTS=), then graceful restarts
# under load; see HACKING.md, "Soak". Not part of CI: it takes minutes.
soak: deps
	@$(MAKE) --no-print-directory all $(BUILD)/soak-client
	@bash soak/soak.sh all

# The same with a few thousand requests and no RSS verdict.
soak-smoke: deps
	@$(MAKE) --no-print-directory all $(BUILD)/soak-client
	@bash soak/soak.sh smoke

demo: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo.sh

# docs/status.png, the status page of docs/status.md, rendered by headless
# Chromium from a throwaway httpd with a few clients' requests
# (scripts/status-screenshot.sh).
screenshot:
	@sh scripts/deps.sh docs
	@$(MAKE) --no-print-directory all
	@sh scripts/status-screenshot.sh

# Side-by-side benchmark against Require expr (bench/run.pl): callgrind
# instructions per keep-alive request, per new and per resumed connection,
# CPU under load, startup and RSS up to a million rules; PASS/MISS per
# target. Writes bench/RESULTS.md, bench/per-request.png and
# bench/per-connection.png. BENCH_* variables tune it (see the top of
# bench/run.pl).
bench:
	@sh scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@perl bench/run.pl

# The same harness with tiny N, a few hundred requests and one round, for
# CI: every code path once (resumed connections included); fails when the
# harness breaks, never on a missed target.
bench-smoke:
	@sh scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@BENCH_SMOKE=1 perl bench/run.pl

format:
	clang-format -i $(FORMAT_SRC)

check-format:
	clang-format --dry-run --Werror $(FORMAT_SRC)

# --one-file-system: never into a mount (make deb-check's root mounts
# /proc while it runs, and unmounts it even on failure).
clean:
	rm -rf --one-file-system .libs *.la *.lo *.slo *.o $(BUILD) t/pki/out t/logs t/conf/httpd.conf \
	    t/conf/apache_test_config.pm t/conf/extra.conf t/conf/*.inc \
	    t/conf/modperl_inc.pl t/TEST t/htdocs/index.html \
	    libapache2-mod-mtls-authz_*.deb
