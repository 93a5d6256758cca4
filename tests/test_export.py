"""ONNX export: ONNX Runtime outputs equal the PyTorch pipeline (max abs diff < 1e-4)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from helpers import run_cli

import emotrace
from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from emotrace.errors import EmotraceError
from emotrace.export import check_onnx, random_features, reference_predictions
from emotrace.run import load_run

ort = pytest.importorskip("onnxruntime", reason="the export extra (onnxruntime) is not installed")
onnx = pytest.importorskip("onnx", reason="the export extra (onnx) is not installed")

FEATURES = ["audio", "video"]


def _fit(root, out, *, per_recording=(), targets=("arousal",), **model):
    cfg = RunConfig(
        data=DataConfig(features=FEATURES, targets=list(targets), per_recording=list(per_recording)),
        model=ModelConfig(**({"hidden": 8, "layers": 2, "channels": 6, "heads": 2} | model)),
        train=TrainConfig(epochs=1, seeds=1, seed=1))
    emotrace.fit(root, out=out, config=cfg)
    return out


@pytest.mark.parametrize("name", ["rnn", "attn-rnn", "gcnn-rnn"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_onnx_equals_pytorch(corpus_template, tmp_path, name, cell, bidirectional):
    targets = ("arousal", "valence") if cell == "lstm" else ("arousal",)
    run = _fit(corpus_template, tmp_path / "run", name=name, cell=cell, bidirectional=bidirectional,
               targets=targets)
    path = emotrace.export(run, out=tmp_path / "m.onnx")
    assert check_onnx(path, run, steps=37) < 1e-4
    # dynamic batch and time: three sequences of another length in one call
    r = load_run(run)
    xs = [random_features(r, steps=23, seed=s) for s in range(3)]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"features": np.stack(xs)})[0]
    assert got.shape == (3, 23, len(targets))
    want = np.stack([reference_predictions(r, x) for x in xs])
    assert np.abs(got - want).max() < 1e-4
    assert np.std(want[..., 0]) > 1e-4  # not a constant model
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["emotrace.features"]) == FEATURES
    assert json.loads(meta["emotrace.dims"]) == {"audio": 16, "video": 8}
    assert json.loads(meta["emotrace.targets"]) == list(targets)
    if not bidirectional:  # the one-step graph with explicit state
        step = emotrace.export(run, out=tmp_path / "s.onnx", streaming=True)
        assert check_onnx(step, run, steps=29) < 1e-4
        names = [i.name for i in ort.InferenceSession(str(step)).get_inputs()]
        assert names[0] == "features" and "h" in names


def test_per_recording_zscore_is_baked_in(corpus_template, tmp_path):
    run = _fit(corpus_template, tmp_path / "run", name="rnn", per_recording=["video"])
    path = emotrace.export(run, out=tmp_path / "m.onnx")
    assert check_onnx(path, run, steps=41) < 1e-4


def test_cli_export(capsys, tiny_run, tmp_path):
    code, _, err = run_cli(capsys, "export", "--run", tiny_run, "--format", "onnx", "--out",
                           tmp_path / "out" / "model.onnx", "--quiet")
    assert code == 0, err
    assert (tmp_path / "out" / "model.onnx").stat().st_size > 1000
    diff = float(err.split("max |onnxruntime - pytorch| = ")[1].split()[0])
    assert diff < 1e-4


def test_cli_unknown_format_and_missing_run(capsys, tiny_run, tmp_path):
    code, _, err = run_cli(capsys, "export", "--run", tiny_run, "--format", "tflite", "--out",
                           tmp_path / "m")
    assert code == 2 and "tflite" in err
    code, _, err = run_cli(capsys, "export", "--run", tmp_path / "nope", "--out", tmp_path / "m")
    assert code == 2 and "run folder not found" in err


def test_missing_onnx_package_names_the_extra(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(EmotraceError, match=r'pip install "emotrace\[export\]"'):
        emotrace.export(tiny_run, out=tmp_path / "m.onnx")


def test_fused_and_classification_runs_are_refused(capsys, corpus, tmp_path):
    fused = tmp_path / "fused"
    fused.mkdir()
    (fused / "config.yaml").write_text("fusion:\n  method: mean\n  runs: [a, b]\n")
    code, _, err = run_cli(capsys, "export", "--run", fused, "--out", tmp_path / "m.onnx")
    assert code == 2 and "late-fusion run" in err and "fusion.runs" in err
    # a segment classifier: one class per recording (segment 0), alternating
    labels = corpus / "label_segments"
    (labels / "mood").mkdir()
    for i, f in enumerate(sorted((labels / "arousal").glob("*.csv"))):
        ts = [line.split(",")[0] for line in f.read_text().splitlines()[1:]]
        (labels / "mood" / f.name).write_text(
            "timestamp,segment_id,class_id\n" + "".join(f"{t},0,{i % 2}\n" for t in ts))
    code, _, err = run_cli(capsys, "train", "--data", corpus, "--features", "audio", "--target", "mood",
                           "--task", "classification", "--out", tmp_path / "cls", "--epochs", "1",
                           "--seeds", "1", "--hidden", "8", "--layers", "1", "--quiet")
    assert code == 0, err
    code, _, err = run_cli(capsys, "export", "--run", tmp_path / "cls", "--out", tmp_path / "m.onnx")
    assert code == 2 and "classification run" in err and "emotrace predict" in err
    with pytest.raises(EmotraceError, match="classification run"):
        emotrace.StreamingPredictor(tmp_path / "cls")
