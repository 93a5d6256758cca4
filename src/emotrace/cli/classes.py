"""``emotrace classes``: segment classes from a continuous target (emotrace.labels.classes)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from emotrace.cli.common import Debug, Quiet, err, loader, progress_bar, warn
from emotrace.data.names import path_for
from emotrace.errors import EmotraceError
from emotrace.fileio import check_output

MULTI: tuple[str, ...] = ()


class Cluster(StrEnum):
    kmeans = "kmeans"
    gmm = "gmm"


def classes(
    data: Annotated[Path, typer.Option("--data", help="Corpus folder (MuSe layout).")],
    target: Annotated[str, typer.Option("--target", help="Continuous target, e.g. valence.")],
    out: Annotated[Path | None, typer.Option(
        "--out", help="Corpus folder to write the class target to (default: --data).")] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="Name of the class target (default: <target>_class).")] = None,
    segments: Annotated[Path | None, typer.Option(
        "--segments", help="Folder of <recording_id>.csv: segment_id,start,end (ms).")] = None,
    segment_length: Annotated[float, typer.Option(
        "--segment-length", help="Without --segments: segments of this many seconds; "
        "0 = whole recordings.")] = 0.0,
    features: Annotated[str | None, typer.Option(
        "--features", help="Statistics: arousal-set, valence-set (default by target name), "
        "MuSe-Toolbox's set_basic, set_change, set_ext, set_large, or names separated by commas.")]
        = None,
    pca: Annotated[int, typer.Option("--pca", help="PCA components; 0 = no PCA.")] = 5,
    pca_minmax: Annotated[bool, typer.Option(
        "--pca-minmax", help="Scale each PCA component to [-1, 1] (train min/max), as "
        "MuSe-Toolbox does.")] = False,
    cluster: Annotated[Cluster, typer.Option(
        "--cluster", help="k-means (valence in MuSe-Sent) or a Gaussian mixture (arousal).")
    ] = Cluster.kmeans,
    k: Annotated[int, typer.Option("--k", help="Number of classes.")] = 5,
    min_class_share: Annotated[float, typer.Option(
        "--min-class-share", help="Warn when the smallest train class is below this share.")] = 0.05,
    peak_support: Annotated[int, typer.Option(
        "--peak-support", help="Neighbours on each side that a peak must exceed.")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the clustering.")] = 0,
    quiet: Quiet = False, debug: Debug = False,
) -> None:
    """Cluster segment statistics of a trace into classes (fitted on train); writes
    label_segments/<name>/ (class_id per segment) and metadata/classes_<name>.json."""
    from emotrace.labels.classes import make_classes

    check_class_output(data, out=out, target=target, name=name, segments=segments)
    with progress_bar(quiet) as p:
        rep = make_classes(data, target=target, out=out, name=name, segments=segments,
                           segment_length=segment_length, statistics=features, pca=pca,
                           pca_minmax=pca_minmax,
                           cluster=cluster.value, k=k, min_class_share=min_class_share,
                           peak_support=peak_support, seed=seed, progress=loader(p, "statistics"))
    root = out or data
    table = Table(title=f"{rep['name']}: {rep['cluster']} k={rep['k']} on {rep['target']} "
                        f"({rep['segments_from']})")
    for col in ("partition", "segments", "silhouette", "class shares"):
        table.add_column(col)
    for part, shares in rep["class_shares"].items():
        s = rep["silhouette"][part]
        table.add_row(part, str(rep["segments"][part]), "" if s is None else f"{s:.3f}",
                      " ".join(f"{100 * x:.1f}%" for x in shares))
    Console().print(table)
    prof = Table(title="class profiles (train; mean z-score of the statistics)")
    for col in ("class", "segments", "distinguished by"):
        prof.add_column(col)
    for c in rep["profile"]:
        prof.add_row(str(c["class_id"]), str(c["segments"]), "; ".join(c["distinguishing"]))
    Console().print(prof)
    warn(rep["warnings"])
    err.print(f"wrote {root / 'label_segments' / rep['name']} and "
              f"{root / 'metadata' / ('classes_' + rep['name'] + '.json')}", highlight=False,
              soft_wrap=True)


def check_class_output(data: Path, *, out: Path | None, target: str, name: str | None,
                       segments: Path | None) -> None:
    """The class folder is a plain name, not on the inputs, and not a label folder that
    `emotrace classes` did not write (e.g. another target's gold standard)."""
    name = name or f"{target}_class"
    root = out or data
    folder = check_output(path_for(root / "label_segments", name, "", what="--name"),
                          {"--target": data / "label_segments" / target, "--segments": segments},
                          option="output folder")
    if folder.is_dir() and any(folder.iterdir()) and \
            not (root / "metadata" / f"classes_{name}.json").is_file():
        raise EmotraceError(f"--name {name!r}: {folder} already holds labels that `emotrace "
                            f"classes` did not write, which the classes would overwrite. Choose "
                            f"another --name.")


def register(app: typer.Typer) -> None:
    app.command("classes")(classes)
