"""Hyper-parameter search (emotrace.workflows.tune): the space file, and real Ray Tune searches.

The space tests need no Ray. The two searches start a local Ray instance with one CPU on the tiny
synthetic corpus (Ray's start-up dominates their time) and check that every trial is a normal run
folder, that the table is ranked by devel CCC, and that Ray leaves no process behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import run_cli

import emotrace
from emotrace.config import RunConfig
from emotrace.errors import EmotraceError
from emotrace.run import load_run
from emotrace.workflows.tune import Space

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "space.yaml"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def ray_processes() -> dict[int, str]:
    """Ray's daemons and workers running on this machine: pid -> command line."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(k in cmd for k in ("raylet", "gcs_server", "ray::", "default_worker.py")):
            found[int(pid)] = cmd[:120]
    return found


# --------------------------------------------------------------------------------------------
# the space file


def test_example_space_is_valid_and_covers_model_and_training_options():
    space = Space.load(EXAMPLE)
    sections = {k.split(".")[0] for k in space.params}
    assert sections == {"data", "model", "train"}
    assert space.params["train.lr"] == ("loguniform", [5e-4, 1e-2])
    cfg = space.config({k: (a[0]) for k, (d, a) in space.params.items()})
    assert isinstance(cfg, RunConfig) and cfg.data.targets == ["arousal", "valence"]


def test_every_config_field_is_accepted_and_nested_keys_flatten():
    fields = {f"{s}.{f}" for s, m in (("data", emotrace.DataConfig), ("model", emotrace.ModelConfig),
                                        ("train", emotrace.TrainConfig)) for f in m.model_fields}
    default = RunConfig(data=emotrace.DataConfig(features=["a"], targets=["b"])).model_dump(mode="json")
    space = {k: default[k.split(".")[0]][k.split(".")[1]] for k in fields}
    sp = Space.from_dict({"base": {"data": {"features": ["a"], "targets": ["b"]}}, "space": space})
    assert set(sp.params) == fields  # plain values are fixed choices of one
    nested = Space.from_dict({"base": {"data": {"features": ["a"], "targets": ["b"]}},
                              "space": {"model": {"hidden": {"choice": [8, 16]}}}})
    assert nested.params == {"model.hidden": ("choice", [8, 16])}


@pytest.mark.parametrize("line, key", [("  model.hiden: {choice: [8, 16]}", "model.hiden"),
                                       ("  optim.lr: {uniform: [0.1, 0.2]}", "optim.lr")])
def test_unknown_option_names_key_and_line(tmp_path, capsys, corpus, line, key):
    path = write(tmp_path / "s.yaml", "base:\n  train: {epochs: 1}\nspace:\n"
                 "  train.lr: {loguniform: [1.0e-3, 1.0e-2]}\n" + line + "\n")
    code, out, err = run_cli(capsys, "tune", "--data", corpus, "--features", "audio", "--target",
                             "arousal", "--space", path, "--out", tmp_path / "t", "--quiet")
    assert code == 2, err
    assert "Traceback" not in err
    assert f"{path}, line 5" in err.replace("\n", "") and repr(key) in err
    assert not (tmp_path / "t").exists()  # refused before Ray started or anything was written


@pytest.mark.parametrize("space, words", [
    ({"model.cell": {"choice": ["gru", "tcn"]}}, ["model.cell", "'tcn'"]),
    ({"train.lr": {"loguniform": [0, 1.0e-2]}}, ["train.lr", "low > 0"]),
    ({"model.hidden": {"normal": [1, 2]}}, ["model.hidden", "choice"]),
    ({"model.layers": {"randint": [1]}}, ["model.layers", "randint needs a list of 2"]),
    ({"train.dropout": {"choice": [0.1]}}, ["unknown option 'train.dropout'", "train has"]),
])
def test_bad_space_values(space, words):
    with pytest.raises(EmotraceError) as e:
        Space.from_dict({"base": {"data": {"features": ["a"], "targets": ["b"]}}, "space": space})
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize("grace", [0, 3])
def test_grace_beyond_the_epochs_is_a_clear_error(tmp_path, capsys, corpus, grace):
    """ASHA's first rung must come within a trial's epochs (Ray asserted it: an internal error)."""
    path = write(tmp_path / "s.yaml", "base:\n  train: {epochs: 2}\nspace:\n"
                 "  model.hidden: {choice: [4, 8]}\n")
    code, _, err = run_cli(capsys, "tune", "--data", corpus, "--features", "audio", "--target",
                           "arousal", "--space", path, "--grace", str(grace), "--out",
                           tmp_path / "t", "--quiet")
    assert code == 2, err
    assert f"--grace {grace}: ASHA's first cut" in " ".join(err.split()) and "--no-asha" in err
    assert not (tmp_path / "t").exists()


def test_search_kind_constraints():
    sp = Space.from_dict({"base": {"data": {"features": ["a"], "targets": ["b"]}},
                          "space": {"train.lr": {"uniform": [0.001, 0.01]},
                                    "data.win": {"grid": [0, 10]}}})
    with pytest.raises(EmotraceError, match="grid search cannot enumerate"):
        sp.ray_space("grid")
    with pytest.raises(EmotraceError, match="Optuna cannot do"):
        sp.ray_space("optuna")
    with pytest.raises(EmotraceError, match="no data.features"):
        Space.from_dict({"space": {"train.lr": {"uniform": [0.001, 0.01]}}})


def test_missing_ray_names_the_extra(tmp_path, capsys, corpus, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    space = write(tmp_path / "space.yaml", "space:\n  model.hidden: {choice: [4, 8]}\n")
    code, _, err = run_cli(capsys, "tune", "--data", corpus, "--features", "audio", "--target",
                           "arousal", "--space", space, "--out", tmp_path / "t")
    assert code == 2 and 'pip install "emotrace[tune]"' in " ".join(err.split())


def test_missing_space_file_exit_2(tmp_path, capsys, corpus):
    code, _, err = run_cli(capsys, "tune", "--data", corpus, "--features", "audio", "--target",
                           "arousal", "--space", tmp_path / "nope.yaml", "--out", tmp_path / "t")
    assert code == 2 and "nope.yaml" in err and "not found" in err


def test_trial_reports_the_rank_by_score_that_ranks_it(tmp_path, corpus, monkeypatch):
    """What ASHA and the search algorithm judge during a trial is the devel CCC of the --rank-by
    target at the best epoch so far, the same number that ranks the finished trial; not the mean
    over all trained targets (which the trainer selects epochs by). Ray's reporting is replaced by
    a list, so no Ray instance starts."""
    from ray import tune

    from emotrace.workflows.tune import _seed_scores, _trial

    reports: list[dict] = []
    monkeypatch.setattr(tune, "report", lambda result: reports.append(dict(result)))
    monkeypatch.setattr(tune, "get_context", lambda: type("Ctx", (), {
        "get_trial_id": staticmethod(lambda: "t_00001")})())
    sp = Space.from_dict({"base": {"data": {"features": ["audio"], "targets": ["arousal", "valence"]},
                                   "model": {"hidden": 8, "layers": 1},
                                   "train": {"epochs": 3, "seeds": 1, "threads": 1}},
                          "space": {"train.lr": {"choice": [0.01]}}})
    ctx = {"base": sp.base, "params": sp.params, "source": sp.source, "data": str(corpus),
           "out": str(tmp_path / "search"), "threads": 1, "rank_by": ["arousal"]}
    _trial({"train.lr": 0.01}, ctx=ctx)
    metrics = load_run(tmp_path / "search" / "trials" / "trial_00001").metrics
    history = metrics["seeds"][0]["history"]
    epochs = [r for r in reports if "asha_ccc" in r]
    assert [r["epoch"] for r in epochs] == [h["epoch"] for h in history] == [1, 2, 3]
    best = metrics["seeds"][0]["devel"]
    assert epochs[-1]["asha_ccc"] == pytest.approx(best["arousal"]["ccc"])
    assert epochs[-1]["asha_ccc"] != pytest.approx((best["arousal"]["ccc"] + best["valence"]["ccc"]) / 2)
    assert reports[-1]["finished"]
    assert reports[-1]["score"] == pytest.approx(_seed_scores(metrics, ["arousal"])[0])


def test_cross_validated_trial_is_ranked_by_the_mean_over_folds(tmp_path, corpus, monkeypatch):
    """``train.cv`` in the base: each trial is a cross-validated run; ASHA follows the first fold
    (its epochs count up once), and the trial's score is the mean of the folds' held-out CCCs."""
    from ray import tune

    from emotrace.workflows.tune import _trial

    reports: list[dict] = []
    monkeypatch.setattr(tune, "report", lambda result: reports.append(dict(result)))
    monkeypatch.setattr(tune, "get_context", lambda: type("Ctx", (), {
        "get_trial_id": staticmethod(lambda: "t_00002")})())
    sp = Space.from_dict({"base": {"data": {"features": ["audio"], "targets": ["arousal"]},
                                   "model": {"hidden": 8, "layers": 1},
                                   "train": {"epochs": 3, "seeds": 1, "threads": 1, "cv": "2",
                                             "patience": 5}},
                          "space": {"train.lr": {"choice": [0.01]}}})
    ctx = {"base": sp.base, "params": sp.params, "source": sp.source, "data": str(corpus),
           "out": str(tmp_path / "search"), "threads": 1, "rank_by": None}
    _trial({"train.lr": 0.01}, ctx=ctx)
    metrics = json.loads((tmp_path / "search" / "trials" / "trial_00002" / "metrics.json").read_text())
    folds = metrics["cv"]["per_fold"]
    assert len(folds) == 2
    assert [r["epoch"] for r in reports if "asha_ccc" in r] == [1, 2, 3]
    held_out = [f["held_out"]["ccc"] for f in folds]
    assert reports[-1]["finished"] and reports[-1]["seeds_done"] == 2
    assert reports[-1]["score"] == pytest.approx(sum(held_out) / 2)


# --------------------------------------------------------------------------------------------
# real searches on Ray Tune (local, one CPU)


@pytest.fixture
def no_leftover_ray():
    """Fails the test if Ray processes it started are still alive a few seconds after it ends
    (Ray instances of other users of the machine are left out)."""
    import time

    before = set(ray_processes())
    yield
    for _ in range(40):
        left = {p: c for p, c in ray_processes().items() if p not in before}
        if not left:
            return
        time.sleep(0.25)
    pytest.fail(f"Ray processes left behind: {list(left.values())}")


def test_optuna_search_with_asha_cli(tmp_path, capsys, corpus, no_leftover_ray):
    space = write(tmp_path / "space.yaml", "base:\n  model: {layers: 1}\n"
                  "  train: {epochs: 3, seeds: 2, patience: 3}\nspace:\n"
                  "  model.hidden: {choice: [4, 8]}\n"
                  "  train.lr: {loguniform: [1.0e-3, 1.0e-2]}\n")
    out = tmp_path / "search"
    code, stdout, err = run_cli(capsys, "tune", "--data", corpus, "--features", "audio",
                                "--target", "arousal", "--space", space, "--trials", "2",
                                "--search", "optuna", "--cpus", "1", "--grace", "1",
                                "--out", out, "--quiet")
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert res["search"] == "optuna" and res["n_trials"] == 2
    assert res["n_finished"] >= 1  # the first trial of a rung is never cut
    rows = res["trials"]
    assert [r["rank"] for r in rows] == [1, 2]
    finished = [r for r in rows if r["status"] == "finished"]
    assert [r["score"] for r in finished] == sorted((r["score"] for r in finished), reverse=True)
    for r in finished:  # a normal run folder; the score is the mean over its 2 seeds
        run = load_run(r["run"])
        seeds = [s["devel"]["ccc"] for s in run.metrics["seeds"]]
        assert len(seeds) == 2 and r["score"] == pytest.approx(sum(seeds) / 2)
        assert run.config.model.hidden == r["params"]["model.hidden"]
        assert 1e-3 <= run.config.train.lr <= 1e-2
    assert RunConfig.load(out / "best.yaml") == load_run(rows[0]["run"]).config
    assert (out / "results.csv").read_text().splitlines()[0].startswith("rank,status,score")
    assert "model.hidden" in stdout and "finished" in stdout


def test_grid_and_random_spaces_for_ray(tmp_path, corpus):
    """What Ray receives, without starting Ray: ``choice`` is enumerated by a grid search and
    sampled otherwise; randint bounds are inclusive."""
    sp = Space.from_dict({"base": {"data": {"features": ["audio"], "targets": ["arousal"]}},
                          "space": {"data.win": {"choice": [0, 20]}, "model.layers": {"randint": [1, 2]}}})
    grid = Space.from_dict({"base": sp.base, "space": {"data.win": {"choice": [0, 20]}}})
    assert grid.ray_space("grid") == {"data.win": {"grid_search": [0, 20]}}
    assert grid.grid_size() == 2
    rnd = sp.ray_space("random")
    assert sorted(rnd["data.win"].categories) == [0, 20]
    assert (rnd["model.layers"].lower, rnd["model.layers"].upper) == (1, 3)
    space = write(tmp_path / "space.yaml", "space:\n  data.win: {choice: [0, 20]}\n")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "results.json").write_text("{}")
    with pytest.raises(EmotraceError, match="already holds a finished search"):
        emotrace.tune(corpus, space=space, out=tmp_path / "done", features=["audio"],
                      targets=["arousal"], search="grid")
    with pytest.raises(EmotraceError, match="unknown search"):
        emotrace.tune(corpus, space=space, out=tmp_path / "x", features=["audio"],
                      targets=["arousal"], search="bayes")
