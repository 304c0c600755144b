"""The needle a scenario hands the trainee: kind, gauge, length and bevel behaviour.

What the needle *is* belongs to the case (:mod:`scenarios.schema` turns a scenario's ``needle`` field
into a :class:`NeedleSpec`); where it is and how it moves is the engine's
(:mod:`simulator.needle.shaft`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from anatomy_models.errors import SpinesimError

NeedleKind = Literal["tuohy", "quincke", "rf_cannula"]

# Nominal outer diameters (mm) of needle gauges, ISO 9626 (regular-wall); clinical.md §5.2 uses
# 0.72 mm for 22 G [ED].
OUTER_DIAMETER_MM: dict[int, float] = {16: 1.651, 18: 1.270, 20: 0.908, 21: 0.819, 22: 0.718, 25: 0.514, 27: 0.413}

# One inch is 25.4 mm: a 3.5 in needle is 89 mm (clinical.md §2.1).
MM_PER_INCH = 25.4

# Suggested bevel deflection of a 22 G Quincke needle: 0.3 degrees per cm advanced, so the tip drifts
# ~1 mm at 4 cm and ~2 mm at 6 cm from the straight line [ED].
QUINCKE_BEVEL_DEFLECTION_DEG_PER_CM = 0.3


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
    bevel_deflection_deg_per_cm : float
        How far the shaft turns away from the bevel face per cm advanced, degrees/cm (0 = none;
        see the module docstring).
    """

    kind: NeedleKind = "quincke"
    gauge: int = 22
    length_mm: float = 3.5 * MM_PER_INCH
    hub_length_mm: float = 15.0
    hub_diameter_mm: float = 6.0
    bevel_deflection_deg_per_cm: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("tuohy", "quincke", "rf_cannula"):
            raise SpinesimError(f"unknown needle kind {self.kind!r}", hint="use tuohy, quincke or rf_cannula")
        if self.gauge not in OUTER_DIAMETER_MM:
            raise SpinesimError(f"unsupported needle gauge {self.gauge}", hint=f"use one of {sorted(OUTER_DIAMETER_MM)}")
        if not (np.isfinite(self.length_mm) and 10.0 <= self.length_mm <= 250.0):
            raise SpinesimError(f"needle length must be 10-250 mm, got {self.length_mm}")
        if not (np.isfinite(self.bevel_deflection_deg_per_cm) and 0.0 <= self.bevel_deflection_deg_per_cm <= 5.0):
            raise SpinesimError(f"bevel deflection must be 0-5 degrees per cm, got {self.bevel_deflection_deg_per_cm}")

    @property
    def outer_diameter_mm(self) -> float:
        return OUTER_DIAMETER_MM[self.gauge]
