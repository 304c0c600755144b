"""The buttocks: gluteus maximus and medius and the buttock fat behind the sacrum and the ilia.

Without them the model's back ran flat from the lumbar spine over the sacrum, and a tilted or oblique ray
through L5-S1 crossed less tissue low down than a patient's pelvis holds. Here, per side:

- the gluteus medius (with the minimus under it) covers the outer face of the iliac wing from just
  below the crest down, 38.8 +- 1.3 mm thick (medius and minimus together by B-mode ultrasound in
  healthy adults of mean BMI 22.9: Whiler et al., Physiother Can 2017;69:212, PMC5963550) [not yet in
  clinical.md];
- the gluteus maximus lies behind it and behind the posterior ilium and the side of the sacrum, a
  curved band from the posterior superior iliac spine and the sacrum's lateral border out round the
  hip, its upper border at the back of the iliac crest (Gray's Anatomy, ch. "Pelvic girdle, gluteal
  region and thigh"); with the small deep muscles of the hip under it (piriformis, the rotators, not
  told apart) it reaches 55 mm behind the sacroiliac joint's level at its middle, the maximus itself
  about 30 mm of that [ED, textbook proportions]. Its upper border is oblique, not level: it runs from
  the posterior superior iliac spine down and out to the top of the greater trochanter (palpatory
  anatomy: "the upper border of the muscle coincides with the line connecting the upper border of the
  trochanter with the upper border of the posterior superior iliac spine"; Tixa, Atlas of Palpatory
  Anatomy of the Lower Extremities), the spine level with S2 (MacEwen, Surgical Anatomy, "Gluteal
  region") and the trochanter's top about 13 cm further out and 10 cm lower [ED: a hip breadth of
  35 cm, the trochanter level with the coccyx], so the buttock's every section is sheared down
  laterally (:data:`MAXIMUS_BORDER_SLOPE`). A level border painted a straight bar across an AP of the
  pelvis (readers, stop 23);
- the buttock's subcutaneous fat over it, whose thickness grows with BMI: total gluteal subcutaneous
  fat (mm) = -33.56 + 0.078 x age + 3.042 x BMI in men, rising 4 mm per BMI unit in women against 3 in
  men (ultrasound of 150 adults, Frank et al., Plast Reconstr Surg 2019, doi:10.1097/PRS.0000000000005707)
  [not yet in clinical.md]. The model's patient is in the fifties (as its CT numbers assume); women's
  fat is taken 10 mm thicker than men's at BMI 25 [ED]. Over the sacrum itself the fat stays the
  back's own (the thinnest soft tissue of the buttock is at the posterior superior iliac spine, next to
  the sacrum; Lee et al., Arch Plast Surg 2014;41:133), so the two buttocks rise either side of the
  natal cleft.

Muscle and fat take the CT numbers and attenuation of the rest of the model's muscle and fat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.interpolate import PchipInterpolator

from anatomy_models.spine.pelvis import (ANTERIOR_END_DEG, ARC_CENTRE_OFFSET_MM, CREST_BEHIND_MM, CREST_FRONT_MM, FLARE,
                                         WING_THICKNESS_MM)
from anatomy_models.spine.sacrum import SacroiliacJoint
from anatomy_models.spine.sdf import (FAR_MM, Bounded, Frame, Intersection, Primitive, Shape, VerticalTube, f32,
                                      half_space)
from anatomy_models.spine.vertebra import SIDE_SIGN

GLUTEUS_MEDIUS_MM = 38.8            # medius with minimus (Whiler et al. 2017)
PATIENT_AGE_YEARS = 55.0            # the model's patient (ct_synthesis's trabecular bone assumes the fifties)
FEMALE_EXTRA_FAT_MM = 10.0          # at BMI 25 [ED]
MIN_BUTTOCK_FAT_MM = 8.0            # the thinnest buttock fat built, for the leanest patients [ED]
# The maximus's section: an ellipse's back half, centred this far lateral to the sacroiliac joint's centre
# and level with it; its half-width across and its reach behind that level (mm) [ED, set so that its
# medial edge is at the sacrum's lateral border, its lateral edge wraps round to the hip and its deep face
# lies on the gluteus medius].
MAXIMUS_CENTRE_LATERAL_MM = 50.0
MAXIMUS_HALF_WIDTH_MM = 65.0
MAXIMUS_REACH_MM = 55.0
ENVELOPE_SIDEWAYS = 0.3             # the buttock fat's reach across, as a share of its thickness behind [ED]
# Heights of the maximus's sections from the sacroiliac joint's centre (mm), above the joint's centre (laterally
# lower by MAXIMUS_BORDER_SLOPE), and how far each has grown (0: its upper border at the back of the iliac
# crest, 1: full, level with the lower sacrum, where the buttock stands out most), half grown below the posterior
# superior iliac spine, whose dimple is the buttock's thinnest point (Lee et al. 2014) [ED].
MAXIMUS_PROFILE = ((CREST_BEHIND_MM, -15.0, -65.0), (0.0, 0.5, 1.0))
# How far the maximus's sections are sheared down per mm out from the sacroiliac joint: with the band growing out
# from its medial edge as it fills, the buttock's upper border then falls 0.78 mm per mm, as the posterior
# superior iliac spine to the top of the greater trochanter does, 10 cm down over 13 cm out [ED, above]
# (tests/anatomy_models/spine/test_glutes.py measures it on the skin).
MAXIMUS_BORDER_SLOPE = 0.5
# The medius covers the wing from this far below the crest (mm) round the arc from the ASIS end to this
# angle (deg, from the lateral direction), short of the posterior superior iliac spine [ED].
MEDIUS_BELOW_CREST_MM = 6.0
# The buttocks meet in the midline below the top of the natal cleft, the lower corner of the sacral (Michaelis)
# rhombus, whose side corners are the posterior superior iliac spines and which is nearly a square on its tip
# (Schuenke, Functional Anatomy, Thieme 2007, p. 133): the cleft's top lies as far below the spines as they lie
# off the midline, at S4-S5. Above it the sacrum's flat triangle keeps the back's own skin (the thinnest over
# the buttock, Lee et al. 2014). An open trough between them, 4 cm wide, was a lucent band down the pelvis's
# midline, and L5-S1 lighter than the tissue beside them on a tilted AP (readers, stop 23). The meeting blends
# in over this height (mm) below the rhombus's sides [ED: over 25 mm its edge was a sharp V on the AP, where the
# cheeks close on each other gradually]. Below it the cheeks touch across the cleft, so an AP ray in the midline crosses
# them as one; only the cleft's mouth is open, this deep (mm) below the buttocks' crowns [ED].
CLEFT_BLEND_MM = 70.0
CLEFT_OPEN_MM = 20.0
# Beyond this distance (mm) from a buttock its distance is not worked out (:meth:`Buttocks.sdf`): the trunk's
# outline is read only within the 12 mm abdominal wall and the skin's partial-volume band of its surface.
BUTTOCK_REACH_MM = 20.0
MEDIUS_POSTERIOR_END_DEG = 65.0


def buttock_fat_mm(bmi: float, sex: str) -> float:
    """Total subcutaneous fat over the buttock (mm) for a BMI and sex (Frank et al. 2019).

    >>> round(buttock_fat_mm(25.0, "male"), 1), round(buttock_fat_mm(25.0, "female"), 1)
    (46.8, 56.8)
    >>> round(buttock_fat_mm(35.0, "male") - buttock_fat_mm(25.0, "male"), 1)   # 3 mm per BMI unit
    30.4
    """
    male = -33.56 + 0.078 * PATIENT_AGE_YEARS + 3.042 * bmi
    if sex == "female":
        male += FEMALE_EXTRA_FAT_MM + (4.0 - 3.042) * (bmi - 25.0)
    return max(male, MIN_BUTTOCK_FAT_MM)


@dataclass(eq=False)
class Within(Shape):
    """The inside of a world sdf ``function(x, y, z)`` of broadcastable coordinate arrays (the trunk's
    outline), unbounded: use it to cut other shapes, which bound the box."""

    function: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

    def __post_init__(self) -> None:
        self.lower, self.upper = np.full(3, -FAR_MM, np.float64), np.full(3, FAR_MM, np.float64)

    def sdf(self, x, y, z):
        return self.function(x, y, z)


@dataclass(eq=False)
class ObliqueTube(Shape):
    """A :class:`VerticalTube` whose sections fall ``slope`` mm per mm out from ``x0`` on the side ``side_sign``
    (+1 left, -1 right): the tube's node heights are read at the point's own height raised by
    ``slope * side_sign * (x - x0)`` (a shear, so the distance is an estimate, exact across y).

    Below ``meets_midline_below`` (world z of the natal cleft's top, mm; None: nowhere) and the lines rising from
    it at 45 deg to ``x0``, the sections' medial halves stretch across to the midline (fully
    :data:`CLEFT_BLEND_MM` below those lines), so that the two buttocks meet there.
    """

    tube: VerticalTube
    x0: float
    side_sign: float
    slope: float
    meets_midline_below: float | None = None

    def __post_init__(self) -> None:
        tube = self.tube
        self.lower, self.upper = tube.lower.copy(), tube.upper.copy()
        out = self.side_sign * (np.array([tube.lower[0], tube.upper[0]]) - self.x0)
        self.lower[2] = tube.z[0] - self.slope * out.max()
        self.upper[2] = tube.z[-1] - self.slope * out.min()
        if self.meets_midline_below is not None:  # the stretched medial half reaches across the midline
            half = max(abs(tube.lower[0]), abs(tube.upper[0]))
            self.lower[0], self.upper[0] = -half, half

    def level(self, x, z):
        """The tube's own height (mm) at world (x, z)."""
        return z + f32(self.slope * self.side_sign) * (x - f32(self.x0))

    def section(self, x, z) -> tuple[np.ndarray, ...]:
        """The section's cx, cy, ax, ay (float32) at world (x, z) and whether (x, z) lies between the caps, ``ax``
        the semi-axis on (x, z)'s side of the centre."""
        level = np.asarray(self.level(x, z), dtype=np.float64)
        tube = self.tube
        cx, cy, ax, ay = (np.interp(level, tube.z, a).astype(np.float32) for a in (tube.cx, tube.cy, tube.ax, tube.ay))
        return cx, cy, self._medial_semi_axis(x, z, cx, ax, ay), ay, (level >= tube.z[0]) & (level <= tube.z[-1])

    def _medial_semi_axis(self, x, z, cx, ax, ay):
        """``ax``, stretched on the section's medial side below :attr:`meets_midline_below` until the section
        stands :data:`CLEFT_OPEN_MM` short of its full height at the midline (the cleft's open part)."""
        if self.meets_midline_below is None:
            return ax
        # Below the rhombus's lower sides, which rise at 45 deg from the cleft's top to the spines: the cheeks close
        # in along a V, not all at one height (a level seam drew a bar across the AP's foot).
        corner = f32(self.meets_midline_below) + np.minimum(np.abs(x), f32(abs(self.x0)))
        t = np.clip((corner - z) / f32(CLEFT_BLEND_MM), 0.0, 1.0)
        meeting = t * t * (3.0 - 2.0 * t)
        # The ellipse's height at the midline, as a share of its full height behind its centre.
        share = np.clip((ay - f32(CLEFT_OPEN_MM)) / np.maximum(ay, f32(1.0)), 0.0, 0.95)
        reach = np.abs(cx) / np.sqrt(1.0 - share * share)
        medial = f32(self.side_sign) * (x - cx) < 0
        return np.where(medial, ax + meeting * np.maximum(reach - ax, 0.0), ax).astype(np.float32)

    def sdf(self, x, y, z):
        level = self.level(x, z)
        if self.meets_midline_below is None:
            return self.tube.sdf(x, y, level)
        # The medial half stretched: x mapped onto the tube's own ellipse (a distance estimate off by the stretch).
        cx, _, ax, _, _ = self.section(x, z)
        own = np.interp(np.asarray(level, dtype=np.float64), self.tube.z, self.tube.ax).astype(np.float32)
        return self.tube.sdf(cx + (x - cx) * np.maximum(own, f32(0.05)) / np.maximum(ax, f32(0.05)), y, level)


@dataclass(frozen=True)
class Buttocks:
    """The two gluteus maximus bands and the buttock surfaces over them.

    ``maximus`` are the bands' outer ellipses (the muscle is their back half, see :func:`gluteal_muscles`);
    ``envelopes`` the same ellipses grown by the buttock fat: the skin over the buttock, whose lateral
    reach (the hips, 17-18 cm off the midline [ED]) the trunk's outline takes in.
    """

    maximus: tuple[ObliqueTube, ObliqueTube]
    envelopes: tuple[ObliqueTube, ObliqueTube]

    def skin_y(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """y (mm) of the buttocks' skin at (x, z); -1e3 where there is no buttock."""
        result = np.full(np.broadcast_shapes(np.shape(x), np.shape(z)), -1e3, dtype=np.float32)
        for envelope in self.envelopes:
            cx, cy, ax, ay, between = envelope.section(x, z)
            t = 1.0 - ((x - cx) / np.maximum(ax, 1.0)) ** 2
            inside = (t > 0) & between
            result = np.maximum(result, np.where(inside, cy + ay * np.sqrt(np.clip(t, 0.0, None)), -1e3))
        return result.astype(np.float32)

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Approximate signed distance (mm) to the buttocks' skin: the back halves of the envelopes.

        Exact (as the envelopes' estimate) wherever it is below :data:`BUTTOCK_REACH_MM`; on a grid's
        axes (x, y, z shaped (n, 1, 1), (1, n, 1), (1, 1, n)) the voxels further than that beyond an
        envelope's ends or in front of it are not evaluated and read ``FAR_MM``: the buttocks fill the
        lowest third of the volume, and every caller reads the trunk's distance only near its skin.
        """
        result = np.full(np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z)), FAR_MM, dtype=np.float32)
        for envelope in self.envelopes:
            near = _near_envelope(envelope, x, y, z)
            if near is None:
                continue
            rows, slices = near
            whole = rows is ...
            box = ... if whole else (slice(None), rows, slices)
            ys, zs = (y, z) if whole else (y[:, rows], z[:, :, slices])
            cy = f32(envelope.tube.cy[0])  # the band's back half: behind its (constant) centre
            result[box] = np.minimum(result[box], np.maximum(envelope.sdf(x, ys, zs), cy - ys))
        return result


def _near_envelope(envelope: ObliqueTube, x: np.ndarray, y: np.ndarray, z: np.ndarray):
    """The rows (a slice of y's) and slices (of z's) that hold every point within :data:`BUTTOCK_REACH_MM` of
    ``envelope``'s ends and not further in front of its centre, when x, y and z are a grid's axes (shaped
    (n, 1, 1), (1, n, 1), (1, 1, n)); ``(..., ...)``, all of them, for other points; None when no point is
    that near. The tube's caps and its back-half plane are exact distances: a point left out is that far."""
    if [np.ndim(a) for a in (x, y, z)] != [3, 3, 3] or (np.shape(x)[1:], np.shape(y)[::2], np.shape(z)[:2]) != \
            ((1, 1), (1, 1), (1, 1)):
        return ..., ...
    reach = f32(BUTTOCK_REACH_MM)
    rows = np.flatnonzero(y[0, :, 0] >= f32(np.min(envelope.tube.cy)) - reach)
    slices = np.flatnonzero((z[0, 0, :] >= f32(envelope.lower[2]) - reach) & (z[0, 0, :] <= f32(envelope.upper[2]) + reach))
    if len(rows) == 0 or len(slices) == 0:
        return None
    return slice(rows[0], rows[-1] + 1), slice(slices[0], slices[-1] + 1)


def maximus_growth(nodes: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Heights (mm from the sacroiliac joint's centre, ascending) and growth (0-1) of the maximus's sections
    through :data:`MAXIMUS_PROFILE`, sampled on a monotone cubic: its slope changes smoothly, where straight
    pieces put a kink in the buttock's outline that a radiograph draws as a straight bar across the image.

    >>> heights, grown = maximus_growth()
    >>> [round(float(v), 3) for v in (heights[0], grown[0], heights[-1], grown[-1])]
    [-65.0, 1.0, 35.0, 0.0]
    >>> bool(np.all(np.diff(grown) < 0))   # it grows steadily downward
    True
    """
    heights, growth = (np.asarray(a, dtype=np.float64)[::-1] for a in MAXIMUS_PROFILE)
    samples = np.linspace(heights[0], heights[-1], nodes)
    # A flat knot beyond each end: the outline leaves the full and the empty section with no slope.
    knots = np.concatenate([[heights[0] - 15.0], heights, [heights[-1] + 15.0]])
    values = np.concatenate([[growth[0]], growth, [growth[-1]]])
    return samples, PchipInterpolator(knots, values)(samples)


def buttocks(joints: dict[str, SacroiliacJoint], bottom_z: float, bmi: float, sex: str,
             back_fat_mm: float) -> Buttocks:
    """The buttocks of a patient whose sacroiliac joints are ``joints`` (by side), down to ``bottom_z``;
    ``back_fat_mm`` is the fat over the flanks above them, which the buttock fat grows from as the
    maximus does."""
    fat = buttock_fat_mm(bmi, sex)
    heights, growth = maximus_growth()
    grown = np.concatenate([[1.0], growth])
    maximus, envelopes = [], []
    for side, s in SIDE_SIGN.items():
        joint = joints[side].frame.origin
        # The sections are sheared: the bottom node low enough that the buttock still reaches bottom_z at the midline.
        z = np.concatenate([[bottom_z - MAXIMUS_BORDER_SLOPE * (abs(joint[0]) + 1.0)], joint[2] + heights])
        # Its medial edge stays on the sacrum's border while it grows out: the muscle arises highest medially.
        ax = MAXIMUS_HALF_WIDTH_MM * np.maximum(grown, 0.3)
        cx = joint[0] + s * (MAXIMUS_CENTRE_LATERAL_MM - MAXIMUS_HALF_WIDTH_MM + ax)
        cy = np.full(len(z), joint[1])
        ay = MAXIMUS_REACH_MM * grown
        maximus.append(ObliqueTube(VerticalTube(z, cx, cy, ax, ay), joint[0], s, MAXIMUS_BORDER_SLOPE))
        # The fat rounds the buttock off toward the cleft and the hip as well as behind [ED].
        added = back_fat_mm + (fat - back_fat_mm) * grown
        cleft_top = joint[2] - abs(joint[0])  # the rhombus's lower corner (the joint's centre: the spine's level)
        envelopes.append(ObliqueTube(VerticalTube(z, cx, cy, ax + ENVELOPE_SIDEWAYS * added, ay + added), joint[0], s,
                                     MAXIMUS_BORDER_SLOPE, cleft_top))
    return Buttocks(tuple(maximus), tuple(envelopes))


def _crest_coefficients(start_deg: float, crest) -> np.ndarray:
    """The crest's height along the whole iliac arc (its back end past the medius's), as the wing's own
    polynomial in the arc's angle (rad): float32 coefficients, highest power first."""
    back = math.degrees(math.atan2(ARC_CENTRE_OFFSET_MM[1], ARC_CENTRE_OFFSET_MM[0]))
    nodes = np.radians(np.array([back, (start_deg + back) / 2.0, start_deg]))
    return np.polyfit(nodes, np.array(crest[::-1]), 2).astype(np.float32)


def medius_box(radius: float, start_deg: float, end_deg: float, crest, bottom: float) -> tuple[np.ndarray, np.ndarray]:
    """Local (u, v, w) lower and upper corners (mm) of a box holding :func:`_medius_sdf`'s slab, 1 mm to spare.

    The slab is a curved band: evaluating its whole arc's square, as its extent did, cost a tenth of a 1 mm
    patient's generation. Its corners are found on the arc sampled every degree, at both ends of its height.

    >>> lower, upper = medius_box(100.0, 0.0, 90.0, (50.0, 50.0, 50.0), -20.0)
    >>> [round(float(a)) for a in (*lower, *upper)]   # a quarter arc, r from 97.5 (w = -20) to 155.5 (w = 44)
    [-1, -1, -21, 156, 156, 45]
    """
    angles = np.radians(np.linspace(start_deg, end_deg, int(abs(end_deg - start_deg)) + 2))
    top = float(np.max(np.polyval(_crest_coefficients(start_deg, crest), angles))) - MEDIUS_BELOW_CREST_MM
    heights = np.array([bottom, max(top, bottom)])
    inner = radius + WING_THICKNESS_MM / 2.0 + FLARE * heights
    radii = np.concatenate([inner, inner + GLUTEUS_MEDIUS_MM])
    u = np.outer(radii, np.cos(angles))
    v = np.outer(radii, np.sin(angles))
    lower = np.array([u.min(), v.min(), heights[0]]) - 1.0
    upper = np.array([u.max(), v.max(), heights[1]]) + 1.0
    return lower, upper


def _medius_sdf(radius: float, start_deg: float, end_deg: float, crest, bottom: float):
    """Local sdf of a gluteus medius in the iliac arc's frame (u lateral, v posterior, w up from the
    sacroiliac joint's centre): a curved slab on the wing's outer face, from the arc's ASIS end to
    ``end_deg``, from ``bottom`` up to a little below the crest (``crest``: its heights at the front,
    summit and back, as :mod:`anatomy_models.spine.pelvis` draws it)."""
    a0, a1 = math.radians(start_deg), math.radians(end_deg)
    middle, half = f32((a0 + a1) / 2.0), f32((a1 - a0) / 2.0)
    inner = f32(radius + WING_THICKNESS_MM / 2.0)
    coefficients = _crest_coefficients(start_deg, crest)
    thickness, bottom_w = f32(GLUTEUS_MEDIUS_MM), f32(bottom)

    def sdf(u, v, w):
        r = np.sqrt(u * u + v * v)
        angle = np.arctan2(v, u)
        face = inner + f32(FLARE) * w
        across = np.abs(r - face - thickness / 2) - thickness / 2
        along = (np.abs(angle - middle) - half) * face
        clipped = np.clip(angle, a0, a1)
        top = coefficients[0] * clipped ** 2 + coefficients[1] * clipped + coefficients[2] - f32(MEDIUS_BELOW_CREST_MM)
        vertical = np.maximum(w - top, bottom_w - w)
        outside = np.sqrt(np.maximum(across, 0) ** 2 + np.maximum(along, 0) ** 2 + np.maximum(vertical, 0) ** 2)
        return outside + np.minimum(np.maximum(np.maximum(across, along), vertical), 0)
    return sdf


def gluteal_muscles(joints: dict[str, SacroiliacJoint], tuffier_z: float, bottom_z: float, found: Buttocks,
                    interior: Shape) -> dict[str, Shape]:
    """``muscle.gluteus_maximus.{side}`` and ``muscle.gluteus_medius.{side}`` inside ``interior`` (the
    trunk within its skin and subcutaneous fat). The maximus is the back half of its band's ellipse (with
    the small deep muscles of the hip under it, piriformis and the rotators, not told apart [ED]); the
    medius a slab on the outer face of the iliac wing, whose arc (centre, radius, flare) is the one
    :func:`anatomy_models.spine.pelvis.ilium_parts` builds, painted over the maximus where they meet."""
    shapes: dict[str, Shape] = {}
    far = (FAR_MM, FAR_MM, FAR_MM)
    for (side, s), outer in zip(SIDE_SIGN.items(), found.maximus):
        # The back half: y behind the level it grows from (a half-space w < 0 whose w points forward).
        behind = Primitive(Frame.from_axes((0.0, float(outer.tube.cy[0]), 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
                           half_space(), far)
        shapes[f"muscle.gluteus_maximus.{side}"] = Intersection([outer, behind, interior])
        joint = joints[side].frame.origin
        dx, dy = ARC_CENTRE_OFFSET_MM
        radius = math.hypot(dx, dy)
        centre = np.array([joint[0] - s * dx, joint[1] - dy, joint[2]])
        crest = (CREST_FRONT_MM, tuffier_z - joint[2], CREST_BEHIND_MM)
        sdf = _medius_sdf(radius, ANTERIOR_END_DEG, MEDIUS_POSTERIOR_END_DEG, crest, bottom_z - joint[2])
        reach = radius + WING_THICKNESS_MM + GLUTEUS_MEDIUS_MM + FLARE * max(abs(bottom_z - joint[2]), crest[1])
        height = max(abs(bottom_z - joint[2]), crest[1]) + 1.0
        medius = Primitive(Frame(centre, np.diag([s, 1.0, 1.0])), sdf, (reach, reach, height))
        # Only the slab's own box is evaluated (its frame mirrors u on the right: x = centre + s u).
        low, high = medius_box(radius, ANTERIOR_END_DEG, MEDIUS_POSTERIOR_END_DEG, crest, bottom_z - joint[2])
        corners = centre + np.array([[s * low[0], low[1], low[2]], [s * high[0], high[1], high[2]]])
        medius = Bounded(medius, corners.min(axis=0), corners.max(axis=0))
        shapes[f"muscle.gluteus_medius.{side}"] = Intersection([medius, interior])
    return shapes
