"""Sequence models (emotrace.models): shapes, masks and causality for every model family, cell
and direction."""

from __future__ import annotations

import itertools

import pytest
import torch

from emotrace.config import ModelConfig
from emotrace.models import MODELS, build_model, from_args

D_IN, K = 5, 2
COMBOS = list(itertools.product(MODELS, ("uni", "bi"), ("gru", "lstm")))
IDS = [f"{m}-{d}-{c}" for m, d, c in COMBOS]


def model_for(name: str, direction: str, cell: str, *, layers: int = 2) -> torch.nn.Module:
    cfg = ModelConfig(name=name, cell=cell, bidirectional=direction == "bi", hidden=8, layers=layers,
                      heads=2, channels=6, kernel=3, head_hidden=4, dropout=0.3)
    torch.manual_seed(0)
    return build_model(cfg, D_IN, K).eval()


def inputs(b: int, t: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, t, D_IN, generator=torch.Generator().manual_seed(seed))


def test_every_registered_model_is_tested():
    assert set(MODELS) == {"rnn", "attn-rnn", "gcnn-rnn"}


@pytest.mark.parametrize("name,direction,cell", COMBOS, ids=IDS)
def test_output_shape(name, direction, cell):
    model = model_for(name, direction, cell)
    x = inputs(3, 17)
    y = model(x, torch.ones(3, 17, dtype=torch.bool))
    assert y.shape == (3, 17, K)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name,direction,cell", COMBOS, ids=IDS)
def test_padding_does_not_change_real_steps(name, direction, cell):
    """A recording gives the same outputs alone and right-padded with junk in a longer batch."""
    model = model_for(name, direction, cell)
    lengths = [23, 9, 16]
    t = 30
    x = 50 * inputs(len(lengths), t, seed=1)  # junk everywhere, real data written below
    mask = torch.zeros(len(lengths), t, dtype=torch.bool)
    alone = []
    with torch.no_grad():
        for i, n in enumerate(lengths):
            xi = inputs(1, n, seed=10 + i)
            x[i, :n] = xi[0]
            mask[i, :n] = True
            alone.append(model(xi, torch.ones(1, n, dtype=torch.bool))[0])
        batched = model(x, mask)
    for i, n in enumerate(lengths):
        torch.testing.assert_close(batched[i, :n], alone[i], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name,direction,cell", COMBOS, ids=IDS)
def test_unidirectional_models_are_causal(name, direction, cell):
    model = model_for(name, direction, cell)
    x = inputs(2, 20, seed=2)
    mask = torch.ones(2, 20, dtype=torch.bool)
    changed = x.clone()
    changed[:, 12:] += 3.0  # change the future from step 12 on
    with torch.no_grad():
        a, b = model(x, mask), model(changed, mask)
    assert not torch.allclose(a[:, 12:], b[:, 12:])  # the change is seen from step 12 on
    if direction == "uni":
        torch.testing.assert_close(a[:, :12], b[:, :12], atol=0, rtol=0)
    else:  # bidirectional models see the future (this is what makes them non-causal)
        assert not torch.allclose(a[:, :12], b[:, :12])


@pytest.mark.parametrize("name,direction,cell", COMBOS[::3], ids=IDS[::3])
def test_rebuilt_from_model_args(name, direction, cell):
    model = model_for(name, direction, cell)
    again = from_args(model.model_args())
    again.load_state_dict(model.state_dict())
    again.eval()
    x = inputs(2, 11)
    mask = torch.ones(2, 11, dtype=torch.bool)
    with torch.no_grad():
        assert torch.equal(model(x, mask), again(x, mask))


def test_dropout_is_off_in_eval_mode():
    model = model_for("attn-rnn", "bi", "gru")
    x = inputs(2, 11)
    mask = torch.ones(2, 11, dtype=torch.bool)
    with torch.no_grad():
        assert torch.equal(model(x, mask), model(x, mask))
        model.train()
        assert not torch.equal(model(x, mask), model(x, mask))
