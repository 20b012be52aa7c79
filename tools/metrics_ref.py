#!/usr/bin/python3
"""scikit-learn reference for eval/metrics.c (tests and bench).

Usage: metrics_ref.py SCORES.npy LABELS.npy [OUT.json]
Labels: 0 in-distribution, 1 OoD (positive), 255 ignore (removed first). Scores: higher = more
anomalous. Prints (or writes) JSON with AP (average_precision_score), AUROC (roc_auc_score), the
three FPR95 conventions on roc_curve's points, and the seconds spent in the two sklearn calls
(`seconds_sklearn`, AP + AUROC only, as a user of sklearn would run them).
"""
import json
import sys
import time

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def main():
    s = np.load(sys.argv[1]).reshape(-1)
    l = np.load(sys.argv[2]).reshape(-1).astype(np.uint8)
    keep = l != 255
    y = (l[keep] == 1).astype(np.int64)
    x = s[keep].astype(np.float64)
    out = {"n_pos": int(y.sum()), "n_neg": int(len(y) - y.sum())}
    t0 = time.perf_counter()
    out["AP"] = float(average_precision_score(y, x))
    out["AUROC"] = float(roc_auc_score(y, x))
    out["seconds_sklearn"] = time.perf_counter() - t0
    fpr, tpr, thr = roc_curve(y, x)
    i = int(np.argmax(tpr >= 0.95))
    out["fpr95_first_ge"], out["thr_first_ge"] = float(fpr[i]), float(thr[i])
    i = int(np.argmin(np.abs(tpr - 0.95)))
    out["fpr95_nearest"], out["thr_nearest"] = float(fpr[i]), float(thr[i])
    i = int(np.argmax(tpr > 0.95))
    out["fpr95_first_gt"], out["thr_first_gt"] = float(fpr[i]), float(thr[i])
    text = json.dumps(out, indent=1)
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
