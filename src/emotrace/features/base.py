"""The contract every feature extractor meets.

An extractor turns one input file (a media file, a transcript, a folder of physiological
signals) into one feature stream sampled at given timestamps: the label timestamps of a corpus
(``--labels ROOT``), or a regular grid (``--rate``). The driver (``emotrace.features.driver``) owns
everything around it: finding inputs, the grid, parallelism, skipping finished recordings,
writing ``ROOT/feature_segments/<feature_set>/<id>.csv`` and the manifest of versions and
settings. Extractors never write files.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Protocol

import numpy as np


class Extractor(Protocol):
    """One configured extractor; built by ``build(feature_set, **options)`` in each module.

    ``extract`` returns ``(values, names)``: a float32 array of shape
    ``(len(timestamps_ms), len(names))`` whose row ``i`` describes the signal at
    ``timestamps_ms[i]`` (how a step is defined, e.g. a window ending at the timestamp, is the
    extractor's documented choice), and the column names. Rows where nothing could be measured
    are zeros, and ``missing`` in ``info`` counts them. Bad input raises
    :class:`~emotrace.errors.EmotraceError` naming the file and the fix.
    """

    #: the feature-set name written under ``feature_segments/``
    name: str
    #: the settings that decide the output (window, hop, model, ...), recorded in the manifest
    settings: dict
    #: input file suffixes this extractor reads, e.g. ``(".wav", ".mp4")``; ``()`` for folders
    suffixes: tuple[str, ...]

    def versions(self) -> dict[str, str]:
        """Versions of the libraries and models that produced the features."""
        ...

    def extract(self, path: Path, timestamps_ms: np.ndarray) -> tuple[np.ndarray, list[str], dict]:
        """Features of ``path`` at ``timestamps_ms``: ``(values, names, info)``."""
        ...

    # Optional: ``duration(path) -> float`` (seconds of the input from time 0). The driver calls
    # it only for ``--rate`` grids (no label timestamps); an extractor without it supports
    # ``--labels`` only, and ``--rate`` then ends with a clear error.


def package_version(package: str) -> str:
    """The installed version of ``package`` for a manifest, or ``"not installed"``."""
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"
