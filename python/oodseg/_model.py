"""oodseg.Model: a segmentation network from its checkpoint, and the OoD methods over it."""
from __future__ import annotations

import ctypes
import dataclasses
import os
import threading
from typing import Any, Mapping, Sequence, Union

import numpy as np

from . import _lib
from ._lib import E_ARG, Error, b, check, lib

Image = Union[str, "os.PathLike[str]", np.ndarray]


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What was recognised from the checkpoint."""
    path: str                 # the checkpoint opened (the default model's path when none was given)
    arch: str                 # e.g. "espnetv2-s2.0", "internimage-t+upernet"
    dataset: str              # "cityscapes", "ade20k", "camvid"
    source_format: str        # "safetensors", "torch-zip", "torch-legacy"
    source_dtype: str         # of the weights in the file, e.g. "F32"
    num_parameters: int
    num_outputs: int          # logit channels
    num_id_classes: int       # in-distribution channels used by every OoD score


def _rgb_view(image: np.ndarray) -> tuple[np.ndarray, int]:
    """The image as rows of packed R,G,B bytes and the rows' stride; a copy only when the pixels or
    channels are not packed (a channel-sliced, flipped or transposed view)."""
    if not isinstance(image, np.ndarray):
        raise Error(E_ARG, f"image: expected a path or an HxWx3 uint8 numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise Error(E_ARG, f"image: dtype {image.dtype}, expected uint8 (RGB, 0..255); "
                    "convert with np.clip(x, 0, 255).astype(np.uint8)")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise Error(E_ARG, f"image: shape {image.shape}, expected (height, width, 3) RGB")
    h, w, _ = image.shape
    if not (image.strides[2] == 1 and image.strides[1] == 3 and image.strides[0] >= 3 * w):
        image = np.ascontiguousarray(image)
    return image, image.strides[0]


def _option_list(options: Mapping[str, Any]) -> Any:
    """method_options as the C list {name, value, ..., NULL}; k_means_style names become k-means-style."""
    items = []
    for k, v in sorted(options.items()):
        if isinstance(v, bool):
            v = int(v)
        if isinstance(v, os.PathLike):
            v = os.fspath(v)
        items += [k.replace("_", "-").encode(), (repr(v) if isinstance(v, float) else str(v)).encode()]
    arr = (ctypes.c_char_p * (len(items) + 1))(*items, None)
    return arr


def _size_bytes(v) -> int:
    """max_memory as bytes (0: the library's default): an int, or "8G" / "512M" / "1.5G" with the
    CLI's binary units (--max-memory)."""
    if v is None:
        return 0
    if isinstance(v, int) and not isinstance(v, bool) and v >= 1 << 20:
        return v
    if isinstance(v, str):
        s = v.strip().upper().removesuffix("B").removesuffix("I")
        unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(s[-1:], 1)
        try:
            n = float(s[:-1] if unit > 1 else s) * unit
        except ValueError:
            n = 0
        if n >= 1 << 20 and n == n and n != float("inf"):
            return int(n)
    raise Error(E_ARG, f"max_memory: {v!r}, expected bytes (at least 1 MiB) or a size such as '8G' or '512M'")


class Model(_lib.Owned):
    """A model opened from its checkpoint (.pth or .safetensors); ``path=None`` opens the default
    model (ESPNetv2 s=2.0 Cityscapes). Use it in a ``with`` block, or call ``close()``.

    ``threads``: the threads of this model's work, 0 every core (results do not depend on it).
    ``size``: None for the model's own test resize, "native", or "WxH". ``id_channels``: None for
    the model's default in-distribution channels, or e.g. "0-18". ``backbone``: the backbone file
    of a two-file model (DINOv2: ``path`` is the head file, this dinov2_<arch>_pretrain.pth).
    ``mode``: None for the model's official test mode, "whole" or "slide"; ``crop`` and ``stride``:
    the slide windows, "HxW" or "S" (None: the model's). ``precision``: None or "fp32", or "bf16"
    for the convolutions' and linear layers' GEMMs in bf16 with fp32 accumulation (CPUs with
    AVX512-BF16 only; elsewhere opening fails saying so). ``max_memory``: what this model's calls
    may allocate, bytes or a size such as "8G" or "512M" (None: the available memory less 10% or
    256 MiB); a checkpoint, image or forward pass that needs more raises Error with code 6
    (E_NOMEM) saying how much it needs, before allocating. Test-time augmentation is a scoring
    option: ``model.score(image, methods=("msp",), tta="on")``.

    One model serves one thread at a time (calls from several threads wait their turn); open one
    model per thread to score in parallel. The GIL is released while the library works.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, threads: int = 0,
                 size: str | None = None, id_channels: str | None = None,
                 backbone: str | os.PathLike[str] | None = None, mode: str | None = None,
                 crop: str | None = None, stride: str | None = None, precision: str | None = None,
                 max_memory: int | str | None = None):
        self._h = None
        self._scorers: dict = {}
        self._lock = threading.Lock()
        if not isinstance(threads, int) or threads < 0:
            raise Error(E_ARG, f"threads: {threads!r}, expected an integer >= 0 (0: every core)")
        opt = _lib.Options(threads=threads, size=b(size), id_channels=b(id_channels), backbone=b(backbone),
                           mode=b(mode), crop=b(crop), stride=b(stride), precision=b(precision),
                           max_memory=_size_bytes(max_memory))
        st, h = _lib.Status(), ctypes.c_void_p()
        if path is not None and not isinstance(path, (str, bytes, os.PathLike)):
            raise Error(E_ARG, f"path: expected a checkpoint path or None, got {type(path).__name__}")
        check(lib.oodseg_model_open(b(path), ctypes.byref(opt), ctypes.byref(h), st), st)
        self._h = h
        mi = _lib.ModelInfo_()
        lib.oodseg_model_get_info(h, ctypes.byref(mi))
        if path is None:
            p = lib.oodseg_default_model(None)
            path = p.decode() if p else "(the default model)"
        s = lambda x: x.decode() if x else ""
        self.info = ModelInfo(os.fspath(path), s(mi.arch), s(mi.dataset), s(mi.source_format),
                              s(mi.source_dtype), mi.num_parameters, mi.num_outputs, mi.num_id_classes)

    # ---- lifetime --------------------------------------------------------------------------------
    def close(self) -> None:
        """Frees the model and its scorers; further calls raise Error."""
        with self._lock:
            for s in self._scorers.values():
                lib.oodseg_scorer_close(s)
            self._scorers.clear()
            if self._h:
                lib.oodseg_model_close(self._h)
            self._h = None

    def __repr__(self) -> str:
        return f"oodseg.Model({self.info.path!r}, arch={self.info.arch!r})" if self._h else "oodseg.Model(closed)"

    def _handle(self):
        if not self._h:
            raise Error(E_ARG, "the model is closed")
        return self._h

    # ---- the network -----------------------------------------------------------------------------
    def forward(self, image: Image) -> dict[str, np.ndarray]:
        """Runs preprocessing and the network on an image (a path, or an HxWx3 uint8 RGB array).
        Returns "logits" (1, C, h, w) and the model's named feature taps, float32 NCHW copies."""
        st, r = _lib.Status(), ctypes.c_void_p()
        with self._lock:
            h = self._handle()
            if isinstance(image, (str, bytes, os.PathLike)):
                rc = lib.oodseg_run_image(h, b(image), ctypes.byref(r), st)
            else:
                arr, _ = _rgb_view(image)
                arr = np.ascontiguousarray(arr)   # oodseg_run_rgb takes packed rows
                rc = lib.oodseg_run_rgb(h, arr.ctypes.data, arr.shape[1], arr.shape[0], ctypes.byref(r), st)
            check(rc, st)
        try:
            out = {}
            t = _lib.Tensor()
            for i in range(lib.oodseg_result_count(r)):
                lib.oodseg_result_at(r, i, ctypes.byref(t))
                shape = tuple(t.shape[: t.ndim])
                out[t.name.decode()] = np.ctypeslib.as_array(t.data, shape=shape).copy()
            return out
        finally:
            lib.oodseg_result_free(r)

    # ---- scoring ---------------------------------------------------------------------------------
    def _scorer(self, methods: Sequence[str], options: Mapping[str, Any]):
        if isinstance(methods, str):
            methods = (methods,)
        methods = tuple(methods)
        if not methods or not all(isinstance(m, str) for m in methods):
            raise Error(E_ARG, f"methods: {methods!r}, expected names such as ('maxlogit', 'kmeans')")
        key = (methods, tuple(sorted((k, repr(v)) for k, v in options.items())))
        s = self._scorers.get(key)
        if s is None:
            st, s = _lib.Status(), ctypes.c_void_p()
            check(lib.oodseg_scorer_open(self._handle(), ",".join(methods).encode(), _option_list(options),
                                         ctypes.byref(s), st), st)
            self._scorers[key] = s
        return s

    def score(self, image: Image, methods: Sequence[str] = ("kmeans",), **method_options: Any) -> dict[str, np.ndarray]:
        """Anomaly maps of an image (a path, or an HxWx3 uint8 RGB array, C-contiguous or not).

        methods: any of "msp", "maxlogit", "entropy", "energy", "kmeans" (the paper's), "centroid".
        method_options: the method options of `oodseg --help`, dashes as underscores, e.g.
        ``k=8, tau=30, centroids="c.safetensors", tau_mode="absolute"``.

        Returns {method: float32 (H, W) map, higher = more anomalous}, plus "seg" (uint8 (H, W),
        the predicted class) and, where kmeans ran, "clusters" (int32 (H, W)) and "cluster_ood"
        (uint8 (k,), 1 where a cluster was marked OoD). Maps are at the image's size and are
        bit-identical to those `oodseg score` saves.
        """
        st, mp = _lib.Status(), ctypes.POINTER(_lib.Maps)()
        with self._lock:
            s = self._scorer(methods, method_options)
            if isinstance(image, (str, bytes, os.PathLike)):
                rc = lib.oodseg_score_image(s, b(image), ctypes.byref(mp), st)
            else:
                arr, stride = _rgb_view(image)
                rc = lib.oodseg_score_rgb(s, arr.ctypes.data, arr.shape[1], arr.shape[0], stride,
                                          ctypes.byref(mp), st)
            check(rc, st)
        try:
            m = mp.contents
            hw = (m.height, m.width)
            out = {m.method[i].decode(): np.ctypeslib.as_array(m.score[i], shape=hw).copy()
                   for i in range(m.n_methods)}
            if m.seg:
                out["seg"] = np.ctypeslib.as_array(m.seg, shape=hw).copy()
            if m.clusters:
                out["clusters"] = np.ctypeslib.as_array(m.clusters, shape=hw).copy()
                out["cluster_ood"] = np.ctypeslib.as_array(m.cluster_ood, shape=(m.num_clusters,)).copy()
            return out
        finally:
            lib.oodseg_maps_free(mp)

    def options(self, methods: Sequence[str] = ("kmeans",), **method_options: Any) -> str:
        """The options of these methods as resolved (defaults included), as JSON text."""
        with self._lock:
            return lib.oodseg_scorer_options_json(self._scorer(methods, method_options)).decode()
