"""The sequence auto-encoder and the difficulty indicators built on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emotrace.models.autoencoder import SequenceAutoEncoder, from_args
from emotrace.train.difficulty import Difficulty


@pytest.mark.parametrize("cell,bidirectional", [("gru", True), ("lstm", False)])
def test_shapes_and_padding(cell, bidirectional):
    torch.manual_seed(0)
    ae = SequenceAutoEncoder(5, hidden=8, bottleneck=2, cell=cell, bidirectional=bidirectional).eval()
    x = torch.randn(2, 7, 5)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    assert ae(x, mask).shape == (2, 7, 5)
    err = ae.step_error(x, mask)
    assert err.shape == (2, 7)
    assert (err[1, 4:] == 0).all() and (err[0] > 0).all()
    # a padded sequence gets the same errors as the same sequence alone
    alone = ae.step_error(x[1:, :4], torch.ones(1, 4, dtype=torch.bool))
    torch.testing.assert_close(alone[0], err[1, :4])


def test_rebuilt_from_args():
    ae = SequenceAutoEncoder(3, hidden=4, bottleneck=1, cell="lstm", bidirectional=False)
    again = from_args(ae.model_args())
    again.load_state_dict(ae.state_dict())
    x, m = torch.randn(1, 5, 3), torch.ones(1, 5, dtype=torch.bool)
    torch.testing.assert_close(ae(x, m), again(x, m))


def _data(seed: int, n: int = 12) -> list[np.ndarray]:
    """Two feature sets: 3 smooth columns, then 2 columns copying the first two."""
    rng = np.random.default_rng(seed)
    xs = []
    for _ in range(n):
        t = rng.integers(30, 50)
        a = np.cumsum(rng.standard_normal((t, 3)), 0) * 0.2
        xs.append(np.concatenate([a, a[:, :2]], axis=1).astype(np.float32))
    return xs


@pytest.fixture(scope="module")
def difficulty() -> Difficulty:
    torch.manual_seed(0)
    return Difficulty.fit(_data(0), [(0, 3), (3, 5)], ["a", "b"], hidden=8, epochs=15, win=20)


def test_train_errors_are_standardised(difficulty):
    e = np.concatenate(difficulty.errors(_data(0)), axis=0)
    assert e.shape[1] == 2
    np.testing.assert_allclose(e.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(e.std(0), 1, atol=1e-4)


def test_unusual_input_is_harder(difficulty):
    usual = np.concatenate(difficulty.errors(_data(1)), axis=0).mean(0)
    odd = np.concatenate(difficulty.errors([10 * x for x in _data(1)]), axis=0).mean(0)
    assert (odd > usual + 1).all()


def test_append_and_state_round_trip(difficulty):
    xs = _data(2, n=3)
    out = difficulty.append(xs)
    assert [o.shape for o in out] == [(len(x), 7) for x in xs]
    np.testing.assert_array_equal(out[0][:, :5], xs[0])
    again = Difficulty.from_state(difficulty.state())
    for a, b in zip(again.append(xs), out, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_same_seed_same_indicators():
    xs = _data(3, n=4)
    a = Difficulty.fit(xs, [(0, 5)], ["x"], hidden=4, epochs=2, seed=7).errors(xs)
    b = Difficulty.fit(xs, [(0, 5)], ["x"], hidden=4, epochs=2, seed=7).errors(xs)
    np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))


def test_auto_encoder_size_from_the_config(corpus, tmp_path):
    """data.difficulty_hidden / difficulty_layers size the auto-encoders (the auto-encoder fusion
    recipe gives them the regressor's 4 x 64); the run saves and reloads them."""
    import emotrace
    from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from emotrace.run import load_run

    cfg = RunConfig(data=DataConfig(features=["audio", "video"], targets=["arousal"],
                                    difficulty=True, difficulty_hidden=6, difficulty_layers=2),
                    model=ModelConfig(hidden=8, layers=1), train=TrainConfig(epochs=1, seeds=1))
    emotrace.fit(corpus, out=tmp_path / "run", config=cfg)
    run = load_run(tmp_path / "run")
    ae = run.difficulty.models[0]
    assert (ae.enc.rnn.num_layers, ae.enc.rnn.hidden_size) == (2, 6)
    assert emotrace.evaluate(tmp_path / "run", corpus, partition="devel")["ccc"] == \
        pytest.approx(run.metrics["devel"]["ccc"], abs=1e-6)
    # an auto-encoder saved before the option existed (no "layers") still rebuilds with 1 layer
    args = SequenceAutoEncoder(3).model_args()
    del args["layers"]
    assert from_args(args).enc.rnn.num_layers == 1
