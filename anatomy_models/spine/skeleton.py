"""The bony column: every vertebra's layout and labelled parts, the facet joints, the discs' space.

:func:`build_skeleton` lays out T12-S1 from the alignment, sets each lamina's lower edge so the
interlaminar window has the reference height (clinical.md §4.7 [S83]), places the facet joints and
returns, per vertebra, the labelled implicit parts that the rasteriser paints.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from anatomy_models.spine.alignment import INTERSPACE_NAMES, VERTEBRA_NAMES, SpineAlignment
from anatomy_models.spine.facets import FacetJoint, facet_joint, inferior_articular_process, superior_articular_process
from anatomy_models.spine.parameters import SpineParameters
from anatomy_models.spine.sacrum import sacral_layout_adjustments, sacrum_parts
from anatomy_models.spine.sdf import Shape, SmoothUnion
from anatomy_models.spine.vertebra import (OSTEOPHYTE_MM_PER_GRADE, SIDE_SIGN, VertebraLayout, lamina_part,
                                           layout_vertebra, pars_part, place_spinous_process,
                                           spinous_process_part, vertebra_parts)

# Paramedian offset of the sagittal plane in which the interlaminar window is set and measured, mm
# [ED] (where a paramedian interlaminar needle passes, clear of the spinous process).
WINDOW_LINE_OFFSET_MM = 6.0
# Bone blend radius (fillets between parts of one vertebra), mm [ED].
BONE_BLEND_MM = 3.5


@dataclass
class Skeleton:
    """Layouts, facet joints and labelled parts of every vertebra."""

    alignment: SpineAlignment
    layouts: dict[str, VertebraLayout]
    joints: dict[tuple[str, str], FacetJoint]      # (interspace, side) -> joint
    parts: dict[str, list[tuple[str, Shape]]]       # vertebra -> [(label, shape)]

    def vertebra_shape(self, name: str) -> SmoothUnion:
        """The whole vertebra ``name`` as one blended shape (for landmarks on its surface)."""
        return SmoothUnion([shape for _, shape in self.parts[name]], BONE_BLEND_MM)

    def vertebra_shape_within(self, name: str, lower: np.ndarray, upper: np.ndarray) -> SmoothUnion:
        """The vertebra ``name`` as seen inside the box ``lower``..``upper`` (world mm): only the parts
        whose own box comes within the blend radius of it. Its sign agrees with
        :meth:`vertebra_shape` everywhere in the box (a part further than the blend radius can
        neither add inside nor change the fillets there); cheap for the sacrum's many parts."""
        near = [shape for _, shape in self.parts[name]
                if np.all(shape.lower <= upper + BONE_BLEND_MM) and np.all(shape.upper >= lower - BONE_BLEND_MM)]
        return SmoothUnion(near, BONE_BLEND_MM)

    def part_shape(self, label: str) -> SmoothUnion:
        """All parts carrying ``label`` (e.g. ``L4.lamina.left``, which includes the pars)."""
        level = label.split(".")[0]
        return SmoothUnion([shape for name, shape in self.parts[level] if name == label], BONE_BLEND_MM)


def plane_gap(shape_a: Shape, shape_b: Shape, frame, x_offset_mm: float, y_range: tuple[float, float],
              z_range: tuple[float, float], step_mm: float = 0.25) -> tuple[float, np.ndarray]:
    """Gap between two shapes in the sagittal plane ``x = x_offset_mm`` of ``frame``.

    Returns (the smallest in-plane distance between them in mm, the world point half-way across the
    gap). Their signed distances are sampled on the plane; the gap is the least sum of the two outside
    distances, and its middle is where the two distances are equal.
    """
    y = np.arange(y_range[0], y_range[1], step_mm)
    z = np.arange(z_range[0], z_range[1], step_mm)
    yy, zz = np.meshgrid(y, z, indexing="ij")
    local = np.stack([np.full(yy.size, x_offset_mm), yy.ravel(), zz.ravel()], axis=1)
    world = local @ frame.rotation.T + frame.origin
    coords = tuple(world[:, i].astype(np.float32) for i in range(3))
    a, b = shape_a.sdf(*coords).astype(np.float64), shape_b.sdf(*coords).astype(np.float64)
    total = np.where((a > 0) & (b > 0), a + b, np.inf)
    gap = float(total.min())
    near = total <= gap + step_mm
    middle = np.argmin(np.where(near, np.abs(a - b), np.inf))
    return gap, world[middle]


def window_plane(alignment: SpineAlignment, upper: VertebraLayout) -> tuple:
    """Frame and (y, z) ranges of the plane region holding the interlaminar window below ``upper``."""
    lower_name = VERTEBRA_NAMES[VERTEBRA_NAMES.index(upper.name) + 1]
    disc = alignment.discs[f"{upper.name}-{lower_name}"]
    y0 = upper.depth / 2.0
    return disc.frame, (y0, y0 + upper.geometry.dims.canal_ap_mm + 30.0), (-35.0, 35.0)


def _fit_window(alignment: SpineAlignment, upper: VertebraLayout, lower: VertebraLayout, target_mm: float) -> None:
    """Set the upper lamina's lower edge so the paramedian interlaminar gap is ``target_mm`` (bisection)."""
    frame, y_range, z_range = window_plane(alignment, upper)
    below = SmoothUnion([lamina_part(lower, "left"), pars_part(lower, "left")], BONE_BLEND_MM)

    def gap(bottom_z: float) -> float:
        upper.lamina_bottom_z = bottom_z
        place_spinous_process(upper)
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


def _sacralize(l5: VertebraLayout, s1: VertebraLayout) -> None:
    """Sacralised L5: broad "butterfly" transverse processes that reach down onto the sacral alae."""
    for side, s in SIDE_SIGN.items():
        ala_top = s1.world((s * (s1.width / 2.0 + 12.0), 0.1 * s1.depth, s1.height * 0.25))
        l5.tp_tip[side] = l5.frame.rotation.T @ (ala_top - l5.frame.origin)
    l5.tp_height *= 1.7


def build_skeleton(alignment: SpineAlignment, params: SpineParameters) -> Skeleton:
    layouts = {name: layout_vertebra(alignment.vertebrae[name]) for name in VERTEBRA_NAMES}
    lumbarized = params.transitional == "lumbarized_S1"
    sacral_layout_adjustments(layouts["S1"], lumbarized)
    if lumbarized:  # a free S1 arch gets a lumbar-like spinous process [ED]
        layouts["S1"].geometry = replace(layouts["S1"].geometry, dims=replace(
            layouts["S1"].geometry.dims, spinous_process_height_mm=14.0, spinous_process_length_mm=22.0))
    for name in INTERSPACE_NAMES:
        upper, lower = name.split("-")
        _fit_window(alignment, layouts[upper], layouts[lower], alignment.discs[name].reference.interlaminar_mm
                    * params.skeleton_scale)
        place_spinous_process(layouts[upper])
    if params.transitional == "sacralized_L5":
        _sacralize(layouts["L5"], layouts["S1"])
    joints = {}
    for name in INTERSPACE_NAMES:
        lower = name.split("-")[1]
        for side in SIDE_SIGN:
            joints[(name, side)] = facet_joint(alignment.discs[name], layouts[lower], side, params.facet_tropism_deg,
                                               params.spacing_mm)
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
    return Skeleton(alignment, layouts, joints, parts)
