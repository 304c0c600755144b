"""The anatomy every part of spinesim shares: CT numbers, labelled structures, landmarks.

On disk an anatomy is a folder: ``ct.nrrd`` (HU, int16), ``labels.nrrd`` (uint16 ids, same grid),
``anatomy.json`` (format version, label table, landmarks, directions, metadata) and a
``surfaces/`` cache of derived meshes. Every file opens in 3D Slicer; the JSON is readable by eye.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from anatomy_models.atomic import atomic_directory, atomic_path
from anatomy_models.derived import Derived
from anatomy_models.errors import SpinesimError
from anatomy_models.home import MANIFEST
from anatomy_models.nrrd import read_nrrd, write_nrrd
from anatomy_models.structures import LabelTable
from anatomy_models.surfaces import SURFACE_VERSION, label_surface
from anatomy_models.tissues import tissue_from_hu
from anatomy_models.volume import Volume

if TYPE_CHECKING:  # pyvista (vtk) is loaded only when a surface is asked for
    import pyvista as pv

FORMAT_NAME = "spinesim-anatomy"
FORMAT_VERSION = 1


def _point(name: str, value: Any, kind: str) -> np.ndarray:
    try:
        point = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):  # text or nested mappings where numbers belong
        point = None
    if point is None or point.shape != (3,) or not np.all(np.isfinite(point)):
        raise SpinesimError(f"{kind} {name!r} must be three finite LPS numbers (mm), got {value!r:.80}")
    return point


@dataclass(eq=False)
class Anatomy:
    """A patient (real or generated) in LPS millimetres.

    Parameters
    ----------
    ct : Volume
        CT numbers in Hounsfield units (int16 or float32).
    label_table : LabelTable
        Label id -> structure name -> tissue class for ``labels``.
    labels : Volume, optional
        Label ids (unsigned ints) on exactly the CT's grid; 0 is unlabelled body or air.
    landmarks : dict of str -> array (3,)
        Named points in LPS mm (``"L4.pedicle.left.center"``).
    directions : dict of str -> array (3,)
        Named unit vectors (``"L4.superior_endplate.normal"``).
    metadata : dict
        JSON-serialisable facts about the source (never patient-identifying).
    directory : Path, optional
        Where the anatomy is stored; derived surfaces are cached there.

    Attributes
    ----------
    derived : Derived
        Data derived from this anatomy (tissue map, surfaces, and the engine's tables, maps and
        frames), computed on first use and kept while the anatomy lives; :meth:`clear_derived`
        drops it. Never modify the CT or labels in place once something has been derived.
    """

    ct: Volume
    label_table: LabelTable = field(default_factory=LabelTable)
    labels: Volume | None = None
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)
    directions: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    directory: Path | None = None
    derived: Derived = field(default_factory=Derived, init=False, repr=False)

    def __post_init__(self) -> None:
        if not np.issubdtype(self.ct.array.dtype, np.number) or np.issubdtype(self.ct.array.dtype, np.complexfloating):
            raise SpinesimError(f"CT values must be real numbers (HU), got dtype {self.ct.array.dtype}")
        if self.labels is not None:
            self._check_labels(self.labels)
        self.landmarks = {name: _point(name, p, "landmark") for name, p in self.landmarks.items()}
        directions = {name: _point(name, d, "direction") for name, d in self.directions.items()}
        for name, d in directions.items():
            if not np.isclose(np.linalg.norm(d), 1.0, atol=1e-6):
                raise SpinesimError(f"direction {name!r} must be a unit vector, has length {np.linalg.norm(d):.4f}")
        self.directions = directions
        try:
            json.dumps(self.metadata)
        except TypeError as error:
            raise SpinesimError(f"anatomy metadata must be JSON-serialisable ({error})") from None

    def _check_labels(self, labels: Volume) -> None:
        if labels.shape != self.ct.shape or not np.allclose(labels.affine, self.ct.affine, atol=1e-4):
            raise SpinesimError(f"the label map's grid {labels.shape} does not match the CT's grid {self.ct.shape} "
                                "(shape and affine must be equal)", hint="resample the labels onto the CT with nearest neighbour")
        if not np.issubdtype(labels.array.dtype, np.unsignedinteger):
            raise SpinesimError(f"label ids must be unsigned integers, got dtype {labels.array.dtype}")
        counts = np.bincount(labels.array.ravel())
        unknown = [i for i in np.flatnonzero(counts)[1:] if int(i) not in {label.id for label in self.label_table}]
        if unknown:
            raise SpinesimError(f"label ids {unknown[:10]} occur in the label map but not in its label table")

    # ------------------------------------------------------------------ queries
    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or (self.directory.name if self.directory else "unnamed"))

    def mask(self, group: str) -> np.ndarray:
        """Boolean array (CT grid) of the voxels of structure ``group`` and its parts."""
        if self.labels is None:
            raise SpinesimError(f"this anatomy has no label map, so it has no structure {group!r}",
                                hint="import it with a label map (--labels)")
        return np.isin(self.labels.array, self.label_table.ids_in_group(group))

    def tissue_map(self) -> tuple[np.ndarray, list[str]]:
        """Tissue class of every voxel (CT grid): (uint8 index array, tissue names). Computed once.

        Labelled voxels take their structure's tissue; unlabelled ones are classified by CT number.
        """
        return self.derived("anatomy.tissue_map", self._classify_tissues)

    def _classify_tissues(self) -> tuple[np.ndarray, list[str]]:
        from_hu, hu_names = tissue_from_hu(self.ct.array)
        if self.labels is None:
            return from_hu, hu_names
        lookup, label_names = self.label_table.tissue_lookup()
        names = sorted(set(label_names[1:]) | set(hu_names))
        label_index = np.array([0] + [names.index(n) for n in label_names[1:]], dtype=np.uint8)[lookup]
        hu_index = np.array([names.index(n) for n in hu_names], dtype=np.uint8)
        ids = self.labels.array
        return np.where(ids > 0, label_index[ids], hu_index[from_hu]).astype(np.uint8), names

    def landmark(self, name: str) -> np.ndarray:
        """The LPS point (mm) of landmark ``name``."""
        try:
            return self.landmarks[name].copy()
        except KeyError:
            close = [n for n in self.landmarks if name.split(".")[0] in n][:6]
            hint = f"landmarks like it: {', '.join(close)}" if close else "list them with `spinesim anatomy info`"
            raise SpinesimError(f"no landmark named {name!r}", hint=hint) from None

    def direction(self, name: str) -> np.ndarray:
        """The unit LPS vector called ``name``."""
        try:
            return self.directions[name].copy()
        except KeyError:
            raise SpinesimError(f"no direction named {name!r}") from None

    def surface(self, group: str) -> pv.PolyData:
        """Smoothed surface mesh (LPS mm) of structure ``group``, computed once and cached.

        The cache lives in memory (:attr:`derived`) and, for a stored anatomy, in its ``surfaces/`` folder.
        """
        return self.derived(("anatomy.surface", group), lambda: self._read_or_make_surface(group))

    def _read_or_make_surface(self, group: str) -> pv.PolyData:
        if self.labels is None:
            raise SpinesimError(f"this anatomy has no label map, so it has no surface for {group!r}")
        cached = self.directory / "surfaces" / f"{group}.v{SURFACE_VERSION}.vtp" if self.directory else None
        if cached is not None and cached.is_file():
            import pyvista as pv

            return pv.read(cached)
        mesh = label_surface(self.labels, self.label_table.ids_in_group(group))
        if cached is not None:
            with atomic_path(cached) as temporary:
                mesh.save(temporary)
        return mesh

    def clear_derived(self) -> None:
        """Forget everything derived from this anatomy and its volumes (memory only; ``surfaces/``
        on disk stays): the one place derived data is dropped, e.g. to free memory between cases."""
        self.derived.clear()
        self.ct.derived.clear()
        if self.labels is not None:
            self.labels.derived.clear()

    # ------------------------------------------------------------------ storage
    def save(self, directory: str | Path, *, compression_level: int = 1) -> Path:
        """Write the anatomy into ``directory`` (replacing what was there, all or nothing)."""
        directory = Path(directory)
        with atomic_directory(directory) as staging:
            ct = self.ct if self.ct.array.dtype == np.int16 else self.ct.with_array(
                np.clip(np.rint(self.ct.array), -32768, 32767).astype(np.int16))
            write_nrrd(ct, staging / "ct.nrrd", compression_level=compression_level)
            if self.labels is not None:
                write_nrrd(self.labels.with_array(self.labels.array.astype(np.uint16, copy=False)),
                           staging / "labels.nrrd", compression_level=compression_level)
            manifest = {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "ct": "ct.nrrd",
                "labels": "labels.nrrd" if self.labels is not None else None,
                "label_table": self.label_table.to_list(),
                "landmarks": {name: p.tolist() for name, p in sorted(self.landmarks.items())},
                "directions": {name: d.tolist() for name, d in sorted(self.directions.items())},
                "metadata": self.metadata,
            }
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        self.directory = directory
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Anatomy:
        """Read an anatomy folder written by :meth:`save`.

        Raises
        ------
        SpinesimError
            If the folder holds no anatomy, one of an unsupported format version, or a damaged one (a
            missing or unreadable file, a manifest field of the wrong type): the message names the folder.
        """
        directory = Path(directory)
        manifest = read_manifest(directory)
        ct = _read_volume(directory, manifest["ct"])
        labels = _read_volume(directory, manifest["labels"]) if manifest["labels"] else None
        try:
            return cls(
                ct=ct,
                label_table=LabelTable.from_list(manifest["label_table"], source=MANIFEST),
                labels=labels,
                landmarks=manifest["landmarks"],
                directions=manifest["directions"],
                metadata=manifest["metadata"],
                directory=directory,
            )
        except SpinesimError as error:
            what = ": ".join(part for part in (error.path, error.where, error.problem) if part)
            raise _damaged(directory, what) from None


# Far above any real manifest (the built-in patient's is about 100 kB): a bigger one is refused unread.
_MANIFEST_LIMIT_BYTES = 64 * 1024 * 1024
# Manifest field -> (the JSON type it must have, what it holds), for the message when it does not.
_MANIFEST_FIELDS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "ct": (str, "the CT's file name"),
    "labels": ((str, type(None)), "the label map's file name or null"),
    "label_table": (list, "a list of {id, name, tissue}"),
    "landmarks": (dict, "a mapping of name to [x, y, z]"),
    "directions": (dict, "a mapping of name to [x, y, z]"),
    "metadata": (dict, "a mapping"),
}


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The checked manifest of the anatomy folder ``directory``: format, version and every field's type.

    Raises
    ------
    SpinesimError
        If the folder has no manifest, a manifest of another format version, or a damaged one.
    """
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise SpinesimError(f"not a spinesim anatomy folder (no {MANIFEST})", path=directory,
                            hint="import images with `spinesim anatomy import` first")
    manifest = _parse_manifest(directory, path)
    if manifest.get("format") != FORMAT_NAME:
        raise _damaged(directory, f"{MANIFEST}'s field 'format' is not {FORMAT_NAME!r}")
    version = manifest.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise SpinesimError(f"anatomy format version {version!r} is not supported "
                            f"(this spinesim reads version {FORMAT_VERSION})", path=path,
                            hint="re-import or regenerate the anatomy")
    for key, (kind, meaning) in _MANIFEST_FIELDS.items():
        if key not in manifest or not isinstance(manifest[key], kind):
            found = "missing" if key not in manifest else f"of type {type(manifest[key]).__name__}"
            raise _damaged(directory, f"{MANIFEST}'s field {key!r} is {found}, expected {meaning}")
    for key in ("ct", "labels"):
        name = manifest[key]
        if name is not None and (Path(name).name != name or name in ("", ".", "..")):
            raise _damaged(directory, f"{MANIFEST}'s field {key!r} is {name!r:.80}, not a file name in the folder")
    return manifest


def _parse_manifest(directory: Path, path: Path) -> dict[str, Any]:
    try:
        size = path.stat().st_size
        if size > _MANIFEST_LIMIT_BYTES:
            raise _damaged(directory, f"{MANIFEST} is {size / 2 ** 20:.0f} MB, far more than any anatomy needs "
                                      f"(limit {_MANIFEST_LIMIT_BYTES // 2 ** 20} MB)")
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise _damaged(directory, f"{MANIFEST} cannot be read ({error.strerror or error})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _damaged(directory, f"{MANIFEST} is not valid JSON ({error})") from None
    except RecursionError:
        raise _damaged(directory, f"{MANIFEST} is nested too deeply to be a manifest") from None
    if not isinstance(manifest, dict):
        raise _damaged(directory, f"{MANIFEST} holds a {type(manifest).__name__}, not a mapping of fields")
    return manifest


def _read_volume(directory: Path, name: str) -> Volume:
    """A volume file of the anatomy folder, its problems reported as damage to the folder."""
    path = directory / name
    if not path.is_file():
        raise _damaged(directory, f"its file {name} is missing")
    try:
        return read_nrrd(path)
    except SpinesimError as error:
        raise _damaged(directory, f"{name}: {error.problem}") from None
    except zlib.error as error:  # a corrupt deflate stream inside a gzip NRRD
        raise _damaged(directory, f"{name}: its compressed data is corrupt ({error})") from None


def _damaged(directory: Path, what: str) -> SpinesimError:
    return SpinesimError(f"this stored anatomy is damaged: {what}", path=directory, hint="re-import or delete it")
