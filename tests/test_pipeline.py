"""``emotrace run``: dependency order, parallel steps that do not change results, skipping and
resuming in --out (a killed pipeline rerun ends with the same table), refusing to overwrite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from helpers import run_cli, snapshot

from emotrace import recipes
from emotrace.workflows.pipeline import run_recipe, table_rows

SRC = Path(__file__).resolve().parents[1] / "src"
TINY = ["model.hidden=8", "model.layers=1", "model.head_hidden=4", "train.epochs=1",
        "train.seeds=2", "data.win=20", "data.hop=10"]

#: auto-encoders of a few units for the auto-encoder fusion recipe
SMALL_AE = ["data.difficulty_hidden=4", "data.difficulty_layers=1", "difficulty_hidden=4",
            "difficulty_layers=1"]

#: a user recipe with every step kind
ALL_KINDS = """\
name: all-kinds
cite: test
paper: a test recipe
task: arousal
summary: every kind of step
steps:
  uni:
    kind: train
    features: each
    config: {model: {name: rnn, hidden: 8, layers: 1, head_hidden: 4}, train: {epochs: 2, seeds: 2},
             data: {win: 20, hop: 10}}
  early:
    kind: train
    config: {model: {name: rnn, hidden: 8, layers: 1, head_hidden: 4}, train: {epochs: 2, seeds: 2},
             data: {win: 20, hop: 10}}
  late:
    kind: fuse
    inputs: [uni, early]
    method: weighted
  final:
    kind: final
    input: early
  personal:
    kind: personalise
    input: early
    seeds: 2
    epochs: 1
    subject_train: 2s
    subject_devel: 2s
  scores:
    kind: evaluate
    inputs: [late, final]
    partition: test
"""


def _scores(res: dict) -> list:
    return [(r["step"], r["targets"]) for r in res["steps"]]


def test_every_step_kind_and_the_result_does_not_depend_on_jobs(corpus, tmp_path):
    """Dependency order over all step kinds; the scores and every prediction file are the same
    with one worker process as with two (independent steps in parallel)."""
    path = tmp_path / "all.yaml"
    path.write_text(ALL_KINDS)
    r = recipes.load(path)
    kw = {"data": corpus, "features": ["audio", "video"], "targets": ["arousal"]}
    one = run_recipe(r, out=tmp_path / "j1", jobs=1, **kw)
    two = run_recipe(r, out=tmp_path / "j2", jobs=2, **kw)
    assert [s["step"] for s in one["steps"]] == ["uni-audio", "uni-video", "early", "late",
                                                 "final", "personal", "scores"]
    assert _scores(one) == _scores(two)
    assert table_rows(one) == table_rows(two)
    preds = sorted(p.relative_to(tmp_path / "j1") for p in (tmp_path / "j1").rglob("predictions/*/*.csv"))
    assert len(preds) > 20
    for p in preds:
        assert (tmp_path / "j1" / p).read_bytes() == (tmp_path / "j2" / p).read_bytes(), p
    # the final step has no devel score, the evaluate step scores its inputs on test
    rows = {r["step"]: r for r in one["steps"]}
    assert rows["final"]["targets"]["arousal"]["devel"] is None
    assert rows["final"]["targets"]["arousal"]["test"]["ccc"] == rows["scores"]["targets"][
        "final:arousal"]["test"]["ccc"]
    assert rows["personal"]["targets"]["arousal"]["subjects"] == 1
    # every step folder is a normal run folder: the other verbs work on it
    import emotrace

    assert emotrace.evaluate(tmp_path / "j1" / "late", corpus, partition="devel")["ccc"] == \
        pytest.approx(rows["late"]["targets"]["arousal"]["devel"]["ccc"], abs=1e-6)


def _cmd(corpus: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "emotrace", "run", "muse2020-wild-winner", "--data", str(corpus),
            "--features", "audio", "video", "--target", "arousal", "--out", str(out), "--jobs", "1",
            "--quiet", "--set", *TINY, "train.epochs=12", "train.patience=100",
            "late.train.epochs=2"]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def _table(stdout: str) -> list[str]:
    return stdout.splitlines()


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_killed_pipeline_rerun_ends_with_the_same_table(corpus, tmp_path):
    """Kill `emotrace run` (SIGKILL) after its first step finished, while the second is
    training; the rerun skips the first without touching its files, resumes the second from its
    last epoch, runs the rest and prints the table of an uninterrupted run."""
    whole = subprocess.run(_cmd(corpus, tmp_path / "whole"), env=_env(), capture_output=True,
                           text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(corpus, out), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    first = out / "unimodal-audio" / "metrics.json"
    second = out / "unimodal-video"

    def training_second() -> bool:  # a seed of the second step has finished an epoch
        return first.exists() and second.is_dir() and any(second.glob("train_state.seed-*.pt"))

    deadline = time.monotonic() + 240
    while not training_second() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first.exists(), "the first step did not finish before the deadline"
    assert (second / "train_state.pt").exists(), "the second step was not under way"
    assert not (out / "results.json").exists(), "the pipeline finished before it was killed"
    kept = _mtimes(out / "unimodal-audio")
    again = subprocess.run(_cmd(corpus, out), env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert _table(again.stdout) == _table(whole.stdout)
    now = _mtimes(out / "unimodal-audio")
    assert {k: now[k] for k in kept} == kept  # nothing finished was redone
    res = json.loads((out / "results.json").read_text())
    assert "unimodal-audio" not in res["ran"] and "late" in res["ran"]
    assert res["resumed"] == ["unimodal-video"]


def test_changed_recipe_is_refused_and_nothing_is_lost(corpus, tmp_path, capsys):
    args = ["run", "muse2021-baseline", "--data", corpus, "--features", "audio", "--target",
            "arousal", "--out", tmp_path / "o", "--jobs", "1", "--quiet", "--set", *TINY]
    code, first, err = run_cli(capsys, *args)
    assert code == 0, err
    before = snapshot(tmp_path / "o", skip=(tmp_path / "o" / "recipe.yaml",))
    code, _, err = run_cli(capsys, *args, "train.lr=0.01")
    assert code == 2
    text = " ".join(err.split())
    assert "step 'run'" in text and "config.train.lr was 0.002, now 0.01" in text
    assert "step.json" in text and "--out" in text
    assert snapshot(tmp_path / "o", skip=(tmp_path / "o" / "recipe.yaml",)) == before
    code, again, _ = run_cli(capsys, *args)  # the original command: everything skipped
    assert code == 0 and _table(again) == _table(first)


def test_a_step_that_failed_on_bad_input_is_rerun_with_the_fix(corpus, tmp_path, capsys):
    """A wrong feature set fails the step before it trains (exit 2, naming the folder); the
    corrected command replaces that empty step instead of refusing it as changed."""
    args = ["run", "muse2021-baseline", "--data", corpus, "--target", "arousal", "--out",
            tmp_path / "o", "--jobs", "1", "--quiet", "--set", *TINY]
    code, _, err = run_cli(capsys, *args, "--features", "audoi")
    assert code == 2 and "audoi" in err
    code, _, err = run_cli(capsys, *args, "--features", "audio")
    assert code == 0, err
    assert json.loads((tmp_path / "o" / "run" / "step.json").read_text())["spec"]["config"][
        "data"]["features"] == ["audio"]


def test_a_folder_not_written_by_run_is_refused(corpus, tmp_path, capsys):
    (tmp_path / "o" / "run").mkdir(parents=True)
    (tmp_path / "o" / "run" / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, "run", "muse2021-baseline", "--data", corpus, "--features",
                           "audio", "--target", "arousal", "--out", tmp_path / "o", "--quiet")
    assert code == 2 and "not written by `emotrace run`" in " ".join(err.split())
    assert (tmp_path / "o" / "run" / "notes.txt").read_text() == "mine"


def test_a_half_written_fuse_step_starts_again(corpus, tmp_path):
    """Steps that cannot resume write OUT/.partial-<step>/ and are renamed when finished: a
    leftover partial folder (a killed fuse) is replaced, the finished steps are skipped."""
    r = recipes.load("muse2021-stress-top3", sets=[*TINY, "model.heads=2"])
    kw = {"data": corpus, "features": ["audio", "video"], "targets": ["arousal"], "jobs": 1}
    whole = run_recipe(r, out=tmp_path / "whole", **kw)
    out = tmp_path / "o"
    run_recipe(r, out=out, **kw)
    import shutil

    shutil.move(out / "late", out / ".partial-late")
    (out / ".partial-late" / "metrics.json").unlink()
    res = run_recipe(r, out=out, **kw)
    assert list(res["ran"]) == ["late"]
    assert not (out / ".partial-late").exists()
    assert table_rows(res) == table_rows(whole)


def test_address_runs_the_steps_through_the_cluster_runner(corpus, tmp_path, monkeypatch):
    """--address hands every step to ``emotrace.workflows.cluster.run_remote`` (the Ray runner);
    here a stand-in that calls the function in this process records the calls (a real cluster:
    tests/test_cluster.py)."""
    calls = []

    def run_remote(fn, args, *, address, cpus_per_job=1):
        calls.append((address, [a[0].name for a in args], cpus_per_job))
        return [fn(*a) for a in args]

    fake = types.ModuleType("emotrace.workflows.cluster")
    fake.run_remote = run_remote
    monkeypatch.setitem(sys.modules, "emotrace.workflows.cluster", fake)
    r = recipes.load("muse2021-ae-fusion", sets=[*TINY, *SMALL_AE])
    res = run_recipe(r, data=corpus, out=tmp_path / "o", features=["audio", "video"],
                     targets=["arousal"], address="ray://head:10001")
    assert calls == [("ray://head:10001", ["unimodal-audio", "unimodal-video"], 1),
                     ("ray://head:10001", ["late"], 1)]
    from emotrace.config import FuseConfig

    fused = FuseConfig.load(tmp_path / "o" / "late" / "config.yaml")  # the recipe's fusion options
    assert (fused.win, fused.hop, fused.difficulty, fused.difficulty_hidden) == (300, 50, True, 4)
    assert [s["step"] for s in res["steps"]] == ["unimodal-audio", "unimodal-video", "late"]


def test_ctrl_c_says_the_same_command_continues(capsys, corpus, tmp_path, monkeypatch):
    import emotrace.workflows.pipeline as pipeline

    real = pipeline.run_step

    def interrupted(step, *a, **kw):
        if step.name == "late":
            raise KeyboardInterrupt
        return real(step, *a, **kw)

    monkeypatch.setattr(pipeline, "run_step", interrupted)
    args = ["run", "muse2021-stress-top3", "--data", corpus, "--features", "audio", "video",
            "--target", "arousal", "--out", tmp_path / "o", "--jobs", "1", "--quiet", "--set",
            *TINY, "model.heads=2"]
    code, _, err = run_cli(capsys, *args)
    assert code == 130 and "Traceback" not in err
    text = " ".join(err.split())
    assert "finished steps are kept" in text and "emotrace run muse2021-stress-top3" in text
    assert (tmp_path / "o" / "unimodal-video" / "metrics.json").exists()
    monkeypatch.setattr(pipeline, "run_step", real)
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    assert json.loads((tmp_path / "o" / "results.json").read_text())["ran"].keys() == {"late"}


def test_one_fusion_per_target(corpus, tmp_path):
    """With two targets a MuSe pipeline trains and fuses per target (late-arousal reads the
    arousal runs only); each fused run predicts its one target."""
    from emotrace.config import FuseConfig

    r = recipes.load("muse2021-physio-top3", sets=[*TINY, "model.channels=4"])
    res = run_recipe(r, data=corpus, out=tmp_path / "o", features=["audio", "video"],
                     targets=["arousal", "valence"], jobs=1)
    assert [s["step"] for s in res["steps"]][-2:] == ["late-arousal", "late-valence"]
    fused = FuseConfig.load(tmp_path / "o" / "late-valence" / "config.yaml")
    assert fused.targets == ["valence"]
    assert [Path(p).name for p in fused.runs] == ["unimodal-audio-valence", "unimodal-video-valence"]
    rows = table_rows(res)
    assert [(x[0], x[2]) for x in rows][-2:] == [("late-arousal", "arousal"), ("late-valence", "valence")]


def test_a_cross_validated_step_is_as_wide_as_its_seeds_times_folds():
    """A one-seed ``train.cv=5`` step has 5 independent jobs, so a lone such step gets all the
    cores for its folds instead of running them one after another."""
    from emotrace.recipes import Resolved
    from emotrace.workflows.pipeline import _width

    def step(**train):
        return Resolved("run", "train", [], {"config": {"train": train}}, "run", [])

    assert _width(step(seeds=3)) == 3
    assert _width(step(seeds=1, cv="5")) == 5
    assert _width(step(seeds=2, cv="5")) == 10
    assert _width(step(seeds=1, cv="loso")) >= 100
