"""Scattered radiation and the anti-scatter grid: a convolution model of the primary image.

Compton scatter in the patient reaches the detector as a broad haze on top of the primary image;
it grows with the patient's thickness and with the irradiated field, and it is why a heavy patient's
image is flat and why collimating tighter sharpens it. The model (the convolution approach of Boone
& Seibert, "An analytical model of the scattered radiation distribution in diagnostic radiology",
Med. Phys. 15:713, 1988):

1. Every exposed pixel of the primary image ``P`` sends out scatter in proportion to its primary
   and to the scatter-to-primary ratio of an infinitely wide slab of its water-equivalent thickness
   ``t`` (from the detected line integral through the beam's water curve):
   ``SPR_inf(t) = a t + b t^2``.
2. That scatter spreads as a Gaussian of standard deviation ``k t`` at the patient's exit surface,
   so a field of side ``L`` at contact with a slab collects, at its centre,
   ``SPR(t, L) = SPR_inf(t) erf(L / (2 sqrt(2) k t))^2``: less scatter for a smaller field.
   ``a``, ``b`` and ``k`` reproduce published SPRs of water phantoms without a grid at ~80 kVp,
   detector at the exit surface (:data:`PUBLISHED_WATER_SPR`).
3. The air gap between the patient's exit surface and the detector (on a C-arm 15-30 cm) lets
   scatter diverge more than the primary: scatter behaves as if emitted from an effective point
   source ``X_s`` = 17.5 cm before the exit surface (Sorenson & Floch, "Scatter rejection by air
   gaps: an empirical model", Med. Phys. 12:308, 1985: X_s was 15-20 cm in every condition), so at
   the detector its fluence is scaled by ``(X_s / (X_s + gap))^2`` against the primary's
   ``(d_exit / SID)^2`` and its kernel widens by ``(X_s + gap) / X_s``.
4. The grid passes ``T_p`` of the primary and ``T_s`` of the scatter (:class:`Grid`).

The scatter is computed on a coarse grid (it has no detail finer than a centimetre) from the
anatomy's noiseless primary only (the needle and a few mL of contrast scatter negligibly), so it is
cached with the frame's other per-pose facts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from anatomy_models.errors import SpinesimError

# Published scatter-to-primary ratios of water phantoms, no grid, detector at the phantom's exit
# surface, ~80 kVp: (thickness mm, square field side mm, SPR). Values as summarised by Boone & Seibert
# 1988 (above) and Chan & Doi, "The validity of Monte Carlo simulation in studies of scattered
# radiation in diagnostic radiology", Phys. Med. Biol. 28:109, 1983, read off their figures [to be
# re-read against the papers: recalled in the session that wrote this, not re-opened]. The model's
# a, b and k are fitted to the first three; the 30 cm point is held out (tests/simulator/test_scatter.py).
PUBLISHED_WATER_SPR: tuple[tuple[float, float, float], ...] = (
    (100.0, 300.0, 1.3),
    (200.0, 300.0, 3.7),
    (200.0, 100.0, 1.6),
    (300.0, 300.0, 7.0),
)
# SPR_inf(t) = a t + b t^2 (t in mm) and the kernel's standard deviation k t at the exit surface,
# solved from the first three points of PUBLISHED_WATER_SPR.
SPR_LINEAR_PER_MM = 7.33e-3
SPR_QUADRATIC_PER_MM2 = 5.67e-5
KERNEL_SIGMA_PER_THICKNESS = 0.265
# Effective scatter point source before the exit surface, mm (Sorenson & Floch 1985, above).
EFFECTIVE_SCATTER_SOURCE_MM = 175.0
# The coarse grid scatter is computed on, mm per cell at the detector.
_COARSE_CELL_MM = 4.0


@dataclass(frozen=True)
class Grid:
    """An anti-scatter grid's transmission of primary and of scattered radiation.

    Parameters
    ----------
    primary_transmission, scatter_transmission : float
        Fractions of the primary and of the scatter the grid lets through; (1, 1) is no grid.
        Default: a 10:1 focused grid as on a C-arm's image intensifier, T_p 0.72 and T_s 0.12 [ED:
        textbook ranges for 8:1-12:1 grids are T_p 0.65-0.75, T_s 0.05-0.15], a Bucky factor
        ``(1 + SPR) / (T_p + T_s SPR)`` of ~3.5 behind 20 cm of water at contact.
    """

    primary_transmission: float = 0.72
    scatter_transmission: float = 0.12

    def __post_init__(self) -> None:
        for name, value in (("primary", self.primary_transmission), ("scatter", self.scatter_transmission)):
            if not (np.isfinite(value) and 0.0 < value <= 1.0):
                raise SpinesimError(f"grid {name} transmission must be in (0, 1], got {value!r}")


NO_GRID = Grid(1.0, 1.0)


def infinite_field_spr(thickness_mm: np.ndarray | float) -> np.ndarray:
    """Scatter-to-primary ratio behind a wide water slab of ``thickness_mm``, no grid, at contact.

    Examples
    --------
    >>> round(float(infinite_field_spr(200.0)), 2)
    3.73
    """
    t = np.maximum(np.asarray(thickness_mm, dtype=np.float64), 0.0)
    return SPR_LINEAR_PER_MM * t + SPR_QUADRATIC_PER_MM2 * t * t


def contact_spr(thickness_mm: float, field_side_mm: float) -> float:
    """The model's SPR at the centre of a square field of side ``field_side_mm`` on a water slab, at contact.

    Examples
    --------
    >>> round(contact_spr(200.0, 100.0), 2)
    1.6
    """
    sigma = KERNEL_SIGMA_PER_THICKNESS * thickness_mm
    return float(infinite_field_spr(thickness_mm)) * math.erf(field_side_mm / (2.0 * math.sqrt(2.0) * sigma)) ** 2


@dataclass(frozen=True)
class ScatterGeometry:
    """Where the scatter leaves the patient relative to the detector.

    Parameters
    ----------
    source_to_exit_mm : float
        Focal spot to the patient's exit surface on the central ray, mm.
    source_to_detector_mm : float
        Focal spot to detector, mm.
    """

    source_to_exit_mm: float
    source_to_detector_mm: float

    @property
    def air_gap_mm(self) -> float:
        return max(self.source_to_detector_mm - self.source_to_exit_mm, 0.0)

    @property
    def fluence_factor(self) -> float:
        """Scatter's share at the detector relative to contact, against the primary's (Sorenson & Floch)."""
        scatter = (EFFECTIVE_SCATTER_SOURCE_MM / (EFFECTIVE_SCATTER_SOURCE_MM + self.air_gap_mm)) ** 2
        primary = (min(self.source_to_exit_mm, self.source_to_detector_mm) / self.source_to_detector_mm) ** 2
        return scatter / primary

    @property
    def spread_factor(self) -> float:
        """How much wider the scatter kernel is at the detector than at the exit surface."""
        return (EFFECTIVE_SCATTER_SOURCE_MM + self.air_gap_mm) / EFFECTIVE_SCATTER_SOURCE_MM


def scatter_image(primary: np.ndarray, thickness_mm: np.ndarray, field_mask: np.ndarray, pixel_size_mm: float,
                  geometry: ScatterGeometry) -> np.ndarray:
    """Scatter reaching the detector without a grid, in the units of ``primary`` (float32, same shape).

    Parameters
    ----------
    primary : numpy.ndarray
        Primary intensity per pixel relative to the open beam (``exp(-p)``).
    thickness_mm : numpy.ndarray
        Water-equivalent thickness per pixel, mm.
    field_mask : numpy.ndarray, bool
        Exposed pixels: only they scatter (and only they are read).
    pixel_size_mm : float
        Detector pixel pitch.
    geometry : ScatterGeometry
        Exit surface and detector distances (air gap).
    """
    n = primary.shape[0]
    factor = max(1, int(round(_COARSE_CELL_MM / pixel_size_mm)))
    while n % factor:
        factor -= 1
    coarse = n // factor
    source = np.where(field_mask, primary * infinite_field_spr(thickness_mm), 0.0)
    source = source.reshape(coarse, factor, coarse, factor).mean(axis=(1, 3))
    exposed = field_mask.any() and np.any(field_mask & (thickness_mm > 1.0))
    typical_mm = float(np.median(thickness_mm[field_mask & (thickness_mm > 1.0)])) if exposed else 0.0
    sigma_cells = KERNEL_SIGMA_PER_THICKNESS * typical_mm * geometry.spread_factor / (pixel_size_mm * factor)
    spread = ndimage.gaussian_filter(source, max(sigma_cells, 0.3), mode="constant", cval=0.0, truncate=3.0)
    # Back to full resolution (scatter is smooth: linear interpolation of cell centres).
    centres = (np.arange(n) + 0.5) / factor - 0.5
    fine = ndimage.map_coordinates(spread, np.meshgrid(centres, centres, indexing="ij"), order=1, mode="nearest")
    return (fine * geometry.fluence_factor).astype(np.float32)


def spr_of(primary: np.ndarray, scatter: np.ndarray, region: np.ndarray) -> float:
    """Mean scatter over mean primary in ``region`` (the measured SPR of an image)."""
    return float(np.mean(scatter[region]) / np.mean(primary[region]))

