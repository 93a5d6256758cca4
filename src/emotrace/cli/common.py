"""What every command module shares: the stderr console, the ``--quiet``/``--debug`` options,
progress bars and warnings."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from emotrace.errors import EmotraceError

err = Console(stderr=True)

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show Python tracebacks on errors.")]


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


def loader(p, label: str) -> Callable[[int, int], None] | None:
    """A ``progress(done, total)`` callback that drives one task of ``p`` (None when quiet)."""
    if p is None:
        return None
    task = p.add_task(label, total=None, info="")

    def update(done: int, total: int) -> None:
        p.update(task, completed=done, total=total)

    return update


def warn(lines: list[str]) -> None:
    for line in lines:
        err.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)


def check_partition(name: str) -> None:
    if name not in ("train", "devel", "test"):
        raise EmotraceError(f"--partition {name!r}: unknown partition. Use train, devel or test.")


def epoch_progress(p, *, label: str = "seed", info: Callable | None = None) -> Callable:
    """An ``on_event`` callback for training: one progress task per seed, advanced per epoch.

    ``info(event)`` gives the text beside the bar (default: devel CCC and the best so far).
    """
    task = None

    def on_event(e) -> None:
        nonlocal task
        if p is None:
            return
        desc = f"{label} {e.seed} ({e.seed_index + 1}/{e.n_seeds})"
        if task is None or p.tasks[task].description != desc:
            task = p.add_task(desc, total=e.max_epochs, info="")
        text = info(e) if info else f"devel ccc {e.devel_ccc:.3f} best {e.best_ccc:.3f}"
        p.update(task, completed=e.epoch, info=text)

    return on_event
