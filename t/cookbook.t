# The cookbook (docs/cookbook.md): every recipe's configuration is a file
# in conf/cookbook/, docs/cookbook.md shows it byte for byte (checked
# here), and this file runs httpd on exactly that file and checks what
# the cookbook says clients get.
#
# Like t/startup.t, it runs the httpd binary itself, once per recipe, on
# a free loopback port (t/logs/cfg/cookbook/NAME/). The recipe is
# Included unchanged into a TLS server; ${CERTS} and the fingerprints it
# uses are Defines written before it. Requests are made with curl
# (HTTP/1.1 or HTTP/2). Besides t/pki/out, a few client certificates are
# made here: Partner B's, SPIFFE workloads with an empty subject, and
# alice's replacement for a leaked certificate (her subject, a new key).
# The recipes that show mtls-authz-rule commands have them run as shown,
# in a directory holding the files they name, and their output compared
# with what the page shows.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use File::Copy qw(copy);
use File::Path qw(make_path);
use FindBin ();
use POSIX qw(strftime);
use Time::Local qw(timegm);
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(locate missing_prereqs slurp spew free_port kill_group run_cmd must_run curl_args
  case_dir head_lines start_server stop_server pins start_wsgi_backend wsgi_answer wsgi_certs
  config_test describe_status log_wait);

my %at = locate(__FILE__);
my ($HTTPD, $T_DIR, $TOP, $PKI) = @at{qw(httpd t_dir top pki)};
my $DIR   = "$at{cfg}/cookbook";
my $CERTS = "$DIR/certs";
my $BOOK  = "$TOP/conf/cookbook";
my $BOOK_OUT = "$DIR/book";    # recipes changed as the cookbook says
my $TOOL  = "$TOP/build/mtls-authz-rule";

my @missing = missing_prereqs(%at, need_pki => 1);
push @missing, "$TOOL is missing (run make)" unless -x $TOOL;
push @missing, 'curl is missing' unless grep { -x "$_/curl" } split /:/, $ENV{PATH};
die "cannot run: @missing\n" if @missing;

my %FP = pins($PKI);

case_dir($at{cfg}, 'cookbook', 'certs', 'book');

# ---- docs/cookbook.md shows each recipe file byte for byte ------------------

# The cookbook's page (it was a section of README.md).
my $README = slurp("$TOP/docs/cookbook.md");
for my $f (qw(partner-api spiffe intermediate audit deny-leaked contractor review
              proxy-identity cgi-env denial-before denial-after h2-per-location h2)) {
    my $conf = slurp("$BOOK/$f.conf");
    ok(length($conf) && index($README, "```apache\n$conf```\n") >= 0,
       "README shows conf/cookbook/$f.conf byte for byte");
}

# ---- certificates -------------------------------------------------------------

sub bundle {
    my ($name, @from) = @_;
    spew("$CERTS/$name", join '', map { slurp("$PKI/$_.crt") } @from);
}
copy("$PKI/server.crt", "$CERTS/server.crt") or die "copy: $!";
copy("$PKI/server.key", "$CERTS/server.key") or die "copy: $!";
bundle('partner-cas.pem',            qw(ca-a ca-b));
bundle('spiffe-bundle.pem',          qw(ca-a ca-b));
bundle('root-and-intermediate.pem',  qw(ca-a ca-b int-a));
bundle('client-ca.pem',              qw(ca-a));

# leaf NAME CA SUBJECT SAN [KEY]: a clientAuth certificate signed by CA
# (a t/pki/out name) with alice-a's key (or the key file KEY), as
# $CERTS/NAME.pem (cert + key).
sub leaf {
    my ($name, $ca, $subj, $san, $key) = @_;
    $key //= "$PKI/alice-a.key";
    my $crit = $subj eq '/' ? 'critical,' : '';    # RFC 5280: empty subject
    spew("$DIR/$name.ext", "basicConstraints=CA:FALSE\n"
         . "keyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n"
         . "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
         . "subjectAltName=$crit$san\n");
    must_run("$DIR/cmd.out", "$name csr", 'openssl', 'req', '-new', '-key', $key,
             '-subj', '/CN=x', '-out', "$DIR/$name.csr");
    must_run("$DIR/cmd.out", "$name crt", 'openssl', 'x509', '-req', '-in', "$DIR/$name.csr",
             '-CA', "$PKI/$ca.crt", '-CAkey', "$PKI/$ca.key", '-subj', $subj,
             '-days', '2', '-extfile', "$DIR/$name.ext",
             '-out', "$CERTS/$name.crt");
    spew("$CERTS/$name.pem", slurp("$CERTS/$name.crt") . slurp($key));
}
leaf('partner-b', 'ca-b', '/C=DE/O=Partner B GmbH/CN=billing',
     'DNS:billing.partner-b.example');
leaf('svid-web', 'ca-a', '/', 'URI:spiffe://example.org/ns/prod/sa/web');
leaf('svid-staging', 'ca-a', '/', 'URI:spiffe://example.org/ns/staging/sa/web');
leaf('svid-evil', 'ca-a', '/', 'URI:spiffe://example.org/ns/prod-evil/sa/web');
leaf('svid-other-ca', 'ca-b', '/', 'URI:spiffe://example.org/ns/prod/sa/web');
# alice's new certificate after her old one (alice-a) leaked: the same
# subject and CA, a key of its own.
must_run("$DIR/cmd.out", 'alice-new key', 'openssl', 'genpkey', '-algorithm', 'EC',
         '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', "$DIR/alice-new.key");
leaf('alice-new', 'ca-a', '/C=US/O=Acme Inc./CN=alice', 'DNS:alice.example.com',
     "$DIR/alice-new.key");

# A client: a t/pki/out name, or one of the certificates made above.
sub pem {
    my ($c) = @_;
    return -e "$CERTS/$c.pem" ? "$CERTS/$c.pem" : "$PKI/$c.pem";
}

# ---- httpd ------------------------------------------------------------------

# Starts httpd on recipe $recipe (conf/cookbook/$recipe.conf) with the
# Defines %def; returns { pid, port, dir } or undef (after a failed test).
sub start_recipe {
    my ($recipe, %def) = @_;
    my $dir = "$DIR/$recipe";
    make_path("$dir/htdocs") or die "$dir: $!";
    spew("$dir/htdocs/ok.txt", "ok\n");
    my $port = free_port();
    # A recipe that maps its own paths (ScriptAlias) does without the
    # catch-all alias, which would come first.
    my $catchall = !delete $def{OWN_PATHS};
    my @lines = (
        head_lines(%at, dir => $dir, port => $port,
                   loglevel => delete $def{LOGLEVEL}, modules => delete $def{MODULES},
                   servername => 'localhost', docroot => "$dir/htdocs"),
        qq{<Directory "$dir/htdocs">},
        '    Require all granted',
        '</Directory>',
        # Every path serves the same file: 200 means admitted.
        ($catchall ? qq{AliasMatch "^/" "$dir/htdocs/ok.txt"} : ()),
        qq{Define CERTS "$CERTS"},
        (map { "Define $_ $def{$_}" } sort keys %def),
        'SSLEngine on',
        'SSLCertificateFile "${CERTS}/server.crt"',
        'SSLCertificateKeyFile "${CERTS}/server.key"',
        qq{Include "} . (-e "$BOOK_OUT/$recipe.conf" ? $BOOK_OUT : $BOOK)
          . qq{/$recipe.conf"},
    );
    spew("$dir/httpd.conf", join("\n", @lines) . "\n");
    my ($pid, $why) = start_server($HTTPD, "$dir/httpd.conf", $port, 20);
    ok($pid, "$recipe: httpd starts with conf/cookbook/$recipe.conf")
      or diag($why, "\n", slurp("$dir/start.out") . slurp("$dir/error_log"));
    return $pid ? { pid => $pid, port => $port, dir => $dir, recipe => $recipe } : undef;
}

sub stop_recipe {
    my ($h) = @_;
    stop_server($h->{pid}, 15) if $h;
}

# GET with curl: (status, HTTP version, body); status "000" and version
# "0" when no response came (e.g. the handshake failed). $cert: a client
# name or undef; @opt: more curl options (--http2, -H ...). curl's -v
# trace stays in $h->{trace}.
sub curl {
    my ($h, $path, $cert, @opt) = @_;
    my ($out, $body) = ("$h->{dir}/curl.out", "$h->{dir}/body.out");
    unlink $body;
    run_cmd(30, $out, curl_args($PKI, $h->{port}, $cert ? pem($cert) : undef, [$path], '-v',
                                '-o', $body, '-w', '\n%{http_code} %{http_version}', @opt));
    $h->{trace} = slurp($out);
    return $h->{trace} =~ /\n(\d{3}) ([\d.]+)\z/ ? ($1, $2, slurp($body)) : ('no answer');
}

# "STATUS VERSION" ("200 1.1", "403 2", "000 0").
sub curl_version {
    my ($st, $v) = curl(@_);
    return defined $v ? "$st $v" : $st;
}

sub curl_status { (curl(@_))[0] }

# Asserts what each client gets for $path: [client (undef: none), status,
# test name].
sub statuses {
    my ($h, $path, @rows) = @_;
    is(curl_status($h, $path, $_->[0]), $_->[1], $_->[2]) for @rows;
}

# ---- 1. partner API, each partner pinned to its own CA -----------------------

if (my $h = start_recipe('partner-api', PARTNER_A_CA => $FP{FP_CA_A},
                  PARTNER_B_CA => $FP{FP_CA_B})) {
    statuses($h, '/api/orders',
        ['alice-a',   200, 'partner-api: partner A (CA A) gets 200'],
        ['partner-b', 200, 'partner-api: partner B (CA B) gets 200'],
        ['alice-b',   403, "partner-api: partner A's subject from CA B gets 403"],
        ['bob-a',     403, 'partner-api: another subject from CA A gets 403'],
        [undef,     '000', 'partner-api: no certificate: the handshake fails']);
    stop_recipe($h);
    like(slurp("$h->{dir}/error_log"),
         qr/client denied by server configuration: \/api\/orders: issuer not allowed; subject "CN=alice,O=Acme Inc\.,C=US", issuer sha256:$FP{FP_CA_B}/,
         'partner-api: the denial of CN=alice from CA B says "issuer not allowed"');
}

# ---- 2. SPIFFE workloads by URI prefix -------------------------------------

if (my $h = start_recipe('spiffe', SPIFFE_CA => $FP{FP_CA_A})) {
    statuses($h, '/prod/x',
        ['svid-web',      200, 'spiffe: spiffe://example.org/ns/prod/sa/web gets 200'],
        ['alice-a',       200, 'spiffe: .../ns/prod/sa/alice (with a subject too) gets 200'],
        ['svid-staging',  403, 'spiffe: .../ns/staging/sa/web gets 403'],
        ['svid-evil',     403, 'spiffe: .../ns/prod-evil/sa/web (a string prefix) gets 403'],
        ['bob-a',         403, 'spiffe: .../ns/production/sa/bob gets 403'],
        ['svid-other-ca', 403, 'spiffe: .../ns/prod/sa/web from the other trusted CA gets 403']);
    stop_recipe($h);
}

# ---- 3. pinning one intermediate ----------------------------------------------

if (my $h = start_recipe('intermediate', INTERMEDIATE_CA => $FP{FP_INT_A})) {
    statuses($h, '/internal/x',
        ['carol-int',       200, 'intermediate: a certificate signed by the intermediate gets 200'],
        ['carol-int-chain', 200, 'intermediate: the same, sending the intermediate too, gets 200'],
        ['alice-a',         403,
         'intermediate: a certificate signed directly by its root gets 403'],
        ['alice-b',         403, 'intermediate: a certificate from the other root gets 403']);
    stop_recipe($h);
    like(slurp("$h->{dir}/error_log"),
         qr/\/internal\/x: issuer not allowed; subject "CN=alice,O=Acme Inc\.,C=US", issuer sha256:$FP{FP_CA_A}/,
         'intermediate: the root-signed certificate is denied naming the root as issuer');
}

# ---- staged rollout with Audit mode -------------------------------------------

sub audit_lines {
    my ($h) = @_;
    return grep { /\] AUDIT/ } split /\n/, slurp("$h->{dir}/error_log");
}

if (my $h = start_recipe('audit', PARTNER_CA => $FP{FP_CA_A})) {
    statuses($h, '/partners/orders', ['alice-a', 200, 'audit: a client the list admits gets 200']);
    is(scalar(audit_lines($h)), 0, 'audit: ... and no AUDIT line');
    statuses($h, '/partners/orders',
        ['bob-a',   200, 'audit: a client the list would refuse also gets 200'],
        ['alice-b', 200, 'audit: so does the right subject from the wrong CA']);
    stop_recipe($h);
    my @audit = audit_lines($h);
    is(scalar(@audit), 2, 'audit: two AUDIT lines, one per refused client');
    like($audit[0] // '',
         qr/\[mtls_authz:warn\].*\] AUDIT \(admitted\): client denied by server configuration: \/partners\/orders: no rule matched; subject "CN=bob,O=Acme Inc\.,C=US", issuer sha256:$FP{FP_CA_A}$/,
         'audit: bob\'s line says why, at warning level');
    like($audit[1] // '', qr/: issuer not allowed; subject "CN=alice,O=Acme Inc\.,C=US", issuer sha256:$FP{FP_CA_B}$/,
         'audit: alice from CA B: "issuer not allowed"');

    # Stage 2, as the recipe says: the same file without the Audit line.
    my $enforced = slurp("$BOOK/audit.conf");
    ok($enforced =~ s/^\s*MTLSAuthzMode Audit\n//m,
       'audit: the recipe has a MTLSAuthzMode Audit line to delete');
    spew("$BOOK_OUT/audit-enforced.conf", $enforced);
    if (my $e = start_recipe('audit-enforced', PARTNER_CA => $FP{FP_CA_A})) {
        statuses($e, '/partners/orders',
            ['alice-a', 200, 'audit, enforced: the admitted client still gets 200'],
            ['bob-a',   403, 'audit, enforced: the client the AUDIT line named now gets 403']);
        stop_recipe($e);
        my ($deny) = grep { /client denied/ } split /\n/, slurp("$e->{dir}/error_log");
        my ($want) = ($audit[0] // '') =~ /AUDIT \(admitted\): (client denied.*)$/;
        ok(defined $want && defined $deny && $deny =~ /\[mtls_authz:error\].*\] \Q$want\E$/,
           'audit, enforced: the denial line is the AUDIT line without the marker')
          or diag("audit: $audit[0]\nenforced: " . ($deny // 'none'));
    }
}

# ---- the rule tool as the cookbook shows it ------------------------------------

# The commands of a ```console block of the page ("$ " lines; a line
# ending in "\" goes on) and the output shown after each: ([command,
# [lines]], ...).
sub console_steps {
    my ($block) = @_;
    my @steps;
    my $cont = 0;
    for my $line (split /\n/, $block) {
        if ($cont) {
            $steps[-1][0] .= "\n$line";
        }
        elsif ($line =~ /^\$ (.*)$/) {
            push @steps, [$1, []];
        }
        elsif (@steps) {
            push @{ $steps[-1][1] }, $line;
        }
        $cont = $line =~ /\\$/;
    }
    return @steps;
}

# Runs the steps in one shell, in $dir, with build/ (the tool) first in
# PATH, as a reader would type them; returns the output of each, with
# stderr, as a list of lines. "$?" after a step is that step's status.
sub run_console {
    my ($dir, $name, @steps) = @_;
    my $script = qq{cd '$dir' || exit 99\nPATH='$TOP/build':"\$PATH"\nst=0\n};
    for my $i (0 .. $#steps) {
        $script .= qq{echo '\@\@step $i'\n(exit \$st)\n$steps[$i][0] 2>&1\nst=\$?\n};
    }
    spew("$dir/$name.sh", $script);
    my ($st, $hung) = run_cmd(60, "$dir/$name.out", 'sh', "$dir/$name.sh");
    ok(!$st && !$hung, "$name: the commands run (" . describe_status($st) . ')')
      or diag(slurp("$dir/$name.out"));
    my @out = map { [] } @steps;
    my $cur;
    for my $line (split /\n/, slurp("$dir/$name.out")) {
        if ($line =~ /^\@\@step (\d+)$/) { $cur = $1; next }
        push @{ $out[$cur] }, $line if defined $cur;
    }
    return @out;
}

# The fenced blocks of a text: ([info string, body], ...).
sub fenced {
    my ($text) = @_;
    my (@blocks, $cur);
    for my $line (split /^/, $text) {
        if (!$cur && $line =~ /^```(\w*)\n\z/) {
            $cur = [$1, ''];
        }
        elsif ($cur && $line eq "```\n") {
            push @blocks, $cur;
            undef $cur;
        }
        elsif ($cur) {
            $cur->[1] .= $line;
        }
    }
    return @blocks;
}

# The section of the page under the heading $title.
sub section {
    my ($title) = @_;
    my ($text) = $README =~ /^## \Q$title\E\n(.*?)(?=^## |\z)/ms;
    ok(defined $text, "the cookbook has a section '$title'");
    return $text // '';
}

# ---- blocking one leaked certificate ------------------------------------------

{
    my $text = section('Blocking one leaked certificate now');
    my $conf = slurp("$BOOK/deny-leaked.conf");
    my @conf = split /\n/, $conf;
    my ($ln) = grep { $conf[$_ - 1] =~ /^\s*MTLSDeny / } 1 .. @conf;
    my ($recipe_line) = $conf =~ /^\s*(MTLSDeny .*)$/m;
    ok($ln && $recipe_line, 'deny-leaked: the recipe has an MTLSDeny line') or $ln = 0;

    # mtls-authz-rule --deny, as the page shows it, for alice's leaked
    # certificate (alice-a) under the name it uses.
    my $tdir = "$DIR/deny-tool";
    make_path($tdir);
    copy("$PKI/alice-a.crt", "$tdir/alice-old.crt") or die "copy: $!";
    copy("$CERTS/partner-cas.pem", "$tdir/partner-cas.pem") or die "copy: $!";
    my ($block) = map { $_->[0] eq 'console' ? $_->[1] : () } fenced($text);
    my @steps = console_steps($block // '');
    ok(@steps == 1 && $steps[0][0] =~ /^mtls-authz-rule --deny /,
       'deny-leaked: the page shows one mtls-authz-rule --deny command') or diag($block // 'no block');
    my ($got) = run_console($tdir, 'deny-tool', @steps);
    # The shown output as patterns: fingerprints and the serial number
    # are the test PKI's, everything else must be as shown.
    my @want = @{ $steps[0][1] // [] };
    my @pat = map {
        my $p = quotemeta;
        $p =~ s/[0-9a-f]{64}/([0-9a-f]{64})/g;
        $p =~ s/serial\\:\\ \\ [0-9A-F]+/serial\\:\\ \\ ([0-9A-F]+)/;
        $p =~ s/serial\\=[0-9A-F]+/serial\\=([0-9A-F]+)/;
        qr/^$p$/
    } @want;
    my $same = @$got == @pat && !grep { $got->[$_] !~ $pat[$_] } 0 .. $#pat;
    ok($same, 'deny-leaked: mtls-authz-rule --deny prints what the page shows')
      or diag("printed:\n" . join("\n", @$got) . "\npage:\n" . join("\n", @want));
    my ($line) = grep { /^MTLSDeny / } @$got;
    (my $expect = $recipe_line // 'none') =~ s/\$\{LEAKED_CERT\}/$FP{FP_CERT_ALICE_A}/;
    is($line, $expect, "deny-leaked: the line it prints is the recipe's, with alice-a's fingerprint");
    my ($alt) = map { /^# (MTLSDeny issuer=sha256:$FP{FP_CA_A} serial=[0-9A-F]+)$/ ? $1 : () } @$got;
    ok($alt, "deny-leaked: ... and the alternative by CA A's fingerprint and serial number")
      or diag(join "\n", @$got);
    my $serial = `openssl x509 -in '$PKI/alice-a.crt' -noout -serial`;
    $serial =~ s/^serial=//;
    chomp $serial;
    like($alt // '', qr/ serial=\Q$serial\E$/, "deny-leaked: ... whose serial is alice-a's ($serial)");

    my %def = (LEAKED_CERT => $FP{FP_CERT_ALICE_A}, PARTNER_A_CA => $FP{FP_CA_A},
               PARTNER_B_CA => $FP{FP_CA_B});
    my $deny_re = sub {
        my ($file, $n, $path) = @_;
        $path //= '/api/orders';
        qr/\[mtls_authz:error\].* client denied by server configuration: \Q$path\E: denied by \Q$file\E:$n; subject "CN=alice,O=Acme Inc\.,C=US", issuer sha256:$FP{FP_CA_A}$/m;
    };
    if (my $h = start_recipe('deny-leaked', %def)) {
        statuses($h, '/api/orders',
            ['alice-a',   403, 'deny-leaked: the leaked certificate gets 403'],
            ['alice-new', 200, "deny-leaked: alice's new certificate (same subject and CA) gets 200"],
            ['partner-b', 200, 'deny-leaked: partner B still gets 200'],
            ['bob-a',     403, 'deny-leaked: a subject no rule lists gets 403']);
        stop_recipe($h);
        like(slurp("$h->{dir}/error_log"), $deny_re->("$BOOK/deny-leaked.conf", $ln),
             'deny-leaked: the denial names the MTLSDeny line');
    }

    # As the page says: a location with its own MTLSAllow lines keeps the
    # host's deny rules (a second location inside /api/).
    my $nested = $conf;
    ok($nested =~ s{^</Location>\n}{</Location>
<Location "/api/admin/">
    MTLSAllow "subject=CN=alice,O=Acme Inc.,C=US" issuer=sha256:\${PARTNER_A_CA}
</Location>
}m, 'deny-leaked: a nested location can be added');
    spew("$BOOK_OUT/deny-leaked-nested.conf", $nested);
    if (my $h = start_recipe('deny-leaked-nested', %def)) {
        statuses($h, '/api/admin/x',
            ['alice-a',   403, 'deny-leaked, nested location with its own MTLSAllow: the leaked certificate gets 403'],
            ['alice-new', 200, "deny-leaked, nested location: alice's new certificate gets 200"],
            ['partner-b', 403, 'deny-leaked, nested location: its own rules replace the allow rules (partner B 403)']);
        stop_recipe($h);
        like(slurp("$h->{dir}/error_log"), $deny_re->("$BOOK_OUT/deny-leaked-nested.conf", $ln, '/api/admin/x'),
             'deny-leaked, nested location: the denial names the host-level MTLSDeny line');
    }

    # As the page says, an .htaccess cannot add a deny rule (nor drop
    # one: there is no directive for that): its directory answers 500.
    my $ht = $conf;
    $ht =~ s{^<Location "/api/">$}{<Directory "$DIR/deny-leaked-htaccess/htdocs">
    AllowOverride AuthConfig
</Directory>
<Location "/api/">}m;
    spew("$BOOK_OUT/deny-leaked-htaccess.conf", $ht);
    if (my $h = start_recipe('deny-leaked-htaccess', %def)) {
        # httpd reads an .htaccess for each request.
        spew("$h->{dir}/htdocs/.htaccess", qq{MTLSDeny "subject=CN=billing,O=Partner B GmbH,C=DE"\n});
        statuses($h, '/api/orders',
            ['partner-b', 500, 'deny-leaked, MTLSDeny in an .htaccess: its directory answers 500']);
        stop_recipe($h);
        like(slurp("$h->{dir}/error_log"), qr/\.htaccess: MTLSDeny not allowed here|\.htaccess: MTLSDeny cannot occur within htaccess files/,
             'deny-leaked, MTLSDeny in an .htaccess: the error log says it is not allowed there');
    }

    # The commented alternative, uncommented instead: the same refusal.
    my $by_serial = $conf;
    ok($alt && $by_serial =~ s/^(\s*)MTLSDeny .*$/$1$alt/m,
       'deny-leaked: the MTLSDeny line can be replaced by the alternative');
    spew("$BOOK_OUT/deny-leaked-serial.conf", $by_serial);
    if ($alt and my $h = start_recipe('deny-leaked-serial', %def)) {
        statuses($h, '/api/orders',
            ['alice-a',   403, 'deny-leaked by issuer and serial: the leaked certificate gets 403'],
            ['alice-new', 200, "deny-leaked by issuer and serial: alice's new certificate gets 200"]);
        stop_recipe($h);
        like(slurp("$h->{dir}/error_log"), $deny_re->("$BOOK_OUT/deny-leaked-serial.conf", $ln),
             'deny-leaked by issuer and serial: the denial names that line');
    }
}

# ---- the contractor's access ends on a date ------------------------------------

{
    my $conf = slurp("$BOOK/contractor.conf");
    my @conf = split /\n/, $conf;
    my ($ln) = grep { $conf[$_ - 1] =~ /not_after=/ } 1 .. @conf;
    my ($date) = $conf =~ /not_after=(\d{4}-\d\d-\d\d)\b/;
    ok($ln && $date, "contractor: the recipe has a not_after= date ($date)") or ($ln, $date) = (0, '2027-03-31');
    my @bob_re = (qr/client denied by server configuration: \/api\/orders: /,
                  qr/; subject "CN=bob,O=Acme Inc\.,C=US", issuer sha256:$FP{FP_CA_A}$/m);

    # Dates from the test's clock, in UTC: a rule that ended at today's
    # midnight, one that ends in four days (within 7), one that starts
    # in two.
    my $day = sub { strftime('%Y-%m-%d', gmtime(time + $_[0] * 86400)) };
    my ($yesterday, $today, $in3, $in4, $in2) = map { $day->($_) } -1, 0, 3, 4, 2;

    # The recipe as it is: bob is admitted until the end of its date.
    my ($y, $m, $d) = split /-/, $date;
    my $end = timegm(0, 0, 0, $d, $m - 1, $y) + 86400;
    if (my $h = start_recipe('contractor', PARTNER_CA => $FP{FP_CA_A})) {
        statuses($h, '/api/orders',
            ['alice-a', 200, 'contractor: alice gets 200'],
            ['bob-a', time < $end ? 200 : 403,
             "contractor: bob gets " . (time < $end ? "200 before" : "403 after") . " the end of $date"]);
        stop_recipe($h);
    }

    # A copy with the date written as the test's yesterday.
    my $copy = sub {
        my ($name, $with) = @_;
        my $c = $conf;
        ok($c =~ s/not_after=\Q$date\E/$with/, "contractor: $name copy with $with");
        spew("$BOOK_OUT/$name.conf", $c);
        return "$BOOK_OUT/$name.conf";
    };
    my $file = $copy->('contractor-expired', "not_after=$yesterday");
    if (my $h = start_recipe('contractor-expired', PARTNER_CA => $FP{FP_CA_A})) {
        statuses($h, '/api/orders',
            ['alice-a', 200, 'contractor, ended yesterday: alice gets 200'],
            ['bob-a',   403, 'contractor, ended yesterday: bob gets 403']);
        stop_recipe($h);
        like(slurp("$h->{dir}/error_log"),
             qr/\[mtls_authz:error\].*$bob_re[0]rule \Q$file\E:$ln expired at ${today}T00:00:00Z$bob_re[1]/,
             "contractor, ended yesterday: the denial says the rule expired at today's midnight (UTC)");
        like(slurp("$h->{dir}/start.out"),
             qr/^.*\brule \Q$file\E:$ln expired at ${today}T00:00:00Z: it no longer matches any client$/m,
             'contractor, ended yesterday: httpd warned at startup that the rule expired');
    }
    $file = $copy->('contractor-expiring', "not_after=$in3");
    if (my $h = start_recipe('contractor-expiring', PARTNER_CA => $FP{FP_CA_A})) {
        statuses($h, '/api/orders', ['bob-a', 200, 'contractor, ends in 4 days: bob gets 200']);
        stop_recipe($h);
        like(slurp("$h->{dir}/start.out"),
             qr/^.*\brule \Q$file\E:$ln expires at ${in4}T00:00:00Z, within 7 days$/m,
             'contractor, ends in 4 days: httpd warned at startup');
        my ($st, $out) = config_test($HTTPD, "$h->{dir}/httpd.conf", 60);
        ok($st == 0 && $out =~ /\brule \Q$file\E:$ln expires at ${in4}T00:00:00Z, within 7 days$/m,
           'contractor, ends in 4 days: so does httpd -t (apachectl configtest)') or diag($out);
    }
    $file = $copy->('contractor-not-yet', "not_before=$in2");
    if (my $h = start_recipe('contractor-not-yet', PARTNER_CA => $FP{FP_CA_A})) {
        statuses($h, '/api/orders', ['bob-a', 403, 'contractor, not_before in 2 days: bob gets 403']);
        stop_recipe($h);
        like(slurp("$h->{dir}/error_log"),
             qr/\[mtls_authz:error\].*$bob_re[0]rule \Q$file\E:$ln not yet valid until ${in2}T00:00:00Z$bob_re[1]/,
             'contractor, not_before in 2 days: the denial says when the rule starts');
    }
}

# ---- will this rule file lock anyone out? --------------------------------------

{
    my $text = section('Will this rule file lock anyone out?');
    # The rule files the page shows, in order: partners.txt, the
    # proposal, the fixed proposal; and its two console blocks.
    my @files = map { $_->[0] eq '' && $_->[1] =~ /\A# (partners\.txt(?:\.new)?):/ ? [$1, $_->[1]] : () }
      fenced($text);
    my @blocks = map { $_->[0] eq 'console' ? $_->[1] : () } fenced($text);
    is(join(' ', map { $_->[0] } @files), 'partners.txt partners.txt.new partners.txt.new',
       'review: the page shows partners.txt, a proposal and the proposal fixed');
    is(scalar @blocks, 2, 'review: ... and two console blocks');

    # The directory the commands run in: the host's trust store, the
    # clients' certificates, the rule files.
    my $rdir = "$DIR/review-tool";
    make_path("$rdir/clients");
    copy("$CERTS/client-ca.pem", "$rdir/client-ca.pem") or die "copy: $!";
    copy("$PKI/$_-a.crt", "$rdir/clients/$_.crt") || die "copy: $!" for qw(alice bob dave);
    spew("$rdir/$_->[0]", $_->[1]) for grep { defined } @files[0, 1];
    for my $i (0, 1) {
        spew("$rdir/partners.txt.new", $files[2][1]) if $i == 1 && $files[2];
        my @steps = console_steps($blocks[$i] // '');
        ok(@steps >= 2, "review: console block " . ($i + 1) . ' has commands') or next;
        my @got = run_console($rdir, "review-$i", @steps);
        for my $k (0 .. $#steps) {
            is(join("\n", @{ $got[$k] }), join("\n", @{ $steps[$k][1] }),
               'review: `' . $steps[$k][0] . '` prints what the page shows');
        }
    }

    # httpd on the recipe, with each version of the file as partners.txt
    # in turn (graceful restarts, as the page says): the statuses are
    # those the tool's --check gives for that file.
    my $hdir = "$DIR/review-rules";
    make_path($hdir);
    spew("$hdir/partners.txt", $files[0][1]) if $files[0];
    my %want = (0 => [200, 200, 403], 1 => [200, 403, 200], 2 => [200, 200, 200]);
    my @who = qw(alice-a bob-a dave-a);
    if ($files[0] and my $h = start_recipe('review', RULES => $hdir)) {
        for my $v (0 .. 2) {
            my $what = ('partners.txt', 'the proposal', 'the fixed proposal')[$v];
            if ($v) {
                spew("$hdir/partners.txt", $files[$v][1]);
                my $mark = -s "$h->{dir}/error_log";
                my ($st) = run_cmd(30, "$h->{dir}/graceful.out", $HTTPD, '-k', 'graceful',
                                   '-f', "$h->{dir}/httpd.conf");
                is(describe_status($st), 'exit 0', "review: httpd -k graceful with $what")
                  or diag(slurp("$h->{dir}/graceful.out"));
                log_wait("$h->{dir}/error_log", $mark, qr/resuming normal operations/, 20);
                # Old children may answer a moment longer: wait for the
                # client whose status changes.
                my $c = $v == 1 ? 1 : 2;
                my $deadline = time + 20;
                sleep 0.2 while curl_status($h, '/reports/q3', $who[$c]) ne $want{$v}[$c]
                  && time < $deadline;
            }
            # What the tool says of the same file, as httpd reads it.
            my ($st) = run_cmd(60, "$h->{dir}/check$v.out", $TOOL, '--check', '--config',
                               "$hdir/partners.txt", '--ca', "$CERTS/client-ca.pem",
                               map { "$PKI/$_.crt" } @who);
            my %tool = map { m{/([\w-]+)\.crt: (admit|refuse)\b} ? ($1 => $2) : () }
              split /\n/, slurp("$h->{dir}/check$v.out");
            for my $k (0 .. 2) {
                is(curl_status($h, '/reports/q3', $who[$k]), $want{$v}[$k],
                   "review, $what: $who[$k] gets $want{$v}[$k]");
                is($tool{ $who[$k] } // 'nothing', $want{$v}[$k] == 200 ? 'admit' : 'refuse',
                   "review, $what: mtls-authz-rule --check says the same of $who[$k]");
            }
        }
        stop_recipe($h);
    }
}

# ---- passing the identity to a proxied backend -------------------------------

# The backend is t/wsgi_backend.py, on Python's wsgiref: like WSGI, PHP and
# CGI-style servers it reads '-' and '_' in header names as the same, so
# a client's X-Client_Subject and the proxy's X-Client-Subject land in the
# same HTTP_X_CLIENT_SUBJECT (values joined with ','). It answers with its
# HTTP_X_CLIENT_* variables and counts the requests it gets; it decodes
# the RFC 9440 Client-Cert and Client-Cert-Chain it gets as certificates
# and reports their SHA-256.

# GET with curl, returning (status, body).
sub curl_body { (curl(@_))[0, 2] }

{
    my $bdir = "$DIR/proxy-identity";
    make_path($bdir) or die "$bdir: $!";
    my ($bpid, $bport) = start_wsgi_backend($T_DIR, $bdir, 300);
    ok($bpid, 'proxy-identity: the WSGI backend (t/wsgi_backend.py) starts')
      or diag($bport);
    my $h = $bpid && start_recipe('proxy-identity', PARTNER_CA => $FP{FP_CA_A},
                           BACKEND_PORT => $bport,
                           MODULES => [qw(proxy proxy_http)]);
    if ($h) {
        my @conf = split /\n/, slurp("$BOOK/proxy-identity.conf");
        my ($ln) = grep { $conf[$_ - 1] =~ /^\s*MTLSAllow / } 1 .. @conf;
        # All the backend may see: the proxy's three headers, once each.
        my %alice = (
            HTTP_X_CLIENT_SUBJECT     => 'CN=alice,O=Acme Inc.,C=US',
            HTTP_X_CLIENT_CERT_SHA256 => $FP{FP_CERT_ALICE_A},
            HTTP_X_CLIENT_RULE        => "$BOOK/proxy-identity.conf:" . ($ln // '?'),
        );
        my @sent = ("X-Client-Subject: $alice{HTTP_X_CLIENT_SUBJECT}",
                    "X-Client-Cert-SHA256: $alice{HTTP_X_CLIENT_CERT_SHA256}",
                    "X-Client-Rule: $alice{HTTP_X_CLIENT_RULE}");
        my $count = sub {
            slurp("$bdir/backend.count") =~ /^(\d+)$/m ? $1 : 'none';
        };
        # What MTLSForwardHeaders rfc9440 sends for alice: her
        # certificate, and CA A's as the verified chain.
        my $certs = join "\n", 'Client-Cert Client-Cert-Chain',
          "HTTP_CLIENT_CERT 0 sha256=$FP{FP_CERT_ALICE_A} subject=CN=alice,O=Acme Inc.,C=US",
          "HTTP_CLIENT_CERT_CHAIN 0 sha256=$FP{FP_CA_A} subject=CN=Test CA A,O=MTLS Test";
        # alice with the request headers @hdr (curl -H syntax; "Name;"
        # is an empty value): she gets the backend's answer, and the
        # backend's X-Client-* variables are exactly %alice plus %more.
        my $alice = sub {
            my ($what, $more, @hdr) = @_;
            my $before = $count->();
            my ($st, $body) = curl_body($h, '/api/orders', 'alice-a',
                                       map { ('-H', $_) } @hdr);
            my ($vars, $raw) = wsgi_answer($body);
            is($st, 200, "proxy-identity: alice, $what: 200");
            is($count->(), $before =~ /^\d+$/ ? $before + 1 : 'a count',
               "proxy-identity: alice, $what: the backend got one request");
            is_deeply($vars, { %alice, %$more },
                      "proxy-identity: alice, $what: the backend's HTTP_X_CLIENT_* are the proxy's")
              or diag($body);
            is_deeply([ grep { /^X[-_]Client[-_]/i && !/^X-Client_Admin:/ } @$raw ], \@sent,
                      "proxy-identity: alice, $what: it got the proxy's three header lines, no other")
              or diag($body);
            my $c = wsgi_certs($body);
            is(join("\n", "@{ $c->{names} }", map { my $k = $_; map { "$k $_" } @{ $c->{cert}{$k} } }
                      sort keys %{ $c->{cert} }), $certs,
               "proxy-identity: alice, $what: her Client-Cert and Client-Cert-Chain alone")
              or diag($body);
        };
        is($count->(), 0, 'proxy-identity: the backend counts requests, none yet');
        $alice->('no X-Client headers of her own', {});
        my $cn_admin = 'CN=admin,O=Acme Inc.,C=US';
        my @forged = ("X-Client-Subject: $cn_admin",
                      "X-Client_Subject: $cn_admin",
                      "x_client_subject: $cn_admin",
                      "X_Client-Subject: $cn_admin",
                      'X-CLIENT_RULE: forged',
                      'X-Client-Cert_SHA256: ' . ('0' x 64),
                      'x_CLIENT-cert_sha256: ' . ('1' x 64));
        # bob's certificate, as a client would forge Client-Cert.
        my ($bob64) = slurp("$PKI/bob-a.crt") =~ /-----BEGIN CERTIFICATE-----\s*(.*?)-----END/s;
        (my $bob_sf = ":$bob64:") =~ s/\s+//g;
        push @forged, "Client_Cert: $bob_sf", "client-cert-chain: $bob_sf",
          "X-Forwarded-Client-Cert: Hash=$FP{FP_CERT_BOB_A}";
        $alice->("sending '" . substr($_, 0, 60) . "'", {}, $_) for @forged;
        $alice->('sending all of these together', {}, @forged);
        # Empty values: wsgiref would still join them in (",CN=alice...").
        $alice->('sending empty X_Client_Subject and X-Client_Rule', {},
                 'X_Client_Subject;', 'X-Client_Rule;');
        # What the cookbook says is not covered: other names pass as sent.
        $alice->("sending 'X-Client_Admin: yes', a name the proxy does not set",
                 { HTTP_X_CLIENT_ADMIN => 'yes' }, 'X-Client_Admin: yes');

        for my $hdr ([], \@forged) {
            my $what = @$hdr ? 'with the forged headers' : 'with none';
            my $before = $count->();
            my ($st) = curl_body($h, '/api/orders', 'bob-a', map { ('-H', $_) } @$hdr);
            is($st, 403, "proxy-identity: bob, $what: 403");
            is($count->(), $before, "proxy-identity: bob, $what: the backend got no request");
        }
        stop_recipe($h);
    }

    # As the cookbook says, SetEnvIf with a regular expression on header
    # names cannot replace the unset lines: for such a name it tests the
    # value of the last matching header, or "" when none matches. The
    # recipe with only the exact names unset and a refusal by SetEnvIf,
    # with the two value patterns that seem to fit:
    for my $pat ('.*', '.') {
        my $conf = slurp("$BOOK/proxy-identity.conf");
        $conf =~ s/^\s*RequestHeader unset \S*_\S*\n//mg;
        $conf =~ s{^(\s*MTLSAllow .*\n)}{$1
    SetEnvIfNoCase ^X[-_]Client[-_] "$pat" CLIENT_HEADER_SPOOFED
    <RequireAll>
        Require all granted
        Require not env CLIENT_HEADER_SPOOFED
    </RequireAll>
}m;
        my $name = $pat eq '.' ? 'proxy-setenvif-dot' : 'proxy-setenvif-any';
        spew("$BOOK_OUT/$name.conf", $conf);
        my $e = $bpid && start_recipe($name, PARTNER_CA => $FP{FP_CA_A},
                               BACKEND_PORT => $bport,
                               MODULES => [qw(proxy proxy_http)]) or next;
        my ($st, $body) = curl_body($e, '/api/orders', 'alice-a');
        if ($pat eq '.*') {
            is($st, 403, 'SetEnvIf value ".*" matches when no header does: alice without X-Client headers gets 403');
        }
        else {
            is($st, 200, 'SetEnvIf value ".": alice without X-Client headers gets 200');
            ($st) = curl_body($e, '/api/orders', 'alice-a', '-H', 'X-Client_Subject: CN=admin');
            is($st, 403, 'SetEnvIf value ".": alice with X-Client_Subject: CN=admin gets 403');
            ($st, $body) = curl_body($e, '/api/orders', 'alice-a',
                                     '-H', 'X-Client_Subject: CN=admin', '-H', 'X_Client_Zz;');
            my ($vars) = wsgi_answer($body);
            is($st, 200, 'SetEnvIf value ".": the same followed by an empty X_Client_Zz gets 200');
            is($vars->{HTTP_X_CLIENT_SUBJECT}, 'CN=admin,CN=alice,O=Acme Inc.,C=US',
               '... and the backend sees CN=admin joined to her subject') or diag($body);
        }
        stop_recipe($e);
    }
    kill_group($bpid) if $bpid;
}

# ---- the identity for CGI scripts (MTLSExportEnv On) -------------------------

# A CGI script that counts its runs (in $DIR/NAME.runs) and prints its
# MTLS_* variables.
sub cgi_app {
    my ($name) = @_;
    my $app = "$DIR/$name-app";
    make_path($app);
    spew("$app/env.cgi", join("\n", '#!/bin/sh', "echo run >>'$DIR/$name.runs'",
                              q{printf 'Content-Type: text/plain\r\n\r\n'},
                              q{env | grep '^MTLS_' | LC_ALL=C sort}, 'exit 0') . "\n");
    chmod 0755, "$app/env.cgi" or die "$app/env.cgi: $!";
    return $app;
}

sub runs {
    my ($name) = @_;
    my $f = "$DIR/$name.runs";
    return -e $f ? scalar(() = slurp($f) =~ /^run$/mg) : 0;
}

{
    my $app = cgi_app('cgi-env');
    my $h = start_recipe('cgi-env', PARTNER_CA => $FP{FP_CA_A}, APP_DIR => qq{"$app"},
                         OWN_PATHS => 1, MODULES => ['cgid']);
    if ($h) {
        my @conf = split /\n/, slurp("$BOOK/cgi-env.conf");
        my ($ln) = grep { $conf[$_ - 1] =~ /^\s*MTLSAllow / } 1 .. @conf;
        my ($st, $body) = curl_body($h, '/app/env.cgi', 'alice-a');
        is($st, 200, 'cgi-env: alice 200');
        my %env = map { /^(MTLS_\w+)=(.*)$/ ? ($1 => $2) : () } split /\n/, $body;
        is($env{MTLS_CLIENT_SUBJECT}, 'CN=alice,O=Acme Inc.,C=US',
           'cgi-env: the script sees MTLS_CLIENT_SUBJECT') or diag($body);
        is($env{MTLS_CLIENT_CERT_SHA256}, $FP{FP_CERT_ALICE_A}, 'cgi-env: ... MTLS_CLIENT_CERT_SHA256');
        is($env{MTLS_CLIENT_ISSUER_SHA256}, $FP{FP_CA_A}, 'cgi-env: ... MTLS_CLIENT_ISSUER_SHA256');
        is($env{MTLS_CLIENT_SAN_DNS_0}, 'alice.example.com', 'cgi-env: ... MTLS_CLIENT_SAN_DNS_0');
        is($env{MTLS_AUTHZ_RULE}, "$BOOK/cgi-env.conf:" . ($ln // '?'),
           'cgi-env: ... MTLS_AUTHZ_RULE, the MTLSAllow line');
        my $before = runs('cgi-env');
        is($before, 1, 'cgi-env: the script ran once');
        is(curl_status($h, '/app/env.cgi', 'bob-a'), 403, 'cgi-env: bob 403');
        is(runs('cgi-env'), $before, 'cgi-env: ... and the script did not run');
        stop_recipe($h);
    }
    # As the cookbook says: without the MTLSExportEnv line, nothing.
    my $off = slurp("$BOOK/cgi-env.conf");
    ok($off =~ s/^\s*MTLSExportEnv On\n//m, 'cgi-env: the recipe has a MTLSExportEnv On line to delete');
    spew("$BOOK_OUT/cgi-env-off.conf", $off);
    $app = cgi_app('cgi-env-off');
    if (my $e = start_recipe('cgi-env-off', PARTNER_CA => $FP{FP_CA_A}, APP_DIR => qq{"$app"},
                             OWN_PATHS => 1, MODULES => ['cgid'])) {
        my ($st, $body) = curl_body($e, '/app/env.cgi', 'alice-a');
        is($st, 200, 'cgi-env without MTLSExportEnv: alice 200');
        is(runs('cgi-env-off'), 1, 'cgi-env without MTLSExportEnv: the script ran');
        unlike($body, qr/MTLS_/, 'cgi-env without MTLSExportEnv: it sees no MTLS_* variable')
          or diag($body);
        stop_recipe($e);
    }
}

# ---- 4. reading a denial line, fixing the rule -------------------------------

# The denial line the cookbook shows, as a pattern: the time, pid, tid,
# client port and fingerprint vary, the rest must be as shown.
my ($shown) = $README =~ /^(\[[^\n]*\] client denied by server configuration: \/reports\/[^\n]*)$/m;
ok($shown, 'README shows a denial line for /reports/');
my $pattern = quotemeta($shown // 'none');
$pattern =~ s/^\\\[[^\]]*?\\\]/\\[[^]]+\\]/;                       # time
$pattern =~ s/pid\\ \d+\\:tid\\ \d+/pid\\ \\d+\\:tid\\ \\d+/;
$pattern =~ s/127\\\.0\\\.0\\\.1\\:\d+/127\\.0\\.0\\.1\\:\\d+/;
$pattern =~ s/sha256\\:[0-9a-f]{64}/sha256\\:([0-9a-f]{64})/;

if (my $h = start_recipe('denial-before', LOGLEVEL => 'warn mtls_authz:debug')) {
    is(curl_status($h, '/reports/q3', 'alice-a'), 403,
       'denial-before: alice gets 403 (RDNs in the wrong order)');
    stop_recipe($h);
    my $log = slurp("$h->{dir}/error_log");
    my ($line) = $log =~ /^(.*client denied by server configuration.*)$/m;
    ok($line && $line =~ /^$pattern$/,
       'denial-before: the error log line has the form the README shows')
      or diag("logged: " . ($line // 'nothing') . "\nREADME: " . ($shown // 'none'));
    is($line && $line =~ /^$pattern$/ ? $1 : '', $FP{FP_CA_A},
       "denial-before: its issuer sha256 is CA A's fingerprint");
    like($line // '', qr/: \/reports\/q3: no rule matched; subject "CN=alice,O=Acme Inc\.,C=US", issuer /,
         'denial-before: reason "no rule matched" and the subject in RFC 4514 order');
    # As the cookbook says: a rule whose subject is not the certificate's is
    # never looked at, so even at debug level no rule is named.
    unlike($log, qr/\] rule /,
           'denial-before: at LogLevel mtls_authz:debug no rule was tried');
}
{
    # What the tool prints for alice: the subject of the fixed rule.
    my ($st) = run_cmd(30, "$DIR/tool.out", $TOOL, '--ca', "$PKI/ca-a.crt",
                       "$PKI/alice-a.crt");
    my $fixed = slurp("$BOOK/denial-after.conf") =~ /MTLSAllowSubject "([^"]+)"/ ? $1 : 'none';
    my $tool = slurp("$DIR/tool.out");
    ok($st == 0 && $tool =~ /^MTLSAllow "subject=\Q$fixed\E" issuer=sha256:$FP{FP_CA_A}$/m,
       "mtls-authz-rule prints the fixed subject ($fixed) for alice")
      or diag($tool);
}
if (my $h = start_recipe('denial-after', LOGLEVEL => 'warn mtls_authz:debug')) {
    statuses($h, '/reports/q3',
        ['alice-a', 200, 'denial-after: with the rule fixed, alice gets 200'],
        ['bob-a',   403, 'denial-after: bob still gets 403']);
    stop_recipe($h);
    my @conf = split /\n/, slurp("$BOOK/denial-after.conf");
    my ($ln) = grep { $conf[$_ - 1] =~ /^\s*MTLSAllowSubject/ } 1 .. @conf;
    like(slurp("$h->{dir}/error_log"),
         qr/\] rule \Q$BOOK\E\/denial-after\.conf:$ln: matched/,
         'denial-after: LogLevel mtls_authz:debug names the matching rule by file:line');
}

# ---- 5. HTTP/2 and per-location client authentication ----------------------

if (my $h = start_recipe('h2-per-location')) {
    my @h2 = ('--http2');
    is(curl_version($h, '/', undef, @h2), '200 2',
       'h2-per-location: / without a certificate: 200 over HTTP/2');
    is(curl_version($h, '/admin/x', 'alice-a', @h2), '200 1.1',
       'h2-per-location: /admin/ alice asking for h2: 200, but over HTTP/1.1');
    like($h->{trace}, qr/HTTP\/2 stream 1 was not closed cleanly: HTTP_1_1_REQUIRED/,
         'h2-per-location: the h2 stream was reset with HTTP_1_1_REQUIRED');
    like($h->{trace}, qr/\(#1\)\n(?s:.*)ALPN: server accepted http\/1\.1/,
         'h2-per-location: curl retried on a new HTTP/1.1 connection');
    is(curl_version($h, '/admin/x', 'bob-a', '--http1.1'), '403 1.1',
       'h2-per-location: /admin/ bob over HTTP/1.1: 403');
    is(curl_version($h, '/admin/x', undef, '--http1.1'), '000 0',
       'h2-per-location: /admin/ without a certificate over HTTP/1.1: no answer, mod_ssl ends the connection');
    stop_recipe($h);
}
if (my $h = start_recipe('h2')) {
    # [path, client, "STATUS VERSION", what], all asking for h2
    for (['/', undef, '200 2', '/ without a certificate: 200 over HTTP/2'],
         ['/admin/x', 'alice-a', '200 2', '/admin/ alice: 200 over HTTP/2'],
         ['/admin/x', 'bob-a', '403 2', '/admin/ bob: 403 over HTTP/2'],
         ['/admin/x', undef, '403 2', '/admin/ without a certificate: 403 over HTTP/2'],
         ['/', 'untrusted', '000 0', 'a certificate from an untrusted CA: the handshake fails']) {
        is(curl_version($h, @$_[0, 1], '--http2'), $_->[2], "h2: $_->[3]");
    }
    stop_recipe($h);
}

done_testing();
