"""The ultrasound image of each state of an attempt, rendered again exactly from its action log.

Ultrasound is live: once a probe is placed (a ``place_probe`` action), every later state has its
frame, the B-mode image of the probe pose and settings the last ``place_probe`` left, with the
needle as it is then (drawn analytically: a bright shaft with its comet tail when it lies in the
slice, a dot where the image plane cuts it) and the contrast injected so far as fluid, an anechoic
pocket (hydrodissection; the medication has no spread model and does not show). The scatterer
field is seeded by the scenario seed alone, so speckle stays fixed in the tissue as the probe moves,
and the web app's ultrasound monitor, its replay and the report all show the same pixels for the
same state.

Screen furniture as scanners draw it [ED]: the orientation marker (a blue dot on the marker side,
top left), a depth scale on the right edge with a tick every centimetre and its depth in centimetres
written beside them (every centimetre to 6 cm, every second one deeper), and the transmit focus marker
(a triangle at the focus depth, beside the scale) (:func:`annotate`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from simulator.imaging.ultrasound import UltrasoundImage, render_ultrasound
from simulator.session.fold import Session, SessionState

# Displayed frame, pixels (rows, columns): at least 512 across, the size the monitor shows it at on
# a desktop screen (issue 17), so that the scan converter, not the browser, sets the detail.
SCAN_SHAPE = (512, 512)
MARKER_RADIUS_PX = 4
TICK_LENGTH_PX = 6
FOCUS_MARKER_PX = 5          # half height of the focus triangle
SCALE_GREY = 200


def render_scan(session: Session, state: SessionState, *, image_shape: tuple[int, int] = SCAN_SHAPE
                ) -> UltrasoundImage | None:
    """The ultrasound frame of ``state`` (one of ``session.states``), None while no probe is placed.

    Parameters
    ----------
    session : Session
        The attempt (its anatomy and scenario seed).
    state : SessionState
        Its probe pose and settings, and its needle.
    image_shape : (int, int)
        Frame size, pixels.
    """
    probe = session.probe(state, image_shape=image_shape)
    if probe is None:
        return None
    return render_ultrasound(session.anatomy, probe, state.needle, seed=session.scenario.seed,
                             fluid=session.contrast(state.t))


def annotate(image: UltrasoundImage) -> np.ndarray:
    """The image's pixels as RGB (uint8, rows x cols x 3) with the orientation marker, the depth scale (a tick
    every centimetre, its depth written beside them) and the focus marker drawn on."""
    rows, cols = image.pixels.shape
    rgb = np.repeat(image.pixels[..., None], 3, axis=2)
    yy, xx = np.ogrid[:rows, :cols]
    centre = 2 * MARKER_RADIUS_PX + 2
    rgb[(yy - centre) ** 2 + (xx - centre) ** 2 <= MARKER_RADIUS_PX**2] = (80, 170, 255)
    drawn = _scale_layer(rows, cols, image.face_row, image.pixel_mm, image.probe.depth_mm, image.probe.focus_mm)
    rgb[drawn] = SCALE_GREY
    return rgb


def _row_of_depth(face_row: float, pixel_mm: float, depth_mm: float) -> int:
    return int(round(face_row + depth_mm / pixel_mm))


@lru_cache(maxsize=16)
def _scale_layer(rows: int, cols: int, face_row: float, pixel_mm: float, depth_mm: float, focus_mm: float
                 ) -> np.ndarray:
    """Where the depth scale and the focus marker are drawn (bool, rows x cols), laid out once per geometry."""
    layer = Image.new("1", (cols, rows), 0)
    draw = ImageDraw.Draw(layer)
    font_px = max(8, rows // 40)
    font = ImageFont.load_default(size=font_px)
    labelled_every_cm = 1 if depth_mm <= 60.0 else 2
    for depth_cm in range(0, int(depth_mm // 10) + 1):
        row = _row_of_depth(face_row, pixel_mm, depth_cm * 10.0)
        if not 0 <= row < rows:
            continue
        length = 2 * TICK_LENGTH_PX if depth_cm % 5 == 0 else TICK_LENGTH_PX
        draw.line((cols - length, row, cols - 1, row), fill=1)
        if depth_cm > 0 and depth_cm % labelled_every_cm == 0 and row + font_px // 2 < rows:  # whole numbers only
            draw.text((cols - 2 * TICK_LENGTH_PX - 3, row), str(depth_cm), fill=1, font=font, anchor="rm")
    focus_row = _row_of_depth(face_row, pixel_mm, focus_mm)
    if 0 <= focus_row < rows:
        tip = cols - TICK_LENGTH_PX - 2 - 2 * FOCUS_MARKER_PX
        draw.polygon([(tip, focus_row), (tip + 2 * FOCUS_MARKER_PX, focus_row - FOCUS_MARKER_PX),
                      (tip + 2 * FOCUS_MARKER_PX, focus_row + FOCUS_MARKER_PX)], fill=1)
    return np.asarray(layer, dtype=bool)
