# mtls-authz-rule (tools/mtls-authz-rule.c): what it prints admits the
# certificate in a real httpd + mod_ssl, and a different certificate is
# refused; golden outputs byte for byte; errors and exit codes.
#
# Like t/startup.t, this file runs the httpd binary itself, on its own
# free loopback port, with a configuration made of the tool's output
# (t/logs/cfg/rule_tool/). Besides t/pki/out it makes a few certificates
# with awkward subjects and SANs (quotes, backslashes, '+', '#', leading
# spaces, ${...}, UTF-8, control characters, NumericString, BMPString
# and an oversized UTF8String country, an empty subject), signed by CA A.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use JSON::PP ();
use POSIX ();
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(locate missing_prereqs free_port slurp spew run_cmd must_run
  describe_status case_dir head_lines ssl_vhost_lines config_test start_server
  stop_server https_status pins);

my %at = locate(__FILE__);
my ($HTTPD, $T_DIR, $TOP, $PKI) = @at{qw(httpd t_dir top pki)};
my $TOOL = "$TOP/build/mtls-authz-rule";
my $DIR  = "$at{cfg}/rule_tool";

my @missing = missing_prereqs(%at, need_pki => 1);
push @missing, "$TOOL is missing (run make)" unless -x $TOOL;
push @missing, "$PKI/forge is missing" unless -x "$PKI/forge";
die "cannot run: @missing\n" if @missing;

my %FP = pins($PKI);

case_dir($at{cfg}, 'rule_tool', 'pki');

# Runs a command with a time limit in directory $cwd: (exit code, stdout,
# stderr). A command that does not finish counts as exit 255.
my $n_run = 0;
sub run_in {
    my ($cwd, @cmd) = @_;
    my $id = ++$n_run;
    my ($o, $e) = ("$DIR/run$id.out", "$DIR/run$id.err");
    my ($st, $hung) = run_cmd(30, {cwd => $cwd, out => $o, err => $e}, @cmd);
    return (($hung ? 255 : $st >> 8), slurp($o), slurp($e));
}

sub tool { run_in($PKI, $TOOL, @_) }

# ---- awkward certificates, signed by CA A ---------------------------------

# name => [forge arguments (subject, '-ext' options)]
my %forged = (
    'q-quote'   => ['C=US', 'CN=a "quoted" \\\\ back\\\\'],
    'q-hash'    => ['CN=#hash'],
    'q-spaces'  => ['CN= lead and  inner and trail '],
    'q-special' => ['CN=plus+sign;semi<lt>gt=eq,comma'],
    'q-dollar'  => ['CN=${HOME}$x'],
    'q-utf8'    => ['O=Acme', 'CN=M\\xc3\\xbcller \\xe2\\x82\\xac'],
    'q-control' => ['CN=tab\\x09ctl\\x01'],
    'q-inn'     => ['INN=123456789012', 'CN=numeric'],
    'q-multi'   => ['CN=a', '+CN=b', '+O=c'],
    'q-oid'     => ['1.2.3.4=unknown oid', 'CN=oid'],
    # TYPE#=HEX: this DER as the value (t/pki/forge.c)
    'q-der-c'   => ['C#=0c03555341', 'CN=utf8 country'],   # UTF8String "USA"
    'q-bmp'     => ['CN#=1e0400410042'],                    # BMPString "AB"
    'q-numeric' => ['CN#=120131'],                          # NumericString "1"
    'q-san'     => ['-ext', 'subjectAltName=URI:spiffe://x/a"b\\,'
                      . 'URI:spiffe://x/p/*,DNS:${HOME}.example',
                    'CN=san quote'],
    # No suffix rule: a top-level parent, an empty label
    # and a leading dot, which a rule reads as a suffix
    'q-tld'     => ['-ext', 'subjectAltName=DNS:example.com,DNS:a..b.example,'
                      . 'DNS:.lead.example', 'CN=tld'],
);
for my $name (sort keys %forged) {
    my @a = @{ $forged{$name} };
    my @ext;
    push @ext, splice(@a, 0, 2) while @a && $a[0] eq '-ext';
    must_run("$DIR/cmd.out", "forge $name", "$PKI/forge", @ext, "$PKI/ca-a.crt",
             "$PKI/ca-a.key", "$PKI/alice-a.key", "$DIR/pki/$name.crt", @a);
}
# An empty subject with only a URI SAN, as SPIFFE certificates have.
spew("$DIR/pki/empty.ext", "basicConstraints=CA:FALSE\n"
     . "extendedKeyUsage=clientAuth\n"
     . "subjectAltName=critical,URI:spiffe://example.org/ns/prod/sa/empty\n");
must_run("$DIR/cmd.out", 'empty csr', 'openssl', 'req', '-new', '-key', "$PKI/alice-a.key",
         '-subj', '/CN=x', '-out', "$DIR/pki/empty.csr");
must_run("$DIR/cmd.out", 'empty crt', 'openssl', 'x509', '-req', '-in', "$DIR/pki/empty.csr",
         '-CA', "$PKI/ca-a.crt", '-CAkey', "$PKI/ca-a.key", '-subj', '/',
         '-days', '2', '-extfile', "$DIR/pki/empty.ext",
         '-out', "$DIR/pki/q-empty.crt");
$forged{'q-empty'} = [];
for my $name (keys %forged) {
    spew("$DIR/pki/$name.pem",
         slurp("$DIR/pki/$name.crt") . slurp("$PKI/alice-a.key"));
}

# ---- the cases --------------------------------------------------------------

# [name, tool arguments (run in t/pki/out), client .pem, a different
#  client that the same rules must refuse]
my @cases = (
    ['alice-a',      ['--ca', 'trust-all.crt', 'alice-a.crt'], 'alice-a', 'alice-b'],
    ['alice-b',      ['--ca', 'trust-all.crt', 'alice-b.crt'], 'alice-b', 'alice-a'],
    ['carol-chain',  ['carol-int-chain.pem'], 'carol-int-chain', 'alice-a'],
    ['dave-a',       ['--ca', 'ca-a.crt', 'dave-a.crt'], 'dave-a', 'alice-a'],
    ['upper-a',      ['--ca', 'ca-a.crt', 'upper-a.crt'], 'upper-a', 'bob-a'],
    ['inject-comma', ['--ca', 'ca-a.crt', 'inject-comma.crt'], 'inject-comma', 'alice-a'],
    ['inject-slash', ['--ca', 'ca-a.crt', 'inject-slash.crt'], 'inject-slash', 'alice-a'],
    ['multi-rdn',    ['--ca', 'ca-a.crt', 'multi-rdn.crt'], 'multi-rdn', 'sep-rdn'],
    ['sep-rdn',      ['--ca', 'ca-a.crt', 'sep-rdn.crt'], 'sep-rdn', 'multi-rdn'],
    ['wildcard',     ['--ca', 'ca-a.crt', 'wildcard.crt'], 'wildcard', 'alice-a'],
    ['ipv6-full',    ['--ca', 'ca-a.crt', 'ipv6-full.crt'], 'ipv6-full', 'alice-a'],
    ['bob-a',        ['--ca', 'ca-a.crt', 'bob-a.crt'], 'bob-a', 'alice-a'],
    ['nul-cn',       ['--ca', 'ca-a.crt', 'nul-cn.crt'], 'nul-cn', 'alice-a'],
    ['nul-dns',      ['--ca', 'ca-a.crt', 'nul-dns.crt'], 'nul-dns', 'alice-a'],
    ['alice-nofp',   ['alice-a.crt'], 'alice-a', 'alice-b'],
    (map { [$_, ['--ca', 'ca-a.crt', "$DIR/pki/$_.crt"], "$DIR/pki/$_", 'alice-a'] }
       sort keys %forged),
);
# --issuer: [name, CA file, admitted client, refused client]
my @issuers = (
    ['issuer-a',   'ca-a.crt',  'alice-a',         'alice-b'],
    ['issuer-int', 'int-a.crt', 'carol-int-chain', 'alice-a'],
);

# --deny: [name, tool arguments, refused client, a client that the same
#  lines must still admit]. revoked-a holds alice-a's very names: only
#  its certificate and serial number set it apart.
my @denies = (
    ['deny-alice-a', ['--ca', 'trust-all.crt', 'alice-a.crt'], 'alice-a', 'alice-b'],
    ['deny-revoked', ['--ca', 'ca-a.crt', 'revoked-a.crt'], 'revoked-a', 'alice-a'],
    ['deny-carol',   ['carol-int-chain.crt'], 'carol-int-chain', 'alice-a'],
    ['deny-bob',     ['--ca', 'ca-a.crt', 'bob-a.crt'], 'bob-a', 'alice-a'],
    ['deny-nul-cn',  ['--ca', 'ca-a.crt', 'nul-cn.crt'], 'nul-cn', 'alice-a'],
    ['deny-nofp',    ['alice-a.crt'], 'alice-a', 'alice-b'],
);

plan tests => 5 * @cases + 4 * @issuers + 5 * @denies + 40 + 34;

# A suffix or network alternative admits every name in a domain or
# address in a network, the other client of a case too: it must admit
# the client, and refuse alice-b (or for alice-b's rules alice-a), which
# holds the same names but is issued by another CA than the one these
# rules pin.
my $OTHER_CA = 'alice-b';
sub is_broad { $_[0] =~ /\bsan=(?:DNS:\.|IP:\S+\/)/ }

# ---- run the tool on every case -------------------------------------------

my (@conf, @requests, @all_output);
for my $c (@cases) {
    my ($name, $args, $client, $other) = @$c;
    my ($rc, $out, $err) = tool(@$args);
    push @all_output, $out;
    is($rc, 0, "$name: mtls-authz-rule @$args exits 0") or diag($err);
    my @active = grep { /^MTLSAllow / } split /\n/, $out;
    my @alts = map { s/^# //r } grep { /^# MTLSAllow / && !/<issuing CA>/ }
      split /\n/, $out;
    is(scalar @active, 1, "$name: exactly one active MTLSAllow line")
      or diag($out);
    ok(!grep({ !/^(#|MTLSAllow )/ } split /\n/, $out),
       "$name: every other line is a comment") or diag($out);
    my $k = 0;
    for my $rule (@active, @alts) {
        # Trailing '/': <Location /a/1> would match /a/10 too.
        my $loc = "/r/$name/" . $k++ . '/';
        push @conf, "    <Location $loc>", '        MTLSAuthz On',
          "        $rule", '    </Location>';
        my $broad = is_broad($rule);
        push @requests, [$broad ? 'broad' : $name, $loc, $rule, $client,
                         !$broad ? $other
                         : $client eq $OTHER_CA ? 'alice-a' : $OTHER_CA];
    }
}
for my $c (@issuers) {
    my ($name, $file, $client, $other) = @$c;
    my ($rc, $out, $err) = tool('--issuer', $file);
    push @all_output, $out;
    is($rc, 0, "$name: mtls-authz-rule --issuer $file exits 0") or diag($err);
    my @lines = grep { /^MTLSAllowIssuerFingerprint / } split /\n/, $out;
    is(scalar @lines, 1, "$name: one MTLSAllowIssuerFingerprint line") or diag($out);
    my $loc = "/r/$name/";
    push @conf, "    <Location $loc>", '        MTLSAuthz On',
      map({ "        $_" } @lines), '    </Location>';
    push @requests, [$name, $loc, $lines[0] // '', $client, $other];
}

# Each printed MTLSDeny line, active or commented out, in a location
# that admits every client of the PKI's CAs: the certificate it was made
# from gets 403, the other client 200.
my @deny_requests;
my $ALL_CAS = "MTLSAllowIssuerFingerprint sha256:$FP{FP_CA_A} sha256:$FP{FP_CA_B} "
  . "sha256:$FP{FP_INT_A}";
for my $c (@denies) {
    my ($name, $args, $client, $other) = @$c;
    my ($rc, $out, $err) = tool('--deny', @$args);
    push @all_output, $out;
    is($rc, 0, "$name: mtls-authz-rule --deny @$args exits 0") or diag($err);
    my @active = grep { /^MTLSDeny / } split /\n/, $out;
    my @alts = map { s/^# //r } grep { /^# MTLSDeny / && !/<issuing CA>/ } split /\n/, $out;
    ok(@active == 1 && $active[0] =~ /^MTLSDeny cert=sha256:[0-9a-f]{64}$/,
       "$name: exactly one active line, MTLSDeny cert=sha256:...") or diag($out);
    ok(!grep({ !/^(#|MTLSDeny )/ } split /\n/, $out)
         && (@alts == 1) == ($name ne 'deny-nofp')
         && !grep({ !/^MTLSDeny issuer=sha256:[0-9a-f]{64} serial=[0-9A-F]+$/ } @alts),
       "$name: every other line is a comment, the issuer + serial line among them "
       . '(unless the issuer is unknown)') or diag($out);
    my $k = 0;
    for my $rule (@active, @alts) {
        my $loc = "/d/$name/" . $k++ . '/';
        push @conf, "    <Location $loc>", '        MTLSAuthz On', "        $ALL_CAS",
          "        $rule", '    </Location>';
        push @deny_requests, [$name, $loc, $rule, $client, $other];
    }
}

# No line may end in a backslash (httpd joins the next line to it, even
# to a comment) or in a space (an editor may trim it into one).
my @bad = grep { /[\\\s]$/ } map { split /\n/ } @all_output;
ok(!@bad, 'no printed line ends in a backslash or whitespace') or diag("@bad");

# ---- one httpd with every printed rule ------------------------------------

my $port = free_port();
my $conf = "$DIR/httpd.conf";
spew($conf, join("\n",
    head_lines(%at, dir => $DIR, port => $port,
               loglevel => 'warn mtls_authz:info'),
    # A rule that let ${HOME} through would name this instead.
    'Define HOME /nonexistent',
    qq{SSLSessionCache "shmcb:$DIR/ssl_scache(512000)"},
    qq{AliasMatch "^/[rd]/" "$T_DIR/htdocs/ok.txt"},
    qq{<Directory "$T_DIR/htdocs">},
    '    Require all granted',
    '</Directory>',
    ssl_vhost_lines(port => $port, pki => $PKI), @conf, '</VirtualHost>') . "\n");

# The line of httpd.conf that each MTLSDeny landed on, for the log line
# that must name it.
{
    my @all = split /\n/, slurp($conf);
    my %loc_line;
    my $cur;
    for my $i (0 .. $#all) {
        $cur = $1 if $all[$i] =~ /^\s+<Location (\S+)>/;
        $loc_line{$cur} = $i + 1 if defined $cur && $all[$i] =~ /^\s+MTLSDeny /;
    }
    $_->[5] = $loc_line{$_->[1]} for @deny_requests;
}

my ($st, $t_out) = config_test($HTTPD, $conf, 30);
ok($st == 0 && $t_out =~ /Syntax OK/,
   'httpd -t accepts every printed line (' . describe_status($st) . ')')
  or diag($t_out);

my ($pid, $why) = start_server($HTTPD, $conf, $port, 15);
ok($pid, "httpd starts on 127.0.0.1:$port with the printed rules")
  or diag($why, "\n", slurp("$DIR/start.out") . slurp("$DIR/error_log"));

# Every printed rule, in its own location: the certificate it was made
# from gets 200, the other one 403.
my (%ok, %refused, @fail);
for my $r (@requests) {
    my ($name, $loc, $rule, $client, $other) = @$r;
    # $client, $other: a t/pki/out name or a path without .pem
    my $a = $pid ? https_status($PKI, $port, "${loc}x", $client) : 0;
    my $b = $pid ? https_status($PKI, $port, "${loc}x", $other) : 0;
    $ok{$name}      //= 1;
    $refused{$name} //= 1;
    if ($a != 200) { $ok{$name} = 0;      push @fail, "$loc [$rule] $client: $a, want 200" }
    if ($b != 403) { $refused{$name} = 0; push @fail, "$loc [$rule] $other: $b, want 403" }
}
for my $c (@cases, @issuers) {
    my ($name, undef, $client, $other) = @$c;
    $client = $1 if $client =~ m{([^/]+)$};
    my $n = grep { $_->[0] eq $name } @requests;
    ok($ok{$name}, "$name: all $n printed rules admit $client (200)");
    ok($refused{$name}, "$name: and refuse $other (403)");
}
{
    my $n = grep { $_->[0] eq 'broad' } @requests;
    ok($n >= 8 && $ok{broad},
       "the $n suffix and network alternatives admit their client (200)");
    ok($n >= 8 && $refused{broad}, "and refuse the same names from another CA (403)");
}
diag(join "\n", @fail) if @fail;

my (%denied, %spared, @dfail);
for my $r (@deny_requests) {
    my ($name, $loc, $rule, $client, $other) = @$r;
    my $a = $pid ? https_status($PKI, $port, "${loc}x", $client) : 0;
    my $b = $pid ? https_status($PKI, $port, "${loc}x", $other) : 0;
    $denied{$name} //= 1;
    $spared{$name} //= 1;
    if ($a != 403) { $denied{$name} = 0; push @dfail, "$loc [$rule] $client: $a, want 403" }
    if ($b != 200) { $spared{$name} = 0; push @dfail, "$loc [$rule] $other: $b, want 200" }
}
for my $c (@denies) {
    my ($name, undef, $client, $other) = @$c;
    my $n = grep { $_->[0] eq $name } @deny_requests;
    ok($n && $denied{$name}, "$name: all $n printed deny lines refuse $client (403)");
    ok($n && $spared{$name}, "$name: and admit $other (200)");
}
diag(join "\n", @dfail) if @dfail;

if ($pid) {
    my (undef, $killed) = stop_server($pid, 15);
    ok(!$killed, 'httpd stops on SIGTERM');
}
else {
    ok(0, 'httpd stops on SIGTERM (it never started)');
}
{
    # Each refusal names the printed line that made it.
    my $log = slurp("$DIR/error_log");
    my @unnamed;
    for my $r (@deny_requests) {
        my $want = "client denied by server configuration: $r->[1]x: denied by $conf:"
          . ($r->[5] // '?') . ';';
        push @unnamed, "$r->[1]x: no line with '$want'" if index($log, $want) < 0;
    }
    ok(@deny_requests && !@unnamed, 'every 403 of a deny line is logged as "denied by" its '
       . 'file:line') or diag(join "\n", @unnamed);
}

# ---- golden output ------------------------------------------------------------

my ($A, $B, $I) = @FP{qw(FP_CA_A FP_CA_B FP_INT_A)};
my %golden = (
    'alice-a --ca trust-all.crt' => [['--ca', 'trust-all.crt', 'alice-a.crt'], <<"EOF"],
# mtls-authz-rule: alice-a.crt --ca trust-all.crt
# subject: CN=alice,O=Acme Inc.,C=US
# issuer:  CN=Test CA A,O=MTLS Test
#          sha256:$A (from trust-all.crt)
# subjectAltName:
#   DNS:alice.example.com
#   email:Alice\@Example.COM
#   URI:spiffe://example.org/ns/prod/sa/alice
#   IP:192.0.2.7
#   IP:2001:db8::7
# This subject, issued by this CA:
MTLSAllow "subject=CN=alice,O=Acme Inc.,C=US" issuer=sha256:$A
# Or instead one of its SANs, from the same CA:
# MTLSAllow san=DNS:alice.example.com issuer=sha256:$A
# MTLSAllow san=email:Alice\@Example.COM issuer=sha256:$A
# MTLSAllow san=URI:spiffe://example.org/ns/prod/sa/alice issuer=sha256:$A
# MTLSAllow san=IP:192.0.2.7 issuer=sha256:$A
# MTLSAllow san=IP:2001:db8::7 issuer=sha256:$A
# Or more broadly, any name in its domain or address in its network, from the same CA:
# MTLSAllow san=DNS:.example.com issuer=sha256:$A
# MTLSAllow san=IP:192.0.2.0/24 issuer=sha256:$A
# MTLSAllow san=IP:2001:db8::/64 issuer=sha256:$A
# Or only this one certificate (no longer matches when it is renewed):
# MTLSAllow cert=sha256:$FP{FP_CERT_ALICE_A}
EOF
    'alice-a without --ca' => [['alice-a.crt'], <<"EOF"],
# mtls-authz-rule: alice-a.crt
# subject: CN=alice,O=Acme Inc.,C=US
# issuer:  CN=Test CA A,O=MTLS Test
#          sha256 unknown: run again with --ca FILE naming the issuing CA or the SSLCACertificateFile
# subjectAltName:
#   DNS:alice.example.com
#   email:Alice\@Example.COM
#   URI:spiffe://example.org/ns/prod/sa/alice
#   IP:192.0.2.7
#   IP:2001:db8::7
# With --ca, a rule for this subject from its issuer:
# MTLSAllow "subject=CN=alice,O=Acme Inc.,C=US" issuer=sha256:<issuing CA>
# Only this one certificate (no longer matches when it is renewed):
MTLSAllow cert=sha256:$FP{FP_CERT_ALICE_A}
EOF
    'inject-comma' => [['--ca', 'ca-a.crt', 'inject-comma.crt'], <<"EOF"],
# mtls-authz-rule: inject-comma.crt --ca ca-a.crt
# subject: CN=alice\\,O=Acme Inc.\\,C=US
# issuer:  CN=Test CA A,O=MTLS Test
#          sha256:$A (from ca-a.crt)
# subjectAltName: none
# This subject, issued by this CA:
MTLSAllow "subject=CN=alice\\,O=Acme Inc.\\,C=US" issuer=sha256:$A
# Or only this one certificate (no longer matches when it is renewed):
# MTLSAllow cert=sha256:$FP{FP_CERT_INJECT_COMMA}
EOF
    'nul-cn' => [['--ca', 'ca-a.crt', 'nul-cn.crt'], <<"EOF"],
# mtls-authz-rule: nul-cn.crt --ca ca-a.crt
# subject: /C=US/O=Acme Inc./CN=alice\\x5cx00.evil
# issuer:  CN=Test CA A,O=MTLS Test
#          sha256:$A (from ca-a.crt)
# subjectAltName: none
# No subject rule: the subject has a NUL byte.
# Only this one certificate (no longer matches when it is renewed):
MTLSAllow cert=sha256:$FP{FP_CERT_NUL_CN}
EOF
    '--issuer trust-all.crt' => [['--issuer', 'trust-all.crt'], <<"EOF"],
# mtls-authz-rule --issuer: trust-all.crt
# Each CA must also be in the host's SSLCACertificateFile.
# CN=Test CA A,O=MTLS Test
MTLSAllowIssuerFingerprint sha256:$A
# CN=Test CA B,O=MTLS Test
MTLSAllowIssuerFingerprint sha256:$B
# CN=Test Intermediate A,O=MTLS Test
MTLSAllowIssuerFingerprint sha256:$I
EOF
);
for my $g (sort keys %golden) {
    my ($args, $want) = @{ $golden{$g} };
    my ($rc, $out, $err) = tool(@$args);
    ok($rc == 0 && $out eq $want, "golden: $g, byte for byte")
      or diag("exit $rc\n$err--- got\n$out--- want\n$want");
}

# Subjects in the awkward certificates, as printed (the rules above
# admitted them).
my %subjects = (
    'q-quote'   => 'CN=a \22quoted\22 \5C back\5C,C=US',
    'q-hash'    => 'CN=\#hash',
    'q-spaces'  => 'CN=\20lead and  inner and trail\20',
    'q-special' => 'CN=plus\+sign\;semi\<lt\>gt=eq\,comma',
    'q-dollar'  => 'CN=\24{HOME}\24x',
    'q-utf8'    => "CN=M\xc3\xbcller \xe2\x82\xac,O=Acme",
    'q-control' => 'CN=tab\09ctl\01',
    'q-inn'     => 'CN=numeric,INN=123456789012',
    'q-multi'   => 'CN=a+CN=b+O=c',
    'q-oid'     => 'CN=oid,1.2.3.4=unknown oid',
    # C must be 2 letters when written as text: only the DER says "USA".
    'q-der-c'   => 'CN=utf8 country,C=#0c03555341',
    # Compared as UTF-8 text, so the text will do.
    'q-bmp'     => 'CN=AB',
    # A NumericString is compared as its encoding: text would be UTF8String.
    'q-numeric' => 'CN=#120131',
);
my @wrong;
for my $n (sort keys %subjects) {
    my (undef, $out) = tool('--ca', 'ca-a.crt', "$DIR/pki/$n.crt");
    my ($got) = $out =~ /^MTLSAllow "subject=(.*)" issuer=/m;
    push @wrong, "$n: got " . ($got // 'no subject rule') . ", want $subjects{$n}"
      unless defined $got && $got eq $subjects{$n};
}
ok(!@wrong, 'awkward subjects are written as documented') or diag(join "\n", @wrong);

# The SAN that a rule cannot state exactly is listed, not offered.
{
    my (undef, $out) = tool('--ca', 'ca-a.crt', "$DIR/pki/q-san.crt");
    like($out, qr{^#   URI:spiffe://x/p/\*: no rule, a rule ending in /\* is a prefix}m,
         'q-san: a URI ending in /* gets no san= rule (it would be a prefix)');
    like($out, qr{^#   DNS:\$\{HOME\}\.example: no rule, httpd would expand}m,
         'q-san: a SAN with ${ gets no san= rule');
    like($out, qr{^# MTLSAllow san=URI:spiffe://x/a"\\""b\\ issuer=sha256:$A$}m,
         'q-san: a quote in a SAN is written "\\""');
}

# Which suffix and network alternatives are offered, and which are not.
{
    my (undef, $bob) = tool('--ca', 'ca-a.crt', 'bob-a.crt');
    like($bob, qr{^# MTLSAllow san=IP:::ffff:192\.0\.2\.0/120 issuer=sha256:$A$}m,
         'bob-a: an IPv4-mapped SAN gets the /120 that is its IPv4 /24');
    my (undef, $v6) = tool('--ca', 'ca-a.crt', 'ipv6-full.crt');
    ok($v6 =~ m{^# MTLSAllow san=IP:2001:db8::/64 issuer=}m
         && $v6 !~ m{san=IP:::/64},
       'ipv6-full: the /64 of 2001:db8::8, none for ::1 (::/64 holds every '
       . 'mapped address)') or diag($v6);
    my (undef, $up) = tool('--ca', 'ca-a.crt', 'upper-a.crt');
    like($up, qr{^# MTLSAllow san=DNS:\.example\.com issuer=sha256:$A$}m,
         'upper-a: the parent domain in lower case, without the trailing dot');
    my (undef, $w) = tool('--ca', 'ca-a.crt', 'wildcard.crt');
    like($w, qr{^# MTLSAllow san=DNS:\.example\.com issuer=sha256:$A$}m,
         'wildcard: *.example.com is below .example.com');
    my (undef, $e) = tool('--ca', 'ca-a.crt', "$DIR/pki/q-tld.crt");
    ok($e =~ /^#   DNS:a\.\.b\.example$/m && $e !~ /more broadly/,
       'q-tld: no suffix rule for a top-level domain or a name with an empty '
       . 'label') or diag($e);
    like($e, qr{^#   DNS:\.lead\.example: no rule, a rule with a leading dot is a DNS suffix}m,
         'q-tld: a DNS SAN with a leading dot gets no san= rule (it would be a suffix)');
    my (undef, $nofp) = tool('alice-a.crt');
    ok($nofp !~ /more broadly/, 'without --ca: no suffix or network rule');
    my (undef, $many) = tool('--ca', 'ca-a.crt', 'many-sans.crt');
    my @sfx = $many =~ /^# MTLSAllow san=DNS:\.example\.com /mg;
    is(scalar @sfx, 1, 'many-sans: the one parent domain of 998 names, once');
}

# ---- input forms --------------------------------------------------------------

must_run("$DIR/cmd.out", 'DER', 'openssl', 'x509', '-in', "$PKI/alice-a.crt", '-outform', 'DER',
         '-out', "$DIR/alice-a.der");
{
    my (undef, $pem) = tool('--ca', 'ca-a.crt', 'alice-a.crt');
    my ($rc, $der) = tool('--ca', 'ca-a.crt', "$DIR/alice-a.der");
    s/^# mtls-authz-rule: .*\n// for $pem, $der;
    ok($rc == 0 && $der eq $pem, 'DER input prints what PEM input prints');
    # A .pem with the certificate followed by its key.
    my ($rc2, $withkey) = tool('--ca', 'ca-a.crt', 'alice-a.pem');
    $withkey =~ s/^# mtls-authz-rule: .*\n//;
    ok($rc2 == 0 && $withkey eq $pem, 'a PEM file with a key after the certificate');
    my ($rc3, $stdin) = run_in($PKI, 'sh', '-c', "exec '$TOOL' --ca ca-a.crt - <alice-a.crt");
    $stdin =~ s/^# mtls-authz-rule: .*\n//;
    ok($rc3 == 0 && $stdin eq $pem, "'-' reads standard input");
    my ($rc4, $chain) = tool('carol-int-chain.crt');
    like($chain, qr/^MTLSAllow "subject=CN=carol,O=Acme Inc\.,C=US" issuer=sha256:$I$/m,
         'chain file without --ca: the issuer is the intermediate in the file');
}

# ---- errors and exit codes ------------------------------------------------------

spew("$DIR/garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n");
my @errors = (
    # [what, args, exit code, stderr pattern]
    ['missing file', ['nosuch.crt'], 2, qr/^mtls-authz-rule: nosuch\.crt: No such file or directory$/m],
    ['a private key', ['ca-a.key'], 2, qr/ca-a\.key: not a certificate \(expected an X\.509 certificate in PEM or DER form\)/],
    ['a broken PEM block', ["$DIR/garbage.pem"], 2, qr/garbage\.pem: not a certificate/],
    ['an empty file', ['/dev/null'], 2, qr{/dev/null: empty file: not a certificate}],
    ['--ca that did not sign it', ['--ca', 'ca-b.crt', 'alice-a.crt'], 2,
     qr/ca-b\.crt: no certificate in it signed alice-a\.crt \(whose issuer is CN=Test CA A,O=MTLS Test\)/],
    ['--issuer on a client certificate', ['--issuer', 'alice-a.crt'], 2,
     qr/alice-a\.crt: certificate 1 \(CN=alice,O=Acme Inc\.,C=US\) is not a CA certificate/],
    ['--ca missing', ['--ca', 'nosuch.crt', 'alice-a.crt'], 2, qr/nosuch\.crt: No such file/],
    ['an unknown option', ['--bogus', 'alice-a.crt'], 1, qr/unknown option '--bogus'/],
    ['no file', [], 1, qr/no certificate file given/],
    ['two files', ['alice-a.crt', 'bob-a.crt'], 1, qr/one certificate file at a time/],
    ['--issuer with --ca', ['--issuer', '--ca', 'ca-a.crt', 'ca-a.crt'], 1, qr/--issuer takes no --ca/],
);
for my $e (@errors) {
    my ($what, $args, $code, $re) = @$e;
    my ($rc, $out, $err) = tool(@$args);
    ok($rc == $code && $out eq '' && $err =~ $re,
       "$what: exit $code, nothing on stdout, says why")
      or diag("exit $rc\nstdout: $out\nstderr: $err");
}
{
    my ($rc, $out) = tool('--help');
    ok($rc == 0 && $out =~ /^usage: mtls-authz-rule \[--ca FILE\] CERT$/m
         && $out =~ /^Exit status: 0 printed; 1 usage error; 2 /m,
       '--help: exit 0, usage and exit codes');
    ($rc, $out) = tool('--version');
    ok($rc == 0 && $out =~ /^mtls-authz-rule \d+\.\d+ /, '--version: exit 0, the version');
}

# ---- --deny: golden -------------------------------------------------------------

# The serial as openssl prints it: the deny line must name it so.
must_run("$DIR/serial.out", 'serial', 'openssl', 'x509', '-in', "$PKI/alice-a.crt", '-noout',
         '-serial');
my ($SERIAL_ALICE) = slurp("$DIR/serial.out") =~ /^serial=([0-9A-F]+)$/m;
{
    my $want = <<"EOF2";
# mtls-authz-rule --deny: alice-a.crt --ca trust-all.crt
# subject: CN=alice,O=Acme Inc.,C=US
# issuer:  CN=Test CA A,O=MTLS Test
#          sha256:$A (from trust-all.crt)
# serial:  @{[$SERIAL_ALICE // '?']}
# Refuse this one certificate:
MTLSDeny cert=sha256:$FP{FP_CERT_ALICE_A}
# Or the same by its issuer and serial number (as a CRL names it):
# MTLSDeny issuer=sha256:$A serial=@{[$SERIAL_ALICE // '?']}
EOF2
    my ($rc, $out, $err) = tool('--deny', '--ca', 'trust-all.crt', 'alice-a.crt');
    ok($SERIAL_ALICE && $rc == 0 && $out eq $want, 'golden: --deny alice-a --ca trust-all.crt, '
       . 'byte for byte') or diag("exit $rc\n$err--- got\n$out--- want\n$want");
}

# ---- --check and --diff on hand-made configurations --------------------------------

# Dates days away from today (UTC), all from one reading of the clock,
# and what a date means as not_before (its first second) and as
# not_after (the rule ends with the next day).
my $T0 = time;
sub day { POSIX::strftime('%Y-%m-%d', gmtime($T0 + $_[0] * 86400)) }
sub start_of { "$_[0]T00:00:00Z" }
my ($W1, $W2, $W2_END) = (day(30), day(60), start_of(day(61)));
my $CK = "$DIR/check";
mkdir $CK or die "$CK: $!";

# The serial of a certificate, lowercase with colons: the parser's other
# spelling.
sub serial_of {
    my ($name) = @_;
    must_run("$CK/serial.out", 'serial', 'openssl', 'x509', '-in', "$PKI/$name.crt", '-noout',
             '-serial');
    my ($hex) = slurp("$CK/serial.out") =~ /^serial=([0-9A-F]+)$/m or die "no serial of $name";
    return lc join ':', $hex =~ /(..)/g;
}
my ($SER_REVOKED, $SER_UPPER) = (serial_of('revoked-a'), serial_of('upper-a'));

spew("$CK/allow.txt", <<"EOF2");
"subject=CN=alice,O=Acme Inc.,C=US" issuer=sha256:$A
MTLSAllow "subject=CN=bob,O=Acme Inc.,C=US" issuer=sha256:$A
san=DNS:dave.example.com issuer=sha256:$A not_before=$W1 not_after=$W2
san=URI:spiffe://example.org/ns/prod issuer=sha256:$I not_after=2020-06-30
"subject=CN=wild" issuer=sha256:$A
EOF2
spew("$CK/deny.txt", <<"EOF2");
# revoked
MTLSDeny issuer=sha256:$A serial=$SER_REVOKED
issuer=sha256:$A serial=$SER_UPPER
EOF2
my $chk1 = <<"EOF2";
# hand-made
MTLSAllowFile allow.txt
MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}
MTLSDenyFile deny.txt
EOF2
spew("$CK/chk1.conf", $chk1);
# The same without the deny by cert, with a deny by subject.
spew("$CK/chk2.conf", $chk1 =~ s/^MTLSDeny cert=.*\n//mr
     . qq{MTLSDeny "subject=CN=wild"\n});

my @CHECK = ('--check', '--config', "$CK/chk1.conf", '--ca', 'trust-all.crt');
my @certs = qw(alice-a bob-a revoked-a upper-a dave-a carol-int-chain alice-b wildcard
  self-signed multi-rdn);
{
    my ($rc, $out, $err) = tool(@CHECK, map { "$_.crt" } @certs);
    my $want = <<"EOF2";
alice-a.crt: admit: rule $CK/allow.txt:1 (subject, issuer)
bob-a.crt: refuse: denied by $CK/chk1.conf:3 (cert)
revoked-a.crt: refuse: denied by $CK/deny.txt:2 (issuer, serial)
upper-a.crt: refuse: denied by $CK/deny.txt:3 (issuer, serial)
dave-a.crt: refuse: rule $CK/allow.txt:3 not yet valid until @{[start_of($W1)]}
carol-int-chain.crt: refuse: rule $CK/allow.txt:4 expired at 2020-07-01T00:00:00Z
alice-b.crt: refuse: issuer not allowed
wildcard.crt: admit: rule $CK/allow.txt:5 (subject, issuer)
self-signed.crt: refuse: not verified: self-signed certificate
multi-rdn.crt: refuse: no rule matched
EOF2
    ok($rc == 4 && $out eq $want && $err eq '',
       '--check: one line per certificate: the rule and what matched, or why refused; exit 4')
      or diag("exit $rc\n$err--- got\n$out--- want\n$want");
}
{
    my ($rc, $out, $err) = tool(@CHECK, 'alice-a.crt', 'wildcard.crt');
    ok($rc == 0 && $out =~ /\A(?:[^\n]*: admit: [^\n]*\n){2}\z/,
       '--check: every certificate admitted: exit 0') or diag("exit $rc\n$err$out");
}

# A window: before, on its first second, on its last day, after it.
my @windows = (
    [day(29), "refuse: rule $CK/allow.txt:3 not yet valid until " . start_of($W1)],
    [$W1, "admit: rule $CK/allow.txt:3 (san=DNS:dave.example.com, issuer, from "
          . start_of($W1) . ", until $W2_END)"],
    ["${W2}T23:59:59+00:00", "admit: rule $CK/allow.txt:3 (san=DNS:dave.example.com, "
          . 'issuer, from ' . start_of($W1) . ", until $W2_END)"],
    [day(61), "refuse: rule $CK/allow.txt:3 expired at $W2_END"],
);
for my $w (@windows) {
    my ($at, $want) = @$w;
    my ($rc, $out, $err) = tool(@CHECK, '--at', $at, 'dave-a.crt');
    ok($rc == ($want =~ /^admit/ ? 0 : 4) && $out eq "dave-a.crt: $want\n",
       "--check --at $at: dave-a: $want") or diag("exit $rc\n$err$out");
}
{
    # --at is the verification time too.
    my ($rc, $out) = tool(@CHECK, '--at', '2000-01-01', 'alice-a.crt');
    is($out, "alice-a.crt: refuse: not verified: certificate is not yet valid\n",
       '--check --at before the certificate: not verified');
    ($rc, $out) = tool(@CHECK, '--at=' . day(3700), 'alice-a.crt');
    is($out, "alice-a.crt: refuse: not verified: certificate has expired\n",
       '--check --at= after the certificate: not verified');
}

# TSV and JSON: a file name with a quote, a tab and a backslash in it.
my $odd = qq{$CK/we"ird\tname\\.crt};
symlink("$PKI/alice-a.crt", $odd) or die "$odd: $!";
{
    my ($rc, $out, $err) = tool(@CHECK, '--format', 'tsv', 'bob-a.crt', $odd);
    my @rows = map { [split /\t/, $_, -1] } split /\n/, $out;
    my $esc = $odd =~ s/\\/\\\\/gr =~ s/\t/\\t/gr;
    ok($rc == 4 && @rows == 3 && !grep({ @$_ != 4 } @rows)
         && join('|', @{ $rows[0] }) eq 'cert|decision|rule|reason'
         && join('|', @{ $rows[1] }) eq "bob-a.crt|refuse|$CK/chk1.conf:3|denied by $CK/chk1.conf:3 (cert)"
         && join('|', @{ $rows[2] }) eq "$esc|admit|$CK/allow.txt:1|subject, issuer",
       '--format tsv: a header, four columns, tab and backslash escaped') or diag("exit $rc\n$err$out");
}
{
    my ($rc, $out, $err) = tool(@CHECK, '--format=json', '--at', "${W1}T12:00:00+02:00",
                                'dave-a.crt', 'self-signed.crt', $odd);
    my $doc = eval { JSON::PP->new->decode($out) };
    my $c = $doc ? $doc->{certificates} : [];
    ok($rc == 4 && $doc && $doc->{config} eq "$CK/chk1.conf" && $doc->{at} eq "${W1}T10:00:00Z"
         && @$c == 3,
       '--format json: one document with the configuration, the instant in UTC, '
       . 'three certificates') or diag("exit $rc\n$err$out\n$@");
    is_deeply($c->[0] // {}, {cert => 'dave-a.crt', subject => 'CN=dave,OU=Payments,O=Acme Inc.,C=US',
                        decision => 'admit', rule => "$CK/allow.txt:3",
                        constraints => ['san=DNS:dave.example.com', 'issuer',
                                        'from ' . start_of($W1), "until $W2_END"],
                        reason => undef}, 'json: an admitted certificate');
    is_deeply($c->[1] // {}, {cert => 'self-signed.crt', subject => 'CN=alice,O=Acme Inc.,C=US',
                        decision => 'refuse', rule => undef, constraints => [],
                        reason => 'not verified: self-signed certificate'},
              'json: a refused one');
    is($c->[2] ? $c->[2]{cert} : '', $odd, 'json: the odd file name, escaped and read back');
}

# --diff: only the certificates whose decision changed.
{
    my @diff = ('--diff', "$CK/chk1.conf", "$CK/chk2.conf", '--ca', 'trust-all.crt');
    my ($rc, $out, $err) = tool(@diff, map { "$_.crt" } @certs);
    my $n = () = $chk1 =~ /\n/g;
    my $want = <<"EOF2";
bob-a.crt: refuse -> admit: was denied by $CK/chk1.conf:3 (cert); now rule $CK/allow.txt:2 (subject, issuer)
wildcard.crt: admit -> refuse: was rule $CK/allow.txt:5 (subject, issuer); now denied by $CK/chk2.conf:$n (subject)
EOF2
    ok($rc == 4 && $out eq $want, '--diff: the two certificates whose decision changed, '
       . 'old and new; exit 4') or diag("exit $rc\n$err--- got\n$out--- want\n$want");
    ($rc, $out, $err) = tool(@diff, '--format', 'json', map { "$_.crt" } @certs);
    my $doc = eval { JSON::PP->new->decode($out) };
    ok($rc == 4 && $doc && @{ $doc->{changed} } == 2
         && $doc->{changed}[0]{old}{decision} eq 'refuse'
         && $doc->{changed}[0]{new}{rule} eq "$CK/allow.txt:2",
       '--diff --format json: the changes as one document') or diag("exit $rc\n$err$out");
    ($rc, $out, $err) = tool(@diff, 'alice-a.crt', 'revoked-a.crt', 'self-signed.crt');
    ok($rc == 0 && $out eq '', '--diff: no decision changed: nothing printed, exit 0')
      or diag("exit $rc\n$err$out");
}

# Errors: exit 2 with file:line, nothing on stdout; usage errors exit 1.
my @config_errors = (
    ['an unknown directive', "MTLSAllowFile allow.txt\nSSLVerifyClient require\n",
     qr{^mtls-authz-rule: \Q$CK\E/e\d+\.conf:2: 'SSLVerifyClient' is not a rule}],
    ['a bad key', "MTLSAllow san=DNS:x bogus=1\n",
     qr{\.conf:1: MTLSAllow: unknown key 'bogus'}],
    ['MTLSAllow in a deny file', "MTLSDenyFile allow.txt\n",
     qr{\.conf:1: MTLSDenyFile: \Q$CK\E/allow\.txt:2: MTLSAllow is not allowed in a deny rule file}],
    ['serial= without issuer=', "\n# x\nMTLSDeny san=DNS:x serial=01\n",
     qr{\.conf:3: MTLSDeny: serial= needs issuer=}],
    ['an inverted window', "MTLSAllow san=DNS:x not_before=2027-01-02 not_after=2027-01-01\n",
     qr{\.conf:1: MTLSAllow: not_before=2027-01-02 is not before not_after=2027-01-01}],
    ['a missing rule file', "MTLSAllowFile nosuch.txt\n",
     qr{\.conf:1: MTLSAllowFile: \Q$CK\E/nosuch\.txt: cannot read}],
    ['a value-less directive', "MTLSAllowSubject\n", qr{\.conf:1: MTLSAllowSubject: needs at least one value}],
    ['an issuer pin outside the gate', "MTLSAllow san=DNS:x issuer=sha256:$A\n"
       . "MTLSAllowIssuerFingerprint sha256:$B\n",
     qr{the rule at \Q$CK\E/e\d+\.conf:1 pins issuer=sha256:$A, which is not one of the MTLSAllowIssuerFingerprint}],
);
my $ne = 0;
for my $e (@config_errors) {
    my ($what, $text, $re) = @$e;
    my $f = "$CK/e" . ++$ne . '.conf';
    spew($f, $text);
    my ($rc, $out, $err) = tool('--check', '--config', $f, '--ca', 'ca-a.crt', 'alice-a.crt');
    ok($rc == 2 && $out eq '' && $err =~ $re, "--config with $what: exit 2, says where")
      or diag("exit $rc\nstdout: $out\nstderr: $err");
}
my @usage = (
    ['--check without --config', ['--check', '--ca', 'ca-a.crt', 'alice-a.crt'],
     qr/--check needs --config FILE/],
    ['--check without --ca', ['--check', '--config', "$CK/chk1.conf", 'alice-a.crt'],
     qr/need --ca FILE/],
    ['a bad --at', [@CHECK, '--at', 'tomorrow', 'alice-a.crt'], qr/--at 'tomorrow': .*not a date/],
    ['a bad --format', [@CHECK, '--format', 'xml', 'alice-a.crt'], qr/--format 'xml': expected text, tsv or json/],
    ['--diff with one file', ['--diff', "$CK/chk1.conf"], qr/--diff needs two files/],
    ['--deny with --check', ['--deny', @CHECK, 'alice-a.crt'], qr/one of --issuer, --deny, --check, --diff at a time/],
    ['--at without --check', ['--at', '2027-01-01', 'alice-a.crt'], qr/go with --check or --diff/],
);
for my $u (@usage) {
    my ($what, $args, $re) = @$u;
    my ($rc, $out, $err) = tool(@$args);
    ok($rc == 1 && $out eq '' && $err =~ $re, "$what: exit 1, says why")
      or diag("exit $rc\nstdout: $out\nstderr: $err");
}
{
    my ($rc, $out, $err) = tool(@CHECK, 'alice-a.crt', 'nosuch.crt');
    ok($rc == 2 && $out eq '' && $err =~ /nosuch\.crt: No such file/,
       '--check with a missing certificate: exit 2, nothing printed') or diag("exit $rc\n$out$err");
}
