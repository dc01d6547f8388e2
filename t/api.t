# mod_mtls_authz.h's optional functions, as another module sees them
# (t/probe/mod_mtls_probe.c reports them in X-MTLS-* response headers).
# Server configuration: the shared t/conf/extra.conf.in.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use MTLS qw(req);

plan tests => 8;

sub probe {
    my ($path, $cert) = @_;
    my ($status, $body, $head) = req($path, cert => $cert);
    my ($rule) = $head =~ /^X-MTLS-Rule: (.*?)\r?$/m;
    my ($subject) = $head =~ /^X-MTLS-Subject: (.*?)\r?$/m;
    return ($status, $rule // 'no header', $subject // 'no header');
}

my ($st, $rule, $subject) = probe('/t/partners', 'alice-a');
is($st, 200, 'admitted');
like($rule, qr{/extra\.conf:\d+$}, "matched rule is file:line ($rule)");
is($subject, 'CN=alice,O=Acme Inc.,C=US', 'client subject in RFC 4514 form');

# The two MTLSAllow lines of /t/partners are consecutive; bob via CA B
# is not in the PKI, so compare the one-field rule of /t/subject-two.
my (undef, $r1) = probe('/t/subject-two', 'bob-a');
my (undef, $r2) = probe('/t/subject-two', 'carol-int');
is($r1, $r2, 'two values of one directive report the same line');

($st, $rule) = probe('/t/open', 'alice-a');
ok($st == 200 && $rule eq '-', "not enforced: no rule ($st, $rule)");

# DirectoryIndex: the decision was taken on the subrequest for index.html
($st, $rule, $subject) = probe('/dirindex/', 'alice-a');
ok($st == 200 && $rule =~ /extra\.conf:\d+$/,
   "DirectoryIndex fast redirect still reports the rule ($st, $rule)");
is($subject, 'CN=alice,O=Acme Inc.,C=US', 'and the subject');

($st, $rule) = probe('/t/nested/off', 'bob-a');
is($rule, '-', 'MTLSAuthz Off: no rule');
