#!/usr/bin/python3
"""scikit-learn reference for oodseg's K-Means (tests/test_kmeans.c, bench/bench_kmeans.c).

Run with Debian's /usr/bin/python3 (scikit-learn 1.2.1, NumPy). Inputs and outputs are .npy files.

  kmeans_ref.py fit X.npy INIT.npy OUTDIR [--threads T] [--repeat R] [--max-iter M] [--tol TOL]
      KMeans(n_clusters=len(INIT), init=INIT, n_init=1, algorithm='lloyd'). Writes
      OUTDIR/labels.npy (float32), OUTDIR/centers.npy (float32) and OUTDIR/result.txt:
        inertia <sklearn's inertia_>  inertia64 <sum of squared distances recomputed in float64
        from sklearn's labels and centres>  n_iter <n>  seconds <median fit time over R runs>
        cpu_seconds <median process CPU time of the fit, all threads>
  kmeans_ref.py pp X.npy K NSEEDS OUTDIR [--threads T]
      KMeans(init='k-means++', n_init=1, random_state=s) for s in 0..NSEEDS-1. Writes
      OUTDIR/result.txt: mean_inertia <mean of inertia64 over the seeds>
"""
import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits


def inertia64(X, labels, centers):
    X = X.astype(np.float64)
    C = centers.astype(np.float64)
    return float(((X - C[labels]) ** 2).sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["fit", "pp"])
    ap.add_argument("args", nargs="+")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    with threadpool_limits(limits=a.threads, user_api="openmp"):
        if a.mode == "fit":
            xp, ip, out = a.args
            X = np.load(xp).astype(np.float32)
            init = np.load(ip).astype(np.float32)
            times, cpus = [], []
            km = None
            for _ in range(a.repeat):
                km = KMeans(n_clusters=init.shape[0], init=init, n_init=1, algorithm="lloyd",
                            max_iter=a.max_iter, tol=a.tol)
                t0, c0 = time.perf_counter(), time.process_time()
                km.fit(X)
                times.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
            os.makedirs(out, exist_ok=True)
            np.save(os.path.join(out, "labels.npy"), km.labels_.astype(np.float32))
            np.save(os.path.join(out, "centers.npy"), km.cluster_centers_.astype(np.float32))
            with open(os.path.join(out, "result.txt"), "w") as f:
                f.write("inertia %.17g inertia64 %.17g n_iter %d seconds %.9g cpu_seconds %.9g\n" % (
                    km.inertia_, inertia64(X, km.labels_, km.cluster_centers_), km.n_iter_,
                    statistics.median(times), statistics.median(cpus)))
        else:
            xp, k, ns, out = a.args
            X = np.load(xp).astype(np.float32)
            vals = []
            for s in range(int(ns)):
                km = KMeans(n_clusters=int(k), init="k-means++", n_init=1, algorithm="lloyd",
                            random_state=s, max_iter=a.max_iter, tol=a.tol).fit(X)
                vals.append(inertia64(X, km.labels_, km.cluster_centers_))
            os.makedirs(out, exist_ok=True)
            with open(os.path.join(out, "result.txt"), "w") as f:
                f.write("mean_inertia %.17g\n" % (sum(vals) / len(vals)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
