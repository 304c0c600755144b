"""The trainee reads the images (issue 19): after a contrast run they name its pattern, and the naming is
scored (technique, checklist, feedback, report) against where the contrast went; a false loss of resistance
is debriefed. Attempts are scripted from the anatomy (tests/scoring/attempts.py)."""

from __future__ import annotations

import pytest

from anatomy_models.errors import SpinesimError
from scenarios.schema import library_scenarios
from scoring.grade import CRITICAL_GRADE_CAP
from scoring.report import metric_rows, score
from simulator.session.fold import READING_OF_PATTERN, Session
from tests.scoring import test_checklist, test_grade_order
from tests.scoring.attempts import Script, expert_log, path_to, structure_points

LIBRARY = library_scenarios()


def _misread(session):
    """The expert's attempt, naming its epidural contrast as vascular."""
    return [a | {"reading": "vascular"} if a["type"] == "read_contrast" else a for a in expert_log(session)]


def _unread(session):
    return [a for a in expert_log(session) if a["type"] != "read_contrast"]


def _intrathecal_read_right(session):
    """Contrast in the sac, named intrathecal (a myelogram), then no injectate."""
    actions = test_checklist._intrathecal(session)
    at = next(i for i, a in enumerate(actions) if a["type"] == "fluoro_shot" and a.get("mode") != "pulse"
              and any(b["type"] == "inject_contrast" for b in actions[:i]))
    reading = {"type": "read_contrast", "t": actions[at]["t"] + 1.0, "reading": "intrathecal"}
    return actions[:at + 1] + [reading] + [a | {"t": a["t"] + 1.0} for a in actions[at + 1:]]


def _status(report, key):
    return next(item.status for item in report.checklist if item.key == key)


def _technique(report, name):
    return next(c for c in report.components if c.name == "technique").items[name]


@pytest.mark.parametrize("scenario_id", ["tfesi-default", "facet-l5s1-right"])
def test_a_misread_or_unnamed_pattern_costs_the_reading_and_says_what_it_looks_like(graded, scenario_id):
    expert = graded(scenario_id, expert_log)[1]
    misread = graded(scenario_id, _misread)[1]
    unread = graded(scenario_id, _unread)[1]
    assert _status(expert, "contrast_named") == "done" and _technique(expert, "contrast_read") >= 0.10
    assert _status(misread, "contrast_named") == "not_done" and _technique(misread, "contrast_read") == 0.0
    assert _status(unread, "contrast_named") == "not_done" and _technique(unread, "contrast_read") == 0.0
    assert misread.grade < expert.grade and unread.grade < expert.grade
    actual = READING_OF_PATTERN[expert.metrics.contrast_patterns[-1]].replace("_", "-")
    assert any(f"You read {actual} contrast as vascular" in item.text for item in misread.feedback)
    assert any("Name the pattern after each contrast run" in item.text for item in unread.feedback)
    rows = dict(metric_rows(misread))
    assert rows["Contrast named (yours / as it was)"] == f"vascular / {actual}"


def _artery_read_as_epidural(session):
    """Into the artery of Adamkiewicz, a DSA test that fills it, named epidural, and the injectate given there."""
    script = test_grade_order._arterial_test(session)
    return script.add("read_contrast", 2.0, reading="epidural").medication().add("finish").actions


def _artery_read_and_resited(session):
    """The same DSA test named vascular, the needle withdrawn and re-sited (test_grade_order's caught test dose)."""
    actions = test_grade_order._caught_test_dose(session)
    first = next(i for i, a in enumerate(actions) if a["type"] == "fluoro_shot" and a.get("mode") == "dsa")
    reading = {"type": "read_contrast", "t": actions[first]["t"] + 1.0, "reading": "vascular"}
    return actions[:first + 1] + [reading] + [a | {"t": a["t"] + 1.0} for a in actions[first + 1:]]


def test_a_vascular_pattern_read_as_another_then_injected_is_critical(graded):
    """Issue 19: the reading is the check; a vessel named epidural and then injected into is a critical event of
    its own, named in the headline's company; the same test named vascular and re-sited is not."""
    misread = graded("tfesi-adamkiewicz-l1l2-left", _artery_read_as_epidural)[1]
    resited = graded("tfesi-adamkiewicz-l1l2-left", _artery_read_and_resited)[1]
    flag = next(f for f in misread.flags if f.code == "vascular_pattern_misread")
    assert flag.severity == "critical" and "you read it as epidural" in flag.message, flag
    assert any(item.text.startswith("Vascular pattern misread") for item in misread.feedback)
    assert not misread.passed and misread.grade <= CRITICAL_GRADE_CAP
    assert not any(f.code == "vascular_pattern_misread" for f in resited.flags), resited.flags
    assert resited.passed and resited.grade > misread.grade


@pytest.mark.parametrize("scenario_id", ["tfesi-default", "facet-l5s1-right"])
def test_the_expected_pattern_is_seen_only_when_it_is_named(graded, scenario_id):
    """The checklist's "expected contrast pattern seen" is done when the images showed it and the trainee named
    it; imaged but misread or never named it is partly done."""
    expert, misread, unread = (graded(scenario_id, make)[1] for make in (expert_log, _misread, _unread))
    assert _status(expert, "expected_pattern") == "done"
    item = next(i for i in misread.checklist if i.key == "expected_pattern")
    assert item.status == "partly" and "named vascular" in item.detail, item
    assert _status(unread, "expected_pattern") == "partly"


def test_naming_an_unsafe_pattern_right_is_credited_but_the_attempt_still_fails(graded):
    log, report = graded("tfesi-default", _intrathecal_read_right)
    assert report.metrics.contrast_patterns[-1] == "intrathecal"
    assert report.metrics.contrast_readings == ["intrathecal"]
    assert _status(report, "contrast_named") == "done" and not report.passed


def test_there_is_nothing_to_read_before_contrast(anatomy_for):
    scenario = LIBRARY["tfesi-default"]
    session = Session(scenario, anatomy_for(scenario))
    with pytest.raises(SpinesimError, match="no contrast has been injected"):
        session.apply({"type": "read_contrast", "t": 1.0, "reading": "epidural"})


def test_a_false_loss_of_resistance_is_debriefed_and_confirms_nothing(anatomy_for):
    """Presses of the syringe in the paraspinal muscle until one gives way (9.4% a press, seeded): the
    trainee feels a loss; the debrief says it was false and where the tip was; the report does not count
    it as confirmed."""
    scenario = LIBRARY["ilesi-l3l4-right"]
    anatomy = anatomy_for(scenario)
    session = Session(scenario, anatomy)
    path = path_to(session, structure_points(session, "muscle", session.target.point), allow=("muscle",),
                   max_depth_mm=60.0)
    script = Script(session).view(0).view(2).place(path.entry, path.direction).advance_to(path.depth_mm)
    for _ in range(80):
        script.add("check_loss_of_resistance", 1.0)
        if script.session.events[-1].data["false_loss"]:
            break
    event = script.session.events[-1]
    assert event.data["false_loss"] and event.message == "loss of resistance"
    assert event.debrief.startswith("loss of resistance: a false loss: the tip was in the ")
    assert "epidural" not in event.message
    report = score(scenario, anatomy, script.add("finish").actions)
    assert report.metrics.loss_of_resistance_confirmed is False
