"""Streaming latency per step, and ONNX Runtime vs PyTorch throughput, on one CPU thread.

    python benchmarks/streaming.py [--seeds 0 1 2] [--steps 3000]

For each model (unidirectional, 2 layers x 64 units): a run is trained for one epoch on a
synthetic corpus (16-d ``audio`` features; latency does not depend on what the weights learned),
then

1. ``StreamingPredictor.step`` (PyTorch, raw features in, prediction out): median and 95th
   percentile wall-clock per step over ``--steps`` consecutive steps (after 50 warm-up steps);
2. the same step through the streaming ONNX graph in ONNX Runtime (``emotrace export
   --streaming``), state passed in and out as numpy arrays;
3. whole-sequence throughput in steps per second, PyTorch (``emotrace predict``'s
   ``predict_arrays``) vs ONNX Runtime (``emotrace export``): one recording of ``--steps`` steps,
   and a batch of 16 recordings of 300 steps (a CEAP-360VR video at 5 Hz).

Each number is the mean ± std (population) over the model seeds. torch and ONNX Runtime use one
thread (``torch.set_num_threads(1)``, ``intra_op_num_threads=1``).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import emotrace  # noqa: E402
from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from emotrace.datasets import synthetic  # noqa: E402
from emotrace.export import random_features  # noqa: E402
from emotrace.run import load_run  # noqa: E402
from emotrace.streaming import StepModel, StreamingPredictor  # noqa: E402
from emotrace.train.predict import predict_arrays  # noqa: E402

MODELS = {
    "rnn GRU": {"name": "rnn", "cell": "gru"},
    "rnn LSTM": {"name": "rnn", "cell": "lstm"},
    "gcnn-rnn GRU (kernel 3)": {"name": "gcnn-rnn", "cell": "gru", "kernel": 3},
    "attn-rnn GRU (4 heads)": {"name": "attn-rnn", "cell": "gru", "heads": 4},
}


def _session(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _per_step(fn, xs: np.ndarray, warmup: int = 50) -> np.ndarray:
    for x in xs[:warmup]:
        fn(x)
    times = np.empty(len(xs))
    for i, x in enumerate(xs):
        t = time.perf_counter()
        fn(x)
        times[i] = time.perf_counter() - t
    return times


def _throughput(fn, n_steps: int, repeat: int = 5) -> float:
    fn()
    best = min(_timed(fn) for _ in range(repeat))
    return n_steps / best


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(run: Path, steps: int, seed: int, tmp: Path) -> dict:
    r = load_run(run)
    x = random_features(r, steps=steps, seed=seed, missing=0.0)
    out: dict = {}
    sp = StreamingPredictor(r)
    t = _per_step(sp.step, x)
    out["torch_step_median_ms"] = 1e3 * float(np.median(t))
    out["torch_step_p95_ms"] = 1e3 * float(np.percentile(t, 95))
    out["state_bytes_end"] = sp.state_bytes()
    step_path = emotrace.export(r, out=tmp / "step.onnx", streaming=True)
    sess = _session(step_path)
    names = [i.name for i in sess.get_inputs()]
    state = [s.numpy() for s in StepModel(r).initial_state()]

    def ort_step(row):
        nonlocal state
        _, *state = sess.run(None, dict(zip(names, [row[None], *state], strict=True)))

    t = _per_step(ort_step, x)
    out["ort_step_median_ms"] = 1e3 * float(np.median(t))
    seq = _session(emotrace.export(r, out=tmp / "seq.onnx"))
    std = [r.standardiser.transform(_rec(r, x), r.config.data.features)]
    out["torch_seq_steps_per_s"] = _throughput(lambda: predict_arrays(r.model, std), steps)
    out["ort_seq_steps_per_s"] = _throughput(lambda: seq.run(None, {"features": x[None]}), steps)
    batch = np.stack([random_features(r, steps=300, seed=seed + 100 + i, missing=0.0)
                      for i in range(16)])
    std_b = [r.standardiser.transform(_rec(r, b), r.config.data.features) for b in batch]
    n = batch.shape[0] * batch.shape[1]
    out["torch_batch_steps_per_s"] = _throughput(lambda: predict_arrays(r.model, std_b), n)
    out["ort_batch_steps_per_s"] = _throughput(lambda: seq.run(None, {"features": batch}), n)
    return out


def _rec(r, x):
    from emotrace.data.corpus import Recording

    return Recording("b", "test", "b", np.arange(len(x), dtype=np.int64), features={"audio": x})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{os.cpu_count()} cores, 1 thread; seeds {args.seeds}; {args.steps} steps")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        root = tmp / "corpus"
        synthetic.prepare(root, subjects=(3, 1, 1), recordings_per_subject=1, steps=(40, 60))
        rows = {}
        for label, model in ((m, MODELS[m]) for m in args.models):
            res = []
            for seed in args.seeds:
                run = tmp / f"run-{len(rows)}-{seed}"
                cfg = RunConfig(data=DataConfig(features=["audio"], targets=["arousal"]),
                                model=ModelConfig(hidden=64, layers=2, bidirectional=False, **model),
                                train=TrainConfig(epochs=1, seeds=1, seed=seed, threads=1))
                emotrace.fit(root, out=run, config=cfg)
                res.append(measure(run, args.steps, seed, tmp))
            rows[label] = res
            print(f"{label}: done", flush=True)

    def ms(rs, k):
        v = np.array([r[k] for r in rs])
        return f"{v.mean():.3f} ± {v.std():.3f}"

    def kps(rs, k):
        v = np.array([r[k] for r in rs]) / 1e3
        return f"{v.mean():.0f} ± {v.std():.0f}"

    print("\n| model (uni, 2 x 64) | PyTorch step, median ms | PyTorch step, p95 ms | ONNX Runtime step, "
          "median ms | state after the last step |")
    print("|---|---|---|---|---|")
    for label, rs in rows.items():
        print(f"| {label} | {ms(rs, 'torch_step_median_ms')} | {ms(rs, 'torch_step_p95_ms')} | "
              f"{ms(rs, 'ort_step_median_ms')} | {rs[0]['state_bytes_end'] / 1024:.1f} KiB |")
    print(f"\n| model (uni, 2 x 64) | PyTorch, 1 x {args.steps} steps | ONNX Runtime, "
          f"1 x {args.steps} | PyTorch, 16 x 300 | ONNX Runtime, 16 x 300 |")
    print("|---|---|---|---|---|")
    for label, rs in rows.items():
        print(f"| {label} | {kps(rs, 'torch_seq_steps_per_s')} k/s | "
              f"{kps(rs, 'ort_seq_steps_per_s')} k/s | {kps(rs, 'torch_batch_steps_per_s')} k/s | "
              f"{kps(rs, 'ort_batch_steps_per_s')} k/s |")


if __name__ == "__main__":
    main()
