"""Golden images of the built-in spine (2 mm fixture): the five views residents navigate by.

Rendered without quantum noise (so only geometry, physics and display are compared), 256 px,
stored 2x downsampled as 128 px PNGs in tests/golden/. To accept a deliberate change, delete the
files (or set SPINESIM_UPDATE_GOLDEN=1) and run this module once: it writes them and skips;
look at the new images before committing them.
"""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from anatomy_models.tissues import FLUORO_EFFECTIVE_KEV, linear_attenuation_per_mm
from simulator.imaging.carm import contralateral_oblique, gun_barrel, lateral, scotty_dog, square_endplate
from simulator.imaging.drr import needle_line_integrals
from simulator.imaging.fluoro import DetectorModel, needle_blur_mm, render_fluoro
from simulator.needle.hub import HUB_INNER_FRACTION, STYLET_CAP_LENGTH_MM, STYLET_HANDLE_OF_HUB
from simulator.needle.shaft import Needle

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
PIXELS = 256


def _needle_on_safe_triangle(anatomy):
    """A TFESI needle 5 mm short of the left L4-L5 safe triangle, coaxial with the Scotty-dog view."""
    direction = -scotty_dog(anatomy, "L4", "left").beam_direction
    target = anatomy.landmark("L4-L5.safe_triangle.left")
    return Needle(entry=target - 70.0 * direction, direction=direction, depth_mm=65.0)


VIEWS = {
    "ap_squared_L4": lambda a: (square_endplate(a, "L4", detector_pixels=PIXELS), None),
    "lateral_L4": lambda a: (lateral(a, "L4", "left", detector_pixels=PIXELS), None),
    "scotty_L4_left": lambda a: (scotty_dog(a, "L4", "left", detector_pixels=PIXELS), None),
    "clo_L4_left": lambda a: (contralateral_oblique(a, "L4", "left", secondary_deg=0.0, detector_pixels=PIXELS), None),
    "gunbarrel_L4_left": lambda a: (gun_barrel(_needle_on_safe_triangle(a), detector_pixels=PIXELS), _needle_on_safe_triangle(a)),
}


def _downsampled(pixels: np.ndarray) -> np.ndarray:
    n = pixels.shape[0] // 2
    return pixels.reshape(n, 2, n, 2).astype(np.float64).mean(axis=(1, 3)).round().astype(np.uint8)


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_view_matches_its_golden_image(small_spine, view):
    carm, needle = VIEWS[view](small_spine)
    image = _downsampled(render_fluoro(small_spine, carm, needle=needle, dose=None).pixels)
    path = GOLDEN / f"fluoro_{view}.png"
    if os.environ.get("SPINESIM_UPDATE_GOLDEN") == "1" or not path.exists():
        Image.fromarray(image).save(path, optimize=True)
        pytest.skip(f"wrote golden image {path.name}; look at it before committing")
    golden = np.asarray(Image.open(path))
    difference = np.abs(image.astype(float) - golden)
    assert difference.mean() < 2.0
    assert structural_similarity(image, golden, data_range=255) > 0.97


def test_gun_barrel_needle_is_a_dot_in_the_hubs_plastic_ring(small_spine):
    needle = _needle_on_safe_triangle(small_spine)
    carm = gun_barrel(needle)  # 512 px: the 22 G shaft end-on is ~2.5 px across
    with_needle = render_fluoro(small_spine, carm, needle=needle, dose=None)
    # The needle's own line integrals as the closed form draws them, before the chain's blur (needle_as_projected).
    added = needle_line_integrals(needle, carm).astype(np.float64)
    v, u = np.mgrid[0:carm.detector_pixels, 0:carm.detector_pixels]
    radius = np.hypot(u - carm.project(needle.tip)[0], v - carm.project(needle.tip)[1])
    tip_radius = needle.spec.outer_diameter_mm / 2 * carm.source_to_detector_mm / carm.depth(needle.tip) / carm.pixel_size_mm
    ring_radius = needle.spec.hub_diameter_mm / 2 * carm.source_to_detector_mm / carm.depth(needle.hub) / carm.pixel_size_mm
    bore_radius = HUB_INNER_FRACTION * ring_radius
    # The hub's bore behind the shaft: only the stylet cap's plastic and its handle's, pale...
    plastic = linear_attenuation_per_mm("pmma", FLUORO_EFFECTIVE_KEV)
    handle = STYLET_HANDLE_OF_HUB * needle.spec.hub_length_mm
    bore = (radius > tip_radius + 2) & (radius < bore_radius - 1.5)
    cap = float(np.median(added[bore]))
    assert cap == pytest.approx(plastic * (STYLET_CAP_LENGTH_MM + handle), rel=0.1)
    assert np.ptp(added[bore]) < 0.5 * cap
    # ...with the shaft's dot at its centre, the size of the shaft's cross-section (the fraction of each pixel the
    # shaft makes opaque in front of the cap)...
    dot = radius <= tip_radius + 1.5
    shadow = 1.0 - np.exp(-(added - cap))
    assert shadow[dot].sum() == pytest.approx(np.pi * tip_radius**2, rel=0.1)
    # ...inside the hub's plastic ring, denser than the bore (its wall along the hub's length), and nothing beyond.
    ring = (radius > bore_radius + 1.5) & (radius < ring_radius - 1.5)
    assert added[ring].mean() == pytest.approx(plastic * (needle.spec.hub_length_mm + handle), rel=0.1)
    assert added[radius > ring_radius + 2].max() == 0.0
    # On the monitor the dot is the darkest spot, as wide as the shaft's shadow seen through the chain's blur (the
    # needle's and the detector's Gaussians: a disc's half-maximum width about hypot(its diameter, 2.355 sigma))
    # within two pixels, and the ring shows round it (darker than the bore).
    grey = with_needle.pixels.astype(float)
    dark = grey < 0.5 * (grey[dot].min() + np.median(grey[bore]))
    width = 2.0 * np.sqrt(dark[radius < tip_radius + 4].sum() / np.pi)
    sigma = np.hypot(needle_blur_mm(small_spine, carm), DetectorModel().blur_mm) / carm.pixel_size_mm
    assert abs(width - np.hypot(2.0 * tip_radius, 2.355 * sigma)) <= 2.0, (width, tip_radius, sigma)
    assert np.median(grey[ring]) < np.median(grey[bore]) - 5
