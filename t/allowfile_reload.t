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
use File::Path qw(make_path remove_tree);
use FindBin ();
use IO::Socket::SSL qw(SSL_VERIFY_PEER);
use POSIX ();
use Time::HiRes qw(time sleep);
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(locate missing_prereqs free_port slurp spew spawn wait_for
  kill_group run_cmd describe_status user_lines ssl_vhost_lines);

my %at = locate(__FILE__);
my ($HTTPD, $T_DIR, $MODULE, $BASE, $CFG) = @at{qw(httpd t_dir module base cfg)};
my $PKI = "$T_DIR/pki/out";

my @missing = missing_prereqs(%at);
push @missing, "$PKI/pins.sh is missing (t/pki/mkpki.sh makes it)" unless -e "$PKI/pins.sh";
if (@missing) {
    plan tests => 1;
    ok(0, 'prerequisites: ' . join('; ', @missing));
    exit 0;
}
plan tests => 58;

my %FP;
for (split /\n/, slurp("$PKI/pins.sh")) { $FP{$1} = $2 if /^(FP_\w+)=([0-9a-f]{64})\s*$/ }

# ---- helpers ------------------------------------------------------------------

sub new_case {
    my ($name) = @_;
    my $dir = "$CFG/$name";
    remove_tree($dir);
    make_path("$dir/rules") or die "$dir: $!";
    if ($> == 0) {    # the children (user nobody) read the rule files
        chmod 0755, $dir, "$dir/rules";
    }
    return ($dir, free_port());
}

# Writes httpd.conf; a line starting with '>>' is the one under test:
# returns (file, its line number).
sub write_conf {
    my ($dir, $port, @body) = @_;
    my @lines = (
        qq{ServerRoot "$dir"},
        qq{DefaultRuntimeDir "$dir"},
        qq{PidFile "$dir/httpd.pid"},
        qq{ErrorLog "$dir/error_log"},
        'LogLevel warn',
        qq{Include "$BASE"},
        qq{LoadModule mtls_authz_module "$MODULE"},
        "Listen 127.0.0.1:$port",
        'ServerName 127.0.0.1',
        qq{DocumentRoot "$dir"},
        'Timeout 10',
        'GracefulShutdownTimeout 1',
        user_lines(),
        ssl_vhost_lines($port, $PKI),
        '    Alias /x "' . $dir . '/ok.txt"',
        '    Alias /y "' . $dir . '/ok.txt"',
        @body,
        '</VirtualHost>',
    );
    my $mark;
    for my $i (0 .. $#lines) {
        $mark = $i + 1 if $lines[$i] =~ s/^>>//;
    }
    spew("$dir/ok.txt", "ok\n");
    spew("$dir/httpd.conf", join("\n", @lines) . "\n");
    return ("$dir/httpd.conf", $mark);
}

sub config_test {
    my ($dir, $file) = @_;
    my ($st, $hung) = run_cmd(60, "$dir/test.out", $HTTPD, '-t', '-f', $file);
    my $out = slurp("$dir/test.out");
    $out .= "\n[httpd -t did not finish within 60s]" if $hung;
    return ($st, $out);
}

# One GET on a new TLS connection to 127.0.0.1:$port; the status, or 0.
sub get {
    my ($port, $path, $cert) = @_;
    my $s = IO::Socket::SSL->new(
        PeerHost => '127.0.0.1', PeerPort => $port, Timeout => 10,
        SSL_hostname => 'localhost', SSL_verify_mode => SSL_VERIFY_PEER,
        SSL_ca_file => "$PKI/ca-a.crt", SSL_verifycn_name => 'localhost',
        SSL_verifycn_scheme => 'http',
        SSL_cert_file => "$PKI/$cert.pem", SSL_key_file => "$PKI/$cert.pem",
    ) or return 0;
    print $s "GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    my $line = <$s> // '';
    close $s;
    return $line =~ m{^HTTP/1\.\d (\d{3})} ? $1 : 0;
}

# Polls until GET returns $want or $timeout seconds pass; the last status.
sub get_until {
    my ($port, $path, $cert, $want, $timeout) = @_;
    my $deadline = time + $timeout;
    my $st;
    while (1) {
        $st = get($port, $path, $cert);
        return $st if $st == $want || time >= $deadline;
        sleep 0.2;
    }
}

sub start_httpd {
    my ($dir, $file, $port) = @_;
    my $pid = spawn("$dir/start.out", $HTTPD, '-f', $file, '-DFOREGROUND');
    my $deadline = time + 20;
    while (time < $deadline) {
        return $pid if get($port, '/y', 'alice-a');
        return undef if waitpid($pid, POSIX::WNOHANG()) == $pid;
        sleep 0.1;
    }
    kill_group($pid);
    return undef;
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
    my ($dir, $port) = new_case("allowfile-$name");
    if (!defined $content) { }
    elsif ($content eq 'DIR') { make_path("$dir/rules/allow.txt") }
    else { spew("$dir/rules/allow.txt", $content) }
    my ($file, $line) = write_conf($dir, $port,
        '    <Location /x>', '        MTLSAuthz On',
        '>>        MTLSAllowFile rules/allow.txt', '    </Location>');
    my ($st, $out) = config_test($dir, $file);
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
    my ($dir, $port) = new_case($name);
    my ($file, $line) = write_conf($dir, $port,
        '    <Location /x>', '        MTLSAllowSAN DNS:a.example', ">>$directive", '    </Location>');
    my ($st, $out) = config_test($dir, $file);
    ok($st != 0 && $out =~ /Syntax error on line $line of \Q$file\E:/, "$name: httpd -t fails at the line")
      or diag($out);
    like($out, $re, "$name: says why");
}

# Require mtls with no rule anywhere in the server: refused like MTLSAuthz On
{
    my ($dir, $port) = new_case('require-no-rules');
    my ($file, $line) = write_conf($dir, $port,
        '    <Location /x>', '>>        Require mtls', '    </Location>');
    my ($st, $out) = config_test($dir, $file);
    ok($st != 0, 'Require mtls without any rule: httpd -t fails');
    like($out, qr/Require mtls \(\Q$file\E:$line\) but no MTLSAllow, MTLSAllowFile, .* every request would be denied/,
         'and names the Require line');
}

# Require mtls without mod_ssl: refused like MTLSAuthz On.
{
    my ($dir, $port) = new_case('require-no-mod-ssl');
    my @mods = grep { !/\b(ssl_module|socache_\w+_module|http2_module)\b/ }
      grep { /\S/ } split /\n/, slurp($BASE);
    my @lines = (qq{ServerRoot "$dir"}, qq{DefaultRuntimeDir "$dir"}, qq{PidFile "$dir/httpd.pid"},
        qq{ErrorLog "$dir/error_log"}, @mods, qq{LoadModule mtls_authz_module "$MODULE"},
        "Listen 127.0.0.1:$port", 'ServerName 127.0.0.1', user_lines(),
        '<Location /x>', '    Require mtls', '    MTLSAllowSAN DNS:a.example', '</Location>');
    spew("$dir/httpd.conf", join("\n", @lines) . "\n");
    my $line = scalar(@lines) - 2;
    my ($st, $out) = config_test($dir, "$dir/httpd.conf");
    ok($st != 0, 'Require mtls without mod_ssl: httpd -t fails');
    like($out, qr/Require mtls \(\Q$dir\E\/httpd\.conf:$line\) needs mod_ssl, which is not loaded/, 'and says so');
}

# An empty rule file is allowed, with a warning: it admits nobody.
{
    my ($dir, $port) = new_case('allowfile-empty');
    spew("$dir/rules/allow.txt", "# nobody yet\n");
    my ($file) = write_conf($dir, $port,
        '    <Location /x>', '        MTLSAuthz On', '        MTLSAllowFile rules/allow.txt', '    </Location>');
    my ($st, $out) = config_test($dir, $file);
    is(describe_status($st), 'exit 0', 'an empty rule file passes httpd -t');
    like($out, qr/MTLSAllowFile \Q$dir\E\/rules\/allow\.txt \(\Q$file\E:\d+\) has no rule/, 'with a warning');
}

# A pinned issuer in a rule file is checked at startup like MTLSAllow's.
{
    my ($dir, $port) = new_case('allowfile-untrusted-pin');
    spew("$dir/rules/allow.txt", "$ALICE\n$ALICE issuer=sha256:$FP{FP_CA_A_FORGED}\n");
    my ($file) = write_conf($dir, $port,
        '    <Location /x>', '        MTLSAuthz On', '        MTLSAllowFile rules/allow.txt', '    </Location>');
    my $pid = spawn("$dir/start.out", $HTTPD, '-f', $file, '-DFOREGROUND');
    my $st = wait_for($pid, 20);
    kill_group($pid) unless defined $st;
    ok(defined $st && $st != 0, 'a rule file pinning an untrusted CA: httpd refuses to start');
    like(slurp("$dir/start.out") . slurp("$dir/error_log"),
         qr/\] \Q$dir\E\/rules\/allow\.txt:2: issuer sha256:$FP{FP_CA_A_FORGED} is not a CA certificate in the trust store/,
         'naming the rule file and line');
}

# ---- what mtls-authz-rule prints can be appended to a rule file as is ----------
{
    my ($dir, $port) = new_case('allowfile-from-tool');
    my $rules = "$dir/rules/allow.txt";
    my $tool  = "$at{top}/build/mtls-authz-rule";
    spew($rules, "# partners\n");
    my ($st) = run_cmd(30, "$dir/tool.err", '/bin/sh', '-c',
        'exec "$0" --ca "$1" "$2" >>"$3"', $tool, "$PKI/trust-all.crt", "$PKI/alice-a.crt", $rules);
    is(describe_status($st), 'exit 0', 'mtls-authz-rule --ca trust-all.crt alice-a.crt >> rules/allow.txt')
      or diag(slurp("$dir/tool.err"));
    my ($file) = write_conf($dir, $port,
        '    <Location /x>', '        MTLSAuthz On', '        MTLSAllowFile rules/allow.txt', '    </Location>');
    my $pid = start_httpd($dir, $file, $port);
    is($pid ? get($port, '/x', 'alice-a') : -1, 200, "the tool's rule admits alice")
      or diag(slurp($rules) . slurp("$dir/start.out") . slurp("$dir/error_log"));
    is($pid ? get($port, '/x', 'alice-b') : -1, 403, 'and not alice from another CA');
    kill_group($pid) if $pid;
}

# ---- 100,000 lines: loads, serves, and counts its lines right -------------------
# (scripts/bench-allowfile.sh measures the time and memory.)
{
    my ($dir, $port) = new_case('allowfile-100k');
    my $rules = "$dir/rules/allow.txt";
    open my $fh, '>', $rules or die "$rules: $!";
    for my $i (1 .. 99_999) {
        print $fh $i % 2 ? "san=URI:spiffe://example.org/ns/bench/sa/c$i\n"
                         : sprintf("cert=sha256:%064x\n", $i);
    }
    print $fh "$ALICE issuer=sha256:$FP{FP_CA_A}\n";
    close $fh or die "$rules: $!";
    my ($file) = write_conf($dir, $port,
        '    <Location /x>', '        MTLSAuthz On', '        MTLSAllowFile rules/allow.txt', '    </Location>',
        '    <Location /y>', '        Require mtls', '        MTLSAllowFile rules/allow.txt', '    </Location>');
    my $pid = start_httpd($dir, $file, $port);
    ok($pid, 'httpd starts with a 100,000-line rule file (twice in one scope)')
      or diag(slurp("$dir/start.out") . slurp("$dir/error_log"));
    is($pid ? get($port, '/x', 'alice-a') : -1, 200, 'the rule on line 100000 admits alice');
    is($pid ? get($port, '/x', 'bob-a') : -1, 403, 'bob is in none of them');
    kill_group($pid) if $pid;

    open $fh, '>>', $rules or die "$rules: $!";
    print $fh "subject=CN=x;y\n";
    close $fh or die "$rules: $!";
    my ($st, $out) = config_test($dir, $file);
    ok($st != 0, 'an error on line 100001: httpd -t fails');
    like($out, qr/MTLSAllowFile: \Q$rules\E:100001: bad DN/, 'and names line 100001');
}

# ---- graceful restart re-reads the file --------------------------------------------

{
    my ($dir, $port) = new_case('allowfile-graceful');
    my $rules = "$dir/rules/allow.txt";
    spew($rules, "# partners\n$ALICE issuer=sha256:$FP{FP_CA_A}\n");
    my ($file) = write_conf($dir, $port,
        '    <Location /x>', '        MTLSAuthz On', '        MTLSAllowFile rules/allow.txt', '    </Location>',
        '    <Location /y>', '        Require mtls', '        MTLSAllowFile rules/allow.txt', '    </Location>');
    my $pid = start_httpd($dir, $file, $port);
    ok($pid, 'httpd starts with a rule file') or diag(slurp("$dir/start.out") . slurp("$dir/error_log"));
    if (!$pid) {
        ok(0, "graceful restart case $_: httpd did not start") for 1 .. 13;
    }
    else {
        is(get($port, '/x', 'alice-a'), 200, 'alice admitted');
        is(get($port, '/x', 'bob-a'), 403, 'bob denied');

        spew($rules, "# partners\n$ALICE issuer=sha256:$FP{FP_CA_A}\n\"subject=CN=bob,O=Acme Inc.,C=US\"\n");
        my ($st) = run_cmd(30, "$dir/graceful.out", $HTTPD, '-k', 'graceful', '-f', $file);
        is(describe_status($st), 'exit 0', 'httpd -k graceful') or diag(slurp("$dir/graceful.out"));
        is(get_until($port, '/x', 'bob-a', 200, 20), 200, 'after graceful: bob admitted by the new line (MTLSAuthz On)');
        is(get($port, '/y', 'bob-a'), 200, '... and by Require mtls');
        is(get($port, '/x', 'alice-a'), 200, 'alice still admitted');

        # A broken file: configtest fails and names the line; nothing changes.
        spew($rules, "$ALICE\nsubject=CN=carol;O=x\n");
        my ($tst, $out) = config_test($dir, $file);
        ok($tst != 0 && $out =~ /MTLSAllowFile: \Q$rules\E:2: bad DN/,
           'broken file: httpd -t (apachectl configtest) fails naming rules/allow.txt:2') or diag($out);
        is(get($port, '/x', 'bob-a'), 200, 'the running server still serves the old rules');

        # httpd -k graceful reads the configuration before it signals:
        # with a broken file it refuses, and the old rules keep serving.
        ($st) = run_cmd(30, "$dir/graceful2.out", $HTTPD, '-k', 'graceful', '-f', $file);
        ok($st != 0, 'httpd -k graceful with a broken file fails (' . describe_status($st) . ')')
          or diag(slurp("$dir/graceful2.out"));
        sleep 1;
        is(get($port, '/x', 'bob-a'), 200, '... and the server keeps serving the old rules');

        # SIGUSR1 itself (kill -USR1, or a tool that skips the check):
        # httpd re-reads the configuration, fails, and exits.
        kill 'USR1', $pid;
        my $exit = wait_for($pid, 20);
        ok(defined $exit, 'SIGUSR1 with a broken file: httpd exits (' . (defined $exit ? describe_status($exit) : 'still running') . ')');
        like(slurp("$dir/start.out") . slurp("$dir/error_log"), qr/MTLSAllowFile: \Q$rules\E:2: bad DN/,
             'and says why');
        is(get($port, '/x', 'alice-a'), 0, 'nothing serves any more');
        kill_group($pid) unless defined $exit;
    }
}
