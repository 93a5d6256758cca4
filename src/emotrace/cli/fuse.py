"""``emotrace fuse``: late fusion of finished runs (a thin layer over :func:`emotrace.fuse`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from emotrace.cli.common import Debug, Quiet, epoch_progress, err, progress_bar
from emotrace.errors import EmotraceError

#: options that take several values
MULTI = ("--runs",)


def fuse(
    runs: Annotated[list[Path], typer.Option("--runs", help="Run folders to fuse (two or more).")],
    data: Annotated[Path, typer.Option("--data", help="The corpus the runs were trained on.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder to write.")],
    method: Annotated[str, typer.Option("--method", help="rnn, weighted or mean.")] = "rnn",
    difficulty: Annotated[bool, typer.Option(
        "--difficulty", help="Feed each feature set's auto-encoder error to the fusion model.")] = False,
    config: Annotated[Path | None, typer.Option(
        "--config", help="YAML with a 'fusion:' mapping (model:, train:); flags override it.")] = None,
    hidden: Annotated[int | None, typer.Option("--hidden", help="rnn: units (default 32).")] = None,
    bidirectional: Annotated[bool | None, typer.Option("--bidirectional/--unidirectional")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="rnn: max epochs (default 20).")] = None,
    patience: Annotated[int | None, typer.Option("--patience")] = None,
    seeds: Annotated[int | None, typer.Option("--seeds", help="rnn: how many seeds (default 3).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="First seed.")] = None,
    threads: Annotated[int | None, typer.Option("--threads")] = None,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Fuse runs' predictions (rnn / weighted / mean); writes a run folder like `train` does."""
    import emotrace
    from emotrace.config import FuseConfig, merge, read_yaml

    if len(runs) < 2:
        raise EmotraceError("fuse needs at least two runs (--runs A B ...).")
    base = (read_yaml(config).get("fusion") or {}) if config else {}
    flags = {"model": {"hidden": hidden, "bidirectional": bidirectional},
             "train": {"epochs": epochs, "patience": patience, "seeds": seeds, "seed": seed,
                       "threads": threads}}
    merged = merge(base, flags) | {"runs": [str(r) for r in runs]}
    try:
        cfg = FuseConfig.model_validate(merged)
    except Exception as e:  # noqa: BLE001 - pydantic's ValidationError
        from pydantic import ValidationError

        from emotrace.config import explain

        if isinstance(e, ValidationError):
            raise EmotraceError(f"{config or 'options'}: {explain(e)}") from None
        raise
    with progress_bar(quiet) as p:
        on_event = epoch_progress(p, label="fusion seed")
        metrics = emotrace.fuse(runs, data=data, out=out, method=method, difficulty=difficulty,
                                config=cfg, on_event=on_event)
    err.print(f"devel: {json.dumps(metrics['devel'])}  ({metrics['method']} fusion of "
              f"{len(runs)} runs, {metrics['train_predictions']} train predictions, "
              f"{metrics['wall_seconds']:.1f} s)", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(fuse)
