"""StreamingPredictor: step-by-step outputs equal whole-recording predictions; state size."""

from __future__ import annotations

import time

import numpy as np
import pytest
from helpers import run_cli

import emotrace
from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from emotrace.data.muse import load_corpus
from emotrace.errors import EmotraceError
from emotrace.streaming import StreamingPredictor
from emotrace.train.predict import predict_arrays

FEATURES = ["audio", "video"]


def _fit(root, out, *, targets=("arousal",), per_recording=(), **model):
    cfg = RunConfig(
        data=DataConfig(features=FEATURES, targets=list(targets), per_recording=list(per_recording)),
        model=ModelConfig(**({"hidden": 8, "layers": 2, "channels": 6, "heads": 2,
                              "bidirectional": False} | model)),
        train=TrainConfig(epochs=1, seeds=1, seed=3))
    emotrace.fit(root, out=out, config=cfg)
    return out


@pytest.fixture(scope="module")
def devel_rec(corpus_template):
    c = load_corpus(corpus_template, features=FEATURES, targets=["arousal", "valence"])
    return c.partition("devel")[0]


@pytest.mark.parametrize("name", ["rnn", "gcnn-rnn", "attn-rnn"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_steps_equal_whole_sequence(corpus_template, tmp_path, devel_rec, name, cell):
    targets = ("arousal", "valence") if cell == "lstm" else ("arousal",)
    run = _fit(corpus_template, tmp_path / "run", targets=targets, name=name, cell=cell, kernel=4)
    sp = StreamingPredictor(run)
    r = sp.run
    want = predict_arrays(r.model, [r.standardiser.transform(devel_rec, FEATURES)])[0]
    raw = devel_rec.stack(FEATURES)
    got = np.stack([sp.step(row) for row in raw])
    assert got.shape == (len(devel_rec), len(targets))
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    # the whole-sequence predictions are not trivially constant, so equality means something
    assert np.std(want[:, 0]) > 1e-4
    # the same through `emotrace predict` files (written with float32 precision)
    files = emotrace.predict(run, corpus_template, partition="devel", out=tmp_path / "pred")
    col = "value" if len(targets) == 1 else targets[0]
    (path,) = [f for f in files if f.stem == devel_rec.id]
    header = path.read_text().splitlines()[0].split(",")
    table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    np.testing.assert_allclose(got[:, 0], table[:, header.index(col)], atol=1e-4)


def test_state_is_constant_except_attention(corpus_template, tmp_path, devel_rec):
    raw = devel_rec.stack(FEATURES)
    sizes = {}
    for name in ("rnn", "gcnn-rnn", "attn-rnn"):
        sp = StreamingPredictor(_fit(corpus_template, tmp_path / name, name=name))
        sp.step(raw[0])
        first = sp.state_bytes()
        for row in raw[1:]:
            sp.step(row)
        sizes[name] = (first, sp.state_bytes())
    assert sizes["rnn"][0] == sizes["rnn"][1] > 0
    assert sizes["gcnn-rnn"][0] == sizes["gcnn-rnn"][1] > sizes["rnn"][0]
    # attention keeps one hidden vector (8 float32) per past step
    assert sizes["attn-rnn"][1] - sizes["attn-rnn"][0] == (len(raw) - 1) * 8 * 4


def test_reset_dict_input_and_nan(corpus_template, tmp_path, devel_rec):
    sp = StreamingPredictor(_fit(corpus_template, tmp_path / "run", name="gcnn-rnn"))
    raw = devel_rec.stack(FEATURES)
    a = np.stack([sp.step(row) for row in raw[:10]])
    assert sp.steps == 10
    sp.reset()
    split = {"audio": raw[:10, :16], "video": raw[:10, 16:]}
    b = np.stack([sp.step({f: split[f][t] for f in FEATURES}) for t in range(10)])
    np.testing.assert_array_equal(a, b)
    # NaN (a missing value) counts as the train mean, i.e. 0 after standardisation
    sp.reset()
    mean = np.concatenate([sp.run.standardiser.mean[f] for f in FEATURES])
    row = raw[0].copy()
    row[3] = np.nan
    with_nan = sp.step(row)
    sp.reset()
    row[3] = mean[3]
    np.testing.assert_allclose(sp.step(row), with_nan, atol=1e-6)


def test_latency_is_measurable(corpus_template, tmp_path, devel_rec):
    sp = StreamingPredictor(_fit(corpus_template, tmp_path / "run", name="rnn", hidden=64))
    raw = devel_rec.stack(FEATURES)
    start = time.perf_counter()
    for row in raw:
        sp.step(row)
    per_step = (time.perf_counter() - start) / len(raw)
    assert 0 < per_step < 0.05  # generous: the benchmark measures the real figure on an idle core


def test_bidirectional_is_refused(tiny_run):
    with pytest.raises(EmotraceError, match="bidirectional.*--unidirectional"):
        StreamingPredictor(tiny_run)


def test_per_recording_is_refused(corpus_template, tmp_path):
    run = _fit(corpus_template, tmp_path / "run", name="rnn", per_recording=["video"])
    with pytest.raises(EmotraceError, match="per_recording"):
        StreamingPredictor(run)


def test_wrong_input_size(corpus_template, tmp_path):
    sp = StreamingPredictor(_fit(corpus_template, tmp_path / "run", name="rnn"))
    with pytest.raises(EmotraceError, match="23 feature values.*expects 24"):
        sp.step(np.zeros(23))
    with pytest.raises(EmotraceError, match=r"'video' has 3 values.*expects 8"):
        sp.step({"audio": np.zeros(16), "video": np.zeros(3)})
    with pytest.raises(EmotraceError, match=r"\['video'\] missing"):
        sp.step({"audio": np.zeros(16)})


def test_cli_streaming_export_of_bidirectional_exits_2(capsys, tiny_run, tmp_path):
    code, _, err = run_cli(capsys, "export", "--run", tiny_run, "--out", tmp_path / "m.onnx",
                           "--streaming", "--quiet")
    assert code == 2
    assert "bidirectional" in err and "config.yaml" in err and "Traceback" not in err
    assert not (tmp_path / "m.onnx").exists()


def test_a_run_with_difficulty_channels_is_refused(corpus, tmp_path):
    from helpers import TINY_CONFIG

    import emotrace

    cfg = TINY_CONFIG.model_copy(deep=True)
    cfg.data.difficulty = True
    cfg.model.bidirectional = False
    out = tmp_path / "diff"
    emotrace.fit(corpus, out=out, config=cfg)
    with pytest.raises(emotrace.EmotraceError, match="--difficulty"):
        emotrace.StreamingPredictor(out)
