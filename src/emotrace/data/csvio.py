"""Fast, validating CSV I/O for the MuSe layout.

Well-formed numeric files are parsed by polars' reader (NumPy's when polars is missing); anything
unusual goes to Arrow's CSV reader, which locates every kind of bad cell. Nothing here touches
rows one by one except the diagnostic path that locates a bad cell after a parse has failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from emotrace.errors import EmotraceError, located
from emotrace.fileio import atomic_path


@dataclass
class Table:
    """A parsed CSV file: named numeric columns as one float matrix plus its time axis."""

    path: Path
    timestamps: np.ndarray  # float64 (T,), milliseconds
    names: list[str]  # names of the value columns
    values: np.ndarray  # float32 (T, D)
    nonfinite: int  # number of NaN / inf cells in ``values``
    first_nonfinite: tuple[int, str] | None  # (line, column) of the first one


def _header(path: Path) -> list[str]:
    if not path.exists():
        raise located(path, "file not found", fix="Check the path, or remove the recording from "
                      "metadata/partition.csv.")
    if path.stat().st_size == 0:
        raise located(path, "the file is empty", fix="Write a header line and at least one row.")
    with open(path, "rb") as f:
        raw = f.readline()
    try:
        first = raw.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise located(path, "the header is not UTF-8 text", line=1,
                      fix="Save the file as UTF-8 CSV text.") from None
    return [c.strip().strip('"').strip() for c in first.split(",")]


def ragged_line(path: Path) -> tuple[int, int, int] | None:
    """The first line whose number of cells differs from the header's (diagnostic path only).

    Returns ``(line, cells, header_cells)``, or ``None`` when every line has the header's count.
    """
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        expected = None
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            n = text.count(",") + 1
            if expected is None:
                expected = n
            elif n != expected:
                return number, n, expected
    return None


def _bad_cell(path: Path, column: pa.ChunkedArray, name: str) -> EmotraceError:
    """Locate the first cell of ``column`` that is not a number (diagnostic path only)."""
    for i, cell in enumerate(column.to_pylist()):
        if cell is None:
            continue
        try:
            float(cell)
        except (TypeError, ValueError):
            return located(path, f"{cell!r} is not a number", line=i + 2, column=name,
                           fix="Every cell after the header must be numeric (NaN allowed).")
    return located(path, "a column could not be read as numbers", column=name)


def _to_float(path: Path, table: pa.Table, name: str, dtype: type) -> np.ndarray:
    column = table.column(name)
    kind = column.type
    if pa.types.is_null(kind):
        return np.full(len(column), np.nan, dtype=dtype)
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        raise _bad_cell(path, column, name)
    return column.to_numpy().astype(dtype, copy=False)


def _read_fast(path: Path, columns: list[int], width: int) -> np.ndarray | None:
    """Parse a well-formed all-numeric file fast: polars' reader (Rust, correctly rounded
    float64, releases the GIL), else NumPy's C reader.

    Returns ``None`` for anything unusual (empty cells, text, ragged rows, no rows), which
    :func:`_read_checked` then parses with full diagnostics. Measured in docs/benchmarks.md
    ("MuSe-CaR scale"), in CPU seconds per MB on 4096-column files: polars is about twice as
    fast as NumPy's reader on full-precision numbers (17-19 digits, as pandas and Python write
    floats) and as fast on short ones (6-10 digits); Arrow's is slower than both. Unlike NumPy's
    it releases the GIL, so files are parsed in threads that map their cache entries at once.
    """
    try:
        import polars as pl
    except ImportError:  # pragma: no cover - polars is a dependency; NumPy is the fallback
        return _read_numpy(path, columns, width)
    try:
        frame = pl.read_csv(path, has_header=False, skip_rows=1, encoding="utf8",
                            schema={f"c{i}": pl.Float64 for i in range(width)})
    except (pl.exceptions.PolarsError, OSError, ValueError):
        return None
    if frame.height == 0 or any(frame.null_count().row(0)):
        return None  # empty cells or short rows: the checked reader names the line
    return frame.select([f"c{i}" for i in columns]).to_numpy(order="c")


def _read_numpy(path: Path, columns: list[int], width: int) -> np.ndarray | None:
    """NumPy's C reader (when polars is not installed)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2,
                              encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError):
        return None
    if data.shape[0] == 0 or data.shape[1] != width:
        return None
    return data[:, columns]


def _read_checked(path: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Arrow's CSV reader: slower on wide files, but it locates every kind of bad cell."""
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=True),
            convert_options=pacsv.ConvertOptions(include_columns=["timestamp", *names]),
        )
    except pa.ArrowInvalid as e:
        ragged = ragged_line(path)
        if ragged is not None:
            line, n, expected = ragged
            raise located(path, f"{n} cells, but the header has {expected} columns", line=line,
                          fix="Every row needs as many comma-separated cells as the header.") from None
        msg = str(e).split("\n")[0]
        raise located(path, f"cannot be parsed as CSV ({msg[:200]})",
                      fix="Every row needs as many comma-separated cells as the header.") from None
    if table.num_rows == 0:
        raise located(path, "the file has a header but no rows", line=2,
                      fix="Add data rows, or remove the recording from metadata/partition.csv.")
    timestamps = _to_float(path, table, "timestamp", np.float64)
    values = np.empty((table.num_rows, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        values[:, j] = _to_float(path, table, name, np.float32)
    return timestamps, values


def read_table(path: Path | str, *, skip: tuple[str, ...] = (), value_columns: list[str] | None = None,
               first_value_column: int = 1) -> Table:
    """Read a MuSe CSV: a ``timestamp`` column, then numeric columns.

    Args:
        path: the CSV file.
        skip: column names to ignore (e.g. ``segment_id``).
        value_columns: read exactly these columns (error if one is missing).
        first_value_column: otherwise, the values start at this column index (features: 2).
    """
    path = Path(path)
    header = _header(path)
    if "timestamp" not in header:
        raise located(path, f"no 'timestamp' column (found {', '.join(header[:5])})", line=1,
                      fix="The first line must name the columns, starting with 'timestamp'.")
    if value_columns is None:
        names = [c for c in header[first_value_column:] if c not in skip and c != "timestamp"]
    else:
        missing = [c for c in value_columns if c not in header]
        if missing:
            raise located(path, f"missing column(s) {', '.join(missing)} (found {', '.join(header)})",
                          line=1, fix=f"Add the column(s) {', '.join(missing)} to the header.")
        names = list(value_columns)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise located(path, f"duplicate column name(s) {', '.join(dup)}", line=1,
                      fix="Give every column a unique name.")
    fast = _read_fast(path, [header.index("timestamp"), *(header.index(n) for n in names)],
                      len(header))
    if fast is not None:
        timestamps = fast[:, 0].copy()
        values = np.ascontiguousarray(fast[:, 1:], dtype=np.float32)
    else:
        timestamps, values = _read_checked(path, names)
    if not np.isfinite(timestamps).all():
        row = int(np.flatnonzero(~np.isfinite(timestamps))[0])
        raise located(path, "missing or non-finite timestamp", line=row + 2, column="timestamp",
                      fix="Every row needs a timestamp in milliseconds.")
    bad = ~np.isfinite(values)
    nonfinite = int(bad.sum())
    first = None
    if nonfinite:
        row, col = np.argwhere(bad)[0]
        first = (int(row) + 2, names[int(col)])
    return Table(path, timestamps, names, values, nonfinite, first)


def check_timeline(table: Table) -> None:
    """Timestamps must be strictly increasing: no duplicates, no reordering."""
    d = np.diff(table.timestamps)
    if (d <= 0).any():
        i = int(np.flatnonzero(d <= 0)[0])
        what = "duplicate" if d[i] == 0 else "unsorted"
        raise located(table.path, f"{what} timestamp {table.timestamps[i + 1]:g} after "
                      f"{table.timestamps[i]:g}", line=i + 3, column="timestamp",
                      fix="Sort the rows by time and remove repeated timestamps.")


def write_table(path: Path | str, columns: dict[str, np.ndarray]) -> None:
    """Write columns (1-D arrays of equal length) as a CSV file, atomically."""
    table = pa.table({k: pa.array(np.asarray(v)) for k, v in columns.items()})
    with atomic_path(path) as tmp:
        pacsv.write_csv(table, tmp, write_options=pacsv.WriteOptions(quoting_style="none",
                                                                     quoting_header="none"))


def write_features(path: Path | str, timestamps: np.ndarray, values: np.ndarray, *,
                   names: list[str] | None = None, segment_id: np.ndarray | int = 0) -> None:
    """Write a MuSe feature file: ``timestamp, segment_id, f1, f2, ...``."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == 1:
        values = values[:, None]
    names = names or [f"f{i}" for i in range(values.shape[1])]
    seg = np.broadcast_to(np.asarray(segment_id, dtype=np.int64), (len(timestamps),))
    cols = {"timestamp": np.asarray(timestamps, dtype=np.int64), "segment_id": seg}
    cols.update({n: values[:, i] for i, n in enumerate(names)})
    write_table(path, cols)


def write_labels(path: Path | str, timestamps: np.ndarray, values: np.ndarray, *,
                 segment_id: np.ndarray | int | None = None) -> None:
    """Write a MuSe label file: ``timestamp, value[, segment_id]``."""
    cols = {"timestamp": np.asarray(timestamps, dtype=np.int64),
            "value": np.asarray(values, dtype=np.float32)}
    if segment_id is not None:
        cols["segment_id"] = np.broadcast_to(np.asarray(segment_id, dtype=np.int64),
                                             (len(timestamps),))
    write_table(path, cols)
