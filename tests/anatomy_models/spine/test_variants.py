"""Every parameter of the generator changes the anatomy the way it says (2 mm, spine field of view)."""

from __future__ import annotations

import numpy as np
import pytest

from anatomy_models.spine import SpineParameters, generate_spine
from anatomy_models.spine.measure import disc_heights


def small(**values):
    return generate_spine(SpineParameters(spacing_mm=2.0, field_of_view="spine", **values))


@pytest.fixture(scope="module")
def baseline():
    return small()


def test_generation_is_deterministic_and_the_seed_changes_only_texture_and_bowel_content(baseline):
    again = small()
    np.testing.assert_array_equal(again.ct.array, baseline.ct.array)
    other = small(seed=3)
    bowel = sum(a.mask(name) for a in (other, baseline) for name in ("bowel_gas", "colon_content")).astype(bool)
    changed = other.labels.array != baseline.labels.array
    assert changed.any() and not (changed & ~bowel).any()  # the gas and stool moved, nothing else
    assert np.any(other.ct.array != baseline.ct.array)


def test_scoliosis_moves_the_apex_toward_the_convex_side(baseline):
    curved = small(scoliosis_cobb_deg=30.0, scoliosis_apex="L2", scoliosis_convex_side="right", scoliosis_rotation_deg=15.0)
    shift = curved.landmark("L2.body.center")[0] - baseline.landmark("L2.body.center")[0]
    assert shift < -8.0  # the patient's right is -x
    # The apical body turns toward the convexity: its spinous process swings the other way (left, +x).
    assert curved.landmark("L2.spinous_process.tip")[0] - curved.landmark("L2.body.center")[0] > 5.0


def test_degeneration_lowers_discs_and_thickens_the_flavum(baseline):
    worn = small(degeneration=3.0)
    ap = 33.1
    assert disc_heights(worn, "L4-L5", ap)[1] < 0.8 * disc_heights(baseline, "L4-L5", ap)[1]
    assert worn.mask("ligamentum_flavum.L4-L5").sum() > 1.2 * baseline.mask("ligamentum_flavum.L4-L5").sum()
    assert worn.mask("epidural_space").sum() < baseline.mask("epidural_space").sum()


def test_sex_and_size_scale_the_skeleton(baseline):
    female = small(sex="female")
    # The body's size as the cube root of its volume: the real shape's waisted walls make its extent
    # in x a matter of a single 2 mm voxel.
    width = lambda a: np.cbrt(a.mask("L3.body").sum())  # noqa: E731
    assert width(female) < width(baseline)
    large = small(size_scale=1.2)
    assert width(large) > 1.1 * width(baseline)


def test_vessel_conus_and_gas_variants(baseline):
    variant = small(adamkiewicz_level="L1", adamkiewicz_side="right", conus_level="L2", conus_position=0.5,
                    bowel_gas=False)
    assert "radicular_artery.L1.right.adamkiewicz" in variant.label_table
    assert "radicular_artery.T12.left.adamkiewicz" not in variant.label_table
    assert variant.mask("radicular_artery.L1.right.adamkiewicz").any()
    assert variant.landmark("conus.tip")[2] < baseline.landmark("conus.tip")[2] - 20.0
    assert baseline.mask("bowel_gas").any() and "bowel_gas" not in variant.label_table  # gas is on by default


def test_transitional_anatomy(baseline):
    sacralized = small(transitional="sacralized_L5")
    assert disc_heights(sacralized, "L5-S1", 31.3)[1] < 0.5 * disc_heights(baseline, "L5-S1", 31.3)[1]
    tp = lambda a: a.mask("L5.transverse_process").sum()  # noqa: E731
    assert tp(sacralized) > 1.5 * tp(baseline)
    lumbarized = small(transitional="lumbarized_S1")
    assert lumbarized.mask("S1-S2.disc").any()


def test_a_3_5_inch_needle_is_too_short_for_tfesi_in_severe_obesity():
    from anatomy_models.spine.measure import skin_distance

    needle_mm = 3.5 * 25.4
    oblique = np.array([np.sin(np.radians(20.0)), np.cos(np.radians(20.0)), 0.0])  # from the left-posterior
    depths = {}
    for bmi in (25.0, 40.0):
        anatomy = generate_spine(SpineParameters(bmi=bmi, spacing_mm=2.0))
        depths[bmi] = skin_distance(anatomy, anatomy.landmark("L4-L5.safe_triangle.left"), oblique)
    # Foraminal depth medians 75 mm (normal BMI) to 104-122 mm (obese II-III), clinical.md §4.9 [S23].
    assert 60.0 < depths[25.0] < needle_mm < depths[40.0] < 125.0
