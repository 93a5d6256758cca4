"""The extraction driver: grids, input matching, manifest, resuming, counted warnings, failures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_features_physio import write_e4

from emotrace.data.csvio import read_table, write_labels
from emotrace.data.muse import Entry, load_corpus, write_partition
from emotrace.errors import EmotraceError
from emotrace.features.driver import MANIFEST, extract, find_inputs, rate_grid

pytest.importorskip("neurokit2")


def make_labels(root: Path, ids: dict[str, int], *, partition: str = "train") -> Path:
    """A corpus with 2 Hz 0/1 labels of ``ids[id]`` steps each."""
    entries = []
    for i, (rid, steps) in enumerate(ids.items()):
        ts = np.arange(steps) * 500
        write_labels(root / "label_segments" / "stress" / f"{rid}.csv", ts, (ts > 5000).astype(float))
        entries.append(Entry(rid, partition if i else "train", rid))
    write_partition(root, entries)
    return root


def make_signals(folder: Path, rid: str, seconds: float, *, temp: float = 33.0) -> Path:
    rec = folder / rid
    write_e4(rec / "TEMP.csv", np.full(int(seconds * 4), temp), 4)
    write_e4(rec / "ACC.csv", np.tile([0.0, 0.0, 64.0], (int(seconds * 32), 1)), 32, fmt="%.0f")
    return rec


@pytest.fixture
def setup(tmp_path):
    corpus = make_labels(tmp_path / "corpus", {"A": 60, "B": 80})
    signals = tmp_path / "signals"
    make_signals(signals, "A", 31, temp=33.0)
    make_signals(signals, "B", 41, temp=35.0)
    return corpus, signals


def test_features_land_on_the_label_timestamps_and_load(setup):
    corpus, signals = setup
    summary = extract("physio", inputs=signals, labels=corpus, feature_set="temp")
    assert sorted(summary["written"]) == ["A", "B"]
    for rid, steps, temp in (("A", 60, 33.0), ("B", 80, 35.0)):
        t = read_table(corpus / "feature_segments" / "temp" / f"{rid}.csv", first_value_column=2,
                       skip=("segment_id",))
        assert t.timestamps.tolist() == (np.arange(steps) * 500).tolist()
        assert t.names == ["temp", "temp_slope"]
        assert t.values[10:, 0] == pytest.approx(temp)
    # a 4 s window needs half of it covered: t = 0 ... 1.5 s are zero rows, counted
    assert summary["missing_steps"] == {"A": 4, "B": 4}
    assert any("8 step(s) in 2 recording(s)" in w for w in summary["warnings"])
    c = load_corpus(corpus, features=["temp"], cache=False)
    assert c.report.features["temp"].zero_filled_steps == 0
    manifest = json.loads((corpus / "feature_segments" / "temp" / MANIFEST).read_text())
    assert manifest["kind"] == "physio" and manifest["settings"]["window"] == 4.0
    assert "neurokit2" in manifest["versions"]
    assert manifest["grid"] == {"labels": "stress", "rate": None}
    assert set(manifest["recordings"]) == {"A", "B"}


def test_a_rerun_skips_finished_recordings(setup):
    corpus, signals = setup
    extract("physio", inputs=signals, labels=corpus, feature_set="temp")
    out = corpus / "feature_segments" / "temp" / "A.csv"
    before = out.stat().st_mtime_ns
    (corpus / "feature_segments" / "temp" / "B.csv").unlink()  # as if killed before B
    summary = extract("physio", inputs=signals, labels=corpus, feature_set="temp")
    assert summary["skipped"] == ["A"] and summary["written"] == ["B"]
    assert out.stat().st_mtime_ns == before


def test_other_settings_are_never_mixed_into_one_folder(setup):
    corpus, signals = setup
    extract("physio", inputs=signals, labels=corpus, feature_set="temp")
    with pytest.raises(EmotraceError, match=r"manifest.json: this folder was extracted with settings"):
        extract("physio", inputs=signals, labels=corpus, feature_set="temp", window=8.0)


def test_other_library_versions_are_a_warning(setup):
    corpus, signals = setup
    extract("physio", inputs=signals, labels=corpus, feature_set="temp")
    path = corpus / "feature_segments" / "temp" / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["versions"]["numpy"] = "0.0.1"
    del manifest["recordings"]["B"]
    path.write_text(json.dumps(manifest))
    summary = extract("physio", inputs=signals, labels=corpus, feature_set="temp")
    assert summary["written"] == ["B"]
    assert any("other versions of numpy" in w for w in summary["warnings"])


def test_a_folder_not_written_by_extract_is_not_touched(setup):
    corpus, signals = setup
    (corpus / "feature_segments" / "temp").mkdir(parents=True)
    (corpus / "feature_segments" / "temp" / "A.csv").write_text("timestamp,segment_id,x\n0,0,1\n")
    with pytest.raises(EmotraceError, match=r"temp: holds feature files that emotrace extract did "
                                            r"not write"):
        extract("physio", inputs=signals, labels=corpus, feature_set="temp")


def test_missing_and_extra_inputs_are_counted(setup):
    corpus, signals = setup
    make_labels(corpus, {"A": 60, "B": 80, "C": 40})
    make_signals(signals, "Z", 20)
    summary = extract("physio", inputs=signals, labels=corpus, feature_set="acc")
    assert sorted(summary["written"]) == ["A", "B"]
    text = " ".join(summary["warnings"])
    assert "1 recording(s) have no input" in text and "C" in text
    assert "1 input(s)" in text and "match no recording" in text and "Z" in text


def test_one_bad_recording_does_not_stop_the_others(setup):
    corpus, signals = setup
    (signals / "B" / "TEMP.csv").write_text("1644829925\n4\n33\nnot-a-number\n")
    with pytest.raises(EmotraceError, match=r"1 of 2 recording\(s\) failed \(B: .*TEMP.csv, line 4.*"
                                            r"The 1 others are written"):
        extract("physio", inputs=signals, labels=corpus, feature_set="temp")
    assert (corpus / "feature_segments" / "temp" / "A.csv").is_file()
    make_signals(signals, "B", 41)
    summary = extract("physio", inputs=signals, labels=corpus, feature_set="temp")
    assert summary["skipped"] == ["A"] and summary["written"] == ["B"]


@pytest.mark.parametrize(("rows", "match"), [
    (["timestamp,value", "0,0", "1000,0", "500,1"], r"B.csv, line 4, column timestamp: decreasing"),
    (["timestamp,value", "0,0", "500,0", "500,1"], r"B.csv, line 4, column timestamp: repeated"),
    (["timestamp,value", "0,0", ",0", "1000,1"], r"B.csv, line 3, column timestamp: missing"),
])
def test_bad_label_timestamps_are_errors(setup, rows, match):
    corpus, signals = setup
    (corpus / "label_segments" / "stress" / "B.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(EmotraceError, match=match):
        extract("physio", inputs=signals, labels=corpus, feature_set="temp")


def test_a_regular_rate_grid_without_labels(setup, tmp_path):
    _, signals = setup
    out = tmp_path / "new"
    summary = extract("physio", inputs=signals, rate=4, out=out, feature_set="temp")
    t = read_table(out / "feature_segments" / "temp" / "A.csv", first_value_column=2,
                   skip=("segment_id",))
    assert t.timestamps.tolist() == rate_grid(4, 31.0).tolist()
    assert t.timestamps[-1] == 30_750 and len(t.timestamps) == 124
    assert sorted(summary["written"]) == ["A", "B"]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({}, r"needs --labels ROOT .* or --rate HZ"),
    ({"rate": 2.0}, r"--rate without --labels needs --out ROOT"),
    ({"rate": -1.0, "out": "x"}, r"--rate -1: must be a positive"),
])
def test_grid_options_are_checked(setup, kwargs, match):
    _, signals = setup
    with pytest.raises(EmotraceError, match=match):
        extract("physio", inputs=signals, feature_set="temp", **kwargs)


def test_unknown_kind_and_missing_input_folder(setup, tmp_path):
    corpus, _ = setup
    with pytest.raises(EmotraceError, match="unknown kind"):
        extract("smell", inputs=tmp_path, labels=corpus, feature_set="x")
    with pytest.raises(EmotraceError, match=r"nowhere: input folder not found"):
        extract("physio", inputs=tmp_path / "nowhere", labels=corpus, feature_set="temp")


def test_find_inputs_prefers_the_first_suffix(tmp_path):
    for name in ("a.mp4", "a.WAV", "b.mp4", "c.txt", ".hidden.wav"):
        (tmp_path / name).write_text("")
    (tmp_path / "d").mkdir()
    found = find_inputs(tmp_path, (".wav", ".mp4"))
    assert found == {"a": tmp_path / "a.WAV", "b": tmp_path / "b.mp4", "d": tmp_path / "d"}
    assert find_inputs(tmp_path, ()) == {"d": tmp_path / "d"}


def test_parallel_workers_write_the_same_files(setup, tmp_path):
    corpus, signals = setup
    extract("physio", inputs=signals, labels=corpus, feature_set="acc")
    other = tmp_path / "other"
    make_labels(other, {"A": 60, "B": 80})
    extract("physio", inputs=signals, labels=other, feature_set="acc", workers=2)
    for rid in ("A", "B"):
        a = (corpus / "feature_segments" / "acc" / f"{rid}.csv").read_text()
        b = (other / "feature_segments" / "acc" / f"{rid}.csv").read_text()
        assert a == b


def test_the_driver_is_the_public_api(setup):
    import emotrace

    corpus, signals = setup
    assert emotrace.extract is extract
    summary = emotrace.extract("physio", inputs=signals, labels=corpus, feature_set="acc")
    assert summary["names"] == ["acc_x", "acc_y", "acc_z", "acc_mag", "acc_mag_std", "acc_activity"]
