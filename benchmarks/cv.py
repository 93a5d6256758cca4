"""Subject cross-validation (``--cv``) against the single devel split, on CEAP-360VR and
Stress-Predict.

    python benchmarks/cv.py ceap --data corpora/ceap --workdir runs/cv_ceap \
        --variants split cv5 loso --out benchmarks/out/cv_ceap.jsonl
    python benchmarks/cv.py stress --data benchmarks/out/sp --workdir runs/cv_sp \
        --variants loso --out benchmarks/out/cv_sp.jsonl
    python benchmarks/cv.py ceap --data corpora/ceap --workdir runs/cv_ceap --seeds 1 \
        --variants cv5 cv5-loss-ccc cv5-rnn cv5-win100      # do the tuned choices hold under CV?

``ceap``: the recommended CEAP-360VR command of docs/benchmarks.md (``--features head eye lum
--target arousal valence --per-recording head eye``, all other options default, 3 seeds), as

- ``split``: trained on train (P1-P20), early-stopped and seed-chosen on devel (P21-P26): its
  devel CCC, today's number;
- ``cv5``: ``--cv 5`` over the 26 train + devel subjects;
- ``loso``: ``--cv loso`` (26 folds; about 5x the cost of ``cv5``).

For each ``--cv`` variant the table gives the out-of-fold CCC (global, per recording) as the
mean ± std over folds, the CCC of all out-of-fold predictions concatenated, and that of the devel
partition's recordings alone (the same recordings as ``split``'s devel number, each predicted by
a model that never saw its subject and was not selected on it).

``stress``: the best Stress-Predict configuration of docs/benchmarks.md (``fused-2l``: all four
physiological sets, a 2 x 32 BiGRU, 600-step windows with hop 300, MSE, at most 20 epochs,
patience 6, modality dropout 0.2, every set z-scored per recording) under leave-one-subject-out
over S01-S25 (``--cv loso``): AUROC, F1 and CCC mean ± std over folds, and of the out-of-fold
predictions concatenated. No test partition exists in the shared copy; nothing here looks for
one. ``--data`` is the corpus written by ``emotrace data prepare stress-predict``
(``benchmarks/stress_predict.py`` prepares it).

Finished runs in ``--workdir`` are reused; an interrupted one is resumed. Each run uses
``--jobs`` worker processes (seeds x folds in parallel, one torch thread each).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np


def ceap_config(cv: str | None, jobs: int, seeds: int = 3, **changes):
    """The recommended CEAP-360VR configuration; ``changes`` (``"model.name": "rnn"``, ...) vary
    one choice at a time."""
    from emotrace.config import DataConfig, RunConfig, TrainConfig

    config = RunConfig(data=DataConfig(features=["head", "eye", "lum"],
                                       targets=["arousal", "valence"], per_recording=["head", "eye"]),
                       train=TrainConfig(cv=cv, jobs=jobs, seeds=seeds))
    raw = config.model_dump()
    for key, value in changes.items():
        section, name = key.split(".")
        raw[section][name] = value
    return RunConfig.model_validate(raw)


def stress_config(cv: str | None, jobs: int, seeds: int = 3):
    from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    sets = ["hrv", "eda", "temp", "acc"]
    return RunConfig(
        data=DataConfig(features=sets, targets=["stress"], win=600, hop=300, per_recording=sets),
        model=ModelConfig(name="rnn", cell="gru", hidden=32, layers=2, bidirectional=True,
                          dropout=0.1),
        train=TrainConfig(epochs=20, seeds=seeds, loss="mse", patience=6, modality_dropout=0.2,
                          batch_size=16, cv=cv, jobs=jobs))


VARIANTS = {"split": None, "cv5": "5", "loso": "loso"}
#: ``--cv 5`` with one choice of the recommended CEAP configuration changed (do they still hold?)
CHOICES = {"cv5-loss-ccc": {"train.loss": "ccc"}, "cv5-rnn": {"model.name": "rnn"},
           "cv5-win100": {"data.win": 100}, "cv5-no-per-recording": {"data.per_recording": []}}


def run(data: str, out: Path, config) -> dict:
    import emotrace
    from emotrace.run import STATE

    if not (out / "metrics.json").exists() or (out / STATE).exists():
        resume = (out / STATE).exists()
        if not resume:
            shutil.rmtree(out, ignore_errors=True)
        emotrace.fit(data, out=out, config=config, resume=resume)
    return json.loads((out / "metrics.json").read_text())


def _targets(m: dict) -> dict:
    """``{target: metrics}`` whether ``m`` holds one target (flat) or several."""
    if "ccc" in m:
        return {"": m}
    return m


def rows(variant: str, metrics: dict) -> list[dict]:
    """One row per target: the variant's scores."""
    out = []
    if "cv" not in metrics:
        for t, d in _targets(metrics["devel"]).items():
            out.append({"variant": variant, "target": t, "devel": d,
                        "seconds": metrics["wall_seconds"]})
        return out
    cv = metrics["cv"]
    mean, std = _targets(cv["mean"]), _targets(cv["std"])
    oof = _targets(cv["out_of_fold"])
    oof_devel = _targets(cv["out_of_fold_devel"]) if cv.get("out_of_fold_devel") else {}
    for t in mean:
        out.append({"variant": variant, "target": t, "folds": cv["k"], "mean": mean[t],
                    "std": std[t], "out_of_fold": oof[t], "out_of_fold_devel": oof_devel.get(t),
                    "seconds": metrics["wall_seconds"]})
    return out


def table(all_rows: list[dict], names: list[str]) -> str:
    lines = ["| variant | target | " + " | ".join(f"{n} (folds mean ± std)" for n in names)
             + " | " + " | ".join(f"{n} OOF concatenated" for n in names)
             + " | OOF devel ccc | seconds |",
             "|" + "---|" * (4 + 2 * len(names))]
    for r in all_rows:
        if "devel" in r:  # the single split
            cells = [f"{r['devel'].get(n, np.nan):.3f} (devel)" for n in names] + ["—"] * len(names)
            lines.append(f"| {r['variant']} | {r['target']} | " + " | ".join(cells)
                         + f" | {r['devel']['ccc']:.3f} | {r['seconds']:.0f} |")
            continue
        cells = [f"{r['mean'].get(n, np.nan):.3f} ± {r['std'].get(n, np.nan):.3f}" for n in names]
        cells += [f"{r['out_of_fold'].get(n, np.nan):.3f}" for n in names]
        od = r["out_of_fold_devel"]["ccc"] if r["out_of_fold_devel"] else float("nan")
        lines.append(f"| {r['variant']} ({r['folds']} folds) | {r['target']} | "
                     + " | ".join(cells) + f" | {od:.3f} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", choices=["ceap", "stress"])
    ap.add_argument("--data", required=True)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--variants", nargs="+", choices=[*VARIANTS, *CHOICES], default=None)
    ap.add_argument("--seeds", type=int, default=3, help="seeds per run (per fold with --cv)")
    ap.add_argument("--jobs", type=int, default=0, help="worker processes per run (0 = per core)")
    ap.add_argument("--out", type=Path, help="JSON lines of every row")
    args = ap.parse_args()
    variants = args.variants or (["split", "cv5"] if args.corpus == "ceap" else ["loso"])
    make = ceap_config if args.corpus == "ceap" else stress_config
    names = ["ccc", "ccc_per_recording"] if args.corpus == "ceap" else ["auroc", "f1", "ccc"]
    all_rows = []
    for v in variants:
        if v in CHOICES:
            config = ceap_config("5", args.jobs, args.seeds, **CHOICES[v])
        else:
            config = make(VARIANTS[v], args.jobs, args.seeds)
        metrics = run(args.data, args.workdir / v, config)
        all_rows += rows(v, metrics)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(r) + "\n" for r in all_rows))
    print(table(all_rows, names))


if __name__ == "__main__":
    main()
