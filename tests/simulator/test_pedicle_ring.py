"""The pedicle on the AP (issue 16: "pedicles as solid dark polygons, not cortical rings"): seen nearly end-on, a
pedicle is a tube of cortical bone round a cancellous core, so the rays along its walls cross more bone than the
rays through its middle, and a radiograph shows an oval ring with a lighter centre, the "eye"."""

import numpy as np
import pytest
from scipy import ndimage

from simulator.imaging.carm import square_endplate
from simulator.imaging.fluoro import Display, render_fluoro


def pedicle_ring(anatomy, level: str, side: str, pixels: int = 256) -> dict[str, float]:
    """Across the projected pedicle on the noiseless squared AP of ``level`` (a row through its centre landmark,
    the mean of 5 rows a pixel apart), how much darker than its centre each wall is shown (the darkest of the
    half-profiles either side of the lightest point between them, against that point; grey levels of the default
    bone_black display), and the same on the line integrals (the physics before the display)."""
    carm = square_endplate(anatomy, level, detector_pixels=pixels)
    image = render_fluoro(anatomy, carm, dose=None, display=Display(letters=False))
    return {**_walls(anatomy, carm, level, side, 255.0 - image.pixels.astype(np.float64), ""),
            **_walls(anatomy, carm, level, side, image.line_integrals, "line_integral_")}


def _walls(anatomy, carm, level: str, side: str, attenuation: np.ndarray, prefix: str) -> dict[str, float]:
    line_integral = attenuation
    mask = anatomy.mask(f"{level}.pedicle.{side}")
    spread = carm.project(anatomy.labels.voxel_to_world(np.argwhere(mask).astype(float)))[:, 0]
    half_width = 0.5 * float(np.percentile(spread, 95) - np.percentile(spread, 5))
    column, row = carm.project(np.asarray(anatomy.landmark(f"{level}.pedicle.{side}.center"))[None])[0]
    t = np.arange(-half_width, half_width + 0.01, 0.25)
    profile = np.mean([ndimage.map_coordinates(line_integral, [np.full_like(t, row + d), column + t], order=1)
                       for d in (-2, -1, 0, 1, 2)], axis=0)
    middle = np.abs(t) <= 0.5 * half_width
    lowest = int(np.flatnonzero(middle)[np.argmin(profile[middle])])
    return {f"{prefix}wall_a": float(profile[:lowest].max() - profile[lowest]),
            f"{prefix}wall_b": float(profile[lowest + 1:].max() - profile[lowest])}


# Each wall shown at least this many grey levels darker than the pedicle's centre (the default display, noiseless).
# Measured on the 2 mm patient (generator 44): L3 both sides and L4 right are rings; L4 left and L5 both sides are
# crescents, their medial wall lost in the body's AP chord, which grows toward the midline (L4 left: lateral wall
# 44 grey levels above the centre, medial -2; on the line integrals 0.13 and -0.006; the 1 mm patient's L4 left
# shows its medial wall 27 grey levels above the centre). Their pedicles' CT holds the ring (the 1 mm patient's L4
# left across its axial section: walls of 1177 and 1111 HU round a 190-260 HU core, and projected alone, walls of
# 8.1 and 6.2 HU-metres over a centre of 3.6), so what is missing is where the pedicle sits on the body (the
# pedicle's placement, issue 15), not its cortex. L4 right is a crescent in the physics too (its medial wall -0.003
# on the line integrals); the display's earlier harmonisation (0.75 of a 20 mm blur) showed that wall 5+ grey levels
# darker than the centre, its milder one (0.3, issue 16: foramina shown air-white) 2.1. Refits tried on generator 47
# (spine9): the interpedicular distance 2 mm narrower at L4 and L5 (both pedicles 1 mm inward, 23 and 26 mm, within
# clinical.md §4.3's range) rings L4 right and L5 left but leaves L4 left and L5 right crescents (medial walls -0.007
# and -0.002 on the line integrals) in a mirror-symmetric spine; 1 mm narrower rings none; the natural asymmetry
# (spine8) rings both L5s and loses L3 right. A wall that comes and goes with a half-voxel shift is the 2 mm grid's
# sampling of a 1.5 mm cortex, so none of these was kept: the crescents stay marked.
MIN_WALL_GREY = 5.0
CRESCENTS = {("L4", "left"), ("L4", "right"), ("L5", "left"), ("L5", "right")}


@pytest.mark.parametrize("level, side", [
    pytest.param(level, side, marks=pytest.mark.xfail(
        (level, side) in CRESCENTS, strict=True,
        reason="issue 16: one wall not shown on the 2 mm patient's AP (a crescent); it comes and goes with a "
        "half-voxel shift of the pedicle (generator 47 trials)"))
    for level in ("L3", "L4", "L5") for side in ("left", "right")])
def test_the_pedicle_is_a_ring_on_the_ap(small_spine, level, side):
    """Both walls of the pedicle are shown darker than its centre on the AP: a ring, not a solid oval (one dark peak
    in the middle fails), nor a crescent (one wall only)."""
    ring = pedicle_ring(small_spine, level, side)
    assert ring["wall_a"] > MIN_WALL_GREY and ring["wall_b"] > MIN_WALL_GREY, ring
