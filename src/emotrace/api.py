"""The Python API behind the command line: fit, evaluate, predict.

Each function takes paths and typed options, returns plain dicts, and raises
:class:`~emotrace.errors.EmotraceError` for anything the user can fix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emotrace.config import DataConfig, RunConfig
from emotrace.data.corpus import Corpus, Recording
from emotrace.data.csvio import write_table
from emotrace.data.muse import LABELS, available, load_corpus
from emotrace.data.normalise import Standardizer
from emotrace.errors import EmotraceError
from emotrace.fileio import write_json
from emotrace.run import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    PREDICTIONS,
    STATE,
    Run,
    load_run,
    save_checkpoint,
)
from emotrace.train.metrics import evaluate as evaluate_metrics
from emotrace.train.predict import predict_arrays
from emotrace.train.trainer import EpochEvent, Split, train_seeds


def _inputs(recs: list[Recording], std: Standardizer, cfg: DataConfig) -> list[np.ndarray]:
    return [std.transform(r, cfg.features) for r in recs]


def _split(recs: list[Recording], xs: list[np.ndarray], std: Standardizer,
           cfg: DataConfig) -> Split:
    ends = np.cumsum([len(std.mean[f]) for f in cfg.features]).tolist()
    groups = list(zip([0, *ends[:-1]], ends, strict=True))
    return Split([r.id for r in recs], xs, [r.targets(cfg.targets) for r in recs], groups)


def _write_predictions(folder: Path, recs: list[Recording], preds: list[np.ndarray],
                       targets: list[str]) -> None:
    for r, p in zip(recs, preds, strict=True):
        cols: dict[str, np.ndarray] = {"timestamp": r.timestamps}
        if len(targets) == 1:
            cols["value"] = p[:, 0]
        else:
            cols.update({t: p[:, k] for k, t in enumerate(targets)})
        write_table(folder / f"{r.id}.csv", cols)


def _check_out(out: Path, resume: bool) -> None:
    if out.exists() and not out.is_dir():
        raise EmotraceError(f"{out}: exists and is not a folder. Choose another --out.")
    finished = (out / METRICS).exists() or (out / CHECKPOINT).exists()
    if finished and not (out / STATE).exists():  # train_state.pt goes last when a run finishes
        raise EmotraceError(f"{out}: already holds a finished run. Choose another --out, or delete "
                            f"the folder to retrain.")
    if (out / STATE).exists() and not resume:
        raise EmotraceError(f"{out}: holds an interrupted run. Pass --resume to finish it, or "
                            f"choose another --out.")


def _check_same_config(path: Path, config: RunConfig) -> None:
    """--resume must repeat the interrupted run's options (checked before config.yaml is
    rewritten, so a wrong attempt leaves the folder as it was)."""
    def flat(d: dict, prefix: str = "") -> dict:
        out: dict = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    old, new = flat(RunConfig.load(path).model_dump(mode="json")), flat(config.model_dump(mode="json"))
    diff = [f"{k}: {new.get(k)!r} now, {old.get(k)!r} in the run" for k in sorted(old.keys() | new.keys())
            if old.get(k) != new.get(k)]
    if diff:
        raise EmotraceError(f"{path}: the interrupted run was started with other options "
                            f"({'; '.join(diff)}). Repeat the original options with --resume, or "
                            f"choose another --out.")


def fit(data: Path | str, *, out: Path | str, config: RunConfig | None = None,
          features: list[str] | None = None, targets: list[str] | None = None,
          resume: bool = False, on_event: Callable[[EpochEvent], None] | None = None,
          on_load: Callable[[int, int], None] | None = None,
          corpus: Corpus | None = None) -> dict:
    """Train a sequence regressor on a MuSe-layout corpus and write a run directory.

    Either pass a full ``config`` or just ``features`` and ``targets`` (defaults for the rest).
    Every statistic (standardisation) is fitted on the train partition only; devel drives early
    stopping and the choice among seeds; test is never looked at. Returns the content of
    ``RUN/metrics.json``.
    """
    if config is None:
        if not features or not targets:
            raise EmotraceError("train needs a config, or features and targets.")
        config = RunConfig(data=DataConfig(features=features, targets=targets))
    out = Path(out)
    _check_out(out, resume)
    if resume and (out / STATE).exists() and (out / CONFIG).exists():
        _check_same_config(out / CONFIG, config)
    if resume and out.is_dir():  # temporary files of writes that a kill cut short
        for stale in out.rglob(".*.tmp"):
            stale.unlink(missing_ok=True)
    dc = config.data
    if corpus is None:
        corpus = load_corpus(data, features=dc.features, targets=dc.targets, strict=dc.strict,
                             progress=on_load)
    train_recs, devel_recs = corpus.partition("train"), corpus.partition("devel")
    if not train_recs:
        raise EmotraceError(f"{Path(data) / 'metadata' / 'partition.csv'}: no recording in the "
                            f"train partition. Mark some recordings as train.")
    std = Standardizer.fit(train_recs, dc.features, enabled=dc.standardize,
                          per_recording=tuple(dc.per_recording))
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / CONFIG)
    start = time.perf_counter()
    inputs = {p: _inputs(corpus.partition(p), std, dc) for p in corpus.partitions()}
    result = train_seeds(config, _split(train_recs, inputs["train"], std, dc),
                         _split(devel_recs, inputs.get("devel", []), std, dc),
                         state_path=out / STATE, resume=resume, on_event=on_event)
    best = result.best
    for part in corpus.partitions():
        recs = corpus.partition(part)
        preds = predict_arrays(result.model, inputs[part])
        _write_predictions(out / PREDICTIONS / part, recs, preds, dc.targets)
    # checkpoint.pt, then metrics.json, then removing train_state.pt mark the run finished; a
    # failure before that leaves an interrupted run that --resume completes.
    save_checkpoint(out / CHECKPOINT, config=config, model=result.model, standardizer=std,
                    feature_dims=corpus.feature_dims, optimizer=result.optimizer,
                    scheduler=result.scheduler, rng=result.rng, epoch=best.best_epoch,
                    seed=best.seed)
    single = len(dc.targets) == 1

    def per_target(m: dict) -> dict:
        return m[dc.targets[0]] if single and m else m

    metrics = {
        "target": dc.targets[0] if single else dc.targets,
        "features": dc.features,
        "devel": per_target(best.devel),
        "seeds": [{"seed": s.seed, "devel": per_target(s.devel), "best_epoch": s.best_epoch,
                   "epochs": s.epochs, "seconds": s.seconds, "history": s.history}
                  for s in result.seeds],
        "best_seed": best.seed,
        "train_seconds": sum(s.seconds for s in result.seeds),
        "wall_seconds": time.perf_counter() - start,
        "epochs": best.epochs,
        "best_epoch": best.best_epoch,
        "warnings": corpus.report.warnings(),
    }
    write_json(out / METRICS, metrics)
    (out / STATE).unlink(missing_ok=True)
    return metrics


def _run_corpus(run: Run, data: Path | str, partition: str, *, labels: bool) -> list[Recording]:
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
    recs = corpus.partition(partition)
    if not recs:
        raise EmotraceError(f"{Path(data) / 'metadata' / 'partition.csv'}: no recording in "
                            f"partition {partition!r}.")
    return recs


def evaluate(run: Path | str, data: Path | str, *, partition: str = "devel") -> dict:
    """Score a finished run on one partition; also writes ``RUN/eval_<partition>.json``.

    Returns ``{"target", "partition", "recordings", "ccc", "ccc_per_recording", "pcc", "rmse"}``
    (binary targets add ``auroc`` and ``f1``); with several targets, one such dict per target
    under ``"targets"``.
    """
    r = load_run(run)
    dc = r.config.data
    recs = _run_corpus(r, data, partition, labels=True)
    missing = [x.id for x in recs if not x.labels]
    if missing:
        raise EmotraceError(f"{Path(data) / 'label_segments'}: partition {partition!r} has no "
                            f"labels for {len(missing)} recording(s) (e.g. {missing[0]!r}), so it "
                            f"cannot be scored. Use `emotrace predict` for unlabelled data.")
    preds = predict_arrays(r.model, _inputs(recs, r.standardizer, dc))
    per = {t: evaluate_metrics([x.labels[t] for x in recs], [p[:, k] for p in preds])
           for k, t in enumerate(dc.targets)}
    if len(dc.targets) == 1:
        result = {"target": dc.targets[0], "partition": partition, "recordings": len(recs),
                  **per[dc.targets[0]]}
    else:
        result = {"targets": per, "partition": partition, "recordings": len(recs)}
    write_json(r.path / f"eval_{partition}.json", result)
    return result


def predict(run: Path | str, data: Path | str, *, partition: str, out: Path | str) -> list[Path]:
    """Write one prediction file per recording of ``partition`` to ``out`` (MuSe format:
    ``timestamp,value``; with several targets one column per target). Labels are not needed."""
    r = load_run(run)
    dc = r.config.data
    recs = _run_corpus(r, data, partition, labels=False)
    preds = predict_arrays(r.model, _inputs(recs, r.standardizer, dc))
    _write_predictions(Path(out), recs, preds, dc.targets)
    return [Path(out) / f"{x.id}.csv" for x in recs]
