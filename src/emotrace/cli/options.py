"""The ``train`` flags that set config fields, in one table: flag → dotted config key.

Each flag's type, help text, choices and default come from its field in
:mod:`emotrace.config`, so the command line cannot drift from the config file: a new field needs
a row here or a place in :data:`CONFIG_FILE_ONLY` (``tests/test_cli_options.py`` checks both).
A flag that is not given is ``None`` and leaves the ``--config`` file's value (or the field's
default) alone.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Literal

import typer
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig

SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}

#: every flag of ``train`` that sets a config field, in the order ``--help`` lists them
CONFIG_FLAGS: dict[str, str] = {
    "--features": "data.features",
    "--target": "data.targets",
    "--model": "model.name",
    "--cell": "model.cell",
    "--hidden": "model.hidden",
    "--layers": "model.layers",
    "--bidirectional/--unidirectional": "model.bidirectional",
    "--dropout": "model.dropout",
    "--heads": "model.heads",
    "--channels": "model.channels",
    "--kernel": "model.kernel",
    "--win": "data.win",
    "--hop": "data.hop",
    "--max-len": "data.max_len",
    "--epochs": "train.epochs",
    "--lr": "train.lr",
    "--batch-size": "train.batch_size",
    "--loss": "train.loss",
    "--weight-decay": "train.weight_decay",
    "--modality-dropout": "train.modality_dropout",
    "--clip": "train.clip",
    "--patience": "train.patience",
    "--seeds": "train.seeds",
    "--seed": "train.seed",
    "--threads": "train.threads",
    "--jobs": "train.jobs",
    "--standardize/--no-standardize": "data.standardize",
    "--per-recording": "data.per_recording",
    "--strict": "data.strict",
    "--fusion": "data.fusion",
    "--project": "model.project",
    "--difficulty": "data.difficulty",
    "--folds": "train.folds",
    "--cv": "train.cv",
    "--ensemble": "train.ensemble",
    "--task": "train.task",
    "--class-weights": "train.class_weights",
}

#: config fields without a flag: set them in ``--config FILE.yaml``
CONFIG_FILE_ONLY = frozenset({"model.head_hidden", "model.input_layer", "model.output_scale",
                              "data.last_window", "train.lr_patience", "train.lr_factor",
                              "train.min_lr",
                              "train.lr_plateau_on", "data.difficulty_hidden",
                              "data.difficulty_layers"})


def field(key: str) -> FieldInfo:
    """The pydantic field of a dotted key such as ``model.hidden``."""
    section, name = key.split(".")
    return SECTIONS[section].model_fields[name]


def param_name(flag: str) -> str:
    """``--batch-size`` → ``batch_size``; ``--standardize/--no-standardize`` → ``standardize``."""
    return flag.split("/")[0].lstrip("-").replace("-", "_")


def default_text(flag: str, key: str) -> str | None:
    """The field's default as ``--help`` shows it (None: no default, or the description says)."""
    f = field(key)
    if f.default_factory is not None:
        value = f.default_factory()
    elif f.default is PydanticUndefined or f.default is None:
        return None
    else:
        value = f.default
    if isinstance(value, bool):
        if "/" in flag:  # --bidirectional/--unidirectional: name the side that is the default
            return flag.split("/")[0 if value else 1].lstrip("-")
        return "on" if value else "off"
    if isinstance(value, list):
        return " ".join(value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def help_text(flag: str, key: str) -> str:
    """``Description. [default: X]`` from the config field."""
    f = field(key)
    desc = f.description or ""
    if desc.split(" ")[0].isalpha():  # not "attn-rnn: ..." or "z-score ..."
        desc = desc[:1].upper() + desc[1:]
    text = desc + ("" if desc.endswith(".") else ".")
    if f.is_required():
        text += " Required (here or in --config)."
    default = default_text(flag, key)
    return text if default is None else f"{text}  [default: {default}]"


def _choices(annotation) -> tuple[str, ...] | None:
    if typing.get_origin(annotation) is Literal:
        return tuple(str(a) for a in typing.get_args(annotation))
    return None


def option_type(key: str) -> type:
    """What typer parses: list[str], bool, int, float or str (choices are validated by the
    config, so a bad value gets the config's message), always optional."""
    annotation = field(key).annotation
    args = typing.get_args(annotation)
    base = next(a for a in args if a is not type(None)) if type(None) in args else annotation
    if typing.get_origin(base) is list:
        return list[str] | None
    if _choices(base):
        return str | None
    return base | None


def parameters() -> list[inspect.Parameter]:
    """One keyword-only ``typer.Option`` parameter per row of :data:`CONFIG_FLAGS`."""
    out = []
    for flag, key in CONFIG_FLAGS.items():
        choices = _choices(field(key).annotation)
        metavar = "|".join(choices) if choices else None
        if option_type(key) == list[str] | None:
            metavar = "NAME ..."
        option = typer.Option(flag, help=help_text(flag, key), show_default=False, metavar=metavar)
        out.append(inspect.Parameter(param_name(flag), inspect.Parameter.KEYWORD_ONLY,
                                     default=None, annotation=Annotated[option_type(key), option]))
    return out


def with_config_flags(after: str) -> Callable[[Callable], Callable]:
    """Add the :data:`CONFIG_FLAGS` options to a command (which takes them as ``**flags``),
    listed after its parameter ``after``."""

    def wrap(func: Callable) -> Callable:
        own = [p for p in inspect.signature(func, eval_str=True).parameters.values()
               if p.kind is not inspect.Parameter.VAR_KEYWORD]
        i = [p.name for p in own].index(after) + 1
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        params = [*own[:i], *parameters(), *own[i:]]
        func.__signature__ = inspect.Signature(params)
        func.__annotations__ = {p.name: p.annotation for p in params}
        return func

    return wrap


def to_config(flags: dict) -> dict:
    """``{param name: value}`` of the given flags → ``{"data": {...}, "model": {...}, ...}`` for
    :func:`emotrace.config.merge` (``None`` and empty lists: not given)."""
    out: dict[str, dict] = {section: {} for section in SECTIONS}
    for flag, key in CONFIG_FLAGS.items():
        value = flags.get(param_name(flag))
        if isinstance(value, list | tuple):
            value = list(value) or None
        section, name = key.split(".")
        out[section][name] = value
    return out


def run_config(merged: dict, *, source: str) -> RunConfig:
    """:meth:`RunConfig.from_dict` (a check across fields is reported by its own message,
    :func:`emotrace.config.explain`)."""
    return RunConfig.from_dict(merged, source=source)
