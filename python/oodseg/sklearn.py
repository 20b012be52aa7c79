"""Drop-ins for scikit-learn's binary ranking metrics: the same signatures and values (to 1e-9),
on liboodseg's exact radix-sorted curves instead of an argsort.

    from oodseg.sklearn import average_precision_score, roc_auc_score, roc_curve

The binary case is computed here: y_true of two values (or one), y_score float or integer. What
it is not (sample weights, multiclass or multilabel targets, max_fpr, average over columns) is
passed to scikit-learn itself when it is installed, so a replaced import never changes an answer.
roc_curve and float64 scores that float32 cannot hold go through the full curve, built the way
scikit-learn 1.2 builds it (_binary_clf_curve, then the same numpy formulas), so the values agree to
the last bits; AP and AUROC of float32-exact scores come from the library's one-pass sweep (equal
to scikit-learn's to 1e-9, without the curve arrays).
"""
from __future__ import annotations

import ctypes
import importlib
import warnings
from typing import Any

import numpy as np

from . import _lib
from ._lib import E_ARG, Error, check, lib

__all__ = ["average_precision_score", "roc_auc_score", "roc_curve"]


class _NotBinary(Exception):
    pass


def _sklearn(name: str, *args, **kwargs):
    try:
        metrics = importlib.import_module("sklearn.metrics")
    except ImportError as e:
        raise Error(E_ARG, f"oodseg.sklearn.{name}: this case (sample weights, multiclass or multilabel "
                    "targets, max_fpr) needs scikit-learn, which is not installed") from e
    return getattr(metrics, name)(*args, **kwargs)


def _inputs(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    t, s = np.asarray(y_true), np.asarray(y_score)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if t.ndim != 1 or s.ndim != 1:
        raise _NotBinary()
    if t.shape[0] != s.shape[0]:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: {[t.shape[0], s.shape[0]]}")
    if s.dtype.kind not in "fiub":
        raise _NotBinary()
    if s.dtype.kind == "f" and not np.isfinite(s).all():
        raise ValueError("Input contains NaN, infinity or a value too large for %r." % s.dtype)
    return t, s


def _classes(t: np.ndarray) -> list:
    """The distinct values of y_true when there are at most two (else _NotBinary), without sorting
    all of them: min and max, then a count."""
    if t.size == 0:
        return []
    if t.dtype.kind not in "biuf":
        u = np.unique(t)
        if len(u) > 2:
            raise _NotBinary()
        return u.tolist()
    lo, hi = t.min(), t.max()
    if lo != hi and np.count_nonzero(t == lo) + np.count_nonzero(t == hi) != t.size:
        raise _NotBinary()   # a third value: multiclass (or continuous)
    if t.dtype.kind == "f" and (lo != np.floor(lo) or hi != np.floor(hi)):
        raise _NotBinary()
    return [lo.item()] if lo == hi else [lo.item(), hi.item()]


def _prepare(t: np.ndarray, s: np.ndarray, pos_label) -> tuple[np.ndarray, np.ndarray, int]:
    """The positives as 0/1 bytes, and the scores as the library takes them."""
    pos = np.ascontiguousarray(t == pos_label).view(np.uint8)
    if s.dtype == np.float32:
        return pos, np.ascontiguousarray(s), _lib.FLOAT32
    sc = np.ascontiguousarray(s, dtype=np.float64)
    s32 = sc.astype(np.float32)
    # exactly float32 values take the parallel float32 sort (the same ties, the same curve)
    return (pos, s32, _lib.FLOAT32) if np.array_equal(s32, sc) else (pos, sc, _lib.FLOAT64)


def _curve(t: np.ndarray, s: np.ndarray, pos_label, drop: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's _binary_clf_curve (fps, tps, thresholds), dropped like roc_curve when drop."""
    pos, sc, dtype = _prepare(t, s, pos_label)
    st, c = _lib.Status(), _lib.Curve()
    check(lib.oodseg_curve_compute(sc.ctypes.data, dtype, pos.ctypes.data, pos.size, 1, -1, int(drop),
                                   ctypes.byref(c), st), st)
    try:
        n = c.n
        arr = lambda p: np.ctypeslib.as_array(p, shape=(n,)).copy() if n else np.zeros(0)
        fps, tps, thr = arr(c.fp), arr(c.tp), arr(c.threshold)
    finally:
        lib.oodseg_curve_release(ctypes.byref(c))
    return fps, tps, thr.astype(s.dtype, copy=False)


def _pooled(t: np.ndarray, s: np.ndarray, pos_label) -> tuple[float, float] | None:
    """(AP, AUROC) by the library's sweep (equal to scikit-learn's to 1e-9, no curve arrays) for
    float32-exact scores with both classes present; None otherwise."""
    pos, sc, dtype = _prepare(t, s, pos_label)
    if dtype != _lib.FLOAT32:
        return None
    st, m = _lib.Status(), _lib.Metrics()
    check(lib.oodseg_metrics_compute(sc.ctypes.data, pos.ctypes.data, pos.size, 1, 255, None,
                                     ctypes.byref(m), st), st)
    lib.oodseg_metrics_release(ctypes.byref(m))
    return (m.ap, m.auroc) if m.defined else None


def _roc(t, s, pos_label, drop):
    fps, tps, thresholds = _curve(t, s, pos_label, drop)
    tps = np.r_[0, tps]
    fps = np.r_[0, fps]
    thresholds = np.r_[thresholds[0] + 1, thresholds]
    if fps[-1] <= 0:
        warnings.warn("No negative samples in y_true, false positive value should be meaningless",
                      UserWarning)
        fpr = np.repeat(np.nan, fps.shape)
    else:
        fpr = fps / fps[-1]
    if tps[-1] <= 0:
        warnings.warn("No positive samples in y_true, true positive value should be meaningless",
                      UserWarning)
        tpr = np.repeat(np.nan, tps.shape)
    else:
        tpr = tps / tps[-1]
    return fpr, tpr, thresholds


def _default_pos_label(classes: list, pos_label):
    if pos_label is not None:
        return pos_label
    if classes and not (set(classes) <= {0, 1} or set(classes) <= {-1, 1}):
        raise ValueError(f"y_true takes value in {set(classes)} and pos_label is not specified: either "
                         "make y_true take value in {0, 1} or {-1, 1} or pass pos_label explicitly.")
    return 1


def roc_curve(y_true, y_score, *, pos_label=None, sample_weight=None, drop_intermediate=True):
    """scikit-learn's roc_curve (1.2): (fpr, tpr, thresholds), thresholds[0] = max score + 1."""
    try:
        if sample_weight is not None:
            raise _NotBinary()
        t, s = _inputs(y_true, y_score)
        pos = _default_pos_label(_classes(t), pos_label)
    except _NotBinary:
        return _sklearn("roc_curve", y_true, y_score, pos_label=pos_label, sample_weight=sample_weight,
                        drop_intermediate=drop_intermediate)
    return _roc(t, s, pos, drop_intermediate)


def roc_auc_score(y_true, y_score, *, average="macro", sample_weight=None, max_fpr=None,
                  multi_class="raise", labels=None):
    """scikit-learn's roc_auc_score for a binary y_true: the trapezoids under roc_curve."""
    try:
        if sample_weight is not None or max_fpr is not None:
            raise _NotBinary()
        t, s = _inputs(y_true, y_score)
        classes = _classes(t)
    except _NotBinary:
        return _sklearn("roc_auc_score", y_true, y_score, average=average, sample_weight=sample_weight,
                        max_fpr=max_fpr, multi_class=multi_class, labels=labels)
    if len(classes) != 2:
        raise ValueError("Only one class present in y_true. ROC AUC score is not defined in that case.")
    fast = _pooled(t, s, classes[1])             # label_binarize: the larger class is positive
    if fast is not None:
        return float(fast[1])
    fpr, tpr, _ = _roc(t, s, classes[1], True)
    return float(np.trapz(tpr, fpr))


def average_precision_score(y_true, y_score, *, average="macro", pos_label=1, sample_weight=None):
    """scikit-learn's average_precision_score for a binary y_true: sum over the distinct scores,
    descending, of (R_n - R_(n-1)) P_n."""
    try:
        if sample_weight is not None:
            raise _NotBinary()
        t, s = _inputs(y_true, y_score)
        classes = _classes(t)
    except _NotBinary:
        return _sklearn("average_precision_score", y_true, y_score, average=average,
                        pos_label=pos_label, sample_weight=sample_weight)
    if len(classes) == 2 and pos_label not in classes:
        raise ValueError(f"pos_label={pos_label} is not a valid label. It should be one of {classes}")
    fast = _pooled(t, s, pos_label)
    if fast is not None:
        return float(fast[0])
    fps, tps, _ = _curve(t, s, pos_label, False)
    if fps.size == 0:
        return float("nan")
    precision = tps / (tps + fps)
    if tps[-1] == 0:
        warnings.warn("No positive class found in y_true, recall is set to one for all thresholds "
                      "which leads to a single point on the curve.", UserWarning)
        recall = np.ones_like(tps)
    else:
        recall = tps / tps[-1]
    precision = np.hstack((precision[::-1], 1))
    recall = np.hstack((recall[::-1], 0))
    return float(-np.sum(np.diff(recall) * np.array(precision)[:-1]))
