"""Recording ids (and subjects, targets, feature sets) are names, never paths.

An id becomes a file name (``<id>.csv``, ``models/<subject>.pt``), so an id such as
``../../x/X`` or ``/abs/dir/v`` would read or write outside the folder it belongs to.
:func:`name_problem` says what is wrong with a name; :func:`path_for` is the one way the package
builds a path from a name: it refuses a bad name and checks that the resolved path stays inside
its folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from emotrace.errors import EmotraceError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a file name inside a folder, or ``None`` when it can.

    >>> name_problem("S01_1") is None
    True
    >>> name_problem("../x")
    "contains '/'"
    >>> name_problem(".hidden")
    "starts with '.'"
    """
    if not name:
        return "is empty"
    for sep in ("/", "\\"):
        if sep in name:
            return f"contains {sep!r}"
    if ".." in name:
        return "contains '..'"
    if name.startswith("."):
        return "starts with '.'"
    bad = _CONTROL.search(name)
    if bad:
        return f"contains the control character {bad.group()!r}"
    return None


FIX = ("Ids become file names (<id>.csv): use a plain name without '/', '\\', '..', a leading "
       "'.' or control characters.")


def check_name(name: str, *, what: str = "recording id", where: Path | str | None = None) -> str:
    """``name``, or a clear error when it is not a plain file name."""
    problem = name_problem(name)
    if problem:
        prefix = f"{where}: " if where is not None else ""
        raise EmotraceError(f"{prefix}{what} {name!r} {problem}. {FIX}")
    return name


def path_for(folder: Path | str, name: str, suffix: str = ".csv", *,
             what: str = "recording id") -> Path:
    """``folder/<name><suffix>``, refusing a ``name`` that is not a plain file name or whose
    path would resolve outside ``folder``.

    >>> path_for("preds", "S01_1").as_posix()
    'preds/S01_1.csv'
    """
    folder = Path(folder)
    check_name(name, what=what, where=folder)
    path = folder / f"{name}{suffix}"
    if (folder.resolve() / path.name).parent != folder.resolve() or path.name != f"{name}{suffix}":
        raise EmotraceError(f"{folder}: {what} {name!r} would make a path outside the folder. "
                            f"{FIX}")
    return path
