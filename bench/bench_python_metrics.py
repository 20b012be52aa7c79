#!/usr/bin/python3
"""oodseg.metrics through the Python binding against scikit-learn, on the data of bench/bench_metrics.

The 60 synthetic 1280x720 max-logit-like maps of bench_metrics.c (a smooth field, an OoD blob, pixel
noise, rounded to float32, an ignore band on every third image), regenerated bit for bit: the same
xorshift64 stream (run as 65536 lanes, each started by a GF(2) jump), sin and cos from the C
library (math), the same operation order. Prints a Markdown table; exits 1 if the values differ.

    make python && PYTHONPATH=build/python /usr/bin/python3 bench/bench_python_metrics.py [n_images]
"""
import math
import os
import sys
import time

import numpy as np

import oodseg
import oodseg.sklearn

W, H = 1280, 720
M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _step(x):
    x ^= (x << np.uint64(13)) & M64
    x ^= x >> np.uint64(7)
    x ^= (x << np.uint64(17)) & M64
    return x


def _apply(cols, v):
    """The GF(2)-linear map with columns cols (64 images of the unit vectors) applied to each of v."""
    out = np.zeros_like(v)
    for bit in range(64):
        out ^= np.where((v >> np.uint64(bit)) & np.uint64(1), cols[bit], np.uint64(0))
    return out


def xorshift_stream(seed, n, lanes=1 << 16):
    """urand() of bench_metrics.c, n draws: (state >> 11) * 2^-53 after each step."""
    L = -(-n // lanes)
    cols = _step(np.uint64(1) << np.arange(64, dtype=np.uint64))   # one step
    acc, p, k = None, cols, L                                        # L steps, by squaring
    while k:
        if k & 1:
            acc = p.copy() if acc is None else _apply(p, acc)
        p, k = _apply(p, p), k >> 1
    jump = acc
    starts = np.array([seed], dtype=np.uint64)
    while starts.size < lanes:                                       # lane j starts at j*L steps
        starts = np.concatenate([starts, _apply(jump, starts)])
        jump = _apply(jump, jump)
    x = starts[:lanes].copy()
    out = np.empty((L, lanes), dtype=np.uint64)
    for t in range(L):
        out[t] = _step(x) >> np.uint64(11)
    return out.T.reshape(-1)[:n].astype(np.float64) * (1.0 / 9007199254740992.0)


def make_data(n_img):
    per = 5 + W * H
    u = xorshift_stream(np.uint64(0x9E3779B97F4A7C15), n_img * per)
    s = np.empty((n_img, H, W), np.float32)
    l = np.empty((n_img, H, W), np.uint8)
    xs, ys = np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64)[:, None]
    for i in range(n_img):
        cx, cy, r, a, b = u[i * per: i * per + 5]
        cx, cy, r, a, b = cx * W, cy * H, 40 + r * 120, a * 2, b * 2
        noise = u[i * per + 5: (i + 1) * per].reshape(H, W)
        ood = (xs - cx) * (xs - cx) + (ys - cy) * (ys - cy) < r * r
        sx = np.array([math.sin(x * 0.01 * a) for x in range(W)])       # the C library's sin and cos
        cy_ = np.array([math.cos(y * 0.013 * b) for y in range(H)])[:, None]
        v = (sx + cy_) + np.where(ood, 2.0, 0.0) + 1.2 * (noise - 0.5) * 2
        s[i] = (1.0 / (1.0 + np.exp(-v))).astype(np.float32)
        l[i] = ood
        if i % 3 == 0:
            l[i, H - H // 8 + 1:] = 255                                   # y > h - h/8
    return s, l


def main():
    n_img = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    t = time.perf_counter()
    s, l = make_data(n_img)
    t_gen = time.perf_counter() - t

    t0 = time.perf_counter()
    r = oodseg.metrics(s, l, ood=1, ignore=255)
    t_oodseg = time.perf_counter() - t0

    keep = (l != 255).reshape(-1)      # what tools/metrics_ref.py hands scikit-learn
    y = (l.reshape(-1)[keep] == 1).astype(np.int64)
    x = s.reshape(-1)[keep].astype(np.float64)
    t0 = time.perf_counter()
    ap_d, au_d = oodseg.sklearn.average_precision_score(y, x), oodseg.sklearn.roc_auc_score(y, x)
    t_dropin = time.perf_counter() - t0

    from sklearn import __version__ as skv
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
    t0 = time.perf_counter()
    ap, au = average_precision_score(y, x), roc_auc_score(y, x)
    t_sk = time.perf_counter() - t0
    fpr, tpr, _ = roc_curve(y, x)
    fp95 = float(fpr[np.argmax(tpr >= 0.95)])

    print(f"## bench_python_metrics: {n_img} images of {W}x{H} = {s.size / 1e6:.1f} M pixels "
          f"({r['n_ood'] + r['n_id']} valid, {r['n_ood']} OoD), {os.cpu_count()} cores "
          f"(data regenerated in {t_gen:.1f} s)\n")
    print("| | AP | AUROC | FPR95 | seconds | speedup |\n|:---|---:|---:|---:|---:|---:|")
    print(f"| oodseg.metrics(scores, labels) (float32 maps, uint8 labels, no copy) | {r['AP']:.12f} | "
          f"{r['AUROC']:.12f} | {r['FPR95']:.12f} | {t_oodseg:.3f} | {t_sk / t_oodseg:.1f}x |")
    print(f"| oodseg.sklearn average_precision_score + roc_auc_score (same y, x as sklearn) | {ap_d:.12f} | "
          f"{au_d:.12f} | | {t_dropin:.3f} | {t_sk / t_dropin:.1f}x |")
    print(f"| scikit-learn {skv} average_precision_score + roc_auc_score | {ap:.12f} | {au:.12f} | "
          f"{fp95:.12f} | {t_sk:.3f} | 1x |")
    d = max(abs(ap - r["AP"]), abs(au - r["AUROC"]), abs(fp95 - r["FPR95"]), abs(ap - ap_d), abs(au - au_d))
    print(f"\nlargest |diff| {d:.2g}: {'values equal to 1e-9' if d <= 1e-9 else 'VALUES DIFFER'}")
    return 0 if d <= 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
