"""Binary, memory-mapped cache of parsed CSV files, invalidated when the source changes.

Each source file gets two entries under ``ROOT/.emotrace-cache/``:

- ``<stem>-<digest>.npy``: its values, float32 ``(T, D)``, opened with ``mmap_mode="r"`` (as a
  :class:`MappedArray`), so a loaded corpus holds pages of the file, not a copy in RAM;
- ``<stem>-<digest>.meta``: the small rest, read whole: one JSON line (column names, the NaN
  count, the source's size and modification time in nanoseconds, the ``.npy``'s own size, time
  and data offset), then the timestamps as raw float64. (An ``.npz`` took about 10 ms per entry to
  open, mostly parsing its members' headers; this takes well under 1 ms.)

The ``.npy`` is written first, then the ``.meta`` that vouches for it, each atomically (a
temporary file, then a rename), so an interrupted or failed write leaves no entry that is read:
a stale, foreign or half-matching pair is re-parsed and rewritten. A cache folder that cannot be
written leaves the corpus uncached (parsed each time), and a full disk leaves the entry out;
both are said once per folder and process with an :class:`~emotrace.errors.EmotraceWarning`.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from emotrace.data.csvio import Table, read_table
from emotrace.errors import EmotraceError, EmotraceWarning
from emotrace.fileio import atomic_path

CACHE_DIR = ".emotrace-cache"
FORMAT = 2
#: cache folders whose write problem was already reported in this process
_REPORTED: set[Path] = set()


class MappedArray(np.memmap):
    """A read-only memory map of a whole ``.npy`` file.

    It pickles as its path, not as its data, so a worker process given a corpus maps the same
    file instead of receiving a copy. A slice of it is an ordinary view and pickles its data.
    """

    @classmethod
    def open(cls, path: Path | str, *, offset: int | None = None, shape: tuple | None = None
             ) -> np.ndarray:
        """Map ``path`` (a float32 ``.npy`` written by :func:`numpy.save`) read-only; with
        ``offset`` and ``shape`` known, its header is not parsed."""
        dtype, fortran = np.dtype(np.float32), False
        if offset is None or shape is None:
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read(f)
                offset = f.tell()
        if int(np.prod(shape)) == 0:  # an empty file cannot be mapped
            return np.zeros(shape, dtype)
        return cls.__new__(cls, path, dtype=dtype, mode="r", offset=offset, shape=tuple(shape),
                           order="F" if fortran else "C")

    def __reduce__(self):
        if isinstance(self.base, mmap.mmap) and self.filename:  # the whole file
            return (MappedArray.open, (self.filename,))
        return np.asarray(self).copy().__reduce__()

    def __reduce_ex__(self, protocol):  # ndarray's would pickle the data
        return self.__reduce__()


def release(array: np.ndarray) -> None:
    """Drop the pages of ``array``'s file mapping from this process (they stay in the page
    cache): after a batch is cut from a mapped recording, its pages no longer count towards the
    process's resident memory. Does nothing for arrays in RAM."""
    mm = getattr(array, "_mmap", None)
    if mm is not None and hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        try:
            mm.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # a closed map: nothing to drop
            pass


def _fingerprint(path: Path) -> list[int]:
    st = path.stat()
    return [FORMAT, st.st_size, st.st_mtime_ns]


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _entry(root: Path, path: Path, key: str) -> Path:
    """The entry's ``.meta`` (its ``.npy`` is the same path with that suffix)."""
    rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path.resolve())
    digest = hashlib.sha1(f"{rel}|{key}".encode()).hexdigest()[:16]
    return root / CACHE_DIR / f"{path.stem}-{digest}.meta"


def _read_meta(entry: Path) -> tuple[dict, np.ndarray]:
    with open(entry, "rb") as f:
        meta = json.loads(f.readline())
        timestamps = np.frombuffer(f.read(), dtype="<f8")
    if not isinstance(meta, dict) or len(timestamps) != meta["shape"][0]:
        raise ValueError("a truncated entry")
    return meta, timestamps


def load_cached(root: Path, path: Path, key: str) -> Table | None:
    """The cached table of ``path`` if its entry is fresh (values mapped, not read), else
    ``None``."""
    try:
        fingerprint = _fingerprint(path)
        entry = _entry(root, path, key)
        values_path = entry.with_suffix(".npy")
        meta, timestamps = _read_meta(entry)
        if meta["fingerprint"] != fingerprint or meta["values_stat"] != _stat(values_path):
            return None  # a changed source, or a .npy that is not the one this entry vouches for
        values = MappedArray.open(values_path, offset=meta["offset"], shape=meta["shape"])
        first = tuple(meta["first"]) if meta["first"] else None
        return Table(path, timestamps, meta["names"], values, int(meta["nonfinite"]), first)
    except (OSError, KeyError, ValueError, TypeError, IndexError):
        return None  # a missing, corrupt or foreign entry is re-parsed and overwritten


def _problem(folder: Path, entry: Path, e: BaseException) -> str:
    if "no space left" in str(e).lower() or getattr(e, "errno", None) == 28:
        return (f"{entry}: no space left on the device while writing the corpus cache; the "
                f"entry was not written (no half-written file is left), so this corpus is "
                f"loaded uncached (its CSV files are parsed each time and held in memory). Free "
                f"some space in {folder} to cache it.")
    reason = getattr(e, "strerror", None) or str(e)
    return (f"{folder}: the corpus cache cannot be written ({reason}), so this corpus is loaded "
            f"uncached (its CSV files are parsed each time and held in memory). Make the folder "
            f"writable to cache it.")


def store(root: Path, path: Path, key: str, table: Table, fingerprint: list[int]) -> Table | str:
    """Write the cache entry of ``path``; returns the table with its values mapped from the
    entry, or the problem (unwritable folder, full disk) when the entry could not be written.

    ``fingerprint`` must be taken *before* parsing, so a file edited meanwhile is re-parsed.
    """
    entry = _entry(root, path, key)
    values_path = entry.with_suffix(".npy")
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(values_path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(table.values, dtype=np.float32))
        with open(values_path, "rb") as f:
            np.lib.format.read_array_header_1_0(f) if np.lib.format.read_magic(f) == (1, 0) \
                else np.lib.format.read_array_header_2_0(f)
            offset = f.tell()
        meta = {"format": FORMAT, "fingerprint": [int(v) for v in fingerprint],
                "values_stat": _stat(values_path), "offset": offset,
                "shape": list(table.values.shape), "names": list(table.names),
                "nonfinite": int(table.nonfinite),
                "first": list(table.first_nonfinite) if table.first_nonfinite else None}
        timestamps = np.ascontiguousarray(table.timestamps, dtype="<f8")
        with atomic_path(entry) as tmp:
            with open(tmp, "wb") as f:
                f.write(json.dumps(meta).encode() + b"\n")
                f.write(timestamps.tobytes())
    except (OSError, EmotraceError) as e:  # the cache is only a speed-up
        if not entry.exists():  # a .npy without its .meta is never read: remove it
            try:
                values_path.unlink(missing_ok=True)
            except OSError:  # e.g. the cache folder's place is a file
                pass
        return _problem(root / CACHE_DIR, entry, e)
    mapped = load_cached(root, path, key)
    if mapped is None:  # the source changed while it was parsed: keep what was parsed
        return table
    return mapped


def _say_once(folder: Path, message: str) -> None:
    if folder not in _REPORTED:
        _REPORTED.add(folder)
        warnings.warn(message, EmotraceWarning, stacklevel=3)


def read_tables(root: Path, jobs: list[tuple[Path, dict]], *, cache: bool = True,
                workers: int | None = None, parallel_bytes: int = 64_000_000,
                progress: Callable[[int, int], None] | None = None) -> list[Table]:
    """Parse many CSV files (``(path, read_table kwargs)``), from the cache where it is fresh.

    Files that must be parsed are spread over ``workers`` threads (default: all cores) when they
    add up to more than ``parallel_bytes``: the fast reader (polars) releases the GIL. Each
    parsed file is written to the cache at once and then mapped from it, so parsing a corpus
    larger than memory holds at most a few files in RAM. Errors are the same
    :class:`~emotrace.errors.EmotraceError` as a serial parse.
    """
    keys = [repr(sorted(kw.items())) for _, kw in jobs]
    out: list[Table | None] = [load_cached(root, p, k) if cache else None
                               for (p, _), k in zip(jobs, keys, strict=True)]
    todo = [i for i, t in enumerate(out) if t is None]
    size = sum(jobs[i][0].stat().st_size for i in todo)
    problem: list[str] = []  # the first write problem: later files are not tried

    def parse(i: int) -> Table:
        path, kwargs = jobs[i]
        fingerprint = _fingerprint(path) if cache else None
        table = read_table(path, **kwargs)
        if not cache or problem:
            return table
        stored = store(root, path, keys[i], table, fingerprint)
        if isinstance(stored, str):
            problem.append(stored)
            return table
        return stored

    n = workers or os.cpu_count() or 1
    pool = (ThreadPoolExecutor(min(n, len(todo)))
            if n > 1 and len(todo) > 1 and size > parallel_bytes else None)
    try:
        parsed = pool.map(parse, todo) if pool else (parse(i) for i in todo)
        for done, (i, table) in enumerate(zip(todo, parsed, strict=True)):
            out[i] = table
            if progress:
                progress(len(jobs) - len(todo) + done + 1, len(jobs))
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    if problem:
        _say_once(root / CACHE_DIR, problem[0])
    if progress and not todo:
        progress(len(jobs), len(jobs))
    return out  # type: ignore[return-value]
