import nrrd
import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

from anatomy_models.errors import SpinesimError
from anatomy_models.nrrd import read_nrrd, write_nrrd
from anatomy_models.volume import Volume


def oblique_volume() -> Volume:
    rotation = Rotation.from_euler("zyx", [20, -10, 5], degrees=True).as_matrix()
    array = np.random.default_rng(1).integers(-1000, 2000, (7, 8, 9)).astype(np.int16)
    return Volume.from_spacing(array, (0.8, 0.9, 2.5), origin=(-120.5, 30.25, 400.0), direction=rotation)


def test_round_trip_and_simpleitk_agree_on_geometry(tmp_path):
    volume = oblique_volume()
    path = write_nrrd(volume, tmp_path / "ct.nrrd")
    back = read_nrrd(path)
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-9)

    image = sitk.ReadImage(str(path))  # SimpleITK works in LPS too
    np.testing.assert_allclose(image.GetOrigin(), volume.origin, atol=1e-6)
    np.testing.assert_allclose(image.GetSpacing(), volume.spacing, atol=1e-6)
    np.testing.assert_allclose(np.array(image.GetDirection()).reshape(3, 3), volume.direction, atol=1e-6)
    # SimpleITK arrays are indexed [k, j, i]
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image).transpose(2, 1, 0), volume.array)


def test_ras_files_are_converted_to_lps(tmp_path):
    array = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    header = {"space": "right-anterior-superior", "space directions": np.diag([1.0, 2.0, 3.0]),
              "space origin": np.array([10.0, 20.0, 30.0])}
    nrrd.write(str(tmp_path / "ras.nrrd"), array, header)
    volume = read_nrrd(tmp_path / "ras.nrrd")
    np.testing.assert_allclose(volume.voxel_to_world([1, 1, 1]), [-11.0, -22.0, 33.0])
    assert volume.orientation_code == "RAS"


@pytest.mark.parametrize("header, message", [
    ({"space directions": np.eye(3)}, "missing field 'space'"),
    ({"space": "left-posterior-superior"}, "missing field 'space directions'"),
    ({"space": "left-posterior-superior", "space directions": np.diag([1.0, np.nan, 1.0])}, "finite"),
    ({"space": "left-posterior-superior", "space directions": np.diag([1.0, 0.0, 1.0])}, "zero-length"),
    ({"space": "scanner-xyz", "space directions": np.eye(3)}, "only LPS, RAS and LAS"),
])
def test_bad_geometry_fields_name_file_and_field(tmp_path, header, message):
    path = tmp_path / "bad.nrrd"
    nrrd.write(str(path), np.zeros((2, 2, 2), np.int16), header)
    with pytest.raises(SpinesimError, match=message) as caught:
        read_nrrd(path)
    assert str(caught.value).startswith(str(path))


def test_truncated_and_missing_files(tmp_path):
    path = write_nrrd(oblique_volume(), tmp_path / "ct.nrrd", compression_level=0)
    data = path.read_bytes()
    (tmp_path / "cut.nrrd").write_bytes(data[: len(data) - 100])
    with pytest.raises(SpinesimError, match="cut.nrrd"):
        read_nrrd(tmp_path / "cut.nrrd")
    with pytest.raises(SpinesimError, match="file not found"):
        read_nrrd(tmp_path / "nowhere.nrrd")
    (tmp_path / "text.nrrd").write_text("hello\n")
    with pytest.raises(SpinesimError, match="not a valid NRRD"):
        read_nrrd(tmp_path / "text.nrrd")
