"""The device poses: light, frozen, and written exactly as the action log and the session state
always wrote them."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from scenarios.poses import CArmPose, ProbePose
from tests.anatomy_models.test_lazy_imports import HEAVY, modules_after

finite = st.floats(-500, 500, allow_nan=False)
points = st.tuples(finite, finite, finite)


def test_the_poses_import_no_numerics():
    loaded = modules_after("from scenarios.poses import CArmPose, ProbePose")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_a_carm_pose_writes_its_setup_always_and_its_isocentre_only_where_given():
    assert CArmPose().to_json() == {"setup": None, "primary_deg": 0.0, "secondary_deg": 0.0}
    assert CArmPose(setup="AP", primary_deg=25, isocenter=(1, 2, 3)).to_json() == {
        "setup": "AP", "primary_deg": 25.0, "secondary_deg": 0.0, "isocenter": [1.0, 2.0, 3.0]}


def test_a_probe_pose_writes_no_empty_setting():
    pose = ProbePose(position=(0, 80, 0), direction=(0, -1, 0), lateral=(1, 0, 0), kind="linear", view="articular")
    assert pose.to_json() == {"position": [0.0, 80.0, 0.0], "direction": [0.0, -1.0, 0.0], "lateral": [1.0, 0.0, 0.0],
                              "kind": "linear", "view": "articular"}


@settings(max_examples=60, deadline=None)
@given(primary=st.floats(-180, 180), secondary=st.floats(-90, 90), setup=st.none() | st.text(max_size=12),
       isocenter=st.none() | points)
def test_a_carm_pose_round_trips_through_json(primary, secondary, setup, isocenter):
    pose = CArmPose(setup=setup, primary_deg=primary, secondary_deg=secondary, isocenter=isocenter)
    assert CArmPose.model_validate(json.loads(json.dumps(pose.to_json()))) == pose


@settings(max_examples=60, deadline=None)
@given(position=points, direction=points, lateral=points, kind=st.sampled_from([None, "linear", "curvilinear"]),
       depth_mm=st.none() | st.floats(10, 300), gain_db=st.none() | st.floats(-60, 60),
       frequency_mhz=st.none() | st.floats(0.5, 20), view=st.none() | st.text(max_size=64))
def test_a_probe_pose_round_trips_through_json(position, direction, lateral, kind, depth_mm, gain_db, frequency_mhz,
                                               view):
    pose = ProbePose(position=position, direction=direction, lateral=lateral, kind=kind, depth_mm=depth_mm,
                     gain_db=gain_db, frequency_mhz=frequency_mhz, view=view)
    assert ProbePose.model_validate(json.loads(json.dumps(pose.to_json()))) == pose


@pytest.mark.parametrize("make", [
    lambda: CArmPose(primary_deg=181), lambda: CArmPose(secondary_deg=math.nan), lambda: CArmPose(tilt_deg=3),
    lambda: ProbePose(position=(0, 0, 0), direction=(0, -1, 0), lateral=(1, 0, 0), depth_mm=5),
    lambda: ProbePose(position=(0, 0, 0), direction=(0, -1, 0), lateral=(1, 0, 0), kind="phased"),
])
def test_impossible_poses_are_refused(make):
    with pytest.raises(ValidationError):
        make()


def test_poses_are_frozen_and_hashable():
    pose = CArmPose(primary_deg=10)
    with pytest.raises(ValidationError):
        pose.primary_deg = 20
    assert {pose: "cached"}[CArmPose(primary_deg=10.0)] == "cached"
