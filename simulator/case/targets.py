"""Where the needle should go: a target point, an acceptance zone and the textbook approach.

Built from a scenario's target spec and the anatomy's landmarks (names per
``anatomy_models/structures.py``):

==========================  =================================================  =========================
procedure                   target point                                       acceptance zone
==========================  =================================================  =========================
interlaminar epidural       middle of the dorsal epidural space under the      inside ``epidural_space``
                            ligamentum flavum at ``{L}-{M}.interlaminar_      within 10 mm: the window
                            window.center`` (paramedian: 5 mm toward the       is ~12-15 mm tall
                            side, clinical.md §2.1)                            (§4.7 [S83])
transforaminal (subped.)    ``{L}-{M}.safe_triangle.{s}`` (§2.2a)              within 5 mm, inside the
                                                                               epidural compartment
                                                                               (epidural space or fat
                                                                               around the root; not
                                                                               the flavum, bone, a
                                                                               root, the sac, a vessel
                                                                               or the disc: §2.2, §6.3)
transforaminal (Kambin)     ``{L}-{M}.kambin_triangle.{s}`` (§2.2b)            same
facet intra-articular       ``facet_joint.{L}-{M}.{s}.inferior_recess``        inside that joint within
                            (§2.3: the easiest entry)                          10 mm of the recess
medial branch block         ``{L+1}.SAP_TP_junction.{s}`` for the L1-L4        within 5 mm (§6.3
                            medial branches; the S1 SAP-ala junction for the   [S119]), resting on bone
                            L5 dorsal ramus (§2.4 [S3]), moved onto the
                            dorsal bone surface met along the approach (the
                            nerve runs on it, under the mamillo-accessory
                            ligament)
radiofrequency ablation     the same junction, met on bone along the caudal-   the active tip along the
                            oblique approach (§2.5 [S39]); the nerve's course  nerve: the tip within
                            is the segment :data:`NERVE_COURSE_MM` long from   :data:`ALONG_NERVE_MM` of
                            there along the groove (``Target.nerve_course``)   its course (§6.3 [ED]:
                                                                               within 5 mm of the line)
sacroiliac joint injection  ``sacroiliac_joint.{s}.inferior_third``: the       inside that joint within
                            caudal third of the joint, entered along the       :data:`SI_ZONE_MM`
                            joint's plane from its posterior line (Dussault
                            2000)
caudal epidural             the sacral canal :data:`CAUDAL_ADVANCE_MM` above   inside ``epidural_space``
                            ``sacral_hiatus.apex``, along the canal            within :data:`CAUDAL_ZONE_MM`,
                            (Aggarwal 2009: not more than ~7 mm past the apex  at least
                            where S2 comes closest)                            :data:`CAUDAL_SAC_MARGIN_MM`
                                                                               below the dural sac's end
==========================  =================================================  =========================

The approach gives the textbook needle direction (a cone the expert planner searches) and the C-arm
views to use, built with the named set-ups of :mod:`simulator.imaging.carm` (its angle conventions).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Callable

import numpy as np

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.structures import in_group, level_below
from anatomy_models.tissues import BONE_TISSUES
from scenarios.poses import CArmPose
from scenarios.schema import Scenario, TargetSpec
from simulator.imaging.carm import (CArm, ap, contralateral_oblique, gun_barrel, ipsilateral_oblique, lateral,
                                    scotty_dog, square_endplate)
from simulator.needle.contrast import in_epidural_compartment
from simulator.needle.sacral_contrast import dural_sac_end
from simulator.needle.shaft import Needle
from simulator.needle.trace import BONE_STANDOFF_MM, Tracer

# Facet joint angle from the sagittal plane by interspace, degrees (clinical.md §4.6 [ED],
# interpolated from [S80][S81]); the oblique view that opens the joint matches it (§2.3).
FACET_ANGLE_DEG = {"T12-L1": 23.0, "L1-L2": 27.0, "L2-L3": 32.0, "L3-L4": 38.0, "L4-L5": 45.0, "L5-S1": 49.0}
# Paramedian interlaminar entry: the target sits this far off the midline toward the side (mm) [ED].
# The interlaminar needle runs this far cranially from the axial plane (deg), and the AP is tilted caudally by as much
# to open the window along it: "AP with cranio-caudal tilt to open the interlaminar window", the needle "straight
# down the barrel" (clinical.md §2.1 [S7][S10]) [ED 15, within the 10-20 of practice]. The AP squared to the lower
# vertebra's endplate (16.6 deg cranial at L4-L5, 40 at L5-S1) put the expert's needle 33 and 56 deg off its beam,
# a long shaft across the AP (issue 16/21's blind read).
INTERLAMINAR_CRANIAL_DEG = 15.0
PARAMEDIAN_OFFSET_MM = 5.0
# From mid ligamentum flavum to mid dorsal epidural space, mm: half the flavum's 3.6 mm and half the
# space's 4-6 mm (clinical.md §4.7 [S89][S91]).
WINDOW_TO_EPIDURAL_MM = 1.8 + 2.5
# Structures a needle must not end in (and the planner must not cross) on the way to any target.
UNSAFE_GROUPS = ("dural_sac", "spinal_cord", "cauda_equina", "nerve_root", "dorsal_root_ganglion")
UNSAFE_TISSUES = ("blood", "disc_annulus", "disc_nucleus", "air")


@dataclass(frozen=True)
class Zone:
    """Where the tip counts as on target.

    Parameters
    ----------
    center : array (3,)
        LPS mm.
    radius_mm : float
        The tip must be within this distance of ``center``.
    inside : tuple of str
        Groups the tip must be in (any of them); empty for no requirement.
    not_inside : tuple of str
        Groups the tip must not be in.
    not_tissues : tuple of str
        Tissue classes the tip must not be in.
    compartment : callable (point, structure, tissue) -> bool, optional
        A further test the tip must pass (the transforaminal's epidural compartment).
    """

    center: np.ndarray
    radius_mm: float
    inside: tuple[str, ...] = ()
    not_inside: tuple[str, ...] = UNSAFE_GROUPS
    not_tissues: tuple[str, ...] = UNSAFE_TISSUES
    compartment: Callable[[np.ndarray, str, str], bool] | None = None

    def contains(self, point: np.ndarray, structure: str, tissue: str) -> bool:
        """Whether a tip at ``point`` in ``structure`` (of ``tissue``) is on target."""
        if np.linalg.norm(np.asarray(point) - self.center) > self.radius_mm:
            return False
        if self.inside and not any(in_group(structure, g) for g in self.inside):
            return False
        if self.compartment is not None and not self.compartment(point, structure, tissue):
            return False
        if any(in_group(structure, g) for g in self.not_inside) or tissue in self.not_tissues:
            return False
        return True


@dataclass(frozen=True)
class View:
    """A named C-arm pose the procedure uses."""

    name: str
    carm: CArm

    @property
    def pose(self) -> CArmPose:
        """The C-arm pose that takes this view (angles and isocentre rounded to 0.001)."""
        return CArmPose(setup=self.name, primary_deg=round(self.carm.primary_deg, 3),
                        secondary_deg=round(self.carm.secondary_deg, 3),
                        isocenter=tuple(round(v, 3) for v in self.carm.isocenter))

    def to_json(self) -> dict:
        """The fields of a ``set_carm`` action that take this view."""
        return self.pose.to_json()


@dataclass(frozen=True)
class Target:
    """A procedure's goal in one anatomy.

    Parameters
    ----------
    procedure : str
        Scenario procedure.
    description : str
        Human-readable ("left L4-L5 safe triangle").
    point : array (3,)
        Target point, LPS mm.
    zone : Zone
        Acceptance zone.
    textbook_direction : array (3,)
        Unit needle direction of the textbook approach (skin toward target), LPS.
    cone_deg : float
        Half-angle of the cone of directions the planner searches around it, degrees.
    views : tuple of View
        C-arm views in the order they are used: the alignment view, the trajectory view, the depth
        (safety) view.
    on_bone : bool
        True when the needle is meant to rest on bone at the target (medial branch block).
    landmark : str, optional
        The landmark the target point comes from.
    entry_point : array (3,), optional
        Where the textbook line through the target meets the skin, LPS mm (None if it does not).
    entry_radius_mm : float
        Radius of the skin region the cone of textbook directions enters through, mm (the depth
        times the tangent of the cone's half-angle): where to prep and puncture.
    nerve_course : tuple of two arrays (3,), optional
        Radiofrequency ablation: the treated nerve's course in the groove, (cranial end at the target
        point, caudal end), LPS mm.
    """

    procedure: str
    description: str
    point: np.ndarray
    zone: Zone
    textbook_direction: np.ndarray
    cone_deg: float
    views: tuple[View, ...]
    on_bone: bool = False
    landmark: str | None = None
    entry_point: np.ndarray | None = None
    entry_radius_mm: float = 0.0
    nerve_course: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def nerve_direction(self) -> np.ndarray | None:
        """Unit direction of the nerve's course from its caudal end to its cranial end (the way a
        parallel cannula points), None without a nerve course."""
        if self.nerve_course is None:
            return None
        span = self.nerve_course[0] - self.nerve_course[1]
        return span / np.linalg.norm(span)

    def to_json(self) -> dict:
        course = None if self.nerve_course is None else [np.round(p, 3).tolist() for p in self.nerve_course]
        return {"procedure": self.procedure, "description": self.description,
                "point": np.round(self.point, 3).tolist(), "zone_radius_mm": self.zone.radius_mm,
                "landmark": self.landmark, "views": [v.to_json() for v in self.views],
                "entry_point": None if self.entry_point is None else np.round(self.entry_point, 3).tolist(),
                "entry_radius_mm": round(self.entry_radius_mm, 3)} | ({"nerve_course": course} if course else {})


def needle_direction(oblique_deg: float, side_sign: float, cranial_deg: float, medial_deg: float = 0.0) -> np.ndarray:
    """Unit direction of a needle from the back: ``oblique_deg`` from sagittal coming from the side
    ``side_sign`` (+1 left, -1 right, 0 midline), tip moving cranially by ``cranial_deg``.
    """
    angle = np.radians(oblique_deg + medial_deg)
    horizontal = np.array([-side_sign * np.sin(angle), -np.cos(angle), 0.0])
    direction = horizontal * np.cos(np.radians(cranial_deg)) + np.array([0, 0, np.sin(np.radians(cranial_deg))])
    return direction / np.linalg.norm(direction)


def coaxial_direction(carm: CArm, point: np.ndarray) -> np.ndarray:
    """The unit direction (LPS) of a needle coaxial in ``carm``'s view with its tip at ``point``: along the ray from
    the detector side toward the source, so the shaft projects onto the tip's own pixel.

    >>> carm = CArm(primary_deg=20.0)
    >>> d = coaxial_direction(carm, np.array([10.0, 0.0, -30.0]))
    >>> u = carm.project(np.array([[10.0, 0.0, -30.0], [10.0, 0.0, -30.0] - 60.0 * d]))
    >>> float(np.abs(u[0] - u[1]).max()) < 1e-9, bool(d[1] < 0)   # one pixel; the tip anterior of the hub
    (True, True)
    """
    toward_source = carm.source - np.asarray(point, dtype=np.float64)
    return toward_source / np.linalg.norm(toward_source)


def _side_sign(side: str) -> float:
    return {"left": 1.0, "right": -1.0, "midline": 0.0}[side]


def _first_landmark(anatomy: Anatomy, names: list[str]) -> tuple[str, np.ndarray]:
    for name in names:
        if name in anatomy.landmarks:
            return name, anatomy.landmark(name)
    anatomy.landmark(names[0])  # raises with suggestions
    raise AssertionError


def target_for(scenario: Scenario, anatomy: Anatomy, tracer: Tracer) -> Target:
    """The :class:`Target` of ``scenario``'s target spec in ``anatomy``."""
    spec = scenario.target
    builders = {
        "interlaminar_epidural": _interlaminar,
        "transforaminal_epidural": _transforaminal,
        "facet_intra_articular": _facet,
        "medial_branch_block": _medial_branch,
        "radiofrequency_ablation": _ablation,
        "sacroiliac_joint_injection": _sacroiliac,
        "caudal_epidural": _caudal,
    }
    target = builders[scenario.procedure](scenario, spec, anatomy, tracer)
    depth = tracer.body_exit_depth(target.point, target.textbook_direction)
    if depth is None:
        return target
    return replace(target, entry_point=target.point - depth * target.textbook_direction,
                   entry_radius_mm=float(depth * np.tan(np.radians(target.cone_deg))))


def _ap_view(anatomy: Anatomy, level: str, centre: str) -> View:
    """AP squared to the superior endplate of ``level``, centred on vertebra ``centre``."""
    return View(f"AP squared to {level}", square_endplate(anatomy, level, isocenter=_centre(anatomy, centre)))


def _centre(anatomy: Anatomy, level: str) -> tuple[float, float, float]:
    return tuple(anatomy.landmark(f"{level}.body.center"))


def _side(sign: float) -> str:
    return "right" if sign < 0 else "left"


def _labelled(anatomy: Anatomy, group: str) -> bool:
    """Whether the label table names ``group`` (an import may label only the vertebrae)."""
    return any(in_group(label.name, group) for label in anatomy.label_table)


def _interlaminar(scenario: Scenario, spec: TargetSpec, anatomy: Anatomy, tracer: Tracer) -> Target:
    upper = spec.level.split("-")[0]
    window = anatomy.landmark(f"{spec.level}.interlaminar_window.center")
    sign = _side_sign(spec.side)
    labelled = _labelled(anatomy, "epidural_space")
    if labelled:
        point = _dorsal_epidural_point(tracer, window, sign, spec.level)
    else:
        # Vertebra labels only: the middle of the space lies half the flavum and half the space's
        # depth in front of the window's centre (mid flavum).
        point = window + np.array([sign * PARAMEDIAN_OFFSET_MM, -WINDOW_TO_EPIDURAL_MM, 0.0])
    direction = needle_direction(0.0, sign, INTERLAMINAR_CRANIAL_DEG, medial_deg=10.0 if sign else 0.0)
    # The AP tilted caudally along the needle's cranial angle opens the window, the needle runs down it (a short
    # stub, not a long shaft across the image); depth on the contralateral oblique at ~50 deg (45-60, §1 [S7][S11])
    # keeping the tilt that squares the lower endplate [ED: the reference run's view, its dose through the pelvis
    # at L5-S1 measured in tests/scoring/test_grade_order.py].
    ap = View(f"AP caudal {INTERLAMINAR_CRANIAL_DEG:.0f} deg ({spec.level} window open)",
              CArm(primary_deg=0.0, secondary_deg=-INTERLAMINAR_CRANIAL_DEG, isocenter=_centre(anatomy, upper)))
    squared = _ap_view(anatomy, level_below(upper), upper).carm
    clo = contralateral_oblique(anatomy, upper, _side(sign), 50.0, secondary_deg=squared.secondary_deg)
    views = (ap, ap, View("contralateral oblique 50 deg", clo))
    zone = Zone(point, 10.0, inside=("epidural_space",) if labelled else ())
    return Target(scenario.procedure, f"{spec.side} {spec.level} dorsal epidural space", point, zone, direction, 25.0,
                  views, landmark=f"{spec.level}.interlaminar_window.center")


def _dorsal_epidural_point(tracer: Tracer, window: np.ndarray, sign: float, level: str) -> np.ndarray:
    """The middle of the dorsal epidural space: between the level's ligamentum flavum and the dural
    sac, going anteriorly (-y) down a column through the window :data:`PARAMEDIAN_OFFSET_MM` toward
    the side (midline for ``sign`` 0). Where the space is too thin to show on this grid, columns a
    little more medial or lateral are tried.
    """
    for offset in PARAMEDIAN_OFFSET_MM + np.array([0.0, -2.0, 2.0, -4.0, 4.0]):
        start = window + np.array([sign * offset if sign else offset - PARAMEDIAN_OFFSET_MM, 40.0, 0.0])
        trace = tracer.trace(start, np.array([0.0, -1.0, 0.0]), 80.0)
        flavum = next((s for s in trace.segments if in_group(s.structure, f"ligamentum_flavum.{level}")), None)
        after = flavum.depth_out_mm if flavum is not None else 0.0
        for segment in trace.segments:
            if segment.depth_in_mm < after - 1e-6:
                continue
            if in_group(segment.structure, "dural_sac"):
                break
            if in_group(segment.structure, "epidural_space"):
                return start + 0.5 * (segment.depth_in_mm + segment.depth_out_mm) * np.array([0.0, -1.0, 0.0])
    raise SpinesimError(f"no dorsal epidural space under the {level} interlaminar window",
                        hint="check the anatomy's labels (epidural_space, ligamentum_flavum) and the window landmark")


def _transforaminal(scenario: Scenario, spec: TargetSpec, anatomy: Anatomy, tracer: Tracer) -> Target:
    upper = spec.level.split("-")[0]
    approach = scenario.approach
    name = f"{spec.level}.{'safe_triangle' if approach == 'subpedicular' else 'kambin_triangle'}.{spec.side}"
    point = anatomy.landmark(name)
    sign = _side_sign(spec.side)
    # Subpedicular: the Scotty dog, an ipsilateral oblique of ~20-35 deg; Kambin: more oblique, aimed at the SAP's
    # ventral edge at disc level (§2.2, §2.6).
    oblique = 25.0 if approach == "subpedicular" else 35.0
    side = _side(sign)
    # The Scotty-dog angle is measured from the SAP below; without its label, the textbook oblique.
    angle = None if _labelled(anatomy, f"{level_below(upper)}.SAP.{side}") else oblique
    trajectory = (View(f"Scotty dog {upper} {side}", scotty_dog(anatomy, upper, side, angle,
                                                                isocenter=_centre(anatomy, upper)))
                  if approach == "subpedicular" else
                  View(f"ipsilateral oblique {oblique:g} deg", ipsilateral_oblique(anatomy, upper, side, oblique)))
    views = (_ap_view(anatomy, level_below(upper), upper), trajectory,
             View("lateral", lateral(anatomy, upper, side)))
    # The needle is placed coaxial ("gun-barrel") in the trajectory view (clinical.md §2.2(a) [S5]): along that
    # view's ray through the target, so it shows as a dot with the hub over it. The textbook 25 deg oblique and 10 deg
    # cranial, 12.5 deg off the Scotty dog's ray on the built-in patient, drew the expert's shaft as a 1.5 cm line across the
    # trajectory view (issue 16/21's blind read of the TFESI's Scotty dog).
    direction = coaxial_direction(trajectory.carm, point)
    # The injectate must reach the ventral epidural space and the root sleeve through the foramen
    # (clinical.md §2.2 [S1][S2]): within 5 mm of the triangle the tip has to be in the epidural
    # compartment (the epidural space, or the fat around the exiting root), where contrast takes the
    # epidural pattern. A tip in the ligamentum flavum, the pedicle, the SAP or the soft tissue away
    # from the root is not on target, however close.
    foraminal = (partial(in_epidural_compartment, tracer)
                 if _labelled(anatomy, "epidural_space") or tracer.root_codes().size else None)
    zone = Zone(point, 5.0, compartment=foraminal)
    return Target(scenario.procedure, f"{spec.side} {spec.level} {'safe triangle' if approach == 'subpedicular' else 'Kambin triangle'}",
                  point, zone, direction, 20.0, views, landmark=name)


def _facet(scenario: Scenario, spec: TargetSpec, anatomy: Anatomy, tracer: Tracer) -> Target:
    upper = spec.level.split("-")[0]
    joint = f"facet_joint.{spec.level}.{spec.side}"
    name = f"{joint}.inferior_recess"
    point = anatomy.landmark(name)
    sign = _side_sign(spec.side)
    direction = _joint_line_direction(anatomy, tracer, joint, sign, FACET_ANGLE_DEG.get(spec.level, 40.0))
    side = _side(sign)
    # The oblique is turned until the joint is a lucent line and the needle runs coaxial down it (clinical.md §2.3
    # [S31][S32]): the view looks along the joint-line direction at the joint, so its beam is the needle's. At the
    # table angle (45 deg at L4-L5) the joint-line needle lay 10 deg off the beam, a long in-plane shaft on the
    # working view (issue 16/21's blind read).
    along_joint = gun_barrel(Needle(entry=point - 50.0 * direction, direction=direction, depth_mm=50.0))
    views = (_ap_view(anatomy, level_below(upper), upper),
             View(f"ipsilateral oblique {abs(along_joint.primary_deg):.0f} deg (joint line)", along_joint),
             View("lateral", lateral(anatomy, upper, side)))
    zone = Zone(point, 10.0, inside=(joint,) if _labelled(anatomy, joint) else ())
    return Target(scenario.procedure, f"{spec.side} {spec.level} facet joint, inferior recess", point, zone, direction,
                  20.0, views, landmark=name)


def _joint_line_direction(anatomy: Anatomy, tracer: Tracer, joint: str, sign: float, table_angle_deg: float) -> np.ndarray:
    """A needle direction in the joint's plane, from the back: the posterior-to-anterior axis
    projected onto the plane of the joint's voxels (their least principal axis is its normal); the
    table angle (clinical.md §4.6) when the joint has too few voxels to fit a plane.
    """
    codes = tracer.codes_in_group(joint)
    ijk = np.argwhere(np.isin(tracer.codes, codes)) if codes.size else np.zeros((0, 3))
    fallback = needle_direction(table_angle_deg, sign, 5.0)
    if len(ijk) < 10:
        return fallback
    points = tracer.volume.voxel_to_world(ijk)
    _, _, axes = np.linalg.svd(points - points.mean(axis=0), full_matrices=False)
    normal = axes[2]
    anterior = np.array([0.0, -1.0, 0.0])
    direction = anterior - np.dot(anterior, normal) * normal
    if np.linalg.norm(direction) < 0.3:
        return fallback
    return direction / np.linalg.norm(direction)


# The medial branch lies on the dorsal surface of the SAP-TP junction: a junction landmark up to this
# far (mm) beyond the bone surface met along the approach is moved onto that surface [ED].
DORSAL_SURFACE_SEARCH_MM = 10.0


# The L5 dorsal ramus crosses the sacral ala at the base of the S1 SAP (clinical.md §2.4) and runs down over
# the sacrum's dorsal surface; the ala's upper border slopes down and out, and behind it the lateral mass's
# dorsal surface rises to the sacral tuberosity. The target is where a needle along the approach lands on
# the sacrum nearest the junction's landmark: rays along it aimed at points across it, within
# GROOVE_REACH_MM of the landmark either way in steps of GROOVE_STEP_MM, each landing where it first meets
# bone; only a landing on the sacrum with GROOVE_SOLID_MM of bone under it along the ray counts (a ray
# that grazes the ala's thin upper edge or the SAP's lateral face has the psoas or the foramen under it)
# [ED].
GROOVE_REACH_MM = 8.0
GROOVE_STEP_MM = 0.5
GROOVE_SOLID_MM = 2.0
GROOVE_RAY_BACK_MM = 40.0       # the rays start this far behind the landmark, clear of the bone around it
GROOVE_LANDING_MM = DORSAL_SURFACE_SEARCH_MM  # a landing farther from the landmark is on other bone
VENTRAL = np.array([0.0, -1.0, 0.0])


def sacral_groove_landing(tracer: Tracer, landmark: np.ndarray, direction: np.ndarray,
                          sacrum: str = "S1") -> np.ndarray | None:
    """Where a needle along ``direction`` lands on the sacrum (the structure group ``sacrum``) nearest
    ``landmark``, within a marching step short of the bone; None if no ray across the landmark lands on it.

    The rays are aimed at a square grid of points across ``direction`` around the landmark (side twice
    :data:`GROOVE_REACH_MM`); a landing counts where the first bone a ray meets is the sacrum's, the ray
    stays in bone for :data:`GROOVE_SOLID_MM` beyond it and it lies within :data:`GROOVE_LANDING_MM` of the
    landmark. The path up to a landing is free of bone by construction, so a cannula laid along the approach
    reaches it.
    """
    direction = np.asarray(direction, dtype=np.float64) / np.linalg.norm(direction)
    across = np.cross(direction, [0.0, 0.0, 1.0])
    across = across / np.linalg.norm(across) if np.linalg.norm(across) > 1e-6 else np.array([1.0, 0.0, 0.0])
    up = np.cross(across, direction)
    offsets = np.arange(-GROOVE_REACH_MM, GROOVE_REACH_MM + 1e-9, GROOVE_STEP_MM)
    a, b = (g.ravel() for g in np.meshgrid(offsets, offsets, indexing="ij"))
    starts = landmark + a[:, None] * across + b[:, None] * up - GROOVE_RAY_BACK_MM * direction
    step = tracer.step_mm
    depths = np.arange(0.0, GROOVE_RAY_BACK_MM + GROOVE_REACH_MM + GROOVE_SOLID_MM, step)
    codes = tracer.codes_at(starts[:, None, :] + depths[None, :, None] * direction)
    bone_codes = np.array([c for c, tissue in enumerate(tracer.tissues) if tissue in BONE_TISSUES], dtype=np.int64)
    bone = np.isin(codes, bone_codes)
    first = bone.argmax(axis=1)
    solid = int(round(GROOVE_SOLID_MM / step))
    rows = np.arange(len(starts))
    under = np.minimum(first[:, None] + np.arange(solid)[None, :], len(depths) - 1)
    landed = (bone.any(axis=1) & (first > 0) & np.isin(codes[rows, first], tracer.codes_in_group(sacrum))
              & bone[rows[:, None], under].all(axis=1))
    if not landed.any():
        return None
    points = starts + depths[np.maximum(first - 1, 0)][:, None] * direction  # the last sample before the bone
    distance = np.where(landed, np.linalg.norm(points - landmark, axis=1), np.inf)
    nearest = int(np.argmin(distance))
    return points[nearest] if distance[nearest] <= GROOVE_LANDING_MM else None


def _bone_surface_near(tracer: Tracer, landmark: np.ndarray, direction: np.ndarray) -> np.ndarray | None:
    """Where a needle along ``direction`` aimed at ``landmark`` first meets bone near it (None if no bone
    lies within :data:`DORSAL_SURFACE_SEARCH_MM` before it)."""
    back = tracer.body_exit_depth(landmark, direction)
    if back is None:
        return None
    entry = landmark - back * direction
    # A landmark on a surface may sit up to a voxel outside the labelled bone: look that far past it.
    reach = back + float(np.linalg.norm(tracer.anatomy.ct.spacing))
    bone = tracer.trace(entry, direction, reach).first_bone()
    if bone is None or bone.depth_in_mm < back - DORSAL_SURFACE_SEARCH_MM:
        return None
    return entry + (bone.depth_in_mm - BONE_STANDOFF_MM) * direction


def _dorsal_bone_surface(tracer: Tracer, landmark: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """:func:`_bone_surface_near`, or the landmark itself where no bone lies near it."""
    point = _bone_surface_near(tracer, landmark, direction)
    return landmark if point is None else point


def _on_ala(tracer: Tracer, landmark: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The L5 dorsal ramus block's target: the bone the approach meets near the landmark; else (the iliac
    crest in the way) where a needle from straight behind lands on the sacrum nearest it
    (:func:`sacral_groove_landing`); else the landmark itself."""
    point = _bone_surface_near(tracer, landmark, direction)
    if point is None:
        point = sacral_groove_landing(tracer, landmark, VENTRAL)
    return landmark if point is None else point


def _medial_branch(scenario: Scenario, spec: TargetSpec, anatomy: Anatomy, tracer: Tracer) -> Target:
    level = spec.nerve_level
    below = level_below(level)
    if below == "S1":
        names = [f"S1.SAP_ala_junction.{spec.side}", f"S1.SAP_TP_junction.{spec.side}"]
    else:
        names = [f"{below}.SAP_TP_junction.{spec.side}"]
    name, landmark = _first_landmark(anatomy, names)
    sign = _side_sign(spec.side)
    # Down the ipsilateral oblique onto the SAP-TP junction (§2.4, §2.5: ~20 deg).
    direction = needle_direction(20.0, sign, 0.0)
    point = _on_ala(tracer, landmark, direction) if below == "S1" else _dorsal_bone_surface(tracer, landmark, direction)
    side = _side(sign)
    views = (_ap_view(anatomy, below, below),
             View("ipsilateral oblique 20 deg", ipsilateral_oblique(anatomy, below, side, 20.0)),
             View("lateral", lateral(anatomy, below, side)))
    zone = Zone(point, 5.0)
    junction = "SAP-ala" if "ala" in name else "SAP-TP"
    return Target(scenario.procedure, f"{spec.side} {spec.nerve} at the {below} {junction} junction", point, zone,
                  direction, 25.0, views, on_bone=True, landmark=name)



# The SIS parallel approach (clinical.md §2.5 [S39]): from a squared AP, ~20 deg ipsilateral oblique (none
# for the L5 dorsal ramus, where the iliac crest is in the way) and 40-45 deg caudal tilt; the cannula
# comes from below and lies along the groove. On the ala the dorsal slope of the sacrum below it leaves
# less room: past ~27 deg of tilt the modelled S1 lamina stops the cannula short of the groove, so the
# L5 dorsal ramus is approached with 25 deg [ED]. The groove's course is modelled as that line: the nerve
# runs from where it crosses the TP's (the ala's) upper border, the target point, caudally, dorsally and
# medially along the groove toward the mamillo-accessory ligament [S3].
RFA_OBLIQUE_DEG = 20.0
RFA_CAUDAL_TILT_DEG = {"SAP-TP": 42.5, "SAP-ala": 25.0}
# The textbook line the caudal-oblique view looks down, from this far out to the target (mm).
GUN_BARREL_DEPTH_MM = 50.0
# The length of the nerve in the groove that a lesion can reach, mm [ED]: longer than one 10 mm lesion
# (so a second lesion after repositioning adds to the first, §2.5 [S42]).
NERVE_COURSE_MM = 15.0
# The tip is on target anywhere along the nerve's course within this distance of it (mm): the cannula
# drawn back along the groove for a second lesion is still on target (clinical.md §6.3 [ED]: within 5 mm).
ALONG_NERVE_MM = 5.0
# A cannula within this angle of the nerve's course lies parallel to it (clinical.md §6.3 [ED]: <= 20 deg).
PARALLEL_DEG = 20.0


def _ablation(scenario: Scenario, spec: TargetSpec, anatomy: Anatomy, tracer: Tracer) -> Target:
    block = _medial_branch(scenario, spec, anatomy, tracer)
    sign = _side_sign(spec.side)
    below = level_below(spec.nerve_level)
    oblique = 0.0 if below == "S1" else RFA_OBLIQUE_DEG
    # By level, not by the landmark's name: on a CT with vertebra labels only the S1 landmark is estimated
    # as a SAP-TP junction, and the L5 dorsal ramus still lies on the ala.
    tilt = RFA_CAUDAL_TILT_DEG["SAP-ala" if below == "S1" else "SAP-TP"]
    direction = needle_direction(oblique, sign, tilt)
    landmark = anatomy.landmark(block.landmark)
    # On the sloping ala the cannula lands on the lateral mass's dorsal slope behind the junction: the groove
    # where the approach meets the sacrum, so that the nerve's course up to it lies off the bone.
    point = (sacral_groove_landing(tracer, landmark, direction) if below == "S1" else
             _bone_surface_near(tracer, landmark, direction))
    point = block.point if point is None else point
    ap = _ap_view(anatomy, below, below)
    # The trajectory view looks down the textbook line (the C-arm tilted caudally and turned to the side):
    # a cannula placed along it is a dot on the groove.
    caudal = View(f"caudal-oblique {oblique:g} deg, tilt {tilt:g} deg",
                  gun_barrel(Needle(point - GUN_BARREL_DEPTH_MM * direction, direction, GUN_BARREL_DEPTH_MM)))
    views = (ap, caudal, View("lateral", lateral(anatomy, below, _side(sign))))
    course = (point, point - NERVE_COURSE_MM * direction)
    zone = Zone(0.5 * (course[0] + course[1]), 0.5 * NERVE_COURSE_MM + ALONG_NERVE_MM,
                compartment=partial(_near_segment, course, ALONG_NERVE_MM))
    description = block.description.replace(spec.nerve, f"{spec.nerve} groove", 1)
    return Target(scenario.procedure, description, point, zone, direction, 10.0, views, on_bone=True,
                  landmark=block.landmark, nerve_course=course)


def _near_segment(segment: tuple[np.ndarray, np.ndarray], limit_mm: float, point: np.ndarray, structure: str,
                  tissue: str) -> bool:
    """Whether ``point`` lies within ``limit_mm`` of the segment (a :class:`Zone` compartment test)."""
    start, end = segment
    span = end - start
    t = float(np.clip(np.dot(np.asarray(point) - start, span) / np.dot(span, span), 0.0, 1.0))
    return float(np.linalg.norm(np.asarray(point) - (start + t * span))) <= limit_mm


# Sacroiliac joint injection (Dussault et al., Radiology 2000;214:273; SIS practice guidelines): the
# needle enters the joint's caudal third from its posterior line, in the plane of the joint, so the
# C-arm looks along that plane: turned to the side opposite the joint (the joint's plane runs forward and
# outward, its posterior line medial to its anterior one) until the anterior and posterior joint lines, two
# lines on AP, part to show the posterior one clear at the joint's lower end, and tilted to follow the
# joint's cranio-caudal slope. Joint voxels within SI_PLANE_FIT_MM of the target give the local plane [ED].
SI_PLANE_FIT_MM = 14.0
SI_ZONE_MM = 10.0
SI_CONE_DEG = 15.0


def _sacroiliac(scenario: Scenario, spec: TargetSpec, anatomy: Anatomy, tracer: Tracer) -> Target:
    joint = f"sacroiliac_joint.{spec.side}"
    name = f"{joint}.inferior_third"
    point = anatomy.landmark(name)
    direction = _in_joint_plane(tracer, joint, point, _side_sign(spec.side))
    # The trajectory view looks down the joint's plane (the C-arm's angles from the line itself).
    barrel = gun_barrel(Needle(point - GUN_BARREL_DEPTH_MM * direction, direction, GUN_BARREL_DEPTH_MM))
    tilt = "cranial" if barrel.secondary_deg >= 0 else "caudal"
    trajectory = View(f"SI joint CLO {abs(barrel.primary_deg):.0f}, {tilt} {abs(barrel.secondary_deg):.0f} deg", barrel)
    # A plain AP centred on the joint (the sacrum's endplate squared would tilt the beam ~40 deg cranially and
    # foreshorten the joint), the oblique, and the lateral that shows the tip has not gone through the joint.
    centre = tuple(point)
    views = (View("AP of the sacroiliac joint", ap(isocenter=centre)), trajectory,
             View("lateral", lateral(anatomy, None, spec.side, isocenter=centre)))
    zone = Zone(point, SI_ZONE_MM, inside=(joint,) if _labelled(anatomy, joint) else ())
    return Target(scenario.procedure, f"{spec.side} sacroiliac joint, caudal third", point, zone, direction,
                  SI_CONE_DEG, views, landmark=name)


def _in_joint_plane(tracer: Tracer, joint: str, point: np.ndarray, sign: float) -> np.ndarray:
    """The posterior-to-anterior direction in the plane of the joint's voxels near ``point`` (their least
    principal axis is its normal); without enough voxels, 20 deg from sagittal toward the joint's side
    (the joint's front lies lateral, its back medial) [ED]."""
    codes = tracer.codes_in_group(joint)
    ijk = np.argwhere(np.isin(tracer.codes, codes)) if codes.size else np.zeros((0, 3))
    points = tracer.volume.voxel_to_world(ijk) if len(ijk) else np.zeros((0, 3))
    points = points[np.linalg.norm(points - point, axis=1) <= SI_PLANE_FIT_MM]
    fallback = needle_direction(20.0, -sign, 0.0)
    if len(points) < 10:
        return fallback
    _, _, axes = np.linalg.svd(points - points.mean(axis=0), full_matrices=False)
    normal = axes[2]
    direction = VENTRAL - np.dot(VENTRAL, normal) * normal
    if np.linalg.norm(direction) < 0.3:
        return fallback
    return direction / np.linalg.norm(direction)


# Caudal epidural: through the sacrococcygeal ligament between the cornua, then along
# the canal. The tip stops CAUDAL_ADVANCE_MM above the hiatus's apex: the apex lies 7.25 mm from S2 at
# the least (Aggarwal et al., Surg Radiol Anat 2009;31:793: "not safe to push the needle beyond 7 mm into
# the sacral canal"). The needle comes up the canal from below, CAUDAL_STEEPER_DEG steeper than the canal
# (it starts at ~45 deg to the skin and is flattened once through the ligament) [ED]. Epidural voxels
# within CAUDAL_AXIS_FIT_MM of the apex, near the midline, give the canal's axis there [ED].
CAUDAL_ADVANCE_MM = 6.0
CAUDAL_STEEPER_DEG = 10.0
CAUDAL_AXIS_FIT_MM = 30.0
CAUDAL_ZONE_MM = 8.0
CAUDAL_CONE_DEG = 15.0
# The tip must stay this far below the dural sac's end: the sac ends at S2 (clinical.md §4.3 [S74]) and S3
# is ~20 mm tall, so 15 mm keeps the tip at or below S3 on lateral [ED]; a low-lying sac shrinks the room.
CAUDAL_SAC_MARGIN_MM = 15.0
CAUDAL_VIEW_SHIFT_MM = np.array([0.0, -30.0, 25.0])


def canal_axis(tracer: Tracer, apex: np.ndarray) -> np.ndarray:
    """Unit direction of the sacral canal at the hiatus's ``apex``, pointing cranially: the principal axis of
    the midline epidural voxels within :data:`CAUDAL_AXIS_FIT_MM` of it (straight up without them)."""
    codes = tracer.codes_in_group("epidural_space")
    ijk = np.argwhere(np.isin(tracer.codes, codes)) if codes.size else np.zeros((0, 3))
    points = tracer.volume.voxel_to_world(ijk) if len(ijk) else np.zeros((0, 3))
    near = np.linalg.norm(points - apex, axis=1) <= CAUDAL_AXIS_FIT_MM
    points = points[(np.abs(points[:, 0] - apex[0]) <= 5.0) & near]
    if len(points) < 10:
        return np.array([0.0, 0.0, 1.0])
    _, _, axes = np.linalg.svd(points - points.mean(axis=0), full_matrices=False)
    return axes[0] * (1.0 if axes[0][2] >= 0 else -1.0)


def below_sac_end(tracer: Tracer, point: np.ndarray) -> bool:
    """Whether ``point`` lies at least :data:`CAUDAL_SAC_MARGIN_MM` from the dural sac's end."""
    end = dural_sac_end(tracer)
    return end is None or float(np.linalg.norm(np.asarray(point) - end)) >= CAUDAL_SAC_MARGIN_MM


def _caudal(scenario: Scenario, spec: TargetSpec, anatomy: Anatomy, tracer: Tracer) -> Target:
    name = "sacral_hiatus.apex"
    apex = anatomy.landmark(name)
    axis = canal_axis(tracer, apex)
    point = apex + CAUDAL_ADVANCE_MM * axis
    # Steeper than the canal: the axis turned toward the front about the left-right axis.
    angle = np.radians(CAUDAL_STEEPER_DEG)
    direction = np.cos(angle) * axis + np.sin(angle) * np.cross(np.array([1.0, 0.0, 0.0]), axis)
    direction /= np.linalg.norm(direction)
    # AP centred on the lower sacrum, the lateral that shows the tip against S3 and the sac's end, and the
    # lateral again for depth (the canal's front wall: the venous plexus lies against it).
    # Centred a little in front of and above the tip, so the view holds the sacrum and the sac's end, not air.
    centre = tuple(point + CAUDAL_VIEW_SHIFT_MM)
    ap_view = View("AP of the sacrum", ap(isocenter=centre))
    side_view = View("lateral (sacrum)", lateral(anatomy, None, "left", isocenter=centre))
    zone = Zone(point, CAUDAL_ZONE_MM, inside=("epidural_space",) if _labelled(anatomy, "epidural_space") else (),
                compartment=lambda p, structure, tissue: below_sac_end(tracer, p))
    return Target(scenario.procedure, "sacral epidural space above the hiatus", point, zone, direction, CAUDAL_CONE_DEG,
                  (ap_view, side_view, side_view), landmark=name)
