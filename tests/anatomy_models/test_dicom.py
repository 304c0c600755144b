import random
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from scipy.spatial.transform import Rotation

from anatomy_models.dicom import read_dicom_series, scan_dicom, write_dicom_series
from anatomy_models.errors import SpinesimError
from anatomy_models.volume import Volume
from tests.anatomy_models.dicom_series import axial_positions, ct_slice, stored_ramp, write_stack

TEST_FILES = get_testdata_file("CT_small.dcm").rsplit("/", 1)[0]


def oblique_volume(shape=(9, 8, 7), seed=3) -> Volume:
    rotation = Rotation.from_euler("zyx", [25, -15, 10], degrees=True).as_matrix()
    array = np.random.default_rng(seed).integers(-1024, 3000, shape).astype(np.int16)
    return Volume.from_spacing(array, (0.74, 0.81, 2.5), origin=(-123.4567, 45.125, 310.0), direction=rotation)


def simpleitk_read(folder) -> Volume:
    """Read a series with SimpleITK (GDCM sorting), as spinesim's [i, j, k] array and affine."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    direction = np.array(image.GetDirection()).reshape(3, 3)
    return Volume.from_spacing(sitk.GetArrayFromImage(image).transpose(2, 1, 0), image.GetSpacing(),
                               image.GetOrigin(), direction)


def assert_same(volume: Volume, expected: Volume, atol_mm: float = 1e-3) -> None:
    np.testing.assert_array_equal(volume.array, expected.array)
    np.testing.assert_allclose(volume.affine, expected.affine, atol=atol_mm)


# ---------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("volume", [
    Volume.from_spacing(np.random.default_rng(0).integers(-1024, 2000, (10, 12, 6)).astype(np.int16),
                        (0.7, 0.7, 1.25), origin=(-150.0, -160.5, -300.25)),
    oblique_volume(),
], ids=["axial", "oblique"])
def test_write_then_read_with_spinesim_and_simpleitk(tmp_path, volume):
    files = write_dicom_series(volume, tmp_path / "ct")
    assert len(files) == volume.shape[2]
    ours = read_dicom_series(tmp_path / "ct")
    assert ours.warnings == ()
    assert_same(ours.volume, volume)
    assert_same(simpleitk_read(tmp_path / "ct"), volume)


def test_shuffled_file_order_and_misleading_names(tmp_path):
    volume = oblique_volume(shape=(6, 5, 12))
    written = write_dicom_series(volume, tmp_path / "written")
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    order = list(range(len(written)))
    random.Random(7).shuffle(order)
    for new_number, k in enumerate(order):
        ds = pydicom.dcmread(written[k])
        ds.InstanceNumber = new_number + 1  # instance numbers that contradict the positions
        # names that sort in the shuffled order, both as text and as numbers
        ds.save_as(shuffled / f"IM{new_number + 1}")
    assert_same(read_dicom_series(shuffled).volume, volume)
    assert_same(simpleitk_read(shuffled), volume)


def test_left_handed_volume_reads_back_in_normal_order(tmp_path):
    volume = oblique_volume()
    flipped = volume.sub_volume(k=slice(None, None, -1))  # k runs against the slice normal
    write_dicom_series(flipped, tmp_path / "ct")
    assert_same(read_dicom_series(tmp_path / "ct").volume, volume)


def test_float_volume_is_rounded_to_int16(tmp_path):
    volume = Volume.from_spacing(np.array([[[-1000.4, 40.6]]], dtype=np.float32).repeat(2, axis=0), (1, 1, 1))
    write_dicom_series(volume, tmp_path / "ct")
    np.testing.assert_array_equal(read_dicom_series(tmp_path / "ct").volume.array, np.rint(volume.array))


def test_writer_output_passes_dciodvfy(tmp_path):
    files = write_dicom_series(oblique_volume(shape=(4, 3, 2)), tmp_path / "ct")
    for path in files:
        report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        lines = [line for line in (report.stdout + report.stderr).splitlines() if line.startswith(("Error", "Warning"))]
        assert not [line for line in lines if line.startswith("Error")], lines
        # The only warnings: no study date and time, because exports carry no dates (de-identification).
        assert sorted(lines) == ["Warning - Missing attribute or value that would be needed to build DICOMDIR - Study Date",
                                 "Warning - Missing attribute or value that would be needed to build DICOMDIR - Study Time"]


def _dcmdump_value(text: str, tag: str) -> list[float]:
    match = re.search(rf"\({tag}\) DS \[([^\]\n]*)\]", text)
    return [float(v) for v in match.group(1).split("\\")]


def test_dcmtk_reads_the_same_geometry_and_pixels(tmp_path):
    volume = oblique_volume(shape=(5, 4, 3))
    files = write_dicom_series(volume, tmp_path / "ct")
    for k, path in enumerate(files):
        out = tmp_path / f"pixels{k}"
        out.mkdir()
        text = subprocess.run(["dcmdump", "+L", "+W", str(out), str(path)], capture_output=True, text=True, check=True).stdout
        np.testing.assert_allclose(_dcmdump_value(text, "0020,0032"), volume.voxel_to_world([0, 0, k]), atol=1e-3)
        orientation = _dcmdump_value(text, "0020,0037")
        np.testing.assert_allclose(orientation, np.concatenate([volume.direction[:, 0], volume.direction[:, 1]]), atol=1e-6)
        spacing = _dcmdump_value(text, "0028,0030")  # row spacing (along j), column spacing (along i)
        np.testing.assert_allclose(spacing, volume.spacing[[1, 0]], atol=1e-6)
        raw = next(out.iterdir()).read_bytes()
        np.testing.assert_array_equal(np.frombuffer(raw, "<i2").reshape(4, 5).T, volume.array[:, :, k])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(quaternion=st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda q: np.linalg.norm(q) > 0.1),
       spacing=st.tuples(*[st.floats(0.2, 5.0)] * 3),
       shape=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 6)),
       origin=st.tuples(*[st.floats(-500, 500)] * 3),
       seed=st.integers(0, 2**16))
def test_property_random_geometry_round_trips(tmp_path_factory, quaternion, spacing, shape, origin, seed):
    direction = Rotation.from_quat(quaternion).as_matrix()
    array = np.random.default_rng(seed).integers(-3000, 3000, shape).astype(np.int16)
    volume = Volume.from_spacing(array, spacing, origin, direction)
    folder = tmp_path_factory.mktemp("prop") / "ct"
    files = write_dicom_series(volume, folder)
    for number, path in enumerate(random.Random(seed).sample(files, len(files))):
        path.rename(folder / f"x{number}")  # file names in a random order
    ours = read_dicom_series(folder).volume
    if shape[2] == 1:  # one slice: the slice spacing is the written slice thickness
        np.testing.assert_allclose(ours.spacing[2], spacing[2], rtol=1e-6)
    assert_same(ours, volume)


# ---------------------------------------------------------------------------------------- real data
def _hu_from_raw(path) -> np.ndarray:
    """HU computed from the raw Pixel Data bytes and the rescale fields (independent of pydicom's decoders)."""
    ds = pydicom.dcmread(path)
    raw = np.frombuffer(ds.PixelData, dtype="<i2" if ds.PixelRepresentation else "<u2").reshape(ds.Rows, ds.Columns)
    return raw.T * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_pydicom_ct_small_reads_with_the_right_hu():
    path = get_testdata_file("CT_small.dcm")
    ct = read_dicom_series(path)
    np.testing.assert_array_equal(ct.volume.array[:, :, 0], _hu_from_raw(path))
    image = sitk.ReadImage(path)
    np.testing.assert_array_equal(ct.volume.array[:, :, 0], sitk.GetArrayFromImage(image)[0].T)
    np.testing.assert_allclose(ct.volume.origin, image.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(ct.volume.spacing[:2], image.GetSpacing()[:2], atol=1e-6)
    assert ct.volume.spacing[2] == 5.0  # one slice: its Slice Thickness
    assert ct.metadata["modality"] == "CT" and ct.metadata["kvp"] == 120.0
    assert -1100 < ct.volume.array.min() and 800 < ct.volume.array.max() < 1300  # air .. bone


def test_pydicom_five_slice_series_matches_simpleitk(tmp_path):
    source = f"{TEST_FILES}/dicomdirtests/98892001/CT5N"
    ct = read_dicom_series(source)
    assert ct.volume.shape == (16, 16, 5) and ct.warnings == ()
    assert_same(ct.volume, simpleitk_read(source), atol_mm=1e-4)
    # each slice holds the pixels of the file at its height, whatever the file names say
    positions = {float(pydicom.dcmread(p).ImagePositionPatient[2]): p for p in sorted(Path(source).iterdir())}
    for k in range(5):
        z = ct.volume.voxel_to_world([0, 0, k])[2]
        path = next(p for height, p in positions.items() if abs(height - z) < 1e-3)
        np.testing.assert_array_equal(ct.volume.array[:, :, k], _hu_from_raw(path))


def test_pydicom_series_with_a_far_slice_is_refused_naming_it():
    with pytest.raises(SpinesimError, match=r"17106: a gap of 202\.50 mm .* too wide to fill"):
        read_dicom_series(f"{TEST_FILES}/dicomdirtests/77654033/CT2")


def test_mr_is_refused_saying_what_was_found():
    with pytest.raises(SpinesimError, match=r"no CT series here; found: \[1\] .*: MR"):
        read_dicom_series(get_testdata_file("MR_small.dcm"))
    series = scan_dicom(get_testdata_file("MR_small.dcm"))
    with pytest.raises(SpinesimError, match=r"is MR, not CT.*Hounsfield"):
        read_dicom_series(get_testdata_file("MR_small.dcm"), series_uid=series[0].uid)
