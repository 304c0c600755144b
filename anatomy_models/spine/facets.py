"""Facet (zygapophyseal) joints and the articular processes that form them.

A joint between vertebra U and the one below it, L, is a thin slab (the joint space, cartilage) in
its own frame (columns n, t, w): n is the joint normal pointing from the superior articular process of L (lateral and
anterior) to the inferior articular process of U (medial and posterior), t runs along the joint line
in the axial plane (antero-medial to postero-lateral) and w is the disc frame's superior axis. The
angle between t and the mid-sagittal plane is the facet angle of clinical.md §4.6: 27 deg at L1-2
rising to 49 deg at L5-S1 ([ED] interpolated from [S80][S81]), +- half the tropism per side [S82].
:func:`facet_joint` places a joint by the layout's rules; on real vertebra shapes
:func:`fit_joint_to_processes` then moves it into the gap between their articular processes, so the
joint space, the SAP and IAP labels and the joint's landmarks sit on the real bone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from anatomy_models.spine.alignment import DiscGeometry
from anatomy_models.spine.sdf import Frame, Primitive, Shape, curved_slab, ellipsoid, elliptic_rod
from anatomy_models.spine.vertebra import SIDE_SIGN, VertebraLayout

# [ED] joint and process sizes, mm: lumbar facet joints are about 15 mm tall and wide, the joint
# space (two cartilage layers and the gap) 1.5-2 mm on CT.
JOINT_HEIGHT_MM = 15.0
JOINT_WIDTH_MM = 15.0
JOINT_SPACE_MM = 1.5
JOINT_ABOVE_DISC_MM = 2.0          # joint centre above the disc centre
# The joint lies behind the lower vertebra's pedicle, in line with it: its superior articular process
# then sits a few millimetres lateral of the pedicle and ~8 mm behind it, the posterior wall of the
# foramen and of the lateral recess (§4.3 [S70] recess depth 4-14 mm), and comes under the pedicle's
# 6 o'clock at a 20-35 deg oblique (the Scotty dog, §2.2(a) [S17][S20]).
JOINT_BEHIND_JUNCTION_MM = 4.5     # joint centre behind the pedicle-lamina junction
# And medial of it, by 4 mm at 45 deg, less for the more sagittal upper joints (whose inferior
# processes would otherwise reach into the interlaminar window), none at 25 deg.
JOINT_MEDIAL_OF_JUNCTION_MM = 4.0
JOINT_MEDIAL_FROM_DEG, JOINT_MEDIAL_AT_DEG = 25.0, 45.0
JOINT_CURVATURE_RADIUS_MM = 20.0   # the joint is a piece of a vertical cylinder: SAP concave, IAP convex
SAP_THICKNESS_MM = 8.0
IAP_THICKNESS_MM = 8.0
SAP_TIP_ABOVE_JOINT_MM = 1.0       # the SAP's point just above the joint's upper recess
IAP_TIP_BELOW_JOINT_MM = 2.0       # the IAP's tip just below the inferior recess
# [ED] The SAP and IAP keep much of their thickness up to their tips: with the pars between them they
# form the articular pillar that the ipsilateral oblique shows as the Scotty dog's ear and front leg.
PROCESS_TIP_THICKNESS_MM = 5.5     # the articular processes thin toward their tips (pointed ear, front leg)
# [ED] Above the pedicle the SAP broadens into the ear's base (the Scotty dog's ear a broad-based
# triangle over the eye): from a little over the pedicle's upper border it is thicker, tapering to
# the plate 3 mm above the joint's middle, so the upper ear, which the transforaminal needle passes,
# is unchanged. Only its back part (along the joint) thickens: its front, the foramen's posterior wall
# in line with the pedicle, and its root on the pedicle keep SAP_THICKNESS_MM, so neither the
# pedicle's isthmus nor the bone around the pedicle's centre changes.
SAP_EAR_THICKNESS_MM = 12.0
SAP_EAR_ABOVE_PEDICLE_MM = 1.5     # where the broad part starts, over the pedicle's upper border
SAP_EAR_TOP_MM = 3.0               # and where it has narrowed to the plate (joint-frame w, above the joint's centre)
SAP_EAR_EXTRA_WIDTH_MM = -3.0      # its half-width along the joint, less than the joint's (7.5 mm)
SAP_EAR_SHIFT_MM = 4.5             # its middle moved back along the joint: the SAP's back half
HYPERTROPHY_MM_PER_GRADE = 1.2     # facet hypertrophy per degeneration grade
MAMILLARY_RADII_MM = (3.0, 3.0, 4.0)  # the mamillary process on the SAP's back edge
# The refit of a joint onto the real articular processes (:func:`fit_joint_to_processes`): the box
# searched around the rule's centre, its sampling, how near both processes' surfaces a point of the
# gap between them lies, and how far lateral of the midline it must be (not the laminae's gap) [ED].
JOINT_FIT_REACH_MM = 14.0
JOINT_FIT_STEP_MM = 0.75
JOINT_FIT_NEAR_MM = 2.0
JOINT_FIT_MIN_LATERAL_MM = 5.0
JOINT_FIT_FACING = 0.7             # |cos| of the IAP face's normal to the joint's, where there is no real SAP
JOINT_FIT_MIN_POINTS = 20


@dataclass(frozen=True)
class FacetJoint:
    """One facet joint: its frame (origin at the joint centre) and sizes (mm)."""

    interspace: str
    side: str
    frame: Frame
    angle_deg: float
    height_mm: float
    width_mm: float
    space_mm: float
    recess_along_mm: float = 0.0   # where along the joint (t, mm) its lowest pocket is: under the IAP's face
    recess_bottom_mm: float | None = None  # the pocket's floor (w, mm), if not the joint's lower end

    @property
    def name(self) -> str:
        return f"facet_joint.{self.interspace}.{self.side}"

    def local(self, point: np.ndarray) -> np.ndarray:
        return self.frame.rotation.T @ (np.asarray(point, float) - self.frame.origin)

    def shell(self, inner: float, outer: float, bottom: float, top: float, extra_width: float = 0.0,
              rounding: float = 0.0, top_width: float = 1.0, bottom_width: float = 1.0,
              inner_top: float | None = None, outer_top: float | None = None, shift_mm: float = 0.0) -> Primitive:
        """The part of the joint's cylinder between distances ``inner`` and ``outer`` (mm) from its
        axis (``inner_top``, ``outer_top`` at the top if they differ), from ``bottom`` to ``top``
        (joint-frame w, mm), as wide as the joint plus ``extra_width`` (scaled by ``top_width`` and
        ``bottom_width`` at the ends), its middle moved ``shift_mm`` along the joint's arc (toward +t,
        postero-lateral)."""
        radius = JOINT_CURVATURE_RADIUS_MM
        half_angle = (self.width_mm / 2.0 + extra_width) / radius
        # Turning the frame about the cylinder's axis keeps the shell on the joint's cylinder.
        turn = shift_mm / radius
        c, s = math.cos(turn), math.sin(turn)
        origin = self.frame.point((radius - radius * c, radius * s, (bottom + top) / 2.0))
        frame = Frame(origin, self.frame.rotation @ np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]]))
        # Local box around the shell: n from the far side of the outer arc to the chord of the inner one.
        reach_n = max(abs(radius - outer), abs(radius - inner * np.cos(half_angle))) + 1.0
        extent = (reach_n, outer * np.sin(half_angle) + 1.0, (top - bottom) / 2.0 + 1.0)
        return Primitive(frame, curved_slab(radius, inner, outer, half_angle, (top - bottom) / 2.0, rounding,
                                            top_width, bottom_width, inner_top, outer_top), extent)

    def space_shape(self) -> Primitive:
        radius = JOINT_CURVATURE_RADIUS_MM
        return self.shell(radius - self.space_mm / 2.0, radius + self.space_mm / 2.0, -self.height_mm / 2.0,
                          self.height_mm / 2.0, rounding=min(self.space_mm / 2.0 * 0.9, 0.7))

    @property
    def inferior_recess(self) -> np.ndarray:
        """The joint's lowest pocket (the easiest entry in arthritic joints, clinical.md §2.3)."""
        bottom = -self.height_mm / 2.0 if self.recess_bottom_mm is None else self.recess_bottom_mm
        return self.frame.point((0.0, self.recess_along_mm, bottom + 1.0))


def facet_joint(disc: DiscGeometry, lower: VertebraLayout, side: str, tropism_deg: float, spacing_mm: float) -> FacetJoint:
    """The joint of ``disc``'s interspace on ``side``, placed behind the lower vertebra's junction."""
    s = SIDE_SIGN[side]
    angle = disc.reference.facet_angle_deg + s * (tropism_deg + disc.natural_tropism_deg) / 2.0
    junction = disc.frame.rotation.T @ (lower.world(lower.junction[side]) - disc.frame.origin)
    theta = math.radians(angle)
    medial = JOINT_MEDIAL_OF_JUNCTION_MM * float(np.clip((angle - JOINT_MEDIAL_FROM_DEG) / (JOINT_MEDIAL_AT_DEG - JOINT_MEDIAL_FROM_DEG), 0.0, 1.0))
    center_local = np.array([junction[0] - s * medial, junction[1] + JOINT_BEHIND_JUNCTION_MM, JOINT_ABOVE_DISC_MM])
    normal = np.array([-s * math.cos(theta), math.sin(theta), 0.0])
    along = np.array([s * math.sin(theta), math.cos(theta), 0.0])
    # Columns n, t, w: a mirror-image (left-handed) frame on one side, which the symmetric boxes and
    # rods built in it do not mind, and which keeps w superior on both sides.
    rotation = np.column_stack([disc.frame.vector(normal), disc.frame.vector(along), disc.frame.vector((0, 0, 1))])
    frame = Frame(disc.frame.point(center_local), rotation)
    scale = lower.geometry.scale
    # At a coarse grid the joint space must still hold voxel centres everywhere: at least one voxel wide.
    space = max(JOINT_SPACE_MM, spacing_mm)
    return FacetJoint(disc.name, side, frame, angle, JOINT_HEIGHT_MM * scale, JOINT_WIDTH_MM * scale, space)


def fit_joint_to_processes(joint: FacetJoint, disc: DiscGeometry, upper: Shape, lower: Shape | None) -> FacetJoint:
    """``joint`` moved onto the real articular processes: its centre to the middle of the gap between
    the upper vertebra's inferior articular process and the lower one's superior process.

    ``upper`` and ``lower`` are the two real bones (``lower`` None where the lower vertebra's SAP is built
    from the joint itself, the sacrum's: the joint then goes half its space off the upper IAP's face that
    turns toward it). The joint keeps its published angle (clinical.md §4.6) and size; the gap is the set
    of points about equally far from both bones and near both, lateral of the laminae's midline gap.
    The rule's placement stands where no gap is found (a process missing).
    """
    s = SIDE_SIGN[joint.side]
    rule = disc.frame.rotation.T @ (joint.frame.origin - disc.frame.origin)
    offsets = np.arange(-JOINT_FIT_REACH_MM, JOINT_FIT_REACH_MM + 1e-6, JOINT_FIT_STEP_MM)
    grid = np.stack(np.meshgrid(offsets, offsets, offsets, indexing="ij"), axis=-1).reshape(-1, 3) + rule
    grid = grid[s * grid[:, 0] > JOINT_FIT_MIN_LATERAL_MM]
    world = grid @ disc.frame.rotation.T + disc.frame.origin

    def sdf(shape: Shape, points: np.ndarray) -> np.ndarray:
        return shape.sdf(*(points[:, i].astype(np.float32) for i in range(3))).astype(np.float64)

    a = sdf(upper, world)
    if lower is not None:
        b = sdf(lower, world)
        gap = (np.abs(a - b) < JOINT_FIT_STEP_MM / 2.0) & (np.maximum(a, b) < JOINT_FIT_NEAR_MM)
        points = world[gap]
    else:
        toward = -joint.frame.rotation[:, 0]  # from the IAP toward the SAP's side
        h = JOINT_FIT_STEP_MM / 2.0
        facing = (sdf(upper, world + h * toward) - sdf(upper, world - h * toward)) / (2.0 * h)
        face = (np.abs(a) < JOINT_FIT_STEP_MM / 2.0) & (facing > JOINT_FIT_FACING)
        face &= np.abs(grid[:, 2] - rule[2]) < joint.height_mm / 2.0  # the IAP, not the pars above it
        points = world[face] + toward * joint.space_mm / 2.0
    if len(points) < JOINT_FIT_MIN_POINTS:
        return joint
    centre = points.mean(axis=0)
    if lower is None:
        # Only the IAP's face, on a joint whose SAP is built around it: the face says how far across the
        # joint goes; along it the joint stays, and its lowest pocket goes under the face's middle, 1 mm
        # above the face's lower end if that ends above the joint's.
        normal, along, up = (joint.frame.rotation[:, i] for i in range(3))
        offset = centre - joint.frame.origin
        face_bottom = float(((points - joint.frame.origin) @ up).min())
        return replace(joint, frame=Frame(joint.frame.origin + normal * float(offset @ normal), joint.frame.rotation),
                       recess_along_mm=float(offset @ along), recess_bottom_mm=max(face_bottom, -joint.height_mm / 2.0))
    return replace(joint, frame=Frame(centre, joint.frame.rotation))


def _rod(start: np.ndarray, end: np.ndarray, radius: float) -> Primitive:
    axis = end - start
    length = float(np.linalg.norm(axis))
    across = np.cross([0.0, 0.0, 1.0], axis)
    if np.linalg.norm(across) < 1e-6:
        across = np.array([1.0, 0.0, 0.0])
    frame = Frame.from_axes((start + end) / 2.0, axis, across)
    return Primitive(frame, elliptic_rod(radius, radius, length / 2.0), (length / 2.0, radius, radius))


def superior_articular_process(joint: FacetJoint, lower: VertebraLayout, degeneration: float) -> list[Shape]:
    """The lower vertebra's SAP: a concave shell lateral to the joint rising from the junction, the
    thicker back of its upper part (the ear's base), its stem, and the mamillary process on its back edge."""
    thickness = (SAP_THICKNESS_MM + HYPERTROPHY_MM_PER_GRADE * degeneration) * lower.geometry.scale
    junction = lower.world(lower.junction[joint.side])
    base = joint.local(junction)[2]
    radius, gap = JOINT_CURVATURE_RADIUS_MM, joint.space_mm / 2.0
    plate_top = joint.height_mm / 2.0 + SAP_TIP_ABOVE_JOINT_MM
    plate_half_width, plate_top_width = joint.width_mm / 2.0 + 1.5, 0.7
    # Pointed on top (the Scotty dog's ear), its tip a little above the joint's upper end.
    plate = joint.shell(radius + gap, radius + gap + thickness, base, plate_top,
                        1.5, 1.5, top_width=plate_top_width, outer_top=radius + gap + PROCESS_TIP_THICKNESS_MM)
    # The ear's broad base, starting over the pedicle's upper border, not at the junction, and within
    # the plate's outline along the joint (its back edge on the plate's).
    pedicle_top_local = lower.junction[joint.side] + np.array([0.0, 0.0, lower.geometry.dims.pedicle_height_mm / 2.0])
    ear_bottom = joint.local(lower.world(pedicle_top_local))[2] + SAP_EAR_ABOVE_PEDICLE_MM

    def plate_at(w: float) -> tuple[float, float]:
        """The plate's thickness and half-width along the joint at joint-frame height ``w`` (mm)."""
        height = (w - base) / (plate_top - base)
        return (thickness + (PROCESS_TIP_THICKNESS_MM - thickness) * height,
                plate_half_width * (1.0 + (plate_top_width - 1.0) * height))

    ear_half_width = joint.width_mm / 2.0 + SAP_EAR_EXTRA_WIDTH_MM
    (_, bottom_half_width), (top_thickness, top_half_width) = plate_at(ear_bottom), plate_at(SAP_EAR_TOP_MM)
    ear_thickness = thickness + (SAP_EAR_THICKNESS_MM - SAP_THICKNESS_MM) * lower.geometry.scale
    ear = joint.shell(radius + gap, radius + gap + ear_thickness, ear_bottom, SAP_EAR_TOP_MM, SAP_EAR_EXTRA_WIDTH_MM, 1.5,
                      top_width=(top_half_width - SAP_EAR_SHIFT_MM) / ear_half_width,
                      bottom_width=(bottom_half_width - SAP_EAR_SHIFT_MM) / ear_half_width,
                      outer_top=radius + gap + top_thickness, shift_mm=SAP_EAR_SHIFT_MM)
    stem_top = joint.frame.point((-gap - thickness / 2.0, 0.0, base + 4.0))
    back_edge = joint.frame.point((-gap - thickness / 2.0 - 1.0, joint.width_mm / 2.0 + 1.0, base + 5.0))
    mamillary = Primitive(Frame(back_edge, joint.frame.rotation), ellipsoid(MAMILLARY_RADII_MM), MAMILLARY_RADII_MM)
    return [plate, ear, _rod(junction, stem_top, 5.0), mamillary]


def inferior_articular_process(joint: FacetJoint, upper: VertebraLayout, degeneration: float) -> list[Shape]:
    """The upper vertebra's IAP: a convex shell medial to the joint hanging from the lamina, and its stem."""
    thickness = (IAP_THICKNESS_MM + HYPERTROPHY_MM_PER_GRADE * degeneration) * upper.geometry.scale
    z = upper.lamina_bottom_z + 0.3 * (upper.lamina_top_z - upper.lamina_bottom_z)
    corner_local = upper.lamina_ventral_point(1.0, z, joint.side) + upper.lamina_normal(joint.side) * upper.lamina_thickness / 2
    corner = upper.world(corner_local)
    top = min(max(joint.local(corner)[2], joint.height_mm / 2.0), joint.height_mm / 2.0 + 6.0)
    radius, gap = JOINT_CURVATURE_RADIUS_MM, joint.space_mm / 2.0
    # Narrowing downward to a rounded tip (the front leg).
    tip = radius - gap - PROCESS_TIP_THICKNESS_MM
    plate = joint.shell(tip, radius - gap, -joint.height_mm / 2.0 - IAP_TIP_BELOW_JOINT_MM, top, 1.5, 1.5,
                        bottom_width=0.8, inner_top=radius - gap - thickness)
    stem_bottom = joint.frame.point((gap + thickness / 2.0, 0.0, top - 3.0))
    return [plate, _rod(corner, stem_bottom, 4.5)]
