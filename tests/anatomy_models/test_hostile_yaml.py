"""Hostile YAML and over-long messages: limits refused fast, naming the file, the line and why."""

import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anatomy_models.errors import MAX_MESSAGE_PART_CHARS, MAX_QUOTED_VALUE_CHARS, SpinesimError, quoted, shorten
from anatomy_models.yaml_source import MAX_YAML_CHARS, MAX_YAML_DEPTH, parse_yaml, read_yaml_file
from tests.fuzzing import examples


def _billion_laughs(levels: int = 12, width: int = 10) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _refused(text: str, *, path: str = "case.yaml") -> str:
    with pytest.raises(SpinesimError) as raised:
        parse_yaml(text, path=path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and len(message) < 2 * MAX_MESSAGE_PART_CHARS
    return message


def test_billion_laughs_is_refused_at_once_naming_the_line():
    start = time.perf_counter()
    message = _refused(_billion_laughs())
    assert time.perf_counter() - start < 1.0
    assert "line 5" in message and "expands to more than" in message


def test_an_alias_inside_its_own_anchor_is_refused():
    assert "refers to the value that contains it" in _refused("a: &a [1, *a]\n")


@pytest.mark.parametrize("text", ["[" * 100_000, "- " * 5_000 + "x",
                                  "a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 200))])
def test_deep_nesting_is_refused_without_recursion(text):
    assert f"nested deeper than {MAX_YAML_DEPTH} levels" in _refused(text)


def test_nesting_through_aliases_counts():
    lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 3 * MAX_YAML_DEPTH)]
    assert "through its aliases" in _refused("\n".join(lines))


def test_duplicate_keys_are_refused_naming_both_lines():
    message = _refused("id: one\ntitle: t\nid: two\n")
    assert "line 3, column 1" in message and "duplicate key 'id' (first given on line 1)" in message


def test_a_merge_key_and_the_keys_it_overrides_are_fine():
    _, data = parse_yaml("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n")
    assert data["use"] == {"x": 1, "y": 3}


@pytest.mark.parametrize("text, expected", [
    ("seed: " + "1" * 5000, "an integer of 5000 characters"),
    ("when: 2024-13-45", "month must be in 1..12"),
    ("a: \x00", "unacceptable character"),
    ("a: !!python/object/apply:os.system [ls]", "could not determine a constructor"),
    ("? [a, b]\n: 1", "unhashable key"),
])
def test_values_that_cannot_be_built_are_refused(text, expected):
    assert expected in _refused(text)


def test_too_long_text_and_too_big_files_are_refused_before_parsing(tmp_path):
    assert "more than the" in _refused("#" * (MAX_YAML_CHARS + 1))
    big = tmp_path / "big.yaml"
    with big.open("wb") as file:
        file.truncate(4 * MAX_YAML_CHARS + 1)
    with pytest.raises(SpinesimError, match=r"big\.yaml: the file is \d+ bytes, too big"):
        read_yaml_file(big)


def test_messages_cut_long_values_in_the_middle():
    error = SpinesimError("bad value " + "v" * 10_000_000, path="p" * 5000 + "/case.yaml", where="line 1")
    assert len(str(error)) < 3 * MAX_MESSAGE_PART_CHARS
    assert "characters cut" in error.problem and error.path.endswith("/case.yaml")
    assert shorten("kept") == "kept"
    deep: list = []
    for _ in range(10_000):
        deep = [deep]
    assert len(quoted("x" * 10_000_000)) <= MAX_QUOTED_VALUE_CHARS and len(quoted(deep)) < 40


def test_a_hint_ending_in_a_question_mark_is_not_followed_by_a_full_stop():
    assert str(SpinesimError("too big", hint="is this the right file?")).endswith("Is this the right file?")


_yaml_characters = st.sampled_from(list("abc:-[]{}&*!|>'\"#?,%@`\n\t 019.~<") + ["\x00", "é", "\ufeff"])


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(_yaml_characters, max_size=200))
def test_fuzz_yaml_text_parses_or_is_a_spinesim_error(text):
    try:
        parse_yaml(text, path="fuzz.yaml")
    except SpinesimError as error:
        assert str(error).startswith("fuzz.yaml")


_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                       lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                       max_leaves=40)


@settings(max_examples=examples(100), deadline=None)
@given(_values)
def test_fuzz_any_dumped_value_reads_back(value):
    _, data = parse_yaml(yaml.safe_dump({"v": value}), path="fuzz.yaml")
    assert data["v"] == value or "nan" in repr(value)
