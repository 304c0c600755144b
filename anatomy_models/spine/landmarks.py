"""Named landmarks and directions of a generated spine, computed from its construction.

Points come from the construction (pedicle centres, joint frames, root paths) and, where a landmark
names a surface point (a pedicle's 6 o'clock, a process tip, the SAP-TP notch), they are moved onto
the analytic surface of the bone they name by a line search or a projection on its signed distance:
exact to the model, not measured from voxels. Names follow ``anatomy_models.structures``.
"""

from __future__ import annotations

import numpy as np

from anatomy_models.errors import SpinesimError
from anatomy_models.spine.alignment import INTERSPACE_NAMES, VERTEBRA_NAMES
from anatomy_models.spine.facets import SAP_THICKNESS_MM, FacetJoint
from anatomy_models.spine.neural import NeuralStructures
from anatomy_models.spine.sacrum import SacroiliacJoint, cornu_tip, dorsal_foramen_center, hiatus_apex
from anatomy_models.spine.sdf import Shape
from anatomy_models.spine.skeleton import Skeleton
from anatomy_models.spine.soft_tissue import window_center
from anatomy_models.spine.vertebra import SIDE_SIGN, VertebraLayout

SAFE_TRIANGLE_BELOW_PEDICLE_MM = 2.0   # just under the pedicle's 6 o'clock (clinical.md §2.2a [S17])
SAFE_TRIANGLE_MEDIAL_MM = 1.0          # "slightly medial to the mid-pedicle" [S17]
TP_TIP_SEARCH_BEYOND_MM = 15.0         # how far past the layout's tip the search for the real tip starts
KAMBIN_CLEARANCE_MM = 2.0              # Kambin target lateral of the SAP's lateral face [ED]
BISECTION_STEPS = 30                   # a surface's search bracket (0.05 mm) halved to ~5e-11 mm
BISECTION_STEPS_PER_CALL = 10          # the bisection's steps asked of the sdf at once (2**10 - 1 points)


def _sdf_at(shape: Shape, points: np.ndarray) -> np.ndarray:
    points = np.atleast_2d(points)
    return shape.sdf(*(points[:, i].astype(np.float32) for i in range(3))).astype(np.float64)


def surface_along(shape: Shape, start: np.ndarray, direction: np.ndarray, reach_mm: float = 60.0) -> np.ndarray:
    """The first point from ``start`` along ``direction`` where the shape's inside/outside changes."""
    direction = direction / np.linalg.norm(direction)
    t = np.arange(0.0, reach_mm, 0.05)
    inside = _sdf_at(shape, start[None, :] + t[:, None] * direction[None, :]) < 0
    change = np.flatnonzero(inside[1:] != inside[:-1])
    if len(change) == 0:
        return start.copy()
    # Bisection to far below a voxel.
    low, high = _bisect(lambda middles: (_sdf_at(shape, start[None, :] + middles[:, None] * direction[None, :]) < 0)
                        == inside[0], t[change[0]], t[change[0] + 1], BISECTION_STEPS)
    return start + 0.5 * (low + high) * direction


def farthest_inside(shape: Shape, near: np.ndarray, axis: np.ndarray, reach_mm: float = TP_TIP_SEARCH_BEYOND_MM
                    ) -> np.ndarray:
    """The point inside ``shape`` within ``reach_mm`` of ``near`` (on a 1 mm grid) that lies farthest along
    ``axis``: a process's tip when the layout's line from its root to its tip runs past the real bone (L5's,
    which bends up and forward off that line, missed it by 0.04 mm on the right once its length was its own)."""
    offsets = np.arange(-reach_mm, reach_mm + 0.5, 1.0)
    grid = np.stack(np.meshgrid(offsets, offsets, offsets, indexing="ij"), axis=-1).reshape(-1, 3) + near
    inside = grid[_sdf_at(shape, grid) < 0]
    if len(inside) == 0:
        raise SpinesimError(f"no bone of the process within {reach_mm:g} mm of {np.round(near, 1).tolist()}")
    return inside[int(np.argmax(inside @ axis))]


def _bisect(on_low_side, low: float, high: float, steps: int) -> tuple[float, float]:
    """The bracket [low, high] after ``steps`` bisections, ``on_low_side(middles)`` telling for an array of
    points which lie on the side of ``low``.

    The same bracket, to the bit, as one bisection per step, but each call asks about the middles of the
    next :data:`BISECTION_STEPS_PER_CALL` steps' every possible bracket at once (their binary tree, 1023
    points): an sdf costs a real vertebra's part about as much for one point as for a thousand (it is
    Python calls, not arithmetic), and one at a time the landmarks' bisections were a quarter of the
    implicit model's time.

    The square root of 2, one step at a time and 40 steps at once:

    >>> low, high = 1.0, 2.0
    >>> for _ in range(40):
    ...     middle = 0.5 * (low + high)
    ...     low, high = (middle, high) if middle ** 2 < 2.0 else (low, middle)
    >>> _bisect(lambda middles: middles ** 2 < 2.0, 1.0, 2.0, 40) == (low, high), round(low, 9)
    (True, 1.414213562)
    """
    while steps > 0:
        levels = min(steps, BISECTION_STEPS_PER_CALL)
        # The tree's nodes breadth first: node i's brackets after it are nodes 2i + 1 (high := its middle)
        # and 2i + 2 (low := its middle).
        brackets, middles = [(low, high)], []
        for _ in range(levels):
            middles += [0.5 * (lo + hi) for lo, hi in brackets]
            brackets = [half for (lo, hi), middle in zip(brackets, middles[-len(brackets):])
                        for half in ((lo, middle), (middle, hi))]
        low_side = on_low_side(np.array(middles))
        node = 0
        for _ in range(levels):
            if low_side[node]:
                low, node = middles[node], 2 * node + 2
            else:
                high, node = middles[node], 2 * node + 1
        steps -= levels
    return low, high


def project_to_surface(shape: Shape, point: np.ndarray, iterations: int = 12) -> np.ndarray:
    """Move ``point`` onto the shape's zero level set along the signed-distance gradient."""
    p = np.asarray(point, dtype=np.float64).copy()
    h = 0.05
    offsets = np.vstack([np.eye(3) * h, -np.eye(3) * h])
    for _ in range(iterations):
        values = _sdf_at(shape, np.vstack([p[None, :], p[None, :] + offsets]))
        gradient = (values[1:4] - values[4:7]) / (2 * h)
        norm = np.linalg.norm(gradient)
        if norm < 1e-9 or abs(values[0]) < 1e-3:
            break
        p = p - values[0] * gradient / norm ** 2
    return p


def landmark_structure(name: str) -> tuple[str, str]:
    """The structure a landmark names and how it relates to it: ``"in"``, ``"on"`` (its surface) or
    ``"opening"`` (in a hole through it: not in it, its bone all around within a few millimetres).

    Landmarks that name a target in a space (the safe triangle, Kambin's triangle) lie in the
    foraminal part of the epidural compartment; the apex of the sacral hiatus is in the sacral
    canal's epidural space, just under the lower edge of its dorsal wall.

    >>> landmark_structure("L4.pedicle.left.six_oclock")
    ('L4.pedicle.left', 'on')
    >>> landmark_structure("L4-L5.interlaminar_window.center")
    ('ligamentum_flavum.L4-L5', 'in')
    >>> landmark_structure("S1.dorsal_foramen.left"), landmark_structure("sacroiliac_joint.left.inferior_third")
    (('S1', 'opening'), ('sacroiliac_joint.left', 'in'))
    """
    parts = name.split(".")
    if name == "conus.tip":
        return "spinal_cord", "in"
    if name == "sacral_hiatus.apex":
        return "epidural_space", "in"
    if parts[0] == "sacroiliac_joint":
        return ".".join(parts[:2]), "in"
    if parts[0] == "facet_joint":
        return ".".join(parts[:3]), "in"
    level = parts[0]
    kind = parts[1]
    if kind == "body":
        return f"{level}.body", "in"
    if kind in ("superior_endplate", "inferior_endplate"):
        return f"{level}.body", "on"
    if kind == "pedicle":
        return f"{level}.pedicle.{parts[2]}", "in" if parts[3] == "center" else "on"
    if kind in ("spinous_process", "transverse_process"):
        return ".".join(parts[:-1]), "on"
    if kind in ("SAP_TP_junction", "SAP_ala_junction"):
        return level, "on"
    if kind == "dorsal_foramen":
        return level, "opening"
    if kind == "cornu":
        return ".".join(parts[:3]), "on"
    if kind == "interlaminar_window":
        return f"ligamentum_flavum.{level}", "in"
    if kind == "ventral_interlaminar_line":
        return f"{level.split('-')[0]}.lamina.{parts[2]}", "on"
    if kind in ("safe_triangle", "kambin_triangle"):
        return "epidural_space", "in"
    raise ValueError(f"no structure is known for landmark {name!r}")


def spine_landmarks(skeleton: Skeleton, neural: NeuralStructures, flavum: dict[str, Shape]) -> tuple[dict, dict]:
    """(landmarks, directions) of every level, side and interspace, LPS mm and unit vectors."""
    alignment = skeleton.alignment
    points: dict[str, np.ndarray] = {}
    directions: dict[str, np.ndarray] = {}
    for name in VERTEBRA_NAMES:
        layout = skeleton.layouts[name]
        bone = skeleton.vertebra_shape(name)
        body = skeleton.part_shape(f"{name}.body")
        points[f"{name}.body.center"] = layout.frame.origin.copy()
        for which in ("superior", "inferior"):
            if name == "S1" and which == "inferior":
                continue  # fused to S2: no disc below
            normal = alignment.endplate_normal(name, which)
            centre = alignment.endplate_center(name, which)
            # The endplate is concave: from its plane's centre, search back into the body along the normal.
            points[f"{name}.{which}_endplate.center"] = surface_along(body, centre + normal * 3.0, -normal)
            directions[f"{name}.{which}_endplate.normal"] = normal
        for side, s in SIDE_SIGN.items():
            centre = layout.world(layout.pedicle_center[side])
            points[f"{name}.pedicle.{side}.center"] = centre
            points[f"{name}.pedicle.{side}.six_oclock"] = pedicle_six_oclock(skeleton, name, side)
            if name != "S1":
                tp = skeleton.part_shape(f"{name}.transverse_process.{side}")
                root, tip = layout.world(layout.tp_root[side]), layout.world(layout.tp_tip[side])
                # Back from beyond the tip: the first bone met is the tip, whatever the process's bends.
                beyond = tip + (tip - root) / np.linalg.norm(tip - root) * TP_TIP_SEARCH_BEYOND_MM
                found = surface_along(tp, beyond, root - beyond)
                if np.array_equal(found, beyond):  # the line missed the real process: aim at its farthest point
                    found = surface_along(tp, beyond, farthest_inside(tp, tip, tip - root) - beyond)
                points[f"{name}.transverse_process.{side}.tip"] = found
            if name == "S1":  # the L5 dorsal ramus crosses the sacral ala (clinical.md §2.4 [S3])
                points[f"S1.SAP_ala_junction.{side}"] = sap_tp_junction(skeleton, name, side, bone)
            elif name != "T12":
                points[f"{name}.SAP_TP_junction.{side}"] = sap_tp_junction(skeleton, name, side, bone)
        tip_start = layout.world(layout.sp_base)
        tip_aim = layout.sp_tip if layout.spinous_tip_aim is None else layout.spinous_tip_aim
        tip_direction = layout.world(tip_aim) - tip_start
        points[f"{name}.spinous_process.tip"] = surface_along(skeleton.part_shape(f"{name}.spinous_process"),
                                                              tip_start, tip_direction)
    for interspace in INTERSPACE_NAMES:
        upper_name = interspace.split("-")[0]
        upper = skeleton.layouts[upper_name]
        for side in SIDE_SIGN:
            joint: FacetJoint = skeleton.joints[(interspace, side)]
            points[f"{joint.name}.center"] = joint.frame.origin.copy()
            points[f"{joint.name}.inferior_recess"] = joint.inferior_recess
            lamina = skeleton.part_shape(f"{upper_name}.lamina.{side}")
            vill = upper.lamina_ventral_point(0.4, upper.lamina_bottom_z + 3.0, side)
            points[f"{interspace}.ventral_interlaminar_line.{side}"] = project_to_surface(lamina, upper.world(vill))
            points[f"{interspace}.safe_triangle.{side}"] = safe_triangle(
                skeleton, upper_name, side, points[f"{upper_name}.pedicle.{side}.six_oclock"])
            points[f"{interspace}.kambin_triangle.{side}"] = kambin_triangle(skeleton, interspace, side)
        points[f"{interspace}.interlaminar_window.center"] = window_center(
            skeleton, flavum[f"ligamentum_flavum.{interspace}"], interspace)
    points["conus.tip"] = neural.conus_tip + np.array([0.0, 0.0, 0.5])
    return {k: v for k, v in points.items() if v is not None}, directions


def sacral_landmarks(s1: VertebraLayout, joints: dict[str, SacroiliacJoint], lumbarized: bool = False) -> dict:
    """Landmarks of the sacrum and the sacroiliac joints (LPS mm).

    ``S1.dorsal_foramen.{s}`` (centre of the S1 dorsal foramen in the dorsal wall: the S1
    transforaminal target), ``sacral_hiatus.apex`` (in the canal under the lower edge of the dorsal
    wall), ``S1.cornu.{s}.tip`` (the cornua's lower tips, either side of the hiatus) and
    ``sacroiliac_joint.{s}.inferior_third`` (the injection target, in the joint space).
    """
    points = {"sacral_hiatus.apex": s1.world(hiatus_apex(s1, lumbarized) - np.array([0.0, 2.0, 0.0]))}
    for side in SIDE_SIGN:
        points[f"S1.dorsal_foramen.{side}"] = s1.world(dorsal_foramen_center(s1, side))
        points[f"S1.cornu.{side}.tip"] = s1.world(cornu_tip(s1, side, lumbarized))
        points[f"sacroiliac_joint.{side}.inferior_third"] = joints[side].inferior_third
    return points


def sap_tp_junction(skeleton: Skeleton, name: str, side: str, bone: Shape) -> np.ndarray:
    """The notch where the SAP's base meets the top of the transverse process (or, at S1, the sacral ala).

    The medial branch of the dorsal ramus (at S1 the L5 dorsal ramus) runs there, on the dorsal
    surface (clinical.md §2.4 [S3]). The construction point sits just outside the bone in the corner,
    lateral to the SAP and above the TP's root, is projected onto the vertebra's surface, and then
    moved into the groove as a needle from behind meets it (:func:`_dorsal_groove`).
    """
    layout = skeleton.layouts[name]
    s = SIDE_SIGN[side]
    axis = layout.pedicle_axis[side]
    outward = np.array([s * axis[1], -abs(axis[0]), 0.0])  # horizontal, perpendicular to the pedicle, lateral
    half_width = layout.geometry.dims.pedicle_width_mm / 2.0
    if name == "S1":
        candidate = layout.junction[side] + outward * (half_width + 4.0) + np.array([0.0, 1.0, 4.0])
    else:
        height = layout.tp_height
        candidate = layout.tp_root[side] + outward * 3.0 + np.array([0.0, 1.5, height / 2.0 + 2.0])
    if name == "S1":
        # The sacrum has many parts: only those near the search region count (same signs there).
        reach = np.array([25.0, 50.0, 12.0])
        bone = skeleton.vertebra_shape_within(name, layout.world(candidate) - reach, layout.world(candidate) + reach)
    corner = project_to_surface(bone, layout.world(candidate))
    # The groove's floor: the ala at S1; on a lumbar vertebra the transverse process and, where the
    # real shape's broad pedicle root reaches out under the SAP (L5), the pedicle.
    floors = ([skeleton.part_shape(f"S1.ala.{side}")] if name == "S1" else
              [skeleton.part_shape(f"{name}.{part}.{side}") for part in ("transverse_process", "pedicle")])
    return _dorsal_groove(bone, floors, corner, s, medial_first=name != "S1")


# Where the dorsal groove is looked for around the construction corner (mm): lateral offsets, and
# depths below the corner (the corner sits on the TP's upper border; a needle lands a little lower).
GROOVE_LATERAL_MM = np.arange(-8.0, 12.0, 0.25)
GROOVE_BELOW_MM = np.arange(0.0, 3.01, 0.5)
# The needle must rest on the floor, not graze its edge: a ray counts only where, within this depth of
# where it lands (mm), it passes at least this far inside the bone (a bone 2 mm thick at least) [ED]. The
# real transverse processes' upper borders slope back, and a ray landing where it only grazes them ends
# on a sliver (0.4 mm at L5) that a 2 mm CT grid does not hold: a target there has no bone under it on the
# images or for the needle.
GROOVE_SOLID_DEPTH_MM = 4.0
GROOVE_SOLID_INSIDE_MM = 1.0


def _dorsal_groove(bone: Shape, floors: list[Shape], corner: np.ndarray, sign: float,
                   medial_first: bool = True) -> np.ndarray:
    """The groove between the SAP and the TP's upper border (or the ala), as a needle from behind meets it.

    The medial branch is blocked where it lies on the dorsal bone surface (clinical.md §2.4 [S3]), so
    the landmark is the most medial point, at or just below the corner's height, where a posterior ray
    first lands on the floor (``floors``: the transverse process or the pedicle's root; the ala) rather than on
    the SAP overhanging it.
    """
    posterior = np.array([0.0, 1.0, 0.0])
    # Most medial first, then highest: the transverse processes rise laterally (L5's most), so at the
    # corner's height a ray may first land on the process far out; the groove is beside the SAP. On the
    # sacrum (``medial_first`` False) highest first: the ala is flat.
    if medial_first:
        offset, below = (g.ravel() for g in np.meshgrid(GROOVE_LATERAL_MM, GROOVE_BELOW_MM, indexing="ij"))
    else:
        below, offset = (g.ravel() for g in np.meshgrid(GROOVE_BELOW_MM, GROOVE_LATERAL_MM, indexing="ij"))
    starts = corner + np.stack([sign * offset, np.full_like(offset, 40.0), -below], axis=1)
    step = 0.25
    depths = np.arange(0.0, 80.0, step)
    samples = starts[:, None, :] - depths[None, :, None] * posterior
    distance = _sdf_at(bone, samples.reshape(-1, 3)).reshape(len(starts), len(depths))
    inside = distance < 0
    hit_rays = np.flatnonzero(inside.any(axis=1))  # in search order
    first = inside[hit_rays].argmax(axis=1)
    hits = samples[hit_rays, first] + 0.3 * posterior  # just behind the first bone sample
    on_tp = np.any([_sdf_at(floor, hits - 0.6 * posterior) < 0 for floor in floors], axis=0)
    under = np.minimum(first[:, None] + np.arange(int(round(GROOVE_SOLID_DEPTH_MM / step)))[None, :], len(depths) - 1)
    if medial_first:  # the lumbar processes' sloping borders; the sacral ala is a broad flat plate
        on_tp &= distance[hit_rays[:, None], under].min(axis=1) <= -GROOVE_SOLID_INSIDE_MM
    if not on_tp.any():
        return corner
    ray = hit_rays[np.argmax(on_tp)]
    return surface_along(bone, starts[ray], -posterior, reach_mm=80.0)


def pedicle_six_oclock(skeleton: Skeleton, name: str, side: str) -> np.ndarray:
    """The pedicle's lower border under its centre (the edge of its labelled region)."""
    layout = skeleton.layouts[name]
    return surface_along(skeleton.part_shape(f"{name}.pedicle.{side}"), layout.world(layout.pedicle_center[side]),
                         layout.frame.vector((0.0, 0.0, -1.0)))


def safe_triangle(skeleton: Skeleton, name: str, side: str, six_oclock: np.ndarray) -> np.ndarray:
    """Subpedicular TFESI target: just under the 6 o'clock (``six_oclock``, :func:`pedicle_six_oclock`) of
    pedicle ``name``, a little medial (§2.2a)."""
    layout = skeleton.layouts[name]
    s = SIDE_SIGN[side]
    centre = layout.pedicle_center[side]
    six = layout.frame.rotation.T @ (six_oclock - layout.frame.origin)
    # Under the pedicle's lower border, in line with the target: on a real vertebra the pedicle's root
    # flares into the body there (most at L5), so the foramen begins where the bone ends.
    above = np.array([centre[0] - s * SAFE_TRIANGLE_MEDIAL_MM, layout.depth / 2.0 + 3.0, six[2]])
    bone = skeleton.vertebra_shape(name)
    if _sdf_at(bone, layout.world(above))[0] < 0:
        exit_point = surface_along(bone, layout.world(above), layout.frame.vector((0.0, 0.0, -1.0)))
        above = layout.frame.rotation.T @ (exit_point - layout.frame.origin)
    return layout.world(above - np.array([0.0, 0.0, SAFE_TRIANGLE_BELOW_PEDICLE_MM]))


def kambin_triangle(skeleton: Skeleton, interspace: str, side: str) -> np.ndarray:
    """Kambin's triangle centre: behind the disc, just lateral to the front edge of the lower SAP (§2.2b).

    The point clears the SAP's lateral face by :data:`KAMBIN_CLEARANCE_MM` at the SAP's front end,
    then sits just behind the disc's posterior margin at mid-disc height: the triangle's medial side
    is the SAP, its base the lower endplate (clinical.md §2.2(b) [S24]).
    """
    disc = skeleton.alignment.discs[interspace]
    joint = skeleton.joints[(interspace, side)]
    lower = skeleton.layouts[disc.lower]
    thickness = SAP_THICKNESS_MM * lower.geometry.scale
    beside = joint.frame.point((-(joint.space_mm / 2.0 + thickness + KAMBIN_CLEARANCE_MM), -joint.width_mm / 2.0, 0.0))
    local = disc.frame.rotation.T @ (beside - disc.frame.origin)
    upper = skeleton.layouts[disc.upper]
    behind_disc = upper.depth / 2.0 + 1.0 + 2.5
    # Within the foramen: no further out than the upper pedicle's lateral wall (the sagittal upper
    # joints put the SAP's lateral face beyond it).
    pedicle = disc.frame.rotation.T @ (upper.world(upper.pedicle_center[side]) - disc.frame.origin)
    outer = abs(pedicle[0]) + upper.geometry.dims.pedicle_width_mm / 2.0
    x = SIDE_SIGN[side] * min(abs(local[0]), outer)
    return disc.frame.point(np.array([x, behind_disc, 0.0]))
