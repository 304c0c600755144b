"""A 3D image on a grid in patient space: a numpy array plus the affine that places it.

Index order, stated once: voxel ``(i, j, k)`` is ``array[i, j, k]`` and its centre in LPS millimetres
is ``affine @ (i, j, k, 1)``. Nothing in spinesim transposes a volume's array silently. For volumes
read from DICOM, ``i`` runs along a row of a slice (the column index), ``j`` down a column (the row
index) and ``k`` across slices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import ndimage

from anatomy_models.derived import Derived
from anatomy_models.errors import SpinesimError

ArrayLike3 = Sequence[float] | np.ndarray

#: The largest image array spinesim allocates, in bytes (4 GiB: a 1024 x 1024 x 2048 int16 CT). Readers
#: check the size a header declares against it before allocating anything, so a file that claims huge
#: dimensions with a tiny payload, or a tiny ``--spacing``, gets a clear error instead of exhausting memory.
MAX_IMAGE_BYTES = 4 * 1024 ** 3
#: Voxel spacing readers accept, mm. Below 0.01 mm is no CT (micro-CT of a whole spine would not fit
#: :data:`MAX_IMAGE_BYTES` anyway); above 1000 mm a voxel is larger than a patient.
MIN_SPACING_MM = 0.01
MAX_SPACING_MM = 1000.0


def _gib(size_bytes: float) -> str:
    return f"{size_bytes / 1024 ** 3:,.1f} GiB"


def check_image_size(shape: Sequence[int], dtype: np.dtype | type, *, path=None, where: str | None = None,
                     what: str = "the image") -> None:
    """Refuse an image of ``shape`` and ``dtype`` that would need more than :data:`MAX_IMAGE_BYTES`.

    Called before allocating, with the shape a header declares (or a resampled grid would have).

    Raises
    ------
    SpinesimError
        Naming the dimensions, the memory they need and the limit; or negative or zero dimensions.

    Examples
    --------
    >>> check_image_size((512, 512, 300), np.int16)
    >>> check_image_size((4096, 4096, 4096), np.int16, path="ct.nii")
    Traceback (most recent call last):
    ...
    anatomy_models.errors.SpinesimError: ct.nii: the image of 4096 x 4096 x 4096 voxels (int16) would need \
128.0 GiB of memory, more than the limit of 4.0 GiB. Check the dimensions and spacing in the header (a damaged \
header declares huge ones), or crop or downsample the image first.
    """
    dims = [int(n) for n in shape]
    if any(n < 0 for n in dims):
        raise SpinesimError(f"{what} has negative dimensions {' x '.join(map(str, dims))}", path=path, where=where)
    if 0 in dims:
        raise SpinesimError(f"{what} of {' x '.join(map(str, dims))} voxels holds no voxel", path=path, where=where)
    size_bytes = float(np.prod([float(n) for n in dims])) * np.dtype(dtype).itemsize
    if size_bytes > MAX_IMAGE_BYTES:
        raise SpinesimError(f"{what} of {' x '.join(map(str, dims))} voxels ({np.dtype(dtype)}) would need "
                            f"{_gib(size_bytes)} of memory, more than the limit of {_gib(MAX_IMAGE_BYTES)}",
                            path=path, where=where,
                            hint="check the dimensions and spacing in the header (a damaged header declares "
                                 "huge ones), or crop or downsample the image first")


def check_spacing(spacing_mm: Sequence[float], *, path=None, where: str | None = None) -> None:
    """Refuse voxel spacing that is not finite or outside ``MIN_SPACING_MM..MAX_SPACING_MM``.

    Raises
    ------
    SpinesimError
        Naming the spacing found and the accepted range.
    """
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    if not np.all(np.isfinite(spacing)) or np.any(spacing < MIN_SPACING_MM) or np.any(spacing > MAX_SPACING_MM):
        raise SpinesimError(f"voxel spacing {np.round(spacing, 6).tolist()} mm is outside "
                            f"{MIN_SPACING_MM:g}..{MAX_SPACING_MM:g} mm", path=path, where=where,
                            hint="the header's spacing is damaged or in the wrong unit; re-export the image")


def check_finite_voxels(array: np.ndarray, *, path=None) -> None:
    """Refuse floating-point voxels that are NaN or infinite.

    Such voxels poison every ray through them (a DRR pixel, an ultrasound line), and no value can
    stand in for them without guessing, so they are refused rather than replaced.
    """
    if not np.issubdtype(array.dtype, np.floating):
        return
    finite = np.isfinite(array)
    if finite.all():
        return
    bad = np.argwhere(~finite)
    raise SpinesimError(f"{len(bad)} voxel(s) are NaN or infinite, the first at index {bad[0].tolist()}",
                        path=path, hint="replace them (air is -1000 HU) and export the image again")


def box_corners(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The 8 corners of the axis-aligned box [lower, upper], shape (8, 3)."""
    pick = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=bool)
    return np.where(pick, np.asarray(upper, dtype=np.float64), np.asarray(lower, dtype=np.float64))


def _as_affine(affine: np.ndarray) -> np.ndarray:
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise SpinesimError(f"a volume's affine must be 4x4, got shape {affine.shape}")
    if not np.all(np.isfinite(affine)):
        raise SpinesimError("a volume's affine contains NaN or infinity", hint="check the spacing and origin fields")
    if not np.allclose(affine[3], (0, 0, 0, 1)):
        raise SpinesimError(f"a volume's affine must end in the row (0, 0, 0, 1), got {affine[3].tolist()}")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise SpinesimError("a volume's affine is singular (zero spacing or collinear axes)")
    return affine


@dataclass(frozen=True, eq=False)
class Volume:
    """An image array on a grid in LPS millimetres.

    Parameters
    ----------
    array : numpy.ndarray, shape (ni, nj, nk)
        Voxel values: Hounsfield units for CT (int16 or float32), unsigned ints for label maps.
    affine : numpy.ndarray, shape (4, 4)
        Maps a voxel index ``(i, j, k, 1)`` to its centre in LPS mm.

    Attributes
    ----------
    derived : Derived
        Data derived from this volume (projector tables...), kept while it lives; so never modify
        ``array`` in place once something has been derived from it.

    Examples
    --------
    >>> import numpy as np
    >>> v = Volume.from_spacing(np.zeros((4, 5, 6), np.int16), spacing=(0.5, 0.5, 2.0), origin=(10, 0, -5))
    >>> v.voxel_to_world([1, 2, 3]).tolist()
    [10.5, 1.0, 1.0]
    >>> v.world_to_voxel([10.5, 1.0, 1.0]).tolist()
    [1.0, 2.0, 3.0]
    """

    array: np.ndarray
    affine: np.ndarray
    derived: Derived = field(default_factory=Derived, init=False, repr=False)

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        if array.ndim != 3:
            raise SpinesimError(f"a volume's array must be 3D, got {array.ndim}D with shape {array.shape}")
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "affine", _as_affine(self.affine))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_spacing(
        cls,
        array: np.ndarray,
        spacing: ArrayLike3,
        origin: ArrayLike3 = (0.0, 0.0, 0.0),
        direction: np.ndarray | None = None,
    ) -> Volume:
        """Build a volume from spacing (mm), origin (LPS mm of voxel (0,0,0)) and direction cosines.

        ``direction`` is a 3x3 matrix whose columns are the unit LPS directions of the i, j, k axes
        (identity if omitted).
        """
        spacing = np.asarray(spacing, dtype=np.float64)
        if spacing.shape != (3,) or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
            raise SpinesimError(f"voxel spacing must be three positive numbers in mm, got {spacing.tolist()}")
        direction = np.eye(3) if direction is None else np.asarray(direction, dtype=np.float64)
        affine = np.eye(4)
        affine[:3, :3] = direction * spacing[None, :]
        affine[:3, 3] = np.asarray(origin, dtype=np.float64)
        return cls(array, affine)

    def with_array(self, array: np.ndarray) -> Volume:
        """A volume on the same grid holding ``array`` (same shape)."""
        if np.shape(array) != self.shape:
            raise SpinesimError(f"array of shape {np.shape(array)} does not fit a grid of shape {self.shape}")
        return Volume(array, self.affine)

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size along i, j, k in mm, shape (3,)."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def origin(self) -> np.ndarray:
        """LPS mm of the centre of voxel (0, 0, 0), shape (3,)."""
        return self.affine[:3, 3].copy()

    @property
    def direction(self) -> np.ndarray:
        """3x3 matrix whose columns are the unit LPS directions of the i, j, k axes."""
        return self.affine[:3, :3] / self.spacing[None, :]

    @property
    def orientation_code(self) -> str:
        """Three letters naming where the i, j, k axes point, e.g. ``"LPS"`` for a plain axial CT.

        Each letter is the patient direction an axis is closest to (L/R, P/A, S/I); an oblique stack
        still gets its nearest letters.
        """
        letters = ("LR", "PA", "SI")
        code = ""
        for column in self.direction.T:
            axis = int(np.argmax(np.abs(column)))
            code += letters[axis][0 if column[axis] > 0 else 1]
        return code

    def voxel_to_world(self, ijk: np.ndarray | Sequence[float]) -> np.ndarray:
        """LPS mm of (fractional) voxel indices; ``ijk`` has shape (..., 3)."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_voxel(self, xyz: np.ndarray | Sequence[float]) -> np.ndarray:
        """Fractional voxel indices of LPS points; ``xyz`` has shape (..., 3)."""
        xyz = np.asarray(xyz, dtype=np.float64)
        inverse = np.linalg.inv(self.affine)
        return xyz @ inverse[:3, :3].T + inverse[:3, 3]

    def corners(self) -> np.ndarray:
        """LPS mm of the 8 outer corners of the grid (voxel edges, not centres), shape (8, 3)."""
        return self.voxel_to_world(box_corners(np.full(3, -0.5), np.asarray(self.shape) - 0.5))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned LPS box (min corner, max corner) that holds the whole grid, in mm."""
        corners = self.corners()
        return corners.min(axis=0), corners.max(axis=0)

    # ------------------------------------------------------------------ views and crops
    def sub_volume(self, i: slice = slice(None), j: slice = slice(None), k: slice = slice(None)) -> Volume:
        """A view (no copy) of part of the grid, given as index slices (steps allowed)."""
        array = self.array[i, j, k]
        starts, steps = [], []
        for axis, s in enumerate((i, j, k)):
            start, _, step = s.indices(self.shape[axis])
            starts.append(start)
            steps.append(step)
        affine = self.affine.copy()
        affine[:3, 3] = self.voxel_to_world(starts)
        affine[:3, :3] = self.affine[:3, :3] * np.asarray(steps, dtype=np.float64)[None, :]
        return Volume(array, affine)

    def crop(self, lower: ArrayLike3, upper: ArrayLike3) -> Volume:
        """A view of the voxels whose centres fall inside the LPS box [lower, upper] (mm).

        The box is taken in world space and converted to the smallest index box that holds it;
        the result shares memory with this volume.
        """
        lower = np.asarray(lower, dtype=np.float64)
        upper = np.asarray(upper, dtype=np.float64)
        if np.any(upper < lower):
            raise SpinesimError(f"crop box upper corner {upper.tolist()} is below its lower corner {lower.tolist()}")
        ijk = self.world_to_voxel(box_corners(lower, upper))
        lo = np.clip(np.ceil(ijk.min(axis=0) - 1e-9), 0, self.shape).astype(int)
        hi = np.clip(np.floor(ijk.max(axis=0) + 1e-9) + 1, 0, self.shape).astype(int)
        if np.any(hi <= lo):
            raise SpinesimError(f"crop box {lower.tolist()}..{upper.tolist()} mm does not overlap the volume")
        return self.sub_volume(slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))

    # ------------------------------------------------------------------ sampling and resampling
    def sample(self, xyz: np.ndarray, *, order: int = 1, fill: float = 0.0) -> np.ndarray:
        """Values at LPS points ``xyz`` (shape (..., 3)): trilinear (order 1) or nearest (order 0)."""
        xyz = np.asarray(xyz, dtype=np.float64)
        ijk = self.world_to_voxel(xyz.reshape(-1, 3)).T
        values = ndimage.map_coordinates(self.array, ijk, order=order, mode="constant", cval=fill, prefilter=False)
        return values.reshape(xyz.shape[:-1])

    def resample(
        self,
        shape: Sequence[int],
        affine: np.ndarray,
        *,
        order: int = 1,
        fill: float | None = None,
        dtype: np.dtype | type | None = None,
    ) -> Volume:
        """This image on another grid (``shape`` voxels placed by ``affine``).

        Parameters
        ----------
        order : int
            1 for trilinear interpolation (CT), 0 for nearest neighbour (label maps).
        fill : float, optional
            Value outside this volume; defaults to the array's minimum for CT-like data
            (air) and 0 for label maps (order 0 with an integer array).
        dtype : optional
            Output dtype; defaults to this array's dtype (interpolated values are rounded for ints).
        """
        if order not in (0, 1):
            raise SpinesimError(f"resampling order must be 0 (nearest) or 1 (trilinear), got {order}")
        affine = _as_affine(affine)
        dtype = np.dtype(dtype or self.array.dtype)
        check_image_size(shape, np.float32 if order == 1 else dtype, what="the resampled image")
        if fill is None:
            fill = 0.0 if (order == 0 and np.issubdtype(self.array.dtype, np.integer)) else float(self.array.min())
        # Target index -> source index, applied by affine_transform without coordinate arrays.
        mapping = np.linalg.inv(self.affine) @ affine
        work_dtype = self.array.dtype if order == 0 else np.float32
        out = ndimage.affine_transform(
            self.array if order == 0 else self.array.astype(np.float32, copy=False),
            mapping[:3, :3], offset=mapping[:3, 3], output_shape=tuple(int(n) for n in shape),
            output=work_dtype, order=order, mode="constant", cval=fill, prefilter=False,
        )
        if np.issubdtype(dtype, np.integer) and order == 1:
            info = np.iinfo(dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        return Volume(out.astype(dtype, copy=False), affine)

    def resample_like(self, other: Volume, *, order: int = 1, fill: float | None = None) -> Volume:
        """This image resampled onto ``other``'s grid."""
        return self.resample(other.shape, other.affine, order=order, fill=fill)

    def resampled_to_spacing(self, spacing: ArrayLike3, *, order: int = 1, fill: float | None = None) -> Volume:
        """This image on a grid with the same orientation and extent but a new voxel size (mm)."""
        spacing = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,))
        check_spacing(spacing, where="the requested spacing")
        extent = (np.asarray(self.shape) - 1) * self.spacing
        shape = np.floor(extent / spacing + 1e-6).astype(int) + 1
        affine = np.eye(4)
        affine[:3, :3] = self.direction * spacing[None, :]
        affine[:3, 3] = self.origin
        return self.resample(shape, affine, order=order, fill=fill)
