# The status page and its counters against what an attacker, or an
# unlucky configuration, would try:
#   - an .htaccess file that sets the handler gets a 403, never the page;
#   - a site file that turns the seen cache off after a default turned it
#     on (MTLSAuthzSeenCache shmcb, then none) crashes nothing;
#   - a request that Require mtls refused counts as that refusal, not as
#     the admission of its ErrorDocument;
#   - "Require not mtls" refusals count with the reason negated;
#   - two rules of one directive (MTLSAllowSubject "a" "b") have two
#     names, so that no two Prometheus series are the same.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(slurp $CRASH);
use OwnHttpd ();
use StatusPage qw(conn_get fetch_json prom_parse promtool_check);

my $ALICE = 'CN=alice,O=Acme Inc.,C=US';
my $BOB   = 'CN=bob,O=Acme Inc.,C=US';

my $s = OwnHttpd->new(__FILE__, 'status-attack');
my ($dir, $port) = ($s->dir, $s->port);
my $pki = $s->pki('');
$s->write_doc('x.txt', "x\n");
$s->write_doc('err.html', "refused\n");
$s->write_doc('req/x.txt', "req\n");
$s->write_doc('neg/x.txt', "neg\n");
$s->write_doc('two/x.txt', "two\n");
$s->write_htaccess('ht', 'SetHandler mtls-authz-status');
$s->add_header;
# A default that turns the cache on, and a site file that turns it off.
$s->add('MTLSAuthzSeenCache shmcb', 'MTLSAuthzSeenCache none');
$s->add(qq{<Directory "$dir/docs/ht">}, '    AllowOverride FileInfo', '</Directory>');
$s->add_vhost(verify => 'optional_no_ca');
$s->add('    ErrorDocument 403 /err.html', '    <Location />', '        MTLSAuthz On');
my $r_alice = $s->rule_at($s->add(qq{        MTLSAllow "subject=$ALICE"}));
$s->add('    </Location>', '    <Location /req/>', '        MTLSAuthz Off',
        '        Require mtls', qq{        MTLSAllow "subject=$BOB"}, '    </Location>',
        '    <Location /neg/>', '        MTLSAuthz Off', '        <RequireAll>',
        '            Require all granted', '            Require not mtls', '        </RequireAll>',
        qq{        MTLSAllow "subject=$ALICE"}, '    </Location>', '    <Location /two/>');
my $r_two = $s->rule_at($s->add(qq{        MTLSAllowSubject "$ALICE" "$BOB"}));
$s->add('    </Location>', '    <Location /ht/>', '        MTLSAuthz Off', '    </Location>',
        '    <Location /mtls-status>', '        SetHandler mtls-authz-status',
        '        MTLSAuthz Off', '        Require ip 127.0.0.1', '    </Location>',
        '</VirtualHost>');
$s->start;

my $host = "localhost:$port";
my @codes = map { $_->[0] } (conn_get($pki, $port, ['/x.txt'], cert => 'alice-a'),
                             conn_get($pki, $port, ['/req/x.txt'], cert => 'alice-a'),
                             conn_get($pki, $port, ['/neg/x.txt'], cert => 'alice-a'),
                             conn_get($pki, $port, ['/two/x.txt'], cert => 'bob-a'));
# Failure paths of the handshake: a certificate of an unknown CA
# (optional_no_ca lets it through unverified) and none at all.
push @codes, map { $_->[0] } (conn_get($pki, $port, ['/x.txt'], cert => 'untrusted'),
                              conn_get($pki, $port, ['/x.txt'], cert => undef));
is("@codes", '200 403 403 200 403 403',
   'alice at / 200, at /req/ (Require mtls, bob only) 403, at /neg/ (Require not mtls) 403; '
   . 'bob at /two/ 200; an unverified certificate and none at / 403');

my $mark = $s->log_mark;
my ($ht) = conn_get($pki, $port, ['/ht/'], cert => 'alice-a');
is($ht->[0], 403, 'an .htaccess that sets the status handler: 403');
unlike($ht->[1], qr/mod_mtls_authz status|"rules"|mtls_authz_/, 'and none of the page');
like($s->log_since($mark), qr/mtls-authz-status: not served where an \.htaccess file applies/,
     'and the log says why');

my ($doc, $st) = fetch_json($pki, $port, '/mtls-status?json', 'alice-a');
is($st, 200, 'the page: 200');
$doc //= {};
is($doc->{seen_cache}, undef, 'MTLSAuthzSeenCache shmcb, then none: the list is off');
is_deeply($doc->{clients}, [], 'and lists nobody');

my %dec = map { ("$_->{scope}|$_->{outcome}|$_->{reason}" => $_->{count}) }
  @{ $doc->{decisions} // [] };
is_deeply(\%dec,
          {"$host <Location />|admitted|rule"               => 2,
           "$host <Location /req/>|denied|no_rule_matched" => 1,
           "$host <Location /neg/>|denied|negated"         => 1,
           "$host <Location /two/>|admitted|rule"          => 1,
           "$host <Location />|denied|not_verified"        => 1,
           "$host <Location />|denied|no_certificate"      => 1},
          'one decision per request: the refusal at /req/, not its ErrorDocument\'s '
          . 'admission; negated for Require not mtls; / twice: /x.txt, and the '
          . 'ErrorDocument of /ht/, a request the module had not decided')
  or diag(explain($doc->{decisions}));
my %adm = map { ($_->{rule} => $_->{admissions}) } @{ $doc->{rules} // [] };
is($adm{$r_alice}, 2, "alice's rule: /x.txt and /ht/'s error page, not /req/'s");
is_deeply([@adm{$r_two, "$r_two#2"}], [0, 1],
          'MTLSAllowSubject with two DNs: two rules, the second named #2, bob counted there');

my ($p) = conn_get($pki, $port, ['/mtls-status?prometheus'], cert => 'alice-a');
my $prom = prom_parse($p->[1]);
my (%seen, @dup);
for my $x (@{ $prom->{samples} }) {
    my $k = join '|', $x->{name}, map { "$_=$x->{labels}{$_}" } sort keys %{ $x->{labels} };
    push @dup, $k if $seen{$k}++;
}
ok(scalar(@{ $prom->{samples} }) > 0 && !@{ $prom->{errors} }, 'the Prometheus text parses')
  or diag(explain($prom->{errors}));
is(scalar(@dup), 0, 'no two Prometheus samples with the same name and labels')
  or diag(explain(\@dup));
my ($rc, $out) = promtool_check($p->[1], $dir);
is($rc, 0, 'promtool check metrics: exit 0') or diag($out);

$s->stop;
unlike($s->error_log, $CRASH, 'no child crashed');

done_testing();
