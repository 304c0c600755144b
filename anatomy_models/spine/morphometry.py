"""Reference dimensions of the lumbar spine, per level and per interspace (adult means, mm and degrees).

These are the numbers the generator builds from and the numbers :mod:`anatomy_models.spine.measure`
checks the generated labels against. Every value cites ``reference/clinical.md`` (section and source
tag); ``[ED]`` marks an engineering default where no source gave a number, ``[derived]`` a value
computed from sourced ones.

Examples
--------
>>> VERTEBRAE["L3"].transverse_process_length_mm   # the longest, §4.7 [S87]
19.0
>>> round(INTERSPACES["L4-L5"].disc_wedge_deg, 1)  # from the anterior/posterior disc heights, §4.4 [S76]
13.8
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class VertebraReference:
    """Dimensions of one vertebra (a male adult; see ``pedicle_width_female_mm`` for the sex difference)."""

    body_width_mm: float            # transverse width of the endplate
    body_depth_mm: float            # antero-posterior depth of the endplate (mid-sagittal)
    body_anterior_height_mm: float  # cranio-caudal, at the anterior cortex
    body_wedge_deg: float           # sagittal wedge, + = lordotic (anterior taller)
    pedicle_width_mm: float         # transverse isthmus width, male
    pedicle_width_female_mm: float  # transverse isthmus width, female
    pedicle_height_mm: float
    pedicle_medial_angle_deg: float  # transverse angle from the sagittal plane
    canal_ap_mm: float              # mid-sagittal canal diameter at the pedicles
    canal_transverse_mm: float      # interpedicular distance
    transverse_process_length_mm: float     # from the lateral pedicle surface to the tip
    transverse_process_thickness_mm: float  # antero-posterior
    spinous_process_height_mm: float        # cranio-caudal
    spinous_process_length_mm: float        # posterior projection, spinolaminar line (canal's back wall) to tip

    @property
    def body_posterior_height_mm(self) -> float:
        """Posterior body height from the anterior height and the wedge [derived]."""
        return self.body_anterior_height_mm - self.body_depth_mm * math.tan(math.radians(self.body_wedge_deg))

    @property
    def body_height_mm(self) -> float:
        """Mean of the anterior and posterior heights (the height at the body's centre)."""
        return 0.5 * (self.body_anterior_height_mm + self.body_posterior_height_mm)


@dataclass(frozen=True)
class InterspaceReference:
    """An intervertebral level: disc, facet joints, interlaminar window, ligamentum flavum."""

    disc_anterior_mm: float
    disc_middle_mm: float
    disc_posterior_mm: float
    disc_ap_length_mm: float
    facet_angle_deg: float          # joint plane from the mid-sagittal plane
    interlaminar_mm: float          # cranio-caudal interlaminar distance, neutral posture
    flavum_thickness_mm: float
    interspinous_gap_mm: float | None = None  # cranio-caudal, closest process to process; None: not published

    @property
    def disc_wedge_deg(self) -> float:
        """Sagittal wedge of the disc from its anterior and posterior heights [derived]."""
        return math.degrees(2.0 * math.atan((self.disc_anterior_mm - self.disc_posterior_mm) / (2.0 * self.disc_ap_length_mm)))


# Body width and anterior height: [ED] of clinical.md §4.1 (L1 42 ... L5 50 mm wide; 25-27 mm high),
# L5 anterior height 30.3 mm §4.1 [S65]; depth §4.1 [S64] (Panjabi 1992). Wedge §4.1 [S67],
# mean of female and male, sign flipped to "+ = lordotic". Pedicle widths §4.2 [S64] (Zindrick,
# Mirkovic), heights and medial angles [ED] §4.2. Canal §4.3 [ED] (within the [S70] ranges).
# Transverse processes §4.7 [S87][S88] (L5 twice as thick as L4). Spinous processes: §4.7 gives
# [ED] heights of 22/17 mm and projections of 28-32 mm, but with the lordosis of §4.4 those leave no
# interspinous space, while §4.7 [S84] measured ~13 mm at L4-5 and ~9 mm at L5-S1; the sourced
# spaces win, so heights here are 14-20 mm [ED]. Projections (from the spinolaminar line) 28 mm, L5
# 23 mm [ED], so the skin-to-epidural depth of §4.9 leaves a few mm of fat over the tips at BMI 20.
# T12 and S1 are not tabulated in clinical.md: thoracolumbar and sacral values here are [ED], chosen
# to continue the lumbar trends (T12 smaller than L1; S1 endplate about as wide as L5's).
VERTEBRAE: dict[str, VertebraReference] = {
    "T12": VertebraReference(40.0, 33.0, 23.0, -3.0, 7.8, 7.0, 16.0, 8.0, 17.0, 21.0, 5.0, 5.0, 18.0, 28.0),
    "L1": VertebraReference(42.0, 38.0, 25.0, -3.35, 8.7, 7.8, 15.0, 11.0, 17.0, 22.0, 10.0, 5.0, 20.0, 28.0),
    "L2": VertebraReference(44.0, 38.5, 26.0, -1.65, 8.9, 7.9, 15.0, 12.0, 16.0, 23.0, 15.0, 5.0, 20.0, 28.0),
    "L3": VertebraReference(46.0, 39.0, 27.0, -0.1, 10.2, 9.0, 14.5, 15.0, 15.0, 24.0, 19.0, 5.0, 18.0, 28.0),
    "L4": VertebraReference(48.0, 40.0, 27.0, 1.9, 12.6, 11.2, 14.0, 18.0, 16.0, 25.0, 15.0, 5.5, 15.0, 27.0),
    "L5": VertebraReference(50.0, 40.5, 30.3, 6.2, 15.4, 13.8, 13.0, 28.0, 16.0, 28.0, 15.0, 11.0, 14.0, 23.0),
    "S1": VertebraReference(50.0, 36.0, 26.0, 0.0, 17.0, 15.0, 14.0, 30.0, 14.0, 30.0, 0.0, 0.0, 12.0, 12.0),
}

# Discs §4.4 [S76]; facet angles §4.6 [ED interpolated from S80/S81], T12-L1 22.6 deg [S80];
# interlaminar distance §4.7 [S83] (14.9 mm at L1-2, 12.2 mm at L5-S1; the levels between are
# linearly interpolated [derived]); ligamentum flavum §4.7 [S89] (L2-3 to L5-S1; L1-2 and T12-L1 [ED]).
# The T12-L1 disc is not tabulated: thoracolumbar discs are thinner than L1-2 [ED]. Interspinous gap
# (closest process to process, cranio-caudal): L4-5 9.9 +- 2.2 mm on the midline T2 MRI of 60 healthy
# adults (lower border of the upper process to the upper border of the lower one, Chulalongkorn Med J
# 56(3); not yet in clinical.md), L5-S1 8 mm on the lateral radiographs of 60 patients (clinical.md
# §5.4). The same radiographs (34 men, 26 women, ten in each decade from the 20s to the 70s; PubMed
# 22120390) give the gap per level as a line in age: L1-2 17.27 - 0.11 age, L2-3 15.68 - 0.07 age, L3-4
# 14.39 - 0.08 age (L4-5 11.65 - 0.05 age, L5-S1 9.25 - 0.02 age: 9.2 and 8.2 mm, the values above within
# 8%); at the cohort's mean age of 50 [derived] 11.8, 12.2 and 10.4 mm (the study: largest at L2-3, a mean
# of 12 mm). The 13 and 9 mm clinical.md §4.7 and §5.4 quote from [S84] (Albietz et al., Eur Spine J 2012)
# are that study's interspinous *length*, front to back; its cranio-caudal "height" was alike at both
# levels. At T12-L1 no gap is published here; the interspinous height is lowest at L4-5 (§4.7 [S85]).
INTERSPACES: dict[str, InterspaceReference] = {
    "T12-L1": InterspaceReference(8.5, 8.5, 6.0, 29.0, 22.6, 15.0, 2.8),
    "L1-L2": InterspaceReference(10.8, 10.0, 7.3, 30.2, 27.0, 14.9, 3.0, 11.8),
    "L2-L3": InterspaceReference(13.1, 11.6, 8.6, 32.0, 32.0, 14.2, 3.2, 12.2),
    "L3-L4": InterspaceReference(15.2, 12.5, 9.1, 32.9, 38.0, 13.6, 3.4, 10.4),
    "L4-L5": InterspaceReference(18.1, 13.8, 10.1, 33.1, 45.0, 12.9, 3.7, 9.9),
    "L5-S1": InterspaceReference(18.7, 13.0, 8.5, 31.3, 49.0, 12.2, 3.6, 8.0),
}



def least_interspinous_gap_mm(interspace: str) -> float:
    """The smallest cranio-caudal gap (mm) between the spinous processes at ``interspace``: the published
    one (L1-L2 to L5-S1), at T12-L1 L4-L5's, where the interspinous height is lowest (§4.7 [S85]).

    >>> least_interspinous_gap_mm("L2-L3"), least_interspinous_gap_mm("T12-L1")
    (12.2, 9.9)
    """
    own = INTERSPACES[interspace].interspinous_gap_mm
    return own if own is not None else INTERSPACES["L4-L5"].interspinous_gap_mm


# Skin-to-epidural depth at L3-4 in the midline, mm = intercept + slope x BMI: §4.9 [S98].
EPIDURAL_DEPTH_INTERCEPT_MM = 17.8
EPIDURAL_DEPTH_MM_PER_BMI = 0.98


def epidural_depth_mm(bmi: float) -> float:
    """Skin-to-epidural depth (mm) at L3-4 for a body-mass index (kg/m^2), §4.9 [S98].

    >>> round(epidural_depth_mm(25.0), 1)
    42.3
    """
    return EPIDURAL_DEPTH_INTERCEPT_MM + EPIDURAL_DEPTH_MM_PER_BMI * bmi
