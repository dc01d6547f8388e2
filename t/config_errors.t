# Configuration errors: every malformed directive makes `httpd -t` fail,
# and the message names the file, the line, the directive and what is
# wrong. Positive controls: every directive used correctly, in every kind
# of section, passes `httpd -t`.
#
# This file does not use the Apache::Test server: it runs the httpd binary
# itself on small configurations written to t/logs/cfg/NAME/.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use Digest::SHA qw(sha256_hex);
use FindBin ();
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(locate missing_prereqs assert_prereqs free_port slurp spew
  describe_status case_dir head_lines config_test);

my %at = locate(__FILE__);
my ($HTTPD, $CFG) = @at{qw(httpd cfg)};

# httpd -t on a configuration; returns (wait status, what it said).
sub check {
    my ($dir, $file) = @_;
    my ($st, $out) = config_test($HTTPD, $file, 30);
    return ($st, $out . slurp("$dir/error_log"));
}

# ---- the malformed directives ------------------------------------------------

my $HEX  = sha256_hex('mod_mtls_authz');
my $HEX2 = sha256_hex('another');
my $COLON_UC = join ':', map { uc } unpack '(A2)*', $HEX;

# [name, directive line, expected message, where]
# The expected message is a literal that must start a line of httpd's
# output (so it starts with the directive name), or a qr// pattern.
# where: the section the line is in: location (default), directory,
# files, vhost, server, include.
my @cases = (
    # MTLSAllowSubject: RFC 4514 DNs
    ['subject-semicolon', 'MTLSAllowSubject "CN=alice;O=x"',
     q{MTLSAllowSubject: bad DN 'CN=alice;O=x': ';' must be escaped}],
    ['subject-legacy', 'MTLSAllowSubject /C=US/CN=a',
     q{MTLSAllowSubject: bad DN '/C=US/CN=a': this looks like the legacy /C=../CN=.. form}],
    ['subject-unknown-type', 'MTLSAllowSubject XX=1',
     q{MTLSAllowSubject: bad DN 'XX=1': unknown attribute type 'XX'}],
    ['subject-empty', 'MTLSAllowSubject ""',
     qr/^MTLSAllowSubject(: \S| requires at least one argument)/m],
    ['subject-empty-among-others', 'MTLSAllowSubject "CN=a,O=x" "" "CN=b;"',
     qr/^MTLSAllowSubject: .*(empty|'')/m],
    ['subject-second-bad', 'MTLSAllowSubject "CN=a,O=x" "CN=b;"',
     q{MTLSAllowSubject: bad DN 'CN=b;': ';' must be escaped}],
    ['subject-trailing-comma', 'MTLSAllowSubject "CN=a,"',
     q{MTLSAllowSubject: bad DN 'CN=a,': empty RDN after ','}],
    ['subject-no-equals', 'MTLSAllowSubject CN',
     q{MTLSAllowSubject: bad DN 'CN': expected '=' after 'CN'}],
    ['subject-no-type', 'MTLSAllowSubject =alice',
     q{MTLSAllowSubject: bad DN '=alice': expected an attribute type such as CN}],
    ['subject-bad-escape', 'MTLSAllowSubject "CN=a\\q"',
     qr/^MTLSAllowSubject: bad DN 'CN=a.*q': bad escape/m],
    ['subject-odd-hex', 'MTLSAllowSubject CN=#0c0',
     q{MTLSAllowSubject: bad DN 'CN=#0c0': a '#' value needs an even number of hex digits}],

    # MTLSAllowSAN
    ['san-unknown-type', 'MTLSAllowSAN foo:bar',
     q{MTLSAllowSAN: unknown SAN type 'foo' (use DNS, email, URI or IP)}],
    ['san-no-type', 'MTLSAllowSAN alice.example.com',
     q{MTLSAllowSAN: 'alice.example.com': expected <type>:<value> with type DNS, email, URI or IP}],
    ['san-bad-ip', 'MTLSAllowSAN IP:300.1.1.1',
     q{MTLSAllowSAN: '300.1.1.1' is not an IPv4 or IPv6 address}],
    ['san-ip-host-bits', 'MTLSAllowSAN IP:192.0.2.1/24',
     q{MTLSAllowSAN: '192.0.2.1/24' has host bits set; the network is 192.0.2.0/24}],
    ['san-ipv6-host-bits', 'MTLSAllowSAN IP:2001:db8::1/32',
     q{MTLSAllowSAN: '2001:db8::1/32' has host bits set; the network is 2001:db8::/32}],
    ['san-ip-prefix-long', 'MTLSAllowSAN IP:192.0.2.0/33',
     q{MTLSAllowSAN: '192.0.2.0/33': the prefix length must be 0 to 32}],
    ['san-ip-prefix-empty', 'MTLSAllowSAN IP:2001:db8::/',
     q{MTLSAllowSAN: '2001:db8::/': the prefix length must be 0 to 128}],
    ['san-ip-net-bad', 'MTLSAllowSAN IP:192.0.2/24',
     q{MTLSAllowSAN: '192.0.2/24' is not an IPv4 or IPv6 network}],
    ['san-dns-suffix-empty-label', 'MTLSAllowSAN DNS:..example.com',
     q{MTLSAllowSAN: '..example.com': a DNS suffix is a dot and a domain with no empty label, as .partner.example}],
    ['san-bad-ipv6', 'MTLSAllowSAN IP:2001:db8::1::2',
     q{MTLSAllowSAN: '2001:db8::1::2' is not an IPv4 or IPv6 address}],
    ['san-bad-email', 'MTLSAllowSAN email:alice',
     q{MTLSAllowSAN: 'alice' is not an email address}],
    ['san-email-no-local', 'MTLSAllowSAN email:@example.com',
     q{MTLSAllowSAN: '@example.com' is not an email address}],
    ['san-empty-dns', 'MTLSAllowSAN DNS:',
     q{MTLSAllowSAN: empty DNS value}],
    ['san-dns-space', 'MTLSAllowSAN "DNS:a b.example"',
     q{MTLSAllowSAN: DNS value 'a b.example' has a space, control or non-ASCII character}],
    ['san-uri-bare-prefix', 'MTLSAllowSAN URI:/*',
     q{MTLSAllowSAN: a URI prefix needs something before '/*'}],
    ['san-empty-among-others', 'MTLSAllowSAN DNS:a.example "" foo:bar',
     qr/^MTLSAllowSAN: .*(empty|'')/m],
    # httpd's TAKE_ARGV would silently drop words after the 64th
    ['san-bad-after-70', 'MTLSAllowSAN ' . join(' ', map { "DNS:h$_.example" } 1 .. 70) . ' foo:bar',
     q{MTLSAllowSAN: unknown SAN type 'foo'}],

    # MTLSAllowIssuerFingerprint
    ['fp-short', 'MTLSAllowIssuerFingerprint sha256:abcd',
     q{MTLSAllowIssuerFingerprint: 'sha256:abcd': a sha256 fingerprint has 32 bytes (64 hex digits)}],
    ['fp-long', "MTLSAllowIssuerFingerprint sha256:${HEX}00",
     qq{MTLSAllowIssuerFingerprint: 'sha256:${HEX}00': a sha256 fingerprint has 32 bytes (64 hex digits)}],
    ['fp-odd', 'MTLSAllowIssuerFingerprint sha256:' . substr($HEX, 1),
     q{MTLSAllowIssuerFingerprint: 'sha256:} . substr($HEX, 1)
       . q{': a sha256 fingerprint has 32 bytes (64 hex digits)}],
    ['fp-not-hex', 'MTLSAllowIssuerFingerprint sha256:' . ('g' x 64),
     q{MTLSAllowIssuerFingerprint: 'sha256:} . ('g' x 64) . q{': not a hex fingerprint}],
    ['fp-no-hash', "MTLSAllowIssuerFingerprint $HEX",
     qq{MTLSAllowIssuerFingerprint: '$HEX': expected sha256:<64 hex digits>}],
    ['fp-sha1', 'MTLSAllowIssuerFingerprint sha1:' . substr($HEX, 0, 40),
     q{MTLSAllowIssuerFingerprint: 'sha1:} . substr($HEX, 0, 40)
       . q{': sha1 is too weak; use sha256:<hex>}],
    ['fp-md5', 'MTLSAllowIssuerFingerprint MD5:' . substr($HEX, 0, 32),
     q{MTLSAllowIssuerFingerprint: 'MD5:} . substr($HEX, 0, 32)
       . q{': MD5 is too weak; use sha256:<hex>}],
    ['fp-sha512', 'MTLSAllowIssuerFingerprint sha512:' . $HEX . $HEX,
     q{MTLSAllowIssuerFingerprint: 'sha512:} . $HEX . $HEX
       . q{': unsupported hash 'sha512'; use sha256:<hex>}],
    ['fp-empty-among-others', "MTLSAllowIssuerFingerprint sha256:$HEX \"\" sha1:00",
     qr/^MTLSAllowIssuerFingerprint: .*(empty|'')/m],

    # MTLSAllow
    ['allow-unknown-key', 'MTLSAllow foo=bar',
     q{MTLSAllow: unknown key 'foo' (use subject, san, issuer, cert, not_before or not_after)}],
    ['allow-empty-key', 'MTLSAllow =x',
     q{MTLSAllow: unknown key '' (use subject, san, issuer, cert, not_before or not_after)}],
    ['allow-no-key', 'MTLSAllow justaword',
     q{MTLSAllow: 'justaword': expected key=value with key subject, san, issuer, cert, not_before or not_after}],
    ['allow-nothing', 'MTLSAllow',
     q{MTLSAllow: needs at least one of subject=, san=, issuer=, cert=}],
    ['allow-bad-subject', 'MTLSAllow subject=CN=a;',
     q{MTLSAllow: bad DN 'CN=a;': ';' must be escaped}],
    ['allow-legacy-subject', 'MTLSAllow subject=/C=US/CN=a',
     q{MTLSAllow: bad DN '/C=US/CN=a': this looks like the legacy /C=../CN=.. form}],
    ['allow-empty-subject', 'MTLSAllow subject=""',
     q{MTLSAllow: bad DN '': empty DN}],
    ['allow-bad-san', 'MTLSAllow san=foo:bar',
     q{MTLSAllow: unknown SAN type 'foo' (use DNS, email, URI or IP)}],
    ['allow-bad-san-ip', 'MTLSAllow subject=CN=a san=IP:1.2.3',
     q{MTLSAllow: '1.2.3' is not an IPv4 or IPv6 address}],
    ['allow-san-host-bits', 'MTLSAllow san=IP:10.20.1.0/16',
     q{MTLSAllow: '10.20.1.0/16' has host bits set; the network is 10.20.0.0/16}],
    ['allow-san-suffix-empty-label', 'MTLSAllow san=DNS:.partner..example',
     q{MTLSAllow: '.partner..example': a DNS suffix is a dot and a domain with no empty label, as .partner.example}],
    ['allow-san-no-type', 'MTLSAllow san=alice.example.com',
     q{MTLSAllow: 'alice.example.com': expected <type>:<value> with type DNS, email, URI or IP}],
    ['allow-bad-issuer-weak', 'MTLSAllow issuer=sha1:' . substr($HEX, 0, 40),
     q{MTLSAllow: issuer='sha1:} . substr($HEX, 0, 40) . q{': sha1 is too weak; use sha256:<hex>}],
    ['allow-bad-issuer-length', 'MTLSAllow issuer=sha256:12',
     q{MTLSAllow: issuer='sha256:12': a sha256 fingerprint has 32 bytes (64 hex digits)}],
    ['allow-bad-issuer-hex', 'MTLSAllow issuer=sha256:' . ('x' x 64),
     q{MTLSAllow: issuer='sha256:} . ('x' x 64) . q{': not a hex fingerprint}],
    ['allow-bad-cert-length', 'MTLSAllow cert=sha256:12',
     q{MTLSAllow: cert='sha256:12': a sha256 fingerprint has 32 bytes (64 hex digits)}],
    ['allow-bad-cert-weak', 'MTLSAllow cert=md5:' . substr($HEX, 0, 32),
     q{MTLSAllow: cert='md5:} . substr($HEX, 0, 32) . q{': md5 is too weak; use sha256:<hex>}],
    ['allow-bad-cert-hash', 'MTLSAllow cert=sha512:' . $HEX . $HEX,
     q{MTLSAllow: cert='sha512:} . $HEX . $HEX . q{': unsupported hash 'sha512'; use sha256:<hex>}],
    ['allow-dup-subject', 'MTLSAllow subject=CN=a subject=CN=b',
     q{MTLSAllow: subject= given twice}],
    ['allow-dup-issuer', "MTLSAllow issuer=sha256:$HEX issuer=sha256:$HEX2",
     q{MTLSAllow: issuer= given twice}],
    ['allow-dup-cert', "MTLSAllow cert=sha256:$HEX cert=sha256:$HEX2",
     q{MTLSAllow: cert= given twice}],
    ['allow-unbalanced-quote', 'MTLSAllow "subject=CN=a,O=b',
     q{MTLSAllow: unbalanced double quote}],
    ['allow-unbalanced-value-quote', 'MTLSAllow subject="CN=a,O=b san=DNS:x.example',
     q{MTLSAllow: unbalanced double quote}],

    # MTLSAuthz: httpd's own FLAG errors
    ['authz-maybe', 'MTLSAuthz maybe', q{MTLSAuthz must be On or Off}],
    ['authz-no-arg', 'MTLSAuthz', qr/^MTLSAuthz (must be On or Off|takes one argument)/m],

    # MTLSForwardHeaders: one of three words
    ['forward-on', 'MTLSForwardHeaders on',
     q{MTLSForwardHeaders: 'on': expected rfc9440, xfcc or off}],
    ['forward-no-arg', 'MTLSForwardHeaders', qr/^MTLSForwardHeaders takes one argument/m],

    # the same errors in other sections
    ['where-directory', 'MTLSAllowSAN foo:bar',
     q{MTLSAllowSAN: unknown SAN type 'foo'}, 'directory'],
    ['where-files', 'MTLSAllow subject=/CN=a',
     q{MTLSAllow: bad DN '/CN=a': this looks like the legacy}, 'files'],
    ['where-vhost', 'MTLSAllowIssuerFingerprint sha1:' . substr($HEX, 0, 40),
     q{MTLSAllowIssuerFingerprint: 'sha1:} . substr($HEX, 0, 40) . q{': sha1 is too weak},
     'vhost'],
    ['where-server', 'MTLSAllowSubject "CN=a;"',
     q{MTLSAllowSubject: bad DN 'CN=a;': ';' must be escaped}, 'server'],
    ['where-include', 'MTLSAllow bogus=1',
     q{MTLSAllow: unknown key 'bogus'}, 'include'],

    # Inside <Limit>/<LimitExcept> these directives would apply to every
    # method ("MTLSAuthz Off" in <Limit POST> would open GET): refused.
    ['limit-authz-off', 'MTLSAuthz Off', q{MTLSAuthz cannot occur within <Limit> or <LimitExcept> section},
     'limit'],
    ['limit-mode-audit', 'MTLSAuthzMode Audit',
     q{MTLSAuthzMode cannot occur within <Limit> or <LimitExcept> section}, 'limit'],
    ['limit-subject', 'MTLSAllowSubject "CN=a,O=x"',
     q{MTLSAllowSubject cannot occur within <Limit> or <LimitExcept> section}, 'limit'],
    ['limit-allow', 'MTLSAllow subject=CN=a', q{MTLSAllow cannot occur within <Limit> or <LimitExcept> section},
     'limitexcept'],
    ['limit-file', 'MTLSAllowFile rules.txt',
     q{MTLSAllowFile cannot occur within <Limit> or <LimitExcept> section}, 'limitexcept'],
    ['limit-forward', 'MTLSForwardHeaders rfc9440',
     q{MTLSForwardHeaders cannot occur within <Limit> or <LimitExcept> section}, 'limit'],
);

# ---- positive controls --------------------------------------------------------

# [name, lines after the head]; DIR in a line is the case directory.
my @good = (
    ['good-everything', [
        'MTLSAllowSubject "CN=server level,O=Acme Inc."',
        'MTLSAllowSAN DNS:server.example',
        '<Location /all>',
        '    MTLSAuthz On',
        '    MTLSAllowSubject "CN=alice,O=Acme Inc.,C=US" "UID=7+CN=alice,O=Acme Inc.,C=US"',
        '    MTLSAllowSubject "cn=lower , o=Case" 2.5.4.3=oid "CN=alice\\,O=Acme Inc.\\,C=US" CN=#0c05616c696365',
        '    MTLSAllowSAN URI:spiffe://example.org/ns/prod/* IP:::1 email:a@b.example',
        '    MTLSAllowSAN DNS:alice.example.com. IP:192.0.2.7 IP:2001:db8::7 URI:spiffe://example.org/ns/prod/sa/alice',
        "    MTLSAllowIssuerFingerprint sha256:$COLON_UC SHA256:$HEX2",
        "    MTLSAllow \"subject=CN=Acme Billing,O=Acme Inc.\" issuer=sha256:$HEX",
        '    MTLSAllow subject="CN=Acme Billing,O=Acme Inc." san=DNS:billing.example',
        '    MTLSAllow san=URI:spiffe://example.org/ns/prod/* san=IP:192.0.2.7 san=email:x@y.example',
        '    MTLSAllowSAN DNS:.partner.example DNS:.Example.COM. IP:10.20.0.0/16 IP:2001:db8::/32',
        '    MTLSAllowSAN IP:0.0.0.0/0 IP:::/0 IP:192.0.2.7/32 IP:2001:db8::7/128 IP:::ffff:0:0/96',
        '    MTLSAllow san=DNS:.partner.example san=IP:10.20.0.0/16',
        "    MTLSAllow cert=sha256:$HEX issuer=sha256:$COLON_UC",
        "    MTLSAllow   ISSUER=sha256:$HEX2   ",
        '    MTLSForwardHeaders rfc9440',
        '</Location>',
        '<Location /all/off>',
        '    MTLSAuthz Off',
        '    MTLSForwardHeaders off',
        '</Location>',
        '<LocationMatch "^/m/">',
        '    MTLSAuthz On',
        '    MTLSAllowSAN DNS:m.example',
        '</LocationMatch>',
        '<Directory "DIR/d">',
        '    MTLSAuthz On',
        "    MTLSAllow subject=CN=dir,O=x issuer=sha256:$HEX",
        '    <Files "secret.txt">',
        '        MTLSAllowSubject "CN=secret,O=x"',
        '    </Files>',
        '</Directory>',
        '<Files "*.cgi">',
        '    MTLSAuthz On',
        "    MTLSAllowIssuerFingerprint sha256:$HEX",
        '</Files>',
        '<VirtualHost 127.0.0.1:PORT>',
        '    ServerName vhost.example',
        '    MTLSAuthz On',
        '    MTLSAllowSAN DNS:vhost.example',
        '    MTLSForwardHeaders XFCC',
        '    <Location /v>',
        "        MTLSAllow san=DNS:v.example cert=sha256:$HEX2",
        '    </Location>',
        '</VirtualHost>',
    ]],
    ['good-server-level', [
        'MTLSAuthz On',
        'MTLSAllowSubject "CN=Acme Billing,O=Acme Inc."',
        'MTLSAllowSAN URI:spiffe://example.org/ns/prod/* IP:::1 email:a@b.example',
        "MTLSAllowIssuerFingerprint sha256:$COLON_UC",
        "MTLSAllow \"subject=CN=Acme Billing,O=Acme Inc.\" issuer=sha256:$HEX",
    ]],
    ['good-directory', [
        '<Directory "DIR/d">',
        '    MTLSAuthz On',
        '    MTLSAllowSubject "CN=Acme Billing,O=Acme Inc."',
        '    MTLSAllowSAN URI:spiffe://example.org/ns/prod/* IP:::1 email:a@b.example',
        "    MTLSAllowIssuerFingerprint sha256:$COLON_UC",
        "    MTLSAllow \"subject=CN=Acme Billing,O=Acme Inc.\" issuer=sha256:$HEX",
        '</Directory>',
    ]],
    ['good-files', [
        '<Files "report.pdf">',
        '    MTLSAuthz On',
        '    MTLSAllowSubject "CN=Acme Billing,O=Acme Inc."',
        '    MTLSAllowSAN URI:spiffe://example.org/ns/prod/* IP:::1 email:a@b.example',
        "    MTLSAllowIssuerFingerprint sha256:$COLON_UC",
        "    MTLSAllow \"subject=CN=Acme Billing,O=Acme Inc.\" issuer=sha256:$HEX",
        '</Files>',
    ]],
    ['good-vhost', [
        '<VirtualHost 127.0.0.1:PORT>',
        '    ServerName vhost.example',
        '    MTLSAuthz On',
        '    MTLSAllowSubject "CN=Acme Billing,O=Acme Inc."',
        '    MTLSAllowSAN URI:spiffe://example.org/ns/prod/* IP:::1 email:a@b.example',
        "    MTLSAllowIssuerFingerprint sha256:$COLON_UC",
        "    MTLSAllow \"subject=CN=Acme Billing,O=Acme Inc.\" issuer=sha256:$HEX",
        '</VirtualHost>',
    ]],
);

plan tests => 3 * @cases + 2 * @good + 1;

assert_prereqs('httpd, module and base configuration exist', missing_prereqs(%at));
diag("httpd: $HTTPD; configurations in $CFG");

for my $c (@cases) {
    my ($name, $line, $expect, $where) = @$c;
    $where //= 'location';
    my $dir  = case_dir($CFG, $name, 'd');
    my $file = "$dir/httpd.conf";
    my $port = free_port();
    my @l    = head_lines(%at, dir => $dir, port => $port);
    my ($err_file, $err_line);

    if ($where eq 'include') {
        my $inc = "$dir/extra.conf";
        spew($inc, "# included\n<Location /inc>\n    $line\n</Location>\n");
        push @l, qq{Include "$inc"};
        ($err_file, $err_line) = ($inc, 3);
    }
    else {
        my %open = (
            location  => [['<Location /x>'], ['</Location>']],
            directory => [[qq{<Directory "$dir/d">}], ['</Directory>']],
            files     => [['<Files "x.txt">'], ['</Files>']],
            vhost     => [["<VirtualHost 127.0.0.1:$port>"], ['</VirtualHost>']],
            server    => [['# server level'], ['# end']],
            limit     => [['<Location /x>', '<Limit POST>'], ['</Limit>', '</Location>']],
            limitexcept => [['<Location /x>', '<LimitExcept GET>'],
                            ['</LimitExcept>', '</Location>']],
        );
        my ($o, $e) = @{ $open{$where} or die "where $where" };
        push @l, @$o;
        push @l, "    $line";
        ($err_file, $err_line) = ($file, scalar @l);
        push @l, @$e;
    }
    spew($file, join("\n", @l) . "\n");

    my ($st, $out) = check($dir, $file);
    ok($st != 0 && $out !~ /Syntax OK/,
       "$name: httpd -t fails (" . describe_status($st) . ")")
      or diag("$line\n$out");
    like($out, qr/Syntax error on line $err_line of \Q$err_file\E:/,
         "$name: names the file and line $err_line");
    if (ref $expect) {
        like($out, $expect, "$name: names the directive and the problem");
    }
    else {
        like($out, qr/^\Q$expect\E/m, "$name: names the directive and the problem");
    }
}

for my $g (@good) {
    my ($name, $body) = @$g;
    my $dir  = case_dir($CFG, $name, 'd');
    my $file = "$dir/httpd.conf";
    my $port = free_port();
    my @l    = head_lines(%at, dir => $dir, port => $port);
    push @l, map { (my $x = $_) =~ s/\bDIR\b/$dir/g; $x =~ s/\bPORT\b/$port/g; $x } @$body;
    spew($file, join("\n", @l) . "\n");
    my ($st, $out) = check($dir, $file);
    is(describe_status($st), 'exit 0', "$name: httpd -t exits 0")
      or diag($out);
    like($out, qr/Syntax OK/, "$name: Syntax OK");
}
