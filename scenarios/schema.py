"""The scenario: what case the trainee gets (anatomy, procedure, target, needle, imaging, start).

Scenarios are YAML files validated by the pydantic models below; errors name the file, the YAML line
and the field. Built-in scenarios live in ``scenarios/library/`` (package data).

A minimal scenario::

    id: ilesi-l4l5-left
    title: Interlaminar epidural, L4-L5, left paramedian
    brief: Left L5 radicular pain. Place a Tuohy needle in the dorsal epidural space at L4-L5.
    anatomy: {builtin: default}
    procedure: interlaminar_epidural
    target: {level: L4-L5, side: left}
    needle: {kind: tuohy, gauge: 20, length_in: 3.5}

Target spec by procedure (levels are interspaces, ``L4-L5``, for all but the medial branch block):

- ``interlaminar_epidural``: ``level``, ``side`` left/right (paramedian) or ``midline``.
- ``transforaminal_epidural``: ``level`` names the foramen (``L4-L5`` is the L4 foramen, under the
  L4 pedicle, where the L4 root exits), ``side``, ``approach`` subpedicular (default) or kambin.
- ``facet_intra_articular``: ``level`` (the joint ``L4-L5``), ``side``.
- ``medial_branch_block``: ``nerve`` (``"L4 medial branch"``, ``"L5 dorsal ramus"``), ``side``.

The models forbid unknown fields (a typo is an error, not a silently ignored key); later issues add
fields (rubric, limits, hints, patient text) to :class:`Scenario`.
"""

from __future__ import annotations

import re
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.sources import import_anatomy
from anatomy_models.spine import SpineParameters
from anatomy_models.store import generated_anatomy, load_anatomy
from anatomy_models.yaml_source import parse_yaml
from anatomy_models.structures import LEVELS, check_level, level_below
from simulator.needle import MM_PER_INCH, NeedleSpec

Procedure = Literal["interlaminar_epidural", "transforaminal_epidural", "facet_intra_articular", "medial_branch_block"]
PROCEDURES: tuple[str, ...] = ("interlaminar_epidural", "transforaminal_epidural", "facet_intra_articular",
                               "medial_branch_block")
_FIELD_PREFIX = re.compile(r"^(?P<field>[a-z_]+(?:\.[a-z_]+)+): (?P<message>.*)$", re.S)
_NERVE = re.compile(r"^(?P<level>[TLS]\d{1,2}) (?P<kind>medial branch|dorsal ramus)$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class AnatomySource(_Model):
    """Where the patient comes from: exactly one of the fields.

    Parameters
    ----------
    builtin : str
        A built-in anatomy (``default``: the parametric spine).
    stored : str
        A stored anatomy's name (``spinesim anatomy list``).
    path : str
        An anatomy folder or image source, relative to the scenario file.
    generator : dict
        Parameters for the parametric spine generator.
    """

    builtin: str | None = None
    stored: str | None = None
    path: str | None = None
    generator: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _exactly_one(self):
        given = [name for name in ("builtin", "stored", "path", "generator") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of builtin, stored, path or generator"
                             + (f" (got {', '.join(given)})" if given else ""))
        return self

    def load(self, base_directory: str | Path | None = None) -> Anatomy:
        """The anatomy this source names; ``path`` is taken relative to ``base_directory``."""
        if self.builtin is not None or self.stored is not None:
            return load_anatomy(self.builtin if self.builtin is not None else self.stored)
        if self.path is not None:
            path = Path(self.path)
            if not path.is_absolute() and base_directory is not None:
                path = Path(base_directory) / path
            return import_anatomy(path)
        return generated_anatomy(self.spine_parameters())

    def spine_parameters(self) -> SpineParameters:
        """The generator parameters of a ``generator`` source (validated with the scenario)."""
        return SpineParameters(**(self.generator or {}))

    @field_validator("generator")
    @classmethod
    def _known_parameters(cls, generator: dict[str, Any] | None) -> dict[str, Any] | None:
        if generator is None:
            return generator
        known = {f.name for f in fields(SpineParameters)}
        unknown = sorted(set(generator) - known)
        if unknown:
            raise ValueError(f"unknown generator parameter(s) {', '.join(unknown)}; use: {', '.join(sorted(known))}")
        try:
            SpineParameters(**generator)
        except SpinesimError as error:
            raise ValueError(error.problem) from None
        return generator


class TargetSpec(_Model):
    """Where the needle should end (see the module docstring for what each procedure needs)."""

    level: str | None = None
    side: Literal["left", "right", "midline"]
    approach: Literal["subpedicular", "kambin"] | None = None
    nerve: str | None = None

    @field_validator("level")
    @classmethod
    def _interspace(cls, level: str | None) -> str | None:
        if level is None:
            return level
        parts = level.split("-")
        if len(parts) != 2 or parts[0] not in LEVELS or parts[1] not in LEVELS:
            raise ValueError(f"level must be an interspace like 'L4-L5', got {level!r}")
        if level_below(parts[0]) != parts[1]:
            raise ValueError(f"{parts[0]} and {parts[1]} are not adjacent levels")
        return level

    @field_validator("nerve")
    @classmethod
    def _nerve_name(cls, nerve: str | None) -> str | None:
        if nerve is None:
            return nerve
        match = _NERVE.match(nerve)
        if not match:
            raise ValueError(f"nerve must be like 'L4 medial branch' or 'L5 dorsal ramus', got {nerve!r}")
        check_level(match["level"])
        return nerve

    @property
    def nerve_level(self) -> str:
        match = _NERVE.match(self.nerve or "")
        if match is None:
            raise SpinesimError("this target names no nerve")
        return match["level"]


class NeedleChoice(_Model):
    """The needle handed to the trainee: kind, gauge and length (mm or inches)."""

    kind: Literal["tuohy", "quincke", "rf_cannula"]
    gauge: int
    length_mm: float | None = Field(None, gt=0)
    length_in: float | None = Field(None, gt=0)
    bevel_deflection_deg_per_cm: float = Field(0.0, ge=0.0, le=5.0)

    @model_validator(mode="after")
    def _one_length(self):
        if (self.length_mm is None) == (self.length_in is None):
            raise ValueError("give the needle length as either length_mm or length_in")
        self.spec()
        return self

    def spec(self) -> NeedleSpec:
        length = self.length_mm if self.length_mm is not None else self.length_in * MM_PER_INCH
        try:
            return NeedleSpec(self.kind, self.gauge, length, bevel_deflection_deg_per_cm=self.bevel_deflection_deg_per_cm)
        except SpinesimError as error:
            raise ValueError(error.problem) from None


class Imaging(_Model):
    """Which imaging the trainee may use."""

    fluoroscopy: bool = True
    dsa: bool = False
    ultrasound: bool = False


class CarmPose(_Model):
    """A C-arm pose: named set-up and/or angles (degrees; LAO +, cranial +)."""

    setup: str | None = None
    primary_deg: float = Field(0.0, ge=-180.0, le=180.0)
    secondary_deg: float = Field(0.0, ge=-90.0, le=90.0)


class ProbePose(_Model):
    """An ultrasound probe pose in LPS mm."""

    position: tuple[float, float, float]
    direction: tuple[float, float, float]
    lateral: tuple[float, float, float]


class Start(_Model):
    """How the attempt starts."""

    carm: CarmPose = CarmPose(setup="AP")
    probe: ProbePose | None = None


# Which target fields each procedure needs, and which sides it allows.
_NEEDS = {
    "interlaminar_epidural": ("level",),
    "transforaminal_epidural": ("level",),
    "facet_intra_articular": ("level",),
    "medial_branch_block": ("nerve",),
}


class Scenario(_Model):
    """One training case."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")
    title: str = Field(min_length=1)
    brief: str = Field(min_length=1)
    anatomy: AnatomySource
    procedure: Procedure
    target: TargetSpec
    needle: NeedleChoice
    imaging: Imaging = Imaging()
    start: Start = Start()
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _target_fits_procedure(self):
        for name in _NEEDS[self.procedure]:
            if getattr(self.target, name) is None:
                raise ValueError(f"target.{name}: required for {self.procedure}")
        if self.target.side == "midline" and self.procedure != "interlaminar_epidural":
            raise ValueError(f"target.side: 'midline' only fits interlaminar_epidural, not {self.procedure}")
        if self.target.approach is not None and self.procedure != "transforaminal_epidural":
            raise ValueError("target.approach: only for transforaminal_epidural")
        return self

    @property
    def approach(self) -> str:
        """The transforaminal approach (subpedicular unless the scenario says kambin)."""
        return self.target.approach or "subpedicular"


# --------------------------------------------------------------------------- YAML with line numbers
def _yaml_line(node: yaml.Node | None, location: tuple) -> int | None:
    """The line (1-based) of the deepest YAML node along a pydantic error location."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in location:
        if isinstance(node, yaml.MappingNode):
            match = next((value for key, value in node.value if key.value == str(part)), None)
            if match is None:
                key = next((key for key, _ in node.value if key.value == str(part)), None)
                return key.start_mark.line + 1 if key is not None else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def scenario_from_yaml(text: str, *, path: str | Path | None = None) -> Scenario:
    """Validate scenario YAML text; errors name the line and the field."""
    node, data = parse_yaml(text, path=path)
    if not isinstance(data, dict):
        raise SpinesimError("a scenario must be a YAML mapping of fields (id, title, ...)", path=path)
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = tuple(first["loc"])
        message = first["msg"].replace("Input should be ", "must be ").replace("Value error, ", "")
        # A check across fields names its field at the start of its message ("target.side: ...").
        named = _FIELD_PREFIX.match(message)
        if named:
            location += tuple(named["field"].split("."))
            message = named["message"]
        line = _yaml_line(node, location)
        field = ".".join(str(part) for part in location)
        if first["type"] == "missing":
            message = "a required field is missing"
        elif first["type"] == "extra_forbidden":
            message = "unknown field"
        elif first["type"] not in ("value_error",) and not isinstance(first.get("input"), (dict, list)):
            message += f" (got {first.get('input')!r})"
        where = ", ".join(part for part in (f"line {line}" if line else "", f"field '{field}'" if field else "") if part)
        raise SpinesimError(message, path=path, where=where or None) from None


def load_scenario(source: str | Path) -> Scenario:
    """A scenario from a YAML file path or a library id.

    Examples
    --------
    >>> load_scenario("ilesi-default").procedure
    'interlaminar_epidural'
    """
    path = Path(source)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise SpinesimError(f"cannot read the scenario: {error}", path=path) from None
        return scenario_from_yaml(text, path=path)
    library = library_scenarios()
    if str(source) in library:
        return library[str(source)]
    raise SpinesimError(f"no scenario file or library scenario called {str(source)!r}",
                        hint=f"library scenarios: {', '.join(sorted(library))}")


def library_scenarios() -> dict[str, Scenario]:
    """The built-in scenarios by id."""
    found: dict[str, Scenario] = {}
    for entry in sorted(resources.files("scenarios.library").iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            scenario = scenario_from_yaml(entry.read_text(encoding="utf-8"), path=f"scenarios/library/{entry.name}")
            found[scenario.id] = scenario
    return found


def scenario_directory(source: str | Path) -> Path | None:
    """The folder relative paths in a scenario file are taken from (None for library scenarios)."""
    path = Path(source)
    return path.resolve().parent if path.exists() else None
