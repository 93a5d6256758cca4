"""Gold standards from several raters (emotrace.labels): ``emotrace gold ...`` fuses,
``emotrace gold agreement`` reports inter-rater agreement."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from emotrace.cli.common import Debug, Quiet, err, loader, progress_bar
from emotrace.data.names import path_for
from emotrace.errors import EmotraceError
from emotrace.fileio import check_output

MULTI: tuple[str, ...] = ()


class GoldMethod(StrEnum):
    mean = "mean"
    ewe = "ewe"
    raaw = "raaw"
    dba = "dba"


class Standardize(StrEnum):
    none = "none"
    per_recording = "per-recording"
    all = "all"
    all_minmax = "all-minmax"
    per_recording_minmax = "per-recording-minmax"


class EweWeights(StrEnum):
    pearson = "pearson"
    ccc = "ccc"


class DbaInit(StrEnum):
    medoid = "medoid"
    mean = "mean"


class LagSelect(StrEnum):
    peak = "peak"
    argmax = "argmax"


class TimeUnit(StrEnum):
    auto = "auto"
    s = "s"
    ms = "ms"


GoldInput = Annotated[Path | None, typer.Option(
    "--input", help="RAW folder: RAW/<dimension>/<id>.csv with timestamp (s), one column per rater.")]
GoldDimension = Annotated[str | None, typer.Option("--dimension", help="e.g. arousal or valence.")]
GoldTrim = Annotated[bool, typer.Option(
    "--trim", help="Cut each recording to the rows where every rater has a value.")]
GoldTimeUnit = Annotated[TimeUnit, typer.Option(
    "--time-unit", help="Unit of the raw timestamps; auto = ms when the median step is >= 10.")]



def gold(
    ctx: typer.Context,
    input: GoldInput = None,
    dimension: GoldDimension = None,
    out: Annotated[Path | None, typer.Option("--out", help="Corpus folder (MuSe layout) to write.")] = None,
    method: Annotated[GoldMethod, typer.Option(
        "--method", help="How the raters are fused (raaw: aligned, then EWE).")] = GoldMethod.ewe,
    standardize: Annotated[Standardize, typer.Option(
        "--standardize", help="z-score each rater per recording or over all its recordings; "
        "*-minmax: MuSe-Toolbox compatible scaling to [-1, 1].")] = Standardize.none,
    pre_smooth: Annotated[str | None, typer.Option(
        "--pre-smooth", help="Per rater: savgol:W[:ORDER], mean:W or W (savgol).")] = None,
    post_smooth: Annotated[str | None, typer.Option(
        "--post-smooth", help="Gold standard: W (moving average), mean:W or savgol:W[:ORDER].")] = None,
    max_lag: Annotated[float, typer.Option("--max-lag", help="RAAW: largest lag searched (s).")] = 4.0,
    lag_select: Annotated[LagSelect, typer.Option(
        "--lag-select", help="RAAW lags: peak = only real interior peaks; argmax = pooled "
        "pairwise argmax (no check; follows the search limit when there is no delay).")]
        = LagSelect.peak,
    lag_min_gain: Annotated[float, typer.Option(
        "--lag-min-gain", help="RAAW: a lag must beat zero lag (and fall off before the search "
        "boundary) by this much correlation.")] = 0.05,
    warp: Annotated[float, typer.Option("--warp", help="RAAW: DTW band (s); 0 = lags only.")] = 1.0,
    ewe_weights: Annotated[EweWeights, typer.Option(
        "--ewe-weights", help="EWE/RAAW weights: Pearson with the others' mean, or mean pairwise "
        "CCC (MuSe-Toolbox).")] = EweWeights.pearson,
    toolbox_numerics: Annotated[bool, typer.Option(
        "--toolbox-numerics", help="Reproduce MuSe-Toolbox's EWE rounding and CCC estimator and "
        "its Savitzky-Golay edges.")] = False,
    dba_init: Annotated[DbaInit, typer.Option("--dba-init", help="DBA start.")] = DbaInit.medoid,
    dba_band: Annotated[float | None, typer.Option(
        "--dba-band", help="DBA: Sakoe-Chiba band (s); default unconstrained.")] = None,
    time_unit: GoldTimeUnit = TimeUnit.auto,
    eda: Annotated[Path | None, typer.Option(
        "--replace-weakest-with", help="EDA folder (<id>.csv: timestamp s, value).")] = None,
    eda_smooth: Annotated[int, typer.Option("--eda-smooth", help="EDA Savitzky-Golay window.")] = 26,
    trim: GoldTrim = False,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Fuse raters into ROOT/label_segments/<dimension>/ and ROOT/metadata/gold_<dimension>.json."""
    if ctx.invoked_subcommand is not None:
        return
    from emotrace.labels import gold_standard

    missing = [o for o, v in (("--input", input), ("--dimension", dimension), ("--out", out))
               if v is None]
    if missing:
        raise EmotraceError(f"gold needs {', '.join(missing)} (see emotrace gold --help).")
    check_output(path_for(out / "label_segments", dimension, "", what="--dimension"),  # issue 12
                 {"--input": input, "--replace-weakest-with": eda}, option="output folder")
    with progress_bar(quiet) as p:
        report = gold_standard(input, dimension=dimension, out=out, method=method.value,
                               standardize=standardize.value, pre_smooth=pre_smooth,
                               post_smooth=post_smooth, max_lag_s=max_lag, warp_s=warp,
                               min_gain=lag_min_gain, lag_select=lag_select.value,
                               ewe_weights=ewe_weights.value,
                               toolbox_numerics=toolbox_numerics, dba_init=dba_init.value,
                               dba_band_s=dba_band, time_unit=time_unit.value, eda=eda,
                               eda_smooth=eda_smooth, trim=trim, progress=loader(p, "gold"))
    for line in report["warnings"]:
        err.print(f"[yellow]warning:[/] {line}", highlight=False, soft_wrap=True)
    a = report["agreement"]
    err.print(f"wrote {len(report['recordings'])} gold standard(s) to "
              f"{out / 'label_segments' / dimension}; agreement (pairwise Pearson) "
              f"{a['pearson']['mean']:.3f} ± {a['pearson']['std']:.3f}; report "
              f"{out / 'metadata' / f'gold_{dimension}.json'}", highlight=False, soft_wrap=True)



def gold_agreement(
    input: GoldInput = None,
    dimension: GoldDimension = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    trim: GoldTrim = False,
    time_unit: GoldTimeUnit = TimeUnit.auto,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Inter-rater agreement per recording and overall (mean ± std of pairwise Pearson and CCC)."""
    from emotrace.labels import agreement_report

    if input is None or dimension is None:
        raise EmotraceError("gold agreement needs --input and --dimension.")
    with progress_bar(quiet or as_json) as p:
        rep = agreement_report(input, dimension=dimension, trim=trim, time_unit=time_unit.value,
                               progress=loader(p, "read"))
    if as_json:
        print(json.dumps(rep))
        return
    table = Table(title=f"{input / dimension}: inter-rater agreement")
    for col in ("recording", "raters", "pearson", "ccc", "alpha", "EWE weights"):
        table.add_column(col)
    for rid, r in [*rep["recordings"].items(), ("overall", rep["overall"])]:
        w = " ".join(f"{k}:{v:.2f}" for k, v in r.get("ewe_weights", {}).items())
        alpha = r.get("krippendorff_alpha")
        table.add_row(rid, str(r.get("raters", f"{r['pairs']} pairs")),
                      f"{r['pearson']['mean']:.3f} ± {r['pearson']['std']:.3f}",
                      f"{r['ccc']['mean']:.3f} ± {r['ccc']['std']:.3f}",
                      "" if alpha is None else f"{alpha:.3f}", w)
    Console().print(table)


def register(app: typer.Typer) -> None:
    gold_app = typer.Typer(invoke_without_command=True, no_args_is_help=True,
                           help="Gold standards from several raters (mean, EWE, RAAW, DBA); without "
                                "a subcommand, fuse RAW/<dimension>/*.csv into ROOT/label_segments/.")
    gold_app.callback()(gold)
    gold_app.command("agreement")(gold_agreement)
    app.add_typer(gold_app, name="gold")
