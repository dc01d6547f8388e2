package MTLS;
# Test helpers: HTTPS requests with a chosen client certificate, TLS
# version and session, made with IO::Socket::SSL so that every detail of
# the handshake is under the test's control; and error-log access.
use strict;
use warnings FATAL => 'all';
use Exporter 'import';
use IO::Socket::SSL qw(SSL_VERIFY_PEER);
use Apache::Test ();
use Apache::TestRequest ();
use File::Spec ();

our @EXPORT_OK = qw(req status pki hostport error_log_since log_mark fp
  log_wait);

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
    open my $fh, '<', pki('pins.sh') or die "pins.sh: $!";
    while (<$fh>) { return $1 if /^\Q$name\E=(\S+)/ }
    die "no $name in pins.sh";
}

# TLS options for a client certificate and version:
#   cert => PKI name: uses NAME.pem (cert [+ chain] + key); undef: none
#   tls  => '1.2' or '1.3' (default: highest)
#   ssl  => { more IO::Socket::SSL options }
sub ssl_opts {
    my (%o) = @_;
    my %ssl = (
        SSL_verify_mode     => SSL_VERIFY_PEER,
        SSL_ca_file         => pki('ca-a.crt'),
        SSL_verifycn_name   => 'localhost',
        SSL_verifycn_scheme => 'http',
    );
    if (defined $o{cert}) {
        $ssl{SSL_cert_file} = pki("$o{cert}.pem");
        $ssl{SSL_key_file}  = pki("$o{cert}.pem");
    }
    if (my $v = $o{tls}) {
        $ssl{SSL_version} = $v eq '1.2' ? 'TLSv1_2' : 'TLSv1_3';
    }
    return (%ssl, %{ $o{ssl} // {} });
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

# Error log handling: a test takes a mark, makes requests, then reads
# what was logged since the mark.
sub error_log_file { File::Spec->catfile(t_dir(), 'logs', 'error_log') }

sub log_mark { -s error_log_file() || 0 }

sub error_log_since {
    my ($mark) = @_;
    # The log line is written before the response is sent, but give a
    # slow machine a moment.
    select(undef, undef, undef, 0.2);
    open my $fh, '<', error_log_file() or return '';
    seek $fh, $mark, 0;
    local $/;
    return <$fh> // '';
}

# Lines logged after the request has been answered (Require mtls's
# denial waits for the end of the request): polls the log since $mark
# until $re matches or $timeout seconds (default 10) pass; returns what
# was logged since the mark.
sub log_wait {
    my ($mark, $re, $timeout) = @_;
    my $deadline = time + ($timeout // 10);
    my $log = '';
    while (1) {
        open my $fh, '<', error_log_file() or return '';
        seek $fh, $mark, 0;
        local $/;
        $log = <$fh> // '';
        close $fh;
        return $log if $log =~ $re || time >= $deadline;
        select(undef, undef, undef, 0.1);
    }
}

1;
