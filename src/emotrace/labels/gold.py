"""The ``emotrace gold`` pipeline: RAW/<dimension>/*.csv → ROOT/label_segments/<dimension>/.

Per recording: pre-smooth each rater → standardise → (optionally replace the weakest rater by
EDA) → fuse → post-smooth → (optionally min-max scale) → write ``timestamp`` (ms) and ``value``.
A JSON report with the weights, lags and agreement goes to ``ROOT/metadata/gold_<dimension>.json``.
The options are described in docs/usage.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emotrace.data.csvio import write_labels
from emotrace.data.names import path_for
from emotrace.errors import EmotraceError, located
from emotrace.fileio import write_json
from emotrace.labels.agreement import agreement, agreement_overall
from emotrace.labels.physio import read_eda, replace_weakest
from emotrace.labels.raters import (
    DBA_INITS,
    EWE_WEIGHTS,
    LAG_SELECT,
    METHODS,
    Smoother,
    fuse,
    minmax,
    parse_smoother,
    zscore,
)
from emotrace.labels.raw import TIME_UNITS, RaterTable, read_raw_folder

#: ``all-minmax`` and ``per-recording-minmax`` are MuSe-Toolbox's ``--std_annos_all_samples``
#: and ``--std_annos_per_sample``
STANDARDIZE = ("none", "per-recording", "all", "all-minmax", "per-recording-minmax")


def _standardise(tables: list[RaterTable], values: list[np.ndarray], how: str) -> list[np.ndarray]:
    """z-score per rater (per recording, or over all recordings by column name); ``all-minmax``
    then maps each rater's pooled z-scores to [-1, 1] with their pooled minimum and maximum."""
    if how == "none":
        return values
    if how.startswith("per-recording"):
        return [zscore(x) for x in values]
    pooled: dict[str, list[np.ndarray]] = {}
    for t, x in zip(tables, values, strict=True):
        for r, name in enumerate(t.raters):
            pooled.setdefault(name, []).append(x[:, r])
    stats = {}
    for name, parts in pooled.items():
        joined = np.concatenate(parts)
        mu, sd = joined.mean(), joined.std()
        z = zscore(joined[:, None], mean=mu, std=sd)
        stats[name] = (mu, sd, z.min(), z.max())
    out = []
    for t, x in zip(tables, values, strict=True):
        mu, sd, lo, hi = (np.array([stats[n][k] for n in t.raters]) for k in range(4))
        z = zscore(x, mean=mu, std=sd)
        out.append(minmax(z, lo=lo, hi=hi) if how == "all-minmax" else z)
    return out


def _check_options(method: str, standardize: str, ewe_weights: str, dba_init: str,
                   time_unit: str, max_lag_s: float, warp_s: float, min_gain: float,
                   lag_select: str) -> None:
    for option, value, allowed in (("--method", method, METHODS), ("--standardize", standardize,
                                   STANDARDIZE), ("--ewe-weights", ewe_weights, EWE_WEIGHTS),
                                   ("--dba-init", dba_init, DBA_INITS),
                                   ("--time-unit", time_unit, TIME_UNITS),
                                   ("--lag-select", lag_select, LAG_SELECT)):
        if value not in allowed:
            raise EmotraceError(f"{option} {value!r}: unknown. Use one of {', '.join(allowed)}.")
    for option, value in (("--max-lag", max_lag_s), ("--warp", warp_s), ("--lag-min-gain", min_gain)):
        if not np.isfinite(value) or value < 0:
            raise EmotraceError(f"{option} {value:g}: must be a number >= 0 (--max-lag and --warp "
                                f"are seconds; 0 turns the step off).")


def _window_notes(rid: str, steps: int, smoothers: dict[str, Smoother | None]) -> list[str]:
    return [f"{rid}: {steps} steps, fewer than the {option} window of {s.window}; the window was "
            f"cut to the recording's {steps} steps" for option, s in smoothers.items()
            if s is not None and s.window > steps]


def _rater_report(t: RaterTable, res) -> dict:
    rec: dict = {"weights": dict(zip(t.raters, np.round(res.weights, 6).tolist(), strict=True)),
                 "lags_s": dict(zip(t.raters, np.round(res.lags, 3).tolist(), strict=True))}
    if res.raters:
        rec["lag_selection"] = dict(zip(t.raters, res.raters, strict=True))
    if res.info:
        rec["fusion"] = res.info
    return rec


def _one_recording(t: RaterTable, x: np.ndarray, *, eda: Path | str | None, eda_smooth: int,
                   fusion: dict) -> tuple[dict, np.ndarray, list[str]]:
    """Fuse one recording (after replacing its weakest rater by EDA, if asked): its report, its
    gold standard before post-smoothing, and its warnings."""
    rec: dict = {"raters": t.raters, "steps": len(x), "rate_hz": round(t.rate, 6),
                 "time_unit": t.time_unit}
    if eda is not None:
        path = path_for(Path(eda), t.id)
        if not path.is_file():
            raise located(path, "EDA file not found", fix=f"Add the EDA of recording {t.id}.")
        x, weakest = replace_weakest(x, read_eda(path, t.timestamps), smooth=eda_smooth)
        rec["replaced_by_eda"] = t.raters[weakest]
    res = fuse(x, rate=t.rate, names=t.raters, **fusion)
    rec.update(_rater_report(t, res))
    rec["agreement"] = agreement(t.values, t.raters)
    return rec, res.gold, res.warnings


def gold_standard(raw: Path | str, *, dimension: str, out: Path | str, method: str = "ewe",
                  standardize: str = "none", pre_smooth: str | None = None,
                  post_smooth: str | None = None, max_lag_s: float = 4.0, warp_s: float = 1.0,
                  min_gain: float = 0.05, ewe_weights: str = "pearson",
                  toolbox_numerics: bool = False, dba_init: str = "medoid",
                  dba_band_s: float | None = None, time_unit: str = "auto",
                  lag_select: str = "peak", eda: Path | str | None = None, eda_smooth: int = 26,
                  trim: bool = False,
                  progress: Callable[[int, int], None] | None = None) -> dict:
    """Build the gold standard of every recording in ``raw/<dimension>/`` and write it to
    ``out/label_segments/<dimension>/<id>.csv``; returns the report that is also written to
    ``out/metadata/gold_<dimension>.json``.

    Args:
        method: one of :data:`emotrace.labels.raters.METHODS`.
        standardize: one of :data:`STANDARDIZE`: ``per-recording`` z-scores each rater per
            recording, ``all`` with its statistics over all recordings (raters identified by
            column name); ``all-minmax`` (MuSe-Toolbox compatible ``--std_annos_all_samples``)
            then maps each rater to [-1, 1] with its minimum and maximum over all recordings;
            ``per-recording-minmax`` (MuSe-Toolbox compatible ``--std_annos_per_sample``)
            z-scores per recording and min-max scales the post-smoothed gold standard to [-1, 1].
        pre_smooth / post_smooth: :func:`~emotrace.labels.raters.parse_smoother` specs, applied
            to every rater before standardising / to the gold standard.
        max_lag_s, warp_s, min_gain, lag_select, ewe_weights, dba_init, dba_band_s: see
            :func:`~emotrace.labels.raters.fuse`.
        toolbox_numerics: reproduce MuSe-Toolbox's numerics: its EWE rounding and CCC estimator,
            and Savitzky-Golay pre-smoothing edges by a polynomial fit.
        time_unit: the raw files' timestamps: ``auto`` (milliseconds when the median step is at
            least 10, else seconds), ``s`` or ``ms``.
        eda: folder of ``<id>.csv`` EDA files (see :mod:`emotrace.labels.physio`); the rater
            with the lowest EWE weight is replaced by the smoothed, standardised EDA
            (``eda_smooth`` steps) before fusing (physiological arousal; use ``method="raaw"``).
    """
    _check_options(method, standardize, ewe_weights, dba_init, time_unit, max_lag_s, warp_s,
                   min_gain, lag_select)
    pre = parse_smoother(pre_smooth, option="--pre-smooth", default="savgol")
    if pre is not None and toolbox_numerics:
        pre = dataclasses.replace(pre, edges="interp")
    post = parse_smoother(post_smooth, option="--post-smooth", default="mean")
    if eda is not None and not Path(eda).is_dir():
        raise located(eda, "EDA folder not found", fix="--replace-weakest-with needs a folder of "
                      "<id>.csv files with columns timestamp (seconds), value.")
    tables = read_raw_folder(raw, dimension, trim=trim, time_unit=time_unit)
    values = [pre(t.values) if pre else t.values for t in tables]
    values = _standardise(tables, values, standardize)
    out = Path(out)
    fusion = {"method": method, "max_lag_s": max_lag_s, "warp_s": warp_s, "min_gain": min_gain,
              "ewe_weights": ewe_weights, "toolbox": toolbox_numerics, "dba_init": dba_init,
              "dba_band_s": dba_band_s, "lag_select": lag_select}
    report: dict = {"dimension": dimension, "method": method, "standardize": standardize,
                    "pre_smooth": pre_smooth, "post_smooth": post_smooth, "max_lag_s": max_lag_s,
                    "warp_s": warp_s, "lag_select": lag_select, "lag_min_gain": min_gain,
                    "ewe_weights": ewe_weights,
                    "toolbox_numerics": toolbox_numerics, "dba_init": dba_init,
                    "dba_band_s": dba_band_s, "time_unit": time_unit,
                    "eda": str(eda) if eda else None, "recordings": {}, "warnings": []}
    ms = sorted({t.id for t in tables if t.time_unit == "ms"})
    if ms and time_unit == "auto":
        report["warnings"].append(
            f"{len(ms)} raw file(s) have steps of 10 or more and were read as milliseconds (e.g. "
            f"{ms[0]}); pass --time-unit s if they really are seconds")
    for i, (t, x) in enumerate(zip(tables, values, strict=True)):
        report["warnings"] += _window_notes(t.id, len(x), {"--pre-smooth": pre, "--post-smooth": post})
        rec, gold, notes = _one_recording(t, x, eda=eda, eda_smooth=eda_smooth, fusion=fusion)
        gold = post(gold) if post else gold
        if standardize == "per-recording-minmax":
            gold = minmax(gold)
        write_labels(path_for(out / "label_segments" / dimension, t.id),
                     np.rint(t.timestamps * 1000), gold)
        report["warnings"] += [f"{t.id}: {w}" for w in notes]
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


def agreement_report(raw: Path | str, *, dimension: str, trim: bool = False, time_unit: str = "auto",
                     progress: Callable[[int, int], None] | None = None) -> dict:
    """Agreement per recording (:func:`~emotrace.labels.agreement.agreement`) and overall
    (:func:`~emotrace.labels.agreement.agreement_overall`) of ``raw/<dimension>/*.csv``."""
    tables = read_raw_folder(raw, dimension, trim=trim, time_unit=time_unit, progress=progress)
    return {"dimension": dimension,
            "recordings": {t.id: agreement(t.values, t.raters) for t in tables},
            "overall": agreement_overall([t.values for t in tables])}
