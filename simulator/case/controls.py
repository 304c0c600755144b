"""The controls between an image and the patient: what the trainee does on a picture, as needle,
C-arm and probe poses.

The needle's two angle controls (:func:`needle_direction`), aimed by looking: along the C-arm's beam
(:func:`beam_aligned_angles`) and nudged on the image (:func:`nudged_angles`), the skin under a pixel of the image the
monitor holds (:func:`skin_point_on_ray`), where the radiographer centres the C-arm, its starting
pose and its preset views (:func:`carm_start`, :func:`carm_presets`), the ultrasound probe's preset
views, movements and settings (:func:`probe_preset`, :func:`moved_probe`, :func:`probe_with_settings`)
and where an in-plane needle goes in (:func:`in_plane_entry`). Device poses come and go as
:mod:`scenarios.poses` records, ready for a ``set_carm`` or ``place_probe`` action.
"""

from __future__ import annotations

import numpy as np

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.structures import level_below
from scenarios.poses import CArmPose, ProbePose
from scenarios.schema import Scenario
from simulator.imaging import carm as carms
from simulator.imaging.carm import CArm
from simulator.imaging.probe import Probe, on_skin, standard_view
from simulator.needle.trace import Tracer

# Clinical C-arm angles for the presets, degrees: ipsilateral oblique 25 (clinical.md §2.2(a) 20-35
# [S17][S20]); contralateral oblique 50 (§1, ~45-50 for the VILL view [S7][S11]).
IPSILATERAL_OBLIQUE_DEG = 25.0
CONTRALATERAL_OBLIQUE_DEG = 50.0
# The largest turn one nudge of the needle's aim may make, degrees [ED: the buttons step 1 and 5].
MAX_NUDGE_DEG = 45.0
# The collimator's shutter openings the C-arm card offers, shares of the field (fully open first) [ED].
SHUTTER_OPENINGS: tuple[float, ...] = (1.0, 0.75, 0.5)
# The table moves the C-arm card makes (mm a press) and the most one move may make [ED].
PAN_STEP_MM = 10.0
MAX_PAN_MM = 100.0


# --------------------------------------------------------------------------- geometry of the controls
def needle_direction(toward_left_deg: float, cranial_deg: float) -> np.ndarray:
    """Unit needle direction from the trainee's two angle controls.

    0/0 points straight down into the prone patient (anterior, -y); ``toward_left_deg`` tilts the tip
    toward the patient's left (+x, negative toward the right), ``cranial_deg`` toward the head (+z).

    Examples
    --------
    >>> needle_direction(0, 0).round(6).tolist()
    [0.0, -1.0, 0.0]
    >>> [round(v, 3) for v in needle_angles(needle_direction(-12.5, 15))]
    [-12.5, 15.0]
    """
    for value, name in ((toward_left_deg, "left/right angle"), (cranial_deg, "cranial/caudal angle")):
        if not np.isfinite(value) or abs(value) >= 90.0:
            raise SpinesimError(f"needle {name} must be between -90 and 90 degrees, got {value!r}")
    a, b = np.radians(toward_left_deg), np.radians(cranial_deg)
    return np.array([np.sin(a) * np.cos(b), -np.cos(a) * np.cos(b), np.sin(b)])


def needle_angles(direction: np.ndarray) -> tuple[float, float]:
    """The (toward-left, cranial) angles in degrees of a unit needle direction (inverse of
    :func:`needle_direction`)."""
    d = np.asarray(direction, dtype=np.float64) / np.linalg.norm(direction)
    return float(np.degrees(np.arctan2(d[0], -d[1]))), float(np.degrees(np.arcsin(np.clip(d[2], -1.0, 1.0))))


def beam_aligned_angles(carm: CArm) -> tuple[float, float]:
    """The needle's (toward-left, cranial) angles, degrees, coaxial with the C-arm's central ray and
    pointing into the prone patient: the down-the-barrel view, where a needle entering on the central
    ray is a dot.

    The beam runs from the source under the table up to the detector above the back, the needle from the
    back down, so the needle points against the beam and its angles are the C-arm's with the sign flipped.

    Raises
    ------
    SpinesimError
        If the beam does not come through the back (a lateral or beyond, LAO/RAO 90° or more).

    Examples
    --------
    >>> [round(v, 6) for v in beam_aligned_angles(CArm(primary_deg=25, secondary_deg=-10))]
    [-25.0, 10.0]
    """
    if abs(carm.primary_deg) >= 90.0:
        raise SpinesimError(f"a needle from the back cannot lie along the beam of the {carm.label} view",
                            hint="turn the C-arm to an AP or oblique view (LAO/RAO under 90°) first")
    return needle_angles(-carm.beam_direction)


def nudged_angles(carm: CArm, toward_left_deg: float, cranial_deg: float, right_deg: float,
                  up_deg: float) -> tuple[float, float]:
    """The needle's angles after a nudge on the image: the needle (at angles ``toward_left_deg``,
    ``cranial_deg``) turned ``right_deg`` toward the right of the image of ``carm`` as the trainee sees it,
    then ``up_deg`` toward its top (negative: left, down). The entry stays; the tip's projection moves
    that way.

    Raises
    ------
    SpinesimError
        If a step is larger than :data:`MAX_NUDGE_DEG`, the needle lies along the image direction it is
        nudged in (it cannot turn that way), or the nudge turns it past horizontal.

    Examples
    --------
    >>> [round(v, 6) for v in nudged_angles(CArm(), 0.0, 0.0, 5.0, -3.0)]  # AP: the image's right is the patient's
    [-5.0, -3.0]
    """
    direction = needle_direction(toward_left_deg, cranial_deg)
    for step_deg, toward, name in ((right_deg, carm.screen_right, "right"), (up_deg, carm.screen_up, "up")):
        direction = _turned(direction, toward, step_deg, name)
    left, cranial = needle_angles(direction)
    if abs(left) >= 90.0 or abs(cranial) >= 90.0:
        raise SpinesimError("that nudge turns the needle past horizontal",
                            hint="nudge the other way, or type the needle's angles")
    return left, cranial


def _turned(direction: np.ndarray, toward: np.ndarray, step_deg: float, name: str) -> np.ndarray:
    """The unit ``direction`` turned ``step_deg`` toward the unit vector ``toward`` (the image's ``name``
    direction), in the plane the two span."""
    if not np.isfinite(step_deg) or abs(step_deg) > MAX_NUDGE_DEG:
        raise SpinesimError(f"a needle nudge must be at most {MAX_NUDGE_DEG:g}°, got {step_deg!r}")
    if step_deg == 0.0:
        return direction
    across = toward - (toward @ direction) * direction
    length = float(np.linalg.norm(across))
    if length < 1e-6:
        raise SpinesimError(f"the needle lies along the image's {name} direction: a nudge cannot turn it that way",
                            hint="type the needle's angles, or take a view from another direction")
    step = np.radians(step_deg)
    return np.cos(step) * direction + np.sin(step) * across / length


def dragged_angles(carm: CArm, entry: np.ndarray, direction: np.ndarray, length_mm: float, du_pixels: float,
                   dv_pixels: float) -> tuple[float, float]:
    """The needle's angles after a drag on the image of ``carm``: the needle (from ``entry`` along the unit
    ``direction``) pivots about its entry so that the point ``length_mm`` along it (its tip, or where a
    needle about to go in would reach) moves on the image by the drag, ``du_pixels`` right and
    ``dv_pixels`` down, at the same distance from the X-ray source.

    Raises
    ------
    SpinesimError
        If the re-aimed needle would point past horizontal (out of the back) or the drag leaves the point
        behind the source.

    Examples
    --------
    >>> carm = CArm(isocenter=(0, 0, 0))
    >>> entry, down = np.array([0.0, 80.0, 0.0]), np.array([0.0, -1.0, 0.0])  # AP, the needle down the barrel
    >>> left, cranial = dragged_angles(carm, entry, down, 50.0, 20.0, 0.0)
    >>> tip = entry + 50.0 * needle_direction(left, cranial)
    >>> round(float(carm.project(tip)[0] - carm.project(entry + 50.0 * down)[0]), 1)  # the tip 20 px right (nearly)
    19.8
    """
    entry = np.asarray(entry, dtype=np.float64)
    point = entry + length_mm * np.asarray(direction, dtype=np.float64)
    u, v = carm.project(point) + np.array([du_pixels, dv_pixels])
    source, ray = carm.pixel_to_ray(u, v)
    along = float(ray @ carm.beam_direction)
    if along <= 1e-6:
        raise SpinesimError("that drag leaves the image", hint="drag a shorter way")
    aimed = source + ray * (carm.depth(point) / along)  # the same distance from the source as before
    left, cranial = needle_angles(aimed - entry)
    if abs(left) >= 90.0 or abs(cranial) >= 90.0:
        raise SpinesimError("that drag turns the needle past horizontal", hint="drag a shorter way")
    return left, cranial


def panned_pose(pose: CArmPose, carm: CArm, right_mm: float, up_mm: float) -> CArmPose:
    """``pose`` after the table moves so that the view (the isocentre of ``carm``, the C-arm in that pose)
    goes ``right_mm`` toward the image's right and ``up_mm`` toward its top: the angles, field and shutters
    stay.

    Examples
    --------
    >>> pose = CArmPose(setup="AP", field_cm=15)
    >>> moved = panned_pose(pose, CArm(isocenter=(0, 0, 40)), 10.0, -5.0)
    >>> [round(v, 3) for v in moved.isocenter], moved.field_cm, moved.setup
    ([-10.0, 0.0, 35.0], 15.0, None)
    """
    for value in (right_mm, up_mm):
        if not np.isfinite(value) or abs(value) > MAX_PAN_MM:
            raise SpinesimError(f"a table move must be at most {MAX_PAN_MM:g} mm, got {value!r}")
    centre = np.asarray(carm.isocenter) + right_mm * carm.screen_right + up_mm * carm.screen_up
    return pose.model_copy(update={"isocenter": tuple(round(float(v), 3) for v in centre), "setup": None})


def skin_point_on_ray(tracer: Tracer, carm: CArm, u: float, v: float) -> np.ndarray:
    """Where the X-ray through pixel ``(u, v)`` leaves the body toward the detector: the skin the
    trainee points at on the image (the back in an AP view), LPS mm.

    Raises
    ------
    SpinesimError
        If that ray misses the patient.
    """
    if not (np.isfinite(u) and np.isfinite(v) and -0.5 <= u <= carm.detector_pixels - 0.5
            and -0.5 <= v <= carm.detector_pixels - 0.5):
        raise SpinesimError(f"pixel ({u}, {v}) is outside the {carm.detector_pixels}-pixel image")
    source, direction = carm.pixel_to_ray(u, v)
    beyond = float(carm.depth(np.asarray(carm.isocenter))) + 250.0
    # Coming back from beyond the patient on the detector side, the first skin met is the near skin.
    try:
        return tracer.skin_entry(source + beyond * direction, -direction, search_mm=250.0)
    except SpinesimError:
        raise SpinesimError("there is no skin under that point of the image",
                            hint="click on the patient's body in the image") from None


def view_isocenter(scenario: Scenario, anatomy: Anatomy) -> tuple[float, float, float]:
    """Where the radiographer centres the C-arm: between the bodies of the target's two levels (or on
    the body of a medial branch's level), not on the target itself, which the trainee must find."""
    if scenario.target.level is not None:
        upper, lower = scenario.target.level.split("-")
        points = [anatomy.landmark(f"{upper}.body.center"), anatomy.landmark(f"{lower}.body.center")]
    else:
        points = [anatomy.landmark(f"{scenario.target.vertebra}.body.center")]
    return tuple(float(v) for v in np.mean(points, axis=0))


def entry_words(point, scenario: Scenario, anatomy: Anatomy) -> str:
    """A skin entry as a physician places it: mm left or right of the midline and cranial or caudal to the
    level the C-arm is centred on (the target's disc, or its vertebral body), no coordinates.

    The midline and level are those of :func:`view_isocenter` (the bodies' centres).
    """
    middle = view_isocenter(scenario, anatomy)
    across, up = point[0] - middle[0], point[2] - middle[2]  # LPS: +x the patient's left, +z cranial
    level = (f"the {scenario.target.level} disc" if scenario.target.level is not None
             else "the sacrum" if scenario.target.vertebra == "S1"
             else f"the {scenario.target.nerve_level} vertebral body")
    side = ("on the midline" if abs(across) < 0.5
            else f"{abs(across):.0f} mm {'left' if across > 0 else 'right'} of the midline")
    height = (f"level with {level}" if abs(up) < 0.5
              else f"{abs(up):.0f} mm {'cranial' if up > 0 else 'caudal'} to {level}")
    return f"skin {side}, {height}"


def carm_start(scenario: Scenario, anatomy: Anatomy) -> CArmPose:
    """The C-arm pose an attempt starts in: the scenario's, centred by the radiographer
    (:func:`view_isocenter`) unless the scenario names an isocentre."""
    start = scenario.start.carm
    return CArmPose(setup=start.setup, primary_deg=start.primary_deg, secondary_deg=start.secondary_deg,
                    isocenter=start.isocenter or view_isocenter(scenario, anatomy))


def carm_presets(scenario: Scenario, anatomy: Anatomy) -> dict[str, CArmPose]:
    """The C-arm preset buttons: name -> pose, for the scenario's level and side."""
    isocenter = view_isocenter(scenario, anatomy)
    side = "left" if scenario.target.side == "midline" else scenario.target.side
    if scenario.target.level is not None:
        squared = scenario.target.level.split("-")[1]
    else:
        squared = scenario.target.vertebra
    fields = {"isocenter": isocenter}
    ipsi = IPSILATERAL_OBLIQUE_DEG if side == "left" else -IPSILATERAL_OBLIQUE_DEG
    views = {
        "AP": carms.ap(**fields),
        "Square endplate": carms.square_endplate(anatomy, squared, **fields),
        "Ipsilateral oblique": carms.square_endplate(anatomy, squared, primary_deg=ipsi, **fields),
        "Lateral": carms.lateral(side=side, **fields),
        "CLO": carms.square_endplate(anatomy, squared, primary_deg=-np.sign(ipsi) * CONTRALATERAL_OBLIQUE_DEG, **fields),
    }
    return {name: CArmPose(setup=name, primary_deg=round(c.primary_deg, 2), secondary_deg=round(c.secondary_deg, 2),
                           isocenter=tuple(round(v, 3) for v in isocenter)) for name, c in views.items()}


# The ultrasound view buttons: label -> standard view (simulator.imaging.probe.standard_view), for the
# scenario's level and side; the first three as before, then the rest of a sonographer's lumbar scan, then
# the sacral views (the lower sacroiliac joint, the sacral hiatus across and along). Labels are one word
# each (they name the buttons' element ids).
PROBE_VIEWS = {"PSO": "paramedian-sagittal-oblique", "Articular": "articular", "Transverse": "transverse-interlaminar",
               "Spinous": "transverse-spinous", "Trident": "sagittal-transverse-process",
               "Lamina": "paramedian-sagittal", "SI-joint": "sacroiliac-joint", "Hiatus": "sacral-hiatus-transverse",
               "Hiatus-sagittal": "sacral-hiatus-sagittal"}
# Probe movements: name -> unit ("mm" for the translations, "deg" for the turns), and the largest step
# one press may make [ED: a slide of 2 cm or a turn of 45 degrees is already a new scan].
PROBE_MOVES = {"slide": "mm", "sweep": "mm", "rotate": "deg", "tilt": "deg", "rock": "deg"}
MAX_PROBE_STEP = {"mm": 20.0, "deg": 45.0}
# An in-plane needle enters the skin this far beyond the end of the probe's face (mm) [ED].
IN_PLANE_ENTRY_GAP_MM = 5.0


def probe_level_and_side(scenario: Scenario) -> tuple[str, str]:
    """The interspace and side the probe presets scan for the scenario's target (the medial branch's
    vertebra and the one below it; a midline target is scanned from the left)."""
    level = scenario.target.level
    if level is None:
        upper = "L5" if scenario.target.vertebra == "S1" else scenario.target.nerve_level
        level = f"{upper}-{level_below(upper)}"
    return level, "left" if scenario.target.side == "midline" else scenario.target.side


def probe_preset(scenario: Scenario, anatomy: Anatomy, name: str, current: ProbePose | None = None) -> ProbePose:
    """The probe's pose in the standard view of preset button ``name`` (the view named in the pose),
    keeping the settings of the ``current`` pose."""
    if name not in PROBE_VIEWS:
        raise SpinesimError(f"unknown ultrasound view {name!r}", hint=f"use one of: {', '.join(PROBE_VIEWS)}")
    level, side = probe_level_and_side(scenario)
    settings = {}
    if current is not None:
        probe = Probe.at(current)
        settings = {"kind": probe.kind, "depth_mm": probe.depth_mm, "gain_db": probe.gain_db,
                    "frequency_mhz": probe.frequency_mhz}
    return standard_view(anatomy, PROBE_VIEWS[name], level, side, **settings).pose(PROBE_VIEWS[name])


def moved_probe(anatomy: Anatomy, pose: ProbePose, movement: str, amount: float) -> ProbePose:
    """The probe's ``pose`` after one press of a movement control (:data:`PROBE_MOVES`; ``amount`` in
    mm or degrees, signed); after a slide or sweep the face is seated on the skin again. The view
    name stays."""
    if movement not in PROBE_MOVES:
        raise SpinesimError(f"unknown probe movement {movement!r}", hint=f"use one of: {', '.join(PROBE_MOVES)}")
    unit = PROBE_MOVES[movement]
    if not np.isfinite(amount) or abs(amount) > MAX_PROBE_STEP[unit]:
        raise SpinesimError(f"a probe {movement} step must be at most {MAX_PROBE_STEP[unit]:g} {unit}, got {amount!r}")
    moved = Probe.at(pose).moved(**{f"{movement}_{unit}": amount})
    return (on_skin(anatomy, moved) if unit == "mm" else moved).pose(pose.view)


def probe_with_settings(pose: ProbePose, depth_mm: float, gain_db: float, frequency_mhz: float) -> ProbePose:
    """The probe's ``pose`` with the machine settings turned to imaging depth ``depth_mm``, gain
    ``gain_db`` and centre frequency ``frequency_mhz`` (the focus follows the depth).

    Raises
    ------
    SpinesimError
        If the probe cannot take a setting (a frequency outside its kind's band).
    """
    changed = Probe.at(pose).with_settings(depth_mm=depth_mm, gain_db=gain_db, frequency_mhz=frequency_mhz,
                                           focus_mm=None)
    return changed.pose(pose.view)


def in_plane_entry(pose: ProbePose, end: str) -> np.ndarray:
    """A skin-level point just beyond the image-``end`` ("left" or "right") of the face of the probe
    in ``pose``, in the image plane: where an in-plane needle goes in (LPS mm)."""
    if end not in ("left", "right"):
        raise SpinesimError(f"the needle enters at the image's left or right end of the probe, not {end!r}")
    probe = Probe.at(pose)
    if probe.kind == "linear":
        half_face = probe.footprint_mm / 2
    else:
        half_face = probe.radius_mm * np.sin(np.radians(probe.field_of_view_deg / 2))
    return probe.position + (1.0 if end == "right" else -1.0) * (half_face + IN_PLANE_ENTRY_GAP_MM) * probe.lateral
