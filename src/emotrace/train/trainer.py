"""The fit loop: windows → Adam → per-epoch devel evaluation → early stopping, over seeds.

The trainer works on arrays and configs only; it never reads corpus files or parses flags. It
reports progress through a callback and, when given a ``state_path``, saves everything needed to
resume after every epoch (model, optimiser, scheduler, RNG states, early-stopping counters, the
finished seeds), so an interrupted run resumed with the same config ends with the same result as
an uninterrupted one.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from emotrace.config import RunConfig
from emotrace.data.windows import make_windows
from emotrace.errors import EmotraceError
from emotrace.fileio import atomic_path
from emotrace.metrics import trace_metrics
from emotrace.models import build_model
from emotrace.train.losses import LOSSES
from emotrace.train.predict import predict_arrays

STATE_FORMAT = "emotrace-train-state-1"


@dataclass
class Split:
    """Standardised inputs and label traces of one partition, one array per recording."""

    ids: list[str]
    xs: list[np.ndarray]  # (T, D)
    ys: list[np.ndarray]  # (T, K), NaN where unlabelled
    groups: list[tuple[int, int]] = field(default_factory=list)  # column range per feature set


@dataclass
class EpochEvent:
    seed: int
    seed_index: int
    n_seeds: int
    epoch: int
    max_epochs: int
    train_loss: float
    devel_ccc: float
    best_ccc: float
    lr: float
    seconds: float  # wall-clock since this seed started
    best_targets: dict[str, float] = field(default_factory=dict)  # target -> devel CCC at best_ccc's epoch


@dataclass
class SeedResult:
    seed: int
    best_epoch: int
    epochs: int
    devel: dict  # target -> metrics at the best epoch
    score: float  # mean devel CCC over targets at the best epoch
    seconds: float
    history: list[dict] = field(default_factory=list)


@dataclass
class FitResult:
    model: torch.nn.Module
    seeds: list[SeedResult]
    best_index: int
    optimizer: dict
    scheduler: dict
    rng: dict

    @property
    def best(self) -> SeedResult:
        return self.seeds[self.best_index]


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


def _rng_state(gen: torch.Generator) -> dict:
    return {"torch": torch.get_rng_state(), "shuffle": gen.get_state()}


def _set_rng(state: dict, gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["shuffle"])


def _save_state(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _seed_result(d: dict) -> SeedResult:
    return SeedResult(**d)


def train_seeds(config: RunConfig, train: Split, devel: Split, *, state_path: Path | None = None,
        resume: bool = False, on_event: Callable[[EpochEvent], None] | None = None) -> FitResult:
    """Train ``config.train.seeds`` models and keep the best on devel.

    Model selection and early stopping use the mean over targets of the global devel CCC. When
    ``devel`` is empty, each seed trains for ``epochs`` epochs and the last epoch is kept.
    """
    tc, targets = config.train, config.data.targets
    if not train.xs:
        raise EmotraceError("the train partition has no recordings; a model needs training data.")
    if tc.threads:
        torch.set_num_threads(tc.threads)
    windows = make_windows(train.xs, train.ys, win=config.data.win, hop=config.data.window_hop)
    loss_fn = LOSSES[tc.loss]
    d_in, n_targets = train.xs[0].shape[1], len(targets)
    seeds = [tc.seed + i for i in range(tc.seeds)]
    y = np.concatenate(train.ys, axis=0)
    y_mean = torch.from_numpy(np.nan_to_num(np.nanmean(y, axis=0)).astype(np.float32))
    y_std = torch.from_numpy(np.nan_to_num(np.nanstd(y, axis=0), nan=1.0).astype(np.float32))
    y_std[y_std < 1e-8] = 1.0

    state = None
    if resume and state_path is not None and state_path.exists():
        state = torch.load(state_path, weights_only=True)
        if state.get("format") != STATE_FORMAT or state.get("config") != config.model_dump(mode="json"):
            raise EmotraceError(f"{state_path}: this interrupted run was started with another "
                                f"configuration or emotrace version. Start a new run with a new "
                                f"--out, or repeat the original options.")
    done: list[SeedResult] = [_seed_result(d) for d in state["done"]] if state else []
    best_states: dict = state["best_model"] if state else {}

    def save_progress(current: dict | None) -> None:
        """Everything needed to resume: finished seeds, the best so far, the current seed."""
        _save_state(state_path, {"format": STATE_FORMAT, "config": config.model_dump(mode="json"),
                                 "done": [r.__dict__ for r in done], "best_model": best_states,
                                 "current": current})

    for si, seed in enumerate(seeds):
        if si < len(done):
            continue
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = build_model(config.model, d_in, n_targets)
        model.set_output_scale(y_mean, y_std)
        opt = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=tc.lr_factor,
                                                           patience=tc.lr_patience)
        epoch, best, best_epoch, bad, elapsed = 0, -np.inf, 0, 0, 0.0
        best_model = copy.deepcopy(model.state_dict())
        best_metrics: dict = {}
        history: list[dict] = []
        if state is not None and state.get("current") and state["current"]["seed"] == seed:
            cur = state["current"]
            model.load_state_dict(cur["model"])
            opt.load_state_dict(cur["optimizer"])
            sched.load_state_dict(cur["scheduler"])
            _set_rng(cur["rng"], gen)
            epoch, best, best_epoch, bad = cur["epoch"], cur["best"], cur["best_epoch"], cur["bad"]
            elapsed, history, best_model = cur["elapsed"], cur["history"], cur["best_model"]
            best_metrics = cur["best_metrics"]
        start = time.perf_counter() - elapsed
        while epoch < tc.epochs and bad < tc.patience:
            model.train()
            order = torch.randperm(len(windows), generator=gen)
            total, count = 0.0, 0
            for b in range(0, len(order), tc.batch_size):
                idx = order[b : b + tc.batch_size]
                x, y, m = windows.x[idx], windows.y[idx], windows.mask[idx]
                x = drop_modalities(x, train.groups, tc.modality_dropout)
                loss = loss_fn(model(x, m), y, m)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if tc.clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip)
                opt.step()
                total += loss.item() * len(idx)
                count += len(idx)
            epoch += 1
            if devel.xs:
                metrics, score = score_targets(devel, predict_arrays(model, devel.xs), targets)
            else:
                metrics, score = {}, float(epoch)  # no devel: keep the last epoch
            sched.step(score)
            if score > best:
                best, best_epoch, bad = score, epoch, 0
                best_model = copy.deepcopy(model.state_dict())
                best_metrics = metrics
            else:
                bad += 1
            seconds = time.perf_counter() - start
            lr = opt.param_groups[0]["lr"]
            history.append({"epoch": epoch, "train_loss": total / max(count, 1),
                            "devel_ccc": score if devel.xs else None, "lr": lr,
                            "seconds": seconds})
            if on_event:
                on_event(EpochEvent(seed, si, len(seeds), epoch, tc.epochs, total / max(count, 1),
                                    score if devel.xs else float("nan"),
                                    best if devel.xs else float("nan"), lr, seconds,
                                    {t: float(m["ccc"]) for t, m in best_metrics.items()}))
            if state_path is not None:
                save_progress({"seed": seed, "model": model.state_dict(),
                               "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                               "rng": _rng_state(gen), "epoch": epoch, "best": best,
                               "best_epoch": best_epoch, "bad": bad, "elapsed": seconds,
                               "history": history, "best_model": best_model,
                               "best_metrics": best_metrics})
        result = SeedResult(seed, best_epoch, epoch, best_metrics,
                            float(best) if devel.xs else float("nan"),
                            time.perf_counter() - start, history)
        done.append(result)
        if not best_states or (devel.xs and result.score > best_states["score"]):
            best_states = {"score": result.score, "seed": seed, "model": best_model,
                           "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                           "rng": _rng_state(gen)}
        if state_path is not None:
            save_progress(None)
    model = build_model(config.model, d_in, n_targets)
    model.load_state_dict(best_states["model"])
    best_index = next(i for i, r in enumerate(done) if r.seed == best_states["seed"])
    return FitResult(model, done, best_index, best_states["optimizer"], best_states["scheduler"],
                     best_states["rng"])
