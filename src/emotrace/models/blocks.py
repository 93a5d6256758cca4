"""Small sequence blocks with masks. Every block maps ``(B, T, C)`` to ``(B, T, C')``.

``mask`` is ``(B, T)`` bool, True at real steps; sequences are right-padded.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class InputProjection(nn.Module):
    """Linear projection of the input features.

    ``kind="linear-relu"``: :math:`\\mathrm{Dropout}(\\mathrm{ReLU}(W x + b))`;
    ``kind="linear"``: :math:`W x`, no bias and no activation, as in the MuSe 2021 baseline.
    """

    def __init__(self, d_in: int, d_out: int, dropout: float, *, kind: str = "linear-relu"):
        super().__init__()
        if kind == "linear":
            self.proj = nn.Sequential(nn.Linear(d_in, d_out, bias=False))
        else:
            self.proj = nn.Sequential(nn.Linear(d_in, d_out), nn.ReLU(), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention, residual connection, LayerNorm.

    :math:`h = \\mathrm{LayerNorm}(x + \\mathrm{MHA}(x, x, x))`; padded steps are never attended
    to. With ``causal=True`` a step attends only to itself and the past.
    """

    def __init__(self, dim: int, heads: int, dropout: float, *, causal: bool = False):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.causal = causal

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        attn_mask = None
        if self.causal:
            attn_mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        h, _ = self.attn(x, x, x, key_padding_mask=~mask, attn_mask=attn_mask,
                         need_weights=False)
        return self.norm(x + h)


class GatedConv(nn.Module):
    """Gated 1-D convolution, :math:`\\mathrm{conv}_a(x) \\odot \\sigma(\\mathrm{conv}_b(x))`.

    Padded steps are zeroed before the convolution so they do not leak into real ones. With
    ``causal=True`` the output at step t sees steps ``t - kernel + 1 .. t`` only.
    """

    def __init__(self, d_in: int, channels: int, kernel: int, *, causal: bool = False):
        super().__init__()
        self.pad = (kernel - 1, 0) if causal else ((kernel - 1) // 2, kernel // 2)
        self.conv = nn.Conv1d(d_in, 2 * channels, kernel)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = (x * mask.unsqueeze(-1)).transpose(1, 2)
        h = self.conv(nn.functional.pad(x, self.pad))
        return nn.functional.glu(h, dim=1).transpose(1, 2)


class RNN(nn.Module):
    """A (bi)directional LSTM or GRU stack. Padded steps are packed away when a batch has any,
    so a backward direction starts at each sequence's real end."""

    def __init__(self, d_in: int, hidden: int, layers: int, *, cell: str, bidirectional: bool,
                 dropout: float):
        super().__init__()
        kind = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = kind(d_in, hidden, num_layers=layers, batch_first=True,
                        bidirectional=bidirectional, dropout=dropout if layers > 1 else 0.0)
        self.d_out = hidden * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1)
        if bool((lengths == x.shape[1]).all()):
            return self.rnn(x)[0]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]


class MLPHead(nn.Module):
    """Two linear layers with a ReLU between them, one output per target. The output bias starts
    at 0 (as in the MuSe 2021 baseline): a fresh model predicts around 0, i.e. the train label
    mean when the regressor scales its output."""

    def __init__(self, d_in: int, hidden: int, d_out: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, d_out))
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(x)
