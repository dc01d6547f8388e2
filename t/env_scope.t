# The MTLS_* variables are the module's alone. On every request, the
# variables whose names start with MTLS_ that a backend or a log sees are
# exactly what the module exported for that request: the admitted
# client's identity, or nothing (Audit, denied, not enforced), whatever
# another module set before or after it:
#   hdr     SetEnvIf from a request header (header_parser, before the module)
#   setenv  SetEnv in the location (mod_env's fixups, after the module's)
#   rw      a per-directory RewriteRule [E=...] (mod_rewrite's fixups, after)
# in five situations, all but adm-off under MTLSExportEnv On:
#   adm     MTLSAuthz On, the client is admitted
#   adm-off the same without MTLSExportEnv: the module exports nothing,
#           and still removes the foreign values
#   aud     MTLSAuthz On + MTLSAuthzMode Audit, the client would be denied
#   deny    MTLSAuthz On, the client is denied (ErrorDocument 403 is a CGI)
#   open    the module does not enforce here
# The foreign values name MTLS_CLIENT_SUBJECT, which every certificate has,
# and MTLS_CLIENT_SAN_URI_0, which upper-a's certificate lacks.
#
# Runs its own httpd (t/lib/OwnHttpd.pm); the backend is a CGI script that
# prints the environment block as httpd passed it (duplicates included).
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(slurp);
use OwnHttpd ();

my $s = OwnHttpd->new(__FILE__, 'env_scope');
my $dir = $s->dir;
my $ALICE = '"subject=CN=alice,O=Acme Inc.,C=US"';    # admits upper-a too (case folding)
my $PRESET = 'evil-preset';
my $LOG = "$dir/access_log";

my %SRC = (
    hdr    => [qq{SetEnvIf X-Preset "(.+)" MTLS_CLIENT_SAN_URI_0=\$1 MTLS_CLIENT_SUBJECT=\$1}],
    setenv => ['SetEnv MTLS_CLIENT_SAN_URI_0 x-setenv', 'SetEnv MTLS_CLIENT_SUBJECT x-setenv'],
    rw     => ['RewriteEngine On',
               'RewriteRule ^ - [E=MTLS_CLIENT_SUBJECT:%{HTTP:X-Preset},'
               . 'E=MTLS_CLIENT_SAN_URI_0:%{HTTP:X-Preset}]'],
);

$s->add_header(modules => ['cgid']);
$s->write_env_cgi;
$s->add(qq{ScriptAliasMatch "^/(e|err)/" "$dir/cgi/env.cgi"}, qq{<Directory "$dir/cgi">},
        '    Require all granted', '</Directory>',
        'LogFormat "%{X-Req}i %>s subj=%{MTLS_CLIENT_SUBJECT}e osubj=%<{MTLS_CLIENT_SUBJECT}e '
        . 'ouri=%<{MTLS_CLIENT_SAN_URI_0}e" scope');
$s->add_vhost;
$s->add(qq{    CustomLog "$LOG" scope});
my %RULE;    # location => the file:line of its rule
for my $src (sort keys %SRC) {
    my @src = @{ $SRC{$src} };
    $RULE{"/e/adm/$src"} = $s->add_location("/e/adm/$src", 'MTLSAuthz On',
                                            ">>MTLSAllow $ALICE", 'MTLSExportEnv On', @src);
    $s->add_location("/e/adm-off/$src", 'MTLSAuthz On', "MTLSAllow $ALICE", @src);
    $s->add_location("/e/aud/$src", 'MTLSAuthz On', 'MTLSAuthzMode Audit', "MTLSAllow $ALICE",
                     'MTLSExportEnv On', @src);
    $s->add_location("/e/deny/$src", 'MTLSAuthz On', "MTLSAllow $ALICE",
                     'ErrorDocument 403 /err/denied', 'MTLSExportEnv On', @src);
    $s->add_location("/e/open/$src", 'MTLSExportEnv On', @src);
}
# Denied, no ErrorDocument: the access log alone.
$s->add_location('/e/denylog/hdr', 'MTLSAuthz On', "MTLSAllow $ALICE", @{ $SRC{hdr} });
$s->add('</VirtualHost>');
$s->start;

my $n = 0;
my %logged;    # request id => what the access log must show

# GET $path as $cert with the foreign header; returns (status, body, id).
sub preset_get {
    my ($path, $cert) = @_;
    my $id = 'r' . ++$n;
    my ($st, $body) = $s->get($path, cert => $cert,
                              headers => "X-Preset: $PRESET\r\nX-Req: $id\r\n");
    return ($st, $body // '', $id);
}

sub names { join ' ', sort keys %{ $_[0] } }

# Admitted: the variables are exactly the module's for this client and
# rule, each once; nothing was redirected.
sub admitted {
    my ($src, $cert) = @_;
    my $path = "/e/adm/$src";
    my ($st, $body, $id) = preset_get($path, $cert);
    my $what = "admitted, $src, $cert";
    is($st, 200, "$what: 200");
    like($body, qr/^backend=env\.cgi$/m, "$what: the backend ran");
    my $env = OwnHttpd::env_of($body);
    my $want = $s->expected_env($cert, $RULE{$path});
    my @dup = grep { @{ $env->{$_} } > 1 } sort keys %$env;
    ok(!@dup, "$what: every variable once") or diag(OwnHttpd::env_text($env));
    my %got = map { $_ => $env->{$_}[-1] } keys %$env;
    is_deeply(\%got, $want, "$what: the MTLS_* variables are exactly the module's for $cert")
      or diag("got:\n", OwnHttpd::env_text($env));
    my $uri = $want->{MTLS_CLIENT_SAN_URI_0};
    if (defined $uri) {
        is(join('|', @{ $env->{MTLS_CLIENT_SAN_URI_0} // [] }), $uri,
           "$what: MTLS_CLIENT_SAN_URI_0 is the certificate's own value, once");
    }
    else {
        ok(!exists $env->{MTLS_CLIENT_SAN_URI_0},
           "$what: the certificate has no URI SAN: no MTLS_CLIENT_SAN_URI_0 ("
           . join('|', @{ $env->{MTLS_CLIENT_SAN_URI_0} // [] }) . ')');
    }
    $logged{$id} = [$what, 200, $want->{MTLS_CLIENT_SUBJECT}, $want->{MTLS_CLIENT_SUBJECT},
                    $uri // '-'];
}

# Not admitted by the module: the backend (the page, or the
# ErrorDocument) sees no MTLS_* and no REDIRECT_MTLS_* variable.
sub nothing {
    my ($sit, $src, $cert, $want) = @_;
    my $path = "/e/$sit/$src";
    my ($st, $body, $id) = preset_get($path, $cert);
    my $what = "$sit, $src, $cert";
    is($st, $want, "$what: $want");
    like($body, qr/^backend=env\.cgi$/m,
         "$what: the " . ($want == 200 ? 'backend' : 'ErrorDocument CGI') . ' ran')
      unless $sit eq 'denylog';
    my $env = OwnHttpd::env_of($body);
    is(names($env), '', "$what: no MTLS_* or REDIRECT_MTLS_* variable")
      or diag(OwnHttpd::env_text($env));
    $logged{$id} = [$what, $want, '-', '-', '-'];
}

for my $src (sort keys %SRC) {
    admitted($src, 'alice-a');
    admitted($src, 'upper-a');
    nothing('adm-off', $src, 'alice-a', 200);
    my $mark = $s->log_mark;
    nothing('aud', $src, 'bob-a', 200);
    like($s->log_since($mark), qr/AUDIT \(admitted\): client denied by server configuration: \/e\/aud\/$src/,
         "aud, $src: admitted by Audit mode only (precondition)");
    nothing('deny', $src, 'bob-a', 403);
    nothing('open', $src, 'alice-a', 200);
    nothing('open', $src, 'bob-a', 200);
}
nothing('denylog', 'hdr', 'bob-a', 403);

# --- the access log: %{MTLS_CLIENT_SUBJECT}e (the final request: the
# ErrorDocument's after a denial), %<{...}e (the client's request).
{
    my $text = '';
    for (1 .. 100) {    # written after the response
        $text = slurp($LOG);
        last if $text =~ /^r$n /m;
        select(undef, undef, undef, 0.1);
    }
    for my $id (sort { substr($a, 1) <=> substr($b, 1) } keys %logged) {
        my ($what, $st, $subj, $osubj, $ouri) = @{ $logged{$id} };
        my ($line) = $text =~ /^(\Q$id\E .*)$/m;
        is($line // 'no line', "$id $st subj=$subj osubj=$osubj ouri=$ouri",
           "access log, $what: the module's values, '-' where it exported none");
    }
}

$s->stop;
done_testing();
