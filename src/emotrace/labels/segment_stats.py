"""Time-series statistics of a label trace segment, for building segment classes (MuSe-Sent).

The names and definitions follow MuSe-Toolbox (``diarisation/feature_configs.py``, tsfresh's
feature calculators), written in NumPy; the table of formulas and the statistic sets are in
docs/usage.md ("Segment classes").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _longest_run(mask: np.ndarray) -> int:
    """Length of the longest run of True in ``mask``.

    >>> _longest_run(np.array([1, 1, 0, 1, 1, 1, 0], bool))
    3
    """
    if not mask.any():
        return 0
    padded = np.concatenate([[0], mask.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max())


def number_peaks(x: np.ndarray, n: int) -> int:
    """How many points are strictly larger than their ``n`` neighbours on each side
    (tsfresh ``number_peaks``).

    >>> number_peaks(np.array([0, 2, 0, 1, 3, 1, 0.]), 1)
    2
    >>> number_peaks(np.array([0, 2, 0, 1, 3, 1, 0.]), 2)
    1
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2 * n + 1:
        return 0
    mid = x[n : len(x) - n]
    ok = np.ones(len(mid), bool)
    for k in range(1, n + 1):
        ok &= mid > x[n - k : len(x) - n - k]
        ok &= mid > x[n + k : len(x) - n + k]
    return int(ok.sum())


def reoccurring_share(x: np.ndarray) -> float:
    """Share of the points whose value occurs more than once (tsfresh
    ``percentage_of_reoccurring_datapoints_to_all_datapoints``).

    >>> reoccurring_share(np.array([1, 1, 2, 3, 3, 3.]))
    0.8333333333333334
    """
    _, counts = np.unique(x, return_counts=True)
    return float(counts[counts > 1].sum() / len(x))


def number_crossing(x: np.ndarray, m: float = 0.0) -> int:
    """How often ``x`` crosses ``m``: changes between ``> m`` and ``<= m`` (tsfresh
    ``number_crossing_m``).

    >>> number_crossing(np.array([-1, 1, 2, -1, 0.]))
    2
    """
    return int(np.count_nonzero(np.diff(x > m)))


def _moment(x: np.ndarray, k: int) -> float:
    return float(np.mean((x - x.mean()) ** k))


def skewness(x: np.ndarray) -> float:
    """Sample skewness with the bias correction of ``pandas.Series.skew`` (tsfresh ``skewness``);
    0 for fewer than 3 points or a constant segment."""
    n = len(x)
    m2 = _moment(x, 2)
    if n < 3 or m2 <= 0:
        return 0.0
    return float(np.sqrt(n * (n - 1)) / (n - 2) * _moment(x, 3) / m2**1.5)


def kurtosis(x: np.ndarray) -> float:
    """Sample excess kurtosis with the bias correction of ``pandas.Series.kurt`` (tsfresh
    ``kurtosis``); 0 for fewer than 4 points or a constant segment."""
    n = len(x)
    m2 = _moment(x, 2)
    if n < 4 or m2 <= 0:
        return 0.0
    g2 = _moment(x, 4) / m2**2 - 3
    return float((n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * g2 + 6))


def _q(p: float) -> Callable[[np.ndarray, int], float]:
    return lambda x, n: float(np.quantile(x, p))


STATISTICS: dict[str, Callable[[np.ndarray, int], float]] = {
    "mean": lambda x, n: float(np.mean(x)),
    "median": lambda x, n: float(np.median(x)),
    "std": lambda x, n: float(np.std(x)),
    "percentile_5": _q(0.05),
    "percentile_10": _q(0.10),
    "percentile_25": _q(0.25),
    "percentile_33": _q(0.33),
    "percentile_66": _q(0.66),
    "percentile_75": _q(0.75),
    "percentile_90": _q(0.90),
    "percentile_95": _q(0.95),
    "rel_energy": lambda x, n: float(np.sum(x * x) / len(x)),
    "rel_sum_of_changes": lambda x, n: float(np.abs(np.diff(x)).sum() / len(x)),
    "rel_number_peaks": lambda x, n: number_peaks(x, n) / len(x),
    "rel_long_strike_below_mean": lambda x, n: _longest_run(x < x.mean()) / len(x),
    "rel_long_strike_above_mean": lambda x, n: _longest_run(x > x.mean()) / len(x),
    "rel_count_below_mean": lambda x, n: float((x < x.mean()).sum() / len(x)),
    "percentage_of_reoccurring_datapoints_to_all_datapoints": lambda x, n: reoccurring_share(x),
    "rel_number_crossing_0": lambda x, n: number_crossing(x, 0.0) / len(x),
    "mean_abs_change": lambda x, n: float(np.mean(np.abs(np.diff(x)))),
    "mean_change": lambda x, n: float((x[-1] - x[0]) / (len(x) - 1)),
    "mean_sec_derivative_central": lambda x, n: float((x[-1] - x[-2] - x[1] + x[0])
                                                      / (2 * (len(x) - 2))) if len(x) > 2 else 0.0,
    "skewness": lambda x, n: skewness(x),
    "kurtosis": lambda x, n: kurtosis(x),
    "first_location_of_maximum": lambda x, n: float(np.argmax(x) / len(x)),
    "first_location_of_minimum": lambda x, n: float(np.argmin(x) / len(x)),
    "last_location_of_maximum": lambda x, n: float(1.0 - np.argmax(x[::-1]) / len(x)),
    "last_location_of_minimum": lambda x, n: float(1.0 - np.argmin(x[::-1]) / len(x)),
}

_CHANGE = ["rel_energy", "rel_sum_of_changes", "rel_number_peaks", "rel_long_strike_below_mean",
           "rel_long_strike_above_mean", "rel_count_below_mean"]

_BASIC = ["mean", "median", "std", "percentile_5", "percentile_10", "percentile_25", "percentile_33",
          "percentile_66", "percentile_75", "percentile_90", "percentile_95"]
_REOCCUR = "percentage_of_reoccurring_datapoints_to_all_datapoints"

#: the MuSe-Sent sets (Stappen et al., MuSe 2021 challenge paper): arousal, and valence with
#: location statistics; and MuSe-Toolbox's presets (``FEATURE_SETS`` in its
#: ``diarisation/feature_configs.py``) under their own names
SETS: dict[str, list[str]] = {
    "arousal-set": ["median", "std", "percentile_10", "percentile_90", *_CHANGE],
    "valence-set": [*_BASIC, *_CHANGE, _REOCCUR],
    "set_basic": list(_BASIC),
    "set_change": ["std", *_CHANGE],
    "set_ext": [*_BASIC, "rel_energy", "rel_sum_of_changes", "rel_number_crossing_0",
                *_CHANGE[2:], _REOCCUR],
    "set_large": [*_BASIC, "rel_energy", "rel_sum_of_changes", "rel_number_crossing_0",
                  *_CHANGE[2:], "mean_abs_change", "mean_change", "mean_sec_derivative_central",
                  "skewness", "kurtosis", "first_location_of_maximum", "first_location_of_minimum",
                  "last_location_of_maximum", "last_location_of_minimum", _REOCCUR],
}


def min_steps(names: list[str], *, peak_support: int) -> int:
    """The fewest steps a segment needs: ``2 n + 1`` when peaks are counted (otherwise no point
    can be a peak), else 2 (changes need two points).

    >>> min_steps(SETS["arousal-set"], peak_support=10)
    21
    >>> min_steps(["mean", "std"], peak_support=10)
    2
    """
    return 2 * peak_support + 1 if "rel_number_peaks" in names else 2


def segment_statistics(x: np.ndarray, names: list[str], *, peak_support: int = 10) -> np.ndarray:
    """The statistics ``names`` of one segment ``x`` (1-D, finite), as a float64 vector.

    >>> segment_statistics(np.array([1.0, 2.0, 3.0, 4.0]), ["mean", "rel_count_below_mean"])
    array([2.5, 0.5])
    """
    x = np.asarray(x, dtype=np.float64)
    return np.array([STATISTICS[n](x, peak_support) for n in names], dtype=np.float64)
