"""Late fusion of finished runs: ``emotrace.fuse`` and ``emotrace fuse``.

The inputs are the per-step predictions that runs wrote to ``RUN/predictions/<partition>/``
(``timestamp,value``, or one column per target). All runs must predict the same targets for the
same recordings at the same timestamps; anything else is an error that names the file. The fusion
model (:mod:`emotrace.models.late`: ``rnn``, ``weighted`` or ``mean``) is trained on the train
predictions, selected on devel, and written as a normal run directory::

    RUN/config.yaml        fusion: {method, runs, targets, features, difficulty, model, train}
    RUN/checkpoint.pt      the fusion module, the input standardisation, the auto-encoders
    RUN/metrics.json       devel metrics (as for `emotrace train`), the input runs' own metrics
    RUN/predictions/<partition>/<recording_id>.csv   for every partition all inputs have

A fused run is fused, evaluated and predicted like any other: ``evaluate``/``predict`` let each
input run predict the requested partition of ``--data`` (recursively, for fused inputs), then
apply the fusion model, so the input runs must still exist at the paths in ``config.yaml``.

Train predictions written by ``emotrace train`` are in-sample (over-fitted) unless the runs were
trained with ``--folds K`` (out-of-fold, :mod:`emotrace.train.folds`); ``metrics.json`` says
which ones the fusion model learnt from.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from emotrace._version import __version__
from emotrace.config import FuseConfig, RunConfig
from emotrace.data.corpus import Corpus
from emotrace.data.csvio import read_table
from emotrace.data.muse import LABELS, PARTITION_FILE, available, load_corpus
from emotrace.data.standardise import Standardiser
from emotrace.data.windows import make_windows
from emotrace.errors import EmotraceError
from emotrace.fileio import LOCK, atomic_path, read_json, write_json
from emotrace.metrics import partition_scores, trace_metrics
from emotrace.models.late import METHODS, build_fusion, fusion_args, fusion_from_args
from emotrace.run import (
    CHECKPOINT,
    CHECKPOINT_FORMAT,
    CHECKPOINT_KEYS,
    CONFIG,
    CV_FORMAT,
    CV_KEYS,
    METRICS,
    PREDICTIONS,
    STATE,
    check_config_matches,
    check_finite,
    fit_metrics,
    read_checkpoint,
    run_kind,
    write_predictions,
)
from emotrace.train.difficulty import Difficulty
from emotrace.train.loop import EpochEvent, FitResult, Schedule, Task, fit_task
from emotrace.train.losses import LOSSES
from emotrace.train.predict import predict_arrays
from emotrace.train.regression import Split, feature_groups, train_seeds

#: ``predict(run, data, partition=..., out=...)`` of any kind of run (the API's, passed in)
Predictor = Callable[..., list[Path]]

FUSION_FORMAT = "emotrace-fusion-checkpoint-1"
FUSION_KEYS = ("config", "model_args", "model", "input_mean", "input_std", "feature_dims")
PARTITIONS = ("train", "devel", "test")


def is_fused(run: Path | str) -> bool:
    """True when ``run`` is a run directory written by :func:`fit` (``emotrace fuse``)."""
    try:
        return (Path(run) / CONFIG).is_file() and run_kind(run) == "fused"
    except EmotraceError:
        return False


@dataclass
class _Input:
    path: Path
    targets: list[str]
    features: list[str]
    metrics: dict


def _check_input(path: Path) -> _Input:
    """A finished run of this emotrace version, or a clear error."""
    if not path.is_dir():
        raise EmotraceError(f"{path}: run folder not found. Pass the --out folders of finished "
                            f"`emotrace train` (or `emotrace fuse`) runs to --runs.")
    if (path / STATE).exists():
        raise EmotraceError(f"{path}: the run was interrupted before it finished (it still holds "
                            f"{STATE}). Finish it with `emotrace train ... --resume` first.")
    for name in (CONFIG, CHECKPOINT, METRICS):
        if not (path / name).exists():
            raise EmotraceError(f"{path / name}: missing, so {path} is not a finished run. Pass "
                                f"the --out folder of a finished `emotrace train` or "
                                f"`emotrace fuse`.")
    fused, kind = is_fused(path), run_kind(path)
    read_checkpoint(path / CHECKPOINT, *((FUSION_FORMAT, FUSION_KEYS) if fused
                                          else (CV_FORMAT, CV_KEYS) if kind == "cv"
                                          else (CHECKPOINT_FORMAT, CHECKPOINT_KEYS)))
    if fused:
        fc = FuseConfig.load(path / CONFIG)
        targets, features = fc.targets, fc.features
    else:
        rc = RunConfig.load(path / CONFIG)
        if rc.train.task != "regression":
            raise EmotraceError(f"{path / CONFIG}: a {rc.train.task} run; late fusion combines "
                                f"time-continuous predictions of regression runs only.")
        targets, features = rc.data.targets, rc.data.features
    metrics = read_json(path / METRICS)
    return _Input(path, list(targets), list(features), metrics)


def _check_targets(inputs: list[_Input]) -> list[str]:
    first = inputs[0]
    for r in inputs[1:]:
        if sorted(r.targets) != sorted(first.targets):
            raise EmotraceError(f"{r.path / CONFIG}: predicts {r.targets}, but {first.path} "
                                f"predicts {first.targets}. Fuse runs of the same target(s).")
    return first.targets


@dataclass
class _Preds:
    ids: list[str]
    timestamps: list[np.ndarray]
    values: list[np.ndarray]  # (T, R * K), run-major


def _read_folder(folder: Path, targets: list[str]) -> dict[str, tuple[Path, np.ndarray, np.ndarray]]:
    cols = ["value"] if len(targets) == 1 else list(targets)
    out = {}
    for f in sorted(folder.glob("*.csv")):
        t = read_table(f, value_columns=cols)
        out[f.stem] = (f, t.timestamps, t.values)
    return out


def _gather(folders: list[Path], targets: list[str], partition: str) -> _Preds:
    """The runs' predictions of one partition side by side; recordings and timestamps must match."""
    per_run = []
    for folder in folders:
        if not folder.is_dir() or not any(folder.glob("*.csv")):
            raise EmotraceError(f"{folder}: no predictions for partition {partition!r}. Fusion "
                                f"needs every run's predictions of train (to fit the fusion) and "
                                f"devel (to select it); retrain the run on a corpus with that "
                                f"partition.")
        per_run.append(_read_folder(folder, targets))
    ids = sorted(per_run[0])
    for folder, preds in zip(folders[1:], per_run[1:], strict=True):
        if set(preds) != set(ids):
            only = sorted(set(ids) - set(preds))
            extra = sorted(set(preds) - set(ids))
            what = (f"has no prediction for recording {only[0]!r}" if only
                    else f"has a prediction for recording {extra[0]!r}")
            raise EmotraceError(f"{folder}: {what}, unlike {folders[0]} ({len(ids)} vs "
                                f"{len(preds)} recordings). Fuse runs trained on the same corpus.")
    timestamps, values = [], []
    for rid in ids:
        f0, ts0, _ = per_run[0][rid]
        for preds in per_run[1:]:
            f, ts, _ = preds[rid]
            if len(ts) != len(ts0) or not np.allclose(ts, ts0, atol=0.5):
                n = min(len(ts), len(ts0))
                bad = np.flatnonzero(~np.isclose(ts[:n], ts0[:n], atol=0.5))
                row = int(bad[0]) if len(bad) else n
                mine = f"{ts[row]:g}" if row < len(ts) else "no row"
                theirs = f"{ts0[row]:g}" if row < len(ts0) else "no row"
                raise EmotraceError(f"{f}, line {row + 2}: timestamp {mine}, but {f0} has "
                                    f"{theirs}. The runs' predictions are on different time "
                                    f"grids; fuse runs trained on the same corpus.")
        timestamps.append(ts0.astype(np.int64))
        values.append(np.concatenate([preds[rid][2] for preds in per_run], axis=1))
    return _Preds(ids, timestamps, values)


def _difficulty_inputs(data: Path | str, features: list[str], targets: list[str],
                       partitions: list[str], std) -> dict[str, dict[str, np.ndarray]]:
    """Standardised feature matrices per partition, by recording id."""
    have = available(Path(data), LABELS)  # the label grid, as the runs' predictions used
    corpus = load_corpus(data, features=features, targets=[t for t in targets if t in have],
                         partitions=partitions)
    return {p: {r.id: std.transform(r, features) for r in corpus.partition(p)} for p in partitions}


def _fit_weighted(module: torch.nn.Module, xs: list[np.ndarray], ys: list[np.ndarray], *,
                  seed: int, steps: int = 300, lr: float = 0.05) -> torch.nn.Module:
    """Full-batch Adam on :math:`1 - \\mathrm{CCC}` over all train steps (``ccc-batch``)."""
    batch = make_windows(xs, ys, win=0, hop=1)
    loss_fn = LOSSES["ccc-batch"]

    def loss(m: torch.nn.Module, idx: torch.Tensor) -> torch.Tensor:
        return loss_fn(m(batch.x[idx], batch.mask[idx]), batch.y[idx], batch.mask[idx])

    task = Task(lambda: module, len(batch), loss)
    sched = Schedule(epochs=steps, lr=lr, batch_size=len(batch), shuffle=False)
    return fit_task(task, sched, [seed]).model


def _score(ys: list[np.ndarray], preds: list[np.ndarray], targets: list[str]) -> dict:
    return {t: trace_metrics([y[:, k] for y in ys], [p[:, k] for p in preds])
            for k, t in enumerate(targets)}


def _resolve(runs: list[Path | str], *, method: str, difficulty: bool,
             config: FuseConfig | None, out: Path) -> tuple[FuseConfig, list[_Input]]:
    """Check the options and the input runs; the fused run's full configuration."""
    if method not in METHODS:
        raise EmotraceError(f"--method {method!r}: unknown fusion method. Use one of "
                            f"{', '.join(METHODS)}.")
    if len(runs) < 2:
        raise EmotraceError("fuse needs at least two runs (--runs A B ...).")
    if difficulty and method == "mean":
        raise EmotraceError("--difficulty needs a fusion model that can use it: --method rnn or "
                            "weighted (the plain mean has no parameters).")
    if out.exists() and (not out.is_dir() or any(p.name != LOCK for p in out.iterdir())):
        raise EmotraceError(f"{out}: exists and is not an empty folder. Choose another --out, or "
                            f"delete the folder to fuse again.")
    inputs = [_check_input(Path(r)) for r in runs]
    targets = _check_targets(inputs)
    features = list(dict.fromkeys(f for i in inputs for f in i.features))
    base = config.model_dump() if config is not None else {}
    cfg = FuseConfig.model_validate({**base, "method": method, "difficulty": difficulty,
                                     "runs": [str(i.path.resolve()) for i in inputs],
                                     "targets": targets, "features": features})
    return cfg, inputs


def _input_predictions(inputs: list[_Input], cfg: FuseConfig) -> dict[str, _Preds]:
    """Every input run's predictions, side by side, of each partition they all have."""
    need = ["train", "devel"] if cfg.method != "mean" else ["devel"]
    for p in need:
        for i in inputs:
            if not (i.path / PREDICTIONS / p).is_dir():
                raise EmotraceError(f"{i.path / PREDICTIONS / p}: missing. --method {cfg.method} "
                                    f"needs every run's predictions of {' and '.join(need)}; "
                                    f"retrain the run on a corpus with a {p} partition.")
    have = [p for p in PARTITIONS if all((i.path / PREDICTIONS / p).is_dir() for i in inputs)]
    # read_table picks the target columns by name, so every run's columns come in this order
    return {p: _gather([i.path / PREDICTIONS / p for i in inputs], cfg.targets, p) for p in have}


def _labels(corpus: Corpus, preds: dict[str, _Preds], data: Path | str,
            targets: list[str]) -> dict[str, list[np.ndarray]]:
    """The label traces matching the predictions, per partition (test only when labelled)."""
    labels: dict[str, list[np.ndarray]] = {}
    for p, got in preds.items():
        recs = {r.id: r for r in corpus.partition(p)}
        if p == "test" and not recs:
            continue
        missing = [rid for rid in got.ids if rid not in recs]
        if missing or len(recs) != len(got.ids):
            rid = missing[0] if missing else sorted(set(recs) - set(got.ids))[0]
            raise EmotraceError(f"{Path(data) / PARTITION_FILE}: recording {rid!r} ({p}) is not "
                                f"in both this corpus and the runs' predictions. Pass the --data "
                                f"the runs were trained on.")
        for rid, ts in zip(got.ids, got.timestamps, strict=True):
            if len(recs[rid]) != len(ts) or not np.array_equal(recs[rid].timestamps, ts):
                raise EmotraceError(f"{Path(data) / LABELS / targets[0] / (rid + '.csv')}: the "
                                    f"label timestamps differ from the runs' predictions of "
                                    f"{rid!r}. Pass the --data the runs were trained on.")
        labels[p] = [recs[rid].targets(targets) for rid in got.ids]
    return labels


def _difficulty(cfg: FuseConfig, corpus: Corpus, data: Path | str, preds: dict[str, _Preds],
                xs: dict[str, list[np.ndarray]]) -> tuple[Difficulty, Standardiser]:
    """Fit the auto-encoders on train features and append their channels to ``xs`` (in place)."""
    std = Standardiser.fit(corpus.partition("train"), cfg.features)
    feats = _difficulty_inputs(data, cfg.features, cfg.targets, list(preds), std)
    diff = Difficulty.fit([feats["train"][rid] for rid in preds["train"].ids],
                          feature_groups([len(std.mean[f]) for f in cfg.features]), cfg.features,
                          cell=cfg.model.cell, bidirectional=cfg.model.bidirectional,
                          hidden=cfg.difficulty_hidden, layers=cfg.difficulty_layers,
                          seed=cfg.train.seed)
    for p, got in preds.items():
        errs = diff.errors([feats[p][rid] for rid in got.ids])
        xs[p] = [np.concatenate([x, e], axis=1) for x, e in zip(xs[p], errs, strict=True)]
    return diff, std


def _input_scale(method: str, train: list[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """The rnn sees standardised predictions (train statistics); the means work in label units."""
    if method != "rnn":
        return np.zeros(width, np.float32), np.ones(width, np.float32)
    cat = np.concatenate(train, axis=0)[:, :width]
    mean, sd = np.nanmean(cat, 0), np.nanstd(cat, 0)
    return mean.astype(np.float32), np.where(sd > 1e-8, sd, 1.0).astype(np.float32)


def _train(cfg: FuseConfig, norm: dict[str, list[np.ndarray]], preds: dict[str, _Preds],
           labels: dict[str, list[np.ndarray]], n_runs: int, n_extra: int,
           on_event: Callable[[EpochEvent], None] | None) -> tuple[torch.nn.Module, FitResult | None]:
    """The fusion module, and (``rnn``) the fit loop's result."""
    targets, n_targets = cfg.targets, len(cfg.targets)
    if cfg.method != "rnn":
        module = build_fusion(cfg.method, n_runs=n_runs, n_targets=n_targets, n_extra=n_extra)
        if cfg.method == "weighted":
            module = _fit_weighted(module, norm["train"], labels["train"], seed=cfg.train.seed)
        module.eval()
        return module, None
    rc = RunConfig(data={"features": [f"run{r}" for r in range(n_runs)], "targets": targets,
                         "win": cfg.win, "hop": cfg.hop}, model=cfg.model, train=cfg.train)
    groups = [(r * n_targets, (r + 1) * n_targets) for r in range(n_runs)]
    result = train_seeds(rc, Split(preds["train"].ids, norm["train"], labels["train"], groups),
                         Split(preds["devel"].ids, norm["devel"], labels["devel"], groups),
                         on_event=on_event)
    return result.model, result


def fit(runs: list[Path | str], *, data: Path | str, out: Path | str,
        method: str = "rnn", difficulty: bool = False, config: FuseConfig | None = None,
        on_event: Callable[[EpochEvent], None] | None = None) -> dict:
    """Late fusion of finished runs into a new run directory; returns its ``metrics.json``.

    Args:
        runs: run folders (of ``emotrace train`` or ``emotrace fuse``) predicting the same
            targets of the same recordings of ``data``.
        data: the corpus the runs were trained on (labels; features for ``difficulty``).
        out: the new run folder.
        method: ``rnn`` (a second-level sequence model), ``weighted`` (convex weights fitted
            on train, :math:`\\hat{y}_t = \\sum_r w_r p_{t,r} + b`) or ``mean`` (plain mean,
            e.g. an ensemble of seeds).
        difficulty: fit one auto-encoder per feature set of the input runs on train and feed its
            per-step reconstruction error to the fusion model (``rnn`` or ``weighted``).
        config: all options at once (``runs``, ``method`` and ``difficulty`` arguments win).

    The fusion model is fitted on the runs' train predictions (out-of-fold ones when the runs
    were trained with ``folds``) and the devel predictions select among its seeds and epochs.
    """
    out = Path(out)
    cfg, inputs = _resolve(runs, method=method, difficulty=difficulty, config=config, out=out)
    targets = cfg.targets
    start = time.perf_counter()
    preds = _input_predictions(inputs, cfg)
    corpus = load_corpus(data, features=cfg.features, targets=targets,
                         partitions=[p for p in preds if p != "test"])
    labels = _labels(corpus, preds, data, targets)
    xs = {p: [v.astype(np.float32) for v in got.values] for p, got in preds.items()}
    diff, std, diff_seconds = None, None, 0.0
    if cfg.difficulty:
        t0 = time.perf_counter()
        diff, std = _difficulty(cfg, corpus, data, preds, xs)
        diff_seconds = time.perf_counter() - t0
    width = len(inputs) * len(targets)
    mean, sd = _input_scale(cfg.method, xs.get("train", []), width)
    norm = {p: [_normalise(x, mean, sd) for x in xs[p]] for p in preds}
    t0 = time.perf_counter()
    module, result = _train(cfg, norm, preds, labels, len(inputs),
                           len(cfg.features) if cfg.difficulty else 0, on_event)
    train_seconds = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / CONFIG)
    fused = {p: predict_arrays(module, norm[p]) for p in preds}
    for p, got in preds.items():
        write_predictions(out / PREDICTIONS / p, got.ids, got.timestamps, fused[p], targets)
    devel = _score(labels["devel"], fused["devel"], targets) if "devel" in labels else {}
    if result is None:  # weighted or mean: one fit, nothing to select
        best_seed, epochs, best_epoch = cfg.train.seed, 0, 0
        seeds = [{"seed": best_seed, "devel": _per_target(devel, targets), "best_epoch": 0,
                  "epochs": 0, "seconds": train_seconds, "history": []}]
    else:
        seeds = fit_metrics(result, targets=targets, features=cfg.features, start=start,
                            warnings=[])["seeds"]
        best_seed, epochs, best_epoch = result.best.seed, result.best.epochs, result.best.best_epoch
    _save(out, cfg, module, mean, sd, corpus, best_seed, diff, std)
    kinds = {i.metrics.get("train_predictions", "in-sample") for i in inputs}
    metrics = {
        "target": targets[0] if len(targets) == 1 else targets,
        "features": cfg.features,
        "method": cfg.method,
        "difficulty": cfg.difficulty,
        "devel": _per_target(devel, targets),
        "seeds": seeds,
        "best_seed": best_seed,
        "train_seconds": train_seconds,
        "difficulty_seconds": diff_seconds,
        "wall_seconds": time.perf_counter() - start,
        "epochs": epochs,
        "best_epoch": best_epoch,
        "warnings": corpus.report.warnings(),
        "train_predictions": kinds.pop() if len(kinds) == 1 else "mixed",
        "inputs": [{"run": str(i.path.resolve()), "devel": i.metrics.get("devel"),
                    "train_predictions": i.metrics.get("train_predictions", "in-sample")}
                   for i in inputs],
    }
    if cfg.method != "rnn":  # the convex weights (uniform for the mean)
        w = torch.softmax(module.logits.detach(), 0).numpy()
        metrics["weights"] = {t: {str(i.path): float(w[r, k]) for r, i in enumerate(inputs)}
                              for k, t in enumerate(targets)}
    write_json(out / METRICS, metrics)
    return metrics


def _save(out: Path, cfg: FuseConfig, module: torch.nn.Module, mean: np.ndarray, sd: np.ndarray,
          corpus: Corpus, seed: int, diff: Difficulty | None, std: Standardiser | None) -> None:
    ckpt = {"format": FUSION_FORMAT, "emotrace_version": __version__,
            "config": cfg.model_dump(mode="json"), "model_args": fusion_args(cfg.method, module),
            "model": module.state_dict(), "input_mean": torch.from_numpy(mean),
            "input_std": torch.from_numpy(sd), "feature_dims": dict(corpus.feature_dims),
            "seed": seed}
    if diff is not None:
        ckpt["difficulty"] = diff.state()
        ckpt["normaliser"] = std.state()
    with atomic_path(out / CHECKPOINT) as tmp:
        torch.save(ckpt, tmp)


def _normalise(x: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    w = len(mean)
    y = x.copy()
    y[:, :w] = np.nan_to_num((x[:, :w] - mean) / sd)
    return y


def _per_target(m: dict, targets: list[str]) -> dict:
    return m[targets[0]] if len(targets) == 1 and m else m


@dataclass
class _Fused:
    path: Path
    config: FuseConfig
    module: torch.nn.Module
    mean: np.ndarray
    std: np.ndarray
    difficulty: Difficulty | None
    standardiser: Standardiser | None


def load_fused(run: Path | str) -> _Fused:
    """A fused run's config, fusion module (eval mode), input statistics and auto-encoders."""
    path = Path(run)
    _check_input(path)
    cfg = FuseConfig.load(path / CONFIG)
    ckpt = read_checkpoint(path / CHECKPOINT, FUSION_FORMAT, FUSION_KEYS)
    check_config_matches(path, path / CHECKPOINT, ckpt["config"], cfg, redo="fuse again")
    module = fusion_from_args(ckpt["model_args"])
    module.load_state_dict(ckpt["model"])
    module.eval()
    diff = Difficulty.from_state(ckpt["difficulty"]) if ckpt.get("difficulty") else None
    std = Standardiser.from_state(ckpt["normaliser"]) if ckpt.get("normaliser") else None
    return _Fused(path, cfg, module, ckpt["input_mean"].numpy(), ckpt["input_std"].numpy(),
                  diff, std)


def _fused_predictions(run: Path | str, data: Path | str, partition: str,
                       predict_input: Predictor) -> tuple[_Fused, _Preds, list[np.ndarray]]:
    f = load_fused(run)
    targets = f.config.targets
    with tempfile.TemporaryDirectory() as tmp:
        folders = []
        for r, path in enumerate(f.config.runs):
            folder = Path(tmp) / f"run{r}"
            try:
                predict_input(path, data, partition=partition, out=folder)
            except EmotraceError as e:
                raise EmotraceError(f"{f.path}: its input run {path} could not predict "
                                    f"{partition!r}: {e}") from None
            folders.append(folder)
        got = _gather(folders, targets, partition)
    xs = [v.astype(np.float32) for v in got.values]
    if f.difficulty is not None:
        feats = _difficulty_inputs(data, f.config.features, targets, [partition],
                                   f.standardiser)[partition]
        errs = f.difficulty.errors([feats[rid] for rid in got.ids])
        xs = [np.concatenate([x, e], axis=1) for x, e in zip(xs, errs, strict=True)]
    xs = [_normalise(x, f.mean, f.std) for x in xs]
    return f, got, predict_arrays(f.module, xs)


def predict(run: Path | str, data: Path | str, *, partition: str, out: Path | str,
            predict_input: Predictor) -> list[Path]:
    """Every input run predicts ``partition`` of ``data`` (through ``predict_input``, the API's
    predict, so inputs of any kind work), then the fusion model combines them."""
    f, got, fused = _fused_predictions(run, data, partition, predict_input)
    return write_predictions(Path(out), got.ids, got.timestamps, fused, f.config.targets)


def evaluate(run: Path | str, data: Path | str, *, partition: str,
             predict_input: Predictor) -> dict:
    """Score a fused run on one labelled partition (same result layout as a regression run);
    writes ``RUN/eval_<partition>.json``."""
    f, got, fused = _fused_predictions(run, data, partition, predict_input)
    targets = f.config.targets
    have = available(Path(data), LABELS)
    corpus = load_corpus(data, features=f.config.features[:1],
                         targets=[t for t in targets if t in have], partitions=[partition])
    recs = {r.id: r for r in corpus.partition(partition)}
    missing = [rid for rid in got.ids if rid not in recs or not recs[rid].labels]
    if missing or any(t not in have for t in targets):
        raise EmotraceError(f"{Path(data) / LABELS}: partition {partition!r} has no labels for "
                            f"{missing[0] if missing else targets!r}, so it cannot be scored. Use "
                            f"`emotrace predict` for unlabelled data.")
    ys = [recs[rid].targets(targets) for rid in got.ids]
    check_finite(fused, got.ids, what=f"{f.path} on {partition!r}")
    result = partition_scores(ys, fused, targets, partition=partition)
    write_json(f.path / f"eval_{partition}.json", result)
    return result
