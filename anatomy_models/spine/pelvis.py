"""The ilia, as far as the field of view holds them: the wings with their crests, the posterior
ilium with its auricular surface at the sacroiliac joint, the posterior superior iliac spine and the
greater sciatic notch below the joint.

Each ilium is a curved plate around a vertical axis in front of and medial to it (the iliac fossa
faces forward and in), running from behind the sacroiliac joint, past the posterior superior iliac
spine, out and forward to the anterior superior iliac spine, with a thick rounded crest on top. The
crest's highest point is at the L4-5 interspace (Tuffier's line, clinical.md §4.8 [S51]); the other
sizes are [ED] adult textbook proportions. Fluoroscopy needs them (the crests overlie L5-S1 on AP and
oblique views and limit the L5-S1 transforaminal path); the needle needs them as bone.

The blade is thin in the iliac fossa and thickens toward its back (the posterior ilium) and its crest
(a 3 mm fossa, [ED]; the fossa is translucent on radiographs). Behind it the posterior ilium is a
thick block whose medial face is the auricular surface, 2 mm from the sacrum's across the joint
(:class:`anatomy_models.spine.sacrum.SacroiliacJoint`); the joint's cut keeps the two apart.
"""

from __future__ import annotations

import math

import numpy as np

from anatomy_models.spine.neural import capsule_chain
from anatomy_models.spine.sacrum import SI_HALF_HEIGHT_MM, SI_HALF_LENGTH_MM, SacroiliacJoint
from anatomy_models.spine.sdf import Frame, Intersection, Primitive, Shape, ellipsoid, f32, rounded_box, tapered_box
from anatomy_models.spine.skeleton import Skeleton
from anatomy_models.spine.vertebra import SIDE_SIGN

WING_THICKNESS_MM = 7.0          # the blade's thickness at its back, toward the posterior ilium [ED]
FOSSA_THICKNESS_MM = 3.0         # in the iliac fossa, toward the front [ED]
AURICULAR_BLOCK_MM = 24.0        # the posterior ilium's thickness lateral to the joint [ED]
# The PSIS is the block's back end, PSIS_BEHIND_MM behind the auricular surface's back end [ED]: a separate knob
# (an ellipsoid 20 x 26 mm across) drew a round dense disc over the sacroiliac joint on the tilted AP views of S1
# ("round 'hips' beside S1", issue 15).
PSIS_BEHIND_MM = 15.0
BLOCK_RISE_MM = 10.0             # the posterior ilium's block runs up this far above the joint into the wing [ED]
# ... thinning toward this line across the joint (the wing's back, its middle), its half-width at its foot [ED]: the
# profile's medial edge stays lateral to the joint's plane above the joint, where the ala's dorsal surface is bare.
BLOCK_TAPER_TOWARD_MM, BLOCK_FOOT_HALF_MM = 7.5, 12.5
# The crest: the blade thickens over its top CREST_DEPTH_MM into a rounded rim of half-width
# CREST_HALF_WIDTH_MM times CREST_PROFILE along it, from the ASIS (0) to its back end over the sacroiliac
# joint (1) [ED]: thickest at the iliac tubercle, a third of the way back, thinning behind it toward the ala.
# The rim grows out of the plate (no tube laid on its edge): its cortex is one surface with the wing's, so
# on an AP film the crest is one dense curved line laterally that fades medially, not a hose of even calibre
# with a cortex on both sides (issue 15's "hose-like iliac crests").
CREST_HALF_WIDTH_MM = 6.5
CREST_DEPTH_MM = 18.0
CREST_PROFILE = ((0.0, 0.25, 0.55, 0.8, 1.0), (0.65, 1.15, 0.85, 0.55, 0.35))
# The pelvic brim (arcuate line): a ridge on the wing's inner face from the sacroiliac joint's lower front
# forward and down toward the pubis, the oblique line that bounds the translucent fossa below [ED].
ARCUATE_RADIUS_MM = 3.0
SACROILIAC_GAP_MM = 3.0
# The arc's centre from the sacroiliac joint: 28 mm medial and 85 mm anterior [ED].
ARC_CENTRE_OFFSET_MM = (28.0, 85.0)
ANTERIOR_END_DEG = 18.0          # the ASIS end of the arc, measured from the lateral direction
POSTERIOR_OVERHANG_DEG = 8.0     # past the sacroiliac joint toward the PSIS
# Crest heights above the sacroiliac joint's centre at its back end (PSIS) and front end (ASIS), mm
# [ED]; its summit, half-way along, is at the L4-L5 interspace.
CREST_BEHIND_MM, CREST_FRONT_MM = 35.0, 12.0
# The wing's lower edge at the ASIS end, from the joint centre [ED]: the blade runs on down toward the
# acetabulum (the anterior inferior iliac spine is 4-5 cm below the joint), so no edge cuts across the fossa
# above the pelvic brim.
FRONT_LOWER_EDGE_MM = -20.0
FLARE = 0.3                      # outward flare of the wing per mm of height [ED]


def _wing_sdf(radius: float, start_deg: float, end_deg: float, crest, bottom_z: float, front_bottom_z: float):
    """Local sdf of the wing in a frame at the arc's centre (u lateral, v posterior, w up).

    The wing is a fan: its lower edge is ``bottom_z`` at the back (the sacroiliac region runs on down)
    and rises linearly to ``front_bottom_z`` at the front end (the ASIS)."""
    r0 = f32(radius)
    t_front, t_back = f32(FOSSA_THICKNESS_MM / 2.0), f32(WING_THICKNESS_MM / 2.0)
    a0, a1 = math.radians(start_deg), math.radians(end_deg)
    middle, half = f32((a0 + a1) / 2.0), f32((a1 - a0) / 2.0)
    nodes = np.radians(np.array([end_deg, (start_deg + end_deg) / 2.0, start_deg]))
    heights = np.array(crest)
    coefficients = np.polyfit(nodes, heights, 2).astype(np.float32)
    bottom_back, bottom_front = f32(bottom_z), f32(front_bottom_z)

    crest_at, crest_factor = (np.asarray(values, np.float32) for values in CREST_PROFILE)

    def sdf(u, v, w):
        r = np.sqrt(u * u + v * v)
        angle = np.arctan2(v, u)
        fraction = (np.clip(angle, a0, a1) - a0) / (a1 - a0)  # 0 at the front end, 1 at the back
        top = coefficients[0] * np.clip(angle, a0, a1) ** 2 + coefficients[1] * np.clip(angle, a0, a1) + coefficients[2]
        # The wing flares out going up, like the rim of a bowl; thin in the fossa, thick at the back, and
        # thickening toward its top into the crest.
        thickness = t_front + (t_back - t_front) * fraction ** 2
        crest = f32(CREST_HALF_WIDTH_MM) * np.interp(fraction, crest_at, crest_factor).astype(np.float32)
        rise = np.clip(f32(1.0) - (top - w) / f32(CREST_DEPTH_MM), 0, 1)
        thickness = thickness + np.maximum(crest - thickness, 0) * rise * rise
        offset = np.abs(r - (r0 + f32(FLARE) * w))
        # A rounded top: the crest's upper surface falls toward both faces (an elliptic roof).
        roof = np.minimum(crest, thickness) * (1 - np.sqrt(np.clip(1 - (offset / thickness) ** 2, 0, 1)))
        across = offset - thickness
        along = (np.abs(angle - middle) - half) * r0
        bottom = bottom_front + (bottom_back - bottom_front) * fraction
        vertical = np.maximum(w - (top - roof), bottom - w)
        outside = np.sqrt(np.maximum(across, 0) ** 2 + np.maximum(along, 0) ** 2 + np.maximum(vertical, 0) ** 2)
        return outside + np.minimum(np.maximum(np.maximum(across, along), vertical), 0)
    return sdf


def arcuate_line(frame: Frame, radius: float, start_deg: float, end_deg: float) -> list[np.ndarray]:
    """World points of the pelvic brim on the wing's inner face (``frame`` at the arc's centre, level with
    the sacroiliac joint's centre; ``radius`` the arc's): from the joint's lower front, 15 mm below its
    centre, forward and down to 40 mm below it at the front third of the arc [ED]."""
    angles = np.radians(np.linspace(end_deg - 12.0, start_deg + 0.35 * (end_deg - start_deg), 5))
    heights = np.linspace(-15.0, -40.0, 5)
    inner = radius - FOSSA_THICKNESS_MM
    return [frame.point(((inner + FLARE * h) * math.cos(a), (inner + FLARE * h) * math.sin(a), h))
            for a, h in zip(angles, heights)]


def posterior_ilium(joint: SacroiliacJoint) -> list[Shape]:
    """The posterior ilium at the joint ``joint``: the block behind the auricular surface, whose back end
    behind the joint's is the posterior superior iliac spine, and the body of the ilium running down and
    forward from the joint's lower end, whose back edge is the greater sciatic notch."""
    gap = joint.gap_mm / 2.0
    rotation = joint.frame.rotation
    # The block reaches 6 mm past the joint's plane (the joint's cut shapes the auricular surface). Its lateral
    # face curves in going up (an elliptic profile across the joint) so that it thins into the wing's back
    # above the joint: capped by a rounded top as thick as the block, it drew a round dense "hip" beside S1 on
    # the caudally tilted AP (issue 15) [ED].
    bottom, top = -SI_HALF_HEIGHT_MM - 2.0, SI_HALF_HEIGHT_MM + BLOCK_RISE_MM
    back, front = -SI_HALF_LENGTH_MM - PSIS_BEHIND_MM, SI_HALF_LENGTH_MM + 2.0
    half = ((front - back) / 2.0, AURICULAR_BLOCK_MM / 2.0 + 3.0, (top - bottom) / 2.0)
    centre_v = gap + half[1] - 6.0
    box = Primitive(Frame(joint.point((front + back) / 2.0, centre_v, (top + bottom) / 2.0), rotation),
                    rounded_box(half, 4.0), half)
    # The profile's ellipse: centred at the block's foot over the wing's line, closing at the block's top.
    radii = (400.0, BLOCK_FOOT_HALF_MM, top - bottom)
    profile = Primitive(Frame(joint.point(-4.0, BLOCK_TAPER_TOWARD_MM, bottom), rotation), ellipsoid(radii), radii)
    block = Intersection([box, profile])
    # The body of the ilium: from the joint's lower front down, forward and out toward the acetabulum.
    start = joint.point(4.0, gap + 10.0, -SI_HALF_HEIGHT_MM + 6.0)
    end = joint.point(28.0, gap + 22.0, -SI_HALF_HEIGHT_MM - 26.0)
    axis = end - start
    length = float(np.linalg.norm(axis))
    across = np.cross(axis, joint.frame.vector((0.0, 1.0, 0.0)))
    frame = Frame.from_axes((start + end) / 2.0, axis, across)
    body = Primitive(frame, tapered_box(length / 2.0, (16.0, 6.0), (13.0, 7.0), 4.5), (length / 2.0, 16.0, 7.0))
    return [block, body]


def ilium_parts(skeleton: Skeleton, bottom_z: float,
                joints: dict[str, SacroiliacJoint]) -> dict[str, list[tuple[str, Shape]]]:
    """Labelled parts of both ilia (``ilium.left``, ``ilium.right``), world shapes; ``joints`` are the
    sacroiliac joints by side."""
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
        # Box the wing tightly: the sector of the arc between its ends, over the radii it reaches.
        angles = np.radians(np.linspace(start, end, 32))
        radii = np.array([radius + FLARE * (bottom_z - joint[2]), radius + FLARE * top])
        u = np.outer(radii, np.cos(angles)).ravel()
        v = np.outer(radii, np.sin(angles)).ravel()
        pad = WING_THICKNESS_MM + CREST_HALF_WIDTH_MM * max(CREST_PROFILE[1])
        low = np.array([u.min() - pad, v.min() - pad, bottom_z - joint[2] - 1.0])
        high = np.array([u.max() + pad, v.max() + pad, max(top, behind) + pad])
        middle = (low + high) / 2.0
        shape = _wing_sdf(radius, start, end, (front, top, behind), bottom_z - joint[2], FRONT_LOWER_EDGE_MM)
        offset = middle.astype(np.float32)
        wing = Primitive(Frame(frame.point(middle), rotation),
                         lambda a, b, c, shape=shape, offset=offset: shape(a + offset[0], b + offset[1], c + offset[2]),
                         tuple((high - low) / 2.0))
        parts[f"ilium.{side}"] = [(f"ilium.{side}", wing)] + \
            [(f"ilium.{side}", shape) for shape in capsule_chain(arcuate_line(frame, radius, start, end),
                                                                  [ARCUATE_RADIUS_MM] * 5)] + \
            [(f"ilium.{side}", shape) for shape in posterior_ilium(joints[side])]
    return parts
