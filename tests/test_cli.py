"""The command line end to end on a small synthetic corpus (emotrace.cli): prepare, check,
train, evaluate, predict, --config, --help."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.csv as pacsv
import pytest
import typer
import yaml
from helpers import TINY, run_cli

from emotrace.cli import app, expand_multi
from emotrace.data.muse import read_partition


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    """data prepare synthetic → train (tiny) once for the module: (corpus, run, stderr of train)."""
    base = tmp_path_factory.mktemp("cli")
    corpus, run = base / "corpus", base / "run"
    from emotrace.cli import main

    for args in (["data", "prepare", "synthetic", "--out", str(corpus), "--quiet"],
                 ["train", "--data", str(corpus), "--features", "audio", "video", "--target",
                  "arousal", "--out", str(run), *TINY]):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 0, args
    return corpus, run


def test_prepare_synthetic_writes_the_muse_layout(flow):
    corpus, _ = flow
    entries = read_partition(corpus)
    parts = {e.partition for e in entries}
    assert parts == {"train", "devel", "test"}
    for e in entries:
        for sub in ("feature_segments/audio", "feature_segments/video", "feature_segments/physio",
                    "label_segments/arousal", "label_segments/valence"):
            assert (corpus / sub / f"{e.id}.csv").exists()
    # subjects are disjoint across partitions
    by_part = {p: {e.subject for e in entries if e.partition == p} for p in parts}
    assert not (by_part["train"] & by_part["devel"]) and not (by_part["train"] & by_part["test"])


def test_data_check_prints_a_summary(capsys, flow):
    corpus, _ = flow
    code, out, err = run_cli(capsys, "data", "check", corpus, "--quiet")
    assert code == 0, err
    n_train = sum(e.partition == "train" for e in read_partition(corpus))
    assert "train" in out and str(n_train) in out
    for name in ("audio", "video", "physio", "arousal", "valence"):
        assert name in out
    assert out.rstrip().endswith("ok")
    assert "zero-filled" in err  # physio has rows at half the label rate: reported


def test_train_writes_the_run_folder(flow):
    _, run = flow
    assert {p.name for p in run.iterdir()} == {"config.yaml", "checkpoint.pt", "metrics.json",
                                               "predictions"}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["target"] == "arousal" and metrics["features"] == ["audio", "video"]
    assert set(metrics["devel"]) == {"ccc", "ccc_per_recording", "pcc", "rmse"}
    assert [s["seed"] for s in metrics["seeds"]] == [metrics["best_seed"]] == [0]
    assert metrics["epochs"] == 1 and metrics["train_seconds"] >= 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["hidden"] == 8 and config["data"]["features"] == ["audio", "video"]


def test_evaluate_prints_one_json_object_and_writes_it(capsys, flow, tmp_path):
    corpus, run = flow
    code, out, err = run_cli(capsys, "evaluate", "--run", run, "--data", corpus, "--partition",
                             "devel", "--quiet")
    assert code == 0, err
    result = json.loads(out)  # fails on anything but exactly one JSON document
    assert isinstance(result, dict)
    assert len(out.strip().splitlines()) == 1
    assert result["partition"] == "devel" and result["target"] == "arousal"
    assert set(result) >= {"ccc", "ccc_per_recording", "pcc", "rmse", "recordings"}
    assert json.loads((run / "eval_devel.json").read_text()) == result
    # the devel score of evaluate is the one training reported for the kept seed
    metrics = json.loads((run / "metrics.json").read_text())
    assert result["ccc"] == pytest.approx(metrics["devel"]["ccc"], abs=1e-6)


def test_evaluate_json_flag_prints_the_same_object(capsys, flow):
    corpus, run = flow
    code, out, err = run_cli(capsys, "evaluate", "--run", run, "--data", corpus, "--json",
                             "--quiet")
    assert code == 0, err
    assert json.loads(out) == json.loads((run / "eval_devel.json").read_text())


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def in_terminal(*args: str | Path) -> tuple[int, str, str]:
    """``python -m emotrace ARGS`` with stdout on a pseudo-terminal: (exit code, stdout, stderr)."""
    master, slave = pty.openpty()
    with tempfile.TemporaryFile() as errf:
        p = subprocess.Popen([sys.executable, "-m", "emotrace", *map(str, args)], stdout=slave,
                             stderr=errf, env={**os.environ, "COLUMNS": "100"})
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        p.wait(timeout=120)
        os.close(master)
        errf.seek(0)
        err = errf.read().decode()
    return p.returncode, _strip_ansi(b"".join(chunks).decode()), err


def test_evaluate_prints_a_table_on_a_terminal(flow):
    corpus, run = flow
    code, out, err = in_terminal("evaluate", "--run", run, "--data", corpus, "--quiet")
    assert code == 0, err
    result = json.loads((run / "eval_devel.json").read_text())
    assert "{" not in out
    for name in ("ccc", "ccc_per_recording", "pcc", "rmse"):
        assert name in out
        assert f"{result[name]:.4f}" in out  # 4 decimals, not 16 digits
        assert repr(result[name]) not in out
    code, out, err = in_terminal("evaluate", "--run", run, "--data", corpus, "--quiet", "--json")
    assert code == 0, err
    assert json.loads(out) == result


def test_train_prints_a_table_on_a_terminal(flow, tmp_path):
    corpus, _ = flow
    run = tmp_path / "run"
    code, out, err = in_terminal("train", "--data", corpus, "--features", "audio", "--target",
                                 "arousal", "--out", run, *TINY)
    assert code == 0, err
    devel = json.loads((run / "metrics.json").read_text())["devel"]
    assert "{" not in out and "{" not in err
    row = next(line for line in out.splitlines() if "arousal" in line)
    assert f"{devel['ccc']:.4f}" in row and f"{devel['rmse']:.4f}" in row
    assert "best seed 0" in out


def test_devel_of_names_a_single_target():
    from emotrace.cli.common import devel_of

    assert devel_of({"target": "arousal", "devel": {"ccc": 0.5}}) == {"target": "arousal",
                                                                      "ccc": 0.5}
    several = {"arousal": {"ccc": 0.5}, "valence": {"ccc": 0.25}}
    assert devel_of({"target": ["arousal", "valence"], "devel": several}) == several


def test_train_json_flag(capsys, flow, tmp_path):
    corpus, _ = flow
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "--data", corpus, "--features", "audio", "--target",
                             "arousal", "--out", run, "--json", *TINY)
    assert code == 0, err
    devel = json.loads((run / "metrics.json").read_text())["devel"]
    assert json.loads(out) == devel
    # the line scripts read from stderr, unchanged, on one line
    assert f"devel: {json.dumps(devel)}  (best seed 0," in err


def test_metrics_table_of_several_targets():
    from rich.console import Console

    from emotrace.cli.common import metrics_table

    result = {"targets": {"arousal": {"ccc": 0.123456, "rmse": 1.0},
                          "valence": {"ccc": -0.5, "rmse": 2.0, "per_class": {"a": 1}}},
              "partition": "devel", "recordings": 3}
    console = Console(width=80, record=True)
    console.print(metrics_table(result, title="t"))
    text = console.export_text()
    assert "0.1235" in text and "-0.5000" in text and "2.0000" in text
    assert "per_class" not in text  # nested details stay in the JSON
    assert text.index("arousal") < text.index("valence")


class _Event:
    seed, seed_index, n_seeds, epoch, max_epochs, train_loss = 0, 0, 1, 4, 10, 0.25

    def __init__(self, **kw):
        self.__dict__.update(kw)


@pytest.mark.parametrize("event", [_Event(devel_score=float("nan"), best_score=float("nan")),
                                   _Event(devel_ccc=float("nan"), best_ccc=float("nan"))],
                         ids=["devel_score", "devel_ccc"])
def test_progress_without_devel_shows_the_loss_and_epoch(event):
    """train --final has no devel data: the bar says so instead of 'devel ccc nan'."""
    from emotrace.cli.common import epoch_info

    text = epoch_info(event)
    assert "nan" not in text and "devel ccc" not in text
    assert "epoch 4" in text and "loss 0.250" in text


@pytest.mark.parametrize("event", [_Event(devel_score=0.5, best_score=0.625),
                                   _Event(devel_ccc=0.5, best_ccc=0.625)],
                         ids=["devel_score", "devel_ccc"])
def test_progress_with_devel_shows_the_score(event):
    from emotrace.cli.common import epoch_info

    assert epoch_info(event, "f1") == "loss 0.250 devel f1 0.500 best 0.625"


@pytest.mark.parametrize("partition", ["devel", "test", "train"])
def test_predict_writes_every_recording(capsys, flow, tmp_path, partition):
    corpus, run = flow
    out = tmp_path / "pred"
    code, _, err = run_cli(capsys, "predict", "--run", run, "--data", corpus, "--partition",
                           partition, "--out", out, "--quiet")
    assert code == 0, err
    ids = {e.id for e in read_partition(corpus) if e.partition == partition}
    assert {p.stem for p in out.glob("*.csv")} == ids
    for rid in ids:
        table = pacsv.read_csv(out / f"{rid}.csv")
        assert table.column_names == ["timestamp", "value"]
        label = pacsv.read_csv(corpus / "label_segments/arousal" / f"{rid}.csv")
        assert table.column("timestamp").to_pylist() == label.column("timestamp").to_pylist()
    # the same files as training wrote for that partition
    for rid in ids:
        assert (out / f"{rid}.csv").read_text() == \
            (run / "predictions" / partition / f"{rid}.csv").read_text()


def test_config_yaml_is_equivalent_to_flags(capsys, flow, tmp_path):
    corpus, _ = flow
    flags = ["--model", "gcnn-rnn", "--cell", "lstm", "--unidirectional", "--kernel", "5",
             "--win", "40", "--hop", "20", "--loss", "mse", "--lr", "0.01", "--seed", "3"]
    by_flags, by_config, mixed = tmp_path / "flags", tmp_path / "config", tmp_path / "mixed"
    code, _, err = run_cli(capsys, "train", "--data", corpus, "--features", "audio", "--target",
                           "valence", "--out", by_flags, *flags, *TINY)
    assert code == 0, err
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"features": ["audio"], "targets": ["valence"], "win": 40, "hop": 20},
        "model": {"name": "gcnn-rnn", "cell": "lstm", "bidirectional": False, "kernel": 5,
                  "hidden": 8, "layers": 1},
        "train": {"loss": "mse", "lr": 0.01, "seed": 3, "epochs": 1, "seeds": 1},
    }))
    code, _, err = run_cli(capsys, "train", "--data", corpus, "--config", config, "--out",
                           by_config, "--quiet")
    assert code == 0, err
    assert (by_config / "config.yaml").read_text() == (by_flags / "config.yaml").read_text()
    # flags override the file
    code, _, err = run_cli(capsys, "train", "--data", corpus, "--config", config, "--out", mixed,
                           "--hidden", "6", "--quiet")
    assert code == 0, err
    assert yaml.safe_load((mixed / "config.yaml").read_text())["model"]["hidden"] == 6
    # and the two equivalent runs are the same model
    assert json.loads((by_config / "metrics.json").read_text())["devel"] == \
        json.loads((by_flags / "metrics.json").read_text())["devel"]


def test_multi_valued_options():
    assert expand_multi(["train", "--features", "a", "b", "--target", "x", "y", "--out", "r"]) == \
        ["train", "--features", "a", "--features", "b", "--target", "x", "--target", "y",
         "--out", "r"]
    assert expand_multi(["data", "check", "ROOT", "--quiet"]) == ["data", "check", "ROOT", "--quiet"]


def _commands(group, prefix=()) -> list[tuple[str, ...]]:
    out = [prefix]
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):  # a group
            out += _commands(cmd, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


COMMANDS = _commands(typer.main.get_command(app))


def test_the_fixed_command_names_exist():
    assert {("data", "prepare"), ("data", "check"), ("train",), ("evaluate",), ("predict",),
            ("demo",)} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "emotrace")
def test_every_command_has_help(capsys, command):
    code, out, err = run_cli(capsys, *command, "--help")
    assert code == 0, err
    assert "Usage:" in out and "--help" in out


def test_python_m_emotrace_help():
    p = subprocess.run([sys.executable, "-m", "emotrace", "--help"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    for name in ("train", "evaluate", "predict", "data", "demo"):
        assert name in p.stdout


def test_console_script_help():
    script = Path(sys.executable).with_name("emotrace")
    if not script.exists():
        pytest.skip(f"console script not installed at {script}")
    p = subprocess.run([str(script), "train", "--help"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert "--features" in p.stdout and "--resume" in p.stdout
