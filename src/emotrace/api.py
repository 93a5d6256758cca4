"""The Python API behind the command line: fit, evaluate, predict.

Each function takes paths and typed options, returns plain dicts, and raises
:class:`~emotrace.errors.EmotraceError` for anything the user can fix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emotrace.config import DataConfig, RunConfig, merge
from emotrace.data.corpus import Corpus, Recording
from emotrace.data.csvio import write_table
from emotrace.data.muse import LABELS, available, load_corpus
from emotrace.data.standardise import Standardiser
from emotrace.errors import EmotraceError
from emotrace.fileio import write_json
from emotrace.metrics import trace_metrics
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
from emotrace.train.predict import predict_arrays
from emotrace.train.trainer import EpochEvent, Split, train_seeds


def _inputs(recs: list[Recording], std: Standardiser, cfg: DataConfig,
            difficulty=None) -> list[np.ndarray]:
    xs = [std.transform(r, cfg.features) for r in recs]
    return difficulty.append(xs) if difficulty is not None else xs  # --difficulty channels


def _split(recs: list[Recording], xs: list[np.ndarray], std: Standardiser,
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
    if config.train.task == "classification":  # segment-level classes (emotrace.classification)
        from emotrace.classification import fit_classifier

        return fit_classifier(data, out=out, config=config, corpus=corpus, on_event=on_event,
                              on_load=on_load)
    if corpus is None:
        corpus = load_corpus(data, features=dc.features, targets=dc.targets, strict=dc.strict,
                             progress=on_load)
    class_targets = [t for t in dc.targets if any(t in r.class_segments for r in corpus.recordings)]
    if class_targets:
        raise EmotraceError(f"{Path(data) / LABELS / class_targets[0]}: target {class_targets[0]!r} "
                            f"holds class ids per segment (class_id). Train it with --task "
                            f"classification.")
    train_recs, devel_recs = corpus.partition("train"), corpus.partition("devel")
    if not train_recs:
        raise EmotraceError(f"{Path(data) / 'metadata' / 'partition.csv'}: no recording in the "
                            f"train partition. Mark some recordings as train.")
    std = Standardiser.fit(train_recs, dc.features, enabled=dc.standardize,
                          per_recording=tuple(dc.per_recording))
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / CONFIG)
    start = time.perf_counter()
    inputs = {p: _inputs(corpus.partition(p), std, dc) for p in corpus.partitions()}
    difficulty, difficulty_seconds = None, 0.0
    if dc.difficulty:  # one auto-encoder per feature set, fitted on train (emotrace.fusion)
        from emotrace.fusion.difficulty import Difficulty

        groups = _split(train_recs, inputs["train"], std, dc).groups
        difficulty = Difficulty.fit(inputs["train"], groups, dc.features, cell=config.model.cell,
                                    bidirectional=config.model.bidirectional, seed=config.train.seed)
        inputs = {p: difficulty.append(xs) for p, xs in inputs.items()}
        difficulty_seconds = time.perf_counter() - start
    train_split = _split(train_recs, inputs["train"], std, dc)
    devel_split = _split(devel_recs, inputs.get("devel", []), std, dc)
    result = train_seeds(config, train_split, devel_split,
                         state_path=out / STATE, resume=resume, on_event=on_event)
    best = result.best
    for part in corpus.partitions():
        recs = corpus.partition(part)
        preds = predict_arrays(result.model, inputs[part])
        _write_predictions(out / PREDICTIONS / part, recs, preds, dc.targets)
    folds = None
    if config.train.folds:  # out-of-fold train predictions replace the in-sample ones
        from emotrace.fusion.folds import out_of_fold

        oof, folds = out_of_fold(config, train_split, devel_split, [r.subject for r in train_recs],
                                 k=config.train.folds, seed=best.seed, on_event=on_event)
        _write_predictions(out / PREDICTIONS / "train", train_recs, oof, dc.targets)
    # checkpoint.pt, then metrics.json, then removing train_state.pt mark the run finished; a
    # failure before that leaves an interrupted run that --resume completes.
    save_checkpoint(out / CHECKPOINT, config=config, model=result.model, standardizer=std,
                    feature_dims=corpus.feature_dims, optimizer=result.optimizer,
                    scheduler=result.scheduler, rng=result.rng, epoch=best.best_epoch,
                    seed=best.seed, difficulty=difficulty.state() if difficulty else None)
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
        "train_predictions": "out-of-fold" if folds else "in-sample",
    }
    if difficulty is not None:
        metrics["difficulty_seconds"] = difficulty_seconds
    if folds:
        metrics["folds"] = folds
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
    return corpus.partition(partition)  # not empty: load_corpus refuses an empty partition


def evaluate(run: Path | str, data: Path | str, *, partition: str = "devel") -> dict:
    """Score a finished run on one partition; also writes ``RUN/eval_<partition>.json``.

    Returns ``{"target", "partition", "recordings", "ccc", "ccc_per_recording", "pcc", "rmse"}``
    (binary targets add ``auroc`` and ``f1``); with several targets, one such dict per target
    under ``"targets"``.
    """
    from emotrace.fusion.late import evaluate_fused, is_fused

    if is_fused(run):  # a run of `emotrace fuse`
        return evaluate_fused(run, data, partition=partition)
    r = load_run(run)
    dc = r.config.data
    recs = _run_corpus(r, data, partition, labels=True)
    missing = [x.id for x in recs if not x.labels]
    if missing:
        raise EmotraceError(f"{Path(data) / 'label_segments'}: partition {partition!r} has no "
                            f"labels for {len(missing)} recording(s) (e.g. {missing[0]!r}), so it "
                            f"cannot be scored. Use `emotrace predict` for unlabelled data.")
    if r.config.train.task == "classification":
        from emotrace.classification import evaluate_classifier

        result = evaluate_classifier(r, recs, data=data, partition=partition)
        write_json(r.path / f"eval_{partition}.json", result)
        return result
    preds = predict_arrays(r.model, _inputs(recs, r.standardizer, dc, r.difficulty))
    per = {t: trace_metrics([x.labels[t] for x in recs], [p[:, k] for p in preds])
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
    from emotrace.fusion.late import is_fused, predict_fused

    if is_fused(run):  # a run of `emotrace fuse`: its input runs predict, then the fusion model
        return predict_fused(run, data, partition=partition, out=out)
    r = load_run(run)
    dc = r.config.data
    recs = _run_corpus(r, data, partition, labels=False)
    if r.config.train.task == "classification":
        from emotrace.classification import predict_classifier

        return predict_classifier(r, recs, out=out)
    preds = predict_arrays(r.model, _inputs(recs, r.standardizer, dc, r.difficulty))
    _write_predictions(Path(out), recs, preds, dc.targets)
    return [Path(out) / f"{x.id}.csv" for x in recs]


def final_source(run: Path | str) -> tuple[RunConfig, int, int]:
    """The configuration, best epoch and best seed of a finished devel run (for ``fit_final``)."""
    import json

    run = Path(run)
    if not (run / METRICS).exists() or not (run / CONFIG).exists() or (run / STATE).exists():
        raise EmotraceError(f"{run}: not a finished run (needs {CONFIG} and {METRICS}, no "
                            f"{STATE}). Pass the --out folder of a finished `emotrace train` with a "
                            f"devel partition.")
    metrics = json.loads((run / METRICS).read_text())
    if metrics.get("final"):
        raise EmotraceError(f"{run}: is itself a --final run (no devel data, so no best epoch). "
                            f"Pass the devel run it was made from.")
    epoch = metrics.get("best_epoch")
    if not epoch:
        raise EmotraceError(f"{run / METRICS}: no best_epoch (the run had no devel data). Pass a "
                            f"run trained with a devel partition, or give --epochs.")
    return RunConfig.load(run / CONFIG), int(epoch), int(metrics.get("best_seed", 0))


def fit_final(data: Path | str, *, out: Path | str, run: Path | str | None = None,
              config: RunConfig | None = None, epochs: int | None = None,
              on_event: Callable[[EpochEvent], None] | None = None,
              on_load: Callable[[int, int], None] | None = None) -> dict:
    """Retrain a chosen configuration on train + devel: the final model (DOMAIN: "optionally
    retrain on train + devel").

    The configuration comes from ``config``, else from the devel run ``run``; the number of
    epochs from ``epochs``, else the best epoch of ``run``'s kept seed; with ``run``, the seed is
    that run's best seed. One seed is trained for exactly that many epochs: there is no held-out
    data, so no early stopping, no choice among seeds and no learning-rate halving on a devel
    plateau (the schedule of the devel run is not replayed). The standardiser is fitted on
    train + devel, the new training data. Test is still never looked at; its predictions are
    written when it exists. ``metrics.json`` has ``"devel": null`` and a ``"final"`` entry saying
    all this. Returns that metrics dict.
    """
    import dataclasses

    seed = None
    if run is not None:
        run_config, run_epoch, run_seed = final_source(run)
        if config is None:
            config, seed = run_config, run_seed
        epochs = epochs or run_epoch
    if config is None or not epochs:
        raise EmotraceError("--final needs --from RUN (a finished devel run: its config and best "
                            "epoch are used) or a configuration with an explicit --epochs N.")
    train = {"epochs": int(epochs), "seeds": 1}
    if seed is not None:
        train["seed"] = seed
    cfg = RunConfig.from_dict(merge(config.model_dump(mode="json"), {"train": train}),
                              source="--final")
    dc = cfg.data
    corpus = load_corpus(data, features=dc.features, targets=dc.targets, strict=dc.strict,
                         progress=on_load)
    devel = corpus.partition("devel")
    if not devel:
        raise EmotraceError(f"{Path(data) / 'metadata' / 'partition.csv'}: no devel recording, so "
                            f"--final would train on train alone. Train without --final.")
    merged = dataclasses.replace(corpus, recordings=[
        dataclasses.replace(r, partition="train") if r.partition == "devel" else r
        for r in corpus.recordings])
    metrics = fit(data, out=out, config=cfg, on_event=on_event, corpus=merged)
    metrics["devel"] = None
    metrics["final"] = {
        "trained_on": ["train", "devel"], "recordings": len(merged.partition("train")),
        "devel_recordings": len(devel), "epochs": int(epochs),
        "epochs_from": str(run) if run is not None else "--epochs", "seed": cfg.train.seed,
        "early_stopping": False,
        "note": "final model: trained on train + devel for a fixed number of epochs; there is "
                "no held-out data, so no early stopping, no seed selection and no devel metrics. "
                "Score it on test only.",
    }
    write_json(Path(out) / METRICS, metrics)
    return metrics
