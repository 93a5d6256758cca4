"""Shared fixtures: a tiny synthetic corpus and a tiny trained run, built once per session.

Tests never change the session copies: the function-scoped fixtures hand out fresh copies under
``tmp_path`` (copying keeps file times, so the corpus cache stays valid for the copy until a test
rewrites a file).

Torch runs on one thread in the tests (and in the subprocesses they start): on a busy 2-core
machine, torch's default of one thread per core made a tiny training epoch up to 100x slower.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from helpers import TINY_CONFIG, make_corpus

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def corpus_template(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("template") / "corpus")


@pytest.fixture
def corpus(corpus_template, tmp_path) -> Path:
    """A fresh, writable copy of the tiny corpus."""
    return Path(shutil.copytree(corpus_template, tmp_path / "corpus"))


@pytest.fixture(scope="session")
def run_template(corpus_template, tmp_path_factory) -> Path:
    """A finished tiny run (features audio, target arousal) on the tiny corpus."""
    import emotrace

    out = tmp_path_factory.mktemp("run") / "run"
    emotrace.fit(corpus_template, out=out, config=TINY_CONFIG)
    return out


@pytest.fixture
def tiny_run(run_template, tmp_path) -> Path:
    """A fresh copy of the finished tiny run."""
    return Path(shutil.copytree(run_template, tmp_path / "run"))


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs the test mounts (root only); skipped where it cannot be mounted. For the
    disk-full tests."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
