"""``emotrace train --final``: retrain a devel run's configuration on train + devel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, run_cli

import emotrace
from emotrace.data.muse import load_corpus
from emotrace.data.standardise import Standardiser
from emotrace.run import load_run


@pytest.fixture(scope="module")
def devel_run(tmp_path_factory, corpus_template) -> Path:
    """A devel run whose best epoch is known (4 epochs, 2 seeds)."""
    from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    cfg = RunConfig(data=DataConfig(features=["audio"], targets=["arousal"]),
                    model=ModelConfig(hidden=8, layers=1), train=TrainConfig(epochs=4, seeds=2, seed=3))
    out = tmp_path_factory.mktemp("final") / "devel_run"
    emotrace.fit(corpus_template, out=out, config=cfg)
    return out


def test_final_from_devel_run(devel_run, corpus, tmp_path, capsys):
    src = json.loads((devel_run / "metrics.json").read_text())
    out = tmp_path / "final"
    code, _, err = run_cli(capsys, "train", "--data", corpus, "--out", out, "--final", "--from",
                           devel_run, "--quiet")
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    assert m["devel"] is None
    f = m["final"]
    assert f["epochs"] == src["best_epoch"] and f["seed"] == src["best_seed"]
    assert f["early_stopping"] is False and f["trained_on"] == ["train", "devel"]
    assert len(m["seeds"]) == 1 and m["seeds"][0]["epochs"] == src["best_epoch"]
    run = load_run(out)
    assert run.config.model == load_run(devel_run).config.model
    assert run.config.train.epochs == src["best_epoch"] and run.config.train.seeds == 1
    # devel is training data now: its predictions sit with train's, and the standardiser is
    # fitted on train + devel
    assert (out / "predictions" / "train" / "S04_1.csv").exists()
    assert not (out / "predictions" / "devel").exists()
    c = load_corpus(corpus, features=["audio"], targets=["arousal"])
    expected = Standardiser.fit(c.partition("train") + c.partition("devel"), ["audio"])
    np.testing.assert_allclose(run.standardiser.mean["audio"], expected.mean["audio"], rtol=1e-5)
    assert not np.allclose(run.standardiser.mean["audio"], load_run(devel_run).standardiser.mean["audio"])
    assert "final model on train + devel" in " ".join(err.split())


def test_final_with_explicit_epochs_trains_exactly_that_many(corpus, tmp_path, capsys):
    out = tmp_path / "final"
    code, _, err = run_cli(capsys, "train", "--data", corpus, "--features", "audio", "--target",
                           "arousal", "--out", out, *TINY, "--final", "--epochs", "3",
                           "--patience", "1")
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    assert m["final"]["epochs"] == 3 and m["final"]["epochs_from"] == "--epochs"
    assert [h["epoch"] for h in m["seeds"][0]["history"]] == [1, 2, 3]  # patience 1 is moot
    assert all(h["devel_ccc"] is None for h in m["seeds"][0]["history"])


@pytest.mark.parametrize("case", ["no_epochs", "from_without_final", "not_a_run", "final_of_final"])
def test_final_bad_input(case, devel_run, corpus, tmp_path, capsys):
    base = ["train", "--data", corpus, "--out", tmp_path / "out", "--quiet"]
    if case == "no_epochs":
        args, words = [*base, "--features", "audio", "--target", "arousal", "--final"], \
            ["--final needs --from RUN", "--epochs"]
    elif case == "from_without_final":
        args, words = [*base, "--from", devel_run], ["--from RUN goes with --final"]
    elif case == "not_a_run":
        (tmp_path / "empty").mkdir()
        args, words = [*base, "--final", "--from", tmp_path / "empty"], \
            [str(tmp_path / "empty"), "not a finished run"]
    else:
        emotrace.fit_final(corpus, out=tmp_path / "f1", run=devel_run)
        args, words = [*base, "--final", "--from", tmp_path / "f1"], ["is itself a --final run"]
    code, _, err = run_cli(capsys, *args)
    err = " ".join(err.split())
    assert code == 2, err
    assert "Traceback" not in err
    for w in words:
        assert w in err
