# A subrequest that renegotiates the TLS connection to another client
# certificate. The request that made the subrequest was admitted for the
# first certificate; afterwards the connection carries the second one, and
# the module extracts a new identity. Whatever a request exports must then
# describe ONE certificate: subject, fingerprints and SANs of the
# certificate whose SHA-256 is MTLS_CLIENT_CERT_SHA256, and an
# MTLS_AUTHZ_RULE that admits that certificate under the configuration the
# request ends with. A request must never go on with a decision taken for
# a certificate the connection no longer has, nor read an identity that
# the renegotiation freed.
#
# mod_ssl renegotiates in a subrequest when the subrequest's location
# asks for more than the handshake did (SSLVerifyClient optional ->
# require, TLS 1.2). The client answers that renegotiation with the
# certificate set on its SSL object before the request (use_cert).
#
# Runs its own httpd (t/lib/OwnHttpd.pm) with mod_include (SSI printenv as
# the backend), mod_negotiation (MultiViews), mod_rewrite (-U lookahead)
# and the test module t/probe (the optional functions, in response
# headers).
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use lib "$FindBin::RealBin/lib";
use OwnHttpd ();

my $s = OwnHttpd->new(__FILE__, 'subreq');
my $dir = $s->dir;
my $ALICE = '"CN=alice,O=Acme Inc.,C=US"';
my $CA_A  = $s->fp('FP_CA_A');
my $SSI   = "backend=SSI\n<!--#printenv -->\n";

# ssl:debug: mod_ssl logs the subject of every certificate it verifies;
# rewrite:trace1: mod_rewrite logs its internal redirects.
$s->add_header(modules => [qw(include negotiation rewrite)],
               loglevel => 'info ssl:debug rewrite:trace1 mtls_authz:debug',
               so => [mtls_probe_module => $s->top . '/build/mod_mtls_probe.so']);
$s->add('SSLProtocol -all +TLSv1.2', 'SSLSessionCache none',
        'AddType text/html .shtml', 'AddOutputFilter INCLUDES .shtml',
        qq{<Directory "$dir/docs">}, '    Options +Includes', '    Require all granted',
        '</Directory>');
for my $d ('neg', 'negb', 'negr') {
    $s->add(qq{<Directory "$dir/docs/$d">}, '    Options +MultiViews +Includes', '</Directory>');
}
# (d) Per-directory mod_rewrite, in the fixups of /rw/start: the -U
# condition makes a lookahead subrequest for /look/x.txt, whose location
# requires a certificate, so mod_ssl renegotiates in it; then the rule
# answers with an internal redirect to /rw/target.shtml. The redirected
# request matches exactly the sections /rw/start matched (this
# <Directory> and <Location /rw/>), so the walk caches hand it the very
# same per_dir_config, and since every access, authn and authz hook is
# registered AP_AUTH_INTERNAL_PER_CONF (mod_ssl, mod_authz_core and this
# module) ap_process_request_internal skips the whole access phase for it
# (r->prev->per_dir_config == r->per_dir_config): the decision taken for
# /rw/start, for the certificate of the first handshake, is all it has.
# (With LogLevel authz_core:debug, httpd 2.4.71 logs AH01626 for /rw/start
# and for the lookahead, and none for the redirected request.)
$s->add(qq{<Directory "$dir/docs/rw">}, '    RewriteEngine On',
        '    RewriteCond /look/x.txt -U', '    RewriteRule ^start$ /rw/target.shtml [L]',
        '</Directory>');
$s->add_vhost(verify => 'optional');
# The pages read the identity from their environment.
$s->add('    MTLSExportEnv On');
my $S_NEG = $s->add_location('/neg/', 'MTLSAuthz On', ">>MTLSAllowSubject $ALICE");
my $I_DOC = $s->add_location('/neg/doc.shtml', 'SSLVerifyClient require',
                             ">>MTLSAllowIssuerFingerprint sha256:$CA_A");
# (b) the same, but the variant's location admits alice alone
my $S_NEGB = $s->add_location('/negb/', 'MTLSAuthz On', ">>MTLSAllowSubject $ALICE");
my $S_NEGB_DOC = $s->add_location('/negb/doc.shtml', 'SSLVerifyClient require',
                                  ">>MTLSAllowSubject $ALICE");
# (f) Require mtls, no renegotiation: MultiViews gives the request
# doc.shtml's configuration, whose own rule is the one to export.
my $S_NEGR = $s->add_location('/negr/', 'Require mtls', ">>MTLSAllowSubject $ALICE");
my $I_NEGR_DOC = $s->add_location('/negr/doc.shtml', 'Require mtls',
                                  ">>MTLSAllowIssuerFingerprint sha256:$CA_A");
my $S_RW = $s->add_location('/rw/', 'MTLSAuthz On', ">>MTLSAllowSubject $ALICE");
$s->add_location('/look/', 'SSLVerifyClient require');
$s->add('</VirtualHost>');

$s->write_doc('neg/doc.shtml', $SSI);
$s->write_doc('neg/plain.shtml', $SSI);
$s->write_doc('negb/doc.shtml', $SSI);
$s->write_doc('negr/doc.shtml', $SSI);
$s->write_doc('rw/target.shtml', $SSI);
$s->write_doc('look/x.txt', "lookahead\n");
$s->start;

# Which rule admits which certificate (the certificates used here).
my %ADMITS = (
    $S_NEG      => ['alice-a'],
    $I_DOC      => ['alice-a', 'bob-a'],
    $S_NEGB     => ['alice-a'],
    $S_NEGB_DOC => ['alice-a'],
    $S_NEGR     => ['alice-a'],
    $I_NEGR_DOC => ['alice-a', 'bob-a'],
    $S_RW       => ['alice-a'],
);
my @CERTS = ('alice-a', 'bob-a');
my %SUBJECT = map { $_ => $s->cert_info($_)->{subject} } @CERTS;

# One GET over TLS 1.2 as $first, answering the renegotiation with
# $second; returns (status, body, head, error log of the request, socket
# still open).
sub reneg_get {
    my ($path, $first, $second) = @_;
    my $mark = $s->log_mark;
    my ($sock, $why) = $s->tls_connect(cert => $first, tls => '1.2');
    ok($sock, "TLS 1.2 connection as $first") or diag($why);
    return (0, '', '', '', undef) unless $sock;
    $s->use_cert($sock, $second);
    my ($st, $body, $head) = $s->get_on($sock, $path, keepalive => 1);
    return ($st, $body, $head, $s->log_since($mark), $sock);
}

# The renegotiation the case is about really happened, and the client
# answered it with $who's certificate (mod_ssl's verification log line).
# $module: the module also extracted that identity in the subrequest.
sub reneg_happened {
    my ($what, $log, $who, $module) = @_;
    my $at = index($log, 'AH02221: Requesting connection re-negotiation');
    ok($at >= 0, "$what: mod_ssl renegotiated in the subrequest (precondition)");
    my $after = $at >= 0 ? substr($log, $at) : '';
    like($after, qr/AH02275: Certificate Verification, depth 0, .*\[subject: CN=\Q$who\E,/,
         "$what: the client answered the renegotiation with $who\'s certificate (precondition)");
    return unless $module;
    like($after, qr/identity extracted \(2 on this connection\): subject "CN=\Q$who\E,/,
         "$what: the module saw $who\'s certificate in the subrequest (precondition)");
}

# mod_rewrite made the -U lookahead (which renegotiated) and then the
# internal redirect, in that order.
sub rewrite_order {
    my ($what, $log) = @_;
    my $reneg = index($log, 'AH02221: Requesting connection re-negotiation');
    my $redir = index($log, 'internal redirect with /rw/target.shtml [INTERNAL REDIRECT]');
    ok($reneg >= 0 && $redir > $reneg, "$what: the -U lookahead renegotiated, then mod_rewrite "
       . "redirected internally (precondition; log offsets $reneg, $redir)");
}

# --- (a) alice, then bob through the renegotiation in MultiViews'
# subrequest for doc.shtml. After MultiViews the request's configuration
# is doc.shtml's, whose issuer rule admits bob: 200, every variable bob's.
{
    my ($st, $body, $head, $log, $sock) = reneg_get('/neg/doc', 'alice-a', 'bob-a');
    reneg_happened('(a) MultiViews, alice -> bob', $log, 'bob', 1);
    is($st, 200, '(a) alice -> bob in the MultiViews subrequest: 200 (bob is admitted by '
       . "doc.shtml's issuer rule)");
    like($body, qr/^backend=SSI$/m, '(a) MultiViews served doc.shtml (precondition)');
    my $env = OwnHttpd::env_of($body, html => 1);
    my $cert = $s->ok_identity('(a) MultiViews, alice -> bob', $env, certs => \@CERTS,
                               admits => \%ADMITS, final => [$I_DOC]);
    is($cert, 'bob-a', '(a) the identity exported is bob\'s (MTLS_CLIENT_CERT_SHA256)');
    is($env->{MTLS_CLIENT_SUBJECT}[0], $SUBJECT{'bob-a'}, '(a) MTLS_CLIENT_SUBJECT is bob');
    is($env->{MTLS_CLIENT_CERT_SHA256}[0], $s->cert_info('bob-a')->{fp},
       '(a) MTLS_CLIENT_CERT_SHA256 is bob\'s certificate');
    is(join(' ', sort grep { /^MTLS_CLIENT_SAN_/ } keys %$env),
       join(' ', sort keys %{ $s->cert_info('bob-a')->{sans} }),
       '(a) exactly bob\'s SAN variables');
    unlike($body, qr/alice\.example\.com|Alice\@Example|sa\/alice|=192\.0\.2\.7$|2001:db8::7/mi,
           '(a) none of alice\'s SANs in the page');
    is($env->{MTLS_AUTHZ_RULE}[0], $I_DOC,
       '(a) MTLS_AUTHZ_RULE is the MTLSAllowIssuerFingerprint line of /neg/doc.shtml');
    # (e) the optional functions, through the probe module
    is(OwnHttpd::header($head, 'X-MTLS-Rule'), $I_DOC,
       '(e) mtls_authz_matched_rule(): the issuer rule, as MTLS_AUTHZ_RULE');
    is(OwnHttpd::header($head, 'X-MTLS-Subject'), $SUBJECT{'bob-a'},
       '(e) mtls_authz_client_subject(): bob, as MTLS_CLIENT_SUBJECT');
    # The connection now carries bob: /neg/ (alice only) refuses him.
    if ($sock) {
        my ($st2) = $s->get_on($sock, '/neg/plain.shtml');
        is($st2, 403, '(a) the next request on that connection, to /neg/ (alice only): 403');
        $sock->close(SSL_fast_shutdown => 1);
    }
}

# --- (b) the same, but doc.shtml's location admits alice only: bob never
# gets the page, and no page shows variables of two certificates.
{
    my ($st, $body, $head, $log, $sock) = reneg_get('/negb/doc', 'alice-a', 'bob-a');
    $sock->close(SSL_fast_shutdown => 1) if $sock;
    reneg_happened('(b) MultiViews, variant alice only, alice -> bob', $log, 'bob', 1);
    ok($st != 200 && $st != 0, "(b) alice -> bob, variant for alice only: no page ($st)")
      or diag($body);
    unlike($body, qr/MTLS_/, '(b) no MTLS_* variable in the response');
    unlike($head, qr/^X-MTLS-Rule:[ \t]*[^-\s]/mi, '(b) no admitting rule reported by the '
           . 'optional functions');
}

# --- (c) alice answering the renegotiation with alice: the legitimate
# path keeps working, and the rule is doc.shtml's (the configuration the
# request ends with).
{
    my ($st, $body, $head, $log, $sock) = reneg_get('/neg/doc', 'alice-a', 'alice-a');
    $sock->close(SSL_fast_shutdown => 1) if $sock;
    reneg_happened('(c) MultiViews, alice -> alice', $log, 'alice', 1);
    is($st, 200, '(c) alice -> alice in the MultiViews subrequest: 200');
    my $env = OwnHttpd::env_of($body, html => 1);
    my $cert = $s->ok_identity('(c) MultiViews, alice -> alice', $env, certs => \@CERTS,
                               admits => \%ADMITS, final => [$I_DOC]);
    is($cert, 'alice-a', '(c) the identity exported is alice\'s');
    is(OwnHttpd::header($head, 'X-MTLS-Rule'), $env->{MTLS_AUTHZ_RULE}[0] // 'unset',
       '(c) mtls_authz_matched_rule() agrees with MTLS_AUTHZ_RULE');
    is(OwnHttpd::header($head, 'X-MTLS-Subject'), $SUBJECT{'alice-a'},
       '(c) mtls_authz_client_subject(): alice');
}

# --- (d) mod_rewrite: -U lookahead renegotiates to bob, then an internal
# redirect into the same configuration (alice only), whose access checks
# httpd skips. The redirected request must be refused: the certificate on
# the connection is bob's, and its rules do not admit bob.
{
    # Control first: with alice answering, the path really is a -U
    # lookahead and an internal redirect, and serves target.shtml.
    my ($st, $body, $head, $log, $sock) = reneg_get('/rw/start', 'alice-a', 'alice-a');
    $sock->close(SSL_fast_shutdown => 1) if $sock;
    reneg_happened('(d) control, rewrite -U, alice -> alice', $log, 'alice');
    rewrite_order('(d) control', $log);
    is($st, 200, '(d) control: alice -> alice, /rw/start: 200');
    like($body, qr{^REDIRECT_URL=/rw/start$}m,
         '(d) control: the page is served by the internal redirect from /rw/start');
    my $env = OwnHttpd::env_of($body, html => 1);
    is($s->ok_identity('(d) control', $env, certs => \@CERTS, admits => \%ADMITS,
                       final => [$S_RW]), 'alice-a', '(d) control: alice\'s identity');

    ($st, $body, $head, $log, $sock) = reneg_get('/rw/start', 'alice-a', 'bob-a');
    $sock->close(SSL_fast_shutdown => 1) if $sock;
    reneg_happened('(d) rewrite -U, alice -> bob', $log, 'bob');
    rewrite_order('(d) alice -> bob', $log);
    is($st, 403, '(d) alice -> bob in the -U lookahead, internal redirect into alice\'s '
       . 'configuration: 403');
    unlike($body, qr/MTLS_AUTHZ_RULE=\Q$S_RW\E/,
           '(d) never a page with alice\'s rule for bob\'s connection');
    $env = OwnHttpd::env_of($body, html => 1);
    is(join(' ', sort keys %$env), '', '(d) alice -> bob: no MTLS_* variable reaches the page')
      or diag(OwnHttpd::env_text($env));
}

# --- (f) Require mtls and MultiViews, no renegotiation: the rule exported
# is the one of the configuration the request ends with (doc.shtml's),
# as under MTLSAuthz On.
{
    my ($sock, $why) = $s->tls_connect(cert => 'alice-a', tls => '1.2');
    ok($sock, '(f) TLS 1.2 connection as alice') or diag($why);
    my ($st, $body, $head) = $sock ? $s->get_on($sock, '/negr/doc') : (0, '', '');
    $sock->close(SSL_fast_shutdown => 1) if $sock;
    is($st, 200, '(f) Require mtls, MultiViews: alice 200');
    my $env = OwnHttpd::env_of($body, html => 1);
    is($s->ok_identity('(f) Require mtls, MultiViews', $env, certs => \@CERTS,
                       admits => \%ADMITS, final => [$I_NEGR_DOC]), 'alice-a',
       '(f) alice\'s identity');
    is($env->{MTLS_AUTHZ_RULE}[0], $I_NEGR_DOC,
       '(f) MTLS_AUTHZ_RULE is doc.shtml\'s issuer rule, not /negr/\'s subject rule');
    is(OwnHttpd::header($head, 'X-MTLS-Rule'), $I_NEGR_DOC,
       '(f) mtls_authz_matched_rule() agrees');
}

$s->stop;
done_testing();
