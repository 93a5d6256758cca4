"""Decoding media for the audio and face extractors (private helpers; PyAV, imported lazily).

Audio comes out mono, float32, at the rate asked for (16 kHz for openSMILE and silero-vad),
from any container FFmpeg reads: wav, flac, mp3, mp4, mkv, webm, ... Video frames come out one
per requested timestamp: the frame on screen at that time (the last frame whose presentation time
is at or before it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from emotrace.errors import EmotraceError, located

#: file suffixes the media extractors pick up in a folder
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".mp4", ".mkv", ".webm", ".avi", ".mov")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov")


def need(module: str, *, package: str | None = None, extra: str = "features"):
    """Import an optional dependency or raise an :class:`EmotraceError` that says how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise EmotraceError(
            f"This extractor needs the Python package {package or module!r}, which is not installed "
            f'({e}). Install it with: pip install "emotrace[{extra}]".'
        ) from None


def check_timestamps(path: Path, timestamps_ms: np.ndarray) -> np.ndarray:
    """The timestamps as float64 milliseconds; an error when they are empty, missing or not increasing."""
    ts = np.asarray(timestamps_ms, dtype=np.float64).reshape(-1)
    if ts.size == 0:
        raise located(
            path,
            "there are no timestamps to extract features at",
            fix="Check the label files of this recording (or pass --rate).",
        )
    if not np.all(np.isfinite(ts)):
        raise located(
            path,
            f"{int((~np.isfinite(ts)).sum())} of the timestamps to align to are missing",
            fix="Fill the empty timestamps in the label file of this recording.",
        )
    bad = np.flatnonzero(np.diff(ts) <= 0)
    if bad.size:
        i = int(bad[0])
        raise located(
            path,
            f"the timestamps to align to are not increasing ({ts[i]:g} ms is followed by {ts[i + 1]:g} ms)",
            fix="Sort the label file of this recording and remove duplicates.",
        )
    return ts


def check_span(path: Path, ts_ms: np.ndarray, duration_s: float, *, slack_s: float) -> int:
    """How many timestamps lie after the end of the media; an error when the labels run far past it.

    Labels that end up to ``slack_s`` (or 5 % of the duration) after the media are tolerated (those
    steps become zeros and are counted); more than that means the media is not the recording the
    labels belong to, or its header claims a wrong sample rate or frame rate.
    """
    end_ms = duration_s * 1000.0
    limit = end_ms + 1000.0 * max(slack_s, 0.05 * duration_s)
    if ts_ms[-1] > limit:
        raise located(
            path,
            f"the labels run to {ts_ms[-1] / 1000:.1f} s but the media is only {duration_s:.1f} s long",
            fix="Check that the file belongs to this recording and that its header gives the right sample "
            "or frame rate (re-encode it with ffmpeg if not).",
        )
    return int((ts_ms > end_ms).sum())


def _open(path: Path):
    av = need("av")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise located(
            path,
            f"cannot be read as audio or video ({e})",
            fix="Check that the file is complete and in a format FFmpeg reads; convert it with "
            "ffmpeg if not.",
        ) from None


def _audio_stream(container, path: Path):
    if not container.streams.audio:
        raise located(path, "has no audio stream",
                      fix="Pass a file with sound (or leave this recording out of the media folder).")
    return container.streams.audio[0]


def decode_audio(path: Path, *, rate: int = 16000) -> np.ndarray:
    """The first audio stream of ``path`` as mono float32 samples at ``rate`` Hz."""
    av = need("av")
    container = _open(path)
    with container:
        stream = _audio_stream(container, path)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except (av.error.FFmpegError, ValueError) as e:
            raise located(
                path,
                f"the audio stream cannot be decoded ({e})",
                fix="Re-encode the file with ffmpeg, e.g. ffmpeg -i IN -ac 1 -ar 16000 OUT.wav.",
            ) from None
    x = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if x.size == 0:
        raise located(path, "has an audio stream without any samples", fix="Pass a file with sound.")
    return x


def peak_normalise(x: np.ndarray, *, db: float = -3.0) -> np.ndarray:
    r"""Scale ``x`` so that its peak is at ``db`` dBFS: :math:`x \cdot 10^{db/20} / \max|x|`.

    MuSe normalised the audio to -3 dB before openSMILE. Silence stays silence.

    >>> round(float(np.abs(peak_normalise(np.array([0.1, -0.5], np.float32))).max()), 4)
    0.7079
    """
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak == 0.0:
        return x
    return (x * (10.0 ** (db / 20.0) / peak)).astype(np.float32)


def _stream_duration(container, stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return float("nan")


def audio_duration(path: Path) -> float:
    """Seconds of the first audio stream (from the header; decoded when the header has none)."""
    container = _open(path)
    with container:
        duration = _stream_duration(container, _audio_stream(container, path))
    return duration if np.isfinite(duration) else decode_audio(path).size / 16000


def video_info(path: Path) -> tuple[float, int, int]:
    """``(duration in s, width, height)`` of the first video stream; an error when there is none."""
    container = _open(path)
    with container:
        if not container.streams.video:
            raise located(path, "has no video stream", fix="Pass a video file to the face extractor.")
        stream = container.streams.video[0]
        return (_stream_duration(container, stream), int(stream.codec_context.width),
                int(stream.codec_context.height))


def frames_at(path: Path, times_s: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(i, grey frame)`` for each ``times_s[i]`` (increasing) that lies inside the video.

    The frame for time ``t`` is the last frame whose presentation time is at or before ``t``
    (what a viewer sees at ``t``). One sequential decoding pass; only the frames that are used get
    converted to arrays. Times before the first frame or after the last one are not yielded.
    """
    av = need("av")
    container = _open(path)
    with container:
        if not container.streams.video:
            raise located(path, "has no video stream", fix="Pass a video file to the face extractor.")
        stream = container.streams.video[0]
        i, n = 0, len(times_s)
        previous = None
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                while i < n and times_s[i] < frame.time:
                    if previous is not None:
                        yield i, previous.to_ndarray(format="gray")
                    i += 1
                if i >= n:
                    return
                previous = frame
        except av.error.FFmpegError as e:
            raise located(
                path, f"the video stream cannot be decoded ({e})", fix="Re-encode the file with ffmpeg."
            ) from None
        if previous is not None:
            # times after the last frame's start: on screen until the frame ends
            end = previous.time + (
                float(previous.duration * previous.time_base)
                if previous.duration
                else 1.0 / float(stream.average_rate or 25)
            )
            last = previous.to_ndarray(format="gray")
            while i < n and times_s[i] < end:
                yield i, last
                i += 1
