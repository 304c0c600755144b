"""The one error type a user sees.

Every reader, parser and validator raises :class:`SpinesimError` with a message that names the
file (and the field, slice or line), says what was found, and what to do. Front-ends print the
message and never a traceback.
"""

from __future__ import annotations

from os import PathLike


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
        self.problem = problem
        self.path = None if path is None else str(path)
        self.where = where
        self.hint = hint
        super().__init__(self._message())

    def _message(self) -> str:
        parts = [p for p in (self.path, self.where) if p]
        text = ": ".join(parts + [self.problem])
        if self.hint:
            text += ". " + self.hint[0].upper() + self.hint[1:]
            if not text.endswith("."):
                text += "."
        return text
