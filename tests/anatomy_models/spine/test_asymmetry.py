"""Natural left-right asymmetry (issue 16: "perfect left-right symmetry, no real spine is symmetric"): what the
seed draws reaches the vertebra's frame, its facet joints and both halves of its real shape."""

import numpy as np
import pytest

from anatomy_models.spine import SpineParameters
from anatomy_models.spine.alignment import NATURAL_ASYMMETRY_SD, align_spine, axis_rotation, natural_asymmetry
from anatomy_models.spine.facets import facet_joint
from anatomy_models.spine.shape_model import TEMPLATE_OF_LEVEL, load_template, measure_template, warped_sdf
from anatomy_models.spine.skeleton import level_targets
from anatomy_models.spine.vertebra import layout_vertebra

ASYMMETRIC = SpineParameters(seed=7, natural_asymmetry=1.0)


def test_the_default_spine_is_symmetric_and_the_draws_stay_within_two_standard_deviations():
    vertebrae, tropism = natural_asymmetry(SpineParameters())
    assert all(v.pedicle_width_mm == v.transverse_process_length_mm == v.axial_rotation_deg == 0.0
               for v in vertebrae.values()) and all(t == 0.0 for t in tropism.values())
    targets = level_targets(layout_vertebra(align_spine(SpineParameters()).vertebrae["L4"]))
    assert targets.side_knots("right") == pytest.approx(targets.side_knots("left"), abs=1e-9)
    for seed in range(20):
        vertebrae, tropism = natural_asymmetry(SpineParameters(seed=seed, natural_asymmetry=1.0))
        assert all(abs(t) <= 2 * NATURAL_ASYMMETRY_SD["facet_tropism_deg"] for t in tropism.values())
        assert all(abs(v.axial_rotation_deg) <= 2 * NATURAL_ASYMMETRY_SD["axial_rotation_deg"]
                   for v in vertebrae.values())


def test_each_vertebra_turns_by_its_drawn_rotation_and_each_joint_has_its_tropism():
    symmetric, asymmetric = align_spine(SpineParameters(seed=7)), align_spine(ASYMMETRIC)
    vertebrae, tropism = natural_asymmetry(ASYMMETRIC)
    for name in ("L2", "L4"):
        turn = symmetric.vertebrae[name].frame.rotation.T @ asymmetric.vertebrae[name].frame.rotation
        assert turn == pytest.approx(axis_rotation(2, vertebrae[name].axial_rotation_deg), abs=1e-9)
        assert np.allclose(symmetric.vertebrae[name].frame.origin, asymmetric.vertebrae[name].frame.origin)
    for interspace in ("L3-L4", "L4-L5"):
        lower = layout_vertebra(asymmetric.vertebrae[interspace.split("-")[1]])
        angles = {side: facet_joint(asymmetric.discs[interspace], lower, side, 0.0, 1.0).angle_deg
                  for side in ("left", "right")}
        assert angles["left"] - angles["right"] == pytest.approx(tropism[interspace], abs=1e-9)


@pytest.mark.parametrize("level", ["L3", "L4"])
def test_each_half_of_the_real_vertebra_has_its_own_pedicle_and_transverse_process(level):
    """Resample the asymmetric level's real shape (twice the natural variation, so that the sides differ by
    more than the grid's step) in its own frame on a 0.5 mm grid and measure each half (the right one in the
    mirror image): the right pedicle's wall and process tip lie as much further out than the left's as the
    layout asks, within a voxel."""
    targets = level_targets(layout_vertebra(align_spine(SpineParameters(seed=7, natural_asymmetry=2.0)).vertebrae[level]))
    left, right = targets.side_knots("left"), targets.side_knots("right")
    assert abs(left[1] - right[1]) > 0.9  # the draw made the sides differ by more than the tolerance below
    sdf = warped_sdf(load_template(TEMPLATE_OF_LEVEL[level]), targets)
    u = np.arange(-60.0, 60.1, 0.5, dtype=np.float32)
    v = np.arange(-30.0, 80.1, 0.5, dtype=np.float32)
    w = np.arange(-40.0, 30.1, 0.5, dtype=np.float32)
    grid = sdf(u[:, None, None], v[None, :, None], w[None, None, :])
    origin = np.array([u[0], v[0], w[0]], dtype=np.float64)
    measured = {"left": measure_template(level, grid, origin, 0.5),
                "right": measure_template(level, np.ascontiguousarray(grid[::-1]), origin, 0.5)}
    for index, name in enumerate(("pedicle_lateral_mm", "transverse_process_tip_mm")):
        difference = getattr(measured["right"], name) - getattr(measured["left"], name)
        assert difference == pytest.approx(right[index] - left[index], abs=0.5), name
