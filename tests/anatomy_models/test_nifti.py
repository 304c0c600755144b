import gzip
import io
import json

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

from anatomy_models.errors import SpinesimError
from anatomy_models.nifti import RAS_TO_LPS, nifti_label_names, nifti_orientation_source, read_nifti, write_nifti
from anatomy_models.sources import import_anatomy
from anatomy_models.volume import Volume

RNG = np.random.default_rng(7)


def ct_volume(direction: np.ndarray) -> Volume:
    array = RNG.integers(-1000, 2000, (9, 8, 7)).astype(np.int16)
    return Volume.from_spacing(array, (0.7, 0.8, 2.5), origin=(-120.5, 30.25, 400.0), direction=direction)


OBLIQUE = Rotation.from_euler("zyx", [20, -10, 5], degrees=True).as_matrix()
FLIPPED = np.diag([1.0, -1.0, 1.0]) @ Rotation.from_euler("x", 12, degrees=True).as_matrix()  # det < 0
DIRECTIONS = {"axial": np.eye(3), "oblique": OBLIQUE, "flipped": FLIPPED}


def sitk_geometry(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """SimpleITK's voxel -> LPS affine and its array indexed [i, j, k]."""
    affine = np.eye(4)
    affine[:3, :3] = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return affine, sitk.GetArrayFromImage(image).transpose(2, 1, 0)


@pytest.mark.parametrize("kind", DIRECTIONS)
def test_round_trip_and_simpleitk_reads_our_files(tmp_path, kind):
    volume = ct_volume(DIRECTIONS[kind])
    path = write_nifti(volume, tmp_path / "ct.nii.gz")
    back = read_nifti(path)
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-3)
    affine, array = sitk_geometry(sitk.ReadImage(str(path)))  # SimpleITK reports LPS
    np.testing.assert_array_equal(array, volume.array)
    np.testing.assert_allclose(affine, volume.affine, atol=1e-3)


@pytest.mark.parametrize("kind", DIRECTIONS)
def test_files_written_by_simpleitk_read_with_its_geometry(tmp_path, kind):
    volume = ct_volume(DIRECTIONS[kind])
    image = sitk.GetImageFromArray(volume.array.transpose(2, 1, 0))
    image.SetSpacing(volume.spacing.tolist())
    image.SetOrigin(volume.origin.tolist())
    image.SetDirection(volume.direction.ravel().tolist())
    sitk.WriteImage(image, str(tmp_path / "itk.nii"))
    ours = read_nifti(tmp_path / "itk.nii")
    affine, array = sitk_geometry(sitk.ReadImage(str(tmp_path / "itk.nii")))
    np.testing.assert_array_equal(ours.array, array)
    np.testing.assert_allclose(ours.affine, affine, atol=1e-3)
    np.testing.assert_allclose(ours.affine, volume.affine, atol=1e-3)


def test_ras_is_converted_to_lps(tmp_path):
    image = nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.diag([1.0, 2.0, 3.0, 1.0]))  # i -> +R, j -> +A
    image.set_sform(image.affine, code=1)
    nib.save(image, str(tmp_path / "ras.nii.gz"))
    volume = read_nifti(tmp_path / "ras.nii.gz")
    np.testing.assert_allclose(volume.voxel_to_world([1, 1, 1]), [-1.0, -2.0, 3.0])
    assert volume.orientation_code == "RAS"


def test_sform_wins_when_coded_else_qform(tmp_path):
    sform = np.diag([1.0, 1.0, 1.0, 1.0])
    qform = np.diag([2.0, 2.0, 2.0, 1.0])
    image = nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), None)
    image.set_sform(sform, code=2)
    image.set_qform(qform, code=1)
    nib.save(image, str(tmp_path / "both.nii"))
    np.testing.assert_allclose(read_nifti(tmp_path / "both.nii").affine, RAS_TO_LPS @ sform)
    assert nifti_orientation_source(tmp_path / "both.nii") == "sform (aligned)"
    image.set_sform(sform, code=0)
    nib.save(image, str(tmp_path / "qform.nii"))
    np.testing.assert_allclose(read_nifti(tmp_path / "qform.nii").affine, RAS_TO_LPS @ qform)
    assert nifti_orientation_source(tmp_path / "qform.nii") == "qform (scanner)"


def patch_header(path, **fields):
    """Set raw header fields of an uncompressed .nii file (nibabel's writer would recompute them)."""
    data = path.read_bytes()
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(data))
    for key, value in fields.items():
        header[key] = value
    path.write_bytes(header.binaryblock + data[len(header.binaryblock):])


def test_no_orientation_and_nan_affine_are_refused(tmp_path):
    image = nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), None)
    image.set_sform(np.eye(4), code=0)
    image.set_qform(np.eye(4), code=0)
    nib.save(image, str(tmp_path / "bare.nii"))
    with pytest.raises(SpinesimError, match=r"bare\.nii: no orientation: sform_code and qform_code are both 0"):
        read_nifti(tmp_path / "bare.nii")
    # nibabel refuses to write a NaN affine, so patch the header of a valid file.
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4)), str(tmp_path / "nan.nii"))
    patch_header(tmp_path / "nan.nii", srow_y=[0.0, np.nan, 0.0, 0.0], pixdim=[1, 1, np.nan, 1, 1, 1, 1, 1],
                 sform_code=1, qform_code=1)
    with pytest.raises(SpinesimError, match=r"nan\.nii: neither coded affine is usable .*NaN"):
        read_nifti(tmp_path / "nan.nii")


def test_scaling_is_applied_and_integers_stay_integers(tmp_path):
    raw = np.array([0, 1000, 2000, 3000] * 2, np.int16).reshape(2, 2, 2)
    nib.save(nib.Nifti1Image(raw, np.eye(4)), str(tmp_path / "hu.nii"))
    patch_header(tmp_path / "hu.nii", scl_slope=1.0, scl_inter=-1024.0)
    hu = read_nifti(tmp_path / "hu.nii")
    assert hu.array.dtype == np.int16
    np.testing.assert_array_equal(hu.array, raw.astype(np.int32) - 1024)
    patch_header(tmp_path / "hu.nii", scl_slope=0.5, scl_inter=10.0)
    half = read_nifti(tmp_path / "hu.nii")
    assert half.array.dtype == np.float32
    np.testing.assert_allclose(half.array, raw * 0.5 + 10.0)


def test_singleton_fourth_dimension_is_accepted_and_real_4d_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.ones((3, 4, 5, 1), np.int16), np.eye(4)), str(tmp_path / "one.nii.gz"))
    assert read_nifti(tmp_path / "one.nii.gz").shape == (3, 4, 5)
    nib.save(nib.Nifti1Image(np.ones((3, 4, 5, 2), np.int16), np.eye(4)), str(tmp_path / "two.nii.gz"))
    with pytest.raises(SpinesimError, match=r"two\.nii\.gz: a 4D image of shape \(3, 4, 5, 2\) holds 2 volumes"):
        read_nifti(tmp_path / "two.nii.gz")


def test_nifti2_reads(tmp_path):
    image = nib.Nifti2Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.diag([2.0, 2.0, 2.0, 1.0]))
    nib.save(image, str(tmp_path / "two.nii"))
    volume = read_nifti(tmp_path / "two.nii")
    np.testing.assert_array_equal(volume.array, np.arange(24).reshape(2, 3, 4))
    np.testing.assert_allclose(volume.spacing, [2, 2, 2])


def test_truncated_and_foreign_files_name_the_file(tmp_path):
    path = write_nifti(ct_volume(np.eye(3)), tmp_path / "ct.nii.gz")
    data = path.read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(SpinesimError, match=r"cut\.nii\.gz: .*truncated") as caught:
        read_nifti(tmp_path / "cut.nii.gz")
    assert "\n" not in str(caught.value)
    (tmp_path / "text.nii").write_text("not an image\n")
    with pytest.raises(SpinesimError, match=r"text\.nii: not a readable NIfTI file"):
        read_nifti(tmp_path / "text.nii")
    (tmp_path / "gz.nii.gz").write_bytes(gzip.compress(b"\x00" * 10))
    with pytest.raises(SpinesimError, match=r"gz\.nii\.gz"):
        read_nifti(tmp_path / "gz.nii.gz")


def test_totalsegmentator_header_label_table_is_read(tmp_path):
    # As TotalSegmentator's nifti_ext_header.add_label_map_to_nifti writes it (extension code 0).
    xml = ('<?xml version="1.0" encoding="UTF-8"?> <CaretExtension>  <Date><![CDATA[2013-07-14T05:45:09]]></Date>'
           '   <VolumeInformation Index="0">   <LabelTable>\n'
           '<Label Key="28" Red="1.0" Green="0.0" Blue="0.0" Alpha="1"><![CDATA[vertebrae_L4]]></Label>\n'
           '<Label Key="79" Red="0.0" Green="1.0" Blue="0.0" Alpha="1"><![CDATA[spinal_cord]]></Label>\n'
           '\n  </LabelTable>  <StudyMetaDataLinkSet>  </StudyMetaDataLinkSet>  <VolumeType><![CDATA[Label]]>'
           '</VolumeType>   </VolumeInformation></CaretExtension>\n              ')
    image = nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), np.eye(4))
    image.header.extensions.append(nib.nifti1.Nifti1Extension(0, xml.encode("utf-8")))
    nib.save(image, str(tmp_path / "ml.nii.gz"))
    assert nifti_label_names(tmp_path / "ml.nii.gz") == {28: "vertebrae_L4", 79: "spinal_cord"}
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), np.eye(4)), str(tmp_path / "plain.nii.gz"))
    assert nifti_label_names(tmp_path / "plain.nii.gz") is None


def test_free_text_fields_do_not_reach_metadata(tmp_path):
    image = nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4))
    image.header["descrip"] = b"Doe^John 1960-01-01"
    image.header["aux_file"] = b"Doe_John"
    image.header["intent_name"] = b"Doe"
    nib.save(image, str(tmp_path / "ct.nii.gz"))
    anatomy = import_anatomy(tmp_path / "ct.nii.gz")
    assert "Doe" not in json.dumps(anatomy.metadata)
    written = write_nifti(anatomy.ct, tmp_path / "out.nii.gz")
    header = nib.load(str(written)).header
    assert header["descrip"].tobytes().strip(b"\x00") == b"" and header["aux_file"].tobytes().strip(b"\x00") == b""
