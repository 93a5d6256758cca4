"""Fuse several raters' traces of one recording into a gold standard: ``mean``, ``ewe``,
``raaw`` and ``dba`` (:func:`fuse`), and the smoothers applied before and after.

All functions take ``traces`` of shape ``(T, R)``: ``T`` time steps, ``R`` raters, finite values.
The formulas, the options and where they differ from MuSe-Toolbox are in docs/usage.md
("Gold standards from several raters").
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np

from emotrace.errors import EmotraceError
from emotrace.metrics import ccc as _ccc

METHODS = ("mean", "ewe", "raaw", "dba")
EWE_WEIGHTS = ("pearson", "ccc")
DBA_INITS = ("medoid", "mean")
LAG_SELECT = ("peak", "argmax")


@dataclass
class FusionResult:
    """A gold standard and how it was made.

    ``weights[r]`` is rater ``r``'s weight in the final average; ``lags[r]`` the shift applied to
    it in seconds (positive: it reacts later than the others; 0 for methods that do not align).
    ``raters[r]`` holds the reasons behind rater ``r``'s lag (RAAW) and ``info`` method-specific
    numbers (DBA: the start and the sum of squared DTW distances).
    """

    gold: np.ndarray  # (T,)
    weights: np.ndarray  # (R,)
    lags: np.ndarray  # (R,) seconds
    warnings: list[str] = field(default_factory=list)
    raters: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)


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


def minmax(x: np.ndarray, *, lo: np.ndarray | float | None = None,
           hi: np.ndarray | float | None = None) -> np.ndarray:
    r"""Scale to [-1, 1] per column: :math:`2 (x - lo) / (hi - lo) - 1`, with ``lo``/``hi``
    the column minimum and maximum by default (MuSe-Toolbox's ``MinMaxScaler((-1, 1))``); a
    constant column maps to -1.

    >>> minmax(np.array([0.0, 5.0, 10.0])).tolist()
    [-1.0, 0.0, 1.0]
    """
    lo = x.min(0) if lo is None else lo
    hi = x.max(0) if hi is None else hi
    span = np.asarray(hi - lo, dtype=np.float64)
    return 2 * (x - lo) / np.where(span > 0, span, 1.0) - 1


def _ccc_toolbox(a: np.ndarray, b: np.ndarray) -> float:
    """MuSe-Toolbox's ``EWE.CCC``: variances with 1/(n-1), the covariance with 1/n, rounded to
    4 decimals (reproduced for ``toolbox=True`` only)."""
    ma, mb = a.mean(), b.mean()
    va = ((a - ma) ** 2).sum() / (len(a) - 1)
    vb = ((b - mb) ** 2).sum() / (len(b) - 1)
    den = va + vb + (ma - mb) ** 2
    return round(float(np.mean((a - ma) * (b - mb)) * 2 / den), 4) if den > 0 else 0.0


def ewe_weights(traces: np.ndarray, *, kind: str = "pearson",
                toolbox: bool = False) -> tuple[np.ndarray, bool]:
    r"""Evaluator Weighted Estimator weights :math:`w_r = \max(0, s_r) / \sum_q \max(0, s_q)`.

    - ``kind="pearson"`` (default): :math:`s_r = \rho(x_r, \frac{1}{R-1}\sum_{q \ne r} x_q)`,
      the Pearson correlation of rater :math:`r` with the mean of the others (Grimm & Kroschel,
      2005).
    - ``kind="ccc"``: :math:`s_r = \frac{1}{R-1}\sum_{q \ne r} \text{CCC}(x_r, x_q)`, the
      rater's mean pairwise concordance correlation coefficient
      :math:`\text{CCC}(a, b) = 2\sigma_{ab} / (\sigma_a^2 + \sigma_b^2 + (\mu_a - \mu_b)^2)`
      with population statistics (:func:`emotrace.metrics.ccc`), as MuSe-Toolbox's EWE
      (Stappen et al., 2021). With ``toolbox=True`` each CCC uses the toolbox's own estimator
      (variances with 1/(n-1), covariance with 1/n) and is rounded to 4 decimals.

    Returns ``(weights, fallback)``; when no rater scores positively, the weights are equal and
    ``fallback`` is True.

    >>> w, fb = ewe_weights(np.array([[0.0, 0, 1], [1, 1, 0], [2, 2, 1]]))
    >>> w.round(3).tolist(), fb
    ([0.5, 0.5, 0.0], False)
    """
    r = traces.shape[1]
    if kind == "pearson":
        others = (traces.sum(1, keepdims=True) - traces) / (r - 1)
        s = _corr(traces, others)
    elif kind == "ccc":
        pair = _ccc_toolbox if toolbox else _ccc
        m = np.zeros((r, r))
        for i in range(r):
            for j in range(i + 1, r):
                m[i, j] = m[j, i] = pair(traces[:, i], traces[:, j])
        s = m.sum(1) / (r - 1)
    else:
        raise EmotraceError(f"--ewe-weights {kind!r}: unknown. Use one of {', '.join(EWE_WEIGHTS)}.")
    w = np.clip(np.nan_to_num(s), 0, None)
    if w.sum() <= 0:
        return np.full(r, 1.0 / r), True
    return w / w.sum(), False


def _ewe(traces: np.ndarray, *, kind: str = "pearson", toolbox: bool = False) -> FusionResult:
    """EWE of ``traces``; ``toolbox=True`` also rounds the weighted sum to 3 decimals after each
    rater, as MuSe-Toolbox does (``EWEseq = np.round(EWEseq + x_r * w_r, 3)``)."""
    w, fallback = ewe_weights(traces, kind=kind, toolbox=toolbox)
    notes = ["no rater agrees positively with the others: EWE fell back to equal weights"] \
        if fallback else []
    if toolbox:
        gold = np.zeros(traces.shape[0])
        for r in range(traces.shape[1]):
            gold = np.round(gold + traces[:, r] * w[r], 3)
    else:
        gold = traces @ w
    return FusionResult(gold, w, np.zeros(traces.shape[1]), notes)


# ---------------------------------------------------------------------------------------------
# time alignment


def shift(traces: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """``out[t, r] = traces[t + lags[r], r]``, holding the first/last value at the edges."""
    t = traces.shape[0]
    idx = np.clip(np.arange(t)[:, None] + np.asarray(lags, dtype=np.int64)[None], 0, t - 1)
    return np.take_along_axis(traces, idx, 0)


def lag_curves(z: np.ndarray, *, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Lagged agreement of every rater with the others.

    ``c[k, r]`` is the Pearson correlation of :math:`z_r(t + L_k)` with the mean of the other
    raters :math:`\bar{z}_{-r}(t)`, over the steps where both exist (no padding), for
    :math:`L_k \in \{-K, ..., K\}` = ``grid``. A positive :math:`L` means rater :math:`r`
    reacts :math:`L` steps later than the others.
    """
    t, r = z.shape
    others = (z.sum(1, keepdims=True) - z) / (r - 1)
    grid = np.arange(-max_lag, max_lag + 1)
    c = np.empty((len(grid), r))
    for k, lag in enumerate(grid):
        a = z[max(lag, 0): t + min(lag, 0)]
        b = others[max(-lag, 0): t - max(lag, 0)]
        c[k] = _corr(a, b)
    return grid, c


def select_lags(z: np.ndarray, *, max_lag: int, min_gain: float = 0.05, rate: float = 1.0,
                names: list[str] | None = None) -> tuple[np.ndarray, list[dict], list[str]]:
    r"""A constant lag per rater, taken only where the data show one.

    From :func:`lag_curves`, rater :math:`r`'s peak is :math:`L^*_r = \arg\max_L c_r(L)`, its
    gain over no lag :math:`g_r = c_r(L^*_r) - c_r(0)` and its fall towards the end of the
    search :math:`f_r = c_r(L^*_r) - \min c_r(L)` over the lags beyond :math:`L^*_r` (away from
    0). The lag is taken only for a real interior peak: :math:`|L^*_r| < K`,
    :math:`g_r \ge` ``min_gain`` and :math:`f_r \ge` ``min_gain``. Otherwise the rater is not
    shifted; a peak on the boundary (the correlation still rising where the search stopped) also
    gives a warning. Each rater is measured against the mean of the others, which move too, so
    the applied shift is :math:`l_r = \text{round}(\frac{R-1}{R} L^*_r)` steps (for two raters
    their relative shift is then exactly :math:`L^*`).

    Returns the shifts (steps), one dict per rater (``peak_lag_s``, ``peak_corr``,
    ``zero_corr``, ``gain``, ``fall``, ``decision``, ``lag_s``) and the warnings.
    """
    r = z.shape[1]
    steps = np.zeros(r, np.int64)
    info: list[dict] = []
    notes: list[str] = []
    if max_lag <= 0:
        return steps, [{"decision": "no lag search (--max-lag 0)", "lag_s": 0.0}] * r, notes
    grid, c = lag_curves(z, max_lag=max_lag)
    zero = max_lag  # grid[max_lag] == 0
    for q in range(r):
        k = int(np.argmax(c[:, q]))
        peak, gain = int(grid[k]), float(c[k, q] - c[zero, q])
        beyond = c[k:, q] if peak >= 0 else c[: k + 1, q]
        fall = float(c[k, q] - beyond.min())
        if peak == 0:
            decision = "peak at zero lag"
        elif abs(peak) == max_lag:
            decision = "peak on the search boundary: not shifted"
            who = names[q] if names else q + 1
            notes.append(f"rater {who}: the lagged correlation with the other raters peaks on "
                         f"the search boundary ({peak / rate:+g} s, gain {gain:.3f} over no lag), "
                         f"so the rater is not shifted; a longer --max-lag may find a real peak")
        elif gain < min_gain:
            decision = f"gain over zero lag below {min_gain:g}: not shifted"
        elif fall < min_gain:
            decision = f"no clear peak (falls by less than {min_gain:g} before the boundary): " \
                       f"not shifted"
        else:
            steps[q] = int(np.rint((r - 1) / r * peak))
            decision = "interior peak: shifted"
        info.append({"peak_lag_s": round(peak / rate, 3), "peak_corr": round(float(c[k, q]), 4),
                     "zero_corr": round(float(c[zero, q]), 4), "gain": round(gain, 4),
                     "fall": round(fall, 4), "decision": decision,
                     "lag_s": round(float(steps[q]) / rate, 3)})
    return steps, info, notes


def pairwise_lags(traces: np.ndarray, *, max_lag: int) -> np.ndarray:
    r"""Constant lag per rater (in steps) from pairwise cross-correlation, without any check
    that a peak is real (``lag_select="argmax"``, emotrace's estimator before 2026-12).

    For every pair :math:`(i, j)` and lag :math:`L \in [-K, K]`, :math:`c_{ij}(L)` is the
    Pearson correlation of :math:`x_i(t + L)` (edge-held) with :math:`x_j(t)`; :math:`L_{ij}`
    is its argmax and :math:`c_{ij} = \max(0, c_{ij}(L_{ij}))` its confidence. The lags solve
    :math:`\min_l \sum_{i \ne j} c_{ij} (l_i - l_j - L_{ij})^2` (plus a tiny ridge), relative
    to their median. It pools all pairs, so with many weakly agreeing raters it recovers real
    delays better than :func:`select_lags`, but where there is no delay it follows the search
    limit (a correlation still rising at the boundary is taken as the lag).
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
            import tslearn.metrics
    except ImportError:
        raise EmotraceError("RAAW and DBA align raters with tslearn, which is not installed. "
                            "Install it with: pip install 'emotrace[labels]'.") from None
    return tslearn


def dtw_path(reference: np.ndarray, trace: np.ndarray, *,
             radius: int | None) -> tuple[np.ndarray, np.ndarray, float]:
    """The optimal DTW path ``(i, j)`` between ``reference[i]`` and ``trace[j]`` (squared
    difference cost; :func:`tslearn.metrics.dtw_path`) within a Sakoe-Chiba band of ``radius``
    steps, or unconstrained for ``None``; also returns the DTW distance."""
    kw = {} if radius is None else {"global_constraint": "sakoe_chiba",
                                    "sakoe_chiba_radius": int(radius)}
    path, dist = _tslearn().metrics.dtw_path(reference, trace, **kw)
    i, j = np.asarray(path).T
    return i, j, float(dist)


def dtw_warp(trace: np.ndarray, reference: np.ndarray, *,
             radius: int | None) -> tuple[np.ndarray, float]:
    r"""Warp ``trace`` onto the time axis of ``reference`` with DTW in a Sakoe-Chiba band
    (:func:`dtw_path`; ``radius`` 0 returns ``trace`` unchanged, ``None`` is unconstrained);
    the warped value at reference step :math:`i` is the mean of ``trace[j]`` over the path
    pairs :math:`(i, j)`. Also returns the median offset :math:`\text{median}_k(j_k - i_k)` in
    steps.
    """
    if radius is not None and radius <= 0:
        return trace.copy(), 0.0
    i, j, _ = dtw_path(reference, trace, radius=radius)
    n = len(reference)
    warped = np.bincount(i, weights=trace[j], minlength=n) / np.bincount(i, minlength=n)
    return warped, float(np.median(j - i))


def raaw(traces: np.ndarray, *, rate: float, max_lag_s: float = 4.0, warp_s: float = 1.0,
         iterations: int = 2, min_gain: float = 0.05, ewe: str = "pearson",
         toolbox: bool = False, names: list[str] | None = None,
         lag_select: str = "peak") -> FusionResult:
    r"""Rater Aligned Annotation Weighting (Stappen et al., MuSe-Toolbox, 2021), 1-D variant.

    1. Standardise each rater: :math:`z_r = (x_r - \mu_r)/\sigma_r` (alignment only; the output
       keeps the scale of ``traces``).
    2. A constant lag per rater where the data show one (:func:`select_lags`, search range
       ``max_lag_s``, margin ``min_gain``; ``lag_select="argmax"``: :func:`pairwise_lags`
       instead); each rater is shifted by it (edge-held).
    3. ``iterations`` times: reference :math:`g` = EWE of the shifted :math:`z`; each shifted
       rater is warped onto :math:`g` by DTW in a Sakoe-Chiba band of ``warp_s`` · rate steps
       (:func:`dtw_warp`; 0 disables this step). For 1-D traces canonical time warping reduces
       to this: CCA of two scalar series is a scaling, so CTW's alternation is DTW on z-scores.
    4. EWE (:func:`ewe_weights`, ``ewe`` kind) of the aligned traces, in the scale of ``traces``.

    The reported lag of rater :math:`r` is :math:`(l_r + m_r) / \text{rate}` seconds, with
    :math:`m_r` the median offset of its final warping path.
    """
    max_lag = int(round(max_lag_s * rate))
    radius = int(round(warp_s * rate))
    if lag_select not in LAG_SELECT:
        raise EmotraceError(f"--lag-select {lag_select!r}: unknown. Use one of "
                            f"{', '.join(LAG_SELECT)}.")
    if lag_select == "argmax":
        steps = np.rint(pairwise_lags(traces, max_lag=max(1, max_lag))).astype(np.int64)
        info = [{"decision": "pairwise argmax (--lag-select argmax: no peak check)",
                 "lag_s": round(float(v) / rate, 3)} for v in steps]
        notes: list[str] = []
    else:
        steps, info, notes = select_lags(zscore(traces), max_lag=max_lag, min_gain=min_gain,
                                         rate=rate, names=names)
    x, z = shift(traces, steps), shift(zscore(traces), steps)
    offsets = np.zeros(traces.shape[1])
    aligned, aligned_z = x, z
    for _ in range(iterations if radius > 0 else 0):
        ref = aligned_z @ ewe_weights(aligned_z, kind=ewe)[0]
        out = [dtw_warp(z[:, r], ref, radius=radius) for r in range(z.shape[1])]
        aligned_z = np.stack([o[0] for o in out], 1)
        offsets = np.array([o[1] for o in out])
    if radius > 0:  # apply the final paths to the traces in their own scale
        mu, sd = traces.mean(0), traces.std(0)
        aligned = aligned_z * np.where(sd > 0, sd, 1.0) + mu
    res = _ewe(aligned, kind=ewe, toolbox=toolbox)
    res.lags = (steps + offsets) / rate
    res.warnings = notes + res.warnings
    res.raters = [{**d, "dtw_offset_s": round(float(o) / rate, 3)}
                  for d, o in zip(info, offsets, strict=True)]
    return res


def dba(traces: np.ndarray, *, rate: float, band_s: float | None = None, init: str = "medoid",
        iterations: int = 10) -> FusionResult:
    r"""DTW barycenter averaging (Petitjean et al., 2011): the series :math:`g` minimising
    :math:`\sum_r \text{DTW}(g, x_r)^2`, by ``iterations`` updates
    :math:`g_i \leftarrow \text{mean}\{x_r[j] : (i, j) \in \text{path}(g, x_r), r = 1..R\}`
    (stopping early once :math:`g` no longer changes).

    ``init="medoid"`` (default) starts from the rater with the smallest
    :math:`\sum_q \text{DTW}(x_r, x_q)^2`, as MuSe-Toolbox does; ``"mean"`` from the mean of the
    raters. DTW is unconstrained (``band_s=None``, as MuSe-Toolbox) or limited to a Sakoe-Chiba
    band of ``band_s`` · rate steps. Weights are equal; lags are the median offsets of each
    rater's path to :math:`g`, in seconds; ``info`` holds the start and the final
    :math:`\sum_r \text{DTW}(g, x_r)^2`.
    """
    if init not in DBA_INITS:
        raise EmotraceError(f"--dba-init {init!r}: unknown. Use one of {', '.join(DBA_INITS)}.")
    radius = None if band_s is None else max(1, int(round(band_s * rate)))
    n, r = traces.shape

    def cost(g: np.ndarray) -> float:
        return sum(dtw_path(g, traces[:, q], radius=radius)[2] ** 2 for q in range(r))

    start = int(np.argmin([cost(traces[:, q]) for q in range(r)])) if init == "medoid" else None
    gold = traces[:, start].copy() if start is not None else traces.mean(1)
    for _ in range(iterations):
        total, count = np.zeros(n), np.zeros(n)
        for q in range(r):
            i, j, _ = dtw_path(gold, traces[:, q], radius=radius)
            total += np.bincount(i, weights=traces[j, q], minlength=n)
            count += np.bincount(i, minlength=n)
        new = total / count
        if np.array_equal(new, gold):
            break
        gold = new
    offsets = np.array([dtw_warp(traces[:, q], gold, radius=radius)[1] for q in range(r)])
    info = {"init": init if start is None else f"medoid (rater {start + 1})",
            "band_s": band_s, "sum_sq_dtw": round(cost(gold), 6)}
    return FusionResult(gold, np.full(r, 1.0 / r), offsets / rate, info=info)


# ---------------------------------------------------------------------------------------------
# smoothing


@dataclass(frozen=True)
class Smoother:
    """``savgol`` (Savitzky-Golay, polynomial ``order``) or ``mean`` (moving average) over
    ``window`` steps, centred. Edges: nearest-value padding (``edges="nearest"``), so a trace
    that ends high stays high; ``edges="interp"`` fits the Savitzky-Golay polynomial to the
    first/last window instead (scipy's default, used by MuSe-Toolbox's pre-smoothing). A window
    longer than the trace is cut to its length."""

    kind: str
    window: int
    order: int = 2
    edges: str = "nearest"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from scipy.ndimage import uniform_filter1d
        from scipy.signal import savgol_filter

        w = min(self.window, x.shape[0])
        if self.kind == "mean":
            return uniform_filter1d(x, w, axis=0, mode="nearest")
        if w <= self.order:
            return x.copy()
        mode = "interp" if self.edges == "interp" and w % 2 == 1 else "nearest"
        return savgol_filter(x, w, self.order, axis=0, mode=mode)


def parse_smoother(spec: str | int | None, *, option: str = "--pre-smooth",
                   default: str = "mean") -> Smoother | None:
    """``"savgol:5"``, ``"savgol:5:3"`` (window, order), ``"mean:15"`` or ``"15"`` (``default``
    kind); ``None``, ``""``, ``"0"`` and ``"none"`` mean no smoothing.

    >>> parse_smoother("savgol:5")
    Smoother(kind='savgol', window=5, order=2, edges='nearest')
    >>> parse_smoother("15", option="--post-smooth")
    Smoother(kind='mean', window=15, order=2, edges='nearest')
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
         warp_s: float = 1.0, min_gain: float = 0.05, ewe_weights: str = "pearson",
         toolbox: bool = False, dba_init: str = "medoid", dba_band_s: float | None = None,
         names: list[str] | None = None, lag_select: str = "peak") -> FusionResult:
    """Fuse ``traces`` ``(T, R)`` sampled at ``rate`` Hz with one of :data:`METHODS`.

    ``max_lag_s`` bounds RAAW's constant lags and ``min_gain`` is the margin a lag must beat
    zero lag by (:func:`select_lags`; ``lag_select="argmax"`` uses :func:`pairwise_lags`
    instead); ``warp_s`` is RAAW's DTW band. ``ewe_weights``
    (``pearson`` or ``ccc``, :func:`ewe_weights`) applies to ``ewe`` and ``raaw``;
    ``toolbox=True`` reproduces MuSe-Toolbox's EWE numerics (its CCC estimator and rounding).
    ``dba_init`` and ``dba_band_s`` are DBA's start and band (:func:`dba`). ``names`` (the
    raters' names) only label the warnings.

    >>> x = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]])
    >>> fuse(x, method="mean").gold.tolist()
    [0.0, 1.5, 3.0]
    """
    traces = np.asarray(traces, dtype=np.float64)
    if traces.ndim != 2 or traces.shape[1] < 2:
        raise EmotraceError(f"fusion needs traces of shape (T, R) with R >= 2 raters, got "
                            f"{traces.shape}.")
    for name, v in (("--max-lag", max_lag_s), ("--warp", warp_s), ("--lag-min-gain", min_gain)):
        if not np.isfinite(v) or v < 0:
            raise EmotraceError(f"{name} {v:g}: must be a number >= 0 (seconds for --max-lag "
                                f"and --warp; 0 turns the step off).")
    if dba_band_s is not None and not dba_band_s > 0:
        raise EmotraceError(f"--dba-band {dba_band_s:g}: must be > 0 seconds; leave it out for "
                            f"unconstrained DTW.")
    if ewe_weights not in EWE_WEIGHTS:
        raise EmotraceError(f"--ewe-weights {ewe_weights!r}: unknown. Use one of "
                            f"{', '.join(EWE_WEIGHTS)}.")
    if method == "mean":
        r = traces.shape[1]
        return FusionResult(traces.mean(1), np.full(r, 1.0 / r), np.zeros(r))
    if method == "ewe":
        return _ewe(traces, kind=ewe_weights, toolbox=toolbox)
    if method == "raaw":
        return raaw(traces, rate=rate, max_lag_s=max_lag_s, warp_s=warp_s, min_gain=min_gain,
                    ewe=ewe_weights, toolbox=toolbox, names=names, lag_select=lag_select)
    if method == "dba":
        return dba(traces, rate=rate, band_s=dba_band_s, init=dba_init)
    raise EmotraceError(f"--method {method!r}: unknown. Use one of {', '.join(METHODS)}.")
