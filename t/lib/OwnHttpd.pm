package OwnHttpd;
# For the test files that run their own httpd (t/lib/HttpdRun.pm) with a
# CGI or SSI backend and check the MTLS_* variables a request ends up
# with (t/alias.t, t/subreq.t, t/env_scope.t):
#   - a configuration written line by line, so that a test knows the
#     file:line that MTLS_AUTHZ_RULE must name;
#   - TLS clients with a PKI certificate, on one or several requests;
#   - the variables a backend printed;
#   - what a PKI certificate really holds (subject, fingerprints, SANs,
#     read with openssl), to tell whether a set of variables describes one
#     certificate and a rule that admits it.
use strict;
use warnings FATAL => 'all';
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use IO::Socket::SSL ();
use Net::SSLeay ();
use Socket qw(AF_INET AF_INET6 inet_pton inet_ntop);
use Test::More ();
use HttpdRun qw(locate missing_prereqs free_port slurp spew describe_status
  start_server stop_server user_lines);
use MTLS ();

our $CRASH = qr/exit signal|Segmentation fault|AH0005[0-2]|double free|stack smashing|
                Sanitizer|Aborted|corrupted|free\(\)/xi;

# A server of one's own for test file $test_file (pass __FILE__), with its
# files in t/logs/cfg/$name. Fails the test loudly (and dies) when httpd,
# the module, the base configuration or the PKI is missing.
sub new {
    my ($class, $test_file, $name) = @_;
    my %at = locate($test_file);
    my $self = bless {%at, name => $name}, $class;
    $self->{pki} = "$at{t_dir}/pki/out";
    my @missing = missing_prereqs(%at);
    push @missing, "$self->{pki}/pins.sh is missing (scripts/run-tests.sh runs mkpki.sh)"
      unless -f "$self->{pki}/pins.sh";
    # The other modules come from the directory mod_ssl is loaded from.
    my ($ssl) = slurp($at{base}) =~ /^LoadModule\s+ssl_module\s+"?(\S+?)"?\s*$/m;
    $self->{libexec} = $ssl ? dirname($ssl) : undef;
    push @missing, "no ssl_module line in $at{base}" unless $ssl;
    Test::More::ok(!@missing, 'preconditions: httpd, module, base configuration and PKI exist')
      or Test::More::diag(join "\n", @missing);
    die "cannot run: @missing\n" if @missing;
    $self->{fp} = {map { /^(FP_\w+)=(\S+)/ ? ($1 => $2) : () }
                   split /\n/, slurp("$self->{pki}/pins.sh")};
    $self->{dir} = "$at{cfg}/$name";
    remove_tree($self->{dir});
    make_path("$self->{dir}/docs", "$self->{dir}/cgi") or die "$self->{dir}: $!";
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

# The opening of every configuration: paths, logs (LogLevel $o{loglevel}),
# the base modules, the module under test, $o{modules} (short names, e.g.
# include) when the base configuration does not load them already, and
# $o{so} ([module name => path]).
sub add_header {
    my ($self, %o) = @_;
    my $dir  = $self->{dir};
    my $base = slurp($self->{base});
    $self->add("# written by t/$self->{name}.t",
               qq{ServerRoot "$dir"}, qq{DefaultRuntimeDir "$dir"},
               qq{PidFile "$dir/httpd.pid"}, qq{ErrorLog "$dir/error_log"},
               'LogLevel ' . ($o{loglevel} // 'info mtls_authz:debug'),
               qq{Include "$self->{base}"},
               qq{LoadModule mtls_authz_module "$self->{module}"});
    for my $m (@{ $o{modules} // [] }) {
        next if $base =~ /^LoadModule\s+${m}_module\s/m;
        my $so = "$self->{libexec}/mod_$m.so";
        -f $so or die "$so is missing\n";
        $self->add(qq{LoadModule ${m}_module "$so"});
    }
    my %so = @{ $o{so} // [] };
    for my $m (sort keys %so) {
        -f $so{$m} or die "$so{$m} is missing (make build/mod_mtls_probe.so)\n";
        $self->add(qq{LoadModule $m "$so{$m}"});
    }
    $self->add("Listen 127.0.0.1:$self->{port}", 'ServerName 127.0.0.1',
               qq{DocumentRoot "$dir/docs"}, 'Timeout 10', 'GracefulShutdownTimeout 1',
               'KeepAliveTimeout 10', user_lines());
    $self->add(qq{ScriptSock "$dir/cgid.sock"}) if grep { $_ eq 'cgid' } @{ $o{modules} // [] };
}

# The opening lines of the TLS virtual host (close it with
# add('</VirtualHost>')); verify => SSLVerifyClient (default require).
sub add_vhost {
    my ($self, %o) = @_;
    my $pki = $self->{pki};
    $self->add("<VirtualHost 127.0.0.1:$self->{port}>", '    ServerName localhost',
               '    SSLEngine on', qq{    SSLCertificateFile "$pki/server.crt"},
               qq{    SSLCertificateKeyFile "$pki/server.key"},
               qq{    SSLCACertificateFile "$pki/trust-all.crt"},
               '    SSLVerifyClient ' . ($o{verify} // 'require'), '    SSLVerifyDepth 3');
}

# A CGI script, $dir/cgi/env.cgi, that prints the MTLS_* and
# REDIRECT_MTLS_* entries of the environment block exactly as httpd passed
# it: /proc/$$/environ keeps duplicates, which a shell's env would merge.
# The first line says that the backend ran.
sub write_env_cgi {
    my ($self) = @_;
    my $f = "$self->{dir}/cgi/env.cgi";
    spew($f, <<'EOF');
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
printf 'backend=env.cgi\n'
tr '\000' '\n' <"/proc/$$/environ" | grep -E '^(REDIRECT_)?MTLS_' | LC_ALL=C sort
exit 0
EOF
    chmod 0755, $f or die "$f: $!";
    return $f;
}

sub write_doc {
    my ($self, $rel, $text) = @_;
    my $f = "$self->{dir}/docs/$rel";
    make_path(dirname($f));
    spew($f, $text);
    return $f;
}

sub error_log { slurp("$_[0]{dir}/error_log") }

# The error log since a mark from log_mark (lines of a request are
# written before its response is complete; give them a moment).
sub log_mark { -s "$_[0]{dir}/error_log" || 0 }

sub log_since {
    my ($self, $mark) = @_;
    select(undef, undef, undef, 0.2);
    open my $fh, '<', "$self->{dir}/error_log" or return '';
    seek $fh, $mark, 0;
    local $/;
    return <$fh> // '';
}

# A response header's value from get's head text, or undef.
# One request on a new connection: (status, head, body). %o: cert, sni
# (undef: none; default localhost), host (default localhost), method
# (default GET; POST sends a small form), headers (extra header lines).
sub request {
    my ($self, $path, %o) = @_;
    my $sock = IO::Socket::SSL->new(
        PeerHost => '127.0.0.1', PeerPort => $self->port, Timeout => 10,
        exists $o{sni} ? (defined $o{sni} ? (SSL_hostname => $o{sni}) : ())
                       : (SSL_hostname => 'localhost'),
        SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_NONE(),
        defined $o{cert} ? (SSL_cert_file => $self->pki("$o{cert}.pem"),
                            SSL_key_file  => $self->pki("$o{cert}.pem")) : (),
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

# Writes the configuration and starts httpd; fails the test and dies if it
# does not start.
sub start {
    my ($self) = @_;
    spew($self->{file}, join("\n", @{ $self->{lines} }) . "\n");
    my ($pid, $why) = start_server($self->{httpd}, $self->{file}, $self->{port},
                                   "$self->{dir}/start.out", 20, "$self->{dir}/httpd.pid");
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
        SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_PEER(),
        SSL_ca_file => $self->pki('ca-a.crt'),
        SSL_verifycn_name => 'localhost', SSL_verifycn_scheme => 'http',
        defined $o{cert} ? (SSL_cert_file => $self->pki("$o{cert}.pem"),
                            SSL_key_file  => $self->pki("$o{cert}.pem")) : (),
        $o{tls} ? (SSL_version => $o{tls} eq '1.2' ? 'TLSv1_2' : 'TLSv1_3') : (),
    );
    return $s ? ($s) : (undef, "connect: $IO::Socket::SSL::SSL_ERROR $!");
}

# The certificate this end sends from now on: the answer to the next
# renegotiation the server asks for.
sub use_cert {
    my ($self, $sock, $name) = @_;
    my $ssl = $sock->_get_ssl_object;
    my $pem = $self->pki("$name.pem");
    Net::SSLeay::use_certificate_file($ssl, $pem, Net::SSLeay::FILETYPE_PEM()) == 1
      && Net::SSLeay::use_PrivateKey_file($ssl, $pem, Net::SSLeay::FILETYPE_PEM()) == 1
      or die "cannot use $name: "
      . Net::SSLeay::ERR_error_string(Net::SSLeay::ERR_get_error()) . "\n";
}

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
