#!/usr/bin/env bash
# Valgrind (memcheck) on one small end-to-end run: the tiny golden InternImage forward pass from
# its zip checkpoint, and a score run with the ESPNet CamVid model on one image at a small size.
# One thread, so the OpenMP runtime's own pools do not show up as leaks.
set -euo pipefail
cd "$(dirname "$0")/.."
A="${OODSEG_ASSETS:-../shared}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
vg=(valgrind --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite,indirect --quiet)
"${vg[@]}" build/oodseg forward --threads 1 --size native --model "$A/golden/tiny-t/model.pth" \
    --save "$out/t.safetensors" "$A/golden/tiny-t/image.png"
"${vg[@]}" build/oodseg score --threads 1 --size 240x176 --method maxlogit,kmeans \
    --model "$A/models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth" -o "$out/s" \
    "$A/data/camvid-ood/test_ood/0001TP_008550.png"
echo "valgrind: clean"
