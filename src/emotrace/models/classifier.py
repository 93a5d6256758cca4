"""The segment classifier: the regressor's encoder, masked mean pooling over the segment, and an
MLP head with one logit per class (MuSe-Sent: one label per segment).

Encoder = input projection → pre-block (``rnn``/``attn-rnn``/``gcnn-rnn``, as
:mod:`emotrace.models.encoder`) → RNN; pooling
:math:`\\bar{h} = \\sum_t m_t h_t / \\sum_t m_t` over the real (unpadded) steps; head = two linear
layers. A model is rebuilt from ``(ModelConfig, d_in, n_classes)``, stored in every checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn

from emotrace.config import ModelConfig
from emotrace.models.blocks import RNN, InputProjection, MLPHead
from emotrace.models.encoder import PRE_BLOCKS


class MaskedMeanPool(nn.Module):
    """``(B, T, C)`` and a ``(B, T)`` mask → ``(B, C)``: the mean over the real steps."""

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp_min(1.0)


class SegmentClassifier(nn.Module):
    task = "classification"

    def __init__(self, cfg: ModelConfig, d_in: int, n_classes: int):
        super().__init__()
        self.cfg, self.d_in, self.n_classes = cfg, d_in, n_classes
        self.proj = InputProjection(d_in, cfg.hidden, cfg.dropout, kind=cfg.input_layer)
        self.pre, d_pre = PRE_BLOCKS[cfg.name](cfg)
        self.rnn = RNN(d_pre, cfg.hidden, cfg.layers, cell=cfg.cell,
                       bidirectional=cfg.bidirectional, dropout=cfg.dropout)
        self.pool = MaskedMeanPool()
        self.head = MLPHead(self.rnn.d_out, cfg.head_hidden, n_classes, cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, T, d_in)``, ``mask`` ``(B, T)`` → logits ``(B, n_classes)``."""
        h = self.proj(x, mask)
        if not isinstance(self.pre, nn.Identity):
            h = self.pre(h, mask)
        h = self.rnn(h, mask)
        return self.head(self.pool(h, mask), mask)

    def model_args(self) -> dict:
        return {"task": self.task, "config": self.cfg.model_dump(mode="json"), "d_in": self.d_in,
                "n_classes": self.n_classes}

    @classmethod
    def from_args(cls, args: dict) -> SegmentClassifier:
        return cls(ModelConfig.model_validate(args["config"]), args["d_in"], args["n_classes"])
