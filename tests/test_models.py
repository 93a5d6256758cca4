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


def test_muse2021_input_layer_is_one_bias_free_linear_and_the_head_bias_starts_at_zero():
    cfg = ModelConfig(name="rnn", cell="lstm", hidden=8, layers=2, head_hidden=4, dropout=0.0,
                      input_layer="linear", output_scale=False)
    model = build_model(cfg, D_IN, K)
    linears = [m for m in model.proj.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 1 and linears[0].bias is None
    assert not any(isinstance(m, torch.nn.ReLU) for m in model.proj.modules())
    # the projection is linear: f(2x) = 2 f(x)
    x = inputs(2, 6)
    m = torch.ones(2, 6, dtype=torch.bool)
    assert torch.allclose(model.proj(2 * x, m), 2 * model.proj(x, m), atol=1e-6)
    assert torch.equal(model.head.net[-1].bias, torch.zeros(K))
    default = build_model(ModelConfig(name="rnn"), D_IN, K)
    assert default.proj.proj[0].bias is not None
    assert torch.equal(default.head.net[-1].bias, torch.zeros(K))


def test_output_scale_off_keeps_the_raw_head_output():
    x, m = inputs(2, 6), torch.ones(2, 6, dtype=torch.bool)
    for scale in (True, False):
        cfg = ModelConfig(name="rnn", hidden=8, layers=1, head_hidden=4, output_scale=scale)
        torch.manual_seed(0)
        model = build_model(cfg, D_IN, K).eval()
        raw = model(x, m)
        model.set_output_scale(torch.full((K,), 5.0), torch.full((K,), 2.0))
        scaled = model(x, m)
        if scale:
            assert torch.allclose(scaled, raw * 2 + 5)
        else:
            assert torch.equal(scaled, raw)
