import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.volume import Volume
from scenarios.poses import CArmPose
from simulator.imaging.carm import (CArm, Collimation, ap, contralateral_oblique, gun_barrel, ipsilateral_oblique,
                                    lateral, square_endplate, squaring_tilt_deg)
from simulator.needle.shaft import Needle

CENTRE = 255.5


def test_neutral_pose_is_a_prone_pa_beam_shown_from_behind():
    carm = CArm()
    np.testing.assert_allclose(carm.beam_direction, [0, 1, 0], atol=1e-12)  # anterior -> posterior
    assert carm.source[1] < 0 < carm.detector_center[1]  # tube under the table, detector over the back
    left, head = carm.project([[30.0, 0, 0], [0, 0, 30.0]])
    assert left[0] < CENTRE and abs(left[1] - CENTRE) < 1e-9  # patient's left on the screen's left
    assert head[1] < CENTRE and abs(head[0] - CENTRE) < 1e-9  # head at the top


@pytest.mark.parametrize("angle", [10.0, 30.0, 60.0])
def test_lao_moves_the_detector_to_the_patients_left_and_rao_to_the_right(angle):
    assert CArm(primary_deg=angle).beam_direction[0] > 0
    assert CArm(primary_deg=angle).detector_center[0] > 0
    assert CArm(primary_deg=-angle).beam_direction[0] < 0
    assert CArm(primary_deg=-angle).detector_center[0] < 0


@pytest.mark.parametrize("angle", [5.0, 20.0, 45.0])
def test_cranial_tilts_the_detector_toward_the_head_and_caudal_toward_the_feet(angle):
    assert CArm(secondary_deg=angle).detector_center[2] > 0
    assert CArm(secondary_deg=-angle).detector_center[2] < 0
    # The head stays at the top of the screen whatever the tilt.
    assert CArm(secondary_deg=angle).screen_up[2] > 0 and CArm(secondary_deg=-angle).screen_up[2] > 0


def test_frame_is_orthonormal_and_seen_from_the_detector_side():
    carm = CArm(primary_deg=37, secondary_deg=-21)
    rotation = carm.rotation
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    # (right, down, beam) is left-handed: the screen shows the patient as seen from the detector,
    # the mirror image of what the focal spot "sees".
    assert np.linalg.det(rotation) == pytest.approx(-1.0)


def test_lateral_views_and_oblique_sides():
    assert lateral(side="left").beam_direction[0] == pytest.approx(1.0)
    assert lateral(side="right").beam_direction[0] == pytest.approx(-1.0)
    assert ipsilateral_oblique(side="left", angle_deg=25).primary_deg == 25
    assert ipsilateral_oblique(side="right", angle_deg=25).primary_deg == -25
    assert contralateral_oblique(side="left").primary_deg == -45
    assert contralateral_oblique(side="right", angle_deg=40).primary_deg == 40
    assert ipsilateral_oblique(side="left", angle_deg=25).label == "LAO 25°"
    assert CArm(primary_deg=-30, secondary_deg=-12).label == "RAO 30° CAUD 12°"


def test_isocentre_projects_to_the_image_centre_and_magnification():
    carm = CArm(primary_deg=-17, secondary_deg=8, isocenter=(3, -4, 120))
    np.testing.assert_allclose(carm.project(carm.isocenter), [CENTRE, CENTRE], atol=1e-9)
    a = np.asarray(carm.isocenter)
    b = a + 10.0 * carm.screen_right
    distance_px = np.linalg.norm(carm.project(b) - carm.project(a))
    assert distance_px == pytest.approx(10.0 * carm.magnification / carm.pixel_size_mm)


def test_projection_matrix_agrees_with_project():
    carm = CArm(primary_deg=25, secondary_deg=-10, isocenter=(0, 10, 5))
    points = np.array([[10.0, -20, 30], [-40, 15, -5]])
    homogeneous = np.c_[points, np.ones(2)] @ carm.projection_matrix.T
    np.testing.assert_allclose(homogeneous[:, :2] / homogeneous[:, 2:], carm.project(points))
    np.testing.assert_allclose(homogeneous[:, 2], carm.depth(points))


@settings(max_examples=60, deadline=None)
@given(primary=st.floats(-179, 179), secondary=st.floats(-60, 60),
       u=st.floats(-10, 520), v=st.floats(-10, 520), depth=st.floats(100, 900))
def test_pixel_to_ray_inverts_project(primary, secondary, u, v, depth):
    carm = CArm(primary_deg=primary, secondary_deg=secondary, isocenter=(5, -3, 40))
    source, direction = carm.pixel_to_ray(u, v)
    np.testing.assert_allclose(np.linalg.norm(direction), 1.0)
    point = source + depth / (direction @ carm.beam_direction) * direction
    np.testing.assert_allclose(carm.project(point), [u, v], atol=1e-6)


def _anatomy_with(landmarks=None, directions=None):
    ct = Volume.from_spacing(np.zeros((2, 2, 2), np.int16), (1, 1, 1))
    return Anatomy(ct=ct, landmarks=landmarks or {}, directions=directions or {})


def test_square_endplate_puts_the_beam_in_the_endplate_plane():
    tilt = np.radians(14.0)
    normal = np.array([0.05, np.sin(tilt), np.cos(tilt)])
    normal /= np.linalg.norm(normal)
    anatomy = _anatomy_with({"L4.body.center": [1.0, 2.0, 3.0]}, {"L4.superior_endplate.normal": normal})
    for primary in (0.0, 25.0, -30.0):
        carm = square_endplate(anatomy, "L4", primary_deg=primary)
        assert carm.beam_direction @ normal == pytest.approx(0.0, abs=1e-12)
        assert carm.isocenter == (1.0, 2.0, 3.0)
    # An endplate whose normal leans posteriorly is squared by a caudal tilt.
    assert square_endplate(anatomy, "L4").secondary_deg == pytest.approx(-14.0, abs=0.2)
    assert squaring_tilt_deg(np.array([0, 0, 1.0]), 40.0) == 0.0


def test_gun_barrel_makes_the_whole_needle_project_to_one_point():
    needle = Needle(entry=[35.0, 90.0, -20.0], direction=[-0.35, -0.9, 0.25], depth_mm=55.0)
    carm = gun_barrel(needle)
    pixels = carm.project([needle.tip, needle.entry, needle.hub])
    np.testing.assert_allclose(pixels, np.full((3, 2), CENTRE), atol=1e-6)
    assert carm.beam_direction @ needle.direction == pytest.approx(-1.0)  # detector on the hub side


def test_field_mask_of_intensifier_and_collimation():
    carm = CArm(detector_pixels=64)
    mask = carm.field_mask()
    assert not mask[0, 0] and mask[32, 32] and not mask.flags.writeable
    assert mask.sum() == pytest.approx(np.pi / 4 * 64 * 64, rel=0.03)
    shuttered = CArm(detector_pixels=64, detector_shape="square", collimation=Collimation(width=0.5)).field_mask()
    assert shuttered.any(axis=0).sum() == 32 and shuttered.all(axis=0).sum() == 32
    assert CArm(detector_shape="square").field_area_at_detector_mm2() == pytest.approx(230.0**2)


@pytest.mark.parametrize("fields, message", [
    ({"source_to_isocenter_mm": 1200.0}, "must exceed"),
    ({"secondary_deg": 95.0}, "tilt"),
    ({"detector_pixels": 3}, "pixels"),
    ({"isocenter": (0, 0)}, "isocentre"),
    ({"detector_shape": "hexagon"}, "detector shape"),
    ({"collimation": Collimation(width=1.0, height=1.0, iris=1.0), "detector_size_mm": -5}, "detector size"),
])
def test_invalid_geometry_is_a_clear_error(fields, message):
    with pytest.raises(SpinesimError, match=message):
        CArm(**fields)


def test_set_up_errors():
    with pytest.raises(SpinesimError, match="needs an anatomy"):
        ap(level="L4")
    with pytest.raises(SpinesimError, match="side"):
        lateral(side="up")
    with pytest.raises(SpinesimError, match="collimation"):
        Collimation(width=0.0)
    with pytest.raises(SpinesimError, match="no direction"):
        square_endplate(_anatomy_with({"L4.body.center": [0, 0, 0]}), "L4")
    with pytest.raises(SpinesimError, match="long axis"):
        gun_barrel(Needle(entry=[0, 0, 100], direction=[0, 0, -1], depth_mm=10))


@settings(max_examples=60, deadline=None)
@given(primary=st.floats(-180, 180), secondary=st.floats(-89.9, 89.9),
       isocenter=st.none() | st.tuples(*[st.floats(-300, 300)] * 3))
def test_a_carm_at_a_pose_is_the_carm_of_its_angles_about_its_own_or_the_default_isocentre(primary, secondary, isocenter):
    default = np.array([4.0, -20.0, 35.0])
    carm = CArm.at(CArmPose(setup="any", primary_deg=primary, secondary_deg=secondary, isocenter=isocenter), default)
    expected = CArm(primary_deg=primary, secondary_deg=secondary, isocenter=isocenter or tuple(default))
    assert carm == expected
    np.testing.assert_array_equal(carm.projection_matrix, expected.projection_matrix)


def test_a_pose_no_carm_can_take_is_refused():
    with pytest.raises(SpinesimError, match="between -90 and 90"):
        CArm.at(CArmPose(secondary_deg=90), (0, 0, 0))


@pytest.mark.parametrize("bin_pixels", [2, 4])
def test_a_binned_detectors_rays_are_its_full_detectors_own(bin_pixels):
    """A new pose's preview (issue 18) sees each bin by one of the full image's rays, that of the bin's pixel
    bin_pixels // 2 down and across, so the DRR traces it once for both images."""
    full = CArm(primary_deg=25.0, secondary_deg=-12.0, isocenter=(4.0, -3.0, 20.0), detector_pixels=64)
    binned = full.binned(bin_pixels)
    assert binned.detector_pixels * bin_pixels == 64 and binned.full == full
    i, j = np.meshgrid(np.arange(binned.detector_pixels, dtype=float), np.arange(binned.detector_pixels, dtype=float))
    own = bin_pixels * np.stack([i, j]) + bin_pixels // 2
    np.testing.assert_allclose(binned.ray_directions(i, j), full.ray_directions(*own), atol=1e-12)
    assert binned != full.with_(detector_pixels=binned.detector_pixels)  # not the coarse detector's own pixels
    with pytest.raises(SpinesimError, match="cannot be binned by 3"):
        full.binned(3)
