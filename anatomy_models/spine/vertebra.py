"""A lumbar vertebra (and T12) built from implicit parts in its own frame.

The frame has its origin at the body centre, u toward the patient's left, v posterior, w superior
(see :mod:`anatomy_models.spine.alignment`). :func:`layout_vertebra` places the construction points
(pedicle isthmus, pedicle-lamina junction, lamina lines, spinous and transverse process axes) from
the reference dimensions; :func:`vertebra_parts` turns them into signed-distance parts. The
articular processes belong to the facet joints (:mod:`anatomy_models.spine.facets`) because their
shape is set by the joint they form with the neighbour.

Numbers without a source tag in clinical.md are engineering defaults ``[ED]`` chosen to match
textbook lumbar anatomy (pedicles in the upper half of the body, laminae 5-7 mm thick, spinous
processes angled slightly caudally, transverse processes at the level of the pedicle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from anatomy_models.spine.alignment import VertebraGeometry
from anatomy_models.spine.sdf import (Frame, Primitive, Shape, ellipse_estimate, ellipsoid, elliptic_rod, f32,
                                      smooth_max, tapered_box)

SIDE_SIGN = {"left": 1.0, "right": -1.0}  # patient's left is +x (LPS)

# [ED] shape constants (mm and degrees), see the module docstring.
PEDICLE_ISTHMUS_BEHIND_WALL_MM = 4.0      # isthmus centre behind the posterior body wall
PEDICLE_TO_JUNCTION_MM = 8.0              # isthmus to the pedicle-lamina junction along the axis
CANAL_REFERENCE_BEHIND_WALL_MM = 3.0      # where the interpedicular distance is set (and measured)
LAMINA_THICKNESS_MM = {"L5": 7.0}         # others 6.0 (mean over the plate)
# The laminae are plates sloping down and back like roof tiles: the lower edge of one overlaps the
# upper edge of the next from behind, with the ligamentum flavum between (the saw-tooth of the
# posterior canal wall, §4.7 [S91]) [ED, textbook mid-sagittal CT].
LAMINA_INCLINATION_DEG = 25.0             # ventral surface leans back going down
LAMINAR_APEX_FILLET_MM = 1.0             # see layout_vertebra
LAMINA_TAPER = 0.3                        # thinner laterally (pars), thicker at the spinous process: +-30%
# Lumbar spinous processes point almost straight back; the lordosis alone fans them (T12 droops) [ED].
SPINOUS_PROCESS_DROOP_DEG = {"T12": 18.0, "L1": 8.0, "L2": 5.0, "L3": 3.0, "L4": 0.0, "L5": 0.0}
# The real shapes' spinous processes are turned up about their root by this much from their template's
# (degrees): the upper lumbar processes are the most horizontal, the inclination grows caudally (Abbas et
# al., BioMed Res Int 2020, CT of 180 controls), but L1 takes the mean L2's shape; and the standing
# lordosis the column is built with (alignment, 55 deg) tilts L1-L2 22-28 deg against a squared AP at L4,
# where a prone patient's (recumbent) lordosis is ~13 deg less (T12-S1 36.8 against 49.8 deg standing,
# 627 volunteers, Asian Spine J 2019, PMC6680033), so their processes' tips hung into the interspinous
# space below on the AP [ED: the least turn that shows the gap]. The layout's spinous axis (its label)
# turns with them.
SPINOUS_PROCESS_UPTURN_DEG = {"L1": 16.0, "L2": 10.0, "L3": 4.0}
SPINOUS_PROCESS_THICKNESS_MM = 7.0        # §4.7 [ED] 6-8 mm
SPINOUS_PROCESS_ROOT_MM = 5.0             # how far the process reaches into the laminae's apex
SPINOUS_PROCESS_ROOT_FLARE_MM = 1.0       # half-thickness the root has beyond the blade's, mm
TRANSVERSE_PROCESS_HEIGHT_MM = {"T12": 7.0, "L1": 8.0, "L2": 9.0, "L3": 10.0, "L4": 10.0, "L5": 13.0}
TRANSVERSE_PROCESS_BACKWARD_DEG = 10.0    # TPs point slightly posterior (§4.7 [S87])
# L4's and L5's processes rise a little going out (on 500 AP films the L1-L3 processes ran horizontal, L4's and
# L5's "a little oblique upward": Suck et al., J Korean Neurosurg Soc 1975;4:227).
TRANSVERSE_PROCESS_UPWARD_DEG = {"L4": 8.0, "L5": 15.0}
# The transverse processes are flat bars that narrow (cranio-caudally) toward a blunt tip: in CT of 200 lumbar
# processes (Li et al. 2003, clinical.md §4.7 [S87]) the width at the root and half-way out do not differ (but at
# L5), the lateral width is smaller, and L5's is the widest and twice as thick; the mean shape of 87 CTs
# (shapes/README.md) ends blunt: 0.5 and 2 mm from the tip it keeps 0.38-0.50 and 0.65-0.77 of its height 10 mm
# in (L3-L5). So the tip keeps 0.85 of the root's height, L5's 0.9 [ED: the least taper that is not a
# parallel-sided bar; 0.6 with a rounded cap, generator 52-56, read as "blades that taper to needle points"]. L3's,
# the longest and in the mean shape a bar of even height (12 mm on the template), keeps 0.75 [ED: 0.85 left it
# 0.81 of its root's height over its last 4 mm on the built-in patient, a "stencilled paddle" as long-looking as
# L4's; 0.75 on L4 fails test_the_transverse_process_ends_blunt_as_the_mean_shape_does, 0.36 of its height 0.5 mm
# from its end against the 0.38 asked]. L4's (0.77 over its last 4 mm) and L5's mean shapes (a cone from its broad
# root, 14.5 to 7 mm high on the built-in patient) taper already.
TRANSVERSE_PROCESS_TIP_HEIGHT_FRACTION = {"T12": 0.85, "L1": 0.85, "L2": 0.85, "L3": 0.75, "L4": 0.85, "L5": 0.9}
# The body's waist: its anterior and lateral walls curve in between the rims (the ring apophyses),
# by this fraction at mid-height; the rims (the outer fifth of the height at each end) keep the
# endplate's size, and the posterior wall stays straight [ED, textbook lateral radiograph].
BODY_WAIST = 0.07
BODY_RIM_FRACTION = 0.25
BODY_EDGE_ROUNDING_MM = 2.5               # the rounded rim of the endplate (ring apophysis)
BODY_BACK_CONCAVITY_MM = 1.5              # the posterior wall is flat to slightly concave (bean-shaped section)
OSTEOPHYTE_MM_PER_GRADE = 1.5             # endplate rim lipping per degeneration grade
ACCESSORY_RADII_MM = (2.5, 2.5, 3.0)      # accessory process at the back of the TP root


@dataclass
class VertebraLayout:
    """Construction points of one vertebra, in its local frame (mm)."""

    geometry: VertebraGeometry
    width: float
    depth: float
    height: float
    pedicle_z: float
    pedicle_center: dict[str, np.ndarray] = field(default_factory=dict)
    pedicle_axis: dict[str, np.ndarray] = field(default_factory=dict)      # unit, toward the junction
    junction: dict[str, np.ndarray] = field(default_factory=dict)          # pedicle-lamina-SAP-TP hub
    lamina_lateral: dict[str, np.ndarray] = field(default_factory=dict)    # ventral line, lateral end, at pedicle_z
    lamina_medial: np.ndarray = field(default_factory=lambda: np.zeros(3))  # ventral line, midline, at pedicle_z
    lamina_top_z: float = 0.0
    lamina_bottom_z: float = 0.0
    lamina_thickness: float = 6.0
    tp_root: dict[str, np.ndarray] = field(default_factory=dict)
    tp_tip: dict[str, np.ndarray] = field(default_factory=dict)
    sp_base: np.ndarray = field(default_factory=lambda: np.zeros(3))
    sp_tip: np.ndarray = field(default_factory=lambda: np.zeros(3))
    tp_height: float = 10.0
    # Where each side's pars ends below (local z, mm): the top of the facet joint below, where the inferior
    # articular process begins (set once the joints are placed; see pars_part).
    pars_bottom_z: dict[str, float] = field(default_factory=dict)
    # Where the spinous process's tip landmark is sought from ``sp_base`` (local): the real outline's back end
    # (set by skeleton.find_spinous_process_tip); None: along the axis to ``sp_tip``.
    spinous_tip_aim: np.ndarray | None = None

    @property
    def name(self) -> str:
        return self.geometry.name

    @property
    def frame(self) -> Frame:
        return self.geometry.frame

    def world(self, local) -> np.ndarray:
        return self.frame.point(local)

    @property
    def lamina_lean(self) -> np.ndarray:
        """Unit vector along the lamina's ventral surface, upward (leaning forward)."""
        b = math.radians(LAMINA_INCLINATION_DEG)
        return np.array([0.0, -math.sin(b), math.cos(b)])

    def lamina_ventral_point(self, side_fraction: float, z: float, side: str = "left") -> np.ndarray:
        """Local point on the lamina's ventral surface: ``side_fraction`` 0 at the midline, 1 laterally."""
        lateral = self.lamina_lateral[side]
        at_pedicle = self.lamina_medial + (lateral - self.lamina_medial) * side_fraction
        lean = self.lamina_lean
        return at_pedicle + lean * (z - self.pedicle_z) / lean[2]

    def lamina_normal(self, side: str) -> np.ndarray:
        """Unit normal of the lamina's ventral surface pointing into the lamina (posterior)."""
        along = self.lamina_lateral[side] - self.lamina_medial
        normal = np.cross(along, self.lamina_lean)
        normal /= np.linalg.norm(normal)
        return normal if normal[1] > 0 else -normal


def layout_vertebra(geometry: VertebraGeometry) -> VertebraLayout:
    """The construction points of a lumbar-type vertebra (T12-L5); the lamina's bottom is set later."""
    d = geometry.dims
    width, depth, height = d.body_width_mm, d.body_depth_mm, d.body_height_mm
    half_wedge = math.tan(math.radians(d.body_wedge_deg) / 2.0)
    # The pedicle's top sits 1.5 mm under the superior endplate at the posterior wall [ED].
    top_posterior = height / 2.0 - (depth / 2.0) * half_wedge
    pedicle_z = top_posterior - 1.5 - d.pedicle_height_mm / 2.0
    layout = VertebraLayout(geometry, width, depth, height, pedicle_z,
                            lamina_thickness=LAMINA_THICKNESS_MM.get(geometry.name, 6.0) * geometry.scale)
    alpha = math.radians(d.pedicle_medial_angle_deg)
    isthmus_y = depth / 2.0 + PEDICLE_ISTHMUS_BEHIND_WALL_MM
    reference_y = depth / 2.0 + CANAL_REFERENCE_BEHIND_WALL_MM
    for side, s in SIDE_SIGN.items():
        half_width = geometry.pedicle_width_mm(side) / 2.0
        axis = np.array([s * math.sin(alpha), math.cos(alpha), 0.0])
        # The medial wall passes x = canal/2 at the reference depth: solve for the isthmus centre x.
        along = (reference_y - isthmus_y - half_width * math.sin(alpha)) / math.cos(alpha)
        center_x = d.canal_transverse_mm / 2.0 - along * math.sin(alpha) + half_width * math.cos(alpha)
        center = np.array([s * center_x, isthmus_y, pedicle_z])
        junction = center + axis * PEDICLE_TO_JUNCTION_MM * geometry.scale
        layout.pedicle_center[side] = center
        layout.pedicle_axis[side] = axis
        layout.junction[side] = junction
        # Lamina ventral line: from the pedicle's medial wall, half-way back, to the midline apex.
        lateral_y = depth / 2.0 + 0.55 * d.canal_ap_mm
        lateral_x = d.canal_transverse_mm / 2.0 + (lateral_y - reference_y) * math.tan(alpha)
        layout.lamina_lateral[side] = np.array([s * lateral_x, lateral_y, pedicle_z])
        # Transverse process: from the lateral pedicle surface at the junction, outward, a little back.
        outward = np.array([s * math.cos(alpha), -math.sin(alpha), 0.0])
        root = junction + outward * half_width + np.array([0.0, 1.5, -1.0])
        back = math.radians(TRANSVERSE_PROCESS_BACKWARD_DEG)
        upward = math.radians(TRANSVERSE_PROCESS_UPWARD_DEG.get(geometry.name, 0.0))
        direction = np.array([s * math.cos(back), math.sin(back), math.tan(upward)])
        direction /= np.linalg.norm(direction)
        layout.tp_root[side] = root
        layout.tp_tip[side] = root + direction * geometry.transverse_process_length_mm(side)
    layout.tp_height = TRANSVERSE_PROCESS_HEIGHT_MM.get(geometry.name, 10.0) * geometry.scale
    # The blend that joins the two laminae and the spinous process fills the apex of the canal by
    # about a millimetre: the plates' ventral line sits that much further back.
    layout.lamina_medial = np.array([0.0, depth / 2.0 + d.canal_ap_mm + LAMINAR_APEX_FILLET_MM, pedicle_z])
    layout.lamina_top_z = pedicle_z + d.pedicle_height_mm / 2.0
    layout.lamina_bottom_z = pedicle_z - 22.0 * geometry.scale  # refined by the interlaminar window
    place_spinous_process(layout)
    return layout


def place_spinous_process(layout: VertebraLayout) -> None:
    """Spinous process axis from the lamina junction at mid-lamina height, angled caudally."""
    d = layout.geometry.dims
    z_mid = 0.5 * (layout.lamina_top_z + layout.lamina_bottom_z)
    base = layout.lamina_ventral_point(0.0, z_mid) + np.array([0.0, layout.lamina_thickness, 0.0])
    droop_deg = SPINOUS_PROCESS_DROOP_DEG.get(layout.name, 10.0) - SPINOUS_PROCESS_UPTURN_DEG.get(layout.name, 0.0)
    droop = math.radians(droop_deg)
    direction = np.array([0.0, math.cos(droop), -math.sin(droop)])
    layout.sp_base = base
    layout.sp_tip = base + direction * (d.spinous_process_length_mm - layout.lamina_thickness)


# ----------------------------------------------------------------------------------- the body
def body_sdf(width: float, depth: float, height: float, wedge_deg: float, concavity_top: float,
             concavity_bottom: float, osteophyte_mm: float = 0.0, waist: float = BODY_WAIST):
    """Local sdf of a vertebral body: kidney-shaped section, waisted, wedged, concave endplates.

    Also the shape of a disc (no waist, flat "endplates" that reach into the bodies).
    """
    # The section: an ellipse as wide as the body, its front at the anterior margin (-depth/2), cut
    # by the posterior wall at +depth/2 where the ellipse is still three quarters as wide: a bean
    # with rounded postero-lateral corners and a flat-to-concave back.
    half_w, y_centre = f32(width / 2.0), f32(0.1 * depth)
    semi_y = f32(0.6 * depth)
    posterior = f32(depth / 2.0)
    concave_back = f32(BODY_BACK_CONCAVITY_MM)
    tan_half = f32(math.tan(math.radians(wedge_deg) / 2.0))
    half_h = f32(height / 2.0)
    rounding = f32(BODY_EDGE_ROUNDING_MM)
    top, bottom = f32(concavity_top), f32(concavity_bottom)
    lip = f32(osteophyte_mm)

    rim = f32(1.0 - BODY_RIM_FRACTION)

    def sdf(u, v, w):
        # Waist: the anterior and lateral walls curve in between the rims, which flare into lips
        # (osteophytes) with degeneration. The section shrinks toward the posterior wall, which stays put.
        t = np.clip(w / half_h, -1, 1)
        inner = np.clip(1.0 - (t / rim) ** 2, 0, 1)
        scale = 1.0 - f32(waist) * inner * inner + lip * t ** 8 / half_w
        su, sv = u / scale, posterior - (posterior - v) / scale
        k0 = np.sqrt((su / half_w) ** 2 + ((sv - y_centre) / semi_y) ** 2)
        k1 = np.sqrt((su / (half_w * half_w)) ** 2 + ((sv - y_centre) / (semi_y * semi_y)) ** 2)
        section = ellipse_estimate(k0, k1, min(half_w, semi_y))
        back = sv - (posterior + concave_back * np.minimum((su / (0.75 * half_w)) ** 2, 1.0))
        section = smooth_max(section, back, 4.0) * scale
        bump = np.maximum(1.0 - (u / (0.38 * width)) ** 2 - ((v - 0.05 * depth) / (0.38 * depth)) ** 2, 0)
        z_top = half_h - v * tan_half - top * bump
        z_bottom = -half_h + v * tan_half + bottom * bump
        vertical = np.maximum(w - z_top, z_bottom - w)
        qa, qb = section + rounding, vertical + rounding
        outside = np.sqrt(np.maximum(qa, 0) ** 2 + np.maximum(qb, 0) ** 2)
        return outside + np.minimum(np.maximum(qa, qb), 0) - rounding
    return sdf


def placed_in_vertebra(layout: VertebraLayout, center_local, u_local, v_local, local_sdf, extent) -> Primitive:
    """A primitive whose frame is given in the vertebra's local coordinates."""
    f = layout.frame
    frame = Frame.from_axes(f.point(center_local), f.vector(u_local), f.vector(v_local))
    return Primitive(frame, local_sdf, extent)


def rod_in_vertebra(layout: VertebraLayout, start, end, radius_a: float, radius_b: float, up=(0.0, 0.0, 1.0)) -> Primitive:
    """An elliptic rod from ``start`` to ``end`` (local points), semi-axes ``radius_a`` across, ``radius_b`` up."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    axis = end - start
    length = float(np.linalg.norm(axis))
    across = np.cross(np.asarray(up, float), axis)
    return placed_in_vertebra(layout, (start + end) / 2.0, axis, across, elliptic_rod(radius_a, radius_b, length / 2.0),
                   (length / 2.0, radius_a, radius_b))


def body_part(layout: VertebraLayout, concavity_top: float, concavity_bottom: float, osteophyte_mm: float) -> Primitive:
    d = layout.geometry.dims
    sdf = body_sdf(layout.width, layout.depth, layout.height, d.body_wedge_deg, concavity_top, concavity_bottom,
                   osteophyte_mm)
    extent = (layout.width / 2 + osteophyte_mm + 2, 0.7 * layout.depth + osteophyte_mm + 2, layout.height / 2 + 3)
    return placed_in_vertebra(layout, (0.0, 0.0, 0.0), (1, 0, 0), (0, 1, 0), sdf, extent)


def pedicle_part(layout: VertebraLayout, side: str) -> Primitive:
    d = layout.geometry.dims
    center, axis = layout.pedicle_center[side], layout.pedicle_axis[side]
    start = center - axis * 11.0  # buried in the body
    end = layout.junction[side] + axis * 1.0
    return rod_in_vertebra(layout, start, end, layout.geometry.pedicle_width_mm(side) / 2.0, d.pedicle_height_mm / 2.0)


def lamina_part(layout: VertebraLayout, side: str) -> Shape:
    """Lamina plate behind its ventral line, from the top edge to the bottom edge, past the midline;
    thinner at the pars, thicker where it meets the spinous process."""
    lateral, medial = layout.lamina_lateral[side], layout.lamina_medial
    along = medial - lateral
    length = float(np.linalg.norm(along))
    along /= length
    lean = layout.lamina_lean
    normal = layout.lamina_normal(side)
    z_mid = 0.5 * (layout.lamina_top_z + layout.lamina_bottom_z)
    half_height = 0.5 * (layout.lamina_top_z - layout.lamina_bottom_z) / lean[2]
    extra = 2.5  # past the midline, so the two laminae meet in a solid apex
    thickness = layout.lamina_thickness
    center = (lateral + medial) / 2.0 + along * extra / 2.0 + lean * (z_mid - layout.pedicle_z) / lean[2] \
        + normal * thickness / 2.0
    half_length = length / 2.0 + extra / 2.0 + 1.0
    # The taper keeps the ventral face flat: the plate's centre moves back as it thickens.
    lateral_half, medial_half = thickness / 2.0 * (1.0 - LAMINA_TAPER), thickness / 2.0 * (1.0 + LAMINA_TAPER)
    plate = tapered_box(half_length, (half_height, lateral_half), (half_height, medial_half), lateral_half - 0.3)
    # The frame's third axis is along x lean: +1 if it points back (as the normal), else -1.
    back = np.float32(np.sign(np.cross(along, lean) @ normal))
    shift = np.float32(thickness / 2.0)

    def sdf(u, v, w):
        t = np.clip((u + np.float32(half_length)) / np.float32(2.0 * half_length), 0, 1)
        half = np.float32(lateral_half) + np.float32(medial_half - lateral_half) * t
        return plate(u, v, w - back * (half - shift))
    return placed_in_vertebra(layout, center, along, lean, sdf, (half_length, half_height, medial_half * 2.0))


def pars_part(layout: VertebraLayout, side: str) -> Primitive:
    """The pars interarticularis (the Scotty dog's neck): the bone between the superior and inferior
    articular processes, a flattened bar from the pedicle-lamina junction under the pedicle's lower
    border down and in to the lamina's lateral edge where the IAP begins (clinical.md §1 [S30]: the
    neck lies between the eye and the front leg, below the eye). Until the joint below is placed
    (:attr:`VertebraLayout.pars_bottom_z`), and on S1, whose arch has no joint below, the bar runs from the
    junction at the pedicle's mid-height to 4 mm above the lamina's lower edge."""
    normal = layout.lamina_normal(side)
    bottom = layout.pars_bottom_z.get(side)
    if bottom is None:
        top, bottom = layout.junction[side] + np.array([0.0, 1.0, 0.0]), layout.lamina_bottom_z + 4.0
    else:
        top = layout.junction[side] + np.array([0.0, 1.0, -layout.geometry.dims.pedicle_height_mm / 2.0])
    corner = layout.lamina_ventral_point(0.9, bottom, side) + normal * layout.lamina_thickness / 2
    return rod_in_vertebra(layout, top, corner, 4.0, 5.5, up=normal)


def transverse_process_part(layout: VertebraLayout, side: str) -> list[Shape]:
    """A flattened process tapering from a stout root to the tip, with the accessory process on the
    back of its root (the medial branch passes between it and the mamillary process of the SAP)."""
    d = layout.geometry.dims
    root, tip = layout.tp_root[side], layout.tp_tip[side]
    axis = tip - root
    length = float(np.linalg.norm(axis))
    axis /= length
    start = root - axis * 2.0  # the blend fills the junction; deeper would hide the pedicle's isthmus
    height = layout.tp_height
    thickness = d.transverse_process_thickness_mm
    half_length = (length + 2.0) / 2.0
    root_half = (height * 0.75, thickness / 2.0 + 1.5)
    tip_half = (height * 0.42, thickness / 2.0)
    rounding = min(tip_half) * 0.9
    up = np.array([0.0, 0.0, 1.0])
    process = placed_in_vertebra(layout, (start + tip) / 2.0, axis, up, tapered_box(half_length, root_half, tip_half, rounding),
                      (half_length, root_half[0], root_half[1]))
    accessory_at = root + axis * 2.0 + np.array([0.0, thickness / 2.0 + 1.0, -height * 0.25])
    radii = ACCESSORY_RADII_MM
    accessory = placed_in_vertebra(layout, accessory_at, (1, 0, 0), (0, 1, 0), ellipsoid(radii), radii)
    return [process, accessory]


def spinous_process_part(layout: VertebraLayout) -> list[Shape]:
    """Hatchet-shaped: lower and thinner where it leaves the laminae, taller and thicker at the tip,
    which ends in a thickened tubercle."""
    d = layout.geometry.dims
    base, tip = layout.sp_base, layout.sp_tip
    axis = (tip - base) / np.linalg.norm(tip - base)
    start = base - axis * SPINOUS_PROCESS_ROOT_MM  # into the laminar apex, not in front of it
    length = float(np.linalg.norm(tip - start))
    across = np.array([1.0, 0.0, 0.0])
    thickness = SPINOUS_PROCESS_THICKNESS_MM * layout.geometry.scale
    height = d.spinous_process_height_mm
    # Where it leaves the laminae the process flares into their junction (the real shapes' midline bone
    # behind the canal's roof, which a CT labels process, not lamina) [ED].
    base_half = (thickness / 2.0 + SPINOUS_PROCESS_ROOT_FLARE_MM, height * 0.36)
    tip_half = (thickness / 2.0, height / 2.0)
    blade = placed_in_vertebra(layout, (start + tip) / 2.0, axis, across,
                    tapered_box(length / 2.0, base_half, tip_half, thickness / 2.0 - 0.8),
                    (length / 2.0, tip_half[0], tip_half[1]))
    radii = (4.0, thickness / 2.0 + 1.0, height * 0.36)
    tubercle_at = tip - axis * 3.5 + np.cross(axis, across) * (-height * 0.12)
    tubercle = placed_in_vertebra(layout, tubercle_at, axis, across, ellipsoid(radii), radii)
    return [blade, tubercle]


def vertebra_parts(layout: VertebraLayout, concavity_top: float, concavity_bottom: float,
                   osteophyte_mm: float = 0.0) -> list[tuple[str, Shape]]:
    """Labelled parts named by the structure vocabulary (without articular processes), world shapes."""
    name = layout.name
    parts: list[tuple[str, Shape]] = [(f"{name}.body", body_part(layout, concavity_top, concavity_bottom, osteophyte_mm))]
    parts += [(f"{name}.spinous_process", shape) for shape in spinous_process_part(layout)]
    for side in SIDE_SIGN:
        parts.append((f"{name}.pedicle.{side}", pedicle_part(layout, side)))
        parts.append((f"{name}.lamina.{side}", lamina_part(layout, side)))
        parts.append((f"{name}.lamina.{side}", pars_part(layout, side)))
        parts += [(f"{name}.transverse_process.{side}", shape) for shape in transverse_process_part(layout, side)]
    return parts
