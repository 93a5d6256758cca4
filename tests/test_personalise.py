"""Personalisation (emotrace.workflows.personalise): protocol, selection, scoring, bad input."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_CONFIG, lines, make_corpus, run_cli, write_lines

import emotrace
from emotrace.errors import EmotraceError
from emotrace.metrics import ccc
from emotrace.run import load_run
from emotrace.workflows import personalise as P

CEAP = Path(__file__).resolve().parents[2] / "shared" / "data" / "ceap360vr"
STEP_S = 0.25  # the synthetic corpus' label step


@pytest.fixture(scope="module")
def general(tmp_path_factory) -> tuple[Path, Path]:
    """Two devel subjects with two recordings each, and a general run trained on the corpus."""
    root = make_corpus(tmp_path_factory.mktemp("pers") / "corpus", subjects=(3, 2, 1),
                       recordings_per_subject=2, steps=(40, 60))
    run = root.parent / "run"
    emotrace.fit(root, out=run, config=TINY_CONFIG)
    return root, run


def eval_truth_and_preds(root: Path, out: Path, rows: dict) -> tuple[list, list]:
    """Labels and written predictions of the evaluation steps of one subject."""
    truths, preds = [], []
    skip = rows["steps"]["train"] + rows["steps"]["devel"]
    for rid in rows["recordings"]:
        y = np.array([float(r["value"]) for r in csv.DictReader(
            open(root / "label_segments" / "arousal" / f"{rid}.csv"))])
        p = np.array([float(r["value"]) for r in csv.DictReader(
            open(out / "predictions" / "devel" / f"{rid}.csv"))])
        n = min(skip, len(y))
        truths.append(y[n:])
        preds.append(p[n:])
        skip -= n
    return truths, preds


def test_personalise_cli_protocol_and_scores(general, tmp_path, capsys):
    root, run = general
    out = tmp_path / "p"
    code, stdout, err = run_cli(capsys, "personalise", "--run", run, "--data", root, "--out", out,
                                "--subject-train", "5s", "--subject-devel", "2.5s", "--seeds", "2",
                                "--epochs", "3", "--quiet")
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_subjects"] == 2 and [s["subject"] for s in m["subjects"]] == ["S04", "S05"]
    for s in m["subjects"]:
        total = sum(len(lines(root / "label_segments" / "arousal" / f"{r}.csv")) - 1
                    for r in s["recordings"])
        assert s["steps"] == {"train": 20, "devel": 10, "eval": total - 30}
        assert len(s["seeds"]) == 2
        # the written predictions (kept model) on the evaluation steps give the reported CCC
        truths, preds = eval_truth_and_preds(root, out, s)
        assert ccc(np.concatenate(truths), np.concatenate(preds)) == pytest.approx(
            s["targets"]["arousal"]["personal"], abs=1e-5)
        assert (out / "models" / f"{s['subject']}.pt").exists() == s["personal"]
        if s["personal"]:
            assert s["devel_personal"] > s["devel_general"]
            model = load_run(run).model
            model.load_state_dict(torch.load(out / "models" / f"{s['subject']}.pt",
                                             weights_only=True))
    t = m["targets"]["arousal"]
    gains = [s["targets"]["arousal"]["gain"] for s in m["subjects"]]
    assert t["mean_subject"]["gain"] == pytest.approx(np.mean(gains))
    assert t["global"]["gain"] == pytest.approx(t["global"]["personal"] - t["global"]["general"])
    rows = list(csv.DictReader(open(out / "gains.csv")))
    assert [r["subject"] for r in rows] == ["S04", "S05"]
    assert "all (global)" in stdout and "S05" in stdout


@pytest.mark.parametrize("better", [False, True])
def test_general_model_kept_unless_a_seed_beats_it(general, tmp_path, monkeypatch, better):
    """The selection rule, with fine-tuning replaced by a stub that reports a fixed score."""
    root, run = general
    general_model = load_run(run).model
    shifted = {k: v + 0.5 if k.endswith("bias") else v for k, v in general_model.state_dict().items()}
    calls = []

    def fake(model, subject, *, seed, **kw):
        calls.append(seed)
        return shifted, (1.0 if better else -1.0), 1

    monkeypatch.setattr(P, "finetune", fake)
    # threads=1: the fine-tunings run in this process, where the stub is patched in
    res = emotrace.personalise(run, root, out=tmp_path / "p", subject_train="5s",
                               subject_devel="5s", seeds=3, seed=7, threads=1)
    assert calls == [7, 8, 9] * 2
    for s in res["subjects"]:
        assert s["personal"] is better and s["best_seed"] == (7 if better else None)
        g, q = s["targets"]["arousal"]["general"], s["targets"]["arousal"]["personal"]
        assert (g == q) is (not better)
    assert res["personalised"] == (2 if better else 0)
    assert sorted(p.name for p in (tmp_path / "p" / "models").iterdir()) == \
        (["S04.pt", "S05.pt"] if better else [])


def test_split_follows_labelled_time():
    y = [np.array([[np.nan], [1], [1], [np.nan], [1]]), np.array([[1], [1], [1]])]
    parts = P.split_subject("s", [None, None], y, n_train=2, n_devel=2, step_s=1.0,
                            where=Path("p.csv"), options="")
    # labelled steps: 2 train, then 2 devel (one in each recording), the rest evaluated
    assert [p.tolist() for p in parts] == [[0, 0, 0, 1, 1], [1, 2, 2]]


@pytest.mark.parametrize("text, seconds", [("60s", 60), ("1.5min", 90), ("500ms", 0.5), ("2", 2)])
def test_parse_duration(text, seconds):
    assert P.parse_duration(text) == pytest.approx(seconds)


# --------------------------------------------------------------------------------------------
# bad input: exit 2 and a message


def test_subject_with_too_little_labelled_time(general, tmp_path, capsys):
    root, run = general
    code, _, err = run_cli(capsys, "personalise", "--run", run, "--data", root, "--out",
                           tmp_path / "p", "--subject-train", "60s", "--quiet")
    err = " ".join(err.split())
    assert code == 2 and "Traceback" not in err
    assert "partition.csv" in err and "subject 'S04'" in err and "labelled time" in err
    assert "--subject-train" in err
    assert not (tmp_path / "p").exists()


def test_corpus_without_subject_ids(general, tmp_path, capsys):
    root, run = general
    copy = Path(shutil.copytree(root, tmp_path / "corpus"))
    part = copy / "metadata" / "partition.csv"
    write_lines(part, [",".join(row.split(",")[:2]) for row in lines(part)])  # drop Subject
    code, _, err = run_cli(capsys, "personalise", "--run", run, "--data", copy, "--out",
                           tmp_path / "p", "--subject-train", "5s", "--subject-devel", "5s")
    err = " ".join(err.split())
    assert code == 2 and "Traceback" not in err
    assert str(part) in err and "no Subject column" in err


@pytest.mark.parametrize("args, words", [
    (["--subject-train", "ten"], ["--subject-train 'ten'", "not a duration"]),
    (["--partition", "train"], ["--partition train", "devel or test"]),
    (["--seeds", "0"], ["--seeds 0"]),
])
def test_bad_options(general, tmp_path, capsys, args, words):
    root, run = general
    code, _, err = run_cli(capsys, "personalise", "--run", run, "--data", root, "--out",
                           tmp_path / "p", *args)
    err = " ".join(err.split())
    assert code == 2, err
    for w in words:
        assert w in err


def test_not_a_run(general, tmp_path):
    root, _ = general
    with pytest.raises(EmotraceError, match="run folder not found"):
        emotrace.personalise(tmp_path / "nothing", root, out=tmp_path / "p")


# --------------------------------------------------------------------------------------------
# real data: the CEAP-360VR protocol


@pytest.mark.shared
@pytest.mark.skipif(not CEAP.is_dir(), reason=f"real CEAP-360VR data not found at {CEAP} "
                    "(../shared beside the checkout)")
def test_ceap_first_video_train_second_devel(tmp_path):
    from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from emotrace.datasets import prepare

    root = tmp_path / "ceap"
    prepare("ceap360vr", source=CEAP, out=root)
    cfg = RunConfig(data=DataConfig(features=["head"], targets=["arousal"]),
                    model=ModelConfig(name="rnn", hidden=4, layers=1),
                    train=TrainConfig(epochs=1, seeds=1, threads=1))
    emotrace.fit(root, out=tmp_path / "run", config=cfg)
    res = emotrace.personalise(tmp_path / "run", root, out=tmp_path / "p", seeds=1, epochs=1)
    assert [s["subject"] for s in res["subjects"]] == [f"P{n}" for n in range(21, 27)]
    for s in res["subjects"]:  # 60 s videos at 5 Hz: V1 personal train, V2 personal devel
        assert s["recordings"][:2] == [f"{s['subject']}_V1", f"{s['subject']}_V2"]
        assert s["steps"] == {"train": 300, "devel": 300, "eval": 300 * (len(s["recordings"]) - 2)}
    assert res["protocol"]["step_s"] == pytest.approx(0.2)
    assert len(list((tmp_path / "p" / "predictions" / "devel").iterdir())) == 48


def test_parallel_fine_tuning_gives_the_same_result(general, tmp_path):
    """(subject, seed) fine-tunings in two worker processes or in this one: the same models."""
    root, run = general
    kw = {"subject_train": "5s", "subject_devel": "5s", "seeds": 2, "epochs": 2}
    one = emotrace.personalise(run, root, out=tmp_path / "one", threads=1, **kw)
    two = emotrace.personalise(run, root, out=tmp_path / "two", threads=2, **kw)
    assert [s["seeds"] for s in one["subjects"]] == [s["seeds"] for s in two["subjects"]]
    assert one["targets"] == two["targets"]
