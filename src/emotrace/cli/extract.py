"""Feature extraction (emotrace.features): ``emotrace extract audio|text|face|physio``.

Each subcommand is a thin layer over :func:`emotrace.features.driver.extract`; the extractor modules
are imported only when their command runs, so ``extract physio`` works without the media
packages (and the other way round).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from emotrace.cli.common import Debug, Quiet, err, loader, progress_bar, warn

MULTI: tuple[str, ...] = ()


class Anchor(StrEnum):
    end = "end"
    centre = "centre"


class Detector(StrEnum):
    haar = "haar"
    mtcnn = "mtcnn"


Labels = Annotated[Path | None, typer.Option(
    "--labels", help="Corpus (MuSe layout) whose label timestamps to align to; features go to "
    "ROOT/feature_segments/<feature_set>/.")]
Rate = Annotated[float | None, typer.Option(
    "--rate", help="Steps per second of a regular grid, for recordings without labels (with "
    "--out when there are no --labels).")]
Out = Annotated[Path | None, typer.Option(
    "--out", help="Corpus folder to write into (default: --labels).")]
Target = Annotated[str | None, typer.Option(
    "--target", help="Label target whose timestamps to use (default: the first).")]
Workers = Annotated[int, typer.Option("--workers", help="Parallel processes.")]


def _run(kind: str, inputs: Path, *, feature_set: str, labels: Path | None, rate: float | None,
         out: Path | None, target: str | None, workers: int, quiet: bool, **options) -> None:
    from emotrace.features.driver import extract

    with progress_bar(quiet) as p:
        summary = extract(kind, inputs=inputs, labels=labels, rate=rate, out=out, target=target,
                          feature_set=feature_set, workers=workers,
                          progress=loader(p, f"extract {kind} {feature_set}"), **options)
    warn(summary["warnings"])
    names = summary["names"] or []
    err.print(f"{summary['folder']}: wrote {len(summary['written'])} recording(s), skipped "
              f"{len(summary['skipped'])} already extracted; {len(names)} features.",
              highlight=False, soft_wrap=True)


def physio(
    signals: Annotated[Path, typer.Option(
        "--signals", help="Folder with one folder per recording, <id>/, holding E4-format CSV "
        "files (BVP/ECG, EDA, RESP, TEMP, ACC; line 1 start unix s, line 2 Hz).")],
    feature_set: Annotated[str, typer.Option(
        "--feature-set", help="hrv, eda, resp, temp, acc or bio (all present).")],
    labels: Labels = None, rate: Rate = None, out: Out = None, target: Target = None,
    window: Annotated[float, typer.Option("--window", help="Seconds before each step.")] = 4.0,
    long_window: Annotated[float, typer.Option(
        "--long-window", help="Seconds for the SCR rate and temperature slope.")] = 60.0,
    workers: Workers = 1, quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Physiological features from E4-format signals.

    Heart rate and HRV, EDA, respiration, skin temperature and movement features.
    """
    _run("physio", signals, feature_set=feature_set, labels=labels, rate=rate, out=out,
         target=target, workers=workers, quiet=quiet, window=window, long_window=long_window)


def audio(
    media: Annotated[Path, typer.Option("--media", help="Folder of <id>.wav or video files.")],
    feature_set: Annotated[str, typer.Option("--feature-set", help="e.g. egemaps.")] = "egemaps",
    labels: Labels = None, rate: Rate = None, out: Out = None, target: Target = None,
    window: Annotated[float, typer.Option("--window", help="Window length (s).")] = 6.0,
    anchor: Annotated[Anchor, typer.Option("--anchor", help="Window ends at or is centred on "
                                                            "the step.")] = Anchor.end,
    vad: Annotated[bool, typer.Option("--vad", help="Zero out non-speech (silero-vad).")] = False,
    workers: Workers = 1, quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Acoustic features (openSMILE) over a window at every step."""
    _run("audio", media, feature_set=feature_set, labels=labels, rate=rate, out=out, target=target,
         workers=workers, quiet=quiet, window=window, anchor=anchor.value, vad=vad)


def text(
    transcripts: Annotated[Path, typer.Option(
        "--transcripts", help="Folder of <id>.csv with word,start,end per row.")],
    feature_set: Annotated[str, typer.Option("--feature-set", help="e.g. minilm.")] = "minilm",
    labels: Labels = None, rate: Rate = None, out: Out = None, target: Target = None,
    model: Annotated[Path | None, typer.Option(
        "--model", help="A local sentence-transformers or Hugging Face model folder.")] = None,
    workers: Workers = 1, quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Word embeddings repeated over each word's time span."""
    _run("text", transcripts, feature_set=feature_set, labels=labels, rate=rate, out=out,
         target=target, workers=workers, quiet=quiet, model=str(model) if model else None)


def face(
    media: Annotated[Path, typer.Option("--media", help="Folder of <id> video files.")],
    feature_set: Annotated[str, typer.Option("--feature-set", help="e.g. face.")] = "face",
    labels: Labels = None, rate: Rate = None, out: Out = None, target: Target = None,
    detector: Annotated[Detector, typer.Option("--detector", help="Face detector.")] = Detector.haar,
    workers: Workers = 1, quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Face features per step.

    Face detection per step, then an expression/geometry representation of the largest face.
    """
    _run("face", media, feature_set=feature_set, labels=labels, rate=rate, out=out, target=target,
         workers=workers, quiet=quiet, detector=detector.value)


def register(app: typer.Typer) -> None:
    extract_app = typer.Typer(no_args_is_help=True, short_help="Features from raw recordings.",
                              help="Extract features from raw recordings, aligned to a corpus's "
                              "label timestamps (or a regular --rate grid).")
    for command in (audio, text, face, physio):
        extract_app.command()(command)
    app.add_typer(extract_app, name="extract")
