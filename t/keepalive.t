# One keep-alive connection, many requests: the decision the module
# remembers per connection (for the next request with the same rules and
# the same certificate) must never answer for other rules. Each request
# alternates between locations whose rules admit different clients, with
# MTLSAuthz On and with Require mtls, nested scopes that replace the
# rules, issuer pins and a scope whose rules are inherited; every answer
# must be the one a fresh connection gets. At LogLevel warn, as in
# production (debug logging bypasses the memo to trace each rule).
#
# Runs its own httpd (t/lib/OwnHttpd.pm).
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use lib "$FindBin::RealBin/lib";
use OwnHttpd ();

my $s = OwnHttpd->new(__FILE__, 'keepalive');
my $CA_A = $s->fp('FP_CA_A');
my $CA_B = $s->fp('FP_CA_B');
my $ALICE = '"CN=alice,O=Acme Inc.,C=US"';
my $BOB = '"CN=bob,O=Acme Inc.,C=US"';

$s->add_header(loglevel => 'warn');
$s->add_vhost;
$s->add_location('/alice', 'MTLSAuthz On', "MTLSAllowSubject $ALICE");
$s->add_location('/bob', 'MTLSAuthz On', "MTLSAllowSubject $BOB");
$s->add_location('/alice/bob', "MTLSAllowSubject $BOB");    # replaces, inherits On
$s->add_location('/alice/inherit');                          # inherits both
$s->add_location('/pin-a', 'MTLSAuthz On', "MTLSAllow subject=$ALICE issuer=sha256:$CA_A",
                 "MTLSAllow subject=$BOB issuer=sha256:$CA_A");
$s->add_location('/pin-b', 'MTLSAuthz On', "MTLSAllow subject=$ALICE issuer=sha256:$CA_B",
                 "MTLSAllow subject=$BOB issuer=sha256:$CA_B");
$s->add_location('/req-alice', 'Require mtls', "MTLSAllowSubject $ALICE");
$s->add_location('/req-bob', 'Require mtls', "MTLSAllowSubject $BOB");
# Only an .htaccess file pins a certificate: the identities built before
# it was first read lack the certificate's digest, and must get it.
$s->add(qq{    <Directory "} . $s->dir . qq{/docs/ht-cert">}, '        AllowOverride AuthConfig',
        '    </Directory>');
$s->add_area('ht-cert', ['MTLSAuthz On', 'MTLSAllow cert=sha256:' . $s->fp('FP_CERT_ALICE_A')]);
$s->add('</VirtualHost>');
$s->write_doc("$_/index.html", "$_\n")
  for qw(alice bob alice/bob alice/inherit pin-a pin-b req-alice req-bob);
$s->start;

my %WANT = (
    'alice-a' => { '/alice/' => 200, '/bob/' => 403, '/alice/bob/' => 403,
                   '/alice/inherit/' => 200, '/pin-a/' => 200, '/pin-b/' => 403,
                   '/req-alice/' => 200, '/req-bob/' => 403 },
    'bob-a'   => { '/alice/' => 403, '/bob/' => 200, '/alice/bob/' => 200,
                   '/alice/inherit/' => 403, '/pin-a/' => 200, '/pin-b/' => 403,
                   '/req-alice/' => 403, '/req-bob/' => 200 },
    'alice-b' => { '/alice/' => 200, '/bob/' => 403, '/alice/bob/' => 403,
                   '/alice/inherit/' => 200, '/pin-a/' => 403, '/pin-b/' => 200,
                   '/req-alice/' => 200, '/req-bob/' => 403 },
);
# Each path twice in a row (the memo answers the second), then in an
# order where every request follows one with other rules.
my @ORDER = qw(/alice/ /alice/ /bob/ /bob/ /alice/bob/ /alice/ /alice/inherit/ /alice/bob/
               /pin-a/ /pin-b/ /pin-a/ /pin-b/ /req-alice/ /req-bob/ /req-alice/ /alice/
               /req-bob/ /bob/ /alice/inherit/ /alice/inherit/);

for my $cert (sort keys %WANT) {
    # the reference: one fresh connection per path
    for my $path (sort keys %{ $WANT{$cert} }) {
        is($s->status($path, cert => $cert), $WANT{$cert}{$path},
           "fresh connection: $cert $path");
    }
    $s->keepalive_check($cert, \@ORDER, sub { $WANT{$cert}{ $_[0] } });
}

# A connection whose identity was built while no rule pinned a
# certificate, then a request where an .htaccess file pins one.
for my $c (['alice-a', 200], ['bob-a', 403]) {
    my ($cert, $want) = @$c;
    my ($sock, $why) = $s->tls_connect(cert => $cert);
    ok($sock, "ht-cert: $cert connects") or diag($why);
    next unless $sock;
    my ($st) = $s->get_on($sock, '/alice/', keepalive => 1);
    is($st, $cert eq 'alice-a' ? 200 : 403, "ht-cert: $cert, first /alice/ (identity built)");
    ($st) = $s->get_on($sock, '/ht-cert/', keepalive => 1);
    is($st, $want, "ht-cert: $cert, then the .htaccess cert= pin: $want");
    ($st) = $s->get_on($sock, '/ht-cert/', keepalive => 1);
    is($st, $want, "ht-cert: $cert, again on the same connection: $want");
    $sock->close(SSL_fast_shutdown => 1);
}

$s->stop;

# A renegotiation to another certificate between two requests with the
# same rules: the decision remembered for the first certificate must not
# answer for the second. /ka/reneg.html inherits /ka/'s rules (the same
# ruleset) and asks for more than the handshake did (SSLVerifyClient
# optional -> require, TLS 1.2): mod_ssl renegotiates, and the client
# answers with bob's certificate.
my $r = OwnHttpd->new(__FILE__, 'keepalive-reneg');
$r->add_header(loglevel => 'warn ssl:info');
$r->add_vhost(verify => 'optional');
$r->add_location('/ka/', 'MTLSAuthz On', "MTLSAllowSubject $ALICE");
$r->add_location('/ka/reneg.html', 'SSLVerifyClient require');
$r->add('</VirtualHost>');
$r->write_doc('ka/index.html', "ka\n");
$r->write_doc('ka/reneg.html', "reneg\n");
$r->start;
{
    my $mark = $r->log_mark;
    my ($sock, $why) = $r->tls_connect(cert => 'alice-a', tls => '1.2');
    ok($sock, 'reneg: TLS 1.2 connection as alice') or diag($why);
    if ($sock) {
        $r->use_cert($sock, 'bob-a');
        my @want = (['/ka/', 200, 'alice, before'], ['/ka/', 200, 'alice again (the memo)'],
                    ['/ka/reneg.html', 403, 'renegotiated to bob'],
                    ['/ka/', 403, 'bob, same rules as the first requests'],
                    ['/ka/', 403, 'bob again']);
        for my $w (@want) {
            my ($path, $st_want, $what) = @$w;
            my ($st) = $r->get_on($sock, $path, keepalive => 1);
            is($st, $st_want, "reneg: $path, $what: $st_want");
        }
        $sock->close(SSL_fast_shutdown => 1);
    }
    like($r->log_since($mark), qr/AH02221: Requesting connection re-negotiation/,
         'reneg: mod_ssl renegotiated (precondition)');
}
$r->stop;
done_testing();
