"""The needle in the patient: where it is (entry, direction, depth) and how it moves.

What it is (type, gauge, length) is the case's :class:`scenarios.needles.NeedleSpec`.

A needle is a straight steel shaft. Its tip is ``entry + depth_mm * direction``; the hub sits on the
shaft's outer end, ``length_mm - depth_mm`` outside the skin. Moving it (:meth:`Needle.advanced`,
:meth:`Needle.withdrawn`, :meth:`Needle.redirected`) returns a new pose; what the tissue does to it
(bone stops, events, loss of resistance) lives in :mod:`simulator.needle.trace` and the session engine.

Bevel deflection. A Quincke needle's asymmetric bevel pushes it away from the bevel face as it cuts
forward. The straight-shaft model keeps the shaft straight and pivots it about the skin entry point
instead: each millimetre advanced turns the direction by ``spec.bevel_deflection_deg_per_cm / 10``
degrees away from the bevel face. The tip then drifts sideways by ``depth * angle``, i.e. roughly with
the square of depth, which is how a bevelled needle drifts. No source in clinical.md gives a rate, so
it is off by default (0) and a scenario switches it on; :data:`scenarios.needles.QUINCKE_BEVEL_DEFLECTION_DEG_PER_CM`
is the suggested value [ED]. It is deterministic: no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from anatomy_models.errors import SpinesimError
from scenarios.needles import NeedleSpec


@dataclass(frozen=True)
class Needle:
    """A needle placed in the patient.

    Parameters
    ----------
    entry : array (3,)
        Skin entry point, LPS mm.
    direction : array (3,)
        Unit vector from the entry point toward the tip, LPS.
    depth_mm : float
        Inserted length, 0 (tip at the skin) to ``spec.length_mm`` (hub at the skin).
    spec : NeedleSpec
        Type, gauge and length.
    bevel_roll_deg : float
        Where the bevel face points, degrees about the shaft (right-hand rule about ``direction``);
        0 is :func:`shaft_up`, toward the head for any needle not running along z.

    Examples
    --------
    >>> n = Needle(entry=[0, 80, 0], direction=[0, -1, 0], depth_mm=50)
    >>> n.tip.tolist(), n.hub.round(3).tolist()   # a 3.5 in (88.9 mm) needle, 50 mm in
    ([0.0, 30.0, 0.0], [0.0, 118.9, 0.0])
    >>> n.advanced(10).tip.tolist(), n.withdrawn(45).depth_mm
    ([0.0, 20.0, 0.0], 5.0)
    """

    entry: np.ndarray
    direction: np.ndarray
    depth_mm: float
    spec: NeedleSpec = field(default_factory=NeedleSpec)
    bevel_roll_deg: float = 0.0

    def __post_init__(self) -> None:
        entry = np.asarray(self.entry, dtype=np.float64)
        direction = np.asarray(self.direction, dtype=np.float64)
        if entry.shape != (3,) or not np.all(np.isfinite(entry)):
            raise SpinesimError(f"needle entry must be three finite LPS numbers (mm), got {self.entry!r}")
        norm = np.linalg.norm(direction) if direction.shape == (3,) else 0.0
        if not np.isfinite(norm) or norm < 1e-9:
            raise SpinesimError(f"needle direction must be a non-zero finite 3-vector, got {self.direction!r}")
        if not (np.isfinite(self.depth_mm) and 0.0 <= self.depth_mm <= self.spec.length_mm):
            raise SpinesimError(f"needle depth must be 0-{self.spec.length_mm:g} mm (its length), got {self.depth_mm}")
        object.__setattr__(self, "entry", entry)
        object.__setattr__(self, "direction", direction / norm)
        if not np.isfinite(self.bevel_roll_deg):
            raise SpinesimError(f"bevel roll must be a finite angle in degrees, got {self.bevel_roll_deg}")
        object.__setattr__(self, "depth_mm", float(self.depth_mm))
        object.__setattr__(self, "bevel_roll_deg", float(self.bevel_roll_deg))

    @property
    def tip(self) -> np.ndarray:
        """LPS mm of the needle tip."""
        return self.entry + self.depth_mm * self.direction

    @property
    def hub(self) -> np.ndarray:
        """LPS mm of the shaft's outer end, where the hub starts."""
        return self.entry - (self.spec.length_mm - self.depth_mm) * self.direction

    @property
    def bevel_face(self) -> np.ndarray:
        """Unit vector (LPS, perpendicular to the shaft) the bevel's opening faces."""
        return rotate_about(shaft_up(self.direction), self.direction, self.bevel_roll_deg)

    def at_depth(self, depth_mm: float) -> Needle:
        """The same shaft inserted to ``depth_mm`` (mm)."""
        return replace(self, depth_mm=depth_mm)

    def advanced(self, mm: float) -> Needle:
        """The needle pushed ``mm`` (> 0) further in, turned by its bevel deflection on the way.

        The hub stops it: the result is never deeper than ``spec.length_mm``.
        """
        depth = min(self.depth_mm + mm, self.spec.length_mm)
        turn_deg = self.spec.bevel_deflection_deg_per_cm * (depth - self.depth_mm) / 10.0
        if turn_deg == 0.0:
            return self.at_depth(depth)
        # Away from the bevel face: rotate the direction in the plane of (direction, bevel face).
        axis = np.cross(self.bevel_face, self.direction)
        return replace(self, direction=rotate_about(self.direction, axis, turn_deg), depth_mm=depth)

    def withdrawn(self, mm: float) -> Needle:
        """The needle pulled ``mm`` back along its own shaft (not past the skin: depth >= 0)."""
        return self.at_depth(max(self.depth_mm - mm, 0.0))

    def redirected(self, direction: np.ndarray, depth_mm: float, bevel_roll_deg: float | None = None) -> Needle:
        """The shaft pivoted about the skin entry onto ``direction`` at ``depth_mm``."""
        return replace(self, direction=np.asarray(direction, dtype=np.float64), depth_mm=depth_mm,
                       bevel_roll_deg=self.bevel_roll_deg if bevel_roll_deg is None else bevel_roll_deg)


# A Quincke spinal needle's tip is ground in one oblique plane, the bevel: its sharp point on the side away from the
# bevel's opening, its heel 2 r cot(angle) behind the point on the opening's side (a 22 G's 0.71 mm shaft: a bevel
# 1.5 mm long at 25 degrees), so at close magnification its shadow ends in a slanted cut, not a square end (issue
# 16's blind read: "the tip shows its bevel") [ED 25 degrees: a medium, cutting bevel]. A Tuohy's curved, blunted
# tip and an RF cannula's are drawn square.
QUINCKE_BEVEL_DEG = 25.0


def bevel_cut(needle: Needle) -> tuple[np.ndarray, float] | None:
    """The half-space ``normal . p <= offset`` (LPS mm) that the bevel leaves of a Quincke needle's shaft, or None
    for a square-ended needle: the plane through the sharp point (the tip on the shaft's rim away from the bevel
    face) inclined :data:`QUINCKE_BEVEL_DEG` to the shaft.

    Examples
    --------
    >>> n = Needle(entry=[0, 80, 0], direction=[0, -1, 0], depth_mm=50)   # bevel face toward the head (+z)
    >>> normal, offset = bevel_cut(n)
    >>> r = n.spec.outer_diameter_mm / 2
    >>> heel_back = 2 * r / np.tan(np.radians(QUINCKE_BEVEL_DEG))   # the heel, this far behind the point (mm)
    >>> point, heel = n.tip - r * n.bevel_face, n.tip + r * n.bevel_face - heel_back * n.direction
    >>> round(float(heel_back), 2), [abs(round(float(normal @ q - offset), 6)) for q in (point, heel)]
    (1.54, [0.0, 0.0])
    >>> bool(normal @ n.tip > offset)   # the axis's end is cut away
    True
    """
    if needle.spec.kind != "quincke":
        return None
    slope = 1.0 / np.tan(np.radians(QUINCKE_BEVEL_DEG))
    normal = needle.direction + slope * needle.bevel_face
    return normal, float(normal @ needle.tip - slope * needle.spec.outer_diameter_mm / 2.0)


def shaft_up(direction: np.ndarray) -> np.ndarray:
    """A unit vector perpendicular to ``direction``: superior (+z) projected off it, or +x when the
    shaft runs along z. The zero of :attr:`Needle.bevel_roll_deg`.
    """
    direction = np.asarray(direction, dtype=np.float64)
    reference = np.array([0.0, 0.0, 1.0]) if abs(direction[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    up = reference - np.dot(reference, direction) * direction
    return up / np.linalg.norm(up)


def rotate_about(vector: np.ndarray, axis: np.ndarray, angle_deg: float) -> np.ndarray:
    """``vector`` rotated by ``angle_deg`` degrees about ``axis`` (right-hand rule, Rodrigues).

    Examples
    --------
    >>> rotate_about([1, 0, 0], [0, 0, 1], 90).round(12).tolist()
    [0.0, 1.0, 0.0]
    """
    vector = np.asarray(vector, dtype=np.float64)
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    angle = np.radians(angle_deg)
    return (vector * np.cos(angle) + np.cross(axis, vector) * np.sin(angle)
            + axis * np.dot(axis, vector) * (1.0 - np.cos(angle)))
