import numpy as np
import pytest

from anatomy_models.errors import SpinesimError
from anatomy_models.tissues import (TISSUES, hu_to_mu, iodine_hu_per_mg_ml, iodine_mu_per_mm_per_mg_ml,
                                    linear_attenuation_per_mm, mass_attenuation_cm2_per_g, tissue)


def test_nist_points_are_reproduced_and_interpolated_log_log():
    assert mass_attenuation_cm2_per_g("water", 60) == pytest.approx(0.2059)
    # the 70 keV column of clinical.md §5.2 is itself log-log interpolated: same rule, same numbers
    assert mass_attenuation_cm2_per_g("iodine", 70) == pytest.approx(5.017, rel=0.03)
    assert mass_attenuation_cm2_per_g("cortical_bone", 70) == pytest.approx(0.2617, rel=0.01)
    with pytest.raises(SpinesimError, match="outside"):
        mass_attenuation_cm2_per_g("water", 30)


@pytest.mark.parametrize("kev", [60.0, 70.0, 80.0])
def test_hu_map_gives_air_water_and_bone_their_own_attenuation(kev):
    mu = hu_to_mu(kev)
    assert float(mu(-1000)) == pytest.approx(0.0, abs=1e-7)  # float32
    assert float(mu(0)) == pytest.approx(linear_attenuation_per_mm("water", kev))
    hu_bone = 1000 * (linear_attenuation_per_mm("cortical_bone", 70) / linear_attenuation_per_mm("water", 70) - 1)
    assert float(mu(hu_bone)) == pytest.approx(linear_attenuation_per_mm("cortical_bone", kev), rel=1e-6)
    # fat (-100 HU) is 10% less attenuating than water at any energy
    assert float(mu(-100)) == pytest.approx(0.9 * linear_attenuation_per_mm("water", kev))
    # monotonic over the whole CT range
    values = mu(np.arange(-1024, 3072, dtype=np.float32))
    assert np.all(np.diff(values) >= 0)


def test_bone_contrast_is_higher_at_fluoroscopy_energy_than_at_ct_energy():
    # this is why a single HU slope is wrong: bone/water attenuation ratio grows as energy falls
    ratio_60 = float(hu_to_mu(60)(1200) / hu_to_mu(60)(0))
    ratio_70 = float(hu_to_mu(70)(1200) / hu_to_mu(70)(0))
    assert ratio_60 > ratio_70 == pytest.approx(2.2, rel=1e-6)


def test_iodine_and_steel_match_the_reference_rules():
    # clinical.md §5.1: each 1 mg iodine per mL adds about 26 HU at 70 keV
    assert iodine_hu_per_mg_ml(70) == pytest.approx(26, abs=1)
    # §5.2: 300 mgI/mL contrast is 2.48 1/cm at 60 keV
    contrast = 300 * iodine_mu_per_mm_per_mg_ml(60) + linear_attenuation_per_mm("water", 60)
    assert contrast * 10 == pytest.approx(2.48, rel=0.01)
    # §5.2: iron ~9.49 1/cm at 60 keV; steel (7.93 g/cm3) slightly more
    assert tissue("steel").xray_mu_per_mm(60) * 10 == pytest.approx(9.49 * 7.93 / 7.874, rel=1e-3)


def test_acoustic_impedances_give_the_reference_reflections():
    def reflection(a, b):
        z1, z2 = tissue(a).impedance_mrayl, tissue(b).impedance_mrayl
        return ((z2 - z1) / (z2 + z1)) ** 2

    # clinical.md §5.3: muscle -> bone ~0.37 (cortical bone Z 6.5-7.8 MRayl), muscle -> steel ~0.87
    assert 0.3 < reflection("muscle", "cortical_bone") < 0.45
    assert reflection("muscle", "steel") == pytest.approx(0.87, abs=0.02)
    assert reflection("fat", "muscle") < 0.01


def test_every_tissue_is_physical():
    for t in TISSUES.values():
        assert t.speed_m_per_s > 0 and t.density_kg_per_m3 > 0 and t.attenuation_db_per_cm_mhz >= 0
        assert 0 <= t.backscatter <= 1
        assert t.xray_mu_per_mm() >= 0
    with pytest.raises(SpinesimError, match="unknown tissue class 'bone'"):
        tissue("bone")
