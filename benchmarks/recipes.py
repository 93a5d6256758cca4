"""Run the shipped recipes on one corpus and print the table of docs/recipes.md.

For each recipe: ``emotrace run NAME --data D [--features ...] [--target ...] --out OUT/NAME
--set train.seeds=3 [--set ...]``, timed; a recipe already finished in ``OUT/NAME`` is not run
again (its first wall time is kept in ``OUT/NAME/benchmark.json``). Then every
``OUT/NAME/results.json`` is read and one markdown row per recipe and target is printed: the
system's output per target (the last step that scores it on devel: the fusion of a pipeline, the
run of a one-run recipe, the personalised models of the MuSe 2023 recipe), its devel CCC (AUROC for binary
targets) as mean ± std over the step's seeds, and the wall time of the whole recipe.

    python benchmarks/recipes.py --data corpora/ceap --features head eye lum --target arousal \\
        --out benchmarks/out/recipes                       # every recipe that fits the corpus
    python benchmarks/recipes.py --data corpora/sp --recipes stress-predict-fused-2l \\
        --out benchmarks/out/recipes-sp                    # the recipe's own features and target

Recipes whose default feature sets are missing from the corpus are skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from emotrace import recipes
from emotrace.data.muse import FEATURES
from emotrace.errors import EmotraceError


def _fits(name: str, data: Path, features: list[str] | None) -> str | None:
    """Why ``name`` cannot run on ``data`` (None when it can)."""
    r = recipes.load(name)
    need = features or r.meta.defaults.features
    if not need:
        return "no --features given and the recipe has no defaults"
    missing = [f for f in need if not (data / FEATURES / f).is_dir()]
    return f"feature sets {missing} not in {data}" if missing else None


def _applicable(name: str, items: list[str]) -> list[str]:
    """The --set items that name an option of this recipe (e.g. personal.seeds only for the
    personalisation recipe)."""
    source, raw = recipes.read(name)
    keep = []
    for item in items:
        try:
            recipes.apply_set(raw, item, source)
            keep.append(item)
        except EmotraceError:
            print(f"{name}: --set {item} does not apply, left out", flush=True)
    return keep


def run_one(name: str, args: argparse.Namespace) -> float:
    """Run (or reuse) one recipe; its wall time in seconds."""
    out = args.out / name
    stamp = out / "benchmark.json"
    if (out / "results.json").is_file() and stamp.is_file():
        return float(json.loads(stamp.read_text())["wall_seconds"])
    cmd = [sys.executable, "-m", "emotrace", "run", name, "--data", str(args.data),
           "--out", str(out), "--quiet", "--set", f"train.seeds={args.seeds}",
           *_applicable(name, args.set)]
    if args.features:
        cmd += ["--features", *args.features]
    if args.target:
        cmd += ["--target", *args.target]
    if args.jobs:
        cmd += ["--jobs", str(args.jobs)]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - start
    stamp.write_text(json.dumps({"wall_seconds": seconds, "command": cmd}) + "\n")
    return seconds


def rows(name: str, results: dict, seconds: float) -> list[str]:
    """One row per target: the last step that scores it on devel (the system's output)."""
    r = recipes.load(name)
    last: dict[str, tuple[dict, dict]] = {}
    for step in results["steps"]:
        for target, v in step["targets"].items():
            if v.get("devel") and ":" not in target:
                last[target] = (step, v)
    out = []
    for target, (step, v) in last.items():
        seeds = v.get("devel_seeds") or [v["devel"]["ccc"]]
        score = f"{np.mean(seeds):.3f} ± {np.std(seeds):.3f} ({len(seeds)})"
        if "auroc" in v["devel"]:
            score += f", AUROC {v['devel']['auroc']:.3f} (kept seed)"
        if step["kind"] == "personalise":
            score = f"{v['devel']['ccc']:.3f} personalised (general {v['general']:.3f})"
        out.append(f"| {name} ({step['step']}) | {r.meta.cite} | "
                   f"{'yes' if r.meta.substitutes else 'no'} | {target} | {score} | "
                   f"{seconds / 60:.1f} min |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/recipes"))
    ap.add_argument("--recipes", nargs="+", default=None, help="default: every shipped recipe")
    ap.add_argument("--features", nargs="+", default=None)
    ap.add_argument("--target", nargs="+", default=None)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=0)
    ap.add_argument("--set", nargs="+", default=[], help="more --set KEY=VALUE items")
    args = ap.parse_args()
    table = ["| recipe (step) | paper | substituted | target | devel CCC mean ± std (seeds) | "
             "wall time |", "|---|---|---|---|---|---|"]
    for name in args.recipes or recipes.names():
        why = _fits(name, args.data, args.features)
        if why and args.recipes is None:
            print(f"skipped {name}: {why}", flush=True)
            continue
        seconds = run_one(name, args)
        results = json.loads((args.out / name / "results.json").read_text())
        table += rows(name, results, seconds)
    print("\n".join(table))


if __name__ == "__main__":
    main()
