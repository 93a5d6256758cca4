"""Evaluation metrics for time-continuous predictions (NumPy).

All functions ignore steps whose truth is NaN. "Global" metrics are computed over the
concatenation of all recordings, as the MuSe challenges did; ``*_per_recording`` is the mean of
the per-recording values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _finite(truth: np.ndarray, prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    truth = np.asarray(truth, dtype=np.float64).ravel()
    prediction = np.asarray(prediction, dtype=np.float64).ravel()
    if truth.shape != prediction.shape:
        raise ValueError(f"truth has {truth.size} values, prediction {prediction.size}")
    keep = np.isfinite(truth)
    return truth[keep], prediction[keep]


def ccc(truth: Sequence[float] | np.ndarray, prediction: Sequence[float] | np.ndarray) -> float:
    r"""Concordance correlation coefficient.

    .. math::

        \text{CCC} = \frac{2 \sigma_{y\hat{y}}}{\sigma_y^2 + \sigma_{\hat{y}}^2
                     + (\mu_y - \mu_{\hat{y}})^2}

    with population (biased) variances and covariance, as ``audmetric.concordance_cc``.
    A constant prediction gives 0; so does an empty input. A NaN or infinite prediction (at a
    step with a finite truth) gives NaN, as in ``audmetric``: such a model has no score.

    >>> round(ccc([0, 1, 2], [0, 1, 2]), 4)
    1.0
    >>> round(ccc([0, 1, 2], [1, 2, 3]), 4)
    0.5714
    >>> ccc([0, 1, 2], [1, 1, 1])
    0.0
    >>> ccc([0, 1, 2], [0, float("nan"), 2])
    nan
    """
    y, p = _finite(np.asarray(truth), np.asarray(prediction))
    if not np.isfinite(p).all():
        return math.nan
    if y.size == 0:
        return 0.0
    my, mp = y.mean(), p.mean()
    cov = ((y - my) * (p - mp)).mean()
    denom = y.var() + p.var() + (my - mp) ** 2
    return float(2 * cov / denom) if denom > 0 else 0.0


def pcc(truth: np.ndarray, prediction: np.ndarray) -> float:
    r"""Pearson correlation :math:`\sigma_{y\hat{y}} / (\sigma_y \sigma_{\hat{y}})`; 0 if either
    is constant.

    >>> round(pcc([0, 1, 2], [1, 2, 4]), 4)
    0.982
    """
    y, p = _finite(np.asarray(truth), np.asarray(prediction))
    if not np.isfinite(p).all():
        return math.nan
    if y.size == 0:
        return 0.0
    sy, sp = y.std(), p.std()
    if sy == 0 or sp == 0:
        return 0.0
    return float(((y - y.mean()) * (p - p.mean())).mean() / (sy * sp))


def rmse(truth: np.ndarray, prediction: np.ndarray) -> float:
    r""":math:`\sqrt{\frac{1}{N} \sum (y - \hat{y})^2}`.

    >>> rmse([0, 0], [3, 4])
    3.5355339059327378
    """
    y, p = _finite(np.asarray(truth), np.asarray(prediction))
    if not np.isfinite(p).all():
        return math.nan
    return float(np.sqrt(((y - p) ** 2).mean())) if y.size else 0.0


def ccc_per_recording(truths: Sequence[np.ndarray], predictions: Sequence[np.ndarray]) -> float:
    """Mean over recordings of each recording's :func:`ccc`."""
    values = [ccc(y, p) for y, p in zip(truths, predictions, strict=True)
              if np.isfinite(np.asarray(y, dtype=float)).any()]
    return float(np.mean(values)) if values else 0.0


def is_binary(truths: Sequence[np.ndarray]) -> bool:
    """True when every finite truth value is 0 or 1 and both occur."""
    y = np.concatenate([np.asarray(t, dtype=float).ravel() for t in truths])
    y = y[np.isfinite(y)]
    return y.size > 0 and bool(np.isin(y, (0.0, 1.0)).all()) and len(np.unique(y)) == 2


def trace_metrics(truths: Sequence[np.ndarray], predictions: Sequence[np.ndarray]) -> dict[str, float]:
    """All metrics of one target over a list of recordings.

    Returns ``ccc`` (global over the concatenated recordings), ``ccc_per_recording``, ``pcc``
    and ``rmse``; binary (0/1) targets add ``auroc`` (prediction as score) and ``f1`` (threshold
    0.5).
    """
    y = np.concatenate([np.asarray(t, dtype=float).ravel() for t in truths])
    p = np.concatenate([np.asarray(t, dtype=float).ravel() for t in predictions])
    out = {"ccc": ccc(y, p), "ccc_per_recording": ccc_per_recording(truths, predictions),
           "pcc": pcc(y, p), "rmse": rmse(y, p)}
    if is_binary(truths):
        from sklearn.metrics import f1_score, roc_auc_score

        yf, pf = _finite(y, p)
        finite = bool(np.isfinite(pf).all())  # else no score, as for ccc
        out["auroc"] = float(roc_auc_score(yf, pf)) if finite else math.nan
        out["f1"] = float(f1_score(yf, pf >= 0.5)) if finite else math.nan
    return out


def partition_scores(truths: Sequence[np.ndarray], predictions: Sequence[np.ndarray],
                     targets: Sequence[str], *, partition: str) -> dict:
    """What ``evaluate`` reports for one partition: :func:`trace_metrics` per target, over
    recordings' ``(T, K)`` truths and predictions. One target's metrics are flat, several are
    nested under ``"targets"``.

    >>> y = [np.array([[0.0], [1.0], [2.0]])]
    >>> round(partition_scores(y, y, ["arousal"], partition="devel")["ccc"], 4)
    1.0
    """
    per = {t: trace_metrics([y[:, k] for y in truths], [p[:, k] for p in predictions])
           for k, t in enumerate(targets)}
    if len(targets) == 1:
        return {"target": targets[0], "partition": partition, "recordings": len(truths),
                **per[targets[0]]}
    return {"targets": per, "partition": partition, "recordings": len(truths)}


def classification_metrics(truth: Sequence[int] | np.ndarray, prediction: Sequence[int] | np.ndarray,
                           *, n_classes: int | None = None) -> dict[str, float]:
    r"""Segment-level classification metrics: ``f1_macro`` and ``accuracy``.

    :math:`F1_{macro} = \frac{1}{K} \sum_c \frac{2 P_c R_c}{P_c + R_c}` over the classes
    ``0 .. n_classes - 1`` (a class with no true and no predicted segment counts 0, as
    ``sklearn.metrics.f1_score(average="macro", labels=..., zero_division=0)``);
    accuracy is the share of correct segments. Segments whose truth is NaN or negative are left out.

    >>> classification_metrics([0, 1, 1, 2], [0, 1, 2, 2], n_classes=3)["accuracy"]
    0.75
    >>> round(classification_metrics([0, 1, 1, 2], [0, 1, 2, 2], n_classes=3)["f1_macro"], 4)
    0.7778
    """
    from sklearn.metrics import f1_score

    y = np.asarray(truth, dtype=float).ravel()
    p = np.asarray(prediction, dtype=float).ravel()
    keep = np.isfinite(y) & (y >= 0)
    y, p = y[keep].astype(int), p[keep].astype(int)
    if y.size == 0:
        return {"f1_macro": 0.0, "accuracy": 0.0, "segments": 0}
    k = n_classes if n_classes is not None else int(max(y.max(), p.max())) + 1
    f1 = f1_score(y, p, average="macro", labels=list(range(k)), zero_division=0)
    return {"f1_macro": float(f1), "accuracy": float((y == p).mean()), "segments": int(y.size)}
