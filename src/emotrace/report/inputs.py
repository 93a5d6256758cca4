"""What a report shows about one run, read from its folder and (optionally) the corpus' labels.

A run folder holds ``metrics.json`` (devel metrics, per-seed training ``history``), ``config.yaml``
and ``predictions/<partition>/<recording_id>.csv``. Prediction files have a ``value`` column
(one target), one column per target, or ``segment_id`` and ``class_id`` per segment
(classification, matched to the gold ``class_id`` by segment id). Gold traces
come from ``ROOT/label_segments/<target>/<recording_id>.csv`` and are matched to the predictions
by timestamp (within half a millisecond), never by row position.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emotrace.config import read_yaml
from emotrace.data.csvio import read_table
from emotrace.data.names import path_for
from emotrace.errors import EmotraceError

TOLERANCE_MS = 0.5


@dataclass
class Trace:
    """One recording of one regression target: prediction and gold (NaN where unlabelled)."""

    recording: str
    seconds: np.ndarray
    prediction: np.ndarray
    gold: np.ndarray | None


@dataclass
class Segments:
    """A classification target: predicted and gold class per segment, matched by segment id."""

    predicted: np.ndarray
    gold: np.ndarray | None


@dataclass
class RunData:
    path: Path
    name: str
    metrics: dict
    config: dict
    targets: list[str]
    traces: dict[str, list[Trace]] = field(default_factory=dict)
    segments: dict[str, Segments] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def histories(self) -> list[tuple[int, list[dict]]]:
        """``(seed, history)`` of every seed that has a training history."""
        return [(s.get("seed", i), s["history"]) for i, s in enumerate(self.metrics.get("seeds", []))
                if isinstance(s, dict) and s.get("history")]


def _targets(path: Path, metrics: dict, config: dict) -> list[str]:
    t = metrics.get("target", metrics.get("targets"))
    if isinstance(t, str):
        return [t]
    if isinstance(t, list) and t:
        return [str(x) for x in t]
    ct = config.get("data", {}).get("targets") if isinstance(config.get("data"), dict) else None
    if ct:
        return [str(x) for x in ct]
    raise EmotraceError(f"{path / 'metrics.json'}: names no target. Pass the folder of a finished "
                        f"`emotrace train` (or fuse) run.")


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    header = path.read_text(encoding="utf-8-sig").splitlines()[0].strip().split(",")
    try:
        data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    except ValueError as e:
        raise EmotraceError(f"{path}: not a numeric prediction file ({e}). Re-create the run's "
                            f"predictions with `emotrace predict`.") from None
    if data.shape[0] and data.shape[1] != len(header):
        raise EmotraceError(f"{path}: {data.shape[1]} columns, but the header names {len(header)}. "
                            f"Re-create the run's predictions with `emotrace predict`.")
    return header, data.reshape(-1, len(header))


def _gold(data: Path | None, target: str, recording: str,
          column: str) -> tuple[np.ndarray, np.ndarray] | None:
    if data is None:
        return None
    path = path_for(data / "label_segments" / target, recording)
    if not path.exists():
        return None
    extra = ["segment_id"] if column == "class_id" else []
    t = read_table(path, value_columns=[column, *extra])
    return t.timestamps, t.values


def _match(ts: np.ndarray, gold_ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index into ``gold_ts`` of each ``ts`` and whether it matched within the tolerance."""
    order = np.argsort(gold_ts)
    g = gold_ts[order]
    pos = np.clip(np.searchsorted(g, ts), 1, max(len(g) - 1, 1))
    left = np.clip(pos - 1, 0, len(g) - 1)
    right = np.clip(pos, 0, len(g) - 1)
    best = np.where(np.abs(g[left] - ts) <= np.abs(g[right] - ts), left, right)
    return order[best], np.abs(g[best] - ts) <= TOLERANCE_MS


def load_run_data(path: Path | str, *, data: Path | str | None = None,
                  partition: str = "devel") -> RunData:
    """Read one run's metrics, config, predictions of ``partition`` and, when ``data`` is given,
    the gold traces of the same recordings."""
    path = Path(path)
    data = Path(data) if data is not None else None
    if not path.is_dir():
        raise EmotraceError(f"{path}: run folder not found. Pass the --out folder of a finished "
                            f"`emotrace train`.")
    if not (path / "metrics.json").exists():
        raise EmotraceError(f"{path / 'metrics.json'}: missing, so {path} is not a finished run. "
                            f"Pass the --out folder of a finished `emotrace train`.")
    try:
        metrics = json.loads((path / "metrics.json").read_text())
    except json.JSONDecodeError as e:
        raise EmotraceError(f"{path / 'metrics.json'}, line {e.lineno}: not valid JSON ({e.msg}). "
                            f"Retrain the run or restore the file.") from None
    config: dict = {}
    if (path / "config.yaml").exists():
        config = read_yaml(path / "config.yaml")  # a truncated file is a clear error
    targets = _targets(path, metrics, config)
    rd = RunData(path, path.name or str(path), metrics, config, targets)
    folder = path / "predictions" / partition
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    if not files:
        rd.notes.append(f"no predictions for partition {partition!r} in {folder}; only the "
                        f"training curves and stored metrics are shown")
        return rd
    if data is not None and not (data / "label_segments").is_dir():
        raise EmotraceError(f"{data}: no label_segments folder, so there is no gold standard to "
                            f"compare with. Pass the corpus the run was trained on as --data.")
    if data is None:
        rd.notes.append("no --data corpus given: traces show predictions only, without gold")
    for f in files:
        header, values = _read_csv(f)
        if "class_id" in header:  # segment classification: segment_id[, start, end], class_id
            _add_segments(rd, f, header, values, data)
            continue
        if "timestamp" not in header:
            raise EmotraceError(f"{f}, line 1: no 'timestamp' column. Re-create the run's "
                                f"predictions with `emotrace predict`.")
        ts = values[:, header.index("timestamp")]
        for k, target in enumerate(targets):
            col = target if target in header else ("value" if k == 0 and "value" in header else None)
            if col is None:
                raise EmotraceError(f"{f}, line 1: no column for target {target!r} (found "
                                    f"{', '.join(header)}). Re-create the run's predictions.")
            pred = values[:, header.index(col)]
            gold = None
            g = _gold(data, target, f.stem, "value")
            if g is not None:
                idx, hit = _match(ts, g[0])
                gold = np.where(hit, g[1][idx, 0], np.nan)
            rd.traces.setdefault(target, []).append(Trace(f.stem, ts / 1000.0, pred, gold))
    for target, traces in rd.traces.items():
        if data is not None and all(t.gold is None for t in traces):
            rd.notes.append(f"target {target!r}: no label files in {data / 'label_segments' / target}"
                            f" for these recordings; traces show predictions only")
    return rd


def _add_segments(rd: RunData, f: Path, header: list[str], values: np.ndarray,
                  data: Path | None) -> None:
    target = rd.targets[0]
    pred_cls = values[:, header.index("class_id")]
    seg = values[:, header.index("segment_id")] if "segment_id" in header else None
    if seg is not None:  # one class per segment, whether the file has a row per step or per segment
        _, first = np.unique(seg, return_index=True)
        first = np.sort(first)
        pred_cls, seg, values = pred_cls[first], seg[first], values[first]
    gold_cls = None
    g = _gold(data, target, f.stem, "class_id")
    if g is not None and seg is not None:
        gold_seg = {}
        for c, s in g[1]:
            if np.isfinite(s) and np.isfinite(c):
                gold_seg.setdefault(float(s), float(c))
        gold_cls = np.array([gold_seg.get(float(s), np.nan) for s in seg])
    elif g is not None and ("timestamp" in header or "start" in header):  # no ids: match by time
        ts = values[:, header.index("timestamp" if "timestamp" in header else "start")]
        idx, hit = _match(ts, g[0])
        gold_cls = np.where(hit, g[1][idx, 0], np.nan)
    old = rd.segments.get(target)
    if old is None:
        rd.segments[target] = Segments(pred_cls, gold_cls)
    else:
        gold = None if old.gold is None or gold_cls is None else np.concatenate([old.gold, gold_cls])
        rd.segments[target] = Segments(np.concatenate([old.predicted, pred_cls]), gold)
