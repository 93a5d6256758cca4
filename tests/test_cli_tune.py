"""The ``emotrace tune`` results table (emotrace.cli.tune): readable at 80 columns."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from emotrace.cli.tune import results_table, varied


def _result(n: int = 6) -> dict:
    rows = []
    for i in range(n):
        params = {"model.hidden": [32, 64, 128][i % 3], "model.name": "gcnn-rnn",
                  "train.modality_dropout": 0.1 * (i % 4), "train.lr": 10 ** -(2 + i / 7),
                  "data.per_recording": ["head", "eye"] if i % 2 else [],
                  "train.batch_size": 64, "model.layers": 1 + i % 2}
        finished = i < n - 2
        rows.append({"rank": i + 1, "status": "finished" if finished else "stopped",
                     "score": 0.6 - 0.01 * i, "score_std": 0.0123 if finished else None,
                     "params": params, "run": f"search/trials/t{i}", "error": None})
    return {"trials": rows, "n_finished": n - 2, "n_stopped": 2, "n_errors": 0, "seconds": 12.0}


def _render(table, width: int = 80) -> str:
    console = Console(width=width, record=True)
    console.print(table)
    return console.export_text()


def test_only_the_options_that_differ_are_columns():
    assert varied(_result()["trials"]) == ["data.per_recording", "model.hidden", "model.layers",
                                           "train.lr", "train.modality_dropout"]
    one = _result(1)["trials"]
    assert varied(one) == sorted(one[0]["params"])  # one trial: everything it was given


def test_results_table_is_readable_at_80_columns():
    result = _result()
    text = _render(results_table(result, Path("search")))
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for header in ("rank", "status", "devel ccc", "options that differ"):
        assert header in text
    words = text.split()
    for r in result["trials"]:
        assert f"{r['score']:.4f}" in words
        assert f"model.hidden={r['params']['model.hidden']}" in words
        assert f"train.lr={r['params']['train.lr']:.4g}" in words
    assert "data.per_recording=head,eye" in words and "data.per_recording=[]" in words
    assert "0.0123" in words  # the seeds' spread of finished trials
    assert "model.name" not in text and "train.batch_size" not in text  # the same in every trial
