"""The lateral's back (issue 16): the spinous processes behind the laminae are shown as grey bone against the
interspinous gaps, not burned out in the display's toe.

Stop 26's blind readers saw "the lateral's back 40 % blank white": the process and the gap below it at 218 and 219 grey
on L4 (built-in patient, 1 mm, 512 px), their line integrals 0.1-0.2 apart. That step is a real process's: 6-8 mm thick
with a 1-1.5 mm cortex over a 300-450 HU core (clinical.md §4.7, §5.4), it adds 0.08-0.14 at 70 keV (§5.2), more where
the ray runs along its cortex. Each part is found by projecting its labelled voxels, the gap at the middle of the two
processes' centres, clear of any bone.
"""

import numpy as np
import pytest
from scipy import ndimage

from simulator.imaging.carm import lateral
from simulator.imaging.fluoro import Display, render_fluoro

PIXELS = 256
# A step a reader sees at once on a bright, noisy background [ED 15 grey levels, 6 % of the scale: the monitor's
# quantum mottle is ~5-8 grey levels (tests/simulator/test_fluoro_display_noise.py) and the Rose criterion asks a
# contrast-to-noise ratio of ~5 over an object's noise cells; a process 15-20 px across holds ~50 cells of 2-3 px,
# which detection alone would grant at ~4 levels, so 15 leaves it plainly seen, not merely detectable].
VISIBLE_STEP = 15


def _projected(anatomy, carm, mask: np.ndarray) -> np.ndarray:
    """The detector pixels ``mask``'s voxel centres fall in, closed and filled into one shape (bool)."""
    uv = np.rint(carm.project(anatomy.labels.voxel_to_world(np.argwhere(mask).astype(float)))).astype(int)
    inside = np.all((uv >= 0) & (uv < PIXELS), axis=1)
    out = np.zeros((PIXELS, PIXELS), dtype=bool)
    out[uv[inside, 1], uv[inside, 0]] = True
    return ndimage.binary_fill_holes(ndimage.binary_closing(out, iterations=2))


def _centre(anatomy, mask: np.ndarray) -> np.ndarray:
    return anatomy.labels.voxel_to_world(np.argwhere(mask).mean(axis=0)[None].astype(float))


@pytest.mark.parametrize("upper, lower", [("L3", "L4"), ("L4", "L5")])
def test_the_laterals_spinous_process_is_grey_against_the_gap_below_it(small_spine, upper, lower):
    """On the lateral of L4 (noiseless) the process of ``upper`` (its shape less a pixel's rim) is shown at least
    :data:`VISIBLE_STEP` grey levels darker than the interspinous gap below it (a disc of 3 % of the field's width at
    the middle of the two processes' centres, less any vertebra's bone two pixels round). On main before this change:
    L3 9 and L4 0 grey levels (2 mm patient, 256 px; 28 and 16 now)."""
    carm = lateral(small_spine, "L4", "left", detector_pixels=PIXELS)
    image = render_fluoro(small_spine, carm, dose=None, display=Display(letters=False)).pixels.astype(float)
    upper_mask, lower_mask = (small_spine.mask(f"{level}.spinous_process") for level in (upper, lower))
    process = ndimage.binary_erosion(_projected(small_spine, carm, upper_mask))
    bone = _projected(small_spine, carm, np.isin(small_spine.labels.array, np.concatenate(
        [small_spine.label_table.ids_in_group(level) for level in ("L2", "L3", "L4", "L5")])))
    middle = carm.project(0.5 * (_centre(small_spine, upper_mask) + _centre(small_spine, lower_mask)))[0]
    v, u = np.mgrid[0:PIXELS, 0:PIXELS]
    gap = (np.hypot(u - middle[0], v - middle[1]) < 0.03 * PIXELS) & ~ndimage.binary_dilation(bone, iterations=2)
    assert process.sum() >= 20 and gap.sum() >= 10, (process.sum(), gap.sum())
    step = float(np.median(image[gap]) - np.median(image[process]))
    assert step >= VISIBLE_STEP, (upper, np.median(image[process]), np.median(image[gap]))
