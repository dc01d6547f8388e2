# MTLSAllowFile outside the test server: errors that name the rule
# file's line, paths relative to ServerRoot, and reloading on graceful
# restart, including what httpd does with a broken file. Also the
# startup refusals of Require mtls and MTLSAuthzMode.
#
# Like t/startup.t this runs the httpd binary itself, on configurations
# in t/logs/cfg/NAME/, each on a free loopback port with time limits.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use File::Path qw(make_path);
use FindBin ();
use Time::HiRes qw(time sleep);
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(locate missing_prereqs slurp spew wait_for kill_group new_case
  run_cmd describe_status head_lines no_ssl_modules ssl_vhost write_conf
  config_test start_server https_status pins);

my %at = locate(__FILE__);
my ($HTTPD, $PKI) = @at{qw(httpd pki)};

my @missing = missing_prereqs(%at, need_pki => 1);
if (@missing) {
    plan tests => 1;
    ok(0, 'prerequisites: ' . join('; ', @missing));
    exit 0;
}
plan tests => 58;

my %FP = pins($PKI);

# ---- helpers ------------------------------------------------------------------

# Writes httpd.conf: a TLS host serving ok.txt as /x and /y, with @body
# in it; a line starting with '>>' is the one under test: returns (file,
# its line number).
sub conf {
    my ($dir, $port, @body) = @_;
    spew("$dir/ok.txt", "ok\n");
    return write_conf("$dir/httpd.conf", head_lines(%at, dir => $dir, port => $port),
        ssl_vhost({port => $port, pki => $PKI},
                  qq{    Alias /x "$dir/ok.txt"}, qq{    Alias /y "$dir/ok.txt"}, @body));
}

# Polls until GET returns $want or $timeout seconds pass; the last status.
sub get_until {
    my ($port, $path, $cert, $want, $timeout) = @_;
    my $deadline = time + $timeout;
    my $st;
    while (1) {
        $st = https_status($PKI, $port, $path, $cert);
        return $st if $st == $want || time >= $deadline;
        sleep 0.2;
    }
}


# ---- errors name the rule file and line ------------------------------------------

my $ALICE = '"subject=CN=alice,O=Acme Inc.,C=US"';
# [name, file content (undef: no file; 'DIR': a directory), message pattern]
my @bad = (
    ['bad-dn', "# comment\n\nsubject=CN=a;O=b\n", qr/MTLSAllowFile: \S+\/rules\/allow\.txt:3: bad DN 'CN=a;O=b'/],
    ['bad-key', "$ALICE\n  bogus=1\n", qr/MTLSAllowFile: \S+\/rules\/allow\.txt:2: 'bogus=1'|unknown key 'bogus'/],
    ['bad-quote', "$ALICE\n$ALICE\n\"subject=CN=x\n", qr/MTLSAllowFile: \S+\/rules\/allow\.txt:3: unbalanced double quote/],
    ['weak-fp', "issuer=sha1:00\n", qr/MTLSAllowFile: \S+\/rules\/allow\.txt:1: issuer=.*too weak/],
    ['other-directive', "MTLSAllowSubject \"CN=x\"\n", qr/MTLSAllowFile: \S+\/rules\/allow\.txt:1: MTLSAllowSubject is not allowed in a rule file/],
    ['nul-byte', "$ALICE\n\0\n", qr/MTLSAllowFile: \S+\/rules\/allow\.txt: contains a NUL byte/],
    ['missing', undef, qr/MTLSAllowFile: \S+\/rules\/allow\.txt: cannot read: No such file or directory/],
    ['directory', 'DIR', qr/MTLSAllowFile: \S+\/rules\/allow\.txt: not a regular file/],
);
for my $c (@bad) {
    my ($name, $content, $re) = @$c;
    my ($dir, $port) = new_case($at{cfg}, "allowfile-$name", 'rules');
    if (!defined $content) { }
    elsif ($content eq 'DIR') { make_path("$dir/rules/allow.txt") }
    else { spew("$dir/rules/allow.txt", $content) }
    my ($file, $line) = conf($dir, $port,
        '    <Location /x>', '        MTLSAuthz On',
        '>>        MTLSAllowFile rules/allow.txt', '    </Location>');
    my ($st, $out) = config_test($HTTPD, $file, 60);
    ok($st != 0 && $out !~ /Syntax OK/, "$name: httpd -t fails (" . describe_status($st) . ')') or diag($out);
    like($out, qr/Syntax error on line $line of \Q$file\E:/, "$name: names the directive's file and line");
    like($out, $re, "$name: names the rule file's path and line") or diag($out);
}

# Other new directives
my @bad_directives = (
    ['mode-bogus', '        MTLSAuthzMode Shadow', qr/MTLSAuthzMode: 'Shadow': expected Enforce or Audit/],
    ['require-args', '        Require mtls alice', qr/Require mtls takes no argument \(got 'alice'\)/],
);
for my $c (@bad_directives) {
    my ($name, $directive, $re) = @$c;
    my ($dir, $port) = new_case($at{cfg}, $name, 'rules');
    my ($file, $line) = conf($dir, $port,
        '    <Location /x>', '        MTLSAllowSAN DNS:a.example', ">>$directive", '    </Location>');
    my ($st, $out) = config_test($HTTPD, $file, 60);
    ok($st != 0 && $out =~ /Syntax error on line $line of \Q$file\E:/, "$name: httpd -t fails at the line")
      or diag($out);
    like($out, $re, "$name: says why");
}

# Require mtls with no rule anywhere in the server: refused like MTLSAuthz On
{
    my ($dir, $port) = new_case($at{cfg}, 'require-no-rules', 'rules');
    my ($file, $line) = conf($dir, $port,
        '    <Location /x>', '>>        Require mtls', '    </Location>');
    my ($st, $out) = config_test($HTTPD, $file, 60);
    ok($st != 0, 'Require mtls without any rule: httpd -t fails');
    like($out, qr/Require mtls \(\Q$file\E:$line\) but no MTLSAllow, MTLSAllowFile, .* every request would be denied/,
         'and names the Require line');
}

# Require mtls without mod_ssl: refused like MTLSAuthz On.
{
    my ($dir, $port) = new_case($at{cfg}, 'require-no-mod-ssl', 'rules');
    my ($file, $line) = write_conf("$dir/httpd.conf",
        head_lines(%at, dir => $dir, port => $port, load => [no_ssl_modules($at{base})]),
        '<Location /x>', '>>    Require mtls', '    MTLSAllowSAN DNS:a.example', '</Location>');
    my ($st, $out) = config_test($HTTPD, $file, 60);
    ok($st != 0, 'Require mtls without mod_ssl: httpd -t fails');
    like($out, qr/Require mtls \(\Q$file\E:$line\) needs mod_ssl, which is not loaded/,
         'and says so');
}

# An empty rule file is allowed, with a warning: it admits nobody.
{
    my ($dir, $port) = new_case($at{cfg}, 'allowfile-empty', 'rules');
    spew("$dir/rules/allow.txt", "# nobody yet\n");
    my ($file) = conf($dir, $port,
        '    <Location /x>', '        MTLSAuthz On', '        MTLSAllowFile rules/allow.txt', '    </Location>');
    my ($st, $out) = config_test($HTTPD, $file, 60);
    is(describe_status($st), 'exit 0', 'an empty rule file passes httpd -t');
    like($out, qr/MTLSAllowFile \Q$dir\E\/rules\/allow\.txt \(\Q$file\E:\d+\) has no rule/, 'with a warning');
}

# A pinned issuer in a rule file is checked at startup like MTLSAllow's.
{
    my ($dir, $port) = new_case($at{cfg}, 'allowfile-untrusted-pin', 'rules');
    spew("$dir/rules/allow.txt", "$ALICE\n$ALICE issuer=sha256:$FP{FP_CA_A_FORGED}\n");
    my ($file) = conf($dir, $port,
        '    <Location /x>', '        MTLSAuthz On', '        MTLSAllowFile rules/allow.txt', '    </Location>');
    my ($pid, $why, $st) = start_server($HTTPD, $file, $port, 20);
    kill_group($pid) if $pid;
    ok(defined $st && $st != 0, 'a rule file pinning an untrusted CA: httpd refuses to start')
      or diag($why);
    like(slurp("$dir/start.out") . slurp("$dir/error_log"),
         qr/\] \Q$dir\E\/rules\/allow\.txt:2: issuer sha256:$FP{FP_CA_A_FORGED} is not a CA certificate in the trust store/,
         'naming the rule file and line');
}

# ---- what mtls-authz-rule prints can be appended to a rule file as is ----------
{
    my ($dir, $port) = new_case($at{cfg}, 'allowfile-from-tool', 'rules');
    my $rules = "$dir/rules/allow.txt";
    my $tool  = "$at{top}/build/mtls-authz-rule";
    spew($rules, "# partners\n");
    my ($st) = run_cmd(30, "$dir/tool.err", '/bin/sh', '-c',
        'exec "$0" --ca "$1" "$2" >>"$3"', $tool, "$PKI/trust-all.crt", "$PKI/alice-a.crt", $rules);
    is(describe_status($st), 'exit 0', 'mtls-authz-rule --ca trust-all.crt alice-a.crt >> rules/allow.txt')
      or diag(slurp("$dir/tool.err"));
    my ($file) = conf($dir, $port,
        '    <Location /x>', '        MTLSAuthz On', '        MTLSAllowFile rules/allow.txt', '    </Location>');
    my ($pid) = start_server($HTTPD, $file, $port, 20);
    is($pid ? https_status($PKI, $port, '/x', 'alice-a') : -1, 200, "the tool's rule admits alice")
      or diag(slurp($rules) . slurp("$dir/start.out") . slurp("$dir/error_log"));
    is($pid ? https_status($PKI, $port, '/x', 'alice-b') : -1, 403,
       'and not alice from another CA');
    kill_group($pid) if $pid;
}

# ---- 100,000 lines: loads, serves, and counts its lines right -------------------
# (scripts/bench-allowfile.sh measures the time and memory.)
{
    my ($dir, $port) = new_case($at{cfg}, 'allowfile-100k', 'rules');
    my $rules = "$dir/rules/allow.txt";
    open my $fh, '>', $rules or die "$rules: $!";
    for my $i (1 .. 99_999) {
        print $fh $i % 2 ? "san=URI:spiffe://example.org/ns/bench/sa/c$i\n"
                         : sprintf("cert=sha256:%064x\n", $i);
    }
    print $fh "$ALICE issuer=sha256:$FP{FP_CA_A}\n";
    close $fh or die "$rules: $!";
    my ($file) = conf($dir, $port,
        '    <Location /x>', '        MTLSAuthz On', '        MTLSAllowFile rules/allow.txt', '    </Location>',
        '    <Location /y>', '        Require mtls', '        MTLSAllowFile rules/allow.txt', '    </Location>');
    my ($pid) = start_server($HTTPD, $file, $port, 20);
    ok($pid, 'httpd starts with a 100,000-line rule file (twice in one scope)')
      or diag(slurp("$dir/start.out") . slurp("$dir/error_log"));
    is($pid ? https_status($PKI, $port, '/x', 'alice-a') : -1, 200,
       'the rule on line 100000 admits alice');
    is($pid ? https_status($PKI, $port, '/x', 'bob-a') : -1, 403, 'bob is in none of them');
    kill_group($pid) if $pid;

    open $fh, '>>', $rules or die "$rules: $!";
    print $fh "subject=CN=x;y\n";
    close $fh or die "$rules: $!";
    my ($st, $out) = config_test($HTTPD, $file, 60);
    ok($st != 0, 'an error on line 100001: httpd -t fails');
    like($out, qr/MTLSAllowFile: \Q$rules\E:100001: bad DN/, 'and names line 100001');
}

# ---- graceful restart re-reads the file --------------------------------------------

{
    my ($dir, $port) = new_case($at{cfg}, 'allowfile-graceful', 'rules');
    my $rules = "$dir/rules/allow.txt";
    spew($rules, "# partners\n$ALICE issuer=sha256:$FP{FP_CA_A}\n");
    my ($file) = conf($dir, $port,
        '    <Location /x>', '        MTLSAuthz On', '        MTLSAllowFile rules/allow.txt', '    </Location>',
        '    <Location /y>', '        Require mtls', '        MTLSAllowFile rules/allow.txt', '    </Location>');
    my ($pid) = start_server($HTTPD, $file, $port, 20);
    ok($pid, 'httpd starts with a rule file') or diag(slurp("$dir/start.out") . slurp("$dir/error_log"));
    if (!$pid) {
        ok(0, "graceful restart case $_: httpd did not start") for 1 .. 13;
    }
    else {
        is(https_status($PKI, $port, '/x', 'alice-a'), 200, 'alice admitted');
        is(https_status($PKI, $port, '/x', 'bob-a'), 403, 'bob denied');

        spew($rules, "# partners\n$ALICE issuer=sha256:$FP{FP_CA_A}\n\"subject=CN=bob,O=Acme Inc.,C=US\"\n");
        my ($st) = run_cmd(30, "$dir/graceful.out", $HTTPD, '-k', 'graceful', '-f', $file);
        is(describe_status($st), 'exit 0', 'httpd -k graceful') or diag(slurp("$dir/graceful.out"));
        is(get_until($port, '/x', 'bob-a', 200, 20), 200, 'after graceful: bob admitted by the new line (MTLSAuthz On)');
        is(https_status($PKI, $port, '/y', 'bob-a'), 200, '... and by Require mtls');
        is(https_status($PKI, $port, '/x', 'alice-a'), 200, 'alice still admitted');

        # A broken file: configtest fails and names the line; nothing changes.
        spew($rules, "$ALICE\nsubject=CN=carol;O=x\n");
        my ($tst, $out) = config_test($HTTPD, $file, 60);
        ok($tst != 0 && $out =~ /MTLSAllowFile: \Q$rules\E:2: bad DN/,
           'broken file: httpd -t (apachectl configtest) fails naming rules/allow.txt:2') or diag($out);
        is(https_status($PKI, $port, '/x', 'bob-a'), 200,
           'the running server still serves the old rules');

        # httpd -k graceful reads the configuration before it signals:
        # with a broken file it refuses, and the old rules keep serving.
        ($st) = run_cmd(30, "$dir/graceful2.out", $HTTPD, '-k', 'graceful', '-f', $file);
        ok($st != 0, 'httpd -k graceful with a broken file fails (' . describe_status($st) . ')')
          or diag(slurp("$dir/graceful2.out"));
        sleep 1;
        is(https_status($PKI, $port, '/x', 'bob-a'), 200,
           '... and the server keeps serving the old rules');

        # SIGUSR1 itself (kill -USR1, or a tool that skips the check):
        # httpd re-reads the configuration, fails, and exits.
        kill 'USR1', $pid;
        my $exit = wait_for($pid, 20);
        ok(defined $exit, 'SIGUSR1 with a broken file: httpd exits (' . (defined $exit ? describe_status($exit) : 'still running') . ')');
        like(slurp("$dir/start.out") . slurp("$dir/error_log"), qr/MTLSAllowFile: \Q$rules\E:2: bad DN/,
             'and says why');
        is(https_status($PKI, $port, '/x', 'alice-a'), 0, 'nothing serves any more');
        kill_group($pid) unless defined $exit;
    }
}
