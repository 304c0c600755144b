"""The built-in patient through the store (generate-and-cache) and the command line."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from anatomy_models import spine
from anatomy_models.spine import SpineParameters, generate_spine
from anatomy_models.store import generated_anatomy, load_anatomy, spinesim_home
from frontends.cli import main


def _counted_generations(monkeypatch) -> list:
    """A list that grows by one at each generation of a patient from now on."""
    generations: list = []
    monkeypatch.setattr(spine, "generate_spine",
                        lambda *args, **kw: generations.append(1) or generate_spine(*args, **kw))
    return generations


def test_generated_anatomies_are_cached_by_parameter_hash(small_spine, monkeypatch):
    params = SpineParameters(spacing_mm=2.0)
    assert small_spine.directory == spinesim_home() / "generated" / params.cache_key()
    generations = _counted_generations(monkeypatch)
    again = generated_anatomy(params)
    assert generations == []  # a cache hit, not a new generation
    np.testing.assert_array_equal(again.labels.array, small_spine.labels.array)
    assert again.landmarks.keys() == small_spine.landmarks.keys()


def test_a_patient_asked_for_twice_at_once_is_generated_once_and_again_when_damaged(tmp_path, monkeypatch):
    """Two workstations starting the same new case: one generates, the other waits and loads its copy."""
    monkeypatch.setenv("SPINESIM_HOME", str(tmp_path))
    generations = _counted_generations(monkeypatch)
    params = SpineParameters(spacing_mm=2.0, field_of_view="spine")
    with ThreadPoolExecutor(2) as pool:
        first, other = pool.map(generated_anatomy, [params, params])
    assert len(generations) == 1
    np.testing.assert_array_equal(other.ct.array, first.ct.array)
    (first.directory / "anatomy.json").write_text("{ not json")
    second = generated_anatomy(params)
    np.testing.assert_array_equal(second.ct.array, first.ct.array)  # deterministic for the same seed


def test_default_is_the_default_parameters_at_1mm(spine_1mm):
    default = load_anatomy("default")
    assert default.directory == spine_1mm.directory
    assert default.metadata["parameters"] == SpineParameters().to_dict()


def test_cli_generate_stores_a_named_anatomy(capsys):
    assert main(["anatomy", "generate", "-o", "thin", "--bmi", "20", "--spacing", "2", "--fov", "spine",
                 "--param", "scoliosis_cobb_deg=12"]) == 0
    assert "Stored anatomy thin" in capsys.readouterr().out
    thin = load_anatomy("thin")
    assert thin.metadata["parameters"]["bmi"] == 20.0 and thin.metadata["parameters"]["scoliosis_cobb_deg"] == 12.0


def test_cli_generate_errors_are_one_line(capsys):
    assert main(["anatomy", "generate", "-o", "x", "--param", "lordosis"]) == 1
    assert "--param expects KEY=VALUE" in capsys.readouterr().err
    assert main(["anatomy", "generate", "-o", "x", "--bmi", "99"]) == 1
    assert "field 'bmi'" in capsys.readouterr().err
