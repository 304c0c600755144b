"""Radiation dose of simulated fluoroscopy: tube technique -> air kerma, dose-area product, photons.

Model
-----
1. **Tube output.** Air kerma free in air per tube charge at 1 m from the focal spot,
   ``Y(kVp) = 8.373e-3 * kVp**1.983`` uGy/mAs at 40 in (1.016 m), the power-law fit to ~40
   radiographic units measured over three years (imablog.net, "Radiation output from radiographic
   units", 2015: "Output (uGy/mAs) = 0.008373*kV^1.983"), moved to 1 m by the inverse square.
   At 80 kVp that is ~51 uGy/mAs at 1 m, inside the textbook 3-mm-Al range (rug.nl radiation-
   protection course table: 0.08-0.13 mSv/mAs at 1 m for 70-90 kV behind 2-3 mm Al).
2. **Inverse square** from the focal spot to any plane.
3. **Interventional reference point (IRP)**: on the central ray 15 cm from the isocentre toward the
   focal spot (IEC 60601-2-43; e.g. Philips Azurion IFU, "focal spot to patient entrance reference
   point 660 mm, focal spot to isocenter 810 mm"). The reported "reference air kerma" is the kerma
   there, free in air (no backscatter).
4. **Dose-area product** = air kerma x field area in the same plane (both scale with the inverse
   square, so DAP is the same at every plane); the field is the detector's exposed area
   (:meth:`simulator.imaging.carm.CArm.field_area_at_detector_mm2`) scaled to the IRP.
5. **Automatic exposure control.** The C-arm sets the tube charge per frame so that the detector
   behind the anatomy receives a target air kerma per frame (the image receptor input air kerma);
   the patient's transmission is ``exp(-p)`` for the median line integral ``p`` of the exposed body.
   Default target 13 nGy per frame at 15 pulses/s: an image intensifier's fluoroscopy input is about
   1 uR (8.7 nGy) per frame at 30 frames/s in its 23 cm field (textbook range 1-5 uR per frame), and a
   pulsed mode gives each pulse about half as much again; well below the Belgian regulator's acceptance
   limit of 1.5 uGy/s image receptor input air kerma rate (FANC, jurion.fanc.fgov.be, wettekst 28734).
   **Calibration.** On the built-in patient's AP view of L4-L5 that is 15 mGy/min live reference air
   kerma rate, the middle of the 10-20 mGy/min typical of an average adult's lumbar spine at normal
   dose (IEC 60601-2-43 reference point), and 26 mGy·cm² of DAP per second of live fluoroscopy, that of
   Kim et al.'s 181 transforaminal injections by experienced radiologists at 15 pulses/s (mean 1017
   mGy·cm² over a mean 36 s of fluoroscopy, 28 mGy·cm²/s; median 678 over 29 s, 23 mGy·cm²/s: "Fluoroscopy
   time and radiation dose", J Spinal Disord Tech 2014, PubMed 24441060; clinical.md [S61]); an expert's
   transforaminal injection then lies inside the Saint-Luc teaching hospital's interquartile range of
   499-1067 mGy·cm², well under the Belgian diagnostic reference level of 3000 (Hustinx et al., Radiat
   Prot Dosimetry 179:271, 2018). tests/simulator/test_dose.py checks both rates. (The model had 40 nGy
   per frame, three times the published rates: an expert's DSA-checked injection gave 3364 mGy·cm².)
6. **Metering without an image.** What the exposure control sees is metered on a few rays through
   its central disc (the CT sampled along each, :func:`metered_transmission`), not on a rendered
   frame, so the dose of a shot is known without rendering: the live counter and the attempt
   report both add shots with :func:`add_fluoro_shot`, one number from one function.
7. **Runs.** A pulse shot is a tap on the pedal: ``PULSE_SECONDS`` of pulsed fluoroscopy (the time
   the C-arm's fluoroscopy counter records for it), :func:`tap_frames` frames (8 at 15 pulses/s); the
   last-image hold shows them averaged by the recursive (temporal) noise filter [ED], so the image has their quanta
   and the dose counts every one. Live fluoroscopy and DSA runs are ``seconds x frame rate`` frames;
   a live run's held image averages at most ``RECURSIVE_FILTER_FRAMES`` of them, a DSA frame is one
   acquisition. DSA is an acquisition (:func:`technique_for`) at ``DSA_FRAMES_PER_SECOND`` whose dose
   rate is ``DSA_TO_LIVE_DOSE_RATE`` times the same C-arm's live fluoroscopy's (Maus et al. 2014,
   phantom measurements on portable C-arms), so a run's dose scales with its length.
8. **Quanta.** With the polychromatic beam (the default), photon fluence per air kerma is the tube
   spectrum's own (SpekPy's fluence over its kerma, :mod:`simulator.imaging.spectrum`) and the
   detected fraction is the spectrum's absorption in the intensifier's CsI. At one effective energy E
   (the model before the spectrum, ``kev`` given) it is ``1 / (E * (mu_en/rho)_air)``; NIST's dry
   air (Table 4, physics.nist.gov/PhysRefData/XrayMassCoef/tab4.html) has mu_en/rho = 0.03041
   cm^2/g at 60 keV and 0.02407 at 80 keV, and 0.6 of them are detected [ED].
9. **Magnification modes.** An image intensifier's brightness gain follows the area of its input field,
   so in a magnification mode the automatic exposure control asks for the detector kerma times the
   ratio of the full field's area to the mode's, ``(full / field)^2``, for the same image noise ("the
   dose rate would be expected to increase in inverse proportion to the change in gain of the
   intensifier", Energy imparted to the patient during fluoroscopy using magnified fields of view,
   citing NRPB 1988; discovery.researcher.life/article/f09a05ede3a53b94819345d49c51dc78). The field is
   collimated to the mode's, so the DAP stays about the same while the reference air kerma rises. A
   flat panel (``detector_shape="square"``) is taken without that gain change.
10. **The legal limit of the dose rate.** Fluoroscopy in its normal mode may not exceed an air kerma rate of
   88 mGy/min (10 R/min) at the measurement point, for a C-arm 30 cm in front of the image receptor's input
   surface (US 21 CFR 1020.32(e)); the exposure control stops there, and an image through the pelvis on
   lateral, which would need more, is noisier instead (:data:`FLUORO_KERMA_RATE_LIMIT_MGY_PER_MIN`). DSA is
   an acquisition (a recording mode) and has no such limit.
11. **kVp at the same detector dose.** The transmission the AEC sees is the detected signal's
   (``exp(-p)`` of the beam-hardened line integral, plus the scatter the grid lets through), so a
   higher kVp, which crosses the patient more easily, needs fewer mAs: the reference air kerma and
   DAP fall with kVp (tests/simulator/test_dose.py checks the fall against Beer-Lambert through the
   spectrum for a water phantom).
12. **The exposure control's kV-mA curve.** A C-arm's automatic exposure (brightness) control drives the tube
   along a programmed curve: at the bottom (a thin patient) the lowest kVp with the tube current it needs; as
   the attenuation it meters grows it raises the tube current and the kVp together, since a harder beam crosses
   the patient more easily, until the tube's power limit; past the top the image gets darker and noisier
   (exposure control between a minimum such as 70 kVp and a maximum such as 120 kVp, its tube current
   limited by the tube's power rating, "the lateral abdomen" where it runs out; a low-dose curve raising
   kVp before mA: Automatic Brightness Control, htm.fandom.com/wiki/Automatic_Brightness_Control). The model's curve
   (:data:`AEC_KVP_STEPS`, :func:`curve_tube_current_ma`) steps from 70 to 120 kVp in 5 kV steps while the
   tube current it allows in a pulse (:data:`AEC_PULSE_SECONDS`) rises from 6.7 to 40 mA, 1 to 6 mA mean at
   15 pulses/s [ED: a mobile C-arm's fluoroscopy runs at a few mA]; a pulse's charge does not depend on the
   pulse rate, so a lower rate saves its share of the dose. The control settles on the first step at which
   the target detector kerma needs no more charge per pulse than the curve allows there, and sets the
   charge for exactly the target (:func:`shot_technique`, per frame, from
   :func:`metered_transmission` at each step's spectrum). On the built-in patient (2 mm) the AP view of
   L4-L5, the calibration's pose, settles at 80 kVp and 1.2 mA mean, so the calibration (5) holds (25
   mGy·cm²/s); a lateral of L4 at 90 kVp (2.7 mA) and of L5 at 105 (3.4 mA), with 0.78 and 0.54 of the reference air
   kerma per frame that 80 kVp needs; a contralateral oblique of L5-S1 at 110 kVp and a lateral of the
   sacrum at 120 kVp, with 0.52 and 0.77 of what 80 kVp gave at the rate limit (which left their detector
   at 4-7 nGy instead of 13). Above the top of the curve the tube gives its limit and the detector less
   than the target. A DSA run is acquired at the kVp the fluoroscopy settled on (the
   acquisition starts from the fluoroscopy's technique) with the charge for its own target, no rate limit.
   The kVp of each frame is the one its spectrum (:func:`simulator.imaging.spectrum.beam`) and the image
   are made with.
13. **Thick views (issue 16).** On the built-in patient (1 mm) the body along the metering rays is 21 cm on AP of
   L4 and 28 and 32 cm on laterals of L4 and L5-S1 (23, 29 and 33 cm water-equivalent at the kVp the control
   settles on). The control reaches its target on each: AP L4 80 kVp 8 mA pulses (1.2 mA mean), lateral L4 90 kVp
   18 mA (2.8), lateral L5-S1 105 kVp 23 mA (3.5, the curve allowing 30 there), an oblique of L4 80 kVp and a
   cranial 40 degree view of S1 85 kVp 11 mA (1.7); so the detector behind the body receives the same 360-390
   quanta per pixel (512 px, a tap of 8 frames) on every view, and the log image's noise in soft tissue is the
   same (0.016-0.020). The thick view is noisier only where it is thicker than what the control meters, flatter
   for its higher kVp and scatter (scatter to primary behind the grid 0.07 on AP, 0.16 on the lateral of L5-S1,
   :mod:`simulator.imaging.scatter`), and its noise shows at a third of the AP's grey levels only if the display
   spreads its window over the whole body (:data:`simulator.imaging.fluoro._WINDOW_RADIUS`). The top of the
   curve, 0.4 mAs a frame at 120 kVp and 15 frames/s, is 84 mGy/min at the rate limit's measurement point, the
   limit itself: a patient too thick for it (a heavier one's lateral through the pelvis) gets less than the
   target, and a noisier image, with the display's brightness kept (the automatic gain, as the Automatic
   Brightness Control page cited in 12 describes: "images with increased electronic noise generally result").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage

from anatomy_models.errors import SpinesimError
from anatomy_models.tissues import FLUORO_EFFECTIVE_KEV, hu_to_basis, hu_to_mu
from simulator.imaging.carm import CArm
from simulator.imaging.scatter import Grid
from simulator.imaging.spectrum import TUBE_FILTRATION_MM_AL, beam

# ---------------------------------------------------------------------------- constants (sources above)
# One pulse shot, a tap on the pedal, as the C-arm's fluoroscopy-time counter records it, s [ED]: half a
# second, the beam staying on while the exposure control settles and the last-image hold fills (its 8
# frames at 15 pulses/s hold the quanta the 4 frames of 40 nGy did before the calibration, see the
# module docstring, 5).
PULSE_SECONDS = 0.5
TUBE_OUTPUT_COEFFICIENT_UGY_PER_MAS = 8.373e-3  # at 1.016 m, times kVp**TUBE_OUTPUT_EXPONENT
TUBE_OUTPUT_EXPONENT = 1.983
TUBE_OUTPUT_DISTANCE_MM = 1016.0  # 40 inches
IRP_FROM_ISOCENTER_MM = 150.0
AIR_MASS_ENERGY_ABSORPTION_CM2_PER_G = {60.0: 0.03041, 80.0: 0.02407}
DETECTOR_QUANTUM_EFFICIENCY = 0.6  # [ED]
AEC_TARGET_DETECTOR_NGY_PER_FRAME = 13.0  # calibrated to published dose rates, see the module docstring (5)
# The most air kerma per minute fluoroscopy may give in its normal mode, at the measurement point this far in
# front of the image receptor (US 21 CFR 1020.32(e): 88 mGy/min, 30 cm for a C-arm; module docstring, 10).
FLUORO_KERMA_RATE_LIMIT_MGY_PER_MIN = 88.0
LIMIT_POINT_FROM_DETECTOR_MM = 300.0
# Digital subtraction runs are acquisitions, not fluoroscopy: more dose per frame, so that the
# difference of two frames is not drowned in noise. Their dose rate (per second) is 2.3-4.2 times that
# of live fluoroscopy at the medium dose rate on portable C-arms, lumbar TFESI, anthropomorphic phantom
# (Maus, Schueler, Leng et al., "Radiation dose incurred in the exclusion of vascular filling in
# transforaminal epidural steroid injections: fluoroscopy, digital subtraction angiography, and
# CT/fluoroscopy", Pain Medicine 15:1328, 2014): the middle of that range (the earlier model's
# 1 uGy per frame at 3 frames/s was 5x live per second, above it).
DSA_TO_LIVE_DOSE_RATE = 3.25
# DSA of a spinal injection is acquired at a few frames per second, not at the fluoroscopy pulse
# rate [ED]: 3 frames/s, so a 2 s run is 6 frames.
DSA_FRAMES_PER_SECOND = 3.0
# Frames whose quanta the recursive filter of live fluoroscopy keeps in the displayed (and held)
# image [ED]: a filter with weight w on the newest frame leaves the noise of (2 - w) / w frames
# (7 at w = 0.25, a usual setting for a still patient; motion-adaptive filters keep less of the past
# while the needle moves, but a held image is of a still needle).
RECURSIVE_FILTER_FRAMES = 7
# Exposure control meters in a central disc of this radius (fraction of the detector width), on the
# rays whose line integral says they cross the body (more than ~2.5 mm of water at 60 keV); the same
# numbers as the renderer's (simulator.imaging.fluoro: _MEASURING_RADIUS and _BODY_THRESHOLD) [ED].
METERING_RADIUS = 0.25
BODY_LINE_INTEGRAL = 0.05
# Of the body, the control and the display's histogram leave out what the beam burns through: rays that cross this
# much less (in line integral) than the median of the body where they meter, transmitting e^1.5 = 4.5 times its
# signal and more. A C-arm's exposure and brightness control meters the anatomy, not the thin skin fold or the
# edge of the back at the field's rim, which burn out white on its monitor. Without it the lateral of the sacrum,
# centred on the canal with the back's thin tissue inside the measuring field, was windowed 3.6-7.5 (five times the
# AP's window) and showed flat and noise-free (issue 16); the thinnest gaps of an AP (interlaminar windows,
# foramina, 0.7 below the median on the built-in patient) stay in [ED].
BURNOUT_LINE_INTEGRAL = 1.5
# Metering rays: the centre and two rings of eight in the disc; samples every half voxel along each,
# over this far on either side of the isocentre (mm) [ED: the lumbar torso is < 50 cm deep].
_RINGS = (0.5, 1.0)
_HALF_LENGTH_MM = 300.0
_AIR_HU = -1000.0
KEV_TO_JOULE = 1.602176634e-16
# The exposure control's kV-mA curve (module docstring, 12): the kVp steps it climbs, and the tube current during
# a pulse it allows at the first and the last step, linear between, in pulses of AEC_PULSE_SECONDS [ED: 10 ms
# pulses; 40 mA at the top is a mobile C-arm's pulsed fluoroscopy, 6 mA mean at 15 pulses/s].
AEC_KVP_STEPS: tuple[float, ...] = tuple(float(kvp) for kvp in range(70, 125, 5))
AEC_CURVE_TUBE_CURRENT_MA = (6.7, 40.0)
AEC_PULSE_SECONDS = 0.01


def tube_output_ugy_per_mas(kvp: float) -> float:
    """Air kerma per tube charge at 1 m from the focal spot, uGy/mAs.

    Examples
    --------
    >>> round(tube_output_ugy_per_mas(80.0), 1)
    51.3
    """
    if not (np.isfinite(kvp) and 40.0 <= kvp <= 150.0):
        raise SpinesimError(f"tube voltage must be 40-150 kVp, got {kvp!r}")
    at_reference = TUBE_OUTPUT_COEFFICIENT_UGY_PER_MAS * kvp**TUBE_OUTPUT_EXPONENT
    return at_reference * (TUBE_OUTPUT_DISTANCE_MM / 1000.0) ** 2


def photons_per_mm2_per_ugy(kev: float = FLUORO_EFFECTIVE_KEV) -> float:
    """Photon fluence (1/mm^2) per uGy of air kerma at photon energy ``kev`` (60-80 keV).

    Examples
    --------
    >>> round(photons_per_mm2_per_ugy(60.0))
    34208
    """
    energies = np.array(sorted(AIR_MASS_ENERGY_ABSORPTION_CM2_PER_G))
    if not energies[0] <= kev <= energies[-1]:
        raise SpinesimError(f"effective energy {kev} keV is outside the tabulated {energies[0]:g}-{energies[-1]:g} keV")
    values = np.array([AIR_MASS_ENERGY_ABSORPTION_CM2_PER_G[e] for e in energies])
    mu_en_m2_per_kg = float(np.exp(np.interp(np.log(kev), np.log(energies), np.log(values)))) * 0.1
    per_gy_per_m2 = 1.0 / (kev * KEV_TO_JOULE * mu_en_m2_per_kg)
    return per_gy_per_m2 * 1e-6 * 1e-6  # per uGy, per mm^2


@dataclass(frozen=True)
class Technique:
    """How the tube is driven.

    Parameters
    ----------
    kvp : float
        Tube voltage, kV (lumbar fluoroscopy runs ~75-100 kVp) [ED default 80].
    frames_per_second : float
        Live-fluoroscopy frame (pulse) rate, 1/s (continuous 25-30, pulsed 4-15) [ED default 15].
    mas_per_frame : float, optional
        Tube charge per frame, mAs; None lets automatic exposure control choose it.
    aec_target_ngy : float
        Detector air kerma per frame that automatic exposure control aims for, nGy.
    averaged_frames : int, optional
        Frames whose quanta the displayed image holds; None: a pulse shot's, :func:`tap_frames`
        (see :func:`technique_for` for live and DSA runs).
    filtration_mm_al : float
        Total filtration of the tube, mm Al (:data:`simulator.imaging.spectrum.TUBE_FILTRATION_MM_AL`).
    kerma_rate_limit_mgy_per_min : float, optional
        The most air kerma per minute the exposure control may give at the limit's measurement point
        (:data:`FLUORO_KERMA_RATE_LIMIT_MGY_PER_MIN`); None for an acquisition (DSA), which has none.
    automatic_kvp : bool
        A shot's exposure control chooses the kVp along its curve (:func:`shot_technique`, the module
        docstring, 12); False keeps ``kvp`` and chooses the tube charge only. Direct renders
        (:func:`exposure_for`) always use ``kvp``.
    """

    kvp: float = 80.0
    frames_per_second: float = 15.0
    mas_per_frame: float | None = None
    aec_target_ngy: float = AEC_TARGET_DETECTOR_NGY_PER_FRAME
    averaged_frames: int | None = None
    filtration_mm_al: float = TUBE_FILTRATION_MM_AL
    kerma_rate_limit_mgy_per_min: float | None = FLUORO_KERMA_RATE_LIMIT_MGY_PER_MIN
    automatic_kvp: bool = True

    def __post_init__(self) -> None:
        tube_output_ugy_per_mas(self.kvp)  # validates the voltage
        if not (np.isfinite(self.filtration_mm_al) and 0.5 <= self.filtration_mm_al <= 20.0):
            raise SpinesimError(f"tube filtration must be 0.5-20 mm Al, got {self.filtration_mm_al!r}")
        if not (np.isfinite(self.frames_per_second) and 0.5 <= self.frames_per_second <= 60.0):
            raise SpinesimError(f"frame rate must be 0.5-60 frames per second, got {self.frames_per_second!r}")
        if self.mas_per_frame is not None and not (np.isfinite(self.mas_per_frame) and 0 < self.mas_per_frame <= 100.0):
            raise SpinesimError(f"tube charge per frame must be in (0, 100] mAs, got {self.mas_per_frame!r}")
        if not (np.isfinite(self.aec_target_ngy) and 0 < self.aec_target_ngy <= 10000.0):
            raise SpinesimError(f"AEC target must be in (0, 10000] nGy per frame, got {self.aec_target_ngy!r}")
        limit = self.kerma_rate_limit_mgy_per_min
        if limit is not None and not (np.isfinite(limit) and limit > 0):
            raise SpinesimError(f"kerma rate limit must be a positive number of mGy/min or None, got {limit!r}")
        if self.averaged_frames is not None and not (isinstance(self.averaged_frames, int) and 1 <= self.averaged_frames <= 100):
            raise SpinesimError(f"averaged frames must be a whole number 1-100, got {self.averaged_frames!r}")

    @property
    def shown_frames(self) -> int:
        """Frames whose quanta the displayed image holds."""
        return tap_frames(self.frames_per_second) if self.averaged_frames is None else self.averaged_frames


def beam_seconds(seconds: float | None) -> float:
    """Beam-on time of a shot: the run's ``seconds``, or a tap (:data:`PULSE_SECONDS`) for a pulse shot.

    >>> beam_seconds(None), beam_seconds(2.0)
    (0.5, 2.0)
    """
    return PULSE_SECONDS if seconds is None else seconds


def run_frames(seconds: float, frames_per_second: float) -> int:
    """Frames of a live or DSA run of ``seconds`` at ``frames_per_second``: whole pulses, at least one.

    >>> run_frames(2.0, 4.0), run_frames(1.0, 15.0), run_frames(0.01, 15.0)
    (8, 15, 1)
    """
    return max(1, int(round(seconds * frames_per_second)))


def at_pulse_rate(technique: Technique, frames_per_second: float | None) -> Technique:
    """``technique`` at a ``fluoro_shot``'s own pulse rate (unchanged when the shot gives none)."""
    return technique if frames_per_second is None else replace(technique, frames_per_second=frames_per_second)


def tap_frames(frames_per_second: float) -> int:
    """Frames of a pulse shot: a tap of ``PULSE_SECONDS`` at the pulse rate, at least one.

    >>> tap_frames(15.0), tap_frames(3.0), tap_frames(1.0)
    (8, 2, 1)
    """
    return max(1, round(PULSE_SECONDS * frames_per_second))


@dataclass(frozen=True)
class Exposure:
    """The dose of one frame and what it means for the image.

    Attributes
    ----------
    kvp, mas : float
        Tube voltage (kV) and charge (mAs) of the frame.
    reference_air_kerma_mgy : float
        Air kerma at the interventional reference point, mGy.
    dose_area_product_gy_cm2 : float
        Kerma-area product, Gy cm^2.
    detector_air_kerma_ngy : float
        Air kerma at the detector with nothing in the beam, nGy.
    quanta_per_pixel : float
        Detected photons per pixel with nothing in the beam.
    frames_per_second : float
        Pulse rate, for live fluoroscopy.
    """

    kvp: float
    mas: float
    reference_air_kerma_mgy: float
    dose_area_product_gy_cm2: float
    detector_air_kerma_ngy: float
    quanta_per_pixel: float
    frames_per_second: float


def magnification_dose_factor(carm: CArm) -> float:
    """How much more detector kerma the exposure control asks for in ``carm``'s magnification mode: the
    full field's area over the mode's for an image intensifier, 1 at its full field or on a flat panel
    (the module docstring, 9).

    >>> round(magnification_dose_factor(CArm().magnified(150.0)), 3), magnification_dose_factor(CArm())
    (2.351, 1.0)
    """
    if carm.full_field_mm is None or carm.detector_shape != "circle":
        return 1.0
    return (carm.full_field_mm / carm.detector_size_mm) ** 2


def exposure_for(carm: CArm, technique: Technique, transmission: float = 1.0,
                 kev: float | None = None) -> Exposure:
    """The exposure of one frame for ``carm`` and ``technique``.

    Parameters
    ----------
    transmission : float
        Fraction of the primary beam the anatomy lets through where automatic exposure control
        measures (``exp(-p)`` of its median line integral); used only when the technique leaves the
        tube charge to the AEC.
    kev : float, optional
        None: photons per kerma and detected fraction of the technique's spectrum; a number: of
        that single energy (60-80 keV).

    Examples
    --------
    >>> e = exposure_for(CArm(), Technique(kvp=80, mas_per_frame=0.1))
    >>> round(e.reference_air_kerma_mgy, 4), round(e.dose_area_product_gy_cm2 * 1e3, 2)  # mGy; mGy cm^2
    (0.0205, 2.13)
    """
    if not (np.isfinite(transmission) and 0.0 < transmission <= 1.0):
        raise SpinesimError(f"beam transmission must be in (0, 1], got {transmission!r}")
    output = tube_output_ugy_per_mas(technique.kvp)  # uGy/mAs at 1 m
    detector_per_mas_ugy = output * (1000.0 / carm.source_to_detector_mm) ** 2
    if technique.mas_per_frame is None:
        mas = technique.aec_target_ngy * 1e-3 * magnification_dose_factor(carm) / (detector_per_mas_ugy * transmission)
        if technique.kerma_rate_limit_mgy_per_min is not None:
            limit_point_mm = carm.source_to_detector_mm - LIMIT_POINT_FROM_DETECTOR_MM
            per_mas_mgy = output * (1000.0 / limit_point_mm) ** 2 * 1e-3
            mas = min(mas, technique.kerma_rate_limit_mgy_per_min / 60.0 / technique.frames_per_second / per_mas_mgy)
    else:
        mas = technique.mas_per_frame
    irp_distance_mm = carm.source_to_isocenter_mm - IRP_FROM_ISOCENTER_MM
    if irp_distance_mm <= 0:
        raise SpinesimError(f"the source-to-isocentre distance ({carm.source_to_isocenter_mm} mm) must exceed "
                            f"{IRP_FROM_ISOCENTER_MM:g} mm to place the interventional reference point")
    reference_ugy = output * mas * (1000.0 / irp_distance_mm) ** 2
    field_at_irp_cm2 = carm.field_area_at_detector_mm2() * (irp_distance_mm / carm.source_to_detector_mm) ** 2 / 100.0
    detector_ugy = detector_per_mas_ugy * mas
    if kev is None:
        spectrum = beam(technique.kvp, technique.filtration_mm_al)
        per_ugy, detected = spectrum.photons_per_mm2_per_ugy, spectrum.detected_fraction
    else:
        per_ugy, detected = photons_per_mm2_per_ugy(kev), DETECTOR_QUANTUM_EFFICIENCY
    quanta = detector_ugy * per_ugy * carm.pixel_size_mm**2 * detected
    return Exposure(kvp=technique.kvp, mas=mas, reference_air_kerma_mgy=reference_ugy * 1e-3,
                    dose_area_product_gy_cm2=reference_ugy * 1e-6 * field_at_irp_cm2,
                    detector_air_kerma_ngy=detector_ugy * 1e3, quanta_per_pixel=quanta,
                    frames_per_second=technique.frames_per_second)


@dataclass(frozen=True)
class DoseLedger:
    """Radiation used in one attempt: shots, live-fluoroscopy time, reference air kerma and DAP.

    Immutable: :meth:`add_shot` and :meth:`add_live` return a new ledger.

    Examples
    --------
    >>> frame = exposure_for(CArm(), Technique(mas_per_frame=0.1, frames_per_second=10))
    >>> ledger = DoseLedger().add_shot(frame).add_live(frame, seconds=3.0)
    >>> ledger.shots, ledger.frames, ledger.fluoro_seconds     # a tap of 5 frames, then 30
    (1, 35, 3.0)
    >>> bool(np.isclose(ledger.reference_air_kerma_mgy, 35 * frame.reference_air_kerma_mgy))
    True
    """

    shots: int = 0
    frames: int = 0
    fluoro_seconds: float = 0.0
    reference_air_kerma_mgy: float = 0.0
    dose_area_product_gy_cm2: float = 0.0
    history: tuple[tuple[str, float, float, float], ...] = field(default=(), repr=False)

    def _plus(self, kind: str, exposure: Exposure, frames: int, seconds: float) -> DoseLedger:
        kerma = exposure.reference_air_kerma_mgy * frames
        dap = exposure.dose_area_product_gy_cm2 * frames
        return replace(self, shots=self.shots + (kind == "shot"), frames=self.frames + frames,
                       fluoro_seconds=self.fluoro_seconds + seconds,
                       reference_air_kerma_mgy=self.reference_air_kerma_mgy + kerma,
                       dose_area_product_gy_cm2=self.dose_area_product_gy_cm2 + dap,
                       history=self.history + ((kind, seconds, kerma, dap),))

    def add_shot(self, exposure: Exposure) -> DoseLedger:
        """One pulse shot: a tap of :func:`tap_frames` frames (its beam time is not live time)."""
        return self._plus("shot", exposure, tap_frames(exposure.frames_per_second), 0.0)

    def add_live(self, exposure: Exposure, seconds: float, kind: str = "live") -> DoseLedger:
        """``seconds`` of live fluoroscopy (or a DSA run, ``kind`` "dsa") at the exposure's frame rate
        (frames rounded to whole pulses)."""
        if not (np.isfinite(seconds) and seconds >= 0):
            raise SpinesimError(f"live fluoroscopy time must be >= 0 seconds, got {seconds!r}")
        frames = run_frames(seconds, exposure.frames_per_second) if seconds > 0 else 0
        return self._plus(kind, exposure, frames, float(seconds))

    def summary(self) -> str:
        """One line for a trainee: shots, fluoro time, reference air kerma and DAP."""
        return (f"{self.shots} shots, {self.fluoro_seconds:.1f} s live, {self.reference_air_kerma_mgy:.2f} mGy "
                f"reference air kerma, {self.dose_area_product_gy_cm2 * 1000:.1f} mGy·cm² DAP")


def live_dose_rate_mgy_per_s(exposure: Exposure) -> float:
    """Reference air kerma rate of live fluoroscopy at this exposure, mGy/s."""
    return exposure.reference_air_kerma_mgy * exposure.frames_per_second


def dsa_target_ngy(live: Technique = Technique()) -> float:
    """Detector air kerma per DSA frame, nGy, for a C-arm whose live fluoroscopy is ``live``: the DSA run's
    dose rate is ``DSA_TO_LIVE_DOSE_RATE`` times the live one's (Maus et al. 2014), spread over
    ``DSA_FRAMES_PER_SECOND`` acquisitions.

    >>> dsa_target_ngy(Technique(aec_target_ngy=40.0, frames_per_second=15.0))  # 3.25 x 600 nGy/s over 3 frames
    650.0
    """
    return DSA_TO_LIVE_DOSE_RATE * live.aec_target_ngy * live.frames_per_second / DSA_FRAMES_PER_SECOND


def technique_for(mode: str, technique: Technique = Technique(), seconds: float | None = None) -> Technique:
    """The technique a ``fluoro_shot`` of ``mode`` drives the tube with, and the frames its image holds.

    ``technique`` (fluoroscopy) for pulses (a tap, :func:`tap_frames`) and live runs of ``seconds``
    (default one pulse time; the held image averages up to ``RECURSIVE_FILTER_FRAMES``); for DSA the
    acquisition's frame rate and the detector kerma per frame that gives ``DSA_TO_LIVE_DOSE_RATE`` times
    the live technique's dose rate, each frame one acquisition (:func:`dsa_target_ngy`).

    Examples
    --------
    >>> dsa, live = technique_for("dsa"), technique_for("live")
    >>> dsa.aec_target_ngy, dsa.frames_per_second, dsa.shown_frames
    (211.25, 3.0, 1)
    >>> dsa.aec_target_ngy * dsa.frames_per_second / (live.aec_target_ngy * live.frames_per_second)  # per second
    3.25
    >>> technique_for("pulse").shown_frames, technique_for("live", seconds=0.1).shown_frames, technique_for("live", seconds=5).shown_frames
    (8, 2, 7)
    """
    if mode == "dsa":
        return replace(technique, aec_target_ngy=dsa_target_ngy(technique),
                       frames_per_second=DSA_FRAMES_PER_SECOND, averaged_frames=1, kerma_rate_limit_mgy_per_min=None)
    if mode == "live":
        run = run_frames(PULSE_SECONDS if seconds is None else seconds, technique.frames_per_second)
        return replace(technique, averaged_frames=min(run, RECURSIVE_FILTER_FRAMES))
    return technique


def metering_rays(carm: CArm) -> np.ndarray:
    """Unit LPS directions (source -> detector) of the rays the exposure control meters on, (17, 3)."""
    centre = (carm.detector_pixels - 1) / 2.0
    radius = METERING_RADIUS * carm.detector_pixels
    angles = np.linspace(0.0, 2 * np.pi, 8, endpoint=False)
    u = [centre] + [centre + f * radius * np.cos(a) for f in _RINGS for a in angles]
    v = [centre] + [centre + f * radius * np.sin(a) for f in _RINGS for a in angles]
    return carm.ray_directions(np.array(u), np.array(v))


def metered_transmission(anatomy, carm: CArm, kev: float | None = None, technique: Technique = Technique()) -> float:
    """``exp(-median p)`` of the body on the metering rays: what automatic exposure control sees
    (kept per pose and beam by the anatomy, ``anatomy.derived``). ``p`` is the beam-hardened line
    integral of the technique's spectrum, or the line integral at ``kev`` if given, times the default
    anti-scatter grid's primary transmission (the renderer's AEC also counts the scatter the grid
    lets through, a tenth or so more signal)."""
    beam_key = ("kev", float(kev)) if kev is not None else ("spectrum", technique.kvp, technique.filtration_mm_al)
    key = ("dose.metered_transmission", np.round(carm.projection_matrix, 6).tobytes(), beam_key)
    return anatomy.derived(key, lambda: _metered_transmission(anatomy, carm, kev, technique))


def _metered_hu(anatomy, carm: CArm) -> tuple[np.ndarray, float]:
    """The CT (HU) sampled along each metering ray, (rays, samples), and the sample step, mm."""
    step = 0.5 * float(np.min(anatomy.ct.spacing))
    distances = carm.source_to_isocenter_mm + np.arange(-_HALF_LENGTH_MM, _HALF_LENGTH_MM, step)
    points = carm.source[None, None, :] + distances[None, :, None] * metering_rays(carm)[:, None, :]
    ijk = anatomy.ct.world_to_voxel(points.reshape(-1, 3)).T
    hu = ndimage.map_coordinates(anatomy.ct.array, ijk, output=np.float32, order=1, mode="constant", cval=_AIR_HU,
                                 prefilter=False)
    return hu.reshape(points.shape[:2]), step


def _metered_basis(anatomy, carm: CArm) -> tuple[np.ndarray, np.ndarray]:
    """Water and cortical-bone path lengths (mm) along each metering ray, kept per pose: every kVp the
    exposure control tries (:func:`aec_kvp`) meters the same paths through its own spectrum."""
    def paths() -> tuple[np.ndarray, np.ndarray]:
        hu, step = _metered_hu(anatomy, carm)
        water, bone = (fraction.sum(axis=1) * step for fraction in hu_to_basis(hu))
        return water, bone
    return anatomy.derived(("dose.metered_basis", np.round(carm.projection_matrix, 6).tobytes()), paths)


def _metered_transmission(anatomy, carm: CArm, kev: float | None, technique: Technique) -> float:
    if kev is not None:
        hu, step = _metered_hu(anatomy, carm)
        line_integrals = (hu_to_mu(kev)(hu) * step).sum(axis=1)
    else:
        spectrum = beam(technique.kvp, technique.filtration_mm_al)
        line_integrals = np.array([spectrum.line_integral(w, b) for w, b in zip(*_metered_basis(anatomy, carm))])
    body = line_integrals[metered_body(line_integrals)]
    return Grid().primary_transmission * (float(np.exp(-np.median(body))) if body.size else 1.0)


def metered_body(line_integrals: np.ndarray) -> np.ndarray:
    """Which of the metering field's ``line_integrals`` the exposure control and the display meter (bool): the body
    (more than :data:`BODY_LINE_INTEGRAL`) less what burns out (:data:`BURNOUT_LINE_INTEGRAL` or more below the
    body's median).

    >>> metered_body(np.array([0.0, 1.0, 5.0, 5.2, 5.4])).tolist()
    [False, False, True, True, True]
    """
    body = line_integrals > BODY_LINE_INTEGRAL
    if not body.any():
        return body
    return body & (line_integrals > np.median(line_integrals[body]) - BURNOUT_LINE_INTEGRAL)


def curve_tube_current_ma(kvp: float) -> float:
    """The tube current during a pulse (mA) the exposure control's curve allows at ``kvp`` (module docstring,
    12): :data:`AEC_CURVE_TUBE_CURRENT_MA` at the first and last of :data:`AEC_KVP_STEPS`, linear between.

    >>> round(curve_tube_current_ma(70.0), 2), round(curve_tube_current_ma(80.0), 2), curve_tube_current_ma(120.0)
    (6.7, 13.36, 40.0)
    """
    low, high = AEC_KVP_STEPS[0], AEC_KVP_STEPS[-1]
    return float(np.interp(kvp, (low, high), AEC_CURVE_TUBE_CURRENT_MA))


def aec_mas_per_frame(carm: CArm, technique: Technique, transmission: float) -> float:
    """Tube charge per frame (mAs) that gives the detector behind ``transmission`` the technique's target kerma
    (times the magnification mode's factor), at the technique's kVp, before any limit."""
    detector_per_mas_ugy = tube_output_ugy_per_mas(technique.kvp) * (1000.0 / carm.source_to_detector_mm) ** 2
    return technique.aec_target_ngy * 1e-3 * magnification_dose_factor(carm) / (detector_per_mas_ugy * transmission)


def aec_kvp(anatomy, carm: CArm, technique: Technique = Technique()) -> float:
    """The kVp a shot's exposure control settles on for ``anatomy`` at ``carm``'s pose (module docstring, 12):
    the first of :data:`AEC_KVP_STEPS` whose target needs no more charge per pulse than
    :func:`curve_tube_current_ma` allows in :data:`AEC_PULSE_SECONDS`, else the last; ``technique.kvp`` when the technique fixes it."""
    if not technique.automatic_kvp:
        return technique.kvp

    def enough(kvp: float) -> bool:
        stepped = replace(technique, kvp=kvp)
        transmission = metered_transmission(anatomy, carm, technique=stepped)
        return aec_mas_per_frame(carm, stepped, transmission) <= curve_tube_current_ma(kvp) * AEC_PULSE_SECONDS

    # The current needed falls and the current allowed rises with kVp, so the first step that is enough is found
    # by bisection: a few spectra per pose, not all eleven (a new spectrum takes seconds, spectrum.beam).
    low, high = 0, len(AEC_KVP_STEPS) - 1
    if not enough(AEC_KVP_STEPS[high]):
        return AEC_KVP_STEPS[high]
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(AEC_KVP_STEPS[middle]) else (middle + 1, high)
    return AEC_KVP_STEPS[low]


def shot_technique(anatomy, carm: CArm, mode: str, technique: Technique = Technique(),
                   seconds: float | None = None) -> Technique:
    """The technique one frame of a ``fluoro_shot`` of ``mode`` is made with: :func:`technique_for`'s, at the kVp
    the fluoroscopy's exposure control settles on (:func:`aec_kvp`) and the tube charge it sets there (the
    target, within the curve's charge per pulse at its top and the rate limit; a DSA run's for its own target at the
    same kVp). Both the dose (:func:`shot_exposure`) and the image are made with it.

    Examples
    --------
    >>> from anatomy_models.anatomy import Anatomy
    >>> from anatomy_models.volume import Volume
    >>> block = Anatomy(ct=Volume.from_spacing(np.zeros((30, 30, 30), np.int16), (4, 4, 4), origin=(-58, -58, -58)))
    >>> thin = shot_technique(block, CArm(), "pulse")     # 12 cm of water: the bottom of the curve
    >>> thin.kvp, thin.mas_per_frame < curve_tube_current_ma(70.0) * AEC_PULSE_SECONDS
    (70.0, True)
    """
    if technique.mas_per_frame is not None:  # a manual technique: nothing to choose
        return technique_for(mode, technique, seconds)
    kvp = aec_kvp(anatomy, carm, technique)
    run = technique_for(mode, replace(technique, kvp=kvp), seconds)
    transmission = metered_transmission(anatomy, carm, technique=run)
    mas = exposure_for(carm, run, transmission).mas  # the target, within the fluoroscopy rate limit
    if mode != "dsa" and technique.automatic_kvp:
        mas = min(mas, curve_tube_current_ma(kvp) * AEC_PULSE_SECONDS)
    return replace(run, mas_per_frame=mas)


def add_fluoro_shot(ledger: DoseLedger, anatomy, carm: CArm, mode: str, seconds: float | None = None,
                    technique: Technique = Technique()) -> DoseLedger:
    """``ledger`` with one more ``fluoro_shot``: the one function both the live dose counter and the
    attempt report count with.

    Parameters
    ----------
    ledger : DoseLedger
    anatomy : Anatomy
        The patient, metered by :func:`metered_transmission` (no rendering).
    carm : CArm
        The pose of the shot.
    mode : {"pulse", "live", "dsa"}
    seconds : float, optional
        Beam-on time of the run, s; a pulse without it is one frame, a run without it one pulse
        time (:data:`PULSE_SECONDS`).
    technique : Technique
        Fluoroscopy technique (DSA runs use :func:`technique_for`).
    """
    exposure = shot_exposure(anatomy, carm, mode, technique)
    if mode == "pulse" and seconds is None:
        return ledger.add_shot(exposure)
    return ledger.add_live(exposure, PULSE_SECONDS if seconds is None else seconds,
                           kind="dsa" if mode == "dsa" else "live")


def shot_exposure(anatomy, carm: CArm, mode: str, technique: Technique = Technique()) -> Exposure:
    """The exposure of one frame of a ``fluoro_shot`` of ``mode``: at the kVp and tube charge its exposure
    control sets from the metered patient (:func:`shot_technique`). A run's dose is its frames times this one."""
    return exposure_for(carm, shot_technique(anatomy, carm, mode, technique))
