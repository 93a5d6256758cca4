"""In-memory corpus: recordings of aligned float32 streams on one time grid each."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PARTITIONS = ("train", "devel", "test")


@dataclass
class Recording:
    """One recording: feature streams and label traces sampled on ``timestamps``.

    ``features[name]`` has shape ``(T, D_name)``; ``labels[target]`` has shape ``(T,)`` and is NaN
    where the label file has no value for a step (those steps are masked out of losses and
    metrics).
    """

    id: str
    partition: str
    subject: str
    timestamps: np.ndarray  # int64 milliseconds, (T,)
    features: dict[str, np.ndarray] = field(default_factory=dict)
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    #: per classification target (label files with ``class_id``): the segment id of each step,
    #: NaN outside segments
    class_segments: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.timestamps)

    def stack(self, names: list[str]) -> np.ndarray:
        """The named feature sets concatenated per step, ``(T, sum D)``."""
        return np.concatenate([self.features[n] for n in names], axis=1)

    def targets(self, names: list[str]) -> np.ndarray:
        """The named label traces as ``(T, K)``, NaN where missing or absent."""
        cols = [self.labels.get(n, np.full(len(self), np.nan, dtype=np.float32)) for n in names]
        return np.stack(cols, axis=1)


@dataclass
class FeatureReport:
    """What the loader did to one feature set, summed over recordings."""

    dims: int
    steps: int = 0
    zero_filled_steps: int = 0  # label steps with no feature row at that timestamp
    imputed_cells: int = 0  # NaN / inf cells replaced (0 after standardisation = train mean)
    recordings_with_gaps: int = 0


@dataclass
class LoadReport:
    features: dict[str, FeatureReport] = field(default_factory=dict)
    label_missing_steps: dict[str, int] = field(default_factory=dict)
    unlabelled_recordings: list[str] = field(default_factory=list)
    #: folder -> ids of its files that metadata/partition.csv does not list (not loaded)
    unlisted: dict[str, list[str]] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        out = []
        for folder, ids in self.unlisted.items():
            out.append(f"{folder}: {len(ids)} file(s) have no entry in metadata/partition.csv and "
                       f"were not loaded: {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}")
        for name, r in self.features.items():
            if r.zero_filled_steps:
                out.append(f"feature set {name!r}: {r.zero_filled_steps} of {r.steps} label steps "
                           f"({100 * r.zero_filled_steps / max(r.steps, 1):.1f}%) had no feature row "
                           f"and were zero-filled, in {r.recordings_with_gaps} recording(s)")
            if r.imputed_cells:
                out.append(f"feature set {name!r}: {r.imputed_cells} NaN/inf cell(s) imputed with "
                           f"the train mean (use --strict to make this an error)")
        for t, n in self.label_missing_steps.items():
            if n:
                out.append(f"target {t!r}: {n} step(s) without a finite label are left out of "
                           f"losses and metrics")
        return out


@dataclass
class Corpus:
    """Recordings plus what is known about the corpus as a whole."""

    root: Path
    recordings: list[Recording]
    feature_dims: dict[str, int]
    targets: list[str]
    report: LoadReport = field(default_factory=LoadReport)

    def __iter__(self) -> Iterator[Recording]:
        return iter(self.recordings)

    def __len__(self) -> int:
        return len(self.recordings)

    def partition(self, name: str) -> list[Recording]:
        return [r for r in self.recordings if r.partition == name]

    def partitions(self) -> list[str]:
        return [p for p in PARTITIONS if any(r.partition == p for r in self.recordings)]

    def subjects(self, partition: str | None = None) -> list[str]:
        recs = self.recordings if partition is None else self.partition(partition)
        return sorted({r.subject for r in recs})
