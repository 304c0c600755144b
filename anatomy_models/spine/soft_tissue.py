"""Discs, ligaments, the epidural compartment, paraspinal muscles, viscera, subcutaneous fat and skin.

Discs fill the space between two endplates (their footprint the mean of the two bodies, bulging
1 mm); the nucleus is an ellipsoid a little behind the disc's centre. The ligamentum flavum lines
each interlaminar window from the ventral face of the upper lamina to the top of the lower one
(thickness §4.7 [S89], thickened by degeneration). Muscles are tubes whose sections follow the
vertebrae on smooth curves (psoas growing caudally, multifidus largest at L5-S1); the erector spinae is a
longissimus and an iliocostalis parted by a fat septum, its lateral border sweeping in caudally, both back
muscles to published cross-sectional areas (see :data:`LONGISSIMUS_MM`, :data:`MULTIFIDUS_MM`).

The body outline is built so that the skin-to-epidural depth at L3-4 in the midline equals the
regression of clinical.md §4.9 [S98] for the BMI: bones never change with BMI, only the fat over
them (§4.9 modelling rule); :func:`calibrate_midline_fat` solves for the midline fat thickness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np
from scipy import special
from scipy.interpolate import PchipInterpolator

from anatomy_models.spine.alignment import INTERSPACE_NAMES, VERTEBRA_NAMES, BodyAsymmetry
from anatomy_models.spine.glutes import Buttocks
from anatomy_models.spine.morphometry import epidural_depth_mm
from anatomy_models.spine.neural import SAC_END_BELOW_S1_MM
from anatomy_models.spine.parameters import SpineParameters
from anatomy_models.spine.sacrum import dorsal_crest_points
from anatomy_models.spine.sdf import (Frame, Intersection, Primitive, Shape, SmoothUnion, VerticalTube, ellipsoid,
                                      elliptic_rod, f32, half_space, rounded_box, smooth_max)
from anatomy_models.spine.skeleton import Skeleton, capsular_flavum
from anatomy_models.spine.vertebra import SIDE_SIGN, body_sdf

SKIN_THICKNESS_MM = 2.0                 # [ED] 1.5-3 mm on the back
# The back's skin is rounded across (Gaussian sigma, mm) so that the midline furrow's walls slope gently, at most
# ~20 deg for its 5 mm height, with no edge a contralateral oblique's rays could run along [ED 4: under the
# furrow's half-width at L5, 15 mm, so its floor over the spinous processes, whose depth the BMI calibration
# sets, stays where it is].
FURROW_ROUNDING_MM = 7.0
DISC_BULGE_MM = 1.0                     # disc margin beyond the endplates [ED]
FLAVUM_THICKENING_MM_PER_GRADE = 0.8    # hypertrophy per degeneration grade [ED]; > 4 mm is common (§4.7 [S90])
FLAVUM_INSERTION_DEPTH = 0.6            # lower insertion, as a fraction of the lamina's thickness back [ED]
FLAVUM_MIDLINE_BLEND_MM = 1.0           # fillet where the left and right halves meet [ED]
SUPRASPINOUS_SEMI_AXES_MM = (4.0, 2.5)  # [ED]
INTERSPINOUS_HALF_WIDTH_MM = 3.0        # [ED]
LEAN_HALF_WIDTH_MM = 125.0              # half-width of the lean trunk at L3 [ED]
LEAN_FRONT_MM = 95.0                    # anterior abdominal wall in front of the vertebral bodies [ED]
TORSO_EXPONENT = 2.4                    # superellipse exponent of the trunk section [ED]
# The trunk's widening over the pelvis (mm each side): a hip breadth of about 35 cm at BMI 25, as wide as the
# buttocks reach (anatomy_models.spine.glutes) [ED; adult hip breadths in anthropometric surveys are 34-38 cm].
HIP_WIDENING_MM = 36.0
# Below the S1 body's centre the anterior abdominal wall curves back over the pubis and the groin, over this height
# (mm) to the sacrum's own front [ED: the pubic symphysis lies about level with the coccyx, 60-80 mm below S1].
GROIN_RECESS_MM = 60.0

# Muscle section semi-axes (x, y) in mm per level [ED], T12 .. S1.
PSOAS_MM = {"T12": (5, 5), "L1": (8, 7), "L2": (12, 10), "L3": (16, 13), "L4": (19, 16), "L5": (21, 17), "S1": (20, 16)}
QUADRATUS_MM = {"T12": (10, 5), "L1": (14, 7), "L2": (15, 7), "L3": (15, 8), "L4": (13, 7), "L5": (6, 4)}
# The erector spinae is two muscles side by side under the thoracolumbar fascia: the longissimus, a rounded
# mass beside the multifidus, and lateral to it the iliocostalis lumborum, flatter, reaching out over the
# quadratus lumborum toward the ribs above and arising from the iliac crest below, so the erector's lateral
# border sweeps in from ~9 cm off the midline at T12 to ~5 cm at L5 and the muscle thins to its aponeurosis
# over the sacrum (Gray's Anatomy, 42nd ed., ch. "Back"; Bogduk, Clinical and Radiological Anatomy of the
# Lumbar Spine, ch. "The lumbar back muscles"). Their summed cross-sectional areas follow MRI: erector spinae
# 20.0 +- 4.4 cm2 at L3-L4 and 16.3 +- 4.1 cm2 at L4-L5 (Fortin et al., tabulated by Kalichman et al.,
# BioMed Res Int 2017:2562957, table 1) [not yet in clinical.md]; this model's sections give 15.7 cm2 at L3
# and 11.4 cm2 at L4 beside the multifidus, the published range's lower end: the back's depth over them is
# held to the BMI's (§4.9) (tests/anatomy_models/spine/test_back_muscles.py measures them).
# Per level: the longissimus's centre off the midline and semi-axes (mm) [ED, textbook proportions] ...
LONGISSIMUS_MM = {"T12": (34, 18, 18), "L1": (35, 19, 19), "L2": (36, 20, 19), "L3": (37, 21, 18),
                  "L4": (36, 20, 17), "L5": (33, 16, 14), "S1": (24, 10, 7)}
# ... and the iliocostalis's lateral border off the midline and semi-axes (mm) [ED]; none below the iliac crest.
ILIOCOSTALIS_MM = {"T12": (93, 24, 12), "L1": (89, 26, 13), "L2": (84, 27, 14), "L3": (79, 27, 15),
                   "L4": (71, 24, 14), "L5": (59, 15, 8)}
# A thin fat plane (the lateral intermuscular septum) parts the two [ED; a fascial line on CT and ultrasound].
ERECTOR_SEPTUM_MM = 1.0
# Multifidus CSA by ultrasound in 52 men: 7.9 +- 1.9 cm2 at L4 and 8.9 +- 1.7 cm2 at L5 (Stokes et al., Man
# Ther 2005;10:116); by CT at the L3 endplate 4.7 +- 1.4 cm2 (Danneels et al., in Kalichman et al. 2017)
# [not yet in clinical.md]. Sections here: L3 4.7, L4 6.7, L5 8.4 cm2 (the men's lower range: the model's
# patient is in his fifties).
MULTIFIDUS_MM = {"T12": (7, 8), "L1": (8, 9), "L2": (9, 10), "L3": (11, 13.5), "L4": (13, 16.5), "L5": (14.5, 18.5),
                 "S1": (15, 15)}
# Below S1's centre the erector and multifidus thin to their sacral attachments [ED]: they end this far down.
SACRAL_MUSCLE_END_MM = 45.0


def subcutaneous_fat_mm(bmi: float) -> float:
    """Flank and abdominal subcutaneous fat thickness for a BMI [ED]: 16 mm at 25, 46 mm at 40."""
    return max(4.0, 6.0 + 2.0 * (bmi - 20.0))


def paramedian_extra_fat_mm(bmi: float) -> float:
    """Fat over the paraspinal muscles beyond the midline's, mm [ED].

    The midline depth follows the epidural regression (§4.9 [S98], ~1 mm per BMI unit) but the
    foraminal (TFESI) depth grows ~2.4 mm per unit (§4.9 [S23] medians 75 mm normal to 122 mm class III)
    and the medial branch target lies 76 +- 15 mm deep in obesity (§4.9 [S38]): fat gathers beside the
    midline, deepening the midline furrow.
    """
    return 5.0 + 1.6 * max(bmi - 22.0, 0.0)


# ------------------------------------------------------------------------------------- discs
def disc_shapes(skeleton: Skeleton, degeneration: float) -> dict[str, Shape]:
    shapes: dict[str, Shape] = {}
    for name in INTERSPACE_NAMES:
        disc = skeleton.alignment.discs[name]
        upper, lower = skeleton.layouts[disc.upper], skeleton.layouts[disc.lower]
        width = 0.5 * (upper.width + lower.width) + 2 * DISC_BULGE_MM
        depth = 0.5 * (upper.depth + lower.depth) + 2 * DISC_BULGE_MM
        height = disc.mean_mm + 2 * disc.endplate_concavity_mm + 3.0  # reaches into both endplates
        sdf = body_sdf(width, depth, height, disc.wedge_deg, 0.0, 0.0, waist=0.0)
        extent = (width / 2 + 2, 0.7 * depth + 2, height / 2 + 3)
        shapes[f"{name}.disc.annulus"] = Primitive(disc.frame, sdf, extent)
        shrink = 1.0 - 0.15 * degeneration
        radii = (0.27 * width * shrink, 0.2 * depth * shrink, 0.5 * disc.mean_mm * shrink + disc.endplate_concavity_mm)
        nucleus_frame = Frame(disc.frame.point((0.0, 0.08 * depth, 0.0)), disc.frame.rotation)
        shapes[f"{name}.disc.nucleus"] = Primitive(nucleus_frame, ellipsoid(radii), radii)
    return shapes


# -------------------------------------------------------------------------------- ligaments
def flavum_thickness_mm(skeleton: Skeleton, interspace: str, degeneration: float) -> float:
    reference = skeleton.alignment.discs[interspace].reference.flavum_thickness_mm
    return reference * skeleton.layouts[interspace.split("-")[0]].geometry.scale + FLAVUM_THICKENING_MM_PER_GRADE * degeneration


def flavum_shapes(skeleton: Skeleton, degeneration: float) -> dict[str, Shape]:
    """One plate per side and window, from the ventral face of the upper lamina to the top of the lower,
    and its capsular part in front of each facet joint and behind each foramen
    (:func:`~anatomy_models.spine.skeleton.capsular_flavum`)."""
    shapes: dict[str, Shape] = {}
    for name in INTERSPACE_NAMES:
        upper, lower = (skeleton.layouts[n] for n in name.split("-"))
        thickness = flavum_thickness_mm(skeleton, name, degeneration)
        plates = []
        for side in SIDE_SIGN:
            z_attach = upper.lamina_bottom_z + 0.45 * (upper.lamina_top_z - upper.lamina_bottom_z)
            top = upper.world(upper.lamina_ventral_point(0.5, z_attach, side) - upper.lamina_normal(side) * thickness)
            # Below, it inserts on the upper margin of the lower lamina toward its back: the lamina's
            # top edge then juts forward under it and the epidural space is a saw-tooth (§4.7 [S91]).
            bottom = lower.world(lower.lamina_ventral_point(0.5, lower.lamina_top_z, side)
                                 + lower.lamina_normal(side) * FLAVUM_INSERTION_DEPTH * lower.lamina_thickness)
            medial = 0.5 * (upper.world(upper.lamina_medial) + lower.world(lower.lamina_medial))
            lateral = 0.5 * (upper.world(upper.lamina_lateral[side]) + lower.world(lower.lamina_lateral[side]))
            along = lateral - medial
            length = float(np.linalg.norm(along))
            vertical = top - bottom
            frame = Frame.from_axes((top + bottom) / 2.0, along, vertical)
            normal = frame.rotation[:, 2]
            posterior = upper.frame.vector((0.0, 1.0, 0.0))
            if normal @ posterior < 0:
                normal = -normal
            # The plate's ventral face passes through top and bottom; it spans the midline to the facet.
            centre = (top + bottom) / 2.0 + normal * thickness / 2.0 + frame.rotation[:, 0] * 0.08 * length
            half = (0.62 * length + 1.5, float(np.linalg.norm(vertical)) / 2.0 + 0.5, thickness / 2.0)
            plates.append(Primitive(Frame(centre, frame.rotation), rounded_box(half, min(half) * 0.6), half))
            plates.append(capsular_flavum(skeleton, name, side, thickness))
        # The two halves meet in the midline without a cleft (a blended seam): no false loss of resistance.
        shapes[f"ligamentum_flavum.{name}"] = SmoothUnion(plates, FLAVUM_MIDLINE_BLEND_MM)
    return shapes


def interspinous_shapes(skeleton: Skeleton) -> dict[str, Shape]:
    shapes: dict[str, Shape] = {}
    for name in INTERSPACE_NAMES[:-1]:  # no spinous process to anchor an L5-S1 ligament to the sacrum's tubercle [ED]
        upper, lower = (skeleton.layouts[n] for n in name.split("-"))
        disc = skeleton.alignment.discs[name]
        points = [disc.frame.rotation.T @ (v.world(p) - disc.frame.origin)
                  for v, p in ((upper, upper.sp_base), (upper, upper.sp_tip), (lower, lower.sp_base), (lower, lower.sp_tip))]
        ys = [p[1] for p in points]
        zs = [p[2] for p in points]
        front, back = min(ys) - 10.0, max(ys) + 1.0  # reaches the flavum; bone and flavum win where they meet
        bottom, top = 0.5 * (zs[2] + zs[3]), 0.5 * (zs[0] + zs[1])
        half = (INTERSPINOUS_HALF_WIDTH_MM, (back - front) / 2.0, (top - bottom) / 2.0)
        centre = disc.frame.point((0.0, (front + back) / 2.0, (top + bottom) / 2.0))
        shapes[f"interspinous_ligament.{name}"] = Primitive(Frame(centre, disc.frame.rotation), rounded_box(half, 1.0), half)
    return shapes


def supraspinous_line(skeleton: Skeleton) -> np.ndarray:
    """(z, x, y) of the spinous process tips T12-L5, ascending z (the ligament runs over them), and
    below them the back of the sacrum and coccyx in the midline (the median sacral crest, the
    hiatus, the coccyx), which the skin follows."""
    tips = [skeleton.layouts[n].world(skeleton.layouts[n].sp_tip) for n in VERTEBRA_NAMES[:-1]]
    tips += dorsal_crest_points(skeleton.layouts["S1"])
    return np.array(sorted((p[2], p[0], p[1]) for p in tips))


def supraspinous_shape(skeleton: Skeleton, top_z: float) -> VerticalTube:
    line = supraspinous_line(skeleton)
    ax, ay = SUPRASPINOUS_SEMI_AXES_MM
    z = np.concatenate([line[:, 0], [top_z]])
    cx = np.concatenate([line[:, 1], [line[-1, 1]]])
    cy = np.concatenate([line[:, 2], [line[-1, 2]]]) + ay - 1.0
    return VerticalTube(z, cx, cy, np.full(len(z), ax), np.full(len(z), ay))


# ---------------------------------------------------------------------------- body profile
@dataclass
class SpineProfile:
    """Per-vertebra world values (at the body centres), interpolated along z for soft tissues."""

    z: np.ndarray
    values: dict[str, np.ndarray] = field(default_factory=dict)

    def at(self, key: str, z: np.ndarray | float) -> np.ndarray:
        return np.interp(z, self.z, self.values[key])


def spine_profile(skeleton: Skeleton) -> SpineProfile:
    rows = []
    for name in VERTEBRA_NAMES:
        v = skeleton.layouts[name]
        centre = v.frame.origin
        if name == "S1":
            tp_x, tp_y = v.width / 2.0 + 24.0, v.world((0.0, 0.1 * v.depth, 0.0))[1]
        else:
            tips = [v.world(v.tp_tip[s]) for s in SIDE_SIGN]
            tp_x = 0.5 * abs(tips[0][0] - tips[1][0])
            tp_y = 0.5 * (tips[0][1] + tips[1][1])
        lamina_y = v.world(v.junction["left"])[1] + v.lamina_thickness + 2.0
        rows.append((centre[2], centre[0], centre[1], v.width / 2.0, v.depth / 2.0, tp_x, tp_y, lamina_y))
    rows.sort()
    array = np.array(rows)
    keys = ("x", "y", "half_width", "half_depth", "tp_x", "tp_y", "lamina_y")
    return SpineProfile(array[:, 0], {k: array[:, i + 1] for i, k in enumerate(keys)})


def _level_table(profile: SpineProfile, table: dict[str, tuple[float, ...]]) -> tuple[np.ndarray, ...]:
    """A muscle's per-level values (mm) at the profile's body-centre heights, one array per column of
    ``table``; zero where it is absent."""
    # The profile is sorted by ascending z, so its levels run from S1 up to T12.
    width = len(next(iter(table.values())))
    rows = [table.get(name, (0.0,) * width) for name in reversed(VERTEBRA_NAMES)]
    return tuple(np.array([r[i] for r in rows], float) for i in range(width))


@dataclass(eq=False)
class ErectorSpinae(Shape):
    """One side's erector spinae: the longissimus and, lateral to it, the iliocostalis, parted by a fat
    septum ``septum_mm`` thick (the iliocostalis gives way to the longissimus grown by it)."""

    longissimus: VerticalTube
    iliocostalis: VerticalTube
    septum_mm: float = ERECTOR_SEPTUM_MM

    def __post_init__(self) -> None:
        self.lower = np.minimum(self.longissimus.lower, self.iliocostalis.lower)
        self.upper = np.maximum(self.longissimus.upper, self.iliocostalis.upper)

    @property
    def tubes(self) -> tuple[VerticalTube, VerticalTube]:
        return self.longissimus, self.iliocostalis

    def sdf(self, x, y, z):
        medial = self.longissimus.sdf(x, y, z)
        lateral = np.maximum(self.iliocostalis.sdf(x, y, z), f32(self.septum_mm) - medial)
        return np.minimum(medial, lateral)


def _sacral_end(z: np.ndarray, values: list[np.ndarray], end_mm: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Nodes of a tube that thins from its S1 section (the first node) to a 2 mm wisp ``end_mm`` below it,
    where it ends: the muscle's attachment to the back of the sacrum, not a column to the grid's floor."""
    z = np.concatenate([[z[0] - end_mm], z])
    values = [np.concatenate([[v[0]], v]) for v in values]
    for semi_axis in values[2:]:
        semi_axis[0] = min(2.0, semi_axis[1])
    return z, values


def smooth_nodes(z: np.ndarray, values: list[np.ndarray], per_segment: int = 6) -> tuple[np.ndarray, list[np.ndarray]]:
    """Nodes of a tube resampled ``per_segment`` times between its levels on a monotone cubic through them.

    A muscle's section changes smoothly along the body; drawn straight between the vertebrae's levels its
    outline bends at each level, and a radiograph, which sums along the beam, draws those bends as lines.

    >>> z, (a,) = smooth_nodes(np.array([0.0, 10.0, 20.0]), [np.array([1.0, 3.0, 3.0])], per_segment=2)
    >>> z.tolist(), [round(float(v), 2) for v in a]
    ([0.0, 5.0, 10.0, 15.0, 20.0], [1.0, 2.38, 3.0, 3.0, 3.0])
    """
    dense = np.concatenate([np.linspace(a, b, per_segment, endpoint=False) for a, b in zip(z[:-1], z[1:])] + [z[-1:]])
    return dense, [PchipInterpolator(z, v)(dense) for v in values]


def muscle_shapes(profile: SpineProfile, top_z: float, bottom_z: float,
                  body: BodyAsymmetry = BodyAsymmetry()) -> dict[str, Shape]:
    """The psoas, quadratus lumborum, erector spinae and multifidus of each side along ``profile``; the
    paraspinal muscles' (erector spinae and multifidus) cross-sections take each side's share of ``body``'s
    left-minus-right difference in area."""
    shapes: dict[str, Shape] = {}
    z = profile.z
    x0, y0 = profile.values["x"], profile.values["y"]
    half_width, half_depth = profile.values["half_width"], profile.values["half_depth"]
    tp_x, tp_y, lamina_y = profile.values["tp_x"], profile.values["tp_y"], profile.values["lamina_y"]

    def tube(cx, cy, ax, ay, extend_top=True, extend_bottom=True, nodes=z):
        zz, values = smooth_nodes(np.asarray(nodes, float), [np.asarray(v, float) for v in (cx, cy, ax, ay)])
        if extend_bottom:
            zz, values = np.concatenate([[bottom_z], zz]), [np.concatenate([[v[0]], v]) for v in values]
        if extend_top:
            zz, values = np.concatenate([zz, [top_z]]), [np.concatenate([v, [v[-1]]]) for v in values]
        return VerticalTube(zz, *values)

    for side, s in SIDE_SIGN.items():
        # Both semi-axes by the square root: the section's area changes by the side's share, its shape stays.
        bulk = math.sqrt(1.0 + body.side(body.paraspinal_area, side))
        ax, ay = _level_table(profile, PSOAS_MM)
        shapes[f"muscle.psoas.{side}"] = tube(x0 + s * (half_width + 0.7 * ax), y0 + 0.1 * half_depth, ax, ay)
        ax, ay = _level_table(profile, QUADRATUS_MM)
        shapes[f"muscle.quadratus_lumborum.{side}"] = tube(x0 + s * (tp_x + 0.5 * ax), tp_y - 1.0, ax, ay,
                                                           extend_bottom=False)
        off, ax, ay = _level_table(profile, LONGISSIMUS_MM)
        ax, ay = ax * bulk, ay * bulk
        nodes, values = _sacral_end(z, [x0 + s * off, tp_y + 2.0 + ay, ax, ay], SACRAL_MUSCLE_END_MM)
        longissimus = tube(*values, extend_bottom=False, nodes=nodes)
        # The iliocostalis ends between L5 and S1 (its origin on the iliac crest), its border at L5's.
        border, ax, ay = (a[1:] for a in _level_table(profile, ILIOCOSTALIS_MM))
        ax, ay = ax * bulk, ay * bulk
        nodes = np.concatenate([[0.6 * z[0] + 0.4 * z[1]], z[1:]])
        border, ax, ay = (np.concatenate([[a[0]], a]) for a in (border, ax, ay))
        ax[0], ay[0] = 2.0, 2.0
        iliocostalis = tube(np.interp(nodes, z, x0) + s * (border - ax), np.interp(nodes, z, tp_y) + 1.0 + ay, ax, ay,
                            extend_bottom=False, nodes=nodes)
        shapes[f"muscle.erector_spinae.{side}"] = ErectorSpinae(longissimus, iliocostalis)
        ax, ay = (a * bulk for a in _level_table(profile, MULTIFIDUS_MM))
        nodes, values = _sacral_end(z, [x0 + s * (4.0 + ax), lamina_y + ay - 3.0, ax, ay], SACRAL_MUSCLE_END_MM)
        shapes[f"muscle.multifidus.{side}"] = tube(*values, extend_bottom=False, nodes=nodes)
    return shapes


def abdominal_wall_front_y(profile: SpineProfile, z: np.ndarray | float) -> np.ndarray:
    """y (mm) of the vertebral bodies' front that the anterior abdominal wall keeps :data:`LEAN_FRONT_MM` before, at z.

    Down to the most anterior body (the lordosis's apex) it follows the bodies' fronts; below it the wall keeps that
    body's, for the lower abdominal wall runs on down to the pubis while the lumbosacral junction and the sacrum tilt
    back behind the pelvic cavity (bladder, bowel). Following the sacrum back, the wall in front of the S1 body stood
    29 mm behind L4's (built-in patient, generator 62): the AP ray through S1 crossed 188 mm of body against L4's 209,
    where a real abdominal CT's crosses 249 against 246 (tests/data/totalsegmentator_lumbar, the S1 and L4 labels'
    centres), and the sacrum and the sacroiliac joints showed lighter than the lumbar bodies on every AP (issue 15).

    Below the S1 body's centre the wall curves back over the pubis and the groin to the sacrum's own front over
    :data:`GROIN_RECESS_MM`, so the grid's floor (below the ischial tuberosities) cuts no more body than before.

    >>> profile = SpineProfile(np.array([0.0, 40.0, 80.0]), {"y": np.array([40.0, 12.0, 20.0]),
    ...                                                        "half_depth": np.array([20.0, 20.0, 20.0])})
    >>> abdominal_wall_front_y(profile, np.array([-90.0, -30.0, 0.0, 20.0, 40.0, 60.0, 80.0])).tolist()
    [20.0, 6.0, -8.0, -8.0, -8.0, -4.0, 0.0]
    """
    fronts = profile.values["y"] - profile.values["half_depth"]
    apex = int(np.argmin(fronts))  # the profile runs from S1 (first) up: the bodies below the apex come before it
    held = np.where(np.arange(len(fronts)) < apex, fronts[apex], fronts)
    below = np.clip((profile.z[0] - np.asarray(z)) / GROIN_RECESS_MM, 0.0, 1.0)
    return np.interp(z, profile.z, held) + below * (fronts[0] - held[0])


# ------------------------------------------------------------------------------ the trunk
@dataclass
class Trunk:
    """The body's outline: a superellipse section whose back follows the midline and the erectors, and below
    the iliac crests the buttocks (:class:`anatomy_models.spine.glutes.Buttocks`)."""

    profile: SpineProfile
    supraspinous: VerticalTube
    erectors: tuple[ErectorSpinae, ErectorSpinae]
    midline_fat_mm: float
    flank_fat_mm: float
    paramedian_extra_mm: float = 0.0
    buttocks: Buttocks | None = None  # the buttocks' skin rises over the back below the iliac crests
    flank_difference_mm: float = 0.0  # the left flank's half-width minus the right's (BodyAsymmetry.flank_width_mm)

    def back_y(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """y (mm) of the back's skin surface at (x, z).

        Over each erector spinae the fat lies as a layer of even thickness: toward the midline it
        drops into the furrow over the spinous processes, toward the flank it rounds off over the
        muscle's lateral edge (the muscle's outline grown by the fat's thickness) instead of falling
        to the midline's level, so an oblique needle crosses as much fat as a vertical one. That outline
        is averaged across the back over a Gaussian of :data:`FURROW_ROUNDING_MM` (:func:`_across_back_taps`):
        the furrow's walls, 5 mm high, rose at 40-45 deg from a flat floor at every level, so a contralateral
        oblique's rays (35-40 deg to the back) ran along one plane and drew it as a straight line down the
        whole image (issue 16's CLO 50-55). Below the iliac crests the buttocks rise either side of the natal
        cleft (:class:`Buttocks`).
        """
        x, z = np.asarray(x), np.asarray(z)
        shape = np.broadcast_shapes(x.shape, z.shape)
        # The midline's and the erectors' sections once per height; the outline at each point in one compiled
        # loop (17 taps of 4 muscles in numpy were a third of the 1 mm patient's generation time).
        heights = z.astype(np.float64).ravel()
        ssl = self.supraspinous
        midline = (np.interp(heights, ssl.z, ssl.cy) + np.interp(heights, ssl.z, ssl.ay)).astype(np.float32) + \
            f32(self.midline_fat_mm)
        sections = np.stack([np.stack([np.interp(heights, tube.z, tube.cx), np.interp(heights, tube.z, tube.cy),
                                       np.maximum(np.interp(heights, tube.z, tube.ax), 1.0),
                                       np.interp(heights, tube.z, tube.ay)], axis=1)
                             for muscle in self.erectors for tube in muscle.tubes], axis=1)
        dtype = np.result_type(x.dtype, np.float32)  # x + float32 offset, as numpy would add them
        taps = _across_back_taps(FURROW_ROUNDING_MM)
        back = _over_the_erectors(np.broadcast_to(x, shape).astype(dtype).ravel(),
                                  np.broadcast_to(np.arange(z.size).reshape(z.shape), shape).ravel(),
                                  midline, sections, float(f32(self.midline_fat_mm + self.paramedian_extra_mm)),
                                  np.array([o for o, _ in taps], dtype=np.float32).astype(dtype),
                                  np.array([w for _, w in taps], dtype=np.float32)).reshape(shape)
        if self.buttocks is not None:
            back = smooth_max(back, self.buttocks.skin_y(x, z), 12.0)
        return back

    def posterior_y(self, z: np.ndarray) -> np.ndarray:
        """y just behind the back's highest point at each height z (same shape as z), mm.

        Taken over a fixed set of x, so it does not depend on which points are asked about; the
        trunk's superellipse reaches this far back and so rounds the flanks below it.
        """
        z = np.asarray(z, dtype=np.float32)
        across = np.arange(-150.0, 150.1, 2.0, dtype=np.float32)[:, None]
        highest = np.max(self.back_y(across, z.reshape(1, -1)), axis=0)
        return highest.reshape(z.shape) + np.float32(6.0)

    def section_sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, shrink_mm: float = 0.0, *,
                    back: np.ndarray | None = None, buttocks: np.ndarray | None = None) -> np.ndarray:
        """Approximate signed distance (mm) to the trunk's outline, optionally shrunk by ``shrink_mm``.

        ``back`` (:meth:`back_y` at x, z) and ``buttocks`` (``self.buttocks.sdf`` at x, y, z): given by a caller
        that has them already (the generator's outline and its shrunk copy share them, slab by slab)."""
        p = self.profile
        front = abdominal_wall_front_y(p, z) - LEAN_FRONT_MM - self.flank_fat_mm
        # Wider over the pelvis, from L4 down to S1, to the hips' breadth [ED], on a smooth step: a straight
        # ramp bends at both ends, and the flanks' bends are bars across an AP.
        z_l4, z_s1 = p.z[2], p.z[0]
        t = np.clip((z_l4 - z) / max(z_l4 - z_s1, 1.0), 0.0, 1.0)
        widen = HIP_WIDENING_MM * t * t * (3.0 - 2.0 * t)
        half_width = LEAN_HALF_WIDTH_MM + self.flank_fat_mm + widen - shrink_mm
        back = self.back_y(x, z) if back is None else back
        posterior = self.posterior_y(z)
        centre_y = (0.5 * (front + posterior)).astype(np.float32)
        half_y = (0.5 * (posterior - front)).astype(np.float32) - f32(shrink_mm)
        cx = p.at("x", z).astype(np.float32)
        if self.flank_difference_mm:  # +x is the patient's left (LPS): each flank takes its half
            half_width = half_width + np.where(x > cx, 0.5, -0.5) * self.flank_difference_mm
        half_width = np.asarray(half_width, dtype=np.float32)
        u, v = np.abs(x - cx) / half_width, np.abs(y - centre_y) / half_y
        e = f32(TORSO_EXPONENT)
        # The superellipse's first-order distance (r - 1) / |grad r|, r = (u^e + v^e)^(1/e), cut by the back
        # (_trunk_distance); its terms in u alone and v alone on their own (smaller) arrays.
        body = _trunk_distance(u ** e, v ** e, u ** (e - 1) / half_width, v ** (e - 1) / half_y, y,
                               back - f32(shrink_mm), 1.0 / e, 1 - e)
        if self.buttocks is None:
            return body
        # The buttocks round off behind and beside the pelvis beyond the trunk's section.
        buttocks = self.buttocks.sdf(x, y, z) if buttocks is None else buttocks
        return np.minimum(body, buttocks + f32(shrink_mm))


@numba.vectorize(["float32(float32, float32, float32, float32, float32, float32, float32, float32)"], cache=True)
def _trunk_distance(u_e, v_e, gu, gv, y, back, inverse_e, one_minus_e):
    """The trunk section's signed distance (mm) at a point: the superellipse's first-order distance
    ``(r - 1) / max(|grad r|, 1e-6)``, ``r = (u^e + v^e)^(1/e)``, from ``u_e = u^e``, ``v_e = v^e`` and the
    gradient's terms ``gu``, ``gv``, cut behind by the back's skin (``max(outline, y - back)``).

    One pass over the slab, not eleven: each number is numpy's float32 operation in the same order (its
    maximum's NaN kept), so the voxels stay the same (test_generator_identity).
    """
    r = (u_e + v_e) ** inverse_e
    grad = r ** one_minus_e * np.sqrt(gu * gu + gv * gv)
    tiny = np.float32(1e-6)
    grad = grad if grad >= tiny or grad != grad else tiny
    outline = (r - np.float32(1.0)) / grad
    behind = y - back
    return outline if outline >= behind or outline != outline else behind


def _across_back_taps(sigma_mm: float) -> tuple[tuple[float, float], ...]:
    """Offsets across the back (mm) and weights of a Gaussian of ``sigma_mm``, out to two of them, a quarter of
    one apart, the weights summing to 1.

    >>> taps = _across_back_taps(4.0)
    >>> len(taps), taps[0][0], round(sum(w for _, w in taps), 6)
    (17, -8.0, 1.0)
    """
    offsets = np.arange(-8, 9) * (sigma_mm / 4.0)
    weights = np.exp(-0.5 * (offsets / sigma_mm) ** 2)
    weights /= weights.sum()
    return tuple((float(o), float(w)) for o, w in zip(offsets, weights))


@numba.njit(cache=True)
def _over_the_erectors(x, row, midline, sections, fat, offsets, weights):
    """y (mm) of the back's skin at the points ``x[i]`` at the heights ``row[i]``, before the buttocks: at each
    tap ``offsets`` across the back, the midline's skin (``midline``, float32, per height) smooth-maxed with the
    fat over each erector's tube (``sections``: per height and tube cx, cy, ax, ay, float64) whose thickness is
    ``fat``, weighted by the tap's ``weights`` and summed (:meth:`Trunk.back_y`).

    Each number is the one numpy's arrays made, operation by operation and in the same precision (float64 for
    the sections, float32 for the blend and the sum, as :func:`anatomy_models.spine.sdf.smooth_max`), so the
    generated patient keeps every voxel.
    """
    out = np.empty(x.size, dtype=np.float32)
    k, half, one, zero = np.float32(12.0), np.float32(0.5), np.float32(1.0), np.float32(0.0)
    for i in range(x.size):
        r = row[i]
        total = np.float32(0.0)
        for tap in range(offsets.size):
            across = x[i] + offsets[tap]
            back = midline[r]
            for tube in range(sections.shape[1]):
                cx, cy, ax, ay = sections[r, tube, 0], sections[r, tube, 1], sections[r, tube, 2], sections[r, tube, 3]
                if abs(across) < abs(cx):  # medial to the muscle's crest: the fat over the muscle
                    d = (across - cx) / ax
                    t = max(1.0 - d * d, 0.0)
                    top = cy + ay * np.sqrt(t) + fat if t > 0 else -1e3
                else:  # lateral: the muscle's outline grown by the fat, rounding off over its edge
                    d = (across - cx) / (ax + fat)
                    outer = cy + (ay + fat) * np.sqrt(max(1.0 - d * d, 0.0))
                    top = outer if outer > cy else -1e3
                # smooth_max(back, top, 12) = -smooth_min(-back, -top, 12), in float32 step by step.
                a, b = -back, -np.float32(top)
                h = min(max((b - a) * half / k + half, zero), one)
                back = -((a - b) * h + b - k * h * (one - h))
            total += weights[tap] * back
        out[i] = total
    return out


def window_center(skeleton: Skeleton, flavum: Shape, interspace: str) -> np.ndarray:
    """Centre of an interlaminar window: midline, half-way across the gap, mid ligamentum flavum."""
    upper, lower = (skeleton.layouts[n] for n in interspace.split("-"))
    disc = skeleton.alignment.discs[interspace]
    # Half-way between the edges the flavum spans: the upper lamina's lower edge and the lower's upper
    # edge, on their ventral lines in the midline (on real vertebra shapes the laminae's closest
    # approach can be anywhere along their edges, so it is no reliable middle).
    middle = 0.5 * (upper.world(upper.lamina_ventral_point(0.0, upper.lamina_bottom_z))
                    + lower.world(lower.lamina_ventral_point(0.0, lower.lamina_top_z)))
    posterior = disc.frame.vector((0.0, 1.0, 0.0))
    t = np.arange(-25.0, 25.0, 0.02)
    samples = middle[None, :] + t[:, None] * posterior[None, :]
    coords = tuple(samples[:, i].astype(np.float32) for i in range(3))
    inside = (flavum.sdf(*coords) < 0) & (skeleton.vertebra_shape(upper.name).sdf(*coords) > 0) & \
        (skeleton.vertebra_shape(lower.name).sdf(*coords) > 0)
    if not inside.any():
        return middle
    return middle + posterior * float(t[inside].mean())


def midline_depth_ray(skeleton: Skeleton, flavum: Shape) -> tuple[np.ndarray, np.ndarray]:
    """Origin and direction of the L3-4 midline ray used for the BMI calibration (and its measurement).

    The ray starts at the interlaminar window's centre in the midline and points posterior in the
    disc frame (perpendicular to the back, as an interlaminar needle runs).
    """
    disc = skeleton.alignment.discs["L3-L4"]
    return window_center(skeleton, flavum, "L3-L4"), disc.frame.vector((0.0, 1.0, 0.0))


def _first_crossing(sdf_along, start: float, stop: float, steps: int = 4000, chunk: int = 500) -> float:
    """Smallest t in [start, stop] where ``sdf_along(t)`` becomes negative (nan if never), ``steps`` of them
    searched ``chunk`` at a time from ``start``: the skin lies a quarter of the way out along the calibration's
    ray, and the trunk's outline costs most there (every point's own height across the whole back).

    >>> _first_crossing(lambda t: 3.0 - t, 0.0, 10.0, steps=11, chunk=2), _first_crossing(lambda t: t, 0.0, 1.0, 5, 2)
    (4.0, nan)
    """
    t = np.linspace(start, stop, steps)
    for begin in range(0, steps, chunk):
        inside = sdf_along(t[begin:begin + chunk]) < 0
        if inside.any():
            return float(t[begin + np.argmax(inside)])
    return float("nan")


def calibrate_midline_fat(skeleton: Skeleton, flavum: dict[str, Shape], supraspinous: VerticalTube,
                          erectors: tuple[ErectorSpinae, ErectorSpinae], profile: SpineProfile,
                          params: SpineParameters) -> Trunk:
    """The trunk whose midline skin lies at the BMI's epidural depth (§4.9 [S98]) behind the epidural space."""
    flavum_shape = flavum["ligamentum_flavum.L3-L4"]
    origin, direction = midline_depth_ray(skeleton, flavum_shape)

    def along(shape_sdf):
        def f(t):
            p = origin[None, :] + t[:, None] * direction[None, :]
            return shape_sdf(*(p[:, i].astype(np.float32) for i in range(3)))
        return f

    # The epidural space ends where the ligamentum flavum begins, going back along the ray.
    epidural_edge = _first_crossing(along(flavum_shape.sdf), -15.0, 15.0)
    target = epidural_edge + epidural_depth_mm(params.bmi)
    trunk = Trunk(profile, supraspinous, erectors, 5.0, subcutaneous_fat_mm(params.bmi), paramedian_extra_fat_mm(params.bmi),
                  flank_difference_mm=skeleton.alignment.body.flank_width_mm)
    for _ in range(4):
        outside = _first_crossing(lambda t: -along(lambda x, y, z: trunk.section_sdf(x, y, z))(t), epidural_edge, 200.0)
        # Less fat than 1 mm cannot be built: very thin patients keep 1 mm over the ligament [ED].
        trunk.midline_fat_mm = max(trunk.midline_fat_mm + (target - outside), 1.0)
    return trunk


# ------------------------------------------------------------------------------ bowel gas and stool
# Where gas and stool lie in the abdomen of a patient lying prone, in front of the lumbar spine. Levels are
# fractions from S1 (0) to T12 (1), depths mm in front of the vertebral bodies (negative: behind their front).
# The ascending (patient's right) and descending (left) colon are retroperitoneal: they lie on the posterior
# abdominal wall in the paracolic gutters, lateral to the kidneys' lower poles and anterolateral to the
# quadratus lumborum, about 8-11 cm off the midline and level with the front of the vertebral bodies (Gray's
# Anatomy, 42nd ed., ch. "Large intestine"; Netter, Atlas of Human Anatomy, pl. "Posterior abdominal wall")
# [not yet in clinical.md]. So on an ipsilateral oblique, whose ray through the articular pillar runs forward
# toward the midline and the other side, they lie far lateral to the pillar and never over it. The transverse
# colon hangs anteriorly across at about L2-L3, the sigmoid low on the left [textbook plain-film anatomy];
# the small bowel's loops fill the middle, in front of the aorta and the mesentery's root, the jejunum up
# and left, the ileum down and right (Gray's, ch. "Small intestine"). On a plain film the colon shows
# mottled faeces (gas bubbles in stool) and columns of gas that follow its course, bulging at each haustrum
# and notched between them by the semilunar folds, never two matching columns: each side is drawn on its
# own [ED, plain-film reading]. Small-bowel gas lies in small irregular pockets, not balls.
COLON_SIDES = {
    # x range of the course's centre (mm), its depth range, its lowest and highest level ranges
    "ascending": ((-102.0, -84.0), (0.0, 25.0), (0.05, 0.3), (0.55, 0.85)),  # caecum up to the hepatic flexure
    "descending": ((82.0, 102.0), (-5.0, 20.0), (0.15, 0.45), (0.7, 1.0)),   # splenic flexure is higher [ED]
}
STOOL_LUMP_RADIUS_MM = (7.0, 17.0)    # [ED] the colon is 5-6 cm across; its content fills part of it, in lumps
COLON_GAS_DIAMETER_MM = (5.0, 40.0)   # a gas column's width, from a thin streak to a distended colon [ED]
COLON_GAS_COLUMNS = (1, 3)            # gas columns per side (one or two), each a run of haustra [ED]
HAUSTRUM_LENGTH_MM = (8.0, 35.0)      # [ED] haustra are 1-3.5 cm apart on a plain film
HAUSTRUM_LENGTH_PER_WIDTH = (0.45, 0.75)  # a haustrum is shorter along the colon than the colon is wide [ED]
HAUSTRA_PER_COLUMN = (5, 13)
# The haustra of a column overlap by this share of their length: the notch between two is a semilunar fold [ED].
HAUSTRAL_OVERLAP = (0.1, 0.3)
GAS_FLATTENING = (0.45, 0.8)          # front-to-back depth of a gas column over its width, prone [ED]
# Small pockets of gas at a haustrum's margin, in the recesses between the folds: per haustrum, and their
# size as a share of the column's width [ED]. They notch and bud the margin so that no stretch of it is a
# perfect arc. A column holds no gas-fluid level: colonic content is semi-solid, and a level on a film is
# a sign of obstruction or ileus, not of the normal colon (a straight floor was issue 15's "gas cut by a
# straight line" on the lateral).
MARGIN_POCKETS_PER_HAUSTRUM = (0, 3)
MARGIN_POCKET_SHARE = (0.12, 0.25)
# The patient lies prone: gas rises out of the anterior, now dependent, transverse colon into the posterior colon,
# the descending colon above all (as CT colonography's prone scan shows it) [ED for the chance]; seen end-on on a
# lateral, a transverse colon full of gas was most of issue 15's "cluster of white blobs in front of the spine".
OTHER_COLON_SEGMENTS = (
    # where the course starts across (mm), its length across (mm), depth, level range and chance of gas
    ((-70.0, 0.0), (60.0, 130.0), (55.0, 75.0), (0.55, 0.8), 0.35),     # transverse colon
    ((10.0, 40.0), (30.0, 60.0), (30.0, 60.0), (0.0, 0.3), 0.5),        # sigmoid, from the left to the midline
)
# Small-bowel gas is scant in a normal adult, less common and in less quantity than the colon's (it is absorbed
# through the wall faster), the whole intestine holding less than 200 mL of gas (abdominal radiography texts,
# e.g. "Abnormal bowel gas patterns and extraluminal gas in abdomen", clinicalpub.com; Radiology Masterclass,
# "Bowel gas pattern") [not yet in clinical.md]: a few pockets, not a cluster in front of the spine.
SMALL_BOWEL_POCKETS = (2, 7)          # gas-holding small-bowel segments [ED]
SMALL_BOWEL_RADIUS_MM = (4.0, 8.0)    # [ED] small bowel 2.5 cm across, gas filling part of it
# Where the small bowel's pockets lie: x range (mm), level range, and their share: the jejunum up and to the
# left, the ileum down and to the right (Gray's, ch. "Small intestine"); both in front of the aorta and the
# mesentery's root on the spine, 35-75 mm in front of the vertebral bodies [ED].
SMALL_BOWEL_REGIONS = {"jejunum": ((-15.0, 70.0), (0.35, 0.75), 0.5), "ileum": ((-70.0, 15.0), (0.05, 0.45), 0.5)}
SMALL_BOWEL_DEPTH_MM = (35.0, 75.0)
# Colonic gas is no clean pocket: it lies among the faeces in bubbles and streaks, so a plain film shows the colon
# as mottled lucency with haustral folds, grey where gas and stool overlap along the beam, never a uniform white
# oval with a sharp rim (the radiographic "faecal mottling" of the normal colon; Radiology Masterclass, "Bowel gas
# pattern") [ED for the numbers]. Inside each column's lumen gas fills where a smooth random field (a sum of plane
# waves of random direction) rises above a level: this share of the lumen per column, in bubbles about half
# the waves' length across.
COLON_GAS_SHARE = (0.25, 0.5)         # of the lumen's volume, per column [ED]
GAS_MOTTLE_WAVELENGTH_MM = (6.0, 12.0)  # [ED] bubbles and streaks of 3-6 mm between lumps of stool
GAS_MOTTLE_WAVES = 10
# The ascending and descending colon lie in front of the posterior pararenal fat, the kidneys and the quadratus
# lumborum, and lateral to the psoas (Gray's, ch. "Large intestine"; Netter, pl. "Posterior abdominal wall"):
# their contents keep this far (mm) off those, beyond their own half-depth [ED]; a course that would cross
# them is moved forward. Painted over by the retroperitoneal fat, gas there lost its back to a cut face.
RETROPERITONEUM_CLEARANCE_MM = 3.0


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation matrix (QR of a Gaussian matrix, signs fixed), so lumps lie every way."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _lump(rng: np.random.Generator, centre: np.ndarray, radius_mm: float, spread: tuple[float, float]) -> Primitive:
    """An ellipsoid of about ``radius_mm``, each semi-axis scaled by ``spread``, turned at random."""
    radii = tuple(float(r) for r in radius_mm * rng.uniform(*spread, size=3))
    return Primitive(Frame.at(centre, _random_rotation(rng)), ellipsoid(radii), radii)


def _front_y(profile: SpineProfile, z: float) -> float:
    return float(profile.at("y", z) - profile.at("half_depth", z))


@dataclass(eq=False)
class Mottled(Shape):
    """``shape``'s inside where a smooth random field rises above ``level``: gas broken into bubbles and
    streaks among faeces (:data:`COLON_GAS_SHARE`). The field is a sum of plane waves (``waves``, rad/mm, one
    per row; ``phases``) scaled to unit variance, so ``level`` is a normal quantile of the share kept; its
    distance is the field's excess over ``level`` divided by its mean slope (a first-order sdf, as the
    partial-volume ramp needs)."""

    shape: Shape
    waves: np.ndarray
    phases: np.ndarray
    level: float

    def __post_init__(self) -> None:
        self.lower, self.upper = self.shape.lower, self.shape.upper

    @classmethod
    def drawn(cls, rng: np.random.Generator, shape: Shape, share: float) -> Mottled:
        """A field of :data:`GAS_MOTTLE_WAVES` waves drawn from ``rng``, ``share`` of it above its level."""
        directions = rng.normal(size=(GAS_MOTTLE_WAVES, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        lengths = rng.uniform(*GAS_MOTTLE_WAVELENGTH_MM, size=(GAS_MOTTLE_WAVES, 1))
        phases = rng.uniform(0.0, 2.0 * np.pi, GAS_MOTTLE_WAVES)
        return cls(shape, 2.0 * np.pi * directions / lengths, phases, float(special.ndtri(1.0 - share)))

    def with_shape(self, shape: Shape) -> Mottled:
        """The same field over another lumen (each piece of a column shares its column's field)."""
        return Mottled(shape, self.waves, self.phases, self.level)

    def sdf(self, x, y, z):
        field = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z)), np.float32)
        for (kx, ky, kz), phase in zip(self.waves.astype(np.float32), self.phases.astype(np.float32)):
            field += np.cos(kx * x + ky * y + kz * z + phase)
        field *= f32(np.sqrt(2.0 / len(self.phases)))
        slope = f32(np.sqrt(np.mean(np.sum(self.waves ** 2, axis=1))))
        return np.maximum(self.shape.sdf(x, y, z), (f32(self.level) - field) / slope)


def clear_of(points: np.ndarray, retroperitoneum: list[Shape], clearance_mm: float) -> np.ndarray:
    """``points`` (n, 3) moved forward (-y) until each lies ``clearance_mm`` off every shape of ``retroperitoneum``
    (their sdf's minimum); a point already clear stays."""
    points = np.array(points, dtype=np.float64)
    for _ in range(6):
        coords = tuple(points[:, i].astype(np.float32) for i in range(3))
        distance = np.min([shape.sdf(*coords) for shape in retroperitoneum], axis=0) if retroperitoneum else \
            np.full(len(points), np.inf)
        short = np.maximum(clearance_mm - distance, 0.0)
        if not short.any():
            break
        points[:, 1] -= short + 0.5
    return points


def colon_course(profile: SpineProfile, side: str, seed: int) -> np.ndarray:
    """Points (n, 3) along one side's colon, caudal to cranial: a smooth, wandering curve, never straight.

    Drawn from its own stream of the patient's seed, so the stool and the gas of a side share it.
    """
    rng = np.random.default_rng([seed, 8, list(COLON_SIDES).index(side)])
    x_range, depth_range, low_range, high_range = COLON_SIDES[side]
    z_low, z_high = float(profile.z[0]), float(profile.z[-1])
    t = np.linspace(rng.uniform(*low_range), rng.uniform(*high_range), 9)
    z = z_low + t * (z_high - z_low)
    # A random walk, smoothed, bends the course sideways and in depth by a centimetre or two.
    x = rng.uniform(*x_range) + np.convolve(np.cumsum(rng.normal(0.0, 5.0, 11)), np.ones(3) / 3.0, "valid")
    depth = rng.uniform(*depth_range) + np.convolve(np.cumsum(rng.normal(0.0, 3.0, 11)), np.ones(3) / 3.0, "valid")
    y = np.array([_front_y(profile, zi) for zi in z]) - depth
    return np.stack([x, y, z], axis=1)


def colon_content_shapes(profile: SpineProfile, seed: int, retroperitoneum: list[Shape]) -> list[Shape]:
    """Stool in the ascending and descending colon, seeded: each side a different column of lumps.

    Lumps of 14-34 mm along each side's own course, blended into one irregular mass, each in front of
    ``retroperitoneum`` (:func:`clear_of`); the CT synthesis fills it with mottled gas and faeces (see
    ``ct_synthesis.STOOL_HU``).
    """
    rng = np.random.default_rng([seed, 9])
    shapes: list[Shape] = []
    for side in COLON_SIDES:
        course = colon_course(profile, side, seed)
        centres = course[:-1] + rng.uniform(0.0, 1.0, (len(course) - 1, 1)) * np.diff(course, axis=0)
        lumps = [_lump(rng, c + rng.normal(0.0, 4.0, 3), float(rng.uniform(*STOOL_LUMP_RADIUS_MM)), (0.6, 1.1))
                 for c in centres if rng.uniform() < 0.85]
        lumps = [_moved(lump, clear_of(lump.frame.origin[None], retroperitoneum,
                                       max(lump.extent) + RETROPERITONEUM_CLEARANCE_MM)[0]) for lump in lumps]
        shapes.append(SmoothUnion(lumps, 4.0))
    return shapes


def _moved(piece: Primitive, origin: np.ndarray) -> Primitive:
    return Primitive(Frame(np.asarray(origin, np.float64), piece.frame.rotation), piece.local_sdf, piece.extent)


def _along_course(course: np.ndarray, arc_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points (n, 3) and unit tangents (n, 3) at arc lengths ``arc_mm`` along the polyline ``course``."""
    steps = np.linalg.norm(np.diff(course, axis=0), axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(steps)])
    arc = np.clip(arc_mm, 0.0, cumulative[-1])
    points = np.stack([np.interp(arc, cumulative, course[:, i]) for i in range(3)], axis=1)
    segment = np.clip(np.searchsorted(cumulative, arc, side="right") - 1, 0, len(steps) - 1)
    tangents = np.diff(course, axis=0)[segment] / steps[segment, None]
    return points, tangents


def haustral_column(rng: np.random.Generator, course: np.ndarray, width_mm: float) -> list[Shape]:
    """A column of colonic gas along ``course`` (a polyline, mm) about ``width_mm`` across: a lumen
    through which a run of haustra bulge, each shorter along the course than it is wide (haustra are
    sacculations 1-3.5 cm apart on a 5-6 cm colon, [ED] plain-film reading) and of its own width and
    sideways shift, so the column is a segmented, wavering tube whose margins the semilunar folds
    between the haustra notch part-way across, never a string of balls; small pockets of gas bud from
    the haustra's margins (:data:`MARGIN_POCKETS_PER_HAUSTRUM`). In the prone patient the gas lies on the
    faeces, its section flattened front to back [ED]; no fluid level cuts it (a straight floor on the
    lateral). The column stops where the course ends (no haustra piled at its end)."""
    steps = np.linalg.norm(np.diff(course, axis=0), axis=1)
    count = int(rng.integers(*HAUSTRA_PER_COLUMN))
    lengths = np.clip(width_mm * rng.uniform(*HAUSTRUM_LENGTH_PER_WIDTH, size=count), *HAUSTRUM_LENGTH_MM)
    # A thin streak of gas is longer between its folds than it is wide (its haustra are as long as a wide one's).
    streak = width_mm * HAUSTRUM_LENGTH_PER_WIDTH[1] < HAUSTRUM_LENGTH_MM[0]
    if streak:
        lengths = max(HAUSTRUM_LENGTH_MM[0], 1.3 * width_mm) * rng.uniform(1.0, 1.5, size=count)
    pitch = lengths * (1.0 - rng.uniform(*HAUSTRAL_OVERLAP, size=count))
    start = rng.uniform(0.0, max(float(steps.sum() - pitch.sum()), 1.0))
    arc = start + np.concatenate([[0.0], np.cumsum(pitch[:-1])]) + 0.5 * lengths
    keep = arc + 0.5 * lengths <= steps.sum() + 0.25 * width_mm
    keep[:2] = True  # a short course still holds a two-haustrum pocket
    arc, lengths = arc[keep], lengths[keep]
    points, tangents = _along_course(course, arc)
    pieces: list[Primitive] = []
    for point, tangent, length in zip(points, tangents, lengths):
        # Across: in the coronal plane, square to the course; the flat axis is what is left (front to back).
        across = np.cross(tangent, np.array([0.0, 1.0, 0.0]))
        across = across / max(float(np.linalg.norm(across)), 1e-6)
        # Each haustrum sits a little to one side and up or down of the course: a lumpy column, whose margins
        # are no straight lines on either view.
        shift = across * rng.normal(0.0, 0.08 * width_mm) + np.array([0.0, rng.normal(0.0, 0.12 * width_mm), 0.0])
        radii = (float(0.5 * length), float(0.5 * width_mm * rng.uniform(0.85, 1.1)),
                 float(0.5 * width_mm * rng.uniform(*GAS_FLATTENING)))
        frame = Frame.from_axes(point + shift, tangent, across)
        pieces.append(Primitive(frame, ellipsoid(radii), radii))
    # The lumen under the folds, from each haustrum's centre to the next's: narrower than the haustra and
    # shallower, for a fold rings the lumen all round, so the haustra's backs are separate domes (their tops
    # level with each other would be one long flat strip).
    centres = [piece.frame.origin for piece in pieces]
    for a, b, before, after in zip(centres[:-1], centres[1:], pieces[:-1], pieces[1:]):
        fold = float(rng.uniform(0.6, 0.75))
        half_across = 0.5 * width_mm * fold
        half_depth = min(before.extent[2], after.extent[2], half_across) * fold
        half_length = float(np.linalg.norm(b - a)) / 2.0 + 0.5 * half_depth
        across = np.cross(b - a, np.array([0.0, 1.0, 0.0]))
        frame = Frame.from_axes((a + b) / 2.0, b - a, across if np.linalg.norm(across) > 1e-6 else (1.0, 0.0, 0.0))
        extent = (half_length, half_across, half_depth)
        pieces.append(Primitive(frame, elliptic_rod(half_across, half_depth, half_length), extent))
    for haustrum, tangent in zip(pieces[:len(points)], tangents):
        pieces += _margin_pockets(rng, haustrum, tangent, width_mm)
    return pieces


def _margin_pockets(rng: np.random.Generator, haustrum: Primitive, tangent: np.ndarray,
                    width_mm: float) -> list[Primitive]:
    """Small flat pockets of gas on ``haustrum``'s margin (either side, anywhere along it), each longer along
    the colon than across and flatter still front to back, never a ball; inside the column's 1.2 widths."""
    pockets = []
    across = haustrum.frame.rotation[:, 1]
    for _ in range(int(rng.integers(*MARGIN_POCKETS_PER_HAUSTRUM))):
        radius = max(width_mm * float(rng.uniform(*MARGIN_POCKET_SHARE)), 2.5)
        offset = across * rng.choice([-1.0, 1.0]) * 0.3 * width_mm + tangent * rng.uniform(-0.6, 0.6) * haustrum.extent[0]
        radii = (1.3 * radius, 0.8 * radius, 0.55 * radius)
        pockets.append(Primitive(Frame.from_axes(haustrum.frame.origin + offset, tangent, across), ellipsoid(radii),
                                 radii))
    return pockets


def _segment_course(rng: np.random.Generator, profile: SpineProfile, x_range, length_range, depth_range,
                    level_range) -> np.ndarray:
    """A wandering course (n, 3) for the transverse colon or the sigmoid within its ranges."""
    z_low, z_high = float(profile.z[0]), float(profile.z[-1])
    x0 = rng.uniform(*x_range)
    x1 = x0 + rng.uniform(*length_range)
    t0, t1 = sorted(rng.uniform(*level_range, size=2))
    n = 7
    wander = np.convolve(rng.normal(0.0, 6.0, n + 2), np.ones(3) / 3, "valid")  # smoothed noise: it sags and rises, mm
    z = z_low + np.linspace(t0, t1, n) * (z_high - z_low) + wander
    x = np.linspace(x0, x1, n) + rng.normal(0.0, 4.0, n)
    y = np.array([_front_y(profile, zi) for zi in z]) - rng.uniform(*depth_range) + rng.normal(0.0, 3.0, n)
    return np.stack([x, y, z], axis=1)


def _small_bowel_pocket(rng: np.random.Generator, centre: np.ndarray) -> list[Primitive]:
    """A small, irregular pocket of small-bowel gas: two to four flattened ellipsoids run together along
    a short bend of the loop (a bubble caught between folds, not a ball)."""
    radius = float(rng.uniform(*SMALL_BOWEL_RADIUS_MM))
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    pieces = []
    for step in range(int(rng.integers(2, 5))):
        point = centre + direction * step * radius * 1.2 + rng.normal(0.0, 1.5, 3)
        radii = tuple(float(r) for r in radius * np.array([rng.uniform(1.2, 1.8), rng.uniform(0.5, 0.9),
                                                             rng.uniform(0.4, 0.7)]))
        pieces.append(Primitive(Frame.at(point, _random_rotation(rng)), ellipsoid(radii), radii))
        direction = direction + rng.normal(0.0, 0.5, 3)
        direction /= np.linalg.norm(direction)
    return pieces


def bowel_gas_shapes(profile: SpineProfile, seed: int, retroperitoneum: list[Shape]) -> list[Shape]:
    """Gas in the bowel in front of the lumbar spine, seeded: mottled haustrated columns and small irregular pockets.

    The ascending and descending colon hold one or two gas columns each, 5-40 mm across, along their own
    course (:func:`colon_course`, shared with their stool), each a run of haustra
    (:func:`haustral_column`) in front of ``retroperitoneum`` (:func:`clear_of`); the transverse colon and
    the sigmoid a column when they hold gas. Each column's gas is mottled among its faeces (:class:`Mottled`).
    The small bowel holds small irregular pockets (:func:`small_bowel_gas_shapes`). Every patient (seed)
    draws which segments hold gas, where, how many and how wide.
    """
    rng = np.random.default_rng([seed, 7])
    shapes: list[Shape] = []
    columns = []
    for side in COLON_SIDES:
        course = colon_course(profile, side, seed)
        for _ in range(int(rng.integers(*COLON_GAS_COLUMNS))):
            width = float(np.exp(rng.uniform(*np.log(COLON_GAS_DIAMETER_MM))))  # narrow ones more common
            columns.append((course + rng.normal(0.0, 3.0, 3), width))
    for (x_range, length_range, depth_range, level_range, chance) in OTHER_COLON_SEGMENTS:
        if rng.uniform() > chance:
            continue
        course = _segment_course(rng, profile, x_range, length_range, depth_range, level_range)
        columns.append((course, float(np.exp(rng.uniform(*np.log((10.0, COLON_GAS_DIAMETER_MM[1])))))))
    for course, width in columns:
        # The course's clearance holds the haustra's half-depth, their sideways and front-to-back wander (two
        # standard deviations, haustral_column) and the margin.
        reach = width * (0.5 * GAS_FLATTENING[1] + 0.24) + RETROPERITONEUM_CLEARANCE_MM
        pieces = haustral_column(rng, clear_of(course, retroperitoneum, reach), width)
        field = Mottled.drawn(rng, pieces[0], float(rng.uniform(*COLON_GAS_SHARE)))
        shapes += [field.with_shape(piece) for piece in pieces]
    return shapes + small_bowel_gas_shapes(profile, rng)


def small_bowel_gas_shapes(profile: SpineProfile, rng: np.random.Generator) -> list[Shape]:
    """Small irregular pockets of small-bowel gas (:func:`_small_bowel_pocket`), each in the jejunum's or
    the ileum's region (:data:`SMALL_BOWEL_REGIONS`)."""
    z_low, z_high = float(profile.z[0]), float(profile.z[-1])
    regions = list(SMALL_BOWEL_REGIONS.values())
    shapes: list[Shape] = []
    for _ in range(int(rng.integers(*SMALL_BOWEL_POCKETS))):
        x_range, level_range, _ = regions[rng.choice(len(regions), p=[share for _, _, share in regions])]
        centre_z = z_low + rng.uniform(*level_range) * (z_high - z_low)
        centre = np.array([rng.uniform(*x_range), _front_y(profile, centre_z) - rng.uniform(*SMALL_BOWEL_DEPTH_MM),
                           centre_z])
        shapes += _small_bowel_pocket(rng, centre)
    return shapes


# ------------------------------------------------------------------------ kidneys and fat planes
# The kidney: 10-12 cm long, 5-7.5 cm wide, 2.5-3 cm thick (semi-axes 55 x 30 x 16 mm here), its
# upper pole at T12 and lower pole at L3, the left about a centimetre higher than the right, lateral
# to the psoas with its long axis tilted so the upper pole is medial and posterior (textbook anatomy,
# e.g. Gray's; [ED] not yet in clinical.md). Perirenal fat wraps it (~10 mm); a fat plane (3 mm, and
# ~18 mm of retroperitoneal fat on their lateral side [ED], the posterior pararenal space) separates psoas
# and quadratus lumborum from the viscera: the lateral psoas margin it draws against the fat is the psoas
# shadow of an AP film.
KIDNEY_SEMI_AXES_MM = (30.0, 16.0, 55.0)
KIDNEY_CENTRE_LEVEL = {"left": ("L1", "L2", 0.6), "right": ("L1", "L2", 0.9)}  # between the bodies' centres
KIDNEY_TILT_DEG = (15.0, 25.0)  # (medial lean of the upper pole in the coronal, backward lean in the sagittal)
PERIRENAL_FAT_MM = 10.0
MUSCLE_FAT_PLANE_MM = 3.0
MUSCLE_LATERAL_FAT_MM = 18.0


def kidney_shapes(skeleton: Skeleton, profile: SpineProfile) -> dict[str, Shape]:
    """Each kidney (``kidney.{side}``) and its perirenal fat (part of ``retroperitoneal_fat.{side}``)."""
    shapes: dict[str, Shape] = {}
    for side, s in SIDE_SIGN.items():
        upper, lower, t = KIDNEY_CENTRE_LEVEL[side]
        centre_z = (1 - t) * skeleton.layouts[upper].frame.origin[2] + t * skeleton.layouts[lower].frame.origin[2]
        centre_z = float(centre_z)
        centre = np.array([profile.at("x", centre_z) + s * (profile.at("half_width", centre_z) + 55.0),
                           profile.at("y", centre_z) + 5.0, centre_z])
        lean, back = np.radians(KIDNEY_TILT_DEG)
        # The long axis (w) from the lower pole to the upper: up, toward the midline and backward.
        w = np.array([-s * np.sin(lean), np.sin(back), np.cos(lean) * np.cos(back)])
        frame = Frame.from_axes(centre, np.cross(np.array([0.0, 1.0, 0.0]), w), np.array([0.0, 1.0, 0.0]))
        frame = Frame.from_axes(centre, frame.rotation[:, 0], np.cross(w, frame.rotation[:, 0]))
        shapes[f"kidney.{side}"] = Primitive(frame, ellipsoid(KIDNEY_SEMI_AXES_MM), KIDNEY_SEMI_AXES_MM)
        grown = tuple(r + PERIRENAL_FAT_MM for r in KIDNEY_SEMI_AXES_MM)
        shapes[f"perirenal_fat.{side}"] = Primitive(frame, ellipsoid(grown), grown)
    return shapes


def retroperitoneal_fat_shapes(muscles: dict[str, Shape], kidneys: dict[str, Shape]) -> dict[str, list[Shape]]:
    """``retroperitoneal_fat.{side}``: the fat planes round psoas and quadratus (:func:`fat_plane_shapes`) and the
    perirenal fat round the kidney (:func:`kidney_shapes`), painted before the muscles and organs inside them."""
    return {side: planes + [kidneys[side.replace("retroperitoneal_fat", "perirenal_fat")]]
            for side, planes in fat_plane_shapes(muscles).items()}


def fat_plane_shapes(muscles: dict[str, Shape]) -> dict[str, list[Shape]]:
    """The fat round each psoas and quadratus lumborum: the muscle's tube grown by
    :data:`MUSCLE_FAT_PLANE_MM`, and by :data:`MUSCLE_LATERAL_FAT_MM` on its lateral side (painted
    before the muscle, which fills its inside)."""
    planes: dict[str, list[Shape]] = {}
    grow, lateral = MUSCLE_FAT_PLANE_MM, MUSCLE_LATERAL_FAT_MM
    for side, s in SIDE_SIGN.items():
        planes[f"retroperitoneal_fat.{side}"] = [
            VerticalTube(m.z, m.cx + s * (lateral - grow) / 2.0, m.cy,
                         np.where(m.ax > 0, m.ax + (lateral + grow) / 2.0, 0.0), np.where(m.ay > 0, m.ay + grow, 0.0))
            for m in (muscles[f"muscle.psoas.{side}"], muscles[f"muscle.quadratus_lumborum.{side}"])]
    return planes


# ------------------------------------------------------------------------------ epidural region
def canal_region(skeleton: Skeleton, flavum: dict[str, Shape]) -> list[Shape]:
    """Where the epidural compartment may be: the canal of each vertebra and interspace, and the foramina.

    Each piece is a box in its frame cut by planes 2 mm behind the laminae's ventral faces (or half-way
    into the ligamentum flavum), so it cannot reach behind the posterior wall of the canal. The
    compartment itself is what the sac's surroundings reach inside these pieces without crossing bone,
    disc, ligamentum flavum or facet joint (a flood fill in the generator).
    """
    region: list[Shape] = []
    far = (400.0, 400.0, 400.0)
    for name in VERTEBRA_NAMES:
        v = skeleton.layouts[name]
        d = v.geometry.dims
        below = v.height / 2.0 + (SAC_END_BELOW_S1_MM if name == "S1" else 1.0)
        y0, y1 = v.depth / 2.0 - 4.0, v.depth / 2.0 + d.canal_ap_mm + 2.0
        half = (d.canal_transverse_mm / 2.0 + 2.0, (y1 - y0) / 2.0, (v.height / 2.0 + 1.0 + below) / 2.0)
        box = Primitive(Frame(v.world((0.0, (y0 + y1) / 2.0, (v.height / 2.0 + 1.0 - below) / 2.0)), v.frame.rotation),
                        rounded_box(half), half)
        cuts = []
        for side in SIDE_SIGN:
            normal = v.lamina_normal(side)
            along = v.lamina_medial - v.lamina_lateral[side]
            origin = v.world(v.lamina_medial + normal * 2.0)
            cuts.append(Primitive(Frame.from_axes(origin, v.frame.vector(along), v.frame.vector(v.lamina_lean))
                                  if np.cross(along, v.lamina_lean) @ normal > 0 else
                                  Frame.from_axes(origin, v.frame.vector(v.lamina_lean), v.frame.vector(along)),
                                  half_space(), far))
        region.append(Intersection([box] + cuts))
    for name in INTERSPACE_NAMES:
        upper, lower = (skeleton.layouts[n] for n in name.split("-"))
        disc = skeleton.alignment.discs[name]
        transverse = min(upper.geometry.dims.canal_transverse_mm, lower.geometry.dims.canal_transverse_mm)
        y0, y1 = upper.depth / 2.0 - 4.0, upper.depth / 2.0 + upper.geometry.dims.canal_ap_mm + 12.0
        reach = disc.mean_mm / 2.0 + 10.0
        half = (transverse / 2.0 + 2.0, (y1 - y0) / 2.0, reach)
        box = Primitive(Frame(disc.frame.point((0.0, (y0 + y1) / 2.0, 0.0)), disc.frame.rotation), rounded_box(half), half)
        cuts = []
        for plate in flavum[f"ligamentum_flavum.{name}"].parts:
            # Half-way into the ligament: the plate frame's third axis is its normal, pointed back here.
            u, v, n = plate.frame.rotation.T
            posterior = disc.frame.vector((0.0, 1.0, 0.0))
            rotation = plate.frame.rotation if n @ posterior > 0 else np.column_stack([v, u, -n])
            cuts.append(Primitive(Frame(plate.frame.origin, rotation), half_space(), far))
        region.append(Intersection([box] + cuts))
        for side, s in SIDE_SIGN.items():
            joint = skeleton.joints[(name, side)]
            joint_local = disc.frame.rotation.T @ (joint.frame.origin - disc.frame.origin)
            top_pedicle = upper.world(upper.pedicle_center[side] - np.array([0.0, 0.0, upper.geometry.dims.pedicle_height_mm / 2]))
            bottom_pedicle = lower.world(lower.pedicle_center[side] + np.array([0.0, 0.0, lower.geometry.dims.pedicle_height_mm / 2]))
            top = disc.frame.rotation.T @ (top_pedicle - disc.frame.origin)
            bottom = disc.frame.rotation.T @ (bottom_pedicle - disc.frame.origin)
            inner = transverse / 2.0
            outer = abs(top[0]) + upper.geometry.dims.pedicle_width_mm / 2.0 + 2.0
            front, back = upper.depth / 2.0 - 3.0, joint_local[1] - 4.0
            half = ((outer - inner) / 2.0, (back - front) / 2.0, (top[2] - bottom[2]) / 2.0 + 1.0)
            centre = disc.frame.point((s * (inner + outer) / 2.0, (front + back) / 2.0, (top[2] + bottom[2]) / 2.0))
            region.append(Primitive(Frame(centre, disc.frame.rotation), rounded_box(half), half))
    return region
