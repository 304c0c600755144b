"""Hostile DICOM, made by the tests: every one is refused with a SpinesimError naming its file, or read right."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, RLELossless

from anatomy_models.dicom import MAX_SEQUENCE_DEPTH, read_dicom_series, scan_dicom
from anatomy_models.errors import SpinesimError
from tests.anatomy_models.dicom_series import axial_positions, ct_slice, stored_ramp, write_stack
from tests.fuzzing import examples


@pytest.fixture
def series(tmp_path) -> list[Path]:
    return write_stack(tmp_path / "ct", stored_ramp(3), axial_positions(3))


def _edit(path: Path, **fields) -> None:
    ds = pydicom.dcmread(path)
    for keyword, value in fields.items():
        setattr(ds, keyword, value)
    ds.save_as(path)


@pytest.mark.parametrize("transfer_syntax", [ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian])
def test_big_endian_and_deflated_series_are_read(tmp_path, transfer_syntax):
    """Before: refused as 'the file ends before its pixel data (truncated)' by the pixel-offset scan."""
    stored = stored_ramp(3)
    for k, position in enumerate(axial_positions(3)):
        ds = ct_slice(stored[k], position=position, series_uid="1.2.826.0.1.3680043.99.1")
        ds.file_meta.TransferSyntaxUID = transfer_syntax
        big = transfer_syntax == ExplicitVRBigEndian
        if big:
            ds.PixelData = stored[k].astype(">u2").tobytes()
        (tmp_path / "ct").mkdir(exist_ok=True)
        ds.save_as(tmp_path / "ct" / f"s{k}.dcm", little_endian=not big, implicit_vr=False, enforce_file_format=True)
    volume = read_dicom_series(tmp_path / "ct").volume
    np.testing.assert_array_equal(volume.array.transpose(2, 1, 0), stored.astype(np.int32) - 1024)


def test_bits_stored_beyond_bits_allocated_is_refused(series):
    _edit(series[1], BitsStored=20, HighBit=19)
    expected = r"slice001\.dcm: BitsStored \(0028,0101\) is 20 but must lie within 1\.\.Bits"
    with pytest.raises(SpinesimError, match=expected):
        read_dicom_series(series[0].parent)


@pytest.mark.parametrize("slope, intercept", [("1", "1e30"), ("1e30", "0"), ("inf", "0"), ("1", "-inf")])
@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")
def test_huge_or_infinite_rescale_is_refused(series, slope, intercept):
    """Before: a huge integral intercept was accepted, every pixel clipped to 32767 HU with only a warning."""
    _edit(series[2], RescaleSlope=slope, RescaleIntercept=intercept)
    with pytest.raises(SpinesimError, match=r"slice002\.dcm: RescaleSlope/RescaleIntercept .* at most 100000"):
        read_dicom_series(series[0].parent)


@pytest.mark.parametrize("spacing", [["0", "0.5"], ["-1", "0.5"], ["nan", "0.5"], ["1e-9", "0.5"], ["1e9", "1"]])
@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")
def test_zero_negative_nan_or_absurd_pixel_spacing_is_refused(series, spacing):
    _edit(series[0], PixelSpacing=spacing)
    with pytest.raises(SpinesimError, match=r"slice000\.dcm: PixelSpacing \(0028,0030\)"):
        read_dicom_series(series[0].parent)


def _nested_sequence_bytes(depth: int) -> bytes:
    """Referenced Image Sequence (0008,1140) with items nested ``depth`` deep, undefined lengths, explicit VR LE.

    Written by hand: pydicom's own writer recurses and cannot make the deep ones.
    """
    sequence = b"\x08\x00\x40\x11SQ\x00\x00\xff\xff\xff\xff"
    item = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    item_end = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
    sequence_end = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    return (sequence + item) * depth + (item_end + sequence_end) * depth


@pytest.mark.parametrize("depth", [MAX_SEQUENCE_DEPTH + 1, 3000])
def test_deeply_nested_sequences_are_refused(series, depth):
    """Before: the de-identification walk (and pydicom's parser) hit Python's recursion limit: an internal error."""
    data = series[1].read_bytes()
    start = 132 + 12 + int.from_bytes(data[140:144], "little")  # after the File Meta group
    series[1].write_bytes(data[:start] + _nested_sequence_bytes(depth) + data[start:])
    with pytest.raises(SpinesimError, match=rf"slice001\.dcm: sequences nest deeper than {MAX_SEQUENCE_DEPTH} levels"):
        read_dicom_series(series[0].parent)


def test_an_object_that_is_not_ct_is_listed_without_its_sequences_parsed(series):
    """A segmentation beside the CT is listed, never imported: its sequences (a 200-slice SEG's per-frame items
    took 22 s of CPU to parse) are left unread, so a nesting too deep there does not stop the CT's import (one
    too deep for pydicom's own reader is still refused: test_deeply_nested_sequences_are_refused)."""
    other = series[0].parent / "seg.dcm"
    _edit(series[1], Modality="SEG", SeriesInstanceUID="1.2.3.4.5", NumberOfFrames=4)
    data = series[1].read_bytes()
    start = 132 + 12 + int.from_bytes(data[140:144], "little")
    other.write_bytes(data[:start] + _nested_sequence_bytes(MAX_SEQUENCE_DEPTH + 1) + data[start:])
    series[1].unlink()
    listed = {s.modality: s for s in scan_dicom(series[0].parent)}
    assert listed["SEG"].slice_count == 4 and listed["SEG"].summary().startswith("SEG")
    assert read_dicom_series(series[0].parent).volume.array.shape[2] == 2  # the two CT slices left


def test_huge_declared_size_with_tiny_compressed_payload_is_refused_before_allocating(tmp_path):
    """Before: np.empty of the declared grid (65535 x 65535 x 100 int16, 800 GiB): MemoryError or a swap storm."""
    folder = tmp_path / "ct"
    stored = stored_ramp(2)
    paths = write_stack(folder, stored, axial_positions(2))
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.compress(RLELossless, stored[0])  # encapsulated: its size is only known when decoded
        ds.Rows = ds.Columns = 65535
        ds.NumberOfFrames = 1
        ds.save_as(path)
    for k in range(2, 100):
        (folder / f"slice{k:03d}.dcm").write_bytes(paths[0].read_bytes())
        ds = pydicom.dcmread(folder / f"slice{k:03d}.dcm")
        ds.ImagePositionPatient = [0, 0, 1000.0 + 2.0 * k]
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(folder / f"slice{k:03d}.dcm")
    expected = (r"ct: the series of 65535 x 65535 x \d+ voxels \(int16\) would need [\d,.]+ GiB of memory, "
                r"more than the limit of 4\.0 GiB")
    with pytest.raises(SpinesimError, match=expected):
        read_dicom_series(folder)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_unreadable_subfolder_is_refused_naming_it(series):
    _unreadable_subfolder_case(series)


@pytest.fixture
def part2_unlistable(monkeypatch):
    """A subfolder ``part2`` whose listing fails as it does for a user without permission (tests may run as
    root, who reads any folder)."""
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "part2":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_unreadable_subfolder_is_refused_naming_it_simulated(series, part2_unlistable):
    """The same with the folder's listing failing."""
    _unreadable_subfolder_case(series, chmod=False)


def _unreadable_subfolder_case(series, chmod=True):
    """Before: the slices under part2 were skipped without a word and half the patient imported."""
    part2 = series[0].parent / "part2"
    part2.mkdir()
    series[2].rename(part2 / series[2].name)
    if chmod:
        part2.chmod(0)
    try:
        with pytest.raises(SpinesimError, match=r"part2: cannot read this folder .*Make the folder readable"):
            read_dicom_series(series[0].parent)
    finally:
        part2.chmod(0o755)


def test_readable_only_skips_an_unreadable_subfolder_and_a_damaged_file_and_says_so(series, part2_unlistable):
    """Asked for, the readable slices are imported; each skipped folder and file is counted in a warning
    by what went wrong, not by its name (names can carry the patient's)."""
    part2 = series[0].parent / "part2"
    part2.mkdir()
    series[2].rename(part2 / series[2].name)
    damaged = series[0].parent / "Doe_John.dcm"
    damaged.write_bytes(series[1].read_bytes()[:400])  # a slice cut short in its header
    with pytest.raises(SpinesimError, match="part2: cannot read this folder .*import what is readable"):
        read_dicom_series(series[0].parent)
    ct = read_dicom_series(series[0].parent, readable_only=True)
    assert ct.volume.shape[2] == 2 and ct.metadata["slices_read"] == 2
    assert any("skipped a folder that could not be read (Permission denied)" in w for w in ct.warnings)
    assert any(w.startswith("skipped a damaged DICOM file (a CT image file without series UID") for w in ct.warnings)
    assert not any("Doe_John" in w or "part2" in w for w in ct.warnings)


_CT_SMALL = pydicom.data.get_testdata_file("CT_small.dcm")


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 39_000), st.integers(0, 255)), min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.integers(0, 39_000)))
def test_fuzz_damaged_dicom_is_read_or_refused_never_crashes(tmp_path_factory, edits, cut):
    """Bytes of a real CT file overwritten or cut: a volume or a SpinesimError naming the file, nothing else."""
    data = bytearray(Path(_CT_SMALL).read_bytes())
    for offset, value in edits:
        data[offset % len(data)] = value
    if cut is not None:
        data = data[:cut]
    path = tmp_path_factory.mktemp("dicom") / "fuzzed.dcm"
    path.write_bytes(bytes(data))
    try:
        read_dicom_series(path)
    except SpinesimError as error:
        assert "fuzzed.dcm" in str(error) or str(path.parent) in str(error)
