# The version is written in one place, mtls_version.h, and every other
# place that names it agrees:
#   - the module's startup debug line ("mod_mtls_authz/VERSION loaded"),
#     logged once per configuration: once when httpd starts (not for the
#     first pass that httpd throws away), once more after a graceful
#     restart;
#   - `mtls-authz-rule --version`;
#   - the Debian package's version, the newest entry of debian/changelog
#     (its upstream part: no epoch, no Debian revision).
# (The man pages' footers are t/man.t's.)
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(slurp run_cmd log_wait);
use OwnHttpd ();

my $s    = OwnHttpd->new(__FILE__, 'version');
my $dir  = $s->dir;
my $TOP  = $s->top;
my $TOOL = "$TOP/build/mtls-authz-rule";

my ($VERSION) = slurp("$TOP/mtls_version.h") =~ /^#define MTLS_AUTHZ_VERSION "([^"]+)"$/m;
ok(defined $VERSION && $VERSION =~ /^\d+(\.\d+)+([~+][0-9A-Za-z.~+]+)?$/,
   'mtls_version.h defines MTLS_AUTHZ_VERSION (' . ($VERSION // 'none') . ')')
  or diag('no #define MTLS_AUTHZ_VERSION "..." line in mtls_version.h');
$VERSION //= '(none)';

# ---- debian/changelog ----------------------------------------------------------

# The first line of the newest entry: "name (version) distribution; ...".
my ($first) = split /\n/, slurp("$TOP/debian/changelog");
my ($deb) = ($first // '') =~ /^libapache2-mod-mtls-authz \(([^)\s]+)\) /;
ok(defined $deb, 'debian/changelog starts with an entry of libapache2-mod-mtls-authz')
  or diag('first line: ' . ($first // '(no debian/changelog)'));
(my $upstream = $deb // '') =~ s/^\d+://;
$upstream =~ s/-[^-]+$//;
is($upstream, $VERSION, "debian/changelog's newest version (" . ($deb // 'none')
   . ') is mtls_version.h\'s');

# ---- the tool ----------------------------------------------------------------

my $out = "$dir/tool.out";
my ($st, $hung) = run_cmd(30, $out, $TOOL, '--version');
my $said = slurp($out);
ok($st == 0 && !$hung, 'mtls-authz-rule --version exits 0') or diag($said);
like($said, qr/^mtls-authz-rule \Q$VERSION\E \(/, "mtls-authz-rule --version says $VERSION");

# ---- the module's startup line -------------------------------------------------

$s->add_header(loglevel => 'warn mtls_authz:debug');
$s->add_vhost;
$s->add_location('/', 'MTLSAuthz On', 'MTLSAllowSubject "CN=alice,O=Acme Inc.,C=US"');
$s->add('</VirtualHost>');
$s->start;

my $line = qr/mod_mtls_authz\/\Q$VERSION\E loaded \(OpenSSL /;
# httpd listens before it has finished starting: every startup line is
# written once it says "resuming normal operations".
my $log = log_wait("$dir/error_log", 0, qr/resuming normal operations/, 20);
my @lines = grep { /mod_mtls_authz\/\S+ loaded/ } split /\n/, $log;
is(scalar @lines, 1, 'httpd started: one startup line of the module') or diag($log);
like($lines[0] // '', $line, "the startup line names version $VERSION and OpenSSL");
like($lines[0] // '', qr/\[mtls_authz:debug\]/, 'it is logged at level debug');

# A graceful restart reads the configuration again: one more line.
my $mark = $s->log_mark;
kill 'USR1', $s->{pid};
$log = log_wait("$dir/error_log", $mark, qr/SIGUSR1 received(?s:.*)resuming normal operations/, 20);
@lines = grep { /mod_mtls_authz\/\S+ loaded/ } split /\n/, $log;
is(scalar @lines, 1, 'after a graceful restart: one more startup line') or diag($log);
like($lines[0] // '', $line, "it names version $VERSION too");

$s->stop;
done_testing();
