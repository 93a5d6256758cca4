"""Load time of an Ulm-TSST-sized corpus: 69 recordings x ~600 steps, one 4096-d feature set.

    python benchmarks/load_time.py [--dims 4096] [--recordings 69] [--steps 600] [--root DIR]

Writes the corpus to a temporary folder (or to ``--root``, kept and reused when it exists, so
two versions of emotrace can be timed on the same files), then times three loads: parsing the
CSVs without the cache, the first load with the cache (parse + write the binary copy), and a
cached load. Each line gives the load average, since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from emotrace.data.csvio import write_features, write_labels
from emotrace.data.muse import Entry, load_corpus, write_partition


def make_corpus(root: Path, *, recordings: int, steps: int, dims: int, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    entries = []
    for i in range(recordings):
        t = steps + int(rng.integers(-50, 51))
        ts = np.arange(t) * 500
        write_features(root / "feature_segments" / "deep" / f"{i}.csv", ts,
                       rng.standard_normal((t, dims)).astype(np.float32))
        write_labels(root / "label_segments" / "arousal" / f"{i}.csv", ts, rng.standard_normal(t))
        part = "train" if i < 41 else "devel" if i < 55 else "test"
        entries.append(Entry(str(i), part, f"s{i}"))
    write_partition(root, entries)
    return sum((root / "feature_segments" / "deep" / f"{i}.csv").stat().st_size
               for i in range(recordings))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dims", type=int, default=4096)
    ap.add_argument("--recordings", type=int, default=69)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--root", type=Path, help="keep the corpus here (reused when it exists)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp)
        if (root / "metadata" / "partition.csv").exists():
            size = sum(p.stat().st_size for p in (root / "feature_segments" / "deep").glob("*.csv"))
        else:
            size = make_corpus(root, recordings=args.recordings, steps=args.steps, dims=args.dims)
        shutil.rmtree(root / ".emotrace-cache", ignore_errors=True)
        print(f"corpus: {args.recordings} recordings x ~{args.steps} steps x {args.dims} dims, "
              f"{size / 1e6:.0f} MB of feature CSV; {os.cpu_count()} cores, {platform.processor()}")
        t = time.perf_counter()
        c = load_corpus(root, cache=False)
        parse = time.perf_counter() - t
        t = time.perf_counter()
        load_corpus(root)
        first = time.perf_counter() - t
        t = time.perf_counter()
        c = load_corpus(root)
        cached = time.perf_counter() - t
        steps = sum(len(r) for r in c)
        load = "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"| parse CSV, no cache | {parse:.2f} s | {size / 1e6 / parse:.0f} MB/s | {load} |")
        print(f"| first load, writing the cache | {first:.2f} s | |")
        print(f"| cached load | {cached:.2f} s | {steps} steps |")


if __name__ == "__main__":
    main()
