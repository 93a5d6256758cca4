"""fit / evaluate / predict for segment-level classification runs (``TrainConfig.task ==
"classification"``); :mod:`emotrace.api` dispatches here.

The target is a ``class_id`` label folder (``emotrace classes`` writes one): each step of a
recording carries its segment's ``segment_id`` and ``class_id``. One prediction per segment:
``RUN/predictions/<partition>/<recording_id>.csv`` with ``segment_id, start, end`` (first and last
step, ms), ``class_id`` (the most probable class) and ``prob_0 .. prob_{K-1}``. A recording without
a class label file (unlabelled test data) is predicted as one segment, ``segment_id`` 0. Metrics:
``f1_macro`` and ``accuracy`` over the segments (DESIGN.md). Not resumable: an interrupted
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
from emotrace.data.standardise import Standardiser
from emotrace.errors import EmotraceError
from emotrace.fileio import write_json
from emotrace.metrics import classification_metrics
from emotrace.run import CHECKPOINT, CONFIG, METRICS, PREDICTIONS, STATE, Run, save_checkpoint
from emotrace.train.classify import Segments, cut_segments, predict_proba, train_classifier
from emotrace.train.trainer import EpochEvent


def is_class_target(corpus: Corpus, target: str) -> bool:
    """True when the target's label files carry ``class_id`` and ``segment_id``."""
    return any(target in r.class_segments for r in corpus.recordings)


def _groups(std: Standardiser, features: list[str]) -> list[tuple[int, int]]:
    ends = np.cumsum([len(std.mean[f]) for f in features]).tolist()
    return list(zip([0, *ends[:-1]], ends, strict=True))


def _segments(recs: list[Recording], std: Standardiser, features: list[str],
              target: str) -> Segments:
    return cut_segments([r.id for r in recs], [r.timestamps for r in recs],
                        [std.transform(r, features) for r in recs],
                        [r.labels.get(target) for r in recs],
                        [r.class_segments.get(target) for r in recs], _groups(std, features))


def _write_predictions(folder: Path, seg: Segments, proba: np.ndarray) -> list[Path]:
    paths = []
    for rid in dict.fromkeys(seg.recordings):
        idx = [i for i, r in enumerate(seg.recordings) if r == rid]
        cols = {"segment_id": np.array([seg.segment_ids[i] for i in idx], np.int64),
                "start": np.array([seg.spans[i][0] for i in idx], np.int64),
                "end": np.array([seg.spans[i][1] for i in idx], np.int64),
                "class_id": proba[idx].argmax(1).astype(np.int64)}
        cols.update({f"prob_{c}": proba[idx, c] for c in range(proba.shape[1])})
        write_table(folder / f"{rid}.csv", cols)
        paths.append(folder / f"{rid}.csv")
    return paths


def fit_classifier(data: Path | str, *, out: Path, config: RunConfig, corpus: Corpus | None = None,
                   on_event: Callable[[EpochEvent], None] | None = None,
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
    save_checkpoint(out / CHECKPOINT, config=config, model=result.model, standardizer=std,
                    feature_dims=corpus.feature_dims, optimizer=result.optimizer,
                    scheduler=result.scheduler, rng=result.rng, epoch=best.best_epoch,
                    seed=best.seed)
    metrics = {
        "target": target, "features": dc.features, "task": "classification",
        "classes": n_classes,
        "train_class_shares": (np.bincount(train_known.astype(int), minlength=n_classes)
                               / len(train_known)).round(4).tolist(),
        "devel": best.devel,
        "seeds": [{"seed": s.seed, "devel": s.devel, "best_epoch": s.best_epoch, "epochs": s.epochs,
                   "seconds": s.seconds, "history": s.history} for s in result.seeds],
        "best_seed": best.seed,
        "train_seconds": sum(s.seconds for s in result.seeds),
        "wall_seconds": time.perf_counter() - start,
        "epochs": best.epochs, "best_epoch": best.best_epoch,
        "warnings": corpus.report.warnings(),
    }
    write_json(out / METRICS, metrics)
    return metrics


def _run_segments(run: Run, recs: list[Recording]) -> Segments:
    dc = run.config.data
    return _segments(recs, run.standardizer, dc.features, dc.targets[0])


def evaluate_classifier(run: Run, recs: list[Recording], *, data: Path | str, partition: str) -> dict:
    """Macro F1 and accuracy of a classification run on one partition's labelled segments."""
    seg = _run_segments(run, recs)
    known = np.isfinite(seg.ys)
    if not known.any():
        raise EmotraceError(f"{Path(data) / LABELS / run.config.data.targets[0]}: partition "
                            f"{partition!r} has no segment with a class_id, so it cannot be scored. "
                            f"Use `emotrace predict` for unlabelled data.")
    pred = predict_proba(run.model, [x for x, k in zip(seg.xs, known, strict=True) if k]).argmax(1)
    return {"target": run.config.data.targets[0], "partition": partition,
            "recordings": len(recs), **classification_metrics(seg.ys[known], pred,
                                                             n_classes=run.model.n_classes)}


def predict_classifier(run: Run, recs: list[Recording], *, out: Path | str) -> list[Path]:
    """One file per recording: ``segment_id, start, end, class_id, prob_0 ...``."""
    seg = _run_segments(run, recs)
    return _write_predictions(Path(out), seg, predict_proba(run.model, seg.xs))
