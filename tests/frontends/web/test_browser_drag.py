"""Re-aiming by dragging on the monitor, in a real browser (headless Chromium, the monitor's pixels): a drag
to the right turns the needle about its entry so that, redirected and advanced as deep again, its tip's
image lies to the right, by about the drag; a short press still picks the entry."""

from __future__ import annotations

import numpy as np
import pytest

from frontends.store import Store
from simulator.session.replay import replay
from tests.frontends.web import browser as b
from tests.frontends.web.conftest import PASSWORD

pytestmark = pytest.mark.slow

DRAG_PIXELS = 40.0  # detector pixels to the right


def test_a_drag_to_the_right_turns_the_tip_to_the_right(server, page, trainee_name, expert, patient, database):
    session, _ = expert
    b.log_in(page, server.url, trainee_name, PASSWORD)
    trainee = b.Trainee(page, session.scenario, patient, database)
    trainee.start()
    trainee.move_carm(25, 10)
    trainee.shot()
    empty = b.image_pixels(page)
    page.click("#align-beam")  # down the barrel: the needle a dot at the central ray
    page.wait_for_function("() => document.querySelector('#needle-left').value == '-25'")
    b.click_pixel(page, 255.5, 255.5)
    page.wait_for_function("() => document.querySelector('#entry-text').textContent.includes('midline')")
    b.act(page, "#insert")
    trainee.advance(30)
    trainee.shot()
    field = trainee.shown.field_mask()
    dot = b.darkened_pixels(empty, b.image_pixels(page), field)
    assert len(dot) > 20 and np.ptp(dot, axis=0).max() <= 20

    box = page.locator("#fluoro").bounding_box()
    scale = box["width"] / 512
    x, y = box["x"] + 256 * scale, box["y"] + 256 * scale
    left = page.input_value("#needle-left")
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + DRAG_PIXELS * scale, y, steps=6)
    page.mouse.up()
    page.wait_for_function("a => document.querySelector('#needle-left').value != a", arg=left)
    assert "midline" in page.text_content("#entry-text") and b.saved_actions(page) == 6  # no pick, no action
    b.act(page, "#redirect")
    trainee.advance(30)
    trainee.shot()
    shown = b.image_pixels(page)
    # Where the tip is, from the attempt's stored log: right of the dot (the central ray) by about the drag,
    # as high; and the monitor shows the steel there.
    logged = replay(session.scenario, patient, Store(database).actions(b.attempt_id(page)))
    u, v = trainee.shown.project(logged.state.needle.tip)
    assert u >= 255.5 + DRAG_PIXELS / 2 and abs(v - 255.5) < 8
    row, column = int(round(v)), int(round(u))
    assert (empty.astype(float) - shown)[row - 2:row + 3, column - 2:column + 3].max() > 60
