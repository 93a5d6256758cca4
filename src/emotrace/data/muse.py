"""Read and write corpora in the MuSe layout (docs/usage.md, "The corpus on disk")::

    ROOT/feature_segments/<feature_set>/<recording_id>.csv   timestamp, segment_id, f1, f2, ...
    ROOT/label_segments/<target>/<recording_id>.csv          timestamp, value[, segment_id]
    ROOT/metadata/partition.csv                              Id, Partition[, Subject]

Features are aligned to the label timestamps by timestamp, never by row position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from emotrace.data.cache import read_tables
from emotrace.data.corpus import PARTITIONS, Corpus, FeatureReport, LoadReport, Recording
from emotrace.data.csvio import Table, _header, check_timeline, ragged_line, write_table
from emotrace.data.names import FIX, name_problem, path_for
from emotrace.errors import EmotraceError, located

FEATURES = "feature_segments"
LABELS = "label_segments"
PARTITION_FILE = Path("metadata") / "partition.csv"


@dataclass(frozen=True)
class Entry:
    id: str
    partition: str
    subject: str


def read_partition(root: Path) -> list[Entry]:
    """Read ``metadata/partition.csv`` and enforce the partition and subject rules."""
    path = root / PARTITION_FILE
    if not root.is_dir():
        raise EmotraceError(f"{root}: corpus folder not found. Pass the folder that holds "
                            f"feature_segments/, label_segments/ and metadata/.")
    if not path.exists():
        raise located(path, "file not found",
                      fix="A corpus needs metadata/partition.csv with columns Id,Partition[,Subject].")
    if path.stat().st_size == 0:
        raise located(path, "the file is empty", fix="Write the header Id,Partition[,Subject].")
    _header(path)  # a header that is not UTF-8 is named as such
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={"Id": "string", "Partition": "string", "Subject": "string"},
            strings_can_be_null=True))
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:  # ragged rows, or text that is not UTF-8
        ragged = ragged_line(path)
        if ragged is not None:
            line, n, expected = ragged
            raise located(path, f"{n} cells, but the header has {expected} columns", line=line,
                          fix="Write one recording per row as Id,Partition[,Subject].") from None
        raise located(path, f"cannot be read as UTF-8 CSV ({str(e).splitlines()[0][:200]})",
                      fix="Save it as UTF-8 CSV text with the header Id,Partition[,Subject].") from None
    cols = {c.strip(): c for c in table.column_names}
    for need in ("Id", "Partition"):
        if need not in cols:
            raise located(path, f"no {need!r} column (found {', '.join(table.column_names)})",
                          line=1, fix="The header must be Id,Partition[,Subject].")
    if table.num_rows == 0:
        raise located(path, "the file has a header but no rows", line=2,
                      fix="List one recording per row.")
    ids = table.column(cols["Id"]).to_pylist()
    parts = table.column(cols["Partition"]).to_pylist()
    subjects = table.column(cols["Subject"]).to_pylist() if "Subject" in cols else ids
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    subject_part: dict[str, tuple[str, int]] = {}
    for i, (rid, part, subj) in enumerate(zip(ids, parts, subjects, strict=True)):
        line = i + 2
        if rid is None or not str(rid).strip():
            raise located(path, "empty Id", line=line, column="Id", fix="Give every row an Id.")
        rid = str(rid).strip()
        if problem := name_problem(rid):
            raise located(path, f"Id {rid!r} {problem}", line=line, column="Id", fix=FIX)
        if rid in seen:
            raise located(path, f"duplicate Id {rid!r} (first on line {seen[rid]})", line=line,
                          column="Id", fix="List each recording once.")
        seen[rid] = line
        p = (part or "").strip().lower()
        if p not in PARTITIONS:
            raise located(path, f"unknown partition {part!r} for {rid!r}", line=line,
                          column="Partition", fix=f"Use one of {', '.join(PARTITIONS)}.")
        s = str(subj).strip() if subj is not None and str(subj).strip() else rid
        if problem := name_problem(s):  # personalisation writes models/<subject>.pt
            raise located(path, f"Subject {s!r} of {rid!r} {problem}", line=line,
                          column="Subject", fix="Subjects become file names (models/<subject>.pt): "
                          "use a plain name without '/', '\\', '..', a leading '.' or control "
                          "characters.")
        if s in subject_part and subject_part[s][0] != p:
            other, other_line = subject_part[s]
            raise located(path, f"subject {s!r} is in partition {p!r} here and in {other!r} on "
                          f"line {other_line}", line=line, column="Subject",
                          fix="Keep every subject in one partition; a subject in two partitions "
                          "leaks identity into the evaluation.")
        subject_part.setdefault(s, (p, line))
        entries.append(Entry(rid, p, s))
    return entries


def write_partition(root: Path | str, entries: Iterable[Entry]) -> None:
    entries = list(entries)
    write_table(Path(root) / PARTITION_FILE, {
        "Id": np.array([e.id for e in entries], dtype=object),
        "Partition": np.array([e.partition for e in entries], dtype=object),
        "Subject": np.array([e.subject for e in entries], dtype=object),
    })


def available(root: Path, kind: str) -> list[str]:
    folder = root / kind
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def _match(grid: np.ndarray, ts: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """For each grid time, the row of ``ts`` at that time (within ``tolerance`` ms) and a hit mask."""
    pos = np.searchsorted(ts, grid)
    lo = np.clip(pos - 1, 0, len(ts) - 1)
    hi = np.clip(pos, 0, len(ts) - 1)
    best = np.where(np.abs(ts[lo] - grid) <= np.abs(ts[hi] - grid), lo, hi)
    hit = np.abs(ts[best] - grid) <= tolerance
    return best, hit


def _label_columns(folder: Path) -> dict:
    """``read_table`` options for a target's label files: ``value``, or ``class_id`` and
    ``segment_id`` for a classification target (decided by the first file's header)."""
    first = next(iter(sorted(folder.glob("*.csv"))), None)
    if first is not None and first.stat().st_size:
        header = _header(first)
        if "class_id" in header and "value" not in header:
            return {"value_columns": ["class_id", "segment_id"]}
    return {"value_columns": ["value"]}


def load_corpus(root: Path | str, *, features: list[str] | None = None,
                targets: list[str] | None = None, partitions: Iterable[str] | None = None,
                strict: bool = False, cache: bool = True, tolerance_ms: float = 0.5,
                progress: Callable[[int, int], None] | None = None) -> Corpus:
    """Load a MuSe-layout corpus into memory, aligned by timestamp.

    Args:
        root: the corpus folder.
        features: feature sets to load (default: all under ``feature_segments/``).
        targets: label targets to load (default: all under ``label_segments/``).
        partitions: only these partitions (default: all in ``partition.csv``).
        strict: NaN / inf cells are errors instead of counted imputations.
        cache: keep a binary copy of parsed files under ``ROOT/.emotrace-cache``.
        tolerance_ms: a feature row matches a label step when their timestamps differ by at most
            this much.
        progress: called with ``(done, total)`` as files are read.

    The time grid of a recording is the timestamps of its first target's label file (of its
    first feature set when it has no labels, which is allowed in the test partition). A grid
    step without a feature row at that time is left NaN here and becomes a zero vector after
    standardisation (:mod:`emotrace.data.standardise`); such steps are counted in ``corpus.report``.
    """
    root = Path(root)
    listed = read_partition(root)
    entries = _select(root, listed, partitions)
    features, targets = _names(root, features, targets)
    jobs = _file_jobs(root, entries, features, targets)
    tables = dict(zip((p for p, _ in jobs), read_tables(root, jobs, cache=cache, progress=progress),
                      strict=True))
    report = LoadReport(features={}, label_missing_steps={t: 0 for t in targets})
    _unlisted(root, {e.id for e in listed}, features, targets, report)
    dims: dict[str, int] = {}
    recordings: list[Recording] = []
    mixed: list[str] = []  # files whose time span does not match their labels'
    for e in entries:
        labels = _label_tables(root, e, targets, tables, strict=strict)
        feats = _feature_tables(root, e, features, tables, dims, strict=strict)
        grid_src = labels[targets[0]] if targets and targets[0] in labels else feats[features[0]]
        grid = grid_src.timestamps
        bad = [_span_problem(t, grid_src, e.id) for t in [*labels.values(), *feats.values()]
               if t is not grid_src and _span_overlap(t.timestamps, grid) < 0.5]
        if bad:
            mixed += bad
            continue  # every such file is named at the end
        rec = Recording(e.id, e.partition, e.subject, np.round(grid).astype(np.int64))
        if not labels:
            report.unlabelled_recordings.append(e.id)
        _align_labels(rec, grid, labels, report, tolerance_ms)
        _align_features(rec, grid, feats, report, tolerance_ms)
        recordings.append(rec)
    if mixed:
        raise EmotraceError(f"{len(mixed)} file(s) have timestamps that overlap the label "
                            f"timestamps of their recording by less than half (mixed time units?): "
                            f"{'; '.join(mixed)}. Every timestamp must be in milliseconds on the "
                            f"same clock as the labels; a file in seconds spans 1000 times less.")
    if not recordings:
        raise located(root / PARTITION_FILE, "no recordings selected",
                      fix="List recordings in partition.csv.")
    return Corpus(root, recordings, dims, targets, report)


def _unlisted(root: Path, ids: set[str], features: list[str], targets: list[str],
              report: LoadReport) -> None:
    """Files of the loaded folders that partition.csv does not list: a warning, since a silent
    skip would hide a typo in an id or a forgotten row."""
    for folder in [root / LABELS / t for t in targets] + [root / FEATURES / f for f in features]:
        extra = sorted(p.stem for p in folder.glob("*.csv") if p.stem not in ids)
        if extra:
            report.unlisted[str(folder)] = extra


def _span_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """How much the time spans of two sorted timestamp arrays overlap, as a share of the longer
    span (1 when both are single instants).

    >>> _span_overlap(np.array([0, 1000, 60000]), np.array([0, 60000]))
    1.0
    >>> _span_overlap(np.array([0.0, 60.0]), np.array([0, 60000]))  # seconds vs milliseconds
    0.001
    """
    longer = max(a[-1] - a[0], b[-1] - b[0])
    if longer <= 0:
        return 1.0
    return float(max(0.0, min(a[-1], b[-1]) - max(a[0], b[0])) / longer)


def _span_problem(table: Table, grid: Table, rid: str) -> str:
    a, b = table.timestamps, grid.timestamps
    text = (f"{table.path} (recording {rid!r}): timestamps {a[0]:g}–{a[-1]:g}, but the "
            f"recording's time grid ({grid.path}) spans {b[0]:g}–{b[-1]:g}")
    sa, sb = a[-1] - a[0], b[-1] - b[0]
    if sa > 0 and sb > 0 and 300 < max(sa / sb, sb / sa) < 3000:
        text += f" looks like {'seconds' if sa < sb else 'milliseconds'} against " \
                f"{'milliseconds' if sa < sb else 'seconds'}"
    return text


def _select(root: Path, entries: list[Entry], partitions: Iterable[str] | None) -> list[Entry]:
    """The entries of ``partitions`` (all when None); none is an error naming those listed."""
    if partitions is None:
        return entries
    keep = set(partitions)
    listed = sorted({e.partition for e in entries})
    entries = [e for e in entries if e.partition in keep]
    if not entries:
        raise located(root / PARTITION_FILE, f"no recording in partition "
                      f"{' or '.join(repr(p) for p in sorted(keep))}; the file lists "
                      f"{', '.join(listed) or 'none'}",
                      fix="Choose one of the partitions it lists, or mark recordings with that "
                      "partition.")
    return entries


def _names(root: Path, features: list[str] | None, targets: list[str] | None
           ) -> tuple[list[str], list[str]]:
    """The feature sets and targets to load (default: all there are), each checked to exist."""
    have_f, have_t = available(root, FEATURES), available(root, LABELS)
    features = list(features) if features else have_f
    targets = list(targets) if targets is not None else have_t
    if not features:
        raise EmotraceError(f"{root / FEATURES}: no feature sets found. Each feature set is a "
                            f"folder of <recording_id>.csv files.")
    for f in features:
        if f not in have_f:
            raise EmotraceError(f"{root / FEATURES / f}: unknown feature set {f!r}. Available: "
                                f"{', '.join(have_f) or 'none'}.")
    for t in targets:
        if t not in have_t:
            raise EmotraceError(f"{root / LABELS / t}: unknown target {t!r}. Available: "
                                f"{', '.join(have_t) or 'none'}.")
    return features, targets


def _file_jobs(root: Path, entries: list[Entry], features: list[str], targets: list[str]
               ) -> list[tuple[Path, dict]]:
    """``(path, how to read it)`` of every file to load; every missing file is reported before
    any parsing starts (a test recording may lack labels)."""
    label_kw: dict = {t: _label_columns(root / LABELS / t) for t in targets}
    feature_kw: dict = {"first_value_column": 2, "skip": ("segment_id",)}
    jobs: list[tuple[Path, dict]] = []
    for e in entries:
        for t in targets:
            path = path_for(root / LABELS / t, e.id)
            if path.exists():
                jobs.append((path, label_kw[t]))
            elif e.partition != "test":
                raise located(path, f"recording {e.id!r} ({e.partition}) has no label file for "
                              f"target {t!r}", fix="Add the file, or move the recording to the "
                              "test partition in metadata/partition.csv.")
        for f in features:
            path = path_for(root / FEATURES / f, e.id)
            if not path.exists():
                raise located(path, f"recording {e.id!r} is listed in metadata/partition.csv but "
                              f"has no file for feature set {f!r}", fix="Add the file or remove "
                              "the recording from partition.csv.")
            jobs.append((path, feature_kw))
    return jobs


def _label_tables(root: Path, e: Entry, targets: list[str], tables: dict[Path, Table], *,
                  strict: bool) -> dict[str, Table]:
    """The recording's label tables, checked (an unlabelled test recording has none)."""
    labels: dict[str, Table] = {}
    for t in targets:
        path = path_for(root / LABELS / t, e.id)
        if path not in tables:
            continue  # an unlabelled test recording
        lt = tables[path]
        check_timeline(lt)
        if strict and lt.nonfinite:
            line, col = lt.first_nonfinite
            raise located(path, "NaN or inf label", line=line, column=col,
                          fix="Fix the value, or drop --strict to leave such steps out.")
        labels[t] = lt
    return labels


def _feature_tables(root: Path, e: Entry, features: list[str], tables: dict[Path, Table],
                    dims: dict[str, int], *, strict: bool) -> dict[str, Table]:
    """The recording's feature tables, checked; ``dims`` collects each set's width."""
    feats: dict[str, Table] = {}
    for f in features:
        path = path_for(root / FEATURES / f, e.id)
        ft = tables[path]
        check_timeline(ft)
        if strict and ft.nonfinite:
            line, col = ft.first_nonfinite
            raise located(path, "NaN or inf value", line=line, column=col,
                          fix="Fix the value, or drop --strict to impute it with the train "
                          "mean.")
        if f in dims and dims[f] != ft.values.shape[1]:
            raise located(path, f"{ft.values.shape[1]} feature columns, but other files of "
                          f"{f!r} have {dims[f]}", line=1,
                          fix="All files of a feature set need the same columns.")
        dims[f] = ft.values.shape[1]
        feats[f] = ft
    return feats


def _align_labels(rec: Recording, grid: np.ndarray, labels: dict[str, Table],
                  report: LoadReport, tolerance_ms: float) -> None:
    """Each target's values on the grid (NaN where no label row matches, counted)."""
    for t, lt in labels.items():
        rows, hit = _match(grid, lt.timestamps, tolerance_ms)
        y = np.where(hit, lt.values[rows, 0], np.nan).astype(np.float32)
        if lt.names[-1] == "segment_id":  # a classification target: class_id per segment
            rec.class_segments[t] = np.where(hit, lt.values[rows, 1], np.nan)
        y[~np.isfinite(y)] = np.nan
        report.label_missing_steps[t] += int(np.isnan(y).sum())
        rec.labels[t] = y


def _align_features(rec: Recording, grid: np.ndarray, feats: dict[str, Table],
                    report: LoadReport, tolerance_ms: float) -> None:
    """Each feature set's rows on the grid: NaN where no row matches (a counted gap), and an
    error when no row matches at all (different clocks or units)."""
    for f, ft in feats.items():
        if len(ft.timestamps) == len(grid) and np.array_equal(ft.timestamps, grid):
            rows, hit = slice(None), np.ones(len(grid), bool)  # already on the grid: no copy
        else:
            rows, hit = _match(grid, ft.timestamps, tolerance_ms)
        if not hit.any():
            raise located(ft.path, f"no feature timestamp matches the label timestamps of "
                          f"{rec.id!r} (features {ft.timestamps[0]:g}–{ft.timestamps[-1]:g} ms, "
                          f"labels {grid[0]:g}–{grid[-1]:g} ms)", column="timestamp",
                          fix="Both must be in milliseconds on the same clock.")
        # on the grid: the (mapped) array itself, not a view, so it stays mapped in workers
        x = ft.values if isinstance(rows, slice) else ft.values[rows]
        gaps = int((~hit).sum())
        if gaps:
            x[~hit] = np.nan  # a gap: becomes 0 (the train mean) after standardisation
        fr = report.features.setdefault(f, FeatureReport(dims=ft.values.shape[1]))
        fr.steps += len(grid)
        fr.zero_filled_steps += gaps
        fr.recordings_with_gaps += int(gaps > 0)
        fr.imputed_cells += (ft.nonfinite if isinstance(rows, slice)
                             else int((~np.isfinite(x[hit])).sum()))
        rec.features[f] = x  # NaN stays until standardisation imputes the train mean
