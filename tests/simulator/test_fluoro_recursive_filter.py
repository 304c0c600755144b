"""Live fluoroscopy's recursive filter: a still image gains the quanta of the frames it averages (less noise), a
moving needle lags (it shows at each place it stood in those frames), and a held run's frames find those
places from their own moment alone (so the streamed and replayed frames stay the same)."""

import numpy as np
import pytest

from anatomy_models.anatomy import Anatomy
from anatomy_models.volume import Volume
from scenarios.poses import CArmPose
from simulator.imaging.carm import CArm
from simulator.imaging.dose import Technique
from simulator.imaging.fluoro import Display, render_fluoro
from simulator.needle.shaft import Needle
from simulator.session.fold import SessionState
from simulator.session.shots import earlier_needles

CARM = CArm(detector_pixels=128)


@pytest.fixture(scope="module")
def block():
    """A soft-tissue block (2 mm voxels) in air."""
    hu = np.full((60, 50, 40), -1000, np.int16)
    hu[10:50, 5:45, :] = 40
    return Anatomy(ct=Volume.from_spacing(hu, (2, 2, 2), origin=(-59, -49, -39)), metadata={"name": "block"})


def _needle(depth_mm: float) -> Needle:
    return Needle(entry=[0.0, 60.0, -40.0], direction=[0.0, -0.6, 0.8], depth_mm=depth_mm)


def test_a_still_image_has_less_noise_the_more_frames_the_filter_holds(block):
    """The noise of the measured image falls as one over the square root of the frames averaged (the live
    image is noisier at the beam's start, then settles)."""
    spread = {}
    for frames in (1, 4):
        dose = Technique(averaged_frames=frames)
        first, second = (render_fluoro(block, CARM, dose=dose, seed=seed, display=Display(letters=False))
                         for seed in (1, 2))
        spread[frames] = float((first.measured - second.measured)[40:88, 40:88].std())
    assert spread[1] / spread[4] == pytest.approx(2.0, rel=0.1)


def test_a_moving_needle_lags_behind_in_the_averaged_frames(block):
    """Advanced 20 mm in the last of four averaged frames, the needle's new part shows at a quarter of its
    transmission loss and its shaft in full; without the earlier frames the new part shows in full."""
    before, after = _needle(30.0), _needle(50.0)
    dose = Technique(averaged_frames=4)
    plain = render_fluoro(block, CARM, dose=None).line_integrals
    moved = render_fluoro(block, CARM, after, dose=dose, needle_trail=(before, before, before)).line_integrals
    still = render_fluoro(block, CARM, after, dose=dose).line_integrals
    new_part = CARM.project((after.tip + before.tip) / 2.0)
    shaft = CARM.project(before.tip - 10.0 * before.direction)
    (u0, v0), (u1, v1) = np.rint(new_part).astype(int), np.rint(shaft).astype(int)

    def loss(image, u, v):  # the needle's transmission loss at its darkest pixel near (u, v)
        return float(1.0 - np.exp(-(image - plain)[v - 1:v + 2, u - 1:u + 2].max()))

    assert loss(moved, u0, v0) == pytest.approx(loss(still, u0, v0) / 4.0, rel=0.02)
    assert loss(moved, u1, v1) == pytest.approx(loss(still, u1, v1), rel=1e-5)
    assert loss(still, u0, v0) > 0.15  # the 22 G shaft takes a fifth of a 1.8 mm pixel


def test_the_earlier_frames_needles_are_found_from_the_frames_moment():
    """A needle advanced at 1.0 s: the frame at 1.1 s (15 pulses/s, four frames held) averages the new needle
    (the frame at 1.0333 s) and the old one twice (0.9667 s, 0.9 s); a frame whose held frames all show one
    needle averages none."""
    old, new = _needle(30.0), _needle(40.0)
    states = [SessionState(carm=CArmPose(), t=0.0, needle=old), SessionState(carm=CArmPose(), t=1.0, needle=new)]
    averaged = earlier_needles(states, 1.1, 4, 15.0)
    assert len(averaged) == 3 and all(needle is expected for needle, expected in zip(averaged, (new, old, old)))
    assert earlier_needles(states, 1.5, 4, 15.0) == ()
    assert earlier_needles(states, 0.5, 4, 15.0) == ()
    assert earlier_needles(states, 0.0, 1, 15.0) == ()
