# DNS-suffix (san=DNS:.domain) and network (san=IP:addr/len) rules in a
# real httpd with mod_ssl, against the test PKI's certificates: which
# clients each rule admits (200) and refuses (403), at the boundaries the
# PKI's names and addresses allow: a label boundary, the domain itself,
# case and a trailing dot, /0, /32, /128, an IPv4-mapped address, and
# overlapping networks; in MTLSAllowSAN, MTLSAllow and a rule file.
#
# Runs its own httpd (t/lib/OwnHttpd.pm), so that its rules touch no
# other test's locations.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use FindBin ();
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(spew);
use OwnHttpd ();

my $s = OwnHttpd->new(__FILE__, 'san_net');
my $dir = $s->dir;
my ($CA_A, $CA_B) = ($s->fp('FP_CA_A'), $s->fp('FP_CA_B'));

# What the clients hold (t/pki/README.md):
#   alice-a, alice-b (CA B): DNS alice.example.com, IP 192.0.2.7, 2001:db8::7
#   bob-a: DNS bob.example.com, IP ::ffff:192.0.2.7 (IPv4-mapped)
#   dave-a: DNS dave.example.com, no IP
#   upper-a: DNS ALICE.Example.Com. (upper case, trailing dot)
#   wildcard: DNS *.example.com
#   ipv6-full: IP ::1, IP 2001:db8::8, no DNS
#   carol-int-chain: DNS carol.example.com, issued by int-a
my @CERTS = qw(alice-a alice-b bob-a dave-a upper-a wildcard ipv6-full carol-int-chain);
my @DNS_COM = qw(alice-a alice-b bob-a dave-a upper-a wildcard carol-int-chain);

spew("$dir/rules.txt", join("\n",
    '# a rule file with suffix and network rules',
    'san=DNS:.example.com san=IP:192.0.2.0/24',
    'san=IP:2001:db8::8/128', '') );

# [location, rule lines, the clients it admits]
my @cases = (
    ['/sfx/',       ['MTLSAllowSAN DNS:.example.com'], [@DNS_COM]],
    ['/sfx-com/',   ['MTLSAllowSAN DNS:.COM.'], [@DNS_COM]],
    ['/sfx-self/',  ['MTLSAllowSAN DNS:.alice.example.com'], []],
    ['/sfx-label/', ['MTLSAllowSAN DNS:.ample.com'], []],
    ['/sfx-pin/',   ["MTLSAllow san=DNS:.example.com issuer=sha256:$CA_A"],
     [qw(alice-a bob-a dave-a upper-a wildcard)]],
    ['/sfx-exact/', ['MTLSAllowSAN DNS:.example.com DNS:ALICE.EXAMPLE.COM'], [@DNS_COM]],
    ['/net4/',      ['MTLSAllowSAN IP:192.0.2.0/24'], [qw(alice-a alice-b)]],
    ['/net4-0/',    ['MTLSAllowSAN IP:0.0.0.0/0'], [qw(alice-a alice-b)]],
    ['/net4-32/',   ['MTLSAllowSAN IP:192.0.2.7/32'], [qw(alice-a alice-b)]],
    ['/net4-lo/',   ['MTLSAllowSAN IP:192.0.2.0/30'], []],
    ['/net4-hi/',   ['MTLSAllowSAN IP:192.0.2.4/30'], [qw(alice-a alice-b)]],
    ['/mapped/',    ['MTLSAllowSAN IP:::ffff:192.0.2.0/120'], [qw(bob-a)]],
    ['/net6/',      ['MTLSAllowSAN IP:2001:db8::/32'], [qw(alice-a alice-b ipv6-full)]],
    ['/net6-128/',  ['MTLSAllowSAN IP:2001:db8::8/128'], [qw(ipv6-full)]],
    ['/net6-127/',  ['MTLSAllowSAN IP:2001:db8::6/127'], [qw(alice-a alice-b)]],
    ['/net6-0/',    ['MTLSAllowSAN IP:::/0'], [qw(alice-a alice-b bob-a ipv6-full)]],
    ['/overlap/',   ["MTLSAllow san=IP:192.0.2.0/24 issuer=sha256:$CA_B",
                     "MTLSAllow san=IP:192.0.0.0/16 issuer=sha256:$CA_A"],
     [qw(alice-a alice-b)]],
    ['/overlap-b/', ["MTLSAllow san=IP:192.0.2.0/24 issuer=sha256:$CA_B",
                     "MTLSAllow san=IP:192.0.2.0/25 issuer=sha256:$CA_B"],
     [qw(alice-b)]],
    ['/both/',      ['MTLSAllow san=DNS:.example.com san=IP:2001:db8::/32'],
     [qw(alice-a alice-b)]],
    ['/file/',      [qq{MTLSAllowFile "$dir/rules.txt"}], [qw(alice-a alice-b ipv6-full)]],
);

$s->add_header;
$s->write_doc('ok.txt', "ok\n");
$s->add(qq{AliasMatch "^/.+/x\$" "$dir/docs/ok.txt"}, qq{<Directory "$dir/docs">},
        '    Require all granted', '</Directory>');
$s->add_vhost;
$s->add_location($_->[0], 'MTLSAuthz On', @{ $_->[1] }) for @cases;
$s->add('</VirtualHost>');
$s->start;

# A control first: without a client certificate the handshake fails or
# the request is refused, so that a 200 below comes from the rules.
my $none = $s->status('/sfx/x');
ok($none != 200, "no client certificate: not admitted ($none)");

for my $c (@cases) {
    my ($loc, $rules, $admits) = @$c;
    my %yes = map { $_ => 1 } @$admits;
    for my $cert (@CERTS) {
        my $want = $yes{$cert} ? 200 : 403;
        my $got = $s->status("${loc}x", cert => $cert);
        is($got, $want, "$loc [@$rules] $cert: $want");
    }
}

# The debug log names the rule that admitted a request: the rule file's
# suffix and network rule (line 2) for alice-a, its /128 (line 3) for
# ipv6-full.
my $mark = $s->log_mark;
my @st = ($s->status('/file/x', cert => 'alice-a'),
          $s->status('/file/x', cert => 'ipv6-full'));
my $log = $s->log_since($mark);
ok("@st" eq '200 200' && $log =~ m{rules\.txt:2: matched}
     && $log =~ m{rules\.txt:3: matched},
   "the rule file's lines 2 and 3 are named as the ones that matched (@st)")
  or diag($log);

$s->stop;

# preconditions, start, the control, the matrix, the log line, stop
done_testing(5 + @CERTS * @cases);
