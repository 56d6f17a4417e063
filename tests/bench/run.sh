#!/bin/sh
# make bench: performance figures, printed and never asserted.
#  1. ns per span() from Lua (empty body, persisted)
#  2. spans/s sustained into SQLite by the telemetry core's writer
#  3. `moonspan report` time over 1,000,000 stored spans
#  4. llm.call against tests/fake_llm on loopback: host overhead per call,
#     calls/s on one connection, llm.map at concurrency 1, 10, 50
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

for run in 1 2 3; do
    rm -f "$tmp/span.db"*
    t0=$(now_ms)
    "$BIN" --db "$tmp/span.db" run --quiet tests/bench/span_cost.lua 1000000 || exit 1
    t1=$(now_ms)
    echo "  run $run: whole process incl. startup and flush to disk: $((t1 - t0)) ms for 2,000,000 spans"
done
stored=$(sqlite3 "$tmp/span.db" "SELECT count(*) FROM spans")
echo "  stored spans (last run): $stored (2,000,000 + 1 root per 1,000-span trace)"
echo

for run in 1 2 3; do
    rm -f "$tmp/store.db"*
    "$BUILD/bench/bench_store" "$tmp/store.db" 100000 10 || exit 1
done
echo

ms=$(best_ms "$BIN" --db "$tmp/store.db" report)
echo "moonspan report over 1,000,000 spans (100,000 traces): $ms ms (best of 3)"
ms=$(best_ms "$BIN" --db "$tmp/store.db" report --json)
echo "moonspan report --json over 1,000,000 spans:          $ms ms (best of 3)"
ms=$(best_ms "$BIN" --db "$tmp/store.db" report --since 7d)
echo "moonspan report --since 7d (about 11,700 traces):      $ms ms (best of 3)"

echo
"$BUILD/fake_llm" --quiet --fixtures tests/fixtures >"$tmp/fake.port" &
fake_pid=$!
for _ in $(seq 100); do grep -q port= "$tmp/fake.port" 2>/dev/null && break; sleep 0.05; done
port=$(sed -n 's/^port=//p' "$tmp/fake.port")
[ -n "$port" ] || { echo "fake_llm did not start"; exit 1; }
OPENAI_BASE_URL="http://127.0.0.1:$port" "$BIN" --db "$tmp/llm.db" run --quiet tests/bench/llm_cost.lua 2000 || exit 1
