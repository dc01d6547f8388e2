package HttpdRun;
# The harness of every test file that runs the httpd binary itself
# instead of (or beside) the Apache::Test server, and of bench/run.pl:
#   - where httpd, the module, the base configuration and the PKI are,
#     and what is missing to run at all;
#   - files, free loopback ports, and commands run in their own process
#     group with a time limit;
#   - a configuration's pieces: the opening lines (paths, logs, modules),
#     a TLS virtual host, a fresh directory per case, httpd -t;
#   - a server of one's own: start, stop, one HTTPS request, a curl
#     command line, the error log since a mark, what a crash leaves in it;
#   - the test PKI's fingerprints (pins.sh) and client TLS options;
#   - the WSGI backend (t/wsgi_backend.py) of the tests that proxy.
# Plain functions without state, and no assertion but assert_prereqs:
# files that write dozens of configurations (t/startup.t,
# t/config_errors.t, t/hostile_config.t) and bench/run.pl, which is no
# test, use them as they are. t/lib/OwnHttpd.pm builds one server, with
# the assertions that go with it, on top of them; t/lib/MTLS.pm is the
# client side of the Apache::Test server.
use strict;
use warnings FATAL => 'all';
use Exporter 'import';
use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET ();
use IO::Socket::SSL ();
use POSIX ();
use Time::HiRes qw(time sleep);

our @EXPORT_OK = qw(locate missing_prereqs assert_prereqs free_port port_open slurp
  spew spawn wait_for kill_group run_cmd must_run describe_status case_dir new_case
  head_lines user_lines module_lines no_ssl_modules ssl_vhost_lines ssl_vhost
  write_conf config_test start_server stop_server client_ssl_opts https_status
  curl_args log_since log_wait pins $CRASH start_wsgi_backend wsgi_answer wsgi_certs);

# ---- where things are ------------------------------------------------------

# Where things are for the test file $test_file (pass __FILE__): t_dir and
# the httpd binary from the Apache::Test configuration, or, when the file
# is run on its own (perl t/NAME.t), from its location; and the paths
# under them. Returns a list of key => value:
#   test    the test file's name without .t (for the configurations' comment)
#   httpd   the httpd binary (undef if none was found)
#   t_dir   the t/ directory
#   top     the top of the tree
#   module  the built mod_mtls_authz.so
#   base    build/base-httpd.conf (scripts/run-tests.sh writes it)
#   cfg     t/logs/cfg, where the configurations are written
#   pki     t/pki/out, the test PKI (t/pki/mkpki.sh)
sub locate {
    my ($test_file) = @_;
    my $self = abs_path($test_file);
    my $bin  = dirname($self);
    my ($httpd, $t_dir);
    if (-e "$bin/conf/apache_test_config.pm") {
        require Apache::Test;
        $httpd = eval { Apache::Test::vars('httpd') };
        $t_dir = eval { Apache::Test::vars('t_dir') };
    }
    $t_dir = $bin
      unless $t_dir && -e "$t_dir/" . basename($self);
    unless ($httpd && -x $httpd) {
        ($httpd) = grep { -x } '/usr/sbin/apache2', '/usr/sbin/httpd',
          '/usr/local/apache2/bin/httpd';
    }
    $t_dir = abs_path($t_dir);
    my $top = dirname($t_dir);
    return (
        test   => basename($self, '.t'),
        httpd  => $httpd,
        t_dir  => $t_dir,
        top    => $top,
        module => "$top/.libs/mod_mtls_authz.so",
        base   => "$top/build/base-httpd.conf",
        cfg    => "$t_dir/logs/cfg",
        pki    => "$t_dir/pki/out",
    );
}

# What is missing to run httpd at all, given what locate() returned (and
# need_pki => 1: the test PKI too): a list of messages, empty when
# nothing is.
sub missing_prereqs {
    my (%at) = @_;
    my @missing;
    push @missing, "no httpd binary (Apache::Test::vars('httpd') is empty)"
      unless $at{httpd} && -x $at{httpd};
    push @missing, "$at{module} is missing (run make)" unless -f $at{module};
    if (!-f $at{base}) {
        push @missing, "$at{base} is missing (scripts/run-tests.sh writes it)";
    }
    elsif (slurp($at{base}) !~ /^LoadModule\s+ssl_module\s/m) {
        push @missing, "$at{base} loads no mod_ssl";
    }
    push @missing, "$at{pki}/pins.sh is missing (scripts/run-tests.sh runs t/pki/mkpki.sh)"
      if $at{need_pki} && !-s "$at{pki}/pins.sh";
    return @missing;
}

# One assertion that nothing is missing ("preconditions: $what"); dies
# when something is: a test that cannot run fails loudly.
sub assert_prereqs {
    my ($what, @missing) = @_;
    require Test::More;
    Test::More::ok(!@missing, "preconditions: $what")
      or Test::More::diag(join "\n", @missing);
    die "cannot run: @missing\n" if @missing;
}

# ---- files and ports ----------------------------------------------------------

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    return <$fh> // '';
}

# Writes $text as it is (a configuration line may hold NUL or control
# bytes).
sub spew {
    my ($file, $text) = @_;
    open my $fh, '>:raw', $file or die "$file: $!";
    print $fh $text or die "$file: $!";
    close $fh or die "$file: $!";
}

# A loopback port nobody listens on right now.
# A port is free when asked, not when used: a caller that asks for
# several before starting its servers must not get one twice.
my %handed_out;

sub free_port {
    for (1 .. 100) {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                      Proto => 'tcp', Listen => 1, ReuseAddr => 1)
          or die "cannot bind a loopback port: $!";
        my $port = $s->sockport;
        close $s;
        return $port unless $handed_out{$port}++;
    }
    die "cannot find a loopback port not handed out before";
}

# Does something accept connections on 127.0.0.1:$port?
sub port_open {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 1)
      or return 0;
    close $s;
    return 1;
}

# A fresh directory $parent/$name (and the subdirectories @sub in it),
# readable by the unprivileged user httpd's children run as.
sub case_dir {
    my ($parent, $name, @sub) = @_;
    my $dir = "$parent/$name";
    remove_tree($dir);
    make_path($dir, map { "$dir/$_" } @sub) or die "$dir: $!";
    chmod 0755, $dir, map { "$dir/$_" } @sub;
    return $dir;
}

# case_dir's directory, and a free loopback port for the case's server.
sub new_case { (case_dir(@_), free_port()) }

sub describe_status {
    my ($st) = @_;
    return 'exit ' . ($st >> 8) . (($st & 127) ? ' signal ' . ($st & 127) : '');
}

# ---- commands ---------------------------------------------------------------

# Starts a command in its own process group. $io: the file for its stdout
# and stderr, or { out => file, err => file (default: with stdout),
# in => file (default /dev/null), cwd => directory }.
sub spawn {
    my ($io, @cmd) = @_;
    my %io = ref $io ? %$io : (out => $io);
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        setpgrp(0, 0);
        !$io{cwd} || chdir $io{cwd} or POSIX::_exit(126);
        open STDIN, '<', $io{in} // '/dev/null' or POSIX::_exit(126);
        open STDOUT, '>', $io{out} or POSIX::_exit(126);
        if (defined $io{err}) { open STDERR, '>', $io{err} or POSIX::_exit(126) }
        else                  { open STDERR, '>&', \*STDOUT or POSIX::_exit(126) }
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    return $pid;
}

# Waits up to $timeout seconds for $pid; returns its wait status (-1 if
# it was reaped before), or undef if it is still running.
sub wait_for {
    my ($pid, $timeout) = @_;
    my $deadline = time + $timeout;
    while (1) {
        my $r = waitpid($pid, POSIX::WNOHANG());
        return $? if $r == $pid;
        return -1 if $r == -1;
        return undef if time >= $deadline;
        sleep 0.02;
    }
}

# Ends a process group we started: SIGTERM, then after $grace seconds
# (default 5) SIGKILL. Returns its wait status, and whether it took
# SIGKILL (in list context).
sub kill_group {
    my ($pid, $grace) = @_;
    kill 'TERM', -$pid;
    my $st = wait_for($pid, $grace // 5);
    my $killed = !defined $st;
    if ($killed) {
        kill 'KILL', -$pid;
        waitpid($pid, 0);
        $st = $?;
    }
    return wantarray ? ($st, $killed) : $st;
}

# Runs a command (its output as spawn's $io says) for at most $timeout
# seconds, then ends its process group. Returns (wait status, timed out?).
sub run_cmd {
    my ($timeout, $io, @cmd) = @_;
    my $pid = spawn($io, @cmd);
    my $st  = wait_for($pid, $timeout);
    return ($st, 0) if defined $st;
    return (scalar kill_group($pid), 1);
}

# Runs a command that must succeed within 30 s (output into $out); dies
# with what it said otherwise.
sub must_run {
    my ($out, $what, @cmd) = @_;
    my ($st, $hung) = run_cmd(30, $out, @cmd);
    die "$what failed (" . describe_status($st) . ($hung ? ', timed out' : '') . "): "
      . slurp($out) . "\n" if $st || $hung;
}

# ---- a configuration ----------------------------------------------------------

# "User"/"Group" lines when running as root (children must not run as
# root), else nothing.
sub user_lines {
    return () unless $> == 0;
    my (undef, undef, $uid, $gid) = getpwnam('nobody');
    die "running as root but there is no user nobody\n" unless defined $uid;
    return ("User #$uid", "Group #$gid");
}

# LoadModule lines for the modules @names (short names, e.g. include)
# that the base configuration $base does not load already, from the
# directory it loads mod_ssl from.
sub module_lines {
    my ($base, @names) = @_;
    return () unless @names;
    my $conf = slurp($base);
    my ($ssl) = $conf =~ /^LoadModule\s+ssl_module\s+"?(\S+?)"?\s*$/m
      or die "no ssl_module line in $base\n";
    my @l;
    for my $m (@names) {
        next if $conf =~ /^LoadModule\s+${m}_module\s/m;
        my $so = dirname($ssl) . "/mod_$m.so";
        -f $so or die "$so is missing\n";
        push @l, qq{LoadModule ${m}_module "$so"};
    }
    return @l;
}

# The LoadModule lines of the base configuration $base without mod_ssl
# (and the modules that need it or are only there for it).
sub no_ssl_modules {
    my ($base) = @_;
    return grep { !/\b(ssl_module|socache_\w+_module|http2_module)\b/ }
      grep { /\S/ } split /\n/, slurp($base);
}

# The opening lines of a configuration in directory $o{dir} listening on
# 127.0.0.1:$o{port} (or each port of the list), with what locate()
# returned (test, base, module):
#   loglevel  LogLevel (default warn)
#   load      LoadModule lines to use instead of including $o{base}
#   modules   more modules (short names) after this one, when the base
#             configuration does not load them already
#   docroot   DocumentRoot (default $o{dir})
#   servername  ServerName (default 127.0.0.1)
#   timeout   Timeout (default 10)
sub head_lines {
    my (%o) = @_;
    my $dir = $o{dir};
    my @ports = ref $o{port} ? @{ $o{port} } : ($o{port});
    return (
        "# written by t/$o{test}.t",
        qq{ServerRoot "$dir"},
        qq{DefaultRuntimeDir "$dir"},
        qq{PidFile "$dir/httpd.pid"},
        qq{ErrorLog "$dir/error_log"},
        'LogLevel ' . ($o{loglevel} // 'warn'),
        ($o{load} ? @{ $o{load} } : qq{Include "$o{base}"}),
        qq{LoadModule mtls_authz_module "$o{module}"},
        module_lines($o{base}, @{ $o{modules} // [] }),
        (map { "Listen 127.0.0.1:$_" } @ports),
        'ServerName ' . ($o{servername} // '127.0.0.1'),
        'DocumentRoot "' . ($o{docroot} // $dir) . '"',
        'Timeout ' . ($o{timeout} // 10),
        'GracefulShutdownTimeout 1',
        user_lines(),
    );
}

# The opening lines of a TLS <VirtualHost> on 127.0.0.1:$o{port} with the
# server certificate of the test PKI $o{pki}:
#   name    ServerName (default localhost)
#   trust   SSLCACertificateFile in $o{pki} (default trust-all.crt)
#   verify  SSLVerifyClient (default require, with SSLVerifyDepth 3);
#           undef: neither line
sub ssl_vhost_lines {
    my (%o) = @_;
    my $pki = $o{pki};
    my $verify = exists $o{verify} ? $o{verify} : 'require';
    return (
        "<VirtualHost 127.0.0.1:$o{port}>",
        '    ServerName ' . ($o{name} // 'localhost'),
        '    SSLEngine on',
        qq{    SSLCertificateFile "$pki/server.crt"},
        qq{    SSLCertificateKeyFile "$pki/server.key"},
        qq{    SSLCACertificateFile "$pki/} . ($o{trust} // 'trust-all.crt') . '"',
        defined $verify ? ("    SSLVerifyClient $verify", '    SSLVerifyDepth 3') : (),
    );
}

# A whole TLS <VirtualHost> (ssl_vhost_lines' options) with @body in it.
sub ssl_vhost {
    my ($o, @body) = @_;
    return (ssl_vhost_lines(%$o), @body, '</VirtualHost>');
}

# Writes the lines as the configuration $file; a line that starts with
# '>>' is the one under test: returns ($file, that line's number).
sub write_conf {
    my ($file, @lines) = @_;
    my $mark;
    for my $i (0 .. $#lines) {
        $mark = $i + 1 if $lines[$i] =~ s/^>>//;
    }
    spew($file, join("\n", @lines) . "\n");
    return ($file, $mark);
}

# httpd -t on a configuration, for at most $timeout seconds (output into
# test.out next to it): (wait status, output, seconds).
sub config_test {
    my ($httpd, $file, $timeout) = @_;
    my $out = dirname($file) . '/test.out';
    my $t0 = time;
    my ($st, $hung) = run_cmd($timeout, $out, $httpd, '-t', '-f', $file);
    my $text = slurp($out);
    $text .= "\n[httpd -t did not finish within ${timeout}s]" if $hung;
    return ($st, $text, time - $t0);
}

# ---- a server of one's own ---------------------------------------------------

# What a crashed or aborted child leaves in an error log (the parent logs
# "AH00052: child pid N exit signal Segmentation fault (11)"), or glibc,
# a sanitizer or an assertion on its way out.
our $CRASH = qr/exit signal|Segmentation fault|AH0005[0-2]|double free|stack smashing|
                corrupted|free\(\)|Sanitizer|Aborted|assertion/xi;

# Starts `httpd -f $file -DFOREGROUND` (output into start.out next to
# $file) and waits up to $timeout seconds until it accepts connections on
# 127.0.0.1:$port and has written its pid into httpd.pid next to $file
# (which rules out another process that happens to listen on the port
# free_port() picked). $ready_log: also wait until that error log (gone
# first) says "resuming normal operations": httpd listens before the
# post_config checks that may refuse to start, and a slow start
# (SANITIZE=1, valgrind) is not judged half-way. Returns its pid, or
# (undef, why, its wait status if it exited by itself) after ending it.
sub start_server {
    my ($httpd, $file, $port, $timeout, $ready_log) = @_;
    my $dir = dirname($file);
    my $pidfile = "$dir/httpd.pid";
    unlink $pidfile, grep { defined } $ready_log;
    my $pid = spawn("$dir/start.out", $httpd, '-f', $file, '-DFOREGROUND');
    my $deadline = time + $timeout;
    while (time < $deadline) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            return (undef, 'httpd exited: ' . describe_status($?), $?);
        }
        return $pid
          if port_open($port) && slurp($pidfile) =~ /^\s*\Q$pid\E\s*$/
          && (!defined $ready_log || slurp($ready_log) =~ /resuming normal operations/);
        sleep 0.1;
    }
    my $st = kill_group($pid);
    return (undef, "httpd did not listen on port $port within ${timeout}s (ended it: "
            . describe_status($st) . ')');
}

# Stops a server from start_server: SIGTERM, then after $grace seconds
# (default 5) SIGKILL. Returns its wait status, and whether it took
# SIGKILL (in list context).
# A graceful stop first (SIGWINCH to the parent; GracefulShutdownTimeout
# 1 in head_lines): a TERM to the whole process group makes each child
# close the sockets of connections its workers may still be ending, which
# httpd 2.4.71's event MPM does without a lock (a child then segfaults in
# apr_os_sock_get, now and then). TERM and KILL only if that fails.
sub stop_server {
    my ($pid, $grace) = @_;
    kill 'WINCH', $pid;
    my $st = wait_for($pid, 10);
    return wantarray ? ($st, 0) : $st if defined $st;
    return kill_group($pid, $grace);
}

# IO::Socket::SSL options of a client of the test PKI $pki: it verifies
# the server (localhost, from CA A) and presents the certificate
# $o{cert} (a name in $pki, or a path, without .pem; undef: none) with
# TLS version $o{tls} ('1.2', '1.3'; default the highest).
sub client_ssl_opts {
    my ($pki, %o) = @_;
    my $pem = defined $o{cert} ? ($o{cert} =~ m{^/} ? $o{cert} : "$pki/$o{cert}") . '.pem'
                               : undef;
    return (
        SSL_verify_mode     => IO::Socket::SSL::SSL_VERIFY_PEER(),
        SSL_ca_file         => "$pki/ca-a.crt",
        SSL_verifycn_name   => 'localhost',
        SSL_verifycn_scheme => 'http',
        $pem ? (SSL_cert_file => $pem, SSL_key_file => $pem) : (),
        $o{tls} ? (SSL_version => $o{tls} eq '1.2' ? 'TLSv1_2' : 'TLSv1_3') : (),
    );
}

# One GET $path on a new TLS connection to 127.0.0.1:$port as the client
# $cert of the test PKI $pki (client_ssl_opts); $timeout for the
# connection and the handshake (default 10). Returns the status, 0 when
# there was no HTTP response.
sub https_status {
    my ($pki, $port, $path, $cert, $timeout) = @_;
    my $s = IO::Socket::SSL->new(
        PeerHost => '127.0.0.1', PeerPort => $port, Timeout => $timeout // 10,
        SSL_hostname => 'localhost', client_ssl_opts($pki, cert => $cert),
    ) or return 0;
    print $s "GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    my $line = <$s> // '';
    close $s;
    return $line =~ m{^HTTP/1\.\d (\d{3})} ? $1 : 0;
}

# A curl command line for https://localhost:$port$path for each path of
# @$paths (localhost resolved to 127.0.0.1), verifying the server with the
# test PKI $pki, with the client certificate and key in the file $pem
# (undef: none), at most 20 s, and the options @opt.
sub curl_args {
    my ($pki, $port, $pem, $paths, @opt) = @_;
    return ('curl', '-s', '-m', '20', '--cacert', "$pki/ca-a.crt",
            '--resolve', "localhost:$port:127.0.0.1", defined $pem ? ('--cert', $pem) : (),
            @opt, map { "https://localhost:$port$_" } @$paths);
}

# What the error log $file holds from byte $mark on (a request's lines
# are written before its response is complete: give them a moment).
sub log_since {
    my ($file, $mark) = @_;
    sleep 0.2;
    open my $fh, '<', $file or return '';
    seek $fh, $mark, 0;
    local $/;
    return <$fh> // '';
}

# Lines logged after a request has been answered (Require mtls's denial
# waits for the end of the request): polls the log $file from byte $mark
# on until $re matches or $timeout seconds (default 10) pass; returns
# what was logged since the mark.
sub log_wait {
    my ($file, $mark, $re, $timeout) = @_;
    my $deadline = time + ($timeout // 10);
    while (1) {
        open my $fh, '<', $file or return '';
        seek $fh, $mark, 0;
        local $/;
        my $log = <$fh> // '';
        close $fh;
        return $log if $log =~ $re || time >= $deadline;
        sleep 0.1;
    }
}

# The fingerprints in the test PKI's pins.sh (FP_CA_A => hex, ...).
sub pins {
    my ($pki) = @_;
    return map { /^(FP_\w+)=(\S+)/ ? ($1 => $2) : () } split /\n/, slurp("$pki/pins.sh");
}

# ---- the WSGI backend (t/wsgi_backend.py) ------------------------------------

# Starts t/wsgi_backend.py under /usr/bin/python3 in its own process
# group: it serves on 127.0.0.1:$port (0 or undef: a port the system
# picks) and exits by itself after $seconds; it keeps backend.port and
# backend.count in $dir. Waits up to 20 s until it accepts connections.
# Returns (pid, port), or (undef, why) after ending it. Stop it with
# kill_group(pid).
sub start_wsgi_backend {
    my ($t_dir, $dir, $seconds, $port) = @_;
    my $python = '/usr/bin/python3';
    return (undef, "$python is missing (scripts/deps.sh installs python3)")
      unless -x $python;
    unlink "$dir/backend.port", "$dir/backend.count";
    my $pid = spawn("$dir/backend.out", $python, "$t_dir/wsgi_backend.py",
                    $dir, $seconds, $port // 0);
    for (my $deadline = time + 20; time < $deadline; sleep 0.05) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            return (undef, 'wsgi_backend.py exited: ' . describe_status($?)
                    . "\n" . slurp("$dir/backend.out"));
        }
        my ($p) = slurp("$dir/backend.port") =~ /^(\d+)$/m or next;
        return ($pid, $p) if port_open($p);
    }
    kill_group($pid);
    return (undef, "wsgi_backend.py did not listen within 20 s\n"
            . slurp("$dir/backend.out"));
}

# The backend's answer: ({ HTTP_X_CLIENT_NAME => value }, [ "Name: value"
# for each header line it received of the names it reports: X?Client?*,
# Client?Cert*, X?Forwarded?Client?Cert ]).
sub wsgi_answer {
    my ($body) = @_;
    my (%vars, @headers);
    for (split /\n/, $body // '') {
        if (/^header: (.*)$/) { push @headers, $1 }
        elsif (/^(HTTP_X_CLIENT_\w+)=(.*)$/) { $vars{$1} = $2 }
    }
    return (\%vars, \@headers);
}

# What the backend made of the certificate headers it received:
# { vars => { HTTP_CLIENT_CERT* and HTTP_X_FORWARDED_CLIENT_CERT => value },
#   cert => { HTTP_CLIENT_CERT(_CHAIN) => [ "N sha256=HEX subject=DN" ...,
#             or "invalid: WHY" ] },
#   xfcc => [ "N Key=value" ..., or "invalid: WHY" ],
#   names => [ the names of the header lines that produced them, as
#              received ] }.
sub wsgi_certs {
    my ($body) = @_;
    my %r = (vars => {}, cert => {}, xfcc => [], names => []);
    for (split /\n/, $body // '') {
        if (/^(HTTP_(?:CLIENT_CERT\w*|X_FORWARDED_CLIENT_CERT))=(.*)$/) { $r{vars}{$1} = $2 }
        elsif (/^cert: (\w+) (.*)$/) { push @{ $r{cert}{$1} }, $2 }
        elsif (/^xfcc: (.*)$/)       { push @{ $r{xfcc} }, $1 }
        elsif (/^header: ([^:]+):/ && $1 !~ /^x[-_]client[-_]/i) { push @{ $r{names} }, $1 }
    }
    return \%r;
}

1;
