"""The C-arm: where the X-ray source and detector are, and the one projection matrix that follows.

Frame and angles
----------------
Everything is in the patient's LPS frame (mm): +x the patient's left, +y posterior, +z superior.
The patient lies PRONE, so the back faces the ceiling: in the neutral pose (0°, 0°) the X-ray tube is
under the table (anterior) and the detector (image intensifier) above the back (posterior); the beam
runs anterior -> posterior along +y.

The angles follow the DICOM Positioner Primary/Secondary Angle model (they say where the
*detector* is, seen from the isocentre), made independent of the patient's position:

* primary angle ``primary_deg``: LAO (+) / RAO (-), a rotation about the patient's long axis. Positive
  moves the detector toward the patient's LEFT (+x), negative toward the right.
* secondary angle ``secondary_deg``: cranial (+) / caudal (-). Positive tilts the detector toward the
  patient's HEAD (+z), negative toward the feet.

The unit vector from the isocentre to the detector centre, which is also the beam direction (source ->
detector), is therefore::

    beam = (sin(primary) cos(secondary), cos(primary) cos(secondary), sin(secondary))

so LAO 90 puts the detector on the patient's left (a left lateral), and the "ipsilateral oblique"
of clinical.md §1 (image intensifier rotated toward the needle side) is LAO for a left-sided needle.

Detector and image
------------------
The image is shown as the operator sees the prone patient from behind (from the detector side): head
at the top of the screen and, in the neutral pose, the patient's left on the screen's left.
The screen's up vector is the detector's rigidly rotated +z, ``up = d beam / d secondary``, and the
screen's right vector is ``up x beam``. Pixel ``(u, v)`` is column ``u`` (left to right) and row ``v``
(top to bottom); pixel centres sit at integer coordinates, ``(0, 0)`` is the centre of the top-left
pixel.

The 3x4 projection matrix ``P = K [R | -R s]`` (``s`` the source, ``R`` the rows right, -up, beam,
``K`` the intrinsics with focal length SID/pixel in pixels) maps homogeneous LPS points to
homogeneous pixels; everything that projects (DRR, needle overlay, landmark picking) uses it.

Default geometry: a mobile C-arm with a 9-inch (23 cm) image intensifier, the usual size on mobile
units (UMDNS definition of mobile C-arms: "typical size of the image intensifier ... 23 to 15 cm (9 to
6 inches) in dual mode", research.tib.eu/covid-19/page/entity/C0182626_UMD), source-to-image distance
1000 mm (GE OEC mobile C-arms are built around a ~100 cm SID) and source-to-isocentre distance
650 mm [ED], 512 x 512 pixels [ED].
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import numpy as np

from anatomy_models.errors import SpinesimError
from anatomy_models.structures import check_level, check_side, level_below
from scenarios.poses import CArmPose

if TYPE_CHECKING:
    from anatomy_models.anatomy import Anatomy
    from simulator.needle.shaft import Needle

DetectorShape = Literal["circle", "square"]
# The image intensifier's modes, cm: its full 23 cm (9-inch) field and two magnified ones; mobile C-arms'
# intensifiers are "23 to 15 cm (9 to 6 inches) in dual mode" (UMDNS, as for the default geometry below),
# the third, 11 cm (4.5-inch), as on tri-mode 9-inch intensifiers [ED].
MAGNIFICATION_MODES_CM: tuple[int, ...] = (23, 15, 11)


@dataclass(frozen=True)
class Collimation:
    """What the collimator lets through, as fractions of the detector's width.

    Parameters
    ----------
    iris : float
        Diameter of the round (iris) field, as a fraction of the detector width (0 < iris <= 1.5);
        the default 1.5 is fully open (above sqrt(2) the iris cuts nothing).
    width, height : float
        Opening of the rectangular shutters, as fractions of the detector width (horizontal) and
        height (vertical), each in (0, 1].
    """

    iris: float = 1.5
    width: float = 1.0
    height: float = 1.0

    def __post_init__(self) -> None:
        for name, value, top in (("iris", self.iris, 1.5), ("width", self.width, 1.0), ("height", self.height, 1.0)):
            if not (np.isfinite(value) and 0.0 < value <= top):
                raise SpinesimError(f"collimation {name} must be a fraction in (0, {top:g}], got {value!r}")


def _vector3(value: object, what: str) -> tuple[float, float, float]:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != (3,) or not np.all(np.isfinite(array)):
        raise SpinesimError(f"{what} must be three finite LPS numbers (mm), got {value!r}")
    return (float(array[0]), float(array[1]), float(array[2]))


@dataclass(frozen=True)
class CArm:
    """A C-arm pose and its imaging geometry.

    Parameters
    ----------
    primary_deg : float
        LAO (+) / RAO (-) angle in degrees, about the patient's long axis; + moves the detector toward
        the patient's left. -180 < primary_deg <= 180.
    secondary_deg : float
        Cranial (+) / caudal (-) tilt in degrees; + moves the detector toward the head. |tilt| < 90.
    isocenter : (3,) LPS mm
        The point the central ray passes through (the C-arm's centre of rotation).
    source_to_isocenter_mm : float
        Focal spot to isocentre distance (SOD), mm.
    source_to_detector_mm : float
        Focal spot to detector (image intensifier input) distance (SID), mm; larger than the SOD.
    detector_size_mm : float
        Width (= height) of the square detector array, mm, at the detector plane.
    detector_pixels : int
        Pixels across (the image is ``detector_pixels`` x ``detector_pixels``).
    detector_shape : {"circle", "square"}
        "circle" for an image intensifier (round field, black corners), "square" for a flat panel.
    collimation : Collimation
        Iris and shutter openings.
    full_field_mm : float, optional
        The image intensifier's full input field, mm, when ``detector_size_mm`` is a magnification mode's
        smaller one (None: the detector is at its full field). The exposure control then asks for more
        dose (:func:`simulator.imaging.dose.exposure_for`).

    Examples
    --------
    >>> carm = CArm(primary_deg=30)                          # LAO 30: detector toward the patient's left
    >>> bool(carm.beam_direction[0] > 0)
    True
    >>> carm.project([carm.isocenter]).round(3).tolist()     # the isocentre is the image centre
    [[255.5, 255.5]]
    """

    primary_deg: float = 0.0
    secondary_deg: float = 0.0
    isocenter: tuple[float, float, float] = (0.0, 0.0, 0.0)
    source_to_isocenter_mm: float = 650.0
    source_to_detector_mm: float = 1000.0
    detector_size_mm: float = 230.0
    detector_pixels: int = 512
    detector_shape: DetectorShape = "circle"
    collimation: Collimation = field(default_factory=Collimation)
    full_field_mm: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "isocenter", _vector3(self.isocenter, "C-arm isocentre"))
        primary = float(self.primary_deg)
        if not np.isfinite(primary):
            raise SpinesimError(f"C-arm primary angle must be a finite number of degrees, got {self.primary_deg!r}")
        object.__setattr__(self, "primary_deg", float((primary + 180.0) % 360.0 - 180.0) if primary != 180.0 else 180.0)
        if not (np.isfinite(self.secondary_deg) and abs(self.secondary_deg) < 90.0):
            raise SpinesimError(f"C-arm cranial/caudal tilt must be between -90 and 90 degrees, got {self.secondary_deg!r}")
        object.__setattr__(self, "secondary_deg", float(self.secondary_deg))
        if not (np.isfinite(self.source_to_isocenter_mm) and self.source_to_isocenter_mm > 0):
            raise SpinesimError(f"source-to-isocentre distance must be positive (mm), got {self.source_to_isocenter_mm!r}")
        if not (np.isfinite(self.source_to_detector_mm) and self.source_to_detector_mm > self.source_to_isocenter_mm):
            raise SpinesimError(f"source-to-detector distance ({self.source_to_detector_mm!r} mm) must exceed the "
                                f"source-to-isocentre distance ({self.source_to_isocenter_mm!r} mm)")
        if not (np.isfinite(self.detector_size_mm) and self.detector_size_mm > 0):
            raise SpinesimError(f"detector size must be positive (mm), got {self.detector_size_mm!r}")
        if int(self.detector_pixels) != self.detector_pixels or not 8 <= self.detector_pixels <= 4096:
            raise SpinesimError(f"detector pixels must be an integer 8-4096, got {self.detector_pixels!r}")
        object.__setattr__(self, "detector_pixels", int(self.detector_pixels))
        if self.detector_shape not in ("circle", "square"):
            raise SpinesimError(f"unknown detector shape {self.detector_shape!r}", hint="use 'circle' (image intensifier) or 'square' (flat panel)")
        object.__setattr__(self, "source_to_isocenter_mm", float(self.source_to_isocenter_mm))
        object.__setattr__(self, "source_to_detector_mm", float(self.source_to_detector_mm))
        object.__setattr__(self, "detector_size_mm", float(self.detector_size_mm))
        if self.full_field_mm is not None and not (np.isfinite(self.full_field_mm)
                                                   and self.full_field_mm >= self.detector_size_mm):
            raise SpinesimError(f"the intensifier's full field ({self.full_field_mm!r} mm) must be at least its "
                                f"field in use ({self.detector_size_mm:g} mm)",
                                hint="choose a smaller magnification field")

    @classmethod
    def at(cls, pose: CArmPose, default_isocenter: np.ndarray | tuple[float, float, float]) -> CArm:
        """The C-arm in ``pose`` (a ``set_carm`` action's, a session state's), centred on
        ``default_isocenter`` (LPS mm) unless the pose names an isocentre; default geometry otherwise.

        Raises
        ------
        SpinesimError
            If no C-arm can take the pose (a tilt of 90 degrees).

        Examples
        --------
        >>> CArm.at(CArmPose(primary_deg=30), (0, 0, 10)) == CArm(primary_deg=30, isocenter=(0, 0, 10))
        True
        """
        carm = cls(primary_deg=pose.primary_deg, secondary_deg=pose.secondary_deg,
                   isocenter=pose.isocenter or tuple(default_isocenter))
        if pose.field_cm is not None:
            carm = carm.magnified(10.0 * pose.field_cm)
        if pose.shutters is not None:
            carm = carm.with_(collimation=Collimation(width=pose.shutters, height=pose.shutters))
        return carm

    def magnified(self, field_mm: float) -> CArm:
        """The C-arm in an image intensifier's magnification mode of ``field_mm`` across: the same pixels
        over the smaller field (finer), the full field remembered for the exposure control.

        Examples
        --------
        >>> mag = CArm().magnified(150.0)
        >>> mag.detector_size_mm, mag.full_field_mm, round(mag.pixel_size_mm / CArm().pixel_size_mm, 3)
        (150.0, 230.0, 0.652)
        """
        full = self.full_field_mm or self.detector_size_mm
        if not (np.isfinite(field_mm) and 0.0 < field_mm <= full):
            raise SpinesimError(f"a magnification field must be within the intensifier's {full / 10:g} cm, got "
                                f"{field_mm / 10:g} cm",
                                hint=f"use one of the modes: {', '.join(map(str, MAGNIFICATION_MODES_CM))} cm")
        return self.with_(detector_size_mm=float(field_mm), full_field_mm=None if field_mm == full else full)

    # ------------------------------------------------------------------ frame
    @property
    def beam_direction(self) -> np.ndarray:
        """Unit LPS vector from the source toward the detector (isocentre -> detector centre)."""
        a, b = np.radians(self.primary_deg), np.radians(self.secondary_deg)
        return np.array([np.sin(a) * np.cos(b), np.cos(a) * np.cos(b), np.sin(b)])

    @property
    def screen_up(self) -> np.ndarray:
        """Unit LPS vector that points to the top of the displayed image (the head in the neutral pose)."""
        a, b = np.radians(self.primary_deg), np.radians(self.secondary_deg)
        return np.array([-np.sin(a) * np.sin(b), -np.cos(a) * np.sin(b), np.cos(b)])

    @property
    def screen_right(self) -> np.ndarray:
        """Unit LPS vector that points to the right of the displayed image (the patient's right in AP)."""
        return np.cross(self.screen_up, self.beam_direction)

    @property
    def source(self) -> np.ndarray:
        """LPS mm of the focal spot."""
        return np.asarray(self.isocenter) - self.source_to_isocenter_mm * self.beam_direction

    @property
    def detector_center(self) -> np.ndarray:
        """LPS mm of the centre of the detector."""
        return self.source + self.source_to_detector_mm * self.beam_direction

    @property
    def pixel_size_mm(self) -> float:
        """Detector pixel pitch at the detector plane, mm."""
        return self.detector_size_mm / self.detector_pixels

    @property
    def magnification(self) -> float:
        """Geometric magnification of an object at the isocentre, SID / SOD."""
        return self.source_to_detector_mm / self.source_to_isocenter_mm

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape (rows, columns)."""
        return (self.detector_pixels, self.detector_pixels)

    @property
    def label(self) -> str:
        """Clinical name of the angles, e.g. ``"LAO 25° CRAN 5°"``; a true lateral is ``"LEFT LAT"`` or ``"RIGHT LAT"``
        (the side against the detector), as a pain physician calls it.

        >>> CArm(primary_deg=90).label, CArm(primary_deg=-90, secondary_deg=-5).label, CArm(primary_deg=89).label
        ('LEFT LAT', 'RIGHT LAT CAUD 5°', 'LAO 89°')
        """
        if abs(self.primary_deg) < 0.05:
            primary = "AP"
        elif abs(abs(self.primary_deg) - 90.0) < 0.05:
            primary = "LEFT LAT" if self.primary_deg > 0 else "RIGHT LAT"
        else:
            primary = f"{'LAO' if self.primary_deg > 0 else 'RAO'} {abs(self.primary_deg):.0f}°"
        tilt = "" if abs(self.secondary_deg) < 0.05 else f" {'CRAN' if self.secondary_deg > 0 else 'CAUD'} {abs(self.secondary_deg):.0f}°"
        return primary + tilt

    # ------------------------------------------------------------------ projection
    @property
    def intrinsics(self) -> np.ndarray:
        """3x3 camera matrix K: focal length SID/pixel (pixels) and the principal point at the centre."""
        focal = self.source_to_detector_mm / self.pixel_size_mm
        centre = (self.detector_pixels - 1) / 2.0
        return np.array([[focal, 0.0, centre], [0.0, focal, centre], [0.0, 0.0, 1.0]])

    @property
    def rotation(self) -> np.ndarray:
        """3x3 matrix whose rows are screen right, screen down and the beam direction (LPS)."""
        return np.stack([self.screen_right, -self.screen_up, self.beam_direction])

    @property
    def projection_matrix(self) -> np.ndarray:
        """The 3x4 matrix P with ``(u w, v w, w) = P (x, y, z, 1)``; ``w`` is the depth from the source (mm).

        Shared and read-only: made once per pose (a live frame asks for it about ten times, 0.2 ms each).
        """
        return _projection_matrix(self)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixel coordinates ``(u, v)`` (column, row; float) of LPS points, shape (..., 3) -> (..., 2)."""
        points = np.asarray(points, dtype=np.float64)
        homogeneous = points @ self.projection_matrix[:, :3].T + self.projection_matrix[:, 3]
        return homogeneous[..., :2] / homogeneous[..., 2:3]

    def depth(self, points: np.ndarray) -> np.ndarray:
        """Distance (mm) of LPS points from the source along the beam direction, shape (...,)."""
        return (np.asarray(points, dtype=np.float64) - self.source) @ self.beam_direction

    @property
    def pixel_to_direction(self) -> np.ndarray:
        """3x3 matrix taking homogeneous pixel (u, v, 1) to the ray's LPS direction (of depth 1 mm).

        It is the inverse of the projection matrix's left 3x3 block, so back-projection uses the
        same matrix as projection.
        """
        return np.linalg.inv(self.projection_matrix[:, :3])

    def ray_directions(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Unit LPS directions (source -> pixel) of the rays through pixel coordinates ``u``, ``v``."""
        u, v = np.broadcast_arrays(np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64))
        pixel = np.stack([u, v, np.ones_like(u)], axis=-1)
        directions = pixel @ self.pixel_to_direction.T
        return directions / np.linalg.norm(directions, axis=-1, keepdims=True)

    def pixel_to_ray(self, u: float | np.ndarray, v: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ray through pixel ``(u, v)``: (source point, unit direction), both LPS.

        Examples
        --------
        >>> carm = CArm(primary_deg=-20, secondary_deg=10, isocenter=(5, 0, 30))
        >>> point = np.array([12.0, -40.0, 55.0])
        >>> source, direction = carm.pixel_to_ray(*carm.project(point))
        >>> bool(np.linalg.norm(np.cross(point - source, direction)) < 1e-9)
        True
        """
        return self.source, self.ray_directions(u, v)

    def corner_rays(self) -> np.ndarray:
        """Unit directions of the rays through the four outer corners of the detector, shape (4, 3)."""
        edge = np.array([-0.5, self.detector_pixels - 0.5])
        u, v = np.meshgrid(edge, edge)
        return self.ray_directions(u.ravel(), v.ravel())

    # ------------------------------------------------------------------ field
    def field_mask(self) -> np.ndarray:
        """Boolean image (rows, columns): True where X-rays reach the detector (II circle, iris, shutters).

        Shared and read-only (cached per detector and collimation).
        """
        return _field_mask(self.detector_pixels, self.detector_shape, self.collimation)

    def field_area_at_detector_mm2(self) -> float:
        """Area of the exposed field at the detector plane, mm^2."""
        return float(self.field_mask().sum()) * self.pixel_size_mm**2

    def with_(self, **changes: object) -> CArm:
        """A copy with some fields changed (``carm.with_(primary_deg=30)``)."""
        return replace(self, **changes)

    def binned(self, bin_pixels: int) -> RaysOfBins:
        """This detector's image ``bin_pixels`` times smaller across, each pixel (a bin of ``bin_pixels`` x
        ``bin_pixels`` of this detector's) seen by the ray of one of its own pixels: :class:`RaysOfBins`.

        Raises
        ------
        SpinesimError
            If the detector's pixels are not a whole number of bins across.

        Examples
        --------
        >>> preview = CArm().binned(4)
        >>> preview.detector_pixels, preview.full == CArm()
        (128, True)
        """
        if int(bin_pixels) != bin_pixels or bin_pixels < 1 or self.detector_pixels % int(bin_pixels):
            raise SpinesimError(f"a detector of {self.detector_pixels} pixels cannot be binned by {bin_pixels!r}",
                                hint="bin by a whole number of pixels that divides the detector's")
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        fields["detector_pixels"] = self.detector_pixels // int(bin_pixels)
        return RaysOfBins(**fields, bin_pixels=int(bin_pixels))


@dataclass(frozen=True)
class RaysOfBins(CArm):
    """A detector of ``full``'s binned ``bin_pixels`` x ``bin_pixels``, each bin seen by one ray: that of its
    pixel ``bin_pixels // 2`` down and across (:meth:`CArm.binned`), half of ``full``'s pixel from the bin's
    centre for an even bin. Its rays are ``full``'s own, so the DRR projects them once for the binned image
    (a new pose's preview) and the full one (:func:`simulator.imaging.drr.anatomy_basis_line_integrals`).

    Examples
    --------
    >>> full, preview = CArm(primary_deg=20), CArm(primary_deg=20).binned(4)
    >>> point = [10.0, 0.0, 30.0]
    >>> bool(np.allclose(4 * preview.project([point]) + 2, full.project([point])))  # bin i -> pixel 4 i + 2
    True
    """

    bin_pixels: int = 1

    @property
    def intrinsics(self) -> np.ndarray:
        """:attr:`CArm.intrinsics` with the principal point where bin ``i``'s ray is ``full``'s pixel
        ``bin_pixels * i + bin_pixels // 2``."""
        matrix = super().intrinsics
        full_centre = (self.detector_pixels * self.bin_pixels - 1) / 2.0
        matrix[:2, 2] = (full_centre - self.bin_pixels // 2) / self.bin_pixels
        return matrix

    @property
    def full(self) -> CArm:
        """The detector these are the bins of."""
        fields = {name: getattr(self, name) for name in CArm.__dataclass_fields__}
        fields["detector_pixels"] = self.detector_pixels * self.bin_pixels
        return CArm(**fields)


@lru_cache(maxsize=64)
def _projection_matrix(carm: CArm) -> np.ndarray:
    """:attr:`CArm.projection_matrix` of ``carm`` (read-only)."""
    rotation = carm.rotation
    matrix = carm.intrinsics @ np.hstack([rotation, -(rotation @ carm.source)[:, None]])
    matrix.setflags(write=False)
    return matrix


@lru_cache(maxsize=32)
def _field_mask(pixels: int, shape: DetectorShape, collimation: Collimation) -> np.ndarray:
    centre = (pixels - 1) / 2.0
    coordinate = (np.arange(pixels) - centre) / pixels  # fraction of the detector width from the centre
    x = coordinate[None, :]
    y = coordinate[:, None]
    radius = np.hypot(x, y)
    mask = (radius <= collimation.iris / 2.0) & (np.abs(x) <= collimation.width / 2.0) & (np.abs(y) <= collimation.height / 2.0)
    if shape == "circle":
        mask &= radius <= 0.5
    mask.setflags(write=False)
    return mask


# --------------------------------------------------------------------------- named set-ups
def _angles_of(beam: np.ndarray) -> tuple[float, float]:
    """Primary and secondary angles (degrees) whose beam direction is the unit vector ``beam``."""
    beam = np.asarray(beam, dtype=np.float64)
    beam = beam / np.linalg.norm(beam)
    secondary = float(np.degrees(np.arcsin(np.clip(beam[2], -1.0, 1.0))))
    primary = float(np.degrees(np.arctan2(beam[0], beam[1])))
    return primary, secondary


def _isocenter(anatomy: Anatomy | None, level: str | None, fields: dict) -> dict:
    """C-arm fields with the isocentre at the centre of vertebral body ``level`` when one is named."""
    if level is not None:
        if anatomy is None:
            raise SpinesimError(f"centring the C-arm on {level} needs an anatomy", hint="pass the anatomy as well")
        if "isocenter" in fields:
            raise SpinesimError("give either a level to centre on or an isocentre, not both")
        fields = dict(fields, isocenter=anatomy.landmark(f"{check_level(level)}.body.center"))
    return fields


def ap(anatomy: Anatomy | None = None, level: str | None = None, **fields: object) -> CArm:
    """True AP (beam anterior -> posterior through the prone patient), centred on ``level``.

    Examples
    --------
    >>> ap(isocenter=(0, 0, 40)).label
    'AP'
    """
    return CArm(primary_deg=0.0, secondary_deg=0.0, **_isocenter(anatomy, level, fields))


def lateral(anatomy: Anatomy | None = None, level: str | None = None, side: str = "left", **fields: object) -> CArm:
    """Lateral view with the detector on the patient's ``side`` (left lateral = LAO 90)."""
    primary = 90.0 if check_side(side) == "left" else -90.0
    return CArm(primary_deg=primary, **_isocenter(anatomy, level, fields))


def ipsilateral_oblique(anatomy: Anatomy | None = None, level: str | None = None, side: str = "left",
                        angle_deg: float = 25.0, **fields: object) -> CArm:
    """Oblique with the detector rotated ``angle_deg`` toward the needle's ``side`` (clinical.md §1).

    Typical lumbar angles are 20-35° for the Scotty dog and subpedicular TFESI (clinical.md §2.2(a)
    [S17][S20]).
    """
    sign = 1.0 if check_side(side) == "left" else -1.0
    return CArm(primary_deg=sign * abs(angle_deg), secondary_deg=fields.pop("secondary_deg", 0.0),
                **_isocenter(anatomy, level, fields))


def contralateral_oblique(anatomy: Anatomy | None = None, level: str | None = None, side: str = "left",
                          angle_deg: float = 45.0, **fields: object) -> CArm:
    """Contralateral oblique (CLO): detector rotated ``angle_deg`` away from the needle's ``side``.

    About 45° in the lumbar spine, where the ventral interlaminar line (VILL) shows the depth of the
    epidural space (clinical.md §1 [S7][S11]).
    """
    opposite = "right" if check_side(side) == "left" else "left"
    return ipsilateral_oblique(anatomy, level, opposite, angle_deg, **fields)


def squaring_tilt_deg(normal: np.ndarray, primary_deg: float) -> float:
    """The cranio-caudal tilt (degrees) that puts the beam in the plane of an endplate with unit ``normal``.

    At primary angle ``primary_deg`` the beam is ``(sin a cos b, cos a cos b, sin b)``; it lies in the
    endplate plane when ``normal . beam = 0``, i.e. ``tan b = -(n_x sin a + n_y cos a) / n_z``.

    Examples
    --------
    >>> tilted = np.array([0.0, np.sin(np.radians(12)), np.cos(np.radians(12))])  # normal leaning posterior
    >>> round(squaring_tilt_deg(tilted, 0.0), 6)                                   # 12° caudal squares it
    -12.0
    """
    n = np.asarray(normal, dtype=np.float64)
    a = np.radians(primary_deg)
    if abs(n[2]) < 1e-6:
        raise SpinesimError("the endplate normal lies in the axial plane; no cranio-caudal tilt squares it")
    return float(np.degrees(np.arctan(-(n[0] * np.sin(a) + n[1] * np.cos(a)) / n[2])))


def square_endplate(anatomy: Anatomy, level: str, primary_deg: float = 0.0, **fields: object) -> CArm:
    """AP (or the given primary angle) with the tilt that squares the superior endplate of ``level``.

    The beam then runs along the endplate, so it projects as one line instead of an ellipse
    (clinical.md §1 [S5][S33]); the tilt comes from ``{level}.superior_endplate.normal``.
    """
    normal = anatomy.direction(f"{check_level(level)}.superior_endplate.normal")
    fields = _isocenter(anatomy, level, fields) if "isocenter" not in fields else fields
    return CArm(primary_deg=primary_deg, secondary_deg=squaring_tilt_deg(normal, primary_deg), **fields)


# The ipsilateral oblique of the subpedicular TFESI view, typically 20-35 deg (clinical.md §2.2(a) [S17][S20]).
SCOTTY_DOG_RANGE_DEG = (20.0, 35.0)


def scotty_dog_angle_deg(anatomy: Anatomy, level: str, side: str) -> float:
    """Ipsilateral oblique angle (degrees, >= 0) that puts the SAP below ``level`` under its pedicle.

    The subpedicular TFESI view is obliqued "enough to bring the SAP under the pedicle 6-o'clock
    position" (clinical.md §2.2(a) [S17][S20]): the superior articular process of the next vertebra
    down (the Scotty dog's ear, one level below) must project straight below the pedicle's inferior
    margin. In the axial plane that is the direction joining the two points, so the primary angle
    is ``atan(dx / dy)`` of the vector from ``{level}.pedicle.{side}.six_oclock`` to the centroid of
    the SAP's voxels (both from the anatomy), taken toward ``side``, kept within the 20-35 deg that
    clinical.md §2.2(a) gives for this view (:data:`SCOTTY_DOG_RANGE_DEG`): on real vertebra shapes the
    SAP stands almost straight behind the pedicle above it (1-2 mm lateral, 9 mm behind, on the
    Clouthier 2023 mean shapes), where a millimetre moves the angle by 6 deg and the ear stays under the eye
    over the whole range.
    """
    check_side(side)
    below = level_below(check_level(level))
    pedicle = anatomy.landmark(f"{level}.pedicle.{side}.six_oclock")
    mask = anatomy.mask(f"{below}.SAP.{side}")
    if not mask.any():
        raise SpinesimError(f"structure {below}.SAP.{side} has no voxels, so the Scotty-dog angle cannot be derived",
                            hint="give the oblique angle explicitly")
    sap = anatomy.labels.voxel_to_world(np.argwhere(mask).mean(axis=0))
    offset = sap - pedicle
    lateral_mm = offset[0] if side == "left" else -offset[0]
    return float(np.clip(np.degrees(np.arctan2(lateral_mm, offset[1])), *SCOTTY_DOG_RANGE_DEG))


def scotty_dog(anatomy: Anatomy, level: str, side: str, angle_deg: float | None = None, **fields: object) -> CArm:
    """Squared ipsilateral oblique at ``level`` on ``side``: the Scotty-dog (trajectory) view.

    The endplate of ``level`` stays squared at the oblique angle (tilt from its normal); the angle is
    :func:`scotty_dog_angle_deg` unless given. On it the posterior elements of ``level`` form the
    dog: nose = transverse process, eye = pedicle, ear = SAP (clinical.md §1 [S30]).
    """
    angle = scotty_dog_angle_deg(anatomy, level, side) if angle_deg is None else abs(float(angle_deg))
    primary = angle if check_side(side) == "left" else -angle
    return square_endplate(anatomy, level, primary_deg=primary, **fields)


def gun_barrel(needle: Needle, **fields: object) -> CArm:
    """The trajectory ("gun-barrel") view: central ray along the needle, so the needle is a dot.

    The isocentre is the needle tip and the beam runs from the tip side to the hub side, so the
    source lies on the needle's axis and the whole shaft projects onto one point (clinical.md §1).
    """
    primary, secondary = _angles_of(-needle.direction)
    if abs(secondary) >= 89.0:
        raise SpinesimError("the needle points along the patient's long axis; a C-arm cannot look down it")
    return CArm(primary_deg=primary, secondary_deg=secondary, isocenter=needle.tip, **fields)
