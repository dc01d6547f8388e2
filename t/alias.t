# <AuthzProviderAlias mtls NAME>: each alias is "Require mtls" with the
# alias's own rules (mod_authz_core merges the alias's section onto the
# location's configuration and calls the provider). Every alias, and
# "Require mtls" itself, must decide with its own rules, even when several
# of them, or MTLSAuthz On, are evaluated for the same request; and the
# variables of an admitted request name the rule that admitted that
# client. Nothing decided for one request may carry over to the next one
# on the same connection.
#
# Runs its own httpd (t/lib/OwnHttpd.pm): AuthzProviderAlias is a
# server-wide directive that the shared test configuration does not need
# elsewhere. The backend is a CGI script printing the MTLS_* variables.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use lib "$FindBin::RealBin/lib";
use OwnHttpd ();

my $s = OwnHttpd->new(__FILE__, 'alias');
my $dir = $s->dir;
my $CA_A = $s->fp('FP_CA_A');

$s->add_header(modules => ['cgid']);
$s->write_env_cgi;
$s->add(qq{ScriptAliasMatch "^/t/" "$dir/cgi/env.cgi"}, qq{<Directory "$dir/cgi">},
        '    Require all granted', '</Directory>');
$s->add('<AuthzProviderAlias mtls partner-alice>');
my $A = $s->rule_at($s->add('    MTLSAllow "subject=CN=alice,O=Acme Inc.,C=US"'));
$s->add('</AuthzProviderAlias>', '<AuthzProviderAlias mtls partner-bob>');
my $B = $s->rule_at($s->add('    MTLSAllow "subject=CN=bob,O=Acme Inc.,C=US"'));
# A deny-list alias of its own: an alias that some line negates is never
# taken as an admission, so one alias should not serve both (httpd warns).
$s->add('</AuthzProviderAlias>', '<AuthzProviderAlias mtls banned-alice>',
        '    MTLSAllow "subject=CN=alice,O=Acme Inc.,C=US"', '</AuthzProviderAlias>');
$s->add_vhost;
# The CGI reads the identity from its environment.
$s->add('    MTLSExportEnv On');
# Both aliases must hold; in either order.
$s->add('    <Location /t/all-ab>', '        <RequireAll>', '            Require partner-alice',
        '            Require partner-bob', '        </RequireAll>', '    </Location>',
        '    <Location /t/all-ba>', '        <RequireAll>', '            Require partner-bob',
        '            Require partner-alice', '        </RequireAll>', '    </Location>');
# Either alias; in either order.
$s->add('    <Location /t/any-ab>', '        <RequireAny>', '            Require partner-alice',
        '            Require partner-bob', '        </RequireAny>', '    </Location>',
        '    <Location /t/any-ba>', '        <RequireAny>', '            Require partner-bob',
        '            Require partner-alice', '        </RequireAny>', '    </Location>');
# Everyone but alice.
$s->add('    <Location /t/none-alice>', '        <RequireAll>', '            Require all granted',
        '            <RequireNone>', '                Require banned-alice',
        '            </RequireNone>', '        </RequireAll>', '    </Location>');
# The gate admits every CA A client; the alias then admits bob alone.
my $G = $s->add_location('/t/gate-bob', 'MTLSAuthz On',
                         ">>MTLSAllowIssuerFingerprint sha256:$CA_A", 'Require partner-bob');
# Require mtls (the location's rules: CA A) and the bob alias.
my $M = $s->add_location('/t/mtls-bob', '<RequireAll>', '    Require mtls',
                         '    Require partner-bob', '</RequireAll>',
                         ">>MTLSAllowIssuerFingerprint sha256:$CA_A");
# One alias alone.
$s->add('    <Location /t/alias-alice>', '        Require partner-alice', '    </Location>',
        '    <Location /t/alias-bob>', '        Require partner-bob', '    </Location>',
        '</VirtualHost>');
$s->start;

# Which rule admits which certificate (alice-b: alice's subject, CA B).
my @CERTS = qw(alice-a bob-a dave-a alice-b);
my %ADMITS = (
    $A => ['alice-a', 'alice-b'],
    $B => ['bob-a'],
    $G => ['alice-a', 'bob-a', 'dave-a'],
    $M => ['alice-a', 'bob-a', 'dave-a'],
);
# The rules a request to each location may report when it is admitted
# (where two rules both admit the client, either may be named).
my %RULES = (
    '/t/all-ab' => [$A, $B], '/t/all-ba' => [$A, $B],
    '/t/any-ab' => [$A, $B], '/t/any-ba' => [$A, $B],
    '/t/gate-bob' => [$G, $B], '/t/mtls-bob' => [$M, $B],
    '/t/alias-alice' => [$A], '/t/alias-bob' => [$B],
);

# Checks one response: the status, and for a 200 that the backend ran
# and, if the module admitted the request ($rule: the exact rule it must
# name, or 'any' for one of %RULES), that the variables are the client's
# and name a rule that admits it; $rule undef: no MTLS_* variable at all.
sub check {
    my ($what, $path, $cert, $want, $got, $body, $rule) = @_;
    my $env = OwnHttpd::env_of($body);
    is($got, $want, "$what: $cert $path: $want")
      or $got == 200 && diag("the backend got:\n", OwnHttpd::env_text($env));
    return unless $want == 200 && $got == 200;
    like($body, qr/^backend=env\.cgi$/m, "$what: $cert $path: the backend ran");
    if (!defined $rule) {
        my @v = grep { /MTLS_/ } sort keys %$env;
        ok(!@v, "$what: $cert $path: not admitted by this module: no MTLS_* variable")
          or diag(OwnHttpd::env_text($env));
        return;
    }
    my $final = $rule eq 'any' ? $RULES{$path} : [$rule];
    my $c = $s->ok_identity("$what: $cert $path", $env, certs => \@CERTS,
                            admits => \%ADMITS, final => $final);
    is($c, $cert, "$what: $cert $path: the variables are $cert\'s");
    is($env->{MTLS_AUTHZ_RULE}[0], $rule, "$what: $cert $path: MTLS_AUTHZ_RULE names "
       . "the rule that admitted $cert") unless $rule eq 'any';
}

sub one {
    my ($path, $cert, $want, $rule) = @_;
    my ($st, $body) = $s->get($path, cert => $cert);
    check('new connection', $path, $cert, $want, $st, $body, $rule);
}

# --- RequireAll of two aliases: nobody is both alice and bob
for my $p ('/t/all-ab', '/t/all-ba') {
    one($p, $_, 403) for qw(alice-a bob-a dave-a);
}

# --- RequireAny of two aliases: each client by its own alias's rule
for my $p ('/t/any-ab', '/t/any-ba') {
    one($p, 'alice-a', 200, $A);
    one($p, 'bob-a', 200, $B);
    one($p, 'dave-a', 403);
}

# --- RequireAll(all granted, RequireNone(alice alias)): all but alice;
# bob is admitted by "Require all granted", not by this module.
one('/t/none-alice', 'alice-a', 403);
one('/t/none-alice', 'bob-a', 200, undef);

# --- MTLSAuthz On with an issuer pin, then Require partner-bob: the gate
# admits CA A clients, the alias bob alone.
one('/t/gate-bob', 'bob-a', 200, 'any');
one('/t/gate-bob', $_, 403) for qw(alice-a dave-a alice-b);

# --- RequireAll(Require mtls, Require partner-bob)
one('/t/mtls-bob', 'bob-a', 200, 'any');
one('/t/mtls-bob', $_, 403) for qw(alice-a dave-a alice-b);

# --- one alias alone
one('/t/alias-alice', 'alice-a', 200, $A);
one('/t/alias-alice', 'alice-b', 200, $A);
one('/t/alias-alice', 'bob-a', 403);
one('/t/alias-bob', 'bob-a', 200, $B);
one('/t/alias-bob', 'alice-a', 403);

# --- one keep-alive connection per client, alternating locations: every
# answer is this request's own.
my %SEQ = (
    'alice-a' => [
        ['/t/alias-alice', 200, $A], ['/t/alias-bob', 403], ['/t/any-ba', 200, $A],
        ['/t/all-ab', 403], ['/t/alias-alice', 200, $A], ['/t/gate-bob', 403],
        ['/t/none-alice', 403], ['/t/any-ab', 200, $A], ['/t/mtls-bob', 403],
        ['/t/alias-alice', 200, $A],
    ],
    'bob-a' => [
        ['/t/alias-bob', 200, $B], ['/t/any-ab', 200, $B], ['/t/alias-alice', 403],
        ['/t/all-ba', 403], ['/t/gate-bob', 200, 'any'], ['/t/none-alice', 200, undef],
        ['/t/any-ba', 200, $B], ['/t/all-ab', 403], ['/t/mtls-bob', 200, 'any'],
        ['/t/alias-bob', 200, $B],
    ],
);
for my $cert (sort keys %SEQ) {
    my ($sock, $why) = $s->tls_connect(cert => $cert);
    ok($sock, "keep-alive: $cert connects") or diag($why);
    next unless $sock;
    my $n = 0;
    for my $step (@{ $SEQ{$cert} }) {
        my ($path, $want, $rule) = @$step;
        my ($st, $body, $head) = $s->get_on($sock, $path, keepalive => 1);
        $n++;
        check("keep-alive request $n", $path, $cert, $want, $st, $body, $rule);
        last unless $st;
    }
    $sock->close(SSL_fast_shutdown => 1);
}

$s->stop;
done_testing();
