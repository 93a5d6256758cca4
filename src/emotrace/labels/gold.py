"""The ``emotrace gold`` pipeline: RAW/<dimension>/*.csv → ROOT/label_segments/<dimension>/.

Per recording: pre-smooth each rater → standardise → (optionally replace the weakest rater by
EDA) → fuse → post-smooth → write ``timestamp`` (ms) and ``value``. A JSON report with the
weights, lags and agreement goes to ``ROOT/metadata/gold_<dimension>.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from emotrace.data.csvio import write_labels
from emotrace.errors import EmotraceError, located
from emotrace.fileio import write_json
from emotrace.labels.agreement import agreement, agreement_overall
from emotrace.labels.physio import read_eda, replace_weakest
from emotrace.labels.raters import METHODS, fuse, parse_smoother, zscore
from emotrace.labels.raw import RaterTable, read_raw_folder

STANDARDIZE = ("none", "per-recording", "all")


def _standardise(tables: list[RaterTable], values: list[np.ndarray], how: str) -> list[np.ndarray]:
    if how == "none":
        return values
    if how == "per-recording":
        return [zscore(x) for x in values]
    pooled: dict[str, list[np.ndarray]] = {}
    for t, x in zip(tables, values, strict=True):
        for r, name in enumerate(t.raters):
            pooled.setdefault(name, []).append(x[:, r])
    joined = {k: np.concatenate(v) for k, v in pooled.items()}
    stats = {k: (x.mean(), x.std()) for k, x in joined.items()}
    return [zscore(x, mean=np.array([stats[n][0] for n in t.raters]),
                   std=np.array([stats[n][1] for n in t.raters]))
            for t, x in zip(tables, values, strict=True)]


def gold_standard(raw: Path | str, *, dimension: str, out: Path | str, method: str = "ewe",
                  standardize: str = "none", pre_smooth: str | None = None,
                  post_smooth: str | None = None, max_lag_s: float = 4.0, warp_s: float = 1.0,
                  eda: Path | str | None = None, eda_smooth: int = 26, trim: bool = False,
                  progress: Callable[[int, int], None] | None = None) -> dict:
    """Build the gold standard of every recording in ``raw/<dimension>/`` and write it to
    ``out/label_segments/<dimension>/<id>.csv``; returns the report that is also written to
    ``out/metadata/gold_<dimension>.json``.

    Args:
        method: one of :data:`emotrace.labels.raters.METHODS`.
        standardize: ``none``, ``per-recording`` (z-score each rater per recording) or ``all``
            (z-score each rater, identified by its column name, with its statistics over all
            recordings).
        pre_smooth / post_smooth: :func:`~emotrace.labels.raters.parse_smoother` specs, applied
            to every rater before standardising / to the gold standard.
        eda: folder of ``<id>.csv`` EDA files (see :mod:`emotrace.labels.physio`); the rater
            with the lowest EWE weight is replaced by the smoothed, standardised EDA
            (``eda_smooth`` steps) before fusing (physiological arousal; use ``method="raaw"``).
    """
    if method not in METHODS:
        raise EmotraceError(f"--method {method!r}: unknown. Use one of {', '.join(METHODS)}.")
    if standardize not in STANDARDIZE:
        raise EmotraceError(f"--standardize {standardize!r}: unknown. Use one of "
                            f"{', '.join(STANDARDIZE)}.")
    pre = parse_smoother(pre_smooth, option="--pre-smooth", default="savgol")
    post = parse_smoother(post_smooth, option="--post-smooth", default="mean")
    if eda is not None and not Path(eda).is_dir():
        raise located(eda, "EDA folder not found", fix="--replace-weakest-with needs a folder of "
                      "<id>.csv files with columns timestamp (seconds), value.")
    tables = read_raw_folder(raw, dimension, trim=trim)
    values = [pre(t.values) if pre else t.values for t in tables]
    values = _standardise(tables, values, standardize)
    out = Path(out)
    report: dict = {"dimension": dimension, "method": method, "standardize": standardize,
                    "pre_smooth": pre_smooth, "post_smooth": post_smooth, "max_lag_s": max_lag_s,
                    "warp_s": warp_s, "eda": str(eda) if eda else None, "recordings": {},
                    "warnings": []}
    for i, (t, x) in enumerate(zip(tables, values, strict=True)):
        rec: dict = {"raters": t.raters, "steps": len(x), "rate_hz": round(t.rate, 6)}
        if eda is not None:
            path = Path(eda) / f"{t.id}.csv"
            if not path.is_file():
                raise located(path, "EDA file not found", fix=f"Add the EDA of recording {t.id}.")
            x, weakest = replace_weakest(x, read_eda(path, t.timestamps), smooth=eda_smooth)
            rec["replaced_by_eda"] = t.raters[weakest]
        res = fuse(x, method=method, rate=t.rate, max_lag_s=max_lag_s, warp_s=warp_s)
        gold = post(res.gold) if post else res.gold
        write_labels(out / "label_segments" / dimension / f"{t.id}.csv",
                     np.rint(t.timestamps * 1000), gold)
        rec["weights"] = dict(zip(t.raters, np.round(res.weights, 6).tolist(), strict=True))
        rec["lags_s"] = dict(zip(t.raters, np.round(res.lags, 3).tolist(), strict=True))
        rec["agreement"] = agreement(t.values, t.raters)
        report["warnings"] += [f"{t.id}: {w}" for w in res.warnings]
        report["recordings"][t.id] = rec
        if progress is not None:
            progress(i + 1, len(tables))
    report["agreement"] = agreement_overall([t.values for t in tables])
    if not (out / "metadata" / "partition.csv").is_file():
        report["warnings"].append(
            f"{out / 'metadata' / 'partition.csv'} does not exist: add it (columns Id, "
            f"Partition[, Subject]; partitions train, devel, test) before training on {out}.")
    write_json(out / "metadata" / f"gold_{dimension}.json", report)
    return report


def agreement_report(raw: Path | str, *, dimension: str, trim: bool = False,
                     progress: Callable[[int, int], None] | None = None) -> dict:
    """Agreement per recording (:func:`~emotrace.labels.agreement.agreement`) and overall
    (:func:`~emotrace.labels.agreement.agreement_overall`) of ``raw/<dimension>/*.csv``."""
    tables = read_raw_folder(raw, dimension, trim=trim, progress=progress)
    return {"dimension": dimension,
            "recordings": {t.id: agreement(t.values, t.raters) for t in tables},
            "overall": agreement_overall([t.values for t in tables])}
