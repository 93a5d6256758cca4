"""Read raw rater traces: ``RAW/<dimension>/<id>.csv`` with ``timestamp`` (seconds), then one
column per rater (the MuSe-Toolbox input format).

Policy for missing values: a rater column that is entirely NaN is an error; NaN only at the
start or end of some columns (raters whose traces have different lengths) is an error by
default, and with ``trim=True`` the recording is cut to the rows where every rater has a value.
A NaN between values (a gap) is always an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emotrace.data.csvio import check_timeline, read_table
from emotrace.errors import located


@dataclass
class RaterTable:
    """One recording: ``values[t, r]`` is rater ``raters[r]`` at ``timestamps[t]`` seconds."""

    path: Path
    id: str
    timestamps: np.ndarray  # float64 (T,), seconds, strictly increasing, regular
    raters: list[str]
    values: np.ndarray  # float64 (T, R), finite

    @property
    def rate(self) -> float:
        """Label rate in Hz (1 / median step)."""
        return float(1.0 / np.median(np.diff(self.timestamps)))


def read_raw(path: Path | str, *, trim: bool = False) -> RaterTable:
    """Read and validate one raw file (see the module docstring for the NaN policy)."""
    path = Path(path)
    table = read_table(path)
    check_timeline(table)
    names, v = table.names, table.values.astype(np.float64)
    if len(names) < 2:
        raise located(path, f"{len(names)} rater column(s) after 'timestamp'", line=1,
                      fix="A gold standard needs at least two raters: one column per rater.")
    if len(v) < 3:
        raise located(path, f"only {len(v)} row(s)", fix="Each rater needs a trace of several steps.")
    steps = np.diff(table.timestamps)
    dev = np.abs(steps - np.median(steps)) > 0.01 * np.median(steps)
    if dev.any():
        i = int(np.flatnonzero(dev)[0])
        raise located(path, f"irregular time step {steps[i]:g} s (the median step is "
                      f"{np.median(steps):g} s)", line=i + 3, column="timestamp",
                      fix="Resample the traces to a regular grid first.")
    ok = np.isfinite(v)
    for r, name in enumerate(names):
        if not ok[:, r].any():
            raise located(path, "the rater column is empty (all NaN)", column=name,
                          fix="Remove the column, or fill in the rater's trace.")
    keep = ok.all(axis=1)
    if not keep.all():
        rows = np.flatnonzero(keep)
        first, last = (int(rows[0]), int(rows[-1])) if len(rows) else (0, -1)
        inner = ~keep[first:last + 1]
        r = int(np.flatnonzero(~ok.all(axis=0))[0])
        if len(rows) == 0 or inner.any() or not trim:
            bad = int(np.flatnonzero(~ok[:, r])[0])
            gap = len(rows) > 0 and inner.any()
            what = ("a gap (NaN between values)" if gap else
                    "raters with different lengths (NaN at the start or end)")
            fix = ("Interpolate the gap or remove the rater." if gap else
                   "Cut every rater to the same span, or pass --trim to keep only the rows where "
                   "every rater has a value.")
            raise located(path, f"{what}; first missing value", line=bad + 2, column=names[r], fix=fix)
        table.timestamps, v = table.timestamps[first:last + 1], v[first:last + 1]
    const = np.flatnonzero(np.ptp(v, axis=0) == 0)
    if len(const):
        raise located(path, f"the rater's trace is constant ({v[0, const[0]]:g})",
                      column=names[int(const[0])],
                      fix="A constant trace carries no information: remove the column.")
    return RaterTable(path, path.stem, table.timestamps, list(names), v)


def read_raw_folder(raw: Path | str, dimension: str, *, trim: bool = False,
                    progress=None) -> list[RaterTable]:
    """Read every ``raw/<dimension>/*.csv``, sorted by recording id."""
    folder = Path(raw) / dimension
    if not folder.is_dir():
        found = sorted(p.name for p in Path(raw).iterdir() if p.is_dir()) if Path(raw).is_dir() else []
        raise located(folder, "folder not found" + (f" (found {', '.join(found)})" if found else ""),
                      fix="--input must hold one folder per dimension, e.g. RAW/arousal/<id>.csv.")
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise located(folder, "no .csv files", fix="Put one CSV per recording here: timestamp "
                      "(seconds), then one column per rater.")
    tables = []
    for i, f in enumerate(files):
        tables.append(read_raw(f, trim=trim))
        if progress is not None:
            progress(i + 1, len(files))
    return tables
