"""`emotrace classes`: segment statistics → z-score → PCA → k-means / GMM, fitted on train only."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import make_corpus, run_cli

import emotrace
from emotrace.labels.classes import fit_classes, make_classes

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
EXAMPLES = SHARED / "muse-toolbox-examples"


def write_trace_corpus(root: Path, traces: dict[str, tuple[str, np.ndarray]], *,
                       step_ms: int = 200) -> Path:
    """partition.csv and label_segments/valence/<id>.csv (timestamp ms, value)."""
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    (root / "label_segments" / "valence").mkdir(parents=True, exist_ok=True)
    rows = ["Id,Partition"] + [f"{rid},{part}" for rid, (part, _) in traces.items()]
    (root / "metadata" / "partition.csv").write_text("\n".join(rows) + "\n")
    for rid, (_, y) in traces.items():
        lines = ["timestamp,value"] + [f"{i * step_ms},{v:.6f}" for i, v in enumerate(y)]
        (root / "label_segments" / "valence" / f"{rid}.csv").write_text("\n".join(lines) + "\n")
    return root


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """The synthetic corpus with 8 train, 3 devel and 2 test subjects (60 steps each)."""
    return make_corpus(tmp_path_factory.mktemp("cls") / "corpus", subjects=(8, 3, 2),
                       steps=(60, 60))


@pytest.fixture
def corpus(small, tmp_path) -> Path:
    return Path(shutil.copytree(small, tmp_path / "corpus"))


FAST = ["--segment-length", "5", "--k", "3", "--pca", "3", "--peak-support", "3", "--quiet"]


@pytest.mark.parametrize("cluster", ["kmeans", "gmm"])
def test_classes_writes_a_trainable_target(capsys, corpus, cluster):
    code, out, err = run_cli(capsys, "classes", "--data", corpus, "--target", "valence",
                             "--cluster", cluster, *FAST)
    assert code == 0, err
    assert "silhouette" in out and "distinguished by" in out
    rep = json.loads((corpus / "metadata" / "classes_valence_class.json").read_text())
    assert rep["segments"] == {"train": 24, "devel": 9, "test": 6}  # 3 segments of 5 s each
    for part, shares in rep["class_shares"].items():
        assert sum(shares) == pytest.approx(1, abs=1e-3) and len(shares) == 3, part
    assert -1 <= rep["silhouette"]["train"] <= 1
    assert len(rep["profile"]) == 3 and all(c["distinguishing"] for c in rep["profile"])
    assert rep["statistics"][0] == "mean"  # "valence" picks the valence set
    rows = read_csv(corpus / "label_segments" / "valence_class" / "S01_1.csv")
    assert list(rows[0]) == ["timestamp", "segment_id", "class_id"] and len(rows) == 60
    by_segment: dict[str, set] = {}
    for r in rows:
        by_segment.setdefault(r["segment_id"], set()).add(r["class_id"])
    assert len(by_segment) == 3 and all(len(c) == 1 for c in by_segment.values())
    loaded = emotrace.load_corpus(corpus, features=["audio"], targets=["valence_class"])
    rec = loaded.partition("train")[0]
    assert np.array_equal(np.unique(rec.class_segments["valence_class"]), [0, 1, 2])
    assert set(np.unique(rec.labels["valence_class"])) <= {0, 1, 2}


def test_classes_are_fitted_on_train_only(corpus, tmp_path):
    first = make_classes(corpus, target="valence", out=tmp_path / "a", segment_length=5, k=3,
                         pca=3, peak_support=3)
    for f in (corpus / "label_segments" / "valence").glob("*.csv"):  # change devel and test traces
        if not f.stem.startswith(("S0", "S1")) or f.stem[:3] in ("S09", "S10", "S11", "S12", "S13"):
            rows = f.read_text().splitlines()
            f.write_text("\n".join([rows[0]] + [f"{r.split(',')[0]},{10 * float(r.split(',')[1])}"
                                                for r in rows[1:]]) + "\n")
    second = make_classes(corpus, target="valence", out=tmp_path / "b", segment_length=5, k=3,
                          pca=3, peak_support=3)
    a = read_csv(tmp_path / "a" / "metadata" / "classes_valence_class_segments.csv")
    b = read_csv(tmp_path / "b" / "metadata" / "classes_valence_class_segments.csv")
    train_a = [(r["Id"], r["class_id"]) for r in a if r["partition"] == "train"]
    train_b = [(r["Id"], r["class_id"]) for r in b if r["partition"] == "train"]
    assert train_a == train_b
    assert first["profile"] == second["profile"]
    assert first["class_shares"]["train"] == second["class_shares"]["train"]
    changed = [(r["class_id"], s["class_id"]) for r, s in zip(a, b, strict=True)
               if r["partition"] != "train"]
    assert any(x != y for x, y in changed)  # devel/test were really re-assigned


def test_assignment_is_the_nearest_centroid_and_classes_follow_the_median():
    rng = np.random.default_rng(0)
    centres = np.array([[5.0, 1.0], [-5.0, 0.0], [0.0, 8.0]])  # medians 5, -5, 0
    train = np.concatenate([c + 0.3 * rng.normal(size=(20, 2)) for c in centres])
    model = fit_classes(train, names=["median", "std"], pca=2, cluster="kmeans", k=3)
    # class 0 holds the lowest median, class 2 the highest
    assert model.assign(centres).tolist() == [2, 0, 1]
    devel = rng.normal(scale=6, size=(50, 2))
    red = model.reduce(devel)
    dist = ((red[:, None, :] - model.cluster.cluster_centers_[None]) ** 2).sum(-1)
    assert np.array_equal(model.assign(devel), model.order[dist.argmin(1)])


def test_small_class_warning(capsys, tmp_path):
    rng = np.random.default_rng(1)
    traces = {f"r{i}": ("train", rng.normal(size=30)) for i in range(20)}
    traces["odd"] = ("train", 50 + 20 * rng.normal(size=30))
    traces["d1"] = ("devel", rng.normal(size=30))
    root = write_trace_corpus(tmp_path / "c", traces)
    code, _, err = run_cli(capsys, "classes", "--data", root, "--target", "valence",
                           "--features", "arousal-set", "--k", "2", "--peak-support", "2",
                           "--min-class-share", "0.05", "--quiet")
    assert code == 0, err
    assert "smallest class holds 4.8%" in " ".join(err.split())
    rep = json.loads((root / "metadata" / "classes_valence_class.json").read_text())
    assert sorted(rep["class_shares"]["train"]) == pytest.approx([1 / 21, 20 / 21], abs=1e-3)
    assert rep["profile"][1]["segments"] == 1  # the outlier has the highest median: class 1


def write_segments(path: Path, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(["segment_id,start,end", *rows]) + "\n")
    return path


@pytest.fixture
def seg_corpus(tmp_path) -> tuple[Path, Path]:
    """4 train + 1 devel recordings of 50 steps at 200 ms (0–9800 ms), two segments each."""
    rng = np.random.default_rng(2)
    traces = {f"t{i}": ("train", np.cumsum(rng.normal(size=50))) for i in range(4)}
    traces["d"] = ("devel", np.cumsum(rng.normal(size=50)))
    root = write_trace_corpus(tmp_path / "c", traces)
    seg = tmp_path / "seg"
    for rid in traces:
        write_segments(seg / f"{rid}.csv", ["1,0,5000", "2,5000,10000"])
    return root, seg


def test_segments_from_files(capsys, seg_corpus):
    root, seg = seg_corpus
    code, _, err = run_cli(capsys, "classes", "--data", root, "--target", "valence", "--segments",
                           seg, "--k", "2", "--peak-support", "2", "--name", "vc", "--quiet")
    assert code == 0, err
    rows = read_csv(root / "label_segments" / "vc" / "t0.csv")
    assert [r["segment_id"] for r in rows] == ["1"] * 25 + ["2"] * 25  # [start, end)
    assert rows[24]["timestamp"] == "4800" and rows[25]["timestamp"] == "5000"


@pytest.mark.parametrize("rows, needle", [
    (["1,0,6000", "2,5000,10000"], "line 3: segment 2 (5000–10000 ms) overlaps segment 1"),
    (["1,0,5000", "2,5000,30000"], "line 3: segment 2 (5000–30000 ms) lies outside recording 't1'"),
    (["1,0,5000", "2,5000,5600"], "segment 2 of 't1' (5000–5600 ms) holds 3 finite label step(s), "
                                  "but the statistics need at least 21"),
    (["1,0,5000", "1,5000,10000"], "line 3, column segment_id: segment_id 1 appears twice"),
    (["1,0,5000", "2,6000,5000"], "line 3, column end: segment 2 ends (5000 ms) before it starts"),
    (["1,0,5000", "2,5000,ten"], "line 3, column end: 'ten' is not a whole number"),
])
def test_bad_segment_files(capsys, seg_corpus, rows, needle):
    root, seg = seg_corpus
    path = write_segments(seg / "t1.csv", rows)
    code, out, err = run_cli(capsys, "classes", "--data", root, "--target", "valence",
                             "--segments", seg, "--k", "2", "--quiet")
    msg = " ".join(err.split())
    assert code == 2 and "Traceback" not in err + out, err
    assert str(path) in msg and needle in msg, msg


def test_bad_classes_options(capsys, seg_corpus):
    root, seg = seg_corpus
    (seg / "t2.csv").unlink()
    cases = [
        (["--segments", seg], "t2.csv: no segment file for recording 't2'"),
        (["--k", "9"], "only 4 train segment(s) for 9 classes"),
        (["--features", "everything"], "--features 'everything': unknown statistic set"),
        (["--target", "nothing"], "no such target"),
        (["--segments", root / "nope"], "segment folder not found"),
    ]
    for extra, needle in cases:
        args = ["classes", "--data", root, "--target", "valence", "--peak-support", "2", "--quiet",
                *extra]
        code, out, err = run_cli(capsys, *args)
        msg = " ".join(err.split())
        assert code == 2 and "Traceback" not in err + out, (extra, err)
        assert needle in msg, (extra, msg)


@pytest.mark.shared
@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="needs ../shared/data/muse-toolbox-examples")
def test_muse_toolbox_examples_gold_then_classes(capsys, tmp_path):
    root = tmp_path / "root"
    code, _, err = run_cli(capsys, "gold", "--input", EXAMPLES / "raw", "--dimension", "arousal",
                           "--method", "ewe", "--out", root, "--quiet")
    assert code == 0, err
    (root / "metadata" / "partition.csv").write_text("Id,Partition\n11,train\n32,train\n47,test\n")
    args = ["classes", "--data", root, "--target", "arousal", "--segments",
            EXAMPLES / "metadata" / "segment_info", "--k", "2", "--pca", "2", "--cluster", "gmm",
            "--quiet"]
    code, _, err = run_cli(capsys, *args, "--peak-support", "3")  # a real 4.5 s segment at 2 Hz
    assert code == 2 and "11.csv, line 8: segment 7 of '11'" in " ".join(err.split()), err
    code, _, err = run_cli(capsys, *args, "--peak-support", "1")
    assert code == 0, err
    rep = json.loads((root / "metadata" / "classes_arousal_class.json").read_text())
    assert rep["segments"] == {"train": 25, "test": 9}
    rows = read_csv(root / "label_segments" / "arousal_class" / "47.csv")
    assert {r["segment_id"] for r in rows} == {str(i) for i in range(1, 10)}
    # segment 3 of 47.csv starts where segment 2 ends (32000 ms): touching is not overlapping
    assert min(int(r["timestamp"]) for r in rows if r["segment_id"] == "3") == 32000


def test_out_elsewhere_warns_about_partition(capsys, seg_corpus, tmp_path):
    root, _ = seg_corpus
    out = tmp_path / "elsewhere"
    code, _, err = run_cli(capsys, "classes", "--data", root, "--target", "valence", "--k", "2",
                           "--peak-support", "2", "--out", out, "--quiet")
    assert code == 0, err
    assert (out / "label_segments" / "valence_class" / "t0.csv").is_file()
    assert not (root / "label_segments" / "valence_class").exists()
    assert f"{out / 'metadata' / 'partition.csv'} does not exist" in " ".join(err.split())


def test_toolbox_presets_and_pca_minmax_on_the_command_line(capsys, seg_corpus):
    root, seg = seg_corpus
    args = ["classes", "--data", root, "--target", "valence", "--segments", seg, "--k", "2",
            "--pca", "2", "--quiet"]
    code, _, err = run_cli(capsys, *args, "--features", "set_basic", "--pca-minmax")
    assert code == 0, err
    rep = json.loads((root / "metadata" / "classes_valence_class.json").read_text())
    assert rep["statistics"][:3] == ["mean", "median", "std"] and len(rep["statistics"]) == 11
    assert rep["pca_minmax"] is True
    code, _, err = run_cli(capsys, *args, "--features", "mean,skewness,kurtosis", "--name", "vc2")
    assert code == 0, err
    rep = json.loads((root / "metadata" / "classes_vc2.json").read_text())
    assert rep["statistics"] == ["mean", "skewness", "kurtosis"] and rep["pca_minmax"] is False
    code, _, err = run_cli(capsys, *args, "--features", "mean,nonsense", "--name", "vc3")
    assert code == 2 and "unknown statistic(s) ['nonsense']" in " ".join(err.split())


def test_pca_minmax_uses_train_min_and_max_only():
    rng = np.random.default_rng(4)
    train = rng.normal(size=(40, 4))
    model = fit_classes(train, names=["a", "b", "c", "d"], pca=2, k=3, pca_minmax=True)
    red = model.reduce(train)
    np.testing.assert_allclose(red.min(0), -1, atol=1e-12)
    np.testing.assert_allclose(red.max(0), 1, atol=1e-12)
    far = model.reduce(train * 5)  # devel/test data outside the train range stay outside
    assert np.abs(far).max() > 1.5


def _toolbox_layout(root: Path, values: dict[str, np.ndarray], *, header: str, scale: float,
                    parts: dict[str, str] | None = None) -> Path:
    """partition.csv in MuSe-Toolbox's spelling and traces with its time column."""
    (root / "metadata").mkdir(parents=True)
    parts = parts or {rid: "train" for rid in values}
    (root / "metadata" / "partition.csv").write_text(
        "id,partition\n" + "".join(f"{rid},{parts[rid]}\n" for rid in values))
    folder = root / "label_segments" / "valence"
    folder.mkdir(parents=True)
    for rid, y in values.items():
        (folder / f"{rid}.csv").write_text(f"{header},value\n" + "".join(
            f"{i * 200 * scale:g},{v:.6f}\n" for i, v in enumerate(y)))
    return root


@pytest.mark.parametrize("header, scale", [("Time", 1.0), ("timestamp", 0.001)])
def test_toolbox_partition_and_trace_files_are_accepted(capsys, seg_corpus, tmp_path, header, scale):
    """``id,partition`` (lowercase), and traces with ``Time`` in ms or ``timestamp`` in seconds
    give the same classes as the emotrace layout."""
    root, seg = seg_corpus
    args = ["--target", "valence", "--segments", seg, "--k", "2", "--peak-support", "2", "--quiet"]
    code, _, err = run_cli(capsys, "classes", "--data", root, *args)
    assert code == 0, err
    values = {}
    for f in sorted((root / "label_segments" / "valence").glob("*.csv")):
        values[f.stem] = np.array([float(r.split(",")[1]) for r in f.read_text().splitlines()[1:]])
    parts = {r["Id"]: r["Partition"] for r in read_csv(root / "metadata" / "partition.csv")}
    tb = _toolbox_layout(tmp_path / "tb", {rid: values[rid] for rid in parts}, header=header,
                         scale=scale, parts=parts)
    code, _, err = run_cli(capsys, "classes", "--data", tb, *args)
    assert code == 0, err
    assert ("in seconds" in " ".join(err.split())) == (header == "timestamp")
    a = read_csv(root / "metadata" / "classes_valence_class_segments.csv")
    b = read_csv(tb / "metadata" / "classes_valence_class_segments.csv")
    assert [(r["Id"], r["start"], r["class_id"]) for r in a] == \
        [(r["Id"], r["start"], r["class_id"]) for r in b]
    rows = read_csv(tb / "label_segments" / "valence_class" / "t0.csv")
    assert rows[1]["timestamp"] == "200"  # written in ms


def test_toolbox_partition_errors_name_the_line(capsys, tmp_path):
    root = _toolbox_layout(tmp_path / "tb", {"a": np.arange(30.0), "b": np.arange(30.0)},
                           header="Time", scale=1.0)
    (root / "metadata" / "partition.csv").write_text("id,partition\na,train\nb,training\n")
    code, out, err = run_cli(capsys, "classes", "--data", root, "--target", "valence", "--quiet")
    msg = " ".join(err.split())
    assert code == 2 and "Traceback" not in err + out
    assert "partition.csv, line 3, column partition: unknown partition 'training' for 'b'" in msg


@pytest.mark.shared
@pytest.mark.skipif(not (EXAMPLES / "reference").is_dir(),
                    reason="needs ../shared/data/muse-toolbox-examples/reference")
def test_muse_toolbox_files_as_they_are(capsys, tmp_path):
    """The toolbox's own partition.csv (id,partition) and the gold standards it wrote (timestamp
    in the raw files' seconds) go into `emotrace classes` unchanged."""
    root = tmp_path / "root"
    (root / "metadata").mkdir(parents=True)
    shutil.copy(EXAMPLES / "metadata" / "partition.csv", root / "metadata" / "partition.csv")
    shutil.copytree(EXAMPLES / "reference" / "script" / "ctw" / "ewe" / "arousal",
                    root / "label_segments" / "arousal")
    code, _, err = run_cli(capsys, "classes", "--data", root, "--target", "arousal", "--segments",
                           EXAMPLES / "metadata" / "segment_info", "--k", "2", "--pca", "2",
                           "--features", "set_basic", "--peak-support", "1", "--quiet")
    assert code == 0, err
    assert "3 trace file(s) have timestamps in seconds" in " ".join(err.split())
    rep = json.loads((root / "metadata" / "classes_arousal_class.json").read_text())
    assert rep["segments"] == {"train": 25, "test": 9}
    rows = read_csv(root / "label_segments" / "arousal_class" / "47.csv")
    assert min(int(r["timestamp"]) for r in rows if r["segment_id"] == "3") == 32000
