"""Loading a MuSe-layout corpus (emotrace.data.muse, .corpus, .cache, .normalise): alignment by
timestamp, train-only standardisation, the cache, and MuSe-2021 files as distributed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_CONFIG, lines, make_corpus, write_lines

import emotrace
import emotrace.data.cache as cache
from emotrace.data.cache import CACHE_DIR
from emotrace.data.csvio import write_features, write_labels
from emotrace.data.muse import Entry, load_corpus, write_partition
from emotrace.data.standardise import Standardiser

STEP = 250
GRID = np.arange(10, dtype=np.int64) * STEP  # label timestamps 0 .. 2250 ms


def small_corpus(root: Path) -> Path:
    """Two train recordings, one devel: labels on GRID; features 'a' with extra and missing rows.

    Feature values encode their own timestamp (value = t / 1000 + column), so it is visible where
    each row landed.
    """
    entries = [Entry("r1", "train", "s1"), Entry("r2", "train", "s2"), Entry("r3", "devel", "s3")]
    for e in entries:
        write_labels(root / "label_segments" / "y" / f"{e.id}.csv", GRID, GRID / 1000.0)
        ts = np.concatenate([[-500, -250], GRID, [2500, 2750]])  # rows before and after
        if e.id == "r1":
            ts = ts[~np.isin(ts, [500, 1750])]  # two label steps without a feature row
            ts = np.sort(np.concatenate([ts, [125, 1125]]))  # rows between label steps
        vals = ts[:, None] / 1000.0 + np.arange(3)[None, :]
        write_features(root / "feature_segments" / "a" / f"{e.id}.csv", ts, vals)
    write_partition(root, entries)
    return root


def test_features_are_aligned_by_timestamp_not_row(tmp_path):
    c = load_corpus(small_corpus(tmp_path / "c"), cache=False)
    r1 = next(r for r in c if r.id == "r1")
    assert np.array_equal(r1.timestamps, GRID)
    x = r1.features["a"]
    assert x.shape == (10, 3)
    missing = np.isin(GRID, [500, 1750])
    assert np.isnan(x[missing]).all()
    expected = GRID[:, None] / 1000.0 + np.arange(3)[None, :]
    np.testing.assert_allclose(x[~missing], expected[~missing], atol=1e-6)
    np.testing.assert_allclose(r1.labels["y"], GRID / 1000.0, atol=1e-6)
    # the gaps are counted, per feature set
    rep = c.report.features["a"]
    assert (rep.steps, rep.zero_filled_steps, rep.recordings_with_gaps) == (30, 2, 1)
    assert any("2 of 30 label steps" in w for w in c.report.warnings())


def test_missing_steps_become_zero_after_standardisation(tmp_path):
    c = load_corpus(small_corpus(tmp_path / "c"), cache=False)
    std = Standardiser.fit(c.partition("train"), ["a"])
    r1 = next(r for r in c if r.id == "r1")
    z = std.transform(r1, ["a"])
    missing = np.isin(GRID, [500, 1750])
    assert (z[missing] == 0).all()
    assert np.isfinite(z).all()
    assert (z[~missing] != 0).any()


def test_timestamps_match_within_tolerance(tmp_path):
    root = small_corpus(tmp_path / "c")
    path = root / "feature_segments/a/r2.csv"
    rows = lines(path)  # header, -500, -250, 0, 250, 500, 750, ...
    cells = rows[5].split(",")  # the row at 500 ms, moved by 0.4 ms: still that step
    assert cells[0] == "500"
    cells[0] = "500.4"
    rows[5] = ",".join(cells)
    cells = rows[6].split(",")  # the row at 750 ms, moved by 2 ms: no longer that step
    cells[0] = "752"
    rows[6] = ",".join(cells)
    write_lines(path, rows)
    r2 = next(r for r in load_corpus(root, cache=False) if r.id == "r2")
    assert np.isfinite(r2.features["a"][2]).all()
    assert np.isnan(r2.features["a"][3]).all()


def test_nan_cells_are_counted_and_imputed_with_the_train_mean(tmp_path):
    root = small_corpus(tmp_path / "c")
    path = root / "feature_segments/a/r2.csv"
    rows = lines(path)
    cells = rows[4].split(",")  # timestamp 250 (two rows before the grid start)
    cells[2] = "nan"
    rows[4] = ",".join(cells)
    write_lines(path, rows)
    c = load_corpus(root, cache=False)
    assert c.report.features["a"].imputed_cells == 1
    std = Standardiser.fit(c.partition("train"), ["a"])
    r2 = next(r for r in c if r.id == "r2")
    assert std.transform(r2, ["a"])[1, 0] == 0.0


def test_files_saved_on_windows_load(corpus):
    """A UTF-8 byte-order mark and CRLF line ends (as Excel writes them) change nothing."""
    before = load_corpus(corpus, features=["audio"], targets=["arousal"], cache=False)
    for rel in ("metadata/partition.csv", "feature_segments/audio/S01_1.csv",
                "label_segments/arousal/S01_1.csv"):
        path = corpus / rel
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    after = load_corpus(corpus, features=["audio"], targets=["arousal"], cache=False)
    assert [r.id for r in after] == [r.id for r in before]
    for a, b in zip(before, after, strict=True):
        assert np.array_equal(a.timestamps, b.timestamps)
        assert np.array_equal(a.features["audio"], b.features["audio"])
        assert np.array_equal(a.labels["arousal"], b.labels["arousal"])


# ---------------------------------------------------------------------------------------------
# standardisation: train only


def test_standardiser_statistics_are_those_of_train(tmp_path):
    c = load_corpus(small_corpus(tmp_path / "c"), cache=False)
    train = c.partition("train")
    std = Standardiser.fit(train, ["a"])
    x = np.concatenate([r.features["a"] for r in train]).astype(np.float64)
    np.testing.assert_allclose(std.mean["a"], np.nanmean(x, 0), rtol=1e-6)
    np.testing.assert_allclose(std.std["a"], np.nanstd(x, 0), rtol=1e-6)


def _normaliser(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", weights_only=True)["normaliser"]


def test_training_fits_standardisation_on_train_only(corpus, tmp_path):
    first = tmp_path / "first"
    emotrace.fit(corpus, out=first, config=TINY_CONFIG)
    before = _normaliser(first)["audio"]
    train = load_corpus(corpus, features=["audio"], targets=["arousal"]).partition("train")
    x = np.concatenate([r.features["audio"] for r in train]).astype(np.float64)
    np.testing.assert_allclose(before["mean"].numpy(), np.nanmean(x, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(before["std"].numpy(), np.nanstd(x, 0), rtol=1e-5)
    # change devel and test features a lot: the statistics must not move
    for rid in ("S04_1", "S05_1"):
        path = corpus / "feature_segments/audio" / f"{rid}.csv"
        rows = lines(path)
        scaled = [rows[0]]
        for row in rows[1:]:
            cells = row.split(",")
            scaled.append(",".join(cells[:2] + [str(100 * float(v) + 50) for v in cells[2:]]))
        write_lines(path, scaled)
    second = tmp_path / "second"
    emotrace.fit(corpus, out=second, config=TINY_CONFIG)
    after = _normaliser(second)["audio"]
    assert torch.equal(before["mean"], after["mean"]) and torch.equal(before["std"], after["std"])
    # control: statistics over all partitions would have moved
    every = load_corpus(corpus, features=["audio"], targets=["arousal"]).recordings
    x_all = np.concatenate([r.features["audio"] for r in every]).astype(np.float64)
    assert not np.allclose(np.nanmean(x_all, 0), after["mean"].numpy(), atol=1.0)


# ---------------------------------------------------------------------------------------------
# the cache


@pytest.fixture
def counting_parser(monkeypatch):
    calls: list[Path] = []
    real = cache.read_table

    def counting(path, **kw):
        calls.append(Path(path))
        return real(path, **kw)

    monkeypatch.setattr(cache, "read_table", counting)
    return calls


def _same_size_rewrite(path: Path) -> None:
    """Change the first feature value of the first data row without changing the file's size."""
    rows = lines(path)
    cells = rows[1].split(",")
    old = cells[2]
    digit = next(i for i, ch in enumerate(old) if ch.isdigit() and ch not in "0")
    cells[2] = old[:digit] + ("1" if old[digit] != "1" else "2") + old[digit + 1:]
    rows[1] = ",".join(cells)
    size = path.stat().st_size
    write_lines(path, rows)
    assert path.stat().st_size == size


def test_cache_is_used_and_invalidated_when_a_file_changes(tmp_path, counting_parser):
    root = make_corpus(tmp_path / "c")
    first = load_corpus(root, features=["audio"], targets=["arousal"])
    assert len(counting_parser) == 10  # 5 label + 5 feature files parsed
    assert len(list((root / CACHE_DIR).glob("*.meta"))) == 10

    counting_parser.clear()
    second = load_corpus(root, features=["audio"], targets=["arousal"])
    assert counting_parser == []  # everything from the cache
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a.features["audio"], b.features["audio"])
        assert np.array_equal(a.labels["arousal"], b.labels["arousal"])

    path = root / "feature_segments/audio/S01_1.csv"
    mtime = path.stat().st_mtime_ns
    _same_size_rewrite(path)
    if path.stat().st_mtime_ns == mtime:  # a coarse file-system clock; make the change visible
        os.utime(path, ns=(mtime + 1_000_000, mtime + 1_000_000))
    new_value = float(lines(path)[1].split(",")[2])
    counting_parser.clear()
    third = load_corpus(root, features=["audio"], targets=["arousal"])
    assert counting_parser == [path]  # only the changed file is parsed again
    assert third.recordings[0].features["audio"][0, 0] == pytest.approx(new_value)
    assert third.recordings[0].features["audio"][0, 0] != first.recordings[0].features["audio"][0, 0]


def test_corrupt_cache_entries_are_reparsed(tmp_path, counting_parser):
    root = make_corpus(tmp_path / "c")
    first = load_corpus(root, features=["audio"], targets=["arousal"])
    entries = sorted((root / CACHE_DIR).glob("*.meta"))
    entries[0].write_bytes(b"PK\x03\x04 not a zip")
    entries[1].write_bytes(entries[1].read_bytes()[:50])
    entries[2].write_bytes(b"")
    counting_parser.clear()
    again = load_corpus(root, features=["audio"], targets=["arousal"])
    assert len(counting_parser) == 3
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.features["audio"], b.features["audio"])
    counting_parser.clear()
    load_corpus(root, features=["audio"], targets=["arousal"])
    assert counting_parser == []  # and rewritten


def test_cache_can_be_turned_off(tmp_path, counting_parser):
    root = make_corpus(tmp_path / "c")
    load_corpus(root, features=["audio"], targets=["arousal"], cache=False)
    load_corpus(root, features=["audio"], targets=["arousal"], cache=False)
    assert len(counting_parser) == 20
    assert not (root / CACHE_DIR).exists()


# ---------------------------------------------------------------------------------------------
# MuSe-2021 files as distributed


def test_muse_2021_corpus_loads_unchanged(tmp_path):
    """MuSe-Wilder 2021 layout: numeric ids, partition.csv with only Id,Partition, labels with a
    trailing segment_id column, features with segment_id as second column."""
    root = tmp_path / "c1_muse_wild"
    (root / "metadata").mkdir(parents=True)
    (root / "metadata/partition.csv").write_text("Id,Partition\n1,train\n2,train\n3,devel\n4,test\n")
    rng = np.random.default_rng(0)
    truth = {}
    for rid in ("1", "2", "3", "4"):
        n = 12
        ts = np.arange(n) * 250
        seg = np.repeat([1, 2], n // 2)
        values = np.round(rng.uniform(-1, 1, n), 4)
        truth[rid] = values
        label = ["timestamp,value,segment_id"] + [f"{t},{v},{s}" for t, v, s in zip(ts, values, seg,
                                                                                  strict=True)]
        for target in ("arousal", "valence"):
            (root / "label_segments" / target).mkdir(parents=True, exist_ok=True)
            write_lines(root / "label_segments" / target / f"{rid}.csv", label)
        feats = rng.normal(size=(n, 4)).round(5)
        header = "timestamp,segment_id," + ",".join(f"egemaps_{i}" for i in range(4))
        rows = [header] + [f"{t},{s}," + ",".join(str(v) for v in f)
                           for t, s, f in zip(ts, seg, feats, strict=True)]
        (root / "feature_segments/egemaps").mkdir(parents=True, exist_ok=True)
        write_lines(root / "feature_segments/egemaps" / f"{rid}.csv", rows)
    c = load_corpus(root)
    assert [r.id for r in c] == ["1", "2", "3", "4"]
    assert [r.partition for r in c] == ["train", "train", "devel", "test"]
    assert [r.subject for r in c] == ["1", "2", "3", "4"]  # no Subject column: one per recording
    assert c.feature_dims == {"egemaps": 4}
    assert c.targets == ["arousal", "valence"]
    for r in c:
        np.testing.assert_allclose(r.labels["arousal"], truth[r.id], atol=1e-6)
        assert r.features["egemaps"].shape == (12, 4)
    assert c.report.warnings() == []


def test_parallel_parse_equals_serial_and_keeps_error_messages(tmp_path):
    root = make_corpus(tmp_path / "c")
    jobs = [(p, {"first_value_column": 2, "skip": ("segment_id",)})
            for p in sorted((root / "feature_segments" / "audio").glob("*.csv"))]
    serial = cache.read_tables(root, jobs, cache=False, workers=1)
    parallel = cache.read_tables(root, jobs, cache=False, workers=2, parallel_bytes=0)
    for a, b in zip(serial, parallel, strict=True):
        assert a.path == b.path
        assert np.array_equal(a.values, b.values) and np.array_equal(a.timestamps, b.timestamps)
    rows = lines(jobs[1][0])
    rows[2] = rows[2].replace(rows[2].split(",")[3], "oops", 1)
    write_lines(jobs[1][0], rows)
    with pytest.raises(emotrace.EmotraceError, match=r"line 3.*'oops' is not a number"):
        cache.read_tables(root, jobs, cache=False, workers=2, parallel_bytes=0)
