"""Helpers shared by the test modules (imported as ``helpers``; tests/ is on sys.path)."""

from __future__ import annotations

from pathlib import Path

from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from emotrace.datasets import synthetic

#: CLI flags that keep training to a fraction of a second.
TINY = ["--epochs", "1", "--seeds", "1", "--hidden", "8", "--layers", "1", "--quiet"]
#: The same as a config (features audio, target arousal).
TINY_CONFIG = RunConfig(
    data=DataConfig(features=["audio"], targets=["arousal"]),
    model=ModelConfig(hidden=8, layers=1),
    train=TrainConfig(epochs=1, seeds=1),
)


def make_corpus(root: Path, **kw) -> Path:
    """5 recordings of 40-60 steps at 250 ms: S01_1-S03_1 train, S04_1 devel, S05_1 test."""
    args = {"subjects": (3, 1, 1), "recordings_per_subject": 1, "steps": (40, 60)} | kw
    synthetic.prepare(root, **args)
    return root


def run_cli(capsys, *args: str | Path) -> tuple[int, str, str]:
    """Call ``emotrace.cli.main`` in-process; returns ``(exit code, stdout, stderr)``."""
    from emotrace.cli import main

    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def write_lines(path: Path, rows: list[str]) -> None:
    path.write_text("\n".join(rows) + "\n")


def set_cell(path: Path, line: int, column: int, value: str) -> None:
    """Replace one cell; ``line`` is 1-based as in error messages, ``column`` 0-based."""
    rows = lines(path)
    cells = rows[line - 1].split(",")
    cells[column] = value
    rows[line - 1] = ",".join(cells)
    write_lines(path, rows)
