#!/usr/bin/perl
# The benchmark (`make bench`, `make bench-smoke`): httpd
# instances side by side on loopback, event MPM, one temp ServerRoot each,
# a PKI made for the run, and the same keep-alive HTTPS load from ab -k -E
# against each, alternating the servers over several rounds.
#
#   a   SSLVerifyClient require + Require all granted (the floor)
#   b   Require expr "%{SSL_CLIENT_S_DN} in {...}" with N subjects
#   c1  Require all granted + MTLSAuthz On + N MTLSAllowSubject lines
#   c2  Require all granted + MTLSAuthz On + N "MTLSAllow subject=.. issuer=.."
#
# It reports server CPU per request (utime+stime from /proc of the httpd
# parent and its children), req/s, callgrind instruction counts on httpd -X,
# the cost of a new connection, startup time and RSS, and checks the
# performance targets. Everything is configured with environment variables
# (see %cfg below). Exits non-zero when the harness breaks (a server that
# must start does not, a wrong status code, a failed ab or valgrind run),
# never because of a timing target. Files, ports and processes are the
# test harness's (t/lib/HttpdRun.pm).
use strict;
use warnings FATAL => 'all';
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use FindBin ();
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use lib "$FindBin::RealBin/../t/lib";
use HttpdRun qw(slurp spew free_port port_open spawn kill_group);

my $top = abs_path(dirname(abs_path($0)) . '/..');
my $smoke = $ENV{BENCH_SMOKE} ? 1 : 0;

sub env_or { my ($k, $d) = @_; defined $ENV{$k} && $ENV{$k} ne '' ? $ENV{$k} : $d }

my %cfg = (
    # list sizes
    ns => [split /[ ,]+/, env_or('BENCH_NS', $smoke ? '1,10' : '1,1000,100000')],
    rounds      => env_or('BENCH_ROUNDS',      $smoke ? 1 : 5),
    # per keep-alive load run: at most this many requests and seconds
    requests    => env_or('BENCH_REQUESTS',    $smoke ? 300 : 200000),
    seconds     => env_or('BENCH_SECONDS',     $smoke ? 1 : 3),
    concurrency => env_or('BENCH_CONCURRENCY', 4),
    # new-connection runs (one request per handshake)
    nc_requests => env_or('BENCH_NEWCONN_REQUESTS', $smoke ? 50 : 100000),
    nc_seconds  => env_or('BENCH_NEWCONN_SECONDS',  $smoke ? 1 : 3),
    # callgrind: K extra requests on one keep-alive connection
    cg_k        => env_or('BENCH_CG_K', $smoke ? 5 : 200),
    callgrind   => env_or('BENCH_CALLGRIND', 1),
    start_timeout    => env_or('BENCH_START_TIMEOUT', 120),
    cg_start_timeout => env_or('BENCH_CG_START_TIMEOUT', 900),
    out  => env_or('BENCH_OUT',  $smoke ? "$top/build/bench-smoke/RESULTS.md" : "$top/bench/RESULTS.md"),
    plot => env_or('BENCH_PLOT', $smoke ? "$top/build/bench-smoke/per-request.png" : "$top/bench/per-request.png"),
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

my $work = tempdir('mtls-bench.XXXXXX', DIR => env_or('TMPDIR', '/tmp'),
                   CLEANUP => 0);
chmod 0755, $work;
my @children;    # process groups to end on exit
my $failed = 0;

sub note { print STDERR "bench: @_\n" }
sub harness_fail { note("FAIL: @_"); $failed++ }

END {
    my $rc = $?;
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
    my ($kind, $n, $place) = @_;
    return "    Require all granted\n" if $kind eq 'a';
    my @dn = subjects($n, $place);
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
    my @mods = qw(mpm_event authz_core ssl log_config);
    my $conf = join '', map { "LoadModule ${_}_module $libexec/mod_$_.so\n" }
      grep { !$builtin{"mod_$_.c"} } @mods;
    $conf .= "LoadModule mtls_authz_module $module\n" if $kind =~ /^c/;
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
SSLEngine on
SSLCertificateFile $pki/server.crt
SSLCertificateKeyFile $pki/server.key
SSLCACertificateFile $pki/ca.crt
SSLVerifyClient require
SSLVerifyDepth 2
<Location />
CONF
    $conf .= policy($kind, $n, $place) . "</Location>\n";
    spew("$dir/httpd.conf", $conf);
    system("chmod -R a+rX $dir");
    if ($opt{unprivileged} && $is_root) {
        system('chown', '-R', $cfg{user}, "$dir/logs");
    }
    my $s = { id => $id, kind => $kind, n => $n, place => $place, dir => $dir,
              port => $port, conf => "$dir/httpd.conf", opt => \%opt };
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

sub curl_status {
    my ($s, $cert, $max) = @_;
    $max //= 20;
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
               '-t', $secs, '-n', $n, '-E', "$pki/$cert.pem",
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

my @ns = @{ $cfg{ns} };
my @kinds = qw(b c1 c2);
my %placements;    # n -> list
for my $n (@ns) { $placements{$n} = $n == 1 ? ['only'] : ['first', 'last'] }

note("work dir $work; N = @ns; rounds $cfg{rounds}");
make_server('a', 0, '-');
for my $n (@ns) {
    for my $kind (@kinds) {
        make_server($kind, $n, $_) for @{ $placements{$n} };
    }
}

# Startup: httpd -t, then a start, one server at a time.
my %findings;
for my $id (@server_ids) {
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
    note(sprintf '%-18s started in %.2fs, parent VmRSS %d KiB', $id, $s->{start_s}, $s->{rss_kb});
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

# ---- keep-alive and new-connection load, alternating -------------------------

# Jobs: [server id, certificate, keepalive]. The denied variant runs against
# the "first" server (a full scan for b, whatever the placement).
my @jobs = (['a', 'allowed', 1]);
for my $n (@ns) {
    for my $kind (@kinds) {
        for my $p (@{ $placements{$n} }) {
            push @jobs, ["$kind-$n-$p", 'allowed', 1];
        }
        push @jobs, ["$kind-$n-$placements{$n}[0]", 'denied', 1];
    }
}
# New connections: one request per handshake, at the largest and the
# smallest N > 1, worst placement.
my @nc_ns = grep { $_ > 1 } @ns;
@nc_ns = ($nc_ns[0], $nc_ns[-1]) if @nc_ns > 2;
@nc_ns = @ns unless @nc_ns;
push @jobs, ['a', 'allowed', 0];
for my $n (@nc_ns) {
    push @jobs, ["$_-$n-$placements{$n}[0]", 'allowed', 0] for @kinds;
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

# Medians, and ratios to (a) taken per round (same moment, same noise).
my %med;
for my $key (keys %res) {
    my ($id, $cert, $ka) = split /\|/, $key;
    my $base = $res{"a|allowed|$ka"};
    my @rs = @{ $res{$key} };
    $med{$key} = {
        cpu => median(map { $_->{cpu_us} } @rs),
        rps => median(map { $_->{rps} } @rs),
        reqs => median(map { $_->{reqs} } @rs),
        cpu_x => median(map { $rs[$_]{cpu_us} / $base->[$_]{cpu_us} } 0 .. $#rs),
        rps_x => median(map { $rs[$_]{rps} / $base->[$_]{rps} } 0 .. $#rs),
    };
}

# ---- one identity extraction per connection ------------------------------------

my %once;
{
    my $n = $ns[-1] > 1000 ? 1000 : $ns[-1];
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
                ab_requests => $ka->{reqs} + $nc->{reqs},
                curl => 0,
            );
        }
        else { harness_fail('identity-extraction run failed') }
    }
    else { harness_fail("$s->{id}: $s->{error}") }
    exit 1 if $failed;
}

# ---- callgrind on httpd -X --------------------------------------------------------

# Each measured server runs once under callgrind, as the unprivileged user
# when root. callgrind_control dumps (and zeroes) the counters after
# startup, after one request on a first keep-alive connection, and after
# K+1 requests on a second one: (second - first) / K is the steady cost of
# a request, startup and handshakes cancelled; likewise the inclusive cost
# of the module's access hooks.
sub cg_parse {
    my ($file) = @_;
    return undef unless -s $file;
    my ($total) = slurp($file) =~ /^(?:summary|totals):\s+(\d+)/m;
    return undef unless defined $total;
    my $ann = `callgrind_annotate --inclusive=yes --threshold=100 $file 2>/dev/null`;
    my $hook = 0;
    for my $line (split /\n/, $ann) {
        # "1,234 (0.01%)  /path/mtls_access.c:mtls_access_checker [/path/x.so]"
        next unless $line =~ /^\s*([\d,]+)\s.*:mtls_access_checker(?:_ex)?\s+\[/;
        (my $v = $1) =~ s/,//g;
        $hook += $v;
    }
    return { total => $total, hook => $hook };
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

sub cg_measure {
    my ($base) = @_;
    my $s = make_server($base->{kind}, $base->{n}, $base->{place},
                        unprivileged => 1, tag => 'cg', private => 1);
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
        if (port_open($s->{port})) { $up = 1; last }
        sleep 0.2;
    }
    my $fail = sub {
        my ($why) = @_;
        stop_group($pid, 5);
        return (undef, "$why: " . last_lines("$s->{dir}/logs/valgrind.log", "$s->{dir}/logs/error.log"));
    };
    return $fail->('httpd -X under callgrind did not start') unless $up;
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
    my $dump = sub { $control->('-d') eq '' };
    my $ab = sub {
        my ($n, $timeout) = @_;
        $timeout //= 300;
        my $o = `ab -q -k -s $timeout -c 1 -n $n -E $pki/allowed.pem https://127.0.0.1:$s->{port}/index.html 2>&1`;
        my ($done) = $o =~ /^Complete requests:\s+(\d+)/m;
        my ($non2) = $o =~ /^Non-2xx responses:\s+(\d+)/m;
        my ($ka) = $o =~ /^Keep-Alive requests:\s+(\d+)/m;
        return $done && $done == $n && !$non2 && ($ka // 0) >= $n - 1;
    };
    # Startup runs uninstrumented (100,000 rules take minutes under
    # callgrind); httpd listens after its first read of the configuration
    # and answers after the second. That first request also warms up what
    # OpenSSL and httpd set up lazily (tens of millions of instructions).
    $ab->(1, int($until - time) + 1) or return $fail->('no answer from httpd -X under valgrind');
    my $err = $control->('-i on');
    return $fail->($err) if $err;
    for my $n (1, 1, $cfg{cg_k} + 1) {
        $ab->($n) or return $fail->("ab ($n requests) under callgrind failed");
        $dump->() or return $fail->('callgrind_control -d failed');
    }
    stop_group($pid, 5);
    my $one = cg_parse("$out.2");
    my $many = cg_parse("$out.3");
    return (undef, "callgrind dumps $out.2/.3 missing or unreadable") unless $one && $many;
    remove_tree($s->{dir}) unless $cfg{keep};
    return ({ total => ($many->{total} - $one->{total}) / $cfg{cg_k},
              hook => ($many->{hook} - $one->{hook}) / $cfg{cg_k},
              first_hook => $one->{hook}, secs => time - $t0 });
}

my %cg;    # id -> {total, hook, first_hook}
my @cg_ids;
if ($cfg{callgrind}) {
    # (c) with the DN written last only at one N: the module's lookup does
    # not depend on the placement, and 100,000 rules start slowly under
    # valgrind.
    @cg_ids = ('a');
    for my $n (@ns) {
        for my $kind (@kinds) {
            my @p = @{ $placements{$n} };
            @p = ($p[0]) if $kind ne 'b' && $n != (grep { $_ > 1 } @ns, $n)[0];
            push @cg_ids, "$kind-$n-$_" for @p;
        }
    }
    if ($smoke) {
        # the same code path on fewer servers: the smoke run must be quick
        my $nm = $ns[-1];
        @cg_ids = ('a', "b-$nm-$placements{$nm}[0]", "c2-$nm-$placements{$nm}[0]");
    }
    @cg_ids = grep { !$findings{$_} } @cg_ids;
}
# the load servers are no longer needed; give callgrind the CPU
for my $id (@up) { stop_group($servers{$id}{pid}, 20) if $servers{$id}{pid} }

for my $id (@cg_ids) {
    my ($r, $err) = cg_measure($servers{$id});
    if (!$r) {
        # the results are still written; the run exits non-zero
        harness_fail("callgrind $id: $err");
        $findings{"callgrind $id"} = "callgrind run failed: $err";
        next;
    }
    $cg{$id} = $r;
    note(sprintf 'callgrind %-16s %s instr/request, hook %s, 1st connection hook %s (%.0fs)', $id,
         fmt_int($r->{total}), fmt_int($r->{hook}), fmt_int($r->{first_hook}), $r->{secs});
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
             c2 => '(c2) MTLSAllow subject+issuer');
    return $k{ $s->{kind} };
}
sub case_of {
    my ($s, $cert) = @_;
    return 'denied cert' if $cert eq 'denied';
    return { first => 'worst: DN written first', last => 'best: DN written last',
             only => 'single entry', '-' => '–' }->{ $s->{place} };
}

out("# mod_mtls_authz benchmark results", $smoke ? ' (smoke run: tiny N, not a measurement)' : '');
out();
out("Written by `make " . ($smoke ? 'bench-smoke' : 'bench') . "` (bench/run.pl); every run rewrites it.");
out();
out("- date: $date; the whole run took " . sprintf('%.1f min', $elapsed / 60));
out("- machine: $nproc CPUs, $cpu_model, Linux $kernel, load average at the end $load"
    . " (a shared machine: other jobs ran at the same time, so the CPU times are noisy)");
out("- httpd: $httpd_version, event MPM, one child with 16 threads; " . ($modssl // $openssl_version)
    . "; load generator ab $ab_version (HTTP/1.1 client sending HTTP/1.0 keep-alive)");
out("- load: ab -k -c $cfg{concurrency}, at most $cfg{requests} requests or $cfg{seconds} s per run;"
    . " new connections: ab -c $cfg{concurrency} without -k, $cfg{nc_seconds} s per run;"
    . " $cfg{rounds} rounds, servers alternating, medians; ratios ×(a) are medians of per-round ratios");
out("- client certificate: EC P-256, subject `$allowed_dn`; the other N-1 subjects are"
    . " `CN=bench-client-NNNNNN,O=mtls bench,C=US`; the denied certificate is `$denied_dn`");
out();

# The table of the load runs with keep-alive ($ka 1) or without.
sub load_table {
    my ($ka) = @_;
    out("| server | N | case | CPU µs/request | ×(a) | req/s | ×(a) |");
    out("|---|---:|---|---:|---:|---:|---:|");
    for my $j (grep { $_->[2] == $ka } @jobs) {
        my ($id, $cert) = @$j;
        my $s = $servers{$id};
        my $m = $med{"$id|$cert|$ka"};
        out(sprintf '| %s | %s | %s | %.1f | %.3f | %s | %.3f |', label($s),
            $s->{kind} eq 'a' ? '–' : fmt_int($s->{n}), case_of($s, $cert), $m->{cpu},
            $m->{cpu_x}, fmt_int($m->{rps}), $m->{rps_x});
    }
}

out("## Keep-alive HTTPS, one connection per ab client");
out();
load_table(1);
for my $id (sort grep { $servers{$_} } keys %findings) {
    my $s = $servers{$id};
    out(sprintf '| %s | %s | %s | does not run | | | |', label($s), fmt_int($s->{n}), case_of($s, 'allowed'));
}
out();

out("## New connection per request (full TLS handshake with a client certificate, no resumption)");
out();
load_table(0);
out();

if (%cg && $cg{a}) {
    out("## Instructions per request (callgrind, httpd -X, one keep-alive connection)");
    out();
    out("One httpd -X under callgrind, instrumented after startup; counters dumped after a warm-up connection, after a keep-alive connection"
        . " with 1 request and after one with K+1 requests: (last − previous) / K, K = $cfg{cg_k}."
        . " \"hook\" is the inclusive cost of mtls_access_checker + mtls_access_checker_ex;"
        . " \"hook, 1-request connection\" is the hook's cost on the 1-request connection (identity extraction included)."
        . " Deterministic, unlike time, apart from the event MPM's idle wake-ups.");
    out();
    out("| server | N | case | whole request | ×(a) | module hook | hook, 1-request connection |");
    out("|---|---:|---|---:|---:|---:|---:|");
    for my $id (@cg_ids) {
        next unless $cg{$id};
        my $s = $servers{$id};
        out(sprintf '| %s | %s | %s | %s | %.3f | %s | %s |', label($s),
            $s->{kind} eq 'a' ? '–' : fmt_int($s->{n}), case_of($s, 'allowed'),
            fmt_int($cg{$id}{total}), $cg{$id}{total} / $cg{a}{total},
            $s->{kind} =~ /^c/ ? fmt_int($cg{$id}{hook}) : '–',
            $s->{kind} =~ /^c/ ? fmt_int($cg{$id}{first_hook}) : '–');
    }
    out();
}

out("## Startup");
out();
out("Start: from exec of `httpd -DFOREGROUND` until it answers a first HTTPS request (httpd reads its"
    . " configuration twice on the way); RSS of the parent then. `httpd -t`: wall time and max RSS (GNU time).");
out();
out("| server | N | case | start s | parent VmRSS MiB | VmHWM MiB | +RSS vs (a) MiB | httpd -t s | httpd -t max RSS MiB |");
out("|---|---:|---|---:|---:|---:|---:|---:|---:|");
my %startup_ids;
for my $id (@server_ids) {
    my $s = $servers{$id};
    next if $s->{kind} ne 'a' && ($s->{place} eq 'last');
    my $ok = defined $s->{start_s};
    out(sprintf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |', label($s),
        $s->{kind} eq 'a' ? '–' : fmt_int($s->{n}), case_of($s, 'allowed'),
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
    . " request number: 0 = first request of a connection), loaded with ab -k, then ab without -k:");
out();
out("| requests (access log) | connections (%k = 0) | \"identity extracted\" lines | of which not the 1st on their connection |");
out("|---:|---:|---:|---:|");
out(sprintf '| %d | %d | %d | %d |', @once{qw(requests connections extracted again)});
out();

out("## Findings");
out();
for my $id (sort keys %findings) {
    out($servers{$id}
        ? "- `$id` (Require expr with " . fmt_int($servers{$id}{n}) . " subjects on one line): $findings{$id}"
        : "- $id: $findings{$id}");
}
for my $n (grep { $_ >= 10000 } @ns) {
    my $s = $servers{"b-$n-$placements{$n}[0]"};
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
my $nmax = $ns[-1];
my $nmin = $ns[0];
my @c_ids = map { my $k = $_; map { "$k-$nmax-$_" } @{ $placements{$nmax} } } qw(c1 c2);

if (%cg && grep { $servers{$_} && $servers{$_}{kind} =~ /^c/ } keys %cg) {
    my @hooks = map { [$_, $cg{$_}{hook}] } grep { $cg{$_} && $servers{$_}{kind} =~ /^c/ } @cg_ids;
    my ($worst) = sort { $b->[1] <=> $a->[1] } @hooks;
    target($worst->[1] <= 2000, sprintf 'hook ≤ 2,000 instructions/request: max %s (%s)',
           fmt_int($worst->[1]), $worst->[0]);
    for my $kind (qw(c1 c2)) {
        my $lo = $cg{"$kind-$nmin-$placements{$nmin}[0]"};
        my @hi = grep { defined } map { $cg{"$kind-$nmax-$_"} } @{ $placements{$nmax} };
        next unless $lo && @hi;
        my ($dev) = sort { $b <=> $a } map { abs($_->{hook} / $lo->{hook} - 1) } @hi;
        target($dev <= 0.10, sprintf '(%s) hook at N=%s vs N=%s within 10%%: %s vs %s (%.1f%%)',
               $kind, fmt_int($nmin), fmt_int($nmax), fmt_int($lo->{hook}),
               join('/', map { fmt_int($_->{hook}) } @hi), 100 * $dev);
    }
}
for my $id (@c_ids) {
    my $m = $med{"$id|allowed|1"} or next;
    target($m->{cpu_x} <= 1.02, sprintf 'CPU (c)/(a) ≤ 1.02 at N=%s, %s: %.3f',
           fmt_int($nmax), $id, $m->{cpu_x});
}
for my $n (grep { $_ >= 1000 } @ns) {
    for my $p (@{ $placements{$n} }, 'denied') {
        my $place = $p eq 'denied' ? $placements{$n}[0] : $p;
        my $cert = $p eq 'denied' ? 'denied' : 'allowed';
        my $b = $med{"b-$n-$place|$cert|1"};
        for my $kind (qw(c1 c2)) {
            my $c = $med{"$kind-$n-$place|$cert|1"} or next;
            my $cgb = $p ne 'denied' && $cg{"b-$n-$place"};
            my $cgc = $p ne 'denied' && $cg{"$kind-$n-$place"};
            my $why = $findings{"b-$n-$place"} ? '(b) does not run' : '';
            my $ok = $why ? 1 : $c->{cpu} < $b->{cpu} && (!$cgb || !$cgc || $cgc->{total} < $cgb->{total});
            target($ok, sprintf '(%s) cheaper than (b), N=%s, %s: %s', $kind, fmt_int($n), $p,
                   $why || sprintf('CPU %.1f vs %.1f µs%s', $c->{cpu}, $b->{cpu},
                                   $cgb && $cgc ? sprintf(', %s vs %s instructions', fmt_int($cgc->{total}), fmt_int($cgb->{total})) : ''));
        }
    }
}
for my $kind (qw(c1 c2)) {
    my $s = $servers{"$kind-$nmax-$placements{$nmax}[0]"} or next;
    next unless defined $s->{start_s};
    my $add = ($s->{rss_kb} - $servers{a}{rss_kb}) / 1024;
    target($s->{t_s} < 1, sprintf '(%s) %s rules load in < 1 s: httpd -t %.2f s (start to first answer: %.2f s, two reads)',
           $kind, fmt_int($nmax), $s->{t_s}, $s->{start_s});
    target($add < 64, sprintf '(%s) %s rules add < 64 MiB RSS: %+.1f MiB parent VmRSS vs (a)',
           $kind, fmt_int($nmax), $add);
}
# (the access log also holds the start-up probe's request)
target($once{extracted} == $once{connections} && $once{again} == 0 && $once{requests} > $once{connections},
       sprintf 'one certificate parse per connection: %d extractions for %d connections, %d requests',
       $once{extracted}, $once{connections}, $once{requests});

out("## Targets");
out();
out(($_->[0] ? '- PASS ' : '- MISS ') . $_->[1]) for @targets;
out();
out("![per-request cost against N](" . (($cfg{plot} =~ s{.*/}{}r)) . ")");

make_path(dirname($cfg{out}));
spew($cfg{out}, $md);

# ---- plot -----------------------------------------------------------------------

{
    my $dat = "$work/plot.dat";
    my $text = "# N a b_first b_last c1_first c1_last c2_first c2_last cg_a cg_b_first cg_b_last cg_c1_first cg_c2_first\n";
    for my $n (@ns) {
        my @p = @{ $placements{$n} };
        my $pl = $p[-1];
        my $get = sub { my ($k) = @_; my $m = $med{"$k|allowed|1"}; $m ? sprintf('%.2f', $m->{cpu}) : 'NaN' };
        my $cgv = sub { my ($k) = @_; $cg{$k} ? sprintf('%.0f', $cg{$k}{total}) : 'NaN' };
        $text .= join(' ', $n, $get->('a'), $get->("b-$n-$p[0]"), $get->("b-$n-$pl"),
                      $get->("c1-$n-$p[0]"), $get->("c1-$n-$pl"), $get->("c2-$n-$p[0]"), $get->("c2-$n-$pl"),
                      $cgv->('a'), $cgv->("b-$n-$p[0]"), $cgv->("b-$n-$pl"), $cgv->("c1-$n-$p[0]"), $cgv->("c2-$n-$p[0]")) . "\n";
    }
    spew($dat, $text);
    make_path(dirname($cfg{plot}));
    my $gp = <<"GP";
set terminal pngcairo size 1100,480 font ",10"
set output "$cfg{plot}"
set datafile missing "NaN"
set multiplot layout 1,2 title "mod_mtls_authz vs Require expr ($nproc CPUs, $date)" noenhanced
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
     "" u 1:7 w lp t "(c2) MTLSAllow subject+issuer"
set title "instructions per keep-alive request (callgrind)"
set ylabel "instructions / request"
plot "$dat" u 1:9 w lp lw 2 t "(a)", \\
     "" u 1:10 w lp t "(b) worst", \\
     "" u 1:11 w lp t "(b) best", \\
     "" u 1:12 w lp t "(c1)", \\
     "" u 1:13 w lp t "(c2)"
unset multiplot
GP
    $gp =~ s/set terminal pngcairo/set terminal png/ unless `gnuplot -e 'set terminal' 2>&1` =~ /pngcairo/;
    spew("$work/plot.gp", $gp);
    my ($rc, $o) = capture("gnuplot $work/plot.gp 2>&1");
    harness_fail("gnuplot: $o") if $rc != 0 || !-s $cfg{plot};
}

print "\n$md\n";
print "bench: results in $cfg{out}, plot in $cfg{plot}\n";
printf "bench: took %.1f minutes\n", (time - $t_begin) / 60;
exit($failed ? 1 : 0);
