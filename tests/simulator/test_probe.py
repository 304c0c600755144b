import numpy as np
import pytest

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.structures import LabelTable
from anatomy_models.volume import Volume
from scenarios.poses import ProbePose
from simulator.imaging.probe import HAND_ROCK_DEG, Probe, interspinous_beam, on_skin, skin_point, standard_view

SKIN_Y = 40.0  # the phantom's back is the plane y = 40 mm (posterior is up)


@pytest.fixture(scope="module")
def slab_body():
    """A 60 mm cube of muscle below y = 40 mm, air above, a disc 5 mm in front of the interlaminar
    window, and the landmarks the views need."""
    table = LabelTable()
    table.add("muscle", "muscle")
    table.add("L4-L5.disc.annulus", "disc_annulus")
    labels = np.zeros((60, 60, 60), np.uint16)
    labels[:, :41, :] = 1
    labels[20:40, :6, 20:40] = 2
    ct = np.where(labels > 0, 40, -1000).astype(np.int16)
    landmarks = {
        "L4-L5.interlaminar_window.center": [30.0, 10.0, 30.0],
        "L4.spinous_process.tip": [30.0, 30.0, 38.0],
        "L5.spinous_process.tip": [30.0, 30.0, 18.0],
        "facet_joint.L4-L5.left.center": [45.0, 15.0, 30.0],
    }
    return Anatomy(Volume.from_spacing(ct, (1, 1, 1)), table, Volume.from_spacing(labels, (1, 1, 1)), landmarks)


def probe(**kwargs):
    pose = {"kind": "linear", "position": [30, 40, 30], "axial": [0, -1, 0], "lateral": [1, 0, 0]} | kwargs
    return Probe(**pose)


def test_presets_fill_what_is_not_given():
    linear, convex = probe(), probe(kind="curvilinear")
    assert (linear.frequency_mhz, linear.footprint_mm, linear.radius_mm) == (10.0, 38.0, None)
    assert (convex.frequency_mhz, convex.radius_mm, convex.field_of_view_deg) == (3.5, 60.0, 60.0)
    assert convex.focus_mm == pytest.approx(0.6 * convex.depth_mm)
    assert probe(frequency_mhz=7.5).frequency_mhz == 7.5


def test_frame_is_orthonormal_and_right_handed():
    p = probe(axial=[0, -2, 0.1], lateral=[1, 0.3, 0])
    frame = np.stack([p.lateral, p.axial, p.elevation])
    np.testing.assert_allclose(frame @ frame.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(frame) == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs, field", [
    ({"kind": "phased"}, "kind"),
    ({"frequency_mhz": 3.0}, "frequency_mhz"),          # too low for a linear array
    ({"kind": "curvilinear", "frequency_mhz": 10.0}, "frequency_mhz"),
    ({"depth_mm": 5.0}, "depth_mm"),
    ({"footprint_mm": 0.0}, "footprint_mm"),
    ({"kind": "curvilinear", "field_of_view_deg": 170.0}, "field_of_view_deg"),
    ({"focus_mm": 80.0}, "focus_mm"),                    # deeper than the image
    ({"dynamic_range_db": 5.0}, "dynamic_range_db"),
    ({"gain_db": np.nan}, "gain_db"),
    ({"tgc_db": (0.0, 99.0)}, "tgc_db"),
    ({"tgc_db_per_cm": -1.0}, "tgc_db_per_cm"),
    ({"image_shape": (8, 256)}, "image_shape"),
    ({"position": [0, np.inf, 0]}, "position"),
    ({"axial": [0, 0, 0]}, "axial"),
    ({"lateral": [0, -3, 0]}, "parallel"),
])
def test_nonsense_settings_are_refused_with_the_field_named(kwargs, field):
    with pytest.raises(SpinesimError, match=field):
        probe(**kwargs)


def test_movements_follow_the_probe_frame():
    p = probe()
    slid = p.moved(slide_mm=5, sweep_mm=2, press_mm=1)
    np.testing.assert_allclose(slid.position, p.position + 5 * p.lateral + 2 * p.elevation + 1 * p.axial)
    turned = p.moved(rotate_deg=90)
    np.testing.assert_allclose(turned.axial, p.axial, atol=1e-12)
    np.testing.assert_allclose(turned.lateral, np.cross(p.axial, p.lateral), atol=1e-12)
    tilted = p.moved(tilt_deg=10)
    assert tilted.axial @ p.elevation == pytest.approx(np.sin(np.radians(10)))
    np.testing.assert_allclose(tilted.lateral, p.lateral, atol=1e-12)
    rocked = p.moved(rock_deg=10)
    assert rocked.axial @ p.lateral == pytest.approx(np.sin(np.radians(10)))
    np.testing.assert_allclose(rocked.elevation, p.elevation, atol=1e-12)


def test_snapping_puts_the_face_on_the_skin(slab_body):
    hovering = probe(position=[30, 55, 30])
    assert on_skin(slab_body, hovering).position[1] == pytest.approx(SKIN_Y + 0.5, abs=0.3)
    oblique = np.array([0.3, -1.0, 0.0])
    point = skin_point(slab_body, [30, 20, 30], oblique)
    assert point[1] == pytest.approx(SKIN_Y + 0.5, abs=0.3)
    np.testing.assert_allclose(np.cross(point - [30, 20, 30], oblique), 0, atol=1e-9)  # on the aiming line


def test_a_line_that_misses_the_body_is_an_error(slab_body):
    with pytest.raises(SpinesimError, match="does not meet the body"):
        skin_point(slab_body, [30, 200, 30], [1, 0, 0])


def test_standard_views_aim_through_their_landmark(slab_body):
    window = slab_body.landmark("L4-L5.interlaminar_window.center")
    pso = standard_view(slab_body, "paramedian-sagittal-oblique", side="left")
    np.testing.assert_allclose(pso.lateral, [0, 0, -1], atol=1e-12)        # marker cranial
    assert pso.axial[0] < -0.2                                             # tilted toward the midline from the left
    disc_back = np.array([30.0, 5.5, 30.0])                                # the anterior complex, on the midline
    np.testing.assert_allclose(np.cross(disc_back - pso.position, pso.axial), 0, atol=0.3)
    assert pso.position[0] > window[0] + 5                                 # sits beside the midline
    right = standard_view(slab_body, "paramedian-sagittal-oblique", side="right")
    assert right.axial[0] > 0.2 and right.position[0] < window[0] - 5
    articular = standard_view(slab_body, "articular", side="left")
    np.testing.assert_allclose(articular.axial, [0, -1, 0], atol=1e-12)
    assert articular.position[0] == pytest.approx(45.0)
    transverse = standard_view(slab_body, "transverse-interlaminar", kind="linear", depth_mm=50)
    assert transverse.lateral @ [1, 0, 0] > 0.99                           # marker on the patient's right
    # Through the interspinous gap (this body has no bone in the way: straight down), held by a hand: turned
    # and rocked a few degrees off square, the central beam still through the window.
    np.testing.assert_allclose(interspinous_beam(slab_body, window), [0, -1, 0], atol=1e-12)
    off_square = np.degrees(np.arccos(transverse.axial @ [0, -1, 0]))
    assert 0.5 * HAND_ROCK_DEG < off_square < 2 * HAND_ROCK_DEG
    np.testing.assert_allclose(np.cross(window - transverse.position, transverse.axial), 0, atol=0.3)
    assert transverse.kind == "linear" and transverse.depth_mm == 50


def test_the_interlaminar_beam_tilts_until_it_passes_between_the_spinous_processes(slab_body):
    """Issue 21: a spinous process overhanging the window (bone 12-20 mm straight above it, reaching 2 mm
    caudal and 7 mm cranial of it) makes the beam tilt cephalad, from a probe caudal of the process, by
    the least angle that clears it."""
    table = LabelTable()
    table.add("muscle", "muscle")
    table.add("L4.spinous_process", "cortical_bone")
    labels = slab_body.labels.array.copy()
    labels[26:35, 22:30, 28:37] = 2
    body = Anatomy(slab_body.ct, table, Volume.from_spacing(labels, (1, 1, 1)), slab_body.landmarks)
    window = body.landmark("L4-L5.interlaminar_window.center")
    beam = interspinous_beam(body, window)
    tilt = np.degrees(np.arctan2(beam[2], -beam[1]))
    assert 5.0 < tilt < 25.0                                               # cephalad, as little as clears it
    path = window - np.arange(2.0, 40.0, 0.5)[:, None] * beam
    assert not np.any(labels[tuple(np.rint(path).astype(int).T)] == 2)     # no bone on the way to the window


def test_unknown_views_and_sides_are_refused(slab_body):
    with pytest.raises(SpinesimError, match="unknown ultrasound view"):
        standard_view(slab_body, "coronal")
    with pytest.raises(SpinesimError, match="side"):
        standard_view(slab_body, "articular", side="middle")
    with pytest.raises(SpinesimError, match="no landmark"):
        standard_view(slab_body, "articular", level="L2-L3")


@pytest.mark.parametrize("kind", ["linear", "curvilinear"])
def test_a_probe_round_trips_through_its_pose(kind):
    placed = probe(kind=kind, axial=[0.1, -1, 0.2], lateral=[1, 0, 0], depth_mm=55.0, gain_db=-3.0)
    pose = placed.pose("articular")
    assert (pose.kind, pose.depth_mm, pose.gain_db, pose.view) == (kind, 55.0, -3.0, "articular")
    again = Probe.at(pose)
    np.testing.assert_allclose(again.position, placed.position, atol=1e-4)
    np.testing.assert_allclose(np.concatenate([again.axial, again.lateral]),
                               np.concatenate([placed.axial, placed.lateral]), atol=2e-6)
    assert again.scan_key == placed.scan_key and again.pose("articular") == pose


def test_a_pose_without_settings_takes_the_curvilinear_preset_and_extra_settings():
    pose = ProbePose(position=(30, 40, 30), direction=(0, -2, 0), lateral=(1, 0, 0))
    placed = Probe.at(pose, image_shape=(64, 96))
    assert (placed.kind, placed.frequency_mhz, placed.depth_mm, placed.image_shape) == ("curvilinear", 3.5, 80.0, (64, 96))
    assert Probe.at(pose.model_copy(update={"kind": "linear"})).frequency_mhz == 10.0
    with pytest.raises(SpinesimError, match="frequency_mhz = 12.0 is out of range"):
        Probe.at(pose.model_copy(update={"frequency_mhz": 12.0}))
