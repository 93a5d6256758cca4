"""Physiological arousal: EDA on the label grid, replacing the weakest rater.

EDA files: ``EDA_DIR/<id>.csv`` with columns ``timestamp`` (**seconds**, on the same clock as the
raw rater file) and ``value``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emotrace.data.csvio import check_timeline, read_table
from emotrace.errors import located
from emotrace.labels.raters import Smoother, ewe_weights, zscore


def eda_on_grid(t_eda: np.ndarray, v_eda: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Mean of the EDA samples within each label step ``[grid[k], grid[k+1])`` (the last step is
    as long as the median step); steps without a sample are linearly interpolated between the
    neighbouring step means (EDA slower than the labels).

    >>> eda_on_grid(np.array([0.0, 0.2, 0.6]), np.array([1.0, 3.0, 5.0]), np.array([0.0, 0.5, 1.0]))
    array([2., 5., 5.])
    """
    dt = np.median(np.diff(grid))
    edges = np.append(grid, grid[-1] + dt)
    step = np.searchsorted(edges, t_eda, side="right") - 1
    inside = (step >= 0) & (step < len(grid))
    n = np.bincount(step[inside], minlength=len(grid))
    s = np.bincount(step[inside], weights=v_eda[inside], minlength=len(grid))
    has = n > 0
    return np.interp(grid, grid[has], s[has] / n[has])


def read_eda(path: Path | str, grid: np.ndarray) -> np.ndarray:
    """Read an EDA file and return it on the label grid (seconds); validates the clock."""
    path = Path(path)
    table = read_table(path, value_columns=["value"])
    check_timeline(table)
    t, v = table.timestamps, table.values[:, 0].astype(np.float64)
    if not np.isfinite(v).all():
        raise located(path, "NaN or inf EDA value", line=int(np.flatnonzero(~np.isfinite(v))[0]) + 2,
                      column="value", fix="Interpolate or remove the missing samples.")
    span = grid[-1] - grid[0]
    if t[-1] - t[0] > 100 * max(span, 1.0):
        raise located(path, f"the EDA spans {t[-1] - t[0]:g} s, over 100 times the labels' "
                      f"{span:g} s", column="timestamp",
                      fix="EDA timestamps are seconds; these look like milliseconds: divide by 1000.")
    if t[0] > grid[0] + 0.1 * span + 1 or t[-1] < grid[-1] - 0.1 * span - 1:
        hint = (" The timestamps look like milliseconds; write seconds." if t[-1] > 100 * grid[-1] > 0
                else "")
        raise located(path, f"the EDA covers {t[0]:g}-{t[-1]:g} s but the labels cover "
                      f"{grid[0]:g}-{grid[-1]:g} s", column="timestamp",
                      fix="EDA timestamps are seconds on the clock of the raw label file." + hint)
    return eda_on_grid(t, v, grid)


def replace_weakest(traces: np.ndarray, eda: np.ndarray, *, smooth: int = 26) -> tuple[np.ndarray, int]:
    """Standardise the raters, Savitzky-Golay smooth (window ``smooth``, order 2) and standardise
    the EDA, and put it in place of the rater with the lowest EWE weight. Returns the new
    ``(T, R)`` traces and the index of the replaced rater."""
    z = zscore(traces)
    weakest = int(np.argmin(ewe_weights(z)[0]))
    e = Smoother("savgol", smooth)(eda) if smooth and smooth > 2 else eda
    z[:, weakest] = zscore(e[:, None])[:, 0]
    return z, weakest
