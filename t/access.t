# Decisions for every directive and MTLSAllow key, allow and deny, against
# the real httpd + mod_ssl and the generated PKI (t/pki/mkpki.sh).
# Server configuration: t/conf/access.inc.in and the shared t/conf/extra.conf.in.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use MTLS qw(status_cases);

# [path, certificate, expected status, what it shows]
my @cases = (
    # MTLSAllowSubject
    ['/t/subject', 'alice-a', 200, 'subject allowed'],
    ['/t/subject', 'bob-a', 403, 'other subject denied'],
    ['/t/subject', 'upper-a', 200, 'ASCII case variant matches (X509_NAME_cmp)'],
    ['/t/subject', 'alice-b', 200, 'subject alone does not pin the CA'],
    ['/t/subject-spaces', 'alice-a', 200, 'spaces after separators, lower-case types'],
    ['/t/subject', 'inject-comma', 403, 'CN "alice,O=Acme Inc.,C=US" is one CN, not three RDNs'],
    ['/t/subject-escaped', 'inject-comma', 200, 'escaped commas name that single CN'],
    ['/t/subject-escaped', 'alice-a', 403, 'escaped commas do not match three RDNs'],
    ['/t/subject', 'inject-slash', 403, 'CN "alice/O=Admins" is not alice'],
    ['/t/subject-slash', 'inject-slash', 200, 'CN with a slash matched exactly'],
    ['/t/subject-slash', 'alice-a', 403, 'slash form is no legacy DN'],
    ['/t/subject-multi', 'multi-rdn', 200, 'multi-valued RDN matches itself'],
    ['/t/subject-multi', 'sep-rdn', 403, 'separate RDNs are not a multi-valued RDN'],
    ['/t/subject-sep', 'sep-rdn', 200, 'separate RDNs match themselves'],
    ['/t/subject-sep', 'multi-rdn', 403, 'multi-valued RDN is not separate RDNs'],
    ['/t/subject', 'multi-rdn', 403, 'extra attribute does not match'],
    ['/t/subject', 'dave-a', 403, 'extra RDN (OU) does not match'],
    ['/t/subject', 'nul-cn', 403, 'CN with a NUL byte denied'],
    ['/t/subject-two', 'bob-a', 200, 'several DNs on one line: first'],
    ['/t/subject-two', 'carol-int', 200, 'several DNs on one line: second'],
    ['/t/subject-two', 'alice-a', 403, 'several DNs on one line: others denied'],

    # MTLSAllowSAN
    ['/t/san-dns', 'alice-a', 200, 'DNS SAN allowed'],
    ['/t/san-dns', 'bob-a', 403, 'DNS SAN denied'],
    ['/t/san-dns-upper', 'alice-a', 200, 'DNS: rule case and trailing dot ignored'],
    ['/t/san-dns', 'upper-a', 200, 'DNS: certificate case and trailing dot ignored'],
    ['/t/san-dns', 'nul-dns', 403, 'DNS SAN with a NUL byte denied'],
    ['/t/san-dns-foo', 'wildcard', 403, 'a wildcard SAN is no pattern'],
    ['/t/san-dns-wild', 'wildcard', 200, 'a wildcard SAN matches itself literally'],
    ['/t/san-email', 'alice-a', 200, 'email: domain case-insensitive'],
    ['/t/san-email-local', 'alice-a', 403, 'email: local part exact'],
    ['/t/san-email', 'nul-email', 403, 'email SAN with a NUL byte denied'],
    ['/t/san-uri', 'alice-a', 200, 'URI exact'],
    ['/t/san-uri', 'nul-uri', 403, 'URI SAN with a NUL byte denied'],
    ['/t/san-uri', 'dave-a', 403, 'URI exact denies another URI'],
    ['/t/san-uri-prefix', 'alice-a', 200, 'URI prefix: below the path'],
    ['/t/san-uri-prefix', 'carol-int', 200, 'URI prefix: the path itself'],
    ['/t/san-uri-prefix', 'bob-a', 403, 'URI prefix: /ns/production is not under /ns/prod'],
    ['/t/san-uri-prefix', 'nul-uri', 403, 'URI prefix: NUL byte denied'],
    ['/t/san-ip4', 'alice-a', 200, 'IPv4 SAN'],
    ['/t/san-ip4', 'bob-a', 403, 'IPv4-mapped IPv6 is not IPv4'],
    ['/t/san-ip-mapped', 'bob-a', 200, 'IPv4-mapped IPv6 matches itself'],
    ['/t/san-ip-mapped', 'alice-a', 403, 'IPv4 is not IPv4-mapped IPv6'],
    ['/t/san-ip6', 'alice-a', 200, 'IPv6 compared as an address (2001:db8::7)'],
    ['/t/san-ip6-loopback', 'ipv6-full', 200, '::1 equals 0:0:0:0:0:0:0:1'],
    ['/t/san-ip6-loopback', 'alice-a', 403, 'IPv6 SAN denied'],

    # MTLSAllowIssuerFingerprint
    ['/t/issuer-a', 'alice-a', 200, 'issuer pin: CA A'],
    ['/t/issuer-a', 'alice-b', 403, 'issuer pin: same subject from CA B denied'],
    ['/t/issuer-a', 'alice-b-spoof', 403, 'issuer pin: CA A appended by the client is ignored'],
    ['/t/issuer-a-colon', 'alice-a', 200, 'issuer pin written with colons, upper case'],
    ['/t/issuer-a', 'carol-int', 403, 'issuer pin is the immediate issuer, not the root'],
    ['/t/issuer-int', 'carol-int', 200, 'intermediate pin, leaf only (intermediate in the trust store)'],
    ['/t/issuer-int', 'carol-int-chain', 200, 'intermediate pin, leaf + intermediate sent'],
    ['/t/subject-issuer-a', 'alice-a', 200, 'one-field rule: subject and issuer'],
    ['/t/subject-issuer-a', 'bob-a', 200, 'one-field rule: SAN and issuer'],
    ['/t/subject-issuer-a', 'alice-b', 403, 'one-field rule: issuer must hold too'],
    ['/t/subject-issuer-a', 'dave-a', 403, 'one-field rule: issuer alone is not enough'],

    # MTLSAllowIssuerFingerprint is a gate over every rule of its scope:
    # beside a rule file or an MTLSAllow line it narrows, never widens to
    # the whole CA; a whole CA is a rule of its own (issuer=).
    ['/t/gate-file', 'alice-a', 200, 'gate + rule file: the listed client of the CA'],
    ['/t/gate-file', 'bob-a', 403, 'gate + rule file: not the rest of the CA'],
    ['/t/gate-file', 'dave-a', 403, 'gate + rule file: not the rest of the CA (dave)'],
    ['/t/gate-file', 'alice-b', 403, 'gate + rule file: the listed subject from another CA'],
    ['/t/gate-allow', 'alice-a', 200, 'gate + MTLSAllow: that client of the CA'],
    ['/t/gate-allow', 'bob-a', 403, 'gate + MTLSAllow: not the whole CA'],
    ['/t/gate-allow', 'alice-b', 403, 'gate + MTLSAllow: the gate holds for MTLSAllow lines'],
    ['/t/gate-whole-ca', 'bob-a', 200, 'gate + a deliberate whole-CA rule: the whole CA'],
    ['/t/gate-whole-ca', 'alice-b', 403, 'gate + a deliberate whole-CA rule: not CA B'],
    ['/t/gate-req', 'alice-a', 200, 'Require mtls, gate + rule file: the listed client'],
    ['/t/gate-req', 'dave-a', 403, 'Require mtls, gate + rule file: not the whole CA'],

    # MTLSAllow
    ['/t/rule-subject', 'alice-a', 200, 'MTLSAllow subject='],
    ['/t/rule-subject', 'bob-a', 403, 'MTLSAllow subject= denies'],
    ['/t/rule-san', 'alice-a', 200, 'MTLSAllow san= twice, both hold'],
    ['/t/rule-san', 'upper-a', 403, 'MTLSAllow san= twice, one missing'],
    ['/t/rule-issuer', 'alice-b', 200, 'MTLSAllow issuer='],
    ['/t/rule-issuer', 'alice-a', 403, 'MTLSAllow issuer= denies'],
    ['/t/rule-cert', 'alice-a', 200, 'MTLSAllow cert='],
    ['/t/rule-cert', 'alice-b', 403, 'MTLSAllow cert= denies the same subject and SANs'],
    ['/t/partners', 'alice-a', 200, 'per-partner CA binding: alice via CA A'],
    ['/t/partners', 'alice-b', 403, 'per-partner CA binding: alice via CA B denied'],
    ['/t/partners', 'alice-b-spoof', 403, 'per-partner CA binding: appended CA ignored'],
    ['/t/partners', 'bob-a', 403, 'per-partner CA binding: bob via CA A denied'],
    ['/t/partners', 'alice-forged', 0, 'forged CA with the same DN: handshake refused'],

    # scopes
    ['/t/nested', 'alice-a', 200, 'outer scope'],
    ['/t/nested/inherit', 'alice-a', 200, 'nested scope inherits the rules'],
    ['/t/nested/inherit', 'bob-a', 403, 'nested scope inherits the denial'],
    ['/t/nested/replace', 'bob-a', 200, 'nested rules replace the inherited ones'],
    ['/t/nested/replace', 'alice-a', 403, 'inherited rules are gone where replaced'],
    ['/t/nested/off', 'bob-a', 200, 'MTLSAuthz Off in a nested scope'],
    ['/t/norule', 'alice-a', 403, 'MTLSAuthz On with no rule in scope denies'],
    ['/t/open', 'bob-a', 200, 'no MTLSAuthz: not enforced'],
    ['/dir/', 'alice-a', 200, '<Directory> scope allows'],
    ['/dir/', 'bob-a', 403, '<Directory> scope denies'],
    ['/rw/x', 'alice-a', 200, 'mod_rewrite passthrough to a protected location'],
    ['/rw/x', 'bob-a', 403, 'mod_rewrite passthrough is checked again'],
    ['/dirindex/', 'alice-a', 200, 'DirectoryIndex subrequest allowed'],
    ['/dirindex/', 'bob-a', 403, 'DirectoryIndex subrequest denied'],
    ['/htaccess/', 'alice-a', 200, '.htaccess under AuthConfig allows'],
    ['/htaccess/', 'bob-a', 403, '.htaccess under AuthConfig denies'],
    ['/htaccess/none/', 'bob-a', 403, 'AllowOverride None: .htaccess cannot turn it Off'],
    ['/htaccess/bad/', 'alice-a', 500, 'a malformed directive in .htaccess is a 500, never a 200'],
);

plan tests => scalar(@cases);

status_cases(@cases);
