"""The HTML report: self-contained (no network), with the final images, the 3D reveal (flagged structures
highlighted) and every table; and it really draws in a browser with the network off."""

import html
import json
import re

import numpy as np
import pytest
from PIL import Image

from anatomy_models.structures import clinical_name
from frontends.report import report_html, report_images
from frontends.web.views import assessment_view, report_rows
from scenarios.schema import library_scenarios
from scoring.checklist import checklist_points
from scoring.metrics import dap_text
from scoring.report import checklist_rows, rating_rows, report_of
from simulator.imaging.probe import standard_view
from simulator.session.fold import Session
from simulator.session.history import replay_attempt
from tests.frontends.web.browser import drawn_fraction, offline_page
from tests.scoring.attempts import Script, expert_log, path_to, structure_points


@pytest.fixture(scope="module")
def root_contact_page(anatomy_for, tmp_path_factory):
    """The report page of a transforaminal attempt that touches the L4 root, then injects under DSA."""
    scenario = library_scenarios()["tfesi-default"]
    session = Session(scenario, anatomy_for(scenario))
    root = f"nerve_root.L4.{scenario.target.side}"
    path = path_to(session, structure_points(session, root, session.target.point), allow=("nerve_root",),
                   root_clearance_mm=0.0)
    script = Script(session).view(0).view(1).place(path.entry, path.direction).advance_to(path.depth_mm)
    script.view(2).contrast(1.0).add("finish")
    attempt = replay_attempt(scenario, session.anatomy, script.actions)
    report = report_of(attempt)
    page = tmp_path_factory.mktemp("report") / "report.html"
    page.write_text(report_html(attempt, report, pixels=128), encoding="utf-8")
    return page, report, len(script.actions)


def test_the_page_is_self_contained_with_images_scene_and_tables(root_contact_page):
    page, report, actions = root_contact_page
    text = page.read_text()
    assert not re.search(r"(src|href)=\"(?!data:)", text) and "http://" not in text and "https://" not in text
    assert text.count('src="data:image/jpeg;base64,') == 4  # AP, oblique, lateral, and the DSA run
    scene = json.loads(re.search(r'<script type="application/json" id="scene-data">(.*?)</script>', text, re.S)[1])
    flagged = [m for m in scene["meshes"] if m["highlight"]]
    # The injection went in with the tip in the root: intraneural (critical) comes first, on the same root.
    assert [f.code for f in report.flags] == ["intraneural_injection", "root_contact"]
    assert [m["name"] for m in flagged] == [f"flag.{report.flags[0].structure}"]
    # The most severe flag labels the structure, in clinical words.
    assert flagged[0]["label"] == f"Intraneural injection: {clinical_name(report.flags[0].structure)}"
    assert {"needle", "dural_sac", "roots", "bone.L4"} <= {m["name"] for m in scene["meshes"]}
    assert {"target", "tip"} <= {m["name"] for m in scene["markers"]} and "expert" in {l["name"] for l in scene["lines"]}
    assert "Nerve root contact" in text and report.feedback[0].text.split(":")[0] in text
    assert text.count("<tr>") >= actions + len(report.near_misses) + len(report.flags)


def test_the_page_heads_with_the_case_difficulty_and_its_learning_objectives(root_contact_page):
    page, *_ = root_contact_page
    text = page.read_text()
    scenario = library_scenarios()["tfesi-default"]
    assert f'<b id="difficulty">{scenario.difficulty}</b>' in text
    listed = re.search(r'<ul class="sub" id="objectives">(.*?)</ul>', text, re.S)[1]
    assert re.findall(r"<li>(.*?)</li>", listed) == [html.escape(o) for o in scenario.objectives] != []


def test_the_page_lists_the_checklist_and_the_rating_scale_with_their_evidence(root_contact_page):
    page, report, _ = root_contact_page
    text = html.unescape(page.read_text())
    assert f"Checklist: {checklist_points(report.checklist):g} of {len(report.checklist)} steps" in text
    for step, status, detail, evidence in checklist_rows(report):
        assert all(cell in text for cell in (step, status, detail, evidence))
    assert f"Global rating scale: {report.global_rating.total} of {report.global_rating.maximum}" in text
    assert all(anchor in text for _, _, anchor, _ in rating_rows(report))


def test_the_web_report_tab_lists_the_html_reports_metric_rows(root_contact_page):
    """The metrics are formatted once (scoring.report.metric_rows): the web app's Report tab, given the
    report as the store keeps it, lists exactly the rows of the HTML page's Metrics table."""
    page, report, _ = root_contact_page
    table = re.search(r"<h2>Metrics</h2><table>.*?<tbody>(.*?)</tbody>", page.read_text(), re.S)[1]
    on_page = [tuple(html.unescape(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row))
               for row in re.findall(r"<tr>(.*?)</tr>", table)]
    stored = json.loads(report.model_dump_json()) | {"attempt_id": 1, "user": "ben", "status": "finished"}
    on_tab = [(row["label"], row["value"]) for row in report_rows(stored)]
    assert on_tab == on_page and len(on_tab) >= 15
    tab = assessment_view(stored)  # the checklist and rating, from the same rows as the page
    assert [(r["step"], r["status"], r["detail"], r["evidence"]) for r in tab["report_checklist"]] == checklist_rows(report)
    assert [(r["item"], r["score"], r["anchor"], r["reason"]) for r in tab["report_rating"]] == rating_rows(report)
    assert tab["report_checklist_title"] in page.read_text() and tab["report_rating"]
    dose = dict(on_tab)["Reference air kerma / DAP"]
    dap, expert_dap = report.metrics.dose_area_product_gy_cm2, report.expert.expert_dose_area_product_gy_cm2
    assert dose.endswith(f" mGy / {dap_text(dap)} (expert {dap_text(expert_dap)})") and dap > 1e-3


@pytest.mark.slow
def test_the_page_draws_in_headless_chromium_with_the_network_off(root_contact_page, chromium, tmp_path):
    page_path = root_contact_page[0]
    context, page, requests, errors = offline_page(chromium, {"width": 1280, "height": 900})
    page.goto(page_path.as_uri())
    page.wait_for_selector("#scene3d[data-ready]")
    assert page.get_attribute("#scene3d", "data-ready") == "true" and errors == []
    sizes = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    assert sizes == [[True, 128]] * 4
    canvas = page.locator("#scene3d")
    canvas.screenshot(path=str(tmp_path / "scene.png"))
    page.evaluate("window.spinesimViewer.items().forEach(i => window.spinesimViewer.setVisible(i.name, false))")
    canvas.screenshot(path=str(tmp_path / "empty.png"))
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    context.close()
    assert requests == [page_path.as_uri()] and errors == []
    assert drawn_fraction(tmp_path / "scene.png", tmp_path / "empty.png") > 0.1
    empty = np.asarray(Image.open(tmp_path / "empty.png").convert("RGB")).astype(int)[10:-10, 10:-10]
    assert np.all(np.abs(empty - np.median(empty.reshape(-1, 3), axis=0)).max(axis=-1) <= 2)
    # The highlighted root glows red-orange somewhere in the picture.
    drawn = np.asarray(Image.open(tmp_path / "scene.png").convert("RGB")).astype(int)
    assert np.any((drawn[..., 0] > 180) & (drawn[..., 1] < 150) & (drawn[..., 2] < 90))


def test_an_attempt_with_a_probe_shows_its_last_ultrasound_frame(anatomy_for):
    scenario = library_scenarios()["ilesi-ultrasound-l4l5-left"]
    session = Session(scenario, anatomy_for(scenario))
    probe = standard_view(session.anatomy, "paramedian-sagittal-oblique", "L4-L5", "left")
    log = expert_log(session)
    log.insert(1, {"type": "place_probe", "t": log[0]["t"], **probe.pose("paramedian-sagittal-oblique").to_json()})
    attempt = replay_attempt(scenario, session.anatomy, log)
    captions = [caption for caption, _ in report_images(attempt, report_of(attempt), pixels=128)]
    assert captions[-1] == "ultrasound, paramedian-sagittal-oblique: final needle position"
    plain = replay_attempt(scenario, session.anatomy, expert_log(session))
    assert not any("ultrasound" in c for c, _ in report_images(plain, report_of(plain), pixels=128))


def test_the_contrast_run_is_the_shot_the_trainee_saw(anatomy_for):
    from frontends.pictures.overlay import with_overlay
    from frontends.pictures.preview import target_marks
    from simulator.session.shots import render_shot

    scenario = library_scenarios()["tfesi-default"]
    session = Session(scenario, anatomy_for(scenario))
    attempt = replay_attempt(scenario, session.anatomy, expert_log(session))  # injects, then a 3 s DSA run
    pictures = dict(report_images(attempt, report_of(attempt), pixels=128))
    (caption, picture), = [(c, p) for c, p in pictures.items() if c.startswith("contrast run")]
    # The DSA run of 3 s shows its last frame, 3 s after the injection half a second before it.
    assert caption == "contrast run (DSA, 3.5 s after injecting at " + caption.split(" at ")[1]
    run = next(step for step in attempt.steps if step.action.type == "fluoro_shot" and step.action.mode == "dsa")
    markers = [m for m in target_marks(attempt.session.target)[0] if m.label != "entry"]
    seen = with_overlay(render_shot(attempt.session, run.after, "dsa", 3.0, pixels=128), markers, [])
    assert np.array_equal(np.asarray(picture), np.asarray(seen))
