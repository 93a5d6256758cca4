"""Personalisation gain on CEAP-360VR devel (test is never used).

    python benchmarks/personalise.py --data corpora/ceap --general-seeds 0 1 2 \
        --out benchmarks/out/personalise

1. One general model per seed in ``--general-seeds``: the core's best configuration (defaults,
   ``gcnn-rnn`` bidirectional, ``--per-recording head eye``, arousal and valence jointly,
   ``train.seeds=1``), trained on train with devel early stopping (one torch thread).
2. Each is personalised on the devel participants P21-P26 with ``emotrace.personalise``:
   each participant's first video (60 s) is personal train, the second (60 s) personal devel,
   videos 3-8 are evaluated; ``--seeds`` fine-tuning seeds, windows of 10 steps with hop 5.
3. Printed: per participant and target, the CCC of the general and the personalised model on
   videos 3-8 and the gain, each as mean ± std (population) over the general seeds; the same
   for the global CCC over all participants' videos 3-8 and the mean over participants.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--general-seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--seeds", type=int, default=10, help="fine-tuning seeds per subject")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--subject-train", default="60s")
    ap.add_argument("--subject-devel", default="60s")
    ap.add_argument("--name", default="personal", help="folder prefix of this variant's results")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    import torch

    import emotrace
    from emotrace.config import DataConfig, RunConfig, TrainConfig

    torch.set_num_threads(1)
    results = []
    for gs in args.general_seeds:
        run = args.out / f"general_s{gs}"
        if not (run / "metrics.json").exists():
            cfg = RunConfig(data=DataConfig(features=["head", "eye", "lum"],
                                            targets=["arousal", "valence"],
                                            per_recording=["head", "eye"]),
                            train=TrainConfig(seeds=1, seed=gs, threads=1))
            emotrace.fit(args.data, out=run, config=cfg)
        pers = args.out / f"{args.name}_s{gs}"
        if (pers / "metrics.json").exists():
            res = json.loads((pers / "metrics.json").read_text())
        else:
            res = emotrace.personalise(run, args.data, out=pers, seeds=args.seeds, lr=args.lr,
                                       epochs=args.epochs, subject_train=args.subject_train,
                                       subject_devel=args.subject_devel, threads=1)
        general = json.loads((run / "metrics.json").read_text())
        res["general_devel"] = general["devel"]
        results.append(res)
        print(f"general seed {gs}: {res['personalised']}/{res['n_subjects']} subjects personalised "
              f"in {res['seconds']:.0f} s", flush=True)

    def ms(values) -> str:
        v = np.asarray(values, dtype=float)
        return f"{v.mean():.3f} ± {v.std():.3f}"

    targets = list(results[0]["targets"])
    for t in targets:
        first = round((res["protocol"]["subject_train_s"] + res["protocol"]["subject_devel_s"]) / 60)
        print(f"\n### {t}: CCC on videos {first + 1}-8 of each devel participant "
              f"(mean ± std over general seeds {args.general_seeds})")
        print("| participant | general | personalised | gain | personal model kept |")
        print("|---|---|---|---|---|")
        for k, s in enumerate(results[0]["subjects"]):
            rows = [r["subjects"][k] for r in results]
            print(f"| {s['subject']} | {ms([r['targets'][t]['general'] for r in rows])} | "
                  f"{ms([r['targets'][t]['personal'] for r in rows])} | "
                  f"{ms([r['targets'][t]['gain'] for r in rows])} | "
                  f"{sum(r['personal'] for r in rows)}/{len(rows)} |")
        for name, key in (("all (global ccc)", "global"), ("mean of participants", "mean_subject")):
            print(f"| **{name}** | {ms([r['targets'][t][key]['general'] for r in results])} | "
                  f"{ms([r['targets'][t][key]['personal'] for r in results])} | "
                  f"**{ms([r['targets'][t][key]['gain'] for r in results])}** | |")
        print(f"(general model on all devel videos, for reference: "
              f"{ms([r['general_devel'][t]['ccc'] for r in results])})")


if __name__ == "__main__":
    main()
