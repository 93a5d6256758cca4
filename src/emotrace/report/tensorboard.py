"""Training curves as TensorBoard scalars (needs the ``tensorboard`` extra).

One event folder per run, ``DIR/<run>/``, with the scalars ``seed<s>/train_loss``,
``seed<s>/devel_ccc`` (``devel_f1_macro`` for a classifier) and ``seed<s>/lr`` per epoch; view
them with ``tensorboard --logdir DIR``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from emotrace.errors import EmotraceError


def available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def write_scalars(folder: Path, histories: list[tuple[int, list[dict]]]) -> int:
    """Write every seed's per-epoch history to ``folder``; returns the number of scalars."""
    if not available():
        raise EmotraceError('TensorBoard output needs the tensorboard package: pip install '
                            '"emotrace[tensorboard]", or pass --no-tensorboard.')
    from torch.utils.tensorboard import SummaryWriter

    n = 0
    writer = SummaryWriter(log_dir=str(folder))
    try:
        for seed, hist in histories:
            for i, h in enumerate(hist):
                step = int(h.get("epoch", i + 1))
                for key, value in h.items():  # train_loss, devel_ccc (or devel_f1_macro), lr
                    if key not in ("epoch", "seconds") and isinstance(value, int | float):
                        writer.add_scalar(f"seed{seed}/{key}", float(value), step)
                        n += 1
    finally:
        writer.close()
    return n
