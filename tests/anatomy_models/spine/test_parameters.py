import pytest

from anatomy_models.errors import SpinesimError
from anatomy_models.spine import GENERATOR_VERSION, SpineParameters


@pytest.mark.parametrize("field, value, message", [
    ("bmi", 10, "field 'bmi': must be between 16 and 60"),
    ("bmi", "fat", "field 'bmi'"),
    ("spacing_mm", 0.7, "field 'spacing_mm': must be one of 0.5, 1, 2 mm"),
    ("sex", "other", "field 'sex': must be one of male, female"),
    ("transitional", "L6", "field 'transitional'"),
    ("conus_level", "L4", "field 'conus_level'"),
    ("seed", -1, "field 'seed': must be a non-negative integer"),
    ("bowel_gas", "yes", "field 'bowel_gas'"),
    ("degeneration", 4, "field 'degeneration': must be between 0 and 3"),
])
def test_bad_values_name_the_field_and_the_range(field, value, message):
    with pytest.raises(SpinesimError, match=message):
        SpineParameters(**{field: value})


def test_unknown_parameters_are_refused_with_the_known_ones():
    with pytest.raises(SpinesimError, match="unknown spine parameter.*bmx.*Known: .*bmi"):
        SpineParameters.from_mapping({"bmx": 30})


def test_cache_key_covers_every_field_and_the_generator_version(monkeypatch):
    base = SpineParameters()
    assert base.cache_key() == SpineParameters(bmi=25).cache_key()
    keys = {SpineParameters(**{name: value}).cache_key() for name, value in
            [("bmi", 30), ("spacing_mm", 2.0), ("seed", 1), ("bowel_gas", False), ("sex", "female")]}
    assert len(keys) == 5 and base.cache_key() not in keys
    import anatomy_models.spine.parameters as parameters
    before = base.cache_key()
    monkeypatch.setattr(parameters, "GENERATOR_VERSION", GENERATOR_VERSION + 1)
    assert SpineParameters().cache_key() != before  # a new generator never reuses an old cache
