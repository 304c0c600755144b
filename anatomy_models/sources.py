"""Import anatomy from what a clinic or a user has: one entry point that recognises the source.

``import_anatomy(path)`` turns a source into an :class:`Anatomy`; ``describe_source(path)`` lists what
a source holds without importing it. Each format's reader lives in a module named for the format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from anatomy_models.anatomy import MANIFEST, Anatomy
from anatomy_models.dicom import contains_dicom, read_dicom_series, scan_dicom
from anatomy_models.errors import SpinesimError
from anatomy_models.nrrd import read_nrrd
from anatomy_models.volume import Volume

ProgressCallback = Callable[[float, float, str], None]


def source_kind(path: str | Path) -> str:
    """What kind of source ``path`` is: ``"anatomy"`` (a stored anatomy folder), ``"nrrd"`` or ``"dicom"``
    (a DICOM file, or a folder with DICOM files anywhere below it)."""
    path = Path(path)
    if not path.exists():
        raise SpinesimError("no such file or folder", path=path)
    if path.is_dir() and (path / MANIFEST).is_file():
        return "anatomy"
    if path.is_file() and path.name.lower().endswith(".nrrd"):
        return "nrrd"
    if contains_dicom(path):
        return "dicom"
    if path.is_dir() and not any(path.iterdir()):
        raise SpinesimError("the folder is empty", path=path, hint="give the folder that holds the CT images")
    raise SpinesimError("not a recognised anatomy source", path=path,
                        hint="give a stored anatomy folder, a DICOM folder or file, or a .nrrd CT volume")


def import_anatomy(path: str | Path, *, series_uid: str | None = None,
                   progress: ProgressCallback | None = None) -> Anatomy:
    """An anatomy built from the source at ``path`` (CT in HU, de-identified metadata).

    ``series_uid`` picks the series of a DICOM folder with several (its UID or listed number).
    Repairs the reader made (missing slices, gantry tilt) are listed in
    ``metadata["import_warnings"]``.
    """
    path = Path(path)
    kind = source_kind(path)
    if kind == "anatomy":
        return Anatomy.load(path)
    if kind == "dicom":
        ct = read_dicom_series(path, series_uid, progress=progress)
        return Anatomy(ct=ct.volume, metadata=ct.metadata)
    ct = read_nrrd(path)
    return Anatomy(ct=ct, metadata={"source": f"nrrd:{path.name}"})


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
    kind = source_kind(path)
    if kind == "anatomy":
        anatomy = Anatomy.load(path)
        facts = {"kind": "stored anatomy", "source": str(anatomy.metadata.get("source", "?"))}
        facts.update(describe_volume(anatomy.ct))
        facts["structures"] = ", ".join(label.name for label in anatomy.label_table) or "none"
        facts["landmarks"] = str(len(anatomy.landmarks))
        return facts
    if kind == "dicom":
        found = scan_dicom(path)
        facts = {"kind": f"DICOM ({len(found)} series)"}
        for number, series in enumerate(found, 1):
            facts[f"series [{number}]"] = f"{series.uid}\n{series.summary()}"
        facts["choose"] = "spinesim anatomy import PATH --series UID (or its number) -o NAME"
        return facts
    return {"kind": "NRRD volume", **describe_volume(read_nrrd(path))}
