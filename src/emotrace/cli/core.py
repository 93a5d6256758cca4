"""Commands on corpora and single runs: ``data prepare``, ``data check``, ``train``,
``evaluate``, ``predict``, ``demo``."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from emotrace.cli.common import (
    Debug,
    Json,
    Quiet,
    check_partition,
    devel_of,
    epoch_info,
    epoch_progress,
    err,
    loader,
    print_metrics,
    progress_bar,
    stdout_is_terminal,
    warn,
)
from emotrace.cli.options import run_config, to_config, with_config_flags
from emotrace.errors import EmotraceError
from emotrace.fileio import check_output

if TYPE_CHECKING:
    from emotrace.config import RunConfig

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
    err.print(f"wrote {out}: {json.dumps(summary)}", highlight=False, soft_wrap=True)



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



@with_config_flags(after="config")
def train(
    data: Annotated[Path, typer.Option("--data", help="Corpus folder (MuSe layout).")],
    out: Annotated[Path, typer.Option("--out", help="Run folder to write.")],
    config: Annotated[Path | None, typer.Option(
        "--config", help="YAML config (data:, model:, train:); the flags below override it.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Finish an interrupted run.")] = False,
    final: Annotated[bool, typer.Option(
        "--final", help="Retrain on train + devel for a fixed number of epochs (from --from RUN's "
        "best epoch, or --epochs); no early stopping.")] = False,
    from_run: Annotated[Path | None, typer.Option(
        "--from", help="With --final: the devel run whose config, best epoch and seed to use.")] = None,
    as_json: Json = False,
    quiet: Quiet = False, debug: Debug = False,
    **flags,
) -> None:
    """Train a sequence model into a run folder.

    Writes config.yaml, checkpoint.pt, metrics.json and predictions/. Options left out take
    the --config file's values, else the defaults shown.
    """
    import emotrace

    if not resume:  # a new run writes OUT/config.yaml: never over the --config file given
        check_output(out, {"--config": config})
    cfg, explicit_epochs = train_config(config, flags, final=final, from_run=from_run,
                                        resume=resume)
    score = "f1" if cfg.train.task == "classification" else "ccc"
    try:
        with progress_bar(quiet) as p:
            on_event = epoch_progress(p, info=lambda e: epoch_info(e, score))
            if final:
                metrics = emotrace.fit_final(data, out=out, config=cfg, run=from_run,
                                             epochs=explicit_epochs, on_event=on_event,
                                             on_load=loader(p, "load"))
            else:
                metrics = emotrace.fit(data, out=out, config=cfg, resume=resume,
                                       on_event=on_event, on_load=loader(p, "load"))
    except KeyboardInterrupt:
        err.print(interrupted(out, [cfg.train.seed + i for i in range(cfg.train.seeds)]),
                  highlight=False, soft_wrap=True)
        raise
    warn(metrics["warnings"])
    print_train_result(metrics, final=final, as_json=as_json)


def interrupted(out: Path, seeds: list[int]) -> str:
    """One line for Ctrl-C: where the run stands and the command that continues it."""
    import shlex

    from emotrace.cli.common import INVOCATION
    from emotrace.run import STATE
    from emotrace.train.loop import interrupted_progress

    start = shlex.join(["emotrace", *[a for a in INVOCATION if a != "--resume"]])
    again = f"{start} --resume"
    if not (out / STATE).exists():
        return f"interrupted before training started; nothing to resume. Start again: {start}"
    folds = sorted((d for d in (out / "folds").glob("*") if d.name.isdigit()),
                   key=lambda d: int(d.name)) if (out / "folds").is_dir() else []
    if folds:  # a --cv run: every fold keeps its own seeds
        parts = []
        for d in folds:
            finished, epochs = interrupted_progress(d / STATE, seeds)
            if len(finished) == len(seeds):
                parts.append(f"fold {d.name} done")
            elif finished or epochs:
                parts.append(f"fold {d.name}: " + ", ".join(
                    [f"seed {s} done" for s in finished] +
                    [f"seed {s} at epoch {n}" for s, n in sorted(epochs.items())]))
        where = "; ".join(parts) or "no epoch done"
        return f"interrupted: {out} keeps {where}. Continue with: {again}"
    finished, epochs = interrupted_progress(out / STATE, seeds)
    where = ", ".join([f"seed {s} done" for s in finished] +
                      [f"seed {s} at epoch {n}" for s, n in sorted(epochs.items())]) or "no epoch done"
    return f"interrupted: {out} keeps {where}. Continue with: {again}"


def train_config(config: Path | None, flags: dict, *, final: bool, from_run: Path | None,
                 resume: bool) -> tuple[RunConfig, int | None]:
    """The run's config from ``--config``, the flags and (``--final --from RUN``) RUN's config,
    and the ``--epochs`` asked for before RUN's config was merged in (for ``--final``)."""
    from emotrace.config import merge, read_yaml

    base = read_yaml(config) if config else {}
    merged = merge(base, to_config(flags))
    explicit_epochs = merged.get("train", {}).get("epochs")  # --final: before --from's config
    if from_run is not None or final:
        from emotrace.api import final_source

        if not final:
            raise EmotraceError("--from RUN goes with --final (retrain RUN's configuration on "
                                "train + devel).")
        if resume:
            raise EmotraceError("--final runs cannot be resumed; start the --final run again.")
        if merged.get("train", {}).get("cv") is not None:
            raise EmotraceError(f"--cv with --final: a --final run has no held-out data to "
                                f"cross-validate on (--cv {merged['train']['cv']}). Drop one of "
                                f"the two; --final --from a --cv run retrains its configuration "
                                f"without folds.")
        if from_run is not None:  # the run's config (and best seed) < --config < flags
            run_cfg, _, best_seed = final_source(from_run)
            run_dict = run_cfg.model_dump(mode="json")
            run_dict["train"]["cv"] = None  # a --cv run's configuration, retrained without folds
            merged = merge(merge(run_dict, {"train": {"seed": best_seed}}), merged)
    if not merged.get("data", {}).get("features") or not merged["data"].get("targets"):
        raise EmotraceError("train needs --features and --target (or data.features and "
                            "data.targets in --config).")
    cfg = run_config(merged, source=str(config) if config else "options")
    return cfg, explicit_epochs


def print_train_result(metrics: dict, *, final: bool, as_json: bool) -> None:
    """The devel metrics: a table on a terminal, else (and with --json) the JSON line as before;
    ``--json`` also prints the JSON object alone on stdout."""
    if final:
        f = metrics["final"]
        err.print(f"final model on train + devel ({f['recordings']} recordings): {f['epochs']} "
                  f"epochs (from {f['epochs_from']}), seed {f['seed']}, no early stopping; "
                  f"{metrics['train_seconds']:.1f} s", highlight=False)
        return
    where = f"(best seed {metrics['best_seed']}, {metrics['train_seconds']:.1f} s)"
    if metrics.get("cv"):  # --cv: devel holds the out-of-fold scores of train + devel
        where = f"(out-of-fold, train + devel; {cv_spread(metrics['cv'])}; " \
                f"{metrics['train_seconds']:.1f} s)"
    if as_json:
        print(json.dumps(metrics["devel"]))
    if as_json or not stdout_is_terminal():
        err.print(f"devel: {json.dumps(metrics['devel'])}  {where}", highlight=False,
                  soft_wrap=True)
        return
    print_metrics(devel_of(metrics), title=f"devel {where}", as_json=False)


def cv_spread(cv: dict) -> str:
    """The fold CCCs of a --cv run as ``K folds: CCC mean ± std`` (per target when several).

    >>> cv_spread({"k": 5, "mean": {"ccc": 0.41}, "std": {"ccc": 0.08}})
    '5 folds: CCC 0.410 ± 0.080'
    """
    mean, std = cv["mean"], cv["std"]
    if "ccc" in mean:
        return f"{cv['k']} folds: CCC {mean['ccc']:.3f} ± {std['ccc']:.3f}"
    return f"{cv['k']} folds: " + ", ".join(f"{t} CCC {mean[t]['ccc']:.3f} ± {std[t]['ccc']:.3f}"
                                            for t in mean)


def evaluate(
    run: Annotated[Path, typer.Option("--run", help="Run folder.")],
    data: Annotated[Path, typer.Option("--data", help="Corpus folder.")],
    partition: Annotated[str, typer.Option("--partition", help="train, devel or test.")] = "devel",
    as_json: Json = False,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Score a run on a partition.

    Prints its metrics (one JSON object when piped or with --json) and writes
    RUN/eval_<partition>.json.
    """
    import emotrace

    check_partition(partition)
    result = emotrace.evaluate(run, data, partition=partition)
    print_metrics(result, title=f"{run} on {partition} ({result.get('recordings', '?')} "
                  f"recordings; JSON in {run / f'eval_{partition}.json'})", as_json=as_json)



def predict(
    run: Annotated[Path, typer.Option("--run", help="Run folder.")],
    data: Annotated[Path, typer.Option("--data", help="Corpus folder.")],
    partition: Annotated[str, typer.Option("--partition", help="train, devel or test.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for <recording_id>.csv files.")],
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Write a run's predictions for a partition.

    One <recording_id>.csv (timestamp,value) per recording.
    """
    import emotrace

    check_partition(partition)
    if out.exists() and not out.is_dir():
        raise EmotraceError(f"--out {out}: is a file, but predict writes one <recording_id>.csv "
                            f"per recording into a folder. Pass a folder (it is created when "
                            f"missing), or move the file away.")
    files = emotrace.predict(run, data, partition=partition, out=out)
    err.print(f"wrote {len(files)} prediction file(s) to {out}", highlight=False)



def demo(
    out: Annotated[Path | None, typer.Option("--out", help="Keep the corpus and run here.")] = None,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Train and evaluate on a synthetic corpus (under 2 minutes).

    Synthetic corpus → train → evaluate → results table.
    """
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
