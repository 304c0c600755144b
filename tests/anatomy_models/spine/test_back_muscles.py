"""The back muscles: erector spinae and multifidus to published cross-sectional areas, the erector's lateral
border curving in with level (no straight vertical edge on the AP), a fat septum in it, and no column of
muscle below the sacrum."""

from __future__ import annotations

import numpy as np
import pytest

from anatomy_models.spine.alignment import VERTEBRA_NAMES, align_spine
from anatomy_models.spine.parameters import SpineParameters
from anatomy_models.spine.skeleton import build_skeleton
from anatomy_models.spine.soft_tissue import SACRAL_MUSCLE_END_MM, muscle_shapes, spine_profile

STEP_MM = 0.5
# Published cross-sectional areas, cm2 (mean, SD): erector spinae by MRI at L3-L4 and L4-L5 (Fortin et al.),
# multifidus by CT at the L3 endplate (Danneels et al.), both tabulated by Kalichman et al., BioMed Res Int
# 2017:2562957, table 1; multifidus by ultrasound in 52 men at L4 and L5 (Stokes et al., Man Ther 2005;10:116).
ERECTOR_CSA_CM2 = {"L3": (20.0, 4.4), "L4": (16.3, 4.1)}
MULTIFIDUS_CSA_CM2 = {"L3": (4.7, 1.4), "L4": (7.9, 1.9), "L5": (8.9, 1.7)}


@pytest.fixture(scope="module")
def built():
    params = SpineParameters(spacing_mm=2.0)
    profile = spine_profile(build_skeleton(align_spine(params), params))
    return profile, muscle_shapes(profile, float(profile.z[-1]) + 30.0, float(profile.z[0]) - 120.0)


def _level_z(profile, level: str) -> float:
    return float(profile.z[::-1][VERTEBRA_NAMES.index(level)])  # the profile runs from S1 up


def _section(shape, z_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """x (mm) of a 0.5 mm grid over the left back and whether ``shape`` holds each point at height z."""
    x, y = np.meshgrid(np.arange(-5.0, 140.0, STEP_MM, dtype=np.float32),
                       np.arange(-80.0, 160.0, STEP_MM, dtype=np.float32), indexing="ij")
    return x, shape.sdf(x, y, np.full_like(x, z_mm)) < 0


def test_cross_sectional_areas_are_the_published_ones(built):
    """The erector (as painted: beside the multifidus, which wins where they meet) within 1.5 SD below the
    MRI means, never above them; the multifidus within 1 SD of its means."""
    profile, shapes = built
    erector, multifidus = shapes["muscle.erector_spinae.left"], shapes["muscle.multifidus.left"]
    for level, (mean, sd) in ERECTOR_CSA_CM2.items():
        _, inside = _section(erector, _level_z(profile, level))
        _, deeper = _section(multifidus, _level_z(profile, level))
        area = (inside & ~deeper).sum() * STEP_MM ** 2 / 100.0
        assert mean - 1.5 * sd < area < mean, f"erector spinae at {level}: {area:.1f} cm2"
    for level, (mean, sd) in MULTIFIDUS_CSA_CM2.items():
        _, inside = _section(multifidus, _level_z(profile, level))
        area = inside.sum() * STEP_MM ** 2 / 100.0
        assert abs(area - mean) < sd, f"multifidus at {level}: {area:.1f} cm2"


def test_the_erectors_lateral_border_sweeps_in_from_l1_to_s1(built):
    """Its lateral border moves medially level by level, by more than 30 mm from L1 to S1 (a straight
    border, the same x at every level, draws a vertical line the length of an AP image)."""
    profile, shapes = built
    borders = []
    for level in ("L1", "L2", "L3", "L4", "L5", "S1"):
        x, inside = _section(shapes["muscle.erector_spinae.left"], _level_z(profile, level))
        borders.append(float(x[inside].max()))
    assert borders[0] - borders[-1] > 30.0, borders
    assert all(upper > lower + 3.0 for upper, lower in zip(borders[:-1], borders[1:])), borders


def test_a_fat_septum_parts_longissimus_and_iliocostalis(built):
    """Across the erector at L3, at the depth of the iliocostalis's middle: muscle, a gap of fat, muscle."""
    profile, shapes = built
    erector = shapes["muscle.erector_spinae.left"]
    z = _level_z(profile, "L3")
    y = float(np.interp(z, erector.iliocostalis.z, erector.iliocostalis.cy))
    x = np.arange(0.0, 120.0, 0.1, dtype=np.float32)
    inside = erector.sdf(x, np.full_like(x, y), np.full_like(x, z)) < 0
    runs = np.flatnonzero(np.diff(inside.astype(int)))
    assert len(runs) >= 3, "no septum: one block of muscle"
    gap_mm = (runs[2] - runs[1]) * 0.1
    assert 0.5 < gap_mm < 3.0, gap_mm


def test_the_back_muscles_end_on_the_sacrum(built):
    """Below S1 they thin to their sacral attachments: nothing of them further down than
    SACRAL_MUSCLE_END_MM below S1's centre."""
    profile, shapes = built
    z = float(profile.z[0]) - SACRAL_MUSCLE_END_MM - 2.0
    for name in ("erector_spinae", "multifidus"):
        _, inside = _section(shapes[f"muscle.{name}.left"], z)
        assert not inside.any(), name
