"""Windows for training and padded whole-recording batches for evaluation.

Training uses windows of ``win`` steps every ``hop`` steps; the last window of a recording is
moved back to end at the recording's end (``last="end-aligned"``), so no window is padded unless
the recording is shorter than ``win``. With ``last="shorter"`` (the MuSe 2021 baseline) windows
start every ``hop`` steps from the start until one reaches the end, and that one is cut short.
Evaluation pads whole recordings to the longest one in a batch; ``mask`` marks the real steps.
Both take a list of arrays or lazily standardised :class:`~emotrace.data.inputs.Inputs`, and
cut only the steps of the batch at hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from emotrace.data.inputs import length, rows, width


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


class Windows:
    """The training windows of recordings, cut on demand: :meth:`batch` gathers, standardises
    (for :class:`~emotrace.data.inputs.Inputs`) and pads just the windows asked for, to the
    longest window of all, so a batch equals the same rows of :func:`make_windows`' tensor and
    memory holds one batch, however large the corpus.

    ``win`` 0 means whole recordings; then recordings longer than ``max_len`` steps (when it is
    set) are cut into windows of ``max_len`` every ``max_len // 2`` steps, so memory does not
    grow with recording length.
    """

    def __init__(self, xs: Sequence, ys: list[np.ndarray], *, win: int, hop: int,
                 max_len: int = 0, last: str = "end-aligned") -> None:
        self.xs, self.ys = xs, ys
        self.items: list[tuple[int, int, int]] = []
        for i in range(len(ys)):
            n = length(xs, i)
            w, h = win, hop
            if w <= 0 and max_len and n > max_len:
                w, h = max_len, max(max_len // 2, 1)
            for s in window_starts(n, w, h, last):
                self.items.append((i, s, s + w if w > 0 else n))
        self.steps = max((min(e, length(xs, i)) - s for i, s, e in self.items), default=0)
        self.dim = width(xs) if len(ys) else 0

    def __len__(self) -> int:
        return len(self.items)

    def batch(self, idx) -> Batch:
        """The windows ``idx`` (indices into :attr:`items`) as one padded :class:`Batch`."""
        idx = [int(i) for i in idx]
        k = self.ys[0].shape[1]
        x = np.zeros((len(idx), self.steps, self.dim), np.float32)
        y = np.full((len(idx), self.steps, k), np.nan, np.float32)
        m = np.zeros((len(idx), self.steps), bool)
        for row, j in enumerate(idx):
            i, s, e = self.items[j]
            n = min(e, length(self.xs, i)) - s
            rows(self.xs, i, s, e, out=x[row, :n])  # standardised straight into the batch
            y[row, :n] = self.ys[i][s:e]
            m[row, :n] = True
        return Batch(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(m))


def make_windows(xs: Sequence, ys: list[np.ndarray], *, win: int, hop: int,
                 last: str = "end-aligned") -> Batch:
    """Cut every recording into windows and stack them into one padded :class:`Batch`."""
    windows = Windows(xs, ys, win=win, hop=hop, last=last)
    return windows.batch(range(len(windows)))


#: evaluation batches hold at most this many bytes of input (besides ``max_steps``)
BATCH_BYTES = 256 * 2**20


def recording_batches(xs: Sequence, ys: list[np.ndarray], *, max_steps: int = 200_000):
    """Yield ``(indices, Batch)`` of whole recordings, similar lengths together.

    A batch holds at most ``max_steps`` padded steps and at most :data:`BATCH_BYTES` of input
    (one recording at least), so memory stays bounded however wide the features are; with
    :class:`~emotrace.data.inputs.Inputs` only the batch's recordings are standardised.
    """
    if len(ys):
        max_steps = max(1, min(max_steps, BATCH_BYTES // (4 * max(width(xs), 1))))
    order = sorted(range(len(ys)), key=lambda i: length(xs, i))
    i = 0
    while i < len(order):
        j = i + 1
        while j < len(order) and (j - i + 1) * length(xs, order[j]) <= max_steps:
            j += 1
        idx = order[i:j]
        yield idx, pad([rows(xs, k, 0, None) for k in idx], [ys[k] for k in idx])
        i = j
