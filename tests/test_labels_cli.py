"""`emotrace gold` and `emotrace gold agreement` end to end, and their bad-input contract."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
EXAMPLES = SHARED / "muse-toolbox-examples" / "raw"


def write_raw(path: Path, t: np.ndarray, cols: dict[str, np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["timestamp," + ",".join(cols)]
    for i, ts in enumerate(t):
        lines.append(f"{ts:.2f}," + ",".join(f"{v[i]:.4f}" for v in cols.values()))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def raw(tmp_path) -> Path:
    """RAW/arousal/{a,b}.csv: 3 raters at 2 Hz, 60 steps."""
    rng = np.random.default_rng(0)
    t = 0.5 * np.arange(60)
    for rid in ("a", "b"):
        base = np.cumsum(rng.normal(size=60))
        write_raw(tmp_path / "RAW" / "arousal" / f"{rid}.csv", t,
                  {f"r{k}": base + rng.normal(scale=0.5, size=60) for k in range(3)})
    return tmp_path / "RAW"


def message(code: int, out: str, err: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err + out and "internal error" not in err
    return " ".join(err.split())


@pytest.mark.parametrize("method", ["mean", "ewe", "raaw", "dba"])
def test_gold_writes_labels_and_report(capsys, raw, tmp_path, method):
    out = tmp_path / "root"
    code, _, err = run_cli(capsys, "gold", "--input", raw, "--dimension", "arousal", "--method",
                           method, "--standardize", "per-recording", "--pre-smooth", "savgol:5",
                           "--post-smooth", "3", "--out", out, "--quiet")
    assert code == 0, err
    lines = (out / "label_segments" / "arousal" / "a.csv").read_text().splitlines()
    assert lines[0] == "timestamp,value" and lines[1].startswith("0,") and lines[2].startswith("500,")
    assert len(lines) == 61
    report = json.loads((out / "metadata" / "gold_arousal.json").read_text())
    assert set(report["recordings"]) == {"a", "b"}
    assert sum(report["recordings"]["a"]["weights"].values()) == pytest.approx(1, abs=1e-5)
    assert "partition.csv" in " ".join(err.split())  # the user is told to add it


def test_gold_agreement_json_and_table(capsys, raw):
    code, out, err = run_cli(capsys, "gold", "agreement", "--input", raw, "--dimension", "arousal",
                             "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert set(rep["recordings"]) == {"a", "b"} and rep["overall"]["pairs"] == 6
    assert 0 < rep["overall"]["pearson"]["mean"] <= 1
    code, out, err = run_cli(capsys, "gold", "agreement", "--input", raw, "--dimension", "arousal",
                             "--quiet")
    assert code == 0 and "overall" in out


def test_gold_physiological_arousal(capsys, raw, tmp_path):
    eda = tmp_path / "EDA"
    eda.mkdir()
    for rid in ("a", "b"):  # 4 Hz EDA over the 30 s of labels
        t = np.arange(0, 30, 0.25)
        (eda / f"{rid}.csv").write_text("timestamp,value\n" + "".join(
            f"{x:.2f},{np.sin(x / 3) + 2:.4f}\n" for x in t))
    out = tmp_path / "root"
    code, _, err = run_cli(capsys, "gold", "--input", raw, "--dimension", "arousal", "--method",
                           "raaw", "--replace-weakest-with", eda, "--eda-smooth", "26", "--out", out,
                           "--quiet")
    assert code == 0, err
    rec = json.loads((out / "metadata" / "gold_arousal.json").read_text())["recordings"]["a"]
    assert rec["replaced_by_eda"] in ("r0", "r1", "r2")


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="needs ../shared/data/muse-toolbox-examples")
def test_muse_toolbox_examples_fuse(capsys, tmp_path):
    out = tmp_path / "root"
    code, _, err = run_cli(capsys, "gold", "--input", EXAMPLES, "--dimension", "arousal",
                           "--method", "raaw", "--out", out, "--quiet")
    assert code == 0, err
    assert sorted(p.stem for p in (out / "label_segments" / "arousal").glob("*.csv")) == ["11", "32", "47"]
    from emotrace.data.csvio import read_table

    t = read_table(out / "label_segments" / "arousal" / "11.csv")
    assert t.timestamps[0] == 500 and np.isfinite(t.values).all() and len(t.timestamps) == 618


def _break(raw: Path, text: str) -> Path:
    f = raw / "arousal" / "a.csv"
    f.write_text(text)
    return f


BAD = {
    "one rater": ("timestamp,r0\n0,1\n0.5,2\n1,3\n", "at least two raters"),
    "constant": ("timestamp,r0,r1\n0,1,5\n0.5,2,5\n1,3,5\n", "column r1"),
    "all nan": ("timestamp,r0,r1\n0,1,\n0.5,2,\n1,3,\n", "column r1"),
    "nan tail": ("timestamp,r0,r1\n0,1,1\n0.5,2,3\n1,3,\n", "line 4, column r1"),
    "gap": ("timestamp,r0,r1\n0,1,1\n0.5,2,\n1,3,2\n1.5,4,1\n", "gap"),
    "unsorted": ("timestamp,r0,r1\n0,1,1\n1,2,3\n0.5,3,1\n", "unsorted"),
    "duplicate": ("timestamp,r0,r1\n0,1,1\n0.5,2,3\n0.5,3,1\n", "duplicate"),
    "irregular": ("timestamp,r0,r1\n0,1,1\n0.5,2,3\n1,3,1\n3,4,2\n", "irregular"),
    "text": ("timestamp,r0,r1\n0,1,1\n0.5,x,3\n1,3,1\n", "column r0"),
}


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("command", [["gold"], ["gold", "agreement"]])
def test_bad_raw_file(capsys, raw, tmp_path, case, command):
    text, expected = BAD[case]
    f = _break(raw, text)
    args = [*command, "--input", raw, "--dimension", "arousal", "--quiet"]
    if command == ["gold"]:
        args += ["--out", tmp_path / "root"]
    msg = message(*run_cli(capsys, *args))
    assert str(f) in msg and expected in msg


def test_nan_tail_can_be_trimmed(capsys, raw, tmp_path):
    _break(raw, "timestamp,r0,r1\n0,1,1\n0.5,2,3\n1,3,2\n1.5,4,\n")
    code, out, err = run_cli(capsys, "gold", "agreement", "--input", raw, "--dimension", "arousal",
                             "--trim", "--json")
    assert code == 0, err
    assert json.loads(out)["recordings"]["a"]["raters"] == 2


def test_missing_folder_and_empty_folder(capsys, raw, tmp_path):
    msg = message(*run_cli(capsys, "gold", "agreement", "--input", raw, "--dimension", "valence"))
    assert str(raw / "valence") in msg and "folder not found" in msg
    shutil.rmtree(raw / "arousal")
    (raw / "arousal").mkdir()
    msg = message(*run_cli(capsys, "gold", "--input", raw, "--dimension", "arousal", "--out",
                           tmp_path / "root", "--quiet"))
    assert "no .csv files" in msg


def test_bad_options_and_eda(capsys, raw, tmp_path):
    base = ["gold", "--input", raw, "--dimension", "arousal", "--out", tmp_path / "root", "--quiet"]
    assert "--pre-smooth" in message(*run_cli(capsys, *base, "--pre-smooth", "gauss:3"))
    assert "--out" in message(*run_cli(capsys, "gold", "--input", raw, "--dimension", "arousal"))
    eda = tmp_path / "EDA"
    eda.mkdir()
    msg = message(*run_cli(capsys, *base, "--replace-weakest-with", eda))
    assert str(eda / "a.csv") in msg
    (eda / "a.csv").write_text("timestamp,value\n" + "".join(f"{k * 250},{k}\n" for k in range(120)))
    msg = message(*run_cli(capsys, *base, "--replace-weakest-with", eda))
    assert str(eda / "a.csv") in msg and "milliseconds" in msg


def test_negative_max_lag_and_bad_band_are_refused(capsys, raw, tmp_path):
    base = ["gold", "--input", raw, "--dimension", "arousal", "--out", tmp_path / "root", "--quiet"]
    msg = message(*run_cli(capsys, *base, "--method", "raaw", "--max-lag", "-1"))
    assert "--max-lag -1: must be a number >= 0" in msg
    assert "--warp -0.5" in message(*run_cli(capsys, *base, "--warp", "-0.5"))
    assert "--dba-band 0" in message(*run_cli(capsys, *base, "--method", "dba", "--dba-band", "0"))
    assert not (tmp_path / "root" / "label_segments").exists()


def _ms_copy(raw: Path, tmp_path: Path) -> Path:
    """The fixture's raw files with timestamps in milliseconds."""
    out = tmp_path / "RAW_MS" / "arousal"
    out.mkdir(parents=True)
    for f in (raw / "arousal").glob("*.csv"):
        rows = f.read_text().splitlines()
        body = [f"{round(float(r.split(',')[0]) * 1000)}," + r.split(",", 1)[1] for r in rows[1:]]
        (out / f.name).write_text("\n".join([rows[0], *body]) + "\n")
    return out.parent


def test_millisecond_raw_files_are_detected(capsys, raw, tmp_path):
    ms = _ms_copy(raw, tmp_path)
    for unit in ("auto", "ms"):
        out = tmp_path / f"root_{unit}"
        code, _, err = run_cli(capsys, "gold", "--input", ms, "--dimension", "arousal",
                               "--time-unit", unit, "--out", out, "--quiet")
        assert code == 0, err
        lines = (out / "label_segments" / "arousal" / "a.csv").read_text().splitlines()
        assert lines[1].startswith("0,") and lines[2].startswith("500,")  # not 500000
        rep = json.loads((out / "metadata" / "gold_arousal.json").read_text())
        assert rep["recordings"]["a"]["time_unit"] == "ms" and rep["recordings"]["a"]["rate_hz"] == 2
        assert ("read as milliseconds" in " ".join(err.split())) == (unit == "auto")
    # seconds stay seconds
    code, _, err = run_cli(capsys, "gold", "--input", raw, "--dimension", "arousal", "--out",
                           tmp_path / "root_s", "--quiet")
    assert code == 0 and "milliseconds" not in err


def test_smoothing_window_longer_than_the_trace_warns(capsys, raw, tmp_path):
    code, _, err = run_cli(capsys, "gold", "--input", raw, "--dimension", "arousal",
                           "--post-smooth", "100", "--out", tmp_path / "root", "--quiet")
    assert code == 0, err
    assert "a: 60 steps, fewer than the --post-smooth window of 100" in " ".join(err.split())


def test_raaw_report_explains_each_lag(capsys, raw, tmp_path):
    out = tmp_path / "root"
    code, _, err = run_cli(capsys, "gold", "--input", raw, "--dimension", "arousal", "--method",
                           "raaw", "--ewe-weights", "ccc", "--out", out, "--quiet")
    assert code == 0, err
    rep = json.loads((out / "metadata" / "gold_arousal.json").read_text())
    assert rep["ewe_weights"] == "ccc" and rep["lag_min_gain"] == 0.05
    sel = rep["recordings"]["a"]["lag_selection"]
    assert set(sel) == {"r0", "r1", "r2"}
    for d in sel.values():
        assert {"peak_lag_s", "gain", "fall", "decision", "lag_s", "dtw_offset_s"} <= set(d)


@pytest.mark.shared
@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="needs ../shared/data/muse-toolbox-examples")
def test_the_organisers_settings_from_the_command_line(capsys, tmp_path):
    """The command docs/usage.md gives for the organisers' published MuSe-Toolbox settings."""
    out = tmp_path / "root"
    code, _, err = run_cli(capsys, "gold", "--input", EXAMPLES, "--dimension", "arousal",
                           "--method", "raaw", "--ewe-weights", "ccc", "--standardize", "all-minmax",
                           "--pre-smooth", "savgol:5:3", "--post-smooth", "15", "--toolbox-numerics",
                           "--out", out, "--quiet")
    assert code == 0, err
    rep = json.loads((out / "metadata" / "gold_arousal.json").read_text())
    assert (rep["standardize"], rep["ewe_weights"], rep["toolbox_numerics"]) == \
        ("all-minmax", "ccc", True)
    from emotrace.data.csvio import read_table

    ref = read_table(SHARED / "muse-toolbox-examples" / "reference" / "script" / "ctw" / "ewe" /
                     "arousal" / "47.csv").values[:, 0]
    got = read_table(out / "label_segments" / "arousal" / "47.csv").values[:, 0]
    assert np.corrcoef(ref, got)[0, 1] > 0.99
