# Fail-closed cases: no certificate, unverified certificates, plain HTTP,
# and the TLS mechanics: versions, resumption, per-location verification,
# keep-alive reuse, HTTP/2. Each case asserts the status code.
# Server configuration: t/conf/verify-hosts.inc.in and the shared t/conf/extra.conf.in.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use lib 't/lib';
use MTLS qw(req status h2_status);

plan tests => 29;

# --- no or unverified certificates
is(status('/t/subject', vhost => 'mtls_optional', cert => undef), 403,
   'optional_no_ca: no certificate: 403');
is(status('/t/subject', vhost => 'mtls_optional', cert => 'self-signed'), 403,
   'optional_no_ca: self-signed certificate (GENEROUS): 403');
is(status('/t/subject', vhost => 'mtls_optional', cert => 'untrusted'), 403,
   'optional_no_ca: certificate from an untrusted CA: 403');
is(status('/t/subject', vhost => 'mtls_optional', cert => 'alice-a'), 200,
   'optional_no_ca: verified certificate: 200');
is(status('/t/subject', vhost => 'mtls', cert => undef), 0,
   'require: no certificate: the handshake fails, no response');
is(status('/t/subject', vhost => 'mtls', cert => 'expired'), 0,
   'require: expired certificate: the handshake fails');

# --- plain HTTP
Apache::TestRequest::module('plain');
is(Apache::TestRequest::GET_RC('/t/subject'), 403, 'plain HTTP: 403');
Apache::TestRequest::module('default');

# --- plain HTTP to the TLS port: mod_ssl has freed the SSL and answers
# 400; the ErrorDocument for it is in an enforced location.
{
    use IO::Socket::INET ();
    my ($port) = MTLS::hostport('mtls') =~ /:(\d+)$/;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 10);
    print $s "GET /t/subject HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    local $/;
    my $resp = <$s> // '';
    my ($st) = $resp =~ m{^HTTP/1\.\d (\d+)};
    is($st // 0, 400, 'plain HTTP to the TLS port: 400');
    unlike($resp, qr/\r\n\r\nok\n$/, 'and the ErrorDocument in the enforced location is not served');
}

# --- intermediate sent by the client, trust store holds only the roots
is(status('/t/subject-carol', vhost => 'mtls_roots', cert => 'carol-int-chain'),
   200, 'roots-only store: leaf + intermediate verified, subject matches');
is(status('/t/issuer-a', vhost => 'mtls_roots', cert => 'carol-int-chain'),
   403, 'roots-only store: the root is not the immediate issuer');

# --- TLS versions
for my $v ('1.2', '1.3') {
    is(status('/t/issuer-a', cert => 'alice-a', tls => $v), 200,
       "TLS $v: allowed");
    is(status('/t/issuer-a', cert => 'alice-b', tls => $v), 403,
       "TLS $v: denied");
}

# --- resumed sessions give the same decision as full handshakes: the
# issuer comes from the trust store, not from the (absent) verified chain.
for my $v ('1.2', '1.3') {
    for my $c (['alice-a', 200], ['alice-b', 403]) {
        my ($cert, $want) = @$c;
        my $ctx = MTLS::session_ctx(cert => $cert, tls => $v);
        my @first = req('/t/issuer-a', ctx => $ctx);
        my @second = req('/t/issuer-a', ctx => $ctx);
        ok($first[0] == $want && $second[0] == $want && $second[3] == 1,
           "TLS $v $cert: full handshake $first[0], resumed "
           . "(reused=$second[3]) $second[0], want $want");
    }
}

# --- per-location SSLVerifyClient: renegotiation (1.2) or post-handshake
# authentication (1.3) happens in mod_ssl's access hook, before ours.
for my $v ('1.2', '1.3') {
    is(status('/t/need', vhost => 'mtls_perloc', cert => 'alice-a', tls => $v),
       200, "per-location require, TLS $v: allowed");
    is(status('/t/need', vhost => 'mtls_perloc', cert => 'bob-a', tls => $v),
       403, "per-location require, TLS $v: denied");
}

# --- ErrorDocument: the internal redirect to a protected page is checked
{
    my ($st, $body) = req('/missing', cert => 'bob-a');
    ok($st == 404 && $body !~ /SECRET/,
       "ErrorDocument in a protected location is not served to bob ($st)");
    ($st, $body) = req('/missing', cert => 'alice-a');
    ok($st == 404 && $body =~ /SECRET/,
       "ErrorDocument in a protected location is served to alice ($st)");
}

# --- Satisfy Any: Basic auth must not bypass the denial
{
    my $auth = "Authorization: Basic am9lOnNlY3JldA==\r\n";    # joe:secret
    is(status('/t/satisfy', cert => 'bob-a', headers => $auth), 403,
       'Satisfy Any + valid Basic auth: denied certificate stays denied');
    is(status('/t/satisfy', cert => 'alice-a', headers => $auth), 200,
       'Satisfy Any + valid Basic auth: allowed certificate passes');
}

# --- HTTP/2 with vhost-level verification (curl, ALPN h2)
{
    my $alice = h2_status('mtls', 'alice-a', '/t/subject');
    my $bob = h2_status('mtls', 'bob-a', '/t/subject');
    is($alice, '200 2', 'HTTP/2: allowed certificate: 200 over h2');
    is($bob, '403 2', 'HTTP/2: denied certificate: 403 over h2');
}
