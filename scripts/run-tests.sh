#!/usr/bin/env bash
# run-tests.sh: every suite, as `make test` and CI run them.
#   1. unit + integration tests (meson test) in build/
#   2. the same under ASan+UBSan in build-asan/
#   3. e2e: the official SDKs (tests/e2e, node --test) against build/polyglot-gw
#   4. short libFuzzer runs when clang is there (build-fuzz/)
# Ends with one line "N passed, N failed" summing every suite; exits 1 if
# anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
ASAN_BUILD=${ASAN_BUILD:-build-asan}
MESON_OPTS=${MESON_OPTS:--Dwerror=true}
RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT
status=0

say() { printf '\n==> %s\n' "$*"; }
record() { echo "$1 $2 $3" >>"$RESULTS"; }   # suite passed failed

setup() { # dir, extra meson options
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" $MESON_OPTS "$@" >"$dir.setup.log" 2>&1 || {
      cat "$dir.setup.log"; return 1; }
  fi
  ninja -C "$dir"
}

meson_suite() { # name, dir
  local name=$1 dir=$2
  meson test -C "$dir" --print-errorlogs --num-processes 2 \
    >"$dir/test-output.log" 2>&1
  local rc=$?
  tail -n 20 "$dir/test-output.log"
  [ $rc -eq 0 ] || grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT|ERROR)' "$dir/test-output.log"
  python3 scripts/count-tests.py "$dir/meson-logs/testlog.json" "$name" >>"$RESULTS" || record "$name" 0 1
  [ $rc -eq 0 ] || status=1
}

say "build ($BUILD)"
if setup "$BUILD"; then
  say "unit + integration"
  meson_suite unit+integration "$BUILD"
else
  record build 0 1; status=1
fi

say "build under ASan+UBSan ($ASAN_BUILD)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
if setup "$ASAN_BUILD" -Db_sanitize=address,undefined -Db_lundef=false; then
  say "unit + integration under ASan+UBSan"
  meson_suite asan "$ASAN_BUILD"
else
  record asan-build 0 1; status=1
fi
unset ASAN_OPTIONS UBSAN_OPTIONS

say "e2e (official SDKs against $BUILD/polyglot-gw)"
if [ -x "$BUILD/polyglot-gw" ]; then
  ( cd tests/e2e && { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund >/dev/null; } ) \
    || { echo "npm ci failed"; record e2e 0 1; status=1; }
  POLYGLOT_GW="$PWD/$BUILD/polyglot-gw" node --test --test-reporter=tap \
    --test-concurrency=1 tests/e2e/ >"$BUILD/e2e.tap" 2>&1
  rc=$?
  grep -E '^(not ok|# (pass|fail))' "$BUILD/e2e.tap"
  [ $rc -eq 0 ] || { tail -n 60 "$BUILD/e2e.tap"; status=1; }
  p=$(awk '/^# pass /{print $3}' "$BUILD/e2e.tap"); f=$(awk '/^# fail /{print $3}' "$BUILD/e2e.tap")
  record e2e "${p:-0}" "${f:-1}"
else
  record e2e 0 1; status=1
fi

if [ -f scripts/fuzz.sh ] && command -v clang >/dev/null; then
  say "fuzz (short runs)"
  if bash scripts/fuzz.sh "${FUZZ_SECONDS:-5}"; then record fuzz 1 0; else record fuzz 0 1; status=1; fi
fi

say "summary"
awk '{printf "%-18s %d passed, %d failed\n", $1, $2, $3; p+=$2; f+=$3}
     END {printf "%d passed, %d failed\n", p, f}' "$RESULTS"
if awk '{f+=$3} END {exit f>0 ? 0 : 1}' "$RESULTS"; then status=1; fi
exit $status
