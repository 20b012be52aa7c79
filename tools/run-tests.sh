#!/usr/bin/env bash
# Runs every test binary of each build folder given (default: build), and each check script given
# (tools/check-*.sh), and adds up their RESULT lines ("RESULT name: N passed, N failed, N skipped").
# Prints the closing line "tests: N passed, N failed, N skipped"; exits 1 when anything failed.
# tools/run-pytest.sh runs the Python package's pytest suite as one such script.
#   tools/run-tests.sh build build-san tools/check-install.sh tools/run-pytest.sh
set -u
cd "$(dirname "$0")/.."
export OODSEG_ASSETS="${OODSEG_ASSETS:-../shared}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
args=("$@"); [ ${#args[@]} -eq 0 ] && args=(build)
pass=0; fail=0; skip=0; crashed=()

run_one() {
  local t=$1
  echo "== $t"
  local start; start=$(date +%s)
  local out rc
  out=$("$t" 2> >(sed 's/^/   /' >&2))
  rc=$?
  echo "$out"
  local line; line=$(echo "$out" | grep '^RESULT ' | tail -1)
  if [ -z "$line" ]; then
    crashed+=("$t (exit $rc)"); fail=$((fail+1)); return
  fi
  local p f s
  p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
  f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
  s=$(echo "$line" | sed -E 's/.* ([0-9]+) skipped.*/\1/')
  pass=$((pass+p)); fail=$((fail+f)); skip=$((skip+s))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then crashed+=("$t (exit $rc)"); fail=$((fail+1)); fi
  echo "   ($(( $(date +%s) - start )) s)"
}

for a in "${args[@]}"; do
  if [ -d "$a" ]; then
    for t in "$a"/tests/test_*; do
      [ -x "$t" ] && run_one "$t"
    done
  elif [ -x "$a" ]; then
    run_one "$a"
  else
    crashed+=("$a (neither a build folder nor a check script)"); fail=$((fail+1))
  fi
done
for c in "${crashed[@]+"${crashed[@]}"}"; do echo "CRASHED: $c"; done
echo "tests: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
