package OwnHttpd;
# One httpd of a test file's own, as an object, for the files that check
# what one server answers (t/alias.t, t/attack_resume.t, t/env_scope.t,
# t/htaccess.t, t/review.t, t/review2.t, t/subreq.t):
#   - a configuration written line by line, so that a test knows the
#     file:line that MTLS_AUTHZ_RULE must name;
#   - start and stop with the assertions each such file makes
#     (preconditions, httpd starts, nothing crashed);
#   - TLS clients with a PKI certificate, on one or several requests;
#   - the variables a backend printed;
#   - what a PKI certificate really holds (subject, fingerprints, SANs,
#     read with openssl), to tell whether a set of variables describes one
#     certificate and a rule that admits it.
# The pieces (configuration head, TLS host, processes, pins, the crash
# pattern) are t/lib/HttpdRun.pm's.
use strict;
use warnings FATAL => 'all';
use Exporter 'import';
use File::Basename qw(dirname);
use File::Path qw(make_path);
use IO::Socket::SSL ();
use Socket qw(AF_INET AF_INET6 inet_pton inet_ntop);
use Test::More ();
use HttpdRun qw(locate missing_prereqs assert_prereqs free_port slurp spew describe_status
  case_dir head_lines ssl_vhost_lines start_server stop_server client_ssl_opts pins $CRASH);
use MTLS ();

our @EXPORT_OK = qw(header var_header env_of env_text or_loopback);

# A server of one's own for test file $test_file (pass __FILE__), with its
# files in t/logs/cfg/$name. Fails the test loudly (and dies) when httpd,
# the module, the base configuration or the PKI is missing.
sub new {
    my ($class, $test_file, $name) = @_;
    my %at = locate($test_file);
    my $self = bless {%at, name => $name}, $class;
    assert_prereqs('httpd, module, base configuration and PKI exist',
                   missing_prereqs(%at, need_pki => 1));
    $self->{fp}    = {pins($at{pki})};
    $self->{dir}   = case_dir($at{cfg}, $name, 'docs', 'cgi');
    $self->{port}  = free_port();
    $self->{lines} = [];
    $self->{file}  = "$self->{dir}/httpd.conf";
    return $self;
}

sub dir  { $_[0]{dir} }
sub pki  { "$_[0]{pki}/$_[1]" }
sub file { $_[0]{file} }
sub port { $_[0]{port} }
sub top  { $_[0]{top} }

# A fingerprint from pins.sh (FP_CA_A, FP_CERT_BOB_A, ...).
sub fp {
    my ($self, $name) = @_;
    my $v = $self->{fp}{$name};
    die "no $name in pins.sh\n" unless defined $v;
    return $v;
}

# Appends configuration lines; returns the number of the first one, so
# that "file:line" is what the module reports for a rule on that line.
sub add {
    my ($self, @lines) = @_;
    my $n = @{ $self->{lines} } + 1;
    for (@lines) {
        die "one line at a time: $_\n" if /\n/;
        push @{ $self->{lines} }, $_;
    }
    return $n;
}

# "file:line" of the line added as number $n.
sub rule_at { "$_[0]{file}:$_[1]" }

# A <Location $path> section of a virtual host with @lines in it; returns
# the "file:line" of the line marked with a leading '>>' (the rule a test
# expects to be named), if any.
sub add_location {
    my ($self, $path, @lines) = @_;
    my $rule;
    $self->add("    <Location $path>");
    for (@lines) {
        my $l = $_;
        my $marked = $l =~ s/^>>//;
        my $n = $self->add("        $l");
        $rule = $self->rule_at($n) if $marked;
    }
    $self->add('    </Location>');
    return $rule;
}

# The opening of every configuration: paths, logs (LogLevel $o{loglevel}),
# the base modules, the module under test, $o{modules} (short names, e.g.
# include) when the base configuration does not load them already, and
# $o{so} ([module name => path]).
sub add_header {
    my ($self, %o) = @_;
    my $dir = $self->{dir};
    $self->add(head_lines(%$self, docroot => "$dir/docs",
                          loglevel => $o{loglevel} // 'info mtls_authz:debug',
                          modules => $o{modules}));
    my %so = @{ $o{so} // [] };
    for my $m (sort keys %so) {
        -f $so{$m} or die "$so{$m} is missing (make build/mod_mtls_probe.so)\n";
        $self->add(qq{LoadModule $m "$so{$m}"});
    }
    $self->add('KeepAliveTimeout 10');
    $self->add(qq{ScriptSock "$dir/cgid.sock"}) if grep { $_ eq 'cgid' } @{ $o{modules} // [] };
}

# The opening lines of a TLS virtual host on the server's port (close it
# with add('</VirtualHost>')); HttpdRun::ssl_vhost_lines' options: name,
# trust, verify (SSLVerifyClient, default require).
sub add_vhost {
    my ($self, %o) = @_;
    $self->add(ssl_vhost_lines(port => $self->{port}, pki => $self->{pki}, %o));
}

# A CGI script, $dir/cgi/$name (default env.cgi), that prints the
# entries of the environment block whose names match $re (default the
# MTLS_* and REDIRECT_MTLS_* ones), exactly as httpd passed it:
# /proc/$$/environ keeps duplicates, which a shell's env would merge.
# The first line ("backend=$name") says that the backend ran.
sub write_env_cgi {
    my ($self, $name, $re) = @_;
    $name //= 'env.cgi';
    $re   //= '^(REDIRECT_)?MTLS_';
    my $f = "$self->{dir}/cgi/$name";
    spew($f, "#!/bin/sh\n"
           . q{printf 'Content-Type: text/plain\r\n\r\n'} . "\n"
           . "printf 'backend=$name\\n'\n"
           . q{tr '\000' '\n' <"/proc/$$/environ" | grep -E '} . $re
           . q{' | LC_ALL=C sort} . "\nexit 0\n");
    chmod 0755, $f or die "$f: $!";
    return $f;
}

# A client context whose connections offer its one cached session,
# whatever the SNI (the server certificate names localhost, not the
# test's hosts: no name check).
sub session_ctx {
    my ($self, $cert, $tls) = @_;
    my $ctx = IO::Socket::SSL::SSL_Context->new(
        client_ssl_opts($self->{pki}, cert => $cert, tls => $tls),
        SSL_verifycn_scheme => 'none', SSL_session_cache_size => 4)
      or die "SSL context: $IO::Socket::SSL::SSL_ERROR";
    return $ctx;
}

# A CGI script $file that prints the X-Client-Subject request header it
# got ("hdr=") and its MTLS_CLIENT_SUBJECT variable ("env=").
sub write_subject_cgi {
    my ($self, $file) = @_;
    make_path(dirname($file));
    spew($file, join("\n", '#!/bin/sh', "printf 'Content-Type: text/plain\\r\\n\\r\\n'",
                     'printf "hdr=%s\\n" "$HTTP_X_CLIENT_SUBJECT"',
                     'printf "env=%s\\n" "$MTLS_CLIENT_SUBJECT"', 'exit 0') . "\n");
    chmod 0755, $file or die "$file: $!";
    return $file;
}

sub write_doc {
    my ($self, $rel, $text) = @_;
    my $f = "$self->{dir}/docs/$rel";
    make_path(dirname($f));
    spew($f, $text);
    return $f;
}

# Authorization lines: "Require all granted" and @lines must both hold,
# or the client is on the loopback (Require ip): a request that @lines
# refuse is still admitted, by another Require line than this module's.
sub or_loopback {
    return ('<RequireAny>', '    <RequireAll>', '        Require all granted',
            (map { "        $_" } @_), '    </RequireAll>', '    Require ip 127.0.0.1 ::1',
            '</RequireAny>');
}

# A directory docs/$name/ with an index.html, an .htaccess with the lines
# @$ht (undef: none), and a <Location /$name/> with @loc (add_location:
# returns the file:line of the line marked '>>').
sub add_area {
    my ($self, $name, $ht, @loc) = @_;
    $self->write_doc("$name/index.html", "$name\n");
    $self->write_htaccess($name, @$ht) if $ht;
    return @loc ? $self->add_location("/$name/", @loc) : undef;
}

# docs/$rel/.htaccess with @lines.
sub write_htaccess {
    my ($self, $rel, @lines) = @_;
    return $self->write_doc("$rel/.htaccess", join("\n", @lines) . "\n");
}

sub error_log { slurp("$_[0]{dir}/error_log") }

# A mark in the error log, and what was logged since a mark.
sub log_mark { -s "$_[0]{dir}/error_log" || 0 }

sub log_since { HttpdRun::log_since("$_[0]{dir}/error_log", $_[1]) }

# A client's certificate and key: a PKI name, or a path without .pem.
sub cert_pem { $_[1] =~ m{^/} ? "$_[1].pem" : $_[0]->pki("$_[1].pem") }

# One request on a new connection: (status, head, body). %o: cert (a PKI
# name, or a path without .pem), sni
# (undef: none; default localhost), host (default localhost), method
# (default GET; POST sends a small form), headers (extra header lines).
sub request {
    my ($self, $path, %o) = @_;
    my $sock = IO::Socket::SSL->new(
        PeerHost => '127.0.0.1', PeerPort => $self->port, Timeout => 10,
        exists $o{sni} ? (defined $o{sni} ? (SSL_hostname => $o{sni}) : ())
                       : (SSL_hostname => 'localhost'),
        SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_NONE(),
        defined $o{cert} ? (SSL_cert_file => $self->cert_pem($o{cert}),
                            SSL_key_file  => $self->cert_pem($o{cert})) : (),
    ) or return (0, "connect: $IO::Socket::SSL::SSL_ERROR", '');
    my $method = $o{method} // 'GET';
    my $host = $o{host} // 'localhost';
    my $body = $method eq 'POST' ? 'x=1' : '';
    print $sock "$method $path HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n"
      . ($o{headers} // '')
      . ($method eq 'POST' ? "Content-Type: application/x-www-form-urlencoded\r\n"
         . "Content-Length: 3\r\n" : '') . "\r\n$body";
    my $resp = '';
    local $SIG{ALRM} = sub { die "client timeout\n" };
    eval { alarm 20; local $/; $resp = <$sock> // ''; alarm 0; 1 } or $resp = '';
    alarm 0;
    $sock->close(SSL_fast_shutdown => 1);
    my ($st) = $resp =~ m{^HTTP/1\.\d (\d{3})};
    my ($head, $rbody) = split /\r\n\r\n/, $resp, 2;
    return ($st // 0, $head // '', $rbody // '');
}

# The status of one request on a new connection (request's %o).
sub status { ($_[0]->request(@_[1 .. $#_]))[0] }

# A response header that mod_headers set from a variable ("%{VAR}e"): ''
# when the variable was unset (mod_headers then writes "(null)").
sub var_header {
    my ($head, $name) = @_;
    my $v = header($head, $name);
    return defined $v && $v ne '(null)' ? $v : '';
}

sub header {
    my ($head, $name) = @_;
    return $head =~ /^\Q$name\E:[ \t]*(.*?)\r?$/mi ? $1 : undef;
}

# Writes the configuration file.
sub save { spew($_[0]{file}, join("\n", @{ $_[0]{lines} }) . "\n") }

# Writes the configuration and starts httpd; fails the test and dies if it
# does not start.
sub start {
    my ($self) = @_;
    $self->save;
    my ($pid, $why) = start_server($self->{httpd}, $self->{file}, $self->{port}, 20);
    Test::More::ok($pid, "httpd starts on 127.0.0.1:$self->{port}")
      or Test::More::diag($why, "\n", slurp("$self->{dir}/start.out"), $self->error_log);
    die "cannot run: httpd did not start\n" unless $pid;
    $self->{pid} = $pid;
}

# Stops httpd and asserts that nothing crashed.
sub stop {
    my ($self) = @_;
    return unless $self->{pid};
    my $st = stop_server(delete $self->{pid});
    my $log = $self->error_log;
    my @bad = grep { /$CRASH/ } split /\n/, $log;
    Test::More::ok(!@bad, "$self->{name}: no crash in the error log")
      or Test::More::diag(join "\n", @bad);
    Test::More::diag("httpd stopped: " . describe_status($st));
}

sub DESTROY { my $self = shift; stop_server(delete $self->{pid}) if $self->{pid} }

# ---- clients ---------------------------------------------------------------

# A TLS connection with client certificate $o{cert} (a PKI name; undef:
# none) and version $o{tls} ('1.2', '1.3'; default the highest). Returns
# (socket) or (undef, why).
sub tls_connect {
    my ($self, %o) = @_;
    my $s = IO::Socket::SSL->new(
        PeerHost => '127.0.0.1', PeerPort => $self->{port}, Timeout => 10,
        SSL_hostname => 'localhost',
        client_ssl_opts($self->{pki}, cert => $o{cert}, tls => $o{tls}),
    );
    return $s ? ($s) : (undef, "connect: $IO::Socket::SSL::SSL_ERROR $!");
}

# The certificate this end sends from now on: the answer to the next
# renegotiation the server asks for.
sub use_cert { MTLS::use_cert($_[1], $_[0]->pki("$_[2].pem")) }

# One GET on an open connection, at most 30 s: (status, body, head);
# status 0: no response.
sub get_on {
    my ($self, $sock, $path, %o) = @_;
    my @r;
    local $SIG{ALRM} = sub { die "client timeout\n" };
    eval {
        alarm 30;
        @r = MTLS::get_on($sock, $path, %o);
        alarm 0;
        1;
    } or @r = (0, '', "no response: $@");
    alarm 0;
    return @r;
}

# One keep-alive connection as $cert (or %o{who} in the test names):
# GETs each item of @$order in turn (a path, or [path, request header
# lines, anything the caller wants back]) and checks each status against $want->($item), which returns
# (status, what the test calls it; default "$cert <path>"). Stops at the
# first request with no response. Returns how many were answered.
sub keepalive_check {
    my ($self, $cert, $order, $want, %o) = @_;
    my $who = $o{who} // $cert;
    my ($sock, $why) = $self->tls_connect(cert => $cert);
    Test::More::ok($sock, "keep-alive: $who connects") or Test::More::diag($why);
    return 0 unless $sock;
    my $n = 0;
    for my $item (@$order) {
        my ($path, $headers) = ref $item ? @$item : ($item);
        my ($st) = $self->get_on($sock, $path, keepalive => 1,
                                 defined $headers ? (headers => $headers) : ());
        my ($code, $name) = $want->($item);
        $n++;
        Test::More::is($st, $code, "keep-alive request $n: " . ($name // "$who $path"));
        last unless $st;
    }
    $sock->close(SSL_fast_shutdown => 1);
    return $n;
}

# One GET on a new connection: (status, body, head).
sub get {
    my ($self, $path, %o) = @_;
    my ($sock, $why) = $self->tls_connect(%o);
    return (0, '', $why) unless $sock;
    $self->use_cert($sock, $o{reneg_cert}) if defined $o{reneg_cert};
    my @r = $self->get_on($sock, $path, %o);
    $sock->close(SSL_fast_shutdown => 1);
    return @r;
}

# The MTLS_* and REDIRECT_MTLS_* variables in a backend's output (env.cgi
# or SSI printenv, whose values are HTML-escaped: html => 1), as
# { NAME => [values in order] }: a name listed twice has two values.
sub env_of {
    my ($body, %o) = @_;
    my %env;
    for (split /\r?\n/, $body // '') {
        next unless /^((?:REDIRECT_)?MTLS_[A-Za-z0-9_]*)=(.*)$/;
        my ($k, $v) = ($1, $2);
        if ($o{html}) {
            $v =~ s/&lt;/</g;
            $v =~ s/&gt;/>/g;
            $v =~ s/&quot;/"/g;
            $v =~ s/&#0?39;/'/g;
            $v =~ s/&amp;/&/g;
        }
        push @{ $env{$k} }, $v;
    }
    return \%env;
}

sub env_text {
    my ($env) = @_;
    return join "\n", map { my $k = $_; map { "  $k=$_" } @{ $env->{$k} } } sort keys %$env;
}

# ---- what a certificate holds -------------------------------------------------

sub openssl_out {
    my (@cmd) = @_;
    open my $fh, '-|', 'openssl', @cmd or die "openssl: $!";
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return $out;
}

# { subject, fp, issuer_fp, sans => { MTLS_CLIENT_SAN_<T>_<n> => value } }
# of the PKI certificate $name, as the module must export them: subject
# in RFC 4514, SHA-256 fingerprints in lowercase hex, SANs numbered per
# type in the certificate's order, IP addresses as inet_ntop prints them.
sub cert_info {
    my ($self, $name) = @_;
    return $self->{certs}{$name} if $self->{certs}{$name};
    my $crt = $self->pki("$name.crt");
    -f $crt or die "$crt is missing\n";
    my %i;
    ($i{subject}) = openssl_out('x509', '-in', $crt, '-noout', '-subject', '-nameopt', 'RFC2253')
      =~ /^subject=\s*(.*?)\s*$/m;
    (my $key = "FP_CERT_\U$name") =~ tr/-/_/;
    $i{fp} = $self->{fp}{$key};
    unless ($i{fp}) {
        ($i{fp}) = openssl_out('x509', '-in', $crt, '-noout', '-fingerprint', '-sha256')
          =~ /=\s*([0-9A-Fa-f:]+)\s*$/m;
        ($i{fp} = lc $i{fp}) =~ tr/://d;
    }
    my ($issuer) = openssl_out('x509', '-in', $crt, '-noout', '-issuer', '-nameopt', 'RFC2253')
      =~ /^issuer=\s*(.*?)\s*$/m;
    my %ca = ('CN=Test CA A,O=MTLS Test' => 'FP_CA_A', 'CN=Test CA B,O=MTLS Test' => 'FP_CA_B',
              'CN=Test Intermediate A,O=MTLS Test' => 'FP_INT_A');
    $i{issuer_fp} = $ca{$issuer} ? $self->fp($ca{$issuer}) : undef;
    my $ext = openssl_out('x509', '-in', $crt, '-noout', '-ext', 'subjectAltName');
    $ext =~ s/^.*Subject Alternative Name:\s*//s;
    my %n;
    for my $e (split /,\s*/, $ext) {
        $e =~ s/^\s+|\s+$//g;
        next unless length $e;
        my ($t, $v) = $e =~ /^(DNS|email|URI|IP Address):(.*)$/
          or die "$name: unexpected SAN '$e'\n";
        my $T = {DNS => 'DNS', email => 'EMAIL', URI => 'URI', 'IP Address' => 'IP'}->{$t};
        if ($T eq 'IP') {
            my $af = $v =~ /:/ ? AF_INET6 : AF_INET;
            $v = inet_ntop($af, inet_pton($af, $v) // die "$name: bad IP SAN $v\n");
        }
        $i{sans}{"MTLS_CLIENT_SAN_${T}_" . ($n{$T}++ // 0)} = $v;
    }
    $i{sans} //= {};
    return $self->{certs}{$name} = \%i;
}

# The variables the module must export when rule $rule admits $cert.
sub expected_env {
    my ($self, $cert, $rule) = @_;
    my $i = $self->cert_info($cert);
    return {
        MTLS_AUTHZ_RULE         => $rule,
        MTLS_CLIENT_SUBJECT     => $i->{subject},
        MTLS_CLIENT_CERT_SHA256 => $i->{fp},
        defined $i->{issuer_fp} ? (MTLS_CLIENT_ISSUER_SHA256 => $i->{issuer_fp}) : (),
        %{ $i->{sans} },
    };
}

# Do the variables in $env (env_of) describe ONE certificate, and a rule
# that admits it? %o:
#   certs  => [PKI names]: the certificates the connection may have used
#   admits => { "file:line" => [PKI names] }: which rule admits which
#   final  => ["file:line", ...]: the rules of the configuration the
#             request ends with (default: every key of admits)
# The certificate is the one whose SHA-256 is MTLS_CLIENT_CERT_SHA256;
# every other variable (subject, issuer, exactly its SANs) must be that
# certificate's, each listed once. Returns (certificate or undef,
# problems).
sub identity_problems {
    my ($self, $env, %o) = @_;
    my @p;
    my @ours = sort grep { /^MTLS_/ } keys %$env;
    return (undef, 'no MTLS_* variable at all') unless @ours;
    for (@ours) {
        push @p, "$_ is listed " . scalar(@{ $env->{$_} }) . ' times: '
          . join(' | ', @{ $env->{$_} }) if @{ $env->{$_} } != 1;
    }
    my %v = map { $_ => $env->{$_}[-1] } @ours;
    my $fp = $v{MTLS_CLIENT_CERT_SHA256};
    return (undef, @p, 'no MTLS_CLIENT_CERT_SHA256') unless defined $fp;
    my ($cert) = grep { $self->cert_info($_)->{fp} eq $fp } @{ $o{certs} };
    return (undef, @p, "MTLS_CLIENT_CERT_SHA256 $fp is none of @{ $o{certs} }") unless $cert;
    my $rule = $v{MTLS_AUTHZ_RULE};
    my $want = $self->expected_env($cert, $rule // '(none)');
    for my $k (sort keys %{ { %$want, %v } }) {
        next if $k eq 'MTLS_AUTHZ_RULE';
        my ($g, $w) = ($v{$k}, $want->{$k});
        next if defined $g && defined $w && $g eq $w;
        push @p, "$k: " . (defined $g ? "'$g'" : 'missing') . ", but $cert has "
          . (defined $w ? "'$w'" : 'no such value');
    }
    my @final = @{ $o{final} // [sort keys %{ $o{admits} }] };
    if (!defined $rule) {
        push @p, 'no MTLS_AUTHZ_RULE';
    }
    elsif (!grep { $_ eq $rule } @final) {
        push @p, "MTLS_AUTHZ_RULE $rule is not a rule of the configuration the request "
          . "ends with (@final)";
    }
    elsif (!grep { $_ eq $cert } @{ $o{admits}{$rule} // [] }) {
        push @p, "MTLS_AUTHZ_RULE $rule does not admit $cert (it admits "
          . join(', ', @{ $o{admits}{$rule} // [] }) . ')';
    }
    return ($cert, @p);
}

# identity_problems as one assertion; returns the certificate.
sub ok_identity {
    my ($self, $what, $env, %o) = @_;
    my ($cert, @p) = $self->identity_problems($env, %o);
    Test::More::ok(!@p, "$what: the variables describe one certificate ("
                   . ($cert // '?') . ') and a rule that admits it')
      or Test::More::diag(join("\n", @p), "\nvariables:\n", env_text($env));
    return $cert;
}

1;
