#!/usr/bin/env bash
# Runs every test binary of each build folder given (default: build) and adds up the RESULT lines.
# Prints the closing line "tests: N passed, N failed, N skipped"; exits 1 when anything failed.
set -u
cd "$(dirname "$0")/.."
export OODSEG_ASSETS="${OODSEG_ASSETS:-../shared}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
dirs=("$@"); [ ${#dirs[@]} -eq 0 ] && dirs=(build)
pass=0; fail=0; skip=0; crashed=()
for d in "${dirs[@]}"; do
  for t in "$d"/tests/test_*; do
    [ -x "$t" ] || continue
    echo "== $t"
    start=$(date +%s)
    out=$("$t" 2> >(sed 's/^/   /' >&2))
    rc=$?
    echo "$out"
    line=$(echo "$out" | grep '^RESULT ' | tail -1)
    if [ -z "$line" ]; then
      crashed+=("$t (exit $rc)"); fail=$((fail+1)); continue
    fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -E 's/.* ([0-9]+) skipped.*/\1/')
    pass=$((pass+p)); fail=$((fail+f)); skip=$((skip+s))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then crashed+=("$t (exit $rc)"); fail=$((fail+1)); fi
    echo "   ($(( $(date +%s) - start )) s)"
  done
done
for c in "${crashed[@]+"${crashed[@]}"}"; do echo "CRASHED: $c"; done
echo "tests: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
