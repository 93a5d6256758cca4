"""The Python API behind the command line: fit, evaluate, predict, fuse, fit_final.

Each function takes paths and typed options, returns plain dicts, and raises
:class:`~emotrace.errors.EmotraceError` for anything the user can fix. Which code fits, scores
and predicts a run is chosen from :data:`KINDS` by the run's kind
(:func:`emotrace.run.run_kind`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from emotrace.config import DataConfig, FuseConfig, RunConfig, merge
from emotrace.data.corpus import Corpus
from emotrace.data.muse import PARTITION_FILE, load_corpus
from emotrace.errors import EmotraceError
from emotrace.fileio import check_output, folder_lock, read_json, write_json
from emotrace.kinds import cv, fused, regression, segments
from emotrace.run import CONFIG, METRICS, NO_DEVEL, STATE, prepare_out, run_inputs, run_kind
from emotrace.train.loop import EpochEvent

#: run kind -> the module with its fit / evaluate / predict
KINDS: dict[str, ModuleType] = {"regression": regression, "classification": segments,
                                "fused": fused, "cv": cv}


def _kind(run: Path | str) -> str:
    if not (Path(run) / CONFIG).is_file():
        return "regression"  # load_run names what is missing
    return run_kind(run)


def fit(data: Path | str, *, out: Path | str, config: RunConfig | None = None,
        features: list[str] | None = None, targets: list[str] | None = None,
        resume: bool = False, on_event: Callable[[EpochEvent], None] | None = None,
        on_load: Callable[[int, int], None] | None = None,
        corpus: Corpus | None = None) -> dict:
    """Train a run on a MuSe-layout corpus and write a run directory.

    Either pass a full ``config`` or just ``features`` and ``targets`` (defaults for the rest).
    Every statistic (standardisation) is fitted on the train partition only; devel drives early
    stopping and the choice among seeds; test is never looked at. ``config.train.task`` picks
    the kind: per-step regression, or one class per segment; with ``config.train.cv`` a
    cross-validated regression run (subject folds over train + devel, statistics fitted per
    fold, the fold ensemble as predictor: :mod:`emotrace.kinds.cv`). Returns the content of
    ``RUN/metrics.json``.
    """
    if config is None:
        if not features or not targets:
            raise EmotraceError("train needs a config, or features and targets.")
        config = RunConfig(data=DataConfig(features=features, targets=targets))
    out = check_output(out, {"--data": data})
    kind = config.train.task
    if config.train.cv is not None:  # cross-validated: subject folds over train + devel
        cv.check_options(config)
        kind = "cv"
    with folder_lock(out):  # one writer per run folder; checked before anything is changed
        prepare_out(out, config.outcome(), resume=resume)
        return KINDS[kind].fit(data, out=out, config=config, resume=resume, corpus=corpus,
                               on_event=on_event, on_load=on_load)


def evaluate(run: Path | str, data: Path | str, *, partition: str = "devel") -> dict:
    """Score a finished run on one partition; also writes ``RUN/eval_<partition>.json``.

    Returns ``{"target", "partition", "recordings", "ccc", "ccc_per_recording", "pcc", "rmse"}``
    (binary targets add ``auroc`` and ``f1``; classification runs report ``f1_macro`` and
    ``accuracy``); with several targets, one such dict per target under ``"targets"``.
    """
    kind = _kind(run)
    if kind == "fused":
        return fused.evaluate(run, data, partition=partition, predict_input=predict)
    return KINDS[kind].evaluate(run, data, partition=partition)


def predict(run: Path | str, data: Path | str, *, partition: str, out: Path | str) -> list[Path]:
    """Write one prediction file per recording of ``partition`` to ``out`` (MuSe format:
    ``timestamp,value``; with several targets one column per target; classification runs one
    row per segment). Labels are not needed."""
    out = check_output(out, {"--data": data, "--run": run_inputs(run)})
    kind = _kind(run)
    with folder_lock(out):
        if kind == "fused":  # its input runs predict (any kind), then the fusion model
            return fused.predict(run, data, partition=partition, out=out, predict_input=predict)
        return KINDS[kind].predict(run, data, partition=partition, out=out)


def fuse(runs: list[Path | str], *, data: Path | str, out: Path | str, method: str = "rnn",
         difficulty: bool = False, config: FuseConfig | None = None,
         on_event: Callable[[EpochEvent], None] | None = None) -> dict:
    """Late fusion of finished runs into a new (fused) run; see :func:`emotrace.kinds.fused.fit`."""
    out = check_output(out, {"--data": data, "--runs": [run_inputs(r) for r in runs]})
    with folder_lock(out):
        return fused.fit(runs, data=data, out=out, method=method, difficulty=difficulty,
                         config=config, on_event=on_event)


def final_source(run: Path | str) -> tuple[RunConfig, int, int]:
    """The configuration, best epoch and best seed of a finished devel run (for ``fit_final``)."""
    run = Path(run)
    if not (run / METRICS).exists() or not (run / CONFIG).exists() or (run / STATE).exists():
        raise EmotraceError(f"{run}: not a finished run (needs {CONFIG} and {METRICS}, no "
                            f"{STATE}). Pass the --out folder of a finished `emotrace train` with a "
                            f"devel partition.")
    metrics = read_json(run / METRICS)
    if not isinstance(metrics, dict):
        raise EmotraceError(f"{run / METRICS}: not a metrics object. Pass the --out folder of a "
                            f"finished `emotrace train`.")
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
    """Retrain a chosen configuration on train + devel: the final model (the MuSe papers: "optionally
    retrain on train + devel").

    The configuration comes from ``config``, else from the devel run ``run``; the number of
    epochs from ``epochs``, else the best epoch of ``run``'s kept seed; with ``run``, the seed is
    that run's best seed. One seed is trained for exactly that many epochs: there is no held-out
    data, so no early stopping, no choice among seeds and no learning-rate halving on a devel
    plateau (the schedule of the devel run is not replayed). The standardiser is fitted on
    train + devel, the new training data. Test is still never looked at; its predictions are
    written when it exists. ``metrics.json`` has ``"devel": null`` and a ``"final"`` entry saying
    all this. Returns that metrics dict.

    ``run`` may be a cross-validated run (``--cv``): its configuration is retrained without
    folds, for the median over folds of their best epochs, with the seed most folds kept. A
    ``config`` that asks for ``--cv`` is refused (a --final run has no held-out data).
    """
    seed, run_config = None, None
    check_output(out, {"--data": data, "--from": run})
    if run is not None:
        run_config, run_epoch, run_seed = final_source(run)
        if config is None:
            config, seed = run_config, run_seed
        epochs = epochs or run_epoch
    if config is not None and config.train.cv is not None:
        if config is not run_config:
            raise EmotraceError(f"--cv with --final: a --final run has no held-out data to "
                                f"cross-validate on (--cv {config.train.cv}). Drop one of the two; "
                                f"--final --from a --cv run retrains its configuration without "
                                f"folds.")
        config = config.model_copy(deep=True)
        config.train.cv = None
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
        raise EmotraceError(f"{Path(data) / PARTITION_FILE}: no devel recording, so "
                            f"--final would train on train alone. Train without --final.")
    merged = dataclasses.replace(corpus, recordings=[
        dataclasses.replace(r, partition="train") if r.partition == "devel" else r
        for r in corpus.recordings])
    metrics = fit(data, out=out, config=cfg, on_event=on_event, corpus=merged)
    metrics["warnings"] = [w for w in metrics["warnings"] if w != NO_DEVEL]  # devel is in train
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
