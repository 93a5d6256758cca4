"""``emotrace extract physio`` end to end, and its errors (exit code 2, no traceback)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run_cli
from test_features_driver import make_labels, make_signals
from test_features_physio import pulses, write_e4

from emotrace.data.csvio import read_table

pytest.importorskip("neurokit2")


@pytest.fixture
def setup(tmp_path):
    corpus = make_labels(tmp_path / "corpus", {"A": 60, "B": 80})
    signals = tmp_path / "signals"
    make_signals(signals, "A", 31)
    make_signals(signals, "B", 41)
    return corpus, signals


def test_extract_physio_writes_aligned_features(capsys, setup):
    corpus, signals = setup
    code, _, err = run_cli(capsys, "extract", "physio", "--signals", signals, "--labels", corpus,
                           "--feature-set", "acc", "--window", "2", "--quiet")
    assert code == 0, err
    assert "wrote 2 recording(s), skipped 0" in err and "6 features" in err
    t = read_table(corpus / "feature_segments" / "acc" / "B.csv", first_value_column=2,
                   skip=("segment_id",))
    assert len(t.timestamps) == 80 and t.values[4:, 3] == pytest.approx(1.0)
    manifest = json.loads((corpus / "feature_segments" / "acc" / "manifest.json").read_text())
    assert manifest["settings"]["window"] == 2.0
    code, _, err = run_cli(capsys, "extract", "physio", "--signals", signals, "--labels", corpus,
                           "--feature-set", "acc", "--window", "2", "--quiet")
    assert code == 0 and "wrote 0 recording(s), skipped 2 already extracted" in err


def test_extract_physio_hrv_with_a_rate_grid(capsys, tmp_path):
    rec = tmp_path / "signals" / "r1"
    write_e4(rec / "BVP.csv", pulses(np.arange(1.0, 59.5, 0.75), 60), 64)
    code, _, err = run_cli(capsys, "extract", "physio", "--signals", tmp_path / "signals", "--rate",
                           "2", "--out", tmp_path / "c", "--feature-set", "hrv", "--quiet")
    assert code == 0, err
    t = read_table(tmp_path / "c" / "feature_segments" / "hrv" / "r1.csv", first_value_column=2,
                   skip=("segment_id",))
    assert len(t.timestamps) == 120
    assert np.median(t.values[10:, 0]) == pytest.approx(80, abs=1)
    assert "had nothing to measure" in err  # the first windows, counted


@pytest.mark.parametrize(("args", "message"), [
    ([], "extract needs --labels ROOT"),
    (["--feature-set", "ecg"], "unknown physiological feature set"),
    (["--rate", "0", "--out", "x"], "--rate 0: must be a positive"),
    (["--workers", "0"], "--workers 0: must be at least 1"),
])
def test_extract_option_errors_exit_2(capsys, setup, args, message):
    corpus, signals = setup
    base = ["extract", "physio", "--signals", signals, "--quiet"]
    if "--feature-set" not in args:
        base += ["--feature-set", "temp"]
    if args and args[0] in ("--workers", "--feature-set"):
        base += ["--labels", corpus]
    code, out, err = run_cli(capsys, *base, *args)
    assert code == 2
    assert message in err and "Traceback" not in err + out


def test_bad_inputs_exit_2_and_name_the_file(capsys, setup):
    corpus, signals = setup
    (signals / "A" / "TEMP.csv").write_text("1644829925\n4\n33\n33\nabc\n")
    code, _, err = run_cli(capsys, "extract", "physio", "--signals", signals, "--labels", corpus,
                           "--feature-set", "temp", "--quiet")
    assert code == 2
    assert "1 of 2 recording(s) failed" in err and "TEMP.csv, line 5" in err
    (corpus / "label_segments" / "stress" / "B.csv").write_text("timestamp,value\n0,0\n0,1\n")
    code, _, err = run_cli(capsys, "extract", "physio", "--signals", signals, "--labels", corpus,
                           "--feature-set", "acc", "--quiet")
    assert code == 2 and "B.csv, line 3, column timestamp: repeated timestamp" in err


def test_unlabelled_recordings_are_reported(capsys, setup):
    corpus, signals = setup
    (corpus / "label_segments" / "stress" / "B.csv").unlink()
    code, _, err = run_cli(capsys, "extract", "physio", "--signals", signals, "--labels", corpus,
                           "--feature-set", "temp", "--quiet")
    assert code == 0
    assert "1 recording(s) without a label file were skipped" in err


def test_extract_help_lists_all_kinds(capsys):
    code, out, _ = run_cli(capsys, "extract", "--help")
    assert code == 0
    for kind in ("audio", "text", "face", "physio"):
        assert kind in out
