"""Import anatomy from what a clinic or a user has: one entry point that recognises the source.

``import_anatomy(path)`` turns a source into an :class:`Anatomy`; ``describe_source(path)`` lists what
a source holds without importing it. Each format's reader lives in a module named for the format.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from anatomy_models.anatomy import MANIFEST, Anatomy
from anatomy_models.dicom import contains_dicom, read_dicom_series, scan_dicom, summarised_notes
from anatomy_models.errors import SpinesimError
from anatomy_models.label_landmarks import with_label_landmarks
from anatomy_models.label_parts import with_label_parts
from anatomy_models.labelmaps import (LabelMap, ct_from_labels, is_totalsegmentator_folder, is_unknown_id_structure,
                                      known_structure, parse_label_format, read_label_map, structure_for_name)
from anatomy_models.meshes import describe_meshes, is_mesh_folder, is_mesh_path, mesh_anatomy, read_mesh_source
from anatomy_models.nifti import is_nifti_path, nifti_label_names, nifti_orientation_source, nifti_stem, read_nifti
from anatomy_models.nrrd import is_nrrd_path, is_segmentation_file, read_nrrd, read_segmentation
from anatomy_models.scanner_table import without_scanner_table
from anatomy_models.volume import Volume

ProgressCallback = Callable[[float, float, str], None]


def source_kind(path: str | Path, *, readable_only: bool = False) -> str:
    """What kind of source ``path`` is (``readable_only``: unreadable subfolders do not stop the search).

    ``"anatomy"`` (a stored anatomy folder), ``"nifti"`` or ``"nrrd"`` (a CT volume; ``.nhdr`` too), ``"seg.nrrd"``
    (a 3D Slicer segmentation), ``"totalsegmentator"`` (a folder of its per-class masks),
    ``"mesh"`` (a mesh file or a folder of meshes) or ``"dicom"`` (a DICOM file, or a folder with
    DICOM files anywhere below it).
    """
    path = Path(path)
    if not path.exists():
        raise SpinesimError("no such file or folder", path=path)
    if path.is_dir():
        if (path / MANIFEST).is_file():
            return "anatomy"
        if is_totalsegmentator_folder(path):
            return "totalsegmentator"
        if is_mesh_folder(path):
            return "mesh"
    elif is_nrrd_path(path):
        return "seg.nrrd" if is_segmentation_file(path) else "nrrd"
    elif is_nifti_path(path):
        return "nifti"
    elif is_mesh_path(path):
        return "mesh"
    if contains_dicom(path, readable_only=readable_only):
        return "dicom"
    if path.is_dir() and not any(path.iterdir()):
        raise SpinesimError("the folder is empty", path=path, hint="give the folder that holds the CT images")
    raise SpinesimError("not a recognised anatomy source", path=path,
                        hint="give a stored anatomy folder, a DICOM folder or file, a CT volume (.nii, .nii.gz, "
                             ".nrrd, .nhdr), a .seg.nrrd, a folder of TotalSegmentator masks, or mesh files "
                             "(.stl, .obj, .ply, .glb, .gltf, .vtk, .vtp)")


def import_anatomy(path: str | Path, *, series_uid: str | None = None, labels: str | Path | None = None,
                   label_format: str | None = None, spacing_mm: float | None = None, mesh_units: str = "mm",
                   progress: ProgressCallback | None = None, readable_only: bool = False) -> Anatomy:
    """An anatomy built from the source at ``path`` (CT in HU, de-identified metadata).

    Parameters
    ----------
    series_uid : str, optional
        The series of a DICOM folder with several (its UID or its number in the listing).
    labels : path, optional
        A label map for a CT source (put onto the CT's grid, nearest neighbour if needed); for a
        mesh source, a YAML table mesh name -> structure.
    label_format : str, optional
        How to read the label map's ids (``totalsegmentator[:v1|:v2]``, ``verse``, ``table:FILE``).
    spacing_mm : float, optional
        Voxel size (mm): of the voxelised grid for meshes (default 1 mm); for volumes, resample to it.
    mesh_units : str
        ``mm``, ``cm`` or ``m``: the unit of mesh coordinates.
    readable_only : bool
        For a DICOM folder: skip unreadable subfolders and damaged files (counted in the warnings)
        instead of refusing (:func:`anatomy_models.dicom.read_dicom_series`).

    Notes on what the import did (resampling, version choices) are in ``metadata["import_notes"]``;
    repairs the DICOM reader made (missing slices, gantry tilt) and label ids no table named (kept as
    ``label_<id>``) in ``metadata["import_warnings"]``. A source with vertebra labels gets landmarks
    measured from them (:mod:`anatomy_models.label_landmarks`), marked as estimates by
    ``metadata["derived_landmarks"]``, so that views and targets by level work on it.
    ``metadata["source"]`` names the kind of source only, never the file: file names often carry
    a patient's name.
    """
    path = Path(path)
    kind = source_kind(path, readable_only=readable_only)
    if readable_only and kind != "dicom":
        raise SpinesimError("--readable-only applies to DICOM folders only", path=path)
    if kind == "anatomy":
        if labels or label_format or spacing_mm:
            raise SpinesimError("a stored anatomy is imported as it is; --labels, --label-format and --spacing do not apply",
                                path=path)
        return Anatomy.load(path)
    if series_uid is not None and kind != "dicom":
        raise SpinesimError("--series applies to DICOM folders only", path=path)
    if kind == "mesh":
        if label_format:
            raise SpinesimError("--label-format applies to label maps, not meshes", path=path,
                                hint="name meshes after structures, or map their names with --labels NAMES.yaml")
        return _with_estimated_landmarks(mesh_anatomy(path, spacing_mm=spacing_mm or 1.0, units=mesh_units,
                                                      names_path=labels, progress=progress))
    fmt = parse_label_format(label_format) if label_format else None
    metadata: dict = {"source": kind}
    if kind in ("seg.nrrd", "totalsegmentator"):
        if labels:
            raise SpinesimError(f"{path.name} is itself a label map; --labels is for a CT source", path=path)
        label_map = read_label_map(path, fmt, progress=progress)
        ct = ct_from_labels(label_map.labels, label_map.table)
        notes = [*label_map.notes, "no CT in the source: CT numbers painted from each structure's tissue"]
    else:
        if kind == "dicom":
            dicom_ct = read_dicom_series(path, series_uid, progress=progress, readable_only=readable_only)
            ct, metadata = dicom_ct.volume, dicom_ct.metadata
        else:
            ct = read_nifti(path) if kind == "nifti" else read_nrrd(path)
        if labels:
            label_map = read_label_map(labels, fmt, progress=progress, ct=ct)
        elif fmt:
            raise SpinesimError("--label-format needs a label map (--labels LABELMAP)", path=path)
        else:
            label_map = None
        notes = list(label_map.notes) if label_map else []
        ct, removed = without_scanner_table(ct, label_map.labels if label_map else None)
        if removed:
            notes.append(f"{removed} voxels outside the patient's trunk (the CT's table, pads, arms lying apart) "
                         "set to air: the patient lies prone on the fluoroscopy table, arms up")
    if spacing_mm:
        ct, label_map = _resampled(ct, label_map, spacing_mm)
        notes.append(f"resampled to {spacing_mm:g} mm voxels (CT trilinear, labels nearest neighbour)")
    metadata["import_notes"] = notes
    if label_map is None:
        return Anatomy(ct=ct, metadata=metadata)
    if label_map.warnings:
        metadata["import_warnings"] = [*metadata.get("import_warnings", []), *label_map.warnings]
    return _with_estimated_landmarks(Anatomy(ct=ct, label_table=label_map.table, labels=label_map.labels,
                                             metadata=metadata))


def _with_estimated_landmarks(anatomy: Anatomy) -> Anatomy:
    """``anatomy`` with landmarks measured from its vertebra labels, or as it is (with a note saying why) when
    it has none that the measurement can use."""
    if anatomy.labels is None or anatomy.landmarks:
        return anatomy
    try:
        measured = with_label_landmarks(anatomy)
        note = (f"{len(measured.landmarks)} landmarks measured from the vertebra labels "
                "(estimates, good to a few millimetres): views and targets by level work on this anatomy")
    except SpinesimError as error:  # no lumbar vertebra with a canal: still usable, without views by level
        measured, note = anatomy, f"no landmarks: {error.problem}"
    notes = [*measured.metadata.get("import_notes", []), note]
    parted = with_label_parts(measured) if measured.landmarks else measured
    if parted is not measured:
        added = len(parted.label_table) - len(measured.label_table)
        notes.append(f"{added} structures drawn from the vertebra labels (vertebra parts, discs, ligamentum flavum, "
                     "dural sac, exiting roots, epidural fat, radicular arteries; estimates): procedures can target "
                     "this anatomy")
        measured = parted
    return replace(measured, metadata=dict(measured.metadata, import_notes=notes))


def _resampled(ct: Volume, label_map: LabelMap | None, spacing_mm: float) -> tuple[Volume, LabelMap | None]:
    ct = ct.resampled_to_spacing(spacing_mm, order=1)
    if label_map is None:
        return ct, None
    labels = label_map.labels.resampled_to_spacing(spacing_mm, order=0)
    return ct, replace(label_map, labels=ct.with_array(labels.array))


def describe_volume(volume: Volume) -> dict[str, str]:
    """Size, spacing, orientation and value range of a volume, as printable strings."""
    lower, upper = volume.bounds()
    return {
        "size (voxels)": " x ".join(str(n) for n in volume.shape),
        "spacing (mm)": " x ".join(f"{s:.3g}" for s in volume.spacing),
        "orientation": volume.orientation_code,
        "extent (mm, LPS)": ", ".join(f"{lo:.1f}..{hi:.1f}" for lo, hi in zip(lower, upper)),
        "values": f"{np.min(volume.array):.0f} .. {np.max(volume.array):.0f}",
    }


def describe_source(path: str | Path) -> dict[str, str]:
    """A short printable description of the source at ``path``."""
    path = Path(path)
    kind = source_kind(path)
    if kind == "anatomy":
        anatomy = Anatomy.load(path)
        facts = {"kind": "stored anatomy", "source": str(anatomy.metadata.get("source", "?"))}
        facts.update(describe_volume(anatomy.ct))
        names = [label.name for label in anatomy.label_table]
        facts["structures"] = ", ".join(names) or "none"
        facts["not recognised"] = ", ".join(n for n in names if is_unknown_id_structure(n)) or "none"
        facts["landmarks"] = str(len(anatomy.landmarks))
        if anatomy.landmarks and "derived_landmarks" in anatomy.metadata:
            facts["landmarks"] += f" ({anatomy.metadata['derived_landmarks']})"
        for key in ("import_warnings", "import_notes"):
            if anatomy.metadata.get(key):
                facts[key.replace("_", " ")] = "\n".join(map(str, anatomy.metadata[key]))
        return facts
    if kind == "dicom":
        found = scan_dicom(path)
        facts = {"kind": f"DICOM ({len(found)} series)"}
        for number, series in enumerate(found, 1):
            notes = summarised_notes(series.reader_notes)
            facts[f"series [{number}]"] = "\n".join([series.uid, series.summary(), *notes])
        facts["choose"] = "spinesim anatomy import PATH --series UID (or its number) -o NAME"
        return facts
    if kind == "nifti":
        facts = {"kind": "NIfTI volume", "orientation from": nifti_orientation_source(path),
                 **describe_volume(read_nifti(path))}
        names = nifti_label_names(path)
        if names:
            facts["label table"] = _mapped(names.values())
            facts["not recognised"] = _unrecognised(names.values())
        return facts
    if kind == "seg.nrrd":
        segmentation = read_segmentation(path)
        foreign = [name for number, name in segmentation.names.items() if number not in segmentation.tissues]
        return {"kind": "3D Slicer segmentation", **describe_volume(segmentation.labels),
                "segments": _mapped(segmentation.names.values()), "not recognised": _unrecognised(foreign)}
    if kind == "totalsegmentator":
        stems = sorted(nifti_stem(p) for p in path.iterdir() if is_nifti_path(p))
        return {"kind": "TotalSegmentator per-class masks", "masks": str(len(stems)),
                "spine structures": _mapped(s for s in stems if not structure_for_name(s, "totalseg")[0].startswith("totalseg."))}
    if kind == "mesh":
        return {"kind": "meshes", **describe_meshes(read_mesh_source(path))}
    return {"kind": "NRRD volume", **describe_volume(read_nrrd(path))}


def _unrecognised(names) -> str:
    """The names that are neither spinesim structures nor TotalSegmentator classes (kept as ``seg.<name>``)."""
    return ", ".join(name for name in names if known_structure(name) is None) or "none"


def _mapped(names) -> str:
    """``source name -> spinesim structure`` for each name, comma separated."""
    pairs = []
    for name in names:
        structure = structure_for_name(name, "seg")[0]
        pairs.append(name if structure == name else f"{name} -> {structure}")
    return ", ".join(pairs) or "none"
