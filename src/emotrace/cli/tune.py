"""``emotrace tune``: hyper-parameter search on Ray Tune (local, or a cluster with --address)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from emotrace.cli.common import Debug, Quiet, err, loader, progress_bar

#: options that take several values
MULTI = ("--features", "--target", "--rank-by")


def tune(
    data: Annotated[Path, typer.Option("--data", help="Corpus folder (MuSe layout).")],
    space: Annotated[Path, typer.Option("--space", help="Search-space YAML (base: + space:).")],
    out: Annotated[Path, typer.Option("--out", help="Search folder to write.")],
    features: Annotated[list[str] | None, typer.Option("--features", help="Feature sets.")] = None,
    target: Annotated[list[str] | None, typer.Option("--target", help="Target(s).")] = None,
    trials: Annotated[int, typer.Option("--trials", help="Samples (random, optuna).")] = 20,
    search: Annotated[str, typer.Option("--search", help="random, grid or optuna.")] = "random",
    asha: Annotated[bool, typer.Option("--asha/--no-asha", help="Stop bad trials early.")] = True,
    grace: Annotated[int, typer.Option("--grace", help="ASHA: epochs before the first cut.")] = 5,
    address: Annotated[str | None, typer.Option(
        "--address", help="Ray cluster address HOST:PORT (its token: RAY_AUTH_TOKEN, "
        "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token); default: start Ray on this machine.")] = None,
    cpus: Annotated[int | None, typer.Option(
        "--cpus", help="CPUs of the local Ray instance (default: all).")] = None,
    cpus_per_trial: Annotated[int, typer.Option(
        "--cpus-per-trial", help="CPUs each trial reserves (its torch threads).")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the searcher.")] = 0,
    rank_by: Annotated[list[str] | None, typer.Option(
        "--rank-by", help="Targets whose devel CCC ranks the trials (default: all).")] = None,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Search hyper-parameters on Ray Tune.

    Every trial is a run folder; the results are ranked by devel CCC.
    """
    import emotrace

    with progress_bar(quiet) as p:
        result = emotrace.tune(data, space=space, out=out, features=features or None,
                               targets=target or None, trials=trials, search=search, asha=asha,
                               grace=grace, address=address, cpus=cpus,
                               cpus_per_trial=cpus_per_trial, seed=seed, rank_by=rank_by or None,
                               progress=loader(p, "trials"))
    Console().print(results_table(result, out))
    err.print(f"all options and scores of every trial: {out / 'results.csv'}", highlight=False)
    if result["best"]:
        err.print(f"best: {result['best']['run']} (config in {out / 'best.yaml'})", highlight=False)
    for r in result["trials"]:
        if r["status"] == "error":
            err.print(f"[yellow]trial {r['rank']} failed:[/] {r['error']}", highlight=False)


def varied(rows: list[dict]) -> list[str]:
    """The search options whose values differ between trials (all of them for one trial)."""
    keys = sorted({k for r in rows for k in r["params"]})
    if len(rows) < 2:
        return keys
    return [k for k in keys if len({repr(r["params"].get(k)) for r in rows}) > 1]


def results_table(result: dict, out: Path) -> Table:
    """Rank, status, score and the varied options as ``key=value`` words, which wrap within
    their column, so the table stays readable at 80 columns (the rest is in results.csv)."""
    rows = result["trials"]
    keys = varied(rows)
    table = Table(title=f"{out}: {result['n_finished']} finished, {result['n_stopped']} stopped "
                  f"by ASHA, {result['n_errors']} failed ({result['seconds']:.0f} s)",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("rank", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("devel ccc ± seeds", justify="right", no_wrap=True)
    table.add_column("options that differ", ratio=1)
    for r in rows:
        score = "" if r["score"] is None else f"{r['score']:.4f}"
        if r["score_std"] is not None:
            score += f" ± {r['score_std']:.4f}"
        table.add_row(str(r["rank"]), r["status"], score,
                      " ".join(f"{k}={_fmt(r['params'].get(k))}" for k in keys))
    return table


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return ",".join(map(str, v)) or "[]"
    return str(v)


def register(app: typer.Typer) -> None:
    app.command()(tune)
