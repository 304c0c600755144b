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
OUTER_DIAMETER_MM: dict[int, float] = {16: 1.651, 18: 1.270, 19: 1.067, 20: 0.908, 21: 0.819, 22: 0.718, 25: 0.514,
                                       27: 0.413}
# The RF cannula of a lumbar medial branch ablation: 18-20 G with a 5-10 mm active (uninsulated) tip
# (clinical.md §2.5 lists 16-22 G and 5-15 mm in use [S39][S40]; issue 21 asks for the common range).
RF_GAUGES: tuple[int, ...] = (18, 19, 20)
RF_ACTIVE_TIP_MM = (5.0, 10.0)
# A curved-tip cannula is steered by rolling the hub: it turns toward its curve as it advances, more than
# a bevel does. No source in clinical.md gives a rate; this is the curved tip's default deflection where
# the scenario gives none [ED: about three times the Quincke bevel's].
CURVED_TIP_DEFLECTION_DEG_PER_CM = 1.0

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
    active_tip_mm : float
        RF cannula only: the uninsulated length at the tip that stimulates and heats, mm
        (:data:`RF_ACTIVE_TIP_MM`); 0 for other needles.
    curved_tip : bool
        RF cannula only: a curved (rather than straight) tip, steered by rolling the hub.
    """

    kind: NeedleKind = "quincke"
    gauge: int = 22
    length_mm: float = 3.5 * MM_PER_INCH
    hub_length_mm: float = 15.0
    hub_diameter_mm: float = 6.0
    bevel_deflection_deg_per_cm: float = 0.0
    active_tip_mm: float = 0.0
    curved_tip: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("tuohy", "quincke", "rf_cannula"):
            raise SpinesimError(f"unknown needle kind {self.kind!r}", hint="use tuohy, quincke or rf_cannula")
        if self.gauge not in OUTER_DIAMETER_MM:
            raise SpinesimError(f"unsupported needle gauge {self.gauge}", hint=f"use one of {sorted(OUTER_DIAMETER_MM)}")
        if not (np.isfinite(self.length_mm) and 10.0 <= self.length_mm <= 250.0):
            raise SpinesimError(f"needle length must be 10-250 mm, got {self.length_mm}")
        if not (np.isfinite(self.bevel_deflection_deg_per_cm) and 0.0 <= self.bevel_deflection_deg_per_cm <= 5.0):
            raise SpinesimError(f"bevel deflection must be 0-5 degrees per cm, got {self.bevel_deflection_deg_per_cm}")
        if self.kind == "rf_cannula":
            low, high = RF_ACTIVE_TIP_MM
            if self.gauge not in RF_GAUGES:
                raise SpinesimError(f"an RF cannula of {self.gauge} G is not offered",
                                    hint=f"use {', '.join(f'{g} G' for g in RF_GAUGES)}")
            if not (np.isfinite(self.active_tip_mm) and low <= self.active_tip_mm <= high):
                raise SpinesimError(f"an RF cannula's active tip must be {low:g}-{high:g} mm, got {self.active_tip_mm}",
                                    hint="give active_tip_mm, e.g. 10")
        elif self.active_tip_mm or self.curved_tip:
            raise SpinesimError(f"a {self.kind} needle has no active tip or curved tip",
                                hint="active_tip_mm and curved_tip are for kind rf_cannula")

    @property
    def outer_diameter_mm(self) -> float:
        return OUTER_DIAMETER_MM[self.gauge]
