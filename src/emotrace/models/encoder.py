"""The sequence encoder's pre-blocks, shared by the regressor and the segment classifier.

``ModelConfig.name`` picks the block that sits between the input projection and the RNN:

- ``rnn``: none (the MuSe baseline LSTM/GRU);
- ``attn-rnn``: multi-head self-attention with residual + LayerNorm;
- ``gcnn-rnn``: a gated 1-D convolution.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from emotrace.config import ModelConfig
from emotrace.models.blocks import GatedConv, SelfAttention


def _none(cfg: ModelConfig) -> tuple[nn.Module, int]:
    return nn.Identity(), cfg.hidden


def _attention(cfg: ModelConfig) -> tuple[nn.Module, int]:
    return SelfAttention(cfg.hidden, cfg.heads, cfg.dropout, causal=not cfg.bidirectional), cfg.hidden


def _gated_conv(cfg: ModelConfig) -> tuple[nn.Module, int]:
    block = GatedConv(cfg.hidden, cfg.channels, cfg.kernel, causal=not cfg.bidirectional)
    return block, cfg.channels


PRE_BLOCKS: dict[str, Callable[[ModelConfig], tuple[nn.Module, int]]] = {
    "rnn": _none,
    "attn-rnn": _attention,
    "gcnn-rnn": _gated_conv,
}
