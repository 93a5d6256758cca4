"""``emotrace export``: a run as an ONNX file (raw features in, predictions out)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from emotrace.cli.common import Debug, Quiet, err, warn
from emotrace.errors import EmotraceError

MULTI: tuple[str, ...] = ()


class Format(StrEnum):
    onnx = "onnx"


def export(
    run: Annotated[Path, typer.Option("--run", help="Run folder.")],
    out: Annotated[Path, typer.Option("--out", help="File to write, e.g. model.onnx.")],
    format: Annotated[Format, typer.Option("--format", help="Export format.")] = Format.onnx,
    streaming: Annotated[bool, typer.Option(
        "--streaming", help="One step per call with explicit state (unidirectional models).")] = False,
    check: Annotated[bool, typer.Option(
        "--check/--no-check", help="Compare ONNX Runtime with PyTorch on random input.")] = True,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset version.")] = 17,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Export a run's model as ONNX.

    The input standardisation and output scale are baked in.
    """
    from emotrace.export import check_onnx, is_ensemble
    from emotrace.export import export as export_run
    from emotrace.streaming import load_model_run

    if out.is_dir():
        raise EmotraceError(f"--out {out}: is a folder, but export writes one file. Pass a file "
                            f"name, e.g. --out {out / 'model.onnx'}.")
    r = run if is_ensemble(run) else load_model_run(run, what="ONNX export")
    path = export_run(r, out=out, format=format.value, streaming=streaming, opset=opset)
    msg = f"wrote {path} ({'streaming, one step per call' if streaming else 'whole sequence'})"
    if is_ensemble(run):
        msg += " of the fold ensemble"
    diff = check_onnx(path, r) if check else None
    if diff is not None:
        msg += f"; max |onnxruntime - pytorch| = {diff:.2e} on 50 random steps"
    err.print(msg, highlight=False)
    if diff is not None and not diff < 1e-4:
        warn([f"the ONNX graph differs from PyTorch by up to {diff:.2e} on random input; please "
              f"report this (with {run / 'config.yaml'})"])


def register(app: typer.Typer) -> None:
    app.command("export")(export)
