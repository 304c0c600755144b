"""The bony column: every vertebra's layout and labelled parts, the facet joints, the discs' space.

:func:`build_skeleton` lays out T12-S1 from the alignment, gives T12-L5 their real shapes
(:mod:`anatomy_models.spine.shape_model`), moves each layout's laminae onto its real shape's, sets
each lamina's lower edge so the interlaminar window has the reference height (clinical.md §4.7
[S83]) and stretches the real laminae (not the spinous process) to it, raises the spinous process's
lower border where its own height would leave less than the published interspinous gap
(:func:`anatomy_models.spine.morphometry.least_interspinous_gap_mm`), places the facet joints and
returns, per vertebra, the labelled implicit parts that the rasteriser paints (on a real vertebra they
name the regions of its outline).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from anatomy_models.spine.alignment import INTERSPACE_NAMES, VERTEBRA_NAMES, SpineAlignment
from anatomy_models.spine.facets import (FacetJoint, facet_joint, fit_joint_to_processes, inferior_articular_process,
                                         superior_articular_process)
from anatomy_models.spine.morphometry import least_interspinous_gap_mm
from anatomy_models.spine.parameters import SpineParameters
from anatomy_models.spine.sacrum import sacral_layout_adjustments, sacrum_parts
from anatomy_models.spine.sdf import Shape, SmoothUnion
from anatomy_models.spine.shape_model import (TEMPLATE_OF_LEVEL, LevelTargets, arch_template_w, own_spinous_bottom_w,
                                              real_vertebra)
from anatomy_models.spine.vertebra import (OSTEOPHYTE_MM_PER_GRADE, SIDE_SIGN, SPINOUS_PROCESS_ROOT_MM,
                                           SPINOUS_PROCESS_UPTURN_DEG, TRANSVERSE_PROCESS_TIP_HEIGHT_FRACTION,
                                           TRANSVERSE_PROCESS_UPWARD_DEG, VertebraLayout, lamina_part, layout_vertebra,
                                           pars_part, place_spinous_process, spinous_process_part, vertebra_parts)

# Paramedian offset of the sagittal plane in which the interlaminar window is set and measured, mm
# [ED] (where a paramedian interlaminar needle passes, clear of the spinous process).
WINDOW_LINE_OFFSET_MM = 6.0
# How far the layout's midline lamina line moves toward the real laminae's apex (fraction) [ED]: all
# the way leaves no posterior epidural space at L2-L3, none leaves 9 mm at L4-L5, against up to
# 5-6 mm mid-lumbar (clinical.md §4.7 [S91]).
LAMINA_APEX_FIT = 0.2
# The real bones' interlaminar gap is measured from this far behind the bodies' back wall (mm), clear
# of the bodies and the disc, as anatomy_models.spine.measure reads it.
WINDOW_BEHIND_WALL_MM = 4.0
# The lamina's lower edge stays at least this far below the pedicle's (mm) [ED].
LAMINA_BELOW_PEDICLE_MIN_MM = 4.0
# The interspinous gap is set in the midline behind where the spinous process's label begins (its root
# in the laminae's apex, vertebra.SPINOUS_PROCESS_ROOT_MM in front of its base) over this reach, mm [ED],
# as anatomy_models.spine.measure reads it between the labelled processes.
SPINOUS_GAP_REACH_MM = 50.0
# The spinous process's tip is the mid-height of its back end over this length (mm) in the midline [ED: the
# thickened posterior border, a few millimetres deep].
SPINOUS_TIP_END_MM = 4.0
# Bone blend radius (fillets between parts of one vertebra), mm [ED].
BONE_BLEND_MM = 3.5
# The ligamentum flavum's capsular part: where it is looked for behind the foramen and how it lies on
# the bone there (mm) [ED]. It is sought from 3 mm behind the bodies' back wall (where the safe
# triangle's target lies), at most 20 mm back, on a 0.5 mm grid, and sinks 0.5 mm into the bone (no
# gap between ligament and bone on the grid).
CAPSULAR_FLAVUM_FROM_WALL_MM = 3.0
CAPSULAR_FLAVUM_REACH_MM = 20.0
CAPSULAR_FLAVUM_STEP_MM = 0.5
CAPSULAR_FLAVUM_INTO_BONE_MM = 0.5


@dataclass
class Skeleton:
    """Layouts, facet joints and labelled parts of every vertebra."""

    alignment: SpineAlignment
    layouts: dict[str, VertebraLayout]
    joints: dict[tuple[str, str], FacetJoint]      # (interspace, side) -> joint
    parts: dict[str, list[tuple[str, Shape]]]       # vertebra -> [(label, shape)]
    # vertebra -> its bone's outline where it is a real shape (the parts then only name its regions)
    outlines: dict[str, Shape]

    def vertebra_shape(self, name: str) -> Shape:
        """The whole vertebra ``name`` as one shape (for landmarks on its surface)."""
        if name in self.outlines:
            return self.outlines[name]
        return SmoothUnion([shape for _, shape in self.parts[name]], BONE_BLEND_MM)

    def vertebra_shape_within(self, name: str, lower: np.ndarray, upper: np.ndarray) -> Shape:
        """The vertebra ``name`` as seen inside the box ``lower``..``upper`` (world mm): only the parts
        whose own box comes within the blend radius of it. Its sign agrees with
        :meth:`vertebra_shape` everywhere in the box (a part further than the blend radius can
        neither add inside nor change the fillets there); cheap for the sacrum's many parts. A real
        vertebra is its outline."""
        if name in self.outlines:
            return self.outlines[name]
        near = [shape for _, shape in self.parts[name]
                if np.all(shape.lower <= upper + BONE_BLEND_MM) and np.all(shape.upper >= lower - BONE_BLEND_MM)]
        return SmoothUnion(near, BONE_BLEND_MM)

    def part_shape(self, label: str) -> Shape:
        """All parts carrying ``label`` (e.g. ``L4.lamina.left``, which includes the pars); on a real
        vertebra, the region of its outline that the rasteriser labels ``label``."""
        level = label.split(".")[0]
        own = SmoothUnion([shape for name, shape in self.parts[level] if name == label], BONE_BLEND_MM)
        if level not in self.outlines:
            return own
        others = [shape for name, shape in self.parts[level] if name != label]
        return PartRegion(self.outlines[level], own, others)


@dataclass(eq=False)
class PartRegion(Shape):
    """The voxels of ``outline`` nearer to ``own`` than to any of ``others``: a labelled part of a real
    vertebra, as the rasteriser's nearest-part labelling paints it."""

    outline: Shape
    own: Shape
    others: list[Shape]

    def __post_init__(self) -> None:
        self.lower, self.upper = self.outline.lower, self.outline.upper

    def sdf(self, x, y, z):
        own = self.own.sdf(x, y, z)
        nearest_other = np.minimum.reduce([other.sdf(x, y, z) for other in self.others])
        # Half the difference of the two distances: about the distance to their bisector.
        return np.maximum(self.outline.sdf(x, y, z), 0.5 * (own - nearest_other))


@dataclass(eq=False)
class BoneLining(Shape):
    """A sheet ``thickness_mm`` thick on the ventral face of bone: in ``frame``'s (u, w) over a sampled
    map of where the bone begins going back (v), with its edges where the map has no bone.

    ``surface_v`` (mm, rows u, columns w on ``u_mm`` x ``w_mm``) is the sheet's back face; ``edge_mm``
    the signed in-plane distance to the mapped region (negative inside).
    """

    frame: object
    u_mm: np.ndarray
    w_mm: np.ndarray
    surface_v: np.ndarray
    edge_mm: np.ndarray
    thickness_mm: float

    def __post_init__(self) -> None:
        inside = self.edge_mm < 0
        v = self.surface_v[inside]
        uu, ww = np.meshgrid(self.u_mm, self.w_mm, indexing="ij")
        local = np.stack([uu[inside], v, ww[inside]], axis=1)
        local = np.concatenate([local, local - np.array([0.0, self.thickness_mm, 0.0])])
        world = local @ self.frame.rotation.T + self.frame.origin
        self.lower, self.upper = world.min(axis=0) - 1.0, world.max(axis=0) + 1.0

    def sdf(self, x, y, z):
        u, v, w = self.frame.to_local(x, y, z)
        step = self.u_mm[1] - self.u_mm[0]
        index = [((u - self.u_mm[0]) / step).ravel(), ((w - self.w_mm[0]) / step).ravel()]
        back = ndimage.map_coordinates(self.surface_v, index, order=1, mode="nearest").reshape(np.shape(u))
        edge = ndimage.map_coordinates(self.edge_mm, index, order=1, mode="nearest").reshape(np.shape(u))
        # Beyond the map, the in-plane distance grows with the distance from its border.
        beyond = np.maximum.reduce([self.u_mm[0] - u, u - self.u_mm[-1], self.w_mm[0] - w, w - self.w_mm[-1]])
        edge = np.maximum(edge, beyond)
        half = np.float32(self.thickness_mm / 2.0)
        across = np.abs(v - (back - half)) - half
        return np.maximum(across, edge).astype(np.float32)


def capsular_flavum(skeleton: Skeleton, interspace: str, side: str, thickness_mm: float) -> BoneLining:
    """The ligamentum flavum's capsular (foraminal) part at ``interspace`` on ``side``: it lines the
    front of the facet joint and the foramen's dorsal wall (the upper vertebra's pars and inferior
    articular process, the lower one's superior articular process; clinical.md §2.2 foramen anatomy:
    "back = facet joint (SAP of the lower vertebra), lamina, ligamentum flavum"), from the upper
    pedicle's lower border down to the lower pedicle's upper border, from the canal's side out to the
    upper pedicle's lateral wall above the upper body's lower endplate (the foramen's upper part, where
    the safe triangle is) and to the pedicle's middle below it (Kambin's triangle lies further out, in
    front of the superior articular process at the disc, §2.2(b)), where that bone is.

    Built in the upper vertebra's frame: for each (u, w) on a grid the first bone of either vertebra
    behind :data:`CAPSULAR_FLAVUM_FROM_WALL_MM` is found; the sheet lies in front of it.
    """
    upper_name, lower_name = interspace.split("-")
    upper, lower = skeleton.layouts[upper_name], skeleton.layouts[lower_name]
    d = upper.geometry.dims
    s = SIDE_SIGN[side]
    step = CAPSULAR_FLAVUM_STEP_MM
    middle = abs(upper.pedicle_center[side][0])
    alpha = math.radians(d.pedicle_medial_angle_deg)
    lateral_wall = middle + upper.geometry.pedicle_width_mm(side) / 2.0 / math.cos(alpha)
    u = np.arange(d.canal_transverse_mm / 2.0, lateral_wall + step / 2, step)
    lower_pedicle_top = upper.frame.rotation.T @ (lower.world(lower.pedicle_center[side]) - upper.frame.origin)
    bottom = lower_pedicle_top[2] + lower.geometry.dims.pedicle_height_mm / 2.0
    w = np.arange(bottom, upper.pedicle_z - d.pedicle_height_mm / 2.0 + step / 2, step)
    front = upper.depth / 2.0 + CAPSULAR_FLAVUM_FROM_WALL_MM
    v = np.arange(front, front + CAPSULAR_FLAVUM_REACH_MM, step)
    uu, vv, ww = np.meshgrid(s * u, v, w, indexing="ij")
    world = upper.frame.origin[:, None] + upper.frame.rotation @ np.stack([uu.ravel(), vv.ravel(), ww.ravel()])
    coords = tuple(world[i].astype(np.float32) for i in range(3))
    bone = np.zeros(uu.size, dtype=bool)
    for name in (upper_name, lower_name):
        bone |= skeleton.vertebra_shape(name).sdf(*coords) < 0
    lined = capsular_lining(bone.reshape(uu.shape), v, step, (u[:, None] > middle) & (w[None, :] < -upper.height / 2.0))
    if lined is None:
        raise ValueError(f"{interspace} {side}: no bone behind the foramen for the ligamentum flavum to line")
    surface, edge = lined
    frame = upper.frame if s > 0 else _mirrored(upper.frame)
    return BoneLining(frame, u, w, surface.astype(np.float32), edge.astype(np.float32), thickness_mm)


def capsular_lining(bone: np.ndarray, v: np.ndarray, step: float,
                    excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Where the capsular flavum lies on a (u, v, w) grid of ``bone`` (``v`` the depths, ``step`` the grid's
    spacing, mm): the back of the sheet at each (u, w), in front of the first bone behind free space (a column
    that starts in bone is in the pedicle or body; ``excluded`` columns are not lined), the unmapped cells
    filled with their nearest mapped value; and the signed distance (mm) to the mapped cells' edge, negative
    inside. None where no column meets such bone. Shared by the generator (:func:`capsular_flavum`) and a
    labelled CT's parts (``anatomy_models.label_parts``)."""
    found = bone.any(axis=1) & ~bone[:, 0, :] & ~excluded
    if not found.any():
        return None
    surface = v[np.where(found, bone.argmax(axis=1), 0)] + CAPSULAR_FLAVUM_INTO_BONE_MM
    surface = surface[tuple(ndimage.distance_transform_edt(~found, return_distances=False, return_indices=True))]
    edge = (ndimage.distance_transform_edt(~found) - ndimage.distance_transform_edt(found) + 0.5) * step
    return surface, edge


def _mirrored(frame):
    """``frame`` with its first axis flipped (the right side's u counts outward as the left's)."""
    rotation = frame.rotation.copy()
    rotation[:, 0] = -rotation[:, 0]
    return replace(frame, rotation=rotation)


def plane_gap(shape_a: Shape, shape_b: Shape, frame, x_offset_mm: float, y_range: tuple[float, float],
              z_range: tuple[float, float], step_mm: float = 0.25) -> tuple[float, np.ndarray]:
    """Gap between two shapes in the sagittal plane ``x = x_offset_mm`` of ``frame``.

    Returns (the smallest in-plane distance between them in mm, the world point half-way across the
    gap). Their signed distances are sampled on the plane; the gap is the least sum of the two outside
    distances, and its middle is where the two distances are equal.
    """
    world, _ = sagittal_plane(frame, x_offset_mm, y_range, z_range, step_mm)
    coords = tuple(world[:, i].astype(np.float32) for i in range(3))
    a, b = shape_a.sdf(*coords).astype(np.float64), shape_b.sdf(*coords).astype(np.float64)
    total = np.where((a > 0) & (b > 0), a + b, np.inf)
    gap = float(total.min())
    near = total <= gap + step_mm
    middle = np.argmin(np.where(near, np.abs(a - b), np.inf))
    return gap, world[middle]


def sagittal_plane(frame, x_offset_mm: float, y_range: tuple[float, float], z_range: tuple[float, float],
                   step_mm: float) -> tuple[np.ndarray, tuple[int, int]]:
    """World points (n, 3) sampling the sagittal plane ``x = x_offset_mm`` of ``frame`` every ``step_mm`` over
    the ranges, and the plane's (y, z) shape they fill row by row."""
    y = np.arange(y_range[0], y_range[1], step_mm)
    z = np.arange(z_range[0], z_range[1], step_mm)
    yy, zz = np.meshgrid(y, z, indexing="ij")
    local = np.stack([np.full(yy.size, x_offset_mm), yy.ravel(), zz.ravel()], axis=1)
    return local @ frame.rotation.T + frame.origin, yy.shape


class PlaneGapOfMasks:
    """Smallest in-plane distance (mm) between the insides of two shapes in the sagittal plane
    ``x = x_offset_mm`` of ``frame``, from their sampled masks (as a label map is measured): for shapes
    whose signed distance is exact only near their surface (a real vertebra's grid).

    ``fixed`` is the bone that stays put while a fit moves the other (the vertebra below): its mask is
    sampled once, and ``gap(moving)`` samples only the other's (the fits' bisections ask 14-18 times).
    """

    def __init__(self, fixed: Shape, frame, x_offset_mm: float, y_range: tuple[float, float],
                 z_range: tuple[float, float], step_mm: float = 0.5) -> None:
        world, self.plane_shape = sagittal_plane(frame, x_offset_mm, y_range, z_range, step_mm)
        self.coords = tuple(world[:, i].astype(np.float32) for i in range(3))
        self.fixed = (fixed.sdf(*self.coords) < 0).reshape(self.plane_shape)
        self.step_mm = step_mm

    def gap(self, moving: Shape) -> float:
        inside = (moving.sdf(*self.coords) < 0).reshape(self.plane_shape)
        if not inside.any() or not self.fixed.any():
            return math.inf
        return float(ndimage.distance_transform_edt(~inside, sampling=self.step_mm)[self.fixed].min())


def window_plane(alignment: SpineAlignment, upper: VertebraLayout) -> tuple:
    """Frame and (y, z) ranges of the plane region holding the interlaminar window below ``upper``."""
    lower_name = VERTEBRA_NAMES[VERTEBRA_NAMES.index(upper.name) + 1]
    disc = alignment.discs[f"{upper.name}-{lower_name}"]
    y0 = upper.depth / 2.0
    return disc.frame, (y0, y0 + upper.geometry.dims.canal_ap_mm + 30.0), (-35.0, 35.0)


def _ventral_lamina_profile(layout: VertebraLayout, outline: Shape, side_fraction: float,
                            step_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """(w, v) of the real laminae's ventral surface, in the sagittal plane ``side_fraction`` of the way
    from the midline to the layout's lateral lamina line: the first bone behind the canal per height."""
    d = layout.geometry.dims
    u = side_fraction * abs(layout.lamina_lateral["left"][0])
    v = np.arange(layout.depth / 2.0 + 3.0, layout.depth / 2.0 + d.canal_ap_mm + 25.0, step_mm)
    w = np.arange(layout.pedicle_z - 50.0 * layout.geometry.scale, layout.pedicle_z + 25.0, step_mm)
    vv, ww = np.meshgrid(v, w, indexing="ij")
    local = np.stack([np.full(vv.size, u), vv.ravel(), ww.ravel()])
    world = layout.frame.origin[:, None] + layout.frame.rotation @ local
    bone = (outline.sdf(*(world[i].astype(np.float32) for i in range(3))) < 0).reshape(vv.shape)
    rows = np.flatnonzero(bone.any(axis=0))
    if len(rows) == 0:
        raise ValueError(f"{layout.name}: the real outline has no lamina {u:.1f} mm off the midline")
    return w[rows], v[bone[:, rows].argmax(axis=0)]


def fit_laminae_to_outline(layout: VertebraLayout, outline: Shape, step_mm: float = 0.5) -> None:
    """Move the layout's laminae onto the real outline's: the ventral line's depth half-way out to the
    pars, and the top and bottom edges read there.

    The ligamentum flavum, the canal's back wall, the interlaminar window and their landmarks are built
    on the layout's laminae, so they then sit on the real bone.
    """
    # The midline moves part of the way onto the real laminae's apex (:data:`LAMINA_APEX_FIT`): the
    # canal's reference depth is kept at the pedicles by the warp, and the flavum hung on this line
    # leaves the posterior epidural space its published depth. The half-way line then moves onto
    # the real laminae by moving the lateral end, which does not come forward (the flavum hung on it
    # would reach into the foramen under the pedicle).
    shifts = []
    for fraction in (0.0, 0.5):
        w, first = _ventral_lamina_profile(layout, outline, fraction, step_mm)
        predicted = np.array([layout.lamina_ventral_point(fraction, z)[1] for z in w])
        shifts.append(float(np.median(first - predicted)))
    medial = LAMINA_APEX_FIT * shifts[0]
    layout.lamina_medial = layout.lamina_medial + np.array([0.0, medial, 0.0])
    lateral = max(2.0 * shifts[1] - medial, 0.0)
    for side in SIDE_SIGN:
        layout.lamina_lateral[side] = layout.lamina_lateral[side] + np.array([0.0, lateral, 0.0])
    layout.lamina_bottom_z, layout.lamina_top_z = float(w[0]), float(w[-1])


def find_spinous_process_tip(layout: VertebraLayout, outline, step_mm: float = 0.5) -> None:
    """Aim the search for the spinous process's tip landmark at the real outline's tip: the mid-height of the
    process's back end in the midline, its last :data:`SPINOUS_TIP_END_MM` (``layout.spinous_tip_aim``).

    The axis :func:`place_spinous_process` lays from the laminae's mid-height does not know where the warp put
    the real process (its lower border fitted to the interspinous gap, its upper one turned up): along it the
    landmark met L4's process near its top and L5's 10 mm in front of its back end, so a lateral's rays
    "through the process" and "through the gap below" both crossed L4's process (issue 16). The axis itself
    stays: the supraspinous ligament and the skin over it are hung on it (soft_tissue), and the ultrasound
    presets are seated on that skin.
    """
    base = layout.sp_base
    v = np.arange(base[1], base[1] + 80.0, step_mm, dtype=np.float32)
    w = np.arange(base[2] - 50.0, base[2] + 40.0, step_mm, dtype=np.float32)
    inside = outline.local_sdf(np.float32(0.0), v[:, None], w[None, :]) < 0
    # The process's bone in the midline: the run of rows with bone that starts at the base.
    rows = inside.any(axis=1)
    last = int(np.argmin(rows)) - 1 if not rows.all() else len(v) - 1
    if last < 0:
        raise ValueError(f"{layout.name}: the real outline has no spinous process behind its laminae' junction")
    end = slice(max(last - int(round(SPINOUS_TIP_END_MM / step_mm)), 0), last + 1)
    heights = w[np.flatnonzero(inside[end].any(axis=0))]
    layout.spinous_tip_aim = np.array([0.0, float(v[last]), 0.5 * float(heights[0] + heights[-1])])


def _fit_window(alignment: SpineAlignment, upper: VertebraLayout, lower: VertebraLayout, target_mm: float,
                upper_shape=None, lower_shape: Shape | None = None) -> None:
    """Set the upper lamina's lower edge so the paramedian interlaminar gap is ``target_mm`` (bisection).

    ``upper_shape(bottom_z)``, if given, is the upper vertebra's bone with its lamina's lower edge at
    ``bottom_z`` (a real shape stretched to it) and ``lower_shape`` the lower vertebra's bone: the gap
    is then measured between the real bones, as a CT shows it, not between the layout's laminae.
    """
    frame, y_range, z_range = window_plane(alignment, upper)
    if upper_shape is not None:  # behind the bodies' back walls (and the disc between them), as measured
        y_range = (y_range[0] + WINDOW_BEHIND_WALL_MM, y_range[1])
    below = lower_shape or SmoothUnion([lamina_part(lower, "left"), pars_part(lower, "left")], BONE_BLEND_MM)
    masks = PlaneGapOfMasks(below, frame, WINDOW_LINE_OFFSET_MM, y_range, z_range) if upper_shape is not None else None

    def gap(bottom_z: float) -> float:
        upper.lamina_bottom_z = bottom_z
        place_spinous_process(upper)
        if masks is not None:
            return masks.gap(upper_shape(bottom_z))
        above = SmoothUnion([lamina_part(upper, "left"), pars_part(upper, "left")] + spinous_process_part(upper),
                            BONE_BLEND_MM)
        return plane_gap(above, below, frame, WINDOW_LINE_OFFSET_MM, y_range, z_range, 0.5)[0]

    low, high = upper.pedicle_z - 45.0 * upper.geometry.scale, upper.pedicle_z - 4.0
    for _ in range(18):  # the gap grows as the edge rises
        middle = 0.5 * (low + high)
        if gap(middle) < target_mm:
            low = middle
        else:
            high = middle
    upper.lamina_bottom_z = 0.5 * (low + high)


def _fit_spinous_gap(alignment: SpineAlignment, upper: VertebraLayout, target_mm: float, upper_shape,
                     lower_shape: Shape, low_mm: float, high_mm: float) -> float:
    """The level w of the upper spinous process's lower border (between ``low_mm`` and ``high_mm``)
    that leaves ``target_mm`` between it and the bone below in the midline, behind the laminae's
    junction (bisection); ``upper_shape(bottom_w)`` is the upper vertebra with its process's border there.
    """
    frame, _, z_range = window_plane(alignment, upper)
    behind = upper.sp_base[1] - SPINOUS_PROCESS_ROOT_MM
    y_range = (behind, behind + SPINOUS_GAP_REACH_MM)
    masks = PlaneGapOfMasks(lower_shape, frame, 0.0, y_range, z_range)
    for _ in range(14):  # the gap grows as the border rises
        middle = 0.5 * (low_mm + high_mm)
        if masks.gap(upper_shape(middle)) < target_mm:
            low_mm = middle
        else:
            high_mm = middle
    return 0.5 * (low_mm + high_mm)


def _sacralize(l5: VertebraLayout, s1: VertebraLayout) -> None:
    """Sacralised L5: broad "butterfly" transverse processes that reach down onto the sacral alae."""
    for side, s in SIDE_SIGN.items():
        ala_top = s1.world((s * (s1.width / 2.0 + 12.0), 0.1 * s1.depth, s1.height * 0.25))
        l5.tp_tip[side] = l5.frame.rotation.T @ (ala_top - l5.frame.origin)
    l5.tp_height *= 1.7


def level_targets(layout: VertebraLayout) -> LevelTargets:
    """What a real shape is warped to at ``layout``'s level: its reference body and canal (scaled for
    sex and size), the transverse and spinous process tips and the pedicles the layout placed, and the
    transverse processes' taper and slope."""
    d = layout.geometry.dims
    alpha = math.radians(d.pedicle_medial_angle_deg)
    lateral_wall, tip = {}, {}
    for side in SIDE_SIGN:
        lateral_wall[side] = (abs(layout.pedicle_center[side][0])
                              + layout.geometry.pedicle_width_mm(side) / 2.0 / math.cos(alpha))
        tip[side] = float(abs(layout.tp_tip[side][0]))
    tip_fraction = TRANSVERSE_PROCESS_TIP_HEIGHT_FRACTION[layout.name]
    return LevelTargets(layout.width, layout.depth, layout.height, d.canal_transverse_mm, d.canal_ap_mm,
                        lateral_wall["left"], tip["left"], float(layout.sp_tip[1]),
                        layout.pedicle_z - d.pedicle_height_mm / 2.0, layout.pedicle_z + d.pedicle_height_mm / 2.0,
                        transverse_process_tip_height_fraction=tip_fraction,
                        transverse_process_upward_deg=TRANSVERSE_PROCESS_UPWARD_DEG.get(layout.name, 0.0),
                        spinous_process_upturn_deg=SPINOUS_PROCESS_UPTURN_DEG.get(layout.name, 0.0),
                        right_pedicle_lateral_mm=lateral_wall["right"], right_transverse_process_tip_mm=tip["right"])


def build_skeleton(alignment: SpineAlignment, params: SpineParameters) -> Skeleton:
    layouts = {name: layout_vertebra(alignment.vertebrae[name]) for name in VERTEBRA_NAMES}
    lumbarized = params.transitional == "lumbarized_S1"
    sacral_layout_adjustments(layouts["S1"], lumbarized)
    if lumbarized:  # a free S1 arch gets a lumbar-like spinous process [ED]
        layouts["S1"].geometry = replace(layouts["S1"].geometry, dims=replace(
            layouts["S1"].geometry.dims, spinous_process_height_mm=14.0, spinous_process_length_mm=22.0))
    # Real shapes: first as the reference dimensions place them; the layout's laminae move onto them.
    targets = {name: level_targets(layouts[name]) for name in TEMPLATE_OF_LEVEL}
    real_bottoms, unstretched = {}, {}
    for name, target in targets.items():
        unstretched[name] = real_vertebra(name, layouts[name].frame, target)
        fit_laminae_to_outline(layouts[name], unstretched[name])
        real_bottoms[name] = layouts[name].lamina_bottom_z
    # Then each lower lamina edge goes where the interlaminar window, measured between the real bones,
    # has its reference height (clinical.md §4.7 [S83]): the real laminae are stretched (or squeezed)
    # below their pedicle to meet it, their inferior articular processes with them, down onto the next
    # vertebra's superior ones; the spinous process keeps its own height unless the gap to the next
    # process asks less.
    reals = {}
    for name in INTERSPACE_NAMES:
        upper, lower = name.split("-")
        template_bottom = arch_template_w(upper, targets[upper], real_bottoms[upper])

        def stretched(bottom_z: float, upper: str = upper, template_bottom: float = template_bottom) -> Shape:
            return real_vertebra(upper, layouts[upper].frame, replace(
                targets[upper], lamina_bottom_mm=bottom_z, template_lamina_bottom_mm=template_bottom))
        _fit_window(alignment, layouts[upper], layouts[lower], alignment.discs[name].reference.interlaminar_mm
                    * params.skeleton_scale, stretched, unstretched.get(lower))
        layout = layouts[upper]
        pedicle_bottom = targets[upper].pedicle_bottom_mm
        layout.lamina_bottom_z = min(layout.lamina_bottom_z, pedicle_bottom - LAMINA_BELOW_PEDICLE_MIN_MM)
        targets[upper] = replace(targets[upper], lamina_bottom_mm=layout.lamina_bottom_z,
                                 template_lamina_bottom_mm=template_bottom)
        # The process's lower border leaves at least the published gap to the next process (the
        # lordosis fans the processes: at L3-L4 to L5-S1 their own height would leave too little).
        below = unstretched.get(lower) or SmoothUnion([shape for _, shape in sacrum_parts(
            layouts[lower], 0.5, lumbarized)], BONE_BLEND_MM)

        def with_spinous(bottom_w: float, upper: str = upper) -> Shape:
            return real_vertebra(upper, layouts[upper].frame,
                                 replace(targets[upper], spinous_process_bottom_mm=bottom_w))
        # It only rises: a process is never drawn longer than its own shape.
        least_mm = least_interspinous_gap_mm(name) * params.skeleton_scale
        bottom = _fit_spinous_gap(alignment, layout, least_mm, with_spinous, below,
                                  own_spinous_bottom_w(upper, targets[upper]), pedicle_bottom - 4.0)
        targets[upper] = replace(targets[upper], spinous_process_bottom_mm=bottom)
        reals[upper] = real_vertebra(upper, layout.frame, targets[upper])
        fit_laminae_to_outline(layout, reals[upper])  # the stretch tilts the laminae a little
        place_spinous_process(layout)
        find_spinous_process_tip(layout, reals[upper])
    if params.transitional == "sacralized_L5":
        _sacralize(layouts["L5"], layouts["S1"])
    joints = {}
    for name in INTERSPACE_NAMES:
        upper, lower = name.split("-")
        for side in SIDE_SIGN:
            joint = facet_joint(alignment.discs[name], layouts[lower], side, params.facet_tropism_deg,
                                params.spacing_mm)
            # On the real shapes the joint sits where their articular processes meet.
            joint = fit_joint_to_processes(joint, alignment.discs[name], reals[upper], reals.get(lower))
            joints[(name, side)] = joint
            # The upper vertebra's pars ends where its inferior articular process begins: the joint's top.
            top = joint.frame.point((0.0, 0.0, joint.height_mm / 2.0)) - layouts[upper].frame.origin
            layouts[upper].pars_bottom_z[side] = float((layouts[upper].frame.rotation.T @ top)[2])
    osteophyte = OSTEOPHYTE_MM_PER_GRADE * params.degeneration
    parts: dict[str, list[tuple[str, Shape]]] = {}
    for index, name in enumerate(VERTEBRA_NAMES):
        above = alignment.discs.get(f"{VERTEBRA_NAMES[index - 1]}-{name}") if index > 0 else None
        below = alignment.discs.get(f"{name}-{VERTEBRA_NAMES[index + 1]}") if index + 1 < len(VERTEBRA_NAMES) else None
        concavity_top = above.endplate_concavity_mm if above else 0.5
        concavity_bottom = below.endplate_concavity_mm if below else 0.5
        if name == "S1":
            labelled = sacrum_parts(layouts[name], concavity_top, params.transitional == "lumbarized_S1")
        else:
            labelled = vertebra_parts(layouts[name], concavity_top, concavity_bottom, osteophyte)
        for side in SIDE_SIGN:
            if above is not None:
                labelled += [(f"{name}.SAP.{side}", shape) for shape in
                             superior_articular_process(joints[(above.name, side)], layouts[name], params.degeneration)]
            if below is not None:
                labelled += [(f"{name}.IAP.{side}", shape) for shape in
                             inferior_articular_process(joints[(below.name, side)], layouts[name], params.degeneration)]
        parts[name] = labelled
    outlines: dict[str, Shape] = {}
    for name in reals:
        # What the parameters grow on a real vertebra: the body's osteophytes (degeneration) and the
        # sacralised L5's butterfly transverse processes.
        extras = [shape for label, shape in parts[name] if
                  (osteophyte > 0 and label == f"{name}.body") or
                  (params.transitional == "sacralized_L5" and name == "L5" and ".transverse_process." in label)]
        outlines[name] = SmoothUnion([reals[name]] + extras, BONE_BLEND_MM) if extras else reals[name]
    return Skeleton(alignment, layouts, joints, parts, outlines)
