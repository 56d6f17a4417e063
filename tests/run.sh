#!/bin/sh
# Runs every test — the C unit tests (cmocka) and the busted specs, which
# run inside the real binary — and ends with one line "N passed, N failed".
# Exits non-zero when anything failed. Called by `make test` / `make check`.
BUILD=${BUILD:-build}
passed=0
failed=0
out=$(mktemp -d "${TMPDIR:-/tmp}/moonspan-test.XXXXXX")
trap 'rm -rf "$out"' EXIT

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    "$t" >"$out/$name.log" 2>&1
    rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out/$name.log")
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out/$name.log")
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # crashed before reporting
    fi
    echo "$name: $p passed, $f failed"
    [ "$f" -eq 0 ] || cat "$out/$name.log"
    passed=$((passed + p))
    failed=$((failed + f))
done

# Specs run through `moonspan test`; the spec helpers find the binary and
# the fake servers through these variables.
MOONSPAN_BIN="$(pwd)/$BUILD/moonspan" MOONSPAN_TEST_TMP="$out" \
    "$BUILD/moonspan" --db "$out/specs.db" test -o TAP tests/spec >"$out/specs.log" 2>&1
rc=$?
p=$(grep -c '^ok ' "$out/specs.log")
f=$(grep -c '^not ok ' "$out/specs.log")
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1 # busted itself failed (a spec file that does not load, a crash)
fi
# what is not a passing test or the plan, with the diagnostics (`# ...`)
# of each failing one, so a CI log says why it failed
awk '/^not ok /{show=1; print; next} /^ok /{show=0; next} /^#/{if (show) print; next} {print}' \
    "$out/specs.log" | sed -n '1,600p'
echo "specs: $p passed, $f failed"
passed=$((passed + p))
failed=$((failed + f))

# Browser tests (tests/ui): `moonspan ui` driven in Debian's Chromium by
# puppeteer-core (make deps installs both). Top-level TAP lines count; a
# missing node, browser or node_modules is a failure, never a skip.
MOONSPAN_BIN="$(pwd)/$BUILD/moonspan" MOONSPAN_TEST_TMP="$out" \
    node --test --test-reporter=tap --test-concurrency=1 tests/ui/*.test.mjs >"$out/ui.log" 2>&1
rc=$?
p=$(grep -c '^ok ' "$out/ui.log")
f=$(grep -c '^not ok ' "$out/ui.log")
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1 # node itself failed (not installed, a test file that does not load)
fi
[ "$f" -eq 0 ] || sed -n '1,400p' "$out/ui.log"
echo "ui: $p passed, $f failed"
passed=$((passed + p))
failed=$((failed + f))

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
