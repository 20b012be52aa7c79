#!/usr/bin/env bash
# Installs the Debian packages oodseg needs, skipping those already present.
#   build: gcc, make, pkg-config (the install check), OpenBLAS (OpenMP build), libpng, libjpeg-turbo, libwebp, zlib
#   tests: python3-numpy, python3-sklearn, python3-opencv, python3-pil (reference values computed
#          at test time by the reference libraries themselves)
set -euo pipefail
pkgs=(gcc make pkg-config libopenblas-openmp-dev libpng-dev libjpeg62-turbo-dev libwebp-dev zlib1g-dev
      python3-numpy python3-sklearn python3-opencv python3-pil)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# tests, best effort: Debian's chromium for the HTML report's browser test (which skips, saying so, without it)
command -v chromium >/dev/null || { s=""; [ "$(id -u)" -ne 0 ] && s=sudo; DEBIAN_FRONTEND=noninteractive $s apt-get install -y -qq --no-install-recommends chromium || echo "chromium could not be installed: the browser test will skip"; }
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
