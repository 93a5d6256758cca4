"""Out-of-fold (cross-fitted by subject) train predictions for late fusion.

A model's predictions on its own training data are over-fitted, so a fusion model trained on them
learns to trust the most over-fitted input. With ``K`` folds, the train subjects are dealt into
``K`` groups (sorted, round-robin); for each group a model with the run's configuration (one seed:
the run's kept seed) is trained on the other groups, early-stopped on devel as usual, and predicts
the held-out group. Every train recording thus gets a prediction from a model that never saw its
subject; these become the run's ``predictions/train/`` (``metrics.json`` says so).

The standardiser and the difficulty auto-encoders are the run's (fitted on all train features,
no labels), so the fold models see the same input columns as the run's model.

``--cv`` (:mod:`emotrace.kinds.cv`) shares the subject folds (:func:`subject_folds`, there dealt
from a seeded permutation; :func:`cv_folds`) and the job pool (``train.loop.fit_groups``), but
its folds cover train + devel and each fold is early-stopped on its own held-out subjects, with
its own statistics. A run trained with ``--cv`` writes out-of-fold predictions itself, so the two
options are not combined.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from emotrace.config import RunConfig
from emotrace.data.inputs import take
from emotrace.errors import EmotraceError
from emotrace.train.loop import EpochEvent, SeedGroup, fit_groups
from emotrace.train.predict import predict_arrays
from emotrace.train.regression import Split, eval_chunk, jobs_for, regression_task


def subject_folds(subjects: list[str], k: int, *, seed: int | None = None,
                  flag: str = "--folds") -> list[list[str]]:
    """Deal the distinct subjects into ``k`` groups, round-robin: sorted, or (with ``seed``) in
    the order of a permutation drawn from ``numpy.random.default_rng(seed)``, so the groups
    differ by at most one subject in size and depend on nothing but the subjects and the seed.

    >>> subject_folds(["s3", "s1", "s2", "s1", "s4"], 2)
    [['s1', 's3'], ['s2', 's4']]
    """
    distinct = sorted(set(subjects))
    if k < 2 or k > len(distinct):
        which = "train and devel subjects" if flag == "--cv" else "train subjects"
        raise EmotraceError(f"{flag} {k}: subject folds need between 2 and the number of "
                            f"{which} ({len(distinct)}) folds. Pick a K in that range"
                            f"{' (or loso)' if flag == '--cv' else ''}.")
    if seed is not None:
        order = np.random.default_rng(seed).permutation(len(distinct))
        distinct = [distinct[i] for i in order]
    return [sorted(distinct[i::k]) for i in range(k)]


def cv_folds(subjects: list[str], spec: str, *, seed: int) -> list[list[str]]:
    """The held-out subjects of each fold of ``--cv spec``: ``K`` seeded balanced folds
    (:func:`subject_folds`), or ``loso`` (one fold per subject, in sorted order).

    >>> cv_folds(["b", "a", "c"], "loso", seed=0)
    [['a'], ['b'], ['c']]
    """
    distinct = sorted(set(subjects))
    if spec == "loso":
        if len(distinct) < 2:
            raise EmotraceError(f"--cv loso: leave-one-subject-out needs at least 2 subjects; "
                                f"train and devel hold {len(distinct)}. Add subjects.")
        return [[s] for s in distinct]
    return subject_folds(distinct, int(spec), seed=seed, flag="--cv")


def out_of_fold(config: RunConfig, train: Split, devel: Split, subjects: list[str], *, k: int,
                seed: int, on_event: Callable[[EpochEvent], None] | None = None,
                ) -> tuple[list[np.ndarray], dict]:
    """Held-out predictions for every train recording (in ``train`` order) and a summary
    ``{"folds", "seed", "seconds", "fold_devel_ccc"}``. The folds train in parallel worker
    processes (``config.train.jobs``)."""
    folds = subject_folds(subjects, k)
    cfg = config.model_copy(deep=True)
    cfg.train.seeds, cfg.train.seed = 1, seed
    preds: list[np.ndarray | None] = [None] * len(train.xs)
    start = time.perf_counter()
    groups, held = [], []
    for fold in folds:
        out = [i for i, s in enumerate(subjects) if s in fold]
        keep = [i for i, s in enumerate(subjects) if s not in fold]
        part = Split([train.ids[i] for i in keep], take(train.xs, keep),
                     [train.ys[i] for i in keep], train.groups)
        groups.append(SeedGroup(regression_task, (cfg, part, devel), [seed]))
        held.append(out)
    # the same job pool as --cv's folds (train.loop.fit_groups): one job per fold
    results = fit_groups(groups, jobs=jobs_for(cfg.train, len(groups)), on_event=on_event)
    for f, result in enumerate(results):
        fold_preds = predict_arrays(result.model, take(train.xs, held[f]),
                                    chunk=eval_chunk(config.data))
        for i, p in zip(held[f], fold_preds, strict=True):
            preds[i] = p
    return preds, {"folds": k, "subjects": folds, "seed": seed,  # type: ignore[return-value]
                   "seconds": time.perf_counter() - start,
                   "fold_devel_ccc": [r.best.score for r in results]}
