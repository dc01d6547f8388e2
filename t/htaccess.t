# What an .htaccess file may do with this module's directives: only
# narrow what it inherits from the server configuration. One row per
# directive and situation, as in docs/security.md's table; each row is a
# directory with its own .htaccess under AllowOverride AuthConfig (unless
# the row says otherwise), protected by a <Directory> or a <Location> of
# the server configuration, and each asserts the status codes of clients
# the server configuration admits and refuses.
#
# Runs its own httpd (t/lib/OwnHttpd.pm) so that every row's server
# configuration and .htaccess sit side by side here.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use lib "$FindBin::RealBin/lib";
use OwnHttpd ();

my $s = OwnHttpd->new(__FILE__, 'htaccess');
my $dir = $s->dir;
my %fp = (FP_CA_A => $s->fp('FP_CA_A'), FP_CA_B => $s->fp('FP_CA_B'));

my $ALICE = '"CN=alice,O=Acme Inc.,C=US"';
my $BOB   = '"CN=bob,O=Acme Inc.,C=US"';
my $NOT_HERE = qr/\.htaccess: MTLS\w+: (Off|Audit) is not allowed in \.htaccess/;

# [name, where (Directory or Location), server lines, .htaccess lines,
#  {certificate => status}, log regex (optional), AllowOverride (default
#  AuthConfig)]
my @rows = (
    # MTLSAuthz
    ['dir-off', 'Directory', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ['MTLSAuthz Off'], {'alice-a' => 500, 'bob-a' => 500}, $NOT_HERE],
    ['loc-off', 'Location', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ['MTLSAuthz Off'], {'alice-a' => 500, 'bob-a' => 500}, $NOT_HERE],
    ['ht-on', undef, [], ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     {'alice-a' => 200, 'bob-a' => 403}],
    ['ht-on-norule', undef, [], ['MTLSAuthz On'], {'alice-a' => 403},
     qr/MTLSAuthz On but no MTLSAllow\* rule applies here/],
    # MTLSAuthzMode
    ['loc-audit', 'Location', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ['MTLSAuthzMode Audit'], {'alice-a' => 500, 'bob-a' => 500}, $NOT_HERE],
    ['req-audit', 'Location',
     ['<RequireAll>', 'Require mtls', 'Require ip 127.0.0.1 ::1', '</RequireAll>',
      "MTLSAllowSubject $ALICE"],
     ['MTLSAuthzMode Audit'], {'alice-a' => 500, 'bob-a' => 500}, $NOT_HERE],
    ['dir-enforce', 'Directory',
     ['MTLSAuthz On', 'MTLSAuthzMode Audit', "MTLSAllowSubject $ALICE"],
     ['MTLSAuthzMode Enforce'], {'alice-a' => 200, 'bob-a' => 403}],
    # Rules: gates that narrow, never replace
    ['dir-widen', 'Directory', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ["MTLSAllowSubject $BOB"], {'alice-a' => 403, 'bob-a' => 403},
     qr/no rule matched \(rules of an \.htaccess\)/],
    ['loc-widen', 'Location', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ["MTLSAllow subject=$BOB", 'MTLSAllowSAN DNS:bob.example.com'],
     {'alice-a' => 403, 'bob-a' => 403}],
    ['dir-narrow', 'Directory',
     ['MTLSAuthz On', "MTLSAllowIssuerFingerprint sha256:$fp{FP_CA_A}"],
     ["MTLSAllowSubject $ALICE"],
     {'alice-a' => 200, 'dave-a' => 403, 'bob-a' => 403, 'alice-b' => 403}],
    ['dir-narrow-issuer', 'Directory', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ["MTLSAllowIssuerFingerprint sha256:$fp{FP_CA_B}"],
     {'alice-a' => 403, 'alice-b' => 200}],
    ['dir-gap', 'Directory', ['MTLSAuthz On'], ["MTLSAllowSubject $ALICE"],
     {'alice-a' => 403}, qr/MTLSAuthz On but no MTLSAllow\* rule applies here/],
    # <If> in an .htaccess is merged after <Location>: the same limits
    ['if-off', 'Location', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ['<If "true">', 'MTLSAuthz Off', '</If>'], {'alice-a' => 500, 'bob-a' => 500},
     $NOT_HERE],
    ['if-audit', 'Location', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ['<If "true">', 'MTLSAuthzMode Audit', '</If>'],
     {'alice-a' => 500, 'bob-a' => 500}, $NOT_HERE],
    ['if-widen', 'Location', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ['<If "true">', "MTLSAllowSubject $BOB", '</If>'],
     {'alice-a' => 403, 'bob-a' => 403}],
    # MTLSAllowFile: never from an .htaccess
    ['file', 'Directory', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ['MTLSAllowFile /etc/passwd'], {'alice-a' => 500, 'bob-a' => 500},
     qr/MTLSAllowFile not allowed here/],
    # MTLSExportEnv: what CGI scripts see is the server configuration's
    # choice, never an .htaccess's, whatever AllowOverride says
    ['export-env', 'Location', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ['MTLSExportEnv On'], {'alice-a' => 500, 'bob-a' => 500},
     qr/MTLSExportEnv not allowed here/],
    ['export-env-all', 'Directory', ['MTLSAuthz On', "MTLSAllowSubject $ALICE", 'MTLSExportEnv On'],
     ['MTLSExportEnv Off'], {'alice-a' => 500, 'bob-a' => 500},
     qr/MTLSExportEnv not allowed here/, 'All'],
    ['list-export-env', 'Directory', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ['MTLSExportEnv On'], {'alice-a' => 500, 'bob-a' => 500},
     qr/MTLSExportEnv cannot occur within htaccess files/,
     "None\n        AllowOverrideList MTLSExportEnv"],
    # MTLSForwardHeaders: what a backend is told is the server
    # configuration's; off would hand it the client's headers again
    ['forward-off', 'Location', ['MTLSAuthz On', "MTLSAllowSubject $ALICE",
                                 'MTLSForwardHeaders rfc9440'],
     ['MTLSForwardHeaders off'], {'alice-a' => 500, 'bob-a' => 500},
     qr/MTLSForwardHeaders not allowed here/, 'All'],
    ['list-forward', 'Directory', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ['MTLSForwardHeaders xfcc'], {'alice-a' => 500, 'bob-a' => 500},
     qr/MTLSForwardHeaders cannot occur within htaccess files/,
     "None\n        AllowOverrideList MTLSForwardHeaders"],
    # Require mtls: in an .htaccess its own rules decide where the server
    # configuration has none; Require lines themselves are mod_authz_core's,
    # which lets an .htaccess replace a <Directory>'s but not a <Location>'s.
    ['ht-require', undef, [], ['Require mtls', "MTLSAllowSubject $ALICE"],
     {'alice-a' => 200, 'bob-a' => 403}],
    ['dir-require-replaced', 'Directory', ['Require mtls', "MTLSAllowSubject $ALICE"],
     ['Require all granted'], {'alice-a' => 200, 'bob-a' => 200}],
    ['loc-require-kept', 'Location', ['Require mtls', "MTLSAllowSubject $ALICE"],
     ['Require all granted'], {'alice-a' => 200, 'bob-a' => 403}],
    # Other override classes
    ['none', 'Directory', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ['MTLSAuthz Off', "MTLSAllowSubject $BOB"], {'alice-a' => 200, 'bob-a' => 403},
     undef, 'None'],
    ['fileinfo', 'Directory', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ["MTLSAllowSubject $BOB"], {'alice-a' => 500, 'bob-a' => 500},
     qr/MTLSAllowSubject not allowed here/, 'FileInfo'],
    # AllowOverrideList lets a directive into .htaccess by name: the same
    # limits hold, and MTLSAllowFile stays out.
    ['list-file', 'Directory', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ['MTLSAllowFile /etc/passwd'], {'alice-a' => 500, 'bob-a' => 500},
     qr/MTLSAllowFile cannot occur within htaccess files/,
     "None\n        AllowOverrideList MTLSAllowFile"],
    ['list-off', 'Directory', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ['MTLSAuthz Off'], {'alice-a' => 500, 'bob-a' => 500}, $NOT_HERE,
     "None\n        AllowOverrideList MTLSAuthz"],
    ['list-widen', 'Directory', ['MTLSAuthz On', "MTLSAllowSubject $ALICE"],
     ["MTLSAllowSubject $BOB"], {'alice-a' => 403, 'bob-a' => 403}, undef,
     "None\n        AllowOverrideList MTLSAllowSubject"],
);

$s->add_header(loglevel => 'info mtls_authz:debug');
$s->add(qq{<Directory "$dir/docs">}, '    Require all granted', '    DirectoryIndex index.html',
        '</Directory>');
$s->add_vhost;
for my $row (@rows) {
    my ($name, $where, $server, $ht, undef, undef, $override) = @$row;
    $s->write_doc("$name/index.html", "$name\n");
    $s->write_htaccess($name, @$ht);
    $s->add(qq{    <Directory "$dir/docs/$name">},
            split(/\n/, '        AllowOverride ' . ($override // 'AuthConfig')),
            '    </Directory>');
    next unless $where;
    my $open = $where eq 'Directory' ? qq{<Directory "$dir/docs/$name">}
                                     : "<Location /$name/>";
    $s->add("    $open", (map { "        $_" } @$server), "    </$where>");
}
$s->add('</VirtualHost>');
$s->start;

for my $row (@rows) {
    my ($name, undef, undef, $ht, $want, $log_re) = @$row;
    my $mark = $s->log_mark;
    for my $cert (sort keys %$want) {
        is(($s->request("/$name/", cert => $cert))[0], $want->{$cert},
           "$name (.htaccess: @$ht): $cert gets $want->{$cert}");
    }
    like($s->log_since($mark), $log_re, "$name: the error log says why") if $log_re;
}

$s->stop;
done_testing();
