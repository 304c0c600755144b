"""The rulers against independent answers: path length by hand, the redirect arc, dose frame counts and
the renderer's own exposure metering, near misses against a k-d tree of the structure's voxels, and
feedback sentences for a known offset."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from scenarios.schema import library_scenarios
from scoring.expert import ExpertComparison
from scoring.exposure import attempt_dose
from scoring.feedback import ADVICE, feedback
from scoring.grade import grade
from scoring.metrics import Metrics, Offset, measure
from scoring.proximity import closest_approaches, structure_groups
from simulator.imaging.dose import (BODY_LINE_INTEGRAL, METERING_RADIUS, PULSE_SECONDS, metered_transmission,
                                    tap_frames, technique_for)
from simulator.session.fold import Session
from simulator.session.history import replay_attempt
from tests.scoring.attempts import Script, expert_log

LIBRARY = library_scenarios()


def _session(anatomy_for, scenario_id="tfesi-default"):
    scenario = LIBRARY[scenario_id]
    return Session(scenario, anatomy_for(scenario))


def _shallow_direction(session):
    """The expert's direction, whose first 35 mm run through skin, fat and muscle only."""
    log = expert_log(session)
    placed = next(a for a in log if a["type"] == "place_needle")
    return np.array(placed["entry"]), np.array(placed["direction"])


def test_path_length_adds_every_move_of_the_tip(anatomy_for):
    session = _session(anatomy_for)
    entry, direction = _shallow_direction(session)
    script = Script(session).place(entry, direction).add("advance", mm=30.0).add("withdraw", mm=10.0)
    script.add("advance", mm=5.0).add("withdraw", mm=25.0)
    attempt = replay_attempt(session.scenario, session.anatomy, script.actions)
    assert attempt.path_length_mm() == pytest.approx(30 + 10 + 5 + 25, abs=1e-6)
    assert measure(attempt).path_length_mm == pytest.approx(70.0)
    assert measure(attempt).offset is None and attempt.final.needle is None


def test_a_redirect_pulls_back_then_swings_on_an_arc(anatomy_for):
    session = _session(anatomy_for)
    entry, direction = _shallow_direction(session)
    tilted = direction + np.array([0.0, 0.0, 0.2])
    tilted /= np.linalg.norm(tilted)
    script = Script(session).place(entry, direction).add("advance", mm=30.0).add("redirect", direction=tilted.tolist())
    attempt = replay_attempt(session.scenario, session.anatomy, script.actions)
    pulled = next(e for e in attempt.events if e.kind == "redirect").data["depth_mm"]
    angle = np.arccos(np.clip(np.dot(direction, tilted), -1, 1))
    # The arc is drawn as a polygon of 8 chords: 2 r sin(a / 16) each.
    arc = 8 * 2 * pulled * np.sin(angle / 16)
    # The redirect event reports the pull-back depth to 1e-4 mm.
    assert attempt.path_length_mm() == pytest.approx(30 + (30 - pulled) + arc, abs=1e-3)
    points, times = attempt.tip_paths()[0]
    assert np.allclose(points[-1], attempt.final.needle.tip) and len(points) == len(times)


def test_dose_counts_every_frame_and_meters_like_the_renderer(anatomy_for):
    from simulator.imaging.dose import Technique
    from simulator.imaging.fluoro import detected_frame
    from simulator.imaging.scatter import Grid
    from simulator.imaging.spectrum import beam

    session = _session(anatomy_for)
    attempt = replay_attempt(session.scenario, session.anatomy, expert_log(session))
    ledger = attempt_dose(attempt)
    shots = [s.action for s in attempt.steps if s.action.type == "fluoro_shot"]
    pulses = sum(1 for a in shots if a.seconds is None)
    live_seconds = sum(a.seconds for a in shots if a.seconds is not None)
    run_frames = sum(round(a.seconds * technique_for(a.mode).frames_per_second) for a in shots if a.seconds is not None)
    # A pulse shot is a tap of PULSE_SECONDS: its frames count, as the fluoroscopy time counts its time.
    tap = tap_frames(technique_for("pulse").frames_per_second)
    assert tap > 1 and ledger.shots == pulses and ledger.frames == pulses * tap + run_frames
    assert ledger.fluoro_seconds == pytest.approx(live_seconds)
    assert measure(attempt).fluoro_seconds == pytest.approx(pulses * PULSE_SECONDS + live_seconds)
    # The renderer's exposure control meters the median (beam-hardened) line integral of the body in
    # the central disc, behind the grid.
    for view in session.target.views:
        frame = detected_frame(session.anatomy, view.carm.with_(detector_pixels=128), beam(Technique().kvp), "joseph")
        n = frame.shape[0]
        r = np.hypot(*np.meshgrid(np.arange(n) - (n - 1) / 2, np.arange(n) - (n - 1) / 2)) / n
        body = frame[(r <= METERING_RADIUS) & (frame > BODY_LINE_INTEGRAL)]
        rendered = Grid().primary_transmission * float(np.exp(-np.median(body)))
        assert metered_transmission(session.anatomy, view.carm) == pytest.approx(rendered, rel=0.2), view.name


def test_closest_approaches_match_a_kd_tree_of_the_voxels(anatomy_for):
    session = _session(anatomy_for)
    attempt = replay_attempt(session.scenario, session.anatomy, expert_log(session))
    tracer = session.tracer
    needle = attempt.final.needle
    shaft = needle.entry + np.linspace(0, needle.depth_mm, 400)[:, None] * needle.direction
    spacing = float(tracer.volume.spacing[0])
    for group, approach in zip(structure_groups(tracer), closest_approaches(attempt)):
        voxels = tracer.volume.voxel_to_world(np.argwhere(np.isin(tracer.codes, tracer.codes_in_groups(group.structures))))
        expected = max(float(cKDTree(voxels).query(shaft)[0].min()) - spacing / 2, 0.0)
        if expected > 19.0:
            continue  # beyond the distance maps' reach
        # The surface lies between voxel centres: a voxel's worth of tolerance.
        assert approach.shaft_mm == pytest.approx(expected, abs=spacing), group.name
        assert approach.tip_mm >= approach.shaft_mm - 1e-9


def _metrics(**changes) -> Metrics:
    base = dict(finished=True, tip_structure="epidural_space", tip_to_target_mm=6.0, in_zone=False,
                offset=Offset(cranial_mm=-6.0, ventral_mm=0.3, lateral_mm=0.4), depth_view="lateral", depth_error_mm=0.3,
                passes=1, redirects=0, bone_contacts=0, fluoro_shots=8, fluoro_seconds=5.1, dsa_runs=1,
                reference_air_kerma_mgy=1.0, dose_area_product_gy_cm2=0.1, procedure_time_s=70.0, path_length_mm=63.0,
                tissues_crossed=["skin"], structures_touched=["skin"], contrast_ml=1.0, contrast_patterns=["epidural"],
                contrast_pattern_correct=True, contrast_checked=True, dsa_used=True, depth_view_checked=True,
                loss_of_resistance_checks=0, loss_of_resistance_confirmed=None, hub_at_skin=False)
    return Metrics(**(base | changes))


def test_a_tip_6_mm_caudal_in_a_transforaminal_gets_the_lateral_view_advice():
    scenario = LIBRARY["tfesi-default"]
    comparison = ExpertComparison(available=True, expert_shots=8, expert_path_length_mm=63.0, path_ratio=1.0)
    items = feedback(scenario, _metrics(), [], [], comparison)
    assert items[0].level == "warning"
    assert items[0].text == ("Your final tip was 6 mm caudal to the target (in the epidural space, outside the target "
                             f"zone): {ADVICE['transforaminal_epidural']['caudal']}.")
    assert "posterior-superior foramen" in items[0].text
    more = feedback(scenario, _metrics(contrast_checked=False, fluoro_shots=30, redirects=5), [], [], comparison)
    texts = " ".join(i.text for i in more)
    assert "Inject contrast under DSA" in texts and "30 fluoroscopy shots" in texts and "5 redirections" in texts


def test_weights_are_normalised_and_gates_decide_the_pass():
    scenario = LIBRARY["tfesi-default"]
    accuracy_only = scenario.model_copy(update={"rubric": scenario.rubric.model_copy(update={
        "weights": scenario.rubric.weights.model_copy(update={"safety": 0, "efficiency": 0, "technique": 0})})})
    on_target = _metrics(tip_to_target_mm=1.0, in_zone=True, offset=Offset(cranial_mm=1.0, ventral_mm=0, lateral_mm=0))
    result = grade(accuracy_only, on_target, [], [], ExpertComparison(available=False))
    # Within the tolerances only the precision share (a quarter) depends on the distance.
    tolerances = scenario.tolerances()
    depth = 0.2 * (1 - 0.25 * abs(on_target.depth_error_mm) / tolerances.depth_mm)
    assert result.score == pytest.approx(100 * (0.5 + 0.3 * (1 - 0.25 * 1.0 / tolerances.tip_mm) + depth), abs=0.06)
    assert result.passed
    halfway = grade(accuracy_only, on_target.model_copy(update={"tip_to_target_mm": 2 * tolerances.tip_mm}), [], [],
                    ExpertComparison(available=False))
    assert halfway.score == pytest.approx(100 * (0.5 + 0.3 * 0.5 * 0.75 + depth), abs=0.06)
    unfinished = grade(scenario, on_target.model_copy(update={"finished": False}), [], [], ExpertComparison(available=False))
    assert not unfinished.passed and [g.name for g in unfinished.gates if not g.passed] == ["attempt finished"]


def test_live_contrast_passes_a_transforaminal_unless_the_scenario_demands_dsa():
    live_only = _metrics(tip_to_target_mm=1.0, in_zone=True, dsa_used=False,
                         offset=Offset(cranial_mm=1.0, ventral_mm=0.0, lateral_mm=0.0))
    comparison = ExpertComparison(available=False)
    default = grade(LIBRARY["tfesi-default"], live_only, [], [], comparison)
    assert default.passed and next(c for c in default.components if c.name == "technique").score < 1.0
    strict = grade(LIBRARY["tfesi-adamkiewicz-l1l2-left"], live_only, [], [], comparison)
    assert [g.detail for g in strict.gates if not g.passed] == ["contrast not imaged with DSA"]


def test_the_safe_plans_end_is_on_the_point():
    """Where no safe path reaches the target's landmark (a transforaminal target beside the root: the planner's
    needle ends 1.5-2.1 mm off it), a tip on the plan's end earns the accuracy of a tip on the landmark; a tip as
    far from both earns less: precision is judged against the planned point, as an examiner does (issue 19:
    the expert's placement at L2-L3 scored 96 and broke the expert-competent gap)."""
    scenario = LIBRARY["tfesi-default"]
    accuracy_only = scenario.model_copy(update={"rubric": scenario.rubric.model_copy(update={
        "weights": scenario.rubric.weights.model_copy(update={"safety": 0, "efficiency": 0, "technique": 0})})})
    off = _metrics(tip_to_target_mm=2.1, depth_error_mm=0.6, in_zone=True,
                   offset=Offset(cranial_mm=2.1, ventral_mm=0, lateral_mm=0))
    on_plan = ExpertComparison(available=True, tip_to_plan_mm=0.0, depth_error_to_plan_mm=0.0)
    beside_both = ExpertComparison(available=True, tip_to_plan_mm=2.1, depth_error_to_plan_mm=0.6)
    assert grade(accuracy_only, off, [], [], on_plan).score == 100.0
    assert grade(accuracy_only, off, [], [], beside_both).score == grade(accuracy_only, off, [], [],
                                                                         ExpertComparison(available=False)).score < 97.0
