"""Burned In Annotation on export: declared NO only for pixels spinesim made itself (or a source that said
NO); unknown otherwise, which the series expresses by leaving the attribute out, and the CLI warns."""

import numpy as np
import pydicom
import pytest

from anatomy_models.anatomy import Anatomy
from anatomy_models.dicom import burned_in_annotation, write_dicom_series
from anatomy_models.store import save_anatomy
from anatomy_models.volume import Volume
from frontends.cli import main


def tiny(source: str, **facts) -> Anatomy:
    ct = Volume.from_spacing(np.arange(24, dtype=np.int16).reshape(2, 3, 4), (0.5, 0.5, 2.0))
    return Anatomy(ct=ct, metadata={"source": source, **facts})


@pytest.mark.parametrize(("source", "facts", "declared"), [
    ("generated:spine", {}, "NO"),
    ("seg.nrrd", {}, "NO"),
    ("totalsegmentator", {}, "NO"),
    ("meshes", {}, "NO"),
    ("DICOM", {"burned_in_annotation": "NO"}, "NO"),
    ("DICOM", {}, None),
    ("nifti", {}, None),
    ("nrrd", {}, None),
])
def test_the_series_declares_no_only_when_known(tmp_path, source, facts, declared):
    assert burned_in_annotation(tiny(source, **facts).metadata) == declared
    files = write_dicom_series(tiny(source, **facts), tmp_path / "series")
    dataset = pydicom.dcmread(files[0])
    assert dataset.get("BurnedInAnnotation") == declared


def test_the_export_command_warns_when_it_is_unknown(tmp_path, capsys):
    save_anatomy(tiny("nifti"), "burned-unknown")
    assert main(["anatomy", "export", "burned-unknown", "--format", "dicom", "-o", str(tmp_path / "unknown")]) == 0
    output = " ".join(capsys.readouterr().out.split())
    assert "warning: the source does not say whether its pixels show burned-in text" in output
    assert "Burned In Annotation (0028,0301) out, which means unknown" in output
    save_anatomy(tiny("generated:spine"), "burned-no")
    assert main(["anatomy", "export", "burned-no", "--format", "dicom", "-o", str(tmp_path / "no")]) == 0
    assert "warning" not in capsys.readouterr().out
