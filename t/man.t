# The man pages (man/): mod_mtls_authz(8) and mtls-authz-rule(1) render
# with groff and man without a single warning, and they document what the
# code defines:
#   - every directive of mtls_conf.c's command table has its entry in
#     mod_mtls_authz(8), with its name in the Syntax line (On|Off for a
#     flag), the default its help string names, and .htaccess in its
#     Context exactly when the table allows it there; no entry names a
#     directive the table does not have;
#   - every option of `mtls-authz-rule --help` and every exit status it
#     lists is in mtls-authz-rule(1);
#   - both pages carry the tool's version.
# The pages are written by hand (roff reads better than what a Markdown
# converter makes of the docs' tables and links, and needs no converter
# in the build); this test is what keeps them in sync. It reads the
# rendered text, not the roff source, so that the check sees what a
# reader sees.
#
# Needs no httpd. It first runs its checkers on doctored copies of the
# pages, so that a checker that finds nothing cannot pass.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use File::Path qw(make_path remove_tree);
use FindBin ();
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(locate slurp spew run_cmd describe_status);

my %at = locate(__FILE__);
my ($TOP, $CFG) = @at{qw(top cfg)};
my $DIR  = "$CFG/man";
my $TOOL = "$TOP/build/mtls-authz-rule";
my $MAN8 = "$TOP/man/mod_mtls_authz.8";
my $MAN1 = "$TOP/man/mtls-authz-rule.1";

remove_tree($DIR);
make_path($DIR) or die "$DIR: $!";

# A precondition missing is a failure, never a skip.
my @missing = grep { !-x $_->[0] } ['/usr/bin/groff', 'groff (sh scripts/deps.sh)'],
  ['/usr/bin/man', 'man (sh scripts/deps.sh)'], [$TOOL, "$TOOL (run make)"];
push @missing, map { [$_, $_] } grep { !-s } $MAN8, $MAN1;
if (@missing) {
    plan tests => 1;
    ok(0, 'preconditions: groff, man, the tool and the pages')
      or diag('missing: ' . join(', ', map { $_->[1] } @missing));
    exit 0;
}

my $n = 0;
# Runs a command (time limit 60 s): (wait status, stdout, stderr).
sub run {
    my (@cmd) = @_;
    my ($out, $err) = map { "$DIR/cmd" . ++$n . ".$_" } qw(out err);
    my ($st, $hung) = run_cmd(60, { out => $out, err => $err }, @cmd);
    return ($st, slurp($out), slurp($err) . ($hung ? "\n[timed out]" : ''));
}

# ---- what the code defines ----------------------------------------------------

# The directives of mtls_conf.c's command table: name, macro, whether
# .htaccess may set it (an OR_* override bit in its context), its help.
sub command_table {
    my ($src) = @_;
    my ($table) = $src =~ /\bcommand_rec\s+mtls_cmds\[\]\s*=\s*\{(.*?)\{\s*NULL\s*\}\s*\}\s*;/s
      or return;
    # Comments out, string literals kept (a help string may hold "/*").
    $table =~ s{("(?:[^"\\]|\\.)*")|/\*.*?\*/}{$1 // ''}gse;
    my %define;
    $define{$1} = $2 while $src =~ /^#define\s+(\w+)\s+\(?([^\n]*?)\)?\s*$/mg;
    my @cmds;
    while ($table =~ /AP_INIT_(\w+)\(\s*"(\w+)"\s*,\s*\w+\s*,\s*(?:\w+|"[^"]*")\s*,\s*([^,]+?)\s*,
                      \s*((?:"(?:[^"\\]|\\.)*"\s*)+)\)/gsx) {
        my ($kind, $name, $ctx, $help) = ($1, $2, $3, $4);
        $ctx = $define{$ctx} if defined $define{$ctx};
        $help = join '', $help =~ /"((?:[^"\\]|\\.)*)"/g;
        my ($default) = $help =~ /\(default (\w+)/;
        push @cmds, { kind => $kind, name => $name, help => $help,
                      htaccess => ($ctx =~ /\bOR_\w+/ ? 1 : 0),
                      default => $default };
    }
    my $entries = () = $table =~ /AP_INIT_\w+\(/g;
    return (\@cmds, $entries);
}

# The options (--x, -x) and exit statuses of the tool's --help.
sub help_facts {
    my ($help) = @_;
    my %opt;
    $opt{$1} = 1 while $help =~ /(?<![\w-])(--?[a-z][a-z-]*)(?![\w-])/g;
    my ($exit) = $help =~ /Exit status:(.*)\z/s;
    my @status = defined $exit ? $exit =~ /(?:^|;)\s*(\d+)\s/g : ();
    return ([sort keys %opt], \@status);
}

# ---- what a page says -----------------------------------------------------------

# A rendered page's sections: { NAME => text } for the headings at the
# left margin, and for the indented subsection headings of DIRECTIVES.
sub sections {
    my ($text) = @_;
    my (%sec, %sub, $cur, $subcur);
    for my $line (split /\n/, $text) {
        if ($line =~ /^([A-Z][A-Z ]*[A-Z])$/) {
            ($cur, $subcur) = ($1, undef);
            next;
        }
        next unless defined $cur;
        if ($cur eq 'DIRECTIVES' && $line =~ /^ {3}(\S.*?)\s*$/) {
            $subcur = $1;
            $sub{$subcur} = '';
            next;
        }
        $sec{$cur} .= "$line\n";
        $sub{$subcur} .= "$line\n" if defined $subcur;
    }
    return (\%sec, \%sub);
}

# What mod_mtls_authz(8), rendered, gets wrong about the command table.
sub check_directives {
    my ($text, $cmds) = @_;
    my (undef, $sub) = sections($text);
    my (@bad, %known);
    for my $c (@$cmds) {
        my $name = $c->{name};
        $known{$name} = 1;
        my $e = $sub->{$name};
        if (!defined $e) {
            push @bad, "$name: no entry";
            next;
        }
        my ($syntax)  = $e =~ /^\s*Syntax:\s+(.*?)\s*$/m;
        my ($default) = $e =~ /^\s*Default:\s+(.*?)\s*$/m;
        my ($context) = $e =~ /^\s*Context:\s+(.*?)\s*$/m;
        my ($override) = $e =~ /^\s*Override:\s+(.*?)\s*$/m;
        push @bad, "$name: Syntax line does not start with the name"
          unless defined $syntax && $syntax =~ /^\Q$name\E(?:\s|$)/;
        push @bad, "$name: a flag, but the Syntax line is not '$name On|Off'"
          if $c->{kind} eq 'FLAG' && ($syntax // '') ne "$name On|Off";
        if (!defined $c->{default}) {
            push @bad, "$name: its help string in mtls_conf.c names no (default ...)";
        }
        elsif (($default // '') ne $c->{default}) {
            push @bad, "$name: Default '" . ($default // '(none)')
              . "', the command table says '$c->{default}'";
        }
        if (!defined $context) {
            push @bad, "$name: no Context line";
        }
        elsif ($c->{htaccess} && ($context !~ /\.htaccess/ || ($override // '') ne 'AuthConfig')) {
            push @bad, "$name: allowed in .htaccess, but Context/Override do not say so";
        }
        elsif (!$c->{htaccess} && ($context =~ /\.htaccess/ || defined $override)) {
            push @bad, "$name: not allowed in .htaccess, but Context/Override say it is";
        }
    }
    # Require mtls is a provider, not a directive of the table.
    push @bad, "$_: an entry, but no such directive in the command table"
      for grep { !$known{$_} && $_ ne 'Require mtls' } sort keys %$sub;
    return @bad;
}

# What mtls-authz-rule(1), rendered, misses of the tool's --help.
sub check_tool_page {
    my ($text, $opts, $status) = @_;
    my ($sec) = sections($text);
    my @bad;
    for my $o (@$opts) {
        push @bad, "option $o: not in OPTIONS"
          unless ($sec->{OPTIONS} // '') =~ /(?<![\w-])\Q$o\E(?![\w-])/;
    }
    for my $s (@$status) {
        push @bad, "exit status $s: not in EXIT STATUS"
          unless ($sec->{'EXIT STATUS'} // '') =~ /^\s+\Q$s\E(?:\s|$)/m;
    }
    return @bad;
}

# The version in a page's footer (the .TH line's source field).
sub page_version {
    my ($text) = @_;
    my @lines = grep { /\S/ } split /\n/, $text;
    return @lines && $lines[-1] =~ /^mod_mtls_authz (\S+)\s/ ? $1 : undef;
}

# ---- the facts, and the pages rendered ------------------------------------------

my ($cmds, $entries) = command_table(slurp("$TOP/mtls_conf.c"));
my ($st, $help, $err) = run($TOOL, '--help');
my ($opts, $status) = help_facts($help);
(undef, my $ver) = run($TOOL, '--version');
($ver) = $ver =~ /^mtls-authz-rule (\S+)/;

# Plain text as a reader sees it: ASCII, no overstriking or escapes.
sub render {
    my ($file) = @_;
    return run('/usr/bin/groff', '-man', '-Tascii', '-P-cbou', '-ww', $file);
}

plan tests => 17;

# ---- the checkers on doctored pages ---------------------------------------------

ok($cmds && @$cmds >= 8 && @$cmds == $entries,
   'mtls_conf.c: every entry of the command table parsed ('
   . ($cmds ? scalar @$cmds : 0) . " of $entries)")
  or diag('parsed: ' . join(', ', map { $_->{name} } @{ $cmds // [] }));
$cmds //= [];
ok($st == 0 && @$opts >= 4 && (grep { $_ eq '--ca' } @$opts) && @$status >= 3,
   "mtls-authz-rule --help: options (@$opts) and exit statuses (@$status) found")
  or diag(describe_status($st) . "\n$help$err");
ok(defined $ver, 'mtls-authz-rule --version gives a version');
{
    my $src = slurp($MAN8);
    # Drop one entry, change a default, claim .htaccess for a directive
    # that refuses it, add an entry the table does not have.
    (my $bad = $src) =~ s/^\.SS MTLSExportEnv\n.*?(?=^\.SS )//ms;
    $bad =~ s/^(Syntax:   MTLSAuthzMode .*\nDefault:  )Enforce/${1}Audit/m;
    $bad =~ s/^(Syntax:   MTLSAllowFile .*\nDefault:  .*\nContext:  .*)$/$1, .htaccess/m;
    $bad =~ s/^(\.SS MTLSAuthz\n)/.SS MTLSAllowNothing\n.nf\nSyntax:   MTLSAllowNothing\n.fi\n$1/m;
    spew("$DIR/doctored.8", $bad);
    my ($s, $text) = render("$DIR/doctored.8");
    my @found = check_directives($text, $cmds);
    my $found = join "\n", @found;
    ok(@found == 4 && $found =~ /^MTLSExportEnv: no entry$/m
         && $found =~ /^MTLSAuthzMode: Default 'Audit'/m
         && $found =~ /^MTLSAllowFile: not allowed in \.htaccess/m
         && $found =~ /^MTLSAllowNothing: an entry, but no such directive/m,
       'checker: a doctored mod_mtls_authz(8) gives its 4 faults, no more')
      or diag($found);

    $src = slurp($MAN1);
    ($bad = $src) =~ s/^\.TP\n\.B \\-\\-issuer\n//m;
    $bad =~ s/\\-\\-issuer/--elsewhere/g;
    $bad =~ s/^\.TP\n\.B 3\n//m;
    spew("$DIR/doctored.1", $bad);
    ($s, $text) = render("$DIR/doctored.1");
    @found = check_tool_page($text, $opts, $status);
    is(join("\n", @found), "option --issuer: not in OPTIONS\nexit status 3: not in EXIT STATUS",
       'checker: a doctored mtls-authz-rule(1) lacks --issuer and exit status 3');
}

# ---- the pages --------------------------------------------------------------------

for my $page ([$MAN8, 'mod_mtls_authz.8'], [$MAN1, 'mtls-authz-rule.1']) {
    my ($file, $name) = @$page;
    my ($s, $out, $e) = run('/usr/bin/groff', '-man', '-ww', '-z', $file);
    ok($s == 0 && $e eq '', "groff -man -ww -z man/$name: no warning")
      or diag(describe_status($s) . "\n$e");
    ($s, $out, $e) = run('env', 'MANWIDTH=80', '/usr/bin/man', '--warnings', '-l', $file);
    ok($s == 0 && $e eq '' && $out =~ /\S/, "MANWIDTH=80 man --warnings -l man/$name: renders, no warning")
      or diag(describe_status($s) . "\n$e");
    my @long = grep { length > 80 } split /\n/, $out;
    ok(!@long, "man/$name: no line wider than 80 columns at MANWIDTH=80")
      or diag(join "\n", @long);
}

my ($s8, $text8, $e8) = render($MAN8);
my ($s1, $text1, $e1) = render($MAN1);
ok($s8 == 0 && $e8 eq '' && $s1 == 0 && $e1 eq '', 'both pages render as plain text')
  or diag("$e8$e1");

my @bad = check_directives($text8, $cmds);
ok(!@bad, 'mod_mtls_authz(8) documents the ' . scalar(@$cmds)
   . ' directives of the command table, with their defaults and contexts')
  or diag(join "\n", @bad);
like((sections($text8))[1]{'Require mtls'} // '', qr/^\s*Syntax:\s+Require mtls\s*$/m,
     'mod_mtls_authz(8) documents Require mtls');
my ($sec8) = sections($text8);
my @want = ('THE DECISION', 'MATCHING', 'RULE FILES', 'AUDIT MODE', 'IDENTITY VARIABLES');
ok(!(grep { !defined $sec8->{$_} } @want), "mod_mtls_authz(8) has the sections @want")
  or diag('has: ' . join(', ', sort keys %$sec8));

@bad = check_tool_page($text1, $opts, $status);
ok(!@bad, "mtls-authz-rule(1) documents the options (@$opts) and exit statuses (@$status) of --help")
  or diag(join "\n", @bad);

is(join(' ', map { page_version($_) // '(none)' } $text8, $text1),
   join(' ', ($ver // '?')  x 2), "both pages are for version " . ($ver // '?') . ', the tool\'s');
