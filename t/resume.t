# TLS session resumption must not turn an unverified client certificate
# into a verified one. Under SSLVerifyClient optional_no_ca mod_ssl serves
# a self-signed or untrusted certificate as GENEROUS; when the session is
# resumed its verify callback does not run, so nothing marks the
# certificate GENEROUS again, and mod_ssl's access hook resets the verify
# result to OK. The decision must still say "not verified", on full and
# resumed handshakes, TLS 1.2 and 1.3, with the shmcb session cache
# (SSLSessionTickets off) and with tickets, through renegotiation and
# post-handshake authentication; and legitimate clients must keep working
# when they resume.
#
# This file runs its own httpd (t/lib/HttpdRun.pm) under mpm_prefork with
# one connection per child, so that every resumed connection is served by
# another process than the full handshake it resumes (the access log
# records the pid). Clients: the openssl CLI (-sess_out / -sess_in) and,
# for renegotiation and post-handshake authentication, IO::Socket::SSL.
# Every case asserts the status (0 or none: no HTTP response) and, for
# each resumption, that it was one on both sides.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use File::Basename qw(dirname);
use FindBin ();
use IO::Socket::SSL ();
use Net::SSLeay ();
use Time::HiRes qw(time sleep);
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(locate missing_prereqs assert_prereqs free_port slurp spew run_cmd
  describe_status case_dir head_lines ssl_vhost start_server kill_group client_ssl_opts
  log_wait $CRASH);
use MTLS ();

# MTLS_TIMEOUT_SCALE: make valgrind sets it, httpd being far slower.
my $SCALE   = $ENV{MTLS_TIMEOUT_SCALE} || 1;
my $TIMEOUT = 60 * $SCALE;    # seconds for one client connection
my $WAIT    = 30 * $SCALE;    # seconds for a log line or a new child

# A server that closes a resumed connection at the handshake must fail the
# next request, not kill the test with SIGPIPE.
$SIG{PIPE} = 'IGNORE';

my %at = locate(__FILE__);
my ($HTTPD, $BASE, $PKI) = @at{qw(httpd base pki)};

# ---- preconditions -------------------------------------------------------------

my @missing = missing_prereqs(%at, need_pki => 1);
my ($OPENSSL) = grep { -x } map { "$_/openssl" } split /:/, $ENV{PATH} // '';
push @missing, 'no openssl CLI in PATH' unless $OPENSSL;

# The base configuration's modules, under mpm_prefork instead of
# mpm_event; mod_http2 refuses to run under prefork.
my @modules;
if (-f $BASE) {
    for my $line (split /\n/, slurp($BASE)) {
        next if $line =~ /^LoadModule\s+http2_module\b/;
        if ($line =~ /^LoadModule\s+mpm_\w+_module\s+(\S+)/) {
            my $prefork = dirname($1) . '/mod_mpm_prefork.so';
            push @missing, "$prefork is missing" unless -f $prefork;
            $line = "LoadModule mpm_prefork_module $prefork";
        }
        push @modules, $line;
    }
    push @missing, "no mpm in $BASE" unless grep { /mpm_prefork/ } @modules;
}
assert_prereqs('httpd, module, base configuration, PKI, openssl, prefork', @missing);

# ---- the server ------------------------------------------------------------------

my $dir = case_dir($at{cfg}, 'resume');
spew("$dir/ok.txt", "ok\n");
spew("$dir/modules.conf", join("\n", @modules) . "\n");

# One loopback port per host, all different.
my %port;
{
    my %taken;
    for my $h (qw(onc-tickets onc-cache roots-tickets roots-cache loc-tickets loc-cache)) {
        my $p;
        do { $p = free_port() } while $taken{$p}++;
        $port{$h} = $p;
    }
}

my $ALICE = '"CN=alice,O=Acme Inc.,C=US"';
my $CAROL = '"CN=carol,O=Acme Inc.,C=US"';

# A TLS host on its own port. tickets: SSLSessionTickets on, else the
# shmcb cache holds the sessions (session IDs in TLS 1.2, stateful
# tickets in TLS 1.3).
sub host {
    my ($name, $tickets, $trust, @body) = @_;
    return ssl_vhost({port => $port{$name}, pki => $PKI, trust => $trust, verify => undef},
                     '    SSLSessionTickets ' . ($tickets ? 'on' : 'off'),
                     map { "    $_" } @body);
}

# /t/: MTLSAuthz On; /r/: the Require mtls provider; same rule.
sub gate_and_provider {
    my ($subject) = @_;
    return (
        '<Location /t/>',
        '    MTLSAuthz On',
        "    MTLSAllowSubject $subject",
        '</Location>',
        '<Location /r/>',
        '    Require mtls',
        "    MTLSAllowSubject $subject",
        '</Location>',
    );
}

# Client verification per location: renegotiation under TLS 1.2,
# post-handshake authentication under TLS 1.3 (as mtls_reneg in
# t/conf/attack-hosts.inc.in).
my @per_location = (
    'SSLVerifyClient none',
    '<Location /t/free>',
    '    SSLVerifyClient none',
    '</Location>',
    '<Location /t/onc>',
    '    SSLVerifyClient optional_no_ca',
    '    SSLVerifyDepth 3',
    '    MTLSAuthz On',
    "    MTLSAllowSubject $ALICE",
    '</Location>',
    '<Location /r/onc>',
    '    SSLVerifyClient optional_no_ca',
    '    SSLVerifyDepth 3',
    '    Require mtls',
    "    MTLSAllowSubject $ALICE",
    '</Location>',
    '<Location /t/need>',
    '    SSLVerifyClient require',
    '    SSLVerifyDepth 3',
    '    MTLSAuthz On',
    "    MTLSAllowSubject $ALICE",
    '</Location>',
);

my @onc   = ('SSLVerifyClient optional_no_ca', 'SSLVerifyDepth 3', gate_and_provider($ALICE));
my @roots = ('SSLVerifyClient require', 'SSLVerifyDepth 3', gate_and_provider($CAROL));

my @conf = (
    head_lines(%at, dir => $dir, base => "$dir/modules.conf",
               port => [sort { $a <=> $b } values %port], timeout => 30 * $SCALE,
               loglevel => 'info mtls_authz:debug'),
    'KeepAlive On',
    # One connection per child: a resumed connection is always served by
    # another process than the handshake that made the session.
    'StartServers 1',
    'MinSpareServers 1',
    'MaxSpareServers 1',
    'MaxRequestWorkers 4',
    'MaxConnectionsPerChild 1',
    qq{SSLSessionCache "shmcb:$dir/scache(512000)"},
    'SSLSessionCacheTimeout 600',
    'SSLProtocol -all +TLSv1.2 +TLSv1.3',
    'LogFormat "%P %{SSL_SESSION_RESUMED}x %{SSL_PROTOCOL}x %>s %U %{SSL_CLIENT_VERIFY}x" resume',
    qq{CustomLog "$dir/access_log" resume},
    qq{AliasMatch "^/[tr]/" "$dir/ok.txt"},
    qq{<Directory "$dir">},
    '    Require all granted',
    '</Directory>',
    host('onc-tickets',   1, 'trust-all.crt',   @onc),
    host('onc-cache',     0, 'trust-all.crt',   @onc),
    host('roots-tickets', 1, 'trust-roots.crt', @roots),
    host('roots-cache',   0, 'trust-roots.crt', @roots),
    host('loc-tickets',   1, 'trust-all.crt',   @per_location),
    host('loc-cache',     0, 'trust-all.crt',   @per_location),
);
spew("$dir/httpd.conf", join("\n", @conf) . "\n");

my ($httpd_pid, $why) = start_server($HTTPD, "$dir/httpd.conf", $port{'onc-tickets'},
                                     30 * $SCALE);
ok($httpd_pid, 'httpd (prefork, one connection per child) starts')
  or diag($why, "\n", slurp("$dir/start.out"), slurp("$dir/error_log"));
die "cannot run: httpd did not start\n" unless $httpd_pid;

# ---- helpers -------------------------------------------------------------------

# Live children that served a request (from the access log).
my %used;

# The access log line of the request for $uri, polled for (it is written
# when the request ends): { pid, resumed, protocol, status, verify }.
sub logged {
    my ($uri) = @_;
    my $deadline = time + $WAIT;
    while (1) {
        for (split /\n/, slurp("$dir/access_log")) {
            my ($pid, $res, $proto, $st, $u, $v) =
              /^(\d+) (\S+) (\S+) (\d{3}) (\S+) ?(.*)$/ or next;
            next unless $u eq $uri;
            $used{$pid} = 1;
            return { pid => $pid, resumed => $res, protocol => $proto, status => $st,
                     verify => $v };
        }
        return { pid => 0, resumed => 'not logged', protocol => '', status => 0,
                 verify => '' } if time >= $deadline;
        sleep 0.1;
    }
}

# Whether the error log (from byte $since on) has a line matching $re,
# polled for: Require mtls logs its denial when the request ends.
sub error_logged {
    my ($re, $since) = @_;
    return log_wait("$dir/error_log", $since // 0, $re, $WAIT) =~ $re ? 1 : 0;
}

# Asserts that the error log says the request for $uri was denied as not
# verified; $status is what the client got (no denial line is waited for
# after a request that was not answered 403).
sub denied_as_not_verified {
    my ($what, $uri, $status) = @_;
    my $re = qr{client denied by server configuration: \Q$uri\E: not verified};
    my $name = "$what: the error log says $uri was denied as not verified";
    if (($status // 0) != 403) {
        ok(0, $name);
        diag("$uri was answered " . ($status // 'nothing') . ', no denial to look for');
        return;
    }
    ok(error_logged($re), $name);
}

# With one connection per child, the prefork parent forks the next child
# up to a second after the previous one exits; the listen backlog holds a
# connection meanwhile, but on a loaded machine waiting for a fresh child
# first keeps the client's time limit for the TLS exchange itself. A
# fresh child is a live child process of httpd that has served nothing
# (pids of children that are gone are forgotten: the kernel reuses them).
sub wait_fresh_child {
    my $deadline = time + $WAIT;
    while (time < $deadline) {
        my %live;
        for my $stat (glob '/proc/[0-9]*/stat') {
            my ($pid, $state, $ppid) = slurp($stat) =~ /^(\d+) \(.*\) (\S) (\d+) /s
              or next;
            $live{$pid} = 1 if $ppid == $httpd_pid && $state ne 'Z';
        }
        delete @used{ grep { !$live{$_} } keys %used };
        return 1 if grep { !$used{$_} } keys %live;
        sleep 0.05;
    }
    diag("no fresh httpd child within ${WAIT}s; the connection waits in the backlog");
    return 0;
}

# One connection with openssl s_client: GETs every path of @$paths on it
# (pipelined, the last with Connection: close). o: port, tls, cert,
# chain (file sent after the certificate), sess_out or sess_in (file).
# Returns { status => [codes in order], session => 'New'|'Reused'|'',
# file => its output }.
my $n_cli = 0;
sub s_client {
    my (%o) = @_;
    my @paths = @{ $o{paths} };
    my $n = ++$n_cli;
    my $req = join '', map {
        "GET $paths[$_] HTTP/1.1\r\nHost: localhost\r\nConnection: "
          . ($_ == $#paths ? 'close' : 'keep-alive') . "\r\n\r\n"
    } 0 .. $#paths;
    spew("$dir/cli-$n.in", $req);
    my @cmd = ($OPENSSL, 's_client', '-connect', "127.0.0.1:$o{port}",
               '-servername', 'localhost', $o{tls} eq '1.2' ? '-tls1_2' : '-tls1_3',
               '-CAfile', "$PKI/ca-a.crt",
               '-cert', "$PKI/$o{cert}.crt", '-key', "$PKI/$o{cert}.key",
               ($o{chain} ? ('-cert_chain', "$PKI/$o{chain}") : ()),
               ($o{sess_out} ? ('-sess_out', $o{sess_out}) : ()),
               ($o{sess_in} ? ('-sess_in', $o{sess_in}) : ()),
               '-ign_eof');
    wait_fresh_child();
    my ($st, $hung) = run_cmd($TIMEOUT, {in => "$dir/cli-$n.in", out => "$dir/cli-$n.out"},
                              @cmd);
    my $out = slurp("$dir/cli-$n.out");
    if ($hung) {
        spew("$dir/cli-$n.out", "$out\n[s_client did not finish within ${TIMEOUT}s]\n");
        diag("s_client did not finish within ${TIMEOUT}s: $dir/cli-$n.out");
    }
    # s_client writes what it receives straight to fd 1 but its own
    # messages through stdio, which flushes the TLS 1.3 ticket dumps later:
    # a status line can appear in the middle of a dump line.
    my @status = $out =~ m{HTTP/1\.1 (\d{3}) }g;
    my ($session) = $out =~ /\b(New|Reused), TLSv1\.[23], Cipher is /;
    # records the child as used
    logged($paths[$_]) for 0 .. $#status;
    return { status => \@status, session => $session // '', file => "$dir/cli-$n.out" };
}

# A full handshake with -sess_out, then a connection resuming that
# session with -sess_in, each with GET /t/TAG-N (MTLSAuthz On) and
# /r/TAG-N (Require mtls). Asserts $want for every request, that the
# second connection was resumed (client and server) in another child,
# and for 403s that the error log says "not verified".
sub full_then_resumed {
    my ($what, $tag, $want, %o) = @_;
    my $sess = "$dir/sess-$tag.pem";
    my @full = ("/t/$tag-full", "/r/$tag-full");
    my @res  = ("/t/$tag-resumed", "/r/$tag-resumed");

    my $c = s_client(%o, sess_out => $sess, paths => \@full);
    my $r = s_client(%o, sess_in => $sess, paths => \@res);
    my ($lf, $lr) = (logged($full[0]), logged($res[0]));
    my %server = ($c => $lf, $r => $lr);
    for ([$c, 'full handshake', \@full], [$r, 'resumed', \@res]) {
        my ($cli, $how, $paths) = @$_;
        my @gate = ('MTLSAuthz On', 'Require mtls');
        for my $i (0, 1) {
            is($cli->{status}[$i] // 0, $want, "$what, $how, $gate[$i]: $want")
              or diag("server: pid $server{$cli}{pid}, $server{$cli}{resumed}, "
                      . "SSL_CLIENT_VERIFY $server{$cli}{verify}; s_client output "
                      . "in $cli->{file}");
        }
    }
    is($c->{session}, 'New', "$what, full handshake: s_client says New");
    like(slurp($sess), qr/-----BEGIN SSL SESSION PARAMETERS-----/,
         "$what: s_client saved the session (for TLS 1.3: a ticket) to resume");
    is($r->{session}, 'Reused', "$what: s_client says Reused");
    is($lf->{resumed}, 'Initial', "$what: the server logs the first connection as Initial");
    is($lr->{resumed}, 'Resumed', "$what: the server logs the second connection as Resumed");
    ok($lf->{pid} && $lr->{pid} && $lf->{pid} != $lr->{pid},
       "$what: another child process resumed the session (pids $lf->{pid}, $lr->{pid})");
    if ($want == 403) {
        denied_as_not_verified($what, $full[$_], $c->{status}[$_]) for 0, 1;
        denied_as_not_verified($what, $res[$_], $r->{status}[$_]) for 0, 1;
        # TLS 1.2: mod_ssl reads SUCCESS on the resumed session; only the
        # verify result stored in the session refuses it, and the log says so.
        if ($o{tls} eq '1.2') {
            ok(error_logged(qr{\Q$res[0]\E: not verified: [^;]*\(the TLS session's verify result\)}),
               "$what: the resumed denial names the TLS session's verify result");
        }
    }
}

# A client session cache holding the one session the test puts in it
# (IO::Socket::SSL offers it on the next connection). Sessions that
# IO::Socket::SSL hands over (with a reference taken for the cache) are
# released: the test picks its own. add_session's value is the new
# session callback's: 0 tells OpenSSL that it kept no reference.
{
    package PinnedSession;
    sub new { return bless { session => undef }, shift }
    sub get_session { return $_[0]{session} }
    sub add_session { Net::SSLeay::SESSION_free($_[2]) if $_[2]; return 0 }
    sub del_session { return 0 }
    sub replace_session { Net::SSLeay::SESSION_free($_[2]) if $_[2]; return 0 }
}

# A client context presenting $cert (when the server asks) with a
# PinnedSession cache. The connections of one case share it: freeing a
# context marks the sessions in its cache as not resumable.
sub client_ctx {
    my ($tls, $cert) = @_;
    my $cache = PinnedSession->new;
    my $ctx = IO::Socket::SSL::SSL_Context->new(
        client_ssl_opts($PKI, cert => $cert, tls => $tls), SSL_session_cache => $cache)
      or die "SSL context: $IO::Socket::SSL::SSL_ERROR";
    return { ctx => $ctx, cache => $cache };
}

# One connection with IO::Socket::SSL offering the session $o{offer}
# (undef: none), with the requests of $o{steps} ([path prefix, want],
# the path is PREFIX/TAG), within $TIMEOUT seconds in all (reads have no
# time limit of their own). Asserts each status. Returns { reused (the
# client's view), status => [...], first => the session after the first
# request (before any renegotiation or post-handshake auth), last => the
# session at the end, log => the access log line of the first request }.
sub one_connection {
    my ($what, %o) = @_;
    my @steps = @{ $o{steps} };
    my %r = (reused => 0, status => []);
    $o{client}{cache}{session} = $o{offer};
    wait_fresh_child();
    my ($sock, $err);
    my $done = eval {
        local $SIG{ALRM} = sub { die "no answer within ${TIMEOUT}s\n" };
        alarm $TIMEOUT;
        $sock = IO::Socket::SSL->new(
            PeerHost => '127.0.0.1', PeerPort => $o{port}, Timeout => $TIMEOUT,
            SSL_hostname => 'localhost', SSL_reuse_ctx => $o{client}{ctx},
            SSL_verifycn_name => 'localhost', SSL_verifycn_scheme => 'http',
            SSL_session_key => 'pinned')
          or die "connect: $IO::Socket::SSL::SSL_ERROR $!\n";
        $r{reused} = $sock->get_session_reused ? 1 : 0;
        my $ssl = $sock->_get_ssl_object;
        for my $s (@steps) {
            my ($st) = MTLS::get_on($sock, "$s->[0]/$o{tag}", keepalive => 1);
            push @{ $r{status} }, $st;
            $r{first} //= Net::SSLeay::get1_session($ssl);
        }
        $r{last} = Net::SSLeay::get1_session($ssl);
        alarm 0;
        1;
    };
    alarm 0;
    $err = $@ unless $done;
    ok($sock, "$what: connected") or diag($err);
    diag("$what: $err") if $sock && !$done;
    $sock->close(SSL_fast_shutdown => 1) if $sock;
    for my $i (0 .. $#steps) {
        my ($prefix, $want) = @{ $steps[$i] };
        $r{status}[$i] //= 0;
        is($r{status}[$i], $want, "$what: $prefix: $want");
    }
    # A connection closed at the handshake leaves no access log line.
    $r{log} = $r{status}[0] ? logged("$steps[0][0]/$o{tag}") : { resumed => 'no request',
                                                                 pid => 0 };
    return \%r;
}

# ---- optional_no_ca at the host: self-signed, untrusted, legitimate ------------

for my $tls ('1.2', '1.3') {
    for my $store ('cache', 'tickets') {
        my $host = "onc-$store";
        my $how = $store eq 'tickets' ? 'session tickets' : 'shmcb session cache';
        for my $case (['self-signed', 403], ['untrusted', 403], ['alice-a', 200]) {
            my ($cert, $want) = @$case;
            (my $tag = "onc-$tls-$store-$cert") =~ tr/./_/;
            full_then_resumed("TLS $tls, $how, optional_no_ca, $cert", $tag, $want,
                              port => $port{$host}, tls => $tls, cert => $cert);
        }
    }
}

# ---- a chain through an intermediate the trust store lacks ---------------------

# Control: without its intermediate, carol is refused at the handshake,
# so the trust store really holds the roots only.
{
    my $mark = -s "$dir/error_log" // 0;
    my $c = s_client(port => $port{'roots-cache'}, tls => '1.2', cert => 'carol-int',
                     paths => ['/t/carol-no-chain']);
    is(scalar @{ $c->{status} }, 0,
       'carol-int without int-a against the roots-only trust store: no HTTP response')
      or diag("s_client output in $c->{file}");
    ok(error_logged(qr/Certificate Verification: Error \(20\)/, $mark),
       'carol-int without int-a: "unable to get local issuer certificate"');
}
for my $tls ('1.2', '1.3') {
    for my $store ('cache', 'tickets') {
        my $how = $store eq 'tickets' ? 'session tickets' : 'shmcb session cache';
        (my $tag = "roots-$tls-$store-carol") =~ tr/./_/;
        full_then_resumed("TLS $tls, $how, require with roots only, carol + int-a", $tag,
                          200, port => $port{"roots-$store"}, tls => $tls,
                          cert => 'carol-int', chain => 'int-a.crt');
    }
}

# ---- renegotiation (TLS 1.2) and post-handshake authentication (TLS 1.3) ------

# The "not verified" denials of the /onc requests of connections.
sub onc_denials_logged {
    my ($what, $tag, $conn, @steps) = @_;
    for my $i (0 .. $#steps) {
        my ($prefix, $want) = @{ $steps[$i] };
        next unless $want == 403 && $prefix =~ m{/onc$};
        denied_as_not_verified($what, "$prefix/$tag", $conn->{status}[$i]);
    }
}

# Asserts that connection $b resumed a session that $a made.
sub resumed_elsewhere {
    my ($what, $a, $b) = @_;
    ok($b->{reused}, "$what: the client resumed the session");
    is($b->{log}{resumed}, 'Resumed', "$what: the server logs the first request as Resumed");
    ok($a->{log}{pid} && $b->{log}{pid} && $a->{log}{pid} != $b->{log}{pid},
       "$what: another child process resumed the session "
       . "(pids $a->{log}{pid}, $b->{log}{pid})");
}

# The certificate is asked for in /onc (optional_no_ca) and /t/need
# (require). A: a full handshake, then renegotiation or post-handshake
# auth. B: a connection offering the session A ended with. C: a
# connection offering the session A had before it was asked for a
# certificate, which the server resumes; the certificate is then asked
# for again on the resumed connection.
for my $tls ('1.2', '1.3') {
    my $how = $tls eq '1.2' ? 'renegotiation' : 'post-handshake auth';
    for my $store ('cache', 'tickets') {
        my $sh = $store eq 'tickets' ? 'session tickets' : 'shmcb session cache';
        for my $cert ('self-signed', 'untrusted', 'alice-a') {
            my $good = $cert eq 'alice-a';
            my @steps = $good
              ? (['/t/free', 200], ['/t/need', 200], ['/t/onc', 200], ['/r/onc', 200])
              : (['/t/free', 200], ['/t/onc', 403], ['/r/onc', 403]);
            (my $tag = "loc-$tls-$store-$cert") =~ tr/./_/;
            my $what = "TLS $tls $how, $sh, $cert";
            my %c = (port => $port{"loc-$store"}, client => client_ctx($tls, $cert));

            my $A = one_connection("$what, first connection", %c, tag => "$tag-a",
                                   steps => \@steps);
            ok(!$A->{reused}, "$what, first connection: a full handshake");
            is($A->{log}{resumed}, 'Initial', "$what, first connection: logged as Initial");
            onc_denials_logged("$what, first connection", "$tag-a", $A, @steps);

            my $mark = -s "$dir/error_log" // 0;
            if ($tls eq '1.2') {
                # mod_ssl gives the session id context a per-request
                # value before it renegotiates, so the session made by
                # the renegotiation is not resumed on a new connection:
                # the client gets a full handshake and is asked again.
                my $B = one_connection("$what, offering the renegotiated session", %c,
                                       tag => "$tag-b", offer => $A->{last},
                                       steps => \@steps);
                ok(!$B->{reused}, "$what, offering the renegotiated session: not resumed");
                is($B->{log}{resumed}, 'Initial',
                   "$what, offering the renegotiated session: logged as Initial");
                onc_denials_logged("$what, offering the renegotiated session", "$tag-b",
                                   $B, @steps);
            }
            elsif (!$good) {
                # The server sends a new ticket after post-handshake
                # auth; resuming it brings back the certificate with its
                # failed verify result, which mod_ssl refuses at the
                # handshake on a host that does not verify (AH02010): no
                # response at all.
                my @none = map { [$_->[0], 0] } @steps;
                my $B = one_connection("$what, resuming the ticket sent after "
                                       . 'post-handshake auth', %c, tag => "$tag-b",
                                       offer => $A->{last}, steps => \@none);
                ok($B->{reused}, "$what, resuming the ticket sent after post-handshake "
                   . 'auth: the client resumed it');
                ok(error_logged(qr/AH02010: SSL client authentication failed/, $mark),
                   "$what, resuming the ticket sent after post-handshake auth: mod_ssl "
                   . 'refused it (AH02010)');
            }
            else {
                # alice's ticket from after post-handshake auth: resumed
                # with her verified certificate.
                my $B = one_connection("$what, resuming the ticket sent after "
                                       . 'post-handshake auth', %c, tag => "$tag-b",
                                       offer => $A->{last}, steps => \@steps);
                resumed_elsewhere("$what, resuming the ticket sent after post-handshake auth",
                                  $A, $B);
            }

            my $C = one_connection("$what, resuming the session from before $how", %c,
                                   tag => "$tag-c", offer => $A->{first}, steps => \@steps);
            resumed_elsewhere("$what, resuming the session from before $how", $A, $C);
            onc_denials_logged("$what, resuming the session from before $how", "$tag-c",
                               $C, @steps);
        }
    }
}

# ---- the whole run ----------------------------------------------------------

# TERM, not stop_server's graceful stop: under prefork a graceful stop
# races with the children the parent is still spawning (the accept mutex
# is gone when a new child releases it: "AH00050: Child ... returned a
# Fatal error"), and prefork has none of the event MPM's socket race
# that the graceful stop avoids.
my $st = kill_group($httpd_pid);
my $log = slurp("$dir/error_log");
unlike($log, $CRASH, 'no crash in the error log');
diag('httpd stopped: ' . describe_status($st));

done_testing();
