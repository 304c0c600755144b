import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anatomy_models.errors import SpinesimError
from scenarios.poses import CArmPose, ProbePose
from simulator.session.actions import LogWriter, PlaceProbe, SetCarm, action_record, parse_action, read_log

ACTIONS = [
    {"type": "set_carm", "t": 0.0, "primary_deg": 25.0, "secondary_deg": -8.0, "setup": "oblique"},
    {"type": "fluoro_shot", "t": 1.5},
    {"type": "place_needle", "t": 4.0, "entry": [10.0, 45.0, -12.0], "aim": [5.0, 5.5, -3.0]},
    {"type": "advance", "t": 6.0, "mm": 20.0},
    {"type": "check_loss_of_resistance", "t": 8.0},
    {"type": "withdraw", "t": 9.0, "mm": 2.5},
    {"type": "redirect", "t": 10.0, "direction": [0.0, -1.0, 0.1]},
    {"type": "inject_contrast", "t": 12.0, "ml": 1.0},
    {"type": "inject_medication", "t": 12.5, "ml": 2.0, "agent": "steroid_nonparticulate"},
    {"type": "place_probe", "t": 13.0, "position": [0, 45, 0], "direction": [0, -1, 0], "lateral": [1, 0, 0]},
    {"type": "place_probe", "t": 14.0, "position": [0, 45, 0], "direction": [0, -1, 0], "lateral": [1, 0, 0],
     "kind": "linear", "depth_mm": 50.0, "gain_db": -6.0, "frequency_mhz": 12.0, "view": "articular"},
    {"type": "show_hint", "t": 15.0},
    {"type": "finish", "t": 20.0},
]


@pytest.mark.parametrize("record", ACTIONS)
def test_every_action_round_trips_through_json(record):
    action = parse_action(record)
    assert parse_action(json.loads(json.dumps(action_record(action)))) == action


@pytest.mark.parametrize("record", [r for r in ACTIONS if r["type"] in ("set_carm", "place_probe")]
                         + [{"type": "set_carm", "t": 2.0, "primary_deg": -30.0, "isocenter": [1.5, -2.0, 40.0]}])
def test_a_device_action_is_its_pose_at_a_time(record):
    action = parse_action(record)
    pose = action.pose
    assert isinstance(pose, CArmPose if record["type"] == "set_carm" else ProbePose)
    rebuilt = {"type": record["type"], "t": record["t"], **pose.to_json()}
    assert parse_action(rebuilt) == action and action_record(parse_action(rebuilt)) == action_record(action)


@pytest.mark.parametrize("action, pose", [(SetCarm, CArmPose), (PlaceProbe, ProbePose)])
def test_a_device_action_carries_exactly_its_poses_fields(action, pose):
    carried = {name: (field.annotation, field.default, field.metadata) for name, field in action.model_fields.items()
               if name not in ("t", "type")}
    assert carried == {name: (field.annotation, field.default, field.metadata) for name, field in pose.model_fields.items()}


@pytest.mark.parametrize("record, message", [
    ({"type": "advance", "t": 1, "mm": math.nan}, "field 'mm': must be a finite number"),
    ({"type": "advance", "t": 1, "mm": -5}, "field 'mm': must be greater than 0 (got -5)"),
    ({"type": "advance", "t": -1, "mm": 5}, "field 't'"),
    ({"type": "advance", "t": 1}, "missing field 'mm'"),
    ({"type": "advance", "t": 1, "mm": 5, "speed": 3}, "unknown field 'speed'"),
    ({"type": "inject_medication", "t": 1, "ml": 2, "agent": "morphine"}, "field 'agent': must be 'local_anaesthetic'"),
    ({"type": "inject_medication", "t": 1, "ml": 2}, "missing field 'agent'"),
    ({"type": "teleport", "t": 1}, "unknown action 'teleport'. Use one of: place_needle"),
    ({"t": 1}, "the action has no 'type'"),
    ("advance 5", "must be a JSON object"),
    ({"type": "place_needle", "t": 1, "entry": [0, 0, 0]}, "either 'direction'"),
    ({"type": "place_needle", "t": 1, "entry": [0, 0, 0], "direction": [0, 0, 0]}, "zero vector"),
    ({"type": "place_needle", "t": 1, "entry": [0, math.inf, 0], "direction": [0, 1, 0]}, "finite"),
    ({"type": "fluoro_shot", "t": 1, "mode": "cine"}, "field 'mode'"),
    ({"type": "place_probe", "t": 1, "position": [0, 0, 0], "direction": [0, -1, 0], "lateral": [1, 0, 0],
      "depth_mm": 5}, "field 'depth_mm': must be greater than or equal to 10"),
    ({"type": "place_probe", "t": 1, "position": [0, 0, 0], "direction": [0, -1, 0], "lateral": [1, 0, 0],
      "gain_db": math.nan}, "field 'gain_db': must be a finite number"),
    ({"type": "place_probe", "t": 1, "position": [0, 0, 0], "direction": [0, -1, 0], "lateral": [1, 0, 0],
      "kind": "phased"}, "field 'kind'"),
    ({"type": "show_hint", "t": 1, "number": 2}, "unknown field 'number'"),
])
def test_nonsense_actions_are_refused_with_a_clear_message(record, message):
    with pytest.raises(SpinesimError) as caught:
        parse_action(record, path="attempt.jsonl", where="line 3")
    assert message in str(caught.value)
    assert str(caught.value).startswith("attempt.jsonl: line 3: ")


def _write(path, header=True):
    writer = LogWriter(path, {"scenario": "ilesi-default", "seed": 1} if header else None)
    for record in ACTIONS:
        writer.append(action_record(parse_action(record)))
    writer.close()
    return path.read_bytes()


def test_a_log_reads_back_with_its_header(tmp_path):
    _write(tmp_path / "log.jsonl")
    contents = read_log(tmp_path / "log.jsonl")
    assert contents.header == {"spinesim_log": 1, "scenario": "ilesi-default", "seed": 1}
    assert contents.actions == [parse_action(r) for r in ACTIONS]
    assert contents.truncated is None


@settings(max_examples=80, deadline=None)
@given(cut=st.floats(0.0, 1.0))
def test_a_log_cut_anywhere_loads_up_to_its_last_whole_line(tmp_path_factory, cut):
    path = tmp_path_factory.mktemp("cut") / "log.jsonl"
    data = _write(path)
    position = int(cut * len(data))
    path.write_bytes(data[:position])
    contents = read_log(path)
    whole_lines = data[:position].count(b"\n")
    expected = max(whole_lines - 1, 0)  # the header is line 1
    partial = data[:position].rsplit(b"\n", 1)[-1]
    if partial and whole_lines >= 1:
        # A cut line is dropped and reported (unless the cut fell exactly before its newline).
        complete = position < len(data) and data[position:position + 1] == b"\n"
        assert (contents.truncated is None) == complete
        expected += complete
    assert len(contents.actions) == expected
    assert contents.actions == [parse_action(r) for r in ACTIONS[:expected]]
    assert contents.whole_bytes == (position if contents.truncated is None and partial else data[:position].rfind(b"\n") + 1)


def test_appending_after_a_record_that_lost_only_its_newline(tmp_path):
    path = tmp_path / "log.jsonl"
    data = _write(path)
    path.write_bytes(data[:-1])
    contents = read_log(path)
    assert contents.truncated is None and len(contents.actions) == len(ACTIONS)
    writer = LogWriter(path, keep_bytes=contents.whole_bytes)
    writer.append({"type": "finish", "t": 21.0})
    writer.close()
    assert path.read_bytes() == data + b'{"type":"finish","t":21.0}\n'


def test_a_cut_line_can_be_resumed_cleanly(tmp_path):
    path = tmp_path / "log.jsonl"
    data = _write(path)
    path.write_bytes(data[:-7])
    contents = read_log(path)
    assert contents.truncated and f"line {len(ACTIONS) + 1} is cut short" in contents.truncated  # + the header
    writer = LogWriter(path, keep_bytes=contents.whole_bytes)
    writer.append(action_record(parse_action(ACTIONS[-1])))
    writer.close()
    assert read_log(path).actions == [parse_action(r) for r in ACTIONS]
    assert path.read_bytes() == data


def test_a_damaged_line_in_the_middle_is_an_error_naming_it(tmp_path):
    path = tmp_path / "log.jsonl"
    lines = _write(path, header=False).split(b"\n")
    lines[3] = b"{not json"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(SpinesimError, match="line 4: not a JSON record"):
        read_log(path)
    lines[3] = b'{"type": "advance", "t": 6, "mm": -1}'
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(SpinesimError, match="line 4: advance: field 'mm'"):
        read_log(path)
    (tmp_path / "v9.jsonl").write_text('{"spinesim_log": 9}\n')
    with pytest.raises(SpinesimError, match="version 9"):
        read_log(tmp_path / "v9.jsonl")
    with pytest.raises(SpinesimError, match="cannot read"):
        read_log(tmp_path / "missing.jsonl")
