"""Summary of a loaded corpus, for ``emotrace data check``."""

from __future__ import annotations

import numpy as np

from emotrace.data.corpus import Corpus


def summarize(corpus: Corpus) -> dict:
    parts = {}
    for p in corpus.partitions():
        recs = corpus.partition(p)
        parts[p] = {"recordings": len(recs), "subjects": len(corpus.subjects(p)),
                    "steps": int(sum(len(r) for r in recs)),
                    "labelled": int(sum(bool(r.labels) and any(np.isfinite(v).any()
                                                               for v in r.labels.values())
                                        for r in recs))}
    feats = {n: {"dims": r.dims, "zero_filled_steps": r.zero_filled_steps,
                 "imputed_cells": r.imputed_cells} for n, r in corpus.report.features.items()}
    return {"partitions": parts, "features": feats, "targets": corpus.targets,
            "warnings": corpus.report.warnings()}
