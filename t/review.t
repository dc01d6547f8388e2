# Adversarial review of the access decision: lower-trust places (an
# .htaccess, its <If> and Satisfy, <Limit>, a client's header copied
# into the MTLS_ namespace, a client that sends no SNI) and state that
# outlives what it was built for (a negated Require's grant, the
# variables between the module's two fixups passes, h2 streams).
#
# Each case asserts what the module answers. Those that the review found
# wrong (a negated Require's grant exported; a client's header reaching
# mod_headers through the MTLS_ namespace) are fixed; those that are
# mod_authz_core's and mod_access_compat's design (an .htaccess may
# replace Require lines and set Satisfy Any) are asserted as reference.md
# documents them, next to MTLSAuthz On, which holds. The <Limit> cases
# are refusals at startup, in t/config_errors.t.
#
# Runs its own httpd (t/lib/OwnHttpd.pm): name-based virtual hosts on
# one port, .htaccess files, and a response header that shows which
# MTLS_* variables a request ended with.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(slurp);
use OwnHttpd qw(var_header env_of or_loopback);

my $s = OwnHttpd->new(__FILE__, 'review');
my $dir = $s->dir;
my $ALICE = '"CN=alice,O=Acme Inc.,C=US"';
my $BOB = '"CN=bob,O=Acme Inc.,C=US"';

$s->add_header(modules => ['headers', 'access_compat', 'rewrite', 'cgid']);
$s->add('<AuthzProviderAlias mtls nalias>', "    MTLSAllowSubject $ALICE",
        '</AuthzProviderAlias>');
# Every response tells which rule and subject the request was admitted
# with, so that a case can see variables a backend would see: read on
# demand (%{...}s), and from the environment (X-Rule-E: the default host
# has MTLSExportEnv On).
$s->add('Header always set X-Rule "%{MTLS_AUTHZ_RULE}s"',
        'Header always set X-Subject "%{MTLS_CLIENT_SUBJECT}s"',
        'Header always set X-Issuer "%{MTLS_CLIENT_ISSUER_SHA256}s"',
        'Header always set X-Rule-E "%{MTLS_AUTHZ_RULE}e"');

# ---- the default host: the one a client without SNI handshakes with ----
$s->add_vhost;
$s->add('    Protocols h2 http/1.1', '    MTLSExportEnv On');
$s->add(qq{    <Directory "$dir/docs">}, '        AllowOverride AuthConfig',
        '        Require all granted', '        DirectoryIndex index.html', '    </Directory>');

# Documented: an .htaccess <If> is merged after <Location>, so its
# Require lines replace the <Location>'s (mod_authz_core's AuthMerging
# Off). MTLSAuthz On holds.
$s->add_area('if-require', ['<If "true">', 'Require all granted', '</If>'],
             'Require mtls', "MTLSAllowSubject $ALICE");
$s->add_area('if-gate', ['<If "true">', 'Require all granted', '</If>'],
             'MTLSAuthz On', "MTLSAllowSubject $ALICE");
# Control: the same without <If> is kept (htaccess.t has it too).
$s->add_area('plain-require', ['Require all granted'], 'Require mtls', "MTLSAllowSubject $ALICE");

# Documented: Satisfy (AuthConfig) from an .htaccess is inherited by the
# <Location>, and mod_access_compat with no Allow/Deny line says OK:
# under Satisfy Any httpd then asks no Require line at all.
$s->add_area('satisfy', ['Satisfy Any'], 'Require mtls', "MTLSAllowSubject $ALICE");
# Holds: MTLSAuthz On is final under Satisfy Any, from an .htaccess too.
$s->add_area('satisfy-gate', ['Satisfy Any'], 'MTLSAuthz On', "MTLSAllowSubject $ALICE");

# State (fails on main): "Require not mtls" is asked, the rules grant,
# mod_authz_core negates; the request is then admitted by another
# Require line. The module must not export an identity "admitted by"
# the deny-list rule (it records the negated grant as st->granted).
my $neg_line;
{
    $s->write_doc('neg/index.html', "neg\n");
    $neg_line = $s->add_location('/neg/', or_loopback('Require not mtls'),
                                 ">>MTLSAllowSubject $ALICE");
}

# The MTLS_ namespace between the module's fixups passes: a
# per-directory RewriteRule [E=] (mod_rewrite's fixups, FIRST) copies a
# client's header into MTLS_CLIENT_SUBJECT; mod_headers' RequestHeader
# (fixups, LAST) forwards it. The module checks its variables again just
# before mod_headers, so the backend (a CGI here, a proxied service in
# the cookbook's recipe) gets the module's value in the header.
{
    my $cgi = $s->write_subject_cgi("$dir/cgi/hdr.cgi");
    $s->add(qq{    ScriptAliasMatch "^/fwd/" "$cgi"}, qq{    <Directory "$dir/cgi">},
            '        Require all granted', '    </Directory>',
            '    <Location /fwd/>', '        MTLSAuthz On', "        MTLSAllowSubject $ALICE",
            '        RewriteEngine On',
            '        RewriteRule ^ - [E=MTLS_CLIENT_SUBJECT:%{HTTP:X-Preset}]',
            '        RequestHeader unset X-Client-Subject',
            '        RequestHeader set X-Client-Subject "%{MTLS_CLIENT_SUBJECT}e" '
            . 'env=MTLS_CLIENT_SUBJECT',
            '    </Location>');
}

# HTTP/2: streams of one connection run in parallel threads and share
# the master connection's identity; each must be decided with its own
# location's rules.
my %H2RULE;
{
    $s->write_doc("h2$_/index.html", "h2$_\n") for qw(a b c);
    $s->add('    <Location /h2a/>', '        MTLSAuthz On');
    $H2RULE{a} = $s->rule_at($s->add("        MTLSAllowSubject $ALICE"));
    $s->add('    </Location>', '    <Location /h2b/>', '        Require mtls');
    $H2RULE{b} = $s->rule_at($s->add("        MTLSAllowSubject $BOB"));
    $s->add('    </Location>');
}

# The CGI environment: were httpd to turn the characters of a variable's
# name that are not letters or digits into '_', "MTLS-CLIENT-SUBJECT"
# (which the module's scrub leaves alone) would reach a CGI as
# MTLS_CLIENT_SUBJECT beside the module's own. httpd 2.4.71 leaves such
# names out of a CGI's environment; this holds that. A SetEnvIf from a
# request header, as in t/env_scope.t; the response header proves the
# variable was set.
{
    my $env_cgi = $s->write_env_cgi;
    $s->add(qq{    ScriptAliasMatch "^/dash/" "$env_cgi"},
            '    <Location /dash/>', '        MTLSAuthz On', "        MTLSAllowSubject $ALICE",
            '        SetEnvIf X-Preset "(.+)" MTLS-CLIENT-SUBJECT=$1 mtls.authz.rule=$1',
            '        Header always set X-Dash "%{MTLS-CLIENT-SUBJECT}e"',
            '    </Location>');
}

# <RequireNone> negates what it holds, as "Require not" does (mod_authz_core
# turns it into negated lines): a grant of Require mtls there refuses, and
# a request let in by another Require line was not admitted by this
# module. The same for an alias of mtls; an alias negated somewhere is
# never taken as an admission, even where it is not negated.
my ($none_line, $nalias_line);
{
    $s->write_doc("$_/index.html", "$_\n") for qw(none-neg none-alias alias-pos);
    # Require $_[0] inside <RequireNone>, beside Require ip.
    my $none = sub { or_loopback('<RequireNone>', "    Require $_[0]", '</RequireNone>') };
    $none_line = $s->add_location('/none-neg/', $none->('mtls'), ">>MTLSAllowSubject $ALICE");
    $s->add_location('/none-alias/', $none->('nalias'));
    $s->add_location('/alias-pos/', 'Require nalias');
}

# A deny list: "Require not mtls" refuses the clients the rules admit,
# and the module says which rule; under Audit it abstains and says so.
my ($deny_line, $deny_audit_line);
{
    $s->write_doc("$_/index.html", "$_\n") for qw(deny-list deny-audit);
    my @deny = ('<RequireAll>', '    Require all granted', '    Require not mtls',
                '</RequireAll>', ">>MTLSAllowSubject $ALICE");
    $deny_line = $s->add_location('/deny-list/', @deny);
    $deny_audit_line = $s->add_location('/deny-audit/', 'MTLSAuthzMode Audit', @deny);
}

# A request that another module refuses (here Require ip, beside a
# Require mtls that the rules grant) never reaches the module's fixups:
# its access check already removed what SetEnvIf put in the namespace,
# so the ErrorDocument and the access log see none of it.
{
    my $env_cgi = $s->write_env_cgi;
    $s->write_doc('other-deny/index.html', "other-deny\n");
    $s->add(qq{    ScriptAlias /errdoc/ "$dir/cgi/"},
            '    <Location /other-deny/>', '        SetEnvIf X-Preset "(.+)" MTLS_CLIENT_SUBJECT=$1',
            '        <RequireAll>', '            Require mtls', '            Require ip 192.0.2.1',
            '        </RequireAll>', "        MTLSAllowSubject $ALICE",
            '        ErrorDocument 403 /errdoc/env.cgi', '    </Location>',
            qq{    CustomLog "$dir/review_log" "%U %>s subj=%{MTLS_CLIENT_SUBJECT}e"});
}

# Holds: .htaccess Require mtls with the server's rules in scope: both.
$s->add_area('ht-require-both', ['Require mtls', "MTLSAllowSubject $BOB"],
             "MTLSAllowSubject $ALICE");
$s->add('</VirtualHost>');

# ---- b.test: trusts CA B only, admits alice by subject ----------------
$s->add_vhost(name => 'b.test', trust => 'ca-b.crt');
$s->add('    <Location /b/>', '        MTLSAuthz On', "        MTLSAllowSubject $ALICE",
        '    </Location>',
        '    <Location /b-req/>', '        Require mtls', "        MTLSAllowSubject $ALICE",
        '    </Location>',
        '</VirtualHost>');
$s->write_doc("b/index.html", "b\n");
$s->write_doc("b-req/index.html", "b-req\n");
$s->start;


# ---- .htaccess <If> and Require, .htaccess Satisfy Any ----------------------
# [path, client, status, what]
for (['/if-require/', 'alice-a', 200, 'if-require: alice 200'],
     ['/if-require/', 'bob-a', 200, 'if-require (documented, mod_authz_core): .htaccess '
      . '<If> Require all granted replaces a <Location>\'s Require mtls: bob 200'],
     ['/if-gate/', 'bob-a', 403, 'if-gate: the same .htaccess under MTLSAuthz On: bob 403'],
     ['/plain-require/', 'bob-a', 403, 'plain-require (control): .htaccess Require all '
      . 'granted under <Location> Require mtls: bob 403'],
     ['/satisfy/', 'alice-a', 200, 'satisfy: alice 200'],
     ['/satisfy/', 'bob-a', 200, 'satisfy (documented, mod_access_compat): .htaccess '
      . '"Satisfy Any" under a <Location> with Require mtls: bob 200'],
     ['/satisfy-gate/', 'bob-a', 403, 'satisfy-gate (holds, not covered before): .htaccess '
      . 'Satisfy Any under MTLSAuthz On: bob 403']) {
    is($s->status($_->[0], cert => $_->[1]), $_->[2], $_->[3]);
}

# ---- the namespace between the two fixups passes ------------------------
{
    my ($st, $head, $body) = $s->request('/fwd/x', cert => 'alice-a',
                                 headers => "X-Preset: CN=admin,O=Acme Inc.,C=US\r\n");
    is($st, 200, 'fwd: alice admitted');
    like($body, qr/^env=CN=alice,O=Acme Inc\.,C=US$/m,
         'fwd: the backend\'s MTLS_CLIENT_SUBJECT is alice\'s');
    like($body, qr/^hdr=CN=alice,O=Acme Inc\.,C=US$/m,
         'fwd: the X-Client-Subject header set from MTLS_CLIENT_SUBJECT is alice\'s, '
         . 'not what the client sent in X-Preset') or diag($body);
    ($st, undef, $body) = $s->request('/fwd/x', cert => 'bob-a',
                              headers => "X-Preset: CN=alice,O=Acme Inc.,C=US\r\n");
    is($st, 403, 'fwd: bob refused (the gate runs before any of it)');
}

{
    my ($st, $head, $body) = $s->request('/dash/x', cert => 'alice-a',
                                 headers => "X-Preset: CN=admin,O=Acme Inc.,C=US\r\n");
    is($st, 200, 'dash: alice admitted');
    is(var_header($head, 'X-Dash'), 'CN=admin,O=Acme Inc.,C=US',
       'dash: the request has the client\'s MTLS-CLIENT-SUBJECT (precondition)');
    my $env = env_of($body);
    is_deeply($env->{MTLS_CLIENT_SUBJECT}, ['CN=alice,O=Acme Inc.,C=US'],
              'dash (holds, not covered before): the CGI sees one MTLS_CLIENT_SUBJECT, alice\'s, not also the '
              . 'client\'s MTLS-CLIENT-SUBJECT') or diag($body);
    is(scalar @{ $env->{MTLS_AUTHZ_RULE} // [] }, 1,
       'dash (holds): ... and one MTLS_AUTHZ_RULE (not also mtls.authz.rule)') or diag($body);
}

# ---- Require not mtls -------------------------------------------------------
{
    my ($st, $head) = $s->request('/neg/', cert => 'alice-a');
    is($st, 200, 'neg: alice admitted by Require ip');
    my $rule = var_header($head, 'X-Rule');
    is($rule, '', 'neg: a request that "Require not mtls" refused and Require ip admitted '
       . 'exports no MTLS_AUTHZ_RULE') or diag("X-Rule: $rule (the deny-list rule is $neg_line)");
    is(var_header($head, 'X-Rule-E'), '', 'neg: ... not in the environment either');
    my $subj = var_header($head, 'X-Subject');
    is($subj, '', 'neg: ... and no MTLS_CLIENT_SUBJECT');
    ($st, $head) = $s->request('/neg/', cert => 'bob-a');
    is($st, 200, 'neg: bob admitted');
    is(var_header($head, 'X-Rule'), '', 'neg: bob: no MTLS_AUTHZ_RULE');
}

# ---- <RequireNone>, negated aliases ------------------------------------------
{
    my ($st, $head) = $s->request('/none-neg/', cert => 'alice-a');
    is($st, 200, 'none-neg: alice admitted by Require ip');
    is(var_header($head, 'X-Rule'), '', 'none-neg: Require mtls inside <RequireNone> granted '
       . 'for alice is no admission: no MTLS_AUTHZ_RULE') or diag("deny-list rule: $none_line");
    is(var_header($head, 'X-Rule-E'), '', 'none-neg: ... not in the environment either');
    is(var_header($head, 'X-Subject'), '', 'none-neg: ... and no MTLS_CLIENT_SUBJECT');
    ($st, $head) = $s->request('/none-alias/', cert => 'alice-a');
    is($st, 200, 'none-alias: alice admitted by Require ip');
    is(var_header($head, 'X-Rule'), '',
       'none-alias: an alias inside <RequireNone>: no MTLS_AUTHZ_RULE');
    ($st, $head) = $s->request('/alias-pos/', cert => 'alice-a');
    is($st, 200, 'alias-pos: alice admitted by the alias, not negated here');
    is(var_header($head, 'X-Rule'), '', 'alias-pos: an alias negated elsewhere exports nothing '
       . '(documented: mod_authz_core names only the alias)');
    is($s->status('/alias-pos/', cert => 'bob-a'), 403, 'alias-pos: bob refused');
}

# ---- a deny list ----------------------------------------------------------------
{
    my $mark = $s->log_mark;
    is($s->status('/deny-list/', cert => 'alice-a'), 403, 'deny-list: alice, listed, refused');
    is($s->status('/deny-list/', cert => 'bob-a'), 200, 'deny-list: bob, not listed, admitted');
    # The line is written when the request ends (after the answer).
    my $re = qr{\[mtls_authz:error\] .*client denied by server configuration: /deny-list/: listed by rule \Q$deny_line\E \(negated Require mtls\); subject "CN=alice,};
    my $log = '';
    for (1 .. 50) {
        $log = $s->log_since($mark);
        last if $log =~ $re;
    }
    like($log, $re, 'deny-list: the error log names the rule that listed alice');
    $mark = $s->log_mark;
    is($s->status('/deny-audit/', cert => 'alice-a'), 200,
       'deny-audit: under Audit the negated line abstains: alice admitted');
    like($s->log_since($mark), qr{\[mtls_authz:warn\] .*AUDIT \(admitted\): client denied by server configuration: /deny-audit/: listed by rule \Q$deny_audit_line\E \(negated Require mtls\)},
         'deny-audit: ... and the AUDIT line says which rule would have refused her');
}

# ---- a request another module refuses ---------------------------------------
{
    my ($st, undef, $body) = $s->request('/other-deny/', cert => 'alice-a',
                                 headers => "X-Preset: CN=admin,O=Acme Inc.,C=US\r\n");
    is($st, 403, 'other-deny: alice refused by Require ip');
    like($body, qr/^backend=env\.cgi$/m, 'other-deny: the ErrorDocument CGI ran');
    unlike($body, qr/MTLS_/, 'other-deny: it sees no MTLS_* and no REDIRECT_MTLS_* '
           . 'variable from the client') or diag($body);
    sleep 1;
    like(slurp("$dir/review_log"), qr{^/other-deny/ 403 subj=-$}m,
         'other-deny: the access log shows no MTLS_CLIENT_SUBJECT from the client');
}

# ---- .htaccess Require mtls beside the server's rules ---------------------
is($s->status('/ht-require-both/', cert => 'alice-a'), 403,
   'ht-require-both (holds): .htaccess Require mtls + bob gate, server rule alice: alice 403');
is($s->status('/ht-require-both/', cert => 'bob-a'), 403,
   'ht-require-both (holds): bob 403 (the server rule still applies)');

# ---- HTTP/2: many parallel streams on one connection ------------------------
for my $cert ('alice-a', 'bob-a') {
    my @urls = map { ('/h2a/', '/h2b/', '/h2c/')[$_ % 3] . "?n=$_" } 0 .. 59;
    my $out = "$dir/h2-$cert.out";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', $out or exit 126;
        open STDERR, '>', "$out.err" or exit 126;
        exec 'curl', '-sk', '--http2', '--parallel', '--parallel-max', '30', '--max-time', '60',
          '--cert', $s->pki("$cert.pem"),
          '-w', '%{http_version} %{url_effective} %{http_code} [%header{x-rule}] '
          . '[%header{x-rule-e}]\n',
          map { ('-o', '/dev/null', 'https://localhost:' . $s->port . $_) } @urls;
        exit 127;
    }
    waitpid($pid, 0);
    my @lines = split /\n/, slurp($out);
    is(scalar @lines, 60, "h2 $cert: 60 responses") or diag(slurp("$out.err"));
    my @bad;
    my $h2 = 0;
    for (@lines) {
        my ($ver, $url, $code, $rule, $rule_e) = /^(\S+) \S+?(\/h2.\/)\?n=\d+ (\d+) \[(.*?)\] \[(.*?)\]$/
          or do { push @bad, "unparsed: $_"; next };
        $h2++ if $ver eq '2';
        my $who = $cert eq 'alice-a' ? 'alice' : 'bob';
        $rule = '' if $rule eq '(null)';
        $rule_e = '' if $rule_e eq '(null)';
        my ($want, $wrule) = $url eq '/h2a/' ? ($who eq 'alice' ? (200, $H2RULE{a}) : (403, ''))
                           : $url eq '/h2b/' ? ($who eq 'bob' ? (200, $H2RULE{b}) : (403, ''))
                           : (200, '');
        push @bad, "$url: $code rule=[$rule] environment=[$rule_e], want $want rule=[$wrule]"
          if $code != $want || $rule ne $wrule || $rule_e ne $wrule;
    }
    is($h2, 60, "h2 $cert: every response over HTTP/2");
    ok(!@bad, "h2 $cert: each stream decided with its own location's rules, on demand and "
       . 'in the environment (holds; parallel streams were not covered)') or diag(join "\n", @bad);
}

# ---- no SNI: the handshake's host is not the request's ---------------------
{
    is($s->status('/b/', cert => 'alice-b', sni => 'b.test', host => 'b.test'), 200,
       'b.test: alice from CA B with SNI b.test: 200');
    is($s->status('/b/', cert => 'alice-a', sni => 'b.test', host => 'b.test'), 0,
       'b.test: alice from CA A with SNI b.test: the handshake fails');
    my ($st, $head) = $s->request('/b/', cert => 'alice-a', sni => undef, host => 'b.test');
    # mod_ssl 2.4.71 answers 421 itself: the default host that made the
    # handshake and b.test have incompatible TLS settings.
    is($st, 421, 'no-SNI (holds, not covered before): alice from CA A, verified by the '
       . 'default host, Host b.test (trusts CA B only): 421, not admitted') or diag($head);
    ($st, $head) = $s->request('/b-req/', cert => 'alice-a', sni => undef, host => 'b.test');
    is($st, 421, 'no-SNI (holds): the same with Require mtls: 421') or diag($head);
}

$s->stop;
done_testing();
