"""Issue 12, items 6 and 7 (the corpus side; gold's time units are the labels/ issue's).

6. ``data check`` (and every load) names every file whose timestamps overlap its recording's label
   timestamps by less than half, e.g. one feature file in seconds while the labels are in ms.
7. Silent skips become warnings: files that ``metadata/partition.csv`` does not list, a training
   corpus without a devel partition.
"""

from __future__ import annotations

from pathlib import Path

from helpers import lines, run_cli, snapshot, write_lines
from test_cli_errors import bad

from emotrace.data.muse import load_corpus


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
