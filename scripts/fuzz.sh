#!/usr/bin/env bash
# fuzz.sh SECONDS: builds the libFuzzer targets with clang (ASan+UBSan) in
# build-fuzz/ and runs each for SECONDS, starting from its seed corpus in
# tests/fuzz/corpus/<target>/ (new inputs go to build-fuzz/corpus/).
# `make test` runs it for a few seconds per target; `make fuzz` longer.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
command -v clang >/dev/null || { echo "fuzz: clang not installed"; exit 1; }
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=true \
    -Db_sanitize=address,undefined -Db_lundef=false >build-fuzz.setup.log 2>&1 \
    || { cat build-fuzz.setup.log; exit 1; }
fi
ninja -C build-fuzz >/dev/null
targets=$(find build-fuzz/tests/fuzz -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x 2>/dev/null | sort)
[ -n "$targets" ] || { echo "fuzz: no targets built"; exit 1; }
fail=0
for t in $targets; do
  name=$(basename "$t")
  mkdir -p "build-fuzz/corpus/$name"
  seeds="tests/fuzz/corpus/$name"
  [ -d "$seeds" ] || seeds=""
  if "$t" -max_total_time="$secs" -max_len=65536 -print_final_stats=1 \
       "build-fuzz/corpus/$name" $seeds >"build-fuzz/$name.log" 2>&1; then
    echo "fuzz: $name ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "build-fuzz/$name.log" | awk '{print $2}') runs in ${secs}s)"
  else
    echo "fuzz: $name FAILED"; tail -n 40 "build-fuzz/$name.log"; fail=1
  fi
done
exit $fail
