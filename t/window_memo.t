# Time-boxed rules on one keep-alive connection: the decision the module
# remembers per connection holds only for the span of time in which no
# rule of its scope starts or ends. A test-only module
# (t/probe/mod_mtls_clock.c) gives each request the time its
# X-Test-Clock header names, so every instant is asked about at once,
# without waiting. At LogLevel warn, as in production (debug logging
# bypasses the memo).
#
# Runs its own httpd (t/lib/OwnHttpd.pm).
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use lib "$FindBin::RealBin/lib";
use OwnHttpd ();
use POSIX qw(strftime);

my $s = OwnHttpd->new(__FILE__, 'window_memo');
my $ALICE = '"CN=alice,O=Acme Inc.,C=US"';
my $BOB = '"CN=bob,O=Acme Inc.,C=US"';

# Instants far from the test's own clock, in seconds since the epoch.
my ($T1, $T2, $T3) = (2000000000, 2000086400, 2000172800);
sub z { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime $_[0]) }

$s->add_header(loglevel => 'warn',
               so => [mtls_clock_module => $s->top . '/build/mod_mtls_clock.so']);
$s->add_vhost;
# alice from T1 to T2; bob always, but denied from T2 to T3.
$s->add_location('/w', 'MTLSAuthz On',
                 'MTLSAllow subject=' . $ALICE . ' not_before=' . z($T1) . ' not_after=' . z($T2),
                 "MTLSAllow subject=$BOB",
                 'MTLSDeny subject=' . $BOB . ' not_before=' . z($T2) . ' not_after=' . z($T3));
$s->add('</VirtualHost>');
$s->write_doc('w/index.html', "w\n");
$s->start;

# [time, alice's status, bob's status]
my @AT = ([$T1 - 1, 403, 200], [$T1, 200, 200], [$T1 + 10, 200, 200], [$T2 - 1, 200, 200],
          [$T2, 403, 403], [$T2 + 10, 403, 403], [$T1 + 20, 200, 200], [$T3 - 1, 403, 403],
          [$T3, 403, 200], [$T3 + 10, 403, 200], [$T2 + 20, 403, 403], [$T1 - 10, 403, 200]);

for my $i (1, 2) {
    my $cert = $i == 1 ? 'alice-a' : 'bob-a';
    # The reference: a fresh connection per instant.
    for my $at (@AT) {
        my ($st) = $s->get('/w/', cert => $cert, headers => "X-Test-Clock: $at->[0]\r\n");
        is($st, $at->[$i], "fresh connection: $cert at " . z($at->[0]) . " gets $at->[$i]");
    }
    # Each item carries its row of @AT after the path and the header.
    $s->keepalive_check($cert, [map { ['/w/', "X-Test-Clock: $_->[0]\r\n", $_] } @AT, @AT],
                        sub { my $at = $_[0][2];
                              ($at->[$i], "$cert at " . z($at->[0]) . " gets $at->[$i]") });
}
my $log = $s->error_log;
like($log, qr/rule \S+:\d+ expired at \Q${\ z($T2)}\E/, 'the log names the end of alice\'s rule');
like($log, qr/denied by \S+:\d+; subject "CN=bob/, 'the log names bob\'s deny rule');
$s->stop;
done_testing();
