# Sourced by the tools/check-*.sh scripts. Each check is one `step NAME COMMAND...`, printed as it
# runs; `finish NAME` prints the RESULT line that tools/run-tests.sh adds up.
c_pass=0; c_fail=0; c_skip=0

# step NAME CMD...: runs CMD (a command or a function), its output indented; counts it.
step() {
  local name=$1; shift
  echo "- $name"
  "$@" 2>&1 | sed 's/^/   /'
  if [ "${PIPESTATUS[0]}" -eq 0 ]; then c_pass=$((c_pass+1))
  else echo "  -> FAILED $name"; c_fail=$((c_fail+1)); fi
}

finish() {
  echo "RESULT $1: $c_pass passed, $c_fail failed, $c_skip skipped"
  [ "$c_fail" -eq 0 ]
}

# A make started here is not a sub-make of the `make test` that runs the checks.
unset MAKEFLAGS MFLAGS MAKELEVEL
