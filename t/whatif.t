# What-if: `mtls-authz-rule --check` and a real httpd agree on every client
# certificate of the test PKI, for several rule configurations; and
# `--diff` between two configurations lists exactly the certificates
# whose answer from the server changed.
#
# Each configuration is one file, cN.conf, that a <Location /cN/> of the
# server Includes and that the tool reads as its --config: the same
# lines, the same rule files (relative to ServerRoot, which is the
# directory of the files), so the sources ("file:line") must agree too.
# The host verifies clients with SSLVerifyClient optional_no_ca, so that
# certificates mod_ssl cannot verify reach the module (and are refused
# there with 403) unless mod_ssl itself ends the handshake.
#
# Time-boxed rules are placed days around this test's own clock: no
# decision depends on when within those days it runs, and nothing sleeps.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use IO::Socket::SSL ();
use JSON::PP ();
use Net::SSLeay ();
use POSIX qw(strftime);
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(locate missing_prereqs slurp spew run_cmd case_dir free_port
  head_lines ssl_vhost_lines config_test start_server stop_server
  client_ssl_opts describe_status pins $CRASH);

my %at = locate(__FILE__);
my ($HTTPD, $T_DIR, $TOP, $PKI) = @at{qw(httpd t_dir top pki)};
my $TOOL = "$TOP/build/mtls-authz-rule";

my @missing = missing_prereqs(%at, need_pki => 1);
push @missing, "$TOOL is missing (run make)" unless -x $TOOL;
push @missing, "$T_DIR/pki/README.md is missing" unless -s "$T_DIR/pki/README.md";
if (@missing) {
    plan tests => 1;
    ok(0, 'preconditions: httpd, module, tool, PKI') or diag(join "\n", @missing);
    exit 0;
}

my %FP = pins($PKI);
my $dir = case_dir($at{cfg}, 'whatif', 'docs');
spew("$dir/docs/ok.txt", "ok\n");

my $n_run = 0;
# (exit code, stdout, stderr) of the tool; 255 if it did not finish.
sub tool {
    my $id = ++$n_run;
    my ($o, $e) = ("$dir/tool$id.out", "$dir/tool$id.err");
    my ($st, $hung) = run_cmd(60, {out => $o, err => $e}, $TOOL, @_);
    return (($hung ? 255 : $st >> 8), slurp($o), slurp($e));
}

# ---- the clients: every certificate of t/pki/README.md's client tables ------

# The first column of the tables under "## Clients" (and its
# subsections), up to the next "## ": every client certificate the PKI
# makes, and the chain files the rows name (carol-int-chain).
sub pki_clients {
    my ($readme) = @_;
    my ($clients) = $readme =~ /^## Clients\b(.*?)(?=^## )/ms;
    my %seen;
    for my $row (grep { /^\|\s*`/ } split /\n/, $clients // '') {
        my ($name) = $row =~ /^\|\s*`([\w-]+)`/;
        $seen{$name} = 1 if $name;
        $seen{$1} = 1 while $row =~ /`([\w-]+)\.pem` =/g;
    }
    return sort keys %seen;
}
my @clients = pki_clients(slurp("$T_DIR/pki/README.md"));
my @no_pem = grep { !-s "$PKI/$_.pem" } @clients;
ok(@clients >= 30 && !@no_pem,
   scalar(@clients) . ' client certificates listed in t/pki/README.md, each with its .pem')
  or diag("listed: @clients\nwithout a .pem: @no_pem");
@clients = grep { -s "$PKI/$_.pem" } @clients;

# ---- the configurations ---------------------------------------------------------

# Instants days away from now (RFC 3339), and dates around today (UTC).
sub instant { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + $_[0] * 86400)) }
sub date    { strftime('%Y-%m-%d', gmtime(time + $_[0] * 86400)) }
my ($PAST, $SOON) = (instant(-2), instant(2));

my ($A, $B, $I) = map { "sha256:$FP{$_}" } qw(FP_CA_A FP_CA_B FP_INT_A);
my $ALICE = '"subject=CN=alice,O=Acme Inc.,C=US"';
my $BOB   = '"subject=CN=bob,O=Acme Inc.,C=US"';
my $DAVE  = '"subject=CN=dave,OU=Payments,O=Acme Inc.,C=US"';

# dave-a's issuer + serial deny line, as the tool prints it (commented
# out) with --deny: the server must read it as the tool does.
my (undef, $deny_out) = tool('--deny', '--ca', "$PKI/trust-all.crt", "$PKI/dave-a.crt");
my ($DAVE_SERIAL) = $deny_out =~ /^# (MTLSDeny issuer=sha256:[0-9a-f]{64} serial=[0-9A-F]+)$/m;
ok($DAVE_SERIAL, 'mtls-authz-rule --deny prints an issuer + serial line for dave-a')
  or diag($deny_out);
$DAVE_SERIAL //= 'MTLSDeny cert=sha256:' . ('0' x 64);

my %files = (
    # An allow file: people of CA A, the prod namespace of the
    # intermediate, a domain of CA A, one pinned certificate.
    'allow1.txt' => ['# allow file', "$ALICE issuer=$A", "MTLSAllow $BOB issuer=$A",
                     "san=URI:spiffe://example.org/ns/prod/* issuer=$I",
                     "san=DNS:.example.com issuer=$A", "cert=sha256:$FP{FP_CERT_ALICE_B}",
                     '"subject=CN=nul-dns"'],
    # A deny file: one certificate, one issuer + serial, CA B's names in
    # a domain, a subject.
    'deny2.txt' => ['# deny file', "MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}", $DAVE_SERIAL,
                    "san=DNS:.example.com issuer=$B", '"subject=CN=many-sans"'],
    # Windows around now: current, expired, not yet; a date window.
    'time3.txt' => ['# time-boxed', "$ALICE issuer=$A not_before=$PAST not_after=$SOON",
                    "$BOB issuer=$A not_after=$PAST",
                    "san=URI:spiffe://example.org/ns/prod/* not_before=$SOON",
                    "$DAVE not_before=" . date(-1) . ' not_after=' . date(1)],
    # A future deny, an expired deny, a current one.
    'time3-deny.txt' => ["MTLSDeny cert=sha256:$FP{FP_CERT_ALICE_A} not_before=$SOON",
                         "MTLSDeny $DAVE not_after=$PAST",
                         "cert=sha256:$FP{FP_CERT_UPPER_A} not_before=$PAST not_after=$SOON"],
);
my %configs = (
    c1 => ['MTLSAllowFile allow1.txt'],
    c2 => ['MTLSAllowFile allow1.txt', 'MTLSDenyFile deny2.txt'],
    c3 => ['MTLSAllowFile time3.txt', 'MTLSDenyFile time3-deny.txt'],
    # Issuer pins alone: every client of CA B and of the intermediate.
    c4 => ["MTLSAllowIssuerFingerprint $B $I"],
    # An issuer pin over name rules, and an inline deny.
    c5 => ["MTLSAllowIssuerFingerprint $A",
           'MTLSAllowSubject "CN=alice,O=Acme Inc.,C=US" "CN=bob,O=Acme Inc.,C=US"',
           'MTLSAllowSAN DNS:dave.example.com', 'MTLSAllow san=IP:192.0.2.0/24',
           "MTLSDeny $BOB"],
);
spew("$dir/$_", join("\n", @{ $files{$_} }) . "\n") for keys %files;
spew("$dir/$_.conf", join("\n", @{ $configs{$_} }) . "\n") for keys %configs;
my @cfg = sort keys %configs;

# ---- the tool's decisions ---------------------------------------------------------

my @pems = map { "$PKI/$_.pem" } @clients;
my %decision;    # config => client => {decision, rule, reason, ...}
for my $c (@cfg) {
    my ($rc, $out, $err) = tool('--check', '--config', "$dir/$c.conf", '--ca',
                                "$PKI/trust-all.crt", '--format', 'json', @pems);
    my $doc = eval { JSON::PP::decode_json($out) };
    my @res = $doc ? @{ $doc->{certificates} } : ();
    my $refused = grep { $_->{decision} eq 'refuse' } @res;
    ok($rc == ($refused ? 4 : 0) && @res == @pems,
       "$c: --check decides all " . scalar(@pems) . " certificates, exit $rc")
      or diag("exit $rc\n$err$out");
    for my $r (@res) {
        my ($name) = $r->{cert} =~ m{([^/]+)\.pem$};
        $decision{$c}{$name} = $r;
    }
}

# ---- the server --------------------------------------------------------------------

my $port = free_port();
my $conf = "$dir/httpd.conf";
spew($conf, join("\n",
    head_lines(%at, dir => $dir, port => $port, docroot => "$dir/docs",
               loglevel => 'warn mtls_authz:info'),
    qq{AliasMatch "^/c\\d/" "$dir/docs/ok.txt"},
    qq{<Directory "$dir/docs">}, '    Require all granted', '</Directory>',
    ssl_vhost_lines(port => $port, pki => $PKI, verify => 'optional_no_ca'),
    '    SSLVerifyDepth 3',
    # A 64 KiB subject does not fit into a session ticket.
    '    SSLSessionTickets off',
    (map { ("    <Location /$_/>", '        MTLSAuthz On', qq{        Include "$dir/$_.conf"},
            '    </Location>') } @cfg),
    '</VirtualHost>') . "\n");

my ($st, $t_out) = config_test($HTTPD, $conf, 30);
ok($st == 0, 'httpd -t accepts the configurations (' . describe_status($st) . ')')
  or diag($t_out);
my ($pid, $why) = start_server($HTTPD, $conf, $port, 20, "$dir/error_log");
ok($pid, "httpd starts on 127.0.0.1:$port")
  or diag($why, "\n", slurp("$dir/start.out"), slurp("$dir/error_log"));

# One GET as the client $name: the certificate chain and key of its .pem,
# at security level 0 (an OpenSSL 3 client sends the PKI's malformed
# certificates only so, and loads them only as a single certificate).
# Status 0: no HTTP response (no handshake). $name undef: no client
# certificate at all.
sub status {
    my ($path, $name) = @_;
    my $pem = defined $name ? "$PKI/$name.pem" : undef;
    my $s = eval { IO::Socket::SSL->new(
        PeerHost => '127.0.0.1', PeerPort => $port, Timeout => 10,
        SSL_hostname => 'localhost', client_ssl_opts($PKI),
        !defined $pem ? () : (SSL_create_ctx_callback => sub {
            my ($ctx) = @_;
            Net::SSLeay::CTX_set_security_level($ctx, 0);
            (Net::SSLeay::CTX_use_certificate_chain_file($ctx, $pem)
               || Net::SSLeay::CTX_use_certificate_file($ctx, $pem, Net::SSLeay::FILETYPE_PEM()))
              && Net::SSLeay::CTX_use_PrivateKey_file($ctx, $pem, Net::SSLeay::FILETYPE_PEM())
              or die "cannot use $pem\n";
        })) };
    return -2 if $@;    # the client could not load its certificate
    return 0 unless $s;
    print $s "GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    my $line = <$s> // '';
    close $s;
    return $line =~ m{^HTTP/1\.\d (\d{3})} ? $1 : 0;
}

my %status;    # config => client => status
my %nocert;    # config => status of a client that sends no certificate
for my $c (@cfg) {
    $status{$c}{$_} = $pid ? status("/$c/$_", $_) : -1 for @clients;
    $nocert{$c} = $pid ? status("/$c/nocert", undef) : -1;
}
my $killed = 1;
(undef, $killed) = stop_server($pid, 15) if $pid;
ok(!$killed, 'httpd stops gracefully');
my $log = slurp("$dir/error_log");
ok($log !~ $CRASH, 'no crash in the error log') or diag(join "\n", grep { /$CRASH/ } split /\n/, $log);

# The module's reason for each refused request, from its log line.
my %logged;    # uri => reason
$logged{$1} = $2
  while $log =~ /client denied by server configuration: (\S+): (.*?); subject "/g;

# ---- agreement ------------------------------------------------------------------------

# What mod_ssl lets through unverified under optional_no_ca
# (ssl_verify_error_is_optional): a missing or untrusted issuer. Any
# other verification error ends the handshake.
my %OPTIONAL = map { $_ => 1 } ('self-signed certificate',
  'self-signed certificate in certificate chain', 'unable to get local issuer certificate',
  'certificate not trusted', 'unable to verify the first certificate');

# The status the server must answer for the tool's decision $d.
sub expected {
    my ($d) = @_;
    return 200 if $d->{decision} eq 'admit';
    return 0 if $d->{reason} =~ /^not verified: (.*)$/ && !$OPTIONAL{$1};
    return 403;
}

my (%kinds, %changed);
for my $c (@cfg) {
    my (@wrong, @reason, $admitted, $refused);
    for my $n (@clients) {
        my $d = $decision{$c}{$n};
        my $got = $status{$c}{$n};
        if (!$d) {
            push @wrong, "$n: no decision from the tool";
            next;
        }
        my $want = expected($d);
        push @wrong, "$n: server $got, tool $d->{decision} ("
          . ($d->{reason} // $d->{rule}) . "), so want $want" if $got != $want;
        $admitted++ if $got == 200;
        $refused++ if $got != 200;
        next if $d->{decision} eq 'admit';
        (my $kind = $d->{reason}) =~ s/^(denied by|rule \S+ expired|rule \S+ not yet valid|not verified).*/$1/;
        $kind =~ s/^rule \S+ /rule /;
        $kinds{$kind}++;
        next if $got != 403;
        # Unverified: the server names its own view of the failure.
        my $srv = $logged{"/$c/$n"} // '(no log line)';
        push @reason, "$n: server '$srv', tool '$d->{reason}'"
          unless $d->{reason} =~ /^not verified: / ? $srv =~ /^not verified: /
                                                   : $srv eq $d->{reason};
    }
    ok(!@wrong && $admitted && $refused,
       "$c: the server's status is the tool's decision for all " . scalar(@clients)
       . ' certificates (' . ($admitted // 0) . ' admitted, ' . ($refused // 0) . ' refused)')
      or diag(join "\n", @wrong);
    ok(!@reason, "$c: every 403 is logged with the tool's reason (same file:line)")
      or diag(join "\n", @reason);
}
# No certificate: no rule, allow or deny, is even asked (the tool needs
# a certificate, so this is the server alone).
for my $c (@cfg) {
    my $srv = $logged{"/$c/nocert"} // '(no log line)';
    ok($nocert{$c} == 403 && $srv eq 'no certificate',
       "$c: a client without a certificate gets 403, logged 'no certificate'")
      or diag("status $nocert{$c}, log '$srv'");
}
my @want_kinds = ('denied by', 'rule expired', 'rule not yet valid', 'issuer not allowed',
                  'no rule matched', 'not verified');
my @absent = grep { !$kinds{$_} } @want_kinds;
ok(!@absent, 'the configurations refuse for every kind of reason: ' . join(', ', @want_kinds))
  or diag('never: ' . join(', ', @absent));

# ---- --diff ----------------------------------------------------------------------------

for my $pair (['c1', 'c2'], ['c1', 'c3'], ['c2', 'c3'], ['c4', 'c5']) {
    my ($old, $new) = @$pair;
    my @server = grep { ($status{$old}{$_} == 200) != ($status{$new}{$_} == 200) } @clients;
    my ($rc, $out, $err) = tool('--diff', "$dir/$old.conf", "$dir/$new.conf", '--ca',
                                "$PKI/trust-all.crt", '--format', 'tsv', @pems);
    my @rows = split /\n/, $out;
    my $head = shift @rows // '';
    my @tool = sort map { m{^[^\t]*/([^/\t]+)\.pem\t} ? $1 : "?$_" } @rows;
    ok($head eq "cert\told\told_rule\told_reason\tnew\tnew_rule\tnew_reason"
         && $rc == (@server ? 4 : 0) && "@tool" eq join(' ', sort @server) && @server,
       "--diff $old $new: exit $rc, lists exactly the " . scalar(@server)
       . " certificates whose status changed")
      or diag("exit $rc\n$err\ntool:   @tool\nserver: @server");
}
{
    my ($rc, $out) = tool('--diff', "$dir/c1.conf", "$dir/c1.conf", '--ca',
                          "$PKI/trust-all.crt", @pems);
    ok($rc == 0 && $out eq '', '--diff c1 c1: nothing changed, exit 0, nothing printed')
      or diag("exit $rc\n$out");
}

done_testing();
