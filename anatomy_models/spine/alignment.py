"""Where each vertebra and disc sits: the sagittal stack (lordosis), the coronal curve (scoliosis).

Every vertebra gets a local frame with its origin at the centre of its body, u toward the patient's
left, v posterior and w superior (the bisector of its two endplate normals); every disc gets a frame
the same way at the midpoint between its endplate centres. The stack is built from the sacrum up:
the S1 endplate is tilted forward by the sacral slope, each disc and body then turns the next frame
back by its wedge angle, and finally the whole column is moved so the L3 body centre is the origin.

Examples
--------
>>> spine = align_spine(SpineParameters())
>>> round(spine.lordosis_deg(), 1)             # L1 superior to S1 superior endplate
55.0
>>> bool(spine.vertebrae["L4"].frame.origin[2] < spine.vertebrae["L3"].frame.origin[2])   # L4 below L3
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from anatomy_models.spine.morphometry import INTERSPACES, VERTEBRAE, InterspaceReference, VertebraReference
from anatomy_models.spine.parameters import SpineParameters
from anatomy_models.spine.sdf import Frame

# Vertebrae of the model, cranial to caudal; S1 stands for the sacrum.
VERTEBRA_NAMES = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")
INTERSPACE_NAMES = tuple(f"{a}-{b}" for a, b in zip(VERTEBRA_NAMES[:-1], VERTEBRA_NAMES[1:]))
LORDOSIS_INTERSPACES = INTERSPACE_NAMES[1:]  # L1-L2 .. L5-S1
LORDOSIS_VERTEBRAE = ("L1", "L2", "L3", "L4", "L5")

# Degenerative disc height loss per grade, as a fraction of the height, weighted toward the lower
# discs where degeneration concentrates [ED].
DISC_LOSS_PER_GRADE = 0.12
DISC_LOSS_WEIGHT = {"T12-L1": 0.4, "L1-L2": 0.5, "L2-L3": 0.6, "L3-L4": 0.8, "L4-L5": 1.0, "L5-S1": 1.0}
# Thinnest a disc may get at its posterior margin when the lordosis is forced up, mm [ED].
MIN_DISC_HEIGHT_MM = 2.0
# No spine is symmetric. Each vertebra and interspace of a generated spine gets a small left-right difference
# drawn from the patient's seed (a normal draw of these standard deviations times the parameter
# ``natural_asymmetry``, cut at two of them; 1 by default, so every generated patient has them):
# - the facet angle (tropism, the left joint's angle minus the right's): left-right asymmetry is common
#   (clinical.md §4.6 [S82], randomised +-5 deg per side there); 4 deg, as the drawn patients' tropism;
# - the pedicle's isthmus width (left minus right), 0.6 mm [ED: under a tenth of the width, within the
#   spread of the sexes' means in clinical.md §4.2];
# - the transverse process's length (left minus right), 2 mm [ED: a tenth of the longest, L3's 19 mm,
#   §4.7 [S87]];
# - the vertebra's axial rotation, 1 deg (+ turns the body toward the patient's left) [ED: the normal,
#   non-scoliotic spine has a pre-existent axial rotation of each vertebra, measured on the CTs of 50
#   people from T2 to L5 (Kouwenhoven et al., Spine 2006;31:1467), of a few degrees at most in the lumbar spine].
NATURAL_ASYMMETRY_SD = {"facet_tropism_deg": 4.0, "pedicle_width_mm": 0.6, "transverse_process_length_mm": 2.0,
                        "axial_rotation_deg": 1.0}
# Beyond the vertebrae the body differs too, drawn the same way from a stream of the seed of its own (so the
# vertebrae's draws stay what they were):
# - the iliac crest's height (left minus right), 3 mm [ED: an anatomic leg-length inequality is found in 90 % of
#   people, 5.2 +- 4.1 mm (Knutson, Chiropr Osteopat 2005;13:11), and tilts the standing pelvis by as much; lying
#   down the load is off and what stays is the hemipelves' own difference, taken as a few mm];
# - the hip bone's size (left over right, minus 1), 0.015 [ED: 4 mm of a 28 cm bi-iliac breadth];
# - the paraspinal muscles' cross-section (multifidus and erector spinae; left minus right, as a fraction of
#   their mean), 0.05: in 126 men without back pain the multifidus's mean area was 7.3-11.1 cm2 on the right
#   against 6.9-10.8 on the left, the right larger in 65-68 % (Niemelainen et al., Spine 2011;36:2152), a few
#   per cent, one way or the other in each person;
# - the trunk's half-width at the flanks (left minus right), 4 mm [ED: 1.5 % of a 25 cm half-width].
BODY_ASYMMETRY_SD = {"iliac_crest_height_mm": 3.0, "hip_bone_size": 0.015, "paraspinal_area": 0.05,
                     "flank_width_mm": 4.0}


class LeftMinusRight:
    """A record of left-minus-right differences; each side takes half."""

    @staticmethod
    def side(value: float, side: str) -> float:
        """The share of a left-minus-right difference ``value`` on ``side``: +half on the left, -half on the right."""
        return 0.5 * value if side == "left" else -0.5 * value


@dataclass(frozen=True)
class NaturalAsymmetry(LeftMinusRight):
    """One vertebra's left-right differences (left minus right; each side gets half) and axial rotation."""

    pedicle_width_mm: float = 0.0
    transverse_process_length_mm: float = 0.0
    axial_rotation_deg: float = 0.0


@dataclass(frozen=True)
class BodyAsymmetry(LeftMinusRight):
    """The pelvis's and the soft tissues' left-right differences (left minus right; each side gets half), as
    :data:`BODY_ASYMMETRY_SD` describes them."""

    iliac_crest_height_mm: float = 0.0
    hip_bone_size: float = 0.0
    paraspinal_area: float = 0.0
    flank_width_mm: float = 0.0


def natural_asymmetry(params: SpineParameters) -> tuple[dict[str, NaturalAsymmetry], dict[str, float]]:
    """Each vertebra's :class:`NaturalAsymmetry` and each interspace's facet tropism (deg), drawn from the
    patient's seed (:data:`NATURAL_ASYMMETRY_SD` times ``params.natural_asymmetry``); the same seed always
    gives the same spine.

    >>> vertebrae, tropism = natural_asymmetry(SpineParameters(seed=7, natural_asymmetry=1.0))
    >>> bool(vertebrae["L4"].pedicle_width_mm != 0.0), bool(abs(tropism["L4-L5"]) <= 8.0)
    (True, True)
    >>> natural_asymmetry(SpineParameters(seed=7, natural_asymmetry=0.0))[1]["L4-L5"] == 0.0   # a symmetric spine
    True
    """
    rng = np.random.default_rng([params.seed, 47])

    def draw(kind: str) -> float:
        return float(np.clip(rng.normal(), -2.0, 2.0)) * NATURAL_ASYMMETRY_SD[kind] * params.natural_asymmetry

    vertebrae = {name: NaturalAsymmetry(draw("pedicle_width_mm") * params.skeleton_scale,
                                        draw("transverse_process_length_mm") * params.skeleton_scale,
                                        draw("axial_rotation_deg")) for name in VERTEBRA_NAMES}
    tropism = {name: draw("facet_tropism_deg") for name in INTERSPACE_NAMES}
    return vertebrae, tropism


def body_asymmetry(params: SpineParameters) -> BodyAsymmetry:
    """The pelvis's and soft tissues' :class:`BodyAsymmetry`, drawn from the patient's seed
    (:data:`BODY_ASYMMETRY_SD` times ``params.natural_asymmetry``, cut at two of them; the crest's height scaled
    with the skeleton); the same seed always gives the same body.

    >>> body_asymmetry(SpineParameters(seed=7)) == body_asymmetry(SpineParameters(seed=7)) != body_asymmetry(
    ...     SpineParameters(seed=8))
    True
    >>> body_asymmetry(SpineParameters(natural_asymmetry=0.0)) == BodyAsymmetry()
    True
    """
    rng = np.random.default_rng([params.seed, 48])
    draws = {kind: float(np.clip(rng.normal(), -2.0, 2.0)) * sd * params.natural_asymmetry
             for kind, sd in BODY_ASYMMETRY_SD.items()}
    draws["iliac_crest_height_mm"] *= params.skeleton_scale
    return BodyAsymmetry(**draws)


def sagittal_rotation(tilt_deg: float) -> np.ndarray:
    """Rotation whose w axis leans forward (toward -y, anterior) by ``tilt_deg`` from +z."""
    t = math.radians(tilt_deg)
    return np.array([[1.0, 0.0, 0.0], [0.0, math.cos(t), -math.sin(t)], [0.0, math.sin(t), math.cos(t)]])


def axis_rotation(axis: int, angle_deg: float) -> np.ndarray:
    """Right-handed rotation by ``angle_deg`` about coordinate axis 0 (x), 1 (y) or 2 (z)."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    i, j = [k for k in range(3) if k != axis]
    rotation = np.eye(3)
    rotation[i, i], rotation[i, j], rotation[j, i], rotation[j, j] = c, -s, s, c
    if axis == 1:  # keep the right-hand rule for the (z, x) pair
        rotation = rotation.T
    return rotation


@dataclass(frozen=True)
class VertebraGeometry:
    """One vertebra: its reference dimensions (already scaled) and its frame."""

    name: str
    dims: VertebraReference
    frame: Frame
    scale: float
    asymmetry: NaturalAsymmetry = NaturalAsymmetry()

    def pedicle_width_mm(self, side: str) -> float:
        """The pedicle's isthmus width on ``side`` (the reference's, with the side's natural difference)."""
        return self.dims.pedicle_width_mm + self.asymmetry.side(self.asymmetry.pedicle_width_mm, side)

    def transverse_process_length_mm(self, side: str) -> float:
        """The transverse process's length on ``side`` (the reference's, with the side's natural difference)."""
        return self.dims.transverse_process_length_mm + self.asymmetry.side(
            self.asymmetry.transverse_process_length_mm, side)

    @property
    def height_mm(self) -> float:
        return self.dims.body_height_mm

    @property
    def wedge_deg(self) -> float:
        return self.dims.body_wedge_deg


@dataclass(frozen=True)
class DiscGeometry:
    """One interspace: disc heights after lordosis and degeneration, and the disc frame."""

    name: str
    upper: str
    lower: str
    anterior_mm: float
    posterior_mm: float
    middle_mm: float
    ap_length_mm: float
    endplate_concavity_mm: float  # depth of each endplate's central concavity
    reference: InterspaceReference
    frame: Frame
    natural_tropism_deg: float = 0.0  # the left facet joint's angle minus the right's, before the parameter's

    @property
    def mean_mm(self) -> float:
        """Height between the endplate planes at the disc centre (mean of anterior and posterior)."""
        return 0.5 * (self.anterior_mm + self.posterior_mm)

    @property
    def wedge_deg(self) -> float:
        return math.degrees(2.0 * math.atan((self.anterior_mm - self.posterior_mm) / (2.0 * self.ap_length_mm)))


@dataclass(frozen=True)
class SpineAlignment:
    """Frames and dimensions of every vertebra and disc of one generated spine."""

    vertebrae: dict[str, VertebraGeometry]
    discs: dict[str, DiscGeometry]
    body: BodyAsymmetry = BodyAsymmetry()

    def endplate_normal(self, level: str, which: str) -> np.ndarray:
        """Unit normal of a body's ``superior`` or ``inferior`` endplate, pointing away from the body."""
        v = self.vertebrae[level]
        half = math.radians(v.wedge_deg) / 2.0
        sign = 1.0 if which == "superior" else -1.0
        return v.frame.vector((0.0, math.sin(half), sign * math.cos(half)))

    def endplate_center(self, level: str, which: str) -> np.ndarray:
        """Centre of the endplate plane (before its central concavity), LPS mm."""
        v = self.vertebrae[level]
        sign = 1.0 if which == "superior" else -1.0
        return v.frame.point((0.0, 0.0, sign * v.height_mm / 2.0))

    def lordosis_deg(self) -> float:
        """Angle between the L1 and S1 superior endplates in the sagittal plane, degrees."""
        a, b = self.endplate_normal("L1", "superior"), self.endplate_normal("S1", "superior")
        a, b = a[1:] / np.linalg.norm(a[1:]), b[1:] / np.linalg.norm(b[1:])
        return math.degrees(math.acos(float(np.clip(a @ b, -1.0, 1.0))))


def scaled_vertebra(name: str, params: SpineParameters) -> VertebraReference:
    """The reference vertebra for ``name`` scaled by the skeleton scale, with the sex's pedicle width."""
    ref = VERTEBRAE[name]
    k = params.skeleton_scale / (0.94 if params.sex == "female" else 1.0)  # pedicle width has its own table
    values = {field: getattr(ref, field) * params.skeleton_scale for field in ref.__dataclass_fields__
              if field.endswith("_mm")}
    values["pedicle_width_mm"] = (ref.pedicle_width_female_mm if params.sex == "female" else ref.pedicle_width_mm) * k
    values["body_wedge_deg"] = ref.body_wedge_deg
    values["pedicle_medial_angle_deg"] = ref.pedicle_medial_angle_deg
    return VertebraReference(**values)


def _disc_heights(params: SpineParameters) -> dict[str, tuple[float, float, float, float, float]]:
    """(anterior, posterior, middle, AP length, concavity) per interspace after degeneration and lordosis."""
    s = params.skeleton_scale
    heights = {}
    for name in INTERSPACE_NAMES:
        ref = INTERSPACES[name]
        loss = 1.0 - DISC_LOSS_PER_GRADE * params.degeneration * DISC_LOSS_WEIGHT[name]
        if params.transitional == "sacralized_L5" and name == "L5-S1":
            loss *= 0.35  # a rudimentary disc between a sacralised L5 and S1 [ED]
        anterior, posterior, middle = (ref.disc_anterior_mm * s * loss, ref.disc_posterior_mm * s * loss,
                                       ref.disc_middle_mm * s * loss)
        mean = 0.5 * (anterior + posterior)
        # The table's middle height exceeds the mean of the margins where the endplates are concave.
        concavity = max(middle - mean, 0.0) / 2.0
        heights[name] = (anterior, posterior, middle, ref.disc_ap_length_mm * s, concavity)
    # Spread the difference between the asked lordosis and the reference one over the lordotic discs so
    # that every anterior and posterior height changes by the same fraction r (one side up, the other
    # down): the margins stay as close to the reference table as the asked lordosis allows.
    def wedge(a: float, p: float, length: float) -> float:
        return math.degrees(2.0 * math.atan((a - p) / (2.0 * length)))

    bodies = sum(VERTEBRAE[n].body_wedge_deg for n in LORDOSIS_VERTEBRAE)
    reference = {n: heights[n] for n in LORDOSIS_INTERSPACES}
    sensitivity = sum((h[0] + h[1]) / h[3] for h in reference.values())  # rad of lordosis per unit fraction
    fraction = 0.0
    for _ in range(8):  # the wedge is an arctangent: a few Newton steps make the sum exact
        for name, (anterior, posterior, middle, length, concavity) in reference.items():
            anterior = max(anterior * (1.0 + fraction), MIN_DISC_HEIGHT_MM)
            posterior = max(posterior * (1.0 - fraction), MIN_DISC_HEIGHT_MM)
            heights[name] = (anterior, posterior, 0.5 * (anterior + posterior) + 2.0 * concavity, length, concavity)
        achieved = bodies + sum(wedge(*heights[n][:2], heights[n][3]) for n in LORDOSIS_INTERSPACES)
        fraction += math.radians(params.lordosis_deg - achieved) / sensitivity
    return heights


def _scoliosis(params: SpineParameters, z_by_level: dict[str, float], z_bottom: float):
    """Lateral offset (mm), coronal tilt and axial rotation (deg) as functions of height z."""
    if params.scoliosis_cobb_deg <= 0.0:
        return lambda z: (0.0, 0.0, 0.0)
    z_top = z_by_level["T12"] + 35.0  # the curve's upper end vertebra sits above the field (T11) [ED]
    z_apex = z_by_level[params.scoliosis_apex]
    upper, lower = z_top - z_apex, z_apex - z_bottom
    cobb = math.radians(params.scoliosis_cobb_deg)
    # Solve for the amplitude whose two end tilts add up to the Cobb angle.
    low, high = 0.0, 200.0
    for _ in range(60):
        amplitude = 0.5 * (low + high)
        angle = math.atan(amplitude * math.pi / (2 * upper)) + math.atan(amplitude * math.pi / (2 * lower))
        low, high = (amplitude, high) if angle < cobb else (low, amplitude)
    sign = 1.0 if params.scoliosis_convex_side == "left" else -1.0

    def at(z: float) -> tuple[float, float, float]:
        if z >= z_top or z <= z_bottom:
            return 0.0, 0.0, 0.0
        if z >= z_apex:
            phase, rate = (z_top - z) / upper * math.pi / 2, -math.pi / (2 * upper)
        else:
            phase, rate = (z - z_bottom) / lower * math.pi / 2, math.pi / (2 * lower)
        offset = sign * amplitude * math.sin(phase)
        slope = sign * amplitude * math.cos(phase) * rate  # dx/dz
        # A vertebra on the convex side's slope tilts with the curve; its body turns to the convexity.
        rotation = sign * params.scoliosis_rotation_deg * math.sin(phase)
        return offset, math.degrees(math.atan(slope)), rotation
    return at


def align_spine(params: SpineParameters) -> SpineAlignment:
    """Frames of every vertebra (T12-S1) and disc for ``params``."""
    dims = {name: scaled_vertebra(name, params) for name in VERTEBRA_NAMES}
    heights = _disc_heights(params)
    # Sagittal stack from the sacrum up: (centre in the y-z plane, tilt) per element.
    tilt = params.sacral_slope_deg
    s1 = dims["S1"]
    centre = np.array([0.0, 0.0])  # (y, z) of the S1 body centre, moved later

    def up(t: float) -> np.ndarray:
        return np.array([-math.sin(math.radians(t)), math.cos(math.radians(t))])

    placed: dict[str, tuple[np.ndarray, float]] = {"S1": (centre, tilt)}
    endplate = centre + up(tilt) * s1.body_height_mm / 2.0
    disc_placed: dict[str, tuple[np.ndarray, float]] = {}
    for upper, lower in reversed(list(zip(VERTEBRA_NAMES[:-1], VERTEBRA_NAMES[1:]))):
        name = f"{upper}-{lower}"
        anterior, posterior, middle, length, concavity = heights[name]
        wedge = math.degrees(2.0 * math.atan((anterior - posterior) / (2.0 * length)))
        mean = 0.5 * (anterior + posterior)
        disc_tilt = tilt - wedge / 2.0
        disc_placed[name] = (endplate + up(disc_tilt) * mean / 2.0, disc_tilt)
        inferior = endplate + up(disc_tilt) * mean
        body = dims[upper]
        tilt = tilt - wedge - body.body_wedge_deg / 2.0
        placed[upper] = (inferior + up(tilt) * body.body_height_mm / 2.0, tilt)
        endplate = inferior + up(tilt) * body.body_height_mm
        tilt -= body.body_wedge_deg / 2.0
    shift = placed["L3"][0].copy()
    z_by_level = {name: float(c[1] - shift[1]) for name, (c, _) in placed.items()}
    scoliosis = _scoliosis(params, z_by_level, float(disc_placed["L5-S1"][0][1] - shift[1]))

    def frame(yz: np.ndarray, sagittal_tilt: float, own_rotation_deg: float = 0.0) -> Frame:
        y, z = yz - shift
        offset, coronal, axial = scoliosis(float(z))
        rotation = (axis_rotation(1, coronal) @ sagittal_rotation(sagittal_tilt)
                    @ axis_rotation(2, axial + own_rotation_deg))
        return Frame.at((offset, y, z), rotation)

    # The sacrum is the pelvis's: it keeps its frame.
    asymmetry, tropism = natural_asymmetry(params)
    asymmetry["S1"] = NaturalAsymmetry()
    vertebrae = {name: VertebraGeometry(name, dims[name], frame(*placed[name], asymmetry[name].axial_rotation_deg),
                                        params.skeleton_scale, asymmetry[name]) for name in VERTEBRA_NAMES}
    discs = {}
    for name in INTERSPACE_NAMES:
        upper, lower = name.split("-")
        anterior, posterior, middle, length, concavity = heights[name]
        discs[name] = DiscGeometry(name, upper, lower, anterior, posterior, middle, length, concavity,
                                   INTERSPACES[name], frame(*disc_placed[name]), tropism[name])
    return SpineAlignment(vertebrae, discs, body_asymmetry(params))
