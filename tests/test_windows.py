"""Training windows and padded evaluation batches (emotrace.data.windows)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from emotrace.config import DataConfig
from emotrace.data.windows import make_windows, pad, recording_batches, window_starts

CASES = [(length, win, hop) for length in (1, 5, 49, 50, 51, 100, 137)
         for win, hop in [(0, 50), (10, 10), (10, 3), (50, 25), (50, 50), (64, 1), (200, 50)]]


@pytest.mark.parametrize("length,win,hop", CASES)
def test_windows_cover_every_step_and_end_at_the_end(length, win, hop):
    starts = window_starts(length, win, hop)
    size = length if win <= 0 else min(win, length)
    covered = np.zeros(length, bool)
    for s in starts:
        assert 0 <= s and s + size <= length  # no window runs past the end
        covered[s : s + size] = True
    assert covered.all()
    assert starts[0] == 0
    assert starts[-1] + size == length  # the last window ends at the end
    assert starts == sorted(set(starts))
    # the hop is respected: every step but (possibly) the last moved-back window is exactly hop
    steps = np.diff(starts)
    assert (steps[:-1] == hop).all()
    if len(steps):
        assert 0 < steps[-1] <= hop


def _official_muse2021_windows(length: int, win: int, hop: int) -> list[tuple[int, int]]:
    """``segment_sample(..., 'normal')`` of the official MuSe 2021 baseline, as (start, end)."""
    out = []
    for s in range(0, length, hop):
        e = min(s + win, length)
        out.append((s, e))
        if e == length:
            break
    return out


@pytest.mark.parametrize("length,win,hop", [c for c in CASES if c[1] > 0])
def test_shorter_last_window_matches_the_muse2021_baseline(length, win, hop):
    starts = window_starts(length, win, hop, last="shorter")
    assert [(s, min(s + win, length)) for s in starts] == \
        _official_muse2021_windows(length, win, hop)
    batch = make_windows([np.arange(length, dtype=np.float32)[:, None]],
                         [np.zeros((length, 1), np.float32)], win=win, hop=hop, last="shorter")
    lengths = batch.mask.sum(1).tolist()
    assert lengths == [min(s + win, length) - s for s in starts]


@pytest.mark.parametrize("length,win,hop", CASES)
def test_make_windows_cuts_real_data(length, win, hop):
    x = np.arange(length, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    y = np.arange(length, dtype=np.float32)[:, None]
    batch = make_windows([x], [y], win=win, hop=hop)
    starts = window_starts(length, win, hop)
    assert len(batch) == len(starts)
    assert batch.x.shape[1] == (length if win <= 0 else min(win, length))
    for row, s in enumerate(starts):
        n = int(batch.mask[row].sum())
        assert np.array_equal(batch.x[row, :n, 0].numpy(), np.arange(s, s + n, dtype=np.float32))
        assert np.array_equal(batch.y[row, :n, 0].numpy(), np.arange(s, s + n, dtype=np.float32))


def test_windows_of_several_recordings_are_padded_only_when_short():
    xs = [np.ones((n, 2), np.float32) for n in (30, 7, 12)]
    ys = [np.ones((n, 1), np.float32) for n in (30, 7, 12)]
    batch = make_windows(xs, ys, win=10, hop=5)
    lengths = batch.mask.sum(1).tolist()
    assert lengths == [10] * 5 + [7] + [10, 10]
    assert batch.x.shape == (8, 10, 2)
    assert (batch.x[5, 7:] == 0).all() and np.isnan(batch.y[5, 7:].numpy()).all()


def test_pad_marks_real_steps():
    b = pad([np.ones((3, 2), np.float32), np.ones((5, 2), np.float32)],
            [np.zeros((3, 1), np.float32), np.zeros((5, 1), np.float32)])
    assert b.mask.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert np.isnan(b.y[0, 3:].numpy()).all() and (b.y[0, :3] == 0).all()


@pytest.mark.parametrize("max_steps", [1, 50, 200, 10_000])
def test_recording_batches_hold_each_recording_once_within_the_step_budget(max_steps):
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 80, 23)
    xs = [np.full((n, 1), i, np.float32) for i, n in enumerate(lengths)]
    ys = [np.zeros((n, 1), np.float32) for n in lengths]
    seen = []
    for idx, batch in recording_batches(xs, ys, max_steps=max_steps):
        assert len(idx) == len(batch)
        assert len(idx) == 1 or batch.x.shape[0] * batch.x.shape[1] <= max_steps
        for row, i in enumerate(idx):
            assert int(batch.mask[row].sum()) == lengths[i]
            assert (batch.x[row, : lengths[i], 0] == i).all()
        seen.extend(idx)
    assert sorted(seen) == list(range(len(xs)))


def test_config_rejects_a_hop_longer_than_the_window():
    with pytest.raises(ValidationError):
        DataConfig(features=["a"], targets=["b"], win=2, hop=5)
