"""The one error type a user sees.

Every reader, parser and validator raises :class:`SpinesimError` with a message that names the
file (and the field, slice or line), says what was found, and what to do. Front-ends print the
message and never a traceback.
"""

from __future__ import annotations

import reprlib
from os import PathLike
from typing import Any

# Longest part of a message (the problem, the place, the path or the hint), characters: a longer one is cut
# in the middle, so that a 10 MB log line or value is never echoed whole to a terminal, a page or a log.
MAX_MESSAGE_PART_CHARS = 1000
# Longest user value quoted inside a message (:func:`quoted`), characters.
MAX_QUOTED_VALUE_CHARS = 120


def shorten(text: str, max_chars: int = MAX_MESSAGE_PART_CHARS) -> str:
    """``text``, or its start and end around a note of how many characters were cut out of the middle.

    Examples
    --------
    >>> shorten("short")
    'short'
    >>> shorten("a" * 50 + "b" * 50, max_chars=60)
    'aaaaaaaaaaaaaaa[... 70 characters cut ...]bbbbbbbbbbbbbbb'
    """
    if len(text) <= max_chars:
        return text
    keep = max(max_chars - 30, 2) // 2
    return f"{text[:keep]}[... {len(text) - 2 * keep} characters cut ...]{text[-keep:]}"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple = 3, 6, 6, 6
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = MAX_QUOTED_VALUE_CHARS


def quoted(value: Any) -> str:
    """The ``repr`` of a user value for a message, bounded in length and nesting however big the value is
    (a long string, a deep or aliased YAML structure).

    Examples
    --------
    >>> quoted("L4-L5")
    "'L4-L5'"
    >>> len(quoted("x" * 10**7)) <= MAX_QUOTED_VALUE_CHARS + 10
    True
    >>> quoted([[[[1]]]])
    '[[[[...]]]]'
    """
    return shorten(_REPR.repr(value), MAX_QUOTED_VALUE_CHARS)


class SpinesimError(Exception):
    """An error caused by input a user can fix.

    Parameters
    ----------
    problem : str
        What is wrong, e.g. ``"missing ImagePositionPatient (0020,0032)"``.
    path : str or PathLike, optional
        The file or folder the problem is in.
    where : str, optional
        The place inside the file: a field, tag, slice or line, e.g. ``"slice 12"`` or ``"line 7, field 'level'"``.
    hint : str, optional
        What the user can do about it.

    Examples
    --------
    >>> str(SpinesimError("spacing is NaN", path="ct.nrrd", where="field 'space directions'",
    ...                   hint="re-export the volume with a valid spacing"))
    "ct.nrrd: field 'space directions': spacing is NaN. Re-export the volume with a valid spacing."
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | PathLike[str] | None = None,
        where: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.problem = shorten(problem)
        self.path = None if path is None else shorten(str(path))
        self.where = None if where is None else shorten(where)
        self.hint = None if hint is None else shorten(hint)
        super().__init__(self._message())

    def _message(self) -> str:
        parts = [p for p in (self.path, self.where) if p]
        text = ": ".join(parts + [self.problem])
        if self.hint:
            text += ". " + self.hint[0].upper() + self.hint[1:]
            if not text.endswith((".", "?", "!")):
                text += "."
        return text
