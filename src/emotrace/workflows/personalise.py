"""Personalisation (MuSe 2023): fine-tune a copy of the general model for each subject.

Protocol, per subject of the chosen partition (devel by default; never train):

1. The subject's recordings are taken in corpus order (the order of ``metadata/partition.csv``)
   and walked step by step. The first ``subject_train`` of *labelled* time is the subject's
   personal train part, the next ``subject_devel`` its personal devel part, and everything after
   is the evaluation part. On CEAP-360VR (60 s videos) the defaults (60 s + 60 s) make a
   participant's first video the personal train part, the second the personal devel part and the
   remaining videos the evaluation part; on long recordings they are the first and second
   minute of the first recording, as in MuSe 2023.
2. For each of ``seeds`` seeds, a copy of the general model is fine-tuned on windows of the
   personal train part (``win`` steps, hop ``hop``), with Adam, the run's loss and gradient clip,
   for at most ``epochs`` epochs, keeping the epoch with the best CCC on the personal devel part
   (early stopping after ``patience`` epochs without gain).
3. The best seed is kept if its personal-devel CCC (mean over targets) beats the general
   model's on the same steps; otherwise the subject keeps the general model.
4. Both the general and the chosen model predict the subject's whole recordings (inputs are
   features only, so context from the personal parts is allowed); only the evaluation steps are
   scored. Reported: global CCC over every subject's evaluation steps, each subject's CCC, their
   mean, and the gain (personal − general).

The standardiser is the general run's (fitted on its train partition); no statistic is refitted.
"""

from __future__ import annotations

import copy
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from emotrace.config import MAX_SEED
from emotrace.data.corpus import Recording
from emotrace.data.muse import PARTITION_FILE
from emotrace.data.names import path_for
from emotrace.data.windows import make_windows
from emotrace.errors import EmotraceError
from emotrace.fileio import atomic_path, check_output, folder_lock, write_json, write_text
from emotrace.kinds.regression import inputs, write_recordings
from emotrace.metrics import ccc as ccc_metric
from emotrace.metrics import trace_metrics
from emotrace.run import CONFIG, Run, load_run, run_corpus
from emotrace.train.loop import Schedule, Task, fit_task
from emotrace.train.losses import LOSSES
from emotrace.train.predict import predict_arrays
from emotrace.train.workers import default_jobs, run_jobs

TRAIN, DEVEL, EVAL = 0, 1, 2
_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | float | int, *, option: str = "duration") -> float:
    """Seconds from ``"60s"``, ``"1.5min"``, ``"500ms"``, ``"2h"`` or a bare number of seconds.

    >>> parse_duration("60s"), parse_duration("1.5min"), parse_duration(90)
    (60.0, 90.0, 90.0)
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-z]*)\s*", str(text).lower())
        if not m or m.group(2) not in ("", *_UNITS):
            raise EmotraceError(f"{option} {text!r}: not a duration. Write e.g. 60s, 1.5min or "
                                f"500ms.")
        value = float(m.group(1)) * _UNITS.get(m.group(2), 1.0)
    if value <= 0:
        raise EmotraceError(f"{option} {text!r}: must be longer than 0 s.")
    return value


@dataclass
class SubjectData:
    subject: str
    recs: list[Recording]
    xs: list[np.ndarray]  # standardised inputs, whole recordings
    ys: list[np.ndarray]  # (T, K) labels
    parts: list[np.ndarray]  # per step: TRAIN, DEVEL or EVAL

    def masked(self, part: int) -> list[np.ndarray]:
        """Labels with every step outside ``part`` set to NaN."""
        return [np.where((p == part)[:, None], y, np.nan) for y, p in zip(self.ys, self.parts,
                                                                          strict=True)]

    def slices(self, part: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Inputs and labels of the steps in ``part`` (contiguous within each recording)."""
        xs, ys = [], []
        for x, y, p in zip(self.xs, self.ys, self.parts, strict=True):
            idx = np.flatnonzero(p == part)
            if idx.size:
                xs.append(x[idx[0] : idx[-1] + 1])
                ys.append(y[idx[0] : idx[-1] + 1])
        return xs, ys


def split_subject(subject: str, recs: list[Recording], ys: list[np.ndarray], *, n_train: int,
                  n_devel: int, step_s: float, where: Path, options: str) -> list[np.ndarray]:
    """Mark each step TRAIN (first ``n_train`` labelled steps), DEVEL (next ``n_devel``) or EVAL.

    >>> import numpy as np
    >>> y = [np.ones((4, 1)), np.ones((4, 1))]
    >>> [p.tolist() for p in split_subject("s", [None, None], y, n_train=3, n_devel=2,
    ...                                    step_s=1.0, where=Path("p.csv"), options="")]
    [[0, 0, 0, 1], [1, 2, 2, 2]]
    """
    labelled = [np.isfinite(y).any(axis=1) for y in ys]
    total = int(sum(m.sum() for m in labelled))
    if total <= n_train + n_devel:
        raise EmotraceError(
            f"{where}: subject {subject!r} has {total * step_s:.1f} s of labelled time in "
            f"{len(recs)} recording(s), but {options} ask for {(n_train + n_devel) * step_s:.1f} s "
            f"before the part that is evaluated. Use shorter --subject-train/--subject-devel, or "
            f"leave the subject out.")
    parts, seen = [], 0
    for m in labelled:
        rank = seen + np.cumsum(m) - m  # labelled steps before this step, over the subject
        p = np.where(rank < n_train, TRAIN, np.where(rank < n_train + n_devel, DEVEL, EVAL))
        parts.append(p.astype(np.int8))
        seen += int(m.sum())
    return parts


def _score(preds: list[np.ndarray], truths: list[np.ndarray]) -> float:
    """Mean over targets of the global CCC (NaN truths are left out)."""
    k = truths[0].shape[1]
    return float(np.mean([ccc_metric(np.concatenate([t[:, j] for t in truths]),
                                     np.concatenate([p[:, j] for p in preds])) for j in range(k)]))


def finetune(model: torch.nn.Module, subject: SubjectData, *, seed: int, loss: str, lr: float,
             batch_size: int, epochs: int, patience: int, win: int, hop: int,
             clip: float) -> tuple[dict, float, int]:
    """Fine-tune a copy of ``model`` on the subject's personal train part.

    Returns the state dict of the best epoch on the personal devel part, its score (mean over
    targets of the devel-part CCC) and that epoch.
    """
    xs, ys = subject.slices(TRAIN)
    windows = make_windows(xs, ys, win=win, hop=hop)
    # only recordings with personal-devel steps are predicted (whole, for the context)
    keep = [i for i, p in enumerate(subject.parts) if (p == DEVEL).any()]
    devel_xs = [subject.xs[i] for i in keep]
    devel = [subject.masked(DEVEL)[i] for i in keep]
    loss_fn = LOSSES[loss]

    def step_loss(m: torch.nn.Module, idx: torch.Tensor) -> torch.Tensor:
        return loss_fn(m(windows.x[idx], windows.mask[idx]), windows.y[idx], windows.mask[idx])

    def score(m: torch.nn.Module) -> tuple[float, dict]:
        return _score(predict_arrays(m, devel_xs), devel), {}

    task = Task(lambda: copy.deepcopy(model), len(windows), step_loss, score)
    fit = fit_task(task, Schedule(epochs=epochs, lr=lr, batch_size=batch_size, clip=clip,
                                   patience=patience), [seed])
    return fit.best_state, float(fit.best.score), fit.best.best_epoch


def _check_options(partition: str, seeds: int, win: int, hop: int, epochs: int, patience: int,
                   lr: float, seed: int = 0) -> None:
    if partition == "train":
        raise EmotraceError("--partition train: the general model was trained on these subjects. "
                            "Personalise devel or test subjects.")
    for name, v in (("--seeds", seeds), ("--win", win), ("--hop", hop), ("--epochs", epochs),
                    ("--patience", patience)):
        if v < 1:
            raise EmotraceError(f"{name} {v}: must be at least 1.")
    if not (math.isfinite(lr) and lr > 0):
        raise EmotraceError(f"--lr {lr}: must be a positive, finite number.")
    if not 0 <= seed <= seed + seeds - 1 <= MAX_SEED:
        raise EmotraceError(f"--seed {seed} (with --seeds {seeds}): seeds must be whole numbers "
                            f"from 0 to {MAX_SEED}.")


def _subjects(r: Run, data: Path, partition: str, *, train_s: float, devel_s: float,
              options: str) -> tuple[list[SubjectData], float, int, int]:
    """The partition's subjects with each step marked; the step length (s) and the personal
    train and devel parts in steps."""
    dc = r.config.data
    part_file = data / PARTITION_FILE
    header = part_file.read_text(encoding="utf-8", errors="replace").splitlines()[:1] \
        if part_file.exists() else []
    recs = run_corpus(r, data, partition, labels=True)
    if header and "Subject" not in [c.strip() for c in header[0].split(",")] \
            or all(x.subject == x.id for x in recs):
        raise EmotraceError(f"{part_file}: no Subject column (or every recording is its own "
                            f"subject), so there is no subject to personalise for. Add a Subject "
                            f"column naming each recording's speaker/participant.")
    xs_all = inputs(recs, r.standardiser, dc, r.difficulty)
    step_s = float(np.median(np.concatenate([np.diff(x.timestamps) for x in recs if len(x) > 1])
                             )) / 1000.0
    n_train, n_devel = max(1, round(train_s / step_s)), max(1, round(devel_s / step_s))
    subjects: list[SubjectData] = []
    for s in sorted({x.subject for x in recs}, key=lambda s: [int(t) if t.isdigit() else t
                                                               for t in re.split(r"(\d+)", s)]):
        idx = [i for i, x in enumerate(recs) if x.subject == s]
        ys = [recs[i].targets(dc.targets) for i in idx]
        parts = split_subject(s, [recs[i] for i in idx], ys, n_train=n_train, n_devel=n_devel,
                              step_s=step_s, where=part_file, options=options)
        subjects.append(SubjectData(s, [recs[i] for i in idx], [xs_all[i] for i in idx], ys, parts))
    return subjects, step_s, n_train, n_devel


def _finetune_job(model: torch.nn.Module, subject: SubjectData, seed: int, tune: dict, *,
                  emit: Callable) -> tuple[dict, float, int]:
    return finetune(model, subject, seed=seed, **tune)


def _personalise_subject(r: Run, sd: SubjectData, out: Path,
                         tries: list[tuple[int, dict, float, int]]
                         ) -> tuple[dict, list[np.ndarray], list[np.ndarray]]:
    """Keep the best fine-tuned copy of ``sd`` (``tries``: seed, state, score, epoch) if it
    beats the general model on the personal devel part; the subject's row of ``metrics.json``
    and the general and kept predictions."""
    general = r.model
    general_preds = predict_arrays(general, sd.xs)
    general_dev = _score(general_preds, sd.masked(DEVEL))
    best_state, best_score, best_seed = None, general_dev, None
    for s, state, score, _ in tries:
        if score > best_score:
            best_state, best_score, best_seed = state, score, s
    preds = general_preds
    if best_state is not None:
        model = copy.deepcopy(general)
        model.load_state_dict(best_state)
        preds = predict_arrays(model, sd.xs)
        with atomic_path(path_for(out / "models", sd.subject, ".pt", what="subject")) as tmp:
            torch.save(best_state, tmp)
    ev = sd.masked(EVAL)
    per_target = {}
    for j, t in enumerate(r.config.data.targets):
        g = trace_metrics([y[:, j] for y in ev], [p[:, j] for p in general_preds])
        q = trace_metrics([y[:, j] for y in ev], [p[:, j] for p in preds])
        per_target[t] = {"general": g["ccc"], "personal": q["ccc"],
                         "gain": q["ccc"] - g["ccc"], "general_metrics": g, "personal_metrics": q}
    seeds = [{"seed": s, "devel_ccc": score, "best_epoch": epoch} for s, _, score, epoch in tries]
    row = {
        "subject": sd.subject, "personal": best_state is not None, "best_seed": best_seed,
        "devel_general": general_dev, "devel_personal": best_score if best_seed is not None
        else max((t["devel_ccc"] for t in seeds), default=None),
        "recordings": [x.id for x in sd.recs],
        "steps": {name: int(sum(int((p == code).sum()) for p in sd.parts))
                  for name, code in (("train", TRAIN), ("devel", DEVEL), ("eval", EVAL))},
        "seeds": seeds, "targets": per_target}
    return row, general_preds, preds


def _summary(targets: list[str], subjects: list[SubjectData], rows: list[dict],
             chosen: dict[str, tuple[list[np.ndarray], list[np.ndarray]]]) -> dict:
    """Per target: global CCC over every subject's evaluation steps, and the subjects' mean."""
    out = {}
    for j, t in enumerate(targets):
        ev = [y[:, j] for sd in subjects for y in sd.masked(EVAL)]
        g = [p[:, j] for sd in subjects for p in chosen[sd.subject][0]]
        q = [p[:, j] for sd in subjects for p in chosen[sd.subject][1]]
        gm, qm = trace_metrics(ev, g), trace_metrics(ev, q)
        gs = np.array([row["targets"][t]["general"] for row in rows])
        qs = np.array([row["targets"][t]["personal"] for row in rows])
        out[t] = {
            "global": {"general": gm["ccc"], "personal": qm["ccc"], "gain": qm["ccc"] - gm["ccc"]},
            "mean_subject": {"general": float(gs.mean()), "personal": float(qs.mean()),
                             "gain": float((qs - gs).mean())},
            "general_metrics": gm, "personal_metrics": qm}
    return out


def _gains_csv(rows: list[dict]) -> str:
    lines = ["subject,target,general,personal,gain,kept,best_seed"]
    for row in rows:
        for t, v in row["targets"].items():
            lines.append(f"{row['subject']},{t},{v['general']:.6f},{v['personal']:.6f},"
                         f"{v['gain']:.6f},{'personal' if row['personal'] else 'general'},"
                         f"{'' if row['best_seed'] is None else row['best_seed']}")
    return "\n".join(lines) + "\n"


def personalise(run: Path | str, data: Path | str, *, out: Path | str, partition: str = "devel",
                subject_train: str | float = "60s", subject_devel: str | float = "60s",
                seeds: int = 10, seed: int = 0, win: int = 10, hop: int = 5, epochs: int = 20,
                patience: int = 5, lr: float = 1e-3, batch_size: int | None = None,
                threads: int = 0,
                progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Fine-tune per-subject copies of a finished run and score them against the general model.

    See the module docstring for the protocol. Writes to ``out``: ``metrics.json`` (everything
    returned), ``gains.csv`` (one row per subject and target), ``config.yaml`` (the general run's),
    ``predictions/<partition>/<recording_id>.csv`` (each subject's kept model on its whole
    recordings; only the evaluation steps are held out) and ``models/<subject>.pt`` (the state
    dict of each kept personal model, loadable with ``torch.load(weights_only=True)`` into the
    general run's model).

    Returns ``{"targets": {t: {"global": {general, personal, gain}, "mean_subject": {...}}},
    "subjects": [...], ...}``.
    """
    _check_options(partition, seeds, win, hop, epochs, patience, lr, seed)
    train_s = parse_duration(subject_train, option="--subject-train")
    devel_s = parse_duration(subject_devel, option="--subject-devel")
    out, data = check_output(out, {"--data": data, "--run": run}), Path(data)
    with folder_lock(out):
        return _personalise(run, data, out, partition=partition, train_s=train_s,
                            devel_s=devel_s, subject_train=subject_train,
                            subject_devel=subject_devel, seeds=seeds, seed=seed, win=win, hop=hop,
                            epochs=epochs, patience=patience, lr=lr, batch_size=batch_size,
                            threads=threads, progress=progress)


def _personalise(run: Path | str, data: Path, out: Path, *, partition: str, train_s: float,
                 devel_s: float, subject_train: str | float, subject_devel: str | float,
                 seeds: int, seed: int, win: int, hop: int, epochs: int, patience: int, lr: float,
                 batch_size: int | None, threads: int,
                 progress: Callable[[int, int, str], None] | None) -> dict:
    if out.exists() and (out / "metrics.json").exists():
        raise EmotraceError(f"{out}: already holds a personalisation. Choose another --out.")
    r = load_run(run)
    dc, tc = r.config.data, r.config.train
    if tc.task != "regression":
        raise EmotraceError(f"{run}: a {tc.task} run; personalisation fine-tunes regressors of "
                            f"continuous traces. Pass a regression run.")
    subjects, step_s, n_train, n_devel = _subjects(
        r, data, partition, train_s=train_s, devel_s=devel_s,
        options=f"--subject-train {subject_train} and --subject-devel {subject_devel}")
    start = time.perf_counter()
    tune = {"loss": tc.loss, "lr": lr, "batch_size": batch_size or tc.batch_size,
            "epochs": epochs, "patience": patience, "win": win, "hop": hop, "clip": tc.clip}
    # every (subject, seed) fine-tuning is an independent job, run in parallel processes
    jobs = [(r.model, sd, seed + k, tune) for sd in subjects for k in range(seeds)]
    tries: dict[str, list] = {sd.subject: [None] * seeds for sd in subjects}
    if progress:
        progress(0, len(jobs), "")
    cores = default_jobs()
    for n, (k, (state, score, epoch)) in enumerate(run_jobs(
            _finetune_job, jobs, jobs=min(cores, threads or cores, len(jobs)))):
        sd, s = jobs[k][1], jobs[k][2]
        tries[sd.subject][s - seed] = (s, state, score, epoch)
        if progress:
            progress(n + 1, len(jobs), sd.subject)
    rows, chosen = [], {}
    (out / "models").mkdir(parents=True, exist_ok=True)
    for sd in subjects:
        row, general_preds, preds = _personalise_subject(r, sd, out, tries[sd.subject])
        rows.append(row)
        chosen[sd.subject] = (general_preds, preds)
    result = {
        "run": str(run), "data": str(data), "partition": partition,
        "protocol": {"subject_train_s": n_train * step_s, "subject_devel_s": n_devel * step_s,
                     "step_s": step_s, "seeds": seeds, "seed": seed, **tune,
                     "order": "recordings in partition.csv order; the first labelled time of a "
                              "subject is personal train, the next personal devel, the rest is "
                              "evaluated"},
        "targets": _summary(dc.targets, subjects, rows, chosen), "subjects": rows,
        "personalised": sum(row["personal"] for row in rows), "n_subjects": len(rows),
        "seconds": time.perf_counter() - start,
    }
    for sd in subjects:
        write_recordings(out / "predictions" / partition, sd.recs, chosen[sd.subject][1],
                         dc.targets)
    r.config.save(out / CONFIG)
    write_text(out / "gains.csv", _gains_csv(rows))
    write_json(out / "metrics.json", result)
    return result
