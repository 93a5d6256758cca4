"""Per-feature-set standardisation, fitted on the train partition only.

For each feature dimension :math:`d` of a feature set,
:math:`\\hat{x}_{t,d} = (x_{t,d} - \\mu_d) / \\sigma_d` with :math:`\\mu_d, \\sigma_d` the mean and
population standard deviation over all finite train steps. Missing cells (gaps between feature rows,
NaN / inf) become 0, the train mean; dimensions that are constant on train get
:math:`\\sigma_d = 1`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emotrace.data.corpus import Recording


@dataclass
class Standardizer:
    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]

    @classmethod
    def fit(cls, recordings: list[Recording], feature_sets: list[str], *,
            enabled: bool = True) -> Standardizer:
        mean, std = {}, {}
        for f in feature_sets:
            x = np.concatenate([r.features[f] for r in recordings], axis=0).astype(np.float64)
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
        return cls(mean, std)

    def transform(self, recording: Recording, feature_sets: list[str]) -> np.ndarray:
        """The standardised, concatenated input matrix ``(T, sum D)`` of one recording."""
        parts = []
        for f in feature_sets:
            x = (recording.features[f] - self.mean[f]) / self.std[f]
            parts.append(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0))
        return np.concatenate(parts, axis=1).astype(np.float32, copy=False)

    def state(self) -> dict:
        """Plain-tensor form for a ``weights_only`` checkpoint."""
        import torch

        return {f: {"mean": torch.from_numpy(self.mean[f]), "std": torch.from_numpy(self.std[f])}
                for f in self.mean}

    @classmethod
    def from_state(cls, state: dict) -> Standardizer:
        return cls({f: v["mean"].numpy() for f, v in state.items()},
                   {f: v["std"].numpy() for f, v in state.items()})
