# tools/clusterings_moved.py: the share of pixels that change cluster between two score runs, and
# its errors on bad input.
import os
import subprocess
import sys

import numpy as np

from conftest import ROOT

TOOL = os.path.join(ROOT, "tools", "clusterings_moved.py")


def run(a, b):
    return subprocess.run([sys.executable, TOOL, str(a), str(b)], capture_output=True, text=True)


def s2_map(labels, means):
    """An S2 score map: every pixel carries its cluster's value."""
    return np.asarray(means, dtype=np.float32)[labels]


def test_moved_share(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    lab = np.zeros((10, 10), dtype=np.int64)
    lab[:, 5:] = 1                                        # two clusters of 50 pixels
    np.save(a / "x_kmeans_score.npy", s2_map(lab, [0.5, 2.0]))
    np.save(b / "x_kmeans_score.npy", s2_map(1 - lab, [-1.0, 3.0]))   # renamed, other means
    lab2 = lab.copy()
    lab2[0, :5] = 1                                       # 5 of the 100 pixels change cluster
    np.save(a / "y_kmeans_score.npy", s2_map(lab, [0.5, 2.0]))
    np.save(b / "y_kmeans_score.npy", s2_map(lab2, [0.5, 2.0]))
    r = run(a, b)
    assert r.returncode == 0, r.stderr
    assert "images 2; with pixels moved 1, > 1 % 1, > 10 % 0; mean share moved 2.5 %" in r.stdout


def test_bad_inputs_are_named(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    r = run(a, b)
    assert r.returncode != 0 and "no *_kmeans_score.npy in" in r.stderr
    np.save(a / "x_kmeans_score.npy", np.zeros((4, 4), np.float32))
    r = run(a, b)
    assert r.returncode != 0 and "x_kmeans_score.npy is missing" in r.stderr
    np.save(b / "x_kmeans_score.npy", np.zeros((4, 5), np.float32))
    r = run(a, b)
    assert r.returncode != 0 and "shapes (4, 4) and (4, 5) differ" in r.stderr
    (b / "x_kmeans_score.npy").write_bytes(b"not a npy file")
    r = run(a, b)
    assert r.returncode != 0 and "cannot read" in r.stderr and "x_kmeans_score.npy" in r.stderr
    assert "Traceback" not in r.stderr


# tools/flops_reference.py (the PyTorch counts tests/test_bench_cmd.c holds oodseg's to): its
# errors come before PyTorch is needed.
FLOPS = os.path.join(ROOT, "tools", "flops_reference.py")


def test_flops_reference_errors(tmp_path):
    env = dict(os.environ, OODSEG_ASSETS=str(tmp_path))
    r = subprocess.run([sys.executable, FLOPS, "resnet"], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "unknown model 'resnet': espnet or espnetv2" in r.stderr
    r = subprocess.run([sys.executable, FLOPS, "espnet"], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "reference-pytorch: set OODSEG_ASSETS" in r.stderr
