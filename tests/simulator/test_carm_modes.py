"""The C-arm's magnification modes, collimator shutters and table moves: the dose the exposure control asks
for rises as the intensifier's field shrinks (the square of the field ratio) while the dose-area product
stays; shutters cut the dose-area product by the field they leave and the scatter with it; all of it
travels in the ``set_carm`` action and comes back from the log."""

from __future__ import annotations

import numpy as np
import pytest

from anatomy_models.anatomy import Anatomy
from anatomy_models.volume import Volume
from scenarios.poses import CArmPose
from simulator.imaging.carm import CArm, Collimation
from simulator.imaging.dose import Technique, exposure_for
from simulator.imaging.fluoro import render_fluoro
from simulator.session.actions import action_record, parse_action

TECHNIQUE = Technique()  # exposure control on


def test_a_magnified_field_raises_the_kerma_by_the_square_of_the_field_ratio_and_keeps_the_dap():
    full, magnified = CArm(), CArm().magnified(150.0)
    wide, narrow = exposure_for(full, TECHNIQUE, 0.05), exposure_for(magnified, TECHNIQUE, 0.05)
    assert narrow.reference_air_kerma_mgy / wide.reference_air_kerma_mgy == pytest.approx((230 / 150) ** 2, rel=1e-9)
    # The field at the patient shrinks as the kerma rises: the dose-area product stays.
    assert narrow.dose_area_product_gy_cm2 == pytest.approx(wide.dose_area_product_gy_cm2, rel=1e-9)
    # The same quanta per (smaller) pixel: the image is as noisy, pixel for pixel.
    assert narrow.quanta_per_pixel == pytest.approx(wide.quanta_per_pixel, rel=1e-9)
    flat = CArm(detector_shape="square").magnified(150.0)  # a flat panel has no intensifier gain to lose
    assert exposure_for(flat, TECHNIQUE, 0.05).detector_air_kerma_ngy == pytest.approx(
        exposure_for(CArm(detector_shape="square"), TECHNIQUE, 0.05).detector_air_kerma_ngy)


def test_shutters_cut_the_dose_area_product_by_the_field_they_leave():
    open_, closed = CArm(), CArm(collimation=Collimation(width=0.5, height=0.5))
    wide, narrow = exposure_for(open_, TECHNIQUE, 0.05), exposure_for(closed, TECHNIQUE, 0.05)
    assert narrow.reference_air_kerma_mgy == pytest.approx(wide.reference_air_kerma_mgy)
    # A half-width square inside the round field: 0.25 of the detector's square against pi / 4.
    assert narrow.dose_area_product_gy_cm2 / wide.dose_area_product_gy_cm2 == pytest.approx(0.25 / (np.pi / 4),
                                                                                             rel=0.02)


def test_shutters_cut_the_scatter():
    block = Anatomy(ct=Volume.from_spacing(np.full((40, 40, 40), 40, np.int16), (5, 5, 5), origin=(-98, -98, -98)))
    carm = CArm(detector_pixels=64)
    wide = render_fluoro(block, carm, dose=None).metadata["scatter_to_primary"]
    narrow = render_fluoro(block, carm.with_(collimation=Collimation(width=0.5, height=0.5)),
                           dose=None).metadata["scatter_to_primary"]
    assert narrow < 0.8 * wide


def test_the_field_and_shutters_travel_in_set_carm_and_come_back_from_the_log():
    record = {"type": "set_carm", "t": 3.0, "primary_deg": 25.0, "field_cm": 15, "shutters": 0.5,
              "isocenter": [1.0, 2.0, 3.0]}
    action = parse_action(record)
    assert parse_action(action_record(action)) == action
    carm = CArm.at(action.pose, (0, 0, 0))
    assert carm.detector_size_mm == 150.0 and carm.full_field_mm == 230.0
    assert carm.collimation == Collimation(width=0.5, height=0.5)
    assert CArmPose(primary_deg=5).to_json() == {"setup": None, "primary_deg": 5.0, "secondary_deg": 0.0}
    with pytest.raises(Exception, match="field_cm"):
        parse_action(dict(record, field_cm=80))
    with pytest.raises(Exception, match="intensifier"):
        CArm.at(CArmPose(field_cm=30), (0, 0, 0))
