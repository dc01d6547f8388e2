#!/bin/sh
# Runs the whole suite: unit tests of the matching code, then the
# Apache::Test suite against a real httpd + mod_ssl with a PKI generated
# for the run. Called by `make test` after the build.
#
# Apache::Test refuses to run as root ("Apache cannot spawn child
# processes as root"), so as root the suite runs as the unprivileged user
# $MTLS_TEST_USER (default nobody) in a copy of the tree that it owns.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
APXS=${APXS:-$(command -v apxs2 2>/dev/null || command -v apxs)}

if [ "$(id -u)" = 0 ] && [ -z "${MTLS_AS_USER:-}" ]; then
    user=${MTLS_TEST_USER:-nobody}
    work=$(mktemp -d /tmp/mtls-authz-test.XXXXXX)
    trap 'rm -rf "$work"' EXIT
    echo "Running as root: the suite runs as '$user' in $work"
    tar -C "$top" --exclude=.git -cf - . | tar -C "$work" -xf -
    chown -R "$user" "$work"
    chmod 755 "$work"
    rc=0
    runuser -u "$user" -- env MTLS_AS_USER=1 HOME="$work" APXS="$APXS" \
        ${MTLS_HTTPD:+MTLS_HTTPD="$MTLS_HTTPD"} \
        ${MTLS_SANITIZE:+MTLS_SANITIZE="$MTLS_SANITIZE"} \
        ${MTLS_VALGRIND:+MTLS_VALGRIND="$MTLS_VALGRIND"} \
        sh "$work/scripts/run-tests.sh" "$@" || rc=$?
    # Keep the logs (and any sanitizer or valgrind reports) where the
    # caller can read them.
    rm -rf "$top/t/logs" "$top/build/sanitizer" "$top/build/valgrind"
    cp -r "$work/t/logs" "$top/t/logs" 2>/dev/null || true
    for d in sanitizer valgrind; do
        if [ -d "$work/build/$d" ]; then
            cp -r "$work/build/$d" "$top/build/$d"
        fi
    done
    exit $rc
fi

# MTLS_HTTPD: another httpd binary or a wrapper (e.g. one that runs the
# real one under valgrind).
httpd=${MTLS_HTTPD:-"$($APXS -q SBINDIR)/$($APXS -q progname)"}
libexec=$($APXS -q LIBEXECDIR)
mkdir -p build

# MTLS_SANITIZE=1 (make test SANITIZE=1): the module was built with ASan
# and UBSan; httpd is not, so a wrapper preloads the ASan runtime that the
# module links against (it must come first). Reports go to files in
# build/sanitizer/, and any file there fails the run. httpd runs with
# detect_leaks=0: it does not free its own pools or OpenSSL's globals at
# exit, and the module's allocations are in pools, which LeakSanitizer
# cannot attribute. The module's leaks are checked by the unit tests
# (leak detection on, below), the fuzz targets and make valgrind.
report_dir=""
if [ "${MTLS_SANITIZE:-}" = 1 ]; then
    report_dir=$top/build/sanitizer
    asan=$(ldd .libs/mod_mtls_authz.so | awk '$1 ~ /^libasan\.so/ { print $3 }')
    if [ -z "$asan" ] || [ ! -e "$asan" ]; then
        echo "SANITIZE=1: .libs/mod_mtls_authz.so links no ASan runtime" >&2
        exit 1
    fi
    rm -rf "$report_dir"
    mkdir -p "$report_dir"
    san="abort_on_error=0:print_stacktrace=1:halt_on_error=1"
    export UBSAN_OPTIONS="$san:log_path=$report_dir/unit-ubsan"
    export ASAN_OPTIONS="$san:detect_leaks=1:log_path=$report_dir/unit-asan"
    {
        echo '#!/bin/sh'
        echo '# Written by scripts/run-tests.sh: httpd with ASan preloaded.'
        echo "LD_PRELOAD='$asan' \\"
        echo "ASAN_OPTIONS='$san:detect_leaks=0:log_path=$report_dir/httpd-asan' \\"
        echo "UBSAN_OPTIONS='$san:log_path=$report_dir/httpd-ubsan' \\"
        echo "exec '$httpd' \"\$@\""
    } >build/httpd-sanitize
    chmod +x build/httpd-sanitize
    httpd=$top/build/httpd-sanitize
    echo "== SANITIZE=1: httpd runs with $asan preloaded"
fi

# MTLS_VALGRIND=1 (make valgrind): httpd runs under valgrind memcheck,
# single process (Apache::Test's -one-process runs httpd -X), with one
# log per process in build/valgrind/, checked after the suite.
if [ "${MTLS_VALGRIND:-}" = 1 ]; then
    report_dir=$top/build/valgrind
    rm -rf "$report_dir"
    mkdir -p "$report_dir"
    {
        echo '#!/bin/sh'
        echo '# Written by scripts/run-tests.sh: httpd under valgrind.'
        echo 'exec valgrind --tool=memcheck --num-callers=40 \'
        echo '    --leak-check=full --show-leak-kinds=definite \'
        echo "    --log-file='$report_dir/vg.%p' '$httpd' \"\$@\""
    } >build/httpd-valgrind
    chmod +x build/httpd-valgrind
    httpd=$top/build/httpd-valgrind
    set -- -one-process "$@"
    # httpd starts slowly under valgrind.
    export APACHE_TEST_STARTUP_TIMEOUT=${APACHE_TEST_STARTUP_TIMEOUT:-300}
    export MTLS_TIMEOUT_SCALE=${MTLS_TIMEOUT_SCALE:-10}
    echo "== valgrind: httpd -X under memcheck, logs in $report_dir"
fi

echo "== unit tests"
unit_rc=0
./build/unit >build/unit.log 2>&1 || unit_rc=1
cat build/unit.log

echo "== test PKI"
bash t/pki/mkpki.sh "$top/t/pki/out" >build/pki.log 2>&1 || {
    cat build/pki.log
    exit 1
}

# The modules the test configuration uses, from this httpd's own tree;
# Apache::Test inherits the LoadModule lines from this file.
{
    for m in mpm_event authz_core authz_host authz_user authn_core \
        authn_file auth_basic access_compat alias dir mime rewrite env \
        headers setenvif log_config socache_shmcb ssl http2; do
        if [ -f "$libexec/mod_$m.so" ]; then
            echo "LoadModule ${m}_module $libexec/mod_$m.so"
        fi
    done
    [ -f /etc/mime.types ] && echo "TypesConfig /etc/mime.types"
} >build/base-httpd.conf
grep -q ssl_module build/base-httpd.conf || {
    echo "mod_ssl.so not found in $libexec" >&2
    exit 1
}
# The Apache::Test server also runs CGI backends (mod_cgid), proxies to
# them, and serves /server-info; the httpd instances that tests start
# themselves do not need these.
{
    cat build/base-httpd.conf
    for m in cgid proxy proxy_http info; do
        [ -f "$libexec/mod_$m.so" ] || {
            echo "mod_$m.so not found in $libexec" >&2
            exit 1
        }
        echo "LoadModule ${m}_module $libexec/mod_$m.so"
    done
} >build/suite-httpd.conf

echo "== Apache::Test suite"
rm -rf t/logs
perl t/TEST.PL -apxs "$APXS" -httpd "$httpd" \
    -httpd_conf "$top/build/suite-httpd.conf" "$@" 2>&1 | tee build/suite.log

# One closing line for both parts, from what the runners reported.
unit=$(tail -n 1 build/unit.log)
total=$(sed -n 's/^Files=[0-9]*, Tests=\([0-9]*\),.*/\1/p' build/suite.log)
bad=$(sed -n 's/^Failed [0-9]*\/[0-9]* test programs\. \([0-9]*\)\/[0-9]* subtests failed\./\1/p' build/suite.log)
rc=$unit_rc
grep -q '^Result: PASS' build/suite.log || rc=1
echo "unit: $unit"
echo "suite: $((${total:-0} - ${bad:-0})) passed, ${bad:-0} failed"
if [ "${MTLS_SANITIZE:-}" = 1 ]; then
    n=$(find "$report_dir" -type f | wc -l)
    echo "sanitizer: $n reports (build/sanitizer/)"
    if [ "$n" -gt 0 ]; then
        rc=1
        for f in "$report_dir"/*; do
            echo "---- $f"
            head -n 60 "$f"
        done
    fi
fi
if [ "${MTLS_VALGRIND:-}" = 1 ]; then
    sh scripts/valgrind-check.sh "$report_dir" || rc=1
fi
exit $rc
