#!/usr/bin/env bash
# Runs the libFuzzer targets built by `make fuzz` (fuzz/targets.c), each for SECONDS, one after the
# other: tools/fuzz.sh BUILD SECONDS TARGET...
# Seeds are made afresh in BUILD/seeds/ (fuzz/make-seeds.py, from $OODSEG_ASSETS when present);
# what a target finds interesting accumulates in BUILD/corpus/<target>/ over runs; a crash, leak,
# timeout or over-limit allocation is written to BUILD/findings/<target>/ and fails the run: add
# it to fuzz/regressions/<target>/ once fixed. Each run appends a line to BUILD/fuzz-stats.tsv
# (date, commit, target, seconds, executions, cov, ft, result) for RELIABILITY.md.
set -uo pipefail
B=$1; SECONDS_EACH=$2; shift 2
ASSETS=${OODSEG_ASSETS:-../shared}
[ -d "$ASSETS" ] || ASSETS=""
rm -rf "$B/seeds"
/usr/bin/python3 fuzz/make-seeds.py "$B/seeds" $ASSETS || exit 1
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
failed=0
for t in "$@"; do
  mkdir -p "$B/corpus/$t" "$B/findings/$t" "$B/seeds/$t"
  dirs=("$B/corpus/$t" "$B/seeds/$t")
  [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
  log="$B/fuzz-$t.log"
  # -rss_limit_mb: a parser that needs far more than its input is a finding (memory amplification).
  # -max_len: the 100 KB regression inputs would otherwise make every mutation that long.
  "$B/fuzz/fuzz_$t" -max_total_time="$SECONDS_EACH" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$B/findings/$t/" "${dirs[@]}" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last"); ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  result=ok; [ $rc -ne 0 ] && { result="FINDING (see $log)"; failed=1; }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%F)" "$commit" "$t" "$SECONDS_EACH" "${execs:-?}" \
      "${cov:-?}" "${ft:-?}" "$result" | tee -a "$B/fuzz-stats.tsv"
done
exit $failed
