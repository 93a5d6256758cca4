"""Adapters that write public datasets into the MuSe layout, each with its fixed split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from emotrace.errors import EmotraceError
from emotrace.fileio import writes

ADAPTERS = ("ceap360vr", "stress-predict", "synthetic")


@writes("out", inputs={"--source": "source"}, lock=False)
def prepare(name: str, *, out: Path | str, source: Path | str | None = None,
            progress: Callable[[int, int], None] | None = None) -> dict:
    """Write dataset ``name`` from ``source`` into a MuSe-layout corpus at ``out``."""
    if name == "synthetic":
        from emotrace.datasets import synthetic

        return synthetic.prepare(out)
    if source is None:
        raise EmotraceError(f"data prepare {name}: --source is required (the dataset folder as "
                            f"distributed).")
    if name == "ceap360vr":
        from emotrace.datasets import ceap360vr

        return ceap360vr.prepare(Path(source), Path(out), progress=progress)
    if name == "stress-predict":
        from emotrace.datasets import stress_predict

        return stress_predict.prepare(Path(source), Path(out), progress=progress)
    raise EmotraceError(f"data prepare {name!r}: unknown dataset. Use one of {', '.join(ADAPTERS)}.")
