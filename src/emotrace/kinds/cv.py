"""Cross-validated runs (``--cv K`` or ``--cv loso``): subject folds over train + devel, one
model per fold, and the fold ensemble as the run's predictor.

A devel set of a handful of subjects is too small both to pick a seed and to stop training:
choices fit devel's people rather than people in general. With ``--cv``, the train and devel
recordings are pooled and their subjects dealt into ``K`` folds
(:func:`emotrace.train.folds.cv_folds`: a permutation drawn from ``train.seed``, then
round-robin, so fold sizes differ by at most one subject; ``loso`` is one fold per subject).
For each fold, a model is trained on the other folds' subjects and early-stopped (and its seed
chosen) on the held-out fold; its standardiser, output scale and (``--difficulty``) auto-encoders
are fitted on the fold's training subjects only. Every seed of every fold is one job of
:func:`emotrace.train.loop.fit_groups`, so they run in parallel worker processes and resume fold
by fold.

The run folder::

    RUN/config.yaml, RUN/metrics.json      as for any run; metrics.json adds a ``cv`` section
    RUN/checkpoint.pt                      the ensemble: its folds and members (format
                                           ``emotrace-cv-checkpoint-1``, no weights)
    RUN/folds/<k>/checkpoint.pt            fold k's model: a regression checkpoint
    RUN/predictions/{train,devel}/         out-of-fold predictions (from the fold that held the
                                           recording's subject out)
    RUN/predictions/test/                  the ensemble's predictions, when test exists

``metrics.json``'s ``devel`` entry is the CCC (etc.) of all out-of-fold predictions of train +
devel concatenated, the run's honest estimate; ``cv`` has every fold's scores, their mean and
standard deviation, and the out-of-fold scores of the devel partition alone (to compare with a
single-split run). Note that the held-out fold also selects its epoch and seed, so the fold
scores lean slightly optimistic, like any devel score used for early stopping.

The ensemble predicts with the mean (or, ``train.ensemble: median``, the median) of the fold
models' predictions, each model reading the inputs standardised by its own standardiser.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from emotrace._version import __version__
from emotrace.config import RunConfig
from emotrace.data.corpus import Corpus, Recording
from emotrace.data.muse import PARTITION_FILE
from emotrace.data.standardise import Standardiser
from emotrace.errors import EmotraceError
from emotrace.fileio import atomic_path, write_json
from emotrace.kinds.regression import inputs, train_corpus, write_recordings
from emotrace.metrics import partition_scores
from emotrace.run import (
    CHECKPOINT,
    CONFIG,
    CV_FORMAT,
    FOLDS,
    METRICS,
    PREDICTIONS,
    STATE,
    Run,
    check_finite,
    fit_metrics,
    labelled,
    load_ensemble,
    run_corpus,
    save_checkpoint,
)
from emotrace.train.difficulty import Difficulty
from emotrace.train.folds import cv_folds
from emotrace.train.loop import STATE_FORMAT, EpochEvent, FitResult, SeedGroup, fit_groups
from emotrace.train.predict import predict_arrays
from emotrace.train.regression import (
    Split,
    eval_chunk,
    feature_groups,
    jobs_for,
    regression_task,
    score_targets,
)


def check_options(config: RunConfig) -> None:
    """The options that do not go with ``--cv`` (exit 2 with the reason)."""
    tc = config.train
    if tc.task != "regression":
        raise EmotraceError(f"--cv with --task {tc.task}: cross-validated runs are regression "
                            f"runs only. Drop --cv, or train a regression target.")
    if tc.folds:
        raise EmotraceError(f"--cv with --folds {tc.folds}: a --cv run already writes "
                            f"out-of-fold predictions for every train and devel recording "
                            f"(from its own folds). Drop --folds.")


def _has_subjects(data: Path | str) -> bool:
    path = Path(data) / PARTITION_FILE
    try:
        header = path.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        return False
    return "Subject" in [c.strip().strip('"') for c in header.split(",")]


def _pool(data: Path | str, corpus: Corpus) -> list[Recording]:
    """Train + devel recordings (the folds' material), with a clear error when the corpus
    names no subjects."""
    if not _has_subjects(data):
        raise EmotraceError(f"{Path(data) / PARTITION_FILE}: no Subject column, so every "
                            f"recording would count as its own subject and one person's "
                            f"recordings could be in a fold's training and held-out parts at "
                            f"once. Add the column (Id,Partition,Subject), or train without "
                            f"--cv.")
    return corpus.partition("train") + corpus.partition("devel")


def fit(data: Path | str, *, out: Path, config: RunConfig, resume: bool = False,
        corpus: Corpus | None = None, on_event: Callable[[EpochEvent], None] | None = None,
        on_load: Callable[[int, int], None] | None = None) -> dict:
    """Train a cross-validated run into ``out`` (see the module docstring); returns
    ``metrics.json``."""
    check_options(config)
    dc, tc = config.data, config.train
    corpus = train_corpus(data, config, corpus, on_load)
    pool = _pool(data, corpus)
    folds = cv_folds([r.subject for r in pool], tc.cv, seed=tc.seed)
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / CONFIG)
    marker = {"format": STATE_FORMAT, "config": config.outcome(), "done": []}
    with atomic_path(out / STATE) as tmp:  # marks the folder as holding an interrupted run
        torch.save(marker, tmp)
    start = time.perf_counter()
    seeds = [tc.seed + i for i in range(tc.seeds)]
    groups, stds, diffs, held_recs, held_xs = [], [], [], [], []
    for k, fold in enumerate(folds):
        fit_recs = [r for r in pool if r.subject not in fold]
        held = [r for r in pool if r.subject in fold]
        std = fold_standardiser(fit_recs, config)
        split = _split(fit_recs, std, config)
        held_split = _split(held, std, config)
        diff = None
        if dc.difficulty:  # the fold's own auto-encoders, fitted on its training subjects
            diff = Difficulty.fit(split.xs, split.groups, dc.features, cell=config.model.cell,
                                  bidirectional=config.model.bidirectional,
                                  hidden=dc.difficulty_hidden, layers=dc.difficulty_layers,
                                  seed=tc.seed)
            split.xs, held_split.xs = diff.append(split.xs), diff.append(held_split.xs)
        diffs.append(diff)
        groups.append(SeedGroup(regression_task, (config, split, held_split), seeds,
                                out / FOLDS / str(k) / STATE,
                                {"run": config.outcome(), "fold": k, "subjects": fold}))
        (out / FOLDS / str(k)).mkdir(parents=True, exist_ok=True)
        stds.append(std)
        held_recs.append(held)
        held_xs.append(held_split.xs)
    n_jobs = len(groups) * len(seeds)
    results = fit_groups(groups, jobs=jobs_for(tc, n_jobs), resume=resume, on_event=on_event)
    oof: dict[str, np.ndarray] = {}
    for k, result in enumerate(results):
        save_checkpoint(out / FOLDS / str(k) / CHECKPOINT, config=config, model=result.model,
                        standardiser=stds[k], feature_dims=corpus.feature_dims,
                        optimizer=result.optimizer, scheduler=result.scheduler, rng=result.rng,
                        epoch=result.best.best_epoch, seed=result.best.seed,
                        difficulty=diffs[k].state() if diffs[k] is not None else None)
        for r, p in zip(held_recs[k], predict_arrays(result.model, held_xs[k],
                                                                  chunk=eval_chunk(dc)), strict=True):
            oof[r.id] = p
    check_finite(list(oof.values()), list(oof), what=f"{out}: the fold models out of fold")
    for part in ("train", "devel"):
        recs = corpus.partition(part)
        write_recordings(out / PREDICTIONS / part, recs, [oof[r.id] for r in recs], dc.targets)
    if corpus.partition("test"):
        test = corpus.partition("test")
        preds = combine([predict_arrays(res.model, inputs(test, std, dc, diff),
                                        chunk=eval_chunk(dc))
                         for res, std, diff in zip(results, stds, diffs, strict=True)], tc.ensemble)
        check_finite(preds, [r.id for r in test], what=f"{out}: the fold ensemble on 'test'")
        write_recordings(out / PREDICTIONS / "test", test, preds, dc.targets)
    _save(out, config, folds)
    metrics = _metrics(config, corpus, pool, folds, results, oof, start)
    write_json(out / METRICS, metrics)
    for k in range(len(folds)):
        (out / FOLDS / str(k) / STATE).unlink(missing_ok=True)
    (out / STATE).unlink(missing_ok=True)  # last: the run is finished
    return metrics


def fold_standardiser(recs: list[Recording], config: RunConfig) -> Standardiser:
    """A fold's standardiser: fitted on that fold's training recordings only."""
    dc = config.data
    return Standardiser.fit(recs, dc.features, enabled=dc.standardize,
                            per_recording=tuple(dc.per_recording))


def _split(recs: list[Recording], std: Standardiser, config: RunConfig) -> Split:
    dc = config.data
    return Split([r.id for r in recs], inputs(recs, std, dc), [r.targets(dc.targets) for r in recs],
                 feature_groups([len(std.mean[f]) for f in dc.features]))


def combine(per_member: list[list[np.ndarray]], how: str) -> list[np.ndarray]:
    """The ensemble's prediction of each recording from the members' (``per_member[m][i]``):
    their mean or median, step by step.

    >>> combine([[np.array([[1.0]])], [np.array([[3.0]])], [np.array([[8.0]])]], "median")
    [array([[3.]], dtype=float32)]
    """
    reduce = np.median if how == "median" else np.mean
    return [reduce(np.stack(ps), axis=0).astype(np.float32) for ps in zip(*per_member, strict=True)]


def _save(out: Path, config: RunConfig, folds: list[list[str]]) -> None:
    ckpt = {"format": CV_FORMAT, "emotrace_version": __version__,
            "config": config.model_dump(mode="json"), "folds": folds,
            "members": [f"{FOLDS}/{k}/{CHECKPOINT}" for k in range(len(folds))]}
    with atomic_path(out / CHECKPOINT) as tmp:
        torch.save(ckpt, tmp)


def _summary(per_fold: list[dict], targets: list[str]) -> tuple[dict, dict]:
    """Mean and standard deviation over folds of each target's metrics."""
    mean, std = {}, {}
    for t in targets:  # ccc, ccc_per_recording, pcc, rmse; binary targets also auroc and f1
        # auroc and f1 over the folds whose held-out subjects show both classes
        names = list(dict.fromkeys(m for f in per_fold for m in f[t]))
        vals = {m: [f[t].get(m, np.nan) for f in per_fold] for m in names}
        mean[t] = {m: float(np.nanmean(v)) for m, v in vals.items()}
        std[t] = {m: float(np.nanstd(v)) for m, v in vals.items()}
    return mean, std


def _metrics(config: RunConfig, corpus: Corpus, pool: list[Recording], folds: list[list[str]],
             results: list[FitResult], oof: dict[str, np.ndarray], start: float) -> dict:
    dc, tc = config.data, config.train
    targets = dc.targets

    def per_target(m: dict) -> dict:
        return m[targets[0]] if len(targets) == 1 else m

    def scores(recs: list[Recording]) -> dict:
        split = Split([r.id for r in recs], [], [r.targets(targets) for r in recs])
        return score_targets(split, [oof[r.id] for r in recs], targets)[0]

    per_fold = [r.best.devel for r in results]
    mean, std = _summary(per_fold, targets)
    seeds = []
    for k, result in enumerate(results):
        for s in fit_metrics(result, targets=targets, features=dc.features, start=start,
                             warnings=[])["seeds"]:
            seeds.append({"fold": k, **s})
    best_seeds = [r.best.seed for r in results]
    cv = {
        "folds": tc.cv, "k": len(folds), "seed": tc.seed, "ensemble": tc.ensemble,
        "per_fold": [{"fold": k, "subjects": fold,
                      "recordings": sum(r.subject in fold for r in pool),
                      "best_seed": res.best.seed, "best_epoch": res.best.best_epoch,
                      "epochs": res.best.epochs, "held_out": per_target(res.best.devel)}
                     for k, (fold, res) in enumerate(zip(folds, results, strict=True))],
        "mean": per_target(mean), "std": per_target(std),
        "out_of_fold": per_target(scores(pool)),
        "out_of_fold_devel": per_target(scores(corpus.partition("devel")))
        if corpus.partition("devel") else None,
        "note": "held_out: each fold's model on its held-out subjects (which also chose its "
                "epoch and seed); mean/std over folds; out_of_fold: all out-of-fold predictions "
                "of train + devel concatenated (also under devel); out_of_fold_devel: those of "
                "the devel partition alone.",
    }
    return {
        "target": targets[0] if len(targets) == 1 else targets,
        "features": dc.features,
        "devel": per_target(scores(pool)),
        "seeds": seeds,
        "best_seed": Counter(best_seeds).most_common(1)[0][0],
        "train_seconds": sum(s["seconds"] for s in seeds),
        "wall_seconds": time.perf_counter() - start,
        "epochs": max(r.best.epochs for r in results),
        "best_epoch": int(np.median([r.best.best_epoch for r in results])),
        "warnings": corpus.report.warnings(),
        "train_predictions": "out-of-fold",
        "cv": cv,
    }


def _ensemble(members: list[Run], recs: list[Recording], how: str) -> list[np.ndarray]:
    return combine([predict_arrays(m.model, inputs(recs, m.standardiser, m.config.data,
                                                   m.difficulty), chunk=eval_chunk(m.config.data))
                    for m in members], how)


def evaluate(run: Path | str, data: Path | str, *, partition: str) -> dict:
    """Score the fold ensemble on one labelled partition (see :func:`emotrace.evaluate`).

    On train or devel these are in-sample for most members (every recording there was in the
    training folds of all but one); the honest scores of those partitions are the run's
    out-of-fold ones in ``metrics.json``."""
    path, config, members = load_ensemble(run)
    recs = labelled(run_corpus(members[0], data, partition, labels=True), data, partition)
    preds = _ensemble(members, recs, config.train.ensemble)
    check_finite(preds, [x.id for x in recs], what=f"{path} on {partition!r}")
    result = partition_scores([x.targets(config.data.targets) for x in recs], preds,
                              config.data.targets, partition=partition)
    result["ensemble"] = {"members": len(members), "how": config.train.ensemble}
    if partition in ("train", "devel"):
        result["ensemble"]["note"] = (f"{partition} was in the training folds of all but one "
                                      f"member, so this score is mostly in-sample; the honest one "
                                      f"is cv.out_of_fold in metrics.json")
    write_json(path / f"eval_{partition}.json", result)
    return result


def predict(run: Path | str, data: Path | str, *, partition: str, out: Path | str) -> list[Path]:
    """Write the fold ensemble's predictions of ``partition`` to ``out``."""
    path, config, members = load_ensemble(run)
    recs = run_corpus(members[0], data, partition, labels=False)
    preds = _ensemble(members, recs, config.train.ensemble)
    check_finite(preds, [x.id for x in recs], what=f"{path} on {partition!r}")
    return write_recordings(Path(out), recs, preds, config.data.targets)

