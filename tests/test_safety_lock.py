"""Issue 12, item 3: one writer per run folder.

A second process that starts writing a folder another live process is writing gets exit 2 naming
the folder and the other process; a lock left by a killed process is stale by construction (an
``flock`` the kernel released) and does not block ``--resume``. Real processes, one folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import make_corpus, run_cli, snapshot
from test_cli_errors import error_message

from emotrace.config import RunConfig
from emotrace.errors import EmotraceError
from emotrace.fileio import LOCK, folder_lock

SLOW = ["--features", "audio", "--target", "arousal", "--epochs", "100000", "--patience",
        "100000", "--seeds", "1", "--hidden", "32", "--layers", "1", "--quiet"]
SHORT = ["--features", "audio", "--target", "arousal", "--epochs", "8", "--patience", "100",
         "--seeds", "1", "--hidden", "32", "--layers", "1", "--quiet"]


def _env() -> dict:
    return {**os.environ, "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}


def _start_train(root: Path, out: Path, args: list[str]) -> subprocess.Popen:
    """A real ``python -m emotrace train``, returned once it is inside its epochs."""
    proc = subprocess.Popen([sys.executable, "-m", "emotrace", "train", "--data", str(root),
                             "--out", str(out), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env())
    deadline = time.monotonic() + 120
    while not (out / "train_state.pt").exists():
        if proc.poll() is not None:
            raise AssertionError(f"train ended early: {proc.communicate()[1].decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("no train_state.pt after 120 s")
        time.sleep(0.01)
    return proc


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate()


@pytest.fixture
def slow_corpus(tmp_path) -> Path:
    return make_corpus(tmp_path / "corpus", steps=(300, 400))


def test_second_train_into_the_same_folder(slow_corpus, tmp_path):
    """Was: two concurrent trains into one --out left one run's config beside the other's
    checkpoint."""
    out = tmp_path / "run"
    first = _start_train(slow_corpus, out, SLOW)
    try:
        config = (out / "config.yaml").read_text()
        second = subprocess.run([sys.executable, "-m", "emotrace", "train", "--data",
                                 str(slow_corpus), "--out", str(out), *SLOW[:-7], "--hidden",
                                 "16", "--layers", "1", "--quiet"],
                                capture_output=True, text=True, env=_env(), timeout=300)
        msg = error_message(second.returncode, second.stdout, second.stderr)
        assert str(out) in msg and f"pid {first.pid}" in msg, msg
        assert "another emotrace process" in msg
        assert first.poll() is None  # the first run was not disturbed ...
        assert (out / "config.yaml").read_text() == config  # ... nor its folder
        assert RunConfig.load(out / "config.yaml").model.hidden == 32
    finally:
        _kill(first)


def test_second_train_with_resume_is_refused_too(slow_corpus, tmp_path):
    """--resume of a run whose first process is still alive is a second writer as well."""
    out = tmp_path / "run"
    first = _start_train(slow_corpus, out, SLOW)
    try:
        second = subprocess.run([sys.executable, "-m", "emotrace", "train", "--data",
                                 str(slow_corpus), "--out", str(out), *SLOW, "--resume"],
                                capture_output=True, text=True, env=_env(), timeout=300)
        msg = error_message(second.returncode, second.stdout, second.stderr)
        assert str(out) in msg and f"pid {first.pid}" in msg, msg
        assert first.poll() is None
    finally:
        _kill(first)


def test_stale_lock_of_a_killed_train_does_not_block_resume(capsys, slow_corpus, tmp_path):
    out = tmp_path / "run"
    first = _start_train(slow_corpus, out, SHORT)
    _kill(first)
    assert first.returncode == -signal.SIGKILL, "train finished before it could be killed"
    assert (out / LOCK).exists()  # left behind by the killed process ...
    code, _, err = run_cli(capsys, "train", "--data", slow_corpus, "--out", out, *SHORT,
                           "--resume")
    assert code == 0, err  # ... and not in the way
    assert not (out / LOCK).exists() and not (out / "train_state.pt").exists()


HOLD = textwrap.dedent("""
    import sys, time
    from emotrace.fileio import folder_lock
    with folder_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(300)
""")


@pytest.fixture
def held(tmp_path):
    """A folder whose lock another live process holds: ``(folder, process)``."""
    folder = tmp_path / "held"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                            env=_env())
    assert proc.stdout.readline().strip() == b"locked"
    yield folder, proc
    if proc.poll() is None:
        _kill(proc)


def test_folder_lock_names_the_other_process(held):
    folder, proc = held
    with pytest.raises(EmotraceError, match=f"pid {proc.pid}") as e:
        with folder_lock(folder):
            pass
    assert str(folder) in str(e.value)
    _kill(proc)  # killed: the lock file stays, but it is stale
    assert (folder / LOCK).exists()
    with folder_lock(folder):
        assert f"pid {os.getpid()}" in (folder / LOCK).read_text()
    assert not (folder / LOCK).exists()


def test_predict_into_a_folder_being_written(capsys, corpus, tiny_run, held, tmp_path):
    folder, proc = held
    before = snapshot(tmp_path)
    code, out, err = run_cli(capsys, "predict", "--run", tiny_run, "--data", corpus,
                             "--partition", "devel", "--out", folder, "--quiet")
    msg = error_message(code, out, err)
    assert str(folder) in msg and f"pid {proc.pid}" in msg
    assert snapshot(tmp_path) == before


def test_folder_lock_is_reentrant_and_tidy(tmp_path):
    folder = tmp_path / "new"
    with folder_lock(folder):
        with folder_lock(folder):  # e.g. fit_final calling fit
            assert (folder / LOCK).exists()
        assert (folder / LOCK).exists()
    assert not folder.exists()  # created for nothing: removed again
    (tmp_path / "file").write_text("x")
    with pytest.raises(EmotraceError, match="is a file, where a folder is needed"):
        with folder_lock(tmp_path / "file"):
            pass


def test_two_trains_started_together(slow_corpus, tmp_path):
    """Both start at once with different options: one trains, the other is refused, and the
    folder holds one consistent run (load_run compares config.yaml with the checkpoint)."""
    from emotrace.run import load_run

    out = tmp_path / "run"
    procs = [subprocess.Popen([sys.executable, "-m", "emotrace", "train", "--data",
                               str(slow_corpus), "--out", str(out), *SHORT[:-5], "--hidden",
                               hidden, "--layers", "1", "--quiet"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
             for hidden in ("32", "16")]
    results = [(p.wait(timeout=600), p.communicate()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], [(c, e.decode()[-500:]) for c, (_, e) in results]
    winner = 32 if results[0][0] == 0 else 16
    run = load_run(out)
    assert run.config.model.hidden == winner
    assert not (out / LOCK).exists()
