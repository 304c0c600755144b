"""Capacity: N trainees doing attempts at once on one ``spinesim serve``, each in their own browser, on loopback.

The server runs as it does for a department (portal + one workstation process per trainee, the built-in
1 mm patient, SQLite, ``--spare 0``). For each N in :data:`TRAINEES` (bounded: ``SPINESIM_LOAD_MAX``, default
4), N trainees log in at the same moment in one headless Chromium (a browser context each), start an attempt
and take :data:`SHOTS` fluoroscopy shots as fast as the screen lets them (the next after the last image
shows and its action is saved), all at once: the worst case. ``SPINESIM_LOAD_THINK_S`` (default 0) adds a
pause before each shot, as a trainee looks at the image and moves the needle between shots. Measured:

- **shot latency**: click Shot to the new image on screen (``performance.now()`` in a MutationObserver, as in
  :mod:`benchmarks.bench_web`), p90 over every trainee's shots; goal under 1 s;
- **nothing lost**: every trainee's stored actions equal the actions their screen said were saved;
- **memory**: each workstation's resident set after its attempt (median over the N).

The largest N whose p90 stays under 1 s with nothing lost is the capacity on this machine; the figures
depend on its cores (``os.cpu_count()`` is printed with them) and on what else runs on it.

Run: ``python -m benchmarks load`` (``SPINESIM_LOAD_MAX=8`` to try more trainees, ``SPINESIM_LOAD_THINK_S=3``
for a pause of 3 s before each shot).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_web import _MEASURE_CLICK, _rss_bytes
from benchmarks.measure import Measurement
from frontends.store import Store

TRAINEES = (1, 2, 4, 8, 16)
SHOTS = 8
SCENARIO = "ilesi-default"
PASSWORD = "load-test-password"
GOAL_P90_MS = 1000.0


async def _trainee(browser, url: str, name: str, think_s: float) -> tuple[list[float], int, int]:
    """One trainee: log in, start, take :data:`SHOTS` shots. Returns the latencies (ms), the actions the
    screen said were saved, and the attempt's id."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    await page.goto(url + "login")
    await page.fill("#name", name)
    await page.fill("#password", PASSWORD)
    await page.click("#login")
    await page.wait_for_selector("#start:not([disabled])", timeout=600_000)
    await page.click("#start")
    await _wait_saved(page, 1)
    latencies = []
    for number in range(SHOTS):
        await asyncio.sleep(think_s)
        await page.wait_for_selector("#shot:not([disabled])", timeout=120_000)
        latencies.append(await page.evaluate(_MEASURE_CLICK, ["#shot", "#fluoro"]))
        await _wait_saved(page, number + 2)
    status = await page.text_content("#attempt-status")
    attempt = int(status.split()[1])
    saved = int(status.split("·")[1].split()[0])
    await context.close()
    return latencies, saved, attempt


async def _wait_saved(page, count: int) -> None:
    await page.wait_for_function(
        "n => (document.querySelector('#attempt-status')?.textContent || '').includes(n + ' actions saved')",
        arg=count, timeout=120_000)


async def _round(url: str, names: list[str], think_s: float) -> list[tuple[list[float], int, int]]:
    from playwright.async_api import async_playwright

    from tests.frontends.web.browser import CHROMIUM, CHROMIUM_ARGS

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            return await asyncio.gather(*(_trainee(browser, url, name, think_s) for name in names))
        finally:
            await browser.close()


def load_round(trainees: int, folder: Path, think_s: float = 0.0) -> dict:
    """One round with ``trainees`` at once on a fresh server: p90 and median latency (ms), whether nothing was
    lost, the workstations' median resident set (bytes) after the attempts, and the wall time (s)."""
    from tests.frontends.web import browser as b

    database = f"sqlite:///{folder / f'load-{trainees}.db'}"
    store = Store(database)
    names = [f"trainee{number:02d}" for number in range(trainees)]
    for name in names:
        store.add_user(name, "trainee", PASSWORD)
    server = b.Server(database, "default", "--require-login", "--spare", "0", "--scenario", SCENARIO,
                      log=folder / f"load-{trainees}.log")
    try:
        started = time.perf_counter()
        results = asyncio.run(_round(server.url, names, think_s))
        wall_s = time.perf_counter() - started
        workstations = b.workstation_pids(server.process.pid)
        resident = [_rss_bytes(pid) for pid in workstations]
    finally:
        server.stop()
    latencies = [ms for shots, _, _ in results for ms in shots]
    lost = sum(saved - len(store.actions(attempt)) for _, saved, attempt in results)
    complete = all(saved == SHOTS + 1 for _, saved, _ in results)
    return {"p90_ms": float(np.percentile(latencies, 90)), "median_ms": statistics.median(latencies),
            "nothing_lost": lost == 0 and complete, "resident_bytes": statistics.median(resident), "wall_s": wall_s}


def run() -> list[Measurement]:
    bound = int(os.environ.get("SPINESIM_LOAD_MAX", "4"))
    think_s = float(os.environ.get("SPINESIM_LOAD_THINK_S", "0"))
    folder = Path(tempfile.mkdtemp(prefix="bench-load-"))
    found: dict[int, dict] = {}
    for trainees in [n for n in TRAINEES if n <= bound]:
        found[trainees] = load_round(trainees, folder, think_s)
        print(f"{trainees} trainees at once on {os.cpu_count()} cores, {think_s:g} s before each shot: "
              f"{found[trainees]}", flush=True)
        if found[trainees]["p90_ms"] >= GOAL_P90_MS or not found[trainees]["nothing_lost"]:
            break
    carried = max((n for n, r in found.items() if r["p90_ms"] < GOAL_P90_MS and r["nothing_lost"]), default=0)
    single = found[min(found)]
    pause = f", {think_s:g} s before each shot" if think_s else ", shots back to back"
    return [Measurement(f"{n} trainees at once{pause}: shot p90 ({r['p90_ms']:.0f} ms, median {r['median_ms']:.0f} ms; "
                        f"{'nothing lost' if r['nothing_lost'] else 'ACTIONS LOST'})", r["p90_ms"], GOAL_P90_MS, "ms",
                        "the goal, 1 s", goal_max=1.0) for n, r in found.items()] + [
        Measurement(f"largest N with shot p90 < 1 s and nothing lost, on {os.cpu_count()} cores (of at most {bound})",
                    float(carried), 1.0, "trainees", "one trainee", goal_min=1.0),
        Measurement("a workstation's memory after an attempt (median)", single["resident_bytes"] / 1e9, 0.3, "GB",
                    "the goal, 0.3 GB", goal_max=1.0)]
