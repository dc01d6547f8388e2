# The error log: one line per denial with the URI, the reason, the
# subject and the issuer; escaping of certificate strings; debug lines
# for each rule tried; one identity extraction per keep-alive connection.
# Server configuration: the shared t/conf/extra.conf.in.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use MTLS qw(status curl_out log_mark error_log_since fp);

plan tests => 17;

sub denial_lines {
    my ($log) = @_;
    return grep { /\] client denied/ } split /\n/, $log;
}

# --- no rule matched
my $m = log_mark();
is(status('/t/subject', cert => 'bob-a'), 403, 'bob denied');
my @lines = denial_lines(error_log_since($m));
is(scalar(@lines), 1, 'exactly one denial line');
like($lines[0] // '', qr{\[mtls_authz:error\].*/t/subject: no rule matched; subject "CN=bob,O=Acme Inc\.,C=US", issuer sha256:${\ fp('FP_CA_A')}},
     'denial line: URI, reason, subject, issuer fingerprint');

# --- issuer not allowed
$m = log_mark();
status('/t/partners', cert => 'alice-b');
like(join("\n", denial_lines(error_log_since($m))),
     qr{/t/partners: issuer not allowed; subject "CN=alice,O=Acme Inc\.,C=US", issuer sha256:${\ fp('FP_CA_B')}},
     'reason: issuer not allowed');

# --- no certificate / not verified
$m = log_mark();
status('/t/subject', vhost => 'mtls_optional', cert => undef);
like(join("\n", denial_lines(error_log_since($m))),
     qr{/t/subject: no certificate; subject "-"}, 'reason: no certificate');
$m = log_mark();
status('/t/subject', vhost => 'mtls_optional', cert => 'self-signed');
like(join("\n", denial_lines(error_log_since($m))),
     qr{/t/subject: not verified: self-signed certificate; subject "CN=alice},
     'reason: not verified, with the verify error');

# --- MTLSAuthz On with no rule in the merged scope
$m = log_mark();
status('/t/norule', cert => 'alice-a');
like(join("\n", denial_lines(error_log_since($m))),
     qr{/t/norule: MTLSAuthz On but no MTLSAllow\* rule applies here},
     'reason: no rule in scope');

# --- certificate strings cannot forge log lines: the NUL-CN subject is
# escaped (OpenSSL prints the NUL as \00, ap_escape_logitem escapes the
# backslash), and a crafted URI is escaped too.
$m = log_mark();
status('/t/subject', cert => 'nul-cn');
my @nul = denial_lines(error_log_since($m));
is(scalar(@nul), 1, 'NUL CN: one denial line');
unlike($nul[0] // '', qr/\x00/, 'NUL CN: no raw NUL byte in the log');
$m = log_mark();
status("/t/subject%0a[forged]", cert => 'bob-a');
my $log = error_log_since($m);
unlike($log, qr/^\[forged\]/m, 'a newline in the URI does not start a log line');

# --- debug: each rule tried
$m = log_mark();
status('/t/partners', cert => 'alice-a');
like(error_log_since($m), qr{\[mtls_authz:debug\].*rule .*extra\.conf:\d+: matched},
     'debug shows the rule tried and its file:line');

# --- keep-alive: identity extracted once for several requests
{
    $m = log_mark();
    my ($sock) = MTLS::connect_tls(cert => 'alice-a');
    my @st;
    for my $p ('/t/subject', '/t/issuer-a', '/t/partners', '/t/san-dns', '/t/subject') {
        push @st, (MTLS::get_on($sock, $p, keepalive => 1))[0];
    }
    my ($last) = MTLS::get_on($sock, '/t/rule-subject');
    close $sock;
    is("@st $last", '200 200 200 200 200 200', 'six requests on one connection');
    my $l = error_log_since($m);
    my @ex = $l =~ /identity extracted \((\d+) on this connection\)/g;
    is(scalar(@ex), 1, 'identity extracted once for six requests');
    is($ex[0] // '', 1, 'and it is the first extraction of the connection');
}

# --- HTTP/2: streams share their connection's identity
{
    $m = log_mark();
    my @out = split /\n/, curl_out('mtls', 'alice-a', ['/t/subject', '/t/issuer-a', '/t/partners'],
                                   '--http2', ('-o', '/dev/null') x 3,
                                   '-w', '%{http_code} %{http_version} %{num_connects}\n');
    is("@out", '200 2 1 200 2 0 200 2 0',
       'three h2 requests on one connection (num_connects 1, 0, 0)');
    my @ex = error_log_since($m) =~ /identity extracted \((\d+) on this connection\)/g;
    is(scalar(@ex), 1, 'h2: identity extracted once for three streams');
}

# --- the denial line is at error level, from this module
$m = log_mark();
status('/dir/', cert => 'bob-a');
like(error_log_since($m), qr{\[mtls_authz:error\] \[pid \d+[^\]]*\] \[client 127\.0\.0\.1:\d+\] client denied by server configuration: /dir/: no rule matched},
     'denial format for a <Directory> scope');
