"""CEAP-360VR as a multi-rater problem: the participants who rated the same video are raters."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emotrace.datasets import ceap360vr as c


def ceap_raters(source: Path | str, *, participants: list[int] | None = None
                ) -> dict[tuple[str, str], tuple[np.ndarray, list[str], np.ndarray]]:
    """``{(video, dimension): (timestamps_s, rater names, traces (300, R))}`` at 5 Hz.

    Each participant's joystick trace is averaged per 0.2 s step exactly as the ``ceap360vr``
    adapter does for its labels (:func:`emotrace.datasets.ceap360vr.window_means`). Constant
    traces (a participant who never moved the joystick) are left out.
    """
    source = Path(source)
    found = participants or c.participants_in(source)
    per: dict[tuple[str, str], list] = {}
    for n in found:
        path = c.annotation_file(source, n)
        ann = c._per_video(path, c._load_json(path), "ContinuousAnnotation_FrameData",
                           "Video_Annotation_FrameData", "TimeStamp_Valence_Arousal")
        for v in c.VIDEOS:
            a = c._columns(path, v, ann[v], ("TimeStamp", "Arousal", "Valence"))
            for col, dim in ((1, "arousal"), (2, "valence")):
                per.setdefault((v, dim), []).append((f"P{n}", c.window_means(a[:, 0], a[:, col])))
    out = {}
    t = c.TIMESTAMPS_MS / 1000.0
    for key, rows in per.items():
        rows = [(name, x) for name, x in rows if np.ptp(x) > 0]
        out[key] = (t, [n for n, _ in rows], np.stack([x for _, x in rows], 1))
    return out
