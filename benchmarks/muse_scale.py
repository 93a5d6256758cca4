"""A corpus of MuSe-CaR's size and shape: cold parse, cached open, training memory and speed,
evaluation and prediction memory.

    python benchmarks/muse_scale.py generate --out /tmp/musecar --fraction 1.0
    python benchmarks/muse_scale.py load --data /tmp/musecar          # cold parse + cached open
    python benchmarks/muse_scale.py train --data /tmp/musecar --out /tmp/musecar_run
    python benchmarks/muse_scale.py evaluate --data /tmp/musecar --run /tmp/musecar_run
    python benchmarks/muse_scale.py probe --data /tmp/musecar --out /tmp/musecar_probe  # progress
    python benchmarks/muse_scale.py throughput --data /tmp/musecar10 /tmp/musecar  # side by side
    python benchmarks/muse_scale.py batches --data /tmp/musecar10     # cutting batches alone

The corpus (never in the repository): 291 recordings (``--fraction`` of them) whose lengths
spread from 2 to 25 minutes (35 h in all at full size) at 4 Hz, a 4096-d feature set ``deep``
and an 88-d ``egemaps``, both a random linear map of the arousal and valence traces plus noise,
labels ``arousal`` and ``valence``, and partitions by subject (about 60 / 20 / 20 % of the
recordings, 3-5 recordings per subject). ``train``, ``evaluate`` and ``predict`` run the real
command line in a child process under ``/usr/bin/time -v`` and report its peak resident memory
(VmHWM, which counts mapped file pages while the process holds them) and wall time; every line
also gives the load average, since the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RATE_HZ = 4
STEP_MS = 1000 // RATE_HZ


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def lengths(n: int, *, seed: int = 0, total_hours: float = 35.0, fraction: float = 1.0
            ) -> list[int]:
    """Recording lengths in steps: 2-25 minutes, skewed to the short end (as MuSe-CaR's
    videos), scaled so the full 291 sum to ``total_hours``."""
    rng = np.random.default_rng(seed)
    minutes = 2 + 23 * rng.beta(1.3, 2.6, size=n)
    minutes *= total_hours * 60 / minutes.sum()
    minutes = np.clip(minutes, 2, 25)
    steps = np.round(minutes * 60 * RATE_HZ).astype(int)
    k = max(3, round(n * fraction))
    return steps[:k].tolist()


def generate(out: Path, *, fraction: float, seed: int = 0) -> None:
    import polars as pl

    from emotrace.data.csvio import write_labels
    from emotrace.data.muse import Entry, write_partition

    steps = lengths(291, seed=seed, fraction=fraction)
    rng = np.random.default_rng(seed + 1)
    maps = {"deep": rng.standard_normal((2, 4096)).astype(np.float32) / 2,
            "egemaps": rng.standard_normal((2, 88)).astype(np.float32)}
    entries, subject, left = [], 0, 0
    n = len(steps)
    start = time.perf_counter()
    size = 0
    for i, t in enumerate(steps):
        if left == 0:  # a new subject: all its recordings in one partition
            subject, left = subject + 1, int(rng.integers(3, 6))
            share = i / n
            part = "train" if share < 0.6 else "devel" if share < 0.8 else "test"
        left -= 1
        rid = f"{i:03d}"
        entries.append(Entry(rid, part, f"s{subject:03d}"))
        ts = np.arange(t, dtype=np.int64) * STEP_MS
        # smooth latent arousal and valence traces in [-1, 1]
        walk = np.cumsum(rng.standard_normal((t, 2)).astype(np.float32) * 0.05, axis=0)
        av = np.tanh(walk - walk.mean(0)).astype(np.float32)
        for name, w in maps.items():
            x = av @ w + rng.standard_normal((t, w.shape[1]), dtype=np.float32)
            frame = pl.DataFrame(x, schema=[f"{name}_{j}" for j in range(w.shape[1])])
            frame = frame.insert_column(0, pl.Series("segment_id", np.zeros(t, np.int64)))
            frame = frame.insert_column(0, pl.Series("timestamp", ts))
            path = out / "feature_segments" / name / f"{rid}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.write_csv(path, float_precision=6)
            size += path.stat().st_size
        for k, target in enumerate(("arousal", "valence")):
            write_labels(out / "label_segments" / target / f"{rid}.csv", ts, av[:, k])
        if (i + 1) % 10 == 0 or i + 1 == n:
            print(f"  {i + 1}/{n} recordings, {size / 1e9:.1f} GB, "
                  f"{time.perf_counter() - start:.0f} s, {_load()}", flush=True)
    write_partition(out, entries)
    hours = sum(steps) / RATE_HZ / 3600
    print(json.dumps({"recordings": n, "hours": round(hours, 2), "steps": int(sum(steps)),
                      "feature_csv_gb": round(size / 1e9, 2),
                      "float32_gb": round(sum(steps) * (4096 + 88) * 4 / 1e9, 2),
                      "partitions": {p: sum(e.partition == p for e in entries)
                                     for p in ("train", "devel", "test")},
                      "seconds": round(time.perf_counter() - start, 1)}))


def _csv_bytes(root: Path, sets: list[str]) -> int:
    return sum(p.stat().st_size for s in sets for p in (root / "feature_segments" / s).glob("*.csv"))


def load(root: Path) -> None:
    """Cold parse-and-cache (cache folder removed first), then the cached open."""
    from emotrace.data.cache import CACHE_DIR
    from emotrace.data.muse import load_corpus

    sets = ["deep", "egemaps"]
    shutil.rmtree(root / CACHE_DIR, ignore_errors=True)
    size = _csv_bytes(root, sets)
    print(f"before cold parse: {_load()}", flush=True)
    t = time.perf_counter()
    c = load_corpus(root, features=sets, targets=["arousal", "valence"])
    cold = time.perf_counter() - t
    print(f"after cold parse: {_load()}", flush=True)
    del c
    opens = []
    for _ in range(3):
        t = time.perf_counter()
        c = load_corpus(root, features=sets, targets=["arousal", "valence"])
        opens.append(time.perf_counter() - t)
    steps = sum(len(r) for r in c)
    print(json.dumps({"recordings": len(c), "steps": steps, "csv_gb": round(size / 1e9, 2),
                      "cold_parse_and_cache_s": round(cold, 1),
                      "cold_mb_per_s": round(size / 1e6 / cold),
                      "cached_open_s": [round(x, 2) for x in opens],
                      "peak_rss_gib_this_process": round(_self_hwm() / 2**30, 2),
                      "cores": os.cpu_count(), "after": _load()}))


def _self_hwm() -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) * 1024


def _timed(cmd: list[str]) -> dict:
    """Run ``cmd`` under /usr/bin/time -v: wall seconds, peak RSS, exit code."""
    before = _load()
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    if p.returncode != 0:
        print(p.stderr[-3000:], file=sys.stderr)
    return {"cmd": " ".join(cmd[2:]), "code": p.returncode, "wall_s": round(wall, 1),
            "peak_rss_gib": round(int(rss.group(1)) / 2**20, 2) if rss else None,
            "before": before, "after": _load(), "stdout": p.stdout[-500:]}


def _emotrace() -> list[str]:
    return [sys.executable, "-m", "emotrace"]


def train(root: Path, out: Path, *, epochs: int, extra: list[str]) -> None:
    shutil.rmtree(out, ignore_errors=True)
    r = _timed([*_emotrace(), "train", "--data", str(root), "--features", "deep", "egemaps",
                "--target", "arousal", "valence", "--out", str(out), "--epochs", str(epochs),
                "--seeds", "1", "--quiet", "--json", *extra])
    r.pop("stdout")
    if r["code"] == 0:
        m = json.loads((out / "metrics.json").read_text())
        from emotrace.data.muse import read_partition

        train_ids = {e.id for e in read_partition(root) if e.partition == "train"}
        steps = sum(sum(1 for _ in open(root / "label_segments" / "arousal" / f"{i}.csv")) - 1
                    for i in train_ids)
        first = m["seeds"][0]["history"][0] if "history" in m["seeds"][0] else None
        r.update({"train_steps": steps, "train_seconds": m.get("train_seconds"),
                  "epoch_seconds": first["seconds"] if first else None,
                  "steps_per_s": round(steps * epochs / m["train_seconds"], 1),
                  "devel_ccc": m.get("devel")})
    print(json.dumps(r))


def _memory() -> dict:
    """This process's resident memory now and at its peak, anonymous and file-backed (GiB)."""
    text = Path("/proc/self/status").read_text()

    def kb(name: str) -> float:
        return round(int(re.search(rf"{name}:\s+(\d+) kB", text).group(1)) / 2**20, 2)

    return {"hwm": kb("VmHWM"), "rss": kb("VmRSS"), "anon": kb("RssAnon"), "file": kb("RssFile")}


def probe(root: Path, out: Path, *, epochs: int) -> None:
    """The same training as ``train``, in this process through the API, printing progress,
    throughput and memory every 30 s, so a partial epoch already gives numbers."""
    import emotrace
    from emotrace.config import DataConfig, RunConfig, TrainConfig
    from emotrace.data.muse import load_corpus
    from emotrace.train.loop import BatchEvent, EpochEvent

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    corpus = load_corpus(root, features=["deep", "egemaps"], targets=["arousal", "valence"])
    print(json.dumps({"loaded_s": round(time.perf_counter() - t0, 1), **_memory(),
                      "at": _load()}), flush=True)
    config = RunConfig(data=DataConfig(features=["deep", "egemaps"], targets=["arousal", "valence"]),
                       train=TrainConfig(epochs=epochs, seeds=1))
    steps = sum(len(r) for r in corpus.partition("train"))
    last = [0.0]
    start = [None]

    def on_event(e) -> None:
        now = time.perf_counter()
        if isinstance(e, BatchEvent):
            done = (e.epoch - 1) * e.total + e.done  # windows since the start of training
            if start[0] is None:
                start[0] = (now, done)
            if now - last[0] >= 30:
                last[0] = now
                t, d = start[0]
                rate = (done - d) / max(now - t, 1e-9)  # windows per second (devel scoring too)
                print(json.dumps({"epoch": e.epoch, "windows": e.done, "of": e.total,
                                  "windows_per_s": round(rate, 2),
                                  "steps_per_s": round(rate * steps / e.total, 1),
                                  "elapsed_s": round(now - t0, 0), **_memory(), "at": _load()}),
                      flush=True)
        elif isinstance(e, EpochEvent):
            print(json.dumps({"epoch_done": e.epoch, "seconds": round(e.seconds, 1),
                              "steps_per_s_incl_devel": round(steps / e.seconds, 1),
                              "devel_score": e.devel_score, **_memory(), "at": _load()}),
                  flush=True)

    m = emotrace.fit(root, out=out, config=config, corpus=corpus, on_event=on_event)
    print(json.dumps({"done_s": round(time.perf_counter() - t0, 1), "train_steps": steps,
                      "train_seconds": round(m["train_seconds"], 1), "devel": m["devel"],
                      **_memory(), "at": _load()}), flush=True)


def throughput(roots: list[Path], *, batches: int, seed: int = 0) -> None:
    """Training batches of the default model, cut from each corpus in turn in this one process
    (so both see the same machine load): wall and CPU seconds per batch and recording steps per
    second. The standardiser is fitted on the first 5 train recordings (its statistics do not
    change the cost of a batch)."""
    import torch

    from emotrace.config import DataConfig, RunConfig
    from emotrace.data.inputs import Inputs
    from emotrace.data.muse import load_corpus
    from emotrace.data.standardise import Standardiser
    from emotrace.data.windows import Windows
    from emotrace.train.loop import _start_seed
    from emotrace.train.regression import Split, feature_groups, regression_task

    torch.set_num_threads(1)  # as every training job
    sets = ["deep", "egemaps"]
    config = RunConfig(data=DataConfig(features=sets, targets=["arousal", "valence"]))
    runs = []
    for root in roots:
        corpus = load_corpus(root, features=sets, targets=["arousal", "valence"])
        train = corpus.partition("train")
        std = Standardiser.fit(train[:5], sets)
        split = Split([r.id for r in train], Inputs(train, std, sets),
                      [r.targets(["arousal", "valence"]) for r in train],
                      feature_groups([len(std.mean[f]) for f in sets]))
        task, sched = regression_task(config, split, Split([], [], []))
        model, opt, _, gen, _ = _start_seed(task, sched, seed, None)
        order = torch.randperm(task.n_items, generator=gen)
        items = Windows(split.xs, split.ys, win=0, hop=1, max_len=config.data.max_len).items
        runs.append((root, task, model, opt, order, items, train))
        print(json.dumps({"corpus": str(root), "recordings": len(train), "windows": task.n_items,
                          "steps": int(sum(len(r) for r in train)), "at": _load()}), flush=True)
    totals = {str(r): [0.0, 0.0, 0] for r in roots}
    for b in range(batches):
        for root, task, model, opt, order, items, recs in runs:
            idx = order[b * 64:(b + 1) * 64]
            w, c = time.perf_counter(), time.process_time()
            loss = task.loss(model, idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            wall, cpu = time.perf_counter() - w, time.process_time() - c
            steps = sum(min(e, len(recs[i])) - st for i, st, e in
                        (items[k] for k in idx.tolist()))
            t = totals[str(root)]
            t[0] += wall
            t[1] += cpu
            t[2] += steps
            print(json.dumps({"corpus": str(root), "batch": b, "steps": steps,
                              "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), **_memory(),
                              "at": _load()}), flush=True)
    print(json.dumps({"totals": {k: {"steps": v[2], "wall_s": round(v[0], 1),
                                     "cpu_s": round(v[1], 1),
                                     "steps_per_wall_s": round(v[2] / v[0], 1),
                                     "steps_per_cpu_s": round(v[2] / v[1], 1)}
                                 for k, v in totals.items()}}), flush=True)


def batches(root: Path, *, n: int = 4) -> None:
    """Cutting training batches alone (no model): batches 0 and 1 of a shuffled order, then the
    same two again (their pages now in the page cache); CPU and wall seconds each."""
    import torch

    from emotrace.data.inputs import Inputs
    from emotrace.data.muse import load_corpus
    from emotrace.data.standardise import Standardiser
    from emotrace.data.windows import Windows

    sets = ["deep", "egemaps"]
    corpus = load_corpus(root, features=sets, targets=["arousal", "valence"])
    train = corpus.partition("train")
    xs = Inputs(train, Standardiser.fit(train[:2], sets), sets)
    windows = Windows(xs, [r.targets(["arousal"]) for r in train], win=0, hop=1, max_len=500)
    order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(7))
    for b in range(n):
        idx = order[(b % 2) * 64:(b % 2 + 1) * 64]
        w, c = time.perf_counter(), time.process_time()
        windows.batch(idx)
        print(json.dumps({"batch": b % 2, "again": b >= 2, "wall_s": round(time.perf_counter() - w, 2),
                          "cpu_s": round(time.process_time() - c, 2), "at": _load()}), flush=True)


def evaluate(root: Path, run: Path) -> None:
    for cmd in (["evaluate", "--run", str(run), "--data", str(root), "--partition", "devel"],
                ["predict", "--run", str(run), "--data", str(root), "--partition", "devel",
                 "--out", str(run.parent / (run.name + "_pred")), "--quiet"]):
        r = _timed([*_emotrace(), *cmd])
        print(json.dumps(r))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--fraction", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=0)
    ld = sub.add_parser("load")
    ld.add_argument("--data", type=Path, required=True)
    t = sub.add_parser("train")
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("extra", nargs="*", help="more train flags (after --)")
    pr = sub.add_parser("probe")
    pr.add_argument("--data", type=Path, required=True)
    pr.add_argument("--out", type=Path, required=True)
    pr.add_argument("--epochs", type=int, default=1)
    tp = sub.add_parser("throughput")
    tp.add_argument("--data", type=Path, nargs="+", required=True)
    tp.add_argument("--batches", type=int, default=4)
    bt = sub.add_parser("batches")
    bt.add_argument("--data", type=Path, required=True)
    e = sub.add_parser("evaluate")
    e.add_argument("--data", type=Path, required=True)
    e.add_argument("--run", type=Path, required=True)
    args = ap.parse_args()
    print(f"{args.what}: {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, {_load()}",
          flush=True)
    if args.what == "generate":
        generate(args.out, fraction=args.fraction, seed=args.seed)
    elif args.what == "load":
        load(args.data)
    elif args.what == "train":
        train(args.data, args.out, epochs=args.epochs, extra=args.extra)
    elif args.what == "throughput":
        throughput(args.data, batches=args.batches)
    elif args.what == "batches":
        batches(args.data)
    elif args.what == "probe":
        probe(args.data, args.out, epochs=args.epochs)
    else:
        evaluate(args.data, args.run)


if __name__ == "__main__":
    main()
