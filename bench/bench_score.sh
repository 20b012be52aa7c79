#!/bin/sh
# `oodseg score` end to end on 1280x720 JPEGs, per image: with the default pictures (PNG), with
# JPEG and WebP pictures, and without pictures, each with the network-only time of the same run
# (the "network" of score's summary line: forward passes and methods) for reference.
#
#   bench/bench_score.sh [N_IMAGES] [REPEATS] [THREADS] [METHODS]     (defaults: 16 3 2 maxlogit,kmeans)
#
# The images are CamVid-OOD frames (../shared/data/camvid-ood, or $OODSEG_ASSETS/data/camvid-ood)
# upscaled to 1280x720 with ffmpeg (or ImageMagick's convert), made once in a temporary folder.
# Prints the median over REPEATS runs of the run's seconds per image. Run it on a quiet machine.
set -eu
N=${1:-16}
R=${2:-3}
T=${3:-2}
M=${4:-maxlogit,kmeans}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${OODSEG_BIN:-$ROOT/build/oodseg}
ASSETS=${OODSEG_ASSETS:-$ROOT/../shared}
SRC=$ASSETS/data/camvid-ood/test_ood
[ -x "$BIN" ] || { echo "bench_score: build the CLI first (make cli): $BIN" >&2; exit 1; }
[ -d "$SRC" ] || { echo "bench_score: no CamVid-OOD images in $SRC (set OODSEG_ASSETS)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench_score.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/in"
i=0
for f in $(ls "$SRC"/*.png | head -n "$N"); do
    out=$(printf '%s/in/frame%03d.jpg' "$WORK" "$i")
    if command -v ffmpeg >/dev/null 2>&1; then
        ffmpeg -loglevel error -y -i "$f" -vf scale=1280:720 -q:v 3 "$out"
    elif command -v convert >/dev/null 2>&1; then
        convert "$f" -resize '1280x720!' -quality 90 "$out"
    else
        echo "bench_score: needs ffmpeg or ImageMagick's convert to make the JPEGs" >&2; exit 1
    fi
    i=$((i + 1))
done
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# One configuration: R runs into fresh folders; the median seconds per image, whole run and network.
run() {
    label=$1; shift
    : > "$WORK/t"; : > "$WORK/n"
    for r in $(seq "$R"); do
        rm -rf "$WORK/out"
        "$BIN" score --threads "$T" --method "$M" "$@" -o "$WORK/out" "$WORK/in" 2> "$WORK/err" ||
            { cat "$WORK/err" >&2; exit 1; }
        line=$(grep '^scored ' "$WORK/err")
        echo "$line" | sed -n 's/.*(\([0-9.]*\) s; network \([0-9.]*\) s.*/\1/p' | awk -v n="$i" '{ print $1 / n }' >> "$WORK/t"
        echo "$line" | sed -n 's/.*(\([0-9.]*\) s; network \([0-9.]*\) s.*/\2/p' | awk -v n="$i" '{ print $1 / n }' >> "$WORK/n"
    done
    printf '%-34s %8.3f s/image   network %8.3f s/image\n' "$label" "$(median < "$WORK/t")" "$(median < "$WORK/n")"
}

echo "oodseg score: $i images 1280x720 JPEG, --threads $T, --method $M, median of $R runs"
run "pictures png (default)"
run "pictures jpg" --pictures jpg
run "pictures webp" --pictures webp
run "no pictures" --pictures none
run "no pictures, no npy" --pictures none --no-npy
