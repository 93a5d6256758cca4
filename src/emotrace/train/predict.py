"""Whole-recording inference, batched: recordings of similar length share a padded batch."""

from __future__ import annotations

import numpy as np
import torch

from emotrace.data.windows import recording_batches


@torch.no_grad()
def predict_arrays(model: torch.nn.Module, xs: list[np.ndarray], *,
                   max_steps: int = 200_000) -> list[np.ndarray]:
    """Predictions ``(T_i, K)`` for each input ``(T_i, D)``, in input order."""
    was_training = model.training
    model.eval()
    dummy = [np.zeros((len(x), 1), np.float32) for x in xs]
    out: list[np.ndarray | None] = [None] * len(xs)
    for idx, batch in recording_batches(xs, dummy, max_steps=max_steps):
        pred = model(batch.x, batch.mask).numpy()
        for row, i in enumerate(idx):
            out[i] = pred[row, : len(xs[i])]
    model.train(was_training)
    return out  # type: ignore[return-value]
