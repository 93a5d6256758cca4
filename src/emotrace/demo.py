"""``emotrace demo``: synthetic corpus → train → evaluate, end to end in well under 2 minutes."""

from __future__ import annotations

import tempfile
from pathlib import Path

from emotrace.api import evaluate, fit
from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from emotrace.datasets import synthetic
from emotrace.train.loop import EpochEvent

DEMO_CONFIG = RunConfig(
    data=DataConfig(features=["audio", "video", "physio"], targets=["arousal", "valence"],
                    win=100, hop=50),
    model=ModelConfig(name="rnn", cell="gru", hidden=32, layers=2, bidirectional=True),
    train=TrainConfig(epochs=30, lr=3e-3, batch_size=16, loss="ccc-batch", patience=8, seeds=1),
)


def run_demo(out: Path | str | None = None, *, progress=None) -> list[dict]:
    """Run the demo; returns one row of metrics per (target, partition)."""
    if out is None:
        with tempfile.TemporaryDirectory(prefix="emotrace-demo-") as tmp:
            return run_demo(Path(tmp), progress=progress)
    out = Path(out)
    corpus_dir, run_dir = out / "corpus", out / "run"
    synthetic.prepare(corpus_dir)
    task = progress.add_task("train (demo)", total=DEMO_CONFIG.train.epochs, info="") \
        if progress is not None else None

    def on_event(e) -> None:
        if progress is not None and isinstance(e, EpochEvent):
            progress.update(task, completed=e.epoch, info=f"devel ccc {e.devel_score:.3f}")

    fit(corpus_dir, out=run_dir, config=DEMO_CONFIG, on_event=on_event)
    rows = []
    for part in ("devel", "test"):
        result = evaluate(run_dir, corpus_dir, partition=part)
        for target, m in result["targets"].items():
            rows.append({"target": target, "partition": part, **m})
    return rows
