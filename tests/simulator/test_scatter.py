"""Scatter and grid: the rendered scatter-to-primary ratio of water phantoms against published values,
and what collimation and a grid do to an image's contrast."""

import numpy as np
import pytest

from anatomy_models.anatomy import Anatomy
from anatomy_models.volume import Volume
from simulator.imaging.carm import CArm, Collimation
from simulator.imaging.fluoro import DetectorModel, Display, render_fluoro
from simulator.imaging.scatter import NO_GRID, PUBLISHED_WATER_SPR, Grid, ScatterGeometry, contact_spr

SOURCE_TO_ISOCENTER_MM = 700.0


def _water_slab(thickness_mm: float, insert_hu: int = 0) -> Anatomy:
    """A water slab ``thickness_mm`` thick along y, 480 mm wide (4 mm voxels), centred on the isocentre;
    with ``insert_hu`` a 24 mm bone-like block in its middle (the contrast test's detail)."""
    layers = int(round(thickness_mm / 4))
    hu = np.zeros((120, layers, 120), np.int16)
    if insert_hu:
        hu[57:63, layers // 2 - 3:layers // 2 + 3, 57:63] = insert_hu
    return Anatomy(ct=Volume.from_spacing(hu, (4, 4, 4), origin=(-238, -2 * layers + 2, -238)))


def _contact_carm(thickness_mm: float, field_side_mm: float, **fields) -> CArm:
    """A square flat detector of side ``field_side_mm`` at the slab's exit surface (no air gap), as
    the published phantom measurements are made."""
    return CArm(detector_pixels=64, detector_shape="square", detector_size_mm=field_side_mm,
                source_to_isocenter_mm=SOURCE_TO_ISOCENTER_MM,
                source_to_detector_mm=SOURCE_TO_ISOCENTER_MM + thickness_mm / 2.0, **fields)


@pytest.mark.parametrize("thickness_mm, field_side_mm, published", PUBLISHED_WATER_SPR)
def test_scatter_to_primary_ratio_of_water_phantoms_matches_published_values(thickness_mm, field_side_mm, published):
    image = render_fluoro(_water_slab(thickness_mm), _contact_carm(thickness_mm, field_side_mm), dose=None,
                          detector=DetectorModel.flat_panel(grid=NO_GRID))
    # The field is at the detector plane, the published one at the phantom's exit surface: the same here.
    assert image.metadata["scatter_to_primary"] == pytest.approx(published, rel=0.2)
    assert contact_spr(thickness_mm, field_side_mm) == pytest.approx(published, rel=0.1)


def test_grid_and_air_gap_cut_the_scatter():
    assert ScatterGeometry(800.0, 800.0).fluence_factor == pytest.approx(1.0)
    assert ScatterGeometry(750.0, 1000.0).fluence_factor == pytest.approx((175 / 425) ** 2 / 0.75**2)
    thickness, side = 200.0, 200.0
    bare = render_fluoro(_water_slab(thickness), _contact_carm(thickness, side), dose=None,
                         detector=DetectorModel.flat_panel(grid=NO_GRID)).metadata["scatter_to_primary"]
    gridded = render_fluoro(_water_slab(thickness), _contact_carm(thickness, side), dose=None,
                            detector=DetectorModel.flat_panel()).metadata["scatter_to_primary"]
    grid = Grid()
    assert gridded == pytest.approx(bare * grid.scatter_transmission / grid.primary_transmission, rel=1e-3)


def test_collimating_tighter_and_a_thinner_patient_give_more_contrast():
    def contrast(thickness_mm, collimation=Collimation()):
        carm = CArm(detector_pixels=64, detector_shape="square", detector_size_mm=300.0, collimation=collimation)
        image = render_fluoro(_water_slab(thickness_mm, insert_hu=1200), carm, dose=None,
                              detector=DetectorModel.flat_panel(), display=Display(letters=False))
        return float(image.measured[31:33, 31:33].mean() - image.measured[31:33, 20:22].mean()), image

    open_field, wide = contrast(240.0)
    collimated, narrow = contrast(240.0, Collimation(width=0.45, height=0.45))
    thin, _ = contrast(160.0)
    assert narrow.metadata["scatter_to_primary"] < 0.7 * wide.metadata["scatter_to_primary"]
    assert collimated > 1.05 * open_field
    assert thin > 1.1 * open_field
