#!/bin/sh
# `--precision bf16` against fp32 where it matters to a user: the real ESPNet (CamVid) and ESPNetv2
# s=2.0 (Cityscapes) weights on CamVid-OOD, `oodseg eval` with every method in both precisions,
# and the differences of AP, FPR95 and AUROC as the reports give them (x100, i.e. percentage
# points). Fails (exit 1) when any |bf16 - fp32| exceeds the tolerance (default 0.1 points).
#
#   usage: tools/check-bf16-accuracy.sh [--limit N] [--threads N] [--tol T] [--keep DIR]
#   env:   OODSEG_ASSETS (default ../shared), OODSEG (the binary, default build/oodseg)
#
# centroid is left out: it needs centroids fitted on in-distribution images first.
set -eu
ASSETS=${OODSEG_ASSETS:-../shared}
BIN=${OODSEG:-build/oodseg}
METHODS=maxlogit,msp,entropy,energy,kmeans
LIMIT="" THREADS="" TOL=0.1 KEEP=""
while [ $# -gt 0 ]; do
    case $1 in
        --limit) LIMIT="--limit $2"; shift 2 ;;
        --threads) THREADS="--threads $2"; shift 2 ;;
        --tol) TOL=$2; shift 2 ;;
        --keep) KEEP=$2; shift 2 ;;
        *) echo "check-bf16-accuracy: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
    esac
done
DATA=$ASSETS/data/camvid-ood
[ -f "$DATA/test_ood.txt" ] || { echo "check-bf16-accuracy: missing $DATA (set OODSEG_ASSETS)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "check-bf16-accuracy: no $BIN (run make, or set OODSEG)" >&2; exit 2; }
OUT=${KEEP:-$(mktemp -d)}
mkdir -p "$OUT"
[ -n "$KEEP" ] || trap 'rm -rf "$OUT"' EXIT

fail=0
printf '%-10s %-9s %9s %9s %7s   %9s %9s %7s   %9s %9s %7s\n' model method "AP fp32" bf16 diff \
    "FPR95 fp32" bf16 diff "AUROC fp32" bf16 diff
for spec in espnet:models/espnet/pretrained/decoder/espnet_p_2_q_8_camvid.pth \
            espnetv2:models/espnetv2/espnetv2_s_2.0_city_1024x512.pth; do
    name=${spec%%:*} model=$ASSETS/${spec#*:}
    [ -f "$model" ] || { echo "check-bf16-accuracy: missing $model" >&2; exit 2; }
    for p in fp32 bf16; do
        # shellcheck disable=SC2086
        "$BIN" eval --model "$model" --dataset "camvid-ood:$DATA" --methods $METHODS --precision $p \
            --no-html $LIMIT $THREADS -o "$OUT/$name-$p" >"$OUT/$name-$p.log" 2>&1 ||
            { echo "check-bf16-accuracy: eval failed, see $OUT/$name-$p.log" >&2; cat "$OUT/$name-$p.log" >&2; exit 1; }
    done
    # metrics.csv: method,AP,FPR95,AUROC,... (x100, two decimals)
    awk -F, -v name="$name" -v tol="$TOL" '
        function a(d) { d = d < 0 ? -d : d; return int(d * 100 + 0.5) }
        FNR == 1 { next }
        NR == FNR { ap[$1] = $2; fpr[$1] = $3; auc[$1] = $4; next }
        {
            d1 = $2 - ap[$1]; d2 = $3 - fpr[$1]; d3 = $4 - auc[$1]
            # in hundredths, as integers: 62.93 - 62.83 is 0.1000000000000014 in binary
            t = int(tol * 100 + 0.5)
            bad = (a(d1) > t || a(d2) > t || a(d3) > t)
            printf "%-10s %-9s %9.2f %9.2f %+7.2f   %9.2f %9.2f %+7.2f   %9.2f %9.2f %+7.2f%s\n", name, $1,
                   ap[$1], $2, d1, fpr[$1], $3, d2, auc[$1], $4, d3, bad ? "   > tol" : ""
            if (bad) nbad++
        }
        END { exit nbad > 0 }' "$OUT/$name-fp32/metrics.csv" "$OUT/$name-bf16/metrics.csv" || fail=1
done
if [ $fail -ne 0 ]; then
    echo "check-bf16-accuracy: FAIL: a difference exceeds $TOL points (x100 units of the reports)"
    exit 1
fi
echo "check-bf16-accuracy: ok: every |bf16 - fp32| <= $TOL points (x100 units of the reports)"
