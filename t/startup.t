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
use FindBin ();
use MIME::Base64 qw(decode_base64);
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(locate missing_prereqs assert_prereqs slurp spew new_case
  must_run describe_status case_dir head_lines no_ssl_modules ssl_vhost write_conf
  config_test start_server stop_server pins);

# MTLS_TIMEOUT_SCALE: make valgrind sets it, httpd being far slower.
my $SCALE         = $ENV{MTLS_TIMEOUT_SCALE} || 1;
my $START_TIMEOUT = 15 * $SCALE;    # seconds for httpd to refuse, or to start
my $STOP_TIMEOUT  = 15 * $SCALE;    # seconds for httpd to stop after SIGTERM

# ---- where things are ------------------------------------------------------

my %at = locate(__FILE__);
my ($HTTPD, $CFG) = @at{qw(httpd cfg)};

# ---- helpers --------------------------------------------------------------

# Asserts that httpd -t fails on a configuration; returns its output.
sub config_test_fails {
    my ($name, $file) = @_;
    my ($st, $out) = config_test($HTTPD, $file, 30 * $SCALE);
    ok($st != 0 && $out !~ /Syntax OK/, "$name: httpd -t fails (" . describe_status($st) . ')')
      or diag($out);
    return $out;
}

# Starts httpd -DFOREGROUND until it runs (it accepts connections, has
# written its pid file and logged that it runs); returns (pid or undef,
# why not, wait status if it exited by itself).
sub start_httpd {
    my ($dir, $file, $port) = @_;
    return start_server($HTTPD, $file, $port, $START_TIMEOUT, "$dir/error_log");
}

# Asserts that httpd refuses to start: it exits by itself, non-zero,
# within the time limit. One that started or hangs is ended, and fails.
sub refuses_to_start {
    my ($name, $dir, $file, $port) = @_;
    my ($pid, $why, $st) = start_httpd($dir, $file, $port);
    if ($pid) {
        $why = 'it started and accepted a connection (stopped it: '
          . describe_status(scalar stop_server($pid)) . ')';
    }
    elsif (defined $st) {
        $why = $st == 0 ? 'it exited with status 0' : undef;
    }
    # What it said, now that it has ended.
    my $out = slurp("$dir/start.out") . slurp("$dir/error_log");
    ok(!$why, "$name: httpd refuses to start ("
       . (defined $st ? describe_status($st) : 'did not exit') . ')')
      or diag("$why\n" . tail($out));
    return $out;
}

sub tail {
    my @l = split /\n/, $_[0];
    splice @l, 0, @l - 15 if @l > 15;
    return join "\n", @l;
}

# Writes the configuration of a case: the usual first lines, then @lines;
# a line starting with '>>' is the one under test: returns (file, its
# line number).
sub case_conf {
    my ($dir, $port, @lines) = @_;
    return write_conf("$dir/httpd.conf", head_lines(%at, dir => $dir, port => $port), @lines);
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
    my $out = $at{pki};
    return ($out, {pins($out)}, 't/pki/out') if -e "$out/pins.sh";
    my $dir = case_dir($CFG, 'pki');
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
    my $run = sub { must_run("$dir/openssl.log", "openssl @_", 'openssl', @_) };
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

plan tests => 65;

assert_prereqs('httpd, module and base configuration exist', missing_prereqs(%at));

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

# An SSL host on $port trusting $trust, with @body inside it.
sub vhost {
    my ($port, $trust, @body) = @_;
    return ssl_vhost({port => $port, pki => $PKI, trust => $trust}, @body);
}

# ---- a. MTLSAuthz On without mod_ssl (check_config) ----------------------
{
    my $name = 'no-mod-ssl';
    my ($dir, $port) = new_case($CFG, $name);
    my ($file, $line) = write_conf("$dir/httpd.conf",
        head_lines(%at, dir => $dir, port => $port, load => [no_ssl_modules($at{base})]),
        '<Location /x>',
        '>>    MTLSAuthz On',
        '    MTLSAllowSAN DNS:alice.example.com',
        '</Location>');
    my $msg = "MTLSAuthz On ($file:$line) needs mod_ssl, which is not loaded";
    my $out = config_test_fails($name, $file);
    like($out, qr/\Q$msg\E/, "$name: httpd -t says MTLSAuthz On at file:line needs mod_ssl");
    $out = refuses_to_start($name, $dir, $file, $port);
    like($out, qr/\Q$msg\E/, "$name: start says MTLSAuthz On at file:line needs mod_ssl");
}

# ---- b. MTLSAuthz On without any rule (check_config) ---------------------
{
    my $name = 'no-rules';
    my ($dir, $port) = new_case($CFG, $name);
    my ($file, $line) = case_conf($dir, $port,
        '<Location /x>',
        '>>    MTLSAuthz On',
        '</Location>');
    my $msg = "MTLSAuthz On ($file:$line) but no MTLSAllow, MTLSAllowFile, MTLSAllowSubject, "
      . "MTLSAllowSAN or MTLSAllowIssuerFingerprint is configured for ";
    my $out = config_test_fails($name, $file);
    like($out, qr/\Q$msg\E.*: every request would be denied/,
         "$name: httpd -t says MTLSAuthz On at file:line has no rule");
    $out = refuses_to_start($name, $dir, $file, $port);
    like($out, qr/\Q$msg\E.*: every request would be denied/,
         "$name: start says MTLSAuthz On at file:line has no rule");
}

# b2. Rules in another virtual host do not count.
{
    my $name = 'no-rules-in-vhost';
    my ($dir, $port) = new_case($CFG, $name);
    my ($file, $line) = case_conf($dir, $port,
        "<VirtualHost 127.0.0.1:$port>",
        '    ServerName a.example',
        '>>    MTLSAuthz On',
        '</VirtualHost>',
        "<VirtualHost 127.0.0.1:$port>",
        '    ServerName b.example',
        '    MTLSAuthz On',
        '    MTLSAllowSAN DNS:b.example',
        '</VirtualHost>');
    my $out = config_test_fails($name, $file);
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
    my ($dir, $port) = new_case($CFG, $name);
    my ($file, $line) = case_conf($dir, $port,
        @$in_main, vhost($port, $trust, @$in_vhost));
    my ($st, $out) = config_test($HTTPD, $file, 30 * $SCALE);
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
    my ($dir, $port) = new_case($CFG, $name);
    my ($file) = case_conf($dir, $port,
        @$in_main, vhost($port, $trust, @$in_vhost));
    my ($st, $out) = config_test($HTTPD, $file, 30 * $SCALE);
    is(describe_status($st), 'exit 0', "$name: httpd -t accepts it") or diag($out);
    my ($pid, $why) = start_httpd($dir, $file, $port);
    ok($pid, "$name: httpd starts and accepts connections on 127.0.0.1:$port")
      or diag("$why\n" . slurp("$dir/start.out") . slurp("$dir/error_log"));
    if ($pid) {
        my ($st2, $killed) = stop_server($pid, $STOP_TIMEOUT);
        ok(!$killed, "$name: httpd stops on SIGTERM within ${STOP_TIMEOUT}s"
           . ($killed ? '' : ' (' . describe_status($st2) . ')'));
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
    my ($dir, $port) = new_case($CFG, $name);
    my ($file, $line) = case_conf($dir, $port,
        vhost($port, 'trust-all.crt',
            '    <Location /x>',
            '        MTLSAuthz On',
            "        MTLSAllowIssuerFingerprint sha256:$FP->{FP_CA_A}",
            ">>        MTLSAllow \"subject=CN=bob,O=Acme Inc.,C=US\" issuer=sha256:$FP->{FP_CA_B}",
            '    </Location>'));
    my $gate = $line - 1;
    my $msg = qr/\Qthe rule at $file:$line pins issuer=sha256:$FP->{FP_CA_B}, which is not one of the MTLSAllowIssuerFingerprint values of its scope ($file:$gate)\E/;
    my $out = config_test_fails($name, $file);
    like($out, $msg, "$name: httpd -t names the rule, its issuer and the gate's file:line");
    $out = refuses_to_start($name, $dir, $file, $port);
    like($out, $msg, "$name: start says the same");
}

# The same for a line of a rule file.
{
    my $name = 'gate-dead-file-rule';
    my ($dir, $port) = new_case($CFG, $name);
    spew("$dir/rules.txt", "# one partner\n\"subject=CN=bob,O=Acme Inc.,C=US\" "
         . "issuer=sha256:$FP->{FP_CA_B}\n");
    my ($file, $line) = case_conf($dir, $port,
        vhost($port, 'trust-all.crt',
            '    <Location /x>',
            '        MTLSAuthz On',
            ">>        MTLSAllowIssuerFingerprint sha256:$FP->{FP_CA_A}",
            "        MTLSAllowFile \"$dir/rules.txt\"",
            '    </Location>'));
    my $msg = qr/\Qthe rule at $dir\/rules.txt:2 pins issuer=sha256:$FP->{FP_CA_B}, which is not one of the MTLSAllowIssuerFingerprint values of its scope ($file:$line)\E/;
    my $out = config_test_fails($name, $file);
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
    my ($dir, $port) = new_case($CFG, $name);
    my ($file, $line) = case_conf($dir, $port, @alias,
        vhost($port, 'trust-all.crt', @$lines));
    my ($st, $out) = config_test($HTTPD, $file, 30 * $SCALE);
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
    my ($dir, $port) = new_case($CFG, $name);
    my ($file, $line) = case_conf($dir, $port, @$main,
        vhost($port, 'trust-all.crt', @$vhost));
    my ($st, $out) = config_test($HTTPD, $file, 30 * $SCALE);
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
    my ($dir, $port) = new_case($CFG, $name);
    my ($file, $line) = case_conf($dir, $port,
        '<AuthzProviderAlias mtls partner>', '    MTLSAllowSAN DNS:alice.example.com',
        '</AuthzProviderAlias>',
        vhost($port, 'trust-all.crt', '    <Location /a>', '>>        Require partner',
                  '    </Location>', '    <Location /b>', '        <RequireAll>',
                  '            Require all granted', '            <RequireNone>',
                  '                Require partner', '            </RequireNone>',
                  '        </RequireAll>', '    </Location>'));
    my ($st, $out) = config_test($HTTPD, $file, 30 * $SCALE);
    is(describe_status($st), 'exit 0', "$name: httpd -t accepts it") or diag($out);
    like($out, qr/\QRequire partner ($file:$line): that alias is also negated ($file:\E\d+\Q)\E/,
         "$name: httpd -t warns, naming the plain use and a negated one");
}
