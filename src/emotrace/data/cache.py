"""Binary cache of parsed CSV files, invalidated when the source changes.

Each source file gets one ``.npz`` under ``ROOT/.emotrace-cache/`` that records the source's
size and modification time (nanoseconds). A stale or unreadable entry is re-parsed and
rewritten; an unwritable corpus folder simply goes uncached.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emotrace.data.csvio import Table
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


def cached_table(root: Path, path: Path, key: str, parse: Callable[[], Table],
                 *, enabled: bool = True) -> Table:
    """Return the parsed table for ``path``, from the cache when it is fresh."""
    if not enabled:
        return parse()
    fp = _fingerprint(path) if path.exists() else None
    entry = _entry(root, path, key)
    if fp is not None and entry.exists():
        try:
            with np.load(entry, allow_pickle=False) as z:
                if np.array_equal(z["fingerprint"], fp):
                    first = None
                    if int(z["first_line"]) >= 0:
                        first = (int(z["first_line"]), str(z["first_column"]))
                    return Table(path, z["timestamps"], [str(n) for n in z["names"]], z["values"],
                                 int(z["nonfinite"]), first)
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            pass  # a corrupt or foreign entry is re-parsed and overwritten
    table = parse()
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(entry) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, fingerprint=fp, timestamps=table.timestamps, values=table.values,
                         names=np.array(table.names, dtype=str), nonfinite=table.nonfinite,
                         first_line=table.first_nonfinite[0] if table.first_nonfinite else -1,
                         first_column=table.first_nonfinite[1] if table.first_nonfinite else "")
    except OSError:
        pass
    return table
