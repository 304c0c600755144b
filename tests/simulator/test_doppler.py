"""Colour Doppler on a phantom vessel: red toward the probe, blue away, nothing across the beam."""

import numpy as np
import pytest

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.structures import LabelTable
from anatomy_models.volume import Volume
from simulator.imaging.doppler import DopplerBox, colour_doppler, vessel_flow
from simulator.imaging.probe import Probe
from simulator.imaging.ultrasound import render_ultrasound


@pytest.fixture(scope="module")
def vessel():
    """Muscle with an aorta 8 mm across running along z (head +z) at y = 20 mm, 1 mm grid."""
    table = LabelTable()
    table.add("muscle", "muscle")
    table.add("aorta", "blood")
    x, y, z = np.meshgrid(*[np.arange(48.0)] * 3, indexing="ij")
    labels = np.ones((48, 48, 48), np.uint16)
    labels[(x - 24) ** 2 + (y - 20) ** 2 <= 16] = 2
    ct = np.full(labels.shape, 40, np.int16)
    return Anatomy(Volume.from_spacing(ct, (1, 1, 1)), table, Volume.from_spacing(labels, (1, 1, 1)))


def coloured(vessel, tilt_deg, scale_cm_s=60.0):
    """Red and blue pixel counts of a sagittal linear frame whose beam is tilted ``tilt_deg`` toward the head."""
    tilt = np.radians(tilt_deg)
    probe = Probe("linear", position=[24, 47.5, 24], axial=[0, -np.cos(tilt), np.sin(tilt)], lateral=[0, 0, -1],
                  frequency_mhz=6.0, depth_mm=40.0, image_shape=(128, 128))
    image = render_ultrasound(vessel, probe)
    rgb = colour_doppler(vessel, image, DopplerBox(0, 128, 0, 128, scale_cm_s=scale_cm_s))
    grey = (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])
    return int(np.sum(~grey & (rgb[..., 0] > 0))), int(np.sum(~grey & (rgb[..., 2] > 0)))


def test_flow_toward_the_probe_is_red_away_blue_and_across_the_beam_grey(vessel):
    velocity, profile = vessel_flow(vessel)
    assert velocity[2] @ [0, 0, -1] == pytest.approx(60.0, rel=1e-6)        # the aorta flows caudally
    assert profile[24, 20, 24] == pytest.approx(2.0, abs=0.1) and profile[10, 10, 10] == 0.0
    red, blue = coloured(vessel, 20.0)       # beam toward the head: the caudal flow comes at the probe
    assert red > 200 and blue < 0.05 * red
    red, blue = coloured(vessel, -20.0)      # beam toward the feet: it goes away
    assert blue > 200 and red < 0.05 * blue
    assert coloured(vessel, 0.0) == (0, 0)   # square to the flow: no Doppler shift
    # Up to 2 x 60 x sin 20 = 41 cm/s on the axis: past a 30 cm/s scale the core wraps into blue (aliasing).
    red, blue = coloured(vessel, 20.0, scale_cm_s=30.0)
    assert red > 200 and blue > 20


def test_a_nonsense_colour_box_is_refused():
    with pytest.raises(SpinesimError, match="top < bottom"):
        DopplerBox(10, 5, 0, 10)
    with pytest.raises(SpinesimError, match="wall filter"):
        DopplerBox(0, 5, 0, 10, scale_cm_s=5.0, wall_filter_cm_s=6.0)
