"""The tissue table: the one place physics numbers live.

Each tissue class has a CT number (HU), X-ray attenuation (derived from the CT number through the
bilinear water/bone model below, or from its own material for steel and iodine), and acoustic
properties for ultrasound. Renderers read physics from here; nobody hard-codes a coefficient
elsewhere. Sources are the tags of ``reference/clinical.md`` (section 5); ``[ED]`` marks an
engineering default chosen where no source gave a number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anatomy_models.errors import SpinesimError

# --------------------------------------------------------------------------- X-ray attenuation
# NIST (Hubbell & Seltzer) mass attenuation coefficients mu/rho in cm^2/g; clinical.md §5.2
# [S106][S107][S108][S109]. The 70 keV column there is log-log interpolated [derived].
MASS_ATTENUATION_CM2_PER_G: dict[str, dict[float, float]] = {
    "water": {60.0: 0.2059, 70.0: 0.1937, 80.0: 0.1837},
    "cortical_bone": {60.0: 0.3148, 70.0: 0.2617, 80.0: 0.2229},  # ICRU cortical bone
    "iron": {60.0: 1.205, 70.0: 0.826, 80.0: 0.5952},  # proxy for stainless steel
    "iodine": {60.0: 7.579, 70.0: 5.017, 80.0: 3.510},
    # PMMA (acrylic), the stand-in for a needle's plastic hub: NIST Table 4, "Polymethyl
    # Methacrylate", physics.nist.gov/PhysRefData/XrayMassCoef/tab4.html (70 keV log-log [derived]).
    "pmma": {60.0: 0.1924, 70.0: 0.1829, 80.0: 0.1751},
}
# Mass densities in g/cm^3: water and ICRU cortical bone §5.2; stainless steel 304 [S115]; PMMA (NIST Table 2).
# Dry air and CsI: NIST Table 2.
DENSITY_G_PER_CM3: dict[str, float] = {"water": 1.0, "cortical_bone": 1.92, "iron": 7.93, "pmma": 1.19, "air": 0.001205,
                                       "csi": 4.51}

# Elemental composition by mass fraction, for attenuation at any photon energy (the polychromatic beam,
# simulator.imaging.spectrum): NIST "X-Ray Mass Attenuation Coefficients", Table 2 (physics.nist.gov/
# PhysRefData/XrayMassCoef/tab2.html): water (liquid); ICRU-44 cortical bone; dry air near sea level;
# PMMA; caesium iodide (an image intensifier's input phosphor); iron (the needle's steel, as in the
# single-energy table above); iodine. Mass attenuation coefficients of the elements come from xraydb
# (Elam, Ravel & Sieber 2002 tables, which match NIST's XCOM to <1% at 15-150 keV).
COMPOSITION_MASS_FRACTIONS: dict[str, dict[str, float]] = {
    "water": {"H": 0.111894, "O": 0.888106},
    "cortical_bone": {"H": 0.034, "C": 0.155, "N": 0.042, "O": 0.435, "Na": 0.001, "Mg": 0.002, "P": 0.103,
                      "S": 0.003, "Ca": 0.225},
    "air": {"C": 0.000124, "N": 0.755268, "O": 0.231781, "Ar": 0.012827},
    "pmma": {"H": 0.080538, "C": 0.599848, "O": 0.319614},
    "csi": {"Cs": 0.511549, "I": 0.488451},
    "iron": {"Fe": 1.0},
    "iodine": {"I": 1.0},
}


def mass_attenuation_spectrum_cm2_per_g(material: str, kev: np.ndarray) -> np.ndarray:
    """Total mass attenuation mu/rho (cm^2/g, with coherent scattering) of ``material`` at each energy in ``kev``.

    Examples
    --------
    >>> [round(float(x), 4) for x in mass_attenuation_spectrum_cm2_per_g("cortical_bone", np.array([60.0, 80.0]))]
    [0.3148, 0.2229]
    """
    import xraydb  # imported here: only the polychromatic beam needs it, and it opens a database

    try:
        fractions = COMPOSITION_MASS_FRACTIONS[material]
    except KeyError:
        raise SpinesimError(f"no elemental composition for material {material!r}",
                            hint=f"use one of {', '.join(sorted(COMPOSITION_MASS_FRACTIONS))}") from None
    ev = np.asarray(kev, dtype=np.float64) * 1000.0
    return sum(weight * np.asarray(xraydb.mu_elam(element, ev), dtype=np.float64)
               for element, weight in fractions.items())


# Effective energy at which a CT's Hounsfield units are defined: ~70 keV for a 120 kVp CT [ED].
CT_EFFECTIVE_KEV = 70.0
# Effective energy of the simulated fluoroscopy beam: §5.2 gives 60-80 keV for 80-100 kVp;
# the low end keeps the bone contrast of a lumbar C-arm image [ED].
FLUORO_EFFECTIVE_KEV = 60.0


def mass_attenuation_cm2_per_g(material: str, kev: float) -> float:
    """NIST mu/rho (cm^2/g) of ``material`` at ``kev``, log-log interpolated between 60 and 80 keV."""
    try:
        table = MASS_ATTENUATION_CM2_PER_G[material]
    except KeyError:
        raise SpinesimError(f"no X-ray attenuation data for material {material!r}; "
                            f"known: {sorted(MASS_ATTENUATION_CM2_PER_G)}") from None
    energies = np.array(sorted(table))
    if not energies[0] <= kev <= energies[-1]:
        raise SpinesimError(f"effective energy {kev} keV is outside the tabulated {energies[0]:g}-{energies[-1]:g} keV")
    values = np.array([table[e] for e in energies])
    return float(np.exp(np.interp(np.log(kev), np.log(energies), np.log(values))))


def linear_attenuation_per_mm(material: str, kev: float, density_g_per_cm3: float | None = None) -> float:
    """Linear attenuation coefficient mu (1/mm) of a bulk material at ``kev``."""
    density = DENSITY_G_PER_CM3[material] if density_g_per_cm3 is None else density_g_per_cm3
    return mass_attenuation_cm2_per_g(material, kev) * density / 10.0


@dataclass(frozen=True)
class HuToMu:
    """Bilinear map from Hounsfield units to X-ray mu (1/mm) at one effective energy.

    Below 0 HU a voxel is an air/water mixture, so mu scales with water's coefficient. Above 0 HU it
    is a water/cortical-bone mixture: the bone fraction is read off the CT number at the CT's own
    energy, and attenuation is then mixed at the fluoroscopy energy. One slope for all HU would make
    bone too faint (bone attenuation falls faster with energy than water's), the bilinear form keeps
    soft tissue and bone right at once (HU definition §5.1 [S101][S102]).
    """

    mu_water_per_mm: float
    slope_below_water: float  # 1/mm per HU, for HU <= 0
    slope_above_water: float  # 1/mm per HU, for HU > 0

    def __call__(self, hu: np.ndarray | float) -> np.ndarray:
        hu = np.asarray(hu, dtype=np.float32)
        slope = np.where(hu > 0, self.slope_above_water, self.slope_below_water).astype(np.float32)
        return np.maximum(np.float32(self.mu_water_per_mm) + slope * hu, np.float32(0.0))


def hu_to_mu(kev: float = FLUORO_EFFECTIVE_KEV, ct_kev: float = CT_EFFECTIVE_KEV) -> HuToMu:
    """The HU -> mu (1/mm) map at fluoroscopy energy ``kev`` for a CT calibrated at ``ct_kev``.

    Examples
    --------
    >>> m = hu_to_mu(60.0)
    >>> round(float(m(0.0)), 4), round(float(m(-1000.0)), 4)   # water, air
    (0.0206, 0.0)
    >>> hu_bone = 1000 * (linear_attenuation_per_mm("cortical_bone", 70) / linear_attenuation_per_mm("water", 70) - 1)
    >>> round(float(m(hu_bone)), 4)    # cortical bone at 60 keV: 0.604 1/cm (clinical.md §5.2)
    0.0604
    """
    mu_water = linear_attenuation_per_mm("water", kev)
    mu_bone = linear_attenuation_per_mm("cortical_bone", kev)
    ct_mu_water = linear_attenuation_per_mm("water", ct_kev)
    ct_mu_bone = linear_attenuation_per_mm("cortical_bone", ct_kev)
    hu_of_bone = 1000.0 * (ct_mu_bone - ct_mu_water) / ct_mu_water
    return HuToMu(mu_water, mu_water / 1000.0, (mu_bone - mu_water) / hu_of_bone)


def hu_to_basis(hu: np.ndarray | float, ct_kev: float = CT_EFFECTIVE_KEV) -> tuple[np.ndarray, np.ndarray]:
    """Two-material decomposition of CT numbers: volume fractions of water and of cortical bone (float32).

    The same model as :func:`hu_to_mu`, written as materials instead of one energy's mu: at or below
    0 HU a voxel is water diluted with air (fat, -100 HU, is 0.9 water: at 40-120 keV fat's mass
    attenuation is within ~5% of water's, NIST Table 4 "Adipose tissue"), above 0 HU a mixture of
    water and ICRU cortical bone whose bone fraction gives the CT number at the CT's own energy. So
    ``mu(E) = water * mu_water(E) + bone * mu_bone(E)`` at every energy ``E`` of a beam: bone's
    attenuation falls faster with energy than water's, which a single effective energy cannot show.
    Above the CT number of pure cortical bone (~1600 HU) the water fraction stays 0 while the bone
    fraction keeps rising (denser bone, not negative water).

    Examples
    --------
    >>> water, bone = hu_to_basis(np.array([-1000.0, -100.0, 0.0, 1200.0]))
    >>> [round(float(x), 3) for x in water], [round(float(x), 3) for x in bone]
    ([0.0, 0.9, 1.0, 0.247], [0.0, 0.0, 0.0, 0.753])
    """
    hu = np.asarray(hu, dtype=np.float32)
    ct_mu_water = linear_attenuation_per_mm("water", ct_kev)
    hu_of_bone = 1000.0 * (linear_attenuation_per_mm("cortical_bone", ct_kev) - ct_mu_water) / ct_mu_water
    bone = np.maximum(hu, np.float32(0.0)) * np.float32(1.0 / hu_of_bone)
    diluted = np.float32(1.0) + hu * np.float32(1e-3)
    water = np.maximum(np.where(hu > 0, np.float32(1.0) - bone, diluted), np.float32(0.0))
    return water.astype(np.float32), bone.astype(np.float32)


def iodine_mu_per_mm_per_mg_ml(kev: float = FLUORO_EFFECTIVE_KEV) -> float:
    """Extra attenuation (1/mm) added by 1 mg of iodine per mL of tissue (§5.2 [S106])."""
    return mass_attenuation_cm2_per_g("iodine", kev) * 1e-3 / 10.0


# Iodine content of the contrast medium injected in spine procedures: 300 mg iodine per mL, the
# strength §5.2 tabulates (240 mgI/mL is the other common one).
CONTRAST_IODINE_MG_PER_ML = 300.0


def iodine_hu_per_mg_ml(ct_kev: float = CT_EFFECTIVE_KEV) -> float:
    """CT-number increase from 1 mg iodine per mL (§5.1 rule of thumb: ~26 HU at 70 keV)."""
    return 1000.0 * iodine_mu_per_mm_per_mg_ml(ct_kev) / linear_attenuation_per_mm("water", ct_kev)


# Speed of sound every ultrasound scanner assumes when it turns echo time into depth: the soft-tissue
# rule of thumb, 1540 m/s (clinical.md §5.3 [S114]).
SCANNER_SPEED_OF_SOUND_M_PER_S = 1540.0


# --------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Tissue:
    """Physical properties of one tissue class.

    Parameters
    ----------
    name : str
        Stable class name used by label tables (``"fat"``, ``"cortical_bone"``, ...).
    hu : float
        Representative CT number in Hounsfield units.
    speed_m_per_s : float
        Speed of sound.
    density_kg_per_m3 : float
        Mass density.
    attenuation_db_per_cm_mhz : float
        Ultrasound attenuation, dB/(cm·MHz).
    backscatter : float
        Relative diffuse backscatter amplitude for speckle, 0 (anechoic) to 1 [ED].
    xray_material : str, optional
        For materials outside the CT range (steel): the NIST material whose coefficient is used
        instead of the HU map, with ``density_kg_per_m3``.
    """

    name: str
    hu: float
    speed_m_per_s: float
    density_kg_per_m3: float
    attenuation_db_per_cm_mhz: float
    backscatter: float
    xray_material: str | None = None

    @property
    def impedance_mrayl(self) -> float:
        """Acoustic impedance Z = rho c in MRayl."""
        return self.density_kg_per_m3 * self.speed_m_per_s / 1e6

    def xray_mu_per_mm(self, kev: float = FLUORO_EFFECTIVE_KEV) -> float:
        """X-ray linear attenuation (1/mm) at ``kev``."""
        if self.xray_material is not None:
            return linear_attenuation_per_mm(self.xray_material, kev, self.density_kg_per_m3 / 1000.0)
        return float(hu_to_mu(kev)(self.hu))


def _table(*tissues: Tissue) -> dict[str, Tissue]:
    return {t.name: t for t in tissues}


# HU: clinical.md §5.1; acoustics: §5.3. Ranges in the reference are narrowed to one value here.
# Backscatter: no published backscatter coefficients exist for these tissues as a B-mode scan sees them, so
# the values are [ED], tuned on simulated lumbar views to the echogenicity (relative to muscle) that the
# sonoanatomy texts describe: Karmakar et al., Br J Radiol 2012; 85:e262-e269 (paramedian lumbar
# sonoanatomy) and Karmakar & Chin, NYSORA "Spinal sonography and applications of ultrasound for central
# neuraxial blocks" (KC below). Dura and ligamentum flavum are the bright "posterior complex", mostly
# through their surfaces' echoes (the renderer's interfaces); skin next; muscle and fat hypoechoic, their
# bright septa added as texture by the ultrasound renderer; nerve and disc hypoechoic; fluids anechoic.
TISSUES: dict[str, Tissue] = _table(
    # air: -1000 HU [S101]; acoustics of air at 20 °C; total reflection at any tissue interface.
    Tissue("air", -1000.0, 343.0, 1.2, 40.0, 0.0),  # attenuation [ED]
    # fat: -120..-90 HU [S102][S103]; c 1462 m/s, rho 927-950, 0.6-0.8 dB/cm/MHz [S110][S112][S113][S111]
    Tissue("fat", -100.0, 1462.0, 938.0, 0.7, 0.25),
    # water: 0 HU; c 1480, rho 1000, 0.002 dB/cm/MHz [S110][S111]
    Tissue("water", 0.0, 1480.0, 1000.0, 0.002, 0.0),
    # CSF: +15 HU [S102]; acoustically water [ED per §5.3]; anechoic: the intrathecal space is black between
    # the posterior and anterior complexes (KC; Karmakar 2012)
    Tissue("csf", 15.0, 1480.0, 1000.0, 0.002, 0.0),
    # blood: +13..+50 HU [S102][S103]; c ~1575 [ED], rho 1060 [ED], 0.15 dB/cm/MHz [S111]
    Tissue("blood", 40.0, 1575.0, 1060.0, 0.15, 0.02),
    # skeletal muscle: +10..+40 HU [S104][S101]; c 1517-1600, rho 1050-1058, ~1.1 dB/cm/MHz [S112][S113][S111]
    Tissue("muscle", 40.0, 1580.0, 1055.0, 1.1, 0.35),
    # organ soft tissue: +20..+65 HU [S103]; soft-tissue rule 1540 m/s, 0.5 dB/cm/MHz [S114]
    Tissue("soft_tissue", 40.0, 1540.0, 1050.0, 0.5, 0.4),
    # skin: soft-tissue HU [S103]; c 1595-1730, rho 1090-1130, 0.35 dB/cm/MHz [S112][S111]
    Tissue("skin", 40.0, 1650.0, 1110.0, 0.35, 0.6),
    # ligament (flavum, inter/supraspinous): soft tissue HU upper range [S103]; c 1664, rho 1101 [S113];
    # attenuation of connective tissue 1.57 [S111]. Backscatter 0.5 [ED]: the flavum is "hyperechoic" as a
    # band (KC), through its surfaces' echoes; inside it is only moderately echoic, more than the hypoechoic
    # interspinous ligament (Karmakar 2012). (At 1.0 the 3-5 mm flavum filled the interlaminar window with
    # a bright speckled slab, the blind read's "rectangular window patch".)
    Tissue("ligament", 60.0, 1664.0, 1101.0, 1.57, 0.5),
    # dura mater: fibrous, treated like ligament [ED]
    Tissue("dura", 50.0, 1664.0, 1101.0, 1.57, 0.8),
    # nerve root / DRG and spinal cord: soft tissue [ED]. Backscatter 0.135 [ED], under muscle's: a nerve
    # root is hypoechoic, its fascicles dark within a thin echogenic epineurium (KC), and the cauda equina
    # shows only as faint linear echoes in the anechoic sac (Karmakar 2012). (At 0.45 the rootlets echoed
    # 53-132 grey 48-51 mm deep once the automatic TGC made up the deep field's loss: as bright as the dura.)
    Tissue("nerve", 35.0, 1560.0, 1040.0, 0.8, 0.135),
    Tissue("spinal_cord", 35.0, 1560.0, 1040.0, 0.8, 0.2),
    # intervertebral disc: +70..+110 HU, annulus denser than nucleus [ED §5.1]; acoustics like ligament [ED].
    # Backscatter [ED]: the disc is hypoechoic behind the bright anterior complex, in which its back face is
    # one of the echoes (posterior longitudinal ligament, back of the body and disc: KC; Karmakar 2012); its
    # annulus's lamellae a little brighter than the gel of the nucleus. (At muscle's 0.35 the annulus under
    # the anterior complex was a speckled slab as bright as the multifidus, where the sonographers' blind read
    # expected the dark beneath the vertebral body's back.)
    Tissue("disc_annulus", 100.0, 1664.0, 1101.0, 1.57, 0.025),
    Tissue("disc_nucleus", 75.0, 1600.0, 1060.0, 1.0, 0.015),
    # facet articular cartilage and joint space: soft-tissue HU [ED]
    Tissue("cartilage", 60.0, 1650.0, 1100.0, 1.5, 0.3),
    # cancellous bone: +300..+400 HU [S102][S105]; c 2325 m/s [S113], rho 400-1600 [S112] -> 1000 [ED];
    # attenuation [ED] (only seen behind cortex, which shadows it)
    Tissue("cancellous_bone", 300.0, 2325.0, 1000.0, 10.0, 0.8),
    # cortical bone: +500..+1900 HU [S102]; c 3200-4000, rho 1800-2200, 10-20 dB/cm/MHz [S112][S113][S110][S111];
    # diffuse backscatter 0.03 as in the PLUS simulator's bone preset [S117]
    Tissue("cortical_bone", 1200.0, 3500.0, 1900.0, 15.0, 0.03),
    # stainless-steel needle: beyond CT range, clips at +3071 [S105]; c 5790, rho 7930 [S115]
    Tissue("steel", 3071.0, 5790.0, 7930.0, 0.0, 0.0, xray_material="iron"),
)


# CT-number thresholds (HU) that classify an unlabelled voxel, between the table's classes: air below
# -400 (halfway to fat), fat below -30, soft tissue below 150, cancellous bone below 500 (the start of
# the cortical range), cortical bone above (§5.1) [ED].
# The tissue classes a needle cannot pass (it stops at their surface).
BONE_TISSUES = frozenset({"cortical_bone", "cancellous_bone"})
_HU_CLASSES = (("air", -400.0), ("fat", -30.0), ("soft_tissue", 150.0), ("cancellous_bone", 500.0), ("cortical_bone", np.inf))


def tissue_from_hu(hu: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Tissue class of each CT number, for voxels no label map covers.

    Returns an index array (uint8, same shape as ``hu``) into the returned list of names.

    Examples
    --------
    >>> index, names = tissue_from_hu(np.array([-1000, -100, 40, 300, 1200]))
    >>> [names[i] for i in index]
    ['air', 'fat', 'soft_tissue', 'cancellous_bone', 'cortical_bone']
    """
    names = [name for name, _ in _HU_CLASSES]
    edges = np.array([edge for _, edge in _HU_CLASSES[:-1]], dtype=np.float32)
    return np.searchsorted(edges, np.asarray(hu, dtype=np.float32), side="right").astype(np.uint8), names


def tissue(name: str) -> Tissue:
    """The tissue class called ``name``, with a clear error for unknown names."""
    try:
        return TISSUES[name]
    except KeyError:
        raise SpinesimError(f"unknown tissue class {name!r}", hint=f"use one of: {', '.join(sorted(TISSUES))}") from None
