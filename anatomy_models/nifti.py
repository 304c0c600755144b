"""NIfTI-1 and NIfTI-2 volumes (nibabel), converted between NIfTI's RAS world and spinesim's LPS.

NIfTI places voxels in RAS+ millimetres (+x toward the patient's Right, +y Anterior, +z Superior);
spinesim uses LPS. Going from one to the other flips the sign of x and y and keeps z; the voxel
array is never touched, only the affine: ``affine_lps = diag(-1, -1, 1, 1) @ affine_ras``.

Which of a file's two affines is used: the **sform** when its code is set (> 0) and it is a finite,
non-singular matrix, else the **qform** under the same conditions. A file whose codes are both 0
(an ANALYZE-style file with no orientation) or whose coded affines are both unusable is refused:
guessing an orientation would silently mirror a patient.

Damaged files are refused before any voxel is allocated: the header's dimensions must fit
:data:`~anatomy_models.volume.MAX_IMAGE_BYTES`, the file must hold the voxels they declare, and a
``.nii.gz`` is decompressed whole with its checksum verified (nibabel alone stops reading once it has
the voxels, so a damaged end of the stream would pass). NaN or infinite voxels are refused
(:func:`~anatomy_models.volume.check_finite_voxels`).

Free-text header fields (``descrip``, ``aux_file``, ``intent_name``) may carry names and are never
read into spinesim metadata; files spinesim writes carry none.
"""

from __future__ import annotations

import gzip
import logging
import xml.etree.ElementTree as ElementTree
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np

from anatomy_models.atomic import atomic_path
from anatomy_models.errors import SpinesimError
from anatomy_models.volume import Volume, check_finite_voxels, check_image_size, check_spacing

NIFTI_SUFFIXES = (".nii", ".nii.gz")
# RAS <-> LPS: the same matrix both ways.
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_XFORM_NAMES = {1: "scanner", 2: "aligned", 3: "talairach", 4: "mni", 5: "template"}
_READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile, nib.filebasedimages.ImageFileError,
                nib.spatialimages.HeaderDataError, nib.wrapstruct.WrapStructError, OverflowError, TypeError)
# Bytes a .nii.gz may hold beyond the voxels its header declares (NIfTI has no trailer; some writers pad).
_GZIP_SLACK_BYTES = 1024 * 1024
_CHUNK_BYTES = 16 * 1024 * 1024


def is_nifti_path(path: str | Path) -> bool:
    """True if ``path``'s name ends in ``.nii`` or ``.nii.gz``."""
    return Path(path).name.lower().endswith(NIFTI_SUFFIXES)


def nifti_stem(path: str | Path) -> str:
    """The file name without ``.nii`` / ``.nii.gz`` (``vertebrae_L4.nii.gz`` -> ``vertebrae_L4``)."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _declared_bytes(image: nib.Nifti1Image, path: Path) -> int:
    """Bytes the file must hold (header, extensions and voxels), after checking the voxels fit in memory."""
    header = image.header
    shape = header.get_data_shape()
    check_image_size(shape, header.get_data_dtype(), path=path, where="field 'dim'")
    return int(image.dataobj.offset) + int(np.prod(shape, dtype=np.int64)) * header.get_data_dtype().itemsize


def _verified_gzip(path: Path, needed: int) -> bytes:
    """The decompressed bytes of a .nii.gz, read to its end so that gzip checks its length and CRC."""
    with gzip.open(path, "rb") as stream:
        data = stream.read(needed)
        if len(data) < needed:
            raise SpinesimError(f"the compressed data holds {len(data)} bytes but the header declares {needed}; "
                                "the file is truncated", path=path, hint="copy or export the file again")
        extra = 0
        while chunk := stream.read(_CHUNK_BYTES):
            extra += len(chunk)
            if extra > _GZIP_SLACK_BYTES:
                raise SpinesimError("the compressed data holds more than its header declares; the file is damaged",
                                    path=path, hint="copy or export the file again")
    return data


@contextmanager
def _damaged_headers_refused() -> Iterator[None]:
    """nibabel repairs a damaged header and prints what it repaired in its own words, naming no file (``sizeof_hdr
    should be 348; set sizeof_hdr to 348``). Inside, a problem it ranks WARNING or worse (the header's size, the
    voxel offset, a zero voxel size, an unknown qform or sform code) raises instead, so that :func:`_load` refuses
    the file by name, and nothing is printed; what it fixes at a lower rank (bitpix, qfac) stays accepted."""
    logger = nib.imageglobals.logger
    was_disabled = logger.disabled
    logger.disabled = True
    try:
        with nib.imageglobals.ErrorLevel(logging.WARNING):
            yield
    finally:
        logger.disabled = was_disabled


def _load(path: Path, *, voxels: bool = False) -> nib.Nifti1Image:
    """The image at ``path``; with ``voxels``, its voxel data checked (size, length, gzip checksum) first."""
    if not path.is_file():
        raise SpinesimError("file not found", path=path)
    try:
        with _damaged_headers_refused():
            image = nib.load(str(path))
        if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
            raise SpinesimError(f"not a NIfTI file (nibabel read it as {type(image).__name__})", path=path)
        if not voxels:
            return image
        needed = _declared_bytes(image, path)
        if path.name.lower().endswith(".gz"):
            return type(image).from_bytes(_verified_gzip(path, needed))
        if path.stat().st_size < needed:
            raise SpinesimError(f"the file holds {path.stat().st_size} bytes but its header declares {needed}; "
                                "the file is truncated", path=path, hint="copy or export the file again")
        return image
    except _READ_ERRORS as error:
        raise SpinesimError(f"not a readable NIfTI file ({type(error).__name__}: {error})", path=path,
                            hint="export the volume again as NIfTI (.nii or .nii.gz) and check that the copy is "
                                 "complete") from None


def _usable(affine: np.ndarray | None) -> bool:
    return (affine is not None and bool(np.all(np.isfinite(affine)))
            and abs(np.linalg.det(affine[:3, :3])) > 1e-12)


def nifti_affine_ras(image: nib.Nifti1Image, path: str | Path) -> tuple[np.ndarray, str]:
    """The voxel -> RAS mm affine of ``image`` and which header field it came from.

    Returns
    -------
    affine : numpy.ndarray, shape (4, 4)
    source : str
        ``"sform (scanner)"``, ``"qform (aligned)"``, ...
    """
    header = image.header
    sform, sform_code = header.get_sform(coded=True)
    try:
        qform, qform_code = header.get_qform(coded=True)
    except ValueError:  # a quaternion that is no rotation: the qform is unusable
        qform, qform_code = None, header["qform_code"]
    for affine, code, name in ((sform, sform_code, "sform"), (qform, qform_code, "qform")):
        if code and _usable(affine):
            return np.asarray(affine, dtype=np.float64), f"{name} ({_XFORM_NAMES.get(int(code), code)})"
    if not sform_code and not qform_code:
        problem = "no orientation: sform_code and qform_code are both 0, so the voxel-to-patient mapping is unknown"
    else:
        problem = (f"neither coded affine is usable (sform_code {int(sform_code)}, qform_code {int(qform_code)}; "
                   "NaN, infinite or zero spacing)")
    raise SpinesimError(problem, path=path, hint="re-export the image with a valid orientation (e.g. with dcm2niix)")


def nifti_orientation_source(path: str | Path) -> str:
    """Which header field places the voxels of the NIfTI file at ``path`` (``"sform (scanner)"``, ...)."""
    path = Path(path)
    return nifti_affine_ras(_load(path), path)[1]


def _declared_scaling(path: Path) -> tuple[float, float]:
    """scl_slope and scl_inter as the file's header bytes hold them: nibabel reads an infinite slope as unset
    (NaN, then no scaling), where NIfTI says to apply any non-zero slope (NIfTI-1 offsets 112/116 float32,
    NIfTI-2 176/184 float64)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as stream:
        head = stream.read(192)
    if len(head) < 192:
        return 1.0, 0.0  # too short for a header: the reader says so
    for order in "<>":
        size = int(np.frombuffer(head[:4], f"{order}i4")[0])
        if size == 348:
            return tuple(float(v) for v in np.frombuffer(head[112:120], f"{order}f4"))
        if size == 540:
            return tuple(float(v) for v in np.frombuffer(head[176:192], f"{order}f8"))
    return 1.0, 0.0


def _scaled(image: nib.Nifti1Image, path: Path) -> np.ndarray:
    """The voxel array with scl_slope/scl_inter applied; integers stay integers where they can."""
    try:
        raw = np.asanyarray(image.dataobj.get_unscaled())
    except _READ_ERRORS as error:
        raise SpinesimError(f"cannot read the voxel data ({error}); the file may be truncated", path=path) from None
    if not (np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)) or raw.dtype.names:
        raise SpinesimError(f"voxel type {raw.dtype} is not a scalar number type (RGB or complex images are not CT)", path=path)
    # nibabel moves scl_slope/scl_inter from the header into the array proxy when it loads a file
    # (an unset or zero slope reads as 1).
    slope, inter = float(image.dataobj.slope), float(image.dataobj.inter)
    declared = _declared_scaling(path)
    if np.isinf(declared).any():
        slope, inter = declared
    if not (np.isfinite(slope) and np.isfinite(inter)):
        raise SpinesimError(f"scl_slope {slope} / scl_inter {inter} are not finite numbers", path=path)
    check_finite_voxels(raw, path=path)
    if slope == 1.0 and inter == 0.0:
        return raw
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = raw.astype(np.float32) * np.float32(slope) + np.float32(inter)
    if not np.all(np.isfinite(scaled)):
        raise SpinesimError(f"scl_slope {slope:g} / scl_inter {inter:g} take voxels beyond the float32 range",
                            path=path, hint="re-export the image with a sensible scaling")
    # A CT stored as int16 with slope 1, intercept -1024 should come back as int16 HU.
    if np.issubdtype(raw.dtype, np.integer) and float(slope).is_integer() and float(inter).is_integer():
        low, high = float(scaled.min(initial=0)), float(scaled.max(initial=0))
        for dtype in (np.int16, np.int32):
            if np.iinfo(dtype).min <= low and high <= np.iinfo(dtype).max:
                return scaled.astype(dtype)
    return scaled


def _three_d(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim == 2:
        return array[:, :, np.newaxis]
    if array.ndim > 3:
        extra = array.shape[3:]
        if any(n != 1 for n in extra):
            raise SpinesimError(f"a {array.ndim}D image of shape {array.shape} holds {int(np.prod(extra))} volumes; "
                                "spinesim needs one 3D volume", path=path,
                                hint="extract one volume first (e.g. `fslroi` or nibabel's slicer)")
        return array.reshape(array.shape[:3])
    return array


def read_nifti(path: str | Path) -> Volume:
    """Read a NIfTI-1/2 file (``.nii`` or ``.nii.gz``) as a :class:`Volume` in LPS millimetres.

    The sform is used when its code is set, else the qform (module docstring); scl_slope/scl_inter
    are applied; a 4D file with a single volume is accepted.

    Raises
    ------
    SpinesimError
        Missing, truncated, damaged or non-NIfTI file; too large to hold in memory; no usable orientation;
        spacing out of range; several volumes; non-scalar, NaN or infinite voxels.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> volume = Volume.from_spacing(np.zeros((2, 3, 4), np.int16), (0.5, 0.5, 2.0), origin=(10, 20, 30))
    >>> path = write_nifti(volume, pathlib.Path(tempfile.mkdtemp()) / "ct.nii.gz")
    >>> read_nifti(path).voxel_to_world([1, 1, 1]).tolist()
    [10.5, 20.5, 32.0]
    """
    path = Path(path)
    image = _load(path, voxels=True)
    affine_ras, _ = nifti_affine_ras(image, path)
    check_spacing(np.linalg.norm(affine_ras[:3, :3], axis=0), path=path, where="field 'pixdim' / sform")
    array = _three_d(_scaled(image, path), path)
    try:
        return Volume(array, RAS_TO_LPS @ affine_ras)
    except SpinesimError as error:
        raise SpinesimError(error.problem, path=path, hint=error.hint) from None


def nifti_label_names(path: str | Path) -> dict[int, str] | None:
    """Label id -> name table stored in a NIfTI header extension, if the file has one.

    TotalSegmentator (``save_multilabel_nifti`` in its ``nifti_ext_header.py``) writes its multilabel
    files with a CaretExtension XML label table (``<Label Key="52">aorta</Label>``); this reads it.
    """
    path = Path(path)
    image = _load(path)
    for extension in image.header.extensions:
        content = extension.get_content()
        text = content.decode("utf-8", errors="replace") if isinstance(content, bytes) else str(content)
        if "<LabelTable>" not in text:
            continue
        try:
            root = ElementTree.fromstring(text.strip())
        except ElementTree.ParseError as error:
            raise SpinesimError(f"damaged label table in the NIfTI header extension ({error})", path=path) from None
        names = {}
        for label in root.iter("Label"):
            try:
                names[int(label.get("Key", ""))] = (label.text or "").strip()
            except ValueError:
                raise SpinesimError(f"label table entry with a non-integer Key {label.get('Key')!r}", path=path,
                                    where="NIfTI header extension") from None
        return names or None
    return None


def write_nifti(volume: Volume, path: str | Path, *, label_map: bool = False) -> Path:
    """Write ``volume`` as NIfTI (gzip if ``path`` ends in ``.nii.gz``); the file appears whole or not at all.

    Both sform and qform are set (code 1, scanner) to the RAS form of the volume's affine; units mm.
    ``label_map=True`` marks the file with the NIfTI ``label`` intent. No free-text field is written.
    """
    path = Path(path)
    if not is_nifti_path(path):
        raise SpinesimError("a NIfTI file name must end in .nii or .nii.gz", path=path)
    affine_ras = RAS_TO_LPS @ volume.affine
    image_type = nib.Nifti2Image if max(volume.shape) > 32767 else nib.Nifti1Image
    image = image_type(np.asarray(volume.array), affine_ras)
    image.set_sform(affine_ras, code=1)
    image.set_qform(affine_ras, code=1)
    image.header.set_xyzt_units("mm")
    if label_map:
        image.header.set_intent("label")
    with atomic_path(path) as temporary:
        nib.save(image, str(temporary))
    return path
