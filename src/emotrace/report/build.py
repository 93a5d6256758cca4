"""Assemble the report of one or more runs: figures, tables, HTML, TensorBoard scalars."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emotrace._version import __version__
from emotrace.config import EXECUTION
from emotrace.errors import EmotraceError
from emotrace.fileio import atomic_path, write_text, writes
from emotrace.metrics import classification_metrics, trace_metrics
from emotrace.report import figures
from emotrace.report import tensorboard as tb
from emotrace.report.html import Figure, Section, render
from emotrace.report.inputs import RunData, load_run_data

METRICS = ("ccc", "ccc_per_recording", "pcc", "rmse")
HTML = "report.html"


def _fmt(v) -> str:
    return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3f}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "run"


def _stored(rd: RunData, target: str) -> dict:
    """devel metrics of ``target`` from metrics.json (single- or multi-target layout)."""
    dev = rd.metrics.get("devel") or {}
    if isinstance(dev.get(target), dict):
        return dev[target]
    return dev if len(rd.targets) == 1 else {}


def _seed_spread(rd: RunData, target: str, metric: str = "ccc") -> tuple[float, float] | None:
    vals = []
    for s in rd.metrics.get("seeds", []):
        d = s.get("devel") if isinstance(s, dict) else None
        if isinstance(d, dict):
            d = d.get(target, d) if len(rd.targets) > 1 else d
            if isinstance(d, dict) and isinstance(d.get(metric), int | float):
                vals.append(float(d[metric]))
    return (float(np.mean(vals)), float(np.std(vals))) if vals else None


def _model(rd: RunData) -> str:
    m = rd.config.get("model") if isinstance(rd.config.get("model"), dict) else None
    fusion = rd.config.get("fusion")
    if isinstance(fusion, dict):
        return f"late fusion ({fusion.get('method', '?')}) of {len(fusion.get('runs', []))} runs"
    if not m:
        return rd.metrics.get("kind", "—") if isinstance(rd.metrics.get("kind"), str) else "—"
    return (f"{m.get('name', '?')} {m.get('cell', '')} "
            f"{'bi' if m.get('bidirectional') else 'uni'} h{m.get('hidden', '?')}x{m.get('layers', '?')}")


@writes("out", inputs={"RUN": "runs", "--data": "data"}, lock=False)
def report(runs: list[Path | str] | Path | str, *, out: Path | str, data: Path | str | None = None,
           partition: str = "devel", max_recordings: int = 4,
           tensorboard: bool | None = None,
           progress: Callable[[int, int], None] | None = None) -> Path:
    """Write ``OUT/report.html`` (self-contained) and the PNGs it embeds; return the HTML path.

    For each run: training curves (per-seed ``history`` in ``metrics.json``), per-recording
    traces of prediction vs gold (``RUN/predictions/<partition>/`` and, with ``data``, the
    corpus' label files), a scatter of prediction vs gold, a confusion matrix for
    classification targets; across runs: a metrics table (with the options in which each run
    differs from the others) and a comparison chart. Metrics are computed from the prediction
    files and gold when ``data`` is given (``ccc`` global over the concatenated recordings,
    ``ccc_per_recording`` the mean of per-recording values), else taken from ``metrics.json``
    (devel only).

    ``tensorboard``: write the training curves to ``OUT/tensorboard/<run>/`` (True), skip it
    (False), or do it when the ``tensorboard`` package is installed (None). ``progress(done,
    total)`` is called as each run is drawn.
    """
    paths = [Path(runs)] if isinstance(runs, str | Path) else [Path(r) for r in runs]
    out = Path(out)
    _check_options(paths, out, partition=partition, max_recordings=max_recordings,
                   tensorboard=tensorboard)
    rds = [load_run_data(p, data=data, partition=partition) for p in paths]
    names = _unique_names(rds)
    differs = differing_options([rd.config for rd in rds])
    out.mkdir(parents=True, exist_ok=True)

    rows: list[list[str]] = []
    compare: list[dict] = []
    sections: list[Section] = []
    for name, rd, diff in zip(names, rds, differs, strict=True):
        run = _RunPart(name, rd, partition, max_recordings, diff)
        sections.append(run.section)
        rows += run.rows
        compare += run.compare
        if progress is not None:
            progress(len(sections), len(rds))

    summary = _summary(rows, compare, partition=partition)
    _tensorboard(summary, out, names, rds, tensorboard)
    return _write(out, [summary, *sections], names=names, partition=partition, data=data)


def _check_options(paths: list[Path], out: Path, *, partition: str, max_recordings: int,
                   tensorboard: bool | None) -> None:
    if not paths:
        raise EmotraceError("report needs at least one run folder.")
    if partition not in ("train", "devel", "test"):
        raise EmotraceError(f"--partition {partition!r}: unknown partition. Use train, devel or test.")
    if max_recordings < 1:
        raise EmotraceError(f"--max-recordings {max_recordings}: show at least 1 recording.")
    if tensorboard and not tb.available():
        raise EmotraceError('--tensorboard needs the tensorboard package: pip install '
                            '"emotrace[tensorboard]", or pass --no-tensorboard.')
    if out.exists() and not out.is_dir():
        raise EmotraceError(f"{out}: exists and is not a folder. Choose another --out.")


def _unique_names(rds: list[RunData]) -> list[str]:
    """File-name-safe run names, made unique with ``-2``, ``-3``, ..."""
    names: list[str] = []
    for rd in rds:
        base = _slug(rd.name)
        name, i = base, 2
        while name in names:
            name, i = f"{base}-{i}", i + 1
        names.append(name)
    return names


def _flatten(config: dict, prefix: str = "") -> dict[str, object]:
    """``{"model": {"hidden": 8}}`` → ``{"model.hidden": 8}``."""
    out: dict[str, object] = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


#: config keys left out of "options that differ": the targets have their own column, and the
#: execution options (cores, processes) do not change a run's result
_NOT_OPTIONS = {"data.targets", *(f"train.{k}" for k in EXECUTION)}


def differing_options(configs: list[dict]) -> list[str]:
    """Per run, ``key=value`` of each config option whose value differs between the runs
    (``"—"`` for every run when there is only one, or none differs)."""
    flat = [_flatten(c) for c in configs]
    keys = sorted({k for f in flat for k in f} - _NOT_OPTIONS)
    varied = [k for k in keys if len({repr(f.get(k, "—")) for f in flat}) > 1]

    def show(v) -> str:
        if isinstance(v, list):
            return ",".join(map(str, v)) or "[]"
        return str(v)

    return [" ".join(f"{k}={show(f.get(k, '—'))}" for k in varied) or "—" for f in flat]


class _RunPart:
    """One run's section of the report and its rows of the metrics and comparison tables."""

    def __init__(self, name: str, rd: RunData, partition: str, max_recordings: int,
                 differs: str) -> None:
        self.name, self.rd, self.partition, self.differs = name, rd, partition, differs
        self.max_recordings = max_recordings
        self.rows: list[list[str]] = []
        self.compare: list[dict] = []
        sec = self.section = Section(f"Run {name}", notes=list(rd.notes))
        sec.paragraphs.append(f"{rd.path} · model {_model(rd)} · targets {', '.join(rd.targets)} · "
                              f"features {', '.join(map(str, rd.metrics.get('features', []) or []))}"
                              f" · kept seed {rd.metrics.get('best_seed', '—')}")
        if differs != "—":
            sec.paragraphs.append(f"Options that differ from the other runs: {differs}")
        if rd.histories:
            sec.figures.append(Figure(f"{name}_curves.png", figures.curves(
                rd.histories, best_seed=rd.metrics.get("best_seed"), title=f"{name}: training"),
                "Training curves: train loss and devel CCC per epoch, one line per seed."))
        else:
            sec.notes.append("metrics.json holds no per-epoch history, so there are no training curves")
        for target in rd.targets:
            spread = _seed_spread(rd, target)
            if target in rd.segments:
                self._classification(target, spread)
            else:
                self._regression(target, spread)

    def _classification(self, target: str, spread: tuple[float, float] | None) -> None:
        name, rd, partition, sec = self.name, self.rd, self.partition, self.section
        seg = rd.segments[target]
        if seg.gold is not None:
            cm = classification_metrics(seg.gold, seg.predicted)
            self.rows.append([name, _model(rd), target, partition,
                              "f1_macro " + _fmt(cm["f1_macro"]), "accuracy " + _fmt(cm["accuracy"]),
                              "—", "—", _spread_text(spread), f"{cm['segments']} segments",
                              self.differs])
            sec.figures.append(Figure(f"{_slug(name + '_' + target)}_confusion.png",
                                      figures.confusion(seg.gold, seg.predicted, target=target,
                                                        title=f"{name}: {target}, {partition}"),
                                      f"Confusion matrix of {target} on {partition} segments."))
        else:
            sec.notes.append(f"{target} is a classification target; without the gold "
                             f"class_id labels (--data) there is no confusion matrix")
        sec.notes.append(f"{target}: classification predictions are per segment, so no "
                         f"traces or scatter are drawn")

    def _regression(self, target: str, spread: tuple[float, float] | None) -> None:
        name, rd, partition, sec = self.name, self.rd, self.partition, self.section
        trs = rd.traces.get(target, [])
        labelled = [t for t in trs if t.gold is not None and np.isfinite(t.gold).any()]
        if labelled:
            m = trace_metrics([t.gold for t in labelled], [t.prediction for t in labelled])
            source = f"predictions/{partition} vs gold ({len(labelled)} recordings)"
        elif partition == "devel" and _stored(rd, target):
            m, source = _stored(rd, target), "metrics.json"
        else:
            m, source = {}, "—"
        self.rows.append([name, _model(rd), target, partition, *(_fmt(m.get(k)) for k in METRICS),
                          _spread_text(spread), source, self.differs])
        if m.get("ccc") is not None:
            self.compare.append({"run": name, "target": target, "value": float(m["ccc"]),
                                 "std": spread[1] if spread and source == "metrics.json" else None})
        if not trs:
            return
        shown = (labelled or trs)[:self.max_recordings]
        sec.figures.append(Figure(
            f"{_slug(name + '_' + target)}_traces.png",
            figures.traces(shown, target=target, title=f"{name}: {target}, {partition}"),
            f"{target}: prediction vs gold over time, {len(shown)} of {len(trs)} {partition} "
            f"recordings."))
        if labelled:
            g = np.concatenate([t.gold for t in labelled])
            p = np.concatenate([t.prediction for t in labelled])
            sec.figures.append(Figure(
                f"{_slug(name + '_' + target)}_scatter.png",
                figures.scatter(g, p, target=target,
                                title=f"{name}: {target}, {partition}, ccc {_fmt(m.get('ccc'))}"),
                f"{target}: prediction vs gold, every labelled {partition} step."))


def _spread_text(spread: tuple[float, float] | None) -> str:
    return f"{spread[0]:.3f} ± {spread[1]:.3f}" if spread else "—"


def _summary(rows: list[list[str]], compare: list[dict], *, partition: str) -> Section:
    summary = Section("Metrics", tables=[(["run", "model", "target", "partition", *METRICS,
                                           "devel ccc over seeds (mean ± std)", "source",
                                           "options that differ"], rows)])
    summary.paragraphs.append("ccc is the concordance correlation coefficient over the "
                              "concatenated recordings; ccc_per_recording the mean of the "
                              "per-recording values. The seed column comes from metrics.json. "
                              "The last column lists each run's config options whose values "
                              "differ between the runs of this report.")
    if compare:
        summary.figures.append(Figure("comparison.png", figures.comparison(compare),
                                      f"Run comparison: ccc on {partition} per run and target."))
    return summary


def _tensorboard(summary: Section, out: Path, names: list[str], rds: list[RunData],
                 tensorboard: bool | None) -> None:
    if tensorboard is False:
        return
    if tb.available():
        for name, rd in zip(names, rds, strict=True):
            if rd.histories:
                tb.write_scalars(out / "tensorboard" / name, rd.histories)
        summary.paragraphs.append(f"Training curves as TensorBoard scalars: tensorboard "
                                  f"--logdir {out / 'tensorboard'}")
    else:
        summary.notes.append('TensorBoard scalars were not written: pip install '
                             '"emotrace[tensorboard]" to get them')


def _write(out: Path, sections: list[Section], *, names: list[str], partition: str,
           data: Path | str | None) -> Path:
    """The PNGs beside the page, then the page."""
    for sec in sections:
        for f in sec.figures:
            with atomic_path(out / f.name) as tmp:
                tmp.write_bytes(f.png)
    title = f"emotrace report: {', '.join(names)}"
    footer = (f"emotrace {__version__}, {time.strftime('%Y-%m-%d %H:%M')}, partition {partition}"
              + (f", corpus {data}" if data is not None else ""))
    path = out / HTML
    write_text(path, render(title, sections, footer=footer))
    return path
