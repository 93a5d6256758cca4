"""The one fit loop: seeds → epochs → batches → Adam, scored after every epoch.

Every kind of training in emotrace runs through :func:`fit_seeds`: sequence regression, segment
classification, personalisation fine-tuning, the late-fusion models and the difficulty
auto-encoders. A caller describes *what* is trained as a :class:`Task` (how to build the model,
how many training items there are, the loss of a batch of items, the held-out score) and *how*
as a :class:`Schedule` (epochs, Adam, learning-rate halving on a plateau, early stopping,
gradient clipping). The loop owns the rest: seeding, shuffling, early stopping, keeping the best
epoch of each seed and the best seed, progress events, and — given a ``state_path`` — a resume
state written after every epoch, so an interrupted run resumed with the same task ends with the
same result as an uninterrupted one.

Randomness, in order per seed: ``torch.manual_seed(seed)``, a shuffling generator seeded with
``seed``, then the model is built. The global torch RNG (dropout, modality dropout) and the
shuffling generator are both saved in the resume state.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from emotrace.config import upgrade_outcome
from emotrace.errors import EmotraceError
from emotrace.fileio import atomic_path
from emotrace.train.workers import one_thread, run_jobs

STATE_FORMAT = "emotrace-train-state-2"


@dataclass(frozen=True)
class Schedule:
    """How a model is optimised: Adam, optional halving on a plateau, optional early stopping."""

    epochs: int
    lr: float
    batch_size: int
    weight_decay: float = 0.0
    clip: float = 0.0  # gradient-norm clip; 0 = off
    patience: int | None = None  # stop after this many epochs without a better score; None = never
    lr_patience: int | None = None  # halve (lr_factor) after this many; None = constant lr
    lr_factor: float = 0.5
    min_lr: float = 0.0  # the plateau halving stops here
    plateau_on: str = "score"  # the halving watches the held-out score, or "train_loss"
    shuffle: bool = True  # False: items in order (full-batch fits)


@dataclass
class Task:
    """What is trained.

    ``build()`` makes a fresh model (called after seeding). ``loss(model, idx)`` is the loss of
    the training items ``idx`` (a 1-D index tensor into ``n_items``). ``score(model)`` returns the
    held-out score (higher is better) and its metrics; without it every epoch counts as better
    than the last, so the last epoch is kept and training runs for ``epochs``.
    """

    build: Callable[[], nn.Module]
    n_items: int
    loss: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    score: Callable[[nn.Module], tuple[float, dict]] | None = None
    score_name: str = "devel_ccc"  # its key in each epoch's history
    event_targets: Callable[[dict], dict[str, float]] = field(default=lambda metrics: {})


@dataclass
class EpochEvent:
    seed: int
    seed_index: int
    n_seeds: int
    epoch: int
    max_epochs: int
    train_loss: float
    devel_score: float  # NaN without held-out data
    best_score: float
    lr: float
    seconds: float  # wall-clock since this seed started
    best_targets: dict[str, float] = field(default_factory=dict)  # target -> devel CCC at the best epoch
    last_epoch: int = 0  # the last epoch this seed can reach (early stopping may end it sooner)
    group: int | None = None  # fit_groups with several groups: the group (e.g. the fold)


@dataclass
class BatchEvent:
    """Progress within an epoch (sent at most every :data:`BATCH_EVENT_SECONDS`)."""

    seed: int
    seed_index: int
    n_seeds: int
    epoch: int  # the epoch under way (1-based)
    max_epochs: int
    done: int  # training items of this epoch done so far
    total: int
    group: int | None = None  # fit_groups with several groups: the group (e.g. the fold)


BATCH_EVENT_SECONDS = 0.5


@dataclass
class SeedResult:
    seed: int
    best_epoch: int
    epochs: int
    devel: dict  # metrics at the best epoch
    score: float  # the held-out score at the best epoch (NaN without held-out data)
    seconds: float
    history: list[dict] = field(default_factory=list)


@dataclass
class FitResult:
    model: nn.Module
    seeds: list[SeedResult]
    best_index: int
    optimizer: dict
    scheduler: dict
    rng: dict
    best_state: dict = field(default_factory=dict)  # the kept model's state_dict

    @property
    def best(self) -> SeedResult:
        return self.seeds[self.best_index]


def _rng_state(gen: torch.Generator) -> dict:
    return {"torch": torch.get_rng_state(), "shuffle": gen.get_state()}


def _set_rng(state: dict, gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["shuffle"])


def _save_state(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


#: what each kind of resume file must hold: one seed's place, the run's finished seeds
SEED_KEYS = ("model", "optimizer", "scheduler", "rng", "epoch", "best", "best_epoch", "bad",
             "elapsed", "history", "best_model", "best_metrics")
RUN_KEYS = ("done",)


def _load_state(path: Path, fingerprint: dict, keys: tuple[str, ...] = ()) -> dict:
    try:  # torch's own message would suggest weights_only=False, which can run code: never
        state = torch.load(path, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise EmotraceError(f"{path}: not a readable resume state ({type(e).__name__}; the file "
                            f"is damaged or was not written by emotrace). Delete it and train "
                            f"from the start without --resume, or choose another --out.") from None
    if not isinstance(state, dict):
        state = {}
    missing = [k for k in keys if k not in state]
    if state.get("format") == STATE_FORMAT and missing:
        raise EmotraceError(f"{path}: resume state without {', '.join(missing)} (the file is "
                            f"damaged). Delete it and train from the start without --resume, or "
                            f"choose another --out.")
    if (state.get("format") != STATE_FORMAT
            or upgrade_outcome(state.get("config")) != upgrade_outcome(fingerprint)):
        raise EmotraceError(f"{path}: this interrupted run was started with another "
                            f"configuration or emotrace version. Start a new run with a new "
                            f"--out, or repeat the original options.")
    return state


@dataclass
class _Progress:
    """One seed's place in the loop: what the resume state stores."""

    epoch: int = 0
    best: float = -math.inf
    best_epoch: int = 0
    bad: int = 0
    elapsed: float = 0.0
    history: list[dict] = field(default_factory=list)
    best_model: dict = field(default_factory=dict)
    best_metrics: dict = field(default_factory=dict)


def _epoch(model: nn.Module, task: Task, sched: Schedule, opt: torch.optim.Optimizer,
           gen: torch.Generator, on_batch: Callable[[int, int], None] | None = None) -> float:
    """One pass over the training items; the item-weighted mean loss. ``on_batch(done, total)``
    is called at most every :data:`BATCH_EVENT_SECONDS`."""
    model.train()
    last = time.perf_counter()
    order = (torch.randperm(task.n_items, generator=gen) if sched.shuffle
             else torch.arange(task.n_items))
    total, count = 0.0, 0
    for b in range(0, len(order), sched.batch_size):
        idx = order[b : b + sched.batch_size]
        loss = task.loss(model, idx)
        if not math.isfinite(loss.item()):
            return loss.item()  # the caller stops training with a clear error
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if sched.clip:
            nn.utils.clip_grad_norm_(model.parameters(), sched.clip)
        opt.step()
        total += loss.item() * len(idx)
        count += len(idx)
        if on_batch is not None and time.perf_counter() - last >= BATCH_EVENT_SECONDS:
            last = time.perf_counter()
            on_batch(count, task.n_items)
    return total / max(count, 1)


def _diverged(what: str, seed: int, epoch: int) -> str:
    return (f"training diverged at seed {seed}, epoch {epoch}: {what}. This usually means a "
            f"label or feature value too large for float32 arithmetic (e.g. 1e30 in the corpus: "
            f"fix or drop it) or too high a learning rate (lower --lr). Nothing was kept as a "
            f"result; fix the cause and train again.")


def _check_finite(model: nn.Module, loss: float, seed: int, epoch: int) -> None:
    """Non-finite training is a failure, not a result: a NaN/inf loss or weights stop it."""
    if not math.isfinite(loss):
        raise EmotraceError(_diverged(f"the training loss is {loss}", seed, epoch))
    if not all(bool(torch.isfinite(w).all()) for w in model.parameters()):
        raise EmotraceError(_diverged("the model's weights are not finite", seed, epoch))


def _start_seed(task: Task, sched: Schedule, seed: int, saved: dict | None):
    """Seed, build the model, its optimiser and plateau schedule; restore them (and the RNGs)
    from ``saved``, the resume state of this seed, when given."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = task.build()
    opt = torch.optim.Adam(model.parameters(), lr=sched.lr, weight_decay=sched.weight_decay)
    plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="min" if sched.plateau_on == "train_loss" else "max", factor=sched.lr_factor,
        patience=sched.lr_patience,
        min_lr=sched.min_lr)
        if sched.lr_patience is not None else None)
    p = _Progress(best_model=copy.deepcopy(model.state_dict()))
    if saved:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        if plateau is not None:
            plateau.load_state_dict(saved["scheduler"])
        _set_rng(saved["rng"], gen)
        p = _Progress(saved["epoch"], saved["best"], saved["best_epoch"], saved["bad"],
                      saved["elapsed"], saved["history"], saved["best_model"],
                      saved["best_metrics"])
    return model, opt, plateau, gen, p


def fit_seed(task: Task, sched: Schedule, seed: int, *, seed_index: int = 0, n_seeds: int = 1,
             state_path: Path | None = None, resume: bool = False, fingerprint: dict | None = None,
             on_event: Callable[[EpochEvent], None] | None = None) -> dict:
    """Train one seed: its best epoch (or its last, without ``task.score``).

    With ``state_path``, this seed's resume state is written after every epoch, and with
    ``resume`` it continues from that file when it exists. Returns ``{"result": SeedResult,
    "model", "optimizer", "scheduler", "rng"}`` (the best epoch's weights; the optimiser,
    scheduler and RNG states at the end).
    """
    held_out = task.score is not None
    saved = _load_state(state_path, fingerprint or {}, SEED_KEYS) if (
        resume and state_path is not None and state_path.exists()) else None
    model, opt, plateau, gen, p = _start_seed(task, sched, seed, saved)
    start = time.perf_counter() - p.elapsed
    while p.epoch < sched.epochs and (sched.patience is None or p.bad < sched.patience):
        on_batch = None
        if on_event:
            def on_batch(done: int, total: int, epoch: int = p.epoch + 1) -> None:
                on_event(BatchEvent(seed, seed_index, n_seeds, epoch, sched.epochs, done, total))
        train_loss = _epoch(model, task, sched, opt, gen, on_batch)
        p.epoch += 1
        _check_finite(model, train_loss, seed, p.epoch)
        score, metrics = task.score(model) if held_out else (float(p.epoch), {})
        if not math.isfinite(score):
            raise EmotraceError(_diverged(f"the held-out score ({task.score_name}) is {score}: "
                                          f"the predictions are not finite", seed, p.epoch))
        if plateau is not None:
            plateau.step(train_loss if sched.plateau_on == "train_loss" else score)
        if score > p.best:
            p.best, p.best_epoch, p.bad = score, p.epoch, 0
            p.best_model, p.best_metrics = copy.deepcopy(model.state_dict()), metrics
        else:
            p.bad += 1
        seconds = time.perf_counter() - start
        lr = opt.param_groups[0]["lr"]
        p.history.append({"epoch": p.epoch, "train_loss": train_loss,
                          task.score_name: score if held_out else None, "lr": lr,
                          "seconds": seconds})
        if on_event:
            on_event(EpochEvent(seed, seed_index, n_seeds, p.epoch, sched.epochs, train_loss,
                                score if held_out else math.nan,
                                p.best if held_out else math.nan, lr, seconds,
                                task.event_targets(p.best_metrics),
                                _last_epoch(sched, p, held_out)))
        if state_path is not None:
            _save_state(state_path, {
                "format": STATE_FORMAT, "config": fingerprint or {}, "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": plateau.state_dict() if plateau is not None else {},
                "rng": _rng_state(gen), "epoch": p.epoch, "best": p.best,
                "best_epoch": p.best_epoch, "bad": p.bad, "elapsed": seconds,
                "history": p.history, "best_model": p.best_model,
                "best_metrics": p.best_metrics})
    result = SeedResult(seed, p.best_epoch, p.epoch, p.best_metrics,
                        float(p.best) if held_out else math.nan, time.perf_counter() - start,
                        p.history)
    return {"result": result, "model": p.best_model, "optimizer": opt.state_dict(),
            "scheduler": plateau.state_dict() if plateau is not None else {},
            "rng": _rng_state(gen)}


def _last_epoch(sched: Schedule, p: _Progress, held_out: bool) -> int:
    """The last epoch a seed can reach from here: ``epochs``, or sooner by early stopping."""
    if not held_out or sched.patience is None:
        return sched.epochs
    return min(sched.epochs, p.epoch + sched.patience - p.bad)


def interrupted_progress(state_path: Path, seeds: list[int]) -> tuple[list[int], dict[int, int]]:
    """Where an interrupted run stands: its finished seeds, and the epochs done of the others
    (from the resume files; unreadable files count as not started)."""
    finished: list[int] = []
    try:
        finished = sorted(seeds[d["index"]] for d in torch.load(state_path, weights_only=True)["done"])
    except Exception:  # noqa: BLE001 - only a description for the user
        pass
    epochs = {}
    for s in seeds:
        path = seed_state_path(state_path, s)
        if s not in finished and path.exists():
            try:
                epochs[s] = int(torch.load(path, weights_only=True)["epoch"])
            except Exception:  # noqa: BLE001
                pass
    return finished, epochs


def fit_task(task: Task, sched: Schedule, seeds: list[int],
             on_event: Callable[[EpochEvent], None] | None = None) -> FitResult:
    """:func:`fit_seed` for each seed in this process (a task built of closures, not resumable);
    the best seed is kept."""
    with one_thread():
        runs = [fit_seed(task, sched, s, seed_index=i, n_seeds=len(seeds), on_event=on_event)
                for i, s in enumerate(seeds)]
    return _result(task, runs, held_out=task.score is not None)


def _better(a: dict, b: dict, held_out: bool) -> bool:
    """Whether seed run ``a`` beats ``b``: a higher held-out score, ties (and runs without
    held-out data) to the earlier seed."""
    sa, sb = a["result"].score, b["result"].score
    if held_out and sa != sb:
        return bool(sa > sb)
    return a["index"] < b["index"]


def _result(task: Task, runs: list[dict], *, held_out: bool) -> FitResult:
    for i, r in enumerate(runs):
        r.setdefault("index", i)
    best = runs[0]
    for r in runs[1:]:
        if _better(r, best, held_out):
            best = r
    model = task.build()
    model.load_state_dict(best["model"])
    model.eval()
    return FitResult(model, [r["result"] for r in runs], runs.index(best), best["optimizer"],
                     best["scheduler"], best["rng"], best["model"])


def _seed_job(make: Callable[..., tuple[Task, Schedule]], args: tuple, seed: int, index: int,
              n_seeds: int, state_path: Path | None, resume: bool, fingerprint: dict | None, *,
              emit: Callable) -> dict:
    task, sched = make(*args)
    return fit_seed(task, sched, seed, seed_index=index, n_seeds=n_seeds, state_path=state_path,
                    resume=resume, fingerprint=fingerprint, on_event=emit)


def seed_state_path(state_path: Path, seed: int) -> Path:
    """Where one seed's resume state is kept beside the run's ``state_path``."""
    return state_path.with_name(f"{state_path.stem}.seed-{seed}{state_path.suffix}")


def fit_seeds(make: Callable[..., tuple[Task, Schedule]], args: tuple, seeds: list[int], *,
              jobs: int = 1, state_path: Path | None = None, resume: bool = False,
              fingerprint: dict | None = None,
              on_event: Callable[[EpochEvent], None] | None = None) -> FitResult:
    """Train one model per seed, ``jobs`` seeds at a time in worker processes, and keep the one
    with the best held-out score (ties to the earlier seed).

    ``make(*args)`` builds the :class:`Task` and :class:`Schedule` (in each worker: ``make``
    must be a module-level function and ``args`` picklable). Every seed trains with one torch
    thread, so the result is the same whatever ``jobs`` is (:mod:`emotrace.train.workers`).

    With ``state_path``, the finished seeds are kept there and each running seed's progress in
    :func:`seed_state_path` after every epoch; ``resume=True`` skips the finished seeds and
    continues the others (``fingerprint``, e.g. the run's config, must equal the one they were
    written with). An interrupted run resumed with any ``jobs`` ends as an uninterrupted one.
    """
    group = SeedGroup(make, args, seeds, state_path, fingerprint)
    return fit_groups([group], jobs=jobs, resume=resume, on_event=on_event)[0]


@dataclass
class SeedGroup:
    """Seeds of one task (see :func:`fit_seeds`), e.g. one fold of a cross-validation, with
    their own resume state."""

    make: Callable[..., tuple[Task, Schedule]]
    args: tuple
    seeds: list[int]
    state_path: Path | None = None
    fingerprint: dict | None = None


def fit_groups(groups: list[SeedGroup], *, jobs: int = 1, resume: bool = False,
               on_event: Callable[[EpochEvent], None] | None = None) -> list[FitResult]:
    """:func:`fit_seeds` for several tasks at once: every seed of every group is one job, all
    of them ``jobs`` at a time in worker processes; one :class:`FitResult` per group (its best
    seed). Each group keeps its finished seeds in its own ``state_path``, so an interrupted call
    resumed with ``resume=True`` skips them, group by group, and ends as an uninterrupted one.
    Progress events number the seeds across all groups."""
    finished: list[dict[int, dict]] = []
    states = []
    for g in groups:
        state = {"format": STATE_FORMAT, "config": g.fingerprint or {}, "done": []}
        if resume and g.state_path is not None and g.state_path.exists():
            state = _load_state(g.state_path, g.fingerprint or {}, RUN_KEYS)
        finished.append({d["index"]: {**d, "result": SeedResult(**d["result"])}
                         for d in state["done"]})
        states.append(state)
        if g.state_path is not None:
            _save_state(g.state_path, state)  # marks the folder as holding an interrupted run
    total = sum(len(g.seeds) for g in groups)
    todo, where, offset, group_of = [], [], 0, {}
    for gi, g in enumerate(groups):
        for i, s in enumerate(g.seeds):
            if i not in finished[gi]:
                todo.append((g.make, g.args, s, offset + i, total,
                             seed_state_path(g.state_path, s) if g.state_path is not None else None,
                             resume, g.fingerprint))
                where.append((gi, i))
            group_of[offset + i] = gi
        offset += len(g.seeds)
    relay = on_event
    if on_event is not None and len(groups) > 1:  # say which group each seed belongs to
        def relay(event: EpochEvent | BatchEvent) -> None:
            on_event(replace(event, group=group_of[event.seed_index]))
    for k, run in run_jobs(_seed_job, todo, jobs=jobs, on_event=relay):
        gi, index = where[k]
        g = groups[gi]
        finished[gi][index] = {**run, "index": index}
        if g.state_path is not None:
            states[gi]["done"] = [{**d, "result": d["result"].__dict__}
                                  for d in finished[gi].values()]
            _save_state(g.state_path, states[gi])
            seed_state_path(g.state_path, g.seeds[index]).unlink(missing_ok=True)
    results = []
    for gi, g in enumerate(groups):
        task, _ = g.make(*g.args)
        results.append(_result(task, [finished[gi][i] for i in range(len(g.seeds))],
                               held_out=task.score is not None))
    return results
