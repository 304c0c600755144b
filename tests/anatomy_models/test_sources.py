"""The import entry point across formats: what it keeps, and what it never keeps."""

import numpy as np
import pytest

from anatomy_models.dicom import read_dicom_series
from anatomy_models.errors import SpinesimError
from anatomy_models.exports import export_anatomy
from anatomy_models.nifti import write_nifti
from anatomy_models.sources import import_anatomy
from anatomy_models.volume import Volume


def small_ct() -> Volume:
    array = np.random.default_rng(3).integers(-1000, 1500, (6, 7, 5)).astype(np.int16)
    return Volume.from_spacing(array, (0.8, 0.8, 2.0), origin=(-2.4, -2.4, 10.0))


def test_file_names_never_reach_metadata(tmp_path):
    path = write_nifti(small_ct(), tmp_path / "Doe_John_1961.nii.gz")
    anatomy = import_anatomy(path)
    assert anatomy.metadata["source"] == "nifti"
    assert "Doe" not in repr(anatomy.metadata) and "1961" not in repr(anatomy.metadata)


def test_dicom_export_of_an_imported_volume_reads_back(tmp_path):
    ct = small_ct()
    anatomy = import_anatomy(write_nifti(ct, tmp_path / "ct.nii.gz"))
    files = export_anatomy(anatomy, "dicom", tmp_path / "series")
    assert len(files) == ct.shape[2]
    back = read_dicom_series(tmp_path / "series").volume
    np.testing.assert_array_equal(back.array, ct.array)
    np.testing.assert_allclose(back.affine, ct.affine, atol=1e-3)


def test_series_option_is_for_dicom_only(tmp_path):
    path = write_nifti(small_ct(), tmp_path / "ct.nii.gz")
    with pytest.raises(SpinesimError, match="--series applies to DICOM"):
        import_anatomy(path, series_uid="1.2.3")
