"""Contrast keeps its grain: the quantum mottle inside a layer denser than the densest bone is at least that bone's
(fewer quanta behind it), not "opaque paint" ("no grain inside the contrast", noise SD 0.5-1.7 grey levels against 4-8
in the tissue, stop 25's blind read). On the built-in patient's AP (2 mm), undiluted contrast (300 mg iodine per mL)
laid across the beam.
"""

import numpy as np

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


def _box_pixels(carm, box) -> np.ndarray:
    """Detector pixels inside the projection of a box's middle (its x-z extent at its mid-depth), less two pixels."""
    (x0, x1), (y0, y1), (z0, z1) = box
    y = 0.5 * (y0 + y1)
    u0, v0 = carm.project(np.array([[x0, y, z1]]))[0]
    u1, v1 = carm.project(np.array([[x1, y, z0]]))[0]
    (ua, ub), (va, vb) = sorted((u0, u1)), sorted((v0, v1))
    v, u = np.mgrid[0:PIXELS, 0:PIXELS]
    return (u >= ua + 2) & (u <= ub - 2) & (v >= va + 2) & (v <= vb - 2)


# Over the paraspinal muscle beside L3-L4, clear of the transverse processes (as test_contrast_display.py's layers).
LAYER = ((-45.0, -35.0), (17.0, 23.0), (-39.0, -25.0))


def _at_thickness(box, thickness_mm: float):
    """``box`` with its depth along the beam ``thickness_mm``, about its middle."""
    (x0, x1), (y0, y1), z = box
    middle = 0.5 * (y0 + y1)
    return (x0, x1), (middle - thickness_mm / 2.0, middle + thickness_mm / 2.0), z


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
