package HttpdRun;
# Helpers for the test files that do not use the Apache::Test server but
# run the httpd binary themselves on small configurations of their own
# (t/config_errors.t, t/startup.t): where httpd, the module and the base
# configuration are, free loopback ports, files, and commands run in
# their own process group with a time limit. Also the WSGI backend
# (t/wsgi_backend.py) of the tests that proxy, t/env.t included.
use strict;
use warnings FATAL => 'all';
use Exporter 'import';
use Apache::Test ();
use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes qw(time sleep);

our @EXPORT_OK = qw(locate missing_prereqs free_port slurp spew spawn
  wait_for kill_group run_cmd describe_status start_server stop_server
  user_lines ssl_vhost_lines pins $CRASH start_wsgi_backend wsgi_answer);

# ---- where things are ------------------------------------------------------

# Where things are for the test file $test_file (pass __FILE__): t_dir and
# the httpd binary from the Apache::Test configuration, or, when the file
# is run on its own (perl t/NAME.t), from its location; and the paths
# under them. Returns a list of key => value:
#   httpd   the httpd binary (undef if none was found)
#   t_dir   the t/ directory
#   top     the top of the tree
#   module  the built mod_mtls_authz.so
#   base    build/base-httpd.conf (scripts/run-tests.sh writes it)
#   cfg     t/logs/cfg, where the configurations are written
sub locate {
    my ($test_file) = @_;
    my $self = abs_path($test_file);
    my $bin  = dirname($self);
    my ($httpd, $t_dir);
    if (-e "$bin/conf/apache_test_config.pm") {
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
        httpd  => $httpd,
        t_dir  => $t_dir,
        top    => $top,
        module => "$top/.libs/mod_mtls_authz.so",
        base   => "$top/build/base-httpd.conf",
        cfg    => "$t_dir/logs/cfg",
    );
}

# What is missing to run httpd at all, given what locate() returned: a
# list of messages, empty when nothing is.
sub missing_prereqs {
    my (%at) = @_;
    my @missing;
    push @missing, "no httpd binary (Apache::Test::vars('httpd') is empty)"
      unless $at{httpd} && -x $at{httpd};
    push @missing, "$at{module} is missing (run make)" unless -f $at{module};
    push @missing, "$at{base} is missing (scripts/run-tests.sh writes it)"
      unless -f $at{base};
    return @missing;
}

# ---- helpers --------------------------------------------------------------

# What a crashed or aborted child leaves in an error log (the parent logs
# "AH00052: child pid N exit signal Segmentation fault (11)").
our $CRASH = qr/exit signal|Segmentation fault|AH0005[0-2]|double free|stack smashing|
                Sanitizer|Aborted/xi;

# The fingerprints in the test PKI's pins.sh (FP_CA_A => hex, ...).
sub pins {
    my ($pki) = @_;
    return map { /^(FP_\w+)=(\S+)/ ? ($1 => $2) : () } split /\n/, slurp("$pki/pins.sh");
}

# A loopback port nobody listens on right now.
sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', Listen => 1, ReuseAddr => 1)
      or die "cannot bind a loopback port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    return <$fh> // '';
}

sub spew {
    my ($file, $text) = @_;
    open my $fh, '>', $file or die "$file: $!";
    print $fh $text or die "$file: $!";
    close $fh or die "$file: $!";
}

sub describe_status {
    my ($st) = @_;
    return 'exit ' . ($st >> 8) . (($st & 127) ? ' signal ' . ($st & 127) : '');
}

# ---- commands ---------------------------------------------------------------

# Starts a command in its own process group, stdout+stderr into $out.
sub spawn {
    my ($out, @cmd) = @_;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    return $pid;
}

# Waits up to $timeout seconds for $pid; returns its wait status, or
# undef if it is still running.
sub wait_for {
    my ($pid, $timeout) = @_;
    my $deadline = time + $timeout;
    while (1) {
        return $? if waitpid($pid, POSIX::WNOHANG()) == $pid;
        return undef if time >= $deadline;
        sleep 0.02;
    }
}

# Ends a process group we started: SIGTERM, then SIGKILL.
sub kill_group {
    my ($pid) = @_;
    kill 'TERM', -$pid;
    my $st = wait_for($pid, 5);
    return $st if defined $st;
    kill 'KILL', -$pid;
    waitpid($pid, 0);
    return $?;
}

# Runs a command with stdout+stderr into $out, for at most $timeout
# seconds (then ends its process group). Returns (wait status, timed out?).
sub run_cmd {
    my ($timeout, $out, @cmd) = @_;
    my $pid = spawn($out, @cmd);
    my $st  = wait_for($pid, $timeout);
    return ($st, 0) if defined $st;
    return (kill_group($pid), 1);
}

# ---- a server of one's own ---------------------------------------------------

# "User"/"Group" lines when running as root (children must not run as
# root), else nothing.
# The opening lines of a TLS <VirtualHost> on 127.0.0.1:$port that
# requires a client certificate from the test PKI in $pki (t/pki/out).
sub ssl_vhost_lines {
    my ($port, $pki) = @_;
    return (
        "<VirtualHost 127.0.0.1:$port>",
        '    ServerName localhost',
        '    SSLEngine on',
        qq{    SSLCertificateFile "$pki/server.crt"},
        qq{    SSLCertificateKeyFile "$pki/server.key"},
        qq{    SSLCACertificateFile "$pki/trust-all.crt"},
        '    SSLVerifyClient require',
        '    SSLVerifyDepth 3',
    );
}

sub user_lines {
    return () unless $> == 0;
    my (undef, undef, $uid, $gid) = getpwnam('nobody');
    die "running as root but there is no user nobody\n" unless defined $uid;
    return ("User #$uid", "Group #$gid");
}

# Starts `httpd -f $file -DFOREGROUND` (output into $out) and waits up to
# $timeout seconds until it accepts connections on 127.0.0.1:$port and
# has written its pid into $pidfile (which rules out another process
# that happens to listen on the port free_port() picked). Returns its
# pid, or (undef, why) after ending it.
sub start_server {
    my ($httpd, $file, $port, $out, $timeout, $pidfile) = @_;
    unlink $pidfile;
    my $pid = spawn($out, $httpd, '-f', $file, '-DFOREGROUND');
    my $deadline = time + $timeout;
    while (time < $deadline) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            return (undef, 'httpd exited: ' . describe_status($?));
        }
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                      Proto => 'tcp', Timeout => 1);
        if ($s) {
            close $s;
            return $pid if slurp($pidfile) =~ /^\s*\Q$pid\E\s*$/;
        }
        sleep 0.1;
    }
    kill_group($pid);
    return (undef, "httpd did not listen on port $port within ${timeout}s");
}

# Stops a server from start_server: SIGTERM, then SIGKILL. Returns its
# wait status.
sub stop_server { kill_group($_[0]) }

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
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $p,
                                      Proto => 'tcp', Timeout => 1) or next;
        close $s;
        return ($pid, $p);
    }
    kill_group($pid);
    return (undef, "wsgi_backend.py did not listen within 20 s\n"
            . slurp("$dir/backend.out"));
}

# The backend's answer: ({ HTTP_X_CLIENT_NAME => value }, [ "Name: value"
# for each X?Client? header line it received ]).
sub wsgi_answer {
    my ($body) = @_;
    my (%vars, @headers);
    for (split /\n/, $body // '') {
        if (/^header: (.*)$/) { push @headers, $1 }
        elsif (/^(HTTP_X_CLIENT_\w+)=(.*)$/) { $vars{$1} = $2 }
    }
    return (\%vars, \@headers);
}

1;
