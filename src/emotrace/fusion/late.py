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
trained with ``--folds K`` (out-of-fold, :mod:`emotrace.fusion.folds`); ``metrics.json`` says
which ones the fusion model learnt from.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from emotrace._version import __version__
from emotrace.config import FuseConfig, RunConfig, read_yaml
from emotrace.data.csvio import read_table, write_table
from emotrace.data.muse import LABELS, available, load_corpus
from emotrace.data.standardise import Standardiser
from emotrace.data.windows import make_windows
from emotrace.errors import EmotraceError
from emotrace.fileio import atomic_path, write_json
from emotrace.fusion.difficulty import Difficulty
from emotrace.metrics import trace_metrics
from emotrace.models.late import METHODS, build_fusion, fusion_args, fusion_from_args
from emotrace.run import CHECKPOINT, CHECKPOINT_FORMAT, CONFIG, METRICS, PREDICTIONS, STATE
from emotrace.train.losses import LOSSES
from emotrace.train.predict import predict_arrays
from emotrace.train.trainer import EpochEvent, Split, train_seeds

FUSION_FORMAT = "emotrace-fusion-checkpoint-1"
PARTITIONS = ("train", "devel", "test")


def is_fused(run: Path | str) -> bool:
    """True when ``run`` is a run directory written by :func:`fuse`."""
    path = Path(run) / CONFIG
    if not path.is_file():
        return False
    try:
        return "fusion" in read_yaml(path)
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
    fused = is_fused(path)
    try:
        ckpt = torch.load(path / CHECKPOINT, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise EmotraceError(f"{path / CHECKPOINT}: not a readable emotrace checkpoint "
                            f"({type(e).__name__}). Retrain the run.") from None
    want = FUSION_FORMAT if fused else CHECKPOINT_FORMAT
    if not isinstance(ckpt, dict) or ckpt.get("format") != want:
        got = ckpt.get("format") if isinstance(ckpt, dict) else None
        version = ckpt.get("emotrace_version", "unknown") if isinstance(ckpt, dict) else "unknown"
        raise EmotraceError(f"{path / CHECKPOINT}: checkpoint format {got!r} (emotrace "
                            f"{version}), but this emotrace ({__version__}) reads {want!r}. "
                            f"Retrain the run with this version.")
    if fused:
        fc = FuseConfig.load(path / CONFIG)
        targets, features = fc.targets, fc.features
    else:
        rc = RunConfig.load(path / CONFIG)
        if rc.train.task != "regression":
            raise EmotraceError(f"{path / CONFIG}: a {rc.train.task} run; late fusion combines "
                                f"time-continuous predictions of regression runs only.")
        targets, features = rc.data.targets, rc.data.features
    try:
        metrics = json.loads((path / METRICS).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EmotraceError(f"{path / METRICS}: not valid JSON ({e}). Retrain the run.") from None
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


def _groups(std: Standardiser, features: list[str]) -> list[tuple[int, int]]:
    ends = np.cumsum([len(std.mean[f]) for f in features]).tolist()
    return list(zip([0, *ends[:-1]], ends, strict=True))


def _fit_weighted(module: torch.nn.Module, xs: list[np.ndarray], ys: list[np.ndarray], *,
                  seed: int, steps: int = 300, lr: float = 0.05) -> None:
    """Full-batch Adam on :math:`1 - \\mathrm{CCC}` over all train steps (``ccc-batch``)."""
    torch.manual_seed(seed)
    batch = make_windows(xs, ys, win=0, hop=1)
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    loss_fn = LOSSES["ccc-batch"]
    module.train()
    for _ in range(steps):
        loss = loss_fn(module(batch.x, batch.mask), batch.y, batch.mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    module.eval()


def _score(ys: list[np.ndarray], preds: list[np.ndarray], targets: list[str]) -> dict:
    return {t: trace_metrics([y[:, k] for y in ys], [p[:, k] for p in preds])
            for k, t in enumerate(targets)}


def _write(folder: Path, ids: list[str], timestamps: list[np.ndarray], preds: list[np.ndarray],
           targets: list[str]) -> None:
    for rid, ts, p in zip(ids, timestamps, preds, strict=True):
        cols: dict[str, np.ndarray] = {"timestamp": ts}
        if len(targets) == 1:
            cols["value"] = p[:, 0]
        else:
            cols.update({t: p[:, k] for k, t in enumerate(targets)})
        write_table(folder / f"{rid}.csv", cols)


def fuse(runs: list[Path | str], *, data: Path | str, out: Path | str,
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
    if method not in METHODS:
        raise EmotraceError(f"--method {method!r}: unknown fusion method. Use one of "
                            f"{', '.join(METHODS)}.")
    if len(runs) < 2:
        raise EmotraceError("fuse needs at least two runs (--runs A B ...).")
    if difficulty and method == "mean":
        raise EmotraceError("--difficulty needs a fusion model that can use it: --method rnn or "
                            "weighted (the plain mean has no parameters).")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EmotraceError(f"{out}: exists and is not an empty folder. Choose another --out, or "
                            f"delete the folder to fuse again.")
    inputs = [_check_input(Path(r)) for r in runs]
    targets = _check_targets(inputs)
    features = list(dict.fromkeys(f for i in inputs for f in i.features))
    base = config.model_dump() if config is not None else {}
    cfg = FuseConfig.model_validate({**base, "method": method, "difficulty": difficulty,
                                     "runs": [str(i.path.resolve()) for i in inputs],
                                     "targets": targets, "features": features})
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    start = time.perf_counter()
    need = ["train", "devel"] if method != "mean" else ["devel"]
    have = [p for p in PARTITIONS
            if all((i.path / PREDICTIONS / p).is_dir() for i in inputs)]
    for p in need:
        for i in inputs:
            if not (i.path / PREDICTIONS / p).is_dir():
                raise EmotraceError(f"{i.path / PREDICTIONS / p}: missing. --method {method} "
                                    f"needs every run's predictions of {' and '.join(need)}; "
                                    f"retrain the run on a corpus with a {p} partition.")
    # read_table picks the target columns by name, so every run's columns come in this order
    preds = {p: _gather([i.path / PREDICTIONS / p for i in inputs], targets, p) for p in have}
    corpus = load_corpus(data, features=features, targets=targets,
                         partitions=[p for p in have if p != "test"])
    labels: dict[str, list[np.ndarray]] = {}
    for p in have:
        recs = {r.id: r for r in corpus.partition(p)}
        if p == "test" and not recs:
            continue
        missing = [rid for rid in preds[p].ids if rid not in recs]
        if missing or len(recs) != len(preds[p].ids):
            rid = missing[0] if missing else sorted(set(recs) - set(preds[p].ids))[0]
            raise EmotraceError(f"{Path(data) / 'metadata' / 'partition.csv'}: recording {rid!r} "
                                f"({p}) is not in both this corpus and the runs' predictions. "
                                f"Pass the --data the runs were trained on.")
        for rid, ts in zip(preds[p].ids, preds[p].timestamps, strict=True):
            if len(recs[rid]) != len(ts) or not np.array_equal(recs[rid].timestamps, ts):
                raise EmotraceError(f"{Path(data) / LABELS / targets[0] / (rid + '.csv')}: the "
                                    f"label timestamps differ from the runs' predictions of "
                                    f"{rid!r}. Pass the --data the runs were trained on.")
        labels[p] = [recs[rid].targets(targets) for rid in preds[p].ids]

    n_runs, n_targets = len(inputs), len(targets)
    xs = {p: [v.astype(np.float32) for v in preds[p].values] for p in have}
    diff, std, diff_seconds = None, None, 0.0
    if cfg.difficulty:
        t0 = time.perf_counter()
        std = Standardiser.fit(corpus.partition("train"), features)
        feats = _difficulty_inputs(data, features, targets, have, std)
        diff = Difficulty.fit([feats["train"][rid] for rid in preds["train"].ids],
                              _groups(std, features), features, cell=cfg.model.cell,
                              bidirectional=cfg.model.bidirectional, seed=cfg.train.seed)
        for p in have:
            errs = diff.errors([feats[p][rid] for rid in preds[p].ids])
            xs[p] = [np.concatenate([x, e], axis=1) for x, e in zip(xs[p], errs, strict=True)]
        diff_seconds = time.perf_counter() - t0
    n_extra = len(features) if cfg.difficulty else 0
    # the rnn sees standardised predictions (train statistics); the means work in label units
    width = n_runs * n_targets
    mean, sd = np.zeros(width, np.float32), np.ones(width, np.float32)
    if method == "rnn":
        cat = np.concatenate(xs["train"], axis=0)[:, :width]
        mean, sd = np.nanmean(cat, 0), np.nanstd(cat, 0)
        sd = np.where(sd > 1e-8, sd, 1.0).astype(np.float32)
        mean = mean.astype(np.float32)
    norm = {p: [_normalise(x, mean, sd) for x in xs[p]] for p in have}

    seeds: list[dict] = []
    t0 = time.perf_counter()
    if method == "rnn":
        rc = RunConfig(data={"features": [f"run{r}" for r in range(n_runs)], "targets": targets},
                       model=cfg.model, train=cfg.train)
        groups = [(r * n_targets, (r + 1) * n_targets) for r in range(n_runs)]
        devel_split = Split(preds["devel"].ids, norm["devel"], labels["devel"], groups)
        result = train_seeds(rc, Split(preds["train"].ids, norm["train"], labels["train"], groups),
                             devel_split, on_event=on_event)
        module = result.model
        seeds = [{"seed": s.seed, "devel": _per_target(s.devel, targets), "best_epoch": s.best_epoch,
                  "epochs": s.epochs, "seconds": s.seconds, "history": s.history}
                 for s in result.seeds]
        best_seed, epochs, best_epoch = result.best.seed, result.best.epochs, result.best.best_epoch
    else:
        module = build_fusion(method, n_runs=n_runs, n_targets=n_targets, n_extra=n_extra)
        if method == "weighted":
            _fit_weighted(module, norm["train"], labels["train"], seed=cfg.train.seed)
        best_seed, epochs, best_epoch = cfg.train.seed, 0, 0
    module.eval()
    train_seconds = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / CONFIG)
    fused = {p: predict_arrays(module, norm[p]) for p in have}
    for p in have:
        _write(out / PREDICTIONS / p, preds[p].ids, preds[p].timestamps, fused[p], targets)
    devel = _score(labels["devel"], fused["devel"], targets) if "devel" in labels else {}
    if not seeds:
        seeds = [{"seed": best_seed, "devel": _per_target(devel, targets), "best_epoch": 0,
                  "epochs": 0, "seconds": train_seconds, "history": []}]
    ckpt = {"format": FUSION_FORMAT, "emotrace_version": __version__,
            "config": cfg.model_dump(mode="json"), "model_args": fusion_args(method, module),
            "model": module.state_dict(), "input_mean": torch.from_numpy(mean),
            "input_std": torch.from_numpy(sd), "feature_dims": dict(corpus.feature_dims),
            "seed": best_seed}
    if diff is not None:
        ckpt["difficulty"] = diff.state()
        ckpt["normaliser"] = std.state()
    with atomic_path(out / CHECKPOINT) as tmp:
        torch.save(ckpt, tmp)
    kinds = {i.metrics.get("train_predictions", "in-sample") for i in inputs}
    metrics = {
        "target": targets[0] if len(targets) == 1 else targets,
        "features": features,
        "method": method,
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
    if method != "rnn":  # the convex weights (uniform for the mean)
        w = torch.softmax(module.logits.detach(), 0).numpy()
        metrics["weights"] = {t: {str(i.path): float(w[r, k]) for r, i in enumerate(inputs)}
                              for k, t in enumerate(targets)}
    write_json(out / METRICS, metrics)
    return metrics


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
    standardizer: Standardiser | None


def load_fused(run: Path | str) -> _Fused:
    """A fused run's config, fusion module (eval mode), input statistics and auto-encoders."""
    path = Path(run)
    _check_input(path)
    cfg = FuseConfig.load(path / CONFIG)
    ckpt = torch.load(path / CHECKPOINT, weights_only=True)
    if ckpt["config"] != cfg.model_dump(mode="json"):
        raise EmotraceError(f"{path / CONFIG}: does not match {path / CHECKPOINT} (the files come "
                            f"from different runs). Restore the original config.yaml or fuse "
                            f"again.")
    module = fusion_from_args(ckpt["model_args"])
    module.load_state_dict(ckpt["model"])
    module.eval()
    diff = Difficulty.from_state(ckpt["difficulty"]) if ckpt.get("difficulty") else None
    std = Standardiser.from_state(ckpt["normaliser"]) if ckpt.get("normaliser") else None
    return _Fused(path, cfg, module, ckpt["input_mean"].numpy(), ckpt["input_std"].numpy(),
                  diff, std)


def _fused_predictions(run: Path | str, data: Path | str, partition: str) -> tuple[_Fused, _Preds,
                                                                                 list[np.ndarray]]:
    from emotrace.api import predict

    f = load_fused(run)
    targets = f.config.targets
    with tempfile.TemporaryDirectory() as tmp:
        folders = []
        for r, path in enumerate(f.config.runs):
            folder = Path(tmp) / f"run{r}"
            try:
                predict(path, data, partition=partition, out=folder)
            except EmotraceError as e:
                raise EmotraceError(f"{f.path}: its input run {path} could not predict "
                                    f"{partition!r}: {e}") from None
            folders.append(folder)
        got = _gather(folders, targets, partition)
    xs = [v.astype(np.float32) for v in got.values]
    if f.difficulty is not None:
        feats = _difficulty_inputs(data, f.config.features, targets, [partition],
                                   f.standardizer)[partition]
        errs = f.difficulty.errors([feats[rid] for rid in got.ids])
        xs = [np.concatenate([x, e], axis=1) for x, e in zip(xs, errs, strict=True)]
    xs = [_normalise(x, f.mean, f.std) for x in xs]
    return f, got, predict_arrays(f.module, xs)


def predict_fused(run: Path | str, data: Path | str, *, partition: str,
                  out: Path | str) -> list[Path]:
    """``emotrace.predict`` for a fused run: every input run predicts ``partition`` of ``data``,
    then the fusion model combines them."""
    f, got, fused = _fused_predictions(run, data, partition)
    _write(Path(out), got.ids, got.timestamps, fused, f.config.targets)
    return [Path(out) / f"{rid}.csv" for rid in got.ids]


def evaluate_fused(run: Path | str, data: Path | str, *, partition: str = "devel") -> dict:
    """``emotrace.evaluate`` for a fused run (same result layout); writes
    ``RUN/eval_<partition>.json``."""
    f, got, fused = _fused_predictions(run, data, partition)
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
    per = _score(ys, fused, targets)
    if len(targets) == 1:
        result = {"target": targets[0], "partition": partition, "recordings": len(got.ids),
                  **per[targets[0]]}
    else:
        result = {"targets": per, "partition": partition, "recordings": len(got.ids)}
    write_json(f.path / f"eval_{partition}.json", result)
    return result
