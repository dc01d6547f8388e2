#!/bin/sh
# Makes sure the system packages mod_mtls_authz needs are present.
# On Debian/Ubuntu it installs the missing ones with apt-get (as root, or
# through sudo) after saying so; elsewhere it lists them and stops.
#
# Usage: sh scripts/deps.sh [GROUP...]
#   bench     the benchmark's tools (make bench, bench-smoke, bench-allowfile)
#   deb       the Debian package's build, lintian and the throwaway root
#             of its check (make deb, deb-check)
#   docs      headless Chromium for docs/status.png (make screenshot)
#   fuzz      clang and libFuzzer (make fuzz, fuzz-smoke)
#   sanitize  the ASan/UBSan runtimes (make test SANITIZE=1)
#   valgrind  valgrind (make valgrind)
set -eu

# Debian package -> a file it provides (checked instead of dpkg status so
# that a source-built httpd in the same place also counts). groff and
# man: t/man.t renders the man pages and fails on any warning.
# prometheus: only for /usr/bin/promtool, which t/status.t runs on the
# status page's ?prometheus output (`promtool check metrics`); Debian has
# no smaller package with it. It is large (22 MB to download, 330 MB
# installed with its web assets, on Debian 12) and, on a system run by
# systemd, its postinst enables and starts prometheus.service (port
# 9090); see the end of this script.
need="
apache2:/usr/sbin/apache2
apache2-dev:/usr/bin/apxs
libssl-dev:/usr/include/openssl/ssl.h
libapache2-mod-perl2:/usr/share/perl5/Apache/Test.pm
libwww-perl:/usr/share/perl5/LWP/UserAgent.pm
libio-socket-ssl-perl:/usr/share/perl5/IO/Socket/SSL.pm
curl:/usr/bin/curl
openssl:/usr/bin/openssl
gcc:/usr/bin/gcc
make:/usr/bin/make
perl:/usr/bin/perl
pkg-config:/usr/bin/pkg-config
python3:/usr/bin/python3
groff-base:/usr/bin/groff
man-db:/usr/bin/man
prometheus:/usr/bin/promtool
"
# bench/run.pl (make bench, bench-smoke, bench-allowfile): ab for the
# load, callgrind for instruction counts, gnuplot for the plot, GNU time
# for startup RSS.
bench="
apache2-utils:/usr/bin/ab
valgrind:/usr/bin/valgrind
gnuplot-nox:/usr/bin/gnuplot
time:/usr/bin/time
"
# make deb: dpkg-buildpackage with debhelper and dh_apache2 (apache2-dev,
# above); apache2-ssl-dev for mod_ssl_openssl.h, which makes dh_apache2
# tie the package to mod_ssl's OpenSSL ABI (the module shares mod_ssl's
# SSL objects); lintian. make deb-check: debootstrap and the archive's
# keyring for the throwaway root.
deb="
dpkg-dev:/usr/bin/dpkg-buildpackage
debhelper:/usr/bin/dh
apache2-ssl-dev:/usr/include/apache2/mod_ssl_openssl.h
lintian:/usr/bin/lintian
debootstrap:/usr/sbin/debootstrap
debian-archive-keyring:/usr/share/keyrings/debian-archive-keyring.gpg
"

for group in "$@"; do
    case $group in
    bench) need="$need $bench" ;;
    deb) need="$need $deb" ;;
    docs)
        # make screenshot renders the status page with headless Chromium,
        # which installed without its recommends may have no font.
        need="$need chromium:/usr/bin/chromium"
        need="$need fonts-dejavu-core:/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
        ;;
    fuzz)
        # The file is under a versioned directory; see present().
        need="$need clang:/usr/bin/clang libclang-rt-14-dev:@fuzzer"
        ;;
    sanitize)
        need="$need libasan8:@libasan.so.8 libubsan1:@libubsan.so.1"
        ;;
    valgrind)
        need="$need valgrind:/usr/bin/valgrind"
        ;;
    *)
        echo "scripts/deps.sh: unknown group '$group' (known: bench, deb, docs, fuzz, sanitize, valgrind)" >&2
        exit 2
        ;;
    esac
done

# Is the file of a package:file pair there? "@name" stands for a file
# whose directory depends on the machine or the version.
present() {
    case $1 in
    @fuzzer)
        for f in /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a; do
            [ -e "$f" ] && return 0
        done
        return 1
        ;;
    @*)
        [ -e "/usr/lib/$(gcc -dumpmachine 2>/dev/null)/${1#@}" ]
        ;;
    *)
        [ -e "$1" ]
        ;;
    esac
}

missing=""
for entry in $need; do
    pkg=${entry%%:*}
    file=${entry#*:}
    if [ "$pkg" = libapache2-mod-perl2 ]; then
        # Apache::Test's module lives under the arch-specific perl path.
        perl -MApache::Test -e 1 >/dev/null 2>&1 && continue
    elif present "$file"; then
        continue
    fi
    missing="$missing $pkg"
done

[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "mod_mtls_authz needs these packages (Debian names):$missing" >&2
    echo "Install the equivalents for your system (httpd with apxs and" >&2
    echo "mod_ssl, OpenSSL headers, Perl Apache::Test, LWP, IO::Socket::SSL," >&2
    echo "curl, openssl, a C compiler, Python 3 at /usr/bin/python3, groff" >&2
    echo "and man) and" >&2
    echo "run again." >&2
    exit 1
fi

if [ "$(id -u)" = 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "Missing packages:$missing" >&2
    echo "Run as root, or: apt-get install$missing" >&2
    exit 1
fi

# libssl3 comes from the same update as apache2, or mod_ssl may refuse
# to load against an older library.
echo "Installing missing packages with apt-get:$missing libssl3"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
    --no-install-recommends $missing libssl3

# The prometheus package was installed for promtool alone; on a systemd
# host its postinst has just started a Prometheus server listening on
# every address at port 9090, which nothing here wants. Stop and disable
# it, but only when this run installed the package. (In containers whose
# policy-rc.d forbids starting services, it never started.)
case " $missing " in
*" prometheus "*)
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 &&
        systemctl is-enabled --quiet prometheus.service 2>/dev/null; then
        echo "Stopping and disabling prometheus.service (installed only for promtool)"
        $sudo systemctl disable --now prometheus.service
    fi
    ;;
esac
