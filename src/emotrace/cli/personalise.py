"""``emotrace personalise``: per-subject fine-tuning of a finished run (MuSe 2023 style)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from emotrace.cli.common import Debug, Quiet, check_partition, err, progress_bar

#: options that take several values
MULTI: tuple[str, ...] = ()


def personalise(
    run: Annotated[Path, typer.Option("--run", help="The general model (a finished run folder).")],
    data: Annotated[Path, typer.Option("--data", help="Corpus folder (with Subject ids).")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write.")],
    subject_train: Annotated[str, typer.Option(
        "--subject-train", help="Each subject's first labelled time to fine-tune on (60s, 2min).")] = "60s",
    subject_devel: Annotated[str, typer.Option(
        "--subject-devel", help="The labelled time after it, to choose among seeds.")] = "60s",
    partition: Annotated[str, typer.Option("--partition", help="Whose subjects: devel or test.")] = "devel",
    seeds: Annotated[int, typer.Option("--seeds", help="Fine-tuning seeds per subject.")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="First seed.")] = 0,
    win: Annotated[int, typer.Option("--win", help="Fine-tuning window (steps).")] = 10,
    hop: Annotated[int, typer.Option("--hop", help="Hop between windows (steps).")] = 5,
    epochs: Annotated[int, typer.Option("--epochs", help="Maximum fine-tuning epochs.")] = 20,
    patience: Annotated[int, typer.Option("--patience", help="Epochs without subject-devel gain.")] = 5,
    lr: Annotated[float, typer.Option("--lr", help="Fine-tuning learning rate.")] = 1e-3,
    threads: Annotated[int, typer.Option("--threads", help=(
        "CPU cores to use: the fine-tunings run as parallel jobs of one thread each (results "
        "do not depend on it); 0 = all."))] = 0,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Fine-tune a run per subject.

    Fine-tunes a copy of the run per subject and keeps it only where it beats the general model.
    """
    import emotrace

    check_partition(partition)
    with progress_bar(quiet) as p:
        task = p.add_task("subjects", total=None, info="") if p is not None else None

        def progress(done: int, total: int, subject: str) -> None:
            if p is not None:
                p.update(task, completed=done, total=total, info=subject)

        result = emotrace.personalise(run, data, out=out, partition=partition,
                                      subject_train=subject_train, subject_devel=subject_devel,
                                      seeds=seeds, seed=seed, win=win, hop=hop, epochs=epochs,
                                      patience=patience, lr=lr, threads=threads, progress=progress)
    for target, res in result["targets"].items():
        table = Table(title=f"{target}: CCC on the rest of each {partition} subject's recordings")
        for col in ("subject", "general", "personal", "gain", "kept", "best seed"):
            table.add_column(col)
        for s in result["subjects"]:
            row = s["targets"][target]
            table.add_row(s["subject"], f"{row['general']:.3f}", f"{row['personal']:.3f}",
                          f"{row['gain']:+.3f}", "personal" if s["personal"] else "general",
                          "" if s["best_seed"] is None else str(s["best_seed"]))
        g = res["global"]
        table.add_row("all (global)", f"{g['general']:.3f}", f"{g['personal']:.3f}",
                      f"{g['gain']:+.3f}", "", "")
        m = res["mean_subject"]
        table.add_row("mean of subjects", f"{m['general']:.3f}", f"{m['personal']:.3f}",
                      f"{m['gain']:+.3f}", "", "")
        Console().print(table)
    err.print(f"wrote {out} ({result['seconds']:.1f} s)", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(personalise)
