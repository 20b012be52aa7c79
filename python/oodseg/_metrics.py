"""Exact OoD metrics on numpy arrays: one call (metrics) or streamed image by image (Evaluator)."""
from __future__ import annotations

import ctypes
import os
from typing import Any, Mapping, Sequence

import numpy as np

from . import _lib
from ._lib import E_ARG, Error, b, check, lib


def _as_scores(x: Any, what: str) -> np.ndarray:
    """float32, C-contiguous; a copy only when the array is not already that."""
    a = np.asarray(x)
    if a.dtype.kind not in "fiub":
        raise Error(E_ARG, f"{what}: dtype {a.dtype}, expected float32 scores")
    return np.ascontiguousarray(a, dtype=np.float32)


def _as_labels(x: Any, what: str) -> np.ndarray:
    """uint8, C-contiguous; other integer dtypes are converted when every value is in 0..255."""
    a = np.asarray(x)
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype.kind not in "iub":
        raise Error(E_ARG, f"{what}: dtype {a.dtype}, expected integer labels (uint8)")
    if a.size and (a.min() < 0 or a.max() > 255):
        raise Error(E_ARG, f"{what}: values {a.min()}..{a.max()}, expected 0..255")
    return np.ascontiguousarray(a, dtype=np.uint8)


def _result(m: _lib.Metrics) -> dict[str, Any]:
    n = m.curve_points
    curve = lambda p: np.ctypeslib.as_array(p, shape=(n,)).copy() if n else np.zeros(0, np.float32)
    r = {"AP": m.ap, "AUROC": m.auroc, "FPR95": m.fpr95, "FPR95_threshold": m.fpr95_threshold,
         "best_F1": m.best_f1, "best_F1_threshold": m.best_f1_threshold,
         "n_ood": m.n_pos, "n_id": m.n_neg, "defined": bool(m.defined),
         "recall": curve(m.recall), "precision": curve(m.precision),
         "fpr": curve(m.fpr), "tpr": curve(m.tpr)}
    if m.has_components:
        r.update(sIoU=m.siou, PPV=m.ppv, F1_mean=m.f1_mean, component_threshold=m.comp_threshold)
    return r


def metrics(scores: np.ndarray, labels: np.ndarray, *, ood: int = 1, ignore: int = 255,
            fpr_convention: str = "first-ge") -> dict[str, Any]:
    """Exact pixel-level OoD metrics of score maps against labels (any equal shapes).

    A label equal to ``ood`` is OoD (the positive class), ``ignore`` is left out, any other value is
    in-distribution; higher scores are more anomalous. Values equal scikit-learn's
    average_precision_score, roc_auc_score and roc_curve on the valid pixels. Scores are float32
    (other dtypes are converted); arrays already float32 / uint8 and contiguous are not copied.

    Returns {"AP", "AUROC", "FPR95", "FPR95_threshold", "best_F1", "best_F1_threshold", "n_ood",
    "n_id", "defined", and the decimated curves "recall", "precision", "fpr", "tpr" (float32,
    descending threshold)}. fpr_convention: "first-ge" (SMIYC), "nearest" (ADE-OoD), "first-gt" (RbA).
    """
    s, l = _as_scores(scores, "scores"), _as_labels(labels, "labels")
    if s.shape != l.shape:
        raise Error(E_ARG, f"scores {s.shape} and labels {l.shape} differ in shape")
    st, m = _lib.Status(), _lib.Metrics()
    check(lib.oodseg_metrics_compute(s.ctypes.data, l.ctypes.data, s.size, ood, ignore,
                                     fpr_convention.encode(), ctypes.byref(m), st), st)
    try:
        return _result(m)
    finally:
        lib.oodseg_metrics_release(ctypes.byref(m))


class Evaluator(_lib.Owned):
    """Pools score maps image by image, exactly (no binning), like ``oodseg eval``.

    convention: how label maps are read: "binary" (0 ID, 1 OoD, 255 ignore) or a dataset layout
    ("roadanomaly", "smiyc-anomaly", "smiyc-obstacle", "fishyscapes-laf", "fishyscapes-static",
    "camvid-ood", "ade-ood") whose raw label values are given. methods: the names of the maps
    added together (one by default). components: SMIYC component metrics (None: the convention's
    default).

        ev = oodseg.Evaluator("binary")
        for score, label in pairs: ev.add(score, label)
        print(ev.result()["AP"])

    Shards: ``save_state(path)`` on each, then ``Evaluator.merge(paths)``, exactly like
    ``oodseg metrics --merge``.
    """

    def __init__(self, convention: str = "binary", *, methods: Sequence[str] = ("score",),
                 fpr_convention: str = "first-ge", components: bool | None = None,
                 component_threshold: float | None = None):
        self._h = None
        if isinstance(methods, str):
            methods = (methods,)
        names = [m.encode() for m in methods]
        opt = _lib.EvalOptions(convention=b(convention), fpr_convention=b(fpr_convention),
                               components=0 if components is None else (1 if components else -1),
                               comp_threshold_set=component_threshold is not None,
                               comp_threshold=component_threshold or 0.0)
        st, h = _lib.Status(), ctypes.c_void_p()
        check(lib.oodseg_evaluator_open((ctypes.c_char_p * len(names))(*names), len(names),
                                        ctypes.byref(opt), ctypes.byref(h), st), st)
        self._h = h
        self._finished = False
        self.methods = tuple(methods)

    @classmethod
    def merge(cls, paths: Sequence[str | os.PathLike[str]], *, fpr_convention: str = "first-ge",
              save_state: str | os.PathLike[str] | None = None) -> "Evaluator":
        """A finished evaluator from shard states (``save_state`` or ``oodseg eval --save-state``):
        its metrics are exactly those of one pass over all their pixels. save_state: also write
        the merged state there."""
        if isinstance(paths, (str, bytes, os.PathLike)):
            paths = [paths]
        ps = [b(p) for p in paths]
        st, h = _lib.Status(), ctypes.c_void_p()
        check(lib.oodseg_evaluator_merge((ctypes.c_char_p * max(len(ps), 1))(*ps), len(ps),
                                         fpr_convention.encode(), b(save_state), ctypes.byref(h), st), st)
        self = cls.__new__(cls)
        self._h, self._finished = h, True
        self.methods = tuple(lib.oodseg_evaluator_method(h, i).decode()
                             for i in range(lib.oodseg_evaluator_method_count(h)))
        return self

    def close(self) -> None:
        if self._h:
            lib.oodseg_evaluator_close(self._h)
        self._h = None

    def _handle(self):
        if not self._h:
            raise Error(E_ARG, "the evaluator is closed")
        return self._h

    @property
    def images(self) -> int:
        """Images added (for a merged evaluator: summed over its states)."""
        return lib.oodseg_evaluator_image_count(self._handle())

    def add(self, score_map: np.ndarray | Mapping[str, np.ndarray], label_map: np.ndarray,
            name: str | None = None) -> None:
        """One image: its (H, W) score map (a dict {method: map} for several methods) and its
        (H, W) label map in the evaluator's convention."""
        h = self._handle()
        if self._finished:
            raise Error(E_ARG, "the evaluator is finished (result() was called): open a new one to add images")
        if isinstance(score_map, Mapping):
            missing = [m for m in self.methods if m not in score_map]
            if missing:
                raise Error(E_ARG, f"add: no score map for method(s) {missing} (have {list(score_map)})")
            maps = [score_map[m] for m in self.methods]
        else:
            if len(self.methods) != 1:
                raise Error(E_ARG, f"add: give a dict of score maps for the methods {list(self.methods)}")
            maps = [score_map]
        maps = [_as_scores(m, "score_map") for m in maps]
        lab = _as_labels(label_map, "label_map")
        if lab.ndim != 2:
            raise Error(E_ARG, f"label_map: shape {lab.shape}, expected (height, width)")
        for m in maps:
            if m.shape != lab.shape:
                raise Error(E_ARG, f"score_map {m.shape} and label_map {lab.shape} differ in shape")
        ptrs = (ctypes.POINTER(ctypes.c_float) * len(maps))(
            *[m.ctypes.data_as(ctypes.POINTER(ctypes.c_float)) for m in maps])
        st = _lib.Status()
        check(lib.oodseg_evaluator_add(h, b(name), ptrs, lab.ctypes.data, lab.shape[1], lab.shape[0], st), st)

    def _finish(self):
        h = self._handle()
        if not self._finished:
            st = _lib.Status()
            check(lib.oodseg_evaluator_finish(h, st), st)
            self._finished = True
        return h

    def result(self, method: str | None = None) -> dict[str, Any]:
        """The pooled metrics (as oodseg.metrics returns them, plus sIoU, PPV and F1_mean where
        component metrics are on). With several methods and no ``method``: {method: metrics}.
        No image may be added afterwards."""
        h = self._finish()
        if method is None and len(self.methods) > 1:
            return {m: self.result(m) for m in self.methods}
        i = 0 if method is None else (self.methods.index(method) if method in self.methods else -1)
        if i < 0:
            raise Error(E_ARG, f"result: no method {method!r} (have {list(self.methods)})")
        st, m = _lib.Status(), _lib.Metrics()
        check(lib.oodseg_evaluator_result(h, i, ctypes.byref(m), st), st)
        return _result(m)   # the curves belong to the evaluator: _result copies them

    def save_state(self, path: str | os.PathLike[str]) -> None:
        """Writes the pooled state, to merge shards exactly (Evaluator.merge, oodseg metrics --merge)."""
        st = _lib.Status()
        check(lib.oodseg_evaluator_save_state(self._handle(), b(path), st), st)

    def write_reports(self, directory: str | os.PathLike[str], title: str | None = None) -> None:
        """metrics.json, .md, .csv, per_image.csv and the PR / ROC curves (SVG) into directory."""
        h = self._finish()
        st = _lib.Status()
        check(lib.oodseg_evaluator_write_reports(h, b(directory), b(title), st), st)
