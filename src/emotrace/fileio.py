"""Atomic file writes (write to a temporary file beside the target, then rename), the guard that
keeps outputs off inputs, and the lock that keeps one writer per folder.

A reader never sees a half-written file, even when the process is killed or the disk fills up.
"""

from __future__ import annotations

import errno
import functools
import inspect
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from emotrace.errors import EmotraceError


@functools.cache
def _umask() -> int:
    """The process umask, read once (reading it means setting it, which is not thread-safe)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path; on success rename it to ``path``, on failure delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise disk_full(path) from None
        raise
    except RuntimeError as e:  # torch.save reports a failed write as "unexpected pos ..."
        if _write_failed(e) and _space_left(path.parent) < 16 * 2**20:
            raise disk_full(path) from None
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def disk_full(path: Path | str) -> EmotraceError:
    """The error for a write that failed because the file system is full."""
    return EmotraceError(f"{path}: no space left on the device (disk full), so it was not "
                         f"written; the previous version of the file, if any, is unchanged. Free "
                         f"some space, then run the same command again: `emotrace train ... "
                         f"--resume` continues an interrupted training from its last epoch.")


def _write_failed(e: RuntimeError) -> bool:
    text = str(e)
    return "unexpected pos" in text or "PytorchStreamWriter" in text


def _space_left(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def write_atomic(path: Path | str, writer: Callable[[IO[Any]], None], *, binary: bool = False) -> None:
    """Call ``writer`` with an open temporary file, then move it to ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())


def write_text(path: Path | str, text: str) -> None:
    write_atomic(path, lambda f: f.write(text))


def write_json(path: Path | str, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


# --------------------------------------------------------------------------------------------
# reading what emotrace wrote


def read_json(path: Path | str) -> Any:
    """``json.loads`` of a file emotrace wrote (``metrics.json``, ...), or a clear error when it
    is truncated, not JSON or not UTF-8."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EmotraceError(f"{path}: not valid JSON ({str(e).splitlines()[0][:120]}); the file is "
                            f"truncated or was edited. Restore it, or rerun the command that "
                            f"wrote it.") from None


# --------------------------------------------------------------------------------------------
# outputs never land on inputs


def _as_paths(value: Any) -> list[Path]:
    if isinstance(value, str | os.PathLike):
        return [Path(value)]
    if isinstance(value, list | tuple):
        return [p for v in value for p in _as_paths(v)]
    if isinstance(getattr(value, "path", None), os.PathLike):  # e.g. a loaded Run
        return [Path(value.path)]
    return []  # None, or an object that is not a path


def check_output(out: Path | str | None, inputs: dict[str, Any], *, option: str = "--out") -> Path:
    """Refuse an output path that is empty, or equal to, inside or a parent of an input.

    ``inputs`` maps how the user named each input (``"--data"``, ``"--run"``) to a path, a list
    of paths or ``None``. Paths are compared after resolving symlinks and ``..``, so
    ``--out CORPUS/label_segments/arousal`` and ``--out CORPUS/..`` are caught alike. Returns
    ``out`` as a :class:`~pathlib.Path`.

    >>> check_output("runs/a", {"--data": "corpus"})
    PosixPath('runs/a')
    """
    if out is None or not str(out).strip():
        raise EmotraceError(f"{option} is empty. Pass the path to write to.")
    out = Path(out)
    o = out.resolve()
    for label, value in inputs.items():
        for given in _as_paths(value):
            i = given.resolve()
            if o == i:
                how = "is"
            elif o.is_relative_to(i):
                how = "is inside"
            elif i.is_relative_to(o):
                how = "contains"
            else:
                continue
            raise EmotraceError(f"{option} {out}: {how} the input {label} {given}, so writing "
                                f"there could overwrite or mix with the input. Choose an output "
                                f"path outside every input (and not a parent of one).")
    return out


def writes(out: str = "out", *, inputs: dict[str, str] | None = None, lock: bool = True):
    """Decorator of an API function that writes to its argument ``out``: :func:`check_output`
    against the arguments named in ``inputs`` (``{"--data": "data"}``), then (``lock``) hold
    :func:`folder_lock` on ``out`` while the function runs."""

    def decorate(fn: Callable) -> Callable:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = sig.bind(*args, **kwargs).arguments
            target = check_output(given.get(out), {label: given.get(name)
                                                   for label, name in (inputs or {}).items()})
            if not lock:
                return fn(*args, **kwargs)
            with folder_lock(target):
                return fn(*args, **kwargs)

        return wrapper

    return decorate


# --------------------------------------------------------------------------------------------
# one writer per folder

#: the lock file in a folder being written (removed when the writer finishes)
LOCK = ".emotrace.lock"
_held: dict[Path, int] = {}  # folders this process holds -> nesting depth


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        text = ""
    return text or "a process that has not written its details yet"


@contextmanager
def folder_lock(folder: Path | str) -> Iterator[Path]:
    """Hold ``folder/.emotrace.lock`` while writing ``folder``: a second process gets a clear
    error naming the folder and the process that holds it.

    The lock is an ``flock`` on that file, which the kernel releases when its process ends, so a
    lock left by a killed process is stale by construction and never blocks the next writer
    (e.g. ``--resume``). Re-entrant within one process. A folder this call created is removed
    again when the writer leaves it empty (e.g. it failed on bad input).
    """
    import fcntl

    folder = Path(folder)
    key = folder.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield folder
        finally:
            _held[key] -= 1
        return
    if folder.exists() and not folder.is_dir():
        raise EmotraceError(f"{folder}: is a file, where a folder is needed. Pass another path, "
                            f"or move the file away.")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EmotraceError(f"{folder}: another emotrace process is writing this folder "
                                f"({_holder(path)}). Wait for it to finish, or write to another "
                                f"folder; if that process is gone, run the command again.") from None
        try:  # the file locked may have been removed by a writer that just finished: retry
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, (f"pid {os.getpid()} on {socket.gethostname()}, since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}: "
                      f"{' '.join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))}"
                      ).encode())
    except OSError:
        pass  # e.g. a full disk: the lock holds without its description
    _held[key] = 1
    try:
        yield folder
    finally:
        del _held[key]
        path.unlink(missing_ok=True)
        os.close(fd)
        if created:
            try:
                folder.rmdir()  # only when empty
            except OSError:
                pass
