"""Measure a spine's label map like a radiologist would, and compare with the reference tables.

Every number here comes from the voxels (with sub-voxel edges from trilinear interpolation of each
structure's mask), never from the generator's parameters; landmarks only say where to look (which
level, which side), as a reader picks the slice. The references are clinical.md §4 (via
:mod:`anatomy_models.spine.morphometry`), scaled to the anatomy's size and sex, and §4.9 [S98] for
the skin-to-epidural depth at the anatomy's BMI.

``spinesim anatomy measure NAME`` prints the table.

Examples
--------
>>> from anatomy_models.spine import SpineParameters
>>> from anatomy_models.store import generated_anatomy  # the generated patient, kept under SPINESIM_HOME
>>> table = measure_spine(generated_anatomy(SpineParameters(spacing_mm=2.0, field_of_view="spine")))
>>> row = next(m for m in table if m.name == "canal AP" and m.level == "L3")
>>> abs(row.error_fraction) < 0.2, row.unit
(True, 'mm')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.spine.alignment import natural_asymmetry, scaled_vertebra
from anatomy_models.spine.morphometry import INTERSPACES, epidural_depth_mm
from anatomy_models.spine.parameters import SpineParameters
from anatomy_models.spine.skeleton import WINDOW_LINE_OFFSET_MM
from anatomy_models.volume import Volume

LUMBAR = ("L1", "L2", "L3", "L4", "L5")
LUMBAR_INTERSPACES = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")
STEP_MM = 0.1
# Published references beyond the generator's tables. Spinous process height: the mean over L2-L5 of
# the 87 patients of Clouthier et al., J Biomech 2023 (the shape model the vertebrae are built from;
# anatomy_models/spine/shapes/README.md), 23.5 mm, range 16.6-31.0. Interspinous gaps: the
# morphometry table's (their sources there).
SPINOUS_PROCESS_HEIGHT_MM = 23.5
INTERSPINOUS_GAP_MM = {name: ref.interspinous_gap_mm for name, ref in INTERSPACES.items() if ref.interspinous_gap_mm}


@dataclass(frozen=True)
class Measurement:
    """One measured quantity next to its reference value."""

    name: str
    level: str
    value: float
    reference: float
    unit: str
    source: str

    @property
    def error_fraction(self) -> float:
        """(measured - reference) / reference."""
        return (self.value - self.reference) / self.reference


class MaskSampler:
    """Trilinear samples of one structure's mask (0 outside, 1 inside), cropped to where it is."""

    def __init__(self, anatomy: Anatomy, group: str) -> None:
        box, mask = _mask(anatomy, group)
        box = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in box)
        _, mask = _mask(anatomy, group, box)
        self.volume = Volume(mask.astype(np.float32), anatomy.labels.sub_volume(*box).affine)

    @classmethod
    def of_mask(cls, anatomy: Anatomy, mask: np.ndarray, points: np.ndarray) -> MaskSampler:
        """A sampler of any boolean mask on the label grid, cropped around ``points`` (shape (n, 3))."""
        ijk = anatomy.labels.world_to_voxel(points)
        low = np.clip(np.floor(ijk.min(axis=0)).astype(int) - 2, 0, mask.shape)
        high = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 3, 0, mask.shape)
        box = tuple(slice(a, b) for a, b in zip(low, high))
        sampler = cls.__new__(cls)
        sampler.volume = Volume(mask[box].astype(np.float32), anatomy.labels.sub_volume(*box).affine)
        return sampler

    def __call__(self, points: np.ndarray) -> np.ndarray:
        return self.volume.sample(points, order=1, fill=0.0)


def _mask(anatomy: Anatomy, group: str, box: tuple[slice, ...] | None = None) -> tuple[tuple[slice, ...], np.ndarray]:
    """(index box, mask of ``group`` inside it); the box defaults to the group's own bounding box.

    The label map's per-label boxes are found once per anatomy, so a mask costs only its box.
    """
    cache = anatomy.__dict__.setdefault("_measure_boxes", {})
    if "objects" not in cache:
        cache["objects"] = ndimage.find_objects(anatomy.labels.array)
    ids = anatomy.label_table.ids_in_group(group)
    if box is None:
        found = [cache["objects"][i - 1] for i in ids if i - 1 < len(cache["objects"]) and cache["objects"][i - 1]]
        if not found:
            raise SpinesimError(f"structure {group!r} has no voxels to measure")
        box = tuple(slice(min(b[a].start for b in found), max(b[a].stop for b in found)) for a in range(3))
    return box, np.isin(anatomy.labels.array[box], ids)


def _points(anatomy: Anatomy, group: str) -> np.ndarray:
    """LPS mm of the voxel centres of ``group``, shape (n, 3)."""
    box, mask = _mask(anatomy, group)
    return anatomy.labels.voxel_to_world(np.argwhere(mask) + np.array([b.start for b in box]))


def _edges(values: np.ndarray, t: np.ndarray, start_index: int) -> tuple[float, float]:
    """Sub-sample t where ``values`` (inside > 0.5 at ``start_index``) drops below 0.5 on each side."""
    inside = values > 0.5
    low = start_index
    while low > 0 and inside[low - 1]:
        low -= 1
    high = start_index
    while high < len(values) - 1 and inside[high + 1]:
        high += 1

    def crossing(i_out: int, i_in: int) -> float:
        if i_out < 0 or i_out >= len(values):
            return float(t[i_in])
        a, b = values[i_out], values[i_in]
        return float(t[i_out] + (0.5 - a) / (b - a) * (t[i_in] - t[i_out]))

    return crossing(low - 1, low), crossing(high + 1, high)


def run_length(sampler, point: np.ndarray, direction: np.ndarray, reach_mm: float = 80.0,
               inside: bool = True) -> tuple[float, float]:
    """Where the run through ``point`` along ``direction`` of inside (or outside) voxels ends, in mm
    from ``point`` (negative before it, positive after)."""
    direction = direction / np.linalg.norm(direction)
    t = np.arange(-reach_mm, reach_mm + STEP_MM, STEP_MM)
    values = sampler(point[None, :] + t[:, None] * direction[None, :])
    if not inside:
        values = 1.0 - values
    start = int(np.argmin(np.abs(t)))
    if values[start] <= 0.5:
        return 0.0, 0.0
    return _edges(values, t, start)


@dataclass(frozen=True)
class LevelFrame:
    """A vertebra's (or interspace's) frame read from its landmarks: origin and unit axes u, v, w."""

    origin: np.ndarray
    u: np.ndarray  # toward the patient's left
    v: np.ndarray  # posterior
    w: np.ndarray  # superior

    def point(self, u: float, v: float, w: float) -> np.ndarray:
        return self.origin + u * self.u + v * self.v + w * self.w


def _frame(origin: np.ndarray, superior: np.ndarray, left: np.ndarray) -> LevelFrame:
    w = superior / np.linalg.norm(superior)
    u = left - w * (left @ w)
    u /= np.linalg.norm(u)
    return LevelFrame(origin, u, np.cross(w, u), w)


def vertebra_frame(anatomy: Anatomy, level: str) -> LevelFrame:
    superior = anatomy.direction(f"{level}.superior_endplate.normal")
    inferior = anatomy.direction(f"{level}.inferior_endplate.normal")
    left = anatomy.landmark(f"{level}.pedicle.left.center") - anatomy.landmark(f"{level}.pedicle.right.center")
    return _frame(anatomy.landmark(f"{level}.body.center"), superior - inferior, left)


def interspace_frame(anatomy: Anatomy, interspace: str) -> LevelFrame:
    upper, lower = interspace.split("-")
    a, b = anatomy.landmark(f"{upper}.inferior_endplate.center"), anatomy.landmark(f"{lower}.superior_endplate.center")
    superior = anatomy.direction(f"{lower}.superior_endplate.normal") - anatomy.direction(f"{upper}.inferior_endplate.normal")
    left = anatomy.landmark(f"{upper}.pedicle.left.center") - anatomy.landmark(f"{upper}.pedicle.right.center")
    return _frame((a + b) / 2.0, superior, left)


# ----------------------------------------------------------------------------- the measures
def body_width_and_depth(anatomy: Anatomy, level: str) -> tuple[float, float]:
    """Transverse width and mid-sagittal AP depth of the body 3 mm under its superior endplate (mm)."""
    frame = vertebra_frame(anatomy, level)
    body = MaskSampler(anatomy, f"{level}.body")
    top = (anatomy.landmark(f"{level}.superior_endplate.center") - frame.origin) @ frame.w
    w = top - 3.0
    low, high = run_length(body, frame.point(0.0, 0.0, w), frame.v)
    depth = high - low
    widths = []
    for v in np.arange(low + 0.25 * depth, high - 0.2 * depth, 1.0):
        a, b = run_length(body, frame.point(0.0, v, w), frame.u)
        widths.append(b - a)
    return max(widths), depth


def pedicle_width(anatomy: Anatomy, level: str, side: str) -> float:
    """Narrowest transverse (axial-plane) width of the bone across the pedicle's axis (mm)."""
    frame = vertebra_frame(anatomy, level)
    centre = anatomy.landmark(f"{level}.pedicle.{side}.center")
    points = _points(anatomy, f"{level}.pedicle.{side}") - centre
    planar = np.stack([points @ frame.u, points @ frame.v], axis=1)
    # Principal axis of the pedicle in the axial plane.
    _, _, vt = np.linalg.svd(planar - planar.mean(axis=0), full_matrices=False)
    axis = vt[0][0] * frame.u + vt[0][1] * frame.v
    across = np.cross(frame.w, axis)
    bone = MaskSampler(anatomy, level)
    t = np.arange(-5.0, 5.01, 0.25)
    widths = np.array([np.subtract(*run_length(bone, centre + s * axis, across, reach_mm=15.0)[::-1]) for s in t])
    # The isthmus: the narrowest stretch. A single narrowest line would pick up voxel noise, so the
    # widths within 1.5 mm of it are averaged.
    narrowest = t[np.argmin(widths)]
    return float(widths[np.abs(t - narrowest) <= 1.5].mean())


def canal_diameters(anatomy: Anatomy, level: str) -> tuple[float, float]:
    """Mid-sagittal AP diameter and interpedicular width of the bony canal at the pedicles (mm)."""
    frame = vertebra_frame(anatomy, level)
    pedicles = [anatomy.landmark(f"{level}.pedicle.{s}.center") for s in ("left", "right")]
    w = float(np.mean([(p - frame.origin) @ frame.w for p in pedicles]))
    bone = MaskSampler(anatomy, level)
    _, wall = run_length(bone, frame.point(0.0, 0.0, w), frame.v)  # the body's posterior wall
    inside = frame.point(0.0, wall + 3.0, w)
    low, high = run_length(bone, inside, frame.v, inside=False)
    ap = high - low
    a, b = run_length(bone, inside, frame.u, inside=False)
    return ap, b - a


def interlaminar_gap(anatomy: Anatomy, interspace: str, side: str) -> float:
    """Smallest distance between the two vertebrae's bone in a paramedian sagittal plane (mm).

    The plane lies ``WINDOW_LINE_OFFSET_MM`` from the midline on ``side``, behind the canal's front.
    """
    upper, lower = interspace.split("-")
    frame = interspace_frame(anatomy, interspace)
    sign = 1.0 if side == "left" else -1.0
    top, bottom = MaskSampler(anatomy, upper), MaskSampler(anatomy, lower)
    _, wall = run_length(top, anatomy.landmark(f"{upper}.body.center"), frame.v)
    wall += (anatomy.landmark(f"{upper}.body.center") - frame.origin) @ frame.v
    step = 0.25
    v = np.arange(wall + 4.0, wall + 60.0, step)
    w = np.arange(-35.0, 35.0, step)
    vv, ww = np.meshgrid(v, w, indexing="ij")
    points = frame.origin + sign * WINDOW_LINE_OFFSET_MM * frame.u + vv[..., None] * frame.v + ww[..., None] * frame.w
    a = top(points.reshape(-1, 3)).reshape(vv.shape) > 0.5
    b = bottom(points.reshape(-1, 3)).reshape(vv.shape) > 0.5
    if not a.any() or not b.any():
        raise SpinesimError(f"no laminae found around {interspace} to measure the interlaminar window")
    distance = ndimage.distance_transform_edt(~a, sampling=step)
    return float(distance[b].min())


def spinous_process_height(anatomy: Anatomy, level: str) -> float:
    """Largest cranio-caudal extent (mm) of the spinous process in the mid-sagittal plane of its vertebra."""
    frame = vertebra_frame(anatomy, level)
    sampler = MaskSampler(anatomy, f"{level}.spinous_process")
    step = 0.25
    v = np.arange(0.0, 90.0, step)
    w = np.arange(-50.0, 40.0, step)
    vv, ww = np.meshgrid(v, w, indexing="ij")
    points = frame.origin + vv[..., None] * frame.v + ww[..., None] * frame.w
    inside = sampler(points.reshape(-1, 3)).reshape(vv.shape) > 0.5
    columns = np.flatnonzero(inside.any(axis=1))
    if len(columns) == 0:
        raise SpinesimError(f"no spinous process of {level} in its mid-sagittal plane to measure")
    return float(max((np.flatnonzero(inside[c])[-1] - np.flatnonzero(inside[c])[0] + 1) * step for c in columns))


def interspinous_gap(anatomy: Anatomy, interspace: str) -> float:
    """Smallest distance (mm) between the two spinous processes in the mid-sagittal plane (at L5-S1,
    between L5's and the sacrum's posterior elements behind the canal)."""
    upper, lower = interspace.split("-")
    frame = interspace_frame(anatomy, interspace)
    top = MaskSampler(anatomy, f"{upper}.spinous_process")
    bottom = MaskSampler(anatomy, lower if lower == "S1" else f"{lower}.spinous_process")
    _, wall = run_length(MaskSampler(anatomy, upper), anatomy.landmark(f"{upper}.body.center"), frame.v)
    wall += (anatomy.landmark(f"{upper}.body.center") - frame.origin) @ frame.v
    step = 0.25
    v = np.arange(wall + 4.0, wall + 80.0, step)
    w = np.arange(-45.0, 45.0, step)
    vv, ww = np.meshgrid(v, w, indexing="ij")
    points = frame.origin + vv[..., None] * frame.v + ww[..., None] * frame.w
    a = top(points.reshape(-1, 3)).reshape(vv.shape) > 0.5
    b = bottom(points.reshape(-1, 3)).reshape(vv.shape) > 0.5
    if not a.any() or not b.any():
        raise SpinesimError(f"no spinous processes found around {interspace} to measure the interspinous gap")
    return float(ndimage.distance_transform_edt(~a, sampling=step)[b].min())


def transverse_process_reach(anatomy: Anatomy, level: str, side: str) -> float:
    """How far the transverse process on ``side`` reaches from the body's centre (mm), along the vertebra's own
    left-right axis: the two sides differ by the drawn differences of their processes' lengths and pedicles'
    widths (alignment.NATURAL_ASYMMETRY_SD)."""
    frame = vertebra_frame(anatomy, level)
    return float(np.abs((_points(anatomy, f"{level}.transverse_process.{side}") - frame.origin) @ frame.u).max())


def facet_angle(anatomy: Anatomy, interspace: str, side: str) -> float:
    """Angle of the facet joint space from the mid-sagittal plane in the axial plane (degrees)."""
    frame = interspace_frame(anatomy, interspace)
    name = f"facet_joint.{interspace}.{side}"
    centre = anatomy.landmark(f"{name}.center")
    points = _points(anatomy, name) - centre
    near = np.abs(points @ frame.w) < 4.0
    planar = np.stack([points[near] @ frame.u, points[near] @ frame.v], axis=1)
    _, _, vt = np.linalg.svd(planar - planar.mean(axis=0), full_matrices=False)
    du, dv = vt[0]
    return math.degrees(math.atan2(abs(du), abs(dv)))


def disc_heights(anatomy: Anatomy, interspace: str, ap_length_mm: float) -> tuple[float, float, float]:
    """Anterior, middle and posterior disc heights (mm) at -/0/+ half the reference AP length.

    Each is the mean over 9 parallel lines 1 mm apart across the midline, which averages the voxel
    steps out (a disc is wide and flat there).
    """
    frame = interspace_frame(anatomy, interspace)
    disc = MaskSampler(anatomy, f"{interspace}.disc")
    heights = []
    for v in (-ap_length_mm / 2.0, 0.0, ap_length_mm / 2.0):
        runs = [run_length(disc, frame.point(u, v, 0.0), frame.w, reach_mm=30.0) for u in np.arange(-4.0, 4.01, 1.0)]
        heights.append(float(np.mean([high - low for low, high in runs])))
    return tuple(heights)


def skin_to_epidural_depth(anatomy: Anatomy, interspace: str = "L3-L4") -> float:
    """Midline distance (mm) from the skin surface to the epidural space, through the interlaminar window.

    Along the interspace's posterior axis through the window centre, as an interlaminar needle goes:
    from where the epidural space ends (going back) to where the body ends.
    """
    frame = interspace_frame(anatomy, interspace)
    centre = anatomy.landmark(f"{interspace}.interlaminar_window.center")
    t = np.arange(-20.0, 200.0, STEP_MM)
    ray = centre[None, :] + t[:, None] * frame.v[None, :]
    epidural = MaskSampler(anatomy, "epidural_space")(ray)
    near = np.flatnonzero((epidural > 0.5) & (t < 5.0))
    if len(near) == 0:
        raise SpinesimError(f"no epidural space in front of the {interspace} window")
    edge = _edges(epidural, t, int(near[-1]))[1]
    body = MaskSampler.of_mask(anatomy, anatomy.labels.array > 0, ray)(ray)
    outside = np.flatnonzero((body <= 0.5) & (t > edge))
    if len(outside) == 0:
        raise SpinesimError("the skin surface is outside the image")
    skin = _edges(body, t, int(outside[0]) - 1)[1]
    return skin - edge


def skin_distance(anatomy: Anatomy, target: np.ndarray, direction: np.ndarray, reach_mm: float = 300.0) -> float:
    """Distance (mm) from ``target`` to where the body ends along ``direction`` (toward the skin).

    The straight needle path's length from skin entry to a target, for a given approach direction.
    """
    direction = np.asarray(direction, dtype=np.float64) / np.linalg.norm(direction)
    t = np.arange(0.0, reach_mm, STEP_MM)
    ray = np.asarray(target, dtype=np.float64)[None, :] + t[:, None] * direction[None, :]
    body = MaskSampler.of_mask(anatomy, anatomy.labels.array > 0, ray)(ray)
    outside = np.flatnonzero(body <= 0.5)
    if len(outside) == 0:
        raise SpinesimError("the skin surface is outside the image along that direction")
    return _edges(body, t, int(outside[0]) - 1)[1] if outside[0] > 0 else 0.0


# The posterior epidural depth is read on rays this far either side of the window's centre (mm), and the deepest
# kept: one ray on a 1 mm grid read 3.05 mm at L2-L3 of the symmetric patient and 2.0-2.8 mm 1-4 mm beside it, so a
# centre moved 0.4 mm by the natural asymmetry changed the reading by a voxel.
EPIDURAL_DEPTH_ACROSS_MM = (-2.0, -1.0, 0.0, 1.0, 2.0)


def posterior_epidural_depth(anatomy: Anatomy, interspace: str) -> float:
    """Depth (mm) of the epidural space behind the dural sac in the midline of an interlaminar window,
    along the interspace's posterior axis (clinical.md §4.7 [S91]: up to 5-6 mm mid-lumbar): the deepest on
    the rays :data:`EPIDURAL_DEPTH_ACROSS_MM` either side of the window's centre."""
    frame = interspace_frame(anatomy, interspace)
    sampler = MaskSampler(anatomy, "epidural_space")
    t = np.arange(-25.0, 5.0, STEP_MM)
    middle = anatomy.landmark(f"{interspace}.interlaminar_window.center")
    deepest = 0.0
    for across in EPIDURAL_DEPTH_ACROSS_MM:
        centre = middle + across * frame.u
        values = sampler(centre[None, :] + t[:, None] * frame.v[None, :])
        inside = np.flatnonzero(values > 0.5)
        if len(inside):
            low, high = _edges(values, t, int(inside[-1]))
            deepest = max(deepest, high - low)
    return deepest


# ------------------------------------------------------------------------------ the table
def _params(anatomy: Anatomy) -> SpineParameters:
    values = anatomy.metadata.get("parameters")
    return SpineParameters.from_mapping(values) if isinstance(values, dict) else SpineParameters()


def measure_spine(anatomy: Anatomy) -> list[Measurement]:
    """Every measurement of the "Must show" list of the spine generator, next to its reference."""
    params = _params(anatomy)
    asymmetry, tropism = natural_asymmetry(params)
    rows: list[Measurement] = []
    for level in LUMBAR:
        ref = scaled_vertebra(level, params)
        width, depth = body_width_and_depth(anatomy, level)
        rows.append(Measurement("body width", level, width, ref.body_width_mm, "mm", "§4.1 [ED]"))
        rows.append(Measurement("body depth", level, depth, ref.body_depth_mm, "mm", "§4.1 [S64]"))
        for side in ("left", "right"):
            own = asymmetry[level].side(asymmetry[level].pedicle_width_mm, side)
            rows.append(Measurement(f"pedicle width {side}", level, pedicle_width(anatomy, level, side),
                                    ref.pedicle_width_mm + own, "mm", "§4.2 [S64]"))
        rows.append(Measurement("spinous process height", level, spinous_process_height(anatomy, level),
                                SPINOUS_PROCESS_HEIGHT_MM * params.skeleton_scale, "mm", "Clouthier 2023, L2-L5 mean"))
        ap, transverse = canal_diameters(anatomy, level)
        rows.append(Measurement("canal AP", level, ap, ref.canal_ap_mm, "mm", "§4.3 [ED]/[S70]"))
        rows.append(Measurement("canal transverse", level, transverse, ref.canal_transverse_mm, "mm", "§4.3 [ED]/[S70]"))
    for interspace in LUMBAR_INTERSPACES:
        ref = INTERSPACES[interspace]
        s = params.skeleton_scale
        for side in ("left", "right"):
            rows.append(Measurement(f"interlaminar gap {side}", interspace, interlaminar_gap(anatomy, interspace, side),
                                    ref.interlaminar_mm * s, "mm", "§4.7 [S83]"))
            sign = 1.0 if side == "left" else -1.0
            rows.append(Measurement(f"facet angle {side}", interspace, facet_angle(anatomy, interspace, side),
                                    ref.facet_angle_deg + sign * (params.facet_tropism_deg + tropism[interspace]) / 2.0,
                                    "deg", "§4.6 [S80][ED]"))
        if interspace in INTERSPINOUS_GAP_MM:
            source = "MRI, 60 adults" if interspace == "L4-L5" else "§5.4 radiographs"
            rows.append(Measurement("interspinous gap", interspace, interspinous_gap(anatomy, interspace),
                                    INTERSPINOUS_GAP_MM[interspace] * s, "mm", source))
        heights = disc_heights(anatomy, interspace, ref.disc_ap_length_mm * s)
        for label, value, reference in zip(("anterior", "middle", "posterior"), heights,
                                           (ref.disc_anterior_mm, ref.disc_middle_mm, ref.disc_posterior_mm)):
            rows.append(Measurement(f"disc height {label}", interspace, value, reference * s, "mm", "§4.4 [S76]"))
    rows.append(Measurement("skin to epidural (midline)", "L3-L4", skin_to_epidural_depth(anatomy),
                            epidural_depth_mm(params.bmi), "mm", f"§4.9 [S98] at BMI {params.bmi:g}"))
    return rows
