"""Hostile action logs: every bad line is a SpinesimError naming the file and the line, never a crash,
a hang, an echo of the whole line, or a value silently accepted."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anatomy_models.errors import MAX_MESSAGE_PART_CHARS, SpinesimError
from simulator.session.actions import (ACTION_TYPES, MAX_JSON_DEPTH, MAX_LOG_LINE_BYTES, LogWriter, parse_action,
                                       read_log)
from tests.fuzzing import examples

HEADER = b'{"spinesim_log": 1, "scenario": "ilesi-default", "seed": 7}\n'
FINISH = b'{"type": "finish", "t": 9}\n'


def _write(tmp_path, data: bytes):
    path = tmp_path / "attempt.jsonl"
    path.write_bytes(data)
    return path


def _refused(tmp_path, data: bytes, expected: str, *, line: int = 1) -> str:
    path = _write(tmp_path, data)
    with pytest.raises(SpinesimError) as raised:
        read_log(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: line {line}: ") and expected in message
    assert len(message) < 2 * MAX_MESSAGE_PART_CHARS
    return message


def test_a_byte_order_mark_is_accepted_and_appending_continues_after_it(tmp_path):
    path = _write(tmp_path, b"\xef\xbb\xbf" + HEADER + b'{"type": "advance", "t": 1, "mm": 5}\n')
    contents = read_log(path)
    assert contents.header["seed"] == 7 and contents.actions[0].mm == 5.0
    assert contents.whole_bytes == path.stat().st_size
    writer = LogWriter(path, keep_bytes=contents.whole_bytes)
    writer.append({"type": "finish", "t": 2})
    writer.close()
    assert [a.type for a in read_log(path).actions] == ["advance", "finish"]


@pytest.mark.parametrize("data, expected", [
    (b'{"type": "x' + b"A" * 10_000_000 + b'"}\n' + FINISH, f"more than the {MAX_LOG_LINE_BYTES} an action may take"),
    (b"[" * 60_000 + b"\n" + FINISH, f"nest deeper than {MAX_JSON_DEPTH} levels"),
    (b'{"type": "advance", "t": ' + b"1" * 5000 + b', "mm": 5}\n' + FINISH, "a number cannot be read"),
    (b'{"type": "advance", "t": NaN, "mm": 5}\n' + FINISH, "NaN is not a number"),
    (b'{"type": "advance", "t": -Infinity, "mm": 5}\n', "-Infinity is not a number"),
    (b'{"type": "advance", "t": 1e400, "mm": 5}\n', "field 't': must be a finite number"),
    (b'{"type": "advance", "t": true, "mm": 5}\n', "field 't': must be a number, not true"),
    (b'{"type": "advance", "t": 1, "mm": "5"}\n', "field 'mm': must be a number, not '5'"),
    (b'{"type": "advance", "t": 1e12, "mm": 5}\n', "field 't': must be less than or equal to"),
    (b'{"type": "place_needle", "t": 1, "entry": [1e300, 0, 0], "aim": [0, 0, 0]}\n', "field 'entry.0'"),
    (b'{"type": "place_needle", "t": 1, "entry": [0, false, 0], "aim": [0, 0, 0]}\n', "'entry.1': must be a number"),
    (b'{"type": "place_needle", "t": 1, "entry": [0, 0, 0], "aim": [0, 0, 1], "depth_mm": 1e9}\n', "'depth_mm'"),
    (b'{"type": "set_carm", "t": 1, "primary_deg": true}\n', "'primary_deg': must be a number, not true"),
    (b'{"type": "set_carm", "t": 1, "setup": 5}\n', "field 'setup': must be a valid string"),
    (b'{"type": "place_probe", "t": 1, "position": [0, 0, 0], "direction": [0, 1, 0], "lateral": [1, 0, 0], '
     b'"gain_db": false}\n', "'gain_db': must be a number, not false"),
    (b'{"type": "[/]", "t": 1}\n', "unknown action '[/]'"),
])
def test_bad_values_are_refused_naming_the_line_and_field(tmp_path, data, expected):
    _refused(tmp_path, data, expected)


@pytest.mark.parametrize("header, expected", [
    (b'{"spinesim_log": 1, "scenario": "ilesi-default", "seed": 1e100}', "field 'seed': must be a valid integer"),
    (b'{"spinesim_log": 1, "scenario": "ilesi-default", "seed": 3.5}', "field 'seed': must be a valid integer"),
    (b'{"spinesim_log": 1, "scenario": "ilesi-default", "seed": 100000000000000000000}', "less than or equal to"),
    (b'{"spinesim_log": 1, "scenario": "ilesi-default", "seed": -1}', "field 'seed'"),
    (b'{"spinesim_log": 1, "scenario": "ilesi-default", "seed": true}', "field 'seed'"),
    (b'{"spinesim_log": 1, "scenario": "../../elsewhere/case.yaml", "seed": 1}', "field 'scenario'"),
    (b'{"spinesim_log": 1, "scenario": "ilesi-default", "seed": 1, "extra": 2}', "unknown field 'extra'"),
    (b'{"spinesim_log": true}', "log format version True is not supported"),
    (b'{"spinesim_log": 2}', "log format version 2 is not supported"),
])
def test_a_bad_header_is_refused(tmp_path, header, expected):
    _refused(tmp_path, header + b"\n" + FINISH, expected)


def test_a_cut_last_line_is_still_tolerated(tmp_path):
    contents = read_log(_write(tmp_path, HEADER + FINISH + b'{"type": "adv'))
    assert len(contents.actions) == 1 and "cut short" in contents.truncated


_numbers = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                     st.text(max_size=5), st.none())
_points = st.lists(_numbers, max_size=4)
_records = st.fixed_dictionaries({"type": st.sampled_from(ACTION_TYPES + ("teleport",)), "t": _numbers},
                                 optional={"mm": _numbers, "ml": _numbers, "seconds": _numbers,
                                           "mode": st.text(max_size=6), "entry": _points, "aim": _points,
                                           "primary_deg": _numbers,
                                           "setup": _numbers, "depth_mm": _numbers})


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_records)
def test_fuzz_records_parse_or_are_a_spinesim_error(record):
    try:
        parse_action(record)
    except SpinesimError:
        return
    for name, value in record.items():
        assert not isinstance(value, bool), name
        if isinstance(value, float):
            assert value == value and abs(value) != float("inf"), name


_lines = st.one_of(st.binary(max_size=60), _records.map(lambda r: json.dumps(r).encode()),
                   st.sampled_from([HEADER.strip(), b"\xef\xbb\xbf", b"[[[[[[[[[[[[[[[[[[[[", b'{"a": {"b": {']))


@settings(max_examples=examples(150), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(_lines, max_size=6))
def test_fuzz_log_files_read_or_are_a_spinesim_error(tmp_path, lines):
    path = _write(tmp_path, b"\n".join(lines))
    try:
        contents = read_log(path)
    except SpinesimError as error:
        assert str(error).startswith(str(path))
        return
    assert contents.whole_bytes <= path.stat().st_size
