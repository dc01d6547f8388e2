# TLS session resumption across name-based virtual hosts (the pattern of
# CVE-2025-23048): a session or connection made with one host must not
# get a client into another host that trusts or pins a different CA.
#
# Name-based hosts share one port, which Apache::Test's vhosts do not, so
# this file runs its own httpd (t/lib/HttpdRun.pm) on a free loopback
# port with the PKI of t/pki/mkpki.sh. Every case asserts the status code
# (0: no HTTP response) and the error log is checked for crashes.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use File::Path qw(make_path remove_tree);
use FindBin ();
use IO::Socket::SSL ();
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(locate missing_prereqs free_port slurp spew describe_status
  start_server stop_server user_lines);

my %at = locate(__FILE__);
my ($HTTPD, $T_DIR, $MODULE, $BASE, $CFG) = @at{qw(httpd t_dir module base cfg)};
my $PKI = "$T_DIR/pki/out";
my $CRASH = qr/exit signal|Segmentation fault|AH0005[0-2]|double free|stack smashing|
               Sanitizer|Aborted/xi;

my @missing = missing_prereqs(%at);
push @missing, "$PKI/pins.sh is missing (scripts/run-tests.sh runs mkpki.sh)"
  unless -f "$PKI/pins.sh";
ok(!@missing, 'preconditions: httpd, module, base configuration and PKI exist')
  or diag(join "\n", @missing);
die "cannot run: @missing\n" if @missing;

my %fp = map { /^(FP_\w+)=(\S+)/ ? ($1 => $2) : () } split /\n/, slurp("$PKI/pins.sh");

my $dir = "$CFG/attack-resume";
remove_tree($dir);
make_path($dir) or die "$dir: $!";
spew("$dir/ok.txt", "ok\n");
my $port = free_port();

# a.test and b.test trust different CAs (so mod_ssl sees them as
# incompatible); c.test and d.test share one trust store and differ only
# in the issuer they pin (so mod_ssl lets a connection to one of them
# serve requests for the other, and only this module keeps them apart).
sub host {
    my ($name, $trust, @body) = @_;
    return (
        "<VirtualHost 127.0.0.1:$port>",
        "    ServerName $name",
        '    SSLEngine on',
        qq{    SSLCertificateFile "$PKI/server.crt"},
        qq{    SSLCertificateKeyFile "$PKI/server.key"},
        qq{    SSLCACertificateFile "$PKI/$trust"},
        '    SSLVerifyClient require',
        '    SSLVerifyDepth 3',
        '    <Location /t/>',
        '        MTLSAuthz On',
        (map { "        $_" } @body),
        '    </Location>',
        '</VirtualHost>',
    );
}
my $alice = '"subject=CN=alice,O=Acme Inc.,C=US"';
my @conf = (
    '# written by t/attack_resume.t',
    qq{ServerRoot "$dir"},
    qq{DefaultRuntimeDir "$dir"},
    qq{PidFile "$dir/httpd.pid"},
    qq{ErrorLog "$dir/error_log"},
    'LogLevel info mtls_authz:debug',
    qq{Include "$BASE"},
    qq{LoadModule mtls_authz_module "$MODULE"},
    "Listen 127.0.0.1:$port",
    'ServerName 127.0.0.1',
    qq{DocumentRoot "$dir"},
    'Timeout 10',
    'GracefulShutdownTimeout 1',
    user_lines(),
    qq{SSLSessionCache "shmcb:$dir/scache(512000)"},
    'SSLSessionTickets on',
    'SSLProtocol -all +TLSv1.2 +TLSv1.3',
    qq{AliasMatch "^/t/" "$dir/ok.txt"},
    qq{<Directory "$dir">},
    '    Require all granted',
    '</Directory>',
    host('a.test', 'ca-a.crt', "MTLSAllow $alice issuer=sha256:$fp{FP_CA_A}"),
    host('b.test', 'ca-b.crt', "MTLSAllow $alice issuer=sha256:$fp{FP_CA_B}"),
    host('c.test', 'trust-roots.crt', "MTLSAllow $alice issuer=sha256:$fp{FP_CA_A}"),
    host('d.test', 'trust-roots.crt', "MTLSAllow $alice issuer=sha256:$fp{FP_CA_B}"),
);
spew("$dir/httpd.conf", join("\n", @conf) . "\n");

my ($pid, $why) = start_server($HTTPD, "$dir/httpd.conf", $port, "$dir/start.out", 20,
                             "$dir/httpd.pid");
ok($pid, "httpd starts on 127.0.0.1:$port") or diag($why, "\n", slurp("$dir/start.out"),
                                                   slurp("$dir/error_log"));
die "cannot run: httpd did not start\n" unless $pid;

# A client context with a session cache; every connection made with it
# offers the one cached session, whatever the SNI.
sub client_ctx {
    my ($cert, $tls) = @_;
    my $ctx = IO::Socket::SSL::SSL_Context->new(
        SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_PEER(),
        SSL_ca_file => "$PKI/ca-a.crt", SSL_verifycn_scheme => 'none',
        SSL_cert_file => "$PKI/$cert.pem", SSL_key_file => "$PKI/$cert.pem",
        SSL_version => $tls eq '1.2' ? 'TLSv1_2' : 'TLSv1_3',
        SSL_session_cache_size => 4)
      or die "SSL context: $IO::Socket::SSL::SSL_ERROR";
    return $ctx;
}

# One GET /t/x with SNI $sni and Host $host (default: the SNI); returns
# (status, resumed?). Status 0: no HTTP response.
sub get {
    my ($ctx, $sni, $host) = @_;
    my $s = IO::Socket::SSL->new(
        PeerHost => '127.0.0.1', PeerPort => $port, Timeout => 10,
        SSL_hostname => $sni, SSL_reuse_ctx => $ctx, SSL_session_key => 'one',
        SSL_verifycn_name => 'localhost', SSL_verifycn_scheme => 'http',
    ) or return (0, 0);
    print $s "GET /t/x HTTP/1.1\r\nHost: " . ($host // $sni)
      . "\r\nConnection: close\r\n\r\n";
    local $/;
    my $resp = <$s> // '';
    my $reused = $s->get_session_reused ? 1 : 0;
    $s->close(SSL_fast_shutdown => 1);
    my ($st) = $resp =~ m{^HTTP/1\.\d (\d{3})};
    return ($st // 0, $reused);
}

for my $v ('1.2', '1.3') {
    my $ctx = client_ctx('alice-a', $v);
    my ($st, $re) = get($ctx, 'a.test');
    is($st, 200, "TLS $v: alice (CA A) on a.test, full handshake: 200");
    ($st, $re) = get($ctx, 'a.test');
    is($st, 200, "TLS $v: alice on a.test again (resumed=$re): 200");
    ok($re, "TLS $v: the session is resumed on a.test (the ticket works)");
    ($st, $re) = get($ctx, 'b.test');
    is($st, 0, "TLS $v: alice's a.test session offered to b.test (trusts CA B only): "
       . "no resumption (resumed=$re), handshake fails");
    ok(!$re, "TLS $v: mod_ssl did not resume a.test's session on b.test");
    ($st) = get($ctx, 'a.test', 'b.test');
    is($st, 421, "TLS $v: SNI a.test, Host b.test: 421 Misdirected Request");

    # Same trust store, different pins: only this module tells them apart.
    $ctx = client_ctx('alice-a', $v);
    ($st) = get($ctx, 'c.test');
    is($st, 200, "TLS $v: alice on c.test (pins CA A): 200");
    ($st, $re) = get($ctx, 'c.test', 'd.test');
    is($st, 403, "TLS $v: c.test's session resumed with SNI c.test, Host d.test "
       . "(pins CA B): 403");
    ok($re, "TLS $v: that session was resumed (no verified chain: the issuer "
       . "comes from the trust store)");
    ($st, $re) = get($ctx, 'd.test');
    is($st, 403, "TLS $v: alice's c.test session offered to d.test (pins CA B): 403 "
       . "(resumed=$re)");

    # Control: the CA B client gets into b.test and d.test.
    $ctx = client_ctx('alice-b', $v);
    is((get($ctx, 'b.test'))[0], 200, "TLS $v: alice (CA B) on b.test: 200");
    $ctx = client_ctx('alice-b', $v);
    is((get($ctx, 'd.test'))[0], 200, "TLS $v: alice (CA B) on d.test: 200");
}

my $log = slurp("$dir/error_log");
like($log, qr{client denied by server configuration: /t/x: issuer not allowed},
     'the 403s are the issuer pin ("issuer not allowed")');
my $st = stop_server($pid);
$log = slurp("$dir/error_log");
unlike($log, $CRASH, 'no crash in the error log');
diag("httpd stopped: " . describe_status($st));

done_testing();
