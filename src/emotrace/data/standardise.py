"""Per-feature-set standardisation, fitted on the train partition only.

For each feature dimension :math:`d` of a feature set,
:math:`\\hat{x}_{t,d} = (x_{t,d} - \\mu_d) / \\sigma_d` with :math:`\\mu_d, \\sigma_d` the mean and
population standard deviation over all finite train steps. Missing cells (gaps between feature rows,
NaN / inf) become 0, the train mean; dimensions that are constant on train get
:math:`\\sigma_d = 1`.

Feature sets listed in ``per_recording`` are first z-scored within each recording (its own mean
and std over time), which removes person- or session-specific offsets and keeps the dynamics.
This uses only the recording's own unlabelled features, so it applies equally at evaluation,
but it needs the whole recording (not for step-by-step streaming).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from emotrace.data.cache import release
from emotrace.data.corpus import Recording


def _over_time_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over time of one recording's feature set (float64, std 1 where constant)."""
    x = x.astype(np.float64)
    x[~np.isfinite(x)] = np.nan
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        mu, sd = np.nanmean(x, 0), np.nanstd(x, 0)
    sd[~(sd > 1e-8)] = 1.0
    return mu, sd


def _zscore(x: np.ndarray, stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    x = x.astype(np.float64)
    x[~np.isfinite(x)] = np.nan
    return ((x - stats[0]) / stats[1]).astype(np.float32)


def _zscore_over_time(x: np.ndarray) -> np.ndarray:
    return _zscore(x, _over_time_stats(x))


def _running_sum(acc: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``acc`` plus the column sums of ``x`` (NaN counted as 0), added row after row: the same
    float64 result as one sum over all recordings concatenated, without concatenating them."""
    return np.add.reduce(np.concatenate([acc[None], np.nan_to_num(x, nan=0.0)]), axis=0)


@dataclass
class Standardiser:
    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]
    per_recording: tuple[str, ...] = ()

    def _raw(self, recording: Recording, f: str, rows: slice = slice(None),
             stats: dict | None = None) -> np.ndarray:
        """Rows ``rows`` of a feature set, z-scored over the whole recording first when it is
        ``per_recording`` (``stats`` keeps each recording's mean and std between calls)."""
        x = recording.features[f]
        if f not in self.per_recording:
            return x[rows]
        key = (recording.id, f)
        if stats is None or key not in stats:
            st = _over_time_stats(x)
            if stats is not None:
                stats[key] = st
        else:
            st = stats[key]
        return _zscore(x[rows], st)

    @classmethod
    def fit(cls, recordings: list[Recording], feature_sets: list[str], *,
            enabled: bool = True, per_recording: tuple[str, ...] = ()) -> Standardiser:
        """Fit on ``recordings`` (the train partition), one recording at a time: memory does not
        grow with the corpus, and the result equals a fit on the recordings concatenated."""
        mean, std = {}, {}
        pre = cls({}, {}, tuple(per_recording))
        for f in feature_sets:
            d = recordings[0].features[f].shape[1]
            if not enabled:
                mean[f], std[f] = np.zeros(d, np.float32), np.ones(d, np.float32)
                continue
            total, n = np.zeros(d), np.zeros(d, np.int64)
            for r in recordings:
                x = pre._raw(r, f).astype(np.float64)
                x[~np.isfinite(x)] = np.nan
                n += np.isfinite(x).sum(0)
                total = _running_sum(total, x)
                release(r.features[f])  # a mapped recording's pages leave this process
            mu = np.where(n > 0, total / np.maximum(n, 1), 0.0)
            squares = np.zeros(d)
            for r in recordings:
                x = pre._raw(r, f).astype(np.float64)
                x[~np.isfinite(x)] = np.nan
                squares = _running_sum(squares, (x - mu) ** 2)
                release(r.features[f])
            var = np.where(n > 0, squares / np.maximum(n, 1), 1.0)
            sd = np.sqrt(var)
            sd[~(sd > 1e-8)] = 1.0
            mean[f], std[f] = mu.astype(np.float32), sd.astype(np.float32)
        return cls(mean, std, tuple(per_recording))

    def transform(self, recording: Recording, feature_sets: list[str], *, start: int = 0,
                  stop: int | None = None, stats: dict | None = None,
                  out: np.ndarray | None = None) -> np.ndarray:
        """The standardised, concatenated input matrix ``(T, sum D)`` of one recording, or of
        its steps ``start:stop`` (the same values as those rows of the whole; ``stats`` keeps
        the per-recording statistics between calls). ``out`` (float32, that shape) receives the
        result without intermediate copies, e.g. a row of a batch."""
        rows = slice(start, stop)
        dims = [len(self.mean[f]) for f in feature_sets]
        if out is None:
            n = len(range(*rows.indices(len(recording))))
            out = np.empty((n, sum(dims)), np.float32)
        a = 0
        for f, d in zip(feature_sets, dims, strict=True):
            x = self._raw(recording, f, rows, stats)
            dst = out[:, a:a + d]
            if x.dtype == np.float32:  # in place: the same float32 operations as below
                np.subtract(x, self.mean[f], out=dst)
                np.divide(dst, self.std[f], out=dst)
            else:
                dst[...] = (x - self.mean[f]) / self.std[f]
            np.nan_to_num(dst, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            a += d
        return out

    def state(self) -> dict:
        """Plain-tensor form for a ``weights_only`` checkpoint."""
        import torch

        return {f: {"mean": torch.from_numpy(self.mean[f]), "std": torch.from_numpy(self.std[f])}
                for f in self.mean}

    @classmethod
    def from_state(cls, state: dict, *, per_recording: tuple[str, ...] = ()) -> Standardiser:
        return cls({f: v["mean"].numpy() for f, v in state.items()},
                   {f: v["std"].numpy() for f, v in state.items()}, tuple(per_recording))
