"""Gold standards from several raters: reading raw traces, fusion, agreement, physiology."""

from emotrace.labels.agreement import agreement, agreement_overall, pairwise
from emotrace.labels.gold import agreement_report, gold_standard
from emotrace.labels.raters import METHODS, FusionResult, ewe_weights, fuse, parse_smoother, zscore
from emotrace.labels.raw import RaterTable, read_raw, read_raw_folder

__all__ = ["METHODS", "FusionResult", "RaterTable", "agreement", "agreement_overall",
           "agreement_report", "ewe_weights", "fuse", "gold_standard", "pairwise",
           "parse_smoother", "read_raw", "read_raw_folder", "zscore"]
