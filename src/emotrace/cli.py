"""Command line: a thin typer layer over the Python API (one command per verb).

Bad input ends with exit code 2 and a one-paragraph message; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from emotrace.errors import EmotraceError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Time-continuous, multimodal emotion recognition.")
data_app = typer.Typer(no_args_is_help=True, help="Prepare and check corpora in the MuSe layout.")
app.add_typer(data_app, name="data")
err = Console(stderr=True)

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show Python tracebacks on errors.")]
MULTI = ("--features", "--target", "--per-recording")


class Adapter(StrEnum):
    ceap360vr = "ceap360vr"
    stress_predict = "stress-predict"
    synthetic = "synthetic"


@contextmanager
def progress_bar(quiet: bool):
    """A rich progress bar on stderr, or a do-nothing stand-in when quiet."""
    if quiet:
        yield None
        return
    cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn()]
    with Progress(*cols, console=err, transient=False) as p:
        yield p


def _loader(p, label: str):
    if p is None:
        return None
    task = p.add_task(label, total=None, info="")

    def update(done: int, total: int) -> None:
        p.update(task, completed=done, total=total)

    return update


def _warn(lines: list[str]) -> None:
    for line in lines:
        err.print(f"[yellow]warning:[/] {line}", highlight=False)


@data_app.command("prepare")
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
                          progress=_loader(p, f"prepare {adapter.value}"))
    err.print(f"wrote {out}: {json.dumps(summary)}", highlight=False)


@data_app.command("check")
def data_check(
    root: Annotated[Path, typer.Argument(help="Corpus folder (MuSe layout).")],
    strict: Annotated[bool, typer.Option("--strict", help="NaN/inf are errors.")] = False,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Validate a corpus; print a summary, or a clear error."""
    from emotrace.data.check import summarize
    from emotrace.data.muse import load_corpus

    with progress_bar(quiet) as p:
        corpus = load_corpus(root, strict=strict, progress=_loader(p, "load"))
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
    _warn(corpus.report.warnings())
    Console().print("[green]ok[/]")


@app.command()
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
    resume: Annotated[bool, typer.Option("--resume", help="Finish an interrupted run.")] = False,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Train a sequence regressor; writes config.yaml, checkpoint.pt, metrics.json, predictions/."""
    import emotrace
    from emotrace.config import RunConfig, merge, read_yaml

    base = read_yaml(config) if config else {}
    flags = {
        "data": {"features": features or None, "targets": target or None, "win": win, "hop": hop,
                 "standardize": standardize, "strict": strict,
                 "per_recording": per_recording or None},
        "model": {"name": model, "cell": cell, "hidden": hidden, "layers": layers,
                  "bidirectional": bidirectional, "dropout": dropout, "heads": heads,
                  "channels": channels, "kernel": kernel},
        "train": {"epochs": epochs, "lr": lr, "batch_size": batch_size, "loss": loss,
                  "weight_decay": weight_decay, "clip": clip,
                  "modality_dropout": modality_dropout, "patience": patience,
                  "seeds": seeds, "seed": seed, "threads": threads},
    }
    merged = merge(base, flags)
    if not merged.get("data", {}).get("features") or not merged["data"].get("targets"):
        raise EmotraceError("train needs --features and --target (or data.features and "
                            "data.targets in --config).")
    cfg = RunConfig.from_dict(merged, source=str(config) if config else "options")
    with progress_bar(quiet) as p:
        task = None

        def on_event(e) -> None:
            nonlocal task
            if p is None:
                return
            desc = f"seed {e.seed} ({e.seed_index + 1}/{e.n_seeds})"
            if task is None or p.tasks[task].description != desc:
                task = p.add_task(desc, total=e.max_epochs, info="")
            p.update(task, completed=e.epoch, info=f"loss {e.train_loss:.3f} devel ccc "
                     f"{e.devel_ccc:.3f} best {e.best_ccc:.3f}")

        metrics = emotrace.fit(data, out=out, config=cfg, resume=resume, on_event=on_event,
                                 on_load=_loader(p, "load"))
    _warn(metrics["warnings"])
    err.print(f"devel: {json.dumps(metrics['devel'])}  (best seed {metrics['best_seed']}, "
              f"{metrics['train_seconds']:.1f} s)", highlight=False)


@app.command()
def evaluate(
    run: Annotated[Path, typer.Option("--run", help="Run folder.")],
    data: Annotated[Path, typer.Option("--data", help="Corpus folder.")],
    partition: Annotated[str, typer.Option("--partition", help="devel or test.")] = "devel",
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Score a run on a partition; prints one JSON object and writes RUN/eval_<partition>.json."""
    import emotrace

    _partition(partition)
    print(json.dumps(emotrace.evaluate(run, data, partition=partition)))


@app.command()
def predict(
    run: Annotated[Path, typer.Option("--run", help="Run folder.")],
    data: Annotated[Path, typer.Option("--data", help="Corpus folder.")],
    partition: Annotated[str, typer.Option("--partition")],
    out: Annotated[Path, typer.Option("--out", help="Folder for <recording_id>.csv files.")],
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Write predictions (timestamp,value) for every recording of a partition."""
    import emotrace

    _partition(partition)
    files = emotrace.predict(run, data, partition=partition, out=out)
    err.print(f"wrote {len(files)} prediction file(s) to {out}", highlight=False)


@app.command()
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


# ---------------------------------------------------------------------------------------------
# gold standards from several raters (emotrace.labels): `emotrace gold ...`, `emotrace gold agreement`

gold_app = typer.Typer(invoke_without_command=True, no_args_is_help=True,
                       help="Gold standards from several raters (mean, EWE, RAAW, DBA); without a "
                            "subcommand, fuse RAW/<dimension>/*.csv into ROOT/label_segments/.")
app.add_typer(gold_app, name="gold")


class GoldMethod(StrEnum):
    mean = "mean"
    ewe = "ewe"
    raaw = "raaw"
    dba = "dba"


class Standardize(StrEnum):
    none = "none"
    per_recording = "per-recording"
    all = "all"


GoldInput = Annotated[Path | None, typer.Option(
    "--input", help="RAW folder: RAW/<dimension>/<id>.csv with timestamp (s), one column per rater.")]
GoldDimension = Annotated[str | None, typer.Option("--dimension", help="e.g. arousal or valence.")]
GoldTrim = Annotated[bool, typer.Option(
    "--trim", help="Cut each recording to the rows where every rater has a value.")]


@gold_app.callback()
def gold(
    ctx: typer.Context,
    input: GoldInput = None,
    dimension: GoldDimension = None,
    out: Annotated[Path | None, typer.Option("--out", help="Corpus folder (MuSe layout) to write.")] = None,
    method: Annotated[GoldMethod, typer.Option("--method")] = GoldMethod.ewe,
    standardize: Annotated[Standardize, typer.Option(
        "--standardize", help="z-score each rater per recording, or over all its recordings.")]
        = Standardize.none,
    pre_smooth: Annotated[str | None, typer.Option(
        "--pre-smooth", help="Per rater: savgol:W[:ORDER], mean:W or W (savgol).")] = None,
    post_smooth: Annotated[str | None, typer.Option(
        "--post-smooth", help="Gold standard: W (moving average), mean:W or savgol:W[:ORDER].")] = None,
    max_lag: Annotated[float, typer.Option("--max-lag", help="RAAW/DBA: largest lag (s).")] = 4.0,
    warp: Annotated[float, typer.Option("--warp", help="RAAW: DTW band (s); 0 = lags only.")] = 1.0,
    eda: Annotated[Path | None, typer.Option(
        "--replace-weakest-with", help="EDA folder (<id>.csv: timestamp s, value).")] = None,
    eda_smooth: Annotated[int, typer.Option("--eda-smooth", help="EDA Savitzky-Golay window.")] = 26,
    trim: GoldTrim = False,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Fuse raters into ROOT/label_segments/<dimension>/ and ROOT/metadata/gold_<dimension>.json."""
    if ctx.invoked_subcommand is not None:
        return
    from emotrace.labels import gold_standard

    missing = [o for o, v in (("--input", input), ("--dimension", dimension), ("--out", out))
               if v is None]
    if missing:
        raise EmotraceError(f"gold needs {', '.join(missing)} (see emotrace gold --help).")
    with progress_bar(quiet) as p:
        report = gold_standard(input, dimension=dimension, out=out, method=method.value,
                               standardize=standardize.value, pre_smooth=pre_smooth,
                               post_smooth=post_smooth, max_lag_s=max_lag, warp_s=warp, eda=eda,
                               eda_smooth=eda_smooth, trim=trim, progress=_loader(p, "gold"))
    for line in report["warnings"]:
        err.print(f"[yellow]warning:[/] {line}", highlight=False, soft_wrap=True)
    a = report["agreement"]
    err.print(f"wrote {len(report['recordings'])} gold standard(s) to "
              f"{out / 'label_segments' / dimension}; agreement (pairwise Pearson) "
              f"{a['pearson']['mean']:.3f} ± {a['pearson']['std']:.3f}; report "
              f"{out / 'metadata' / f'gold_{dimension}.json'}", highlight=False, soft_wrap=True)


@gold_app.command("agreement")
def gold_agreement(
    input: GoldInput = None,
    dimension: GoldDimension = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    trim: GoldTrim = False,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Inter-rater agreement per recording and overall (mean ± std of pairwise Pearson and CCC)."""
    from emotrace.labels import agreement_report

    if input is None or dimension is None:
        raise EmotraceError("gold agreement needs --input and --dimension.")
    with progress_bar(quiet or as_json) as p:
        rep = agreement_report(input, dimension=dimension, trim=trim, progress=_loader(p, "read"))
    if as_json:
        print(json.dumps(rep))
        return
    table = Table(title=f"{input / dimension}: inter-rater agreement")
    for col in ("recording", "raters", "pearson", "ccc", "alpha", "EWE weights"):
        table.add_column(col)
    for rid, r in [*rep["recordings"].items(), ("overall", rep["overall"])]:
        w = " ".join(f"{k}:{v:.2f}" for k, v in r.get("ewe_weights", {}).items())
        alpha = r.get("krippendorff_alpha")
        table.add_row(rid, str(r.get("raters", f"{r['pairs']} pairs")),
                      f"{r['pearson']['mean']:.3f} ± {r['pearson']['std']:.3f}",
                      f"{r['ccc']['mean']:.3f} ± {r['ccc']['std']:.3f}",
                      "" if alpha is None else f"{alpha:.3f}", w)
    Console().print(table)


# end of the gold block
# ---------------------------------------------------------------------------------------------


def _partition(name: str) -> None:
    if name not in ("train", "devel", "test"):
        raise EmotraceError(f"--partition {name!r}: unknown partition. Use train, devel or test.")


def expand_multi(argv: list[str], names: tuple[str, ...] = MULTI) -> list[str]:
    """Let ``--features a b c`` mean ``--features a --features b --features c``.

    >>> expand_multi(["train", "--features", "a", "b", "--out", "r"])
    ['train', '--features', 'a', '--features', 'b', '--out', 'r']
    """
    out: list[str] = []
    current = None
    for tok in argv:
        if tok.startswith("-"):
            current = tok if tok in names else None
            out.append(tok)
        elif current is not None and out[-1] != current:
            out.extend([current, tok])
        else:
            out.append(tok)
    return out


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app, turns :class:`EmotraceError` (and an ``OSError`` that names a
    file, e.g. permission denied) into exit code 2.

    Usage errors (unknown option, bad value) are reported by typer itself, also with exit code 2.
    """
    args = expand_multi(list(sys.argv[1:] if argv is None else argv))
    debug = "--debug" in args
    try:
        app(args=args, prog_name="emotrace")
    except EmotraceError as e:
        if debug:
            raise
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as e:
        if debug:
            raise
        if e.filename is None:
            _internal(e)
        # a path the user gave cannot be read or written
        err.print(f"[bold red]error:[/] {e.filename}: {e.strerror or e}. Check the path and its "
                  f"permissions.", highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as e:  # noqa: BLE001
        if debug:
            raise
        _internal(e)


def _internal(e: Exception) -> None:
    err.print(f"[bold red]internal error:[/] {type(e).__name__}: {e}. Rerun with --debug for "
              f"the traceback, and please report it.", highlight=False, soft_wrap=True)
    sys.exit(1)
