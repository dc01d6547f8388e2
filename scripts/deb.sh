#!/bin/sh
# make deb: builds libapache2-mod-mtls-authz_VERSION_ARCH.deb from debian/
# with dpkg-buildpackage (debhelper, dh_apache2), checks what it holds and
# runs lintian on it, then copies it to the top of the tree.
#
# The build runs in a copy of the tree, build/deb/src, so that neither
# debhelper's files nor dpkg-buildpackage's output (written to the parent
# of the source directory: build/deb/) land in the tree, and its
# `make clean` does not wipe this tree's build/. The copy takes the work
# tree as it is, committed or not, without build output.
#
# Usage: sh scripts/deb.sh   (make deb runs scripts/deps.sh deb first)
set -eu
cd "$(dirname "$0")/.."

say() { printf 'deb: %s\n' "$*"; }
fail() { printf 'deb: FAILED: %s\n' "$*" >&2; exit 1; }

out=build/deb
pkg=libapache2-mod-mtls-authz

# ---- one version --------------------------------------------------------------
# mtls_version.h is the one place the version is written; the newest
# entry of debian/changelog must be for it (its upstream part: without
# an epoch or a Debian revision).
version=$(sed -n 's/^#define MTLS_AUTHZ_VERSION "\(.*\)"$/\1/p' mtls_version.h)
[ -n "$version" ] || fail "no MTLS_AUTHZ_VERSION in mtls_version.h"
deb_version=$(dpkg-parsechangelog -S Version)
upstream=${deb_version#*:}
upstream=${upstream%-*}
[ "$upstream" = "$version" ] ||
    fail "debian/changelog's newest entry is $deb_version, but mtls_version.h says $version: add an entry (dch -v $version)"
arch=$(dpkg --print-architecture)
file=${pkg}_${deb_version#*:}_${arch}.deb
say "version $version (mtls_version.h; debian/changelog: $deb_version), architecture $arch"

# ---- build in a copy ----------------------------------------------------------
rm -rf "$out"
mkdir -p "$out/src"
say "copying the tree to $out/src"
tar -cf - --exclude=./build --exclude=./.git --exclude=./.libs \
    --exclude=./t/logs --exclude=./t/pki/out --exclude='./*.deb' \
    --exclude='*.o' --exclude='*.lo' --exclude='*.slo' --exclude='*.la' . |
    tar -C "$out/src" -xf -

log=$out/build.log
# The source package too (a native one: the tree as copied), so that
# lintian checks debian/ itself as well as the binary package.
say "dpkg-buildpackage -us -uc (log: $log)"
if ! (cd "$out/src" && timeout 1200 dpkg-buildpackage -us -uc) >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    fail "dpkg-buildpackage (the whole log is $log)"
fi
grep -E '^(dpkg-deb: building|dpkg-source: info: building|dpkg-genchanges|[0-9]+ passed)' "$log" | sed 's/^/deb:   /' || true
[ -f "$out/$file" ] || fail "dpkg-buildpackage made no $out/$file"

# ---- what it holds ------------------------------------------------------------
dpkg-deb -I "$out/$file" >"$out/info.txt"
dpkg-deb -c "$out/$file" >"$out/contents.txt"
say "control fields:"
grep -E '^ (Package|Version|Architecture|Depends|Section):' "$out/info.txt" | sed 's/^/deb:  /'
missing=""
for f in ./usr/lib/apache2/modules/mod_mtls_authz.so \
    ./etc/apache2/mods-available/mtls_authz.load \
    ./etc/apache2/mods-available/mtls_authz.conf \
    ./usr/bin/mtls-authz-rule \
    ./usr/share/man/man1/mtls-authz-rule.1.gz \
    ./usr/share/man/man8/mod_mtls_authz.8.gz \
    ./usr/share/doc/$pkg/README.md.gz \
    ./usr/share/doc/$pkg/changelog.Debian.gz \
    ./usr/share/doc/$pkg/docs/reference.md.gz \
    ./usr/share/doc/$pkg/copyright \
    ./usr/share/doc/$pkg/changelog.gz; do
    awk '{print $6}' "$out/contents.txt" | grep -qxF "$f" || missing="$missing $f"
done
[ -z "$missing" ] || fail "not in the package:$missing (see $out/contents.txt)"
say "holds the module, mtls_authz.load and .conf, mtls-authz-rule, both man pages and the docs"
grep -q '^# Depends: ssl$' conf/mtls_authz.load ||
    fail "conf/mtls_authz.load has no '# Depends: ssl' line for a2enmod"
grep -q '^ Depends:.*apache2-api-' "$out/info.txt" ||
    fail "no apache2-api dependency: dh_apache2 did not run"

# ---- lintian --------------------------------------------------------------------
# Errors and warnings fail the build. There are no overrides; one would go
# in debian/libapache2-mod-mtls-authz.lintian-overrides with a comment
# giving its reason, and in debian/README.source.
say "lintian $out/*.changes"
changes=$(ls "$out"/*.changes)
# Not as root, which lintian advises against: as nobody, who can read
# build/deb.
as=""
if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null 2>&1; then
    as="runuser -u nobody --"
fi
status=0
timeout 600 $as lintian --fail-on error,warning --display-info --show-overrides \
    "$changes" >"$out/lintian.txt" 2>&1 || status=$?
sed 's/^/deb:   /' "$out/lintian.txt"
[ "$status" = 0 ] || fail "lintian found errors or warnings (exit $status, above)"
say "lintian: no errors, no warnings (any I: tag above is explained in debian/README.source)"

cp "$out/$file" "./$file"
say "built ./$file"
