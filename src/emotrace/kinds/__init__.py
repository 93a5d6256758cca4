"""Run kinds: regression (per-step traces), segment classification, fused runs (late fusion),
cross-validated runs (fold ensembles, ``--cv``).

Each kind module has ``fit``, ``evaluate`` and ``predict``; :mod:`emotrace.api` picks the module
from its table by :func:`emotrace.run.run_kind`.
"""
