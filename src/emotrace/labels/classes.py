"""Segment classes from continuous label traces, built without supervision (MuSe-Sent).

Per segment: time-series statistics (:mod:`emotrace.labels.segment_stats`) → z-scoring → PCA →
(optional min-max scaling of the components) → k-means or a Gaussian mixture, all fitted on the
train segments only; devel and test segments are assigned to the nearest cluster. Inputs, outputs
and the differences from MuSe-Toolbox are described in docs/usage.md ("Segment classes").
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emotrace.data.corpus import PARTITIONS
from emotrace.data.csvio import check_timeline, read_table, write_table
from emotrace.data.muse import LABELS, PARTITION_FILE, Entry, read_partition
from emotrace.data.names import path_for
from emotrace.errors import EmotraceError, located
from emotrace.fileio import write_json
from emotrace.labels.raters import minmax
from emotrace.labels.segment_stats import SETS, STATISTICS, min_steps, segment_statistics

CLUSTERS = ("kmeans", "gmm")


@dataclass
class Segment:
    recording: str
    partition: str
    segment_id: int
    start: int  # ms
    end: int  # ms, exclusive
    rows: np.ndarray  # indices of the recording's label steps inside the segment
    line: int | None = None  # line in the segment file, for messages


def _step_ms(ts: np.ndarray) -> float:
    return float(np.median(np.diff(ts))) if len(ts) > 1 else 1.0


def read_segments(path: Path, timestamps: np.ndarray, *, recording: str = "",
                  partition: str = "") -> list[Segment]:
    """Read and validate one segment file against the recording's label timestamps (ms)."""
    if not path.is_file():
        raise located(path, f"no segment file for recording {recording!r}",
                      fix="Add SEG_DIR/<recording_id>.csv (segment_id,start,end in ms) for every "
                      "recording, or leave out --segments to use whole recordings.")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise located(path, "the file is empty", fix="Write the header segment_id,start,end.")
    header = [c.strip() for c in rows[0]]
    for need in ("segment_id", "start", "end"):
        if need not in header:
            raise located(path, f"no {need!r} column (found {', '.join(header)})", line=1,
                          fix="The header must name segment_id, start and end (milliseconds).")
    col = {n: header.index(n) for n in ("segment_id", "start", "end")}
    parsed: list[tuple[int, int, int, int]] = []  # (start, end, segment_id, line)
    seen: dict[int, int] = {}
    for i, r in enumerate(rows[1:], start=2):
        vals = {}
        for name, j in col.items():
            cell = r[j].strip() if j < len(r) else ""
            try:
                v = float(cell)
                if not math.isfinite(v) or v != int(v):
                    raise ValueError
            except ValueError:
                raise located(path, f"{cell!r} is not a whole number", line=i, column=name,
                              fix="segment_id, start and end are integers (times in ms).") from None
            vals[name] = int(v)
        sid, start, end = vals["segment_id"], vals["start"], vals["end"]
        if sid in seen:
            raise located(path, f"segment_id {sid} appears twice (first on line {seen[sid]})",
                          line=i, column="segment_id", fix="Give every segment its own id.")
        seen[sid] = i
        if end <= start:
            raise located(path, f"segment {sid} ends ({end} ms) before it starts ({start} ms)",
                          line=i, column="end", fix="Write end > start, in milliseconds.")
        parsed.append((start, end, sid, i))
    if not parsed:
        raise located(path, "the file has a header but no segments", line=2,
                      fix="List one segment per row as segment_id,start,end.")
    ts = np.asarray(timestamps, dtype=np.float64)
    step = _step_ms(ts)
    lo, hi = ts[0] - step, ts[-1] + step
    parsed.sort()
    for k, (start, end, sid, line) in enumerate(parsed):
        if start < lo or end > hi:
            raise located(path, f"segment {sid} ({start}–{end} ms) lies outside recording "
                          f"{recording!r}, whose labels span {ts[0]:g}–{ts[-1]:g} ms", line=line,
                          fix="Segment times are milliseconds on the label clock; fix the times or "
                          "the recording id.")
        if k and start < parsed[k - 1][1]:
            p_start, p_end, p_sid, p_line = parsed[k - 1]
            raise located(path, f"segment {sid} ({start}–{end} ms) overlaps segment {p_sid} "
                          f"({p_start}–{p_end} ms, line {p_line})", line=line,
                          fix="Segments must not overlap; let each start at or after the previous "
                          "one's end.")
    out = []
    for start, end, sid, line in parsed:
        rows_in = np.flatnonzero((ts >= start) & (ts < end))
        out.append(Segment(recording, partition, sid, start, end, rows_in, line))
    return out


def fixed_segments(timestamps: np.ndarray, *, length_s: float, recording: str = "",
                   partition: str = "") -> list[Segment]:
    """Whole recording (``length_s == 0``) or consecutive segments of ``length_s`` seconds; a
    shorter remainder joins the last segment.

    >>> [(s.segment_id, s.start, s.end) for s in fixed_segments(np.arange(0, 5000, 500),
    ...                                                        length_s=2)]
    [(0, 0, 2000), (1, 2000, 5000)]
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    t0, t_end = int(round(ts[0])), int(round(ts[-1] + _step_ms(ts)))
    if length_s <= 0:
        bounds = [(t0, t_end)]
    else:
        step = int(round(length_s * 1000))
        n = max((t_end - t0) // step, 1)
        bounds = [(t0 + i * step, t0 + (i + 1) * step) for i in range(n)]
        bounds[-1] = (bounds[-1][0], t_end)
    return [Segment(recording, partition, i, a, b, np.flatnonzero((ts >= a) & (ts < b)))
            for i, (a, b) in enumerate(bounds)]


def _cluster(kind: str, k: int, seed: int):
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    if kind == "kmeans":
        return KMeans(n_clusters=k, n_init=10, random_state=seed)
    return GaussianMixture(n_components=k, covariance_type="full", n_init=5, random_state=seed,
                           reg_covar=1e-4)


def _silhouette(z: np.ndarray, labels: np.ndarray) -> float | None:
    from sklearn.metrics import silhouette_score

    n_labels = len(np.unique(labels))
    if len(z) < 3 or not 2 <= n_labels <= len(z) - 1:
        return None
    return float(silhouette_score(z, labels))


@dataclass
class ClassModel:
    """The fitted pipeline: z-scoring, PCA, clusters, and the cluster → class renumbering."""

    names: list[str]
    mean: np.ndarray
    std: np.ndarray
    pca: object | None
    cluster: object
    order: np.ndarray  # class id of each cluster
    scale: tuple[np.ndarray, np.ndarray] | None = None  # train min/max of the components

    def reduce(self, stats: np.ndarray) -> np.ndarray:
        z = (stats - self.mean) / self.std
        z = self.pca.transform(z) if self.pca is not None else z
        return minmax(z, lo=self.scale[0], hi=self.scale[1]) if self.scale is not None else z

    def assign(self, stats: np.ndarray) -> np.ndarray:
        if len(stats) == 0:
            return np.zeros(0, np.int64)
        return self.order[self.cluster.predict(self.reduce(stats))]


def fit_classes(stats: np.ndarray, *, names: list[str], pca: int = 5, cluster: str = "kmeans",
                k: int = 5, seed: int = 0, pca_minmax: bool = False) -> ClassModel:
    """Fit z-scoring → PCA (``pca`` components, 0 = none) → ``cluster`` on train statistics.
    ``pca_minmax`` scales each component to [-1, 1] with its train minimum and maximum before
    clustering (MuSe-Toolbox scales its PCA output so, but fitted on every partition)."""
    if cluster not in CLUSTERS:
        raise EmotraceError(f"--cluster {cluster!r}: unknown. Use kmeans or gmm.")
    if k < 2:
        raise EmotraceError(f"--k {k}: at least 2 classes are needed.")
    if len(stats) < k:
        raise EmotraceError(f"only {len(stats)} train segment(s) for {k} classes: use a smaller "
                            f"--k, shorter segments (--segment-length) or more train recordings.")
    mean = stats.mean(0)
    std = stats.std(0)
    std[~(std > 1e-12)] = 1.0
    z = (stats - mean) / std
    p = None
    if pca:
        from sklearn.decomposition import PCA

        p = PCA(n_components=min(pca, z.shape[1], len(z)), random_state=seed).fit(z)
        z = p.transform(z)
    scale = (z.min(0), z.max(0)) if pca_minmax else None
    if scale is not None:
        z = minmax(z, lo=scale[0], hi=scale[1])
    c = _cluster(cluster, k, seed).fit(z)
    raw = c.predict(z)
    key = names.index("median") if "median" in names else (names.index("mean") if "mean" in names else 0)
    centre = np.array([stats[raw == j, key].mean() if (raw == j).any() else np.inf for j in range(k)])
    order = np.empty(k, np.int64)
    order[np.argsort(centre, kind="stable")] = np.arange(k)
    return ClassModel(list(names), mean, std, p, c, order, scale)


def class_profile(stats: np.ndarray, classes: np.ndarray, model: ClassModel, *, k: int,
                  top: int = 3) -> list[dict]:
    """Per class (train segments): the mean of each statistic and its mean z-score; ``top``
    statistics with the largest |z| are the ones that distinguish the class."""
    z = (stats - model.mean) / model.std
    out = []
    for c in range(k):
        sel = classes == c
        if not sel.any():
            out.append({"class_id": c, "segments": 0, "mean": {}, "z": {}, "distinguishing": []})
            continue
        mz = z[sel].mean(0)
        order = np.argsort(-np.abs(mz), kind="stable")[:top]
        out.append({
            "class_id": c, "segments": int(sel.sum()),
            "mean": {n: float(v) for n, v in zip(model.names, stats[sel].mean(0), strict=True)},
            "z": {n: float(v) for n, v in zip(model.names, mz, strict=True)},
            "distinguishing": [f"{'high' if mz[j] > 0 else 'low'} {model.names[j]} "
                               f"({mz[j]:+.2f} sd)" for j in order],
        })
    return out


#: a median step of at least this many units means a trace's timestamps are milliseconds
MS_STEP = 10.0


def resolve_statistics(statistics: str | list[str] | None, target: str) -> list[str]:
    """The statistic names: a set of :data:`~emotrace.labels.segment_stats.SETS` (the MuSe-Sent
    sets and MuSe-Toolbox's presets), comma-separated names, or a list; ``None`` picks
    ``valence-set`` for a target whose name contains "valence", else ``arousal-set``."""
    if statistics is None:
        statistics = "valence-set" if "valence" in target.lower() else "arousal-set"
    if isinstance(statistics, str):
        if statistics in SETS:
            return list(SETS[statistics])
        if "," not in statistics and statistics not in STATISTICS:
            raise EmotraceError(f"--features {statistics!r}: unknown statistic set. Use "
                                f"{', '.join(SETS)}, or statistic names separated by commas.")
        statistics = [n.strip() for n in statistics.split(",") if n.strip()]
    names = list(statistics)
    bad = [n for n in names if n not in STATISTICS]
    if bad or not names:
        raise EmotraceError(f"unknown statistic(s) {bad}: choose from {', '.join(STATISTICS)}.")
    return names


def read_entries(data: Path) -> list[Entry]:
    """``metadata/partition.csv`` as :func:`emotrace.data.muse.read_partition` reads it, or in
    MuSe-Toolbox's spelling (header ``id,partition``, lowercase)."""
    path = data / PARTITION_FILE
    if not path.is_file():
        return read_partition(data)  # its message names the missing file
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    header = [c.strip() for c in rows[0]] if rows else []
    if header[:2] != ["id", "partition"]:
        return read_partition(data)
    entries, seen = [], {}
    for line, r in enumerate(rows[1:], start=2):
        rid, part = (r + ["", ""])[0].strip(), (r + ["", ""])[1].strip().lower()
        if not rid or rid in seen:
            raise located(path, f"duplicate id {rid!r} (first on line {seen[rid]})" if rid else
                          "empty id", line=line, column="id", fix="List each recording once.")
        if part not in PARTITIONS:
            raise located(path, f"unknown partition {r[1] if len(r) > 1 else ''!r} for {rid!r}",
                          line=line, column="partition", fix=f"Use one of {', '.join(PARTITIONS)}.")
        seen[rid] = line
        entries.append(Entry(rid, part, rid))
    if not entries:
        raise located(path, "the file has a header but no rows", line=2,
                      fix="List one recording per row.")
    return entries


def read_trace(path: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """One continuous trace: ``timestamp`` or MuSe-Toolbox's ``Time`` column, and ``value``.
    Returns ``(timestamps in ms, values, unit of the file)``; timestamps whose median step is
    below :data:`MS_STEP` are seconds (MuSe-Toolbox's fused output keeps its input's seconds)
    and are converted."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        header = [c.strip() for c in next(csv.reader(f), [])]
    if "timestamp" not in header and header and header[0] == "Time" and "value" in header:
        data = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float64, ndmin=2)
        ts, y = data[:, 0], data[:, header.index("value")]
        bad = np.flatnonzero(~np.isfinite(ts))
        if len(bad):
            raise located(path, "missing or non-numeric time", line=int(bad[0]) + 2, column="Time",
                          fix="Every row needs a time in milliseconds.")
    else:
        table = read_table(path, value_columns=["value"])
        check_timeline(table)
        ts, y = table.timestamps, table.values[:, 0].astype(np.float64)
    if len(ts) > 1 and (np.diff(ts) <= 0).any():
        i = int(np.flatnonzero(np.diff(ts) <= 0)[0])
        raise located(path, f"time {ts[i + 1]:g} after {ts[i]:g}", line=i + 3,
                      fix="Sort the rows by time and remove repeated times.")
    if len(ts) > 1 and np.median(np.diff(ts)) < MS_STEP:
        return ts * 1000.0, y, "s"
    return ts, y, "ms"


def _check_class_options(name: str, target: str, peak_support: int, min_class_share: float) -> None:
    if name == target:
        raise EmotraceError(f"--name {name!r}: the classes would overwrite the trace they are "
                            f"built from. Choose another name.")
    if peak_support < 1:
        raise EmotraceError(f"--peak-support {peak_support}: must be at least 1.")
    if not 0 <= min_class_share < 1:
        raise EmotraceError(f"--min-class-share {min_class_share}: must be in [0, 1).")


@dataclass
class _Collected:
    segs: list[Segment]
    traces: dict[str, tuple[np.ndarray, np.ndarray]]
    stats: np.ndarray
    skipped: list[str]
    seconds: list[str]  # recordings whose trace file was in seconds


def _collect(entries: list[Entry], folder: Path, seg_dir: Path | None, *, target: str,
             segment_length: float, names: list[str], peak_support: int,
             progress: Callable[[int, int], None] | None) -> _Collected:
    """Read every trace, cut it into segments and compute the statistics of each segment."""
    need = min_steps(names, peak_support=peak_support)
    out = _Collected([], {}, np.zeros((0, len(names))), [], [])
    rows: list[np.ndarray] = []
    for i, e in enumerate(entries):
        path = path_for(folder, e.id)
        if not path.is_file():
            if e.partition == "test":
                out.skipped.append(e.id)
                continue
            raise located(path, f"recording {e.id!r} ({e.partition}) has no trace of {target!r}",
                          fix="Add the file, or move the recording to the test partition.")
        ts, y, unit = read_trace(path)
        if unit == "s":
            out.seconds.append(e.id)
        out.traces[e.id] = (ts, y)
        rec_segs = (read_segments(path_for(seg_dir, e.id), ts, recording=e.id, partition=e.partition)
                    if seg_dir is not None else
                    fixed_segments(ts, length_s=segment_length, recording=e.id, partition=e.partition))
        for s in rec_segs:
            x = y[s.rows]
            x = x[np.isfinite(x)]
            if len(x) < need:
                where = path_for(seg_dir, e.id) if seg_dir is not None else path
                raise located(where, f"segment {s.segment_id} of {e.id!r} ({s.start}–{s.end} ms) "
                              f"holds {len(x)} finite label step(s), but the statistics need at "
                              f"least {need}", line=s.line,
                              fix=f"Merge it with a neighbour, use longer segments, or lower "
                              f"--peak-support (a peak needs {peak_support} steps on each side).")
            rows.append(segment_statistics(x, names, peak_support=peak_support))
            out.segs.append(s)
        if progress:
            progress(i + 1, len(entries))
    if rows:
        out.stats = np.stack(rows)
    return out


def _quality(model: ClassModel, stats: np.ndarray, classes: np.ndarray, parts: np.ndarray, *,
             k: int, min_class_share: float) -> tuple[dict, dict, list[str]]:
    """Class shares and silhouette per partition, and the warnings they call for."""
    shares: dict[str, list[float]] = {}
    silhouette: dict[str, float | None] = {}
    for p in ("train", "devel", "test"):
        sel = parts == p
        if sel.any():
            shares[p] = (np.bincount(classes[sel], minlength=k) / sel.sum()).round(4).tolist()
            silhouette[p] = _silhouette(model.reduce(stats[sel]), classes[sel])
    notes = []
    smallest = min(shares["train"])
    if smallest < min_class_share:
        notes.append(f"the smallest class holds {100 * smallest:.1f}% of the train segments, "
                     f"below --min-class-share {100 * min_class_share:.1f}%: consider a smaller "
                     f"--k or another --cluster.")
    if silhouette["train"] is not None and silhouette["train"] < 0.1:
        notes.append(f"silhouette {silhouette['train']:.3f} on train: the classes are not well "
                     f"separated.")
    return shares, silhouette, notes


def _write_classes(out: Path, name: str, col: _Collected, classes: np.ndarray, parts: np.ndarray,
                   names: list[str]) -> None:
    """``label_segments/<name>/<id>.csv`` per recording and the segment table."""
    for rid, (ts, _) in col.traces.items():
        rs = [(s, c) for s, c in zip(col.segs, classes, strict=True) if s.recording == rid]
        idx = np.concatenate([s.rows for s, _ in rs]) if rs else np.zeros(0, np.int64)
        seg_col = np.concatenate([np.full(len(s.rows), s.segment_id, np.int64) for s, _ in rs])
        cls_col = np.concatenate([np.full(len(s.rows), c, np.int64) for s, c in rs])
        order = np.argsort(idx, kind="stable")
        write_table(path_for(out / LABELS / name, rid),
                    {"timestamp": np.round(ts[idx[order]]).astype(np.int64),
                     "segment_id": seg_col[order], "class_id": cls_col[order]})
    segs = col.segs
    table = {"Id": np.array([s.recording for s in segs], dtype=object),
             "segment_id": np.array([s.segment_id for s in segs], np.int64),
             "start": np.array([s.start for s in segs], np.int64),
             "end": np.array([s.end for s in segs], np.int64),
             "partition": parts.astype(object), "class_id": classes.astype(np.int64)}
    table.update({n: col.stats[:, j] for j, n in enumerate(names)})
    write_table(out / "metadata" / f"classes_{name}_segments.csv", table)


def make_classes(data: Path | str, *, target: str, out: Path | str | None = None,
                 name: str | None = None, segments: Path | str | None = None,
                 segment_length: float = 0.0, statistics: str | list[str] | None = None,
                 pca: int = 5, pca_minmax: bool = False, cluster: str = "kmeans", k: int = 5,
                 min_class_share: float = 0.05, peak_support: int = 10, seed: int = 0,
                 progress: Callable[[int, int], None] | None = None) -> dict:
    """Build segment classes of ``target`` (``DATA/label_segments/<target>/``) and write them as
    the classification target ``name`` (default ``<target>_class``) under ``out`` (default
    ``data``). Returns the report that is also written to ``metadata/classes_<name>.json``.

    ``statistics``: see :func:`resolve_statistics`; ``pca_minmax``: see :func:`fit_classes`.
    """
    data = Path(data)
    out = Path(out) if out is not None else data
    name = name or f"{target}_class"
    _check_class_options(name, target, peak_support, min_class_share)
    names = resolve_statistics(statistics, target)
    entries = read_entries(data)
    folder = data / LABELS / target
    if not folder.is_dir():
        raise EmotraceError(f"{folder}: no such target. Pass --target with a folder of "
                            f"label_segments/ (e.g. a gold standard written by `emotrace gold`).")
    seg_dir = Path(segments) if segments is not None else None
    if seg_dir is not None and not seg_dir.is_dir():
        raise EmotraceError(f"{seg_dir}: segment folder not found. Pass a folder of "
                            f"<recording_id>.csv files (segment_id,start,end in ms).")
    col = _collect(entries, folder, seg_dir, target=target, segment_length=segment_length,
                   names=names, peak_support=peak_support, progress=progress)
    if not col.segs:
        raise EmotraceError(f"{folder}: no labelled recording to build classes from.")
    parts = np.array([s.partition for s in col.segs])
    train = parts == "train"
    if not train.any():
        raise EmotraceError(f"{data / PARTITION_FILE}: no train recording has a trace of "
                            f"{target!r}; classes are fitted on train only.")
    model = fit_classes(col.stats[train], names=names, pca=pca, cluster=cluster, k=k, seed=seed,
                        pca_minmax=pca_minmax)
    classes = model.assign(col.stats)
    shares, silhouette, warnings = _quality(model, col.stats, classes, parts, k=k,
                                            min_class_share=min_class_share)
    if col.skipped:
        warnings.append(f"{len(col.skipped)} test recording(s) without a trace of {target!r} get "
                        f"no classes (e.g. {col.skipped[0]!r}).")
    if col.seconds:
        warnings.append(f"{len(col.seconds)} trace file(s) have timestamps in seconds (e.g. "
                        f"{col.seconds[0]!r}, as MuSe-Toolbox writes them); they were read as "
                        f"seconds and the class files are written in milliseconds.")
    _write_classes(out, name, col, classes, parts, names)
    if not (out / PARTITION_FILE).is_file():
        warnings.append(f"{out / PARTITION_FILE} does not exist: copy {data / PARTITION_FILE} "
                        f"there (and the feature sets) before training on {out}.")
    report = {
        "target": target, "name": name, "statistics": names, "pca": pca, "pca_minmax": pca_minmax,
        "cluster": cluster, "k": k, "seed": seed, "peak_support": peak_support,
        "min_class_share": min_class_share,
        "segments_from": str(seg_dir) if seg_dir is not None else
        (f"fixed {segment_length:g} s" if segment_length > 0 else "whole recordings"),
        "segments": {p: int((parts == p).sum()) for p in shares},
        "silhouette": silhouette, "class_shares": shares,
        "profile": class_profile(col.stats[train], classes[train], model, k=k),
        "pca_explained_variance": (model.pca.explained_variance_ratio_.round(4).tolist()
                                   if model.pca is not None else None),
        "warnings": warnings,
    }
    write_json(out / "metadata" / f"classes_{name}.json", report)
    return report
