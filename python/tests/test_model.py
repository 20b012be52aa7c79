# oodseg.Model against the `oodseg` tool: every method's map bit-identical to `oodseg score`,
# images as paths or arrays (contiguous or not), two models scoring in two threads at once,
# and wrong inputs raising oodseg.Error.
import glob
import os
import subprocess
import threading
import time

import numpy as np
import pytest

import oodseg
from conftest import BUILD, ROOT

FRAMES = sorted(glob.glob(os.path.join(ROOT, "assets", "demo", "test_ood", "*.png")))
CLI = os.path.join(BUILD, "oodseg")
SIZE = "512x256"        # small, so the suite stays quick
METHODS = ("msp", "maxlogit", "entropy", "energy", "kmeans", "centroid")

pytestmark = pytest.mark.skipif(not FRAMES, reason="no demo frames in assets/demo")


def rgb(path):
    Image = pytest.importorskip("PIL.Image")
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def model():
    with oodseg.Model(size=SIZE, threads=2) as m:
        yield m


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """`oodseg score` of the first frame with every method, and the centroid file it used."""
    d = tmp_path_factory.mktemp("cli")
    cen = str(d / "centroids.safetensors")
    subprocess.run([CLI, "fit-centroids", "--size", SIZE, "-o", cen, FRAMES[1]], check=True, capture_output=True)
    subprocess.run([CLI, "score", "--size", SIZE, "--method", ",".join(METHODS), "--centroids", cen,
                    "-o", str(d), FRAMES[0]], check=True, capture_output=True)
    return d, cen


def test_info_and_version(model):
    assert oodseg.__version__ == oodseg.library_version()
    assert model.info.arch.startswith("espnetv2") and model.info.num_id_classes > 0
    assert os.path.exists(model.info.path)
    assert set(METHODS) == set(oodseg.methods())


def test_score_bit_identical_to_cli_for_every_method(model, cli_run):
    d, cen = cli_run
    maps = model.score(FRAMES[0], methods=METHODS, centroids=cen)
    stem = os.path.splitext(os.path.basename(FRAMES[0]))[0]
    h, w = rgb(FRAMES[0]).shape[:2]
    for m in METHODS:
        ref = np.load(d / f"{stem}_{m}_score.npy")
        assert maps[m].dtype == np.float32 and maps[m].shape == (h, w) == ref.shape
        assert maps[m].tobytes() == ref.tobytes(), m
    assert maps["seg"].shape == (h, w) and maps["clusters"].dtype == np.int32
    assert maps["cluster_ood"].size == int(maps["clusters"].max()) + 1 or maps["cluster_ood"].size >= maps["clusters"].max()


def test_arrays_contiguous_or_not_equal_the_path(model):
    img = rgb(FRAMES[0])
    ref = model.score(FRAMES[0], methods=("maxlogit",))
    views = [img, np.ascontiguousarray(img[::-1])[::-1],          # negative row stride: copied
             np.asfortranarray(img),                               # packed channels lost: copied
             np.pad(img, ((0, 0), (0, 7), (0, 0)))[:, :img.shape[1]]]   # padded rows: no copy
    for v in views:
        assert model.score(v, methods=("maxlogit",))["maxlogit"].tobytes() == ref["maxlogit"].tobytes()
    crop = img[10:200, 30:300]                                     # a strided view, passed as is
    assert model.score(crop, methods="maxlogit")["maxlogit"].shape == (190, 270)


def test_forward(model):
    out = model.forward(FRAMES[0])
    assert out["logits"].ndim == 4 and out["logits"].shape[1] == model.info.num_outputs
    assert np.array_equal(model.forward(rgb(FRAMES[0]))["logits"], out["logits"])


def test_two_models_score_in_two_threads_at_once():
    """The GIL is released in library calls: while thread A is inside one long call on its model,
    thread B completes whole calls on another model. With the GIL held, B could not run at all
    during A's call."""
    img = rgb(FRAMES[0])
    big = np.ascontiguousarray(np.tile(img, (2, 2, 1)))
    spans, b_calls = {}, []
    with oodseg.Model(threads=1) as a, oodseg.Model(size="256x128", threads=1) as b:
        a.score(img, methods="maxlogit"); b.score(img, methods="maxlogit")     # warm up
        started = threading.Event()

        def run_a():
            started.set()
            t0 = time.perf_counter()
            a.score(big, methods=("kmeans",))
            spans["a"] = (t0, time.perf_counter())

        def run_b():
            started.wait()
            while "a" not in spans:
                t0 = time.perf_counter()
                b.score(img, methods="maxlogit")
                b_calls.append((t0, time.perf_counter()))

        ta, tb = threading.Thread(target=run_a), threading.Thread(target=run_b)
        ta.start(); tb.start(); ta.join(); tb.join()
    a0, a1 = spans["a"]
    inside = [c for c in b_calls if c[0] > a0 and c[1] < a1]
    assert len(inside) >= 2, f"B finished {len(inside)} calls during A's {a1 - a0:.2f} s call"


@pytest.mark.parametrize("call", [
    lambda m: m.score(np.zeros((20, 30, 3), np.float32)),              # dtype
    lambda m: m.score(np.zeros((20, 30), np.uint8)),                   # shape
    lambda m: m.score(np.zeros((20, 30, 4), np.uint8)),                # RGBA
    lambda m: m.score(np.zeros((0, 30, 3), np.uint8)),                 # empty
    lambda m: m.score(np.zeros((20, 30, 3), np.uint8).tolist()),       # not an array
    lambda m: m.score("/nonexistent/frame.png"),                       # path
    lambda m: m.score(__file__),                                       # not an image
    lambda m: m.score(FRAMES[0], methods=("bogus",)),                  # method
    lambda m: m.score(FRAMES[0], methods=("kmeans",), k=0),            # option range
    lambda m: m.score(FRAMES[0], methods=("kmeans",), no_such_option=1),
    lambda m: m.score(FRAMES[0], methods=("centroid",)),               # needs centroids
    lambda m: m.forward(np.zeros((5, 5, 2), np.uint8)),
    lambda m: oodseg.Model("/nonexistent/model.pth"),
    lambda m: oodseg.Model(__file__),
    lambda m: oodseg.Model(size="bogus").score(FRAMES[0]),
    lambda m: oodseg.Model(threads=-1),
    lambda m: oodseg.Model(precision="fp16"),
])
def test_wrong_inputs_raise_oodseg_error(model, call):
    with pytest.raises(oodseg.Error) as e:
        call(model)
    assert e.value.code in (2, 3, 4, 5) and len(e.value.message) > 10
    assert model.score(FRAMES[0], methods="maxlogit")["maxlogit"].size > 0   # still usable


def test_closed_model_raises():
    m = oodseg.Model(size=SIZE)
    m.close()
    with pytest.raises(oodseg.Error):
        m.score(FRAMES[0])


def test_bf16_precision_close_to_fp32_or_a_clear_error(model):
    """precision="bf16": the same maps within bf16's rounding where the CPU has AVX512-BF16, else
    oodseg.Error naming the fix."""
    try:
        m = oodseg.Model(size=SIZE, threads=2, precision="bf16")
    except oodseg.Error as e:
        assert "AVX512-BF16" in e.message and "--precision fp32" in e.message
        return
    with m:
        a = m.forward(FRAMES[0])["logits"]
    ref = model.forward(FRAMES[0])["logits"]
    err = np.sqrt(np.mean((a - ref) ** 2) / np.mean(ref ** 2))
    assert 0 < err < 0.03, err      # bf16 moved it (not fp32 again), within test_bf16's tolerance
def test_max_memory():
    # a forward at a huge size is refused before it starts, saying what it needs and the limit
    with oodseg.Model(size="16000x16000", max_memory="1G", threads=1) as m:
        with pytest.raises(oodseg.Error) as e:
            m.score(FRAMES[0], methods="maxlogit")
        assert e.value.code == 6
        assert "memory limit of 1.00 GiB" in e.value.message and "--size" in e.value.message
    # the default model's checkpoint alone is over 1 MiB
    with pytest.raises(oodseg.Error) as e:
        oodseg.Model(max_memory=1 << 20)
    assert e.value.code == 6 and "memory limit of 1.00 MiB" in e.value.message
    for bad in ("8X", "100", 5, -1, 1.5, True):
        with pytest.raises(oodseg.Error) as e:
            oodseg.Model(max_memory=bad)
        assert e.value.code == 2
    with oodseg.Model(size="256x128", max_memory="2G", threads=1) as m:
        assert m.score(FRAMES[0], methods="maxlogit")["maxlogit"].shape == (360, 480)
