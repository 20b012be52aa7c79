#!/usr/bin/env bash
# Installs the Debian packages oodseg needs, skipping those already present.
#   build: gcc, make, pkg-config (the install check), OpenBLAS (OpenMP build), libpng, libjpeg-turbo, libwebp, zlib
#   tests: python3-numpy, python3-sklearn, python3-opencv, python3-pil (reference values computed
#          at test time by the reference libraries themselves)
#   `install-deps.sh fuzz` (make fuzz only): clang and its libFuzzer runtime, and the build
#          libraries and python3-numpy/python3-pil that fuzz/make-seeds.py writes seeds with
set -euo pipefail
pkgs=(gcc make pkg-config libopenblas-openmp-dev libpng-dev libjpeg62-turbo-dev libwebp-dev zlib1g-dev
      python3-numpy python3-sklearn python3-opencv python3-pil)
[ "${1:-}" = fuzz ] && pkgs=(clang libclang-rt-dev libomp-dev make libopenblas-openmp-dev libpng-dev
      libjpeg62-turbo-dev libwebp-dev zlib1g-dev python3-numpy python3-pil)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
