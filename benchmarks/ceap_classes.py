"""Segment classes and segment classification on CEAP-360VR (MuSe-Sent style).

Segments = each video of each participant (a recording: 300 steps at 5 Hz). Classes: valence with
the valence statistic set and k-means, arousal with the arousal set and a Gaussian mixture, k = 5,
PCA to 5 components, fitted on train (P1-P20) only; devel (P21-P26) assigned to the nearest
cluster. Then segment classification from the ``head``, ``eye`` and ``lum`` features: the pooled
sequence classifier (one run per seed, devel macro F1 mean ± std over the seeds), against
references: chance (1/k), the train majority class, the majority class of the same video in train,
and a logistic regression on the segment means of the standardised features.

    python benchmarks/ceap_classes.py --source ../shared/data/ceap360vr --seeds 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

import emotrace
from emotrace.data.standardise import Standardiser
from emotrace.datasets import prepare
from emotrace.labels.classes import make_classes
from emotrace.metrics import classification_metrics

FEATURES = ["head", "eye", "lum"]
SETUPS = {"valence": ("valence-set", "kmeans"), "arousal": ("arousal-set", "gmm")}


def segment_table(corpus, target: str, std: Standardiser) -> dict[str, tuple]:
    """Per partition: ids, video, class id and the segment mean of the standardised features."""
    out = {}
    for part in ("train", "devel"):
        recs = corpus.partition(part)
        ys = np.array([np.nanmax(r.labels[target]) for r in recs])
        xs = np.stack([std.transform(r, FEATURES).mean(0) for r in recs])
        out[part] = ([r.id for r in recs], [r.id.split("_")[1] for r in recs], ys, xs)
    return out


def references(tab: dict, k: int) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression

    _, v_tr, y_tr, x_tr = tab["train"]
    _, v_de, y_de, x_de = tab["devel"]
    y_tr, y_de = y_tr.astype(int), y_de.astype(int)
    majority = np.bincount(y_tr, minlength=k).argmax()
    by_video = {v: np.bincount(y_tr[np.array(v_tr) == v], minlength=k).argmax() for v in set(v_tr)}
    logreg = LogisticRegression(max_iter=2000).fit(x_tr, y_tr)
    f1 = lambda p: classification_metrics(y_de, p, n_classes=k)["f1_macro"]  # noqa: E731
    return {"chance (1/k)": 1 / k,
            "train majority class": f1(np.full(len(y_de), majority)),
            "majority class of the same video": f1(np.array([by_video[v] for v in v_de])),
            "logistic regression on segment means": f1(logreg.predict(x_de))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=Path("../shared/data/ceap360vr"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--model", default="gcnn-rnn")
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--dims", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    ap.add_argument("--fixed", type=float, nargs="*", default=[20.0],
                    help="also build classes on fixed-length segments of these seconds (no training)")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--work", type=Path, default=None, help="keep the corpus and runs here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = args.work or Path(tempfile.mkdtemp(prefix="ceap-classes-"))
    root = work / "corpus"
    if not (root / "metadata" / "partition.csv").exists():
        prepare("ceap360vr", source=args.source, out=root)
    rows = []
    if args.fixed:
        print("| dimension | segments | train / devel segments | silhouette train | devel | "
              "smallest class train | devel |\n|---|---|---|---|---|---|---|")
    for length in args.fixed:
        for dim in args.dims:
            stats, cluster = SETUPS[dim]
            rep = make_classes(root, target=dim, out=work / f"fixed-{length:g}", statistics=stats,
                               cluster=cluster, k=args.k, pca=5, segment_length=length, seed=0)
            sil, sh = rep["silhouette"], rep["class_shares"]
            print(f"| {dim} | fixed {length:g} s | {rep['segments']['train']} / "
                  f"{rep['segments']['devel']} | {sil['train']:.3f} | {sil['devel']:.3f} | "
                  f"{100 * min(sh['train']):.1f}% | {100 * min(sh['devel']):.1f}% |")
    for dim in args.dims:
        stats, cluster = SETUPS[dim]
        rep = make_classes(root, target=dim, statistics=stats, cluster=cluster, k=args.k, pca=5,
                           min_class_share=0.05, seed=0)
        print(f"\n## {dim}: {stats}, {cluster}, k={args.k}, segments = whole recordings "
              f"(train {rep['segments']['train']}, devel {rep['segments']['devel']})")
        print(f"silhouette train {rep['silhouette']['train']:.3f}, devel "
              f"{rep['silhouette']['devel']:.3f}; PCA explained variance "
              f"{sum(rep['pca_explained_variance']):.3f}")
        for part, shares in rep["class_shares"].items():
            print(f"class shares {part}: " + " ".join(f"{100 * s:.1f}%" for s in shares))
        for w in rep["warnings"]:
            print(f"warning: {w}")
        for c in rep["profile"]:
            print(f"  class {c['class_id']} ({c['segments']}): {'; '.join(c['distinguishing'])}")
        target = f"{dim}_class"
        corpus = emotrace.load_corpus(root, features=FEATURES, targets=[target])
        std = Standardiser.fit(corpus.partition("train"), FEATURES)
        refs = references(segment_table(corpus, target, std), args.k)
        scores, accs, secs, epochs = [], [], [], []
        for s in range(args.seeds):
            cfg = emotrace.RunConfig.model_validate({
                "data": {"features": FEATURES, "targets": [target]},
                "model": {"name": args.model, "hidden": args.hidden, "layers": args.layers,
                          "dropout": args.dropout},
                "train": {"task": "classification", "epochs": args.epochs, "seeds": 1, "seed": s,
                          "patience": 10, "threads": 1, "class_weights": True, "lr": 0.003}})
            out = work / f"run-{dim}-{args.model}-{args.hidden}x{args.layers}-d{args.dropout:g}-{s}"
            if (out / "metrics.json").exists():
                m = json.loads((out / "metrics.json").read_text())
            else:
                m = emotrace.fit(root, out=out, config=cfg, corpus=corpus)
            secs.append(m["train_seconds"])
            scores.append(m["devel"]["f1_macro"])
            accs.append(m["devel"]["accuracy"])
            epochs.append(m["epochs"])
        print(f"\n| {dim} classes, devel | macro F1 | accuracy |\n|---|---|---|")
        print(f"| {args.model} classifier ({args.seeds} seeds, {args.layers}x{args.hidden}, dropout "
              f"{args.dropout:g}) | "
              f"{np.mean(scores):.3f} ± {np.std(scores):.3f} | {np.mean(accs):.3f} ± "
              f"{np.std(accs):.3f} |")
        for name, v in refs.items():
            print(f"| {name} | {v:.3f} | |")
        print(f"(per seed F1 {', '.join(f'{x:.3f}' for x in scores)}; epochs {epochs}; "
              f"{np.mean(secs):.0f} s training per run)")
        rows.append({"dimension": dim, "silhouette": rep["silhouette"],
                     "shares": rep["class_shares"], "f1": scores, "accuracy": accs, "refs": refs})
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
