"""``spinesim scenario``: list, new (a template that validates), validate (line and field named),
schema, preview (target drawn where the C-arm projects it)."""

import json

import numpy as np
import pytest
from PIL import Image

from frontends.cli import main
from frontends.pictures.preview import TARGET_COLOR, start_views
from scenarios.schema import PROCEDURES, library_scenarios, load_scenario, scenario_json_schema
from simulator.case.targets import target_for
from simulator.needle.trace import tracer_for


def test_list_shows_the_library(capsys):
    assert main(["scenario", "list"]) == 0
    printed = capsys.readouterr().out
    for scenario_id in library_scenarios():
        assert scenario_id[:12] in printed


@pytest.mark.parametrize("procedure", PROCEDURES)
def test_new_writes_a_template_that_validates(tmp_path, capsys, procedure):
    path = tmp_path / f"My case {procedure}.yaml"
    assert main(["scenario", "new", procedure, "-o", str(path)]) == 0
    scenario = load_scenario(path)
    assert scenario.procedure == procedure and scenario.id == path.stem.lower().replace(" ", "-")
    assert main(["scenario", "validate", str(path)]) == 0
    assert "ok:" in capsys.readouterr().out
    assert main(["scenario", "new", procedure, "-o", str(path)]) == 1
    assert "the file exists" in capsys.readouterr().err
    assert main(["scenario", "new", procedure, "-o", str(path), "--id", "other", "--force"]) == 0
    assert load_scenario(path).id == "other"


def test_validate_names_the_line_and_field_and_fails(tmp_path, capsys):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    main(["scenario", "new", "facet_intra_articular", "-o", str(good)])
    bad.write_text(good.read_text().replace("target: {level: L4-L5, side: left}", "target: {level: L4-L7, side: left}"))
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), 1) if text.startswith("target:"))
    capsys.readouterr()
    assert main(["scenario", "validate", str(good), str(bad)]) == 1
    captured = capsys.readouterr()
    assert f"ok: {good}" in captured.out
    assert f"invalid: {bad}: line {line}, field 'target.level'" in captured.out.replace("\n", "")
    assert "1 of 2 scenario(s) are invalid" in captured.err


def test_validate_can_solve_the_expert_path(capsys, spinesim_home):
    assert main(["scenario", "validate", "mbb-default", "--solve", "--spacing", "2"]) == 0
    assert "expert path" in capsys.readouterr().out


def test_schema_prints_the_json_schema(tmp_path, capsys):
    assert main(["scenario", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(scenario_json_schema()))
    assert main(["scenario", "schema", "-o", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["title"] == "spinesim scenario"


def test_preview_draws_the_target_where_each_view_projects_it(tmp_path, small_spine):
    assert main(["scenario", "preview", "tfesi-default", "-o", str(tmp_path), "--spacing", "2", "--pixels", "128"]) == 0
    scenario = load_scenario("tfesi-default")
    target = target_for(scenario, small_spine, tracer_for(small_spine))
    views = start_views(scenario, target)
    pictures = sorted(tmp_path.glob("*.png"))
    assert len(pictures) == len(views) == 4
    for picture, (name, carm) in zip(pictures, views):
        u, v = np.rint(carm.with_(detector_pixels=128).project(target.point)).astype(int)
        pixels = np.asarray(Image.open(picture).convert("RGB"))
        assert tuple(pixels[v, u]) == TARGET_COLOR, name
