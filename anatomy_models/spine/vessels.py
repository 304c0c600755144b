"""Aorta, inferior vena cava, common iliac vessels and the radicular arteries of each foramen.

The aorta lies on the left front of the vertebral bodies and divides at L4 into the common iliac
arteries; the IVC lies on the right and forms at L5 from the common iliac veins [ED, textbook].
Each foramen gets a radicular artery that comes around the body's waist (the segmental artery) and
enters the foramen antero-superiorly, just under the pedicle, then follows the root to the dural sac
(clinical.md §2.2 [S2]). One of them is the dominant radiculomedullary artery (Adamkiewicz type,
§3 [S55][S56]): it continues into the sac, climbs along the cord and joins the anterior spinal
artery, which runs down the front of the cord to the conus.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from anatomy_models.spine.alignment import VERTEBRA_NAMES
from anatomy_models.spine.neural import NeuralStructures, capsule_chain
from anatomy_models.spine.parameters import SpineParameters
from anatomy_models.spine.sdf import Shape, VerticalTube
from anatomy_models.spine.vertebra import SIDE_SIGN, VertebraLayout

AORTA_RADIUS_MM = 10.0          # abdominal aorta ~20 mm across [ED]
IVC_SEMI_AXES_MM = (11.0, 8.0)  # oval [ED]
ILIAC_ARTERY_RADIUS_MM = 5.0
ILIAC_VEIN_RADIUS_MM = 6.5
RADICULAR_RADIUS_MM = 0.5       # radicular arteries are ~0.5-1 mm across [ED]
ADAMKIEWICZ_RADIUS_MM = 0.75    # 0.6-1.8 mm across [S56]
# A tube sampled on a grid stays one face-connected run of voxels in any direction only if its
# radius is at least half the voxel's diagonal (sqrt(3)/2 spacing): thinner arteries would fall
# apart into dots on the label map, be missed by a needle and render as a dotted line.
CONNECTED_RADIUS_VOXELS = 0.9


@dataclass
class Vessels:
    shapes: dict[str, list[Shape]] = field(default_factory=dict)
    artery_paths: dict[str, list[np.ndarray]] = field(default_factory=dict)


def _vertical_vessel(layouts: dict[str, VertebraLayout], levels: list[str], x_of, y_of, semi_axes, top_z: float,
                     bottom: np.ndarray) -> VerticalTube:
    nodes = []
    for name in levels:
        layout = layouts[name]
        p = layout.world((x_of(layout), y_of(layout), 0.0))
        nodes.append((p[2], p[0], p[1]))
    nodes.sort()
    nodes.append((top_z, nodes[-1][1], nodes[-1][2]))
    nodes.insert(0, (bottom[2], bottom[0], bottom[1]))
    z, cx, cy = np.array(nodes).T
    return VerticalTube(z, cx, cy, np.full(len(z), semi_axes[0]), np.full(len(z), semi_axes[1]))


def build_vessels(layouts: dict[str, VertebraLayout], neural: NeuralStructures, params: SpineParameters,
                  top_z: float) -> Vessels:
    vessels = Vessels()
    l4, l5, s1 = layouts["L4"], layouts["L5"], layouts["S1"]
    # Aorta: left-anterior of the bodies down to the L4 bifurcation.
    bifurcation = l4.world((0.25 * l4.width, -l4.depth / 2.0 - AORTA_RADIUS_MM - 1.0, -0.2 * l4.height))
    vessels.shapes["aorta"] = [_vertical_vessel(
        layouts, ["T12", "L1", "L2", "L3"], lambda v: 0.32 * v.width, lambda v: -v.depth / 2.0 - AORTA_RADIUS_MM - 1.5,
        (AORTA_RADIUS_MM, AORTA_RADIUS_MM), top_z, bifurcation)]
    confluence = l5.world((-0.2 * l5.width, -l5.depth / 2.0 - IVC_SEMI_AXES_MM[1] - 2.0, 0.0))
    vessels.shapes["inferior_vena_cava"] = [_vertical_vessel(
        layouts, ["T12", "L1", "L2", "L3", "L4"], lambda v: -0.42 * v.width - 3.0,
        lambda v: -v.depth / 2.0 - IVC_SEMI_AXES_MM[1] - 3.0, IVC_SEMI_AXES_MM, top_z, confluence)]
    for side, s in SIDE_SIGN.items():
        artery_end = s1.world((s * (s1.width / 2.0 + 18.0), -s1.depth / 2.0 - 12.0, -s1.height / 2.0 - 10.0))
        vein_end = s1.world((s * (s1.width / 2.0 + 14.0), -s1.depth / 2.0 - 4.0, -s1.height / 2.0 - 16.0))
        vessels.shapes[f"common_iliac_artery.{side}"] = capsule_chain([bifurcation, artery_end], [ILIAC_ARTERY_RADIUS_MM] * 2)
        vessels.shapes[f"common_iliac_vein.{side}"] = capsule_chain([confluence, vein_end], [ILIAC_VEIN_RADIUS_MM] * 2)
    # Radicular arteries of the lumbar foramina (below pedicles T12-L5).
    spacing = params.spacing_mm
    for name in VERTEBRA_NAMES[:-1]:
        layout = layouts[name]
        d = layout.geometry.dims
        bottom = layout.pedicle_z - d.pedicle_height_mm / 2.0
        ax, sac_y = neural.sac_semi_axes[name][0], neural.sac_center_local_y[name]
        for side, s in SIDE_SIGN.items():
            pedicle_x = abs(layout.pedicle_center[side][0])
            local = [np.array([s * (0.45 * layout.width + 1.5), -0.1 * layout.depth, -0.1 * layout.height]),
                     np.array([s * (pedicle_x + d.pedicle_width_mm / 2.0 + 3.0), layout.depth / 2.0 - 1.5, bottom - 1.5]),
                     np.array([s * (d.canal_transverse_mm / 2.0 + 1.5), layout.depth / 2.0 + 1.0, bottom - 2.5]),
                     np.array([s * (ax + 0.3), sac_y - 2.0, bottom - 2.5])]
            path = [layout.world(p) for p in local]
            dominant = name == params.adamkiewicz_level and side == params.adamkiewicz_side
            label = f"radicular_artery.{name}.{side}" + (".adamkiewicz" if dominant else "")
            radius = max(ADAMKIEWICZ_RADIUS_MM if dominant else RADICULAR_RADIUS_MM, CONNECTED_RADIUS_VOXELS * spacing)
            if dominant:
                path = path + _adamkiewicz_course(neural, path[-1], top_z)
            vessels.artery_paths[label] = path
            vessels.shapes[label] = capsule_chain(path, [radius] * len(path))
            if dominant:
                # The anterior spinal artery down the front of the cord to the conus.
                cord = neural.cord
                z = np.linspace(neural.conus_tip[2] + 1.0, top_z, 12)
                front = [np.array([np.interp(zz, cord.z, cord.cx), np.interp(zz, cord.z, cord.cy)
                                   - np.interp(zz, cord.z, cord.ay) - radius * 0.5, zz]) for zz in z]
                vessels.shapes[label] += capsule_chain(front, [radius] * len(front))
    return vessels


def _adamkiewicz_course(neural: NeuralStructures, entry: np.ndarray, top_z: float) -> list[np.ndarray]:
    """From the sac wall, medially to the front of the cord and up along it (the hairpin's ascending
    limb), joining the anterior spinal artery in the midline at the top of the field."""
    cord = neural.cord
    z0 = min(entry[2] + 6.0, top_z - 1.0)
    side = np.sign(entry[0] - np.interp(z0, cord.z, cord.cx))
    points = []
    for z in np.linspace(z0, top_z, 6):
        front_y = np.interp(z, cord.z, cord.cy) - np.interp(z, cord.z, cord.ay) - 0.5
        beside = 2.5 * (top_z - z) / max(top_z - z0, 1e-6)  # from 2.5 mm off the midline to on it
        points.append(np.array([np.interp(z, cord.z, cord.cx) + side * beside, front_y, z]))
    return points
