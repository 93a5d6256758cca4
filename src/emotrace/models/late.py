"""Late-fusion (second-level) models over the per-step predictions of several runs.

(Early fusion is the regressor itself on concatenated feature sets, with the optional linear
``ModelConfig.project`` layer in front.)

Late fusion reads ``R`` runs' predictions of the same ``K`` targets, laid out run-major per step:
column ``r * K + k`` is run ``r``'s prediction of target ``k``; optional difficulty channels follow
as the last ``E`` columns. Three methods:

- ``mean``: :math:`\\hat{y}_{t,k} = \\frac{1}{R} \\sum_r p_{t,r,k}` (no parameters);
- ``weighted``: :math:`\\hat{y}_{t,k} = \\sum_r w_{t,r,k}\\, p_{t,r,k} + b_k` with
  :math:`w_{t,\\cdot,k} = \\mathrm{softmax}_r(a_{\\cdot,k} + V d_t)`: a convex combination of the
  runs, whose weights move with the difficulty channels :math:`d_t` when there are any
  (:math:`V = 0` otherwise);
- ``rnn``: a small :class:`~emotrace.models.regressor.SequenceRegressor` (``rnn`` family, one
  GRU layer of 32 units by default) over the standardised predictions and difficulty channels.
"""

from __future__ import annotations

import torch
from torch import nn

from emotrace.config import ModelConfig
from emotrace.models.regressor import SequenceRegressor

METHODS = ("rnn", "weighted", "mean")


class WeightedMean(nn.Module):
    """Convex combination of ``n_runs`` predictions per target; see the module docstring.

    With ``learn=False`` it is the plain mean (all logits 0, no bias), kept fixed.
    """

    def __init__(self, n_runs: int, n_targets: int, n_extra: int = 0, *, learn: bool = True):
        super().__init__()
        self.n_runs, self.n_targets, self.n_extra, self.learn = n_runs, n_targets, n_extra, learn
        self.logits = nn.Parameter(torch.zeros(n_runs, n_targets), requires_grad=learn)
        self.bias = nn.Parameter(torch.zeros(n_targets), requires_grad=learn)
        self.gate = nn.Linear(n_extra, n_runs * n_targets) if n_extra else None
        if self.gate is not None:
            nn.init.zeros_(self.gate.weight)
            nn.init.zeros_(self.gate.bias)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The per-step weights ``(B, T, R, K)``, summing to 1 over runs."""
        b, t = x.shape[:2]
        a = self.logits.expand(b, t, self.n_runs, self.n_targets)
        if self.gate is not None:
            a = a + self.gate(x[..., self.n_runs * self.n_targets :]).view(b, t, self.n_runs,
                                                                           self.n_targets)
        return torch.softmax(a, dim=2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        p = x[..., : self.n_runs * self.n_targets].view(b, t, self.n_runs, self.n_targets)
        return (self.weights(x) * p).sum(2) + self.bias

    def model_args(self) -> dict:
        return {"kind": "weighted" if self.learn else "mean", "n_runs": self.n_runs,
                "n_targets": self.n_targets, "n_extra": self.n_extra}


def build_fusion(method: str, *, n_runs: int, n_targets: int, n_extra: int = 0,
                 model: ModelConfig | None = None) -> nn.Module:
    """The late-fusion module of ``method`` (``rnn`` needs the ``model`` config)."""
    if method == "rnn":
        return SequenceRegressor(model or ModelConfig(), n_runs * n_targets + n_extra, n_targets)
    return WeightedMean(n_runs, n_targets, n_extra, learn=method == "weighted")


def fusion_args(method: str, module: nn.Module) -> dict:
    """Everything needed to rebuild ``module`` (stored in the fused run's checkpoint)."""
    if method == "rnn":
        return {"kind": "rnn", **module.model_args()}
    return module.model_args()


def fusion_from_args(args: dict) -> nn.Module:
    if args["kind"] == "rnn":
        return SequenceRegressor(ModelConfig.model_validate(args["config"]), args["d_in"],
                                 args["n_targets"])
    return WeightedMean(args["n_runs"], args["n_targets"], args["n_extra"],
                        learn=args["kind"] == "weighted")
