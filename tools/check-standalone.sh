#!/usr/bin/env bash
# The repository stands on its own, without the full assets ($OODSEG_ASSETS, ../shared):
#   1. every test binary that reads assets runs with OODSEG_ASSETS set to an empty folder: none
#      fails, the core tests below really run from tests/fixtures/ (they pass, not skip), and the
#      others skip; each binary's counts are added to this check's RESULT line;
#   2. a copy of the working tree (the files git would commit) in a fresh folder, with no ../shared
#      beside it and OODSEG_ASSETS unset, runs `make demo`, which writes score maps and pictures.
# Uses the release build in $B (default build) for 1; 2 builds the library and the CLI afresh.
# Run by `make test` through tools/run-tests.sh.
set -u
cd "$(dirname "$0")/.."
. tools/check-lib.sh
B="${B:-build}"
tmp=$(mktemp -d /tmp/oodseg-standalone-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/empty"

# binary:test pairs that must pass from the fixtures alone: the engine (tiny InternImage golden),
# a real model (ESPNetv2 golden) and the metrics (scikit-learn goldens).
core=(test_internimage:golden_tiny_t_safetensors test_internimage:image_path_tiny_t
      test_dcnv3:golden_tiny_t test_espnet:golden_small_espnetv2_city
      test_resize:golden_espnetv2_logits test_preprocess:espnetv2_city_small
      test_preprocess:mmseg_tiny_t_native test_metrics:golden_case1_tiny
      test_metrics:golden_case2_ties test_metrics:golden_case3_ignore
      test_cli:info_names_architecture test_cli:score_tiny_internimage_end_to_end)

t_pass=0; t_fail=0; t_skip=0
for src in $(grep -l 't_asset\|ASSET_OR_SKIP' tests/test_*.c); do
  t=$(basename "$src" .c)
  [ -x "$B/tests/$t" ] || { echo "- $t"; echo "  -> FAILED: $B/tests/$t is not built"; t_fail=$((t_fail+1)); continue; }
  OODSEG_ASSETS="$tmp/empty" "$B/tests/$t" > "$tmp/$t.log" 2>&1
  rc=$?
  line=$(grep '^RESULT ' "$tmp/$t.log" | tail -1)
  if [ -z "$line" ]; then
    echo "- $t (assets: an empty folder)"; sed 's/^/   /' "$tmp/$t.log" | tail -20
    echo "  -> FAILED $t: crashed (exit $rc)"; t_fail=$((t_fail+1)); continue
  fi
  p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
  f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
  s=$(echo "$line" | sed -E 's/.* ([0-9]+) skipped.*/\1/')
  [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
  echo "- $t (assets: an empty folder): $p passed, $f failed, $s skipped"
  [ "$f" -eq 0 ] || sed -n '/FAIL/p' "$tmp/$t.log" | sed 's/^/   /'
  t_pass=$((t_pass+p)); t_fail=$((t_fail+f)); t_skip=$((t_skip+s))
done

# A core test ran iff its "- name" line is there and no "-> skipped/FAILED name" follows.
core_ran() {
  local bad=0 c t n
  for c in "${core[@]}"; do
    t=${c%%:*}; n=${c#*:}
    if ! grep -qx -- "- $n" "$tmp/$t.log" 2>/dev/null; then echo "$t: no test $n"; bad=1
    elif grep -q -- "-> \(skipped\|FAILED\) $n\$" "$tmp/$t.log"; then
      echo "$t: $n did not pass from tests/fixtures/:"; grep -A3 -x -- "- $n" "$tmp/$t.log"; bad=1
    fi
  done
  [ "$bad" -eq 0 ] && echo "${#core[@]} core tests passed from tests/fixtures/"
  return $bad
}
step "core tests run from tests/fixtures/" core_ran

# The files git would commit (tracked and untracked-not-ignored), symbolic links kept.
copy_tree() {
  mkdir -p "$tmp/clone/oodseg" || return 1
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard |
      tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$tmp/clone/oodseg"
  else
    tar --exclude=./build --exclude=./build-san --exclude=./out -cf - . | tar -xf - -C "$tmp/clone/oodseg"
  fi
}

demo_in_copy() {
  local d=$tmp/clone/oodseg
  [ ! -e "$d/../shared" ] || { echo "$d/../shared exists"; return 1; }
  env -u OODSEG_ASSETS make -C "$d" -j"$(nproc)" demo > "$tmp/demo.log" 2>&1 ||
    { tail -30 "$tmp/demo.log"; return 1; }
  grep -v '^cc \|^ar \|^rm -f\|^sed \|^make' "$tmp/demo.log" | head -4
  local n_npy n_png
  n_npy=$(find "$d/out/demo" -name '*_score.npy' | wc -l)
  n_png=$(find "$d/out/demo" -name '*.png' | wc -l)
  echo "out/demo: $n_npy score maps, $n_png pictures"
  [ "$n_npy" -ge 6 ] && [ "$n_png" -ge 6 ]
}
step "copy of the working tree without ../shared" copy_tree
step "make demo in the copy, OODSEG_ASSETS unset" demo_in_copy

echo "RESULT check-standalone: $((c_pass+t_pass)) passed, $((c_fail+t_fail)) failed, $t_skip skipped" \
     "(skipped: tests whose assets are not in tests/fixtures/)"
[ $((c_fail+t_fail)) -eq 0 ]
