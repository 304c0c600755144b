"""The expert path: a safe, textbook trajectory to a target, and the actions that perform it.

The planner samples needle directions in a cone around the procedure's textbook direction (the
target's ``textbook_direction`` and ``cone_deg``, see :mod:`simulator.case.targets`), in rings
:data:`STEP_DEG` apart. For each it finds where the line through the target leaves the skin, traces
the shaft from there, and rejects it if, before the target, it

- meets bone (for a medial branch block the needle must instead *end* on bone within
  :data:`BONE_ENDPOINT_MM` of the target),
- enters the dural sac, cord, a root or ganglion, a vessel or a disc, or leaves the body,
- passes within :data:`ROOT_CLEARANCE_MM` of a root's surface (paraesthesia, clinical.md §3),
- needs more than the needle's length (less a margin for the hub), or
- does not end in the target's acceptance zone.

Of the safe ones it keeps the one with the lowest ``angle_from_textbook_deg + DEPTH_WEIGHT *
depth_mm``: closest to the textbook angles first, shortest second. If no direction reaches the
target point itself, points inside the acceptance zone nearer its centre are tried next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from anatomy_models.errors import SpinesimError
from anatomy_models.structures import in_group
from scenarios.needles import NeedleSpec
from scenarios.schema import Scenario
from simulator.case.targets import UNSAFE_GROUPS, UNSAFE_TISSUES, Target, View
from simulator.imaging.carm import gun_barrel
from simulator.needle.ablation import MOTOR_TEST_V, SENSORY_CRITERION_V
from simulator.needle.shaft import Needle
from simulator.needle.trace import AIR, BONE_STANDOFF_MM, Trace, Tracer

# Ring spacing of the sampled directions, degrees.
STEP_DEG = 2.5
# A root may come no closer to the shaft than the paraesthesia distance plus half a millimetre (mm).
PARAESTHESIA_MM = 1.5
ROOT_CLEARANCE_MM = PARAESTHESIA_MM + 0.5
# For targets on bone: the bone surface must be within this distance of the target point (mm).
BONE_ENDPOINT_MM = 3.0
# The hub must stay this far out of the skin (mm), room to hold the needle.
HUB_MARGIN_MM = 10.0
# Score weight of depth against angle: 5 mm of extra depth costs as much as 1 degree off textbook.
DEPTH_WEIGHT = 0.2
# The same distance or score reached along two lines that meet at a point differs by rounding only (~1e-13):
# the search's bounds hold this far inside them, so they never drop a path the full search would keep.
ROUNDING_MARGIN = 1e-6
# Contrast volume the expert injects by procedure, mL (clinical.md §2.6 table).
# The sacroiliac arthrogram takes ~0.5 mL to outline the joint (it holds 0.6-2.5 mL); a caudal epidurogram
# 3 mL to show the sacral roots [ED].
EXPERT_CONTRAST_ML = {"interlaminar_epidural": 2.0, "transforaminal_epidural": 1.0, "facet_intra_articular": 0.3,
                      "medial_branch_block": 0.3, "sacroiliac_joint_injection": 0.5, "caudal_epidural": 3.0}
# What the expert names the contrast as: the pattern each target gives (clinical.md §2.7; a medial branch
# block's small periosteal spread at the SAP-TP junction reads as soft tissue, §2.4).
EXPERT_READING = {"interlaminar_epidural": "epidural", "transforaminal_epidural": "epidural",
                  "facet_intra_articular": "intra_articular", "medial_branch_block": "soft_tissue",
                  "sacroiliac_joint_injection": "intra_articular", "caudal_epidural": "epidural"}
# The injectate the expert gives after the contrast test, (mL, agent) by procedure: transforaminal local
# anaesthetic with non-particulate steroid 1-4 mL (§2.2 [S1][S19]); a medial branch block 0.5 mL of local
# anaesthetic, no steroid (§2.4 [S3]); a facet joint within its ~1 mL capsule with the contrast (§2.3
# [S31][S32]); interlaminar 3 mL [ED]; the sacroiliac joint 1 mL with its 0.5 mL of contrast, within what it
# holds; a caudal epidural 10 mL, the volume that reaches the lower lumbar levels from the hiatus [ED].
EXPERT_INJECTATE = {"interlaminar_epidural": (3.0, "steroid_nonparticulate"),
                    "transforaminal_epidural": (2.0, "steroid_nonparticulate"),
                    "facet_intra_articular": (0.5, "steroid_nonparticulate"),
                    "medial_branch_block": (0.5, "local_anaesthetic"),
                    "radiofrequency_ablation": (1.0, "local_anaesthetic"),
                    "sacroiliac_joint_injection": (1.0, "steroid_nonparticulate"),
                    "caudal_epidural": (10.0, "steroid_nonparticulate")}
# The expert's ablation (clinical.md §2.5 [S39][S40][S43]): sensory stimulation at the 0.5 V criterion, motor
# at 2 V (multifidus, no leg), 0.5-1 mL local anaesthetic, a lesion at 80 °C for 90 s; then the cannula
# drawn back along the groove by half its active tip, motor tested again, and a second lesion [ED: the
# half-tip step makes the two lesions overlap and reach further along the nerve].
EXPERT_SENSORY_V = SENSORY_CRITERION_V
EXPERT_MOTOR_V = MOTOR_TEST_V
EXPERT_LESION = {"temperature_c": 80.0, "seconds": 90.0}
REPOSITION_FRACTION = 0.5
# Procedures whose contrast run is watched on the trajectory view rather than the depth view: the sacroiliac
# arthrogram shows on the oblique that parts the joint lines; on lateral the joint lies behind the ilium.
CONTRAST_ON_TRAJECTORY_VIEW = ("sacroiliac_joint_injection",)
# Procedures whose contrast run is watched on AP (the alignment view): the transforaminal test, live or DSA, is
# read on AP, where a vessel runs away from the foramen and the epidural flow runs medially under the pedicle
# (clinical.md §2.2, §2.7 [S22]); a DSA run on lateral would also cost several times the dose through the
# thicker body (Hustinx 2018's reference level is 3000 mGy·cm² for the whole procedure).
CONTRAST_ON_ALIGNMENT_VIEW = ("transforaminal_epidural",)
# Procedures whose needle is steered on the target's own trajectory view, not down its barrel: a caudal needle
# runs up the sacral canal nearly along the sacrum, so a view down it would look through the whole pelvis from
# below (a 120 kVp frame at the exposure control's limit, simulator.imaging.dose); it is steered on the lateral.
STEERED_ON_TARGET_VIEW = ("caudal_epidural",)
# Procedures whose depth view, where the epidurogram is run, the expert collimates, and the shutters' opening
# there (share of the field, scenarios.poses.Shutters) [ED 0.5: a 7-8 cm square at the patient, the
# interlaminar window or the sacral canal with the needle's tip and the contrast's first spread]. The depth
# view of an epidural is a contralateral oblique or a lateral through the pelvis, whose frames cost 4-10 times
# an AP's (the exposure control climbs to 110-120 kVp there); collimating cuts the dose-area product in
# proportion to the field (the advice scoring.exposure gives a trainee), which keeps the expert's interlaminar
# and caudal epidurals under the epidural reference level of 500 mGy·cm² (scoring.exposure) as published
# expert practice is: caudal epidurals by one experienced radiologist, median 546 mGy·cm² over a median 13 s
# of fluoroscopy (Kim et al., J Spinal Disord Tech 2014, PubMed 24441060; clinical.md §3 [S61]); parasagittal
# interlaminar epidurals 302 +/- 120 mGy·cm² (Hong et al., Korean J Pain 30(3), 2017); the
# Belgian teaching hospital's epidurals, 174-550 mGy·cm² interquartile (Hustinx et al. 2018, scoring.exposure).
COLLIMATED_DEPTH_VIEW = ("interlaminar_epidural", "caudal_epidural")
EXPERT_SHUTTERS = 0.5


@dataclass(frozen=True)
class Trajectory:
    """A straight needle path.

    Parameters
    ----------
    entry : array (3,)
        Skin entry point, LPS mm.
    direction : array (3,)
        Unit needle direction.
    depth_mm : float
        Insertion depth that puts the tip on the target (on the bone surface for bone targets), mm.
    angle_from_textbook_deg : float
        Angle between ``direction`` and the textbook direction, degrees.
    trace : Trace
        Structures from the skin to the tip.
    root_clearance_mm : float
        Closest approach of the shaft to a root surface, mm.
    """

    entry: np.ndarray
    direction: np.ndarray
    depth_mm: float
    angle_from_textbook_deg: float
    trace: Trace
    root_clearance_mm: float

    @property
    def tip(self) -> np.ndarray:
        return self.entry + self.depth_mm * self.direction

    @property
    def score(self) -> float:
        """What the planner minimises (module docstring)."""
        return _score(self.angle_from_textbook_deg, self.depth_mm)


def cone_directions(axis: np.ndarray, cone_deg: float, step_deg: float = STEP_DEG) -> np.ndarray:
    """Unit vectors in rings ``step_deg`` apart around ``axis`` out to ``cone_deg``, axis first.

    Examples
    --------
    >>> d = cone_directions(np.array([0.0, -1.0, 0.0]), 5.0)
    >>> len(d), bool(np.allclose(np.linalg.norm(d, axis=1), 1))
    (20, True)
    """
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    helper = np.array([0.0, 0.0, 1.0]) if abs(axis[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    directions = [axis]
    for ring in np.arange(step_deg, cone_deg + 1e-9, step_deg):
        polar = np.radians(ring)
        count = max(6, int(round(2 * np.pi * np.sin(polar) / np.radians(step_deg))))
        for azimuth in np.linspace(0.0, 2 * np.pi, count, endpoint=False):
            directions.append(np.cos(polar) * axis + np.sin(polar) * (np.cos(azimuth) * u + np.sin(azimuth) * v))
    return np.array(directions)


def _unsafe(structure: str, tissue: str, avoid_groups: tuple[str, ...], avoid_tissues: tuple[str, ...]) -> bool:
    return tissue in avoid_tissues or any(in_group(structure, g) for g in avoid_groups)


def find_trajectory(tracer: Tracer, point: np.ndarray, textbook_direction: np.ndarray, cone_deg: float, *,
                    max_depth_mm: float, on_bone: bool = False,
                    accept_tip: Callable[[np.ndarray, str, str], bool] | None = None,
                    avoid_groups: tuple[str, ...] = UNSAFE_GROUPS, avoid_tissues: tuple[str, ...] = UNSAFE_TISSUES,
                    root_clearance_mm: float = ROOT_CLEARANCE_MM) -> Trajectory | None:
    """The best safe straight path to ``point`` within the cone (module docstring), or None.

    The search leaves out only what cannot be the answer, so it finds the path that trying every direction
    (:func:`direction_path` on each) finds: a point a tip would not clear the roots at (every needle that
    does not end on bone ends at the point), and a direction whose score, with the shallowest tip its skin
    entry allows, is no better than the best so far (the tracing and the roots' distances along the shaft
    are most of a plan's time).

    Parameters
    ----------
    tracer : Tracer
    point : array (3,)
        Where the tip should end, LPS mm.
    textbook_direction : array (3,)
        Centre of the cone of needle directions.
    cone_deg : float
        Half-angle of the cone, degrees.
    max_depth_mm : float
        Longest insertion the needle allows, mm.
    on_bone : bool
        The needle ends on the first bone it meets, which must lie near ``point``.
    accept_tip : callable (tip, structure, tissue) -> bool, optional
        Extra test of the final tip position (e.g. the target's zone).
    avoid_groups, avoid_tissues : tuples of str
        Structures and tissues the shaft must not enter before the tip.
    root_clearance_mm : float
        Minimum distance from the shaft to any root surface, mm (0 to allow contact).
    """
    point = np.asarray(point, dtype=np.float64)
    textbook = np.asarray(textbook_direction, dtype=np.float64)
    textbook = textbook / np.linalg.norm(textbook)
    if not on_bone and float(tracer.nerve_root_distance(point)) < root_clearance_mm - ROUNDING_MARGIN:
        return None
    best: Trajectory | None = None
    for direction in cone_directions(textbook, cone_deg):
        back = tracer.body_exit_depth(point, direction)
        if back is None:
            continue
        # The shallowest tip: the point itself, or a bone surface up to BONE_ENDPOINT_MM short of it.
        shallowest = back - (BONE_ENDPOINT_MM + BONE_STANDOFF_MM if on_bone else 0.0)
        if best is not None and _score(_angle_deg(direction, textbook), shallowest) >= best.score + ROUNDING_MARGIN:
            continue
        found = direction_path(tracer, point, direction, textbook, back, max_depth_mm=max_depth_mm, on_bone=on_bone,
                               accept_tip=accept_tip, avoid_groups=avoid_groups, avoid_tissues=avoid_tissues,
                               root_clearance_mm=root_clearance_mm, to_beat=None if best is None else best.score)
        if found is not None:
            best = found
    return best


def direction_path(tracer: Tracer, point: np.ndarray, direction: np.ndarray, textbook: np.ndarray, back: float, *,
                   max_depth_mm: float, on_bone: bool, accept_tip: Callable[[np.ndarray, str, str], bool] | None,
                   avoid_groups: tuple[str, ...], avoid_tissues: tuple[str, ...], root_clearance_mm: float,
                   to_beat: float | None = None) -> Trajectory | None:
    """The safe path to ``point`` along ``direction`` entering the skin ``back`` mm before it (the checks of the
    module docstring), or None; None too if its score is not below ``to_beat`` (then its distance from
    the roots, the dearest check, is not sampled). ``textbook`` is the cone's unit axis."""
    entry = point - back * direction
    reach = back + (BONE_ENDPOINT_MM if on_bone else 0.0)
    trace = tracer.trace(entry, direction, reach)
    depth = back
    bone = trace.first_bone()
    if on_bone:
        if bone is None or abs(bone.depth_in_mm - back) > BONE_ENDPOINT_MM:
            return None
        depth = bone.depth_in_mm - BONE_STANDOFF_MM
    elif bone is not None and bone.depth_in_mm < back:
        return None
    if depth > max_depth_mm:
        return None
    crossed = [s for s in trace.segments if s.depth_in_mm < depth]
    # The entry point sits on the skin to within the boundary tolerance: drop that sliver of air.
    if crossed[0].structure == AIR and crossed[0].depth_out_mm < 0.5 and len(crossed) > 1:
        crossed = crossed[1:]
    if any(_unsafe(s.structure, s.tissue, avoid_groups, avoid_tissues) for s in crossed):
        return None
    tip = entry + depth * direction
    if accept_tip is not None and not accept_tip(tip, crossed[-1].structure, crossed[-1].tissue):
        return None
    angle = _angle_deg(direction, textbook)
    if to_beat is not None and _score(angle, depth) >= to_beat:
        return None
    samples = entry + np.linspace(0.0, depth, max(2, int(depth / 0.5) + 1))[:, None] * direction
    clearance = float(np.min(tracer.nerve_root_distance(samples)))
    if clearance < root_clearance_mm:
        return None
    return Trajectory(entry, direction, float(depth), angle, trace, clearance)


def _score(angle_deg: float, depth_mm: float) -> float:
    """What the search minimises: closest to the textbook angles first, shortest second (:data:`DEPTH_WEIGHT`)."""
    return angle_deg + DEPTH_WEIGHT * depth_mm


def _angle_deg(direction: np.ndarray, textbook: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(np.dot(direction, textbook), -1.0, 1.0))))


def plan_trajectory(tracer: Tracer, target: Target, spec: NeedleSpec) -> Trajectory:
    """The expert trajectory to ``target`` with a needle of ``spec``.

    Raises
    ------
    SpinesimError
        If no safe textbook path exists (e.g. the needle is too short for this patient).
    """
    for point in _candidate_points(target):
        found = find_trajectory(tracer, point, target.textbook_direction, target.cone_deg,
                                max_depth_mm=spec.length_mm - HUB_MARGIN_MM, on_bone=target.on_bone,
                                accept_tip=target.zone.contains)
        if found is not None:
            return found
    raise SpinesimError(f"no safe textbook path to the {target.description} with a {spec.length_mm:.0f} mm needle",
                        hint="a longer needle may be needed for this patient")


def _candidate_points(target: Target) -> list[np.ndarray]:
    """The target point, then lattice points of the inner half of the zone, nearest first."""
    radius = 0.5 * target.zone.radius_mm
    half = np.arange(1.5, radius + 1e-9, 1.5)
    steps = np.concatenate([-half[::-1], [0.0], half])
    offsets = np.array([(a, b, c) for a in steps for b in steps for c in steps if a * a + b * b + c * c <= radius ** 2])
    offsets = offsets[np.argsort(np.linalg.norm(offsets, axis=1), kind="stable")]
    return [target.point + offset for offset in offsets]


def expert_actions(scenario: Scenario, target: Target, trajectory: Trajectory) -> list[dict]:
    """The actions of a reference attempt along ``trajectory`` (JSON records, timestamps in s).

    Align on the first view, take the trajectory view (down the needle's barrel; a caudal's lateral,
    :data:`STEERED_ON_TARGET_VIEW`) and place the needle, advance in stages with images, switch to the depth
    view (collimated for an epidural, :data:`COLLIMATED_DEPTH_VIEW`; and, for the interlaminar approach, check
    loss of resistance in the ligamentum flavum and again in the epidural space; caudal: in the canal), test with
    contrast under live fluoroscopy (DSA where the scenario allows it), name its pattern, check the spread on AP,
    give the injectate (:data:`EXPERT_INJECTATE`), finish. A radiofrequency ablation instead stimulates,
    anaesthetises and makes two lesions (:func:`_ablate`).
    """
    clock = _Clock()
    actions: list[dict] = []
    alignment, steered_view, depth_view = target.views
    trajectory_view = steered_view if scenario.procedure in STEERED_ON_TARGET_VIEW else View(
        f"gun barrel ({steered_view.name})",
        gun_barrel(Needle(trajectory.entry, trajectory.direction, trajectory.depth_mm, scenario.needle.spec())))
    collimated = {"shutters": EXPERT_SHUTTERS} if scenario.procedure in COLLIMATED_DEPTH_VIEW else {}

    def add(kind: str, after_s: float, **fields) -> None:
        actions.append({"type": kind, "t": clock.tick(after_s)} | fields)

    def shot(mode: str = "pulse", seconds: float | None = None) -> None:
        add("fluoro_shot", 2.0, mode=mode, **({"seconds": seconds} if seconds else {}))

    add("set_carm", 0.0, **alignment.to_json())
    shot()
    # A view steered on is the depth view's lateral (the caudal's), collimated like it.
    steered = collimated if scenario.procedure in STEERED_ON_TARGET_VIEW else {}
    add("set_carm", 5.0, **trajectory_view.to_json(), **steered)
    shot()
    add("place_needle", 8.0, entry=_rounded(trajectory.entry), direction=_rounded(trajectory.direction, 6))
    depth = trajectory.depth_mm
    # A caudal needle stops first in the sacrococcygeal ligament over the hiatus (the model's dorsal ligament
    # there), where resistance is felt before it gives into the canal.
    ligament = next((s for s in trajectory.trace.segments if in_group(s.structure, "supraspinous_ligament")), None)
    caudal_stop = ligament is not None and scenario.procedure == "caudal_epidural"
    done = 0.5 * (ligament.depth_in_mm + ligament.depth_out_mm) if caudal_stop else 0.5 * depth
    add("advance", 6.0, mm=round(done, 3))
    shot()
    add("set_carm", 5.0, **depth_view.to_json(), **collimated)
    shot()
    if scenario.procedure == "interlaminar_epidural":
        flavum = next((s for s in trajectory.trace.segments if in_group(s.structure, "ligamentum_flavum")), None)
        if flavum is not None and flavum.depth_in_mm + 1.0 > done:
            inside_flavum = min(flavum.depth_in_mm + 1.0, 0.5 * (flavum.depth_in_mm + flavum.depth_out_mm))
            add("advance", 6.0, mm=round(inside_flavum - done, 3))
            done = inside_flavum
            add("check_loss_of_resistance", 3.0)
    elif scenario.procedure == "caudal_epidural":
        add("check_loss_of_resistance", 3.0)  # in the sacrococcygeal ligament over the hiatus: firm
    else:
        add("advance", 6.0, mm=round(0.35 * depth, 3))
        done += 0.35 * depth
        shot()
    # A bone target is reached by pushing on to the bone, which stops the needle on its surface.
    final = depth - done + (1.0 if target.on_bone else 0.0)
    add("advance", 6.0, mm=round(final, 3))
    if scenario.procedure in ("interlaminar_epidural", "caudal_epidural"):
        add("check_loss_of_resistance", 3.0)
    shot()
    if scenario.procedure == "radiofrequency_ablation":
        _ablate(add, shot, scenario, alignment)
        return actions
    mode = "dsa" if scenario.imaging.dsa else "live"
    if scenario.procedure in CONTRAST_ON_TRAJECTORY_VIEW:
        add("set_carm", 5.0, **trajectory_view.to_json())
    elif scenario.procedure in CONTRAST_ON_ALIGNMENT_VIEW:
        add("set_carm", 5.0, **alignment.to_json())
    add("inject_contrast", 5.0, ml=EXPERT_CONTRAST_ML[scenario.procedure])
    add("fluoro_shot", 0.5, mode=mode, seconds=3.0)
    add("read_contrast", 2.0, reading=EXPERT_READING[scenario.procedure])
    if scenario.procedure not in CONTRAST_ON_ALIGNMENT_VIEW:  # there the run itself showed the spread on AP
        add("set_carm", 5.0, **alignment.to_json())
        shot()
    ml, agent = EXPERT_INJECTATE[scenario.procedure]
    add("inject_medication", 5.0, ml=ml, agent=agent)
    add("finish", 5.0)
    return actions


def _ablate(add: Callable, shot: Callable, scenario: Scenario, alignment: View) -> None:
    """The expert's stimulation, anaesthesia and two lesions (:data:`EXPERT_LESION`) at a placed RF cannula."""
    add("set_carm", 5.0, **alignment.to_json())
    shot()
    add("stimulate", 5.0, mode="sensory", volts=EXPERT_SENSORY_V)
    add("stimulate", 5.0, mode="motor", volts=EXPERT_MOTOR_V)
    ml, agent = EXPERT_INJECTATE[scenario.procedure]
    add("inject_medication", 5.0, ml=ml, agent=agent)
    add("lesion", 60.0, **EXPERT_LESION)
    add("withdraw", 95.0, mm=round(REPOSITION_FRACTION * scenario.needle.active_tip_mm, 3))
    shot()
    add("stimulate", 5.0, mode="motor", volts=EXPERT_MOTOR_V)
    add("lesion", 5.0, **EXPERT_LESION)
    add("finish", 95.0)


class _Clock:
    """Timestamps of a scripted attempt: each action some seconds after the previous one."""

    def __init__(self) -> None:
        self.now = 0.0

    def tick(self, seconds: float) -> float:
        self.now = round(self.now + seconds, 3)
        return self.now


def _rounded(vector: np.ndarray, decimals: int = 4) -> list[float]:
    return [round(float(v), decimals) for v in vector]
