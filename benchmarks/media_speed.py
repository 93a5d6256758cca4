"""Speed of the audio, text and face extractors, in x real time per core.

    python benchmarks/media_speed.py [--minutes 5] [--repeats 3]

Media are made here (no download): speech from espeak-ng with pauses (a harmonic tone sequence
when espeak-ng is missing), a word-level transcript of the same length with a word every 0.4 s,
and a 640x480, 25 fps H.264 video of the astronaut image of scikit-image on a test pattern.
Labels are at 2 Hz. Everything runs in this process on one thread (torch, OpenCV, OpenMP);
x real time = media seconds / CPU seconds of this process (``time.process_time``), which counts
the work of every thread and is less sensitive than wall time to other jobs on a shared machine.
Wall-clock x real time is printed too. Each extractor runs ``--repeats`` times on the same
media (after one warm-up call that loads the models); the table gives mean ± std.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import wave  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

RATE = 16000
SENTENCES = [
    "The weather was lovely this morning and we walked along the river.",
    "I honestly did not expect the meeting to take that long.",
    "Could you tell me where the nearest train station is?",
    "That was the best concert I have been to in years.",
    "We need to finish the report before the end of the week.",
]
VOCABULARY = " ".join(SENTENCES).replace(".", "").replace(",", "").replace("?", "").split()


def write_wav(path: Path, x: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def make_speech(folder: Path, seconds: float) -> tuple[Path, str]:
    """Speech-like audio of ``seconds``: espeak-ng sentences with 0.5-2 s pauses, repeated."""
    from emotrace.features.media import decode_audio

    rng = np.random.default_rng(0)
    parts: list[np.ndarray] = []
    if shutil.which("espeak-ng"):
        for k, sentence in enumerate(SENTENCES):
            raw = folder / f"s{k}.wav"
            subprocess.run(["espeak-ng", "-w", str(raw), sentence], check=True, capture_output=True)
            parts.append(decode_audio(raw, rate=RATE))
        source = "espeak-ng speech with pauses"
    else:
        t = np.arange(int(2.5 * RATE)) / RATE
        for f0 in (110, 140, 180, 220, 160):
            parts.append(
                (0.3 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(4 * np.pi * f0 * t)).astype(np.float32)
            )
        source = "harmonic tones with pauses (espeak-ng missing)"
    out: list[np.ndarray] = []
    n = 0
    while n < seconds * RATE:
        piece = parts[int(rng.integers(len(parts)))]
        pause = np.zeros(int(rng.uniform(0.5, 2.0) * RATE), np.float32)
        out += [piece, pause]
        n += piece.size + pause.size
    x = np.concatenate(out)[: int(seconds * RATE)]
    return write_wav(folder / "speech.wav", x), source


def make_transcript(folder: Path, seconds: float) -> Path:
    rng = np.random.default_rng(0)
    path = folder / "transcript.csv"
    rows = ["word,start,end"]
    for k, t in enumerate(np.arange(0.2, seconds - 0.5, 0.4)):
        rows.append(f"{VOCABULARY[k % len(VOCABULARY)]},{t:.2f},{t + rng.uniform(0.2, 0.38):.2f}")
    path.write_text("\n".join(rows) + "\n")
    return path


def make_video(folder: Path, seconds: float) -> Path:
    from skimage import data, io

    face = folder / "astronaut.png"
    io.imsave(face, data.astronaut()[:320, 80:400])
    path = folder / "video.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size=640x480:rate=25:duration={seconds}",
            "-loop",
            "1",
            "-i",
            str(face),
            "-filter_complex",
            "[0][1]overlay=x=160+40*sin(t):y=80:shortest=1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )
    return path


def timed(extractor, path: Path, ts: np.ndarray, repeats: int) -> tuple[list[float], list[float], dict]:
    extractor.extract(path, ts)  # warm-up: loads the models
    cpu, wall = [], []
    info: dict = {}
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        _, _, info = extractor.extract(path, ts)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return cpu, wall, info


def per_window_reference(path: Path, seconds: float) -> float:
    """CPU seconds of one ``process_signal`` call per 6 s window (2 Hz) over ``seconds`` of audio."""
    import opensmile

    from emotrace.features.media import decode_audio, peak_normalise

    x = peak_normalise(decode_audio(path))[: int(seconds * RATE)]
    smile = opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals
    )
    c = time.process_time()
    for t in np.arange(0.5, seconds + 1e-9, 0.5):
        smile.process_signal(x[int(max(0.0, t - 6) * RATE) : int(t * RATE)], RATE)
    return time.process_time() - c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the audio and transcript")
    parser.add_argument("--video-minutes", type=float, default=1.0, help="length of the video")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    from emotrace.features import audio, face, text

    seconds, video_seconds = 60 * args.minutes, 60 * args.video_minutes
    print(
        f"# media_speed  python {platform.python_version()}, {os.cpu_count()} cores visible, 1 thread; "
        f"repeats {args.repeats}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        speech, source = make_speech(tmp, seconds)
        transcript = make_transcript(tmp, seconds)
        video = make_video(tmp, video_seconds) if shutil.which("ffmpeg") else None
        print(
            f"audio: {seconds:.0f} s of {source}; transcript: {seconds:.0f} s, a word every 0.4 s; "
            f"video: {video_seconds:.0f} s 640x480 25 fps H.264; labels at 2 Hz"
        )
        ts_audio = np.arange(500, seconds * 1000 + 1, 500)
        ts_video = np.arange(0, video_seconds * 1000, 500)
        jobs = [
            ("audio", "egemaps (6 s windows, one pass)", audio.build("egemaps"), speech, ts_audio, seconds),
            ("audio", "egemaps + vad", audio.build("egemaps", vad=True), speech, ts_audio, seconds),
            ("audio", "egemaps-lld", audio.build("egemaps-lld"), speech, ts_audio, seconds),
            ("audio", "compare (6 s windows, one pass)", audio.build("compare"), speech, ts_audio, seconds),
            ("text", "minilm", text.build("minilm"), transcript, ts_audio, seconds),
        ]
        if video is not None:
            jobs += [("face", "face (Haar + geometry)", face.build("face"), video, ts_video, video_seconds)]
            try:
                jobs += [
                    (
                        "face",
                        "face-expr (+ fer expression model)",
                        face.build("face-expr"),
                        video,
                        ts_video,
                        video_seconds,
                    )
                ]
                face.build("face-expr")._load()
            except Exception as e:  # the optional expression model is not installed
                jobs.pop()
                print(f"face-expr skipped: {e}")
        for kind, label, extractor, path, ts, length in jobs:
            cpu, wall, info = timed(extractor, path, ts, args.repeats)
            xrt = [length / c for c in cpu]
            rows.append(
                (
                    kind,
                    label,
                    length,
                    np.mean(cpu),
                    np.std(cpu),
                    np.mean(xrt),
                    np.std(xrt),
                    np.mean([length / w for w in wall]),
                    info.get("missing", 0),
                )
            )
        ref_seconds = min(60.0, seconds)
        ref = per_window_reference(speech, ref_seconds)
        one_pass = rows[0][3] * ref_seconds / seconds
    print()
    print(
        "| extractor | feature set | media (s) | CPU s (mean ± std) | x real time per core | "
        "x real time (wall) | zero rows |"
    )
    print("|---|---|---|---|---|---|---|")
    for kind, label, length, c, cs, x, xs, xw, missing in rows:
        print(
            f"| {kind} | {label} | {length:.0f} | {c:.2f} ± {cs:.2f} | {x:.0f} ± {xs:.0f} | {xw:.0f} "
            f"| {missing} |"
        )
    print(
        f"| audio | egemaps, one process_signal call per window (reference) | {ref_seconds:.0f} "
        f"| {ref:.2f} | "
        f"{ref_seconds / ref:.0f} | | |"
    )
    print(f"\none pass vs per-window calls (eGeMAPS, 6 s windows at 2 Hz): {ref / one_pass:.1f}x faster")


if __name__ == "__main__":
    main()
