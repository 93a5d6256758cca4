"""Stress-Predict → MuSe layout (Iqbal et al., Sensors 22(21), 2022; MIT licence).

Source layout (as distributed)::

    Raw_data/S<nn>/{BVP,EDA,TEMP,ACC}.csv     Empatica E4 signals (line 1 start unix s, line 2 Hz)
    Raw_data/S<nn>/tags_S<nn>.csv (or tags.csv) button presses, unix s, one per line
    phases.csv                                 subject, phase, start_unix, end_unix, stress

One recording per subject: id and subject ``S<nn>``. Split: train S01-S18, devel S19-S25, test
S26-S35 (whichever are present).

Time grid: 2 Hz. Time 0 is the earliest start time of the subject's E4 signal files
(:func:`emotrace.features.physio.recording_start`); step ``k`` has timestamp ``500 k`` ms and
covers ``[0.5 k, 0.5 (k + 1))`` s; the steps run while all four signals (BVP, EDA, TEMP, ACC)
have samples.

Target ``stress`` (``label_segments/stress/<id>.csv``, 0/1): 1 when the step's timestamp lies in
the Stroop, interview or hyperventilation phase (``start <= t < end``), 0 elsewhere. The phases
come from the subject's tags when there are exactly 7 increasing ones (S05 on: Stroop start/end,
interview start/end, hyperventilation start/end, end of the last relax); otherwise (S01-S04 have
irregular tags) from ``phases.csv``, whose rows with ``stress`` = 1 give the intervals (minute
resolution). Which source each subject used is in the returned summary.

Feature sets: ``hrv``, ``eda``, ``temp`` and ``acc`` of :mod:`emotrace.features.physio` (4 s
windows ending at each step), written through the extraction driver
(:func:`emotrace.features.driver.extract`), so each folder has its ``manifest.json`` and a rerun
skips the finished subjects.
"""

from __future__ import annotations

import csv
import math
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from emotrace.data.csvio import write_labels
from emotrace.data.muse import LABELS, Entry, write_partition
from emotrace.errors import EmotraceError, located

NAME = "stress-predict"
STEP_MS = 500
SPLIT = {"train": range(1, 19), "devel": range(19, 26), "test": range(26, 36)}
FEATURE_SETS = ("hrv", "eda", "temp", "acc")
GRID_SIGNALS = ("BVP.csv", "EDA.csv", "TEMP.csv", "ACC.csv")
STRESS_PHASES = ("stroop", "interview", "hyperventilation")
TARGET = "stress"
_SUBJECT_RE = re.compile(r"^S(\d{2})$")


def partition_of(n: int) -> str:
    for name, members in SPLIT.items():
        if n in members:
            return name
    raise ValueError(f"S{n:02d} is not a Stress-Predict subject (S01-S35)")


def _raw(source: Path) -> Path:
    if (source / "Raw_data").is_dir():
        return source / "Raw_data"
    raise EmotraceError(f"{source}: no Raw_data/ folder. Pass the Stress-Predict folder as "
                        f"distributed (with Raw_data/S<nn>/ and phases.csv).")


def subjects_in(raw: Path) -> list[int]:
    return sorted(int(m.group(1)) for p in raw.iterdir()
                  if p.is_dir() and (m := _SUBJECT_RE.match(p.name)))


def read_tags(folder: Path) -> tuple[Path | None, list[float]]:
    """The subject's tag file and its unix times (``[]`` when there is none)."""
    for name in (f"tags_{folder.name}.csv", "tags.csv"):
        path = folder / name
        if path.is_file():
            times = []
            for i, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
                cell = line.split(",")[0].strip()
                if not cell:
                    continue
                try:
                    times.append(float(cell))
                except ValueError:
                    raise located(path, f"{cell!r} is not a unix time", line=i,
                                  fix="Write one button-press time (unix seconds) per line.") from None
            return path, times
    return None, []


def read_phases(path: Path) -> dict[str, list[tuple[float, float]]]:
    """``{subject: [(start, end) of each stress phase]}`` from ``phases.csv``."""
    if not path.is_file():
        return {}
    out: dict[str, list[tuple[float, float]]] = {}
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        need = {"subject", "phase", "start_unix", "end_unix", "stress"}
        if not need <= set(reader.fieldnames or []):
            raise located(path, f"the header must have {', '.join(sorted(need))}", line=1,
                          fix="Use the phases.csv of the Stress-Predict folder.")
        for i, row in enumerate(reader, start=2):
            try:
                start, end = float(row["start_unix"]), float(row["end_unix"])
                stress = int(float(row["stress"]))
            except (TypeError, ValueError):
                raise located(path, "start_unix, end_unix and stress must be numbers", line=i,
                              fix="Fix the row.") from None
            if not end > start:
                raise located(path, f"phase {row['phase']!r} ends ({end:g}) before it starts "
                              f"({start:g})", line=i, fix="Fix the times.")
            out.setdefault(row["subject"].strip(), [])
            if stress == 1:
                out[row["subject"].strip()].append((start, end))
    return out


def stress_intervals(folder: Path, phases: dict[str, list[tuple[float, float]]],
                     phases_path: Path) -> tuple[list[tuple[float, float]], str]:
    """The stress intervals (unix s) of one subject and where they came from."""
    tags_path, tags = read_tags(folder)
    if len(tags) == 7 and all(b > a for a, b in zip(tags, tags[1:], strict=False)):
        return [(tags[0], tags[1]), (tags[2], tags[3]), (tags[4], tags[5])], "tags"
    if phases.get(folder.name):
        return phases[folder.name], "phases.csv"
    where = f"{tags_path.name} has {len(tags)} tags" if tags_path else "no tags file"
    raise located(folder, f"no stress phases: {where} (7 increasing tags are needed) and "
                  f"{phases_path} has no stress phase for {folder.name}",
                  fix="Add the subject's rows to phases.csv.")


def grid(folder: Path) -> tuple[float, np.ndarray]:
    """``(time 0 in unix s, step timestamps in ms)``: 2 Hz while all four signals have samples."""
    from emotrace.features import physio

    t0 = physio.recording_start(folder)
    ends = []
    for name in GRID_SIGNALS:
        path = folder / name
        if not path.is_file():
            raise located(path, "file not found", fix="Every subject needs BVP, EDA, TEMP and ACC "
                          "from the E4 (as distributed).")
        start, rate = physio.read_header(path)
        with open(path, "rb") as f:
            n = sum(1 for line in f if line.strip()) - 2
        ends.append(start - t0 + n / rate)
    end = min(ends)
    steps = int(math.floor(end * 1000 / STEP_MS - 1e-9)) + 1 if end > 0 else 0
    return t0, np.arange(steps, dtype=np.int64) * STEP_MS


def stress_labels(t0: float, timestamps_ms: np.ndarray, intervals: list[tuple[float, float]]
                  ) -> np.ndarray:
    """1.0 where ``start <= t0 + t < end`` for one of the intervals, else 0.0.

    >>> stress_labels(100.0, np.array([0, 500, 1000, 1500]), [(100.5, 101.5)]).tolist()
    [0.0, 1.0, 1.0, 0.0]
    """
    t = t0 + timestamps_ms / 1000.0
    y = np.zeros(len(t), dtype=np.float32)
    for start, end in intervals:
        y[(t >= start) & (t < end)] = 1.0
    return y


def prepare(source: Path | str, out: Path | str, *, subjects: Iterable[str] | None = None,
            workers: int = 1, progress: Callable[[int, int], None] | None = None) -> dict:
    """Write Stress-Predict as a MuSe-layout corpus at ``out`` (see the module docstring).

    Args:
        source: the Stress-Predict folder as distributed (``Raw_data/``, ``phases.csv``).
        out: the corpus folder to write.
        subjects: only these subjects (``"S05"`` or ``"5"``); default all in ``Raw_data/``.
        workers: processes for the feature extraction.
        progress: called with ``(done, total)`` over labels and feature files.

    Returns:
        ``{"name", "recordings": {partition: n}, "subjects": {partition: [ids]}, "steps",
        "step_ms", "features": {set: [columns]}, "targets", "phase_source": {id: source},
        "stress_fraction", "missing_steps", "warnings", "seconds"}``.
    """
    started = time.perf_counter()
    source, out = Path(source), Path(out)
    raw, numbers = _checked_subjects(source, subjects)
    phases_path = source / "phases.csv"
    phases = read_phases(phases_path)
    total = len(numbers) * (1 + len(FEATURE_SETS))
    entries, phase_source, positive, steps = [], {}, 0, 0
    for i, n in enumerate(numbers):
        rid = f"S{n:02d}"
        folder = raw / rid
        intervals, phase_source[rid] = stress_intervals(folder, phases, phases_path)
        t0, ts = grid(folder)
        y = stress_labels(t0, ts, intervals)
        if not y.any():
            raise located(folder, "no step falls in a stress phase: the phase times and the "
                          "E4 start times do not overlap", fix="Check the tags/phases.csv times "
                          "(unix seconds, UTC) against line 1 of the signal files.")
        write_labels(out / LABELS / TARGET / f"{rid}.csv", ts, y)
        positive += int(y.sum())
        steps += len(ts)
        entries.append(Entry(rid, partition_of(n), rid))
        if progress:
            progress(i + 1, total)
    write_partition(out, entries)
    features, warnings, missing = _write_features(raw, out, len(numbers), workers, progress)
    parts: dict[str, list[str]] = {}
    for e in entries:
        parts.setdefault(e.partition, []).append(e.id)
    return {"name": NAME, "recordings": {p: len(v) for p, v in parts.items()}, "subjects": parts,
            "steps": steps, "step_ms": STEP_MS, "features": features, "targets": [TARGET],
            "phase_source": phase_source, "stress_fraction": round(positive / max(steps, 1), 4),
            "missing_steps": missing, "warnings": warnings,
            "seconds": round(time.perf_counter() - started, 2)}


def _checked_subjects(source: Path, subjects: Iterable[str] | None) -> tuple[Path, list[int]]:
    """``(Raw_data folder, the subject numbers to write)``."""
    if not source.is_dir():
        raise EmotraceError(f"{source}: source folder not found. Pass the Stress-Predict folder "
                            f"(with Raw_data/ and phases.csv).")
    raw = _raw(source)
    numbers = subjects_in(raw)
    if subjects is not None:
        wanted = {int(str(s).upper().lstrip("S")) for s in subjects}
        unknown = sorted(wanted - set(numbers))
        if unknown:
            raise EmotraceError(f"{raw}: no folder for subject(s) "
                                f"{', '.join(f'S{n:02d}' for n in unknown)}.")
        numbers = [n for n in numbers if n in wanted]
    if not numbers:
        raise located(raw, "no subject folders S<nn>", fix="Pass the Stress-Predict folder as "
                      "distributed.")
    for n in numbers:
        if n not in range(1, 36):
            raise located(raw / f"S{n:02d}", "not a Stress-Predict subject",
                          fix="Stress-Predict has subjects S01-S35; remove or rename the folder.")
    return raw, numbers


def _write_features(raw: Path, out: Path, n_subjects: int, workers: int,
                    progress: Callable[[int, int], None] | None) -> tuple[dict, list, dict]:
    """Each feature set through the extraction driver: ``(columns, warnings, missing steps)``
    per set."""
    from emotrace.features.driver import extract

    total = n_subjects * (1 + len(FEATURE_SETS))
    features, warnings, missing = {}, [], {}
    for j, fs in enumerate(FEATURE_SETS):
        base = n_subjects * (1 + j)

        def step(done: int, _total: int, base: int = base) -> None:
            if progress:
                progress(base + done, total)

        summary = extract("physio", inputs=raw, labels=out, feature_set=fs, workers=workers,
                          progress=step)
        features[fs] = summary["names"]
        warnings += [f"{fs}: {w}" for w in summary["warnings"]
                     if "match no recording" not in w]
        missing[fs] = sum(summary["missing_steps"].values())
    return features, warnings, missing
