"""Feedback and the report in clinical words (issue 19): structures named as a clinician names them, no
raw identifier or source tag in anything the trainee reads, one headline first, advice for the
procedure at hand only, and the numbers in the messages measured against the geometry. Attempts are
scripted from the anatomy (tests/scoring/attempts.py), never typed coordinates."""

from __future__ import annotations

import inspect
import re
from typing import get_args

import numpy as np
import pytest

from anatomy_models.structures import clinical_name
from frontends.web.views import event_rows
from scenarios.schema import library_scenarios
from scoring.feedback import ADVICE, EXPECTED_LOOK, FLAG_ADVICE, L5_DORSAL_RAMUS_ADVICE
from scoring.report import checklist_rows, metric_rows, rating_rows, score
from scoring.safety import VENTRAL_TOLERANCE_MM, vertebra_frame
from simulator.case.planner import plan_trajectory
from simulator.session import actions as act
from simulator.session import fold
from simulator.session.fold import Session
from simulator.session.replay import replay
from simulator.session.words import ACTION_TITLES, EVENT_TITLES, action_title, event_title
from tests.scoring import test_checklist, test_grade_order
from tests.scoring.attempts import Script, expert_log, novice_log, path_to, structure_points

LIBRARY = library_scenarios()
# One library case of each procedure, across levels and sides.
CASES = ["ilesi-l3l4-right", "tfesi-default", "facet-l5s1-right", "mbb-l5-dorsal-ramus-right"]
# A word with an underscore, a dotted name ("dural_sac.csf", "clinical.md") or a source tag ("§2.7", "[S22]").
RAW = re.compile(r"\w*_\w*|[A-Za-z]\w*\.[A-Za-z]\w*|§|\[S\d+\]")
# Words that belong to one procedure's advice only.
MARKERS = {
    "transforaminal_epidural": ("transforaminal", "safe triangle", "6 o'clock", "vertebral-body line"),
    "interlaminar_epidural": ("interlaminar window", "ventral interlaminar line", "loss of resistance"),
    "facet_intra_articular": ("joint line", "capsule", "arthrogram"),
    "medial_branch_block": ("SAP-TP", "transverse process", "sacral ala"),
}
# The validation attempts of the grade-order and checklist tests: (case, make_log).
VALIDATION = ([(case, make) for case, make, *_ in test_grade_order.UNSAFE]
              + [(case, make) for case in test_checklist.CASES
                 for make in (expert_log, novice_log, test_checklist._blind, test_checklist._live_throughout,
                              test_checklist._intrathecal, test_checklist._resited)])


def _texts(report) -> list[str]:
    rows = metric_rows(report) + checklist_rows(report) + rating_rows(report)
    timeline = [text for entry in report.timeline
                for text in [entry.action, entry.summary] + [t for e in entry.events for t in (e.title, e.message)]]
    return ([item.text for item in report.feedback] + [flag.message for flag in report.flags]
            + [gate.detail for gate in report.gates] + [cell for row in rows for cell in row] + timeline)


def _event_kinds() -> set[str]:
    """Every event kind the engine emits (its source) or documents (the fold's table)."""
    emitted = set(re.findall(r'emit\("(\w+)"', inspect.getsource(fold)))
    return emitted | set(re.findall(r"^``(\w+)``", fold.__doc__, re.MULTILINE))


def test_every_event_kind_and_action_type_reads_in_clinical_words():
    """The titles the report's action log, the web app's event list and ``spinesim run`` show: one for every event
    kind and action type, none an identifier (no underscore, no dot)."""
    kinds = _event_kinds()
    types = {member.model_fields["type"].default for member in get_args(get_args(act.Action)[0])}
    assert len(kinds) >= 29 and kinds <= set(EVENT_TITLES), kinds - set(EVENT_TITLES)
    assert types == set(ACTION_TITLES), types ^ set(ACTION_TITLES)
    titles = [event_title(kind) for kind in kinds] + [action_title(kind) for kind in types]
    assert not [t for t in titles if "_" in t or "." in t]
    rows = event_rows([fold.Event(1.0, kind, "info", "a message") for kind in sorted(kinds)])
    assert not [row["kind"] for row in rows if "_" in row["kind"] or "." in row["kind"]]


@pytest.mark.parametrize("scenario_id, make_log", VALIDATION,
                         ids=[f"{case}-{make.__name__.strip('_')}" for case, make in VALIDATION])
def test_no_raw_identifier_reaches_the_trainee(graded, scenario_id, make_log):
    report = graded(scenario_id, make_log)[1]
    raw = [(text, RAW.findall(text)) for text in _texts(report) if RAW.search(text)]
    assert not raw, raw


@pytest.mark.parametrize("scenario_id, make_log", VALIDATION,
                         ids=[f"{case}-{make.__name__.strip('_')}" for case, make in VALIDATION])
def test_the_attempts_events_speak_clinical_words(graded, anatomy_for, scenario_id, make_log):
    """What the trainee reads while working (the event list, live and in the debrief): structures named,
    depths from the skin, the C-arm by its angles, no coordinates."""
    scenario = LIBRARY[scenario_id]
    session = replay(scenario, anatomy_for(scenario), graded(scenario_id, make_log)[0])
    texts = [text for event in session.events for text in (event.message, event.debrief)]
    raw = [(text, RAW.findall(text)) for text in texts if RAW.search(text) or re.search(r"[\[\]]|\d\.\d{2}", text)]
    assert not raw, raw


@pytest.mark.parametrize("procedure", list(MARKERS))
def test_advice_is_for_the_procedure_at_hand(procedure):
    others = [word for other, words in MARKERS.items() if other != procedure for word in words]
    advice = [a.get(procedure, a.get("default", "")) if isinstance(a, dict) else a for a in FLAG_ADVICE.values()]
    directions = ADVICE[procedure] | (L5_DORSAL_RAMUS_ADVICE if procedure == "medial_branch_block" else {})
    texts = advice + list(directions.values()) + [EXPECTED_LOOK[procedure]]
    assert not [(text, word) for text in texts for word in others if word in text]
    assert not [text for text in texts if RAW.search(text)]


@pytest.mark.parametrize("scenario_id", CASES)
def test_the_expert_hears_where_the_tip_and_the_contrast_went(graded, scenario_id):
    expert = graded(scenario_id, expert_log)[1]
    m = expert.metrics
    pattern = m.contrast_patterns[-1].replace("intra_", "intra-").replace("_", " ")
    where = clinical_name(m.tip_structure)
    where = where if where.startswith("CSF") else f"the {where}"
    distance = f"{m.tip_to_target_mm:.0f} mm" if m.tip_to_target_mm >= 2.0 else f"{m.tip_to_target_mm:.1f} mm"
    assert [item.text for item in expert.feedback] == [
        f"Your final tip was on target ({distance} from the target point, in {where}), and the contrast gave the "
        f"{pattern} pattern it should.",
        "A clean, efficient attempt: nothing to correct."]


@pytest.mark.parametrize("scenario_id", CASES)
def test_a_blind_injection_is_the_headline_and_nothing_cites_an_image_never_taken(graded, scenario_id):
    blind = graded(scenario_id, test_checklist._blind)[1]
    ml = next(f for f in blind.flags if f.code == "blind_injection").message.split(" mL")[0]
    headline = blind.feedback[0]
    assert headline.level == "critical" and headline.text == (
        f"Injection without an image at {blind.flags[0].t:.0f} s: {ml} mL of contrast injected where no image had shown "
        "the needle, and not imaged live or by DSA. Confirm the final position on the depth view, then inject under "
        "live fluoroscopy: only the image shows where the injectate goes.")
    texts = " ".join(item.text for item in blind.feedback)
    assert "image after the injection" not in texts and "single image" not in texts


@pytest.mark.parametrize("scenario_id", CASES)
def test_the_novice_hears_one_headline_then_the_rest_by_weight(graded, scenario_id):
    novice = graded(scenario_id, novice_log)[1]
    procedure = novice.procedure
    headline, rest = novice.feedback[0], novice.feedback[1:]
    # No critical or major event: the headline is where the contrast or the tip went, when it was wrong.
    assert not any(f.severity in ("critical", "major") for f in novice.flags)
    outcome = ("The contrast gave the", "Your final tip was")
    if not novice.metrics.in_zone or novice.metrics.contrast_pattern_correct is False:
        assert headline.text.startswith(outcome) and headline.level == "warning", headline
    levels = [item.level for item in rest]
    assert levels == sorted(levels, key=["critical", "warning", "tip", "good"].index)
    others = [w for other, words in MARKERS.items() if other != procedure for w in words]
    assert not [(item.text, w) for item in novice.feedback for w in others if w in item.text]
    if LIBRARY[scenario_id].target.nerve == "L5 dorsal ramus":  # blocked on the sacral ala, not on a process
        assert not [item.text for item in novice.feedback if "transverse process" in item.text]


def test_the_too_deep_message_measures_the_deepest_tip_against_the_posterior_body_line(anatomy_for):
    """A transforaminal needle driven into the psoas ventral to the L4-L5 posterior outline: the flag
    reports how far the tip went, measured here from the body and disc voxels at the tip's height."""
    scenario = LIBRARY["tfesi-default"]
    anatomy = anatomy_for(scenario)
    session = Session(scenario, anatomy)
    upper, lower = scenario.target.level.split("-")
    tracer = session.tracer
    origin, frame = vertebra_frame(anatomy, upper)
    codes = tracer.codes_in_groups((f"{upper}.body", f"{upper}-{lower}.disc", f"{lower}.body"))
    bone = (tracer.volume.voxel_to_world(np.argwhere(np.isin(tracer.codes, codes))) - origin) @ frame.T
    spacing = float(np.max(tracer.volume.spacing))

    def ventral_mm(point):
        local = (point - origin) @ frame.T
        # The tip's own layer (one voxel tall, as the score's slabs): on the real vertebra shapes the
        # outline steps by a voxel at an endplate, and a window reaching a voxel above or below measured
        # the step (13.1 mm) where the tip's height shows 11.0 mm.
        level = bone[np.abs(bone[:, 2] - local[2]) <= spacing / 2]
        return level[:, 1].max() + spacing / 2 - local[1] if len(level) else -np.inf

    psoas = structure_points(session, f"muscle.psoas.{scenario.target.side}", session.target.point)
    deep = [p for p in psoas[:4000] if 12.0 < ventral_mm(p) < 25.0]
    path = path_to(session, np.array(deep), allow=("muscle",), cone_deg=40.0)
    log = Script(session).view(1).place(path.entry, path.direction).advance_to(path.depth_mm).view(2).add("finish").actions
    report = score(scenario, anatomy, log)
    flag = next(f for f in report.flags if f.code == "beyond_ventral_epidural")
    measured = float(re.search(r"went ([\d.]+) mm ventral", flag.message).group(1))
    assert measured > 10.0 and measured == pytest.approx(ventral_mm(path.tip), abs=spacing), flag.message
    assert "psoas" in flag.message and measured > VENTRAL_TOLERANCE_MM + 5.0


def test_pulling_out_and_re_inserting_counts_as_a_redirection(anatomy_for):
    scenario = LIBRARY["tfesi-default"]
    session = Session(scenario, anatomy_for(scenario))
    path = plan_trajectory(session.tracer, session.target, session.spec)
    script = Script(session).view(1).place(path.entry, path.direction).advance_to(0.5 * path.depth_mm)
    script.place(path.entry, path.direction).advance_to(path.depth_mm).view(2)
    report = score(scenario, session.anatomy, script.add("finish").actions)
    assert (report.metrics.passes, report.metrics.redirects) == (2, 1)
    assert ("Passes / redirections or re-insertions", "2 / 1") in metric_rows(report)
