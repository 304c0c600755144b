"""Real lumbar vertebra shapes: the mean shapes of a statistical shape model, fitted to each level.

The outline of every lumbar vertebra (T12-L5) is the mean shape of L2-L5 from 87 patients' CTs
(Clouthier et al., J Biomech 2023, MIT licence; ``shapes/README.md``), shipped as a compressed
signed-distance grid in each vertebra's own frame (origin at the body centre, u left, v posterior,
w superior, :mod:`anatomy_models.spine.alignment`), left-right symmetrised. T12 and L1 use the L2
shape. At load time each shape is warped onto the level's reference dimensions
(:mod:`anatomy_models.spine.morphometry`, scaled for sex and size): the body to its width, depth and
height; behind the body, the canal to its interpedicular and mid-sagittal diameters, the transverse
processes to their tip (then tapered and turned: the mean process is a bar of even height ending in a blunt,
rounded end) and the spinous process to its tip. Every generator parameter that places or sizes a vertebra (lordosis,
scoliosis, sex, size) so acts on the real shape.

The warp is separable and piecewise linear (monotone along each axis) but for the transverse
processes' taper and turn, which only move the vertical sampling point; so it is inverted exactly: a
world point goes to the level's frame, then to the template's, where the grid is interpolated.

Examples
--------
>>> template = load_template("L3")
>>> template.body_width_mm, template.body_depth_mm, template.body_height_mm   # the mean L3's endplate, mm
(52.0, 39.0, 29.0)
>>> round(template.transverse_process_upward_deg, 1)   # its transverse processes run level, even in height
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

from anatomy_models.errors import SpinesimError
from anatomy_models.spine.sdf import Shape, f32

SHAPES_FILE = Path(__file__).with_name("shapes") / "lumbar_mean_sdf.npz"
# The levels the shape model holds, and the one each generated level takes its shape from.
TEMPLATE_OF_LEVEL = {"T12": "L2", "L1": "L2", "L2": "L2", "L3": "L3", "L4": "L4", "L5": "L5"}
# The body region ends this far in front of the posterior wall and the arch region starts this far
# behind it: in between, the two transverse scales blend (mm) [ED]. Short: the canal's width is
# measured 3 mm behind the wall.
BODY_TO_ARCH_BLEND_MM = (1.0, 2.0)
OUTSIDE_MM = np.float32(8.0)  # the sdf beyond the template grid: outside the bone
# The transverse process is free of the pedicle from this far lateral of the pedicle's wall (mm): its
# reshaping (:func:`warped_sdf`) starts there.
TRANSVERSE_PROCESS_FREE_MM = 2.0
# The spinous process's vertical warp holds within this distance of the midline, the laminae's beyond
# the second; in between the two blend (mm) [ED]: the process is 6-8 mm thick (clinical.md §4.7), and
# the interlaminar window is set 6 mm off the midline (skeleton.WINDOW_LINE_OFFSET_MM).
SPINOUS_ZONE_MM = (3.0, 6.0)
# The spinous process turns (:attr:`LevelTargets.spinous_process_upturn_deg`) about the laminae's junction,
# this far behind the canal's back wall in the midline (mm), where :func:`measure_template` finds the
# process's root.
SPINOUS_PROCESS_TURN_BEHIND_CANAL_MM = 5.0


@dataclass(frozen=True)
class Template:
    """One mean vertebra: its signed distances on a grid in its own frame, and its measured dimensions (mm).

    ``sdf_mm`` is float32 of shape (nu, nv, nw), negative inside, voxel (0, 0, 0) at ``origin_mm``.
    """

    name: str
    sdf_mm: np.ndarray
    origin_mm: np.ndarray
    spacing_mm: float
    body_width_mm: float
    body_depth_mm: float
    body_height_mm: float
    canal_transverse_mm: float
    canal_ap_mm: float
    wall_recess_mm: float              # how far the posterior wall at the pedicles is in front of its rims
    pedicle_lateral_mm: float          # |u| of the pedicle's lateral wall at its isthmus
    transverse_process_tip_mm: float   # |u| of the transverse process tips
    spinous_process_tip_mm: float      # v of the spinous process tip
    pedicle_bottom_mm: float           # w of the pedicle's lower and upper borders at its isthmus
    pedicle_top_mm: float
    transverse_process_root_mid_mm: float  # w of the transverse process's mid-height line where it is free
    transverse_process_upward_deg: float   # that line's slope going out (+ = the tip higher), degrees
    transverse_process_height_mm: float    # its mean cranio-caudal height over its free part
    spinous_process_bottom_mm: float       # w of the spinous process's lowest point in the midline


def _runs_containing(line: np.ndarray, index: int) -> tuple[int, int]:
    """First and last index of the run of True in ``line`` that holds ``index``."""
    start, stop = index, index
    while start > 0 and line[start - 1]:
        start -= 1
    while stop + 1 < len(line) and line[stop + 1]:
        stop += 1
    return start, stop


def measure_template(name: str, sdf_mm: np.ndarray, origin_mm: np.ndarray, spacing_mm: float) -> Template:
    """The dimensions of a mean vertebra measured on its grid as :mod:`morphometry` defines them.

    Body depth: the endplate's (the largest in the midline over the body's height); height: the mean
    of the anterior and posterior wall heights in the midline; width: 3 mm inside each endplate. The
    canal's section is found where it is enclosed (at the pedicles), the pedicle's height 4 mm behind
    the wall beside it; at the pedicle's mid-height the canal's width 3 mm behind the wall, its
    midline depth from the wall and the pedicle's lateral wall where it is nearest (its isthmus);
    transverse processes by their lateral tips and their mid-height over their free part; the spinous
    process by its posterior tip.
    """
    inside = sdf_mm < 0
    centre = np.rint(-origin_mm / spacing_mm).astype(int)
    mm = lambda millimetres: int(round(millimetres / spacing_mm))  # noqa: E731
    iu, iv, iw = centre
    low, high = _runs_containing(inside[iu, iv, :], iw)
    # Depth: the largest over the body's height (the walls are waisted between the rims).
    spans = [_runs_containing(inside[iu, :, k], iv) for k in range(low, high + 1)]
    front, back = min(a for a, _ in spans), max(b for _, b in spans)
    # Height: the mean of the anterior and posterior walls' (the endplates are concave in the middle).
    walls = [np.flatnonzero(inside[iu, j, :]) for j in (front + mm(3), back - mm(3))]
    height = float(np.mean([cells[-1] - cells[0] + 1 for cells in walls]))
    # Width: the endplates', 3 mm inside the body from each (under the rims' lipping).
    rims = (int(np.mean([cells[0] for cells in walls])) + mm(3), int(np.mean([cells[-1] for cells in walls])) - mm(3))
    width = float(np.mean([np.subtract(*_runs_containing(inside[:, iv, k], iu)[::-1]) + 1 for k in rims]))
    # The canal: the hole of each axial section behind the body, enclosed only at the pedicles.
    widths, depths = [], []
    for k in range(low, high + 1):
        section = inside[:, :, k]
        hole = ndimage.binary_fill_holes(section) & ~section
        labels, _ = ndimage.label(hole)
        behind = labels[iu, back + mm(2): back + mm(12)]
        ids = behind[behind > 0]
        if len(ids) == 0:
            continue
        canal = labels == ids[0]
        columns = np.flatnonzero(canal.any(axis=1))
        rows = np.flatnonzero(canal[iu])
        widths.append(columns[-1] - columns[0] + 1)
        depths.append(rows[-1] - rows[0] + 1)
    if not widths:
        raise SpinesimError(f"{SHAPES_FILE}: shape {name!r} has no enclosed canal; rebuild the file from the "
                            "shape model as shapes/README.md describes")
    narrowest = int(np.argmin(widths))
    # The pedicle: the bone beside the canal 4 mm behind the posterior wall (its isthmus, as in
    # :func:`anatomy_models.spine.vertebra.layout_vertebra`), its run through the body's centre height.
    isthmus_v = back + mm(4)
    beside = iu + int(round(widths[narrowest] / 2)) + np.arange(1, mm(5))
    column = inside[beside, isthmus_v, :].any(axis=0)
    cells = np.flatnonzero(column)
    pedicle = _runs_containing(column, int(cells[np.argmin(np.abs(cells - iw))]))
    # At the pedicles' mid-height, as anatomy_models.spine.measure reads a label map: the canal 3 mm
    # behind the posterior wall across and in the midline back to the laminae; the pedicle's lateral
    # wall at its isthmus.
    mid = (pedicle[0] + pedicle[1]) // 2
    canal_across = _runs_containing(~inside[:, back + mm(3), mid], iu)
    canal_back = _runs_containing(~inside[iu, :, mid], back + mm(3))
    wall = _runs_containing(inside[iu, :, mid], iv)[1]  # the posterior wall at this height
    lateral = min(_runs_containing(inside[:, j, mid], canal_across[1] + 1)[1]
                  for j in range(back + mm(2), back + mm(10)) if inside[canal_across[1] + 1, j, mid])
    solid_u = np.flatnonzero(inside[:, back:, :].any(axis=(1, 2)))
    solid_v = np.flatnonzero(inside.any(axis=(0, 2)))
    # The transverse process's mid-height line: fitted to its columns' from 2 mm lateral of the
    # pedicle's wall (:data:`TRANSVERSE_PROCESS_FREE_MM`) to 2 mm short of its tip (its free part,
    # clear of the pedicle and the articular processes).
    free = range(lateral + mm(TRANSVERSE_PROCESS_FREE_MM), solid_u[-1] - mm(2) + 1)
    columns = [(i, np.flatnonzero(inside[i, back:, :].any(axis=0))) for i in free]
    tp_u = np.array([i for i, cells in columns if len(cells)], dtype=float)
    tp_w = np.array([0.5 * (cells[0] + cells[-1]) for _, cells in columns if len(cells)]) - iw
    tp_slope, tp_intercept = np.polyfit(tp_u, tp_w, 1)
    tp_height = float(np.mean([cells[-1] - cells[0] + 1 for _, cells in columns if len(cells)]))
    # The spinous process: the midline bone behind the laminae's junction (5 mm behind the canal's back).
    behind = inside[iu, canal_back[1] + mm(5):, :]
    spinous_bottom = int(np.flatnonzero(behind.any(axis=0))[0])
    h = spacing_mm
    return Template(name, sdf_mm, origin_mm, spacing_mm, body_width_mm=float(width * h),
                    body_depth_mm=float((back - front + 1) * h), body_height_mm=height * h,
                    canal_transverse_mm=float((canal_across[1] - canal_across[0] + 1) * h),
                    canal_ap_mm=float((canal_back[1] - wall) * h), wall_recess_mm=float((back - wall) * h),
                    pedicle_lateral_mm=float((lateral - iu + 0.5) * h),
                    transverse_process_tip_mm=float((solid_u[-1] - iu + 0.5) * h),
                    spinous_process_tip_mm=float(origin_mm[1] + (solid_v[-1] + 0.5) * h),
                    pedicle_bottom_mm=float((pedicle[0] - iw - 0.5) * h),
                    pedicle_top_mm=float((pedicle[1] - iw + 0.5) * h),
                    transverse_process_root_mid_mm=float((tp_intercept + tp_slope * free[0]) * h),
                    transverse_process_upward_deg=math.degrees(math.atan(tp_slope)),
                    transverse_process_height_mm=tp_height * h,
                    spinous_process_bottom_mm=float((spinous_bottom - iw - 0.5) * h))


@lru_cache(maxsize=None)
def load_template(name: str) -> Template:
    """The mean vertebra ``name`` (L2-L5) from :data:`SHAPES_FILE`, measured (cached: read once per process)."""
    try:
        with np.load(SHAPES_FILE) as data:
            half = data[name].astype(np.float32) * f32(data["quantum_mm"])
            origin = np.asarray(data["origin_mm"], dtype=np.float64)
            spacing = float(data["spacing_mm"])
    except (OSError, KeyError) as error:
        raise SpinesimError(f"{SHAPES_FILE}: cannot read shape {name!r} ({error}); reinstall spinesim or rebuild the "
                            "file as shapes/README.md describes") from error
    # The file holds the left half (u >= 0) of a symmetric shape: mirror it.
    full = np.concatenate([half[:0:-1], half], axis=0)
    origin = np.array([-(half.shape[0] - 1) * spacing, origin[1], origin[2]])
    return measure_template(name, full, origin, spacing)


def _piecewise(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Piecewise-linear map through the knots (``xp`` ascending), extended linearly past both ends."""
    y = np.interp(x, xp, fp).astype(np.float32)
    below, above = x < xp[0], x > xp[-1]
    slope_low = (fp[1] - fp[0]) / (xp[1] - xp[0])
    slope_high = (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    y = np.where(below, f32(fp[0]) + (x - f32(xp[0])) * f32(slope_low), y)
    return np.where(above, f32(fp[-1]) + (x - f32(xp[-1])) * f32(slope_high), y)


@dataclass(frozen=True)
class LevelTargets:
    """The dimensions (mm) a template is warped to, in the level's frame."""

    body_width_mm: float
    body_depth_mm: float
    body_height_mm: float
    canal_transverse_mm: float
    canal_ap_mm: float
    pedicle_lateral_mm: float
    transverse_process_tip_mm: float
    spinous_process_tip_mm: float
    pedicle_bottom_mm: float
    pedicle_top_mm: float
    # Where the laminae's lower edge goes (level frame w) and where it is in the template (its w).
    lamina_bottom_mm: float | None = None
    template_lamina_bottom_mm: float | None = None
    # Where the spinous process's lower border goes (level frame w; None: where the body's height scale
    # takes it from the pedicle's lower border). The laminae's edge and the process move apart.
    spinous_process_bottom_mm: float | None = None
    # The transverse process's cranio-caudal height at its tip as a fraction of its root's, and its
    # slope going out (degrees, + = upturned; None keeps the template's): the shape model's mean
    # process is a bar of even height.
    transverse_process_tip_height_fraction: float = 1.0
    transverse_process_upward_deg: float | None = None
    # How far the spinous process is turned up (degrees, + = its tip higher) about its root
    # (:data:`SPINOUS_PROCESS_TURN_BEHIND_CANAL_MM`) from the template's own inclination.
    spinous_process_upturn_deg: float = 0.0
    # The right side's pedicle wall and transverse process tip (|u|, mm) where they differ from the left's
    # (``pedicle_lateral_mm``, ``transverse_process_tip_mm``; None: the mirror image): no spine is symmetric.
    right_pedicle_lateral_mm: float | None = None
    right_transverse_process_tip_mm: float | None = None

    def side_knots(self, side: str) -> tuple[float, float]:
        """The pedicle's lateral wall and the transverse process's tip (|u|, mm) on ``side``."""
        if side == "left":
            return self.pedicle_lateral_mm, self.transverse_process_tip_mm
        return (self.pedicle_lateral_mm if self.right_pedicle_lateral_mm is None else self.right_pedicle_lateral_mm,
                self.transverse_process_tip_mm if self.right_transverse_process_tip_mm is None
                else self.right_transverse_process_tip_mm)


def _arch_w_knots(template: Template, targets: LevelTargets) -> tuple[np.ndarray, np.ndarray]:
    """(level w, template w) knots of the laminae's vertical warp: the pedicle's borders and, if set, the
    laminae's lower edge; beyond the outer knots the body's vertical scale continues."""
    t, r = template, targets
    lower = None if r.lamina_bottom_mm is None else (r.lamina_bottom_mm, r.template_lamina_bottom_mm)
    return _knots(t, r, lower)


def _spinous_w_knots(template: Template, targets: LevelTargets) -> tuple[np.ndarray, np.ndarray]:
    """(level w, template w) knots of the spinous process's vertical warp: the pedicle's borders and the
    process's lower border, which keeps the process's own height (the body's vertical scale) unless the
    targets move it."""
    t, r = template, targets
    bottom = r.spinous_process_bottom_mm
    if bottom is None:
        bottom = _own_spinous_bottom(t, r)
    return _knots(t, r, (bottom, t.spinous_process_bottom_mm))


def _own_spinous_bottom(t: Template, r: LevelTargets) -> float:
    """Level w of the process's lower border at its own height: the body's vertical scale below the pedicle."""
    own_height_mm = (t.pedicle_bottom_mm - t.spinous_process_bottom_mm) * r.body_height_mm / t.body_height_mm
    return r.pedicle_bottom_mm - own_height_mm


def own_spinous_bottom_w(level: str, targets: LevelTargets) -> float:
    """The level w where ``level``'s spinous process ends below at its own (the shape model's) height."""
    return _own_spinous_bottom(load_template(TEMPLATE_OF_LEVEL[level]), targets)


def _knots(t: Template, r: LevelTargets, lower: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """The pedicle's borders and an optional (level w, template w) knot below them, with linear reaches."""
    height_scale = t.body_height_mm / r.body_height_mm
    target = [r.pedicle_bottom_mm, r.pedicle_top_mm]
    source = [t.pedicle_bottom_mm, t.pedicle_top_mm]
    if lower is not None:
        target.insert(0, lower[0])
        source.insert(0, lower[1])
    reach = 50.0
    target = [target[0] - reach] + target + [target[-1] + reach]
    source = [source[0] - reach * height_scale] + source + [source[-1] + reach * height_scale]
    return np.array(target), np.array(source)


def arch_template_w(level: str, targets: LevelTargets, w_mm: float) -> float:
    """The template w that the arch's warp for ``targets`` brings to the level's ``w_mm``."""
    knots, source = _arch_w_knots(load_template(TEMPLATE_OF_LEVEL[level]), targets)
    return float(_piecewise(np.float32(w_mm), knots, source))


def _transverse_process_reshape(template: Template, targets: LevelTargets):
    """A map (|template u|, template w, arch weight) -> (template w to sample, distance scale) that
    tapers the transverse process's height toward its tip and turns the process up (or down) about its root.

    Going out from where the process is free (``s`` 0 to 1 at the tip) its height shrinks by
    ``1 - (1 - f) s**1.5`` about its mid-height line (a bar that narrows mostly toward the tip); the end keeps the
    mean shape's own blunt, rounded end. The line turns by the difference of the target's slope and the template's.
    The distances shrink at most by the same factor (the returned scale keeps them lower bounds).
    """
    t, r = template, targets
    root = f32(t.pedicle_lateral_mm + TRANSVERSE_PROCESS_FREE_MM)
    span = f32(t.transverse_process_tip_mm - root)
    own = math.tan(math.radians(t.transverse_process_upward_deg))
    wanted = own if r.transverse_process_upward_deg is None else math.tan(math.radians(r.transverse_process_upward_deg))
    own_slope, turn = f32(own), f32(wanted - own)
    mid = f32(t.transverse_process_root_mid_mm)
    narrowing = f32(1.0 - r.transverse_process_tip_height_fraction)

    def reshape(across, w, arch):
        out = np.maximum(across - root, 0)
        s = np.minimum(out / span, 1)
        scale = 1 - arch * narrowing * s * np.sqrt(s)
        line = mid + own_slope * out
        return line + (w - line - arch * turn * out) / scale, scale
    return reshape


def warped_sdf(template: Template, targets: LevelTargets):
    """A local sdf (u, v, w in the level's frame, mm) of ``template`` warped onto ``targets``.

    Along v: the body's front and back walls, the canal's back wall and the spinous process tip are
    knots. Across (u): in the body the width scales; behind it the canal's half-width, the pedicle's
    lateral wall and the transverse process tip are knots (each side its own), blended over
    :data:`BODY_TO_ARCH_BLEND_MM`.
    Along w: the body's height scales; behind it the pedicle's borders (the foramina and the nerve
    roots under them are placed from the layout's pedicles) and the laminae's lower edge are knots
    too, but in the midline (:data:`SPINOUS_ZONE_MM`) the spinous process's lower border replaces the
    laminae's edge: the interlaminar window opens without shortening the process. The transverse
    processes then taper and turn (:func:`_transverse_process_reshape`). The distances are rescaled
    by the mean scale (the warp is close to a similarity).
    """
    t, r = template, targets
    v_knots = np.array([-r.body_depth_mm / 2, r.body_depth_mm / 2,
                        r.body_depth_mm / 2 - t.wall_recess_mm + r.canal_ap_mm, r.spinous_process_tip_mm])
    v_template = np.array([-t.body_depth_mm / 2, t.body_depth_mm / 2,
                           t.body_depth_mm / 2 - t.wall_recess_mm + t.canal_ap_mm, t.spinous_process_tip_mm])
    u_knots = {side: np.array([0.0, r.canal_transverse_mm / 2, *r.side_knots(side)]) for side in ("left", "right")}
    u_template = np.array([0.0, t.canal_transverse_mm / 2, t.pedicle_lateral_mm, t.transverse_process_tip_mm])
    body_scale = f32(t.body_width_mm / r.body_width_mm)
    height_scale = f32(t.body_height_mm / r.body_height_mm)
    w_knots, w_template = _arch_w_knots(t, r)
    sp_knots, sp_template = _spinous_w_knots(t, r)
    sp_root_v = f32(v_knots[2] + SPINOUS_PROCESS_TURN_BEHIND_CANAL_MM)
    sp_turn = f32(math.tan(math.radians(r.spinous_process_upturn_deg)))
    midline = (f32(SPINOUS_ZONE_MM[0]), f32(SPINOUS_ZONE_MM[1] - SPINOUS_ZONE_MM[0]))
    mean_scale = f32(1.0 / math.pow(float(body_scale * height_scale) * t.body_depth_mm / r.body_depth_mm, 1 / 3))
    blend_from = f32(r.body_depth_mm / 2 - BODY_TO_ARCH_BLEND_MM[0])
    blend_span = f32(sum(BODY_TO_ARCH_BLEND_MM))
    grid = t.sdf_mm
    origin = t.origin_mm.astype(np.float32)
    step = f32(t.spacing_mm)
    upper = np.array(grid.shape, dtype=np.float32) - 1
    reshape = _transverse_process_reshape(t, r)

    def sdf(u, v, w):
        u, v, w = np.broadcast_arrays(u, v, w)
        arch = np.clip((v - blend_from) / blend_span, 0, 1)
        arch = arch * arch * (3 - 2 * arch)
        across = np.abs(u)
        arch_u = _piecewise(across, u_knots["left"], u_template)
        if not np.array_equal(u_knots["left"], u_knots["right"]):  # the patient's right is -u
            arch_u = np.where(u < 0, _piecewise(across, u_knots["right"], u_template), arch_u)
        source_u = np.sign(u) * (across * body_scale * (1 - arch) + arch_u * arch)
        source_v = _piecewise(v, v_knots, v_template)
        # The laminae (off the midline) and the spinous process (in it) have their own vertical warps.
        lateral = np.clip((across - midline[0]) / midline[1], 0, 1)
        lateral = lateral * lateral * (3 - 2 * lateral)
        spinous_w = _piecewise(w - sp_turn * np.maximum(v - sp_root_v, 0), sp_knots, sp_template)
        arch_w = _piecewise(w, w_knots, w_template) * lateral + spinous_w * (1 - lateral)
        source_w = w * height_scale * (1 - arch) + arch_w * arch
        source_w, narrowed = reshape(np.abs(source_u), source_w, arch)
        index = [(s - o) / step for s, o in zip((source_u, source_v, source_w), origin)]
        outside = np.zeros(u.shape, dtype=bool)
        for axis, i in enumerate(index):
            outside |= (i < 0) | (i > upper[axis])
        values = ndimage.map_coordinates(grid, [i.ravel() for i in index], order=1, mode="nearest")
        values = values.reshape(u.shape) * mean_scale * narrowed
        return np.where(outside, np.maximum(values, OUTSIDE_MM), values)
    return sdf


@dataclass(eq=False)
class RealVertebra(Shape):
    """A warped mean vertebra placed in the world by its level's frame."""

    frame: object
    local_sdf: object
    local_lower: np.ndarray
    local_upper: np.ndarray

    def __post_init__(self) -> None:
        corners = np.array([[a, b, c] for a in (self.local_lower[0], self.local_upper[0])
                            for b in (self.local_lower[1], self.local_upper[1])
                            for c in (self.local_lower[2], self.local_upper[2])])
        world = corners @ self.frame.rotation.T + self.frame.origin
        self.lower, self.upper = world.min(axis=0), world.max(axis=0)

    def sdf(self, x, y, z):
        return self.local_sdf(*self.frame.to_local(x, y, z))


def real_vertebra(level: str, frame, targets: LevelTargets) -> RealVertebra:
    """The real outline of vertebra ``level`` (T12-L5), warped onto ``targets`` and placed by ``frame``."""
    template = load_template(TEMPLATE_OF_LEVEL[level])
    margin = 3.0
    reach_u = max(targets.side_knots(side)[1] for side in ("left", "right")) + margin
    # The grid's own w range, stretched as the warp stretches the body's height.
    stretch = targets.body_height_mm / template.body_height_mm
    w_range = template.origin_mm[2] + np.array([0.0, template.sdf_mm.shape[2] - 1]) * template.spacing_mm
    lower = np.array([-reach_u, -targets.body_depth_mm / 2 - margin, w_range[0] * stretch])
    upper = np.array([reach_u, targets.spinous_process_tip_mm + margin, w_range[1] * stretch])
    return RealVertebra(frame, warped_sdf(template, targets), lower, upper)
