"""The training progress display: a bar per running seed that moves within epochs, and a bar
for the whole command whose total shrinks as early stopping comes closer."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from emotrace.cli.common import epoch_progress, eta
from emotrace.train.loop import BatchEvent, EpochEvent


def epoch(seed, index, n, e, last, max_epochs=10):
    return EpochEvent(seed, index, n, e, max_epochs, 0.5, 0.3, 0.3, 1e-3, 1.0, {}, last)


def test_parallel_seeds_each_get_a_bar_and_the_total_follows_early_stopping():
    p = Progress(console=Console(file=io.StringIO()))
    on_event = epoch_progress(p)
    on_event(BatchEvent(0, 0, 3, 1, 10, 5, 10))  # seed 0 half-way through epoch 1
    on_event(BatchEvent(1, 1, 3, 1, 10, 2, 10))  # seed 1 meanwhile, in another process
    tasks = {t.description: t for t in p.tasks}
    assert set(tasks) == {"all 3 seeds", "seed 0 (1/3)", "seed 1 (2/3)"}
    assert tasks["seed 0 (1/3)"].completed == 0.5 and tasks["seed 1 (2/3)"].completed == 0.2
    assert tasks["all 3 seeds"].total == 30 and tasks["all 3 seeds"].completed == 0.7
    on_event(epoch(0, 0, 3, 4, last=6))  # seed 0 can run at most to epoch 6 now
    tasks = {t.description: t for t in p.tasks}
    assert tasks["seed 0 (1/3)"].completed == 4 and tasks["seed 0 (1/3)"].total == 6
    assert tasks["all 3 seeds"].total == 6 + 10 + 10
    assert len(p.tasks) == 3  # interleaved events do not add bars


def test_eta_is_the_time_left_at_the_speed_so_far():
    assert eta(5, 20, 30.0) == "eta ≤ 1:30"
    assert eta(20, 20, 30.0) == "eta ≤ 0:00"
    assert eta(0, 20, 30.0) == ""
