"""Command line: a thin typer layer over the Python API (one command per verb).

Each module of this package owns one group of verbs and adds them to the app in its
``register(app)``; ``MULTI`` in a module lists its options that take several values.
Bad input ends with exit code 2 and a one-paragraph message; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import errno
import gc
import importlib
import math
import re
import sys
import typing
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from emotrace.cli.common import INVOCATION, err, warn
from emotrace.errors import EmotraceError, EmotraceWarning
from emotrace.fileio import disk_full

#: the command modules, in the order ``emotrace --help`` lists them
COMMANDS = ("core", "recipes", "gold", "classes", "personalise", "tune", "report", "export", "extract",
            "fuse")

#: plain click help (not rich panels): at 80 columns it wraps descriptions instead of cutting
#: option names, and shows no metavar on flags
HELP = {"rich_markup_mode": None}
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Time-continuous, multimodal emotion recognition.", **HELP)


def _version(value: bool) -> None:
    if value:
        from emotrace._version import __version__

        print(f"emotrace {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
          ) -> None:
    """Time-continuous, multimodal emotion recognition."""


_modules = [importlib.import_module(f"emotrace.cli.{name}") for name in COMMANDS]
for _m in _modules:
    _m.register(app)
MULTI: tuple[str, ...] = tuple(opt for m in _modules for opt in m.MULTI)


def expand_multi(argv: list[str], names: tuple[str, ...] = MULTI) -> list[str]:
    """Let ``--features a b c`` mean ``--features a --features b --features c``.

    >>> expand_multi(["train", "--features", "a", "b", "--out", "r"])
    ['train', '--features', 'a', '--features', 'b', '--out', 'r']
    """
    out: list[str] = []
    current = None
    for tok in argv:
        if tok.startswith("-"):
            current = tok if tok in names else None
            out.append(tok)
        elif current is not None and out[-1] != current:
            out.extend([current, tok])
        else:
            out.append(tok)
    return out


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app, turns :class:`EmotraceError` (and an ``OSError`` that names a
    file, e.g. permission denied) into exit code 2.

    Usage errors (unknown option, bad value) are reported by typer itself, also with exit code 2.
    """
    args = expand_multi(list(sys.argv[1:] if argv is None else argv))
    INVOCATION[:] = args
    debug = "--debug" in args
    oom = None
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            check_values(args)
            app(args=args, prog_name="emotrace")
    except EmotraceError as e:
        if debug:
            raise
        # escape: messages hold brackets that rich would take for markup, e.g. "emotrace[export]"
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as e:
        if debug:
            raise
        if e.errno == errno.ENOSPC:
            _fail(disk_full(e.filename or "a file").args[0])
        if e.filename is None:
            _internal(e)
        blocker = _file_in_the_way(e)
        if blocker is not None:  # e.g. --out names a file where a folder is written
            inside = "" if blocker == Path(e.filename) else f" (to write {e.filename})"
            msg = (f"{blocker}: is a file, where a folder is needed{inside}. Pass another path, "
                   f"or move the file away.")
        else:  # a path the user gave cannot be read or written
            msg = f"{e.filename}: {e.strerror or e}. Check the path and its permissions."
        err.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as e:  # noqa: BLE001
        if debug:
            raise
        if not out_of_memory(e):
            _internal(e)
        asked = re.search(r"allocate (\d+) bytes", str(e))
        oom = (f" (tried to allocate {int(asked.group(1)) / 2**30:.1f} GiB)"
               if asked and int(asked.group(1)) >= 2**27 else "")
    if oom is None:
        return
    # reported after the except block, whose traceback still holds what filled the memory
    gc.collect()
    _fail(f"out of memory{oom}: the model or the data does not fit in this machine's memory. "
          f"Use a smaller --hidden, --layers, --batch-size or --win, or fewer feature sets.")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """An :class:`EmotraceWarning` as one ``warning:`` line (others as Python shows them)."""
    if issubclass(category, EmotraceWarning):
        warn([str(message)])
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _file_in_the_way(e: OSError) -> Path | None:
    """The file that stands where a folder on ``e.filename``'s path is needed (the path itself
    or one of its parents), when that is what went wrong."""
    if not isinstance(e, NotADirectoryError | FileExistsError):
        return None
    for p in (Path(e.filename), *Path(e.filename).parents):
        if p.exists():
            return None if p.is_dir() else p
    return None


def out_of_memory(e: BaseException) -> bool:
    """A failed allocation (``MemoryError``, or torch's "can't allocate memory")."""
    text = str(e).lower()
    return isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and (
        "can't allocate memory" in text or "not enough memory" in text
        or "out of memory" in text))


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(2)


#: options whose value is a path to write; an empty one is refused
OUTPUTS = ("--out",)


def _command(args: list[str]):
    """The click command that ``args`` invoke (after its group names)."""
    cmd = typer.main.get_command(app)
    for tok in args:  # typer's groups are click-like (typer may bring its own click)
        if tok not in getattr(cmd, "commands", {}):
            break
        cmd = cmd.commands[tok]
    return cmd


def _number_kind(param) -> type | None:
    """``float`` or ``int`` for an option taking such a number (typer's annotation, else click's
    type name), else None."""
    ann = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if ann is None:
        name = getattr(getattr(param, "type", None), "name", "")
        return float if name.startswith("float") else int if name.startswith("integer") else None
    args = typing.get_args(ann) or (ann,)
    return float if float in args else int if int in args else None


def check_values(args: list[str]) -> None:
    """Refuse values that parse but make no sense, before any command runs, for every command
    at once: an empty output path, a NaN or infinite number, a seed outside 0 .. 2**32 - 1."""
    from emotrace.config import MAX_SEED

    pairs = []
    for i, tok in enumerate(args):
        if tok.startswith("--") and "=" in tok:
            pairs.append(tuple(tok.split("=", 1)))
        elif tok.startswith("--") and i + 1 < len(args):
            pairs.append((tok, args[i + 1]))
    for opt, value in pairs:
        if opt in OUTPUTS and not value.strip():
            raise EmotraceError(f"{opt} is empty. Pass the path to write to.")
    cmd = _command(args)
    params = {o: p for p in getattr(cmd, "params", []) if p.param_type_name == "option"
              for o in p.opts}
    for opt, value in pairs:
        p = params.get(opt)
        if p is None:
            continue
        kind = _number_kind(p)
        if kind is float:
            try:
                number = float(value)
            except ValueError:
                continue  # click names the bad value
            if not math.isfinite(number):
                raise EmotraceError(f"{opt} {value}: not a finite number. Give a finite value.")
        if p.name == "seed" and kind is int:
            try:
                number = int(value)
            except ValueError:
                continue
            if not 0 <= number <= MAX_SEED:
                raise EmotraceError(f"{opt} {value}: a seed must be a whole number from 0 to "
                                    f"{MAX_SEED}.")


def _internal(e: Exception) -> None:
    err.print(f"[bold red]internal error:[/] {type(e).__name__}: {e}. Rerun with --debug for "
              f"the traceback, and please report it.", highlight=False, soft_wrap=True)
    sys.exit(1)
