"""Stress-Predict devel benchmark: per-step stress (0/1) from E4 physiological features.

Prepares the corpus (``emotrace data prepare stress-predict``; train S01-S18, devel S19-S25, 2 Hz)
if it is not there, then prints one table of devel metrics, mean ± std over seeds:

- the reference of ../shared/data/README.md: a logistic regression on the per-step heart rate
  (``hrv``: ``hr``) and skin conductance (``eda``: ``eda_tonic + eda_phasic``), fitted on train,
  on the raw values and with each subject's signals z-scored over their whole recording (no
  labels involved). Deterministic, so its std is 0.
- a bidirectional GRU sequence model (emotrace's ``rnn``) per feature set and on all sets fused
  (early fusion), each with ``--seeds`` seeds; every feature set z-scored within each recording
  first (``per_recording``), then standardised with train statistics. Model selection (early
  stopping, and choosing this configuration) used devel, so the numbers are devel numbers; no test
  partition exists in the shared copy.

CCC is global over the concatenated devel recordings (the prediction against the 0/1 target);
AUROC uses the prediction as the score; F1 thresholds it at 0.5.

Usage::

    python benchmarks/stress_predict.py --source ../shared/data/stress-predict \\
        --data benchmarks/out/sp --out benchmarks/out/sp_runs --seeds 3 --epochs 15
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SETS = ("hrv", "eda", "temp", "acc")


def _z(x: np.ndarray) -> np.ndarray:
    mu, sd = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
    return (x - mu) / np.where(sd > 0, sd, 1.0)


def _per_subject_z(corpus, features: list[str]) -> dict[str, tuple[list, list]]:
    """Per partition: each recording's features z-scored over that recording, and its labels."""
    out = {}
    for part in ("train", "devel"):
        xs, ys = [], []
        for rec in corpus.partition(part):
            x = np.concatenate([rec.features[f] for f in features], axis=1).astype(np.float64)
            x = np.where(np.isfinite(x) & (x != 0), x, np.nan)
            xs.append(np.nan_to_num(_z(x)))
            ys.append(rec.labels["stress"])
        out[part] = (xs, ys)
    return out


def logistic_per_set(data: Path) -> dict[str, dict[str, list[float]]]:
    """Logistic regression on every column of a feature set, per step, per-subject z-scored."""
    from sklearn.linear_model import LogisticRegression

    from emotrace.data.muse import load_corpus
    from emotrace.metrics import trace_metrics

    corpus = load_corpus(data, features=list(SETS), targets=["stress"])
    rows = {}
    for name in ("fused", *SETS):
        features = list(SETS) if name == "fused" else [name]
        parts = _per_subject_z(corpus, features)
        model = LogisticRegression(max_iter=2000).fit(np.concatenate(parts["train"][0]),
                                                      np.concatenate(parts["train"][1]))
        m = trace_metrics(parts["devel"][1], [model.predict_proba(x)[:, 1] for x in parts["devel"][0]])
        rows[f"logreg {name} (z per subject)"] = {k: [m[k]] for k in ("ccc", "auroc", "f1")}
    return rows


def reference(data: Path) -> dict[str, dict[str, float]]:
    """Logistic regression on per-step HR and EDA (raw; per-subject z-scored)."""
    from sklearn.linear_model import LogisticRegression

    from emotrace.data.muse import load_corpus
    from emotrace.metrics import trace_metrics

    corpus = load_corpus(data, features=["hrv", "eda"], targets=["stress"])
    hr_col = 0  # hrv: hr is the first column
    out = {}
    for name, per_subject in (("logreg HR+EDA (raw)", False), ("logreg HR+EDA (z per subject)", True)):
        xs, ys = {}, {}
        for part in ("train", "devel"):
            xp, yp = [], []
            for rec in corpus.partition(part):
                eda = rec.features["eda"]
                x = np.column_stack([rec.features["hrv"][:, hr_col], eda[:, 0] + eda[:, 1]])
                x = np.where(np.isfinite(x), x, np.nan)
                x = np.where(x == 0, np.nan, x)  # zero rows are "nothing measured"
                if per_subject:
                    x = _z(x)
                xp.append(x)
                yp.append(rec.labels["stress"])
            xs[part], ys[part] = xp, yp
        xtr, ytr = np.concatenate(xs["train"]), np.concatenate(ys["train"])
        mu = np.nanmean(xtr, axis=0)  # impute with the train mean
        sd = np.nanstd(xtr, axis=0)

        def prep(x, mu=mu, sd=sd):
            return (np.where(np.isnan(x), mu, x) - mu) / sd

        model = LogisticRegression(max_iter=1000).fit(prep(xtr), ytr)
        preds = [model.predict_proba(prep(x))[:, 1] for x in xs["devel"]]
        m = trace_metrics(ys["devel"], preds)
        out[name] = {k: [m[k]] for k in ("ccc", "auroc", "f1")}
    return out


def sequence_model(data: Path, out: Path, features: list[str], *, seeds: int, epochs: int,
                   threads: int, layers: int = 1, hop: int = 600) -> tuple[dict, float, int]:
    import emotrace
    from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    cfg = RunConfig(
        data=DataConfig(features=features, targets=["stress"], win=600, hop=hop,
                        per_recording=features),
        model=ModelConfig(name="rnn", cell="gru", hidden=32, layers=layers, bidirectional=True,
                          dropout=0.1),
        train=TrainConfig(epochs=epochs, seeds=seeds, loss="mse", threads=threads, patience=6,
                          modality_dropout=0.2 if len(features) > 1 else 0.0, batch_size=16),
    )
    started = time.perf_counter()
    if (out / "metrics.json").is_file():  # finished before: the table is rebuilt from the run
        metrics = json.loads((out / "metrics.json").read_text())
        seconds = float(metrics.get("train_seconds", 0.0))
    else:
        metrics = emotrace.fit(data, out=out, config=cfg, resume=(out / "config.yaml").exists())
        seconds = time.perf_counter() - started
    per_seed = [s["devel"]["stress"] if "stress" in s["devel"] else s["devel"] for s in metrics["seeds"]]
    import yaml

    max_epochs = yaml.safe_load((out / "config.yaml").read_text())["train"]["epochs"]
    return {k: [float(s[k]) for s in per_seed] for k in ("ccc", "auroc", "f1")}, seconds, max_epochs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=Path("../shared/data/stress-predict"))
    ap.add_argument("--data", type=Path, default=Path("benchmarks/out/sp"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/sp_runs"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sets", nargs="+", default=["fused", *SETS],
                    help="fused, fused-2l (2 layers, hop 300) and/or single feature sets")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from emotrace.datasets import prepare

    if not (args.data / "metadata" / "partition.csv").is_file() or not all(
            (args.data / "feature_segments" / s / "manifest.json").is_file() for s in SETS):
        t = time.perf_counter()
        summary = prepare("stress-predict", source=args.source, out=args.data)
        print(f"prepared {args.data} in {time.perf_counter() - t:.1f} s: {summary['recordings']}, "
              f"{summary['steps']} steps, stress fraction {summary['stress_fraction']}", flush=True)
    rows = reference(args.data) | logistic_per_set(args.data)
    for name in args.sets:
        # "fused-2l": all sets, 2 GRU layers, windows overlapping by half (twice the updates)
        features = list(SETS) if name.startswith("fused") else [name]
        deep = name.endswith("-2l")
        res, seconds, max_epochs = sequence_model(args.data, args.out / name, features, seeds=args.seeds,
                                      epochs=args.epochs, threads=args.threads,
                                      layers=2 if deep else 1, hop=300 if deep else 600)
        arch = "2x32, hop 300" if deep else "1x32, hop 600"
        rows[f"BiGRU {arch}, ≤{max_epochs} ep: {name} ({' '.join(features)})"] = res
        print(f"{name}: {json.dumps(res)} ({seconds:.0f} s)", flush=True)
    print("\n| model (devel S19-S25) | CCC | AUROC | F1 | seeds |")
    print("|---|---|---|---|---|")
    for name, res in rows.items():
        cells = [f"{np.mean(res[k]):.3f} ± {np.std(res[k]):.3f}" for k in ("ccc", "auroc", "f1")]
        print(f"| {name} | {' | '.join(cells)} | {len(res['ccc'])} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"results-{'-'.join(args.sets)}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
