#!/usr/bin/python3
"""How far the K-Means clusterings of two `oodseg score` runs over the same images lie apart.

  tools/clusterings_moved.py DIR_A DIR_B [--verbose]

DIR_A and DIR_B hold <stem>_kmeans_score.npy maps of the same images, e.g. from
`oodseg score --method kmeans --pictures none` with --precision fp32 and bf16, or from two
builds. With the default S2 score every pixel of a cluster carries its cluster's mean, so the
distinct values of a map are its clusters (two clusters with the very same mean would count as
one; their union then moves as one). A pixel "moves" when it is not in the cluster of B that
holds most of its cluster of A; cluster names do not matter. Prints the number of images, those
with any, more than 1 % and more than 10 % of their pixels moved, and the mean share moved
(BENCHMARKS.md, sixth sitting). Debian's /usr/bin/python3 with NumPy.
"""
import argparse
import glob
import os
import sys

import numpy as np


def load(path):
    try:
        return np.load(path)
    except (OSError, ValueError) as e:
        sys.exit(f"clusterings_moved: cannot read {path}: {e} (a score map of oodseg score?)")


def moved_share(a, b):
    _, la = np.unique(a, return_inverse=True)
    _, lb = np.unique(b, return_inverse=True)
    cont = np.zeros((la.max() + 1, lb.max() + 1), dtype=np.int64)
    np.add.at(cont, (la.ravel(), lb.ravel()), 1)
    return 1.0 - cont.max(axis=1).sum() / la.size


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir_a")
    ap.add_argument("dir_b")
    ap.add_argument("--verbose", action="store_true", help="one line per image")
    o = ap.parse_args()
    paths = sorted(glob.glob(os.path.join(o.dir_a, "*_kmeans_score.npy")))
    if not paths:
        sys.exit(f"clusterings_moved: no *_kmeans_score.npy in {o.dir_a} (run oodseg score --method kmeans)")
    shares = []
    for pa in paths:
        pb = os.path.join(o.dir_b, os.path.basename(pa))
        if not os.path.exists(pb):
            sys.exit(f"clusterings_moved: {pb} is missing: the two folders must hold the same images")
        a, b = load(pa), load(pb)
        if a.shape != b.shape:
            sys.exit(f"clusterings_moved: {os.path.basename(pa)}: shapes {a.shape} and {b.shape} differ")
        shares.append(moved_share(a, b))
        if o.verbose:
            print(f"{os.path.basename(pa)[:-len('_kmeans_score.npy')]}\t{100 * shares[-1]:.2f} %")
    s = np.array(shares)
    print(f"images {len(s)}; with pixels moved {(s > 0).sum()}, > 1 % {(s > 0.01).sum()}, "
          f"> 10 % {(s > 0.1).sum()}; mean share moved {100 * s.mean():.1f} %")


if __name__ == "__main__":
    main()
