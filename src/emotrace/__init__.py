"""emotrace: time-continuous, multimodal emotion recognition.

The public API is flat::

    import emotrace
    corpus = emotrace.load_corpus("corpora/ceap", features=["head", "eye", "lum"])
    metrics = emotrace.train("corpora/ceap", features=["head", "eye", "lum"],
                             targets=["arousal"], out="runs/a1")
    emotrace.evaluate("runs/a1", "corpora/ceap", partition="devel")
    emotrace.ccc([1, 2, 3], [1, 2, 4])
"""

__version__ = "0.1.0"

from emotrace.api import evaluate, predict, train  # noqa: E402
from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from emotrace.data.muse import load_corpus  # noqa: E402
from emotrace.errors import EmotraceError  # noqa: E402
from emotrace.train.metrics import ccc, ccc_per_recording, pcc, rmse  # noqa: E402

__all__ = [
    "DataConfig", "EmotraceError", "ModelConfig", "RunConfig", "TrainConfig", "__version__",
    "ccc", "ccc_per_recording", "evaluate", "load_corpus", "pcc", "predict", "rmse", "train",
]
