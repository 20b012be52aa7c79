#!/usr/bin/env bash
# The OpenMP wait policies behind cli/wait_policy.c, measured: `oodseg bench` (median of R runs,
# random weights for the named architectures) under each policy, on the machine as it is ("quiet")
# and with one core kept busy by a bounded busy loop started here ("1 core busy"). Rounds alternate
# the policies so that drifting background load spreads over all of them; each cell is the median
# over rounds. Prints the command line and a Markdown table.
#
#   bench/bench_load.sh [-r RUNS] [-t THREADS] [-k ROUNDS] [-b BIN] [CASE...]    CASE = MODEL:WxH
#
# Defaults: 3 runs, 2 threads, 3 rounds, build/oodseg, the cases internimage-t-cityscapes:512x256
# and espnetv2-cityscapes:1024x512. Policies: libgomp's default (OODSEG_WAIT_POLICY_SET=1 keeps
# the program from choosing), OMP_WAIT_POLICY=passive, GOMP_SPINCOUNT=1000, =10000, =100000,
# and --threads 1 as the reference; POLICIES="passive spin1k 1-thread" measures those alone, and
# spinN (e.g. spin300) any GOMP_SPINCOUNT.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3 threads=2 rounds=3 bin=build/oodseg
while getopts "r:t:k:b:" o; do
    case $o in r) runs=$OPTARG ;; t) threads=$OPTARG ;; k) rounds=$OPTARG ;; b) bin=$OPTARG ;;
               *) sed -n '8,12p' "$0"; exit 2 ;; esac
done
shift $((OPTIND - 1))
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(internimage-t-cityscapes:512x256 espnetv2-cityscapes:1024x512)
[ -x "$bin" ] || { echo "bench_load: $bin is not built (make cli)" >&2; exit 2; }
policies=("default" "passive" "spin1k" "spin10k" "spin100k" "1-thread")
[ -z "${POLICIES:-}" ] || read -ra policies <<<"$POLICIES"
env_of() {   # the environment of a policy, for env(1)
    case $1 in
        default) echo "OODSEG_WAIT_POLICY_SET=1" ;;
        passive) echo "OMP_WAIT_POLICY=passive" ;;
        spin1k) echo "GOMP_SPINCOUNT=1000" ;;
        spin10k) echo "GOMP_SPINCOUNT=10000" ;;
        spin100k) echo "GOMP_SPINCOUNT=100000" ;;
        spin[0-9]*) echo "GOMP_SPINCOUNT=${1#spin}" ;;
        1-thread) echo "OODSEG_WAIT_POLICY_SET=1" ;;
    esac
}
tmp=$(mktemp -d)
busy=
stop_busy() { if [ -n "$busy" ]; then kill "$busy" 2>/dev/null || true; wait "$busy" 2>/dev/null || true; busy=; fi; }
trap 'stop_busy; rm -rf "$tmp"' EXIT
# One core busy for at most 30 minutes, whatever happens to this script.
start_busy() { timeout 1800 bash -c 'while :; do :; done' & busy=$!; sleep 1; }

measure() {   # case policy condition round -> appends the median seconds to a file per cell
    local model=${1%%:*} size=${1##*:} th=$threads
    [ "$2" = 1-thread ] && th=1
    env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT $(env_of "$2") "$bin" bench --model "$model" --size "$size" \
        --threads "$th" --runs "$runs" --json "$tmp/r.json" >/dev/null
    sed -n 's/.*"median": \([0-9.]*\).*/\1/p' "$tmp/r.json" >>"$tmp/$(echo "$1" | tr ':/' '__').$2.$3"
}

echo "\`bench/bench_load.sh -r $runs -t $threads -k $rounds ${cases[*]}\`; load average at start: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
echo
for ((k = 0; k < rounds; k++)); do
    for c in "${cases[@]}"; do for p in "${policies[@]}"; do measure "$c" "$p" quiet "$k"; done; done
    start_busy
    for c in "${cases[@]}"; do for p in "${policies[@]}"; do measure "$c" "$p" busy "$k"; done; done
    stop_busy
done
median() { sort -g "$1" | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo "| case | policy | quiet s | 1 core busy s | busy / quiet |"
echo "|---|---|---:|---:|---:|"
for c in "${cases[@]}"; do
    f=$(echo "$c" | tr ':/' '__')
    for p in "${policies[@]}"; do
        q=$(median "$tmp/$f.$p.quiet") b=$(median "$tmp/$f.$p.busy")
        echo "| $c | $p | $q | $b | $(awk -v q="$q" -v b="$b" 'BEGIN {printf "%.2f", b / q}') |"
    done
done
