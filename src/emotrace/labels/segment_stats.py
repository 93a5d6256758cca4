"""Time-series statistics of a label trace segment, for building segment classes (MuSe-Sent).

The statistics and their names follow the MuSe-Toolbox (``diarisation/feature_configs.py``),
which computes them with tsfresh's feature calculators; the definitions here are the same
formulas in NumPy (each is tested against a direct loop implementation). For a segment
:math:`x_1 .. x_N` with mean :math:`\\bar{x}`:

=================================  ================================================================
name                               value
=================================  ================================================================
``mean``, ``median``, ``std``      :math:`\\bar{x}`, the median, the population std
``percentile_P``                   ``np.quantile(x, P / 100)`` (linear interpolation)
``rel_energy``                     :math:`\\frac{1}{N} \\sum_i x_i^2` (tsfresh ``abs_energy`` / N)
``rel_sum_of_changes``             :math:`\\frac{1}{N} \\sum_{i>1} |x_i - x_{i-1}|`
                                   (``absolute_sum_of_changes`` / N)
``rel_number_peaks``               (number of i with :math:`x_i > x_{i \\pm k}` for all
                                   :math:`k = 1..n`) / N, support n = ``peak_support``
                                   (``number_peaks(x, n)`` / N; the toolbox uses n = 10)
``rel_long_strike_below_mean``     longest run of consecutive :math:`x_i < \\bar{x}`, / N
``rel_long_strike_above_mean``     longest run of consecutive :math:`x_i > \\bar{x}`, / N
``rel_count_below_mean``           :math:`|\\{i : x_i < \\bar{x}\\}| / N`
``percentage_of_reoccurring_``     share of the points whose value occurs more than once
``datapoints_to_all_datapoints``   in the segment
=================================  ================================================================

Two sets, as in DOMAIN.md (MuSe-Sent 2021): ``arousal-set`` (median, std, 10/90th percentiles and
the six relative change statistics) and ``valence-set`` (those plus the mean, the
5/25/33/66/75/95th percentiles and the share of re-occurring values).
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
}

_CHANGE = ["rel_energy", "rel_sum_of_changes", "rel_number_peaks", "rel_long_strike_below_mean",
           "rel_long_strike_above_mean", "rel_count_below_mean"]

#: the statistic sets of DOMAIN.md (MuSe-Sent): arousal, and valence with location statistics
SETS: dict[str, list[str]] = {
    "arousal-set": ["median", "std", "percentile_10", "percentile_90", *_CHANGE],
    "valence-set": ["mean", "median", "std", "percentile_5", "percentile_10", "percentile_25",
                    "percentile_33", "percentile_66", "percentile_75", "percentile_90",
                    "percentile_95", *_CHANGE,
                    "percentage_of_reoccurring_datapoints_to_all_datapoints"],
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
