#!/usr/bin/env bash
# Valgrind (memcheck) on one small end-to-end run: the tiny golden InternImage forward pass, and a
# score run with MaxLogit and K-Means on one CamVid-OOD frame at a small size (the ESPNet CamVid
# model from $OODSEG_ASSETS when present, else the default model in assets/).
# One thread, so the OpenMP runtime's own pools do not show up as leaks.
set -euo pipefail
cd "$(dirname "$0")/.."
# A wait policy of our own keeps oodseg from executing itself again (cli/wait_policy.c), which would
# leave valgrind's process and run the rest natively, unchecked.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
A="${OODSEG_ASSETS:-../shared}"
# A file of the full assets, else its copy in the repository (tests/fixtures/ has the same layout).
asset() { if [ -f "$A/$1" ]; then echo "$A/$1"; else echo "tests/fixtures/$1"; fi; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
vg=(valgrind --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite,indirect --quiet)
tiny=$A/golden/tiny-t/model.pth; [ -f "$tiny" ] || tiny=$(asset golden/tiny-t/model.safetensors)
"${vg[@]}" build/oodseg forward --threads 1 --size native --model "$tiny" \
    --save "$out/t.safetensors" "$(asset golden/tiny-t/image.png)"
model=$A/models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth; size=240x176
[ -f "$model" ] || { model=assets/models/espnetv2/espnetv2_s_2.0_city_1024x512.pth; size=256x128; }
"${vg[@]}" build/oodseg score --threads 1 --size "$size" --method maxlogit,kmeans \
    --model "$model" -o "$out/s" assets/demo/test_ood/0001TP_008550.png
echo "valgrind: clean"
