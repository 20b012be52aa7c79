#!/usr/bin/env bash
# Runs the Python package's tests (python/tests, with Debian's python3-pytest) against the package
# `make python` built in $B/python (default build), and prints one line for tools/run-tests.sh:
# "RESULT pytest: N passed, N failed, N skipped" (pytest's errors count as failures).
set -u
cd "$(dirname "$0")/.."
B="${B:-build}"
PY="${PYTHON:-/usr/bin/python3}"
export OODSEG_ASSETS="${OODSEG_ASSETS:-../shared}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
if ! "$PY" -c "import pytest, numpy" 2>/dev/null; then
  echo "pytest skipped: $PY lacks pytest or numpy (tools/install-deps.sh installs python3-pytest, python3-numpy)"
  echo "RESULT pytest: 0 passed, 0 failed, 1 skipped"
  exit 0
fi
out=$(PYTHONPATH="$B/python" OODSEG_BUILD="$B" "$PY" -m pytest -q -rs -p no:cacheprovider python/tests 2>&1)
rc=$?
echo "$out"
count() { echo "$out" | tail -1 | grep -oE "[0-9]+ $1" | grep -oE '[0-9]+' || echo 0; }
p=$(count passed); f=$(count failed); s=$(count skipped); e=$(count 'errors?')
f=$((f + e))
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1   # a collection error, no tests, an interrupted run
echo "RESULT pytest: $p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
