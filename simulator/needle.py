"""The needle's geometry: what it is (type, gauge, length) and where it is (entry, direction, depth).

A needle is a straight steel shaft. Its tip is ``entry + depth_mm * direction``; the hub sits on the
shaft's outer end, ``length_mm - depth_mm`` outside the skin. Behaviour (advancing through tissue,
bone stops, loss of resistance) lives in the session engine; this module is pure geometry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from anatomy_models.errors import SpinesimError

NeedleKind = Literal["tuohy", "quincke", "rf_cannula"]

# Nominal outer diameters (mm) of needle gauges, ISO 9626 (regular-wall); clinical.md §5.2 uses
# 0.72 mm for 22 G [ED].
OUTER_DIAMETER_MM: dict[int, float] = {16: 1.651, 18: 1.270, 20: 0.908, 21: 0.819, 22: 0.718, 25: 0.514, 27: 0.413}

# One inch is 25.4 mm: a 3.5 in needle is 89 mm (clinical.md §2.1).
MM_PER_INCH = 25.4


@dataclass(frozen=True)
class NeedleSpec:
    """What needle the scenario hands the trainee.

    Parameters
    ----------
    kind : {"tuohy", "quincke", "rf_cannula"}
        Tuohy epidural (blunt curved tip), Quincke spinal (sharp bevel), or insulated RF cannula.
    gauge : int
        Needle gauge (16-27 G).
    length_mm : float
        Shaft length from hub to tip, mm.
    hub_length_mm, hub_diameter_mm : float
        Size of the plastic/steel hub, mm (shown on fluoroscopy) [ED].
    """

    kind: NeedleKind = "quincke"
    gauge: int = 22
    length_mm: float = 3.5 * MM_PER_INCH
    hub_length_mm: float = 15.0
    hub_diameter_mm: float = 6.0

    def __post_init__(self) -> None:
        if self.kind not in ("tuohy", "quincke", "rf_cannula"):
            raise SpinesimError(f"unknown needle kind {self.kind!r}", hint="use tuohy, quincke or rf_cannula")
        if self.gauge not in OUTER_DIAMETER_MM:
            raise SpinesimError(f"unsupported needle gauge {self.gauge}", hint=f"use one of {sorted(OUTER_DIAMETER_MM)}")
        if not (np.isfinite(self.length_mm) and 10.0 <= self.length_mm <= 250.0):
            raise SpinesimError(f"needle length must be 10-250 mm, got {self.length_mm}")

    @property
    def outer_diameter_mm(self) -> float:
        return OUTER_DIAMETER_MM[self.gauge]


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

    Examples
    --------
    >>> n = Needle(entry=[0, 80, 0], direction=[0, -1, 0], depth_mm=50)
    >>> n.tip.tolist(), n.hub.round(3).tolist()   # a 3.5 in (88.9 mm) needle, 50 mm in
    ([0.0, 30.0, 0.0], [0.0, 118.9, 0.0])
    """

    entry: np.ndarray
    direction: np.ndarray
    depth_mm: float
    spec: NeedleSpec = field(default_factory=NeedleSpec)

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
        object.__setattr__(self, "depth_mm", float(self.depth_mm))

    @property
    def tip(self) -> np.ndarray:
        """LPS mm of the needle tip."""
        return self.entry + self.depth_mm * self.direction

    @property
    def hub(self) -> np.ndarray:
        """LPS mm of the shaft's outer end, where the hub starts."""
        return self.entry - (self.spec.length_mm - self.depth_mm) * self.direction
