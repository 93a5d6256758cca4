"""Issue 12, item 1: recording ids (and subjects) are names, never paths.

An id in ``metadata/partition.csv`` with ``/``, ``\\``, ``..``, a leading ``.``, an absolute path or
a control character is refused (exit 2, naming partition.csv, the line and the id) before anything
is read or written, and every path built from an id goes through ``data.names.path_for``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, lines, run_cli, snapshot, write_lines
from test_cli_errors import bad

from emotrace.data.names import name_problem, path_for
from emotrace.errors import EmotraceError
from emotrace.run import write_predictions

PARTITION = Path("metadata/partition.csv")

BAD_IDS = {
    "parent": "../../../x/X",
    "absolute": "/abs/dir/v",
    "backslash": "a\\b",
    "dotdot": "..",
    "inner-dotdot": "S01..1",
    "hidden": ".S01_1",
    "nul": "S01\x00_1",
    "tab": "S01\t_1",
}


def _set_id(corpus: Path, row: int, rid: str) -> None:
    """Make line ``row + 1`` of partition.csv name ``rid`` (bytes, so control characters stay)."""
    rows = lines(corpus / PARTITION)
    cells = rows[row].split(",")
    cells[0] = rid
    rows[row] = ",".join(cells)
    (corpus / PARTITION).write_bytes(("\n".join(rows) + "\n").encode())


@pytest.mark.parametrize("rid", list(BAD_IDS.values()), ids=list(BAD_IDS))
@pytest.mark.parametrize("command", ["check", "train"])
def test_bad_id_in_partition_is_refused(capsys, corpus, tmp_path, rid, command):
    _set_id(corpus, 1, rid)  # line 2: S01_1, train
    # what the old loader would have read for ../../../x/X: a corpus-like tree outside
    outside = tmp_path / "x"
    (outside / "X.csv").parent.mkdir(parents=True)
    (outside / "X.csv").write_text("timestamp,value\n0,1\n")
    before = snapshot(tmp_path)
    args = (["data", "check", corpus, "--quiet"] if command == "check" else
            ["train", "--data", corpus, "--features", "audio", "--target", "arousal", "--out",
             tmp_path / "run", *TINY])
    msg = bad(capsys, *args, names=(corpus / PARTITION, "line 2", "column Id"))
    assert repr(rid) in msg or repr(rid.strip()) in msg, msg
    assert "plain name" in msg  # says what to fix
    assert snapshot(tmp_path) == before  # nothing read into a run, nothing written anywhere


def test_bad_subject_is_refused(capsys, corpus):
    rows = lines(corpus / PARTITION)
    assert rows[4] == "S04_1,devel,S04"
    rows[4] = "S04_1,devel,../../models/evil"
    write_lines(corpus / PARTITION, rows)
    bad(capsys, "data", "check", corpus, "--quiet",
        names=(corpus / PARTITION, "line 5", "column Subject", "'../../models/evil'"))


def test_good_ids_still_load(capsys, corpus):
    """Ids with spaces, dots inside, dashes and unicode are names, not paths."""
    for row, rid in ((1, "S01 1.v2"), (2, "Ölçüm-2")):
        old = lines(corpus / PARTITION)[row].split(",")[0]
        for kind in ("feature_segments/audio", "feature_segments/video", "feature_segments/physio",
                     "label_segments/arousal", "label_segments/valence"):
            (corpus / kind / f"{old}.csv").rename(corpus / kind / f"{rid}.csv")
        _set_id(corpus, row, rid)
    code, out, err = run_cli(capsys, "data", "check", corpus, "--quiet")
    assert code == 0, err


@pytest.mark.parametrize("rid", list(BAD_IDS.values()), ids=list(BAD_IDS))
def test_name_problem(rid):
    assert name_problem(rid) is not None


def test_path_for_stays_inside(tmp_path):
    folder = tmp_path / "preds"
    assert path_for(folder, "S01_1") == folder / "S01_1.csv"
    assert path_for(folder, "m", ".pt", what="subject") == folder / "m.pt"
    for rid in BAD_IDS.values():
        with pytest.raises(EmotraceError, match="plain name"):
            path_for(folder, rid)


def test_path_for_through_a_symlinked_folder(tmp_path):
    """A corpus folder that is a symlink (common for big data) is still inside itself."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert path_for(tmp_path / "link", "S01_1") == tmp_path / "link" / "S01_1.csv"


def test_write_predictions_refuses_a_path_id(tmp_path):
    """The one writer of prediction files (train, predict, fuse, personalise) checks every id,
    wherever it came from (e.g. a prediction file name of an input run when fusing)."""
    out = tmp_path / "run" / "predictions" / "devel"
    before = snapshot(tmp_path)
    with pytest.raises(EmotraceError, match="'../../../escaped'"):
        write_predictions(out, ["S01_1", "../../../escaped"], [np.arange(3)] * 2,
                          [np.zeros((3, 1))] * 2, ["arousal"])
    assert snapshot(tmp_path) == before  # every id is checked before anything is written
