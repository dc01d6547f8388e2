# MTLSDeny and MTLSDenyFile in a real httpd with mod_ssl, against the
# test PKI's certificates:
#   - a deny by cert=, by issuer= + serial=, by subject=, by each SAN type,
#     of a whole CA, refuses the client it names (403, "denied by
#     <file>:<line>") and no other client of the same rules; serial
#     numbers at their edges (sign byte, 0, negative, leading zeros);
#   - deny rules are additive across scopes: the main server's, the
#     virtual host's, a <Directory>'s and an enclosing <Location>'s still
#     refuse in a nested <Location> that replaces the allow rules with its
#     own, and <If> sections add theirs; another host gets the main
#     server's but not the first host's;
#   - under Require mtls (403), Require not mtls (a denied client is not
#     listed) and in Audit mode (admitted, logged AUDIT); a denied client
#     that Audit mode or another Require line lets through has no MTLS_*
#     identity;
#   - never in .htaccess (not even through AllowOverrideList), and an
#     .htaccess cannot lift an inherited deny with its own rules, Require
#     lines or Satisfy Any;
#   - startup refusals (serial= without issuer=, an MTLSAllow line in a
#     deny file, ...) that name the directive's file:line;
#   - MTLSDenyFile is re-read on a graceful restart;
#   - on one keep-alive connection, at LogLevel warn (debug logging
#     bypasses the per-connection decision memo), a denied certificate is
#     never admitted from what the memo remembers for another scope.
#
# Runs its own httpds (t/lib/OwnHttpd.pm, t/lib/HttpdRun.pm) on free
# loopback ports.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use Time::HiRes qw(time sleep);
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(locate slurp spew new_case describe_status head_lines ssl_vhost
  write_conf config_test start_server stop_server run_cmd log_wait $CRASH);
use OwnHttpd ();

my %at = locate(__FILE__);
my $HTTPD = $at{httpd};

my $s = OwnHttpd->new(__FILE__, 'deny');
my $dir = $s->dir;
my %FP = map { $_ => $s->fp($_) }
  qw(FP_CA_A FP_CA_B FP_INT_A FP_CERT_ALICE_A FP_CERT_BOB_A FP_CERT_DAVE_A FP_CERT_UPPER_A);
my $ALICE_DN = 'CN=alice,O=Acme Inc.,C=US';
my $BOB_DN   = 'CN=bob,O=Acme Inc.,C=US';
my $DAVE_DN  = 'CN=dave,OU=Payments,O=Acme Inc.,C=US';
my $DENY     = 'client denied by server configuration';

# Serial numbers, as openssl prints them (mkpki.sh picks random ones).
sub serial_of {
    my ($cert) = @_;
    my $out = OwnHttpd::openssl_out('x509', '-in', $s->pki("$cert.crt"), '-serial', '-noout');
    my ($hex) = $out =~ /^serial=([0-9A-Fa-f]+)\s*$/m
      or die "no serial for $cert: $out\n";
    return $hex;
}
my %SERIAL = map { $_ => serial_of($_) } qw(alice-a bob-a);
# bob's serial in another accepted spelling: lower case, a ':' between
# bytes and a leading zero byte.
my $BOB_SERIAL_COLONS = lc join ':', '00', unpack '(A2)*', $SERIAL{'bob-a'};

# Every client the allow rules below admit: a DNS SAN under example.com.
my $ALLOW = 'MTLSAllowSAN DNS:.example.com';

# The line that refuses $cert at $uri, naming the rule $src (or one of
# @more: a client that two deny rules match may be named by either).
sub denied_re {
    my ($uri, $src, $cert, @more) = @_;
    my $i = $s->cert_info($cert);
    my $which = join '|', map { quotemeta } $src, grep { defined } @more;
    return qr/\Q$DENY: $uri: denied by \E(?:$which)\Q; subject "$i->{subject}", issuer sha256:$i->{issuer_fp}\E/;
}

# ---- the main server --------------------------------------------------------

$s->add_header;
$s->add(qq{<Directory "$dir/docs">}, '    Require all granted', '    DirectoryIndex index.html',
        '    AllowOverride None', '</Directory>');
# Main server: refuses upper-a everywhere, inherited by the virtual host.
my $MAIN_DENY = $s->rule_at($s->add("MTLSDeny cert=sha256:$FP{FP_CERT_UPPER_A}"));
$s->add_vhost;
# The virtual host: refuses dave-a everywhere in it.
my $VHOST_DENY = $s->rule_at($s->add("    MTLSDeny cert=sha256:$FP{FP_CERT_DAVE_A}"));

# A <Location /$name/> with an index.html; returns the file:line of the
# line marked '>>'.
sub loc {
    my ($name, @lines) = @_;
    $s->write_doc("$name/index.html", "$name\n");
    return $s->add_location("/$name/", @lines);
}

# [location, its lines (>> marks the deny), { certificate => status },
#  the certificates whose 403 must name the marked deny]
my @cases = (
    ['d-cert', ['MTLSAuthz On', $ALLOW, ">>MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}"],
     {'alice-a' => 200, 'alice-b' => 200, 'bob-a' => 403, 'carol-int-chain' => 200},
     ['bob-a']],
    ['d-serial', ['MTLSAuthz On', $ALLOW,
                  ">>MTLSDeny issuer=sha256:$FP{FP_CA_A} serial=$SERIAL{'bob-a'}"],
     {'alice-a' => 200, 'alice-b' => 200, 'bob-a' => 403}, ['bob-a']],
    ['d-serial-spelling', ['MTLSAuthz On', $ALLOW,
                           ">>MTLSDeny serial=$BOB_SERIAL_COLONS issuer=sha256:$FP{FP_CA_A}"],
     {'alice-a' => 200, 'bob-a' => 403}, ['bob-a']],
    # The serial is bob's, the issuer another CA: no match.
    ['d-serial-other-ca', ['MTLSAuthz On', $ALLOW,
                           "MTLSDeny issuer=sha256:$FP{FP_CA_B} serial=$SERIAL{'bob-a'}"],
     {'alice-a' => 200, 'bob-a' => 200}, []],
    ['d-subject', ['MTLSAuthz On', $ALLOW, qq{>>MTLSDeny "subject=$BOB_DN"}],
     {'alice-a' => 200, 'bob-a' => 403}, ['bob-a']],
    # alice's subject from CA B only: alice-a (CA A) is not refused.
    ['d-subject-issuer', ['MTLSAuthz On', $ALLOW,
                          qq{>>MTLSDeny subject="$ALICE_DN" issuer=sha256:$FP{FP_CA_B}}],
     {'alice-a' => 200, 'alice-b' => 403, 'bob-a' => 200}, ['alice-b']],
    ['d-san-dns', ['MTLSAuthz On', $ALLOW, '>>MTLSDeny san=DNS:bob.example.com'],
     {'alice-a' => 200, 'bob-a' => 403}, ['bob-a']],
    ['d-san-email', ['MTLSAuthz On', $ALLOW, '>>MTLSDeny san=email:Alice@example.com'],
     {'alice-a' => 403, 'alice-b' => 403, 'bob-a' => 200}, ['alice-a', 'alice-b']],
    ['d-san-uri', ['MTLSAuthz On', $ALLOW,
                   '>>MTLSDeny san=URI:spiffe://example.org/ns/prod/sa/alice'],
     {'alice-a' => 403, 'bob-a' => 200, 'carol-int-chain' => 200}, ['alice-a']],
    # A prefix: /ns/prod and below, not /ns/production (bob).
    ['d-san-uri-prefix', ['MTLSAuthz On', $ALLOW,
                          '>>MTLSDeny san=URI:spiffe://example.org/ns/prod/*'],
     {'alice-a' => 403, 'bob-a' => 200, 'carol-int-chain' => 403},
     ['alice-a', 'carol-int-chain']],
    # alice's IPv4 SAN; bob's is the IPv4-mapped IPv6 address of it.
    ['d-san-ip', ['MTLSAuthz On', $ALLOW, '>>MTLSDeny san=IP:192.0.2.7'],
     {'alice-a' => 403, 'bob-a' => 200}, ['alice-a']],
    ['d-san-ip6', ['MTLSAuthz On', $ALLOW, '>>MTLSDeny san=IP:2001:db8::/32'],
     {'alice-a' => 403, 'bob-a' => 200}, ['alice-a']],
    # Two SANs in one rule: both must be present (bob has only one).
    ['d-san-two', ['MTLSAuthz On', $ALLOW,
                   '>>MTLSDeny san=DNS:alice.example.com san=IP:192.0.2.7',
                   'MTLSDeny san=DNS:bob.example.com san=IP:192.0.2.7'],
     {'alice-a' => 403, 'bob-a' => 200}, ['alice-a']],
    # A whole CA.
    ['d-issuer', ['MTLSAuthz On', $ALLOW, ">>MTLSDeny issuer=sha256:$FP{FP_CA_B}"],
     {'alice-a' => 200, 'alice-b' => 403, 'bob-a' => 200}, ['alice-b']],
    # An issuer gate over the allow rules is no gate over the deny rules:
    # a deny naming a CA of the gate refuses, and is no startup error.
    ['d-gate', ['MTLSAuthz On', "MTLSAllowIssuerFingerprint sha256:$FP{FP_CA_A} sha256:$FP{FP_CA_B}",
                qq{>>MTLSDeny "subject=$ALICE_DN" issuer=sha256:$FP{FP_CA_B}}],
     {'alice-a' => 200, 'alice-b' => 403, 'bob-a' => 200}, ['alice-b']],
    # <If> sections are merged last: their denies add up too.
    ['d-if', ['MTLSAuthz On', $ALLOW, '<If "%{REQUEST_URI} =~ m#^/d-if/#">',
              ">>    MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}", '</If>'],
     {'alice-a' => 200, 'bob-a' => 403}, ['bob-a']],
    ['d-if-false', ['MTLSAuthz On', $ALLOW, '<If "false">',
                    "    MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}", '</If>'],
     {'alice-a' => 200, 'bob-a' => 200}, []],
    # The allow rules of this scope would admit bob; the deny is checked first.
    ['d-before-allow', ['MTLSAuthz On', qq{MTLSAllow "subject=$BOB_DN"},
                        ">>MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}"],
     {'bob-a' => 403, 'alice-a' => 403}, ['bob-a']],
);
my %DENY_AT;
for my $c (@cases) {
    $DENY_AT{ $c->[0] } = loc($c->[0], @{ $c->[1] });
}

# Nesting: /outer/ refuses bob; /outer/inner/ replaces the allow rules
# with its own MTLSAllow lines (alice's subject, which upper-a's matches
# too, bob's and dave's) and adds a deny of alice from CA B. In
# /outer/inner/ the main server's, the host's, /outer/'s and its own
# denies all apply.
my $OUTER_DENY = loc('outer', 'MTLSAuthz On', $ALLOW, '>>MTLSDeny san=DNS:bob.example.com');
$s->write_doc('outer/inner/index.html', "inner\n");
my $INNER_DENY = $s->add_location('/outer/inner/',
    qq{MTLSAllow "subject=$ALICE_DN"}, qq{MTLSAllow "subject=$BOB_DN"},
    qq{MTLSAllow "subject=$DAVE_DN"},
    qq{>>MTLSDeny "subject=$ALICE_DN" issuer=sha256:$FP{FP_CA_B}});
# A nested scope with no rule of its own inherits everything.
$s->write_doc('outer/plain/index.html', "plain\n");
$s->add_location('/outer/plain/', 'DirectoryIndex index.html');

# A deny in a <Directory> still refuses where a <Location> (merged after
# it) sets its own allow rules for the same files.
$s->write_doc('dirdeny/index.html', "dirdeny\n");
$s->add(qq{    <Directory "$dir/docs/dirdeny">});
my $DIR_DENY = $s->rule_at($s->add("        MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}"));
$s->add('    </Directory>');
$s->add_location('/dirdeny/', 'MTLSAuthz On', qq{MTLSAllowSubject "$ALICE_DN" "$BOB_DN"});

# Require mtls, Require not mtls, Audit
my $REQ_DENY = loc('req', 'Require mtls', $ALLOW, ">>MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}");
# Require not mtls: a client the rules list is refused; a denied client
# is simply not listed, so it is let in.
loc('req-not', '<RequireAll>', '    Require all granted', '    Require not mtls', '</RequireAll>',
    qq{MTLSAllowSubject "$ALICE_DN" "$BOB_DN"}, "MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}");
my $AUDIT_DENY = loc('audit', 'MTLSAuthz On', 'MTLSAuthzMode Audit', $ALLOW,
                     ">>MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}");
# The identity of a client that a deny refuses is nobody's, even where
# Audit mode or another Require line lets the request through: no
# MTLS_* variable, from the environment or on demand.
my @ENV_HDRS = ('Header always set X-Rule "%{MTLS_AUTHZ_RULE}e"',
                'Header always set X-Subject "%{MTLS_CLIENT_SUBJECT}s"', 'MTLSExportEnv On');
my %ENV_ALLOW;
$ENV_ALLOW{'audit-env'} = loc('audit-env', 'MTLSAuthz On', 'MTLSAuthzMode Audit', ">>$ALLOW",
                              "MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}", @ENV_HDRS);
$ENV_ALLOW{'any-env'} = loc('any-env', '<RequireAny>', '    Require mtls', '    Require ip 127.0.0.1 ::1',
                            '</RequireAny>', ">>$ALLOW", "MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}",
                            @ENV_HDRS);

# .htaccess: [name, <Directory> or <Location> or undef, server lines
#  (>> marks the deny a 403 must name), .htaccess lines, { cert =>
#  status }, log regex, AllowOverride (default AuthConfig)]
# httpd's own refusals (an <If> of an .htaccess has one of its own) or
# the module's.
my $NOT_HT = sub {
    my $d = shift;
    qr/\Q$d\E (not allowed here|cannot occur within htaccess files|not allowed in <If> context)/;
};
my $DENY_FILE = "$dir/ht-deny.txt";
spew($DENY_FILE, "cert=sha256:$FP{FP_CERT_ALICE_A}\n");
my @ht = (
    ['ht-deny', 'Directory', ['MTLSAuthz On', $ALLOW],
     ["MTLSDeny cert=sha256:$FP{FP_CERT_ALICE_A}"], {'alice-a' => 500, 'bob-a' => 500},
     $NOT_HT->('MTLSDeny')],
    ['ht-deny-loc', 'Location', ['MTLSAuthz On', $ALLOW],
     ["MTLSDeny cert=sha256:$FP{FP_CERT_ALICE_A}"], {'alice-a' => 500, 'bob-a' => 500},
     $NOT_HT->('MTLSDeny')],
    ['ht-deny-if', 'Directory', ['MTLSAuthz On', $ALLOW],
     ['<If "true">', "MTLSDeny cert=sha256:$FP{FP_CERT_ALICE_A}", '</If>'],
     {'alice-a' => 500, 'bob-a' => 500}, $NOT_HT->('MTLSDeny')],
    ['ht-denyfile', 'Directory', ['MTLSAuthz On', $ALLOW],
     ["MTLSDenyFile $DENY_FILE"], {'alice-a' => 500, 'bob-a' => 500},
     $NOT_HT->('MTLSDenyFile')],
    ['ht-deny-all', 'Directory', ['MTLSAuthz On', $ALLOW],
     ["MTLSDeny cert=sha256:$FP{FP_CERT_ALICE_A}"], {'alice-a' => 500, 'bob-a' => 500},
     $NOT_HT->('MTLSDeny'), 'All'],
    ['ht-list-deny', 'Directory', ['MTLSAuthz On', $ALLOW],
     ["MTLSDeny cert=sha256:$FP{FP_CERT_ALICE_A}"], {'alice-a' => 500, 'bob-a' => 500},
     $NOT_HT->('MTLSDeny'), "None\n        AllowOverrideList MTLSDeny"],
    ['ht-list-denyfile', 'Directory', ['MTLSAuthz On', $ALLOW],
     ["MTLSDenyFile $DENY_FILE"], {'alice-a' => 500, 'bob-a' => 500},
     $NOT_HT->('MTLSDenyFile'), "None\n        AllowOverrideList MTLSDenyFile"],
    # The attacker's .htaccess: rules that name the denied client.
    ['ht-allow-denied', 'Directory',
     ['MTLSAuthz On', $ALLOW, ">>MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}"],
     ["MTLSAllow cert=sha256:$FP{FP_CERT_BOB_A}", qq{MTLSAllowSubject "$BOB_DN"}],
     {'bob-a' => 403, 'dave-a' => 403, 'alice-a' => 403}],
    ['ht-allow-denied-loc', 'Location',
     ['MTLSAuthz On', $ALLOW, ">>MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}"],
     [qq{MTLSAllowSubject "$BOB_DN" "$ALICE_DN"}],
     {'bob-a' => 403, 'dave-a' => 403, 'alice-a' => 200}],
    ['ht-granted', 'Directory',
     ['MTLSAuthz On', $ALLOW, ">>MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}"],
     ['Require all granted', 'Satisfy Any'],
     {'bob-a' => 403, 'dave-a' => 403, 'alice-a' => 200}],
    ['ht-req-granted', 'Location',
     ['Require mtls', $ALLOW, ">>MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}"],
     ['Require all granted'], {'bob-a' => 403, 'dave-a' => 403, 'alice-a' => 200}],
    # The server configuration has only a deny here; the .htaccess's own
    # Require mtls or MTLSAuthz On and rules decide, the deny still holds.
    ['ht-own-require', 'Directory', [">>MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}"],
     ['Require mtls', qq{MTLSAllowSubject "$BOB_DN" "$ALICE_DN" "$DAVE_DN"}],
     {'bob-a' => 403, 'dave-a' => 403, 'alice-a' => 200}],
    ['ht-own-on', 'Directory', [">>MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}"],
     ['MTLSAuthz On', qq{MTLSAllow "subject=$BOB_DN"}, qq{MTLSAllow "subject=$ALICE_DN"}],
     {'bob-a' => 403, 'dave-a' => 403, 'alice-a' => 200}],
);
my %HT_DENY;
for my $row (@ht) {
    my ($name, $where, $server, $lines, undef, undef, $override) = @$row;
    $s->write_doc("$name/index.html", "$name\n");
    $s->write_htaccess($name, @$lines);
    $s->add(qq{    <Directory "$dir/docs/$name">},
            split(/\n/, '        AllowOverride ' . ($override // 'AuthConfig')),
            '    </Directory>');
    my $open = $where eq 'Directory' ? qq{<Directory "$dir/docs/$name">} : "<Location /$name/>";
    $s->add("    $open");
    for my $l (@$server) {
        (my $t = $l) =~ s/^>>//;
        my $n = $s->add("        $t");
        $HT_DENY{$name} = $s->rule_at($n) if $t ne $l;
    }
    $s->add("    </$where>");
}
$s->add('</VirtualHost>');
# Another name-based host on the same port: the first host's deny does
# not reach it, the main server's does.
$s->add_vhost(name => 'b.test');
$s->add_location('/b/', 'MTLSAuthz On', $ALLOW);
$s->add('</VirtualHost>');
$s->write_doc('b/index.html', "b\n");
$s->start;
my $LOG = "$dir/error_log";

# A request; its status, and the log line that must follow a 403.
sub check {
    my ($path, $cert, $want, $log_re, $what) = @_;
    my $mark = $s->log_mark;
    my $st = $s->status($path, cert => $cert);
    is($st, $want, "$what: $cert gets $want");
    return unless $log_re;
    my $log = log_wait($LOG, $mark, $log_re);
    like($log, $log_re, "$what: $cert: the error log says why") or diag($log);
}

# A control: no client certificate, no admission.
my $none = $s->status('/d-cert/');
ok($none != 200, "no client certificate: not admitted ($none)");

for my $c (@cases) {
    my ($name, $lines, $want, $named) = @$c;
    my %named = map { $_ => 1 } @$named;
    for my $cert (sort keys %$want) {
        check("/$name/", $cert, $want->{$cert},
              $named{$cert} ? denied_re("/$name/", $DENY_AT{$name}, $cert) : undef,
              "$name [@$lines]");
    }
    # The main server's and the host's denies apply in every location
    # (upper-a's email and dave-a's URI match some cases' own denies too).
    check("/$name/", 'upper-a', 403, denied_re("/$name/", $MAIN_DENY, 'upper-a', $DENY_AT{$name}),
          "$name: the main server's deny");
    check("/$name/", 'dave-a', 403, denied_re("/$name/", $VHOST_DENY, 'dave-a', $DENY_AT{$name}),
          "$name: the virtual host's deny");
}

# Nesting
check('/outer/', 'alice-a', 200, undef, '/outer/');
check('/outer/', 'alice-b', 200, undef, '/outer/');
check('/outer/', 'wildcard', 200, undef, '/outer/');
check('/outer/', 'bob-a', 403, denied_re('/outer/', $OUTER_DENY, 'bob-a'), '/outer/');
check('/outer/inner/', 'alice-a', 200, undef, '/outer/inner/ (own MTLSAllow lines)');
check('/outer/inner/', 'alice-b', 403, denied_re('/outer/inner/', $INNER_DENY, 'alice-b'),
      '/outer/inner/: its own deny');
check('/outer/inner/', 'bob-a', 403, denied_re('/outer/inner/', $OUTER_DENY, 'bob-a'),
      "/outer/inner/: /outer/'s deny, though its MTLSAllow lines admit bob");
check('/outer/inner/', 'dave-a', 403, denied_re('/outer/inner/', $VHOST_DENY, 'dave-a'),
      "/outer/inner/: the host's deny, though its MTLSAllow lines admit dave");
check('/outer/inner/', 'upper-a', 403, denied_re('/outer/inner/', $MAIN_DENY, 'upper-a'),
      "/outer/inner/: the main server's deny, though its MTLSAllow lines admit upper-a");
check('/outer/inner/', 'wildcard', 403, qr{\Q$DENY: /outer/inner/: no rule matched\E},
      '/outer/inner/: its own allow rules replaced /outer/\'s');
check('/outer/plain/', 'alice-a', 200, undef, '/outer/plain/ (inherits all)');
check('/outer/plain/', 'bob-a', 403, denied_re('/outer/plain/', $OUTER_DENY, 'bob-a'),
      '/outer/plain/');

check('/dirdeny/', 'alice-a', 200, undef, "<Location> with its own rules over a <Directory>'s deny");
check('/dirdeny/', 'bob-a', 403, denied_re('/dirdeny/', $DIR_DENY, 'bob-a'),
      "<Location> with its own rules over a <Directory>'s deny");

# The other host
for my $c (['alice-a', 200], ['dave-a', 200], ['upper-a', 403]) {
    my ($cert, $want) = @$c;
    my $mark = $s->log_mark;
    is($s->status('/b/', cert => $cert, sni => 'b.test', host => 'b.test'), $want,
       "host b.test (no deny of its own): $cert gets $want");
    next unless $want == 403;
    my $re = denied_re('/b/', $MAIN_DENY, $cert);
    like(log_wait($LOG, $mark, $re), $re, "host b.test: the main server's deny refuses $cert");
}

# Require mtls
check('/req/', 'alice-a', 200, undef, 'Require mtls');
check('/req/', 'bob-a', 403, denied_re('/req/', $REQ_DENY, 'bob-a'), 'Require mtls');
check('/req/', 'dave-a', 403, denied_re('/req/', $VHOST_DENY, 'dave-a'), 'Require mtls');
# Require not mtls
check('/req-not/', 'alice-a', 403, undef, 'Require not mtls: alice is listed');
check('/req-not/', 'bob-a', 200, undef, 'Require not mtls: bob is denied, so not listed');
check('/req-not/', 'carol-int-chain', 200, undef, 'Require not mtls: carol is not listed');
# Audit
check('/audit/', 'alice-a', 200, undef, 'Audit');
check('/audit/', 'bob-a', 200,
      qr/\[mtls_authz:warn\] .*\QAUDIT (admitted): $DENY: \/audit\/: denied by $AUDIT_DENY; subject "$BOB_DN"\E/,
      'Audit: the deny is logged, the client admitted');

# The identity of a denied client
for my $name (sort keys %ENV_ALLOW) {
    for my $cert ('alice-a', 'bob-a') {
        my ($st, $head) = $s->request("/$name/", cert => $cert);
        my ($rule, $subj) = map { OwnHttpd::var_header($head, $_) } 'X-Rule', 'X-Subject';
        my $admitted = $cert eq 'alice-a';
        is($st, 200, "$name: $cert gets 200 (" . ($admitted ? 'the rules admit' : 'denied, let through') . ')');
        is("$rule|$subj", $admitted ? "$ENV_ALLOW{$name}|$ALICE_DN" : '|',
           "$name: $cert: MTLS_AUTHZ_RULE and MTLS_CLIENT_SUBJECT are "
           . ($admitted ? 'the allow rule and the subject' : 'unset'));
    }
}

# .htaccess
for my $row (@ht) {
    my ($name, undef, $server, $lines, $want, $log_re) = @$row;
    for my $cert (sort keys %$want) {
        my $re = $log_re;
        if (!$re && $want->{$cert} == 403 && $cert ne 'alice-a') {
            $re = denied_re("/$name/", $cert eq 'dave-a' ? $VHOST_DENY : $HT_DENY{$name}, $cert);
        }
        check("/$name/", $cert, $want->{$cert}, $re,
              "$name (server: @$server; .htaccess: @$lines)");
    }
}

$s->stop;

# ---- keep-alive: the per-connection memo -----------------------------------------
# /ka/ and /ka/deny/ share their allow rules (the nested scope inherits
# them) and differ only in a deny: a decision remembered for /ka/ must
# not answer for /ka/deny/, nor the other way round. The same with
# Require mtls, and in Audit mode (each request logs its AUDIT line).
my $k = OwnHttpd->new(__FILE__, 'deny-keepalive');
$k->add_header(loglevel => 'warn');
$k->add(qq{<Directory "} . $k->dir . qq{/docs">}, '    Require all granted',
        '    DirectoryIndex index.html', '</Directory>');
$k->add_vhost;
my $K_VHOST = $k->rule_at($k->add("    MTLSDeny cert=sha256:$FP{FP_CERT_DAVE_A}"));
$k->add_location('/ka/', 'MTLSAuthz On', $ALLOW);
my $K_DENY = $k->add_location('/ka/deny/', ">>MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}");
$k->add_location('/ka/other/', "MTLSDeny cert=sha256:$FP{FP_CERT_ALICE_A}");
$k->add_location('/kr/', 'Require mtls', $ALLOW);
my $K_RDENY = $k->add_location('/kr/deny/', ">>MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}");
my $K_AUDIT = $k->add_location('/ka/audit/', 'MTLSAuthzMode Audit',
                               ">>MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}");
# The only serial= rule of the server: a connection whose first requests
# went elsewhere must still be matched by its serial number.
$k->add_location('/ka/serial/', "MTLSDeny issuer=sha256:$FP{FP_CA_A} serial=$SERIAL{'bob-a'}");
# Deep nesting: from /kn/a/b/c/ on a request has more deny sets (the
# host's and one per level) than the memo keeps; each level's answer
# must still be its own.
$k->add_location('/kn/', 'MTLSAuthz On', $ALLOW, "MTLSDeny cert=sha256:$FP{FP_CERT_UPPER_A}");
$k->add_location('/kn/a/', 'MTLSDeny san=DNS:carol.example.com');
$k->add_location('/kn/a/b/', "MTLSDeny cert=sha256:$FP{FP_CERT_ALICE_A}");
$k->add_location('/kn/a/b/c/', "MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}");
$k->add_location('/kn/a/b/c/d/', 'MTLSDeny san=DNS:nobody.example.com');
$k->add('</VirtualHost>');
$k->write_doc("$_/index.html", "$_\n")
  for qw(ka ka/deny ka/other kr kr/deny ka/audit ka/serial kn kn/a kn/a/b kn/a/b/c kn/a/b/c/d);
$k->start;

my %KWANT = (
    'alice-a' => {'/ka/' => 200, '/ka/deny/' => 200, '/ka/other/' => 403, '/kr/' => 200,
                  '/kr/deny/' => 200, '/ka/audit/' => 200, '/kn/' => 200, '/kn/a/' => 200,
                  '/kn/a/b/' => 403, '/kn/a/b/c/' => 403, '/kn/a/b/c/d/' => 403,
                  '/ka/serial/' => 200},
    'bob-a'   => {'/ka/' => 200, '/ka/deny/' => 403, '/ka/other/' => 200, '/kr/' => 200,
                  '/kr/deny/' => 403, '/ka/audit/' => 200, '/kn/' => 200, '/kn/a/' => 200,
                  '/kn/a/b/' => 200, '/kn/a/b/c/' => 403, '/kn/a/b/c/d/' => 403,
                  '/ka/serial/' => 403},
    'dave-a'  => {'/ka/' => 403, '/ka/deny/' => 403, '/ka/other/' => 403, '/kr/' => 403,
                  '/kr/deny/' => 403, '/ka/audit/' => 200, '/kn/' => 403, '/kn/a/' => 403,
                  '/kn/a/b/' => 403, '/kn/a/b/c/' => 403, '/kn/a/b/c/d/' => 403,
                  '/ka/serial/' => 403},
);
# Each path twice in a row, then alternating.
my @KORDER = qw(/ka/ /ka/ /ka/serial/ /ka/serial/ /ka/ /ka/deny/ /ka/deny/ /ka/ /ka/deny/ /ka/other/ /ka/deny/ /ka/other/
                /ka/ /kr/ /kr/deny/ /kr/ /kr/deny/ /kr/deny/ /ka/deny/ /kr/ /ka/audit/ /ka/
                /ka/audit/ /ka/deny/ /ka/audit/ /kn/ /kn/a/ /kn/a/b/ /kn/a/b/c/ /kn/a/b/c/d/
                /kn/a/b/c/d/ /kn/a/b/c/ /kn/a/b/ /kn/a/ /kn/ /kn/a/b/c/d/ /kn/a/b/ /kn/ /ka/deny/
                /ka/serial/);
my $KLOG = $k->dir . '/error_log';
for my $cert (sort keys %KWANT) {
    for my $path (sort keys %{ $KWANT{$cert} }) {
        is($k->status($path, cert => $cert), $KWANT{$cert}{$path},
           "keep-alive server, fresh connection: $cert $path");
    }
    my $mark = $k->log_mark;
    my $n = $k->keepalive_check($cert, \@KORDER, sub { $KWANT{$cert}{ $_[0] } });
    next unless $n;
    my %count;
    $count{$_}++ for @KORDER[0 .. $n - 1];
    next unless $cert eq 'bob-a';
    # One line per refused or audited request, each naming its deny.
    my $sentinel = $k->status('/kr/deny/', cert => 'bob-a');    # its line comes last
    my $log = log_wait($KLOG, $mark, qr/denied by \Q$K_RDENY\E(?s:.*)denied by \Q$K_RDENY\E(?s:.*)denied by \Q$K_RDENY\E(?s:.*)denied by \Q$K_RDENY\E/);
    my @l = split /\n/, $log;
    is(scalar(grep { /\Q$DENY: \/ka\/deny\/: denied by $K_DENY;\E/ && !/AUDIT/ } @l),
       $count{'/ka/deny/'}, "keep-alive: one denial line per /ka/deny/ request ($count{'/ka/deny/'})")
      or diag($log);
    is(scalar(grep { /\QAUDIT (admitted): $DENY: \/ka\/audit\/: denied by $K_AUDIT;\E/ } @l),
       $count{'/ka/audit/'}, "keep-alive: one AUDIT line per /ka/audit/ request ($count{'/ka/audit/'})")
      or diag($log);
    is($sentinel, 403, 'the sentinel request is refused');
}
$k->stop;

# ---- startup refusals ----------------------------------------------------------

# A TLS host serving /x with @body in it (a line starting with '>>' is
# the one under test): (file, its line number).
sub conf {
    my ($cdir, $port, @body) = @_;
    spew("$cdir/ok.txt", "ok\n");
    return write_conf("$cdir/httpd.conf", head_lines(%at, dir => $cdir, port => $port),
        ssl_vhost({port => $port, pki => $at{pki}}, qq{    Alias /x "$cdir/ok.txt"}, @body));
}

# [name, deny file content (undef: none), lines in <Location /x>
#  (>> marks the one named), message regex (RULES: the rule file's path)]
my @bad = (
    ['serial-no-issuer', undef, ['MTLSAuthz On', $ALLOW, ">>MTLSDeny serial=$SERIAL{'bob-a'}"],
     qr/MTLSDeny: serial= needs issuer=: a serial number is unique only within one CA/],
    ['serial-no-issuer-subject', undef,
     ['MTLSAuthz On', $ALLOW, qq{>>MTLSDeny "subject=$BOB_DN" serial=$SERIAL{'bob-a'}}],
     qr/MTLSDeny: serial= needs issuer=: a serial number is unique only within one CA/],
    ['serial-no-issuer-file', "# denied\n\nMTLSDeny serial=$SERIAL{'bob-a'}\n",
     ['MTLSAuthz On', $ALLOW, '>>MTLSDenyFile rules/deny.txt'],
     qr/MTLSDenyFile: RULES:3: .*serial= needs issuer=: a serial number is unique only within one CA/],
    ['allow-line-in-deny-file', "cert=sha256:$FP{FP_CERT_BOB_A}\nMTLSAllow cert=sha256:$FP{FP_CERT_ALICE_A}\n",
     ['MTLSAuthz On', $ALLOW, '>>MTLSDenyFile rules/deny.txt'],
     qr/MTLSDenyFile: RULES:2: .*MTLSAllow/],
    ['deny-line-in-allow-file', "cert=sha256:$FP{FP_CERT_BOB_A}\nMTLSDeny cert=sha256:$FP{FP_CERT_ALICE_A}\n",
     ['MTLSAuthz On', '>>MTLSAllowFile rules/deny.txt'],
     qr/MTLSAllowFile: RULES:2: .*MTLSDeny/],
    ['serial-in-allow', undef,
     ['MTLSAuthz On', ">>MTLSAllow issuer=sha256:$FP{FP_CA_A} serial=$SERIAL{'bob-a'}"],
     qr/MTLSAllow: .*serial/],
    ['serial-not-hex', undef,
     ['MTLSAuthz On', $ALLOW, ">>MTLSDeny issuer=sha256:$FP{FP_CA_A} serial=12G4"],
     qr/MTLSDeny: .*12G4/],
    ['deny-bad-key', undef,
     ['MTLSAuthz On', $ALLOW, '>>MTLSDeny bogus=1'], qr/MTLSDeny: .*bogus/],
    ['deny-no-args', undef, ['MTLSAuthz On', $ALLOW, '>>MTLSDeny'], qr/MTLSDeny/],
    ['deny-in-limit', undef,
     ['MTLSAuthz On', $ALLOW, '<Limit POST>', ">>MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}", '</Limit>'],
     qr/MTLSDeny.*<Limit/],
    ['denyfile-missing', undef, ['MTLSAuthz On', $ALLOW, '>>MTLSDenyFile rules/deny.txt'],
     qr/MTLSDenyFile: RULES: cannot read: No such file or directory/],
);
for my $c (@bad) {
    my ($name, $content, $lines, $re) = @$c;
    my ($cdir, $port) = new_case($at{cfg}, "deny-$name", 'rules');
    spew("$cdir/rules/deny.txt", $content) if defined $content;
    my ($file, $line) = conf($cdir, $port, '    <Location /x>',
                             (map { /^>>(.*)$/ ? ">>        $1" : "        $_" } @$lines),
                             '    </Location>');
    my $rules = "$cdir/rules/deny.txt";
    (my $want = "$re") =~ s/RULES/\Q$rules\E/g;
    $want = qr/$want/;
    my ($st, $out) = config_test($HTTPD, $file, 60);
    ok($st != 0 && $out !~ /Syntax OK/, "$name: httpd -t fails (" . describe_status($st) . ')')
      or diag($out);
    like($out, qr/Syntax error on line $line of \Q$file\E:/, "$name: names the directive's file and line")
      or diag($out);
    like($out, $want, "$name: says why") or diag($out);
    # And httpd itself refuses to start, saying the same.
    my ($pid, $why, $xst) = start_server($HTTPD, $file, $port, 20);
    stop_server($pid) if $pid;
    ok(!$pid && defined $xst && $xst != 0, "$name: httpd refuses to start ("
       . (defined $xst ? describe_status($xst) : $why) . ')');
    like(slurp("$cdir/start.out"), $want, "$name: and says why on stderr");
}

# A deny file whose lines start with the word MTLSDeny, comments and blank
# lines: accepted.
{
    my ($cdir, $port) = new_case($at{cfg}, 'deny-file-words', 'rules');
    spew("$cdir/rules/deny.txt", "# who may not\n\n  # indented comment\n"
         . "MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A}\r\n"
         . "issuer=sha256:$FP{FP_CA_A} serial=$SERIAL{'alice-a'}\n");
    my ($file) = conf($cdir, $port, '    <Location /x>', '        MTLSAuthz On',
                      "        $ALLOW", '        MTLSDenyFile rules/deny.txt', '    </Location>');
    my ($st, $out) = config_test($HTTPD, $file, 60);
    is(describe_status($st), 'exit 0', 'a deny file with MTLSDeny words, comments, CRLF: httpd -t passes')
      or diag($out);
}

# ---- serial numbers at their edges ------------------------------------------------
# Leaves of the test PKI's CA A with chosen serial numbers (mkpki.sh's
# are random and positive): one whose DER has a sign byte (80FF0102 is
# 00 80 FF 01 02), 1, 5, -5 and 0. Each location denies one spelling;
# only the certificate with that number is refused.
{
    my ($sdir, $sport) = new_case($at{cfg}, 'deny-serials', 'certs');
    my $pki = $at{pki};
    my $out = "$sdir/openssl.out";
    HttpdRun::must_run($out, 'openssl req', 'openssl', 'req', '-new', '-newkey', 'ec',
        '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', "$sdir/certs/leaf.key",
        '-subj', '/CN=serial-test', '-out', "$sdir/certs/leaf.csr");
    spew("$sdir/certs/ext", "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
         . "extendedKeyUsage=clientAuth\nsubjectAltName=DNS:serial.example.com\n");
    my %serial = ('s-high' => '0x80FF0102', 's-one' => '1', 's-five' => '5', 's-neg' => '-5',
                  's-zero' => '0');
    for my $name (sort keys %serial) {
        HttpdRun::must_run($out, "openssl x509 $name", 'openssl', 'x509', '-req',
            '-in', "$sdir/certs/leaf.csr", '-CA', "$pki/ca-a.crt", '-CAkey', "$pki/ca-a.key",
            '-set_serial', $serial{$name}, '-days', '2', '-extfile', "$sdir/certs/ext",
            '-out', "$sdir/certs/$name.crt");
        spew("$sdir/certs/$name.pem", slurp("$sdir/certs/$name.crt") . slurp("$sdir/certs/leaf.key"));
    }
    chmod 0644, glob("$sdir/certs/*");
    # [location, serial= value, the certificate it refuses (undef: none)]
    my @rows = (['high', '80FF0102', 's-high'], ['high-zeros', '00:80:ff:01:02', 's-high'],
                ['high-prefix', '80FF01', undef], ['high-longer', '80FF010200', undef],
                ['one', '1', 's-one'], ['one-zeros', '000001', 's-one'],
                ['five', '05', 's-five'], ['neg', '-05', 's-neg'], ['neg-short', '-5', 's-neg'],
                ['zero', '0', 's-zero'], ['zero-zeros', '00:00', 's-zero']);
    spew("$sdir/ok.txt", "ok\n");
    my @body = (qq{    AliasMatch "^/s-[a-z-]+/\$" "$sdir/ok.txt"});
    for my $r (@rows) {
        push @body, "    <Location /s-$r->[0]/>", '        MTLSAuthz On', '        MTLSAllowSAN DNS:serial.example.com',
          "        MTLSDeny issuer=sha256:$FP{FP_CA_A} serial=$r->[1]", '    </Location>';
    }
    my ($file) = write_conf("$sdir/httpd.conf", head_lines(%at, dir => $sdir, port => $sport),
                            ssl_vhost({port => $sport, pki => $pki}, @body));
    my ($pid, $why) = start_server($HTTPD, $file, $sport, 20, "$sdir/error_log");
    ok($pid, 'serials: httpd starts') or diag($why, slurp("$sdir/start.out"));
    if ($pid) {
        for my $r (@rows) {
            my ($loc, $value, $refused) = @$r;
            for my $cert (sort keys %serial) {
                my $want = defined $refused && $refused eq $cert ? 403 : 200;
                is(HttpdRun::https_status($pki, $sport, "/s-$loc/", "$sdir/certs/$cert"), $want,
                   "serials: serial=$value; $cert (serial $serial{$cert}) gets $want");
            }
        }
        stop_server($pid);
        my @crash = grep { /$CRASH/ } split /\n/, slurp("$sdir/error_log");
        ok(!@crash, 'serials: no crash in the error log') or diag(join "\n", @crash);
    }
}

# ---- MTLSDenyFile on graceful restart -------------------------------------------
{
    my ($cdir, $port) = new_case($at{cfg}, 'deny-graceful', 'rules');
    my $rules = "$cdir/rules/deny.txt";
    my $elog = "$cdir/error_log";
    # First bob by issuer and serial: no cert= rule in the configuration.
    spew($rules, "# denied\nMTLSDeny issuer=sha256:$FP{FP_CA_A} serial=$SERIAL{'bob-a'}\n");
    my ($file) = conf($cdir, $port, '    <Location /x>', '        MTLSAuthz On',
                      "        $ALLOW", '        MTLSDenyFile rules/deny.txt', '    </Location>');
    my ($pid, $why) = start_server($HTTPD, $file, $port, 20, $elog);
    ok($pid, 'graceful: httpd starts with a deny file') or diag($why, slurp("$cdir/start.out"));
    my $get = sub { HttpdRun::https_status($at{pki}, $port, '/x', $_[0]) };
    if (!$pid) {
        ok(0, "graceful case $_: httpd did not start") for 1 .. 11;
    }
    else {
        is($get->('bob-a'), 403, 'graceful: bob is denied by the file');
        is($get->('alice-a'), 200, 'graceful: alice is admitted');

        # Then alice by her certificate instead (the first cert= rule of
        # the configuration); SIGUSR1 itself (what httpd -k graceful sends
        # once its check has passed).
        spew($rules, "# denied\ncert=sha256:$FP{FP_CERT_ALICE_A}\n");
        my $mark = -s $elog;
        kill 'USR1', $pid;
        my $log = log_wait($elog, $mark, qr/resuming normal operations/, 30);
        ok($log =~ /resuming normal operations/, 'graceful: SIGUSR1, the new generation runs')
          or diag($log);
        # A new generation listens; the old one's children may still
        # finish a connection: bounded polling for the first change.
        my $st;
        for (my $deadline = time + 20; ; sleep 0.2) {
            $st = $get->('alice-a');
            last if $st == 403 || time >= $deadline;
        }
        is($st, 403, 'graceful: alice is denied by the re-read file');
        my $m2 = -s $elog;
        is($get->('alice-a'), 403, 'graceful: alice again');
        like(log_wait($elog, $m2, qr/denied by \Q$rules\E:2/),
             qr{\Q$DENY: /x: denied by $rules:2; subject "$ALICE_DN"\E},
             'graceful: the denial names the deny file line 2');
        is($get->('bob-a'), 200, 'graceful: bob, no longer in the file, is admitted');

        # A deny file with an MTLSAllow line: httpd -k graceful checks
        # the configuration first, refuses, and the old rules keep serving.
        spew($rules, "cert=sha256:$FP{FP_CERT_BOB_A}\nMTLSAllow cert=sha256:$FP{FP_CERT_ALICE_A}\n");
        my ($tst, $out) = config_test($HTTPD, $file, 60);
        ok($tst != 0 && $out =~ /MTLSDenyFile: \Q$rules\E:2: .*MTLSAllow/,
           'graceful: an MTLSAllow line in the deny file: httpd -t fails naming deny.txt:2')
          or diag($out);
        my ($gst) = run_cmd(30, "$cdir/graceful.out", $HTTPD, '-k', 'graceful', '-f', $file);
        ok($gst != 0, 'graceful: httpd -k graceful refuses it (' . describe_status($gst) . ')')
          or diag(slurp("$cdir/graceful.out"));
        like(slurp("$cdir/graceful.out"), qr/MTLSDenyFile: \Q$rules\E:2: .*MTLSAllow/,
             'graceful: and says why');
        is($get->('alice-a'), 403, 'graceful: the running server still denies alice');
        is($get->('bob-a'), 200, 'graceful: and admits bob');
        stop_server($pid);
        my @crash = grep { /$CRASH/ } split /\n/, slurp($elog);
        ok(!@crash, 'graceful: no crash in the error log') or diag(join "\n", @crash);
    }
}

done_testing();
