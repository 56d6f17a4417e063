#!/bin/sh
# Runs one fuzz target for FUZZ_SECONDS; called by `make fuzz` for each.
#   sh tests/fuzz/run.sh TARGET [DICT]
# The corpus it grows lives in $BUILD/fuzz-corpus/TARGET, seeded from
# tests/fuzz/corpus/TARGET, so the repository stays clean and a second run
# starts where the first stopped. Prints one line, or on a crash the
# error, the input and the command that reproduces it; exits 1 then.
BUILD=${BUILD:-build-fuzz}
t=$1
dict=${2:-}
bin=$BUILD/fuzz/$t
work=$BUILD/fuzz-corpus/$t
crashes=$BUILD/fuzz-crashes/$t
log=$BUILD/fuzz-logs/$t.log
mkdir -p "$work" "$crashes" "$(dirname "$log")"
cp tests/fuzz/corpus/"$t"/* "$work"/

"$bin" -max_total_time="${FUZZ_SECONDS:-60}" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$crashes/" ${dict:+-dict="$dict"} \
    "$work" >"$log" 2>&1
rc=$?

runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')

if [ "$rc" -eq 0 ]; then
    echo "fuzz $t: ${runs:-?} runs in ${FUZZ_SECONDS:-60}s, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}: no crash"
    exit 0
fi

input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
echo "fuzz $t: FAILED (libFuzzer exit $rc) after ${runs:-?} runs; log $log"
# the report from the first error line on: the broken invariant or the
# Lua error (the Lua harness starts its line with "fuzz TARGET:"), or the
# sanitizer's report, then its stack and the input
sed -n "/invariant broken\|^fuzz $t: \|^==[0-9]*==ERROR\|runtime error\|ALARM\|out-of-memory\|deadly signal/,\$p" "$log" |
    grep -v '^MS: \|^stat::' | head -n 60
if [ -n "$input" ]; then
    echo "reproduce:  $bin $input"
    echo "keep it:    cp $input tests/fuzz/corpus/$t/NAME  (a regression input; fix, then make fuzz)"
fi
exit 1
