# "Require mtls": the module's rules as a mod_authz_core provider, alone
# and combined with Require ip and Require valid-user; its denial line
# (logged once the outcome is known) and its level.
# Server configuration: t/conf/require.inc.in and the shared t/conf/extra.conf.in.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use MTLS qw(req status plain_status h2_status log_mark log_wait error_log_since fp);

plan tests => 41;

my $JOE  = "Authorization: Basic am9lOnNlY3JldA==\r\n";    # joe:secret
my $BAD  = "Authorization: Basic am9lOndyb25n\r\n";        # joe:wrong
my $BOB  = 'subject "CN=bob,O=Acme Inc\.,C=US"';
my $DENY = '] client denied by server configuration';

sub denials { scalar(() = $_[0] =~ /\Q$DENY\E/g) }

# A request whose own denial is logged before its answer: once its line
# is in the log, an earlier request's line would be there too.
sub sentinel {
    my $m = log_mark();
    status('/t/subject', cert => 'bob-a');
    log_wait($m, qr{\Q$DENY\E: /t/subject: });
}

# A request whose denial line is written after its answer: waits for the
# line, so that it cannot land in a later test's part of the log.
sub settled {
    my ($path, %o) = @_;
    my $m  = log_mark();
    my $st = status($path, %o);
    log_wait($m, qr{\Q$DENY\E: \Q$path\E: });
    return $st;
}

# --- alone
is(status('/t/req', cert => 'alice-a'), 200, 'Require mtls: alice admitted');
my $m = log_mark();
is(status('/t/req', cert => 'bob-a'), 403, 'Require mtls: bob denied (403)');
my $log = log_wait($m, qr{\Q$DENY\E: /t/req: });
like($log, qr{\[mtls_authz:error\] .*\Q$DENY\E: /t/req: no rule matched; $BOB, issuer sha256:${\ fp('FP_CA_A')}},
     'the denial line: URI, reason, subject, issuer, at error level');
sentinel();
is(denials(error_log_since($m)) - 1, 1, 'exactly one denial line for it (mod_authz_core may ask twice)');
like($log, qr{AH01630: client denied by server configuration}, "and mod_authz_core's own AH01630");

$m = log_mark();
is(status('/t/req', vhost => 'mtls_optional', cert => undef), 403, 'no certificate: 403, not 401');
like(log_wait($m, qr{\Q$DENY\E: /t/req: }), qr{\Q$DENY\E: /t/req: no certificate; subject "-"},
     'reason: no certificate');
$m = log_mark();
is(status('/t/req', vhost => 'mtls_optional', cert => 'untrusted'), 403, 'unverified (optional_no_ca): 403');
like(log_wait($m, qr{\Q$DENY\E: /t/req: }), qr{\Q$DENY\E: /t/req: not verified: },
     'reason: not verified');
$m = log_mark();
is(plain_status('/t/req'), 403, 'plain HTTP: 403');
log_wait($m, qr{\Q$DENY\E: /t/req: });

# --- with other Require lines
is(status('/t/req-all-ip', cert => 'alice-a'), 200, '<RequireAll> mtls + ip 127.0.0.1: alice');
is(settled('/t/req-all-ip', cert => 'bob-a'), 403, '<RequireAll> mtls + ip 127.0.0.1: bob denied');
$m = log_mark();
is(status('/t/req-all-other-ip', cert => 'alice-a'), 403, '<RequireAll> mtls + another ip: alice denied by the ip');
sentinel();
is(denials(error_log_since($m)), 1, '... and no mtls_authz denial line for it (only the sentinel)');

is(status('/t/req-any-user', cert => 'alice-a'), 200, '<RequireAny> mtls + valid-user: alice without a password');
$m = log_mark();
is(status('/t/req-any-user', cert => 'bob-a', headers => $JOE), 200,
   '<RequireAny>: bob with a valid password');
$log = log_wait($m, qr{another Require line admitted});
like($log, qr{\[mtls_authz:debug\] .*Require mtls was not satisfied \(/t/req-any-user: no rule matched; $BOB},
     'debug line: not satisfied, admitted by another Require line');
sentinel();
is(denials(error_log_since($m)), 1, '... and no denial line for the admitted request');

$m = log_mark();
is(status('/t/req-any-user', cert => 'bob-a'), 401, '<RequireAny>: bob without a password is asked to log in (401)');
$log = log_wait($m, qr{\Q$DENY\E: /t/req-any-user: });
like($log, qr{\[mtls_authz:info\] .*\Q$DENY\E: /t/req-any-user: no rule matched; $BOB},
     'a login prompt is not final: the line is at info level');
unlike($log, qr{\[mtls_authz:error\]}, '... not at error level');

$m = log_mark();
is(status('/t/req-any-user', cert => 'bob-a', headers => $BAD), 401, '<RequireAny>: bob with a wrong password (401)');
like(log_wait($m, qr{\Q$DENY\E: /t/req-any-user: }),
     qr{\[mtls_authz:error\] .*\Q$DENY\E: /t/req-any-user: no rule matched},
     'after a failed login the line is at error level');

is(status('/t/req-not', cert => 'alice-a'), 403, 'Require not mtls: alice denied');
is(status('/t/req-not', cert => 'bob-a'), 200, 'Require not mtls: bob admitted');

# --- fail closed, and both ways at once
$m = log_mark();
is(status('/t/req-norule', cert => 'alice-a'), 403, 'Require mtls with no rule in scope: denied');
like(log_wait($m, qr{\Q$DENY\E: /t/req-norule: }),
     qr{\Q$DENY\E: /t/req-norule: Require mtls but no MTLSAllow\* rule applies here},
     'reason: no rule applies here');

is(status('/t/req-both', cert => 'alice-a'), 200, 'MTLSAuthz On and Require mtls: alice');
$m = log_mark();
is(status('/t/req-both', cert => 'bob-a'), 403, 'MTLSAuthz On and Require mtls: bob denied');
sentinel();
$log = error_log_since($m);
is(denials($log), 2, 'one denial line (from MTLSAuthz On) plus the sentinel');
like($log, qr{\Q$DENY\E: /t/req-both: no rule matched}, 'the line names /t/req-both');

# --- rule files, and what other modules see
is(status('/t/req-file', cert => 'alice-a'), 200, 'Require mtls with MTLSAllowFile: alice (subject=)');
is(status('/t/req-file', cert => 'carol-int'), 200, 'Require mtls with MTLSAllowFile: carol (pasted MTLSAllow)');
is(settled('/t/req-file', cert => 'bob-a'), 403, 'Require mtls with MTLSAllowFile: bob denied');

my (undef, undef, $head) = req('/t/req', cert => 'alice-a');
my ($rule) = $head =~ /^X-MTLS-Rule: (.*?)\r?$/m;
like($rule // '', qr{/extra\.conf:\d+$}, 'mtls_authz_matched_rule answers for Require mtls');
(undef, undef, $head) = req('/t/req-any-user', cert => 'bob-a', headers => $JOE);
($rule) = $head =~ /^X-MTLS-Rule: (.*?)\r?$/m;
is($rule // '', '-', '... and not for a request admitted by valid-user');

# --- keep-alive: each request on a connection decides for itself
{
    my $km = log_mark();
    my ($sock) = MTLS::connect_tls(cert => 'bob-a');
    my ($s1) = MTLS::get_on($sock, '/t/req-any-user', keepalive => 1, headers => $JOE);
    my ($s2) = MTLS::get_on($sock, '/t/req', keepalive => 1);
    my ($s3) = MTLS::get_on($sock, '/t/req-any-user');
    is("$s1 $s2 $s3", '200 403 401', 'one connection: password, no rule, no password');
    # the last request's line is written last
    log_wait($km, qr{\Q$DENY\E: /t/req-any-user: });
}
is(status('/t/req', cert => 'alice-a', tls => '1.2'), 200, 'TLS 1.2: alice admitted');

# --- HTTP/2 (curl, ALPN h2)
{
    my $run = sub {
        my ($cert, $path) = @_;
        my $m = log_mark();
        my $out = h2_status('mtls', $cert, $path);
        $out .= ' ' . (log_wait($m, qr{\Q$DENY\E: \Q$path\E: }) =~ /\[mtls_authz:error\] .*\Q$DENY\E: \Q$path\E: no rule matched/ ? 'logged' : 'not logged')
          if $out =~ /^403/;
        return $out;
    };
    is($run->('alice-a', '/t/req'), '200 2', 'HTTP/2: Require mtls grants alice');
    my $bob = $run->('bob-a', '/t/req');
    like($bob, qr/^403 2/, 'HTTP/2: Require mtls denies bob');
    like($bob, qr/ logged$/, 'HTTP/2: the denial line is written when the stream ends');
}
