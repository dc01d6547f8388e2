# Every directive has a help string that states its default, and mod_info
# shows it (/server-info, configured by Apache::Test when mod_info is
# loaded).
# Server configuration: the shared t/conf/extra.conf.in.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET);

my @directives = qw(MTLSAuthz MTLSAuthzMode MTLSAllowSubject MTLSAllowSAN
  MTLSAllowIssuerFingerprint MTLSAllow MTLSAllowFile MTLSExportEnv MTLSDeny
  MTLSDenyFile MTLSForwardHeaders MTLSAuthzExpiryWarning MTLSAuthzSeenCache);

plan tests => 2 + @directives;

my $res = GET('/server-info?mod_mtls_authz.c');
my $html = $res->content // '';
ok($res->code == 200 && $html =~ /mod_mtls_authz\.c/, 'mod_info describes mod_mtls_authz.c (' . $res->code . ')');
# Every directive of the module, so that a new one needs a default too.
my @listed = $html =~ m{<dd><tt>(\w+) - <i>}g;
is(join(' ', sort @listed), join(' ', sort @directives), 'mod_info lists exactly these directives');
for my $d (@directives) {
    # <dd><tt>NAME - <i>HELP</i></tt></dd>
    my ($help) = $html =~ m{<dd><tt>\Q$d\E - <i>(.*?)</i>}s;
    like($help // "(no entry for $d)", qr/\(default [^)]+\)$/, "$d: help states its default: " . ($help // ''));
}
