"""Difficulty indicators: one sequence auto-encoder per feature set, fitted on train only.

For a feature set with standardised input :math:`x`, its auto-encoder's per-step error
:math:`e_t` (:class:`~emotrace.models.autoencoder.SequenceAutoEncoder`) becomes the channel

.. math:: d_t = (\\log(e_t + \\epsilon) - \\mu) / \\sigma ,

with :math:`\\mu, \\sigma` the mean and standard deviation of :math:`\\log(e_t + \\epsilon)` over
the train steps and :math:`\\epsilon = 10^{-6}`. :meth:`Difficulty.append` adds one such column per
feature set to an input matrix (``emotrace train --difficulty``); the late-fusion model receives
the same columns next to the runs' predictions (``emotrace fuse --difficulty``).

This follows the "difficulty indicator" of MuSe challenge entries: an auto-encoder per feature
set with the regressor's recurrent architecture, whose per-step reconstruction error is appended to
the unimodal regressor's input and to the late-fusion model's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from emotrace.data.windows import make_windows, recording_batches
from emotrace.models.autoencoder import SequenceAutoEncoder, from_args
from emotrace.train.loop import Schedule, Task, fit_task

EPS = 1e-6


@dataclass
class Difficulty:
    """Auto-encoders of the feature sets ``names``, reading the columns ``groups`` of an input."""

    names: list[str]
    groups: list[tuple[int, int]]
    models: list[SequenceAutoEncoder]
    mean: np.ndarray  # (G,) train mean of log error
    std: np.ndarray  # (G,)

    @classmethod
    def fit(cls, xs: list[np.ndarray], groups: list[tuple[int, int]], names: list[str], *,
            cell: str = "gru", bidirectional: bool = True, hidden: int = 16, layers: int = 1,
            epochs: int = 6,
            lr: float = 5e-3, batch_size: int = 128, win: int = 50, seed: int = 0) -> Difficulty:
        """Fit one auto-encoder per column group on the (standardised) train inputs ``xs``.

        The training sequences are windows of ``win`` steps (hop ``win``; short windows keep the
        recurrent passes cheap); the loss is the masked MSE. The bottleneck has
        :math:`\\lceil D / 4 \\rceil` units (at least 1, at most 32), so it cannot copy the input.
        Errors are computed on whole recordings. ``hidden`` and ``layers`` size the encoder's and
        the decoder's recurrent stacks (``data.difficulty_hidden`` / ``difficulty_layers``).
        """
        models = []
        for a, b in groups:
            d = b - a
            parts = [x[:, a:b] for x in xs]
            batch = make_windows(parts, [np.zeros((len(x), 1), np.float32) for x in parts],
                                 win=win, hop=max(win, 1))
            m = batch.mask.unsqueeze(-1).float()

            def build(d: int = d) -> SequenceAutoEncoder:
                return SequenceAutoEncoder(d, hidden=hidden, bottleneck=min(max(1, -(-d // 4)), 32),
                                           cell=cell, bidirectional=bidirectional, layers=layers)

            def loss(ae: nn.Module, idx: torch.Tensor, d: int = d, batch=batch, m=m) -> torch.Tensor:
                x, mm = batch.x[idx], batch.mask[idx]
                return (((ae(x, mm) - x) ** 2) * m[idx]).sum() / (m[idx].sum() * d)

            fit = fit_task(Task(build, len(batch), loss),
                            Schedule(epochs=epochs, lr=lr, batch_size=batch_size), [seed])
            models.append(fit.model)
        out = cls(list(names), [tuple(g) for g in groups], models, np.zeros(len(groups)),
                  np.ones(len(groups)))
        log_e = np.concatenate(out.raw_errors(xs), axis=0)
        sd = log_e.std(0)
        out.mean, out.std = log_e.mean(0), np.where(sd > 1e-8, sd, 1.0)
        return out

    @torch.no_grad()
    def raw_errors(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        """:math:`\\log(e_t + \\epsilon)` per recording, ``(T, G)``, before the train z-scoring."""
        out: list[list[np.ndarray]] = [[] for _ in xs]
        for (a, b), ae in zip(self.groups, self.models, strict=True):
            parts = [x[:, a:b] for x in xs]
            dummy = [np.zeros((len(x), 1), np.float32) for x in parts]
            for idx, batch in recording_batches(parts, dummy):
                e = ae.step_error(batch.x, batch.mask).numpy()
                for row, i in enumerate(idx):
                    out[i].append(np.log(e[row, : len(parts[i])] + EPS))
        return [np.stack(cols, axis=1) for cols in out]

    def errors(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        """The difficulty channels ``(T, G)`` of each input ``(T, D)``."""
        return [((e - self.mean) / self.std).astype(np.float32) for e in self.raw_errors(xs)]

    def append(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        """Each input with its difficulty channels appended as the last ``G`` columns."""
        return [np.concatenate([x, e], axis=1) for x, e in zip(xs, self.errors(xs), strict=True)]

    def state(self) -> dict:
        """Plain tensors and builtins, for a ``weights_only`` checkpoint."""
        return {"names": list(self.names), "groups": [list(g) for g in self.groups],
                "model_args": [m.model_args() for m in self.models],
                "models": [m.state_dict() for m in self.models],
                "mean": torch.from_numpy(np.asarray(self.mean, np.float64)),
                "std": torch.from_numpy(np.asarray(self.std, np.float64))}

    @classmethod
    def from_state(cls, state: dict) -> Difficulty:
        models = []
        for args, sd in zip(state["model_args"], state["models"], strict=True):
            m = from_args(args)
            m.load_state_dict(sd)
            m.eval()
            models.append(m)
        return cls(list(state["names"]), [tuple(g) for g in state["groups"]], models,
                   state["mean"].numpy(), state["std"].numpy())
