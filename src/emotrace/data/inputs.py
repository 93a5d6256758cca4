"""The model inputs of a list of recordings, standardised on demand.

:class:`Inputs` behaves like a list of ``(T_i, D)`` float32 arrays (``inputs[i]`` is the whole
standardised recording ``i``), but it holds only the recordings and the fitted
:class:`~emotrace.data.standardise.Standardiser`: :meth:`Inputs.rows` standardises just the steps
a window or batch needs. With a memory-mapped corpus (:mod:`emotrace.data.cache`) a partition is
therefore never copied into RAM, neither raw nor standardised, and a batch cut from it holds its
own steps only. It pickles as its recordings, whose mapped arrays pickle as file paths.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from emotrace.data.cache import release
from emotrace.data.corpus import Recording
from emotrace.data.standardise import Standardiser


class Inputs(Sequence):
    """Standardised, concatenated feature sets of ``recordings``, computed per request."""

    def __init__(self, recordings: list[Recording], standardiser: Standardiser,
                 features: list[str], *, stats: dict | None = None) -> None:
        self.recordings = list(recordings)
        self.standardiser = standardiser
        self.features = list(features)
        self.dim = int(sum(len(standardiser.mean[f]) for f in features))
        self._stats = {} if stats is None else stats  # per-recording z-score statistics

    def __len__(self) -> int:
        return len(self.recordings)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return self.subset(range(len(self))[i])
        return self.rows(i, 0, None)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.rows(i, 0, None)

    def length(self, i: int) -> int:
        """Steps of recording ``i`` (without standardising it)."""
        return len(self.recordings[i])

    def rows(self, i: int, start: int, stop: int | None, *,
             out: np.ndarray | None = None) -> np.ndarray:
        """Steps ``start:stop`` of recording ``i``, standardised: equal to ``self[i][start:stop]``
        (written into ``out`` when given, e.g. a row of a batch)."""
        rec = self.recordings[i]
        x = self.standardiser.transform(rec, self.features, start=start, stop=stop,
                                        stats=self._stats, out=out)
        for f in self.features:  # the mapped pages were copied: drop them from this process
            release(rec.features[f])
        return x

    def subset(self, indices) -> Inputs:
        """The inputs of the recordings at ``indices`` (sharing the statistics kept so far)."""
        return Inputs([self.recordings[i] for i in indices], self.standardiser, self.features,
                      stats=self._stats)


def length(xs: Sequence, i: int) -> int:
    """Steps of sequence ``i`` of ``xs`` (a list of arrays or :class:`Inputs`)."""
    return xs.length(i) if isinstance(xs, Inputs) else len(xs[i])


def rows(xs: Sequence, i: int, start: int, stop: int | None, *,
         out: np.ndarray | None = None) -> np.ndarray:
    """Steps ``start:stop`` of sequence ``i`` of ``xs`` (a list of arrays or :class:`Inputs`),
    written into ``out`` when given (then returned)."""
    if isinstance(xs, Inputs):
        return xs.rows(i, start, stop, out=out)
    if out is None:
        return xs[i][start:stop]
    out[...] = xs[i][start:stop]
    return out


def width(xs: Sequence) -> int:
    """Columns per step of ``xs`` (a non-empty list of arrays or :class:`Inputs`)."""
    return xs.dim if isinstance(xs, Inputs) else int(xs[0].shape[1])


def take(xs: Sequence, indices) -> Sequence:
    """The sequences of ``xs`` at ``indices``, as the same kind of sequence."""
    return xs.subset(indices) if isinstance(xs, Inputs) else [xs[i] for i in indices]
