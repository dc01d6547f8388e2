# The status page (SetHandler mtls-authz-status) and what it counts:
#   1. counts are shared by the child processes: a load of known size
#      served by two children of the event MPM adds up exactly;
#   2. every outcome and reason of a decision lands in its scope, the
#      rules' admissions and denials, the recently seen clients (their
#      fingerprint, notAfter and admitting rule as openssl and the
#      configuration say), the page's three formats (HTML, JSON,
#      Prometheus, the last checked by promtool) and its protection;
#   3. the expiry watch: a certificate within MTLSAuthzExpiryWarning days
#      is warned about once per child, only when admitted, and never with
#      the warning off or out of range.
# Each part runs a server of its own (t/lib/OwnHttpd.pm), so that the
# counts start at zero and the test knows every request they include.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use JSON::PP ();
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(slurp);
use OwnHttpd qw(or_loopback);
use StatusPage qw(conn_get raw_request iso epoch_of cert_not_after cert_fp_hex fetch_json
  prom_parse promtool_check wait_until $ISO_RE $HEX64_RE);

my $ALICE = 'CN=alice,O=Acme Inc.,C=US';
my $BOB   = 'CN=bob,O=Acme Inc.,C=US';
my $DAVE  = 'CN=dave,OU=Payments,O=Acme Inc.,C=US';
my $ERIN  = 'CN=erin,O=Acme Inc.,C=US';
my $CA_A_DN = 'CN=Test CA A,O=MTLS Test';

# The decisions of a JSON document as "scope|outcome|reason" => count.
sub decisions_of {
    my ($doc) = @_;
    return { map { ("$_->{scope}|$_->{outcome}|$_->{reason}" => $_->{count}) }
             @{ $doc->{decisions} // [] } };
}

sub rule_entry {
    my ($doc, $rule) = @_;
    my @e = grep { $_->{rule} eq $rule } @{ $doc->{rules} // [] };
    return @e == 1 ? $e[0] : undef;
}

sub client_entry {
    my ($doc, $fp) = @_;
    my @e = grep { ($_->{cert_sha256} // '') eq $fp } @{ $doc->{clients} // [] };
    return @e == 1 ? $e[0] : undef;
}

sub dump_json { JSON::PP->new->canonical->pretty->encode($_[0]) }

# ============================================================================
# 1. Two child processes, one set of counts
# ============================================================================
{
    # A document missing a field fails the assertions; it must not end
    # the test in the middle of a diagnostic.
    no warnings 'uninitialized';
    my $s = OwnHttpd->new(__FILE__, 'status-children');
    my ($dir, $port) = ($s->dir, $s->port);
    $s->write_doc('api/x.txt', "api\n");
    $s->add_header;
    # Two children, each with a listening socket of its own
    # (ListenCoresBucketsRatio: SO_REUSEPORT, one bucket per core on a
    # machine of two or more): the kernel spreads the connections over
    # the two by their source port, whatever the children are doing.
    $s->add('StartServers 2', 'ServerLimit 2', 'ThreadLimit 2', 'ThreadsPerChild 2',
            'MaxRequestWorkers 4', 'MinSpareThreads 1', 'MaxSpareThreads 4',
            'ListenCoresBucketsRatio 1',
            'LogFormat "%P %>s %U %{SSL_CLIENT_S_DN_CN}x" pidlog',
            qq{CustomLog "$dir/access_log" pidlog});
    $s->add_vhost;
    $s->add('    <Location /api/>', '        MTLSAuthz On');
    my $r_alice = $s->rule_at($s->add(qq{        MTLSAllow "subject=$ALICE" issuer=sha256:}
                                      . $s->fp('FP_CA_A')));
    my $r_dave = $s->rule_at($s->add(qq{        MTLSAllowSubject "$DAVE"}));
    my $r_bob = $s->rule_at($s->add(qq{        MTLSDeny "subject=$BOB"}));
    $s->add('    </Location>', '    <Location /mtls-status>',
            '        SetHandler mtls-authz-status', '        Require ip 127.0.0.1',
            '    </Location>', '</VirtualHost>');
    $s->start;
    my $scope = "localhost:$port <Location /api/>";

    my %got;
    for (1 .. 20) {
        for my $c (qw(alice-a bob-a dave-a)) {
            my ($r) = conn_get($s->pki(''), $port, ['/api/x.txt'], cert => $c);
            $got{"$c $r->[0]"}++;
        }
    }
    is_deeply(\%got, {'alice-a 200' => 20, 'bob-a 403' => 20, 'dave-a 200' => 20},
              '60 requests, each on its own connection: alice and dave 200, bob 403');

    # The access log line of a request is written when it ends.
    my @api;
    wait_until(10, sub {
        @api = grep { m{^\d+ \d{3} /api/x\.txt } } split /\n/, slurp("$dir/access_log");
        @api >= 60;
    });
    my %pids;
    $pids{(split / /)[0]}++ for @api;
    is(scalar @api, 60, 'the access log has the 60 requests');
    cmp_ok(scalar keys %pids, '>=', 2, 'at least two child processes served them')
      or diag('requests per pid: ' . join(', ', map { "$_: $pids{$_}" } sort keys %pids));

    # The clients' counts are brought up to date when their connections
    # end: wait (bounded) until they are, then compare everything.
    my $doc;
    wait_until(10, sub {
        ($doc) = fetch_json($s->pki(''), $port, '/mtls-status?json', 'alice-a');
        my $a = $doc && client_entry($doc, $s->fp('FP_CERT_ALICE_A'));
        $a && ($a->{requests} // 0) >= 20;
    });
    ok($doc, 'the status page answers ?json with JSON');
    $doc //= {};
    ref $doc->{$_} eq 'ARRAY' or $doc->{$_} = [] for qw(rules clients decisions);
    is_deeply(decisions_of($doc),
              {"$scope|admitted|rule" => 40, "$scope|denied|denied_by_rule" => 20},
              'decisions: 40 admitted and 20 denied by the deny rule, no other')
      or diag(dump_json($doc->{decisions}));
    my @rules = map { [$_->{rule}, $_->{kind}, $_->{admissions}, $_->{denials}] }
      @{ $doc->{rules} // [] };
    is_deeply(\@rules, [[$r_alice, 'allow', 20, 0], [$r_dave, 'allow', 20, 0],
                        [$r_bob, 'deny', 0, 20]],
              'rules in configuration order: alice admitted 20, dave 20, bob\'s deny rule '
              . 'refused 20')
      or diag(dump_json($doc->{rules}));
    my $a = client_entry($doc, $s->fp('FP_CERT_ALICE_A'));
    my $d = client_entry($doc, $s->fp('FP_CERT_DAVE_A'));
    is($a && $a->{requests}, 20, 'alice\'s 20 requests, from both children, in one entry');
    is($d && $d->{requests}, 20, 'dave\'s 20 requests, from both children, in one entry');
    is($a && $a->{rule}, $r_alice, 'alice: admitted by her rule');
    is($d && $d->{rule}, $r_dave, 'dave: admitted by his rule');
    ok(@{ $doc->{clients} } == 2 && !client_entry($doc, $s->fp('FP_CERT_BOB_A')),
       'two seen clients; bob, refused, is not one of them');

    # The Prometheus counters are the same numbers.
    my ($r) = conn_get($s->pki(''), $port, ['/mtls-status?prometheus'], cert => 'alice-a');
    my $p = prom_parse($r->[1]);
    my %adm = map { ($_->{labels}{rule} => $_->{value}) }
      grep { $_->{name} eq 'mtls_authz_rule_admissions_total' } @{ $p->{samples} };
    my %den = map { ($_->{labels}{rule} => $_->{value}) }
      grep { $_->{name} eq 'mtls_authz_rule_denials_total' } @{ $p->{samples} };
    my %dec = map { ("$_->{labels}{scope}|$_->{labels}{outcome}|$_->{labels}{reason}"
                     => $_->{value}) }
      grep { $_->{name} eq 'mtls_authz_decisions_total' } @{ $p->{samples} };
    is_deeply([\%adm, \%den, \%dec],
              [{$r_alice => 20, $r_dave => 20, $r_bob => 0},
               {$r_alice => 0, $r_dave => 0, $r_bob => 20},
               {"$scope|admitted|rule" => 40, "$scope|denied|denied_by_rule" => 20}],
              '?prometheus: the same admissions, denials and decisions')
      or diag($r->[1]);
    $s->stop;
}

# ============================================================================
# 2. Outcomes, reasons, scopes, clients and the page's formats
# ============================================================================
{
    no warnings 'uninitialized';
    my $s = OwnHttpd->new(__FILE__, 'status-decisions');
    my ($dir, $port) = ($s->dir, $s->port);
    my $pki = $s->pki('');
    $s->add_header;
    $s->add('StartServers 1', 'ServerLimit 1');
    # optional: a client without a certificate reaches the module
    $s->add_vhost(verify => 'optional');
    my %rule;    # name => file:line
    my @order;   # [name, kind, scope] in configuration order
    my $scope = sub { "localhost:$port <$_[0]>" };
    # A <Location $path> (or another section) with MTLSAuthz On and the
    # rules [name, kind, line] (and any plain lines).
    my $area = sub {
        my ($section, @lines) = @_;
        my ($type) = $section =~ /^(\w+)/;
        $s->add("    <$section>");
        for my $l (@lines) {
            if (ref $l) {
                my ($name, $kind, $text) = @$l;
                $rule{$name} = $s->rule_at($s->add("        $text"));
                push @order, [$name, $kind, $scope->($section)];
            }
            else { $s->add("        $l") }
        }
        $s->add("    </$type>");
    };
    $s->write_doc("$_/x.txt", "x\n") for qw(deny nomatch audit nocert other expired bare unused
                                            esc1 ka);
    $area->('Location /deny/', 'MTLSAuthz On', [deny_allow => 'allow', qq{MTLSAllowSubject "$ALICE"}],
            [deny_bob => 'deny', qq{MTLSDeny "subject=$BOB"}]);
    $area->('Location /nomatch/', 'MTLSAuthz On',
            [nomatch => 'allow', qq{MTLSAllowSubject "$ALICE"}]);
    $area->('Location /audit/', 'MTLSAuthz On', 'MTLSAuthzMode Audit',
            [audit => 'allow', qq{MTLSAllowSubject "$ALICE"}]);
    $area->('Location /nocert/', 'MTLSAuthz On',
            [nocert => 'allow', qq{MTLSAllowSubject "$ALICE"}]);
    $area->('Location /other/', or_loopback('Require mtls'),
            [other => 'allow', qq{MTLSAllowSubject "$ALICE"}]);
    $area->('Location /expired/', 'MTLSAuthz On',
            [expired => 'allow', qq{MTLSAllow "subject=$ALICE" not_after=2020-01-01}]);
    $area->('Location /bare/', 'Require mtls');
    $area->('Location /unused/', 'MTLSAuthz On',
            [unused => 'allow', 'MTLSAllowSubject "CN=nobody"']);
    $area->('LocationMatch ^/esc\d+/', 'MTLSAuthz On',
            [esc => 'allow', qq{MTLSAllowSubject "$ALICE"}]);
    $area->('Location /ka/', 'MTLSAuthz On', [ka_alice => 'allow', qq{MTLSAllowSubject "$ALICE"}],
            [ka_erin => 'allow', 'MTLSAllowSAN DNS:erin.example.com']);
    $area->('Location /status-mtls', 'SetHandler mtls-authz-status', 'MTLSAuthz On',
            [status => 'allow', qq{MTLSAllowSubject "$ALICE"}]);
    $s->add('    <Location /status>', '        SetHandler mtls-authz-status',
            '        Require ip 127.0.0.1', '    </Location>', '</VirtualHost>');
    $s->start;

    my @cases = (    # [certificate, path, status, what]
        ['alice-a', '/deny/x.txt', 200, 'alice at /deny/: admitted'],
        ['bob-a', '/deny/x.txt', 403, 'bob at /deny/: denied by the deny rule'],
        ['dave-a', '/nomatch/x.txt', 403, 'dave at /nomatch/: no rule matched'],
        ['bob-a', '/audit/x.txt', 200, 'bob at /audit/: let through by Audit mode'],
        [undef, '/nocert/x.txt', 403, 'no certificate at /nocert/: denied'],
        ['bob-a', '/other/x.txt', 200, 'bob at /other/: Require ip admits him'],
        ['alice-a', '/expired/x.txt', 403, 'alice at /expired/: her rule has expired'],
        ['alice-a', '/bare/x.txt', 403, 'alice at /bare/: Require mtls with no rule'],
        ['bob-a', '/status-mtls?json', 403, 'bob at the protected status page: refused'],
        ['alice-a', '/esc1/x.txt', 200, 'alice at /esc1/ (LocationMatch): admitted'],
    );
    for my $c (@cases) {
        my ($r) = conn_get($pki, $port, [$c->[1]], cert => $c->[0]);
        is($r->[0], $c->[2], "$c->[3]: $c->[2]");
    }
    # alice: three requests on one connection, then one more; erin
    # (expiring-a): two on one connection.
    my @ka = conn_get($pki, $port, [('/ka/x.txt') x 3], cert => 'alice-a');
    is(join(' ', map { $_->[0] } @ka), '200 200 200', 'alice: 3 requests on one connection');
    my @ke = conn_get($pki, $port, [('/ka/x.txt') x 2], cert => 'expiring-a');
    is(join(' ', map { $_->[0] } @ke), '200 200', 'erin: 2 requests on one connection');
    my ($k1) = conn_get($pki, $port, ['/ka/x.txt'], cert => 'alice-a');
    is($k1->[0], 200, 'alice: one more request on a new connection');

    # The page itself (Require ip, no certificate): no decision of its
    # own. Wait (bounded) until the last connections' ends are counted.
    my ($doc, $st, $head, $body, $why);
    wait_until(10, sub {
        ($doc, $st, $head, $body, $why) = fetch_json($pki, $port, '/status?json', undef);
        my $a = $doc && client_entry($doc, $s->fp('FP_CERT_ALICE_A'));
        my $e = $doc && client_entry($doc, $s->fp('FP_CERT_EXPIRING_A'));
        $a && $e && ($a->{requests} // 0) >= 6 && ($e->{requests} // 0) >= 2;
    });
    is($st, 200, '?json: 200 without a certificate from 127.0.0.1 (Require ip)');
    like(OwnHttpd::header($head, 'Content-Type') // '', qr{^application/json\b}i,
         '?json: Content-Type application/json');
    ok($doc, 'JSON::PP decodes it') or diag("$why\n$body");
    $doc //= {};

    # --- the schema ---
    is_deeply([sort keys %$doc],
              [sort qw(version now started restarted seen_cache rules clients decisions)],
              'the document has exactly the keys of the schema');
    # (missing lists: empty, so that the checks below fail, not die)
    ref $doc->{$_} eq 'ARRAY' or $doc->{$_} = [] for qw(rules clients decisions);
    my ($version) = slurp($s->top . '/mtls_version.h') =~ /MTLS_AUTHZ_VERSION\s+"([^"]+)"/;
    ok(defined $version && $doc->{version} eq $version,
       'version: the module\'s (mtls_version.h)') or diag("page: $doc->{version}");
    like($doc->{$_} // '', $ISO_RE, "$_ is YYYY-MM-DDTHH:MM:SSZ") for qw(now started restarted);
    ok(defined $doc->{started} && ($doc->{restarted} // '') eq $doc->{started},
       'restarted = started: no restart yet');
    is($doc->{seen_cache}, 'shmcb', 'seen_cache: shmcb (the default, mod_socache_shmcb loaded)');
    my @bad = map { @{ $doc->{$_} } ? () : "no $_" } qw(rules clients decisions);
    for my $r (@{ $doc->{rules} }) {
        push @bad, "rule keys: @{[sort keys %$r]}" unless join(' ', sort keys %$r) eq
          'admissions denials kind last_admission rule scope since';
        push @bad, "rule $r->{rule}: since '$r->{since}'" unless ($r->{since} // '') =~ $ISO_RE;
        push @bad, "rule $r->{rule}: last_admission '$r->{last_admission}'"
          if defined $r->{last_admission} && $r->{last_admission} !~ $ISO_RE;
        push @bad, "rule $r->{rule}: counts are not numbers" unless
          JSON::PP->new->canonical->encode([$r->{admissions}, $r->{denials}]) =~ /^\[\d+,\d+\]$/;
    }
    for my $c (@{ $doc->{clients} }) {
        push @bad, "client keys: @{[sort keys %$c]}" unless join(' ', sort keys %$c) eq
          'cert_sha256 days_left issuer issuer_sha256 last_seen not_after requests rule subject';
        push @bad, "client $c->{subject}: hex" unless ($c->{cert_sha256} // '') =~ $HEX64_RE
          && ($c->{issuer_sha256} // '') =~ $HEX64_RE;
        push @bad, "client $c->{subject}: times" unless ($c->{not_after} // '') =~ $ISO_RE
          && ($c->{last_seen} // '') =~ $ISO_RE;
    }
    for my $d (@{ $doc->{decisions} }) {
        push @bad, "decision keys: @{[sort keys %$d]}"
          unless join(' ', sort keys %$d) eq 'count outcome reason scope';
        push @bad, "decision with count $d->{count}" unless ($d->{count} // 0) =~ /^[1-9]\d*$/;
    }
    ok(!@bad, 'rules, clients and decisions have the schema\'s fields and formats')
      or diag(join "\n", @bad);

    # --- decisions ---
    my %want_dec = (
        $scope->('Location /deny/') . '|admitted|rule'                => 1,
        $scope->('Location /deny/') . '|denied|denied_by_rule'        => 1,
        $scope->('Location /nomatch/') . '|denied|no_rule_matched'    => 1,
        $scope->('Location /audit/') . '|audited|no_rule_matched'     => 1,
        $scope->('Location /nocert/') . '|denied|no_certificate'      => 1,
        $scope->('Location /other/') . '|other|no_rule_matched'       => 1,
        $scope->('Location /expired/') . '|denied|rule_expired'       => 1,
        '-|denied|no_rule_in_scope'                                   => 1,
        $scope->('Location /status-mtls') . '|denied|no_rule_matched' => 1,
        $scope->('LocationMatch ^/esc\d+/') . '|admitted|rule'        => 1,
        $scope->('Location /ka/') . '|admitted|rule'                  => 6,
    );
    is_deeply(decisions_of($doc), \%want_dec,
              'decisions per scope: each case once with its outcome and reason, alice and '
              . 'erin 6 times at /ka/, nothing for the page under Require ip')
      or diag(dump_json($doc->{decisions}));

    # --- rules ---
    my %want_counts = (deny_allow => [1, 0], deny_bob => [0, 1], expired => [0, 1],
                       esc => [1, 0], ka_alice => [4, 0], ka_erin => [2, 0]);
    my @want_rules = map {
        my ($n, $kind, $sc) = @$_;
        [$rule{$n}, $kind, $sc, @{ $want_counts{$n} // [0, 0] }]
    } @order;
    my @got_rules = map { [@$_{qw(rule kind scope admissions denials)}] } @{ $doc->{rules} };
    is_deeply(\@got_rules, \@want_rules,
              'rules: every rule in configuration order, its kind and scope; admissions '
              . 'and denials (the deny rule and the expired rule refused once each)')
      or diag(dump_json($doc->{rules}));
    my @la = map { $_->{rule} } grep { defined $_->{last_admission} } @{ $doc->{rules} };
    is_deeply([sort @la], [sort map { $rule{$_} } qw(deny_allow esc ka_alice ka_erin)],
              'last_admission is set exactly for the rules that admitted someone');
    my @since = grep { ($_->{since} // '') ne ($doc->{started} // '') } @{ $doc->{rules} };
    ok(@{ $doc->{rules} } && !@since, 'every rule counts since the start')
      or diag(dump_json(\@since));

    # --- clients ---
    my @seen = map { $_->{cert_sha256} } @{ $doc->{clients} };
    is_deeply(\@seen, [$s->fp('FP_CERT_EXPIRING_A'), $s->fp('FP_CERT_ALICE_A')],
              'clients: erin (expires in days) then alice (in years); the refused and '
              . 'audited bob and dave are not listed')
      or diag(dump_json($doc->{clients}));
    my $now = epoch_of($doc->{now}) // 0;
    # alice was admitted on four connections: /deny/, /esc1/, /ka/ (3
    # requests), /ka/ again; the last names the rule.
    for my $c (['alice-a', 'FP_CERT_ALICE_A', $ALICE, 'ka_alice', 6],
               ['expiring-a', 'FP_CERT_EXPIRING_A', $ERIN, 'ka_erin', 2]) {
        my ($name, $fpname, $subject, $rname, $n) = @$c;
        my $e = client_entry($doc, $s->fp($fpname)) // {};
        my $crt = $s->pki("$name.crt");
        my $na = cert_not_after($crt);
        is_deeply([@$e{qw(subject issuer issuer_sha256 cert_sha256 not_after rule requests)}],
                  [$subject, $CA_A_DN, $s->fp('FP_CA_A'), cert_fp_hex($crt), iso($na),
                   $rule{$rname}, $n],
                  "$name: subject, issuer, issuer fingerprint, openssl's fingerprint and "
                  . "notAfter, the admitting rule, $n requests")
          or diag(dump_json($e));
        is($e->{days_left}, $now ? int(($na - $now) / 86400) : 'now missing',
           "$name: days_left = whole days from now to notAfter");
        my $ls = epoch_of($e->{last_seen});
        ok(defined $ls && $ls >= (epoch_of($doc->{started}) // 9e9) && $ls <= $now,
           "$name: last_seen between the start and now")
          or diag(dump_json([$e->{last_seen}, $doc->{started}, $doc->{now}]));
    }

    # --- Prometheus ---
    my ($pr) = conn_get($pki, $port, ['/status?prometheus']);
    is($pr->[0], 200, '?prometheus: 200');
    is(OwnHttpd::header($pr->[2], 'Content-Type'), 'text/plain; version=0.0.4; charset=utf-8',
       '?prometheus: the text format\'s Content-Type');
    my ($prc, $pout) = promtool_check($pr->[1], $dir);
    is($prc, 0, 'promtool check metrics: exit 0') or diag($pout, "\n", $pr->[1]);
    is($pout, '', 'promtool check metrics: no complaint') or diag($pout);
    my $p = prom_parse($pr->[1]);
    ok(!@{ $p->{errors} }, 'every sample line parses') or diag(join "\n", @{ $p->{errors} });
    my %families = (
        mtls_authz_decisions_total                         => 'counter',
        mtls_authz_rule_admissions_total                   => 'counter',
        mtls_authz_rule_denials_total                      => 'counter',
        mtls_authz_rule_last_admission_timestamp_seconds   => 'gauge',
        mtls_authz_client_cert_not_after_timestamp_seconds => 'gauge',
        mtls_authz_start_time_seconds                      => 'gauge',
    );
    for my $f (sort keys %families) {
        ok(defined $p->{help}{$f} && length $p->{help}{$f}, "$f has a HELP line");
        is($p->{type}{$f}, $families{$f}, "$f: TYPE $families{$f}");
    }
    my %samples;    # name => { "k=v,..." => value }
    for my $x (@{ $p->{samples} }) {
        my $k = join ',', map { "$_=$x->{labels}{$_}" } sort keys %{ $x->{labels} };
        $samples{$x->{name}}{$k} = $x->{value};
    }
    my %w;
    for my $d (@{ $doc->{decisions} }) {
        $w{mtls_authz_decisions_total}{"outcome=$d->{outcome},reason=$d->{reason},"
                                       . "scope=$d->{scope}"} = $d->{count};
    }
    for my $r (@{ $doc->{rules} }) {
        my $k = "rule=$r->{rule},scope=$r->{scope}";
        $w{mtls_authz_rule_admissions_total}{$k} = $r->{admissions};
        $w{mtls_authz_rule_denials_total}{$k} = $r->{denials};
        $w{mtls_authz_rule_last_admission_timestamp_seconds}{$k} = epoch_of($r->{last_admission})
          if defined $r->{last_admission};
    }
    for my $c (@{ $doc->{clients} }) {
        $w{mtls_authz_client_cert_not_after_timestamp_seconds}{
            "cert_sha256=$c->{cert_sha256},issuer_sha256=$c->{issuer_sha256},"
            . "subject=$c->{subject}"} = epoch_of($c->{not_after});
    }
    $w{mtls_authz_start_time_seconds}{''} = epoch_of($doc->{started});
    # Values as numbers (1.7e+09 and 1700000000 are one value); the JSON
    # was fetched first: only the page's timestamps could differ, and
    # nothing was requested in between.
    my %g = map { my $n = $_; ($n => { map { ($_ => 0 + $samples{$n}{$_}) }
                                       keys %{ $samples{$n} } }) } keys %samples;
    is_deeply(\%g, \%w, '?prometheus: exactly the families above, with the JSON\'s rules, '
              . 'clients, decisions and start time as labels and values')
      or diag($pr->[1]);
    like($pr->[1], qr/scope="localhost:\d+ <LocationMatch \^\/esc\\\\d\+\/>"/,
         'the backslash in a scope label is escaped (\\\\)');

    # --- HTML ---
    my ($hr) = conn_get($pki, $port, ['/status']);
    is($hr->[0], 200, 'no query: 200');
    is(OwnHttpd::header($hr->[2], 'Content-Type'), 'text/html; charset=utf-8',
       'no query: text/html; charset=utf-8');
    my ($hr2) = conn_get($pki, $port, ['/status?html']);
    is(OwnHttpd::header($hr2->[2], 'Content-Type'), 'text/html; charset=utf-8',
       '?html: text/html; charset=utf-8');
    my $html = $hr->[1];
    for my $t (qw(rules clients decisions)) {
        like($html, qr/<table\b[^>]*\bid\s*=\s*["']?$t\b/i, "HTML: a table with id=\"$t\"");
    }
    unlike($html, qr/<script\b|\bon(?:load|click|error)\s*=/i, 'HTML: no JavaScript');
    my @rows = $html =~ m{(<tr\b.*?</tr>)}gis;
    my ($unused_row) = grep { index($_, $rule{unused}) >= 0 } @rows;
    like($unused_row // '', qr/never used since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/,
         'HTML: the unused rule\'s row says "never used since <T>"')
      or diag($html);
    my ($used_row) = grep { index($_, $rule{ka_alice}) >= 0 } @rows;
    ok(defined $used_row && $used_row !~ /never used/,
       'HTML: a used rule\'s row has a row and does not say "never used"')
      or diag($used_row // '(no row)');
    like($html, qr/\Q$ERIN\E/, 'HTML: the seen client erin is listed');

    # --- methods and protection ---
    my ($hst, $hhead, $hbody) = raw_request($pki, $port, 'HEAD', '/status?json');
    is($hst, 200, 'HEAD: 200');
    is($hbody, '', 'HEAD: no body');
    my ($pst) = raw_request($pki, $port, 'POST', '/status?json', body => 'x');
    is($pst, 405, 'POST: 405');
    my ($dst) = raw_request($pki, $port, 'DELETE', '/status');
    is($dst, 405, 'DELETE: 405');
    my ($ad, $ast) = fetch_json($pki, $port, '/status-mtls?json', 'alice-a');
    is($ast, 200, 'the page under MTLSAuthz On: alice, listed, gets it');
    ok($ad && grep({ $_->{rule} eq $rule{status} } @{ $ad->{rules} // [] }),
       'and it is the JSON document (it lists the rule that protects it)');
    my ($bst, $bhead, $bbody) = raw_request($pki, $port, 'GET', '/status-mtls?json',
                                            cert => 'bob-a');
    is($bst, 403, 'bob, not listed, is refused the page again');
    unlike($bbody, qr/"decisions"|mtls_authz_/, 'and the refusal holds no counts');
    $s->stop;
}

# ============================================================================
# 3. The expiry watch (one child process)
# ============================================================================
my $WARN_RE = qr/client certificate expires at/;

# A server of one child with the vhost lines @vhost, the main server's
# lines @main, and /w/ admitting erin and alice, /r/ alice only; returns
# (server, file:line of erin's rule at /w/).
sub expiry_server {
    my ($name, $main, $vhost) = @_;
    my $s = OwnHttpd->new(__FILE__, $name);
    $s->write_doc("$_/x.txt", "x\n") for qw(w r);
    $s->add_header(loglevel => 'info');
    $s->add('StartServers 1', 'ServerLimit 1', @$main);
    $s->add_vhost;
    $s->add(map { "    $_" } @$vhost);
    $s->add('    <Location /w/>', '        MTLSAuthz On');
    my $r_w = $s->rule_at($s->add('        MTLSAllowSAN DNS:erin.example.com'));
    $s->add(qq{        MTLSAllowSubject "$ALICE"}, '    </Location>',
            '    <Location /r/>', '        MTLSAuthz On', qq{        MTLSAllowSubject "$ALICE"},
            '    </Location>', '</VirtualHost>');
    return ($s, $r_w);
}

sub statuses { join ' ', map { $_->[0] } @_ }

{
    my ($s, $r_w) = expiry_server('status-expiry', [], []);
    my $pki = $s->pki('');
    $s->start;
    my $mark = $s->log_mark;
    is(statuses(conn_get($pki, $s->port, ['/r/x.txt', '/r/x.txt'], cert => 'expiring-a')),
       '403 403', 'erin at /r/ (not listed): 403 403');
    for (1 .. 2) {
        is(statuses(conn_get($pki, $s->port, ['/w/x.txt', '/w/x.txt'], cert => 'alice-a')),
           '200 200', "alice at /w/ (connection $_): 200 200");
    }
    my $log = $s->log_since($mark);
    unlike($log, $WARN_RE, 'no expiry warning: erin refused, alice (10 years) admitted')
      or diag($log);
    # The same child warns about erin where she is admitted under the
    # default of 30 days: once for three connections.
    $mark = $s->log_mark;
    for my $paths (['/w/x.txt', '/w/x.txt'], ['/w/x.txt'], ['/w/x.txt']) {
        is(statuses(conn_get($pki, $s->port, $paths, cert => 'expiring-a')),
           join(' ', ('200') x @$paths),
           'erin at /w/ (default 30 days): ' . @$paths . ' request(s) admitted');
    }
    $log = HttpdRun::log_wait($s->dir . '/error_log', $mark, $WARN_RE, 10);
    my @w = grep { $_ =~ $WARN_RE } split /\n/, $log;
    is(scalar @w, 1, 'exactly one expiry warning for erin\'s three connections and four '
       . 'requests in one child') or diag($log);
    my $na = iso(cert_not_after($s->pki('expiring-a.crt')));
    my $fpa = $s->fp('FP_CA_A');
    like($w[0] // '', qr/\[mtls_authz:warn\] .*client certificate expires at \Q$na\E \(in 9 days\): subject "\Q$ERIN\E", issuer "\Q$CA_A_DN\E" sha256:$fpa, admitted by rule \Q$r_w\E$/,
         'the warning: level warn, openssl\'s notAfter, 9 whole days, subject, issuer DN and '
         . 'fingerprint, the admitting rule');
    my $all = $s->error_log;
    is(scalar(grep { $_ =~ $WARN_RE } split /\n/, $all), 1,
       'one expiry warning in the whole error log');
    unlike($all, qr/expires at.*subject "\Q$ALICE\E"/, 'never one for alice');
    $s->stop;
}

# MTLSAuthzExpiryWarning 0 (off) and 5 (erin has 9 days): no warning; the
# directive is the main server's (one watch per child), so httpd refuses
# it in a <VirtualHost>.
for my $days (0, 5) {
    my $line = "MTLSAuthzExpiryWarning $days";
    my ($s) = expiry_server("status-expiry-main-$days", [$line], []);
    $s->save;
    # Not $s->start, which ends the file when httpd refuses to start.
    my ($pid, $why) = HttpdRun::start_server($s->{httpd}, $s->file, $s->port, 20);
    ok($pid, "$line in the main server: httpd starts")
      or diag($why, "\n", slurp($s->dir . '/start.out'));
    next unless $pid;
    $s->{pid} = $pid;
    my $mark = $s->log_mark;
    is(statuses(conn_get($s->pki(''), $s->port, ['/w/x.txt', '/w/x.txt'], cert => 'expiring-a')),
       '200 200', "$line: erin admitted");
    my $log = $s->log_since($mark);
    unlike($log, $WARN_RE, "$line: no expiry warning") or diag($log);
    $s->stop;
}
{
    my ($s) = expiry_server('status-expiry-vhost', [], ['MTLSAuthzExpiryWarning 5']);
    $s->save;
    my ($pid, $why) = try_start($s);
    ok(!$pid, 'MTLSAuthzExpiryWarning in a <VirtualHost>: httpd refuses to start');
    like($why, qr/MTLSAuthzExpiryWarning cannot occur within <VirtualHost> section/,
         'and names the directive and the section');
    $s->stop if $pid;
}

# ============================================================================
# 4. Scope labels, subrequests, escaping
# ============================================================================
{
    no warnings 'uninitialized';
    my $s = OwnHttpd->new(__FILE__, 'status-scopes');
    my ($dir, $port, $pki) = ($s->dir, $s->port, $s->pki(''));
    $s->write_doc('x.txt', "x\n");
    $s->write_doc("$_/index.html", "$_\n") for qw(dup sub);
    $s->write_doc('dup/x', "x\n");
    $s->add_header;
    $s->add('StartServers 1', 'ServerLimit 1', 'DirectoryIndex index.html');
    $s->add_vhost;
    # host level: inject-comma, whose subject holds backslashes
    $s->add('    MTLSAuthz On');
    my $r_host = $s->rule_at($s->add('    MTLSAllowSubject "CN=alice\,O=Acme Inc.\,C=US"'));
    # two sections of one label
    my $d1 = $s->add('    <Location /dup/>');
    my $r_d1 = $s->rule_at($s->add(qq{        MTLSAllowSubject "$ALICE"}));
    $s->add('    </Location>');
    my $d2 = $s->add('    <Location /dup/>');
    my $r_d2 = $s->rule_at($s->add(qq{        MTLSAllowSubject "$BOB"}));
    $s->add('    </Location>');
    # a directory: mod_dir's subrequest and internal redirect to index.html
    $s->add('    <Location /sub/>');
    my $r_sub = $s->rule_at($s->add(qq{        MTLSAllowSubject "$ALICE"}));
    $s->add('    </Location>', '    <Location /status>', '        SetHandler mtls-authz-status',
            '        MTLSAuthz Off', '        Require ip 127.0.0.1', '    </Location>',
            '</VirtualHost>');
    $s->start;
    my @r = (conn_get($pki, $port, ['/x.txt'], cert => 'inject-comma'),
             conn_get($pki, $port, ['/dup/x'], cert => 'bob-a'),
             conn_get($pki, $port, ['/sub/'], cert => 'alice-a'));
    is(statuses(@r[0, 2]), '200 200', 'inject-comma at / and alice at /sub/ (a directory): 200');
    my ($doc) = fetch_json($pki, $port, '/status?json', 'alice-a');
    wait_until(10, sub {
        ($doc) = fetch_json($pki, $port, '/status?json', 'alice-a');
        $doc && @{ $doc->{clients} // [] } >= 2;
    });
    $doc //= {};
    my $host = "localhost:$port";
    my $file = $s->file;
    my %sc = map { ($_->{rule} => $_->{scope}) } @{ $doc->{rules} // [] };
    is_deeply([@sc{$r_host, $r_d1, $r_d2, $r_sub}],
              [$host, "$host <Location /dup/> ($file:$d1)", "$host <Location /dup/> ($file:$d2)",
               "$host <Location /sub/>"],
              'scopes: the host level is host:port; two sections of one label get their '
              . 'file:line') or diag(dump_json($doc->{rules}));
    my $dec = decisions_of($doc);
    is($dec->{"$host <Location /sub/>|admitted|rule"}, 1,
       'GET /sub/: one decision, not one more for mod_dir\'s subrequest or redirect')
      or diag(dump_json($doc->{decisions}));
    my %adm = map { ($_->{rule} => $_->{admissions}) } @{ $doc->{rules} // [] };
    is($adm{$r_sub}, 1, 'GET /sub/: the rule admitted one request');
    is($dec->{"$host|admitted|rule"}, 1, 'inject-comma at /: counted under the host\'s scope');
    is($r[1][0], 200, 'bob at /dup/ (the second section\'s rule): 200');
    is($dec->{"$host <Location /dup/> ($file:$d2)|admitted|rule"}, 1,
       'bob at /dup/: counted under the second section, the innermost');
    my ($ic) = grep { $_->{cert_sha256} eq $s->fp('FP_CERT_INJECT_COMMA') }
      @{ $doc->{clients} // [] };
    is($ic && $ic->{subject}, 'CN=alice\,O=Acme Inc.\,C=US',
       'JSON: the subject with its backslashes, as RFC 4514 has it');
    my ($pr) = conn_get($pki, $port, ['/status?prometheus'], cert => 'alice-a');
    like($pr->[1], qr/subject="CN=alice\\\\,O=Acme Inc\.\\\\,C=US"/,
         'Prometheus: the backslashes of the subject label escaped as \\\\');
    my $p = prom_parse($pr->[1]);
    my ($g) = grep { $_->{name} eq 'mtls_authz_client_cert_not_after_timestamp_seconds'
                     && $_->{labels}{cert_sha256} eq $s->fp('FP_CERT_INJECT_COMMA') }
      @{ $p->{samples} };
    is($g && $g->{labels}{subject}, 'CN=alice\,O=Acme Inc.\,C=US',
       'Prometheus: unescaped, the label is the subject');
    my ($prc, $pout) = promtool_check($pr->[1], $dir);
    ok($prc == 0 && $pout eq '', 'promtool check metrics: exit 0, no complaint')
      or diag("exit $prc: $pout");
    $s->stop;
}

# ============================================================================
# 5. MTLSAuthzSeenCache
# ============================================================================
# A server whose main server has @main, alice admitted at /a/; $load:
# LoadModule lines instead of the base configuration's.
sub seen_server {
    my ($name, $main, $vhost, $load) = @_;
    my $s = OwnHttpd->new(__FILE__, $name);
    $s->write_doc('a/x.txt', "x\n");
    if ($load) {
        $s->add(HttpdRun::head_lines(%$s, docroot => $s->dir . '/docs', loglevel => 'info',
                                     load => $load));
    }
    else { $s->add_header(loglevel => 'info') }
    $s->add('StartServers 1', 'ServerLimit 1', @$main);
    $s->add_vhost;
    $s->add(map { "    $_" } @$vhost);
    $s->add('    <Location /a/>', '        MTLSAuthz On', qq{        MTLSAllowSubject "$ALICE"},
            '    </Location>', '    <Location /status>', '        SetHandler mtls-authz-status',
            '        Require ip 127.0.0.1', '    </Location>', '</VirtualHost>');
    $s->save;
    return $s;
}

# Starts it: (pid or undef, what httpd said when it did not start).
sub try_start {
    my ($s) = @_;
    my ($pid, $why) = HttpdRun::start_server($s->{httpd}, $s->file, $s->port, 20);
    $s->{pid} = $pid if $pid;
    return ($pid, join "\n", grep { defined } $why, slurp($s->dir . '/start.out'),
            $s->error_log);
}

{
    no warnings 'uninitialized';
    my %at = HttpdRun::locate(__FILE__);
    my @no_shmcb = grep { !/\bsocache_shmcb_module\b/ } grep { /\S/ } split /\n/,
      slurp($at{base});
    for my $case (['status-seen-none', ['MTLSAuthzSeenCache none'], undef,
                   'MTLSAuthzSeenCache none'],
                  ['status-seen-noshmcb', [], \@no_shmcb,
                   'no MTLSAuthzSeenCache, mod_socache_shmcb not loaded'],
                  ['status-seen-path', [qq{MTLSAuthzSeenCache "shmcb:} . 'SEEN(100000)"'], undef,
                   'MTLSAuthzSeenCache shmcb:<file>(<size>)']) {
        my ($name, $main, $load, $what) = @$case;
        my $s = seen_server($name, $main, [], $load);
        if ($name eq 'status-seen-path') {
            my $f = $s->dir . '/seen';
            s/SEEN/$f/ for @{ $s->{lines} };
            $s->save;
        }
        my ($pid, $why) = try_start($s);
        ok($pid, "$what: httpd starts") or diag($why);
        next unless $pid;
        my ($r) = conn_get($s->pki(''), $s->port, ['/a/x.txt'], cert => 'alice-a');
        is($r->[0], 200, "$what: alice admitted");
        my $doc;
        wait_until(($name eq 'status-seen-path' ? 10 : 2), sub {
            ($doc) = fetch_json($s->pki(''), $s->port, '/status?json', 'alice-a');
            $doc && @{ $doc->{clients} // [] };
        });
        if ($name eq 'status-seen-path') {
            is($doc && $doc->{seen_cache}, 'shmcb', "$what: seen_cache shmcb");
            is($doc && scalar @{ $doc->{clients} // [] }, 1, "$what: alice is listed");
        }
        else {
            ok($doc && exists $doc->{seen_cache} && !defined $doc->{seen_cache},
               "$what: seen_cache is null") or diag(dump_json($doc));
            is_deeply($doc && $doc->{clients}, [], "$what: no client listed");
            my ($h) = conn_get($s->pki(''), $s->port, ['/status'], cert => 'alice-a');
            unlike($h->[1], qr/\Q$ALICE\E/, "$what: the HTML page lists no client");
        }
        $s->stop;
    }
    # Refused: a provider that is not loaded; the directive in a
    # <VirtualHost> (main server only).
    my $s = seen_server('status-seen-nox', ['MTLSAuthzSeenCache nosuch'], []);
    my ($pid, $why) = try_start($s);
    ok(!$pid, 'MTLSAuthzSeenCache nosuch: httpd refuses to start');
    like($why, qr/MTLSAuthzSeenCache: no socache provider 'nosuch' \(load mod_socache_nosuch\)/,
         'and says which module to load') or diag($why);
    $s->stop if $pid;
    $s = seen_server('status-seen-vhost', [], ['MTLSAuthzSeenCache none']);
    ($pid, $why) = try_start($s);
    ok(!$pid, 'MTLSAuthzSeenCache in a <VirtualHost>: httpd refuses to start (main server '
       . 'only)') or diag($why);
    like($why, qr/MTLSAuthzSeenCache/, 'and names the directive');
    $s->stop if $pid;
}

done_testing();
