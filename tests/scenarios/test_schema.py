import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml

from anatomy_models.errors import SpinesimError
from scenarios.schema import (PROCEDURES, SACRAL_PROCEDURES, library_scenarios, load_scenario, scenario_from_yaml,
                              scenario_json_schema)

GOOD = """\
id: test-case
title: A case
brief: Do the thing.
anatomy: {builtin: default}
procedure: transforaminal_epidural
target:
  level: L4-L5
  side: left
  approach: kambin
needle: {kind: quincke, gauge: 22, length_in: 3.5}
seed: 5
"""


def test_the_library_covers_every_procedure_at_several_levels_and_sides():
    library = library_scenarios()
    assert len(library) >= 10
    for procedure in PROCEDURES:
        cases = [s for s in library.values() if s.procedure == procedure]
        if procedure in SACRAL_PROCEDURES:
            # One level on the sacrum: its cases differ by the patient (habitus, a low-lying sac) and side.
            assert len({s.anatomy.model_dump_json() for s in cases}) >= 2, procedure
            sides = {"midline"} if procedure == "caudal_epidural" else {"left", "right"}
            assert {s.target.side for s in cases} == sides, procedure
            continue
        assert len({s.target.level or s.target.nerve for s in cases}) >= 2, procedure
        assert {s.target.side for s in cases} >= {"left", "right"}, procedure
    assert load_scenario("tfesi-default").needle.spec().length_mm == pytest.approx(88.9)
    for scenario in library.values():
        assert scenario.objectives and scenario.hints and scenario.patient.explanation, scenario.id
    assert len({s.seed for s in library.values()}) == len(library)


def test_the_library_has_the_teaching_variants():
    generated = {s.id: s.anatomy.spine_parameters() for s in library_scenarios().values() if s.anatomy.generator}
    variants = {
        "BMI 40 with the 5-inch needle": lambda s, p: p.bmi >= 40 and s.needle.spec().length_mm >= 127,
        "scoliosis": lambda s, p: p.scoliosis_cobb_deg >= 20,
        "degenerated L4-5 interlaminar": lambda s, p: p.degeneration >= 2.5 and s.target.level == "L4-L5"
        and s.procedure == "interlaminar_epidural",
        "Adamkiewicz in a left L1 transforaminal": lambda s, p: (p.adamkiewicz_level, p.adamkiewicz_side) == ("L1", "left")
        and (s.target.level, s.target.side) == ("L1-L2", "left") and s.imaging.dsa,
        "transitional L5": lambda s, p: p.transitional == "sacralized_L5",
    }
    library = library_scenarios()
    for name, fits in variants.items():
        assert any(fits(library[i], p) for i, p in generated.items()), name


def test_a_good_scenario_loads_from_a_file(tmp_path):
    path = tmp_path / "case.yaml"
    path.write_text(GOOD)
    scenario = load_scenario(path)
    assert (scenario.id, scenario.approach, scenario.seed) == ("test-case", "kambin", 5)
    assert scenario.start.carm.setup == "AP" and scenario.imaging.fluoroscopy


@pytest.mark.parametrize("change, where, message", [
    (("level: L4-L5", "level: L4-S1"), "line 7, field 'target.level'", "not adjacent"),
    (("level: L4-L5", "level: L9-L10"), "line 7, field 'target.level'", "interspace like 'L4-L5'"),
    (("side: left", "side: up"), "line 8, field 'target.side'", "must be 'left', 'right' or 'midline'"),
    (("gauge: 22", "gauge: 23"), "line 10, field 'needle'", "unsupported needle gauge 23"),
    (("gauge: 22", "gauge: twenty"), "line 10, field 'needle.gauge'", "valid integer"),
    (("seed: 5", "seed: 5\ncolour: red"), "line 12, field 'colour'", "unknown field"),
    (("procedure: transforaminal_epidural", "procedure: facet_intra_articular"), "line 9, field 'target.approach'",
     "only for transforaminal_epidural"),
    (("title: A case\n", ""), "line 1, field 'title'", "required field is missing"),
    (("anatomy: {builtin: default}", "anatomy: {builtin: default, stored: mine}"), "line 4, field 'anatomy'",
     "exactly one of"),
    (("  side: left", "  side: midline"), "line 8, field 'target.side'", "only fits interlaminar_epidural"),
])
def test_invalid_scenarios_name_the_line_and_field(tmp_path, change, where, message):
    path = tmp_path / "case.yaml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(SpinesimError) as caught:
        load_scenario(path)
    assert str(caught.value).startswith(f"{path}: {where}: ")
    assert message in str(caught.value)


def test_a_medial_branch_block_names_its_nerve():
    text = GOOD.replace("procedure: transforaminal_epidural", "procedure: medial_branch_block").replace(
        "  level: L4-L5\n", "  nerve: L5 dorsal ramus\n").replace("  approach: kambin\n", "")
    assert scenario_from_yaml(text).target.nerve_level == "L5"
    with pytest.raises(SpinesimError, match="field 'target.nerve': required"):
        scenario_from_yaml(text.replace("  nerve: L5 dorsal ramus\n", ""))
    with pytest.raises(SpinesimError, match="'L4 medial branch' or 'L5 dorsal ramus'"):
        scenario_from_yaml(text.replace("L5 dorsal ramus", "sciatic"))


def test_unreadable_and_unknown_sources():
    with pytest.raises(SpinesimError, match="no scenario file or library scenario called 'nope'"):
        load_scenario("nope")
    with pytest.raises(SpinesimError, match="not valid YAML"):
        scenario_from_yaml("id: [unclosed", path="x.yaml")
    with pytest.raises(SpinesimError, match="must be a YAML mapping"):
        scenario_from_yaml("- a\n- b\n", path="x.yaml")


def test_generator_parameters_are_checked_with_the_scenario(tmp_path):
    path = tmp_path / "case.yaml"
    path.write_text(GOOD.replace("anatomy: {builtin: default}", "anatomy:\n  generator: {bmi: 35, spacing_mm: 2.0}"))
    assert load_scenario(path).anatomy.spine_parameters().bmi == 35.0
    for bad, message in (("bmi: 3", "must be between 16 and 60"), ("bmj: 3", "unknown generator parameter(s) bmj")):
        path.write_text(GOOD.replace("anatomy: {builtin: default}", "anatomy:\n  generator: {" + bad + "}"))
        with pytest.raises(SpinesimError, match=r"line 5, field 'anatomy.generator'") as caught:
            load_scenario(path)
        assert message in str(caught.value)


SCHEMA_FILE = Path(__file__).parents[2] / "scenarios" / "scenario.schema.json"


@pytest.mark.parametrize("change, where, message", [
    (("level: L4-L5", "level: L6-S1"), "line 7, field 'target.level'", "interspace like 'L4-L5'"),
    (("target:\n  level: L4-L5\n  side: left\n  approach: kambin\n", ""), "line 1, field 'target'",
     "required field is missing"),
    (("seed: 5", "seed: five"), "line 11, field 'seed'", "valid integer"),
    (("seed: 5", "seed: 5\nlimits: {shots: many}"), "line 12, field 'limits.shots'", "valid integer"),
    (("seed: 5", "seed: 5\nrubric:\n  weights: {accuracy: -1}"), "line 13, field 'rubric.weights.accuracy'",
     "greater than or equal to 0"),
    (("seed: 5", "seed: 5\nhints: a single string"), "line 12, field 'hints'", "valid list"),
    (("seed: 5", "seed: 5\npatient: {what_to_expect: pressure}"), "line 12, field 'patient.explanation'",
     "required field is missing"),
    (("anatomy: {builtin: default}", "anatomy: {builtin: default, series: '2'}"), "line 4, field 'anatomy.series'",
     "only goes with images, not builtin"),
    (("seed: 5", "seed: 5\nrubric: {pass_gates: {contrast_check: dsa}}"), "line 12, field 'rubric.pass_gates.contrast_check'",
     "'dsa' needs imaging.dsa: true"),
])
def test_more_invalid_scenarios_name_the_line_and_field(tmp_path, change, where, message):
    path = tmp_path / "case.yaml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(SpinesimError) as caught:
        load_scenario(path)
    assert str(caught.value).startswith(f"{path}: {where}: "), str(caught.value)
    assert message in str(caught.value)


def test_a_medial_branch_of_an_unknown_level_is_a_field_error():
    text = GOOD.replace("procedure: transforaminal_epidural", "procedure: medial_branch_block").replace(
        "  level: L4-L5\n", "  nerve: L7 medial branch\n").replace("  approach: kambin\n", "")
    with pytest.raises(SpinesimError, match=r"line 7, field 'target.nerve': nerve must be like"):
        scenario_from_yaml(text, path="x.yaml")


def test_image_sources_must_exist_relative_to_the_scenario(tmp_path):
    path = tmp_path / "case.yaml"
    source = "anatomy:\n  images: ct/series-1\n  labels: ct/labels.nii.gz\n"
    path.write_text(GOOD.replace("anatomy: {builtin: default}\n", source))
    with pytest.raises(SpinesimError) as caught:
        load_scenario(path)
    assert str(caught.value) == (f"{path}: line 5, field 'anatomy.images': no such file or folder: "
                                 f"{tmp_path / 'ct' / 'series-1'}")
    (tmp_path / "ct" / "series-1").mkdir(parents=True)
    with pytest.raises(SpinesimError, match=r"line 6, field 'anatomy.labels': no such file or folder"):
        load_scenario(path)
    (tmp_path / "ct" / "labels.nii.gz").write_bytes(b"")
    loaded = load_scenario(path)
    assert (loaded.anatomy.kind(), loaded.anatomy.labels) == ("images", "ct/labels.nii.gz")


def test_an_image_source_loads_through_the_importer_with_its_labels(tmp_path, small_spine):
    from anatomy_models.nrrd import write_nrrd

    write_nrrd(small_spine.ct, tmp_path / "ct.nrrd")
    write_nrrd(small_spine.labels, tmp_path / "labels.nrrd")
    (tmp_path / "names.yaml").write_text("\n".join(f"- {{id: {label.id}, name: {label.name}, tissue: {label.tissue}}}"
                                                   for label in small_spine.label_table))
    path = tmp_path / "case.yaml"
    path.write_text(GOOD.replace("anatomy: {builtin: default}\n", "anatomy:\n  images: ct.nrrd\n  labels: labels.nrrd\n"
                                 "  label_format: table:names.yaml\n"))
    scenario = load_scenario(path)
    anatomy = scenario.anatomy.load(tmp_path)
    assert anatomy.labels is not None and np.array_equal(anatomy.labels.array, small_spine.labels.array)
    assert anatomy.label_table.by_name("dural_sac.dura").tissue == "dura"


def test_the_shipped_json_schema_is_current_and_accepts_the_library():
    assert json.loads(SCHEMA_FILE.read_text()) == json.loads(json.dumps(scenario_json_schema())), \
        "regenerate it: spinesim scenario schema -o scenarios/scenario.schema.json"
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    for entry in sorted((SCHEMA_FILE.parent / "library").glob("*.yaml")):
        errors = list(validator.iter_errors(yaml.safe_load(entry.read_text())))
        assert not errors, (entry.name, errors[0].message)
    broken = yaml.safe_load(GOOD) | {"limits": {"shots": "many"}}
    assert any(list(e.absolute_path) == ["limits", "shots"] for e in validator.iter_errors(broken))
