"""Drive ``spinesim serve`` in headless Chromium: start the server on a free loopback port, log in,
work the controls as a trainee would, read pixels, stop the server by its PID."""

from __future__ import annotations

import base64
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from scipy import ndimage

from frontends.store import Store
from simulator.case.controls import needle_angles, view_isocenter
from simulator.imaging.carm import CArm
from simulator.session.fold import AGENT_WORDS, READING_WORDS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``spinesim serve`` in a child process (its own process group, so that a kill takes its
    workstations too when PR_SET_PDEATHSIG is not available)."""

    def __init__(self, db_url: str, anatomy: str, *extra: str, log: Path,
                 environment: dict[str, str] | None = None) -> None:
        """``environment``: variables for the server beyond this process's own (e.g. ``SPINESIM_HOME``)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        environment = dict(os.environ, **(environment or {}), PYTHONPATH=str(ROOT))
        self.log = open(log, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "frontends.cli", "serve", "--port", str(self.port), "--db", db_url, "--anatomy",
             anatomy, *extra], env=environment, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            self.wait_listening()
        except (RuntimeError, TimeoutError):
            self.stop()  # a server that did not come up is not left running with no one to stop it
            raise

    def wait_listening(self, timeout: float = 180.0) -> None:
        """Wait until the server listens (``timeout`` s at most: its start took over 60 s at load 20 on 2 cores)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"spinesim serve exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("spinesim serve did not start listening")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean-up runs."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM, as a service manager stops it; SIGKILL if it has not ended after ``timeout_s``."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def database_with_users(folder: Path, users: dict[str, str], password: str) -> str:
    """A new SQLite store in ``folder`` with ``users`` (name -> role), all with ``password``; its URL."""
    url = f"sqlite:///{folder / 'spinesim.db'}"
    store = Store(url)
    for name, role in users.items():
        store.add_user(name, role, password)
    return url


def child_pids(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux ``/proc``; none once it has gone)."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def descendant_pids(pid: int) -> list[int]:
    """Every process below ``pid``: its children, theirs, and so on."""
    found, below = [], child_pids(pid)
    while below:
        found += below
        below = [grandchild for child in below for grandchild in child_pids(child)]
    return found


def workstation_pids(pid: int) -> list[int]:
    """The workstations of the server ``pid``: the children of its zygote (Python's fork server, a child of
    the server, ``frontends.web.zygote``)."""
    zygotes = [child for child in child_pids(pid)
               if b"multiprocessing.forkserver" in Path(f"/proc/{child}/cmdline").read_bytes()]
    return [station for zygote in zygotes for station in child_pids(zygote)]


def running(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (a zombie has ended: only its parent has not collected it yet)."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def wait_ended(pids: list[int], timeout: float = 30.0) -> list[int]:
    """Wait until every one of ``pids`` has ended, or ``timeout`` s; those still running."""
    deadline = time.monotonic() + timeout
    while running(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return running(pids)


def listening_ports(pid: int) -> set[int]:
    """TCP ports process ``pid`` listens on (its sockets' inodes matched in ``/proc/net/tcp``)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
            ports.add(int(fields[1].split(":")[1], 16))
    return ports


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


# The ceiling of a click or a wait that names none (Playwright's own is 30 s): a control is disabled while its
# workstation works, and on a 2-core machine at load 20 (other jobs beside the suite) Read contrast stayed disabled
# over 30 s while the live run before it was imaged. A ceiling on a wait for a state, not a sleep.
ACTION_TIMEOUT_MS = 120_000

# The first page after logging in waits for the workstation to load its patient, which in a clean clone
# includes numba compiling the imaging kernels: about a minute on a quiet 2-core machine, several on a busy one
# (a CI run beside other work timed out at 2 min). A ceiling on a wait for that state, not a sleep.
FIRST_LOAD_TIMEOUT_MS = 600_000


def log_in(page, url: str, name: str, password: str) -> None:
    page.goto(url + "login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("#login")
    page.wait_for_selector("#tab-sim", timeout=FIRST_LOAD_TIMEOUT_MS)
    page.click("#tab-sim")


def saved_actions(page) -> int:
    """The number of actions the screen says are saved (0 before an attempt)."""
    text = page.text_content("#attempt-status") or ""
    found = re.search(r"(\d+) actions saved", text)
    return int(found.group(1)) if found else 0


def attempt_id(page) -> int:
    return int(re.search(r"Attempt (\d+)", page.text_content("#attempt-status")).group(1))


def wait_saved(page, count: int, timeout_ms: int = 60_000) -> None:
    page.wait_for_function(
        "n => (document.querySelector('#attempt-status')?.textContent || '').includes(n + ' actions saved')",
        arg=count, timeout=timeout_ms)


def act(page, selector: str) -> None:
    """Click a control that makes exactly one action and wait until the store holds it."""
    before = saved_actions(page)
    page.click(selector)
    wait_saved(page, before + 1)


def press_key(page, key: str, control: str) -> None:
    """Press the shortcut ``key`` once the ``control`` it presses takes it: a key does nothing while its
    button is disabled (the page still answering the last request), as the button itself would."""
    page.wait_for_selector(f"{control}:not([disabled])")
    page.keyboard.press(key)


def set_number(page, selector: str, value: float) -> None:
    """Type a number into a field (Vuetify puts the id on the input element itself)."""
    page.fill(selector, f"{value:.4f}".rstrip("0").rstrip("."))


def choose(page, select: str, title: str, prefix: bool = False, tries: int = 4) -> None:
    """Pick the item a Vuetify select lists as ``title`` (or, with ``prefix``, whose title starts with it) and
    wait until the select shows it chosen. On a busy machine a click can land while the menu is still opening or
    the tab holding the select still slides in, so the pick is made again, as a user would, until the select
    shows it."""
    ending = "" if prefix else "$"
    item = page.locator(".v-overlay--active .v-list-item").filter(
        has=page.locator(".v-list-item-title", has_text=re.compile(f"^{re.escape(title)}{ending}"))).first
    shown = ("([s, t, prefix]) => { const chosen = (document.querySelector("
             "`.v-select:has(${s}) .v-select__selection`)?.textContent || '').trim();"
             " return prefix ? chosen.startsWith(t) : chosen === t; }")
    for attempt in range(tries):
        if not item.is_visible():
            page.locator(f".v-select:has({select}) .v-field").click()
        try:
            item.click(timeout=15_000)
            page.wait_for_function(shown, arg=[select, title, prefix], timeout=10_000)
            return
        except PlaywrightTimeoutError:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")  # a menu left open would take the next click


class Trainee:
    """Works the controls; keeps the C-arm pose of the image on the monitor to know where to click.

    A clicked entry point lands within a pixel of the planned one, on the skin; like a resident aiming
    at a depth, the trainee takes the first advance from where the needle actually went in (as the
    store holds it) so the tip still ends where the plan puts it.
    """

    def __init__(self, page, scenario, anatomy, database=None) -> None:
        self.page = page
        self.isocenter = view_isocenter(scenario, anatomy)
        self.carm = CArm(isocenter=self.isocenter)
        self.shown = None
        self.database = database
        self.depth_correction_mm = 0.0

    def start(self) -> None:
        self.page.click("#tab-sim")
        self.page.click("#start")
        wait_saved(self.page, 1)

    def move_carm(self, primary: float, secondary: float) -> None:
        set_number(self.page, "#carm-primary", primary)
        set_number(self.page, "#carm-secondary", secondary)
        act(self.page, "#move-carm")
        self.carm = CArm(primary_deg=primary, secondary_deg=secondary, isocenter=self.isocenter)

    def shot(self, mode: str = "pulse", seconds: float | None = None) -> None:
        if seconds is not None:
            set_number(self.page, "#live-seconds", seconds)
        act(self.page, {"pulse": "#shot", "live": "#live", "dsa": "#dsa"}[mode])
        self.shown = self.carm

    def insert(self, entry, direction) -> None:
        left, cranial = needle_angles(np.asarray(direction))
        set_number(self.page, "#needle-left", left)
        set_number(self.page, "#needle-cranial", cranial)
        u, v = self.shown.project(np.asarray(entry, float))
        click_pixel(self.page, u, v)
        self.page.wait_for_function("() => document.querySelector('#entry-text').textContent.includes('midline')")
        act(self.page, "#insert")
        if self.database is not None:
            placed = Store(self.database).actions(attempt_id(self.page))[-1]
            offset = np.asarray(placed["entry"]) - np.asarray(entry, float)
            self.depth_correction_mm = -float(offset @ np.asarray(placed["direction"]))

    def advance(self, mm: float) -> None:
        set_number(self.page, "#step", mm + self.depth_correction_mm)
        self.depth_correction_mm = 0.0
        act(self.page, "#advance")

    def perform(self, record: dict) -> None:
        kind = record["type"]
        if kind == "set_carm":
            self.move_carm(record["primary_deg"], record["secondary_deg"])
        elif kind == "fluoro_shot":
            self.shot(record.get("mode", "pulse"), record.get("seconds"))
        elif kind == "place_needle":
            self.insert(record["entry"], record["direction"])
        elif kind == "advance":
            self.advance(record["mm"])
        elif kind == "check_loss_of_resistance":
            act(self.page, "#lor")
        elif kind == "inject_contrast":
            set_number(self.page, "#contrast-ml", record["ml"])
            act(self.page, "#inject")
        elif kind == "inject_medication":
            set_number(self.page, "#medication-ml", record["ml"])
            if record["agent"] != "steroid_nonparticulate":  # the page's default
                choose(self.page, "#medication-agent", AGENT_WORDS[record["agent"]])
            act(self.page, "#medicate")
        elif kind == "read_contrast":
            words = READING_WORDS[record["reading"]]
            choose(self.page, "#contrast-reading", words[0].upper() + words[1:])  # capitalised as the list shows it
            act(self.page, "#read-contrast")
        elif kind == "finish":
            self.page.click("#finish")
            self.page.click("#finish-confirm")
            self.page.wait_for_selector("#report-outcome", timeout=120_000)
        else:
            raise AssertionError(f"no control for {kind}")


def wait_painted(page, *selectors: str) -> None:
    """Wait until every image matching ``selectors`` is decoded and Chromium has painted a frame with
    them (a screenshot taken now shows the pictures, not an empty or half-drawn box)."""
    page.evaluate("""async selectors => {
        const images = selectors.flatMap(s => Array.from(document.querySelectorAll(s)));
        await Promise.all(images.filter(i => i.getAttribute('src')).map(i => i.decode()));
        await new Promise(painted => requestAnimationFrame(() => requestAnimationFrame(painted)));
    }""", list(selectors))


def image_pixels(page, selector: str = "#fluoro") -> np.ndarray:
    """The greyscale pixels of an image element's data URL (the monitor's picture), uint8 (rows, cols)."""
    return data_url_pixels(page.get_attribute(selector, "src"))


def data_url_pixels(source: str) -> np.ndarray:
    """The greyscale pixels of an image data URL, uint8 (rows, cols)."""
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).convert("L"))


def darkened_pixels(before: np.ndarray, after: np.ndarray, field: np.ndarray) -> np.ndarray:
    """(row, column) of the pixels inside the imaged ``field`` that went much darker from ``before`` to
    ``after``: the needle's steel, which the monitor shows black, as the largest connected patch of them. Both
    are median-filtered over 3x3 pixels first, and the patch is the needle's: two shots' quantum noise
    differs pixel by pixel (a sharpened display shows it), the needle's image is wider and all of a piece."""
    before, after = (ndimage.median_filter(image.astype(float), size=3) for image in (before, after))
    patches, count = ndimage.label((before - after > 60.0) & field, structure=np.ones((3, 3)))
    if count == 0:
        return np.empty((0, 2), dtype=int)
    largest = 1 + int(np.argmax(ndimage.sum_labels(np.ones_like(patches), patches, range(1, count + 1))))
    return np.argwhere(patches == largest)


# Record every picture the monitor is given, as [time in the page (ms), its data URL] in ``window.liveFrames``.
RECORD_FRAMES = """() => {
  window.liveFrames = [];
  const image = document.querySelector('#fluoro');
  new MutationObserver(() => window.liveFrames.push([performance.now(), image.getAttribute('src')]))
    .observe(image, {attributes: true, attributeFilter: ['src']});
}"""


def advance_while_held_live(page, advances: int) -> tuple[float, float]:
    """Start recording the monitor's pictures (:data:`RECORD_FRAMES`), hold the space bar (the foot pedal) and
    press Advance (focused first) ``advances`` times, each once the one before was saved and a live frame has come
    after it (a state, not a rate: on a loaded machine the stream is slower, never absent). Returns the page times
    (ms) of the first press and of the frame after the last advance; the bar is left held."""
    page.wait_for_selector("#advance:not([disabled])")  # a disabled button takes no focus
    page.locator("#advance").focus()  # Enter presses Advance (the space bar typed into a field would be text)
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'advance'")
    page.evaluate(RECORD_FRAMES)
    page.keyboard.down(" ")
    page.wait_for_function("() => window.liveFrames.length >= 2")
    first_press = page.evaluate("() => performance.now()")
    for _ in range(advances):
        saved = saved_actions(page)
        press_key(page, "Enter", "#advance")  # once the last advance answered
        wait_saved(page, saved + 1)
        answered = page.evaluate("() => performance.now()")
        page.wait_for_function("(t) => window.liveFrames.some(([shown, _]) => shown > t)", arg=answered)
    return first_press, page.evaluate("() => performance.now()")


def screen_pixels(page, selector: str = "#fluoro") -> np.ndarray:
    """The pixels Chromium painted for an element (a screenshot of it), greyscale."""
    return np.asarray(Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("L"))


def click_pixel(page, u: float, v: float, pixels: int = 512, selector: str = "#fluoro") -> None:
    """Click detector pixel ``(u, v)`` (column, row) of the displayed image."""
    box = page.locator(selector).bounding_box()
    page.click(selector, position={"x": (u + 0.5) / pixels * box["width"], "y": (v + 0.5) / pixels * box["height"]})


def offline_page(browser, viewport: dict):
    """A page in a new context that lets only ``file:`` URLs through; returns (context, page,
    requests, errors): every URL the page asked for, and its script and console errors."""
    requests: list[str] = []
    errors: list[str] = []
    context = browser.new_context(offline=True, viewport=viewport)
    context.route("**/*", lambda route: (requests.append(route.request.url),
                                         route.continue_() if route.request.url.startswith("file:") else route.abort()))
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return context, page, requests, errors


def drawn_fraction(drawn_png: Path, empty_png: Path) -> float:
    """The share of a canvas screenshot that differs from the same canvas with everything hidden
    (inside a 10-pixel border, clear of rounded corners)."""
    drawn = np.asarray(Image.open(drawn_png).convert("RGB")).astype(int)[10:-10, 10:-10]
    empty = np.asarray(Image.open(empty_png).convert("RGB")).astype(int)[10:-10, 10:-10]
    background = np.median(empty.reshape(-1, 3), axis=0)
    return float((np.abs(drawn - background).max(axis=-1) > 16).mean())


def chromium_or_skip():
    """The sync Playwright module, or skip the test where it or Debian's chromium is missing."""
    import shutil

    import pytest

    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip("Debian chromium is not installed (dev.sh installs it)")
    return playwright
