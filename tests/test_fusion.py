"""Early fusion (--project), difficulty channels, out-of-fold train predictions and late fusion
(``emotrace fuse``), through the Python API and the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY, lines, run_cli, set_cell

import emotrace
from emotrace.config import DataConfig, FuseConfig, ModelConfig, RunConfig, TrainConfig
from emotrace.data.csvio import read_table
from emotrace.models.late import WeightedMean, build_fusion
from emotrace.run import load_run
from emotrace.train.folds import subject_folds

FAST_FUSE = ["--epochs", "2", "--seeds", "1", "--hidden", "4", "--quiet"]


def _cfg(features: list[str], targets: list[str], **train) -> RunConfig:
    return RunConfig(data=DataConfig(features=features, targets=targets),
                     model=ModelConfig(hidden=8, layers=1),
                     train=TrainConfig(epochs=1, seeds=1, **train))


@pytest.fixture(scope="module")
def runs(corpus_template, tmp_path_factory) -> dict[str, Path]:
    """Finished tiny runs on the tiny corpus: audio (with out-of-fold train predictions), video,
    and a valence run for the target mismatch."""
    root = tmp_path_factory.mktemp("fusion_runs")
    out = {"audio": root / "audio", "video": root / "video", "valence": root / "valence"}
    emotrace.fit(corpus_template, out=out["audio"], config=_cfg(["audio"], ["arousal"], folds=2))
    emotrace.fit(corpus_template, out=out["video"], config=_cfg(["video"], ["arousal"]))
    emotrace.fit(corpus_template, out=out["valence"], config=_cfg(["audio"], ["valence"]))
    return out


@pytest.fixture
def fresh(runs, tmp_path) -> dict[str, Path]:
    """Writable copies of the runs (for tests that damage them)."""
    return {k: Path(shutil.copytree(v, tmp_path / k)) for k, v in runs.items()}


def _preds(folder: Path) -> dict[str, np.ndarray]:
    return {f.stem: read_table(f, value_columns=["value"]).values[:, 0]
            for f in sorted(folder.glob("*.csv"))}


# --- modules ---------------------------------------------------------------------------------

def test_mean_fusion_is_the_mean():
    x = torch.randn(2, 5, 3 * 2)
    m = build_fusion("mean", n_runs=3, n_targets=2)
    expected = x.view(2, 5, 3, 2).mean(2)
    torch.testing.assert_close(m(x, torch.ones(2, 5, dtype=torch.bool)), expected)
    assert not any(p.requires_grad for p in m.parameters())


def test_weighted_mean_weights_are_convex_and_gated():
    m = WeightedMean(3, 1, n_extra=2)
    with torch.no_grad():
        m.logits.copy_(torch.tensor([[2.0], [0.0], [-1.0]]))
        m.gate.weight.normal_()
    x = torch.randn(1, 4, 3 + 2)
    w = m.weights(x)
    torch.testing.assert_close(w.sum(2), torch.ones(1, 4, 1))
    assert not torch.allclose(w[0, 0], w[0, 1])  # the difficulty channels move the weights
    expected = (w[..., 0] * x[..., :3]).sum(-1, keepdim=True) + m.bias
    torch.testing.assert_close(m(x, torch.ones(1, 4, dtype=torch.bool)), expected)


def test_project_adds_a_linear_layer(corpus, tmp_path):
    cfg = _cfg(["audio", "video"], ["arousal"])
    cfg.model.project = 5
    emotrace.fit(corpus, out=tmp_path / "r", config=cfg)
    r = load_run(tmp_path / "r")
    assert r.model.project.weight.shape == (5, 16 + 8)
    assert r.config.data.fusion == "early"
    assert emotrace.evaluate(tmp_path / "r", corpus, partition="devel")["recordings"] == 1


def test_subject_folds_partition_the_subjects():
    folds = subject_folds([f"P{i}" for i in range(7)] * 2, 3)
    assert sorted(s for f in folds for s in f) == [f"P{i}" for i in range(7)]
    assert [len(f) for f in folds] == [3, 2, 2]


# --- training with --difficulty and --folds ---------------------------------------------------

def test_difficulty_channels_reach_the_model(corpus, tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--data", corpus, "--features", "audio", "video",
                           "--target", "arousal", "--out", tmp_path / "r", "--difficulty", *TINY)
    assert code == 0, err
    r = load_run(tmp_path / "r")
    assert r.difficulty is not None and r.difficulty.names == ["audio", "video"]
    assert r.model.d_in == 16 + 8 + 2  # one difficulty channel per feature set
    code, out, err = run_cli(capsys, "evaluate", "--run", tmp_path / "r", "--data", corpus)
    assert code == 0, err
    assert json.loads(out)["recordings"] == 1
    code, _, err = run_cli(capsys, "predict", "--run", tmp_path / "r", "--data", corpus,
                           "--partition", "test", "--out", tmp_path / "p")
    assert code == 0, err and len(list((tmp_path / "p").glob("*.csv"))) == 1


def test_out_of_fold_train_predictions(runs, corpus_template, tmp_path):
    m = json.loads((runs["audio"] / "metrics.json").read_text())
    assert m["train_predictions"] == "out-of-fold"
    assert m["folds"]["folds"] == 2 and m["folds"]["seconds"] > 0
    assert json.loads((runs["video"] / "metrics.json").read_text())["train_predictions"] == "in-sample"
    oof = _preds(runs["audio"] / "predictions" / "train")
    emotrace.predict(runs["audio"], corpus_template, partition="train", out=tmp_path / "insample")
    insample = _preds(tmp_path / "insample")
    assert oof.keys() == insample.keys() and len(oof) == 3
    assert all(not np.allclose(oof[k], insample[k]) for k in oof)  # other models predicted them


def test_folds_in_parallel_give_the_same_predictions(runs, corpus_template, tmp_path):
    """The fold models train in worker processes by default; in one process they are the same."""
    cfg = _cfg(["audio"], ["arousal"], folds=2)
    cfg.train.jobs = 1
    emotrace.fit(corpus_template, out=tmp_path / "serial", config=cfg)
    serial, parallel = (_preds(p / "predictions" / "train") for p in (tmp_path / "serial", runs["audio"]))
    assert serial.keys() == parallel.keys()
    assert all(np.array_equal(serial[k], parallel[k]) for k in serial)


def test_too_many_folds_is_exit_2(corpus, tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--data", corpus, "--features", "audio", "--target",
                           "arousal", "--out", tmp_path / "r", "--folds", "5", *TINY)
    assert code == 2
    assert "--folds 5" in err and "number of train subjects (3)" in err


# --- late fusion ------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["rnn", "weighted", "mean"])
def test_fuse_writes_a_run_that_evaluates(method, runs, corpus_template, tmp_path, capsys):
    out = tmp_path / "fused"
    extra = ["--difficulty"] if method == "weighted" else []
    code, _, err = run_cli(capsys, "fuse", "--runs", runs["audio"], runs["video"], "--method",
                           method, "--data", corpus_template, "--out", out, *extra, *FAST_FUSE)
    assert code == 0, err
    for name in ("config.yaml", "checkpoint.pt", "metrics.json"):
        assert (out / name).exists()
    assert sorted(p.name for p in (out / "predictions").iterdir()) == ["devel", "test", "train"]
    m = json.loads((out / "metrics.json").read_text())
    assert m["method"] == method and m["target"] == "arousal"
    assert m["train_predictions"] == "mixed"  # audio is out-of-fold, video in-sample
    cfg = FuseConfig.load(out / "config.yaml")
    assert cfg.runs == [str(runs["audio"].resolve()), str(runs["video"].resolve())]
    # evaluate re-predicts through the input runs: the same numbers as at fusion time
    code, stdout, err = run_cli(capsys, "evaluate", "--run", out, "--data", corpus_template)
    assert code == 0, err
    assert json.loads(stdout)["ccc"] == pytest.approx(m["devel"]["ccc"], abs=1e-5)
    code, _, err = run_cli(capsys, "predict", "--run", out, "--data", corpus_template,
                           "--partition", "test", "--out", tmp_path / "p")
    assert code == 0, err
    got, stored = _preds(tmp_path / "p"), _preds(out / "predictions" / "test")
    assert got.keys() == stored.keys()
    for k in got:
        np.testing.assert_allclose(got[k], stored[k], atol=1e-5)
    if method == "mean":
        a = _preds(runs["audio"] / "predictions" / "devel")
        v = _preds(runs["video"] / "predictions" / "devel")
        fused = _preds(out / "predictions" / "devel")
        for k in fused:
            np.testing.assert_allclose(fused[k], (a[k] + v[k]) / 2, atol=1e-5)


def test_fused_runs_fuse_again(runs, corpus_template, tmp_path):
    a = tmp_path / "a"
    emotrace.fuse([runs["audio"], runs["video"]], data=corpus_template, out=a, method="mean")
    b = tmp_path / "b"
    m = emotrace.fuse([a, runs["video"]], data=corpus_template, out=b, method="weighted")
    assert set(m["weights"]["arousal"].values()) != {0.5}
    assert sum(m["weights"]["arousal"].values()) == pytest.approx(1)
    ev = emotrace.evaluate(b, corpus_template, partition="devel")
    assert ev["ccc"] == pytest.approx(m["devel"]["ccc"], abs=1e-5)
    with pytest.raises(emotrace.EmotraceError, match="is a fused run"):
        load_run(b)


def test_multi_target_runs_fuse_per_target(corpus_template, tmp_path):
    r1, r2 = tmp_path / "r1", tmp_path / "r2"
    emotrace.fit(corpus_template, out=r1, config=_cfg(["audio"], ["arousal", "valence"]))
    emotrace.fit(corpus_template, out=r2, config=_cfg(["video"], ["valence", "arousal"]))
    m = emotrace.fuse([r1, r2], data=corpus_template, out=tmp_path / "f", method="mean")
    assert set(m["devel"]) == {"arousal", "valence"}
    f = read_table(next((tmp_path / "f" / "predictions" / "devel").glob("*.csv")),
                   value_columns=["arousal", "valence"]).values
    a = read_table(next((r1 / "predictions" / "devel").glob("*.csv")),
                   value_columns=["arousal", "valence"]).values
    b = read_table(next((r2 / "predictions" / "devel").glob("*.csv")),
                   value_columns=["arousal", "valence"]).values
    np.testing.assert_allclose(f, (a + b) / 2, atol=1e-5)  # columns matched by name, not position


# --- bad input: exit code 2 and a clear message -------------------------------------------------

def _fuse(capsys, runs: list[Path], data: Path, out: Path, *extra: str) -> tuple[int, str]:
    code, _, err = run_cli(capsys, "fuse", "--runs", *runs, "--data", data, "--out", out,
                           *extra, *FAST_FUSE)
    return code, " ".join(err.split())


def test_different_targets(runs, corpus_template, tmp_path, capsys):
    code, err = _fuse(capsys, [runs["audio"], runs["valence"]], corpus_template, tmp_path / "o")
    assert code == 2 and "predicts ['valence']" in err and "same target" in err


def test_different_recordings(fresh, corpus_template, tmp_path, capsys):
    victim = sorted((fresh["video"] / "predictions" / "train").glob("*.csv"))[0]
    victim.unlink()
    code, err = _fuse(capsys, [fresh["audio"], fresh["video"]], corpus_template, tmp_path / "o")
    assert code == 2 and f"no prediction for recording {victim.stem!r}" in err
    assert "same corpus" in err


def test_different_timestamps(fresh, corpus_template, tmp_path, capsys):
    victim = sorted((fresh["video"] / "predictions" / "train").glob("*.csv"))[0]
    set_cell(victim, 4, 0, "123456")
    code, err = _fuse(capsys, [fresh["audio"], fresh["video"]], corpus_template, tmp_path / "o")
    assert code == 2 and f"{victim.name}, line 4: timestamp 123456" in err
    assert "different time grids" in err


def test_missing_train_predictions(fresh, corpus_template, tmp_path, capsys):
    shutil.rmtree(fresh["video"] / "predictions" / "train")
    code, err = _fuse(capsys, [fresh["audio"], fresh["video"]], corpus_template, tmp_path / "o",
                      "--method", "weighted")
    assert code == 2 and "predictions/train: missing" in err and "--method weighted" in err
    code, _ = _fuse(capsys, [fresh["audio"], fresh["video"]], corpus_template, tmp_path / "o2",
                    "--method", "mean")  # the mean needs no train predictions
    assert code == 0


def test_incomplete_run(fresh, corpus_template, tmp_path, capsys):
    (fresh["video"] / "checkpoint.pt").unlink()
    code, err = _fuse(capsys, [fresh["audio"], fresh["video"]], corpus_template, tmp_path / "o")
    assert code == 2 and "checkpoint.pt: missing" in err and "not a finished run" in err


def test_run_from_another_version(fresh, corpus_template, tmp_path, capsys):
    ckpt = torch.load(fresh["video"] / "checkpoint.pt", weights_only=True)
    ckpt["format"], ckpt["emotrace_version"] = "emotrace-checkpoint-0", "0.0.1"
    torch.save(ckpt, fresh["video"] / "checkpoint.pt")
    code, err = _fuse(capsys, [fresh["audio"], fresh["video"]], corpus_template, tmp_path / "o")
    assert code == 2 and "'emotrace-checkpoint-0' (emotrace 0.0.1)" in err and "Retrain" in err


def test_fusion_option_errors(runs, corpus_template, tmp_path, capsys):
    pair = [runs["audio"], runs["video"]]
    code, err = _fuse(capsys, pair, corpus_template, tmp_path / "o", "--method", "median")
    assert code == 2 and "unknown fusion method" in err
    code, err = _fuse(capsys, pair, corpus_template, tmp_path / "o", "--method", "mean",
                      "--difficulty")
    assert code == 2 and "--difficulty needs" in err
    code, err = _fuse(capsys, pair[:1], corpus_template, tmp_path / "o")
    assert code == 2 and "at least two runs" in err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    code, err = _fuse(capsys, pair, corpus_template, tmp_path / "full")
    assert code == 2 and "not an empty folder" in err


def test_fused_run_needs_its_inputs(runs, corpus_template, tmp_path, capsys):
    moved = Path(shutil.copytree(runs["video"], tmp_path / "video"))
    out = tmp_path / "f"
    emotrace.fuse([runs["audio"], moved], data=corpus_template, out=out, method="mean")
    shutil.rmtree(moved)
    code, _, err = run_cli(capsys, "evaluate", "--run", out, "--data", corpus_template)
    err = " ".join(err.split())
    assert code == 2 and "its input run" in err and "run folder not found" in err


def test_predictions_from_another_corpus(runs, tmp_path, capsys):
    from helpers import make_corpus

    other = make_corpus(tmp_path / "other", steps=(30, 35))
    code, err = _fuse(capsys, [runs["audio"], runs["video"]], other, tmp_path / "o")
    assert code == 2 and "Pass the --data the runs were trained on" in err
    assert lines(other / "metadata" / "partition.csv")  # the corpus itself is fine


def test_mixed_model_families_and_physio(corpus_template, tmp_path):
    """Different model families on the same features, plus a physiological-signal model."""
    paths = []
    for name, features in (("attn-rnn", ["audio"]), ("rnn", ["audio"]), ("gcnn-rnn", ["physio"])):
        cfg = _cfg(features, ["arousal"])
        cfg.model = ModelConfig(name=name, hidden=8, layers=1, heads=2, channels=4)
        paths.append(tmp_path / name)
        emotrace.fit(corpus_template, out=paths[-1], config=cfg)
    m = emotrace.fuse(paths, data=corpus_template, out=tmp_path / "f", method="weighted",
                      difficulty=True)
    assert m["features"] == ["audio", "physio"] and len(m["inputs"]) == 3
    assert emotrace.evaluate(tmp_path / "f", corpus_template)["ccc"] == pytest.approx(
        m["devel"]["ccc"], abs=1e-5)


def test_fusion_flag_names_early_only(corpus, tmp_path, capsys):
    args = ["train", "--data", corpus, "--features", "audio", "video", "--target", "arousal",
            *TINY]
    code, _, err = run_cli(capsys, *args, "--fusion", "late", "--out", tmp_path / "a")
    assert code == 2 and "data.fusion" in err and "'early'" in err
    code, _, err = run_cli(capsys, *args, "--fusion", "early", "--out", tmp_path / "b")
    assert code == 0, err
