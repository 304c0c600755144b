"""Ultrasound in the trainee's view, in a real browser: a standard view shows bone as a bright line with
black shadow beneath on the panel's own pixels, a probe move changes the frame, an in-plane needle
appears as it advances, every frame is the one its logged ``place_probe`` reproduces (also in the
replay), hints are logged actions, and nonsense typed or forced into the page is refused with a
message."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from frontends.store import Store
from scenarios.schema import load_scenario
from simulator.imaging.probe import Probe
from simulator.imaging.ultrasound import render_ultrasound
from simulator.session.history import replay_attempt
from simulator.session.scans import SCAN_SHAPE
from tests.frontends.web import browser as b
from tests.frontends.web.conftest import ANATOMY

pytestmark = pytest.mark.slow
pytest.importorskip("playwright.sync_api")
if not __import__("os").path.exists(b.CHROMIUM):
    pytest.skip("Chromium is not installed (./dev.sh installs it)", allow_module_level=True)

SCENARIO = "ilesi-ultrasound-l4l5-left"
TRAINEE, LATECOMER, PASSWORD = "uma", "vic", "a-long-password"


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    return b.database_with_users(tmp_path_factory.mktemp("web-us"), {TRAINEE: "trainee", LATECOMER: "trainee"},
                                 PASSWORD)


@pytest.fixture(scope="module")
def server(patient, database, tmp_path_factory):
    """The module's own server, not the shared one: it opens on the ultrasound case (--scenario), and
    test_a_login_gets_the_warm_spare_and_workstations_answer_only_their_portal counts its workstations."""
    running = b.Server(database, ANATOMY, "--require-login", "--scenario", SCENARIO,
                       log=tmp_path_factory.mktemp("logs") / "serve.log")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def page(server, chromium):
    """One page for the module's tests, which go on from where the one before left the attempt."""
    context = chromium.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(b.ACTION_TIMEOUT_MS)
    yield context.new_page()
    context.close()


def _frame(database, page, patient):
    """The reference frame of the last logged probe pose (rendered here) and the state it is of."""
    scenario = load_scenario(SCENARIO)
    session = replay_attempt(scenario, patient, Store(database).actions(b.attempt_id(page))).session
    probe = Probe.at(session.state.probe, image_shape=SCAN_SHAPE)
    return render_ultrasound(patient, probe, session.state.needle, seed=scenario.seed), session


def _agree(shown: np.ndarray, reference) -> float:
    """Correlation of the panel's pixels with the reference frame inside the field of view, away from
    the drawn orientation marker and depth scale."""
    inside = reference.field_of_view.copy()
    inside[:20, :20] = inside[:, -14:] = False
    return float(np.corrcoef(shown[inside].astype(float), reference.pixels[inside].astype(float))[0, 1])


def _first_on_its_beam(bone: np.ndarray, reference, row: int, column: int) -> bool:
    """Whether no bone lies on the scan line between the probe face and pixel (row, column): a sector's
    columns are not its beams, and bone first met in a column at the sector's edge can lie in the shadow
    of bone the beam met before (a shadow shows no surface)."""
    probe = reference.probe
    if probe.kind == "linear":
        step = np.array([1.0, 0.0])
    else:  # the beam runs from the apex, a radius behind the face
        apex_row, apex_col, _ = reference.lps_to_pixel(probe.position - probe.radius_mm * probe.axial)
        step = np.array([row - apex_row, column - apex_col]) / np.hypot(row - apex_row, column - apex_col)
    back = np.arange(3.0, row + 1.0)[:, None] * step  # from 3 px above the surface up to the face
    rows, columns = np.rint(np.array([row, column]) - back).T.astype(int)
    keep = (rows >= 0) & (columns >= 0) & (columns < bone.shape[1])
    return not bone[rows[keep], columns[keep]].any()


def _bone_columns(reference, patient):
    """(column, row of the bone surface) for columns whose beam meets cortical bone well inside the image,
    first on its scan line."""
    ijk = np.rint(patient.labels.world_to_voxel(reference.grid_lps())).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.asarray(patient.labels.shape)), axis=-1)
    ids = patient.labels.array[tuple(np.clip(ijk, 0, np.asarray(patient.labels.shape) - 1).transpose(2, 0, 1))]
    bone_ids = [label.id for label in patient.label_table if label.tissue == "cortical_bone"]
    bone = np.isin(ids, bone_ids) & inside & reference.field_of_view
    rows = reference.pixels.shape[0]
    found = []
    for column in range(20, reference.pixels.shape[1] - 20):
        hits = np.flatnonzero(bone[:, column])
        if (hits.size and 80 <= hits[0] < rows - 80 and reference.field_of_view[hits[0] + 80, column]
                and _first_on_its_beam(bone, reference, int(hits[0]), column)):
            found.append((column, int(hits[0])))
    return found


def _facing_the_beam(columns, reference, max_incidence_deg=25.0, reach=4):
    """The (column, row) of ``columns`` whose bone surface faces the beam: its tangent, between the surface
    points ``reach`` columns either side, within ``max_incidence_deg`` of perpendicular to the scan line. Bone
    is a specular reflector: a flank turned away from the beam sends its echo elsewhere and is dim on a real
    scan, so only the surfaces facing the probe must be bright."""
    grid = reference.grid_lps()
    surface = dict(columns)
    facing = []
    for column, row in columns:
        if column - reach not in surface or column + reach not in surface:
            continue
        tangent = grid[surface[column + reach], column + reach] - grid[surface[column - reach], column - reach]
        beam = grid[row + 1, column] - grid[row, column]
        cosine = abs(tangent @ beam) / (np.linalg.norm(tangent) * np.linalg.norm(beam))
        if cosine < np.sin(np.radians(max_incidence_deg)):
            facing.append((column, row))
    return facing


def test_the_probe_panel_shows_bone_moves_and_the_in_plane_needle(server, page, patient, database):
    scenario = load_scenario(SCENARIO)
    b.log_in(page, server.url, TRAINEE, PASSWORD)
    page.wait_for_selector("#probe-card")
    page.click("#start")
    b.wait_saved(page, 1)
    assert page.is_visible("#us-monitor") and page.text_content("#us-monitor").strip().startswith("NO PROBE")

    # A standard view: bone is a bright line with black shadow beneath, on the panel's own pixels.
    b.act(page, "#probe-view-PSO")
    page.wait_for_selector("#ultrasound[src^='data:image/jpeg']")
    stored = Store(database).actions(b.attempt_id(page))[-1]
    assert stored["type"] == "place_probe" and stored["view"] == "paramedian-sagittal-oblique"
    reference, _ = _frame(database, page, patient)
    shown = b.image_pixels(page, "#ultrasound")
    assert shown.shape == reference.pixels.shape and _agree(shown, reference) > 0.95  # the logged pose's frame
    # The frame is cut to the field of view (its aspect follows depth x width) and the monitor takes
    # that shape: no black band under the sector, the image not stretched.
    assert max(shown.shape) == max(SCAN_SHAPE) and reference.field_of_view[[0, -1]].any(axis=1).all()
    box = page.locator("#ultrasound").bounding_box()
    assert box["width"] / box["height"] == pytest.approx(shown.shape[1] / shown.shape[0], rel=0.02)
    columns = _facing_the_beam(_bone_columns(reference, patient), reference)
    assert len(columns) > 20
    line, shadow, tissue = [], [], []
    for column, row in columns:
        line.append(shown[row - 8:row + 9, column].max())  # the surface, within a 2 mm label voxel
        shadow.append(shown[row + 20:row + 80, column].mean())
        tissue.append(shown[row - 60:row - 20, column].mean())
    # (the preset rocks the probe onto the skin, which tilts the laminae's surfaces to the beam a little.) Seen on
    # the 2 mm patient: the caps of the laminae at grey 138-194 over tissue at 38, a quarter to half of the facing
    # columns dim (~55): where the 2 mm label's first bone voxel is a thin shell, the smoothed bone fraction the
    # echo is placed on stays under one half (issue 17, to fix in the renderer). Above 110: the bone's narrower
    # specular lobe (stop 26: rms facet slope 0.35, 26 dB down at 55 degrees) dims the caps the rocking tilts, 116.75
    # on the asymmetric patient of generator 61 (tissue 51). Above 80: issue 17's TGC makes up 0.9 of the loss
    # (tissue 51 -> 36) and the sector's edge lines lose half their transmit aperture: 88.75 over tissue at 35.8.
    assert np.percentile(line, 75) > 2.0 * np.median(tissue) and np.percentile(line, 75) > 80
    assert np.median(shadow) < 0.5 * np.median(tissue)           # the shadow holds only the noise floor
    assert "paramedian sagittal oblique" in page.text_content("#us-caption")
    assert page.locator("#us-monitor").bounding_box()["width"] >= 512    # the frame at the monitor's full size

    # A slide of the probe: a new frame, the one of the new logged pose.
    b.act(page, "#probe-slide-plus")
    moved = Store(database).actions(b.attempt_id(page))[-1]
    # 2 mm along the array; the probe then re-seats on the skin along its beam (up to a voxel, 2 mm here).
    shift = np.subtract(moved["position"], stored["position"])
    assert shift @ np.asarray(stored["lateral"]) == pytest.approx(2.0, abs=0.05)
    assert np.linalg.norm(np.cross(shift - 2.0 * np.asarray(stored["lateral"]), stored["direction"])) < 0.05
    slid = b.image_pixels(page, "#ultrasound")
    before_slide, (reference, _) = reference, _frame(database, page, patient)
    assert _agree(slid, reference) > 0.95  # the new pose's frame (seen: 0.999) ...
    assert _agree(slid, before_slide) < 0.9  # ... not the old one's (seen: 0.80; speckle moves with the tissue)

    # A hint is an action: logged, shown, counted.
    b.act(page, "#hint")
    page.wait_for_selector(f"text={scenario.hints[0]}")
    assert Store(database).actions(b.attempt_id(page))[-1]["type"] == "show_hint"

    # In plane toward the interlaminar window: pick it on the image, insert from the caudal (right) end.
    row, col, _ = reference.lps_to_pixel(patient.landmark("L4-L5.interlaminar_window.center"))
    box = page.locator("#ultrasound").bounding_box()
    page.click("#ultrasound", position={"x": (float(col) + 0.5) / reference.pixels.shape[1] * box["width"],
                                        "y": (float(row) + 0.5) / reference.pixels.shape[0] * box["height"]})
    page.wait_for_function("() => document.querySelector('#us-aim-text').textContent.includes('mm deep')")
    b.act(page, "#insert-in-plane")
    before = b.image_pixels(page, "#ultrasound").astype(float)
    b.set_number(page, "#step", 20.0)
    b.act(page, "#advance")
    after = b.image_pixels(page, "#ultrasound").astype(float)
    live_src = page.get_attribute("#ultrasound", "src")
    reference, session = _frame(database, page, patient)
    needle = session.state.needle
    assert needle.depth_mm == pytest.approx(20.0, abs=0.5)
    shaft = needle.entry + np.linspace(6.0, needle.depth_mm, 60)[:, None] * needle.direction
    rows, cols, off_plane = reference.lps_to_pixel(shaft)
    assert np.abs(off_plane).max() < 0.5  # in plane by construction
    grid_rows, grid_cols = np.indices(reference.pixels.shape)
    near = np.zeros(reference.pixels.shape, bool)
    for r, c in zip(rows, cols):
        near |= (grid_rows - r) ** 2 + (grid_cols - c) ** 2 <= 2.0 ** 2
    near &= reference.field_of_view
    assert near.sum() > 100
    assert after[near].mean() > before[near].mean() + 40 and after[near].mean() > 1.5 * before[near].mean()

    # Finish: the replay shows the same ultrasound frame at that step, re-rendered from the log.
    steps = len(Store(database).actions(b.attempt_id(page)))
    page.click("#finish")
    page.click("#finish-confirm")
    page.wait_for_selector("#report-outcome", timeout=120_000)
    page.locator("[role=slider]").first.focus()
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")  # the step before Finish: the advance
    page.wait_for_function("() => document.querySelector('#replay-action').textContent.includes('advance')")
    assert steps == 6 and page.get_attribute("#replay-ultrasound", "src") == live_src
    assert "You used 1 of the 4 hints (2 grade points off)" in page.text_content("#report-feedback")
    assert page.locator(".us-frame img").count() >= 2  # the PSO view and the final frame


@pytest.mark.parametrize("field, value, control, message", [
    ("us_step_mm", "NaN", "#probe-slide-plus", "probe step (mm): 'NaN' is not a finite number"),
    ("us_step_deg", 90, "#probe-rotate-plus", "a probe rotate step must be at most 45 deg"),
    ("us_step_mm", -2, "#probe-sweep-minus", "the probe step must be positive"),
    ("us_depth", 1e9, "#probe-apply", "probe depth_mm = 1000000000.0 is out of range"),
    ("us_gain", "loud", "#probe-apply", "gain: 'loud' is not a number"),
    ("us_views", ["PSO", "Bogus"], "#probe-view-Bogus", "unknown ultrasound view 'Bogus'"),
    ("live_seconds", "inf", "#live", "live seconds: 'inf' is not a finite number"),
    ("scenario_id", ["ilesi-default"], None, "unknown scenario ['ilesi-default']"),
    ("replay_step", -5, None, "replay step: -5 is out of range"),
])
def test_nonsense_forced_into_the_page_is_refused_with_a_message(server, page, field, value, control, message):
    """Values a page's script could send (the trame state set from the browser) are checked on the
    server: the engine's message is shown, nothing is saved, no traceback."""
    if not page.is_visible("#probe-card"):
        b.log_in(page, server.url, TRAINEE, PASSWORD)
    if not page.is_enabled("#probe-view-PSO"):
        page.click("#tab-sim")
        page.click("#start")
        page.wait_for_selector("#probe-view-PSO:not([disabled])")
        b.act(page, "#probe-view-PSO")
        b.act(page, "#hint")
    saved = b.saved_actions(page)
    page.evaluate("() => { const box = document.querySelector('#error-text'); if (box) box.textContent = ''; }")
    page.evaluate("([field, value]) => window.trame.state.set(field, value)", [field, value])
    if control is not None:
        page.wait_for_selector(control)
        page.click(control)
    page.wait_for_function("m => (document.querySelector('#error-text')?.textContent || '').includes(m)", arg=message,
                           timeout=10_000)
    assert "Traceback" not in page.content() and b.saved_actions(page) == saved
    restore = {"us_step_mm": 2.0, "us_step_deg": 5.0, "us_depth": 80.0, "us_gain": 0.0, "live_seconds": 3.0,
               "us_views": ["PSO", "Articular", "Transverse"], "scenario_id": SCENARIO}
    if field in restore:
        page.evaluate("([field, value]) => window.trame.state.set(field, value)", [field, restore[field]])


def _status(url: str, headers: dict | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_login_gets_the_warm_spare_and_workstations_answer_only_their_portal(server, page):
    def health():
        with urllib.request.urlopen(server.url + "portal/health", timeout=5) as reply:
            return json.loads(reply.read())

    deadline = time.monotonic() + 180
    while health()["spares_warm"] < 1:
        assert time.monotonic() < deadline, health()
        time.sleep(0.5)
    # The spare: forked from the zygote without a user, and not serving (it listens once it is given one).
    (spare,) = [pid for pid in b.workstation_pids(server.process.pid) if not b.listening_ports(pid)]
    b.log_in(page, server.url, LATECOMER, PASSWORD)
    page.wait_for_selector("#start:not([disabled])")
    # The process that now serves the latecomer is the spare that was warm: it got its user and port.
    ports = b.listening_ports(spare)
    assert len(ports) == 1 and page.text_content("#attempt-status") is not None
    checked = set()
    for pid in b.workstation_pids(server.process.pid):
        for port in b.listening_ports(pid):
            url = f"http://127.0.0.1:{port}/"
            assert _status(url) == 403 and _status(url, {"X-Spinesim-Workstation": "guess"}) == 403
            upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                       "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
            assert _status(url + "ws", upgrade) == 403
            checked.add(port)
    # Every listening workstation was refused without its secret: the latecomer's, and any other
    # trainee's this server has (a new spare does not listen until it has a user).
    assert set(ports) <= checked
