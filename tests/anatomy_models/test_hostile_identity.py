"""A patient's name in folder and file names (and DICOM headers) never reaches a stored anatomy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from anatomy_models.nifti import write_nifti
from anatomy_models.sources import import_anatomy
from anatomy_models.volume import Volume
from tests.anatomy_models.dicom_series import axial_positions, stored_ramp, write_stack

SENTINEL = "DOE^JANE-SENTINEL"


def _mesh_source(folder: Path) -> Path:
    folder.mkdir(parents=True)
    trimesh.creation.box(extents=(20.0, 20.0, 20.0)).export(str(folder / f"{SENTINEL}.stl"))
    trimesh.creation.icosphere(radius=6.0).apply_translation([30.0, 0, 0]).export(str(folder / f"{SENTINEL} L4.stl"))
    trimesh.creation.icosphere(radius=5.0).apply_translation([0, 30.0, 0]).export(str(folder / "L5.stl"))
    return folder


def _nifti_source(folder: Path) -> Path:
    folder.mkdir(parents=True)
    volume = Volume.from_spacing(np.full((6, 5, 4), -1000, np.int16), (1.0, 1.0, 2.0))
    return write_nifti(volume, folder / f"{SENTINEL}.nii.gz")


def _dicom_source(folder: Path) -> Path:
    write_stack(folder / SENTINEL, stored_ramp(3), axial_positions(3), names=[f"{SENTINEL}_{k}.dcm" for k in range(3)],
                PatientName=SENTINEL, PatientID=SENTINEL, SeriesDescription=f"spine {SENTINEL}")
    return folder


def _totalsegmentator_source(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for index, stem in enumerate(("vertebrae_L4", "vertebrae_L5", SENTINEL)):
        mask = np.zeros((6, 5, 4), np.uint8)
        mask[index, :, :] = 1
        write_nifti(Volume.from_spacing(mask, (1.0, 1.0, 2.0)), folder / f"{stem}.nii.gz", label_map=True)
    return folder


@pytest.mark.parametrize("make_source", [_mesh_source, _nifti_source, _dicom_source, _totalsegmentator_source])
def test_sentinel_patient_name_appears_nowhere_in_the_stored_anatomy(tmp_path, make_source):
    """Before: a mesh folder's name went into metadata['source'] and file stems into structure names."""
    source = make_source(tmp_path / SENTINEL / f"{SENTINEL}-source")
    anatomy = import_anatomy(source, spacing_mm=2.0 if make_source is _mesh_source else None)
    stored = anatomy.save(tmp_path / "stored")
    if make_source is _mesh_source:
        assert sorted(label.name for label in anatomy.label_table) == ["L5", "mesh.part_1", "mesh.part_2"]
    for path in stored.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in ("SENTINEL", "sentinel", "DOE", "JANE"):
                assert needle.encode() not in data, f"{needle} found in {path.name}"
    names = " ".join(label.name for label in anatomy.label_table) + repr(anatomy.metadata)
    assert "SENTINEL" not in names.upper() and "DOE" not in names and "JANE" not in names
