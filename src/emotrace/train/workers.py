"""Independent jobs (seeds, folds, fine-tuning seeds) in parallel worker processes.

:func:`run_jobs` calls a module-level function once per argument tuple, in ``jobs`` worker
processes (or in this process when ``jobs`` is 1 or there is one job), and yields
``(index, result)`` as jobs finish. Every job runs with **one intra-op torch thread**, in the
workers and in-process alike: a recurrent model's float sums depend on how many threads split
them, so one thread per job is what makes a result the same whatever ``jobs`` is. Small
recurrent models gain little from a second thread and lose much when the cores are busy
(an OpenMP pool spins and fights other processes), so processes are the better unit of work.

Progress events that a job emits reach the caller's ``on_event`` in the calling thread, so a
callback may raise (``KeyboardInterrupt`` for Ctrl-C): the workers are then terminated. Workers
are started once (``spawn``) and kept for later calls in the same process. On Linux a worker is
killed when the process that started it dies (even by ``kill -9``), so no orphan goes on
training.
"""

from __future__ import annotations

import atexit
import ctypes
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

_POOL: dict[str, Any] = {}  # {"pool", "jobs", "queue"} of the live worker pool
_EMIT: Any = None  # a worker's event queue


def default_jobs() -> int:
    """The number of CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this process when its parent dies (``PR_SET_PDEATHSIG``)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _init_worker(events: Any, parent: int) -> None:
    global _EMIT
    _die_with_parent(parent)
    _EMIT = events
    torch.set_num_threads(1)


def _emit(event: Any) -> None:
    _EMIT.put(event)


def _call(fn: Callable, args: tuple, index: int) -> tuple[int, Any]:
    return index, fn(*args, emit=_emit)


def _pool(jobs: int):
    if _POOL.get("jobs") != jobs:
        shutdown()
        ctx = mp.get_context("spawn")
        events = ctx.Queue()
        _POOL.update(pool=ctx.Pool(jobs, initializer=_init_worker,
                                       initargs=(events, os.getpid())),
                     jobs=jobs, queue=events)
    return _POOL["pool"], _POOL["queue"]


def shutdown() -> None:
    """Terminate the worker processes (they are started again when needed)."""
    pool = _POOL.pop("pool", None)
    _POOL.clear()
    if pool is not None:
        pool.terminate()
        pool.join()


atexit.register(shutdown)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one intra-op torch thread (the threads of every training job)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_jobs(fn: Callable, args: list[tuple], *, jobs: int,
             on_event: Callable[[Any], None] | None = None) -> Iterator[tuple[int, Any]]:
    """``fn(*a, emit=...)`` for each ``a`` in ``args``; yields ``(index, result)`` as they finish.

    ``fn`` must be a module-level function and its arguments picklable when ``jobs > 1``;
    ``emit(event)`` sends a progress event to ``on_event``. An exception in a job is raised here.
    """
    emit = on_event or (lambda event: None)
    if jobs <= 1 or len(args) <= 1:
        with one_thread():
            for i, a in enumerate(args):
                yield i, fn(*a, emit=emit)
        return
    pool, events = _pool(min(jobs, default_jobs() * 4))
    pending = [pool.apply_async(_call, (fn, a, i)) for i, a in enumerate(args)]
    try:
        while pending:
            try:
                emit(events.get(timeout=0.05))
                continue
            except queue_mod.Empty:
                pass
            for r in [r for r in pending if r.ready()]:
                pending.remove(r)
                while True:  # the job's last events come before its result
                    try:
                        emit(events.get_nowait())
                    except queue_mod.Empty:
                        break
                yield r.get()
    except BaseException:
        shutdown()  # a failed job or Ctrl-C: stop the others, whatever they were doing
        raise
