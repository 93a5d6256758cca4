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

from emotrace.data.corpus import Recording


def _zscore_over_time(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    x[~np.isfinite(x)] = np.nan
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        mu, sd = np.nanmean(x, 0), np.nanstd(x, 0)
    sd[~(sd > 1e-8)] = 1.0
    return ((x - mu) / sd).astype(np.float32)


@dataclass
class Standardiser:
    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]
    per_recording: tuple[str, ...] = ()

    def _raw(self, recording: Recording, f: str) -> np.ndarray:
        x = recording.features[f]
        return _zscore_over_time(x) if f in self.per_recording else x

    @classmethod
    def fit(cls, recordings: list[Recording], feature_sets: list[str], *,
            enabled: bool = True, per_recording: tuple[str, ...] = ()) -> Standardiser:
        mean, std = {}, {}
        pre = cls({}, {}, tuple(per_recording))
        for f in feature_sets:
            x = np.concatenate([pre._raw(r, f) for r in recordings], axis=0).astype(np.float64)
            x[~np.isfinite(x)] = np.nan
            d = x.shape[1]
            if not enabled:
                mean[f], std[f] = np.zeros(d, np.float32), np.ones(d, np.float32)
                continue
            finite = np.isfinite(x)
            n = finite.sum(0)
            mu = np.where(n > 0, np.nansum(x, 0) / np.maximum(n, 1), 0.0)
            var = np.where(n > 0, np.nansum((x - mu) ** 2, 0) / np.maximum(n, 1), 1.0)
            sd = np.sqrt(var)
            sd[~(sd > 1e-8)] = 1.0
            mean[f], std[f] = mu.astype(np.float32), sd.astype(np.float32)
        return cls(mean, std, tuple(per_recording))

    def transform(self, recording: Recording, feature_sets: list[str]) -> np.ndarray:
        """The standardised, concatenated input matrix ``(T, sum D)`` of one recording."""
        parts = []
        for f in feature_sets:
            x = (self._raw(recording, f) - self.mean[f]) / self.std[f]
            parts.append(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0))
        return np.concatenate(parts, axis=1).astype(np.float32, copy=False)

    def state(self) -> dict:
        """Plain-tensor form for a ``weights_only`` checkpoint."""
        import torch

        return {f: {"mean": torch.from_numpy(self.mean[f]), "std": torch.from_numpy(self.std[f])}
                for f in self.mean}

    @classmethod
    def from_state(cls, state: dict, *, per_recording: tuple[str, ...] = ()) -> Standardiser:
        return cls({f: v["mean"].numpy() for f, v in state.items()},
                   {f: v["std"].numpy() for f, v in state.items()}, tuple(per_recording))
