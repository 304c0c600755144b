"""``spinesim score LOG`` and ``spinesim report LOG -o report.html`` on logged attempts."""

import json

import pytest

from frontends.cli import main
from scenarios.schema import load_scenario
from simulator.case.planner import expert_actions, plan_trajectory
from simulator.session.fold import Session


@pytest.fixture(scope="module")
def logged_attempt(tmp_path_factory, small_spine):
    """The expert attempt at ``mbb-default`` on the 2 mm spine, logged as a session logs it."""
    log = tmp_path_factory.mktemp("attempt") / "attempt.jsonl"
    session = Session(load_scenario("mbb-default"), small_spine, log_path=log)
    for action in expert_actions(session.scenario, session.target,
                                 plan_trajectory(session.tracer, session.target, session.spec)):
        session.apply(action)
    session.close()
    return log


def test_score_prints_the_grade_and_json(logged_attempt, capsys):
    capsys.readouterr()
    assert main(["score", str(logged_attempt), "--spacing", "2"]) == 0
    printed = capsys.readouterr().out
    assert "PASS" in printed and "feedback:" in printed
    assert "checklist: 13 of 13 steps" in printed and "global rating: 35 / 35" in printed
    assert main(["score", str(logged_attempt), "--spacing", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scenario_id"] == "mbb-default" and report["passed"] and report["grade"] >= 85


def test_a_log_without_a_scenario_needs_one(tmp_path, logged_attempt, capsys):
    bare = tmp_path / "bare.jsonl"
    bare.write_text("".join(logged_attempt.read_text().splitlines(keepends=True)[1:]))
    assert main(["score", str(bare)]) == 1
    assert "the log names no scenario" in capsys.readouterr().err
    assert main(["score", str(bare), "--scenario", "mbb-default", "--spacing", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"]


def test_an_action_that_does_not_replay_is_located_in_the_log(tmp_path, capsys):
    log = tmp_path / "bad.jsonl"
    log.write_text('{"spinesim_log": 1, "scenario": "mbb-default", "seed": 4}\n{"type": "advance", "t": 1, "mm": 5}\n')
    assert main(["score", str(log), "--spacing", "2"]) == 1
    assert f"{log}: line 2: advance: there is no needle in the patient" in capsys.readouterr().err


def test_report_writes_a_self_contained_page(logged_attempt, tmp_path, capsys):
    page = tmp_path / "report.html"
    assert main(["report", str(logged_attempt), "-o", str(page), "--spacing", "2", "--pixels", "128"]) == 0
    assert "grade" in capsys.readouterr().out
    text = page.read_text()
    assert text.count('src="data:image/jpeg;base64,') == 4 and '"meshes":[' in text
    assert "http://" not in text and "https://" not in text and "SpinesimViewer3D" in text
