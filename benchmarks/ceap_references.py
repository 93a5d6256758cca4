"""Reference points on CEAP-360VR devel that need no training.

    python benchmarks/ceap_references.py --data corpora/ceap

- video-mean: for each devel recording, the mean trace of the train participants for the same
  video (a real predictor: train labels only).
- oracle subject offset / oracle recording offset: the video-mean shifted by the true mean
  residual of each devel subject / recording. These read devel labels, so they are ceilings that
  show how much of the global CCC is the *level* of a person or a recording, not predictors.
"""

from __future__ import annotations

import argparse

import numpy as np

import emotrace


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    args = ap.parse_args()
    corpus = emotrace.load_corpus(args.data, features=["lum"], targets=["arousal", "valence"])
    video = {r.id: r.id.split("_")[1] for r in corpus}
    devel = corpus.partition("devel")
    print("| predictor | target | ccc | ccc_per_recording |")
    print("|---|---|---|---|")
    for t in ("arousal", "valence"):
        by_video: dict[str, list[np.ndarray]] = {}
        for r in corpus.partition("train"):
            by_video.setdefault(video[r.id], []).append(r.labels[t])
        mean = {v: np.mean(a, axis=0) for v, a in by_video.items()}
        ys = [r.labels[t] for r in devel]
        vm = [mean[video[r.id]] for r in devel]
        resid: dict[str, list[float]] = {}
        for r, y, p in zip(devel, ys, vm, strict=True):
            resid.setdefault(r.subject, []).append(float(np.mean(y - p)))
        subject = [p + np.mean(resid[r.subject]) for r, p in zip(devel, vm, strict=True)]
        recording = [p + np.mean(y - p) for y, p in zip(ys, vm, strict=True)]
        for name, preds in (("video-mean", vm), ("oracle subject offset", subject),
                            ("oracle recording offset", recording)):
            c = emotrace.ccc(np.concatenate(ys), np.concatenate(preds))
            print(f"| {name} | {t} | {c:.3f} | {emotrace.ccc_per_recording(ys, preds):.3f} |")


if __name__ == "__main__":
    main()
