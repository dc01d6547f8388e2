#!/usr/bin/python3
"""A WSGI backend for the tests of identity headers behind mod_proxy.

Usage: wsgi_backend.py DIR SECONDS [PORT]

Serves on 127.0.0.1:PORT, or on a port the system picks, and writes the
port to DIR/backend.port once it listens. Every request is answered with 200 and
the WSGI environ's HTTP_X_CLIENT_*, HTTP_CLIENT_CERT* and
HTTP_X_FORWARDED_CLIENT_CERT variables, one NAME=value line each,
sorted, followed by the header lines that produced them as received
("header: Name: value"). DIR/backend.count holds the number of requests
answered so far. The server exits after SECONDS whatever happens, so a
test that dies cannot leave it running.

It also reads those certificate headers as a backend would:
- HTTP_CLIENT_CERT and HTTP_CLIENT_CERT_CHAIN as RFC 9440 fields, a List
  of RFC 8941 Byte Sequences (":base64:"), parsed strictly; each item is
  decoded and parsed as an X.509 certificate (Python's own decoder), and
  reported as "cert: NAME N sha256=HEX subject=RFC4514" (N from 0), or
  the whole field as "cert: NAME invalid: WHY";
- HTTP_X_FORWARDED_CLIENT_CERT as Envoy's XFCC (elements separated by
  ',', key=value pairs by ';', a value in double quotes may hold those
  and '\"' or '\\'), reported as "xfcc: N Key=value" (N the element,
  the value unquoted), or "xfcc: invalid: WHY".

This is the view a WSGI application gets, and the reason it exists:
wsgiref (Python 3.11, wsgiref/simple_server.py, get_environ) names each
header HTTP_ + the name upper-cased with every '-' replaced by '_', so
X-Client-Subject, X-Client_Subject, x_client_subject and X_CLIENT-SUBJECT
all become HTTP_X_CLIENT_SUBJECT. When several headers map to the same
variable, their values (stripped of surrounding blanks) are joined with
',' in the order they arrived, so the application sees one merged string
in which it cannot tell the proxy's value from the client's. PHP and
CGI-style servers map names the same way; httpd's own CGI environment
drops headers with '_' instead, which is why a CGI backend cannot show
this.
"""
import base64
import hashlib
import os
import re
import signal
import ssl
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

PREFIXES = ('HTTP_X_CLIENT_', 'HTTP_CLIENT_CERT', 'HTTP_X_FORWARDED_CLIENT_CERT')
CERT_FIELDS = ('HTTP_CLIENT_CERT', 'HTTP_CLIENT_CERT_CHAIN')
SF_ITEM = re.compile(r':([A-Za-z0-9+/]*={0,2}):')


def sf_binary_list(value):
    """RFC 8941 section 4.2.1 for a List of Byte Sequences without
    parameters: the decoded items, or ValueError."""
    s, items = value.strip(' '), []
    while s:
        m = SF_ITEM.match(s)
        if not m:
            raise ValueError('not a byte sequence at %r' % s[:20])
        items.append(base64.b64decode(m.group(1), validate=True))
        s = s[m.end():].lstrip(' \t')
        if s:
            if not s.startswith(','):
                raise ValueError('no comma after an item at %r' % s[:20])
            s = s[1:].lstrip(' \t')
            if not s:
                raise ValueError('a trailing comma')
    if not items:
        raise ValueError('empty')
    return items


def rfc4514(subject):
    """Python's decoded subject, RFC 4514 order (last RDN first), for
    the test to compare; values as decoded, without escaping."""
    short = {'commonName': 'CN', 'organizationName': 'O', 'countryName': 'C',
             'organizationalUnitName': 'OU', 'userId': 'UID'}
    return ','.join('+'.join('%s=%s' % (short.get(k, k), v) for k, v in rdn)
                    for rdn in reversed(subject))


def cert_lines(name, value, scratch):
    try:
        items = sf_binary_list(value)
    except ValueError as e:
        return ['cert: %s invalid: %s\n' % (name, e)]
    lines = []
    for i, der in enumerate(items):
        with open(scratch, 'w') as f:
            f.write(ssl.DER_cert_to_PEM_cert(der))
        try:
            dec = ssl._ssl._test_decode_cert(scratch)
        except Exception as e:  # noqa: BLE001 - any failure is the answer
            return ['cert: %s invalid: item %d: %s\n' % (name, i, e)]
        finally:
            os.unlink(scratch)
        lines.append('cert: %s %d sha256=%s subject=%s\n'
                     % (name, i, hashlib.sha256(der).hexdigest(),
                        rfc4514(dec.get('subject', ()))))
    return lines


def xfcc_elements(value):
    """Envoy's XFCC: [[(key, value), ...], ...], or ValueError."""
    elems, pairs, key, buf, i, n = [], [], None, '', 0, len(value)
    while i <= n:
        c = value[i] if i < n else ','
        if c == '"' and key is not None and buf == '':
            i += 1
            while i < n and value[i] != '"':
                if value[i] == '\\':
                    i += 1
                    if i >= n:
                        raise ValueError('a backslash at the end')
                buf += value[i]
                i += 1
            if i >= n:
                raise ValueError('an unterminated quote')
            i += 1
            if i < n and value[i] not in ',;':
                raise ValueError('text after a quoted value')
            continue
        if c == '=' and key is None:
            key, buf = buf, ''
        elif c in ',;':
            if key is None:
                raise ValueError('a pair without "=": %r' % buf)
            pairs.append((key, buf))
            key, buf = None, ''
            if c == ',':
                elems.append(pairs)
                pairs = []
        elif c in '"\\':
            raise ValueError('%r outside quotes' % c)
        else:
            buf += c
        i += 1
    return elems


def xfcc_lines(value):
    try:
        elems = xfcc_elements(value)
    except ValueError as e:
        return ['xfcc: invalid: %s\n' % e]
    return ['xfcc: %d %s=%s\n' % (i, k, v)
            for i, pairs in enumerate(elems) for k, v in pairs]


def main():
    out_dir, seconds = sys.argv[1], int(sys.argv[2])
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    # SIGALRM's default action ends the process: the hard time limit.
    signal.alarm(seconds)
    count = 0

    def write(name, text):
        tmp = os.path.join(out_dir, name + '.tmp')
        with open(tmp, 'w') as f:
            f.write(text)
        os.rename(tmp, os.path.join(out_dir, name))

    def app(environ, start_response):
        nonlocal count
        count += 1
        write('backend.count', '%d\n' % count)
        lines = ['%s=%s\n' % (k, environ[k])
                 for k in sorted(environ) if k.startswith(PREFIXES)]
        for k in CERT_FIELDS:
            if k in environ:
                lines += cert_lines(k, environ[k],
                                    os.path.join(out_dir, 'cert%d.pem' % count))
        if 'HTTP_X_FORWARDED_CLIENT_CERT' in environ:
            lines += xfcc_lines(environ['HTTP_X_FORWARDED_CLIENT_CERT'])
        # The raw headers, for the test's diagnostics: which names arrived.
        raw = environ.get('wsgi_backend.headers', [])
        lines += ['header: %s: %s\n' % (k, v) for k, v in raw
                  if ('HTTP_' + k.replace('-', '_').upper()).startswith(PREFIXES)]
        body = ''.join(lines).encode('iso-8859-1')
        start_response('200 OK', [('Content-Type', 'text/plain'),
                                  ('Content-Length', str(len(body)))])
        return [body]

    class Handler(WSGIRequestHandler):
        def get_environ(self):
            env = super().get_environ()
            env['wsgi_backend.headers'] = list(self.headers.items())
            return env

        def log_message(self, *args):
            pass    # the count file is the record; keep stderr quiet

    with make_server('127.0.0.1', port, app, handler_class=Handler) as httpd:
        write('backend.count', '0\n')
        write('backend.port', '%d\n' % httpd.server_port)
        httpd.serve_forever()


if __name__ == '__main__':
    main()
