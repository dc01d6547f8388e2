#!/usr/bin/perl
# The benchmark (`make bench`, `make bench-smoke`): httpd
# instances side by side on loopback, event MPM, one temp ServerRoot each,
# a PKI made for the run (EC P-256 everywhere), the same SSL configuration
# on every server:
#
#   a   SSLVerifyClient require + Require all granted (the floor)
#   b   Require expr "%{SSL_CLIENT_S_DN} in {...}" with N subjects
#   c1  Require all granted + MTLSAuthz On + N MTLSAllowSubject lines
#   c2  Require all granted + MTLSAuthz On + N "MTLSAllow subject=.. issuer=.."
#   c2f the same rules as c2, from one MTLSAllowFile (startup and scale)
#   d   c2 with the client's rule only, plus an MTLSDenyFile of N
#       cert=sha256: lines (N-1 random digests and the denied client's):
#       what a deny list adds, and that it adds the same at every N
#   c3  N "san=DNS:.xNNNNNN.example issuer=.." rules in an MTLSAllowFile
#       (DNS suffixes), the client's first
#   c4  N "san=IP:10.x.y.0/24 issuer=.." rules in an MTLSAllowFile
#       (networks), the client's first
#
# Headline figures are callgrind instruction counts on httpd -X, one
# valgrind process per server, startup uninstrumented:
#   - per keep-alive request: counters dumped inside one open connection,
#     after its first request and after K more (no handshake in the window);
#   - per new connection with one request (full TLS 1.3 handshake):
#     (dump after M+1 ab connections - dump after 1) / M;
#   - per resumed connection with one request, TLS 1.2 session ID (shmcb,
#     tickets off, second port) and TLS 1.3 ticket: the same with a Perl
#     client that checks every connection really resumed.
# Secondary: server CPU per request under ab load (median and min-max over
# rounds), startup time, RSS, httpd -t. It checks the performance targets
# and prints PASS/MISS. Everything is configured with environment
# variables (see %cfg below). Exits non-zero when the harness breaks (a
# server that must start does not, a wrong status code, a connection that
# did not resume, a failed ab or valgrind run), never because a target is
# missed. Files, ports and processes are the test harness's
# (t/lib/HttpdRun.pm).
use strict;
use warnings FATAL => 'all';
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use FindBin ();
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use IO::Socket::SSL;
use lib "$FindBin::RealBin/../t/lib";
use HttpdRun qw(slurp spew free_port port_open spawn kill_group);

my $top = abs_path(dirname(abs_path($0)) . '/..');
my $smoke = $ENV{BENCH_SMOKE} ? 1 : 0;

sub env_or { my ($k, $d) = @_; defined $ENV{$k} && $ENV{$k} ne '' ? $ENV{$k} : $d }

sub list_of { [sort { $a <=> $b } grep { /^\d+$/ && $_ > 0 } split /[ ,]+/, $_[0]] }

my %cfg = (
    # list sizes: BENCH_NS sets both lists; BENCH_NS_B (Require expr) and
    # BENCH_NS_C (the module) set one each.
    ns_b => list_of(env_or('BENCH_NS_B', env_or('BENCH_NS', $smoke ? '1,10' : '1,100,1000,10000,100000'))),
    ns_c => list_of(env_or('BENCH_NS_C', env_or('BENCH_NS', $smoke ? '1,10' : '1,100,100000,1000000'))),
    # the deny list (d), suffix (c3) and network (c4) servers
    ns_x => list_of(env_or('BENCH_NS_X', $smoke ? '1,10' : '1,100000')),
    # rules in the MTLSAllowFile server (c2f)
    file_n      => env_or('BENCH_FILE_N',      $smoke ? 10 : 1000000),
    rounds      => env_or('BENCH_ROUNDS',      $smoke ? 1 : 3),
    # per keep-alive load run: at most this many requests and seconds
    requests    => env_or('BENCH_REQUESTS',    $smoke ? 300 : 200000),
    seconds     => env_or('BENCH_SECONDS',     $smoke ? 1 : 3),
    concurrency => env_or('BENCH_CONCURRENCY', 4),
    # new-connection runs (one request per handshake)
    nc_requests => env_or('BENCH_NEWCONN_REQUESTS', $smoke ? 50 : 100000),
    nc_seconds  => env_or('BENCH_NEWCONN_SECONDS',  $smoke ? 1 : 3),
    # callgrind: two windows of K requests inside one keep-alive
    # connection; M new connections; M resumed connections per flavour
    cg_k        => env_or('BENCH_CG_K', $smoke ? 3 : 20),
    cg_conns    => env_or('BENCH_CG_CONNS', $smoke ? 2 : 40),
    cg_resumed  => env_or('BENCH_CG_RESUMED', $smoke ? 2 : 40),
    # callgrind servers measured at once (instruction counts do not care)
    cg_jobs     => env_or('BENCH_CG_JOBS', 2),
    callgrind   => env_or('BENCH_CALLGRIND', 1),
    start_timeout    => env_or('BENCH_START_TIMEOUT', 120),
    cg_start_timeout => env_or('BENCH_CG_START_TIMEOUT', 1800),
    out  => env_or('BENCH_OUT',  $smoke ? "$top/build/bench-smoke/RESULTS.md" : "$top/bench/RESULTS.md"),
    plot => env_or('BENCH_PLOT', $smoke ? "$top/build/bench-smoke/per-request.png" : "$top/bench/per-request.png"),
    plot_conn => env_or('BENCH_PLOT_CONN', $smoke ? "$top/build/bench-smoke/per-connection.png" : "$top/bench/per-connection.png"),
    keep => env_or('BENCH_KEEP', 0),
    user => env_or('BENCH_USER', 'nobody'),
);
my $t_begin = time;
my $is_root = $> == 0;
my $clk = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;

# ---- tools -----------------------------------------------------------------

my @apxs_found = grep { -x } map { ("$_/apxs2", "$_/apxs") } split /:/, $ENV{PATH};
my $apxs = env_or("APXS", $apxs_found[0] // "apxs");
chomp(my $sbindir = `$apxs -q SBINDIR`);
chomp(my $progname = `$apxs -q progname`);
chomp(my $libexec = `$apxs -q LIBEXECDIR`);
my $httpd = env_or('BENCH_HTTPD', "$sbindir/$progname");
my %builtin = map { /^\s*(\S+\.c)\s*$/ ? ($1 => 1) : () } `$httpd -l`;
my $module_built = "$top/.libs/mod_mtls_authz.so";
-x $httpd or die "bench: no httpd at $httpd\n";
-f $module_built or die "bench: $module_built missing (run make)\n";
for my $tool (qw(ab openssl curl gnuplot)) {
    system("command -v $tool >/dev/null 2>&1") == 0
      or die "bench: $tool missing (sh scripts/deps.sh bench)\n";
}
if ($cfg{callgrind}) {
    system('command -v valgrind >/dev/null 2>&1') == 0
      or die "bench: valgrind missing (sh scripts/deps.sh bench)\n";
}

my $main_pid = $$;
my $work = tempdir('mtls-bench.XXXXXX', DIR => env_or('TMPDIR', '/tmp'),
                   CLEANUP => 0);
chmod 0755, $work;
my @children;    # process groups to end on exit
my $failed = 0;

sub note { print STDERR "bench: @_\n" }
sub harness_fail { note("FAIL: @_"); $failed++ }

END {
    my $rc = $?;
    # a callgrind worker (fork) ends its own servers only
    if ($$ != $main_pid) {
        for my $pg (@children) { kill 'KILL', -$pg }
        $? = $rc;
        return;
    }
    for my $pg (@children) { kill 'TERM', -$pg }
    sleep 0.3 if @children;
    for my $pg (@children) { kill 'KILL', -$pg; waitpid($pg, 0) }
    if ($work && -d $work && !$cfg{keep} && !$failed && $rc == 0) {
        remove_tree($work);
    }
    elsif ($work && -d $work) {
        print STDERR "bench: work files kept in $work\n";
    }
    $? = $rc;
}
$SIG{INT} = $SIG{TERM} = sub { die "bench: interrupted\n" };

# ---- small helpers ---------------------------------------------------------

sub run_ok {
    my (@cmd) = @_;
    system(@cmd) == 0 or die "bench: failed: @cmd\n";
}

sub capture {
    my ($cmd) = @_;
    my $out = `$cmd`;
    return ($? >> 8, $out);
}

# Starts a command in its own process group, output to $log; it is ended
# on exit unless stop_group ended it before.
sub start_group {
    my $pid = spawn(@_);
    push @children, $pid;
    return $pid;
}

sub alive { my ($pid) = @_; waitpid($pid, WNOHANG) == 0 }

sub stop_group {
    my ($pid, $grace) = @_;
    kill_group($pid, $grace // 30);
    @children = grep { $_ != $pid } @children;
}

sub median {
    my @v = sort { $a <=> $b } grep { defined } @_;
    return undef unless @v;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

sub fmt_int {
    my ($n) = @_;
    return '–' unless defined $n;
    my $s = sprintf '%.0f', $n;
    1 while $s =~ s/^(-?\d+)(\d{3})/$1,$2/;
    return $s;
}
sub fmt { my ($f, $v) = @_; defined $v ? sprintf($f, $v) : '–' }

# ---- PKI -------------------------------------------------------------------

my $pki = "$work/pki";
make_path($pki);
my $ossl_log = "$work/openssl.log";
sub ossl { run_ok("openssl @_ >>$ossl_log 2>&1") }
sub newkey { ossl("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $pki/$_[0].key") }

sub sign {
    my ($name, $subj, $ext) = @_;
    newkey($name);
    ossl("req -new -key $pki/$name.key -subj '$subj' -out $pki/$name.csr");
    spew("$pki/$name.ext", $ext);
    ossl("x509 -req -in $pki/$name.csr -CA $pki/ca.crt -CAkey $pki/ca.key"
         . " -CAcreateserial -days 2 -sha256 -extfile $pki/$name.ext -out $pki/$name.crt");
    # ab -E: the certificate, then the key, in one file
    spew("$pki/$name.pem", slurp("$pki/$name.crt") . slurp("$pki/$name.key"));
}

newkey('ca');
ossl("req -x509 -new -key $pki/ca.key -subj '/C=US/O=mtls bench/CN=Bench CA'"
     . " -days 2 -sha256 -addext 'basicConstraints=critical,CA:TRUE'"
     . " -addext 'keyUsage=critical,keyCertSign,cRLSign' -out $pki/ca.crt");
sign('server', '/CN=localhost', "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
sign('allowed', '/C=US/O=mtls bench/CN=bench-allowed', "extendedKeyUsage=clientAuth\n");
# The allowed client of the suffix (c3) and network (c4) servers, with
# the SANs they admit. The others keep a client without SANs, as in
# earlier runs: extracting two SANs costs the module per connection.
sign('allowed-san', '/C=US/O=mtls bench/CN=bench-allowed-san',
     "extendedKeyUsage=clientAuth\nsubjectAltName=DNS:api.x000000.example,IP:10.0.0.7\n");
sign('denied', '/C=US/O=mtls bench/CN=bench-denied', "extendedKeyUsage=clientAuth\n");
system("chmod -R a+rX $pki");

sub subject_of {
    my ($crt) = @_;
    my $s = `openssl x509 -in $crt -noout -subject -nameopt RFC2253`;
    $s =~ s/^subject=\s*//;
    chomp $s;
    return $s;
}
my $allowed_dn = subject_of("$pki/allowed.crt");
my $denied_dn  = subject_of("$pki/denied.crt");
my $ca_fp = `openssl x509 -in $pki/ca.crt -noout -fingerprint -sha256`;
$ca_fp =~ s/.*=//s;
$ca_fp =~ s/[:\s]//g;
$ca_fp = 'sha256:' . lc $ca_fp;
# The denied client's certificate: the one real entry of the deny lists.
my $denied_fp = `openssl x509 -in $pki/denied.crt -noout -fingerprint -sha256`;
$denied_fp =~ s/.*=//s;
$denied_fp =~ s/[:\s]//g;
$denied_fp = 'sha256:' . lc $denied_fp;
die "bench: unexpected subject '$allowed_dn'\n" unless $allowed_dn eq 'CN=bench-allowed,O=mtls bench,C=US';

# The N subjects: N-1 of the form below and the allowed client's, written
# first or last.
sub subjects {
    my ($n, $place) = @_;
    my @dn = map { sprintf 'CN=bench-client-%06d,O=mtls bench,C=US', $_ } 1 .. $n - 1;
    return $place eq 'last' ? (@dn, $allowed_dn) : ($allowed_dn, @dn);
}

# ---- servers ---------------------------------------------------------------

my $module = "$work/mod_mtls_authz.so";    # a copy the unprivileged user can read
run_ok('cp', $module_built, $module);
chmod 0644, $module;

my %servers;    # id -> {...}
my @server_ids;

sub policy {
    my ($kind, $n, $place, $dir) = @_;
    return "    Require all granted\n" if $kind eq 'a';
    my @dn = subjects($n, $place);
    if ($kind eq 'c2f') {
        # one issuer pin for every rule; the file is read at both config reads
        spew("$dir/allow.txt", join '', map { "\"subject=$_\" issuer=$ca_fp\n" } @dn);
        return "    Require all granted\n    MTLSAuthz On\n    MTLSAllowFile \"$dir/allow.txt\"\n";
    }
    if ($kind eq 'd') {
        # N-1 random certificate digests and the denied client's: a deny
        # list the allowed client is not in.
        open my $fh, '>', "$dir/deny.txt" or die "$dir/deny.txt: $!";
        print $fh "cert=$denied_fp\n";
        for (2 .. $n) {
            print $fh 'cert=sha256:', join('', map { sprintf '%08x', int rand 2**32 } 1 .. 8), "\n";
        }
        close $fh or die "$dir/deny.txt: $!";
        return "    Require all granted\n    MTLSAuthz On\n"
          . "    MTLSAllow \"subject=$allowed_dn\" issuer=$ca_fp\n"
          . "    MTLSDenyFile \"$dir/deny.txt\"\n";
    }
    if ($kind eq 'c3' || $kind eq 'c4') {
        # The client's suffix or network first, then N-1 others.
        my @v = $kind eq 'c3'
          ? map { sprintf 'DNS:.x%06d.example', $_ } 0 .. $n - 1
          : map { sprintf 'IP:%d.%d.%d.0/24', 10 + ($_ >> 16), ($_ >> 8) & 255, $_ & 255 } 0 .. $n - 1;
        spew("$dir/allow.txt", join '', map { "san=$_ issuer=$ca_fp\n" } @v);
        return "    Require all granted\n    MTLSAuthz On\n    MTLSAllowFile \"$dir/allow.txt\"\n";
    }
    if ($kind eq 'b') {
        return "    Require expr \"%{SSL_CLIENT_S_DN} in {"
          . join(', ', map { "'$_'" } @dn) . "}\"\n";
    }
    my $s = "    Require all granted\n    MTLSAuthz On\n";
    if ($kind eq 'c1') {
        $s .= join '', map { "    MTLSAllowSubject \"$_\"\n" } @dn;
    }
    else {
        $s .= join '', map { "    MTLSAllow \"subject=$_\" issuer=$ca_fp\n" } @dn;
    }
    return $s;
}

# Writes the configuration of one server into its own ServerRoot.
sub make_server {
    my ($kind, $n, $place, %opt) = @_;
    my $id = $kind eq 'a' ? 'a' : "$kind-$n-$place";
    $id .= "-$opt{tag}" if $opt{tag};
    my $dir = "$work/srv-$id";
    make_path("$dir/htdocs", "$dir/logs");
    spew("$dir/htdocs/index.html", "ok\n");
    my $port = free_port();
    my $port2 = free_port();
    my @mods = qw(mpm_event authz_core socache_shmcb ssl log_config);
    my $conf = join '', map { "LoadModule ${_}_module $libexec/mod_$_.so\n" }
      grep { !$builtin{"mod_$_.c"} } @mods;
    $conf .= "LoadModule mtls_authz_module $module\n" if $kind =~ /^[cd]/;
    my $user = $is_root && !$opt{unprivileged} ? "User $cfg{user}\nGroup "
      . ((getgrgid((getpwnam($cfg{user}))[3]))[0] // 'nogroup') . "\n" : '';
    my $loglevel = $opt{debug} ? 'warn mtls_authz:debug' : 'warn';
    my $access = $opt{debug}
      ? "LogFormat \"%k %>s %{c}a:%{remote}p\" keepalive\nCustomLog $dir/logs/access.log keepalive\n"
      : '';
    $conf .= <<"CONF";
ServerRoot "$dir"
ServerName localhost
Listen 127.0.0.1:$port
Listen 127.0.0.1:$port2
PidFile $dir/logs/httpd.pid
DefaultRuntimeDir $dir/logs
ErrorLog $dir/logs/error.log
LogLevel $loglevel
$access$user
# one child with a fixed set of threads: no process churn while measuring
StartServers 1
ServerLimit 1
ThreadLimit 16
ThreadsPerChild 16
MaxRequestWorkers 16
MinSpareThreads 1
MaxSpareThreads 16
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 15

DocumentRoot "$dir/htdocs"
# The same SSL configuration on every server, so that (a) is the floor of
# each measurement. Port $port: session tickets on (mod_ssl's default):
# load, keep-alive, full handshakes and TLS 1.3 ticket resumption.
# Port $port2: tickets off, TLS 1.2 session IDs resumed from shmcb.
SSLSessionCache shmcb:$dir/logs/ssl_scache(512000)
SSLSessionCacheTimeout 600
SSLEngine on
SSLCertificateFile $pki/server.crt
SSLCertificateKeyFile $pki/server.key
SSLCACertificateFile $pki/ca.crt
SSLVerifyClient require
SSLVerifyDepth 2
SSLSessionTickets on
<VirtualHost 127.0.0.1:$port2>
    SSLEngine on
    SSLCertificateFile $pki/server.crt
    SSLCertificateKeyFile $pki/server.key
    SSLCACertificateFile $pki/ca.crt
    SSLVerifyClient require
    SSLVerifyDepth 2
    SSLSessionTickets off
</VirtualHost>
<Location />
CONF
    $conf .= policy($kind, $n, $place, $dir) . "</Location>\n";
    spew("$dir/httpd.conf", $conf);
    system("chmod -R a+rX $dir");
    if ($opt{unprivileged} && $is_root) {
        system('chown', '-R', $cfg{user}, "$dir/logs");
    }
    my $s = { id => $id, kind => $kind, n => $n, place => $place, dir => $dir,
              port => $port, port2 => $port2, conf => "$dir/httpd.conf", opt => \%opt,
              client => $kind =~ /^c[34]$/ ? 'allowed-san' : 'allowed' };
    $servers{$id} = $s;
    push @server_ids, $id unless $opt{private};
    return $s;
}

# Starts a server in the foreground of its own process group; returns
# true when it accepts connections. Records the wall time to get there and
# the parent's RSS.
sub start_measured {
    my ($s, $timeout) = @_;
    my $t0 = time;
    $s->{pid} = start_group("$s->{dir}/logs/stdout.log", $httpd, '-DFOREGROUND', '-f', $s->{conf});
    my $until = $t0 + $timeout;
    while (time < $until) {
        if (!alive($s->{pid})) {
            @children = grep { $_ != $s->{pid} } @children;
            $s->{error} = 'exited: ' . last_lines("$s->{dir}/logs/stdout.log", "$s->{dir}/logs/error.log");
            return 0;
        }
        # httpd listens after its first read of the configuration and
        # serves after the second: wait for an answer to a real request.
        # Answered, and by this server: one that could not bind its port
        # exits, and another may be answering there.
        if (port_open($s->{port})
            && curl_status($s, 'allowed', int($until - time) + 1) ne '000'
            && alive($s->{pid})) {
            $s->{start_s} = time - $t0;
            my $st = slurp("/proc/$s->{pid}/status");
            ($s->{rss_kb}) = $st =~ /^VmRSS:\s+(\d+)/m;
            ($s->{hwm_kb}) = $st =~ /^VmHWM:\s+(\d+)/m;
            return 1;
        }
        sleep 0.05;
    }
    $s->{error} = "did not accept connections within ${timeout}s";
    stop_group($s->{pid}, 5);
    return 0;
}

sub last_lines {
    my @text;
    for my $f (@_) {
        my @l = grep { /\S/ } split /\n/, slurp($f);
        push @text, @l[($#l > 2 ? $#l - 2 : 0) .. $#l] if @l;
    }
    my $t = join ' | ', @text;
    $t = substr($t, 0, 400) . '…' if length $t > 400;
    return $t || '(no output)';
}

# httpd -t on the configuration: wall time and max RSS (GNU time).
sub syntax_check {
    my ($s) = @_;
    my $t0 = time;
    my ($rc, $out) = capture("/usr/bin/time -f 'maxrss=%M' $httpd -t -f $s->{conf} 2>&1");
    $s->{t_s} = time - $t0;
    ($s->{t_maxrss_kb}) = $out =~ /maxrss=(\d+)/;
    $s->{t_ok} = $rc == 0 && $out =~ /Syntax OK/;
    $s->{t_out} = $out;
}

# CPU time in clock ticks of the httpd parent and its children.
sub cpu_ticks {
    my ($pid) = @_;
    my $total = 0;
    opendir my $d, '/proc' or die "/proc: $!";
    for my $p (grep { /^\d+$/ } readdir $d) {
        my $stat = slurp("/proc/$p/stat");
        next unless $stat =~ /\)\s+(.*)$/s;
        my @f = split ' ', $1;    # f[0] = state (field 3)
        my ($ppid, $ut, $st, $cut, $cst) = @f[1, 11, 12, 13, 14];
        next unless $p == $pid || $ppid == $pid;
        $total += $ut + $st + $cut + $cst;
    }
    closedir $d;
    return $total;
}

# The certificate that stands for "allowed" on server $s.
sub client_of { my ($s, $cert) = @_; $cert eq 'allowed' ? $s->{client} : $cert }

sub curl_status {
    my ($s, $cert, $max) = @_;
    $max //= 20;
    $cert = client_of($s, $cert);
    my $out = `curl -s -o /dev/null -w '%{http_code}' --max-time $max --cacert $pki/ca.crt --cert $pki/$cert.crt --key $pki/$cert.key https://127.0.0.1:$s->{port}/index.html 2>/dev/null`;
    return $out || '000';
}

sub expected {
    my ($s, $cert) = @_;
    return 200 if $cert eq 'allowed' || $s->{kind} eq 'a';
    return 403;
}

# One ab run; returns {reqs, rps, cpu_us, non2xx} or undef (and a failure).
sub ab_run {
    my ($s, $cert, $keepalive, $n, $secs, $conc) = @_;
    my @cmd = ('ab', '-q', '-r', ($keepalive ? '-k' : ()), '-c', $conc,
               '-t', $secs, '-n', $n, '-E', "$pki/" . client_of($s, $cert) . ".pem",
               "https://127.0.0.1:$s->{port}/index.html");
    my $before = cpu_ticks($s->{pid});
    my $t0 = time;
    my $out = `@cmd 2>&1`;
    my $rc = $? >> 8;
    my $wall = time - $t0;
    my $after = cpu_ticks($s->{pid});
    my ($done) = $out =~ /^Complete requests:\s+(\d+)/m;
    my ($fail) = $out =~ /^Failed requests:\s+(\d+)/m;
    my ($non2) = $out =~ /^Non-2xx responses:\s+(\d+)/m;
    my ($ka)   = $out =~ /^Keep-Alive requests:\s+(\d+)/m;
    my ($rps)  = $out =~ /^Requests per second:\s+([\d.]+)/m;
    $non2 //= 0;
    my $what = "ab on $s->{id} with $cert" . ($keepalive ? ' -k' : '');
    if ($rc != 0 || !$done || !defined $rps) {
        harness_fail("$what: exit $rc: " . substr($out, 0, 300));
        return undef;
    }
    my $want403 = expected($s, $cert) == 403;
    if ($fail) {
        harness_fail("$what: $fail failed requests");
        return undef;
    }
    if ($want403 ? $non2 != $done : $non2 != 0) {
        harness_fail("$what: $non2 of $done responses were not 2xx, expected "
                     . ($want403 ? 'all 403' : 'none'));
        return undef;
    }
    if ($keepalive && defined $ka && $ka < $done - $conc) {
        harness_fail("$what: only $ka of $done requests were kept alive");
        return undef;
    }
    return { reqs => $done, rps => $rps, wall => $wall,
             cpu_us => ($after - $before) * 1e6 / $clk / $done };
}

# ---- build the servers -----------------------------------------------------

my @ns_b = @{ $cfg{ns_b} };
my @ns_c = @{ $cfg{ns_c} };
my %nseen;
my @ns_all = sort { $a <=> $b } grep { !$nseen{$_}++ } @ns_b, @ns_c;
my @ns_x = @{ $cfg{ns_x} };
my @kinds = qw(b c1 c2);
# Measured by callgrind and at startup, not under load.
my @xkinds = qw(d c3 c4);
sub ns_of { $_[0] eq 'b' ? @ns_b : $_[0] =~ /^(?:d|c3|c4)$/ ? @ns_x : @ns_c }
# Worst case first (the client's DN is the first entry: a full scan for
# Require expr); the DN written last only for (b), where it matters.
sub places { my ($kind, $n) = @_; $n == 1 ? ('only') : $kind eq 'b' ? ('first', 'last') : ('first') }
sub sid { my ($kind, $n) = @_; "$kind-$n-" . (places($kind, $n))[0] }

note("work dir $work; N (b) = @ns_b; N (c) = @ns_c; N (d, c3, c4) = @ns_x; file rules $cfg{file_n}; rounds $cfg{rounds}");
make_server('a', 0, '-');
for my $kind (@kinds, @xkinds) {
    for my $n (ns_of($kind)) {
        make_server($kind, $n, $_) for places($kind, $n);
    }
}
my $file_id = sid('c2f', $cfg{file_n});
make_server('c2f', $cfg{file_n}, (places('c2f', $cfg{file_n}))[0]);

# Startup: httpd -t, then a start, one server at a time. The floor and
# the rule-file server first, while nothing else runs: the others hold
# gigabytes between them, and page faults (a third of loading a million
# rules) cost more next to them.
my %findings;
for my $id ((grep { $_ eq 'a' || $_ eq $file_id } @server_ids),
            (grep { $_ ne 'a' && $_ ne $file_id } @server_ids)) {
    my $s = $servers{$id};
    syntax_check($s);
    if (!$s->{t_ok}) {
        my $why = $s->{t_out};
        $why =~ s/\s+/ /g;
        $why = substr($why, 0, 300);
        $s->{error} = "httpd -t failed: $why";
    }
    elsif (!start_measured($s, $cfg{start_timeout})) {
        # fall through with $s->{error}
    }
    if ($s->{error}) {
        # (b) with a huge list is allowed to fail: that is a finding.
        if ($s->{kind} eq 'b' && $s->{n} >= 10000) {
            $findings{$id} = $s->{error};
            note("$id does not run: $s->{error}");
        }
        else {
            harness_fail("$id: $s->{error}");
        }
        next;
    }
    note(sprintf '%-22s started in %.2fs, parent VmRSS %d KiB, httpd -t %.2fs', $id, $s->{start_s},
         $s->{rss_kb}, $s->{t_s});
}
exit 1 if $failed;
my @up = grep { $servers{$_}{pid} } @server_ids;

# Correctness before load: the allowed certificate gets 200 and the denied
# one 403 (200 on the floor server, which lets every verified client in).
for my $id (@up) {
    my $s = $servers{$id};
    for my $cert (qw(allowed denied)) {
        my $got = curl_status($s, $cert);
        my $want = expected($s, $cert);
        harness_fail("$id: $cert certificate got $got, expected $want") if $got ne $want;
    }
}
exit 1 if $failed;
note('every server answers 200 to the allowed and 403 to the denied certificate');
# The rule-file server is there for startup and scale; no load on it.
stop_group($servers{$file_id}{pid}, 20) if $servers{$file_id}{pid};

# ---- keep-alive and new-connection load, alternating (secondary: CPU) -------

# Jobs: [server id, certificate, keepalive]. The denied certificate only at
# each kind's largest N (a full scan for b).
my @jobs = (['a', 'allowed', 1]);
for my $kind (@kinds) {
    for my $n (ns_of($kind)) {
        push @jobs, ["$kind-$n-$_", 'allowed', 1] for places($kind, $n);
    }
    push @jobs, [sid($kind, (ns_of($kind))[-1]), 'denied', 1];
}
# New connections: one request per handshake, at the smallest and the
# largest N > 1 of each kind, worst placement.
push @jobs, ['a', 'allowed', 0];
for my $kind (@kinds) {
    my @n = grep { $_ > 1 } ns_of($kind);
    @n = ($n[0], $n[-1]) if @n > 2;
    @n = ns_of($kind) unless @n;
    push @jobs, [sid($kind, $_), 'allowed', 0] for @n;
}
@jobs = grep { $servers{ $_->[0] }{pid} } @jobs;

my %res;    # "id|cert|ka" -> [per-round results]
for my $round (1 .. $cfg{rounds}) {
    # rotate the order each round so no server always runs first or last
    my $k = ($round - 1) * int(@jobs / $cfg{rounds} + 1) % @jobs;
    my @order = (@jobs[$k .. $#jobs], @jobs[0 .. $k - 1]);
    note("round $round/$cfg{rounds}: " . scalar(@order) . ' runs');
    for my $j (@order) {
        my ($id, $cert, $ka) = @$j;
        my $s = $servers{$id};
        my $r = $ka
          ? ab_run($s, $cert, 1, $cfg{requests}, $cfg{seconds}, $cfg{concurrency})
          : ab_run($s, $cert, 0, $cfg{nc_requests}, $cfg{nc_seconds}, $cfg{concurrency});
        exit 1 unless $r;
        push @{ $res{"$id|$cert|$ka"} }, $r;
    }
}

# Medians with min and max, and ratios to (a) taken per round (same
# moment, same noise).
my %med;
for my $key (keys %res) {
    my ($id, $cert, $ka) = split /\|/, $key;
    my $base = $res{"a|allowed|$ka"};
    my @rs = @{ $res{$key} };
    my @cpu = sort { $a <=> $b } map { $_->{cpu_us} } @rs;
    $med{$key} = {
        cpu => median(@cpu), cpu_min => $cpu[0], cpu_max => $cpu[-1],
        rps => median(map { $_->{rps} } @rs),
        reqs => median(map { $_->{reqs} } @rs),
        cpu_x => median(map { $rs[$_]{cpu_us} / $base->[$_]{cpu_us} } 0 .. $#rs),
        rps_x => median(map { $rs[$_]{rps} / $base->[$_]{rps} } 0 .. $#rs),
    };
}

# ---- one identity extraction per connection ------------------------------------

my %once;
{
    my $n = $ns_c[-1] > 1000 ? 1000 : $ns_c[-1];
    my $s = make_server('c1', $n, 'first', debug => 1, tag => 'debug', private => 1);
    if (start_measured($s, $cfg{start_timeout})) {
        my $ka = ab_run($s, 'allowed', 1, $smoke ? 200 : 2000, 30, $cfg{concurrency});
        my $nc = ab_run($s, 'allowed', 0, $smoke ? 20 : 200, 30, $cfg{concurrency});
        stop_group($s->{pid}, 10);
        if ($ka && $nc) {
            my @acc = split /\n/, slurp("$s->{dir}/logs/access.log");
            my $err = slurp("$s->{dir}/logs/error.log");
            my $extracted = () = $err =~ /\] identity extracted \(\d+ on this connection\)/g;
            my $again = () = $err =~ /identity extracted \((?!1 )\d+ on this connection\)/g;
            %once = (
                requests => scalar(@acc),
                connections => scalar(grep { /^0 / } @acc),
                extracted => $extracted,
                again => $again,
            );
        }
        else { harness_fail('identity-extraction run failed') }
    }
    else { harness_fail("$s->{id}: $s->{error}") }
    exit 1 if $failed;
}

# ---- callgrind on httpd -X --------------------------------------------------------

# A callgrind dump: the total, and the inclusive cost of every call from
# outside the module's object into it (its hooks, pool cleanups, config
# merges: a breakdown of the module's own work; nothing in it is nested,
# the module registers no callback that another library calls back
# while the module runs).
sub cg_parse {
    my ($file) = @_;
    open my $fh, '<', $file or return undef;
    my (%name, %cur, $incall, %entry, $total);
    my $nm = sub {
        my ($k, $v) = @_;
        return $v unless $v =~ /^\((\d+)\)\s*(.*)$/;
        $name{$k}{$1} = $2 if length $2;
        return $name{$k}{$1} // '?';
    };
    while (my $l = <$fh>) {
        if ($l =~ /^(ob|fn)=(.*)/) {
            $cur{$1} = $nm->($1, $2);
            delete $cur{cob} if $1 eq 'fn';
        }
        elsif ($l =~ /^(c?f[ile])=(.*)/) { $nm->('fl', $2) }
        elsif ($l =~ /^cob=(.*)/) { $cur{cob} = $nm->('ob', $1) }
        elsif ($l =~ /^cfn=(.*)/) { $cur{cfn} = $nm->('fn', $1) }
        elsif ($l =~ /^calls=/) { $incall = 1 }
        elsif ($l =~ /^[+\-*]?\d/ || $l =~ /^\*/) {
            next unless $incall;
            $incall = 0;
            my $cob = delete $cur{cob} // $cur{ob};
            next unless $cob =~ /mod_mtls_authz/ && $cur{ob} !~ /mod_mtls_authz/;
            my (undef, $cost) = split ' ', $l;
            $entry{ $cur{cfn} } += $cost;
        }
        elsif ($l =~ /^summary:\s*(\d+)/) { $total = $1 }
    }
    return undef unless defined $total;
    my $module = 0;
    $module += $_ for values %entry;
    return { total => $total, module => $module, entry => \%entry };
}

# (b - a) / m of two parsed dumps
sub cg_per {
    my ($a, $b, $m) = @_;
    my %e = map { ($_ => (($b->{entry}{$_} // 0) - ($a->{entry}{$_} // 0)) / $m) }
      keys %{ { %{ $a->{entry} }, %{ $b->{entry} } } };
    return { total => ($b->{total} - $a->{total}) / $m,
             module => ($b->{module} - $a->{module}) / $m, entry => \%e };
}

sub child_of {
    my ($pid) = @_;
    opendir my $d, '/proc' or return undef;
    for my $p (grep { /^\d+$/ } readdir $d) {
        my $stat = slurp("/proc/$p/stat");
        return $p if $stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $pid;
    }
    return undef;
}

# A TLS client context: the allowed certificate, TLS 1.2 only, 1.3 only,
# or whatever the two sides agree; sessions kept for resumption.
sub tls_ctx {
    my ($version, $client) = @_;
    $client //= 'allowed';
    my $ctx = IO::Socket::SSL::SSL_Context->new(
        SSL_version => $version // 'SSLv23:!SSLv3:!SSLv2',
        SSL_ca_file => "$pki/ca.crt", SSL_verify_mode => SSL_VERIFY_PEER,
        SSL_cert_file => "$pki/$client.crt", SSL_key_file => "$pki/$client.key",
        SSL_session_cache_size => 4);
    die "bench: TLS client context: $IO::Socket::SSL::SSL_ERROR\n" unless $ctx;
    return $ctx;
}

sub tls_connect {
    my ($port, $ctx, $timeout) = @_;
    my $sock = IO::Socket::SSL->new(
        PeerHost => '127.0.0.1', PeerPort => $port, Timeout => $timeout // 120,
        SSL_reuse_ctx => $ctx, SSL_hostname => 'localhost',
        SSL_verifycn_name => 'localhost', SSL_verifycn_scheme => 'http',
        SSL_session_key => "bench:$port");
    return $sock ? ($sock, '') : (undef, "TLS connect to port $port: " . ($IO::Socket::SSL::SSL_ERROR || $!));
}

# One GET on an open connection, the whole answer read (with "close", to
# the end, so that TLS 1.3 tickets sent after it are taken in too).
# Returns '' or what went wrong.
sub http_get {
    my ($sock, $close, $timeout) = @_;
    my $err = '';
    local $SIG{ALRM} = sub { die "timeout\n" };
    eval {
        alarm($timeout // 300);
        print {$sock} "GET /index.html HTTP/1.1\r\nHost: localhost\r\n"
          . ($close ? "Connection: close\r\n" : '') . "\r\n"
          or die "write: $!\n";
        my $buf = '';
        while ($buf !~ /\r\n\r\n/) {
            my $got = sysread($sock, $buf, 16384, length $buf);
            die "connection closed before the headers\n" unless $got;
        }
        my ($head, $body) = split /\r\n\r\n/, $buf, 2;
        my ($status) = $head =~ m{^HTTP/1\.\d (\d{3})};
        die 'status ' . ($status // '?') . "\n" unless ($status // 0) == 200;
        if ($close) {
            1 while sysread($sock, $body, 16384, length $body);
        }
        else {
            my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
            die "no Content-Length\n" unless defined $len;
            while (length $body < $len) {
                sysread($sock, $body, $len - length $body, length $body) or die "short body\n";
            }
        }
        alarm 0;
        1;
    } or $err = $@ || 'failed';
    alarm 0;
    chomp $err;
    return $err;
}

# $count connections, one request each, with protocol $version; every one
# must resume the session in $ctx (when $resume) and get 200.
sub tls_conns {
    my ($port, $ctx, $version, $count, $resume) = @_;
    for my $i (1 .. $count) {
        my ($sock, $err) = tls_connect($port, $ctx);
        return $err unless $sock;
        my $got = $sock->get_sslversion // '?';
        return "connection $i of $count: $got, not $version" if $got ne $version;
        return "connection $i of $count did not resume its session"
          if $resume && !$sock->get_session_reused;
        $err = http_get($sock, 1);
        $sock->close(SSL_fast_shutdown => 1);
        return "connection $i of $count: $err" if $err;
    }
    return '';
}

# ab with $n connections (no -k) or requests on one connection (-k), -c 1;
# '' or what went wrong.
sub ab_check {
    my ($s, $n, $ka, $timeout) = @_;
    my $o = `ab -q -c 1 -n $n -s $timeout @{[ $ka ? '-k' : '' ]} -E $pki/$s->{client}.pem https://127.0.0.1:$s->{port}/index.html 2>&1`;
    my $rc = $? >> 8;
    my ($done) = $o =~ /^Complete requests:\s+(\d+)/m;
    my ($fail) = $o =~ /^Failed requests:\s+(\d+)/m;
    my ($non2) = $o =~ /^Non-2xx responses:\s+(\d+)/m;
    my ($kar) = $o =~ /^Keep-Alive requests:\s+(\d+)/m;
    return '' if $rc == 0 && $done && $done == $n && !$fail && !$non2 && (!$ka || ($kar // 0) >= $n - 1);
    $o =~ s/\s+/ /g;
    return "ab -n $n" . ($ka ? ' -k' : '') . ': ' . substr($o, -300);
}

# One server under callgrind (as the unprivileged user when root). Returns
# the result or (undef, why).
sub cg_measure {
    my ($s) = @_;
    my $out = "$s->{dir}/logs/callgrind.out";
    my @as_user = $is_root ? ('runuser', '-u', $cfg{user}, '--') : ();
    my @vg = (@as_user, 'valgrind', '--tool=callgrind', "--callgrind-out-file=$out",
              '--dump-instr=no', '--collect-jumps=no', '--instr-atstart=no',
              $httpd, '-X', '-f', $s->{conf});
    my $t0 = time;
    my $pid = start_group("$s->{dir}/logs/valgrind.log", @vg);
    my $until = $t0 + $cfg{cg_start_timeout};
    my $up = 0;
    while (time < $until) {
        last unless alive($pid);
        if (port_open($s->{port}) && port_open($s->{port2})) { $up = 1; last }
        sleep 0.2;
    }
    my $fail = sub {
        my ($why) = @_;
        stop_group($pid, 5);
        return (undef, "$why: " . last_lines("$s->{dir}/logs/valgrind.log", "$s->{dir}/logs/error.log"));
    };
    return $fail->('httpd -X under callgrind did not start within '
                   . "$cfg{cg_start_timeout}s (BENCH_CG_START_TIMEOUT)") unless $up;
    my $vpid = $is_root ? child_of($pid) : $pid;
    return $fail->('no valgrind process') unless $vpid;
    # callgrind_control finds the process through vgdb's FIFOs in /tmp;
    # retry, it sometimes misses a busy process.
    my $control = sub {
        my ($arg) = @_;
        my $o = '';
        for (1 .. 5) {
            $o = `@as_user callgrind_control $arg $vpid 2>&1`;
            return '' if $? == 0 && $o =~ /OK/;
            sleep 1;
        }
        $o =~ s/\s+/ /g;
        return "callgrind_control $arg: $o";
    };
    my $ndump = 0;
    # Dumps (and zeroes) the counters; returns the parsed dump. The pause
    # first lets the server finish what the client's last close started
    # (lingering close, pool cleanups), so it falls in this window.
    my $dump = sub {
        sleep 0.3;
        my $err = $control->('-d');
        return (undef, $err) if $err;
        $ndump++;
        my $f = "$out.$ndump";
        for (1 .. 50) { last if -s $f && slurp($f) =~ /^totals:/m; sleep 0.1 }
        my $r = cg_parse($f);
        return $r ? ($r) : (undef, "callgrind dump $f missing or unreadable");
    };
    # Startup runs uninstrumented (a million rules take minutes under
    # callgrind); httpd listens after its first read of the configuration
    # and answers after the second. The warm-up then runs once through
    # everything measured below, so that what OpenSSL and httpd set up
    # lazily (tens of millions of instructions) is done before counting.
    my $err = ab_check($s, 1, 1, int($until - time) + 1);
    return $fail->("first answer: $err") if $err;
    my %ctx = (tls12 => tls_ctx('TLSv1_2', $s->{client}), tls13 => tls_ctx('TLSv1_3', $s->{client}));
    my %rport = (tls12 => $s->{port2}, tls13 => $s->{port});
    my %version = (tls12 => 'TLSv1_2', tls13 => 'TLSv1_3');
    $err = ab_check($s, 3, 1, 300) || ab_check($s, 3, 0, 300);
    for my $f (qw(tls12 tls13)) {
        $err ||= tls_conns($rport{$f}, $ctx{$f}, $version{$f}, 1, 0)
          || tls_conns($rport{$f}, $ctx{$f}, $version{$f}, 2, 1);
    }
    return $fail->("warm-up: $err") if $err;
    $err = $control->('-i on');
    return $fail->($err) if $err;
    my %r;
    my ($d0, $d1, $d2, $d3);

    # Per keep-alive request: inside one connection, after its handshake,
    # its first request and K more (glibc's malloc consolidates what the
    # handshake freed at the first large allocation after it: tens of
    # thousands of instructions once); then two windows of K, which should
    # agree.
    my ($sock, $cerr) = tls_connect($s->{port}, tls_ctx(undef, $s->{client}));
    return $fail->($cerr) unless $sock;
    my $k = $cfg{cg_k};
    for (0 .. $k) { $err = http_get($sock, 0) and last }
    ($d0, $err) = $dump->() unless $err;
    for my $w (1, 2) {
        last if $err;
        for (1 .. $k) { $err = http_get($sock, 0) and last }
        ($w == 1 ? $d1 : $d2) = $err ? undef : do { my ($d, $e) = $dump->(); $err = $e; $d };
    }
    $sock->close(SSL_fast_shutdown => 1) if $sock;
    return $fail->("keep-alive requests: $err") if $err;
    $r{req} = cg_per({ total => 0, module => 0, entry => {} }, $d1, $k);
    $r{req2} = cg_per({ total => 0, module => 0, entry => {} }, $d2, $k);

    # A window of 1 unit, then one of M+1: (second - first) / M. A dump
    # first zeroes what came before (the close of the previous connection).
    my $pair = sub {
        my ($what, $m, $run) = @_;
        my ($z, $a, $b, $e);
        ($z, $e) = $dump->();
        return $e if $e;
        $e = $run->(1) and return "$what: $e";
        ($a, $e) = $dump->();
        return $e if $e;
        $e = $run->($m + 1) and return "$what: $e";
        ($b, $e) = $dump->();
        return $e if $e;
        $r{$what} = cg_per($a, $b, $m);
        $r{"$what-one"} = $a;
        return '';
    };
    $err = $pair->('conn', $cfg{cg_conns}, sub { ab_check($s, $_[0], 0, 300) });
    for my $f (qw(tls12 tls13)) {
        $err ||= $pair->($f, $cfg{cg_resumed}, sub { tls_conns($rport{$f}, $ctx{$f}, $version{$f}, $_[0], 1) });
    }
    return $fail->($err) if $err;
    stop_group($pid, 5);
    remove_tree($s->{dir}) unless $cfg{keep};
    $r{secs} = time - $t0;
    return (\%r);
}

my %cg;    # id -> {req, req2, conn, tls12, tls13, ...}
my @cg_ids;
if ($cfg{callgrind}) {
    @cg_ids = ('a');
    for my $kind (@kinds) {
        for my $n (ns_of($kind)) {
            my @p = places($kind, $n);
            # (b) with the DN last: per request only, and it is cheap
            push @cg_ids, "$kind-$n-$_" for @p;
        }
    }
    for my $kind (@xkinds) {
        push @cg_ids, sid($kind, $_) for ns_of($kind);
    }
    if ($smoke) {
        # the same code paths on fewer servers: the smoke run must be quick
        @cg_ids = ('a', sid('b', $ns_b[-1]), sid('c2', $ns_c[-1]), sid('d', $ns_x[-1]));
    }
    @cg_ids = grep { $servers{$_} && !$findings{$_} } @cg_ids;
}
# the load servers are no longer needed; give callgrind the CPU
for my $id (@up) { stop_group($servers{$id}{pid}, 20) if $servers{$id}{pid} }

{
    # the configurations first (ports are handed out here), then up to
    # cg_jobs workers at once, each writing its result to a file
    my %cgs = map { my $b = $servers{$_};
                    ($_ => make_server($b->{kind}, $b->{n}, $b->{place}, unprivileged => 1,
                                       tag => 'cg', private => 1)) } @cg_ids;
    my @todo = @cg_ids;
    my %running;    # pid -> id
    while (@todo || %running) {
        while (@todo && keys(%running) < $cfg{cg_jobs}) {
            my $id = shift @todo;
            my $pid = fork;
            die "bench: fork: $!" unless defined $pid;
            if (!$pid) {
                @children = ();
                $SIG{INT} = $SIG{TERM} = sub { die "bench: interrupted\n" };
                my ($r, $err) = eval { cg_measure($cgs{$id}) };
                $err = $@ if !$r && $@;
                require Data::Dumper;
                local $Data::Dumper::Sortkeys = 1;
                spew("$work/cg-$id.pl", Data::Dumper->Dump([{ r => $r, err => $err }], ['x']));
                POSIX::_exit(0);
            }
            $running{$pid} = $id;
        }
        my $pid = wait;
        last if $pid < 0;
        my $id = delete $running{$pid} or next;
        my $x;
        my $text = -f "$work/cg-$id.pl" ? slurp("$work/cg-$id.pl") : '';
        eval $text if $text;    ## no critic (our own Data::Dumper output)
        if (!$x || !$x->{r}) {
            my $e = $x ? $x->{err} // 'no result' : 'the worker died';
            # the results are still written; the run exits non-zero
            harness_fail("callgrind $id: $e");
            $findings{"callgrind $id"} = "callgrind run failed: $e";
            next;
        }
        my $r = $cg{$id} = $x->{r};
        note(sprintf 'callgrind %-18s request %s (module %s), connection %s, resumed 1.2 %s, 1.3 %s (%.0fs)',
             $id, fmt_int($r->{req}{total}), fmt_int($r->{req}{module}), fmt_int($r->{conn}{total}),
             fmt_int($r->{tls12}{total}), fmt_int($r->{tls13}{total}), $r->{secs});
    }
}

# ---- results ------------------------------------------------------------------

# The raw measurements, in case the report below has a bug: a full run is
# long to repeat.
{
    require Data::Dumper;
    no warnings "once";
    local $Data::Dumper::Sortkeys = 1;    # sorted: diffable
    my %raw = (res => \%res, cg => \%cg, findings => \%findings, once => \%once,
               startup => { map { my $s = $servers{$_};
                                  ($_ => { map { ($_ => $s->{$_}) } grep { !ref $s->{$_} } keys %$s }) } keys %servers });
    make_path(dirname($cfg{out}));
    spew("$work/raw.pl", Data::Dumper->Dump([\%raw], ['raw']));
}

my $elapsed = time - $t_begin;
my ($cpu_model) = slurp('/proc/cpuinfo') =~ /^model name\s*:\s*(.*)$/m;
chomp(my $nproc = `nproc`);
my ($httpd_version) = `$httpd -v` =~ /Server version:\s*(.*)/;
chomp(my $openssl_version = `openssl version`);
my ($modssl) = slurp("$servers{a}{dir}/logs/error.log") =~ /(mod_ssl\/\S+ OpenSSL\/\S+)/;
my ($ab_version) = `ab -V 2>&1` =~ /Version\s+(\S+)/;
chomp(my $date = `date -u '+%Y-%m-%d %H:%M UTC'`);
chomp(my $kernel = `uname -r`);
my ($load) = slurp('/proc/loadavg') =~ /^(\S+ \S+ \S+)/;

my $md = '';
sub out { $md .= join('', @_) . "\n" }

sub label {
    my ($s) = @_;
    return '(a) floor' if $s->{kind} eq 'a';
    my %k = (b => '(b) Require expr', c1 => '(c1) MTLSAllowSubject',
             c2 => '(c2) MTLSAllow subject+issuer', c2f => '(c2f) MTLSAllowFile subject+issuer',
             d => '(d) c2 N=1 + MTLSDenyFile cert=', c3 => '(c3) MTLSAllowFile san=DNS:.suffix',
             c4 => '(c4) MTLSAllowFile san=IP:net/24');
    return $k{ $s->{kind} };
}
sub case_of {
    my ($s, $cert) = @_;
    return 'denied cert' if $cert eq 'denied';
    return 'client not in the list' if $s->{kind} eq 'd';
    return "client's first" if $s->{kind} =~ /^c[34]$/ && $s->{place} eq 'first';
    return { first => 'DN first (worst for b)', last => 'DN last (best for b)',
             only => 'single entry', '-' => '–' }->{ $s->{place} };
}
sub n_of { my ($s) = @_; $s->{kind} eq 'a' ? '–' : fmt_int($s->{n}) }
sub pct { my ($v, $base) = @_; defined $v && $base ? sprintf('%+.2f%%', 100 * $v / $base) : '–' }

out("# mod_mtls_authz benchmark results", $smoke ? ' (smoke run: tiny N, not a measurement)' : '');
out();
out("Written by `make " . ($smoke ? 'bench-smoke' : 'bench') . "` (bench/run.pl); every run rewrites it.");
out();
out("- date: $date; the whole run took " . sprintf('%.1f min', $elapsed / 60));
out("- machine: $nproc CPUs, $cpu_model, Linux $kernel, load average at the end $load"
    . " (a shared machine: other jobs ran at the same time, so the CPU times are noisy)");
out("- httpd: $httpd_version, event MPM, one child with 16 threads; " . ($modssl // $openssl_version)
    . "; load generator ab $ab_version (HTTP/1.1 client sending HTTP/1.0 keep-alive)");
out("- TLS: the same on every server: EC P-256 server and client certificates, `SSLVerifyClient require`,"
    . " `SSLSessionCache shmcb`, session tickets on (mod_ssl's default) on the main port and off on a"
    . " second port (TLS 1.2 session-ID resumption)");
out("- client certificate: subject `$allowed_dn`, no SANs (for (c3) and (c4): `CN=bench-allowed-san`, with SANs"
    . " `DNS:api.x000000.example` and `IP:10.0.0.7`, so that their \"added\" includes extracting two SANs); the other N-1 subjects are"
    . " `CN=bench-client-NNNNNN,O=mtls bench,C=US`, the client's written first (the worst case for"
    . " Require expr); the denied certificate is `$denied_dn`");
out("- N: (b) " . join(', ', map { fmt_int($_) } @ns_b) . "; (c) " . join(', ', map { fmt_int($_) } @ns_c)
    . "; (c2f) " . fmt_int($cfg{file_n}) . " rules in one file; (d) deny list, (c3) DNS suffixes, (c4) networks: "
    . join(', ', map { fmt_int($_) } @ns_x));
out("- (d): (c2)'s rule for the client alone, plus an `MTLSDenyFile` of N `cert=sha256:` lines (N-1 random"
    . " digests and the denied certificate's) that the client is not in; (c3): N `san=DNS:.xNNNNNN.example"
    . " issuer=...` rules, (c4): N `san=IP:10.x.y.0/24 issuer=...` rules (11.x.y.0/24 past 65,536), each in one"
    . " `MTLSAllowFile`, the client's first");
out();

# ---- instructions

my $A = $cg{a};
if ($A) {
    out("## Instructions per keep-alive request (callgrind, httpd -X)");
    out();
    out("One httpd -X per server under callgrind, instrumented after startup and a warm-up. On one"
        . " keep-alive connection (a Perl client sending `GET /index.html HTTP/1.1`), counters dumped after"
        . " its first K + 1 requests, then after K = $cfg{cg_k} more, then after K more: a window"
        . " holds requests only, no handshake, and not the first requests after it. \"added\" is the difference to (a), the honest figure;"
        . " \"module\" is the inclusive cost of every call into the module's object (its hooks, its"
        . " per-directory merge, pool cleanups), a breakdown. \"windows\" is the difference between the"
        . " two windows per request (0 when the count is deterministic).");
    out();
    out("| server | N | case | per request | added | added % of (a) | module | windows |");
    out("|---|---:|---|---:|---:|---:|---:|---:|");
    for my $id (@cg_ids) {
        my $r = $cg{$id} or next;
        my $s = $servers{$id};
        my $add = $r->{req}{total} - $A->{req}{total};
        out(sprintf '| %s | %s | %s | %s | %s | %s | %s | %s |', label($s), n_of($s), case_of($s, 'allowed'),
            fmt_int($r->{req}{total}), $id eq 'a' ? '–' : fmt_int($add),
            $id eq 'a' ? '–' : pct($add, $A->{req}{total}),
            $s->{kind} =~ /^[cd]/ ? fmt_int($r->{req}{module}) : '–',
            fmt_int($r->{req2}{total} - $r->{req}{total}));
    }
    out();
    my @bd = grep { $cg{$_} && $servers{$_}{kind} =~ /^c[12]$/ } @cg_ids;
    if (@bd) {
        my $id = $bd[-1];
        out("Module breakdown per request, $id: " . join(', ', map { "$_ " . fmt_int($cg{$id}{req}{entry}{$_}) }
            sort { $cg{$id}{req}{entry}{$b} <=> $cg{$id}{req}{entry}{$a} }
            grep { abs($cg{$id}{req}{entry}{$_}) >= 0.5 } keys %{ $cg{$id}{req}{entry} }) . '.');
        out();
    }
    # The same for the largest deny list, per request and per new
    # connection (where the decision is taken).
    if (my $r = $cg{ sid('d', $ns_x[-1]) }) {
        for my $w (['req', 'request'], ['conn', 'new connection']) {
            my $e = $r->{ $w->[0] }{entry};
            out("Module breakdown per $w->[1], " . sid('d', $ns_x[-1]) . ': '
                . join(', ', map { "$_ " . fmt_int($e->{$_}) } sort { $e->{$b} <=> $e->{$a} }
                       grep { abs($e->{$_}) >= 0.5 } keys %$e) . '.');
        }
        out();
    }

    out("## Instructions per connection with one request (callgrind, httpd -X)");
    out();
    out("New: a full TLS 1.3 handshake (ab without -k, -c 1: no resumption), the request, the close."
        . " Resumed: a Perl client (IO::Socket::SSL) resuming the session of an earlier connection,"
        . " checked on every connection (SSL_session_reused) and answered 200, `Connection: close`, the"
        . " answer read to the end. TLS 1.2: session ID from shmcb, tickets off. TLS 1.3: a session"
        . " ticket. Each: dump, 1 connection, dump, M+1 connections, dump: (last − previous) / M,"
        . " M = $cfg{cg_conns} new, $cfg{cg_resumed} resumed per flavour. Added % is against (a)'s"
        . " connection of the same kind.");
    out();
    out("| server | N | case | new | added % | module | resumed TLS 1.2 | added % | resumed TLS 1.3 | added % |");
    out("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for my $id (@cg_ids) {
        my $r = $cg{$id} or next;
        my $s = $servers{$id};
        next if $s->{place} eq 'last';
        my @c = map { ($r->{$_}{total}, $id eq 'a' ? '–' : pct($r->{$_}{total} - $A->{$_}{total}, $A->{$_}{total})) }
          qw(conn tls12 tls13);
        out(sprintf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |', label($s), n_of($s),
            case_of($s, 'allowed'), fmt_int($c[0]), $c[1],
            $s->{kind} =~ /^[cd]/ ? fmt_int($r->{conn}{module}) : '–',
            fmt_int($c[2]), $c[3], fmt_int($c[4]), $c[5]);
    }
    out();
}

# ---- against the peer: per connection with R requests

# cost(R) = (new connection with its request − one request) + R × request
my %peer;    # n -> {b => {1 =>, 10 =>, bound => 0|1}, c1 => ..., c2 => ...}
my $crossover;
if ($A) {
    my $cost = sub {
        my ($r, $R) = @_;
        return $r->{conn}{total} + ($R - 1) * $r->{req}{total};
    };
    out("## Against Require expr: instructions per connection with R requests");
    out();
    out("cost(R) = new connection with one request + (R − 1) × keep-alive request, from the two tables"
        . " above. Where (b) was not measured at that N, its cost at the largest smaller N measured is"
        . " shown with ≥ (with the DN written first its cost grows with N); \"does not run\": (b) did not start.");
    out();
    out("| N | (b) R=1 | (c1) R=1 | (c2) R=1 | (b) R=10 | (c1) R=10 | (c2) R=10 |");
    out("|---:|---:|---:|---:|---:|---:|---:|");
    for my $n (@ns_all) {
        my %row;
        for my $kind (qw(c1 c2)) {
            my $r = $cg{ sid($kind, $n) } or next;
            $row{$kind} = { map { ($_ => $cost->($r, $_)) } 1, 10 };
        }
        my ($bn) = grep { $cg{ sid('b', $_) } } reverse grep { $_ <= $n } @ns_b;
        if (grep { $_ == $n } @ns_b and $findings{ sid('b', $n) }) {
            $row{b} = { dnr => 1 };
        }
        elsif (defined $bn) {
            my $r = $cg{ sid('b', $bn) };
            $row{b} = { (map { ($_ => $cost->($r, $_)) } 1, 10), bound => $bn != $n };
        }
        next unless $row{c1} || $row{c2};
        $peer{$n} = \%row;
        my $bv = sub {
            my ($R) = @_;
            return '–' unless $row{b};
            return 'does not run' if $row{b}{dnr};
            return ($row{b}{bound} ? '≥ ' : '') . fmt_int($row{b}{$R});
        };
        out(sprintf '| %s | %s | %s | %s | %s | %s | %s |', fmt_int($n), $bv->(1),
            (map { $row{$_} ? fmt_int($row{$_}{1}) : '–' } qw(c1 c2)), $bv->(10),
            (map { $row{$_} ? fmt_int($row{$_}{10}) : '–' } qw(c1 c2)));
    }
    out();
    # The crossover at R = 1: (b) grows about linearly with N; (c) barely
    # moves. Between two measured N of (b), interpolate linearly.
    my @bp = map { [$_, $cost->($cg{ sid('b', $_) }, 1)] } grep { $cg{ sid('b', $_) } } @ns_b;
    my ($cn) = grep { $cg{ sid('c2', $_) } } @ns_c;
    if (@bp && defined $cn) {
        my $c = max_of(map { $cg{ sid($_, $cn) } ? $cost->($cg{ sid($_, $cn) }, 1) : () } qw(c1 c2));
        if ($bp[0][1] >= $c) { $crossover = "the module is cheaper from N = " . fmt_int($bp[0][0]) . ' on' }
        else {
            for my $i (0 .. $#bp - 1) {
                my ($n0, $v0, $n1, $v1) = (@{ $bp[$i] }, @{ $bp[$i + 1] });
                next unless $v0 < $c && $v1 >= $c;
                my $x = $n0 + ($c - $v0) * ($n1 - $n0) / ($v1 - $v0);
                $crossover = sprintf 'Require expr costs more than the module (%s instructions, N = %s) from about N = %s on'
                  . ' (linear between N = %s and %s)', fmt_int($c), fmt_int($cn), fmt_int($x), fmt_int($n0), fmt_int($n1);
            }
            $crossover //= 'no crossover within the measured N of (b): Require expr stays cheaper up to N = '
              . fmt_int($bp[-1][0]);
        }
        out("Crossover at R = 1: $crossover.");
        out();
    }
}
sub max_of { my $m; for (@_) { $m = $_ if !defined $m || $_ > $m } $m }

# ---- load (secondary)

sub load_table {
    my ($ka) = @_;
    out("| server | N | case | CPU µs/request median | min–max | ×(a) | req/s | ×(a) |");
    out("|---|---:|---|---:|---:|---:|---:|---:|");
    for my $j (grep { $_->[2] == $ka } @jobs) {
        my ($id, $cert) = @$j;
        my $s = $servers{$id};
        my $m = $med{"$id|$cert|$ka"};
        out(sprintf '| %s | %s | %s | %.1f | %.1f–%.1f | %.3f | %s | %.3f |', label($s),
            n_of($s), case_of($s, $cert), $m->{cpu}, $m->{cpu_min}, $m->{cpu_max},
            $m->{cpu_x}, fmt_int($m->{rps}), $m->{rps_x});
    }
}

out("## Server CPU under load (secondary: noisy on a shared machine)");
out();
out("Server CPU per request (utime+stime of the httpd parent and child from /proc), ab -c $cfg{concurrency},"
    . " $cfg{rounds} rounds, servers alternating; median and min–max over the rounds; ×(a): median of"
    . " the per-round ratios. Keep-alive: ab -k, at most $cfg{requests} requests or $cfg{seconds} s per run.");
out();
load_table(1);
for my $id (sort grep { $servers{$_} } keys %findings) {
    my $s = $servers{$id};
    out(sprintf '| %s | %s | %s | does not run | | | | |', label($s), n_of($s), case_of($s, 'allowed'));
}
out();
out("New connection per request (full TLS handshake, no resumption), ab without -k, $cfg{nc_seconds} s per run:");
out();
load_table(0);
out();

# ---- startup

out("## Startup");
out();
out("Start: from exec of `httpd -DFOREGROUND` until it answers a first HTTPS request (httpd reads its"
    . " configuration twice on the way); RSS of the parent then. `httpd -t`: wall time and max RSS (GNU time).");
out();
out("| server | N | case | start s | parent VmRSS MiB | VmHWM MiB | +RSS vs (a) MiB | httpd -t s | httpd -t max RSS MiB |");
out("|---|---:|---|---:|---:|---:|---:|---:|---:|");
for my $id (@server_ids) {
    my $s = $servers{$id};
    next if $s->{place} eq 'last';
    my $ok = defined $s->{start_s};
    out(sprintf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |', label($s), n_of($s), case_of($s, 'allowed'),
        $ok ? sprintf('%.2f', $s->{start_s}) : 'fails',
        $ok ? sprintf('%.1f', $s->{rss_kb} / 1024) : '–',
        $ok ? sprintf('%.1f', $s->{hwm_kb} / 1024) : '–',
        $ok ? sprintf('%+.1f', ($s->{rss_kb} - $servers{a}{rss_kb}) / 1024) : '–',
        sprintf('%.2f', $s->{t_s}), fmt('%.1f', defined $s->{t_maxrss_kb} ? $s->{t_maxrss_kb} / 1024 : undef));
}
out();

out("## One certificate parse per connection");
out();
out("A (c1) server with `LogLevel warn mtls_authz:debug` and an access log of `%k` (keep-alive"
    . " request number: 0 = first request of a connection), loaded with ab -k, then ab without -k"
    . " (information, not a target):");
out();
out("| requests (access log) | connections (%k = 0) | \"identity extracted\" lines | of which not the 1st on their connection |");
out("|---:|---:|---:|---:|");
out(sprintf '| %d | %d | %d | %d |', @once{qw(requests connections extracted again)});
out();

out("## Method notes");
out();
out("- Per-request counts are taken inside one open connection. The earlier method (dump after a"
    . " 1-request connection, dump after a (K+1)-request connection, difference / K) subtracted two"
    . " different connections, each with its full handshake, and neither costs the same instructions"
    . " every time: OpenSSL's variable-time arithmetic on public values (verifying the client's"
    . " CertificateVerify, whose ECDSA signature is random) moves a handshake by up to about 130,000"
    . " instructions, and glibc's malloc consolidates what the handshake freed at the first large"
    . " allocation after it (about 50,000 once, in one of the two connections' request windows or the"
    . " other). Divided by K = 200 that is several hundred per request either way: the +100 seen at"
    . " N = 100,000 in an earlier run (and 47,800 against 59,400 in a K = 5 smoke run) came from there."
    . " Idle wake-ups of the event MPM are not the cause: an idle httpd -X counts under 100"
    . " instructions per second. Now the first K + 1 requests of the connection are outside the"
    . " windows; what is left between two windows (the \"windows\" column) is glibc's malloc and"
    . " httpd's once-a-second date formatting, tens of instructions per request.");
out("- Per-connection counts average M connections, so the handshake's spread shrinks by M; the"
    . " pair of windows (1 and M+1 connections) cancels what every window has once.");
out();

out("## Findings");
out();
for my $id (sort keys %findings) {
    out($servers{$id}
        ? "- `$id` (Require expr with " . fmt_int($servers{$id}{n}) . " subjects on one line): $findings{$id}"
        : "- $id: $findings{$id}");
}
for my $n (grep { $_ >= 10000 } @ns_b) {
    my $s = $servers{ sid('b', $n) };
    next unless $s && defined $s->{start_s};
    out(sprintf '- (b) with %s subjects in one `Require expr` line parses: httpd -t %.2f s, %+.1f MiB parent RSS vs (a).',
        fmt_int($n), $s->{t_s}, ($s->{rss_kb} - $servers{a}{rss_kb}) / 1024);
}
out("- HTTP/2: no row. h2load (nghttp2-client 1.52 in Debian 12) has no option to send a client"
    . " certificate (nghttp has --cert/--key, h2load does not), and OpenSSL's system-wide"
    . " configuration cannot add one (SSL_CONF `Certificate` is not applied from system_default);"
    . " ab speaks HTTP/1.x only.");
out();
# ---- targets ------------------------------------------------------------------

my @targets;
sub target { my ($ok, $text) = @_; push @targets, [$ok, $text] }
my @tier = map { [$_, $_ eq 'c1' ? 'MTLSAllowSubject' : 'MTLSAllow subject+issuer'] } qw(c1 c2);
if ($A) {
    # keep-alive: the module adds ≤ 1% to a request, at every N
    for my $t (@tier) {
        my ($kind, $what) = @$t;
        for my $n (@ns_c) {
            my $r = $cg{ sid($kind, $n) } or next;
            my $add = $r->{req}{total} - $A->{req}{total};
            target($add <= 0.01 * $A->{req}{total},
                   sprintf 'keep-alive, (%s) %s, N=%s: adds ≤ 1%% per request: %+s instructions (%s of %s)',
                   $kind, $what, fmt_int($n), fmt_int($add), pct($add, $A->{req}{total}), fmt_int($A->{req}{total}));
        }
        my ($lo, $hi) = map { $cg{ sid($kind, $_) } } $ns_c[0], $ns_c[-1];
        if ($lo && $hi && $ns_c[-1] > $ns_c[0]) {
            my $dev = $hi->{req}{total} / $lo->{req}{total} - 1;
            target(abs($dev) <= 0.05, sprintf 'keep-alive, (%s): whole request at N=%s within 5%% of N=%s: %s vs %s (%+.2f%%)',
                   $kind, fmt_int($ns_c[-1]), fmt_int($ns_c[0]), fmt_int($hi->{req}{total}), fmt_int($lo->{req}{total}),
                   100 * $dev);
        }
    }
    # (d), (c3), (c4): a constant, the same at the largest N as at the
    # smallest (keep-alive request within 1% of (a)'s, new connection
    # within 0.1% of (a)'s)
    for my $kind (@xkinds) {
        my ($n0, $n1) = ($ns_x[0], $ns_x[-1]);
        my ($lo, $hi) = map { $cg{ sid($kind, $_) } } $n0, $n1;
        next unless $lo && $hi && $n1 > $n0;
        my $what = label($servers{ sid($kind, $n1) });
        for my $w (['req', 'keep-alive', 0.01, '1%'], ['conn', 'new connection', 0.001, '0.1%']) {
            my ($k, $name, $f, $fs) = @$w;
            my $d = $hi->{$k}{total} - $lo->{$k}{total};
            target(abs($d) <= $f * $A->{$k}{total},
                   sprintf '%s, %s: N=%s costs what N=%s costs, within %s of (a): %s vs %s (%+s instructions)',
                   $name, $what, fmt_int($n1), fmt_int($n0), $fs, fmt_int($hi->{$k}{total}),
                   fmt_int($lo->{$k}{total}), fmt_int($d));
        }
    }
    # What a deny list adds at all: (d) against (c2) N=1, the same allow
    # rule without one: ≤ 1% of (a) per keep-alive request and per new
    # connection.
    if (my $c2 = $cg{ sid('c2', 1) }) {
        for my $n (@ns_x) {
            my $r = $cg{ sid('d', $n) } or next;
            for my $w (['req', 'keep-alive'], ['conn', 'new connection']) {
                my ($k, $name) = @$w;
                my $add = $r->{$k}{total} - $c2->{$k}{total};
                target($add <= 0.01 * $A->{$k}{total},
                       sprintf '%s, (d) a deny list of N=%s adds ≤ 1%% of (a) to (c2) N=1: %+s instructions (%s vs %s, %s of %s)',
                       $name, fmt_int($n), fmt_int($add), fmt_int($r->{$k}{total}), fmt_int($c2->{$k}{total}),
                       pct($add, $A->{$k}{total}), fmt_int($A->{$k}{total}));
            }
        }
    }
    # new connection: ≤ 1% at N = 1, 100,000 and 1,000,000 (those measured)
    my @nn = grep { my $n = $_; grep { $_ == $n } 1, 100000, 1000000 } @ns_c;
    for my $t (@tier) {
        my ($kind, $what) = @$t;
        for my $n (@nn) {
            my $r = $cg{ sid($kind, $n) } or next;
            my $add = $r->{conn}{total} - $A->{conn}{total};
            target($add <= 0.01 * $A->{conn}{total},
                   sprintf 'new connection, (%s) %s, N=%s: adds ≤ 1%%: %+s instructions (%s of %s)',
                   $kind, $what, fmt_int($n), fmt_int($add), pct($add, $A->{conn}{total}), fmt_int($A->{conn}{total}));
        }
    }
    # resumed: ≤ 2% per flavour
    for my $f ([tls12 => 'TLS 1.2 session ID'], [tls13 => 'TLS 1.3 ticket']) {
        for my $t (@tier) {
            my ($kind) = @$t;
            for my $n (@ns_c) {
                my $r = $cg{ sid($kind, $n) } or next;
                my $add = $r->{ $f->[0] }{total} - $A->{ $f->[0] }{total};
                target($add <= 0.02 * $A->{ $f->[0] }{total},
                       sprintf 'resumed %s, (%s) N=%s: adds ≤ 2%%: %+s instructions (%s of %s)',
                       $f->[1], $kind, fmt_int($n), fmt_int($add), pct($add, $A->{ $f->[0] }{total}),
                       fmt_int($A->{ $f->[0] }{total}));
            }
        }
    }
    # against Require expr
    for my $n (sort { $a <=> $b } keys %peer) {
        my $row = $peer{$n};
        next unless $row->{b};
        for my $R ($n >= 100 ? (1, 10) : (10)) {
            for my $kind (qw(c1 c2)) {
                next unless $row->{$kind};
                if ($row->{b}{dnr}) {
                    target(1, sprintf '(%s) ≤ Require expr, N=%s, R=%d: Require expr does not run', $kind, fmt_int($n), $R);
                    next;
                }
                target($row->{$kind}{$R} <= $row->{b}{$R},
                       sprintf '(%s) ≤ Require expr per connection with %d request%s, N=%s: %s vs %s%s%s',
                       $kind, $R, $R > 1 ? 's' : '', fmt_int($n), fmt_int($row->{$kind}{$R}),
                       ($row->{b}{bound} ? '≥ ' : ''), fmt_int($row->{b}{$R}),
                       $row->{b}{bound} ? ' (Require expr not measured at this N)' : '');
            }
        }
    }
}
else {
    target(0, 'no callgrind figures for (a): the instruction targets cannot be checked');
}
{
    my $s = $servers{$file_id};
    if (defined $s->{start_s}) {
        my $add = ($s->{rss_kb} - $servers{a}{rss_kb}) / 1024;
        my $n = fmt_int($cfg{file_n});
        target($s->{t_s} < 2, sprintf '%s rules via MTLSAllowFile: httpd -t < 2 s: %.2f s', $n, $s->{t_s});
        target($add < 256, sprintf '%s rules via MTLSAllowFile: parent RSS added < 256 MiB: %+.1f MiB', $n, $add);
        target($s->{start_s} < 4, sprintf '%s rules via MTLSAllowFile: start to first answer < 4 s: %.2f s',
               $n, $s->{start_s});
    }
}

out("## Targets");
out();
out(($_->[0] ? '- PASS ' : '- MISS ') . $_->[1]) for @targets;
out();
out("![per-request cost against N](" . ($cfg{plot} =~ s{.*/}{}r) . ")");
out();
out("![per-connection cost against N](" . ($cfg{plot_conn} =~ s{.*/}{}r) . ")");

make_path(dirname($cfg{out}));
spew($cfg{out}, $md);

# ---- plots ----------------------------------------------------------------------

{
    my $dat = "$work/plot.dat";
    my $text = "# N cpu_a cpu_b_first cpu_b_last cpu_c1 cpu_c2 req_a req_b_first req_b_last req_c1 req_c2"
      . " conn_a conn_b conn_c1 conn_c2 r13_a r13_b r13_c2\n";
    for my $n (@ns_all) {
        my $cpu = sub { my ($k) = @_; my $m = $med{"$k|allowed|1"}; $m ? sprintf('%.2f', $m->{cpu}) : 'NaN' };
        my $cgv = sub { my ($k, $w) = @_; $cg{$k} && $cg{$k}{$w} ? sprintf('%.0f', $cg{$k}{$w}{total}) : 'NaN' };
        my ($bf, $bl) = ("b-$n-" . (places('b', $n))[0], "b-$n-" . (places('b', $n))[-1]);
        my ($c1, $c2) = (sid('c1', $n), sid('c2', $n));
        $text .= join(' ', $n, $cpu->('a'), $cpu->($bf), $cpu->($bl), $cpu->($c1), $cpu->($c2),
                      $cgv->('a', 'req'), $cgv->($bf, 'req'), $cgv->($bl, 'req'), $cgv->($c1, 'req'), $cgv->($c2, 'req'),
                      $cgv->('a', 'conn'), $cgv->($bf, 'conn'), $cgv->($c1, 'conn'), $cgv->($c2, 'conn'),
                      $cgv->('a', 'tls13'), $cgv->($bf, 'tls13'), $cgv->($c2, 'tls13')) . "\n";
    }
    spew($dat, $text);
    make_path(dirname($cfg{plot}), dirname($cfg{plot_conn}));
    my $gp = <<"GP";
set terminal pngcairo size 1100,480 font ",10"
set output "$cfg{plot}"
set datafile missing "NaN"
set multiplot layout 1,2 title "mod_mtls_authz vs Require expr, per keep-alive request ($nproc CPUs, $date)" noenhanced
set logscale x
set xlabel "N (allowlist entries)"
set key top left noenhanced
set grid
set title "server CPU per keep-alive request (median of $cfg{rounds} rounds)"
set ylabel "µs / request"
set logscale y
plot "$dat" u 1:2 w lp lw 2 t "(a) Require all granted", \\
     "" u 1:3 w lp t "(b) Require expr, DN first (worst)", \\
     "" u 1:4 w lp t "(b) Require expr, DN last (best)", \\
     "" u 1:5 w lp t "(c1) MTLSAllowSubject", \\
     "" u 1:6 w lp t "(c2) MTLSAllow subject+issuer"
set title "instructions per keep-alive request (callgrind)"
set ylabel "instructions / request"
plot "$dat" u 1:7 w lp lw 2 t "(a)", \\
     "" u 1:8 w lp t "(b) worst", \\
     "" u 1:9 w lp t "(b) best", \\
     "" u 1:10 w lp t "(c1)", \\
     "" u 1:11 w lp t "(c2)"
unset multiplot
set output "$cfg{plot_conn}"
set multiplot layout 1,2 title "mod_mtls_authz vs Require expr, per connection with one request ($nproc CPUs, $date)" noenhanced
set title "new connection: full TLS 1.3 handshake + 1 request (callgrind)"
set ylabel "instructions / connection"
set logscale y
plot "$dat" u 1:12 w lp lw 2 t "(a) Require all granted", \\
     "" u 1:13 w lp t "(b) Require expr, DN first", \\
     "" u 1:14 w lp t "(c1) MTLSAllowSubject", \\
     "" u 1:15 w lp t "(c2) MTLSAllow subject+issuer"
set title "resumed connection: TLS 1.3 ticket + 1 request (callgrind)"
plot "$dat" u 1:16 w lp lw 2 t "(a)", \\
     "" u 1:17 w lp t "(b) DN first", \\
     "" u 1:18 w lp t "(c2)"
unset multiplot
GP
    $gp =~ s/set terminal pngcairo/set terminal png/ unless `gnuplot -e 'set terminal' 2>&1` =~ /pngcairo/;
    spew("$work/plot.gp", $gp);
    my ($rc, $o) = capture("gnuplot $work/plot.gp 2>&1");
    harness_fail("gnuplot: $o") if $rc != 0 || !-s $cfg{plot} || !-s $cfg{plot_conn};
}

print "\n$md\n";
print "bench: results in $cfg{out}, plots in $cfg{plot} and $cfg{plot_conn}\n";
printf "bench: took %.1f minutes\n", (time - $t_begin) / 60;
exit($failed ? 1 : 0);
