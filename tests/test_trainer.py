"""Trainer helpers: modality dropout, the plateau schedule."""

import pytest
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


def test_plateau_halving_stops_at_min_lr():
    """A score that never improves halves the learning rate every epoch, down to ``min_lr``."""
    from emotrace.train.loop import Schedule, Task, fit_task

    task = Task(build=lambda: torch.nn.Linear(1, 1), n_items=4,
                loss=lambda model, idx: (model(torch.ones(len(idx), 1)) ** 2).mean(),
                score=lambda model: (0.0, {}))
    lrs = []
    sched = Schedule(epochs=8, lr=0.1, batch_size=4, lr_patience=0, lr_factor=0.5, min_lr=0.02)
    fit_task(task, sched, [0], on_event=lambda e: lrs.append(e.lr))
    assert lrs[0] == pytest.approx(0.1)
    assert min(lrs) == pytest.approx(0.02)
    assert lrs[-1] == pytest.approx(0.02)
    assert lrs[1] < lrs[0]


def test_plateau_on_training_loss():
    """``plateau_on="train_loss"``: a training loss that never decreases halves the learning rate
    although the held-out score improves every epoch; the default watches the score and keeps it."""
    from emotrace.train.loop import Schedule, Task, fit_task

    scores = iter(range(100))
    task = Task(build=lambda: torch.nn.Linear(1, 1), n_items=4,
                loss=lambda model, idx: (model.weight * 0).sum() + 1.0,  # constant loss
                score=lambda model: (float(next(scores)), {}))
    by_loss, by_score = [], []
    fit_task(task, Schedule(epochs=4, lr=0.1, batch_size=4, lr_patience=0, plateau_on="train_loss"),
             [0], on_event=lambda e: by_loss.append(e.lr))
    fit_task(task, Schedule(epochs=4, lr=0.1, batch_size=4, lr_patience=0), [0],
             on_event=lambda e: by_score.append(e.lr))
    assert by_loss[-1] < 0.1 / 2  # halved after each epoch without a lower loss
    assert by_score == [pytest.approx(0.1)] * 4


def test_lr_plateau_on_reaches_the_schedule():
    from emotrace.config import TrainConfig
    from emotrace.train.regression import schedule

    assert schedule(TrainConfig()).plateau_on == "score"
    assert schedule(TrainConfig(lr_plateau_on="train-loss")).plateau_on == "train_loss"
