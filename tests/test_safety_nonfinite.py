"""Issue 12, item 4: non-finite training is a failure, not a result.

A NaN or infinite loss (or weights, or held-out score) stops training with exit 2 saying what was
non-finite and the likely cause; ``inf``/``nan`` option values are refused; a model whose
predictions are non-finite is never reported as a success; ``ccc`` of non-finite predictions is
NaN (as ``audmetric.concordance_cc``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY, TINY_CONFIG, run_cli, set_cell, snapshot
from test_cli_errors import bad, error_message, train_args

import emotrace
from emotrace.errors import EmotraceError
from emotrace.metrics import ccc, pcc, rmse, trace_metrics

AROUSAL = Path("label_segments/arousal/S01_1.csv")


def _no_result(run: Path) -> None:
    assert not (run / "checkpoint.pt").exists() and not (run / "metrics.json").exists()


def test_huge_label_stops_training(capsys, corpus, tmp_path):
    set_cell(corpus / AROUSAL, 5, 1, "1e30")
    before = snapshot(corpus)
    code, out, err = run_cli(capsys, *train_args(corpus, tmp_path / "run"))
    assert err.startswith("error:"), err  # the paragraph alone: no numpy overflow warning first
    msg = error_message(code, out, err)
    for name in ("diverged", "seed 0", "epoch 1", "1e30", "--lr"):
        assert name in msg, msg
    assert "nan" in msg or "inf" in msg  # what was non-finite
    _no_result(tmp_path / "run")
    assert snapshot(corpus) == before


def test_huge_learning_rate_stops_training(capsys, corpus, tmp_path):
    msg = bad(capsys, *train_args(corpus, tmp_path / "run", "--epochs", "5", "--lr", "1e30"),
              names=("diverged", "--lr"))
    assert "not finite" in msg or "nan" in msg or "inf" in msg
    _no_result(tmp_path / "run")


@pytest.mark.parametrize("what", ["score", "weights"])
def test_loop_stops_on_a_nonfinite_score_or_weights(what):
    """The one fit loop (every kind of training) checks the held-out score and the weights too:
    a model that predicts NaN is never kept as the best epoch."""
    from torch import nn

    from emotrace.train.loop import Schedule, Task, fit_task

    def loss(model, idx):
        if what == "weights":
            with torch.no_grad():
                model.weight.fill_(math.inf)  # e.g. an optimiser step that overflowed
        return (model(torch.ones(len(idx), 1)) ** 2).mean()

    score = (lambda m: (math.nan, {})) if what == "score" else (lambda m: (0.0, {}))
    task = Task(lambda: nn.Linear(1, 1), 4, loss, score)
    with pytest.raises(EmotraceError, match="diverged at seed 3, epoch 1"):
        fit_task(task, Schedule(epochs=3, lr=0.1, batch_size=2), [3])


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity"])
@pytest.mark.parametrize("option", ["--lr", "--weight-decay", "--clip", "--dropout"])
def test_train_refuses_nonfinite_options(capsys, corpus, tmp_path, option, value):
    bad(capsys, *train_args(corpus, tmp_path / "run", option, value), names=(option, "finite"))
    assert not (tmp_path / "run").exists()


def test_config_file_refuses_nonfinite(capsys, corpus, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("data: {features: [audio], targets: [arousal]}\ntrain: {lr: .inf}\n")
    bad(capsys, "train", "--data", corpus, "--config", config, "--out", tmp_path / "run",
        "--quiet", names=(config, "train.lr", "finite"))


@pytest.mark.parametrize("args", [
    ["personalise", "--run", "{run}", "--data", "{corpus}", "--out", "{tmp}/p", "--lr", "inf"],
    ["fuse", "--runs", "{run}", "{run}", "--data", "{corpus}", "--out", "{tmp}/f", "--method",
     "mean", "--seed", "0", "--epochs", "2", "--hidden", "4", "--threads", "0"],
    ["classes", "--data", "{corpus}", "--target", "arousal", "--min-class-share", "nan"],
    ["extract", "physio", "--signals", "{tmp}", "--feature-set", "bio", "--rate", "inf", "--out",
     "{tmp}/c"],
], ids=["personalise", "fuse-control", "classes", "extract"])
def test_other_verbs_refuse_nonfinite_numbers(capsys, corpus, tiny_run, tmp_path, args):
    args = [a.format(run=tiny_run, corpus=corpus, tmp=tmp_path) for a in args]
    before = snapshot(tmp_path)
    if args[0] == "fuse":  # the control: finite numbers pass the check (and fuse works)
        code, _, err = run_cli(capsys, *args, "--quiet")
        assert code == 0, err
        return
    bad(capsys, *args, "--quiet", names=("finite",))
    assert snapshot(tmp_path) == before


def _nan_weights(run: Path) -> None:
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    ckpt["model"] = {k: torch.full_like(v, math.nan) if v.is_floating_point() else v
                     for k, v in ckpt["model"].items()}
    torch.save(ckpt, run / "checkpoint.pt")


def test_evaluate_of_nonfinite_predictions(capsys, corpus, tiny_run):
    _nan_weights(tiny_run)
    msg = bad(capsys, "evaluate", "--run", tiny_run, "--data", corpus, "--quiet",
              names=(tiny_run, "NaN or infinite", "'S04_1'"))
    assert "ccc" not in msg.lower() or "nan" in msg.lower()
    assert not (tiny_run / "eval_devel.json").exists()


def test_predict_of_nonfinite_predictions(capsys, corpus, tiny_run, tmp_path):
    _nan_weights(tiny_run)
    bad(capsys, "predict", "--run", tiny_run, "--data", corpus, "--partition", "devel", "--out",
        tmp_path / "p", "--quiet", names=("NaN or infinite", "nothing was written"))
    assert not any((tmp_path / "p").rglob("*.csv"))


def test_fit_api_raises(corpus, tmp_path):
    config = TINY_CONFIG.model_copy(deep=True)
    config.train.lr = 1e30
    config.train.epochs = 5
    with pytest.raises(EmotraceError, match="diverged"):
        emotrace.fit(corpus, out=tmp_path / "run", config=config)


# ---------------------------------------------------------------------------------------------
# metrics: NaN in, NaN out (audmetric.concordance_cc does the same)


def _ccc_formula(y, p) -> float:
    y, p = np.asarray(y, float), np.asarray(p, float)
    return 2 * np.cov(y, p, bias=True)[0, 1] / (y.var() + p.var() + (y.mean() - p.mean()) ** 2)


@pytest.mark.parametrize("bad_value", [math.nan, math.inf, -math.inf])
def test_metrics_of_nonfinite_predictions_are_nan(bad_value):
    y = [0.0, 1.0, 2.0, 3.0]
    p = [0.1, bad_value, 2.2, 2.9]
    assert math.isnan(ccc(y, p)) and math.isnan(pcc(y, p)) and math.isnan(rmse(y, p))
    assert math.isnan(trace_metrics([np.array([0.0, 1, 1, 0])], [np.array(p)])["auroc"])


def test_metrics_ignore_predictions_where_truth_is_missing():
    """A NaN prediction at a step without a label is not scored (the step is left out)."""
    y = [0.0, math.nan, 2.0, 3.0]
    p = [0.1, math.nan, 2.2, 2.9]
    assert ccc(y, p) == pytest.approx(_ccc_formula([0, 2, 3], [0.1, 2.2, 2.9]))


def test_nonfinite_options_untouched_by_a_finite_run(capsys, corpus, tmp_path):
    """The control for the tests above: the same command with finite numbers trains."""
    code, _, err = run_cli(capsys, *train_args(corpus, tmp_path / "run", "--lr", "0.003"))
    assert code == 0, err
    assert (tmp_path / "run" / "metrics.json").exists()


def test_tiny_flags_are_finite():
    assert "inf" not in TINY and "nan" not in TINY
