"""Export an anatomy for other tools: NIfTI or NRRD (CT + labels + label table) and STL surfaces.

Layouts, with ``OUT`` the output argument:

- ``nifti``: ``OUT/ct.nii.gz``, ``OUT/labels.nii.gz`` (NIfTI ``label`` intent) and
  ``OUT/labels.json``; or, if ``OUT`` ends in ``.nii``/``.nii.gz``, the CT there and
  ``<stem>.labels.nii.gz`` / ``<stem>.labels.json`` beside it.
- ``nrrd``: ``OUT/ct.nrrd``, ``OUT/labels.seg.nrrd`` (a 3D Slicer segmentation: segments named after
  the structures) and ``OUT/labels.json``; or the CT at ``OUT`` if it ends in ``.nrrd``.
- ``dicom``: a CT Image Storage series, one file per slice, in the new folder ``OUT`` (de-identified,
  fresh UIDs; labels are not part of a CT series).
- ``stl``: one ``<structure>.stl`` per structure in the folder ``OUT`` (LPS mm, ``SPACE=LPS`` header).

``labels.json`` is the label table as a list of ``{id, name, tissue}``: it reads back with
``--label-format table:labels.json``. Nothing patient-identifying is written (the anatomy holds none).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from anatomy_models.anatomy import Anatomy
from anatomy_models.atomic import atomic_path
from anatomy_models.dicom import write_dicom_series
from anatomy_models.errors import SpinesimError
from anatomy_models.meshes import export_structure_stls
from anatomy_models.nifti import nifti_stem, write_nifti
from anatomy_models.nrrd import write_nrrd, write_segmentation

EXPORT_FORMATS = ("dicom", "nifti", "nrrd", "stl")
_SUFFIXES = {"nifti": (".nii.gz", ".nii"), "nrrd": (".nrrd",)}


def _paths(fmt: str, out: Path) -> tuple[Path, Path, Path]:
    """CT, label map and label table paths for ``fmt`` and the output argument ``out``."""
    name = out.name.lower()
    if fmt == "nifti":
        if name.endswith(_SUFFIXES[fmt]):
            stem = nifti_stem(out)
            return out, out.with_name(f"{stem}.labels.nii.gz"), out.with_name(f"{stem}.labels.json")
        return out / "ct.nii.gz", out / "labels.nii.gz", out / "labels.json"
    if name.endswith(".nrrd"):
        stem = out.name[: -len(".nrrd")]
        return out, out.with_name(f"{stem}.labels.seg.nrrd"), out.with_name(f"{stem}.labels.json")
    return out / "ct.nrrd", out / "labels.seg.nrrd", out / "labels.json"


def export_anatomy(anatomy: Anatomy, fmt: str, out: str | Path, *,
                   progress: Callable[[float, float, str], None] | None = None) -> list[Path]:
    """Write ``anatomy`` in format ``fmt`` (``dicom``, ``nifti``, ``nrrd`` or ``stl``) to ``out``; returns the files written."""
    out = Path(out)
    if fmt == "dicom":
        return write_dicom_series(anatomy, out, progress=progress)
    if fmt == "stl":
        return export_structure_stls(anatomy, out, progress=progress)
    if fmt not in EXPORT_FORMATS:
        raise SpinesimError(f"unknown export format {fmt!r}", hint=f"use one of {', '.join(EXPORT_FORMATS)}")
    ct_path, labels_path, table_path = _paths(fmt, out)
    ct = anatomy.ct.with_array(np.clip(np.rint(anatomy.ct.array), -32768, 32767).astype(np.int16))
    written = [write_nifti(ct, ct_path) if fmt == "nifti" else write_nrrd(ct, ct_path, compression_level=6)]
    if anatomy.labels is None:
        return written
    labels = anatomy.labels.with_array(anatomy.labels.array.astype(np.uint16, copy=False))
    if fmt == "nifti":
        written.append(write_nifti(labels, labels_path, label_map=True))
    else:
        names = {label.id: label.name for label in anatomy.label_table}
        written.append(write_segmentation(labels, names, labels_path))
    with atomic_path(table_path) as temporary:
        temporary.write_text(json.dumps(anatomy.label_table.to_list(), indent=1) + "\n", encoding="utf-8")
    written.append(table_path)
    return written
