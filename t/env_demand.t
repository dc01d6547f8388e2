# The identity variables on demand: which of httpd's consumers read
# MTLS_AUTHZ_RULE, MTLS_CLIENT_* for a request this module admitted, and
# that none of them reads anything for a request it did not admit (Audit,
# denied with an ErrorDocument, not enforced, the next request on a
# keep-alive connection). The environment (CGI, SSI, %{...}e) gets them
# only where MTLSExportEnv On is in scope.
#
# Every request goes through the same consumers (@CONSUMERS, in each
# <Location>: mod_rewrite's per-directory rules are not inherited), which
# report in response headers, a CGI's environment and the access log:
#   X-S, X-Rule-S, X-Uri-S  mod_headers %{MTLS_...}s (ssl_var_lookup hook)
#   X-Expr                  mod_headers expr=%{MTLS_CLIENT_SUBJECT} (expr_lookup hook)
#   X-Cond                  a Header set only if expr=-n %{MTLS_CLIENT_SUBJECT}
#   X-Expr-Ssl              expr=%{SSL:MTLS_CLIENT_SUBJECT} (mod_ssl's own lookup)
#   X-Expr-Dn               expr=%{SSL:SSL_CLIENT_S_DN}: control, mod_ssl answers it
#   X-Env                   %{MTLS_CLIENT_SUBJECT}e: the environment
#   X-If                    <If "-n %{MTLS_CLIENT_SUBJECT}"> (evaluated before access)
#   X-SetEnvIfExpr          SetEnvIfExpr (header_parser, before access)
#   SEEN_RW_SSL, _EXPR (CGI) per-directory RewriteRule E= from %{SSL:MTLS_...}
#                           and from RewriteCond expr (fixups)
#   SEEN_RW_HOST (CGI)      the same in a host-level rule (translate_name)
#   HTTP_X_REQ_S (CGI)      RequestHeader set from %{MTLS_CLIENT_SUBJECT}s
#   access log              %{...}e, %{...}x (mod_ssl's), and a note set
#                           by mod_headers from %{...}s
#
# Runs its own httpd (t/lib/OwnHttpd.pm).
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(slurp spew);
use OwnHttpd qw(header);

my $s = OwnHttpd->new(__FILE__, 'env_demand');
my $dir = $s->dir;
my $ALICE = '"subject=CN=alice,O=Acme Inc.,C=US"';
my $LOG = "$dir/access_log";

# The CGI backend: the environment entries a consumer may have set.
my $cgi = $s->write_env_cgi('demand.cgi', '^(REDIRECT_)?(MTLS_|SEEN_|HTTP_X_REQ_S=)');
# An SSI page: mod_include reads the environment.
$s->write_doc('ssi/index.shtml', qq{subject=<!--#echo var="MTLS_CLIENT_SUBJECT" -->\n});

my @CONSUMERS = (
    'RewriteEngine On',
    'RewriteRule ^ - [E=SEEN_RW_SSL:%{SSL:MTLS_CLIENT_SUBJECT}]',
    'RewriteCond expr "-n %{MTLS_CLIENT_SUBJECT}"',
    'RewriteRule ^ - [E=SEEN_RW_EXPR:yes]',
);

$s->add_header(modules => ['cgid', 'include']);
$s->add(qq{ScriptAliasMatch "^/(d|err)/" "$cgi"}, qq{<Directory "$dir/cgi">},
        '    Require all granted', '</Directory>',
        qq{<Directory "$dir/docs/ssi">}, '    Options +Includes', '    AddOutputFilter INCLUDES .shtml',
        '    DirectoryIndex index.shtml', '    Require all granted', '</Directory>',
        'LogFormat "%{X-Req}i %>s e=%{MTLS_CLIENT_SUBJECT}e x=%{MTLS_CLIENT_SUBJECT}x '
        . 'n=%{mtls_subject}n" demand');
$s->add_vhost;
$s->add(qq{    CustomLog "$LOG" demand},
        '    Header always set X-S "%{MTLS_CLIENT_SUBJECT}s"',
        '    Header always set X-Rule-S "%{MTLS_AUTHZ_RULE}s"',
        '    Header always set X-Uri-S "%{MTLS_CLIENT_SAN_URI_0}s"',
        '    Header always set X-Expr "expr=%{MTLS_CLIENT_SUBJECT}"',
        '    Header always set X-Cond yes "expr=-n %{MTLS_CLIENT_SUBJECT}"',
        '    Header always set X-Expr-Ssl "expr=%{SSL:MTLS_CLIENT_SUBJECT}"',
        '    Header always set X-Expr-Dn "expr=%{SSL:SSL_CLIENT_S_DN}"',
        '    Header always set X-Env "%{MTLS_CLIENT_SUBJECT}e"',
        '    Header always set X-SetEnvIfExpr "%{SEEN_SETENVIFEXPR}e"',
        '    SetEnvIfExpr "-n %{MTLS_CLIENT_SUBJECT}" SEEN_SETENVIFEXPR=yes',
        # mod_rewrite at host level: translate_name, before access.
        '    RewriteEngine On', '    RewriteRule ^ - [E=SEEN_RW_HOST:%{SSL:MTLS_CLIENT_SUBJECT}]',
        '    <If "-n %{MTLS_CLIENT_SUBJECT}">', '        Header always set X-If yes', '    </If>',
        '    RequestHeader set X-Req-S "%{MTLS_CLIENT_SUBJECT}s"',
        # Logging without the environment: mod_headers copies %{...}s
        # into a note, only for an admitted request.
        '    Header always set X-Log-Subject "%{MTLS_CLIENT_SUBJECT}s" '
        . '"expr=-n %{MTLS_CLIENT_SUBJECT}"',
        '    Header always note X-Log-Subject mtls_subject',
        '    Header always unset X-Log-Subject');
my %RULE;
$RULE{adm} = $s->add_location('/d/adm/', 'MTLSAuthz On', ">>MTLSAllow $ALICE", @CONSUMERS);
$RULE{on} = $s->add_location('/d/on/', 'MTLSAuthz On', ">>MTLSAllow $ALICE", 'MTLSExportEnv On',
                             @CONSUMERS);
# A child <Location> turns the export back off; the rule is inherited.
$s->add_location('/d/on/off/', 'MTLSExportEnv Off', @CONSUMERS);
$RULE{req} = $s->add_location('/d/req/', 'Require mtls', ">>MTLSAllow $ALICE", @CONSUMERS);
$s->add_location('/d/aud/', 'MTLSAuthz On', 'MTLSAuthzMode Audit', "MTLSAllow $ALICE",
                 @CONSUMERS);
$s->add_location('/d/deny/', 'MTLSAuthz On', "MTLSAllow $ALICE", 'ErrorDocument 403 /err/denied',
                 @CONSUMERS);
$s->add_location('/err/', @CONSUMERS);
# Export on where it does not enforce: nothing to export.
$s->add_location('/d/open/', 'MTLSExportEnv On', @CONSUMERS);
$RULE{ssi} = $s->add_location('/ssi/', 'MTLSAuthz On', ">>MTLSAllow $ALICE");
$s->add(qq{    <Directory "$dir/docs/ssi">}, '        MTLSExportEnv On', '    </Directory>');
$s->write_doc('ssi-off/index.shtml', qq{subject=<!--#echo var="MTLS_CLIENT_SUBJECT" -->\n});
$s->add(qq{    <Directory "$dir/docs/ssi-off">}, '        Options +Includes',
        '        AddOutputFilter INCLUDES .shtml', '        DirectoryIndex index.shtml',
        '        Require all granted', '    </Directory>');
$s->add_location('/ssi-off/', 'MTLSAuthz On', "MTLSAllow $ALICE");
$s->add('</VirtualHost>');
$s->start;

my $alice = $s->expected_env('alice-a', 'unused');
my $SUBJ = $alice->{MTLS_CLIENT_SUBJECT};
my $n = 0;
my %logged;    # X-Req => [what, expected log line]

# The value of a response header; undef when absent.
sub hv { header($_[0], $_[1]) }

# GET $path as $cert: (status, head, body, CGI environment as a hash).
sub get {
    my ($path, $cert, $what, %want_log) = @_;
    my $id = 'r' . ++$n;
    my ($st, $head, $body) = $s->request($path, cert => $cert, headers => "X-Req: $id\r\n");
    my %env = map { /^([A-Z0-9_]+)=(.*)$/ ? ($1 => $2) : () } split /\n/, $body;
    $logged{$id} = [$what, "$id $st $want_log{line}"] if $want_log{line};
    return ($st, $head, $body, \%env);
}

# Admitted by the module: every consumer that reaches the lookup sees
# alice's identity; those that run before access or read mod_ssl's own
# variables see nothing.
sub admitted {
    my ($path, $rule, $export, $what) = @_;
    my $e = $export ? $SUBJ : '-';
    my ($st, $head, $body, $env) = get($path, 'alice-a', $what,
                                       line => "e=$e x=- n=$SUBJ");
    is($st, 200, "$what: alice 200");
    like($body, qr/^backend=demand\.cgi$/m, "$what: the CGI ran");
    is(hv($head, 'X-S'), $SUBJ, "$what: mod_headers %{MTLS_CLIENT_SUBJECT}s");
    is(hv($head, 'X-Rule-S'), $rule, "$what: mod_headers %{MTLS_AUTHZ_RULE}s is the rule's file:line");
    is(hv($head, 'X-Uri-S'), $alice->{MTLS_CLIENT_SAN_URI_0}, "$what: mod_headers %{MTLS_CLIENT_SAN_URI_0}s");
    is(hv($head, 'X-Expr'), $SUBJ, "$what: mod_headers expr=%{MTLS_CLIENT_SUBJECT}");
    is(hv($head, 'X-Cond'), 'yes', "$what: a Header condition expr=-n %{MTLS_CLIENT_SUBJECT} holds");
    is($env->{HTTP_X_REQ_S}, $SUBJ, "$what: RequestHeader from %{MTLS_CLIENT_SUBJECT}s reaches the CGI");
    is($env->{SEEN_RW_SSL}, $SUBJ, "$what: per-directory RewriteRule E= from %{SSL:MTLS_CLIENT_SUBJECT}");
    is($env->{SEEN_RW_EXPR}, 'yes', "$what: per-directory RewriteCond expr \"-n %{MTLS_CLIENT_SUBJECT}\" holds");
    is(hv($head, 'X-Expr-Dn'), $SUBJ, "$what: expr=%{SSL:SSL_CLIENT_S_DN} (control: mod_ssl answers its own)");
    is(hv($head, 'X-Expr-Ssl') // 'absent', '',
       "$what: expr=%{SSL:MTLS_CLIENT_SUBJECT} is empty: mod_ssl's own lookup, not the hook");
    is($env->{SEEN_RW_HOST}, '', "$what: a host-level RewriteRule E= from %{SSL:MTLS_CLIENT_SUBJECT} "
       . 'is empty (translate_name, before access)');
    ok(!defined hv($head, 'X-If'), "$what: <If \"-n %{MTLS_CLIENT_SUBJECT}\"> is false (evaluated before access)");
    is(hv($head, 'X-SetEnvIfExpr'), '(null)', "$what: SetEnvIfExpr sees nothing (runs before access)");
    my @mtls = sort grep { /^MTLS_/ } keys %$env;
    if ($export) {
        is_deeply({ map { $_ => $env->{$_} } @mtls }, { %$alice, MTLS_AUTHZ_RULE => $rule },
                  "$what: MTLSExportEnv On: the CGI sees every MTLS_* variable") or diag($body);
        is(hv($head, 'X-Env'), $SUBJ, "$what: MTLSExportEnv On: mod_headers %{MTLS_CLIENT_SUBJECT}e");
    }
    else {
        is("@mtls", '', "$what: MTLSExportEnv Off: the CGI sees no MTLS_* variable") or diag($body);
        is(hv($head, 'X-Env'), '(null)', "$what: MTLSExportEnv Off: %{MTLS_CLIENT_SUBJECT}e is unset");
    }
}

# Not admitted by the module: no consumer sees an identity.
sub nothing {
    my ($path, $cert, $want, $what) = @_;
    my ($st, $head, $body, $env) = get($path, $cert, $what, line => 'e=- x=- n=-');
    is($st, $want, "$what: $want");
    like($body, qr/^backend=demand\.cgi$/m, "$what: the " . ($want == 200 ? 'CGI' : 'ErrorDocument CGI')
         . ' ran');
    is(hv($head, 'X-S'), '(null)', "$what: mod_headers %{MTLS_CLIENT_SUBJECT}s is (null)");
    is(hv($head, 'X-Rule-S'), '(null)', "$what: mod_headers %{MTLS_AUTHZ_RULE}s is (null)");
    is(hv($head, 'X-Expr') // 'absent', '', "$what: expr=%{MTLS_CLIENT_SUBJECT} is empty");
    ok(!defined hv($head, 'X-Cond'), "$what: the Header condition -n %{MTLS_CLIENT_SUBJECT} is false");
    is($env->{HTTP_X_REQ_S}, '(null)', "$what: RequestHeader from %{MTLS_CLIENT_SUBJECT}s is (null)");
    is($env->{SEEN_RW_SSL}, '', "$what: RewriteRule E= from %{SSL:MTLS_CLIENT_SUBJECT} is empty");
    ok(!exists $env->{SEEN_RW_EXPR}, "$what: RewriteCond expr -n %{MTLS_CLIENT_SUBJECT} is false");
    is(hv($head, 'X-Env'), '(null)', "$what: %{MTLS_CLIENT_SUBJECT}e is unset");
    my @mtls = sort grep { /MTLS_/ } keys %$env;
    is("@mtls", '', "$what: the CGI sees no MTLS_* or REDIRECT_MTLS_* variable") or diag($body);
}

admitted('/d/adm/x', $RULE{adm}, 0, 'adm (MTLSAuthz On, export Off)');
admitted('/d/req/x', $RULE{req}, 0, 'req (Require mtls, export Off)');
admitted('/d/on/x', $RULE{on}, 1, 'on (MTLSExportEnv On)');
admitted('/d/on/off/x', $RULE{on}, 0, 'on/off (a child <Location> sets MTLSExportEnv Off)');

is(($s->request('/d/adm/x', cert => 'bob-a'))[0], 403, 'adm: bob 403');
my $mark = $s->log_mark;
nothing('/d/aud/x', 'bob-a', 200, 'aud (admitted by Audit mode only)');
like($s->log_since($mark), qr/AUDIT \(admitted\): client denied by server configuration: \/d\/aud\/x/,
     'aud: admitted by Audit mode only (precondition)');
nothing('/d/deny/x', 'bob-a', 403, 'deny (ErrorDocument 403 is a CGI)');
nothing('/d/open/x', 'alice-a', 200, 'open (not enforced, MTLSExportEnv On)');

# Keep-alive: the identity of one request is not the next one's.
{
    my ($sock, $why) = $s->tls_connect(cert => 'alice-a');
    ok($sock, 'keep-alive: connected') or diag($why);
    if ($sock) {
        my @r1 = $s->get_on($sock, '/d/adm/x', keepalive => 1);
        my @r2 = $s->get_on($sock, '/d/open/x');
        is($r1[0], 200, 'keep-alive: the first request, admitted: 200');
        is(hv($r1[2] // '', 'X-S'), $SUBJ, 'keep-alive: ... with %{MTLS_CLIENT_SUBJECT}s');
        is($r2[0], 200, 'keep-alive: the second, not enforced, on the same connection: 200');
        is(hv($r2[2] // '', 'X-S'), '(null)',
           'keep-alive: ... and %{MTLS_CLIENT_SUBJECT}s is (null), not the first request\'s');
        $sock->close(SSL_fast_shutdown => 1);
    }
}

# SSI: mod_include reads the environment.
{
    my ($st, $body) = $s->get('/ssi/', cert => 'alice-a');
    is($st, 200, 'ssi: alice 200');
    like($body, qr/^subject=\Q$SUBJ\E$/m, 'ssi: MTLSExportEnv On in a <Directory>: '
         . '<!--#echo var="MTLS_CLIENT_SUBJECT" --> shows it') or diag($body);
    ($st, $body) = $s->get('/ssi-off/', cert => 'alice-a');
    is($st, 200, 'ssi-off: alice 200');
    like($body, qr/^subject=\(none\)$/m, 'ssi-off: without MTLSExportEnv On it is (none)')
      or diag($body);
}

# The access log: %{...}e only with MTLSExportEnv On, %{...}x never
# (mod_ssl's own lookup), the note from %{...}s always.
{
    my $text = '';
    for (1 .. 100) {    # written after the response
        $text = slurp($LOG);
        last if $text =~ /^r$n /m;
        select(undef, undef, undef, 0.1);
    }
    for my $id (sort { substr($a, 1) <=> substr($b, 1) } keys %logged) {
        my ($what, $want) = @{ $logged{$id} };
        my ($line) = $text =~ /^(\Q$id\E .*)$/m;
        is($line // 'no line', $want, "access log, $what");
    }
}

$s->stop;
done_testing();
