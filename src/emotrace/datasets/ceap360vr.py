"""CEAP-360VR → MuSe layout (Xue et al., IEEE Transactions on Multimedia, 2021).

One recording per participant and video (``P<n>_V<k>``), a 5 Hz grid of 300 steps per 60 s
video, targets ``arousal`` and ``valence`` (1-9), feature sets ``head``, ``eye`` and ``lum``.
Which source files are read, the time grid and every column: docs/usage.md, "The CEAP-360VR
adapter".
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from fractions import Fraction
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from emotrace.data.csvio import write_features, write_labels
from emotrace.data.muse import FEATURES, LABELS, Entry, write_partition
from emotrace.errors import EmotraceError, located

NAME = "ceap360vr"

VIDEOS = tuple(f"V{k}" for k in range(1, 9))
STEP_MS = 200
STEPS = 300  # per 60 s video
TIMESTAMPS_MS = np.arange(STEPS, dtype=np.int64) * STEP_MS
TARGETS = ("arousal", "valence")
SPLIT = {"train": range(1, 21), "devel": range(21, 27), "test": range(27, 33)}

HEAD_COLUMNS = ["head_pitch", "head_yaw", "head_dpitch", "head_dyaw"]
EYE_COLUMNS = ["eye_fix_fraction", "eye_pitch", "eye_yaw", "eye_fix_starts", "eye_fix_duration"]
LUM_COLUMNS = ["lum_mean", "lum_std", "lum_dmean"]
FEATURE_COLUMNS = {"head": HEAD_COLUMNS, "eye": EYE_COLUMNS, "lum": LUM_COLUMNS}

ANNOTATION_DIR = Path("3_AnnotationData") / "Frame"
HEAD_DIR = Path("4_BehaviorData") / "HM_ScanPath"
FIXATION_DIR = Path("4_BehaviorData") / "EM_Fixation"
VIDEO_INFO = Path("1_Stimuli") / "VideoInfo.json"
LUMINANCE = Path("1_Stimuli") / "VideoLuminance.csv"

_ANNOTATION_RE = re.compile(r"^P(\d+)_Annotation_FrameData\.json$")
_REEXTRACT = "Re-extract this file from the original CEAP-360VR release."


def annotation_file(source: Path, n: int) -> Path:
    return source / ANNOTATION_DIR / f"P{n}_Annotation_FrameData.json"


def head_file(source: Path, n: int) -> Path:
    return source / HEAD_DIR / f"P{n}_Behavior_HeadScanPathData.json"


def fixation_file(source: Path, n: int) -> Path:
    return source / FIXATION_DIR / f"P{n}_Behavior_FixationData.json"


def partition_of(n: int) -> str:
    """The default-split partition of participant ``P<n>``."""
    for name, members in SPLIT.items():
        if n in members:
            return name
    raise ValueError(f"P{n} is not a CEAP-360VR participant (P1-P32)")


# --------------------------------------------------------------------------------------------
# reading


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise located(path, "file not found", fix=_REEXTRACT)
    try:
        with open(path, encoding="utf-8-sig") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise located(path, f"not valid JSON ({e.msg})", line=e.lineno, column=str(e.colno),
                      fix=_REEXTRACT) from None
    except UnicodeDecodeError:
        raise located(path, "not a UTF-8 text file", fix=_REEXTRACT) from None


def _key(path: Path, obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise located(path, f"no key {key!r} in {where}", fix=_REEXTRACT)
    return obj[key]


def _per_video(path: Path, doc: Any, top: str, videos_key: str, rows_key: str,
               videos: Iterable[str] = VIDEOS) -> dict[str, list]:
    """``doc[top][0][videos_key]`` → ``{VideoID: rows}`` for the requested videos."""
    entries = _key(path, doc, top, "the top-level object")
    if not isinstance(entries, list) or not entries:
        raise located(path, f"{top!r} is not a non-empty list", fix=_REEXTRACT)
    per = _key(path, entries[0], videos_key, f"{top}[0]")
    if not isinstance(per, list):
        raise located(path, f"{top}[0].{videos_key} is not a list", fix=_REEXTRACT)
    out: dict[str, list] = {}
    for i, v in enumerate(per):
        vid = _key(path, v, "VideoID", f"{top}[0].{videos_key}[{i}]")
        rows = _key(path, v, rows_key, f"{top}[0].{videos_key}[{i}] ({vid})")
        if not isinstance(rows, list):
            raise located(path, f"{vid}: {rows_key!r} is not a list", fix=_REEXTRACT)
        out[str(vid)] = rows
    missing = [v for v in videos if v not in out]
    if missing:
        raise located(path, f"no data for video(s) {', '.join(missing)} in {top}[0].{videos_key}",
                      fix=_REEXTRACT)
    return out


def _columns(path: Path, video: str, rows: list, keys: tuple[str, ...]) -> np.ndarray:
    """The ``keys`` of every row as a float64 matrix ``(len(rows), len(keys))``."""
    try:
        values = list(map(itemgetter(*keys), rows))
        return np.array(values, dtype=np.float64).reshape(len(rows), len(keys))
    except (KeyError, TypeError, IndexError):
        bad = next((i for i, r in enumerate(rows)
                    if not isinstance(r, dict) or any(k not in r for k in keys)), None)
        if bad is not None:
            raise located(path, f"{video}: row {bad} lacks one of the keys {', '.join(keys)}",
                          fix=_REEXTRACT) from None
        raise located(path, f"{video}: a value of {', '.join(keys)} is not a number",
                      fix=_REEXTRACT) from None
    except ValueError:
        raise located(path, f"{video}: a value of {', '.join(keys)} is not a number",
                      fix=_REEXTRACT) from None


def read_frame_rates(source: Path) -> dict[str, Fraction]:
    """``{VideoID: FrameRate}`` from ``1_Stimuli/VideoInfo.json``, as exact fractions."""
    path = source / VIDEO_INFO
    doc = _load_json(path)
    info = _key(path, doc, "VideoInfo", "the top-level object")
    if not isinstance(info, list):
        raise located(path, "'VideoInfo' is not a list", fix=_REEXTRACT)
    rates: dict[str, Fraction] = {}
    for i, v in enumerate(info):
        vid = str(_key(path, v, "VideoID", f"VideoInfo[{i}]"))
        fps = _key(path, v, "FrameRate", f"VideoInfo[{i}] ({vid})")
        try:
            rate = Fraction(str(fps)).limit_denominator(1001)
        except (ValueError, ZeroDivisionError):
            rate = Fraction(0)
        if rate <= 0:
            raise located(path, f"{vid}: FrameRate {fps!r} is not a positive number",
                          fix=_REEXTRACT)
        rates[vid] = rate
    missing = [v for v in VIDEOS if v not in rates]
    if missing:
        raise located(path, f"no FrameRate for video(s) {', '.join(missing)}", fix=_REEXTRACT)
    return rates


def read_luminance(source: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{VideoID: (frame_numbers, luminance)}`` for V1-V8, empty cells dropped."""
    path = source / LUMINANCE
    if not path.is_file():
        raise located(path, "file not found", fix=_REEXTRACT)
    try:
        table = pacsv.read_csv(path)
    except pa.ArrowInvalid as e:
        msg = str(e).split("\n")[0]
        raise located(path, f"cannot be parsed as CSV ({msg})", fix=_REEXTRACT) from None
    missing = [c for c in ("Frame", *VIDEOS) if c not in table.column_names]
    if missing:
        raise located(path, f"missing column(s) {', '.join(missing)}", line=1,
                      fix="The header must be Frame,V0,...,V8. " + _REEXTRACT)

    def numeric(name: str) -> np.ndarray:
        col = table.column(name)
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
                or pa.types.is_null(col.type)):
            raise located(path, "not every cell is a number", column=name, fix=_REEXTRACT)
        return col.to_numpy(zero_copy_only=False).astype(np.float64)

    frames = numeric("Frame")
    out = {}
    for v in VIDEOS:
        lum = numeric(v)
        ok = np.isfinite(lum) & np.isfinite(frames)
        out[v] = (frames[ok].astype(np.int64), lum[ok])
    return out


# --------------------------------------------------------------------------------------------
# per-video computations (pure functions of arrays; each returns values on the 5 Hz grid)


def window_means(times_s: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` per 0.2 s step (``STEPS`` of them); empty steps take the nearest frame.

    ``times_s`` are in seconds and are rounded to whole milliseconds before binning.
    """
    ok = np.isfinite(times_s) & np.isfinite(values)
    t_ms = np.rint(times_s[ok] * 1000).astype(np.int64)
    v = values[ok]
    if not len(v):
        raise ValueError("no finite frames")
    inside = (t_ms >= 0) & (t_ms < STEPS * STEP_MS)
    step = t_ms[inside] // STEP_MS
    count = np.bincount(step, minlength=STEPS)
    total = np.bincount(step, weights=v[inside], minlength=STEPS)
    out = np.divide(total, count, out=np.zeros(STEPS), where=count > 0)
    empty = np.flatnonzero(count == 0)
    if len(empty):
        order = np.argsort(t_ms, kind="stable")
        ts, vs = t_ms[order], v[order]
        centre = empty * STEP_MS + STEP_MS // 2
        pos = np.searchsorted(ts, centre)
        lo, hi = np.clip(pos - 1, 0, len(ts) - 1), np.clip(pos, 0, len(ts) - 1)
        near = np.where(np.abs(ts[lo] - centre) <= np.abs(ts[hi] - centre), lo, hi)
        out[empty] = vs[near]
    return out


def head_features(ids: np.ndarray, pitch: np.ndarray, yaw: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(timestamps_ms, values (n, 4))`` for the head rows with ``1 <= ID <= STEPS``.

    Raises ``ValueError`` for non-integer or repeated IDs.
    """
    if len(ids) and (not np.isfinite(ids).all() or (ids != np.rint(ids)).any()):
        raise ValueError("an ID is not a whole number")
    keep = (ids >= 1) & (ids <= STEPS)
    order = np.argsort(ids[keep], kind="stable")
    ids = ids[keep][order].astype(np.int64)
    if (np.diff(ids) == 0).any():
        raise ValueError(f"ID {int(ids[np.flatnonzero(np.diff(ids) == 0)[0]])} occurs twice")
    pitch, yaw = pitch[keep][order], yaw[keep][order]
    follows = np.concatenate([[False], np.diff(ids) == 1])
    dpitch = np.where(follows, np.diff(pitch, prepend=pitch[:1]), 0.0)
    dyaw = np.diff(yaw, prepend=yaw[:1])
    dyaw = np.where(follows, (dyaw + 180.0) % 360.0 - 180.0, 0.0)
    return (ids - 1) * STEP_MS, np.column_stack([pitch, yaw, dpitch, dyaw])


def eye_features(start_frame: np.ndarray, end_frame: np.ndarray, pitch: np.ndarray,
                 yaw: np.ndarray, fps: Fraction) -> np.ndarray:
    """The ``eye`` features ``(STEPS, 5)`` of one video's fixations (columns ``EYE_COLUMNS``)."""
    p, q = fps.numerator, fps.denominator  # tick = 1 / (5 p) s; step k starts at tick k p
    edges = np.arange(STEPS + 1, dtype=np.int64) * p
    order = np.argsort(start_frame, kind="stable")
    a = 5 * q * start_frame[order].astype(np.int64)
    b = np.maximum(5 * q * (end_frame[order].astype(np.int64) + 1), a)
    pitch, yaw = pitch[order], yaw[order]
    out = np.zeros((STEPS, len(EYE_COLUMNS)))
    if not len(a):
        return out
    # coverage: make the intervals disjoint, then C(x) = fixated ticks in [0, x)
    prev_end = np.maximum.accumulate(np.concatenate([[a[0]], b[:-1]]))
    a_d = np.maximum(a, prev_end)
    b_d = np.maximum(b, a_d)
    length = b_d - a_d
    before = np.concatenate([[0], np.cumsum(length)])
    j = np.searchsorted(a_d, edges, side="right") - 1
    covered = np.where(j >= 0, before[np.maximum(j, 0)]
                       + np.clip(edges - a_d[np.maximum(j, 0)], 0, length[np.maximum(j, 0)]), 0)
    out[:, 0] = np.diff(covered) / p
    # the fixation active in the step: the last one starting before the step ends
    first_start = np.searchsorted(a, edges, side="left")
    j = first_start[1:] - 1
    has = j >= 0
    jj = np.maximum(j, 0)
    out[:, 1] = np.where(has, pitch[jj], 0.0)
    out[:, 2] = np.where(has, yaw[jj], 0.0)
    out[:, 3] = np.diff(first_start)
    running = has & (b[jj] > edges[:-1])
    out[:, 4] = np.where(running, (np.minimum(b[jj], edges[1:]) - a[jj]) / (5 * p), 0.0)
    return out


def luminance_features(frames: np.ndarray, lum: np.ndarray, fps: Fraction
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``(timestamps_ms, values (n, 3))``: ``LUM_COLUMNS`` for the steps that have frames."""
    p, q = fps.numerator, fps.denominator
    step = (5 * q * frames) // p
    inside = (frames >= 0) & (step < STEPS)
    step, lum = step[inside], lum[inside]
    count = np.bincount(step, minlength=STEPS)
    has = count > 0
    mean = np.divide(np.bincount(step, weights=lum, minlength=STEPS), count,
                     out=np.zeros(STEPS), where=has)
    sq = np.bincount(step, weights=(lum - mean[step]) ** 2, minlength=STEPS)
    std = np.sqrt(np.divide(sq, count, out=np.zeros(STEPS), where=has))
    idx = np.flatnonzero(has)
    m = mean[idx]
    dmean = np.where(np.diff(idx, prepend=-2) == 1, np.diff(m, prepend=m[:1]), 0.0)
    return idx * STEP_MS, np.column_stack([m, std[idx], dmean])


# --------------------------------------------------------------------------------------------
# one participant


def _participant(source: Path, n: int, rates: dict[str, Fraction],
                 lum: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, dict]:
    """Labels and features of the 8 recordings of ``P<n>``: ``{video: {name: (ts, values)}}``."""
    ann_path, head_path, fix_path = (annotation_file(source, n), head_file(source, n),
                                     fixation_file(source, n))
    ann = _per_video(ann_path, _load_json(ann_path), "ContinuousAnnotation_FrameData",
                     "Video_Annotation_FrameData", "TimeStamp_Valence_Arousal")
    head = _per_video(head_path, _load_json(head_path), "Behavior_HeadScanPath_Data",
                      "Video_Behavior_ScanPath_Data", "ID_Pitch_Yaw")
    fix = _per_video(fix_path, _load_json(fix_path), "Behavior_FixationData",
                     "Video_Behavior_FixationData", "Fixation")
    out: dict[str, dict] = {}
    for v in VIDEOS:
        rec: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        a = _columns(ann_path, v, ann[v], ("TimeStamp", "Arousal", "Valence"))
        for col, target in ((1, "arousal"), (2, "valence")):
            try:
                rec[target] = (TIMESTAMPS_MS, window_means(a[:, 0], a[:, col]))
            except ValueError:
                raise located(ann_path, f"{v}: no annotation frame with a finite TimeStamp and "
                              f"{target.capitalize()}", fix=_REEXTRACT) from None
        h = _columns(head_path, v, head[v], ("ID", "Pitch", "Yaw"))
        try:
            rec["head"] = head_features(h[:, 0], h[:, 1], h[:, 2])
        except ValueError as e:
            raise located(head_path, f"{v}: {e}", fix=_REEXTRACT) from None
        f = _columns(fix_path, v, fix[v], ("StartFrame", "EndFrame", "Pitch", "Yaw"))
        if not np.isfinite(f[:, :2]).all() or (f[:, :2] != np.rint(f[:, :2])).any():
            raise located(fix_path, f"{v}: a StartFrame or EndFrame is not a whole number",
                          fix=_REEXTRACT)
        rec["eye"] = (TIMESTAMPS_MS, eye_features(f[:, 0], f[:, 1], f[:, 2], f[:, 3], rates[v]))
        rec["lum"] = lum[v]
        out[v] = rec
    return out


# --------------------------------------------------------------------------------------------
# public entry point


def participants_in(source: Path) -> list[int]:
    """Participant numbers with an annotation file, ascending."""
    folder = source / ANNOTATION_DIR
    found = [int(m.group(1)) for p in folder.iterdir() if (m := _ANNOTATION_RE.match(p.name))]
    return sorted(found)


def _select(source: Path, found: list[int], participants: Iterable[str | int] | None) -> list[int]:
    if participants is None:
        return found
    chosen = []
    for p in participants:
        text = str(p).strip()
        m = re.fullmatch(r"[Pp]?(\d+)", text)
        if not m or int(m.group(1)) not in found:
            raise EmotraceError(f"{source / ANNOTATION_DIR}: participant {text!r} has no "
                                f"annotation file. Available: "
                                f"{', '.join(f'P{n}' for n in found)}.")
        if int(m.group(1)) not in chosen:
            chosen.append(int(m.group(1)))
    return sorted(chosen)


def prepare(source: Path | str, out: Path | str, *,
            participants: Iterable[str] | None = None,
            progress: Callable[[int, int], None] | None = None) -> dict:
    """Write CEAP-360VR as a MuSe-layout corpus at ``out`` (docs/usage.md, "The CEAP-360VR
    adapter").

    Args:
        source: the CEAP-360VR folder in its original layout.
        out: the corpus folder to write (created; existing files of the same names are replaced).
        participants: only these participants (``"P3"`` or ``"3"``); default all with an
            annotation file.
        progress: called with ``(done, total)`` after each recording is written.

    Returns:
        ``{"name", "recordings": {partition: n}, "subjects": {partition: [ids]}, "steps",
        "step_ms", "features": {set: [columns]}, "targets", "seconds"}``.

    Raises:
        EmotraceError: a missing folder or file, a file that is not valid JSON or lacks the
            expected keys; the message names the file.
    """
    started = time.perf_counter()
    source, out = Path(source), Path(out)
    numbers = _checked_participants(source, participants)
    rates = read_frame_rates(source)
    lum = {v: luminance_features(*frames_lum, rates[v])
           for v, frames_lum in read_luminance(source).items()}
    entries = _write_recordings(source, out, numbers, rates, lum, progress)
    write_partition(out, entries)
    return _summary(entries, started)


def _checked_participants(source: Path, participants: Iterable[str] | None) -> list[int]:
    """The participant numbers to write, each with all of its files."""
    if not source.is_dir():
        raise EmotraceError(f"{source}: source folder not found. Pass the CEAP-360VR folder in "
                            f"its original layout (with 1_Stimuli/, 3_AnnotationData/ and "
                            f"4_BehaviorData/).")
    if not (source / ANNOTATION_DIR).is_dir():
        raise located(source / ANNOTATION_DIR, "folder not found",
                      fix="Pass the CEAP-360VR folder in its original layout; the labels are read "
                      "from 3_AnnotationData/Frame/P<n>_Annotation_FrameData.json.")
    found = participants_in(source)
    if not found:
        raise located(source / ANNOTATION_DIR, "no P<n>_Annotation_FrameData.json files",
                      fix="Pass the CEAP-360VR folder in its original layout.")
    numbers = _select(source, found, participants)
    for n in numbers:
        if n not in range(1, 33):
            raise located(annotation_file(source, n), f"P{n} is not a CEAP-360VR participant",
                          fix="CEAP-360VR has participants P1-P32; remove or rename the file.")
        for path, what in ((head_file(source, n), "head scan-path"),
                           (fixation_file(source, n), "fixation")):
            if not path.is_file():
                raise located(path, f"file not found: P{n} has annotations but no {what} file",
                              fix=f"Add the file, or remove {annotation_file(source, n).name} "
                              f"to leave P{n} out.")
    return numbers


def _write_recordings(source: Path, out: Path, numbers: list[int], rates: dict, lum: dict,
                      progress: Callable[[int, int], None] | None) -> list[Entry]:
    """Label and feature files of every participant and video; their partition.csv entries."""
    entries: list[Entry] = []
    total, done = len(numbers) * len(VIDEOS), 0
    for n in numbers:
        per_video = _participant(source, n, rates, lum)
        for v in VIDEOS:
            rid = f"P{n}_{v}"
            rec = per_video[v]
            for target in TARGETS:
                ts, values = rec[target]
                write_labels(out / LABELS / target / f"{rid}.csv", ts, values)
            for name, columns in FEATURE_COLUMNS.items():
                ts, values = rec[name]
                write_features(out / FEATURES / name / f"{rid}.csv", ts, values, names=columns)
            entries.append(Entry(rid, partition_of(n), f"P{n}"))
            done += 1
            if progress:
                progress(done, total)
    return entries


def _summary(entries: list[Entry], started: float) -> dict:
    recordings: dict[str, int] = {}
    subjects: dict[str, list[str]] = {}
    for e in entries:
        recordings[e.partition] = recordings.get(e.partition, 0) + 1
        if e.subject not in subjects.setdefault(e.partition, []):
            subjects[e.partition].append(e.subject)
    return {
        "name": NAME,
        "recordings": recordings,
        "subjects": subjects,
        "steps": STEPS,
        "step_ms": STEP_MS,
        "features": {k: list(v) for k, v in FEATURE_COLUMNS.items()},
        "targets": list(TARGETS),
        "seconds": round(time.perf_counter() - started, 3),
    }


def ceap_raters(source: Path | str, *, participants: list[int] | None = None
                ) -> dict[tuple[str, str], tuple[np.ndarray, list[str], np.ndarray]]:
    """``{(video, dimension): (timestamps_s, rater names, traces (300, R))}`` at 5 Hz.

    Each participant's joystick trace is averaged per 0.2 s step exactly as the ``ceap360vr``
    adapter does for its labels (:func:`window_means`). Constant
    traces (a participant who never moved the joystick) are left out.
    """
    source = Path(source)
    found = participants or participants_in(source)
    per: dict[tuple[str, str], list] = {}
    for n in found:
        path = annotation_file(source, n)
        ann = _per_video(path, _load_json(path), "ContinuousAnnotation_FrameData",
                           "Video_Annotation_FrameData", "TimeStamp_Valence_Arousal")
        for v in VIDEOS:
            a = _columns(path, v, ann[v], ("TimeStamp", "Arousal", "Valence"))
            for col, dim in ((1, "arousal"), (2, "valence")):
                per.setdefault((v, dim), []).append((f"P{n}", window_means(a[:, 0], a[:, col])))
    out = {}
    t = TIMESTAMPS_MS / 1000.0
    for key, rows in per.items():
        rows = [(name, x) for name, x in rows if np.ptp(x) > 0]
        out[key] = (t, [n for n, _ in rows], np.stack([x for _, x in rows], 1))
    return out
