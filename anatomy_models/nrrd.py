"""NRRD volumes (pynrrd): 3D scalar images in LPS (or RAS, converted on read).

NRRD is also spinesim's own on-disk form for an anatomy's CT and label map: it records the space,
spacing, directions and origin, so a file is self-describing and opens in 3D Slicer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nrrd
import numpy as np

from anatomy_models.atomic import atomic_path
from anatomy_models.errors import SpinesimError
from anatomy_models.volume import Volume

# NRRD space names -> sign flips that take that space to LPS.
_SPACE_TO_LPS = {
    "left-posterior-superior": np.array([1.0, 1.0, 1.0]),
    "LPS": np.array([1.0, 1.0, 1.0]),
    "right-anterior-superior": np.array([-1.0, -1.0, 1.0]),
    "RAS": np.array([-1.0, -1.0, 1.0]),
    "left-anterior-superior": np.array([1.0, -1.0, 1.0]),
    "LAS": np.array([1.0, -1.0, 1.0]),
}


def read_nrrd_header_and_data(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """The raw array (NRRD axis order, fastest axis first) and header, with read errors made clear."""
    path = Path(path)
    if not path.is_file():
        raise SpinesimError("file not found", path=path)
    try:
        return nrrd.read(str(path))
    except nrrd.NRRDError as error:
        raise SpinesimError(f"not a valid NRRD file ({error})", path=path) from None
    except (OSError, ValueError, EOFError) as error:
        raise SpinesimError(f"cannot read NRRD data ({error}); the file may be truncated", path=path) from None


def affine_from_header(header: dict[str, Any], path: str | Path, spatial_axes: list[int]) -> np.ndarray:
    """The 4x4 voxel -> LPS affine of a NRRD header's spatial axes."""
    space = header.get("space")
    if space is None:
        raise SpinesimError("missing field 'space' (the patient coordinate system)", path=path,
                            hint="save the volume with a space such as 'left-posterior-superior'")
    if space not in _SPACE_TO_LPS:
        raise SpinesimError(f"field 'space' is {space!r}; only LPS, RAS and LAS patient spaces are supported", path=path)
    directions = header.get("space directions")
    if directions is None:
        raise SpinesimError("missing field 'space directions' (voxel spacing and orientation)", path=path)
    directions = np.asarray(directions, dtype=np.float64)[spatial_axes]
    if directions.shape != (3, 3) or not np.all(np.isfinite(directions)):
        raise SpinesimError(f"field 'space directions' must give three finite 3-vectors, got {directions.tolist()}", path=path)
    if np.any(np.linalg.norm(directions, axis=1) <= 0):
        raise SpinesimError("field 'space directions' has a zero-length axis (spacing 0)", path=path)
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=np.float64)
    if origin.shape != (3,) or not np.all(np.isfinite(origin)):
        raise SpinesimError(f"field 'space origin' must be three finite numbers, got {origin.tolist()}", path=path)
    flip = _SPACE_TO_LPS[space]
    affine = np.eye(4)
    affine[:3, :3] = (directions * flip[None, :]).T
    affine[:3, 3] = origin * flip
    if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise SpinesimError("field 'space directions' is singular (axes are collinear)", path=path)
    return affine


def read_nrrd(path: str | Path) -> Volume:
    """Read a 3D scalar NRRD file as a :class:`Volume` in LPS.

    Raises
    ------
    SpinesimError
        If the file is missing, truncated, not 3D scalar, or lacks valid space fields.
    """
    data, header = read_nrrd_header_and_data(path)
    if data.ndim != 3:
        raise SpinesimError(f"expected a 3D scalar volume, found {data.ndim} dimensions {data.shape}", path=path,
                            hint="segmentations with a label-layer axis are read with the .seg.nrrd reader")
    return Volume(data, affine_from_header(header, path, [0, 1, 2]))


def write_nrrd(volume: Volume, path: str | Path, *, compression_level: int = 1,
               extra_fields: dict[str, str] | None = None) -> Path:
    """Write ``volume`` as a gzip NRRD in LPS space; the file appears whole or not at all."""
    header: dict[str, Any] = {
        "space": "left-posterior-superior",
        "space directions": volume.affine[:3, :3].T.copy(),
        "space origin": volume.affine[:3, 3].copy(),
        "kinds": ["domain", "domain", "domain"],
        "encoding": "gzip" if compression_level > 0 else "raw",
    }
    header.update(extra_fields or {})
    path = Path(path)
    with atomic_path(path) as temporary:
        nrrd.write(str(temporary), np.asarray(volume.array), header, compression_level=max(compression_level, 1))
    return path
