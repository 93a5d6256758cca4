"""From a config, or a checkpoint's ``model_args``, to a module."""

from __future__ import annotations

from torch import nn

from emotrace.config import ModelConfig
from emotrace.models.classifier import SegmentClassifier
from emotrace.models.encoder import PRE_BLOCKS
from emotrace.models.regressor import SequenceRegressor

MODELS = tuple(PRE_BLOCKS)


def build_model(cfg: ModelConfig, d_in: int, n_targets: int) -> SequenceRegressor:
    return SequenceRegressor(cfg, d_in, n_targets)


def from_args(args: dict) -> nn.Module:
    """Rebuild a regressor or a segment classifier from its ``model_args()``."""
    if args.get("task") == "classification":
        return SegmentClassifier.from_args(args)
    return SequenceRegressor(ModelConfig.model_validate(args["config"]), args["d_in"],
                             args["n_targets"])
