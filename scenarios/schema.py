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
- ``radiofrequency_ablation``: ``nerve`` (the L3 or L4 medial branch, or the L5 dorsal ramus), ``side``;
  the needle is an ``rf_cannula`` with its ``active_tip_mm``.
- ``sacroiliac_joint_injection``: ``side`` (the joint, left or right); the target is the caudal third.
- ``caudal_epidural``: ``side: midline``; the target is the sacral canal just above the hiatus's apex.

The models forbid unknown fields (a typo is an error, not a silently ignored key); later issues add
fields (rubric, limits, hints, patient text) to :class:`Scenario`.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError, quoted
from anatomy_models.spine import SpineParameters
from anatomy_models.spine.parameters import drawn_parameters
from anatomy_models.store import check_anatomy_name, generated_anatomy, load_anatomy
from anatomy_models.structures import LEVELS, level_below
from anatomy_models.yaml_source import parse_yaml
from scenarios.library import library_files
from scenarios.needles import CURVED_TIP_DEFLECTION_DEG_PER_CM, MM_PER_INCH, NeedleSpec
from scenarios.poses import CArmPose, ProbePose

# Patients per case that attempts take in turn (a drawn patient, :meth:`Scenario.patient_seeds`): enough
# that a trainee does not meet one again soon, few enough that all are generated and cached early.
PATIENT_POOL_SIZE = 6

Procedure = Literal["interlaminar_epidural", "transforaminal_epidural", "facet_intra_articular", "medial_branch_block",
                    "radiofrequency_ablation", "sacroiliac_joint_injection", "caudal_epidural"]
PROCEDURES: tuple[str, ...] = ("interlaminar_epidural", "transforaminal_epidural", "facet_intra_articular",
                               "medial_branch_block", "radiofrequency_ablation", "sacroiliac_joint_injection",
                               "caudal_epidural")
# Procedures on the sacrum: no lumbar level, the target named by its side alone (issue 21).
SACRAL_PROCEDURES = ("sacroiliac_joint_injection", "caudal_epidural")
# The nerves a lumbar medial branch ablation is offered for (issue 21; clinical.md §2.4, §2.5).
RFA_NERVES = ("L3 medial branch", "L4 medial branch", "L5 dorsal ramus")
# Procedures whose target is a nerve on bone rather than a space.
NERVE_PROCEDURES = ("medial_branch_block", "radiofrequency_ablation")
# A check across fields names the field it is about, relative to the model it checks: "target.side: ...".
_FIELD_PREFIX = re.compile(r"^(?P<field>[a-z_]+(?:\.[a-z_]+)*): (?P<message>.*)$", re.S)
_NERVE = re.compile(r"^(?P<level>[TLS]\d{1,2}) (?P<kind>medial branch|dorsal ramus)$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


_SOURCE_KINDS = ("builtin", "stored", "path", "generator", "images", "meshes")
_IMPORT_OPTIONS = {"labels": ("images", "meshes"), "label_format": ("images",), "series": ("images",),
                   "spacing_mm": ("images", "meshes"), "mesh_units": ("meshes",)}


class AnatomySource(_Model):
    """Where the patient comes from: exactly one of ``builtin``, ``stored``, ``path``, ``generator``,
    ``images`` or ``meshes``, with import options for the last two.

    File and folder paths are taken relative to the scenario file and must exist when the scenario
    is validated.

    Parameters
    ----------
    builtin : str
        A built-in anatomy (``default``: the parametric spine with default parameters).
    stored : str
        A stored anatomy's name (``spinesim anatomy list``).
    path : str
        A stored anatomy folder.
    generator : dict
        Parameters of the parametric spine generator (``anatomy_models.spine.SpineParameters``).
    images : str
        CT images: a DICOM folder or file, a NIfTI (``.nii``, ``.nii.gz``) or NRRD volume, a 3D
        Slicer ``.seg.nrrd`` or a folder of TotalSegmentator masks.
    labels : str
        With ``images``: a label map on (or resampled to) the CT's grid; with ``meshes``: a YAML table
        mesh name -> structure name.
    label_format : str
        How to read the label map's ids (``totalsegmentator``, ``verse``, ``table:FILE``).
    series : str
        The DICOM series (UID or its number in the listing) of a folder with several.
    meshes : str
        A mesh file or a folder of meshes (STL, OBJ, PLY, glTF, VTK), one per structure.
    mesh_units : {"mm", "cm", "m"}
        Unit of the mesh coordinates.
    spacing_mm : float
        Voxel size (mm) to resample images to, or to voxelise meshes on (default 1 mm).
    patient : {"drawn", "fixed"}
        For a generated patient (``builtin`` or ``generator``): ``drawn`` (the default) gives every
        attempt its own patient, the parameters the case does not set drawn within normal anatomical
        ranges from the attempt's seed (:func:`anatomy_models.spine.parameters.drawn_parameters`), so a
        trainee cannot pass by memorised coordinates; ``fixed`` keeps one exact patient for every
        attempt. Other sources are one patient.
    """

    builtin: Literal["default"] | None = None
    stored: str | None = None
    path: str | None = None
    generator: dict[str, Any] | None = Field(None, json_schema_extra=lambda schema: _generator_schema(schema))
    images: str | None = None
    labels: str | None = None
    label_format: str | None = None
    series: str | None = None
    meshes: str | None = None
    mesh_units: Literal["mm", "cm", "m"] | None = None
    spacing_mm: float | None = Field(None, gt=0.0, le=5.0)
    patient: Literal["drawn", "fixed"] | None = None

    @model_validator(mode="after")
    def _exactly_one(self):
        given = [name for name in _SOURCE_KINDS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(_SOURCE_KINDS)}" + (f" (got {', '.join(given)})" if given else ""))
        if self.patient is not None and given[0] not in ("builtin", "generator"):
            raise ValueError(f"patient: only goes with builtin or generator (a generated patient), not {given[0]}")
        for option, kinds in _IMPORT_OPTIONS.items():
            if getattr(self, option) is not None and given[0] not in kinds:
                raise ValueError(f"{option}: only goes with {' or '.join(kinds)}, not {given[0]}")
        return self

    @field_validator("stored")
    @classmethod
    def _stored_name(cls, name: str | None) -> str | None:
        """A stored anatomy is named, never reached by a path (``../..``): ``path`` takes folders."""
        if name is not None:
            try:
                check_anatomy_name(name)
            except SpinesimError as error:
                raise ValueError(f"{error.problem}: a stored anatomy's name is not a path; {error.hint}; for an "
                                 "anatomy folder use 'path'") from None
        return name

    @field_validator("path", "images", "labels", "meshes", "label_format")
    @classmethod
    def _exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        file = value.split(":", 1)[1] if info.field_name == "label_format" and value.startswith("table:") else None
        if info.field_name == "label_format" and file is None:
            return value
        resolved = _resolve(file or value, (info.context or {}).get("base_directory"))
        if not resolved.exists():
            raise ValueError(f"no such file or folder: {resolved}")
        return value

    def kind(self) -> str:
        """Which kind of source this is (``builtin``, ``generator``, ``images``, ...)."""
        return next(name for name in _SOURCE_KINDS if getattr(self, name) is not None)

    @property
    def drawn(self) -> bool:
        """Whether every attempt draws its own patient (a generated source not pinned ``fixed``)."""
        return self.kind() in ("builtin", "generator") and self.patient != "fixed"

    def load(self, base_directory: str | Path | None = None, *, spacing_mm: float | None = None,
             seed: int | None = None) -> Anatomy:
        """The anatomy this source names; paths are taken relative to ``base_directory``.

        Parameters
        ----------
        spacing_mm : float, optional
            Voxel size (mm) for a generated anatomy (``builtin: default`` or ``generator``) instead of
            the scenario's: tests and previews use 2 mm. Other sources ignore it.
        seed : int, optional
            An attempt's seed: a :attr:`drawn` source gives that attempt's patient. Without it (or for
            other sources) the case's own patient.
        """
        kind = self.kind()
        if kind == "stored" or (kind == "builtin" and spacing_mm is None and (seed is None or not self.drawn)):
            return load_anatomy(self.builtin if kind == "builtin" else self.stored)
        if kind in ("builtin", "generator"):
            return generated_anatomy(self.spine_parameters(spacing_mm=spacing_mm, seed=seed))
        if kind == "path":
            return load_anatomy(_resolve(self.path, base_directory))
        label_format = self.label_format
        if label_format and label_format.startswith("table:"):
            label_format = "table:" + str(_resolve(label_format.split(":", 1)[1], base_directory))
        options = {"labels": _resolve(self.labels, base_directory) if self.labels else None,
                   "label_format": label_format, "series_uid": self.series, "spacing_mm": self.spacing_mm,
                   "mesh_units": self.mesh_units}
        source = _resolve(self.images if kind == "images" else self.meshes, base_directory)
        from anatomy_models.sources import import_anatomy  # the readers (DICOM, NIfTI, meshes) load only when used

        return import_anatomy(source, **{name: value for name, value in options.items() if value is not None})

    def resolved(self, base_directory: str | Path | None) -> AnatomySource:
        """This source with its relative file and folder paths made absolute from ``base_directory``
        (a scenario served from a folder then loads the same wherever the server was started)."""
        if base_directory is None:
            return self
        update = {name: str(_resolve(value, base_directory)) for name in ("path", "images", "labels", "meshes")
                  if (value := getattr(self, name)) is not None}
        if self.label_format and self.label_format.startswith("table:"):
            update["label_format"] = "table:" + str(_resolve(self.label_format.split(":", 1)[1], base_directory))
        return self.model_copy(update=update)

    def spine_parameters(self, *, spacing_mm: float | None = None, seed: int | None = None) -> SpineParameters:
        """The generator parameters (validated with the scenario); ``spacing_mm`` overrides the grid;
        with an attempt's ``seed`` and a :attr:`drawn` source, that attempt's patient (the case's own
        parameters kept, the rest drawn)."""
        values = dict(self.generator or {})
        if spacing_mm is not None:
            values["spacing_mm"] = spacing_mm
        case = SpineParameters(**values)
        return case if seed is None or not self.drawn else drawn_parameters(case, seed, keep=set(self.generator or {}))

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
            raise ValueError(f"{error.where + ': ' if error.where else ''}{error.problem}") from None
        return generator


def _resolve(value: str | Path, base_directory: str | Path | None) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute() and base_directory is not None:
        path = Path(base_directory) / path
    return path


def _generator_schema(schema: dict) -> None:
    """Make ``schema`` the JSON Schema of the generator block: every spine parameter with its type and
    default, nothing else (editors then complete and check the names)."""
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string"}
    defaults = SpineParameters()
    properties = {f.name: {"type": kinds[type(getattr(defaults, f.name))], "default": getattr(defaults, f.name)}
                  for f in fields(SpineParameters)}
    schema.clear()
    schema.update({"type": ["object", "null"], "properties": properties, "additionalProperties": False, "default": None})


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
            raise ValueError(f"level must be an interspace like 'L4-L5', got {quoted(level)}")
        if level_below(parts[0]) != parts[1]:
            raise ValueError(f"{parts[0]} and {parts[1]} are not adjacent levels")
        return level

    @field_validator("nerve")
    @classmethod
    def _nerve_name(cls, nerve: str | None) -> str | None:
        if nerve is None:
            return nerve
        match = _NERVE.match(nerve)
        if not match or match["level"] not in LEVELS or match["level"] == "S1":
            raise ValueError(f"nerve must be like 'L4 medial branch' or 'L5 dorsal ramus' (levels "
                             f"{', '.join(LEVELS[:-1])}), got {quoted(nerve)}")
        return nerve

    @property
    def vertebra(self) -> str:
        """The vertebra the target is at: the upper of its interspace, its nerve's level, else the sacrum
        (``S1``: the sacroiliac joint and the sacral hiatus)."""
        if self.level is not None:
            return self.level.split("-")[0]
        return self.nerve_level if self.nerve is not None else "S1"

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
    active_tip_mm: float = Field(0.0, ge=0.0, le=15.0, description="RF cannula: the active (uninsulated) tip, mm")
    curved_tip: bool = Field(False, description="RF cannula: a curved rather than a straight tip (it steers: "
                                                "scenarios.needles.CURVED_TIP_DEFLECTION_DEG_PER_CM)")

    @model_validator(mode="after")
    def _one_length(self):
        if (self.length_mm is None) == (self.length_in is None):
            raise ValueError("give the needle length as either length_mm or length_in")
        self.spec()
        return self

    def spec(self) -> NeedleSpec:
        length = self.length_mm if self.length_mm is not None else self.length_in * MM_PER_INCH
        try:
            deflection = self.bevel_deflection_deg_per_cm or (CURVED_TIP_DEFLECTION_DEG_PER_CM if self.curved_tip else 0.0)
            return NeedleSpec(self.kind, self.gauge, length, active_tip_mm=self.active_tip_mm, curved_tip=self.curved_tip,
                              bevel_deflection_deg_per_cm=deflection)
        except SpinesimError as error:
            raise ValueError(error.problem) from None


class Imaging(_Model):
    """Which imaging the trainee may use."""

    fluoroscopy: bool = True
    dsa: bool = False
    ultrasound: bool = False


class Start(_Model):
    """How the attempt starts: the C-arm's pose and, if the probe is already on, the probe's
    (:mod:`scenarios.poses`)."""

    carm: CArmPose = CArmPose(setup="AP")
    probe: ProbePose | None = None


class Limits(_Model):
    """Budgets of the attempt; going over one is a minor safety flag (clinical.md §3, §6.3).

    Parameters
    ----------
    shots : int
        Fluoroscopy shots (pulses, live runs and DSA runs each count one) [ED: §6.3 "10-15"].
    fluoro_seconds : float
        Beam-on time, s: 36 s is the mean of experienced radiologists for a single-level lumbar
        TFESI (§3, §6.3 [S61]).
    time_s : float
        Procedure time from the first to the last action, s [ED].
    """

    shots: int = Field(15, ge=1, le=1000)
    fluoro_seconds: float = Field(36.0, gt=0.0, le=3600.0)
    time_s: float = Field(600.0, gt=0.0, le=36000.0)


class Weights(_Model):
    """Relative weights of the grade's four parts (any non-negative numbers; they are normalised)."""

    accuracy: float = Field(40.0, ge=0.0)
    safety: float = Field(25.0, ge=0.0)
    efficiency: float = Field(20.0, ge=0.0)
    technique: float = Field(15.0, ge=0.0)

    @model_validator(mode="after")
    def _some_weight(self):
        if self.accuracy + self.safety + self.efficiency + self.technique <= 0:
            raise ValueError("at least one weight must be positive")
        return self


# Tolerances by procedure (clinical.md §6.3): tip error <= 3-5 mm for MBB and facet, redirections
# <= 2 for MBB/facet and <= 3 for TFESI [ED]. The interlaminar target is the middle of a space ~5 mm
# deep and a window ~12-15 mm tall (§4.7), so 5 mm off it is still a good epidural position [ED].
# RFA: the cannula within 5 mm of the nerve line (§6.3 [ED]), redirections as for the MBB. The sacroiliac
# joint's caudal third is ~16 mm tall and the needle enters anywhere along its posterior line, so 5 mm is
# still in the target; the caudal target is the canal above the apex, 5 mm off it still epidural [ED].
DEFAULT_TIP_MM = {"interlaminar_epidural": 5.0, "transforaminal_epidural": 3.0, "facet_intra_articular": 3.0,
                  "medial_branch_block": 3.0, "radiofrequency_ablation": 5.0, "sacroiliac_joint_injection": 5.0,
                  "caudal_epidural": 5.0}
DEFAULT_REDIRECTS = {"interlaminar_epidural": 3, "transforaminal_epidural": 3, "facet_intra_articular": 2,
                     "medial_branch_block": 2, "radiofrequency_ablation": 2, "sacroiliac_joint_injection": 3,
                     "caudal_epidural": 2}


class Tolerances(_Model):
    """What counts as good: full marks at or below each value, none at three times it (two for
    shots and path length). ``null`` takes the procedure's default.

    Parameters
    ----------
    tip_mm : float, optional
        Final tip-to-target distance, mm (default: 3 mm, 5 mm interlaminar; §6.3).
    depth_mm : float
        Depth error seen in the safety view (lateral or contralateral oblique), mm [ED 2].
    redirects : int, optional
        Redirections (default 2 for MBB and facet, 3 for TFESI and interlaminar; §6.3).
    bone_contacts : int
        Bone contacts before the final position; more is the minor flag "repeated bone contact" [ED 3].
    path_ratio : float
        Tip path length over the expert's [ED 1.5].
    """

    tip_mm: float | None = Field(None, gt=0.0, le=50.0)
    depth_mm: float = Field(2.0, gt=0.0, le=50.0)
    redirects: int | None = Field(None, ge=0, le=100)
    bone_contacts: int = Field(3, ge=0, le=100)
    path_ratio: float = Field(1.5, ge=1.0, le=20.0)

    def for_procedure(self, procedure: str) -> Tolerances:
        """These tolerances with the procedure's defaults filled in."""
        return self.model_copy(update={
            "tip_mm": DEFAULT_TIP_MM[procedure] if self.tip_mm is None else self.tip_mm,
            "redirects": DEFAULT_REDIRECTS[procedure] if self.redirects is None else self.redirects})


class PassGates(_Model):
    """What a pass needs besides no critical safety flag (which always fails an attempt).

    Parameters
    ----------
    min_score : float
        Lowest passing grade, 0-100.
    in_zone : bool
        The final tip must be in the target's acceptance zone.
    max_major_flags : int
        Most major safety flags a pass may have.
    contrast_check : {"live", "dsa", "none"}
        Contrast must have been injected and imaged as it went in, by live fluoroscopy or DSA
        (``live``; clinical.md §6.3 [S22][S19]: "DSA/live view for TFESI"), by DSA only (``dsa``: live
        fluoroscopy misses some arterial injections, §2.7), or not at all (``none``); with ``live`` or
        ``dsa`` every injectate must also go where such a test went in, the needle unmoved since
        (§6.3: "contrast under live or DSA before injectate").
    depth_confirmed : bool
        Before the first injection at the final position (contrast, injectate or local anaesthetic), the
        needle must have been seen there on the target's depth view, lateral or contralateral oblique (the
        multiplanar rule, clinical.md §1 [S8][S33]).
    """

    min_score: float = Field(70.0, ge=0.0, le=100.0)
    in_zone: bool = True
    max_major_flags: int = Field(0, ge=0)
    contrast_check: Literal["live", "dsa", "none"] = "live"
    depth_confirmed: bool = True


class Rubric(_Model):
    """How an attempt is graded (scoring package): weights, tolerances and pass gates.

    Parameters
    ----------
    hint_deduction : float
        Grade points (of 100) taken off for each hint the trainee reveals (a ``show_hint`` action);
        0 (the default) makes hints free. The grade never goes below 0.
    """

    weights: Weights = Weights()
    tolerances: Tolerances = Tolerances()
    pass_gates: PassGates = PassGates()
    hint_deduction: float = Field(0.0, ge=0.0, le=100.0,
                                  description="grade points taken off per hint revealed (default 0: hints are free)")


class PatientText(_Model):
    """What the patient is told, in plain language (no jargon), for the patient explanation.

    Parameters
    ----------
    explanation : str
        What the procedure is and why it is done.
    what_to_expect : str, optional
        What the patient feels and does during and after it.
    """

    explanation: str = Field(min_length=1)
    what_to_expect: str | None = None


# Which target fields each procedure needs, and which sides it allows.
_NEEDS = {
    "interlaminar_epidural": ("level",),
    "transforaminal_epidural": ("level",),
    "facet_intra_articular": ("level",),
    "medial_branch_block": ("nerve",),
    "radiofrequency_ablation": ("nerve",),
    "sacroiliac_joint_injection": (),
    "caudal_epidural": (),
}


class Scenario(_Model):
    """One training case."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$", description="unique id: lower-case letters, digits, - and _")
    title: str = Field(min_length=1)
    brief: str = Field(min_length=1, description="what the trainee is told: the patient and the task")
    objectives: list[str] = Field([], description="learning objectives, one sentence each")
    difficulty: Literal["beginner", "intermediate", "advanced"] = "intermediate"
    anatomy: AnatomySource
    procedure: Procedure
    target: TargetSpec
    needle: NeedleChoice
    needle_options: list[NeedleChoice] = Field([], max_length=5, description=(
        "other needles on the tray the trainee may choose instead of 'needle' (the first offered) before "
        "inserting: kind, gauge and length"))
    imaging: Imaging = Imaging()
    start: Start = Start()
    limits: Limits = Limits()
    rubric: Rubric = Rubric()
    hints: list[str] = Field([], description="hints the trainee may ask for, in order")
    patient: PatientText | None = None
    seed: int = Field(0, ge=0, le=2**32 - 1)
    patient_seed: int | None = Field(None, ge=0, le=2**32 - 1, description=(
        "the seed of a drawn patient (anatomy.patient: drawn): an attempt's, recorded in its log; in a case "
        "file it pins that one drawn patient. None: the case's own patient"))

    @model_validator(mode="after")
    def _target_fits_procedure(self):
        if self.rubric.pass_gates.contrast_check == "dsa" and not self.imaging.dsa:
            raise ValueError("rubric.pass_gates.contrast_check: 'dsa' needs imaging.dsa: true")
        for name in _NEEDS[self.procedure]:
            if getattr(self.target, name) is None:
                raise ValueError(f"target.{name}: required for {self.procedure}")
        if self.target.side == "midline" and self.procedure not in ("interlaminar_epidural", "caudal_epidural"):
            raise ValueError(f"target.side: 'midline' only fits interlaminar_epidural and caudal_epidural, not "
                             f"{self.procedure}")
        if self.procedure == "caudal_epidural" and self.target.side != "midline":
            raise ValueError("target.side: a caudal epidural enters the sacral hiatus in the midline: use 'midline'")
        if self.procedure in SACRAL_PROCEDURES and (self.target.level or self.target.nerve):
            raise ValueError(f"target.{'level' if self.target.level else 'nerve'}: {self.procedure} names no level "
                             "or nerve, only the side")
        if self.target.approach is not None and self.procedure != "transforaminal_epidural":
            raise ValueError("target.approach: only for transforaminal_epidural")
        if self.procedure == "radiofrequency_ablation":
            if self.target.nerve not in RFA_NERVES:
                raise ValueError(f"target.nerve: a lumbar radiofrequency ablation treats the "
                                 f"{', '.join(RFA_NERVES[:-1])} or the {RFA_NERVES[-1]}, not {quoted(self.target.nerve)}")
        for name, needle in self.tray_items():
            if self.procedure == "radiofrequency_ablation" and needle.kind != "rf_cannula":
                raise ValueError(f"{name}.kind: radiofrequency_ablation needs an rf_cannula (with active_tip_mm)")
            if self.procedure != "radiofrequency_ablation" and needle.kind == "rf_cannula":
                raise ValueError(f"{name}.kind: an rf_cannula is for radiofrequency_ablation, not {self.procedure}")
        return self

    def tray_items(self) -> list[tuple[str, NeedleChoice]]:
        """The needles on the tray with their fields' names: ``needle`` first, then ``needle_options``."""
        return [("needle", self.needle)] + [(f"needle_options[{i}]", n) for i, n in enumerate(self.needle_options)]

    @property
    def tray(self) -> list[NeedleChoice]:
        """The needles the trainee may choose from (a ``place_needle`` action's ``needle``): the scenario's
        ``needle`` (number 0), then its ``needle_options``."""
        return [needle for _, needle in self.tray_items()]

    @property
    def approach(self) -> str:
        """The transforaminal approach (subpedicular unless the scenario says kambin)."""
        return self.target.approach or "subpedicular"

    def tolerances(self) -> Tolerances:
        """The rubric's tolerances with this procedure's defaults filled in."""
        return self.rubric.tolerances.for_procedure(self.procedure)

    def load_patient(self, base_directory: str | Path | None = None, *, spacing_mm: float | None = None) -> Anatomy:
        """The patient of this attempt: drawn from :attr:`patient_seed` (the seed its action log
        records) for a drawn anatomy, else the case's own."""
        return self.anatomy.load(base_directory, spacing_mm=spacing_mm, seed=self.patient_seed)

    def patient_seeds(self, count: int = PATIENT_POOL_SIZE) -> tuple[int, ...]:
        """The attempt seeds of this case's pool of patients, its own :attr:`seed` first (the case's own
        patient, :meth:`for_attempt`): attempts take them in turn, so each is a new patient to its
        trainee, and the next one can be generated (and cached) in the background while the trainee
        works. One seed if the patient is pinned (``patient: fixed`` or a ``patient_seed``)."""
        if not self.anatomy.drawn or self.patient_seed is not None:
            return (self.seed,)
        rest = np.random.SeedSequence([self.seed, 29]).generate_state(count - 1) if count > 1 else []
        return (self.seed, *(int(s) for s in rest))

    def for_attempt(self, seed: int) -> Scenario:
        """This case for an attempt with ``seed`` (one of :meth:`patient_seeds`): the case's own seed
        keeps its own patient, any other draws the patient from it (unless the case pins one)."""
        pinned = not self.anatomy.drawn or self.patient_seed is not None or seed == self.seed
        return self.model_copy(update={"seed": seed, "patient_seed": self.patient_seed if pinned else seed})


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


def scenario_from_yaml(text: str, *, path: str | Path | None = None,
                       base_directory: str | Path | None = None) -> Scenario:
    """Validate scenario YAML text; errors name the line and the field.

    Relative anatomy paths are taken from ``base_directory`` (default: the folder of ``path``).
    """
    node, data = parse_yaml(text, path=path)
    if not isinstance(data, dict):
        raise SpinesimError("a scenario must be a YAML mapping of fields (id, title, ...)", path=path)
    if base_directory is None and path is not None:
        base_directory = Path(path).resolve().parent
    try:
        return Scenario.model_validate(data, context={"base_directory": base_directory})
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
            message += f" (got {quoted(first.get('input'))})"
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
    raise SpinesimError(f"no scenario file or library scenario called {quoted(str(source))}",
                        hint=f"library scenarios: {', '.join(sorted(library))}")


def scenario_json_schema() -> dict:
    """The JSON Schema of a scenario file, for editors (``spinesim scenario schema``)."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "spinesim scenario"
    return schema


def library_scenarios() -> dict[str, Scenario]:
    """The built-in scenarios by id."""
    found: dict[str, Scenario] = {}
    for entry in library_files():
        scenario = scenario_from_yaml(entry.read_text(encoding="utf-8"), path=f"scenarios/library/{entry.name}")
        found[scenario.id] = scenario
    return found


def scenario_directory(source: str | Path) -> Path | None:
    """The folder relative paths in a scenario file are taken from (None for library scenarios)."""
    path = Path(source)
    return path.resolve().parent if path.exists() else None
