"""Export an anatomy for other tools: NIfTI or NRRD (CT + labels + label table), STL and GLB surfaces.

Layouts, with ``OUT`` the output argument:

- ``nifti``: ``OUT/ct.nii.gz``, ``OUT/labels.nii.gz`` (NIfTI ``label`` intent) and
  ``OUT/labels.json``; or, if ``OUT`` ends in ``.nii``/``.nii.gz``, the CT there and
  ``<stem>.labels.nii.gz`` / ``<stem>.labels.json`` beside it.
- ``nrrd``: ``OUT/ct.nrrd``, ``OUT/labels.seg.nrrd`` (a 3D Slicer segmentation: segments named after
  the structures, each tagged with its tissue class so that it imports back unchanged) and
  ``OUT/labels.json``; or the CT at ``OUT`` if it ends in ``.nrrd``.
- ``dicom``: a CT Image Storage series, one file per slice, in the new folder ``OUT`` (de-identified,
  fresh UIDs), and the labels beside it as a DICOM Segmentation (``SEG.dcm``) and an RT Structure Set
  (``RTSTRUCT.dcm``), both referencing the slices and coded with standard terminology.
- ``stl``: one ``<structure>.stl`` per whole bone, disc or other structure (per part with ``parts``) in the
  folder ``OUT`` (LPS mm, ``SPACE=LPS`` header), each closed and decimated to at most
  :data:`~anatomy_models.meshes.MAX_EXPORT_TRIANGLES` triangles (for 3D printing).
- ``glb``: the same structures as named nodes of one binary glTF ``OUT`` (``.glb``) for 3D viewers, coloured by
  tissue, in glTF's frame (metres, the patient upright), each closed and at most
  :data:`~anatomy_models.meshes.MAX_GLB_TRIANGLES` triangles: the built-in patient in under
  :data:`~anatomy_models.meshes.GLB_SIZE_BUDGET_BYTES`.

``labels.json`` is the label table as a list of ``{id, name, tissue}``: it reads back with
``--label-format table:labels.json``. Nothing patient-identifying is written (the anatomy holds none).
The files of an export replace earlier ones all together or, on an error, not at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from anatomy_models.anatomy import Anatomy
from anatomy_models.atomic import atomic_files
from anatomy_models.dicom import burned_in_annotation, write_dicom_series
from anatomy_models.errors import SpinesimError
from anatomy_models.meshes import export_glb, export_structure_stls
from anatomy_models.nifti import nifti_stem, write_nifti
from anatomy_models.nrrd import write_nrrd, write_segmentation

EXPORT_FORMATS = ("dicom", "nifti", "nrrd", "stl", "glb")
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


def export_anatomy(anatomy: Anatomy, fmt: str, out: str | Path, *, parts: bool = False,
                   progress: Callable[[float, float, str], None] | None = None) -> list[Path]:
    """Write ``anatomy`` in format ``fmt`` (``dicom``, ``nifti``, ``nrrd``, ``stl`` or ``glb``) to ``out``; returns the
    files written.

    ``parts`` (STL and GLB): a surface per part of a bone (``L4.pedicle.left``) instead of per whole bone."""
    out = Path(out)
    if fmt == "dicom":
        return write_dicom_series(anatomy, out, progress=progress)
    if fmt == "stl":
        return export_structure_stls(anatomy, out, parts=parts, progress=progress)
    if fmt == "glb":
        return export_glb(anatomy, out, parts=parts, progress=progress)
    if fmt not in EXPORT_FORMATS:
        raise SpinesimError(f"unknown export format {fmt!r}", hint=f"use one of {', '.join(EXPORT_FORMATS)}")
    ct_path, labels_path, table_path = _paths(fmt, out)
    targets = [ct_path] if anatomy.labels is None else [ct_path, labels_path, table_path]
    with atomic_files(targets) as temporaries:  # the set is replaced together: never a new CT with old labels
        _write_volumes(anatomy, fmt, temporaries)
    return targets


def export_warnings(anatomy: Anatomy, fmt: str) -> list[str]:
    """What a user should know before sharing an export of ``anatomy`` in format ``fmt``.

    Examples
    --------
    >>> from anatomy_models.volume import Volume
    >>> ct = Volume(np.zeros((2, 2, 2), np.int16), np.eye(4))
    >>> export_warnings(Anatomy(ct=ct, metadata={"source": "nifti"}), "dicom")[0][:42]
    'the source does not say whether its pixels'
    """
    if fmt == "dicom" and burned_in_annotation(anatomy.metadata) is None:
        return ["the source does not say whether its pixels show burned-in text (a name, a date), so the series "
                "leaves Burned In Annotation (0028,0301) out, which means unknown; "
                "look at the images before sharing them"]
    return []


def _write_volumes(anatomy: Anatomy, fmt: str, paths: list[Path]) -> None:
    """The CT and, if the anatomy has labels, the label map and label table, to ``paths`` in that order."""
    ct = anatomy.ct.with_array(np.clip(np.rint(anatomy.ct.array), -32768, 32767).astype(np.int16))
    if fmt == "nifti":
        write_nifti(ct, paths[0])
    else:
        write_nrrd(ct, paths[0], compression_level=6)
    if anatomy.labels is None:
        return
    labels = anatomy.labels.with_array(anatomy.labels.array.astype(np.uint16, copy=False))
    if fmt == "nifti":
        write_nifti(labels, paths[1], label_map=True)
    else:
        write_segmentation(labels, {label.id: label.name for label in anatomy.label_table}, paths[1],
                           tissues={label.id: label.tissue for label in anatomy.label_table})
    paths[2].write_text(json.dumps(anatomy.label_table.to_list(), indent=1) + "\n", encoding="utf-8")
