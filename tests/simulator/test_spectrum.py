"""The polychromatic beam against Beer-Lambert through the spectrum with reference attenuation data.

The reference here is computed independently of the renderer: SpekPy's spectrum at 0.5 keV bins (the
renderer's are 2 keV), water's attenuation from xraydb's own material table (not the renderer's
elemental sum), the CsI detector's energy weighting, and ``-ln sum w(E) exp(-mu(E) t)`` in float64.
"""

import numpy as np
import pytest
import xraydb

from anatomy_models.anatomy import Anatomy
from anatomy_models.tissues import COMPOSITION_MASS_FRACTIONS, linear_attenuation_per_mm
from anatomy_models.volume import Volume
from simulator.imaging.carm import CArm
from simulator.imaging.dose import Technique
from simulator.imaging.fluoro import DetectorModel, render_fluoro
from simulator.imaging.spectrum import (CSI_THICKNESS_MM, TUBE_FILTRATION_MM_AL, beam, detected_line_integrals,
                                        detected_water_bone, spekpy_spectrum)

KVPS = (65.0, 80.0, 120.0)
WATER_MM = 200.0
BONE_MM = 20.0


def _reference(kvp: float, water_mm: float, bone_mm: float) -> float:
    energies, fluence, _ = spekpy_spectrum(kvp, TUBE_FILTRATION_MM_AL, 0.5)
    ev = energies * 1000.0
    csi = xraydb.material_mu("CsI", ev, density=4.51) / 10.0  # 1/mm
    weights = fluence * energies * (1.0 - np.exp(-csi * CSI_THICKNESS_MM))
    water = xraydb.material_mu("water", ev, density=1.0) / 10.0
    bone = sum(w * xraydb.mu_elam(el, ev) for el, w in COMPOSITION_MASS_FRACTIONS["cortical_bone"].items()) * 1.92 / 10
    return float(-np.log(np.sum(weights * np.exp(-water * water_mm - bone * bone_mm)) / np.sum(weights)))


def _slab(bone_mm: float) -> Anatomy:
    """A 200 mm water slab (2 mm voxels, 200 mm wide) with, optionally, a cortical-bone layer in its middle."""
    hu = np.full((50, 100, 50), 0, np.int16)
    if bone_mm:
        mu70 = linear_attenuation_per_mm("water", 70.0)
        hu_bone = 1000.0 * (linear_attenuation_per_mm("cortical_bone", 70.0) - mu70) / mu70
        layers = int(bone_mm / 2)
        hu[:, 50 - layers // 2:50 - layers // 2 + layers, :] = round(hu_bone)
    return Anatomy(ct=Volume.from_spacing(hu, (4, 2, 4), origin=(-98, -99, -98)))


@pytest.mark.parametrize("kvp", KVPS)
def test_water_and_bone_slabs_attenuate_as_beer_lambert_through_the_spectrum(kvp):
    carm = CArm(detector_pixels=32, detector_shape="square", source_to_isocenter_mm=2000.0,
                source_to_detector_mm=2100.0)
    physics = DetectorModel(scatter=False)
    for bone_mm in (0.0, BONE_MM):
        image = render_fluoro(_slab(bone_mm), carm, dose=None if kvp == 80.0 else Technique(kvp=kvp), detector=physics)
        centre = float(image.line_integrals[15:17, 15:17].mean())
        # ~2000 mm from the source the rays are within 0.1% of normal to the slab
        assert centre == pytest.approx(_reference(kvp, WATER_MM - bone_mm, bone_mm), rel=4e-3), (kvp, bone_mm)


def test_bone_and_iodine_contrast_fall_with_kvp_and_the_beam_hardens():
    bone = [beam(k).line_integral(WATER_MM - BONE_MM, BONE_MM) - beam(k).line_integral(WATER_MM) for k in KVPS]
    iodine = [beam(k).line_integral(WATER_MM, iodine_mg_ml_mm=300.0) - beam(k).line_integral(WATER_MM) for k in KVPS]
    assert bone[0] > bone[1] > bone[2] > 0.5 * bone[0]
    assert iodine[0] > iodine[1] > iodine[2]
    # Beam hardening: the second 100 mm of water attenuate less than the first.
    b = beam(80.0)
    assert b.line_integral(200.0) - b.line_integral(100.0) < 0.95 * b.line_integral(100.0)
    assert b.mean_energy_kev(200.0) > b.mean_energy_kev(0.0) + 5.0


def test_the_water_bone_table_matches_the_sum_over_the_spectrum():
    b = beam(80.0)
    rng = np.random.default_rng(0)
    water = rng.uniform(0.0, 450.0, (64, 64)).astype(np.float32)
    bone = rng.uniform(0.0, 60.0, (64, 64)).astype(np.float32)
    np.testing.assert_allclose(detected_water_bone(b, water, bone), detected_line_integrals(b, water, bone), atol=5e-4)


def test_a_spectrum_is_made_once_and_then_read_from_the_home(tmp_path, monkeypatch):
    """SpekPy takes seconds a spectrum and the exposure control visits many kVp steps: the second ask reads the
    home's copy (SpekPy is not called again), and a damaged copy is made again, not trusted."""
    import spekpy

    monkeypatch.setenv("SPINESIM_HOME", str(tmp_path))
    made = spekpy_spectrum(67.0, 3.0, 2.0)
    kept = next((tmp_path / "spectra").glob("*67kVp*"))

    def refused(*args, **kwargs):
        raise AssertionError("SpekPy asked again for a kept spectrum")

    with monkeypatch.context() as patched:
        patched.setattr(spekpy, "Spek", refused)
        again = spekpy_spectrum(67.0, 3.0, 2.0)
    for first, second in zip(made, again):
        np.testing.assert_array_equal(first, second)
    kept.write_bytes(b"PK\x03\x04 cut short")
    remade = spekpy_spectrum(67.0, 3.0, 2.0)
    np.testing.assert_array_equal(remade[1], made[1])
