"""What a trainee does, as small JSON records, and the append-only log they are kept in.

Every action has a ``type`` and a timestamp ``t`` in seconds since the attempt started; the log is
JSON Lines, one action per line, optionally headed by one line naming the scenario and seed::

    {"spinesim_log": 1, "scenario": "ilesi-l4l5-left", "seed": 7}
    {"type": "place_needle", "t": 4.0, "entry": [12, 60, -20], "aim": [3, 8, -2]}
    {"type": "advance", "t": 6.5, "mm": 20}

Coordinates are LPS millimetres; angles are degrees. Lines are written and flushed to disk (fsync) as
they happen, so a crash loses at most the line being written: :func:`read_log` loads a log cut at any
byte up to its last whole line and reports the cut line instead of failing.

A log is read under limits (:data:`MAX_LOG_BYTES`, :data:`MAX_LOG_LINE_BYTES`, :data:`MAX_JSON_DEPTH`),
checked before a line is parsed; a UTF-8 byte-order mark (some editors write one) is skipped. Every number
must be a finite JSON number in its field's range (``true`` or ``"5"`` where a number belongs is refused),
points lie within :data:`scenarios.poses.MAX_COORDINATE_MM` of the origin, and the header's seed is an
integer in 0..2**32-1.

Actions
-------
``place_needle``  ``entry`` (a picked point, snapped to the skin along the needle) and either
                  ``direction`` or ``aim`` (a point to aim at); optional ``depth_mm`` (default 0)
                  and ``bevel_roll_deg``. Starts a new pass.
``advance``       ``mm`` (> 0) deeper along the shaft. Bone, and the hub, stop it.
``withdraw``      ``mm`` (> 0) back along the shaft; to 0 takes the needle out.
``redirect``      pull back to the subcutaneous layer and re-aim (``direction`` or ``aim``) about
                  the skin entry point; counts as a new pass.
``set_carm``      C-arm pose: ``primary_deg`` (LAO +, RAO -), ``secondary_deg`` (cranial +, caudal -),
                  optional ``setup`` name and ``isocenter``: the fields of a
                  :class:`scenarios.poses.CArmPose` (``SetCarm.pose``).
``fluoro_shot``   one exposure: ``mode`` pulse | live | dsa, optional ``seconds`` of beam-on time and
                  ``frames_per_second`` (the pulse rate of a live run, 1-30; the C-arm's own
                  where absent; DSA acquires at its own rate): a run is a cine of
                  ``seconds x`` the rate frames.
``place_probe``   ultrasound probe pose: ``position``, ``direction`` (beam axis), ``lateral``
                  (in-plane axis); optional machine settings ``kind`` (linear | curvilinear),
                  ``depth_mm``, ``gain_db``, ``frequency_mhz`` (the kind's preset where absent) and
                  a ``view`` name: the fields of a :class:`scenarios.poses.ProbePose`
                  (``PlaceProbe.pose``). Replaying the log re-renders every ultrasound frame.
``inject_contrast`` ``ml`` of contrast at the tip: the test dose, radio-opaque, its spread imaged.
``read_contrast`` the trainee names the last contrast injection's pattern from the images: ``reading``
                  one of epidural, intrathecal, subdural, vascular, intra_articular, intradiscal,
                  soft_tissue (:data:`ContrastReading`); scored against where the contrast went.
``inject_medication`` ``ml`` of the therapeutic injectate at the tip, ``agent`` one of :data:`AGENTS`
                  (clinical.md §2.2, §2.4); not radio-opaque: no image shows it.
``check_loss_of_resistance`` a press on the loss-of-resistance syringe.
``stimulate``     RF cannula only: ``mode`` sensory (50 Hz) | motor (2 Hz) at ``volts``; the patient's
                  response (:mod:`simulator.needle.ablation`).
``lesion``        RF cannula only: a heat lesion at ``temperature_c`` for ``seconds`` around the active tip.
``show_hint``     the trainee reveals the scenario's next hint (part of the attempt: scoring may
                  deduct for it, see ``Rubric.hint_deduction``).
``finish``        the trainee declares the attempt done.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, Strict, TypeAdapter, ValidationError, model_validator

from anatomy_models.errors import SpinesimError, quoted
from scenarios.poses import (CArmPose, FieldCm, Number, Point, PrimaryDeg, ProbeDepthMm, ProbeFrequencyMhz, ProbeGainDb,
                             ProbeKind, ProbePose, ProbeViewName, SecondaryDeg, ShortName, Shutters)

LOG_FORMAT_VERSION = 1
# Temperatures and times an RF generator offers for a conventional lesion (clinical.md §2.5: 80-85 °C,
# up to 90 s a cycle [S39][S40]): what a lesion action accepts. Kept here, not with the lesion model, so
# that reading a log (the web portal, the store) imports no numerics.
TEMPERATURE_RANGE_C = (60.0, 90.0)
SECONDS_RANGE = (30.0, 180.0)
PoseT = TypeVar("PoseT", CArmPose, ProbePose)

MAX_LOG_BYTES = 64 * 1024 * 1024  # bytes of one action log (an attempt of thousands of actions is < 1 MB)
MAX_LOG_LINE_BYTES = 64 * 1024  # bytes of one line (an action is < 300 bytes)
MAX_JSON_DEPTH = 8  # nesting of arrays and objects in one line (an action needs 2)
MAX_ATTEMPT_S = 7 * 24 * 3600.0  # the latest timestamp, s: a week
MAX_NEEDLE_DEPTH_MM = 300.0  # inserted depth of a placed needle, mm (longer than any needle, clinical.md §2)
MAX_SEED = 2**32 - 1  # seeds are unsigned 32-bit, as in the scenario
_BOM = b"\xef\xbb\xbf"
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?')

Degrees = Annotated[float, Field(ge=-360.0, le=360.0), Number]
# The injectates of clinical.md §2.2 and §2.4: local anaesthetic (lidocaine, bupivacaine), a non-particulate
# steroid (dexamethasone, the transforaminal choice [S1][S19]) or a particulate one (the embolic risk of §3 [S53]).
Agent = Literal["local_anaesthetic", "steroid_nonparticulate", "steroid_particulate"]
# What a physician can call a contrast pattern on the monitor (an artery and a vein are both "vascular").
ContrastReading = Literal["epidural", "intrathecal", "subdural", "vascular", "intra_articular", "intradiscal",
                          "soft_tissue"]
AGENTS: tuple[str, ...] = ("local_anaesthetic", "steroid_nonparticulate", "steroid_particulate")


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    t: Annotated[float, Field(ge=0.0, le=MAX_ATTEMPT_S, description="seconds since the attempt started"), Number]


class _Aimed(_Action):
    """An action that sets the needle's direction: a ``direction`` vector or an ``aim`` point."""

    direction: Point | None = None
    aim: Point | None = None

    @model_validator(mode="after")
    def _one_way_to_aim(self):
        if (self.direction is None) == (self.aim is None):
            raise ValueError("give either 'direction' (a vector) or 'aim' (a point to aim at), not both or neither")
        if self.direction is not None and math.hypot(*self.direction) < 1e-9:
            raise ValueError("'direction' must not be the zero vector")
        return self


def _pose_of(action: _Action, pose_type: type[PoseT]) -> PoseT:
    """The pose whose fields ``action`` carries (a device-moving action's record is its pose's fields)."""
    return pose_type(**{name: getattr(action, name) for name in pose_type.model_fields})


class PlaceNeedle(_Aimed):
    type: Literal["place_needle"] = "place_needle"
    entry: Point
    depth_mm: Annotated[float, Field(ge=0.0, le=MAX_NEEDLE_DEPTH_MM), Number] = 0.0
    bevel_roll_deg: Degrees = 0.0
    # Which needle of the scenario's tray (Scenario.tray: 0 its ``needle``, then its ``needle_options``).
    needle: Annotated[int, Field(ge=0, le=5), Strict()] | None = None


class Advance(_Action):
    type: Literal["advance"] = "advance"
    mm: Annotated[float, Field(gt=0.0, le=MAX_NEEDLE_DEPTH_MM), Number]


class Withdraw(_Action):
    type: Literal["withdraw"] = "withdraw"
    mm: Annotated[float, Field(gt=0.0, le=MAX_NEEDLE_DEPTH_MM), Number]


class Redirect(_Aimed):
    type: Literal["redirect"] = "redirect"
    bevel_roll_deg: Degrees | None = None


class SetCarm(_Action):
    """The C-arm moves to :attr:`pose`; the record holds the pose's fields (:class:`CArmPose`)."""

    type: Literal["set_carm"] = "set_carm"
    primary_deg: PrimaryDeg = 0.0
    secondary_deg: SecondaryDeg = 0.0
    setup: ShortName | None = None
    isocenter: Point | None = None
    field_cm: FieldCm | None = None
    shutters: Shutters | None = None

    @property
    def pose(self) -> CArmPose:
        return _pose_of(self, CArmPose)


class FluoroShot(_Action):
    type: Literal["fluoro_shot"] = "fluoro_shot"
    mode: Literal["pulse", "live", "dsa"] = "pulse"
    # Beam-on time, s; a pulse shot is a tap (imaging.dose).
    seconds: Annotated[float, Field(gt=0.0, le=600.0), Number] | None = None
    # Pulse rate of the run, frames/s (pain-clinic C-arms pulse at 4-15 p/s; imaging.dose.Technique).
    frames_per_second: Annotated[float, Field(ge=1.0, le=30.0), Number] | None = None
    # A live run screened while a control was held (the foot pedal): the beam was on for the ``seconds``
    # BEFORE ``t``, while other actions (advances) happened; its frames show the needle as it was at each
    # (simulator.session.shots.render_run). Otherwise a run starts at ``t`` with everything else still.
    held: Literal[True] | None = None

    @model_validator(mode="after")
    def _held_is_a_live_run(self):
        if self.held and (self.mode != "live" or self.seconds is None):
            raise ValueError("a held run ('held': true) is a live run with its 'seconds': give mode 'live' and seconds")
        if self.held and self.seconds > self.t:
            raise ValueError(f"a held run of {self.seconds:g} s ends at t = {self.t:g} s, so it would start before "
                             "the attempt did: give at most t seconds")
        return self


class PlaceProbe(_Action):
    """The probe goes to :attr:`pose`; the record holds the pose's fields (:class:`ProbePose`)."""

    type: Literal["place_probe"] = "place_probe"
    position: Point
    direction: Point
    lateral: Point
    kind: ProbeKind | None = None
    depth_mm: ProbeDepthMm | None = None
    gain_db: ProbeGainDb | None = None
    frequency_mhz: ProbeFrequencyMhz | None = None
    view: ProbeViewName | None = None

    @property
    def pose(self) -> ProbePose:
        return _pose_of(self, ProbePose)


class InjectContrast(_Action):
    type: Literal["inject_contrast"] = "inject_contrast"
    ml: Annotated[float, Field(gt=0.0, le=20.0), Number]


class InjectMedication(_Action):
    """The therapeutic injection (the injectate), apart from the contrast test that precedes it."""

    type: Literal["inject_medication"] = "inject_medication"
    ml: Annotated[float, Field(gt=0.0, le=20.0), Number]
    agent: Agent


class ReadContrast(_Action):
    """The trainee's reading of the last contrast injection's pattern, from the images."""

    type: Literal["read_contrast"] = "read_contrast"
    reading: ContrastReading


class CheckLossOfResistance(_Action):
    type: Literal["check_loss_of_resistance"] = "check_loss_of_resistance"


class Stimulate(_Action):
    """RF stimulation through the cannula: sensory at 50 Hz or motor at 2 Hz (clinical.md §2.5)."""

    type: Literal["stimulate"] = "stimulate"
    mode: Literal["sensory", "motor"]
    volts: Annotated[float, Field(gt=0.0, le=5.0), Number]


class Lesion(_Action):
    """A radiofrequency heat lesion (clinical.md §2.5: 80-85 °C, 90 s a cycle [S39][S40])."""

    type: Literal["lesion"] = "lesion"
    temperature_c: Annotated[float, Field(ge=TEMPERATURE_RANGE_C[0], le=TEMPERATURE_RANGE_C[1]), Number] = 80.0
    seconds: Annotated[float, Field(ge=SECONDS_RANGE[0], le=SECONDS_RANGE[1]), Number] = 90.0


class ShowHint(_Action):
    type: Literal["show_hint"] = "show_hint"


class Finish(_Action):
    type: Literal["finish"] = "finish"


Action = Annotated[Union[PlaceNeedle, Advance, Withdraw, Redirect, SetCarm, FluoroShot, PlaceProbe, InjectContrast,
                         ReadContrast, InjectMedication, CheckLossOfResistance, Stimulate, Lesion, ShowHint, Finish],
                   Field(discriminator="type")]
ACTION_TYPES: tuple[str, ...] = ("place_needle", "advance", "withdraw", "redirect", "set_carm", "fluoro_shot",
                                 "place_probe", "inject_contrast", "read_contrast", "inject_medication",
                                 "check_loss_of_resistance", "stimulate", "lesion", "show_hint", "finish")
_ADAPTER: TypeAdapter = TypeAdapter(Action)


def parse_action(record: Any, *, path: str | Path | None = None, where: str | None = None):
    """An action from a JSON-like record (dict), or a :class:`SpinesimError` saying what is wrong.

    Examples
    --------
    >>> parse_action({"type": "advance", "t": 3, "mm": 5})
    Advance(t=3.0, type='advance', mm=5.0)
    >>> parse_action({"type": "advance", "t": 3, "mm": -5})
    Traceback (most recent call last):
    ...
    anatomy_models.errors.SpinesimError: advance: field 'mm': must be greater than 0 (got -5)
    """
    if not isinstance(record, dict):
        raise SpinesimError(f"an action must be a JSON object, got {quoted(record)}", path=path, where=where)
    kind = record.get("type")
    if kind not in ACTION_TYPES:
        raise SpinesimError(f"unknown action {quoted(kind)}" if kind is not None else "the action has no 'type'",
                            path=path, where=where, hint=f"use one of: {', '.join(ACTION_TYPES)}")
    try:
        return _ADAPTER.validate_python(record)
    except ValidationError as error:
        raise SpinesimError(f"{kind}: {describe_validation_error(error, skip=1)}", path=path, where=where) from None


def describe_validation_error(error: ValidationError, *, skip: int = 0) -> str:
    """The first problem of a pydantic error in words: field, what is expected, what was given.

    ``skip`` drops leading location parts (a discriminated union's tag).
    """
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"][skip:])
    message = first["msg"]
    message = message.replace("Input should be ", "must be ").replace("Value error, ", "")
    given = first.get("input")
    plain = first["type"] in ("missing", "value_error") or isinstance(given, dict)
    given_text = "" if plain else f" (got {quoted(given)})"
    if first["type"] == "extra_forbidden":
        return f"unknown field {location!r}"
    if first["type"] == "missing":
        return f"missing field {location!r}"
    return (f"field {location!r}: " if location else "") + message + given_text


def action_record(action) -> dict:
    """The JSON record of an action (no empty optional fields)."""
    return action.model_dump(mode="json", exclude_none=True)


# --------------------------------------------------------------------------- the log on disk
@dataclass
class LogContents:
    """What :func:`read_log` found.

    Parameters
    ----------
    header : dict
        The header line (empty for a plain list of actions).
    actions : list
        The actions in order.
    truncated : str, optional
        A description of a cut last line that was dropped (a crash while it was being written).
    whole_bytes : int
        Bytes of the file up to and including the last whole line (where appending continues).
    path : Path, optional
        The file it was read from (messages name it).
    """

    header: dict = field(default_factory=dict)
    actions: list = field(default_factory=list)
    truncated: str | None = None
    whole_bytes: int = 0
    path: Path | None = None


class LogHeader(BaseModel):
    """The first line of a log written by a session: the format version, the scenario's id, the seed and,
    for an attempt at a drawn patient, that patient's seed (``patient``; absent: the case's own patient)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spinesim_log: Annotated[int, Strict()]
    scenario: Annotated[str, Strict(), Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")] | None = None
    seed: Annotated[int, Strict(), Field(ge=0, le=MAX_SEED)] | None = None
    patient: Annotated[int, Strict(), Field(ge=0, le=MAX_SEED)] | None = None


def _header(record: dict, path: Path, where: str) -> dict:
    """``record`` checked as a log header (:class:`LogHeader`), or a SpinesimError naming the field."""
    if record["spinesim_log"] != LOG_FORMAT_VERSION or isinstance(record["spinesim_log"], bool):
        raise SpinesimError(f"log format version {quoted(record['spinesim_log'])} is not supported", path=path,
                            where=where, hint=f"this spinesim reads version {LOG_FORMAT_VERSION}")
    try:
        LogHeader.model_validate(record)
    except ValidationError as error:
        raise SpinesimError(f"the header: {describe_validation_error(error)}", path=path, where=where,
                            hint="the header names the scenario's id and an integer seed in 0..2**32-1") from None
    return record


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number an action log may hold")


def _json_depth(text: str) -> int:
    """How deeply arrays and objects nest in the JSON ``text`` (brackets inside strings do not count)."""
    depth = deepest = 0
    for bracket in re.findall(r"[\[\]{}]", _JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _record(raw: bytes, path: Path, where: str) -> Any:
    """The JSON value of one log line (None for a blank one) under the limits; a line that does not
    parse raises UnicodeDecodeError or json.JSONDecodeError, a line over a limit a SpinesimError."""
    if len(raw) > MAX_LOG_LINE_BYTES:
        raise SpinesimError(f"the line is {len(raw)} bytes long, more than the {MAX_LOG_LINE_BYTES} an action may take",
                            path=path, where=where, hint="each line of an action log is one small JSON object")
    text = raw.decode("utf-8")
    if not text.strip():
        return None
    if _json_depth(text) > MAX_JSON_DEPTH:
        raise SpinesimError(f"arrays and objects nest deeper than {MAX_JSON_DEPTH} levels", path=path, where=where,
                            hint="an action is a flat JSON object of numbers, words and [x, y, z] points")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError:
        raise
    except ValueError as error:  # NaN/Infinity, or an integer of thousands of digits
        raise SpinesimError(f"a number cannot be read ({error})", path=path, where=where,
                            hint="numbers in an action log are finite and of ordinary size") from None


def read_log(path: str | Path) -> LogContents:
    """Read an action log (JSON Lines), tolerating a last line cut by a crash.

    A damaged line in the middle of the file is an error naming its line; a last line without its
    newline that does not parse is reported in ``truncated`` and dropped. A UTF-8 byte-order mark at
    the start is skipped; the limits of the module docstring are checked before parsing.
    """
    path = Path(path)
    try:
        size_bytes = path.stat().st_size
        if size_bytes > MAX_LOG_BYTES:
            raise SpinesimError(f"the action log is {size_bytes} bytes, more than the {MAX_LOG_BYTES} allowed",
                                path=path, hint="is this the right file?")
        data = path.read_bytes()
    except OSError as error:
        raise SpinesimError(f"cannot read the action log: {error.strerror or error}", path=path) from None
    contents = LogContents(path=path)
    lines = data.split(b"\n")
    position = 0
    for number, raw in enumerate(lines, start=1):
        is_last = number == len(lines)
        if is_last and raw == b"":
            break
        where = f"line {number}"
        try:
            record = _record(raw[len(_BOM):] if number == 1 and raw.startswith(_BOM) else raw, path, where)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            if is_last:
                contents.truncated = f"{path}: line {number} is cut short ({len(raw)} bytes, {error}); it was dropped"
                break
            raise SpinesimError(f"not a JSON record ({error})", path=path, where=where,
                                hint="each line of an action log is one JSON object") from None
        if record is not None:
            if number == 1 and isinstance(record, dict) and "spinesim_log" in record:
                contents.header = _header(record, path, where)
            else:
                contents.actions.append(parse_action(record, path=path, where=where))
        position += len(raw) + (0 if is_last else 1)
        contents.whole_bytes = position
    return contents


class LogWriter:
    """Appends action records to a JSON Lines file, each one flushed and fsynced before returning.

    Opening an existing log keeps its whole lines and cuts off a damaged last line, so that a
    resumed attempt continues a clean file.
    """

    def __init__(self, path: str | Path, header: dict | None = None, *, keep_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = open(self.path, "r+b" if keep_bytes is not None else "wb")
        if keep_bytes is not None:
            self._file.truncate(keep_bytes)
            self._file.seek(max(keep_bytes - 1, 0))
            if keep_bytes and self._file.read(1) != b"\n":
                # The last whole record lost only its newline: end its line before appending.
                self._file.write(b"\n")
            self._file.seek(0, os.SEEK_END)
        elif header is not None:
            self._write({"spinesim_log": LOG_FORMAT_VERSION} | header)

    def append(self, record: dict) -> None:
        self._write(record)

    def _write(self, record: dict) -> None:
        self._file.write((json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()
