"""The sequence regressor: input projection → pre-block → RNN → MLP head, one output per step.

The head's output is mapped to label units by a fixed affine transform whose mean and std the
trainer sets from the train labels (``out_mean``, ``out_std`` buffers).

The three model families differ only in the pre-block
(:data:`emotrace.models.encoder.PRE_BLOCKS`).

A model is rebuilt from ``(ModelConfig, d_in, n_targets)``, which every checkpoint stores.
"""

from __future__ import annotations

import torch
from torch import nn

from emotrace.config import ModelConfig
from emotrace.models.blocks import RNN, InputProjection, MLPHead
from emotrace.models.encoder import PRE_BLOCKS


class SequenceRegressor(nn.Module):
    def __init__(self, cfg: ModelConfig, d_in: int, n_targets: int):
        super().__init__()
        self.cfg, self.d_in, self.n_targets = cfg, d_in, n_targets
        # early fusion: an optional linear projection of the concatenated feature sets
        self.project = nn.Linear(d_in, cfg.project) if cfg.project else None
        self.proj = InputProjection(cfg.project or d_in, cfg.hidden, cfg.dropout,
                                    kind=cfg.input_layer)
        self.pre, d_pre = PRE_BLOCKS[cfg.name](cfg)
        self.rnn = RNN(d_pre, cfg.hidden, cfg.layers, cell=cfg.cell,
                       bidirectional=cfg.bidirectional, dropout=cfg.dropout)
        self.head = MLPHead(self.rnn.d_out, cfg.head_hidden, n_targets, cfg.dropout)
        # Output scale: the head predicts standardised targets; these buffers (set from the train
        # labels by the trainer, saved in the state_dict) map them back to label units.
        self.register_buffer("out_mean", torch.zeros(n_targets))
        self.register_buffer("out_std", torch.ones(n_targets))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, T, d_in)``, ``mask`` ``(B, T)`` → predictions ``(B, T, n_targets)``."""
        if self.project is not None:
            x = self.project(x)
        h = self.proj(x, mask)
        if not isinstance(self.pre, nn.Identity):
            h = self.pre(h, mask)
        h = self.rnn(h, mask)
        return self.head(h, mask) * self.out_std + self.out_mean

    def set_output_scale(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Predict ``mean + std * z``: the network learns targets on a unit scale. A no-op when
        the config turns ``output_scale`` off (the head's output is then the prediction)."""
        if not self.cfg.output_scale:
            return
        self.out_mean.copy_(mean)
        self.out_std.copy_(std)

    def model_args(self) -> dict:
        """Everything needed to rebuild this module (stored in checkpoints)."""
        return {"config": self.cfg.model_dump(mode="json"), "d_in": self.d_in,
                "n_targets": self.n_targets}
