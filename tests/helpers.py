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


def snapshot(root: Path, *, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    """Every file and folder under ``root`` -> a hash of its content ("dir" for folders), except
    under ``skip`` (the output the command may write) and the corpus cache (``.emotrace-cache``,
    which loading refreshes by design). Two equal snapshots: nothing there was created, changed
    or removed."""
    import hashlib

    out = {}
    for p in sorted(root.rglob("*")):
        if ".emotrace-cache" in p.parts or any(p == s or p.is_relative_to(s) for s in skip):
            continue
        out[str(p.relative_to(root))] = (hashlib.sha256(p.read_bytes()).hexdigest()
                                         if p.is_file() else "dir")
    return out


def with_train(config: RunConfig, **train) -> RunConfig:
    """A copy of ``config`` with some ``train`` options changed."""
    out = config.model_copy(deep=True)
    for k, v in train.items():
        setattr(out.train, k, v)
    return out
