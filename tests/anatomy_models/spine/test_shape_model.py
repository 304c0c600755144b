"""The real vertebra shapes: the shipped mean shapes, and their warp onto a level's dimensions (round trip)."""

from dataclasses import fields

import numpy as np
import pytest

from anatomy_models.spine.shape_model import SHAPES_FILE, LevelTargets, load_template, measure_template, warped_sdf

MEASURED = ("body_width_mm", "body_depth_mm", "body_height_mm", "canal_transverse_mm", "canal_ap_mm",
            "pedicle_lateral_mm", "transverse_process_tip_mm", "spinous_process_tip_mm", "pedicle_bottom_mm",
            "pedicle_top_mm")


def test_the_shipped_shapes_are_small_and_licensed():
    assert SHAPES_FILE.stat().st_size < 400_000
    licence = (SHAPES_FILE.parent / "LICENSE").read_text()
    assert "MIT License" in licence and "Allison Clouthier" in licence
    assert "10.1016/j.jbiomech.2022.111421" in (SHAPES_FILE.parent / "README.md").read_text()


@pytest.mark.parametrize("level", ["L2", "L3", "L4", "L5"])
def test_mean_shapes_are_lumbar_vertebrae(level):
    """Dimensions of the mean shapes within the ranges of the 87 patients (Clouthier 2023, shapes/README.md)."""
    template = load_template(level)
    assert 23.5 <= template.body_height_mm <= 32.3
    assert 29.5 <= template.body_depth_mm <= 42.0
    assert 13.0 <= template.canal_ap_mm <= 20.4
    # A left-right symmetric shape: the grid equals its mirror image.
    assert np.array_equal(template.sdf_mm, template.sdf_mm[::-1])


@pytest.mark.parametrize("level", ["L3", "L4"])
def test_the_warp_brings_a_shape_to_its_targets(level):
    """Warp a mean shape onto other dimensions, resample it in the level's frame and measure it again:
    the measured dimensions are the targets (within about a voxel). At L5 the transverse process
    grows out of the pedicle and its lateral wall has no sharp isthmus, so L3 and L4 are checked."""
    template = load_template(level)
    stretch = {"body_width_mm": 0.92, "body_depth_mm": 1.05, "body_height_mm": 0.95, "canal_transverse_mm": 1.1,
               "canal_ap_mm": 0.85, "pedicle_lateral_mm": 1.05, "transverse_process_tip_mm": 0.9}
    values = {f.name: getattr(template, f.name) * stretch.get(f.name, 1.0) for f in fields(LevelTargets)
              if f.name in MEASURED}
    values["spinous_process_tip_mm"] = template.spinous_process_tip_mm - 6.0
    values["pedicle_bottom_mm"] = template.pedicle_bottom_mm + 1.0
    targets = LevelTargets(**values)
    sdf = warped_sdf(template, targets)
    u = np.arange(-60.0, 61.0, 1.0, dtype=np.float32)
    v = np.arange(-30.0, 81.0, 1.0, dtype=np.float32)
    w = np.arange(-40.0, 31.0, 1.0, dtype=np.float32)
    grid = sdf(u[:, None, None], v[None, :, None], w[None, None, :])
    measured = measure_template(level, grid, np.array([u[0], v[0], w[0]], dtype=np.float64), 1.0)
    for name in MEASURED:
        assert getattr(measured, name) == pytest.approx(values[name], abs=1.5), name
