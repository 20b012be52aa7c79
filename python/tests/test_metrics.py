# oodseg.metrics, oodseg.Evaluator and oodseg.sklearn against scikit-learn, computed here.
import os

import numpy as np
import pytest

import oodseg
import oodseg.sklearn as osk

skm = pytest.importorskip("sklearn.metrics")


def data(kind, n=200_000, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(np.uint8)
    if kind == "random":
        s = (rng.random(n) + y * 0.3).astype(np.float32)
    elif kind == "tied":   # few distinct values: long runs of ties across both classes
        s = np.round(rng.random(n) * 20 + y * 3).astype(np.float32) / 7
    else:                  # float64 that float32 cannot hold
        s = rng.random(n) + y * 0.3
    return y, s


@pytest.mark.parametrize("kind", ["random", "tied", "float64"])
def test_sklearn_dropins_equal_sklearn(kind):
    y, s = data(kind)
    assert abs(osk.average_precision_score(y, s) - skm.average_precision_score(y, s)) <= 1e-9
    assert abs(osk.roc_auc_score(y, s) - skm.roc_auc_score(y, s)) <= 1e-9
    for mine, ref in zip(osk.roc_curve(y, s), skm.roc_curve(y, s)):
        assert mine.dtype == ref.dtype and mine.shape == ref.shape
        np.testing.assert_allclose(mine, ref, rtol=0, atol=1e-12)
    for mine, ref in zip(osk.roc_curve(y, s, drop_intermediate=False), skm.roc_curve(y, s, drop_intermediate=False)):
        np.testing.assert_allclose(mine, ref, rtol=0, atol=1e-12)


def test_sklearn_dropins_labels_and_fallbacks():
    y, s = data("tied", n=5000, seed=3)
    ypm = np.where(y == 1, 1, -1)                          # {-1, 1}
    ystr = np.where(y == 1, "ood", "id")
    for mine, ref in zip(osk.roc_curve(ypm, s), skm.roc_curve(ypm, s)):
        np.testing.assert_array_equal(mine, ref)
    close = lambda a, b: abs(a - b) <= 1e-12
    assert close(osk.roc_auc_score(ystr, s), skm.roc_auc_score(ystr, s))
    assert close(osk.average_precision_score(y * 5, s, pos_label=5), skm.average_precision_score(y * 5, s, pos_label=5))
    assert close(osk.roc_auc_score(y, s.astype(np.int32)), skm.roc_auc_score(y, s.astype(np.int32)))
    assert osk.average_precision_score(np.zeros(10), np.arange(10.0)) == skm.average_precision_score(np.zeros(10), np.arange(10.0))
    w = np.linspace(0.5, 2, y.size)                         # sample weights: scikit-learn's own answer
    assert osk.average_precision_score(y, s, sample_weight=w) == skm.average_precision_score(y, s, sample_weight=w)
    with pytest.raises(ValueError):
        osk.roc_auc_score(np.zeros(10), np.arange(10.0))
    with pytest.raises(ValueError):
        osk.roc_curve(y * 2, s)                            # {0, 2} needs pos_label, as in sklearn


@pytest.mark.parametrize("kind", ["random", "tied"])
def test_metrics_with_ignore_equal_sklearn_on_valid_pixels(kind):
    y, s = data(kind, seed=1)
    rng = np.random.default_rng(2)
    lab = y.copy()
    lab[rng.random(y.size) < 0.2] = 255
    valid = lab != 255
    r = oodseg.metrics(s.reshape(400, 500), lab.reshape(400, 500), ood=1, ignore=255)
    assert abs(r["AP"] - skm.average_precision_score(y[valid], s[valid])) <= 1e-9
    assert abs(r["AUROC"] - skm.roc_auc_score(y[valid], s[valid])) <= 1e-9
    fpr, tpr, _ = skm.roc_curve(y[valid], s[valid])
    assert r["FPR95"] == fpr[np.argmax(tpr >= 0.95)]
    assert r["n_ood"] == int((lab == 1).sum()) and r["n_id"] == int((lab == 0).sum())
    assert r["recall"].dtype == np.float32 and r["recall"].size == r["fpr"].size > 2
    # another label coding: 12 OoD, 11 ignore, everything else in-distribution
    lab2 = np.where(lab == 1, 12, np.where(lab == 255, 11, 3)).astype(np.uint8)
    assert oodseg.metrics(s, lab2, ood=12, ignore=11)["AP"] == r["AP"]


def test_evaluator_streams_and_merges_like_one_pass(tmp_path):
    y, s = data("random", n=6 * 10_000, seed=4)
    S, Y = s.reshape(6, 100, 100), y.reshape(6, 100, 100)
    one = oodseg.metrics(S, Y)
    ev = oodseg.Evaluator("binary")
    for i in range(6):
        ev.add(S[i], Y[i], name=f"img{i}")
    assert ev.images == 6
    assert ev.result()["AP"] == one["AP"] and ev.result()["FPR95"] == one["FPR95"]
    with pytest.raises(oodseg.Error):
        ev.add(S[0], Y[0])                                 # finished
    shards = []
    for k in range(2):
        e = oodseg.Evaluator("binary", methods=("a", "b"))
        for i in range(3 * k, 3 * k + 3):
            e.add({"a": S[i], "b": -S[i]}, Y[i])
        shards.append(str(tmp_path / f"s{k}.state"))
        e.save_state(shards[-1])
    merged = oodseg.Evaluator.merge(shards, save_state=tmp_path / "all.state")
    assert merged.methods == ("a", "b") and merged.images == 6
    res = merged.result()
    assert res["a"]["AP"] == one["AP"] and res["a"]["AUROC"] == one["AUROC"]
    assert res["b"]["AUROC"] == pytest.approx(1 - one["AUROC"], abs=1e-12)
    assert oodseg.Evaluator.merge([tmp_path / "all.state"]).result("a")["AP"] == one["AP"]
    merged.write_reports(tmp_path / "rep", title="merged")
    assert os.path.exists(tmp_path / "rep" / "metrics.json")


def test_evaluator_dataset_convention():
    rng = np.random.default_rng(5)
    raw = rng.integers(0, 13, size=(50, 60)).astype(np.uint8)   # camvid-ood: 12 OoD, 11 void
    s = rng.random((50, 60)).astype(np.float32)
    ev = oodseg.Evaluator("camvid-ood")
    ev.add(s, raw)
    assert ev.result()["AP"] == oodseg.metrics(s, raw, ood=12, ignore=11)["AP"]
    bad = oodseg.Evaluator("camvid-ood")
    with pytest.raises(oodseg.Error) as e:
        bad.add(s, np.full((50, 60), 200, np.uint8))
    assert e.value.code == 7 and "200" in str(e.value)


@pytest.mark.parametrize("call", [
    lambda: oodseg.metrics(np.zeros(4, np.float32), np.zeros(5, np.uint8)),                    # shapes
    lambda: oodseg.metrics(np.array(["a"]), np.zeros(1, np.uint8)),                           # dtype
    lambda: oodseg.metrics(np.zeros(3, np.float32), np.array([0, 1, 300])),                   # label range
    lambda: oodseg.metrics(np.array([0, np.nan], np.float32), np.array([0, 1], np.uint8)),    # NaN
    lambda: oodseg.metrics(np.zeros(3, np.float32), np.zeros(3, np.uint8), ood=3, ignore=3),
    lambda: oodseg.metrics(np.zeros(3, np.float32), np.zeros(3, np.uint8), fpr_convention="bogus"),
    lambda: oodseg.Evaluator("no-such-layout"),
    lambda: oodseg.Evaluator("binary").add(np.zeros((2, 2), np.float32), np.zeros((2, 3), np.uint8)),
    lambda: oodseg.Evaluator("binary").add(np.zeros((2, 2), np.float32), np.full((2, 2), 7, np.uint8)),
    lambda: oodseg.Evaluator.merge(["/nonexistent/state"]),
])
def test_metrics_errors_raise_oodseg_error(call):
    with pytest.raises(oodseg.Error) as e:
        call()
    assert e.value.code in (2, 3, 4, 7) and len(e.value.message) > 10
