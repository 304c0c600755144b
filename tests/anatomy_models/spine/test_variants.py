"""Every parameter of the generator changes the anatomy the way it says (2 mm, spine field of view).

A variant that a library case also uses (degeneration, transitional, obesity) is compared on the whole
torso instead, against the built-in patient: the generated-patient store then builds each of those
2 mm patients once for this file and the scoring tests together (tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from anatomy_models.spine import SpineParameters, generate_spine
from anatomy_models.spine.measure import disc_heights
from anatomy_models.store import generated_anatomy


def small(**values):
    return generate_spine(SpineParameters(spacing_mm=2.0, field_of_view="spine", **values))


def stored(**values):
    """The 2 mm patient with ``values`` from the session's store: made once in a run, for every test and
    worker that asks (a library case on the same variant, the other worker running this file)."""
    return generated_anatomy(SpineParameters(spacing_mm=2.0, **values))


@pytest.fixture(scope="module")
def baseline(spinesim_home):
    return stored(field_of_view="spine")


def test_the_seed_changes_texture_bowel_content_and_the_natural_asymmetry(baseline):
    """Another seed moves the bowel's gas and stool, the texture and (drawn from it, alignment.natural_asymmetry and
    body_asymmetry) each side's bones and muscles; without the natural asymmetry it moves only the gas and stool.
    (The same parameters make the same patient: test_store_and_cli generates this baseline's parameters twice and
    compares the CT, test_generator_identity the built-in patient's checksums.)"""
    def changed_beyond_the_bowel(a, b) -> bool:
        bowel = sum(x.mask(name) for x in (a, b) for name in ("bowel_gas", "colon_content")).astype(bool)
        changed = a.labels.array != b.labels.array
        assert changed.any() and np.any(a.ct.array != b.ct.array)
        return bool((changed & ~bowel).any())
    assert changed_beyond_the_bowel(small(seed=3), baseline)
    assert not changed_beyond_the_bowel(small(seed=3, natural_asymmetry=0.0), small(natural_asymmetry=0.0))


def test_scoliosis_moves_the_apex_toward_the_convex_side(baseline):
    curved = small(scoliosis_cobb_deg=30.0, scoliosis_apex="L2", scoliosis_convex_side="right", scoliosis_rotation_deg=15.0)
    shift = curved.landmark("L2.body.center")[0] - baseline.landmark("L2.body.center")[0]
    assert shift < -8.0  # the patient's right is -x
    # The apical body turns toward the convexity: its spinous process swings the other way (left, +x).
    assert curved.landmark("L2.spinous_process.tip")[0] - curved.landmark("L2.body.center")[0] > 5.0


def test_degeneration_lowers_discs_and_thickens_the_flavum(small_spine):
    worn = stored(degeneration=3.0)  # ilesi-degenerated-l4l5's patient
    ap = 33.1
    assert disc_heights(worn, "L4-L5", ap)[1] < 0.8 * disc_heights(small_spine, "L4-L5", ap)[1]
    assert worn.mask("ligamentum_flavum.L4-L5").sum() > 1.2 * small_spine.mask("ligamentum_flavum.L4-L5").sum()
    assert worn.mask("epidural_space").sum() < small_spine.mask("epidural_space").sum()


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


def test_transitional_anatomy(small_spine):
    sacralized = stored(transitional="sacralized_L5")  # tfesi-transitional-l4l5-left's patient
    assert disc_heights(sacralized, "L5-S1", 31.3)[1] < 0.5 * disc_heights(small_spine, "L5-S1", 31.3)[1]
    tp = lambda a: a.mask("L5.transverse_process").sum()  # noqa: E731
    assert tp(sacralized) > 1.5 * tp(small_spine)
    lumbarized = small(transitional="lumbarized_S1")
    assert lumbarized.mask("S1-S2.disc").any()


def test_a_3_5_inch_needle_is_too_short_for_tfesi_in_severe_obesity(small_spine):
    from anatomy_models.spine.measure import skin_distance

    needle_mm = 3.5 * 25.4
    oblique = np.array([np.sin(np.radians(20.0)), np.cos(np.radians(20.0)), 0.0])  # from the left-posterior
    depths = {}
    # BMI 25 is the built-in patient's; BMI 40 is tfesi-bmi40-l4l5-left's.
    for bmi, anatomy in ((25.0, small_spine), (40.0, stored(bmi=40.0))):
        assert anatomy.metadata["parameters"]["bmi"] == bmi
        depths[bmi] = skin_distance(anatomy, anatomy.landmark("L4-L5.safe_triangle.left"), oblique)
    # Foraminal depth medians 75 mm (normal BMI) to 104-122 mm (obese II-III), clinical.md §4.9 [S23].
    assert 60.0 < depths[25.0] < needle_mm < depths[40.0] < 125.0
