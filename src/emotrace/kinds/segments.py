"""Segment classification runs (``TrainConfig.task == "classification"``): fit / evaluate /
predict.

The target is a ``class_id`` label folder (``emotrace classes`` writes one): each step of a
recording carries its segment's ``segment_id`` and ``class_id``. One prediction per segment:
``RUN/predictions/<partition>/<recording_id>.csv`` with ``segment_id, start, end`` (first and last
step, ms), ``class_id`` (the most probable class) and ``prob_0 .. prob_{K-1}``. A recording without
a class label file (unlabelled test data) is predicted as one segment, ``segment_id`` 0. Metrics:
``f1_macro`` and ``accuracy`` over the segments (docs/usage.md). Not resumable: an interrupted
classification run is started again (it is deterministic for its seeds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emotrace.config import RunConfig
from emotrace.data.corpus import Corpus, Recording
from emotrace.data.csvio import write_table
from emotrace.data.muse import LABELS, load_corpus
from emotrace.data.names import path_for
from emotrace.data.standardise import Standardiser
from emotrace.errors import EmotraceError
from emotrace.fileio import write_json
from emotrace.metrics import classification_metrics
from emotrace.run import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    PREDICTIONS,
    STATE,
    Run,
    check_finite,
    corpus_warnings,
    fit_metrics,
    labelled,
    load_run,
    run_corpus,
    save_checkpoint,
)
from emotrace.train.loop import EpochEvent
from emotrace.train.regression import feature_groups
from emotrace.train.segments import Segments, cut_segments, predict_proba, train_classifier


def is_class_target(corpus: Corpus, target: str) -> bool:
    """True when the target's label files carry ``class_id`` and ``segment_id``."""
    return any(target in r.class_segments for r in corpus.recordings)


def _segments(recs: list[Recording], std: Standardiser, features: list[str],
              target: str) -> Segments:
    return cut_segments([r.id for r in recs], [r.timestamps for r in recs],
                        [std.transform(r, features) for r in recs],
                        [r.labels.get(target) for r in recs],
                        [r.class_segments.get(target) for r in recs],
                        feature_groups([len(std.mean[f]) for f in features]))


def _write_predictions(folder: Path, seg: Segments, proba: np.ndarray) -> list[Path]:
    check_finite([proba], ["all segments"], what=f"the predictions for {folder}")
    paths = []
    for rid in dict.fromkeys(seg.recordings):
        idx = [i for i, r in enumerate(seg.recordings) if r == rid]
        cols = {"segment_id": np.array([seg.segment_ids[i] for i in idx], np.int64),
                "start": np.array([seg.spans[i][0] for i in idx], np.int64),
                "end": np.array([seg.spans[i][1] for i in idx], np.int64),
                "class_id": proba[idx].argmax(1).astype(np.int64)}
        cols.update({f"prob_{c}": proba[idx, c] for c in range(proba.shape[1])})
        path = path_for(folder, rid)
        write_table(path, cols)
        paths.append(path)
    return paths


def fit(data: Path | str, *, out: Path, config: RunConfig, resume: bool = False,
        corpus: Corpus | None = None, on_event: Callable[[EpochEvent], None] | None = None,
        on_load: Callable[[int, int], None] | None = None) -> dict:
    """Train a segment classifier (called by :func:`emotrace.fit`); returns ``metrics.json``."""
    dc = config.data
    if len(dc.targets) != 1:
        raise EmotraceError(f"--task classification takes one target (got {', '.join(dc.targets)}); "
                            f"train one run per class target.")
    target = dc.targets[0]
    if corpus is None:
        corpus = load_corpus(data, features=dc.features, targets=dc.targets, strict=dc.strict,
                             progress=on_load)
    if not is_class_target(corpus, target):
        raise EmotraceError(f"{Path(data) / LABELS / target}: target {target!r} has no class_id and "
                            f"segment_id columns, so it cannot be classified. Build classes with "
                            f"`emotrace classes`, or train it with --task regression.")
    train_recs = corpus.partition("train")
    if not train_recs:
        raise EmotraceError(f"{Path(data) / 'metadata' / 'partition.csv'}: no recording in the "
                            f"train partition. Mark some recordings as train.")
    std = Standardiser.fit(train_recs, dc.features, enabled=dc.standardize,
                           per_recording=tuple(dc.per_recording))
    segs = {p: _segments(corpus.partition(p), std, dc.features, target) for p in corpus.partitions()}
    known = np.concatenate([s.ys[np.isfinite(s.ys)] for s in segs.values()])
    if (known < 0).any() or (known != np.round(known)).any():
        raise EmotraceError(f"{Path(data) / LABELS / target}: class_id values must be whole numbers "
                            f"0, 1, ..., K-1 (found {known[(known < 0) | (known != np.round(known))][0]:g}).")
    train_known = segs["train"].ys[np.isfinite(segs["train"].ys)]
    if not len(train_known):
        raise EmotraceError(f"{Path(data) / LABELS / target}: no train segment has a class_id.")
    n_classes = int(known.max()) + 1
    out.mkdir(parents=True, exist_ok=True)
    (out / STATE).unlink(missing_ok=True)  # classification runs restart instead of resuming
    config.save(out / CONFIG)
    start = time.perf_counter()
    empty = Segments([], [], [], [], np.zeros(0))
    result = train_classifier(config, segs["train"], segs.get("devel", empty), n_classes=n_classes,
                              on_event=on_event)
    for part, s in segs.items():
        _write_predictions(out / PREDICTIONS / part, s, predict_proba(result.model, s.xs))
    best = result.best
    save_checkpoint(out / CHECKPOINT, config=config, model=result.model, standardiser=std,
                    feature_dims=corpus.feature_dims, optimizer=result.optimizer,
                    scheduler=result.scheduler, rng=result.rng, epoch=best.best_epoch,
                    seed=best.seed)
    metrics = {"task": "classification", "classes": n_classes,
               "train_class_shares": (np.bincount(train_known.astype(int), minlength=n_classes)
                                      / len(train_known)).round(4).tolist(),
               **fit_metrics(result, targets=dc.targets, features=dc.features, start=start,
                             warnings=corpus_warnings(corpus))}
    write_json(out / METRICS, metrics)
    return metrics


def _run_segments(run: Run, recs: list[Recording]) -> Segments:
    dc = run.config.data
    return _segments(recs, run.standardiser, dc.features, dc.targets[0])


def evaluate(run: Path | str, data: Path | str, *, partition: str) -> dict:
    """Macro F1 and accuracy of a classification run on one partition's labelled segments."""
    r = load_run(run)
    recs = labelled(run_corpus(r, data, partition, labels=True), data, partition)
    seg = _run_segments(r, recs)
    known = np.isfinite(seg.ys)
    if not known.any():
        raise EmotraceError(f"{Path(data) / LABELS / r.config.data.targets[0]}: partition "
                            f"{partition!r} has no segment with a class_id, so it cannot be scored. "
                            f"Use `emotrace predict` for unlabelled data.")
    proba = predict_proba(r.model, [x for x, k in zip(seg.xs, known, strict=True) if k])
    check_finite([proba], ["all segments"], what=f"{r.path} on {partition!r}")
    pred = proba.argmax(1)
    result = {"target": r.config.data.targets[0], "partition": partition, "recordings": len(recs),
              **classification_metrics(seg.ys[known], pred, n_classes=r.model.n_classes)}
    write_json(r.path / f"eval_{partition}.json", result)
    return result


def predict(run: Path | str, data: Path | str, *, partition: str, out: Path | str) -> list[Path]:
    """One file per recording: ``segment_id, start, end, class_id, prob_0 ...``."""
    r = load_run(run)
    seg = _run_segments(r, run_corpus(r, data, partition, labels=False))
    return _write_predictions(Path(out), seg, predict_proba(r.model, seg.xs))
