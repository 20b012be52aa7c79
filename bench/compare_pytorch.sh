#!/usr/bin/env bash
# oodseg against the official PyTorch code on the same model, input and threads, in one sitting:
# the timers of ../shared/reference-pytorch (README.md there; Debian's python3-torch, run with
# /usr/bin/python3) alternate with `oodseg bench` (PyTorch, oodseg, PyTorch, oodseg, ...), so
# that machine noise hits both. InternImage runs on random weights on both sides (oodseg's
# architecture names, models/random_weights.h); ESPNet and ESPNetv2 on the real Cityscapes weights
# of ../shared/models, at their 1024x512 test size. Both sides time the network forward alone
# (oodseg: the JSON's forward_median; its OoD method is maxlogit, outside that time).
#
#   bench/compare_pytorch.sh [-m MODELS] [-s WxH] [-t THREADS] [-p PRECISIONS] [-k ROUNDS] [-r RUNS] [-b BIN]
#
#   -m  comma list of espnet, espnetv2, internimage-t, internimage-l (default espnet,espnetv2,internimage-t)
#   -s  the InternImage input, WxH (default 1024x512)
#   -t  comma list of thread counts (default 2)
#   -p  comma list of oodseg precisions, fp32 and/or bf16 (default fp32); PyTorch stays fp32, and
#       each round runs PyTorch then oodseg in each precision
#   -k  rounds of the alternation (default 2); -r runs per program call (default 3, after one warm-up)
#
# Prints the command line and a Markdown table: the medians over the rounds of each program's
# median, PyTorch / oodseg, and each program's peak resident memory (maxrss of the whole process:
# PyTorch's from getrusage of the child, oodseg's from its own report).
set -euo pipefail
cd "$(dirname "$0")/.."
models=espnet,espnetv2,internimage-t size=1024x512 threads=2 rounds=2 runs=3 bin=build/oodseg precs=fp32
while getopts "m:s:t:p:k:r:b:" o; do
    case $o in m) models=$OPTARG ;; s) size=$OPTARG ;; t) threads=$OPTARG ;; k) rounds=$OPTARG ;;
               p) precs=$OPTARG ;; r) runs=$OPTARG ;; b) bin=$OPTARG ;; *) sed -n '10,19p' "$0"; exit 2 ;; esac
done
A=${OODSEG_ASSETS:-../shared}
ref=$A/reference-pytorch
py=/usr/bin/python3
[ -x "$bin" ] || { echo "compare_pytorch: $bin is not built (make cli)" >&2; exit 2; }
[ -f "$ref/pt_espnet.py" ] || { echo "compare_pytorch: no $ref/pt_espnet.py (set OODSEG_ASSETS)" >&2; exit 2; }
"$py" -c 'import torch' 2>/dev/null || { echo "compare_pytorch: $py cannot import torch (apt-get install python3-torch)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Runs a command; prints its stdout, then "MAXRSS_KB <peak resident kB of the child>".
with_maxrss() {
    "$py" -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, universal_newlines=True)
sys.stdout.write(r.stdout)
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(r.returncode)' "$@"
}

pytorch() {   # model threads -> "median maxrss_mb"
    local out
    case $1 in
        espnet|espnetv2) out=$(cd "$ref" && with_maxrss "$py" pt_espnet.py "$1" "$2" "$runs") ;;
        internimage-*) out=$(cd "$ref" && with_maxrss "$py" pt_internimage.py "${1#internimage-}" "$size" "$2" "$runs") ;;
    esac
    local med rss
    med=$(echo "$out" | sed -n 's/.*RESULT pytorch.* median \([0-9.]*\).*/\1/p')
    rss=$(echo "$out" | sed -n 's/^MAXRSS_KB \([0-9]*\)/\1/p')
    [ -n "$med" ] || { echo "compare_pytorch: no RESULT line from PyTorch ($1):" >&2; echo "$out" >&2; exit 1; }
    echo "$med $(awk -v k="$rss" 'BEGIN {printf "%.0f", k / 1024}')"
}

oodseg() {   # model threads precision -> "median maxrss_mb"
    local m s
    case $1 in
        espnet) m=$A/models/espnet/pretrained/decoder/espnet_p_2_q_8.pth s=1024x512 ;;
        espnetv2) m=$A/models/espnetv2/espnetv2_s_2.0_city_1024x512.pth s=1024x512 ;;
        internimage-*) m=$1-cityscapes s=$size ;;
    esac
    "$bin" bench --model "$m" --size "$s" --threads "$2" --precision "$3" --runs "$runs" --method maxlogit \
        --json "$tmp/o.json" >/dev/null
    "$py" -c 'import json, sys
j = json.load(open(sys.argv[1]))
print("%.4f %.0f" % (j["seconds"]["forward_median"], j["memory_mb"]["maxrss"]))' "$tmp/o.json"
}

input_of() { case $1 in internimage-*) echo "$size" ;; *) echo 1024x512 ;; esac; }
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

echo "\`bench/compare_pytorch.sh -m $models -s $size -t $threads -p $precs -k $rounds -r $runs\`; $(nproc) CPUs, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
rows=()
for m in ${models//,/ }; do
    case $m in espnet|espnetv2|internimage-t|internimage-l) ;; *) echo "compare_pytorch: unknown model '$m'" >&2; exit 2 ;; esac
    for t in ${threads//,/ }; do
        : >"$tmp/pt"
        for p in ${precs//,/ }; do : >"$tmp/oo_$p"; done
        for ((k = 0; k < rounds; k++)); do
            pytorch "$m" "$t" >>"$tmp/pt"
            for p in ${precs//,/ }; do oodseg "$m" "$t" "$p" >>"$tmp/oo_$p"; done
        done
        pt=$(cut -d' ' -f1 "$tmp/pt" | median) ptr=$(cut -d' ' -f2 "$tmp/pt" | sort -g | tail -1)
        for p in ${precs//,/ }; do
            oo=$(cut -d' ' -f1 "$tmp/oo_$p" | median) oor=$(cut -d' ' -f2 "$tmp/oo_$p" | sort -g | tail -1)
            rows+=("| $m | $(input_of "$m") | $t | $p | $pt | $oo | $(awk -v a="$pt" -v b="$oo" 'BEGIN {printf "%.2f", a / b}') | $ptr | $oor |")
        done
    done
done
echo "| model | input | threads | oodseg precision | PyTorch fp32 median s | oodseg median s | PyTorch / oodseg | PyTorch maxrss MB | oodseg maxrss MB |"
echo "|---|---|---:|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
