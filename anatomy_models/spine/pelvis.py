"""The iliac wings, as far as the field of view holds them (the crests, the sacroiliac region).

Each ilium is a curved plate around a vertical axis in front of and medial to it (the iliac fossa
faces forward and in), running from behind the sacroiliac joint, past the posterior superior iliac
spine, out and forward to the anterior superior iliac spine, with a thick rounded crest on top. The
crest's highest point is at the L4-5 interspace (Tuffier's line, clinical.md §4.8 [S51]); the other
sizes are [ED] adult textbook proportions. Fluoroscopy needs them (the crests overlie L5-S1 on AP and
oblique views and limit the L5-S1 transforaminal path); the needle needs them as bone.
"""

from __future__ import annotations

import math

import numpy as np

from anatomy_models.spine.neural import capsule_chain
from anatomy_models.spine.sdf import Frame, Primitive, Shape, f32
from anatomy_models.spine.skeleton import Skeleton
from anatomy_models.spine.vertebra import SIDE_SIGN

WING_THICKNESS_MM = 7.0
CREST_RADIUS_MM = 6.5
SACROILIAC_GAP_MM = 3.0
# The arc's centre from the sacroiliac joint: 28 mm medial and 85 mm anterior [ED].
ARC_CENTRE_OFFSET_MM = (28.0, 85.0)
ANTERIOR_END_DEG = 18.0          # the ASIS end of the arc, measured from the lateral direction
POSTERIOR_OVERHANG_DEG = 8.0     # past the sacroiliac joint toward the PSIS
# Crest heights above the sacroiliac joint's centre at its back end (PSIS) and front end (ASIS), mm
# [ED]; its summit, half-way along, is at the L4-L5 interspace.
CREST_BEHIND_MM, CREST_FRONT_MM = 35.0, 12.0
FRONT_LOWER_EDGE_MM = 0.0        # the wing's lower edge at the ASIS end, from the joint centre [ED]
FLARE = 0.3                      # outward flare of the wing per mm of height [ED]


def _wing_sdf(radius: float, start_deg: float, end_deg: float, crest, bottom_z: float, front_bottom_z: float):
    """Local sdf of the wing in a frame at the arc's centre (u lateral, v posterior, w up).

    The wing is a fan: its lower edge is ``bottom_z`` at the back (the sacroiliac region runs on down)
    and rises linearly to ``front_bottom_z`` at the front end (the ASIS)."""
    r0, t = f32(radius), f32(WING_THICKNESS_MM / 2.0)
    a0, a1 = math.radians(start_deg), math.radians(end_deg)
    middle, half = f32((a0 + a1) / 2.0), f32((a1 - a0) / 2.0)
    nodes = np.radians(np.array([end_deg, (start_deg + end_deg) / 2.0, start_deg]))
    heights = np.array(crest)
    coefficients = np.polyfit(nodes, heights, 2).astype(np.float32)
    bottom_back, bottom_front = f32(bottom_z), f32(front_bottom_z)

    def sdf(u, v, w):
        r = np.sqrt(u * u + v * v)
        angle = np.arctan2(v, u)
        # The wing flares out going up, like the rim of a bowl.
        across = np.abs(r - (r0 + f32(FLARE) * w)) - t
        along = (np.abs(angle - middle) - half) * r0
        top = coefficients[0] * np.clip(angle, a0, a1) ** 2 + coefficients[1] * np.clip(angle, a0, a1) + coefficients[2]
        fraction = (np.clip(angle, a0, a1) - a0) / (a1 - a0)  # 0 at the front end, 1 at the back
        bottom = bottom_front + (bottom_back - bottom_front) * fraction
        vertical = np.maximum(w - top, bottom - w)
        outside = np.sqrt(np.maximum(across, 0) ** 2 + np.maximum(along, 0) ** 2 + np.maximum(vertical, 0) ** 2)
        return outside + np.minimum(np.maximum(np.maximum(across, along), vertical), 0)
    return sdf


def ilium_parts(skeleton: Skeleton, bottom_z: float) -> dict[str, list[tuple[str, Shape]]]:
    """Labelled parts of both ilia (``ilium.left``, ``ilium.right``), world shapes."""
    s1 = skeleton.layouts["S1"]
    disc = skeleton.alignment.discs["L4-L5"]
    tuffier_z = float(disc.frame.origin[2])
    parts: dict[str, list[tuple[str, Shape]]] = {}
    for side, s in SIDE_SIGN.items():
        joint = s1.world((s * (s1.width / 2.0 + 27.0 * s1.geometry.scale + SACROILIAC_GAP_MM), 0.15 * s1.depth,
                          -s1.height / 2.0))
        dx, dy = ARC_CENTRE_OFFSET_MM
        centre = np.array([joint[0] - s * dx, joint[1] - dy, joint[2]])
        radius = math.hypot(dx, dy)
        start = ANTERIOR_END_DEG
        end = math.degrees(math.atan2(dy, dx)) + POSTERIOR_OVERHANG_DEG
        behind, front = CREST_BEHIND_MM, CREST_FRONT_MM
        top = tuffier_z - joint[2]  # the crest's summit at the L4-L5 interspace (Tuffier's line)
        # A mirror frame on the right keeps "u" lateral on both sides (the wing is symmetric).
        rotation = np.diag([s, 1.0, 1.0])
        frame = Frame(centre, rotation)
        reach = radius + FLARE * top + 10.0
        extent = (reach, reach, max(top, behind) + 10.0 + (joint[2] - bottom_z))
        wing = Primitive(frame, _wing_sdf(radius, start, end, (front, top, behind), bottom_z - joint[2],
                                          FRONT_LOWER_EDGE_MM), extent)
        # The crest: a rounded rim along the wing's top edge.
        angles = np.linspace(math.radians(start), math.radians(end), 9)
        heights = np.polyval(np.polyfit(np.radians([start, (start + end) / 2, end]), [front, top, behind], 2), angles)
        rim = [frame.point(((radius + FLARE * h) * math.cos(a), (radius + FLARE * h) * math.sin(a), h - CREST_RADIUS_MM * 0.6))
               for a, h in zip(angles, heights)]
        parts[f"ilium.{side}"] = [(f"ilium.{side}", wing)] + \
            [(f"ilium.{side}", shape) for shape in capsule_chain(rim, [CREST_RADIUS_MM] * len(rim))]
    return parts
