"""Binary cache of parsed CSV files, invalidated when the source changes.

Each source file gets one ``.npz`` under ``ROOT/.emotrace-cache/`` that records the source's
size and modification time (nanoseconds). A stale or unreadable entry is re-parsed and
rewritten; an unwritable corpus folder simply goes uncached.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from emotrace.data.csvio import Table, read_table
from emotrace.errors import EmotraceError
from emotrace.fileio import atomic_path

CACHE_DIR = ".emotrace-cache"
FORMAT = 1


def _fingerprint(path: Path) -> np.ndarray:
    st = path.stat()
    return np.array([FORMAT, st.st_size, st.st_mtime_ns], dtype=np.int64)


def _entry(root: Path, path: Path, key: str) -> Path:
    rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path.resolve())
    digest = hashlib.sha1(f"{rel}|{key}".encode()).hexdigest()[:16]
    return root / CACHE_DIR / f"{path.stem}-{digest}.npz"


def load_cached(root: Path, path: Path, key: str) -> Table | None:
    """The cached table of ``path`` if its entry is fresh, else ``None``."""
    if not path.exists():
        return None
    entry = _entry(root, path, key)
    if not entry.exists():
        return None
    try:
        with np.load(entry, allow_pickle=False) as z:
            if not np.array_equal(z["fingerprint"], _fingerprint(path)):
                return None
            first = None
            if int(z["first_line"]) >= 0:
                first = (int(z["first_line"]), str(z["first_column"]))
            return Table(path, z["timestamps"], [str(n) for n in z["names"]], z["values"],
                         int(z["nonfinite"]), first)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # a corrupt or foreign entry is re-parsed and overwritten


def store(root: Path, path: Path, key: str, table: Table, fingerprint: np.ndarray) -> None:
    """Write the cache entry of ``path``; an unwritable corpus folder is silently skipped.

    ``fingerprint`` must be taken *before* parsing, so a file edited meanwhile is re-parsed.
    """
    try:
        entry = _entry(root, path, key)
        entry.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(entry) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, fingerprint=fingerprint, timestamps=table.timestamps,
                         values=table.values, names=np.array(table.names, dtype=str),
                         nonfinite=table.nonfinite,
                         first_line=table.first_nonfinite[0] if table.first_nonfinite else -1,
                         first_column=table.first_nonfinite[1] if table.first_nonfinite else "")
    except (OSError, EmotraceError):  # e.g. a full disk: the cache is only a speed-up
        pass


def _parse(job: tuple[Path, dict]) -> Table:
    path, kwargs = job
    return read_table(path, **kwargs)


def read_tables(root: Path, jobs: list[tuple[Path, dict]], *, cache: bool = True,
                workers: int | None = None, parallel_bytes: int = 64_000_000,
                progress: Callable[[int, int], None] | None = None) -> list[Table]:
    """Parse many CSV files (``(path, read_table kwargs)``), from the cache where it is fresh.

    Files that must be parsed are spread over ``workers`` processes (default: all cores) when
    they add up to more than ``parallel_bytes``; CSV parsing holds the GIL, so threads would
    not help. Errors are the same :class:`~emotrace.errors.EmotraceError` as a serial parse.
    """
    keys = [repr(sorted(kw.items())) for _, kw in jobs]
    out: list[Table | None] = [load_cached(root, p, k) if cache else None
                               for (p, _), k in zip(jobs, keys, strict=True)]
    todo = [i for i, t in enumerate(out) if t is None]
    fingerprints = {i: _fingerprint(jobs[i][0]) for i in todo} if cache else {}
    size = sum(jobs[i][0].stat().st_size for i in todo)
    n = workers or os.cpu_count() or 1
    pool = (ProcessPoolExecutor(min(n, len(todo)))
            if n > 1 and len(todo) > 1 and size > parallel_bytes else None)
    try:
        parsed = (pool.map(_parse, [jobs[i] for i in todo]) if pool
                  else (_parse(jobs[i]) for i in todo))
        for done, (i, table) in enumerate(zip(todo, parsed, strict=True)):
            out[i] = table
            if cache:
                store(root, jobs[i][0], keys[i], table, fingerprints[i])
            if progress:
                progress(len(jobs) - len(todo) + done + 1, len(jobs))
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    if progress and not todo:
        progress(len(jobs), len(jobs))
    return out  # type: ignore[return-value]
