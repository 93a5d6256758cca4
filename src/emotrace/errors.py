"""One exception type for everything a user can get wrong.

The CLI turns an :class:`EmotraceError` into its message on stderr and exit code 2;
Python callers catch it like any other exception.
"""

from __future__ import annotations

from pathlib import Path


class EmotraceError(Exception):
    """Bad input: a file, an option or a run directory the user can fix.

    The message is one paragraph that names the file (and line/column where one
    exists) and says how to fix it.
    """


class EmotraceWarning(UserWarning):
    """Something the user should know that does not stop the command (e.g. a corpus cache that
    cannot be written). The CLI prints it as one ``warning:`` line."""


def located(path: Path | str, message: str, *, line: int | None = None, column: str | None = None,
            fix: str | None = None) -> EmotraceError:
    """Build an :class:`EmotraceError` that names the place of the problem.

    >>> str(located("a.csv", "not a number", line=3, column="f1", fix="Write a number."))
    'a.csv, line 3, column f1: not a number. Write a number.'
    """
    where = str(path)
    if line is not None:
        where += f", line {line}"
    if column is not None:
        where += f", column {column}"
    text = f"{where}: {message}."
    if fix:
        text += f" {fix}"
    return EmotraceError(text)
