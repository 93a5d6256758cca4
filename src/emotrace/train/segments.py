"""Segment-level classification (MuSe-Sent): one class per segment, predicted from the segment's
feature steps by a :class:`~emotrace.models.classifier.SegmentClassifier`.

Works on arrays and configs only, like :mod:`emotrace.train.regression`: segments are cut from the
standardised recordings by the ``segment_id`` of each step of a ``class_id`` label file; the loss is
cross-entropy (optionally weighted by inverse train class frequency,
:math:`w_c = N / (K n_c)`); Adam, learning-rate halving and early stopping on the **devel macro
F1**; several seeds, the best on devel kept. Training is deterministic for a seed on CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from emotrace.config import RunConfig
from emotrace.data.windows import pad
from emotrace.errors import EmotraceError
from emotrace.metrics import classification_metrics
from emotrace.models.classifier import SegmentClassifier
from emotrace.train.loop import EpochEvent, FitResult, Schedule, Task, fit_seeds
from emotrace.train.regression import drop_modalities, jobs_for, schedule


@dataclass
class Segments:
    """The segments of one partition: inputs ``(T_s, D)``, class ids (NaN = unknown)."""

    recordings: list[str]
    segment_ids: list[int]
    spans: list[tuple[int, int]]  # first and last timestamp (ms) of the segment's steps
    xs: list[np.ndarray]
    ys: np.ndarray  # (S,) float
    groups: list[tuple[int, int]] = field(default_factory=list)


def cut_segments(recordings: list[str], timestamps: list[np.ndarray], xs: list[np.ndarray],
                 labels: list[np.ndarray | None], segment_ids: list[np.ndarray | None],
                 groups: list[tuple[int, int]] | None = None) -> Segments:
    """Split each recording into its segments (steps sharing a finite segment id, in order of
    first appearance). A recording without segment ids (no class label file) is one segment
    with id 0 and an unknown class.

    >>> s = cut_segments(["r"], [np.arange(5) * 100], [np.zeros((5, 1))],
    ...                  [np.array([1, 1, np.nan, 0, 0])], [np.array([7, 7, np.nan, 8, 8])])
    >>> s.segment_ids, s.ys.tolist(), s.spans
    ([7, 8], [1.0, 0.0], [(0, 100), (300, 400)])
    """
    out = Segments([], [], [], [], np.zeros(0), list(groups or []))
    ys = []
    for rid, ts, x, y, seg in zip(recordings, timestamps, xs, labels, segment_ids, strict=True):
        if seg is None:
            out.recordings.append(rid)
            out.segment_ids.append(0)
            out.spans.append((int(ts[0]), int(ts[-1])))
            out.xs.append(x)
            ys.append(np.nan)
            continue
        finite = np.isfinite(seg)
        ids, first = np.unique(seg[finite], return_index=True)
        for sid in ids[np.argsort(first)]:
            rows = np.flatnonzero(seg == sid)
            cls = y[rows] if y is not None else np.array([np.nan])
            cls = cls[np.isfinite(cls)]
            out.recordings.append(rid)
            out.segment_ids.append(int(sid))
            out.spans.append((int(ts[rows[0]]), int(ts[rows[-1]])))
            out.xs.append(x[rows])
            ys.append(float(cls[0]) if len(cls) else np.nan)
    out.ys = np.array(ys, dtype=np.float64)
    return out


@torch.no_grad()
def predict_proba(model: nn.Module, xs: list[np.ndarray], *, batch_size: int = 128) -> np.ndarray:
    """Class probabilities ``(S, K)`` for segments ``xs``, in input order."""
    was = model.training
    model.eval()
    out = np.zeros((len(xs), model.n_classes), np.float32)
    order = sorted(range(len(xs)), key=lambda i: len(xs[i]))
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        batch = pad([xs[i] for i in idx], [np.zeros((len(xs[i]), 1), np.float32) for i in idx])
        out[idx] = torch.softmax(model(batch.x, batch.mask), dim=-1).numpy()
    model.train(was)
    return out


def class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights :math:`w_c = N / (K n_c)` (1 for classes absent from train).

    >>> class_weights(np.array([0, 0, 0, 1]), 2).tolist()
    [0.6666666865348816, 2.0]
    """
    counts = np.bincount(y.astype(int), minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 1.0)
    return torch.tensor(w, dtype=torch.float32)


def classifier_task(config: RunConfig, train: Segments, devel: Segments,
                    n_classes: int) -> tuple[Task, Schedule]:
    """The fit loop's task for a segment classifier (built in each worker)."""
    tc = config.train
    keep = np.isfinite(train.ys)
    xs = [x for x, k in zip(train.xs, keep, strict=True) if k]
    y_all = torch.from_numpy(train.ys[keep].astype(np.int64))
    batch_all = pad(xs, [np.zeros((len(x), 1), np.float32) for x in xs])
    dev = np.isfinite(devel.ys)
    dev_xs = [x for x, k in zip(devel.xs, dev, strict=True) if k]
    weight = class_weights(train.ys[keep], n_classes) if tc.class_weights else None
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    d_in = xs[0].shape[1]

    def loss(model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
        m = batch_all.mask[idx]
        t = int(m.sum(1).max())  # trim the padding of this batch
        x = drop_modalities(batch_all.x[idx, :t], train.groups, tc.modality_dropout)
        return loss_fn(model(x, m[:, :t]), y_all[idx])

    def score(model: nn.Module) -> tuple[float, dict]:
        pred = predict_proba(model, dev_xs).argmax(1)
        metrics = classification_metrics(devel.ys[dev], pred, n_classes=n_classes)
        return metrics["f1_macro"], metrics

    task = Task(lambda: SegmentClassifier(config.model, d_in, n_classes), len(xs), loss,
                score if dev_xs else None, score_name="devel_f1_macro")
    return task, schedule(tc)


def train_classifier(config: RunConfig, train: Segments, devel: Segments, *, n_classes: int,
                     on_event: Callable[[EpochEvent], None] | None = None) -> FitResult:
    """Train ``config.train.seeds`` segment classifiers; keep the best devel macro F1.

    Only segments with a known class are used. Without labelled devel segments, each seed trains
    for ``epochs`` epochs and the last epoch is kept.
    """
    tc = config.train
    if not np.isfinite(train.ys).any():
        raise EmotraceError("the train partition has no segment with a class_id; a classifier "
                            "needs labelled train segments.")
    seeds = [tc.seed + i for i in range(tc.seeds)]
    return fit_seeds(classifier_task, (config, train, devel, n_classes), seeds,
                     jobs=jobs_for(tc, len(seeds)), on_event=on_event)
