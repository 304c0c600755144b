"""Contrast on the monitor as its iodine and thickness make it: a thin film faint, a pool dark, both graded.

A block of water (200 mm along the beam) carries three slabs of undiluted contrast (300 mg iodine per mL) across
the beam: a 1 mm film, a 4 mm pool and an 8 mm pool. Their line integrals are checked against the polychromatic
Beer-Lambert law with iodine's and water's attenuation from xraydb (the beam's spectrum and detector response
from simulator.imaging.spectrum), and their grey levels on the monitor against the order their thicknesses give.
"""

import numpy as np
import pytest
import xraydb

from anatomy_models.anatomy import Anatomy
from anatomy_models.tissues import CONTRAST_IODINE_MG_PER_ML
from anatomy_models.volume import Volume
from simulator.imaging.carm import CArm
from simulator.imaging.drr import anatomy_basis_line_integrals
from simulator.imaging.fluoro import DetectorModel, Display, render_fluoro
from simulator.imaging.spectrum import beam

# Slab thickness along the beam (mm) and its centre across it (x, mm).
SLABS = {1.0: -24.0, 4.0: 0.0, 8.0: 24.0}
HALF_WIDTH_MM = 8.0
# The display window's width (line-integral units): the built-in patient's AP L4 automatic window, 4.95-5.71 [measured,
# issue 16's report].
AP_WINDOW_WIDTH = 0.76


@pytest.fixture(scope="module")
def slabs():
    hu = np.full((60, 110, 40), -1000, np.int16)
    hu[5:55, 5:105, :] = 0  # 200 mm of water along y
    anatomy = Anatomy(ct=Volume.from_spacing(hu, (2, 2, 2), origin=(-59, -109, -39)), metadata={"name": "water"})
    spacing = 0.5
    shape = (int(70 / spacing), int(20 / spacing), int(40 / spacing))
    contrast = Volume.from_spacing(np.zeros(shape, np.float32), (spacing,) * 3, origin=(-35.0, -9.75, -20.0))
    x, y, z = (contrast.voxel_to_world(np.stack([np.arange(n) if a == axis else np.zeros(n) for a in range(3)], axis=1))
               [:, axis] for axis, n in enumerate(shape))
    for thickness, centre in SLABS.items():
        across = np.abs(x - centre) <= HALF_WIDTH_MM
        along = np.abs(y) < thickness / 2.0
        contrast.array[np.ix_(across, along, np.abs(z) <= 15.0)] = CONTRAST_IODINE_MG_PER_ML
    carm = CArm(primary_deg=0.0, detector_pixels=256, detector_size_mm=120.0)
    return anatomy, contrast, carm


def _at(carm, centre_x):
    u, v = carm.project(np.array([[centre_x, 0.0, 0.0]]))[0]
    return int(round(v)), int(round(u))


def test_contrast_line_integrals_follow_its_iodine_and_thickness(slabs):
    anatomy, contrast, carm = slabs
    plain = render_fluoro(anatomy, carm, dose=None, detector=DetectorModel(scatter=False))
    shown = render_fluoro(anatomy, carm, contrast=contrast, dose=None, detector=DetectorModel(scatter=False))
    spectrum = beam(80.0)
    ev = spectrum.energies_kev * 1000.0
    iodine = xraydb.mu_elam("I", ev) * 1e-3 / 10.0  # 1/mm per mg/mL
    water = xraydb.material_mu("water", ev, density=1.0) / 10.0  # 1/mm
    water_mm = anatomy_basis_line_integrals(anatomy, carm)[0]
    for thickness, centre in SLABS.items():
        pixel = _at(carm, centre)
        path = float(water_mm[pixel])
        through = np.sum(spectrum.weights * np.exp(-water * path - iodine * CONTRAST_IODINE_MG_PER_ML * thickness))
        expected = -np.log(through) + np.log(np.sum(spectrum.weights * np.exp(-water * path)))
        added = float(shown.line_integrals[pixel] - plain.line_integrals[pixel])
        assert added == pytest.approx(expected, rel=0.03), thickness


def test_a_film_is_faint_and_a_pool_dark_and_both_graded_not_clipped(slabs):
    """With the window as wide as the AP's, a 1 mm film of contrast over soft tissue shows as grey, a 4 mm pool
    darker and an 8 mm pool darker still, neither clipped to the end of the scale: at a hard clip both pools were
    one black (issue 16: "contrast drawn saturated black")."""
    anatomy, contrast, carm = slabs
    detector = DetectorModel(scatter=False, vignetting=0.0)
    plain = render_fluoro(anatomy, carm, dose=None, detector=detector)
    background = float(plain.measured[_at(carm, 0.0)])
    display = Display.level_width(background, AP_WINDOW_WIDTH, letters=False)
    image = render_fluoro(anatomy, carm, contrast=contrast, dose=None, detector=detector, display=display)
    grey = {thickness: float(image.pixels[_at(carm, centre)]) for thickness, centre in SLABS.items()}
    u, v = carm.project(np.array([[0.0, 0.0, 25.0]]))[0]  # beyond the slabs' cranial ends
    soft_tissue = float(image.pixels[int(round(v)), int(round(u))])
    assert soft_tissue - grey[1.0] >= 40  # the film shows
    assert grey[1.0] - grey[4.0] >= 20  # the pool is much darker
    assert grey[4.0] - grey[8.0] >= 3 and grey[8.0] >= 1  # and graded, not clipped
