"""Sweep configurations on CEAP-360VR devel (the tuning partition; test is never used).

    python benchmarks/ceap_sweep.py --data corpora/ceap --target arousal --seeds 0 1 2 \
        --set model.hidden=32,64 train.loss=ccc,ccc-batch --out benchmarks/out/sweep_arousal.jsonl

Every combination of the ``--set`` values is trained once per seed (``train.seeds=1`` with
``train.seed=s``), two runs at a time with one torch thread each. Prints a markdown table of
mean ± std (population) over seeds of the devel ``ccc`` and ``ccc_per_recording``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml


def _one(job: tuple[str, dict]) -> dict:
    import emotrace
    from emotrace.config import RunConfig

    data, cfg = job
    cfg = RunConfig.model_validate(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        m = emotrace.fit(data, out=Path(tmp) / "run", config=cfg)
    return {"config": cfg.model_dump(mode="json"), "devel": m["devel"],
            "seconds": m["train_seconds"], "epochs": m["epochs"], "best_epoch": m["best_epoch"]}


def _set(d: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--target", nargs="+", required=True)
    ap.add_argument("--features", nargs="+", default=["head", "eye", "lum"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--set", nargs="*", default=[],
                    help="key=v1,v2 (YAML values; commas inside [...] belong to a list)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    axes = [(k, [yaml.safe_load(v) for v in re.split(r",(?![^\[]*\])", vs)])
            for k, vs in (s.split("=", 1) for s in args.set)]
    combos = list(itertools.product(*[vals for _, vals in axes])) or [()]
    jobs = []
    for combo in combos:
        for seed in args.seeds:
            cfg: dict = {"data": {"features": args.features, "targets": args.target},
                         "train": {"seeds": 1, "seed": seed, "threads": 1}}
            for (k, _), v in zip(axes, combo, strict=True):
                _set(cfg, k, v)
            jobs.append((args.data, cfg))
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(_one, jobs))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
    per = len(args.seeds)
    print("| configuration | target | ccc | ccc_per_recording | s per seed | epochs |")
    print("|---|---|---|---|---|---|")
    for i, combo in enumerate(combos):
        rs = results[i * per : (i + 1) * per]
        name = " ".join(f"{k}={v}" for (k, _), v in zip(axes, combo, strict=True)) or "defaults"
        for t in args.target:
            dev = [r["devel"][t] if len(args.target) > 1 else r["devel"] for r in rs]
            c = np.array([d["ccc"] for d in dev])
            cr = np.array([d["ccc_per_recording"] for d in dev])
            sec = np.mean([r["seconds"] for r in rs])
            ep = np.mean([r["epochs"] for r in rs])
            print(f"| {name} | {t} | {c.mean():.3f} ± {c.std():.3f} | {cr.mean():.3f} ± "
                  f"{cr.std():.3f} | {sec:.0f} | {ep:.0f} |", flush=True)

if __name__ == "__main__":
    main()
