"""Rater fusion (emotrace.labels.raters) and agreement against direct implementations."""

from __future__ import annotations

import numpy as np
import pytest

from emotrace.labels import agreement, ewe_weights, fuse, parse_smoother
from emotrace.labels.agreement import krippendorff_alpha
from emotrace.labels.raters import shift
from emotrace.metrics import ccc


def ewe_direct(x: np.ndarray) -> np.ndarray:
    """EWE written out rater by rater with np.corrcoef."""
    r = x.shape[1]
    w = []
    for i in range(r):
        others = np.mean([x[:, j] for j in range(r) if j != i], axis=0)
        w.append(max(0.0, np.corrcoef(x[:, i], others)[0, 1]))
    w = np.array(w)
    return w / w.sum()


@pytest.mark.parametrize("seed", range(5))
def test_ewe_matches_formula(seed):
    rng = np.random.default_rng(seed)
    base = np.cumsum(rng.normal(size=200))
    x = base[:, None] * rng.uniform(-0.5, 2, 6) + rng.normal(scale=3, size=(200, 6))
    w, fallback = ewe_weights(x)
    np.testing.assert_allclose(w, ewe_direct(x), atol=1e-12)
    res = fuse(x, method="ewe")
    np.testing.assert_allclose(res.gold, (x * ewe_direct(x)).sum(1), atol=1e-9)
    assert not fallback and (res.weights >= 0).all()


def test_ewe_falls_back_to_equal_weights():
    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])  # perfectly anti-correlated
    res = fuse(x, method="ewe")
    np.testing.assert_allclose(res.weights, [0.5, 0.5])
    assert res.warnings


def test_mean_and_shapes():
    x = np.random.default_rng(0).normal(size=(50, 3))
    for method in ("mean", "ewe", "raaw", "dba"):
        res = fuse(x, method=method, rate=5.0)
        assert res.gold.shape == (50,) and res.weights.shape == (3,) and res.lags.shape == (3,)
        assert np.isfinite(res.gold).all()
    np.testing.assert_allclose(fuse(x, method="mean").gold, x.mean(1))


def test_raaw_recovers_synthetic_shifts():
    rng = np.random.default_rng(3)
    rate, steps = 5.0, 400
    base = np.convolve(rng.normal(size=steps + 40), np.ones(15) / 15, mode="same")
    delays = np.array([0, 5, 10, 15, 20, 3, 8, 12])  # steps (0-4 s)
    x = np.stack([base[40 - d: 40 - d + steps] for d in delays], 1)
    x += rng.normal(scale=0.05, size=x.shape)
    res = fuse(x, method="raaw", rate=rate)
    truth = (delays - np.median(delays)) / rate
    assert np.abs(res.lags - truth - np.median(res.lags - truth)).max() <= 0.4
    lag0 = int(np.median(delays))  # the gold standard is on the median rater's time axis
    clean = base[40 - lag0: 40 - lag0 + steps]
    assert np.corrcoef(res.gold, clean)[0, 1] > np.corrcoef(x.mean(1), clean)[0, 1]
    assert np.corrcoef(res.gold, clean)[0, 1] > 0.95


def test_shift_holds_edges():
    x = np.arange(5.0)[:, None]
    assert shift(x, np.array([2]))[:, 0].tolist() == [2, 3, 4, 4, 4]
    assert shift(x, np.array([-1]))[:, 0].tolist() == [0, 0, 1, 2, 3]


def test_agreement_matches_pairs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 4)) + rng.normal(size=(100, 1))
    a = agreement(x)
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    p = [np.corrcoef(x[:, i], x[:, j])[0, 1] for i, j in pairs]
    c = [ccc(x[:, i], x[:, j]) for i, j in pairs]
    assert a["pairs"] == 6
    assert a["pearson"]["mean"] == pytest.approx(np.mean(p))
    assert a["pearson"]["std"] == pytest.approx(np.std(p))
    assert a["ccc"]["mean"] == pytest.approx(np.mean(c))


def test_krippendorff_alpha_matches_package():
    krippendorff = pytest.importorskip("krippendorff")
    x = np.random.default_rng(0).integers(0, 7, size=(60, 4)).astype(float)
    expected = krippendorff.alpha(reliability_data=x.T, level_of_measurement="interval")
    assert krippendorff_alpha(x) == pytest.approx(expected)


def test_smoothers():
    x = np.random.default_rng(0).normal(size=(30, 2))
    assert parse_smoother("savgol:5")(x).shape == x.shape
    np.testing.assert_allclose(parse_smoother("mean:3")(np.ones(10)), np.ones(10))
    assert parse_smoother(None) is None and parse_smoother("0") is None


def test_missing_tslearn_is_a_clear_error(monkeypatch):
    import sys

    from emotrace.errors import EmotraceError
    from emotrace.labels import raters

    for name in ("tslearn", "tslearn.metrics", "tslearn.barycenters"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    with pytest.raises(EmotraceError, match=r"emotrace\[labels\]"):
        raters._tslearn()
