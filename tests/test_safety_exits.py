"""Issue 12, item 5: every remaining exit 1 is a clear exit 2.

A corrupt or foreign ``train_state.pt`` on ``--resume`` (never suggesting ``weights_only=False``),
a truncated ``metrics.json`` / ``config.yaml``, a checkpoint with the right format tag but missing
keys, a full disk (the path named, and that ``--resume`` continues once space is freed), out of
memory for an absurd ``--hidden``, a ``--seed`` beyond 32 bits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import TINY, TINY_CONFIG, run_cli, snapshot
from test_cli_errors import bad, error_message, train_args

import emotrace
from emotrace.fileio import LOCK
from emotrace.run import load_run


def _interrupted(corpus: Path, out: Path) -> None:
    """A run interrupted after its first epoch (train_state.pt written, no checkpoint)."""
    config = TINY_CONFIG.model_copy(deep=True)
    config.train.epochs = 3

    def stop(e):
        if e.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        emotrace.fit(corpus, out=out, config=config, on_event=stop)
    assert (out / "train_state.pt").exists()


class Foreign:  # a pickled class: torch.load(weights_only=True) refuses it
    pass


@pytest.mark.parametrize("kind", ["garbage", "truncated", "pickled-class", "a-list", "no-keys"])
def test_corrupt_train_state_on_resume(capsys, corpus, tmp_path, kind):
    out = tmp_path / "run"
    _interrupted(corpus, out)
    state = out / "train_state.pt"
    if kind == "garbage":
        state.write_bytes(b"\x00not a torch file" * 10)
    elif kind == "truncated":
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    elif kind == "pickled-class":
        torch.save({"format": "emotrace-train-state-1", "x": Foreign()}, state)
    elif kind == "a-list":
        torch.save([1, 2, 3], state)
    else:
        good = torch.load(state, weights_only=True)
        torch.save({"format": good["format"], "config": good["config"]}, state)
    before = snapshot(tmp_path)
    msg = bad(capsys, *train_args(corpus, out, "--epochs", "3", "--resume"), names=(state,))
    assert "weights_only" not in msg and "weights-only" not in msg.lower()
    assert "--resume" in msg or "--out" in msg  # says what to do
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(("name", "command"), [
    (name, command) for name in ("metrics.json", "config.yaml")
    for command in ("evaluate", "predict", "report", "final", "fuse")
    if (name, command) != ("metrics.json", "predict")])  # predict does not read metrics.json
def test_truncated_run_file(capsys, corpus, tiny_run, tmp_path, name, command):
    path = tiny_run / name
    text = path.read_text()
    path.write_text(text[: len(text) // 2] + ("\n  - [" if name == "config.yaml" else ""))
    args = {
        "evaluate": ["evaluate", "--run", tiny_run, "--data", corpus],
        "predict": ["predict", "--run", tiny_run, "--data", corpus, "--partition", "devel",
                    "--out", tmp_path / "p"],
        "report": ["report", tiny_run, "--out", tmp_path / "r", "--no-tensorboard"],
        "final": ["train", "--data", corpus, "--final", "--from", tiny_run, "--out",
                  tmp_path / "f"],
        "fuse": ["fuse", "--runs", tiny_run, tiny_run, "--data", corpus, "--out", tmp_path / "u",
                 "--method", "mean"],
    }[command]
    bad(capsys, *args, "--quiet", names=(path,))


@pytest.mark.parametrize("key", ["model_args", "model", "normaliser", "feature_dims", "config"])
def test_checkpoint_with_missing_keys(capsys, corpus, tiny_run, key):
    ckpt = torch.load(tiny_run / "checkpoint.pt", weights_only=True)
    del ckpt[key]
    torch.save(ckpt, tiny_run / "checkpoint.pt")
    bad(capsys, "evaluate", "--run", tiny_run, "--data", corpus, "--quiet",
        names=(tiny_run / "checkpoint.pt", key))


def test_checkpoint_with_damaged_model_args(capsys, corpus, tiny_run):
    ckpt = torch.load(tiny_run / "checkpoint.pt", weights_only=True)
    ckpt["model_args"] = {"kind": "nonsense"}
    torch.save(ckpt, tiny_run / "checkpoint.pt")
    bad(capsys, "evaluate", "--run", tiny_run, "--data", corpus, "--quiet",
        names=(tiny_run / "checkpoint.pt", "damaged"))


def test_fused_checkpoint_with_missing_keys(capsys, corpus, tiny_run, tmp_path):
    other = Path(shutil.copytree(tiny_run, tmp_path / "run2"))
    fused = tmp_path / "fused"
    emotrace.fuse([tiny_run, other], data=corpus, out=fused, method="mean")
    ckpt = torch.load(fused / "checkpoint.pt", weights_only=True)
    del ckpt["input_mean"]
    torch.save(ckpt, fused / "checkpoint.pt")
    bad(capsys, "evaluate", "--run", fused, "--data", corpus, "--quiet",
        names=(fused / "checkpoint.pt", "input_mean"))


# ---------------------------------------------------------------------------------------------
# a full disk


def _fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` up to ``leave`` free bytes; returns the filler file."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with open(filler, "wb") as f:
        f.write(b"\0" * max(free - leave, 0))
    return filler


def test_disk_full_during_training_then_resume(capsys, corpus, small_disk):
    """Was: `RuntimeError: unexpected pos ...` or "internal error: OSError 28". Now: exit 2
    naming the file, nothing half-written, and --resume finishes once space is freed."""
    out = small_disk / "run"
    filler = _fill(small_disk, 64 * 1024)  # room for config.yaml, not for train_state.pt
    msg = bad(capsys, *train_args(corpus, out, "--epochs", "2"),
              names=(f"{out / 'train_state'}", "no space left", "--resume"))
    assert "internal error" not in msg and "unexpected pos" not in msg
    for path in out.iterdir():  # no temporary file, no lock, no half-written file
        assert path.name in ("config.yaml", "train_state.pt"), path
        if path.suffix == ".pt":
            torch.load(path, weights_only=True)
    filler.unlink()
    code, _, err = run_cli(capsys, *train_args(corpus, out, "--epochs", "2", "--resume"))
    assert code == 0, err
    assert load_run(out).metrics["epochs"] == 2
    assert not (out / LOCK).exists()


def test_disk_full_writing_predictions(capsys, corpus, tiny_run, small_disk):
    _fill(small_disk, 0)
    out = small_disk / "preds"
    msg = bad(capsys, "predict", "--run", tiny_run, "--data", corpus, "--partition", "devel",
              "--out", out, "--quiet", names=("no space left",))
    assert str(small_disk) in msg
    assert not any(out.rglob("*.csv")) if out.exists() else True


# ---------------------------------------------------------------------------------------------
# out of memory, seeds


def test_out_of_memory_for_an_absurd_hidden(corpus, tmp_path):
    """In a child with a 6 GB address-space limit, so a machine with overcommit is safe too."""
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30));"
            "from emotrace.cli import main; main(sys.argv[1:])")
    p = subprocess.run([sys.executable, "-c", code, *map(str, train_args(
        corpus, tmp_path / "run", "--hidden", "1000000000"))], capture_output=True, text=True,
        timeout=300, env={**os.environ, "COLUMNS": "200"})
    msg = error_message(p.returncode, p.stdout, p.stderr)
    assert "out of memory" in msg and "--hidden" in msg
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.parametrize("option", ["--hidden", "--layers", "--channels", "--kernel"])
def test_size_beyond_torch_integers(capsys, corpus, tmp_path, option):
    """Was: 'Overflow when unpacking long long' as an internal error."""
    bad(capsys, *train_args(corpus, tmp_path / "run", option, "99999999999999999999"),
        names=(f"model.{option[2:]}", "2147483647"))


@pytest.mark.parametrize("command", ["train", "personalise", "fuse", "tune", "classes"])
@pytest.mark.parametrize("seed", ["99999999999999999999", "4294967296", "-1"])
def test_seed_out_of_range(capsys, corpus, tiny_run, tmp_path, command, seed):
    args = {"train": train_args(corpus, tmp_path / "run"),
            "personalise": ["personalise", "--run", tiny_run, "--data", corpus, "--out",
                            tmp_path / "p"],
            "fuse": ["fuse", "--runs", tiny_run, tiny_run, "--data", corpus, "--out",
                     tmp_path / "f"],
            "tune": ["tune", "--data", corpus, "--space", tmp_path / "s.yaml", "--out",
                     tmp_path / "t"],
            "classes": ["classes", "--data", corpus, "--target", "arousal"]}[command]
    before = snapshot(tmp_path)
    bad(capsys, *args, "--seed", seed, "--quiet", names=("--seed", seed))
    assert snapshot(tmp_path) == before


def test_seed_range_in_a_config_file(capsys, corpus, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("data: {features: [audio], targets: [arousal]}\n"
                      "train: {seed: 4294967295, seeds: 3}\n")
    bad(capsys, "train", "--data", corpus, "--config", config, "--out", tmp_path / "run",
        "--quiet", names=(config, "seed"))


def test_largest_seed_trains(capsys, corpus, tmp_path):
    code, _, err = run_cli(capsys, *train_args(corpus, tmp_path / "run"), "--seed", "4294967295")
    assert code == 0, err
    assert "--quiet" in TINY
