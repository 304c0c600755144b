"""What the browser sends, checked: a click or a changed field carries values a person (or anything
that reaches the page) chose, so each is checked before it reaches the engine, and a value that makes
no sense becomes a :class:`SpinesimError` naming the field, shown like a refused action."""

from __future__ import annotations

import math
import re

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


# The trainee's names for the fields of the actions a page makes (action type, field): what they typed it
# into and its unit, so that a refused value reads as "The step must be more than 0 mm", not as the
# engine's "advance: field 'mm': must be greater than 0".
_FIELD_WORDS = {("advance", "mm"): ("the step", "mm"), ("withdraw", "mm"): ("the step", "mm"),
                ("inject_contrast", "ml"): ("the contrast volume", "mL"),
                ("inject_medication", "ml"): ("the injectate volume", "mL"),
                ("fluoro_shot", "seconds"): ("the live or DSA run", "s"),
                ("set_carm", "primary_deg"): ("the LAO / RAO angle", "°"),
                ("set_carm", "secondary_deg"): ("the cranial / caudal tilt", "°"),
                ("place_needle", "bevel_roll_deg"): ("the bevel", "°"),
                ("redirect", "bevel_roll_deg"): ("the bevel", "°"),
                ("place_probe", "depth_mm"): ("the ultrasound depth", "mm"),
                ("place_probe", "gain_db"): ("the gain", "dB"),
                ("place_probe", "frequency_mhz"): ("the frequency", "MHz")}
_BOUNDS = ((r"must be greater than or equal to (\S+)", "must be at least {} {}"),
           (r"must be greater than (\S+)", "must be more than {} {}"),
           (r"must be less than or equal to (\S+)", "can be at most {} {}"),
           (r"must be less than (\S+)", "must be less than {} {}"))


def trainee_words(error: SpinesimError) -> SpinesimError:
    """The engine's refusal of a value the trainee typed, in the trainee's words: the control it was typed
    into, the allowed range with its unit and what was typed. Any other refusal is returned as it is.

    Examples
    --------
    >>> str(trainee_words(SpinesimError("advance: field 'mm': must be greater than 0 (got -5)")))
    'The step must be more than 0 mm (you entered -5)'
    >>> refused = SpinesimError("inject_contrast: field 'ml': must be less than or equal to 20 (got 50.0)")
    >>> str(trainee_words(refused))
    'The contrast volume can be at most 20 mL (you entered 50.0)'
    >>> str(trainee_words(SpinesimError("no attempt in progress")))
    'no attempt in progress'
    """
    found = re.fullmatch(r"(\w+): field '(\w+)': (.*?)(?: \(got (.*)\))?", error.problem)
    if found is None or (found.group(1), found.group(2)) not in _FIELD_WORDS:
        return error
    name, unit = _FIELD_WORDS[found.group(1), found.group(2)]
    problem = found.group(3)
    for pattern, words in _BOUNDS:
        bound = re.fullmatch(pattern, problem)
        if bound is not None:
            problem = words.format(bound.group(1), unit)
            break
    typed = f" (you entered {found.group(4)})" if found.group(4) else ""
    return SpinesimError(f"{name[0].upper()}{name[1:]} {problem}{typed}", hint=error.hint)
