"""Aiming by looking, in a real browser (headless Chromium, the monitor's pixels): Align with beam on an
oblique view makes the needle a dot on the monitor, and nudges to the right draw its shaft out to the
right of the entry (the tip swings right, the hub outside the skin left)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.frontends.web import browser as b
from tests.frontends.web.conftest import PASSWORD

pytestmark = pytest.mark.slow


def test_align_with_beam_makes_the_needle_a_dot_and_a_nudge_draws_it_out_to_the_right(server, page, trainee_name,
                                                                                      expert, patient, database):
    session, _ = expert
    b.log_in(page, server.url, trainee_name, PASSWORD)
    trainee = b.Trainee(page, session.scenario, patient, database)
    trainee.start()
    trainee.move_carm(25, 10)
    trainee.shot()
    empty = b.image_pixels(page)
    page.click("#align-beam")
    page.wait_for_function("() => document.querySelector('#needle-left').value == '-25'")
    assert page.input_value("#needle-cranial") == "-10"
    b.click_pixel(page, 255.5, 255.5)  # the central ray
    page.wait_for_function("() => document.querySelector('#entry-text').textContent.includes('midline')")
    b.act(page, "#insert")
    trainee.advance(30)
    trainee.shot()
    field = trainee.shown.field_mask()
    dot = b.darkened_pixels(empty, b.image_pixels(page), field)
    assert len(dot) > 20 and np.ptp(dot, axis=0).max() <= 20  # a ring about the central pixel, not a line
    assert np.abs(dot.mean(axis=0) - 255.5).max() < 3

    for _ in range(2):  # 10° toward the image's right
        angle = page.input_value("#needle-left")
        page.click("#nudge-right-5")
        page.wait_for_function("a => document.querySelector('#needle-left').value != a", arg=angle)
    b.act(page, "#redirect")
    trainee.advance(10)
    trainee.shot()
    line = b.darkened_pixels(empty, b.image_pixels(page), field)
    # The tip swings right of the dot (the hub, outside the skin, left of it); up and down it stays.
    assert line[:, 1].max() >= dot[:, 1].max() + 5 and np.ptp(line[:, 1]) >= 2 * np.ptp(line[:, 0])
    assert np.ptp(line[:, 0]) <= np.ptp(dot[:, 0]) + 4
