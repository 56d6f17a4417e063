#!/bin/sh
# make bench: performance figures, printed and never asserted.
#  1. ns per span() from Lua: the hot path (1,000-span traces, the writer
#     keeping up), and the whole process for 100,000 traces of 10 spans
#  2. one trace of 1,000,000 spans: ns per span, peak memory; bytes stored per span
#  3. spans/s sustained into SQLite by the telemetry core's writer, and how
#     flat that stays up to a 10,000,000-span store
#  4. `moonspan report` over 1,000,000 stored spans, `show` of a 20,000-span trace,
#     `diff` of two runs of 100,000 traces x 10 spans
#  5. llm.call against tests/fake_llm on loopback: host overhead per call,
#     calls/s on one connection, llm.map at concurrency 1, 10, 50
#  6. granularity: what span() costs below the level, folded, recorded,
#     and a fine pipeline (2,000 steps a request) against no spans
#  7. the profiler: a CPU-bound script without and with --profile (1000 Hz),
#     the overhead measured and the profiler's own calibrated estimate
#  8. statistics: bootstrap intervals (p50, p95, mean) of two samples of
#     100,000 values, as `moonspan diff` computes them for one row
#  9. Prometheus metrics: a scrape of a stored store, and live --metrics-addr
# 10. moonspan ui: /api/traces, its total and one page, on 1,000,000 traces
# 11. moonspan ui: the trace page drawing a 20,001-span trace in Chromium
# 12. live OTLP export: the script's loop without and with --export, sent
#     to `moonspan serve --otlp` (a receiver in C, so the sender is measured)
BUILD=${BUILD:-build}
BIN=$BUILD/moonspan
tmp=$(mktemp -d "${TMPDIR:-/tmp}/moonspan-bench.XXXXXX")
fake_pid=
trap 'rm -rf "$tmp"; [ -z "$fake_pid" ] || kill "$fake_pid" 2>/dev/null' EXIT

now_ms() { date +%s%3N; }
best_ms() { # best wall time of 3 runs of a command, in ms
    best=
    for _ in 1 2 3; do
        t0=$(now_ms); "$@" >/dev/null || exit 1; t1=$(now_ms)
        d=$((t1 - t0)); [ -z "$best" ] || [ "$d" -lt "$best" ] && best=$d
    done
    echo "$best"
}

echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(uname -sr)"
echo

echo "1. span() from Lua, every span persisted"
for run in 1 2 3; do
    rm -f "$tmp/span.db"*
    t0=$(now_ms)
    "$BIN" --db "$tmp/span.db" run --quiet tests/bench/span_cost.lua 1000000 || exit 1
    t1=$(now_ms)
    echo "  hot path, run $run: whole process incl. startup and flush: $((t1 - t0)) ms for 2,000,000 spans"
done
for run in 1 2 3; do
    rm -f "$tmp/ten.db"*
    t0=$(now_ms)
    "$BIN" --db "$tmp/ten.db" run --quiet tests/bench/ten_span_traces.lua 100000 || exit 1
    t1=$(now_ms)
    echo "  whole process, 100,000 traces x 10 spans, run $run: $((t1 - t0)) ms:" \
         "$((t1 - t0)) ns per span (startup to exit, every span on disk)"
done
echo

echo "2. one trace of 1,000,000 spans"
for run in 1 2 3; do
    rm -f "$tmp/long.db"*
    t0=$(now_ms)
    rss=$("$BIN" --db "$tmp/long.db" run --quiet tests/bench/long_trace.lua 1000000) || exit 1
    t1=$(now_ms)
    echo "  run $run: $((t1 - t0)) ms, $((t1 - t0)) ns per span, $rss"
done
size=$(stat -c %s "$tmp/ten.db")
echo "  store size: $((size / 1000000)) bytes per empty span (100,000 traces x 10 spans, $size bytes)"
echo

echo "3. the writer"
for run in 1 2 3; do
    rm -f "$tmp/store.db"*
    "$BUILD/bench/bench_store" "$tmp/store.db" 100000 10 || exit 1
done
rm -f "$tmp/big.db"*
"$BUILD/bench/bench_store" "$tmp/big.db" 1000000 10 --blocks 100000 || exit 1
rm -f "$tmp/big.db"*
echo

echo "4. readers"
ms=$(best_ms "$BIN" --db "$tmp/store.db" report)
echo "moonspan report over 1,000,000 spans (100,000 traces): $ms ms (best of 3)"
ms=$(best_ms "$BIN" --db "$tmp/store.db" report --json)
echo "moonspan report --json over 1,000,000 spans:          $ms ms (best of 3)"
ms=$(best_ms "$BIN" --db "$tmp/store.db" report --since 7d)
echo "moonspan report --since 7d (about 11,700 traces):      $ms ms (best of 3)"
rm -f "$tmp/long.db"*
"$BIN" --db "$tmp/long.db" run --quiet tests/bench/long_trace.lua 20000 >/dev/null || exit 1
id=$("$BIN" --db "$tmp/long.db" sql --csv "SELECT trace_id FROM traces" | tail -1 | tr -d '\r')
ms=$(best_ms "$BIN" --db "$tmp/long.db" show "$id")
echo "moonspan show of a 20,000-span trace:                 $ms ms (best of 3)"
# ten.db holds one run of 100,000 ten-span traces from section 1: a second
"$BIN" --db "$tmp/ten.db" run --quiet tests/bench/ten_span_traces.lua 100000 || exit 1
ms=$(best_ms "$BIN" --db "$tmp/ten.db" diff 1 2)
echo "moonspan diff of two runs of 100,000 traces x 10 spans: $ms ms (best of 3)"

echo
echo "5. llm.call"
"$BUILD/fake_llm" --quiet --fixtures tests/fixtures >"$tmp/fake.port" &
fake_pid=$!
for _ in $(seq 100); do grep -q port= "$tmp/fake.port" 2>/dev/null && break; sleep 0.05; done
port=$(sed -n 's/^port=//p' "$tmp/fake.port")
[ -n "$port" ] || { echo "fake_llm did not start"; exit 1; }
OPENAI_BASE_URL="http://127.0.0.1:$port" "$BIN" --db "$tmp/llm.db" run --quiet tests/bench/llm_cost.lua 2000 || exit 1

echo
echo "6. granularity"
"$BIN" --db "$tmp/gran.db" run --quiet tests/bench/granularity.lua 1000000 || exit 1
for mode in none spans fold skipped rep; do
    best=
    for _ in 1 2 3; do
        rm -f "$tmp/fine.db"*
        ms=$("$BIN" --db "$tmp/fine.db" run --quiet tests/bench/fine_pipeline.lua $mode 20 | sed 's/^[a-z]* //') || exit 1
        best=$(echo "$ms ${best:-$ms}" | awk '{print ($1 < $2) ? $1 : $2}')
    done
    eval "fine_$mode=$best"
done
echo "  a fine pipeline, 20 requests x 2,000 steps (best of 3):"
for mode in none spans fold skipped rep; do
    eval "ms=\$fine_$mode"
    echo "$mode $ms $fine_none" | awk '{
        label["none"] = "no spans"; label["spans"] = "every step a span"
        label["fold"] = "every step folded, span(name, {fold = true}, fn)"
        label["skipped"] = "every step below the level"; label["rep"] = "every step timed by moonspan.fold"
        printf "    %-52s %7.1f ms  %+5.1f%%\n", label[$1], $2, 100 * ($2 - $3) / $3 }'
done
echo "7. the profiler: tests/bench/profile_cpu.lua (CPU-bound spans) without and with --profile"
"$BUILD/bench/bench_profile" tests/bench/profile_cpu.lua 60 60 2>&1 || exit 1
plain=
profiled=
for run in 1 2 3 4 5; do # interleaved, so a slower stretch of the VM hits both alike
    rm -f "$tmp/cpu.db"*
    t0=$(now_ms); "$BIN" --db "$tmp/cpu.db" run --quiet tests/bench/profile_cpu.lua 1500 || exit 1; t1=$(now_ms)
    d=$((t1 - t0)); [ -z "$plain" ] || [ "$d" -lt "$plain" ] && plain=$d
    rm -f "$tmp/cpu.db"*
    t0=$(now_ms); "$BIN" --db "$tmp/cpu.db" run --quiet --profile tests/bench/profile_cpu.lua 1500 || exit 1; t1=$(now_ms)
    d=$((t1 - t0)); [ -z "$profiled" ] || [ "$d" -lt "$profiled" ] && profiled=$d
done
echo "  whole process, best of 5: $plain ms without, $profiled ms with --profile:" \
     "$(awk -v a="$plain" -v b="$profiled" 'BEGIN { printf "%+.1f%%", 100 * (b - a) / a }')" \
     "(target <= 5%; on a shared VM this moves by more than that from run to run)"
rm -f "$tmp/cpu.db"*
"$BIN" --db "$tmp/cpu.db" run --profile tests/bench/profile_cpu.lua 1500 2>"$tmp/prof.err" >/dev/null || exit 1
echo "  the profiler's own estimate: $(grep '^profiler:' "$tmp/prof.err")"
echo

echo "8. statistics: bootstrap intervals of a diff row (2 x 100,000 latencies, 2,000 resamples)"
"$BUILD/bench/bench_stats" 100000 2000 || exit 1

echo
echo "9. Prometheus metrics"
"$BUILD/bench/bench_metrics" "$tmp/store.db" || exit 1
without=
with=
for run in 1 2 3 4 5; do # interleaved, as in 7
    rm -f "$tmp/live.db"*
    d=$("$BIN" --db "$tmp/live.db" run --quiet tests/bench/live_metrics.lua 2>&1 | sed -n 's/^loop \([0-9]*\) ms$/\1/p')
    [ -z "$without" ] || [ "$d" -lt "$without" ] && without=$d
    rm -f "$tmp/live.db"*
    d=$("$BIN" --db "$tmp/live.db" run --quiet --metrics-addr 127.0.0.1:0 tests/bench/live_metrics.lua 2>&1 |
        sed -n 's/^loop \([0-9]*\) ms$/\1/p')
    [ -z "$with" ] || [ "$d" -lt "$with" ] && with=$d
done
echo "  1,000,000 spans in the script's loop, best of 5: $without ms without, $with ms with --metrics-addr"
rm -f "$tmp/live.db"*

echo
echo "10. moonspan ui: /api/traces (total and one page) on a store of 1,000,000 traces"
rm -f "$tmp/ui.db"*
"$BIN" --db "$tmp/ui.db" run --quiet tests/bench/ui_traces.lua 1000000 || exit 1
"$BIN" --db "$tmp/ui.db" ui --addr 127.0.0.1:0 >"$tmp/ui.out" 2>&1 &
ui_pid=$!
for _ in $(seq 100); do grep -q '^moonspan ui: ' "$tmp/ui.out" && break; sleep 0.1; done
url=$(sed -n 's/^moonspan ui: //p' "$tmp/ui.out")
[ -n "$url" ] || { kill "$ui_pid"; echo "moonspan ui did not start: $(cat "$tmp/ui.out")"; exit 1; }
for q in "meta" "traces" "traces?sort=duration" "traces?sort=cost" "traces?user=u7" "traces?name=summarize" \
         "traces?tag=even" "traces?offset=500000"; do
    best=
    for _ in 1 2 3; do
        s=$(curl -s -o /dev/null -w '%{time_total}' "${url}api/$q") || { kill "$ui_pid"; exit 1; }
        ms=$(awk -v s="$s" 'BEGIN { printf "%d", s * 1000 }')
        [ -z "$best" ] || [ "$ms" -lt "$best" ] && best=$ms
    done
    echo "  GET /api/$q: $best ms (best of 3)"
done
kill "$ui_pid"
wait "$ui_pid" 2>/dev/null
rm -f "$tmp/ui.db"*

echo
echo "11. moonspan ui: the trace page (headless Chromium; tests/ui/node_modules from make deps)"
MOONSPAN_BIN="$(pwd)/$BIN" MOONSPAN_TEST_TMP="$tmp" node tests/ui/bench_waterfall.mjs || exit 1

echo
echo "12. live OTLP export (run --export) to moonspan serve --otlp on loopback"
rm -f "$tmp/rx.db"*
"$BIN" --db "$tmp/rx.db" serve --otlp 127.0.0.1:0 >"$tmp/rx.out" 2>&1 &
rx_pid=$!
for _ in $(seq 100); do grep -q 'OTLP/HTTP on ' "$tmp/rx.out" && break; sleep 0.1; done
rx_url=$(sed -n 's|.*OTLP/HTTP on \(http://[^/]*\)/v1/traces.*|\1|p' "$tmp/rx.out")
[ -n "$rx_url" ] || { kill "$rx_pid"; echo "serve --otlp did not start: $(cat "$tmp/rx.out")"; exit 1; }
without=
with=
wall=
for run in 1 2 3 4 5; do # interleaved, as in 7
    rm -f "$tmp/live.db"*
    d=$("$BIN" --db "$tmp/live.db" run --quiet tests/bench/live_metrics.lua 2>&1 | sed -n 's/^loop \([0-9]*\) ms$/\1/p')
    [ -z "$without" ] || [ "$d" -lt "$without" ] && without=$d
    rm -f "$tmp/live.db"*
    t0=$(now_ms)
    "$BIN" --db "$tmp/live.db" run --quiet --export "otlp=$rx_url" tests/bench/live_metrics.lua >"$tmp/live.out" 2>&1
    t1=$(now_ms)
    d=$(sed -n 's/^loop \([0-9]*\) ms$/\1/p' "$tmp/live.out")
    [ -z "$with" ] || [ "$d" -lt "$with" ] && with=$d
    [ -z "$wall" ] || [ $((t1 - t0)) -lt "$wall" ] && wall=$((t1 - t0))
done
kill "$rx_pid"
wait "$rx_pid" 2>/dev/null
echo "  1,000,000 spans in the script's loop, best of 5: $without ms without, $with ms with --export"
echo "  the run with --export, start to exit (every span sent and stored by the receiver): $wall ms (best of 5)"
echo "  $(grep 'exported' "$tmp/live.out" | tail -1)"
rm -f "$tmp/live.db"* "$tmp/rx.db"*
