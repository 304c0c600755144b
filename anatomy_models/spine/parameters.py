"""The knobs of the built-in patient: one frozen, validated record with units and defaults.

Every field has a unit, a default and a range; a bad value raises :class:`SpinesimError` naming the
field, the value and the allowed range. :meth:`SpineParameters.cache_key` hashes every field together
with :data:`GENERATOR_VERSION`, so a cached anatomy is never reused after the generator changes.

Examples
--------
>>> p = SpineParameters(bmi=32)
>>> p.spacing_mm, p.lordosis_deg
(1.0, 55.0)
>>> p.cache_key() == SpineParameters(bmi=32.0).cache_key() != SpineParameters(bmi=33).cache_key()
True
>>> SpineParameters(bmi=5)
Traceback (most recent call last):
...
anatomy_models.errors.SpinesimError: field 'bmi': must be between 16 and 60 kg/m^2, got 5. Use a body-mass index of an adult patient.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from anatomy_models.errors import SpinesimError, quoted

# Bump whenever the generated anatomy changes for the same parameters: cached anatomies are keyed by it.
GENERATOR_VERSION = 69

SPACINGS_MM = (0.5, 1.0, 2.0)
TRANSITIONAL = ("none", "sacralized_L5", "lumbarized_S1")
FIELDS_OF_VIEW = ("torso", "spine")
ADAMKIEWICZ_LEVELS = ("T12", "L1", "L2")
CONUS_LEVELS = ("T12", "L1", "L2")
# Seeds are unsigned 32-bit everywhere (the scenario's, the action log's header, the command line's).
MAX_SEED = 2**32 - 1
SCOLIOSIS_APICES = ("L1", "L2", "L3", "L4")
SIDES = ("left", "right")


@dataclass(frozen=True)
class SpineParameters:
    """Parameters of a generated lumbar spine (T12 with its 12th ribs to the sacrum) and its soft tissues.

    Parameters
    ----------
    bmi : float
        Body-mass index, kg/m^2 (16-60). Sets subcutaneous fat and paraspinal depth so that the
        skin-to-epidural depth at L3-4 follows 17.8 + 0.98 x BMI mm (clinical.md §4.9 [S98]); bones
        do not change with BMI (§4.9 modelling rule).
    sex : {"male", "female"}
        Picks the pedicle widths of clinical.md §4.2 [S64] and scales the skeleton (female 0.94 [ED]).
    size_scale : float
        Extra scale of every bony length (0.8-1.25), on top of the sex scale.
    lordosis_deg : float
        Lumbar lordosis, degrees between the L1 and S1 superior endplates (0-80). Default 55 [ED]: an
        adult lying supine (standing is ~60, prone on a pillow less). The reference discs and bodies
        of §4.1/§4.4 give about 61 deg; the difference is spread over the discs' margins.
    sacral_slope_deg : float
        Angle of the S1 superior endplate from the horizontal (transverse) plane, degrees (10-60).
    scoliosis_cobb_deg : float
        Coronal Cobb angle of a single lumbar curve, degrees (0-60).
    scoliosis_apex : str
        Apical vertebra of the curve (L1-L4).
    scoliosis_convex_side : {"left", "right"}
        The patient's side the curve bulges toward.
    scoliosis_rotation_deg : float
        Axial rotation of the apical vertebra, degrees (-30 to 30); + turns the vertebral body toward
        the convexity (the usual pattern), tapering to 0 at the ends of the curve.
    degeneration : float
        Degeneration grade 0 (none) to 3 (severe): disc height loss, facet hypertrophy, endplate
        osteophytes, ligamentum flavum thickening and so a narrower canal.
    facet_tropism_deg : float
        Left minus right facet joint angle at every level, degrees (-20 to 20); §4.6 [S82].
    natural_asymmetry : float
        How much of the natural left-right variation of a real body the patient gets, drawn from ``seed`` (0-2):
        1 (the default) gives each level its own pedicle widths, transverse process lengths, facet tropism and a
        slight axial rotation within normal variation
        (:data:`anatomy_models.spine.alignment.NATURAL_ASYMMETRY_SD`), and the ilia, the paraspinal muscles and
        the flanks their own sizes on each side (:data:`anatomy_models.spine.alignment.BODY_ASYMMETRY_SD`);
        0 a mirror-symmetric patient (for teaching the symmetric picture, or to isolate one variation).
    transitional : {"none", "sacralized_L5", "lumbarized_S1"}
        Lumbosacral transitional anatomy.
    adamkiewicz_level, adamkiewicz_side : str
        Foramen (below pedicle ``level``) and side of the dominant radiculomedullary artery; §3 [S55]
        (left 77%, T8-L1 89%). Default the T12-L1 foramen on the left.
    conus_level : str
        Vertebra at which the spinal cord ends (T12-L2); §3 [S50].
    conus_position : float
        Where in ``conus_level`` the conus tip lies: 0 superior endplate, 1 inferior endplate, up to 1.5
        into the disc below. Default 0.83, the lower third of L1 [S50].
    dural_sac_end_mm : float
        How far (mm) below the centre of the S1 body the dural sac ends, along the sacral canal (15-60).
        Default 22: at S2, where it ends in most adults (clinical.md §4.3 [S74]); ~45 is a low-lying sac
        ending at S3 [ED], the variant a caudal needle must respect.
    bowel_gas : bool
        Gas in the bowel in front of the spine, drawn from ``seed`` (default on: real abdominal
        films almost always show some; off for a clean teaching image).
    seed : int
        Seed of every random texture and variation, 0..2**32-1 (unsigned 32-bit, as every seed in spinesim).
    spacing_mm : float
        Voxel size of the generated grid, mm (0.5, 1 or 2).
    field_of_view : {"torso", "spine"}
        ``torso``: the whole body cross-section (for fluoroscopy); ``spine``: a box around the spine,
        the paraspinal muscles and the back skin (smaller and faster).
    """

    bmi: float = 25.0
    sex: str = "male"
    size_scale: float = 1.0
    lordosis_deg: float = 55.0
    sacral_slope_deg: float = 40.0
    scoliosis_cobb_deg: float = 0.0
    scoliosis_apex: str = "L2"
    scoliosis_convex_side: str = "right"
    scoliosis_rotation_deg: float = 0.0
    degeneration: float = 0.0
    facet_tropism_deg: float = 0.0
    natural_asymmetry: float = 1.0
    transitional: str = "none"
    adamkiewicz_level: str = "T12"
    adamkiewicz_side: str = "left"
    conus_level: str = "L1"
    conus_position: float = 0.83
    dural_sac_end_mm: float = 22.0
    bowel_gas: bool = True
    seed: int = 0
    spacing_mm: float = 1.0
    field_of_view: str = "torso"

    def __post_init__(self) -> None:
        numeric = {
            "bmi": (16.0, 60.0, "kg/m^2", "use a body-mass index of an adult patient"),
            "size_scale": (0.8, 1.25, "", "1.0 is an average adult"),
            "lordosis_deg": (0.0, 80.0, "deg", None),
            "sacral_slope_deg": (10.0, 60.0, "deg", None),
            "scoliosis_cobb_deg": (0.0, 60.0, "deg", None),
            "scoliosis_rotation_deg": (-30.0, 30.0, "deg", None),
            "degeneration": (0.0, 3.0, "(grade)", "0 none, 1 mild, 2 moderate, 3 severe"),
            "facet_tropism_deg": (-20.0, 20.0, "deg", None),
            "natural_asymmetry": (0.0, 2.0, "", "1 is a real spine's left-right variation, 0 a symmetric spine"),
            "conus_position": (0.0, 1.5, "", "0 is the superior endplate, 1 the inferior endplate"),
            "dural_sac_end_mm": (15.0, 60.0, "mm", "22 ends the sac at S2 (the usual), ~45 at S3 (low-lying)"),
        }
        for name, (low, high, unit, hint) in numeric.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise SpinesimError(f"must be between {low:g} and {high:g} {unit}".rstrip() + f", got {value!r}",
                                    where=f"field {name!r}", hint=hint)
            object.__setattr__(self, name, float(value))
        choices = {
            "sex": ("male", "female"),
            "scoliosis_apex": SCOLIOSIS_APICES,
            "scoliosis_convex_side": SIDES,
            "transitional": TRANSITIONAL,
            "adamkiewicz_level": ADAMKIEWICZ_LEVELS,
            "adamkiewicz_side": SIDES,
            "conus_level": CONUS_LEVELS,
            "field_of_view": FIELDS_OF_VIEW,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise SpinesimError(f"must be one of {', '.join(allowed)}, got {getattr(self, name)!r}", where=f"field {name!r}")
        spacing = self.spacing_mm
        if isinstance(spacing, bool) or not isinstance(spacing, (int, float)) or float(spacing) not in SPACINGS_MM:
            raise SpinesimError(f"must be one of {', '.join(f'{s:g}' for s in SPACINGS_MM)} mm, got {spacing!r}",
                                where="field 'spacing_mm'")
        object.__setattr__(self, "spacing_mm", float(spacing))
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed <= MAX_SEED:
            raise SpinesimError(f"must be a non-negative integer, 0..2**32-1, got {quoted(self.seed)}",
                                where="field 'seed'")
        if not isinstance(self.bowel_gas, bool):
            raise SpinesimError(f"must be true or false, got {self.bowel_gas!r}", where="field 'bowel_gas'")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> SpineParameters:
        """Parameters from a mapping (a scenario's YAML block, CLI options); unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SpinesimError(f"unknown spine parameter(s) {', '.join(unknown)}", hint=f"known: {', '.join(sorted(known))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def cache_key(self) -> str:
        """A short hash of every parameter and the generator version (names a cached anatomy)."""
        text = json.dumps({"generator_version": GENERATOR_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def skeleton_scale(self) -> float:
        """Factor on every bony length: ``size_scale`` times 0.94 for a female skeleton [ED]."""
        return self.size_scale * (0.94 if self.sex == "female" else 1.0)


# ----------------------------------------------------------------------------- a drawn patient
# What a case does not teach, drawn for each attempt's patient within normal adult ranges. A case
# keeps every parameter it sets (its generator block) and always keeps the habitus (BMI), the
# pathology it is about (degeneration, scoliosis, transitional anatomy), the grid and field of view.
#   sex: even odds [ED]. size_scale: 1.0 +- 0.05, cut at 0.9-1.1 [ED: on top of the sex scale].
#   sacral_slope_deg: 41 +- 6, 32-50 (41 +- 8.4 in 300 asymptomatic adults, Vialle et al., JBJS Am
#   2005;87:260). lordosis_deg: the slope + 14 +- 4, 45-65 (standing L1-S1 lordosis 60 +- 10 there,
#   following the slope; an adult lying supine/prone ~5 less [ED]). Both are cut at about one standard
#   deviation above the mean: at lordosis 70 and slope 51 the L5-S1 safe triangle of tfesi-l5s1-left
#   was out of a 3.5 in needle's safe reach (the case sets the needle), which is a different lesson. facet_tropism_deg: 0 +- 4, cut at +-8 (clinical.md §4.6:
#   randomise +-5 per side). adamkiewicz_side: left 77% (§3 [S55]: left-sided 76.6%); level: T12 55%,
#   L1 30%, L2 15% (§3 [S55]: T8-L1 in 89%; the model offers T12-L2 [ED]). conus_level/position: mean
#   lower third of L1, range mid-T12 to upper L3 (§3 [S50]): L1 at 0.5-1.0 in 70%, T12 at 0.5-1.0 in
#   15%, L2 at 0.0-0.5 in 15% [ED]. seed: the attempt's, so texture and bowel gas differ too.
DRAWN_FIELDS = ("sex", "size_scale", "lordosis_deg", "sacral_slope_deg", "facet_tropism_deg", "adamkiewicz_level",
                "adamkiewicz_side", "conus_level", "conus_position", "seed")


def drawn_parameters(case: SpineParameters, seed: int, keep: frozenset[str] | set[str] = frozenset()
                     ) -> SpineParameters:
    """The patient of one attempt: ``case`` with every field of :data:`DRAWN_FIELDS` not in ``keep``
    drawn from ``seed`` within normal anatomical ranges (see the table above); the same seed always
    gives the same patient.

    Examples
    --------
    >>> case = SpineParameters(bmi=35.0, spacing_mm=2.0)
    >>> a, b = drawn_parameters(case, 11), drawn_parameters(case, 12)
    >>> a == drawn_parameters(case, 11), a != b, a.bmi == b.bmi == 35.0, a.spacing_mm
    (True, True, True, 2.0)
    >>> drawn_parameters(case, 11, keep={"sex", "seed"}).sex, drawn_parameters(case, 11, keep={"seed"}).seed
    ('male', 0)
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise SpinesimError(f"must be a non-negative integer, 0..2**32-1, got {quoted(seed)}", where="patient seed")
    rng = np.random.default_rng([seed, 21])
    conus_level, conus_range = [("L1", (0.5, 1.0)), ("T12", (0.5, 1.0)), ("L2", (0.0, 0.5))][
        int(rng.choice(3, p=[0.7, 0.15, 0.15]))]
    # Every value is drawn whether kept or not, so keeping one field never changes another's draw.
    slope = float(np.clip(rng.normal(41.0, 6.0), 32.0, 50.0))
    drawn = {
        "sex": str(rng.choice(["male", "female"])),
        "size_scale": round(float(np.clip(rng.normal(1.0, 0.05), 0.9, 1.1)), 2),
        # Lordosis follows the sacral slope (Vialle et al. 2005: 60 against 41 standing; supine ~5 less).
        "lordosis_deg": round(float(np.clip(slope + 14.0 + rng.normal(0.0, 4.0), 45.0, 65.0)), 1),
        "sacral_slope_deg": round(slope, 1),
        "facet_tropism_deg": round(float(np.clip(rng.normal(0.0, 4.0), -8.0, 8.0)), 1),
        "adamkiewicz_side": "left" if rng.uniform() < 0.77 else "right",
        "adamkiewicz_level": str(rng.choice(list(ADAMKIEWICZ_LEVELS), p=[0.55, 0.3, 0.15])),
        "conus_level": conus_level,
        "conus_position": round(float(rng.uniform(*conus_range)), 2),
        "seed": seed,
    }
    return replace(case, **{name: value for name, value in drawn.items() if name not in keep})
