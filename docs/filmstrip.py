"""Issue 18's filmstrip: a transforaminal attempt made only with the view-relative controls, as the monitor
showed it in headless Chromium, one PNG a step.

Run from the repository root (``./dev.sh`` installs Playwright, the test extra, and Chromium)::

    PYTHONPATH=. .venv/bin/python docs/filmstrip.py OUT_FOLDER

It starts ``spinesim serve --require-login`` on the built-in 1 mm spine (the generated patient from the
usual cache, ``$SPINESIM_HOME/generated``) at the default transforaminal case and works it as a
trainee does with the C-arm down the barrel: the C-arm turned along the planner's path
(:mod:`simulator.case.planner`), the entry picked on the image over the target, Align with beam (A),
Insert, a shot (the needle a dot over the target), a nudge on the image (the arrow keys) and Redirect
where the dot sits off the target, then the lateral preset and the needle advanced while Live is held
(the space bar, the foot pedal), each streamed frame as the monitor showed it, and the hold once Live
is let go. No angle or depth is typed but the C-arm's and the step.

Each PNG is the monitor as Chromium painted it (its screenshot), named ``NN-step.png``; ``page.png`` is
the whole screen at the end.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

from anatomy_models.home import spinesim_home
from anatomy_models.store import load_anatomy
from frontends.store import Store
from scenarios.schema import load_scenario
from simulator.case.controls import needle_angles
from simulator.case.planner import plan_trajectory
from simulator.imaging.carm import CArm
from simulator.session.fold import Session
from tests.frontends.web import browser as b

CASE = "tfesi-default"
TRAINEE, PASSWORD = "resident", "filmstrip-only"
VIEWPORT = {"width": 1600, "height": 1000}
# How far the needle goes in before the down-the-barrel check, mm, and in how many steps under live it then
# goes on to the planned depth.
ENGAGE_MM, LIVE_STEPS = 20.0, 4
# Where the trainee's click lands beside the target on the down-the-barrel image, pixels (512 across): a hand's
# imprecision, which the nudges then correct.
PICKED_OFF_PX = np.array([9.0, -7.0])
WARM_TIMEOUT_S = 600


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    anatomy = load_anatomy("default")
    scenario = load_scenario(CASE)
    planned = Session(scenario, anatomy)
    path = plan_trajectory(planned.tracer, planned.target, planned.spec)
    folder = Path(tempfile.mkdtemp(prefix="spinesim-filmstrip-"))
    home = folder / "home"
    home.mkdir()
    (home / "generated").symlink_to(spinesim_home() / "generated", target_is_directory=True)
    database = b.database_with_users(home, {TRAINEE: "trainee"}, PASSWORD)
    server = b.Server(database, "default", "--require-login", "--scenario", CASE, log=folder / "serve.log",
                      environment={"SPINESIM_HOME": str(home)})
    frame = iter(range(1, 100))

    def save(step: str) -> None:
        b.wait_painted(page, "#fluoro")
        page.locator("#monitor").screenshot(path=str(out / f"{next(frame):02d}-{step}.png"))

    try:
        with sync_playwright() as driver:
            browser = b.launch_browser(driver)
            page = browser.new_page(viewport=VIEWPORT)
            wait_for_warm_spare(server)  # the 1 mm patient's workstation warms up first (minutes on a busy machine)
            page.goto(server.url + "login")
            page.fill("#name", TRAINEE)
            page.fill("#password", PASSWORD)
            page.click("#login")
            page.wait_for_selector("#start:not([disabled])", timeout=WARM_TIMEOUT_S * 1000)
            page.click("#start")
            b.wait_saved(page, 1)
            isocenter = Store(database).actions(b.attempt_id(page))[0]["isocenter"]
            b.act(page, "#shot")
            save("start-pose-shot")

            # Down the barrel: the C-arm along the planned path (the needle's angles with the sign flipped).
            left, cranial = needle_angles(path.direction)
            set_carm(page, -left, -cranial)
            b.act(page, "#shot")
            carm = CArm(primary_deg=-left, secondary_deg=-cranial, isocenter=isocenter)
            save(f"down-the-barrel-oblique-{abs(left):.0f}deg-shot")
            b.click_pixel(page, *(carm.project(path.tip) + PICKED_OFF_PX))
            page.wait_for_function("() => document.querySelector('#entry-text').textContent.includes(' mm')")
            b.press_key(page, "a", "#align-beam")
            save("entry-picked-over-target-aligned-with-beam")
            b.act(page, "#insert")
            b.set_number(page, "#step", ENGAGE_MM)
            b.act(page, "#advance")
            b.act(page, "#shot")
            save(f"inserted-{ENGAGE_MM:.0f}mm-down-the-barrel-shot")

            # The dot off the target: nudge on the image toward it (1 degree a press), Redirect, look again.
            presses = nudges_toward_target(carm, database, page, path)
            for key, count in presses.items():
                for _ in range(count):
                    b.press_key(page, key, "#nudge-right-1")
            if presses:
                b.act(page, "#redirect")
                b.set_number(page, "#step", ENGAGE_MM)
                b.act(page, "#advance")
                b.act(page, "#shot")
                save("nudged-toward-target-redirected-shot")

            # Depth on the lateral, advancing while Live is held.
            b.act(page, "#preset-Lateral")
            b.act(page, "#shot")
            save("lateral-shot-before-advancing")
            page.wait_for_selector("#advance:not([disabled])")
            page.locator("#advance").focus()
            page.evaluate(b.RECORD_FRAMES)
            page.keyboard.down(" ")
            page.wait_for_function("() => window.liveFrames.length >= 2")
            save("live-held-first-frame")
            depth_mm = page.evaluate("() => window.trame.state.get('depth_mm')")  # the depth counter's
            steps_mm = np.full(LIVE_STEPS, (path.depth_mm - depth_mm) / LIVE_STEPS)
            for number, step_mm in enumerate(steps_mm, start=1):
                b.set_number(page, "#step", step_mm)
                page.locator("#advance").focus()
                saved = b.saved_actions(page)
                seen = page.evaluate("() => window.liveFrames.length")
                b.press_key(page, "Enter", "#advance")
                b.wait_saved(page, saved + 1)
                page.wait_for_function("n => window.liveFrames.length >= n + 3", arg=seen)
                save(f"live-held-advance-{number}-{step_mm:.0f}mm")
            saved = b.saved_actions(page)
            started = time.monotonic()
            page.keyboard.up(" ")
            b.wait_saved(page, saved + 1)
            page.wait_for_function("() => document.querySelector('#fluoro-caption').textContent.includes('held')")
            save("live-released-last-image-hold")
            frames = page.evaluate("() => window.liveFrames")
            span_s = (frames[-1][0] - frames[0][0]) / 1e3
            print(f"{len(frames)} pictures on the monitor in {span_s:.1f} s of live ({len(frames) / span_s:.1f}/s); "
                  f"released to hold {time.monotonic() - started:.2f} s")
            page.screenshot(path=str(out / "page.png"))
            browser.close()
    finally:
        server.stop()


def wait_for_warm_spare(server) -> None:
    deadline = time.monotonic() + WARM_TIMEOUT_S
    while True:
        with urllib.request.urlopen(server.url + "portal/health", timeout=10) as reply:
            if json.loads(reply.read())["spares_warm"] >= 1:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no warm workstation after {WARM_TIMEOUT_S} s")
        time.sleep(1.0)


def set_carm(page, primary_deg: float, secondary_deg: float) -> None:
    b.set_number(page, "#carm-primary", primary_deg)
    b.set_number(page, "#carm-secondary", secondary_deg)
    b.act(page, "#move-carm")


def nudges_toward_target(carm: CArm, database: str, page, path) -> dict[str, int]:
    """The arrow keys to press (1 degree each) so that the needle, at the planned depth, lands over the
    target on the image of ``carm``: where the stored needle would end against where the target is."""
    placed = next(a for a in reversed(Store(database).actions(b.attempt_id(page))) if a["type"] == "place_needle")
    end = np.asarray(placed["entry"]) + path.depth_mm * np.asarray(placed["direction"])
    right_px, down_px = carm.project(path.tip) - carm.project(end)
    # One degree turns the needle's end by depth x tan(1 degree), magnified onto the detector's pixels.
    per_degree_px = path.depth_mm * np.tan(np.radians(1.0)) * carm.magnification / carm.pixel_size_mm
    presses = {}
    for offset, (positive, negative) in ((right_px, ("ArrowRight", "ArrowLeft")), (-down_px, ("ArrowUp", "ArrowDown"))):
        count = int(round(abs(offset) / per_degree_px))
        if count:
            presses[positive if offset > 0 else negative] = min(count, 5)
    return presses


if __name__ == "__main__":
    main(Path(sys.argv[1]))
