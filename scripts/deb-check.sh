#!/bin/bash
# make deb-check: proves the package built by make deb on a throwaway
# Debian system, never on this machine's own /etc:
#
#   1. debootstrap a minimal root of this machine's Debian release into
#      build/deb-check/root, from the mirror this machine's apt uses, and
#      give it the same apt sources and settings; a policy-rc.d there
#      keeps the package scripts from starting any service;
#   2. install apache2 there, then the package with apt-get install ./X.deb;
#      its postinst must have enabled mtls_authz and, through the .load
#      file's "# Depends: ssl", ssl; both are disabled again and
#      `a2enmod mtls_authz` must enable both;
#   3. a PKI made there with openssl (a CA, a server certificate, clients
#      alice and bob), a TLS virtual host on a free loopback port (the
#      root shares this machine's network) with MTLSAuthz On and an
#      MTLSAllow rule for alice; `apache2ctl -t`, then httpd started:
#      alice gets 200, bob (same CA, no rule) 403 and a denial line in the
#      error log, which names the module's version at startup;
#      mtls-authz-rule --version and a rule it prints for alice agree;
#   4. apt-get remove: no mtls_authz link is left in mods-enabled, the
#      module file is gone and `apache2ctl -t` still passes; apt-get purge
#      takes the mods-available files.
#
# Whatever happens, the root's httpd is stopped and every mount under the
# root is undone before the script exits (trap). Each step is printed and
# bounded in time. The root is removed after a pass (DEB_CHECK_KEEP=1
# keeps it) and kept for inspection after a failure; the next run
# starts from scratch.
#
# Usage (as root): bash scripts/deb-check.sh [PACKAGE.deb]
#   default package: ./libapache2-mod-mtls-authz_VERSION_ARCH.deb (make deb)
# Environment: DEB_CHECK_PORT (default: a free loopback port),
#   DEB_CHECK_MIRROR (default: the one apt uses here), DEB_CHECK_KEEP.
set -euo pipefail
cd "$(dirname "$0")/.."
# Without symlinks: /proc/PID/root of a process in the root is compared
# with $root.
top=$(pwd -P)

work=$top/build/deb-check
root=$work/root
pkg=libapache2-mod-mtls-authz
t0=$(date +%s)

say() { printf 'deb-check [%4ss]: %s\n' "$(($(date +%s) - t0))" "$*"; }
fail() {
    printf 'deb-check: FAILED: %s\n' "$*" >&2
    exit 1
}
pass() { printf 'deb-check:   ok - %s\n' "$*"; }

[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot, mount); run it as root"

version=$(sed -n 's/^#define MTLS_AUTHZ_VERSION "\(.*\)"$/\1/p' mtls_version.h)
arch=$(dpkg --print-architecture)
deb=${1:-}
if [ -z "$deb" ]; then
    deb_version=$(dpkg-parsechangelog -S Version)
    deb=./${pkg}_${deb_version#*:}_${arch}.deb
fi
[ -f "$deb" ] || fail "no $deb: run make deb first"

# ---- cleaning up, also on failure -------------------------------------------------

# Processes whose root directory is our root (the chroot's httpd and
# anything else started there): their ids, nothing else.
rooted_pids() {
    { find /proc -mindepth 2 -maxdepth 2 -name root -lname "$root" 2>/dev/null || true; } |
        cut -d/ -f3
}

# Every mount point under $root, deepest first.
mounts_under() {
    awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/self/mounts | sort -r
}

cleanup() {
    local pids m sig
    if [ -x "$root/usr/sbin/apache2ctl" ] && [ -e "$root/var/run/apache2/apache2.pid" ]; then
        timeout 20 chroot "$root" /usr/sbin/apache2ctl stop >/dev/null 2>&1 || true
    fi
    for sig in TERM TERM TERM KILL; do
        pids=$(rooted_pids)
        [ -z "$pids" ] && break
        # shellcheck disable=SC2086
        kill -s "$sig" $pids 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            [ -z "$(rooted_pids)" ] && break
            sleep 0.5
        done
    done
    pids=$(rooted_pids)
    [ -z "$pids" ] || echo "deb-check: WARNING: still running in $root: $pids" >&2
    for m in $(mounts_under); do
        umount "$m" 2>/dev/null || umount -l "$m" || true
    done
    [ -z "$(mounts_under)" ] || echo "deb-check: WARNING: still mounted: $(mounts_under)" >&2
}

# Removes the root; refuses while anything is mounted under it, so that
# rm never walks into /proc or a bind mount.
remove_root() {
    cleanup
    if [ -n "$(mounts_under)" ]; then
        fail "cannot remove $work: still mounted: $(mounts_under)"
    fi
    rm -rf --one-file-system "$work"
}

finish() {
    local st=$?
    trap - EXIT INT TERM
    set +e
    say "cleaning up (httpd stopped, mounts undone)"
    cleanup
    if [ "$st" = 0 ] && [ -z "${DEB_CHECK_KEEP:-}" ]; then
        rm -rf --one-file-system "$work"
    elif [ -d "$work" ]; then
        say "the root is kept in $work for inspection (removed on the next run)"
    fi
    if [ "$st" = 0 ]; then
        say "PASS: $deb installs, serves, refuses and removes cleanly"
    else
        printf 'deb-check: FAIL (exit %s) after %ss\n' "$st" "$(($(date +%s) - t0))" >&2
    fi
    exit "$st"
}
trap finish EXIT
trap 'exit 130' INT TERM

# A command in the root, with a clean environment and a time limit.
in_root() {
    local limit=$1
    shift
    timeout "$limit" chroot "$root" /usr/bin/env -i \
        PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive ${http_proxy:+http_proxy=$http_proxy} \
        "$@"
}
# The same through sh -c.
in_root_sh() {
    local limit=$1
    shift
    in_root "$limit" /bin/sh -ec "$1"
}

# ---- 1. the root ----------------------------------------------------------------

remove_root
mkdir -p "$work"

. /etc/os-release
suite=${VERSION_CODENAME:-bookworm}
mirror=${DEB_CHECK_MIRROR:-}
if [ -z "$mirror" ]; then
    # The mirror apt uses here for the release's main component.
    find_mirror() {
        apt-cache policy 2>/dev/null |
            awk -v s="$suite/main" -v a="$arch" '$3 == s && $4 == a { print $2; exit }'
    }
    mirror=$(find_mirror)
    if [ -z "$mirror" ]; then
        say "apt has no package lists yet: apt-get update"
        timeout 300 apt-get update -qq
        mirror=$(find_mirror)
    fi
fi
[ -n "$mirror" ] || fail "no mirror for $suite/main in apt's sources; set DEB_CHECK_MIRROR"

say "debootstrap --variant=minbase $suite into $root (mirror: $mirror)"
if ! timeout 1500 debootstrap --variant=minbase --arch="$arch" "$suite" "$root" "$mirror" \
    >"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    fail "debootstrap (log: $work/debootstrap.log)"
fi
[ -z "$(mounts_under)" ] || say "debootstrap left mounted: $(mounts_under) (undone at the end)"

# No service may start from a package script: the root shares this
# machine's network, where an httpd on port 80 must not appear.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
# A throwaway root: dpkg need not sync every file it unpacks.
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/deb-check-unsafe-io"
mount -t proc proc "$root/proc"
# apt there as apt is set up here: the same sources and settings.
rm -f "$root/etc/apt/sources.list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && cp "$f" "$root$f"
done
for f in /etc/apt/apt.conf.d/*; do
    [ -f "$f" ] && [ ! -e "$root$f" ] && cp "$f" "$root$f"
done
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
say "root ready: $(du -sh --one-file-system "$root" | cut -f1)"

say "apt-get update; apt-get install apache2 curl openssl (in the root)"
if ! in_root_sh 900 'apt-get update -q && apt-get install -y -q --no-install-recommends apache2 curl openssl' \
    >"$work/apt-base.log" 2>&1; then
    tail -n 30 "$work/apt-base.log" >&2
    fail "installing apache2 in the root (log: $work/apt-base.log)"
fi
say "$(in_root 30 dpkg-query -W -f '${Package} ${Version}' apache2-bin) installed"
[ ! -e "$root/etc/apache2/mods-enabled/ssl.load" ] || fail "ssl is enabled before the package is installed"

# ---- 2. the package -----------------------------------------------------------------

base=$(basename "$deb")
cp "$deb" "$root/tmp/$base"
say "apt-get install ./$base (in the root)"
if ! in_root_sh 600 "cd /tmp && apt-get install -y -q ./$base" >"$work/apt-install.log" 2>&1; then
    cat "$work/apt-install.log" >&2
    fail "apt-get install ./$base"
fi
grep -E '^(Setting up|Enabling|Considering)' "$work/apt-install.log" | sed 's/^/deb-check:   | /'
st=$(in_root 30 dpkg-query -W -f '${Status} ${Version}' "$pkg")
case $st in
"install ok installed "*) ;;
*) fail "dpkg says: $st" ;;
esac
pass "installed: $st"

for f in /usr/lib/apache2/modules/mod_mtls_authz.so /usr/bin/mtls-authz-rule \
    /etc/apache2/mods-available/mtls_authz.load /etc/apache2/mods-available/mtls_authz.conf \
    /usr/share/man/man1/mtls-authz-rule.1.gz /usr/share/man/man8/mod_mtls_authz.8.gz \
    /usr/share/doc/$pkg/copyright /usr/share/doc/$pkg/README.md.gz; do
    [ -f "$root$f" ] || fail "$f is not installed"
done
pass "module, .load, .conf, mtls-authz-rule, man pages and docs are installed"

enabled() { [ -L "$root/etc/apache2/mods-enabled/$1.load" ]; }
enabled mtls_authz || fail "the package's postinst did not enable mtls_authz"
enabled ssl || fail "mtls_authz was enabled without ssl (# Depends: ssl not honoured)"
pass "postinst enabled mtls_authz, and ssl with it"

in_root 30 a2dismod -q -f mtls_authz ssl >/dev/null
if enabled mtls_authz || enabled ssl; then
    fail "a2dismod mtls_authz ssl left a module enabled"
fi
say "a2enmod mtls_authz (with mtls_authz and ssl disabled)"
in_root 30 a2enmod mtls_authz 2>&1 | sed 's/^/deb-check:   | /'
enabled mtls_authz || fail "a2enmod mtls_authz did not enable it"
enabled ssl || fail "a2enmod mtls_authz did not enable ssl (# Depends: ssl)"
pass "a2enmod mtls_authz enabled mtls_authz and ssl"

out=$(in_root 30 mtls-authz-rule --version)
case $out in
"mtls-authz-rule $version "*) pass "mtls-authz-rule --version: $out" ;;
*) fail "mtls-authz-rule --version says '$out', not version $version" ;;
esac

# ---- 3. a real request ----------------------------------------------------------------

port=${DEB_CHECK_PORT:-$(perl -MIO::Socket::INET -e \
    'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0, ReuseAddr => 0)->sockport')}
if perl -MIO::Socket::INET -e 'exit(IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $ARGV[0], Timeout => 2) ? 0 : 1)' "$port"; then
    fail "port $port on 127.0.0.1 is taken"
fi
say "PKI with openssl in the root (CA, server 127.0.0.1, clients alice and bob)"
in_root_sh 60 '
d=/etc/apache2/deb-check
mkdir -p $d && cd $d
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $1.key 2>/dev/null; }
key ca
openssl req -x509 -new -key ca.key -out ca.crt -days 2 -subj "/O=deb-check/CN=deb-check CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
leaf() { # name subject extensions
    key $1
    openssl req -new -key $1.key -subj "$2" -out $1.csr
    printf "%s\n" "$3" >$1.ext
    openssl x509 -req -in $1.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile $1.ext -out $1.crt 2>/dev/null
}
leaf server "/CN=127.0.0.1" "subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf alice "/O=deb-check/CN=alice" "extendedKeyUsage=clientAuth"
leaf bob "/O=deb-check/CN=bob" "extendedKeyUsage=clientAuth"
chmod 600 *.key
'
fp=$(in_root 30 openssl x509 -in /etc/apache2/deb-check/ca.crt -noout -fingerprint -sha256 |
    sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
[ ${#fp} = 64 ] || fail "no SHA-256 fingerprint of the CA ($fp)"

# The rule the packaged tool prints for alice must pin the same CA.
rules=$(in_root 30 mtls-authz-rule --ca /etc/apache2/deb-check/ca.crt /etc/apache2/deb-check/alice.crt)
printf '%s\n' "$rules" | grep -q "^MTLSAllow .*issuer=sha256:$fp" ||
    fail "mtls-authz-rule printed no MTLSAllow line pinning the CA:"$'\n'"$rules"
pass "mtls-authz-rule --ca ca.crt alice.crt: $(printf '%s\n' "$rules" | grep -m1 '^MTLSAllow ')"

say "virtual host on 127.0.0.1:$port: MTLSAuthz On, MTLSAllow for alice"
printf 'Listen 127.0.0.1:%s\n' "$port" >"$root/etc/apache2/ports.conf"
mkdir -p "$root/var/www/deb-check"
echo "deb-check ok" >"$root/var/www/deb-check/index.html"
cat >"$root/etc/apache2/sites-available/deb-check.conf" <<EOF
# written by scripts/deb-check.sh
ServerName 127.0.0.1
# The module's startup line is logged for the main server.
LogLevel warn mtls_authz:debug
<VirtualHost 127.0.0.1:$port>
    ServerName 127.0.0.1
    DocumentRoot /var/www/deb-check
    SSLEngine on
    SSLCertificateFile /etc/apache2/deb-check/server.crt
    SSLCertificateKeyFile /etc/apache2/deb-check/server.key
    SSLCACertificateFile /etc/apache2/deb-check/ca.crt
    SSLVerifyClient require
    SSLVerifyDepth 2
    <Location />
        MTLSAuthz On
        MTLSAllow "subject=CN=alice,O=deb-check" issuer=sha256:$fp
    </Location>
</VirtualHost>
EOF
in_root 30 a2dissite -q 000-default >/dev/null
in_root 30 a2ensite -q deb-check >/dev/null

say "apache2ctl -t"
if ! out=$(in_root 60 apache2ctl -t 2>&1); then
    printf '%s\n' "$out" >&2
    fail "apache2ctl -t"
fi
printf '%s\n' "$out" | sed 's/^/deb-check:   | /'
printf '%s\n' "$out" | grep -q 'Syntax OK' || fail "apache2ctl -t did not say Syntax OK"
mods=$(in_root 60 apache2ctl -M 2>&1)
printf '%s\n' "$mods" | grep -q ' mtls_authz_module ' || fail "apache2ctl -M lists no mtls_authz_module"
printf '%s\n' "$mods" | grep -q ' ssl_module ' || fail "apache2ctl -M lists no ssl_module"
pass "apache2ctl -t: Syntax OK; apache2ctl -M lists mtls_authz_module and ssl_module"

say "apache2ctl start (in the root)"
# Not through systemctl, whatever runs as this machine's pid 1.
in_root 30 env APACHE_STARTED_BY_SYSTEMD=true apache2ctl start
for _ in $(seq 1 100); do
    perl -MIO::Socket::INET -e 'exit(IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $ARGV[0], Timeout => 1) ? 0 : 1)' "$port" && break
    sleep 0.2
done
[ -n "$(rooted_pids)" ] || fail "httpd is not running in the root: $(tail -n 20 "$root/var/log/apache2/error.log")"
pass "httpd runs (pids $(rooted_pids | tr '\n' ' '))"

# One request as $1; prints the status code (000: no HTTP response).
request() {
    in_root 30 curl -s -o "/tmp/body.$1" -w '%{http_code}' --max-time 15 \
        --cacert /etc/apache2/deb-check/ca.crt \
        --cert "/etc/apache2/deb-check/$1.crt" --key "/etc/apache2/deb-check/$1.key" \
        "https://127.0.0.1:$port/" || true
}
code=$(request alice)
body=$(cat "$root/tmp/body.alice" 2>/dev/null || true)
if [ "$code" != 200 ] || [ "$body" != "deb-check ok" ]; then
    fail "alice (allowed): HTTP $code, body '$body', expected 200 and 'deb-check ok'"
fi
pass "alice (CN=alice,O=deb-check, allowed): 200 'deb-check ok'"
code=$(request bob)
[ "$code" = 403 ] || fail "bob (same CA, no rule): HTTP $code, expected 403"
pass "bob (CN=bob,O=deb-check, same CA, no rule): 403"

log=$root/var/log/apache2/error.log
denial='\[mtls_authz:error\].*client denied by server configuration: /: no rule matched; subject "CN=bob,O=deb-check"'
for _ in $(seq 1 50); do
    grep -q "$denial" "$log" && break
    sleep 0.2
done
grep -q "mod_mtls_authz/$version loaded" "$log" ||
    fail "no startup line 'mod_mtls_authz/$version loaded' in the error log:"$'\n'"$(tail -n 20 "$log")"
pass "error log: $(grep -m1 -o "mod_mtls_authz/$version loaded.*" "$log")"
grep -q "$denial" "$log" || fail "no denial line for bob in the error log"
pass "error log: $(grep -m1 "$denial" "$log" | sed 's/^.*\] client/client/' | cut -c1-120)..."

say "apache2ctl stop"
in_root 30 apache2ctl stop
for _ in $(seq 1 50); do
    [ -z "$(rooted_pids)" ] && break
    sleep 0.2
done
[ -z "$(rooted_pids)" ] || fail "httpd still runs after apache2ctl stop: $(rooted_pids | tr '\n' ' ')"
pass "httpd stopped"

# ---- 4. removal -----------------------------------------------------------------------

# The mtls_authz.* entries (files or links, dangling or not) in the
# directories given.
mtls_files() {
    local d f
    for d in "$@"; do
        for f in "$d"/mtls_authz*; do
            [ -e "$f" ] || [ -L "$f" ] && echo "$f"
        done
    done
    return 0
}

in_root 30 a2dissite -q deb-check >/dev/null
say "apt-get remove $pkg (in the root)"
if ! in_root 300 apt-get remove -y -q "$pkg" >"$work/apt-remove.log" 2>&1; then
    cat "$work/apt-remove.log" >&2
    fail "apt-get remove $pkg"
fi
left=$(mtls_files "$root/etc/apache2/mods-enabled")
[ -z "$left" ] || fail "left in mods-enabled after apt-get remove: $left"
pass "no mtls_authz link left in mods-enabled"
[ ! -e "$root/usr/lib/apache2/modules/mod_mtls_authz.so" ] || fail "the module is still installed"
[ ! -e "$root/usr/bin/mtls-authz-rule" ] || fail "mtls-authz-rule is still installed"
out=$(in_root 60 apache2ctl -t 2>&1) || fail "apache2ctl -t after removal: $out"
pass "module and tool gone; apache2ctl -t still says Syntax OK"
[ -f "$root/etc/apache2/mods-available/mtls_authz.load" ] ||
    fail "apt-get remove took the conffile mtls_authz.load (only purge may)"
say "apt-get purge $pkg (in the root)"
in_root 300 apt-get purge -y -q "$pkg" >"$work/apt-purge.log" 2>&1 ||
    fail "apt-get purge $pkg: $(cat "$work/apt-purge.log")"
left=$(mtls_files "$root/etc/apache2/mods-available" "$root/etc/apache2/mods-enabled")
[ -z "$left" ] || fail "left after apt-get purge: $left"
pass "apt-get purge took mtls_authz.load and mtls_authz.conf"
