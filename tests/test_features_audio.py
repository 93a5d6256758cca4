"""Audio features (emotrace.features.audio): one openSMILE pass, aligned windows, VAD, bad input."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from emotrace.errors import EmotraceError

pytest.importorskip("opensmile")
pytest.importorskip("av")
audio = pytest.importorskip("emotrace.features.audio")

RATE = 16000


def write_wav(path: Path, x: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def tone_burst(seconds: float, onset: float, offset: float, *, seed: int = 0) -> np.ndarray:
    """Faint noise with a loud 440 Hz tone (and harmonics) from ``onset`` to ``offset`` seconds."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = 0.002 * np.random.default_rng(seed).standard_normal(t.size)
    on = (t >= onset) & (t < offset)
    x[on] += 0.5 * np.sin(2 * np.pi * 440 * t[on]) + 0.2 * np.sin(2 * np.pi * 880 * t[on])
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def burst(tmp_path_factory) -> Path:
    """10 s: the tone from 5.0 s to 7.0 s."""
    return write_wav(tmp_path_factory.mktemp("audio") / "burst.wav", tone_burst(10, 5.0, 7.0))


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    """espeak-ng speech with 3 s of silence before it (about 8 s in all)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    d = tmp_path_factory.mktemp("speech")
    subprocess.run(
        [
            "espeak-ng",
            "-w",
            str(d / "raw.wav"),
            "Hello, this is a test of the emotion recognition "
            "toolkit. We extract acoustic features from speech.",
        ],
        check=True,
        capture_output=True,
    )
    x = audio.decode_audio(d / "raw.wav", rate=RATE)
    return write_wav(d / "speech.wav", np.concatenate([np.zeros(3 * RATE, np.float32), x]))


def col(names: list[str], name: str) -> int:
    return names.index(name)


def test_one_pass_matches_per_window_opensmile(speech):
    """The frame-list pass gives the eGeMAPS functionals of each window, as separate calls would."""
    import opensmile

    ex = audio.build("egemaps", window=2.0)
    ts = np.arange(500, 8001, 500)
    values, names, info = ex.extract(speech, ts)
    assert values.shape == (ts.size, 88) and len(names) == 88 and values.dtype == np.float32
    x = audio.peak_normalise(audio.decode_audio(speech, rate=RATE))
    smile = opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals
    )
    for i in (7, 10, 13):  # windows inside the speech
        t = ts[i] / 1000
        ref = smile.process_signal(x[int((t - 2) * RATE) : int(t * RATE)], RATE).to_numpy()[0]
        rel = np.abs(values[i] - ref) / (np.abs(ref) + 1e-3)
        # the LLDs of the one pass see the audio before the window (filter/smoothing context)
        assert np.median(rel) < 0.02
        assert np.mean(rel < 0.1) > 0.85
        loud = col(names, "loudness_sma3_amean")
        assert values[i, loud] == pytest.approx(ref[loud], rel=0.05)


@pytest.mark.parametrize("feature_set,window", [("egemaps", 1.0), ("egemaps", 6.0), ("egemaps-lld", 6.0)])
def test_tone_burst_changes_features_at_the_right_step(burst, feature_set, window):
    """Alignment: the tone lasts from 5.0 s to 7.0 s; loudness is up exactly in the steps that hold it.

    The row of timestamp t covers (t - span, t]: span = the window for functionals, the 250 ms label
    step for LLD means. So the first loud row is the first t > 5.0 s, the last is the last
    t < 7.0 s + span.
    """
    ex = audio.build(feature_set, window=window)
    ts = np.arange(250, 10001, 250)
    values, names, _ = ex.extract(burst, ts)
    name = "loudness_sma3_amean" if feature_set == "egemaps" else "Loudness_sma3_mean"
    loud = values[:, col(names, name)]
    up = np.flatnonzero(loud > loud.min() + 0.2 * (loud.max() - loud.min()))
    span = window * 1000 if feature_set == "egemaps" else 250
    expected_first = int(np.searchsorted(ts, 5000, side="right"))
    expected_last = int(np.searchsorted(ts, 7000 + span, side="left")) - 1
    assert abs(up[0] - expected_first) <= 1, (ts[up[0]], ts[expected_first])
    assert abs(up[-1] - expected_last) <= 1, (ts[up[-1]], ts[expected_last])
    assert up.size == up[-1] - up[0] + 1  # one loud stretch


def test_centred_windows_lead_end_windows(burst):
    ts = np.arange(250, 10001, 250)
    end = audio.build("egemaps", window=2.0, anchor="end").extract(burst, ts)
    centre = audio.build("egemaps", window=2.0, anchor="centre").extract(burst, ts)
    i = col(end[1], "loudness_sma3_amean")
    onset = [int(np.argmax(v[0][:, i] > 0.5 * (v[0][:, i].min() + v[0][:, i].max()))) for v in (end, centre)]
    assert onset[0] - onset[1] == pytest.approx(4, abs=1)  # half a window = 1 s = 4 steps earlier


def test_first_window_without_audio_is_missing(burst):
    values, _, info = audio.build("egemaps").extract(burst, np.array([0, 100, 500, 1000]))
    assert info["missing"] == 2 and not values[:2].any() and values[2:].any(axis=1).all()


def test_vad_zeros_steps_without_speech(speech):
    ts = np.arange(500, 8001, 500)
    plain, _, _ = audio.build("egemaps-lld").extract(speech, ts)
    values, _, info = audio.build("egemaps-lld", vad=True).extract(speech, ts)
    silent = ~values.any(axis=1)
    assert info["non_speech"] == info["missing"] == int(silent.sum()) >= 4
    assert silent[:5].all()  # the first 3 s are silence: steps ending at 0.5 ... 2.5 s
    assert not silent[8:12].any()  # speech from about 3.1 s on
    np.testing.assert_array_equal(values[~silent], plain[~silent])


def test_audio_of_a_video_file(tmp_path, burst):
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")
    video = tmp_path / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=10:size=160x120:rate=10",
            "-i",
            str(burst),
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
            "-ar",
            "44100",
            "-ac",
            "2",
            "-shortest",
            str(video),
        ],
        check=True,
    )
    ts = np.arange(250, 9501, 250)
    from_video, names, _ = audio.build("egemaps-lld").extract(video, ts)
    from_wav, _, _ = audio.build("egemaps-lld").extract(burst, ts)
    i = col(names, "Loudness_sma3_mean")
    assert np.corrcoef(from_video[:, i], from_wav[:, i])[0, 1] > 0.98


def test_peak_normalisation_makes_level_irrelevant(tmp_path):
    quiet = write_wav(tmp_path / "quiet.wav", 0.1 * tone_burst(4, 1.0, 3.0))
    loud = write_wav(tmp_path / "loud.wav", tone_burst(4, 1.0, 3.0))
    ts = np.arange(500, 4001, 500)
    a, names, _ = audio.build("egemaps-lld").extract(quiet, ts)
    b, _, _ = audio.build("egemaps-lld").extract(loud, ts)
    i = col(names, "Loudness_sma3_mean")
    np.testing.assert_allclose(a[:, i], b[:, i], rtol=0.05, atol=0.02)


# ---- bad input -------------------------------------------------------------------------------------


def test_unreadable_file(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....not really a wave file" * 10)
    with pytest.raises(EmotraceError, match="broken.wav: cannot be read as audio or video"):
        audio.build("egemaps").extract(bad, np.arange(500, 3000, 500))


def test_video_without_audio_stream(tmp_path):
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")
    video = tmp_path / "silent.mp4"
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
            str(video),
        ],
        check=True,
    )
    with pytest.raises(EmotraceError, match="silent.mp4: has no audio stream"):
        audio.build("egemaps").extract(video, np.arange(500, 2000, 500))


def test_audio_shorter_than_a_window(tmp_path):
    short = write_wav(tmp_path / "short.wav", tone_burst(0.1, 0.0, 0.1))
    with pytest.raises(EmotraceError, match="short.wav: the audio is only 0.10 s long"):
        audio.build("egemaps").extract(short, np.array([100]))


def test_labels_far_beyond_the_audio(burst):
    """A header with a wrong sample rate makes the audio too short or too long for the labels."""
    with pytest.raises(EmotraceError, match="the labels run to 40.0 s but the media is only 10.0 s long"):
        audio.build("egemaps").extract(burst, np.arange(500, 40001, 500))


def test_wrong_sample_rate_claim(tmp_path):
    """The same samples declared at 4x the rate: the recording is 4x too short for its labels."""
    fast = write_wav(tmp_path / "fast.wav", tone_burst(10, 5.0, 7.0), rate=4 * RATE)
    with pytest.raises(EmotraceError, match="fast.wav: the labels run to 10.0 s but the media is only 2.5 s"):
        audio.build("egemaps").extract(fast, np.arange(500, 10001, 500))


@pytest.mark.parametrize(
    "ts,message",
    [
        ([500, 1000, 1000, 1500], "not increasing"),
        ([500, 1500, 1000], "not increasing"),
        ([500, np.nan, 1500], "timestamps to align to are missing"),
    ],
)
def test_bad_timestamps(burst, ts, message):
    with pytest.raises(EmotraceError, match=message):
        audio.build("egemaps").extract(burst, np.array(ts, dtype=float))


@pytest.mark.parametrize(
    "kw,message",
    [
        ({"feature_set": "mfcc"}, "Unknown audio feature set 'mfcc'"),
        ({"feature_set": "egemaps", "anchor": "start"}, "Unknown window anchor 'start'"),
        ({"feature_set": "egemaps", "window": 0}, "window must be longer than 0 s"),
    ],
)
def test_bad_options(kw, message):
    with pytest.raises(EmotraceError, match=message):
        audio.build(kw.pop("feature_set"), **kw)


def test_versions_and_settings_describe_the_output():
    ex = audio.build("egemaps", window=5, anchor="centre", vad=True)
    assert ex.name == "egemaps" and ".wav" in ex.suffixes and ".mp4" in ex.suffixes
    assert ex.settings["window_s"] == 5.0 and ex.settings["anchor"] == "centre" and ex.settings["vad"]
    assert set(ex.versions()) == {"opensmile", "av", "silero-vad"}


# ---- command line ----------------------------------------------------------------------------------


def test_cli_extract_audio_aligned_to_a_corpus(corpus, tmp_path, capsys):
    import json

    from helpers import run_cli

    media = tmp_path / "media"
    media.mkdir()
    for k, rid in enumerate(["S01_1", "S02_1", "S04_1"]):
        write_wav(media / f"{rid}.wav", tone_burst(16, 5.0, 7.0, seed=k))
    args = [
        "extract",
        "audio",
        "--media",
        media,
        "--labels",
        corpus,
        "--feature-set",
        "egemaps-lld",
        "--quiet",
    ]
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "2 recording(s) have no input" in err  # S03_1 and S05_1
    folder = corpus / "feature_segments" / "egemaps-lld"
    for rid in ["S01_1", "S02_1", "S04_1"]:
        features = np.loadtxt(folder / f"{rid}.csv", delimiter=",", skiprows=1)
        labels = np.loadtxt(corpus / "label_segments" / "arousal" / f"{rid}.csv", delimiter=",", skiprows=1)
        np.testing.assert_array_equal(features[:, 0], labels[:, 0])  # one row per label timestamp
        assert features.shape[1] == 2 + 25
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["settings"]["feature_set"] == "egemaps-lld" and "opensmile" in manifest["versions"]
    code, _, err = run_cli(capsys, *args)
    assert code == 0 and "skipped 3 already extracted" in err


def test_cli_unreadable_media_exits_2(corpus, tmp_path, capsys):
    from helpers import run_cli

    media = tmp_path / "media"
    media.mkdir()
    (media / "S01_1.wav").write_bytes(b"not audio at all" * 100)
    code, out, err = run_cli(
        capsys,
        "extract",
        "audio",
        "--media",
        media,
        "--labels",
        corpus,
        "--feature-set",
        "egemaps",
        "--quiet",
    )
    assert code == 2 and "Traceback" not in err
    assert "S01_1.wav: cannot be read as audio or video" in " ".join(err.split())
