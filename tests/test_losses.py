"""Masked training losses (emotrace.train.losses): padding and NaN truths are left out, the CCC
losses agree with the CCC metric, and gradients stay finite."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emotrace.metrics import ccc
from emotrace.train.losses import LOSSES, ccc_batch_loss, ccc_loss

NAMES = sorted(LOSSES)


def data(seed: int = 0, b: int = 3, t: int = 30, k: int = 2):
    g = torch.Generator().manual_seed(seed)
    truth = torch.randn(b, t, k, generator=g, dtype=torch.float64)
    pred = (0.5 * truth + 0.5 * torch.randn(b, t, k, generator=g, dtype=torch.float64) + 0.3)
    mask = torch.ones(b, t, dtype=torch.bool)
    return pred, truth, mask


@pytest.mark.parametrize("name", NAMES)
def test_padded_steps_do_not_change_the_loss(name):
    loss = LOSSES[name]
    pred, truth, mask = data()
    ref = loss(pred, truth, mask)
    pad = 7
    g = torch.Generator().manual_seed(1)
    junk_p = 100 * torch.randn(3, pad, 2, generator=g, dtype=torch.float64)
    junk_y = 100 * torch.randn(3, pad, 2, generator=g, dtype=torch.float64)
    padded = loss(torch.cat([pred, junk_p], 1), torch.cat([truth, junk_y], 1),
                  torch.cat([mask, torch.zeros(3, pad, dtype=torch.bool)], 1))
    assert padded.item() == pytest.approx(ref.item(), abs=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_nan_truths_do_not_change_the_loss(name):
    loss = LOSSES[name]
    pred, truth, mask = data(2)
    drop = torch.zeros_like(mask)
    drop[0, 3:9] = True
    drop[2, -4:] = True
    masked = loss(pred, truth, mask & ~drop)  # the same steps left out by the mask
    holes = truth.clone()
    holes[drop] = float("nan")
    junk = pred.clone()
    junk[drop] = 1e3
    assert loss(junk, holes, mask).item() == pytest.approx(masked.item(), abs=1e-10)
    assert torch.isfinite(loss(junk, holes, mask))


@pytest.mark.parametrize("name", NAMES)
def test_nan_in_one_target_only_leaves_the_other(name):
    loss = LOSSES[name]
    pred, truth, mask = data(3)
    holes = truth.clone()
    holes[:, :5, 0] = float("nan")
    full = loss(pred, holes, mask)
    assert torch.isfinite(full)
    # target 1 still has every step: changing it changes the loss
    truth2 = holes.clone()
    truth2[:, :5, 1] += 1.0
    assert loss(pred, truth2, mask).item() != pytest.approx(full.item(), abs=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("loss", [ccc_loss, ccc_batch_loss], ids=["ccc", "ccc-batch"])
def test_ccc_loss_is_one_minus_ccc_on_one_sequence(loss, seed):
    pred, truth, mask = data(seed, b=1, t=200, k=1)
    expected = 1 - ccc(truth.numpy().ravel(), pred.numpy().ravel())
    assert loss(pred, truth, mask).item() == pytest.approx(expected, abs=1e-6)


def test_ccc_loss_averages_windows_and_ccc_batch_pools_them():
    pred, truth, mask = data(4, b=2, t=50, k=1)
    pred[1] += 2.0  # a level error in the second window only
    y, p = truth.numpy()[..., 0], pred.numpy()[..., 0]
    per_window = 1 - np.mean([ccc(y[i], p[i]) for i in range(2)])
    pooled = 1 - ccc(y.ravel(), p.ravel())
    assert ccc_loss(pred, truth, mask).item() == pytest.approx(per_window, abs=1e-6)
    assert ccc_batch_loss(pred, truth, mask).item() == pytest.approx(pooled, abs=1e-6)


def test_ccc_loss_ignores_windows_with_fewer_than_two_steps():
    pred, truth, mask = data(5, b=2, t=20, k=1)
    ref = ccc_loss(pred[:1], truth[:1], mask[:1])
    mask[1, 1:] = False  # second window: a single labelled step
    assert ccc_loss(pred, truth, mask).item() == pytest.approx(ref.item(), abs=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_are_finite_and_zero_where_left_out(name):
    pred, truth, mask = data(6)
    pred = pred.float().requires_grad_(True)
    truth = truth.float()
    truth[0, 2:6] = float("nan")
    mask[1, -5:] = False
    mask[2, :] = False  # a window with nothing in it
    LOSSES[name](pred, truth, mask).backward()
    assert torch.isfinite(pred.grad).all()
    assert (pred.grad[0, 2:6] == 0).all()
    assert (pred.grad[1, -5:] == 0).all()
    assert (pred.grad[2] == 0).all()
    assert pred.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_constant_prediction_has_finite_gradient(name):
    _, truth, mask = data(7)
    pred = torch.zeros(3, 30, 2, requires_grad=True)
    loss = LOSSES[name](pred, truth.float(), mask)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
