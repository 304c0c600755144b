"""Facet (zygapophyseal) joints and the articular processes that form them.

A joint between vertebra U and the one below it, L, is a thin slab (the joint space, cartilage) in
its own frame (columns n, t, w): n is the joint normal pointing from the superior articular process of L (lateral and
anterior) to the inferior articular process of U (medial and posterior), t runs along the joint line
in the axial plane (antero-medial to postero-lateral) and w is the disc frame's superior axis. The
angle between t and the mid-sagittal plane is the facet angle of clinical.md §4.6: 27 deg at L1-2
rising to 49 deg at L5-S1 ([ED] interpolated from [S80][S81]), +- half the tropism per side [S82].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from anatomy_models.spine.alignment import DiscGeometry
from anatomy_models.spine.sdf import Frame, Primitive, Shape, elliptic_rod, rounded_box
from anatomy_models.spine.vertebra import SIDE_SIGN, VertebraLayout

# [ED] joint and process sizes, mm: lumbar facet joints are about 15 mm tall and wide, the joint
# space (two cartilage layers and the gap) 1.5-2 mm on CT.
JOINT_HEIGHT_MM = 15.0
JOINT_WIDTH_MM = 15.0
JOINT_SPACE_MM = 1.5
JOINT_ABOVE_DISC_MM = 2.0          # joint centre above the disc centre
JOINT_BEHIND_JUNCTION_MM = 5.0     # joint centre behind the lower vertebra's pedicle-lamina junction
SAP_THICKNESS_MM = 6.5
IAP_THICKNESS_MM = 6.0
HYPERTROPHY_MM_PER_GRADE = 1.2     # facet hypertrophy per degeneration grade


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

    @property
    def name(self) -> str:
        return f"facet_joint.{self.interspace}.{self.side}"

    def local(self, point: np.ndarray) -> np.ndarray:
        return self.frame.rotation.T @ (np.asarray(point, float) - self.frame.origin)

    def space_shape(self) -> Primitive:
        half = (self.space_mm / 2.0, self.width_mm / 2.0, self.height_mm / 2.0)
        return Primitive(self.frame, rounded_box(half, min(half) * 0.9), half)

    @property
    def inferior_recess(self) -> np.ndarray:
        """The joint's lowest pocket (the easiest entry in arthritic joints, clinical.md §2.3)."""
        return self.frame.point((0.0, 0.0, -self.height_mm / 2.0 + 1.0))


def facet_joint(disc: DiscGeometry, lower: VertebraLayout, side: str, tropism_deg: float, spacing_mm: float) -> FacetJoint:
    """The joint of ``disc``'s interspace on ``side``, placed behind the lower vertebra's junction."""
    s = SIDE_SIGN[side]
    angle = disc.reference.facet_angle_deg + s * tropism_deg / 2.0
    junction = disc.frame.rotation.T @ (lower.world(lower.junction[side]) - disc.frame.origin)
    center_local = np.array([junction[0] - s * 1.0, junction[1] + JOINT_BEHIND_JUNCTION_MM, JOINT_ABOVE_DISC_MM])
    theta = math.radians(angle)
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


def _box_in_joint(joint: FacetJoint, n_range, t_range, w_range, rounding: float) -> Primitive:
    center = np.array([sum(n_range), sum(t_range), sum(w_range)]) / 2.0
    half = (abs(n_range[1] - n_range[0]) / 2.0, abs(t_range[1] - t_range[0]) / 2.0, abs(w_range[1] - w_range[0]) / 2.0)
    frame = Frame(joint.frame.point(center), joint.frame.rotation)
    return Primitive(frame, rounded_box(half, rounding), half)


def _rod(start: np.ndarray, end: np.ndarray, radius: float) -> Primitive:
    axis = end - start
    length = float(np.linalg.norm(axis))
    across = np.cross([0.0, 0.0, 1.0], axis)
    if np.linalg.norm(across) < 1e-6:
        across = np.array([1.0, 0.0, 0.0])
    frame = Frame.from_axes((start + end) / 2.0, axis, across)
    return Primitive(frame, elliptic_rod(radius, radius, length / 2.0), (length / 2.0, radius, radius))


def superior_articular_process(joint: FacetJoint, lower: VertebraLayout, degeneration: float) -> list[Shape]:
    """The lower vertebra's SAP: a plate lateral to the joint rising from the junction, plus its stem."""
    thickness = (SAP_THICKNESS_MM + HYPERTROPHY_MM_PER_GRADE * degeneration) * lower.geometry.scale
    junction = lower.world(lower.junction[joint.side])
    base = joint.local(junction)[2]
    gap = joint.space_mm / 2.0
    plate = _box_in_joint(joint, (-gap - thickness, -gap), (-joint.width_mm / 2 - 1.5, joint.width_mm / 2 + 1.0),
                          (base, joint.height_mm / 2 + 2.0), 2.0)
    stem_top = joint.frame.point((-gap - thickness / 2.0, -2.0, base + 4.0))
    return [plate, _rod(junction, stem_top, 4.5)]


def inferior_articular_process(joint: FacetJoint, upper: VertebraLayout, degeneration: float) -> list[Shape]:
    """The upper vertebra's IAP: a plate medial to the joint hanging from the lamina, plus its stem."""
    thickness = (IAP_THICKNESS_MM + HYPERTROPHY_MM_PER_GRADE * degeneration) * upper.geometry.scale
    z = upper.lamina_bottom_z + 0.3 * (upper.lamina_top_z - upper.lamina_bottom_z)
    corner_local = upper.lamina_ventral_point(1.0, z, joint.side) + upper.lamina_normal(joint.side) * upper.lamina_thickness / 2
    corner = upper.world(corner_local)
    top = max(joint.local(corner)[2], joint.height_mm / 2.0)
    gap = joint.space_mm / 2.0
    plate = _box_in_joint(joint, (gap, gap + thickness), (-joint.width_mm / 2 - 1.0, joint.width_mm / 2 + 1.5),
                          (-joint.height_mm / 2 - 3.0, top), 2.0)
    stem_bottom = joint.frame.point((gap + thickness / 2.0, 0.0, top - 3.0))
    return [plate, _rod(corner, stem_bottom, 4.0)]
