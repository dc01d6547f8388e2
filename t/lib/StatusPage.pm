package StatusPage;
# The client side of the module's status page (SetHandler
# mtls-authz-status) for t/status.t and t/status_restart.t: requests on
# one connection, the page in its three formats (JSON decoded, the
# Prometheus text parsed, promtool's verdict), the times it prints, and
# what openssl says a PKI certificate holds, to compare with it.
use strict;
use warnings FATAL => 'all';
use Exporter 'import';
use IO::Socket::SSL ();
use JSON::PP ();
use POSIX qw(strftime);
use Time::HiRes qw(time sleep);
use Time::Local qw(timegm);
use HttpdRun qw(client_ssl_opts slurp spew run_cmd);
use MTLS ();

our @EXPORT_OK = qw(conn_get raw_request iso epoch_of cert_not_after cert_fp_hex
  fetch_json prom_parse promtool_check wait_until $ISO_RE $HEX64_RE);

our $ISO_RE   = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
our $HEX64_RE = qr/^[0-9a-f]{64}$/;

# One new TLS connection to 127.0.0.1:$port as client $o{cert} (a PKI
# name in $pki; undef: none), GETting each path of @$paths in turn
# (keep-alive up to the last, which asks to close). Returns one
# [status, body, head] per answered request; status 0: no response
# (then it stops).
sub conn_get {
    my ($pki, $port, $paths, %o) = @_;
    my $sock = IO::Socket::SSL->new(
        PeerHost => '127.0.0.1', PeerPort => $port, Timeout => 10,
        SSL_hostname => 'localhost', client_ssl_opts($pki, cert => $o{cert}),
    ) or return ([0, '', "connect: $IO::Socket::SSL::SSL_ERROR"]);
    my @r;
    local $SIG{ALRM} = sub { die "client timeout\n" };
    for my $i (0 .. $#$paths) {
        my @one;
        eval {
            alarm 30;
            @one = MTLS::get_on($sock, $paths->[$i], keepalive => $i < $#$paths);
            alarm 0;
            1;
        } or @one = (0, '', "no response: $@");
        alarm 0;
        push @r, [@one];
        last unless $one[0];
    }
    $sock->close(SSL_fast_shutdown => 1);
    return @r;
}

# One request of any method on a new connection (Connection: close), read
# to the end: (status, head, body).
sub raw_request {
    my ($pki, $port, $method, $path, %o) = @_;
    my $sock = IO::Socket::SSL->new(
        PeerHost => '127.0.0.1', PeerPort => $port, Timeout => 10,
        SSL_hostname => 'localhost', client_ssl_opts($pki, cert => $o{cert}),
    ) or return (0, "connect: $IO::Socket::SSL::SSL_ERROR", '');
    my $body = $o{body} // '';
    print $sock "$method $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
      . (length $body ? "Content-Type: text/plain\r\nContent-Length: " . length($body) . "\r\n"
         : '') . "\r\n$body";
    my $resp = '';
    local $SIG{ALRM} = sub { die "client timeout\n" };
    eval { alarm 30; local $/; $resp = <$sock> // ''; alarm 0; 1 } or $resp = '';
    alarm 0;
    $sock->close(SSL_fast_shutdown => 1);
    my ($st) = $resp =~ m{^HTTP/1\.\d (\d{3})};
    my ($head, $rbody) = split /\r\n\r\n/, $resp, 2;
    return ($st // 0, $head // '', $rbody // '');
}

# Times as the page prints them (UTC, seconds), and back.
sub iso { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])) }

sub epoch_of {
    my ($t) = @_;
    return undef unless defined $t && $t =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z$/;
    return timegm($6, $5, $4, $3, $2 - 1, $1);
}

my %MON = (Jan => 0, Feb => 1, Mar => 2, Apr => 3, May => 4, Jun => 5, Jul => 6, Aug => 7,
           Sep => 8, Oct => 9, Nov => 10, Dec => 11);

# notAfter of the certificate file $crt as openssl prints it, in epoch
# seconds.
sub cert_not_after {
    my ($crt) = @_;
    open my $fh, '-|', 'openssl', 'x509', '-in', $crt, '-noout', '-enddate'
      or die "openssl: $!";
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    my ($mon, $d, $h, $mi, $s, $y) =
      $out =~ /^notAfter=(\w{3})\s+(\d+) (\d\d):(\d\d):(\d\d) (\d{4}) GMT/m
      or die "$crt: cannot read notAfter from '$out'\n";
    return timegm($s, $mi, $h, $d, $MON{$mon}, $y);
}

# SHA-256 fingerprint of the certificate file $crt, as openssl computes
# it, in lowercase hex without colons.
sub cert_fp_hex {
    my ($crt) = @_;
    open my $fh, '-|', 'openssl', 'x509', '-in', $crt, '-noout', '-fingerprint', '-sha256'
      or die "openssl: $!";
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    my ($fp) = $out =~ /=\s*([0-9A-Fa-f:]+)\s*$/m or die "$crt: no fingerprint in '$out'\n";
    ($fp = lc $fp) =~ tr/://d;
    return $fp;
}

# GET $path (with ?json) on a new connection as $cert: (decoded document
# or undef, status, head, body, why it did not decode).
sub fetch_json {
    my ($pki, $port, $path, $cert) = @_;
    my ($r) = conn_get($pki, $port, [$path], cert => $cert);
    my ($st, $body, $head) = @$r;
    my $doc = eval { JSON::PP->new->utf8->decode($body) };
    return ($doc, $st, $head, $body, $@);
}

# The Prometheus text format: { help => { family => text }, type =>
# { family => type }, samples => [ { name, labels => {..}, value } ],
# errors => [ lines it could not read ] }. Label values are unescaped
# (\\, \", \n).
sub prom_parse {
    my ($text) = @_;
    my %p = (help => {}, type => {}, samples => [], errors => []);
    for my $line (split /\n/, $text) {
        next if $line eq '';
        if ($line =~ /^# HELP (\S+) (.*)$/) { $p{help}{$1} = $2; next }
        if ($line =~ /^# TYPE (\S+) (\S+)$/) { $p{type}{$1} = $2; next }
        next if $line =~ /^#/;
        my ($name, $rest) = $line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(.*)$/
          or do { push @{ $p{errors} }, $line; next };
        my %labels;
        if ($rest =~ s/^\{//) {
            my $ok = 0;
            while (1) {
                if ($rest =~ s/^\}//) { $ok = 1; last }
                $rest =~ s/^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?// or last;
                my ($k, $v) = ($1, $2);
                $v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
                $labels{$k} = $v;
            }
            $ok or do { push @{ $p{errors} }, $line; next };
        }
        my ($value) = $rest =~ /^\s+(\S+)(?:\s+-?\d+)?\s*$/
          or do { push @{ $p{errors} }, $line; next };
        push @{ $p{samples} }, {name => $name, labels => \%labels, value => $value};
    }
    return \%p;
}

# `promtool check metrics` on $text (written to $dir/metrics.prom):
# (exit code, what it printed; exit 255 if it did not finish, -1 if
# there is no promtool).
sub promtool_check {
    my ($text, $dir) = @_;
    my $promtool = '/usr/bin/promtool';
    return (-1, "$promtool is missing (scripts/deps.sh installs prometheus)")
      unless -x $promtool;
    spew("$dir/metrics.prom", $text);
    my ($st, $hung) = run_cmd(60, {in => "$dir/metrics.prom", out => "$dir/promtool.out"},
                              $promtool, 'check', 'metrics');
    return ($hung ? 255 : $st >> 8, slurp("$dir/promtool.out"));
}

# Calls $check every 0.1 s until it returns true or $timeout seconds
# pass; returns its last result.
sub wait_until {
    my ($timeout, $check) = @_;
    my $deadline = time + $timeout;
    while (1) {
        my $r = $check->();
        return $r if $r || time >= $deadline;
        sleep 0.1;
    }
}

1;
