"""Where the imaging devices stand: a C-arm pose and an ultrasound probe pose, as small frozen records.

One pose per device travels unchanged from the case to the kernel: a scenario's ``start``
(:mod:`scenarios.schema`), the preset views (:mod:`simulator.case.controls`), the ``set_carm`` and
``place_probe`` actions (:mod:`simulator.session.actions`, whose fields are a pose's fields) and the
session's state (:mod:`simulator.session.fold`), from which ``CArm.at`` and ``Probe.at``
(:mod:`simulator.imaging`) build the imaging geometry. :meth:`CArmPose.to_json` and
:meth:`ProbePose.to_json` are the action's fields without ``type`` and ``t``: what the action log,
the session state's JSON and the events carry.

Coordinates are LPS millimetres, angles degrees (the conventions of :mod:`simulator.imaging.carm` and
:mod:`simulator.imaging.probe`). This module needs pydantic only, no numerics: the light web portal
imports the actions.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict

from anatomy_models.errors import quoted

MAX_COORDINATE_MM = 10_000.0  # |x|, |y|, |z| of a point or vector, mm: 10 m, far outside any patient


def _a_number(value: Any) -> Any:
    """Refuse ``true``/``false`` and text where a number belongs (pydantic would read them as 1, 0, 5.0)."""
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"must be a number, not {json.dumps(value) if isinstance(value, bool) else quoted(value)}")
    return value


# A number read from a file, a log or a browser: a real number (finite, by the models' allow_inf_nan=False).
Number = BeforeValidator(_a_number)
Coordinate = Annotated[float, Field(ge=-MAX_COORDINATE_MM, le=MAX_COORDINATE_MM), Number]
Point = tuple[Coordinate, Coordinate, Coordinate]
ProbeKind = Literal["linear", "curvilinear"]
ShortName = Annotated[str, Strict(), Field(max_length=64)]

# The ranges a pose may take, shared with the actions that carry a pose's fields.
PrimaryDeg = Annotated[float, Field(ge=-180.0, le=180.0, description="LAO (+) / RAO (-), degrees"), Number]
SecondaryDeg = Annotated[float, Field(ge=-90.0, le=90.0, description="cranial (+) / caudal (-), degrees"), Number]
# The image intensifier's fields (magnification modes), cm, and the shutters' opening, as a share of the field.
FieldCm = Annotated[float, Field(ge=5.0, le=50.0, description="the image intensifier's field (mode), cm"), Number]
Shutters = Annotated[float, Field(ge=0.2, le=1.0, description="collimator shutters' opening, share of the field"),
                     Number]
ProbeDepthMm = Annotated[float, Field(ge=10.0, le=300.0, description="imaging depth, mm"), Number]
ProbeGainDb = Annotated[float, Field(ge=-60.0, le=60.0, description="overall receive gain, dB"), Number]
ProbeFrequencyMhz = Annotated[float, Field(gt=0.0, le=20.0, description="centre frequency, MHz"), Number]
ProbeViewName = Annotated[str, Strict(), Field(max_length=64, description="the standard view the probe was put in")]


class _Pose(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class CArmPose(_Pose):
    """A C-arm pose: an optional set-up name, the two angles and an optional isocentre.

    Parameters
    ----------
    setup : str, optional
        The named set-up the pose was taken from ("AP", "Lateral", ...), for the record.
    primary_deg : float
        LAO (+) / RAO (-) rotation about the patient's long axis, degrees, -180..180.
    secondary_deg : float
        Cranial (+) / caudal (-) tilt, degrees, -90..90 (the C-arm itself refuses +-90).
    isocenter : (x, y, z) LPS mm, optional
        The point the central ray passes through; where absent, the session centres the C-arm on
        the target. Moving the table (panning) moves it.
    field_cm : float, optional
        The image intensifier's field in a magnification mode, cm (absent: its full field).
    shutters : float, optional
        The collimator's shutters closed to this share of the field, across and up and down (absent: open).
    """

    setup: ShortName | None = None
    primary_deg: PrimaryDeg = 0.0
    secondary_deg: SecondaryDeg = 0.0
    isocenter: Point | None = None
    field_cm: FieldCm | None = None
    shutters: Shutters | None = None

    def to_json(self) -> dict:
        """The pose as the log and the session state write it: ``setup`` (null when unnamed), the
        angles, and ``isocenter``, ``field_cm`` and ``shutters`` only where one is given.

        Examples
        --------
        >>> pose = CArmPose(setup="AP", isocenter=(0, 10, 20))
        >>> pose.to_json()
        {'setup': 'AP', 'primary_deg': 0.0, 'secondary_deg': 0.0, 'isocenter': [0.0, 10.0, 20.0]}
        >>> CArmPose.model_validate(pose.to_json()) == pose
        True
        """
        optional = {name for name in ("isocenter", "field_cm", "shutters") if getattr(self, name) is None}
        return self.model_dump(mode="json", exclude=optional or None)


class ProbePose(_Pose):
    """An ultrasound probe's pose on the patient and the machine settings the trainee turns.

    Parameters
    ----------
    position : (x, y, z) LPS mm
        Centre of the probe face.
    direction : (x, y, z)
        Beam axis at the face centre, into the patient (need not be unit length).
    lateral : (x, y, z)
        Along the array, image left -> right.
    kind : {"linear", "curvilinear"}, optional
        The array; the probe is curvilinear where absent.
    depth_mm, gain_db, frequency_mhz : float, optional
        Imaging depth (mm, 10-300), gain (dB, -60..60) and centre frequency (MHz); the kind's
        preset where absent.
    view : str, optional
        The standard view the probe was put in, for the record and the captions.
    """

    position: Point
    direction: Point
    lateral: Point
    kind: ProbeKind | None = None
    depth_mm: ProbeDepthMm | None = None
    gain_db: ProbeGainDb | None = None
    frequency_mhz: ProbeFrequencyMhz | None = None
    view: ProbeViewName | None = None

    def to_json(self) -> dict:
        """The pose as the log and the session state write it: no empty optional field.

        Examples
        --------
        >>> pose = ProbePose(position=(0, 80, 0), direction=(0, -1, 0), lateral=(1, 0, 0), depth_mm=60)
        >>> pose.to_json()
        {'position': [0.0, 80.0, 0.0], 'direction': [0.0, -1.0, 0.0], 'lateral': [1.0, 0.0, 0.0], 'depth_mm': 60.0}
        >>> ProbePose.model_validate(pose.to_json()) == pose
        True
        """
        return self.model_dump(mode="json", exclude_none=True)
