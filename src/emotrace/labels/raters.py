r"""Fuse several raters' traces of one recording into a gold standard.

All functions take ``traces`` of shape ``(T, R)``: ``T`` time steps, ``R`` raters, finite values.

Methods (:func:`fuse`):

- ``mean``: :math:`g_t = \frac{1}{R} \sum_r x_{t,r}`.
- ``ewe``: the Evaluator Weighted Estimator :math:`g_t = \sum_r w_r x_{t,r}` with
  :math:`w_r \propto \max(0, \rho(x_r, \bar{x}_{-r}))`, where :math:`\bar{x}_{-r}` is the mean of
  the other raters and :math:`\rho` the Pearson correlation (:func:`ewe_weights`).
- ``raaw``: Rater Aligned Annotation Weighting (see :func:`raaw`): standardise, align in time
  (a constant lag per rater, then a bounded dynamic time warping), then EWE.
- ``dba``: DTW barycenter averaging (Petitjean et al., 2011) with the same bounded warping
  window, via :func:`tslearn.barycenters.dtw_barycenter_averaging`.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np

from emotrace.errors import EmotraceError

METHODS = ("mean", "ewe", "raaw", "dba")


@dataclass
class FusionResult:
    """A gold standard and how it was made.

    ``weights[r]`` is rater ``r``'s weight in the final average; ``lags[r]`` its estimated
    constant delay in seconds relative to the median rater (positive: reacts later; 0 for
    methods that do not align).
    """

    gold: np.ndarray  # (T,)
    weights: np.ndarray  # (R,)
    lags: np.ndarray  # (R,) seconds
    warnings: list[str] = field(default_factory=list)


def _corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of matching columns along axis -2 (0 where one is constant)."""
    ac, bc = a - a.mean(-2, keepdims=True), b - b.mean(-2, keepdims=True)
    den = np.sqrt((ac**2).sum(-2) * (bc**2).sum(-2))
    return np.where(den > 0, (ac * bc).sum(-2) / np.where(den > 0, den, 1), 0.0)


def zscore(traces: np.ndarray, *, mean: np.ndarray | None = None,
           std: np.ndarray | None = None) -> np.ndarray:
    r"""Per-rater standardisation :math:`(x_{t,r} - \mu_r) / \sigma_r` (population std; a
    constant rater is only centred). ``mean``/``std`` default to the trace's own statistics.

    >>> zscore(np.array([[1.0, 5.0], [3.0, 5.0]])).tolist()
    [[-1.0, 0.0], [1.0, 0.0]]
    """
    mean = traces.mean(0) if mean is None else mean
    std = traces.std(0) if std is None else std
    return (traces - mean) / np.where(std > 0, std, 1.0)


def ewe_weights(traces: np.ndarray) -> tuple[np.ndarray, bool]:
    r"""EWE weights :math:`w_r = \max(0, \rho_r) / \sum_q \max(0, \rho_q)` with
    :math:`\rho_r = \text{Pearson}(x_r, \frac{1}{R-1}\sum_{q \ne r} x_q)`.

    Returns ``(weights, fallback)``; when no rater correlates positively, the weights are equal
    and ``fallback`` is True.

    >>> w, fb = ewe_weights(np.array([[0.0, 0, 1], [1, 1, 0], [2, 2, 1]]))
    >>> w.round(3).tolist(), fb
    ([0.5, 0.5, 0.0], False)
    """
    r = traces.shape[1]
    others = (traces.sum(1, keepdims=True) - traces) / (r - 1)
    w = np.clip(_corr(traces, others), 0, None)
    if w.sum() <= 0:
        return np.full(r, 1.0 / r), True
    return w / w.sum(), False


def _ewe(traces: np.ndarray) -> FusionResult:
    w, fallback = ewe_weights(traces)
    notes = ["no rater correlates positively with the others: EWE fell back to equal weights"] \
        if fallback else []
    return FusionResult(traces @ w, w, np.zeros(traces.shape[1]), notes)


# ---------------------------------------------------------------------------------------------
# time alignment


def shift(traces: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """``out[t, r] = traces[t + lags[r], r]``, holding the first/last value at the edges."""
    t = traces.shape[0]
    idx = np.clip(np.arange(t)[:, None] + np.asarray(lags, dtype=np.int64)[None], 0, t - 1)
    return np.take_along_axis(traces, idx, 0)


def pairwise_lags(traces: np.ndarray, *, max_lag: int) -> np.ndarray:
    r"""Constant lag per rater (in steps) from pairwise cross-correlation.

    For every pair :math:`(i, j)` and lag :math:`L \in [-K, K]`, :math:`c_{ij}(L)` is the
    Pearson correlation of :math:`x_i(t + L)` (edge-held) with :math:`x_j(t)`; :math:`L_{ij}`
    is its argmax and :math:`c_{ij} = \max(0, c_{ij}(L_{ij}))` its confidence. The lags solve
    the weighted least-squares problem
    :math:`\min_l \sum_{i \ne j} c_{ij} (l_i - l_j - L_{ij})^2` (plus a tiny ridge), and are
    returned relative to their median, so the median rater has lag 0.
    """
    z = zscore(traces)
    t, r = z.shape
    grid = np.arange(-max_lag, max_lag + 1)
    idx = np.clip(np.arange(t)[None] + grid[:, None], 0, t - 1)
    xs = zscore(z[idx].reshape(-1, r)).reshape(len(grid), t, r)  # per-lag re-standardised
    c = np.einsum("kti,tj->kij", xs, z) / t  # (lags, i, j)
    lij = grid[c.argmax(0)]
    w = np.clip(c.max(0), 0, None)
    np.fill_diagonal(w, 0)
    a = np.diag(w.sum(1) + w.sum(0)) - w - w.T + 1e-3 * np.eye(r)
    b = (w * lij).sum(1) - (w * lij).sum(0)
    lags = np.linalg.solve(a, b)
    return lags - np.median(lags)


def _tslearn():
    """tslearn, an optional dependency (``pip install 'emotrace[labels]'``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "h5py not installed" on import
            import tslearn.barycenters
            import tslearn.metrics
    except ImportError:
        raise EmotraceError("RAAW and DBA align raters with tslearn, which is not installed. "
                            "Install it with: pip install 'emotrace[labels]'.") from None
    return tslearn


def dtw_warp(trace: np.ndarray, reference: np.ndarray, *, radius: int) -> tuple[np.ndarray, float]:
    r"""Warp ``trace`` onto the time axis of ``reference`` with DTW in a Sakoe-Chiba band.

    :func:`tslearn.metrics.dtw_path` gives the optimal path :math:`\{(i_k, j_k)\}` (squared
    difference cost, :math:`|i_k - j_k| \le` ``radius``); the warped value at reference step
    :math:`i` is the mean of ``trace[j]`` over the path pairs :math:`(i, j)`. Also returns the
    median offset :math:`\text{median}_k(j_k - i_k)` in steps.
    """
    if radius <= 0:
        return trace.copy(), 0.0
    path, _ = _tslearn().metrics.dtw_path(reference, trace, global_constraint="sakoe_chiba",
                                          sakoe_chiba_radius=int(radius))
    i, j = np.asarray(path).T
    n = len(reference)
    warped = np.bincount(i, weights=trace[j], minlength=n) / np.bincount(i, minlength=n)
    return warped, float(np.median(j - i))


def raaw(traces: np.ndarray, *, rate: float, max_lag_s: float = 4.0, warp_s: float = 1.0,
         iterations: int = 2) -> FusionResult:
    r"""Rater Aligned Annotation Weighting (Stappen et al., MuSe-Toolbox, 2021), 1-D variant.

    1. Standardise each rater: :math:`z_r = (x_r - \mu_r)/\sigma_r` (alignment only; the output
       keeps the scale of ``traces``).
    2. Constant lags :math:`l_r` (steps, :math:`|L_{ij}| \le` ``max_lag_s`` · rate) from
       :func:`pairwise_lags`; each rater is shifted by its rounded lag (edge-held):
       :math:`\tilde{x}_r(t) = x_r(t + l_r)`.
    3. ``iterations`` times: reference :math:`g` = EWE of the shifted :math:`z`; each shifted
       rater is warped onto :math:`g` by DTW in a Sakoe-Chiba band of ``warp_s`` · rate steps
       (:func:`dtw_warp`; 0 disables this step). For 1-D traces canonical time warping reduces
       to this: CCA of two scalar series is a scaling, so CTW's alternation is DTW on z-scores.
    4. EWE (:func:`ewe_weights`) of the aligned traces, in the scale of ``traces``.

    The reported lag of rater :math:`r` is :math:`(l_r + m_r) / \text{rate}` seconds, with
    :math:`m_r` the median offset of its final warping path.
    """
    max_lag = max(1, int(round(max_lag_s * rate)))
    radius = int(round(warp_s * rate))
    lags = pairwise_lags(traces, max_lag=max_lag)
    steps = np.rint(lags).astype(np.int64)
    x, z = shift(traces, steps), shift(zscore(traces), steps)
    offsets = np.zeros(traces.shape[1])
    aligned, aligned_z = x, z
    for _ in range(iterations if radius > 0 else 0):
        ref = aligned_z @ ewe_weights(aligned_z)[0]
        out = [dtw_warp(z[:, r], ref, radius=radius) for r in range(z.shape[1])]
        aligned_z = np.stack([o[0] for o in out], 1)
        offsets = np.array([o[1] for o in out])
    if radius > 0:  # apply the final paths to the traces in their own scale
        mu, sd = traces.mean(0), traces.std(0)
        aligned = aligned_z * np.where(sd > 0, sd, 1.0) + mu
    res = _ewe(aligned)
    res.lags = (steps + offsets) / rate
    return res


def dba(traces: np.ndarray, *, rate: float, warp_s: float = 4.0, iterations: int = 10) -> FusionResult:
    r"""DTW barycenter averaging: the series :math:`g` minimising
    :math:`\sum_r \text{DTW}(g, x_r)^2` in a Sakoe-Chiba band of ``warp_s`` · rate steps,
    started from the mean (:func:`tslearn.barycenters.dtw_barycenter_averaging`, ``iterations``
    refinements). Weights are equal; lags are the median offsets of each rater's DTW path to
    :math:`g`, in seconds.
    """
    radius = max(1, int(round(warp_s * rate)))
    ts = _tslearn()
    params = {"global_constraint": "sakoe_chiba", "sakoe_chiba_radius": radius}
    gold = ts.barycenters.dtw_barycenter_averaging(
        traces.T[:, :, None], metric_params=params, max_iter=iterations,
        init_barycenter=traces.mean(1)[:, None])[:, 0]
    offsets = np.array([dtw_warp(traces[:, r], gold, radius=radius)[1] for r in range(traces.shape[1])])
    r = traces.shape[1]
    return FusionResult(gold, np.full(r, 1.0 / r), offsets / rate)


# ---------------------------------------------------------------------------------------------
# smoothing


@dataclass(frozen=True)
class Smoother:
    """``savgol`` (Savitzky-Golay, polynomial ``order``) or ``mean`` (moving average) over
    ``window`` steps; both centred, edges by nearest-value padding (``mode="nearest"``)."""

    kind: str
    window: int
    order: int = 2

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from scipy.ndimage import uniform_filter1d
        from scipy.signal import savgol_filter

        w = min(self.window, x.shape[0])
        if self.kind == "mean":
            return uniform_filter1d(x, w, axis=0, mode="nearest")
        if w <= self.order:
            return x.copy()
        return savgol_filter(x, w, self.order, axis=0, mode="nearest")


def parse_smoother(spec: str | int | None, *, option: str = "--pre-smooth",
                   default: str = "mean") -> Smoother | None:
    """``"savgol:5"``, ``"savgol:5:3"`` (window, order), ``"mean:15"`` or ``"15"`` (``default``
    kind); ``None``, ``""``, ``"0"`` and ``"none"`` mean no smoothing.

    >>> parse_smoother("savgol:5")
    Smoother(kind='savgol', window=5, order=2)
    >>> parse_smoother("15", option="--post-smooth")
    Smoother(kind='mean', window=15, order=2)
    """
    if spec is None or str(spec).strip().lower() in ("", "0", "none"):
        return None
    m = re.fullmatch(r"(?:(savgol|mean):)?(\d+)(?::(\d+))?", str(spec).strip().lower())
    if not m or int(m.group(2)) < 1 or (m.group(3) and m.group(1) != "savgol"):
        raise EmotraceError(f"{option} {spec!r}: not a smoother. Use savgol:WINDOW[:ORDER], "
                            f"mean:WINDOW or WINDOW (steps), e.g. savgol:5 or 15.")
    kind = m.group(1) or default
    order = int(m.group(3) or 2)
    if kind == "savgol" and int(m.group(2)) <= order:
        raise EmotraceError(f"{option} {spec!r}: the Savitzky-Golay window must be longer than "
                            f"its polynomial order ({order}).")
    return Smoother(kind, int(m.group(2)), order)


def fuse(traces: np.ndarray, *, method: str = "ewe", rate: float = 1.0, max_lag_s: float = 4.0,
         warp_s: float = 1.0) -> FusionResult:
    """Fuse ``traces`` ``(T, R)`` sampled at ``rate`` Hz with one of :data:`METHODS`.

    ``max_lag_s`` bounds RAAW's constant lags; ``warp_s`` is RAAW's DTW band (and DBA's band is
    ``max_lag_s``). See the module docstring for the formulas.

    >>> x = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]])
    >>> fuse(x, method="mean").gold.tolist()
    [0.0, 1.5, 3.0]
    """
    traces = np.asarray(traces, dtype=np.float64)
    if traces.ndim != 2 or traces.shape[1] < 2:
        raise EmotraceError(f"fusion needs traces of shape (T, R) with R >= 2 raters, got "
                            f"{traces.shape}.")
    if method == "mean":
        r = traces.shape[1]
        return FusionResult(traces.mean(1), np.full(r, 1.0 / r), np.zeros(r))
    if method == "ewe":
        return _ewe(traces)
    if method == "raaw":
        return raaw(traces, rate=rate, max_lag_s=max_lag_s, warp_s=warp_s)
    if method == "dba":
        return dba(traces, rate=rate, warp_s=max_lag_s)
    raise EmotraceError(f"--method {method!r}: unknown. Use one of {', '.join(METHODS)}.")
