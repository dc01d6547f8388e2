# The documentation's links: every relative link in README.md,
# HACKING.md, CHANGES, docs/*.md and the other Markdown files of the tree
# names a file that exists, and every #anchor a heading of its target
# (GitHub's slugs: lowercase, spaces to '-', punctuation dropped, "-1",
# "-2" for repeated headings). Links to other sites are not followed.
#
# Needs no httpd: it reads the files of the tree. It first runs the
# checker on a small document of its own with known good and broken
# links, so that a checker that finds nothing cannot pass.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use Encode ();
use File::Basename qw(dirname);
use File::Find ();
use File::Path qw(make_path remove_tree);
use File::Spec ();
use FindBin ();
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(locate slurp spew);

my %at = locate(__FILE__);
my ($TOP, $CFG) = @at{qw(top cfg)};
my $DIR = "$CFG/doc_links";

# ---- reading Markdown ---------------------------------------------------------

sub text_of {
    my ($file) = @_;
    return Encode::decode('UTF-8', slurp($file));
}

# The lines outside fenced code blocks, as [line number, text].
sub prose_lines {
    my ($text) = @_;
    my ($n, $fence, @out) = (0, undef);
    for my $line (split /\n/, $text, -1) {
        $n++;
        if (defined $fence) {
            undef $fence if $line =~ /^ {0,3}\Q$fence\E[`~]*\s*$/;
            next;
        }
        if ($line =~ /^ {0,3}(`{3,}|~{3,})/) {
            $fence = $1;
            next;
        }
        push @out, [$n, $line];
    }
    return @out;
}

# GitHub's anchor for a heading's text: Markdown links and emphasis give
# their text; then lowercase, every character that is not a letter, a
# digit, a space, '-' or '_' dropped, each space a '-'.
sub slug {
    my ($h) = @_;
    $h =~ s/!?\[([^\]]*)\]\([^)]*\)/$1/g;
    $h =~ s/<[^>]+>//g;
    $h =~ s/[*`]//g;
    $h = lc $h;
    $h =~ s/[^\p{L}\p{N}\p{M} _-]//g;
    $h =~ s/ /-/g;
    return $h;
}

# The anchors of a Markdown file: its headings' slugs (a repeated slug
# gets -1, -2, ...) and any <a name="..."> or id="...".
my %anchor_cache;
sub anchors {
    my ($file) = @_;
    return $anchor_cache{$file} if $anchor_cache{$file};
    my (%seen, %a);
    my @lines = prose_lines(text_of($file));
    for my $i (0 .. $#lines) {
        my $line = $lines[$i][1];
        my $h;
        if ($line =~ /^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/) {
            $h = $1;
        }
        elsif ($i < $#lines && $lines[$i + 1][0] == $lines[$i][0] + 1
               && $lines[$i + 1][1] =~ /^ {0,3}(?:=+|-+)[ \t]*$/
               && $line =~ /\S/ && $line !~ /^\s*(?:[-*+]|\d+\.)\s/) {
            $h = $line;    # setext heading
            $h =~ s/^\s+|\s+$//g;
        }
        if (defined $h) {
            my $s = slug($h);
            my $n = $seen{$s}++;
            $a{$n ? "$s-$n" : $s} = 1;
        }
        $a{$1} = 1 while $line =~ /<a\s[^>]*?(?:name|id)="([^"]+)"/g;
    }
    return $anchor_cache{$file} = \%a;
}

# The links of a Markdown file, outside code: [line, target] for inline
# links and images, and for reference definitions.
sub links {
    my ($file) = @_;
    my @out;
    for my $l (prose_lines(text_of($file))) {
        my ($n, $line) = @$l;
        $line =~ s/(`+).*?\1//g;    # code spans
        if ($line =~ /^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?/) {
            push @out, [$n, $1];
            next;
        }
        while ($line =~ /\]\(\s*<?([^\s)>]*)>?(?:\s+"[^"]*")?\s*\)/g) {
            push @out, [$n, $1];
        }
    }
    return @out;
}

sub unescape {
    my ($s) = @_;
    $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    return $s;
}

# What is wrong with the links of $file, one message per broken link;
# also returns how many relative links were checked.
sub broken_links {
    my ($file) = @_;
    my (@bad, $checked);
    for my $l (links($file)) {
        my ($n, $target) = @$l;
        next if $target =~ /^[A-Za-z][A-Za-z0-9+.-]*:/;    # http:, mailto: ...
        $checked++;
        my ($path, $anchor) = $target =~ /^([^#]*)(?:#(.*))?$/;
        my $dest = $path eq '' ? $file
          : File::Spec->rel2abs(unescape($path), dirname($file));
        if ($target eq '' || $target eq '#') {
            push @bad, "line $n: empty link";
        }
        elsif (!-e $dest) {
            push @bad, "line $n: $target: no such file";
        }
        elsif (defined $anchor && $dest =~ /\.md$/i) {
            push @bad, "line $n: $target: no heading with that anchor"
              unless anchors($dest)->{unescape($anchor)};
        }
        elsif (defined $anchor && $anchor !~ /^L\d+(?:-L\d+)?$/) {
            push @bad, "line $n: $target: an anchor into a file that is not Markdown";
        }
    }
    return (\@bad, $checked // 0);
}

# ---- the documents --------------------------------------------------------------

my @docs;
File::Find::find({
    no_chdir => 1,
    preprocess => sub { sort @_ },
    wanted => sub {
        my $rel = File::Spec->abs2rel($File::Find::name, $TOP);
        if (-d $_) {
            # Build output, logs, generated PKI, .git and other dot dirs.
            $File::Find::prune = 1
              if $rel ne '.' && ($rel =~ m{^(?:build|t/logs|t/pki/out)$}
                                 || $rel =~ m{(?:^|/)\.[^/]});
            return;
        }
        push @docs, $rel if $rel =~ /\.md$/i || $rel =~ m{^CHANGES(?:\.\w+)?$};
    },
}, $TOP);

my @required = qw(README.md HACKING.md docs/cookbook.md docs/reference.md
                  docs/security.md docs/rule-tool.md);
my @docs_dir = grep { m{^docs/[^/]+\.md$} } @docs;

plan tests => 6 + @required + 1 + @docs;

# ---- the checker itself -----------------------------------------------------------

remove_tree($DIR);
make_path("$DIR/sub") or die "$DIR/sub: $!";
spew("$DIR/sub/other.md", "# Other page\n\n## `MTLSAuthz On` or `Require mtls`?\n\n"
     . "## Notes\n\n## Notes\n\nSetext: Rule files\n-----------------\n");
spew("$DIR/self.md", join "\n",
    '# Self test',
    '',
    'Good: [a](sub/other.md), [b](sub/other.md#mtlsauthz-on-or-require-mtls),',
    '[c](#self-test), [d](sub/other.md#notes-1), [e](sub/other.md#setext-rule-files),',
    '![f](sub), [g](https://example.org/nowhere.md), [h][ref].',
    '',
    'Broken: [x](missing.md), [y](sub/other.md#mtlsauthz-on-or-require-mtls-),',
    '[z](#nowhere), [w](sub/other.md#notes-2).',
    '',
    '`[not a link](missing-in-code.md)`',
    '',
    '```',
    '[not a link either](missing-in-fence.md)',
    '# not a heading',
    '```',
    '',
    '[ref]: sub/other.md#other-page',
    '[bad]: gone.md',
    '');
{
    my ($bad, $checked) = broken_links("$DIR/self.md");
    is($checked, 12, 'checker: finds the 12 relative links of its test page, none in code');
    is(scalar(@$bad), 5, 'checker: reports the 5 broken ones') or diag(join "\n", @$bad);
    like(join("\n", @$bad), qr/missing\.md: no such file/,
         'checker: a missing file is reported');
    like(join("\n", @$bad), qr/#nowhere: no heading/,
         'checker: an anchor without a heading is reported');
    is(slug('`MTLSAuthz On` or `Require mtls`?'), 'mtlsauthz-on-or-require-mtls',
       'checker: GitHub slug of a heading with code and punctuation');
    is(slug('From a certificate to a rule: `mtls-authz-rule`'),
       'from-a-certificate-to-a-rule-mtls-authz-rule',
       'checker: GitHub slug keeps hyphens, drops the colon');
}

# ---- the tree's documents ---------------------------------------------------------

for my $f (@required) {
    ok(-s "$TOP/$f", "$f exists") or diag("$TOP/$f is missing or empty");
}
{
    my $readme = -s "$TOP/README.md" ? "$TOP/README.md" : undef;
    my %linked;
    if ($readme) {
        for my $l (links($readme)) {
            my ($path) = $l->[1] =~ /^([^#]*)/;
            $linked{$path} = 1;
        }
    }
    my @orphans = grep { !$linked{$_} } @docs_dir;
    ok($readme && @docs_dir && !@orphans,
       'README.md links to every page of docs/ (' . scalar(@docs_dir) . ')')
      or diag('not linked from README.md: '
              . (@docs_dir ? join(', ', @orphans) : 'there is no docs/*.md'));
}
for my $f (@docs) {
    my ($bad, $checked) = broken_links("$TOP/$f");
    ok(!@$bad, "$f: $checked relative link(s), all resolve")
      or diag(join "\n", map { "$f $_" } @$bad);
}
