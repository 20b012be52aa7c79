#!/usr/bin/env bash
# Installs the Debian packages oodseg needs, skipping those already present.
#   build: gcc, make, pkg-config (the install check), OpenBLAS (OpenMP build), libpng, libjpeg-turbo, libwebp, libdeflate, zlib,
#          FFmpeg's libraries (video input and output: libavformat, libavcodec, libswscale)
#   MPI (make MPI=1, and the MPI tests of tools/check-fleet.sh): Open MPI (libopenmpi-dev, openmpi-bin)
#   tests: python3-numpy, python3-sklearn, python3-opencv, python3-pil (reference values computed
#          at test time by the reference libraries themselves), python3-pytest (the Python package's
#          tests), python3-venv and python3-pip (its offline `pip install ./python` test),
#          chromium (the HTML report's browser test), ffmpeg (a test video made with the ffmpeg tool)
#   `install-deps.sh fuzz` (make fuzz only): clang and its libFuzzer runtime, and the build
#          libraries and python3-numpy/python3-pil that fuzz/make-seeds.py writes seeds with
#   `install-deps.sh valgrind` (make valgrind, .ci/run): valgrind
#   (make test-tsan needs nothing more: gcc's ThreadSanitizer runtime, libtsan2, comes with gcc)
set -euo pipefail
pkgs=(gcc make pkg-config libopenblas-openmp-dev libpng-dev libjpeg62-turbo-dev libwebp-dev libdeflate-dev zlib1g-dev
      libavformat-dev libavcodec-dev libswscale-dev libavutil-dev libopenmpi-dev openmpi-bin ffmpeg
      python3-numpy python3-sklearn python3-opencv python3-pil python3-pytest)
# Optional: without them the pip test and the browser test skip, saying why.
optional=(python3-venv python3-pip chromium)
if [ "${1:-}" = fuzz ]; then
  pkgs=(clang libclang-rt-dev libomp-dev make libopenblas-openmp-dev libpng-dev libjpeg62-turbo-dev libwebp-dev libdeflate-dev
        zlib1g-dev libavformat-dev libavcodec-dev libswscale-dev libavutil-dev python3-numpy python3-pil)
  optional=()
fi
if [ "${1:-}" = valgrind ]; then
  pkgs=(valgrind)
  optional=()
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
opt_missing=()
for p in "${optional[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || opt_missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && [ ${#opt_missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]} ${opt_missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
[ ${#missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
[ ${#opt_missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${opt_missing[@]}" ||
  echo "could not install ${opt_missing[*]}: the tests that need them will skip, saying so"
