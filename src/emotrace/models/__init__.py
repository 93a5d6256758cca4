"""Sequence models: small masked blocks, the encoder's pre-blocks, the regressor, the segment
classifier, the late-fusion modules and the auto-encoder; a registry from config to module."""

from emotrace.models.registry import MODELS, build_model, from_args
from emotrace.models.regressor import SequenceRegressor

__all__ = ["MODELS", "SequenceRegressor", "build_model", "from_args"]
