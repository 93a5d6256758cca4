"""Segment statistics: each one against a direct (loop) implementation of its formula."""

from __future__ import annotations

import numpy as np
import pytest

from emotrace.labels.segment_stats import SETS, STATISTICS, min_steps, segment_statistics


def _longest(flags: list[bool]) -> int:
    best = run = 0
    for f in flags:
        run = run + 1 if f else 0
        best = max(best, run)
    return best


def _peaks(x: list[float], n: int) -> int:
    count = 0
    for i in range(n, len(x) - n):
        if all(x[i] > x[i - k] and x[i] > x[i + k] for k in range(1, n + 1)):
            count += 1
    return count


def _quantile(x: list[float], p: float) -> float:  # linear interpolation between order statistics
    s = sorted(x)
    h = (len(s) - 1) * p
    lo = int(h)
    return s[lo] + (h - lo) * (s[min(lo + 1, len(s) - 1)] - s[lo])


def direct(name: str, x: list[float], n: int) -> float:
    """Each statistic written out from its definition (tsfresh / MuSe-Toolbox)."""
    N = len(x)
    mean = sum(x) / N
    if name == "mean":
        return mean
    if name == "median":
        return _quantile(x, 0.5)
    if name == "std":
        return (sum((v - mean) ** 2 for v in x) / N) ** 0.5
    if name.startswith("percentile_"):
        return _quantile(x, int(name.split("_")[1]) / 100)
    if name == "rel_energy":
        return sum(v * v for v in x) / N
    if name == "rel_sum_of_changes":
        return sum(abs(x[i] - x[i - 1]) for i in range(1, N)) / N
    if name == "rel_number_peaks":
        return _peaks(x, n) / N
    if name == "rel_long_strike_below_mean":
        return _longest([v < mean for v in x]) / N
    if name == "rel_long_strike_above_mean":
        return _longest([v > mean for v in x]) / N
    if name == "rel_count_below_mean":
        return sum(v < mean for v in x) / N
    if name == "percentage_of_reoccurring_datapoints_to_all_datapoints":
        return sum(1 for v in x if x.count(v) > 1) / N
    if name == "rel_number_crossing_0":
        return sum((x[i] > 0) != (x[i - 1] > 0) for i in range(1, N)) / N
    if name == "mean_abs_change":
        return sum(abs(x[i] - x[i - 1]) for i in range(1, N)) / (N - 1)
    if name == "mean_change":
        return sum(x[i] - x[i - 1] for i in range(1, N)) / (N - 1)
    if name == "mean_sec_derivative_central":
        return sum((x[i + 1] - 2 * x[i] + x[i - 1]) / 2 for i in range(1, N - 1)) / (N - 2)
    if name in ("skewness", "kurtosis"):
        import pandas as pd  # tsfresh computes both with pandas

        return float(pd.Series(x).skew() if name == "skewness" else pd.Series(x).kurt())
    if name.startswith(("first_location", "last_location")):
        target = max(x) if name.endswith("maximum") else min(x)
        where = [i for i, v in enumerate(x) if v == target]
        return where[0] / N if name.startswith("first") else (where[-1] + 1) / N
    raise KeyError(name)


def traces() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [
        rng.normal(size=50),
        np.round(np.cumsum(rng.normal(size=80)), 1),  # plateaus and repeated values
        np.sin(np.linspace(0, 12, 64)) * 3 + 5,
        np.array([1.0, 1.0, 1.0, 2.0, 2.0, 9.0, 1.0]),
    ]


@pytest.mark.parametrize("name", list(STATISTICS))
@pytest.mark.parametrize("n", [1, 3])
def test_statistic_matches_formula(name, n):
    for x in traces():
        got = segment_statistics(x, [name], peak_support=n)[0]
        assert got == pytest.approx(direct(name, x.tolist(), n), rel=1e-9, abs=1e-12), name


def test_peaks_and_strikes_on_a_hand_made_trace():
    x = np.array([0, 3, 0, 0, 5, 1, 4, 0, 0, 0.0])  # mean 1.3
    s = dict(zip(["rel_number_peaks", "rel_long_strike_below_mean", "rel_long_strike_above_mean",
                  "rel_count_below_mean"],
                 segment_statistics(x, ["rel_number_peaks", "rel_long_strike_below_mean",
                                        "rel_long_strike_above_mean", "rel_count_below_mean"],
                                    peak_support=1), strict=True))
    assert s["rel_number_peaks"] == pytest.approx(3 / 10)  # 3, 5 and 4
    assert s["rel_long_strike_below_mean"] == pytest.approx(3 / 10)  # the last three zeros
    assert s["rel_long_strike_above_mean"] == pytest.approx(1 / 10)
    assert s["rel_count_below_mean"] == pytest.approx(7 / 10)  # all but 3, 5 and 4


def test_sets_are_the_domain_lists():
    arousal = {"median", "std", "percentile_10", "percentile_90", "rel_energy",
               "rel_sum_of_changes", "rel_number_peaks", "rel_long_strike_below_mean",
               "rel_long_strike_above_mean", "rel_count_below_mean"}
    assert set(SETS["arousal-set"]) == arousal
    extra = {"mean", "percentile_5", "percentile_25", "percentile_33", "percentile_66",
             "percentile_75", "percentile_95",
             "percentage_of_reoccurring_datapoints_to_all_datapoints"}
    assert set(SETS["valence-set"]) == arousal | extra
    assert min_steps(SETS["valence-set"], peak_support=4) == 9


def test_toolbox_presets_are_its_lists():
    """MuSe-Toolbox's FEATURE_SETS (diarisation/feature_configs.py), spelled out."""
    basic = ["mean", "median", "std", "percentile_5", "percentile_10", "percentile_25",
             "percentile_33", "percentile_66", "percentile_75", "percentile_90", "percentile_95"]
    assert SETS["set_basic"] == basic
    assert SETS["set_change"] == ["std", "rel_energy", "rel_sum_of_changes", "rel_number_peaks",
                                  "rel_long_strike_below_mean", "rel_long_strike_above_mean",
                                  "rel_count_below_mean"]
    ext = basic + ["rel_energy", "rel_sum_of_changes", "rel_number_crossing_0", "rel_number_peaks",
                   "rel_long_strike_below_mean", "rel_long_strike_above_mean",
                   "rel_count_below_mean", "percentage_of_reoccurring_datapoints_to_all_datapoints"]
    assert SETS["set_ext"] == ext
    assert SETS["set_large"] == ext[:-1] + [
        "mean_abs_change", "mean_change", "mean_sec_derivative_central", "skewness", "kurtosis",
        "first_location_of_maximum", "first_location_of_minimum", "last_location_of_maximum",
        "last_location_of_minimum", "percentage_of_reoccurring_datapoints_to_all_datapoints"]
    assert all(n in STATISTICS for names in SETS.values() for n in names)
