"""``emotrace fuse``: late fusion of finished runs (a thin layer over :func:`emotrace.fuse`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from emotrace.cli.common import (
    Debug,
    Quiet,
    devel_of,
    epoch_progress,
    err,
    print_metrics,
    progress_bar,
    stdout_is_terminal,
)
from emotrace.config import FuseConfig
from emotrace.errors import EmotraceError

#: options that take several values
MULTI = ("--runs",)

#: the fusion model's and its training's defaults (FuseConfig), shown in --help
_MODEL = FuseConfig.model_fields["model"].default_factory()
_TRAIN = FuseConfig.model_fields["train"].default_factory()


def fuse(
    runs: Annotated[list[Path], typer.Option("--runs", help="Run folders to fuse (two or more).")],
    data: Annotated[Path, typer.Option("--data", help="The corpus the runs were trained on.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder to write.")],
    method: Annotated[str, typer.Option("--method", help="rnn, weighted or mean.")] = "rnn",
    difficulty: Annotated[bool, typer.Option(
        "--difficulty", help="Feed each feature set's auto-encoder error to the fusion model.")] = False,
    config: Annotated[Path | None, typer.Option(
        "--config", help="YAML with a 'fusion:' mapping (model:, train:); flags override it.")] = None,
    hidden: Annotated[int | None, typer.Option(
        "--hidden", help=f"rnn: units of the fusion GRU.  [default: {_MODEL.hidden}]")] = None,
    bidirectional: Annotated[bool | None, typer.Option(
        "--bidirectional/--unidirectional", help="rnn: read the predictions in both directions.  "
        f"[default: {'bidirectional' if _MODEL.bidirectional else 'unidirectional'}]")] = None,
    epochs: Annotated[int | None, typer.Option(
        "--epochs", help=f"rnn: maximum epochs.  [default: {_TRAIN.epochs}]")] = None,
    patience: Annotated[int | None, typer.Option(
        "--patience", help=f"rnn: early stopping after this many epochs without devel gain.  "
        f"[default: {_TRAIN.patience}]")] = None,
    seeds: Annotated[int | None, typer.Option(
        "--seeds", help=f"rnn: how many seeds; the best on devel is kept.  "
        f"[default: {_TRAIN.seeds}]")] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", help=f"First seed (rnn, weighted).  [default: {_TRAIN.seed}]")] = None,
    threads: Annotated[int | None, typer.Option(
        "--threads", help=f"CPU cores to use: the fusion seeds run as parallel jobs of one "
        f"thread each (results do not depend on it); 0 = all.  [default: {_TRAIN.threads}]")] = None,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Fuse the predictions of several runs.

    Late fusion by a GRU (rnn), a weighted or a plain mean; writes a run folder like `train` does.
    """
    import emotrace
    from emotrace.config import merge, read_yaml

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
    where = (f"({metrics['method']} fusion of {len(runs)} runs, "
             f"{metrics['train_predictions']} train predictions, {metrics['wall_seconds']:.1f} s)")
    if stdout_is_terminal():  # a table, as train prints; piped: the JSON line as before
        print_metrics(devel_of(metrics), title=f"devel {where}", as_json=False)
    else:
        err.print(f"devel: {json.dumps(metrics['devel'])}  {where}", highlight=False,
                  soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(fuse)
