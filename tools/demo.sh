#!/usr/bin/env bash
# The main job on the default model: recognise it, then score a few CamVid-OOD road images with
# MaxLogit and the paper's K-Means method, writing score maps and pictures to out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
A="${OODSEG_ASSETS:-../shared}"
bin=build/oodseg
model="$A/models/espnetv2/espnetv2_s_2.0_city_1024x512.pth"
if [ ! -f "$model" ]; then
  echo "demo: the default model is missing: $model" >&2
  echo "      get it from https://github.com/sacmehta/EdgeNets (model/segmentation/model_zoo/espnetv2/)" >&2
  echo "      SHA-256 a72d59699801c7ce8e8b89a53af9097eaaa60dc12180ecde86fd700ba1222fe8" >&2
  echo "      falling back to the tiny golden InternImage model:" >&2
  $bin info "$A/golden/tiny-t/model.safetensors"
  $bin forward --model "$A/golden/tiny-t/model.safetensors" --size native --save out/demo/tiny-t.safetensors "$A/golden/tiny-t/image.png"
  exit 0
fi
mkdir -p out/demo
$bin info "$model"
imgs=()
for s in 0001TP_008550 0001TP_008610 0001TP_008670; do
  f="$A/data/camvid-ood/test_ood/$s.png"; [ -f "$f" ] && imgs+=("$f")
done
[ ${#imgs[@]} -gt 0 ] || imgs=("$(ls "$A"/data/camvid-ood/test_ood/*.png | head -3)")
$bin score --method maxlogit,kmeans -o out/demo "${imgs[@]}"
echo
echo "demo: wrote score maps (.npy) and pictures to out/demo/:"
ls out/demo | sed 's/^/  /'
