#!/usr/bin/env bash
# The full test assets: where each large file comes from and its SHA-256 (tools/assets.sha256).
# The repository carries only the default model, three demo images and small test fixtures; the
# rest (every released ESPNet / ESPNetv2 checkpoint, the 233 CamVid-OOD frames and masks, the
# golden tensors) lives in an assets folder that the tests find through $OODSEG_ASSETS.
#
#   tools/fetch-assets.sh --list          print every asset: path, SHA-256, upstream URL
#   tools/fetch-assets.sh [DEST]          download what has a public URL into DEST (default
#                                         $OODSEG_ASSETS, else ../shared), checking each SHA-256
#   tools/fetch-assets.sh --verify [DEST] check the SHA-256 of every asset present in DEST
#
# Upstream sources, pinned to the commits the files were taken from:
#   models/espnet/...    sacmehta/ESPNet (MIT), folder pretrained/ and LICENSE
#   models/espnetv2/...  sacmehta/EdgeNets (MIT), folder model/segmentation/model_zoo/espnetv2/ and LICENSE
#   data/camvid-ood/...  quanghuy0497/ObsNet_OOD_Segmentation, folder Datasets/CamVid/ (research use;
#                        cite Brostow et al. 2008/2009 and Besnier et al. 2021, see assets/README.md)
#   golden/...           generated with the official PyTorch code (see golden/README.md in the
#                        assets); no public URL, so they are only verified, never downloaded.
# The InternImage UperNet checkpoints the code also reads (not used by the tests) come from the
# model hub repository OpenGVLab/InternImage, e.g. upernet_internimage_l_512x1024_160k_cityscapes.pth.
# No test runs this script.
set -euo pipefail
cd "$(dirname "$0")/.."
manifest=tools/assets.sha256

ESPNET=https://github.com/sacmehta/ESPNet/raw/afe71c38edaee3514ca44e0adcafdf36109bf437
EDGENETS=https://github.com/sacmehta/EdgeNets/raw/2b232d3f7fb60658755dad1ebca0ffc895cc795e
OBSNET=https://github.com/quanghuy0497/ObsNet_OOD_Segmentation/raw/3947d871f012e71909b9cf1b363a7720d6441375

# The upstream URL of an asset path, or nothing when it has none.
url_of() {
  case "$1" in
    models/espnet/LICENSE)            echo "$ESPNET/LICENSE" ;;
    models/espnet/*)                  echo "$ESPNET/${1#models/espnet/}" ;;
    models/espnetv2/LICENSE)          echo "$EDGENETS/LICENSE" ;;
    models/espnetv2/*)                echo "$EDGENETS/model/segmentation/model_zoo/espnetv2/${1#models/espnetv2/}" ;;
    data/camvid-ood/*)                echo "$OBSNET/Datasets/CamVid/${1#data/camvid-ood/}" ;;
    *)                                echo "" ;;
  esac
}

mode=fetch
case "${1:-}" in --list) mode=list; shift ;; --verify) mode=verify; shift ;; -h|--help) sed -n '2,24p' "$0"; exit 0 ;; esac
dest="${1:-${OODSEG_ASSETS:-../shared}}"

if [ "$mode" = list ]; then
  while read -r sum path; do
    u=$(url_of "$path"); printf '%s  %s  %s\n' "$sum" "$path" "${u:-(generated, no public URL)}"
  done < "$manifest"
  exit 0
fi

get() {  # URL FILE
  if command -v curl >/dev/null; then curl -fsSL -o "$2" "$1"; else wget -q -O "$2" "$1"; fi
}

bad=0; missing=0; fetched=0
while read -r sum path; do
  f="$dest/$path"
  if [ "$mode" = fetch ] && [ ! -f "$f" ]; then
    u=$(url_of "$path")
    if [ -z "$u" ]; then missing=$((missing+1)); continue; fi
    mkdir -p "$(dirname "$f")"
    if ! get "$u" "$f.part"; then echo "fetch-assets: could not download $u" >&2; rm -f "$f.part"; bad=$((bad+1)); continue; fi
    mv "$f.part" "$f"; fetched=$((fetched+1))
  fi
  [ -f "$f" ] || { missing=$((missing+1)); continue; }
  got=$(sha256sum "$f" | cut -d' ' -f1)
  if [ "$got" != "$sum" ]; then echo "fetch-assets: $f: SHA-256 $got, expected $sum" >&2; bad=$((bad+1)); fi
done < "$manifest"
echo "fetch-assets: $dest: $fetched downloaded, $bad wrong or failed, $missing missing (goldens have no public URL)"
[ "$bad" -eq 0 ]
