"""The memory-mapped corpus cache (emotrace.data.cache), lazily standardised inputs
(emotrace.data.inputs) and windows cut on demand (emotrace.data.windows.Windows): a mapped corpus
gives exactly what an in-memory one gives, stale entries are rebuilt, and a cache that cannot be
written (unwritable folder, full disk) leaves the corpus uncached, says so once and leaves no
half-written entry."""

from __future__ import annotations

import os
import pickle
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_CONFIG, lines, make_corpus, run_cli, write_lines

import emotrace
import emotrace.data.cache as cache
import emotrace.data.muse as muse
from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from emotrace.data.cache import CACHE_DIR, MappedArray
from emotrace.data.inputs import Inputs
from emotrace.data.muse import load_corpus
from emotrace.data.standardise import Standardiser
from emotrace.data.windows import Windows, make_windows, recording_batches
from emotrace.errors import EmotraceWarning
from emotrace.train.predict import predict_arrays


@pytest.fixture(autouse=True)
def _fresh_reports(monkeypatch):
    """Each test sees the "said once" of cache problems afresh."""
    monkeypatch.setattr(cache, "_REPORTED", set())


def _mapped(root: Path, **kw):
    load_corpus(root, **kw)  # parse and write the cache
    return load_corpus(root, **kw)


def _uncached(monkeypatch):
    """Make every load (also inside evaluate / predict) parse into memory, without the cache."""
    real = muse.read_tables

    def no_cache(root, jobs, **kw):
        return real(root, jobs, **{**kw, "cache": False})

    monkeypatch.setattr(muse, "read_tables", no_cache)


def test_cached_values_are_memory_mapped_and_pickle_as_their_path(tmp_path):
    root = make_corpus(tmp_path / "c")
    c = _mapped(root, features=["audio"], targets=["arousal"])
    x = c.recordings[0].features["audio"]
    assert isinstance(x, MappedArray) and not x.flags.writeable
    assert Path(x.filename).parent == root / CACHE_DIR and str(x.filename).endswith(".npy")
    assert len(pickle.dumps(x)) < 300 < x.nbytes  # a path, not the data
    back = pickle.loads(pickle.dumps(x))
    assert isinstance(back, MappedArray) and np.array_equal(back, x)
    # every .npy has the .meta that vouches for it, and no temporary file is left
    names = sorted(p.name for p in (root / CACHE_DIR).iterdir())
    assert len(names) == 20 and not [n for n in names if n.endswith(".tmp")]
    assert {n[:-4] for n in names if n.endswith(".npy")} == {n[:-5] for n in names
                                                           if n.endswith(".meta")}


def test_mapped_and_in_memory_give_identical_batches(tmp_path):
    root = make_corpus(tmp_path / "c", steps=(30, 90))
    feats = ["audio", "video"]
    mapped = _mapped(root, features=feats, targets=["arousal"])
    memory = load_corpus(root, features=feats, targets=["arousal"], cache=False)
    assert not isinstance(memory.recordings[0].features["audio"], np.memmap)
    stds = []
    for c in (mapped, memory):
        train = c.partition("train")
        stds.append(Standardiser.fit(train, feats, per_recording=("video",)))
    assert all(np.array_equal(stds[0].mean[f], stds[1].mean[f]) for f in feats)
    assert all(np.array_equal(stds[0].std[f], stds[1].std[f]) for f in feats)
    train_m, train_r = mapped.partition("train"), memory.partition("train")
    lazy = Inputs(train_m, stds[0], feats)
    whole = [stds[1].transform(r, feats) for r in train_r]
    ys = [r.targets(["arousal"]) for r in train_r]
    for i, x in enumerate(whole):
        assert np.array_equal(lazy[i], x)
        assert np.array_equal(lazy.rows(i, 7, 19), x[7:19])
    # windows cut on demand equal the rows of the one stacked tensor, mapped or in memory
    for win, hop, max_len, last in ((0, 1, 0, "end-aligned"), (16, 8, 0, "end-aligned"),
                                    (16, 12, 0, "shorter"), (0, 1, 40, "end-aligned")):
        windows = Windows(lazy, ys, win=win, hop=hop, max_len=max_len, last=last)
        in_memory = Windows(whole, ys, win=win, hop=hop, max_len=max_len, last=last)
        idx = np.arange(len(windows))[::-1][:5].copy()
        batch, other = windows.batch(idx), in_memory.batch(idx)
        assert np.array_equal(batch.x.numpy(), other.x.numpy())
        assert np.array_equal(batch.y.numpy(), other.y.numpy(), equal_nan=True)
        if not max_len:
            stacked = make_windows(whole, ys, win=win, hop=hop, last=last)
            assert len(windows) == stacked.x.shape[0]
            assert np.array_equal(batch.x.numpy(), stacked.x[idx].numpy())
            assert np.array_equal(batch.mask.numpy(), stacked.mask[idx].numpy())
        else:
            assert windows.steps == max_len
    # evaluation batches
    got = [(idx, b.x.numpy()) for idx, b in recording_batches(lazy, ys)]
    want = [(idx, b.x.numpy()) for idx, b in recording_batches(whole, ys)]
    assert all(a[0] == b[0] and np.array_equal(a[1], b[1]) for a, b in zip(got, want, strict=True))


def test_long_recordings_train_as_windows_of_max_len():
    xs = [np.zeros((n, 3), np.float32) for n in (30, 100, 41)]
    ys = [np.zeros((len(x), 1), np.float32) for x in xs]
    w = Windows(xs, ys, win=0, hop=1, max_len=40)
    assert w.steps == 40
    assert [(i, s, e) for i, s, e in w.items if i == 0] == [(0, 0, 30)]  # short: whole
    assert [(s, e) for i, s, e in w.items if i == 1] == [(0, 40), (20, 60), (40, 80), (60, 100)]
    assert [(s, e) for i, s, e in w.items if i == 2] == [(0, 40), (1, 41)]
    assert w.batch([0, 1]).x.shape == (2, 40, 3)
    assert Windows(xs, ys, win=0, hop=1, max_len=0).steps == 100  # 0: always whole


def test_training_evaluation_and_prediction_are_identical_mapped_or_in_memory(
        tmp_path, monkeypatch):
    root = make_corpus(tmp_path / "c")
    config = RunConfig(data=DataConfig(features=["audio", "video"], targets=["arousal"],
                                       per_recording=["video"], max_len=30),
                       model=ModelConfig(hidden=8, layers=1), train=TrainConfig(epochs=2, seeds=2))
    mapped = _mapped(root, features=["audio", "video"], targets=["arousal"])
    assert isinstance(mapped.recordings[0].features["audio"], MappedArray)
    m_mapped = emotrace.fit(root, out=tmp_path / "mapped", config=config, corpus=mapped)
    ev_mapped = emotrace.evaluate(tmp_path / "mapped", root, partition="devel")
    emotrace.predict(tmp_path / "mapped", root, partition="test", out=tmp_path / "p_mapped")

    _uncached(monkeypatch)
    memory = load_corpus(root, features=["audio", "video"], targets=["arousal"])
    assert not isinstance(memory.recordings[0].features["audio"], np.memmap)
    m_memory = emotrace.fit(root, out=tmp_path / "memory", config=config, corpus=memory)
    ev_memory = emotrace.evaluate(tmp_path / "memory", root, partition="devel")
    emotrace.predict(tmp_path / "memory", root, partition="test", out=tmp_path / "p_memory")

    assert m_mapped["devel"] == m_memory["devel"]
    assert [s["devel"] for s in m_mapped["seeds"]] == [s["devel"] for s in m_memory["seeds"]]
    assert ev_mapped == ev_memory
    for part in ("train", "devel", "test"):
        for f in sorted((tmp_path / "mapped" / "predictions" / part).glob("*.csv")):
            assert f.read_bytes() == (tmp_path / "memory" / "predictions" / part / f.name).read_bytes()
    for f in sorted((tmp_path / "p_mapped").glob("*.csv")):
        assert f.read_bytes() == (tmp_path / "p_memory" / f.name).read_bytes()


def test_an_edited_source_rebuilds_its_mapped_entry(tmp_path):
    root = make_corpus(tmp_path / "c")
    first = _mapped(root, features=["audio"], targets=["arousal"])
    old = np.array(first.recordings[0].features["audio"])
    path = root / "feature_segments/audio/S01_1.csv"
    rows = lines(path)
    cells = rows[1].split(",")
    cells[2] = "123.5"
    rows[1] = ",".join(cells)
    write_lines(path, rows)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a coarse clock
    again = load_corpus(root, features=["audio"], targets=["arousal"])
    x = again.recordings[0].features["audio"]
    assert isinstance(x, MappedArray)  # rebuilt, and mapped from the new entry
    assert x[0, 0] == np.float32(123.5) and np.array_equal(x[1:], old[1:])
    assert len(list((root / CACHE_DIR).glob("*.npy"))) == 10  # replaced, not added


def test_a_values_file_that_does_not_match_its_entry_is_reparsed(tmp_path, monkeypatch):
    root = make_corpus(tmp_path / "c")
    first = np.array(_mapped(root, features=["audio"], targets=["arousal"]).recordings[0]
                     .features["audio"])
    entry = next(iter(sorted((root / CACHE_DIR).glob("S01_1-*.npy"))))
    arr = np.load(entry)
    st = entry.stat()
    entry.unlink()  # e.g. another process wrote it after this .meta
    np.save(entry, np.zeros_like(arr))
    os.utime(entry, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    calls = []
    real = cache.read_table
    monkeypatch.setattr(cache, "read_table", lambda p, **kw: calls.append(p) or real(p, **kw))
    again = load_corpus(root, features=["audio"], targets=["arousal"])
    assert len(calls) == 1
    assert np.array_equal(again.recordings[0].features["audio"], first)


def test_an_unwritable_cache_folder_works_uncached_and_says_so_once(tmp_path, capsys):
    root = make_corpus(tmp_path / "c")
    (root / CACHE_DIR).write_text("a file where the cache folder would go")
    with pytest.warns(EmotraceWarning, match=r"cache cannot be written.*loaded uncached") as rec:
        c1 = load_corpus(root, features=["audio"], targets=["arousal"])
        c2 = load_corpus(root, features=["audio"], targets=["arousal"])
    assert len([w for w in rec if issubclass(w.category, EmotraceWarning)]) == 1
    assert str(root / CACHE_DIR) in str(rec[0].message)
    assert not isinstance(c1.recordings[0].features["audio"], np.memmap)
    assert np.array_equal(c1.recordings[0].features["audio"], c2.recordings[0].features["audio"])
    # on the command line: one warning line, and the command succeeds
    cache._REPORTED.clear()
    code, out, err = run_cli(capsys, "data", "check", root, "--quiet")
    assert code == 0, err
    assert err.count("cache cannot be written") == 1 and "warning:" in err
    assert "Traceback" not in err


def test_cache_folder_of_a_read_only_corpus_works_uncached(tmp_path, capsys):
    """A corpus on a read-only mount (a real user case): permission bits do not stop root, so
    the test makes the cache folder's place a file instead, as above, and checks train too."""
    root = make_corpus(tmp_path / "c")
    (root / CACHE_DIR).write_text("x")
    from helpers import TINY

    code, _, err = run_cli(capsys, "train", "--data", root, "--features", "audio", "--target",
                           "arousal", "--out", tmp_path / "run", *TINY)
    assert code == 0, err
    assert err.count("cache cannot be written") == 1


def test_a_disk_that_fills_while_the_cache_is_written_leaves_no_half_entry(
        tmp_path, small_disk, capsys):
    root = make_corpus(tmp_path / "c", steps=(200, 220))
    memory = load_corpus(root, features=["audio", "video"], targets=["arousal"], cache=False)
    corpus = Path(shutil.copytree(root, small_disk / "c"))
    free = shutil.disk_usage(small_disk).free
    with open(small_disk / "filler", "wb") as f:  # leave room for a few entries, not all
        f.write(b"\0" * max(free - 40_000, 0))
    with pytest.warns(EmotraceWarning, match="no space left") as rec:
        c = load_corpus(corpus, features=["audio", "video"], targets=["arousal"])
    message = str(rec[0].message)
    assert str(corpus / CACHE_DIR) in message and "loaded uncached" in message
    for a, b in zip(c, memory, strict=True):  # the corpus loads all the same
        assert np.array_equal(a.features["audio"], b.features["audio"])
        assert np.array_equal(a.features["video"], b.features["video"], equal_nan=True)
    names = [p.name for p in (corpus / CACHE_DIR).iterdir()]
    assert not [n for n in names if n.endswith(".tmp") or n.startswith(".")]
    assert {n[:-4] for n in names if n.endswith(".npy")} == {n[:-5] for n in names
                                                           if n.endswith(".meta")}
    for n in names:  # every entry left is whole and readable
        if n.endswith(".npy"):
            np.load(corpus / CACHE_DIR / n)
    # on the command line: exit 0, one warning naming the entry that ran out of space
    (small_disk / "filler").unlink()
    shutil.rmtree(corpus / CACHE_DIR)
    with open(small_disk / "filler", "wb") as f:
        f.write(b"\0" * max(shutil.disk_usage(small_disk).free - 40_000, 0))
    cache._REPORTED.clear()
    with warnings.catch_warnings():
        code, _, err = run_cli(capsys, "data", "check", corpus, "--quiet")
    assert code == 0, err
    assert err.count("no space left") == 1 and str(corpus / CACHE_DIR) in err


def test_evaluate_and_predict_stream_mapped_partitions(tmp_path, monkeypatch):
    """Evaluation cuts at most BATCH_BYTES of input at a time and keeps the corpus mapped."""
    import emotrace.data.windows as windows

    root = make_corpus(tmp_path / "c")
    emotrace.fit(root, out=tmp_path / "run", config=TINY_CONFIG)
    want = emotrace.evaluate(tmp_path / "run", root, partition="devel")
    monkeypatch.setattr(windows, "BATCH_BYTES", 4 * 16 * 10)  # 10 steps of 16 features
    seen = []
    real = windows.pad

    def pad(xs, ys):
        seen.append(sum(len(x) for x in xs))
        return real(xs, ys)

    monkeypatch.setattr(windows, "pad", pad)
    assert emotrace.evaluate(tmp_path / "run", root, partition="devel") == want
    assert seen and max(seen) <= 60  # one recording per batch (the tiny corpus: <= 60 steps)


class _StepModel(torch.nn.Module):
    """Output = the step's own features and its position within the sequence it was given."""

    def forward(self, x, mask):
        pos = torch.arange(x.shape[1], dtype=torch.float32).expand(x.shape[0], -1)
        return torch.stack([x[..., 0], pos], dim=-1)


def test_long_recordings_are_predicted_in_overlapping_chunks():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((n, 3)).astype(np.float32) for n in (30, 1100, 501, 977)]
    whole = predict_arrays(_StepModel(), xs)
    chunked = predict_arrays(_StepModel(), xs, chunk=500)
    for x, a, b in zip(xs, whole, chunked, strict=True):
        assert b.shape == (len(x), 2)
        assert np.array_equal(a[:, 0], b[:, 0])  # every step predicted once, in place
    assert np.array_equal(chunked[0], whole[0])  # short: whole
    pos = chunked[1][:, 1]  # the chunks start at 0, 250, 500, 600: each step from the nearest centre
    assert pos.max() < 500
    assert np.array_equal(pos[:375], np.arange(375))
    assert np.array_equal(pos[375:625], np.arange(125, 375))
    assert np.array_equal(pos[800:], np.arange(200, 500))
    # in the middle of a recording every step has >= chunk/4 steps of context on each side
    inner = pos[125:-125]
    assert inner.min() >= 125 and inner.max() < 375
