"""The posterior elements as a pain physician reads them on the standard views (issues 15 and 16).

Each part is found on the image by projecting its labelled voxels with the C-arm's projection matrix
(every voxel's eight corners, so that a 2 mm label's extent on the detector is its own, not its
centres'); lengths on the detector are given in millimetres at the isocentre.
"""

import itertools

import numpy as np
import pytest
from scipy import ndimage

from anatomy_models.spine.morphometry import INTERSPACES
from simulator.imaging.carm import scotty_dog, square_endplate
from tests.simulator.test_scotty_dog import _pars_mask

PIXELS = 256
CORNERS = np.array(list(itertools.product((-0.5, 0.5), repeat=3)))
# The smallest interspinous gap a normal adult shows at L4-L5: the mean minus two standard deviations
# of the midline MRI study in anatomy_models.spine.morphometry (9.9 +- 2.2 mm).
LEAST_NORMAL_GAP_MM = INTERSPACES["L4-L5"].interspinous_gap_mm - 2 * 2.2


def _projected(anatomy, carm, mask: np.ndarray) -> np.ndarray:
    """(u, v) detector coordinates (pixels) of the corners of ``mask``'s voxels."""
    corners = (np.argwhere(mask).astype(float)[:, None, :] + CORNERS[None]).reshape(-1, 3)
    return carm.project(anatomy.labels.voxel_to_world(corners))


def _mm_per_pixel(carm) -> float:
    return carm.pixel_size_mm / carm.magnification


def spinous_gap_on_ap(anatomy, upper: str, lower: str, level: str = "L4") -> float:
    """Cranio-caudal gap (mm at the isocentre) between the spinous processes of ``upper`` and ``lower``
    on the AP squared at ``level``: the lower one's highest row minus the upper one's lowest (negative
    where they overlap)."""
    carm = square_endplate(anatomy, level, detector_pixels=PIXELS)
    above = _projected(anatomy, carm, anatomy.mask(f"{upper}.spinous_process"))[:, 1].max()
    below = _projected(anatomy, carm, anatomy.mask(f"{lower}.spinous_process"))[:, 1].min()
    return float((below - above) * _mm_per_pixel(carm))


@pytest.mark.parametrize("upper, lower", [("L1", "L2"), ("L2", "L3"), ("L3", "L4"), ("L4", "L5")])
def test_the_ap_shows_each_spinous_process_apart_from_the_next(small_spine, upper, lower):
    """Issue 15 ("one continuous spinous bar"): on the squared AP each spinous process is a teardrop of its
    own with the interspinous space below it. Measured on the 2 mm patient (generator 35): 0.2 mm at L1-L2 and
    3.3 mm at L2-L3 (one spinous bar), 6.7 mm at L3-L4, 9.1 mm at L4-L5; generator 43, the published gaps per level
    and the upper processes turned up (vertebra.SPINOUS_PROCESS_UPTURN_DEG): 5.8, 7.1, 6.8 and 9.1 mm."""
    assert spinous_gap_on_ap(small_spine, upper, lower) > LEAST_NORMAL_GAP_MM


def _rasterised(uv: np.ndarray) -> np.ndarray:
    """The detector pixels the projected points fall in, closed over one pixel (rows x columns)."""
    ij = np.rint(uv).astype(int)
    inside = (ij[:, 0] >= 0) & (ij[:, 0] < PIXELS) & (ij[:, 1] >= 0) & (ij[:, 1] < PIXELS)
    out = np.zeros((PIXELS, PIXELS), dtype=bool)
    out[ij[inside, 1], ij[inside, 0]] = True
    return ndimage.binary_closing(out, iterations=1)


def narrowest_width_px(region: np.ndarray) -> float:
    """Narrowest width of a projected part across its long axis (pixels): the least extent across it over
    the middle three fifths of its length, in one-pixel slices."""
    points = np.argwhere(region).astype(float)
    centre = points.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov((points - centre).T))
    across, along = (points - centre) @ vectors[:, 0], (points - centre) @ vectors[:, 1]
    low, high = np.quantile(along, [0.2, 0.8])
    widths = [np.ptp(across[(along >= s) & (along < s + 1.0)]) + 1.0
              for s in np.arange(low, high, 1.0) if np.any((along >= s) & (along < s + 1.0))]
    return float(min(widths))


def scotty_dog_parts(anatomy, model, level: str, side: str) -> dict[str, dict[str, float]]:
    """Where the dog's parts of ``level`` lie on its Scotty-dog view: the centre of each projected part
    (``row`` down the screen, ``out`` toward ``side`` across it, in mm at the isocentre) and the narrowest
    width of the neck and of the eye (mm)."""
    carm = scotty_dog(anatomy, level, side, detector_pixels=PIXELS)
    scale = _mm_per_pixel(carm)
    # The screen direction of the patient's side: where a point moved toward it lands.
    centre = anatomy.landmark(f"{level}.body.center")
    step = np.array([1.0 if side == "left" else -1.0, 0.0, 0.0]) * 10.0
    outward = np.diff(carm.project(np.stack([centre, centre + step])), axis=0)[0]
    outward /= np.linalg.norm(outward)
    masks = {"nose": anatomy.mask(f"{level}.transverse_process.{side}"), "eye": anatomy.mask(f"{level}.pedicle.{side}"),
             "ear": anatomy.mask(f"{level}.SAP.{side}"), "neck": _pars_mask(anatomy, model, level, side),
             "leg": anatomy.mask(f"{level}.IAP.{side}"), "body": anatomy.mask(f"{level}.lamina.{side}")}
    parts = {}
    for name, mask in masks.items():
        uv = _projected(anatomy, carm, mask)
        middle = uv.mean(axis=0)
        parts[name] = {"row": float(middle[1] * scale), "out": float(middle @ outward * scale)}
        if name in ("neck", "eye"):
            parts[name]["narrowest"] = narrowest_width_px(_rasterised(uv)) * scale
    return parts


@pytest.mark.slow
@pytest.mark.parametrize("level", ["L1", "L2", "L3", "L4", "L5"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_the_scotty_dogs_parts_are_where_the_dog_has_them(small_spine, model_2mm, level, side):
    """Clinical.md §1 [S30]: on the ipsilateral oblique the ear (SAP) stands above the eye (pedicle), the front
    leg (IAP) hangs below it, the nose (transverse process) points out beyond it, the neck (pars) lies between
    the eye and the leg and is narrower than the eye, and the body (lamina) lies inward of the eye. L1 and L2 (on
    the 2 mm patient of generator 43 the nose 3.6 and 5.7 mm out beyond the eye) as well as the usual L3 and L4.
    L5 since generator 47: its pars ran from the junction at the pedicle's mid-height to 4 mm above the lamina's
    lower edge, which the L5-S1 window holds 4 mm under the pedicle, so its neck lay beside the eye (1.3 mm above
    its centre); from under the pedicle down to the facet joint below, 3.6 mm below the eye's centre."""
    dog = scotty_dog_parts(small_spine, model_2mm, level, side)
    assert dog["ear"]["row"] < dog["eye"]["row"] < dog["leg"]["row"], dog
    assert dog["eye"]["row"] < dog["neck"]["row"] < dog["leg"]["row"], dog
    assert dog["nose"]["out"] > dog["eye"]["out"] > dog["body"]["out"], dog
    assert 0.0 < dog["neck"]["narrowest"] < dog["eye"]["narrowest"], dog
