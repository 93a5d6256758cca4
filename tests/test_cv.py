"""Cross-validated runs (``--cv K`` / ``--cv loso``, emotrace.kinds.cv): subject folds over
train + devel, one model per fold, the fold ensemble as the predictor."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_corpus, run_cli, with_train

import emotrace
from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from emotrace.data.muse import load_corpus
from emotrace.data.standardise import Standardiser
from emotrace.kinds.cv import combine
from emotrace.train.folds import cv_folds

#: the smallest model; 2 seeds so seed choice per fold is exercised
CFG = RunConfig(data=DataConfig(features=["audio"], targets=["arousal"]),
                model=ModelConfig(hidden=8, layers=1),
                train=TrainConfig(epochs=2, seeds=2, cv="3", jobs=1, patience=5))
TINY_CV = ["--epochs", "1", "--seeds", "1", "--hidden", "8", "--layers", "1", "--quiet"]


@pytest.fixture(scope="module")
def cv_corpus(tmp_path_factory) -> Path:
    """6 subjects in train + devel (4 + 2), one test subject."""
    return make_corpus(tmp_path_factory.mktemp("cv") / "corpus", subjects=(4, 2, 1))


@pytest.fixture(scope="module")
def cv_run(cv_corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cvrun") / "run"
    emotrace.fit(cv_corpus, out=out, config=CFG)
    return out


def _preds(folder: Path) -> dict[str, str]:
    return {f.name: f.read_text() for f in sorted(folder.rglob("*.csv"))}


# --- fold assignment ---------------------------------------------------------------------------

def test_folds_are_deterministic_balanced_and_seeded():
    subjects = [f"P{i:02d}" for i in range(26)] * 3
    folds = cv_folds(subjects, "5", seed=0)
    assert folds == cv_folds(list(reversed(subjects)), "5", seed=0)  # order of input irrelevant
    assert sorted(s for f in folds for s in f) == sorted(set(subjects))
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert cv_folds(subjects, "5", seed=1) != folds
    assert cv_folds(["b", "a", "c", "a"], "loso", seed=3) == [["a"], ["b"], ["c"]]


# --- the run ---------------------------------------------------------------------------------

def test_cv_run_writes_members_oof_predictions_and_metrics(cv_run, cv_corpus):
    m = json.loads((cv_run / "metrics.json").read_text())
    for key in ("target", "features", "devel", "seeds", "best_seed", "train_seconds", "epochs"):
        assert key in m
    cv = m["cv"]
    assert cv["k"] == 3 and len(cv["per_fold"]) == 3
    assert sorted(s for f in cv["per_fold"] for s in f["subjects"]) == [f"S{i:02d}" for i in range(1, 7)]
    assert cv["mean"]["ccc"] == pytest.approx(np.mean([f["held_out"]["ccc"] for f in cv["per_fold"]]))
    assert cv["std"]["ccc"] == pytest.approx(np.std([f["held_out"]["ccc"] for f in cv["per_fold"]]))
    assert m["devel"] == cv["out_of_fold"] and m["train_predictions"] == "out-of-fold"
    assert len(m["seeds"]) == 3 * 2 and {s["fold"] for s in m["seeds"]} == {0, 1, 2}
    # out-of-fold predictions for every train and devel recording, the ensemble's for test
    corpus = load_corpus(cv_corpus, features=["audio"], targets=["arousal"])
    for part in ("train", "devel", "test"):
        assert sorted(p.stem for p in (cv_run / "predictions" / part).glob("*.csv")) == \
            sorted(r.id for r in corpus.partition(part))
    for k in range(3):  # self-describing members, loadable without pickled classes
        ckpt = torch.load(cv_run / "folds" / str(k) / "checkpoint.pt", weights_only=True)
        assert ckpt["format"] == "emotrace-checkpoint-1" and "model_args" in ckpt
    assert torch.load(cv_run / "checkpoint.pt", weights_only=True)["format"] == \
        "emotrace-cv-checkpoint-1"
    assert not list(cv_run.rglob("train_state*.pt"))


def test_no_held_out_subject_reaches_a_folds_statistics(cv_run, cv_corpus):
    """Each fold's standardiser and output scale equal those fitted on its training subjects
    alone, and differ from those of the whole pool."""
    m = json.loads((cv_run / "metrics.json").read_text())
    corpus = load_corpus(cv_corpus, features=["audio"], targets=["arousal"])
    pool = corpus.partition("train") + corpus.partition("devel")
    everyone = Standardiser.fit(pool, ["audio"])
    for fold in m["cv"]["per_fold"]:
        ckpt = torch.load(cv_run / "folds" / str(fold["fold"]) / "checkpoint.pt", weights_only=True)
        fit_recs = [r for r in pool if r.subject not in fold["subjects"]]
        assert fit_recs and len(fit_recs) < len(pool)
        own = Standardiser.fit(fit_recs, ["audio"])
        np.testing.assert_array_equal(ckpt["normaliser"]["audio"]["mean"].numpy(), own.mean["audio"])
        np.testing.assert_array_equal(ckpt["normaliser"]["audio"]["std"].numpy(), own.std["audio"])
        assert not np.allclose(own.mean["audio"], everyone.mean["audio"])
        labels = np.concatenate([r.targets(["arousal"]) for r in fit_recs])
        assert ckpt["model"]["out_mean"].item() == pytest.approx(float(np.nanmean(labels)), rel=1e-5)


def test_evaluate_and_predict_use_the_fold_ensemble(cv_run, cv_corpus, tmp_path):
    from emotrace.run import load_member

    res = emotrace.evaluate(cv_run, cv_corpus, partition="test")
    assert res["ensemble"] == {"members": 3, "how": "mean"} and np.isfinite(res["ccc"])
    assert (cv_run / "eval_test.json").exists()
    paths = emotrace.predict(cv_run, cv_corpus, partition="test", out=tmp_path / "p")
    assert _preds(tmp_path / "p") == _preds(cv_run / "predictions" / "test")
    # the mean of the members, each on its own standardised inputs
    corpus = load_corpus(cv_corpus, features=["audio"], targets=["arousal"], partitions=["test"])
    rec = corpus.partition("test")[0]
    from emotrace.train.predict import predict_arrays

    members = [load_member(cv_run, cv_run / "folds" / str(k) / "checkpoint.pt") for k in range(3)]
    each = [predict_arrays(m.model, [m.standardiser.transform(rec, ["audio"])])[0] for m in members]
    got = np.loadtxt(paths[0], delimiter=",", skiprows=1)[:, 1]
    np.testing.assert_allclose(got, np.mean(each, axis=0)[:, 0], rtol=1e-5, atol=1e-5)


def test_median_ensemble():
    a, b, c = (np.full((2, 1), v, np.float32) for v in (1.0, 2.0, 9.0))
    assert combine([[a], [b], [c]], "median")[0].tolist() == [[2.0], [2.0]]
    assert combine([[a], [b], [c]], "mean")[0].tolist() == [[4.0], [4.0]]


def test_jobs_do_not_change_the_result(cv_run, cv_corpus, tmp_path):
    out = tmp_path / "run2"
    emotrace.fit(cv_corpus, out=out, config=with_train(CFG, jobs=2))
    assert _preds(out / "predictions") == _preds(cv_run / "predictions")
    for k in range(3):
        a = torch.load(cv_run / "folds" / str(k) / "checkpoint.pt", weights_only=True)["model"]
        b = torch.load(out / "folds" / str(k) / "checkpoint.pt", weights_only=True)["model"]
        assert all(torch.equal(a[n], b[n]) for n in a)


def test_interrupted_cv_run_resumes_fold_by_fold_to_the_same_result(cv_run, cv_corpus, tmp_path):
    out = tmp_path / "run"
    seen = []

    def stop(event):
        if type(event).__name__ != "EpochEvent":
            return
        seen.append(event.seed_index)
        if event.seed_index == 3 and event.epoch == 1:  # fold 1, second seed: folds 0 done
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        emotrace.fit(cv_corpus, out=out, config=CFG, on_event=stop)
    assert (out / "train_state.pt").exists() and not (out / "metrics.json").exists()
    done0 = torch.load(out / "folds" / "0" / "train_state.pt", weights_only=True)["done"]
    assert len(done0) == 2  # fold 0 finished and kept
    with pytest.raises(emotrace.EmotraceError, match="--resume"):
        emotrace.fit(cv_corpus, out=out, config=CFG)
    resumed = []
    emotrace.fit(cv_corpus, out=out, config=CFG, resume=True, on_event=resumed.append)
    assert {(e.group, e.seed_index) for e in resumed} == {(1, 3), (2, 4), (2, 5)}  # fold 0 kept
    assert _preds(out / "predictions") == _preds(cv_run / "predictions")
    a = json.loads((cv_run / "metrics.json").read_text())["cv"]
    b = json.loads((out / "metrics.json").read_text())["cv"]
    assert a["per_fold"] == b["per_fold"] and a["out_of_fold"] == b["out_of_fold"]


def test_fuse_accepts_cv_runs(cv_run, cv_corpus, tmp_path):
    other = tmp_path / "video"
    cfg = CFG.model_copy(deep=True)
    cfg.data.features = ["video"]
    cfg.train.seeds = 1
    emotrace.fit(cv_corpus, out=other, config=cfg)
    m = emotrace.fuse([cv_run, other], data=cv_corpus, out=tmp_path / "fused", method="weighted")
    assert m["train_predictions"] == "out-of-fold"
    res = emotrace.evaluate(tmp_path / "fused", cv_corpus, partition="test")
    assert np.isfinite(res["ccc"])


def test_final_from_a_cv_run_retrains_without_folds(cv_run, cv_corpus, tmp_path):
    m = emotrace.fit_final(cv_corpus, out=tmp_path / "final", run=cv_run)
    assert m["final"]["epochs"] == json.loads((cv_run / "metrics.json").read_text())["best_epoch"]
    assert not (tmp_path / "final" / "folds").exists()


# --- bad input -----------------------------------------------------------------------------------

def test_cli_cv_trains_and_evaluates(capsys, cv_corpus, tmp_path):
    code, _, err = run_cli(capsys, "train", "--data", cv_corpus, "--features", "audio", "--target",
                           "arousal", "--cv", "loso", "--ensemble", "median", "--jobs", "1",
                           "--out", tmp_path / "r", *TINY_CV)
    assert code == 0, err
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["cv"]["k"] == 6
    code, out, err = run_cli(capsys, "evaluate", "--run", tmp_path / "r", "--data", cv_corpus,
                             "--partition", "test")
    assert code == 0, err
    assert json.loads(out)["ensemble"] == {"members": 6, "how": "median"}
    code, out, err = run_cli(capsys, "evaluate", "--run", tmp_path / "r", "--data", cv_corpus,
                             "--partition", "devel")
    assert code == 0, err
    assert "in-sample" in json.loads(out)["ensemble"]["note"]


def test_ctrl_c_message_says_where_each_fold_stands(cv_corpus, tmp_path):
    from emotrace.cli.core import interrupted

    out = tmp_path / "run"

    def stop(event):
        if type(event).__name__ == "EpochEvent" and event.seed_index == 3 and event.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        emotrace.fit(cv_corpus, out=out, config=CFG, on_event=stop)
    msg = interrupted(out, [0, 1])
    assert "fold 0 done" in msg and "fold 1: seed 0 done" in msg and "--resume" in msg


@pytest.mark.parametrize(("extra", "message"), [
    (["--cv", "9"], "--cv 9"),
    (["--cv", "1"], "--cv 1"),
    (["--cv", "five"], "train.cv"),
    (["--cv", "3", "--final", "--epochs", "1"], "--cv with --final"),
    (["--cv", "3", "--folds", "2"], "--cv with --folds"),
])
def test_cli_bad_cv_options_exit_2(capsys, cv_corpus, tmp_path, extra, message):
    code, _, err = run_cli(capsys, "train", "--data", cv_corpus, "--features", "audio", "--target",
                           "arousal", "--out", tmp_path / "r", *TINY_CV, *extra)
    assert code == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in err


def test_cli_cv_without_subjects_exits_2(capsys, cv_corpus, tmp_path):
    corpus = Path(shutil.copytree(cv_corpus, tmp_path / "corpus"))
    part = corpus / "metadata" / "partition.csv"
    rows = [",".join(line.split(",")[:2]) for line in part.read_text().splitlines()]
    part.write_text("\n".join(rows) + "\n")
    code, _, err = run_cli(capsys, "train", "--data", corpus, "--features", "audio", "--target",
                           "arousal", "--cv", "3", "--out", tmp_path / "r", *TINY_CV)
    assert code == 2
    assert "no Subject column" in " ".join(err.split())


@pytest.mark.parametrize("how", ["mean", "median"])
def test_export_writes_one_graph_averaging_the_fold_models(capsys, cv_run, tmp_path, how):
    pytest.importorskip("onnxruntime")
    from emotrace.export import check_onnx

    run = Path(shutil.copytree(cv_run, tmp_path / "run"))
    if how == "median":  # the ensemble is chosen at prediction time; the config says which
        for f in ("config.yaml",):
            (run / f).write_text((run / f).read_text().replace("ensemble: mean", "ensemble: median"))
        import torch as t

        for p in [run / "checkpoint.pt", *sorted((run / "folds").glob("*/checkpoint.pt"))]:
            ckpt = t.load(p, weights_only=True)
            ckpt["config"]["train"]["ensemble"] = "median"
            t.save(ckpt, p)
    code, _, err = run_cli(capsys, "export", "--run", run, "--out", tmp_path / "m.onnx")
    assert code == 0, err
    assert "fold ensemble" in err
    assert check_onnx(tmp_path / "m.onnx", run) < 1e-4
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(meta["emotrace.ensemble"]) == {"members": 3, "how": how}


def test_streaming_export_and_single_model_commands_refuse_a_cv_run(capsys, cv_run, tmp_path):
    code, _, err = run_cli(capsys, "export", "--run", cv_run, "--out", tmp_path / "m.onnx",
                           "--streaming")
    assert code == 2
    assert "--streaming is not supported for ensembles" in " ".join(err.split())
    from emotrace.run import load_run

    with pytest.raises(emotrace.EmotraceError, match="cross-validated run"):
        load_run(cv_run)


def test_fold_summary_keeps_binary_metrics():
    from emotrace.kinds.cv import _summary

    folds = [{"stress": {"ccc": 0.2, "auroc": 0.7, "f1": 0.5}},
             {"stress": {"ccc": 0.4, "auroc": 0.9, "f1": 0.7}}]
    mean, std = _summary(folds, ["stress"])
    assert mean["stress"] == pytest.approx({"ccc": 0.3, "auroc": 0.8, "f1": 0.6})
    assert std["stress"]["auroc"] == pytest.approx(0.1)
    # a held-out fold with one class has no auroc/f1: the others' mean
    mean, _ = _summary([*folds, {"stress": {"ccc": 0.0}}], ["stress"])
    assert mean["stress"] == pytest.approx({"ccc": 0.2, "auroc": 0.8, "f1": 0.6})


def test_difficulty_auto_encoders_are_fitted_per_fold(cv_corpus, tmp_path):
    """With --difficulty, each fold has its own auto-encoders (fitted on its training subjects),
    stored with its model and used by the ensemble."""
    from emotrace.run import load_member
    from emotrace.train.difficulty import Difficulty
    from emotrace.train.regression import feature_groups

    cfg = with_train(CFG, seeds=1, cv="2")
    cfg.data.difficulty = True
    out = tmp_path / "run"
    emotrace.fit(cv_corpus, out=out, config=cfg)
    m = json.loads((out / "metrics.json").read_text())
    corpus = load_corpus(cv_corpus, features=["audio"], targets=["arousal"])
    pool = corpus.partition("train") + corpus.partition("devel")
    for fold in m["cv"]["per_fold"]:
        member = load_member(out, out / "folds" / str(fold["fold"]) / "checkpoint.pt")
        assert member.difficulty is not None
        fit_recs = [r for r in pool if r.subject not in fold["subjects"]]
        std = Standardiser.fit(fit_recs, ["audio"])
        own = Difficulty.fit([std.transform(r, ["audio"]) for r in fit_recs],
                             feature_groups([len(std.mean["audio"])]), ["audio"],
                             cell=cfg.model.cell, bidirectional=cfg.model.bidirectional,
                             seed=cfg.train.seed)
        np.testing.assert_allclose(member.difficulty.mean, own.mean)
        np.testing.assert_allclose(member.difficulty.std, own.std)
    res = emotrace.evaluate(out, cv_corpus, partition="test")
    assert np.isfinite(res["ccc"])
    path = emotrace.predict(out, cv_corpus, partition="test", out=tmp_path / "p")[0]
    # the auto-encoders' statistics are stored as float64: equal up to float32 rounding
    np.testing.assert_allclose(np.loadtxt(path, delimiter=",", skiprows=1),
                               np.loadtxt(out / "predictions" / "test" / path.name, delimiter=",",
                                          skiprows=1), rtol=1e-5, atol=1e-6)


def test_cli_final_from_a_cv_run(capsys, cv_run, cv_corpus, tmp_path):
    code, _, err = run_cli(capsys, "train", "--data", cv_corpus, "--out", tmp_path / "final",
                           "--final", "--from", cv_run, "--quiet")
    assert code == 0, err
    m = json.loads((tmp_path / "final" / "metrics.json").read_text())
    assert m["final"]["epochs"] == json.loads((cv_run / "metrics.json").read_text())["best_epoch"]
    assert "cv" not in m
    assert "cv: null" in (tmp_path / "final" / "config.yaml").read_text()


def test_killed_cv_run_resumes_to_the_same_result(cv_corpus, tmp_path):
    """SIGKILL in the middle of fold 1 (no chance to clean up), then --resume: the same
    predictions as an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    args = [sys.executable, "-m", "emotrace", "train", "--data", str(cv_corpus), "--features",
            "audio", "--target", "arousal", "--cv", "2", "--seeds", "2", "--epochs", "12",
            "--patience", "12", "--hidden", "8", "--layers", "1", "--jobs", "1", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(emotrace.__file__).parents[1]),
                                          os.environ.get("PYTHONPATH", "")])}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*args, "--out", str(killed)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (killed / "folds" / "1" / "train_state.seed-0.pt").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.skip("the run ended before it could be killed mid-fold")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (killed / "train_state.pt").exists() and not (killed / "metrics.json").exists()
    assert len(torch.load(killed / "folds" / "0" / "train_state.pt", weights_only=True)["done"]) == 2
    subprocess.run([*args, "--out", str(killed), "--resume"], env=env, check=True,
                   capture_output=True)
    subprocess.run([*args, "--out", str(tmp_path / "whole")], env=env, check=True,
                   capture_output=True)
    assert _preds(killed / "predictions") == _preds(tmp_path / "whole" / "predictions")
    a, b = (json.loads((d / "metrics.json").read_text())["cv"] for d in (killed, tmp_path / "whole"))
    assert a["per_fold"] == b["per_fold"]
