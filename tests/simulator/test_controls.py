"""The controls hand out device poses, ready for a ``set_carm`` or ``place_probe`` action."""

import numpy as np
import pytest

from anatomy_models.errors import SpinesimError
from scenarios.poses import CArmPose, ProbePose
from scenarios.schema import load_scenario
from simulator.case.controls import (beam_aligned_angles, carm_presets, carm_start, in_plane_entry, moved_probe,
                                     needle_direction, nudged_angles, probe_preset, probe_with_settings, view_isocenter)
from simulator.imaging.carm import CArm
from simulator.imaging.probe import Probe
from simulator.session.fold import Session
from tests.simulator.anatomy_phantoms import mini_spine


def test_the_carm_starts_in_the_scenarios_pose_centred_by_the_radiographer_unless_the_scenario_centres_it():
    scenario, anatomy = load_scenario("tfesi-default"), mini_spine()
    start = carm_start(scenario, anatomy)
    assert start == scenario.start.carm.model_copy(update={"isocenter": view_isocenter(scenario, anatomy)})
    centred = scenario.model_copy(update={"start": scenario.start.model_copy(
        update={"carm": CArmPose(setup="AP", isocenter=(1.0, 2.0, 3.0))})})
    assert carm_start(centred, anatomy).isocenter == (1.0, 2.0, 3.0)


def test_the_carm_presets_are_named_poses_about_the_view_isocentre():
    scenario, anatomy = load_scenario("tfesi-default"), mini_spine()
    presets = carm_presets(scenario, anatomy)
    assert list(presets) == ["AP", "Square endplate", "Ipsilateral oblique", "Lateral", "CLO"]
    isocenter = tuple(round(v, 3) for v in view_isocenter(scenario, anatomy))
    assert all(pose.setup == name and pose.isocenter == isocenter for name, pose in presets.items())
    assert presets["Lateral"].primary_deg == 90.0 and presets["Ipsilateral oblique"].primary_deg > 0  # left side


def test_the_probe_controls_hand_out_poses_that_keep_the_view_and_the_settings():
    scenario, anatomy = load_scenario("ilesi-ultrasound-l4l5-left"), mini_spine()
    pose = probe_preset(scenario, anatomy, "PSO")
    assert isinstance(pose, ProbePose) and pose.view == "paramedian-sagittal-oblique" and pose.kind == "curvilinear"
    deeper = probe_with_settings(pose, 100.0, 6.0, 3.0)
    assert (deeper.depth_mm, deeper.gain_db, deeper.frequency_mhz, deeper.view) == (100.0, 6.0, 3.0, pose.view)
    assert probe_preset(scenario, anatomy, "Articular", deeper).depth_mm == 100.0
    turned = moved_probe(anatomy, deeper, "rotate", 45.0)
    assert turned.view == pose.view and turned.position == deeper.position
    left, right = in_plane_entry(turned, "left"), in_plane_entry(turned, "right")
    np.testing.assert_allclose((left + right) / 2, turned.position, atol=1e-9)
    assert (right - left) @ Probe.at(turned).lateral > 0
    with pytest.raises(SpinesimError, match="frequency_mhz = 12.0 is out of range"):
        probe_with_settings(pose, 80.0, 0.0, 12.0)
    session = Session(scenario, anatomy)
    session.apply({"type": "place_probe", "t": 1.0, **turned.to_json()})
    assert session.state.probe == turned


@pytest.mark.parametrize("primary_deg, secondary_deg", [(0.0, 0.0), (25.0, 0.0), (0.0, 17.0), (-32.0, -12.0)])
def test_a_needle_aligned_with_the_beam_points_into_the_patient_along_the_central_ray_and_is_a_dot(primary_deg,
                                                                                                 secondary_deg):
    carm = CArm(primary_deg=primary_deg, secondary_deg=secondary_deg, isocenter=(3.0, -20.0, 40.0))
    left_deg, cranial_deg = beam_aligned_angles(carm)
    np.testing.assert_allclose((left_deg, cranial_deg), (-primary_deg, -secondary_deg), atol=1e-9)
    direction = needle_direction(left_deg, cranial_deg)
    assert direction @ carm.beam_direction == pytest.approx(-1.0)  # against the beam: from the back, into the body
    assert direction[1] < 0  # anterior: into the prone patient
    skin = np.asarray(carm.isocenter) - 60.0 * direction  # on the central ray, 60 mm behind the isocentre
    hub, tip = carm.project(np.stack([skin - 30.0 * direction, skin + 80.0 * direction]))
    assert np.linalg.norm(hub - tip) < 1e-6


def test_the_needle_cannot_lie_along_a_lateral_beam():
    with pytest.raises(SpinesimError, match="cannot lie along the beam of the LEFT LAT view"):
        beam_aligned_angles(CArm(primary_deg=90.0))


def test_a_nudge_turns_the_needle_by_its_step_and_moves_the_tip_that_way_on_the_image():
    carm = CArm(primary_deg=-25.0, secondary_deg=10.0)
    entry = np.asarray(carm.isocenter) + np.array([10.0, 60.0, -5.0])
    before = needle_direction(20.0, -5.0)  # near the beam (RAO 25 CRAN 10), as after an alignment
    for right_deg, up_deg, moved in ((1.0, 0.0, (1, 0)), (-5.0, 0.0, (-1, 0)), (0.0, 1.0, (0, -1)), (0.0, -5.0, (0, 1))):
        after = needle_direction(*nudged_angles(carm, 20.0, -5.0, right_deg, up_deg))
        assert np.degrees(np.arccos(np.clip(before @ after, -1, 1))) == pytest.approx(abs(right_deg + up_deg))
        shift = carm.project(entry + 80.0 * after) - carm.project(entry + 80.0 * before)  # pixels: right, down
        axis = 0 if right_deg else 1
        assert np.sign(shift[axis]) == moved[axis] and abs(shift[1 - axis]) < 0.2 * abs(shift[axis])
    with pytest.raises(SpinesimError, match="a needle nudge must be at most 45°"):
        nudged_angles(carm, 0.0, 0.0, 50.0, 0.0)
    with pytest.raises(SpinesimError, match="past horizontal"):
        nudged_angles(CArm(), 85.0, 0.0, -10.0, 0.0)
    with pytest.raises(SpinesimError, match="lies along the image's right direction"):
        nudged_angles(CArm(primary_deg=90.0), 0.0, 0.0, 1.0, 0.0)
