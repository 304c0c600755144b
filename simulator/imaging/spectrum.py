"""The polychromatic X-ray beam: tube spectrum, attenuation by material, and the detected signal.

A C-arm's beam is a bremsstrahlung spectrum, not one energy: its low energies are absorbed first
(beam hardening), and bone and iodine, whose attenuation falls faster with energy than soft
tissue's, lose contrast as the tube voltage rises. The model:

1. **Spectrum.** The photon fluence per energy bin of a tungsten-anode tube at ``kvp`` behind
   ``filtration_mm_al`` of aluminium, from SpekPy (Poludniowski et al., "SpekPy v2.0 -- a software
   toolkit for modeling x-ray tube spectra", Med. Phys. 48:3630, 2021; MIT licence), with its air
   kerma, so photons per uGy come from the same spectrum.
2. **Materials.** Mass attenuation of water, ICRU cortical bone, iodine and steel (iron) at every
   bin from their elemental composition (``anatomy_models.tissues.COMPOSITION_MASS_FRACTIONS``) and
   xraydb's element tables (NIST-equivalent).
3. **Line integrals per material, not per energy.** The DRR projects a CT once into the path length
   of water and of cortical bone it holds (``tissues.hu_to_basis``, :func:`simulator.imaging.drr.
   anatomy_basis_line_integrals`); iodine (mg/mL x mm) and the needle's steel (mm) are added as
   their own materials. Per pixel the detector then integrates the spectrum:
   ``S = sum_E w(E) exp(-sum_m mu_m(E) L_m)``, with ``w`` the detector's energy weighting (an
   energy-integrating CsI phosphor absorbs ``1 - exp(-mu_CsI(E) t)`` of the photons of energy E and
   its signal is proportional to the energy deposited), normalised to sum 1, so ``-ln S`` is the
   beam-hardened line integral the rest of the image chain uses as ``p``.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version

import numpy as np
from numba import njit, prange

from anatomy_models.atomic import atomic_path
from anatomy_models.errors import SpinesimError
from anatomy_models.home import spinesim_home
from anatomy_models.tissues import DENSITY_G_PER_CM3, mass_attenuation_spectrum_cm2_per_g, tissue

# Total filtration of a C-arm tube, mm Al: IEC 60601-1-3 asks at least 2.5 mm Al; mobile C-arms carry
# about 3-4 mm Al equivalent (inherent + added) [ED 3.0; many also add 0.1-0.2 mm Cu in fluoroscopy].
TUBE_FILTRATION_MM_AL = 3.0
# Tungsten anode angle [ED: 10-12 degrees is usual for C-arm tubes].
ANODE_ANGLE_DEG = 12.0
# Width of the spectrum's energy bins, keV: 2 keV keeps iodine's K-edge (33.2 keV) within one bin and
# Beer-Lambert through the bins within 0.3% of a 0.5 keV spectrum for 0-300 mm of water and 0-30 mm of
# bone (tests/simulator/test_spectrum.py).
BIN_KEV = 2.0
# Bins carrying less than this fraction of the detected signal are dropped (the lowest energies, which
# the filtration has absorbed): the sum over energies is the cost of a polychromatic frame.
_NEGLIGIBLE_WEIGHT = 1e-4
# The image intensifier's input phosphor: CsI:Na, ~0.4 mm thick [ED: 0.3-0.45 mm in the literature].
CSI_THICKNESS_MM = 0.4
# The basis materials, in the order of :attr:`Beam.mu_per_unit` rows.
MATERIALS: tuple[str, ...] = ("water", "cortical_bone", "iodine", "steel")


@dataclass(frozen=True, eq=False)
class Beam:
    """A tube spectrum and what each basis material does to it.

    Attributes
    ----------
    kvp, filtration_mm_al : float
        Tube voltage (kV) and total aluminium filtration (mm).
    energies_kev : numpy.ndarray
        Centres of the kept energy bins, keV.
    fluence_per_mm2_per_mas : numpy.ndarray
        Photons per mm^2 per mAs at 1 m from the focal spot in each bin.
    weights : numpy.ndarray
        The detector's signal per bin with nothing in the beam, normalised to sum 1 (energy-weighted
        absorbed fraction, see the module docstring).
    mu_per_unit : numpy.ndarray, (4, bins)
        Attenuation per unit of each material of :data:`MATERIALS`: per mm of water (1 g/cm^3), per mm
        of cortical bone (1.92 g/cm^3), per mg/mL x mm of iodine, per mm of steel (7.93 g/cm^3).
    photons_per_mm2_per_ugy : float
        Photon fluence per air kerma of this spectrum (SpekPy's fluence over its kerma).
    detected_fraction : float
        Fraction of the photons the CsI phosphor absorbs (fluence-weighted).
    """

    kvp: float
    filtration_mm_al: float
    energies_kev: np.ndarray
    fluence_per_mm2_per_mas: np.ndarray
    weights: np.ndarray
    mu_per_unit: np.ndarray
    photons_per_mm2_per_ugy: float
    detected_fraction: float

    def line_integral(self, water_mm: float = 0.0, bone_mm: float = 0.0, iodine_mg_ml_mm: float = 0.0,
                      steel_mm: float = 0.0) -> float:
        """The detected, beam-hardened line integral ``-ln S`` through these amounts of each material.

        Examples
        --------
        >>> b = beam(80.0)
        >>> p_thin, p_thick = b.line_integral(water_mm=10.0), b.line_integral(water_mm=200.0)
        >>> bool(p_thick < 20 * p_thin)       # the beam hardens: the second 10 mm attenuate less
        True
        """
        amounts = np.array([water_mm, bone_mm, iodine_mg_ml_mm, steel_mm], dtype=np.float64)
        return float(-np.log(np.sum(self.weights * np.exp(-(amounts @ self.mu_per_unit)))))

    def mean_energy_kev(self, water_mm: float = 0.0) -> float:
        """Signal-weighted mean energy of the beam behind ``water_mm`` of water, keV."""
        signal = self.weights * np.exp(-water_mm * self.mu_per_unit[0])
        return float(np.sum(signal * self.energies_kev) / np.sum(signal))


def _check_technique(kvp: float, filtration_mm_al: float) -> None:
    if not (np.isfinite(kvp) and 40.0 <= kvp <= 150.0):
        raise SpinesimError(f"tube voltage must be 40-150 kVp, got {kvp!r}")
    if not (np.isfinite(filtration_mm_al) and 0.5 <= filtration_mm_al <= 20.0):
        raise SpinesimError(f"tube filtration must be 0.5-20 mm Al, got {filtration_mm_al!r}")


def spekpy_spectrum(kvp: float, filtration_mm_al: float, bin_kev: float) -> tuple[np.ndarray, np.ndarray, float]:
    """SpekPy's spectrum: (bin centres keV, photons per mm^2 per mAs at 1 m per bin, air kerma uGy/mAs at 1 m).

    Kept in the home's ``spectra`` folder: SpekPy takes 2-5 s a spectrum, and the exposure control climbs
    through up to eleven kVp steps (:mod:`simulator.imaging.dose`). A missing or damaged file is made again;
    a home that cannot be written only means the spectrum is not kept.
    """
    path = spinesim_home() / "spectra" / (f"spekpy-{version('spekpy')}_{kvp:g}kVp_{filtration_mm_al:g}mmAl_"
                                          f"{bin_kev:g}keV_{ANODE_ANGLE_DEG:g}deg.npz")
    try:
        with np.load(path) as kept:
            return kept["energies"], kept["fluence"], float(kept["kerma"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass
    import spekpy  # imported here: it takes a second, and only a new kVp needs it

    spectrum = spekpy.Spek(kvp=float(kvp), th=ANODE_ANGLE_DEG, dk=float(bin_kev), z=100.0)
    spectrum.filter("Al", float(filtration_mm_al))
    energies, per_kev_per_cm2 = spectrum.get_spectrum(edges=False, flu=True, diff=True)
    energies = np.asarray(energies, dtype=np.float64)
    fluence = np.asarray(per_kev_per_cm2, dtype=np.float64) * bin_kev / 100.0  # per bin, per mm^2
    kerma = float(spectrum.get_kerma())
    try:
        path.parent.mkdir(exist_ok=True)
        with atomic_path(path) as temporary, open(temporary, "wb") as file:
            np.savez(file, energies=energies, fluence=fluence, kerma=kerma)
    except (OSError, SpinesimError):
        pass
    return energies, fluence, kerma


@lru_cache(maxsize=16)
def beam(kvp: float, filtration_mm_al: float = TUBE_FILTRATION_MM_AL, bin_kev: float = BIN_KEV) -> Beam:
    """The :class:`Beam` of a tube at ``kvp`` behind ``filtration_mm_al`` of aluminium (cached).

    Examples
    --------
    >>> round(beam(80.0).mean_energy_kev(water_mm=200.0))   # hardened behind a 20 cm trunk
    56
    """
    _check_technique(kvp, filtration_mm_al)
    energies, fluence, kerma_ugy_per_mas = spekpy_spectrum(kvp, filtration_mm_al, bin_kev)
    csi = mass_attenuation_spectrum_cm2_per_g("csi", energies) * DENSITY_G_PER_CM3["csi"] / 10.0
    absorbed = 1.0 - np.exp(-csi * CSI_THICKNESS_MM)
    signal = fluence * energies * absorbed
    keep = signal >= _NEGLIGIBLE_WEIGHT * signal.sum()
    mu = np.stack([
        mass_attenuation_spectrum_cm2_per_g("water", energies) * DENSITY_G_PER_CM3["water"] / 10.0,
        mass_attenuation_spectrum_cm2_per_g("cortical_bone", energies) * DENSITY_G_PER_CM3["cortical_bone"] / 10.0,
        mass_attenuation_spectrum_cm2_per_g("iodine", energies) * 1e-3 / 10.0,  # 1 mg/mL is 1e-3 g/cm^3
        mass_attenuation_spectrum_cm2_per_g("iron", energies) * tissue("steel").density_kg_per_m3 / 1e4,
    ])
    for array in (energies, fluence, signal, mu):
        array.setflags(write=False)
    return Beam(kvp=float(kvp), filtration_mm_al=float(filtration_mm_al), energies_kev=energies[keep],
                fluence_per_mm2_per_mas=fluence[keep], weights=signal[keep] / signal[keep].sum(),
                mu_per_unit=np.ascontiguousarray(mu[:, keep]),
                photons_per_mm2_per_ugy=float(fluence.sum() / kerma_ugy_per_mas),
                detected_fraction=float(np.sum(fluence * absorbed) / fluence.sum()))


def _detected_source(amounts, mu, weights, out):  # pragma: no cover - compiled
    """``out[k] = -ln sum_e weights[e] exp(-sum_m amounts[m, k] mu[m, e])`` for the pixels ``k``.

    Blocks of pixels run in parallel, and within a block the loop over pixels is innermost, so that
    it vectorises. The sum is taken relative to the highest-energy bin's term (the least attenuated:
    every material's mu falls with energy above iodine's K-edge, and below it iodine's mu is higher
    still), so that a ray along a needle (exponents of hundreds) cannot underflow to -ln 0.
    """
    materials, pixels = amounts.shape
    bins = weights.size
    block = 256
    for start in prange((pixels + block - 1) // block):
        first = start * block
        last = min(first + block, pixels)
        n = last - first
        reference = np.zeros(n, dtype=np.float32)
        for m in range(materials):
            top = mu[m, bins - 1]
            for k in range(n):
                reference[k] += amounts[m, first + k] * top
        total = np.zeros(n, dtype=np.float32)
        exponent = np.empty(n, dtype=np.float32)
        for e in range(bins):
            exponent[:] = reference
            for m in range(materials):
                coefficient = mu[m, e]
                for k in range(n):
                    exponent[k] -= amounts[m, first + k] * coefficient
            weight = weights[e]
            for k in range(n):
                total[k] += weight * np.exp(min(exponent[k], np.float32(0.0)))
        for k in range(n):
            out[first + k] = reference[k] - np.log(total[k])


_detected_parallel = njit(parallel=True, fastmath=True, cache=True, nogil=True)(_detected_source)
_detected_serial = njit(fastmath=True, cache=True, nogil=True)(_detected_source)
# Below this many pixels (a needle's, a contrast blob's) one thread is faster than waking the pool.
_PARALLEL_FROM_PIXELS = 32768


def detected_line_integrals(b: Beam, *amounts: np.ndarray) -> np.ndarray:
    """The beam-hardened line integral ``-ln S`` per pixel (float32, the shape of the inputs).

    ``amounts`` are the path lengths of the first ``len(amounts)`` materials of :data:`MATERIALS`, in
    their units (water, bone: mm; iodine: mg/mL x mm; steel: mm), arrays of one shape.
    """
    if not 1 <= len(amounts) <= len(MATERIALS):
        raise SpinesimError(f"give 1-{len(MATERIALS)} material path-length images ({', '.join(MATERIALS)}), "
                            f"got {len(amounts)}")
    shape = np.shape(amounts[0])
    stacked = np.ascontiguousarray(np.stack([np.asarray(a, dtype=np.float32).reshape(-1) for a in amounts]))
    out = np.empty(stacked.shape[1], dtype=np.float32)
    kernel = _detected_parallel if stacked.shape[1] >= _PARALLEL_FROM_PIXELS else _detected_serial
    mu = np.ascontiguousarray(b.mu_per_unit[:len(amounts)], dtype=np.float32)
    kernel(stacked, mu, b.weights.astype(np.float32), out)
    return out.reshape(shape)


# The table of the detected line integral of water and bone (the anatomy's two materials): steps
# and extents in mm. A frame's anatomy is then a bilinear look-up per pixel, not a sum over the
# spectrum's bins; its error is below 1e-4 (tests/simulator/test_spectrum.py), far under the noise.
_TABLE_WATER_STEP_MM = 2.0
_TABLE_WATER_MAX_MM = 800.0
_TABLE_BONE_STEP_MM = 0.5
_TABLE_BONE_MAX_MM = 160.0


@lru_cache(maxsize=16)
def _water_bone_table(b: Beam) -> np.ndarray:
    water = np.arange(0.0, _TABLE_WATER_MAX_MM + _TABLE_WATER_STEP_MM / 2, _TABLE_WATER_STEP_MM)
    bone = np.arange(0.0, _TABLE_BONE_MAX_MM + _TABLE_BONE_STEP_MM / 2, _TABLE_BONE_STEP_MM)
    grid_water, grid_bone = np.meshgrid(water, bone, indexing="ij")
    table = detected_line_integrals(b, grid_water, grid_bone)
    table.setflags(write=False)
    return table


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def _table_lookup(table, water, bone, water_step, bone_step, out):  # pragma: no cover - compiled
    """Bilinear look-up of ``table`` (water x bone nodes) at each pixel; path lengths clamped to its extent."""
    rows, columns = out.shape
    top_water = table.shape[0] - 1.000001
    top_bone = table.shape[1] - 1.000001
    for r in prange(rows):
        for c in range(columns):
            x = min(max(water[r, c] / water_step, 0.0), top_water)
            y = min(max(bone[r, c] / bone_step, 0.0), top_bone)
            i = int(x)
            j = int(y)
            fx = x - i
            fy = y - j
            low = table[i, j] + fx * (table[i + 1, j] - table[i, j])
            high = table[i, j + 1] + fx * (table[i + 1, j + 1] - table[i, j + 1])
            out[r, c] = low + fy * (high - low)


def detected_water_bone(b: Beam, water_mm: np.ndarray, bone_mm: np.ndarray) -> np.ndarray:
    """:func:`detected_line_integrals` of water and bone path-length images (float32, 2-D), through a
    table of the beam's response (0-800 mm of water, 0-160 mm of bone; beyond, clamped)."""
    out = np.empty(np.shape(water_mm), dtype=np.float32)
    _table_lookup(_water_bone_table(b), np.asarray(water_mm, dtype=np.float32), np.asarray(bone_mm, dtype=np.float32),
                  np.float32(_TABLE_WATER_STEP_MM), np.float32(_TABLE_BONE_STEP_MM), out)
    return out


@lru_cache(maxsize=16)
def _water_curve(b: Beam) -> tuple[np.ndarray, np.ndarray]:
    """The beam's detected line integral of 0-600 mm of water (every 2 mm): (thickness mm, line integral)."""
    thickness = np.linspace(0.0, 600.0, 301)
    curve = detected_line_integrals(b, thickness)
    for array in (thickness, curve):
        array.setflags(write=False)
    return thickness, curve


def water_equivalent_mm(b: Beam, line_integral: np.ndarray) -> np.ndarray:
    """The thickness of water (mm) whose detected line integral is ``line_integral`` (float32), through
    a tabulated water curve of the beam (0-600 mm, made once per beam)."""
    thickness, curve = _water_curve(b)
    return np.interp(line_integral, curve, thickness).astype(np.float32)
