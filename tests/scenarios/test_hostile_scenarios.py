"""Hostile scenario files: whatever a field holds, validation returns a Scenario or a SpinesimError that
names the file (and the line and field), never anything else."""

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anatomy_models.errors import MAX_MESSAGE_PART_CHARS, SpinesimError
from scenarios.schema import Scenario, scenario_from_yaml
from tests.fuzzing import examples

BASE = {"id": "fuzz", "title": "t", "brief": "b", "anatomy": {"builtin": "default"},
        "procedure": "facet_intra_articular", "target": {"level": "L4-L5", "side": "left"},
        "needle": {"kind": "quincke", "gauge": 22, "length_in": 3.5}}
FIELDS = [("id",), ("seed",), ("title",), ("target", "level"), ("target", "side"), ("needle", "gauge"),
          ("needle", "length_in"), ("anatomy",), ("anatomy", "stored"), ("anatomy", "path"), ("anatomy", "images"),
          ("anatomy", "generator"), ("anatomy", "spacing_mm"), ("start", "carm"), ("start", "probe"),
          ("limits", "shots"), ("rubric", "weights"), ("hints",), ("imaging", "dsa"), ("unknown",)]
_leaves = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=30)
           | st.sampled_from(["../../etc", "[/]", "[red]x", "\x00", "~", "/", "L4-L5", "1e400", "bmi", ".nan"]))
_values = st.recursive(_leaves, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.sampled_from(["bmi", "seed", "x", "primary_deg", "setup", "position"]),
                                         inner, max_size=3), max_leaves=12)


def _with(base: dict, field: tuple, value) -> dict:
    changed = {key: dict(value) if isinstance(value, dict) else value for key, value in base.items()}
    node = changed
    for part in field[:-1]:
        node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
    node[field[-1]] = value
    return changed


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(FIELDS), _values), min_size=1, max_size=3))
def test_fuzz_scenario_fields_validate_or_are_a_spinesim_error(tmp_path, changes):
    data = BASE
    for field, value in changes:
        data = _with(data, field, value)
    path = tmp_path / "fuzz.yaml"
    try:
        result = scenario_from_yaml(yaml.safe_dump(data), path=path)
    except SpinesimError as error:
        assert str(error).startswith(str(path)) and len(str(error)) < 3 * MAX_MESSAGE_PART_CHARS
        return
    assert isinstance(result, Scenario)


@pytest.mark.parametrize("seed", [2**70, 2**32, -1, True, 3.5])
def test_a_generator_seed_outside_32_bits_is_refused_naming_the_field(tmp_path, seed):
    path = tmp_path / "case.yaml"
    text = yaml.safe_dump(_with(BASE, ("anatomy",), {"generator": {"seed": seed}}))
    with pytest.raises(SpinesimError, match=r"case\.yaml: line \d+, field 'anatomy\.generator'.*seed.*0\.\.2\*\*32-1"):
        scenario_from_yaml(text, path=path)
