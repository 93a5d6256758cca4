"""Issue 12, items 6 and 7 (the corpus side; gold's time units are the labels/ issue's).

6. ``data check`` (and every load) names every file whose timestamps overlap its recording's label
   timestamps by less than half, e.g. one feature file in seconds while the labels are in ms.
7. Silent skips become warnings: files that ``metadata/partition.csv`` does not list, a training
   corpus without a devel partition.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from helpers import lines, run_cli, snapshot, write_lines
from test_cli_errors import bad, train_args

import emotrace
from emotrace.data.muse import load_corpus
from emotrace.run import NO_DEVEL

PARTITION = Path("metadata/partition.csv")


def _to_seconds(path: Path) -> None:
    rows = lines(path)
    out = [rows[0]]
    for row in rows[1:]:
        cells = row.split(",")
        cells[0] = f"{float(cells[0]) / 1000:g}"
        out.append(",".join(cells))
    write_lines(path, out)


def test_feature_files_in_seconds_are_all_named(capsys, corpus):
    wrong = [corpus / "feature_segments/audio/S02_1.csv", corpus / "feature_segments/video/S03_1.csv"]
    for path in wrong:
        _to_seconds(path)
    msg = bad(capsys, "data", "check", corpus, "--quiet",
              names=(*wrong, "'S02_1'", "'S03_1'", "milliseconds", "2 file(s)"))
    assert "looks like seconds" in msg


def test_label_file_in_seconds(capsys, corpus, tmp_path):
    """The first target's labels make the grid; another target's file in seconds is named."""
    path = corpus / "label_segments/valence/S01_1.csv"
    _to_seconds(path)
    bad(capsys, "data", "check", corpus, "--quiet", names=(path, "'S01_1'", "milliseconds"))
    before = snapshot(tmp_path)
    bad(capsys, "train", "--data", corpus, "--features", "audio", "--target", "arousal",
        "valence", "--out", tmp_path / "run", "--epochs", "1", "--seeds", "1", "--hidden", "8",
        "--quiet", names=(path,))
    assert snapshot(tmp_path) == before


def test_partial_overlap_below_half(capsys, corpus):
    """Not only units: a feature file covering less than half of its labels' time span."""
    path = corpus / "feature_segments/audio/S01_1.csv"
    rows = lines(path)
    write_lines(path, rows[: len(rows) // 3])
    bad(capsys, "data", "check", corpus, "--quiet", names=(path, "'S01_1'"))


def test_sparser_feature_rate_is_fine(capsys, corpus):
    """The control: physio has a row every second step, over the whole span: no error."""
    code, _, err = run_cli(capsys, "data", "check", corpus, "--quiet")
    assert code == 0, err
    c = load_corpus(corpus, features=["physio"])
    assert c.report.features["physio"].zero_filled_steps > 0


def test_files_without_partition_entry_are_a_warning(capsys, corpus, tmp_path):
    for kind in ("feature_segments/audio", "label_segments/arousal"):
        src = corpus / kind / "S01_1.csv"
        (corpus / kind / "S99_9.csv").write_text(src.read_text())
    code, out, err = run_cli(capsys, "data", "check", corpus, "--quiet")
    assert code == 0, err
    text = " ".join(err.split())
    for kind in ("feature_segments/audio", "label_segments/arousal"):
        assert f"{corpus / kind}: 1 file(s) have no entry in metadata/partition.csv" in text
    assert "S99_9" in text
    code, _, err = run_cli(capsys, *train_args(corpus, tmp_path / "run"))
    assert code == 0, err
    warnings = json.loads((tmp_path / "run" / "metrics.json").read_text())["warnings"]
    assert any("S99_9" in w for w in warnings)


def test_corpus_without_devel_is_a_warning(capsys, corpus, tmp_path):
    rows = lines(corpus / PARTITION)
    write_lines(corpus / PARTITION, [r.replace(",devel,", ",train,") for r in rows])
    code, _, err = run_cli(capsys, *train_args(corpus, tmp_path / "run", "--epochs", "2"))
    assert code == 0, err
    text = " ".join(err.split())
    assert "warning:" in text and "no recording in the devel partition" in text
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert NO_DEVEL in metrics["warnings"]
    assert metrics["epochs"] == 2  # nothing to stop on: all epochs, as the warning says


def test_final_run_does_not_warn_about_devel(corpus, tmp_path):
    """--final moves devel into train on purpose: no warning about a missing devel."""
    from helpers import TINY_CONFIG

    metrics = emotrace.fit_final(corpus, out=tmp_path / "final", config=TINY_CONFIG, epochs=1)
    assert NO_DEVEL not in metrics["warnings"]
    assert NO_DEVEL not in json.loads((tmp_path / "final" / "metrics.json").read_text())["warnings"]


def test_a_devel_corpus_does_not_warn(corpus, tmp_path):
    from helpers import TINY_CONFIG

    metrics = emotrace.fit(corpus, out=tmp_path / "run", config=TINY_CONFIG)
    assert NO_DEVEL not in metrics["warnings"]
    assert np.isfinite(metrics["devel"]["ccc"])


def test_loading_one_partition_does_not_call_the_others_unlisted(corpus):
    """Files of the other partitions are listed in partition.csv: no warning about them."""
    for part in ("train", "devel", "test"):
        report = load_corpus(corpus, partitions=[part]).report
        assert report.unlisted == {}, part
