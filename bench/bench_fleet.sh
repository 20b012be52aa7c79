#!/usr/bin/env bash
# `oodseg mine` on a CamVid-OOD video with the default model (ESPNetv2 s=2.0 at its own test size,
# method kmeans): frames per second on 1 rank x 1 thread, 1 rank x 2 threads and 2 MPI ranks x 1
# thread, measured alternately (ROUNDS rounds) in one sitting; and decoding's share of the wall
# time (the decoding thread's own time, and the time the network waited for a frame).
#   bench/bench_fleet.sh [FRAMES] [ROUNDS]    (defaults 24, 2; needs ffmpeg, build/ and build-mpi/)
set -eu
cd "$(dirname "$0")/.."
export OODSEG_ASSETS="${OODSEG_ASSETS:-../shared}" OMP_WAIT_POLICY=passive
F=${1:-24}; R=${2:-2}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
mkdir "$T/f"; i=0
for l in $(head -n "$F" "$OODSEG_ASSETS/data/camvid-ood/test_ood.txt" | awk '{print $1}'); do
  cp "$OODSEG_ASSETS/data/camvid-ood/$l" "$T/f/$(printf %04d $i).png"; i=$((i+1)); done
ffmpeg -loglevel error -framerate 30 -i "$T/f/%04d.png" -c:v libx264 -pix_fmt yuv420p -movflags +faststart "$T/clip.mp4"
MPI=(mpirun --oversubscribe --mca btl self,vader --mca oob_tcp_if_include lo); [ "$(id -u)" -eq 0 ] && MPI+=(--allow-run-as-root)
echo "bench_fleet: $F frames of CamVid-OOD (480x360) in an H.264 mp4; oodseg mine --method kmeans --top 10; $(nproc) cores"
echo
echo "| run | round | wall | frames/s | decoding thread | waited for frames | decoding share of wall |"
echo "|---|---:|---:|---:|---:|---:|---:|"
run() {   # name, round, threads, command...
  local name=$1 r=$2 th=$3; shift 3
  rm -rf "$T/o"; local t0; t0=$(date +%s.%N)
  "$@" mine --threads "$th" --top 10 -o "$T/o" "$T/clip.mp4" 2> "$T/log"
  local t1; t1=$(date +%s.%N)
  local wall; wall=$(echo "$t1 - $t0" | bc -l)
  # the slowest rank's decoding and waiting (rank lines under MPI, else the summary line)
  local dec wait
  dec=$(grep -o 'decoding [0-9.]* s' "$T/log" | awk '{print $2}' | sort -g | tail -1)
  wait=$(grep -o 'waited [0-9.]* s' "$T/log" | awk '{print $2}' | sort -g | tail -1)
  printf "| %s | %d | %.1f s | %.2f | %.2f s | %.2f s | %.1f %% |\n" "$name" "$r" "$wall" "$(echo "$F / $wall" | bc -l)" "$dec" "$wait" "$(echo "100 * $wait / $wall" | bc -l)"
}
for r in $(seq 1 "$R"); do
  run "1 rank x 1 thread" "$r" 1 build/oodseg
  run "2 ranks x 1 thread" "$r" 1 "${MPI[@]}" -n 2 build-mpi/oodseg
  run "1 rank x 2 threads" "$r" 2 build/oodseg
done
