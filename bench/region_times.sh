#!/usr/bin/env bash
# Where a model's 2-thread run loses against its 1-thread run, op by op: `oodseg bench` (random
# input, maxlogit) on 1 and then 2 threads with bench/region_timer.c preloaded, which times every
# OpenMP parallel region. An op is the function its region runs (GCC names it <function>._omp_fn.N),
# named with addr2line.
#
#   bench/region_times.sh [-r RUNS] [-b BIN] MODEL [WxH]      MODEL: as `oodseg bench --model`
#
# Prints the command line, regions per run, the time inside regions and between them, and a
# Markdown table, one row per op: regions per run, microseconds per run on 1 and on 2 threads (each
# region's median over the runs after the warm-up), 2 threads / 1 thread, and the loss, t2 - t1/2,
# sorted by it. A region of a few tens of microseconds can lose more than it gains: waking a
# sleeping thread (OMP_WAIT_POLICY=passive, cli/wait_policy.c) cost 37-57 us on a 2-core VM.
# Needs cc, addr2line (binutils) and python3. Run it on a quiet machine; 2-thread times on a shared
# VM jump (BENCHMARKS.md, eighth sitting).
set -euo pipefail
cd "$(dirname "$0")/.."
cmdline="$*"
runs=9 bin=build/oodseg
while getopts "r:b:" o; do
    case $o in r) runs=$OPTARG ;; b) bin=$OPTARG ;; *) sed -n '7p' "$0"; exit 2 ;; esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '7p' "$0" >&2; exit 2; }
model=$1
size=()
[ $# -ge 2 ] && size=(--size "$2")
[ -x "$bin" ] || { echo "region_times: $bin is not built (make cli)" >&2; exit 2; }
mkdir -p build/bench
cc -O2 -shared -fPIC -fopenmp -o build/bench/region_timer.so bench/region_timer.c -ldl
work=$(mktemp -d "${TMPDIR:-/tmp}/region_times.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "\`bench/region_times.sh $cmdline\`"
for t in 1 2; do
    REGION_TIMER_OUT="$work/t$t.txt" LD_PRELOAD="$PWD/build/bench/region_timer.so" \
        "$bin" bench --model "$model" "${size[@]}" --threads "$t" --runs "$runs" --method maxlogit > "$work/out$t.txt" 2>&1 ||
        { cat "$work/out$t.txt" >&2; exit 1; }
done
python3 - "$work/t1.txt" "$work/t2.txt" "$runs" <<'EOF'
import statistics, subprocess, sys
from collections import OrderedDict

def load(path, iterations):
    rows = [line.split() for line in open(path)]
    if not rows or len(rows) % iterations:
        sys.exit(f"region_times: {len(rows)} regions in {path}, not a multiple of {iterations} runs")
    per = len(rows) // iterations
    keys = [(r[1], r[2]) for r in rows[:per]]
    us = [statistics.median(float(rows[k * per + i][3]) for k in range(1, iterations)) for i in range(per)]
    gap = [statistics.median(float(rows[k * per + i][4]) for k in range(1, iterations)) for i in range(per)]
    return keys, us, gap

iterations = int(sys.argv[3]) + 1   # the warm-up and the timed runs
k1, t1, g1 = load(sys.argv[1], iterations)
k2, t2, g2 = load(sys.argv[2], iterations)
if k1 != k2:
    sys.exit("region_times: the 1- and 2-thread runs opened different regions")
names = {}
for off, obj in set(k1):
    out = subprocess.run(["addr2line", "-f", "-e", obj, off], capture_output=True, text=True).stdout.split()
    names[(off, obj)] = out[0].split("._omp_fn")[0] if out and out[0] != "??" else f"{obj}+{off}"
ops = OrderedDict()
for i, key in enumerate(k1):
    o = ops.setdefault(names[key], [0, 0.0, 0.0])
    o[0] += 1; o[1] += t1[i]; o[2] += t2[i]
print(f"\n{len(k1)} regions per run; in regions {sum(t1) / 1e3:.1f} ms on 1 thread, {sum(t2) / 1e3:.1f} ms "
      f"on 2 ({sum(t2) / sum(t1):.3f}); between them {sum(g1[1:]) / 1e3:.2f} and {sum(g2[1:]) / 1e3:.2f} ms\n")
print("| op | regions | 1 thread us | 2 threads us | ratio | loss us |")
print("|---|---:|---:|---:|---:|---:|")
for name, (n, a, b) in sorted(ops.items(), key=lambda kv: kv[1][1] / 2 - kv[1][2]):
    print(f"| {name} | {n} | {a:.0f} | {b:.0f} | {b / a if a else 0:.3f} | {b - a / 2:.0f} |")
EOF
