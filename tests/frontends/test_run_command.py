import json
import re

import pytest

from anatomy_models.store import save_anatomy
from frontends.cli import main
from scoring.grade import COVERAGE_GOOD
from simulator.session.actions import read_log
from simulator.session.words import event_title
from tests.simulator.anatomy_phantoms import mini_spine


@pytest.fixture(scope="module")
def phantom_name():
    save_anatomy(mini_spine(), "mini-spine-phantom")
    return "mini-spine-phantom"


def test_expert_actions_are_written_then_replayed(tmp_path, capsys, phantom_name):
    expert = tmp_path / "expert.jsonl"
    assert main(["run", "facet-default", "--anatomy", phantom_name, "--expert", "-o", str(expert)]) == 0
    assert "expert actions" in capsys.readouterr().out
    assert read_log(expert).actions[-1].type == "finish"
    log = tmp_path / "attempt.jsonl"
    assert main(["run", "facet-default", "--anatomy", phantom_name, "--actions", str(expert), "--log", str(log)]) == 0
    printed = capsys.readouterr().out
    # Events in clinical words (simulator.session.words), not the engine's identifiers.
    assert "on target" in printed and "into the joint" in printed and "unsafe events" in printed
    assert "target_reached" not in printed and "joint_entered" not in printed
    assert read_log(log).header["scenario"] == "facet-default"
    assert main(["run", "facet-default", "--anatomy", phantom_name, "--actions", str(expert), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["state"]["in_target"] and result["state"]["finished"]
    assert not [e for e in result["events"] if e["severity"] == "unsafe"]


def test_bad_actions_are_reported_with_their_line(tmp_path, capsys, phantom_name):
    actions = tmp_path / "bad.jsonl"
    actions.write_text('{"type": "fluoro_shot", "t": 1}\n{"type": "advance", "t": 2, "mm": 5}\n{"type": "fin')
    assert main(["run", "ilesi-default", "--anatomy", phantom_name, "--actions", str(actions)]) == 1
    captured = capsys.readouterr()
    assert "line 3 is cut short" in captured.out
    assert f"{actions}: line 2: advance: there is no needle in the patient" in captured.err.replace("\n", "")
    assert main(["run", "ilesi-default", "--anatomy", phantom_name]) == 1
    assert "give either --actions FILE or --expert" in capsys.readouterr().err


@pytest.mark.slow
def test_images_are_written_for_every_shot_and_reproduce(tmp_path, capsys, phantom_name):
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        assert main(["run", "tfesi-default", "--anatomy", phantom_name, "--expert", "--images", str(folder)]) == 0
    shots = sum(1 for line in capsys.readouterr().out.splitlines() if f" {event_title('fluoro_shot')} " in line) // 2
    names = sorted(p.name for p in first.glob("*.png"))
    assert len(names) == shots and any(name.endswith("-dsa.png") for name in names)
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_a_logged_attempt_replays_with_its_seed_and_scenario_checked(tmp_path, capsys, phantom_name):
    expert, log = tmp_path / "expert.jsonl", tmp_path / "attempt.jsonl"
    assert main(["run", "ilesi-default", "--anatomy", phantom_name, "--expert", "-o", str(expert)]) == 0
    assert main(["run", "ilesi-default", "--anatomy", phantom_name, "--actions", str(expert), "--log", str(log)]) == 0
    capsys.readouterr()
    assert main(["run", "ilesi-default", "--anatomy", phantom_name, "--actions", str(log), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"]["in_target"]
    assert main(["run", "facet-default", "--anatomy", phantom_name, "--actions", str(log)]) == 1
    assert "attempt at scenario 'ilesi-default', not 'facet-default'" in capsys.readouterr().err


def test_an_ablation_runs_from_the_command_line_with_its_stimulation_and_lesions(tmp_path, capsys, small_spine):
    save_anatomy(small_spine, "rfa-spine")
    expert = tmp_path / "rfa.jsonl"
    assert main(["run", "rfa-l4-medial-branch-left", "--anatomy", "rfa-spine", "--expert", "-o", str(expert)]) == 0
    capsys.readouterr()
    assert main(["run", "rfa-l4-medial-branch-left", "--anatomy", "rfa-spine", "--actions", str(expert)]) == 0
    printed = capsys.readouterr().out
    assert "the multifidus twitches" in printed and "lesion at 80 °C for 90 s" in printed
    # Two lesions covering the nerve's course to full marks. Not 100%: on the merged patient the iliac crest
    # lies across the 42.5 deg caudal-oblique line to the L5 SAP-TP groove, so the expert's cannula passes
    # beside it 10 deg off that line and its lesions miss the course's far end (93% measured).
    covered = re.search(r"2, (\d+)% of the nerve's course covered", printed)
    assert covered and int(covered.group(1)) >= 100 * COVERAGE_GOOD, covered
