"""The bad-input contract of the command line (docs/usage.md, "Errors").

Every user-facing failure ends with exit code 2 and a one-paragraph message on stderr that names
the file (and the line / column where one exists) and no Python traceback. Each case starts from a
small valid synthetic corpus (``helpers.make_corpus``) and breaks exactly one thing.

Most cases call ``emotrace.cli.main`` in-process (fast); a few run ``python -m emotrace`` and the
``emotrace`` console script in a subprocess to prove the real entry points behave the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY, TINY_CONFIG, lines, run_cli, set_cell, write_lines

import emotrace
from emotrace.data.muse import load_corpus
from emotrace.errors import EmotraceError

AUDIO = Path("feature_segments/audio/S01_1.csv")
AROUSAL = Path("label_segments/arousal/S01_1.csv")
PARTITION = Path("metadata/partition.csv")


def error_message(code: int, out: str, err: str) -> str:
    """Check the contract and return the message (without the ``error:`` prefix)."""
    assert code == 2, f"exit code {code}, stderr:\n{err}"
    assert "Traceback" not in err and "Traceback" not in out
    assert "internal error" not in err
    assert "error:" in err, err
    message = err[err.index("error:") + len("error:"):].strip()
    assert message, "empty error message"
    assert "\n" not in message, f"not one paragraph:\n{message}"
    return message


def bad(capsys, *args, names: tuple[str | Path, ...] = ()) -> str:
    message = error_message(*run_cli(capsys, *args))
    for name in names:
        assert str(name) in message, f"{name!r} not named in: {message}"
    return message


def check(capsys, root: Path, *extra: str, names: tuple[str | Path, ...] = ()) -> str:
    return bad(capsys, "data", "check", root, "--quiet", *extra, names=names)


def train_args(root: Path, out: Path, *extra: str) -> list:
    return ["train", "--data", root, "--features", "audio", "--target", "arousal", "--out", out,
            *TINY, *extra]


# ---------------------------------------------------------------------------------------------
# corpus layout


def test_missing_corpus_folder(capsys, tmp_path):
    root = tmp_path / "nowhere"
    msg = check(capsys, root, names=(root,))
    assert "not found" in msg


def test_missing_partition_csv(capsys, corpus):
    (corpus / PARTITION).unlink()
    check(capsys, corpus, names=(corpus / PARTITION, "not found"))


def test_recording_without_feature_file(capsys, corpus):
    (corpus / AUDIO).unlink()
    check(capsys, corpus, names=(corpus / AUDIO, "S01_1", "audio"))


@pytest.mark.parametrize("rid", ["S01_1", "S04_1"], ids=["train", "devel"])
def test_recording_without_label_file(capsys, corpus, rid):
    path = corpus / "label_segments" / "valence" / f"{rid}.csv"
    path.unlink()
    msg = check(capsys, corpus, names=(path, rid, "valence"))
    assert "test partition" in msg  # says how to fix it


def test_test_recording_without_labels_is_allowed(capsys, corpus, tmp_path):
    for target in ("arousal", "valence"):
        (corpus / "label_segments" / target / "S05_1.csv").unlink()
    code, out, err = run_cli(capsys, "data", "check", corpus, "--quiet")
    assert code == 0, err
    assert "ok" in out
    c = load_corpus(corpus)
    rec = next(r for r in c if r.id == "S05_1")
    assert rec.partition == "test" and rec.labels == {}
    assert c.report.unlabelled_recordings == ["S05_1"]
    # the grid of an unlabelled recording is its first feature set's timestamps
    audio_ts = np.loadtxt(corpus / "feature_segments/audio/S05_1.csv", delimiter=",", skiprows=1,
                          usecols=0)
    assert np.array_equal(rec.timestamps, audio_ts.astype(np.int64))
    # training still works and writes test predictions
    code, _, err = run_cli(capsys, *train_args(corpus, tmp_path / "run"))
    assert code == 0, err
    assert (tmp_path / "run/predictions/test/S05_1.csv").exists()


def test_unknown_feature_set(capsys, corpus, tmp_path):
    args = train_args(corpus, tmp_path / "run")
    args[args.index("audio")] = "audoi"
    msg = bad(capsys, *args, names=(corpus / "feature_segments" / "audoi", "audoi"))
    assert "audio" in msg  # lists what is available


def test_unknown_target(capsys, corpus, tmp_path):
    args = train_args(corpus, tmp_path / "run")
    args[args.index("arousal")] = "dominance"
    msg = bad(capsys, *args, names=(corpus / "label_segments" / "dominance",))
    assert "arousal" in msg and "valence" in msg


# ---------------------------------------------------------------------------------------------
# CSV content


@pytest.mark.parametrize("rel", [AUDIO, AROUSAL, PARTITION], ids=["features", "labels", "partition"])
def test_empty_file(capsys, corpus, rel):
    (corpus / rel).write_bytes(b"")
    check(capsys, corpus, names=(corpus / rel, "empty"))


@pytest.mark.parametrize("rel", [AUDIO, AROUSAL, PARTITION], ids=["features", "labels", "partition"])
def test_header_without_rows(capsys, corpus, rel):
    write_lines(corpus / rel, lines(corpus / rel)[:1])
    check(capsys, corpus, names=(corpus / rel, "line 2", "no rows"))


def test_non_numeric_cell(capsys, corpus):
    set_cell(corpus / AUDIO, 6, 3, "abc")  # columns: timestamp, segment_id, f0, f1, ...
    check(capsys, corpus, names=(corpus / AUDIO, "line 6", "column f1", "'abc'"))


@pytest.mark.parametrize("extra", [0, 1, -2], ids=["ok", "one-more", "two-fewer"])
def test_row_with_wrong_number_of_cells(capsys, corpus, extra):
    rows = lines(corpus / AUDIO)
    cells = rows[5].split(",")
    rows[5] = ",".join(cells + ["1.5"] * extra if extra >= 0 else cells[:extra])
    write_lines(corpus / AUDIO, rows)
    if extra == 0:  # control: the same rewrite without a change loads
        assert run_cli(capsys, "data", "check", corpus, "--quiet")[0] == 0
        return
    check(capsys, corpus, names=(corpus / AUDIO, "line 6", f"{18 + extra} cells", "18 columns"))


def test_partition_row_with_wrong_number_of_cells(capsys, corpus):
    rows = lines(corpus / PARTITION)
    rows[2] += ",extra"
    write_lines(corpus / PARTITION, rows)
    check(capsys, corpus, names=(corpus / PARTITION, "line 3", "4 cells"))


def test_header_not_utf8(capsys, corpus):
    (corpus / AUDIO).write_bytes(b"timestamp,segment_id,f\xe9\xff0\n0,0,1.0\n")
    check(capsys, corpus, names=(corpus / AUDIO, "line 1", "UTF-8"))


def test_partition_not_utf8(capsys, corpus):
    (corpus / PARTITION).write_bytes(b"\xff\xfeI\x00d\x00\n")
    check(capsys, corpus, names=(corpus / PARTITION, "UTF-8"))


def test_missing_timestamp_column(capsys, corpus):
    rows = lines(corpus / AUDIO)
    rows[0] = rows[0].replace("timestamp", "time_ms")
    write_lines(corpus / AUDIO, rows)
    check(capsys, corpus, names=(corpus / AUDIO, "line 1", "'timestamp'"))


def test_label_file_without_value_column(capsys, corpus):
    rows = lines(corpus / AROUSAL)
    rows[0] = "timestamp,arousal"
    write_lines(corpus / AROUSAL, rows)
    check(capsys, corpus, names=(corpus / AROUSAL, "line 1", "value"))


def test_feature_files_with_different_columns(capsys, corpus):
    path = corpus / "feature_segments/audio/S02_1.csv"
    write_lines(path, [row + (",extra" if i == 0 else ",0.5") for i, row in enumerate(lines(path))])
    check(capsys, corpus, names=(path, "line 1", "17 feature columns", "16"))


def _nan_and_inf(root: Path) -> None:
    set_cell(root / AUDIO, 6, 3, "nan")
    set_cell(root / AUDIO, 8, 4, "inf")


def test_nan_inf_features_load_with_counted_warning(capsys, corpus):
    _nan_and_inf(corpus)
    code, out, err = run_cli(capsys, "data", "check", corpus, "--quiet")
    assert code == 0, err
    assert "2 NaN/inf cell(s)" in " ".join(err.split())
    assert load_corpus(corpus, features=["audio"]).report.features["audio"].imputed_cells == 2


@pytest.mark.parametrize("command", ["check", "train"])
def test_nan_inf_features_strict(capsys, corpus, tmp_path, command):
    _nan_and_inf(corpus)
    args = (["data", "check", corpus, "--quiet", "--strict"] if command == "check"
            else train_args(corpus, tmp_path / "run", "--strict"))
    bad(capsys, *args, names=(corpus / AUDIO, "line 6", "column f1", "NaN"))
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_nan_label_strict(capsys, corpus):
    set_cell(corpus / AROUSAL, 4, 1, "nan")
    assert run_cli(capsys, "data", "check", corpus, "--quiet")[0] == 0  # default: left out
    check(capsys, corpus, "--strict", names=(corpus / AROUSAL, "line 4", "column value"))


@pytest.mark.parametrize("rel", [AUDIO, AROUSAL], ids=["features", "labels"])
def test_unsorted_timestamps(capsys, corpus, rel):
    rows = lines(corpus / rel)
    rows[5], rows[6] = rows[6], rows[5]  # lines 6 and 7
    write_lines(corpus / rel, rows)
    check(capsys, corpus, names=(corpus / rel, "line 7", "column timestamp", "unsorted"))


@pytest.mark.parametrize("rel", [AUDIO, AROUSAL], ids=["features", "labels"])
def test_duplicate_timestamps(capsys, corpus, rel):
    rows = lines(corpus / rel)
    rows.insert(5, rows[5])  # line 6 repeated as line 7
    write_lines(corpus / rel, rows)
    check(capsys, corpus, names=(corpus / rel, "line 7", "column timestamp", "duplicate"))


def test_missing_timestamp_cell(capsys, corpus):
    set_cell(corpus / AUDIO, 5, 0, "")
    check(capsys, corpus, names=(corpus / AUDIO, "line 5", "column timestamp"))


def test_feature_and_label_times_do_not_overlap(capsys, corpus):
    rows = lines(corpus / AUDIO)
    shifted = [rows[0]]
    for row in rows[1:]:
        cells = row.split(",")
        cells[0] = str(int(cells[0]) + 3_600_000)  # an hour later: wrong clock
        shifted.append(",".join(cells))
    write_lines(corpus / AUDIO, shifted)
    check(capsys, corpus, names=(corpus / AUDIO, "timestamp", "S01_1", "milliseconds"))


# ---------------------------------------------------------------------------------------------
# partition.csv rules


def test_duplicate_ids_in_partition(capsys, corpus):
    rows = lines(corpus / PARTITION)
    write_lines(corpus / PARTITION, [*rows, rows[2]])
    check(capsys, corpus, names=(corpus / PARTITION, "line 7", "column Id", "'S02_1'", "line 3"))


def test_unknown_partition_name(capsys, corpus):
    rows = lines(corpus / PARTITION)
    rows[4] = rows[4].replace("devel", "validation")
    write_lines(corpus / PARTITION, rows)
    msg = check(capsys, corpus, names=(corpus / PARTITION, "line 5", "column Partition",
                                       "'validation'"))
    assert "train, devel, test" in msg


def test_subject_in_two_partitions(capsys, corpus):
    rows = lines(corpus / PARTITION)
    assert rows[4] == "S04_1,devel,S04"
    rows[4] = "S04_1,devel,S01"
    write_lines(corpus / PARTITION, rows)
    check(capsys, corpus, names=(corpus / PARTITION, "line 5", "column Subject", "'S01'", "line 2"))


# ---------------------------------------------------------------------------------------------
# --config YAML


def _train_with_config(capsys, corpus, tmp_path, text: str, *, names=()) -> str:
    config = tmp_path / "config.yaml"
    config.write_text(text)
    msg = bad(capsys, "train", "--data", corpus, "--config", config, "--out", tmp_path / "run",
              "--quiet", names=(config, *names))
    assert not (tmp_path / "run").exists()
    return msg


def test_config_unknown_key(capsys, corpus, tmp_path):
    _train_with_config(capsys, corpus, tmp_path,
                       "data:\n  features: [audio]\n  targets: [arousal]\nmodel:\n  hiden: 8\n",
                       names=("'model.hiden'",))


def test_config_wrong_type(capsys, corpus, tmp_path):
    _train_with_config(capsys, corpus, tmp_path,
                       "data:\n  features: [audio]\n  targets: [arousal]\ntrain:\n  epochs: many\n",
                       names=("train.epochs", "'many'"))


def test_config_invalid_yaml(capsys, corpus, tmp_path):
    _train_with_config(capsys, corpus, tmp_path,
                       "data:\n  features: [audio]\n  targets: [arousal]\ntrain:\n  epochs: 1\n"
                       " seeds: 1\n", names=("line 6", "YAML"))


def test_config_not_a_mapping(capsys, corpus, tmp_path):
    _train_with_config(capsys, corpus, tmp_path, "- audio\n- arousal\n", names=("mapping",))


def test_config_not_utf8(capsys, corpus, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_bytes(b"data:\n  features: [au\xe9dio]\n  targets: [arousal]\n")
    bad(capsys, "train", "--data", corpus, "--config", config, "--out", tmp_path / "run", "--quiet",
        names=(config, "UTF-8"))


def test_config_file_missing(capsys, corpus, tmp_path):
    config = tmp_path / "nope.yaml"
    bad(capsys, "train", "--data", corpus, "--config", config, "--out", tmp_path / "run", "--quiet",
        names=(config, "not found"))


def test_config_is_a_folder(capsys, corpus, tmp_path):
    """An OSError on a path the user gave is bad input too (exit 2, the path named)."""
    bad(capsys, "train", "--data", corpus, "--config", tmp_path, "--out", tmp_path / "run",
        "--quiet", names=(tmp_path,))


def test_invalid_model_option_combination(capsys, corpus, tmp_path):
    bad(capsys, *train_args(corpus, tmp_path / "run", "--model", "attn-rnn", "--heads", "3"),
        names=("heads", "hidden"))


def test_option_of_wrong_type_is_a_usage_error(capsys, corpus, tmp_path):
    code, out, err = run_cli(capsys, "train", "--data", corpus, "--out", tmp_path / "run",
                             "--epochs", "many")
    assert code == 2
    assert "Traceback" not in err
    assert "'--epochs'" in err and "integer" in err


# ---------------------------------------------------------------------------------------------
# train options and the run folder


def test_per_recording_not_among_the_features(capsys, corpus, tmp_path):
    msg = bad(capsys, *train_args(corpus, tmp_path / "run", "--per-recording", "video"),
              names=("per_recording", "video", "audio"))
    assert "{" not in msg  # not the whole data section as given


def test_hop_longer_than_the_window(capsys, corpus, tmp_path):
    msg = bad(capsys, *train_args(corpus, tmp_path / "run", "--win", "10", "--hop", "20"),
              names=("hop (20)", "window (10)", "hop <= win"))
    assert "{" not in msg


def test_train_without_features(capsys, corpus, tmp_path):
    bad(capsys, "train", "--data", corpus, "--target", "arousal", "--out", tmp_path / "run",
        *TINY, names=("--features",))
    assert not (tmp_path / "run").exists()


def test_train_without_target(capsys, corpus, tmp_path):
    bad(capsys, "train", "--data", corpus, "--features", "audio", "--out", tmp_path / "run",
        *TINY, names=("--target",))


def test_train_out_holds_finished_run(capsys, corpus, tiny_run):
    before = (tiny_run / "checkpoint.pt").read_bytes()
    bad(capsys, *train_args(corpus, tiny_run), names=(tiny_run, "finished run"))
    assert (tiny_run / "checkpoint.pt").read_bytes() == before  # untouched


def test_train_out_is_a_file(capsys, corpus, tmp_path):
    out = tmp_path / "run.txt"
    out.write_text("not a folder")
    bad(capsys, *train_args(corpus, out), names=(out,))


def test_train_out_holds_interrupted_run_needs_resume(capsys, corpus, tiny_run):
    (tiny_run / "checkpoint.pt").unlink()
    (tiny_run / "metrics.json").unlink()
    (tiny_run / "train_state.pt").write_bytes(b"state")
    bad(capsys, *train_args(corpus, tiny_run), names=(tiny_run, "--resume"))


def test_resume_with_other_options(capsys, corpus, tmp_path):
    out = tmp_path / "run"
    config = TINY_CONFIG.model_copy(deep=True)
    config.train.epochs = 3

    def stop(e):
        if e.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        emotrace.fit(corpus, out=out, config=config, on_event=stop)
    before = (out / "config.yaml").read_text()
    bad(capsys, *train_args(corpus, out, "--epochs", "5", "--resume"),
        names=(out / "config.yaml", "train.epochs: 5 now, 3 in the run", "--resume"))
    assert (out / "config.yaml").read_text() == before  # left as it was
    code, _, err = run_cli(capsys, *train_args(corpus, out, "--epochs", "3", "--resume"))
    assert code == 0, err


def test_run_folder_missing(capsys, corpus, tmp_path):
    run = tmp_path / "no-run"
    bad(capsys, "evaluate", "--run", run, "--data", corpus, "--quiet", names=(run, "not found"))


def test_run_folder_incomplete(capsys, corpus, tiny_run):
    (tiny_run / "checkpoint.pt").unlink()
    bad(capsys, "evaluate", "--run", tiny_run, "--data", corpus, "--quiet",
        names=(tiny_run / "checkpoint.pt", "missing"))


def test_run_folder_interrupted(capsys, corpus, tiny_run):
    (tiny_run / "train_state.pt").write_bytes(b"state")
    bad(capsys, "predict", "--run", tiny_run, "--data", corpus, "--partition", "devel", "--out",
        tiny_run.parent / "p", "--quiet", names=(tiny_run, "interrupted", "--resume"))


def test_checkpoint_from_another_run(capsys, corpus, tiny_run, tmp_path):
    other = tmp_path / "other"
    config = TINY_CONFIG.model_copy(deep=True)
    config.data.features = ["video"]
    emotrace.fit(corpus, out=other, config=config)
    shutil.copy(other / "checkpoint.pt", tiny_run / "checkpoint.pt")
    bad(capsys, "evaluate", "--run", tiny_run, "--data", corpus, "--quiet",
        names=(tiny_run / "config.yaml", tiny_run / "checkpoint.pt", "different runs"))


def test_checkpoint_weights_of_another_model(capsys, corpus, tiny_run, tmp_path):
    """A checkpoint whose description matches the run but whose weights come from a model with
    another hidden size."""
    other = tmp_path / "other"
    config = TINY_CONFIG.model_copy(deep=True)
    config.model.hidden = 12
    emotrace.fit(corpus, out=other, config=config)
    mine = torch.load(tiny_run / "checkpoint.pt", weights_only=True)
    theirs = torch.load(other / "checkpoint.pt", weights_only=True)
    mine["model"] = theirs["model"]
    torch.save(mine, tiny_run / "checkpoint.pt")
    bad(capsys, "evaluate", "--run", tiny_run, "--data", corpus, "--quiet",
        names=(tiny_run / "checkpoint.pt", "do not fit", "size mismatch"))


def test_checkpoint_truncated(capsys, corpus, tiny_run):
    ckpt = tiny_run / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:200])
    bad(capsys, "evaluate", "--run", tiny_run, "--data", corpus, "--quiet",
        names=(ckpt, "not a readable"))


def test_evaluate_on_corpus_with_other_feature_dims(capsys, corpus, tiny_run):
    for path in (corpus / "feature_segments/audio").glob("*.csv"):
        write_lines(path, [row.rsplit(",", 1)[0] for row in lines(path)])  # drop the last column
    bad(capsys, "evaluate", "--run", tiny_run, "--data", corpus, "--quiet",
        names=(corpus / "feature_segments/audio", "15 feature columns", "16"))


def test_predict_out_is_a_file(capsys, corpus, tiny_run, tmp_path):
    out = tmp_path / "predictions.csv"
    out.write_text("keep me")
    msg = bad(capsys, "predict", "--run", tiny_run, "--data", corpus, "--partition", "devel",
              "--out", out, "--quiet", names=(out, "is a file", "folder"))
    assert "File exists" not in msg
    assert out.read_text() == "keep me"


def test_export_out_is_a_folder(capsys, tiny_run, tmp_path):
    out = tmp_path / "exports"
    out.mkdir()
    msg = bad(capsys, "export", "--run", tiny_run, "--out", out, "--quiet",
              names=(out, "is a folder", out / "model.onnx"))
    assert ".tmp" not in msg
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("args", [
    ("data", "prepare", "synthetic", "--out", "{out}"),
    ("personalise", "--run", "{run}", "--data", "{corpus}", "--out", "{out}", "--subject-train",
     "2s", "--subject-devel", "2s", "--epochs", "1", "--seeds", "1"),
], ids=["data prepare", "personalise"])
def test_out_is_a_file_where_a_folder_is_written(capsys, corpus, tiny_run, tmp_path, args):
    out = tmp_path / "notes.txt"
    out.write_text("keep me")
    msg = bad(capsys, *(a.format(out=out, run=tiny_run, corpus=corpus) for a in args), "--quiet",
              names=(out, "is a file, where a folder is needed", "move the file away"))
    assert "Not a directory" not in msg
    assert out.read_text() == "keep me"


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_unknown_partition_option(capsys, corpus, tiny_run, command):
    args = [command, "--run", tiny_run, "--data", corpus, "--partition", "validation", "--quiet"]
    if command == "predict":
        args += ["--out", tiny_run.parent / "p"]
    msg = bad(capsys, *args, names=("--partition", "'validation'"))
    assert "devel" in msg
    assert not (tiny_run / "eval_validation.json").exists()


def test_evaluate_test_partition_without_labels(capsys, corpus, tiny_run):
    for target in ("arousal", "valence"):
        (corpus / "label_segments" / target / "S05_1.csv").unlink()
    bad(capsys, "evaluate", "--run", tiny_run, "--data", corpus, "--partition", "test", "--quiet",
        names=(corpus / "label_segments", "'test'", "S05_1", "emotrace predict"))
    assert not (tiny_run / "eval_test.json").exists()


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_partition_the_corpus_does_not_have(capsys, corpus, tiny_run, command):
    """A corpus without test recordings (as the public CEAP-360VR copy) names what it has."""
    part = corpus / PARTITION
    write_lines(part, [row for row in lines(part) if not row.endswith(",test") and ",test," not in row])
    args = [command, "--run", tiny_run, "--data", corpus, "--partition", "test", "--quiet"]
    if command == "predict":
        args += ["--out", tiny_run.parent / "p"]
    msg = bad(capsys, *args, names=(part, "no recording in partition 'test'", "devel, train"))
    assert "no recordings selected" not in msg


@pytest.mark.parametrize("args", [
    ("data", "check", "{corpus}"),
    ("train", "--data", "{corpus}", "--features", "audio", "--target", "arousal", "--out",
     "{tmp}/run", "--epochs", "1", "--seeds", "1"),
    ("evaluate", "--run", "{tmp}/no-run", "--data", "{corpus}"),
], ids=["data check", "train", "evaluate"])
def test_errors_print_only_the_error_paragraph(capsys, corpus, tmp_path, args):
    """Without --quiet, too: no progress line (``load ━━━ 0/?``) before the message."""
    (corpus / AROUSAL).unlink()
    code, out, err = run_cli(capsys, *(a.format(corpus=corpus, tmp=tmp_path) for a in args))
    error_message(code, out, err)
    assert err.startswith("error:"), err
    assert "━" not in err and "0/?" not in err


def test_debug_shows_the_exception(corpus):
    (corpus / PARTITION).unlink()
    from emotrace.cli import main

    with pytest.raises(EmotraceError, match="partition.csv"):
        main(["data", "check", str(corpus), "--quiet", "--debug"])


# ---------------------------------------------------------------------------------------------
# the real entry points, in a subprocess


def _env() -> dict:
    return {**os.environ, "COLUMNS": "80", "PYTHONWARNINGS": "ignore"}


def test_python_m_emotrace_bad_input(tmp_path):
    root = tmp_path / "missing-corpus"
    p = subprocess.run([sys.executable, "-m", "emotrace", "data", "check", str(root), "--quiet"],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert error_message(p.returncode, p.stdout, p.stderr)
    assert str(root) in p.stderr


def test_console_script_bad_input(corpus):
    script = Path(sys.executable).with_name("emotrace")
    if not script.exists():
        pytest.skip(f"console script not installed at {script}")
    _nan_and_inf(corpus)
    p = subprocess.run([str(script), "data", "check", str(corpus), "--strict", "--quiet"],
                       capture_output=True, text=True, env=_env(), timeout=120)
    msg = error_message(p.returncode, p.stdout, p.stderr)
    assert str(corpus / AUDIO) in msg and "line 6" in msg and "column f1" in msg
