"""The trunk's compiled loops make numpy's numbers to the bit.

The back's skin (:meth:`Trunk.back_y`) and the trunk section's distance (:meth:`Trunk.section_sdf`) run as
numba loops for speed; a cached patient is only reused while the generator makes the same voxels, so each
loop must give what numpy's array expressions gave, operation by operation. Those expressions are written
out here (as the generator had them until issue 15's speed-up) and compared on a synthetic trunk: random
muscle tubes over the erectors' range, every x across the back on a fine grid and off it, float32 and float64.

The trunk's distance is compared to within ``POWER_CPU_NOISE_MM``, not to the bit: numpy picks its float32
power loop by the CPU (on AVX-512 its own SIMD one, elsewhere the C library's ``powf``, which numba calls), and
near the outline, where ``r - 1`` cancels, a last-bit difference in ``r`` reaches 9e-5 mm (measured, stop 28);
on an AVX2 machine the two agree to the bit. test_generator_identity holds the patient itself.
"""

from __future__ import annotations

import numpy as np

from anatomy_models.spine.sdf import VerticalTube, f32, smooth_max
from anatomy_models.spine.soft_tissue import (FURROW_ROUNDING_MM, ErectorSpinae, SpineProfile, Trunk, _across_back_taps,
                                              _trunk_distance)


def _tube(rng: np.random.Generator, z: np.ndarray, cx: float, cy: float) -> VerticalTube:
    n = len(z)
    return VerticalTube(z, cx + rng.normal(0.0, 4.0, n), cy + rng.normal(0.0, 3.0, n), rng.uniform(0.5, 25.0, n),
                        rng.uniform(5.0, 30.0, n))


def _synthetic_trunk(seed: int) -> Trunk:
    rng = np.random.default_rng(seed)
    z = np.linspace(-150.0, 150.0, 9)
    erectors = tuple(ErectorSpinae(_tube(rng, z, s * 25.0, 60.0), _tube(rng, z, s * 55.0, 50.0)) for s in (1, -1))
    supraspinous = VerticalTube(z, np.zeros(9), 70.0 + rng.normal(0.0, 2.0, 9), np.full(9, 4.0), np.full(9, 2.5))
    return Trunk(SpineProfile(z), supraspinous, erectors, float(rng.uniform(2.0, 40.0)), 20.0,
                 float(rng.uniform(0.0, 10.0)))


def _back_y_written_out(trunk: Trunk, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Trunk.back_y as numpy arrays (without buttocks), tap by tap and tube by tube."""
    def over_the_erectors(x, z):
        ssl = trunk.supraspinous
        midline = (np.interp(z, ssl.z, ssl.cy) + np.interp(z, ssl.z, ssl.ay)).astype(np.float32) + \
            f32(trunk.midline_fat_mm)
        back = midline
        fat = f32(trunk.midline_fat_mm + trunk.paramedian_extra_mm)
        for erector in (tube for muscle in trunk.erectors for tube in muscle.tubes):
            cx, cy = np.interp(z, erector.z, erector.cx), np.interp(z, erector.z, erector.cy)
            ax, ay = np.maximum(np.interp(z, erector.z, erector.ax), 1.0), np.interp(z, erector.z, erector.ay)
            medial = np.abs(x) < np.abs(cx)
            t = np.clip(1.0 - ((x - cx) / ax) ** 2, 0.0, None)
            inner = np.where(t > 0, cy + ay * np.sqrt(t) + fat, -1e3)
            outer = cy + (ay + fat) * np.sqrt(np.clip(1.0 - ((x - cx) / (ax + fat)) ** 2, 0.0, None))
            top = np.where(medial, inner, np.where(outer > cy, outer, -1e3)).astype(np.float32)
            back = smooth_max(back, top, 12.0)
        return back
    return sum(np.float32(weight) * over_the_erectors(x + np.float32(offset), z)
               for offset, weight in _across_back_taps(FURROW_ROUNDING_MM))


def test_the_back_is_numpys_to_the_bit():
    for seed in range(3):
        trunk = _synthetic_trunk(seed)
        rng = np.random.default_rng(100 + seed)
        on_grid = (np.arange(-160.0, 160.0, 0.5, dtype=np.float32)[:, None], np.linspace(-170.0, 170.0, 41)[None, :])
        paired = (rng.uniform(-160.0, 160.0, 500).astype(np.float32), rng.uniform(-170.0, 170.0, 500).astype(np.float32))
        in_float64 = (rng.uniform(-160.0, 160.0, (50, 1)), rng.uniform(-170.0, 170.0, (1, 7)))
        for x, z in (on_grid, paired, in_float64):
            compiled, written_out = trunk.back_y(x, z), _back_y_written_out(trunk, x, z)
            assert compiled.dtype == written_out.dtype == np.float32
            assert compiled.shape == written_out.shape
            np.testing.assert_array_equal(compiled, written_out)


# How far numpy's CPU-chosen float32 power moves the trunk's distance near its outline, mm (a 2500th of a 0.5 mm voxel).
POWER_CPU_NOISE_MM = 2e-4


def test_the_trunk_distance_is_numpys():
    rng = np.random.default_rng(7)
    # u and v from 0 (the section's centre, where numpy's gradient is 0 * inf = NaN) to twice the outline.
    u = np.concatenate([[0.0], rng.uniform(0.0, 2.0, 999)]).astype(np.float32)[:, None]
    v = np.concatenate([[0.0], rng.uniform(0.0, 2.0, 799)]).astype(np.float32)[None, :]
    half_width, half_y = np.float32(140.0), np.float32(110.0)
    y, back = rng.uniform(-50.0, 150.0, (1, 800)).astype(np.float32), rng.uniform(60.0, 90.0, (1000, 1)).astype(np.float32)
    e = f32(2.4)
    with np.errstate(divide="ignore", invalid="ignore"):  # the centre's 0 ** -1.4 * 0
        r = (u ** e + v ** e) ** (1.0 / e)
        gu, gv = u ** (e - 1) / half_width, v ** (e - 1) / half_y
        grad = np.maximum(r ** (1 - e) * np.sqrt(gu ** 2 + gv ** 2), f32(1e-6))
        written_out = np.maximum((r - 1.0) / grad, y - back)
        compiled = _trunk_distance(u ** e, v ** e, gu, gv, y, back, 1.0 / e, 1 - e)
    assert compiled.dtype == written_out.dtype == np.float32
    assert np.isnan(compiled[0, 0]) and np.isnan(written_out[0, 0])
    np.testing.assert_allclose(compiled, written_out, rtol=0, atol=POWER_CPU_NOISE_MM)
