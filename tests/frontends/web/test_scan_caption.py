"""The ultrasound monitor's caption: the probe's settings, and a warning when the probe is off the skin."""

from frontends.web.attempt import CONTACT_WARNING_SHARE, scan_caption
from simulator.imaging.probe import Probe


def test_the_caption_warns_when_part_of_the_face_is_off_the_skin():
    probe = Probe("curvilinear", position=[0, 80, 0], axial=[0, -1, 0], lateral=[0, 0, -1])
    seated = scan_caption(probe, "articular", 0.0)
    assert seated == "articular · curvilinear 3.5 MHz · depth 8 cm · gain +0 dB"
    assert scan_caption(probe, "articular", CONTACT_WARNING_SHARE) == seated        # a voxel's edge: no warning
    lifted = scan_caption(probe, "articular", 0.25)
    assert lifted.startswith(seated) and "NO SKIN CONTACT over 25% of the probe" in lifted
