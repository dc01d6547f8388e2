# The status page's rule counts across restarts: a graceful restart
# (httpd -k graceful) and a restart (httpd -k restart) keep the counts of
# every rule whose content and scope are unchanged, even where lines
# inserted above it moved its file:line; a changed rule, a new rule and
# an old rule in a new scope start at zero, counting since that restart;
# a stop and a start reset everything.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use JSON::PP ();
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(slurp spew run_cmd describe_status);
use OwnHttpd ();
use StatusPage qw(conn_get fetch_json epoch_of wait_until $ISO_RE);

no warnings 'uninitialized';    # a missing field fails an assertion, not the file

my $ALICE = 'CN=alice,O=Acme Inc.,C=US';
my $BOB   = 'CN=bob,O=Acme Inc.,C=US';
my $DAVE  = 'CN=dave,OU=Payments,O=Acme Inc.,C=US';

my $s = OwnHttpd->new(__FILE__, 'status-restart');
my ($dir, $port, $pki) = ($s->dir, $s->port, $s->pki(''));
my $A = 'sha256:' . $s->fp('FP_CA_A');
$s->write_doc("$_/x.txt", "x\n") for qw(a b c);
my $rules_file = "$dir/rules.conf";

# The configuration of version $v (1: as started; 2: lines inserted
# above every rule, dave's rule changed, a new rule for erin, alice's
# /b/ rule copied into a new <Location /c/>). Returns name => file:line.
sub configure {
    my ($v) = @_;
    my %r;
    my @file = ($v == 1 ? () : ('# two lines inserted', '# above the rules'),
                qq{"subject=$ALICE"}, qq{"subject=$BOB"},
                $v == 1 ? qq{"subject=$DAVE"} : qq{"subject=$DAVE" issuer=$A},
                $v == 1 ? () : 'san=DNS:erin.example.com');
    spew($rules_file, join("\n", @file) . "\n");
    my $off = $v == 1 ? 0 : 2;
    @r{qw(f_alice f_bob f_dave)} = map { "$rules_file:" . ($_ + $off) } 1 .. 3;
    $r{f_erin} = "$rules_file:6" if $v == 2;
    $s->{lines} = [];
    $s->add_header;
    $s->add('StartServers 1', 'ServerLimit 1');
    $s->add('# one line more above the rules') if $v == 2;
    $s->add_vhost;
    $s->add('    <Location /a/>', '        MTLSAuthz On', '        MTLSAllowFile rules.conf',
            '    </Location>');
    $s->add('    # and one more', '    # here') if $v == 2;
    $s->add('    <Location /b/>', '        MTLSAuthz On');
    $r{b_alice} = $s->rule_at($s->add(qq{        MTLSAllowSubject "$ALICE"}));
    $r{b_deny} = $s->rule_at($s->add(qq{        MTLSDeny "subject=$BOB"}));
    $s->add('    </Location>');
    if ($v == 2) {
        $s->add('    <Location /c/>', '        MTLSAuthz On');
        $r{c_alice} = $s->rule_at($s->add(qq{        MTLSAllowSubject "$ALICE"}));
        $s->add('    </Location>');
    }
    $s->add('    <Location /status>', '        SetHandler mtls-authz-status',
            '        Require ip 127.0.0.1', '    </Location>', '</VirtualHost>');
    $s->save;
    return %r;
}

sub json {
    my ($doc, $st, undef, $body, $why) = fetch_json($pki, $port, '/status?json', 'alice-a');
    ok($doc, '?json answers a JSON document') or diag("status $st: $why\n$body");
    $doc //= {};
    ref $doc->{$_} eq 'ARRAY' or $doc->{$_} = [] for qw(rules clients decisions);
    return $doc;
}

# The rules of a document as [file:line, scope, admissions, denials,
# since, last_admission defined?].
sub rules_of {
    my ($doc) = @_;
    return [map { [@$_{qw(rule scope admissions denials since)}, defined $_->{last_admission}
                   ? 'admitted' : 'never'] } @{ $doc->{rules} }];
}

# Requests, each on its own connection: [certificate, path, status]...
sub load {
    my ($what, @reqs) = @_;
    my @bad;
    for my $q (@reqs) {
        my ($r) = conn_get($pki, $port, [$q->[1]], cert => $q->[0]);
        push @bad, "$q->[0] $q->[1]: $r->[0], not $q->[2]" if $r->[0] != $q->[2];
    }
    ok(!@bad, "$what: every request answered as expected") or diag(join "\n", @bad);
}

# Waits until the server's clock has passed $t (the page's times are in
# seconds: a restart in the same second as the start would print the
# same time).
sub past {
    my ($t) = @_;
    my $ok = wait_until(5, sub {
        my ($d) = fetch_json($pki, $port, '/status?json', 'alice-a');
        $d && defined $d->{now} && $d->{now} gt $t;
    });
    ok($ok, "the server's clock passed $t");
}

# Sends httpd -k $how and waits until the page reports the restart.
sub restart {
    my ($how, $before) = @_;
    my $mark = $s->log_mark;
    my ($st, $hung) = run_cmd(30, "$dir/$how.out", $s->{httpd}, '-f', $s->file, '-k', $how);
    ok(!$st && !$hung, "httpd -k $how: exit 0") or diag(describe_status($st), slurp("$dir/$how.out"));
    my $log = HttpdRun::log_wait("$dir/error_log", $mark, qr/resuming normal operations/, 30);
    like($log, qr/resuming normal operations/, "httpd -k $how: the server resumed");
    my $doc;
    wait_until(10, sub { $doc = (fetch_json($pki, $port, '/status?json', 'alice-a'))[0];
                         $doc && defined $doc->{restarted} && $doc->{restarted} ne $before });
    my $after = $doc ? $doc->{restarted} : undef;
    ok(defined $after && $after =~ $ISO_RE && $after gt $before,
       "after -k $how, restarted is later than before ($before)") or diag("restarted: $after");
}

# ---- version 1 ---------------------------------------------------------------
my %r1 = configure(1);
$s->start;
load('version 1', (['alice-a', '/a/x.txt', 200]) x 3, (['bob-a', '/a/x.txt', 200]) x 2,
     ['dave-a', '/a/x.txt', 200], (['alice-a', '/b/x.txt', 200]) x 2, ['bob-a', '/b/x.txt', 403]);
my $d1 = json();
my $started = $d1->{started};
like($started, $ISO_RE, 'started is a time');
my $sc = sub { "localhost:$port <Location $_[0]>" };
is_deeply(rules_of($d1), [
    [$r1{f_alice}, $sc->('/a/'), 3, 0, $started, 'admitted'],
    [$r1{f_bob},   $sc->('/a/'), 2, 0, $started, 'admitted'],
    [$r1{f_dave},  $sc->('/a/'), 1, 0, $started, 'admitted'],
    [$r1{b_alice}, $sc->('/b/'), 2, 0, $started, 'admitted'],
    [$r1{b_deny},  $sc->('/b/'), 0, 1, $started, 'never'],
], 'version 1: the counts of the load') or diag(JSON::PP->new->pretty->encode($d1->{rules}));
my %la1 = map { ($_->{rule} => $_->{last_admission}) } @{ $d1->{rules} };

# ---- graceful restart into version 2 ------------------------------------------
past($started);
my %r2 = configure(2);
restart('graceful', $started);
my $d2 = json();
my $g = $d2->{restarted};
is($d2->{started}, $started, 'started is still the first start');
is_deeply(rules_of($d2), [
    [$r2{f_alice}, $sc->('/a/'), 3, 0, $started, 'admitted'],
    [$r2{f_bob},   $sc->('/a/'), 2, 0, $started, 'admitted'],
    [$r2{f_dave},  $sc->('/a/'), 0, 0, $g, 'never'],
    [$r2{f_erin},  $sc->('/a/'), 0, 0, $g, 'never'],
    [$r2{b_alice}, $sc->('/b/'), 2, 0, $started, 'admitted'],
    [$r2{b_deny},  $sc->('/b/'), 0, 1, $started, 'never'],
    [$r2{c_alice}, $sc->('/c/'), 0, 0, $g, 'never'],
], 'after the graceful restart: unchanged rules keep their counts and since at their new '
   . 'lines; the changed rule (dave), the new one (erin) and alice\'s rule in the new '
   . '<Location /c/> start at 0 since the restart')
  or diag(JSON::PP->new->pretty->encode($d2->{rules}));
ok($r2{f_alice} ne $r1{f_alice} && $r2{b_alice} ne $r1{b_alice},
   'the kept rules did move (file:line differs)');
my %la2 = map { ($_->{rule} => $_->{last_admission}) } @{ $d2->{rules} };
is_deeply([@la2{@r2{qw(f_alice f_bob b_alice)}}], [@la1{@r1{qw(f_alice f_bob b_alice)}}],
          'their last_admission is kept too');

load('version 2', ['alice-a', '/a/x.txt', 200], ['dave-a', '/a/x.txt', 200],
     ['expiring-a', '/a/x.txt', 200], ['alice-a', '/c/x.txt', 200]);
my $d3 = json();
is_deeply([map { $_->[2] } @{ rules_of($d3) }], [4, 2, 1, 1, 2, 0, 1],
          'the kept counts go on (alice 4), the new ones count from 0')
  or diag(JSON::PP->new->pretty->encode($d3->{rules}));

# ---- restart (SIGHUP) with the same configuration ---------------------------------
past($g);
restart('restart', $g);
my $d4 = json();
is_deeply([map { [@$_[0, 2, 3, 4]] } @{ rules_of($d4) }],
          [map { [@$_[0, 2, 3, 4]] } @{ rules_of($d3) }],
          'httpd -k restart, nothing changed: every rule keeps its counts and since')
  or diag(JSON::PP->new->pretty->encode($d4->{rules}));

# ---- stop and start ---------------------------------------------------------------
$s->stop;
$s->start;
my $d5 = json();
ok($d5->{started} && $d5->{restarted} eq $d5->{started}, 'a fresh start: restarted = started');
is_deeply([map { [@$_[0, 2, 3, 5]] } @{ rules_of($d5) }],
          [map { [$_->[0], 0, 0, 'never'] } @{ rules_of($d3) }],
          'stop and start: every rule at 0, never admitted')
  or diag(JSON::PP->new->pretty->encode($d5->{rules}));
is_deeply([$d5->{decisions}, $d5->{clients}], [[], []],
          'stop and start: no decision, no seen client')
  or diag(JSON::PP->new->pretty->encode([$d5->{decisions}, $d5->{clients}]));
$s->stop;

done_testing();
