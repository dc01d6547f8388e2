#!/usr/bin/python3
"""A WSGI backend for the tests of identity headers behind mod_proxy.

Usage: wsgi_backend.py DIR SECONDS [PORT]

Serves on 127.0.0.1:PORT, or on a port the system picks, and writes the
port to DIR/backend.port once it listens. Every request is answered with 200 and
the WSGI environ's HTTP_X_CLIENT_* variables, one NAME=value line each,
sorted, followed by the header lines that produced them as received
("header: Name: value"). DIR/backend.count holds the number of requests
answered so far. The server exits after SECONDS whatever happens, so a
test that dies cannot leave it running.

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
import os
import signal
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

PREFIX = 'HTTP_X_CLIENT_'


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
                 for k in sorted(environ) if k.startswith(PREFIX)]
        # The raw headers, for the test's diagnostics: which names arrived.
        raw = environ.get('wsgi_backend.headers', [])
        lines += ['header: %s: %s\n' % (k, v) for k, v in raw
                  if k.replace('-', '_').upper().startswith(PREFIX[5:])]
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
