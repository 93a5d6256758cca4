"""A synthetic multimodal corpus with a known latent trace, for the demo and the tests.

Each subject has recordings whose ``arousal`` and ``valence`` traces are smooth random curves
(low-pass filtered noise) plus a per-subject offset. Three feature sets observe them:

- ``audio`` (16-d, every label step): a random linear map of (arousal, valence) plus noise;
- ``video`` (8-d, every label step except missing stretches, as when no face is visible): valence
  seen with a 1 s lag, plus noise;
- ``physio`` (4-d, at half the label rate, i.e. rows only at every other label timestamp):
  arousal smoothed, plus noise.

Labels are at 4 Hz (250 ms). Subjects are disjoint across partitions. Everything is
determined by ``seed``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emotrace.data.csvio import write_features, write_labels
from emotrace.data.muse import FEATURES, LABELS, Entry, write_partition

NAME = "synthetic"
STEP_MS = 250


def _smooth_noise(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    kernel = np.hanning(width)
    kernel /= kernel.sum()
    x = np.convolve(rng.standard_normal(n + width), kernel, mode="same")[:n]
    return x / (x.std() + 1e-8)


def prepare(out: Path | str, *, subjects: tuple[int, int, int] = (8, 3, 3),
            recordings_per_subject: int = 2, steps: tuple[int, int] = (240, 400),
            seed: int = 0) -> dict:
    """Write a synthetic corpus in the MuSe layout to ``out``.

    Args:
        out: the corpus folder.
        subjects: how many subjects in train, devel and test.
        recordings_per_subject: recordings per subject.
        steps: range of recording lengths in label steps (4 Hz).
        seed: random seed.
    """
    out = Path(out)
    rng = np.random.default_rng(seed)
    w_audio = rng.standard_normal((2, 16))
    w_video = rng.standard_normal((1, 8))
    w_physio = rng.standard_normal((1, 4))
    entries: list[Entry] = []
    n = 0
    for part, count in zip(("train", "devel", "test"), subjects, strict=True):
        for _ in range(count):
            n += 1
            subject = f"S{n:02d}"
            offset = 0.3 * rng.standard_normal(2)
            for k in range(recordings_per_subject):
                rid = f"{subject}_{k + 1}"
                t = int(rng.integers(steps[0], steps[1] + 1))
                ts = np.arange(t, dtype=np.int64) * STEP_MS
                arousal = 0.5 * _smooth_noise(rng, t, 40) + offset[0]
                valence = 0.5 * _smooth_noise(rng, t, 60) + offset[1]
                audio = np.stack([arousal, valence], 1) @ w_audio
                audio += 0.8 * rng.standard_normal(audio.shape)
                lagged = np.concatenate([np.full(4, valence[0]), valence[:-4]])
                video = lagged[:, None] @ w_video + 0.5 * rng.standard_normal((t, 8))
                keep = np.ones(t, bool)
                for _gap in range(int(rng.integers(0, 3))):
                    s = int(rng.integers(0, t - 20))
                    keep[s : s + int(rng.integers(5, 20))] = False
                smooth = np.convolve(arousal, np.ones(8) / 8, mode="same")
                physio = smooth[:, None] @ w_physio + 0.3 * rng.standard_normal((t, 4))
                write_features(out / FEATURES / "audio" / f"{rid}.csv", ts, audio)
                write_features(out / FEATURES / "video" / f"{rid}.csv", ts[keep], video[keep])
                write_features(out / FEATURES / "physio" / f"{rid}.csv", ts[::2], physio[::2])
                write_labels(out / LABELS / "arousal" / f"{rid}.csv", ts, arousal)
                write_labels(out / LABELS / "valence" / f"{rid}.csv", ts, valence)
                entries.append(Entry(rid, part, subject))
    write_partition(out, entries)
    return {"recordings": len(entries), "subjects": n,
            "partitions": {p: sum(e.partition == p for e in entries)
                           for p in ("train", "devel", "test")}}
