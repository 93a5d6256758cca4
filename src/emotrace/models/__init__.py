"""Sequence models: a registry from a :class:`~emotrace.config.ModelConfig` to a module."""

from emotrace.models.regressor import MODELS, SequenceRegressor, build_model, from_args

__all__ = ["MODELS", "SequenceRegressor", "build_model", "from_args"]
