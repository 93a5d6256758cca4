"""Reports of finished runs: matplotlib figures and one self-contained HTML page.

``emotrace.report(["runs/a1", "runs/late"], data="corpora/ceap", out="report/")`` writes
``report/report.html`` (figures embedded, opens without a server), the PNGs, and TensorBoard
scalars of the training curves when the ``tensorboard`` extra is installed.

Modules: :mod:`~emotrace.report.inputs` reads run folders and gold traces,
:mod:`~emotrace.report.figures` draws, :mod:`~emotrace.report.html` renders the page,
:mod:`~emotrace.report.tensorboard` writes scalars, :mod:`~emotrace.report.build` puts them
together.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

from emotrace.report.build import report

__all__ = ["report"]


class _CallableModule(types.ModuleType):
    """Importing this package binds it to the name ``emotrace.report``, where the public API
    promises the function: calling the package calls :func:`report`."""

    def __call__(self, *args, **kwargs) -> Path:
        return report(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
