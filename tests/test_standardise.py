"""Standardisation: train-only statistics, per-recording z-scoring of chosen feature sets."""

import numpy as np
import pytest
from pydantic import ValidationError

from emotrace.config import DataConfig
from emotrace.data.corpus import Recording
from emotrace.data.standardise import Standardiser


def _rec(rid: str, part: str, a: np.ndarray, b: np.ndarray) -> Recording:
    return Recording(rid, part, rid, np.arange(len(a)) * 100, {"a": a, "b": b})


def test_per_recording_sets_are_centred_within_each_recording():
    rng = np.random.default_rng(0)
    recs = [_rec(f"r{i}", "train", (rng.standard_normal((50, 2)) + 10 * i).astype(np.float32),
                 (rng.standard_normal((50, 1)) + 10 * i).astype(np.float32)) for i in range(3)]
    std = Standardiser.fit(recs, ["a", "b"], per_recording=("a",))
    for r in recs:
        x = std.transform(r, ["a", "b"])
        np.testing.assert_allclose(x[:, :2].mean(0), 0, atol=1e-5)  # offset of the recording gone
    # "b" keeps the between-recording offsets: recording means differ after standardisation
    means_b = [std.transform(r, ["a", "b"])[:, 2].mean() for r in recs]
    assert means_b[2] - means_b[0] > 2


def test_per_recording_state_round_trip():
    rng = np.random.default_rng(1)
    recs = [_rec(f"r{i}", "train", rng.standard_normal((20, 2)).astype(np.float32) + i,
                 rng.standard_normal((20, 1)).astype(np.float32)) for i in range(2)]
    std = Standardiser.fit(recs, ["a", "b"], per_recording=("a",))
    again = Standardiser.from_state(std.state(), per_recording=("a",))
    np.testing.assert_array_equal(std.transform(recs[0], ["a", "b"]),
                                  again.transform(recs[0], ["a", "b"]))


def test_per_recording_must_name_a_feature_set():
    with pytest.raises(ValidationError, match="per_recording"):
        DataConfig(features=["a"], targets=["y"], per_recording=["b"])
