"""Web app: click-to-updated-image latency in headless Chromium, login to first image, and server memory, on the 1 mm spine.

``spinesim serve`` runs as it does for trainees (portal + workstation processes, the built-in 1 mm
patient) and Chromium drives it:

- **fluoroscopy latency**: Shot after each 1 mm advance of the needle, timed in the page from the
  click to the moment the monitor's image changes (``performance.now()`` in a MutationObserver on the
  image's ``src``); baseline: the server-side work of the same frame in this process
  (``render_shot`` of the same state plus the JPEG data URL), so the ratio is what the browser round
  trip, the store commit and the transport add; the absolute median is reported against 250 ms;
- **ultrasound latency**: a probe slide (ultrasound scenario) to the new frame on the panel, against
  ``render_scan`` + JPEG of the same frames here;
- **live stream while held**: the space bar held (the foot pedal) through ``LIVE_ADVANCES`` advances of
  1 mm, the frames the monitor is given per second while they are made (goal 15, the pulse rate);
  baseline: the frames per second this process makes of the same run (``render_run`` of the held shot
  plus a JPEG each), the rate the server could stream at were nothing else running;
- **login to first image** (click Log in, the simulator opens, Start attempt, Shot, the image shows)
  with the default warm spare, against the same with ``--spare 0`` (the workstation starts at login);
- **memory**: resident sets (``/proc``) of the portal, of a user's workstation idle, after an attempt
  with an injection, after an attempt and its full report, and what ultrasound adds, and of a warm
  spare, against the bytes of the anatomy's arrays (CT + labels).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from anatomy_models.store import load_anatomy
from benchmarks.measure import Measurement
from frontends.pictures.encode import jpeg_data_url
from frontends.store import Store
from frontends.web.attempt import LiveAttempt
from scenarios.schema import load_scenario
from simulator.case.controls import needle_angles
from simulator.case.planner import plan_trajectory
from simulator.imaging.carm import CArm
from simulator.session.fold import Session
from simulator.session.scans import annotate, render_scan
from simulator.session.shots import render_run, render_shot

CLICKS = 25
LIVE_ADVANCES = 10
LIVE_GOAL_FRAMES_PER_SECOND = 15.0  # issue 18: live stream frames per second during an advance
SLIDES = 12
FLUORO_SCENARIO, ULTRASOUND_SCENARIO = "ilesi-default", "ilesi-ultrasound-l4l5-left"
_MEASURE_CLICK = """([selector, image]) => new Promise(resolve => {
  const shown = document.querySelector(image);
  const before = shown.getAttribute('src');
  const observer = new MutationObserver(() => {
    if (shown.getAttribute('src') !== before) { observer.disconnect(); resolve(performance.now() - start); }
  });
  observer.observe(shown, {attributes: true, attributeFilter: ['src']});
  const start = performance.now();
  document.querySelector(selector).click();
})"""


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _health(server) -> dict:
    with urllib.request.urlopen(server.url + "portal/health", timeout=5) as reply:
        return json.loads(reply.read())


def _wait_for_warm_spare(server, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _health(server)["spares_warm"] < 1:
        if time.monotonic() > deadline:
            raise TimeoutError("no spare workstation warmed up")
        time.sleep(0.5)


def _processes(server, b) -> dict:
    """pids of the portal, the workstation serving a user (it listens) and the spare (it does not), both forked
    from the portal's zygote."""
    children = b.workstation_pids(server.process.pid)
    serving = [pid for pid in children if b.listening_ports(pid)]
    spares = [pid for pid in children if pid not in serving]
    return {"portal": server.process.pid, "workstation": serving[0], "spare": spares[0] if spares else None}


def _login_to_first_image(page, server, b) -> float:
    """Seconds from clicking Log in to the first fluoroscopy image of a new attempt on screen."""
    page.goto(server.url + "login")
    page.fill("#name", "bench")
    page.fill("#password", "bench-password")
    start = time.perf_counter()
    page.click("#login")
    page.wait_for_selector("#start:not([disabled])", timeout=300_000)
    page.click("#start")
    b.wait_saved(page, 1)
    page.click("#shot")
    page.wait_for_selector("#fluoro[src^='data:image']", timeout=60_000)
    return time.perf_counter() - start


def _live_frames_per_second(page, b) -> float:
    """Frames per second the monitor is given while the space bar is held through ``LIVE_ADVANCES``
    advances (from the first advance's press to the last one's answer)."""
    begun, ended = b.advance_while_held_live(page, LIVE_ADVANCES)
    saved = b.saved_actions(page)
    page.keyboard.up(" ")
    b.wait_saved(page, saved + 1)
    frames = page.evaluate("() => window.liveFrames")
    return sum(begun <= t <= ended for t, _ in frames) / ((ended - begun) / 1e3)


def _server(b, folder: Path, name: str, *extra: str):
    database = f"sqlite:///{folder / f'{name}.db'}"
    Store(database).add_user("bench", "trainee", "bench-password")
    return b.Server(database, "default", "--require-login", *extra, log=folder / f"{name}.log"), database


def run() -> list[Measurement]:
    from playwright.sync_api import sync_playwright

    from tests.frontends.web import browser as b

    anatomy = load_anatomy("default")
    scenario = load_scenario(FLUORO_SCENARIO)
    arrays = anatomy.ct.array.nbytes + (anatomy.labels.array.nbytes if anatomy.labels is not None else 0)
    planned = Session(scenario, anatomy)
    path = plan_trajectory(planned.tracer, planned.target, planned.spec)
    folder = Path(tempfile.mkdtemp(prefix="bench-web-"))
    memory: dict[str, float] = {}

    # Run A: the default server (one warm spare), the fluoroscopy scenario.
    server, database = _server(b, folder, "warm", "--scenario", FLUORO_SCENARIO)
    try:
        with sync_playwright() as driver:
            browser = b.launch_browser(driver)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            _wait_for_warm_spare(server)
            login_warm = _login_to_first_image(page, server, b)
            _wait_for_warm_spare(server)  # the next spare, warmed while this trainee works
            time.sleep(2.0)
            pids = _processes(server, b)
            memory |= {"portal": _rss_bytes(pids["portal"]), "idle": _rss_bytes(pids["workstation"]),
                       "spare": _rss_bytes(pids["spare"])}
            carm_isocenter = Store(database).actions(b.attempt_id(page))[0]["isocenter"]
            shown = CArm(isocenter=carm_isocenter)
            left, cranial = needle_angles(path.direction)
            b.set_number(page, "#needle-left", left)
            b.set_number(page, "#needle-cranial", cranial)
            b.click_pixel(page, *shown.project(path.entry))
            page.wait_for_function("() => document.querySelector('#entry-text').textContent.includes(' mm')")
            b.act(page, "#insert")
            b.set_number(page, "#step", 1.0)
            latencies = []
            for _ in range(CLICKS):
                b.act(page, "#advance")
                saved = b.saved_actions(page)
                page.wait_for_selector("#shot:not([disabled])")
                latencies.append(page.evaluate(_MEASURE_CLICK, ["#shot", "#fluoro"]))
                b.wait_saved(page, saved + 1)
            live_fps = _live_frames_per_second(page, b)
            b.set_number(page, "#contrast-ml", 2.0)
            b.act(page, "#inject")
            b.act(page, "#live")
            attempt = b.attempt_id(page)
            time.sleep(1.0)
            memory["after"] = _rss_bytes(pids["workstation"])
            browser.close()
    finally:
        server.stop()

    # Run B: no spare (the workstation starts at login); then an attempt at the ultrasound scenario.
    server, us_database = _server(b, folder, "cold", "--spare", "0", "--scenario", FLUORO_SCENARIO)
    try:
        with sync_playwright() as driver:
            browser = b.launch_browser(driver)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            time.sleep(5.0)  # the portal is up and idle, as it was when run A's spare was warm
            login_cold = _login_to_first_image(page, server, b)
            page.click("#finish")
            page.wait_for_selector("#report-page", timeout=300_000)  # the full report is made
            time.sleep(1.0)
            memory["reported"] = _rss_bytes(_processes(server, b)["workstation"])
            page.click("#new-attempt")
            page.evaluate("id => window.trame.state.set('scenario_id', id)", ULTRASOUND_SCENARIO)
            page.wait_for_selector("#probe-card")
            page.click("#start")
            b.wait_saved(page, 1)
            b.act(page, "#probe-view-PSO")
            slides = []
            for number in range(SLIDES):
                control = "#probe-slide-plus" if number % 4 < 2 else "#probe-slide-minus"
                saved = b.saved_actions(page)
                page.wait_for_selector(f"{control}:not([disabled])")
                slides.append(page.evaluate(_MEASURE_CLICK, [control, "#ultrasound"]))
                b.wait_saved(page, saved + 1)
            us_attempt = b.attempt_id(page)
            time.sleep(1.0)
            memory["ultrasound"] = _rss_bytes(_processes(server, b)["workstation"])
            browser.close()
    finally:
        server.stop()

    # The same frames, rendered in this process.
    replayed = LiveAttempt.resume(Store(database), attempt, scenario, anatomy).session
    shots = [i for i, a in enumerate(replayed.actions) if a.type == "fluoro_shot" and a.mode == "pulse"][1:]
    render_times = []
    for index in shots:
        start = time.perf_counter()
        jpeg_data_url(render_shot(replayed, replayed.states[index + 1], "pulse").pixels)
        render_times.append(time.perf_counter() - start)
    held = next(i for i, a in reversed(list(enumerate(replayed.actions))) if a.type == "fluoro_shot" and a.held)
    action = replayed.actions[held]
    start = time.perf_counter()
    run = render_run(replayed, replayed.states[held + 1], "live", action.seconds, action.frames_per_second, held=True)
    for frame in run.frames:
        jpeg_data_url(frame.pixels)
    made_fps = len(run.frames) / (time.perf_counter() - start)
    us_scenario = load_scenario(ULTRASOUND_SCENARIO)
    scanned = LiveAttempt.resume(Store(us_database), us_attempt, us_scenario, anatomy).session
    scan_times = []
    for index in range(len(scanned.actions) - SLIDES, len(scanned.actions)):
        start = time.perf_counter()
        jpeg_data_url(annotate(render_scan(scanned, scanned.states[index + 1])))
        scan_times.append(time.perf_counter() - start)

    latency_ms, render_ms = statistics.median(latencies), 1e3 * statistics.median(render_times)
    slide_ms, scan_ms = statistics.median(slides), 1e3 * statistics.median(scan_times)
    mb = {name: value / 1e6 for name, value in memory.items()}
    arrays_mb = arrays / 1e6
    return [
        Measurement(f"click Shot -> new image in Chromium (median of {CLICKS}; {latency_ms:.0f} ms, goal <= 250 ms; "
                    f"p90 {np.percentile(latencies, 90):.0f} ms)", latency_ms, render_ms, "ms",
                    "server-side render + JPEG of the same frame", goal_max=250.0 / render_ms),
        Measurement(f"click probe slide -> new ultrasound frame (median of {SLIDES}; {slide_ms:.0f} ms, goal <= 250 ms)",
                    slide_ms, scan_ms, "ms", "server-side render_scan + JPEG of the same frame",
                    goal_max=250.0 / scan_ms),
        Measurement(f"live stream while held, frames/s during {LIVE_ADVANCES} advances in Chromium ({live_fps:.1f}, "
                    f"goal >= {LIVE_GOAL_FRAMES_PER_SECOND:g})", live_fps, made_fps, "frames/s",
                    "frames/s this process renders + JPEGs of the same run",
                    goal_min=LIVE_GOAL_FRAMES_PER_SECOND / made_fps),
        Measurement(f"login -> first image with a warm spare ({login_warm:.1f} s)", login_warm, login_cold, "s",
                    "the same with --spare 0", goal_max=0.5),
        Measurement("server memory idle (portal + a user's workstation)", mb["portal"] + mb["idle"], arrays_mb, "MB",
                    "anatomy arrays (CT + labels)", goal_max=10.0),
        Measurement("server memory after an attempt with an injection", mb["portal"] + mb["after"], arrays_mb, "MB",
                    "anatomy arrays (CT + labels)", goal_max=12.0),
        Measurement("portal alone", mb["portal"], arrays_mb, "MB", "anatomy arrays (CT + labels)", goal_max=1.0),
        Measurement("a warm spare workstation", mb["spare"], arrays_mb, "MB", "anatomy arrays (CT + labels)",
                    goal_max=6.0),
        Measurement("a workstation after an attempt and its full report (3D reveal)", mb["reported"], arrays_mb, "MB",
                    "anatomy arrays (CT + labels)", goal_max=7.0),
        Measurement("what ultrasound adds to it (acoustic and tissue maps, kernel)", mb["ultrasound"] - mb["reported"],
                    arrays_mb, "MB", "anatomy arrays (CT + labels)", goal_max=2.0),
    ]
