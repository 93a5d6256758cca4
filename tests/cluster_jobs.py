"""Jobs for tests/test_cluster.py's Ray cluster (module-level, so that Ray sends them by name; the
cluster's nodes have tests/ on their PYTHONPATH)."""

from __future__ import annotations

import os
import time

from emotrace.errors import EmotraceError


def probe(i: int, seconds: float) -> tuple[int, str, int]:
    """``(i, Ray node id, pid)`` of the worker that ran the job, after ``seconds``."""
    import ray

    time.sleep(seconds)
    return i, ray.get_runtime_context().get_node_id(), os.getpid()


def fail(i: int, kind: str) -> int:
    """``i`` for ``kind`` "ok"; raises an EmotraceError ("user") or a ValueError otherwise."""
    if kind == "user":
        raise EmotraceError(f"step {i}: its input is missing.")
    if kind == "bug":
        raise ValueError(f"step {i}: a bug")
    return i
