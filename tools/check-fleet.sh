#!/usr/bin/env bash
# The fleet checks (issue "video input, oodseg mine, MPI"): eval and mine give the same results on
# one process, on chunks resumed after a SIGKILL, and on 1, 2 and 3 MPI ranks; mine splits a video
# over ranks by frame ranges and ranks it the same. eval runs with the SMIYC component metrics
# and --save-state, so metrics.json (components included) and the state file are compared byte
# for byte. Prints "RESULT check-fleet: ...".
#   tools/check-fleet.sh [BUILD [MPI_BUILD]]     (defaults: build, build-mpi)
# MPI runs use --oversubscribe on loopback only; they skip, saying why, without Open MPI's mpirun
# or without the MPI build (make MPI=1). Give two builds made with the same OPT: results are
# bit-identical across ranks and threads, not across compiler flags.
set -u
cd "$(dirname "$0")/.."
export OODSEG_ASSETS="${OODSEG_ASSETS:-../shared}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
B=${1:-build}; BM=${2:-build-mpi}
pass=0; fail=0; skip=0
ok() { echo "ok   $1"; pass=$((pass+1)); }
bad() { echo "FAIL $1"; fail=$((fail+1)); }
skp() { echo "skip $1"; skip=$((skip+1)); }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

DS="$OODSEG_ASSETS/data/camvid-ood"; N=12
if [ ! -f "$DS/test_ood.txt" ]; then DS=assets/demo; N=3; echo "note: $OODSEG_ASSETS has no CamVid-OOD; using the 3 demo frames"; fi
A=(--dataset "camvid-ood:$DS" --limit "$N" --size 256x192 --methods maxlogit,kmeans --threads 1 --no-html --components)
M=(--size 256x192 --threads 1 --top 5 --rank-by area)
head -n "$N" "$DS/test_ood.txt" | awk -v d="$(cd "$DS" && pwd)" '{print d "/" $1}' > "$T/frames.txt"

"$B/oodseg" eval "${A[@]}" --save-state "$T/ref.state" -o "$T/ref" > /dev/null 2> "$T/ref.log" || { cat "$T/ref.log"; bad "single-process eval"; }
grep -q '"sIoU_gt"' "$T/ref/metrics.json" || bad "single-process eval: no component metrics in metrics.json"
same() { cmp -s "$T/ref/metrics.json" "$1/metrics.json" && cmp -s "$T/ref.state" "$1.state"; }

# ---- SIGKILL part way through, then --resume: the same metrics.json ----
"$B/oodseg" eval "${A[@]}" --resume --checkpoint-every 1 -o "$T/kill" > /dev/null 2> "$T/kill.log" &
pid=$!
for _ in $(seq 1 600); do
  [ "$(ls "$T/kill/chunks/"*.state 2> /dev/null | wc -l)" -ge 3 ] && break
  kill -0 "$pid" 2> /dev/null || break
  sleep 0.05
done
kill -KILL "$pid" 2> /dev/null; wait "$pid" 2> /dev/null
done_before=$(ls "$T/kill/chunks/"*.state 2> /dev/null | wc -l)
"$B/oodseg" eval "${A[@]}" --resume --checkpoint-every 1 --save-state "$T/kill.state" -o "$T/kill" > /dev/null 2> "$T/resume.log"
if [ "$done_before" -lt "$N" ] && grep -q "resumed $done_before images" "$T/resume.log" && same "$T/kill"; then
  ok "eval killed after $done_before of $N images and resumed: metrics.json (components too) and state bit-identical"
else cat "$T/resume.log"; bad "eval resumed after SIGKILL ($done_before chunks done before the kill)"; fi

"$B/oodseg" mine "${M[@]}" -o "$T/mine1" "$T/frames.txt" 2> "$T/mine1.log" || { cat "$T/mine1.log"; bad "mine"; }
# ---- mine killed and resumed: the same ranking ----
"$B/oodseg" mine "${M[@]}" -o "$T/minek" "$T/frames.txt" 2> /dev/null &
pid=$!
for _ in $(seq 1 600); do
  k=$(grep -c '^ok' "$T/minek/frames.tsv" 2> /dev/null); [ "${k:-0}" -ge 4 ] && break
  kill -0 "$pid" 2> /dev/null || break
  sleep 0.05
done
kill -KILL "$pid" 2> /dev/null; wait "$pid" 2> /dev/null
"$B/oodseg" mine "${M[@]}" --resume -o "$T/minek" "$T/frames.txt" 2> "$T/minek.log"
if grep -q "resumed after" "$T/minek.log" && cmp -s "$T/mine1/ranking.csv" "$T/minek/ranking.csv" && [ "$(ls "$T/minek/top" | wc -l)" -eq "$(ls "$T/mine1/top" | wc -l)" ]; then
  ok "mine killed part way and resumed: ranking.csv identical, top/ pruned to the K best"
else cat "$T/minek.log"; bad "mine resumed after SIGKILL"; fi

# ---- a video made here: its frames split over ranks by frame ranges ----
video=""
if command -v ffmpeg > /dev/null; then
  mkdir -p "$T/vf"; i=0
  while read -r f; do cp "$f" "$T/vf/$(printf %03d $i).png"; i=$((i+1)); done < "$T/frames.txt"
  ffmpeg -loglevel error -framerate 5 -i "$T/vf/%03d.png" -c:v libx264 -pix_fmt yuv420p -g 4 -movflags +faststart "$T/clip.mp4" && video="$T/clip.mp4"
  "$B/oodseg" mine "${M[@]}" -o "$T/minev1" "$video" 2> /dev/null || bad "mine on a video"
else skp "video split over ranks: no ffmpeg tool (apt-get install ffmpeg)"; fi

# ---- MPI: 1, 2 and 3 ranks ----
if ! command -v mpirun > /dev/null; then skp "MPI runs: no mpirun (apt-get install openmpi-bin libopenmpi-dev)"
elif [ ! -x "$BM/oodseg" ]; then skp "MPI runs: no MPI build in $BM (make MPI=1)"
else
  MPI=(mpirun --oversubscribe --mca btl self,vader,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
  [ "$(id -u)" -eq 0 ] && MPI+=(--allow-run-as-root)
  "$BM/oodseg" eval "${A[@]}" --save-state "$T/nompi.state" -o "$T/nompi" > /dev/null 2>&1
  same "$T/nompi" && ok "the MPI build without mpirun: metrics.json and state bit-identical" || bad "the MPI build without mpirun"
  for n in 1 2 3; do
    if "${MPI[@]}" -n $n "$BM/oodseg" eval "${A[@]}" --save-state "$T/mpi$n.state" -o "$T/mpi$n" > /dev/null 2> "$T/mpi$n.log" && same "$T/mpi$n"; then
      ok "mpirun -n $n eval: metrics.json (components too) and state bit-identical to one process"
    else tail -5 "$T/mpi$n.log"; bad "mpirun -n $n eval"; fi
  done
  # rank 0 stopped by the test hook after its second image (as by a first SIGINT): every rank
  # stops, exit 130, no report; the same 2 ranks with --resume finish it, bit-identical
  OODSEG_TEST_INTERRUPT_AFTER=2 "${MPI[@]}" -x OODSEG_TEST_INTERRUPT_AFTER -n 2 "$BM/oodseg" eval "${A[@]}" --checkpoint-every 2 \
    --save-state "$T/mpiint.state" -o "$T/mpiint" > /dev/null 2> "$T/mpiint.log"; irc=$?
  "${MPI[@]}" -n 2 "$BM/oodseg" eval "${A[@]}" --checkpoint-every 2 --resume --save-state "$T/mpiint.state" -o "$T/mpiint" > /dev/null 2> "$T/mpiint2.log"
  if [ "$irc" -ne 0 ] && grep -q "Resume with the same command" "$T/mpiint.log" && grep -q "rank 0 resumed 2 images" "$T/mpiint2.log" && same "$T/mpiint"; then
    ok "mpirun -n 2 eval interrupted on rank 0, resumed on 2 ranks: bit-identical"
  else tail -5 "$T/mpiint.log" "$T/mpiint2.log"; bad "mpirun -n 2 eval interrupted and resumed (exit $irc)"; fi
  for n in 2 3; do
    if "${MPI[@]}" -n $n "$BM/oodseg" mine "${M[@]}" -o "$T/minempi$n" "$T/frames.txt" 2> "$T/minempi$n.log" && cmp -s "$T/mine1/ranking.csv" "$T/minempi$n/ranking.csv"; then
      ok "mpirun -n $n mine: ranking.csv identical to one process"
    else tail -5 "$T/minempi$n.log"; bad "mpirun -n $n mine"; fi
  done
  if [ -n "$video" ]; then
    if "${MPI[@]}" -n 2 "$BM/oodseg" mine "${M[@]}" -o "$T/minev2" "$video" 2> "$T/minev2.log" && cmp -s "$T/minev1/ranking.csv" "$T/minev2/ranking.csv" \
       && [ -s "$T/minev2/frames-1-of-2.tsv" ] && [ "$(grep -c '^ok' "$T/minev2/frames-1-of-2.tsv")" -lt "$N" ]; then
      ok "mpirun -n 2 mine on a video (split by frame ranges): ranking.csv identical"
    else tail -5 "$T/minev2.log"; bad "mpirun -n 2 mine on a video"; fi
  fi
fi
echo "RESULT check-fleet: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
