#!/bin/sh
# `make demo`: a throwaway PKI in build/demo, then httpd in the
# foreground on https://localhost:8443 with conf/demo.conf.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
APXS=${APXS:-$(command -v apxs2 2>/dev/null || command -v apxs)}
httpd="$($APXS -q SBINDIR)/$($APXS -q progname)"
demo="$top/build/demo"
pki="$demo/pki"

rm -rf "$demo"
mkdir -p "$pki" "$demo/htdocs"
echo "Hello from a location only allowed-client may reach." >"$demo/htdocs/index.html"

ossl() { openssl "$@" 2>/dev/null; }
newkey() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/$1.key"; }
# sign NAME SUBJECT EXTENSIONS
sign() {
    newkey "$1"
    ossl req -new -key "$pki/$1.key" -subj "$2" -out "$pki/$1.csr"
    printf '%s\n' "$3" >"$pki/$1.ext"
    ossl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
        -CAcreateserial -days 30 -sha256 -extfile "$pki/$1.ext" -out "$pki/$1.crt"
    cat "$pki/$1.crt" "$pki/$1.key" >"$pki/$1.pem"
}
newkey ca
ossl req -x509 -new -key "$pki/ca.key" -subj "/O=mod_mtls_authz demo/CN=Demo CA" \
    -days 30 -sha256 -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$pki/ca.crt"
sign server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
sign allowed "/O=mod_mtls_authz demo/CN=allowed-client" "extendedKeyUsage=clientAuth"
sign denied "/O=mod_mtls_authz demo/CN=denied-client" "extendedKeyUsage=clientAuth"
chmod 644 "$pki"/*

set -- -C "Define MTLS_DEMO $demo" -C "Define MTLS_TOP $top" \
    -C "Define MODDIR $($APXS -q LIBEXECDIR)"
if [ "$(id -u)" = 0 ]; then
    set -- "$@" -C "Define MTLS_USER nobody" -C "Define MTLS_GROUP nogroup"
    chmod -R a+rX "$demo"
fi
"$httpd" -t -f "$top/conf/demo.conf" "$@"

cat <<MSG

mod_mtls_authz demo on https://localhost:8443 (Ctrl-C stops it).
From another terminal:

  # allowed-client: 200
  curl --cacert $pki/ca.crt --cert $pki/allowed.pem https://localhost:8443/

  # denied-client: 403, and the error log below says why
  curl --cacert $pki/ca.crt --cert $pki/denied.pem https://localhost:8443/

MSG
exec "$httpd" -DFOREGROUND -f "$top/conf/demo.conf" "$@"
