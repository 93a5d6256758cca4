"""Training speed on CEAP-360VR arousal, and how far the LSTM step is from the machine's GEMM.

    python benchmarks/speed.py --data corpora/ceap [--seed 0]

1. Matrix-multiply throughput of this machine (torch.mm, float32, all threads): a large square
   GEMM, and GEMMs of the shapes an LSTM step actually runs (batch x hidden times hidden x 4*hidden).
2. One training step (forward + backward + Adam) of the MuSe 2021 baseline LSTM (4 layers x 64,
   window 100, batch 1024, 12 input dims), with its FLOPs counted analytically; the ratio to (1).
3. Full training runs on CEAP arousal: the baseline recipe (4-layer LSTM, window 100, hop 25,
   batch 1024, lr 0.002, per-window CCC loss, its 73 epochs) and emotrace's default, one seed
   each: seconds per epoch (including the devel evaluation), recording steps per second, and
   time until devel CCC first reaches 0.445 (the baseline's devel result in shared/data).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

import emotrace
from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from emotrace.models import build_model
from emotrace.train.losses import ccc_loss

TARGET_CCC = 0.445


def gemm_gflops(m: int, k: int, n: int, *, repeat: int = 20) -> float:
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(10):
            a @ b
        best = min(best, (time.perf_counter() - t) / 10)
    return 2 * m * k * n / best / 1e9


def lstm_step(*, batch: int = 1024, win: int = 100, d_in: int = 12, hidden: int = 64,
              layers: int = 4, repeat: int = 5) -> tuple[float, float]:
    """Seconds per training step and its FLOPs (LSTM matmuls only, fwd + 2x for bwd)."""
    cfg = ModelConfig(name="rnn", cell="lstm", hidden=hidden, layers=layers, bidirectional=False)
    model = build_model(cfg, d_in, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(batch, win, d_in), torch.randn(batch, win, 1)
    m = torch.ones(batch, win, dtype=torch.bool)
    times = []
    for i in range(repeat + 1):
        t = time.perf_counter()
        loss = ccc_loss(model(x, m), y, m)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t)
    fwd = sum(2 * 4 * hidden * (hidden + hidden) * batch * win for _ in range(layers))
    return min(times), 3 * fwd


def time_to(history: list[dict], target: float) -> float | None:
    for h in history:
        if h["devel_ccc"] is not None and h["devel_ccc"] >= target:
            return h["seconds"]
    return None


def run(data: str, cfg: RunConfig, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        m = emotrace.fit(data, out=Path(tmp) / "run", config=cfg)
    h = m["seeds"][0]["history"]
    per_epoch = h[-1]["seconds"] / len(h)
    return {"devel_ccc": m["devel"]["ccc"], "epochs": len(h), "s_per_epoch": per_epoch,
            "steps_per_s": steps / per_epoch, "to_target": time_to(h, TARGET_CCC),
            "total": h[-1]["seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    big = gemm_gflops(2048, 2048, 2048)
    small = gemm_gflops(1024, 64, 256)
    step_s, flops = lstm_step()
    print(f"| GEMM 2048^3 | {big:.1f} GFLOP/s |")
    print(f"| GEMM 1024x64 @ 64x256 (one LSTM gate matmul) | {small:.1f} GFLOP/s |")
    print(f"| baseline LSTM train step (4x64, batch 1024, win 100) | {step_s * 1000:.0f} ms, "
          f"{flops / step_s / 1e9:.1f} GFLOP/s = {100 * flops / step_s / 1e9 / big:.0f}% of GEMM |")

    corpus = emotrace.load_corpus(args.data, features=["head", "eye", "lum"], targets=["arousal"])
    steps = sum(len(r) for r in corpus.partition("train"))
    data = DataConfig(features=["head", "eye", "lum"], targets=["arousal"])
    baseline = RunConfig(
        data=data.model_copy(update={"win": 100, "hop": 25}),
        model=ModelConfig(name="rnn", cell="lstm", hidden=64, layers=4, bidirectional=False,
                          dropout=0.0),
        train=TrainConfig(epochs=73, lr=0.002, batch_size=1024, loss="ccc", seeds=1,
                          seed=args.seed, patience=73, modality_dropout=0.0))
    default = RunConfig(data=data, train=TrainConfig(seeds=1, seed=args.seed))
    print("| recipe | devel CCC | epochs | s/epoch | train steps/s | time to CCC 0.445 | total |")
    for name, cfg in (("MuSe 2021 baseline recipe", baseline), ("emotrace default", default)):
        r = run(args.data, cfg, steps)
        to = f"{r['to_target']:.1f} s" if r["to_target"] is not None else "never"
        print(f"| {name} | {r['devel_ccc']:.3f} | {r['epochs']} | {r['s_per_epoch']:.2f} | "
              f"{r['steps_per_s']:.0f} | {to} | {r['total']:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
