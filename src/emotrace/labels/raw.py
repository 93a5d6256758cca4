"""Read raw rater traces: ``RAW/<dimension>/<id>.csv`` with ``timestamp`` (seconds, or
milliseconds: detected or stated with ``time_unit``), then one column per rater (the
MuSe-Toolbox input format). The missing-value policy is in docs/usage.md.
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
    time_unit: str = "s"  # the unit of the file's timestamps

    @property
    def rate(self) -> float:
        """Label rate in Hz (1 / median step)."""
        return float(1.0 / np.median(np.diff(self.timestamps)))


TIME_UNITS = ("auto", "s", "ms")
#: a median step of at least this many units is read as milliseconds by ``time_unit="auto"``
#: (10 s between two ratings is no continuous trace; 10 ms is a 100 Hz one)
MS_STEP = 10.0


def _time_unit(path: Path, steps: np.ndarray, time_unit: str) -> str:
    if time_unit not in TIME_UNITS:
        raise located(path, f"--time-unit {time_unit!r} is unknown",
                      fix=f"Use one of {', '.join(TIME_UNITS)}.")
    if time_unit != "auto":
        return time_unit
    return "ms" if len(steps) and np.median(steps) >= MS_STEP else "s"


def _values64(path: Path, names: list[str], values32: np.ndarray) -> np.ndarray:
    """The rater columns in full float64 precision (the validated table holds float32, which
    moves values by up to ~1e-8: enough to change a DTW path, so DBA would no longer reproduce
    other tools exactly). Falls back to the float32 values if the file cannot be re-read."""
    import csv
    import warnings

    with open(path, newline="", encoding="utf-8-sig") as f:
        header = [c.strip().strip('"').strip() for c in next(csv.reader(f))]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float64, ndmin=2,
                                 encoding="utf-8-sig")
        v = data[:, [header.index(n) for n in names]]
    except (ValueError, IndexError):
        return values32.astype(np.float64)
    if v.shape != values32.shape or not np.allclose(v, values32, rtol=1e-6, atol=1e-6,
                                                    equal_nan=True):
        return values32.astype(np.float64)
    return v


def read_raw(path: Path | str, *, trim: bool = False, time_unit: str = "auto") -> RaterTable:
    """Read and validate one raw file (missing values: see docs/usage.md). ``time_unit``:
    ``s``, ``ms``, or ``auto`` = milliseconds when the median step is at least
    :data:`MS_STEP`, else seconds; the table's timestamps are always seconds."""
    path = Path(path)
    table = read_table(path)
    check_timeline(table)
    unit = _time_unit(path, np.diff(table.timestamps), time_unit)
    if unit == "ms":
        table.timestamps = table.timestamps / 1000.0
    names, v = table.names, _values64(path, table.names, table.values)
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
                      f"{np.median(steps):g} s; timestamps read as {unit})", line=i + 3, column="timestamp",
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
    return RaterTable(path, path.stem, table.timestamps, list(names), v, unit)


def read_raw_folder(raw: Path | str, dimension: str, *, trim: bool = False, time_unit: str = "auto",
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
        tables.append(read_raw(f, trim=trim, time_unit=time_unit))
        if progress is not None:
            progress(i + 1, len(files))
    return tables
