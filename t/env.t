# Identity variables of admitted requests (MTLS_AUTHZ_RULE, MTLS_CLIENT_*)
# as a CGI backend (the environment: MTLSExportEnv On for all of /env/),
# a proxied backend (through RequestHeader "%{MTLS_...}s", read on demand,
# no export) and mod_log_config (%{...}e under /env/) see them; spoofed
# headers never reach the backend, also when spelt with '_' for a WSGI
# backend (t/wsgi_backend.py). Which other consumers read the variables,
# and MTLSExportEnv Off: t/env_demand.t.
# Server configuration: its /env/ and /proxy/ locations in t/conf/extra.conf.in.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use File::Path qw(make_path);
use File::Spec ();
use lib 't/lib';
use MTLS qw(req curl_out fp);
use HttpdRun qw(slurp kill_group start_wsgi_backend wsgi_answer);

plan tests => 54;

my $JOE   = "Authorization: Basic am9lOnNlY3JldA==\r\n";    # joe:secret
my $SPOOF = "X-Client-Subject: CN=evil\r\nX-Client-Rule: spoofed\r\n"
  . "X-Client-SPIFFE: spiffe://evil\r\n";

# GET through echo.cgi: (status, { NAME => value }, body).
sub echo {
    my ($path, %o) = @_;
    my ($st, $body) = req($path, %o);
    my %env = map { /^([A-Z0-9_]+)=(.*)$/ ? ($1 => $2) : () } split /\r?\n/, $body // '';
    return ($st, \%env, $body // '');
}

sub mtls_vars { join ' ', sort grep { /^MTLS_/ } keys %{ $_[0] } }

# --- MTLSAuthz On, a rule with subject and issuer
my ($st, $env, $body) = echo('/env/rule', cert => 'alice-a');
is($st, 200, 'alice admitted at /env/rule');
like($env->{MTLS_AUTHZ_RULE} // '', qr{/extra\.conf:\d+$}, 'MTLS_AUTHZ_RULE is file:line');
is($env->{MTLS_CLIENT_SUBJECT}, 'CN=alice,O=Acme Inc.,C=US', 'MTLS_CLIENT_SUBJECT, RFC 4514');
is($env->{MTLS_CLIENT_CERT_SHA256}, fp('FP_CERT_ALICE_A'), 'MTLS_CLIENT_CERT_SHA256');
is($env->{MTLS_CLIENT_ISSUER_SHA256}, fp('FP_CA_A'), 'MTLS_CLIENT_ISSUER_SHA256');
is($env->{MTLS_CLIENT_SAN_DNS_0}, 'alice.example.com', 'MTLS_CLIENT_SAN_DNS_0');
is($env->{MTLS_CLIENT_SAN_EMAIL_0}, 'Alice@Example.COM', 'MTLS_CLIENT_SAN_EMAIL_0, as in the certificate');
is($env->{MTLS_CLIENT_SAN_URI_0}, 'spiffe://example.org/ns/prod/sa/alice', 'MTLS_CLIENT_SAN_URI_0');
is($env->{MTLS_CLIENT_SAN_IP_0}, '192.0.2.7', 'MTLS_CLIENT_SAN_IP_0');
is($env->{MTLS_CLIENT_SAN_IP_1}, '2001:db8::7', 'MTLS_CLIENT_SAN_IP_1');
ok(!exists $env->{MTLS_CLIENT_SAN_DNS_1}, 'no more DNS SANs than the certificate has');

($st, $env) = echo('/env/rule', cert => 'alice-b');
is($st, 403, 'alice via CA B denied at /env/rule: the backend is not reached');

# --- the same variables set before, from a client's header: replaced
($st, $env, $body) = echo('/env/preset', cert => 'alice-a', headers => "X-Preset: CN=evil\r\n");
is($st, 200, 'alice admitted at /env/preset');
is($env->{MTLS_CLIENT_SUBJECT}, 'CN=alice,O=Acme Inc.,C=US',
   'a MTLS_CLIENT_SUBJECT set before from a header is replaced by the real one');
like($env->{MTLS_AUTHZ_RULE} // '', qr{/extra\.conf:\d+$}, '... and MTLS_AUTHZ_RULE too');
is(() = $body =~ /^MTLS_CLIENT_SUBJECT=/mg, 1, '... and appears once');

# --- Require mtls, a URI prefix rule; the intermediate is the issuer
($st, $env) = echo('/env/require', cert => 'carol-int');
is($st, 200, 'carol admitted by Require mtls');
is($env->{MTLS_CLIENT_SUBJECT}, 'CN=carol,O=Acme Inc.,C=US', 'Require mtls: MTLS_CLIENT_SUBJECT');
is($env->{MTLS_CLIENT_ISSUER_SHA256}, fp('FP_INT_A'), 'Require mtls: the issuer is the intermediate');
is($env->{MTLS_CLIENT_SAN_URI_0}, 'spiffe://example.org/ns/prod', 'Require mtls: URI SAN');

# --- a rule from a file names the file and its line
($st, $env) = echo('/env/file', cert => 'alice-a');
my $rules = File::Spec->catfile(Apache::Test::vars('t_dir'), 'conf', 'allow', 'basic.txt');
is($env->{MTLS_AUTHZ_RULE}, "$rules:4", 'MTLS_AUTHZ_RULE from MTLSAllowFile is the rule file and line');

# --- no variables where the module did not admit the client
($st, $env, $body) = echo('/env/open', cert => 'alice-a');
ok($st == 200 && mtls_vars($env) eq '', "not enforced: no MTLS_* variables ($st)") or diag($body);
($st, $env, $body) = echo('/env/any-user', cert => 'bob-a', headers => $JOE);
ok($st == 200 && mtls_vars($env) eq '', "admitted by valid-user, not by Require mtls: none ($st)")
  or diag($body);
($st, $env) = echo('/env/any-user', cert => 'alice-a');
is($env->{MTLS_CLIENT_SUBJECT}, 'CN=alice,O=Acme Inc.,C=US', 'admitted by Require mtls in RequireAny: set');

# --- SANs with a NUL byte are left out, never truncated
($st, $env, $body) = echo('/env/nul', cert => 'nul-dns');
ok($st == 200 && $env->{MTLS_CLIENT_SUBJECT} eq 'CN=nul-dns', "nul-dns admitted by subject ($st)")
  or diag($body);
ok(!grep({ /^MTLS_CLIENT_SAN_DNS/ } keys %$env), 'a DNS SAN with a NUL byte is not exported');
($st, $env) = echo('/env/nul', cert => 'nul-uri');
ok(!grep({ /^MTLS_CLIENT_SAN_URI/ } keys %$env), 'a URI SAN with a NUL byte is not exported');

# --- an internal redirect into the same configuration keeps them
($st, $env, $body) = echo('/env/rw/redirect', cert => 'alice-a');
is($st, 200, 'CGI local redirect to /env/rw/target');
like($env->{MTLS_AUTHZ_RULE} // '', qr{/extra\.conf:\d+$}, 'the redirected request has MTLS_AUTHZ_RULE')
  or diag($body);
is($env->{MTLS_CLIENT_SUBJECT}, 'CN=alice,O=Acme Inc.,C=US', '... and MTLS_CLIENT_SUBJECT');

# --- a proxied backend, through RequestHeader; spoofed headers stripped
($st, $env, $body) = echo('/proxy/enforced', cert => 'alice-a', headers => $SPOOF);
is($st, 200, 'proxy: alice admitted');
is($env->{HTTP_X_CLIENT_SUBJECT}, 'CN=alice,O=Acme Inc.,C=US', 'proxy: X-Client-Subject from %{MTLS_CLIENT_SUBJECT}s')
  or diag($body);
like($env->{HTTP_X_CLIENT_RULE} // '', qr{/extra\.conf:\d+$}, 'proxy: X-Client-Rule');
is($env->{HTTP_X_CLIENT_SPIFFE}, 'spiffe://example.org/ns/prod/sa/alice', 'proxy: X-Client-SPIFFE');
unlike($body, qr/evil|spoofed/, 'proxy: nothing the client sent under those names arrives');

($st) = echo('/proxy/enforced', cert => 'bob-a', headers => $SPOOF);
is($st, 403, 'proxy: bob denied before the backend');

($st, $env, $body) = echo('/proxy/open', cert => 'bob-a', headers => $SPOOF);
ok($st == 200 && $body !~ /HTTP_X_CLIENT_/, "proxy, not enforced: the spoofed headers are stripped ($st)")
  or diag($body);
($st, $env, $body) = echo('/proxy/audit', cert => 'bob-a', headers => $SPOOF);
ok($st == 200 && $body !~ /HTTP_X_CLIENT_/, "proxy, Audit, not matched: admitted without identity headers ($st)")
  or diag($body);
($st, $env) = echo('/proxy/audit', cert => 'alice-a', headers => $SPOOF);
is($env->{HTTP_X_CLIENT_SUBJECT}, 'CN=alice,O=Acme Inc.,C=US', 'proxy, Audit, matched: identity forwarded');

# --- a proxied WSGI backend: it reads '-' and '_' in header names as the
# same (X-Client_Subject is its HTTP_X_CLIENT_SUBJECT too), which
# echo.cgi cannot show: httpd's CGI environment drops names with '_'.
# t/conf/extra.conf.in proxies /proxy/wsgi/ to the port it defines.
{
    my $t_dir = Apache::Test::vars('t_dir');
    my ($port) = slurp(File::Spec->catfile($t_dir, 'conf', 'extra.conf'))
      =~ /^\s*Define MTLS_WSGI_PORT (\d+)$/m;
    my $dir = File::Spec->catfile($t_dir, 'logs', 'wsgi-env');
    make_path($dir);
    my ($pid, $why) = $port ? start_wsgi_backend($t_dir, $dir, 120, $port)
                            : (undef, 'no Define MTLS_WSGI_PORT in t/conf/extra.conf');
    ok($pid, 'the WSGI backend starts on the port t/conf/extra.conf proxies to')
      or diag($why);
    my $count = sub { slurp("$dir/backend.count") =~ /^(\d+)$/m ? $1 : 'none' };
    my $under = join '', map { "$_\r\n" } 'X-Client_Subject: CN=evil',
      'x_client_subject: CN=evil', 'X_Client-Rule: spoofed', 'X-CLIENT_SPIFFE: spiffe://evil',
      'X_Client_Spiffe:';

    my $before = $count->();
    ($st, $body) = req('/proxy/wsgi/enforced', cert => 'alice-a', headers => $under);
    my ($vars, $raw) = wsgi_answer($body);
    is($st, 200, 'proxy to WSGI: alice, with X-Client_* headers of her own, admitted');
    is($count->(), $before =~ /^\d+$/ ? $before + 1 : 'a count', 'proxy to WSGI: the backend got her request');
    is(join(' ', sort keys %$vars), 'HTTP_X_CLIENT_RULE HTTP_X_CLIENT_SPIFFE HTTP_X_CLIENT_SUBJECT',
       'proxy to WSGI: it sees three X-Client variables') or diag($body);
    is($vars->{HTTP_X_CLIENT_SUBJECT}, 'CN=alice,O=Acme Inc.,C=US',
       'proxy to WSGI: HTTP_X_CLIENT_SUBJECT is the proxy\'s, not joined to hers') or diag($body);
    like($vars->{HTTP_X_CLIENT_RULE} // '', qr{^/[^,]*/extra\.conf:\d+$}, "proxy to WSGI: HTTP_X_CLIENT_RULE, the proxy's only");
    is($vars->{HTTP_X_CLIENT_SPIFFE}, 'spiffe://example.org/ns/prod/sa/alice',
       'proxy to WSGI: HTTP_X_CLIENT_SPIFFE (her empty X_Client_Spiffe is gone too)');
    is(scalar(@$raw), 3, 'proxy to WSGI: three X-Client header lines reached it') or diag($body);

    $before = $count->();
    ($st) = req('/proxy/wsgi/enforced', cert => 'bob-a', headers => $under);
    is($st, 403, 'proxy to WSGI: bob denied');
    is($count->(), $before, 'proxy to WSGI: ... and the backend got no request');

    ($st, $body) = req('/proxy/wsgi/open', cert => 'bob-a', headers => $under);
    ($vars) = wsgi_answer($body);
    is($st, 200, 'proxy to WSGI, not enforced: bob gets the backend\'s answer');
    is(join(' ', sort keys %$vars), '', 'proxy to WSGI, not enforced: no X-Client variable at all')
      or diag($body);
    kill_group($pid) if $pid;
}

# --- mod_log_config
{
    my $file = File::Spec->catfile(Apache::Test::vars('t_dir'), 'logs', 'mtls_env_log');
    req('/env/rule?log', cert => 'alice-a');
    my $text = '';
    for (1 .. 100) {    # written after the response
        open my $fh, '<', $file or last;
        local $/;
        $text = <$fh> // '';
        last if $text =~ m{^/env/rule \S+ CN=alice}m;
        select(undef, undef, undef, 0.1);
    }
    like($text, qr{^/env/rule \S+/extra\.conf:\d+ CN=alice,O=Acme Inc\.,C=US$}m,
         'CustomLog %{MTLS_AUTHZ_RULE}e %{MTLS_CLIENT_SUBJECT}e, under MTLSExportEnv On');
}

# --- HTTP/2: the request runs on a secondary connection (curl, ALPN h2)
{
    my $out = curl_out('mtls', 'alice-a', ['/env/require'], '--http2',
                       '-w', 'HTTP_VERSION=%{http_version}\n');
    like($out, qr/^HTTP_VERSION=2$/m, 'HTTP/2 used');
    like($out, qr{^MTLS_CLIENT_SAN_URI_0=spiffe://example\.org/ns/prod/sa/alice$}m,
         'HTTP/2 stream: Require mtls admits and sets the variables') or diag($out);
}
