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


def ewe_ccc_direct(x: np.ndarray) -> np.ndarray:
    """EWE weights from each rater's mean pairwise CCC, written out pair by pair."""
    r = x.shape[1]
    s = np.array([np.mean([ccc(x[:, i], x[:, j]) for j in range(r) if j != i]) for i in range(r)])
    s = np.clip(s, 0, None)
    return s / s.sum()


@pytest.mark.parametrize("seed", range(3))
def test_ewe_ccc_weights_match_formula(seed):
    rng = np.random.default_rng(seed)
    base = np.cumsum(rng.normal(size=150))
    x = base[:, None] * rng.uniform(0.2, 2, 4) + rng.normal(scale=2, size=(150, 4)) + rng.normal(size=4)
    w, _ = ewe_weights(x, kind="ccc")
    np.testing.assert_allclose(w, ewe_ccc_direct(x), atol=1e-12)
    assert not np.allclose(w, ewe_weights(x)[0], atol=1e-3)  # really another weighting
    res = fuse(x, method="ewe", ewe_weights="ccc", toolbox=True)
    assert np.allclose(res.gold * 1000, np.round(res.gold * 1000), atol=1e-6)  # 3 decimals
    assert np.abs(res.gold - x @ res.weights).max() <= 4 * 5e-4 + 1e-9


def delayed(delays: list[int], *, steps: int = 400, seed: int = 3, noise: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.convolve(rng.normal(size=steps + 40), np.ones(15) / 15, mode="same")
    x = np.stack([base[40 - d: 40 - d + steps] for d in delays], 1)
    return x + rng.normal(scale=noise, size=x.shape)


def test_lag_is_taken_for_a_real_interior_peak():
    from emotrace.labels.raters import select_lags, zscore

    x = delayed([0, 0, 0, 6])  # the fourth rater reacts 6 steps later
    steps, info, notes = select_lags(zscore(x), max_lag=12, rate=5.0)
    assert steps.tolist() == [0, 0, 0, 4] or steps.tolist() == [0, 0, 0, 5]  # round(3/4 * 6)
    assert info[3]["decision"] == "interior peak: shifted" and info[3]["peak_lag_s"] == 1.2
    assert info[3]["gain"] >= 0.05 and info[3]["fall"] >= 0.05 and not notes
    two, _, _ = select_lags(zscore(delayed([0, 6])), max_lag=12, rate=5.0)
    assert two[1] - two[0] == 6  # two raters: the relative shift is exactly the peak


def test_no_lag_for_a_boundary_peak_or_a_small_gain():
    from emotrace.labels.raters import select_lags, zscore

    t = np.arange(300.0)
    rng = np.random.default_rng(0)
    trend = np.stack([t + 30 * k + rng.normal(scale=20, size=300) for k in range(3)], 1)
    trend[:, 2] = np.roll(trend[:, 2], 3)  # a slow ramp: correlation keeps rising with the lag
    steps, info, notes = select_lags(zscore(trend), max_lag=4, rate=2.0, names=["a", "b", "c"])
    assert (steps == 0).all()
    assert any(d["decision"].startswith("peak on the search boundary") for d in info)
    assert notes and notes[0].startswith("rater ") and "search boundary" in notes[0]
    x = delayed([0, 0, 1])
    steps, info, _ = select_lags(zscore(x), max_lag=10, min_gain=0.5, rate=5.0)
    assert steps.tolist() == [0, 0, 0] and "gain over zero lag below 0.5" in info[2]["decision"]


def test_dba_starts_from_the_medoid_and_honours_its_band():
    x = delayed([0, 2, 4, 14], noise=0.02)
    med = fuse(x, method="dba", rate=5.0)
    mean = fuse(x, method="dba", rate=5.0, dba_init="mean")
    assert med.info["init"].startswith("medoid (rater ")
    assert med.info["sum_sq_dtw"] <= mean.info["sum_sq_dtw"] + 1e-9
    banded = fuse(x, method="dba", rate=5.0, dba_band_s=0.4)  # 2 steps
    assert banded.info["band_s"] == 0.4 and np.abs(banded.lags).max() <= 0.4
    assert not np.allclose(banded.gold, med.gold)


def test_negative_lag_and_band_are_refused():
    from emotrace.errors import EmotraceError

    x = delayed([0, 1, 2])
    with pytest.raises(EmotraceError, match="--max-lag -1"):
        fuse(x, method="raaw", max_lag_s=-1)
    with pytest.raises(EmotraceError, match="--dba-band 0"):
        fuse(x, method="dba", dba_band_s=0)
