"""Reports: figures, the self-contained HTML (rendered in headless Chromium), TensorBoard."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import run_cli

import emotrace
from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from emotrace.errors import EmotraceError

pytest.importorskip("matplotlib", reason="the report extra (matplotlib) is not installed")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian "
                                    "package `chromium`)")


@pytest.fixture(scope="module")
def two_runs(corpus_template, tmp_path_factory):
    """A single-target run (2 seeds) and a two-target run on the tiny corpus."""
    base = tmp_path_factory.mktemp("report_runs")
    a = base / "single"
    emotrace.fit(corpus_template, out=a, config=RunConfig(
        data=DataConfig(features=["audio"], targets=["arousal"]),
        model=ModelConfig(hidden=8, layers=1), train=TrainConfig(epochs=3, seeds=2)))
    b = base / "multi"
    emotrace.fit(corpus_template, out=b, config=RunConfig(
        data=DataConfig(features=["audio", "video"], targets=["arousal", "valence"]),
        model=ModelConfig(name="rnn", hidden=8, layers=1), train=TrainConfig(epochs=2, seeds=1)))
    return a, b


@pytest.fixture(scope="module")
def built(two_runs, corpus_template, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report"
    path = emotrace.report(list(two_runs), data=corpus_template, out=out)
    return path, out


def _imgs(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<img [^>]*data-file="([^"]+)" src="data:image/png;base64,([^"]+)"', html)


def test_html_is_self_contained_and_embeds_every_png(built):
    path, out = built
    html = path.read_text()
    imgs = _imgs(html)
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert sorted(name for name, _ in imgs) == pngs
    # curves per run, traces + scatter per target (1 + 2), and the comparison
    assert {"single_curves.png", "multi_curves.png", "single_arousal_traces.png",
            "multi_valence_scatter.png", "comparison.png"} <= set(pngs)
    for name, data in imgs:
        assert base64.b64decode(data) == (out / name).read_bytes()
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # nothing loaded from elsewhere: every src/href is a data URI
    assert not re.search(r'(src|href)="(?!data:)', html)
    assert "http://" not in html and "https://" not in html


def _evaluate(run, root, target):
    """What `emotrace evaluate` computes, from the model and the corpus (not the report's files)."""
    from emotrace.data.muse import load_corpus
    from emotrace.metrics import trace_metrics
    from emotrace.run import load_run
    from emotrace.train.predict import predict_arrays

    r = load_run(run)
    dc = r.config.data
    recs = load_corpus(root, features=dc.features, targets=dc.targets).partition("devel")
    preds = predict_arrays(r.model, [r.standardiser.transform(x, dc.features) for x in recs])
    k = dc.targets.index(target)
    return trace_metrics([x.labels[target] for x in recs], [p[:, k] for p in preds])


def test_metrics_table_matches_evaluate(built, two_runs, corpus_template):
    html = built[0].read_text()
    for run, target, name in [(two_runs[0], "arousal", "single"), (two_runs[1], "valence", "multi")]:
        m = _evaluate(run, corpus_template, target)
        row = re.search(rf'<tr><td class="l">{name}</td><td>[^<]*</td><td>{target}</td><td>devel</td>'
                        rf"<td>([^<]+)</td><td>([^<]+)</td>", html)
        assert row is not None
        assert float(row.group(1)) == pytest.approx(m["ccc"], abs=6e-4)
        assert float(row.group(2)) == pytest.approx(m["ccc_per_recording"], abs=6e-4)


@needs_chromium
def test_chromium_decodes_every_figure(built, tmp_path):
    path, _ = built
    n = len(_imgs(path.read_text()))
    res = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                          "--disable-background-networking", f"--user-data-dir={tmp_path / 'ud'}",
                          "--virtual-time-budget=10000", "--dump-dom", path.as_uri()],
                         capture_output=True, text=True, timeout=120)
    dom = res.stdout
    assert f'data-figures-decoded="{n}"' in dom, res.stderr[-2000:]
    sizes = re.findall(r'data-natural-width="(\d+)" data-natural-height="(\d+)"', dom)
    assert len(sizes) == n and all(int(w) > 100 and int(h) > 100 for w, h in sizes)
    assert f"{n} of {n} figures shown." in dom


@needs_chromium
def test_chromium_screenshot_is_not_blank(built, tmp_path):
    from PIL import Image

    path, _ = built
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", f"--user-data-dir={tmp_path / 'ud'}",
                    "--window-size=1200,2400", f"--screenshot={shot}", path.as_uri()],
                   capture_output=True, timeout=120)
    px = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    assert px.shape[:2] == (2400, 1200)
    # the bars and traces use matplotlib's blue and orange: coloured pixels, not just text
    blue = (px[..., 2] > 150) & (px[..., 0] < 80)
    orange = (px[..., 0] > 200) & (px[..., 1] > 100) & (px[..., 1] < 160) & (px[..., 2] < 60)
    assert blue.sum() > 500 and orange.sum() > 500


def test_tensorboard_scalars_match_history(built, two_runs):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, out = built
    metrics = json.loads((two_runs[0] / "metrics.json").read_text())
    acc = EventAccumulator(str(out / "tensorboard" / "single"))
    acc.Reload()
    for seed in metrics["seeds"]:
        got = [e.value for e in acc.Scalars(f"seed{seed['seed']}/devel_ccc")]
        want = [h["devel_ccc"] for h in seed["history"]]
        assert got == pytest.approx(want, abs=1e-6)


def test_without_data_uses_stored_metrics(two_runs, tmp_path):
    path = emotrace.report(two_runs[0], out=tmp_path / "r", tensorboard=False)
    html = path.read_text()
    assert "without gold" in html
    assert not (tmp_path / "r" / "tensorboard").exists()
    ccc = json.loads((two_runs[0] / "metrics.json").read_text())["devel"]["ccc"]
    assert f"<td>{ccc:.3f}</td>" in html and "metrics.json" in html
    assert "single_arousal_scatter.png" not in html  # no gold, no scatter
    assert "single_arousal_traces.png" in html


def test_classification_run_gets_a_confusion_matrix(tmp_path):
    """A run folder with per-segment class predictions (as a classifier writes them)."""
    run, root = tmp_path / "cls", tmp_path / "corpus"
    (run / "predictions" / "devel").mkdir(parents=True)
    (root / "label_segments" / "mood").mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"target": "mood", "devel": {"f1_macro": 0.5}}))
    rng = np.random.default_rng(0)
    truth = {}
    for rec in ("r1", "r2"):
        gold = rng.integers(0, 3, 6)
        pred = np.where(rng.random(6) < 0.7, gold, (gold + 1) % 3)
        truth[rec] = (gold, pred)
        (run / "predictions" / "devel" / f"{rec}.csv").write_text(  # as `emotrace predict` writes them
            "segment_id,start,end,class_id,prob_0,prob_1,prob_2\n"
            + "".join(f"{s},{s * 1000},{s * 1000 + 750},{c},0.2,0.3,0.5\n" for s, c in enumerate(pred)))
        rows = [f"{s * 1000 + k * 250},{s},{c}\n" for s, c in enumerate(gold) for k in range(4)]
        (root / "label_segments" / "mood" / f"{rec}.csv").write_text(
            "timestamp,segment_id,class_id\n" + "".join(rows))
    path = emotrace.report(run, data=root, out=tmp_path / "r", tensorboard=False)
    html = path.read_text()
    assert "cls_mood_confusion.png" in html and "no traces or scatter" in html
    g = np.concatenate([t[0] for t in truth.values()])
    p = np.concatenate([t[1] for t in truth.values()])
    assert f"accuracy {np.mean(g == p):.3f}" in html


def test_cli_report(capsys, two_runs, corpus_template, tmp_path):
    code, _, err = run_cli(capsys, "report", *two_runs, "--data", corpus_template, "--out",
                           tmp_path / "r", "--max-recordings", "1", "--no-tensorboard", "--quiet")
    assert code == 0, err
    assert (tmp_path / "r" / "report.html").exists() and "report.html" in err
    assert "1 of 1 devel recordings" in (tmp_path / "r" / "report.html").read_text()


def test_cli_report_bad_input(capsys, two_runs, tiny_run, corpus, tmp_path, monkeypatch):
    code, _, err = run_cli(capsys, "report", tmp_path / "nope", "--out", tmp_path / "r")
    assert code == 2 and "run folder not found" in err
    (tiny_run / "metrics.json").unlink()
    code, _, err = run_cli(capsys, "report", tiny_run, "--out", tmp_path / "r")
    assert code == 2 and "metrics.json: missing" in err
    code, _, err = run_cli(capsys, "report", two_runs[0], "--out", tmp_path / "r", "--partition", "dev")
    assert code == 2 and "unknown partition" in err
    shutil.rmtree(corpus / "label_segments")
    code, _, err = run_cli(capsys, "report", two_runs[0], "--data", corpus, "--out", tmp_path / "r")
    assert code == 2 and "no label_segments folder" in err
    from emotrace.report import tensorboard as tb

    monkeypatch.setattr(tb, "available", lambda: False)
    code, _, err = run_cli(capsys, "report", two_runs[0], "--out", tmp_path / "r", "--tensorboard")
    assert code == 2 and 'emotrace[tensorboard]' in err and "Traceback" not in err


def test_missing_matplotlib_names_the_extra(two_runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(EmotraceError, match=r'pip install "emotrace\[report\]"'):
        emotrace.report(two_runs[0], out=tmp_path / "r", tensorboard=False)


def test_runs_that_differ_only_in_an_option_are_told_apart(corpus_template, tmp_path):
    """Two runs that differ only in --per-recording: the metrics table names the difference."""
    runs = []
    for name, per_recording in (("plain", []), ("perrec", ["audio"])):
        runs.append(tmp_path / name)
        emotrace.fit(corpus_template, out=runs[-1], config=RunConfig(
            data=DataConfig(features=["audio"], targets=["arousal"], per_recording=per_recording),
            model=ModelConfig(hidden=8, layers=1), train=TrainConfig(epochs=1, seeds=1)))
    html = emotrace.report(runs, out=tmp_path / "r", tensorboard=False).read_text()
    assert "<th>options that differ</th>" in html
    rows = re.findall(r'<tr><td class="l">(plain|perrec)</td>(.*?)</tr>', html)
    cells = {name: re.findall(r"<td>([^<]*)</td>", row)[-1] for name, row in rows}
    assert cells == {"plain": "data.per_recording=[]", "perrec": "data.per_recording=audio"}
    assert "Options that differ from the other runs: data.per_recording=audio" in html


def test_differing_options():
    from emotrace.report.build import differing_options

    a = {"data": {"features": ["audio"], "targets": ["arousal"], "win": 0},
         "model": {"hidden": 8, "name": "rnn"}}
    b = {"data": {"features": ["audio", "video"], "targets": ["valence"], "win": 0},
         "model": {"hidden": 16, "name": "rnn"}}
    assert differing_options([a, b]) == ["data.features=audio model.hidden=8",
                                         "data.features=audio,video model.hidden=16"]
    assert differing_options([a]) == ["—"]
    # how many cores or processes a run used does not change its result: not an option here
    c = {**a, "train": {"threads": 2, "jobs": 2}}
    assert differing_options([a, c]) == ["—", "—"]
    assert differing_options([a, a]) == ["—", "—"]
    fused = {"fusion": {"method": "mean", "runs": ["x", "y"]}}
    assert differing_options([a, fused])[1] == ("data.features=— data.win=— fusion.method=mean "
                                                "fusion.runs=x,y model.hidden=— model.name=—")


def test_trace_panel_titles_clear_the_tick_labels_above(two_runs, corpus_template):
    """Each recording's title sits below the x tick labels of the panel above it (they used to
    overlap); checked on the drawn figure's text boxes."""
    from emotrace.report import figures
    from emotrace.report.inputs import load_run_data

    rd = load_run_data(two_runs[0], data=corpus_template, partition="train")
    items = rd.traces["arousal"][:4]
    assert len(items) >= 2
    fig = figures.traces_figure(items, target="arousal", title="t")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes = fig.axes
    for above, below in zip(axes, axes[1:], strict=False):
        title = below.title.get_window_extent(renderer)
        ticks = [t.get_window_extent(renderer) for t in above.get_xticklabels() if t.get_text()]
        assert ticks
        assert all(title.y1 <= t.y0 for t in ticks), "a panel title overlaps the tick labels above"
    import matplotlib.pyplot as plt

    plt.close(fig)
