"""Acoustic features with openSMILE, one value row per label step.

Feature sets (``build(feature_set, ...)``):

``egemaps``
    The 88 eGeMAPSv02 functionals (Eyben et al., 2016, "The Geneva Minimalistic Acoustic
    Parameter Set", IEEE TAC 7(2)) over a window of ``window`` seconds that ends at each timestamp
    (``anchor="end"``, what the MuSe baselines did) or is centred on it (``anchor="centre"``).
``compare``
    The 6373 ComParE 2016 functionals over the same windows.
``egemaps-lld``
    The 25 eGeMAPSv02 low-level descriptors (10 ms frames), averaged over each label step: the
    frames in ``(t - step, t]`` (``anchor="end"``) or ``[t - step/2, t + step/2)``
    (``anchor="centre"``), where ``step`` is the median spacing of the timestamps.

All windows of a file come from ONE openSMILE pass: the functionals run in openSMILE's
frame-list mode (``frameMode = list``, one ``start-end`` entry per timestamp in the
``frameModeFunctionalsConf`` include of the audEERING configs), so the low-level descriptors
are computed once, not once per window (which is ~10x slower). Windows are clipped to the
recording (ending at most 70 ms before its end, where openSMILE's last full frame ends); a
window with less than 0.25 s of audio inside it (the first timestamp, timestamps
after the end) is a zero row counted in ``info["missing"]``.

Input: any file FFmpeg decodes (wav, flac, mp3; the sound of mp4, mkv, webm videos), decoded
with PyAV to mono 16 kHz and peak-normalised to -3 dBFS, as in the MuSe challenges.
With ``vad=True`` the steps in which silero-vad finds no speech become zero rows, counted in
``info["non_speech"]`` and, with the other zero rows, in ``info["missing"]`` (the step of
timestamp ``t`` is ``(t - step, t]``, or centred on ``t``).
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emotrace.errors import EmotraceError
from emotrace.features.base import package_version
from emotrace.features.media import (
    AUDIO_SUFFIXES,
    audio_duration,
    check_span,
    check_timestamps,
    decode_audio,
    need,
    peak_normalise,
)

RATE = 16000
#: a window needs this much audio inside the recording to give a row
MIN_SECONDS = 0.25
#: openSMILE drops windows that end in its last 60 ms (the longest LLD frame): stop them earlier
END_MARGIN = 0.07
#: feature set → (openSMILE feature set name, level)
FEATURE_SETS = {
    "egemaps": ("eGeMAPSv02", "functionals"),
    "compare": ("ComParE_2016", "functionals"),
    "egemaps-lld": ("eGeMAPSv02", "lld"),
}
ANCHORS = ("end", "centre")


def build(feature_set: str, *, window: float = 6.0, anchor: str = "end", vad: bool = False) -> AudioExtractor:
    """An extractor for one of :data:`FEATURE_SETS`.

    >>> build("egemaps", window=5).settings["window_s"]
    5.0
    """
    if feature_set not in FEATURE_SETS:
        raise EmotraceError(
            f"Unknown audio feature set {feature_set!r}. Choose one of: {', '.join(FEATURE_SETS)}."
        )
    if anchor == "center":
        anchor = "centre"
    if anchor not in ANCHORS:
        raise EmotraceError(
            f"Unknown window anchor {anchor!r}. Choose 'end' (the window ends at each "
            "timestamp) or 'centre' (it is centred on it)."
        )
    if not window > 0:
        raise EmotraceError(f"The window must be longer than 0 s (got {window}). Pass e.g. --window 6.")
    smile_set, level = FEATURE_SETS[feature_set]
    settings = {
        "feature_set": feature_set,
        "opensmile_config": smile_set,
        "level": level,
        "window_s": float(window) if level == "functionals" else None,
        "anchor": anchor,
        "vad": bool(vad),
        "sample_rate": RATE,
        "normalisation": "peak -3 dBFS",
        "min_window_s": MIN_SECONDS,
    }
    if level == "lld":
        settings["span"] = "one label step (median timestamp spacing)"
    return AudioExtractor(name=feature_set, settings=settings)


def windows(
    ts_s: np.ndarray, *, length: float, anchor: str, duration: float
) -> tuple[np.ndarray, np.ndarray]:
    """Window ``(start, end)`` in seconds per timestamp, clipped to ``[0, duration]``.

    >>> s, e = windows(np.array([1.0, 8.0]), length=6, anchor="end", duration=7.5)
    >>> s.tolist(), e.tolist()
    ([0.0, 2.0], [1.0, 7.5])
    """
    if anchor == "end":
        start, end = ts_s - length, ts_s
    else:
        start, end = ts_s - length / 2, ts_s + length / 2
    return np.clip(start, 0.0, duration), np.clip(end, 0.0, duration)


def step_of(ts_s: np.ndarray, fallback: float) -> float:
    """The median spacing of the timestamps (``fallback`` for a single one)."""
    return float(np.median(np.diff(ts_s))) if ts_s.size > 1 else fallback


@dataclass
class AudioExtractor:
    """openSMILE features at given timestamps; see the module docstring."""

    name: str
    settings: dict
    suffixes: tuple[str, ...] = AUDIO_SUFFIXES
    _vad_model: object = field(default=None, repr=False)

    def versions(self) -> dict[str, str]:
        out = {"opensmile": package_version("opensmile"), "av": package_version("av")}
        if self.settings["vad"]:
            out["silero-vad"] = package_version("silero-vad")
        return out

    def duration(self, path: Path) -> float:
        """Seconds of audio in ``path`` (for a regular ``--rate`` grid)."""
        return audio_duration(Path(path))

    def extract(self, path: Path, timestamps_ms: np.ndarray) -> tuple[np.ndarray, list[str], dict]:
        path = Path(path)
        ts_ms = check_timestamps(path, timestamps_ms)
        x = peak_normalise(decode_audio(path, rate=RATE))
        duration = x.size / RATE
        length = self.settings["window_s"] or step_of(ts_ms / 1000.0, 1.0)
        if duration < MIN_SECONDS:
            raise EmotraceError(
                f"{path}: the audio is only {duration:.2f} s long, shorter than one "
                f"window ({MIN_SECONDS} s of sound at least). Pass the full recording."
            )
        after_end = check_span(path, ts_ms, duration, slack_s=length)
        ts_s = ts_ms / 1000.0
        if self.settings["level"] == "functionals":
            values, names, missing = self._functionals(x, ts_s, duration)
        else:
            values, names, missing = self._lld_means(x, ts_s, duration)
        info = {"missing": int(missing.sum()), "after_end": after_end, "duration_s": round(duration, 3)}
        if self.settings["vad"]:
            speech = self._speech_steps(x, ts_s)
            silent = ~speech & ~missing
            values[~speech] = 0.0
            info["non_speech"] = int(silent.sum())
            info["missing"] = int((missing | ~speech).sum())  # every zero row
        return values, names, info

    def _smile(self, level: str, options: dict | None = None):
        opensmile = need("opensmile")
        smile_set = self.settings["opensmile_config"]
        return opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, smile_set),
            feature_level=(
                opensmile.FeatureLevel.Functionals
                if level == "functionals"
                else opensmile.FeatureLevel.LowLevelDescriptors
            ),
            options=options or {},
        )

    def _functionals(self, x: np.ndarray, ts_s: np.ndarray, duration: float):
        start, end = windows(
            ts_s,
            length=self.settings["window_s"],
            anchor=self.settings["anchor"],
            duration=duration - END_MARGIN,
        )
        ok = end - start >= MIN_SECONDS
        if not ok.any():
            names = list(self._smile("functionals").feature_names)
            return np.zeros((ts_s.size, len(names)), np.float32), names, ~ok
        frame_list = ",".join(f"{s:.4f}s-{e:.4f}s" for s, e in zip(start[ok], end[ok], strict=True))
        with tempfile.TemporaryDirectory(prefix="emotrace-smile-") as tmp:
            conf = Path(tmp) / "frame_list.conf.inc"
            # openSMILE's shared/FrameModeFunctionalsMulti.conf.inc with the list written in
            conf.write_text(
                f"frameMode = list\nframeList = {frame_list}\nframeSize = 0\nframeStep = 0\n"
                "frameCenterSpecial = left\n"
            )
            smile = self._smile("functionals", {"frameModeFunctionalsConf": str(conf)})
            out = smile.process_signal(x, RATE)
        rows = out.to_numpy(dtype=np.float32)
        if rows.shape[0] != int(ok.sum()):
            raise RuntimeError(f"openSMILE returned {rows.shape[0]} windows for {int(ok.sum())} requested")
        values = np.zeros((ts_s.size, rows.shape[1]), np.float32)
        values[ok] = np.nan_to_num(rows, nan=0.0, posinf=0.0, neginf=0.0)
        return values, list(out.columns), ~ok

    def _lld_means(self, x: np.ndarray, ts_s: np.ndarray, duration: float):
        out = self._smile("lld").process_signal(x, RATE)
        lld = np.nan_to_num(out.to_numpy(dtype=np.float64))
        frame_t = out.index.get_level_values("start").total_seconds().to_numpy()
        step = step_of(ts_s, 1.0)
        if self.settings["anchor"] == "end":
            lo, hi = ts_s - step, ts_s
            a, b = np.searchsorted(frame_t, lo, side="right"), np.searchsorted(frame_t, hi, side="right")
        else:
            lo, hi = ts_s - step / 2, ts_s + step / 2
            a, b = np.searchsorted(frame_t, lo, side="left"), np.searchsorted(frame_t, hi, side="left")
        csum = np.vstack([np.zeros((1, lld.shape[1])), np.cumsum(lld, axis=0)])
        count = (b - a)[:, None]
        values = np.where(count > 0, (csum[b] - csum[a]) / np.maximum(count, 1), 0.0).astype(np.float32)
        names = [f"{c}_mean" for c in out.columns]
        return values, names, (b - a) == 0

    def _speech_steps(self, x: np.ndarray, ts_s: np.ndarray) -> np.ndarray:
        """True for the steps that overlap speech found by silero-vad."""
        torch = need("torch")
        silero = need("silero_vad", package="silero-vad")
        if self._vad_model is None:
            with warnings.catch_warnings():  # deprecation notes from inside silero-vad and torch.jit
                warnings.simplefilter("ignore", DeprecationWarning)
                self._vad_model = silero.load_silero_vad()
        speech = silero.get_speech_timestamps(
            torch.from_numpy(x), self._vad_model, sampling_rate=RATE, return_seconds=True
        )
        step = step_of(ts_s, 0.5)
        lo, hi = (
            (ts_s - step, ts_s) if self.settings["anchor"] == "end" else (ts_s - step / 2, ts_s + step / 2)
        )
        keep = np.zeros(ts_s.size, bool)
        for seg in speech:
            keep |= (lo < seg["end"]) & (hi > seg["start"])
        return keep
