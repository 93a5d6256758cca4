"""Windows for training and padded whole-recording batches for evaluation.

Training uses windows of ``win`` steps every ``hop`` steps; the last window of a recording is
moved back to end at the recording's end (``last="end-aligned"``), so no window is padded unless
the recording is shorter than ``win``. With ``last="shorter"`` (the MuSe 2021 baseline) windows
start every ``hop`` steps from the start until one reaches the end, and that one is cut short.
Evaluation pads whole recordings to the longest one in a batch; ``mask`` marks the real steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def window_starts(length: int, win: int, hop: int, last: str = "end-aligned") -> list[int]:
    """Start indices of the windows of one recording (each ends at ``min(start + win, length)``).

    >>> window_starts(10, 4, 3)
    [0, 3, 6]
    >>> window_starts(11, 4, 3)
    [0, 3, 6, 7]
    >>> window_starts(11, 4, 3, last="shorter")
    [0, 3, 6, 9]
    >>> window_starts(3, 4, 3)
    [0]
    """
    if win <= 0 or length <= win:
        return [0]
    starts = list(range(0, length - win + 1, hop))
    if starts[-1] + win < length:
        if last == "end-aligned":
            starts.append(length - win)
        elif starts[-1] + hop < length:  # hop > win can step past the end
            starts.append(starts[-1] + hop)
    return starts


@dataclass
class Batch:
    x: torch.Tensor  # (B, T, D) float32
    y: torch.Tensor  # (B, T, K) float32, NaN where unlabelled
    mask: torch.Tensor  # (B, T) bool: real (unpadded) steps

    def __len__(self) -> int:
        return self.x.shape[0]


def pad(xs: list[np.ndarray], ys: list[np.ndarray]) -> Batch:
    """Right-pad sequences to a common length."""
    n, t = len(xs), max(len(x) for x in xs)
    x = np.zeros((n, t, xs[0].shape[1]), np.float32)
    y = np.full((n, t, ys[0].shape[1]), np.nan, np.float32)
    m = np.zeros((n, t), bool)
    for i, (a, b) in enumerate(zip(xs, ys, strict=True)):
        x[i, : len(a)] = a
        y[i, : len(b)] = b
        m[i, : len(a)] = True
    return Batch(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(m))


def make_windows(xs: list[np.ndarray], ys: list[np.ndarray], *, win: int, hop: int,
                 last: str = "end-aligned") -> Batch:
    """Cut every recording into windows and stack them into one padded :class:`Batch`."""
    wx, wy = [], []
    for x, y in zip(xs, ys, strict=True):
        for s in window_starts(len(x), win, hop, last):
            e = s + win if win > 0 else len(x)
            wx.append(x[s:e])
            wy.append(y[s:e])
    return pad(wx, wy)


def recording_batches(xs: list[np.ndarray], ys: list[np.ndarray], *, max_steps: int = 200_000):
    """Yield ``(indices, Batch)`` of whole recordings, similar lengths together.

    A batch holds at most ``max_steps`` padded steps, so memory stays bounded.
    """
    order = sorted(range(len(xs)), key=lambda i: len(xs[i]))
    i = 0
    while i < len(order):
        j = i + 1
        while j < len(order) and (j - i + 1) * len(xs[order[j]]) <= max_steps:
            j += 1
        idx = order[i:j]
        yield idx, pad([xs[k] for k in idx], [ys[k] for k in idx])
        i = j
