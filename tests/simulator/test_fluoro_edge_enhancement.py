"""The display chain's edge enhancement (issue 16: "no edge enhancement", "body side walls invisible on the AP"):
the unsharp mask's response to a blurred step against its analytic form, and its default strength."""

import numpy as np
import pytest
from scipy.special import ndtr

from simulator.imaging.fluoro import Display, cored, to_display

PIXEL_MM = 0.45  # 230 mm over 512 px, the default C-arm's detector pixel
BLUR_MM = 1.0  # a cortex's edge in the DRR: a step blurred by a Gaussian of 1 mm


def _step_response(display: Display, height: float) -> tuple[np.ndarray, np.ndarray]:
    """The displayed row (grey levels) of a step of ``height`` (grey-scale fraction) blurred by ``BLUR_MM``, with
    its analytic unsharp mask: a Gaussian step ``s = h Phi(x / b)`` minus its blur by a Gaussian of radius ``r``
    is ``h (Phi(x / b) - Phi(x / sqrt(b^2 + r^2)))``, cored and added back ``g`` times."""
    x_mm = (np.arange(128) - 63.5) * PIXEL_MM
    row = 0.4 + height * ndtr(x_mm / BLUR_MM)
    image = np.tile(row, (16, 1)).astype(np.float32)
    shown = to_display(image, np.ones(image.shape, bool), (0.0, 1.0), display, PIXEL_MM)[8].astype(float)
    detail = height * (ndtr(x_mm / BLUR_MM) - ndtr(x_mm / np.hypot(BLUR_MM, display.edge_radius_mm)))
    enhanced = row + display.edge_enhancement * cored(detail.astype(np.float32), display.edge_coring,
                                                      display.edge_limit)
    return shown, 255.0 * enhanced


def _linear(**changes: object) -> Display:
    """The default display's edge enhancement on a plain window: no tone curve, no field edge, bone white."""
    return Display(polarity="bone_white", equalisation=0.0, harmonisation=0.0, field_edge_mm=0.0, letters=False,
                   **changes)


@pytest.mark.parametrize("height", [0.05, 0.2])
def test_a_step_is_shown_as_the_analytic_unsharp_mask(height):
    """Across a 1 mm-blurred step of 5 % and 20 % of the grey scale the displayed row is the analytic unsharp
    mask's within 1.5 grey levels (the 8-bit rounding and the kernel's sampling on 0.45 mm pixels; measured
    within 0.5 and 0.6); the default's halo overshoots the step's plateaus by at most 10 % of it (2 % and 7 %
    analytically: a mild unsharp mask; 7 % and 18 % at the earlier gain of 1.4, whose dark and bright rims round
    the body and the bones issue 16's blind readers saw), and its 10-90 % rise is still narrower than the
    unenhanced step's 2.9 and 2.7 mm by more than 0.5 mm (2.1 and 1.9 mm)."""
    display = _linear()
    shown, analytic = _step_response(display, height)
    assert np.abs(shown - analytic).max() <= 1.5
    # The halo, as a fraction of the step: on either side, as the analytic one to the 8-bit grey level.
    halo = (analytic.max() - analytic[-8:].mean()) / (255.0 * height)
    assert halo <= 0.1
    assert (shown.max() - shown[-8:].mean()) / (255.0 * height) == pytest.approx(halo, abs=1.5 / (255.0 * height))
    assert (shown[:8].mean() - shown.min()) / (255.0 * height) == pytest.approx(halo, abs=1.5 / (255.0 * height))

    def rise_mm(profile: np.ndarray) -> float:
        middle = slice(54, 74)  # the edge's own rise, inside the halo's overshoot and undershoot
        level = (profile[middle] - profile[:8].mean()) / (profile[-8:].mean() - profile[:8].mean())
        x = np.arange(level.size, dtype=float)
        return float(np.interp(0.9, level, x) - np.interp(0.1, level, x)) * PIXEL_MM

    plain, _ = _step_response(_linear(edge_enhancement=0.0), height)
    assert rise_mm(shown) < rise_mm(plain) - 0.5


def test_noise_sized_detail_is_spared():
    """The coring spares a ripple of 1 % of the grey scale peak to peak (the quantum mottle's size in the detail
    layer): it grows by under half the gain (analytically 1.12 times at the gain of 0.6; 1.6 times without
    coring)."""
    display = _linear()
    amplitude = 0.005
    ripple = 0.5 + amplitude * np.where(np.arange(128) % 4 < 2, 1.0, -1.0)  # a 4-pixel period, far below the mask's
    image = np.tile(ripple, (16, 1)).astype(np.float32)
    grey = to_display(image, np.ones(image.shape, bool), (0.0, 1.0), display, PIXEL_MM)[8, 32:96].astype(float)
    assert np.ptp(grey) <= 255.0 * 2.0 * amplitude * (1.0 + display.edge_enhancement / 2.0)
