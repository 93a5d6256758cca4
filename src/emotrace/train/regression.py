"""Sequence regression on the fit loop: windows of standardised inputs → the run's loss, scored
by the mean devel CCC over targets.

Works on arrays and configs only; it never reads corpus files or parses flags.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from emotrace.config import DataConfig, RunConfig, TrainConfig
from emotrace.data.inputs import width
from emotrace.data.windows import Windows
from emotrace.errors import EmotraceError
from emotrace.metrics import trace_metrics
from emotrace.models import build_model
from emotrace.train.loop import EpochEvent, FitResult, Schedule, Task, fit_seeds
from emotrace.train.losses import LOSSES
from emotrace.train.predict import predict_arrays
from emotrace.train.workers import default_jobs

__all__ = ["EpochEvent", "FitResult", "Split", "drop_modalities", "eval_chunk", "feature_groups",
           "jobs_for",
           "regression_task", "schedule", "score_targets", "train_seeds"]


@dataclass
class Split:
    """Standardised inputs and label traces of one partition, one array per recording.

    ``xs`` is a list of ``(T, D)`` arrays or :class:`~emotrace.data.inputs.Inputs`, which
    standardises the steps of each batch on demand (a mapped corpus is then never copied whole).
    """

    ids: list[str]
    xs: Sequence  # (T, D) per recording
    ys: list[np.ndarray]  # (T, K), NaN where unlabelled
    groups: list[tuple[int, int]] = field(default_factory=list)  # column range per feature set


def feature_groups(dims: list[int]) -> list[tuple[int, int]]:
    """The column range of each feature set in the concatenated input.

    >>> feature_groups([2, 3, 1])
    [(0, 2), (2, 5), (5, 6)]
    """
    ends = np.cumsum(dims).tolist()
    return list(zip([0, *ends[:-1]], ends, strict=True))


def score_targets(split: Split, preds: list[np.ndarray], targets: list[str]) -> tuple[dict, float]:
    """Per-target metrics and their mean CCC (the model-selection score)."""
    metrics = {t: trace_metrics([y[:, k] for y in split.ys], [p[:, k] for p in preds])
               for k, t in enumerate(targets)}
    return metrics, float(np.mean([m["ccc"] for m in metrics.values()]))


def drop_modalities(x: torch.Tensor, groups: list[tuple[int, int]], p: float) -> torch.Tensor:
    """Zero each feature set of each window with probability ``p`` (modality dropout).

    Zero is the train mean after standardisation, i.e. what a missing modality looks like, so the
    model learns not to depend on any single modality. Uses the global torch RNG (saved on resume).
    """
    if p <= 0 or len(groups) < 2:
        return x
    keep = torch.rand(x.shape[0], len(groups)) >= p
    cols = torch.ones(x.shape[0], x.shape[2])
    for g, (a, b) in enumerate(groups):
        cols[:, a:b] = keep[:, g : g + 1].float()
    return x * cols.unsqueeze(1)


def schedule(tc: TrainConfig) -> Schedule:
    """The loop's schedule from a run's training options."""
    return Schedule(epochs=tc.epochs, lr=tc.lr, batch_size=tc.batch_size,
                    weight_decay=tc.weight_decay, clip=tc.clip, patience=tc.patience,
                    lr_patience=tc.lr_patience, lr_factor=tc.lr_factor, min_lr=tc.min_lr,
                    plateau_on="train_loss" if tc.lr_plateau_on == "train-loss" else "score")


def _label_scale(ys: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    y = np.concatenate(ys, axis=0)
    with np.errstate(over="ignore"):  # labels like 1e30: training then stops with a clear error
        mean = torch.from_numpy(np.nan_to_num(np.nanmean(y, axis=0)).astype(np.float32))
        std = torch.from_numpy(np.nan_to_num(np.nanstd(y, axis=0), nan=1.0).astype(np.float32))
    std[std < 1e-8] = 1.0
    return mean, std


def eval_chunk(dc: DataConfig) -> int:
    """The chunk length for predicting long recordings: ``max_len`` when training cut long
    recordings into windows of it (``win`` 0), else 0 (whole recordings, as trained)."""
    return dc.max_len if dc.win == 0 else 0


def jobs_for(tc: TrainConfig, n: int) -> int:
    """Worker processes for ``n`` independent jobs: ``jobs`` (0 = one per core), at most
    ``threads`` (0 = all cores) and ``n``."""
    cores = default_jobs()
    return max(1, min(tc.jobs or cores, tc.threads or cores, n))


def regression_task(config: RunConfig, train: Split, devel: Split) -> tuple[Task, Schedule]:
    """The fit loop's task for a sequence regressor (built in each worker)."""
    tc, targets = config.train, config.data.targets
    windows = Windows(train.xs, train.ys, win=config.data.win, hop=config.data.window_hop,
                      max_len=config.data.max_len, last=config.data.last_window)
    loss_fn = LOSSES[tc.loss]
    d_in = width(train.xs)
    y_mean, y_std = _label_scale(train.ys)

    def build() -> torch.nn.Module:
        model = build_model(config.model, d_in, len(targets))
        model.set_output_scale(y_mean, y_std)
        return model

    def loss(model: torch.nn.Module, idx: torch.Tensor) -> torch.Tensor:
        batch = windows.batch(idx)
        x, y, m = batch.x, batch.y, batch.mask
        x = drop_modalities(x, train.groups, tc.modality_dropout)
        return loss_fn(model(x, m), y, m)

    def score(model: torch.nn.Module) -> tuple[float, dict]:
        metrics, value = score_targets(devel, predict_arrays(model, devel.xs,
                                                             chunk=eval_chunk(config.data)),
                                       targets)
        return value, metrics

    task = Task(build, len(windows), loss, score if len(devel.xs) else None,
                event_targets=lambda best: {t: float(m["ccc"]) for t, m in best.items()})
    return task, schedule(tc)


def train_seeds(config: RunConfig, train: Split, devel: Split, *, state_path: Path | None = None,
        resume: bool = False, on_event: Callable[[EpochEvent], None] | None = None) -> FitResult:
    """Train ``config.train.seeds`` models (in parallel worker processes) and keep the best on
    devel.

    Model selection and early stopping use the mean over targets of the global devel CCC. When
    ``devel`` is empty, each seed trains for ``epochs`` epochs and the last epoch is kept.
    """
    tc = config.train
    if not len(train.xs):
        raise EmotraceError("the train partition has no recordings; a model needs training data.")
    seeds = [tc.seed + i for i in range(tc.seeds)]
    return fit_seeds(regression_task, (config, train, devel), seeds,
                     jobs=jobs_for(tc, len(seeds)), state_path=state_path, resume=resume,
                     fingerprint=config.outcome(), on_event=on_event)
