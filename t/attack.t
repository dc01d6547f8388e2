# The attack matrix: crafted certificates (t/pki/mkpki.sh),
# revocation, renegotiation to another certificate, post-handshake auth,
# HTTP/2, Satisfy Any, .htaccess and oversized requests. Every case
# asserts the status code (0: no HTTP response, the TLS handshake or the
# connection failed) and that the error log shows no crash.
#
# The resumption of a session on another virtual host (CVE-2025-23048)
# is in t/attack_resume.t; hostile configurations in t/hostile_config.t.
# Server configuration: t/conf/attack.inc.in, attack-hosts.inc.in and the shared extra.conf.in.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use Net::SSLeay ();
use Time::HiRes qw(sleep);
use lib 't/lib';
use MTLS qw(req h2_status error_log_since log_mark use_cert);
use HttpdRun qw($CRASH);

my $start = log_mark();
my @results;    # [what, ok]

# One request on a new connection: asserts the status and no crash.
# opts: cert, vhost, tls, headers; log => qr/.../ must appear in the log.
sub case {
    my ($what, $path, $want, %o) = @_;
    my $mark = log_mark();
    my ($st, $err) = req($path, vhost => 'mtls', %o);
    my $log = error_log_since($mark);
    is($st, $want, "$what: $want") or diag($err // '', "\n", $log);
    unlike($log, $CRASH, "$what: no crash in the error log");
    like($log, $o{log}, "$what: the error log says why") if $o{log};
}

my $DENIED = qr/\] client denied by server configuration/;

# ---- crafted certificates ----------------------------------------------------

# 1,000 SANs: the rule names the 998th dNSName; the URI is the last SAN.
case('1,000 SANs, rule names one of them', '/t/many-sans', 200, cert => 'many-sans');
case('1,000 SANs, URI prefix rule matches the last SAN', '/t/san-uri-prefix', 200,
     cert => 'many-sans');
case('1,000 SANs, none named', '/t/many-sans-missing', 403, cert => 'many-sans',
     log => qr/no rule matched/);
case('1,000 SANs, subject rule for alice', '/t/subject', 403, cert => 'many-sans');

# More than 64 KiB of subject, on a host without session tickets.
for my $v ('1.2', '1.3') {
    my %nt = (vhost => 'mtls_noticket', tls => $v);
    case("TLS $v, 64 KiB subject (1,000 RDNs), rule with the whole DN", '/t/big-subject',
         200, cert => 'big-subject', %nt);
    case("TLS $v, 64 KiB subject (1,000 RDNs), rule for alice", '/t/subject', 403,
         cert => 'big-subject', %nt,
         log => qr/no rule matched; subject "CN=big,OU=unit-1000/);
    case("TLS $v, 64 KiB attribute value, rule with the whole DN", '/t/big-value', 200,
         cert => 'big-value', %nt);
    case("TLS $v, 64 KiB attribute value, rule for the other big DN", '/t/big-subject',
         403, cert => 'big-value', %nt);
    case("TLS $v, alice against the 64 KiB DN rule", '/t/big-subject', 403,
         cert => 'alice-a', %nt);
}
# With session tickets on, OpenSSL fails the handshake: the session with
# this certificate in it does not fit into a ticket (documented).
case('64 KiB subject with session tickets on: no handshake', '/t/big-subject', 0,
     cert => 'big-subject', log => qr/SSL library error \d+ in handshake/);

# String types: OpenSSL compares names as UTF-8 (docs/reference.md "How values match").
case('BMPString CN=alice matches a rule for CN=alice', '/t/subject', 200, cert => 'bmp-cn');
case('UniversalString CN=Jürgen matches CN=Jürgen', '/t/juergen', 200, cert => 'univ-cn');
case('T61String CN=J\xfcrgen (Latin-1 byte) matches CN=Jürgen', '/t/juergen', 200,
     cert => 't61-cn');
case('non-ASCII is not case-folded: CN=Jürgen is not CN=JÜRGEN', '/t/juergen-upper', 403,
     cert => 'univ-cn');
case('T61String CN against a rule for alice', '/t/subject', 403, cert => 't61-cn');

# Two CNs (CN=bob,CN=alice,O=Acme Inc.,C=US): only the whole DN matches.
case('two CNs, rule with the whole DN', '/t/dup-cn-full', 200, cert => 'dup-cn');
case('two CNs, rules naming the second CN alone', '/t/dup-cn-second', 403,
     cert => 'dup-cn', log => qr/no rule matched; subject "CN=bob,CN=alice,O=Acme Inc\.,C=US"/);
case('two CNs, rule naming the first CN alone', '/t/subject', 403, cert => 'dup-cn');
case('two CNs, rule listing bob or carol', '/t/subject-two', 403, cert => 'dup-cn');

# Empty subject, SANs only.
case('empty subject, MTLSAllowSAN', '/t/san-empty', 200, cert => 'empty-subject');
case('empty subject, MTLSAllow san= issuer=', '/t/rule-san-empty', 200,
     cert => 'empty-subject');
case('empty subject, subject rule', '/t/subject', 403, cert => 'empty-subject',
     log => qr/no rule matched; subject ""/);
case('empty subject, another SAN', '/t/san-dns', 403, cert => 'empty-subject');

# Malformed SANs: OpenSSL marks the certificate invalid, so verification
# fails ("unable to get local issuer certificate"): no handshake where a
# certificate is required, 403 where optional_no_ca lets it through
# unverified. An OpenSSL 3 client sends such a certificate only at
# security level 0.
sub lax {
    my ($name) = @_;
    my $pem = MTLS::pki("$name.pem");
    return (cert => undef, ssl => { SSL_create_ctx_callback => sub {
        my ($ctx) = @_;
        Net::SSLeay::CTX_set_security_level($ctx, 0);
        Net::SSLeay::CTX_use_certificate_file($ctx, $pem, Net::SSLeay::FILETYPE_PEM())
          && Net::SSLeay::CTX_use_PrivateKey_file($ctx, $pem, Net::SSLeay::FILETYPE_PEM())
          or die "cannot use $name";
    } });
}
my $NO_ISSUER = qr/Certificate Verification: Error \(20\)/;
case('truncated SAN extension, SSLVerifyClient require', '/t/subject', 0,
     lax('bad-san'), log => $NO_ISSUER);
case('truncated SAN extension, optional_no_ca', '/t/subject', 403,
     lax('bad-san'), vhost => 'mtls_optional',
     log => qr/denied by server configuration: \/t\/subject: not verified: /);
case('two SAN extensions (the second alice), require', '/t/san-dns', 0,
     lax('dup-san'), log => $NO_ISSUER);
case('two SAN extensions (the second alice), optional_no_ca', '/t/subject', 403,
     lax('dup-san'), vhost => 'mtls_optional',
     log => qr/denied by server configuration: \/t\/subject: not verified: /);
case('odd SANs (5-byte IP, 0xff byte, empty name), DNS rule', '/t/san-dns', 403,
     cert => 'odd-san', log => qr/no rule matched/);
case('odd SANs, IP rule', '/t/san-ip4', 403, cert => 'odd-san');

# Validity: mod_ssl refuses the handshake, even under optional_no_ca.
my $NOT_YET = qr/Certificate Verification: Error \(9\)/;
my $EXPIRED = qr/Certificate Verification: Error \(10\)/;
my $REVOKED = qr/Certificate Verification: Error \(23\)/;
case('not yet valid, require', '/t/subject', 0, cert => 'not-yet-valid', log => $NOT_YET);
case('not yet valid, optional_no_ca', '/t/subject', 0, cert => 'not-yet-valid',
     vhost => 'mtls_optional', log => $NOT_YET);
case('expired, require', '/t/subject', 0, cert => 'expired', log => $EXPIRED);
case('expired, optional_no_ca', '/t/subject', 0, cert => 'expired',
     vhost => 'mtls_optional', log => $EXPIRED);

# Revocation (SSLCARevocationFile with the CRLs of every CA).
case('no CRL configured: revoked-a passes (control)', '/t/subject', 200,
     cert => 'revoked-a');
for my $mode ('chain', 'leaf') {
    my $vh = "mtls_crl_$mode";
    case("CRL check $mode: alice", '/t/x', 200, cert => 'alice-a', vhost => $vh);
    case("CRL check $mode: revoked leaf", '/t/x', 0, cert => 'revoked-a', vhost => $vh,
         log => $REVOKED);
    case("CRL check $mode: carol via int-a (not revoked), no rule", '/t/x', 403,
         cert => 'carol-int', vhost => $vh);
}
# int-r itself is revoked; only "chain" looks at it.
case('CRL check chain: leaf under a revoked intermediate', '/t/x', 0,
     cert => 'erin-r', vhost => 'mtls_crl_chain', log => $REVOKED);
case('CRL check leaf: leaf under a revoked intermediate passes', '/t/x', 200,
     cert => 'erin-r', vhost => 'mtls_crl_leaf');

# ---- oversized requests ----------------------------------------------------------
# Within LimitRequestFieldSize/LimitRequestLine (8190) the decision is the
# usual one; beyond them httpd answers 400/414 before any access check.
{
    my $h8k  = "X-Big: " . ('a' x 8000) . "\r\n";
    my $h9k  = "X-Big: " . ('a' x 9000) . "\r\n";
    my $many = join '', map { "X-H$_: v\r\n" } 1 .. 95;
    my $more = join '', map { "X-H$_: v\r\n" } 1 .. 120;
    my $spoof = join '', map { "$_: CN=alice,O=Acme Inc.,C=US\r\n" }
      qw(SSL_CLIENT_S_DN SSL-Client-S-DN X-SSL-Client-S-DN X-Forwarded-Client-Cert
         X-Client-Verify SSL_CLIENT_VERIFY);
    case('8000-byte header, alice', '/t/subject', 200, cert => 'alice-a', headers => $h8k);
    case('8000-byte header, bob', '/t/subject', 403, cert => 'bob-a', headers => $h8k);
    case('9000-byte header, alice', '/t/subject', 400, cert => 'alice-a', headers => $h9k);
    case('9000-byte header, bob', '/t/subject', 400, cert => 'bob-a', headers => $h9k);
    case('95 headers, bob', '/t/subject', 403, cert => 'bob-a', headers => $many);
    case('120 headers (over LimitRequestFields), bob', '/t/subject', 400,
         cert => 'bob-a', headers => $more);
    case('headers claiming alice\'s DN, bob', '/t/subject', 403, cert => 'bob-a',
         headers => $spoof);
    my $q8k = '/t/subject?' . ('q' x 8000);
    my $q9k = '/t/subject?' . ('q' x 9000);
    case('8000-byte URI, alice', $q8k, 200, cert => 'alice-a');
    case('8000-byte URI, bob', $q8k, 403, cert => 'bob-a');
    case('9000-byte URI, alice', $q9k, 414, cert => 'alice-a');
    case('9000-byte URI, bob', $q9k, 414, cert => 'bob-a');
    my $p = '/t/subject/' . join('/', ('x' x 100) x 70);
    case('7000-byte path, alice', $p, 200, cert => 'alice-a');
    case('7000-byte path, bob', $p, 403, cert => 'bob-a');
    # httpd refuses %2f (AllowEncodedSlashes Off) with a 404 before the
    # access phase; the 404's ErrorDocument is protected and not served.
    $p = '/t/subject/' . ('..%2f' x 10) . ('x' x 4000);
    case('long path with encoded slashes, bob', $p, 404, cert => 'bob-a');
}

# ---- Satisfy Any + Basic auth --------------------------------------------------------
{
    my $good = "Authorization: Basic am9lOnNlY3JldA==\r\n";    # joe:secret
    my $bad  = "Authorization: Basic am9lOndyb25n\r\n";        # joe:wrong
    case('Satisfy Any, Deny from all: bob, no credentials', '/t/satisfy', 403,
         cert => 'bob-a');
    case('Satisfy Any, Deny from all: bob, wrong password', '/t/satisfy', 403,
         cert => 'bob-a', headers => $bad);
    case('Satisfy Any, Deny from all: alice, no credentials (Basic still needed)',
         '/t/satisfy', 401, cert => 'alice-a');
    case('Satisfy Any, Allow from all: bob, no credentials', '/t/satisfy-allow', 403,
         cert => 'bob-a');
    case('Satisfy Any, Allow from all: bob, valid Basic auth', '/t/satisfy-allow', 403,
         cert => 'bob-a', headers => $good);
    case('Satisfy Any, Allow from all: alice', '/t/satisfy-allow', 200, cert => 'alice-a');
}

# ---- .htaccess ---------------------------------------------------------------------
# AllowOverride None: ignored. AllowOverride AuthConfig: the file may
# only narrow what it inherits (t/htaccess.t has the whole table). Other
# override classes: 500.
case('.htaccess MTLSAuthz Off under None: bob', '/htaccess/none/', 403, cert => 'bob-a');
case('.htaccess widening under None: bob', '/htaccess/none/widen/', 403, cert => 'bob-a');
case('.htaccess widening under None: alice', '/htaccess/none/widen/', 200,
     cert => 'alice-a');
case('.htaccess MTLSAuthz Off under AuthConfig: bob', '/htaccess/off/', 500,
     cert => 'bob-a', log => qr/MTLSAuthz: Off is not allowed in \.htaccess/);
case('.htaccess MTLSAuthz Off under AuthConfig: alice', '/htaccess/off/', 500,
     cert => 'alice-a');
case('.htaccess rules under AuthConfig do not replace the inherited ones: bob',
     '/htaccess/widen/', 403, cert => 'bob-a',
     log => qr{/htaccess/widen/: no rule matched \(rules of an \.htaccess\); subject "CN=bob});
case('.htaccess rules under AuthConfig narrow: alice', '/htaccess/widen/', 403,
     cert => 'alice-a');
case('.htaccess MTLSAuthz Off under FileInfo etc.: bob', '/htaccess-fileinfo/index.html',
     500, cert => 'bob-a', log => qr/MTLSAuthz not allowed here/);
case('.htaccess MTLSAuthz Off under FileInfo etc.: alice', '/htaccess-fileinfo/index.html',
     500, cert => 'alice-a');
case('.htaccess widening under AuthConfig, <Location> protects: bob',
     '/htaccess-loc/index.html', 403, cert => 'bob-a');
case('.htaccess rule under AuthConfig narrows a <Location>: alice',
     '/htaccess-loc/index.html', 403, cert => 'alice-a');

# ---- one connection, several certificates ----------------------------------------------

# Requests on one keep-alive connection: steps are [cert, path, want];
# a cert different from the previous step's is set on the connection
# before that request. Asserts each status, no crash, and returns the log.
sub on_one_connection {
    my ($what, $vhost, $tls, @steps) = @_;
    my $mark = log_mark();
    my ($sock, $err) = MTLS::connect_tls(vhost => $vhost, cert => $steps[0][0], tls => $tls);
    ok($sock, "$what: connected") or diag($err);
    my $cur = $steps[0][0];
    my @got;
    for my $s (@steps) {
        my ($cert, $path, $want) = @$s;
        if ($sock && $cert ne $cur) {
            use_cert($sock, MTLS::pki("$cert.pem"));
            $cur = $cert;
        }
        my ($st) = $sock ? MTLS::get_on($sock, $path, keepalive => 1) : (0);
        push @got, $st;
        is($st, $want, "$what: $cert $path on the same connection: $want");
    }
    $sock->close(SSL_fast_shutdown => 1) if $sock;
    my $log = error_log_since($mark);
    unlike($log, $CRASH, "$what: no crash in the error log");
    return $log;
}

# The subjects whose identity was extracted, in order (debug log).
sub extractions {
    my ($log) = @_;
    return join ' | ', map { /\((\d+) on this connection\): subject "CN=(\w+)/ ? "$1:$2" : () }
      split /\n/, $log;
}

# TLS 1.2: going from /t/free (SSLVerifyClient none) to /t/need makes
# mod_ssl renegotiate and ask for a certificate again; the client answers
# with another one. The decision follows the certificate of the latest
# handshake, and the identity is extracted again each time.
{
    my $log = on_one_connection('TLS 1.2 renegotiation alice -> bob -> alice',
        'mtls_reneg', '1.2',
        ['alice-a', '/t/need', 200], ['bob-a', '/t/free', 200], ['bob-a', '/t/need', 403],
        ['alice-a', '/t/free', 200], ['alice-a', '/t/need', 200]);
    is(extractions($log), '1:alice | 2:bob | 3:alice',
       'TLS 1.2 renegotiation: the identity is extracted again after each handshake');
    $log = on_one_connection('TLS 1.2 renegotiation bob -> alice', 'mtls_reneg', '1.2',
        ['bob-a', '/t/need', 403], ['alice-a', '/t/free', 200], ['alice-a', '/t/need', 200]);
    is(extractions($log), '1:bob | 2:alice',
       'TLS 1.2 renegotiation bob -> alice: extracted for each certificate');
    # The same subject, self-signed, under optional_no_ca: served by
    # mod_ssl but not verified, so the cached "verified alice" must not
    # be reused.
    $log = on_one_connection('TLS 1.2 renegotiation alice -> self-signed alice',
        'mtls_reneg', '1.2',
        ['alice-a', '/t/onc', 200], ['self-signed', '/t/free', 200],
        ['self-signed', '/t/onc', 403]);
    like($log, qr/denied by server configuration: \/t\/onc: not verified/,
         'TLS 1.2 renegotiation to an unverified certificate: denied as not verified');
    # Renegotiating to an untrusted certificate where one is required:
    # mod_ssl fails the handshake, so no response at all.
    on_one_connection('TLS 1.2 renegotiation alice -> untrusted', 'mtls_reneg', '1.2',
        ['alice-a', '/t/need', 200], ['untrusted', '/t/free', 200],
        ['untrusted', '/t/need', 0]);
}

# A client-initiated renegotiation: mod_ssl refuses it and closes the
# connection (CVE-2009-3555 hardening); bob's certificate never counts.
{
    my $mark = log_mark();
    my ($sock, $err) = MTLS::connect_tls(vhost => 'mtls', cert => 'alice-a', tls => '1.2');
    my ($st) = $sock ? MTLS::get_on($sock, '/t/subject', keepalive => 1) : (0);
    is($st, 200, 'client-initiated renegotiation: first request as alice: 200');
    my $st2 = 0;
    if ($sock) {
        use_cert($sock, MTLS::pki('bob-a.pem'));
        my $ssl = $sock->_get_ssl_object;
        Net::SSLeay::renegotiate($ssl);
        Net::SSLeay::do_handshake($ssl);
        ($st2) = MTLS::get_on($sock, '/t/subject-two', keepalive => 1);
        $sock->close(SSL_fast_shutdown => 1);
    }
    is($st2, 0, 'client-initiated renegotiation to bob: refused, no response');
    my $log = error_log_since($mark);
    unlike($log, qr/CN=bob/, 'client-initiated renegotiation: bob\'s certificate never reached the module');
    unlike($log, $CRASH, 'client-initiated renegotiation: no crash in the error log');
}

# TLS 1.3: no renegotiation; mod_ssl asks once per connection
# (post-handshake authentication, SSL_VERIFY_CLIENT_ONCE). A later
# location on the same connection keeps the first certificate.
{
    my $log = on_one_connection('TLS 1.3 post-handshake auth: bob, then alice set',
        'mtls_reneg', '1.3',
        ['bob-a', '/t/free', 200], ['bob-a', '/t/need', 403], ['alice-a', '/t/free', 200],
        ['alice-a', '/t/need', 403]);
    is(extractions($log), '1:bob',
       'TLS 1.3: one post-handshake authentication, one extraction');
    on_one_connection('TLS 1.3 post-handshake auth: alice', 'mtls_reneg', '1.3',
        ['alice-a', '/t/free', 200], ['alice-a', '/t/need', 200], ['bob-a', '/t/need', 200]);
    on_one_connection('TLS 1.3 post-handshake auth: self-signed alice, optional_no_ca',
        'mtls_reneg', '1.3', ['self-signed', '/t/onc', 403]);
    on_one_connection('TLS 1.3 post-handshake auth: untrusted certificate', 'mtls_reneg',
        '1.3', ['untrusted', '/t/need', 0]);
}

# ---- HTTP/2 -----------------------------------------------------------------------------
# Vhost-level verification over h2 is in t/verify.t. Per-location
# verification cannot renegotiate on h2: mod_http2 answers
# HTTP_1_1_REQUIRED and curl retries over HTTP/1.1.
{
    my $mark = log_mark();
    is(h2_status('mtls_reneg', 'alice-a', '/t/need'), '200 1.1',
       'h2, per-location verification: alice gets 200 after the retry over HTTP/1.1');
    is(h2_status('mtls_reneg', 'bob-a', '/t/need'), '403 1.1',
       'h2, per-location verification: bob gets 403 after the retry over HTTP/1.1');
    my $big = 'X-Big: ' . ('a' x 8000);
    is(h2_status('mtls', 'alice-a', '/t/subject', '-H', $big), '200 2',
       'h2 with an 8000-byte header: alice 200');
    is(h2_status('mtls', 'bob-a', '/t/subject', '-H', $big), '403 2',
       'h2 with an 8000-byte header: bob 403');
    my $huge = 'X-Big: ' . ('a' x 20000);
    my $r = h2_status('mtls', 'bob-a', '/t/subject', '-H', $huge);
    ok($r !~ /^200/, "h2 with a 20000-byte header: bob is not admitted ($r)");
    unlike(error_log_since($mark), $CRASH, 'h2 cases: no crash in the error log');
}

# ---- the whole run ----------------------------------------------------------------------
# The parent logs a dead child when it reaps it, up to a second later.
sleep 1.5;
unlike(error_log_since($start), $CRASH, 'the whole attack run: no crash in the error log');

done_testing();
