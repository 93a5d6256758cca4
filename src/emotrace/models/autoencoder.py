"""A sequence auto-encoder whose per-step reconstruction error is a *difficulty indicator*.

Encoder = linear projection → RNN → linear bottleneck; decoder = RNN → linear back to the input
dimension. The recurrent layers are the regressor's (:class:`~emotrace.models.blocks.RNN`: GRU or
LSTM, uni- or bidirectional), so the auto-encoder belongs to the same architecture family.

The per-step error of a sequence :math:`x \\in \\mathbb{R}^{T \\times D}` is

.. math:: e_t = \\frac{1}{D} \\sum_{d=1}^{D} (x_{t,d} - \\hat{x}_{t,d})^2 ,

large where the input looks unlike the training data (a hard step for the regressor). Fitted on
the train partition only, it is appended to the regressor's input or fed to a late-fusion model
(the "difficulty indicator" of MuSe challenge entries).
"""

from __future__ import annotations

import torch
from torch import nn

from emotrace.models.blocks import RNN


class SequenceAutoEncoder(nn.Module):
    """``(B, T, D)`` → reconstruction ``(B, T, D)``; rebuilt from :meth:`model_args`."""

    def __init__(self, d_in: int, *, hidden: int = 32, bottleneck: int = 2, cell: str = "gru",
                 bidirectional: bool = True, layers: int = 1):
        super().__init__()
        self.args = {"d_in": d_in, "hidden": hidden, "bottleneck": bottleneck, "cell": cell,
                     "bidirectional": bidirectional, "layers": layers}
        self.inp = nn.Linear(d_in, hidden)
        self.enc = RNN(hidden, hidden, layers, cell=cell, bidirectional=bidirectional, dropout=0.0)
        self.code = nn.Linear(self.enc.d_out, bottleneck)
        self.dec = RNN(bottleneck, hidden, layers, cell=cell, bidirectional=bidirectional,
                       dropout=0.0)
        self.out = nn.Linear(self.dec.d_out, d_in)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.enc(torch.tanh(self.inp(x)), mask)
        return self.out(self.dec(torch.tanh(self.code(h)), mask))

    def step_error(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-step mean squared reconstruction error ``(B, T)`` (0 at padded steps)."""
        return ((self(x, mask) - x) ** 2).mean(-1) * mask

    def model_args(self) -> dict:
        return dict(self.args)


def from_args(args: dict) -> SequenceAutoEncoder:
    a = dict(args)
    return SequenceAutoEncoder(a.pop("d_in"), **a)
