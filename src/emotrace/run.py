"""The run directory (fixed by DESIGN.md)::

    RUN/config.yaml          the RunConfig
    RUN/checkpoint.pt        self-describing checkpoint (plain tensors and builtins only)
    RUN/metrics.json         devel metrics of the kept seed, every seed's, timings
    RUN/predictions/<partition>/<recording_id>.csv   timestamp, value
    RUN/eval_<partition>.json                          written by ``evaluate``

Checkpoints are loaded with ``torch.load(weights_only=True)``: no pickled classes, so they load
in any later PyTorch and can't execute code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from emotrace._version import __version__
from emotrace.config import RunConfig, read_yaml
from emotrace.data.standardise import Standardiser
from emotrace.errors import EmotraceError
from emotrace.fileio import atomic_path
from emotrace.models import SequenceRegressor, from_args

CHECKPOINT_FORMAT = "emotrace-checkpoint-1"
CONFIG, CHECKPOINT, METRICS, PREDICTIONS, STATE = (
    "config.yaml", "checkpoint.pt", "metrics.json", "predictions", "train_state.pt")


@dataclass
class Run:
    path: Path
    config: RunConfig
    model: SequenceRegressor
    standardizer: Standardiser
    feature_dims: dict[str, int]
    metrics: dict
    difficulty: Any = None  # emotrace.fusion.difficulty.Difficulty when trained with --difficulty


def save_checkpoint(path: Path, *, config: RunConfig, model: SequenceRegressor,
                    standardizer: Standardiser, feature_dims: dict[str, int], optimizer: dict,
                    scheduler: dict, rng: dict, epoch: int, seed: int,
                    difficulty: dict | None = None) -> None:
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "emotrace_version": __version__,
        "config": config.model_dump(mode="json"),
        "model_args": model.model_args(),
        "model": model.state_dict(),
        "normaliser": standardizer.state(),
        "feature_dims": dict(feature_dims),
        "optimizer": optimizer,
        "scheduler": scheduler,
        "rng": rng,
        "epoch": epoch,
        "seed": seed,
    }
    if difficulty is not None:  # the auto-encoders of --difficulty
        ckpt["difficulty"] = difficulty
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def load_run(path: Path | str) -> Run:
    """Load a finished run: config, model (in eval mode), standardiser and metrics."""
    path = Path(path)
    if not path.is_dir():
        raise EmotraceError(f"{path}: run folder not found. Pass the --out folder of a finished "
                            f"`emotrace train`.")
    if (path / STATE).exists():  # removed only after checkpoint.pt and metrics.json are written
        raise EmotraceError(f"{path}: the run was interrupted before it finished (it still holds "
                            f"{STATE}). Finish it with `emotrace train ... --resume` and the same "
                            f"options.")
    for name in (CONFIG, CHECKPOINT):
        if not (path / name).exists():
            raise EmotraceError(f"{path / name}: missing, so {path} is not a finished run. Pass "
                                f"the --out folder of a finished `emotrace train`.")
    if "fusion" in read_yaml(path / CONFIG):
        raise EmotraceError(f"{path}: is a fused run (`emotrace fuse`), which `evaluate`, "
                            f"`predict` and `fuse` accept but this command does not. Pass a run "
                            f"of `emotrace train`.")
    config = RunConfig.load(path / CONFIG)
    try:
        ckpt = torch.load(path / CHECKPOINT, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise EmotraceError(f"{path / CHECKPOINT}: not a readable emotrace checkpoint "
                            f"({type(e).__name__}). Retrain the run.") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise EmotraceError(f"{path / CHECKPOINT}: not an emotrace checkpoint of format "
                            f"{CHECKPOINT_FORMAT!r}. Retrain the run with this version.")
    # compared after validation, so options added later (with defaults) keep old runs loadable
    if RunConfig.from_dict(ckpt["config"], source=str(path / CHECKPOINT)).model_dump(
            mode="json") != config.model_dump(mode="json"):
        raise EmotraceError(f"{path / CONFIG}: does not match {path / CHECKPOINT} (the files come "
                            f"from different runs). Restore the original config.yaml or retrain.")
    model = from_args(ckpt["model_args"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        lines = [x.strip() for x in str(e).splitlines() if x.strip()]
        first = lines[1] if len(lines) > 1 else lines[0]  # line 0 only says "Error(s) in loading"
        raise EmotraceError(f"{path / CHECKPOINT}: the weights do not fit the model described in "
                            f"the checkpoint ({first}). Retrain the run.") from None
    model.eval()
    metrics = {}
    if (path / METRICS).exists():
        metrics = json.loads((path / METRICS).read_text())
    std = Standardiser.from_state(ckpt["normaliser"],
                                  per_recording=tuple(config.data.per_recording))
    difficulty = None
    if ckpt.get("difficulty"):
        from emotrace.fusion.difficulty import Difficulty

        difficulty = Difficulty.from_state(ckpt["difficulty"])
    return Run(path, config, model, std, dict(ckpt["feature_dims"]), metrics, difficulty)
