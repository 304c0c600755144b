"""What a trainee does, as small JSON records, and the append-only log they are kept in.

Every action has a ``type`` and a timestamp ``t`` in seconds since the attempt started; the log is
JSON Lines, one action per line, optionally headed by one line naming the scenario and seed::

    {"spinesim_log": 1, "scenario": "ilesi-l4l5-left", "seed": 7}
    {"type": "place_needle", "t": 4.0, "entry": [12, 60, -20], "aim": [3, 8, -2]}
    {"type": "advance", "t": 6.5, "mm": 20}

Coordinates are LPS millimetres; angles are degrees. Lines are written and flushed to disk (fsync) as
they happen, so a crash loses at most the line being written: :func:`read_log` loads a log cut at any
byte up to its last whole line and reports the cut line instead of failing.

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
``fluoro_shot``   one exposure: ``mode`` pulse | live | dsa and optional ``seconds`` of beam-on time.
``place_probe``   ultrasound probe pose: ``position``, ``direction`` (beam axis), ``lateral``
                  (in-plane axis); optional machine settings ``kind`` (linear | curvilinear),
                  ``depth_mm``, ``gain_db``, ``frequency_mhz`` (the kind's preset where absent) and
                  a ``view`` name: the fields of a :class:`scenarios.poses.ProbePose`
                  (``PlaceProbe.pose``). Replaying the log re-renders every ultrasound frame.
``inject_contrast`` ``ml`` of contrast at the tip.
``check_loss_of_resistance`` a press on the loss-of-resistance syringe.
``show_hint``     the trainee reveals the scenario's next hint (part of the attempt: scoring may
                  deduct for it, see ``Rubric.hint_deduction``).
``finish``        the trainee declares the attempt done.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from anatomy_models.errors import SpinesimError
from scenarios.poses import (CArmPose, Point, PrimaryDeg, ProbeDepthMm, ProbeFrequencyMhz, ProbeGainDb, ProbeKind,
                             ProbePose, ProbeViewName, SecondaryDeg)

LOG_FORMAT_VERSION = 1
PoseT = TypeVar("PoseT", CArmPose, ProbePose)


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    t: float = Field(ge=0.0, description="seconds since the attempt started")


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
    depth_mm: float = Field(0.0, ge=0.0)
    bevel_roll_deg: float = 0.0


class Advance(_Action):
    type: Literal["advance"] = "advance"
    mm: float = Field(gt=0.0, le=300.0)


class Withdraw(_Action):
    type: Literal["withdraw"] = "withdraw"
    mm: float = Field(gt=0.0, le=300.0)


class Redirect(_Aimed):
    type: Literal["redirect"] = "redirect"
    bevel_roll_deg: float | None = None


class SetCarm(_Action):
    """The C-arm moves to :attr:`pose`; the record holds the pose's fields (:class:`CArmPose`)."""

    type: Literal["set_carm"] = "set_carm"
    primary_deg: PrimaryDeg = 0.0
    secondary_deg: SecondaryDeg = 0.0
    setup: str | None = None
    isocenter: Point | None = None

    @property
    def pose(self) -> CArmPose:
        return _pose_of(self, CArmPose)


class FluoroShot(_Action):
    type: Literal["fluoro_shot"] = "fluoro_shot"
    mode: Literal["pulse", "live", "dsa"] = "pulse"
    seconds: float | None = Field(None, gt=0.0, le=600.0)  # beam-on time; a pulse shot is a tap (imaging.dose)


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
    ml: float = Field(gt=0.0, le=20.0)


class CheckLossOfResistance(_Action):
    type: Literal["check_loss_of_resistance"] = "check_loss_of_resistance"


class ShowHint(_Action):
    type: Literal["show_hint"] = "show_hint"


class Finish(_Action):
    type: Literal["finish"] = "finish"


Action = Annotated[Union[PlaceNeedle, Advance, Withdraw, Redirect, SetCarm, FluoroShot, PlaceProbe, InjectContrast,
                         CheckLossOfResistance, ShowHint, Finish], Field(discriminator="type")]
ACTION_TYPES: tuple[str, ...] = ("place_needle", "advance", "withdraw", "redirect", "set_carm", "fluoro_shot",
                                 "place_probe", "inject_contrast", "check_loss_of_resistance", "show_hint", "finish")
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
        raise SpinesimError(f"an action must be a JSON object, got {record!r}", path=path, where=where)
    kind = record.get("type")
    if kind not in ACTION_TYPES:
        raise SpinesimError(f"unknown action {kind!r}" if kind is not None else "the action has no 'type'",
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
    given_text = "" if first["type"] in ("missing", "value_error") or isinstance(given, dict) else f" (got {given!r})"
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


def read_log(path: str | Path) -> LogContents:
    """Read an action log (JSON Lines), tolerating a last line cut by a crash.

    A damaged line in the middle of the file is an error naming its line; a last line without its
    newline that does not parse is reported in ``truncated`` and dropped.
    """
    path = Path(path)
    try:
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
            text = raw.decode("utf-8")
            record = json.loads(text) if text.strip() else None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            if is_last:
                contents.truncated = f"{path}: line {number} is cut short ({len(raw)} bytes, {error}); it was dropped"
                break
            raise SpinesimError(f"not a JSON record ({error})", path=path, where=where,
                                hint="each line of an action log is one JSON object") from None
        if record is not None:
            if number == 1 and isinstance(record, dict) and "spinesim_log" in record:
                if record["spinesim_log"] != LOG_FORMAT_VERSION:
                    raise SpinesimError(f"log format version {record['spinesim_log']!r} is not supported", path=path,
                                        where=where, hint=f"this spinesim reads version {LOG_FORMAT_VERSION}")
                contents.header = record
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
