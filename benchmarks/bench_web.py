"""Web app: click-to-updated-image latency in headless Chromium, and server memory, on the 1 mm spine.

``spinesim serve`` runs as it does for a trainee (portal + workstation process, the built-in
1 mm patient); Chromium clicks Shot after each 1 mm advance of the needle and measures, in the page,
from the click to the moment the monitor's image changes (``performance.now()`` in a
MutationObserver on the image's ``src``).

Baselines, same run:

- latency against the server-side work of the same frame in this process (``render_shot`` of the
  same state plus the JPEG data URL), so the ratio is what the browser round trip, the store commit
  and the transport add; the absolute median is reported too, against the 250 ms goal;
- memory (resident set of the portal and its workstation, from ``/proc``) idle and after an attempt
  with a contrast injection, against the bytes of the anatomy's arrays (CT + labels).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from anatomy_models.store import load_anatomy
from benchmarks.measure import Measurement
from scenarios.schema import load_scenario
from simulator.planner import plan_trajectory
from simulator.session import Session
from simulator.shots import render_shot
from simulator.store import Store
from simulator.carm import CArm
from simulator.web.attempt import LiveAttempt, jpeg_data_url, needle_angles

CLICKS = 25
_MEASURE_CLICK = """selector => new Promise(resolve => {
  const image = document.querySelector('#fluoro');
  const before = image.getAttribute('src');
  const observer = new MutationObserver(() => {
    if (image.getAttribute('src') !== before) { observer.disconnect(); resolve(performance.now() - start); }
  });
  observer.observe(image, {attributes: true, attributeFilter: ['src']});
  const start = performance.now();
  document.querySelector(selector).click();
})"""


def _rss_bytes(pid: int) -> int:
    """Resident set of a process and its children (the portal and its workstations), bytes."""
    total = 0
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for process in [pid, *map(int, children)]:
        for line in Path(f"/proc/{process}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def run() -> list[Measurement]:
    from playwright.sync_api import sync_playwright

    from tests.simulator.web import browser as b

    anatomy = load_anatomy("default")
    scenario = load_scenario("ilesi-default")
    arrays = anatomy.ct.array.nbytes + (anatomy.labels.array.nbytes if anatomy.labels is not None else 0)
    planned = Session(scenario, anatomy)
    path = plan_trajectory(planned.tracer, planned.target, planned.spec)
    folder = Path(tempfile.mkdtemp(prefix="bench-web-"))
    database = f"sqlite:///{folder / 'spinesim.db'}"
    Store(database).add_user("bench", "trainee", "bench-password")
    server = b.Server(database, "default", "--require-login", log=folder / "serve.log")
    try:
        with sync_playwright() as driver:
            browser = b.launch_browser(driver)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            b.log_in(page, server.url, "bench", "bench-password")
            time.sleep(2.0)
            idle = _rss_bytes(server.process.pid)
            page.click("#start")
            b.wait_saved(page, 1)
            b.act(page, "#shot")
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
                latencies.append(page.evaluate(_MEASURE_CLICK, "#shot"))
                b.wait_saved(page, saved + 1)
            b.set_number(page, "#contrast-ml", 2.0)
            b.act(page, "#inject")
            b.act(page, "#live")
            attempt = b.attempt_id(page)
            time.sleep(1.0)
            after = _rss_bytes(server.process.pid)
            browser.close()
    finally:
        server.stop()

    # The same frames, rendered in this process.
    store = Store(database)
    replayed = LiveAttempt.resume(store, attempt, scenario, anatomy)
    session = replayed.session
    shots = [i for i, a in enumerate(session.actions) if a.type == "fluoro_shot" and a.mode == "pulse"][1:]
    render_times = []
    for index in shots:
        start = time.perf_counter()
        image = render_shot(session, session.states[index + 1], "pulse")
        jpeg_data_url(image.pixels)
        render_times.append(time.perf_counter() - start)
    latency_ms = statistics.median(latencies)
    render_ms = 1e3 * statistics.median(render_times)
    return [
        Measurement(f"click Shot -> new image in Chromium (median of {CLICKS}; {latency_ms:.0f} ms, goal <= 250 ms; "
                    f"p90 {np.percentile(latencies, 90):.0f} ms)", latency_ms, render_ms, "ms",
                    "server-side render + JPEG of the same frame", goal_max=250.0 / render_ms),
        Measurement("server memory idle (portal + workstation)", idle / 1e6, arrays / 1e6, "MB",
                    "anatomy arrays (CT + labels)", goal_max=10.0),
        Measurement("server memory after an attempt with an injection", after / 1e6, arrays / 1e6, "MB",
                    "anatomy arrays (CT + labels)", goal_max=12.0),
    ]
