"""The extraction driver: inputs → one aligned feature file per recording, in parallel, resumable.

``extract(kind, inputs=DIR, labels=ROOT, feature_set=...)`` builds the extractor
``emotrace.features.<kind>.build(feature_set, **options)`` and, for every recording:

1. **Time grid.** With ``labels`` (a MuSe-layout corpus): the recordings of
   ``ROOT/metadata/partition.csv`` and, for each, the timestamps of its label file
   ``ROOT/label_segments/<target>/<id>.csv`` (``target``: the first target folder in sorted
   order unless given; a recording without that file falls back to the other targets, then is
   skipped with a counted warning). Timestamps must be finite and strictly increasing, in ms.
   Without labels, ``rate`` (Hz) gives a regular grid ``0, 1000/rate, 2000/rate, ...`` ms (rounded
   to whole ms) over the recording's duration, which the extractor reports through its optional
   ``duration(path) -> seconds`` method; the recording ids are then the input names.
2. **Input.** ``DIR/<id><suffix>`` for the extractor's suffixes (in their order of preference,
   case-insensitive), or the folder ``DIR/<id>/`` (always for extractors without suffixes, e.g.
   physiological signals). Inputs that match no recording are counted and reported.
3. **Extraction** in ``workers`` processes (each builds its own extractor once), writing
   ``OUT/feature_segments/<feature_set>/<id>.csv`` (``timestamp, segment_id, features...``)
   atomically. ``OUT`` is ``labels`` unless ``out`` is given.
4. **Manifest** ``OUT/feature_segments/<feature_set>/manifest.json``: the kind, the extractor's
   settings and versions, the grid, the column names, and per recording its input, rows and
   missing rows. It is rewritten after every finished recording, so a killed run resumes where it
   stopped: recordings listed in the manifest whose file exists are skipped. A folder extracted
   with other settings (or another grid) is never mixed: that is an error naming both.

A recording whose input is bad does not stop the others: it is reported at the end in one
:class:`~emotrace.errors.EmotraceError` (the finished recordings stay written, so a rerun after
the fix only does the failed ones).
"""

from __future__ import annotations

import importlib
import json
import math
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from emotrace.data.csvio import read_table, write_features
from emotrace.data.muse import FEATURES, LABELS, available, read_partition
from emotrace.data.names import path_for
from emotrace.errors import EmotraceError, located
from emotrace.fileio import check_output, write_json

KINDS = ("audio", "text", "face", "physio")
MANIFEST = "manifest.json"
_INPUT_FLAG = {"audio": "--media", "face": "--media", "text": "--transcripts", "physio": "--signals"}


def build(kind: str, feature_set: str, options: dict):
    """The extractor ``emotrace.features.<kind>.build(feature_set, **options)``."""
    if kind not in KINDS:
        raise EmotraceError(f"extract {kind!r}: unknown kind. Use one of {', '.join(KINDS)}.")
    try:
        module = importlib.import_module(f"emotrace.features.{kind}")
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("emotrace"):
            raise EmotraceError(f"extract {kind}: this extractor is not available in this version "
                                f"of emotrace.") from None
        raise EmotraceError(f"extract {kind}: a package it needs is not installed ({e.name}). "
                            f'Install it with pip install "emotrace[features]".') from None
    return module.build(feature_set, **options)


# --------------------------------------------------------------------------------------------
# grid and inputs


def check_timestamps(path: Path, ts: np.ndarray) -> np.ndarray:
    """Label timestamps must be finite and strictly increasing; returns them as int64 ms."""
    bad = ~np.isfinite(ts)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise located(path, "missing or non-numeric timestamp", line=i + 2, column="timestamp",
                      fix="Every row needs a timestamp in milliseconds.")
    d = np.diff(ts)
    if (d <= 0).any():
        i = int(np.flatnonzero(d <= 0)[0])
        what = "repeated" if d[i] == 0 else "decreasing"
        raise located(path, f"{what} timestamp {ts[i + 1]:g} after {ts[i]:g}", line=i + 3,
                      column="timestamp", fix="Sort the rows by time and remove repeated rows; "
                      "features are aligned by timestamp, so the order must be strict.")
    return np.round(ts).astype(np.int64)


def label_grids(root: Path, target: str | None = None) -> tuple[dict[str, np.ndarray], list[str], str]:
    """``({id: timestamps_ms}, [ids without a label file], target)`` from a MuSe-layout corpus."""
    entries = read_partition(root)
    targets = available(root, LABELS)
    if not targets:
        raise EmotraceError(f"{root / LABELS}: no label folders, so there are no timestamps to align "
                            f"to. Pass a corpus with label_segments/<target>/<id>.csv, or use "
                            f"--rate HZ (with --out ROOT) for a regular grid.")
    if target is not None and target not in targets:
        raise EmotraceError(f"{root / LABELS / target}: unknown target {target!r}. Available: "
                            f"{', '.join(targets)}.")
    order = [target] if target else []
    order += [t for t in targets if t not in order]
    grids: dict[str, np.ndarray] = {}
    unlabelled: list[str] = []
    for e in entries:
        for t in order:
            path = path_for(root / LABELS / t, e.id)
            if path.is_file():
                table = read_table(path, first_value_column=1)
                grids[e.id] = check_timestamps(path, table.timestamps)
                break
        else:
            unlabelled.append(e.id)
    return grids, unlabelled, order[0]


def rate_grid(rate: float, duration_s: float) -> np.ndarray:
    """Regular timestamps (ms) ``k * 1000 / rate`` for all ``k`` with a time below ``duration_s``.

    >>> rate_grid(2, 2.1).tolist()
    [0, 500, 1000, 1500, 2000]
    """
    n = int(math.floor(duration_s * rate - 1e-9)) + 1 if duration_s > 0 else 0
    return np.round(np.arange(n) * 1000.0 / rate).astype(np.int64)


def find_inputs(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """``{recording id: input path}`` in ``folder``: files ``<id><suffix>`` (the first suffix in
    order of preference wins), else folders ``<id>/``."""
    if not folder.is_dir():
        raise EmotraceError(f"{folder}: input folder not found. Check the path.")
    found: dict[str, Path] = {}
    rank: dict[str, int] = {}
    lower = [s.lower() for s in suffixes]
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            found.setdefault(p.name, p)
            rank.setdefault(p.name, len(lower))
            continue
        name = p.name.lower()
        for i, s in enumerate(lower):
            if name.endswith(s) and len(name) > len(s):
                rid = p.name[: len(p.name) - len(s)]
                if i < rank.get(rid, len(lower) + 1):
                    found[rid], rank[rid] = p, i
                break
    if not suffixes:  # folder inputs only
        found = {k: v for k, v in found.items() if v.is_dir()}
    return found


# --------------------------------------------------------------------------------------------
# workers

_WORKER: dict = {}


def _init_worker(kind: str, feature_set: str, options: dict) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per worker process
    _WORKER["extractor"] = build(kind, feature_set, options)


def _one(rid: str, path: Path, timestamps: np.ndarray | None, rate: float | None,
         out: Path, extractor=None) -> tuple[str, dict | None, str | None]:
    """Extract and write one recording; returns ``(id, info, error message)``."""
    ex = extractor if extractor is not None else _WORKER["extractor"]
    try:
        if timestamps is None:
            duration = getattr(ex, "duration", None)
            if duration is None:
                raise EmotraceError(f"extractor {ex.name!r} cannot report the duration of its "
                                    f"input, so --rate cannot make a grid: pass --labels ROOT.")
            timestamps = rate_grid(rate, float(duration(path)))
        if len(timestamps) == 0:
            raise located(path, "the recording is empty (no time step)",
                          fix="Check the input, or the label file's timestamps.")
        values, names, info = ex.extract(path, timestamps)
        values = np.asarray(values, dtype=np.float32)
        if values.shape != (len(timestamps), len(names)):
            raise RuntimeError(f"extractor {ex.name!r} returned shape {values.shape} for "
                               f"{len(timestamps)} timestamps and {len(names)} names")
        write_features(path_for(out, rid), timestamps, values, names=list(names))
        info = dict(info)
        info.update(rows=len(timestamps), names=list(names), input=str(path))
        info.setdefault("missing", int((~values.any(axis=1)).sum()))
        return rid, info, None
    except EmotraceError as e:
        return rid, None, str(e)
    except OSError as e:
        if e.filename is None:
            raise
        return rid, None, f"{e.filename}: {e.strerror or e}. Check the file and its permissions."


# --------------------------------------------------------------------------------------------
# manifest


def _read_manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise located(path, "not a valid manifest (JSON)", fix="Delete the feature folder and "
                      "extract again.") from None


def _check_manifest(folder: Path, old: dict | None, new: dict) -> dict:
    """Refuse to mix extractions with different settings in one feature folder."""
    if old is None:
        if folder.is_dir() and any(folder.glob("*.csv")):
            raise located(folder, "holds feature files that emotrace extract did not write (no "
                          f"{MANIFEST})", fix="Use another --feature-set name or another output "
                          "corpus, or delete the folder to replace it.")
        return new | {"recordings": {}}
    for key in ("kind", "feature_set", "settings", "grid"):
        if old.get(key) != json.loads(json.dumps(new[key])):  # as stored (tuples become lists)
            raise located(folder / MANIFEST, f"this folder was extracted with {key} "
                          f"{old.get(key)!r}, but this run asks for {new[key]!r}",
                          fix="Extracting with other settings into the same folder would mix "
                          "incompatible features: delete the folder to start over, or write to "
                          "another corpus with --out.")
    merged = dict(old)
    merged["versions"] = new["versions"]
    return merged


# --------------------------------------------------------------------------------------------
# the API


def extract(kind: str, *, inputs: Path | str, feature_set: str, labels: Path | str | None = None,
            rate: float | None = None, out: Path | str | None = None, target: str | None = None,
            workers: int = 1, progress: Callable[[int, int], None] | None = None,
            **options) -> dict:
    """Extract feature set ``feature_set`` of ``kind`` for every recording (module docstring).

    Args:
        kind: ``audio``, ``text``, ``face`` or ``physio``.
        inputs: folder with one input per recording (``<id>.<suffix>`` or ``<id>/``).
        feature_set: passed to the extractor's ``build``; also the output folder name.
        labels: MuSe-layout corpus whose label timestamps give the grid.
        rate: Hz of a regular grid, for recordings without labels (needs ``out`` when there are
            no ``labels``).
        out: corpus folder to write into (default: ``labels``).
        target: label target whose timestamps to use (default: the first in sorted order).
        workers: processes (1: in this process).
        progress: called with ``(done, total)`` after each recording.
        options: passed to the extractor's ``build`` (e.g. ``window=6``).

    Returns:
        ``{"feature_set", "folder", "written", "skipped", "failed", "missing_steps",
        "warnings", "names"}``.

    Raises:
        EmotraceError: bad options or inputs; after the other recordings are done, one error
            listing every recording that failed.
    """
    _check_options(labels=labels, rate=rate, out=out, workers=workers)
    extractor = build(kind, feature_set, options)
    inputs = Path(inputs)
    found = find_inputs(inputs, tuple(extractor.suffixes))
    warnings: list[str] = []
    grids, grid_desc = _grids(labels, rate, target, found, warnings)
    folder = path_for((Path(out) if out is not None else Path(labels)) / FEATURES,
                      extractor.name, "", what="feature set")
    check_output(folder, {"--media/--signals/--transcripts": inputs,
                          "--labels": Path(labels) / LABELS if labels else None},
                 option="feature folder")
    manifest = _open_manifest(folder, {"kind": kind, "feature_set": extractor.name,
                                       "settings": extractor.settings, "grid": grid_desc,
                                       "versions": extractor.versions()}, warnings)
    _input_warnings(grids, found, inputs, labels, extractor.suffixes, warnings)
    jobs, skipped = _jobs(grids, found, manifest, folder)
    if workers == 1 or len(jobs) <= 1:
        run = _Run(folder, manifest, len(jobs), progress)
        for rid, path, ts in jobs:
            run.finish(*_one(rid, path, ts, rate, folder, extractor))
    else:
        run = _run_in_processes(jobs, kind=kind, feature_set=feature_set, options=options,
                                rate=rate, folder=folder, manifest=manifest, workers=workers,
                                progress=progress)
    write_json(folder / MANIFEST, manifest)
    return _summary(run, extractor.name, skipped, warnings)


def _check_options(*, labels, rate: float | None, out, workers: int) -> None:
    if labels is None and rate is None:
        raise EmotraceError("extract needs --labels ROOT (align to a corpus's label timestamps) or "
                            "--rate HZ (a regular grid).")
    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise EmotraceError(f"--rate {rate:g}: must be a positive number of steps per second.")
    if labels is None and out is None:
        raise EmotraceError("extract --rate without --labels needs --out ROOT: the corpus folder to "
                            "write ROOT/feature_segments/<feature_set>/ into.")
    if workers < 1:
        raise EmotraceError(f"--workers {workers}: must be at least 1.")


def _grids(labels, rate: float | None, target: str | None, found: dict[str, Path],
           warnings: list[str]) -> tuple[dict[str, np.ndarray | None], dict]:
    """``({id: label timestamps, or None for a --rate grid}, the grid as the manifest
    describes it)``."""
    if labels is None:
        return {rid: None for rid in found}, {"labels": None, "rate": rate}
    label_ts, unlabelled, used_target = label_grids(Path(labels), target)
    grids: dict[str, np.ndarray | None] = dict(label_ts)
    if unlabelled and rate is not None:
        grids.update({rid: None for rid in unlabelled})
    elif unlabelled:
        warnings.append(f"{len(unlabelled)} recording(s) without a label file were skipped "
                        f"(pass --rate HZ to extract them on a regular grid): "
                        f"{', '.join(unlabelled[:5])}{' ...' if len(unlabelled) > 5 else ''}")
    return grids, {"labels": used_target, "rate": rate if unlabelled else None}


def _open_manifest(folder: Path, new: dict, warnings: list[str]) -> dict:
    """The folder's manifest (new, or the old one when the settings match); creates the folder."""
    old = _read_manifest(folder)
    manifest = _check_manifest(folder, old, new)
    if old is not None and old.get("versions") != new["versions"] and old.get("recordings"):
        changed = sorted(k for k in set(old.get("versions") or {}) | set(new["versions"])
                         if (old.get("versions") or {}).get(k) != new["versions"].get(k))
        warnings.append(f"{folder / MANIFEST}: the {len(old['recordings'])} recording(s) already "
                        f"there were extracted with other versions of {', '.join(changed)}; delete "
                        f"the folder to extract all with the same versions.")
    folder.mkdir(parents=True, exist_ok=True)
    return manifest


def _input_warnings(grids: dict, found: dict[str, Path], inputs: Path, labels,
                    suffixes, warnings: list[str]) -> None:
    """Recordings without an input, and inputs without a recording."""
    no_input = [rid for rid in grids if rid not in found]
    if no_input:
        warnings.append(f"{len(no_input)} recording(s) have no input in {inputs} and were skipped "
                        f"(expected {_expected(suffixes)}): {', '.join(no_input[:5])}"
                        f"{' ...' if len(no_input) > 5 else ''}")
    extra = sorted(set(found) - set(grids))
    if extra and labels is not None:
        warnings.append(f"{len(extra)} input(s) in {inputs} match no recording of "
                        f"{Path(labels) / 'metadata' / 'partition.csv'} and were ignored: "
                        f"{', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}")


def _jobs(grids: dict, found: dict[str, Path], manifest: dict, folder: Path
          ) -> tuple[list[tuple[str, Path, np.ndarray | None]], list[str]]:
    """``(recordings to extract, recordings already done)``: a recording listed in the manifest
    whose file exists is done."""
    done_before = manifest.get("recordings", {})
    jobs, skipped = [], []
    for rid, ts in grids.items():
        if rid not in found:
            continue
        if rid in done_before and path_for(folder, rid).is_file():
            skipped.append(rid)
            continue
        jobs.append((rid, found[rid], ts))
    return jobs, skipped


class _Run:
    """Collects finished recordings: the manifest is rewritten after each one (so a killed run
    resumes), failures are kept for the one error at the end."""

    def __init__(self, folder: Path, manifest: dict, total: int,
                 progress: Callable[[int, int], None] | None) -> None:
        self.folder, self.manifest, self.total, self.progress = folder, manifest, total, progress
        self.written: list[str] = []
        self.failed: dict[str, str] = {}
        if progress:
            progress(0, total)

    def finish(self, rid: str, info: dict | None, error: str | None) -> None:
        folder, manifest = self.folder, self.manifest
        if error is not None:
            self.failed[rid] = error
        else:
            names = info.pop("names")
            if manifest.get("names") is None:
                manifest["names"] = names
            elif manifest["names"] != names:
                self.failed[rid] = (f"{folder / (rid + '.csv')}: columns {names[:4]}... differ from "
                                    f"the other recordings' {manifest['names'][:4]}.... Every "
                                    f"recording of a feature set needs the same inputs (e.g. the "
                                    f"same signal files).")
                path_for(folder, rid).unlink(missing_ok=True)
                return
            manifest.setdefault("recordings", {})[rid] = info
            self.written.append(rid)
            write_json(folder / MANIFEST, manifest)
        if self.progress:
            self.progress(len(self.written) + len(self.failed), self.total)


def _run_in_processes(jobs: list, *, kind: str, feature_set: str, options: dict,
                      rate: float | None, folder: Path, manifest: dict, workers: int,
                      progress: Callable[[int, int], None] | None) -> _Run:
    """The jobs in ``workers`` spawned processes, each building its own extractor once."""
    run = _Run(folder, manifest, len(jobs), progress)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx,
                             initializer=_init_worker,
                             initargs=(kind, feature_set, options)) as pool:
        futures = [pool.submit(_one, rid, path, ts, rate, folder) for rid, path, ts in jobs]
        for fut in as_completed(futures):
            run.finish(*fut.result())
    return run


def _summary(run: _Run, name: str, skipped: list[str], warnings: list[str]) -> dict:
    """The summary :func:`extract` returns, or the one error naming every failed recording."""
    recs = run.manifest.get("recordings", {})
    written, failed = run.written, run.failed
    missing_steps = {rid: recs[rid].get("missing", 0) for rid in written if recs[rid].get("missing")}
    if missing_steps:
        warnings.append(f"{sum(missing_steps.values())} step(s) in {len(missing_steps)} recording(s) "
                        f"had nothing to measure and are zeros (e.g. no signal, no face, no word, "
                        f"or the first window): "
                        + ", ".join(f"{k}: {v}" for k, v in list(missing_steps.items())[:5]))
    summary = {"feature_set": name, "folder": str(run.folder), "written": written,
               "skipped": skipped, "failed": failed, "missing_steps": missing_steps,
               "warnings": warnings, "names": run.manifest.get("names")}
    if failed:
        lines = "; ".join(f"{rid}: {msg}" for rid, msg in sorted(failed.items())[:5])
        raise EmotraceError(f"{len(failed)} of {run.total} recording(s) failed ({lines}"
                            f"{' ...' if len(failed) > 5 else ''}). The {len(written)} others are "
                            f"written to {run.folder}; fix the inputs and run the same command "
                            f"again to extract only the missing ones.")
    return summary


def _expected(suffixes: tuple[str, ...]) -> str:
    if not suffixes:
        return "a folder <id>/"
    return "<id>" + " or <id>".join(suffixes) + " or a folder <id>/"
