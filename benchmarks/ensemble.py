"""Seed ensembles of the recommended CEAP-360VR run, against its single seeds (devel).

    python benchmarks/ensemble.py --data corpora/ceap --seeds 0 1 2 3 4 5 6 7 8 --size 3 \
        --workdir runs/ensemble --out benchmarks/out/ensemble.jsonl

Every run is the recommended command of docs/benchmarks.md (``--features head eye lum --target
arousal valence --per-recording head eye``, all defaults) with one seed (``train.seeds=1,
train.seed=s``). The seeds are cut into disjoint groups of ``--size`` (0-2, 3-5, 6-8, ...); each
group is fused with ``emotrace.fuse`` (``mean``: the plain mean of its members' predictions, and
``weighted``: convex weights fitted on train predictions). The table compares

- the single runs: mean ± std over all seeds;
- the ensembles: mean ± std over the groups (each group an independent draw of ``--size`` seeds).

Runs go ``--workers`` at a time, one torch thread each; finished runs in ``--workdir`` are reused.
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


def _train(job: dict) -> dict:
    import torch

    import emotrace
    from emotrace.config import DataConfig, RunConfig, TrainConfig

    torch.set_num_threads(1)
    out = Path(job["out"])
    if not (out / "metrics.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        cfg = RunConfig(data=DataConfig(features=FEATURES, targets=TARGETS, per_recording=["head", "eye"]),
                        train=TrainConfig(seeds=1, seed=job["seed"], threads=1))
        emotrace.fit(job["data"], out=out, config=cfg)
    m = json.loads((out / "metrics.json").read_text())
    return {"variant": "single run", "seed": job["seed"], "devel": m["devel"],
            "seconds": m["wall_seconds"], "epochs": m["epochs"]}


def _fuse(job: dict) -> dict:
    import torch

    import emotrace

    torch.set_num_threads(1)
    out = Path(job["out"])
    if not (out / "metrics.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        emotrace.fuse(job["runs"], data=job["data"], out=out, method=job["method"])
    m = json.loads((out / "metrics.json").read_text())
    return {"variant": f"ensemble of {len(job['runs'])} seeds, {job['method']}", "seed": job["group"],
            "devel": m["devel"], "seconds": m["wall_seconds"], "weights": m.get("weights")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(9)))
    ap.add_argument("--size", type=int, default=3, help="seeds per ensemble")
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, help="JSON lines of every run and ensemble")
    args = ap.parse_args()
    if len(args.seeds) % args.size:
        ap.error(f"--seeds: {len(args.seeds)} seeds do not split into groups of --size {args.size}")
    runs = {s: str(args.workdir / f"seed{s}") for s in args.seeds}
    groups = [args.seeds[i:i + args.size] for i in range(0, len(args.seeds), args.size)]
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(_train, [{"data": args.data, "seed": s, "out": o} for s, o in runs.items()]))
        rows += list(pool.map(_fuse, [
            {"data": args.data, "group": g, "method": method, "runs": [runs[s] for s in group],
             "out": str(args.workdir / f"{method}-{'-'.join(map(str, group))}")}
            for method in ("mean", "weighted") for g, group in enumerate(groups)]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print("| variant | n | arousal ccc | valence ccc | arousal ccc_per_recording | "
          "valence ccc_per_recording | s each |")
    print("|---|---|---|---|---|---|---|")
    for v in dict.fromkeys(r["variant"] for r in rows):
        rs = [r for r in rows if r["variant"] == v]
        cells = [f"{np.mean(x):.3f} ± {np.std(x):.3f}" for key in ("ccc", "ccc_per_recording")
                 for x in ([r["devel"][t][key] for r in rs] for t in TARGETS)]
        print(f"| {v} | {len(rs)} | {' | '.join(cells)} | {np.mean([r['seconds'] for r in rs]):.0f} |")
    for r in rows:
        print(json.dumps({k: r[k] for k in ("variant", "seed")} |
                         {t: round(r["devel"][t]["ccc"], 4) for t in TARGETS}))


if __name__ == "__main__":
    main()
