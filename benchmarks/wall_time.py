"""Wall time of the commands a new user runs first, idle and beside busy work.

    python benchmarks/wall_time.py --data corpora/ceap [--busy 2] [--skip-idle] [--skip-busy]

Each command runs as a user runs it (`emotrace ... --quiet`, a fresh process). "Busy" means
``--busy`` CPU-bound processes (``python -c "while True: pass"``) run beside it for its whole
duration, as on a lab server or a laptop with other work. Prints a markdown table: command,
idle and busy wall time, their ratio, and the devel CCC of the kept seed (so a speed-up that
changed the result would show). Then the epoch time of the default model at 1 and 2 torch
threads in one process (what a second intra-op thread buys), and the plain command at
``--jobs 1`` and ``--jobs 2`` (what parallel seeds buy).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EMOTRACE = [sys.executable, "-m", "emotrace"]


def commands(data: str, out: Path) -> dict[str, list[str]]:
    base = ["train", "--data", data, "--features", "head", "eye", "lum"]
    return {
        "plain: train --target arousal (3 seeds)": [*base, "--target", "arousal",
                                                     "--out", str(out / "plain")],
        "recommended: --target arousal valence --per-recording head eye": [
            *base, "--target", "arousal", "valence", "--per-recording", "head", "eye",
            "--out", str(out / "recommended")],
        "demo": ["demo", "--out", str(out / "demo")],
    }


def timed(args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run([*EMOTRACE, *args, "--quiet"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def busy(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def devel(out: Path) -> str:
    m = out / "metrics.json"
    if not m.exists():
        return ""
    d = json.loads(m.read_text())["devel"]
    if "ccc" in d:
        return f"{d['ccc']:.4f}"
    return " / ".join(f"{t} {v['ccc']:.4f}" for t, v in d.items())


def epoch_seconds(data: str, threads: int, epochs: int = 4) -> float:
    """Seconds per epoch (devel evaluation included) of the default model, in this process."""
    import torch

    from emotrace.config import RunConfig
    from emotrace.data.muse import load_corpus
    from emotrace.data.standardise import Standardiser
    from emotrace.train.loop import fit_seed
    from emotrace.train.regression import Split, regression_task

    cfg = RunConfig.from_dict({"data": {"features": ["head", "eye", "lum"],
                                        "targets": ["arousal"]},
                               "train": {"epochs": epochs, "seeds": 1}})
    corpus = load_corpus(data, features=cfg.data.features, targets=cfg.data.targets)
    std = Standardiser.fit(corpus.partition("train"), cfg.data.features)

    def split(p: str) -> Split:
        recs = corpus.partition(p)
        return Split([r.id for r in recs], [std.transform(r, cfg.data.features) for r in recs],
                     [r.targets(cfg.data.targets) for r in recs])

    task, sched = regression_task(cfg, split("train"), split("devel"))
    torch.set_num_threads(threads)
    run = fit_seed(task, sched, 0)
    h = run["result"].history
    return (h[-1]["seconds"] - h[0]["seconds"]) / (len(h) - 1)  # the first epoch warms up


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--busy", type=int, default=2)
    ap.add_argument("--skip-idle", action="store_true")
    ap.add_argument("--skip-busy", action="store_true")
    args = ap.parse_args()
    print(f"# {os.cpu_count()} cores, load average before: {os.getloadavg()}")
    print("| command | idle wall (s) | busy wall (s) | busy / idle | devel CCC (idle run) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, cmd in commands(args.data, Path(tmp) / "idle").items():
            idle = timed(cmd) if not args.skip_idle else float("nan")
            score = devel(Path(cmd[cmd.index("--out") + 1]))
            loaded = float("nan")
            if not args.skip_busy:
                procs = busy(args.busy)
                try:
                    busy_cmd = [c.replace(str(Path(tmp) / "idle"), str(Path(tmp) / "busy"))
                                for c in cmd]
                    loaded = timed(busy_cmd)
                finally:
                    for p in procs:
                        p.kill()
            print(f"| {name} | {idle:.1f} | {loaded:.1f} | {loaded / idle:.2f} | {score} |",
                  flush=True)
        print(f"\n# load average after: {os.getloadavg()}")
        print("\n| default model, one process | s/epoch |\n|---|---|")
        for threads in (1, 2):
            print(f"| {threads} torch thread(s) | {epoch_seconds(args.data, threads):.2f} |",
                  flush=True)
        print("\n| plain command | wall (s) |\n|---|---|")
        plain = commands(args.data, Path(tmp) / "jobs")["plain: train --target arousal (3 seeds)"]
        for jobs in (1, 2, 3):
            cmd = [c + f"-{jobs}" if c.endswith("plain") else c for c in plain]
            print(f"| --jobs {jobs} | {timed([*cmd, '--jobs', str(jobs)]):.1f} |", flush=True)


if __name__ == "__main__":
    main()
