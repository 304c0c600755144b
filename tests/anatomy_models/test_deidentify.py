"""Nothing patient-identifying reaches an anatomy, the store, the CLI's output or an exported series."""

import json

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from anatomy_models.deidentify import BASIC_PROFILE, identifying_elements, identifying_strings, safe_facts, scrub_text
from anatomy_models.dicom import read_dicom_series
from anatomy_models.store import anatomy_directory, stored_anatomy_names
from frontends.cli import main
from tests.anatomy_models.dicom_series import axial_positions, stored_ramp, write_stack

STUDY_UID, SERIES_UID = generate_uid(), generate_uid()
PHI = {
    "PatientName": "Zylberstein^Johnathan^Quincy",
    "PatientID": "MRN7734921",
    "PatientBirthDate": "19610523",
    "PatientAddress": "42 Wallaby Way, Sydney",
    "PatientTelephoneNumbers": "555-0199-321",
    "OtherPatientIDs": "ALT-99321",
    "PatientAge": "062Y",
    "PatientWeight": "81.5",
    "EthnicGroup": "Martian",
    "InstitutionName": "St Elsewhere General",
    "InstitutionAddress": "1 Hospital Road, Springfield",
    "InstitutionalDepartmentName": "Radiology West wing",
    "ReferringPhysicianName": "Housemann^Gregor",
    "PerformingPhysicianName": "Quintaro^Michaela",
    "OperatorsName": "Techwright^Tina",
    "RequestingPhysician": "Wilsonby^James",
    "AccessionNumber": "ACC55501",
    "StudyID": "STUDY9876",
    "StudyDate": "20240117",
    "SeriesDate": "20240117",
    "AcquisitionDate": "20240118",
    "ContentDate": "20240119",
    "StudyTime": "101530",
    "StationName": "CTROOM7",
    "DeviceSerialNumber": "SN-448812",
    "ImageComments": "Patient Zylberstein was called back",
    "StudyDescription": "CT lumbar spine for Zylberstein",
    "SeriesDescription": "Johnathan Zylberstein L-spine 20240117 MRN7734921",
    "ProtocolName": "Zylberstein protocol",
    "BurnedInAnnotation": "NO",
}
SECRETS = [value for key, value in PHI.items() if key not in ("BurnedInAnnotation",)]
SECRETS += ["Zylberstein", "Johnathan", "Quincy", "PRIVATE-NOTE-Zq", STUDY_UID, SERIES_UID]


@pytest.fixture(scope="module")
def phi_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scan") / "exam"  # the folder name itself is neutral: the user chose it
    paths = write_stack(folder, stored_ramp(4, rows=8, columns=8), axial_positions(4), series_uid=SERIES_UID,
                        study_uid=STUDY_UID, Manufacturer="ACME", ManufacturerModelName="Scanner 9000", KVP="120",
                        ContrastBolusAgent="Omnipaque for Zylberstein", **PHI)
    for path in paths:
        ds = pydicom.dcmread(path)
        block = ds.private_block(0x0009, "ACME_PRIVATE", create=True)
        block.add_new(0x01, "LO", "PRIVATE-NOTE-Zq")
        ds.save_as(path)
    return folder


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret.lower() in text.lower()]


def test_anatomy_metadata_keeps_only_safe_facts(phi_folder):
    ct = read_dicom_series(phi_folder)
    text = json.dumps(ct.metadata)
    assert _leaks(text) == []
    assert ct.metadata["modality"] == "CT" and ct.metadata["kvp"] == 120.0 and ct.metadata["contrast"] is True
    assert ct.metadata["manufacturer_model"] == "Scanner 9000"
    assert "L-spine" in ct.metadata["series_description"]


def test_cli_output_store_and_dicom_export_carry_no_phi(phi_folder, tmp_path, capsys):
    assert main(["anatomy", "info", str(phi_folder)]) == 0
    info = capsys.readouterr()
    # The listing shows the series' own UID (the user's key for --series); nothing else identifying.
    assert [leak for leak in _leaks(info.out + info.err) if leak != SERIES_UID] == []
    assert main(["anatomy", "import", str(phi_folder), "-o", "phi-test"]) == 0
    assert main(["anatomy", "info", "phi-test"]) == 0
    assert main(["anatomy", "list"]) == 0
    export = tmp_path / "export"
    assert main(["anatomy", "export", "phi-test", "--format", "dicom", "-o", str(export)]) == 0
    outputs = capsys.readouterr()
    assert _leaks(outputs.out + outputs.err) == []

    stored = [p for p in anatomy_directory("phi-test").rglob("*") if p.is_file()]
    assert stored
    for path in stored:
        assert _leaks(path.read_bytes().decode("latin-1")) == [], path

    files = sorted(export.iterdir())
    assert len(files) == 4
    for path in files:
        assert _leaks(path.read_bytes().decode("latin-1")) == [], path
        ds = pydicom.dcmread(path)
        assert identifying_elements(ds, fresh_uids=[ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID,
                                                    ds.FrameOfReferenceUID, ds.file_meta.MediaStorageSOPInstanceUID]) == []
        assert ds.PatientIdentityRemoved == "YES"
        assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == ["113100", "113105"]


def test_the_phi_series_is_flagged_by_the_profile_check(phi_folder):
    ds = pydicom.dcmread(next(phi_folder.iterdir()))
    flagged = set(identifying_elements(ds))
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "InstitutionName", "ReferringPhysicianName",
                    "StudyDate", "AccessionNumber", "StudyInstanceUID", "SOPInstanceUID", "ImageComments",
                    "StationName", "OtherPatientIDs", "ProtocolName"):
        assert keyword in flagged, keyword
    assert "(0009,1001)" in flagged  # the private element


def test_scrub_text_masks_names_ids_and_dates():
    identifying = identifying_strings(_phi_dataset())
    cleaned = scrub_text(PHI["SeriesDescription"], identifying)
    assert _leaks(cleaned) == [] and "L-spine" in cleaned
    assert scrub_text("Li spine SPLINE", {"Li"}) == "*** spine SPLINE"
    assert scrub_text("x" * 100) == "x" * 64


def _phi_dataset() -> Dataset:
    ds = Dataset()
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    return ds


def test_safe_facts_drop_everything_else():
    facts = safe_facts(_phi_dataset())
    assert set(facts) <= {"modality", "manufacturer", "manufacturer_model", "patient_position", "body_part",
                          "convolution_kernel", "kvp", "slice_thickness_mm", "contrast", "series_description"}
    assert _leaks(json.dumps(facts)) == []


def test_profile_table_covers_the_patient_module():
    from pydicom.datadict import tag_for_keyword

    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientAddress", "OtherPatientIDsSequence",
                    "InstitutionName", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert tag_for_keyword(keyword) in BASIC_PROFILE, keyword
    assert BASIC_PROFILE[tag_for_keyword("PatientName")] == "Z"
    assert BASIC_PROFILE[tag_for_keyword("StudyInstanceUID")] == "U"
    assert BASIC_PROFILE[tag_for_keyword("InstitutionName")] == "X"


def test_burned_in_annotation_never_gets_in(tmp_path, capsys):
    write_stack(tmp_path / "burned", stored_ramp(2), axial_positions(2), BurnedInAnnotation="YES")
    assert main(["anatomy", "import", str(tmp_path / "burned"), "-o", "burned"]) == 1
    assert "Burned In Annotation = YES" in capsys.readouterr().err
    assert "burned" not in stored_anatomy_names()
