"""emotrace: time-continuous, multimodal emotion recognition.

The public API is flat::

    import emotrace
    corpus = emotrace.load_corpus("corpora/ceap", features=["head", "eye", "lum"])
    metrics = emotrace.fit("corpora/ceap", features=["head", "eye", "lum"],
                           targets=["arousal"], out="runs/a1")
    emotrace.evaluate("runs/a1", "corpora/ceap", partition="devel")
    emotrace.ccc([1, 2, 3], [1, 2, 4])

Names are imported on first use, so ``import emotrace`` (and ``emotrace --help``) stays fast and
does not load torch until a model is needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from emotrace._version import __version__

_API = {
    "fit": "emotrace.api", "evaluate": "emotrace.api", "predict": "emotrace.api",
    "load_corpus": "emotrace.data.muse",
    "DataConfig": "emotrace.config", "ModelConfig": "emotrace.config",
    "RunConfig": "emotrace.config", "TrainConfig": "emotrace.config",
    "EmotraceError": "emotrace.errors",
    "ccc": "emotrace.metrics", "ccc_per_recording": "emotrace.metrics",
    "pcc": "emotrace.metrics", "rmse": "emotrace.metrics",
    "tune": "emotrace.workflows.tune", "personalise": "emotrace.workflows.personalise",
    "fit_final": "emotrace.api",
    "export": "emotrace.export", "StreamingPredictor": "emotrace.streaming",
    "report": "emotrace.report",
    "make_classes": "emotrace.labels.classes",
    "extract": "emotrace.features.driver",
    "classification_metrics": "emotrace.metrics",
    "fuse": "emotrace.api", "FuseConfig": "emotrace.config",
    "run_recipe": "emotrace.workflows.pipeline",
}

__all__ = [
    "DataConfig", "EmotraceError", "ModelConfig", "RunConfig", "TrainConfig", "__version__",
    "ccc", "ccc_per_recording", "evaluate", "fit", "load_corpus", "pcc", "predict", "rmse",
    "fit_final", "personalise", "tune",
    "StreamingPredictor", "export", "report", "classification_metrics", "make_classes", "extract",
    "FuseConfig", "fuse", "run_recipe",
]


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'emotrace' has no attribute {name!r}")


if TYPE_CHECKING:
    from emotrace.api import evaluate, fit, predict
    from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from emotrace.data.muse import load_corpus
    from emotrace.errors import EmotraceError
    from emotrace.export import export
    from emotrace.features.driver import extract
    from emotrace.metrics import ccc, ccc_per_recording, pcc, rmse
    from emotrace.report import report
    from emotrace.streaming import StreamingPredictor
    from emotrace.workflows.personalise import personalise
    from emotrace.workflows.pipeline import run_recipe
    from emotrace.workflows.tune import tune
