"""What every command module shares: the stderr console, the ``--quiet``/``--debug``/``--json``
options, progress bars, warnings and the metrics table."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from emotrace.errors import EmotraceError

err = Console(stderr=True)
#: the arguments of the running command (set by :func:`emotrace.cli.main`), for messages that
#: repeat it, such as the ``--resume`` command after Ctrl-C
INVOCATION: list[str] = []

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show Python tracebacks on errors.")]
Json = Annotated[bool, typer.Option(
    "--json", help="Print the metrics as one JSON object (the default when stdout is not a "
    "terminal).")]


@contextmanager
def progress_bar(quiet: bool):
    """A rich progress bar on stderr, or a do-nothing stand-in when quiet.

    When the command fails, the bars are cleared, so the error paragraph is all that is left.
    """
    if quiet:
        yield None
        return
    cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn()]
    with Progress(*cols, console=err, transient=False) as p:
        try:
            yield p
        except BaseException:
            p.live.transient = True  # read when the display stops: nothing is left on screen
            for task in list(p.task_ids):
                p.remove_task(task)
            p.live.stop()
            p.disable = True  # else rich adds a blank line on a non-terminal
            raise


def loader(p, label: str) -> Callable[[int, int], None] | None:
    """A ``progress(done, total)`` callback that drives one task of ``p`` (None when quiet).

    The task appears at the first call, so a step that fails before it starts shows no bar.
    """
    if p is None:
        return None
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            task = p.add_task(label, total=None, info="")
        p.update(task, completed=done, total=total)

    return update


def warn(lines: list[str]) -> None:
    for line in lines:
        err.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)


def check_partition(name: str) -> None:
    if name not in ("train", "devel", "test"):
        raise EmotraceError(f"--partition {name!r}: unknown partition. Use train, devel or test.")


def held_out(event) -> tuple[float, float] | None:
    """``(devel score, best so far)`` of an epoch event, or None when there is no devel data
    (``train --final``: the score is NaN)."""
    score = getattr(event, "devel_score", None)
    score = event.devel_ccc if score is None else score
    best = getattr(event, "best_score", None)
    best = getattr(event, "best_ccc", math.nan) if best is None else best
    if score is None or not math.isfinite(score):
        return None
    return score, best


def epoch_info(event, score: str = "ccc") -> str:
    """The text beside an epoch bar: train loss, and the devel score and best so far when
    there is devel data (else the epoch)."""
    devel = held_out(event)
    if devel is None:
        return f"epoch {event.epoch} loss {event.train_loss:.3f} (no devel)"
    return f"loss {event.train_loss:.3f} devel {score} {devel[0]:.3f} best {devel[1]:.3f}"


def epoch_progress(p, *, label: str = "seed", info: Callable | None = None) -> Callable:
    """An ``on_event`` callback for training: a bar per seed that moves within each epoch (all
    seeds that train in parallel at once), and, with several seeds, a bar for the whole command
    with the time left: an upper bound from the epochs that may still run (every seed's
    maximum, lowered by early stopping as it comes closer) at the speed so far.

    ``info(event)`` gives the text beside a seed's bar (default: :func:`epoch_info`).
    """
    tasks: dict[int, object] = {}
    done: dict[int, float] = {}  # per seed: epochs done (fractional within an epoch)
    last: dict[int, int] = {}  # per seed: the last epoch it can reach
    overall, start = None, time.monotonic()

    def on_event(e) -> None:
        nonlocal overall
        if p is None:
            return
        key = e.seed_index  # unique per job (the same seed trains once per fold of --cv)
        if overall is None and e.n_seeds > 1:
            overall = p.add_task(f"all {e.n_seeds} {label}s", total=e.n_seeds * e.max_epochs,
                                 info="")
        if key not in tasks:
            fold = f"fold {e.group} " if getattr(e, "group", None) is not None else ""
            tasks[key] = p.add_task(f"{fold}{label} {e.seed} ({e.seed_index + 1}/{e.n_seeds})",
                                    total=e.max_epochs, info="")
            last[key] = e.max_epochs
        if hasattr(e, "train_loss"):  # an epoch ended (EpochEvent; not imported: torch)
            done[key] = e.epoch
            last[key] = e.last_epoch or e.max_epochs
            p.update(tasks[key], completed=e.epoch, total=last[key],
                     info=info(e) if info else epoch_info(e))
        else:  # within an epoch: the bar moves by the share of training items done
            done[key] = e.epoch - 1 + e.done / max(e.total, 1)
            p.update(tasks[key], completed=done[key])
        if overall is not None:
            completed = sum(done.values())
            total = sum(last.values()) + (e.n_seeds - len(last)) * e.max_epochs
            p.update(overall, completed=completed, total=total,
                     info=eta(completed, total, time.monotonic() - start))

    return on_event


def eta(done: float, total: float, seconds: float) -> str:
    """The time left at the speed so far, as an upper bound.

    >>> eta(10, 40, 60.0)
    'eta ≤ 3:00'
    >>> eta(0, 40, 5.0)
    ''
    """
    if done <= 0:
        return ""
    m, s = divmod(round((total - done) * seconds / done), 60)
    return f"eta ≤ {m}:{s:02d}"


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def print_metrics(result: dict, *, title: str, as_json: bool) -> None:
    """Metrics on stdout: the exact JSON object when ``as_json`` or stdout is not a terminal
    (scripts read it), else a table with 4 decimals (:func:`metrics_table`)."""
    if as_json or not stdout_is_terminal():
        print(json.dumps(result))
        return
    Console().print(metrics_table(result, title=title))


def devel_of(metrics: dict) -> dict:
    """The devel metrics of a ``metrics.json``, named by target for :func:`metrics_table` (one
    target's metrics are stored without its name)."""
    devel = metrics.get("devel") or {}
    if isinstance(metrics.get("target"), str):
        return {"target": metrics["target"], **devel}
    return devel


def metrics_table(result: dict, *, title: str) -> Table:
    """One row per target, one column per scalar metric (4 decimals); nested details (per class,
    per recording) stay in the JSON."""
    if isinstance(result.get("targets"), dict):
        rows = dict(result["targets"])
    elif "target" in result:
        rows = {str(result["target"]): result}
    elif result and all(isinstance(v, dict) for v in result.values()):
        rows = dict(result)  # train's devel metrics of several targets
    else:
        rows = {"": result}
    skip = {"target", "partition"}
    cols = [k for r in rows.values() for k, v in r.items() if _scalar(v) and k not in skip]
    cols = list(dict.fromkeys(cols))
    table = Table(title=title)
    table.add_column("target")
    for c in cols:
        table.add_column(c, justify="right")
    for name, r in rows.items():
        table.add_row(name, *(_cell(r.get(c)) for c in cols))
    return table


def _scalar(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return "" if v is None else str(v)
