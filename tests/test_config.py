"""Typed configs: validation messages name the key and the fix, also through the Python API."""

from __future__ import annotations

import pytest

from emotrace.config import RunConfig
from emotrace.errors import EmotraceError


def test_a_check_across_fields_names_them_without_dumping_the_section():
    with pytest.raises(EmotraceError) as e:
        RunConfig.from_dict({"data": {"features": ["audio"], "targets": ["arousal"], "win": 10,
                                      "hop": 20}}, source="cfg.yaml")
    msg = str(e.value)
    assert msg.startswith("cfg.yaml: data: hop (20) is longer than the window (10)")
    assert "'features'" not in msg and "Value error" not in msg


def test_a_field_error_says_what_was_given():
    with pytest.raises(EmotraceError, match=r"model\.hidden: .* \(got 0\)"):
        RunConfig.from_dict({"data": {"features": ["a"], "targets": ["t"]}, "model": {"hidden": 0}})


def test_outcome_leaves_out_only_the_execution_options():
    cfg = RunConfig.from_dict({"data": {"features": ["a"], "targets": ["t"]},
                               "train": {"threads": 2, "jobs": 3}})
    other = cfg.model_copy(deep=True)
    other.train.threads, other.train.jobs = 1, 1
    assert cfg.outcome() == other.outcome()
    other.train.lr = 0.1
    assert cfg.outcome() != other.outcome()
    assert "threads" not in cfg.outcome()["train"] and "seeds" in cfg.outcome()["train"]
