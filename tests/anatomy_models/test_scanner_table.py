"""The CT's table is taken out of an imported CT (the patient lies prone on the fluoroscopy table), the
body with its gas and every labelled voxel is kept, and a scan of separate objects is left as it is."""

from pathlib import Path

import numpy as np

from anatomy_models.nifti import read_nifti, write_nifti
from anatomy_models.scanner_table import AIR_HU, without_scanner_table
from anatomy_models.sources import import_anatomy
from anatomy_models.volume import Volume

REAL_CT = Path(__file__).parents[1] / "data" / "totalsegmentator_lumbar"


def _supine_phantom() -> tuple[np.ndarray, np.ndarray]:
    """An elliptic body (2 mm voxels, LPS; +y posterior) with bowel gas and a labelled 'vertebra', lying
    on a table: a 10 mm slab behind the back, a pad bridging them (a 4 mm strip of soft tissue)."""
    i, j = np.meshgrid(np.arange(80), np.arange(70), indexing="ij")
    body = ((i - 40) / 34.0) ** 2 + ((j - 30) / 24.0) ** 2 <= 1.0
    hu = np.full((80, 70, 12), AIR_HU, np.int16)
    hu[body] = 40
    hu[30:34, 20:24] = -950                      # gas in a loop of bowel
    hu[36:44, 40:48] = 700                       # the labelled bone
    hu[5:75, 58:63] = 300                        # the table, 2 voxels behind the back's skin (j = 54)
    hu[38:42, 54:58] = 20                        # a pad the back rests on, 8 mm wide: a thin bridge
    labels = np.zeros(hu.shape, np.uint8)
    labels[36:44, 40:48] = 1
    return hu, labels


def test_the_table_goes_and_the_body_its_gas_and_labels_stay(tmp_path):
    hu, labels = _supine_phantom()
    ct = Volume.from_spacing(hu, (2.0, 2.0, 2.0))
    cleaned, removed = without_scanner_table(ct, ct.with_array(labels))
    # The table and the pad's half next to it (its half at the skin is grown back with the body's outline).
    assert 70 * 5 * 12 < removed <= 70 * 5 * 12 + 4 * 4 * 12
    assert (cleaned.array[:, 57:63] == AIR_HU).all()
    body = hu > -400
    body[:, 55:] = False
    np.testing.assert_array_equal(cleaned.array[body], hu[body])
    assert (cleaned.array[30:34, 20:24] == -950).all()  # gas inside the body is the body's

    # Through the importer (NIfTI with a label map), with a note that says what was done.
    write_nifti(ct, tmp_path / "ct.nii.gz")
    write_nifti(ct.with_array(labels), tmp_path / "labels.nii.gz")
    imported = import_anatomy(tmp_path / "ct.nii.gz", labels=tmp_path / "labels.nii.gz",
                              label_format="totalsegmentator:v2")
    assert (imported.ct.array[:, 58:63] == AIR_HU).all()
    assert any("the CT's table" in note for note in imported.metadata["import_notes"])


def test_a_scan_of_separate_objects_is_left_as_it_is():
    hu = np.full((40, 20, 6), AIR_HU, np.int16)
    hu[2:18, 5:15] = 40
    hu[22:38, 5:15] = 40  # two equal blocks: not a patient on a table
    ct = Volume.from_spacing(hu, (2.0, 2.0, 2.0))
    cleaned, removed = without_scanner_table(ct)
    assert removed == 0 and cleaned is ct


def test_the_real_ct_loses_only_what_lies_behind_the_back():
    ct = read_nifti(REAL_CT / "ct_lumbar.nii.gz")
    labels = read_nifti(REAL_CT / "totalseg_lumbar.nii.gz")
    cleaned, removed = without_scanner_table(ct, labels)
    changed = np.argwhere((cleaned.array != ct.array) & (ct.array > -400))
    assert removed == len(changed) > 1000
    # Supine on the CT's table: what went lies behind the spine (LPS +y posterior), the table's top
    # curving up beside the flanks (looked at: ct_axial_removed_scanner_table_in_red.png in the report).
    spine_y = ct.voxel_to_world(np.argwhere(labels.array > 0))[:, 1]
    assert ct.voxel_to_world(changed)[:, 1].min() > spine_y.mean() + 20.0
    np.testing.assert_array_equal(cleaned.array[labels.array > 0], ct.array[labels.array > 0])
