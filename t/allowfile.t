# MTLSAllowFile in the running test server: rules from files relative to
# ServerRoot, comments, CRLF, pasted "MTLSAllow" lines, several files and
# directives in one scope, nesting, an empty file, and the rule's
# file:line in the debug log and for other modules. Reloading and errors:
# t/allowfile_reload.t.
# Server configuration: t/conf/allowfile.inc.in and the shared t/conf/extra.conf.in.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use File::Spec ();
use lib 't/lib';
use MTLS qw(req status status_cases log_mark log_wait);

plan tests => 18;

my $BASIC = File::Spec->catfile(Apache::Test::vars('t_dir'), 'conf', 'allow', 'basic.txt');

status_cases(
    ['/t/file', 'alice-a', 200, 'subject= line (relative path, ServerRoot)'],
    ['/t/file', 'carol-int', 200, 'a pasted "MTLSAllow ..." line after comments'],
    ['/t/file', 'bob-a', 403, 'not in the file: denied'],
    ['/t/file-two', 'bob-a', 200, 'second file (CRLF line ends)'],
    ['/t/file-two', 'alice-a', 200, 'first file (absolute path)'],
    ['/t/file-two', 'dave-a', 403, 'in neither file: denied'],
    ['/t/file-mixed', 'dave-a', 200, 'MTLSAllow directive next to a file'],
    ['/t/file-mixed', 'bob-a', 200, 'the file next to a directive'],
    ['/t/file-mixed', 'alice-a', 403, 'in neither: denied'],
    ['/t/file/nested', 'dave-a', 200, 'nested scope with its own rule'],
    ['/t/file/nested', 'alice-a', 403, 'nested rules replace the file, as for MTLSAllow'],
    ['/t/file/inherit', 'alice-a', 200, 'a nested scope without rules inherits the file'],
    ['/t/file-empty', 'alice-a', 403, 'an empty file allows nobody'],
    ['/htaccess/file/', 'alice-a', 500, 'MTLSAllowFile in .htaccess is refused (500), never read'],
);

my $m = log_mark();
status('/t/file', cert => 'alice-a');
like(log_wait($m, qr{rule \Q$BASIC\E:4: matched}), qr{\] rule \Q$BASIC\E:4: matched},
     'debug log names the rule file and line');

my (undef, undef, $head) = req('/t/file', cert => 'carol-int');
my ($rule) = $head =~ /^X-MTLS-Rule: (.*?)\r?$/m;
is($rule, "$BASIC:6", 'mtls_authz_matched_rule: the rule file and line');

$m = log_mark();
status('/t/file-empty', cert => 'alice-a');
like(log_wait($m, qr{client denied}), qr{/t/file-empty: MTLSAuthz On but no MTLSAllow\* rule applies here},
     'empty file: the denial says no rule applies');

$m = log_mark();
status('/htaccess/file/', cert => 'alice-a');
like(log_wait($m, qr{MTLSAllowFile}), qr{MTLSAllowFile not allowed here},
     'httpd says MTLSAllowFile is not allowed in .htaccess');
