"""Hyper-parameter search on CEAP-360VR arousal (devel only), then a check across fresh seeds.

    python benchmarks/tune.py --data corpora/ceap --space examples/space.yaml --trials 40 \
        --out benchmarks/out/tune_arousal --confirm-seeds 1 2 3

1. ``emotrace.tune`` with Optuna (TPE) and ASHA on the local Ray instance (``--cpus`` trials at
   a time, one torch thread each); trials ranked by devel arousal CCC.
2. The best finished configuration and the core default (the space's ``base:`` alone) are
   retrained with ``--confirm-seeds`` (seeds the search did not use; one run per seed), and the
   devel arousal CCC is printed as mean ± std (population) over those seeds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np


def _one(job: tuple[str, dict, str]) -> dict:
    import torch

    import emotrace
    from emotrace.config import RunConfig

    data, cfg, target = job
    torch.set_num_threads(1)
    cfg = RunConfig.model_validate(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        m = emotrace.fit(data, out=Path(tmp) / "run", config=cfg)
    dev = m["devel"][target] if target in m["devel"] else m["devel"]
    return {"seed": cfg.train.seed, "ccc": dev["ccc"], "ccc_per_recording": dev["ccc_per_recording"],
            "seconds": m["train_seconds"], "best_epoch": m["best_epoch"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--space", default="examples/space.yaml")
    ap.add_argument("--target", default="arousal", help="the target that ranks the trials")
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--search", default="optuna")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--grace", type=int, default=2)
    ap.add_argument("--confirm-seeds", nargs="*", type=int, default=[1, 2, 3])
    ap.add_argument("--no-baseline", action="store_true", help="don't retrain the base config")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    import emotrace
    from emotrace.config import RunConfig, merge
    from emotrace.workflows.tune import Space

    search_dir = args.out / "search"
    if (search_dir / "results.json").exists():
        res = json.loads((search_dir / "results.json").read_text())
    else:
        res = emotrace.tune(args.data, space=args.space, out=search_dir, trials=args.trials,
                            search=args.search, cpus=args.cpus, grace=args.grace,
                            rank_by=[args.target])
    print(f"## search: {res['n_trials']} trials ({res['n_finished']} finished, {res['n_stopped']} "
          f"stopped by ASHA, {res['n_errors']} failed) in {res['seconds'] / 60:.1f} min")
    keys = sorted({k for r in res["trials"] for k in r["params"]})
    print("| rank | status | devel " + args.target + " ccc | " + " | ".join(keys) + " |")
    print("|---" * (3 + len(keys)) + "|")
    for r in res["trials"][:10]:
        score = "" if r["score"] is None else f"{r['score']:.3f}"
        vals = [f"{v:.3g}" if isinstance(v, float) else str(v)
                for v in (r["params"].get(k) for k in keys)]
        print(f"| {r['rank']} | {r['status']} | {score} | " + " | ".join(vals) + " |")
    if not res["best"] or not args.confirm_seeds:
        return
    best = RunConfig.load(search_dir / "best.yaml").model_dump(mode="json")
    base = RunConfig.from_dict(merge({"data": {}}, Space.load(args.space).base)).model_dump(mode="json")
    variants = {"found": best} if args.no_baseline else {"found": best, "base (core default)": base}
    jobs, names = [], []
    for name, cfg in variants.items():
        for s in args.confirm_seeds:
            c = merge(cfg, {"train": {"seed": s, "seeds": 1, "threads": 1}})
            jobs.append((args.data, c, args.target))
            names.append(name)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.cpus) as ex:
        outs = list(ex.map(_one, jobs))
    results: dict[str, list[dict]] = {}
    for n, o in zip(names, outs, strict=True):
        results.setdefault(n, []).append(o)
    print(f"\n## retrained with seeds {args.confirm_seeds} ({(time.perf_counter() - start) / 60:.1f} min)")
    print(f"| config | devel {args.target} ccc | ccc_per_recording | s per seed | best epoch |")
    print("|---|---|---|---|---|")
    for n, rs in results.items():
        c = np.array([r["ccc"] for r in rs])
        p = np.array([r["ccc_per_recording"] for r in rs])
        print(f"| {n} | {c.mean():.3f} ± {c.std():.3f} | {p.mean():.3f} ± {p.std():.3f} | "
              f"{np.mean([r['seconds'] for r in rs]):.0f} | "
              f"{np.mean([r['best_epoch'] for r in rs]):.0f} |")
    (args.out / "confirm.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
