"""Hostile NIfTI, NRRD and meshes, made by the tests: refused with a SpinesimError naming the file, or read right."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest
import trimesh
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from anatomy_models.errors import SpinesimError
from anatomy_models.meshes import mesh_anatomy
from anatomy_models.nifti import read_nifti, write_nifti
from anatomy_models.nrrd import read_nrrd, write_nrrd
from anatomy_models.sources import import_anatomy
from anatomy_models.volume import Volume
from tests.fuzzing import examples

FUZZ = settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _ct(shape=(6, 5, 4), dtype=np.int16) -> Volume:
    return Volume.from_spacing(np.arange(np.prod(shape), dtype=dtype).reshape(shape) - 1000, (0.7, 0.7, 2.0))


def _nifti_with(path: Path, array: np.ndarray, zooms=(0.7, 0.7, 2.0), **header) -> Path:
    image = nib.Nifti1Image(array, np.diag([*zooms, 1.0]))
    image.set_sform(image.affine, code=1)
    for key, value in header.items():
        image.header[key] = value
    nib.save(image, str(path))
    return path


# ----------------------------------------------------------------------------------------- NIfTI
@pytest.mark.parametrize("name", ["huge.nii", "huge.nii.gz"])
def test_nifti_with_huge_dimensions_and_a_tiny_payload_is_refused_before_allocating(tmp_path, name):
    path = _nifti_with(tmp_path / name, np.zeros((2, 2, 2), np.int16))
    data = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(data))
    header.set_data_shape((30000, 30000, 30000))
    raw = header.binaryblock + data[348:]
    path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    with pytest.raises(SpinesimError, match=rf"{name}: field 'dim': the image of 30000 x 30000 x 30000 voxels "
                                            r"\(int16\) would need 50,291\.4 GiB of memory, more than the limit"):
        read_nifti(path)


def test_corrupt_gzip_nifti_is_refused(tmp_path):
    """Before: imported; nibabel stops reading once it has the voxels and never sees the broken checksum."""
    noise = np.random.default_rng(1).integers(-1000, 2000, (48, 48, 48)).astype(np.int16)
    path = write_nifti(Volume.from_spacing(noise, (1.0, 1.0, 1.0)), tmp_path / "ct.nii.gz")
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # the gzip CRC-32 of the decompressed data
    path.write_bytes(bytes(data))
    with pytest.raises(SpinesimError, match=r"ct\.nii\.gz: not a readable NIfTI file \(BadGzipFile: CRC check failed"):
        read_nifti(path)


def test_truncated_nifti_is_refused_before_reading(tmp_path):
    path = write_nifti(_ct(), tmp_path / "ct.nii")
    path.write_bytes(path.read_bytes()[:-10])
    expected = r"ct\.nii: the file holds \d+ bytes but its header declares \d+; .*truncated"
    with pytest.raises(SpinesimError, match=expected):
        read_nifti(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_voxels_are_refused(tmp_path, bad):
    """Decision: refused, not replaced (they poison every ray; no value stands in for them without guessing)."""
    array = np.zeros((3, 3, 3), np.float32)
    array[1, 2, 0] = bad
    expected = r"ct\.nii: 1 voxel\(s\) are NaN or infinite, the first at index \[1, 2, 0\]"
    with pytest.raises(SpinesimError, match=expected):
        read_nifti(_nifti_with(tmp_path / "ct.nii", array))


def test_scaling_beyond_float32_is_refused(tmp_path):
    path = _nifti_with(tmp_path / "ct.nii", np.full((2, 2, 2), 30000, np.int16), scl_slope=1e36, scl_inter=0)
    with pytest.raises(SpinesimError, match=r"ct\.nii: scl_slope 1e\+36 / scl_inter 0 take voxels beyond the float32"):
        read_nifti(path)


@pytest.mark.parametrize("zooms", [(0.7, 1e-5, 2.0), (0.7, 0.7, 1e5)])
def test_nifti_spacing_out_of_range_is_refused(tmp_path, zooms):
    path = _nifti_with(tmp_path / "ct.nii", np.zeros((2, 2, 2), np.int16), zooms=zooms)
    expected = r"ct\.nii: field 'pixdim' / sform: voxel spacing .* is outside 0\.01\.\.1000 mm"
    with pytest.raises(SpinesimError, match=expected):
        read_nifti(path)


def test_tiny_import_spacing_is_refused_with_the_memory_it_would_need(tmp_path):
    """Before: `anatomy import ct.nii --spacing 0.05` of a 300 mm CT tried to allocate a 6000^3 grid."""
    volume = Volume.from_spacing(np.zeros((4, 4, 4), np.int16), (100.0, 100.0, 100.0))
    path = write_nifti(volume, tmp_path / "ct.nii.gz")
    with pytest.raises(SpinesimError, match=r"the resampled image of 6001 x 6001 x 6001 voxels \(float32\) would need "
                                            r"[\d,.]+ GiB of memory, more than the limit of 4\.0 GiB"):
        import_anatomy(path, spacing_mm=0.05)


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=6),
       cut=st.one_of(st.none(), st.integers(0, 2000)), compressed=st.booleans())
def test_fuzz_damaged_nifti_is_read_or_refused_never_crashes(tmp_path_factory, edits, cut, compressed):
    folder = tmp_path_factory.mktemp("nifti")
    clean = write_nifti(_ct(), folder / "clean.nii").read_bytes()
    data = bytearray(clean)
    for offset, value in edits:
        data[offset % len(data)] = value
    if cut is not None:
        data = data[:cut]
    path = folder / ("fuzzed.nii.gz" if compressed else "fuzzed.nii")
    path.write_bytes(gzip.compress(bytes(data)) if compressed else bytes(data))
    try:
        read_nifti(path)
    except SpinesimError as error:
        assert path.name in str(error)


# ------------------------------------------------------------------------------------------ NRRD
_HEADER = ("NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\nsizes: {sizes}\n"
           "space directions: (0.7,0,0) (0,0.7,0) (0,0,2)\nendian: little\nencoding: {encoding}\n\n")


@pytest.mark.parametrize("encoding", ["raw", "gzip"])
def test_nrrd_with_huge_sizes_and_a_tiny_payload_is_refused_before_allocating(tmp_path, encoding):
    path = tmp_path / "ct.nrrd"
    payload = bytes(16) if encoding == "raw" else gzip.compress(bytes(16))
    path.write_bytes(_HEADER.format(sizes="40000 40000 40000", encoding=encoding).encode() + payload)
    with pytest.raises(SpinesimError, match=r"ct\.nrrd: field 'sizes': the image of 40000 x 40000 x 40000 voxels "
                                            r"\(int16\) would need 119,209\.3 GiB"):
        read_nrrd(path)


def test_nrrd_gzip_bomb_is_stopped_at_the_declared_size(tmp_path):
    """Before: pynrrd decompressed everything (here 200 MB from 200 kB) before noticing the size was wrong."""
    path = tmp_path / "ct.nrrd"
    path.write_bytes(_HEADER.format(sizes="4 4 4", encoding="gzip").encode() + gzip.compress(bytes(200_000_000)))
    expected = r"ct\.nrrd: the gzip data holds more than the 128 bytes its header declares"
    with pytest.raises(SpinesimError, match=expected):
        read_nrrd(path)


def test_nrrd_with_a_broken_gzip_checksum_is_refused(tmp_path):
    path = write_nrrd(_ct(), tmp_path / "ct.nrrd")
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(SpinesimError, match=r"ct\.nrrd: cannot read NRRD data \(error: .*incorrect data check"):
        read_nrrd(path)


def test_detached_nrrd_header_is_read(tmp_path):
    """Before: an .nhdr was 'not a recognised anatomy source'."""
    volume = _ct()
    nrrd.write(str(tmp_path / "ct.nhdr"), volume.array, {"space": "left-posterior-superior", "encoding": "gzip",
               "space directions": volume.affine[:3, :3].T, "space origin": volume.origin}, detached_header=True)
    anatomy = import_anatomy(tmp_path / "ct.nhdr")
    np.testing.assert_array_equal(anatomy.ct.array, volume.array)
    np.testing.assert_allclose(anatomy.ct.affine, volume.affine)


def test_detached_nrrd_data_file_outside_its_folder_is_refused(tmp_path):
    (tmp_path / "secret.raw").write_bytes(bytes(128))
    (tmp_path / "ct").mkdir()
    path = tmp_path / "ct" / "ct.nhdr"
    path.write_text(_HEADER.format(sizes="4 4 4", encoding="raw")[:-1] + "data file: ../secret.raw\n\n")
    expected = r"ct\.nhdr: field 'data file': the data file '\.\./secret\.raw' lies outside"
    with pytest.raises(SpinesimError, match=expected):
        read_nrrd(path)


def test_nrrd_nan_voxels_and_tiny_spacing_are_refused(tmp_path):
    array = np.zeros((3, 3, 3), np.float32)
    array[0, 0, 2] = np.nan
    header = {"space": "left-posterior-superior", "space directions": np.eye(3)}
    nrrd.write(str(tmp_path / "nan.nrrd"), array, header)
    expected = r"nan\.nrrd: 1 voxel\(s\) are NaN or infinite, the first at index \[0, 0, 2\]"
    with pytest.raises(SpinesimError, match=expected):
        read_nrrd(tmp_path / "nan.nrrd")
    tiny = dict(header, **{"space directions": np.eye(3) * 1e-6})
    nrrd.write(str(tmp_path / "tiny.nrrd"), np.zeros((3, 3, 3), np.int16), tiny)
    with pytest.raises(SpinesimError, match=r"tiny\.nrrd: field 'space directions': voxel spacing .* is outside"):
        read_nrrd(tmp_path / "tiny.nrrd")


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=6),
       cut=st.one_of(st.none(), st.integers(0, 400)), compressed=st.booleans())
def test_fuzz_damaged_nrrd_is_read_or_refused_never_crashes(tmp_path_factory, edits, cut, compressed):
    folder = tmp_path_factory.mktemp("nrrd")
    data = bytearray(write_nrrd(_ct(), folder / "clean.nrrd", compression_level=int(compressed)).read_bytes())
    for offset, value in edits:
        data[offset % len(data)] = value
    if cut is not None:
        data = data[:cut]
    path = folder / "fuzzed.nrrd"
    path.write_bytes(bytes(data))
    try:
        read_nrrd(path)
    except SpinesimError as error:
        assert "fuzzed.nrrd" in str(error)


# ---------------------------------------------------------------------------------------- meshes
def test_tiny_mesh_spacing_is_refused_with_the_memory_it_would_need(tmp_path):
    trimesh.creation.box(extents=(300.0, 300.0, 300.0)).export(str(tmp_path / "L4.stl"))
    with pytest.raises(SpinesimError, match=r"a 0\.05 mm grid over the meshes .* would have 6401 x 6401 x 6401 voxels, "
                                            r"more than the limit of 300,000,000 \(about [\d,.]+ GiB of memory\)"):
        mesh_anatomy(tmp_path, spacing_mm=0.05)


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 255)), min_size=1, max_size=6),
       cut=st.one_of(st.none(), st.integers(0, 3000)), suffix=st.sampled_from([".stl", ".ply", ".obj"]))
@example(edits=[(40, 10)], cut=None, suffix=".obj")  # a line break in a vertex line: vertices of one coordinate
def test_fuzz_damaged_mesh_is_read_or_refused_never_crashes(tmp_path_factory, edits, cut, suffix):
    folder = tmp_path_factory.mktemp("mesh")
    exported = trimesh.creation.box(extents=(8.0, 8.0, 8.0)).export(file_type=suffix[1:])
    data = bytearray(exported.encode() if isinstance(exported, str) else exported)
    for offset, value in edits:
        data[offset % len(data)] = value
    if cut is not None:
        data = data[:cut]
    path = folder / f"fuzzed{suffix}"
    path.write_bytes(bytes(data))
    try:
        mesh_anatomy(path, spacing_mm=2.0, margin_mm=2.0)
    except SpinesimError as error:
        assert "fuzzed" in str(error) or "grid over the meshes" in str(error)


@pytest.mark.parametrize("name", ["ct.nii", "ct.nii.gz"])
def test_an_infinite_slope_in_the_header_is_refused(tmp_path, name):
    """NIfTI applies any non-zero scl_slope; nibabel reads an infinite one as unset, and the raw voxels were
    imported (an infinite intercept nibabel refuses itself)."""
    path = _nifti_with(tmp_path / name, np.full((2, 2, 2), 30, np.int16))
    raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(raw))
    raw = raw[:112] + np.array(np.inf, header.endianness + "f4").tobytes() + raw[116:]  # scl_slope
    path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    with pytest.raises(SpinesimError, match=rf"{name.replace('.', '[.]')}: scl_slope inf / scl_inter .* are not finite"):
        read_nifti(path)


def test_a_damaged_header_is_refused_by_name_and_nibabel_prints_nothing(tmp_path, capfd):
    """nibabel repairs a header whose size field is not 348 and prints "sizeof_hdr should be 348; set sizeof_hdr to
    348" in its own words, naming no file, and the volume was imported (ops7's fuzz campaign saw it reach the
    terminal): a damaged header is refused with the file's name, and nothing of nibabel's is printed."""
    path = _nifti_with(tmp_path / "ct.nii", np.zeros((2, 2, 2), np.int16))
    raw = bytearray(path.read_bytes())
    raw[0:4] = (349).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(SpinesimError, match=r"ct\.nii: not a readable NIfTI file \(HeaderDataError: sizeof_hdr should "
                                            r"be 348\)"):
        read_nifti(path)
    assert "sizeof_hdr" not in capfd.readouterr().err
