"""Evaluation metrics (emotrace.metrics) against reference implementations:
audmetric for CCC, NumPy formulas for PCC and RMSE, scikit-learn for AUROC and F1."""

from __future__ import annotations

import audmetric
import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from emotrace.metrics import ccc, ccc_per_recording, is_binary, pcc, rmse, trace_metrics


def pair(seed: int, n: int, offset: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.standard_normal(n)
    prediction = scale * (0.6 * truth + 0.8 * rng.standard_normal(n)) + offset
    return truth, prediction


CASES = [(seed, n, offset, scale) for seed, n in [(0, 2), (1, 10), (2, 257), (3, 5000)]
         for offset, scale in [(0.0, 1.0), (1.5, 1.0), (-0.3, 0.2), (4.0, 3.0)]]


@pytest.mark.parametrize("seed,n,offset,scale", CASES)
def test_ccc_matches_audmetric(seed, n, offset, scale):
    truth, prediction = pair(seed, n, offset, scale)
    assert ccc(truth, prediction) == pytest.approx(audmetric.concordance_cc(truth, prediction),
                                                   abs=1e-6)


@pytest.mark.parametrize("seed,n,offset,scale", CASES[::3])
def test_ccc_is_symmetric_and_accepts_lists(seed, n, offset, scale):
    truth, prediction = pair(seed, n, offset, scale)
    assert ccc(list(truth), list(prediction)) == pytest.approx(ccc(prediction, truth), abs=1e-12)


def test_ccc_perfect_and_shifted():
    y = np.arange(10.0) - 4.5  # zero mean, so that -y has the same mean
    assert ccc(y, y) == pytest.approx(1.0)
    assert ccc(y, -y) == pytest.approx(-1.0)
    assert ccc(y, y + 1) < 1.0  # an offset is penalised, unlike Pearson
    assert pcc(y, y + 1) == pytest.approx(1.0)


@pytest.mark.parametrize("value", [0.0, 3.5])
def test_constant_prediction_gives_zero(value):
    truth, _ = pair(0, 100, 0, 1)
    assert ccc(truth, np.full(100, value)) == 0.0
    assert pcc(truth, np.full(100, value)) == 0.0


def test_constant_truth_and_prediction_gives_zero_not_nan():
    assert ccc(np.ones(5), np.ones(5)) == 0.0


def test_nan_truths_are_ignored():
    truth, prediction = pair(4, 300, 0.5, 2.0)
    holes = truth.copy()
    drop = np.zeros(300, bool)
    drop[[0, 7, 8, 9, 150, 299]] = True
    holes[drop] = np.nan
    prediction_junk = prediction.copy()
    prediction_junk[drop] = 1e6  # what is predicted at an unlabelled step does not matter
    for f in (ccc, pcc, rmse):
        assert f(holes, prediction_junk) == pytest.approx(f(truth[~drop], prediction[~drop]),
                                                          abs=1e-12)
    assert np.isfinite(ccc(holes, prediction))


def test_all_nan_truth_gives_zero():
    assert ccc([np.nan, np.nan], [1.0, 2.0]) == 0.0
    assert ccc_per_recording([np.array([np.nan])], [np.array([1.0])]) == 0.0


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        ccc([1, 2, 3], [1, 2])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pcc_and_rmse_match_numpy(seed):
    truth, prediction = pair(seed, 123, 0.7, 1.7)
    assert pcc(truth, prediction) == pytest.approx(np.corrcoef(truth, prediction)[0, 1], abs=1e-12)
    assert rmse(truth, prediction) == pytest.approx(np.sqrt(np.mean((truth - prediction) ** 2)),
                                                    abs=1e-12)


def test_ccc_per_recording_is_the_mean_of_per_recording_values():
    # each recording is tracked perfectly in shape, but the level of the second one is wrong
    truths = [np.array([0.0, 1.0, 2.0, 3.0]), np.array([10.0, 11.0, 12.0])]
    preds = [np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 1.0, 2.0])]
    per = [audmetric.concordance_cc(t, p) for t, p in zip(truths, preds, strict=True)]
    assert ccc_per_recording(truths, preds) == pytest.approx(np.mean(per), abs=1e-12)
    glob = audmetric.concordance_cc(np.concatenate(truths), np.concatenate(preds))
    m = trace_metrics(truths, preds)
    assert m["ccc"] == pytest.approx(glob, abs=1e-12)
    assert m["ccc_per_recording"] == pytest.approx(np.mean(per), abs=1e-12)
    assert abs(m["ccc"] - m["ccc_per_recording"]) > 0.1  # the two numbers mean different things


def test_ccc_per_recording_skips_unlabelled_recordings():
    truths = [np.array([0.0, 1.0, 2.0]), np.full(3, np.nan)]
    preds = [np.array([0.0, 1.0, 2.0]), np.array([5.0, -5.0, 0.0])]
    assert ccc_per_recording(truths, preds) == pytest.approx(1.0)


def test_evaluate_reports_the_regression_metrics():
    truths = [pair(s, 50, 0, 1)[0] for s in range(3)]
    preds = [pair(s, 50, 0.2, 1.1)[1] for s in range(3)]
    m = trace_metrics(truths, preds)
    assert set(m) == {"ccc", "ccc_per_recording", "pcc", "rmse"}
    y, p = np.concatenate(truths), np.concatenate(preds)
    assert m["pcc"] == pytest.approx(np.corrcoef(y, p)[0, 1])
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((y - p) ** 2)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_targets_add_auroc_and_f1(seed):
    rng = np.random.default_rng(seed)
    truths = [rng.integers(0, 2, n).astype(float) for n in (40, 60, 25)]
    truths[1][[3, 9]] = np.nan  # unlabelled steps are left out here too
    preds = [np.clip(t + 0.7 * rng.standard_normal(len(t)), -1, 2) for t in truths]
    m = trace_metrics(truths, preds)
    y, p = np.concatenate(truths), np.concatenate(preds)
    keep = np.isfinite(y)
    assert m["auroc"] == pytest.approx(roc_auc_score(y[keep], p[keep]), abs=1e-12)
    assert m["f1"] == pytest.approx(f1_score(y[keep], p[keep] >= 0.5), abs=1e-12)
    assert {"ccc", "ccc_per_recording", "pcc", "rmse"} <= set(m)


@pytest.mark.parametrize("truth,binary", [
    ([0.0, 1.0, 1.0, np.nan], True),
    ([0.0, 0.0, 0.0], False),  # one class only: AUROC is undefined
    ([0.0, 0.5, 1.0], False),
    ([1.0, 2.0], False),
])
def test_is_binary(truth, binary):
    assert is_binary([np.array(truth)]) is binary
    assert ("auroc" in trace_metrics([np.array(truth)], [np.array(truth)])) is binary
