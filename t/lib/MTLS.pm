package MTLS;
# The client side of the Apache::Test server (t/conf/): HTTPS
# requests with a chosen client certificate, TLS version and session,
# made with IO::Socket::SSL so that every detail of the handshake is
# under the test's control, or with curl for HTTP/2; plain HTTP; and
# error-log access. Built on t/lib/HttpdRun.pm's pieces.
use strict;
use warnings FATAL => 'all';
use Exporter 'import';
use IO::Socket::SSL ();
use Net::SSLeay ();
use Apache::Test ();
use Apache::TestRequest ();
use Test::More ();
use File::Spec ();
use HttpdRun ();

our @EXPORT_OK = qw(req status plain_status status_cases curl_out h2_status pki hostport
  error_log_since log_mark fp log_wait use_cert);

sub t_dir { Apache::Test::vars('t_dir') }
sub pki   { File::Spec->catfile(t_dir(), 'pki', 'out', @_) }

# "host:port" of a <VirtualHost name> from t/conf/extra.conf.in.
sub hostport {
    my ($vhost) = @_;
    Apache::TestRequest::module($vhost);
    my $hp = Apache::TestRequest::hostport(Apache::Test::config());
    Apache::TestRequest::module('default');
    return $hp;
}

# Fingerprint of a PKI certificate from pins.sh, e.g. fp('FP_CA_A').
sub fp {
    my ($name) = @_;
    my %fp = HttpdRun::pins(pki());
    return $fp{$name} // die "no $name in pins.sh";
}

# TLS options for a client certificate and version:
#   cert => PKI name: uses NAME.pem (cert [+ chain] + key); undef: none
#   tls  => '1.2' or '1.3' (default: highest)
#   ssl  => { more IO::Socket::SSL options }
sub ssl_opts {
    my (%o) = @_;
    return (HttpdRun::client_ssl_opts(pki(), cert => $o{cert}, tls => $o{tls}),
            %{ $o{ssl} // {} });
}

# A client context with a session cache: connections made with
# ctx => session_ctx(...) resume the TLS session of the previous one.
sub session_ctx {
    my (%o) = @_;
    my $ctx = IO::Socket::SSL::SSL_Context->new(ssl_opts(%o),
                                                SSL_session_cache_size => 8)
      or die "SSL context: $IO::Socket::SSL::SSL_ERROR";
    return $ctx;
}

# Opens a TLS connection to vhost (default 'mtls') with the ssl_opts
# options, or with ctx => session_ctx(...).
sub connect_tls {
    my (%o) = @_;
    my ($host, $port) = split /:/, hostport($o{vhost} // 'mtls');
    my %ssl = (
        PeerHost     => '127.0.0.1',
        PeerPort     => $port,
        Timeout      => 10,
        SSL_hostname => 'localhost',
        $o{ctx} ? (SSL_reuse_ctx => $o{ctx}, SSL_verifycn_name => 'localhost',
                   SSL_verifycn_scheme => 'http')
                : ssl_opts(%o),
    );
    my $sock = IO::Socket::SSL->new(%ssl)
      or return (undef, "connect: $IO::Socket::SSL::SSL_ERROR $!");
    return ($sock, undef);
}

# Sends one GET on an open connection and reads the response; returns
# (status, body, headers-text). Status 0 means the connection failed.
sub get_on {
    my ($sock, $path, %o) = @_;
    my $conn = $o{keepalive} ? 'keep-alive' : 'close';
    my $extra = $o{headers} // '';
    print $sock "GET $path HTTP/1.1\r\nHost: localhost\r\n$extra"
      . "Connection: $conn\r\n\r\n" or return (0, '', 'write failed');
    my $head = '';
    while (defined(my $line = <$sock>)) {
        last if $line eq "\r\n";
        $head .= $line;
    }
    my ($status) = $head =~ m{^HTTP/1\.\d (\d{3})} or return (0, '', $head);
    my $body = '';
    if ($head =~ /^Content-Length:\s*(\d+)/mi) {
        my $len = $1;
        while (length($body) < $len) {
            my $n = read($sock, $body, $len - length($body), length($body));
            last unless $n;
        }
    }
    elsif ($head =~ /^Transfer-Encoding:\s*chunked/mi) {
        while (defined(my $line = <$sock>)) {
            # "<hex>[;ext]\r\n"; hex() alone warns on the line end
            my ($hex) = $line =~ /^([0-9A-Fa-f]+)/;
            my $size = hex($hex // '0');
            last if !$size;
            my $chunk = '';
            while (length($chunk) < $size) {
                my $n = read($sock, $chunk, $size - length($chunk), length($chunk));
                last unless $n;
            }
            $body .= $chunk;
            <$sock>;
        }
        <$sock>;
    }
    elsif (!$o{keepalive}) {
        local $/;
        $body = <$sock> // '';
    }
    return ($status, $body, $head);
}

# The certificate this end of $sock sends from now on (PEM file $pem,
# certificate and key): the answer to the next renegotiation or
# post-handshake authentication the server asks for.
sub use_cert {
    my ($sock, $pem) = @_;
    my $ssl = $sock->_get_ssl_object;
    Net::SSLeay::use_certificate_file($ssl, $pem, Net::SSLeay::FILETYPE_PEM()) == 1
      && Net::SSLeay::use_PrivateKey_file($ssl, $pem, Net::SSLeay::FILETYPE_PEM()) == 1
      or die "cannot use $pem: "
      . Net::SSLeay::ERR_error_string(Net::SSLeay::ERR_get_error()) . "\n";
}

# One request on a new connection; returns the status (0: no response).
sub req {
    my ($path, %o) = @_;
    my ($sock, $err) = connect_tls(%o);
    return wantarray ? (0, $err) : 0 unless $sock;
    my ($status, $body, $head) = get_on($sock, $path, %o);
    my $reused = $sock->get_session_reused ? 1 : 0;
    $sock->close(SSL_fast_shutdown => 1);
    return wantarray ? ($status, $body, $head, $reused) : $status;
}

sub status { scalar req(@_) }

# Asserts the status of each [path, client certificate, status, what it
# shows].
sub status_cases {
    for (@_) {
        my ($path, $cert, $want, $what) = @$_;
        Test::More::is(status($path, cert => $cert), $want, "$path $cert: $what");
    }
}

# The status of one GET over plain HTTP (the 'plain' vhost).
sub plain_status {
    my ($path) = @_;
    Apache::TestRequest::module('plain');
    my $rc = Apache::TestRequest::GET_RC($path);
    Apache::TestRequest::module('default');
    return $rc;
}

# Runs curl on the paths @$paths of vhost $vhost as client $cert (a PKI
# name; undef: none) with the options @opt (HttpdRun::curl_args); returns
# what it printed.
sub curl_out {
    my ($vhost, $cert, $paths, @opt) = @_;
    my ($port) = hostport($vhost) =~ /:(\d+)$/;
    open my $fh, '-|', HttpdRun::curl_args(pki(), $port, defined $cert ? pki("$cert.pem") : undef,
                                           $paths, @opt)
      or die "curl: $!";
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return $out;
}

# One GET $path over HTTP/2 (curl, ALPN h2) with @opt: "STATUS VERSION",
# e.g. "200 2", or "200 1.1" after curl's retry over HTTP/1.1.
sub h2_status {
    my ($vhost, $cert, $path, @opt) = @_;
    return curl_out($vhost, $cert, [$path], '--http2', '-o', '/dev/null',
                    '-w', '%{http_code} %{http_version}', @opt);
}

# Error log handling: a test takes a mark, makes requests, then reads
# what was logged since the mark.
sub error_log_file { File::Spec->catfile(t_dir(), 'logs', 'error_log') }

sub log_mark { -s error_log_file() || 0 }

sub error_log_since { HttpdRun::log_since(error_log_file(), $_[0]) }

# Lines logged after the request has been answered (Require mtls's
# denial waits for the end of the request): what was logged since $mark
# once $re matches, or after $timeout seconds (default 10).
sub log_wait { HttpdRun::log_wait(error_log_file(), @_) }

1;
