"""Tests for the CEAP-360VR adapter (emotrace.datasets.ceap360vr).

Tests marked ``shared`` prepare the real data from ../shared/data/ceap360vr and skip when it is
absent. The others build small synthetic sources in the original layout, and check the feature
functions against direct (loop, exact-fraction) implementations of their definitions.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest

from emotrace.data.muse import load_corpus, read_partition
from emotrace.datasets import ceap360vr as ceap
from emotrace.errors import EmotraceError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ceap360vr"
needs_data = [
    pytest.mark.shared,
    pytest.mark.skipif(not DATA.is_dir(), reason=f"real CEAP-360VR data not found at {DATA} "
                       "(../shared beside the checkout)"),
]
FPS = {"V0": 30, "V1": 25, **{f"V{k}": 30 for k in range(2, 9)}}


# --------------------------------------------------------------------------------------------
# synthetic sources in the original layout


def _annotation(n: int) -> dict:
    videos = []
    for v in ceap.VIDEOS:
        frames = 60 * FPS[v]
        t = np.round(np.linspace(0, 60, frames), 3)
        rows = [{"TimeStamp": float(x), "Valence": 5.0 + n / 100,
                 "Arousal": 1.0 + 8 * float(x) / 60} for x in t]
        videos.append({"VideoID": v, "TimeStamp_Valence_Arousal": rows})
    return {"ContinuousAnnotation_FrameData": [
        {"ParticipantID": str(n), "Video_Annotation_FrameData": videos}]}


def _head(n: int) -> dict:
    videos = []
    for v in ceap.VIDEOS:
        rows = [{"ID": i, "Pitch": 0.1 * i, "Yaw": 179.0 if i % 2 else -179.0}
                for i in range(1, 300)]
        videos.append({"VideoID": v, "ID_Pitch_Yaw": rows})
    return {"Behavior_HeadScanPath_Data": [
        {"ParticipantID": f"P{n}", "Video_Behavior_ScanPath_Data": videos}]}


def _fixations(n: int) -> dict:
    rows = [{"StartFrame": 3, "EndFrame": 8, "Pitch": 1.5, "Yaw": -2.0},
            {"StartFrame": 30, "EndFrame": 59, "Pitch": -3.0, "Yaw": 4.0}]
    videos = [{"VideoID": v, "Fixation": rows} for v in ceap.VIDEOS]
    return {"Behavior_FixationData": [{"ParticipantID": f"P{n}",
                                       "Video_Behavior_FixationData": videos}]}


def make_source(root: Path, numbers: tuple[int, ...] = (1,)) -> Path:
    """A small CEAP-360VR source folder with participants ``numbers``."""
    for sub in (ceap.ANNOTATION_DIR, ceap.HEAD_DIR, ceap.FIXATION_DIR, Path("1_Stimuli")):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for n in numbers:
        ceap.annotation_file(root, n).write_text(json.dumps(_annotation(n)))
        ceap.head_file(root, n).write_text(json.dumps(_head(n)))
        ceap.fixation_file(root, n).write_text(json.dumps(_fixations(n)))
    info = [{"VideoID": v, "FrameRate": fps, "VideoDuration": 60} for v, fps in FPS.items()]
    (root / ceap.VIDEO_INFO).write_text(json.dumps({"VideoInfo": info}))
    lines = ["Frame," + ",".join(FPS)]
    for f in range(1816):
        cells = [str(f)]
        for k, (_, fps) in enumerate(FPS.items()):
            cells.append(f"{10 * k + f % 7}" if f <= 60 * fps else "")
        lines.append(",".join(cells))
    (root / ceap.LUMINANCE).write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return make_source(tmp_path_factory.mktemp("ceap_src"), (1, 21, 27))


def _gap(row: np.ndarray) -> bool:
    """A step the loader filled because the file has no row there (zeros, or NaN until the
    train-mean imputation)."""
    return bool(np.all((row == 0) | np.isnan(row)))


def _expect_error(source: Path, tmp_path: Path, *fragments: str) -> str:
    with pytest.raises(EmotraceError) as info:
        ceap.prepare(source, tmp_path / "out")
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# --------------------------------------------------------------------------------------------
# direct implementations of the definitions (slow, exact)


def direct_eye(fixations: list[tuple[int, int, float, float]], fps: int) -> np.ndarray:
    out = np.zeros((ceap.STEPS, 5))
    spans = sorted((Fraction(s, fps), Fraction(e + 1, fps), p, y) for s, e, p, y in fixations)
    for k in range(ceap.STEPS):
        lo, hi = Fraction(k, 5), Fraction(k + 1, 5)
        # coverage of the union of the spans
        covered, reach = Fraction(0), lo
        for a, b, _, _ in spans:
            a, b = max(a, reach), min(b, hi)
            if b > a:
                covered += b - a
                reach = b
        out[k, 0] = covered / Fraction(1, 5)
        started = [s for s in spans if s[0] < hi]
        if started:
            a, b, p, y = started[-1]
            out[k, 1:3] = p, y
            if b > lo:
                out[k, 4] = min(b, hi) - a
        out[k, 3] = sum(lo <= s[0] < hi for s in spans)
    return out


def direct_window_means(times: list[float], values: list[float]) -> np.ndarray:
    out = np.zeros(ceap.STEPS)
    for k in range(ceap.STEPS):
        inside = [v for t, v in zip(times, values, strict=True)
                  if 200 * k <= round(t * 1000) < 200 * (k + 1)]
        if inside:
            out[k] = sum(inside) / len(inside)
        else:
            centre = 200 * k + 100
            out[k] = min(zip(times, values, strict=True),
                         key=lambda tv: abs(round(tv[0] * 1000) - centre))[1]
    return out


# --------------------------------------------------------------------------------------------
# feature functions


def test_eye_features_by_hand() -> None:
    # 30 fps: frames 3..8 are [0.1, 0.3) s, frames 30..59 are [1.0, 2.0) s
    x = ceap.eye_features(np.array([3.0, 30.0]), np.array([8.0, 59.0]), np.array([1.5, -3.0]),
                          np.array([-2.0, 4.0]), Fraction(30))
    np.testing.assert_allclose(x[0], [0.5, 1.5, -2.0, 1, 0.1])
    np.testing.assert_allclose(x[1], [0.5, 1.5, -2.0, 0, 0.2])
    np.testing.assert_allclose(x[2], [0.0, 1.5, -2.0, 0, 0.0])  # carried forward, not running
    np.testing.assert_allclose(x[5], [1.0, -3.0, 4.0, 1, 0.2])
    np.testing.assert_allclose(x[9], [1.0, -3.0, 4.0, 0, 1.0])
    np.testing.assert_allclose(x[10], [0.0, -3.0, 4.0, 0, 0.0])
    before = ceap.eye_features(np.array([30.0]), np.array([40.0]), np.array([1.0]),
                               np.array([1.0]), Fraction(30))
    np.testing.assert_array_equal(before[:5], 0.0)  # 0 before the first fixation


@pytest.mark.parametrize("fps", [25, 30])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eye_features_match_direct(fps: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.choice(60 * fps + 20, size=40, replace=False))
    ends = starts + rng.integers(0, 40, size=40)  # overlaps and spans past 60 s included
    pitch, yaw = rng.normal(size=40), rng.normal(size=40)
    got = ceap.eye_features(starts.astype(float), ends.astype(float), pitch, yaw, Fraction(fps))
    want = direct_eye(list(zip(starts.tolist(), ends.tolist(), pitch, yaw, strict=True)), fps)
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_eye_features_without_fixations() -> None:
    empty = np.zeros(0)
    x = ceap.eye_features(empty, empty, empty, empty, Fraction(30))
    assert x.shape == (300, 5) and not x.any()


@pytest.mark.parametrize("fps", [25, 30])
def test_window_means_match_direct(fps: int) -> None:
    rng = np.random.default_rng(fps)
    times = np.round(np.linspace(0, 60, 60 * fps), 3)
    keep = np.ones(len(times), bool)
    keep[100:160] = False  # a gap of ~2 s: empty windows take the nearest frame
    times, values = times[keep], rng.uniform(1, 9, size=keep.sum())
    got = ceap.window_means(times, values)
    np.testing.assert_allclose(got, direct_window_means(times.tolist(), values.tolist()),
                               rtol=1e-12)


def test_head_features() -> None:
    ids = np.array([3.0, 1.0, 2.0, 5.0, 300.0, 301.0])
    pitch = np.array([3.0, 1.0, 2.0, 5.0, 6.0, 7.0])
    yaw = np.array([-179.0, 170.0, 179.0, 0.0, 10.0, 11.0])
    ts, x = ceap.head_features(ids, pitch, yaw)
    np.testing.assert_array_equal(ts, [0, 200, 400, 800, 59800])  # ID 301 is past the video
    np.testing.assert_allclose(x[:, 0], [1, 2, 3, 5, 6])
    np.testing.assert_allclose(x[:, 2], [0, 1, 1, 0, 0])  # 0 after the missing ID 4
    np.testing.assert_allclose(x[:, 3], [0, 9, 2, 0, 0])  # 179 → -179 is a 2° turn
    with pytest.raises(ValueError, match="twice"):
        ceap.head_features(np.array([1.0, 1.0]), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="whole number"):
        ceap.head_features(np.array([1.5]), np.zeros(1), np.zeros(1))


@pytest.mark.parametrize("fps", [25, 30])
def test_luminance_features_match_direct(fps: int) -> None:
    rng = np.random.default_rng(fps)
    frames = np.arange(60 * fps - 3)  # a video a little shorter than 60 s
    lum = rng.uniform(0, 255, size=len(frames))
    ts, x = ceap.luminance_features(frames, lum, Fraction(fps))
    per_step = fps // 5
    assert ts[-1] == 59800 and len(ts) == 300
    for k in (0, 1, 150, 299):
        chunk = lum[k * per_step:(k + 1) * per_step]
        assert x[k, 0] == pytest.approx(chunk.mean())
        assert x[k, 1] == pytest.approx(chunk.std())
    np.testing.assert_allclose(x[1:, 2], np.diff(x[:, 0]))
    assert x[0, 2] == 0


def test_partition_of() -> None:
    assert [ceap.partition_of(n) for n in (1, 20, 21, 26, 27, 32)] == [
        "train", "train", "devel", "devel", "test", "test"]


# --------------------------------------------------------------------------------------------
# prepare on synthetic sources


def test_prepare_synthetic(synthetic: Path, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    summary = ceap.prepare(synthetic, tmp_path / "out", progress=lambda d, t: calls.append((d, t)))
    assert summary["recordings"] == {"train": 8, "devel": 8, "test": 8}
    assert summary["subjects"] == {"train": ["P1"], "devel": ["P21"], "test": ["P27"]}
    assert summary["steps"] == 300
    assert calls[-1] == (24, 24) and len(calls) == 24
    entries = read_partition(tmp_path / "out")
    assert [e.id for e in entries[:2]] == ["P1_V1", "P1_V2"]
    corpus = load_corpus(tmp_path / "out", features=["head", "eye", "lum"],
                         targets=["arousal", "valence"], cache=False)
    assert len(corpus) == 24 and corpus.feature_dims == {"head": 4, "eye": 5, "lum": 3}
    rec = corpus.recordings[0]
    np.testing.assert_array_equal(rec.timestamps, np.arange(300) * 200)
    # arousal rises linearly with time: the window mean is the value at the window's mid-frame
    assert rec.labels["arousal"][0] == pytest.approx(1 + 8 * 0.08 / 60, abs=1e-5)
    np.testing.assert_allclose(rec.labels["valence"], 5.01, rtol=1e-6)
    head = rec.features["head"]
    np.testing.assert_allclose(head[298, :2], [29.9, 179.0], rtol=1e-6)
    assert _gap(head[299])  # ID 300 does not exist: the loader fills the step
    assert corpus.report.features["head"].zero_filled_steps == 24
    assert corpus.report.features["eye"].zero_filled_steps == 0
    np.testing.assert_allclose(rec.features["eye"][0], [0.4, 1.5, -2.0, 1, 0.08], rtol=1e-6)


def test_prepare_selected_participants(synthetic: Path, tmp_path: Path) -> None:
    summary = ceap.prepare(synthetic, tmp_path / "out", participants=["21", "P1"])
    assert summary["recordings"] == {"train": 8, "devel": 8}
    with pytest.raises(EmotraceError, match="P5"):
        ceap.prepare(synthetic, tmp_path / "out2", participants=["P5"])


# --------------------------------------------------------------------------------------------
# bad input


def test_missing_source(tmp_path: Path) -> None:
    _expect_error(tmp_path / "nowhere", tmp_path, str(tmp_path / "nowhere"), "not found")


def test_source_without_annotations(tmp_path: Path) -> None:
    (tmp_path / "src" / "4_BehaviorData").mkdir(parents=True)
    _expect_error(tmp_path / "src", tmp_path, "3_AnnotationData", "Frame", "not found")


def test_no_annotation_files(tmp_path: Path) -> None:
    (tmp_path / "src" / ceap.ANNOTATION_DIR).mkdir(parents=True)
    _expect_error(tmp_path / "src", tmp_path, "Frame", "no P<n>_Annotation_FrameData.json")


@pytest.mark.parametrize("which", ["head_file", "fixation_file"])
def test_missing_behaviour_file(tmp_path: Path, which: str) -> None:
    src = make_source(tmp_path / "src", (1, 2))
    path = getattr(ceap, which)(src, 2)
    path.unlink()
    _expect_error(src, tmp_path, path.name, "P2 has annotations")
    assert not (tmp_path / "out").exists()  # checked before anything is written


@pytest.mark.parametrize("which", ["annotation_file", "head_file", "fixation_file"])
def test_invalid_json(tmp_path: Path, which: str) -> None:
    src = make_source(tmp_path / "src")
    path = getattr(ceap, which)(src, 1)
    path.write_text('{"broken": [1, 2,')
    _expect_error(src, tmp_path, path.name, "not valid JSON", "line 1")


@pytest.mark.parametrize(("which", "doc", "fragment"), [
    ("annotation_file", {"Something": []}, "ContinuousAnnotation_FrameData"),
    ("head_file", {"Behavior_HeadScanPath_Data": []}, "not a non-empty list"),
    ("fixation_file", {"Behavior_FixationData": [{"ParticipantID": "P1"}]},
     "Video_Behavior_FixationData"),
    ("head_file", {"Behavior_HeadScanPath_Data": [{"Video_Behavior_ScanPath_Data": [
        {"VideoID": "V1", "ID_Pitch_Yaw": []}]}]}, "V2"),
])
def test_json_without_expected_keys(tmp_path: Path, which: str, doc: dict, fragment: str) -> None:
    src = make_source(tmp_path / "src")
    path = getattr(ceap, which)(src, 1)
    path.write_text(json.dumps(doc))
    _expect_error(src, tmp_path, path.name, fragment)


def test_row_without_expected_key(tmp_path: Path) -> None:
    src = make_source(tmp_path / "src")
    doc = _annotation(1)
    del doc["ContinuousAnnotation_FrameData"][0]["Video_Annotation_FrameData"][2][
        "TimeStamp_Valence_Arousal"][7]["Arousal"]
    ceap.annotation_file(src, 1).write_text(json.dumps(doc))
    _expect_error(src, tmp_path, "P1_Annotation_FrameData.json", "V3", "row 7", "Arousal")


def test_non_numeric_value(tmp_path: Path) -> None:
    src = make_source(tmp_path / "src")
    doc = _fixations(1)
    doc["Behavior_FixationData"][0]["Video_Behavior_FixationData"][0]["Fixation"][0]["Pitch"] = "up"
    ceap.fixation_file(src, 1).write_text(json.dumps(doc))
    _expect_error(src, tmp_path, "P1_Behavior_FixationData.json", "V1", "not a number")


def test_bad_stimulus_files(tmp_path: Path) -> None:
    src = make_source(tmp_path / "src")
    (src / ceap.VIDEO_INFO).write_text(json.dumps({"VideoInfo": [{"VideoID": "V1"}]}))
    _expect_error(src, tmp_path, "VideoInfo.json", "FrameRate")
    make_source(src)
    (src / ceap.LUMINANCE).write_text("Frame,V1\n0,1.0\n")
    _expect_error(src, tmp_path, "VideoLuminance.csv", "V2")


# --------------------------------------------------------------------------------------------
# the real data


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> tuple[dict, object]:
    if not DATA.is_dir():
        pytest.skip(f"real CEAP-360VR data not found at {DATA}")
    out = tmp_path_factory.mktemp("ceap_real")
    summary = ceap.prepare(DATA, out)
    corpus = load_corpus(out, features=["head", "eye", "lum"], targets=["arousal", "valence"])
    return summary, corpus


def _raw_frames(n: int, video: str) -> list[dict]:
    doc = json.loads(ceap.annotation_file(DATA, n).read_text())
    per = doc["ContinuousAnnotation_FrameData"][0]["Video_Annotation_FrameData"]
    return next(v["TimeStamp_Valence_Arousal"] for v in per if v["VideoID"] == video)


class TestRealData:
    pytestmark = needs_data

    def test_recordings_and_partitions(self, real) -> None:
        summary, corpus = real
        assert len(corpus) == 208
        assert summary["recordings"] == {"train": 160, "devel": 48}
        assert corpus.partitions() == ["train", "devel"]
        assert corpus.subjects("train") == sorted(f"P{n}" for n in range(1, 21))
        assert corpus.subjects("devel") == sorted(f"P{n}" for n in range(21, 27))
        assert corpus.partition("test") == []
        assert {r.id for r in corpus} == {f"P{n}_V{k}" for n in range(1, 27) for k in range(1, 9)}

    def test_time_grid_and_label_range(self, real) -> None:
        _, corpus = real
        grid = np.arange(300) * 200
        for rec in corpus:
            np.testing.assert_array_equal(rec.timestamps, grid)
            for target in ("arousal", "valence"):
                y = rec.labels[target]
                assert np.isfinite(y).all() and y.min() >= 1 and y.max() <= 9, rec.id
        assert corpus.report.label_missing_steps == {"arousal": 0, "valence": 0}

    def test_head_has_one_zero_filled_step_per_recording(self, real) -> None:
        _, corpus = real
        head = corpus.report.features["head"]
        assert head.zero_filled_steps == 208 and head.recordings_with_gaps == 208
        assert head.steps == 208 * 300
        for name in ("eye", "lum"):
            assert corpus.report.features[name].zero_filled_steps == 0
        assert any("'head'" in w and "208" in w for w in corpus.report.warnings())
        for rec in corpus:
            assert _gap(rec.features["head"][299]), rec.id
            assert not np.isnan(rec.features["head"][:299]).any(), rec.id

    def test_lum_identical_across_participants(self, real) -> None:
        _, corpus = real
        by_video: dict[str, np.ndarray] = {}
        for rec in corpus:
            video = rec.id.split("_")[1]
            first = by_video.setdefault(video, rec.features["lum"])
            np.testing.assert_array_equal(rec.features["lum"], first, err_msg=rec.id)
        assert len(by_video) == 8

    @pytest.mark.parametrize(("n", "video"), [(3, "V1"), (22, "V5"), (11, "V8")])
    def test_label_equals_mean_of_raw_frames(self, real, n: int, video: str) -> None:
        _, corpus = real
        rec = next(r for r in corpus if r.id == f"P{n}_{video}")
        frames = _raw_frames(n, video)
        for k in (0, 1, 37, 150, 299):
            lo, hi = round(0.2 * k, 3), round(0.2 * (k + 1), 3)
            for target, key in (("arousal", "Arousal"), ("valence", "Valence")):
                inside = [f[key] for f in frames if lo <= f["TimeStamp"] < hi]
                assert len(inside) == (5 if video == "V1" else 6)
                assert rec.labels[target][k] == pytest.approx(sum(inside) / len(inside),
                                                              abs=1e-5), (target, k)

    def test_head_and_lum_spot_check(self, real) -> None:
        _, corpus = real
        rec = next(r for r in corpus if r.id == "P5_V2")
        doc = json.loads(ceap.head_file(DATA, 5).read_text())
        per = doc["Behavior_HeadScanPath_Data"][0]["Video_Behavior_ScanPath_Data"]
        rows = next(v["ID_Pitch_Yaw"] for v in per if v["VideoID"] == "V2")
        for row in rows[:: 37]:
            k = row["ID"] - 1
            assert rec.features["head"][k, :2] == pytest.approx([row["Pitch"], row["Yaw"]],
                                                                 abs=1e-4)
        lum = pacsv.read_csv(DATA / ceap.LUMINANCE).column("V2").to_numpy()
        for k in (0, 100, 299):
            chunk = lum[6 * k:6 * k + 6]  # 30 fps: 6 frames per 0.2 s
            assert rec.features["lum"][k, 0] == pytest.approx(chunk.mean(), rel=1e-6)
            assert rec.features["lum"][k, 1] == pytest.approx(chunk.std(), rel=1e-5, abs=1e-4)

    def test_eye_fraction_in_range(self, real) -> None:
        _, corpus = real
        eye = np.concatenate([r.features["eye"] for r in corpus])
        assert eye[:, 0].min() >= 0 and eye[:, 0].max() <= 1 + 1e-6
        assert eye[:, 3].min() >= 0 and eye[:, 4].min() >= 0
        assert not math.isnan(float(eye.sum()))

    def test_subset(self, tmp_path: Path) -> None:
        summary = ceap.prepare(DATA, tmp_path / "out", participants=["P2", "P21"])
        assert summary["recordings"] == {"train": 8, "devel": 8}
        head = pacsv.read_csv(tmp_path / "out" / "feature_segments" / "head" / "P2_V3.csv")
        assert head.num_rows == 299 and head.column("timestamp")[-1].as_py() == 59600
        corpus = load_corpus(tmp_path / "out", features=["head"], targets=["valence"],
                             cache=False)
        assert corpus.subjects() == ["P2", "P21"]
