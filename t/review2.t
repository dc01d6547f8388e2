# Second adversarial review: what the fixes of the first review added
# (how the provider knows a negated Require line, the fixups passes
# around mod_headers, the <Limit> refusal, the startup warnings that
# walk the configuration tree) and what neither review tried before.
#
# Negation: mod_authz_core negates a provider's answer for "Require not"
# lines AND for every line inside <RequireNone>, and a negated section
# never yields a grant. A grant under any negation is not this module
# admitting the request, so a request that another Require line lets in
# must not be exported as "admitted by" the rule. The provider knows a
# line's negations from the line and its sections; an alias it knows only
# by name, so an alias that some line of the server configuration negates
# is never taken as an admission, and one negated only in an .htaccess is
# not seen (both documented in docs/reference.md).
#
# The MTLS_ namespace after the fixups phase: a handler (SSI #set here)
# sets MTLS_* before mod_log_config; the module's values are put back.
# During fixups: a renegotiation to another certificate after the
# identity was exported refuses the request.
#
# Startup: check_config walks the whole tree (macros, Include of a
# directory, deep nesting, sections without arguments) for the warnings
# and the negated aliases; `httpd -t` must survive any tree httpd itself
# accepts.
#
# Runs its own httpd (t/lib/OwnHttpd.pm) and httpd -t on a second
# configuration.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use File::Path qw(make_path);
use FindBin ();
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(slurp spew describe_status config_test $CRASH);
use OwnHttpd qw(var_header or_loopback);

my $s = OwnHttpd->new(__FILE__, 'review2');
my $dir = $s->dir;
my $ALICE = '"CN=alice,O=Acme Inc.,C=US"';
my $ALICE_DN = 'CN=alice,O=Acme Inc.,C=US';
my $LOG = "$dir/access_log";

$s->add_header(modules => ['include']);
$s->add('Header always set X-Rule "%{MTLS_AUTHZ_RULE}e"',
        'Header always set X-Subject "%{MTLS_CLIENT_SUBJECT}e"',
        'LogFormat "%U %>s subj=\"%{MTLS_CLIENT_SUBJECT}e\" rule=\"%{MTLS_AUTHZ_RULE}e\"" r2');

# Aliases (main server only: <AuthzProviderAlias> is GLOBAL_ONLY).
# mtls-srv: negated by a Require line of the server configuration and
#           used plainly elsewhere;
# mtls-ht:  negated only in an .htaccess;
# mtls-none: inside a <RequireNone> only;
# mtls-ok:  never negated (control).
my %ARULE;
for my $a (qw(srv ht none ok)) {
    $s->add("<AuthzProviderAlias mtls mtls-$a>");
    $ARULE{$a} = $s->rule_at($s->add("    MTLSAllowSubject $ALICE"));
    $s->add('</AuthzProviderAlias>');
}

my %LRULE; # location => its own rule's file:line

# A location /$name/ with @loc and a rule for alice, recorded in %LRULE.
sub alice_area {
    my ($name, @loc) = @_;
    $LRULE{$name} = $s->add_area($name, undef, @loc, ">>MTLSAllowSubject $ALICE");
}

$s->add_vhost;
# The headers and the log read the identity from the environment.
$s->add(qq{    CustomLog "$LOG" r2}, '    MTLSExportEnv On');
$s->add(qq{    <Directory "$dir/docs">}, '        AllowOverride AuthConfig',
        '        Require all granted', '        DirectoryIndex index.html', '    </Directory>');

# a grant inside <RequireNone>, which mod_authz_core
# turns into a denial; Require ip then admits the request.
alice_area('none', or_loopback('<RequireNone>', '    Require mtls', '</RequireNone>'));

# The same with an alias of the provider inside <RequireNone> (one that
# no "Require not" line names).
alice_area('none-alias',
           or_loopback('<RequireNone>', '    Require mtls-none', '</RequireNone>'));

# Holds (the first review's fix): "Require not <alias>" in the server
# configuration.
alice_area('srv-neg', or_loopback('Require not mtls-srv'));

# the same in an .htaccess, with an alias that no Require
# line of the server configuration negates.
$s->add_area('ht-neg', [or_loopback('Require not mtls-ht')]);

# a plain "Require mtls-srv" is treated as negated
# because /srv-neg/ negates that alias (/alias-srv/): an admitted client gets no
# identity variables, and a refused one no denial line.
alice_area('alias-srv', 'Require mtls-srv');
# Control: the same with an alias nobody negates.
alice_area('alias-ok', 'Require mtls-ok');

# (docs/identity.md: "mod_headers, a handler (CGI, SSI, PHP,
# mod_proxy) and mod_log_config see the module's values or none"): a
# page's own SSI "#set" sets MTLS_CLIENT_SUBJECT after the last fixups
# pass, and the access log records it.
$s->write_doc('ssi/page.shtml',
              qq{<!--#set var="MTLS_CLIENT_SUBJECT" value="CN=admin,O=Acme Inc.,C=US" -->page\n});
$LRULE{ssi} = $s->add_location('/ssi/', 'MTLSAuthz On', ">>MTLSAllowSubject $ALICE",
                               'Options +Includes', 'AddOutputFilter INCLUDES .shtml');

$s->add('</VirtualHost>');
$s->start;


# ---- grants under a negated section -----------------------------------------
for my $area (qw(none none-alias)) {
    my ($st, $head) = $s->request("/$area/", cert => 'alice-a');
    is($st, 200, "$area: alice admitted by the other Require line");
    is(var_header($head, 'X-Rule'), '',
       "$area: the mtls grant inside a negated section only "
       . 'counted against alice: no MTLS_AUTHZ_RULE')
      or diag('X-Rule: ' . var_header($head, 'X-Rule') . ' (the rules of the negated line: '
              . "$LRULE{$area}, $ARULE{ok})");
    is(var_header($head, 'X-Subject'), '', "$area: ... and no MTLS_CLIENT_SUBJECT");
    ($st, $head) = $s->request("/$area/", cert => 'bob-a');
    is($st, 200, "$area: bob admitted");
    is(var_header($head, 'X-Rule'), '', "$area: bob: no MTLS_AUTHZ_RULE");
}

# ---- Require not <alias> -------------------------------------------------------
{
    my ($st, $head) = $s->request('/srv-neg/', cert => 'alice-a');
    is($st, 200, 'srv-neg: alice admitted by Require ip');
    is(var_header($head, 'X-Rule'), '',
       'srv-neg (holds): "Require not <alias>" in the server configuration exports nothing');

    ($st, $head) = $s->request('/ht-neg/', cert => 'alice-a');
    is($st, 200, 'ht-neg: alice admitted by Require ip (.htaccess)');
    # Documented limit: mod_authz_core tells the provider only an alias's
    # name, and the negated aliases are read from the server
    # configuration tree, which holds no .htaccess. The grant exports the
    # (genuine, verified) identity with the alias's rule; nobody gets in.
    is(var_header($head, 'X-Rule'), $ARULE{ht},
       'ht-neg (documented): "Require not <alias>" in an .htaccess is not seen as negated: '
       . 'the alias\'s rule is exported');
    is(var_header($head, 'X-Subject'), $ALICE_DN, 'ht-neg (documented): ... with alice\'s subject');
}

# ---- a plain use of an alias negated elsewhere -----------------------------------
# An alias that some line negates never counts as an admission (documented:
# mod_authz_core tells the provider only the alias's name), but its
# denials are logged as any.
for my $a (qw(ok srv)) {
    my $area = "alias-$a";
    my $tag = $a eq 'ok' ? '(control)' : '(documented)';
    my ($st, $head) = $s->request("/$area/", cert => 'alice-a');
    is($st, 200, "$area: alice admitted by Require mtls-$a");
    is(var_header($head, 'X-Rule'), $a eq 'ok' ? $ARULE{$a} : '',
       "$area $tag: " . ($a eq 'ok' ? "admitted by the alias's rule, so it is exported"
                                    : 'an alias negated elsewhere exports nothing'));
    is(var_header($head, 'X-Subject'), $a eq 'ok' ? $ALICE_DN : '', "$area $tag: ... subject");
    my $mark = $s->log_mark;
    ($st) = $s->request("/$area/", cert => 'bob-a');
    is($st, 403, "$area: bob refused");
    my $log = $s->log_since($mark);
    like($log, qr{\] client denied by server configuration: /\Q$area\E/: no rule matched},
         "$area $tag: bob's denial is logged by the module")
      or diag("error log since the request:\n$log");
}

# ---- the namespace after the fixups phase ---------------------------------------
{
    my ($st, $head, $body) = $s->request('/ssi/page.shtml', cert => 'alice-a');
    is($st, 200, 'ssi: alice admitted');
    like($body, qr/^page$/m, 'ssi: the page was served through mod_include');
    is(var_header($head, 'X-Rule'), $LRULE{ssi}, 'ssi: MTLS_AUTHZ_RULE is the location\'s rule');
    is(var_header($head, 'X-Subject'), $ALICE_DN,
       'ssi (holds): the response header built from MTLS_CLIENT_SUBJECT is alice\'s '
       . '(mod_headers read it before mod_include ran #set)');
    select(undef, undef, undef, 0.3);    # the log line follows the response
    my ($line) = grep { m{^/ssi/page\.shtml } } split /\n/, slurp($LOG);
    is($line, qq{/ssi/page.shtml 200 subj="$ALICE_DN" rule="$LRULE{ssi}"},
       'ssi : the access log records alice\'s subject, not the one the '
       . 'page set with #set');
}

# ---- graceful restart: the negated aliases are read again ------------------------
# The configuration without "Require not mtls-srv" (/srv-neg/ denies by
# itself instead): after a graceful restart the plain use in /alias-srv/
# must be an ordinary one again, not negated by the old tree.
{
    my $n = grep { s/^(\s*)Require not mtls-srv$/${1}Require all denied/ } @{ $s->{lines} };
    is($n, 1, 'graceful: the configuration had one "Require not mtls-srv" to take out');
    $s->save;
    kill 'USR1', $s->{pid} or diag("kill USR1 $s->{pid}: $!");
    my ($st, $head, $rule) = (0, '', '');
    for (1 .. 40) {
        select(undef, undef, undef, 0.5);
        ($st, $head) = $s->request('/alias-srv/', cert => 'alice-a');
        $rule = var_header($head, 'X-Rule');
        last if $st == 200 && $rule ne '';
    }
    is($st, 200, 'graceful: alice admitted by Require mtls-srv');
    is($rule, $ARULE{srv},
       'graceful (holds): once no line negates mtls-srv, its plain use exports the identity');
    ($st, $head) = $s->request('/srv-neg/', cert => 'alice-a');
    is($st, 200, 'graceful: /srv-neg/ still admits alice by Require ip');
}

$s->stop;

# ---- RequestHeader and mod_dir's fast redirect -----------------------------------
# mod_headers and mod_dir both run their fixups at APR_HOOK_LAST; the
# module only asks to come before mod_headers. Where mod_headers is loaded
# before mod_dir, the order is: the module's check, mod_headers, mod_dir
# (DirectoryIndex: a subrequest, then a fast redirect), the module's last
# pass. mod_headers then builds RequestHeader values from the decision
# for the directory, before mod_dir's subrequest; a fast redirect copies
# the subrequest's variables into the request but not its request
# headers. Here the index file's location asks for a certificate (TLS
# 1.2: mod_ssl renegotiates in the subrequest) and admits bob only; the
# client answers with bob. The CGI then runs for bob, and gets bob in
# MTLS_CLIENT_SUBJECT but alice in the header that the cookbook's recipe
# builds from it. Fails on main.
{
    my $f = OwnHttpd->new(__FILE__, 'review2-dir');
    my $fd = $f->dir;
    # The order of hooks of the same rank follows the LoadModule lines.
    # httpd's own httpd.conf (source builds, the official container image)
    # loads mod_headers before mod_dir; Debian's mods-enabled, read in
    # alphabetical order, loads mod_dir first, and then mod_dir's fast
    # redirect comes before mod_headers. The base configuration is
    # reordered here as httpd.conf has it.
    my @base = split /\n/, slurp($f->{base});
    my ($hl) = grep { /^LoadModule\s+headers_module\s/ } @base;
    my ($di) = grep { $base[$_] =~ /^LoadModule\s+dir_module\s/ } 0 .. $#base;
    ok(defined $hl && defined $di, 'dx: the base configuration loads mod_headers and mod_dir')
      or diag(slurp($f->{base}));
    @base = grep { !/^LoadModule\s+headers_module\s/ } @base;
    splice @base, $di, 0, $hl if defined $hl && defined $di;
    spew("$fd/base.conf", join("\n", @base) . "\n");
    $f->{base} = "$fd/base.conf";
    $f->add_header(modules => ['cgid', 'info'], loglevel => 'info ssl:debug mtls_authz:debug');
    # mod_info shows the order the fixups really run in.
    $f->add('<Location /server-info>', '    SetHandler server-info', '</Location>');
    $f->add('SSLProtocol -all +TLSv1.2', 'SSLSessionCache none');
    $f->add_vhost(verify => 'optional');
    $f->add('    MTLSExportEnv On');
    $f->add(qq{    <Directory "$fd/docs/dx">}, '        Options +ExecCGI',
            '        AddHandler cgi-script .cgi', '        DirectoryIndex index.cgi',
            '        Require all granted', '    </Directory>',
            '    <Location /dx/>', '        MTLSAuthz On', "        MTLSAllowSubject $ALICE",
            '        RequestHeader unset X-Client-Subject',
            '        RequestHeader set X-Client-Subject "%{MTLS_CLIENT_SUBJECT}e" '
            . 'env=MTLS_CLIENT_SUBJECT',
            '    </Location>',
            '    <Location /dx/index.cgi>', '        SSLVerifyClient require',
            '        MTLSAllowSubject "CN=bob,O=Acme Inc.,C=US"', '    </Location>',
            '</VirtualHost>');
    $f->write_subject_cgi("$fd/docs/dx/index.cgi");
    $f->start;
    my $mark = $f->log_mark;
    my ($sock, $why) = $f->tls_connect(cert => 'alice-a', tls => '1.2');
    ok($sock, 'dx: TLS 1.2 connection as alice') or diag($why);
    my ($st, $body) = (0, '');
    if ($sock) {
        $f->use_cert($sock, 'bob-a');
        ($st, $body) = $f->get_on($sock, '/dx/');
        $sock->close(SSL_fast_shutdown => 1);
    }
    my $log = $f->log_since($mark);
    like($log, qr/AH02221: Requesting connection re-negotiation/,
         'dx: mod_ssl renegotiated in the DirectoryIndex subrequest (precondition)');
    # mod_headers built X-Client-Subject from alice's exported identity
    # before mod_dir's subrequest renegotiated to bob: the request cannot
    # go on with two identities, and is refused.
    is($st, 403, 'dx: the certificate changed after alice\'s identity was exported: 403')
      or diag($body);
    like($log, qr/client certificate changed after its identity was exported/,
         'dx: the error log says why');
    unlike($body, qr/^hdr=CN=alice/m,
           'dx: the index CGI never ran with alice\'s header for bob\'s connection')
      or diag($body);
    my ($ist, $info) = $f->get('/server-info?hooks', cert => 'alice-a');
    $info =~ s/<[^>]*>/ /g;
    $info =~ s/&nbsp;/ /g;
    my ($fix) = $info =~ /Fixups:(.*?)Insert Filters/s;
    $fix = join ' ', ($fix // '') =~ /(mod_\w+\.c)/g;
    like($fix, qr/mod_headers\.c.*mod_dir\.c/,
         'dx: mod_headers\' fixups run before mod_dir\'s here (precondition)') or diag($fix);
    $f->stop;
}

# ---- httpd -t on trees the warnings walk ----------------------------------------
# A macro that expands to "Require not <alias>" under Satisfy Any and an
# AllowOverride, an Include of a directory (one empty file), <IfModule>,
# sections without arguments, 60 nested <RequireAll>. httpd accepts all
# of it; the module's tree walk must neither crash nor miss the lines
# that came from a macro or an included file.
{
    my $t = OwnHttpd->new(__FILE__, 'review2-tree');
    my $td = $t->dir;
    make_path("$td/inc");
    spew("$td/inc/00-empty.conf", '');
    spew("$td/inc/10-loc.conf", join("\n",
        '<IfModule ssl_module>', '<Location /inc/>', '<RequireAll>', 'Require all granted',
        'Require not mtls-m', '</RequireAll>', 'Satisfy Any', '</Location>', '</IfModule>')
        . "\n");
    $t->add_header(modules => ['macro']);
    $t->add('<AuthzProviderAlias mtls mtls-m>', "    MTLSAllowSubject $ALICE",
            '</AuthzProviderAlias>',
            '<Macro Neg $where>', '<Location $where>', '    <RequireAll>',
            '        Require all granted', '        Require not mtls-m', '    </RequireAll>',
            '    Satisfy Any', '</Location>', '</Macro>');
    $t->add_vhost;
    $t->add('    Use Neg /mac/', qq{    <Directory "$td/docs">}, '        AllowOverride All',
            '    </Directory>', qq{    Include "$td/inc/"});
    $t->add('    <Location /deep/>', ('    <RequireAll>') x 60, '    Require mtls',
            ('    </RequireAll>') x 60, "    MTLSAllowSubject $ALICE", '    </Location>');
    $t->add('    <Location /else/>', '        <If "true">', '            Require mtls',
            '        </If>', '        <Else>', '            Require all denied', '        </Else>',
            "        MTLSAllowSubject $ALICE", '    </Location>');
    $t->add('</VirtualHost>', 'UndefMacro Neg');
    $t->save;
    my ($st, $out) = config_test($t->{httpd}, $t->file, 30);
    ok($st == 0 && $out =~ /Syntax OK/,
       'tree (holds): httpd -t accepts the configuration (' . describe_status($st) . ')')
      or diag($out);
    unlike($out, $CRASH, 'tree (holds): no crash') or diag($out);
    like($out, qr/Require not mtls-m \(macro 'neg'.*\) is under Satisfy Any/i,
         'tree (holds): the Satisfy Any warning names the Require line a macro wrote')
      or diag($out);
    like($out, qr{Require not mtls-m \(\Q$td\E/inc/10-loc\.conf:5\) is under Satisfy Any},
         'tree (holds): ... and the one in a file included from a directory')
      or diag($out);
    like($out, qr/Require (not )?mtls\S* \(.+?:\d+\)( and \d+ more Require line\(s\) of this module)?: AllowOverride All/,
         'tree (holds): the AllowOverride warning reaches the Require lines (one warning '
         . 'per AllowOverride)')
      or diag($out);
}

done_testing();
