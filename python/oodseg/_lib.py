"""Finding liboodseg.so and declaring the C API of include/oodseg.h to ctypes.

ctypes.CDLL releases the GIL around every foreign call, so library work (the network, the
methods, the metrics) runs while other Python threads run, and two models score at once.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from ctypes import (POINTER, Structure, c_char, c_char_p, c_double, c_float, c_int, c_int32,
                    c_int64, c_uint8, c_void_p)

OK, E_ARG, E_IO, E_FORMAT, E_MODEL, E_NOMEM, E_DATA, E_INTERNAL, E_INTERRUPTED = 0, 2, 3, 4, 5, 6, 7, 8, 9
FLOAT32, FLOAT64 = 1, 2
MAX_METHODS = 8


class Owned:
    """A library object held through ``self._h``: ``close()`` frees it (subclasses define it), and
    ``with`` or garbage collection close it too."""
    _h = None

    def close(self) -> None:   # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        if getattr(self, "_h", None):
            self.close()


class Error(Exception):
    """An error of the library (or of the arguments given to it): ``code`` is the status code of
    include/oodseg.h (also the CLI's exit status), ``message`` what was wrong, where, and what to do."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class Status(Structure):
    _fields_ = [("code", c_int), ("message", c_char * 1024)]


class Options(Structure):
    _fields_ = [("threads", c_int), ("device", c_int), ("size", c_char_p), ("id_channels", c_char_p),
                ("offset_scale", c_double), ("want_all", c_int),
                ("mode", c_char_p), ("crop", c_char_p), ("stride", c_char_p), ("backbone", c_char_p),
                ("precision", c_char_p),
                ("max_memory", ctypes.c_uint64)]


class ModelInfo_(Structure):
    _fields_ = [("arch", c_char_p), ("dataset", c_char_p), ("source_format", c_char_p),
                ("source_dtype", c_char_p), ("num_parameters", c_int64), ("num_outputs", c_int),
                ("num_id_classes", c_int)]


class Tensor(Structure):
    _fields_ = [("name", c_char_p), ("ndim", c_int), ("shape", c_int64 * 4), ("data", POINTER(c_float))]


class Maps(Structure):
    _fields_ = [("width", c_int), ("height", c_int), ("n_methods", c_int),
                ("method", c_char_p * MAX_METHODS), ("score", POINTER(c_float) * MAX_METHODS),
                ("seg", POINTER(c_uint8)), ("clusters", POINTER(c_int32)), ("num_clusters", c_int),
                ("cluster_ood", POINTER(c_uint8)), ("tau", c_double),
                ("seconds_forward", c_double), ("seconds_methods", c_double)]


class Metrics(Structure):
    _fields_ = [("n_pos", c_int64), ("n_neg", c_int64), ("defined", c_int), ("ap", c_double),
                ("auroc", c_double), ("fpr95", c_double), ("fpr95_threshold", c_double),
                ("best_f1", c_double), ("best_f1_threshold", c_double), ("curve_points", c_int),
                ("recall", POINTER(c_float)), ("precision", POINTER(c_float)),
                ("fpr", POINTER(c_float)), ("tpr", POINTER(c_float)), ("has_components", c_int),
                ("comp_threshold", c_double), ("siou", c_double), ("ppv", c_double),
                ("f1_mean", c_double)]


class EvalOptions(Structure):
    _fields_ = [("convention", c_char_p), ("fpr_convention", c_char_p), ("components", c_int),
                ("comp_threshold_set", c_int), ("comp_threshold", c_double)]


class Curve(Structure):
    _fields_ = [("n", c_int64), ("n_pos", c_int64), ("n_neg", c_int64),
                ("threshold", POINTER(c_double)), ("tp", POINTER(c_double)), ("fp", POINTER(c_double))]


_P = c_void_p      # opaque handles
_ST = POINTER(Status)
_SIGNATURES = {
    "oodseg_version": (c_char_p, []),
    "oodseg_model_open": (c_int, [c_char_p, POINTER(Options), POINTER(_P), _ST]),
    "oodseg_model_close": (None, [_P]),
    "oodseg_model_get_info": (None, [_P, POINTER(ModelInfo_)]),
    "oodseg_default_model": (c_char_p, [_ST]),
    "oodseg_run_image": (c_int, [_P, c_char_p, POINTER(_P), _ST]),
    "oodseg_run_rgb": (c_int, [_P, c_void_p, c_int, c_int, POINTER(_P), _ST]),
    "oodseg_result_count": (c_int, [_P]),
    "oodseg_result_at": (c_int, [_P, c_int, POINTER(Tensor)]),
    "oodseg_result_free": (None, [_P]),
    "oodseg_method_name": (c_char_p, [c_int]),
    "oodseg_scorer_open": (c_int, [_P, c_char_p, POINTER(c_char_p), POINTER(_P), _ST]),
    "oodseg_scorer_close": (None, [_P]),
    "oodseg_scorer_options_json": (c_char_p, [_P]),
    "oodseg_score_image": (c_int, [_P, c_char_p, POINTER(POINTER(Maps)), _ST]),
    "oodseg_score_rgb": (c_int, [_P, c_void_p, c_int, c_int, c_int, POINTER(POINTER(Maps)), _ST]),
    "oodseg_maps_free": (None, [POINTER(Maps)]),
    "oodseg_metrics_compute": (c_int, [c_void_p, c_void_p, c_int64, c_int, c_int, c_char_p,
                                       POINTER(Metrics), _ST]),
    "oodseg_metrics_release": (None, [POINTER(Metrics)]),
    "oodseg_evaluator_open": (c_int, [POINTER(c_char_p), c_int, POINTER(EvalOptions), POINTER(_P), _ST]),
    "oodseg_evaluator_add": (c_int, [_P, c_char_p, POINTER(POINTER(c_float)), c_void_p, c_int, c_int, _ST]),
    "oodseg_evaluator_finish": (c_int, [_P, _ST]),
    "oodseg_evaluator_result": (c_int, [_P, c_int, POINTER(Metrics), _ST]),
    "oodseg_evaluator_write_reports": (c_int, [_P, c_char_p, c_char_p, _ST]),
    "oodseg_evaluator_save_state": (c_int, [_P, c_char_p, _ST]),
    "oodseg_evaluator_close": (None, [_P]),
    "oodseg_curve_compute": (c_int, [c_void_p, c_int, c_void_p, c_int64, c_int, c_int, c_int,
                                     POINTER(Curve), _ST]),
    "oodseg_curve_release": (None, [POINTER(Curve)]),
    "oodseg_evaluator_merge": (c_int, [POINTER(c_char_p), c_int, c_char_p, c_char_p, POINTER(_P), _ST]),
    "oodseg_evaluator_method_count": (c_int, [_P]),
    "oodseg_evaluator_method": (c_char_p, [_P, c_int]),
    "oodseg_evaluator_image_count": (c_int, [_P]),
}


def _candidates() -> list[str]:
    """Where the library may be, in the order tried (OODSEG_LIBRARY alone when it is set)."""
    env = os.environ.get("OODSEG_LIBRARY")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [os.path.join(here, "liboodseg.so")]                       # make python
    for prefix in dict.fromkeys([sys.prefix, "/usr/local", "/usr"]):    # make install PREFIX=...
        paths.append(os.path.join(prefix, "lib", "liboodseg.so"))
    found = ctypes.util.find_library("oodseg")                          # the loader's own paths
    if found:
        paths.append(found)
    return paths


def _load() -> ctypes.CDLL:
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(f"{path} (not there)")
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path} ({e})")
            continue
        try:
            for name, (res, args) in _SIGNATURES.items():
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = res, args
        except AttributeError as e:
            tried.append(f"{path} (an older liboodseg without {e.args[0].split()[-1]}: rebuild it)")
            continue
        return lib
    raise ImportError("oodseg: liboodseg.so not found; tried:\n  " + "\n  ".join(tried) +
                      "\nBuild it into the package with `make python` (then PYTHONPATH=build/python), "
                      "install it with `make install PREFIX=...`, or set OODSEG_LIBRARY to its path.")


lib = _load()


def check(rc: int, st: Status) -> None:
    """Raises Error for a failed call."""
    if rc:
        raise Error(st.code or rc, st.message.decode("utf-8", "replace"))


def b(s) -> bytes | None:
    """A str or os.PathLike as the bytes a char * takes; None stays NULL."""
    return None if s is None else os.fsencode(s)
