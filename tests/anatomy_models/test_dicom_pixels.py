"""Pixel data the DICOM reader must decode: compressed transfer syntaxes, 8-bit data, Enhanced CT."""

import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import JPEG2000, ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless, generate_uid
from scipy.spatial.transform import Rotation

from anatomy_models.dicom import ENHANCED_CT_IMAGE_STORAGE, read_dicom_series
from tests.anatomy_models.dicom_series import axial_positions, write_stack


def phantom_slices(count=3, size=48, bits=12) -> np.ndarray:
    """Stored values of a smooth disc with a bright spot per slice (what JPEG codecs see in CT)."""
    y, x = np.mgrid[:size, :size]
    slices = []
    for k in range(count):
        disc = 1024 + 40 * ((y - 24) ** 2 + (x - 22) ** 2 < 300) + 900 * np.exp(-((y - 20 - k) ** 2 + (x - 28) ** 2) / 30)
        slices.append(np.clip(disc, 0, 2 ** bits - 1))
    return np.rint(slices).astype(np.uint16)


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """An uncompressed 12-bit unsigned CT series (intercept -1024), as many scanners write."""
    folder = tmp_path_factory.mktemp("original")
    write_stack(folder, phantom_slices(), axial_positions(3), SliceThickness="2.0")
    return folder


def _convert(source, target, command):
    target.mkdir()
    for path in sorted(source.iterdir()):
        subprocess.run([*command, str(path), str(target / path.name)], check=True, capture_output=True)


def _compress_with_pydicom(source, target, syntax, **options):
    target.mkdir()
    for path in sorted(source.iterdir()):
        ds = pydicom.dcmread(path)
        ds.compress(syntax, **options)
        ds.save_as(target / path.name)


# (name, how to compress, largest allowed HU difference: 0 for lossless codecs)
CODECS = [
    ("jpeg-lossless-sv1", ["dcmcjpeg", "+e1"], 0),
    ("jpeg-lossless-process14", ["dcmcjpeg", "+el"], 0),
    ("jpeg-extended-12bit", ["dcmcjpeg", "+ee"], 24),
    ("jpeg-baseline-requantised", ["dcmcjpeg", "+eb"], 40),  # dcmtk maps 12 bits to 8 and adjusts the slope
    ("jpeg-ls-lossless", ["dcmcjpls", "+el"], 0),
    ("jpeg-ls-near-lossless", ["dcmcjpls", "+en"], 2),  # dcmtk default NEAR = 2: a guaranteed bound,
    ("rle-dcmtk", ["dcmcrle"], 0),
    ("rle-pydicom", (RLELossless, {}), 0),
    ("jpeg2000-lossless", (JPEG2000Lossless, {}), 0),
    ("jpeg2000-lossy", (JPEG2000, {"j2k_cr": [8]}), 40),
]


@pytest.mark.parametrize("name, how, tolerance", CODECS, ids=[c[0] for c in CODECS])
def test_compressed_series_decode_to_the_original_voxels(tmp_path, original, name, how, tolerance):
    if isinstance(how, list):
        _convert(original, tmp_path / name, how)
    else:
        _compress_with_pydicom(original, tmp_path / name, how[0], **how[1])
    syntax = pydicom.dcmread(next((tmp_path / name).iterdir()), stop_before_pixels=True).file_meta.TransferSyntaxUID
    assert syntax.is_compressed
    expected = read_dicom_series(original).volume
    ct = read_dicom_series(tmp_path / name)
    np.testing.assert_allclose(ct.volume.affine, expected.affine, atol=1e-9)
    difference = ct.volume.array.astype(np.float64) - expected.array
    assert np.abs(difference).max() <= tolerance, (name, np.abs(difference).max())
    if tolerance:  # lossy, yet without bias
        assert abs(difference.mean()) < tolerance / 2
    assert ct.metadata["transfer_syntax"] == syntax.name


def test_jpeg_baseline_of_8_bit_data(tmp_path):
    stored = (phantom_slices(2) // 16).astype(np.uint8)
    folder = tmp_path / "8bit"
    paths = write_stack(folder, stored.astype(np.uint16), axial_positions(2), slope=16.0)
    for path, pixels in zip(paths, stored):  # rewrite as 8-bit pixels
        ds = pydicom.dcmread(path)
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = pixels.tobytes()
        ds.save_as(path)
    expected = stored.transpose(2, 1, 0).astype(np.float64) * 16 - 1024
    np.testing.assert_array_equal(read_dicom_series(folder).volume.array, expected)  # slope 16: float32 HU
    _convert(folder, tmp_path / "baseline", ["dcmcjpeg", "+eb"])
    decoded = read_dicom_series(tmp_path / "baseline").volume.array
    assert np.abs(decoded - expected).max() <= 16 * 3  # 3 grey levels of JPEG error, times the slope


def test_signed_12_bit_values_are_sign_extended(tmp_path):
    """Stored 12-bit two's complement values without sign extension in the high bits."""
    hu = np.array([[[-1000, -1, 0], [5, 300, 2047]]], dtype=np.int16)  # (k, rows, columns)
    raw = (hu.astype(np.int32) & 0x0FFF).astype(np.uint16).view(np.int16)
    write_stack(tmp_path / "ct", raw, axial_positions(1), signed=True, bits_stored=12, intercept=0.0)
    np.testing.assert_array_equal(read_dicom_series(tmp_path / "ct").volume.array, hu.transpose(2, 1, 0))


# ---------------------------------------------------------------------------------------- Enhanced CT
def enhanced_ct(hu: np.ndarray, positions, orientation, spacing, frame_order, intercepts) -> Dataset:
    """A multi-frame Enhanced CT dataset; frame f holds slice frame_order[f] with its own intercept."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ENHANCED_CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = ENHANCED_CT_IMAGE_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "CT"
    ds.NumberOfFrames = len(frame_order)
    ds.Rows, ds.Columns = hu.shape[1:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    measures, plane, transform, shared = Dataset(), Dataset(), Dataset(), Dataset()
    measures.PixelSpacing = [f"{v:.6f}" for v in spacing]
    measures.SliceThickness = "1.5"
    plane.ImageOrientationPatient = [f"{v:.10f}" for v in orientation]
    transform.RescaleIntercept, transform.RescaleSlope, transform.RescaleType = "-1024", "1", "HU"
    shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = [measures], [plane]
    shared.PixelValueTransformationSequence = [transform]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames, stored = [], []
    for frame, k in enumerate(frame_order):
        item, position = Dataset(), Dataset()
        position.ImagePositionPatient = [f"{v:.6f}" for v in positions[k]]
        item.PlanePositionSequence = [position]
        if intercepts[frame] != -1024:  # a per-frame transformation overrides the shared one
            own = Dataset()
            own.RescaleIntercept, own.RescaleSlope, own.RescaleType = str(intercepts[frame]), "1", "HU"
            item.PixelValueTransformationSequence = [own]
        frames.append(item)
        stored.append(hu[k] - intercepts[frame])
    ds.PerFrameFunctionalGroupsSequence = frames
    ds.PixelData = np.ascontiguousarray(stored, dtype="<i2").tobytes()
    return ds


@pytest.mark.parametrize("compressed", [False, True], ids=["native", "jpeg2000-lossless"])
def test_enhanced_ct_multiframe_with_oblique_geometry(tmp_path, compressed):
    rotation = Rotation.from_euler("xyz", [12, -20, 35], degrees=True).as_matrix()
    row, column, normal = rotation.T
    spacing = (0.6, 0.7)  # (row spacing, column spacing)
    count = 5
    origin = np.array([-80.0, 30.0, 210.0])
    positions = [origin + 1.5 * k * normal for k in range(count)]
    hu = np.random.default_rng(4).integers(-1000, 1500, (count, 32, 40)).astype(np.int16)
    order = [3, 0, 4, 1, 2]
    ds = enhanced_ct(hu, positions, np.concatenate([row, column]), spacing, order, [-1024, -1000, -1024, -1024, -1024])
    if compressed:
        ds.compress(JPEG2000Lossless)
    ds.save_as(tmp_path / "enhanced.dcm", enforce_file_format=True)
    ct = read_dicom_series(tmp_path / "enhanced.dcm")
    np.testing.assert_array_equal(ct.volume.array, hu.transpose(2, 1, 0))
    expected = np.eye(4)
    expected[:3, :3] = np.column_stack([row * spacing[1], column * spacing[0], normal * 1.5])
    expected[:3, 3] = origin
    np.testing.assert_allclose(ct.volume.affine, expected, atol=1e-5)
    assert ct.metadata["sop_class"] == "Enhanced CT Image Storage" and ct.warnings == ()


def test_enhanced_ct_frame_without_position_is_named(tmp_path):
    ds = enhanced_ct(np.zeros((2, 3, 3), np.int16), axial_positions(2), (1, 0, 0, 0, 1, 0), (1, 1), [0, 1], [-1024] * 2)
    del ds.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence
    ds.save_as(tmp_path / "enhanced.dcm", enforce_file_format=True)
    with pytest.raises(Exception, match=r"enhanced\.dcm: frame 2: missing ImagePositionPatient"):
        read_dicom_series(tmp_path / "enhanced.dcm")


def test_dcmtk_tools_are_installed():
    for tool in ("dcmcjpeg", "dcmcjpls", "dcmcrle", "dciodvfy", "dcmdump"):
        assert shutil.which(tool), f"{tool} is missing: ./dev.sh installs dcmtk and dicom3tools"
