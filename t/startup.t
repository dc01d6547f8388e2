# Startup refusals: the checks that run when httpd really starts
# (post_config: every pinned issuer must be a CA in the host's trust
# store) or in check_config (MTLSAuthz On needs mod_ssl and at least one
# rule), so that `httpd -t` fails too. Positive controls: the same SSL
# host pinning a trusted CA starts and stops.
#
# This file does not use the Apache::Test server: it runs the httpd binary
# itself on small configurations written to t/logs/cfg/NAME/, each on its
# own free loopback port, each with a hard time limit.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path remove_tree);
use FindBin ();
use IO::Socket::INET ();
use MIME::Base64 qw(decode_base64);
use POSIX ();
use Time::HiRes qw(time sleep);
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(locate missing_prereqs free_port slurp spew spawn wait_for
  kill_group run_cmd describe_status user_lines);

# MTLS_TIMEOUT_SCALE: make valgrind sets it, httpd being far slower.
my $SCALE         = $ENV{MTLS_TIMEOUT_SCALE} || 1;
my $START_TIMEOUT = 15 * $SCALE;    # seconds for httpd to refuse, or to start
my $STOP_TIMEOUT  = 15 * $SCALE;    # seconds for httpd to stop after SIGTERM

# ---- where things are ------------------------------------------------------

my %at = locate(__FILE__);
my ($HTTPD, $T_DIR, $MODULE, $BASE, $CFG) = @at{qw(httpd t_dir module base cfg)};

# ---- helpers --------------------------------------------------------------

# httpd -t on a configuration: (wait status, output).
sub config_test {
    my ($dir, $file) = @_;
    my ($st, $hung) =
      run_cmd(30 * $SCALE, "$dir/test.out", $HTTPD, '-t', '-f', $file);
    my $out = slurp("$dir/test.out");
    $out .= "\n[httpd -t did not finish within 30s]" if $hung;
    return ($st, $out);
}

# Asserts that httpd -t fails on a configuration; returns its output.
sub config_test_fails {
    my ($name, $dir, $file) = @_;
    my ($st, $out) = config_test($dir, $file);
    ok($st != 0 && $out !~ /Syntax OK/, "$name: httpd -t fails (" . describe_status($st) . ')')
      or diag($out);
    return $out;
}

# Starts httpd -DFOREGROUND; returns
#   { exited => 1, status => wait status }   it stopped by itself
#   { started => 1, pid => pid }             it accepts connections on port
#   { hung => 1, pid => pid }                neither within $START_TIMEOUT
# and in every case output => stdout + stderr + ErrorLog so far.
sub start_httpd {
    my ($dir, $file, $port) = @_;
    unlink "$dir/error_log", "$dir/httpd.pid";
    my $pid = spawn("$dir/start.out", $HTTPD, '-f', $file, '-DFOREGROUND');
    my $deadline = time + $START_TIMEOUT;
    my %r;
    while (1) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            %r = (exited => 1, status => $?);
            last;
        }
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Proto => 'tcp',
                                      Timeout => 1);
        # Started: the port answers, httpd has written its pid file and
        # logged that it runs. The pid file rules out another process
        # that happens to listen on the port picked by free_port() while
        # this httpd fails. httpd listens before the post_config checks
        # that may refuse to start, and writes the pid file just before
        # it logs 'resuming normal operations': waiting for that line too
        # keeps a slow start (SANITIZE=1, valgrind) from being judged
        # half-way.
        if ($s) {
            close $s;
            if ((slurp("$dir/httpd.pid") // '') =~ /^\s*\Q$pid\E\s*$/
                && slurp("$dir/error_log") =~ /resuming normal operations/) {
                %r = (started => 1, pid => $pid);
                last;
            }
        }
        if (time >= $deadline) {
            %r = (hung => 1, pid => $pid);
            last;
        }
        sleep 0.1;
    }
    $r{output} = slurp("$dir/start.out") . slurp("$dir/error_log");
    return \%r;
}

# Asserts that httpd refuses to start: it exits by itself, non-zero,
# within the time limit. One that started or hangs is ended, and fails.
sub refuses_to_start {
    my ($name, $dir, $file, $port) = @_;
    my $r = start_httpd($dir, $file, $port);
    my $why;
    if ($r->{started}) {
        my $st = kill_group($r->{pid});
        $why = 'it started and accepted a connection (stopped it: '
          . describe_status($st) . ')';
    }
    elsif ($r->{hung}) {
        my $st = kill_group($r->{pid});
        $why = "it was still running after ${START_TIMEOUT}s (killed: "
          . describe_status($st) . ')';
    }
    elsif ($r->{status} == 0) {
        $why = 'it exited with status 0';
    }
    # What it said, now that it has ended.
    my $out = slurp("$dir/start.out") . slurp("$dir/error_log");
    ok(!$why, "$name: httpd refuses to start ("
       . ($r->{exited} ? describe_status($r->{status}) : 'did not exit') . ')')
      or diag("$why\n" . tail($out));
    return $out;
}

sub tail {
    my @l = split /\n/, $_[0];
    splice @l, 0, @l - 15 if @l > 15;
    return join "\n", @l;
}

# The first lines of every configuration. $modules: LoadModule lines to
# use instead of including build/base-httpd.conf.
sub head_lines {
    my ($dir, $port, $modules) = @_;
    return (
        "# written by t/startup.t",
        qq{ServerRoot "$dir"},
        qq{DefaultRuntimeDir "$dir"},
        qq{PidFile "$dir/httpd.pid"},
        qq{ErrorLog "$dir/error_log"},
        'LogLevel warn',
        ($modules ? @$modules : qq{Include "$BASE"}),
        qq{LoadModule mtls_authz_module "$MODULE"},
        "Listen 127.0.0.1:$port",
        "ServerName 127.0.0.1",
        qq{DocumentRoot "$dir"},
        'Timeout 10',
        'GracefulShutdownTimeout 1',
        user_lines(),
    );
}

# A fresh directory t/logs/cfg/NAME/ and a free loopback port for a case:
# (dir, port).
sub new_case {
    my ($name) = @_;
    my $dir = "$CFG/$name";
    remove_tree($dir);
    make_path($dir) or die "$dir: $!";
    return ($dir, free_port());
}

# Writes the lines; a line that starts with '>>' is the one under test:
# returns (file, that line's number).
sub write_conf {
    my ($dir, @lines) = @_;
    my $file = "$dir/httpd.conf";
    my $mark;
    for my $i (0 .. $#lines) {
        $mark = $i + 1 if $lines[$i] =~ s/^>>//;
    }
    spew($file, join("\n", @lines) . "\n");
    return ($file, $mark);
}

# ---- the PKI ------------------------------------------------------------

sub pem_fp {
    my ($file) = @_;
    my $pem = slurp($file);
    $pem =~ /-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----/s
      or die "$file: no certificate\n";
    return sha256_hex(decode_base64($1));
}

# t/pki/out from t/pki/mkpki.sh (scripts/run-tests.sh makes it first);
# without it, a throwaway PKI made here with the openssl CLI.
sub pki {
    my $out = "$T_DIR/pki/out";
    if (-e "$out/pins.sh") {
        my %fp;
        for (split /\n/, slurp("$out/pins.sh")) {
            $fp{$1} = $2 if /^(FP_\w+)=([0-9a-fA-F]{64})\s*$/;
        }
        return ($out, \%fp, 't/pki/out');
    }
    my $dir = "$CFG/pki";
    remove_tree($dir);
    make_path($dir) or die "$dir: $!";
    spew("$dir/openssl.cnf", <<'EOF');
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[srv]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    my $run = sub {
        my $o = "$dir/openssl.log";
        my ($st) = run_cmd(30, $o, 'openssl', @_);
        die "openssl @_ failed:\n" . slurp($o) if $st;
    };
    my @key = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes');
    for my $ca (['ca-a', 'Throwaway CA A'], ['ca-b', 'Throwaway CA B'],
                ['ca-other', 'Throwaway Other CA']) {
        $run->('req', '-x509', '-config', "$dir/openssl.cnf", '-extensions', 'ca',
               @key, '-keyout', "$dir/$ca->[0].key", '-out', "$dir/$ca->[0].crt",
               '-subj', "/CN=$ca->[1]", '-days', '2');
    }
    my $serial = 1000 + $$;
    for my $leaf (['int-a', '/CN=Throwaway Intermediate A', 'ca'],
                  ['server', '/CN=localhost', 'srv']) {
        $run->('req', '-new', '-config', "$dir/openssl.cnf", @key,
               '-keyout', "$dir/$leaf->[0].key", '-out', "$dir/$leaf->[0].csr",
               '-subj', $leaf->[1]);
        $run->('x509', '-req', '-in', "$dir/$leaf->[0].csr",
               '-CA', "$dir/ca-a.crt", '-CAkey', "$dir/ca-a.key",
               '-set_serial', $serial++, '-days', '2',
               '-extfile', "$dir/openssl.cnf", '-extensions', $leaf->[2],
               '-out', "$dir/$leaf->[0].crt");
    }
    spew("$dir/trust-a.crt", slurp("$dir/ca-a.crt"));
    spew("$dir/trust-all.crt",
         join '', map { slurp("$dir/$_.crt") } qw(ca-a ca-b int-a));
    my %fp = (FP_CA_A => pem_fp("$dir/ca-a.crt"), FP_CA_B => pem_fp("$dir/ca-b.crt"),
              FP_INT_A => pem_fp("$dir/int-a.crt"),
              FP_CA_OTHER => pem_fp("$dir/ca-other.crt"));
    return ($dir, \%fp, "throwaway PKI in $dir (no t/pki/out/pins.sh)");
}

# ---- preconditions: fail loudly, never skip --------------------------------

my @missing = missing_prereqs(%at);
push @missing, "$BASE loads no mod_ssl"
  if -f $BASE && slurp($BASE) !~ /^LoadModule\s+ssl_module/m;

plan tests => 65;

ok(!@missing, 'preconditions: httpd, module and base configuration exist')
  or diag(join "\n", @missing);
die "cannot run: @missing\n" if @missing;

my ($PKI, $FP, $pki_from) = eval { pki() };
die "cannot make the test PKI: $@" unless $PKI;
my @need = grep { !($FP->{$_} && $FP->{$_} =~ /^[0-9a-f]{64}$/) }
  qw(FP_CA_A FP_CA_B FP_INT_A FP_CA_OTHER);
push @need, grep { !-s "$PKI/$_" }
  qw(server.crt server.key trust-a.crt trust-all.crt ca-a.crt);
ok(!@need, "PKI from $pki_from has the pins and files needed")
  or diag("missing: @need");
die "cannot run: PKI lacks @need\n" if @need;
# pins.sh must agree with the certificates, or every case below is moot.
is($FP->{FP_CA_A}, pem_fp("$PKI/ca-a.crt"), 'FP_CA_A is the fingerprint of ca-a.crt');
diag("httpd: $HTTPD; PKI: $pki_from; configurations in $CFG");

# The LoadModule lines of build/base-httpd.conf without mod_ssl (and the
# modules that need it or are only there for it).
my @no_ssl = grep { !/\b(ssl_module|socache_\w+_module|http2_module)\b/ }
  grep { /\S/ } split /\n/, slurp($BASE);

# An SSL host on $port trusting $trust, with @body inside it.
sub ssl_vhost {
    my ($port, $trust, @body) = @_;
    return (
        "<VirtualHost 127.0.0.1:$port>",
        '    ServerName localhost',
        '    SSLEngine on',
        qq{    SSLCertificateFile "$PKI/server.crt"},
        qq{    SSLCertificateKeyFile "$PKI/server.key"},
        qq{    SSLCACertificateFile "$PKI/$trust"},
        '    SSLVerifyClient require',
        '    SSLVerifyDepth 3',
        @body,
        '</VirtualHost>',
    );
}

# ---- a. MTLSAuthz On without mod_ssl (check_config) ----------------------
{
    my $name = 'no-mod-ssl';
    my ($dir, $port) = new_case($name);
    my ($file, $line) = write_conf($dir, head_lines($dir, $port, \@no_ssl),
        '<Location /x>',
        '>>    MTLSAuthz On',
        '    MTLSAllowSAN DNS:alice.example.com',
        '</Location>');
    my $msg = "MTLSAuthz On ($file:$line) needs mod_ssl, which is not loaded";
    my $out = config_test_fails($name, $dir, $file);
    like($out, qr/\Q$msg\E/, "$name: httpd -t says MTLSAuthz On at file:line needs mod_ssl");
    $out = refuses_to_start($name, $dir, $file, $port);
    like($out, qr/\Q$msg\E/, "$name: start says MTLSAuthz On at file:line needs mod_ssl");
}

# ---- b. MTLSAuthz On without any rule (check_config) ---------------------
{
    my $name = 'no-rules';
    my ($dir, $port) = new_case($name);
    my ($file, $line) = write_conf($dir, head_lines($dir, $port),
        '<Location /x>',
        '>>    MTLSAuthz On',
        '</Location>');
    my $msg = "MTLSAuthz On ($file:$line) but no MTLSAllow, MTLSAllowFile, MTLSAllowSubject, "
      . "MTLSAllowSAN or MTLSAllowIssuerFingerprint is configured for ";
    my $out = config_test_fails($name, $dir, $file);
    like($out, qr/\Q$msg\E.*: every request would be denied/,
         "$name: httpd -t says MTLSAuthz On at file:line has no rule");
    $out = refuses_to_start($name, $dir, $file, $port);
    like($out, qr/\Q$msg\E.*: every request would be denied/,
         "$name: start says MTLSAuthz On at file:line has no rule");
}

# b2. Rules in another virtual host do not count.
{
    my $name = 'no-rules-in-vhost';
    my ($dir, $port) = new_case($name);
    my ($file, $line) = write_conf($dir, head_lines($dir, $port),
        "<VirtualHost 127.0.0.1:$port>",
        '    ServerName a.example',
        '>>    MTLSAuthz On',
        '</VirtualHost>',
        "<VirtualHost 127.0.0.1:$port>",
        '    ServerName b.example',
        '    MTLSAuthz On',
        '    MTLSAllowSAN DNS:b.example',
        '</VirtualHost>');
    my $out = config_test_fails($name, $dir, $file);
    my $vline = $line - 2;    # <VirtualHost> of a.example
    like($out, qr/\QMTLSAuthz On ($file:$line) but no MTLSAllow\E.* configured for a\.example:\d+ \(\Q$file:$vline\E\): every request would be denied/,
         "$name: names the host without rules (a.example, $file:$vline) and the line");
}

# ---- c. pinned issuers that the host does not trust (post_config) --------

# [name, trust bundle, lines inside the vhost (>> marks the pin),
#  lines in the main server (>> marks the pin), pinned fingerprint]
my @untrusted = (
    ['pin-ca-b-untrusted', 'trust-a.crt',
     ['    <Location /x>',
      '        MTLSAuthz On',
      ">>        MTLSAllowIssuerFingerprint sha256:$FP->{FP_CA_B}",
      '    </Location>'], [], $FP->{FP_CA_B}],
    ['pin-int-a-untrusted', 'trust-a.crt',
     ['    <Location /x>',
      '        MTLSAuthz On',
      ">>        MTLSAllow issuer=sha256:$FP->{FP_INT_A} san=DNS:alice.example.com",
      '    </Location>'], [], $FP->{FP_INT_A}],
    ['pin-second-untrusted', 'trust-a.crt',
     ['    MTLSAuthz On',
      ">>    MTLSAllowIssuerFingerprint sha256:$FP->{FP_CA_A} sha256:"
        . join(':', map { uc } unpack '(A2)*', $FP->{FP_CA_B})],
     [], $FP->{FP_CA_B}],
    ['pin-main-server-untrusted', 'trust-all.crt', [],
     ['<Location /main>',
      '    MTLSAuthz On',
      ">>    MTLSAllow subject=CN=alice issuer=sha256:$FP->{FP_CA_OTHER}",
      '</Location>'], $FP->{FP_CA_OTHER}],
);

for my $c (@untrusted) {
    my ($name, $trust, $in_vhost, $in_main, $fp) = @$c;
    my ($dir, $port) = new_case($name);
    my ($file, $line) = write_conf($dir, head_lines($dir, $port),
        @$in_main, ssl_vhost($port, $trust, @$in_vhost));
    my ($st, $out) = config_test($dir, $file);
    is(describe_status($st), 'exit 0',
       "$name: httpd -t accepts it (trust is checked at start)") or diag($out);
    $out = refuses_to_start($name, $dir, $file, $port);
    like($out, qr/\Q$file:$line: issuer sha256:$fp is not a CA certificate in the trust store\E/,
         "$name: names file:line, the fingerprint, and that it is not a trusted CA");
}

# ---- positive controls: trusted pins start --------------------------------

my @trusted = (
    ['pin-ca-a-trusted', 'trust-a.crt',
     ['    <Location /x>',
      '        MTLSAuthz On',
      "        MTLSAllowIssuerFingerprint sha256:$FP->{FP_CA_A}",
      "        MTLSAllow issuer=sha256:"
        . join(':', map { uc } unpack '(A2)*', $FP->{FP_CA_A}) . ' san=DNS:alice.example.com',
      '    </Location>'], []],
    ['pin-int-a-trusted', 'trust-all.crt',
     ['    MTLSAuthz On',
      "    MTLSAllow issuer=sha256:$FP->{FP_INT_A} \"subject=CN=carol,O=Acme Inc.,C=US\"",
      '    <Location /b>',
      "        MTLSAllowIssuerFingerprint sha256:$FP->{FP_CA_B}",
      '    </Location>'],
     ['<Location /main>',
      '    MTLSAuthz On',
      "    MTLSAllowIssuerFingerprint sha256:$FP->{FP_CA_A}",
      '</Location>']],
);

for my $c (@trusted) {
    my ($name, $trust, $in_vhost, $in_main) = @$c;
    my ($dir, $port) = new_case($name);
    my ($file) = write_conf($dir, head_lines($dir, $port),
        @$in_main, ssl_vhost($port, $trust, @$in_vhost));
    my ($st, $out) = config_test($dir, $file);
    is(describe_status($st), 'exit 0', "$name: httpd -t accepts it") or diag($out);
    my $r = start_httpd($dir, $file, $port);
    ok($r->{started}, "$name: httpd starts and accepts connections on 127.0.0.1:$port")
      or diag(($r->{exited} ? 'exited: ' . describe_status($r->{status})
               : "not listening after ${START_TIMEOUT}s") . "\n$r->{output}");
    if ($r->{started} || $r->{hung}) {
        kill 'TERM', $r->{pid};
        my $st2 = wait_for($r->{pid}, $STOP_TIMEOUT);
        ok(defined $st2, "$name: httpd stops on SIGTERM within ${STOP_TIMEOUT}s"
           . (defined $st2 ? ' (' . describe_status($st2) . ')' : ''));
        kill_group($r->{pid}) unless defined $st2;
    }
    else {
        ok(0, "$name: httpd stops on SIGTERM (it never started)");
    }
    my $log = slurp("$dir/start.out") . slurp("$dir/error_log");
    unlike($log, qr/mtls_authz:.*(not a CA certificate|needs mod_ssl|no MTLSAllow)/,
           "$name: no mtls_authz refusal in the log");
    like($log, qr/resuming normal operations/, "$name: the log shows httpd running");
}

# ---- d. a rule that can never match (check_config) --------------------------
# MTLSAllowIssuerFingerprint gates every rule of its scope: an MTLSAllow
# line there that pins another issuer is a mistake, refused by httpd -t.
{
    my $name = 'gate-dead-rule';
    my ($dir, $port) = new_case($name);
    my ($file, $line) = write_conf($dir, head_lines($dir, $port),
        ssl_vhost($port, 'trust-all.crt',
            '    <Location /x>',
            '        MTLSAuthz On',
            "        MTLSAllowIssuerFingerprint sha256:$FP->{FP_CA_A}",
            ">>        MTLSAllow \"subject=CN=bob,O=Acme Inc.,C=US\" issuer=sha256:$FP->{FP_CA_B}",
            '    </Location>'));
    my $gate = $line - 1;
    my $msg = qr/\Qthe rule at $file:$line pins issuer=sha256:$FP->{FP_CA_B}, which is not one of the MTLSAllowIssuerFingerprint values of its scope ($file:$gate)\E/;
    my $out = config_test_fails($name, $dir, $file);
    like($out, $msg, "$name: httpd -t names the rule, its issuer and the gate's file:line");
    $out = refuses_to_start($name, $dir, $file, $port);
    like($out, $msg, "$name: start says the same");
}

# The same for a line of a rule file.
{
    my $name = 'gate-dead-file-rule';
    my ($dir, $port) = new_case($name);
    spew("$dir/rules.txt", "# one partner\n\"subject=CN=bob,O=Acme Inc.,C=US\" "
         . "issuer=sha256:$FP->{FP_CA_B}\n");
    my ($file, $line) = write_conf($dir, head_lines($dir, $port),
        ssl_vhost($port, 'trust-all.crt',
            '    <Location /x>',
            '        MTLSAuthz On',
            ">>        MTLSAllowIssuerFingerprint sha256:$FP->{FP_CA_A}",
            "        MTLSAllowFile \"$dir/rules.txt\"",
            '    </Location>'));
    my $msg = qr/\Qthe rule at $dir\/rules.txt:2 pins issuer=sha256:$FP->{FP_CA_B}, which is not one of the MTLSAllowIssuerFingerprint values of its scope ($file:$line)\E/;
    my $out = config_test_fails($name, $dir, $file);
    like($out, $msg, "$name: httpd -t names the rule file's line, its issuer and the gate");
}

# ---- e. Require mtls under Satisfy Any: a warning ---------------------------
# mod_access_compat's Allow can admit a client under Satisfy Any without
# mod_authz_core asking any Require line; MTLSAuthz On is not affected.
# [name, lines in the vhost, warns?]
my @satisfy = (
    ['satisfy-any-require', ['    <Location /x>', '        Order deny,allow',
      '        Allow from all', '>>        Satisfy Any', '        Require mtls',
      '        MTLSAllowSAN DNS:alice.example.com', '    </Location>'], 1],
    ['satisfy-any-outer', ['    <Directory "/srv">', '>>        Satisfy any',
      '        <Files "x">', '            <RequireAll>', '                Require all granted',
      '                Require not mtls',
      '            </RequireAll>', '            MTLSAllowSAN DNS:alice.example.com',
      '        </Files>', '    </Directory>'], 1],
    ['satisfy-any-alias', ['    <Location /x>', '>>        Satisfy Any',
      '        Require partner', '    </Location>'], 1],
    ['satisfy-all-inner', ['    <Directory "/srv">', '        Satisfy Any',
      '        <Files "x">', '            Satisfy All', '            Require mtls',
      '            MTLSAllowSAN DNS:alice.example.com', '        </Files>',
      '    </Directory>'], 0],
    ['satisfy-any-limit', ['    <Location /x>', '        <Limit GET>', '>>            Satisfy Any',
      '        </Limit>', '        Require mtls', '        MTLSAllowSAN DNS:alice.example.com',
      '    </Location>'], 1],
    ['satisfy-any-gate', ['    <Location /x>', '        Satisfy Any', '        MTLSAuthz On',
      '        MTLSAllowSAN DNS:alice.example.com', '    </Location>'], 0],
);
my @alias = ('<AuthzProviderAlias mtls partner>',
             '    MTLSAllowSAN DNS:alice.example.com', '</AuthzProviderAlias>');
for my $c (@satisfy) {
    my ($name, $lines, $warns) = @$c;
    my ($dir, $port) = new_case($name);
    my ($file, $line) = write_conf($dir, head_lines($dir, $port), @alias,
        ssl_vhost($port, 'trust-all.crt', @$lines));
    my ($st, $out) = config_test($dir, $file);
    is(describe_status($st), 'exit 0', "$name: httpd -t accepts it") or diag($out);
    if ($warns) {
        like($out, qr/\QRequire \E(mtls|not mtls|partner)\Q ($file:\E\d+\Q) is under Satisfy Any ($file:$line)\E/,
             "$name: httpd -t warns, naming the Require line and the Satisfy Any at file:line");
    }
    else {
        unlike($out, qr/is under Satisfy Any/, "$name: no warning");
    }
}

# ---- f. Require mtls where an .htaccess may take over authorization ---------
# AllowOverride AuthConfig (or All) lets .htaccess files replace Require
# lines, even a <Location>'s through <If>, and set Satisfy Any; the
# <Directory> sections of the main server apply to every virtual host.
# [name, lines in the main server, lines in the vhost, warns?]
my @override = (
    ['override-main', ['<Directory "/srv">', '>>    AllowOverride AuthConfig', '</Directory>'],
     ['    <Location /x>', '        Require mtls', '        MTLSAllowSAN DNS:alice.example.com',
      '    </Location>'], 1],
    ['override-list', ['<Directory "/srv">', '>>    AllowOverrideList Require', '</Directory>'],
     ['    <Location /x>', '        <RequireAll>', '            Require all granted',
      '            Require not mtls', '        </RequireAll>',
      '        MTLSAllowSAN DNS:alice.example.com', '    </Location>'], 1],
    ['override-vhost', ['<Location /m>', '    Require mtls',
      '    MTLSAllowSAN DNS:alice.example.com', '</Location>'],
     ['    <Directory "/srv">', '>>        AllowOverride All', '    </Directory>'], 1],
    ['override-none', ['<Directory "/srv">', '    AllowOverride None', '</Directory>'],
     ['    <Location /x>', '        Require mtls', '        MTLSAllowSAN DNS:alice.example.com',
      '    </Location>'], 0],
    ['override-gate', ['<Directory "/srv">', '    AllowOverride All', '</Directory>'],
     ['    <Location /x>', '        MTLSAuthz On', '        MTLSAllowSAN DNS:alice.example.com',
      '    </Location>'], 0],
);
for my $c (@override) {
    my ($name, $main, $vhost, $warns) = @$c;
    my ($dir, $port) = new_case($name);
    my ($file, $line) = write_conf($dir, head_lines($dir, $port), @$main,
        ssl_vhost($port, 'trust-all.crt', @$vhost));
    my ($st, $out) = config_test($dir, $file);
    is(describe_status($st), 'exit 0', "$name: httpd -t accepts it") or diag($out);
    if ($warns) {
        like($out, qr/\QRequire \E(not )?\Qmtls ($file:\E\d+\Q)\E( and \d+ more Require line\(s\) of this module)?\Q: AllowOverride\E(List)?\Q \E\w+\Q ($file:$line) lets .htaccess files replace Require lines\E/,
             "$name: httpd -t warns, naming the Require line and the AllowOverride at file:line");
    }
    else {
        unlike($out, qr/lets \.htaccess files replace Require lines/, "$name: no warning");
    }
}

# ---- g. an alias of mtls used both negated and not: a warning ---------------
{
    my $name = 'alias-mixed';
    my ($dir, $port) = new_case($name);
    my ($file, $line) = write_conf($dir, head_lines($dir, $port),
        '<AuthzProviderAlias mtls partner>', '    MTLSAllowSAN DNS:alice.example.com',
        '</AuthzProviderAlias>',
        ssl_vhost($port, 'trust-all.crt', '    <Location /a>', '>>        Require partner',
                  '    </Location>', '    <Location /b>', '        <RequireAll>',
                  '            Require all granted', '            <RequireNone>',
                  '                Require partner', '            </RequireNone>',
                  '        </RequireAll>', '    </Location>'));
    my ($st, $out) = config_test($dir, $file);
    is(describe_status($st), 'exit 0', "$name: httpd -t accepts it") or diag($out);
    like($out, qr/\QRequire partner ($file:$line): that alias is also negated ($file:\E\d+\Q)\E/,
         "$name: httpd -t warns, naming the plain use and a negated one");
}
