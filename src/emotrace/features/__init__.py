"""Feature extraction from raw recordings, aligned to label timestamps (see ``run.extract``).

Each kind of input has one module with ``build(feature_set, **options) -> Extractor``
(:mod:`emotrace.features.base`): ``audio``, ``text``, ``face`` and ``physio``. The driver
:func:`emotrace.features.driver.extract` (``emotrace.extract``) finds the inputs, makes the time grid,
runs extractors in parallel, and writes ``ROOT/feature_segments/<feature_set>/`` with a manifest.
"""

from __future__ import annotations

KINDS = ("audio", "text", "face", "physio")
