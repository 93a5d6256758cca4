"""Nothing in a run folder is left half-written when a run fails or is killed (emotrace.fileio,
and how emotrace.fit uses it).

What "complete" means here:

- every file whose name is not a temporary name parses completely (config.yaml validates as a
  RunConfig, ``*.pt`` load with ``torch.load(weights_only=True)``, JSON parses, prediction CSVs
  read as numbers);
- atomic writes go through ``.<name>.<random>.tmp`` beside the target and a rename. A process
  killed during a write may leave such a *hidden* temporary file behind (nothing can delete it);
  any other ``*.tmp`` name is a failure, and a later ``--resume`` removes the stale ones;
- a run that did not finish has no ``checkpoint.pt`` and no ``metrics.json`` unless it also
  still has ``train_state.pt``, so it is never mistaken for a finished run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest
import torch
from helpers import TINY_CONFIG, make_corpus, run_cli

import emotrace
import emotrace.api
from emotrace.config import RunConfig
from emotrace.errors import EmotraceError
from emotrace.fileio import LOCK, write_atomic, write_json, write_text
from emotrace.run import load_run
from emotrace.train.loop import seed_state_path

TEMP = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")  # .<name>.<random>.tmp


def check_complete(run: Path) -> list[Path]:
    """Assert that every file under ``run`` is complete; return the leftover temporary files."""
    leftovers = []
    for path in sorted(p for p in run.rglob("*") if p.is_file()):
        if TEMP.match(path.name):
            leftovers.append(path)
            continue
        if path.name == LOCK:  # a killed writer's lock: stale, since the kernel released it
            continue
        assert not path.name.endswith(".tmp"), f"a temporary file that is not hidden: {path}"
        if path.name == "config.yaml":
            RunConfig.load(path)
        elif path.suffix == ".pt":
            obj = torch.load(path, weights_only=True)
            assert isinstance(obj, dict) and obj.get("format", "").startswith("emotrace-")
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".csv":
            table = pacsv.read_csv(path)
            assert table.column_names[0] == "timestamp" and table.num_rows > 0
        else:
            raise AssertionError(f"unexpected file in a run folder: {path}")
    return leftovers


# ---------------------------------------------------------------------------------------------
# fileio


def test_write_atomic_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.json"
    write_json(target, {"v": 1})

    def half(f):
        f.write('{"v": ')
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_atomic(target, half)
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # temp file removed


def test_write_atomic_creates_folders_and_honours_umask(tmp_path):
    target = tmp_path / "x" / "y" / "z.txt"
    old = os.umask(0o027)
    try:
        import emotrace.fileio as fileio

        fileio._umask.cache_clear()
        write_text(target, "hello")
    finally:
        os.umask(old)
        fileio._umask.cache_clear()
    assert target.read_text() == "hello"
    # as open() would create it: 0666 & ~umask, not mkstemp's 0600
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


# ---------------------------------------------------------------------------------------------
# failures inside a training run


def test_error_during_training_leaves_no_finished_files(corpus, tmp_path):
    out = tmp_path / "run"
    config = TINY_CONFIG.model_copy(deep=True)
    config.train.epochs = 3

    def fail(e):
        if e.epoch == 2:
            raise EmotraceError("stop here")

    with pytest.raises(EmotraceError, match="stop here"):
        emotrace.fit(corpus, out=out, config=config, on_event=fail)
    assert not (out / "checkpoint.pt").exists()
    assert not (out / "metrics.json").exists()
    assert not (out / "predictions").exists()
    assert check_complete(out) == []
    state = torch.load(seed_state_path(out / "train_state.pt", config.train.seed), weights_only=True)
    assert state["epoch"] == 1  # the last epoch that completed
    with pytest.raises(EmotraceError, match="interrupted.*--resume"):
        load_run(out)


def test_error_while_writing_predictions_leaves_no_checkpoint(corpus, tmp_path, monkeypatch):
    """Predictions are written before checkpoint.pt, so a failure there cannot leave a run that
    looks finished but lacks predictions and metrics."""
    out = tmp_path / "run"
    from emotrace.kinds import regression

    real = regression.write_recordings
    calls = []

    def flaky(folder, *a, **kw):
        calls.append(folder)
        if len(calls) == 2:
            raise EmotraceError(f"{folder}: cannot write")
        real(folder, *a, **kw)

    monkeypatch.setattr(regression, "write_recordings", flaky)
    with pytest.raises(EmotraceError, match="cannot write"):
        emotrace.fit(corpus, out=out, config=TINY_CONFIG)
    assert not (out / "checkpoint.pt").exists() and not (out / "metrics.json").exists()
    check_complete(out)
    monkeypatch.setattr(regression, "write_recordings", real)
    emotrace.fit(corpus, out=out, config=TINY_CONFIG, resume=True)
    assert load_run(out).metrics["best_seed"] == 0


def test_killed_between_checkpoint_and_metrics_can_resume(corpus, tmp_path, monkeypatch):
    """A run killed after checkpoint.pt but before metrics.json / removing train_state.pt counts
    as interrupted: load_run refuses it and --resume finishes it."""
    out = tmp_path / "run"
    from emotrace.kinds import regression

    real = regression.write_json

    def killed(path, obj):
        if Path(path).name == "metrics.json":
            raise KeyboardInterrupt
        real(path, obj)

    monkeypatch.setattr(regression, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        emotrace.fit(corpus, out=out, config=TINY_CONFIG)
    assert (out / "checkpoint.pt").exists() and (out / "train_state.pt").exists()
    with pytest.raises(EmotraceError, match="interrupted.*--resume"):
        load_run(out)
    with pytest.raises(EmotraceError, match="--resume"):
        emotrace.fit(corpus, out=out, config=TINY_CONFIG)
    monkeypatch.setattr(regression, "write_json", real)
    metrics = emotrace.fit(corpus, out=out, config=TINY_CONFIG, resume=True)
    assert not (out / "train_state.pt").exists()
    assert load_run(out).metrics == json.loads(json.dumps(metrics))


def test_ctrl_c_in_the_cli_exits_130_without_traceback(capsys, corpus, tmp_path, monkeypatch):
    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    from emotrace.kinds import regression

    monkeypatch.setattr(regression, "train_seeds", interrupted)
    code, _, err = run_cli(capsys, "train", "--data", corpus, "--features", "audio", "--target",
                           "arousal", "--out", tmp_path / "run", "--quiet")
    assert code == 130
    assert "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.yaml"]


def test_ctrl_c_mid_training_says_where_and_how_to_resume(capsys, corpus, tmp_path, monkeypatch):
    """Ctrl-C prints one line with the run's progress and the exact command that continues it;
    that command finishes the run."""
    import shlex

    import emotrace.cli.core as core

    real = core.epoch_progress

    def stopping(p, **kw):
        def on_event(e):
            if getattr(e, "train_loss", None) is not None and e.epoch == 2:
                raise KeyboardInterrupt

        return on_event

    monkeypatch.setattr(core, "epoch_progress", stopping)
    args = ["train", "--data", str(corpus), "--features", "audio", "--target", "arousal",
            "--out", str(tmp_path / "run"), "--epochs", "3", "--seeds", "1", "--hidden", "8",
            "--quiet"]
    code, _, err = run_cli(capsys, *args)
    assert code == 130 and "Traceback" not in err
    lines = [x for x in err.splitlines() if x.strip()]
    # the event of epoch 2 comes before its state is saved: epoch 1 is what the folder keeps
    assert len(lines) == 1 and "seed 0 at epoch 1" in lines[0], err
    command = lines[0].split("Continue with: ")[1]
    assert shlex.split(command) == ["emotrace", *args, "--resume"]
    monkeypatch.setattr(core, "epoch_progress", real)
    code, _, err = run_cli(capsys, *shlex.split(command)[1:])
    assert code == 0, err
    assert load_run(tmp_path / "run").metrics["epochs"] == 3


# ---------------------------------------------------------------------------------------------
# SIGKILL of a real `python -m emotrace train`


KILL_ARGS = ["--features", "audio", "--target", "arousal", "--epochs", "12", "--patience", "100",
             "--seeds", "1", "--hidden", "32", "--layers", "1", "--quiet"]


def test_sigkill_leaves_complete_files_and_resume_finishes(capsys, tmp_path):
    root = make_corpus(tmp_path / "corpus", steps=(300, 400))
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "emotrace", "train", "--data", str(root),
                             "--out", str(run), *KILL_ARGS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while not seed_state_path(run / "train_state.pt", 0).exists():  # an epoch is done
            assert proc.poll() is None, f"train ended early: {proc.communicate()[1].decode()}"
            assert time.monotonic() < deadline, "no train_state.pt after 120 s"
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "train finished before it could be killed"

    leftovers = check_complete(run)
    assert all(p.name.startswith(".train_state.") for p in leftovers), leftovers
    assert not (run / "checkpoint.pt").exists() and not (run / "metrics.json").exists()
    state = torch.load(seed_state_path(run / "train_state.pt", 0), weights_only=True)
    assert 1 <= state["epoch"] < 12
    with pytest.raises(EmotraceError, match="interrupted.*--resume"):
        load_run(run)

    code, _, err = run_cli(capsys, "train", "--data", root, "--out", run, *KILL_ARGS, "--resume")
    assert code == 0, err
    assert check_complete(run) == []  # the stale temporary file is gone too
    assert not (run / "train_state.pt").exists()
    finished = load_run(run)
    assert finished.metrics["epochs"] == 12
    assert [h["epoch"] for h in finished.metrics["seeds"][0]["history"]] == list(range(1, 13))
    assert np.isfinite(finished.metrics["devel"]["ccc"])
