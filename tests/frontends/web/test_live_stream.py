"""The live stream while Live is held, without a browser: frame n + 1 is made while frame n is being sent
(the page's taking of a frame no longer holds the next back), a frame the page was too slow to take is
dropped for the newer one, and a new C-arm pose is previewed coarse before its frame."""

from __future__ import annotations

import base64
import io
import re
import threading
import time

import pytest
from PIL import Image

from frontends.store import Store
from frontends.web.attempt import PREVIEW_PIXELS
from frontends.web.handlers import Handlers
from frontends.web.patients import Patients
from scenarios.schema import library_scenarios
from tests.frontends.web.conftest import ANATOMY

WAIT_S = 20.0  # how long a step may take on a busy machine before the test calls it stuck


def _width(data_url: str) -> int:
    return Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).size[0]


class _SlowPage:
    """A page that takes each streamed frame only once the stream has begun making a later one (it would
    wait forever for a stream that makes and sends in turns), and records what it was sent."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.frames: list[tuple[str, str]] = []  # (caption, picture) of each live frame pushed
        self.made: list[int] = []  # the index of each held frame made, in order
        self.overlapped: list[bool] = []
        self.changes: dict = {}

    def show(self, **changes) -> None:
        self.changes.update(changes)
        if "LIVE ●" in changes.get("fluoro_caption", ""):  # a streamed frame, not the hold
            made_before = len(self.made)
            deadline = time.monotonic() + WAIT_S
            while len(self.made) == made_before and not self.released.is_set() and time.monotonic() < deadline:
                time.sleep(0.002)
            self.overlapped.append(len(self.made) > made_before)
            self.frames.append((changes["fluoro_caption"], changes["fluoro_src"]))


@pytest.fixture()
def streaming(patient, tmp_path):
    """A started attempt with a shot taken, its page slow to take frames, the held frames counted."""
    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    user = store.add_user("ben", "trainee", "battery staple")
    page = _SlowPage()
    streams: list = []
    handlers = Handlers(store, user, library_scenarios(), Patients(ANATOMY), tmp_path, show=page.show,
                        later=streams.append)
    handlers.start_attempt("tfesi-default")
    handlers.shot()
    attempt = handlers.attempt
    held_frame = attempt.held_frame

    def counted(run, index, state=None, *, pixels=None):
        frame = held_frame(run, index, state, pixels=pixels)
        page.made.append(index)
        return frame

    attempt.held_frame = counted
    return handlers, page, streams


def _stream_until(handlers, page, streams, done) -> threading.Thread:
    handlers.live_hold(True)
    stream = threading.Thread(target=streams[0])
    stream.start()
    deadline = time.monotonic() + 3 * WAIT_S
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)
    page.released.set()
    handlers.live_hold(False)
    stream.join(WAIT_S)
    assert not stream.is_alive()
    return stream


def test_the_next_frame_is_made_while_the_page_takes_the_last(streaming):
    handlers, page, streams = streaming
    _stream_until(handlers, page, streams, lambda: len(page.frames) >= 3)
    assert len(page.frames) >= 3 and all(page.overlapped[:3]), page.overlapped
    # Frames the page was too slow for were dropped, never queued: each shown frame is a later one (the caption's
    # time is to 0.1 s, so two frames 1/15 s apart may share it; no frame is shown twice).
    seconds = [float(re.search(r"([0-9.]+) s$", caption).group(1)) for caption, _ in page.frames]
    assert seconds == sorted(seconds) and len({picture for _, picture in page.frames}) == len(page.frames)
    # Released: the hold is on the monitor, not a late live frame.
    assert page.changes["fluoro_src"] == handlers.attempt.last_shot.data_url


def test_a_new_pose_is_previewed_coarse_then_replaced_by_its_frame(streaming):
    handlers, page, streams = streaming
    handlers.move_carm(20.0, 0.0)  # the C-arm moved since the last shot: Live shows a new pose
    _stream_until(handlers, page, streams, lambda: len(page.frames) >= 2)
    widths = [_width(picture) for _, picture in page.frames]
    pixels = handlers.attempt.session.carm().detector_pixels
    assert widths[0] == PREVIEW_PIXELS < pixels and set(widths[1:]) == {pixels}, widths
