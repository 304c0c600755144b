"""Approximate landmarks of a spine that has vertebra labels but no landmarks (an imported CT).

A CT segmented by TotalSegmentator or VerSe labels each vertebra as a whole (``L4``, ``S1``) and
names no points, yet targets and C-arm views need the landmarks of ``structures.py``.
:func:`landmarks_from_labels` measures them from each vertebra's voxels alone, so it works the same
for a whole-vertebra label and for the generator's parts (the group ``L4`` covers both):

1. A frame per vertebra: origin at the voxels' centroid, superior axis along the line joining the
   neighbours' centroids (it follows the lordosis), posterior axis the patient's posterior made
   perpendicular to it, left completing the right-handed LPS frame.
2. The canal is the widest gap in the bone met along the midline from front to back near the
   centroid's height: in front of it the body, behind it the laminae and the spinous process.
3. Pedicles: the bone beside the canal in the front half of its depth (behind the body, in front
   of the articular processes). The 6 o'clock point is the lowest bone under the pedicle's centre.
4. Interspace points from both neighbours: the interlaminar window half-way across the gap
   between the laminae's edges, at the mean depth of the edges' bone (where the ligamentum flavum
   spans the gap); the safe triangle just under the pedicle's 6 o'clock (the generator's offsets,
   §2.2a [S17]); Kambin's triangle behind the disc
   lateral to the lower SAP; the facet joint between the upper vertebra's lowest and the lower
   one's highest posterolateral bone; the SAP-TP junction on the dorsal bone where the transverse
   process leaves the vertebra.

The points are approximations (a few millimetres; the tests compare them with the generator's
exact ones). Only landmarks the anatomy lacks are added (:func:`with_label_landmarks`), and
``metadata["derived_landmarks"]`` says so, so that a page built on them can say they are estimates.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.spine.facets import JOINT_HEIGHT_MM
from anatomy_models.spine.landmarks import SAFE_TRIANGLE_BELOW_PEDICLE_MM, SAFE_TRIANGLE_MEDIAL_MM
from anatomy_models.structures import LEVELS, in_group, level_below
from anatomy_models.tissues import BONE_TISSUES

# A lamina's edge: its bone within this (mm) of its lowest (upper lamina) or highest (lower) point,
# one voxel of a 2 mm grid and a half.
LAMINA_EDGE_MM = 3.0
# The sacrum is labelled S1 as a whole; its S1 segment is the top this far along the spine (mm):
# about one vertebral height (§4.1 [ED] 25-27 mm) plus the ala's rise.
S1_SEGMENT_MM = 30.0
# Bone nearer the midline than this (mm) belongs to the spinous process and the arch, not a side.
MIDLINE_HALF_WIDTH_MM = 5.0
# The gap the canal must leave along the midline to be found (mm): narrower is a crack, not a canal.
MIN_CANAL_MM = 6.0
# The pedicle band starts this far behind the canal's front at the midline (mm).
PEDICLE_BAND_MM = 2.5
# A break in bone of more than this (mm) ends a run of bone (two voxels of a 2 mm grid, less one).
GAP_MM = 3.0
# The six o'clock lies at most this far (mm) under the pedicle's centre: half the tallest lumbar pedicle,
# 15 mm at L1-L2 (clinical.md §4.2 [ED]). On a fine grid the bone run down from the centre goes on
# without a gap into the body's posterolateral wall or the pars, and would put the point far too low.
PEDICLE_HALF_HEIGHT_MM = 7.5
# The SAP-TP groove: where the dorsal bone surface drops this much (mm) below the SAP's top.
GROOVE_DROP_MM = 5.0
# The sacral ala's upper border falls at most this (mm per mm) going out on AP, the SAP's lateral wall more
# steeply: the ala's border slopes ~15-35 deg (sacrum.py's arch), tan 45 deg is 1 [ED].
ALA_SLOPE_MAX = 1.0
# The groove searches walk out from the pedicle across columns this wide (mm).
COLUMN_MM = 2.0
# Kambin's triangle relative to the pedicle line and the back of the vertebral body (mm) [ED], as in
# the generated spine: lateral to the SAP's front edge, behind the disc.
KAMBIN_LATERAL_MM = 6.0
KAMBIN_BEHIND_BODY_MM = 6.5
_SIGN = {"left": 1.0, "right": -1.0}


@dataclass(frozen=True)
class VertebraFrame:
    """A vertebra's measured frame and the depths of its canal (mm along ``posterior`` from ``origin``).

    ``points`` are the vertebra's voxel centres in local coordinates (left, posterior, superior).
    """

    level: str
    origin: np.ndarray
    left: np.ndarray
    posterior: np.ndarray
    superior: np.ndarray
    points: np.ndarray
    canal_front: float
    canal_back: float

    def world(self, local: np.ndarray) -> np.ndarray:
        local = np.asarray(local, dtype=np.float64)
        return self.origin + local[..., :1] * self.left + local[..., 1:2] * self.posterior + local[..., 2:3] * self.superior

    def local(self, world: np.ndarray) -> np.ndarray:
        offset = np.asarray(world, dtype=np.float64) - self.origin
        return np.stack([offset @ self.left, offset @ self.posterior, offset @ self.superior], axis=-1)


def _level_points(anatomy: Anatomy) -> dict[str, np.ndarray]:
    """World coordinates (n, 3) of each labelled level's voxels."""
    if anatomy.labels is None:
        raise SpinesimError("this anatomy has no label map, so landmarks cannot be derived from vertebra labels",
                            hint="import the CT with a label map of the vertebrae (--labels, e.g. from TotalSegmentator)")
    lookup = np.zeros(max((label.id for label in anatomy.label_table), default=0) + 1, dtype=np.int8)
    for index, level in enumerate(LEVELS, start=1):
        lookup[[label.id for label in anatomy.label_table if in_group(label.name, level)]] = index
    codes = lookup[anatomy.labels.array]
    found = {}
    for index, level in enumerate(LEVELS, start=1):
        ijk = np.argwhere(codes == index)
        if len(ijk) >= 50:
            found[level] = anatomy.labels.voxel_to_world(ijk)
    return found


def _canal(points: np.ndarray) -> tuple[float, float] | None:
    """Front and back of the widest midline gap in the bone, along the posterior axis (local mm)."""
    near = points[(np.abs(points[:, 0]) < MIDLINE_HALF_WIDTH_MM) & (np.abs(points[:, 2]) < 6.0), 1]
    if len(near) < 4:
        return None
    depth = np.sort(near)
    gaps = np.diff(depth)
    widest = int(np.argmax(gaps))
    if gaps[widest] < MIN_CANAL_MM:
        return None
    return float(depth[widest]), float(depth[widest + 1])


def vertebra_frames(anatomy: Anatomy) -> dict[str, VertebraFrame]:
    """The measured frame of every labelled level whose canal can be found (module docstring, 1-2)."""
    clouds = _level_points(anatomy)
    centroids = {level: points.mean(axis=0) for level, points in clouds.items()}
    if "S1" in clouds and len(clouds) > 1:
        # Only the top of the sacrum is the S1 segment.
        above = [lv for lv in LEVELS if lv in centroids and lv != "S1"][-1]
        axis = centroids[above] - centroids["S1"]
        axis /= np.linalg.norm(axis)
        height = clouds["S1"] @ axis
        clouds["S1"] = clouds["S1"][height >= height.max() - S1_SEGMENT_MM]
        centroids["S1"] = clouds["S1"].mean(axis=0)
    present = [level for level in LEVELS if level in clouds]
    frames = {}
    for index, level in enumerate(present):
        upper = centroids[present[max(index - 1, 0)]]
        lower = centroids[present[min(index + 1, len(present) - 1)]]
        superior = upper - lower if len(present) > 1 else np.array([0.0, 0.0, 1.0])
        superior /= np.linalg.norm(superior)
        posterior = np.array([0.0, 1.0, 0.0]) - superior[1] * superior
        posterior /= np.linalg.norm(posterior)
        left = np.cross(posterior, superior)
        origin = centroids[level]
        offset = clouds[level] - origin
        local = np.stack([offset @ left, offset @ posterior, offset @ superior], axis=1)
        canal = _canal(local)
        if canal is None:
            continue
        frames[level] = VertebraFrame(level, origin, left, posterior, superior, local, *canal)
    return frames


def _centroid(points: np.ndarray) -> np.ndarray | None:
    return points.mean(axis=0) if len(points) >= 3 else None


def _level_landmarks(frame: VertebraFrame) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Body, endplates, pedicles, spinous process tip and SAP-TP junctions of one vertebra (step 3)."""
    p, level = frame.points, frame.level
    landmarks: dict[str, np.ndarray] = {}
    body = p[p[:, 1] < frame.canal_front]
    body_center = body.mean(axis=0)
    landmarks[f"{level}.body.center"] = frame.world(body_center)
    column = body[np.hypot(body[:, 0] - body_center[0], body[:, 1] - body_center[1]) < 8.0]
    directions = {f"{level}.superior_endplate.normal": frame.superior.copy()}
    landmarks[f"{level}.superior_endplate.center"] = frame.world(
        np.array([body_center[0], body_center[1], column[:, 2].max()]))
    if level != "S1":
        directions[f"{level}.inferior_endplate.normal"] = -frame.superior
        landmarks[f"{level}.inferior_endplate.center"] = frame.world(
            np.array([body_center[0], body_center[1], column[:, 2].min()]))
    back = p[(np.abs(p[:, 0]) < MIDLINE_HALF_WIDTH_MM) & (p[:, 1] > frame.canal_back)]
    if len(back):
        landmarks[f"{level}.spinous_process.tip"] = frame.world(back[np.argmax(back[:, 1])])
    middle = 0.5 * (frame.canal_front + frame.canal_back)
    for side, sign in _SIGN.items():
        lateral = sign * p[:, 0]
        # Behind the body's posterolateral corners (its back wall is concave: laterally it reaches
        # further back than at the midline) and in front of the articular processes.
        pedicle = p[(p[:, 1] > frame.canal_front + PEDICLE_BAND_MM) & (p[:, 1] < middle + 2.0) & (lateral > 3.0)
                    & (lateral < 35.0)]
        centre = _centroid(pedicle)
        if centre is None:
            continue
        landmarks[f"{level}.pedicle.{side}.center"] = frame.world(centre)
        landmarks[f"{level}.pedicle.{side}.six_oclock"] = frame.world(_pedicle_bottom(pedicle, centre))
        junction = (_sap_ala_junction if level == "S1" else _sap_tp_junction)(p, centre, sign)
        if junction is not None:
            landmarks[f"{level}.SAP_TP_junction.{side}"] = frame.world(junction)
    return landmarks, directions


def _pedicle_bottom(pedicle: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The lowest point of the bone run that goes down from the pedicle's centre without a gap, at most
    :data:`PEDICLE_HALF_HEIGHT_MM` under the centre."""
    column = pedicle[np.hypot(pedicle[:, 0] - centre[0], pedicle[:, 1] - centre[1]) < 3.0]
    heights = np.sort(column[column[:, 2] <= centre[2], 2])[::-1]
    if len(heights) == 0:
        return centre.copy()
    steps = np.flatnonzero(np.diff(heights) < -GAP_MM)
    bottom = heights[steps[0]] if len(steps) else heights[-1]
    return np.array([centre[0], centre[1], max(bottom, centre[2] - PEDICLE_HALF_HEIGHT_MM)])


def _sap_tp_junction(p: np.ndarray, pedicle: np.ndarray, sign: float) -> np.ndarray | None:
    """The groove where the SAP's lateral wall meets the top of the transverse process.

    Seen from behind, the SAP stands out dorsally beside the pedicle and the transverse process lies
    deeper lateral to it: along the process's upper border, going out from the pedicle, the groove is
    where the dorsal bone surface first drops well below the SAP's.
    """
    lateral = sign * (p[:, 0] - pedicle[0])
    process = p[(lateral > 14.0) & (np.abs(p[:, 2] - pedicle[2]) < 15.0)]
    if len(process) < 3:
        return None
    top = float(np.percentile(process[:, 2], 90.0))
    band = p[(p[:, 2] > top - 4.0) & (p[:, 2] <= top + 1.0) & (lateral > -2.0) & (lateral < 35.0)]
    dorsal = _column_maxima(band, _columns(band, pedicle, sign), axis=1)
    sap_bin = _sap_column(dorsal)
    if sap_bin is None:
        return None
    for b in sorted(dorsal):
        if b > sap_bin and dorsal[b] < dorsal[sap_bin] - GROOVE_DROP_MM:
            return np.array([_column_x(pedicle, sign, b), dorsal[b], top - 2.0])
    return None


def _sap_ala_junction(p: np.ndarray, pedicle: np.ndarray, sign: float) -> np.ndarray | None:
    """The groove where the S1 SAP's base meets the sacral ala's upper border (the L5 dorsal ramus's).

    On AP the ala's upper border slopes down and out from the SAP's base: going out from the pedicle, the top
    of the bone in each 2 mm column falls steeply down the SAP's lateral face, then gently along the ala. The
    first column, :data:`GROOVE_DROP_MM` or more under the SAP's top, from which the top falls less than
    :data:`ALA_SLOPE_MAX` per millimetre to the next one (or the last) gives the ala's top. At that height the
    ala's back runs on in under the SAP's lateral part, nearly flat, and rises steeply into the SAP's base: the
    groove is the most medial column before that rise (more than :data:`ALA_SLOPE_MAX` per millimetre), on the
    ala's back.
    """
    lateral = sign * (p[:, 0] - pedicle[0])
    near = p[(lateral > -2.0) & (lateral < 40.0)]
    bins = _columns(near, pedicle, sign)
    tops = _column_maxima(near, bins, axis=2)
    order = sorted(tops)
    sap_bin = _sap_column(tops)
    if sap_bin is None:
        return None
    # (The last column has no next one: the S1 segment's cut, S1_SEGMENT_MM, may end the ala there.)
    ala = next((b for b, following in zip(order, order[1:] + [None]) if b > sap_bin
                and tops[b] < tops[sap_bin] - GROOVE_DROP_MM
                and (following is None or tops[b] - tops[following] < ALA_SLOPE_MAX * COLUMN_MM * (following - b))),
               None)
    if ala is None:
        return None
    height = tops[ala]
    in_band = (near[:, 2] > height - 3.0) & (near[:, 2] <= height + 1.0)
    dorsal = _column_maxima(near[in_band], bins[in_band], axis=1)
    groove = ala
    while (groove - 1 > sap_bin and groove - 1 in dorsal
           and dorsal[groove - 1] - dorsal[groove] < ALA_SLOPE_MAX * COLUMN_MM):
        groove -= 1
    return np.array([_column_x(pedicle, sign, groove), dorsal[groove], height])


def _columns(points: np.ndarray, pedicle: np.ndarray, sign: float) -> np.ndarray:
    """Each point's :data:`COLUMN_MM` column, counted outward from the pedicle (0 over its centre)."""
    return np.floor(sign * (points[:, 0] - pedicle[0]) / COLUMN_MM).astype(int)


def _column_maxima(points: np.ndarray, columns: np.ndarray, axis: int) -> dict[int, float]:
    """The largest coordinate ``axis`` of ``points`` in each of their ``columns``."""
    return {b: points[columns == b, axis].max() for b in np.unique(columns)}


def _sap_column(maxima: dict[int, float]) -> int | None:
    """The SAP's column: the one standing out most (highest ``maxima``) within 12 mm of the pedicle."""
    return max((b for b in sorted(maxima) if b * COLUMN_MM < 12.0), key=lambda b: maxima[b], default=None)


def _column_x(pedicle: np.ndarray, sign: float, column: int) -> float:
    """The x (mm) of ``column``'s centre."""
    return pedicle[0] + sign * (column + 0.5) * COLUMN_MM


def _interspace_landmarks(upper: VertebraFrame, lower: VertebraFrame, landmarks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Window, safe and Kambin triangles and facet joints between two vertebrae (step 4)."""
    found: dict[str, np.ndarray] = {}
    interspace = f"{upper.level}-{lower.level}"
    # Both vertebrae's bone in the upper one's frame.
    a, b = upper.points, upper.local(lower.world(lower.points))
    back_wall = 0.5 * (upper.canal_back + upper.local(lower.world(np.array([0.0, lower.canal_back, 0.0])))[1])

    def arch(points, low, high, side=None):
        lateral = points[:, 0] if side is None else _SIGN[side] * points[:, 0]
        keep = (points[:, 1] > low) & (points[:, 1] < high)
        # A side's articular processes lie clear of the spinous process (which a drooping one at T12 hangs
        # as low as the processes' tips, its flank 4-5 mm off the midline).
        keep &= (np.abs(lateral) < 8.0) if side is None else (lateral > MIDLINE_HALF_WIDTH_MM + 1.0) & (lateral < 35.0)
        return points[keep]

    lamina_above, lamina_below = arch(a, back_wall, back_wall + 10.0), arch(b, back_wall, back_wall + 10.0)
    if len(lamina_above) and len(lamina_below):
        bottom, top = lamina_above[:, 2].min(), lamina_below[:, 2].max()
        # The flavum spans the gap between the laminae's edges, which lie behind the canal's back wall
        # at mid-vertebra (the laminae slope back and down; on the real shapes by about 5 mm, so the
        # wall plus half the flavum put the centre in the canal): its centre is half-way between the
        # edges, at the mean depth of their bone.
        depth = 0.5 * (lamina_above[lamina_above[:, 2] <= bottom + LAMINA_EDGE_MM, 1].mean()
                       + lamina_below[lamina_below[:, 2] >= top - LAMINA_EDGE_MM, 1].mean())
        found[f"{interspace}.interlaminar_window.center"] = upper.world(
            np.array([0.0, depth, 0.5 * (bottom + top)]))
    middle = 0.5 * (upper.canal_front + upper.canal_back)
    upper_body = a[a[:, 1] < upper.canal_front]
    lower_body = b[b[:, 1] < upper.canal_front]
    disc_middle = 0.5 * (upper_body[:, 2].min() + (lower_body[:, 2].max() if len(lower_body) else upper_body[:, 2].min()))
    for side, sign in _SIGN.items():
        six = landmarks.get(f"{upper.level}.pedicle.{side}.six_oclock")
        if six is not None:
            local = upper.local(six)
            found[f"{interspace}.safe_triangle.{side}"] = upper.world(np.array([
                local[0] - sign * SAFE_TRIANGLE_MEDIAL_MM, upper.canal_front + 3.0,
                local[2] - SAFE_TRIANGLE_BELOW_PEDICLE_MM]))
        iap = arch(a, middle, upper.canal_back + 25.0, side)
        sap = arch(b, middle, upper.canal_back + 25.0, side)
        if len(iap) < 3 or len(sap) < 3:
            continue
        iap_tip = iap[iap[:, 2] <= iap[:, 2].min() + 4.0].mean(axis=0)
        sap_tip = sap[sap[:, 2] >= sap[:, 2].max() - 4.0].mean(axis=0)
        centre = 0.5 * (iap_tip + sap_tip)
        found[f"facet_joint.{interspace}.{side}.center"] = upper.world(centre)
        # The recess is the joint's lowest pocket, 1 mm above its lower end as in the generator. The
        # real shapes' processes overlap by only a few millimetres, so the lowest IAP bone lies near
        # the joint's middle, not its end: go down half a joint height (15 mm [ED], facets.py) instead.
        found[f"facet_joint.{interspace}.{side}.inferior_recess"] = upper.world(
            np.array([centre[0], centre[1], centre[2] - JOINT_HEIGHT_MM / 2.0 + 1.0]))
        # Kambin: behind the disc at mid-disc height, lateral to the pedicle line, where the SAP's
        # front edge is (§2.2b).
        pedicle = landmarks.get(f"{upper.level}.pedicle.{side}.center")
        if pedicle is not None:
            found[f"{interspace}.kambin_triangle.{side}"] = upper.world(np.array([
                upper.local(pedicle)[0] + sign * KAMBIN_LATERAL_MM, upper.canal_front + KAMBIN_BEHIND_BODY_MM,
                disc_middle]))
    return found


def landmarks_from_labels(anatomy: Anatomy) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(landmarks, directions) measured from the vertebra labels (module docstring).

    Raises
    ------
    SpinesimError
        If the anatomy has no label map or no vertebra whose canal can be found.
    """
    frames = vertebra_frames(anatomy)
    if not frames:
        raise SpinesimError("no labelled lumbar vertebra (T12-S1) with a spinal canal was found in the label map",
                            hint="the label map must name the vertebrae (L1 ... L5, S1 or sacrum), e.g. "
                                 "TotalSegmentator's vertebrae_L4 or VerSe's ids 20-24")
    landmarks: dict[str, np.ndarray] = {}
    directions: dict[str, np.ndarray] = {}
    for frame in frames.values():
        points, normals = _level_landmarks(frame)
        landmarks.update(points)
        directions.update(normals)
    for level, frame in frames.items():
        if level == "S1":
            continue
        below = level_below(level)
        if below in frames:
            landmarks.update(_interspace_landmarks(frame, frames[below], landmarks))
    return landmarks, directions


def with_label_landmarks(anatomy: Anatomy) -> Anatomy:
    """``anatomy`` itself if it has landmarks; otherwise a copy with those measured from its labels
    (``metadata["derived_landmarks"]`` then says they are approximate)."""
    if anatomy.landmarks:
        return anatomy
    landmarks, directions = landmarks_from_labels(anatomy)
    _facet_recesses_out_of_bone(anatomy, landmarks)
    metadata = dict(anatomy.metadata, derived_landmarks="approximate, measured from the vertebra labels")
    return replace(anatomy, landmarks=landmarks, directions=directions, metadata=metadata)



def _facet_recesses_out_of_bone(anatomy: Anatomy, landmarks: dict[str, np.ndarray], *, reach_mm: float = 8.0) -> None:
    """Move each estimated facet inferior recess that falls in bone by the CT's numbers (a joint space
    thinner than the voxels reads as bone) to the nearest voxel within ``reach_mm`` that is not bone
    and lies neither above nor in front of it (in LPS: z no greater, y no smaller): the recess is the
    capsule's inferior, dorsal pouch, which a needle enters from behind. One with no such voxel stays
    where it is."""
    classes, names = anatomy.tissue_map()
    is_bone = np.isin(names, sorted(BONE_TISSUES))
    grid = anatomy.ct
    radius = np.ceil(reach_mm / np.asarray(grid.spacing)).astype(int)
    offsets = np.stack(np.meshgrid(*[np.arange(-r, r + 1) for r in radius], indexing="ij"), axis=-1).reshape(-1, 3)
    shape = np.asarray(classes.shape)
    for name in [n for n in landmarks if n.endswith(".inferior_recess")]:
        centre = np.rint(grid.world_to_voxel(landmarks[name])).astype(int)
        if not np.all((centre >= 0) & (centre < shape)) or not is_bone[classes[tuple(centre)]]:
            continue
        voxels = centre + offsets
        voxels = voxels[np.all((voxels >= 0) & (voxels < shape), axis=1)]
        shift = grid.voxel_to_world(voxels) - landmarks[name]
        distance = np.linalg.norm(shift, axis=1)
        keep = ~is_bone[classes[tuple(voxels.T)]] & (distance <= reach_mm) & (shift[:, 1] >= 0) & (shift[:, 2] <= 0)
        if keep.any():
            landmarks[name] = landmarks[name] + shift[keep][np.argmin(distance[keep])]
