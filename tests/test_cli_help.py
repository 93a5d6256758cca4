"""``--help`` of every verb at 80 columns, ``--version``, and the train flags' single source:
the config fields (emotrace.cli.options)."""

from __future__ import annotations

import re

import pytest
import typer
from helpers import run_cli
from pydantic_core import PydanticUndefined

from emotrace._version import __version__
from emotrace.cli import app
from emotrace.cli import options as o


def _commands(group, prefix=()) -> list[tuple[tuple[str, ...], object]]:
    out = [(prefix, group)]
    for name, cmd in getattr(group, "commands", {}).items():
        out += _commands(cmd, (*prefix, name))
    return out


ROOT = typer.main.get_command(app)
COMMANDS = _commands(ROOT)


def _entries(help_text: str) -> dict[str, str]:
    """``{first line of an option entry: its description}`` of the Options section."""
    body = help_text.split("\nOptions:\n", 1)[1]
    entries: dict[str, list[str]] = {}
    current = None
    for line in body.splitlines():
        if not line.strip() or not line.startswith(" "):
            break
        if re.match(r"^  -", line):
            current = line
            parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            entries[current] = parts[1:]
        else:
            entries[current].append(line.strip())
    return {k: " ".join(v) for k, v in entries.items()}


def _help(capsys, monkeypatch, path: tuple[str, ...]) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run_cli(capsys, *path, "--help")
    assert code == 0, err
    return out


@pytest.mark.parametrize(
    "path,cmd",
    [pytest.param(p, c) for p, c in COMMANDS],
    ids=[" ".join(p) or "emotrace" for p, _ in COMMANDS])
def test_every_option_has_a_description_and_its_default_at_80_columns(capsys, monkeypatch,
                                                                       path, cmd):
    out = _help(capsys, monkeypatch, path)
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    entries = _entries(out)
    for param in cmd.params:
        if param.param_type_name != "option":
            continue
        names = [*param.opts, *param.secondary_opts]
        for name in names:  # shown whole, never cut
            assert re.search(rf"(^|[\s,/]){re.escape(name)}($|[\s,/])", out, re.M), name
        [(first, desc)] = [(k, v) for k, v in entries.items()
                           if re.search(rf"{re.escape(names[0])}($|[\s,/])", k)]
        words = re.sub(r"\[(default: [^]]*|required)\]", "", desc).strip()
        assert words, f"{' '.join(path)} {names[0]}: no description"
        valued = not param.is_flag and not param.required and param.default is not None
        if valued:
            assert "[default:" in desc, f"{' '.join(path)} {names[0]}: default not shown"


def test_version(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0
    assert out.strip() == f"emotrace {__version__}"


# ---------------------------------------------------------------------------------------------
# the train flags come from the config fields


def test_every_config_field_has_a_flag_or_is_config_file_only():
    keys = {f"{s}.{name}" for s, model in o.SECTIONS.items() for name in model.model_fields}
    flagged = set(o.CONFIG_FLAGS.values())
    assert len(flagged) == len(o.CONFIG_FLAGS), "two flags set the same field"
    assert not flagged & o.CONFIG_FILE_ONLY
    assert flagged | o.CONFIG_FILE_ONLY == keys


def test_every_field_has_a_description():
    for s, model in o.SECTIONS.items():
        for name, f in model.model_fields.items():
            assert f.description, f"{s}.{name}"


@pytest.mark.parametrize("flag,key", list(o.CONFIG_FLAGS.items()))
def test_flag_help_and_default_come_from_the_config_field(capsys, monkeypatch, flag, key):
    f = o.field(key)
    out = _help(capsys, monkeypatch, ("train",))
    squeezed = "".join(out.split())  # lines wrap at spaces and after hyphens
    assert "".join(f.description.split())[1:] in squeezed  # the first letter may be capitalised
    out = " ".join(out.split())
    default = f.default_factory() if f.default_factory else f.default
    if default is PydanticUndefined or default is None:
        return
    shown = o.default_text(flag, key)
    assert f"[default: {shown}]" in out
    if isinstance(default, bool):
        assert shown in ({"on", "off"} if "/" not in flag else set(flag.replace("-", "").split("/")))
    elif isinstance(default, int | float):
        assert float(shown) == default
    elif isinstance(default, str):
        assert shown == default


def _valid_value(key: str) -> list[str]:
    """A non-default value of the field, as command-line words."""
    f = o.field(key)
    choices = o._choices(f.annotation)
    if choices:
        return [choices[0]]
    t = o.option_type(key)
    if t == list[str] | None:
        return ["audio", "video"]
    if t == bool | None:
        return []
    if t == int | None:
        return ["7"]
    return ["0.25"]


@pytest.mark.parametrize("flag,key", list(o.CONFIG_FLAGS.items()))
def test_each_flag_sets_its_config_key(flag, key):
    cmd = ROOT.commands["train"]
    words = [flag.split("/")[-1]] if "/" in flag else [flag]
    words = [w for v in _valid_value(key) for w in (flag, v)] if _valid_value(key) else words
    ctx = cmd.make_context("train", ["--data", "d", "--out", "r", *words])
    flags = {k: v for k, v in ctx.params.items() if k in {o.param_name(f) for f in o.CONFIG_FLAGS}}
    section, name = key.split(".")
    cfg = o.to_config(flags)
    value = cfg[section][name]
    if o.option_type(key) == list[str] | None:
        assert value == ["audio", "video"]
    elif o.option_type(key) == bool | None:
        assert value is ("/" not in flag)  # --unidirectional, --no-standardize: False
    else:
        assert str(value) in _valid_value(key)
    # and no other key is set
    others = [(s, n) for s, d in cfg.items() for n, v in d.items() if v is not None]
    assert others == [(section, name)]
