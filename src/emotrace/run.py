"""The run folder: its files, its kind, the checkpoint, the predictions. Layout::

    RUN/config.yaml          the RunConfig
    RUN/checkpoint.pt        self-describing checkpoint (plain tensors and builtins only)
    RUN/metrics.json         devel metrics of the kept seed, every seed's, timings
    RUN/predictions/<partition>/<recording_id>.csv   timestamp, value
    RUN/eval_<partition>.json                          written by ``evaluate``
    RUN/folds/<k>/checkpoint.pt  a cross-validated run's fold models (its checkpoint.pt then
                                 lists them: format ``emotrace-cv-checkpoint-1``)

Checkpoints are loaded with ``torch.load(weights_only=True)``: no pickled classes, so they load
in any later PyTorch and can't execute code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ValidationError

from emotrace._version import __version__
from emotrace.config import RunConfig, read_yaml
from emotrace.data.corpus import Corpus, Recording
from emotrace.data.csvio import write_table
from emotrace.data.muse import LABELS, available, load_corpus
from emotrace.data.names import path_for
from emotrace.data.standardise import Standardiser
from emotrace.errors import EmotraceError
from emotrace.fileio import atomic_path, read_json
from emotrace.models import SequenceRegressor, from_args
from emotrace.train.difficulty import Difficulty
from emotrace.train.loop import FitResult

CHECKPOINT_FORMAT = "emotrace-checkpoint-1"
#: RUN/checkpoint.pt of a cross-validated run: the fold ensemble (members in RUN/folds/<k>/)
CV_FORMAT = "emotrace-cv-checkpoint-1"
FOLDS = "folds"
CONFIG, CHECKPOINT, METRICS, PREDICTIONS, STATE = (
    "config.yaml", "checkpoint.pt", "metrics.json", "predictions", "train_state.pt")
#: the kinds of run; each has fit / evaluate / predict in :mod:`emotrace.kinds`
KINDS = ("regression", "classification", "fused", "cv")


def run_kind(path: Path | str) -> str:
    """The kind of the run in ``path``, from its ``config.yaml`` (the one place that decides it):
    ``fused`` for a run of ``emotrace fuse`` (top-level key ``fusion``), ``cv`` for a
    cross-validated regression run (``train.cv`` set), else the config's ``train.task``."""
    data = read_yaml(Path(path) / CONFIG)
    if "fusion" in data:
        return "fused"
    train = data.get("train")
    if isinstance(train, dict) and train.get("cv") is not None and \
            train.get("task", "regression") == "regression":
        return "cv"
    task = train.get("task", "regression") if isinstance(train, dict) else "regression"
    return task if task in KINDS else "regression"


#: what a checkpoint of each format must hold
CHECKPOINT_KEYS = ("config", "model_args", "model", "normaliser", "feature_dims")
CV_KEYS = ("config", "folds", "members")


def check_config_matches(path: Path, checkpoint: Path, saved: dict, config: BaseModel, *,
                         redo: str = "retrain") -> None:
    """``RUN/config.yaml`` must be the config stored in the checkpoint. Compared after
    validation, so options added later (with defaults) keep old runs loadable."""
    try:
        same = type(config).model_validate(saved).model_dump(mode="json") == config.model_dump(
            mode="json")
    except ValidationError:
        same = False
    if not same:
        raise EmotraceError(f"{path / CONFIG}: does not match {checkpoint} (the files come "
                            f"from different runs). Restore the original config.yaml or {redo}.")


def read_checkpoint(path: Path, fmt: str, keys: tuple[str, ...] = ()) -> dict:
    """``torch.load(weights_only=True)`` of a checkpoint of format ``fmt`` holding ``keys``, or a
    clear error."""
    try:
        ckpt = torch.load(path, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise EmotraceError(f"{path}: not a readable emotrace checkpoint "
                            f"({type(e).__name__}). Retrain the run.") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        got = ckpt.get("format") if isinstance(ckpt, dict) else None
        version = ckpt.get("emotrace_version", "unknown") if isinstance(ckpt, dict) else "unknown"
        raise EmotraceError(f"{path}: checkpoint format {got!r} (emotrace {version}), but this "
                            f"emotrace ({__version__}) reads {fmt!r}. Retrain the run with this "
                            f"version.")
    missing = [k for k in keys if k not in ckpt]
    if missing:
        raise EmotraceError(f"{path}: checkpoint of format {fmt!r} without {', '.join(missing)} "
                            f"(the file is damaged or was written by another program). Retrain "
                            f"the run.")
    return ckpt


def write_predictions(folder: Path, ids: list[str], timestamps: list[np.ndarray],
                      preds: list[np.ndarray], targets: list[str]) -> list[Path]:
    """One MuSe prediction file per recording: ``timestamp,value`` (one target) or
    ``timestamp,<target>,...``. Non-finite predictions are an error, never a result."""
    check_finite(preds, ids, what=f"the predictions for {folder}")
    paths = [path_for(folder, rid) for rid in ids]  # every id checked before anything is written
    for path, ts, p in zip(paths, timestamps, preds, strict=True):
        cols: dict[str, np.ndarray] = {"timestamp": ts}
        if len(targets) == 1:
            cols["value"] = p[:, 0]
        else:
            cols.update({t: p[:, k] for k, t in enumerate(targets)})
        write_table(path, cols)
    return paths


def check_finite(preds: list[np.ndarray], ids: list[str], *, what: str) -> None:
    """A clear error when a model's predictions hold NaN or inf: such a run is never a result.

    They come from non-finite weights (training that diverged) or from extreme input values
    (e.g. a feature of 1e30 in the corpus), and would make every score NaN.
    """
    bad = [(rid, int((~np.isfinite(p)).sum())) for rid, p in zip(ids, preds, strict=True)
           if not np.isfinite(p).all()]
    if bad:
        steps = sum(n for _, n in bad)
        raise EmotraceError(f"{what}: {steps} prediction(s) in {len(bad)} recording(s) are NaN or "
                            f"infinite (e.g. {bad[0][0]!r}), so nothing was written or scored. "
                            f"The model's weights are not finite (training diverged: lower --lr) "
                            f"or the features hold extreme values (e.g. 1e30): check the corpus "
                            f"and retrain.")


def prepare_out(out: Path, config: dict, *, resume: bool) -> None:
    """Check that ``out`` can take a new run (or, with ``resume``, the interrupted run started
    with the same ``config``), and remove the temporary files of writes a kill cut short."""
    if out.exists() and not out.is_dir():
        raise EmotraceError(f"{out}: exists and is not a folder. Choose another --out.")
    finished = (out / METRICS).exists() or (out / CHECKPOINT).exists()
    if finished and not (out / STATE).exists():  # train_state.pt goes last when a run finishes
        raise EmotraceError(f"{out}: already holds a finished run. Choose another --out, or delete "
                            f"the folder to retrain.")
    if (out / STATE).exists() and not resume:
        raise EmotraceError(f"{out}: holds an interrupted run. Pass --resume to finish it, or "
                            f"choose another --out.")
    if resume and (out / STATE).exists() and (out / CONFIG).exists():
        # checked before config.yaml is rewritten, so a wrong attempt leaves the folder as it was
        _check_same_config(out / CONFIG, config)
    if resume and out.is_dir():
        for stale in out.rglob(".*.tmp"):
            stale.unlink(missing_ok=True)


def _flat(d: dict, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _check_same_config(path: Path, config: dict) -> None:
    """--resume must repeat the interrupted run's options."""
    old, new = _flat(RunConfig.load(path).outcome()), _flat(config)
    diff = [f"{k}: {new.get(k)!r} now, {old.get(k)!r} in the run" for k in sorted(old.keys() | new.keys())
            if old.get(k) != new.get(k)]
    if diff:
        raise EmotraceError(f"{path}: the interrupted run was started with other options "
                            f"({'; '.join(diff)}). Repeat the original options with --resume, or "
                            f"choose another --out.")


#: the warning of a training corpus without devel recordings
NO_DEVEL = ("no recording in the devel partition of metadata/partition.csv, so there was nothing "
            "to stop early on or to choose among seeds: every seed trained for all --epochs and "
            "the first seed's last epoch was kept. Mark some recordings as devel")


def corpus_warnings(corpus: Corpus) -> list[str]:
    """What loading a training corpus warns about, plus a missing devel partition."""
    return corpus.report.warnings() + ([] if corpus.partition("devel") else [NO_DEVEL])


def fit_metrics(result: FitResult, *, targets: list[str], features: list[str], start: float,
                warnings: list[str]) -> dict:
    """The part of ``metrics.json`` that every kind of fitted run shares: the kept seed's devel
    metrics, every seed's, timings. With one target, metrics are that target's (not nested)."""

    def per_target(m: dict) -> dict:
        return m[targets[0]] if len(targets) == 1 and m and targets[0] in m else m

    best = result.best
    return {
        "target": targets[0] if len(targets) == 1 else targets,
        "features": features,
        "devel": per_target(best.devel),
        "seeds": [{"seed": s.seed, "devel": per_target(s.devel), "best_epoch": s.best_epoch,
                   "epochs": s.epochs, "seconds": s.seconds, "history": s.history}
                  for s in result.seeds],
        "best_seed": best.seed,
        "train_seconds": sum(s.seconds for s in result.seeds),
        "wall_seconds": time.perf_counter() - start,
        "epochs": best.epochs,
        "best_epoch": best.best_epoch,
        "warnings": warnings,
    }


@dataclass
class Run:
    path: Path
    config: RunConfig
    model: SequenceRegressor
    standardiser: Standardiser
    feature_dims: dict[str, int]
    metrics: dict
    difficulty: Difficulty | None = None  # the auto-encoders of --difficulty


def save_checkpoint(path: Path, *, config: RunConfig, model: SequenceRegressor,
                    standardiser: Standardiser, feature_dims: dict[str, int], optimizer: dict,
                    scheduler: dict, rng: dict, epoch: int, seed: int,
                    difficulty: dict | None = None) -> None:
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "emotrace_version": __version__,
        "config": config.model_dump(mode="json"),
        "model_args": model.model_args(),
        "model": model.state_dict(),
        "normaliser": standardiser.state(),
        "feature_dims": dict(feature_dims),
        "optimizer": optimizer,
        "scheduler": scheduler,
        "rng": rng,
        "epoch": epoch,
        "seed": seed,
    }
    if difficulty is not None:  # the auto-encoders of --difficulty
        ckpt["difficulty"] = difficulty
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def load_run(path: Path | str) -> Run:
    """Load a finished run: config, model (in eval mode), standardiser and metrics."""
    path = Path(path)
    check_finished(path)
    if run_kind(path) == "fused":
        raise EmotraceError(f"{path}: is a fused run (`emotrace fuse`), which `evaluate`, "
                            f"`predict` and `fuse` accept but this command does not. Pass a run "
                            f"of `emotrace train`.")
    if run_kind(path) == "cv":
        raise EmotraceError(f"{path}: is a cross-validated run (--cv, an ensemble of fold "
                            f"models), which `evaluate`, `predict` and `fuse` accept but this "
                            f"command does not. Retrain one model without --cv (e.g. `emotrace "
                            f"train --final --from {path}`).")
    return load_member(path, path / CHECKPOINT)


def check_finished(path: Path) -> None:
    """A clear error unless ``path`` holds a finished run (config and checkpoint, no resume
    state)."""
    if not path.is_dir():
        raise EmotraceError(f"{path}: run folder not found. Pass the --out folder of a finished "
                            f"`emotrace train`.")
    if (path / STATE).exists():  # removed only after checkpoint.pt and metrics.json are written
        raise EmotraceError(f"{path}: the run was interrupted before it finished (it still holds "
                            f"{STATE}). Finish it with `emotrace train ... --resume` and the same "
                            f"options.")
    for name in (CONFIG, CHECKPOINT):
        if not (path / name).exists():
            raise EmotraceError(f"{path / name}: missing, so {path} is not a finished run. Pass "
                                f"the --out folder of a finished `emotrace train`.")


def load_ensemble(run: Path | str) -> tuple[Path, RunConfig, list[Run]]:
    """A finished cross-validated run (``--cv``): its folder, config and fold models (each with
    its own standardiser), from the ensemble checkpoint ``RUN/checkpoint.pt`` that lists them."""
    path = Path(run)
    check_finished(path)
    config = RunConfig.load(path / CONFIG)
    ckpt = read_checkpoint(path / CHECKPOINT, CV_FORMAT, CV_KEYS)
    check_config_matches(path, path / CHECKPOINT, ckpt["config"], config)
    members = []
    for rel in ckpt["members"]:
        if not (path / rel).is_file():
            raise EmotraceError(f"{path / rel}: missing, so the fold ensemble of {path} is "
                                f"incomplete. Retrain the run.")
        members.append(load_member(path, path / rel))
    return path, config, members


def load_member(path: Path, checkpoint: Path) -> Run:
    """A model of the run in ``path`` from ``checkpoint`` (the run's own, or, for a
    cross-validated run, one fold's ``RUN/folds/<k>/checkpoint.pt``)."""
    config = RunConfig.load(path / CONFIG)
    ckpt = read_checkpoint(checkpoint, CHECKPOINT_FORMAT, CHECKPOINT_KEYS)
    check_config_matches(path, checkpoint, ckpt["config"], config)
    try:
        model = from_args(ckpt["model_args"])
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise EmotraceError(f"{checkpoint}: the model description in the checkpoint is "
                            f"damaged ({type(e).__name__}: {e}). Retrain the run.") from None
    except RuntimeError as e:
        lines = [x.strip() for x in str(e).splitlines() if x.strip()]
        first = lines[1] if len(lines) > 1 else lines[0]  # line 0 only says "Error(s) in loading"
        raise EmotraceError(f"{checkpoint}: the weights do not fit the model described in "
                            f"the checkpoint ({first}). Retrain the run.") from None
    model.eval()
    metrics = {}
    if (path / METRICS).exists():
        metrics = read_json(path / METRICS)
    std = Standardiser.from_state(ckpt["normaliser"],
                                  per_recording=tuple(config.data.per_recording))
    difficulty = None
    if ckpt.get("difficulty"):
        difficulty = Difficulty.from_state(ckpt["difficulty"])
    return Run(path, config, model, std, dict(ckpt["feature_dims"]), metrics, difficulty)


def run_corpus(run: Run, data: Path | str, partition: str, *, labels: bool) -> list[Recording]:
    """The recordings of ``partition`` that ``run`` reads (labels only where they exist unless
    ``labels``), checked against the feature dimensions it was trained on."""
    dc = run.config.data
    targets = dc.targets
    if not labels:  # predictions follow the label grid where labels exist, else the features'
        targets = [t for t in dc.targets if t in available(Path(data), LABELS)]
    corpus = load_corpus(data, features=dc.features, targets=targets, partitions=[partition],
                         strict=dc.strict)
    for f, d in corpus.feature_dims.items():
        if run.feature_dims.get(f) != d:
            raise EmotraceError(f"{Path(data) / 'feature_segments' / f}: {d} feature columns, "
                                f"but the model in {run.path} was trained on "
                                f"{run.feature_dims.get(f)}. Use the corpus the run was trained on.")
    return corpus.partition(partition)  # not empty: load_corpus refuses an empty partition


def labelled(recs: list[Recording], data: Path | str, partition: str) -> list[Recording]:
    """``recs``, or a clear error when some have no labels (they cannot be scored)."""
    missing = [x.id for x in recs if not x.labels]
    if missing:
        raise EmotraceError(f"{Path(data) / LABELS}: partition {partition!r} has no "
                            f"labels for {len(missing)} recording(s) (e.g. {missing[0]!r}), so it "
                            f"cannot be scored. Use `emotrace predict` for unlabelled data.")
    return recs


def run_inputs(path: Path | str, _seen: set | None = None) -> list[Path]:
    """``path`` and, for a fused run, every run it reads from (recursively): the folders that a
    command reading this run must not write into."""
    path = Path(path)
    seen = _seen if _seen is not None else set()
    if path.resolve() in seen:
        return []
    seen.add(path.resolve())
    try:
        data = read_yaml(path / CONFIG) if (path / CONFIG).is_file() else {}
    except EmotraceError:
        return [path]
    fusion = data.get("fusion")
    runs = fusion.get("runs") if isinstance(fusion, dict) else None
    out = [path]
    for r in runs if isinstance(runs, list) else []:
        if isinstance(r, str):
            out += run_inputs(r, seen)
    return out
