"""The RF cannula, stimulation and lesion model (issue 21) against analytic answers and the published
anchors of clinical.md §2.5, and the session's stimulate and lesion actions."""

from __future__ import annotations

import numpy as np
import pytest

from anatomy_models.errors import SpinesimError
from scenarios.needles import NeedleSpec
from scenarios.schema import library_scenarios
from simulator.needle.ablation import (MOTOR_TEST_V, SENSORY_CRITERION_V, Lesion, coverage, lesion_at, lesion_size,
                                       stimulate, threshold_v)
from simulator.needle.shaft import Needle
from simulator.session.actions import parse_action
from simulator.session.fold import Session
from simulator.session.replay import replay
from tests.scoring.attempts import expert_log

NERVE = (np.zeros(3), np.array([15.0, 0.0, 0.0]))


def test_the_lesion_matches_cosman_2014_and_grows_with_gauge_temperature_and_time():
    assert lesion_size(18, 10.0, 80.0, 90.0) == pytest.approx((11.0, 8.0))  # §2.5 [S40]: ~8 x 11 mm
    widths = [lesion_size(gauge, 10.0, 80.0, 90.0)[1] for gauge in (20, 19, 18)]
    assert widths == sorted(widths) and len(set(widths)) == 3
    assert lesion_size(18, 10.0, 60.0, 90.0)[1] < 8.0 < lesion_size(18, 10.0, 90.0, 90.0)[1]
    assert lesion_size(18, 10.0, 80.0, 30.0)[1] < 8.0 < lesion_size(18, 10.0, 80.0, 180.0)[1] < 8.5  # a plateau
    assert lesion_size(18, 5.0, 80.0, 90.0)[0] == pytest.approx(6.0)  # the tip's length plus the overhang


def test_a_lesion_covers_a_nerve_it_lies_along_and_barely_one_it_points_at():
    spec = NeedleSpec("rf_cannula", 18, 100.0, active_tip_mm=10.0)
    # Parallel, tip at the nerve's end: the ellipsoid spans x = -1 .. 10 of the 15 mm nerve.
    along = lesion_at(Needle(np.array([60.0, 0.0, 0.0]), np.array([-1.0, 0.0, 0.0]), 60.0, spec), 80.0, 90.0)
    assert np.allclose(along.center, [4.5, 0.0, 0.0])
    assert coverage([along], NERVE) == pytest.approx(10.0 / 15.0, abs=0.02)
    # End-on, tip on the nerve: the ellipsoid's end (centre 4.5 mm off the nerve, semi-axes 5.5 and 4 mm)
    # crosses it over 2 * 4 * sqrt(1 - (4.5 / 5.5)^2) = 4.6 mm.
    end_on = lesion_at(Needle(np.array([7.5, 60.0, 0.0]), np.array([0.0, -1.0, 0.0]), 60.0, spec), 80.0, 90.0)
    assert coverage([end_on], NERVE) == pytest.approx(8.0 * np.sqrt(1.0 - (4.5 / 5.5) ** 2) / 15.0, abs=0.02)
    # A second lesion 5 mm further along adds the rest.
    second = Lesion(along.center + [5.0, 0.0, 0.0], along.axis, along.length_mm, along.width_mm)
    assert coverage([along, second], NERVE) == pytest.approx(1.0)


def test_stimulation_thresholds_rise_with_distance_and_the_leg_answers_near_the_ramus():
    assert threshold_v(0.0) < SENSORY_CRITERION_V < threshold_v(2.0) < threshold_v(2.0, motor=True)
    on_nerve = stimulate("sensory", SENSORY_CRITERION_V, nerve_mm=0.5, root_mm=15.0)
    assert on_nerve.back and not on_nerve.leg and "concordant" in on_nerve.words
    assert not stimulate("sensory", SENSORY_CRITERION_V, nerve_mm=4.0, root_mm=15.0).back
    safe = stimulate("motor", MOTOR_TEST_V, nerve_mm=0.5, root_mm=15.0)
    assert safe.back and not safe.leg and safe.words == "the multifidus twitches"
    near = stimulate("motor", MOTOR_TEST_V, nerve_mm=6.0, root_mm=2.0)
    assert near.leg and not near.back and "leg twitches" in near.words


def test_the_cannula_and_the_actions_refuse_nonsense():
    with pytest.raises(SpinesimError, match="active tip"):
        NeedleSpec("rf_cannula", 18, 100.0)
    with pytest.raises(SpinesimError, match="22 G"):
        NeedleSpec("rf_cannula", 22, 100.0, active_tip_mm=10.0)
    with pytest.raises(SpinesimError, match="no active tip"):
        NeedleSpec("quincke", 22, 89.0, active_tip_mm=10.0)
    with pytest.raises(SpinesimError, match="volts"):
        parse_action({"type": "stimulate", "t": 1, "mode": "motor", "volts": 9})
    with pytest.raises(SpinesimError, match="temperature_c"):
        parse_action({"type": "lesion", "t": 1, "temperature_c": 120})


def test_a_curved_cannula_steers_toward_its_curve_and_a_straight_one_does_not():
    from scenarios.schema import NeedleChoice

    straight = NeedleChoice(kind="rf_cannula", gauge=18, length_mm=100, active_tip_mm=10).spec()
    curved = NeedleChoice(kind="rf_cannula", gauge=18, length_mm=100, active_tip_mm=10, curved_tip=True).spec()
    tips = [Needle(np.zeros(3), np.array([0.0, -1.0, 0.0]), 0.0, spec).advanced(50.0).tip for spec in (straight, curved)]
    assert np.allclose(tips[0], [0.0, -50.0, 0.0])
    # 1 deg/cm over 5 cm pivots the shaft 5 deg about the skin entry: the tip drifts 50 mm * sin(5 deg).
    assert np.linalg.norm(tips[1][[0, 2]]) == pytest.approx(50.0 * np.sin(np.radians(5.0)))


def test_stimulation_needs_an_rf_cannula(anatomy_for):
    scenario = library_scenarios()["mbb-default"]
    session = Session(scenario, anatomy_for(scenario))
    actions = expert_log(session)
    for action in actions[:6]:
        session.apply(action)
    with pytest.raises(SpinesimError, match="RF cannula"):
        session.apply({"type": "stimulate", "t": 999, "mode": "sensory", "volts": 0.5})


def test_an_ablation_replays_to_the_same_lesions(anatomy_for, tmp_path):
    scenario = library_scenarios()["rfa-l4-medial-branch-left"]
    session = Session(scenario, anatomy_for(scenario), log_path=tmp_path / "rfa.jsonl")
    for action in expert_log(session):
        session.apply(action)
    session.close()
    again = replay(scenario, session.anatomy, tmp_path / "rfa.jsonl")
    assert [m.to_json() for m in again.state.lesions] == [m.to_json() for m in session.state.lesions]
    assert len(session.state.lesions) == 2 and session.state.to_json()["lesions"][1]["width_mm"] == pytest.approx(8.0)
    responses = [(e.data["mode"], e.data["back"], e.data["leg"]) for e in session.events if e.kind == "stimulation"]
    assert responses == [("sensory", True, False), ("motor", True, False), ("motor", True, False)]
