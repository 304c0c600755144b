"""The checklist and the global rating scale read the log as an examiner would (issue 19): the expert's
checklist is complete and its rating the highest, the novice misses what it skipped, a blind injection
misses every imaging step, and every tick points at real steps of the log. Attempts are scripted from
the anatomy (tests/scoring/attempts.py), never typed coordinates."""

from __future__ import annotations

import json

import pytest

from scenarios.schema import library_scenarios
from scoring.checklist import CHECKLISTS, IMAGING_ITEMS, checklist_points
from scoring.report import Report, checklist_rows, rating_rows
from simulator.case.planner import plan_trajectory
from tests.scoring.attempts import Script, expert_log, intrathecal_path, novice_log

LIBRARY = library_scenarios()
# One library case of each procedure, across levels and sides.
CASES = ["ilesi-l3l4-right", "tfesi-default", "facet-l5s1-right", "mbb-default"]


def _blind(session):
    """The expert's attempt with every fluoroscopy shot left out."""
    return [a for a in expert_log(session) if a["type"] != "fluoro_shot"]


def _live_throughout(session):
    """The expert's attempt with every image a 12 s live run (84 s of beam for the transforaminal expert's seven
    images, over twice the 36 s limit): continuous screening, not intermittent."""
    return [a | {"mode": "live", "seconds": 12.0} if a["type"] == "fluoro_shot" else a for a in expert_log(session)]


def _intrathecal(session):
    path = intrathecal_path(session)
    script = Script(session).view(0).view(1).place(path.entry, path.direction).advance_to(path.depth_mm).view(2)
    return script.contrast(1.0).view(0).add("finish").actions


def _resited(session):
    """Contrast shows an intrathecal tip, named so; the needle is taken out, re-sited on the expert path and the
    injection repeated under DSA, named, then checked on AP."""
    script = Script(session).view(0).view(1)
    wrong = intrathecal_path(session)
    script.place(wrong.entry, wrong.direction).advance_to(wrong.depth_mm).view(2).contrast(1.0).read()
    right = plan_trajectory(session.tracer, session.target, session.spec)
    script.place(right.entry, right.direction).view(1).advance_to(right.depth_mm).view(2)
    return script.contrast(1.0).read().view(0).add("finish").actions


def _status(report: Report) -> dict[str, str]:
    return {item.key: item.status for item in report.checklist}


@pytest.mark.parametrize("scenario_id", CASES)
def test_the_expert_completes_the_checklist_and_rates_highest(graded, scenario_id):
    _, expert = graded(scenario_id, expert_log)
    assert [item.key for item in expert.checklist] == list(CHECKLISTS[expert.procedure])
    assert 12 <= len(expert.checklist) <= 13
    assert _status(expert) == {key: "done" for key in CHECKLISTS[expert.procedure]}
    assert expert.global_rating.total == expert.global_rating.maximum == 35
    for other in (novice_log, _blind, _live_throughout):
        report = graded(scenario_id, other)[1]
        assert report.global_rating.total < expert.global_rating.total, other.__name__
        assert checklist_points(report.checklist) < checklist_points(expert.checklist), other.__name__


@pytest.mark.parametrize("scenario_id", CASES)
def test_the_novice_misses_what_it_skipped(graded, scenario_id):
    """The novice squares the level, takes the trajectory and depth views, but injects on a single pulse
    20 s later, never tests loss of resistance and redirects four times (attempts.novice_log)."""
    _, novice = graded(scenario_id, novice_log)
    status = _status(novice)
    assert status["contrast_live"] == "not_done"
    assert status["few_passes"] != "done"
    assert status.get("loss_of_resistance", "not_done") == "not_done"
    assert {status[k] for k in ("level_squared", "trajectory_view", "depth_view_early", "depth_confirmed")} == {"done"}
    rating = {item.key: item.score for item in novice.global_rating.items}
    assert rating["economy_of_imaging"] == 1 and rating["economy_of_motion"] <= 2 and rating["overall"] <= 3


@pytest.mark.parametrize("scenario_id", CASES)
def test_a_blind_injection_misses_every_imaging_step(graded, scenario_id):
    _, blind = graded(scenario_id, _blind)
    status = _status(blind)
    assert {status[k] for k in IMAGING_ITEMS} == {"not_done"}
    assert status["expected_pattern"] == "not_done"  # nobody saw where the contrast went
    rating = {item.key: item.score for item in blind.global_rating.items}
    # Radiation spared is not skill: the best economy of imaging, the worst use of it; a critical event.
    keys = ("economy_of_imaging", "use_of_imaging", "respect_for_tissue", "overall")
    assert [rating[k] for k in keys] == [5, 1, 1, 1]


def test_continuous_screening_is_not_intermittent_imaging(graded):
    _, live = graded("tfesi-default", _live_throughout)
    item = next(i for i in live.checklist if i.key == "imaged_advance")
    assert item.status == "partly" and "live run" in item.detail
    assert all(e.action == "fluoro_shot" for e in item.evidence)
    assert next(i.score for i in live.global_rating.items if i.key == "economy_of_imaging") == 1


def test_an_unsafe_attempt_rates_lowest_on_judgement_with_its_event_as_evidence(graded):
    log, unsafe = graded("tfesi-default", _intrathecal)
    _, novice = graded("tfesi-default", novice_log)
    rating = {item.key: item for item in unsafe.global_rating.items}
    # The scale is a profile, not a rank: the hands were economical, the judgement failed (tissue,
    # placement and overall at 1, under the clumsy but safe novice's).
    novice_rating = {item.key: item.score for item in novice.global_rating.items}
    for key in ("respect_for_tissue", "needle_placement", "overall"):
        assert rating[key].score == 1 < novice_rating[key], key
    tissue = rating["respect_for_tissue"]
    assert "Intrathecal injection" in tissue.reason and "dural sac" in rating["needle_placement"].reason
    assert any(e.action == "inject_contrast" for e in tissue.evidence)
    pattern = next(i for i in unsafe.checklist if i.key == "expected_pattern")
    assert pattern.status == "not_done" and "intrathecal" in pattern.detail


def test_an_abandoned_attempt_neither_flows_nor_passes_the_checklist(graded):
    def abandoned(session):
        return Script(session).view(1).add("finish").actions

    _, report = graded("tfesi-default", abandoned)
    status = _status(report)
    assert status["few_passes"] == status["contrast_live"] == status["level_squared"] == "not_done"
    assert checklist_points(report.checklist) <= 1.0
    rating = {item.key: item.score for item in report.global_rating.items}
    assert rating["flow"] == rating["needle_placement"] == rating["economy_of_motion"] == 1 and rating["overall"] <= 2


def test_a_wrong_pattern_followed_by_re_siting_is_good_practice(graded):
    log, report = graded("tfesi-default", _resited)
    pattern = next(i for i in report.checklist if i.key == "expected_pattern")
    first, last = [n for n, a in enumerate(log, start=1) if a["type"] == "inject_contrast"]
    assert pattern.status == "done" and "re-siting" in pattern.detail
    assert [e.step for e in pattern.evidence if e.action == "inject_contrast"] == [first, last]
    assert "intrathecal" in pattern.evidence[0].note and "epidural" in pattern.evidence[1].note
    assert _status(report)["few_passes"] == "done"  # one re-puncture, within the tolerance


@pytest.mark.parametrize("make_log", [expert_log, novice_log, _blind, _live_throughout, _intrathecal, _resited],
                         ids=lambda f: f.__name__.strip("_"))
def test_every_piece_of_evidence_points_at_a_real_step(graded, make_log):
    log, report = graded("tfesi-default", make_log)
    items = report.checklist + report.global_rating.items
    evidence = [e for item in items for e in item.evidence]
    assert evidence
    for e in evidence:
        assert 1 <= e.step <= len(log)
        assert (e.action, e.t) == (log[e.step - 1]["type"], log[e.step - 1]["t"])
    by_key = {item.key: item for item in report.checklist}
    # An item about an image shows a shot; the depth item agrees with the metric the grade uses.
    for key in ("level_squared", "trajectory_view", "depth_confirmed"):
        if by_key[key].status == "done":
            assert by_key[key].evidence[0].action == "fluoro_shot"
    assert (by_key["depth_confirmed"].status == "done") == report.metrics.depth_view_checked


def test_the_report_json_round_trips_and_old_reports_still_read(graded):
    """The web store keeps the report as JSON: the checklist and rating come back field for field, and
    a report stored before they existed still validates (empty checklist, no rating)."""
    _, report = graded("tfesi-default", novice_log)
    stored = json.loads(report.model_dump_json())
    assert Report.model_validate(stored) == report
    assert checklist_rows(Report.model_validate(stored)) == checklist_rows(report)
    older = {k: v for k, v in stored.items() if k not in ("checklist", "global_rating")}
    old = Report.model_validate(older)
    assert old.checklist == [] and old.global_rating is None and rating_rows(old) == []


def test_the_rows_read_as_a_person_reads_them(graded):
    _, report = graded("tfesi-default", novice_log)
    rows = checklist_rows(report)
    assert len(rows) == len(report.checklist)
    live = next(i for i, item in enumerate(report.checklist) if item.key == "contrast_live")
    step, status, detail, evidence = rows[live]
    assert step.startswith(f"{len(rows) - 5}. Contrast injected under live") and status == "not done"
    assert evidence.startswith("step ") and " s: " in evidence and "_" not in evidence
    assert [row[1] for row in rating_rows(report)][-1].endswith(" / 5")


@pytest.mark.parametrize("scenario_id", CASES)
def test_the_level_item_names_the_ap_the_level_is_counted_on(graded, anatomy_for, scenario_id):
    """The level is counted on the target's first view: an AP squared to the endplate, or for an interlaminar target
    the AP tilted caudally to open the window (clinical.md §2.1), on which the endplates are not single lines. The
    item's words and its detail name that view (the interlaminar item said "endplate squared" on the tilted AP)."""
    from simulator.session.fold import Session

    _, expert = graded(scenario_id, expert_log)
    view = Session(LIBRARY[scenario_id], anatomy_for(LIBRARY[scenario_id])).target.views[0].name
    item = next(item for item in expert.checklist if item.key == "level_squared")
    if "window open" in view:
        assert "tilted caudally to open its interlaminar window" in item.step and "squared" not in item.step, view
    else:
        assert "squared" in view and "endplate squared" in item.step, view
    assert item.step.split(" on ", 1)[1].split(" before")[0] in item.detail
