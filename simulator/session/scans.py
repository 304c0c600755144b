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
top left) and a depth scale with a tick every centimetre on the right edge (:func:`annotate`).
"""

from __future__ import annotations

import numpy as np

from simulator.imaging.ultrasound import UltrasoundImage, render_ultrasound
from simulator.session.fold import Session, SessionState

# Displayed frame, pixels (rows, columns): at least 512 across, the size the monitor shows it at on
# a desktop screen (issue 17), so that the scan converter, not the browser, sets the detail.
SCAN_SHAPE = (512, 512)
MARKER_RADIUS_PX = 4
TICK_LENGTH_PX = 6


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
    """The image's pixels as RGB (uint8, rows x cols x 3) with the orientation marker and a 1 cm
    depth scale drawn on."""
    rows, cols = image.pixels.shape
    rgb = np.repeat(image.pixels[..., None], 3, axis=2)
    yy, xx = np.ogrid[:rows, :cols]
    centre = 2 * MARKER_RADIUS_PX + 2
    rgb[(yy - centre) ** 2 + (xx - centre) ** 2 <= MARKER_RADIUS_PX**2] = (80, 170, 255)
    top = image.face_row
    for depth_cm in range(0, int(image.probe.depth_mm // 10) + 1):
        row = int(round(top + depth_cm * 10.0 / image.pixel_mm))
        if 0 <= row < rows:
            length = 2 * TICK_LENGTH_PX if depth_cm % 5 == 0 else TICK_LENGTH_PX
            rgb[row, cols - length:] = 200
    return rgb
