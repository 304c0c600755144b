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
    # The lightest point between the walls: in the middle half, and between the densest point either side of the
    # centre. The middle half alone reached past L4 right's lateral wall once the projection was restored of its CT's
    # blur (stop 29, fluoro.restored_on_cells), where the tissue just beyond the wall (5.46) is lighter than the lumen
    # (5.52) although the ring is whole (walls 5.63 and 5.86).
    inner = np.zeros(t.size, bool)
    inner[int(np.argmax(np.where(t < 0, profile, -np.inf))):int(np.argmax(np.where(t > 0, profile, -np.inf))) + 1] = True
    middle = (np.abs(t) <= 0.5 * half_width) & inner
    lowest = int(np.flatnonzero(middle)[np.argmin(profile[middle])])
    return {f"{prefix}wall_a": float(profile[:lowest].max() - profile[lowest]),
            f"{prefix}wall_b": float(profile[lowest + 1:].max() - profile[lowest])}


# Each wall shown at least this many grey levels darker than the pedicle's centre (the default display, noiseless).
# Measured on the 2 mm patient (generator 44-50) L4 and L5 were crescents, one wall lost in the body's AP chord;
# spine9's refits (generator 47) showed that wall come and go with a half-voxel shift of the pedicle: the 2 mm
# grid's sampling of a 1.5 mm cortex. So the ring is measured on the patient the simulator shows, the 1 mm one
# (stop 24, generator 52; 50 alike within 6): L3 left 60/40, right 31/60; L4 left 48/14, right 15/50; L5 right
# 13/52 grey levels (walls a/b), rings. L5 left's medial wall is -3 (-0.010 on the line integrals; its lateral
# wall 58): a crescent. Generator 57 (the medial walls 2.1 mm, generator.PEDICLE_MEDIAL_CORTEX_MM): L3 left 61/58,
# right 50/62; L4 left 41/20, right 22/45; L5 right 14/51; L5 left -3/57. Wall a is the lateral wall on the left
# (the image's columns grow toward the patient's right) and the medial one on the right: L5 left's missing wall is
# its lateral one. Its lumen lies 4 px (256 px) medial of the centre landmark, so the "middle half" where the
# profile's lowest point is sought reaches past the lateral wall (line integrals 5.17 at the wall, 5.14 in the
# lumen, 4.98 2 px beyond the wall, against the right's 5.39 / 5.16).
# Its CT holds the wall (860-900 HU across the medial cortex at the pedicle's centre) but L5's pedicle, 15 mm wide
# and turned 28 deg from the beam (clinical.md §4.2 [S64], angle [ED]), has no medial wall in line with the AP's
# rays, which cross it obliquely onto the body's widest chord. The right one, its mirror image in the model, keeps
# 13 grey levels: what differs is where the grid and the spine's small rotations put it, so L5's ring is marginal
# on either side.
# Stop 29 (the projection restored of its CT's blur, fluoro.restored_on_cells; the lightest point sought between the
# walls): L3 left 56/29, right 31/52; L4 left 42/16, right 26/55; L5 left 13/34 (0.060 and 0.166 on the line
# integrals: its lateral wall now shown, a ring), right 6/20 (marginal, as before on L5).
MIN_WALL_GREY = 5.0
CRESCENTS: set[tuple[str, str]] = set()


@pytest.mark.parametrize("level, side", [
    pytest.param(level, side, marks=pytest.mark.xfail(
        (level, side) in CRESCENTS, strict=True,
        reason="issue 16: L5 left's lateral wall not shown on the 1 mm patient's AP (-3 grey levels): its lumen lies "
        "4 px medial of the centre landmark and the wall is faint (0.03 over the lumen; the right's 0.23)"))
    for level in ("L3", "L4", "L5") for side in ("left", "right")])
def test_the_pedicle_is_a_ring_on_the_ap(spine_1mm, level, side):
    """Both walls of the pedicle are shown darker than its centre on the AP: a ring, not a solid oval (one dark peak
    in the middle fails), nor a crescent (one wall only)."""
    ring = pedicle_ring(spine_1mm, level, side)
    assert ring["wall_a"] > MIN_WALL_GREY and ring["wall_b"] > MIN_WALL_GREY, ring
