"""Whole-recording inference, batched: recordings of similar length share a padded batch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from emotrace.data.inputs import length
from emotrace.data.windows import recording_batches


@torch.no_grad()
def predict_arrays(model: torch.nn.Module, xs: Sequence, *,
                   max_steps: int = 200_000) -> list[np.ndarray]:
    """Predictions ``(T_i, K)`` for each input ``(T_i, D)``, in input order.

    ``xs`` is a list of arrays or :class:`~emotrace.data.inputs.Inputs`; batches are cut from it
    one at a time (:func:`~emotrace.data.windows.recording_batches`), so a partition is never
    held whole in memory.
    """
    was_training = model.training
    model.eval()
    dummy = [np.zeros((length(xs, i), 1), np.float32) for i in range(len(xs))]
    out: list[np.ndarray | None] = [None] * len(xs)
    for idx, batch in recording_batches(xs, dummy, max_steps=max_steps):
        pred = model(batch.x, batch.mask).numpy()
        for row, i in enumerate(idx):
            out[i] = pred[row, : length(xs, i)]
    model.train(was_training)
    return out  # type: ignore[return-value]
