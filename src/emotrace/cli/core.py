"""Commands on corpora and single runs: ``data prepare``, ``data check``, ``train``,
``evaluate``, ``predict``, ``demo``."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from emotrace.cli.common import (
    Debug,
    Quiet,
    check_partition,
    epoch_progress,
    err,
    loader,
    progress_bar,
    warn,
)
from emotrace.errors import EmotraceError

#: options that take several values (``--features a b c``)
MULTI = ("--features", "--target", "--per-recording")


class Adapter(StrEnum):
    ceap360vr = "ceap360vr"
    stress_predict = "stress-predict"
    synthetic = "synthetic"



def data_prepare(
    adapter: Annotated[Adapter, typer.Argument(help="Which public dataset.")],
    out: Annotated[Path, typer.Option("--out", help="Corpus folder to write.")],
    source: Annotated[Path | None, typer.Option("--source", help="The dataset as distributed.")] = None,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Write a public dataset into the MuSe layout with its fixed split."""
    from emotrace.datasets import prepare

    with progress_bar(quiet) as p:
        summary = prepare(adapter.value, source=source, out=out,
                          progress=loader(p, f"prepare {adapter.value}"))
    err.print(f"wrote {out}: {json.dumps(summary)}", highlight=False)



def data_check(
    root: Annotated[Path, typer.Argument(help="Corpus folder (MuSe layout).")],
    strict: Annotated[bool, typer.Option("--strict", help="NaN/inf are errors.")] = False,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Validate a corpus; print a summary, or a clear error."""
    from emotrace.data.check import summarize
    from emotrace.data.muse import load_corpus

    with progress_bar(quiet) as p:
        corpus = load_corpus(root, strict=strict, progress=loader(p, "load"))
    s = summarize(corpus)
    table = Table(title=f"{root}")
    for col in ("partition", "recordings", "subjects", "steps", "labelled"):
        table.add_column(col)
    for part, row in s["partitions"].items():
        table.add_row(part, *(str(row[k]) for k in ("recordings", "subjects", "steps", "labelled")))
    Console().print(table)
    fs = Table(title="feature sets")
    for col in ("name", "dims", "zero-filled steps", "imputed cells"):
        fs.add_column(col)
    for name, row in s["features"].items():
        fs.add_row(name, str(row["dims"]), str(row["zero_filled_steps"]), str(row["imputed_cells"]))
    Console().print(fs)
    Console().print(f"targets: {', '.join(s['targets']) or 'none'}")
    warn(corpus.report.warnings())
    Console().print("[green]ok[/]")



def train(
    data: Annotated[Path, typer.Option("--data", help="Corpus folder (MuSe layout).")],
    out: Annotated[Path, typer.Option("--out", help="Run folder to write.")],
    features: Annotated[list[str] | None, typer.Option("--features", help="Feature sets.")] = None,
    target: Annotated[list[str] | None, typer.Option("--target", help="Target(s).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML config; flags override it.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="rnn, attn-rnn or gcnn-rnn.")] = None,
    cell: Annotated[str | None, typer.Option("--cell", help="gru or lstm.")] = None,
    hidden: Annotated[int | None, typer.Option("--hidden")] = None,
    layers: Annotated[int | None, typer.Option("--layers")] = None,
    bidirectional: Annotated[bool | None, typer.Option("--bidirectional/--unidirectional")] = None,
    dropout: Annotated[float | None, typer.Option("--dropout")] = None,
    heads: Annotated[int | None, typer.Option("--heads")] = None,
    channels: Annotated[int | None, typer.Option("--channels")] = None,
    kernel: Annotated[int | None, typer.Option("--kernel")] = None,
    win: Annotated[int | None, typer.Option("--win", help="Training window (steps); 0 = whole.")] = None,
    hop: Annotated[int | None, typer.Option("--hop", help="Hop between windows (steps).")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Maximum epochs.")] = None,
    lr: Annotated[float | None, typer.Option("--lr")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size")] = None,
    loss: Annotated[str | None, typer.Option("--loss", help="ccc, ccc-batch, mse or l1.")] = None,
    weight_decay: Annotated[float | None, typer.Option("--weight-decay")] = None,
    modality_dropout: Annotated[float | None, typer.Option(
        "--modality-dropout", help="Probability of zeroing a feature set per window.")] = None,
    clip: Annotated[float | None, typer.Option("--clip")] = None,
    patience: Annotated[int | None, typer.Option("--patience")] = None,
    seeds: Annotated[int | None, typer.Option("--seeds", help="How many seeds.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="First seed.")] = None,
    threads: Annotated[int | None, typer.Option("--threads")] = None,
    standardize: Annotated[bool | None, typer.Option("--standardize/--no-standardize")] = None,
    per_recording: Annotated[list[str] | None, typer.Option(
        "--per-recording", help="Feature sets to z-score within each recording first.")] = None,
    strict: Annotated[bool | None, typer.Option("--strict", help="NaN/inf are errors.")] = None,
    fusion: Annotated[str | None, typer.Option(
        "--fusion", help="early: the feature sets concatenated per step (late fusion of runs is "
        "`emotrace fuse`).")] = None,
    project: Annotated[int | None, typer.Option(
        "--project", help="Early fusion: project the concatenated features to N dims first.")] = None,
    difficulty: Annotated[bool | None, typer.Option(
        "--difficulty", help="Append each feature set's auto-encoder reconstruction error as an "
        "input channel.")] = None,
    folds: Annotated[int | None, typer.Option(
        "--folds", help="Write out-of-fold train predictions from K models cross-fitted by "
        "subject (for `emotrace fuse`).")] = None,
    task_kind: Annotated[str | None, typer.Option(
        "--task", help="regression (per step) or classification (one class per segment of a "
        "class_id target, e.g. from `emotrace classes`).")] = None,
    class_weights: Annotated[bool | None, typer.Option(
        "--class-weights", help="Classification: weight classes by inverse train frequency.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Finish an interrupted run.")] = False,
    final: Annotated[bool, typer.Option(
        "--final", help="Retrain on train + devel for a fixed number of epochs (from --from RUN's "
        "best epoch, or --epochs); no early stopping.")] = False,
    from_run: Annotated[Path | None, typer.Option(
        "--from", help="With --final: the devel run whose config, best epoch and seed to use.")] = None,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Train a sequence regressor; writes config.yaml, checkpoint.pt, metrics.json, predictions/."""
    import emotrace
    from emotrace.config import RunConfig, merge, read_yaml

    base = read_yaml(config) if config else {}
    flags = {
        "data": {"features": features or None, "targets": target or None, "win": win, "hop": hop,
                 "standardize": standardize, "strict": strict,
                 "per_recording": per_recording or None, "fusion": fusion,
                 "difficulty": difficulty},
        "model": {"name": model, "cell": cell, "hidden": hidden, "layers": layers,
                  "bidirectional": bidirectional, "dropout": dropout, "heads": heads,
                  "channels": channels, "kernel": kernel, "project": project},
        "train": {"epochs": epochs, "lr": lr, "batch_size": batch_size, "loss": loss,
                  "weight_decay": weight_decay, "clip": clip,
                  "modality_dropout": modality_dropout, "patience": patience,
                  "seeds": seeds, "seed": seed, "threads": threads, "task": task_kind,
                  "folds": folds,
                  "class_weights": class_weights},
    }
    merged = merge(base, flags)
    explicit_epochs = merged.get("train", {}).get("epochs")  # --final: before --from's config
    if from_run is not None or final:
        from emotrace.api import final_source

        if not final:
            raise EmotraceError("--from RUN goes with --final (retrain RUN's configuration on "
                                "train + devel).")
        if resume:
            raise EmotraceError("--final runs cannot be resumed; start the --final run again.")
        if from_run is not None:  # the run's config (and best seed) < --config < flags
            run_cfg, _, best_seed = final_source(from_run)
            merged = merge(merge(run_cfg.model_dump(mode="json"), {"train": {"seed": best_seed}}),
                           merged)
    if not merged.get("data", {}).get("features") or not merged["data"].get("targets"):
        raise EmotraceError("train needs --features and --target (or data.features and "
                            "data.targets in --config).")
    cfg = RunConfig.from_dict(merged, source=str(config) if config else "options")
    score = "f1" if cfg.train.task == "classification" else "ccc"
    with progress_bar(quiet) as p:
        on_event = epoch_progress(p, info=lambda e: f"loss {e.train_loss:.3f} devel {score} "
                                  f"{e.devel_ccc:.3f} best {e.best_ccc:.3f}")
        if final:
            metrics = emotrace.fit_final(data, out=out, config=cfg, run=from_run,
                                         epochs=explicit_epochs, on_event=on_event,
                                         on_load=loader(p, "load"))
        else:
            metrics = emotrace.fit(data, out=out, config=cfg, resume=resume, on_event=on_event,
                                     on_load=loader(p, "load"))
    warn(metrics["warnings"])
    if final:
        f = metrics["final"]
        err.print(f"final model on train + devel ({f['recordings']} recordings): {f['epochs']} "
                  f"epochs (from {f['epochs_from']}), seed {f['seed']}, no early stopping; "
                  f"{metrics['train_seconds']:.1f} s", highlight=False)
        return
    err.print(f"devel: {json.dumps(metrics['devel'])}  (best seed {metrics['best_seed']}, "
              f"{metrics['train_seconds']:.1f} s)", highlight=False)



def evaluate(
    run: Annotated[Path, typer.Option("--run", help="Run folder.")],
    data: Annotated[Path, typer.Option("--data", help="Corpus folder.")],
    partition: Annotated[str, typer.Option("--partition", help="devel or test.")] = "devel",
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Score a run on a partition; prints one JSON object and writes RUN/eval_<partition>.json."""
    import emotrace

    check_partition(partition)
    print(json.dumps(emotrace.evaluate(run, data, partition=partition)))



def predict(
    run: Annotated[Path, typer.Option("--run", help="Run folder.")],
    data: Annotated[Path, typer.Option("--data", help="Corpus folder.")],
    partition: Annotated[str, typer.Option("--partition")],
    out: Annotated[Path, typer.Option("--out", help="Folder for <recording_id>.csv files.")],
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Write predictions (timestamp,value) for every recording of a partition."""
    import emotrace

    check_partition(partition)
    files = emotrace.predict(run, data, partition=partition, out=out)
    err.print(f"wrote {len(files)} prediction file(s) to {out}", highlight=False)



def demo(
    out: Annotated[Path | None, typer.Option("--out", help="Keep the corpus and run here.")] = None,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Synthetic corpus → train → evaluate → results table, in well under 2 minutes."""
    from emotrace.demo import run_demo

    with progress_bar(quiet) as p:
        rows = run_demo(out, progress=p)
    table = Table(title="emotrace demo: synthetic corpus, bidirectional GRU")
    for col in ("target", "partition", "ccc", "ccc_per_recording", "pcc", "rmse"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["target"], r["partition"], *(f"{r[k]:.3f}" for k in
                      ("ccc", "ccc_per_recording", "pcc", "rmse")))
    Console().print(table)


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(no_args_is_help=True, help="Prepare and check corpora in the MuSe layout.")
    data_app.command("prepare")(data_prepare)
    data_app.command("check")(data_check)
    app.add_typer(data_app, name="data")
    for command in (train, evaluate, predict, demo):
        app.command()(command)
