"""The ultrasound frame's screen furniture: the depth scale numbered in centimetres and the focus marked at the
transmit focus's depth (blind readers of our scans missed both: "no depth scale, focus marker")."""

import numpy as np
import pytest

from simulator.session.scans import FOCUS_MARKER_PX, TICK_LENGTH_PX, _scale_layer

ROWS, COLS, PIXEL_MM = 400, 300, 0.2          # 80 mm over 400 rows: a centimetre every 50 rows
LEFT_OF_TICKS = COLS - 2 * TICK_LENGTH_PX - 2


def _written_beside(layer: np.ndarray, row: int) -> bool:
    return bool(layer[row - 3:row + 4, :LEFT_OF_TICKS].any())


@pytest.mark.parametrize("depth_mm, labelled_cm, unlabelled_cm", [
    (80.0, [2, 4, 6], [1, 3, 5, 7]),         # a curvilinear depth: every second centimetre written
    (60.0, [1, 2, 3, 4, 5], []),             # a linear probe's depths: every centimetre
])
def test_the_depth_scale_writes_its_centimetres_beside_the_ticks(depth_mm, labelled_cm, unlabelled_cm):
    layer = _scale_layer(ROWS, COLS, 0.0, PIXEL_MM, depth_mm, 79.0)   # focus below the numbers
    for depth_cm in range(int(depth_mm // 10)):
        assert layer[depth_cm * 50, COLS - TICK_LENGTH_PX:].all()                    # the tick
    assert all(_written_beside(layer, cm * 50) for cm in labelled_cm)
    assert not any(_written_beside(layer, cm * 50) for cm in unlabelled_cm)


def test_the_focus_marker_points_at_the_transmit_focus_depth():
    layer = _scale_layer(ROWS, COLS, 10.0, PIXEL_MM, 80.0, 46.0)     # the face 10 rows down: focus at row 240
    focus_row = 10 + 230
    tip, base = COLS - TICK_LENGTH_PX - 2 - 2 * FOCUS_MARKER_PX, COLS - TICK_LENGTH_PX - 2
    assert layer[focus_row, tip:base + 1].all()
    assert layer[focus_row - FOCUS_MARKER_PX, base] and layer[focus_row + FOCUS_MARKER_PX, base]
    for away in (focus_row - 2 * FOCUS_MARKER_PX, focus_row + 2 * FOCUS_MARKER_PX):
        assert not layer[away, tip:base + 1].any()
