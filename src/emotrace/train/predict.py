"""Inference, batched: whole recordings of similar length share a padded batch; recordings
longer than ``chunk`` steps are predicted in overlapping chunks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from emotrace.data.inputs import length, take, width
from emotrace.data.windows import BATCH_BYTES, Windows, recording_batches


@torch.no_grad()
def predict_arrays(model: torch.nn.Module, xs: Sequence, *, max_steps: int = 200_000,
                   chunk: int = 0) -> list[np.ndarray]:
    """Predictions ``(T_i, K)`` for each input ``(T_i, D)``, in input order.

    ``xs`` is a list of arrays or :class:`~emotrace.data.inputs.Inputs`; batches are cut from it
    one at a time (:func:`~emotrace.data.windows.recording_batches`), so a partition is never
    held whole in memory. With ``chunk > 0``, a recording longer than ``chunk`` steps is cut into
    chunks of ``chunk`` steps every ``chunk // 2`` (the training windows of ``max_len``), and each
    step takes the prediction of the chunk whose centre is nearest, so it sees at least
    ``chunk // 4`` steps of context on each side (except at the recording's ends). Many chunks
    share a batch, so a long recording is not a long sequential pass of the RNN: on Stress-Predict
    (~6 600 steps per recording) this made devel scoring several times faster.
    """
    was_training = model.training
    model.eval()
    out: list[np.ndarray | None] = [None] * len(xs)
    is_long = [chunk > 0 and length(xs, i) > chunk for i in range(len(xs))]
    long = [i for i, y in enumerate(is_long) if y]
    whole = [i for i, y in enumerate(is_long) if not y]
    if whole:
        part = take(xs, whole)
        dummy = [np.zeros((length(part, j), 1), np.float32) for j in range(len(part))]
        for idx, batch in recording_batches(part, dummy, max_steps=max_steps):
            pred = model(batch.x, batch.mask).numpy()
            for row, j in enumerate(idx):
                out[whole[j]] = pred[row, : length(part, j)]
    if long:
        _predict_chunks(model, take(xs, long), long, out, chunk=chunk, max_steps=max_steps)
    model.train(was_training)
    return out  # type: ignore[return-value]


def _predict_chunks(model: torch.nn.Module, xs: Sequence, where: list[int],
                    out: list[np.ndarray | None], *, chunk: int, max_steps: int) -> None:
    """Predict each (longer than ``chunk``) recording of ``xs`` in overlapping chunks; the
    prediction of recording ``j`` goes to ``out[where[j]]``."""
    dummy = [np.zeros((length(xs, j), 1), np.float32) for j in range(len(xs))]
    windows = Windows(xs, dummy, win=chunk, hop=max(chunk // 2, 1))
    per_batch = max(1, min(max_steps // chunk, BATCH_BYTES // (4 * max(width(xs), 1) * chunk)))
    preds: list[np.ndarray] = []
    for b in range(0, len(windows), per_batch):
        batch = windows.batch(range(b, min(b + per_batch, len(windows))))
        preds.extend(model(batch.x, batch.mask).numpy())
    starts: dict[int, list[tuple[int, np.ndarray]]] = {}
    for (j, s, _), p in zip(windows.items, preds, strict=True):
        starts.setdefault(j, []).append((s, p))
    for j, chunks in starts.items():
        n = length(xs, j)
        y = np.empty((n, preds[0].shape[-1]), np.float32)
        bounds = [0] + [(a + b) // 2 + chunk // 2
                        for (a, _), (b, _) in zip(chunks, chunks[1:], strict=False)]
        bounds.append(n)
        for (s, p), lo, hi in zip(chunks, bounds, bounds[1:], strict=False):
            y[lo:hi] = p[lo - s: hi - s]
        out[where[j]] = y
