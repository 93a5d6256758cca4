"""Segment-level classification: `emotrace train --task classification`, evaluate, predict."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_corpus, run_cli

import emotrace
from emotrace.config import ModelConfig
from emotrace.data.csvio import read_table
from emotrace.metrics import classification_metrics
from emotrace.models.classifier import SegmentClassifier
from emotrace.run import load_run
from emotrace.train.segments import class_weights

SEG = 15  # steps per segment


def add_class_target(root: Path) -> Path:
    """label_segments/cls/: 4 segments of 15 steps per labelled recording; the class is 1 when
    the segment's mean of audio feature f0 is above the median over the train segments."""
    part = dict(line.split(",")[:2] for line in (root / "metadata" / "partition.csv")
                .read_text().splitlines()[1:])
    means = {}
    for rid in part:
        t = read_table(root / "feature_segments" / "audio" / f"{rid}.csv", first_value_column=2,
                       skip=("segment_id",))
        means[rid] = (t.timestamps, [t.values[i * SEG:(i + 1) * SEG, 0].mean() for i in range(4)])
    cut = np.median([m for rid, (_, ms) in means.items() if part[rid] == "train" for m in ms])
    (root / "label_segments" / "cls").mkdir()
    for rid, (ts, ms) in means.items():
        if part[rid] == "test":
            continue  # unlabelled test recording
        rows = ["timestamp,segment_id,class_id"]
        for i in range(4 * SEG):
            rows.append(f"{int(ts[i])},{10 + i // SEG},{int(ms[i // SEG] > cut)}")
        (root / "label_segments" / "cls" / f"{rid}.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def cls_template(tmp_path_factory) -> Path:
    root = make_corpus(tmp_path_factory.mktemp("clf") / "corpus", subjects=(6, 2, 1),
                       steps=(60, 60))
    return add_class_target(root)


@pytest.fixture
def cls_corpus(cls_template, tmp_path) -> Path:
    return Path(shutil.copytree(cls_template, tmp_path / "corpus"))


TINY = ["--features", "audio", "--target", "cls", "--task", "classification", "--seeds", "1",
        "--hidden", "8", "--layers", "1", "--threads", "1", "--quiet"]


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_train_evaluate_predict(capsys, cls_corpus, tmp_path):
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--data", cls_corpus, "--out", run, "--epochs", "2",
                           *TINY)
    assert code == 0, err
    assert "f1_macro" in err
    for name in ("config.yaml", "checkpoint.pt", "metrics.json"):
        assert (run / name).exists()
    m = json.loads((run / "metrics.json").read_text())
    assert m["task"] == "classification" and m["classes"] == 2 and m["target"] == "cls"
    assert set(m["devel"]) == {"f1_macro", "accuracy", "segments"} and m["devel"]["segments"] == 8
    rows = read_csv(run / "predictions" / "devel" / "S07_1.csv")
    assert list(rows[0]) == ["segment_id", "start", "end", "class_id", "prob_0", "prob_1"]
    assert [r["segment_id"] for r in rows] == ["10", "11", "12", "13"]
    assert rows[1]["start"] == str(15 * 250) and rows[1]["end"] == str(29 * 250)
    for r in rows:
        p = [float(r["prob_0"]), float(r["prob_1"])]
        assert sum(p) == pytest.approx(1, abs=1e-5) and int(r["class_id"]) == int(np.argmax(p))
    test_rows = read_csv(run / "predictions" / "test" / "S09_1.csv")
    assert [r["segment_id"] for r in test_rows] == ["0"]  # unlabelled: the whole recording
    assert isinstance(load_run(run).model, SegmentClassifier)  # weights_only checkpoint

    code, out, err = run_cli(capsys, "evaluate", "--run", run, "--data", cls_corpus,
                             "--partition", "devel")
    assert code == 0, err
    ev = json.loads(out)
    assert ev["f1_macro"] == pytest.approx(m["devel"]["f1_macro"])
    assert ev["accuracy"] == pytest.approx(m["devel"]["accuracy"]) and ev["segments"] == 8
    code, _, err = run_cli(capsys, "predict", "--run", run, "--data", cls_corpus, "--partition",
                           "devel", "--out", tmp_path / "pred")
    assert code == 0, err
    assert read_csv(tmp_path / "pred" / "S07_1.csv") == rows


def test_classifier_learns_and_is_deterministic(cls_corpus, tmp_path):
    cfg = emotrace.RunConfig.model_validate({
        "data": {"features": ["audio"], "targets": ["cls"]},
        "model": {"name": "rnn", "hidden": 16, "layers": 1, "dropout": 0.0},
        "train": {"task": "classification", "epochs": 25, "seeds": 1, "lr": 0.01,
                  "modality_dropout": 0.0, "class_weights": True, "patience": 25}})
    a = emotrace.fit(cls_corpus, out=tmp_path / "a", config=cfg)
    b = emotrace.fit(cls_corpus, out=tmp_path / "b", config=cfg)
    assert a["devel"]["accuracy"] >= 0.75, a["devel"]  # chance is 0.5
    assert b["devel"] == a["devel"]
    for f in (tmp_path / "a" / "predictions" / "devel").glob("*.csv"):
        assert f.read_text() == (tmp_path / "b" / "predictions" / "devel" / f.name).read_text()


def test_bad_task_and_target(capsys, cls_corpus, tmp_path):
    cases = [
        (["--features", "audio", "--target", "arousal", "--task", "classification"],
         "target 'arousal' has no class_id and segment_id columns"),
        (["--features", "audio", "--target", "cls"],
         "target 'cls' holds class ids per segment (class_id). Train it with --task classification"),
        (["--features", "audio", "--target", "cls", "valence", "--task", "classification"],
         "--task classification takes one target"),
    ]
    for i, (args, needle) in enumerate(cases):
        code, out, err = run_cli(capsys, "train", "--data", cls_corpus, "--out", tmp_path / f"r{i}",
                                 "--epochs", "1", "--seeds", "1", "--quiet", *args)
        msg = " ".join(err.split())
        assert code == 2 and "Traceback" not in out + err, err
        assert needle in msg, msg


def test_bad_class_ids(capsys, cls_corpus, tmp_path):
    f = cls_corpus / "label_segments" / "cls" / "S01_1.csv"
    f.write_text(f.read_text().replace(",10,0\n", ",10,-1\n").replace(",10,1\n", ",10,-1\n"))
    code, _, err = run_cli(capsys, "train", "--data", cls_corpus, "--out", tmp_path / "r", *TINY,
                           "--epochs", "1")
    assert code == 2 and "class_id values must be whole numbers 0, 1, ..., K-1" in " ".join(err.split())


def test_pooling_ignores_padding():
    torch.manual_seed(0)
    for name in ("rnn", "attn-rnn", "gcnn-rnn"):
        model = SegmentClassifier(ModelConfig(name=name, hidden=8, layers=1, heads=2), 3, 4).eval()
        x = torch.randn(1, 7, 3)
        padded = torch.cat([x, 100 * torch.randn(1, 5, 3)], 1)
        mask = torch.tensor([[True] * 7 + [False] * 5])
        with torch.no_grad():
            full = model(x, torch.ones(1, 7, dtype=torch.bool))
            assert torch.allclose(model(padded, mask), full, atol=1e-5), name


def _macro_f1(y: list[int], p: list[int], k: int) -> float:
    scores = []
    for c in range(k):
        tp = sum(a == c and b == c for a, b in zip(y, p, strict=True))
        fp = sum(a != c and b == c for a, b in zip(y, p, strict=True))
        fn = sum(a == c and b != c for a, b in zip(y, p, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(scores) / k


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_match_the_formula(seed):
    rng = np.random.default_rng(seed)
    y, p = rng.integers(0, 5, 40), rng.integers(0, 4, 40)  # class 4 is never predicted
    m = classification_metrics(y, p, n_classes=5)
    assert m["f1_macro"] == pytest.approx(_macro_f1(y.tolist(), p.tolist(), 5))
    assert m["accuracy"] == pytest.approx(np.mean(y == p)) and m["segments"] == 40
    y_nan = np.concatenate([y, [np.nan, np.nan]]).astype(float)
    assert classification_metrics(y_nan, np.concatenate([p, [0, 0]]), n_classes=5) == m


def test_class_weights_are_inverse_frequency():
    w = class_weights(np.array([0, 0, 0, 0, 1, 1, 2, 2]), 4)
    assert w.tolist() == pytest.approx([8 / 16, 8 / 8, 8 / 8, 1.0])
