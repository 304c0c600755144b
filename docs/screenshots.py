"""The README's four screenshots, made the way a trainee and an instructor make them.

Run from the repository root (``./dev.sh`` installs Playwright, the test extra, and Chromium)::

    PYTHONPATH=. .venv/bin/python docs/screenshots.py

It starts ``spinesim serve --require-login`` on the built-in spine with a throwaway home and
database (the generated patient comes from the usual cache, ``$SPINESIM_HOME/generated``, so it is
not regenerated), and drives headless Chromium with the browser tests' helpers
(:mod:`tests.frontends.web.browser`):

1. the trainee ``resident`` makes a first attempt at the default case that goes on through the
   epidural space into the dural sac (it fails), then the expert's attempt (:mod:`simulator.case.planner`)
   with the same controls, paced at the planner's timestamps: ``trainee.jpg`` just after the live run
   of the epidurogram on the contralateral oblique, ``report.jpg`` after Finish;
2. a second trainee, ``kim``, takes the ultrasound case: the paramedian sagittal oblique view, the
   target picked on the ultrasound image, an in-plane needle into the ligamentum flavum with
   loss-of-resistance checks, an AP shot: ``ultrasound.jpg``;
3. the instructor ``dr-lee`` opens Review for ``resident``: attempts, learning curve and a scenario
   preview: ``instructor.jpg``.

Scenarios, the expert path and every image are seeded, so a rerun makes the same pictures up to the
clock (timer, dates, seconds on the events). Screenshots are taken at 1600 x 1000 CSS pixels and
scaled to the README's sizes (:data:`SIZES`).
"""

from __future__ import annotations

import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import sync_playwright

from anatomy_models.home import spinesim_home
from anatomy_models.store import load_anatomy
from frontends.store import Store
from scenarios.schema import load_scenario
from simulator.case.planner import expert_actions, plan_trajectory
from simulator.session.fold import Session
from simulator.session.history import replay_attempt
from simulator.session.scans import render_scan
from tests.frontends.web import browser as b

IMAGES = Path(__file__).resolve().parent / "images"
VIEWPORT = {"width": 1600, "height": 1000}
# README image sizes, pixels (width, height).
SIZES = {"trainee": (1100, 687), "ultrasound": (1120, 700), "report": (1100, 687), "instructor": (1100, 687)}
JPEG_QUALITY = 85
FLUORO_CASE, ULTRASOUND_CASE = "ilesi-default", "ilesi-ultrasound-l4l5-left"
RESIDENT, SECOND_TRAINEE, INSTRUCTOR = "resident", "kim", "dr-lee"
PASSWORD = "screenshots-only"
# Seconds a trainee takes between ultrasound steps (looking at the image, reaching for a control).
US_PAUSE_S = 4.0
# Needle steps are typed to this precision, mm.
TYPED_STEP_MM = 0.5


def main() -> None:
    started = time.monotonic()
    anatomy = load_anatomy("default")  # generated into the usual cache on first use
    fluoro_case, us_case = load_scenario(FLUORO_CASE), load_scenario(ULTRASOUND_CASE)
    planned = Session(fluoro_case, anatomy)
    expert = expert_actions(fluoro_case, planned.target, plan_trajectory(planned.tracer, planned.target, planned.spec))

    folder = Path(tempfile.mkdtemp(prefix="spinesim-screenshots-"))
    home = folder / "home"
    home.mkdir()
    (home / "generated").symlink_to(spinesim_home() / "generated", target_is_directory=True)
    database = b.database_with_users(home, {RESIDENT: "trainee", SECOND_TRAINEE: "trainee", INSTRUCTOR: "instructor"},
                                     PASSWORD)
    server = b.Server(database, "default", "--require-login", "--scenario", FLUORO_CASE, log=folder / "serve.log",
                      environment={"SPINESIM_HOME": str(home)})
    try:
        with sync_playwright() as driver:
            browser = b.launch_browser(driver)
            page = _logged_in(browser, server, RESIDENT)
            _plunge(page, fluoro_case, anatomy, database, expert, planned)
            page.click("#new-attempt")
            _expert_attempt(page, fluoro_case, anatomy, database, expert)
            page.context.close()
            _ultrasound_attempt(_logged_in(browser, server, SECOND_TRAINEE), us_case, anatomy, database)
            _review(_logged_in(browser, server, INSTRUCTOR))
            browser.close()
    except Exception:
        print(f"screenshots failed; the server's log is {folder / 'serve.log'}", file=sys.stderr)
        raise
    finally:
        server.stop()
    shutil.rmtree(folder)
    print(f"wrote {', '.join(f'{name}.jpg' for name in SIZES)} in {IMAGES} ({time.monotonic() - started:.0f} s)")


def _logged_in(browser, server, name: str):
    page = browser.new_context(viewport=VIEWPORT).new_page()
    b.log_in(page, server.url, name, PASSWORD)
    page.wait_for_selector("#start:not([disabled])", timeout=300_000)
    return page


def _perform_paced(trainee: b.Trainee, records: list[dict], begun: float) -> None:
    """Perform ``records`` no earlier than their timestamps (s after ``begun``, a monotonic time):
    the attempt takes a trainee's time, so its clock, events and report read like one."""
    for record in records:
        time.sleep(max(0.0, begun + record["t"] - time.monotonic()))
        trainee.perform(record)


def _as_typed(records: list[dict]) -> list[dict]:
    """``records`` with every advance rounded as a trainee types it (:data:`TYPED_STEP_MM`), the
    needle's depth after each within half a step of the planned one."""
    typed, planned, done = [], 0.0, 0.0
    for record in records:
        if record["type"] == "advance":
            planned += record["mm"]
            depth = round(planned / TYPED_STEP_MM) * TYPED_STEP_MM
            record, done = dict(record, mm=depth - done), depth
        typed.append(record)
    return typed


def _plunge(page, scenario, anatomy, database, expert: list[dict], planned: Session) -> None:
    """A first attempt: the expert's opening, then one push along the same line past the epidural
    space into the dural sac (CSF at the hub), a shot, and Finish."""
    place = next(record for record in expert if record["type"] == "place_needle")
    path = planned.tracer.trace(np.asarray(place["entry"]), np.asarray(place["direction"]), 150.0)
    csf = next(segment for segment in path.segments if segment.tissue == "csf")
    t = place["t"]
    records = expert[:expert.index(place) + 1] + [
        {"type": "advance", "t": t + 7.0, "mm": round(0.5 * (csf.depth_in_mm + csf.depth_out_mm), 2)},
        {"type": "fluoro_shot", "t": t + 10.0, "mode": "pulse"},
        {"type": "finish", "t": t + 16.0}]
    trainee = b.Trainee(page, scenario, anatomy, database)
    trainee.start()
    _perform_paced(trainee, _as_typed(records), time.monotonic())


def _expert_attempt(page, scenario, anatomy, database, expert: list[dict]) -> None:
    """The expert path through the controls: trainee.jpg after the contrast run, report.jpg after Finish."""
    expert = _as_typed(expert)
    trainee = b.Trainee(page, scenario, anatomy, database)
    trainee.start()
    begun = time.monotonic()
    run = next(i for i, record in enumerate(expert) if record["type"] == "fluoro_shot" and record["mode"] != "pulse")
    _perform_paced(trainee, expert[:run + 1], begun)
    b.wait_painted(page, "#fluoro")
    _save(page, "trainee")
    _perform_paced(trainee, expert[run + 1:], begun)
    page.wait_for_selector("#report-page", timeout=300_000)  # the full report, made after the grade
    b.wait_painted(page, "#replay-image", ".filmstrip img")
    _save(page, "report")


def _ultrasound_attempt(page, scenario, anatomy, database) -> None:
    """Scan first, then an in-plane needle into the ligamentum flavum of the L4-L5 window: ultrasound.jpg."""
    b.choose(page, "#scenario", scenario.title, prefix=True)
    page.wait_for_selector("#probe-card")
    page.click("#start")
    b.wait_saved(page, 1)
    steps = [lambda: b.act(page, "#hint"), lambda: b.act(page, "#probe-view-PSO"),
             lambda: _aim_at_target(page, scenario, anatomy, database), lambda: b.act(page, "#insert-in-plane")]
    for step in steps:
        time.sleep(US_PAUSE_S)
        step()
    session = _replayed(scenario, anatomy, database, page)
    needle = session.state.needle
    path = session.tracer.trace(needle.entry, needle.direction, needle.spec.length_mm)
    flavum = next((segment.depth_in_mm for segment in path.segments
                   if segment.structure.startswith("ligamentum_flavum")), None)
    # The in-plane line may pass beside the flavum's edge: then the target's depth along the needle stands in.
    depth_mm = flavum + 2.0 if flavum is not None else float((session.target.point - needle.entry) @ needle.direction)
    # Two thirds of the way and a check, then on into the flavum (or to the target's depth) and check again.
    advances = _as_typed([{"type": "advance", "mm": 0.65 * depth_mm}, {"type": "advance", "mm": 0.35 * depth_mm}])
    for advance in advances:
        time.sleep(US_PAUSE_S)
        b.set_number(page, "#step", advance["mm"])
        b.act(page, "#advance")
        time.sleep(US_PAUSE_S / 2)
        b.act(page, "#lor")
    time.sleep(US_PAUSE_S)
    b.act(page, "#shot")
    b.wait_painted(page, "#fluoro", "#ultrasound")
    _save(page, "ultrasound")


def _replayed(scenario, anatomy, database, page) -> Session:
    """The attempt on screen, rebuilt from its stored actions."""
    return replay_attempt(scenario, anatomy, Store(database).actions(b.attempt_id(page))).session


def _aim_at_target(page, scenario, anatomy, database) -> None:
    """Click the case's target (the dorsal epidural space) where the ultrasound frame shows it."""
    session = _replayed(scenario, anatomy, database, page)
    frame = render_scan(session, session.state)
    row, col, _ = frame.lps_to_pixel(session.target.point)
    rows, cols = frame.pixels.shape
    box = page.locator("#ultrasound").bounding_box()
    page.click("#ultrasound", position={"x": (float(col) + 0.5) / cols * box["width"],
                                        "y": (float(row) + 0.5) / rows * box["height"]})
    page.wait_for_function("() => document.querySelector('#us-aim-text').textContent.includes('mm deep')")


def _review(page) -> None:
    """The instructor's Review tab: the resident's attempts and learning curve, a case preview."""
    page.click("#tab-review")
    b.choose(page, "#review-trainee", f"{RESIDENT} (trainee)")
    page.wait_for_selector("#curve svg")
    page.click("#preview")
    page.wait_for_selector("#preview-image[src^='data:image/jpeg']", timeout=120_000)
    b.wait_painted(page, "#preview-image")
    _save(page, "instructor")


def _save(page, name: str) -> None:
    """The viewport as docs/images/NAME.jpg at the README's size; the screen must show no error."""
    if page.is_visible("#error-text"):
        raise RuntimeError(f"{name}: the screen shows an error: {page.text_content('#error-text')}")
    # No hover or focus highlight on the last control clicked; its ripple fades.
    page.mouse.move(1, VIEWPORT["height"] - 1)
    page.evaluate("() => document.activeElement?.blur()")
    page.wait_for_timeout(300)
    shot = Image.open(io.BytesIO(page.screenshot(type="png"))).convert("RGB")
    shot.resize(SIZES[name], Image.LANCZOS).save(IMAGES / f"{name}.jpg", quality=JPEG_QUALITY, optimize=True)


if __name__ == "__main__":
    main()
