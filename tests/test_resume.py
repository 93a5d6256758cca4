"""``--resume`` after an interruption gives the same result as an uninterrupted run
(emotrace.train.regression.train_seeds), and the same seed gives identical predictions.

The interruption is deterministic: an ``on_event`` callback raises KeyboardInterrupt at a chosen
(seed, epoch). The callback runs before that epoch's state is saved, so the resumed run repeats
that epoch from the state of the one before: model, optimiser, scheduler, both RNG streams and the
early-stopping counters must all come back exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import with_train

from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from emotrace.data.muse import load_corpus
from emotrace.data.standardise import Standardiser
from emotrace.train.predict import predict_arrays
from emotrace.train.regression import FitResult, Split, train_seeds

CONFIG = RunConfig(
    data=DataConfig(features=["audio", "video"], targets=["arousal", "valence"], win=20, hop=10),
    model=ModelConfig(hidden=8, layers=1, dropout=0.2, head_hidden=8),  # dropout uses the RNG
    # jobs=1: seeds one after another, so an interruption lands at a known (seed, epoch)
    train=TrainConfig(epochs=4, seeds=2, batch_size=4, lr=0.03, patience=10, lr_patience=0,
                      jobs=1),
)


@pytest.fixture(scope="module")
def splits(corpus_template) -> tuple[Split, Split]:
    corpus = load_corpus(corpus_template, features=CONFIG.data.features,
                         targets=CONFIG.data.targets)
    train, devel = corpus.partition("train"), corpus.partition("devel")
    std = Standardiser.fit(train, CONFIG.data.features)

    def split(recs):
        return Split([r.id for r in recs], [std.transform(r, CONFIG.data.features) for r in recs],
                     [r.targets(CONFIG.data.targets) for r in recs])

    return split(train), split(devel)


@pytest.fixture(scope="module")
def straight(splits, tmp_path_factory) -> FitResult:
    state = tmp_path_factory.mktemp("straight") / "train_state.pt"
    return train_seeds(CONFIG, *splits, state_path=state)


def without_timing(result: FitResult) -> list[dict]:
    out = []
    for s in result.seeds:
        history = [{k: v for k, v in h.items() if k != "seconds"} for h in s.history]
        out.append({"seed": s.seed, "best_epoch": s.best_epoch, "epochs": s.epochs,
                    "devel": s.devel, "score": s.score, "history": history})
    return out


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_straight_run_trains_every_seed_and_epoch(straight):
    assert [s.seed for s in straight.seeds] == [0, 1]
    assert all(s.epochs == 4 and len(s.history) == 4 for s in straight.seeds)
    # the lr schedule is part of what resume must restore; make sure it moved at least once
    lrs = [h["lr"] for s in straight.seeds for h in s.history]
    assert len(set(lrs)) > 1


@pytest.mark.parametrize("stop", [(0, 2), (0, 4), (1, 1), (1, 3)],
                         ids=["seed0-epoch2", "seed0-last-epoch", "seed1-epoch1", "seed1-epoch3"])
def test_resume_gives_the_same_result(splits, straight, tmp_path, stop):
    state = tmp_path / "train_state.pt"

    def interrupt(e):
        if (e.seed, e.epoch) == stop:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_seeds(CONFIG, *splits, state_path=state, on_event=interrupt)
    assert state.exists()
    saved = torch.load(state, weights_only=True)
    assert len(saved["done"]) == stop[0]  # the interruption really happened where intended

    resumed = train_seeds(CONFIG, *splits, state_path=state, resume=True)
    assert without_timing(resumed) == without_timing(straight)
    assert resumed.best_index == straight.best_index
    assert_same_state(resumed.model.state_dict(), straight.model.state_dict())
    devel_x = splits[1].xs
    for a, b in zip(predict_arrays(resumed.model, devel_x), predict_arrays(straight.model, devel_x),
                    strict=True):
        assert np.array_equal(a, b)


def test_resume_refuses_another_config(splits, tmp_path):
    from emotrace.errors import EmotraceError

    state = tmp_path / "train_state.pt"

    def interrupt(e):
        if e.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_seeds(CONFIG, *splits, state_path=state, on_event=interrupt)
    other = CONFIG.model_copy(deep=True)
    other.train.lr = 0.01
    with pytest.raises(EmotraceError, match="another configuration"):
        train_seeds(other, *splits, state_path=state, resume=True)


def test_same_seed_gives_identical_predictions(splits, straight, tmp_path):
    again = train_seeds(CONFIG, *splits)
    assert without_timing(again) == without_timing(straight)
    xs = splits[0].xs + splits[1].xs
    for a, b in zip(predict_arrays(again.model, xs), predict_arrays(straight.model, xs), strict=True):
        assert np.array_equal(a, b)


def test_another_seed_gives_other_predictions(splits, straight):
    other = CONFIG.model_copy(deep=True)
    other.train.seed, other.train.seeds, other.train.epochs = 7, 1, 1
    result = train_seeds(other, *splits)
    xs = splits[1].xs
    assert not np.array_equal(predict_arrays(result.model, xs)[0],
                              predict_arrays(straight.model, xs)[0])


def assert_same_result(a: FitResult, b: FitResult, xs: list[np.ndarray]) -> None:
    assert without_timing(a) == without_timing(b)
    assert a.best_index == b.best_index
    assert_same_state(a.model.state_dict(), b.model.state_dict())
    for p, q in zip(predict_arrays(a.model, xs), predict_arrays(b.model, xs), strict=True):
        assert np.array_equal(p, q)


@pytest.mark.parametrize("jobs, threads", [(2, 0), (2, 1), (1, 2), (3, 3)])
def test_jobs_and_threads_do_not_change_the_result(splits, straight, jobs, threads):
    """Seeds in worker processes, each with one torch thread: bit-identical to one process."""
    again = train_seeds(with_train(CONFIG, jobs=jobs, threads=threads), *splits)
    assert_same_result(again, straight, splits[0].xs + splits[1].xs)


@pytest.mark.parametrize("resume_jobs", [1, 2])
def test_parallel_run_interrupted_resumes_with_any_jobs(splits, straight, tmp_path, resume_jobs):
    """Ctrl-C while two seeds train in parallel: each seed's progress is kept in its own file,
    and the run resumed with one or two processes ends as the uninterrupted one."""
    from emotrace.train.loop import seed_state_path

    state = tmp_path / "train_state.pt"

    def interrupt(e):
        if e.epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_seeds(with_train(CONFIG, jobs=2), *splits, state_path=state, on_event=interrupt)
    assert state.exists()
    assert any(seed_state_path(state, s).exists() for s in (0, 1))  # a seed was mid-way
    resumed = train_seeds(with_train(CONFIG, jobs=resume_jobs), *splits, state_path=state,
                          resume=True)
    assert_same_result(resumed, straight, splits[0].xs + splits[1].xs)
    assert not any(seed_state_path(state, s).exists() for s in (0, 1))


def test_a_state_written_before_a_config_field_existed_still_resumes(tmp_path):
    """A resume state whose stored config lacks a field added since (at its default now) is
    accepted; the same state is refused when the field is set to anything else."""
    import torch

    from emotrace.config import DataConfig, RunConfig, TrainConfig
    from emotrace.errors import EmotraceError
    from emotrace.train.loop import STATE_FORMAT, _load_state

    config = RunConfig(data=DataConfig(features=["a"], targets=["t"]))
    old = config.outcome()
    del old["train"]["min_lr"], old["data"]["max_len"]
    path = tmp_path / "train_state.pt"
    torch.save({"format": STATE_FORMAT, "config": {"run": old, "fold": 0}, "done": []}, path)
    assert _load_state(path, {"run": config.outcome(), "fold": 0})["done"] == []
    changed = RunConfig(data=config.data, train=TrainConfig(min_lr=1e-5))
    with pytest.raises(EmotraceError, match="another configuration"):
        _load_state(path, {"run": changed.outcome(), "fold": 0})
    with pytest.raises(EmotraceError, match="another configuration"):
        _load_state(path, {"run": config.outcome(), "fold": 1})
