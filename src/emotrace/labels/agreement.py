"""Inter-rater agreement as reported in the literature: mean ± std of pairwise statistics."""

from __future__ import annotations

from itertools import combinations

import numpy as np

from emotrace.labels.raters import ewe_weights
from emotrace.metrics import ccc, pcc


def pairwise(traces: np.ndarray) -> dict[str, np.ndarray]:
    """Pearson (:func:`emotrace.metrics.pcc`) and CCC (:func:`~emotrace.metrics.ccc`)
    of every rater pair ``i < j``, in ``itertools.combinations`` order."""
    pairs = list(combinations(range(traces.shape[1]), 2))
    return {"pearson": np.array([pcc(traces[:, i], traces[:, j]) for i, j in pairs]),
            "ccc": np.array([ccc(traces[:, i], traces[:, j]) for i, j in pairs])}


def krippendorff_alpha(traces: np.ndarray) -> float:
    r"""Krippendorff's alpha, interval metric, time steps as units and raters as coders (no
    missing values), in closed form:

    .. math::

        \alpha = 1 - \frac{D_o}{D_e}, \quad
        D_o = \frac{1}{n} \sum_t \frac{2m}{m-1} \sum_r (x_{t,r} - \bar{x}_t)^2, \quad
        D_e = \frac{2}{n-1} \sum_{t,r} (x_{t,r} - \bar{x})^2

    with :math:`m` raters and :math:`n = Tm` values (equal to ``krippendorff.alpha(...,
    level_of_measurement="interval")``, which builds a value-by-value matrix and does not scale
    to continuous traces).

    >>> round(krippendorff_alpha(np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])), 3)
    1.0
    """
    t, m = traces.shape
    n = t * m
    d_o = (2 * m / (m - 1)) * ((traces - traces.mean(1, keepdims=True)) ** 2).sum() / n
    d_e = 2 * ((traces - traces.mean()) ** 2).sum() / (n - 1)
    return float(1 - d_o / d_e) if d_e > 0 else 0.0


def _stat(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(values.mean()), "std": float(values.std())}


def agreement(traces: np.ndarray, raters: list[str] | None = None) -> dict:
    """Agreement of one recording ``(T, R)``: ``pearson`` and ``ccc`` as mean and (population)
    std over the rater pairs, ``ewe_weights`` per rater, ``krippendorff_alpha``."""
    raters = raters or [str(r) for r in range(traces.shape[1])]
    p = pairwise(traces)
    w, _ = ewe_weights(traces)
    return {"raters": len(raters), "pairs": len(p["pearson"]), "pearson": _stat(p["pearson"]),
            "ccc": _stat(p["ccc"]), "krippendorff_alpha": krippendorff_alpha(traces),
            "ewe_weights": dict(zip(raters, np.round(w, 6).tolist(), strict=True))}


def agreement_overall(per_recording: list[np.ndarray]) -> dict:
    """Overall agreement: mean ± std over the rater pairs of all recordings pooled."""
    p = [pairwise(x) for x in per_recording]
    return {"recordings": len(p), "pairs": int(sum(len(x["pearson"]) for x in p)),
            "pearson": _stat(np.concatenate([x["pearson"] for x in p])),
            "ccc": _stat(np.concatenate([x["ccc"] for x in p]))}
