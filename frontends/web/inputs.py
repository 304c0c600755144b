"""What the browser sends, checked: a click or a changed field carries values a person (or anything
that reaches the page) chose, so each is checked before it reaches the engine, and a value that makes
no sense becomes a :class:`SpinesimError` naming the field, shown like a refused action."""

from __future__ import annotations

import math

from anatomy_models.errors import SpinesimError

# Largest database id the browser may name (SQLite and PostgreSQL integers are 64-bit; ids stay far below).
MAX_ID = 2**31 - 1
# The largest WebSocket message a browser may send, bytes (whole, after the wslink chunks are joined).
# A click or a changed field is a few hundred bytes; the portal and the workstation both hold this line.
MAX_MESSAGE_BYTES = 1024 * 1024


# How much of a refused value a message repeats, characters.
SHOWN_CHARS = 60


def clipped(value) -> str:
    """``repr(value)``, cut to :data:`SHOWN_CHARS` characters: a refused value from the browser may be huge.

    Examples
    --------
    >>> clipped("L4"), clipped("x" * 1000)[-30:]
    ("'L4'", 'xxxxxxxxxxx… (1002 characters)')
    """
    shown = repr(value)
    return shown if len(shown) <= SHOWN_CHARS else f"{shown[:SHOWN_CHARS - 3]}… ({len(shown)} characters)"


def choice(value, options, what: str) -> str:
    """One of ``options`` (names) chosen in the browser, or a SpinesimError naming the field."""
    if not isinstance(value, str) or value not in options:
        raise SpinesimError(f"unknown {what} {clipped(value)}", hint=f"choose one of: {', '.join(sorted(options))}")
    return value


def integer(value, what: str, low: int, high: int) -> int:
    """A whole number from the browser in [low, high], or a SpinesimError naming the field.

    Examples
    --------
    >>> integer("7", "attempt", 1, 10), integer(3.0, "step", 0, 5)
    (7, 3)
    >>> integer(2.5, "attempt", 1, 10)
    Traceback (most recent call last):
    ...
    anatomy_models.errors.SpinesimError: attempt: 2.5 is not a whole number
    """
    as_float = number(value, what)
    if as_float != int(as_float):
        raise SpinesimError(f"{what}: {clipped(value)} is not a whole number")
    if not low <= as_float <= high:
        raise SpinesimError(f"{what}: {clipped(int(as_float))} is out of range ({low}-{high})")
    return int(as_float)


def number(value, what: str) -> float:
    """A number typed in the browser (a number, or text of one), or a SpinesimError naming the field.

    Examples
    --------
    >>> number("2.5", "step"), number(3, "step")
    (2.5, 3.0)
    >>> number(True, "step")
    Traceback (most recent call last):
    ...
    anatomy_models.errors.SpinesimError: step: True is not a number
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or (isinstance(value, str) and len(value) > 64):
        raise SpinesimError(f"{what}: {clipped(value)} is not a number")
    try:
        as_float = float(value)
    except (ValueError, OverflowError):
        raise SpinesimError(f"{what}: {clipped(value)} is not a number") from None
    if not math.isfinite(as_float):
        raise SpinesimError(f"{what}: {clipped(value)} is not a finite number")
    return as_float
