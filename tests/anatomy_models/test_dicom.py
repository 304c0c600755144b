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


# ---------------------------------------------------------------------------------------- geometry edge cases
def test_missing_slice_is_filled_by_interpolation_with_a_warning(tmp_path):
    stored = stored_ramp(6)
    positions = axial_positions(6, spacing=2.0)
    keep = [0, 1, 2, 4, 5]  # slice 3 is missing
    write_stack(tmp_path / "ct", stored[keep], [positions[k] for k in keep])
    ct = read_dicom_series(tmp_path / "ct")
    assert ct.volume.shape == (5, 6, 6)
    np.testing.assert_allclose(ct.volume.spacing, [0.5, 0.5, 2.0])
    expected = stored.astype(np.int32).transpose(2, 1, 0) - 1024  # the ramp is linear along k
    np.testing.assert_array_equal(ct.volume.array, expected)
    assert len(ct.warnings) == 1 and "1 slice(s) missing" in ct.warnings[0] and "interpolation" in ct.warnings[0]
    assert ct.metadata["import_warnings"] == list(ct.warnings)


def test_uneven_spacing_is_resampled_and_small_jitter_is_not(tmp_path):
    stored = stored_ramp(5)
    jitter = [p + [0, 0, d] for p, d in zip(axial_positions(5), [0, 0.004, -0.006, 0.003, 0])]
    write_stack(tmp_path / "jitter", stored, jitter)
    ct = read_dicom_series(tmp_path / "jitter")
    assert ct.warnings == () and ct.volume.shape[2] == 5
    heights = (0.0, 1.0, 2.0, 3.5, 4.0, 5.0)
    stored = stored_ramp(6)
    write_stack(tmp_path / "uneven", stored, [np.array([0, 0, z]) for z in heights])
    ct = read_dicom_series(tmp_path / "uneven")
    assert "uneven slice spacing" in ct.warnings[0]
    assert ct.volume.shape[2] == 6 and np.isclose(ct.volume.spacing[2], 1.0)
    # the slice at z = 3 mm lies 2/3 of the way from the slice at 2 mm to the one at 3.5 mm
    hu = stored.astype(np.float64).transpose(2, 1, 0) - 1024
    np.testing.assert_array_equal(ct.volume.array[:, :, 3], np.rint(hu[:, :, 2] / 3 + hu[:, :, 3] * 2 / 3))
    np.testing.assert_array_equal(ct.volume.array[:, :, 4], hu[:, :, 4])


def test_duplicate_slices(tmp_path):
    stored = stored_ramp(3)
    positions = axial_positions(3)
    write_stack(tmp_path / "same", np.concatenate([stored, stored[1:2]]), positions + [positions[1]])
    ct = read_dicom_series(tmp_path / "same")
    assert ct.volume.shape[2] == 3 and "1 duplicate slice(s)" in ct.warnings[0]
    different = stored[1:2] + 5
    paths = write_stack(tmp_path / "different", np.concatenate([stored, different]), positions + [positions[1]])
    with pytest.raises(SpinesimError, match=r"same position .* different pixels.*several acquisitions"):
        read_dicom_series(tmp_path / "different")
    assert paths  # the message names one of the two files
    with pytest.raises(SpinesimError, match=r"slice00[13]\.dcm"):
        read_dicom_series(tmp_path / "different")


def test_gantry_tilt_reads_to_the_right_world_positions(tmp_path):
    count, rows, columns, spacing = 5, 8, 6, (0.8, 0.6)  # (row spacing, column spacing)
    shift_y = 0.9  # mm per slice along y (the column direction): a tilted gantry
    stored = np.full((count, rows, columns), 1024, np.uint16)
    markers = [(1 + k % 3, 2 + k % 2) for k in range(count)]  # (row, column) of a bright pixel per slice
    positions = []
    for k, (r, c) in enumerate(markers):
        stored[k, r, c] = 3024
        positions.append(np.array([10.0, -50.0 + shift_y * k, 100.0 + 2.0 * k]))
    write_stack(tmp_path / "ct", stored, positions, spacing=spacing)
    ct = read_dicom_series(tmp_path / "ct")
    assert "gantry tilt about" in ct.warnings[0]
    assert np.isclose(ct.metadata["gantry_tilt_degrees"], np.degrees(np.arctan(shift_y / 2.0)), atol=0.01)
    volume = ct.volume
    np.testing.assert_allclose(volume.direction, np.eye(3), atol=1e-9)  # resampled onto an orthogonal grid
    for k, (r, c) in enumerate(markers):
        expected = positions[k] + c * spacing[1] * np.array([1, 0, 0]) + r * spacing[0] * np.array([0, 1, 0])
        # Bilinear shifting spreads the marker over neighbours but keeps its centroid where it was.
        excess = np.clip(volume.array[:, :, k].astype(np.float64), 0, None)
        i, j = np.indices(excess.shape)
        centroid = [np.sum(i * excess) / excess.sum(), np.sum(j * excess) / excess.sum(), k]
        np.testing.assert_allclose(volume.voxel_to_world(centroid), expected, atol=1e-3)
        assert np.isclose(excess.sum(), 2000, atol=2)
    assert volume.array.min() >= -1000  # the widened border is air, not garbage


def test_two_series_a_stray_text_file_and_a_missing_slice(tmp_path):
    folder = tmp_path / "exam"
    first = generate_uid()
    second = generate_uid()
    write_stack(folder / "a", stored_ramp(4), axial_positions(4), series_uid=first, SeriesDescription="bone")
    kept = [0, 1, 3, 4]
    write_stack(folder / "b", stored_ramp(5)[kept], [axial_positions(5)[k] for k in kept], series_uid=second,
                SeriesDescription="soft")
    (folder / "notes.txt").write_text("not DICOM at all\n" * 20)
    (folder / "b" / "DICOMDIR.lock").write_bytes(b"\x00" * 10)
    series = scan_dicom(folder)
    assert sorted(s.uid for s in series) == sorted([first, second])
    with pytest.raises(SpinesimError, match=r"2 CT series found, choose one: \[1\] .*; \[2\] .*--series") as error:
        read_dicom_series(folder)
    assert all(text in str(error.value) for text in (first, second, "'bone' 4 slice(s)", "'soft' 4 slice(s)"))
    ct = read_dicom_series(folder, series_uid=second)
    assert ct.volume.shape[2] == 5 and "1 slice(s) missing" in ct.warnings[0]
    by_number = [s.uid for s in series].index(first) + 1
    assert read_dicom_series(folder, series_uid=str(by_number)).volume.shape[2] == 4
    with pytest.raises(SpinesimError, match=r"no series '1\.2\.3' here"):
        read_dicom_series(folder, series_uid="1.2.3")


# ---------------------------------------------------------------------------------------- malformed input
@pytest.fixture
def good_slices(tmp_path):
    return write_stack(tmp_path / "ct", stored_ramp(3), axial_positions(3))


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpinesimError, match=r"empty: the folder is empty"):
        read_dicom_series(tmp_path / "empty")


def test_folder_without_dicom(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("hello")
    (tmp_path / "docs" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200)
    with pytest.raises(SpinesimError, match=r"docs: no DICOM images among the 2 file\(s\) found"):
        read_dicom_series(tmp_path / "docs")


@pytest.mark.parametrize("keep_fraction", [0.3, 0.9], ids=["in-header", "in-pixels"])
def test_truncated_file(good_slices, keep_fraction):
    path = good_slices[1]
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    with pytest.raises(SpinesimError, match=rf"slice001\.dcm: .*truncated"):
        read_dicom_series(path.parent)


@pytest.mark.parametrize("keyword, tag", [("ImagePositionPatient", "0020,0032"), ("ImageOrientationPatient", "0020,0037"),
                                          ("PixelSpacing", "0028,0030")])
def test_missing_geometry_tag(good_slices, keyword, tag):
    ds = pydicom.dcmread(good_slices[2])
    delattr(ds, keyword)
    ds.save_as(good_slices[2])
    with pytest.raises(SpinesimError, match=rf"slice002\.dcm: missing {keyword} \({tag}\)"):
        read_dicom_series(good_slices[0].parent)


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")
@pytest.mark.parametrize("value, found", [(["nan", "0.5"], "NaN"), (["0", "0.5"], "positive")])
def test_nan_or_zero_pixel_spacing(good_slices, value, found):
    ds = pydicom.dcmread(good_slices[0])
    ds.PixelSpacing = value
    ds.save_as(good_slices[0])
    with pytest.raises(SpinesimError, match=rf"slice000\.dcm: PixelSpacing \(0028,0030\) .*{found}"):
        read_dicom_series(good_slices[0].parent)


def test_broken_orientation(good_slices):
    ds = pydicom.dcmread(good_slices[0])
    ds.ImageOrientationPatient = [1, 0, 0, 1, 0, 0]
    ds.save_as(good_slices[0])
    with pytest.raises(SpinesimError, match=r"slice000\.dcm: ImageOrientationPatient .* perpendicular unit vectors"):
        read_dicom_series(good_slices[0].parent)


def test_inconsistent_rows_and_columns(tmp_path):
    folder = tmp_path / "ct"
    uid = generate_uid()
    write_stack(folder, stored_ramp(2), axial_positions(2), series_uid=uid)
    ct_slice(stored_ramp(1, rows=7)[0], position=axial_positions(3)[2], series_uid=uid).save_as(
        folder / "odd.dcm", enforce_file_format=True)
    with pytest.raises(SpinesimError, match=r"odd\.dcm: has 7 x 5 pixels .* has 6 x 5"):
        read_dicom_series(folder)


def test_mixed_orientations_in_one_series_are_refused():
    # pydicom's CT2N test series: one sagittal and one coronal slice under one series UID
    with pytest.raises(SpinesimError, match=r"ImageOrientationPatient .* differs"):
        read_dicom_series(f"{TEST_FILES}/dicomdirtests/98892001/CT2N")


def test_burned_in_annotation_is_refused(tmp_path):
    write_stack(tmp_path / "ct", stored_ramp(2), axial_positions(2), BurnedInAnnotation="YES")
    with pytest.raises(SpinesimError, match=r"Burned In Annotation = YES"):
        read_dicom_series(tmp_path / "ct")


def test_writer_refuses_a_non_empty_folder_and_impossible_volumes(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    volume = oblique_volume(shape=(2, 2, 2))
    with pytest.raises(SpinesimError, match=r"busy: the output folder already exists and is not empty"):
        write_dicom_series(volume, tmp_path / "busy")
    sheared = Volume(volume.array, volume.affine @ np.array([[1, 0.3, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]))
    with pytest.raises(SpinesimError, match=r"not perpendicular"):
        write_dicom_series(sheared, tmp_path / "sheared")
    with pytest.raises(SpinesimError, match=r"int16 range"):
        write_dicom_series(Volume(np.full((2, 2, 2), 40000.0), np.eye(4)), tmp_path / "big")
    with pytest.raises(SpinesimError, match=r"NaN"):
        write_dicom_series(Volume(np.full((2, 2, 2), np.nan), np.eye(4)), tmp_path / "nan")
    assert not (tmp_path / "sheared").exists() and not (tmp_path / "big").exists()


def test_the_only_ct_series_is_chosen_beside_other_modalities(tmp_path):
    folder = tmp_path / "exam"
    write_stack(folder / "ct", stored_ramp(3), axial_positions(3))
    (folder / "mr").mkdir()
    shutil.copy(get_testdata_file("MR_small.dcm"), folder / "mr" / "IM1")
    shutil.copy(f"{TEST_FILES}/dicomdirtests/DICOMDIR", folder / "DICOMDIR")
    assert sorted(s.modality for s in scan_dicom(folder)) == ["CT", "MR"]
    assert read_dicom_series(folder).volume.shape == (5, 6, 3)


def test_zero_rescale_slope_is_named(good_slices):
    ds = pydicom.dcmread(good_slices[1])
    ds.RescaleSlope = "0"
    ds.save_as(good_slices[1])
    with pytest.raises(SpinesimError, match=r"slice001\.dcm: RescaleSlope/RescaleIntercept .* non-zero slope, found '0'"):
        read_dicom_series(good_slices[0].parent)
