"""Callouts on fluoroscopy frames: each dot sits on its point's projection, words stay inside the
frame, and a callout added at the end never moves the ones before it."""

import numpy as np

from frontends.pictures.encode import jpeg_data_url
from frontends.pictures.overlay import Callout, Marker, with_overlay
from simulator.imaging.carm import CArm
from simulator.imaging.fluoro import FluoroImage

PIXELS = 256


def _frame() -> FluoroImage:
    carm = CArm(isocenter=(0.0, 0.0, 0.0), detector_pixels=PIXELS)
    grey = np.full((PIXELS, PIXELS), 90, np.uint8)
    zeros = np.zeros((PIXELS, PIXELS), np.float32)
    return FluoroImage(grey, zeros, zeros, np.ones((PIXELS, PIXELS), bool), carm, None, 0, (0.0, 1.0))


def test_a_callout_marks_its_point_and_later_ones_leave_it_in_place():
    frame = _frame()
    first = Callout((0.0, 0.0, 0.0), "where the medicine goes", (90, 220, 120))
    second = Callout((20.0, 0.0, 10.0), "the needle", (255, 196, 60))
    plain = np.asarray(with_overlay(frame), dtype=int)
    one = np.asarray(with_overlay(frame, [Marker((0.0, 0.0, 0.0), (255, 0, 0), "dot", 1.0)], callouts=[first]), dtype=int)
    two = np.asarray(with_overlay(frame, [Marker((0.0, 0.0, 0.0), (255, 0, 0), "dot", 1.0)], callouts=[first, second]),
                     dtype=int)
    u, v = np.rint(frame.carm.project(np.array([20.0, 0.0, 10.0]))).astype(int)
    assert tuple(two[v, u]) == (255, 196, 60) and tuple(one[v, u]) == (90, 90, 90)
    drawn_one = np.abs(one - plain).max(axis=-1) > 0
    drawn_two_only = (np.abs(two - one).max(axis=-1) > 0)
    assert drawn_one.sum() > 500 and drawn_two_only.sum() > 300
    # The first callout's pixels are untouched by the second (its box and line go elsewhere).
    assert (drawn_one & drawn_two_only).sum() < 0.02 * drawn_one.sum()
    # Greenish words on a dark box, all of it inside the frame.
    assert np.any((one[..., 1] > 200) & (one[..., 0] < 120)) and np.any(one.sum(axis=-1) < 60)
    assert jpeg_data_url(with_overlay(frame, callouts=[first])).startswith("data:image/jpeg;base64,/9j/")
