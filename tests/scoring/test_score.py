"""Grades on the library (issue 6, "Must show"): the expert path of every scenario scores >= 85 and
passes, a novice clearly less; unsafe attempts fail with exactly the right flags; scoring is pure."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import scoring
from anatomy_models.errors import SpinesimError
from anatomy_models.structures import in_group
from scenarios.needles import MM_PER_INCH, NeedleSpec
from scenarios.schema import TargetSpec, library_scenarios
from scoring.feedback import feedback
from scoring.grade import EXPERT_RANGE, grade
from scoring.report import Report, score
from simulator.case.planner import HUB_MARGIN_MM, find_trajectory, plan_trajectory
from simulator.case.targets import target_for
from simulator.imaging.probe import standard_view
from simulator.session.fold import Session
from tests.scoring.attempts import Script, expert_log, novice_log, path_to, structure_points

LIBRARY = library_scenarios()


def _session(anatomy_for, scenario_id, scenario=None):
    scenario = scenario or LIBRARY[scenario_id]
    return Session(scenario, anatomy_for(scenario))


def _score(session, actions):
    return score(session.scenario, session.anatomy, actions)


@pytest.mark.parametrize("scenario_id", sorted(LIBRARY))
def test_the_expert_path_passes_and_a_novice_scores_clearly_lower(anatomy_for, scenario_id):
    session = _session(anatomy_for, scenario_id)
    expert = _score(session, expert_log(session))
    assert expert.passed and expert.grade >= 85.0, ([g for g in expert.gates if not g.passed], expert.components)
    # An ablation confirms by stimulation and is judged by the nerve its lesions cover, not by contrast (§2.5).
    confirmed = (expert.metrics.nerve_coverage >= 0.9 if expert.procedure == "radiofrequency_ablation"
                 else expert.metrics.contrast_pattern_correct)
    assert expert.flags == [] and expert.metrics.in_zone and confirmed
    assert expert.expert.path_ratio == pytest.approx(1.0) and expert.expert.angle_deg == pytest.approx(0.0, abs=1e-3)
    novice = _score(session, novice_log(_session(anatomy_for, scenario_id)))
    assert novice.metrics.tip_to_target_mm == pytest.approx(6.0, abs=0.1)
    assert novice.metrics.redirects == 4 and novice.metrics.fluoro_shots == 24
    assert novice.grade <= expert.grade - 15.0 and not novice.passed
    # 24 shots and 30 s of live screening (attempts.novice_log): minor flags only, the beam time's where the
    # case's limit is under the novice's 41 s, the dose's where the procedure has a reference level it passed.
    flagged = {f.code for f in novice.flags} - {"dose_above_reference_level", "excessive_fluoro_time"}
    assert flagged == {"excessive_shots"}
    assert {f.severity for f in novice.flags} == {"minor"}


def _flags(report: Report) -> set[tuple[str, str]]:
    return {(f.code, f.severity) for f in report.flags}


def _along(session, path, *, depth_extra_mm=0.0, contrast_ml=None, mode=None, injectate=False):
    """Along ``path`` with images; a contrast test of ``contrast_ml`` imaged in ``mode`` (DSA or live by
    default); with ``injectate`` the expert's injectate where the needle is."""
    script = Script(session).view(1).place(path.entry, path.direction).advance_to(path.depth_mm + depth_extra_mm).view(2)
    if contrast_ml:
        script.contrast(contrast_ml, mode)
    if injectate:
        script.medication()
    return script.add("finish").actions


@pytest.mark.parametrize("inject, expected", [
    (False, {("dural_puncture", "critical")}),
    (True, {("dural_puncture", "critical"), ("intrathecal_injection", "critical")}),
])
def test_a_dural_puncture_in_a_transforaminal_is_critical(anatomy_for, inject, expected):
    session = _session(anatomy_for, "tfesi-default")
    path = path_to(session, structure_points(session, "dural_sac.csf", session.target.point), allow=("dural_sac",))
    report = _score(session, _along(session, path, contrast_ml=1.0 if inject else None))
    assert _flags(report) == expected
    assert not report.passed and not next(g for g in report.gates if g.name == "no critical event").passed
    assert next(c for c in report.components if c.name == "safety").score == 0.0
    assert report.feedback[0].level == "critical" and "Dural puncture" in " ".join(f.text for f in report.feedback)


@pytest.mark.parametrize("mode, injectate, expected", [
    ("dsa", True, {("arterial_injection", "critical")}),  # the test showed the artery, the injectate went in anyway
    ("pulse", False, {("arterial_injection", "critical")}),  # a test no live or DSA run showed: it washes out unseen
    ("dsa", False, set()),  # the test caught the artery and nothing followed: the test dose did its job
])
def test_an_arterial_injection_beside_the_adamkiewicz_artery_is_critical(anatomy_for, mode, injectate, expected):
    session = _session(anatomy_for, "tfesi-adamkiewicz-l1l2-left")
    artery = next(n for n in session.tracer.names if n.endswith(".adamkiewicz"))
    path = path_to(session, structure_points(session, artery, session.target.point), allow=("blood",))
    report = _score(session, _along(session, path, contrast_ml=1.0, mode=mode, injectate=injectate))
    assert _flags(report) == expected
    assert not report.passed and all(f.structure == artery for f in report.flags)


def test_an_intradiscal_needle_is_major_and_an_intradiscal_injection_critical(anatomy_for):
    session = _session(anatomy_for, "tfesi-default")
    disc = f"{session.scenario.target.level}.disc"
    path = path_to(session, structure_points(session, disc, session.target.point), allow=("disc_annulus", "disc_nucleus"))
    report = _score(session, _along(session, path, depth_extra_mm=2.0, contrast_ml=0.5))
    assert _flags(report) == {("intradiscal", "major"), ("intradiscal_injection", "critical")}
    assert report.metrics.contrast_patterns == ["intradiscal"] and not report.metrics.contrast_pattern_correct


def test_root_contact_is_major_and_fails(anatomy_for):
    session = _session(anatomy_for, "tfesi-default")
    root = f"nerve_root.{session.scenario.target.level.split('-')[0]}.{session.scenario.target.side}"
    path = path_to(session, structure_points(session, root, session.target.point), allow=("nerve_root",),
                   root_clearance_mm=0.0)
    report = _score(session, _along(session, path))
    assert _flags(report) == {("root_contact", "major")}
    assert report.flags[0].structure.startswith("nerve_root.") and not report.passed


def test_an_interlaminar_overshoot_is_a_major_wet_tap(anatomy_for):
    session = _session(anatomy_for, "ilesi-default")
    script = Script(session)
    for action in expert_log(session)[:-1]:
        script.add(action.pop("type"), action.pop("t") - script.t, **action)
    # Overshoot to 1 mm into the CSF, found along the needle: the expert stops a few millimetres into
    # a posterior epidural space up to 5-6 mm deep mid-lumbar (clinical.md §4.7 [S91]; 6.3 mm along this
    # oblique path on the 2 mm patient) with a voxel-thick dura behind it, so a fixed overshoot (once
    # 4 mm) can end in the dura or the epidural fat depending on the anatomy.
    needle = session.state.needle
    segments = session.tracer.trace(needle.entry, needle.direction, needle.depth_mm + 30.0).segments
    csf = next(s for s in segments if s.depth_in_mm > needle.depth_mm and s.structure == "dural_sac.csf")
    script.advance_to(csf.depth_in_mm + 1.0).add("finish")
    report = _score(session, script.actions)
    assert _flags(report) == {("dural_puncture", "major")}
    assert report.metrics.tip_structure == "dural_sac.csf" and not report.passed


def test_cord_contact_is_critical(anatomy_for):
    session = _session(anatomy_for, "ilesi-default")
    from_behind = np.array([0.0, -1.0, 0.3]) / np.linalg.norm([0.0, -1.0, 0.3])
    cord = structure_points(session, "spinal_cord", session.anatomy.landmark("conus.tip"))
    path = next(p for p in (find_trajectory(session.tracer, point, from_behind, 30.0, max_depth_mm=80.0,
                                            avoid_groups=("nerve_root", "dorsal_root_ganglion"),
                                            avoid_tissues=("blood", "air", "disc_annulus", "disc_nucleus"))
                            for point in cord[:200:5]) if p is not None)
    report = _score(session, _along(session, path))
    assert _flags(report) == {("cord_contact", "critical"), ("dural_puncture", "major")}


@pytest.mark.parametrize("mode, injectate, severity", [("pulse", False, "major"), ("dsa", True, "critical")])
def test_a_venous_injection_past_the_foramen_is_major_and_venous_injectate_critical(anatomy_for, mode, injectate,
                                                                                    severity):
    scenario = LIBRARY["tfesi-l3l4-right-kambin"]
    long_needle = scenario.model_copy(update={"needle": scenario.needle.model_copy(update={"length_in": None,
                                                                                            "length_mm": 200.0})})
    session = _session(anatomy_for, None, long_needle)
    path = path_to(session, structure_points(session, "inferior_vena_cava", session.target.point), cone_deg=45.0,
                   allow=("blood",), max_depth_mm=190.0)
    report = _score(session, _along(session, path, contrast_ml=1.0, mode=mode, injectate=injectate))
    assert _flags(report) == {("venous_injection", severity), ("beyond_ventral_epidural", "major")}


def test_a_transforaminal_tip_in_the_psoas_is_beyond_the_ventral_epidural_space(anatomy_for):
    session = _session(anatomy_for, "tfesi-default")
    psoas = structure_points(session, f"muscle.psoas.{session.scenario.target.side}", session.target.point)
    path = path_to(session, psoas[::3], cone_deg=35.0)
    report = _score(session, _along(session, path))
    assert _flags(report) == {("beyond_ventral_epidural", "major")}
    assert "ventral to the posterior vertebral-body line" in report.flags[0].message


@pytest.mark.parametrize("group, on_target", [
    # The flavum's capsular part lines the foramen's back (generator 19): 2.8 mm behind the L4-L5 safe
    # triangle (5.4 mm on generator 18, where only its interlaminar part was built).
    ("ligamentum_flavum.L4-L5", False),
    ("epidural_space", True)])
def test_a_transforaminal_tip_must_be_in_the_foraminal_epidural_space(anatomy_for, group, on_target):
    """Within the zone's 5 mm, a tip in the ligamentum flavum is not on target (the injectate would
    not reach the root sleeve and ventral epidural space, clinical.md §2.2); one in the foramen's
    epidural fat away from the target point is."""
    session = _session(anatomy_for, "tfesi-default")
    target = session.target
    points = structure_points(session, group, target.point)
    distance = np.linalg.norm(points - target.point, axis=1)
    near = points[(distance <= target.zone.radius_mm) & (distance >= 2.0)]
    assert len(near) > 0
    path = path_to(session, near)
    report = _score(session, _along(session, path, contrast_ml=1.0))
    final = session.state
    assert in_group(final.tip_structure, group) and final.tip_to_target_mm <= target.zone.radius_mm
    assert final.in_target is on_target and report.metrics.in_zone is on_target
    assert report.passed is on_target


def test_the_expert_path_of_the_level_above_is_the_wrong_level(anatomy_for):
    session = _session(anatomy_for, "tfesi-default")
    spec = TargetSpec(level="L3-L4", side=session.scenario.target.side)
    above = target_for(session.scenario.model_copy(update={"target": spec}), session.anatomy, session.tracer)
    path = plan_trajectory(session.tracer, above, session.spec)
    report = _score(session, _along(session, path, contrast_ml=1.0))
    assert _flags(report) == {("wrong_level", "major")}
    assert "L3-L4" in report.flags[0].message and not report.passed


# Every function through which an image is made: the renderers' entries, the DRR's cached frame and its
# projectors, the needle's compositing and the ultrasound frame. Patched wherever a module holds them.
_RENDERERS = {"simulator.imaging.fluoro": ("render_fluoro", "contrast_line_integrals"),
              "simulator.imaging.drr": ("anatomy_line_integrals", "line_integrals", "add_needle_line_integrals",
                                        "_project", "_joseph_kernel", "_siddon_kernel", "_needle_kernel"),
              "simulator.imaging.ultrasound": ("render_ultrasound", "_tissue_field", "_needle_echoes")}
_PROJECT_PACKAGES = ("anatomy_models", "scenarios", "simulator", "scoring", "frontends")


def _forbid_rendering(monkeypatch) -> None:
    """Make every renderer raise, at each name it is looked up by: its own module's (calls inside it, and
    ``module.name`` look-ups) and every project module that imported the name itself (``from ... import``)."""
    renderers = {}
    for module_name, names in _RENDERERS.items():
        module = importlib.import_module(module_name)
        renderers |= {id(getattr(module, name)): f"{module_name}.{name}" for name in names}

    def forbidden(label):
        def render(*args, **kwargs):
            raise AssertionError(f"score rendered an image through {label}")
        return render

    for module_name, module in list(sys.modules.items()):
        if module_name.split(".")[0] in _PROJECT_PACKAGES:
            for name, value in list(vars(module).items()):
                if id(value) in renderers:
                    monkeypatch.setattr(module, name, forbidden(renderers[id(value)]))


def _with_probe(session, log):
    probe = standard_view(session.anatomy, "paramedian-sagittal-oblique", "L4-L5", "left")
    return [log[0], {"type": "place_probe", "t": log[0]["t"], **probe.pose("paramedian-sagittal-oblique").to_json()},
            *log[1:]]


@pytest.mark.parametrize("scenario_id, make_log", [
    ("tfesi-default", novice_log),  # shots, redirections, contrast
    ("ilesi-ultrasound-l4l5-left", lambda session: _with_probe(session, expert_log(session))),
])
def test_scoring_is_pure_and_never_renders(anatomy_for, monkeypatch, scenario_id, make_log):
    session = _session(anatomy_for, scenario_id)
    log = make_log(_session(anatomy_for, scenario_id))
    _forbid_rendering(monkeypatch)
    first, second = _score(session, log), _score(session, [dict(a) for a in log])
    assert first.model_dump_json() == second.model_dump_json()
    assert Report.model_validate_json(first.model_dump_json()) == first


def test_scoring_imports_no_frontend_or_picture():
    """Neither directly (any import statement in scoring/, also inside a function) nor through what it imports."""
    root = Path(scoring.__file__).parent
    modules = sorted(f"scoring.{path.stem}" for path in root.glob("*.py") if path.stem != "__init__")
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            imported = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                        else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            frontend = [name for name in imported if _is_frontend(name)]
            assert frontend == [], f"scoring/{path.name}:{node.lineno} imports {frontend}"
    probe = f"import sys, {', '.join(modules)}; print(' '.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=root.parent).stdout.split()
    assert set(modules) <= set(loaded)
    frontend = [name for name in loaded if _is_frontend(name)]
    assert frontend == [], f"importing scoring loads {frontend}"


def _is_frontend(module_name: str) -> bool:
    parts = module_name.split(".")
    return parts[0] == "frontends" or "pictures" in parts


def test_at_bmi_40_a_3_5_inch_needle_is_too_short_and_the_5_inch_one_reaches(anatomy_for):
    session = _session(anatomy_for, "tfesi-bmi40-l4l5-left")
    short = NeedleSpec("quincke", 22, 3.5 * MM_PER_INCH)
    with pytest.raises(SpinesimError, match="(?i)a longer needle may be needed"):
        plan_trajectory(session.tracer, session.target, short)
    assert plan_trajectory(session.tracer, session.target, session.spec).depth_mm > short.length_mm - HUB_MARGIN_MM


def test_an_attempt_without_a_needle_or_an_expert_path_still_gets_an_honest_report(anatomy_for):
    scenario = LIBRARY["tfesi-default"]
    too_short = scenario.model_copy(update={"needle": scenario.needle.model_copy(update={"length_in": 1.5})})
    session = _session(anatomy_for, None, too_short)
    report = _score(session, Script(session).view(0).add("finish").actions)
    assert not report.passed and report.needle is None and not report.expert.available
    assert "no safe textbook path" in report.expert.note
    assert next(c for c in report.components if c.name == "accuracy").score == 0.0
    assert report.feedback[0].text == "No needle was placed."


@pytest.mark.parametrize("scenario_id, deduction", [("ilesi-default", 0.0), ("ilesi-ultrasound-l4l5-left", 2.0)])
def test_hints_cost_what_the_rubric_says(anatomy_for, scenario_id, deduction):
    session = _session(anatomy_for, scenario_id)
    assert session.scenario.rubric.hint_deduction == deduction
    clean = expert_log(session)
    # Two hints revealed at the start, at the first action's time.
    helped = [dict(clean[0]), {"type": "show_hint", "t": clean[0]["t"]}, {"type": "show_hint", "t": clean[0]["t"]}]
    helped += clean[1:]
    without, with_hints = _score(session, clean), _score(session, helped)
    assert with_hints.metrics.hints_used == 2 and without.metrics.hints_used == 0
    assert with_hints.grade == pytest.approx(without.grade - 2 * deduction, abs=0.051)
    assert with_hints.deductions == {"hints": 2 * deduction} and without.deductions == {}
    assert any("You used 2 of the 4 hints" in item.text for item in with_hints.feedback)
    assert with_hints.passed and (f"({2 * deduction:g} grade points off)" in str(with_hints.feedback)) == bool(deduction)


def _without_injectate(actions):
    return [a for a in actions if a["type"] != "inject_medication"]


def test_a_log_from_before_the_injectate_existed_scores_as_it_did(anatomy_for):
    """Old logs (a contrast test, no injectate) replay unchanged: the expert's still passes, clean."""
    session = _session(anatomy_for, "tfesi-default")
    old = _score(session, _without_injectate(expert_log(session)))
    assert old.passed and old.flags == [] and old.metrics.injectate_tested is None and old.metrics.injectate_ml == 0.0
    assert next(i for i in old.checklist if i.key == "contrast_live").status == "done"


def test_an_injectate_given_where_no_test_went_in_is_a_technique_fault(anatomy_for):
    session = _session(anatomy_for, "tfesi-default")
    log = expert_log(session)
    at = next(i for i, a in enumerate(log) if a["type"] == "inject_medication")
    moved = [{"type": "withdraw", "t": log[at]["t"] - 2.0, "mm": 0.5}, {"type": "fluoro_shot", "t": log[at]["t"] - 1.0}]
    report = _score(session, log[:at] + moved + log[at:])
    assert report.metrics.injectate_tested is False and report.metrics.contrast_checked
    live = next(i for i in report.checklist if i.key == "contrast_live")
    assert live.status == "partly" and "injectate" in live.detail and live.evidence[-1].action == "inject_medication"
    assert any("no contrast test" in item.text for item in report.feedback)
    assert next(c for c in report.components if c.name == "technique").items["contrast_check"] == 0.0
    # Contrast under live or DSA before the injectate is a pass gate (§6.3), not only a technique point.
    gate = next(g for g in report.gates if g.name == "contrast check")
    assert not gate.passed and "injectate" in gate.detail and not report.passed


@pytest.mark.parametrize("scenario_id, agent", [("tfesi-default", "steroid_particulate"),
                                                ("mbb-default", "steroid_nonparticulate")])
def test_the_wrong_injectate_for_the_procedure_is_a_minor_flag(anatomy_for, scenario_id, agent):
    session = _session(anatomy_for, scenario_id)
    log = [a | {"agent": agent} if a["type"] == "inject_medication" else a for a in expert_log(session)]
    report = _score(session, log)
    assert _flags(report) == {("agent_choice", "minor")}


@pytest.mark.parametrize("times_the_expert, dose_score", [(1.0, 1.0), (EXPERT_RANGE, 1.0), (1.5 * EXPERT_RANGE, 0.5),
                                                         (2.0 * EXPERT_RANGE, 0.0), (4.0, 0.0)])
def test_the_dose_area_product_is_graded_against_the_expert_range(anatomy_for, times_the_expert, dose_score):
    """Issue 19: dose is graded, not only measured. The same attempt with a larger dose-area product (a wider
    field, more laterals, DSA where a pulse would do) loses efficiency up to the item's whole share at twice the
    top of the expert range, and the feedback says how to lower it."""
    scenario = LIBRARY["tfesi-default"]
    session = Session(scenario, anatomy_for(scenario))
    report = score(scenario, session.anatomy, expert_log(session))
    expert_dap = report.expert.expert_dose_area_product_gy_cm2
    assert expert_dap == report.metrics.dose_area_product_gy_cm2 > 0
    metrics = report.metrics.model_copy(update={"dose_area_product_gy_cm2": times_the_expert * expert_dap})
    result = grade(scenario, metrics, report.flags, report.near_misses, report.expert)
    efficiency = next(c for c in result.components if c.name == "efficiency")
    accuracy = next(c for c in report.components if c.name == "accuracy").score
    assert efficiency.items["dose"] == pytest.approx(accuracy * dose_score / len(efficiency.items), abs=1e-4)
    tips = [item.text for item in feedback(scenario, metrics, report.flags, report.near_misses, report.expert)]
    assert any("dose-area product" in tip for tip in tips) == (times_the_expert > EXPERT_RANGE), tips
