#!/bin/sh
# Test backend: echoes the mod_mtls_authz variables and the X-Client-*
# request headers that reached it, one NAME=value per line, sorted.
# /env/rw/redirect answers with a local redirect to /env/rw/target.
# (REQUEST_URI stays the client's URI after the redirect.)
case "${REDIRECT_STATUS:-}$REQUEST_URI" in
/env/rw/redirect)
    printf 'Location: /env/rw/target\r\n\r\n'
    exit 0
    ;;
esac
printf 'Content-Type: text/plain\r\n\r\n'
env | grep -E '^(REDIRECT_)?(MTLS_|HTTP_X_CLIENT_)' | LC_ALL=C sort
