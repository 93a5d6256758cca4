"""Masked training losses (PyTorch). ``pred`` and ``truth`` are ``(B, T, K)``; steps whose truth
is NaN or that are padding (``mask`` False) are left out. Losses are averaged over targets.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def _ccc(y: torch.Tensor, p: torch.Tensor, w: torch.Tensor, dim: int) -> torch.Tensor:
    """Weighted CCC along ``dim`` with population statistics; weights are 0/1 masks."""
    n = w.sum(dim, keepdim=True).clamp_min(1.0)
    my = (w * y).sum(dim, keepdim=True) / n
    mp = (w * p).sum(dim, keepdim=True) / n
    dy, dp = (y - my) * w, (p - mp) * w
    cov = (dy * dp).sum(dim, keepdim=True) / n
    vy = (dy * dy).sum(dim, keepdim=True) / n
    vp = (dp * dp).sum(dim, keepdim=True) / n
    return (2 * cov / (vy + vp + (my - mp) ** 2 + 1e-8)).squeeze(dim)


def _weights(truth: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    w = (mask.unsqueeze(-1) & torch.isfinite(truth)).float()
    return torch.nan_to_num(truth, nan=0.0), w


def ccc_loss(pred: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """:math:`1 - \\overline{\\text{CCC}}`, CCC computed per window (sequence) over its valid
    steps and averaged over the windows that have at least two valid steps."""
    y, w = _weights(truth, mask)
    c = _ccc(y, pred, w, 1)  # (B, K)
    valid = (w.sum(1) >= 2).float()
    return 1 - (c * valid).sum() / valid.sum().clamp_min(1.0)


def ccc_batch_loss(pred: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """:math:`1 - \\text{CCC}`, CCC over all valid steps of the batch concatenated (per target).

    Unlike the per-window loss it also penalises wrong *levels* across windows and recordings,
    which the global CCC metric rewards.
    """
    y, w = _weights(truth, mask)
    k = y.shape[-1]
    c = _ccc(y.reshape(-1, k), pred.reshape(-1, k), w.reshape(-1, k), 0)
    return 1 - c.mean()


def mse_loss(pred: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    y, w = _weights(truth, mask)
    return (w * (pred - y) ** 2).sum() / w.sum().clamp_min(1.0)


def l1_loss(pred: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    y, w = _weights(truth, mask)
    return (w * (pred - y).abs()).sum() / w.sum().clamp_min(1.0)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ccc": ccc_loss,
    "ccc-batch": ccc_batch_loss,
    "mse": mse_loss,
    "l1": l1_loss,
}
