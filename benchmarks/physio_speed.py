"""Speed of the physiological extractors, in x real time (recording seconds per wall-clock second).

Two tables:

1. Each feature set on real Empatica E4 recordings of Stress-Predict (BVP 64 Hz, EDA/TEMP 4 Hz,
   ACC 32 Hz, ~55 min each), at the 2 Hz label rate, timed end to end in one process (reading the
   CSV files, NeuroKit2 processing, the windowed features): mean ± std over the subjects.
2. ``hrv`` on exactly one hour of 64 Hz BVP (S05's BVP repeated to 3600 s), the issue's budget
   being 30 s.

Usage::

    python benchmarks/physio_speed.py --source ../shared/data/stress-predict --subjects 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

SETS = ("hrv", "eda", "temp", "acc", "bio")


def timed(ex, folder: Path, rate: float = 2.0) -> tuple[float, float]:
    start = time.perf_counter()
    duration = ex.duration(folder)
    ts = np.round(np.arange(0, duration, 1 / rate) * 1000).astype(np.int64)
    ex.extract(folder, ts)
    return duration, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=Path("../shared/data/stress-predict"))
    ap.add_argument("--subjects", type=int, default=5)
    args = ap.parse_args()
    from emotrace.features import physio

    raw = args.source / "Raw_data"
    folders = sorted(p for p in raw.iterdir() if p.is_dir())[: args.subjects]
    for fs in SETS:  # warm-up: imports and NeuroKit2's first calls
        physio.build(fs).extract(folders[0], np.arange(0, 10_000, 500))
    print(f"| feature set | columns | x real time (mean ± std over {len(folders)} subjects) "
          f"| seconds per hour of signal |")
    print("|---|---|---|---|")
    for fs in SETS:
        ex = physio.build(fs)
        speeds = []
        for folder in folders:
            duration, seconds = timed(ex, folder)
            speeds.append(duration / seconds)
        cols = len(ex.extract(folders[0], np.arange(0, 10_000, 500))[1])
        print(f"| {fs} | {cols} | {np.mean(speeds):.0f} ± {np.std(speeds):.0f} "
              f"| {3600 / np.mean(speeds):.2f} |", flush=True)

    s05 = raw / "S05"
    bvp = physio.read_signal(s05 / "BVP.csv")
    x = np.resize(bvp.values[:, 0], 3600 * 64)
    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(tmp) / "hour"
        rec.mkdir()
        lines = [f"{bvp.start:.6f}", "64.000000"] + [f"{v:.2f}" for v in x]
        (rec / "BVP.csv").write_text("\n".join(lines) + "\n")
        runs = [timed(physio.build("hrv"), rec)[1] for _ in range(3)]
    print(f"\nhrv on one hour of 64 Hz BVP (230 400 samples) at 2 Hz: {np.mean(runs):.2f} ± "
          f"{np.std(runs):.2f} s over 3 runs (budget 30 s)")


if __name__ == "__main__":
    main()
