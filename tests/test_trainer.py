"""Trainer helpers: modality dropout."""

import torch

from emotrace.train.regression import drop_modalities

GROUPS = [(0, 2), (2, 5), (5, 6)]


def test_modality_dropout_zeroes_whole_feature_sets_per_window():
    torch.manual_seed(0)
    x = torch.randn(500, 7, 6) + 10  # no value is 0 by chance
    out = drop_modalities(x, GROUPS, 0.3)
    for a, b in GROUPS:
        block = out[:, :, a:b]
        zero = (block == 0).flatten(1).all(1)
        kept = (block == x[:, :, a:b]).flatten(1).all(1)
        assert bool((zero | kept).all()), "a feature set is either dropped whole or kept"
        assert 0.2 < zero.float().mean() < 0.4


def test_modality_dropout_off_or_single_set_is_identity():
    x = torch.randn(4, 3, 6)
    assert torch.equal(drop_modalities(x, GROUPS, 0.0), x)
    assert torch.equal(drop_modalities(x, [(0, 6)], 0.5), x)
