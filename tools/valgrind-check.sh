#!/usr/bin/env bash
# Valgrind (memcheck) over small runs, on the release build in build/:
#   tools/valgrind-check.sh [e2e|api|all|full]   (default e2e; .ci/run runs all)
#   e2e: the tiny golden InternImage forward pass, and a score run with MaxLogit and K-Means on one
#        CamVid-OOD frame at a small size (the ESPNet CamVid model from $OODSEG_ASSETS when present,
#        else the default model in assets/);
#   api: every build/examples/* program, on the smallest model at hand (the ESPNet CamVid model,
#        whose own test size is 480x360; else the default model) with the arguments listed below
#        (an example not listed fails the run until it is added), and build/tests/test_api;
#   all: e2e and api;
#   full: all, and build/tests/test_api_score, whose workload (the default model at 1024x512, some
#        30 forward passes) takes about an hour under memcheck; `make test` runs it under ASan +
#        UBSan (LeakSanitizer included) instead.
# One OpenMP thread where the command takes a thread count, so that the runtime's own pools do not
# show up as leaks. Any memcheck error or definite/indirect leak fails the run (exit status 9), and
# the script names every run that failed.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-e2e}
case "$mode" in e2e|api|all|full) ;; *) echo "usage: $0 [e2e|api|all|full]" >&2; exit 2 ;; esac
A="${OODSEG_ASSETS:-../shared}"
# A wait policy of our own keeps oodseg from executing itself again (cli/wait_policy.c), which would
# leave valgrind's process and run the rest natively, unchecked.
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
  small=$A/models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth
  [ -f "$small" ] || small=assets/models/espnetv2/espnetv2_s_2.0_city_1024x512.pth
  frame=assets/demo/test_ood/0001TP_008550.png
  for bin in build/examples/*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    case "$name" in
      run_model) args=("$small" "$frame") ;;
      score_folder) args=(assets/demo/test_ood assets/demo/testannot_ood 12 11 "$small") ;;
      score_folder.py) continue ;;
      *) echo "valgrind: examples/$name has no arguments in $0: add them"; failed+=("examples/$name"); continue ;;
    esac
    run "examples/$name ${args[*]}" "$bin" "${args[@]}"
  done
  run build/tests/test_api build/tests/test_api
  # test_api_score's API calls without its ~30 forwards at 1024x512 (those run in `full`):
  # metrics, evaluators, curves, merged states, datasets and their errors.
  export OODSEG_TEST_ONLY=metrics_and_evaluator,curves_and_merged_states,datasets_and_errors
  run "test_api_score (metrics, evaluator, datasets)" build/tests/test_api_score
  unset OODSEG_TEST_ONLY
  [ "$mode" = full ] && run build/tests/test_api_score build/tests/test_api_score
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "valgrind: ${#failed[@]} run(s) failed:"; printf '  %s\n' "${failed[@]}"
  exit 9
fi
echo "valgrind: clean ($mode)"
