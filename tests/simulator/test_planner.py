import numpy as np
import pytest

from anatomy_models.errors import SpinesimError
from anatomy_models.structures import in_group
from scenarios.needles import NeedleSpec
from scenarios.schema import load_scenario
from simulator.case.planner import (HUB_MARGIN_MM, ROOT_CLEARANCE_MM, _candidate_points, cone_directions,
                                    direction_path, expert_actions, plan_trajectory)
from simulator.case.targets import UNSAFE_GROUPS, UNSAFE_TISSUES, target_for
from simulator.needle.trace import tracer_for


@pytest.mark.parametrize("scenario_id", ["ilesi-default", "tfesi-default", "facet-default", "mbb-default"])
def test_the_expert_trajectory_is_safe_and_within_the_textbook_cone(small_spine, scenario_id):
    scenario = load_scenario(scenario_id)
    tracer = tracer_for(small_spine)
    target = target_for(scenario, small_spine, tracer)
    path = plan_trajectory(tracer, target, scenario.needle.spec())
    assert path.angle_from_textbook_deg <= target.cone_deg + 1e-9
    assert path.root_clearance_mm >= ROOT_CLEARANCE_MM
    crossed = [s for s in path.trace.segments if s.depth_in_mm < path.depth_mm and s.depth_out_mm > 0.5]
    for segment in crossed:
        assert segment.tissue not in UNSAFE_TISSUES and not any(in_group(segment.structure, g) for g in UNSAFE_GROUPS)
        assert not segment.is_bone
    assert np.linalg.norm(path.tip - target.point) <= target.zone.radius_mm
    assert tracer.structure_at(path.entry - 1.0 * path.direction) == "air"  # it starts on the skin
    actions = expert_actions(scenario, target, path)
    assert [a["t"] for a in actions] == sorted(a["t"] for a in actions) and actions[-1]["type"] == "finish"


def test_a_needle_too_short_for_the_patient_has_no_expert_path(small_spine):
    scenario = load_scenario("tfesi-default")
    tracer = tracer_for(small_spine)
    with pytest.raises(SpinesimError, match="no safe textbook path to the left L4-L5 safe triangle with a 40 mm needle"):
        plan_trajectory(tracer, target_for(scenario, small_spine, tracer), NeedleSpec("quincke", 22, 40.0))


@pytest.mark.parametrize("scenario_id", ["ilesi-default", "ilesi-l5s1-left", "ilesi-l3l4-right"])
def test_the_interlaminar_needle_runs_down_the_ap_that_opens_its_window(small_spine, scenario_id):
    """The interlaminar expert's needle runs within 15 degrees of the AP's beam (its cranial angle along the AP's
    caudal tilt, leaving the paramedian approach's medial angle: "straight down the barrel", clinical.md §2.1
    [S10]); the path itself meets no bone (test_the_expert_trajectory_is_safe_and_within_the_textbook_cone). With the
    AP squared to the lower endplate the needle ran 33 (L4-L5) to 56 (L5-S1) degrees off the beam, a long
    shaft across the AP (issue 16/21)."""
    scenario = load_scenario(scenario_id)
    tracer = tracer_for(small_spine)
    target = target_for(scenario, small_spine, tracer)
    path = plan_trajectory(tracer, target, scenario.needle.spec())
    beam = target.views[0].carm.beam_direction
    assert np.degrees(np.arccos(abs(float(path.direction @ beam)))) <= 15.0


def _every_direction(tracer, target, spec):
    """The expert path found the long way: every direction tried at every candidate point, no bound."""
    textbook = target.textbook_direction / np.linalg.norm(target.textbook_direction)
    for point in _candidate_points(target):
        paths = []
        for direction in cone_directions(textbook, target.cone_deg):
            back = tracer.body_exit_depth(point, direction)
            path = None if back is None else direction_path(
                tracer, point, direction, textbook, back, max_depth_mm=spec.length_mm - HUB_MARGIN_MM,
                on_bone=target.on_bone, accept_tip=target.zone.contains, avoid_groups=UNSAFE_GROUPS,
                avoid_tissues=UNSAFE_TISSUES, root_clearance_mm=ROOT_CLEARANCE_MM)
            if path is not None:
                paths.append(path)
        if paths:
            return min(paths, key=lambda path: path.score)  # the first of equals, as the search keeps the first
    return None


@pytest.mark.parametrize("scenario_id", ["tfesi-default", "facet-default", "mbb-default"])
def test_the_search_finds_the_path_trying_every_direction_finds_with_fewer_lines(small_spine, scenario_id, monkeypatch):
    """The planner's bounds (a point too near a root, a direction that cannot score better) leave out only
    what cannot be the answer: the same path, bit for bit, as the exhaustive search, from fewer traced lines.
    On this patient the TFESI's first four points lie within the root clearance (the fifth has the path); the
    facet's best direction is the third safe one, 0.05 better than the first (a bound 0.3 mm too deep drops
    it); the medial branch block's needle ends on bone."""
    scenario = load_scenario(scenario_id)
    spec = scenario.needle.spec()
    tracer = tracer_for(small_spine)
    target = target_for(scenario, small_spine, tracer)
    lines = {"count": 0}
    trace = tracer.trace

    def counted(*args, **kwargs):
        lines["count"] += 1
        return trace(*args, **kwargs)

    monkeypatch.setattr(tracer, "trace", counted)
    fast = plan_trajectory(tracer, target, spec)
    fast_lines, lines["count"] = lines["count"], 0
    slow = _every_direction(tracer, target, spec)
    assert slow is not None
    np.testing.assert_array_equal(fast.entry, slow.entry)
    np.testing.assert_array_equal(fast.direction, slow.direction)
    assert (fast.depth_mm, fast.root_clearance_mm) == (slow.depth_mm, slow.root_clearance_mm)
    assert fast_lines < lines["count"]


@pytest.mark.parametrize("scenario_id", ["tfesi-default", "tfesi-l5s1-left", "tfesi-l3l4-right-kambin"])
def test_the_transforaminal_needle_runs_down_the_trajectory_views_beam(spine_1mm, scenario_id):
    """The transforaminal expert's needle is coaxial ("gun-barrel") in the case's trajectory view (clinical.md
    §2.2(a) [S5]): within 3 degrees of that view's ray through the tip, a dot with the hub over it, not a shaft across
    the view. The textbook 25 deg oblique and 10 deg cranial lay 12.5 deg off the Scotty dog's ray at L4 and 25.5 at
    L5 (a 1.5 cm shaft on the working view, issue 16/21's blind read). The 1 mm patient: on the 2 mm one the ray to
    the L4 safe triangle is not a safe path on the coarse grid, the nearest safe one lies 12.6 deg off it."""
    scenario = load_scenario(scenario_id)
    tracer = tracer_for(spine_1mm)
    target = target_for(scenario, spine_1mm, tracer)
    path = plan_trajectory(tracer, target, scenario.needle.spec())
    ray = target.views[1].carm.source - path.tip
    off_deg = np.degrees(np.arccos(float(path.direction @ ray) / np.linalg.norm(ray)))
    assert off_deg <= 3.0, f"{target.views[1].name}: the expert needle {off_deg:.1f} deg off its ray"
