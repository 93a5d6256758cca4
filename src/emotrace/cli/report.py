"""``emotrace report``: figures and a self-contained HTML page for one or more runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emotrace.cli.common import Debug, Quiet, check_partition, err, loader, progress_bar, warn

MULTI: tuple[str, ...] = ()


def report(
    runs: Annotated[list[Path], typer.Argument(help="Run folders to report on and compare.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for report.html and the PNGs.")],
    data: Annotated[Path | None, typer.Option(
        "--data", help="The corpus the runs were trained on (gold traces for plots and metrics).")] = None,
    partition: Annotated[str, typer.Option("--partition", help="train, devel or test.")] = "devel",
    max_recordings: Annotated[int, typer.Option(
        "--max-recordings", help="Recordings shown in the trace plots per run and target.")] = 4,
    tensorboard: Annotated[bool | None, typer.Option(
        "--tensorboard/--no-tensorboard",
        help="TensorBoard scalars of the training curves in OUT/tensorboard (default: when installed).",
        show_default=False)] = None,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """An HTML report of one or more runs.

    Per-recording traces, scatter, training curves, metrics table and run comparison.
    """
    from emotrace.report import report as make_report
    from emotrace.report import tensorboard as tb

    check_partition(partition)
    if tensorboard is None and not tb.available():
        warn(['no TensorBoard scalars: pip install "emotrace[tensorboard]" to get them'])
    with progress_bar(quiet) as p:
        path = make_report(runs, out=out, data=data, partition=partition,
                           max_recordings=max_recordings, tensorboard=tensorboard,
                           progress=loader(p, "report"))
    err.print(f"wrote {path}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
