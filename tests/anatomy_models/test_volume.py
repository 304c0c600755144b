import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from anatomy_models.errors import SpinesimError
from anatomy_models.volume import Volume

finite = st.floats(-500, 500, allow_nan=False)
positive = st.floats(0.1, 5.0)


@st.composite
def affines(draw):
    rotation = Rotation.from_rotvec(draw(st.tuples(finite, finite, finite))).as_matrix() if draw(st.booleans()) else np.eye(3)
    spacing = np.array(draw(st.tuples(positive, positive, positive)))
    affine = np.eye(4)
    affine[:3, :3] = rotation * spacing
    affine[:3, 3] = draw(st.tuples(finite, finite, finite))
    return affine


@given(affines(), st.lists(st.tuples(finite, finite, finite), min_size=1, max_size=5))
@settings(max_examples=60, deadline=None)
def test_world_voxel_round_trip(affine, points):
    volume = Volume(np.zeros((2, 2, 2), np.int16), affine)
    points = np.array(points)
    np.testing.assert_allclose(volume.voxel_to_world(volume.world_to_voxel(points)), points, atol=1e-6)
    np.testing.assert_allclose(volume.spacing, np.linalg.norm(affine[:3, :3], axis=0))
    np.testing.assert_allclose(volume.direction.T @ volume.direction, np.eye(3), atol=1e-9)


def test_from_spacing_places_voxels():
    volume = Volume.from_spacing(np.zeros((4, 5, 6)), spacing=(0.5, 0.7, 2.0), origin=(10, -3, 7))
    np.testing.assert_allclose(volume.voxel_to_world([3, 4, 5]), [11.5, -0.2, 17.0])
    np.testing.assert_allclose(volume.bounds()[0], [9.75, -3.35, 6.0])
    np.testing.assert_allclose(volume.bounds()[1], [11.75, 0.15, 18.0])
    assert volume.orientation_code == "LPS"


def test_orientation_code_of_ras_and_sagittal_grids():
    assert Volume(np.zeros((2, 2, 2)), np.diag([-1.0, -1.0, 1.0, 1.0])).orientation_code == "RAS"
    sagittal = np.array([[0, 0, 1.0], [1.0, 0, 0], [0, -1.0, 0]])  # i -> P, j -> I, k -> L
    assert Volume.from_spacing(np.zeros((2, 2, 2)), (1, 1, 1), direction=sagittal).orientation_code == "PIL"


def linear_field(volume: Volume, coefficients=(0.3, -1.2, 2.5), constant=7.0) -> np.ndarray:
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in volume.shape], indexing="ij"), axis=-1)
    return volume.voxel_to_world(ijk) @ np.array(coefficients) + constant


def test_trilinear_resampling_is_exact_for_a_linear_field():
    source = Volume.from_spacing(np.zeros((20, 22, 24), np.float32), (1.0, 1.5, 2.0), origin=(-10, -15, -20))
    source = source.with_array(linear_field(source).astype(np.float32))
    rotation = Rotation.from_euler("xyz", [10, -20, 30], degrees=True).as_matrix()
    target = Volume.from_spacing(np.zeros((10, 10, 10)), (0.7, 0.9, 1.1), origin=(-3, -4, -5), direction=rotation)
    resampled = source.resample(target.shape, target.affine, order=1)
    assert resampled.array.dtype == np.float32
    np.testing.assert_allclose(resampled.array, linear_field(target), atol=1e-3)


def test_nearest_resampling_keeps_label_values():
    labels = np.zeros((10, 10, 10), np.uint16)
    labels[2:5, 2:5, 2:5] = 3
    labels[6:9, 6:9, 6:9] = 7
    volume = Volume.from_spacing(labels, (2.0, 2.0, 2.0))
    fine = volume.resampled_to_spacing(0.5, order=0)
    assert fine.array.dtype == np.uint16
    assert set(np.unique(fine.array)) == {0, 3, 7}
    # a 3x3x3 block of 2 mm voxels is 6 mm wide; at 0.5 mm that is 12 voxels per side
    assert (fine.array == 3).sum() == 12 ** 3
    assert fine.sample(np.array([[7.0, 7.0, 7.0]]), order=0)[0] == 3


def test_crop_is_a_view_in_the_same_place():
    volume = Volume.from_spacing(np.arange(1000, dtype=np.int16).reshape(10, 10, 10), (1, 2, 3), origin=(5, 5, 5))
    cropped = volume.crop((6.5, 8, 5), (9, 15, 17))
    assert np.shares_memory(cropped.array, volume.array)
    assert cropped.shape == (3, 4, 5)  # x centres 7, 8, 9; y 9..15; z 5..17
    np.testing.assert_allclose(cropped.voxel_to_world([0, 0, 0]), [7, 9, 5])
    assert cropped.array[0, 0, 0] == volume.array[2, 2, 0]
    with pytest.raises(SpinesimError, match="does not overlap"):
        volume.crop((100, 100, 100), (200, 200, 200))


def test_strided_sub_volume_keeps_geometry():
    volume = Volume.from_spacing(np.random.default_rng(0).random((9, 9, 9)), (1, 1, 1), origin=(1, 2, 3))
    sub = volume.sub_volume(slice(1, None, 2), slice(None), slice(8, 0, -3))
    for index in [(0, 0, 0), (2, 4, 1), (3, 8, 2)]:
        world = sub.voxel_to_world(index)
        original = np.rint(volume.world_to_voxel(world)).astype(int)
        assert sub.array[index] == volume.array[tuple(original)]


@pytest.mark.parametrize("affine, message", [
    (np.full((4, 4), np.nan), "NaN"),
    (np.diag([1.0, 0.0, 1.0, 1.0]), "singular"),
    (np.eye(3), "4x4"),
])
def test_bad_affines_are_refused(affine, message):
    with pytest.raises(SpinesimError, match=message):
        Volume(np.zeros((2, 2, 2)), affine)


def test_bad_spacing_and_dimensions_are_refused():
    with pytest.raises(SpinesimError, match="spacing"):
        Volume.from_spacing(np.zeros((2, 2, 2)), (1.0, float("nan"), 1.0))
    with pytest.raises(SpinesimError, match="3D"):
        Volume(np.zeros((2, 2)), np.eye(4))
