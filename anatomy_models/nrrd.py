"""NRRD volumes (pynrrd): 3D scalar images in LPS (or RAS, converted on read), and 3D Slicer's
segmentation files (``.seg.nrrd``: named segments in one label image or in layers).

NRRD is also spinesim's own on-disk form for an anatomy's CT and label map: it records the space,
spacing, directions and origin, so a file is self-describing and opens in 3D Slicer.

A detached header (``.nhdr`` naming its ``data file``) is read too; the data file must lie in the
header's folder or below it. The header is checked before any voxel is read: its sizes must fit
:data:`~anatomy_models.volume.MAX_IMAGE_BYTES`, compressed data is decompressed no further than the
sizes declare (a small file cannot expand into gigabytes) and to the end of its stream (so a damaged
checksum is found), and NaN or infinite voxels are refused.
"""

from __future__ import annotations

import bz2
import colorsys
import io
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nrrd
import numpy as np
from scipy import ndimage

from anatomy_models.atomic import atomic_path
from anatomy_models.errors import SpinesimError
from anatomy_models.volume import MAX_IMAGE_BYTES, Volume, check_finite_voxels, check_image_size, check_spacing

NRRD_SUFFIXES = (".nrrd", ".nhdr")
# Everything a third-party header or data parser raises on a damaged file.
_READ_ERRORS = (nrrd.NRRDError, OSError, ValueError, EOFError, KeyError, TypeError, IndexError, OverflowError,
                StopIteration, zlib.error)
_DATA_FILE_FIELDS = ("data file", "datafile")
_SKIP_FIELDS = ("line skip", "lineskip", "byte skip", "byteskip")

# NRRD space names -> sign flips that take that space to LPS.
_SPACE_TO_LPS = {
    "left-posterior-superior": np.array([1.0, 1.0, 1.0]),
    "LPS": np.array([1.0, 1.0, 1.0]),
    "right-anterior-superior": np.array([-1.0, -1.0, 1.0]),
    "RAS": np.array([-1.0, -1.0, 1.0]),
    "left-anterior-superior": np.array([1.0, -1.0, 1.0]),
    "LAS": np.array([1.0, -1.0, 1.0]),
}


def is_nrrd_path(path: str | Path) -> bool:
    """True if ``path``'s name ends in ``.nrrd`` or ``.nhdr`` (a detached header)."""
    return Path(path).name.lower().endswith(NRRD_SUFFIXES)


def _data_file(header: dict[str, Any], path: Path) -> Path | None:
    """The detached data file a header names, which must lie in the header's folder (or below)."""
    name = next((header[key] for key in _DATA_FILE_FIELDS if key in header), None)
    if name is None:
        return None
    folder = path.resolve().parent
    data_path = (folder / str(name)).resolve()
    if not data_path.is_relative_to(folder):
        raise SpinesimError(f"the data file {str(name)!r} lies outside the header's folder", path=path,
                            where="field 'data file'", hint="keep the .nhdr and its data file in one folder")
    if not data_path.is_file():
        raise SpinesimError(f"the data file {str(name)!r} does not exist", path=path, where="field 'data file'",
                            hint="keep the .nhdr and its data file together")
    return data_path


def _decompressed(stream, encoding: str, limit_bytes: int, path: Path) -> bytes:
    """Decompress ``stream`` to its end, refusing output beyond ``limit_bytes`` (a compression bomb)."""
    decompressor = bz2.BZ2Decompressor() if encoding in ("bzip2", "bz2") else zlib.decompressobj(zlib.MAX_WBITS | 16)
    out = bytearray()
    while not decompressor.eof:
        chunk = stream.read(1 << 20)
        if not chunk:
            raise SpinesimError(f"the {encoding} data ends early; the file is truncated", path=path)
        out += decompressor.decompress(chunk, max(limit_bytes - len(out), 0) + 1)
        if len(out) > limit_bytes:
            raise SpinesimError(f"the {encoding} data holds more than the {limit_bytes} bytes its header declares",
                                path=path, hint="the header's sizes or the data are damaged; export the file again")
    return bytes(out)


def _read_data(header: dict[str, Any], stream, path: Path) -> np.ndarray:
    """The voxels of a NRRD whose header has been read from ``stream``, in NRRD axis order."""
    dtype = nrrd.reader._determine_datatype(header)  # the one place pynrrd maps its type names
    sizes = [int(n) for n in header["sizes"]]
    if int(header["dimension"]) != len(sizes):
        raise SpinesimError(f"field 'dimension' is {header['dimension']} but 'sizes' lists {len(sizes)}", path=path)
    check_image_size(sizes, dtype, path=path, where="field 'sizes'")
    encoding = str(header["encoding"]).lower()
    data_path = _data_file(header, path)
    source = open(data_path, "rb") if data_path is not None else stream
    try:
        if encoding not in ("gzip", "gz", "bzip2", "bz2"):
            plain = {key: value for key, value in header.items() if key not in _DATA_FILE_FIELDS}
            return nrrd.read_data(plain, source, str(path), index_order="F")
        for _ in range(int(header.get("line skip", header.get("lineskip", 0)))):
            source.readline()
        byte_skip = int(header.get("byte skip", header.get("byteskip", 0)))
        needed = int(np.prod(sizes, dtype=np.int64)) * dtype.itemsize
        limit = MAX_IMAGE_BYTES if byte_skip < 0 else needed + byte_skip
        data = _decompressed(source, encoding, limit, path)
    finally:
        if data_path is not None:
            source.close()
    raw = {key: value for key, value in header.items() if key not in _DATA_FILE_FIELDS + _SKIP_FIELDS}
    raw.update({"encoding": "raw", "byte skip": byte_skip})
    return nrrd.read_data(raw, io.BytesIO(data), str(path), index_order="F")


def read_nrrd_header(path: str | Path) -> dict[str, Any]:
    """The header of a NRRD file (``.nrrd`` or ``.nhdr``), with read errors made clear."""
    path = Path(path)
    if not path.is_file():
        raise SpinesimError("file not found", path=path)
    try:
        with open(path, "rb") as stream:
            return nrrd.read_header(stream)
    except _READ_ERRORS + (UnicodeDecodeError,) as error:
        raise SpinesimError(f"not a valid NRRD header ({type(error).__name__}: {error})", path=path) from None


def read_nrrd_header_and_data(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """The raw array (NRRD axis order, fastest axis first) and header, with read errors made clear."""
    path = Path(path)
    if not path.is_file():
        raise SpinesimError("file not found", path=path)
    try:
        with open(path, "rb") as stream:
            header = nrrd.read_header(stream)
            return _read_data(header, stream, path), header
    except nrrd.NRRDError as error:
        raise SpinesimError(f"not a valid NRRD file ({error})", path=path) from None
    except _READ_ERRORS as error:
        raise SpinesimError(f"cannot read NRRD data ({type(error).__name__}: {error}); the file may be truncated "
                            "or damaged", path=path) from None


def affine_from_header(header: dict[str, Any], path: str | Path, spatial_axes: list[int]) -> np.ndarray:
    """The 4x4 voxel -> LPS affine of a NRRD header's spatial axes."""
    space = header.get("space")
    if space is None:
        raise SpinesimError("missing field 'space' (the patient coordinate system)", path=path,
                            hint="save the volume with a space such as 'left-posterior-superior'")
    if not isinstance(space, str) or space not in _SPACE_TO_LPS:
        raise SpinesimError(f"field 'space' is {space!r}; only LPS, RAS and LAS patient spaces are supported", path=path)
    directions = header.get("space directions")
    if directions is None:
        raise SpinesimError("missing field 'space directions' (voxel spacing and orientation)", path=path)
    try:
        directions = np.asarray(directions, dtype=np.float64)[spatial_axes]
    except (ValueError, TypeError, IndexError):
        directions = np.full((0, 3), np.nan)
    if directions.shape != (3, 3) or not np.all(np.isfinite(directions)):
        raise SpinesimError(f"field 'space directions' must give three finite 3-vectors for the spatial axes, got "
                            f"{header.get('space directions')!r:.200}", path=path)
    if np.any(np.linalg.norm(directions, axis=1) <= 0):
        raise SpinesimError("field 'space directions' has a zero-length axis (spacing 0)", path=path)
    check_spacing(np.linalg.norm(directions, axis=1), path=path, where="field 'space directions'")
    try:
        origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=np.float64)
    except (ValueError, TypeError):
        origin = np.full(0, np.nan)
    if origin.shape != (3,) or not np.all(np.isfinite(origin)):
        raise SpinesimError(f"field 'space origin' must be three finite numbers, got "
                            f"{header.get('space origin')!r:.200}", path=path)
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
        If the file is missing, truncated or damaged, too large to hold in memory, not 3D scalar, holds NaN
        or infinite voxels, or lacks valid space fields (spacing within the accepted range).
    """
    data, header = read_nrrd_header_and_data(path)
    if data.ndim != 3:
        raise SpinesimError(f"expected a 3D scalar volume, found {data.ndim} dimensions {data.shape}", path=path,
                            hint="segmentations with a label-layer axis are read with the .seg.nrrd reader")
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise SpinesimError(f"voxel type {data.dtype} is not a scalar number type", path=path)
    check_finite_voxels(data, path=path)
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


# --------------------------------------------------------------------------- Slicer segmentations
# 3D Slicer's ``.seg.nrrd`` (Slicer developer guide, "Segmentation labelmap file format"): a NRRD
# whose custom fields ``SegmentN_Name``, ``SegmentN_LabelValue``, ``SegmentN_Layer``,
# ``SegmentN_Extent``, ... describe segment N. Non-overlapping segments share one 3D label image;
# overlapping ones are spread over layers along a leading list axis (4D). Files from Slicer before
# label values existed store one binary layer per segment and no LabelValue/Layer fields.
# ``SegmentN_Tags`` holds ``key:value|`` pairs; spinesim writes its tissue class there under
# ``TISSUE_TAG`` so that its own export reads back as the same structures (issue 22).
_SEGMENT_FIELD = re.compile(r"^Segment(\d+)_(\w+)$")
TISSUE_TAG = "spinesim.tissue"


@dataclass(frozen=True)
class Segmentation:
    """A Slicer segmentation flattened into one label map.

    Attributes
    ----------
    labels : Volume
        uint16 segment numbers (1 = the file's Segment0, 2 = Segment1, ...); 0 where no segment is.
    names : dict of int -> str
        Segment number -> the segment's name (``SegmentN_Name``, else its ID).
    overlapping_voxels : int
        Voxels claimed by more than one segment (layered files); the later segment keeps them.
    tissues : dict of int -> str
        Segment number -> the tissue class its ``spinesim.tissue`` tag names (segments spinesim wrote).
    """

    labels: Volume
    names: dict[int, str]
    overlapping_voxels: int = 0
    tissues: dict[int, str] = field(default_factory=dict)


def _segment_tags(text: str) -> dict[str, str]:
    """``SegmentN_Tags`` (``key:value|key:value|``) as a dict.

    Examples
    --------
    >>> _segment_tags("Segmentation.Status:inprogress|spinesim.tissue:cortical_bone|")
    {'Segmentation.Status': 'inprogress', 'spinesim.tissue': 'cortical_bone'}
    """
    pairs = (item.partition(":") for item in text.split("|"))
    return {key.strip(): value.strip() for key, separator, value in pairs if separator and key.strip()}


def is_segmentation_header(header: dict[str, Any]) -> bool:
    """True if a NRRD header carries Slicer ``SegmentN_`` fields."""
    return any(_SEGMENT_FIELD.match(key) for key in header)


def is_segmentation_file(path: str | Path) -> bool:
    """True if ``path`` is a NRRD file whose header describes Slicer segments (reads the header only)."""
    try:
        return is_segmentation_header(read_nrrd_header(path))
    except SpinesimError:
        return False


def _segment_int(header: dict[str, Any], key: str, default: int | None, path: Path) -> int:
    value = header.get(key)
    if value is None:
        if default is None:
            raise SpinesimError(f"missing field {key!r}", path=path)
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        raise SpinesimError(f"field {key!r} must be an integer, got {value!r}", path=path) from None


def read_segmentation(path: str | Path) -> Segmentation:
    """Read a Slicer ``.seg.nrrd`` (3D label form or 4D layered form) as one label map with names.

    Raises
    ------
    SpinesimError
        If the file has no segment fields, no voxel data, a layer or label value that does not exist,
        or voxel values no segment describes.
    """
    path = Path(path)
    data, header = read_nrrd_header_and_data(path)
    numbers = sorted({int(m.group(1)) for m in map(_SEGMENT_FIELD.match, header) if m})
    if not numbers:
        raise SpinesimError("no SegmentN_ fields: not a 3D Slicer segmentation", path=path,
                            hint="read a plain label map with --label-format instead")
    if data.size == 1:
        raise SpinesimError("the segmentation holds no voxel data (Slicer saves empty segmentations as one voxel)", path=path)
    if data.ndim == 3:
        layers, spatial_axes = data[np.newaxis], [0, 1, 2]
    elif data.ndim == 4:
        layers, spatial_axes = data, [1, 2, 3]
    else:
        raise SpinesimError(f"a segmentation must be 3D or 4D (layers first), found shape {data.shape}", path=path)
    if not np.issubdtype(layers.dtype, np.integer):
        raise SpinesimError(f"segmentation voxels must be integers, got {layers.dtype}", path=path)
    layered_without_values = data.ndim == 4 and not any(f"Segment{n}_LabelValue" in header for n in numbers)
    lookup: dict[int, dict[int, int]] = {}
    names: dict[int, str] = {}
    tissues: dict[int, str] = {}
    for number, index in enumerate(numbers, start=1):
        prefix = f"Segment{index}_"
        # Old layered files: segment N is layer N, stored as a binary mask.
        layer = _segment_int(header, prefix + "Layer", index if layered_without_values else 0, path)
        value = _segment_int(header, prefix + "LabelValue", 1, path)
        if not 0 <= layer < len(layers):
            raise SpinesimError(f"field '{prefix}Layer' is {layer} but the file has {len(layers)} layer(s)", path=path)
        if value <= 0:
            raise SpinesimError(f"field '{prefix}LabelValue' must be positive, got {value}", path=path)
        lookup.setdefault(layer, {})[value] = number
        names[number] = str(header.get(prefix + "Name") or header.get(prefix + "ID") or f"Segment_{index}").strip()
        tissue = _segment_tags(str(header.get(prefix + "Tags", ""))).get(TISSUE_TAG)
        if tissue:
            tissues[number] = tissue
    labels = np.zeros(layers.shape[1:], dtype=np.uint16)
    overlapping = 0
    for layer_index, layer in enumerate(layers):
        values = np.unique(layer)
        values = values[values != 0]
        described = lookup.get(layer_index, {})
        unknown = [int(v) for v in values if int(v) not in described]
        if unknown:
            raise SpinesimError(f"voxel value(s) {unknown[:10]} in layer {layer_index} belong to no segment "
                                "(no SegmentN_LabelValue names them)", path=path)
        if not described:
            continue
        table = np.zeros(int(max(values.max(initial=0), max(described))) + 1, dtype=np.uint16)
        for value, number in described.items():
            table[value] = number
        segment = table[layer]
        claimed = segment != 0
        overlapping += int(np.count_nonzero(claimed & (labels != 0)))
        labels[claimed] = segment[claimed]
    return Segmentation(Volume(labels, affine_from_header(header, path, spatial_axes)), names, overlapping, tissues)


def _segment_color(index: int) -> str:
    """A distinct display colour per segment (golden-angle hue steps), as Slicer's 'r g b' in 0..1."""
    hue = (index * 0.618033988749895) % 1.0
    return " ".join(f"{c:.4f}" for c in colorsys.hsv_to_rgb(hue, 0.55, 0.95))


def _terminology_entry(name: str) -> str:
    """Structure ``name``'s standard codes (:mod:`anatomy_models.terminology`) as 3D Slicer's
    ``TerminologyEntry`` tag, written by slicerio: the context is the DICOM master list, as the codes are.

    >>> _terminology_entry("L4.SAP.left")  # doctest: +NORMALIZE_WHITESPACE
    'Segmentation category and type - DICOM master list~SCT^91723000^Anatomical Structure~SCT^317665004^Superior
    articular process of vertebra~SCT^7771000^Left~Anatomic codes - DICOM master list~SCT^11994002^L4 vertebra~^^'
    """
    # Imported here: the codes come from pydicom, which loading an anatomy (this module's reader) never needs.
    from slicerio.segmentation import terminology_entry_to_string

    from anatomy_models.terminology import segment_codes

    coded = segment_codes(name)
    entry = {"contextName": "Segmentation category and type - DICOM master list",
             "category": _code_triplet(coded.category), "type": _code_triplet(coded.type),
             "anatomicContextName": "Anatomic codes - DICOM master list"}
    if coded.modifier is not None:
        entry["typeModifier"] = _code_triplet(coded.modifier)
    if coded.region is not None:
        entry["anatomicRegion"] = _code_triplet(coded.region)
    return terminology_entry_to_string(entry)


def _code_triplet(code) -> list[str]:
    return [code.scheme_designator, code.value, code.meaning]


def write_segmentation(labels: Volume, names: dict[int, str], path: str | Path, *,
                       tissues: dict[int, str] | None = None, compression_level: int = 6) -> Path:
    """Write a label map as a Slicer ``.seg.nrrd`` (3D form) so Slicer shows each label as a named segment.

    ``names`` maps each label id in ``labels`` to its segment name; ids without a name are refused.
    ``tissues`` (label id -> tissue class) go into each segment's tags (``spinesim.tissue:<class>|``):
    with them :func:`anatomy_models.labelmaps.read_label_map` reads the file back as the same structures.
    Each segment also carries its standard terminology (``TerminologyEntry``, :func:`_terminology_entry`),
    which Slicer shows and uses for the segment's meaning.
    """
    tissues = tissues or {}
    ids = np.unique(labels.array)
    ids = [int(i) for i in ids[ids != 0]]
    missing = [i for i in ids if i not in names]
    if missing:
        raise SpinesimError(f"label ids {missing[:10]} have no segment name", path=path)
    dtype = np.uint8 if max(names, default=0) < 256 else np.uint16
    extents = ndimage.find_objects(labels.array.astype(np.int64, copy=False))
    fields: dict[str, str] = {
        "Segmentation_MasterRepresentation": "Binary labelmap",
        "Segmentation_ContainedRepresentationNames": "Binary labelmap|",
        "Segmentation_ReferenceImageExtentOffset": "0 0 0",
    }
    for index, (label_id, name) in enumerate(sorted(names.items())):
        box = extents[label_id - 1] if label_id - 1 < len(extents) and extents[label_id - 1] is not None else None
        extent = " ".join(f"{s.start} {s.stop - 1}" for s in box) if box else "0 -1 0 -1 0 -1"
        fields.update({
            f"Segment{index}_ID": name, f"Segment{index}_Name": name, f"Segment{index}_NameAutoGenerated": "0",
            f"Segment{index}_LabelValue": str(label_id), f"Segment{index}_Layer": "0",
            f"Segment{index}_Color": _segment_color(index), f"Segment{index}_ColorAutoGenerated": "0",
            f"Segment{index}_Extent": extent,
            f"Segment{index}_Tags": (f"{TISSUE_TAG}:{tissues[label_id]}|" if label_id in tissues else "")
                                     + f"TerminologyEntry:{_terminology_entry(name)}|",
        })
    return write_nrrd(labels.with_array(labels.array.astype(dtype, copy=False)), path,
                      compression_level=compression_level, extra_fields=fields)
