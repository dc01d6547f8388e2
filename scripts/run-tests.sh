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
        sh "$work/scripts/run-tests.sh" "$@" || rc=$?
    # Keep the logs where the caller can read them.
    rm -rf "$top/t/logs"
    cp -r "$work/t/logs" "$top/t/logs" 2>/dev/null || true
    exit $rc
fi

# MTLS_HTTPD: another httpd binary or a wrapper (e.g. one that runs the
# real one under valgrind).
httpd=${MTLS_HTTPD:-"$($APXS -q SBINDIR)/$($APXS -q progname)"}
libexec=$($APXS -q LIBEXECDIR)
mkdir -p build

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
exit $rc
