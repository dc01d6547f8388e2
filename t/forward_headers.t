# MTLSForwardHeaders: the admitted client's certificate as request
# headers for a proxied backend, and nothing a client sent under those
# names, in any spelling, ever reaching it where the headers are the
# module's.
#
# One httpd of this file's own (t/lib/OwnHttpd.pm) proxies to the WSGI
# backend t/wsgi_backend.py, which reads '-' and '_' in header names
# alike (as WSGI, PHP and CGI-style servers do), decodes every RFC 9440
# Byte Sequence it gets as an X.509 certificate and reports its SHA-256
# and subject, and parses X-Forwarded-Client-Cert as Envoy's format. The
# test compares those with the SHA-256 of the DER in the PKI's own
# certificate files. Each case asserts the status, the number of
# requests the backend got, and exactly which of these headers it got
# and with what.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use Digest::SHA qw(sha256_hex);
use FindBin ();
use IO::Socket::SSL ();
use MIME::Base64 qw(decode_base64 encode_base64);
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(slurp spew must_run run_cmd curl_args start_wsgi_backend kill_group
  wsgi_certs);
use OwnHttpd ();

my $s = OwnHttpd->new(__FILE__, 'forward-headers');
my $dir = $s->dir;

# ---- certificates ---------------------------------------------------------------

# The DER of the first certificate of a PEM file.
sub der_of {
    my ($file) = @_;
    my ($b64) = slurp($file) =~ /-----BEGIN CERTIFICATE-----\s*(.*?)-----END CERTIFICATE-----/s
      or die "$file: no certificate\n";
    return decode_base64($b64);
}

# A client certificate whose subject and SANs hold what XFCC must quote
# and escape: '"', '\', ';', '=' and ','; signed by CA A with alice-a's
# key, as $dir/odd.pem.
my $ODD_SUBJECT = 'CN=say \"hi\"\; a=b\\\\c,O=Acme';    # as RFC 4514 prints it
{
    spew("$dir/odd.ext", "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
         . "extendedKeyUsage=clientAuth\nsubjectAltName=\@alt\n[alt]\n"
         . "URI.1 = https://svc.example/p;a=b,c\nDNS.1 = plain.example\n"
         . "DNS.2 = odd;dns=x,y.example\n");
    must_run("$dir/cmd.out", 'odd csr', 'openssl', 'req', '-new', '-key', $s->pki('alice-a.key'),
             '-subj', '/O=Acme/CN=say "hi"\; a=b\\\\c', '-out', "$dir/odd.csr");
    must_run("$dir/cmd.out", 'odd crt', 'openssl', 'x509', '-req', '-in', "$dir/odd.csr",
             '-CA', $s->pki('ca-a.crt'), '-CAkey', $s->pki('ca-a.key'), '-days', '2',
             '-extfile', "$dir/odd.ext", '-out', "$dir/odd.crt");
    spew("$dir/odd.pem", slurp("$dir/odd.crt") . slurp($s->pki('alice-a.key')));
}
my $ODD_FP = sha256_hex(der_of("$dir/odd.crt"));
is((OwnHttpd::openssl_out('x509', '-in', "$dir/odd.crt", '-noout', '-subject',
                          '-nameopt', 'RFC2253') =~ /^subject=(.*?)\s*$/m)[0],
   $ODD_SUBJECT, 'the odd certificate has the subject the XFCC cases expect');

# The SHA-256 of a certificate's DER, from the PKI's file (or a path).
sub der_sha {
    my ($name) = @_;
    return sha256_hex(der_of($name =~ m{^/} ? $name : $s->pki("$name.crt")));
}
is(der_sha('alice-a'), $s->fp('FP_CERT_ALICE_A'),
   "the SHA-256 of alice-a.crt's DER is pins.sh's FP_CERT_ALICE_A");

my $ALICE = '"CN=alice,O=Acme Inc.,C=US"';
my %SUBJECT = ('alice-a' => 'CN=alice,O=Acme Inc.,C=US', 'alice-b' => 'CN=alice,O=Acme Inc.,C=US',
               'carol-int' => 'CN=carol,O=Acme Inc.,C=US',
               'carol-int-chain' => 'CN=carol,O=Acme Inc.,C=US',
               'ca-a' => 'CN=Test CA A,O=MTLS Test', 'ca-b' => 'CN=Test CA B,O=MTLS Test',
               'int-a' => 'CN=Test Intermediate A,O=MTLS Test', 'bob-a' => 'CN=bob,O=Acme Inc.,C=US');

# What the backend reports for the PKI certificate $name as item $i.
sub cert_line {
    my ($i, $name) = @_;
    (my $file = $name) =~ s/-chain$//;
    return "$i sha256=" . der_sha($file) . " subject=$SUBJECT{$name}";
}

# ---- the backend and the server -------------------------------------------------

my ($bpid, $bport) = start_wsgi_backend($s->{t_dir}, $dir, 600);
ok($bpid, 'the WSGI backend (t/wsgi_backend.py) starts') or diag($bport);
die "cannot run without the backend\n" unless $bpid;
my $B = "http://127.0.0.1:$bport";

$s->add_header(modules => [qw(proxy proxy_http include)]);
$s->add(qq{SSLSessionCache "shmcb:$dir/scache(512000)"}, 'SSLSessionTickets on',
        'SSLProtocol -all +TLSv1.2 +TLSv1.3',
        qq{<Directory "$dir/docs">}, '    Require all granted', '    Options +Includes',
        '    AddOutputFilter INCLUDES .shtml', '</Directory>');
$s->add_vhost(trust => 'trust-all.crt');
$s->add('    Protocols h2 http/1.1');
$s->add_location('/rfc/', 'MTLSAuthz On', "MTLSAllowSubject $ALICE \"CN=carol,O=Acme Inc.,C=US\"",
                 'MTLSForwardHeaders rfc9440', "ProxyPass $B/rfc/");
# A child scope sets it back to off (inheriting MTLSAuthz On and the rules).
$s->add_location('/rfc/off/', 'MTLSForwardHeaders off', "ProxyPass $B/rfc-off/");
$s->add_location('/xfcc/', 'MTLSAuthz On', "MTLSAllowSubject $ALICE",
                 'MTLSAllowSubject "CN=alice\,O=Acme Inc.\,C=US"',
                 "MTLSAllow cert=sha256:$ODD_FP",
                 'MTLSAllow cert=sha256:' . $s->fp('FP_CERT_NUL_DNS'),
                 'MTLSAllow cert=sha256:' . $s->fp('FP_CERT_EMPTY_SUBJECT'),
                 'MTLSForwardHeaders XFCC', "ProxyPass $B/xfcc/");
# Require mtls, and another Require line that admits everyone here.
$s->add_location('/any/', '<RequireAny>', '    Require mtls', '    Require ip 127.0.0.1',
                 '</RequireAny>', "MTLSAllowSubject $ALICE", 'MTLSForwardHeaders rfc9440',
                 "ProxyPass $B/any/");
$s->add_location('/audit/', 'MTLSAuthz On', 'MTLSAuthzMode Audit', "MTLSAllowSubject $ALICE",
                 'MTLSForwardHeaders rfc9440', "ProxyPass $B/audit/");
# Not the module's: what the client sends passes, as without the module.
$s->add_location('/plain/', "ProxyPass $B/plain/");
# Served from a file; a refusal and a 404 go to an error document that
# the backend serves, through /plain/.
$s->write_doc('guarded/ok.txt', "ok\n");
$s->add_location('/guarded/', 'MTLSAuthz On', "MTLSAllowSubject $ALICE",
                 'MTLSForwardHeaders rfc9440', 'ErrorDocument 403 /plain/denied',
                 'ErrorDocument 404 /plain/notfound');
# SSI pages whose subrequests proxy: from a page where the headers are
# not the module's, and from one where they are.
my $page = join "\n", '=== rfc', '<!--#include virtual="/rfc/sub" -->', '=== plain',
  '<!--#include virtual="/plain/sub" -->', '=== end', '';
$s->write_doc('ssi/page.shtml', $page);
$s->write_doc('ssi-on/page.shtml', $page);
$s->add_location('/ssi-on/', 'MTLSAuthz On', "MTLSAllowSubject $ALICE",
                 'MTLSForwardHeaders rfc9440');
$s->add('</VirtualHost>');
# Modules that set these headers: mod_headers early (before the module's
# first look, which is why it is a host of its own), in fixups, and a
# Connection header that names one.
$s->add_vhost(trust => 'trust-all.crt', name => 'late.test');
$s->add('    RequestHeader set Client_Cert ":ZWFybHk=:" early');
$s->add_location('/late/', 'MTLSAuthz On', "MTLSAllowSubject $ALICE",
                 'MTLSForwardHeaders rfc9440',
                 'RequestHeader set X-Forwarded-Client-Cert "Hash=forged"',
                 'RequestHeader append Connection "Client-Cert"',
                 "ProxyPass $B/late/");
$s->add('</VirtualHost>');
$s->start;

# ---- clients ----------------------------------------------------------------------

sub count { slurp("$dir/backend.count") =~ /^(\d+)$/m ? $1 : -1 }

# GET $path as $cert with the extra header lines @hdr: (status, body).
sub fetch {
    my ($path, $cert, @hdr) = @_;
    my ($st, undef, $body) = $s->request($path, cert => $cert,
                                         headers => join('', map { "$_\r\n" } @hdr));
    return ($st, $body);
}

# The backend's view of one request, as one text to compare: the names
# of the certificate header lines it got, each Byte Sequence it decoded,
# each XFCC pair.
sub view {
    my ($r) = @_;
    return join "\n", (map { "name $_" } @{ $r->{names} }),
      (map { my $k = $_; map { "$k $_" } @{ $r->{cert}{$k} } } sort keys %{ $r->{cert} }),
      (map { "xfcc $_" } @{ $r->{xfcc} });
}

# What RFC 9440 headers for $cert (with its chain @chain, leaf excluded)
# look like in view().
sub rfc_view {
    my ($cert, @chain) = @_;
    return join "\n", 'name Client-Cert', (@chain ? 'name Client-Cert-Chain' : ()),
      'HTTP_CLIENT_CERT ' . cert_line(0, $cert),
      (map { "HTTP_CLIENT_CERT_CHAIN " . cert_line($_, $chain[$_]) } 0 .. $#chain);
}

# One request that must reach the backend once, with exactly $want
# (view()) of these headers.
sub reaches {
    my ($what, $path, $cert, $want, @hdr) = @_;
    my $before = count();
    my ($st, $body) = fetch($path, $cert, @hdr);
    my $r = wsgi_certs($body);
    is($st, 200, "$what: 200");
    is(count(), $before + 1, "$what: the backend got one request");
    is(view($r), $want, "$what: the backend got exactly these certificate headers")
      or diag($body);
    return $r;
}

# The spoofs: every header name the module takes as its own, in several
# spellings, with bob's certificate, which a backend would believe.
my $BOB_SF = ':' . encode_base64(der_of($s->pki('bob-a.crt')), '') . ':';
my $BOB_XFCC = 'Hash=' . der_sha('bob-a') . ';Subject="CN=bob,O=Acme Inc.,C=US"';
my @SPOOF = ("Client-Cert: $BOB_SF", "client_cert: $BOB_SF", "CLIENT-CERT: $BOB_SF",
             "Client_CERT: $BOB_SF", "Client-Cert-Chain: $BOB_SF", "client_cert_chain: $BOB_SF",
             "CLIENT-Cert_Chain: $BOB_SF", "X-Forwarded-Client-Cert: $BOB_XFCC",
             "x_forwarded_client_cert: $BOB_XFCC", "X_FORWARDED-Client_CERT: $BOB_XFCC",
             'Client_Cert:');

# ---- rfc9440: the certificate, the verified chain ---------------------------------

my $ALICE_RFC = rfc_view('alice-a', 'ca-a');
reaches('rfc9440, alice', '/rfc/x', 'alice-a', $ALICE_RFC);
# A spoof's name in a test's name.
sub sname { (split /:/, $_[0])[0] }
reaches("rfc9440, alice sending " . sname($_), '/rfc/x', 'alice-a', $ALICE_RFC, $_) for @SPOOF;
reaches('rfc9440, alice sending all the spoofs at once', '/rfc/x', 'alice-a', $ALICE_RFC, @SPOOF);
# mod_proxy drops what a Connection header names: not the module's own.
reaches('rfc9440, alice with "Connection: Client-Cert, Client_Cert_Chain"', '/rfc/x', 'alice-a',
        $ALICE_RFC, 'Connection: Client-Cert, Client_Cert_Chain');
reaches('rfc9440, carol (signed by the intermediate; sends only her certificate)',
        '/rfc/x', 'carol-int', rfc_view('carol-int', 'int-a', 'ca-a'));
reaches('rfc9440, carol sending the intermediate too', '/rfc/x', 'carol-int-chain',
        rfc_view('carol-int-chain', 'int-a', 'ca-a'));
# alice-b (CA B) appends CA A's certificate to what she sends: the chain
# is what OpenSSL verified, never what the client sent.
reaches('rfc9440, alice from CA B sending CA A\'s certificate as her chain', '/rfc/x',
        'alice-b-spoof', rfc_view('alice-b', 'ca-b'));

for my $hdr ([], \@SPOOF) {
    my $what = @$hdr ? 'with the spoofs' : 'without';
    my $before = count();
    my ($st) = fetch('/rfc/x', 'bob-a', @$hdr);
    is($st, 403, "rfc9440, bob $what: 403");
    is(count(), $before, "rfc9440, bob $what: the backend got nothing");
}

# ---- the chain after a session resumption ---------------------------------------

# GET on a connection that offers $ctx's cached session: (status, body,
# resumed?).
sub session_get {
    my ($ctx, $path, @hdr) = @_;
    my $sock = IO::Socket::SSL->new(
        PeerHost => '127.0.0.1', PeerPort => $s->port, Timeout => 10,
        SSL_hostname => 'localhost', SSL_reuse_ctx => $ctx, SSL_session_key => 'fwd',
    ) or return (0, "connect: $IO::Socket::SSL::SSL_ERROR", 0);
    my ($st, $body) = $s->get_on($sock, $path, headers => join('', map { "$_\r\n" } @hdr));
    my $re = $sock->get_session_reused ? 1 : 0;
    $sock->close(SSL_fast_shutdown => 1);
    return ($st, $body, $re);
}

for my $v ('1.2', '1.3') {
    my $ctx = $s->session_ctx('alice-a', $v);
    my ($st, $body, $re) = session_get($ctx, '/rfc/x');
    is("$st $re", '200 0', "TLS $v: alice, full handshake: 200, not resumed");
    is(view(wsgi_certs($body)), $ALICE_RFC, "TLS $v, full handshake: Client-Cert and the chain")
      or diag($body);
    ($st, $body, $re) = session_get($ctx, '/rfc/x', "Client-Cert-Chain: $BOB_SF");
    is("$st $re", '200 1', "TLS $v: alice again: 200 on the resumed session");
    is(view(wsgi_certs($body)), rfc_view('alice-a'),
       "TLS $v, resumed (no verified chain): Client-Cert alone, and not the client's chain")
      or diag($body);
}

# ---- xfcc -----------------------------------------------------------------------------

# The XFCC element the module must send for $fp, $subject and its SANs
# (as they must read once parsed: view()).
sub xfcc_view {
    my ($header, $fp, $subject, @pairs) = @_;
    return join "\n", "name $header", "xfcc 0 Hash=$fp",
      (defined $subject ? ("xfcc 0 Subject=$subject") : ()), map { "xfcc 0 $_" } @pairs;
}

my $ALICE_XFCC = xfcc_view('X-Forwarded-Client-Cert', der_sha('alice-a'),
                           'CN=alice,O=Acme Inc.,C=US',
                           'URI=spiffe://example.org/ns/prod/sa/alice', 'DNS=alice.example.com');
my $r = reaches('xfcc, alice', '/xfcc/x', 'alice-a', $ALICE_XFCC);
is($r->{vars}{HTTP_X_FORWARDED_CLIENT_CERT},
   'Hash=' . der_sha('alice-a') . ';Subject="CN=alice,O=Acme Inc.,C=US";'
   . 'URI=spiffe://example.org/ns/prod/sa/alice;DNS=alice.example.com',
   'xfcc, alice: the header as Envoy writes it');
reaches('xfcc, alice sending ' . sname($_), '/xfcc/x', 'alice-a', $ALICE_XFCC, $_) for @SPOOF;
# A client's XFCC element appended to the module's would be a second
# element, a second proxy's word.
reaches('xfcc, alice sending every spoof', '/xfcc/x', 'alice-a', $ALICE_XFCC, @SPOOF);

$r = reaches('xfcc, a CN holding commas (no SAN)', '/xfcc/x', 'inject-comma',
             xfcc_view('X-Forwarded-Client-Cert', der_sha('inject-comma'),
                       'CN=alice\,O=Acme Inc.\,C=US'));
like($r->{vars}{HTTP_X_FORWARDED_CLIENT_CERT} // '',
     qr/;Subject="CN=alice\\\\,O=Acme Inc\.\\\\,C=US"$/,
     'xfcc: the subject\'s backslashes are escaped inside its quotes');
$r = reaches('xfcc, a subject and SANs with \'"\', \'\\\', \';\', \'=\' and \',\'', '/xfcc/x',
             "$dir/odd", xfcc_view('X-Forwarded-Client-Cert', $ODD_FP, $ODD_SUBJECT,
                                   'URI=https://svc.example/p;a=b,c', 'DNS=plain.example',
                                   'DNS=odd;dns=x,y.example'));
is($r->{vars}{HTTP_X_FORWARDED_CLIENT_CERT},
   qq{Hash=$ODD_FP;Subject="CN=say \\\\\\"hi\\\\\\"\\\\; a=b\\\\\\\\c,O=Acme";}
   . 'URI="https://svc.example/p;a=b,c";DNS=plain.example;DNS="odd;dns=x,y.example"',
   'xfcc: values with , ; = quoted, " and \\ escaped, plain ones as they are');
reaches('xfcc, a DNS SAN with a NUL byte is left out', '/xfcc/x', 'nul-dns',
        xfcc_view('X-Forwarded-Client-Cert', der_sha('nul-dns'), 'CN=nul-dns'));
reaches('xfcc, an empty subject', '/xfcc/x', 'empty-subject',
        xfcc_view('X-Forwarded-Client-Cert', der_sha('empty-subject'), '',
                  'DNS=empty.example.com'));
{
    my $before = count();
    my ($st) = fetch('/xfcc/x', 'bob-a', @SPOOF);
    is($st, 403, 'xfcc, bob with the spoofs: 403');
    is(count(), $before, 'xfcc, bob: the backend got nothing');
}

# ---- refused by the rules, admitted all the same ---------------------------------

# Require mtls refuses bob, Require ip admits him: the backend gets him,
# and nothing of what he sent under these names.
reaches('Require mtls or ip, bob (admitted by ip)', '/any/x', 'bob-a', '');
reaches('Require mtls or ip, bob sending ' . sname($_), '/any/x', 'bob-a', '', $_) for @SPOOF;
reaches('Require mtls or ip, alice (admitted by Require mtls)', '/any/x', 'alice-a', $ALICE_RFC,
        @SPOOF);
reaches('Audit mode, bob (would be refused) with the spoofs', '/audit/x', 'bob-a', '', @SPOOF);
reaches('Audit mode, alice with the spoofs', '/audit/x', 'alice-a', $ALICE_RFC, @SPOOF);
like($s->error_log, qr/AUDIT \(admitted\): client denied by server configuration: \/audit\/x/,
     'Audit mode: bob\'s request was logged as one the rules refuse');

# ---- off: nothing changes -----------------------------------------------------

my $SPOOF_VIEW = join "\n", 'name Client-Cert', 'HTTP_CLIENT_CERT ' . cert_line(0, 'bob-a');
reaches('off (no MTLSForwardHeaders): the client\'s Client-Cert reaches the backend',
        '/plain/x', 'alice-a', $SPOOF_VIEW, "Client-Cert: $BOB_SF");
reaches('MTLSForwardHeaders off in a child scope of rfc9440: the same', '/rfc/off/x', 'alice-a',
        $SPOOF_VIEW, "Client-Cert: $BOB_SF");
# Control for the Connection case above: mod_proxy does drop what it names.
reaches('off: a Client-Cert that Connection names does not reach the backend', '/plain/x',
        'alice-a', '', "Client-Cert: $BOB_SF", 'Connection: Client-Cert');

# ---- internal redirects and subrequests ---------------------------------------

# bob refused at /guarded/: the error document (/plain/, served by the
# backend) shares his request headers. (The client gets the status of
# the backend's answer: mod_proxy replaces the error's.)
{
    my $mark = $s->log_mark;
    my $before = count();
    my ($st, $body) = fetch('/guarded/ok.txt', 'bob-a', @SPOOF);
    is($st, 200, 'internal redirect: bob at /guarded/: the error document\'s answer');
    is(count(), $before + 1, 'internal redirect: the error document came from the backend');
    is(view(wsgi_certs($body)), '', 'internal redirect: it got none of bob\'s spoofs')
      or diag($body);
    my $log = $s->log_since($mark);
    like($log, qr/removed the request header 'client_cert'(?s:.*)client denied by server configuration: \/guarded\/ok\.txt/,
         'the spoofs went before the access check refused him');
}
{
    my ($st, $body) = fetch('/guarded/ok.txt', 'alice-a', @SPOOF);
    is("$st $body", "200 ok\n", 'alice at /guarded/: the file');
    my $before = count();
    my $mark = $s->log_mark;
    ($st, $body) = fetch('/guarded/missing', 'alice-a', @SPOOF);
    is($st, 200, 'internal redirect: alice at /guarded/missing: the error document\'s answer');
    like($s->log_since($mark), qr/AH00128: File does not exist: \S*\/guarded\/missing/,
         'internal redirect: ... for the 404');
    is(count(), $before + 1, 'internal redirect: the error document came from the backend');
    is(view(wsgi_certs($body)), '',
       'internal redirect to a location where they are not the module\'s: neither hers nor the spoofs')
      or diag($body);
}

# The part of an SSI page between "=== $name" and the next marker.
sub part {
    my ($body, $name) = @_;
    return $body =~ /^=== \Q$name\E\n(.*?)^=== /ms ? $1 : "(no part $name in:\n$body)";
}
{
    my $before = count();
    my ($st, $body) = fetch('/ssi/page.shtml', 'alice-a', "Client-Cert: $BOB_SF");
    is($st, 200, 'subrequests from a page where they are not the module\'s: 200');
    is(count(), $before + 2, 'subrequests: the backend got two');
    is(view(wsgi_certs(part($body, 'rfc'))), $ALICE_RFC,
       'subrequest to /rfc/: alice\'s, not what the page\'s request carried') or diag($body);
    is(view(wsgi_certs(part($body, 'plain'))), $SPOOF_VIEW,
       'subrequest to /plain/: what the client sent, as without the module') or diag($body);
    $before = count();
    ($st, $body) = fetch('/ssi-on/page.shtml', 'alice-a', "Client-Cert: $BOB_SF");
    is($st, 200, 'subrequests from a page where they are the module\'s: 200');
    is(count(), $before + 2, 'subrequests: the backend got two');
    is(view(wsgi_certs(part($body, 'rfc'))), $ALICE_RFC, 'subrequest to /rfc/: alice\'s')
      or diag($body);
    is(view(wsgi_certs(part($body, 'plain'))), '',
       'subrequest to /plain/ (off): neither the spoof nor the page\'s headers') or diag($body);
}

# ---- modules that set them later ----------------------------------------------

{
    my $before = count();
    my ($st, undef, $body) = $s->request('/late/x', cert => 'alice-a', sni => 'late.test',
                                         host => 'late.test');
    is($st, 200, 'mod_headers: alice at late.test: 200');
    is(count(), $before + 1, 'mod_headers: the backend got one request');
    is(view(wsgi_certs($body)), $ALICE_RFC,
       'mod_headers sets Client_Cert early, X-Forwarded-Client-Cert in fixups and names '
       . 'Client-Cert in Connection: the backend gets the module\'s headers alone')
      or diag($body);
}

# ---- HTTP/2 -----------------------------------------------------------------------

{
    my $before = count();
    my ($out, $body) = ("$dir/curl.out", "$dir/curl.body");
    unlink $body;
    run_cmd(30, $out, curl_args($s->{pki}, $s->port, $s->pki('alice-a.pem'), ['/rfc/h2'],
                                '--http2', '-o', $body, '-w', '%{http_code} %{http_version}',
                                map { ('-H', $_) } @SPOOF[0 .. 9]));
    is(slurp($out), '200 2', 'HTTP/2: alice with the spoofs: 200 over HTTP/2');
    is(count(), $before + 1, 'HTTP/2: the backend got one request');
    is(view(wsgi_certs(slurp($body))), $ALICE_RFC, 'HTTP/2: exactly alice\'s headers')
      or diag(slurp($body));
}

$s->stop;
kill_group($bpid);
done_testing();
