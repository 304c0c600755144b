"""Dural sac, spinal cord and conus, cauda equina, exiting nerve roots and dorsal root ganglia.

The sac is a tube along the canal (clinical.md §4.3 ellipse 18 x 12 mm at L2-L4, 1 mm ventral of the
canal's middle so the posterior epidural fat lies behind it) that narrows over L5-S1 and ends at S2
[S74]. The cord ends in a cone at the conus tip (default the lower third of L1, §3 [S50]). Below it
the roots of L1-S4 run inside the sac (cauda equina) to their exits; each exiting root leaves the
sac above its pedicle, runs down along the pedicle's medial wall, turns out under it with its
ganglion in the upper foramen, then runs down and out in front of the transverse process (§2.2).
Root thickness grows from 3.9 mm at L1 to 5.45 mm at S1 (§4.3 [S75]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from anatomy_models.spine.alignment import VERTEBRA_NAMES, SpineAlignment
from anatomy_models.spine.parameters import SpineParameters
from anatomy_models.spine.sacrum import (LUMBARIZED_GAP_MM, canal_stations, dorsal_foramen_center, foramina,
                                         sacral_root_path)
from anatomy_models.spine.sdf import Frame, Primitive, Shape, VerticalTube, ellipsoid, tapered_capsule
from anatomy_models.spine.vertebra import SIDE_SIGN, VertebraLayout

# Dural sac semi-axes (transverse, AP), mm, per level; it ends at S2 [S74]. 18 x 12 mm at L2-L4: the sac
# fills the canal's width but for the roots' lateral recesses, 3-4 mm each side of a 24-25 mm interpedicular
# distance (§4.3 [ED] L4 canal 25 mm, [S70]); area 170 mm^2, inside the 151.7 +- 53.6 mm^2 of §4.3 [S72]. A
# 16 mm sac, scaled and narrowed with the patient, was 14 mm at L4, a thin myelographic column between the
# pedicles. AP 12 mm (§4.3 [ED]); the sac narrows over L5-S1 into the sacral canal.
SAC_SEMI_AXES_MM = {"T12": (8.0, 6.0), "L1": (8.5, 6.0), "L2": (9.0, 6.0), "L3": (9.0, 6.0), "L4": (9.0, 6.0),
                    "L5": (8.5, 5.5), "S1": (6.5, 4.5)}
SAC_END_BELOW_S1_MM = 22.0       # S1 body centre to the sac's tip (S2 level), along the sacrum [ED]
# (SpineParameters.dural_sac_end_mm sets it per patient; a low-lying sac follows the sacral canal down.)
ANTERIOR_EPIDURAL_MM = 1.0       # sac to the posterior body wall [ED]
DURA_THICKNESS_MM = 0.6          # real dura 0.3-0.5 mm; at least one voxel is used on coarse grids
CORD_SEMI_AXES_MM = (4.5, 3.5)   # lumbar enlargement ~9 x 7 mm [ED]
CONUS_TAPER_MM = 18.0
CAUDA_ROOT_RADIUS_MM = 1.1       # an intrathecal root bundle [ED]
# A root's place across the sac (fraction of the semi-axis), sacral .. L1: two bundles either side
# of the filum terminale, which alone runs in the midline [ED, textbook axial MRI].
CAUDA_SLOT_LATERAL = (0.3, 0.55)
CAUDA_SLOT_VENTRAL = (0.5, 0.3, 0.6, 0.4)  # and in front of its centre, alternating [ED]
CAUDA_TURN_OUT_MM = 8.0           # a root turns out to its sleeve over this height above the exit [ED]
# Exiting root diameter (mm) per level, §4.3 [S75] (L1 3.9 -> S1 5.45, interpolated; T12 [ED]).
ROOT_DIAMETER_MM = {"T12": 3.6, "L1": 3.9, "L2": 4.2, "L3": 4.5, "L4": 4.9, "L5": 5.2, "S1": 5.45}
GANGLION_LENGTH_MM = 9.0         # dorsal root ganglion ~5 x 9 mm [ED]
SACRAL_ROOTS = ("S2", "S3", "S4")
# The sacral roots leave the sac's end and run down the canal to their foramina (the ventral rami),
# diameter mm [ED]: thinner going down.
SACRAL_ROOT_DIAMETER_MM = {"S2": 4.0, "S3": 3.0, "S4": 2.2}


@dataclass
class NeuralStructures:
    """The shapes of the neural structures and the construction points landmarks need."""

    sac: VerticalTube
    dura_thickness_mm: float
    cord: VerticalTube
    conus_tip: np.ndarray
    cauda: list[Shape] = field(default_factory=list)
    roots: dict[str, list[Shape]] = field(default_factory=dict)
    ganglia: dict[str, Shape] = field(default_factory=dict)
    root_paths: dict[str, list[np.ndarray]] = field(default_factory=dict)   # world points E0..E4
    sac_semi_axes: dict[str, tuple[float, float]] = field(default_factory=dict)
    sac_center_local_y: dict[str, float] = field(default_factory=dict)


def tilt_deg(frame: Frame) -> float:
    """How far a frame's superior axis leans from world +z, degrees (for horizontal sections)."""
    return math.degrees(math.acos(float(np.clip(frame.rotation[2, 2], -1.0, 1.0))))


def sac_layout(layouts: dict[str, VertebraLayout], params: SpineParameters) -> tuple[dict, dict]:
    """Sac semi-axes and centre depth (local y) per level, narrowed by degeneration (stenosis)."""
    narrowing = 1.0 - 0.08 * params.degeneration
    axes, centre_y = {}, {}
    for name, layout in layouts.items():
        ax, ay = SAC_SEMI_AXES_MM[name]
        canal_ap = layout.geometry.dims.canal_ap_mm
        ay = min(ay * narrowing, (canal_ap - 2.5) / 2.0)
        axes[name] = (ax * narrowing * layout.geometry.scale, ay)
        centre_y[name] = layout.depth / 2.0 + ANTERIOR_EPIDURAL_MM + ay
    return axes, centre_y


def _tube_nodes(layouts: dict[str, VertebraLayout], axes: dict, centre_y: dict, top_z: float,
                end_mm: float = SAC_END_BELOW_S1_MM, gap_mm: float = 0.0):
    """(z, cx, cy, ax, ay) nodes of the sac: three per vertebra, stretched for the frame's tilt, ending
    ``end_mm`` below the S1 body's centre. A sac ending below :data:`SAC_END_BELOW_S1_MM` follows the sacral
    canal's curve down to its end (nodes at the canal's stations, narrowing to the tip)."""
    nodes = []
    for name in VERTEBRA_NAMES:
        layout = layouts[name]
        stretch = 1.0 / math.cos(math.radians(tilt_deg(layout.frame)))
        ax, ay = axes[name]
        for z in (layout.height / 2.0 + 3.0, 0.0, -layout.height / 2.0 - 3.0):
            if name == "S1" and z < 0:
                continue
            p = layout.world((0.0, centre_y[name], z))
            nodes.append((p[2], p[0], p[1], ax, ay * stretch))
    s1 = layouts["S1"]
    scale = s1.geometry.scale
    if end_mm <= SAC_END_BELOW_S1_MM:
        tip = s1.world((0.0, centre_y["S1"] + 3.0, -end_mm * scale))
        nodes.append((tip[2], tip[0], tip[1], 0.5, 0.5))
    else:
        # Down the canal's centre line (S1-local stations) to the depth ``end_mm``, narrowing linearly.
        stations = [centre for centre, _, _ in canal_stations(s1, gap_mm)]
        top = np.array([0.0, centre_y["S1"] + 3.0, 0.0])
        line = [top] + [c for c in stations if -end_mm * scale < c[2] < -SAC_END_BELOW_S1_MM * scale]
        below = next((c for c in stations if c[2] <= -end_mm * scale), stations[-1])
        above = line[-1]
        t = (above[2] + end_mm * scale) / max(above[2] - below[2], 1e-6)
        line.append(above + t * (below - above))
        ax0, ay0 = axes["S1"]
        heights = np.array([-p[2] for p in line])
        for p, h in zip(line[1:], heights[1:]):
            fraction = 1.0 - h / heights[-1]
            w = s1.world(p)
            nodes.append((w[2], w[0], w[1], max(0.5, ax0 * fraction + 0.5), max(0.5, ay0 * fraction + 0.5)))
    top = max(nodes, key=lambda n: n[0])
    nodes.append((top_z, top[1], top[2], top[3], top[4]))
    return np.array(sorted(nodes))


def conus_tip_point(alignment: SpineAlignment, layouts: dict[str, VertebraLayout], centre_y: dict,
                    params: SpineParameters) -> np.ndarray:
    layout = layouts[params.conus_level]
    if params.conus_position <= 1.0:
        z = layout.height / 2.0 - params.conus_position * layout.height
    else:
        below = VERTEBRA_NAMES[VERTEBRA_NAMES.index(params.conus_level) + 1]
        disc = alignment.discs[f"{params.conus_level}-{below}"]
        z = -layout.height / 2.0 - (params.conus_position - 1.0) * disc.mean_mm
    return layout.world((0.0, centre_y[params.conus_level] - 0.5, z))


def capsule_chain(points: list[np.ndarray], radii: list[float]) -> list[Shape]:
    shapes = []
    for a, b, ra, rb in zip(points[:-1], points[1:], radii[:-1], radii[1:]):
        centre = (a + b) / 2.0
        half = np.abs(b - a) / 2.0 + max(ra, rb)
        frame = Frame.at(centre)
        shapes.append(Primitive(frame, tapered_capsule(a - centre, b - centre, ra, rb), half))
    return shapes


def exiting_root_path(layout: VertebraLayout, side: str, sac_ax: float, sac_y: float) -> list[np.ndarray]:
    """World points of an exiting root: sac exit, under the pedicle, ganglion, out of the foramen, ventral ramus."""
    s = SIDE_SIGN[side]
    d = layout.geometry.dims
    half_depth = layout.depth / 2.0
    top = layout.pedicle_z + d.pedicle_height_mm / 2.0
    bottom = layout.pedicle_z - d.pedicle_height_mm / 2.0
    pedicle_x = abs(layout.pedicle_center[side][0])
    if layout.name == "S1":
        dorsal = dorsal_foramen_center(layout, side)
        local = [np.array([s * (sac_ax - 1.0), sac_y - 1.0, top + 1.0]),
                 np.array([s * (d.canal_transverse_mm / 2.0 - 2.0), half_depth + 3.0, bottom - 4.0]),
                 np.array([s * (d.canal_transverse_mm / 2.0 + 2.0), half_depth - 2.0, bottom - 10.0]),
                 np.array([s * (d.canal_transverse_mm / 2.0 + 5.0), -half_depth + 4.0, layout.pedicle_z - 24.0]),
                 np.array([s * (d.canal_transverse_mm / 2.0 + 8.0), -half_depth - 8.0, layout.pedicle_z - 32.0])]
        local[2] = 0.5 * (local[2] + dorsal) + np.array([0.0, -3.0, -3.0])
    else:
        local = [np.array([s * (sac_ax - 1.0), sac_y - 1.5, top + 3.0]),
                 np.array([s * (d.canal_transverse_mm / 2.0 + 1.0), half_depth + 3.0, bottom - 4.5]),
                 np.array([s * (pedicle_x + 0.25 * d.pedicle_width_mm), half_depth + 1.5, bottom - 7.5]),
                 np.array([s * (pedicle_x + d.pedicle_width_mm / 2.0 + 10.0), half_depth - 6.0, bottom - 17.0]),
                 np.array([s * (pedicle_x + d.pedicle_width_mm / 2.0 + 20.0), half_depth - 16.0, bottom - 32.0])]
    return [layout.world(p) for p in local]


def cauda_equina(sac: VerticalTube, cord: VerticalTube, conus: np.ndarray, layouts: dict[str, VertebraLayout],
                 axes: dict, centre_y: dict, radius: float, gap_mm: float = 0.0) -> list[Shape]:
    """The intrathecal roots of L1-S4, each side: from the cord's surface above the conus down
    inside the sac to the level where the root leaves it.

    Each root keeps a slot in the bundle, a fixed fraction of the sac's semi-axes from its centre, so
    it follows the sac's curve (a straight chord between distant levels would leave the sac on the
    concave, dorsal side of the lordosis): the next root to leave lies most lateral, the sacral roots
    most medial, and all of them in the ventral half of the sac, where they settle in a prone patient
    [ED, textbook MRI]. The last stretch runs out to the sleeve of its exiting root.
    """
    exiting = [name for name in VERTEBRA_NAMES if name != "T12"]
    roots = exiting + list(SACRAL_ROOTS)
    shapes: list[Shape] = []
    for side, s in SIDE_SIGN.items():
        for order, name in enumerate(roots):
            if name in layouts:
                end = exiting_root_path(layouts[name], side, axes[name][0], centre_y[name])[0]
            else:
                exit_point = next(layouts["S1"].world(f.canal) for f in foramina(layouts["S1"], side, gap_mm)
                                  if f.level == name)
                end = sacral_root_start(sac, name, side, exit_point)
            start_z = max(end[2] + 14.0, conus[2] + 4.0 + 1.2 * (len(roots) - order))
            start_z = min(start_z, sac.z[-1] - 2.0)
            start = np.array([np.interp(start_z, cord.z, cord.cx) + s * (CORD_SEMI_AXES_MM[0] - 1.0),
                              np.interp(start_z, cord.z, cord.cy) + 0.5, start_z])
            # Slot in the bundle: lateral fraction by exit order, ventral fraction alternating.
            across = CAUDA_SLOT_LATERAL[0] + (CAUDA_SLOT_LATERAL[1] - CAUDA_SLOT_LATERAL[0]) * (1.0 - order / (len(roots) - 1))
            ventral = CAUDA_SLOT_VENTRAL[order % len(CAUDA_SLOT_VENTRAL)]
            bottom_z = end[2] + CAUDA_TURN_OUT_MM
            if start_z - bottom_z < 2.0:
                shapes += capsule_chain([start, end], [radius, radius])
                continue
            z = np.concatenate([[bottom_z], sac.z[(sac.z > bottom_z) & (sac.z < start_z)], [start_z]])
            ax, ay = np.interp(z, sac.z, sac.ax), np.interp(z, sac.z, sac.ay)
            cx = np.interp(z, sac.z, sac.cx) + s * across * ax
            cy = np.interp(z, sac.z, sac.cy) - ventral * ay
            cx[-1], cy[-1] = start[0], start[1]  # it leaves the cord's surface
            shapes.append(VerticalTube(z, cx, cy, np.full(len(z), radius), np.full(len(z), radius)))
            shapes += capsule_chain([np.array([cx[0], cy[0], z[0]]), end], [radius, radius])
    return shapes


def sacral_root_start(sac: VerticalTube, name: str, side: str, exit_point: np.ndarray | None = None) -> np.ndarray:
    """Where the sacral root ``name`` (S2-S4) leaves the bundle, near the sac's end (world); in a low-lying
    sac no lower than 4 mm above the root's ``exit_point`` from the canal (its sleeve leaves at its level)."""
    depth = SACRAL_ROOTS.index(name)
    z = sac.z[0] + 6.0 + 3.0 * depth
    if exit_point is not None:
        z = max(z, min(exit_point[2] + 4.0, sac.z[-1]))
    return np.array([np.interp(z, sac.z, sac.cx) + SIDE_SIGN[side] * (1.5 + depth),
                     np.interp(z, sac.z, sac.cy) + 1.0, z])


def build_neural(alignment: SpineAlignment, layouts: dict[str, VertebraLayout], params: SpineParameters,
                 top_z: float) -> NeuralStructures:
    spacing = params.spacing_mm
    axes, centre_y = sac_layout(layouts, params)
    gap = LUMBARIZED_GAP_MM if params.transitional == "lumbarized_S1" else 0.0
    nodes = _tube_nodes(layouts, axes, centre_y, top_z, params.dural_sac_end_mm, gap)
    sac = VerticalTube(*nodes.T)
    conus = conus_tip_point(alignment, layouts, centre_y, params)
    # Cord: follows the sac centre, tapering to a point at the conus tip.
    z = nodes[:, 0]
    keep = z > conus[2] + CONUS_TAPER_MM
    cord_z = np.concatenate([[conus[2], conus[2] + CONUS_TAPER_MM], z[keep]])
    cx = np.interp(cord_z, z, nodes[:, 1])
    cy = np.interp(cord_z, z, nodes[:, 2]) - 0.5
    tip = max(0.6, 0.75 * spacing)  # the cone's tip stays at least a voxel thick on coarse grids
    ax = np.where(cord_z > conus[2] + 1e-6, CORD_SEMI_AXES_MM[0], tip)
    ay = np.where(cord_z > conus[2] + 1e-6, CORD_SEMI_AXES_MM[1], tip)
    cord = VerticalTube(cord_z, cx, cy, ax, ay)
    neural = NeuralStructures(sac, max(DURA_THICKNESS_MM, spacing), cord, np.array([cx[0], cy[0], conus[2]]),
                              sac_semi_axes=axes, sac_center_local_y=centre_y)
    # On a coarse grid a root is thinner than a voxel and shows as a broken line: fattening it would
    # fill the sac with roots.
    neural.cauda = cauda_equina(sac, cord, conus, layouts, axes, centre_y, max(CAUDA_ROOT_RADIUS_MM, 0.5 * spacing),
                                gap)
    for name in VERTEBRA_NAMES:
        layout = layouts[name]
        radius = max(ROOT_DIAMETER_MM[name] / 2.0 * layout.geometry.scale, 0.75 * spacing)
        for side in SIDE_SIGN:
            path = exiting_root_path(layout, side, axes[name][0], centre_y[name])
            neural.root_paths[f"{name}.{side}"] = path
            neural.roots[f"nerve_root.{name}.{side}"] = capsule_chain(path, [radius * 0.8, radius, radius, radius, radius])
            direction = path[3] - path[1]
            frame = Frame.from_axes(path[2], direction, np.cross(direction, [0.0, 0.0, 1.0]) + 1e-9)
            size = GANGLION_LENGTH_MM / 2.0 * layout.geometry.scale
            radii = (size, radius + 0.8, radius + 0.8)
            neural.ganglia[f"dorsal_root_ganglion.{name}.{side}"] = Primitive(frame, ellipsoid(radii), radii)
    s1 = layouts["S1"]
    for side in SIDE_SIGN:
        for foramen in foramina(s1, side, gap)[1:]:
            path = sacral_root_path(s1, foramen, sacral_root_start(sac, foramen.level, side, s1.world(foramen.canal)))
            radius = max(SACRAL_ROOT_DIAMETER_MM[foramen.level] / 2.0 * s1.geometry.scale, 0.75 * spacing)
            neural.root_paths[f"{foramen.level}.{side}"] = path
            neural.roots[f"nerve_root.{foramen.level}.{side}"] = capsule_chain(path, [radius] * len(path))
    return neural
