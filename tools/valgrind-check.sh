#!/usr/bin/env bash
# Valgrind (memcheck) over small runs, on the release build in build/:
#   tools/valgrind-check.sh [e2e|api|all]       (default e2e; .ci/run runs all)
#   e2e: the tiny golden InternImage forward pass, and a score run with MaxLogit and K-Means on one
#        CamVid-OOD frame at a small size (the ESPNet CamVid model from $OODSEG_ASSETS when present,
#        else the default model in assets/);
#   api: every build/examples/* program with the arguments of its `// check-args:` line (as
#        tools/check-install.sh runs them: @MODEL@ the tiny golden InternImage when present, else
#        the default model; @IMAGE@ its small image; @DEMO@ assets/demo), and every
#        build/tests/test_api* program.
# One OpenMP thread where the command takes a thread count, so that the runtime's own pools do not
# show up as leaks. Any memcheck error or definite/indirect leak fails the run (exit status 9), and
# the script names every run that failed.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-e2e}
case "$mode" in e2e|api|all) ;; *) echo "usage: $0 [e2e|api|all]" >&2; exit 2 ;; esac
A="${OODSEG_ASSETS:-../shared}"
export OODSEG_ASSETS="$A" OMP_WAIT_POLICY=passive
# A file of the full assets, else its copy in the repository (tests/fixtures/ has the same layout).
asset() { if [ -f "$A/$1" ]; then echo "$A/$1"; else echo "tests/fixtures/$1"; fi; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
vg=(valgrind --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite,indirect --quiet)
failed=()
run() {  # NAME COMMAND...: one run under valgrind, timed
  local name=$1 t0=$SECONDS
  shift
  if "${vg[@]}" "$@" >"$out/log" 2>&1; then
    echo "valgrind: ok   $name ($((SECONDS - t0)) s)"
  else
    echo "valgrind: FAIL $name ($((SECONDS - t0)) s):"; tail -40 "$out/log"; failed+=("$name")
  fi
}

tiny=$A/golden/tiny-t/model.pth; [ -f "$tiny" ] || tiny=$(asset golden/tiny-t/model.safetensors)
tiny_image=$(asset golden/tiny-t/image.png)
if [ "$mode" != api ]; then
  run "oodseg forward (tiny InternImage)" build/oodseg forward --threads 1 --size native --model "$tiny" \
      --save "$out/t.safetensors" "$tiny_image"
  model=$A/models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth; size=240x176
  [ -f "$model" ] || { model=assets/models/espnetv2/espnetv2_s_2.0_city_1024x512.pth; size=256x128; }
  run "oodseg score (maxlogit, kmeans)" build/oodseg score --threads 1 --size "$size" --method maxlogit,kmeans \
      --model "$model" -o "$out/s" assets/demo/test_ood/0001TP_008550.png
fi
if [ "$mode" != e2e ]; then
  for bin in build/examples/*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    src=examples/$name.c
    [ -f "$src" ] || continue
    a=$(sed -n 's|^// *check-args: *||p' "$src" | head -1)
    a=${a:-@MODEL@ @IMAGE@}
    a=${a//@MODEL@/$tiny}; a=${a//@IMAGE@/$tiny_image}; a=${a//@DEMO@/assets/demo}
    # shellcheck disable=SC2086  # the argument line is split into words on purpose
    run "examples/$name $a" "$bin" $a
  done
  for t in build/tests/test_api*; do
    [ -x "$t" ] && run "$t" "$t"
  done
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "valgrind: ${#failed[@]} run(s) failed:"; printf '  %s\n' "${failed[@]}"
  exit 9
fi
echo "valgrind: clean ($mode)"
