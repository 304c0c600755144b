"""Contrast adds to the bone under it and keeps its grain: it is not clipped at the display's dense end.

On the built-in patient's AP (2 mm), undiluted contrast (300 mg iodine per mL) laid across the beam: over a pedicle it
is darker than the pedicle alone and than the same layer over the muscle beside it (stop 25's blind read: "clipped
over bone instead of adding to it", "no darker than the pedicles"); a staircase of layers 1 to 6 mm thick over the
muscle is shown ever darker, step by step ("two flat grey levels"); and the quantum mottle inside a layer denser than
the densest bone is at least that bone's (fewer quanta behind it: "no grain inside the contrast", noise SD 0.5-1.7
grey levels against 4-8 in the tissue).
"""

import numpy as np
from scipy import ndimage

from anatomy_models.tissues import CONTRAST_IODINE_MG_PER_ML
from anatomy_models.volume import Volume
from simulator.imaging.carm import CArm
from simulator.imaging.dose import shot_technique
from simulator.imaging.drr import anatomy_basis_line_integrals
from simulator.imaging.fluoro import Display, render_fluoro

PIXELS = 256
DISPLAY = Display(letters=False)


def _carm():
    return CArm(primary_deg=0.0, detector_pixels=PIXELS)


def _layer(boxes) -> Volume:
    """Undiluted contrast on a 1 mm grid over the lumbar spine: each box ((x0, x1), (y0, y1), (z0, z1)), mm."""
    contrast = Volume.from_spacing(np.zeros((160, 80, 160), np.float32), (1.0, 1.0, 1.0), origin=(-80.0, -40.0, -120.0))
    x, y, z = (contrast.voxel_to_world(np.stack([np.arange(n) if a == axis else np.zeros(n) for a in range(3)], axis=1))
               [:, axis] for axis, n in enumerate(contrast.shape))
    for (x0, x1), (y0, y1), (z0, z1) in boxes:
        contrast.array[np.ix_((x >= x0) & (x < x1), (y >= y0) & (y < y1), (z >= z0) & (z < z1))] = \
            CONTRAST_IODINE_MG_PER_ML
    return contrast


def _pixels_of(anatomy, carm, mask: np.ndarray) -> np.ndarray:
    """Detector pixels hit by the centres of ``mask``'s voxels, less their outline (bool)."""
    points = anatomy.labels.voxel_to_world(np.argwhere(mask).astype(float))
    uv = np.rint(carm.project(points)).astype(int)
    out = np.zeros((PIXELS, PIXELS), dtype=bool)
    out[uv[:, 1], uv[:, 0]] = True
    return ndimage.binary_erosion(ndimage.binary_closing(out, iterations=2))


def _box_pixels(carm, box) -> np.ndarray:
    """Detector pixels inside the projection of a box's middle (its x-z extent at its mid-depth), less two pixels."""
    (x0, x1), (y0, y1), (z0, z1) = box
    y = 0.5 * (y0 + y1)
    u0, v0 = carm.project(np.array([[x0, y, z1]]))[0]
    u1, v1 = carm.project(np.array([[x1, y, z0]]))[0]
    (ua, ub), (va, vb) = sorted((u0, u1)), sorted((v0, v1))
    v, u = np.mgrid[0:PIXELS, 0:PIXELS]
    return (u >= ua + 2) & (u <= ub - 2) & (v >= va + 2) & (v <= vb - 2)


def test_contrast_over_a_pedicle_is_darker_than_the_pedicle_and_than_over_muscle(small_spine):
    """A 3 mm layer of contrast across L4's left pedicle and out over the soft tissue beside and below it (noiseless):
    over the pedicle at least 10 grey levels darker than the pedicle alone and than the layer where it crosses little
    bone (less than 4.5 mm of cortical-bone equivalent, the lowest fifth under it; under the pedicle 9-16 mm), so the
    pedicle shows through the contrast as real contrast adds to the bone under it."""
    carm = _carm()
    pedicle_mask = small_spine.mask("L4.pedicle.left")
    centre = small_spine.labels.voxel_to_world(np.argwhere(pedicle_mask).mean(axis=0)[None, :].astype(float))[0]
    (x, y, z) = centre
    layer = ((x - 8.0, x + 40.0), (y - 1.5, y + 1.5), (z - 20.0, z + 6.0))
    plain = render_fluoro(small_spine, carm, dose=None, display=DISPLAY).pixels.astype(float)
    shown = render_fluoro(small_spine, carm, contrast=_layer([layer]), dose=None, display=DISPLAY).pixels.astype(float)
    bone_mm = anatomy_basis_line_integrals(small_spine, carm)[1]
    covered = _box_pixels(carm, layer)
    pedicle = covered & _pixels_of(small_spine, carm, pedicle_mask)
    muscle = covered & (bone_mm < 4.5)
    assert pedicle.sum() >= 10 and muscle.sum() >= 10, (pedicle.sum(), muscle.sum())
    pedicle_alone, over_pedicle, over_muscle = (float(np.median(image[where])) for image, where in
                                                ((plain, pedicle), (shown, pedicle), (shown, muscle)))
    assert over_pedicle <= pedicle_alone - 10 and over_pedicle <= over_muscle - 10, \
        (over_pedicle, pedicle_alone, over_muscle)


STEPS_MM = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
# Over the paraspinal muscle beside L3-L4, clear of the transverse processes (as test_contrast_display.py's layers).
LAYER = ((-45.0, -35.0), (17.0, 23.0), (-39.0, -25.0))


def _at_thickness(box, thickness_mm: float):
    """``box`` with its depth along the beam ``thickness_mm``, about its middle."""
    (x0, x1), (y0, y1), z = box
    middle = 0.5 * (y0 + y1)
    return (x0, x1), (middle - thickness_mm / 2.0, middle + thickness_mm / 2.0), z


def test_a_staircase_of_contrast_is_shown_darker_step_by_step(small_spine):
    """Layers 1-6 mm thick over the muscle beside L3-L4 (noiseless): each millimetre more shown at least 4 grey levels
    darker, no plateau (an epidurogram's density varies with its thickness, clinical.md §2.7; stop 25's "two flat
    grey levels")."""
    carm = _carm()
    where = _box_pixels(carm, LAYER)
    greys = [float(np.median(render_fluoro(small_spine, carm, contrast=_layer([_at_thickness(LAYER, t)]), dose=None,
                                           display=DISPLAY).pixels[where])) for t in STEPS_MM]
    assert np.all(np.diff(greys) <= -4), greys


def test_the_grain_inside_dense_contrast_is_at_least_the_densest_bones(small_spine):
    """A 5 mm layer beside L3-L4, darker than the densest bone (the central field's top 1% of bone path): the noise
    (two seeds' difference over root 2) inside it at least that bone's, since fewer quanta pass it."""
    carm = _carm()
    box = _at_thickness(LAYER, 5.0)
    contrast = _layer([box])
    technique = shot_technique(small_spine, carm, "pulse")
    frames = [render_fluoro(small_spine, carm, contrast=contrast, dose=technique, seed=seed, display=DISPLAY)
              for seed in (1, 2)]
    a, b = (frame.pixels.astype(float) for frame in frames)
    noise = (a - b) / np.sqrt(2.0)
    bone_mm = anatomy_basis_line_integrals(small_spine, carm)[1]
    v, u = np.mgrid[0:PIXELS, 0:PIXELS]
    central = np.hypot(u - 127.5, v - 127.5) < 0.25 * PIXELS
    densest = central & (bone_mm >= np.percentile(bone_mm[central], 99))
    inside = _box_pixels(carm, box)
    mean = 0.5 * (a + b)
    assert np.median(mean[inside]) < np.median(mean[densest]), "the layer must be darker than the densest bone"
    assert noise[inside].std() >= noise[densest].std(), (noise[inside].std(), noise[densest].std())
