"""The grade ranks attempts as an examiner would (issue 19's first part): an expert above a novice, a
novice above every attempt with a never-event, and every unsafe attempt failing with its complication
named. Attempts are scripted from the anatomy (the planner, the labels), never typed coordinates."""

from __future__ import annotations

import numpy as np
import pytest

from anatomy_models.structures import in_group
from scenarios.schema import library_scenarios
from scoring.exposure import REFERENCE_LEVELS_MGY_CM2
from scoring.grade import CRITICAL_GRADE_CAP, MAJOR_GRADE_CAP
from scoring.report import score
from simulator.case.planner import plan_trajectory
from simulator.session.fold import Session
from tests.scoring.attempts import (Script, competent_log, expert_log, intrathecal_path, novice_log, path_to,
                                    structure_points)

LIBRARY = library_scenarios()


def _session(anatomy_for, scenario_id):
    scenario = LIBRARY[scenario_id]
    return Session(scenario, anatomy_for(scenario))


def _graded(anatomy_for, scenario_id, make_log):
    session = _session(anatomy_for, scenario_id)
    return score(session.scenario, session.anatomy, make_log(session))


def _blind(session):
    """The expert's attempt with every fluoroscopy shot left out: the injection is never imaged."""
    return [a for a in expert_log(session) if a["type"] != "fluoro_shot"]


def _unimaged_injection(session):
    """The expert's path, imaged on the way in, but the contrast injected after a last unseen advance."""
    log = expert_log(session)
    at = next(i for i, a in enumerate(log) if a["type"] == "inject_contrast")
    advance = {"type": "advance", "t": log[at]["t"] - 0.5, "mm": 0.5}
    return [a for a in log[:at] if not (a["type"] == "fluoro_shot" and a["t"] > log[at]["t"] - 0.5)] + [advance] + [
        a for a in log[at:] if a["type"] != "fluoro_shot"]


def _along(session, path, *, contrast_ml=None):
    """Along ``path`` with images, then (with ``contrast_ml``) the contrast test under DSA or live and the
    injectate where the needle is."""
    script = Script(session).view(1).place(path.entry, path.direction).advance_to(path.depth_mm).view(2)
    if contrast_ml:
        script.contrast(contrast_ml).medication()
    return script.add("finish").actions


def _root_injection(session):
    root = f"nerve_root.{session.scenario.target.level.split('-')[0]}.{session.scenario.target.side}"
    path = path_to(session, structure_points(session, root, session.target.point), allow=("nerve_root",),
                   root_clearance_mm=0.0)
    return _along(session, path, contrast_ml=1.0)


def _intrathecal(session):
    path = intrathecal_path(session)
    return _along(session, path, contrast_ml=1.0)


def _arterial_test(session) -> Script:
    """Into the artery of Adamkiewicz beside the target, and a contrast test there under DSA."""
    artery = next(n for n in session.tracer.names if n.endswith(".adamkiewicz"))
    path = path_to(session, structure_points(session, artery, session.target.point), allow=("blood",))
    script = Script(session).view(0).view(1).place(path.entry, path.direction).advance_to(path.depth_mm).view(2)
    return script.contrast(1.0)


def _arterial(session):
    """The test shows the artery, and the injectate goes in all the same: no re-siting."""
    return _arterial_test(session).medication().add("finish").actions


def _caught_test_dose(session):
    """The issue's case: the DSA test shows the arterial pattern, the needle comes out and is re-sited on
    the planned path, an epidural test under DSA, the spread on AP, then the injectate."""
    script = _arterial_test(session)
    script.add("withdraw", mm=round(session.state.needle.depth_mm, 3))
    path = plan_trajectory(session.tracer, session.target, session.spec)
    script.view(1).place(path.entry, path.direction).advance_to(0.6 * path.depth_mm).view(1)
    script.advance_to(path.depth_mm).view(2).contrast(1.0).view(0)
    return script.medication().add("finish").actions


def _into_disc(session):
    """Through the foramen into the disc at the target level (the disc lies in front of the foramen)."""
    level = session.scenario.target.level
    path = path_to(session, structure_points(session, f"{level}.disc", session.target.point),
                   allow=("disc_annulus", "disc_nucleus"))
    return _along(session, path)


def _too_deep(session):
    """Past the foramen into the psoas in front of it (the bone stops the planned path itself), imaged on the
    way, no injection."""
    psoas = f"muscle.psoas.{session.scenario.target.side}"
    path = path_to(session, structure_points(session, psoas, session.target.point), allow=("muscle",))
    script = Script(session).view(0).view(1).place(path.entry, path.direction).advance_to(path.depth_mm)
    return script.view(2).add("finish").actions


def _live_throughout(session):
    """The expert's attempt with every image a 10 s live run: continuous screening (about 90 s of beam)."""
    return [a | {"mode": "live", "seconds": 10.0} if a["type"] == "fluoro_shot" else a for a in expert_log(session)]


def _along_the_line(session, depth_mm: float, *, contrast: str | None = None):
    """The expert's line pushed on to ``depth_mm`` with images, then (with ``contrast``, a shot mode) a contrast
    test imaged that way and the expert's injectate."""
    path = plan_trajectory(session.tracer, session.target, session.spec)
    script = Script(session).view(0).view(1).place(path.entry, path.direction).advance_to(depth_mm).view(2)
    if contrast == "live":
        script.contrast(1.0, mode="live")
    elif contrast:
        script.add("inject_contrast", ml=1.0).add("fluoro_shot", 0.5, mode=contrast)
    if contrast:
        script.medication()
    return script.add("finish").actions


def _line_depth(session, beyond: str, *, after_mm: float = 0.0, middle: bool = True) -> float:
    """Depth (mm) along the expert's line of the first segment past ``after_mm`` that is in group ``beyond``."""
    path = plan_trajectory(session.tracer, session.target, session.spec)
    trace = session.tracer.trace(path.entry, path.direction, session.spec.length_mm - 5.0)
    found = next(s for s in trace.segments if s.depth_in_mm > after_mm and in_group(s.structure, beyond))
    return 0.5 * (found.depth_in_mm + found.depth_out_mm) if middle else found.depth_in_mm


def _through_sacroiliac_joint(session):
    """Sacroiliac joint: on along the joint's plane, out of its front into the psoas (the pelvis)."""
    path = plan_trajectory(session.tracer, session.target, session.spec)
    return _along_the_line(session, _line_depth(session, "muscle", after_mm=path.depth_mm))


def _caudal_into_the_sac(session):
    """Caudal: on up the canal into the dural sac's end and a contrast test there (a myelogram)."""
    return _along_the_line(session, _line_depth(session, "dural_sac.csf"), contrast="live")


def _caudal_too_high(session):
    """Caudal: up the canal to within a few millimetres of the dural sac's end (above S3), contrast live."""
    return _along_the_line(session, _line_depth(session, "dural_sac", middle=False) - 6.0, contrast="live")


def _caudal_venous(session):
    """Caudal: the tip pushed against the canal's front wall (the sacral venous plexus), the contrast test on a
    single pulse (the run that would show the veins never made), then the injectate into the vein."""
    target, tracer = session.target, session.tracer
    bone = tracer.trace(target.point, np.array([0.0, -1.0, 0.0]), 20.0).first_bone()
    wall = target.point + np.array([0.0, -(bone.depth_in_mm - 0.4), 0.0])
    path = path_to(session, wall, cone_deg=20.0)
    script = Script(session).view(0).view(1).place(path.entry, path.direction).advance_to(path.depth_mm).view(2)
    script.add("inject_contrast", ml=1.0).add("fluoro_shot", 0.5, mode="pulse")
    return script.medication().add("finish").actions


UNSAFE = [
    ("tfesi-default", _blind, "blind_injection", "critical"),
    ("ilesi-default", _blind, "blind_injection", "critical"),
    ("facet-default", _blind, "blind_injection", "critical"),
    ("tfesi-default", _unimaged_injection, "blind_injection", "critical"),
    ("tfesi-default", _root_injection, "intraneural_injection", "critical"),
    ("tfesi-default", _intrathecal, "intrathecal_injection", "critical"),
    ("tfesi-adamkiewicz-l1l2-left", _arterial, "arterial_injection", "critical"),
    ("tfesi-default", _into_disc, "intradiscal", "major"),
    ("tfesi-l5s1-left", _too_deep, "beyond_ventral_epidural", "major"),
    ("facet-default", _live_throughout, "excessive_fluoro_time", "major"),
    ("mbb-default", _live_throughout, "excessive_fluoro_time", "major"),
    ("si-joint-left", _through_sacroiliac_joint, "through_sacroiliac_joint", "major"),
    ("caudal-default", _caudal_venous, "venous_injection", "critical"),
    ("caudal-default", _caudal_too_high, "too_high_in_sacral_canal", "major"),
    ("caudal-low-lying-sac", _caudal_into_the_sac, "intrathecal_injection", "critical"),
]
# Several cases of every procedure, levels L3-L4 to L5-S1, both sides.
# tfesi-l5s1-left passes since generator 13 fits the L5-S1 facet joint (and the S1 SAP built on it) to the
# real L5 inferior articular process (issue 15).
VALIDATION_CASES = ["tfesi-default", "tfesi-l5s1-left", "tfesi-l3l4-right-kambin", "ilesi-default", "ilesi-l5s1-left",
                    "ilesi-l3l4-right", "facet-default", "facet-l5s1-right", "mbb-default", "mbb-l5-dorsal-ramus-right",
                    "si-joint-left", "caudal-default"]


@pytest.mark.parametrize("scenario_id", VALIDATION_CASES)
def test_expert_competent_novice_rank_as_an_examiner_ranks_them(graded, scenario_id):
    """Expert >= competent + 5 > novice; the expert and the competent pass, the novice fails; no safe
    attempt carries a critical flag."""
    expert, competent, novice = (graded(scenario_id, make)[1] for make in (expert_log, competent_log, novice_log))
    assert expert.grade >= competent.grade + 5.0 and competent.grade > novice.grade, (
        expert.grade, competent.grade, novice.grade)
    assert expert.passed and competent.passed and not novice.passed
    assert not any(f.severity == "critical" for f in expert.flags + competent.flags + novice.flags)


@pytest.mark.parametrize("scenario_id, make_log, code, severity", UNSAFE,
                         ids=[f"{case}-{make.__name__.strip('_')}" for case, make, *_ in UNSAFE])
def test_an_unsafe_attempt_fails_names_its_complication_and_ranks_below_a_novice(graded, scenario_id, make_log,
                                                                                   code, severity):
    unsafe, novice, expert = (graded(scenario_id, make)[1] for make in (make_log, novice_log, expert_log))
    assert (code, severity) in {(f.code, f.severity) for f in unsafe.flags}
    assert not unsafe.passed and any(code.replace("_", " ")[:6].lower() in item.text.lower() or
                                     next(f.title for f in unsafe.flags if f.code == code) in item.text
                                     for item in unsafe.feedback)
    assert expert.grade > novice.grade > unsafe.grade, (expert.grade, novice.grade, unsafe.grade)
    assert unsafe.grade <= (CRITICAL_GRADE_CAP if severity == "critical" else MAJOR_GRADE_CAP)
    assert not any(f.severity == "critical" for f in novice.flags + expert.flags)


def test_a_test_dose_that_catches_the_artery_then_a_re_sited_needle_passes(anatomy_for):
    """Issue 19: a DSA test that shows the arterial pattern, then a re-sited needle, an epidural test and
    the injectate is good practice: no critical flag, a pass, above the novice; the feedback says so."""
    caught = _graded(anatomy_for, "tfesi-adamkiewicz-l1l2-left", _caught_test_dose)
    novice = _graded(anatomy_for, "tfesi-adamkiewicz-l1l2-left", novice_log)
    expert = _graded(anatomy_for, "tfesi-adamkiewicz-l1l2-left", expert_log)
    assert not any(f.severity in ("critical", "major") for f in caught.flags), caught.flags
    assert caught.metrics.contrast_patterns == ["arterial", "epidural"] and caught.metrics.vascular_tests_caught == 1
    assert caught.metrics.injectate_patterns == ["epidural"] and caught.metrics.injectate_tested
    assert caught.passed, [g for g in caught.gates if not g.passed]
    assert expert.grade > caught.grade > novice.grade, (expert.grade, caught.grade, novice.grade)
    assert any("caught a vascular uptake" in item.text for item in caught.feedback)
    live = next(i for i in caught.checklist if i.key == "contrast_live")
    assert live.status == "done", live


def test_the_cap_is_shown_with_the_deductions(anatomy_for):
    blind = _graded(anatomy_for, "tfesi-default", _blind)
    assert blind.grade == CRITICAL_GRADE_CAP and blind.deductions["cap: critical event"] > 0
    assert round(sum(c.points for c in blind.components) - sum(blind.deductions.values()), 1) == blind.grade


def test_an_abandoned_attempt_earns_no_efficiency(anatomy_for):
    session = _session(anatomy_for, "tfesi-default")
    abandoned = Script(session).view(1).add("finish").actions
    report = score(session.scenario, session.anatomy, abandoned)
    assert next(c for c in report.components if c.name == "efficiency").score == 0.0
    assert report.grade < _graded(anatomy_for, "tfesi-default", novice_log).grade


def test_minor_flags_reach_the_trainee(graded):
    """The novice's habits reach the trainee as minor flags (its dose against the reference level: the test below)."""
    novice = graded("tfesi-default", novice_log)[1]
    habits = {f.code for f in novice.flags} - {"dose_above_reference_level"}
    assert habits == {"excessive_shots", "excessive_fluoro_time"}
    assert all(f.severity == "minor" for f in novice.flags)
    assert any("Excessive fluoroscopy shots" in item.text for item in novice.feedback)
    assert not any("nothing to correct" in item.text for item in novice.feedback)


@pytest.mark.parametrize("scenario_id", ["tfesi-default", "tfesi-l5s1-left", "tfesi-l3l4-right-kambin"])
def test_the_expert_is_well_under_the_reference_level_and_the_screening_novice_is_flagged_above_it(graded, scenario_id):
    """Dose against the Belgian diagnostic reference level of a transforaminal injection (3000 mGy·cm², Hustinx
    2018): the expert's (a DSA test on AP, about 7 s of beam, the economical end of practice against Kim's median
    of 29 s) under half of it and under the teaching hospital's upper quartile (1067 mGy·cm², widened by a tenth),
    above half its lower quartile (499). The novice (24 shots, 30 s of live screening on the lateral) gives at
    least four times the expert's, most of it from live fluoroscopy, and is flagged minor, the advice naming
    that habit, exactly when it is above the level: since the exposure control raises the kVp on the lateral
    (simulator.imaging.dose, 12) its 30 s there give about 2500 mGy·cm² at L3-L5 and 4200 at L5-S1."""
    level = REFERENCE_LEVELS_MGY_CM2["transforaminal_epidural"]
    expert, novice = (graded(scenario_id, make)[1] for make in (expert_log, novice_log))
    expert_mgy_cm2, novice_mgy_cm2 = (r.metrics.dose_area_product_gy_cm2 * 1000.0 for r in (expert, novice))
    assert 0.5 * 499.0 <= expert_mgy_cm2 <= min(1.1 * 1067.0, level / 2), expert_mgy_cm2
    assert "dose_above_reference_level" not in {f.code for f in expert.flags}
    assert novice_mgy_cm2 >= 4.0 * expert_mgy_cm2 and novice.metrics.fluoro_shots == 24, novice_mgy_cm2
    assert max(novice.metrics.dose_by_habit_gy_cm2, key=novice.metrics.dose_by_habit_gy_cm2.get) == "live"
    assert sum(novice.metrics.dose_by_habit_gy_cm2.values()) == pytest.approx(novice.metrics.dose_area_product_gy_cm2,
                                                                              abs=1e-4)
    flag = next((f for f in novice.flags if f.code == "dose_above_reference_level"), None)
    assert (flag is not None) == (novice_mgy_cm2 > level), (novice_mgy_cm2, flag)
    if flag is not None:
        assert flag.severity == "minor" and "came from live fluoroscopy" in flag.message, flag
        assert any("Dose above the reference level" in item.text and "single pulses" in item.text
                   for item in novice.feedback)


def _uncollimated(session):
    """The expert's attempt with the collimator left open on every view."""
    return [{k: v for k, v in a.items() if k != "shutters"} for a in expert_log(session)]


@pytest.mark.parametrize("scenario_id", ["ilesi-l5s1-left", "caudal-default"])
def test_the_epidural_expert_is_under_the_reference_level_and_its_open_field_is_flagged(graded, scenario_id):
    """The epidural reference level (500 mGy·cm², Hustinx 2018) is applied: the expert's interlaminar epidural at
    L5-S1 and caudal epidural, their epidurogram run collimated on the oblique or lateral through the pelvis, stay
    under it and above a third of the teaching hospital's lower quartile (174 mGy·cm²); the same attempts with
    the collimator open are above it, flagged minor with the habit that gave most of it, and lose points."""
    level = REFERENCE_LEVELS_MGY_CM2[LIBRARY[scenario_id].procedure]
    expert, open_field = (graded(scenario_id, make)[1] for make in (expert_log, _uncollimated))
    expert_mgy_cm2, open_mgy_cm2 = (r.metrics.dose_area_product_gy_cm2 * 1000.0 for r in (expert, open_field))
    assert 174.0 / 3 <= expert_mgy_cm2 < level and "dose_above_reference_level" not in {f.code for f in expert.flags}
    assert open_mgy_cm2 > level, open_mgy_cm2
    flag = next(f for f in open_field.flags if f.code == "dose_above_reference_level")
    assert flag.severity == "minor" and f"reference level of {level:.0f} mGy·cm²" in flag.message
    assert "came from live fluoroscopy" in flag.message, flag.message
    assert open_field.grade < expert.grade and open_field.passed


def test_injectate_where_it_belongs_passes_a_tip_off_the_planned_point(anatomy_for):
    """Accuracy by outcome, no cliff: a transforaminal tip 6-8 mm from the planned point, outside the
    zone but in the foraminal epidural space, with correct epidural spread and no safety event, passes;
    its distance still costs points, smoothly."""

    session = _session(anatomy_for, "tfesi-default")
    target = session.target
    points = structure_points(session, "epidural_space", target.point)
    distance = np.linalg.norm(points - target.point, axis=1)
    path = path_to(session, points[(distance >= 6.0) & (distance <= 8.0)])
    report = score(session.scenario, session.anatomy, _along(session, path, contrast_ml=1.0))
    assert report.flags == [] and report.metrics.contrast_pattern_correct and not report.metrics.in_zone
    accuracy = next(c for c in report.components if c.name == "accuracy")
    assert 0.65 < accuracy.score < 0.95 and report.passed, (accuracy, report.gates)
    expert = _graded(anatomy_for, "tfesi-default", expert_log)
    assert expert.grade > report.grade


def _never_on_the_depth_view(session):
    """The expert's line and contrast, imaged on AP and in the trajectory view only: the final position is
    never seen on the depth view (issue 19: "a single oblique shot ... and no lateral view scores 96 and
    passes")."""
    path = plan_trajectory(session.tracer, session.target, session.spec)
    script = Script(session).view(0).view(1).place(path.entry, path.direction).advance_to(path.depth_mm)
    script.add("fluoro_shot", 1.0)
    if session.scenario.procedure == "interlaminar_epidural":
        script.add("check_loss_of_resistance")
    return script.contrast(1.0).read().view(0).medication().add("finish").actions


@pytest.mark.parametrize("scenario_id", ["tfesi-default", "ilesi-default", "si-joint-left"])
def test_an_injection_never_confirmed_on_the_depth_view_fails_its_process_gate(graded, scenario_id):
    """The multiplanar rule (clinical.md §1 [S8][S33]) is a pass gate: on target, no flag, contrast under DSA or
    live, but the final position never seen on the lateral or contralateral oblique fails, naming that view;
    the expert's attempt clears the same gate."""
    report, expert = (graded(scenario_id, make)[1] for make in (_never_on_the_depth_view, expert_log))
    gate = next(g for g in report.gates if g.name.startswith("position confirmed on the"))
    assert not gate.passed and not report.passed and report.metrics.contrast_pattern_correct, report.gates
    assert [g.name for g in report.gates if not g.passed] == [gate.name]
    assert next(g for g in expert.gates if g.name == gate.name).passed
    assert any(f"Confirm the final tip on the {report.metrics.depth_view}" in item.text for item in report.feedback)


@pytest.mark.parametrize("scenario_id, key, unsafe", [("si-joint-left", "caudal_third", _through_sacroiliac_joint),
                                                       ("caudal-default", "below_s3", _caudal_too_high)])
def test_the_sacral_checklist_items_tell_the_expert_from_the_unsafe_attempt(graded, scenario_id, key, unsafe):
    """The sacroiliac joint's caudal third and the caudal needle kept below S3: done by the expert, not done by
    the attempt that went through the joint or up toward the sac."""
    expert, wrong = (next(i for i in graded(scenario_id, make)[1].checklist if i.key == key)
                     for make in (expert_log, unsafe))
    assert expert.status == "done" and wrong.status == "not_done", (expert, wrong)
