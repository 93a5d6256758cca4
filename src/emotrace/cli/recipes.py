"""``emotrace recipes`` (list, show) and ``emotrace run`` (a recipe's pipeline into --out)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from emotrace.cli.common import INVOCATION, Debug, Json, Quiet, epoch_progress, err, progress_bar

#: options that take several values
MULTI = ("--set",)


def recipes_list(ctx: typer.Context) -> None:
    """List the shipped recipes: name, paper, task, what it runs.

    `emotrace recipes show NAME` prints one in full, with the paper's section for each choice.
    """
    if ctx.invoked_subcommand is not None:
        return
    from emotrace import recipes

    rows = [(name, r.meta.cite, r.meta.task, r.meta.summary)
            for name, r in ((n, recipes.load(n)) for n in recipes.names())]
    widths = [max(len(row[k]) for row in rows) for k in range(3)]
    print("  ".join(h.ljust(w) for h, w in zip(("name", "paper", "task"), widths, strict=True))
          + "  runs")
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3])


def recipes_show(
    name: Annotated[str, typer.Argument(help="A recipe name (see `emotrace recipes`) or file.")],
    debug: Debug = False,
) -> None:
    """Print a recipe's YAML as shipped, with its comments (the paper's section per choice)."""
    from emotrace import recipes

    recipes.load(name)  # an unknown name lists the known ones
    _, text = recipes.text_of(name)
    print(text, end="" if text.endswith("\n") else "\n")


def run(
    recipe: Annotated[str, typer.Argument(help="A shipped recipe's name (emotrace recipes) or "
                                          "your recipe file (.yaml).")],
    data: Annotated[Path, typer.Option("--data", help="Corpus folder (MuSe layout).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the steps' runs, recipe.yaml and "
                                      "results.json; rerun the same command to continue.")],
    features: Annotated[list[str] | None, typer.Option(
        "--features", help="Feature sets (the recipe's defaults when left out).")] = None,
    target: Annotated[list[str] | None, typer.Option(
        "--target", help="Targets (the recipe's defaults when left out).")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="KEY=VALUE overrides, e.g. train.seeds=3 (every step that has the key) or "
        "late.train.epochs=10 (one step); values are YAML (3, 0.5, true, [a, b]).")] = None,
    jobs: Annotated[int, typer.Option("--jobs", min=0, help=(
        "Worker processes for independent steps and seeds; 0 = one per core. Results do not "
        "depend on it."))] = 0,
    threads: Annotated[int, typer.Option("--threads", min=0, help=(
        "CPU cores to use in all (caps --jobs); 0 = all."))] = 0,
    address: Annotated[str | None, typer.Option(
        "--address", help="Run the steps on an existing Ray cluster (ray start --head prints "
        "its address); --data and --out must be on a file system its nodes share.")] = None,
    as_json: Json = False,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Run a recipe: its steps in dependency order, independent ones in parallel.

    Steps already finished in --out are skipped and an interrupted one continues, so rerunning
    after a crash or kill goes on where it stopped. Ends with one table: each step's devel
    (and test, where labelled) scores.
    """
    from emotrace import recipes
    from emotrace.workflows.pipeline import run_recipe, table_rows

    loaded = recipes.load(recipe, sets=set_ or [])
    try:
        with progress_bar(quiet) as p:
            steps_bar = p.add_task(f"{loaded.name}: steps", total=None, info="") if p else None
            bars: dict[str, object] = {}
            counts = {"done": 0, "total": 0}

            def on_step(name: str, status: str) -> None:
                if status in ("skip", "done"):
                    counts["done"] += 1
                if p is not None:
                    p.update(steps_bar, completed=counts["done"], info=f"{name}: {status}")
                elif status == "skip":
                    err.print(f"{name}: finished before, skipped", highlight=False)

            def on_event(step: str, event) -> None:
                if step not in bars:
                    bars[step] = epoch_progress(p, label=f"{step} seed")
                bars[step](event)

            def on_plan(names: list[str]) -> None:
                if p is not None:
                    p.update(steps_bar, total=len(names))

            results = run_recipe(loaded, data=data, out=out, features=features, targets=target,
                                 jobs=jobs, threads=threads, address=address, on_plan=on_plan,
                                 on_step=on_step, on_event=on_event)
    except KeyboardInterrupt:
        again = shlex.join(["emotrace", *INVOCATION])
        err.print(f"interrupted: the finished steps are kept in {out}; the same command continues "
                  f"where it stopped: {again}", highlight=False, soft_wrap=True)
        raise
    if as_json:
        print(json.dumps(results))
        return
    table = Table(title=f"{loaded.name}: scores of every step (CCC; devel: the kept seed, with the "
                        f"mean ± std over seeds)")
    for col in ("step", "kind", "target", "devel ccc", "test ccc", "note"):
        table.add_column(col, overflow="fold")
    for row in table_rows(results):
        table.add_row(*row)
    Console(width=160).print(table)
    err.print(f"{len(results['ran'])} step(s) ran, {len(results['steps']) - len(results['ran'])} "
              f"finished before; {results['wall_seconds']:.1f} s; {out / 'results.json'}",
              highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The published systems as recipes: list them, show one.",
                        invoke_without_command=True, rich_markup_mode=None)
    group.callback(invoke_without_command=True)(recipes_list)
    group.command("show")(recipes_show)
    app.add_typer(group, name="recipes")
    app.command("run")(run)
