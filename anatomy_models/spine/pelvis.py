"""The ilia: each the real left hip bone of an adult (the Visible Human female, segmented from MRI by the
MRI2PSM authors, zlib licence; ``shapes/hip_bone_README.md``), shipped as a signed-distance grid, mirrored
for the right, placed on the sacrum and scaled to the patient.

Placement (:func:`hip_bone_placement`): the auricular surface's fitted plane is turned onto the sacroiliac
joint's (:class:`anatomy_models.spine.sacrum.SacroiliacJoint`, the smallest rotation that does it) and its
centre set :data:`AURICULAR_OVERLAP_MM` past the joint's iliac face, so that the joint's cut
(``SacroiliacJoint.iliac_cut``, at paint time) shapes the auricular surface over its whole extent and keeps
the joint's gap; the bone is scaled by the patient's skeletal scale (sex and size,
``SpineParameters.skeleton_scale``, times :data:`HIP_BONE_SCALE`), and the part above the joint's centre is
stretched (or shrunk) vertically so that the crest's summit is at the L4-L5 interspace (Tuffier's line,
clinical.md §4.8 [S51]); each side's summit and size then take their share of the patient's drawn left-right
differences (:func:`hip_bone_placements`).

The template's iliac fossa was thinned when the grid was built (``shapes/build_ilium.py``): the blade is two
cortices with little cancellous bone between, translucent on radiographs; the crest, the pillar from the
acetabulum to the iliac tubercle, the posterior ilium and the pelvic brim keep their thickness. Fluoroscopy
needs the ilia (the crests overlie L5-S1 on AP and oblique views and limit the L5-S1 transforaminal path);
the needle needs them as bone.

The gluteal muscles (:mod:`anatomy_models.spine.glutes`) lie on an arc that approximates the wing's outer
face: its constants are below.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

from anatomy_models.errors import SpinesimError
from anatomy_models.spine.sacrum import SI_CLEFT_DEPTH_MM, SI_HALF_HEIGHT_MM, SI_HALF_LENGTH_MM, SacroiliacJoint
from anatomy_models.spine.sdf import FAR_MM, Frame, Primitive, Shape, SmoothUnion, f32, rounded_box
from anatomy_models.spine.skeleton import BONE_BLEND_MM, Skeleton
from anatomy_models.spine.vertebra import SIDE_SIGN

HIP_BONE_FILE = Path(__file__).with_name("shapes") / "hip_bone_sdf.npz"
OUTSIDE_MM = np.float32(12.0)  # the sdf beyond the template grid (and its clip): outside the bone
# The template's auricular surface is set this far past the joint's iliac face (mm): the fitted plane of a
# curved surface, it then reaches the face over the whole joint, which the joint's cut makes flat [ED].
AURICULAR_OVERLAP_MM = 4.0
# ... and moved this far along the joint (its u, forward, and w, up; mm): the fitted plane's centre sits above
# and in front of the real surface's, whose lower limb runs down and back toward the posterior inferior iliac
# spine [ED].
AURICULAR_SHIFT_MM = (-6.0, -8.0)
# The template's auricular surface (a fitted plane's centre) covers the joint's front and upper parts; behind
# and below, where the real surface turns away from the plane (its lower limb runs down and back), the bone is
# grown toward the joint: its signed distance lowered by AURICULAR_GROWTH_MM times a flat-topped weight, 1 over
# the joint and its posterior cleft and fading smoothly beyond (exp(-s**4) in the joint's u and w, scaled by
# AURICULAR_GROWTH_REACH_MM about AURICULAR_GROWTH_CENTRE_MM), so that the joint's cut shapes one auricular
# surface over the whole joint and no new edge or face shows on a radiograph (a box filled in had drawn a
# rectangle on the S1 and Scotty-dog views) [ED].
AURICULAR_GROWTH_MM = 11.0  # below the template grid's clip (build_ilium.CLIP_MM): the grown surface is real
AURICULAR_GROWTH_CENTRE_MM = (-8.0, -6.0)
AURICULAR_GROWTH_REACH_MM = (28.0, 32.0)
# Only the medial face grows: the growth fades out from AURICULAR_GROWTH_LATERAL_MM[0] to [1] lateral of the
# joint's plane, and the wing's outer (gluteal) face, under the gluteus medius, keeps its place [ED].
AURICULAR_GROWTH_LATERAL_MM = (4.0, 12.0)
# Painting evaluates the placed bone only where it can be within PAINT_BAND_MM of its surface (inside it, or
# outside within the bones' blend radius, the farthest any caller reads a distance); elsewhere the buffer keeps
# "far outside". The growth is taken as nil where it is below GROWTH_NEGLIGIBLE_MM, which bounds the region
# where it is evaluated everywhere (exp(-s**4) below it beyond s = (ln(AURICULAR_GROWTH_MM / it)) ** 0.25).
PAINT_BAND_MM = BONE_BLEND_MM
GROWTH_NEGLIGIBLE_MM = 1e-3
# Above and behind the joint the ilium's tuberosity faces the sacrum's across the interosseous ligament: the
# ilium is cleared to the joint's gap from the sacrum as painted (its joint's cut made), within this reach of
# the joint's centre (mm, along the joint's u, v and w) [ED]. Not where the joint's own cuts shape the two
# bones (the joint and its posterior cleft, up to SACRAL_CLEARANCE_FROM_CLEFT_TOP_MM above the cleft's top,
# over the sacrum's lateral crest, which reaches past the joint's plane there: sacrum.SacroiliacJoint).
SACRAL_CLEARANCE_REACH_MM = ((-50.0, 40.0), (-25.0, 15.0), (-40.0, 60.0))
SACRAL_CLEARANCE_FROM_CLEFT_TOP_MM = 6.0
# There the ilium only yields to the sacrum itself; the gap grows to the joint's over this distance (mm) outside
# that region: a step of the gap at its edge drew a rounded rectangle on the S1 cranial and Scotty-dog views [ED].
SACRAL_CLEARANCE_BLEND_MM = 10.0
# The template's size for the reference man (skeleton scale 1): the Visible Human female was a large woman,
# her bi-iliac breadth (289 mm between the tubercles) an average man's; placed on the generator's sacrum, turned
# onto its joints, the unscaled bone gave the reference man 306 mm. 0.95 gives him 295 mm and the woman
# (skeleton scale 0.94) 277 mm, about the adult's 28 cm [ED; tests/anatomy_models/spine/test_pelvis.py cites it].
HIP_BONE_SCALE = 0.95
# The vertical stretch above the joint's centre that puts the crest's summit at Tuffier's line stays within
# these bounds: the Visible Human female's summit is 56 mm above her auricular surface's centre, the
# generator's L4-L5 interspace 75 mm above its joint's centre for the reference man (a stretch of 1.28) [ED].
CREST_STRETCH_BOUNDS = (0.8, 1.5)

# The wing's outer face as the gluteus medius follows it (anatomy_models.spine.glutes): an arc around a
# vertical axis ARC_CENTRE_OFFSET_MM (medial, anterior) from the sacroiliac joint, from ANTERIOR_END_DEG (the
# ASIS end, from the lateral direction) back past the joint, flaring out FLARE per mm of height; the crest
# CREST_BEHIND_MM and CREST_FRONT_MM above the joint's centre at its back and front ends; a blade
# WING_THICKNESS_MM thick [ED].
ARC_CENTRE_OFFSET_MM = (28.0, 85.0)
ANTERIOR_END_DEG = 18.0
FLARE = 0.3
CREST_BEHIND_MM, CREST_FRONT_MM = 35.0, 12.0
WING_THICKNESS_MM = 7.0


@dataclass(frozen=True)
class HipBoneTemplate:
    """The left hip bone's signed distances (mm, negative inside; float32 (nu, nv, nw), voxel (0, 0, 0) at
    ``origin_mm``) in its frame (u lateral, v posterior, w superior; origin at the auricular surface's
    centre), its auricular surface's normal and its crest's summit in that frame (mm)."""

    sdf_mm: np.ndarray
    origin_mm: np.ndarray
    spacing_mm: float
    auricular_normal: np.ndarray   # unit, from the ilium toward the sacrum
    crest_summit_mm: np.ndarray

    @property
    def upper_mm(self) -> np.ndarray:
        """The grid's far corner (mm, template frame)."""
        return self.origin_mm + (np.array(self.sdf_mm.shape) - 1) * self.spacing_mm


@lru_cache(maxsize=None)
def load_hip_bone() -> HipBoneTemplate:
    """The left hip bone from :data:`HIP_BONE_FILE` (cached: read once per process)."""
    try:
        with np.load(HIP_BONE_FILE) as data:
            arrays = {key: np.asarray(data[key], dtype=np.float64) for key in
                      ("origin_mm", "auricular_normal", "crest_summit_mm")}
            sdf = data["left"].astype(np.float32) * f32(data["quantum_mm"])
            spacing = float(data["spacing_mm"])
    except (OSError, KeyError) as error:
        raise SpinesimError(f"{HIP_BONE_FILE}: cannot read the hip bone ({error}); reinstall spinesim or rebuild "
                            "the file with anatomy_models/spine/shapes/build_ilium.py (shapes/hip_bone_README.md)"
                            ) from error
    return HipBoneTemplate(sdf, arrays["origin_mm"], spacing, arrays["auricular_normal"], arrays["crest_summit_mm"])


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector ``a`` onto unit vector ``b`` (Rodrigues).

    >>> np.round(_rotation_between(np.array([1.0, 0, 0]), np.array([0, 1.0, 0])) @ [1.0, 0, 0], 6).tolist()
    [0.0, 1.0, 0.0]
    """
    axis = np.cross(a, b)
    s, c = float(np.linalg.norm(axis)), float(np.dot(a, b))
    if s < 1e-12:
        return np.eye(3)
    k = axis / s
    skew = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + s * skew + (1.0 - c) * skew @ skew


@dataclass(frozen=True)
class HipBonePlacement:
    """Where one hip bone goes: world = ``origin`` + ``rotation`` @ (``scale`` * stretched(template point)),
    where ``rotation`` includes the mirror of u on the right and ``stretched`` multiplies a template w above
    0 (above the auricular surface's centre) by ``stretch``."""

    side: str
    origin: np.ndarray
    rotation: np.ndarray
    scale: float
    stretch: float

    def world(self, template_mm) -> np.ndarray:
        """World position (mm) of a point given in the template's frame."""
        q = np.array(template_mm, dtype=np.float64)
        q[2] = q[2] * self.stretch if q[2] > 0 else q[2]
        return self.origin + self.rotation @ (self.scale * q)


def hip_bone_placement(joint: SacroiliacJoint, tuffier_z: float, skeleton_scale: float) -> HipBonePlacement:
    """The placement of the hip bone on ``joint``'s side (see the module's docstring); ``tuffier_z`` is the
    L4-L5 interspace's height (mm)."""
    template = load_hip_bone()
    s = SIDE_SIGN[joint.side]
    mirror = np.diag([s, 1.0, 1.0])
    normal = mirror @ template.auricular_normal
    toward_sacrum = -joint.frame.vector((0.0, 1.0, 0.0))
    rotation = _rotation_between(normal / np.linalg.norm(normal), toward_sacrum) @ mirror
    origin = joint.point(AURICULAR_SHIFT_MM[0], joint.gap_mm / 2.0 - AURICULAR_OVERLAP_MM, AURICULAR_SHIFT_MM[1])
    # The summit's height is linear in the stretch: solve for it, then keep it within bounds.
    scale = HIP_BONE_SCALE * skeleton_scale
    u, v, w = scale * template.crest_summit_mm
    row = rotation[2]
    stretch = ((tuffier_z - origin[2]) - row[0] * u - row[1] * v) / (row[2] * w)
    stretch = float(np.clip(stretch, *CREST_STRETCH_BOUNDS))
    return HipBonePlacement(joint.side, origin, rotation, float(scale), stretch)


@dataclass(eq=False)
class RealIlium(Shape):
    """The hip bone ``template`` placed by ``placement``, grown toward its sacroiliac ``joint``."""

    template: HipBoneTemplate
    placement: HipBonePlacement
    joint: SacroiliacJoint

    def __post_init__(self) -> None:
        t = self.template
        corners = np.array([[a, b, c] for a in (t.origin_mm[0], t.upper_mm[0]) for b in (t.origin_mm[1], t.upper_mm[1])
                            for c in (t.origin_mm[2], t.upper_mm[2])])
        world = np.array([self.placement.world(corner) for corner in corners])
        self.lower = world.min(axis=0) - AURICULAR_GROWTH_MM
        self.upper = world.max(axis=0) + AURICULAR_GROWTH_MM

    def _grown(self, values: np.ndarray, x, y, z) -> np.ndarray:
        """``values`` (the bone's sdf at world x, y, z) grown toward the joint (:data:`AURICULAR_GROWTH_MM`),
        the growth never past 1 mm beyond the joint's iliac face: outside the joint's cut a bump past the face
        would end on the cut's edge, a straight line on a radiograph."""
        u, v, w = self.joint.frame.to_local(x, y, z)
        su = (u - f32(AURICULAR_GROWTH_CENTRE_MM[0])) / f32(AURICULAR_GROWTH_REACH_MM[0])
        sw = (w - f32(AURICULAR_GROWTH_CENTRE_MM[1])) / f32(AURICULAR_GROWTH_REACH_MM[1])
        near, far = AURICULAR_GROWTH_LATERAL_MM
        medial = np.clip((f32(far) - v) / f32(far - near), 0, 1)
        medial = medial * medial * (3 - 2 * medial)
        growth = f32(AURICULAR_GROWTH_MM) * np.exp(-(su * su) ** 2 - (sw * sw) ** 2) * medial
        face = f32(self.joint.gap_mm / 2.0 - 1.0)
        return np.minimum(values, np.maximum(values - growth, face - v))

    def paint(self, buffer, grid, box):
        """Lower ``buffer`` to the bone's sdf where it is within :data:`PAINT_BAND_MM` of the surface or inside:
        the same values as :meth:`sdf` there, on the voxels :meth:`near_surface` finds (a seventh of the bone's
        box, most of which is far from a curved plate), which is what makes the hip bone cheap to paint."""
        _paint_where(self, buffer, grid, box, self.near_surface(grid, box))

    def near_surface(self, grid, box) -> np.ndarray:
        """Which voxels of ``box`` may be inside the bone or within :data:`PAINT_BAND_MM` of it (bool, the
        box's shape): a superset, never missing one.

        The bone's value at a point interpolates the 8 template voxels around its template position, so it is
        below the band only if one of them is: each such template voxel, placed in the world, marks the block of
        voxels (at least as wide as the placed template cell's diagonal) it falls in and the blocks around it.
        The growth adds the region where it is not negligible, a box in the joint's frame, whole."""
        p, t = self.placement, self.template
        reach = p.scale * max(1.0, p.stretch) * np.sqrt(3.0) * t.spacing_mm
        block = max(1, int(np.ceil(reach / grid.spacing)))
        start = np.array([s.start for s in box])
        shape = np.array(grid.box_shape(box))
        blocks = -(-shape // block)
        voxel = np.rint((self._band_points - np.asarray(grid.origin)) / grid.spacing).astype(np.int64) - start
        # One block of margin each side: a template voxel just outside the box marks the box's edge blocks.
        index = np.floor_divide(voxel, block) + 1
        index = index[np.all((index >= 0) & (index < blocks + 2), axis=1)]
        marked = np.zeros(blocks + 2, dtype=bool)
        marked[tuple(index.T)] = True
        marked = ndimage.maximum_filter(marked, size=3, mode="constant")[1:-1, 1:-1, 1:-1]
        near = np.repeat(np.repeat(np.repeat(marked, block, 0), block, 1), block, 2)[:shape[0], :shape[1], :shape[2]]
        lower, upper = self._growth_box()
        growth = grid.intersect(box, lower, upper)
        if growth is not None:
            near[tuple(slice(s.start - b, s.stop - b) for s, b in zip(growth, start))] = True
        return near

    def within_a_voxel(self, grid, box) -> np.ndarray:
        """Which voxels of ``box`` are inside the bone or within a voxel of its surface (bool, the box's shape):
        beyond, the bone has no share of a voxel (ct_synthesis.inside_fraction), whatever is cut from it."""
        values = np.full(grid.box_shape(box), FAR_MM, dtype=np.float32)
        self.paint(values, grid, box)
        return values < grid.spacing

    @cached_property
    def _band_points(self) -> np.ndarray:
        """World positions (mm, (n, 3)) of the template voxels whose placed distance is within the band."""
        p, t = self.placement, self.template
        template_band = (PAINT_BAND_MM + GROWTH_NEGLIGIBLE_MM) / (p.scale * min(1.0, p.stretch))
        q = t.origin_mm + np.argwhere(t.sdf_mm < template_band) * t.spacing_mm
        q[:, 2] = np.where(q[:, 2] > 0, q[:, 2] * p.stretch, q[:, 2])
        return p.origin + (p.scale * q) @ p.rotation.T

    def _growth_box(self) -> tuple[np.ndarray, np.ndarray]:
        """World box of the joint-frame region where :meth:`_grown` can lower the bone below the paint band:
        the growth above :data:`GROWTH_NEGLIGIBLE_MM`, medial of its lateral fade's end, lateral of the band
        beyond the joint's iliac face (further in, the joint's face keeps the grown bone outside the band)."""
        s = np.log(AURICULAR_GROWTH_MM / GROWTH_NEGLIGIBLE_MM) ** 0.25
        u = [AURICULAR_GROWTH_CENTRE_MM[0] + sign * s * AURICULAR_GROWTH_REACH_MM[0] for sign in (-1, 1)]
        w = [AURICULAR_GROWTH_CENTRE_MM[1] + sign * s * AURICULAR_GROWTH_REACH_MM[1] for sign in (-1, 1)]
        v = (self.joint.gap_mm / 2.0 - 1.0 - PAINT_BAND_MM, AURICULAR_GROWTH_LATERAL_MM[1])
        corners = np.array([self.joint.frame.point((a, b, c)) for a in u for b in v for c in w])
        return corners.min(axis=0), corners.max(axis=0)

    def sdf(self, x, y, z):
        p, t = self.placement, self.template
        r = (p.rotation / p.scale).astype(np.float32)  # orthogonal: its inverse is its transpose
        dx, dy, dz = x - f32(p.origin[0]), y - f32(p.origin[1]), z - f32(p.origin[2])
        u = r[0, 0] * dx + r[1, 0] * dy + r[2, 0] * dz
        v = r[0, 1] * dx + r[1, 1] * dy + r[2, 1] * dz
        w = r[0, 2] * dx + r[1, 2] * dy + r[2, 2] * dz
        u, v, w = np.broadcast_arrays(u, v, w)
        w = np.where(w > 0, w / f32(p.stretch), w)
        index = [(c - f32(o)) / f32(t.spacing_mm) for c, o in zip((u, v, w), t.origin_mm)]
        outside = np.zeros(u.shape, dtype=bool)
        for axis, i in enumerate(index):
            outside |= (i < 0) | (i > t.sdf_mm.shape[axis] - 1)
        values = ndimage.map_coordinates(t.sdf_mm, [i.ravel() for i in index], order=1, mode="nearest")
        # Distances scale with the bone (the stretch changes them little: a lower bound is kept by the smaller).
        values = values.reshape(u.shape) * f32(p.scale * min(1.0, p.stretch))
        return self._grown(np.where(outside, np.maximum(values, OUTSIDE_MM), values), x, y, z)


def _paint_where(shape: Shape, buffer: np.ndarray, grid, box, where: np.ndarray) -> None:
    """Lower ``buffer`` (over ``box`` of ``grid``) to ``shape``'s sdf at the voxels ``where`` (bool, the box's
    shape) only."""
    index = np.nonzero(where)
    if len(index[0]):
        x, y, z = (axis.ravel()[i] for axis, i in zip(grid.axes(box), index))
        buffer[index] = np.minimum(buffer[index], shape.sdf(x, y, z))


@dataclass(eq=False)
class SacralClearance(Shape):
    """The space within ``gap_mm`` of the sacrum as painted (``parts`` blended, ``cuts`` taken off) near a
    joint, the gap fading to none inside ``spared`` (where the joint's own cuts shape the bones, the ilium
    yields only to the sacrum itself): a cavity of the ``ilium`` (negative inside), bounded by [``box_lower``,
    ``box_upper``]. Painted only where the ilium is bone or partly bone (:meth:`RealIlium.within_a_voxel`):
    elsewhere a cavity of it takes nothing away, and the sacrum's many parts cost most."""

    parts: list[Shape]
    cuts: list[Shape]
    spared: Shape
    gap_mm: float
    box_lower: np.ndarray
    box_upper: np.ndarray
    ilium: RealIlium

    def __post_init__(self) -> None:
        self.union = SmoothUnion(self.parts, BONE_BLEND_MM)
        self.lower, self.upper = np.asarray(self.box_lower, float), np.asarray(self.box_upper, float)

    def sdf(self, x, y, z):
        values = self.union.sdf(x, y, z)
        for cut in self.cuts:
            values = np.maximum(values, -cut.sdf(x, y, z))
        share = np.clip(self.spared.sdf(x, y, z) / f32(SACRAL_CLEARANCE_BLEND_MM), 0, 1)
        return values - f32(self.gap_mm) * share * share * (3 - 2 * share)

    def paint(self, buffer, grid, box):
        _paint_where(self, buffer, grid, box, self.ilium.within_a_voxel(grid, box))


def sacral_clearance(joint: SacroiliacJoint, sacral_parts: list[Shape], sacral_cuts: list[Shape],
                     ilium: RealIlium) -> SacralClearance:
    """What ``ilium`` (on ``joint``'s side) loses near the sacrum (``sacral_parts``, cut by ``sacral_cuts``): the
    space within the joint's gap of it, over :data:`SACRAL_CLEARANCE_REACH_MM` of the joint."""
    corners = np.array([joint.point(a, b, c) for a in SACRAL_CLEARANCE_REACH_MM[0]
                        for b in SACRAL_CLEARANCE_REACH_MM[1] for c in SACRAL_CLEARANCE_REACH_MM[2]])
    u = (-SI_HALF_LENGTH_MM - SI_CLEFT_DEPTH_MM - 2.0, SI_HALF_LENGTH_MM + 30.0)
    w = (-SI_HALF_HEIGHT_MM - 12.0, joint.cleft_top + SACRAL_CLEARANCE_FROM_CLEFT_TOP_MM)
    half = ((u[1] - u[0]) / 2.0, 60.0, (w[1] - w[0]) / 2.0)
    spared = Primitive(Frame(joint.point((u[0] + u[1]) / 2.0, 0.0, (w[0] + w[1]) / 2.0), joint.frame.rotation),
                       rounded_box(half), half)
    return SacralClearance(sacral_parts, sacral_cuts, spared, joint.gap_mm, corners.min(axis=0), corners.max(axis=0),
                           ilium)


def hip_bone_placements(skeleton: Skeleton, joints: dict[str, SacroiliacJoint],
                        skeleton_scale: float) -> dict[str, HipBonePlacement]:
    """Each side's :func:`hip_bone_placement` on ``joints`` (by side), the crest's summit at Tuffier's line (the
    L4-L5 interspace) and the bone at the patient's ``skeleton_scale``, each side with its share of the
    patient's drawn differences (:class:`anatomy_models.spine.alignment.BodyAsymmetry`): no pelvis is a mirror
    image, one crest stands a few mm higher and one hip bone is a little larger."""
    tuffier_z = float(skeleton.alignment.discs["L4-L5"].frame.origin[2])
    body = skeleton.alignment.body
    return {side: hip_bone_placement(joint, tuffier_z + body.side(body.iliac_crest_height_mm, side),
                                     skeleton_scale * (1.0 + body.side(body.hip_bone_size, side)))
            for side, joint in joints.items()}


def ilium_parts(skeleton: Skeleton, joints: dict[str, SacroiliacJoint],
                skeleton_scale: float) -> dict[str, list[tuple[str, Shape]]]:
    """Labelled parts of both ilia (``ilium.left``, ``ilium.right``: one real hip bone each, grown out to its
    sacroiliac joint, placed by :func:`hip_bone_placements`), world shapes; ``joints`` are the sacroiliac joints
    by side, ``skeleton_scale`` the patient's (sex and size)."""
    template = load_hip_bone()
    placements = hip_bone_placements(skeleton, joints, skeleton_scale)
    return {f"ilium.{side}": [(f"ilium.{side}", RealIlium(template, placements[side], joint))]
            for side, joint in joints.items()}


def bi_iliac_breadth_mm(placements: dict[str, HipBonePlacement]) -> float:
    """The distance across the two hip bones' most lateral points (the iliac tubercles), mm: the bony
    bi-iliac (intercristal) breadth, on the template's voxels inside the bone."""
    template = load_hip_bone()
    inside = template.origin_mm + np.argwhere(template.sdf_mm < 0) * template.spacing_mm
    x = {}
    for side, placement in placements.items():
        q = inside * placement.scale
        q[:, 2] = np.where(q[:, 2] > 0, q[:, 2] * placement.stretch, q[:, 2])
        x[side] = placement.origin[0] + q @ placement.rotation[0]
    return float(x["left"].max() - x["right"].min())
