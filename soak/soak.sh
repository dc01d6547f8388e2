#!/usr/bin/env bash
# soak/soak.sh [all|main|graceful|smoke] - the soak and graceful-restart runs
# behind `make soak` and `make soak-smoke` (HACKING.md, "Soak").
#
# Each run starts httpd (event MPM) with this tree's module in a temporary
# ServerRoot, on a free loopback port, with a PKI that openssl makes for
# the run, and drives it with build/soak-client: keep-alive HTTPS requests
# from six client certificates, four allowed by different kinds of rule
# and two denied, each response checked against the status expected for
# its certificate.
#
#   main      SOAK_REQUESTS (default 1,000,000) requests; wrong decisions
#             and transport errors must be 0, keep-alive must hold (no
#             reconnection), and the children's RSS growth from the
#             warm-up sample (after 5% of the requests) to the end may
#             exceed that of the same load on httpd without the module
#             (run first) by less than SOAK_RSS_LIMIT_KB (1024).
#   graceful  SOAK_GRACEFUL_REQUESTS (default 200,000) requests with two
#             graceful restarts (httpd -k graceful) under load, after 25%
#             and 50%: one with the same configuration, one that adds a
#             rule; the load goes on (past the count if need be) until
#             20% more have been answered after the second has finished. No request may be lost or answered wrongly, and
#             after the second restart the new rule decides.
#   all       main, then graceful (the default; `make soak`).
#
# In both, soak/poll-status.py polls the status handler (SetHandler
# mtls-authz-status on a plain-HTTP virtual host of the same httpd, on a
# second port, Require ip 127.0.0.1) every SOAK_POLL_EVERY seconds (1) in
# its three formats (HTML, ?json, ?prometheus) while the load runs: every
# answer must be 200 with a body that parses, and no rule's count may go
# down. The RSS samples are of the same children, so the polling is part
# of what the RSS verdict judges; the baseline run polls a static file of
# that virtual host at the same rate. After the main run, the counts of
# the status page must be the client's, exactly: decisions by outcome and
# reason, admissions per rule, requests per recently seen client. After
# the graceful run, the four rules of the first configuration must have
# kept their counts (since = httpd's start) and the added one must have
# started at the second restart.
#   smoke     both, with a few thousand requests, no RSS verdict
#             (`make soak-smoke`).
#
# Other knobs: SOAK_CONNS (connections per certificate, default 2),
# SOAK_TIME_LIMIT (seconds per client run, default 1800), SOAK_KEEP=1
# (keep the temporary directory), SOAK_BASELINE=1 (the same load on httpd
# and mod_ssl without this module, every certificate allowed: to tell
# the module's share of memory growth and time from httpd's).
set -euo pipefail
umask 022

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
APXS=${APXS:-$(command -v apxs2 2>/dev/null || command -v apxs)}
httpd=${SOAK_HTTPD:-"$($APXS -q SBINDIR)/$($APXS -q progname)"}
libexec=$($APXS -q LIBEXECDIR)
client=$top/build/soak-client
module=$top/.libs/mod_mtls_authz.so
poller=$top/soak/poll-status.py
poll_every=${SOAK_POLL_EVERY:-1}
poll_pid=""

mode=${1:-all}
case $mode in
all | main | graceful | smoke) ;;
*)
    echo "usage: $0 [all|main|graceful|smoke]" >&2
    exit 2
    ;;
esac
conns=${SOAK_CONNS:-2}
time_limit=${SOAK_TIME_LIMIT:-1800}
rss_limit_kb=${SOAK_RSS_LIMIT_KB:-1024}
if [ "$mode" = smoke ]; then
    main_requests=${SOAK_REQUESTS:-6000}
    graceful_requests=${SOAK_GRACEFUL_REQUESTS:-40000}
else
    main_requests=${SOAK_REQUESTS:-1000000}
    graceful_requests=${SOAK_GRACEFUL_REQUESTS:-200000}
fi

for f in "$client" "$module" "$httpd" "$poller"; do
    [ -e "$f" ] || {
        echo "soak: $f is missing (run make)" >&2
        exit 2
    }
done

work=$(mktemp -d /tmp/mtls-soak.XXXXXX)
chmod 755 "$work"
pki=$work/pki
conf=$work/httpd.conf
pid=""
baseline=${SOAK_BASELINE:-0}
failures=()

fail() {
    failures+=("$*")
    echo "soak: FAIL: $*"
}

stop_httpd() {
    stop_poller
    [ -n "$pid" ] || return 0
    "$httpd" -f "$conf" -k stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "soak: httpd $pid did not stop; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    pid=""
}

cleanup() {
    stop_httpd
    if [ "${SOAK_KEEP:-}" = 1 ]; then
        echo "soak: kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- PKI ----------------------------------------------------------------------
ossl() {
    local log=$work/openssl.log
    openssl "$@" >"$log" 2>&1 || {
        cat "$log" >&2
        echo "soak: openssl $1 failed" >&2
        exit 2
    }
}
newkey() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/$1.key"; }
ca() { # NAME SUBJECT
    newkey "$1"
    ossl req -x509 -new -key "$pki/$1.key" -subj "$2" -days 2 -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$pki/$1.crt"
}
leaf() { # NAME ISSUER SUBJECT EXTENSIONS
    newkey "$1"
    ossl req -new -key "$pki/$1.key" -subj "$3" -out "$pki/$1.csr"
    printf '%s\n' "$4" >"$pki/$1.ext"
    ossl x509 -req -in "$pki/$1.csr" -CA "$pki/$2.crt" -CAkey "$pki/$2.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days 2 -sha256 \
        -extfile "$pki/$1.ext" -out "$pki/$1.crt"
    cat "$pki/$1.crt" "$pki/$1.key" >"$pki/$1.pem"
}
fingerprint() {
    local f
    f=$(openssl x509 -in "$pki/$1.crt" -noout -fingerprint -sha256)
    f=${f#*=}
    echo "${f//:/}"
}

make_pki() {
    local org="/O=mod_mtls_authz soak" client="extendedKeyUsage=clientAuth"
    mkdir -p "$pki"
    ca ca1 "$org/CN=Soak CA 1"
    ca ca2 "$org/CN=Soak CA 2"
    leaf server ca1 "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
    # Allowed, each by a different kind of rule (see write_conf).
    leaf by-subject ca1 "$org/CN=by-subject" "$client"
    leaf by-san ca1 "$org/CN=by-san" "$client
subjectAltName=URI:spiffe://soak.test/ns/prod/sa/worker,DNS:worker.soak.test"
    leaf by-issuer ca1 "$org/CN=by-issuer" "$client"
    leaf by-cert ca2 "$org/CN=by-cert" "$client"
    # Denied: a subject no rule lists (allowed by the rule that the
    # second graceful restart adds), and by-issuer's subject from the
    # other CA, which the server trusts but the rule does not pin.
    leaf unlisted ca1 "$org/CN=unlisted" "$client"
    leaf wrong-issuer ca2 "$org/CN=by-issuer" "$client"
    cat "$pki/ca1.crt" "$pki/ca2.crt" >"$pki/trust.crt"
    chmod 644 "$pki"/*
}

# The expected status of each certificate for configuration generation 1
# and 2, in soak-client's NAME=PEM=STATUS,STATUS form.
cert_args() {
    local spec
    if [ "$baseline" = 1 ]; then
        for spec in by-subject by-san by-issuer by-cert unlisted wrong-issuer; do
            echo "--cert=$spec=$pki/$spec.pem=200,200"
        done
        return
    fi
    for spec in by-subject:200,200 by-san:200,200 by-issuer:200,200 \
        by-cert:200,200 unlisted:403,200 wrong-issuer:403,403; do
        echo "--cert=${spec%%:*}=$pki/${spec%%:*}.pem=${spec#*:}"
    done
}

# ---- httpd --------------------------------------------------------------------
free_port() {
    perl -MIO::Socket::INET -e '
        my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0,
            Proto => "tcp", Listen => 1, ReuseAddr => 1) or die "bind: $!";
        print $s->sockport, "\n";'
}

loadmodule() { # NAME: unless it is built into httpd
    if [ -f "$libexec/mod_$1.so" ]; then
        echo "<IfModule !${1}_module>"
        echo "    LoadModule ${1}_module \"$libexec/mod_$1.so\""
        echo "</IfModule>"
    fi
}

# write_conf GENERATION ACCESS_LOG(0|1)
write_conf() {
    local gen=$1 access=$2 m
    {
        echo "# generated by soak/soak.sh; generation $gen"
        echo "ServerRoot \"$work\""
        echo "ServerName 127.0.0.1"
        echo "Listen 127.0.0.1:$port"
        echo "Listen 127.0.0.1:$status_port"
        echo "PidFile \"$work/httpd.pid\""
        echo "DefaultRuntimeDir \"$work/run\""
        echo "ErrorLog \"$work/logs/error.log\""
        echo "LogLevel warn"
        # socache_shmcb: the recently seen clients' default cache.
        for m in mpm_event unixd authz_core authz_host headers log_config \
            socache_shmcb ssl; do
            loadmodule "$m"
        done
        [ "$baseline" = 1 ] ||
            echo "LoadModule mtls_authz_module \"$module\""
        if [ "$(id -u)" = 0 ]; then
            echo "User nobody"
            echo "Group $(id -gn nobody)"
        fi
        cat <<EOF

# A fixed set of children: two of 32 threads, never more or fewer, never
# recycled, so the RSS samples compare the same processes. With fewer
# threads than connections in a child, the event MPM closes idle
# keep-alive connections. ServerLimit leaves slots for a new generation
# while the old one finishes its connections after a graceful restart.
StartServers 2
ServerLimit 4
ThreadsPerChild 32
MaxRequestWorkers 64
MinSpareThreads 1
MaxSpareThreads 64
MaxConnectionsPerChild 0
# Keep-alive holds for the whole run.
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 120
Timeout 60

DocumentRoot "$work/htdocs"
<Directory "$work/htdocs">
    Require all granted
</Directory>
# Names the configuration that answered, for 200s and 403s alike.
Header always set X-Soak-Gen "$gen"
EOF
        if [ "$access" = 1 ]; then
            echo 'LogFormat "%{X-Soak-Id}i %>s %{X-Soak-Gen}o %P %{%s}t.%{msec_frac}t" soak'
            echo "CustomLog \"$work/logs/access.log\" soak"
        fi
        cat <<EOF

SSLEngine on
SSLCertificateFile "$pki/server.crt"
SSLCertificateKeyFile "$pki/server.key"
SSLCACertificateFile "$pki/trust.crt"
SSLVerifyClient require
SSLVerifyDepth 2

<IfModule mtls_authz_module>
<Location />
    MTLSAuthz On
    # one-field directive
    MTLSAllowSubject "CN=by-subject,O=mod_mtls_authz soak"
    # SAN rule (URI prefix)
    MTLSAllow "san=URI:spiffe://soak.test/ns/prod/*"
    # subject pinned to the issuing CA
    MTLSAllow "subject=CN=by-issuer,O=mod_mtls_authz soak" issuer=sha256:$FP_CA1
    # one certificate
    MTLSAllow cert=sha256:$FP_BY_CERT
EOF
        if [ "$gen" -ge 2 ]; then
            echo "    # added by the second graceful restart"
            echo "    MTLSAllow \"subject=CN=unlisted,O=mod_mtls_authz soak\""
        fi
        echo "</Location>"
        echo "</IfModule>"
        cat <<EOF

# The status page, polled during the load (soak/poll-status.py): plain
# HTTP, loopback only; its requests in a log of their own, so that the
# access log holds the client's requests only.
<VirtualHost 127.0.0.1:$status_port>
    SSLEngine off
    CustomLog "$work/logs/status-access.log" "%h %t \"%r\" %>s %b"
    <Location /mtls-status>
        Require ip 127.0.0.1
EOF
        # MTLSAuthz Off: the server-wide <Location /> above covers this
        # host too, and would refuse plain HTTP.
        [ "$baseline" = 1 ] || printf '%s\n' "        SetHandler mtls-authz-status" \
            "        MTLSAuthz Off"
        echo "    </Location>"
        echo "</VirtualHost>"
    } >"$conf.new"
    mv "$conf.new" "$conf"
}

start_httpd() { # ACCESS_LOG(0|1)
    port=$(free_port)
    status_port=$(free_port)
    while [ "$status_port" = "$port" ]; do status_port=$(free_port); done
    mkdir -p "$work/logs" "$work/run" "$work/htdocs"
    echo ok >"$work/htdocs/ok.txt"
    write_conf 1 "$1"
    "$httpd" -t -f "$conf" >"$work/configtest.log" 2>&1 || {
        cat "$work/configtest.log" >&2
        echo "soak: httpd -t failed" >&2
        exit 2
    }
    "$httpd" -DFOREGROUND -f "$conf" </dev/null >>"$work/logs/stdout.log" 2>&1 &
    pid=$!
    # Up when both children run and the port answers.
    for _ in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || break
        if [ "$(children | wc -w)" -ge 2 ] &&
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "soak: httpd $pid (event MPM) on 127.0.0.1:$port, children $(children)"
            return 0
        fi
        sleep 0.1
    done
    cat "$work/logs/error.log" "$work/logs/stdout.log" >&2 || true
    echo "soak: httpd did not start" >&2
    exit 2
}

children() { # pids of httpd's children, sorted (one process, it is quick)
    perl -e 'my ($pp, @c) = shift;
        for my $st (glob "/proc/[0-9]*/stat") {
            open my $f, "<", $st or next;
            my $l = <$f> // next;
            $l =~ s/^.*\) //s;
            push @c, $st =~ m{(\d+)} if (split / /, $l)[1] == $pp;
        }
        print join(" ", sort { $a <=> $b } @c), "\n";' "$pid"
}

count() { # PATTERN FILE: lines matching (extended regexp)
    grep -cE "$1" "$2" 2>/dev/null || true
}

# Crash traces and child deaths in the error log.
check_error_log() {
    local bad
    bad=$(grep -E 'exit signal|Segmentation|segfault|AddressSanitizer|runtime error|double free|corrupted|AH00050|AH00060' \
        "$work/logs/error.log" | head -n 5 || true)
    [ -z "$bad" ] || fail "error log: $bad"
}

kv() { sed -n "s/^$1=//p" "$2" | head -n 1; }

# ---- the status handler, polled --------------------------------------------------
start_poller() { # WHAT: in the background until stop_poller
    poll_out=$work/poll-$1.out
    rm -f "$work/poll.stop" "$poll_out"
    local url=http://127.0.0.1:$status_port/mtls-status plain=()
    if [ "$baseline" = 1 ]; then
        url=http://127.0.0.1:$status_port/ok.txt
        plain=(--plain)
    fi
    python3 "$poller" --url "$url" --stop "$work/poll.stop" --out "$poll_out" \
        --every "$poll_every" "${plain[@]}" &
    poll_pid=$!
}

stop_poller() {
    [ -n "$poll_pid" ] || return 0
    touch "$work/poll.stop"
    # One poll is at most three requests of 10 s each.
    for _ in $(seq 400); do
        kill -0 "$poll_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -TERM "$poll_pid" 2>/dev/null || true
    wait "$poll_pid" 2>/dev/null || true
    poll_pid=""
}

# The poller's verdict: every answer 200 and parseable, at least one poll.
check_poller() { # WHAT
    local what=$1
    stop_poller
    if [ ! -s "$poll_out" ]; then
        fail "$what: the status poller wrote no summary"
        return
    fi
    echo "  status polls: $(kv polls "$poll_out") ($(kv answers "$poll_out") answers," \
        "$(kv answers_ok "$poll_out") ok)"
    sed -n 's/^failure=/    /p' "$poll_out"
    [ "$(kv polls "$poll_out")" -ge 1 ] 2>/dev/null ||
        fail "$what: the status handler was never polled"
    [ "$(kv failures "$poll_out")" = 0 ] ||
        fail "$what: $(kv failures "$poll_out") status answers failed (above)"
}

# The status page's counts as key=value lines (poll-status.py --summary).
status_summary() { # OUT
    python3 "$poller" --summary "http://127.0.0.1:$status_port/mtls-status" >"$1" || true
}

first() { echo "${1%% *}"; } # the first word

# After the main run, the status page counts what the client counted:
# every request decided once, attributed to its rule, and every request of
# each admitted certificate in its recently-seen entry (brought up to
# date when its connections close: the client has closed them, so it may
# take the server a moment).
check_counts_main() { # CLIENT_OUT
    local out=$1 sum=$work/status-main.out want got i r cert clients_ok=0
    for _ in $(seq 50); do
        status_summary "$sum"
        clients_ok=1
        for cert in by-subject by-san by-issuer by-cert; do
            [ "$(kv "client_$cert" "$sum")" = "$(first "$(kv "cert_$cert" "$out")")" ] ||
                clients_ok=0
        done
        [ "$clients_ok" = 1 ] && break
        sleep 0.2
    done
    echo "  status page after the run:"
    sed 's/^/    /' "$sum"
    [ -z "$(kv error "$sum")" ] || {
        fail "soak: the status page: $(kv error "$sum")"
        return
    }
    want="$(kv status_200 "$out") $(first "$(kv cert_unlisted "$out")") $(first "$(kv cert_wrong-issuer "$out")")"
    got="$(kv decision_admitted_rule "$sum") $(kv decision_denied_no_rule_matched "$sum") $(kv decision_denied_issuer_not_allowed "$sum")"
    [ "$want" = "$got" ] ||
        fail "soak: decisions admitted/rule, denied/no_rule_matched, denied/issuer_not_allowed: status page $got, client $want"
    [ "$(grep -c '^decision_' "$sum")" = 3 ] ||
        fail "soak: the status page has decisions the client did not cause: $(grep '^decision_' "$sum" | tr '\n' ' ')"
    i=0
    for cert in by-subject by-san by-issuer by-cert; do
        i=$((i + 1))
        r=$(kv "rule_$i" "$sum")
        [ "$(first "$r")" = "$(first "$(kv "cert_$cert" "$out")")" ] ||
            fail "soak: rule $i ($cert's): $(first "$r") admissions on the status page, $(first "$(kv "cert_$cert" "$out")") answered 200"
        [ "$(echo "$r" | cut -d' ' -f2)" = 0 ] ||
            fail "soak: rule $i ($cert's): $(echo "$r" | cut -d' ' -f2) denials, none expected"
    done
    [ "$(kv seen_cache "$sum")" = shmcb ] ||
        fail "soak: seen_cache is '$(kv seen_cache "$sum")', not shmcb (mod_socache_shmcb is loaded)"
    [ "$(kv clients "$sum")" = 4 ] ||
        fail "soak: $(kv clients "$sum") recently seen clients, 4 admitted certificates"
    [ "$clients_ok" = 1 ] ||
        fail "soak: the recently seen clients' request counts are not the client's cert_* counts"
}

run_client() { # OUT [soak-client options]: runs it with the hard limit
    local out=$1 rc=0
    shift
    timeout -k 10 $((time_limit + 60)) "$client" --port "$port" \
        --ca "$pki/ca1.crt" --conns "$conns" --time-limit "$time_limit" \
        $(cert_args) "$@" >"$out" || rc=$?
    return $rc
}

# The client's own verdict, in words.
check_client() { # OUT RC WHAT
    local out=$1 rc=$2 what=$3
    [ "$rc" = 124 ] && fail "$what: the client hit the hard time limit"
    [ "$(kv wrong "$out")" = 0 ] || fail "$what: $(kv wrong "$out") wrong decisions"
    [ "$(kv transport_errors "$out")" = 0 ] ||
        fail "$what: $(kv transport_errors "$out") transport errors"
    [ "$(kv answered "$out")" = "$(kv requests "$out")" ] ||
        fail "$what: $(kv answered "$out") of $(kv requests "$out") requests answered"
    [ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "$what: soak-client exited with $rc"
}

# ---- main: many requests, decisions and RSS ------------------------------------
# Sets $growth to the children's RSS growth in KiB.
run_main() { # REQUESTS RSS_VERDICT(none|BASELINE_GROWTH_KB)
    local n=$1 verdict=$2 out=$work/main-$baseline.out rc=0 warm end denied what
    what=soak
    [ "$baseline" = 1 ] && what="baseline (httpd without the module)"
    echo "== $what: $n requests over $((conns * 6)) keep-alive connections"
    start_httpd 0
    start_poller main
    run_client "$out" --requests "$n" --rss-pid "$pid" --warmup 0.05 \
        --rss-every $(((n + 19) / 20)) || rc=$?
    sed 's/^/  /' "$out"
    check_poller "$what"
    check_client "$out" "$rc" "$what"
    [ "$baseline" = 1 ] || check_counts_main "$out"
    # No reconnection: keep-alive held for every connection.
    [ "$(kv connections "$out")" = "$(kv conns_planned "$out")" ] ||
        fail "$what: $(kv connections "$out") connections, $(kv conns_planned "$out") planned"
    # The module logs one line per denial: as many as 403s seen.
    denied=$(count '\] client denied' "$work/logs/error.log")
    [ "$denied" = "$(kv status_403 "$out")" ] ||
        fail "$what: $denied denial log lines, $(kv status_403 "$out") 403 responses"
    check_error_log
    warm=$(kv warm_rss_kb "$out")
    end=$(kv end_rss_kb "$out")
    growth=$((${end:-0} - ${warm:-0}))
    echo "  rss: warm-up ${warm:-?} KiB, end ${end:-?} KiB, growth $growth KiB" \
        "(children $(kv warm_pids "$out") -> $(kv end_pids "$out"))"
    if [ -z "$warm" ] || [ -z "$end" ]; then
        fail "$what: no RSS sample"
    elif [ "$(kv warm_pids "$out")" != "$(kv end_pids "$out")" ]; then
        fail "$what: the children changed during the run; RSS not comparable"
    else
        case $verdict in
        none) echo "  (no RSS verdict for this run)" ;;
        *)
            echo "  rss growth beyond the baseline's: $((growth - verdict)) KiB" \
                "(limit $rss_limit_kb)"
            [ $((growth - verdict)) -lt "$rss_limit_kb" ] ||
                fail "$what: RSS grew by $growth KiB, $((growth - verdict)) KiB more than httpd without the module (limit $rss_limit_kb)"
            ;;
        esac
    fi
    stop_httpd
}

# ---- graceful: restarts under load ----------------------------------------------
wait_for_generation() { # N: until the error log says the Nth start is done
    for _ in $(seq 300); do
        [ "$(count 'resuming normal operations' "$work/logs/error.log")" -ge "$1" ] &&
            return 0
        sleep 0.1
    done
    fail "graceful: restart $(($1 - 1)) did not finish within 30 s"
    return 1
}

wait_for_file() { # FILE CLIENT_PID
    while [ ! -e "$1" ]; do
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.02
    done
}

graceful() { # WHAT
    "$httpd" -f "$conf" -k graceful >"$work/graceful.log" 2>&1 ||
        fail "graceful: httpd -k graceful failed: $(cat "$work/graceful.log")"
    echo "  $(date -u +%T.%N | cut -c1-12) graceful restart: $1"
}

run_graceful() { # REQUESTS
    local n=$1 out=$work/graceful.out verify=$work/verify.out rc=0 cpid
    local first=$((n / 4)) second=$((n / 2)) log=$work/logs/access.log
    local lost_logged logged distinct answered total
    echo "== graceful restarts: $n requests over $((conns * 6)) keep-alive connections," \
        "restarts after $first and $second answers, load until $((n / 5)) answers after the second"
    start_httpd 1
    start_poller graceful
    run_client "$out" --requests "$n" --retry \
        --unanswered-log "$work/unanswered.txt" \
        --mark "$first:$work/mark1" --mark "$second:$work/mark2" \
        --until "$work/restarted:$((n / 5))" &
    cpid=$!
    # 1: same configuration.
    if wait_for_file "$work/mark1" "$cpid"; then
        graceful "same configuration"
        wait_for_generation 2 || true
    fi
    # 2: one more rule, and X-Soak-Gen 2.
    if wait_for_file "$work/mark2" "$cpid"; then
        write_conf 2 1
        graceful "MTLSAllow for CN=unlisted added"
        wait_for_generation 3 || true
    fi
    # The client goes on until n/5 more answers after this.
    touch "$work/restarted"
    wait "$cpid" || rc=$?
    sed 's/^/  /' "$out"
    # Which child answered what, in order: the restarts replaced them.
    echo "  answered by (pid: requests, configuration generation):"
    awk '!($4 in n) { order[++k] = $4; gen[$4] = $3 } { n[$4]++ }
        END { for (i = 1; i <= k; i++) print "    " order[i] ": " n[order[i]] ", " gen[order[i]] }' "$log"
    check_client "$out" "$rc" graceful
    [ "$(count 'SIGUSR1 received' "$work/logs/error.log")" = 2 ] ||
        fail "graceful: the error log does not show two graceful restarts"
    [ "$(kv generation_2 "$out")" -gt 0 ] 2>/dev/null ||
        fail "graceful: no answer came from the new configuration during the run"

    # Lost = sent and never answered. The client retried (on a new
    # connection) only requests that got no byte of an answer; the
    # access log must show that the server never processed those.
    lost_logged=$(awk 'NR == FNR { sent[$1] = 1; next } ($1 in sent) { n++ }
        END { print n + 0 }' "$work/unanswered.txt" "$log")
    logged=$(awk '$1 != "-" { n++ } END { print n + 0 }' "$log")
    distinct=$(awk '$1 != "-" { sub(/-[0-9]+$/, "", $1); seen[$1] = 1 }
        END { print length(seen) }' "$log")
    answered=$(kv answered "$out")
    total=$(kv requests "$out")
    echo "  unanswered and retried: $(kv retried "$out"), of which the server had" \
        "processed: $lost_logged"
    echo "  access log: $logged requests logged, $distinct distinct," \
        "client answered $answered"
    local lost=$((lost_logged + $(kv lost_sent "$out")))
    echo "  lost requests: $lost"
    [ "$lost" = 0 ] || fail "graceful: $lost requests lost"
    [ "$logged" = "$answered" ] && [ "$distinct" = "$total" ] ||
        fail "graceful: the server processed $logged requests ($distinct distinct) for $total sent"
    [ "$(count '^- ' "$log")" = 0 ] ||
        fail "graceful: $(count '^- ' "$log") log lines without a request id"

    # After the restarts: fresh connections, every answer from generation
    # 2, CN=unlisted now allowed.
    rc=0
    run_client "$verify" --requests $((conns * 6 * 500)) --require-gen 2 || rc=$?
    echo "  after the restarts:"
    sed 's/^/    /' "$verify"
    check_client "$verify" "$rc" "after the restarts"
    check_poller graceful
    [ "$baseline" = 1 ] || check_counts_graceful "$out" "$verify"
    [ "$(kv connections "$verify")" = "$(kv conns_planned "$verify")" ] ||
        fail "after the restarts: $(kv connections "$verify") connections, $(kv conns_planned "$verify") planned"
    check_error_log
    stop_httpd
}

# After the graceful run: the first configuration's four rules kept their
# counts through both restarts (their since is httpd's start, and the
# poller saw no count go down), the added rule started at the second
# restart and admitted CN=unlisted. And little was lost on the way: a
# request that an old child is serving when the parent carries the counts
# over (at most one per connection and restart) counts in the old
# generation's memory only (docs/status.md, "Restarts"); otherwise every
# request the client saw admitted, in both runs (the load with the
# restarts, then the check on fresh connections), is one admission of its
# rule and one admitted decision, every request refused for its issuer
# one such decision. The recently seen clients' requests: a connection
# open across a restart may lose up to a minute of them, so between what
# the fresh connections of the check made and what all runs made.
# Is COUNTED what ANSWERED says, short by at most the requests in flight
# at the two restarts?
near() { # COUNTED ANSWERED
    [ "$1" -le "$2" ] 2>/dev/null && [ "$1" -ge $(($2 - 2 * conns * 6)) ]
}

check_counts_graceful() { # CLIENT_OUT VERIFY_OUT
    local out=$1 verify=$2 sum=$work/status-graceful.out i r cert n
    local admitted rules_sum=0 seen_sum
    status_summary "$sum"
    status_summary "$sum"
    echo "  status page after the restarts:"
    sed 's/^/    /' "$sum"
    [ -z "$(kv error "$sum")" ] || {
        fail "graceful: the status page: $(kv error "$sum")"
        return
    }
    for i in 1 2 3 4; do
        r=$(kv "rule_$i" "$sum")
        [ "$(echo "$r" | cut -d' ' -f3)" = 1 ] ||
            fail "graceful: rule $i: since is not httpd's start (its counts were reset): $r"
        [ "$(first "$r")" -gt 0 ] 2>/dev/null || fail "graceful: rule $i: no admissions: $r"
    done
    r=$(kv rule_5 "$sum")
    if [ -z "$r" ]; then
        fail "graceful: the added rule is not on the status page"
    else
        [ "$(echo "$r" | cut -d' ' -f4)" = 1 ] ||
            fail "graceful: the added rule's since is not the last restart: $r"
        [ "$(first "$r")" -gt 0 ] 2>/dev/null ||
            fail "graceful: the added rule admitted nobody: $r"
    fi
    i=0
    for cert in by-subject by-san by-issuer by-cert; do
        i=$((i + 1))
        n=$(($(first "$(kv "cert_$cert" "$out")") + $(first "$(kv "cert_$cert" "$verify")")))
        r=$(first "$(kv "rule_$i" "$sum")")
        near "$r" "$n" ||
            fail "graceful: rule $i ($cert's): $r admissions on the status page, $n answered 200"
    done
    for i in 1 2 3 4 5; do
        rules_sum=$((rules_sum + $(first "$(kv "rule_$i" "$sum")")))
    done
    admitted=$(($(kv status_200 "$out") + $(kv status_200 "$verify")))
    near "$(kv decision_admitted_rule "$sum")" "$admitted" ||
        fail "graceful: $(kv decision_admitted_rule "$sum") admitted decisions on the status page, $admitted answered 200"
    near "$rules_sum" "$admitted" ||
        fail "graceful: the rules' admissions add up to $rules_sum, $admitted answered 200"
    n=$(($(first "$(kv cert_wrong-issuer "$out")") + $(first "$(kv cert_wrong-issuer "$verify")")))
    near "$(kv decision_denied_issuer_not_allowed "$sum")" "$n" ||
        fail "graceful: $(kv decision_denied_issuer_not_allowed "$sum") issuer_not_allowed decisions, $n such 403s"
    seen_sum=$(sed -n 's/^client_[^=]*=//p' "$sum" | awk '{ n += $1 } END { print n + 0 }')
    [ "$seen_sum" -le "$admitted" ] && [ "$seen_sum" -ge "$(kv status_200 "$verify")" ] ||
        fail "graceful: the recently seen clients' requests add up to $seen_sum, $admitted answered 200 ($(kv status_200 "$verify") on fresh connections after the restarts)"
}

echo "soak: httpd $httpd, module $module, work dir $work"
make_pki
FP_CA1=$(fingerprint ca1)
FP_BY_CERT=$(fingerprint by-cert)
# The RSS verdict: httpd 2.4 with mod_ssl grows by itself on long
# keep-alive TLS connections (HACKING.md, "Soak"), so the module is judged
# by how much more its run grows than the same load without it.
main_with_baseline() {
    local base
    if [ "$baseline" = 1 ]; then
        run_main "$main_requests" none
        return
    fi
    baseline=1
    run_main "$main_requests" none
    base=$growth
    baseline=0
    run_main "$main_requests" "$base"
}
case $mode in
main) main_with_baseline ;;
graceful) run_graceful "$graceful_requests" ;;
all)
    main_with_baseline
    run_graceful "$graceful_requests"
    ;;
smoke)
    run_main "$main_requests" none
    run_graceful "$graceful_requests"
    ;;
esac

if [ ${#failures[@]} -eq 0 ]; then
    echo "soak ($mode): PASS"
else
    echo "soak ($mode): FAIL (${#failures[@]} problems)"
    exit 1
fi
