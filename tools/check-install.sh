#!/usr/bin/env bash
# The install stands alone: after `make install PREFIX=$tmp`,
#   - oodseg.pc says prefix=$tmp and holds no @PLACEHOLDER@;
#   - every examples/*.c, copied out of the repository, builds with `pkg-config --cflags --libs
#     oodseg` alone (PKG_CONFIG_PATH=$tmp/lib/pkgconfig) and runs on the installed default model;
#   - `$tmp/bin/oodseg score -o out img.png` works from another directory with OODSEG_ASSETS unset;
#   - the installed liboodseg.so exports oodseg_* symbols only.
# An example is run with the arguments of its `// check-args: ...` line, where @MODEL@ is the
# installed default model, @IMAGE@ a demo frame and @DEMO@ the demo folder (a CamVid-OOD root with
# test_ood/ and testannot_ood/); without such a line, with "@MODEL@ @IMAGE@".
# Uses the release build in $B (default build). Run by `make test` through tools/run-tests.sh.
set -u
cd "$(dirname "$0")/.."
. tools/check-lib.sh
B="${B:-build}"
repo=$PWD
tmp=$(mktemp -d /tmp/oodseg-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
P=$tmp/prefix
MODEL=$P/share/oodseg/models/espnetv2/espnetv2_s_2.0_city_1024x512.pth
IMAGE=$repo/assets/demo/test_ood/0001TP_008550.png
DEMO=$repo/assets/demo
export PKG_CONFIG_PATH=$P/lib/pkgconfig
unset OODSEG_ASSETS

do_install() { make -s install PREFIX="$P" B="$B" && ls -l "$MODEL"; }

pc_for_prefix() {
  local pc=$P/lib/pkgconfig/oodseg.pc
  if grep -n '@[A-Z_]*@' "$pc"; then echo "placeholder left in $pc"; return 1; fi
  grep -qx "prefix=$P" "$pc" || { echo "$pc does not say prefix=$P:"; cat "$pc"; return 1; }
  pkg-config --cflags --libs oodseg
}

build_example() {  # SRC OUT
  mkdir -p "$tmp/src" && cp "$1" "$tmp/src/" || return 1
  # shellcheck disable=SC2046  # pkg-config's words are separate flags
  cc -std=c11 -Wall -Wextra -Werror "$tmp/src/$(basename "$1")" $(pkg-config --cflags --libs oodseg) -o "$2"
}

run_example() {  # SRC BIN
  local a
  a=$(sed -n 's|^// *check-args: *||p' "$1" | head -1)
  a=${a:-@MODEL@ @IMAGE@}
  a=${a//@MODEL@/$MODEL}; a=${a//@IMAGE@/$IMAGE}; a=${a//@DEMO@/$DEMO}
  mkdir -p "$tmp/run" && cd "$tmp/run" || return 1
  # shellcheck disable=SC2086  # the argument line is split into words on purpose
  "$2" $a
}

score_elsewhere() {
  mkdir -p "$tmp/elsewhere" && cp "$IMAGE" "$tmp/elsewhere/img.png" && cd "$tmp/elsewhere" || return 1
  "$P/bin/oodseg" score -o out img.png || return 1
  ls out
  [ -s out/img_kmeans_score.npy ] || { echo "no out/img_kmeans_score.npy"; return 1; }
}

exports_api_only() {
  local so=$P/lib/liboodseg.so syms
  syms=$(nm -D --defined-only "$so" | awk '{print $NF}')
  echo "$(echo "$syms" | grep -c '^oodseg_') oodseg_* symbols"
  if echo "$syms" | grep -v '^oodseg_'; then echo "^ exported by $so beyond the public API"; return 1; fi
  echo "$syms" | grep -q '^oodseg_'
}

step "make install PREFIX=\$tmp installs the default model" do_install
step "oodseg.pc is written for \$tmp, every placeholder replaced" pc_for_prefix
for src in examples/*.c; do
  name=$(basename "$src" .c)
  step "examples/$name.c builds with pkg-config alone" build_example "$src" "$tmp/$name"
  step "examples/$name runs against the installed library" run_example "$src" "$tmp/$name"
done
step "installed oodseg scores from another directory, OODSEG_ASSETS unset" score_elsewhere
step "nm -D lists only oodseg_* symbols" exports_api_only
finish check-install
