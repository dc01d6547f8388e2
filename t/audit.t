# MTLSAuthzMode Audit: requests the rules would deny are admitted, and
# the denial line is logged exactly as Enforce would log it, marked
# AUDIT. Require mtls abstains in Audit mode.
# Server configuration: t/conf/audit.inc.in and the shared t/conf/extra.conf.in.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use MTLS qw(req status plain_status log_mark log_wait fp);

plan tests => 27;

my $JOE   = "Authorization: Basic am9lOnNlY3JldA==\r\n";    # joe:secret
my $DENY  = 'client denied by server configuration';
my $AUDIT = "] AUDIT (admitted): $DENY";

sub audit_lines { grep { /\Q$AUDIT\E/ } split /\n/, $_[0] }

# --- MTLSAuthz On in Audit mode
my $m = log_mark();
is(status('/t/audit', cert => 'bob-a'), 200, 'Audit: bob admitted (200)');
my @lines = audit_lines(log_wait($m, qr{\Q$AUDIT\E}));
is(scalar(@lines), 1, 'one AUDIT line');
like($lines[0] // '', qr{\[mtls_authz:warn\] }, 'at warning level');

# The same request under Enforce: the line after the marker is identical.
$m = log_mark();
is(status('/t/subject', cert => 'bob-a'), 403, 'Enforce: bob denied');
my ($enforced) = grep { /\] \Q$DENY\E/ } split /\n/, log_wait($m, qr{\Q$DENY\E});
my ($a_text) = ($lines[0] // '') =~ /\Q$AUDIT\E: (.*)$/;
my ($e_text) = ($enforced // '') =~ /\] \Q$DENY\E: (.*)$/;
s{^/t/audit:}{/t/subject:} for grep { defined } $a_text;
is($a_text, $e_text, 'the AUDIT line is the Enforce line, marked');
like($a_text // '', qr{^/t/subject: no rule matched; subject "CN=bob,O=Acme Inc\.,C=US", issuer sha256:${\ fp('FP_CA_A')}$},
     'with reason, subject and issuer');

$m = log_mark();
is(status('/t/audit', cert => 'alice-a'), 200, 'Audit: alice admitted');
status('/t/audit', cert => 'bob-a');    # sentinel: an AUDIT line follows
@lines = audit_lines(log_wait($m, qr{\Q$AUDIT\E}));
is(scalar(@lines), 1, 'no AUDIT line for a client the rules admit (only the sentinel)');

is(status('/t/audit/enforce', cert => 'bob-a'), 403, 'MTLSAuthzMode Enforce in a nested scope denies');
is(status('/t/audit/enforce', cert => 'alice-a'), 200, '... and admits alice');
is(status('/t/audit/inherit', cert => 'bob-a'), 200, 'a nested scope inherits Audit');

# Everything a denial would deny is admitted and logged: no certificate,
# an unverified one, plain HTTP.
$m = log_mark();
is(status('/t/audit', vhost => 'mtls_optional', cert => undef), 200, 'Audit: no certificate admitted');
like(log_wait($m, qr{\Q$AUDIT\E}), qr{\Q$AUDIT\E: /t/audit: no certificate; subject "-", issuer -},
     'AUDIT line: no certificate');
$m = log_mark();
is(status('/t/audit', vhost => 'mtls_optional', cert => 'untrusted'), 200, 'Audit: unverified certificate admitted');
like(log_wait($m, qr{\Q$AUDIT\E}), qr{\Q$AUDIT\E: /t/audit: not verified: },
     'AUDIT line: not verified');
$m = log_mark();
is(plain_status('/t/audit'), 200, 'Audit: plain HTTP admitted');
like(log_wait($m, qr{\Q$AUDIT\E}), qr{\Q$AUDIT\E: /t/audit: no certificate \(plain HTTP\)},
     'AUDIT line: plain HTTP');

# --- Require mtls in Audit mode abstains: the other Require lines decide
is(status('/t/audit-req-any', cert => 'alice-a'), 200, 'Audit, RequireAny mtls + valid-user: alice');
$m = log_mark();
is(status('/t/audit-req-any', cert => 'bob-a'), 401,
   'Audit, RequireAny: bob without a password is asked to log in, not admitted');
like(log_wait($m, qr{\Q$AUDIT\E}), qr{\[mtls_authz:warn\] .*\Q$AUDIT\E: /t/audit-req-any: no rule matched},
     'AUDIT line for it');
is(status('/t/audit-req-any', cert => 'bob-a', headers => $JOE), 200,
   'Audit, RequireAny: bob with a password');
$m = log_mark();
is(status('/t/audit-req-alone', cert => 'bob-a'), 403,
   'Audit, Require mtls alone: abstaining leaves mod_authz_core nothing that grants (403)');
my $log = log_wait($m, qr{AH01630});
is(scalar(audit_lines($log)), 1, 'one AUDIT line for it');
unlike($log, qr{\] \Q$DENY\E}, 'and no Enforce denial line');
is(status('/t/audit-req-alone', cert => 'alice-a'), 200, 'Audit, Require mtls alone: alice granted');

# --- identity variables only for clients the rules admit
my ($st, $body) = req('/env/audit', cert => 'bob-a');
ok($st == 200 && $body !~ /MTLS_/, "Audit: no MTLS_* variables for bob ($st)") or diag($body);
($st, $body) = req('/env/audit', cert => 'alice-a');
like($body, qr{^MTLS_AUTHZ_RULE=.*/extra\.conf:\d+$}m, 'Audit: MTLS_AUTHZ_RULE for alice');
