"""Unimodal runs, early fusion and late fusion on CEAP-360VR devel, arousal and valence.

    python benchmarks/fusion_table.py --data corpora/ceap --seeds 0 1 2 --workdir runs/fusion \
        --out benchmarks/out/fusion.jsonl

Per seed ``s`` (every model trained with ``train.seeds=1, train.seed=s``; one model predicts arousal
and valence together):

1. base runs: ``head``, ``eye``, ``lum`` alone, trained with ``--folds K`` (their out-of-fold train
   predictions; the in-sample ones are re-predicted by the kept model into a copy of the run),
   early fusion of all three with and without ``--difficulty`` (and, with
   ``--unimodal-difficulty``, the three unimodal runs with ``--difficulty``; with ``--reference``,
   the recommended early-fusion command of docs/benchmarks.md with all its defaults);
2. late fusion of the three unimodal runs: ``mean``, ``weighted`` and ``rnn``, with and without
   ``--difficulty``, from in-sample and from out-of-fold train predictions; over the three
   unimodal runs plus the early-fusion run (and over the ``--difficulty`` unimodal runs).

Runs go two at a time, one torch thread each; finished runs in ``--workdir`` are reused, so an
interrupted benchmark continues where it stopped. Prints one markdown table (mean ± std over
seeds, population std) with the time of each variant.
"""

from __future__ import annotations

import argparse
import json
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

FEATURES = ["head", "eye", "lum"]
TARGETS = ["arousal", "valence"]


def _base(job: dict) -> dict:
    import torch

    import emotrace
    from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    torch.set_num_threads(1)
    out = Path(job["out"])
    if not (out / "metrics.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        cfg = RunConfig(data=DataConfig(features=job["features"], targets=TARGETS,
                                        difficulty=job["difficulty"]),
                        model=ModelConfig(hidden=job["hidden"], layers=job["layers"]),
                        train=TrainConfig(epochs=job["epochs"], patience=job["patience"],
                                          seeds=1, seed=job["seed"], threads=1,
                                          folds=job["folds"]))
        if job.get("reference"):  # the recommended command of docs/benchmarks.md, all defaults
            cfg = RunConfig(data=DataConfig(features=job["features"], targets=TARGETS,
                                            per_recording=["head", "eye"]),
                            train=TrainConfig(seeds=1, seed=job["seed"], threads=1))
        emotrace.fit(job["data"], out=out, config=cfg)
    m = json.loads((out / "metrics.json").read_text())
    if job["folds"]:  # the in-sample twin: the same run, train predictions from its own model
        twin = out.with_name(out.name + "-insample")
        if not (twin / "metrics.json").exists():
            shutil.rmtree(twin, ignore_errors=True)
            shutil.copytree(out, twin)
            shutil.rmtree(twin / "predictions" / "train")
            emotrace.predict(twin, job["data"], partition="train", out=twin / "predictions" / "train")
            mt = json.loads((twin / "metrics.json").read_text())
            mt["train_predictions"] = "in-sample"
            (twin / "metrics.json").write_text(json.dumps(mt))
    return {"variant": job["variant"], "seed": job["seed"], "devel": m["devel"],
            "seconds": m["wall_seconds"], "train_seconds": m["train_seconds"],
            "fold_seconds": m.get("folds", {}).get("seconds", 0.0),
            "difficulty_seconds": m.get("difficulty_seconds", 0.0), "epochs": m["epochs"]}


def _fuse(job: dict) -> dict:
    import torch

    import emotrace
    from emotrace.config import FuseConfig, TrainConfig

    torch.set_num_threads(1)
    out = Path(job["out"])
    if not (out / "metrics.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        cfg = FuseConfig(runs=job["runs"], train=TrainConfig(
            epochs=20, patience=5, lr_patience=3, modality_dropout=0.0, seeds=1,
            seed=job["seed"], threads=1))
        emotrace.fuse(job["runs"], data=job["data"], out=out, method=job["method"],
                      difficulty=job["difficulty"], config=cfg)
    m = json.loads((out / "metrics.json").read_text())
    return {"variant": job["variant"], "seed": job["seed"], "devel": m["devel"],
            "seconds": m["wall_seconds"], "train_seconds": m["train_seconds"],
            "difficulty_seconds": m["difficulty_seconds"], "epochs": m["epochs"],
            "train_predictions": m["train_predictions"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--patience", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--reference", action="store_true",
                    help="also train the recommended early-fusion command (all defaults, 60 epochs) "
                    "and fuse it with the unimodal runs")
    ap.add_argument("--unimodal-difficulty", action="store_true",
                    help="also train head, eye, lum with --difficulty and fuse those runs")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, help="JSON lines, appended after each seed")
    ap.add_argument("--table-only", action="store_true", help="print the table from --out")
    args = ap.parse_args()
    common = {"data": args.data, "epochs": args.epochs, "patience": args.patience,
              "hidden": args.hidden, "layers": args.layers}
    base_jobs, fuse_jobs = [], []
    for s in args.seeds:
        d = args.workdir / f"s{s}"
        for f in FEATURES:
            base_jobs.append(common | {"variant": f"unimodal {f}", "features": [f], "difficulty": False,
                                       "folds": args.folds, "seed": s, "out": str(d / f)})
            if args.unimodal_difficulty:
                base_jobs.append(common | {"variant": f"unimodal {f} + difficulty", "features": [f],
                                           "difficulty": True, "folds": 0, "seed": s,
                                           "out": str(d / f"{f}-diff")})
        base_jobs.append(common | {"variant": "early fusion head eye lum", "features": FEATURES,
                                   "difficulty": False, "folds": 0, "seed": s, "out": str(d / "early")})
        base_jobs.append(common | {"variant": "early fusion head eye lum + difficulty",
                                   "features": FEATURES, "difficulty": True, "folds": 0, "seed": s,
                                   "out": str(d / "early-diff")})
        sets = {"in-sample": [str(d / f"{f}-insample") for f in FEATURES],
                "out-of-fold": [str(d / f) for f in FEATURES],
                "diff-runs": [str(d / f"{f}-diff") for f in FEATURES],
                "with-early": [str(d / f"{f}-insample") for f in FEATURES] + [str(d / "early")]}
        plan = [("in-sample", "mean", False), ("in-sample", "weighted", False),
                ("in-sample", "weighted", True), ("in-sample", "rnn", False), ("in-sample", "rnn", True),
                ("out-of-fold", "weighted", False), ("out-of-fold", "weighted", True),
                ("out-of-fold", "rnn", False), ("out-of-fold", "rnn", True),
                ("with-early", "mean", False), ("with-early", "weighted", False),
                ("with-early", "rnn", False)]
        if args.reference:
            base_jobs.append(common | {"variant": "early fusion head eye lum, recommended config "
                                       "(--per-recording head eye, defaults)", "features": FEATURES,
                                       "difficulty": False, "folds": 0, "seed": s, "reference": True,
                                       "out": str(d / "reference")})
            sets["with-reference"] = [str(d / f"{f}-insample") for f in FEATURES] + [str(d / "reference")]
            sets["lum-reference"] = [str(d / "lum-insample"), str(d / "reference")]
            plan += [("with-reference", "mean", False), ("with-reference", "weighted", False),
                     ("with-reference", "rnn", False), ("lum-reference", "weighted", False),
                     ("lum-reference", "rnn", False)]
        if args.unimodal_difficulty:
            plan += [("diff-runs", "mean", False), ("diff-runs", "weighted", False),
                     ("diff-runs", "rnn", False)]
        for kind, method, diff in plan:
            inputs = {"in-sample": "head eye lum, in-sample train preds",
                      "out-of-fold": "head eye lum, out-of-fold train preds",
                      "diff-runs": "head+diff eye+diff lum+diff runs, in-sample",
                      "with-early": "head eye lum + early, in-sample",
                      "with-reference": "head eye lum + recommended early run, in-sample",
                      "lum-reference": "lum + recommended early run, in-sample"}[kind]
            name = f"late {method}{' + difficulty' if diff else ''} | {inputs}"
            fuse_jobs.append({"variant": name, "runs": sets[kind], "method": method,
                              "difficulty": diff, "seed": s, "data": args.data,
                              "out": str(d / f"fuse-{kind}-{method}{'-diff' if diff else ''}")})
    rows: list[dict] = []
    if args.table_only:
        rows = [json.loads(x) for x in args.out.read_text().splitlines() if x.strip()]
    else:
        with ProcessPoolExecutor(args.workers) as pool:
            for s in args.seeds:  # seed by seed, so an interrupted benchmark has whole seeds
                new = list(pool.map(_base, [j for j in base_jobs if j["seed"] == s]))
                new += list(pool.map(_fuse, [j for j in fuse_jobs if j["seed"] == s]))
                rows += new
                if args.out:
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    with open(args.out, "a") as f:
                        for r in new:
                            f.write(json.dumps(r) + "\n")
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    print("| variant | arousal ccc | valence ccc | arousal ccc_per_rec | valence ccc_per_rec "
          "| s per seed (train + folds + AE) |")
    print("|---|---|---|---|---|---|")
    for v in variants:
        rs = [r for r in rows if r["variant"] == v]
        cells = []
        for key in ("ccc", "ccc_per_recording"):
            for t in TARGETS:
                x = np.array([r["devel"][t][key] for r in rs])
                cells.append(f"{x.mean():.3f} ± {x.std():.3f}")
        cells = [cells[0], cells[1], cells[2], cells[3]]
        sec = np.mean([r["seconds"] for r in rs])
        extra = ""
        if rs[0].get("fold_seconds"):
            extra = f" (folds {np.mean([r['fold_seconds'] for r in rs]):.0f})"
        if rs[0].get("difficulty_seconds"):
            extra += f" (AE {np.mean([r['difficulty_seconds'] for r in rs]):.0f})"
        print(f"| {v} | {' | '.join(cells)} | {sec:.0f}{extra} |", flush=True)


if __name__ == "__main__":
    main()
