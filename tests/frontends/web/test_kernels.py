"""The ultrasound kernels compiled as the server starts (frontends/web/kernels.py): a workstation asked for its first
ultrasound frame while the server's compile runs waits for it, the monitor saying why, instead of compiling the same
kernels beside it; the compile holds its lock until it ends and leaves its marker."""

from __future__ import annotations

import fcntl
import os
import threading

import pytest

from frontends.store import Store
from frontends.web.handlers import Handlers
from frontends.web.kernels import LOCK_NAME, PREPARING_TEXT, UltrasoundKernels, compiled_marker, start_compiling
from frontends.web.patients import Patients
from scenarios.schema import library_scenarios
from tests.frontends.web.conftest import ANATOMY

ULTRASOUND_CASE = "ilesi-ultrasound-l4l5-left"


def test_the_first_ultrasound_frame_waits_for_the_servers_compile_and_the_monitor_says_so(patient, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    user = store.add_user("uma", "trainee", "a-long-password")
    compiling = os.open(tmp_path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)  # as the server's compile holds it
    fcntl.flock(compiling, fcntl.LOCK_EX)
    shown: list[dict] = []
    preparing = threading.Event()

    def show(**changes) -> None:
        shown.append(changes)
        if changes.get("us_caption") == PREPARING_TEXT:
            preparing.set()

    handlers = Handlers(store, user, library_scenarios(), Patients(ANATOMY), tmp_path, show=show,
                        kernels=UltrasoundKernels(tmp_path))
    handlers.request("start_attempt", ULTRASOUND_CASE)
    try:
        first = threading.Thread(target=handlers.request, args=("probe_view", "PSO"))
        first.start()
        assert preparing.wait(timeout=120), "the monitor did not say what the trainee waits for"
        first.join(timeout=1)
        assert first.is_alive(), "the first frame did not wait for the server's compile"
        assert not any(c.get("us_src") for c in shown)
    finally:
        os.close(compiling)  # the compile has ended
    first.join(timeout=600)  # a clean clone compiles the kernels here (the suite warms them up in a child)
    assert not first.is_alive() and shown[-1].get("us_caption") != PREPARING_TEXT
    # Only the preparing message meanwhile: the empty monitor's "NO PROBE" is hidden until the frame comes.
    assert next(c for c in shown if c.get("us_caption") == PREPARING_TEXT)["us_preparing"] is True
    frame = next(c for c in reversed(shown) if c.get("us_src"))
    assert frame["us_src"].startswith("data:image/jpeg") and frame["us_preparing"] is False

    shown.clear()  # later frames do not look at the lock again
    fcntl.flock(held := os.open(tmp_path / LOCK_NAME, os.O_RDWR), fcntl.LOCK_EX)
    try:
        handlers.request("probe_move", "slide", 1, 5, 5)
    finally:
        os.close(held)
    assert not any(c.get("us_caption") == PREPARING_TEXT for c in shown) and any(c.get("us_src") for c in shown)


@pytest.mark.slow
def test_the_servers_compile_holds_its_lock_until_it_has_left_its_marker(patient, tmp_path):
    """The portal's child (a few seconds once numba's cache holds the kernels; the first run of a clean clone also
    compiles what a workstation's memory-mapped patient needs)."""
    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    child = start_compiling(tmp_path, {"db_url": store.url, "anatomy": ANATOMY}, tmp_path / "kernels.log")
    waited: list[str] = []
    UltrasoundKernels(tmp_path).wait(waited.append)
    # The lock is released as the child's files close, a moment before it can be reaped (poll() may still say it
    # runs): what the lock promises is the marker, there once the wait returns.
    assert compiled_marker().exists(), "the lock was free before the compile had left its marker"
    assert child.wait(timeout=60) == 0, (tmp_path / "kernels.log").read_text()
    assert waited in ([], [PREPARING_TEXT])
