# What an .htaccess file may do with this module's directives: only
# narrow what it inherits from the server configuration. One row per
# directive and situation, as in the README's table; each row is a
# directory with its own .htaccess under AllowOverride AuthConfig (unless
# the row says otherwise), protected by a <Directory> or a <Location> of
# the server configuration, and each asserts the status codes of clients
# the server configuration admits and refuses.
#
# Runs its own httpd (t/lib/HttpdRun.pm) so that every row's server
# configuration and .htaccess sit side by side here.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use File::Path qw(make_path remove_tree);
use FindBin ();
use IO::Socket::SSL ();
use Time::HiRes qw(sleep);
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(locate missing_prereqs pins $CRASH free_port slurp spew describe_status
  start_server stop_server user_lines ssl_vhost_lines);

my %at = locate(__FILE__);
my ($HTTPD, $T_DIR, $MODULE, $BASE, $CFG) = @at{qw(httpd t_dir module base cfg)};
my $PKI = "$T_DIR/pki/out";

my @missing = missing_prereqs(%at);
push @missing, "$PKI/pins.sh is missing (scripts/run-tests.sh runs mkpki.sh)"
  unless -f "$PKI/pins.sh";
ok(!@missing, 'preconditions: httpd, module, base configuration and PKI exist')
  or diag(join "\n", @missing);
die "cannot run: @missing\n" if @missing;

my %fp = pins($PKI);

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

my $dir = "$CFG/htaccess";
remove_tree($dir);
make_path("$dir/htdocs") or die "$dir: $!";
my $port = free_port();
my @sections;
for my $row (@rows) {
    my ($name, $where, $server, $ht, undef, undef, $override) = @$row;
    make_path("$dir/htdocs/$name") or die "$dir/htdocs/$name: $!";
    spew("$dir/htdocs/$name/index.html", "$name\n");
    spew("$dir/htdocs/$name/.htaccess", join("\n", @$ht) . "\n");
    push @sections, qq{    <Directory "$dir/htdocs/$name">},
      '        AllowOverride ' . ($override // 'AuthConfig'), '    </Directory>';
    next unless $where;
    my $open = $where eq 'Directory' ? qq{<Directory "$dir/htdocs/$name">}
                                     : "<Location /$name/>";
    push @sections, "    $open", (map { "        $_" } @$server), "    </$where>";
}

my @conf = (
    '# written by t/htaccess.t',
    qq{ServerRoot "$dir"},
    qq{DefaultRuntimeDir "$dir"},
    qq{PidFile "$dir/httpd.pid"},
    qq{ErrorLog "$dir/error_log"},
    'LogLevel info mtls_authz:debug',
    qq{Include "$BASE"},
    qq{LoadModule mtls_authz_module "$MODULE"},
    "Listen 127.0.0.1:$port",
    'ServerName 127.0.0.1',
    qq{DocumentRoot "$dir/htdocs"},
    'Timeout 10',
    'GracefulShutdownTimeout 1',
    user_lines(),
    qq{SSLSessionCache "shmcb:$dir/scache(512000)"},
    qq{<Directory "$dir/htdocs">},
    '    Require all granted',
    '    DirectoryIndex index.html',
    '</Directory>',
    ssl_vhost_lines($port, $PKI),
    @sections,
    '</VirtualHost>',
);
spew("$dir/httpd.conf", join("\n", @conf) . "\n");

my ($pid, $why) = start_server($HTTPD, "$dir/httpd.conf", $port, "$dir/start.out", 20,
                               "$dir/httpd.pid");
ok($pid, "httpd starts on 127.0.0.1:$port")
  or diag($why, "\n", slurp("$dir/start.out"), slurp("$dir/error_log"));
die "cannot run: httpd did not start\n" unless $pid;

# GET $path with client certificate $cert; the status (0: no response).
sub get {
    my ($cert, $path) = @_;
    my $s = IO::Socket::SSL->new(
        PeerHost => '127.0.0.1', PeerPort => $port, Timeout => 10,
        SSL_hostname => 'localhost', SSL_verifycn_name => 'localhost',
        SSL_verifycn_scheme => 'http', SSL_ca_file => "$PKI/ca-a.crt",
        SSL_cert_file => "$PKI/$cert.pem", SSL_key_file => "$PKI/$cert.pem",
    ) or return 0;
    print $s "GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    local $/;
    my $resp = <$s> // '';
    $s->close(SSL_fast_shutdown => 1);
    my ($st) = $resp =~ m{^HTTP/1\.\d (\d{3})};
    return $st // 0;
}

for my $row (@rows) {
    my ($name, undef, undef, $ht, $want, $log_re) = @$row;
    my $mark = -s "$dir/error_log" || 0;
    for my $cert (sort keys %$want) {
        is(get($cert, "/$name/"), $want->{$cert},
           "$name (.htaccess: @$ht): $cert gets $want->{$cert}");
    }
    if ($log_re) {
        sleep 0.2;
        my $log = substr(slurp("$dir/error_log"), $mark);
        like($log, $log_re, "$name: the error log says why");
    }
}

my $st = stop_server($pid);
my $log = slurp("$dir/error_log");
unlike($log, $CRASH, 'no crash in the error log');
diag('httpd stopped: ' . describe_status($st));

done_testing();
