"""Issue 12, item 2: outputs never land on inputs.

Every verb that writes refuses (exit 2, naming both paths) an output path that is equal to, inside
or a parent of the corpus given with ``--data``, an input run or an input folder, and an empty
output path. Each test snapshots everything under ``tmp_path`` (the corpus, the input runs and
anything beside them) before and after: a refused command changes nothing at all.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import TINY, TINY_CONFIG, run_cli, snapshot
from test_cli_errors import bad

import emotrace
from emotrace.errors import EmotraceError
from emotrace.fileio import check_output

LABELS = Path("label_segments/arousal")


def refused(capsys, tmp_path, *args, names=()) -> str:
    """``args`` fail with exit 2 naming ``names``, and nothing under ``tmp_path`` changed."""
    before = snapshot(tmp_path)
    msg = bad(capsys, *args, names=names)
    assert snapshot(tmp_path) == before
    return msg


def test_predict_over_the_gold_labels(capsys, corpus, tiny_run, tmp_path):
    """Was: the gold labels were replaced by the predictions, and evaluate then said CCC 1.0."""
    out = corpus / LABELS
    msg = refused(capsys, tmp_path, "predict", "--run", tiny_run, "--data", corpus, "--partition",
                  "devel", "--out", out, "--quiet", names=(out, corpus, "--data"))
    assert "inside" in msg


def test_predict_through_a_symlink_into_the_corpus(capsys, corpus, tiny_run, tmp_path):
    (tmp_path / "link").symlink_to(corpus / "label_segments")
    refused(capsys, tmp_path, "predict", "--run", tiny_run, "--data", corpus, "--partition",
            "devel", "--out", tmp_path / "link" / "arousal", "--quiet", names=(corpus,))


@pytest.mark.parametrize("where", ["run", "run-predictions"])
def test_predict_into_the_input_run(capsys, corpus, tiny_run, tmp_path, where):
    out = tiny_run if where == "run" else tiny_run / "predictions" / "devel"
    refused(capsys, tmp_path, "predict", "--run", tiny_run, "--data", corpus, "--partition",
            "devel", "--out", out, "--quiet", names=(out, tiny_run, "--run"))


@pytest.mark.parametrize("where", ["corpus", "inside", "parent"])
def test_train_out_on_the_corpus(capsys, corpus, tmp_path, where):
    """Was: `train --out CORPUS` wrote 40-odd files into the corpus."""
    out = {"corpus": corpus, "inside": corpus / "metadata" / "run", "parent": tmp_path}[where]
    msg = refused(capsys, tmp_path, "train", "--data", corpus, "--features", "audio", "--target",
                  "arousal", "--out", out, *TINY, names=(out, corpus, "--data"))
    assert {"corpus": "is the input", "inside": "is inside", "parent": "contains"}[where] in msg


@pytest.mark.parametrize("form", ["--out", "--out="])
def test_empty_out(capsys, corpus, tmp_path, form):
    args = [form, ""] if form == "--out" else ["--out="]
    msg = refused(capsys, tmp_path, "train", "--data", corpus, "--features", "audio", "--target",
                  "arousal", *args, *TINY, names=("--out",))
    assert "empty" in msg


def test_api_refuses_empty_out(corpus):
    with pytest.raises(EmotraceError, match="--out is empty"):
        emotrace.fit(corpus, out="", config=TINY_CONFIG)


def test_train_final_into_the_run_it_comes_from(capsys, corpus, tiny_run, tmp_path):
    out = tiny_run / "final"
    refused(capsys, tmp_path, "train", "--data", corpus, "--final", "--from", tiny_run, "--out",
            out, "--quiet", names=(out, tiny_run, "--from"))


def test_fuse_into_an_input_run(capsys, corpus, tiny_run, tmp_path):
    other = Path(shutil.copytree(tiny_run, tmp_path / "run2"))
    out = other / "fused"
    refused(capsys, tmp_path, "fuse", "--runs", tiny_run, other, "--data", corpus, "--out", out,
            "--method", "mean", "--quiet", names=(out, other, "--runs"))


def test_fuse_into_the_corpus(capsys, corpus, tiny_run, tmp_path):
    other = Path(shutil.copytree(tiny_run, tmp_path / "run2"))
    refused(capsys, tmp_path, "fuse", "--runs", tiny_run, other, "--data", corpus, "--out",
            corpus / "fused", "--method", "mean", "--quiet", names=(corpus, "--data"))


def test_predict_of_a_fused_run_into_one_of_its_inputs(capsys, corpus, tiny_run, tmp_path):
    """The runs a fused run reads are inputs of `predict` too."""
    other = Path(shutil.copytree(tiny_run, tmp_path / "run2"))
    fused = tmp_path / "fused"
    emotrace.fuse([tiny_run, other], data=corpus, out=fused, method="mean")
    out = other / "predictions" / "devel"
    refused(capsys, tmp_path, "predict", "--run", fused, "--data", corpus, "--partition", "devel",
            "--out", out, "--quiet", names=(out, other))


def test_personalise_into_the_corpus(capsys, corpus, tiny_run, tmp_path):
    out = corpus / "personal"
    refused(capsys, tmp_path, "personalise", "--run", tiny_run, "--data", corpus, "--out", out,
            "--quiet", names=(out, corpus, "--data"))


def test_tune_into_the_corpus(capsys, corpus, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("base:\n  data: {features: [audio], targets: [arousal]}\nspace:\n"
                     "  model.hidden: {choice: [8, 16]}\n")
    refused(capsys, tmp_path, "tune", "--data", corpus, "--space", space, "--out", corpus,
            "--quiet", names=(corpus, "--data"))


def test_tune_over_its_space_file(capsys, corpus, tmp_path):
    """tune writes OUT/space.yaml: an --out holding the space file would overwrite it."""
    space = tmp_path / "search" / "space.yaml"
    space.parent.mkdir()
    space.write_text("base:\n  data: {features: [audio], targets: [arousal]}\nspace:\n"
                     "  model.hidden: {choice: [8, 16]}\n")
    refused(capsys, tmp_path, "tune", "--data", corpus, "--space", space, "--out", space.parent,
            "--quiet", names=(space.parent, space, "--space"))


@pytest.mark.parametrize("where", ["run", "corpus"])
def test_report_into_an_input(capsys, corpus, tiny_run, tmp_path, where):
    out = tiny_run / "report" if where == "run" else corpus / "report"
    refused(capsys, tmp_path, "report", tiny_run, "--data", corpus, "--out", out,
            "--no-tensorboard", "--quiet", names=(out,))


def test_export_into_the_run(capsys, tiny_run, tmp_path):
    out = tiny_run / "model.onnx"
    refused(capsys, tmp_path, "export", "--run", tiny_run, "--out", out, "--no-check", "--quiet",
            names=(out, tiny_run, "--run"))


def test_gold_over_its_raw_input(capsys, corpus, tmp_path):
    """RAW = CORPUS/label_segments: the gold standard would land among the raters' files."""
    raw = corpus / "label_segments"
    refused(capsys, tmp_path, "gold", "--input", raw, "--dimension", "arousal", "--out", corpus,
            "--quiet", names=(raw, "--input"))


def test_gold_dimension_is_a_name(capsys, corpus, tmp_path):
    (tmp_path / "raw").mkdir()
    refused(capsys, tmp_path, "gold", "--input", tmp_path / "raw", "--dimension", "../../evil",
            "--out", corpus, "--quiet", names=("--dimension", "'../../evil'"))


def test_classes_over_another_target(capsys, corpus, tmp_path):
    """`classes --target arousal --name valence` would replace valence's gold standard."""
    msg = refused(capsys, tmp_path, "classes", "--data", corpus, "--target", "arousal", "--name",
                  "valence", "--quiet", names=("--name", "'valence'",
                                               corpus / "label_segments" / "valence"))
    assert "another --name" in msg


def test_classes_name_is_a_name(capsys, corpus, tmp_path):
    refused(capsys, tmp_path, "classes", "--data", corpus, "--target", "arousal", "--name",
            "../../x", "--quiet", names=("--name", "'../../x'"))


def test_extract_into_its_input_folder(capsys, corpus, tmp_path):
    signals = corpus / "feature_segments"
    refused(capsys, tmp_path, "extract", "physio", "--signals", signals, "--feature-set", "bio",
            "--labels", corpus, "--quiet", names=(signals, corpus / "feature_segments" / "bio"))


def test_a_command_writing_beside_the_inputs_still_works(capsys, corpus, tiny_run, tmp_path):
    """The control: the same predict with --out beside the corpus and the run."""
    before = snapshot(tmp_path, skip=(tmp_path / "preds",))
    code, _, err = run_cli(capsys, "predict", "--run", tiny_run, "--data", corpus, "--partition",
                           "devel", "--out", tmp_path / "preds", "--quiet")
    assert code == 0, err
    assert snapshot(tmp_path, skip=(tmp_path / "preds",)) == before
    assert [p.name for p in (tmp_path / "preds").iterdir()] == ["S04_1.csv"]


@pytest.mark.parametrize(("out", "how"), [("c", "is"), ("c/x", "is inside"), (".", "contains"),
                                          ("c/../c", "is"), ("d", None)])
def test_check_output(tmp_path, monkeypatch, out, how):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c").mkdir()
    if how is None:
        assert check_output(out, {"--data": "c", "--run": None}) == Path(out)
    else:
        with pytest.raises(EmotraceError, match=f"{how} the input --data c"):
            check_output(out, {"--data": "c"})


@pytest.mark.parametrize("where", ["same", "inside"])
def test_data_prepare_into_its_source(capsys, tmp_path, where):
    """Not in the issue's list, but the same rule: an adapter never writes into the dataset."""
    source = tmp_path / "ceap"
    source.mkdir()
    (source / "README").write_text("the dataset as distributed")
    out = source if where == "same" else source / "muse"
    refused(capsys, tmp_path, "data", "prepare", "ceap360vr", "--source", source, "--out", out,
            "--quiet", names=(out, source, "--source"))


def test_train_out_holding_its_config_file(capsys, corpus, tmp_path):
    """train writes OUT/config.yaml: a new run into the folder of its --config would overwrite
    the user's file (with --resume, RUN/config.yaml is the run's own and stays allowed)."""
    folder = tmp_path / "exp"
    folder.mkdir()
    config = folder / "config.yaml"
    config.write_text("# my notes\ndata: {features: [audio], targets: [arousal]}\n")
    refused(capsys, tmp_path, "train", "--data", corpus, "--config", config, "--out", folder,
            *TINY, names=(folder, config, "--config"))
