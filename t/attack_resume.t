# TLS session resumption across name-based virtual hosts (the pattern of
# CVE-2025-23048): a session or connection made with one host must not
# get a client into another host that trusts or pins a different CA.
#
# Name-based hosts share one port, which Apache::Test's vhosts do not, so
# this file runs its own httpd (t/lib/OwnHttpd.pm) on a free loopback
# port with the PKI of t/pki/mkpki.sh. Every case asserts the status code
# (0: no HTTP response) and the error log is checked for crashes.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use IO::Socket::SSL ();
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(spew client_ssl_opts);
use OwnHttpd ();

my $s = OwnHttpd->new(__FILE__, 'attack-resume');
my $dir = $s->dir;
my $port = $s->port;
spew("$dir/ok.txt", "ok\n");

# a.test and b.test trust different CAs (so mod_ssl sees them as
# incompatible); c.test and d.test share one trust store and differ only
# in the issuer they pin (so mod_ssl lets a connection to one of them
# serve requests for the other, and only this module keeps them apart).
sub host {
    my ($name, $trust, $rule) = @_;
    $s->add_vhost(name => $name, trust => $trust);
    $s->add('    <Location /t/>', '        MTLSAuthz On', "        $rule", '    </Location>',
            '</VirtualHost>');
}
my $alice = '"subject=CN=alice,O=Acme Inc.,C=US"';
$s->add_header;
$s->add(qq{SSLSessionCache "shmcb:$dir/scache(512000)"}, 'SSLSessionTickets on',
        'SSLProtocol -all +TLSv1.2 +TLSv1.3', qq{AliasMatch "^/t/" "$dir/ok.txt"},
        qq{<Directory "$dir">}, '    Require all granted', '</Directory>');
host('a.test', 'ca-a.crt', "MTLSAllow $alice issuer=sha256:" . $s->fp('FP_CA_A'));
host('b.test', 'ca-b.crt', "MTLSAllow $alice issuer=sha256:" . $s->fp('FP_CA_B'));
host('c.test', 'trust-roots.crt', "MTLSAllow $alice issuer=sha256:" . $s->fp('FP_CA_A'));
host('d.test', 'trust-roots.crt', "MTLSAllow $alice issuer=sha256:" . $s->fp('FP_CA_B'));
$s->start;

# One GET /t/x with SNI $sni and Host $host (default: the SNI); returns
# (status, resumed?). Status 0: no HTTP response.
sub sni_get {
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
    my $ctx = $s->session_ctx('alice-a', $v);
    my ($st, $re) = sni_get($ctx, 'a.test');
    is($st, 200, "TLS $v: alice (CA A) on a.test, full handshake: 200");
    ($st, $re) = sni_get($ctx, 'a.test');
    is($st, 200, "TLS $v: alice on a.test again (resumed=$re): 200");
    ok($re, "TLS $v: the session is resumed on a.test (the ticket works)");
    ($st, $re) = sni_get($ctx, 'b.test');
    is($st, 0, "TLS $v: alice's a.test session offered to b.test (trusts CA B only): "
       . "no resumption (resumed=$re), handshake fails");
    ok(!$re, "TLS $v: mod_ssl did not resume a.test's session on b.test");
    ($st) = sni_get($ctx, 'a.test', 'b.test');
    is($st, 421, "TLS $v: SNI a.test, Host b.test: 421 Misdirected Request");

    # Same trust store, different pins: only this module tells them apart.
    $ctx = $s->session_ctx('alice-a', $v);
    ($st) = sni_get($ctx, 'c.test');
    is($st, 200, "TLS $v: alice on c.test (pins CA A): 200");
    ($st, $re) = sni_get($ctx, 'c.test', 'd.test');
    is($st, 403, "TLS $v: c.test's session resumed with SNI c.test, Host d.test "
       . "(pins CA B): 403");
    ok($re, "TLS $v: that session was resumed (no verified chain: the issuer "
       . "comes from the trust store)");
    ($st, $re) = sni_get($ctx, 'd.test');
    is($st, 403, "TLS $v: alice's c.test session offered to d.test (pins CA B): 403 "
       . "(resumed=$re)");

    # Control: the CA B client gets into b.test and d.test.
    $ctx = $s->session_ctx('alice-b', $v);
    is((sni_get($ctx, 'b.test'))[0], 200, "TLS $v: alice (CA B) on b.test: 200");
    $ctx = $s->session_ctx('alice-b', $v);
    is((sni_get($ctx, 'd.test'))[0], 200, "TLS $v: alice (CA B) on d.test: 200");
}

like($s->error_log, qr{client denied by server configuration: /t/x: issuer not allowed},
     'the 403s are the issuer pin ("issuer not allowed")');
$s->stop;

done_testing();
