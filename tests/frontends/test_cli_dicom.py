import numpy as np
from pydicom.uid import generate_uid

from anatomy_models.dicom import read_dicom_series
from anatomy_models.store import load_anatomy
from frontends.cli import main
from tests.anatomy_models.dicom_series import axial_positions, stored_ramp, write_stack


def test_info_import_export_of_a_dicom_folder(tmp_path, capsys):
    folder = tmp_path / "exam"
    bone, soft = generate_uid(), generate_uid()
    write_stack(folder / "1", stored_ramp(3), axial_positions(3), series_uid=bone, SeriesDescription="bone kernel")
    kept = [0, 1, 3]
    write_stack(folder / "2", stored_ramp(4)[kept], [axial_positions(4)[k] for k in kept], series_uid=soft,
                SeriesDescription="soft kernel")
    (folder / "readme.txt").write_text("exported from PACS")

    assert main(["anatomy", "info", str(folder)]) == 0
    listing = capsys.readouterr().out
    assert "DICOM (2 series)" in listing and "'bone kernel' 3 slice(s)" in listing and "uneven" in listing
    assert bone in listing.replace("\n", "").replace("│", "").replace(" ", "")  # the whole UID, maybe folded

    assert main(["anatomy", "import", str(folder), "-o", "exam"]) == 1
    error = capsys.readouterr().err
    assert error.strip().count("\n") == 0 and "2 CT series found" in error and "--series" in error

    assert main(["anatomy", "import", str(folder), "--series", soft, "-o", "exam"]) == 0
    output = capsys.readouterr().out
    assert "warning: 1 slice(s) missing" in output.replace("\n", " ")
    stored = load_anatomy("exam")
    assert stored.ct.shape == (5, 6, 4) and stored.metadata["import_warnings"]

    assert main(["anatomy", "export", "exam", "--format", "dicom", "-o", str(tmp_path / "out")]) == 0
    back = read_dicom_series(tmp_path / "out").volume
    np.testing.assert_array_equal(back.array, stored.ct.array)
    np.testing.assert_allclose(back.affine, stored.ct.affine, atol=1e-3)


def test_empty_and_non_dicom_folders_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["anatomy", "import", str(tmp_path / "empty"), "-o", "x"]) == 1
    assert "empty: the folder is empty" in capsys.readouterr().err
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("hello")
    assert main(["anatomy", "info", str(tmp_path / "text")]) == 1
    assert "not a recognised anatomy source" in capsys.readouterr().err


def test_pydicom_warnings_become_our_messages(tmp_path, capsys):
    """Header values that break the standard's rules (too long for their kind) do not let pydicom's own
    warnings through `anatomy info` or `anatomy import`; the import says it once, in our words, and
    quotes no value (issue 22)."""
    import warnings

    folder = tmp_path / "exam"
    with warnings.catch_warnings():  # pydicom warns while the test writes the values
        warnings.simplefilter("ignore")
        write_stack(folder, stored_ramp(3), axial_positions(3), PatientName="DOE^JANE" * 10,
                    SeriesDescription="x" * 100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["anatomy", "info", str(folder)]) == 0
        info = capsys.readouterr().out
        assert main(["anatomy", "import", str(folder), "-o", "long-values"]) == 0
        imported = capsys.readouterr().out
    assert [str(w.message) for w in caught] == []
    assert "break the DICOM standard" in info.replace("\n", " ").replace("│", "")
    assert "warning:" in imported and "break the DICOM standard" in imported
    assert "DOE" not in info + imported
    assert any("break the DICOM standard" in w for w in load_anatomy("long-values").metadata["import_warnings"])


def test_import_readable_only_takes_the_readable_slices_and_warns(tmp_path, capsys):
    folder = tmp_path / "exam"
    slices = write_stack(folder, stored_ramp(3), axial_positions(3))
    (folder / "cut.dcm").write_bytes(slices[1].read_bytes()[:400])  # a copy cut short in its header
    assert main(["anatomy", "import", str(folder), "-o", "exam"]) == 1
    assert "cut.dcm: a CT image file without series UID or pixel data" in capsys.readouterr().err
    assert main(["anatomy", "import", str(folder), "-o", "exam", "--readable-only"]) == 0
    assert "warning: skipped a damaged DICOM file" in capsys.readouterr().out.replace("\n", " ")
    assert load_anatomy("exam").ct.shape[2] == 3
    assert main(["anatomy", "import", str(slices[0]), "-o", "one", "--readable-only"]) == 0
    nifti = tmp_path / "ct.nii.gz"
    assert main(["anatomy", "export", "exam", "--format", "nifti", "-o", str(nifti)]) == 0
    capsys.readouterr()
    assert main(["anatomy", "import", str(nifti), "-o", "again", "--readable-only"]) == 1
    assert "--readable-only applies to DICOM folders only" in capsys.readouterr().err
