# The trusted issuer of a client certificate, however the module finds
# it: from the chain this connection's handshake verified, from the
# process's issuer cache (a resumed session has no verified chain), or
# by looking it up in the trust store and checking the signature. Issuer
# pins must admit and refuse the same clients every way: a full
# handshake, a resumed TLS 1.2 session (session ID, shmcb), a TLS 1.3
# ticket, a client that sends an intermediate that is not in the trust
# store, and a trust store with two CAs of one name (ca-a re-issued with
# the same key: both issued alice, and the chain OpenSSL built names only
# one of them).
#
# The module's debug line "identity extracted" names where the issuers
# came from; it is matched to a connection by the client's port, and
# only the ways that are certain are asserted (a resumed session may
# find the cache of another process).
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use IO::Socket::SSL ();
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(spew client_ssl_opts log_wait);
use OwnHttpd ();

my $s = OwnHttpd->new(__FILE__, 'issuer-paths');
my $dir = $s->dir;
my $port = $s->port;
spew("$dir/ok.txt", "ok\n");

my $alice = '"subject=CN=alice,O=Acme Inc.,C=US"';
my $carol = '"subject=CN=carol,O=Acme Inc.,C=US"';
my %pin = map { $_ => 'issuer=sha256:' . $s->fp($_) }
  qw(FP_CA_A FP_CA_B FP_INT_A FP_CA_A_REISSUED);

# One host per trust store and session mechanism; in each, /NAME/ admits
# alice or carol only with the issuer NAME (a CA of that store: the
# module refuses to start with a pin its store lacks).
sub host {
    my ($name, $trust, $tickets, @pins) = @_;
    $s->add_vhost(name => $name, trust => $trust);
    $s->add("    SSLSessionTickets $tickets");
    for my $p (@pins) {
        $s->add_location("/$p/", 'MTLSAuthz On', "MTLSAllow $alice $pin{$p}",
                         "MTLSAllow $carol $pin{$p}");
    }
    $s->add('</VirtualHost>');
}
$s->add_header;
$s->add(qq{SSLSessionCache "shmcb:$dir/scache(512000)"},
        'SSLProtocol -all +TLSv1.2 +TLSv1.3', qq{AliasMatch "^/[A-Z_]+/" "$dir/ok.txt"},
        qq{<Directory "$dir">}, '    Require all granted', '</Directory>');
host('roots-cache.test',   'trust-roots.crt',    'off', qw(FP_CA_A FP_CA_B));
host('roots-tickets.test', 'trust-roots.crt',    'on',  qw(FP_CA_A FP_CA_B));
host('all.test',           'trust-all.crt',      'on',  qw(FP_CA_A FP_CA_B FP_INT_A));
host('reissued.test',      'trust-reissued.crt', 'on',  qw(FP_CA_A FP_CA_A_REISSUED));
$s->start;

# GET $path on a new connection to $sni with the client context $ctx
# (which offers its cached session): (status, resumed?, client port).
sub get {
    my ($ctx, $sni, $path) = @_;
    my $c = IO::Socket::SSL->new(
        PeerHost => '127.0.0.1', PeerPort => $port, Timeout => 10,
        SSL_hostname => $sni, SSL_reuse_ctx => $ctx, SSL_session_key => 'one',
        SSL_verifycn_name => 'localhost', SSL_verifycn_scheme => 'http',
    ) or return (0, 0, 0);
    my $cport = $c->sockport;
    print $c "GET $path HTTP/1.1\r\nHost: $sni\r\nConnection: close\r\n\r\n";
    my $resp = '';
    local $SIG{ALRM} = sub { die "client timeout\n" };
    eval { alarm 20; local $/; $resp = <$c> // ''; alarm 0; 1 } or $resp = '';
    alarm 0;
    my $reused = $c->get_session_reused ? 1 : 0;
    $c->close(SSL_fast_shutdown => 1);
    my ($st) = $resp =~ m{^HTTP/1\.\d (\d{3})};
    return ($st // 0, $reused, $cport);
}

# The module's "identity extracted" line for the connection from $cport.
sub extracted {
    my ($mark, $cport) = @_;
    my $re = qr{\[client 127\.0\.0\.1:$cport\][^\n]*identity extracted[^\n]*};
    my $log = log_wait("$dir/error_log", $mark, $re, 10);
    return $log =~ $re ? $& : '';
}

my $CHAIN = qr{trusted issuer\(s\) from the handshake's verified chain};

# One request; asserts status and (when given) resumption, and returns
# the extraction line.
sub case {
    my ($what, $ctx, $sni, $path, $want, $resumed) = @_;
    my $mark = $s->log_mark;
    my ($st, $re, $cport) = get($ctx, $sni, $path);
    is($st, $want, "$what: $want");
    if (defined $resumed) {
        is($re, $resumed, "$what: " . ($resumed ? 'resumed' : 'full handshake'));
    }
    my $line = $cport ? extracted($mark, $cport) : '';
    ok($line ne '', "$what: the module logged its extraction")
      or diag("no 'identity extracted' line for client port $cport");
    return $line;
}

for my $v ('1.2', '1.3') {
    for my $h (qw(roots-cache.test roots-tickets.test)) {
        my $how = $h =~ /cache/ ? 'session cache' : 'tickets';
        # (a) full handshake: alice of CA A, a sole CA of its name.
        my $ctx = $s->session_ctx('alice-a', $v);
        my $line = case("TLS $v $how: alice (CA A) full handshake, pin CA A",
                        $ctx, $h, '/FP_CA_A/', 200, 0);
        like($line, qr{1 $CHAIN}, "TLS $v $how: full handshake: one issuer, from the "
             . "verified chain");
        # (b)/(c) resumed: no verified chain; the pin must still hold.
        $line = case("TLS $v $how: alice resumed, pin CA B", $ctx, $h, '/FP_CA_B/', 403, 1);
        unlike($line, $CHAIN, "TLS $v $how: a resumed session has no verified chain");
        like($line, qr{1 trusted issuer\(s\) from}, "TLS $v $how: resumed: one issuer");
        case("TLS $v $how: alice resumed again, pin CA A", $ctx, $h, '/FP_CA_A/', 200, 1);

        # The CA B client, full and resumed, the other way round.
        $ctx = $s->session_ctx('alice-b', $v);
        case("TLS $v $how: alice (CA B) full handshake, pin CA A", $ctx, $h,
             '/FP_CA_A/', 403, 0);
        case("TLS $v $how: alice (CA B) resumed, pin CA B", $ctx, $h, '/FP_CA_B/', 200, 1);

        # (d) carol sends int-a, which this store lacks: OpenSSL verifies
        # through it, but no trusted certificate issued carol (not ca-a,
        # whose certificate signed int-a, not hers).
        $ctx = $s->session_ctx('carol-int-chain', $v);
        $line = case("TLS $v $how: carol via an intermediate she sent, pin CA A",
                     $ctx, $h, '/FP_CA_A/', 403, 0);
        like($line, qr{0 trusted issuer\(s\) from the trust store},
             "TLS $v $how: carol's sent intermediate is no trusted issuer");
        case("TLS $v $how: carol resumed, pin CA A (not her issuer)", $ctx, $h,
             '/FP_CA_A/', 403, 1);
        case("TLS $v $how: carol resumed, pin CA B", $ctx, $h, '/FP_CA_B/', 403, 1);
    }

    # (d) the intermediate in the store: carol's issuer is int-a, whether
    # she sends it or not.
    for my $cert (qw(carol-int-chain carol-int)) {
        my $ctx = $s->session_ctx($cert, $v);
        my $line = case("TLS $v all: $cert full handshake, pin int-a", $ctx, 'all.test',
                        '/FP_INT_A/', 200, 0);
        like($line, qr{1 $CHAIN}, "TLS $v all: $cert: int-a from the verified chain");
        case("TLS $v all: $cert resumed, pin CA A (the root is not her issuer)", $ctx,
             'all.test', '/FP_CA_A/', 403, 1);
        case("TLS $v all: $cert resumed, pin int-a", $ctx, 'all.test', '/FP_INT_A/', 200, 1);
    }

    # (e) two trusted CAs of one name that both issued alice: both pins
    # admit, on a full handshake (where the verified chain names one of
    # them) and resumed.
    my $ctx = $s->session_ctx('alice-a', $v);
    my $line = case("TLS $v reissued: alice full handshake, pin re-issued CA A", $ctx,
                    'reissued.test', '/FP_CA_A_REISSUED/', 200, 0);
    unlike($line, $CHAIN, "TLS $v reissued: two CAs of one name: not from the chain");
    like($line, qr{2 trusted issuer\(s\)}, "TLS $v reissued: both CAs are issuers");
    case("TLS $v reissued: alice resumed, pin CA A", $ctx, 'reissued.test', '/FP_CA_A/',
         200, 1);
    case("TLS $v reissued: alice resumed, pin re-issued CA A", $ctx, 'reissued.test',
         '/FP_CA_A_REISSUED/', 200, 1);
    $ctx = $s->session_ctx('alice-a', $v);
    case("TLS $v reissued: alice full handshake, pin CA A", $ctx, 'reissued.test',
         '/FP_CA_A/', 200, 0);
}

like($s->error_log, qr{client denied by server configuration: /FP_CA_B/: issuer not allowed},
     'the 403s are the issuer pin ("issuer not allowed")');
$s->stop;

done_testing();
