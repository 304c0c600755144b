"""Part labels, discs and the canal's contents of a spine labelled by whole vertebrae (an imported CT).

A CT segmented by TotalSegmentator or VerSe names each vertebra as a whole, and nothing of the
canal's soft tissue: a CT barely shows it. Targets, the Scotty-dog angle, safety rules and contrast
need the generated patient's structure names (``structures.py``), so :func:`with_label_parts`
derives them at import from the vertebra labels, the frames and the landmarks
:mod:`anatomy_models.label_landmarks` measured:

1. Parts. Each vertebra's voxels are split in its frame (left, posterior, superior; the canal's
   front and back along the midline): the body in front of the canal; the pedicles beside the
   canal's front half; the transverse processes lateral to the pedicles' outer wall; behind that,
   the articular column over the pedicle line is the superior articular process above the
   pedicle's centre and the inferior one below its six o'clock, the rest is lamina, and the bone
   behind the laminae near the midline the spinous process. The sacrum's S1 segment gets its body,
   pedicles, SAPs and alae; the rest of the sacrum stays ``S1``.
2. Discs, where the map has none: the unlabelled voxels between two bodies' endplates inside the
   bodies' outline, the inner half (slightly dorsal) nucleus, the rest annulus.
3. The canal's contents, drawn into the unlabelled voxels only (the CT keeps its numbers):
   ligamentum flavum across each interlaminar gap at the window's depth and its capsular part lining
   the front of each facet joint and the foramen's back wall (as the generator's
   ``spine.skeleton.capsular_flavum``); the dural sac (an ellipse
   of the published size, clinical.md §4.3, smaller in a narrow canal, a little ventral of the
   canal's centre and at least 1 mm behind the body wall) with its dura, CSF and the cord above
   the conus or the cauda equina below; exiting roots and their ganglia along the
   generator's course under each pedicle and out of the foramen (``spine/neural.py``), in their
   foraminal fat; the rest of the bony canal is epidural fat. A ``spinal_cord`` label from the map
   (TotalSegmentator's covers the whole thecal sac) is replaced by these.
4. The radicular arteries, one per foramen as on the generated patient (``spine/vessels.py``): around
   the body's waist, into the foramen antero-superiorly just under the pedicle (where a
   transforaminal needle aims, so a TFESI on an imported CT can meet one: vascular uptake,
   clinical.md §2.2 [S2]), along the root to the dura; through unlabelled tissue and fat only. No
   artery is made dominant (Adamkiewicz): a CT without contrast does not show which one it is.

Everything here is an estimate from the bone (a few millimetres, like the landmarks), and
``metadata["derived_parts"]`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from anatomy_models.anatomy import Anatomy
from anatomy_models.label_landmarks import S1_SEGMENT_MM, VertebraFrame, vertebra_frames
from anatomy_models.spine.neural import (ANTERIOR_EPIDURAL_MM, CORD_SEMI_AXES_MM, DURA_THICKNESS_MM, GANGLION_LENGTH_MM,
                                         ROOT_DIAMETER_MM)
from anatomy_models.spine.skeleton import (CAPSULAR_FLAVUM_FROM_WALL_MM, CAPSULAR_FLAVUM_REACH_MM,
                                           CAPSULAR_FLAVUM_STEP_MM, capsular_lining)
from anatomy_models.spine.vessels import CONNECTED_RADIUS_VOXELS, RADICULAR_RADIUS_MM
from anatomy_models.structures import LEVELS, Label, LabelTable, in_group, interspace
from anatomy_models.volume import Volume

# The pedicle's width (mm), for the exiting root's course beside and under it (as spine/neural.py) [ED].
PEDICLE_WIDTH_MM = 10.0
# The pedicle and the articular processes reach this far lateral of the canal's wall (mm); the
# transverse process lies beyond. Set on the generated patient, whose parts this split matches best
# at 17 mm (tests/anatomy_models/test_label_parts.py) [ED].
ARTICULAR_COLUMN_MM = 17.0
# The canal's half-width where no pedicle wall is found (mm): clinical.md §4.3 [ED] 22-28 mm wide.
CANAL_HALF_WIDTH_MM = 12.0
# The bone behind the laminae's junction this far (mm) and near the midline is the spinous process.
SPINOUS_BEHIND_CANAL_MM = 8.0
# Bone nearer the midline than this (mm) is the spinous process or the arch, not a side's part.
MIDLINE_HALF_WIDTH_MM = 5.0
# The dural sac's semi-axes (transverse, AP; mm): the ellipse 16 x 12 mm, clinical.md §4.3 [ED] (an
# area of 151 mm², the controls' 151.7 mm² at L4-L5 [S72]), smaller where the canal is.
SAC_SEMI_AXES_MM = (8.0, 6.0)
# The sac's centre lies this far (mm) ventral of the canal's centre: clinical.md §4.3 [ED] 1-2 mm.
SAC_VENTRAL_SHIFT_MM = 1.5
# The dorsal epidural fat the sac leaves at least (mm): 4-6 mm mid-lumbar, clinical.md §4.5 [S91][S92].
DORSAL_EPIDURAL_MM = 4.0
# Ligamentum flavum thickness (mm): 3.2-3.7 mm, L2-L3 to L5-S1 (clinical.md §4.5 [S89]).
FLAVUM_THICKNESS_MM = 3.6
# The conus ends at the L1-L2 disc (its mode, clinical.md §4.8 [S50][S51]): the cord above, the
# cauda equina below.
CORD_LEVELS = ("T12", "L1")
# Foraminal fat around an exiting root and its ganglion, beyond the nerve's surface (mm) [ED].
FORAMINAL_FAT_MM = 3.0
# The nucleus: the inner part of the disc's outline (fraction of its semi-axes), a little dorsal [ED].
NUCLEUS_FRACTION = 0.55
NUCLEUS_DORSAL_SHIFT = 0.1
_SIGN = {"left": 1.0, "right": -1.0}


@dataclass(frozen=True)
class _Box:
    """A block of the grid and its voxels' coordinates (float32 arrays of the block's shape): world
    (LPS mm) and local in a vertebra's frame (left, posterior, superior)."""

    index: tuple[slice, slice, slice]
    world: tuple[np.ndarray, np.ndarray, np.ndarray]
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray


def _affine_field(axes: list[np.ndarray], matrix: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, ...]:
    """``matrix @ ijk + offset`` over the block spanned by ``axes``, one float32 array per row
    (an outer sum: far faster than a matrix product over every voxel)."""
    i, j, k = (a.astype(np.float32) for a in axes)
    return tuple(np.float32(row[0]) * i[:, None, None] + np.float32(row[1]) * j[None, :, None]
                 + np.float32(row[2]) * k[None, None, :] + np.float32(shift) for row, shift in zip(matrix, offset))


def _box(grid: Volume, frame: VertebraFrame, low_mm: np.ndarray, high_mm: np.ndarray) -> _Box:
    """The grid's voxels in the world box ``low_mm``-``high_mm`` (LPS), with their frame coordinates."""
    corners = np.array([[a[0], b[1], c[2]] for a in (low_mm, high_mm) for b in (low_mm, high_mm)
                        for c in (low_mm, high_mm)])
    ijk = grid.world_to_voxel(corners)
    low = np.clip(np.floor(ijk.min(axis=0)).astype(int), 0, None)
    high = np.maximum(np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 1, grid.shape), low)
    index = tuple(slice(int(a), int(b)) for a, b in zip(low, high))
    axes = [np.arange(a, b) for a, b in zip(low, high)]
    linear, shift = grid.affine[:3, :3], grid.affine[:3, 3]
    rotation = np.stack([frame.left, frame.posterior, frame.superior])
    world = _affine_field(axes, linear, shift)
    local = _affine_field(axes, rotation @ linear, rotation @ (shift - frame.origin))
    return _Box(index, world, *local)


def _around(grid: Volume, frame: VertebraFrame, radius_mm: float) -> _Box:
    """The box ``radius_mm`` around the frame's origin."""
    return _box(grid, frame, frame.origin - radius_mm, frame.origin + radius_mm)


def _canal_half_width(frame: VertebraFrame, side: str) -> float:
    """The distance from the midline to the pedicle's inner wall at the canal's mid-depth (mm)."""
    p = frame.points
    middle = 0.5 * (frame.canal_front + frame.canal_back)
    lateral = _SIGN[side] * p[:, 0]
    wall = p[(np.abs(p[:, 1] - middle) < 3.0) & (np.abs(p[:, 2]) < 8.0) & (lateral > 2.0), 0]
    return float(np.abs(wall).min()) if len(wall) else CANAL_HALF_WIDTH_MM


def _segment_distance(world: tuple[np.ndarray, ...], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance (mm) of each voxel of a box (its world coordinates) to the segment a-b."""
    ab = b - a
    rel = [w - np.float32(p) for w, p in zip(world, a)]
    t = np.clip(sum(r * np.float32(d) for r, d in zip(rel, ab)) / np.float32(max(float(ab @ ab), 1e-9)), 0.0, 1.0)
    return np.sqrt(sum((r - t * np.float32(d)) ** 2 for r, d in zip(rel, ab)))


def _chain_distance(world: tuple[np.ndarray, ...], path: list[np.ndarray]) -> np.ndarray:
    return np.min([_segment_distance(world, a, b) for a, b in zip(path[:-1], path[1:])], axis=0)


class _Painter:
    """The label array being filled and its table: paints names into unlabelled voxels only."""

    def __init__(self, anatomy: Anatomy) -> None:
        self.table = LabelTable(anatomy.label_table)
        self.array = anatomy.labels.array.astype(np.uint16)
        self.grid = anatomy.labels

    def id_of(self, name: str, tissue: str) -> int:
        return self.table.by_name(name).id if name in self.table else self.table.add(name, tissue).id

    def paint(self, box: _Box, keep: np.ndarray, name: str, tissue: str, *, only: np.ndarray | None = None) -> int:
        """Label ``name`` where ``keep`` holds in ``box`` and the voxel is unlabelled (or in ``only``'s ids)."""
        block = self.array[box.index]
        free = block == 0 if only is None else np.isin(block, only)
        target = keep & free
        if target.any():
            block[target] = self.id_of(name, tissue)
        return int(target.sum())


def _split_vertebra(painter: _Painter, anatomy: Anatomy, frame: VertebraFrame) -> None:
    """Relabel one whole-vertebra label's voxels into its parts (module docstring, 1)."""
    level = frame.level
    whole = [label.id for label in painter.table if label.name == level]
    if not whole or any(label.name.startswith(level + ".") for label in painter.table):
        return
    voxels = np.argwhere(np.isin(painter.array, whole))
    x, y, z = frame.local(painter.grid.voxel_to_world(voxels)).T
    mine = np.ones(len(voxels), dtype=bool)
    if level == "S1":
        # Only the S1 segment is split: the sacrum's top S1_SEGMENT_MM along the spine.
        mine &= z >= frame.points[:, 2].max() - S1_SEGMENT_MM
    middle = 0.5 * (frame.canal_front + frame.canal_back)
    parts: list[tuple[str, np.ndarray]] = [(f"{level}.body", y < frame.canal_front)]
    for side, sign in _SIGN.items():
        wall = _canal_half_width(frame, side)
        pedicle = anatomy.landmarks.get(f"{level}.pedicle.{side}.center")
        six = anatomy.landmarks.get(f"{level}.pedicle.{side}.six_oclock")
        pedicle_z = frame.local(pedicle)[2] if pedicle is not None else 0.0
        six_z = frame.local(six)[2] if six is not None else pedicle_z - 5.0
        lateral = sign * x
        this_side = lateral > (0.0 if side == "left" else -1e-6)
        outer = wall + ARTICULAR_COLUMN_MM
        behind_body = (y >= frame.canal_front) & this_side
        lateral_part = "ala" if level == "S1" else "transverse_process"
        parts.append((f"{level}.{lateral_part}.{side}", behind_body & (lateral > outer) if level != "S1"
                      else this_side & (lateral > outer)))
        parts.append((f"{level}.pedicle.{side}", behind_body & (lateral <= outer) & (y < middle + 2.0)))
        column = behind_body & (y >= middle + 2.0) & (lateral > wall - 2.0) & (lateral <= outer)
        parts.append((f"{level}.SAP.{side}", column & (z > pedicle_z)))
        if level != "S1":
            parts.append((f"{level}.IAP.{side}", column & (z < six_z)))
            spinous = (np.abs(x) < MIDLINE_HALF_WIDTH_MM) & (y > frame.canal_back + SPINOUS_BEHIND_CANAL_MM)
            parts.append((f"{level}.spinous_process", behind_body & spinous))
            parts.append((f"{level}.lamina.{side}", behind_body & (y >= middle + 2.0)))
    tissue = painter.table.by_name(level).tissue
    for name, where in parts:
        target = mine & where
        if target.any():
            painter.array[tuple(voxels[target].T)] = painter.id_of(name, tissue)
            mine &= ~target


def _body_outline(frame: VertebraFrame) -> tuple[np.ndarray, np.ndarray]:
    """Centre and semi-axes (x, y; local mm) of the vertebral body seen from above."""
    body = frame.points[frame.points[:, 1] < frame.canal_front][:, :2]
    low, high = np.percentile(body, 3.0, axis=0), np.percentile(body, 97.0, axis=0)
    return 0.5 * (low + high), 0.5 * (high - low)


def _disc(painter: _Painter, anatomy: Anatomy, upper: VertebraFrame, lower: VertebraFrame) -> None:
    """Annulus and nucleus between two bodies, where the map has no disc there (module docstring, 2)."""
    name = f"{upper.level}-{lower.level}.disc"
    top = anatomy.landmarks.get(f"{upper.level}.inferior_endplate.center")
    bottom = anatomy.landmarks.get(f"{lower.level}.superior_endplate.center")
    if top is None or bottom is None or any(in_group(label.name, name) for label in painter.table):
        return
    centre, axes = _body_outline(upper)
    box = _around(painter.grid, upper, 60.0)
    between = (_plane(box, top, -upper.superior) >= -1.0) & (_plane(box, bottom, lower.superior) >= -1.0)
    radius = np.hypot((box.x - centre[0]) / axes[0], (box.y - centre[1]) / axes[1])
    nucleus = np.hypot((box.x - centre[0]) / axes[0], (box.y - centre[1] - NUCLEUS_DORSAL_SHIFT * axes[1]) / axes[1])
    between &= np.abs(box.z) < 60.0
    painter.paint(box, between & (nucleus < NUCLEUS_FRACTION), f"{name}.nucleus", "disc_nucleus")
    painter.paint(box, between & (radius <= 1.0), f"{name}.annulus", "disc_annulus")


def _plane(box: _Box, point: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Signed distance (mm) of the box's voxels from the plane through ``point`` with unit ``normal``."""
    return sum((w - np.float32(p)) * np.float32(n) for w, p, n in zip(box.world, point, normal))


@dataclass(frozen=True)
class _Canal:
    """A level's canal in its frame: the pedicles' walls, the sac's centre and semi-axes (mm)."""

    wall_left: float
    wall_right: float
    sac_y: float
    sac_axes: tuple[float, float]
    back: float


def _canal(frame: VertebraFrame, dorsal_limit: float) -> _Canal:
    """The canal of one level; ``dorsal_limit`` is the flavum's front below it (local depth, mm), where
    the canal reaches further back than under the laminae (the dorsal epidural space's saw-tooth,
    clinical.md §4.5 [S91])."""
    walls = [_canal_half_width(frame, side) for side in _SIGN]
    back = max(frame.canal_back, dorsal_limit)
    depth = back - frame.canal_front
    ay = float(np.clip((depth - ANTERIOR_EPIDURAL_MM - DORSAL_EPIDURAL_MM) / 2.0, 2.0, SAC_SEMI_AXES_MM[1]))
    ax = float(np.clip(min(walls) - 2.0, 3.0, SAC_SEMI_AXES_MM[0]))
    # Centred SAC_VENTRAL_SHIFT_MM ventral of the canal's centre (clinical.md §4.3 [ED]), never nearer
    # the body than the ventral epidural space allows; under the laminae the bone cuts it.
    sac_y = max(frame.canal_front + ANTERIOR_EPIDURAL_MM + ay, frame.canal_front + depth / 2.0 - SAC_VENTRAL_SHIFT_MM)
    return _Canal(walls[0], walls[1], sac_y, (ax, ay), back)


def _flavum(painter: _Painter, upper: VertebraFrame, lower: VertebraFrame, canal: _Canal,
            window: np.ndarray | None) -> float | None:
    """The ligamentum flavum across the interlaminar gap (a slab at the window's depth, between the
    laminae's edges): returns the slab's front (local depth, mm) or None without a window."""
    if window is None:
        return None
    spacing = float(np.min(painter.grid.spacing))
    half = max(FLAVUM_THICKNESS_MM, spacing) / 2.0
    centre = upper.local(window)
    b = upper.local(lower.world(lower.points))
    lamina_below = b[(b[:, 1] > canal.back - 2.0) & (np.abs(b[:, 0]) < 8.0)]
    lamina_above = upper.points[(upper.points[:, 1] > canal.back - 2.0) & (np.abs(upper.points[:, 0]) < 8.0)]
    if not len(lamina_below) or not len(lamina_above):
        return None
    low, high = lamina_below[:, 2].max() - 3.0, lamina_above[:, 2].min() + 3.0
    box = _around(painter.grid, upper, 60.0)
    # The flavum runs from the midline out to the facet capsules, curving forward (a V seen from above).
    depth = centre[1] - 0.25 * np.maximum(np.abs(box.x) - MIDLINE_HALF_WIDTH_MM, 0.0)
    keep = (np.abs(box.y - depth) <= half) & (box.z >= low) & (box.z <= high)
    keep &= (box.x < canal.wall_left + 3.0) & (-box.x < canal.wall_right + 3.0)
    painter.paint(box, keep, f"ligamentum_flavum.{upper.level}-{lower.level}", "ligament")
    return float(centre[1] - half)


def _capsular_flavum(painter: _Painter, anatomy: Anatomy, upper: VertebraFrame, lower: VertebraFrame,
                     side: str) -> int:
    """The flavum's capsular part on ``side`` of ``upper``-``lower``, drawn as the generator draws it
    (:func:`anatomy_models.spine.skeleton.capsular_flavum`): a sheet on the front of the first bone
    of either vertebra behind the foramen, from the canal's side out to the upper pedicle's lateral
    wall (above the upper body's lower endplate; to the pedicle's middle below it, clear of Kambin's
    triangle), from the upper pedicle's six o'clock down to the lower pedicle's top. Returns the
    voxels painted (none without the pedicle landmarks)."""
    names = [f"{level}.pedicle.{side}.{point}" for level in (upper.level, lower.level)
             for point in ("center", "six_oclock")]
    endplate = anatomy.landmarks.get(f"{upper.level}.inferior_endplate.center")
    if endplate is None or any(name not in anatomy.landmarks for name in names):
        return 0
    centre, six, lower_centre, lower_six = (upper.local(anatomy.landmarks[name]) for name in names)
    s, step = _SIGN[side], CAPSULAR_FLAVUM_STEP_MM
    middle = abs(centre[0])
    u = np.arange(_canal_half_width(upper, side), middle + PEDICLE_WIDTH_MM / 2.0 + step / 2.0, step)
    lower_top = 2.0 * lower_centre[2] - lower_six[2]  # the pedicle's top, as far above its centre as six is below
    w = np.arange(lower_top, six[2] + step / 2.0, step)
    v = np.arange(upper.canal_front + CAPSULAR_FLAVUM_FROM_WALL_MM,
                  upper.canal_front + CAPSULAR_FLAVUM_FROM_WALL_MM + CAPSULAR_FLAVUM_REACH_MM, step)
    if len(u) < 2 or len(w) < 2:
        return 0
    uu, vv, ww = np.meshgrid(s * u, v, w, indexing="ij")
    world = upper.world(np.stack([uu, vv, ww], axis=-1))
    ijk = np.rint(painter.grid.world_to_voxel(world.reshape(-1, 3))).astype(int)
    inside_grid = np.all((ijk >= 0) & (ijk < np.array(painter.array.shape)), axis=1)
    ids = [label.id for label in painter.table 
           if in_group(label.name, upper.level) or in_group(label.name, lower.level)]
    codes = np.zeros(len(ijk), dtype=np.uint16)
    codes[inside_grid] = painter.array[tuple(ijk[inside_grid].T)]
    below_body = (u[:, None] > middle) & (w[None, :] < upper.local(endplate)[2])
    lined = capsular_lining(np.isin(codes, ids).reshape(uu.shape), v, step, below_body)
    if lined is None:
        return 0
    surface, edge = lined
    thickness = max(FLAVUM_THICKNESS_MM, float(np.min(painter.grid.spacing)))
    corners = upper.world(np.array([[s * a, b, c] for a in u[[0, -1]] for b in v[[0, -1]] for c in w[[0, -1]]]))
    box = _box(painter.grid, upper, corners.min(axis=0) - thickness, corners.max(axis=0) + thickness)
    index = [(s * box.x - u[0]) / step, (box.z - w[0]) / step]
    at = [i.ravel() for i in index]
    back = ndimage.map_coordinates(surface, at, order=1, mode="nearest").reshape(box.x.shape)
    within = ndimage.map_coordinates(edge, at, order=1, mode="nearest").reshape(box.x.shape) < 0
    within &= (index[0] >= 0) & (index[0] <= len(u) - 1) & (index[1] >= 0) & (index[1] <= len(w) - 1)
    keep = within & (box.y <= back) & (box.y >= back - thickness)
    return painter.paint(box, keep, f"ligamentum_flavum.{upper.level}-{lower.level}", "ligament")


def _sac_and_canal(painter: _Painter, frame: VertebraFrame, canal: _Canal, z_range: tuple[float, float]) -> None:
    """The dural sac (dura, CSF, cord or cauda) and the epidural fat of one level's stretch of canal."""
    box = _around(painter.grid, frame, 60.0)
    x, y, z = box.x, box.y, box.z
    stretch = (z >= z_range[0]) & (z < z_range[1])
    ax, ay = canal.sac_axes
    sac = np.hypot(x / ax, (y - canal.sac_y) / ay)
    spacing = float(np.min(painter.grid.spacing))
    inner = 1.0 - max(DURA_THICKNESS_MM, 0.5 * spacing) / min(ax, ay)
    if frame.level in CORD_LEVELS:
        cord = np.hypot(x / CORD_SEMI_AXES_MM[0], (y - canal.sac_y) / CORD_SEMI_AXES_MM[1])
        painter.paint(box, stretch & (cord <= 1.0) & (sac < inner), "spinal_cord", "spinal_cord")
    else:
        # The roots lie in the sac's ventral half (prone, they sink; and they gather toward the exits).
        cauda = np.hypot(x / (0.6 * ax), (y - canal.sac_y + 0.35 * ay) / (0.45 * ay))
        painter.paint(box, stretch & (cauda <= 1.0) & (sac < inner), "cauda_equina", "nerve")
    painter.paint(box, stretch & (sac < inner), "dural_sac.csf", "csf")
    painter.paint(box, stretch & (sac <= 1.0), "dural_sac.dura", "dura")
    # The bony canal: the pedicles' walls and from the body's back wall to the laminae (or the flavum).
    middle = 0.5 * (frame.canal_front + frame.canal_back)
    half_depth = np.where(y < middle, middle - frame.canal_front, canal.back - middle)
    wall = np.where(x >= 0.0, canal.wall_left, canal.wall_right) + 1.0
    inside = np.hypot(x / wall, (y - middle) / half_depth) <= 1.0
    painter.paint(box, stretch & inside, "epidural_space", "fat")


def _root_path(frame: VertebraFrame, canal: _Canal, side: str, pedicle: np.ndarray,
               six: np.ndarray) -> list[np.ndarray]:
    """World points of the root exiting under this pedicle: sac, lateral recess, ganglion in the
    foramen, out and down in front of the transverse process (as ``neural.exiting_root_path``)."""
    s = _SIGN[side]
    px, pz, six_z = abs(frame.local(pedicle)[0]), frame.local(pedicle)[2], frame.local(six)[2]
    wall = canal.wall_left if side == "left" else canal.wall_right
    front = frame.canal_front
    local = [np.array([s * (canal.sac_axes[0] - 1.0), canal.sac_y - 1.5, pz + 3.0]),
             np.array([s * (wall + 1.0), front + 3.0, six_z - 4.5]),
             np.array([s * (px + 0.25 * PEDICLE_WIDTH_MM), front + 1.5, six_z - 7.5]),
             np.array([s * (px + PEDICLE_WIDTH_MM / 2.0 + 10.0), front - 6.0, six_z - 17.0]),
             np.array([s * (px + PEDICLE_WIDTH_MM / 2.0 + 20.0), front - 16.0, six_z - 32.0])]
    return [frame.world(p) for p in local]


def _root(painter: _Painter, frame: VertebraFrame, canal: _Canal, side: str, path: list[np.ndarray]) -> None:
    """Root, ganglion and the foraminal fat around them."""
    spacing = float(np.min(painter.grid.spacing))
    radius = max(ROOT_DIAMETER_MM[frame.level] / 2.0, 0.75 * spacing)
    reach = radius + FORAMINAL_FAT_MM + 1.0
    box = _box(painter.grid, frame, np.min(path, axis=0) - reach, np.max(path, axis=0) + reach)
    direction = (path[3] - path[2]) / np.linalg.norm(path[3] - path[2])
    ganglion = [path[2] - direction * GANGLION_LENGTH_MM / 4.0, path[2] + direction * GANGLION_LENGTH_MM * 0.75]
    name = f"{frame.level}.{side}"
    painter.paint(box, _chain_distance(box.world, ganglion) <= radius + 0.8, f"dorsal_root_ganglion.{name}", "nerve")
    distance = _chain_distance(box.world, path)
    painter.paint(box, distance <= radius, f"nerve_root.{name}", "nerve")
    # Foraminal fat only from the recess out of the foramen (the root's course in the canal is
    # already in the canal's epidural fat; past the foramen it runs in the psoas).
    painter.paint(box, _chain_distance(box.world, path[1:4]) <= radius + FORAMINAL_FAT_MM, "epidural_space", "fat")


def _artery_path(frame: VertebraFrame, canal: _Canal, side: str, pedicle: np.ndarray, six: np.ndarray,
                 radius_mm: float) -> list[np.ndarray]:
    """World points of the radicular artery of the foramen under this pedicle, as the generator's
    (``spine/vessels.py``): around the body's waist (the segmental artery), into the foramen
    antero-superiorly just under the pedicle, along the root to the canal's wall and the dural sac
    (clinical.md §2.2 [S2]). Where it runs beside bone it keeps its ``radius_mm`` clear of it (the
    generator's 1.5 and 3 mm at least), so that a coarse grid does not cut it into pieces."""
    s = _SIGN[side]
    clear = max(1.5, radius_mm + 0.5)
    (centre_x, centre_y), (half_width, half_depth) = _body_outline(frame)
    body = frame.points[frame.points[:, 1] < frame.canal_front]
    waist_z = float(np.median(body[:, 2])) - 0.2 * float(np.ptp(body[:, 2])) / 2.0
    pedicle_x, bottom = abs(frame.local(pedicle)[0]), frame.local(six)[2]
    wall = canal.wall_left if side == "left" else canal.wall_right
    local = [np.array([centre_x + s * (0.9 * half_width + clear), centre_y - 0.2 * half_depth, waist_z]),
             np.array([s * (pedicle_x + PEDICLE_WIDTH_MM / 2.0 + 1.5 + clear), frame.canal_front - 1.5,
                       bottom - clear]),
             np.array([s * (wall + 1.5), frame.canal_front + 1.0, bottom - 2.5]),
             np.array([s * (canal.sac_axes[0] + 0.3), canal.sac_y - 2.0, bottom - 2.5])]
    return [frame.world(p) for p in local]


def _artery_radius(grid: Volume) -> float:
    return max(RADICULAR_RADIUS_MM, CONNECTED_RADIUS_VOXELS * float(np.min(grid.spacing)))


def _artery(painter: _Painter, frame: VertebraFrame, side: str, path: list[np.ndarray]) -> None:
    """The radicular artery along ``path``, at least as thick as keeps it one connected run of voxels
    (``spine/vessels.py``): through the unlabelled tissue, the epidural and foraminal fat and, where it
    runs along them in one voxel, the root and its ganglion (as on the generated patient, where the
    artery is drawn over them); never through bone or the dura."""
    radius = _artery_radius(painter.grid)
    box = _box(painter.grid, frame, np.min(path, axis=0) - radius - 1.0, np.max(path, axis=0) + radius + 1.0)
    crossed = [label.id for label in painter.table if label.name == "epidural_space"
               or label.name.startswith(("nerve_root.", "dorsal_root_ganglion."))]
    painter.paint(box, _chain_distance(box.world, path) <= radius, f"radicular_artery.{frame.level}.{side}", "blood",
                  only=np.array([0, *crossed]))


def _stretches(frames: dict[str, VertebraFrame]) -> dict[str, tuple[float, float]]:
    """Each level's stretch of canal along its own superior axis: half-way to its neighbours."""
    present = [level for level in LEVELS if level in frames]
    stretches = {}
    for index, level in enumerate(present):
        frame = frames[level]
        heights = frame.points[:, 2]
        top, bottom = float(heights.max()), float(heights.min())
        if index > 0:
            top = 0.5 * float(frame.local(frames[present[index - 1]].origin)[2])
        if index + 1 < len(present):
            bottom = 0.5 * float(frame.local(frames[present[index + 1]].origin)[2])
        stretches[level] = (bottom, top)
    return stretches


def with_label_parts(anatomy: Anatomy) -> Anatomy:
    """``anatomy`` with the parts, discs and canal contents derived from its vertebra labels
    (module docstring); as it is if it already has a dural sac or no vertebra frame can be measured.

    The anatomy must have its landmarks (:func:`anatomy_models.label_landmarks.with_label_landmarks`).
    """
    if anatomy.labels is None or "dural_sac" in {label.name.split(".")[0] for label in anatomy.label_table}:
        return anatomy
    frames = vertebra_frames(anatomy)
    if not frames:
        return anatomy
    painter = _Painter(anatomy)
    # TotalSegmentator's "spinal_cord" is the whole canal content at CT resolution (sac and cord
    # alike, down into the cauda's levels): it is drawn again from the canal, cord above the conus only.
    painter.array[np.isin(painter.array, [label.id for label in painter.table if label.name == "spinal_cord"])] = 0
    present = [level for level in LEVELS if level in frames]
    for level in present:
        _split_vertebra(painter, anatomy, frames[level])
    pairs = list(zip(present[:-1], present[1:]))
    for upper, lower in pairs:
        if interspace(upper) == f"{upper}-{lower}":
            _disc(painter, anatomy, frames[upper], frames[lower])
    dorsal = {level: -np.inf for level in present}
    for upper, lower in pairs:
        window = anatomy.landmarks.get(f"{upper}-{lower}.interlaminar_window.center")
        front = _flavum(painter, frames[upper], frames[lower], _canal(frames[upper], -np.inf), window)
        if front is not None:
            dorsal[upper] = front
        for side in _SIGN:
            _capsular_flavum(painter, anatomy, frames[upper], frames[lower], side)
    canals = {level: _canal(frames[level], dorsal[level]) for level in present}
    for upper, lower in pairs:
        for side in _SIGN:
            pedicle = anatomy.landmarks.get(f"{upper}.pedicle.{side}.center")
            six = anatomy.landmarks.get(f"{upper}.pedicle.{side}.six_oclock")
            if pedicle is not None and six is not None and upper in ROOT_DIAMETER_MM:
                path = _root_path(frames[upper], canals[upper], side, pedicle, six)
                _root(painter, frames[upper], canals[upper], side, path)
    for level, stretch in _stretches(frames).items():
        _sac_and_canal(painter, frames[level], canals[level], stretch)
    # The radicular arteries last: they run through the foraminal and epidural fat to the dura.
    for upper, _lower in pairs:
        for side in _SIGN:
            pedicle = anatomy.landmarks.get(f"{upper}.pedicle.{side}.center")
            six = anatomy.landmarks.get(f"{upper}.pedicle.{side}.six_oclock")
            if pedicle is not None and six is not None:
                path = _artery_path(frames[upper], canals[upper], side, pedicle, six, _artery_radius(painter.grid))
                _artery(painter, frames[upper], side, path)
    labels = anatomy.labels.with_array(painter.array)
    used = set(np.unique(painter.array).tolist())
    table = LabelTable(Label(label.id, label.name, label.tissue) for label in painter.table
                       if label.id in used or label.name not in _derived_names(painter.table, anatomy.label_table))
    metadata = dict(anatomy.metadata, derived_parts="approximate, drawn from the vertebra labels: parts, discs, "
                                                    "ligamentum flavum, dural sac, roots, epidural fat and "
                                                    "radicular arteries")
    return replace(anatomy, label_table=table, labels=labels, metadata=metadata)


def _derived_names(table: LabelTable, original: LabelTable) -> set[str]:
    return {label.name for label in table} - {label.name for label in original}
