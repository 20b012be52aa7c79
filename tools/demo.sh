#!/usr/bin/env bash
# The main job on the default model, from the repository alone: recognise the model, then score
# the three CamVid-OOD demo frames (assets/demo/) with MaxLogit and the paper's K-Means method,
# writing score maps (.npy) and pictures to out/demo/, then evaluate both against the frames'
# masks (AP, FPR95, AUROC over three images: a smoke test, not a benchmark). No --model: the CLI
# finds the default model itself ($OODSEG_ASSETS if set, else assets/models/ beside the build;
# see core/paths.h).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/oodseg
mkdir -p out/demo
$bin info assets/models/espnetv2/espnetv2_s_2.0_city_1024x512.pth
$bin score --method maxlogit,kmeans -o out/demo assets/demo/test_ood/*.png
$bin eval --dataset camvid-ood:assets/demo --methods maxlogit,kmeans -o out/demo/report
echo
echo "demo: wrote score maps (.npy) and pictures to out/demo/:"
ls out/demo | sed 's/^/  /'
