"""The controls hand out device poses, ready for a ``set_carm`` or ``place_probe`` action."""

import numpy as np
import pytest

from anatomy_models.errors import SpinesimError
from scenarios.poses import CArmPose, ProbePose
from scenarios.schema import load_scenario
from simulator.case.controls import (carm_presets, carm_start, in_plane_entry, moved_probe, probe_preset,
                                     probe_with_settings, view_isocenter)
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
