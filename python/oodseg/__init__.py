"""oodseg: training-free out-of-distribution segmentation, over liboodseg (ctypes, numpy only).

    import oodseg
    with oodseg.Model() as m:                               # the default model
        maps = m.score("frame.png", methods=("kmeans", "maxlogit"))
    print(oodseg.metrics(maps["kmeans"], labels, ood=1, ignore=255)["AP"])

Model (the network and the OoD methods), metrics and Evaluator (exact pooled metrics, shard
states), oodseg.sklearn (drop-ins for scikit-learn's binary ranking metrics). Errors raise
oodseg.Error with the library's status code and message.
"""
from ._version import __version__
from ._lib import Error
from ._model import Model, ModelInfo
from ._metrics import Evaluator, metrics
from . import sklearn

__all__ = ["__version__", "Error", "Model", "ModelInfo", "Evaluator", "metrics", "sklearn",
           "library_version", "methods"]


def library_version() -> str:
    """The version of the liboodseg.so loaded."""
    from ._lib import lib
    return lib.oodseg_version().decode()


def methods() -> list[str]:
    """The OoD methods' names: msp, maxlogit, entropy, energy, kmeans (the paper's), centroid."""
    from ._lib import lib
    out, i = [], 0
    while (n := lib.oodseg_method_name(i)) is not None:
        out.append(n.decode())
        i += 1
    return out
