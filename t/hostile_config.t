# Hostile configurations: empty, huge, NUL and control
# bytes in directive values, duplicate rules, and 100,000 rules. Each
# one is either refused with an error naming the directive, the file and
# the line, or accepted with the behaviour docs/security.md "Hostile
# configurations" documents; an accepted one is started for real and a
# client that no rule lists must get 403. Nothing may crash.
#
# This file runs the httpd binary itself (t/lib/HttpdRun.pm) on
# configurations written byte for byte to t/logs/cfg/hostile-*/, each
# server on a free loopback port with a time limit.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use Time::HiRes qw(time);
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(locate missing_prereqs assert_prereqs free_port slurp spew run_cmd
  describe_status case_dir head_lines ssl_vhost write_conf config_test start_server
  stop_server https_status pins $CRASH);

my %at = locate(__FILE__);
my ($HTTPD, $PKI) = @at{qw(httpd pki)};
assert_prereqs('httpd, module, base configuration and PKI exist',
               missing_prereqs(%at, need_pki => 1));
my %fp = pins($PKI);

# ---- helpers --------------------------------------------------------------

# A fresh t/logs/cfg/hostile-NAME/ with the file every location serves.
sub hostile_dir {
    my $dir = case_dir($at{cfg}, "hostile-$_[0]");
    spew("$dir/ok.txt", "ok\n");
    return $dir;
}

# The first lines of every configuration; every /t/ path serves ok.txt
# (200: admitted).
sub head {
    my ($dir, $port) = @_;
    return (head_lines(%at, dir => $dir, port => $port, loglevel => 'info'),
            qq{SSLSessionCache "shmcb:$dir/scache(512000)"},
            qq{AliasMatch "^/t/" "$dir/ok.txt"},
            qq{<Directory "$dir">}, '    Require all granted', '</Directory>');
}

my $MB = 1024 * 1024;
my $alice = 'CN=alice,O=Acme Inc.,C=US';

# ---- refused ---------------------------------------------------------------

# [name, directive line (bytes), expected message (qr//, matched against
# the line after httpd's "Syntax error on line N of FILE:")]
my @refused = (
    # empty values
    ['empty-san', 'MTLSAllowSAN ""', qr/^MTLSAllowSAN: '': expected <type>:<value>/],
    ['empty-fp', 'MTLSAllowIssuerFingerprint ""',
     qr/^MTLSAllowIssuerFingerprint: '': expected sha256:<64 hex digits>/],
    ['empty-allow', 'MTLSAllow ""', qr/^MTLSAllow: '': expected key=value/],
    ['empty-allow-subject', 'MTLSAllow subject=', qr/^MTLSAllow: bad DN '': empty DN/],
    ['empty-allow-san', 'MTLSAllow san=', qr/^MTLSAllow: '': expected <type>:<value>/],
    ['empty-allow-issuer', 'MTLSAllow issuer=',
     qr/^MTLSAllow: issuer='': expected sha256:<64 hex digits>/],
    ['empty-allow-cert', 'MTLSAllow cert=',
     qr/^MTLSAllow: cert='': expected sha256:<64 hex digits>/],
    ['empty-authz', 'MTLSAuthz ""', qr/^MTLSAuthz must be On or Off/],
    ['empty-email', 'MTLSAllowSAN email:', qr/^MTLSAllowSAN: empty email value/],
    ['empty-uri', 'MTLSAllowSAN URI:', qr/^MTLSAllowSAN: empty URI value/],
    ['empty-ip', 'MTLSAllowSAN IP:', qr/^MTLSAllowSAN: '' is not an IPv4 or IPv6 address/],
    ['empty-type', 'MTLSAllowSAN :', qr/^MTLSAllowSAN: unknown SAN type ''/],
    ['only-spaces', 'MTLSAllowSAN "   "', qr/^MTLSAllowSAN: '   ': expected <type>:<value>/],
    ['no-value', 'MTLSAllowIssuerFingerprint',
     qr/^MTLSAllowIssuerFingerprint: needs at least one value/],
    # huge values: the message keeps the start and the end
    ['huge-cn', 'MTLSAllowSubject "CN=' . ('a' x $MB) . '"',
     qr/^MTLSAllowSubject: bad DN 'CN=a+\[\.\.\. \d+ bytes left out \.\.\.\]a+' is not valid UTF-8 or not allowed for this attribute$/],
    ['huge-fp', 'MTLSAllowIssuerFingerprint sha256:' . ('a' x $MB),
     qr/^MTLSAllowIssuerFingerprint: 'sha256:a+\[\.\.\. \d+ bytes left out \.\.\.\]a+': a sha256 fingerprint has 32 bytes/],
    ['huge-hex-dn', 'MTLSAllowSubject CN=#0c' . ('a' x $MB),
     qr/^MTLSAllowSubject: bad DN 'CN=#0ca+\[\.\.\. \d+ bytes left out \.\.\.\].*must be the BER encoding of a string/],
    ['huge-allow-bad-last', 'MTLSAllow ' . join(' ', map { "san=DNS:h$_.example" } 1 .. 20000)
       . ' san=bogus:x',
     qr/^MTLSAllow: .*unknown SAN type 'bogus'/],
    # NUL: httpd ends the line there; the module refuses the line
    # instead of a rule that lost its constraints
    ['nul-allow-issuer', qq{MTLSAllow "subject=$alice"\0 issuer=sha256:$fp{FP_CA_B}},
     qr/^MTLSAllow: this line holds a NUL byte, and httpd ignores everything after it$/],
    ['nul-san', "MTLSAllowSAN DNS:a.example\0 DNS:b.example",
     qr/^MTLSAllowSAN: this line holds a NUL byte/],
    ['nul-subject', qq{MTLSAllowSubject "CN=alice\0,O=x"},
     qr/^MTLSAllowSubject: this line holds a NUL byte/],
    ['nul-fp', "MTLSAllowIssuerFingerprint sha256:$fp{FP_CA_A}\0 sha256:$fp{FP_CA_B}",
     qr/^MTLSAllowIssuerFingerprint: this line holds a NUL byte/],
    # control and non-UTF-8 bytes
    ['esc-in-dns', "MTLSAllowSAN DNS:a\x1bexample",
     qr/^MTLSAllowSAN: DNS value 'a\\x1bexample' has a space, control or non-ASCII character/],
    ['del-in-uri', "MTLSAllowSAN URI:spiffe://a\x7fb",
     qr/^MTLSAllowSAN: URI value .* has a space, control or non-ASCII character/],
    ['latin1-in-dn', "MTLSAllowSubject \"CN=J\xfcrgen\"",
     qr/^MTLSAllowSubject: bad DN 'CN=J\\xfcrgen': value 'J\\xfcrgen' is not valid UTF-8/],
    ['ff-in-fp', "MTLSAllowIssuerFingerprint sha256:\x0c$fp{FP_CA_A}",
     qr/^MTLSAllowIssuerFingerprint: 'sha256:': a sha256 fingerprint has 32 bytes/],
);

for my $c (@refused) {
    my ($name, $line, $want) = @$c;
    my $dir  = hostile_dir($name);
    my $file = "$dir/httpd.conf";
    my @l = (head($dir, free_port()), '<Location /x>', '    MTLSAuthz On');
    push @l, "    $line";
    my $n = @l;
    push @l, '</Location>';
    write_conf($file, @l);
    my ($st, $out) = config_test($HTTPD, $file, 60);
    my $short = length($out) > 600 ? substr($out, 0, 600) . '...' : $out;
    ok($st != 0 && $out !~ /Syntax OK/ && !($st & 127),
       "$name: httpd -t refuses it (" . describe_status($st) . ')') or diag($short);
    my ($msg) = $out =~ /Syntax error on line $n of \Q$file\E:\n(.*)$/m;
    ok(defined $msg, "$name: names the file and line $n") or diag($short);
    like($msg // '', $want, "$name: names the directive and the problem")
      or diag($short);
}

# A line longer than httpd's limit (16 MiB): httpd's own error.
{
    my $dir  = hostile_dir('line-too-long');
    my $file = "$dir/httpd.conf";
    my @l = (head($dir, free_port()), '<Location /x>', '    MTLSAuthz On',
             '    MTLSAllowSAN DNS:' . ('a' x (17 * $MB)), '</Location>');
    write_conf($file, @l);
    my ($st, $out) = config_test($HTTPD, $file, 60);
    ok($st != 0 && !($st & 127), 'line-too-long: httpd -t refuses it ('
       . describe_status($st) . ')');
    my $n = @l - 1;
    like($out, qr/Error reading \Q$file\E at line $n: Line too long/,
         'line-too-long: httpd names the file, the line and the problem');
}

# ---- long lines in bounded memory ----------------------------------------------------
# Regression: the word splitter and the DN parser allocated the rest of
# the line for every word or value, so a 1 MB line of 50,000 values
# needed about 25 GB. Each of these must pass httpd -t within 1 GiB of
# address space.
for my $c (
    ['50k-san-values', 'MTLSAllowSAN '
       . join(' ', map { "DNS:h$_.example" } 1 .. 50000)],
    ['20k-allow-words', 'MTLSAllow '
       . join(' ', map { "san=DNS:h$_.example" } 1 .. 20000)],
    ['100k-rdn-dn', 'MTLSAllowSubject "' . join(',', map { "OU=u$_" } 1 .. 100000)
       . ',CN=x"'],
  )
{
    my ($name, $line) = @$c;
    my $dir  = hostile_dir($name);
    my $file = "$dir/httpd.conf";
    write_conf($file, head($dir, free_port()), '<Location /x>',
                '    MTLSAuthz On', "    $line", '</Location>');
    # ASan (make test SANITIZE=1) reserves terabytes of address space for
    # its shadow memory, so there the line only has to load; the plain
    # suite checks the 1 GiB bound.
    my $limit = ($ENV{MTLS_SANITIZE} // '') eq '1' ? '' : 'ulimit -v 1048576 && ';
    my ($st, $hung) = run_cmd(120, "$dir/test.out", '/bin/sh', '-c',
                              $limit . 'exec "$0" -t -f "$1"', $HTTPD, $file);
    my $out = slurp("$dir/test.out");
    is(describe_status($st), 'exit 0',
       "$name: a 1 MB line loads" . ($limit ? ' within 1 GiB of address space' : ''))
      or diag($out);
}

# ---- accepted: documented behaviour, started for real ------------------------------

{
    my $dir  = hostile_dir('accepted');
    my $file = "$dir/httpd.conf";
    my $port = free_port();
    my $loc = sub {
        my ($path, @lines) = @_;
        return ("    <Location $path>", '        MTLSAuthz On',
                (map { "        $_" } @lines), '    </Location>');
    };
    my @l = (
        head($dir, $port),
        ssl_vhost({port => $port, pki => $PKI},
            # duplicates: accepted, the same decision as one copy
            $loc->('/t/dup', qq{MTLSAllow "subject=$alice"}, qq{MTLSAllow "subject=$alice"},
                   qq{MTLSAllowSubject "$alice" "$alice"}, qq{MTLSAllowSubject "$alice"},
                   'MTLSAllowSAN DNS:alice.example.com DNS:ALICE.example.com.'),
            $loc->('/t/dup-fp', "MTLSAllowIssuerFingerprint sha256:$fp{FP_CA_A} "
                   . "sha256:$fp{FP_CA_A}", "MTLSAllowIssuerFingerprint sha256:$fp{FP_CA_A}",
                   qq{MTLSAllowSubject "$alice"}),
            # huge values that are valid: a rule like any other
            $loc->('/t/oid-1m', 'MTLSAllowSubject "1.3.6.1.4.1.99999.1=' . ('a' x $MB) . '"'),
            $loc->('/t/dns-1m', 'MTLSAllowSAN DNS:' . ('a' x $MB)),
            $loc->('/t/uri-1m', 'MTLSAllowSAN URI:spiffe://' . ('a' x $MB) . '/*'),
            $loc->('/t/50k-values', 'MTLSAllowSAN '
                   . join(' ', map { "DNS:h$_.example" } 1 .. 50000) . ' DNS:alice.example.com'),
            $loc->('/t/20k-sans', 'MTLSAllow '
                   . join(' ', map { "san=DNS:h$_.example" } 1 .. 20000)
                   . ' san=DNS:alice.example.com'),
            # control bytes inside a DN are part of the value
            $loc->('/t/ctrl-dn', "MTLSAllowSubject \"CN=ali\x01ce,O=Acme Inc.,C=US\" "
                   . "\"CN=ali\x7fce,O=Acme Inc.,C=US\""),
            # whitespace bytes separate words, as httpd's own parser does
            $loc->('/t/ws-cr', "MTLSAllowSAN DNS:foo.example\rDNS:alice.example.com"),
            $loc->('/t/ws-vt', "MTLSAllowSAN DNS:foo.example\x0bDNS:alice.example.com"),
            $loc->('/t/ws-ff', "MTLSAllowSAN DNS:foo.example\x0cDNS:alice.example.com"),
            $loc->('/t/ws-tab', "MTLSAllowSAN\tDNS:foo.example\tDNS:alice.example.com"),
            # a line that starts with NUL is empty to httpd: the rule is
            # gone, which only narrows
            $loc->('/t/nul-first', qq{MTLSAllowSubject "CN=bob,O=Acme Inc.,C=US"},
                   qq{\0MTLSAllowSubject "$alice"}),
        ),
    );
    write_conf($file, @l);
    my ($st, $out, $secs) = config_test($HTTPD, $file, 120);
    is(describe_status($st), 'exit 0', 'accepted: httpd -t accepts it') or diag($out);
    my ($pid, $why) = start_server($HTTPD, $file, $port, 120);
    ok($pid, 'accepted: httpd starts') or diag($why, slurp("$dir/start.out"));
    my @cases = (
        ['/t/dup', 'alice-a', 200], ['/t/dup', 'bob-a', 403],
        ['/t/dup-fp', 'alice-a', 200], ['/t/dup-fp', 'alice-b', 403],
        ['/t/dup-fp', 'bob-a', 403],
        ['/t/oid-1m', 'alice-a', 403], ['/t/oid-1m', 'bob-a', 403],
        ['/t/dns-1m', 'alice-a', 403], ['/t/uri-1m', 'alice-a', 403],
        ['/t/50k-values', 'alice-a', 200], ['/t/50k-values', 'bob-a', 403],
        ['/t/20k-sans', 'alice-a', 403],
        ['/t/ctrl-dn', 'alice-a', 403], ['/t/ctrl-dn', 'bob-a', 403],
        (map { (["/t/ws-$_", 'alice-a', 200], ["/t/ws-$_", 'bob-a', 403]) }
           qw(cr vt ff tab)),
        ['/t/nul-first', 'alice-a', 403], ['/t/nul-first', 'bob-a', 200],
        ['/t/unprotected', 'bob-a', 200],
    );
    for my $c (@cases) {
        my ($path, $cert, $want) = @$c;
        is($pid ? https_status($PKI, $port, $path, $cert, 20) : -1, $want,
           "accepted: $path, $cert: $want");
    }
    stop_server($pid) if $pid;
    unlike(slurp("$dir/error_log") . slurp("$dir/start.out"), $CRASH,
           'accepted: no crash in the error log');
}

# ---- 100,000 rules -------------------------------------------------------------------------
# 99,999 MTLSAllow lines for clients that do not exist, then alice's:
# the configuration loads, alice is admitted by the 100,000th rule, and
# bob, whom no rule lists, is not.
{
    my $dir  = hostile_dir('100k-rules');
    my $file = "$dir/httpd.conf";
    my $port = free_port();
    open my $fh, '>', "$dir/rules.conf" or die "$dir/rules.conf: $!";
    for my $i (1 .. 99_999) {
        print $fh qq{MTLSAllow "subject=CN=user-$i,O=Acme Inc.,C=US" }
          . "san=DNS:user-$i.example.com issuer=sha256:$fp{FP_CA_A}\n";
    }
    print $fh qq{MTLSAllow "subject=$alice" issuer=sha256:$fp{FP_CA_A}\n};
    close $fh or die "$dir/rules.conf: $!";
    my @l = (
        head($dir, $port),
        ssl_vhost({port => $port, pki => $PKI}, '    <Location /t/>', '        MTLSAuthz On',
                  qq{        Include "$dir/rules.conf"}, '    </Location>'),
    );
    write_conf($file, @l);
    my ($st, $out, $secs) = config_test($HTTPD, $file, 300);
    is(describe_status($st), 'exit 0', '100,000 rules: httpd -t accepts them')
      or diag($out);
    diag(sprintf '100,000 rules: httpd -t took %.1f s', $secs);
    my $t0 = time;
    my ($pid, $why) = start_server($HTTPD, $file, $port, 300);
    ok($pid, '100,000 rules: httpd starts') or diag($why, slurp("$dir/start.out"));
    diag(sprintf '100,000 rules: httpd started in %.1f s', time - $t0) if $pid;
    is($pid ? https_status($PKI, $port, '/t/x', 'alice-a', 20) : -1, 200,
       '100,000 rules: alice (the last rule) is admitted');
    is($pid ? https_status($PKI, $port, '/t/x', 'alice-b', 20) : -1, 403,
       '100,000 rules: alice from another CA is not');
    is($pid ? https_status($PKI, $port, '/t/x', 'bob-a', 20) : -1, 403,
       '100,000 rules: bob is not');
    stop_server($pid) if $pid;
    unlike(slurp("$dir/error_log") . slurp("$dir/start.out"), $CRASH,
           '100,000 rules: no crash in the error log');
}

done_testing();
