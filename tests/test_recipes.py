"""The shipped recipes: found as package data, valid, carrying the papers' settings, and each runs a
tiny pipeline on the synthetic corpus; the recipe format's errors name the file, step and key."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from helpers import run_cli

from emotrace import recipes
from emotrace.config import DataConfig, RunConfig
from emotrace.errors import EmotraceError

ROOT = Path(__file__).resolve().parents[1]
#: sizes that make every step train in a fraction of a second (applied to every step with the key)
TINY = ["model.hidden=8", "model.layers=1", "model.head_hidden=4", "model.channels=4",
        "train.epochs=1", "train.seeds=2", "data.win=20", "data.hop=10"]
#: per recipe: extra --set items and the features / targets of the synthetic corpus
EXTRA = {
    "ceap360vr-recommended": ["data.per_recording=[audio]"],
    "muse2021-ae-fusion": ["data.difficulty_hidden=4", "data.difficulty_layers=1",
                           "difficulty_hidden=4", "difficulty_layers=1"],
    "muse2023-personalisation": ["personal.seeds=2", "personal.epochs=1",
                                 "personal.subject_train=2s", "personal.subject_devel=2s"],
}


def test_recipes_are_package_data():
    """The YAML files are found with importlib.resources and listed in the wheel's package data."""
    files = {p.name for p in resources.files("emotrace.recipes").iterdir()
             if p.name.endswith(".yaml")}
    assert files == {f"{n}.yaml" for n in recipes.names()}
    assert len(files) >= 10
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "recipes/*.yaml" in conf["tool"]["setuptools"]["package-data"]["emotrace"]


@pytest.mark.parametrize("name", recipes.names())
def test_recipe_metadata(name):
    r = recipes.load(name)
    assert r.name == name
    assert r.meta.paper and r.meta.cite and r.meta.task and "\n" not in r.meta.summary
    # a paper's features are data: either left to the user or a documented substitution
    if not r.meta.defaults.features:
        assert any(s.startswith("features:") for s in r.meta.substitutes)


def _config(name: str, step: str = "run", **kw) -> dict:
    steps = recipes.resolve(recipes.load(name), features=kw.get("features", ["a", "b"]),
                            targets=["arousal"])
    return next(s for s in steps if s.name == step).spec["config"]


@pytest.mark.parametrize(("name", "hidden", "layers", "bi", "lr", "win", "hop"), [
    ("muse2021-baseline", 64, 4, True, 0.002, 300, 50),
    ("muse2021-baseline-wilder", 128, 4, False, 0.0001, 200, 100),
    ("muse2021-baseline-physio", 32, 2, True, 0.005, 300, 50),
])
def test_muse2021_baseline_settings(name, hidden, layers, bi, lr, win, hop):
    """The official per-task settings and what the code fixes (README sample calls, model.py,
    train.py, data_parser.py)."""
    c = _config(name)
    assert c["model"] | {} == c["model"]
    assert (c["model"]["hidden"], c["model"]["layers"], c["model"]["bidirectional"]) == (hidden, layers, bi)
    assert c["model"]["name"] == "rnn" and c["model"]["cell"] == "lstm"
    assert c["model"]["input_layer"] == "linear" and c["model"]["dropout"] == 0.0
    assert c["model"]["head_hidden"] == 64 and c["model"]["output_scale"] is False
    assert (c["data"]["win"], c["data"]["hop"], c["data"]["last_window"]) == (win, hop, "shorter")
    assert c["data"]["standardize"] is True
    t = c["train"]
    assert t["lr"] == lr and t["batch_size"] == 1024 and t["epochs"] == 100
    assert (t["seeds"], t["seed"]) == (10, 101)
    assert t["loss"] == "ccc" and t["clip"] == 0.0 and t["modality_dropout"] == 0.0
    assert (t["lr_patience"], t["lr_factor"], t["min_lr"], t["lr_plateau_on"]) == (5, 0.5, 1e-5, "devel")
    assert t["patience"] == 15


def test_plateau_on_training_loss_where_the_papers_say_so():
    for name, step in (("muse2020-wild-winner", "unimodal-a"), ("muse2021-stress-top3", "unimodal-a"),
                       ("muse2021-physio-top3", "unimodal-a")):
        assert _config(name, step)["train"]["lr_plateau_on"] == "train-loss"
    late = next(s for s in recipes.resolve(recipes.load("muse2020-wild-winner"),
                                           features=["a", "b"], targets=["arousal"])
                if s.name == "late")
    m, t = late.spec["config"]["model"], late.spec["config"]["train"]
    assert (m["cell"], m["hidden"], m["bidirectional"]) == ("lstm", 32, True)
    assert (t["epochs"], t["lr"], t["batch_size"]) == (20, 0.001, 64)
    assert late.inputs == ["unimodal-a", "unimodal-b", "early"]
    assert (late.spec["win"], late.spec["hop"]) == (200, 100)  # the fusion model on windows


def test_recommended_configurations_match_their_commands():
    """ceap360vr-recommended is the README command (emotrace's defaults + --per-recording head
    eye); stress-predict-fused-2l is benchmarks/stress_predict.py's fused-2l configuration."""
    ceap = recipes.resolve(recipes.load("ceap360vr-recommended"), features=None, targets=None)[0]
    readme = RunConfig(data=DataConfig(features=["head", "eye", "lum"],
                                       targets=["arousal", "valence"], per_recording=["head", "eye"]))
    assert ceap.spec["config"] == readme.outcome()
    sp = recipes.resolve(recipes.load("stress-predict-fused-2l"), features=None, targets=None)[0]
    c = sp.spec["config"]
    sets = ["hrv", "eda", "temp", "acc"]
    assert c["data"] | {} == {**c["data"], "features": sets, "targets": ["stress"], "win": 600,
                              "hop": 300, "per_recording": sets}
    assert {k: c["model"][k] for k in ("name", "cell", "hidden", "layers", "bidirectional",
                                       "dropout")} == {"name": "rnn", "cell": "gru", "hidden": 32,
                                                       "layers": 2, "bidirectional": True,
                                                       "dropout": 0.1}
    assert {k: c["train"][k] for k in ("epochs", "seeds", "loss", "patience", "modality_dropout",
                                       "batch_size")} == {"epochs": 20, "seeds": 3, "loss": "mse",
                                                          "patience": 6, "modality_dropout": 0.2,
                                                          "batch_size": 16}


@pytest.mark.parametrize("name", recipes.names())
def test_every_recipe_runs_a_tiny_pipeline(name, corpus, tmp_path):
    """Each shipped recipe loads, validates and runs end to end on the synthetic corpus (sizes
    overridden with --set), ending with devel and test scores for every step."""
    from emotrace.workflows.pipeline import run_recipe

    r = recipes.load(name, sets=TINY + EXTRA.get(name, []))
    out = tmp_path / "out"
    res = run_recipe(r, data=corpus, out=out, features=["audio", "video"], targets=["arousal"],
                     jobs=1)
    assert json.loads((out / "results.json").read_text())["steps"] == res["steps"]
    assert (out / "recipe.yaml").is_file()
    for row in res["steps"]:
        assert (out / row["step"] / "step.json").is_file()
        for v in row["targets"].values():
            if row["kind"] in ("train", "fuse"):
                assert v["devel"]["ccc"] == v["devel"]["ccc"] and v["test"] is not None
            if row["kind"] == "personalise":
                assert "devel" in v and v["subjects"] >= 1


# ------------------------------------------------------------------------------------------------
# --set


def test_set_applies_to_every_step_with_the_key_or_to_one_step():
    r = recipes.load("muse2020-wild-winner", sets=["train.seeds=4", "late.train.epochs=7",
                                                   "early.model.heads=8"])
    steps = {s.name: s for s in recipes.resolve(r, features=["a", "b"], targets=["v"])}
    assert {n: s.spec["config"]["train"]["seeds"] for n, s in steps.items()} == dict.fromkeys(steps, 4)
    assert steps["late"].spec["config"]["train"]["epochs"] == 7
    assert steps["early"].spec["config"]["train"]["epochs"] == 100
    # the two train steps share one YAML anchor: --set on one must not change the other
    assert steps["early"].spec["config"]["model"]["heads"] == 8
    assert steps["unimodal-a"].spec["config"]["model"]["heads"] == 4
    one = recipes.load("muse2021-baseline", sets=["data.win=100", "data.hop=25"])
    assert recipes.resolve(one, features=["a"], targets=["v"])[0].spec["config"]["data"]["win"] == 100


@pytest.mark.parametrize(("item", "words"), [
    ("model.hiden=3", ["--set model.hiden=3", "'model.hiden'", "not an option"]),
    ("late.seeds=3", ["--set late.seeds=3", "step 'late'"]),
    ("train.seeds=many", ["train.seeds", "many", "unimodal"]),
    ("novalue", ["KEY=VALUE"]),
])
def test_bad_set_is_exit_2_naming_the_key(item, words, capsys, corpus, tmp_path):
    code, _, err = run_cli(capsys, "run", "muse2020-wild-winner", "--data", corpus, "--features",
                           "audio", "video", "--target", "arousal", "--out", tmp_path / "o",
                           "--set", item, "--quiet")
    assert code == 2, err
    text = " ".join(err.split())
    for w in words:
        assert w in text, text
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------------
# the commands and bad input


def test_recipes_list_and_show(capsys):
    code, out, _ = run_cli(capsys, "recipes")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == len(recipes.names()) + 1  # one line each, under a header
    assert any(line.startswith("muse2021-baseline ") and "Stappen et al. 2021" in line
               for line in lines)
    code, out, _ = run_cli(capsys, "recipes", "show", "muse2021-baseline")
    assert code == 0
    assert out == (ROOT / "src/emotrace/recipes/muse2021-baseline.yaml").read_text()
    assert "# --d_rnn 64" in out  # the comments (the sources of each choice) are shown


def test_unknown_recipe_lists_the_known_ones(capsys, corpus, tmp_path):
    for args in (["recipes", "show", "muse2021-basline"],
                 ["run", "muse2021-basline", "--data", corpus, "--out", tmp_path / "o"]):
        code, _, err = run_cli(capsys, *args)
        assert code == 2
        text = " ".join(err.split())
        assert "unknown recipe" in text and "muse2021-baseline" in text and "muse2023-personalisation" in text


GOOD = """\
name: mine
cite: Me 2024
paper: Me. My experiment. 2024.
task: arousal
summary: two runs fused
steps:
  uni:
    kind: train
    features: each
    config: {model: {hidden: 8, layers: 1}, train: {epochs: 1, seeds: 1}}
  late:
    kind: fuse
    inputs: [uni]
    method: mean
"""


@pytest.mark.parametrize(("edit", "words"), [
    (lambda t: t.replace("inputs: [uni]", "inputs: [unni]"), ["step 'late'", "'unni'", "not a step"]),
    (lambda t: t.replace("inputs: [uni]", "inputs: [uni, later]") + "  later:\n    kind: final\n"
               "    input: uni\n", ["step 'late'", "'later'", "comes later"]),
    (lambda t: t.replace("kind: train\n    features: each\n    config: {model: {hidden: 8, layers: 1}, "
                         "train: {epochs: 1, seeds: 1}}",
                         "kind: final\n    input: late"), ["cycle", "uni -> late -> uni"]),
    (lambda t: t.replace("method: mean", "method: mean\n    metod: rnn"), ["step 'late'", "'metod'",
                                                                           "unknown key"]),
    (lambda t: t.replace("hidden: 8", "hiden: 8"), ["step 'uni'", "model.hiden", "unknown key"]),
    (lambda t: t.replace("seeds: 1", "seeds: one"), ["step 'uni'", "train.seeds", "'one'"]),
    (lambda t: t.replace("kind: fuse", "kind: fusion"), ["step 'late'", "'fusion'", "step kind"]),
    (lambda t: t.replace("name: mine\n", ""), ["name", "Field required"]),
])
def test_bad_user_recipe_is_exit_2_naming_file_step_key(edit, words, capsys, corpus, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(edit(GOOD))
    code, _, err = run_cli(capsys, "run", path, "--data", corpus, "--features", "audio", "video",
                           "--target", "arousal", "--out", tmp_path / "o", "--quiet")
    assert code == 2, err
    text = " ".join(err.split())
    assert str(path) in text
    for w in words:
        assert w in text, text
    assert "Traceback" not in err


def test_user_recipe_runs_and_validates(tmp_path, corpus):
    path = tmp_path / "mine.yaml"
    path.write_text(GOOD)
    r = recipes.load(path)
    steps = recipes.resolve(r, features=["audio", "video"], targets=["arousal"])
    assert [s.name for s in steps] == ["uni-audio", "uni-video", "late"]
    with pytest.raises(EmotraceError, match="--features"):
        recipes.resolve(r, features=None, targets=["arousal"])
    with pytest.raises(EmotraceError, match="at least two"):
        recipes.resolve(r, features=["audio"], targets=["arousal"])


def test_ae_fusion_auto_encoders_have_the_regressor_architecture():
    steps = {s.name: s for s in recipes.resolve(recipes.load("muse2021-ae-fusion"),
                                                features=["a", "b"], targets=["arousal"])}
    c = steps["unimodal-a"].spec["config"]
    assert (c["model"]["cell"], c["model"]["hidden"], c["model"]["layers"],
            c["model"]["bidirectional"]) == ("gru", 64, 4, True)
    assert (c["data"]["difficulty"], c["data"]["difficulty_hidden"],
            c["data"]["difficulty_layers"]) == (True, 64, 4)
    late = steps["late"].spec
    assert (late["difficulty"], late["difficulty_hidden"], late["difficulty_layers"]) == (True, 64, 4)


def test_one_model_per_target_as_the_papers_trained():
    """``targets: each``: the MuSe recipes train one model per emotion dimension, and a later step
    that reads them is made once per target, reading that target's runs."""
    two = ["arousal", "valence"]
    base = recipes.resolve(recipes.load("muse2021-baseline"), features=["a"], targets=two)
    assert [(s.name, s.targets) for s in base] == [("run-arousal", ["arousal"]),
                                                  ("run-valence", ["valence"])]
    ae = {s.name: s for s in recipes.resolve(recipes.load("muse2021-ae-fusion"),
                                             features=["a", "b"], targets=two)}
    assert ae["late-valence"].inputs == ["unimodal-a-valence", "unimodal-b-valence"]
    assert ae["late-valence"].spec["config"]["train"]["epochs"] == 20
    p = {s.name: s for s in recipes.resolve(recipes.load("muse2023-personalisation"),
                                            features=["a"], targets=two)}
    assert p["personal-arousal"].inputs == ["general-arousal"]
    # the recommended configurations train one model for both targets, as benchmarked
    ceap = recipes.resolve(recipes.load("ceap360vr-recommended"), features=None, targets=None)
    assert [s.name for s in ceap] == ["run"]


def test_a_step_reading_runs_of_different_targets_is_refused(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text(GOOD.replace("    features: each\n", "    features: each\n    targets: [arousal]\n")
                    + "  other:\n    kind: train\n"
                    + "  both:\n    kind: fuse\n    inputs: [late, other]\n".replace("late", "uni"))
    r = recipes.load(path)
    with pytest.raises(EmotraceError, match="different targets"):
        recipes.resolve(r, features=["audio", "video"], targets=["arousal", "valence"])
