"""The iliac wing's shape (anatomy_models.spine.pelvis): a thin plate whose top thickens into a solid
crest, thickest at the iliac tubercle and thinning toward the back, not a tube of even calibre laid on
its edge (issue 15's "hose-like iliac crests")."""

from __future__ import annotations

import math

import numpy as np

from anatomy_models.spine.pelvis import FLARE, _wing_sdf

RADIUS_MM, START_DEG, END_DEG = 90.0, 18.0, 80.0
CREST = (12.0, 40.0, 35.0)   # heights of the crest at the front, the middle and the back (mm)


def section(fraction: float, below_top_mm: float) -> tuple[float, int]:
    """(thickness across the wing in mm, number of surface crossings) ``below_top_mm`` under the crest's
    top at ``fraction`` of the arc from its front (0) to its back (1)."""
    sdf = _wing_sdf(RADIUS_MM, START_DEG, END_DEG, CREST, -60.0, -20.0)
    angle = math.radians(START_DEG + fraction * (END_DEG - START_DEG))
    w = np.arange(-10.0, 60.0, 0.05, dtype=np.float32)
    r = np.float32(RADIUS_MM) + np.float32(FLARE) * w
    column = sdf(r * np.float32(math.cos(angle)), r * np.float32(math.sin(angle)), w) < 0
    top = float(w[np.nonzero(column)[0][-1]])
    height = np.float32(top - below_top_mm)
    across = np.arange(-20.0, 20.0, 0.05, dtype=np.float32) + np.float32(RADIUS_MM + FLARE * height)
    inside = sdf(across * np.float32(math.cos(angle)), across * np.float32(math.sin(angle)),
                 np.full_like(across, height)) < 0
    return float(inside.sum()) * 0.05, int(np.count_nonzero(inside[1:] != inside[:-1]))


def test_crest_is_thickest_at_the_tubercle_and_thins_toward_the_back():
    tubercle, back = section(0.25, 3.0)[0], section(0.8, 3.0)[0]
    assert tubercle >= 10.0 and back <= 0.7 * tubercle, (tubercle, back)


def test_crest_is_solid_and_grows_out_of_a_thin_fossa():
    for fraction in (0.1, 0.25, 0.5):
        crest, crossings = section(fraction, 3.0)
        # One solid section: two surface crossings (no hollow or second rim beside it).
        assert crossings == 2, (fraction, crossings)
        fossa = section(fraction, 30.0)[0]
        assert fossa <= 4.0 < crest, (fraction, fossa, crest)
        # The rim narrows smoothly into the plate: half-way down the crest it is between the two.
        middle = section(fraction, 9.0)[0]
        assert fossa < middle < crest, (fraction, fossa, middle, crest)
