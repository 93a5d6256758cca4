"""Stress-Predict adapter: real subjects from ../shared (tags and phases.csv), and bad sources."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli
from test_features_physio import T0, pulses, write_e4

from emotrace.data.csvio import read_table
from emotrace.data.muse import load_corpus, read_partition
from emotrace.datasets import stress_predict as sp
from emotrace.errors import EmotraceError

pytest.importorskip("neurokit2")
SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "stress-predict"


def need_shared() -> None:
    if not (SOURCE / "Raw_data").is_dir():
        pytest.skip("needs ../shared/data/stress-predict (not in a user's clone)")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """S01 (irregular tags → phases.csv), S05 (tags) and S19 (devel), prepared once."""
    need_shared()
    out = tmp_path_factory.mktemp("sp")
    summary = sp.prepare(SOURCE, out, subjects=["S01", "5", "S19"])
    return out, summary


@pytest.mark.shared
def test_partition_split_and_phase_sources(prepared):
    out, summary = prepared
    entries = {e.id: e for e in read_partition(out)}
    assert {k: (e.partition, e.subject) for k, e in entries.items()} == {
        "S01": ("train", "S01"), "S05": ("train", "S05"), "S19": ("devel", "S19")}
    assert summary["phase_source"] == {"S01": "phases.csv", "S05": "tags", "S19": "tags"}
    assert summary["step_ms"] == 500
    assert set(summary["features"]) == set(sp.FEATURE_SETS)


@pytest.mark.shared
def test_stress_is_one_exactly_inside_the_tagged_phases(prepared):
    out, _ = prepared
    rec = SOURCE / "Raw_data" / "S05"
    tags = [float(x) for x in (rec / "tags_S05.csv").read_text().split()]
    t0 = float((rec / "BVP.csv").read_text().splitlines()[0])
    labels = read_table(out / "label_segments" / "stress" / "S05.csv", value_columns=["value"])
    t = t0 + labels.timestamps / 1000
    y = labels.values[:, 0]
    for start, end in ((tags[0], tags[1]), (tags[2], tags[3]), (tags[4], tags[5])):
        assert (y[(t >= start) & (t < end)] == 1).all()
        assert y[(t >= start - 1) & (t < start)].max() == 0  # the second before is relax
    assert y[t < tags[0]].max() == 0 and y[t >= tags[5]].max() == 0
    expected = sum(e - s for s, e in ((tags[0], tags[1]), (tags[2], tags[3]), (tags[4], tags[5])))
    assert y.sum() / 2 == pytest.approx(expected, abs=2)


@pytest.mark.shared
def test_phases_csv_is_the_fallback_for_irregular_tags(prepared):
    out, _ = prepared
    rows = [r.split(",") for r in (SOURCE / "phases.csv").read_text().splitlines()[1:]]
    stress = [(float(r[2]), float(r[3])) for r in rows if r[0] == "S01" and r[4].strip() == "1"]
    t0 = float((SOURCE / "Raw_data" / "S01" / "BVP.csv").read_text().splitlines()[0])
    labels = read_table(out / "label_segments" / "stress" / "S01.csv", value_columns=["value"])
    t = t0 + labels.timestamps / 1000
    inside = np.zeros(len(t), bool)
    for s, e in stress:
        inside |= (t >= s) & (t < e)
    assert (labels.values[:, 0] == inside).all()


@pytest.mark.shared
def test_the_corpus_loads_aligned_and_the_features_make_sense(prepared):
    out, _ = prepared
    corpus = load_corpus(out, features=list(sp.FEATURE_SETS), targets=["stress"], cache=False)
    for rec in corpus.recordings:
        y = rec.labels["stress"]
        assert len(y) > 5000 and set(np.unique(y)) == {0.0, 1.0}
        hr = rec.features["hrv"][:, 0]
        assert 55 < np.median(hr[hr > 0]) < 110
        temp = rec.features["temp"][:, 0]
        assert 20 < np.median(temp[temp > 0]) < 38
    for fs in sp.FEATURE_SETS:
        assert corpus.report.features[fs].zero_filled_steps == 0
        manifest = json.loads((out / "feature_segments" / fs / "manifest.json").read_text())
        assert sorted(manifest["recordings"]) == ["S01", "S05", "S19"]


@pytest.mark.shared
def test_a_second_prepare_skips_the_extracted_features(prepared, tmp_path):
    out, _ = prepared
    copy = tmp_path / "sp"
    shutil.copytree(out, copy)
    before = (copy / "feature_segments" / "hrv" / "S05.csv").stat().st_mtime_ns
    sp.prepare(SOURCE, copy, subjects=["S01", "S05", "S19"])
    assert (copy / "feature_segments" / "hrv" / "S05.csv").stat().st_mtime_ns == before


# --------------------------------------------------------------------------------------------
# made-up sources: bad input


def fake_subject(raw: Path, name: str, tags: list[float] | None, seconds: float = 120.0) -> Path:
    rec = raw / name
    beats = np.arange(1.0, seconds - 0.5, 0.8)
    write_e4(rec / "BVP.csv", pulses(beats, seconds), 64)
    write_e4(rec / "EDA.csv", np.full(int(seconds * 4), 2.0), 4)
    write_e4(rec / "TEMP.csv", np.full(int(seconds * 4), 33.0), 4)
    write_e4(rec / "ACC.csv", np.tile([0.0, 0.0, 64.0], (int(seconds * 32), 1)), 32, fmt="%.0f")
    if tags is not None:
        (rec / f"tags_{name}.csv").write_text("\n".join(f"{T0 + t:.0f}" for t in tags) + "\n")
    return rec


def test_made_up_subject_with_tags(tmp_path):
    src = tmp_path / "src"
    fake_subject(src / "Raw_data", "S20", [10, 30, 40, 60, 70, 80, 110])
    summary = sp.prepare(src, tmp_path / "out")
    assert summary["recordings"] == {"devel": 1} and summary["phase_source"] == {"S20": "tags"}
    labels = read_table(tmp_path / "out" / "label_segments" / "stress" / "S20.csv",
                        value_columns=["value"])
    assert labels.values[:, 0].sum() == (20 + 20 + 10) * 2
    assert labels.timestamps[-1] == 119_500


def test_irregular_tags_without_phases_csv_is_an_error(tmp_path):
    src = tmp_path / "src"
    fake_subject(src / "Raw_data", "S02", [10, 30, 40])
    with pytest.raises(EmotraceError, match=r"S02: no stress phases: tags_S02.csv has 3 tags"):
        sp.prepare(src, tmp_path / "out")


def test_phases_that_miss_the_recording_are_an_error(tmp_path):
    src = tmp_path / "src"
    fake_subject(src / "Raw_data", "S07", [1e6, 1e6 + 10, 1e6 + 20, 1e6 + 30, 1e6 + 40, 1e6 + 50,
                                          1e6 + 60])
    with pytest.raises(EmotraceError, match=r"S07: no step falls in a stress phase"):
        sp.prepare(src, tmp_path / "out")


def test_a_missing_signal_file_is_named(tmp_path):
    src = tmp_path / "src"
    rec = fake_subject(src / "Raw_data", "S20", [10, 30, 40, 60, 70, 80, 110])
    (rec / "TEMP.csv").unlink()
    with pytest.raises(EmotraceError, match=r"S20/TEMP.csv: file not found"):
        sp.prepare(src, tmp_path / "out")


def test_cli_data_prepare_errors_exit_2(capsys, tmp_path):
    (tmp_path / "src").mkdir()
    code, _, err = run_cli(capsys, "data", "prepare", "stress-predict", "--source",
                           tmp_path / "src", "--out", tmp_path / "out", "--quiet")
    assert code == 2 and "no Raw_data/ folder" in err
    code, _, err = run_cli(capsys, "data", "prepare", "stress-predict", "--source",
                           tmp_path / "nope", "--out", tmp_path / "out", "--quiet")
    assert code == 2 and "source folder not found" in err


def test_cli_data_prepare_writes_a_loadable_corpus(capsys, tmp_path):
    src = tmp_path / "src"
    fake_subject(src / "Raw_data", "S03", [10, 30, 40, 60, 70, 80, 110])
    fake_subject(src / "Raw_data", "S22", [5, 25, 45, 65, 75, 85, 115])
    code, _, err = run_cli(capsys, "data", "prepare", "stress-predict", "--source", src, "--out",
                           tmp_path / "out", "--quiet")
    assert code == 0, err
    corpus = load_corpus(tmp_path / "out", cache=False)
    assert sorted(corpus.feature_dims) == sorted(sp.FEATURE_SETS)
    assert [r.id for r in corpus.partition("devel")] == ["S22"]
