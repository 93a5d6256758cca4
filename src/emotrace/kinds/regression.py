"""Regression runs: one prediction per step and target, trained by
:func:`emotrace.train.regression.train_seeds`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from emotrace.config import DataConfig, RunConfig
from emotrace.data.corpus import Corpus, Recording
from emotrace.data.inputs import Inputs
from emotrace.data.muse import LABELS, PARTITION_FILE, load_corpus
from emotrace.data.standardise import Standardiser
from emotrace.errors import EmotraceError
from emotrace.fileio import write_json
from emotrace.metrics import partition_scores
from emotrace.run import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    PREDICTIONS,
    STATE,
    check_finite,
    corpus_warnings,
    fit_metrics,
    labelled,
    load_run,
    run_corpus,
    save_checkpoint,
    write_predictions,
)
from emotrace.train.difficulty import Difficulty
from emotrace.train.folds import out_of_fold
from emotrace.train.loop import EpochEvent
from emotrace.train.predict import predict_arrays
from emotrace.train.regression import Split, eval_chunk, feature_groups, train_seeds


def inputs(recs: list[Recording], std: Standardiser, cfg: DataConfig,
           difficulty: Difficulty | None = None) -> Sequence:
    """The model's input per recording: standardised features, then any difficulty channels.

    Without difficulty channels this is :class:`~emotrace.data.inputs.Inputs`, standardised
    batch by batch as training, evaluation and prediction cut them (nothing is copied whole);
    difficulty channels need whole arrays in memory.
    """
    xs = Inputs(recs, std, cfg.features)
    return difficulty.append(list(xs)) if difficulty is not None else xs


def write_recordings(folder: Path, recs: list[Recording], preds: list[np.ndarray],
                     targets: list[str]) -> list[Path]:
    return write_predictions(folder, [r.id for r in recs], [r.timestamps for r in recs], preds,
                             targets)


def train_corpus(data: Path | str, config: RunConfig, corpus: Corpus | None,
                  on_load: Callable[[int, int], None] | None) -> Corpus:
    dc = config.data
    if corpus is None:
        corpus = load_corpus(data, features=dc.features, targets=dc.targets, strict=dc.strict,
                             progress=on_load)
    class_targets = [t for t in dc.targets if any(t in r.class_segments for r in corpus.recordings)]
    if class_targets:
        raise EmotraceError(f"{Path(data) / LABELS / class_targets[0]}: target {class_targets[0]!r} "
                            f"holds class ids per segment (class_id). Train it with --task "
                            f"classification.")
    if not corpus.partition("train"):
        raise EmotraceError(f"{Path(data) / PARTITION_FILE}: no recording in the train partition. "
                            f"Mark some recordings as train.")
    return corpus


def fit(data: Path | str, *, out: Path, config: RunConfig, resume: bool = False,
        corpus: Corpus | None = None, on_event: Callable[[EpochEvent], None] | None = None,
        on_load: Callable[[int, int], None] | None = None) -> dict:
    """Train a regression run into ``out`` (see :func:`emotrace.fit`); returns ``metrics.json``."""
    dc = config.data
    corpus = train_corpus(data, config, corpus, on_load)
    train_recs, devel_recs = corpus.partition("train"), corpus.partition("devel")
    std = Standardiser.fit(train_recs, dc.features, enabled=dc.standardize,
                           per_recording=tuple(dc.per_recording))
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / CONFIG)
    start = time.perf_counter()
    xs = {p: inputs(corpus.partition(p), std, dc) for p in corpus.partitions()}
    groups = feature_groups([len(std.mean[f]) for f in dc.features])
    difficulty = None
    if dc.difficulty:  # one auto-encoder per feature set, fitted on train
        difficulty = Difficulty.fit(xs["train"], groups, dc.features, cell=config.model.cell,
                                    bidirectional=config.model.bidirectional,
                                    hidden=dc.difficulty_hidden, layers=dc.difficulty_layers,
                                    seed=config.train.seed)
        xs = {p: difficulty.append(x) for p, x in xs.items()}
    difficulty_seconds = time.perf_counter() - start

    def split(recs: list[Recording], x: list[np.ndarray]) -> Split:
        return Split([r.id for r in recs], x, [r.targets(dc.targets) for r in recs], groups)

    train_split, devel_split = split(train_recs, xs["train"]), split(devel_recs, xs.get("devel", []))
    result = train_seeds(config, train_split, devel_split, state_path=out / STATE, resume=resume,
                         on_event=on_event)
    for part in corpus.partitions():
        write_recordings(out / PREDICTIONS / part, corpus.partition(part),
                         predict_arrays(result.model, xs[part], chunk=eval_chunk(dc)), dc.targets)
    folds = None
    if config.train.folds:  # out-of-fold train predictions replace the in-sample ones
        oof, folds = out_of_fold(config, train_split, devel_split, [r.subject for r in train_recs],
                                 k=config.train.folds, seed=result.best.seed, on_event=on_event)
        write_recordings(out / PREDICTIONS / "train", train_recs, oof, dc.targets)
    # checkpoint.pt, then metrics.json, then removing train_state.pt mark the run finished; a
    # failure before that leaves an interrupted run that --resume completes.
    save_checkpoint(out / CHECKPOINT, config=config, model=result.model, standardiser=std,
                    feature_dims=corpus.feature_dims, optimizer=result.optimizer,
                    scheduler=result.scheduler, rng=result.rng, epoch=result.best.best_epoch,
                    seed=result.best.seed, difficulty=difficulty.state() if difficulty else None)
    metrics = fit_metrics(result, targets=dc.targets, features=dc.features, start=start,
                          warnings=corpus_warnings(corpus))
    metrics["train_predictions"] = "out-of-fold" if folds else "in-sample"
    if difficulty is not None:
        metrics["difficulty_seconds"] = difficulty_seconds
    if folds:
        metrics["folds"] = folds
    write_json(out / METRICS, metrics)
    (out / STATE).unlink(missing_ok=True)
    return metrics


def evaluate(run: Path | str, data: Path | str, *, partition: str) -> dict:
    """Score a regression run on one labelled partition (see :func:`emotrace.evaluate`)."""
    r = load_run(run)
    recs = labelled(run_corpus(r, data, partition, labels=True), data, partition)
    preds = predict_arrays(r.model, inputs(recs, r.standardiser, r.config.data, r.difficulty),
                           chunk=eval_chunk(r.config.data))
    check_finite(preds, [x.id for x in recs], what=f"{r.path} on {partition!r}")
    result = partition_scores([x.targets(r.config.data.targets) for x in recs], preds,
                             r.config.data.targets, partition=partition)
    write_json(r.path / f"eval_{partition}.json", result)
    return result


def predict(run: Path | str, data: Path | str, *, partition: str, out: Path | str) -> list[Path]:
    """Write a regression run's predictions of ``partition`` to ``out``."""
    r = load_run(run)
    recs = run_corpus(r, data, partition, labels=False)
    preds = predict_arrays(r.model, inputs(recs, r.standardiser, r.config.data, r.difficulty),
                           chunk=eval_chunk(r.config.data))
    return write_recordings(Path(out), recs, preds, r.config.data.targets)
