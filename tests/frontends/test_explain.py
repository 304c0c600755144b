"""Patient explanations: the text templates for every procedure with the case's level and side; a
self-contained page whose 3D model and pictures come from the patient's own imported CT (not the
built-in spine); nothing identifying on it unless the clinician adds a name; and it draws offline
in headless Chromium, without horizontal scrolling on a 375 px phone."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pydicom
import pytest
from PIL import Image

from anatomy_models.anatomy import Anatomy
from anatomy_models.dicom import write_dicom_series
from anatomy_models.errors import SpinesimError
from anatomy_models.labelmaps import VERSE_LEVELS
from anatomy_models.nifti import write_nifti
from anatomy_models.sources import import_anatomy
from anatomy_models.spine import SpineParameters
from anatomy_models.store import generated_anatomy, load_anatomy, save_anatomy
from anatomy_models.volume import Volume
from frontends.cli import main
from frontends.explain import (case_words, doctor_views, explained_attempt, explanation_body, leaflet, needle_animation,
                               spine_scene)
from scenarios.schema import PROCEDURES, library_scenarios
from simulator.case.planner import expert_actions, plan_trajectory
from simulator.session.actions import LogContents
from simulator.session.fold import Session
from tests.frontends.web.browser import drawn_fraction, offline_page

# What the patient's CT carries that must never reach the page.
IDENTIFYING = {"PatientName": "DOE^JANE", "PatientID": "MRN-4711", "PatientBirthDate": "19610412",
               "InstitutionName": "St Example Hospital", "ReferringPhysicianName": "HOUSE^GREGORY"}
STORED_NAME = "jane-doe-1961"
PIXELS = 160
# One library case per procedure, with the words its page must contain.
CASES = {"interlaminar_epidural": "ilesi-l3l4-right", "transforaminal_epidural": "tfesi-default",
         "facet_intra_articular": "facet-l5s1-right", "medial_branch_block": "mbb-default",
         "radiofrequency_ablation": "rfa-l5-dorsal-ramus-right", "sacroiliac_joint_injection": "si-joint-left",
         "caudal_epidural": "caudal-default"}
# A CT labelled with its vertebrae only has no sacroiliac joint or sacral hiatus to aim at.
SACRUM_LABELLED = ("sacroiliac_joint_injection", "caudal_epidural")


def _parts(attempt):
    text = leaflet(attempt.scenario)
    return text, doctor_views(attempt, pixels=PIXELS), needle_animation(attempt, pixels=PIXELS), spine_scene(attempt)


def _scene(page: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="scene-data">(.*?)</script>', page, re.S)[1])


def _images(page: str) -> list[np.ndarray]:
    found = re.findall(r'src="data:image/(?:jpeg|gif);base64,([A-Za-z0-9+/=]+)"', page)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("L"), dtype=np.float64) for data in found]


def _mesh_bounds(mesh: dict) -> tuple[np.ndarray, np.ndarray]:
    quantised = np.frombuffer(base64.b64decode(mesh["positions"]), dtype="<u2").reshape(-1, 3)
    points = np.asarray(mesh["origin"]) + np.asarray(mesh["scale"]) * quantised
    return points.min(axis=0), points.max(axis=0)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def default_page(small_spine, tmp_path_factory):
    """The transforaminal case on the built-in spine (2 mm): the page and the attempt it shows."""
    attempt = explained_attempt(library_scenarios()["tfesi-default"], small_spine)
    path = tmp_path_factory.mktemp("default") / "index.html"
    page = explanation_body(attempt, *_parts(attempt))
    path.write_text(page, encoding="utf-8")
    return page, attempt


@pytest.fixture(scope="module")
def patient_ct(spinesim_home, tmp_path_factory):
    """A "patient CT": a bigger, flatter spine than the built-in one (2 mm) on a lumbar CT's field of view (the
    flanks cut: the whole torso's voxels cost a third more to generate, write and import, 15 s of CPU not 11),
    written as a DICOM series that names the patient and the hospital, with a VerSe label map of its vertebrae only;
    imported and stored under a name that is the patient's own (as a busy clinic might). The series is the CT's
    slices only, as a scanner sends it: written from the labelled spine it would carry a Segmentation and a
    Structure Set beside them (39 s of CPU), which the import does not read (its labels are the VerSe map)."""
    spine = generated_anatomy(SpineParameters(spacing_mm=2.0, field_of_view="spine", size_scale=1.15, lordosis_deg=40.0,
                                              bmi=30.0))
    folder = tmp_path_factory.mktemp("clinic")
    series = folder / "DOE_JANE_CT"
    for file in write_dicom_series(Anatomy(spine.ct, metadata=spine.metadata), series):
        dataset = pydicom.dcmread(file)
        for keyword, value in IDENTIFYING.items():
            setattr(dataset, keyword, value)
        dataset.save_as(file)
    verse = {name: number for number, name in VERSE_LEVELS.items()}
    labels = np.zeros(spine.ct.shape, np.uint8)
    for level in ("T12", "L1", "L2", "L3", "L4", "L5", "S1"):
        labels[spine.mask(level)] = verse["sacrum" if level == "S1" else level]
    write_nifti(spine.ct.with_array(labels), folder / "DOE_JANE_vertebrae.nii.gz", label_map=True)
    imported = import_anatomy(series, labels=folder / "DOE_JANE_vertebrae.nii.gz", label_format="verse")
    save_anatomy(imported, STORED_NAME)
    return load_anatomy(STORED_NAME)


@pytest.fixture(scope="module")
def patient_page(patient_ct, tmp_path_factory):
    """The page built by ``spinesim explain`` for the stored patient, without --name."""
    out = tmp_path_factory.mktemp("patient")
    assert main(["explain", "tfesi-default", "--anatomy", STORED_NAME, "-o", str(out), "--pixels", str(PIXELS)]) == 0
    return (out / "index.html").read_text(encoding="utf-8"), out / "index.html"


# --------------------------------------------------------------------------- text
@pytest.mark.parametrize("procedure", PROCEDURES)
def test_every_procedure_has_a_template_filled_with_the_cases_level_and_side(procedure):
    scenario = library_scenarios()[CASES[procedure]]
    words = case_words(scenario)
    text = leaflet(scenario)
    everything = text.title + text.opening_html + "".join(h + b for h, b in text.before + text.after)
    headings = [h for h, _ in text.before + text.after]
    assert any("risk" in h.lower() for h in headings) and any("afterwards" in h.lower() for h in headings)
    assert words["side_words"] in everything and (words["level"] in everything or words["bone"] in everything)
    assert scenario.target.side == "midline" or f"on the {scenario.target.side} side" in everything
    assert "{{" not in everything and "[S" not in everything and "clinical.md" not in everything
    assert re.search(r"<strong>[^<]*\b1 in \d+", everything), "risks need plain numbers"


def test_template_mistakes_name_the_line_and_what_to_use():
    scenario = library_scenarios()["tfesi-default"]
    with pytest.raises(SpinesimError, match=r"line 3: unknown placeholder \{\{ levle \}\}.*Use one of .*level"):
        leaflet(scenario, "# Title\n\nBetween {{ levle }}.\n{{ pictures }}\n")
    with pytest.raises(SpinesimError, match="exactly one line '{{ pictures }}' \\(found 0\\)"):
        leaflet(scenario, "# Title\n\nText.\n")
    with pytest.raises(SpinesimError, match="no title line"):
        leaflet(scenario, "Text.\n{{ pictures }}\n")


# --------------------------------------------------------------------------- the page
def test_the_page_holds_its_pictures_film_and_labelled_model(default_page):
    page, attempt = default_page
    assert not re.search(r"(src|href)=\"(?!data:)", page) and "http://" not in page and "https://" not in page
    assert page.count('src="data:image/jpeg;base64,') == 3 and page.count('src="data:image/gif;base64,') == 1
    gif = Image.open(io.BytesIO(base64.b64decode(re.search(r'data:image/gif;base64,([^"]+)', page)[1])))
    assert gif.n_frames >= 8 and len(base64.b64decode(re.search(r'data:image/gif;base64,([^"]+)', page)[1])) < 2e6
    scene = _scene(page)
    assert {"needle", "bone.L4", "roots", "dural_sac"} <= {m["name"] for m in scene["meshes"]}
    annotations = {a["name"]: a for a in scene["annotations"]}
    assert annotations["target"]["text"] == "where the medicine goes"
    assert np.allclose(annotations["target"]["position"], attempt.session.target.point, atol=1e-3)
    assert np.allclose(annotations["entry"]["position"], attempt.needle.entry, atol=1e-3)
    assert attempt.session.state.in_target and not attempt.estimated
    assert 'alt="Simulated X-ray picture' in page and "a typical adult spine, not your own scan" in page


def test_the_pictures_carry_plain_labels_where_the_needle_and_target_are(default_page):
    _, attempt = default_page
    figures = doctor_views(attempt, pixels=PIXELS)
    assert [f.caption for f in figures] == ["Straight on, looking at your back",
                                            "At an angle, looking along the path of the needle", "From the side"]
    picture = np.asarray(figures[0].picture, dtype=int)
    carm = attempt.session.target.views[0].carm.with_(detector_pixels=PIXELS)
    u, v = np.rint(carm.project(attempt.session.target.point)).astype(int)
    patch = picture[v - 3:v + 4, u - 3:u + 4]
    assert np.any((patch[..., 1] > 180) & (patch[..., 0] < 140)), "the target's green mark"


def test_a_name_appears_only_when_the_clinician_gives_one(default_page):
    page, attempt = default_page
    assert "Prepared for" not in page
    named = explanation_body(attempt, *_parts(attempt), name="Ann O'Neil <b>")
    assert "Prepared for Ann O&#x27;Neil &lt;b&gt;" in named


def test_an_imported_ct_shows_that_ct_not_the_built_in_spine(patient_page, patient_ct, default_page):
    page, _ = patient_page
    ours, theirs = _scene(page), _scene(default_page[0])
    low, high = _mesh_bounds(next(m for m in ours["meshes"] if m["name"] == "bone.L4"))
    default_low, default_high = _mesh_bounds(next(m for m in theirs["meshes"] if m["name"] == "bone.L4"))
    l4 = patient_ct.labels.voxel_to_world(np.argwhere(patient_ct.mask("L4")))
    # The patient's L4 as the page draws it is the L4 of their label map (to the smoothing of the
    # surface), and 15% bigger than the built-in one.
    assert np.allclose(low, l4.min(axis=0), atol=3.0) and np.allclose(high, l4.max(axis=0), atol=3.0)
    assert (high - low)[0] > 1.08 * (default_high - default_low)[0]
    # Bones from the label map; discs, sac and roots drawn from it at import (estimates, label_parts.py).
    drawn = {"discs", "dural_sac", "roots"}
    bones = {f"bone.{lv}" for lv in ("T12", "L1", "L2", "L3", "L4", "L5", "S1")}
    assert {m["name"] for m in ours["meshes"]} <= {"needle", "skin"} | bones | drawn
    mine, builtin = _images(page), _images(default_page[0])
    assert len(mine) == len(builtin) == 4
    for picture, other in zip(mine[:3], builtin[:3]):
        assert np.abs(picture - other).mean() > 4.0
    assert "made from your own CT scan" in page and "an estimate" in page


def test_nothing_identifying_reaches_the_page(patient_page):
    page, _ = patient_page
    # Everything but the encoded pixels and mesh coordinates (where short strings occur by chance).
    lowered = re.sub(r"[A-Za-z0-9+/=]{100,}", "", page).lower()
    assert len(lowered) > 20_000
    for value in [*IDENTIFYING.values(), STORED_NAME, "DOE_JANE", "jane", "doe^", "mrn", "1961", "gregory"]:
        assert value.lower() not in lowered, value
    assert "Prepared for" not in page


def test_every_procedure_finds_its_target_on_a_ct_with_vertebra_labels_only(patient_ct):
    for procedure, case in CASES.items():
        if procedure in SACRUM_LABELLED:
            continue
        attempt = explained_attempt(library_scenarios()[case], patient_ct)
        assert attempt.estimated and attempt.session.state.in_target, procedure


def test_an_attempt_log_is_shown_instead_of_the_expert_path(small_spine, tmp_path):
    scenario = library_scenarios()["tfesi-default"]
    session = Session(scenario, small_spine)
    actions = expert_actions(scenario, session.target, plan_trajectory(session.tracer, session.target, session.spec))
    short = [a for a in actions if a["type"] != "inject_contrast"]
    short = short[:max(i for i, a in enumerate(short) if a["type"] == "advance")]  # stops one advance early
    attempt = explained_attempt(scenario, small_spine, LogContents({"scenario": scenario.id}, short, None, 0))
    expert = explained_attempt(scenario, small_spine)
    assert attempt.from_log and attempt.injection_t is None
    assert attempt.needle.depth_mm < expert.needle.depth_mm - 5.0
    assert np.allclose(attempt.needle.entry, expert.needle.entry)
    with pytest.raises(SpinesimError, match="never placed a needle"):
        explained_attempt(scenario, small_spine, LogContents({}, [{"type": "fluoro_shot", "t": 1.0}], None, 0))


def test_an_anatomy_without_labels_or_landmarks_is_refused_with_what_to_do(tmp_path):
    ct = Volume.from_spacing(np.full((16, 16, 16), -1000, np.int16), (2.0, 2.0, 2.0))
    save_anatomy(Anatomy(ct), "bare-ct")
    assert main(["explain", "tfesi-default", "--anatomy", "bare-ct", "-o", str(tmp_path)]) == 1
    with pytest.raises(SpinesimError, match="no label map.*--labels"):
        explained_attempt(library_scenarios()["tfesi-default"], Anatomy(ct))


# --------------------------------------------------------------------------- in a browser
@pytest.mark.slow
def test_the_page_draws_offline_in_chromium_and_fits_a_phone(patient_page, chromium, tmp_path):
    page_path = patient_page[1]
    for width, height in ((1280, 900), (375, 740)):
        context, page, requests, errors = offline_page(chromium, {"width": width, "height": height})
        page.goto(page_path.as_uri())
        page.wait_for_selector("#scene3d[data-ready]")
        assert page.get_attribute("#scene3d", "data-ready") == "true"
        sizes = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
        assert sizes == [[True, PIXELS]] * 3 + [[True, 320]]
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        canvas = page.locator("#scene3d")
        canvas.screenshot(path=str(tmp_path / f"scene-{width}.png"))
        page.evaluate("window.spinesimViewer.items().forEach(i => window.spinesimViewer.setVisible(i.name, false))")
        canvas.screenshot(path=str(tmp_path / f"empty-{width}.png"))
        context.close()
        assert errors == [] and set(requests) == {page_path.as_uri()}
        assert drawn_fraction(tmp_path / f"scene-{width}.png", tmp_path / f"empty-{width}.png") > 0.1, width
