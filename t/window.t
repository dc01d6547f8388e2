# Time-boxed rules (not_before=, not_after=) in a real httpd with mod_ssl,
# against the test PKI's certificates. Every window is computed from this
# test's own clock when it writes the configuration: an hour ago and an
# hour ahead (RFC 3339, in Z and with offsets), yesterday, the day after
# tomorrow, a month either way; nothing sleeps and nothing in the module
# is made to believe another time.
#   - inside the window: 200; expired: 403, "rule <file>:<line> expired at
#     <T>"; not yet valid: 403, "rule <file>:<line> not yet valid until
#     <T>"; on MTLSAllow lines, in an MTLSAllowFile, in .htaccess files,
#     under Require mtls and in Audit mode; at the edges a time can name
#     (1970-01-01T00:00:00Z, an offset that puts 9999-12-31 in 10000);
#   - the date-only forms: not_after=<today> still admits today,
#     not_before=<today> already does (a case that crosses midnight UTC
#     while it runs is run again);
#   - deny rules with windows: an expired or not yet valid deny refuses
#     nobody;
#   - one keep-alive connection at LogLevel warn (debug logging bypasses
#     the per-connection decision memo): a rule outside its window is
#     never admitted from the memo of a scope with the same rules;
#   - startup: an inverted window is refused, naming the directive's
#     file:line (and the rule file's line); bad times are refused; an
#     expired rule and one that ends within 7 days are warned about,
#     with httpd -t, at start and on a graceful restart, at most 20 of a
#     kind.
#
# Runs its own httpds (t/lib/OwnHttpd.pm, t/lib/HttpdRun.pm) on free
# loopback ports.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use POSIX qw(strftime);
use Time::Local qw(timegm);
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(locate slurp spew new_case describe_status head_lines ssl_vhost
  write_conf config_test start_server stop_server log_wait $CRASH);
use OwnHttpd ();

my %at = locate(__FILE__);
my $HTTPD = $at{httpd};

# ---- times -------------------------------------------------------------------

# Whole seconds: the module prints seconds, and a rule's instant must
# print as the test expects.
my $NOW = int(time);
my $DAY = 86400;

sub ymd  { strftime('%Y-%m-%d', gmtime $_[0]) }
sub zulu { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime $_[0]) }

# $t in RFC 3339 with the offset $min minutes east of UTC (0: 'Z'), and
# $frac (digits) as a fraction of a second.
sub rfc {
    my ($t, $min, $frac) = @_;
    $min //= 0;
    my $s = strftime('%Y-%m-%dT%H:%M:%S', gmtime($t + 60 * $min));
    $s .= ".$frac" if defined $frac;
    return $s . ($min == 0 ? 'Z'
                 : sprintf('%s%02d:%02d', $min < 0 ? '-' : '+', abs($min) / 60, abs($min) % 60));
}

# The first second of the day YYYY-MM-DD.
sub day0 {
    my ($y, $m, $d) = $_[0] =~ /^(\d{4})-(\d\d)-(\d\d)$/ or die "not a date: $_[0]\n";
    return timegm(0, 0, 0, $d, $m - 1, $y);
}

my $H_AGO    = $NOW - 3600;
my $H_AHEAD  = $NOW + 3600;
my $YESTERDAY = ymd($NOW - $DAY);          # ends at 00:00Z today: always past
my $LATER     = ymd($NOW + 2 * $DAY);      # starts at least a day from now
my $MONTH_AGO = ymd($NOW - 30 * $DAY);
my $MONTH_ON  = ymd($NOW + 30 * $DAY);
my $YESTERDAY_END = zulu(day0($YESTERDAY) + $DAY);
my $LATER_START   = zulu(day0($LATER));

my $ALICE_DN = 'CN=alice,O=Acme Inc.,C=US';
my $BOB_DN   = 'CN=bob,O=Acme Inc.,C=US';
my $DAVE_DN  = 'CN=dave,OU=Payments,O=Acme Inc.,C=US';
my $A = qq{"subject=$ALICE_DN"};
my $B = qq{"subject=$BOB_DN"};
my $D = qq{"subject=$DAVE_DN"};
my $DENY = 'client denied by server configuration';
my $ALLOW = 'MTLSAllowSAN DNS:.example.com';

diag("now: " . zulu($NOW) . "; yesterday $YESTERDAY, later $LATER");

# ---- the main server -------------------------------------------------------

my $s = OwnHttpd->new(__FILE__, 'window');
my $dir = $s->dir;
my %FP = map { $_ => $s->fp($_) }
  qw(FP_CA_A FP_CERT_ALICE_A FP_CERT_BOB_A FP_CERT_DAVE_A FP_CERT_UPPER_A);

# The line that refuses $cert at $uri for $why ("rule <src> expired at
# <T>", "denied by <src>", ...).
sub refused_re {
    my ($srv, $uri, $why, $cert) = @_;
    my $i = $srv->cert_info($cert);
    return qr/\Q$DENY: $uri: $why; subject "$i->{subject}", issuer sha256:$i->{issuer_fp}\E/;
}

spew("$dir/allow.txt", join("\n",
    '# partners, some only for a while',
    "$B not_after=$YESTERDAY",
    "MTLSAllow $D not_before=$LATER",
    "$A not_before=" . rfc($H_AGO) . ' not_after=' . rfc($H_AHEAD),
    "san=DNS:carol.example.com not_before=$MONTH_AGO not_after=$MONTH_ON", ''));
spew("$dir/deny.txt", join("\n",
    "cert=sha256:$FP{FP_CERT_BOB_A} not_after=$YESTERDAY",
    "MTLSDeny cert=sha256:$FP{FP_CERT_DAVE_A} not_before=" . rfc($H_AGO) . " not_after=$MONTH_ON",
    "cert=sha256:$FP{FP_CERT_ALICE_A} not_before=$LATER", ''));
my $ALLOW_FILE = "$dir/allow.txt";
my $DENY_FILE  = "$dir/deny.txt";

$s->add_header;
$s->add(qq{<Directory "$dir/docs">}, '    Require all granted', '    DirectoryIndex index.html',
        '</Directory>');
$s->add_vhost;

# [location, its lines (>> marks the rule a 403 names), { cert =>
#  [status, reason of the 403 with SRC for the marked rule] }]
my @cases = (
    ['in-dates', ['MTLSAuthz On', ">>MTLSAllow $A not_before=$MONTH_AGO not_after=$MONTH_ON"],
     {'alice-a' => [200], 'bob-a' => [403, 'no rule matched']}],
    ['in-rfc', ['MTLSAuthz On',
                ">>MTLSAllow $A not_before=" . rfc($H_AGO, 120) . ' not_after=' . rfc($H_AHEAD, 0, '250')],
     {'alice-a' => [200], 'alice-b' => [200], 'bob-a' => [403, 'no rule matched']}],
    ['in-lower-case', ['MTLSAuthz On',
                       ">>MTLSAllow $A not_before=" . lc(rfc($H_AGO)) . ' not_after=' . rfc($H_AHEAD, -300)],
     {'alice-a' => [200]}],
    ['in-no-end', ['MTLSAuthz On', ">>MTLSAllow $A not_before=" . rfc($H_AGO, 0, '999999')],
     {'alice-a' => [200]}],
    ['started-today', ['MTLSAuthz On', ">>MTLSAllow $A not_before=" . ymd($NOW)],
     {'alice-a' => [200]}],
    ['expired-date', ['MTLSAuthz On', ">>MTLSAllow $A not_after=$YESTERDAY"],
     {'alice-a' => [403, "rule SRC expired at $YESTERDAY_END"],
      'bob-a' => [403, 'no rule matched']}],
    ['expired-rfc', ['MTLSAuthz On', ">>MTLSAllow $A not_after=" . rfc($H_AGO, -300)],
     {'alice-a' => [403, 'rule SRC expired at ' . zulu($H_AGO)]}],
    ['expired-window', ['MTLSAuthz On',
                        ">>MTLSAllow $A not_before=$MONTH_AGO not_after=" . rfc($H_AGO, 60)],
     {'alice-a' => [403, 'rule SRC expired at ' . zulu($H_AGO)]}],
    ['not-yet-date', ['MTLSAuthz On', ">>MTLSAllow $A not_before=$LATER"],
     {'alice-a' => [403, "rule SRC not yet valid until $LATER_START"]}],
    ['not-yet-rfc', ['MTLSAuthz On', ">>MTLSAllow $A not_before=" . rfc($H_AHEAD, 330)],
     {'alice-a' => [403, 'rule SRC not yet valid until ' . zulu($H_AHEAD)]}],
    ['not-yet-window', ['MTLSAuthz On',
                        ">>MTLSAllow $A not_before=" . rfc($H_AHEAD) . " not_after=$MONTH_ON"],
     {'alice-a' => [403, 'rule SRC not yet valid until ' . zulu($H_AHEAD)]}],
    # The window is the reason only if nothing else kept the rule from
    # matching: alice from CA B misses by her issuer.
    ['expired-issuer', ['MTLSAuthz On', ">>MTLSAllow $A issuer=sha256:$FP{FP_CA_A} not_after=$YESTERDAY"],
     {'alice-a' => [403, "rule SRC expired at $YESTERDAY_END"],
      'alice-b' => [403, 'issuer not allowed']}],
    # An expired rule and a valid one for alice; only an expired one for bob.
    ['mixed', ['MTLSAuthz On', "MTLSAllow $A not_after=$YESTERDAY",
               "MTLSAllow $A not_before=" . rfc($H_AGO), ">>MTLSAllow $B not_after=$YESTERDAY"],
     {'alice-a' => [200], 'bob-a' => [403, "rule SRC expired at $YESTERDAY_END"]}],
    ['file', ['MTLSAuthz On', qq{MTLSAllowFile "$ALLOW_FILE"}],
     {'alice-a' => [200], 'carol-int-chain' => [200],
      'bob-a' => [403, "rule $ALLOW_FILE:2 expired at $YESTERDAY_END"],
      'dave-a' => [403, "rule $ALLOW_FILE:3 not yet valid until $LATER_START"]}],
    # Deny rules with windows
    ['deny-expired', ['MTLSAuthz On', $ALLOW,
                      "MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A} not_after=$YESTERDAY"],
     {'bob-a' => [200], 'alice-a' => [200]}],
    ['deny-expired-rfc', ['MTLSAuthz On', $ALLOW,
                          "MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A} not_after=" . rfc($H_AGO)],
     {'bob-a' => [200]}],
    ['deny-not-yet', ['MTLSAuthz On', $ALLOW,
                      "MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A} not_before=$LATER"],
     {'bob-a' => [200]}],
    ['deny-in', ['MTLSAuthz On', $ALLOW,
                 ">>MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A} not_before=" . rfc($H_AGO, -60)
                   . ' not_after=' . rfc($H_AHEAD, 90)],
     {'bob-a' => [403, 'denied by SRC'], 'alice-a' => [200]}],
    ['deny-file', ['MTLSAuthz On', $ALLOW, qq{MTLSDenyFile "$DENY_FILE"}],
     {'bob-a' => [200], 'alice-a' => [200], 'dave-a' => [403, "denied by $DENY_FILE:2"]}],
    # An expired deny is no reason given for a client no allow rule admits.
    ['deny-expired-only', ['MTLSAuthz On', qq{MTLSAllowSubject "$ALICE_DN"},
                           "MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A} not_after=$YESTERDAY"],
     {'bob-a' => [403, 'no rule matched'], 'alice-a' => [200]}],
    # The first instant a time can name: a rule that ended then has
    # ended, like any other.
    ['epoch-end', ['MTLSAuthz On', ">>MTLSAllow $A not_after=1970-01-01T00:00:00Z"],
     {'alice-a' => [403, 'rule SRC expired at 1970-01-01T00:00:00Z']}],
    ['epoch-end-offset', ['MTLSAuthz On', ">>MTLSAllow $A not_after=1970-01-01T01:00:00+01:00"],
     {'alice-a' => [403, 'rule SRC expired at 1970-01-01T00:00:00Z']}],
    ['epoch-end-deny', ['MTLSAuthz On', $ALLOW,
                        "MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A} not_after=1970-01-01T00:00:00Z"],
     {'bob-a' => [200]}],
    ['epoch-start', ['MTLSAuthz On', ">>MTLSAllow $A not_before=1970-01-01T00:00:00Z"],
     {'alice-a' => [200]}],
    # Require mtls and Audit
    ['req-expired', ['Require mtls', ">>MTLSAllow $A not_after=" . rfc($H_AGO)],
     {'alice-a' => [403, 'rule SRC expired at ' . zulu($H_AGO)]}],
    ['req-in', ['Require mtls', "MTLSAllow $A not_before=" . rfc($H_AGO) . " not_after=$MONTH_ON"],
     {'alice-a' => [200], 'bob-a' => [403, 'no rule matched']}],
);
my %SRC;
for my $c (@cases) {
    $s->write_doc("$c->[0]/index.html", "$c->[0]\n");
    $SRC{ $c->[0] } = $s->add_location("/$c->[0]/", @{ $c->[1] });
}
# .htaccess files with time-boxed rules: [name, server lines in its
#  <Directory>, .htaccess lines, { cert => [status, log regex] }]
my $HT_SUFFIX = qr/(?: \(rules of an \.htaccess\))?/;
my @ht = (
    ['ht-expired', [], ['MTLSAuthz On', "MTLSAllow $A not_after=$YESTERDAY"],
     {'alice-a' => [403, qr/: rule \S+\/ht-expired\/\.htaccess:2 expired at \Q$YESTERDAY_END\E$HT_SUFFIX; subject "\Q$ALICE_DN\E"/]}],
    ['ht-in', [], ['Require mtls', "MTLSAllow $A not_before=" . rfc($H_AGO) . ' not_after=' . rfc($H_AHEAD)],
     {'alice-a' => [200], 'bob-a' => [403]}],
    ['ht-gate-not-yet', ['MTLSAuthz On', qq{MTLSAllowSubject "$ALICE_DN" "$BOB_DN"}],
     ["MTLSAllow $A not_before=$LATER"],
     {'alice-a' => [403, qr/: rule \S+\/ht-gate-not-yet\/\.htaccess:1 not yet valid until \Q$LATER_START\E$HT_SUFFIX; subject "\Q$ALICE_DN\E"/],
      'bob-a' => [403]}],
    ['ht-gate-in', ['MTLSAuthz On', qq{MTLSAllowSubject "$ALICE_DN" "$BOB_DN"}],
     ["MTLSAllow $A not_before=$MONTH_AGO not_after=" . rfc($H_AHEAD)],
     {'alice-a' => [200], 'bob-a' => [403]}],
    ['ht-inverted', [], ['MTLSAuthz On', "MTLSAllow $A not_before=$LATER not_after=$YESTERDAY"],
     {'alice-a' => [500, qr/\.htaccess: MTLSAllow: not_before=\Q$LATER\E is not before not_after=\Q$YESTERDAY\E/]}],
    ['ht-bad-time', [], ['MTLSAuthz On', "MTLSAllow $A not_after=2027-02-30"],
     {'alice-a' => [500, qr/\.htaccess: MTLSAllow: .*2027-02-30/]}],
);
for my $row (@ht) {
    my ($name, $server, $lines) = @$row;
    $s->write_doc("$name/index.html", "$name\n");
    $s->write_htaccess($name, @$lines);
    $s->add(qq{    <Directory "$dir/docs/$name">}, '        AllowOverride AuthConfig',
            (map { "        $_" } @$server), '    </Directory>');
}
$s->write_doc('audit/index.html', "audit\n");
my $AUDIT_SRC = $s->add_location('/audit/', 'MTLSAuthz On', 'MTLSAuthzMode Audit',
                                 ">>MTLSAllow $A not_before=$LATER");
$s->add('</VirtualHost>');
$s->start;
my $LOG = "$dir/error_log";

my $none = $s->status('/in-dates/');
ok($none != 200, "no client certificate: not admitted ($none)");

for my $c (@cases) {
    my ($name, $lines, $want) = @$c;
    for my $cert (sort keys %$want) {
        my ($code, $why) = @{ $want->{$cert} };
        my $mark = $s->log_mark;
        is($s->status("/$name/", cert => $cert), $code, "$name [@$lines]: $cert gets $code");
        next unless $why;
        $why =~ s/SRC/$SRC{$name}/;
        my $re = refused_re($s, "/$name/", $why, $cert);
        my $log = log_wait($LOG, $mark, $re);
        like($log, $re, "$name: $cert: the error log says \"$why\"") or diag($log);
    }
}
{
    my $mark = $s->log_mark;
    is($s->status('/audit/', cert => 'alice-a'), 200, 'Audit: a rule not yet valid: admitted');
    my $re = qr/\[mtls_authz:warn\] .*AUDIT \(admitted\): \Q$DENY: \/audit\/: rule $AUDIT_SRC not yet valid until $LATER_START; subject "$ALICE_DN"\E/;
    like(log_wait($LOG, $mark, $re), $re, 'Audit: logged as AUDIT, naming the rule and its start');
}
like(slurp("$dir/start.out"), qr/\Q$SRC{'epoch-end'} expired at 1970-01-01T00:00:00Z: it no longer matches any client\E/,
     'start: the rule that ended at 1970-01-01T00:00:00Z is warned about as expired');
for my $row (@ht) {
    my ($name, $server, $lines, $want) = @$row;
    for my $cert (sort keys %$want) {
        my ($code, $re) = @{ $want->{$cert} };
        my $mark = $s->log_mark;
        is($s->status("/$name/", cert => $cert), $code,
           "$name (server: @$server; .htaccess: @$lines): $cert gets $code");
        next unless $re;
        my $log = log_wait($LOG, $mark, $re);
        like($log, $re, "$name: $cert: the error log says why") or diag($log);
    }
}
# The rule files' expired and not-yet lines at startup (start.out: stderr).
like(slurp("$dir/start.out"), qr/\Q$ALLOW_FILE:2 expired at $YESTERDAY_END: it no longer matches any client\E/,
     'start: the rule file\'s expired line 2 is warned about');
$s->stop;

# ---- keep-alive: the per-connection memo ------------------------------------------
# /kw/ok/ admits alice without a window; the scopes below it share its
# allow rules and add deny rules with windows, or replace them with
# rules outside their windows. Alternating on one connection, each
# answer must be a fresh connection's.
my $k = OwnHttpd->new(__FILE__, 'window-keepalive');
$k->add_header(loglevel => 'warn');
$k->add(qq{<Directory "} . $k->dir . qq{/docs">}, '    Require all granted',
        '    DirectoryIndex index.html', '</Directory>');
$k->add_vhost;
my %KLOC = (
    '/kw/ok/'           => ['MTLSAuthz On', "MTLSAllow $A"],
    '/kw/ok/expired/'   => ["MTLSAllow $A not_after=" . rfc($H_AGO)],
    '/kw/ok/later/'     => ["MTLSAllow $A not_before=" . rfc($NOW + 7200)],
    '/kw/ok/both/'      => ["MTLSAllow $A not_after=$YESTERDAY", "MTLSAllow $A not_before=$LATER"],
    '/kw/ok/deny-old/'  => [qq{MTLSDeny "subject=$ALICE_DN" not_after=} . rfc($H_AGO)],
    '/kw/ok/deny-now/'  => [qq{MTLSDeny "subject=$ALICE_DN" not_before=} . rfc($H_AGO)
                              . ' not_after=' . rfc($H_AHEAD)],
    '/kw/ok/deny-soon/' => [qq{MTLSDeny "subject=$ALICE_DN" not_before=} . rfc($NOW + 7200)],
    '/kw/in/'           => ['MTLSAuthz On', "MTLSAllow $A not_before=" . rfc($H_AGO)
                              . ' not_after=' . rfc($H_AHEAD)],
    '/kw/in/expired/'   => ["MTLSAllow $A not_before=$MONTH_AGO not_after=" . rfc($H_AGO)],
    '/kr/'              => ['Require mtls', "MTLSAllow $A"],
    '/kr/expired/'      => ["MTLSAllow $A not_after=$YESTERDAY"],
);
my %KWANT = ('/kw/ok/' => 200, '/kw/ok/expired/' => 403, '/kw/ok/later/' => 403,
             '/kw/ok/both/' => 403, '/kw/ok/deny-old/' => 200, '/kw/ok/deny-now/' => 403,
             '/kw/ok/deny-soon/' => 200, '/kw/in/' => 200, '/kw/in/expired/' => 403,
             '/kr/' => 200, '/kr/expired/' => 403);
for my $path (sort keys %KLOC) {
    $k->write_doc("${path}index.html", "$path\n");
    $k->add_location($path, @{ $KLOC{$path} });
}
$k->add('</VirtualHost>');
$k->start;
for my $path (sort keys %KWANT) {
    is($k->status($path, cert => 'alice-a'), $KWANT{$path}, "fresh connection: alice $path");
}
{
    my @order = qw(/kw/ok/ /kw/ok/ /kw/ok/expired/ /kw/ok/expired/ /kw/ok/ /kw/ok/later/ /kw/ok/
                   /kw/ok/both/ /kw/ok/ /kw/ok/deny-old/ /kw/ok/deny-now/ /kw/ok/deny-now/
                   /kw/ok/deny-old/ /kw/ok/deny-soon/ /kw/ok/deny-now/ /kw/ok/ /kw/in/ /kw/in/
                   /kw/in/expired/ /kw/in/ /kw/in/expired/ /kr/ /kr/expired/ /kr/ /kr/expired/
                   /kw/ok/ /kr/expired/ /kw/in/expired/ /kw/ok/later/);
    $k->keepalive_check('alice-a', \@order, sub { $KWANT{ $_[0] } }, who => 'alice');
}
$k->stop;

# ---- the date-only forms around today -------------------------------------------
# not_after=<today> admits until midnight UTC. If midnight passes while
# the case runs, its answers are the next day's: run it again (once).
sub today_case {
    my ($attempt) = @_;
    my $t0 = time;
    my ($today, $tomorrow, $yday) = (ymd($t0), ymd($t0 + $DAY), ymd($t0 - $DAY));
    my @r;    # [is|like, got, want, name]
    my $h = OwnHttpd->new(__FILE__, "window-today-$attempt");
    $h->add_header;
    $h->add(qq{<Directory "} . $h->dir . qq{/docs">}, '    Require all granted',
            '    DirectoryIndex index.html', '</Directory>');
    $h->add_vhost;
    my %src;
    my %rules = (
        'today-end'   => "MTLSAllow $A not_after=$today",
        'today-both'  => "MTLSAllow $A not_before=$today not_after=$today",
        'today-start' => "MTLSAllow $A not_before=$today",
        'tomorrow'    => "MTLSAllow $A not_before=$tomorrow",
        'yesterday'   => "MTLSAllow $A not_after=$yday",
    );
    for my $name (sort keys %rules) {
        $h->write_doc("$name/index.html", "$name\n");
        $src{$name} = $h->add_location("/$name/", 'MTLSAuthz On', ">>$rules{$name}");
    }
    $h->add('</VirtualHost>');
    $h->start;
    my $log = "${\ $h->dir}/error_log";
    my %want = ('today-end' => [200], 'today-both' => [200], 'today-start' => [200],
                'tomorrow' => [403, "rule $src{tomorrow} not yet valid until ${tomorrow}T00:00:00Z"],
                'yesterday' => [403, "rule $src{yesterday} expired at ${today}T00:00:00Z"]);
    for my $name (sort keys %want) {
        my ($code, $why) = @{ $want{$name} };
        my $mark = $h->log_mark;
        push @r, ['is', $h->status("/$name/", cert => 'alice-a'), $code,
                  "date only: $rules{$name} (today is $today): alice gets $code"];
        next unless $why;
        my $re = refused_re($h, "/$name/", $why, 'alice-a');
        push @r, ['like', log_wait($log, $mark, $re), $re, "date only: $name: \"$why\""];
    }
    # not_after=<today> ends within 7 days: warned about at start.
    push @r, ['like', slurp("${\ $h->dir}/start.out"),
              qr/\Q$src{'today-end'} expires at ${tomorrow}T00:00:00Z, within 7 days\E/,
              'date only: not_after=<today> is warned about as ending within 7 days'];
    $h->stop;
    return (ymd(time) eq $today, @r);
}
{
    my ($same_day, @r) = today_case(1);
    if (!$same_day) {
        diag('midnight UTC passed during the date-only case: running it again');
        ($same_day, @r) = today_case(2);
    }
    ok($same_day, 'the date-only case ran within one UTC day');
    for (@r) {
        my ($how, $got, $want, $name) = @$_;
        if ($how eq 'is') { is($got, $want, $name) }
        else { like($got, $want, $name) or diag($got) }
    }
}

# ---- startup ------------------------------------------------------------------

# A TLS host serving /x with @body (a line starting with '>>' is the one
# under test): (file, its line number).
sub conf {
    my ($cdir, $port, @body) = @_;
    spew("$cdir/ok.txt", "ok\n");
    return write_conf("$cdir/httpd.conf", head_lines(%at, dir => $cdir, port => $port),
        ssl_vhost({port => $port, pki => $at{pki}}, qq{    Alias /x "$cdir/ok.txt"}, @body));
}

sub loc_lines {
    my (@lines) = @_;
    return ('    <Location /x>', (map { /^>>(.*)$/ ? ">>        $1" : "        $_" } @lines),
            '    </Location>');
}

# Inverted windows and bad times: [name, rule file content (undef:
# none), lines in <Location /x> (>> marks the one named), message regex
# (RULES: the rule file's path)]
my $D30 = ymd($NOW + 30 * $DAY);
my $D31 = ymd($NOW + 31 * $DAY);
my @bad = (
    ['inverted', undef, ['MTLSAuthz On', ">>MTLSAllow $A not_before=$LATER not_after=$YESTERDAY"],
     qr/MTLSAllow: not_before=\S+ is not before not_after=\S+/],
    # A date alone as not_after ends at 00:00Z of the next day: equal to
    # this not_before, so the window is empty.
    ['inverted-equal', undef,
     ['MTLSAuthz On', ">>MTLSAllow $A not_before=${D31}T00:00:00Z not_after=$D30"],
     qr/MTLSAllow: not_before=\S+ is not before not_after=\S+/],
    ['inverted-rfc', undef,
     ['MTLSAuthz On', ">>MTLSAllow $A not_before=" . rfc($H_AHEAD) . ' not_after=' . rfc($H_AGO)],
     qr/MTLSAllow: not_before=\S+ is not before not_after=\S+/],
    # The same instant in two offsets.
    ['inverted-offsets', undef,
     ['MTLSAuthz On', ">>MTLSAllow $A not_before=" . rfc($H_AHEAD, 120) . ' not_after=' . rfc($H_AHEAD, -180)],
     qr/MTLSAllow: not_before=\S+ is not before not_after=\S+/],
    ['inverted-deny', undef,
     ['MTLSAuthz On', $ALLOW, ">>MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A} not_before=$LATER not_after=$YESTERDAY"],
     qr/MTLSDeny: not_before=\S+ is not before not_after=\S+/],
    ['inverted-file', "# x\n$B\n$A not_before=$LATER not_after=$YESTERDAY\n",
     ['MTLSAuthz On', '>>MTLSAllowFile rules/rules.txt'],
     qr/MTLSAllowFile: RULES:3: not_before=\S+ is not before not_after=\S+/],
    ['inverted-deny-file', "cert=sha256:$FP{FP_CERT_BOB_A} not_before=$LATER not_after=$YESTERDAY\n",
     ['MTLSAuthz On', $ALLOW, '>>MTLSDenyFile rules/rules.txt'],
     qr/MTLSDenyFile: RULES:1: not_before=\S+ is not before not_after=\S+/],
    (map {
        my ($v, $key) = @$_;
        ["bad-time-$v", undef, ['MTLSAuthz On', ">>MTLSAllow $A $key=$v"],
         qr/MTLSAllow: .*\Q$v\E/]
     } ['2027-02-30', 'not_after'], ['2027-02-29', 'not_after'], ['2027-13-01', 'not_before'],
       ['2027-00-10', 'not_after'], ['2027-01-01T24:00:00Z', 'not_after'],
       ['2027-01-01T12:60:00Z', 'not_before'], ['2027-01-01T12:00:00', 'not_after'],
       ['2027-01-01T12:00:00+0200', 'not_after'], ['2027-01-01T12:00Z', 'not_after'],
       ['1969-12-31', 'not_before'], ['27-01-01', 'not_after'], ['tomorrow', 'not_before']),
    ['bad-time-empty', undef, ['MTLSAuthz On', ">>MTLSAllow $A not_after="], qr/MTLSAllow: .*not_after/],
    ['bad-time-deny', undef,
     ['MTLSAuthz On', $ALLOW, ">>MTLSDeny cert=sha256:$FP{FP_CERT_BOB_A} not_after=2027-02-30"],
     qr/MTLSDeny: .*2027-02-30/],
    ['bad-time-file', "$B\n$A not_after=2027-13-01\n", ['MTLSAuthz On', '>>MTLSAllowFile rules/rules.txt'],
     qr/MTLSAllowFile: RULES:2: .*2027-13-01/],
);
for my $c (@bad) {
    my ($name, $content, $lines, $re) = @$c;
    my ($cdir, $port) = new_case($at{cfg}, "window-$name", 'rules');
    spew("$cdir/rules/rules.txt", $content) if defined $content;
    my ($file, $line) = conf($cdir, $port, loc_lines(@$lines));
    (my $want = "$re") =~ s/RULES/\Q$cdir\/rules\/rules.txt\E/g;
    $want = qr/$want/;
    my ($st, $out) = config_test($HTTPD, $file, 60);
    ok($st != 0 && $out !~ /Syntax OK/, "$name: httpd -t fails (" . describe_status($st) . ')')
      or diag($out);
    like($out, qr/Syntax error on line $line of \Q$file\E:/, "$name: names the directive's file and line")
      or diag($out);
    like($out, $want, "$name: says why") or diag($out);
    next unless $name =~ /^inverted/;
    my ($pid, $why, $xst) = start_server($HTTPD, $file, $port, 20);
    stop_server($pid) if $pid;
    ok(!$pid && defined $xst && $xst != 0, "$name: httpd refuses to start ("
       . (defined $xst ? describe_status($xst) : $why) . ')');
    like(slurp("$cdir/start.out"), $want, "$name: and says why on stderr");
}

# The last day a time can name, with an offset west of UTC: the instant
# is in the year 10000. Refused, or printed as that instant in full.
{
    my ($cdir, $port) = new_case($at{cfg}, 'window-year-10000', 'rules');
    my $v = '9999-12-31T23:00:00-12:00';
    my ($file, $line) = conf($cdir, $port, loc_lines('MTLSAuthz On', ">>MTLSAllow $A not_before=$v"));
    my ($st, $out) = config_test($HTTPD, $file, 60);
    if ($st != 0) {
        like($out, qr/Syntax error on line $line of \Q$file\E:\n.*\Q$v\E/,
             "not_before=$v: refused, naming the line and the value");
    }
    else {
        my $elog = "$cdir/error_log";
        my ($pid, $why) = start_server($HTTPD, $file, $port, 20, $elog);
        my $mark = -s $elog;
        my $got = $pid ? HttpdRun::https_status($at{pki}, $port, '/x', 'alice-a') : "not started: $why";
        my $re = qr/\Qrule $file:$line not yet valid until 10000-01-01T11:00:00Z;\E/;
        my $log = $pid ? log_wait($elog, $mark, $re) : '';
        stop_server($pid) if $pid;
        ok($got eq '403' && $log =~ $re,
           "not_before=$v accepted: alice gets 403 ($got), and the line names 10000-01-01T11:00:00Z")
          or diag($log);
    }
}

# Windows that are fine: a leap day, a one-day window (not_before and
# not_after the same date), offsets and fractions.
{
    my ($cdir, $port) = new_case($at{cfg}, 'window-good', 'rules');
    my ($file) = conf($cdir, $port, loc_lines('MTLSAuthz On',
        "MTLSAllow $A not_after=2028-02-29",
        "MTLSAllow $B not_before=$D30 not_after=$D30",
        "MTLSAllow $D not_before=${D30}T23:59:59.999+14:00 not_after=${D31}T00:00:00-12:00"));
    my ($st, $out) = config_test($HTTPD, $file, 60);
    is(describe_status($st), 'exit 0', 'a leap day, a one-day window, +14:00 and -12:00: httpd -t passes')
      or diag($out);
    unlike($out, qr/expire/, 'and warns about none of them') or diag($out);
}

# Warnings: expired rules and rules that end within 7 days, MTLSAllow and
# MTLSDeny, on lines and in rule files; with httpd -t, at start and on a
# graceful restart. A rule ending in a month is not warned about.
{
    my ($cdir, $port) = new_case($at{cfg}, 'window-warnings', 'rules');
    my $rules = "$cdir/rules/rules.txt";
    my $in3 = $NOW + 3 * $DAY;
    my $in2 = $NOW + 2 * $DAY;
    spew($rules, "# rules\n$D not_after=" . rfc($H_AGO) . "\n$D not_after=" . rfc($in3, 60)
         . "\n$D not_after=$MONTH_ON\n");
    # $loc: the line of <Location /x>; the rules follow it.
    my ($file, $loc) = conf($cdir, $port,
        '>>    <Location /x>', '        MTLSAuthz On',
        "        MTLSAllow $A not_after=" . rfc($H_AGO),
        "        MTLSAllow $B not_after=" . rfc($in3),
        "        MTLSDeny cert=sha256:$FP{FP_CERT_DAVE_A} not_after=$YESTERDAY",
        "        MTLSDeny cert=sha256:$FP{FP_CERT_UPPER_A} not_after=" . rfc($in2, -120),
        "        MTLSAllow san=DNS:carol.example.com not_after=$MONTH_ON",
        "        MTLSDeny cert=sha256:$FP{FP_CERT_ALICE_A} not_before=$LATER not_after=$MONTH_ON",
        '        MTLSAllowFile rules/rules.txt',
        '    </Location>');
    my $at = sub { "$file:" . ($loc + $_[0]) };
    my @want = (
        ['allow expired', qr/(?<!deny )\Qrule ${\ $at->(2)} expired at ${\ zulu($H_AGO)}: it no longer matches any client\E/],
        ['allow within 7 days', qr/(?<!deny )\Qrule ${\ $at->(3)} expires at ${\ zulu($in3)}, within 7 days\E/],
        ['deny expired', qr/\Qdeny rule ${\ $at->(4)} expired at $YESTERDAY_END: it no longer matches any client\E/],
        ['deny within 7 days', qr/\Qdeny rule ${\ $at->(5)} expires at ${\ zulu($in2)}, within 7 days\E/],
        ['rule file expired', qr/(?<!deny )\Qrule $rules:2 expired at ${\ zulu($H_AGO)}: it no longer matches any client\E/],
        ['rule file within 7 days', qr/(?<!deny )\Qrule $rules:3 expires at ${\ zulu($in3)}, within 7 days\E/],
    );
    my @quiet = ($at->(6), $at->(7), "$rules:4");
    my $check = sub {
        my ($when, $out) = @_;
        for (@want) {
            like($out, $_->[1], "warnings, $when: $_->[0]") or diag($out);
        }
        for my $src (@quiet) {
            unlike($out, qr/\Q$src\E (expired|expires)/, "warnings, $when: none for $src (a month to go, or not yet started)");
        }
    };
    my ($st, $out) = config_test($HTTPD, $file, 60);
    ok($st == 0 && $out =~ /Syntax OK/, 'warnings: httpd -t passes (' . describe_status($st) . ')')
      or diag($out);
    $check->('httpd -t', $out);

    my $elog = "$cdir/error_log";
    my ($pid, $why) = start_server($HTTPD, $file, $port, 20, $elog);
    ok($pid, 'warnings: httpd starts') or diag($why, slurp("$cdir/start.out"));
    if ($pid) {
        $check->('start (stderr)', slurp("$cdir/start.out"));
        my $get = sub { HttpdRun::https_status($at{pki}, $port, '/x', $_[0]) };
        is($get->('alice-a'), 403, 'warnings: alice\'s rule has expired: 403');
        is($get->('bob-a'), 200, 'warnings: bob\'s rule ends in 3 days: 200');
        is($get->('upper-a'), 403, 'warnings: upper-a has no rule: 403');
        my $mark = -s $elog;
        kill 'USR1', $pid;
        my $log = log_wait($elog, $mark, qr/resuming normal operations/, 30);
        ok($log =~ /resuming normal operations/, 'warnings: graceful restart (SIGUSR1)') or diag($log);
        $check->('graceful restart (error log)', $log);
        stop_server($pid);
        my @crash = grep { /$CRASH/ } split /\n/, slurp($elog);
        ok(!@crash, 'warnings: no crash in the error log') or diag(join "\n", @crash);
    }
}

# At most 20 lines of a kind, then "... and N more".
{
    my ($cdir, $port) = new_case($at{cfg}, 'window-many', 'rules');
    my $rules = "$cdir/rules/rules.txt";
    spew($rules, join '', map { "san=DNS:c$_.example.com not_after=$YESTERDAY\n" } 1 .. 25);
    my ($file) = conf($cdir, $port, loc_lines('MTLSAuthz On', "MTLSAllow $A",
                                              'MTLSAllowFile rules/rules.txt'));
    my ($st, $out) = config_test($HTTPD, $file, 60);
    is(describe_status($st), 'exit 0', '25 expired rules: httpd -t passes') or diag($out);
    my %named = map { $_ => 1 } $out =~ /rule \Q$rules\E:(\d+) expired at/g;
    is(scalar(keys %named), 20, '20 of them are named') or diag($out);
    like($out, qr/\.\.\. and 5 more/, 'then "... and 5 more"') or diag($out);
}

done_testing();
