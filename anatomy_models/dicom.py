"""DICOM CT: read a folder of slices (or an Enhanced CT file) into a volume in HU; write a CT series.

Reading
-------
:func:`scan_dicom` walks a folder recursively, reads each file's header only (pixels are skipped),
quietly ignores files that are not DICOM, and groups the slices by Series Instance UID into
:class:`DicomSeries`. :func:`read_dicom_series` picks one series (the caller's ``series_uid``, or
the only CT series) and reads it into a :class:`DicomCT`: a :class:`~anatomy_models.volume.Volume`
in Hounsfield units, de-identified metadata (see :mod:`anatomy_models.deidentify`) and the warnings
a user should see.

Geometry, and the decisions behind it:

- **Order.** Slices are sorted by their position along the slice normal (the cross product of the
  Image Orientation (Patient) row and column cosines), never by file name or Instance Number.
  Any orientation is accepted; an oblique stack gets an affine with those direction cosines.
- **Axes.** ``i`` runs along a row (direction = the row cosines, step = the column spacing),
  ``j`` down a column, ``k`` along the normal. The array is filled slice by slice into a buffer of
  shape (k, j, i), as the files store it, and handed out as the transposed view [i, j, k]; it is
  therefore Fortran-ordered (``np.ascontiguousarray`` makes a C-ordered copy when a kernel needs one).
- **Values.** HU = stored value x Rescale Slope + Rescale Intercept, per slice. When every slope
  is 1 and every intercept an integer the volume stays int16 (values beyond the int16 range are
  clipped, with a warning); otherwise it is float32.
- **Spacing.** Gaps between neighbouring slices within 1% of the most common gap (or 0.01 mm) are jitter:
  the grid takes the mean spacing. A missing slice or uneven spacing is resampled, by linear
  interpolation between the two neighbouring slices, onto a regular grid with the most common gap, and a
  warning says so. A gap wider than 3 such gaps and 10 mm is refused: too much would be invented.
- **Duplicates.** Two slices at the same position with identical pixels: one is dropped (warning).
  With different pixels the series holds several acquisitions or phases: refused.
- **Gantry tilt.** When slice positions do not advance along the normal (a tilted gantry shears
  the stack), each slice is shifted within its own plane onto an orthogonal grid (bilinear, no
  mixing between slices) that is widened to hold every slice, so nothing is cropped. An orthogonal
  grid is what every consumer expects: ITK/SimpleITK images, NIfTI's qform, a DICOM export, and
  spinesim's own ray casters, which step along the grid axes. The tilt angle goes into the metadata.
- **Enhanced CT** (multi-frame) files are read frame by frame from the per-frame and shared
  functional groups (plane position and orientation, pixel measures, pixel value transformation).
- **Compressed pixels** (JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE) are decoded by
  pydicom's pixel handlers with GDCM (BSD); 12-bit JPEG extended needs the optional ``jpeg12`` extra
  (pylibjpeg-libjpeg, GPL-3.0, so not installed by default). Uncompressed little-endian 16-bit pixels
  are read straight from the file into the output array.
- **Limits.** Before a voxel is allocated the whole grid must fit
  :data:`~anatomy_models.volume.MAX_IMAGE_BYTES`; pixel and slice spacing must lie within
  ``MIN_SPACING_MM..MAX_SPACING_MM``; sequences may nest :data:`MAX_SEQUENCE_DEPTH` deep. Bits Stored
  must not exceed Bits Allocated, Rescale Slope and Intercept must be finite and at most
  :data:`MAX_ABS_HU` in size, and the HU of a float volume must be finite and within that bound.
- **Folders.** A subfolder that cannot be read, or a DICOM file whose header is damaged, is refused,
  naming it: importing the readable part of a patient silently would be worse. Asked for
  (``readable_only``, ``spinesim anatomy import --readable-only``), they are skipped and counted in the
  import's warnings by what went wrong (not by name: file and folder names can carry a patient's name);
  the series read must still be whole (a missing slice inside it is a gap,
  refused as always).
- **Transfer syntaxes.** Little- and big-endian, implicit and explicit VR, deflated, and the compressed
  ones below. Only native little-endian 16-bit pixels are read without pydicom.
- **Modality.** Only CT is read: the product needs Hounsfield units, which MR, PET or secondary
  captures do not have. Other series are listed and refused with a message that says what they are.

Writing
-------
:func:`write_dicom_series` writes a volume (or an anatomy's CT) as a CT Image Storage series: one
file per slice, int16 HU (slope 1, intercept 0), full geometry, fresh UIDs, an anonymous patient,
and the de-identification mark of the Basic Profile. The folder appears whole or not at all.
"""

from __future__ import annotations

import os
import re
import struct
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator
from warnings import catch_warnings, simplefilter, warn_explicit

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.pixels import pixel_array
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds
from scipy import ndimage

from anatomy_models.atomic import atomic_directory
from anatomy_models.deidentify import DUMMY, identifying_elements, mark_deidentified, safe_facts
from anatomy_models.errors import SpinesimError
from anatomy_models.tissues import TISSUES
from anatomy_models.volume import MAX_SPACING_MM, MIN_SPACING_MM, Volume, check_image_size

if TYPE_CHECKING:
    from anatomy_models.anatomy import Anatomy

ProgressCallback = Callable[[float, float, str], None]

CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2")
ENHANCED_CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2.1")
_PIXEL_DATA_TAG = (0x7FE0, 0x0010)
_NATIVE_LITTLE_ENDIAN = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"UN", b"UC", b"UR", b"UT", b"SQ", b"SV", b"UV"}

# Geometry tolerances (mm or dimensionless), chosen well above the rounding of DICOM's 16-character
# decimal strings and well below anything visible at CT resolution.
_ORIENTATION_TOLERANCE = 1e-3     # unit length / orthogonality / agreement of direction cosines
_SAME_POSITION_MM = 0.01          # two slices closer than this along the normal share a position
_JITTER_FRACTION = 0.01           # spacing deviation tolerated as rounding jitter (fraction of gap)
_JITTER_MM = 0.01                 # ... or this many mm, whichever is larger
_TILT_FRACTION_OF_PIXEL = 0.05    # in-plane slice offsets below this fraction of a pixel are ignored
_MAX_FILLED_GAPS = 3.0            # refuse gaps wider than this many typical gaps ...
_MAX_FILLED_GAP_MM = 10.0         # ... and wider than this many mm
_AIR_HU = TISSUES["air"].hu       # what fills grid regions no slice covers (gantry tilt)
_IN_DEFLATED_STREAM = (-1, -1)    # pixel data inside a deflated stream: checked when pydicom decodes it
# What pydicom raises on a damaged header.
_HEADER_ERRORS = (InvalidDicomError, BytesLengthException, EOFError, ValueError, KeyError, struct.error, TypeError,
                  AttributeError, IndexError, OverflowError, NotImplementedError, LookupError)

#: Deepest nesting of sequences read (Enhanced CT's functional groups nest 3 deep); deeper files are refused
#: before anything walks them.
MAX_SEQUENCE_DEPTH = 16
#: Largest Rescale Slope / Intercept magnitude, and largest |HU| of a float volume: no tissue or metal
#: comes near (metal reaches a few 10 000 HU), so beyond it the header or the pixels are damaged.
MAX_ABS_HU = 100_000.0


# ---------------------------------------------------------------------------------------- pydicom's warnings
_PYDICOM_FOLDER = str(Path(pydicom.__file__).parent)
# pydicom's warnings about a value that breaks its VR's rules (the validators of pydicom/valuerep.py).
_VALUE_RULE = re.compile(r"exceeds the maximum|invalid value|is not valid for elements with a VR|"
                         r"cannot be assigned to a tag with VR|must be <= \d+ characters", re.IGNORECASE)
VALUE_RULE_NOTE = ("header values break the DICOM standard's rules for their kind (too long, or malformed); "
                   "they were read as written")


def _in_our_words(text: str) -> str:
    """A pydicom warning as spinesim says it: value-rule warnings as one sentence, others with any quoted
    text removed (a quoted header value may be a name).

    Examples
    --------
    >>> _in_our_words("Invalid value for VR DA: '2024-13-45'.") == VALUE_RULE_NOTE
    True
    >>> _in_our_words("Unknown element 'DOE^JANE' skipped")
    "the DICOM reader noted: Unknown element '...' skipped"
    """
    if _VALUE_RULE.search(text):
        return VALUE_RULE_NOTE
    return "the DICOM reader noted: " + re.sub(r"'[^']*'|\"[^\"]*\"", "'...'", text)[:200]


@contextmanager
def _pydicom_notes(found: list[str]) -> Iterator[None]:
    """Collect pydicom's warnings raised inside into ``found``, in our words, instead of letting them print:
    on a terminal they are noise in pydicom's terms. Other packages' warnings pass on unchanged."""
    with catch_warnings(record=True) as caught:
        simplefilter("always")
        yield
    for caught_warning in caught:
        if caught_warning.filename.startswith(_PYDICOM_FOLDER):
            found.append(_in_our_words(str(caught_warning.message)))
        else:
            warn_explicit(caught_warning.message, caught_warning.category, caught_warning.filename,
                          caught_warning.lineno)


def summarised_notes(notes: list[str]) -> list[str]:
    """Each distinct note once, with how many times it came when more than once.

    Examples
    --------
    >>> summarised_notes([VALUE_RULE_NOTE] * 3)[0].endswith("(3 times)")
    True
    """
    return [note if count == 1 else f"{note} ({count} times)" for note, count in Counter(notes).items()]


# ---------------------------------------------------------------------------------------- scanning
@dataclass(frozen=True, slots=True)
class _File:
    """Pixel-format facts of one DICOM file, shared by its frames."""

    path: Path
    transfer_syntax: UID
    bits_allocated: int
    bits_stored: int
    signed: bool
    pixel_offset: int | None  # start of native little-endian 16-bit pixel bytes; None: decode via pydicom


@dataclass(frozen=True, slots=True)
class _Frame:
    """One slice: a single-frame file or one frame of an Enhanced CT file."""

    file: _File
    index: int
    rows: int
    columns: int
    position: np.ndarray | None      # Image Position (Patient), LPS mm
    orientation: np.ndarray | None   # Image Orientation (Patient), 6 direction cosines
    pixel_spacing: np.ndarray | None  # (row spacing, column spacing), mm
    slope: float
    intercept: float
    problem: str | None              # the first thing wrong with this frame's header


@dataclass
class DicomSeries:
    """One series found by :func:`scan_dicom` (headers only; no pixels read yet).

    ``description`` is already de-identified; ``facts`` are the safe technical facts of its first
    file (:func:`anatomy_models.deidentify.safe_facts`).
    """

    uid: str
    modality: str
    description: str
    number: int | None
    sop_class: str
    transfer_syntax: str
    facts: dict[str, Any]
    burned_in_annotation: bool = False
    frames: list[_Frame] = field(default_factory=list)
    slice_thickness_mm: float | None = None
    reader_notes: list[str] = field(default_factory=list)  # pydicom's warnings, in our words (_pydicom_notes)

    @property
    def slice_count(self) -> int:
        return len(self.frames)

    def summary(self) -> str:
        """One line: modality, description, slices, size, spacing and orientation."""
        text = f"{self.modality or '?'} '{self.description}' {self.slice_count} slice(s)"
        first = self.frames[0]
        text += f", {first.columns} x {first.rows} pixels"
        if self.modality.upper() != "CT":
            return text
        if all(f.problem is None for f in self.frames):
            spacing = first.pixel_spacing
            positions = np.array([f.position for f in self.frames])
            normal = _normal(first.orientation)
            gaps = np.diff(np.sort(positions @ normal))
            gap = f"{_typical_gap(gaps):.3g}" if len(gaps) else "?"
            if len(gaps) and np.ptp(gaps) > max(_JITTER_MM, _JITTER_FRACTION * _typical_gap(gaps)):
                gap += f" (uneven: {gaps.min():.3g}..{gaps.max():.3g})"
            direction = np.column_stack([first.orientation[:3], first.orientation[3:], normal])
            text += f", {spacing[1]:.3g} x {spacing[0]:.3g} x {gap} mm, {_orientation_code(direction)}"
        else:
            text += f", geometry unreadable ({next(f.problem for f in self.frames if f.problem)})"
        return text


def _normal(orientation: np.ndarray) -> np.ndarray:
    normal = np.cross(orientation[:3], orientation[3:])
    return normal / np.linalg.norm(normal)


def _orientation_code(direction: np.ndarray) -> str:
    return Volume.from_spacing(np.zeros((1, 1, 1)), (1, 1, 1), direction=direction).orientation_code


def _unreadable_folder(error: OSError) -> None:
    raise SpinesimError(f"cannot read this folder ({error.strerror}); importing the rest would miss part of the "
                        "patient", path=error.filename,
                        hint="make the folder readable, or import what is readable with --readable-only")


def _candidate_files(path: Path, skipped: list[str] | None = None) -> list[Path]:
    """Every file under ``path`` (or ``path`` itself); an unreadable subfolder raises, naming it, or with a
    ``skipped`` list is noted there and left out."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SpinesimError("no such file or folder", path=path)

    def note(error: OSError) -> None:
        skipped.append(f"skipped a folder that could not be read ({error.strerror})")

    files = []
    for folder, _, names in os.walk(path, onerror=_unreadable_folder if skipped is None else note):
        files.extend(Path(folder, name) for name in names)
    return sorted(p for p in files if p.is_file())


def _looks_like_dicom(head: bytes) -> str | None:
    """"preamble" for a Part 10 file, "raw" for a dataset without preamble, None for anything else."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "preamble"
    # Old exports without the Part 10 header start straight with a group 0008 element.
    if len(head) >= 8 and head[:2] == b"\x08\x00":
        return "raw"
    return None


def is_dicom_file(path: str | Path) -> bool:
    """Whether ``path`` looks like a DICOM file (by its first bytes; nothing else is read)."""
    try:
        with open(path, "rb") as handle:
            return _looks_like_dicom(handle.read(132)) is not None
    except OSError:
        return False


def contains_dicom(path: str | Path, *, readable_only: bool = False) -> bool:
    """Whether ``path`` is a DICOM file or a folder with at least one DICOM file in it (an unreadable
    subfolder raises, unless ``readable_only``)."""
    path = Path(path)
    if path.is_file():
        return is_dicom_file(path)
    return any(is_dicom_file(p) for p in _candidate_files(path, [] if readable_only else None))


def _pixel_data_location(handle, transfer_syntax: UID) -> tuple[int, int] | None:
    """(offset, length) of the Pixel Data value that follows the header just read, or None.

    A deflated file's pixel data lies inside its compressed stream: :data:`_IN_DEFLATED_STREAM`.
    """
    if transfer_syntax.is_deflated:
        return _IN_DEFLATED_STREAM
    endian = "<" if transfer_syntax.is_little_endian else ">"
    start = handle.tell()
    head = handle.read(12)
    if len(head) < 8 or struct.unpack(endian + "HH", head[:4]) != _PIXEL_DATA_TAG:
        return None
    if transfer_syntax.is_implicit_VR:
        return start + 8, struct.unpack(endian + "I", head[4:8])[0]
    if head[4:6] in _LONG_VRS:
        return start + 12, struct.unpack(endian + "I", head[8:12])[0]
    return start + 8, struct.unpack(endian + "H", head[6:8])[0]


def _int_field(dataset: Dataset, keyword: str, default: int) -> int | str:
    """An integer header field (``default`` when absent or empty), or a problem description."""
    value = dataset.get(keyword)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        tag = tag_for_keyword(keyword)
        return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X}) is not one integer: {str(value)[:60]!r}"


def _floats(dataset: Dataset, keyword: str, count: int) -> np.ndarray | str:
    """``count`` finite numbers from ``dataset.keyword``, or a problem description."""
    tag = tag_for_keyword(keyword)
    name = f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"
    if keyword not in dataset or dataset[keyword].value in (None, ""):
        return f"missing {name}"
    try:
        value = dataset[keyword].value
        values = np.array([float(v) for v in (value if hasattr(value, "__len__") and not isinstance(value, str)
                                              else [value])], dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return f"{name} is not a list of numbers: {str(dataset[keyword].value)[:80]!r}"
    if values.shape != (count,):
        return f"{name} must hold {count} numbers, found {len(values)}"
    if not np.all(np.isfinite(values)):
        return f"{name} holds NaN or infinity: {values.tolist()}"
    return values


def _first_item(dataset: Dataset | None, keyword: str) -> Dataset | None:
    if dataset is None or keyword not in dataset or not dataset[keyword].value:
        return None
    return dataset[keyword].value[0]


def _frame_geometry(geometry: Dataset, spacing_source: Dataset, orientation_source: Dataset) -> tuple:
    """Position, orientation and pixel spacing from the given datasets, plus the first problem."""
    position = _floats(geometry, "ImagePositionPatient", 3)
    orientation = _floats(orientation_source, "ImageOrientationPatient", 6)
    spacing = _floats(spacing_source, "PixelSpacing", 2)
    problem = next((p for p in (position, orientation, spacing) if isinstance(p, str)), None)
    if problem is None:
        row, column = orientation[:3], orientation[3:]
        if (abs(np.linalg.norm(row) - 1) > _ORIENTATION_TOLERANCE or abs(np.linalg.norm(column) - 1) > _ORIENTATION_TOLERANCE
                or abs(row @ column) > _ORIENTATION_TOLERANCE):
            problem = (f"ImageOrientationPatient (0020,0037) must be two perpendicular unit vectors, "
                       f"found {orientation.tolist()}")
        elif np.any(spacing < MIN_SPACING_MM) or np.any(spacing > MAX_SPACING_MM):
            problem = (f"PixelSpacing (0028,0030) must be two positive numbers within {MIN_SPACING_MM:g}.."
                       f"{MAX_SPACING_MM:g} mm, found {spacing.tolist()}")
    return (None if isinstance(position, str) else position, None if isinstance(orientation, str) else orientation,
            None if isinstance(spacing, str) else spacing, problem)


def _rescale(dataset: Dataset | None, fallback: Dataset) -> tuple[float, float, str | None]:
    """Rescale slope and intercept (1 and 0 when absent), and a problem when they are unusable."""
    source = dataset if dataset is not None and "RescaleSlope" in dataset else fallback
    slope, intercept = source.get("RescaleSlope"), source.get("RescaleIntercept")
    try:
        slope = 1.0 if slope in (None, "") else float(slope)
        intercept = 0.0 if intercept in (None, "") else float(intercept)
    except (TypeError, ValueError, OverflowError):
        slope = intercept = float("nan")
    if abs(intercept) <= MAX_ABS_HU and 0 < abs(slope) <= MAX_ABS_HU:
        return slope, intercept, None
    return slope, intercept, (f"RescaleSlope/RescaleIntercept (0028,1053/1052) must be numbers with a non-zero "
                              f"slope, found {str(source.get('RescaleSlope'))[:40]!r}/"
                              f"{str(source.get('RescaleIntercept'))[:40]!r} (both at most {MAX_ABS_HU:g} in size)")


def _frames_of(dataset: Dataset, file: _File) -> list[_Frame]:
    """The slices a header describes: one for a classic file, one per frame for Enhanced CT."""
    rows, columns = _int_field(dataset, "Rows", 0), _int_field(dataset, "Columns", 0)
    size_problem = next((p for p in (rows, columns) if isinstance(p, str)), None)
    rows, columns = (0, 0) if size_problem else (rows, columns)
    if "PerFrameFunctionalGroupsSequence" not in dataset:
        slope, intercept, rescale_problem = _rescale(None, dataset)
        frames = _int_field(dataset, "NumberOfFrames", 1)
        frames = 1 if isinstance(frames, str) else frames
        position, orientation, spacing, problem = _frame_geometry(dataset, dataset, dataset)
        problem = size_problem or problem
        if frames > 1:
            problem = problem or (f"holds {frames} frames but no per-frame positions "
                                  "(PerFrameFunctionalGroupsSequence)")
        problem = problem or rescale_problem
        return [_Frame(file, 0, rows, columns, position, orientation, spacing, slope, intercept, problem)]
    shared = _first_item(dataset, "SharedFunctionalGroupsSequence")
    result = []
    for index, per_frame in enumerate(dataset.PerFrameFunctionalGroupsSequence):
        def group(keyword: str) -> Dataset:
            return _first_item(per_frame, keyword) or _first_item(shared, keyword) or Dataset()

        position, orientation, spacing, problem = _frame_geometry(
            group("PlanePositionSequence"), group("PixelMeasuresSequence"), group("PlaneOrientationSequence"))
        frame_slope, frame_intercept, rescale_problem = _rescale(
            _first_item(per_frame, "PixelValueTransformationSequence")
            or _first_item(shared, "PixelValueTransformationSequence"), dataset)
        problem = size_problem or problem or rescale_problem
        if problem is not None:
            problem = f"frame {index + 1}: {problem}"
        result.append(_Frame(file, index, rows, columns, position, orientation, spacing, frame_slope,
                             frame_intercept, problem))
    return result


def _is_ct(dataset: Dataset) -> bool:
    return str(dataset.get("Modality", "") or "").strip().upper() == "CT"


def _listed_frames(dataset: Dataset, file: _File) -> list[_Frame]:
    """The frames of an object that is listed, never imported (not CT): counted, their geometry not read."""
    count, rows, columns = (_int_field(dataset, keyword, default)
                            for keyword, default in (("NumberOfFrames", 1), ("Rows", 0), ("Columns", 0)))
    count, rows, columns = (0 if isinstance(value, str) else value for value in (count, rows, columns))
    return [_Frame(file, index, rows, columns, None, None, None, 1.0, 0.0, "not CT, so not read")
            for index in range(max(count, 1))]


def _top_level(dataset: Dataset) -> Dataset:
    """``dataset`` without its sequences (whose items are not parsed for an object that is only listed)."""
    shallow = Dataset()
    for tag in dataset.keys():
        if dataset.get_item(tag).VR not in ("SQ", "UN", None):
            shallow.add(dataset[tag])
    return shallow


def _sequence_depth(dataset: Dataset) -> int:
    """How deep the sequences of ``dataset`` nest (0 without any), walked iteratively up to MAX_SEQUENCE_DEPTH + 1.

    The dataset's own elements (and its file meta) are converted on the way, so that a damaged value raises
    here, while the header is read, and not later wherever it is first used (pydicom converts values lazily).
    Inside sequences only the sequences are parsed: a segmentation's per-frame functional groups hold
    thousands of items (converting all their values took 24 s of CPU for a 200-slice SEG); they are converted
    where they are read, under the same damaged-file error.
    """
    deepest = 0
    meta = getattr(dataset, "file_meta", None)
    pending = [(dataset, 0)] + ([(meta, 0)] if meta is not None else [])
    while pending:
        current, depth = pending.pop()
        deepest = max(deepest, depth)
        if depth > MAX_SEQUENCE_DEPTH:
            break
        for tag in current.keys():
            # A raw element without a VR (implicit VR) or of unknown VR may hold a sequence: converting it tells.
            if depth > 0 and current.get_item(tag).VR not in ("SQ", "UN", None):
                continue
            element = current[tag]
            if element.VR == "SQ":
                pending.extend((item, depth + 1) for item in element.value or ())
    return deepest


def _damaged_header(path: Path, error: BaseException) -> SpinesimError:
    return SpinesimError(f"cannot read the DICOM header ({type(error).__name__}: {str(error)[:200]}); "
                         "the file is truncated or damaged", path=path,
                         hint="copy it again from the source, or remove it from the folder")


def _read_header(path: Path) -> tuple[Dataset, tuple[int, int] | None] | None:
    """The header of a DICOM file and where its pixel data lies; None for files that are not DICOM."""
    try:
        with open(path, "rb") as handle:
            kind = _looks_like_dicom(handle.read(132))
            if kind is None:
                return None
            handle.seek(0)
            try:
                dataset = pydicom.dcmread(handle, stop_before_pixels=True, force=kind == "raw")
                # Only CT is ever imported (choose_series): the sequences of anything else (a segmentation's
                # thousands of per-frame items) are never parsed, so they cannot nest too deep for us.
                depth = _sequence_depth(dataset) if _is_ct(dataset) else 0
                shallow = depth <= MAX_SEQUENCE_DEPTH
                location = _pixel_data_location(handle, _transfer_syntax(dataset)) if shallow else None
            except RecursionError:
                raise SpinesimError(f"sequences nest deeper than {MAX_SEQUENCE_DEPTH} levels; the file is damaged or "
                                    "hostile", path=path, hint="remove it from the folder") from None
            except _HEADER_ERRORS as error:
                if kind == "raw":
                    return None
                raise _damaged_header(path, error) from None
            if depth > MAX_SEQUENCE_DEPTH:
                raise SpinesimError(f"sequences nest deeper than {MAX_SEQUENCE_DEPTH} levels; the file is damaged or "
                                    "hostile", path=path, hint="remove it from the folder")
    except OSError as error:
        raise SpinesimError(f"cannot read the file ({error.strerror})", path=path) from None
    return dataset, location


def _transfer_syntax(dataset: Dataset) -> UID:
    """The file's transfer syntax; for a file without meta header, the encoding pydicom found."""
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID"):
        return UID(meta.TransferSyntaxUID)
    implicit, little = dataset.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _bits_problem(bits_allocated: int, bits_stored: int, samples: int, rows: int, columns: int) -> str | None:
    if bits_allocated not in (8, 16, 32):
        return f"BitsAllocated (0028,0100) is {bits_allocated}; a CT image has 8, 16 or 32"
    if not 1 <= bits_stored <= bits_allocated:
        return (f"BitsStored (0028,0101) is {bits_stored} but must lie within 1..BitsAllocated (0028,0100) "
                f"= {bits_allocated}")
    if samples != 1:
        return f"SamplesPerPixel (0028,0002) is {samples}; a CT image is grey-scale (1)"
    if rows < 1 or columns < 1:
        return f"the image has {rows} x {columns} pixels (Rows x Columns); both must be at least 1"
    return None


def _file_facts(path: Path, dataset: Dataset, location: tuple[int, int] | None) -> tuple[_File, str | None]:
    """The file's pixel format, and a problem when its pixel data is missing, cut short or described wrongly."""
    syntax = _transfer_syntax(dataset)
    fields = [_int_field(dataset, keyword, default) for keyword, default in (
        ("BitsAllocated", 16), ("BitsStored", 0), ("PixelRepresentation", 0), ("Rows", 0), ("Columns", 0),
        ("NumberOfFrames", 1), ("SamplesPerPixel", 1))]
    problem = next((f for f in fields if isinstance(f, str)), None)
    if problem is not None:
        return _File(path, syntax, 16, 16, False, None), problem
    bits_allocated, bits_stored, representation, rows, columns, frames, samples = fields
    bits_stored = bits_stored or bits_allocated
    frames = max(frames, 1)
    problem = _bits_problem(bits_allocated, bits_stored, samples, rows, columns)
    file = _File(path, syntax, bits_allocated, bits_stored, representation == 1, None)
    if problem is not None:
        return file, problem
    if location is None:
        return file, "the file ends before its pixel data (it is truncated or damaged)"
    start, length = location
    if location == _IN_DEFLATED_STREAM or length == 0xFFFFFFFF:  # checked when pydicom decodes it
        return file, None
    needed = rows * columns * frames * samples * bits_allocated // 8
    on_disk = os.path.getsize(path) - start
    if min(length, on_disk) < needed:
        return file, (f"the pixel data holds {min(length, on_disk)} bytes but {rows} x {columns} pixels x "
                      f"{frames} frame(s) at {bits_allocated} bits need {needed}; the file is truncated")
    if syntax in _NATIVE_LITTLE_ENDIAN and bits_allocated == 16:
        file = replace(file, pixel_offset=start)
    return file, None


def scan_dicom(path: str | Path, *, progress: ProgressCallback | None = None,
               readable_only: bool = False) -> list[DicomSeries]:
    """The DICOM series in a file or folder (searched recursively), headers only.

    Files that are not DICOM are skipped quietly; so are DICOM files that hold no image series
    (DICOMDIR, structured reports). A file that claims to be DICOM but cannot be read raises, and so
    does an unreadable subfolder, unless ``readable_only``: then both are skipped, and every series
    found carries a note for each one skipped, by what went wrong (``reader_notes``).

    Parameters
    ----------
    path : str or Path
        A folder (searched recursively) or a single DICOM file.
    progress : callable, optional
        Called as ``progress(files_done, files_total, message)``.
    readable_only : bool
        Skip (and note) unreadable subfolders and damaged DICOM files instead of refusing.

    Returns
    -------
    list of DicomSeries
        Sorted by series number, then UID.

    Raises
    ------
    SpinesimError
        If the folder is empty or holds no DICOM image, or a DICOM file is unreadable.
    """
    path = Path(path)
    skipped: list[str] | None = [] if readable_only else None
    files = _candidate_files(path, skipped)
    if not files:
        raise SpinesimError("the folder is empty", path=path, hint="give the folder that holds the DICOM files")
    series: dict[str, DicomSeries] = {}
    for done, file_path in enumerate(files):
        if progress is not None and done % 16 == 0:
            progress(done, len(files), "scanning files")
        notes: list[str] = []
        try:
            with _pydicom_notes(notes):
                header = _read_header(file_path)
                entry = None if header is None else _scanned(header, file_path, series)
        except _HEADER_ERRORS as error:  # a damaged value inside a sequence, converted where it is read
            error = _damaged_header(file_path, error)
            if skipped is None:
                raise error from None
            skipped.append(f"skipped a damaged DICOM file ({error.problem})")
            continue
        except SpinesimError as error:
            if skipped is None:
                raise
            skipped.append(f"skipped a damaged DICOM file ({error.problem})")
            continue
        if entry is not None:
            entry.reader_notes += notes
    for entry in series.values():  # named by what went wrong, not by file: names can carry a patient's name
        entry.reader_notes += skipped or []
    if progress is not None:
        progress(len(files), len(files), "scanning files")
    if not series:
        raise SpinesimError(f"no DICOM images among the {len(files)} file(s) found", path=path,
                            hint="give the folder that holds the CT slices (.dcm files or DICOM files without extension)")
    return sorted(series.values(), key=lambda s: (s.number if s.number is not None else 1 << 30, s.uid))


def _scanned(header: tuple[Dataset, tuple[int, int] | None], file_path: Path,
             series: dict[str, DicomSeries]) -> DicomSeries | None:
    """Add the frames of one file's ``header`` to its series in ``series``; the series, or None for a file that
    holds no image (DICOMDIR, reports, presentation states)."""
    dataset, location = header
    uid = str(dataset.get("SeriesInstanceUID", "") or "")
    if not uid or ("Rows" not in dataset and location is None):
        meta = getattr(dataset, "file_meta", {})
        sop_class = str(dataset.get("SOPClassUID", "") or meta.get("MediaStorageSOPClassUID", ""))
        if sop_class in (CT_IMAGE_STORAGE, ENHANCED_CT_IMAGE_STORAGE):
            raise SpinesimError("a CT image file without series UID or pixel data; it is truncated or damaged",
                                path=file_path, hint="copy it again from the source, or remove it from the folder")
        return None  # DICOMDIR, reports, presentation states: nothing to read
    file, problem = _file_facts(file_path, dataset, location)
    ct = _is_ct(dataset)
    frames = _frames_of(dataset, file) if ct else _listed_frames(dataset, file)
    if problem is not None:
        frames = [replace(f, problem=problem) for f in frames]
    if uid not in series:
        facts = safe_facts(dataset if ct else _top_level(dataset))
        number = dataset.get("SeriesNumber")
        series[uid] = DicomSeries(
            uid=uid, modality=str(dataset.get("Modality", "") or ""),
            description=str(facts.get("series_description", "")),
            number=int(number) if number not in (None, "") else None,
            sop_class=str(UID(str(dataset.get("SOPClassUID", ""))).name),
            transfer_syntax=str(file.transfer_syntax.name), facts=facts,
            slice_thickness_mm=facts.get("slice_thickness_mm"))
    entry = series[uid]
    entry.burned_in_annotation |= str(dataset.get("BurnedInAnnotation", "")).upper() == "YES"
    entry.frames.extend(frames)
    return entry


def choose_series(found: list[DicomSeries], series_uid: str | None, path: str | Path) -> DicomSeries:
    """The series to read: the one named by ``series_uid`` (its UID or its number in the listing),
    else the only CT series.

    Raises
    ------
    SpinesimError
        If the named series does not exist, is not CT, or no single CT series can be chosen.
    """
    listing = "; ".join(f"[{n}] {s.uid}: {s.summary()}" for n, s in enumerate(found, 1))
    if series_uid is not None:
        chosen = [s for s in found if s.uid == series_uid]
        if not chosen and series_uid.isdigit() and 1 <= int(series_uid) <= len(found):
            chosen = [found[int(series_uid) - 1]]
        if not chosen:
            raise SpinesimError(f"no series {series_uid!r} here; the series are: {listing}", path=path,
                                hint="pass one of these UIDs (or its number in brackets) with --series")
        series = chosen[0]
    else:
        ct = [s for s in found if s.modality == "CT"]
        if len(ct) > 1:
            raise SpinesimError(f"{len(ct)} CT series found, choose one: {listing}", path=path,
                                hint="pass its UID (or its number in brackets) with --series UID "
                                     "(series_uid= in Python)")
        if not ct:
            raise SpinesimError(f"no CT series here; found: {listing}", path=path,
                                hint="spinesim needs CT in Hounsfield units; give a folder with a CT series")
        series = ct[0]
    if series.modality != "CT":
        raise SpinesimError(f"series {series.uid} is {series.modality or 'of unknown modality'}, not CT: "
                            f"{series.summary()}", path=path,
                            hint="spinesim needs CT in Hounsfield units, which other modalities do not have")
    if series.burned_in_annotation:
        raise SpinesimError(f"series {series.uid} is marked Burned In Annotation = YES: its pixels may show "
                            "the patient's details, which spinesim cannot remove", path=path,
                            hint="use a series without burned-in text, or clean the pixels and clear the flag")
    return series


# ---------------------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class _Stack:
    """Sorted slices and the grid they define (before any resampling)."""

    frames: list[_Frame]                 # one per distinct position, sorted along the normal
    duplicates: list[list[_Frame]]       # frames at the same position as frames[k] (usually empty)
    distances: np.ndarray                # position of each slice along the normal, mm
    offsets: np.ndarray                  # in-plane offset of each slice from the first (row, column axes), mm
    row: np.ndarray
    column: np.ndarray
    normal: np.ndarray
    pixel_spacing: np.ndarray            # (row spacing, column spacing), mm


def _check_consistent(frames: list[_Frame], path: Path) -> None:
    for frame in frames:
        if frame.problem is not None:
            raise SpinesimError(frame.problem, path=frame.file.path,
                                hint="the series cannot be placed in space without it; re-export it from the scanner or PACS")
    # Compare with the most common slice, so the message names the odd one out.
    shapes = Counter((f.rows, f.columns, *np.round(f.orientation, 3), *np.round(f.pixel_spacing, 4)) for f in frames)
    common = shapes.most_common(1)[0][0]
    reference = next(f for f in frames if (f.rows, f.columns, *np.round(f.orientation, 3),
                                           *np.round(f.pixel_spacing, 4)) == common)
    for frame in frames:
        where = frame.file.path
        if (frame.rows, frame.columns) != (reference.rows, reference.columns):
            raise SpinesimError(f"has {frame.rows} x {frame.columns} pixels (rows x columns) but {reference.file.path.name} "
                                f"in the same series has {reference.rows} x {reference.columns}", path=where,
                                hint="the series mixes images of different sizes; remove the odd ones")
        if np.max(np.abs(frame.orientation - reference.orientation)) > _ORIENTATION_TOLERANCE:
            raise SpinesimError(f"ImageOrientationPatient {frame.orientation.round(4).tolist()} differs from "
                                f"{reference.orientation.round(4).tolist()} in {reference.file.path.name} of the same series",
                                path=where, hint="the series mixes image planes (e.g. a localizer); remove the odd slices")
        if np.max(np.abs(frame.pixel_spacing - reference.pixel_spacing)) > 1e-4 * np.max(reference.pixel_spacing):
            raise SpinesimError(f"PixelSpacing {frame.pixel_spacing.tolist()} differs from "
                                f"{reference.pixel_spacing.tolist()} in {reference.file.path.name} of the same series",
                                path=where)


def _stack(frames: list[_Frame], path: Path) -> _Stack:
    _check_consistent(frames, path)
    orientation = frames[0].orientation
    row, column = orientation[:3], orientation[3:]
    normal = _normal(orientation)
    positions = np.array([f.position for f in frames])
    distances = positions @ normal
    order = np.argsort(distances, kind="stable")
    unique: list[_Frame] = []
    duplicates: list[list[_Frame]] = []
    kept: list[int] = []
    for index in order:
        if kept and distances[index] - distances[kept[-1]] < _SAME_POSITION_MM:
            duplicates[-1].append(frames[index])
            continue
        unique.append(frames[index])
        duplicates.append([])
        kept.append(int(index))
    kept_positions = positions[kept]
    kept_distances = distances[kept]
    in_plane = (kept_positions - kept_positions[0]) - np.outer(kept_distances - kept_distances[0], normal)
    offsets = np.column_stack([in_plane @ row, in_plane @ column])
    return _Stack(unique, duplicates, kept_distances, offsets, row, column, normal, frames[0].pixel_spacing)


def _typical_gap(gaps: np.ndarray) -> float:
    """The most common gap between slices (mm); of equally common ones, the smallest.

    Not the median: with slices missing, the gaps are multiples of the true spacing and the
    median of a short series (gaps 2 and 4 mm) can be a spacing no slice pair has (3 mm).
    """
    tolerance = np.maximum(_JITTER_MM, _JITTER_FRACTION * gaps)
    votes = np.sum(np.abs(gaps[None, :] - gaps[:, None]) <= tolerance[:, None], axis=1)
    candidates = gaps[votes == votes.max()]
    return float(np.mean(candidates[np.abs(candidates - candidates.min()) <= tolerance.max()]))


def _regular_positions(distances: np.ndarray, path: Path, files: list[_Frame]) -> tuple[np.ndarray, str | None]:
    """Slice positions along the normal of the regular grid, and a warning if it differs from the input."""
    gaps = np.diff(distances)
    if len(gaps) == 0:
        return distances, None
    typical = _typical_gap(gaps)
    tolerance = max(_JITTER_MM, _JITTER_FRACTION * typical)
    extent = distances[-1] - distances[0]
    if np.all(np.abs(gaps - typical) <= tolerance):
        return distances[0] + np.arange(len(distances)) * (extent / len(gaps)), None
    widest = int(np.argmax(gaps))
    if gaps[widest] > max(_MAX_FILLED_GAPS * typical, _MAX_FILLED_GAP_MM):
        # Name the slice at the gap on the side with fewer slices: the likely odd one out.
        beside = files[widest] if widest + 1 <= len(files) - widest - 1 else files[widest + 1]
        raise SpinesimError(f"a gap of {gaps[widest]:.2f} mm between slices at {distances[widest]:.2f} and "
                            f"{distances[widest + 1]:.2f} mm along the slice normal (typical gap {typical:.3g} mm) "
                            f"is too wide to fill", path=beside.file.path,
                            hint="slices are missing from the series; copy the complete series, "
                                 "or remove the slices beyond the gap")
    count = int(round(extent / typical)) + 1
    regular = distances[0] + np.arange(count) * (extent / (count - 1))
    uneven = gaps[np.abs(gaps - typical) > tolerance]
    missing = max(count - len(distances), 0)
    what = f"{missing} slice(s) missing" if missing else "uneven slice spacing"
    return regular, (f"{what} (gaps of {', '.join(f'{g:.3g}' for g in uneven[:5])} mm where {typical:.3g} mm is "
                     f"typical): resampled by linear interpolation between neighbouring slices onto a regular "
                     f"grid of {count} slices {extent / (count - 1):.4g} mm apart")


# ---------------------------------------------------------------------------------------- pixels
class _PixelReader:
    """Reads stored values of frames, keeping the last decoded dataset for multi-frame files."""

    def __init__(self) -> None:
        self._dataset: Dataset | None = None
        self._path: Path | None = None

    def decoded(self, frame: _Frame) -> np.ndarray:
        """Stored values of ``frame`` as an array (rows, columns), through pydicom's decoders."""
        file = frame.file
        try:
            if self._path != file.path:
                self._dataset = pydicom.dcmread(file.path)
                self._path = file.path
            index = frame.index if int(self._dataset.get("NumberOfFrames", 1) or 1) > 1 else None
            values = pixel_array(self._dataset, index=index, raw=True)
        except (ValueError, RuntimeError, NotImplementedError, EOFError, OSError, KeyError, struct.error) as error:
            raise SpinesimError(f"cannot decode the pixel data ({file.transfer_syntax.name}): {error}",
                                path=file.path, where=f"frame {frame.index + 1}" if frame.index else None,
                                hint="the file may be damaged; if it is compressed, check that python-gdcm is installed "
                                     "(12-bit JPEG extended needs: pip install 'spinesim[jpeg12]')") from None
        if values.ndim != 2:
            raise SpinesimError(f"expected a grey-scale image, found pixel data of shape {values.shape} "
                                f"({self._dataset.get('PhotometricInterpretation', '?')})", path=file.path)
        return values

    def into(self, frame: _Frame, target: np.ndarray) -> bool:
        """Read native 16-bit stored values straight into ``target`` (rows, columns); False if not possible."""
        file = frame.file
        if file.pixel_offset is None:
            return False
        view = target.view(np.int16 if file.signed else np.uint16)
        with open(file.path, "rb", buffering=0) as handle:
            handle.seek(file.pixel_offset + frame.index * view.nbytes)
            if handle.readinto(view) != view.nbytes:
                raise SpinesimError("the pixel data ends early; the file is truncated", path=file.path)
        _fix_unused_bits(view, file)
        return True


def _fix_unused_bits(values: np.ndarray, file: _File) -> None:
    """Clear (unsigned) or sign-extend (signed) bits above Bits Stored, in place, when they are used."""
    bits = file.bits_stored
    if bits >= values.dtype.itemsize * 8:
        return
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if file.signed else (0, (1 << bits) - 1)
    if values.min() >= low and values.max() <= high:
        return
    if file.signed:
        shift = values.dtype.itemsize * 8 - bits
        np.left_shift(values, shift, out=values)
        np.right_shift(values, shift, out=values)
    else:
        np.bitwise_and(values, high, out=values)


def _to_hu(stored: np.ndarray, frame: _Frame, target: np.ndarray) -> int:
    """Write HU of ``stored`` into ``target`` (int16 or float32); returns the number of clipped pixels."""
    if target.dtype == np.float32:
        np.multiply(stored, np.float32(frame.slope), out=target, casting="unsafe")
        target += np.float32(frame.intercept)
        return 0
    intercept = int(frame.intercept)
    low, high = int(stored.min()), int(stored.max())
    if -32768 <= low + intercept and high + intercept <= 32767 and high <= 32767:
        if not np.shares_memory(stored, target):
            target[...] = stored
        if intercept:
            target += np.int16(intercept) if -32768 <= intercept <= 32767 else intercept
        return 0
    values = np.clip(stored.astype(np.int32) + intercept, -32768, 32767)
    clipped = int(np.count_nonzero((stored.astype(np.int32) + intercept) != values))
    target[...] = values
    return clipped


def _check_hu(hu: np.ndarray, frame: _Frame) -> None:
    """Refuse a float slice with NaN, infinite or absurd HU (beyond MAX_ABS_HU): it would poison every ray."""
    low, high = float(hu.min()), float(hu.max())
    if np.isfinite(low) and np.isfinite(high) and -MAX_ABS_HU <= low and high <= MAX_ABS_HU:
        return
    raise SpinesimError(f"the rescaled pixels reach {low:g}..{high:g} HU (NaN, infinite or beyond {MAX_ABS_HU:g})",
                        path=frame.file.path, where=f"frame {frame.index + 1}" if frame.index else None,
                        hint="the pixel data or its RescaleSlope/RescaleIntercept (0028,1053/1052) are damaged")


def _read_pixels(stack: _Stack, dtype: np.dtype, progress: ProgressCallback | None) -> tuple[np.ndarray, list[str]]:
    """HU of every slice into an array of shape (k, j, i); duplicates checked and dropped."""
    first = stack.frames[0]
    check_image_size((first.columns, first.rows, len(stack.frames)), dtype, path=first.file.path.parent,
                     what="the series")
    buffer = np.empty((len(stack.frames), first.rows, first.columns), dtype=dtype)
    reader = _PixelReader()
    scratch = np.empty((first.rows, first.columns), dtype=np.int16)
    clipped = 0
    dropped = 0
    for k, frame in enumerate(stack.frames):
        if progress is not None and k % 8 == 0:
            progress(k, len(stack.frames), "reading slices")
        target = buffer[k]
        if dtype == np.int16 and reader.into(frame, target):
            stored = target.view(np.int16 if frame.file.signed else np.uint16)
        elif reader.into(frame, scratch):
            stored = scratch.view(np.int16 if frame.file.signed else np.uint16)
        else:
            stored = reader.decoded(frame)
        clipped += _to_hu(stored, frame, target)
        if dtype == np.float32:
            _check_hu(target, frame)
        for duplicate in stack.duplicates[k]:
            other = np.empty_like(target)
            stored = scratch.view(np.int16 if duplicate.file.signed else np.uint16) \
                if reader.into(duplicate, scratch) else reader.decoded(duplicate)
            _to_hu(stored, duplicate, other)
            if not np.array_equal(other, target):
                raise SpinesimError(f"two slices at the same position ({stack.distances[k]:.2f} mm along the normal) "
                                    f"have different pixels: {frame.file.path.name} and this file", path=duplicate.file.path,
                                    hint="the series holds several acquisitions or phases; export one of them on its own")
            dropped += 1
    if progress is not None:
        progress(len(stack.frames), len(stack.frames), "reading slices")
    notes = []
    if dropped:
        notes.append(f"{dropped} duplicate slice(s) with identical pixels at an already used position were skipped")
    if clipped:
        notes.append(f"{clipped} pixel(s) beyond the int16 range were clipped to -32768..32767 HU")
    return buffer, notes


def _untilt(buffer: np.ndarray, offsets_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shift each slice (k, j, i) by its in-plane offset (pixels, (i, j)) onto one orthogonal grid.

    Returns the new buffer and the (i, j) index of the first slice's pixel (0, 0) in it.
    """
    low = np.floor(offsets_px.min(axis=0) + 1e-6).astype(int)
    high = np.ceil(offsets_px.max(axis=0) - 1e-6).astype(int)
    n_k, n_j, n_i = buffer.shape
    shape = (n_j + high[1] - low[1], n_i + high[0] - low[0])
    check_image_size((shape[1], shape[0], n_k), buffer.dtype, what="the series on an untilted grid")
    out = np.empty((n_k,) + shape, dtype=buffer.dtype)
    work = np.empty(shape, dtype=np.float32)
    for k in range(n_k):
        # Output pixel (j', i') shows input pixel (j' + low_j - offset_j, i' + low_i - offset_i) of slice k.
        shift = (low[1] - offsets_px[k, 1], low[0] - offsets_px[k, 0])
        ndimage.affine_transform(buffer[k].astype(np.float32, copy=False), np.ones(2), offset=shift,
                                 output_shape=shape, output=work, order=1, mode="constant", cval=_AIR_HU)
        out[k] = np.rint(work) if np.issubdtype(buffer.dtype, np.integer) else work
    return out, -low


def _restack(buffer: np.ndarray, distances: np.ndarray, regular: np.ndarray) -> np.ndarray:
    """Linear interpolation along k from slices at ``distances`` to slices at ``regular`` (mm)."""
    check_image_size((buffer.shape[2], buffer.shape[1], len(regular)), buffer.dtype,
                     what="the series on a regular grid")
    out = np.empty((len(regular),) + buffer.shape[1:], dtype=buffer.dtype)
    upper = np.clip(np.searchsorted(distances, regular, side="right"), 1, len(distances) - 1)
    for m, (position, b) in enumerate(zip(regular, upper)):
        a = b - 1
        weight = float(np.clip((position - distances[a]) / (distances[b] - distances[a]), 0.0, 1.0))
        if weight < 1e-6 or weight > 1 - 1e-6:
            out[m] = buffer[a if weight < 0.5 else b]
            continue
        mixed = buffer[a].astype(np.float32) * (1 - weight) + buffer[b].astype(np.float32) * weight
        out[m] = np.rint(mixed) if np.issubdtype(buffer.dtype, np.integer) else mixed
    return out


# ---------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class DicomCT:
    """A CT series read by :func:`read_dicom_series`.

    Attributes
    ----------
    volume : Volume
        Hounsfield units (int16, or float32 when the rescale is not integral) on an orthogonal grid.
    metadata : dict
        De-identified facts (modality, scanner model, kVp, ...) and how the series was read.
    warnings : tuple of str
        What the reader had to repair (missing slices, gantry tilt, duplicates); show them to the user.
    """

    volume: Volume
    metadata: dict[str, Any]
    warnings: tuple[str, ...]


def read_dicom_series(path: str | Path, series_uid: str | None = None, *,
                      progress: ProgressCallback | None = None, readable_only: bool = False) -> DicomCT:
    """Read one CT series from a DICOM folder (or file) into a volume in Hounsfield units.

    Parameters
    ----------
    path : str or Path
        Folder searched recursively, or a single file (e.g. an Enhanced CT).
    series_uid : str, optional
        Series Instance UID of the series to read, or its number in :func:`scan_dicom`'s order
        (1-based). Needed when the folder holds more than one CT series.
    progress : callable, optional
        Called as ``progress(done, total, message)`` while scanning and reading.
    readable_only : bool
        Skip unreadable subfolders and damaged DICOM files (counted in the warnings) instead of
        refusing; the series read must still be whole.

    Returns
    -------
    DicomCT
        The volume, de-identified metadata and warnings.

    Raises
    ------
    SpinesimError
        Naming the file and the problem: no DICOM, no or several CT series, missing or invalid
        geometry, inconsistent slices, truncated or undecodable pixel data, a gap too wide to fill.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> ct = read_dicom_series(get_testdata_file("CT_small.dcm"))
    >>> ct.volume.shape, ct.volume.orientation_code, int(ct.volume.array[64, 64, 0])
    ((128, 128, 1), 'LPS', 904)
    """
    path = Path(path)
    found = scan_dicom(path, progress=progress, readable_only=readable_only)
    series = choose_series(found, series_uid, path)
    stack = _stack(series.frames, path)
    warnings: list[str] = []
    integral = all(f.slope == 1 and float(f.intercept).is_integer() for f in stack.frames)
    reader_notes = list(series.reader_notes)
    with _pydicom_notes(reader_notes):
        buffer, notes = _read_pixels(stack, np.dtype(np.int16 if integral else np.float32), progress)
    warnings += notes + summarised_notes(reader_notes)

    column_spacing, row_spacing = float(stack.pixel_spacing[1]), float(stack.pixel_spacing[0])
    offsets_px = stack.offsets / np.array([column_spacing, row_spacing])
    origin = stack.frames[0].position.copy()
    tilt_degrees = 0.0
    if np.max(np.abs(offsets_px)) > _TILT_FRACTION_OF_PIXEL:
        extent = stack.distances[-1] - stack.distances[0]
        tilt_degrees = float(np.degrees(np.arctan2(np.linalg.norm(stack.offsets[-1]), extent))) if extent > 0 else 0.0
        buffer, first_pixel = _untilt(buffer, offsets_px)
        origin = origin - first_pixel[0] * column_spacing * stack.row - first_pixel[1] * row_spacing * stack.column
        warnings.append(f"slices are sheared (gantry tilt about {tilt_degrees:.1f} degrees): each slice was shifted "
                        f"within its plane onto an orthogonal grid of {buffer.shape[2]} x {buffer.shape[1]} pixels")

    regular, note = _regular_positions(stack.distances, path, stack.frames)
    if note is not None:
        buffer = _restack(buffer, stack.distances, regular)
        warnings.append(note)
    if len(regular) > 1:
        slice_spacing = (regular[-1] - regular[0]) / (len(regular) - 1)
    else:
        slice_spacing = series.slice_thickness_mm if series.slice_thickness_mm and series.slice_thickness_mm > 0 else 1.0
    affine = np.eye(4)
    affine[:3, 0] = stack.row * column_spacing
    affine[:3, 1] = stack.column * row_spacing
    affine[:3, 2] = stack.normal * slice_spacing
    affine[:3, 3] = origin
    volume = Volume(buffer.transpose(2, 1, 0), affine)

    metadata = {
        "source": "DICOM",
        **series.facts,
        "sop_class": series.sop_class,
        "transfer_syntax": series.transfer_syntax,
        "slices_read": len(stack.frames),
    }
    if tilt_degrees:
        metadata["gantry_tilt_degrees"] = round(tilt_degrees, 3)
    if warnings:
        metadata["import_warnings"] = list(warnings)
    return DicomCT(volume, metadata, tuple(warnings))


# ---------------------------------------------------------------------------------------- writing
def _ds(value: float) -> str:
    return format_number_as_ds(float(value))


def _hu_int16(volume: Volume) -> np.ndarray:
    array = volume.array
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
    else:
        if not np.all(np.isfinite(array)):
            raise SpinesimError("the CT volume holds NaN or infinite values; DICOM cannot store them")
        low, high = float(np.rint(array.min())), float(np.rint(array.max()))
    if low < -32768 or high > 32767:
        raise SpinesimError(f"CT values {low:.0f}..{high:.0f} HU do not fit DICOM's int16 range -32768..32767")
    return array if array.dtype == np.int16 else np.rint(array).astype(np.int16)


def _slice_geometry(volume: Volume) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """Row cosines, column cosines, column spacing, row spacing and slice thickness of ``volume``."""
    axes = volume.affine[:3, :3]
    spacing = volume.spacing
    row, column = axes[:, 0] / spacing[0], axes[:, 1] / spacing[1]
    if abs(row @ column) > 1e-6:
        raise SpinesimError("the volume's i and j axes are not perpendicular, which a DICOM slice cannot express",
                            hint="resample the volume onto an orthogonal grid first")
    normal = np.cross(row, column)
    thickness = abs(float(axes[:, 2] @ normal))
    if thickness < 1e-6:
        raise SpinesimError("the volume's k axis lies in the slice plane; it cannot be written as slices")
    return row, column, float(spacing[0]), float(spacing[1]), thickness


def write_dicom_series(source: Volume | Anatomy, folder: str | Path, *, series_description: str = "spinesim CT",
                       progress: ProgressCallback | None = None) -> list[Path]:
    """Write a CT volume (HU) as a DICOM CT Image Storage series, one file per k slice.

    Pixels are int16 HU (Rescale Slope 1, Intercept 0). Every slice carries Image Orientation and
    Image Position (Patient), Pixel Spacing and Slice Thickness, so any reader rebuilds the
    volume's affine. The patient is anonymous, all UIDs are new, no dates are written, and each
    dataset passes :func:`~anatomy_models.deidentify.identifying_elements` before it is written. An
    anatomy with labels gets its structures beside the slices, as a Segmentation and an RT Structure Set
    referencing them (:mod:`anatomy_models.dicom_labels`).

    Parameters
    ----------
    source : Volume or Anatomy
        The CT (an anatomy's ``ct``; its metadata's kVp and manufacturer model are kept).
    folder : str or Path
        Output folder; created, must not exist or be empty. Written all or nothing.
    series_description : str
        Series Description of the new series.
    progress : callable, optional
        Called as ``progress(slices_done, slices_total, message)``.

    Returns
    -------
    list of Path
        The written files, in slice order (``CT00001.dcm`` ...), then ``SEG.dcm`` and ``RTSTRUCT.dcm``
        for an anatomy with labels.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> volume = Volume.from_spacing(np.arange(24, dtype=np.int16).reshape(2, 3, 4), (0.5, 0.5, 2.0))
    >>> files = write_dicom_series(volume, pathlib.Path(tempfile.mkdtemp()) / "ct")
    >>> back = read_dicom_series(files[0].parent).volume
    >>> bool(np.array_equal(back.array, volume.array)), bool(np.allclose(back.affine, volume.affine))
    (True, True)
    """
    from anatomy_models.anatomy import Anatomy

    volume, facts = (source.ct, source.metadata) if isinstance(source, Anatomy) else (source, {})
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise SpinesimError("the output folder already exists and is not empty", path=folder,
                            hint="choose a new folder; spinesim does not overwrite files it did not write")
    hu = _hu_int16(volume)
    row, column, column_spacing, row_spacing, thickness = _slice_geometry(volume)
    normal = np.cross(row, column)
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    n_k = volume.shape[2]
    paths, slices = [], []
    with atomic_directory(folder) as staging:
        for k in range(n_k):
            if progress is not None and k % 8 == 0:
                progress(k, n_k, "writing slices")
            position = volume.voxel_to_world([0.0, 0.0, float(k)])
            instance = generate_uid()
            dataset = _ct_slice(hu[:, :, k].T, position, row, column, row_spacing, column_spacing, thickness,
                                float(position @ normal), k + 1, study, series, frame_of_reference, instance,
                                series_description, facts)
            _refuse_identifying(dataset, (study, series, frame_of_reference, instance))
            name = f"CT{k + 1:05d}.dcm"
            dataset.save_as(staging / name, enforce_file_format=True)
            paths.append(folder / name)
            slices.append(dataset)
        if isinstance(source, Anatomy) and source.labels is not None:
            paths += _write_label_objects(source, slices, staging, folder, progress)
    if progress is not None:
        progress(n_k, n_k, "series written")
    return paths


def _refuse_identifying(dataset: Dataset, fresh_uids) -> None:
    problems = identifying_elements(dataset, fresh_uids=fresh_uids)
    if problems:  # a programming error: never write identifying data
        raise RuntimeError(f"refusing to write identifying DICOM elements: {problems}")


def _write_label_objects(anatomy: Anatomy, slices: list[Dataset], staging: Path, folder: Path,
                         progress: ProgressCallback | None) -> list[Path]:
    """The anatomy's labels as a Segmentation and an RT Structure Set on ``slices`` (:mod:`anatomy_models.dicom_labels`)."""
    from anatomy_models.dicom_labels import SEGMENTATION_FILE, STRUCTURE_SET_FILE, segmentation, structure_set

    series_uids = {slices[0].StudyInstanceUID, slices[0].SeriesInstanceUID, slices[0].FrameOfReferenceUID}
    series_uids |= {s.SOPInstanceUID for s in slices}
    written = []
    for name, make in ((SEGMENTATION_FILE, segmentation), (STRUCTURE_SET_FILE, structure_set)):
        if progress is not None:
            progress(len(slices), len(slices), f"writing {name}")
        dataset = make(anatomy, slices)
        # The UIDs this export made: the CT series' and the object's own (a Segmentation also names its
        # dimension organisation); any other would have come from elsewhere.
        own = {dataset.SOPInstanceUID, dataset.SeriesInstanceUID}
        own |= {str(item.DimensionOrganizationUID) for item in dataset.get("DimensionOrganizationSequence", [])}
        _refuse_identifying(dataset, series_uids | own)
        dataset.save_as(staging / name, enforce_file_format=True)
        written.append(folder / name)
    return written


# Sources whose CT numbers spinesim made itself (generated, or painted from a label map or meshes): their
# pixels hold no text. Any other source is declared free of burned-in text only if it said so.
_SYNTHETIC_SOURCES = ("generated:", "seg.nrrd", "totalsegmentator", "mesh")


def burned_in_annotation(facts: dict[str, Any]) -> str | None:
    """The Burned In Annotation (0028,0301) an export of an anatomy with metadata ``facts`` declares:
    ``"NO"`` when its pixels are known to hold no text, None when that is unknown (the attribute is
    then left out: it is Type 3 in the General Image module, PS3.3 C.7.6.1, and absent means unknown).

    Examples
    --------
    >>> burned_in_annotation({"source": "generated:spine"}), burned_in_annotation({"source": "nifti"})
    ('NO', None)
    """
    synthetic = str(facts.get("source", "")).startswith(_SYNTHETIC_SOURCES)
    return "NO" if synthetic or facts.get("burned_in_annotation") == "NO" else None


def _ct_slice(pixels: np.ndarray, position: np.ndarray, row: np.ndarray, column: np.ndarray, row_spacing: float,
              column_spacing: float, thickness: float, location: float, number: int, study: str, series: str,
              frame_of_reference: str, instance: str, description: str, facts: dict[str, Any]) -> Dataset:
    """One CT Image Storage dataset (modules of PS3.3 A.3: Patient, General Study, General Series,
    Frame of Reference, General Equipment, General Image, Image Plane, Image Pixel, CT Image, VOI LUT,
    SOP Common)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    # SOP Common
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = instance
    if not description.isascii():
        ds.SpecificCharacterSet = "ISO_IR 192"
    # Patient (anonymous: the Basic Profile's dummy or zero-length values)
    ds.PatientName = ""
    ds.PatientID = DUMMY
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    mark_deidentified(ds)
    # General Study
    ds.StudyInstanceUID = study
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = DUMMY
    ds.AccessionNumber = ""
    # General Series
    ds.Modality = "CT"
    ds.SeriesInstanceUID = series
    ds.SeriesNumber = 1
    ds.SeriesDescription = description
    ds.PatientPosition = ""
    # Frame of Reference
    ds.FrameOfReferenceUID = frame_of_reference
    ds.PositionReferenceIndicator = ""
    # General Equipment
    ds.Manufacturer = "spinesim"
    ds.SoftwareVersions = "spinesim"
    # General Image
    ds.InstanceNumber = number
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    burned_in = burned_in_annotation(facts)  # unknown: left out (Type 3), never declared NO
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    ds.ImageLaterality = "U"  # the spine is unpaired; this also settles General Series' Laterality (2C)
    # Image Plane
    ds.PixelSpacing = [_ds(row_spacing), _ds(column_spacing)]
    ds.ImageOrientationPatient = [_ds(v) for v in (*row, *column)]
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.SliceThickness = _ds(thickness)
    ds.SliceLocation = _ds(location)
    # Image Pixel and CT Image
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.KVP = _ds(facts["kvp"]) if isinstance(facts.get("kvp"), (int, float)) else ""
    ds.AcquisitionNumber = ""
    # VOI LUT: a soft-tissue window, so viewers open the series readable
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<i2").tobytes()
    return ds
