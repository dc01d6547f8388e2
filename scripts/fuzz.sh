#!/bin/sh
# Runs the libFuzzer targets built by `make fuzz-build`, one after the
# other: usage: fuzz.sh SECONDS TARGET...
#
# For each target: first every saved input under fuzz/regressions/TARGET/
# once (inputs that crashed it once), then fuzzing for SECONDS from the
# committed seeds (fuzz/corpus/TARGET/, never written to) plus what the
# earlier runs on this machine found (build/fuzz/corpus/TARGET/). Prints
# one line per target with its executions and result, and fails if any
# input crashed, leaked or timed out. What made it fail is kept in
# build/fuzz/artifacts/ with the log in build/fuzz/TARGET.log.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
secs=${1:?usage: fuzz.sh SECONDS TARGET...}
shift

# Leaks count as failures; UBSan findings stop the run (the targets are
# also built with -fno-sanitize-recover=all). A smaller ASan quarantine than
# the default 256 MB keeps the heap that each leak check scans small.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:symbolize=1:quarantine_size_mb=64"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

mkdir -p build/fuzz/artifacts
rc=0
summary=""
for t in "$@"; do
    bin=build/fuzz/fuzz_$t
    log=build/fuzz/$t.log
    work=build/fuzz/corpus/$t
    mkdir -p "$work"
    case $t in
    dn) max_len=1024 ;;
    rules) max_len=2048 ;;
    *) max_len=4096 ;;
    esac
    dict=""
    [ -f "fuzz/$t.dict" ] && dict="-dict=fuzz/$t.dict"
    # -timeout: seconds per input; -rss_limit_mb: memory per process.
    opts="-timeout=10 -rss_limit_mb=2048 -detect_leaks=1 -max_len=$max_len"

    : >"$log"
    result=ok
    regs=$(find "fuzz/regressions/$t" -type f ! -name '.*' 2>/dev/null | sort)
    nreg=$(printf '%s' "$regs" | grep -c . || true)
    if [ "$nreg" -gt 0 ]; then
        # shellcheck disable=SC2086
        if ! "$bin" $opts $regs >>"$log" 2>&1; then
            result="FAILED on a saved regression input"
        fi
    fi
    if [ "$result" = ok ]; then
        # shellcheck disable=SC2086
        if ! "$bin" $opts $dict -max_total_time="$secs" -print_final_stats=1 \
            -artifact_prefix="build/fuzz/artifacts/$t-" \
            "$work" "fuzz/corpus/$t" >>"$log" 2>&1; then
            result=FAILED
        fi
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "$result" != ok ]; then
        rc=1
        kind=$(grep -o -m 1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-z-]+|runtime error: .*' "$log" || true)
        art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        result="$result: ${kind:-see $log}${art:+ (input: $art)}"
    else
        result="ok: 0 crashes, 0 leaks, 0 timeouts"
    fi
    line=$(printf '%-6s %10s executions in %ss, %s regression inputs replayed, corpus %s files; %s' \
        "$t" "${execs:-0}" "$secs" "$nreg" "$(ls "$work" | wc -l)" "$result")
    echo "fuzz: $line"
    summary="$summary
$line"
done
echo "== fuzz summary$summary"
exit $rc
