"""Fusion: late fusion of runs (:func:`fuse`), difficulty indicators from auto-encoders
(:class:`Difficulty`), out-of-fold train predictions (:func:`out_of_fold`).

Early fusion (several feature sets concatenated per step, optionally projected) is part of
``emotrace train``: ``--features a b c [--project N]``.
"""

from emotrace.fusion.difficulty import Difficulty
from emotrace.fusion.folds import out_of_fold, subject_folds
from emotrace.fusion.late import evaluate_fused, fuse, is_fused, load_fused, predict_fused

__all__ = ["Difficulty", "evaluate_fused", "fuse", "is_fused", "load_fused", "out_of_fold",
           "predict_fused", "subject_folds"]
