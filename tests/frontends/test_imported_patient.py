"""A CT brought with its vertebra labels (issue 22): imported with unknown ids kept, landmarks measured
at import, so that views by level work on it as on the built-in patient."""

import numpy as np
import pytest
from PIL import Image

from anatomy_models.labelmaps import VERSE_LEVELS
from anatomy_models.nifti import write_nifti
from anatomy_models.store import load_anatomy
from frontends.cli import main

VERSE_ID = {name: verse_id for verse_id, name in VERSE_LEVELS.items()}


@pytest.fixture(scope="module")
def ct_and_vertebra_labels(small_spine, tmp_path_factory):
    """The built-in patient's CT (2 mm) and a VerSe label map of its whole vertebrae, as NIfTI files."""
    folder = tmp_path_factory.mktemp("byo")
    labels = np.zeros(small_spine.ct.shape, np.uint8)
    for level in ("L1", "L2", "L3", "L4", "L5"):
        labels[small_spine.mask(level)] = VERSE_ID[level]
    labels[small_spine.mask("S1")] = VERSE_ID["sacrum"]
    ct_path = write_nifti(small_spine.ct, folder / "ct.nii.gz")
    return ct_path, labels, folder


def test_fluoro_by_level_works_on_an_imported_ct(ct_and_vertebra_labels, small_spine, tmp_path, capsys):
    ct_path, labels, folder = ct_and_vertebra_labels
    labels_path = write_nifti(small_spine.ct.with_array(labels), folder / "verse.nii.gz")
    assert main(["anatomy", "import", str(ct_path), "--labels", str(labels_path), "--label-format", "verse",
                 "-o", "byo-ct"]) == 0
    assert "landmarks measured from the vertebra labels" in capsys.readouterr().out
    imported = load_anatomy("byo-ct")
    assert "L1.body.center" in imported.landmarks and "L4-L5.interlaminar_window.center" in imported.landmarks
    assert "approximate" in imported.metadata["derived_landmarks"]
    for view in ("ap", "oblique", "lateral"):
        output = tmp_path / f"{view}.png"
        assert main(["fluoro", "byo-ct", "--level", "L1", "--view", view, "--pixels", "64", "-o", str(output)]) == 0
        assert np.asarray(Image.open(output)).shape == (64, 64)
    assert main(["anatomy", "info", "byo-ct"]) == 0
    assert "approximate, measured from the vertebra labels" in capsys.readouterr().out


def test_an_unknown_id_is_kept_and_listed_by_info(ct_and_vertebra_labels, small_spine, capsys):
    ct_path, labels, folder = ct_and_vertebra_labels
    labels = labels.copy()
    labels[small_spine.mask("muscle.psoas.left")] = 99  # not a VerSe id
    labels_path = write_nifti(small_spine.ct.with_array(labels), folder / "verse_99.nii.gz")
    assert main(["anatomy", "import", str(ct_path), "--labels", str(labels_path), "--label-format", "verse",
                 "-o", "byo-unknown"]) == 0
    printed = capsys.readouterr().out
    assert "warning:" in printed and "label id(s) 99 are not in the VerSe table" in printed
    imported = load_anatomy("byo-unknown")
    assert imported.label_table.by_name("label_99").tissue == "soft_tissue"  # psoas: soft-tissue CT numbers
    np.testing.assert_array_equal(imported.mask("label_99"), small_spine.mask("muscle.psoas.left"))
    assert main(["anatomy", "info", "byo-unknown"]) == 0
    info = capsys.readouterr().out
    assert "not recognised" in info and "label_99" in info and "L4" in info

