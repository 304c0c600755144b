"""Fluoroscopy image formation: from line integrals to the picture on the C-arm's monitor.

``render_fluoro(anatomy, carm, needle, contrast)`` forms the beam-hardened line integral ``p`` the
detector sees: the anatomy's path lengths of water and cortical bone (one cached DRR per pose,
:func:`simulator.imaging.drr.anatomy_basis_line_integrals`), iodine from the contrast's concentration
volume and the needle's steel (closed form) are integrated over the tube's spectrum at the
technique's kVp (:mod:`simulator.imaging.spectrum`; ``kev=`` gives the older single-energy model). The anatomy's
path lengths are first restored of the blur its CT's voxels give them (:func:`restored_on_cells`), which a real
patient's projection does not have. Then, the way a C-arm does:

1. expected detected quanta ``N = N0 (exp(-p) + (T_s / T_p) S)`` inside the collimated field:
   the primary plus the patient's scatter ``S`` that the grid lets through
   (:mod:`simulator.imaging.scatter`), where ``N0`` comes from the exposure (tube technique with
   automatic exposure control, :mod:`simulator.imaging.dose`) times the frames the displayed image
   holds (a pulse shot's tap, averaged by the recursive filter); the image intensifier's curved input
   screen's pincushion distortion is applied here too;
2. quantum noise: Poisson counts with a seeded generator (same seed, same image), see
   :func:`quantum_noise`, which the detector's blur alone correlates (not the CT's projection blur: a
   detector's noise power spectrum is nearly white at its pixel pitch);
3. detector blur (Gaussian, the intensifier and camera's unsharpness) and the intensifier's
   veiling glare (a share of the light spread widely); a flat panel has neither glare, vignetting
   nor distortion (:meth:`DetectorModel.flat_panel`);
4. log: ``m = -ln(counts / N0)``, the measured line integral; digital subtraction (DSA) subtracts a
   mask frame's ``m`` here;
5. display, as a C-arm's image processing does it: window/level (automatic, or the trainee's), a global
   tone curve (a contrast-limited equalisation of the anatomy's noiseless frame, with a toe that rolls the
   thinnest tissue off towards white and a shoulder that rolls the densest off towards black, so nothing
   of the body is shown as white as air nor as black as the field's edge), gamma, a mild cored unsharp
   mask, then the polarity: by default (:data:`DEFAULT_POLARITY`) bone, needle and contrast dark on grey
   soft tissue, air bright, as most C-arm monitors show it (or bone white, air black: the inverted,
   radiograph-like setting); black outside the exposed field; orientation letters burned in. A mild local
   dynamic range compression ("harmonisation", :attr:`Display.harmonisation`): subtracting most of a 20 mm blur
   showed a foramen ringed by bone as white as air and rimmed every bone with a halo (issue 16); the body's thin end (a
   lateral's back) is lifted into the window on a wide mean and its bone shown steeper (:func:`thin_end_lift`). Window
   and tone curve come from the anatomy's noiseless frame (with the intensifier's vignetting, as the camera sees it), so
   they stay put while the needle moves and neither the needle nor the contrast is flattened away; the
   automatic brightness control holds the central field's median at mid-grey (:data:`_MEDIAN_GREY`).

The image is shown as the operator sees the prone patient from behind (see :mod:`simulator.imaging.carm`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from numba import njit
from PIL import Image, ImageDraw, ImageFont
from scipy import fft, ndimage

from anatomy_models.atomic import atomic_path
from anatomy_models.errors import SpinesimError
from anatomy_models.tissues import (FLUORO_EFFECTIVE_KEV, hu_to_basis, iodine_mu_per_mm_per_mg_ml,
                                    linear_attenuation_per_mm, tissue)
from anatomy_models.volume import Volume
from simulator.imaging.carm import CArm
from simulator.imaging.dose import Exposure, Technique, exposure_for, metered_body
from simulator.imaging.drr import (Method, anatomy_basis_line_integrals, anatomy_line_integrals, line_integrals,
                                   needle_line_integrals, pose_key, traced_field)
from simulator.imaging.scatter import Grid, ScatterGeometry, scatter_image
from simulator.imaging.spectrum import Beam, beam, detected_line_integrals, detected_water_bone, water_equivalent_mm

if TYPE_CHECKING:
    from anatomy_models.anatomy import Anatomy
    from simulator.needle.shaft import Needle

Polarity = Literal["bone_white", "bone_black"]
POLARITIES: tuple[Polarity, ...] = ("bone_black", "bone_white")
# The one default display polarity (CLI, web workstation, reports, sessions all take it from here):
# bone, needle and contrast dark, air bright, the default display of most C-arms used for spine
# injections (a pain physician's blind read of our images; "bone white" is the inverted, radiograph
# setting, kept as an option).
DEFAULT_POLARITY: Polarity = "bone_black"

# Line integral below which a ray counts as missing the body (air), for the automatic window and
# exposure control: 0.05 is ~2.5 mm of water at 60 keV [ED].
_BODY_THRESHOLD = 0.05
# Automatic exposure control measures in a central disc of this radius (fraction of the detector width) [ED].
_MEASURING_RADIUS = 0.25
# The automatic window spans these percentiles of the harmonised line integrals of the body in a central disc of
# this radius, where a C-arm's automatic brightness control and its image processing measure [ED]: from the
# 0.2nd, so that the thinnest gaps between bones (interlaminar windows, foramina) stay dark grey as on a real
# monitor (the beam still crosses the trunk there) instead of clipping to black (the 1st percentile clipped
# 2.4% of the central field of the L4 Scotty view to black, now 0.7%), to the 99.9th, so that the densest bone
# is not clipped white (the 99.5th with harmonisation clipped 2.2% of the AP field). Not the whole body (issue
# 16: "the lateral as clean as the AP"): a lateral's thin back and thick front, which a window over the whole
# body had to hold, spread its window to 2.3 times the AP's and showed the same detector noise at a third of
# the AP's grey levels (built-in patient, 1 mm, the same photons per pixel behind every view's body); measured
# in the central field the lateral of L5-S1 is shown with 1.5 times the AP's window and the thinnest tissue at
# the field's rim burns out bright, as on the monitor, clipping 1.9%, 3.1% and 1.3% of the field on AP,
# lateral L4 and lateral L5-S1 (against 1.6%, 1.3% and 1.5%).
_WINDOW_RADIUS = 0.35
_WINDOW_PERCENTILES = (0.2, 99.9)
# The window's bottom is set this many windows below the central field's thinnest tissue (its 0.2nd percentile), so
# that the gaps between bones are shown grey, above the toe (Display.toe), and the thinner flank lighter than them
# [ED 0.25; 0.5 showed the AP's gap at 194 but took the contrast of the Scotty dog's neck of L5 below
# tests/simulator/test_scotty_dog.py's bound]. At the bottom itself the gaps sat in the toe: the AP's L4-L5 interlaminar window (217 mm of
# water-equivalent path, the flank at the field's rim 197 mm) was shown at 212, brighter than the flank (176), the
# lateral's L4-L5 foramen (264 mm) at 209 against the back's 173 (issue 16's blind read: "gaps in the bone
# air-white, brighter than the flank"); now 201 against 215 and 211 against 226 (built-in patient, 512 px,
# noiseless, with the vignetting on the camera's log image, DetectorModel.vignetting; m2.py of the report).
_WINDOW_LOW_MARGIN = 0.25
# Where in the window (0-1) the automatic brightness control holds the median of the central field's body
# (_WINDOW_RADIUS) at most [ED 0.55, a little past mid-grey: a C-arm's ABC keeps its measuring field's brightness
# constant from view to view]. Without it the steep contralateral oblique's long thin tail (the flank and bowel gas in
# the central field) set the window's bottom and its median sat at 0.63 of it, the whole spine in the display's
# shoulder: mean grey 102 against the AP's 134 (issue 16: "a featureless dark mass"); now 122 and 123. At 0.5 the
# 25 degree oblique's window slid up too and its thin flank sank into the toe, where its quantum mottle was shown at
# 0.42 of the bone's gain instead of 0.82 (tests/simulator/test_fluoro_display_noise.py; grain.py of the report).
_MEDIAN_GREY = 0.55
# The one-sided window of a subtracted (DSA) image, in line-integral units: 0.4 is ~1.8 mm of
# undiluted 300 mgI/mL contrast (0.23/mm at 60 keV), so a thin undiluted layer is full white [ED].
_DSA_HALF_WINDOW = 0.4
# A live frame's rays are at most this many of the CT's voxels apart at the isocentre (live_projection_cell)
# [ED: a bilinear interpolation of rays closer than a voxel loses nothing the trilinear samples held;
# 0.6 keeps a margin. The 1 mm spine: 2 pixels a ray at 512, 0.58 voxels; a 0.5 mm CT: every pixel].
_LIVE_RAY_SPACING_VOXELS = 0.6
# How many poses' interpolated water and bone images (projected_on_cells, 2 MB at 512 x 512) an anatomy
# keeps: a live run's recent poses (the binned projections themselves are kept by the DRR cache).
_POSES_ON_CELLS = 8
# Points of the automatic tone curve across the window.
_TONE_KNOTS = 257
# The automatic tone curve's equalised histogram is clipped at this multiple of its mean density
# (:func:`tone_curve`), CLAHE's clip limit [ED 2, within the 2-4 of contrast-limited equalisation's usual
# settings (Zuiderveld, "Contrast limited adaptive histogram equalization", Graphics Gems IV, 1994)]. Without
# it the curve's slope followed the histogram: 1.6 times the linear ramp in the mid-greys and 0.7 at the
# ends, so the thinnest tissue of the AP showed its quantum noise at 4.3 grey levels against the mid-greys'
# 11.1, although its log-domain noise is 0.84 of theirs (issue 16: "noise-free patches in bright areas").
_EQUALISATION_CLIP = 2.0
# How far from the dense end of the grey scale the edge-enhanced image starts to roll off instead of being clipped
# (:func:`soft_limited`) [ED 0.04, 10 grey levels]. The unsharp mask's overshoot at a dense edge (a pedicle's
# lateral wall, a spinous process) took 0.7% of the AP's body to black, where the quantum noise was cut in
# half: its dark half clipped, its light half left as "salt specks in dark areas" (issue 16's blind read).
_END_MARGIN = 0.04
# How far from black (a share of the grey scale) the quantum mottle starts to fade (:func:`black_taper`) [ED 0.1,
# 25 grey levels: contrast a few windows past the anatomy keeps its grain, steel at the end of the scale none].
_BLACK_TAPER = 0.1
# What share of the way from the grey it lies on to black a needle's steel may take it at most (:func:`needle_shown`)
# [ED 0.9: the darkest of a 22 G TFESI shaft on the AP (1 mm patient, 512 px) ends 9 grey levels from black, its
# median 41, twice the quantum mottle of its pixels (5 grey levels behind its 34% transmission), so its grain is
# shown, not clipped; the shaft end-on in the gun barrel, opaque, on the hub's dark plastic, 15-16]. At the window's gain a TFESI needle seen nearly end-on in
# the AP (a line integral of 1.07, 1.3 windows) ran past black: 98% of its pixels at 0 with no noise, its clipped core
# 4.4-5.5 px wide against the 3.2 px its 0.72 mm shaft gives (issue 16's blind read: "a 12-18 G look").
_NEEDLE_TO_BLACK = 0.9
# Across how many pixels the needle's contrast is compressed as one (:func:`needle_shown`): its peak is read over
# a square this wide, wider than a 22 G shaft's blurred profile (3-4 px at 512 px) [ED 7].
_NEEDLE_PEAK_PIXELS = 7
# Radius (Gaussian standard deviation, mm at the detector) of the local mean that the display's toe, shoulder and tone
# curve shape, the quantum mottle about it being shown at the window's own gain (to_display) [ED 2.0: a few times the
# displayed mottle's correlation (1/e within ~2 px of 0.3 mm at 768 px, tests/simulator/test_fluoro_display_noise.py),
# far finer than the grey changes of the thin tissue and the pelvis, centimetres; at 1.0 the mottle coarser than it,
# after the noise reduction most of it, still went through the shoulder: the densest tenth of the 2 mm patient's
# lateral L4 showed 0.81 of the thin tissue's displayed noise, 1.04 at 2.0]. The mottle kept at the toe's knee slope
# alone (issue 22) left the densest tissue's at the shoulder's slope: the pelvis and the vertebral bodies, where the
# fewest quanta arrive, were the smoothest part of the frame (issue 16's blind read, stop 23: "the noise runs
# backwards"; 2 mm patient, lateral L4: 0.30 of the thin tissue's displayed noise, its log-domain noise 2.4 times).
_GRAIN_RADIUS_MM = 2.0
# The body's soft-tissue envelope that the lateral's thin end is lifted on (:func:`thin_end_lift`): bones narrower than
# a square of _THIN_END_OPENING_MM (mm at the detector) rolled away [ED 50: a spinous process and a vertebral body's
# depth, ~30 and ~45 mm at the detector, are both narrower], then a Gaussian of _THIN_END_RADIUS_MM [ED 40: twice the
# harmonisation's radius, wider than a process and the gap below it together, so they are lifted alike and keep their
# step]; what lies below its _THIN_END_PERCENTILE-th percentile in the central field is lifted [ED 5: the median took
# the lateral's centre 20 grey levels darker].
_THIN_END_OPENING_MM = 50.0
_THIN_END_RADIUS_MM = 40.0
_THIN_END_PERCENTILE = 5.0
# Where the body is thin, a bone narrower than that square (what it adds above the envelope, b) is shown steeper:
# b + (G - 1) r (1 - exp(-b / r)) for the gain G = _THIN_END_DETAIL_GAIN and the reach r = _THIN_END_DETAIL_REACH, G
# times as steep for a faint bone, at most (G - 1) r more for a dense one; in full where the body's wide mean (bones
# and all, so a vertebral body keeps its grey) lies _THIN_END_DEPTH below its _THIN_END_PERCENTILE-th percentile in the
# central field, in proportion nearer it [ED G 4, r 0.1, depth 0.2 line-integral units]. A spinous process adds only
# 0.06-0.2 to the lateral's line integral (7-9 mm across the ray, 555-600 HU on the built-in patient, as real ones:
# clinical.md §4.7, §5.4), a few per cent of the lateral's window (~2.0, metered on the bodies); lifted without a gain
# the lateral of L4 showed the processes of L3, L4 and L5 at 149, 182 and 188 grey against 176, 199 and 203 in the
# gaps below them (built-in patient, 1 mm, 512 px, noiseless), "pale translucent ovals, nearly the brightness of soft
# tissue" (stop 27's blind read); now 122, 160 and 164 against 176, 197 and 199. Noise is not amplified (the frame's
# own mottle is shown at the window's gain, :func:`to_display`): the thin end has more quanta than the bodies. The
# capped gain keeps the laminae and facets (0.3-0.5 above the envelope) from black, and the wide mean leaves a
# lateral's anterior abdomen, its bowel gas, as it was unless it is thinner than the back.
_THIN_END_DETAIL_GAIN = 4.0
_THIN_END_DETAIL_REACH = 0.1
_THIN_END_DEPTH = 0.2
# How far from a true lateral (degrees of primary angle) the display's lateral program applies (is_lateral) [ED 20: a
# lateral is taken within a few degrees of 90; a 50-55 degree contralateral oblique is not one].
_LATERAL_WITHIN_DEG = 20.0
# The CT voxel up to which the needle shares the anatomy's projection blur (:func:`needle_blur_mm`): the built-in
# patient's 1 mm [ED]. Beyond it the blur is the coarse CT's sampling, not anything a detector does; the quantum
# noise shares none of it (:func:`measure`): a 3 mm CT's 1.33 mm had blurred the mottle over 4 px at 768 px
# (correlation length 7.5 px), "no grain at all, waxy" (issue 22's blind read of the TotalSegmentator lumbar CT).
_NEEDLE_BLUR_VOXEL_MM = 1.0
# The blur of the CT's projection that projection_restored takes back out (:func:`ct_projection_sigma_mm`): the CT
# reconstruction kernel's full width at half maximum [0.8 mm: the generator's, anatomy_models.spine.ct_synthesis.
# RECONSTRUCTION_FWHM_MM, a standard soft/bone kernel; a clinical CT's is no sharper, so an imported CT is restored
# no more than it is blurred]. With the voxel's own averaging (the partial volume, v^2 / 12) and the projector's
# linear interpolation between voxel centres (v^2 / 6) the 1 mm patient's projection carries a Gaussian of 0.60 mm at
# the isocentre, 2.06 px at 512 px: a body's side wall 5.5 px from 10 to 90 % in the line integrals (the model's
# 5.56 with the detector's 0.3 mm), where a real C-arm shows 1-2 px (issue 16's blind read: "the anatomy blurred
# over 3-5 px under a 1 px noise"; esf.py of the report).
_CT_KERNEL_FWHM_MM = 0.8
# The restoration's regularisation (:func:`projection_restored`), a Wiener filter's noise-to-signal amplitude [ED 0.12:
# the gain peaks at ~4 near 0.16 cycles a pixel on the 1 mm patient at 512 px, about the CT's own Nyquist frequency
# there (one voxel is 3.4 px at the detector: 0.146 cycles a pixel), beyond which the projection holds the voxel grid's
# interpolation, not the patient. At 0.06 (gain ~8 at 0.18) the trabecular texture and the voxel grid came up as a
# cross-hatched mesh over the iliac wings; at 0.2 the body's side wall stayed 3.9 px].
_RESTORATION_FLOOR = 0.12
# The focal spot's nominal size, mm: the blur a real patient's projection keeps, its penumbra ``(M - 1) f`` at the
# detector for the magnification ``M`` (a Gaussian of FWHM ``(M - 1) f``) [ED 0.6: the large focus of mobile C-arms'
# 0.3/0.6 mm pairs, the brief's "0.3-0.6 mm"; at the 1.54 magnification 0.137 mm, 0.31 px at 512 px].
_FOCAL_SPOT_MM = 0.6
# Columns of reflected margin round the projection before its Fourier restoration, so the image's far side does not
# wrap into its edge.
_RESTORATION_MARGIN = 32
# How many settings' frame facts (AEC, window, harmonisation background, the anatomy's input image
# before noise) an anatomy keeps: two of them are frame-sized images; the frames themselves are kept
# by the DRR cache.
_FACTS_PER_ANATOMY = 64


@dataclass(frozen=True)
class DetectorModel:
    """The imaging chain's physics beyond Beer-Lambert: scatter and grid, the image intensifier's
    veiling glare, vignetting and pincushion distortion, and blur.

    The defaults are a mobile C-arm's 9-inch image intensifier with a grid; :meth:`flat_panel` is a
    flat-panel detector (no glare, no vignetting, no distortion, sharper).

    Parameters
    ----------
    blur_mm : float
        Standard deviation of the Gaussian point-spread function at the detector plane, mm
        [ED: ~0.3 mm gives an MTF of ~0.1 near 1.3 lp/mm, typical of a 9-inch image intensifier].
        Applied after the quantum noise, so the noise is correlated mottle rather than per-pixel
        speckle: 0.3 mm is a sigma of 0.67 px at 512 px over 230 mm, a neighbour correlation of
        ~0.55 and ~0.43 of the white noise's standard deviation (measured in the tests).
    vignetting : float
        Fractional brightness lost at the rim of the field relative to its centre, ``v(r) = 1 -
        vignetting (r / R)^2``: the intensifier's light output falls toward the rim (its curved input
        screen is imaged on the flat output screen with a larger magnification at the rim, the pincushion
        distortion, so the same electrons spread over more of it; and the optics collect less of the
        rim's light). After the quantum sink, so it darkens the monitor's picture without adding noise:
        the camera's log image, which the C-arm's window and tone curve show, holds it as the offset
        ``-ln v(r)`` (:func:`vignetting_log`), added to the measurement after the noise and before the automatic
        window, as the exposure control and the window see the camera's image; a subtraction (DSA) cancels it.
        Multiplying the displayed grey instead, after the window's toe had compressed the thin tissue, showed the
        flank at the rim (the AP L4: 197 mm of water-equivalent path, 0.77 of its grey) darker than the
        interlaminar window at the centre (217 mm; issue 16's blind read: "gaps in the bone air-white, brighter
        than the flank"). The tube's own loss at the rim is "usually no more than 25%" (xrayimageintensifier.com,
        "The resolution of the image intensifier is reduced"), but a digital C-arm's camera chain divides most of
        it out with stored per-pixel correction factors (Bruijns, "Imaging system with means for compensating
        vignetting", Philips, EP 0562657 B1, 1993): what reaches the log image is the residue [ED 0.1]. At the
        tube's own 0.3 the log image held an offset of up to 0.36 at the rim, a third of the AP's window, which
        took away half of what the vertebral body shows against the paraspinal tissue beside it (the AP L4's 0.26
        of line integral shown as 31 grey levels against the 0.52 between lamina and interlaminar window as 132;
        issue 16's blind read, stop 24: "eggshells", the body as pale as the tissue beside it). 0 for a flat panel.
    scatter : bool
        Add the patient's scattered radiation (:mod:`simulator.imaging.scatter`).
    grid : Grid
        The anti-scatter grid (``scatter.NO_GRID`` for none).
    glare_fraction : float
        Veiling glare of an image intensifier: this fraction of the light is spread over the output
        screen (light scattered in the output window and the optics) [ED 0.08: image intensifiers'
        glare fractions are quoted at 5-15%, e.g. Seibert, Nalcioglu & Roeck, "Characterization of the
        veiling glare PSF in x-ray image intensified fluoroscopy", Med. Phys. 11:172, 1984]. 0 for a
        flat panel.
    glare_radius_mm : float
        Gaussian radius of the glare's spread at the detector plane, mm [ED 25].
    pincushion : float
        Pincushion distortion of the intensifier's curved input screen: a point at radius ``r`` of
        the field's half-width ``R`` is shown at ``r (1 + pincushion (r / R)^2)`` [ED 0.03: a few per
        cent at the rim]. 0 for a flat panel.
    """

    blur_mm: float = 0.3
    vignetting: float = 0.1
    scatter: bool = True
    grid: Grid = Grid()
    glare_fraction: float = 0.08
    glare_radius_mm: float = 25.0
    pincushion: float = 0.03

    def __post_init__(self) -> None:
        if not (np.isfinite(self.blur_mm) and 0.0 <= self.blur_mm <= 5.0):
            raise SpinesimError(f"detector blur must be 0-5 mm, got {self.blur_mm!r}")
        if not (np.isfinite(self.vignetting) and 0.0 <= self.vignetting < 1.0):
            raise SpinesimError(f"vignetting must be in [0, 1), got {self.vignetting!r}")
        if not (np.isfinite(self.glare_fraction) and 0.0 <= self.glare_fraction < 0.5):
            raise SpinesimError(f"veiling glare fraction must be in [0, 0.5), got {self.glare_fraction!r}")
        if not (np.isfinite(self.glare_radius_mm) and 1.0 <= self.glare_radius_mm <= 200.0):
            raise SpinesimError(f"veiling glare radius must be 1-200 mm, got {self.glare_radius_mm!r}")
        if not (np.isfinite(self.pincushion) and 0.0 <= self.pincushion <= 0.2):
            raise SpinesimError(f"pincushion distortion must be 0-0.2, got {self.pincushion!r}")

    @classmethod
    def flat_panel(cls, **changes: object) -> DetectorModel:
        """A flat-panel detector: no veiling glare, vignetting or distortion; 0.15 mm blur [ED]."""
        return cls(**{"blur_mm": 0.15, "vignetting": 0.0, "glare_fraction": 0.0, "pincushion": 0.0, **changes})


@dataclass(frozen=True)
class Display:
    """How the monitor shows the measured line integrals.

    Parameters
    ----------
    polarity : {"bone_black", "bone_white"}
        "bone_black" (the default, :data:`DEFAULT_POLARITY`: the C-arm monitor's usual display,
        bone, needle and contrast dark, air bright) or "bone_white" (the inverted, radiograph-like
        setting: bone and contrast white, air black).
    window : (low, high), optional
        Range of the harmonised line integral mapped to the full grey scale; None chooses it from the
        anatomy's noiseless frame (0.2nd to 99.9th percentile of the body in the central field,
        :data:`_WINDOW_RADIUS`, its bottom lowered by :data:`_WINDOW_LOW_MARGIN` and the whole slid up where the
        field's median would be darker than :data:`_MEDIAN_GREY`).
    equalisation : float
        Weight of the equalised histogram in the automatic tone curve (0: a linear window; 1: full
        histogram equalisation of the anatomy's noiseless frame) [ED 0.3, with harmonisation doing
        most of the range compression]. Global, so monotonic:
        more attenuation is never shown darker in bone_white (never brighter in bone_black). Not
        applied to a window given here or to DSA.
    harmonisation : float
        Fraction of the large-scale (blurred) log image subtracted before windowing: the dynamic
        range compression of a C-arm's image processing ("harmonisation"; clinical.md §5.2: the
        display is log-compressed with edge enhancement) [ED 0.3, mild]. Without it the lateral's
        posterior elements sit in the thin back's bright end of a window that must also hold the
        thick abdomen, and read less (issue 16: "lateral: posterior elements missing"), and the Scotty
        dog's neck of L5 loses its edge (tests/simulator/test_scotty_dog.py). Being local, it shows a
        region ringed by denser ones brighter than its path alone would: at the earlier 0.75 the lateral's
        L4-L5 foramen, ringed by bone, was as white as air (254 of 255 on the built-in patient, body 132,
        against 265 and 295 mm of water-equivalent path), the soft tissue beside every bone white and the
        bone's rim black (issue 16: "nothing inside the body may be air-white", "halos";
        tests/simulator/test_fluoro_tone.py); at 0.3 the foramen was 209 (body 133). Since the window's bottom lies
        below the central field's thinnest tissue (:data:`_WINDOW_LOW_MARGIN`), which it shows grey instead of at the
        toe's knee, the halo beside a bone shows at the window's full slope: a 40 mm bone block's soft tissue 4-16 mm
        away is 31 grey levels lighter than 21-41 mm away, as before, but now a third of the block's step, not a
        quarter (tests/simulator/test_fluoro_tone.py); 0.2 took the Scotty dog's neck of L5 below what
        tests/simulator/test_scotty_dog.py needs. The subtracted image is relative to the body's median.
    harmonisation_radius_mm : float
        Gaussian radius (standard deviation) of that blur at the detector plane, mm [ED 20: wider
        than a vertebra's posterior elements, so they keep their contrast, narrower than the
        abdomen's thickness changes. A larger kernel left the vertebral body more of its contrast against the
        paraspinal tissue (the AP L4's local gain for a lamina over that for the body 1.45 at 20 mm, 1.37 at 30,
        1.20 at 50; built-in patient, 1 mm, 512 px, noiseless) but spread the halo of a thin flank at the field's
        rim over the central field, where it moved the automatic window (tests/simulator/test_fluoro.py's slab:
        the centre's noise 0.74 of itself at 30 mm, 0.83 at 20), and left the caudal lateral's window 3.1 times
        the AP's (tests/simulator/test_exposure_metering.py; both at strength 0.3)].
    harmonisation_range : float
        Range (Gaussian standard deviation, line-integral units) of the large-scale image's edge awareness
        (:func:`large_scale_image`): neighbours whose value differs by many times it are left out of a pixel's
        large-scale mean, so a step much larger than it (a vertebral body against the disc between it and the next,
        an iliac crest against the tissue over it) is compressed like the large scale, without the halo an unsharp
        mask's Gaussian blur makes, and the detail smaller than it keeps the harmonisation's local gain, the halo-free
        tone mapping of Durand & Dorsey (ACM Trans. Graph. 21(3):257-266, 2002) [ED 0.08, about 1.5 % less
        transmission, a fifth of the AP L4's body against the paraspinal tissue beside it (0.44)]. With the Gaussian
        blur (a range of 10, more than any step) stop 25's blind readers saw "the discs and the gaps between bones
        brighter than the paraspinal soft tissue" and white halos along the iliac crests: the L4-L5 disc on the AP
        of L4 was shown at 205 against 193 for the tissue beside it that the beam crosses as much of (line integrals
        5.08 and 5.09; scatter, glare and vignetting off; built-in patient, 1 mm, 512 px), 203 against 197.5 now (the
        tissue 0.02 denser), at 0.15 205 against 193.5, at 0.05 203 against 198; the soft tissue 1-5 mm over the
        crests of the AP of L5 tilted 15 degrees caudal 16 and 21 grey levels lighter than 15-20 mm over them, 7 and
        10 now, 5 and 8 without harmonisation, equalisation and edge enhancement
        (tests/simulator/test_fluoro_tone.py).
    gamma : float
        Display gamma applied after the window (>1 darkens the mid-greys) [ED 1.0].
    edge_enhancement : float
        Unsharp-mask gain (0 = none) [ED 0.6, mild]: a C-arm's image processing adds back this multiple of the
        detail layer (the grey image minus its Gaussian blur) after the tone curve, the spatial frequency
        processing of digital radiography that splits the image into a small-kernel band, boosted (edge
        enhancement), and a large-kernel band, compressed (harmonisation) (Prokop & Schaefer-Prokop, "Digital
        image processing", Eur. Radiol. 7 Suppl. 3:S73-S82, 1997; the multiscale form: Vuylsteke & Schoeters,
        "Multiscale image contrast amplification (MUSICA)", Proc. SPIE 2167:551-560, 1994). In fluoroscopy
        sequences Jabri & Wilson (J. Opt. Soc. Am. A 19:1297-1307, 2002) chose unsharp-mask gains that double a
        0.46 mm guidewire's contrast. It makes endplates, cortices and the needle crisper, with a faint dark and
        bright rim at a strong edge: a 20 % step overshoots by 7 % of itself (tests/simulator/
        test_fluoro_edge_enhancement.py). At the earlier 1.4 (18 %) issue 16's blind readers saw dark and bright
        halos round the body and the bones; with a 1.5 mm radius and a stronger coring (0.015) even a gain of
        1.6 read as "no edge enhancement".
    edge_radius_mm : float
        Gaussian radius (standard deviation) of the unsharp mask at the detector plane, mm [ED 2: a kernel of
        "a few mm" (4.7 mm full width at half maximum), wider than a cortex's ~2 mm edge in the DRR so the
        whole edge is boosted, not only its steepest pixel, and far below the harmonisation's 20 mm; 3 mm
        boosts the mottle's mid frequencies into coarser grain (its autocorrelation length on the 2 mm
        patient's AP 2.1 px, against 1.97 px at 2 mm and 1.9 px at the earlier 1.5 mm, which sharpened
        mostly the pixel-scale mottle)]. A step's response is the analytic ``s + g * cored(s - G * s)``
        (tests/simulator/test_fluoro_edge_enhancement.py).
    edge_coring : float
        Detail amplitude (fraction of the grey scale) below which the edge enhancement treats it as
        noise and spares it (:func:`cored`) [ED 0.01: the quantum mottle's robust standard deviation
        in the detail layer at the default 40 nGy per frame is 0.012-0.021 on AP, lateral and oblique
        L4 views of the built-in patient, 0.003-0.006 without noise; the earlier 0.015 also spared the
        low-contrast edges (a body's side wall on the AP), which were hardly enhanced at all: across an edge
        blurred by 1 mm, sampled on 0.45 mm pixels, a step of 5 % of the grey scale overshoots its plateau by
        0.1 % of itself at that earlier setting, by 7 % now, a step of 20 % by 10 % and 18 %]; 0 sharpens
        the mottle as much as the edges. A constant, not measured per frame, so a needle or contrast never
        changes how the rest of the image is shown.
    edge_limit : float
        Amplitude (fraction of the grey scale) that the edge enhancement's cored detail approaches but never exceeds
        (:func:`cored`), so that a strong edge's overshoot stays within ``edge_enhancement * edge_limit`` of the grey
        scale while a faint edge's detail, far below it, is boosted whole, as multiscale processing compresses the
        largest detail coefficients and boosts the small ones (Vuylsteke & Schoeters 1994) [ED 0.03: a 20 % step's
        overshoot under 5 grey levels; an iliac crest's bone against thin tissue, a step of most of the scale,
        overshot by 0.6 of its detail, a bright rim along the crest (stop 25's blind read: "white halos 15-20 px
        along the iliac crests")]. 0: no limit.
    noise_reduction : float
        Range of the spatial noise reduction applied to the measured (log) image before the dynamic range
        compression, in multiples of the local standard deviation of its quantum noise
        (:func:`quantum_noise_log`, known from the exposure and the anatomy's noiseless input): a bilateral
        filter (:func:`noise_reduced`) that averages each pixel with its neighbours, weighted by their
        distance (:attr:`noise_reduction_sigma_px`) and by how close their values are to its own on that
        scale, so that a step of several noise deviations (a cortex, the needle, contrast) is not smoothed
        across [ED 3]. 0: no spatial noise reduction. A C-arm's noise reduction is mostly temporal (the
        recursive filter, here the frames a shot's tap averages, :mod:`simulator.imaging.dose`) with a mild
        spatial share; without any, the harmonisation and edge enhancement below double the noise (issue
        16: "grainy like one frame"). The earlier noise-conditioned mean over 5 x 5 pixels with a hard
        threshold (Sarno et al., BioMed. Eng. OnLine 18:94, 2019) left flat patches with jagged borders
        that readers called "oil paint"; the soft, small Gaussian weights keep the noise's texture fine.
        Measured on the built-in patient's squared AP L4 at 512 px and the default exposure
        (``measure_noise.py`` of issue 16's report): displayed noise 16.7 grey levels without it, 8.2 with
        it (10.5 with the earlier filter); the noise's autocorrelation falls to 1/e in 1.0 and 1.8 pixels
        (the detector's own quantum mottle: 1.3 px, twice its 0.67 px blur).
    noise_reduction_strength : float
        How far each pixel moves towards the bilateral mean (0-1) [ED 1].
    noise_reduction_sigma_px : float
        Gaussian radius (standard deviation) of the noise reduction's spatial weights, detector pixels;
        applied along rows, then columns [ED 0.8: the displayed noise's autocorrelation falls to 1/e within 2 px
        (tests/simulator/test_fluoro_display_noise.py), the detector's own grain, blurred by the detector alone
        (:func:`measure`), within ~1.2 px; at the earlier 1.2 the filter's own kernel doubled that (2 mm patient,
        512 px: 2.16 px against the measured 1.14; 0.8: 1.73), 2 px makes blotches].
    shoulder : float
        Grey level (fraction of the scale, before the polarity) above which the display rolls off softly instead of
        clipping at the window's top: a value ``x`` of the window (0-1 across it) beyond the shoulder ``k`` is shown
        at ``k + (1 - k)(1 - exp(-(x - k) / r))`` for the reach ``r`` (:attr:`shoulder_reach`), so what the beam
        crosses more of is always shown darker (bone_black) and nothing of the body reaches the end of the scale.
        The window holds the anatomy (its 99.9th percentile, :data:`_WINDOW_PERCENTILES`); contrast and steel lie
        beyond it: 300 mgI/mL iodine 2, 5 and 10 mm thick adds ~0.43, ~1.15 and ~2.2 to the line integral, 0.6, 1.7
        and 3.3 times the AP's window. Clipped there, a pool and a film of contrast were one saturated black with hard
        outlines (issue 16: "contrast drawn saturated black with geometric outlines"). The shoulder is the roll-off
        of a monitor's display curve, as a film's characteristic curve has one [ED 0.75: the densest quarter of the
        anatomy's window is shown a quarter as steep, so that its densest bone stays a dark grey, ~27 grey levels from
        black, and undiluted contrast 5 mm thick or more is darker than any bone (the built-in patient's AP,
        tests/simulator/test_contrast_display.py). At the earlier 0.85 (reach 0.6) the densest bone was black (6
        grey levels), as black as a 5 and a 10 mm layer (5 and 4), and a spread read "thin, grey and confined", no
        darker than the pedicles (issue 16's blind read: on an epidurogram dense contrast is the darkest thing on the
        monitor, darker than cortical bone). A knee at 0.6 showed bone lighter still but flattened the Scotty dog's
        neck and the pedicle's ring below what tests/simulator/test_scotty_dog.py and test_pedicle_ring.py need].
    shoulder_reach : float
        The shoulder's reach ``r``, in windows [ED 1.0: contrast over soft tissue keeps distinct grey levels up to
        ~3 windows beyond the knee, about 2 in line integral on the AP: 2, 5 and 10 mm of undiluted contrast over
        the paraspinal muscle at ~41, ~13 and ~7 grey levels from black; the last ten levels are the edge
        enhancement's soft limit (:data:`_END_MARGIN`), which keeps what lies beyond them close together].
    toe : float
        Grey level (fraction of the scale, before the polarity) below which the display rolls off towards air
        instead of clipping at the window's bottom (:func:`toed`): the window holds the central field's body
        (:data:`_WINDOW_PERCENTILES`), and the thinner tissue beyond it, a lateral's back and its posterior
        elements, an oblique's flank, burned out as white as air (issue 16: "nothing inside the body may be
        air-white"). Below the toe the grey falls ever more slowly with the line integral and reaches white only
        at air's, 0 [ED 0.2: the thinnest fifth of the anatomy's grey scale; the film's toe to the shoulder's
        knee]. 0: a hard clip.
    toe_reach : float
        The toe's reach, in windows (:func:`toed`) [ED 1: the back's soft tissue a window thinner than the
        window's bottom keeps a third of the toe's grey].
    lateral_thin_end : float
        The share of the body's thin end that a lateral view (:func:`is_lateral`) lifts into the window
        (:func:`thin_end_lift`), after the window and tone curve are metered, so the central field's median and the
        dense end stay put: a lateral's back comes up out of the toe with its spinous processes' step whole, as a
        C-arm's anatomical programme sets its image processing per view (0: none) [ED 1.0]. The edge-aware
        harmonisation (:attr:`harmonisation_range`) compresses a smooth change of thickness no more than a step, the
        same share everywhere, which the automatic window then spreads out again, so the lateral's back, far thinner
        than the bodies, sat in the toe: a process and the gap below it at 209 and 218 grey on L3, 218 and 219 on L4
        (stop 26's blind read: "the lateral's back 40 % blank white"; built-in patient, 1 mm, 512 px, noiseless). Their
        line integrals differ by 0.22 and 0.12, as a real process's do: 6-8 mm thick with a 1-1.5 mm cortex over a
        300-450 HU core (clinical.md §4.7, §5.4), its cortices add 0.06-0.09 and its core 0.02-0.05 at 70 keV
        (clinical.md §5.2), more where the ray runs along its cortex. The toe's knee at 0.1 instead of 0.2 gave only
        16 and 8 grey levels. Lifted whole on the envelope they are 148 against 174 and 179 against 200, the lateral's
        central median 124 as before (the AP's 121 untouched); the 2 mm patient's steps 28 and 16 grey levels
        (tests/simulator/test_lateral_back.py), at 0.6 24 and 10. Not on the AP and obliques: a Gaussian of the
        whole image showed the tissue beside a vertebral body and over the iliac crests lighter than farther off, the
        halos that tests/simulator/test_fluoro_tone.py guards, and lifted on the envelope their thin flanks still broke
        its guards of the disc against the tissue beside it and of the tissue over the crests. The thin end's bone is
        shown steeper as well (:data:`_THIN_END_DETAIL_GAIN`): lifted alone, the processes were still "pale,
        translucent ovals" (stop 27's blind read; tests/simulator/test_lateral_back.py).
    field_edge_mm : float
        Width of the soft roll-off of the exposed field's edge at the detector plane, mm: the image
        intensifier's circular field (and the collimator's shadow) reaches the monitor through the
        intensifier's electron optics and the TV camera, which blur its edge over a few pixels, not the
        one-pixel cut of a digital mask (issue 16: "a crisp field edge"). The brightness is multiplied by
        ``1 - exp(-(d / w)^2)`` at the distance ``d`` inside the edge [ED 0.7: 1.6 px at 512 px over
        230 mm; half brightness 1.3 px inside the edge, full 3-4 px inside]. 0: a hard edge.
    letters : bool
        Burn orientation letters (patient directions at the screen edges) and the angles in.
    """

    polarity: Polarity = DEFAULT_POLARITY
    window: tuple[float, float] | None = None
    equalisation: float = 0.3
    harmonisation: float = 0.3
    harmonisation_radius_mm: float = 20.0
    harmonisation_range: float = 0.08
    gamma: float = 1.0
    edge_enhancement: float = 0.6
    edge_radius_mm: float = 2.0
    edge_coring: float = 0.01
    edge_limit: float = 0.03
    noise_reduction: float = 3.0
    noise_reduction_strength: float = 1.0
    noise_reduction_sigma_px: float = 0.8
    shoulder: float = 0.75
    shoulder_reach: float = 1.0
    toe: float = 0.2
    toe_reach: float = 1.0
    lateral_thin_end: float = 1.0
    field_edge_mm: float = 0.7
    letters: bool = True

    def __post_init__(self) -> None:
        if self.polarity not in POLARITIES:
            raise SpinesimError(f"unknown display polarity {self.polarity!r}", hint="use bone_black or bone_white")
        if self.window is not None:
            low, high = (float(x) for x in self.window)
            if not (np.isfinite(low) and np.isfinite(high) and high > low):
                raise SpinesimError(f"display window must be (low, high) with high > low, got {self.window!r}")
            object.__setattr__(self, "window", (low, high))
        if not (np.isfinite(self.equalisation) and 0.0 <= self.equalisation <= 1.0):
            raise SpinesimError(f"display equalisation must be in [0, 1], got {self.equalisation!r}")
        if not (np.isfinite(self.harmonisation) and 0.0 <= self.harmonisation < 1.0):
            raise SpinesimError(f"display harmonisation must be in [0, 1), got {self.harmonisation!r}")
        if not (np.isfinite(self.harmonisation_radius_mm) and 2.0 <= self.harmonisation_radius_mm <= 200.0):
            raise SpinesimError(f"harmonisation radius must be 2-200 mm, got {self.harmonisation_radius_mm!r}")
        if not (np.isfinite(self.harmonisation_range) and 0.01 <= self.harmonisation_range <= 10.0):
            raise SpinesimError(f"harmonisation range must be 0.01-10 line-integral units, got {self.harmonisation_range!r}",
                                hint="a few tenths: steps larger than it are compressed without a halo")
        if not (np.isfinite(self.gamma) and 0.2 <= self.gamma <= 5.0):
            raise SpinesimError(f"display gamma must be 0.2-5, got {self.gamma!r}")
        if not (np.isfinite(self.edge_enhancement) and 0.0 <= self.edge_enhancement <= 5.0):
            raise SpinesimError(f"edge enhancement must be 0-5, got {self.edge_enhancement!r}")
        if not (np.isfinite(self.edge_radius_mm) and 0.0 < self.edge_radius_mm <= 50.0):
            raise SpinesimError(f"edge-enhancement radius must be in (0, 50] mm, got {self.edge_radius_mm!r}")
        if not (np.isfinite(self.edge_coring) and 0.0 <= self.edge_coring <= 0.5):
            raise SpinesimError(f"edge-enhancement coring must be 0-0.5 of the grey scale, got {self.edge_coring!r}")
        if not (np.isfinite(self.edge_limit) and 0.0 <= self.edge_limit <= 1.0):
            raise SpinesimError(f"edge-enhancement limit must be 0-1 of the grey scale (0: none), got {self.edge_limit!r}")
        if not (np.isfinite(self.noise_reduction) and 0.0 <= self.noise_reduction <= 10.0):
            raise SpinesimError(f"display noise reduction must be 0-10 noise standard deviations, "
                                f"got {self.noise_reduction!r}")
        if not (np.isfinite(self.noise_reduction_strength) and 0.0 <= self.noise_reduction_strength <= 1.0):
            raise SpinesimError(f"noise-reduction strength must be 0-1, got {self.noise_reduction_strength!r}")
        if not (np.isfinite(self.noise_reduction_sigma_px) and 0.0 <= self.noise_reduction_sigma_px <= 4.0):
            raise SpinesimError(f"noise-reduction radius must be 0-4 pixels, got {self.noise_reduction_sigma_px!r}")
        if not (np.isfinite(self.shoulder) and 0.5 <= self.shoulder <= 1.0):
            raise SpinesimError(f"display shoulder must be 0.5-1 of the grey scale (1: a hard clip), got {self.shoulder!r}")
        if not (np.isfinite(self.shoulder_reach) and 0.05 <= self.shoulder_reach <= 5.0):
            raise SpinesimError(f"display shoulder reach must be 0.05-5 windows, got {self.shoulder_reach!r}")
        if not (np.isfinite(self.toe) and 0.0 <= self.toe <= 0.5):
            raise SpinesimError(f"display toe must be 0-0.5 of the grey scale (0: a hard clip), got {self.toe!r}")
        if not (np.isfinite(self.toe_reach) and 0.05 <= self.toe_reach <= 5.0):
            raise SpinesimError(f"display toe reach must be 0.05-5 windows, got {self.toe_reach!r}")
        if not (np.isfinite(self.lateral_thin_end) and 0.0 <= self.lateral_thin_end <= 1.0):
            raise SpinesimError(f"the lateral's thin-end lift must be 0-1, got {self.lateral_thin_end!r}")
        if not (np.isfinite(self.field_edge_mm) and 0.0 <= self.field_edge_mm <= 20.0):
            raise SpinesimError(f"field edge roll-off must be 0-20 mm, got {self.field_edge_mm!r}")

    @classmethod
    def level_width(cls, level: float, width: float, **changes: object) -> Display:
        """A display with the window centred on ``level`` and ``width`` wide (line-integral units), as a
        monitor's level and width knobs set it.

        >>> Display.level_width(5.0, 2.0).window
        (4.0, 6.0)
        """
        if not (np.isfinite(width) and width > 0):
            raise SpinesimError(f"display window width must be positive, got {width!r}")
        return cls(window=(level - width / 2.0, level + width / 2.0), **changes)


@dataclass(frozen=True, eq=False)
class FluoroImage:
    """One fluoroscopy frame.

    Attributes
    ----------
    pixels : numpy.ndarray, uint8 (rows, columns)
        What the monitor shows (orientation letters burned in).
    line_integrals : numpy.ndarray, float32 (rows, columns)
        Noiseless attenuation line integral ``p`` (anatomy + contrast + needle), dimensionless.
    measured : numpy.ndarray, float32 (rows, columns)
        The noisy, blurred measurement ``-ln(counts / N0)`` (after subtraction for DSA); 0 outside
        the exposed field.
    field : numpy.ndarray, bool (rows, columns)
        Where X-rays reach the detector.
    carm : CArm
        The pose; ``carm.projection_matrix`` maps LPS points to these pixels.
    exposure : Exposure or None
        Dose of this frame (None for a noiseless render).
    seed : int
        Seed of the quantum noise.
    window : (float, float)
        Range of the harmonised line integral (``measured`` minus the display's share of the
        anatomy's large-scale image, see :class:`Display`) shown black..white (bone_white polarity).
    subtracted : bool
        True for a DSA frame.
    """

    pixels: np.ndarray
    line_integrals: np.ndarray
    measured: np.ndarray
    field: np.ndarray
    carm: CArm
    exposure: Exposure | None
    seed: int
    window: tuple[float, float]
    subtracted: bool = False
    metadata: dict = field(default_factory=dict)

    @property
    def projection_matrix(self) -> np.ndarray:
        return self.carm.projection_matrix

    def save_png(self, path: str | Path) -> Path:
        """Write the displayed pixels as an 8-bit greyscale PNG (atomically)."""
        path = Path(path)
        with atomic_path(path) as temporary:
            Image.fromarray(self.pixels).save(temporary, format="PNG")
        return path


# --------------------------------------------------------------------------- caches
@dataclass(frozen=True)
class _FrameFacts:
    transmission: float  # median detector signal / open beam's (primary and scatter behind the grid): the AEC's
    window: tuple[float, float]  # automatic display window, harmonised line-integral units
    background: np.ndarray | None  # what harmonisation subtracts (line-integral units), None for none
    tone: np.ndarray | None  # grey (0-1) at _TONE_KNOTS evenly spaced points of the window, None for linear
    scatter: np.ndarray | None  # scatter without grid relative to the open beam (scatter.scatter_image), None for none
    scatter_to_primary: float  # median SPR behind the grid where the AEC measures (0 without scatter)
    exposed: np.ndarray  # the anatomy's input image before noise (exposed_input): a frame recomputes only its changes


def _measuring_region(anatomy_frame: np.ndarray, field_mask: np.ndarray,
                      radius: float = _MEASURING_RADIUS) -> np.ndarray:
    """The body inside the central disc of ``radius`` (fraction of the detector width) where a C-arm's AEC
    (:data:`_MEASURING_RADIUS`) and automatic window (:data:`_WINDOW_RADIUS`) measure, less what burns out there
    (:func:`~simulator.imaging.dose.metered_body`) (bool); the whole body when the disc holds less than 16 of its
    pixels."""
    n = anatomy_frame.shape[0]
    coordinate = (np.arange(n) - (n - 1) / 2.0) / n
    central = np.hypot(coordinate[None, :], coordinate[:, None]) <= radius
    body = field_mask & (anatomy_frame > _BODY_THRESHOLD)
    if np.count_nonzero(central & body) < 16:
        return body
    region = central & body
    region[region] = metered_body(anatomy_frame[region])
    return region


def large_scale_image(measured: np.ndarray, field_mask: np.ndarray, sigma_pixels: float,
                      range_sigma: float) -> np.ndarray:
    """The large-scale image of ``measured`` (float32) over the exposed field only: at each pixel the Gaussian mean
    (``sigma_pixels``) of its neighbours weighted by how close their values are to its own (a Gaussian of
    ``range_sigma``, line-integral units), a bilateral filter, computed on a bilateral grid (Chen, Paris & Durand,
    "Real-time edge-aware image processing with the bilateral grid", ACM Trans. Graph. 26(3):103, 2007: the image
    splatted into cells of ``sigma_pixels / 4`` pixels by ``range_sigma`` of value, blurred there, read back by
    trilinear interpolation at each pixel's own place and value). Edge-aware so that the dynamic range compression
    that subtracts it leaves no halo (Durand & Dorsey, "Fast bilateral filtering for the display of
    high-dynamic-range images", ACM Trans. Graph. 21(3):257-266, 2002): a plain Gaussian blur took the dense
    vertebral bodies into a disc's large-scale image, which then showed the disc lighter than tissue crossed by as
    much beside the spine (:attr:`Display.harmonisation_range`). Outside the field nothing of the black surround is
    repeated, so harmonisation leaves no bright ring at the collimator's edge.

    Examples
    --------
    A uniform field stays uniform up to its edge (a plain blur would darken its rim):

    >>> field = np.ones((32, 32), bool); field[:, :8] = False
    >>> flat = np.where(field, 2.0, 0.0).astype(np.float32)
    >>> np.allclose(large_scale_image(flat, field, 10.0, 0.2)[field], 2.0, atol=1e-4)
    True

    A step many ``range_sigma`` high stays in it, on both sides up to the edge (a plain blur of 10 px would put
    the step's mean, 2.5, at its edge):

    >>> step = np.where(np.arange(64)[None, :] < 32, 2.0, 3.0).repeat(64, axis=0).astype(np.float32)
    >>> large = large_scale_image(step, np.ones((64, 64), bool), 10.0, 0.1)
    >>> round(float(large[32, 31]), 3), round(float(large[32, 32]), 3)
    (2.0, 3.0)
    """
    n_rows, n_columns = measured.shape
    cell = max(1.0, sigma_pixels / 4.0)
    inside = np.ascontiguousarray(field_mask, dtype=bool)
    measured = np.ascontiguousarray(measured, dtype=np.float32)
    if not inside.any():
        return measured.copy()
    bottom = float(measured.min(where=inside, initial=np.inf))
    levels = int((float(measured.max(where=inside, initial=-np.inf)) - bottom) / range_sigma) + 2
    shape = (int(n_rows / cell) + 1, int(n_columns / cell) + 1, levels + 1)
    shares = np.zeros((2, 2, shape[0] * shape[1] * shape[2]))
    _splat_on_grid(measured, inside, cell, bottom, float(range_sigma), shape[1], shape[2], shares)
    blur = (sigma_pixels / cell, sigma_pixels / cell, 1.0)
    sums, counts = (ndimage.gaussian_filter((lower + upper).reshape(shape), blur, mode="constant", truncate=3.0)
                    for lower, upper in shares)
    large = measured.copy()
    _read_grid(sums, counts, measured, inside, cell, bottom, float(range_sigma), large)
    return large


@njit(cache=True, nogil=True)
def _splat_on_grid(measured, inside, cell, bottom, range_sigma, columns, levels, shares):  # pragma: no cover - compiled
    """:func:`large_scale_image`'s splat: into ``shares`` ((2 sums and counts, 2 shares, cells) float64, zeroed) each
    pixel of ``inside``, its value and its weight 1 in the cell of ``cell`` pixels it lies in, shared between the two
    levels of ``range_sigma`` beside its value (above ``bottom``), the lower level's share apart from the upper's."""
    column_cells = np.empty(measured.shape[1], np.int64)
    for c in range(measured.shape[1]):
        column_cells[c] = int(c // cell)
    for r in range(measured.shape[0]):
        row_cell = int(r // cell)
        for c in range(measured.shape[1]):
            if not inside[r, c]:
                continue
            value = np.float64(measured[r, c])
            level = (value - bottom) / range_sigma
            lower = math.floor(level)
            upper_share = level - lower
            place = (row_cell * columns + column_cells[c]) * levels + int(lower)
            shares[0, 0, place] += (1.0 - upper_share) * value
            shares[1, 0, place] += 1.0 - upper_share
            shares[0, 1, place + 1] += upper_share * value
            shares[1, 1, place + 1] += upper_share


@njit(inline="always")
def _linear_weights(at, size):  # pragma: no cover - compiled
    """The first node, the next one and the first's weight of a linear interpolation at ``at`` on ``size`` nodes,
    held at the end nodes beyond them (``scipy.ndimage``'s ``mode="nearest"``, and its weights' arithmetic)."""
    at = min(max(at, 0.0), size - 1.0)
    first = math.floor(at)
    weight = 1.0 - (at - first)
    return int(first), min(int(first) + 1, size - 1), weight


@njit(cache=True, nogil=True)
def _read_grid(sums, counts, measured, inside, cell, bottom, range_sigma, out):  # pragma: no cover - compiled
    """:func:`large_scale_image`'s read-back: into ``out`` at each pixel of ``inside``, the blurred ``sums`` over the
    blurred ``counts``, each interpolated trilinearly at the pixel's place and level, as
    ``scipy.ndimage.map_coordinates(order=1, mode="nearest")`` does (corner by corner, the last axis fastest; its
    image bit for bit, a sixth of its CPU). The sums and the counts are read back apart and divided: a cell the field
    barely reaches weighs as its pixels do."""
    n_rows, n_columns, n_levels = sums.shape
    columns = np.empty((measured.shape[1], 2), np.int64)
    column_weights = np.empty(measured.shape[1])
    for c in range(measured.shape[1]):
        columns[c, 0], columns[c, 1], column_weights[c] = _linear_weights((c + 0.5) / cell - 0.5, n_columns)
    for r in range(measured.shape[0]):
        row, next_row, row_weight = _linear_weights((r + 0.5) / cell - 0.5, n_rows)
        for c in range(measured.shape[1]):
            if not inside[r, c]:
                continue
            column, next_column, column_weight = columns[c, 0], columns[c, 1], column_weights[c]
            level, next_level, level_weight = _linear_weights((np.float64(measured[r, c]) - bottom) / range_sigma,
                                                              n_levels)
            total = 0.0
            weight = 0.0
            for i, wi in ((row, row_weight), (next_row, 1.0 - row_weight)):
                for j, wj in ((column, column_weight), (next_column, 1.0 - column_weight)):
                    for k, wk in ((level, level_weight), (next_level, 1.0 - level_weight)):
                        total += sums[i, j, k] * wi * wj * wk
                        weight += counts[i, j, k] * wi * wj * wk
            out[r, c] = total / max(weight, 1e-12)


def _frame_facts(anatomy_frame: np.ndarray, field_mask: np.ndarray, noiseless: np.ndarray, display: Display,
                 pixel_size_mm: float, detector: DetectorModel, scatter: np.ndarray | None,
                 exposed: np.ndarray, thin_end: float = 0.0, bone: np.ndarray | None = None) -> _FrameFacts:
    """Exposure control, harmonisation and automatic window, measured like a C-arm's in the central region.

    ``noiseless`` is the anatomy's noiseless measurement (blurred, with scatter): the
    window spans what the display shows of it, so the needle and contrast, added later, neither move
    the window nor the harmonisation. ``exposed`` (:func:`exposed_input` of the anatomy) is kept as is. ``thin_end``
    is the share of the body's thin end lifted into the window (:func:`thin_end_lift`), 0 for none; ``bone`` the bone's
    share of ``anatomy_frame`` (:func:`bone_share`), needed when ``thin_end`` is not 0.
    """
    region = _measuring_region(anatomy_frame, field_mask)
    if not region.any():
        return _FrameFacts(1.0, (0.0, 1.0), None, None, scatter, 0.0, exposed)
    primary = np.exp(-anatomy_frame[region])
    grid = detector.grid
    scattered = scatter[region] if scatter is not None else np.zeros_like(primary)
    transmission = float(np.median(grid.primary_transmission * primary + grid.scatter_transmission * scattered))
    spr = float(np.median(grid.scatter_transmission * scattered / (grid.primary_transmission * primary)))
    background = None
    body = field_mask & (anatomy_frame > _BODY_THRESHOLD)
    windowed = _measuring_region(anatomy_frame, field_mask, _WINDOW_RADIUS)
    if display.harmonisation > 0:
        # Over the body alone: air beside it stays unattenuated white, as the beam burns it out.
        large = large_scale_image(noiseless, body, display.harmonisation_radius_mm / pixel_size_mm,
                                  display.harmonisation_range)
        reference = np.float32(np.median(large[region]))
        background = np.float32(display.harmonisation) * (large - reference)
        background[~body] = 0.0
        shown = noiseless[windowed] - background[windowed]
        # The window and tone curve are metered from the anatomy before the thin end is lifted into it, so the central
        # field's median and the dense end stay where they were (the lateral's back moves, not its bodies).
        if thin_end > 0:
            background += np.float32(thin_end) * thin_end_lift(noiseless, bone, body, region, pixel_size_mm)
        background.setflags(write=False)
    else:
        shown = noiseless[windowed]
    low, high, median = np.percentile(shown, (*_WINDOW_PERCENTILES, 50.0))
    low -= _WINDOW_LOW_MARGIN * max(high - low, 1e-3)
    # The automatic brightness control holds the central field's median at _MEDIAN_GREY: a dense view (a steep
    # contralateral oblique) is shown as bright as a thin one, its densest bone slid past the window's top into the
    # display's shoulder instead of its whole spine into it.
    shift = (median - low) - _MEDIAN_GREY * (high - low)
    if shift > 0:
        low, high = low + shift, high + shift
    return _FrameFacts(min(transmission, 1.0), (float(low), float(high)), background,
                       tone_curve(shown, (low, high), display.equalisation), scatter, spr, exposed)


def is_lateral(carm: CArm) -> bool:
    """Whether ``carm`` looks from the side, within :data:`_LATERAL_WITHIN_DEG` of a true lateral (LAO or RAO 90): the
    views the display's lateral program (:attr:`Display.lateral_thin_end`) is for.

    >>> is_lateral(CArm(primary_deg=90.0)), is_lateral(CArm(primary_deg=-80.0)), is_lateral(CArm(primary_deg=50.0))
    (True, True, False)
    """
    return abs(abs(carm.primary_deg) - 90.0) <= _LATERAL_WITHIN_DEG


def thin_end_lift(measured: np.ndarray, bone: np.ndarray, body: np.ndarray, region: np.ndarray,
                  pixel_size_mm: float) -> np.ndarray:
    """What the display subtracts (float32, line-integral units, 0 outside ``body``) to lift the body's thin end into
    the window (to be scaled by the share lifted, :attr:`Display.lateral_thin_end`): how far the body's soft-tissue
    envelope lies below its :data:`_THIN_END_PERCENTILE`-th percentile in ``region`` (the central field), nothing where
    it lies above it. The envelope is the body's image with its bones
    rolled away, a grey-scale opening by a square of :data:`_THIN_END_OPENING_MM` (Sternberg, "Biomedical image
    processing", Computer 16(1):22-34, 1983: the rolling-ball background), smoothed by a Gaussian of :data:`_THIN_END_RADIUS_MM`
    over the body alone: a bone narrower than the square is lifted with the tissue round it and keeps its step, and
    no bone raises the envelope of the tissue beside it, which would show that tissue lighter (a halo). A one-sided
    dynamic range compression (the large-kernel band of Prokop & Schaefer-Prokop 1997, :attr:`Display.edge_enhancement`):
    the thick side keeps the window it was metered on, the thin side (a lateral's back, a flank) is brought up from
    the display's toe with its detail whole. There a bone narrower than the square is shown steeper too, up to a cap
    (:data:`_THIN_END_DETAIL_GAIN`), as a C-arm's multiscale processing amplifies faint detail most (Vuylsteke &
    Schoeters 1994, :attr:`Display.edge_limit`): a spinous process adds a few per cent of the lateral's window. What
    is steepened is the bone's alone: what rises above the envelope, no more than ``bone`` (the bone's share of the
    line integral, :func:`bone_share`) rises above its own (the soft tissue's share of ``bone`` is a few per cent of
    its line integral): the back's soft tissue, whose thickness falls steeply to the skin, also rises above an
    opening, and steepened with the bone it was shown darker than the foramen beside it.

    Examples
    --------
    A body thinner on its left half than the centre (4 mm pixels) is lifted there by nearly the whole difference, the
    thick right half not at all; a narrow bar of bone on the thin half (the opening rolls it away) is lifted alike and
    shown steeper, a faint one (0.1 above the tissue) by 0.19 more, nearly three times its step, a dense one (2.0) by
    the cap's 0.3; a bar as faint of soft tissue (its bone share a few per cent of it) is lifted and not steepened:

    >>> body = np.ones((128, 128), bool)
    >>> step = np.where(np.arange(128)[None, :] < 64, 4.0, 5.0).repeat(128, axis=0).astype(np.float32)
    >>> bone = 0.03 * step
    >>> for columns, added, share in ((slice(10, 14), 0.1, 1.0), (slice(20, 24), 2.0, 1.0), (slice(30, 34), 0.1, 0.03)):
    ...     step[:, columns] += added
    ...     bone[:, columns] += share * added
    >>> centre = np.zeros((128, 128), bool); centre[:, 80:] = True
    >>> lift = thin_end_lift(step, bone, body, centre, 4.0)
    >>> [round(float(lift[64, column]), 2) for column in (4, 12, 22, 32, 120)]
    [-0.97, -1.16, -1.27, -0.98, 0.0]
    """
    n = measured.shape[0]
    coarse, cell = _cell_means(np.asarray(measured, np.float64), 4)
    coarse_body = _cell_means(body.astype(np.float32), cell)[0] > 0
    if not coarse_body.any():
        return np.zeros(measured.shape, np.float32)
    size = max(1, int(round(_THIN_END_OPENING_MM / (pixel_size_mm * cell))))

    def opened(image: np.ndarray) -> np.ndarray:  # the coarse image with what is narrower than the square rolled away
        # Outside the body the opening must take nothing: air there would pull the tissue's envelope to zero.
        image = np.where(coarse_body, image, float(image[coarse_body].max()))
        return ndimage.grey_opening(image, size=(size, size), mode="nearest")

    envelope = opened(coarse)
    sigma = _THIN_END_RADIUS_MM / (pixel_size_mm * cell)
    weight = np.maximum(ndimage.gaussian_filter(coarse_body.astype(np.float64), sigma, mode="constant"), 1e-3)
    taps = _upsampling_taps(n, cell)

    def fine(image: np.ndarray) -> np.ndarray:
        return _upsample_linear(np.ascontiguousarray(image, dtype=np.float32), *taps)

    def wide_mean(image: np.ndarray) -> np.ndarray:  # the Gaussian mean over the body alone, on every pixel
        return fine(ndimage.gaussian_filter(np.where(coarse_body, image, 0.0), sigma, mode="constant") / weight)

    wide = wide_mean(envelope)
    lift = np.minimum(wide - np.float32(np.percentile(wide[region], _THIN_END_PERCENTILE)), np.float32(0.0))
    # What a bone narrower than the opening adds to the line integral where it lies, shown the steeper the thinner the
    # body round it (its wide mean, bones and all, so that a vertebral body keeps its grey): each share of the thin
    # end's gain gives at most _THIN_END_DETAIL_REACH more.
    coarse_bone = _cell_means(np.asarray(bone, np.float64), cell)[0]
    bone = np.maximum(np.minimum(measured - fine(envelope), bone - fine(opened(coarse_bone))), np.float32(0.0))
    local = wide_mean(coarse)
    thin = np.clip((np.float32(np.percentile(local[region], _THIN_END_PERCENTILE)) - local)
                   * np.float32(1.0 / _THIN_END_DEPTH), 0.0, 1.0)
    reach = np.float32(_THIN_END_DETAIL_REACH)
    lift += np.float32(_THIN_END_DETAIL_GAIN - 1.0) * reach * thin * np.expm1(-bone / reach)
    lift[~body] = 0.0
    return lift


def tone_curve(values: np.ndarray, window: tuple[float, float], equalisation: float) -> np.ndarray | None:
    """Grey levels (0-1, float32) at :data:`_TONE_KNOTS` evenly spaced points of ``window``: the linear
    ramp blended with the contrast-limited cumulative histogram of ``values`` (weight ``equalisation``):
    the histogram's density, relative to its mean over the window, is clipped at
    :data:`_EQUALISATION_CLIP` and what it loses is spread evenly over the window (Pizer et al.,
    "Adaptive histogram equalization and its variations", Comput. Vis. Graph. Image Process. 39:355,
    1987), so the curve's slope stays within a few times the linear ramp's everywhere and no part of the
    window is flattened. Non-decreasing by construction; None when ``equalisation`` is 0 (the plain
    linear window).

    Examples
    --------
    >>> curve = tone_curve(np.array([0.0, 0.1, 0.2, 0.9, 1.0]), (0.0, 1.0), 0.5)
    >>> bool(np.all(np.diff(curve) >= 0)), float(curve[0]), float(curve[-1])
    (True, 0.0, 1.0)

    All the values in one place: the curve is steepest there, ``1 + equalisation * clip`` times the linear
    ramp, and nearly linear elsewhere (a plain equalisation: ``1 + equalisation * 255`` there, flat elsewhere):

    >>> slope = np.diff(tone_curve(np.full(100, 0.5), (0.0, 1.0), 0.3)) * (_TONE_KNOTS - 1)
    >>> round(float(slope.max()), 2), round(float(slope.min()), 2)
    (1.6, 1.0)
    """
    if equalisation <= 0:
        return None
    low, high = window
    inside = np.asarray(values, dtype=np.float64).ravel()
    inside = inside[(inside >= low) & (inside <= high)]
    density, _ = np.histogram(inside, bins=_TONE_KNOTS - 1, range=(low, high))
    density = density / max(float(density.mean()), 1e-12)
    clipped = np.minimum(density, _EQUALISATION_CLIP)
    clipped += 1.0 - clipped.mean()  # the clipped excess, spread evenly
    cumulative = np.concatenate([[0.0], np.cumsum(clipped)])
    cumulative /= cumulative[-1]
    curve = ((1.0 - equalisation) * np.linspace(0.0, 1.0, _TONE_KNOTS) + equalisation * cumulative).astype(np.float32)
    curve.setflags(write=False)
    return curve


def _scatter_for(anatomy_frame: np.ndarray, field_mask: np.ndarray, carm: CArm, thickness_mm: np.ndarray) -> np.ndarray:
    """The anatomy's scatter (no grid, relative to the open beam) for ``carm``: the exit surface is
    taken half the median water-equivalent thickness beyond the isocentre."""
    body = field_mask & (anatomy_frame > _BODY_THRESHOLD)
    typical_mm = float(np.median(thickness_mm[body])) if body.any() else 0.0
    geometry = ScatterGeometry(carm.source_to_isocenter_mm + typical_mm / 2.0, carm.source_to_detector_mm)
    scatter = scatter_image(np.exp(-anatomy_frame), thickness_mm, field_mask, carm.pixel_size_mm, geometry)
    scatter.setflags(write=False)
    return scatter


def _cached_facts(anatomy: Anatomy, carm: CArm, anatomy_frame: np.ndarray, field_mask: np.ndarray,
                  display: Display, detector: DetectorModel, method: str, spectrum: Beam | None,
                  kev: float | None, cell: int) -> _FrameFacts:
    """The :class:`_FrameFacts` of ``anatomy_frame``, the anatomy's detected line integrals for (``carm``,
    ``method``, the beam: ``spectrum``, or one energy ``kev``, and the projection's ``cell``), kept by
    the anatomy for the last :data:`_FACTS_PER_ANATOMY` settings.

    The key names what made the frame (beam and pose, as the DRR cache does) rather than the frame
    array, so that no key can outlive the data it stands for.
    """
    beam_key = ("kev", kev) if spectrum is None else ("spectrum", spectrum.kvp, spectrum.filtration_mm_al)
    key = (beam_key, pose_key(carm, method), cell, carm.collimation, carm.detector_shape, detector,
           display.harmonisation, display.harmonisation_radius_mm, display.harmonisation_range, display.equalisation,
           display.lateral_thin_end)

    def compute() -> _FrameFacts:
        scatter = None
        if detector.scatter:
            if spectrum is None:
                thickness = anatomy_frame / np.float32(linear_attenuation_per_mm("water", kev))
            else:
                thickness = water_equivalent_mm(spectrum, anatomy_frame)
            scatter = _scatter_for(anatomy_frame, field_mask, carm, thickness)
        exposed = exposed_input(anatomy_frame, detector=detector, carm=carm, scatter=scatter)
        exposed.setflags(write=False)
        noiseless = camera_log(measure(anatomy_frame, field_mask, None, seed=0, detector=detector, carm=carm,
                                       exposed=exposed), field_mask, carm, detector)
        if not (is_lateral(carm) and display.lateral_thin_end > 0):
            return _frame_facts(anatomy_frame, field_mask, noiseless, display, carm.pixel_size_mm, detector, scatter,
                                exposed)
        # The bone's share in the field alone, as the frame is: the projector skips the square's unexposed corners.
        bone = np.where(field_mask, bone_share(anatomy, carm, method, spectrum, kev, cell), np.float32(0.0))
        return _frame_facts(anatomy_frame, field_mask, noiseless, display, carm.pixel_size_mm, detector, scatter,
                            exposed, display.lateral_thin_end, bone)

    return anatomy.derived.recent("fluoro.facts", key, compute, keep=_FACTS_PER_ANATOMY)


def bone_share(anatomy: Anatomy, carm: CArm, method: str, spectrum: Beam | None, kev: float | None,
               cell: int) -> np.ndarray:
    """The bone's share of the anatomy's line integral for ``carm`` (float32, line-integral units, 0 where a ray
    crosses soft tissue alone), as :func:`needle_share` is the steel's: the detected line integral of its water and
    bone path lengths (:func:`projected_on_cells`) less that of the same path with no more bone than muscle holds for
    its water. The CT's two-material basis counts soft tissue above 0 HU as part bone
    (:func:`anatomy_models.tissues.hu_to_basis`: muscle's 40 HU, 2.6 % cortical bone for 97.4 % water), which across a
    lateral's 300 mm of trunk is 0.3 of its line integral, more than a spinous process adds.

    Examples
    --------
    A ray through 300 mm of muscle has no bone's share, one through 8 mm of a 600 HU process more as well has its 2.9
    mm of cortical bone beyond the muscle's share (8 x (0.376 - 0.026 x 0.624)) at the single energy's 0.060 /mm:

    >>> from anatomy_models.tissues import hu_to_basis
    >>> paths = [np.float32(300.0) * np.array(hu_to_basis(40.0))]
    >>> paths.append(paths[0] + np.float32(8.0) * np.array(hu_to_basis(600.0)))
    >>> water, bone = (np.array([[path[material] for path in paths]]) for material in (0, 1))
    >>> share = _bone_share_of(water.astype(np.float32), bone.astype(np.float32), FLUORO_EFFECTIVE_KEV)
    >>> [round(float(x), 3) for x in share[0]]
    [0.0, 0.174]
    """
    water, bone = projected_on_cells(anatomy, carm, method, cell)
    return _bone_share_of(water, bone, spectrum if spectrum is not None else kev)


def _bone_share_of(water: np.ndarray, bone: np.ndarray, beam_or_kev: Beam | float) -> np.ndarray:
    """:func:`bone_share` of water and bone path lengths (mm) for a beam or one energy (keV)."""
    muscle_water, muscle_bone = hu_to_basis(tissue("muscle").hu)
    soft = np.minimum(bone, water * np.float32(muscle_bone / muscle_water))
    if isinstance(beam_or_kev, Beam):
        return detected_water_bone(beam_or_kev, water, bone) - detected_water_bone(beam_or_kev, water, soft)
    return (bone - soft) * np.float32(linear_attenuation_per_mm("cortical_bone", beam_or_kev))


def averaged_frames(line_integrals: list[np.ndarray]) -> np.ndarray:
    """The line integrals of the mean transmission of several frames (float32): ``-ln(mean_k exp(-p_k))``,
    where they differ (a live recursive filter averages what the detector saw, frame by frame); the first
    frame's values elsewhere. A needle that stood in one of four frames shows at a quarter of its
    transmission loss.

    >>> frames = [np.array([0.0, 2.0], np.float32), np.array([0.0, 0.0], np.float32)]
    >>> [round(float(x), 4) for x in averaged_frames(frames)]
    [0.0, 0.5662]
    """
    first = line_integrals[0]
    changed = np.zeros(first.shape, dtype=bool)
    for other in line_integrals[1:]:
        changed |= other != first
    out = first.copy()
    if changed.any():
        transmitted = np.mean([np.exp(-frame[changed].astype(np.float64)) for frame in line_integrals], axis=0)
        out[changed] = -np.log(transmitted)
    return out


def contrast_line_integrals(contrast: Volume, carm: CArm, *, kev: float = FLUORO_EFFECTIVE_KEV,
                            method: Method = "joseph") -> np.ndarray:
    """Attenuation line integrals of iodine given as a concentration volume (mg iodine per mL).

    ``p = iodine_mu_per_mm_per_mg_ml(kev) * integral c ds``; kept per pose by the contrast Volume
    (``contrast.derived``), so a frame with unchanged contrast costs nothing. The session makes a new
    Volume as the contrast spreads.
    """
    if not np.issubdtype(contrast.array.dtype, np.number):
        raise SpinesimError(f"contrast concentration must be numeric (mg/mL), got dtype {contrast.array.dtype}")

    def compute() -> np.ndarray:
        image = line_integrals(smooth_contrast(contrast), carm, method=method) * np.float32(iodine_mu_per_mm_per_mg_ml(kev))
        image.setflags(write=False)
        return image

    return contrast.derived(("fluoro.contrast", kev, *pose_key(carm, method)), compute)


def iodine_path(contrast: Volume, carm: CArm, *, method: Method = "joseph") -> np.ndarray:
    """Line integrals of an iodine concentration volume (mg/mL x mm, float32), kept per pose by the
    contrast Volume (``contrast.derived``): the polychromatic beam's iodine material."""
    if not np.issubdtype(contrast.array.dtype, np.number):
        raise SpinesimError(f"contrast concentration must be numeric (mg/mL), got dtype {contrast.array.dtype}")

    def compute() -> np.ndarray:
        image = line_integrals(smooth_contrast(contrast), carm, method=method)
        image.setflags(write=False)
        return image

    return contrast.derived(("fluoro.iodine_path", *pose_key(carm, method)), compute)


def smooth_contrast(contrast: Volume) -> Volume:
    """The concentration volume as it is projected: its iodine spread by a Gaussian of
    :data:`CONTRAST_EDGE_SIGMA_VOXELS` voxels on a grid padded by three of them (no iodine lost at the crop's
    faces), kept by the contrast Volume (``contrast.derived``).

    Examples
    --------
    >>> cube = Volume.from_spacing(np.pad(np.full((4, 4, 4), 100.0, np.float32), 1), (2.0, 2.0, 2.0))
    >>> smooth = smooth_contrast(cube)
    >>> smooth.shape, round(float(smooth.array.sum()) / float(cube.array.sum()), 5), float(smooth.array.max()) < 100
    ((12, 12, 12), 1.0, True)
    """
    def compute() -> Volume:
        pad = int(math.ceil(3.0 * CONTRAST_EDGE_SIGMA_VOXELS))
        padded = np.pad(np.asarray(contrast.array, dtype=np.float32), pad)
        smooth = ndimage.gaussian_filter(padded, CONTRAST_EDGE_SIGMA_VOXELS, mode="constant", truncate=3.0)
        affine = contrast.affine.copy()
        affine[:3, 3] = contrast.voxel_to_world(np.full((1, 3), -pad))[0]
        return Volume(smooth, affine)

    return contrast.derived(("fluoro.smooth_contrast",), compute)


# The concentration volume lives on the anatomy's label grid, whose compartment walls are voxel staircases: straight
# edges and square corners that injected fluid, which wets and rounds every corner, does not have. Projected as it
# was, a spread showed their "geometric outlines" (issue 16). Its iodine is spread by a Gaussian of this many voxels
# before it is projected (:func:`smooth_contrast`): sub-voxel smooth edges, the same iodine in each neighbourhood
# [ED 0.7: the staircase's steps fade on the 1 mm patient, a 2 mm column's edge still crisp].
CONTRAST_EDGE_SIGMA_VOXELS = 0.7

# The energy at which the needle's closed-form line integrals are computed before they become steel
# thickness for the polychromatic beam (each pixel averages 4 x 4 rays' transmissions at this energy,
# see drr.add_needle_line_integrals; the plastic hub is counted as the steel of equal attenuation there).
_NEEDLE_REFERENCE_KEV = FLUORO_EFFECTIVE_KEV


def projected_on_cells(anatomy: Anatomy, carm: CArm, method: str, cell: int) -> np.ndarray:
    """The anatomy's water and bone path lengths (mm, (2, rows, columns) float32, shared: do not modify)
    for ``carm``'s pixels, projected on ``cell`` x ``cell`` pixels a ray and linearly interpolated to
    every pixel: the same detector binned (its pixel centres, fewer of them), a ``cell ** 2``-th of
    the rays. Kept per pose by the anatomy; ``cell`` 1 is the DRR itself
    (:func:`simulator.imaging.drr.anatomy_basis_line_integrals`).
    """
    if cell == 1:
        return anatomy_basis_line_integrals(anatomy, carm, method=method)
    if carm.detector_pixels % cell:
        raise SpinesimError(f"a projection on cells of {cell} pixels needs a detector a multiple of {cell} "
                            f"pixels across, not {carm.detector_pixels}", hint="use live_projection_cell")

    def compute() -> np.ndarray:
        binned = anatomy_basis_line_integrals(anatomy, carm.with_(detector_pixels=carm.detector_pixels // cell),
                                              method=method)
        taps = _upsampling_taps(carm.detector_pixels, cell)
        image = np.stack([_upsample_linear(np.ascontiguousarray(path), *taps) for path in binned])
        image.setflags(write=False)
        return image

    return anatomy.derived.recent(("fluoro.on_cells", cell), pose_key(carm, method), compute, keep=_POSES_ON_CELLS)


def restored_on_cells(anatomy: Anatomy, carm: CArm, method: str, cell: int) -> np.ndarray:
    """:func:`projected_on_cells` restored (:func:`projection_restored`) of the blur that the CT's voxels and
    reconstruction kernel give its projection (:func:`ct_projection_sigma_mm`), which a real patient's does not have,
    to the focal spot's (:func:`focal_spot_sigma_mm`); as projected where that blur is under a pixel (the detector's
    own pixels are then coarser than the CT's detail). Shared: do not modify; kept per pose as the projection is.
    """
    blur_pixels = ct_projection_sigma_mm(anatomy, carm) / carm.pixel_size_mm
    if blur_pixels < 1.0:
        return projected_on_cells(anatomy, carm, method, cell)

    def compute() -> np.ndarray:
        traced = traced_field(carm.detector_pixels, carm.detector_shape)
        image = projection_restored(projected_on_cells(anatomy, carm, method, cell), blur_pixels,
                                    focal_spot_sigma_mm(carm) / carm.pixel_size_mm, nearest_traced(traced))
        image[:, ~traced] = 0.0
        image.setflags(write=False)
        return image

    return anatomy.derived.recent(("fluoro.restored", cell), pose_key(carm, method), compute, keep=_POSES_ON_CELLS)


def ct_projection_sigma_mm(anatomy: Anatomy, carm: CArm) -> float:
    """The Gaussian standard deviation (mm at the detector plane) of the blur that the anatomy's projection carries
    from its CT: the voxel ``v``'s own averaging (a partial-volume voxel, ``v^2 / 12``), the projector's linear
    interpolation between voxel centres (a triangle one voxel either side, ``v^2 / 6``) and the reconstruction
    kernel (:data:`_CT_KERNEL_FWHM_MM`), magnified to the detector at the isocentre. It predicts the measured edge:
    a bone block's edge in a 1 mm CT's line integrals (tests/simulator/test_fluoro_sharpness.py).

    >>> from anatomy_models.anatomy import Anatomy
    >>> ct = Volume.from_spacing(np.zeros((2, 2, 2), np.int16), (1.0, 1.0, 1.0))
    >>> round(ct_projection_sigma_mm(Anatomy(ct=ct), CArm()), 3)  # 0.60 mm at the isocentre, magnified 1.54 times
    0.93
    """
    voxel_mm = float(np.min(anatomy.ct.spacing))
    kernel_mm = _CT_KERNEL_FWHM_MM / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    return math.sqrt(voxel_mm ** 2 / 12.0 + voxel_mm ** 2 / 6.0 + kernel_mm ** 2) * carm.magnification


def focal_spot_sigma_mm(carm: CArm) -> float:
    """The focal spot's blur (Gaussian standard deviation, mm at the detector plane) of an object at the isocentre:
    its penumbra ``(M - 1) f`` for the magnification ``M`` and the focal spot's nominal size ``f``
    (:data:`_FOCAL_SPOT_MM`), taken as a full width at half maximum.

    >>> round(focal_spot_sigma_mm(CArm()), 3)
    0.137
    """
    return (carm.magnification - 1.0) * _FOCAL_SPOT_MM / (2.0 * math.sqrt(2.0 * math.log(2.0)))


@lru_cache(maxsize=8)
def _nearest_traced(traced_bytes: bytes, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    traced = np.frombuffer(traced_bytes, dtype=bool).reshape(shape)
    rows, columns = ndimage.distance_transform_edt(~traced, return_distances=False, return_indices=True)
    outside = ~traced
    return rows[outside].astype(np.intp), columns[outside].astype(np.intp), outside


def nearest_traced(traced: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The pixels outside ``traced`` (bool (rows, columns), the projected field,
    :func:`simulator.imaging.drr.traced_field`) and, for each, the row and column of the nearest traced pixel:
    ``(rows, columns, outside)``, kept per field; None where every pixel is traced."""
    if traced.all():
        return None
    return _nearest_traced(np.ascontiguousarray(traced).tobytes(), traced.shape)


@lru_cache(maxsize=8)
def _restoration_gain(shape: tuple[int, int], blur_pixels: float, target_pixels: float, floor: float) -> np.ndarray:
    """:func:`projection_restored`'s Wiener gain (float32) over the real Fourier transform of an image of ``shape``."""
    squared = fft.fftfreq(shape[0])[:, None] ** 2 + fft.rfftfreq(shape[1])[None, :] ** 2
    blur = np.exp(-2.0 * math.pi ** 2 * blur_pixels ** 2 * squared)
    target = np.exp(-2.0 * math.pi ** 2 * target_pixels ** 2 * squared)
    gain = (blur * target / (blur * blur + floor * floor)).astype(np.float32)
    gain.setflags(write=False)
    return gain


def projection_restored(paths: np.ndarray, blur_pixels: float, target_pixels: float,
                        nearest: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                        floor: float = _RESTORATION_FLOOR) -> np.ndarray:
    """``paths`` ((materials, rows, columns) float32 images) with a Gaussian blur of ``blur_pixels`` exchanged for
    one of ``target_pixels`` where the blurred image still holds the detail: a Wiener filter
    ``M T / (M^2 + floor^2)`` for the Gaussian transfer functions ``M`` of the blur and ``T`` of the target (Gonzalez
    & Woods, "Digital image processing", 3rd ed., 2008, section 5.8), in Fourier space over the image with a
    reflected margin. Its response ``M^2 T / (M^2 + floor^2)`` never exceeds the target's and falls smoothly where
    ``M`` falls below ``floor``, so a step over- and undershoots by a few per cent of itself, no more (tests/simulator/test_fluoro_sharpness.py). ``nearest`` (:func:`nearest_traced`)
    fills the pixels outside the projected field from the field's edge first.

    A step blurred by a Gaussian of 2 px (5.1 px from 10 to 90 % on its pixels) comes back 2.9 px wide:

    >>> x = np.arange(64, dtype=np.float32)
    >>> step = np.broadcast_to((x >= 32).astype(np.float32), (1, 64, 64))
    >>> blurred = ndimage.gaussian_filter1d(step, 2.0, axis=2, mode="nearest")
    >>> def width(row):
    ...     return float(np.interp(0.9, row, x[20:44]) - np.interp(0.1, row, x[20:44]))
    >>> round(width(blurred[0, 32, 20:44]), 1), round(width(projection_restored(blurred, 2.0, 0.3)[0, 32, 20:44]), 1)
    (5.1, 2.9)
    """
    margin = _RESTORATION_MARGIN
    paths = np.array(paths, dtype=np.float32)
    if nearest is not None:  # the untraced rim takes the nearest traced value: the field's edge is no step to ring at
        rows, columns, outside = nearest
        paths[:, outside] = paths[:, rows, columns]
    padded = np.pad(paths, ((0, 0), (margin, margin), (margin, margin)), mode="reflect")
    spectrum = fft.rfft2(padded)
    spectrum *= _restoration_gain(padded.shape[1:], round(float(blur_pixels), 4), round(float(target_pixels), 4),
                                  float(floor))
    restored = fft.irfft2(spectrum, s=padded.shape[1:])[:, margin:-margin, margin:-margin]
    return np.ascontiguousarray(restored, dtype=np.float32)


def live_projection_cell(anatomy: Anatomy, carm: CArm) -> int:
    """Detector pixels a ray across (1, 2 or 4) for a live frame of ``anatomy``: the coarsest whose rays,
    at the isocentre, are still at most :data:`_LIVE_RAY_SPACING_VOXELS` of the CT's finest voxel
    apart, so the projection keeps every detail the CT holds (its voxels reach the detector
    magnified over several pixels) at a quarter or a sixteenth of the rays. A C-arm's live mode
    is its binned, lower-resolution mode too.

    >>> from anatomy_models.anatomy import Anatomy
    >>> ct = lambda mm: Volume.from_spacing(np.zeros((2, 2, 2), np.int16), (mm, mm, mm))
    >>> [live_projection_cell(Anatomy(ct=ct(mm)), CArm()) for mm in (0.5, 1.0, 2.0)]
    [1, 2, 4]
    """
    at_isocenter_mm = carm.pixel_size_mm / carm.magnification
    voxel_mm = float(np.min(anatomy.ct.spacing))
    cells = [cell for cell in (4, 2) if carm.detector_pixels % cell == 0
             and cell * at_isocenter_mm <= _LIVE_RAY_SPACING_VOXELS * voxel_mm]
    return cells[0] if cells else 1


def detected_frame(anatomy: Anatomy, carm: CArm, spectrum: Beam, method: str, cell: int = 1) -> np.ndarray:
    """The anatomy's beam-hardened line integrals for ``spectrum`` (float32, shared: do not modify),
    kept per pose, beam and ``cell`` by the anatomy: a bilinear look-up per pixel of its water and bone
    path lengths (:func:`simulator.imaging.spectrum.detected_water_bone`, :func:`restored_on_cells`)."""
    def compute() -> np.ndarray:
        water, bone = restored_on_cells(anatomy, carm, method, cell)
        image = detected_water_bone(spectrum, water, bone)
        image.setflags(write=False)
        return image

    # One shelf for every beam and cell: a shelf per kVp and cell (11 exposure-control steps x 3 cells, each of 64
    # 1 MB frames) could hold 2 GB per patient once a session had wandered over poses (issue 23's fuzz).
    return anatomy.derived.recent("fluoro.detected", (spectrum.kvp, spectrum.filtration_mm_al, cell,
                                                      *pose_key(carm, method)), compute, keep=_FACTS_PER_ANATOMY)


def _box_round(mask: np.ndarray, pad: int) -> tuple[slice, slice]:
    """The rows and columns of ``mask``'s true pixels (at least one), grown by ``pad`` on each side within the image.

    >>> mask = np.zeros((6, 6), bool); mask[2, 3] = True
    >>> _box_round(mask, 1), _box_round(mask, 4)
    ((slice(1, 4, None), slice(2, 5, None)), (slice(0, 7, None), slice(0, 8, None)))
    """
    rows, columns = np.nonzero(mask)
    return (slice(max(int(rows.min()) - pad, 0), int(rows.max()) + pad + 1),
            slice(max(int(columns.min()) - pad, 0), int(columns.max()) + pad + 1))


def needle_as_projected(needle: Needle, carm: CArm, blur_mm: float, kev: float = _NEEDLE_REFERENCE_KEV, *,
                        hub: bool = True) -> np.ndarray:
    """The needle's attenuation line integrals (closed form, :func:`simulator.imaging.drr.needle_line_integrals`)
    blurred by a Gaussian of ``blur_mm`` at the detector (the anatomy's :func:`needle_blur_mm`: its projection's blur
    up to a 1 mm CT's), so that the needle's edges, the bone's and the quantum noise reach the detector through one
    transfer function: drawn sharp over bone whose edges carry its CT's voxel, the shaft read as a 1-2 px black
    vector pasted on the image (issue 16/21's blind read). Blurred on the needle's footprint only (the rest is
    zero); the line integral's sum is kept. ``hub`` False: the steel shaft alone.

    >>> from simulator.needle.shaft import Needle
    >>> carm = CArm(detector_pixels=128)
    >>> needle = Needle(entry=[0.0, 60.0, -20.0], direction=[0.0, -1.0, 0.2], depth_mm=40.0)
    >>> sharp, soft = needle_as_projected(needle, carm, 0.0), needle_as_projected(needle, carm, 1.0)
    >>> round(float(soft.sum() / sharp.sum()), 4), bool(soft.max() < sharp.max())
    (1.0, True)
    >>> bool((soft > 0).sum() > (sharp > 0).sum())
    True
    """
    image = needle_line_integrals(needle, carm, kev, hub=hub)
    sigma = blur_mm / carm.pixel_size_mm
    if sigma < 0.05 or not image.any():
        return image
    box = _box_round(image != 0, int(3.0 * sigma + 0.5) + 1)
    image[box] = gaussian_blur(image[box], sigma)
    return image


def shaft_fraction(needle: Needle, carm: CArm, blur_mm: float, whole: np.ndarray | None = None) -> np.ndarray:
    """The share of the needle's line integral (float32, 0-1; 0 off the needle) that its steel shaft makes, the
    rest its hub's plastic (:func:`needle_as_projected` of both): the shaft is the detail the display keeps at the
    window's gain (:func:`to_display`), the hub, a plastic tube 6 mm across, is not. Given it too, the gun barrel's
    hub over the pedicle was shown as black as the shaft's dot, one black disc 6 mm across. ``whole``: the needle's
    :func:`needle_as_projected` with ``blur_mm`` at :data:`_NEEDLE_REFERENCE_KEV`, made already (not projected again).

    >>> from simulator.needle.shaft import Needle
    >>> carm = CArm(detector_pixels=128)
    >>> needle = Needle(entry=[0.0, 60.0, -20.0], direction=[0.0, -1.0, 0.2], depth_mm=40.0)
    >>> share = shaft_fraction(needle, carm, 0.0)
    >>> hub = needle_as_projected(needle, carm, 0.0) > 0
    >>> float(share.max()), bool((share[hub] == 0).any())  # the shaft's pixels 1, the hub's plastic beside it 0
    (1.0, True)
    """
    if whole is None:
        whole = needle_as_projected(needle, carm, blur_mm)
    shaft = needle_as_projected(needle, carm, blur_mm, hub=False)
    return np.where(whole > 0, shaft / np.maximum(whole, np.float32(1e-12)), np.float32(0.0)).astype(np.float32)


def needle_share(exposed: np.ndarray, without: np.ndarray, blur_pixels: float,
                 glare_fraction: float = 0.0) -> np.ndarray:
    """The needle's share of the measurement (float32, line-integral units, 0 off the needle): the noiseless
    :func:`measure` of the intensifier's input with it (``exposed``) less that without it (``without``,
    :func:`exposed_input`, the scatter with it: over the lateral's sacrum the grid's scatter takes an eighth of the
    steel's 0.49), as :func:`measure` forms it: blurred by the detector's ``blur_pixels`` (its Gaussian, pixels) before
    the log, and its dip lessened by the veiling glare's ``glare_fraction`` (the glare, a wide mean of the light, is
    the surroundings' without the needle). Blurred after the log instead, the share of a TFESI shaft seen nearly end-on
    in the AP was 0.18 of a window more than the frame held: taken out of it before the display's curves it left a pale
    trough whose slope, read as detail many times the noise, took the shaft's mottle away (:func:`to_display`).

    >>> exposed = np.ones((9, 9), np.float32)
    >>> exposed[4, 4] = np.exp(-2.0)
    >>> share = needle_share(exposed, np.ones((9, 9), np.float32), 0.0)
    >>> round(float(share[4, 4]), 4), float(share[0, 0])
    (2.0, 0.0)
    >>> round(float(needle_share(exposed, np.ones((9, 9), np.float32), 0.0, glare_fraction=0.1)[4, 4]), 4)
    1.506
    """
    changed = exposed != without
    share = np.zeros(exposed.shape, dtype=np.float32)
    if not changed.any():
        return share
    box = _box_round(changed, int(3.0 * blur_pixels + 0.5) + 1 if blur_pixels >= 0.05 else 0)
    with_it, without_it = exposed[box], without[box]
    if blur_pixels >= 0.05:
        with_it, without_it = gaussian_blur(with_it, blur_pixels), gaussian_blur(without_it, blur_pixels)
    floor = np.float32(1e-12)
    dip = np.float32(1.0 - glare_fraction) * (np.float32(1.0) - np.maximum(with_it, floor)
                                               / np.maximum(without_it, floor))
    share[box] = -np.log(np.maximum(np.float32(1.0) - dip, floor))
    return share


def detected_with(anatomy: Anatomy, carm: CArm, spectrum: Beam, method: str, anatomy_frame: np.ndarray,
                  contrast: Volume | None, needle: Needle | None, cell: int = 1, *,
                  projected: np.ndarray | None = None) -> np.ndarray:
    """``anatomy_frame`` (:func:`detected_frame` on ``cell``) with iodine and the needle's steel: the pixels
    they cross are integrated over the spectrum again with all four materials (a copy; the rest as is).
    ``projected``: the needle's :func:`needle_as_projected` at :data:`_NEEDLE_REFERENCE_KEV` and the anatomy's
    :func:`needle_blur_mm`, made already (``needle`` is then not projected again)."""
    total = anatomy_frame.copy()
    iodine = iodine_path(contrast, carm, method=method) if contrast is not None else None
    steel = None
    if needle is not None or projected is not None:
        steel_mu = tissue("steel").xray_mu_per_mm(_NEEDLE_REFERENCE_KEV)
        steel = (needle_as_projected(needle, carm, needle_blur_mm(anatomy, carm), _NEEDLE_REFERENCE_KEV)
                 if projected is None else projected.copy())
        steel /= np.float32(steel_mu)
    crossed = np.zeros(carm.shape, dtype=bool)
    for image in (iodine, steel):
        if image is not None:
            crossed |= image > 0
    if not crossed.any():
        return total
    water, bone = restored_on_cells(anatomy, carm, method, cell)
    zero = np.zeros(int(crossed.sum()), dtype=np.float32)
    total[crossed] = detected_line_integrals(spectrum, water[crossed], bone[crossed],
                                             iodine[crossed] if iodine is not None else zero,
                                             steel[crossed] if steel is not None else zero)
    return total


# --------------------------------------------------------------------------- image chain
@lru_cache(maxsize=16)
def vignetting_profile(pixels: int, vignetting: float) -> np.ndarray:
    """Relative brightness ``1 - vignetting (r / R)^2`` over a square detector of ``pixels`` (R = half width)."""
    coordinate = (np.arange(pixels) - (pixels - 1) / 2.0) / (pixels / 2.0)
    radius2 = coordinate[None, :] ** 2 + coordinate[:, None] ** 2
    profile = (1.0 - vignetting * np.minimum(radius2, 1.0)).astype(np.float32)
    profile.setflags(write=False)
    return profile


@lru_cache(maxsize=16)
def vignetting_log(pixels: int, vignetting: float) -> np.ndarray:
    """The intensifier's vignetting as its camera's log image holds it: ``-ln`` of :func:`vignetting_profile`
    (float32, read only), added to the measured line integral (:attr:`DetectorModel.vignetting`).

    >>> [round(float(x), 3) for x in vignetting_log(4, 0.3)[1:3, 0]]  # (r / R)^2 = 0.625 at the rim's middle
    [0.208, 0.208]
    """
    offset = -np.log(vignetting_profile(pixels, vignetting))
    offset.setflags(write=False)
    return offset


@lru_cache(maxsize=16)
def _gaussian_taps(sigma: float, truncate: float) -> np.ndarray:
    radius = max(1, int(truncate * sigma + 0.5))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return (taps / taps.sum()).astype(np.float32)


@njit(fastmath=True, cache=True, nogil=True)
def _separable_filter(image, taps):  # pragma: no cover - compiled
    """Convolve rows then columns with the symmetric ``taps``, edges repeated ("nearest").

    Both passes run along contiguous rows (``out[c] += w_k * row[c + k]``) so they vectorise.
    """
    rows, columns = image.shape
    radius = taps.size // 2
    padded = np.empty(columns + 2 * radius, dtype=np.float32)
    across = np.zeros_like(image)
    for r in range(rows):
        padded[radius:radius + columns] = image[r]
        padded[:radius] = image[r, 0]
        padded[radius + columns:] = image[r, columns - 1]
        for k in range(taps.size):
            weight = taps[k]
            for c in range(columns):
                across[r, c] += weight * padded[c + k]
    out = np.zeros_like(image)
    for r in range(rows):
        for k in range(taps.size):
            rr = min(max(r + k - radius, 0), rows - 1)
            weight = taps[k]
            for c in range(columns):
                out[r, c] += weight * across[rr, c]
    return out


def gaussian_blur(image: np.ndarray, sigma_pixels: float, truncate: float = 3.0) -> np.ndarray:
    """Gaussian blur (float32) of a 2D image, edges repeated; a copy when ``sigma_pixels`` is ~0."""
    if sigma_pixels < 0.05:
        return image.astype(np.float32, copy=True)
    return _separable_filter(np.ascontiguousarray(image, dtype=np.float32), _gaussian_taps(float(sigma_pixels), truncate))


# Expected counts below which quantum noise is drawn from the Poisson law itself; above it the
# normal law with the same mean and variance is used (indistinguishable there, and 5x faster).
_EXACT_POISSON_BELOW = 20.0


@njit(fastmath=True, cache=True, nogil=True)
def _normal_counts(expected, normal, low_below):  # pragma: no cover - compiled
    """``max(e + sqrt(e) z, 0)`` in place of ``normal``; returns how many pixels expect < ``low_below``."""
    flat_e = expected.ravel()
    flat_z = normal.ravel()
    low = 0
    for k in range(flat_e.size):
        e = flat_e[k]
        flat_z[k] = max(e + math.sqrt(e) * flat_z[k], np.float32(0.0))
        low += e < low_below
    return low


def quantum_noise(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson-distributed counts for the ``expected`` counts per pixel (float32, same shape)."""
    expected = np.ascontiguousarray(expected, dtype=np.float32)
    counts = rng.standard_normal(expected.shape, dtype=np.float32)
    if _normal_counts(expected, counts, np.float32(_EXACT_POISSON_BELOW)):
        low = expected < _EXACT_POISSON_BELOW
        counts[low] = rng.poisson(expected[low])
    return counts


@lru_cache(maxsize=8)
def pincushion_coordinates(pixels: int, pincushion: float) -> np.ndarray:
    """Where each displayed pixel of an intensifier with ``pincushion`` distortion samples the input
    screen: (2, rows, columns) float32 row and column coordinates for ``ndimage.map_coordinates``.

    A point at radius ``r`` (fraction of the half-width) is shown at ``r (1 + k r^2)``; the inverse is
    found by two fixed-point steps (exact to ~k^3).
    """
    centre = (pixels - 1) / 2.0
    half = pixels / 2.0
    rows, columns = np.meshgrid(np.arange(pixels, dtype=np.float64), np.arange(pixels, dtype=np.float64), indexing="ij")
    y, x = (rows - centre) / half, (columns - centre) / half
    shown = np.hypot(x, y)
    source = shown.copy()
    for _ in range(2):
        source = shown / (1.0 + pincushion * source**2)
    scale = np.where(shown > 0, source / np.maximum(shown, 1e-12), 1.0)
    coordinates = np.stack([centre + y * scale * half, centre + x * scale * half]).astype(np.float32)
    coordinates.setflags(write=False)
    return coordinates


@lru_cache(maxsize=8)
def _upsampling_taps(fine: int, cell: int) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation from the centres of ``fine // cell`` cells to ``fine`` pixels (edges held):
    each fine pixel's lower cell (int64) and the weight (float32) of the cell above it."""
    coarse = fine // cell
    centres = np.clip((np.arange(fine) + 0.5) / cell - 0.5, 0.0, coarse - 1.0)
    low = np.minimum(np.floor(centres).astype(np.int64), coarse - 2) if coarse > 1 else np.zeros(fine, np.int64)
    weight = (centres - low).astype(np.float32)
    for array in (low, weight):
        array.setflags(write=False)
    return low, weight


@njit(fastmath=True, cache=True, nogil=True)
def _upsample_linear(coarse, low, weight):  # pragma: no cover - compiled
    """Separable linear interpolation of the (cells, cells) image ``coarse`` to (fine, fine) pixels, the
    taps of :func:`_upsampling_taps`: rows, then columns, one thread (a few hundred microseconds; BLAS
    products did it in as little CPU but their idle threads spun on the other core)."""
    cells = coarse.shape[0]
    fine = low.size
    rows = np.empty((fine, cells), dtype=np.float32)
    for r in range(fine):
        below = low[r]
        above = min(below + 1, cells - 1)
        w = weight[r]
        for c in range(cells):
            rows[r, c] = (1.0 - w) * coarse[below, c] + w * coarse[above, c]
    out = np.empty((fine, fine), dtype=np.float32)
    for c in range(fine):
        below = low[c]
        above = min(below + 1, cells - 1)
        w = weight[c]
        for r in range(fine):
            out[r, c] = (1.0 - w) * rows[r, below] + w * rows[r, above]
    return out


def coarse_blur(image: np.ndarray, sigma_pixels: float, cell: int = 8) -> np.ndarray:
    """A wide Gaussian blur (float32) computed on a ``cell``-times coarser grid: for blurs of tens of
    pixels (veiling glare), where the coarse grid loses nothing and the full-size one costs 30x more."""
    coarse, cell = _cell_means(image, cell)
    blurred = ndimage.gaussian_filter(coarse, sigma_pixels / cell, mode="nearest", truncate=3.0).astype(np.float32)
    return _upsample_linear(blurred, *_upsampling_taps(image.shape[0], cell))


def _cell_means(image: np.ndarray, cell: int) -> tuple[np.ndarray, int]:
    """The square ``image``'s means over cells of ``cell`` pixels (or of the largest size under it that divides the
    image's side), and that size."""
    n = image.shape[0]
    while n % cell:
        cell -= 1
    return image.reshape(n // cell, cell, n // cell, cell).mean(axis=(1, 3)), cell


@njit(fastmath=True, cache=True, nogil=True)
def _remap_where(image, coordinates, changed, gain, out):  # pragma: no cover - compiled
    """``out[r, c] = gain[r, c]`` times the bilinear sample of ``image`` at (row, column)
    ``coordinates[:, r, c]`` (edges held), for the pixels whose four source pixels include a ``changed``
    one; the rest of ``out`` is left as it is. One thread: a full image is ~1 ms, a needle's pixels far less."""
    rows, columns = image.shape
    for r in range(rows):
        for c in range(columns):
            y = min(max(coordinates[0, r, c], 0.0), rows - 1.000001)
            x = min(max(coordinates[1, r, c], 0.0), columns - 1.000001)
            i = int(y)
            j = int(x)
            if not (changed[i, j] or changed[i, j + 1] or changed[i + 1, j] or changed[i + 1, j + 1]):
                continue
            fy = y - i
            fx = x - j
            top = image[i, j] + fx * (image[i, j + 1] - image[i, j])
            bottom = image[i + 1, j] + fx * (image[i + 1, j + 1] - image[i + 1, j])
            out[r, c] = gain[r, c] * (top + fy * (bottom - top))


def exposed_input(line_integral: np.ndarray, *, detector: DetectorModel, carm: CArm,
                  scatter: np.ndarray | None = None,
                  base: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The intensifier's input image before quantum noise (float32, relative to the open beam): the
    primary ``exp(-p)`` plus the scatter the grid lets through, pincushion-distorted.

    ``base`` is ``(line_integral, exposed)`` of another frame at the same pose, detector and scatter (the
    anatomy's alone, kept with its frame facts): its pixels are taken where ``line_integral`` equals
    its own, and only those the needle and contrast changed are computed again, with the same
    arithmetic, so the result is the one a full computation gives (a live frame's share of this
    step falls from a full image to the needle's pixels).
    """
    relative = np.exp(-line_integral)
    if scatter is not None:
        ratio = detector.grid.scatter_transmission / detector.grid.primary_transmission
        relative += np.float32(ratio) * scatter
    relative = np.ascontiguousarray(relative, dtype=np.float32)
    gain = vignetting_profile(carm.detector_pixels, 0.0)  # no gain: the vignetting is the output's (vignetting_log)
    if base is None:
        changed = np.ones(relative.shape, dtype=bool)
        out = np.empty_like(relative)
    else:
        changed = line_integral != base[0]
        out = base[1].copy()
    if detector.pincushion > 0:
        _remap_where(relative, pincushion_coordinates(carm.detector_pixels, detector.pincushion), changed, gain, out)
    else:
        np.copyto(out, relative, where=changed)
    return out


def projection_blur_mm(anatomy: Anatomy, carm: CArm) -> float:
    """The blur (Gaussian standard deviation, mm at the detector plane) that the anatomy's projection carries and
    a real patient's would not: its CT's finest voxel ``v``, which the projector interpolates linearly between
    voxel centres (a sharp edge becomes a ramp one voxel wide, the variance ``v^2 / 12``), magnified to the
    detector at the isocentre.

    >>> from anatomy_models.anatomy import Anatomy
    >>> ct = Volume.from_spacing(np.zeros((2, 2, 2), np.int16), (1.0, 1.0, 1.0))
    >>> round(projection_blur_mm(Anatomy(ct=ct), CArm()), 3)  # 1 mm voxels, magnified 1.54 times
    0.444
    """
    return float(np.min(anatomy.ct.spacing)) / math.sqrt(12.0) * carm.magnification


def camera_log(measured: np.ndarray, field_mask: np.ndarray, carm: CArm, detector: DetectorModel) -> np.ndarray:
    """``measured`` as the intensifier's camera's log image holds it, which the exposure control, the window and the
    tone curve see: with the vignetting's offset :func:`vignetting_log` inside the exposed field
    (:attr:`DetectorModel.vignetting`); unchanged for a flat panel."""
    if not detector.vignetting:
        return measured
    return np.where(field_mask, measured + vignetting_log(carm.detector_pixels, detector.vignetting), measured)


def needle_blur_mm(anatomy: Anatomy, carm: CArm) -> float:
    """The blur (Gaussian standard deviation, mm at the detector) given to the needle
    (:func:`needle_as_projected`): the anatomy's
    :func:`projection_blur_mm`, so that needle and anatomy share one transfer function, but no more than a CT of
    :data:`_NEEDLE_BLUR_VOXEL_MM` voxels carries.

    >>> from anatomy_models.anatomy import Anatomy
    >>> coarse = Anatomy(ct=Volume.from_spacing(np.zeros((2, 2, 2), np.int16), (3.0, 3.0, 3.0)))
    >>> round(projection_blur_mm(coarse, CArm()), 3), round(needle_blur_mm(coarse, CArm()), 3)
    (1.332, 0.444)
    """
    return min(projection_blur_mm(anatomy, carm), _NEEDLE_BLUR_VOXEL_MM / math.sqrt(12.0) * carm.magnification)


def measure(line_integral: np.ndarray, field_mask: np.ndarray, quanta_per_pixel: float | None, *,
            seed: int, detector: DetectorModel, carm: CArm, scatter: np.ndarray | None = None,
            exposed: np.ndarray | None = None) -> np.ndarray:
    """The detector's log-domain measurement ``-ln(counts / N0)`` of line integrals ``p`` (float32).

    ``quanta_per_pixel`` is N0, the detected photons per pixel with nothing in the beam (behind the
    grid); None gives the noiseless measurement (still blurred and glared). ``scatter``
    is the scatter reaching the detector without a grid, relative to the open beam's primary
    (:func:`simulator.imaging.scatter.scatter_image`); the grid passes it in the ratio of its
    scatter and primary transmissions. The order follows the intensifier: pincushion distortion of the
    input image (:func:`exposed_input`; ``exposed`` gives it made already, read only), quantum noise at
    the input phosphor, blur, veiling glare of the output's light (whose vignetting the camera's log image
    holds, :func:`vignetting_log`).

    The quanta are blurred by the detector alone, not by the blur the anatomy's projection carries from its CT
    (:func:`projection_blur_mm`), which no detector gives its quanta: an indirect flat panel's noise power spectrum
    is nearly white up to its pixel pitch, the noise above the sampling frequency aliased back below it (Siewerdsen
    et al., "Empirical and theoretical investigation of the noise performance of indirect detection, active matrix
    flat-panel imagers (AMFPIs) for diagnostic radiology", Med. Phys. 24:71-89, 1997). With the 1 mm CT's 0.44 mm
    on top of the detector's 0.3 mm, the built-in patient's grain at 768 px was correlated over 3.5 px (1/e) in the
    measured image and 3.8 on the monitor (issue 16's blind read, stop 24: "the grain in 3-6 px blotches"); the
    earlier complaint that the grain was finer than the anatomy's detail is the CT's blur, not the detector's.
    """
    if exposed is None:
        exposed = exposed_input(line_integral, detector=detector, carm=carm, scatter=scatter)
    relative = exposed
    if quanta_per_pixel is not None:
        quanta = np.float32(quanta_per_pixel)
        relative = quantum_noise(relative * quanta, np.random.default_rng(seed)) / quanta
    else:
        relative = relative.copy()
    relative[~field_mask] = 0.0
    relative = gaussian_blur(relative, detector.blur_mm / carm.pixel_size_mm)
    if detector.glare_fraction > 0:
        glare = coarse_blur(relative, detector.glare_radius_mm / carm.pixel_size_mm)
        relative = np.float32(1.0 - detector.glare_fraction) * relative + np.float32(detector.glare_fraction) * glare
    floor = 0.5 / quanta_per_pixel if quanta_per_pixel is not None else 1e-6
    measured = -np.log(np.maximum(relative, np.float32(floor)))
    measured[~field_mask] = 0.0
    return measured


def quantum_noise_log(exposed: np.ndarray, quanta_per_pixel: float, *, detector: DetectorModel,
                      pixel_size_mm: float) -> np.ndarray:
    """The standard deviation of the quantum noise of :func:`measure`'s log image, per pixel (float32).

    Counts of ``N0 e`` quanta (``e``: the noiseless input, :func:`exposed_input`) have a relative
    standard deviation ``1 / sqrt(N0 e)``; the detector's Gaussian blur keeps ``sum(k^2)`` of it (``k`` its 2D
    kernel), the veiling glare ``1 - glare_fraction``, and the log turns relative into absolute.
    Known from the exposure and the anatomy before any noise is drawn, so the noise reduction that
    uses it never depends on the noise itself, the needle or the contrast.

    Examples
    --------
    Without blur or glare, 10,000 quanta give a 1% noise:

    >>> sharp = DetectorModel(blur_mm=0.0, glare_fraction=0.0)
    >>> [round(float(x), 4) for x in quantum_noise_log(np.ones(2, np.float32), 1e4, detector=sharp, pixel_size_mm=0.5)]
    [0.01, 0.01]
    """
    sigma_pixels = detector.blur_mm / pixel_size_mm
    taps = _gaussian_taps(float(sigma_pixels), 3.0) if sigma_pixels >= 0.05 else np.ones(1, np.float32)
    kept = float(np.sum(taps.astype(np.float64) ** 2)) * (1.0 - detector.glare_fraction)  # (sum t^2)^2, square-rooted
    return np.float32(kept) / np.sqrt(np.float32(quanta_per_pixel) * np.maximum(exposed, np.float32(1e-6)))


@njit(fastmath=True, cache=True, nogil=True, inline="always")
def _range_weight(scaled):  # pragma: no cover - compiled
    """``(1 - s^2 / 8)^4``, zero beyond ``s = 2.8``: :func:`_bilateral`'s stand-in for ``exp(-s^2 / 2)``."""
    near = max(np.float32(1.0) - np.float32(0.125) * scaled * scaled, np.float32(0.0))
    near *= near
    return near * near


@njit(fastmath=True, cache=True, nogil=True)
def _bilateral(image, taps, inverse_range, out):  # pragma: no cover - compiled
    """Into ``out``: :func:`noise_reduced` of ``image``, the spatial ``taps`` along rows, then along columns, the
    range weight ``(1 - s^2 / 8)^4`` for ``s = difference * inverse_range`` (``inverse_range`` per pixel): the
    Gaussian ``exp(-s^2 / 2)`` to within 0.08, zero beyond 2.8, and multiplications only, so that the passes,
    along contiguous rows offset by offset, vectorise (an exponential per weight took 8 times as long)."""
    rows, columns = image.shape
    radius = taps.size // 2
    total = np.empty(columns, dtype=np.float32)
    weight = np.empty(columns, dtype=np.float32)
    across = np.empty_like(image)
    for r in range(rows):
        total[:] = 0.0
        weight[:] = 0.0
        for k in range(-radius, radius + 1):
            tap = taps[k + radius]
            for c in range(max(0, -k), min(columns, columns - k)):
                value = image[r, c + k]
                w = tap * _range_weight((value - image[r, c]) * inverse_range[r, c])
                total[c] += w * value
                weight[c] += w
        for c in range(columns):
            across[r, c] = total[c] / weight[c]
    for r in range(rows):
        total[:] = 0.0
        weight[:] = 0.0
        for k in range(max(-radius, -r), min(radius, rows - 1 - r) + 1):
            tap = taps[k + radius]
            for c in range(columns):
                value = across[r + k, c]
                w = tap * _range_weight((value - across[r, c]) * inverse_range[r, c])
                total[c] += w * value
                weight[c] += w
        for c in range(columns):
            out[r, c] = total[c] / weight[c]


def noise_reduced(measured: np.ndarray, range_sigma: np.ndarray, sigma_pixels: float) -> np.ndarray:
    """Edge-preserving spatial noise reduction (float32): a bilateral filter (Tomasi & Manduchi, "Bilateral
    filtering for gray and color images", ICCV 1998), along rows, then columns (the separable form of Pham &
    van Vliet, "Separable bilateral filtering for fast video preprocessing", ICME 2005). Each pixel becomes
    the mean of its neighbours weighted by a Gaussian of their distance (``sigma_pixels``) and by a near-Gaussian
    of their value's difference from its own (``range_sigma``, per pixel, e.g. a few x :func:`quantum_noise_log`):
    noise is averaged, a step much larger than ``range_sigma`` (a cortex, the needle, contrast) is not
    smoothed across. A copy below 0.05 pixels.

    Examples
    --------
    Noise flattens, the step stays a step:

    >>> row = np.array([[1.0, 1.2, 0.9, 1.1, 5.0, 5.1, 4.9, 5.0]] * 8, np.float32)
    >>> [round(float(x), 2) for x in noise_reduced(row, np.full(row.shape, 0.5, np.float32), 1.0)[0]]
    [1.06, 1.07, 1.03, 1.04, 5.03, 5.02, 4.98, 4.97]
    """
    image = np.ascontiguousarray(measured, dtype=np.float32)
    if sigma_pixels < 0.05:
        return image.copy()
    inverse = np.ascontiguousarray(np.float32(1.0) / np.maximum(range_sigma, np.float32(1e-6)), dtype=np.float32)
    out = np.empty_like(image)
    _bilateral(image, _gaussian_taps(float(sigma_pixels), 2.5), inverse, out)
    return out


@njit(fastmath=True, cache=True, nogil=True)
def _tone_lookup(grey, tone, out):  # pragma: no cover - compiled
    """Linear interpolation of ``tone`` (its knots evenly spaced over 0-1) at each of ``grey`` (0-1)."""
    top = tone.size - 1
    flat, shown = grey.ravel(), out.ravel()
    for k in range(flat.size):
        position = min(max(flat[k], 0.0), 1.0) * top
        i = min(int(position), top - 1)
        shown[k] = tone[i] + (position - i) * (tone[i + 1] - tone[i])


def tone_lookup(grey: np.ndarray, tone: np.ndarray) -> np.ndarray:
    """The tone curve (:func:`tone_curve`) at each grey value (0-1): ``np.interp`` on its evenly spaced
    knots, as one pass that finds the knot by arithmetic instead of a search (a tenth of the time).

    >>> curve = np.array([0.0, 0.5, 1.0], np.float32) ** 2
    >>> tone_lookup(np.array([[0.0, 0.25, 0.75, 1.0]], np.float32), curve).tolist()
    [[0.0, 0.125, 0.625, 1.0]]
    """
    grey = np.ascontiguousarray(grey, dtype=np.float32)
    out = np.empty_like(grey)
    _tone_lookup(grey, np.ascontiguousarray(tone, dtype=np.float32), out)
    return out


def to_display(measured: np.ndarray, field_mask: np.ndarray, window: tuple[float, float], display: Display,
               pixel_size_mm: float, background: np.ndarray | None = None,
               tone: np.ndarray | None = None, mottle: np.ndarray | None = None,
               needle: np.ndarray | None = None) -> np.ndarray:
    """Harmonisation, window, gamma, edge enhancement, polarity and the field's edge: float measurement ->
    uint8 grey levels.

    ``background`` (line-integral units, e.g. the display's share of the anatomy's large-scale image,
    see :func:`large_scale_image`) is subtracted before the window; None subtracts nothing. ``tone``
    (:func:`tone_curve`) maps the windowed value to grey; None is linear. The field's
    edge rolls off over ``display.field_edge_mm`` (:func:`field_edge`), black outside it. ``mottle`` (the
    measurement's quantum noise, :func:`quantum_noise_log`; None for a noiseless frame) is shown at the window's
    own gain, under the toe, the shoulder and the tone curve alike (:data:`_GRAIN_RADIUS_MM`). ``needle`` (its share
    of the measurement, :func:`needle_share`, taken out of ``measured`` already; None: no needle) is added after the
    curves, which shape the image without it (:func:`needle_shown`), as the dynamic range compression keeps the detail
    layer whole (Prokop & Schaefer-Prokop 1997, :attr:`Display.edge_enhancement`), a shaft 1-3 pixels across being
    detail. Through the toe a 22 G shaft over the lateral's sacral canal (0.2-0.4 of line integral, 0.1-0.2 of its
    window) was shown 7 to 11 grey levels darker than the tissue beside it, "a hairline paler than bone"; through the
    shoulder the shaft end-on over the pedicle (the gun barrel) no darker than the densest bone (issue 16/21's blind
    read).
    """
    low, high = window
    shown = measured if background is None else measured - background
    grey = (shown - np.float32(low)) * np.float32(1.0 / (high - low))
    steel = None if needle is None else needle * np.float32(1.0 / (high - low))
    air = -low / (high - low)  # the window position of a line integral of 0
    grain = None
    if mottle is not None:
        # The display's curves (toe, shoulder, tone curve) shape the large-scale image, and the quantum mottle about
        # it is added back at the window's own gain, as a C-arm's dynamic range compression works on the large-scale
        # image and keeps the detail layer (Prokop & Schaefer-Prokop 1997, Display.edge_enhancement). The mean over
        # the field alone, less two radii of its rim: neither the black surround nor the field edge's blur and glare
        # are detail of the body's (taken as detail, the oblique's bright flank darkened over 12 px inside the edge).
        # Nor is what lies beyond the window's dense end by more than the mottle's reach (a needle's steel, iodine
        # past the window): taken into the mean, a shaft raised it over a band a few radii wide, the tissue's
        # mottle there read as detail many noise widths high and went through the shoulder with the image, a flat,
        # noise-free box round the needle over dense contrast ("an obvious compositing stamp", stop 25's read).
        radius = _GRAIN_RADIUS_MM / pixel_size_mm
        scaled_mottle = mottle * np.float32(1.0 / (high - low))
        inner, weight = _inner_field(field_mask, radius)
        beyond = inner & (grey > np.float32(1.0) + np.float32(3.0) * scaled_mottle)
        kept = inner
        if beyond.any():
            kept = inner & ~beyond
            weight = gaussian_blur(kept.astype(np.float32), radius)
        local_mean = gaussian_blur(np.where(kept, grey, np.float32(0.0)), radius)
        local_mean = np.where(inner & (weight > np.float32(0.05)), local_mean / np.maximum(weight, np.float32(1e-6)),
                              grey)
        grain = _noise_sized(grey - local_mean, scaled_mottle)
        if beyond.any():
            _grain_near_dense(grey, beyond, radius, scaled_mottle, grain)
        grey -= grain
        if display.shoulder < 1.0:  # from the grey without its grain: a taper read from the noisy pixel is biased
            taper = black_taper(shouldered(grey.copy(), display.shoulder, display.shoulder_reach))
            grey += grain * (np.float32(1.0) - taper)  # what it leaves goes through the shoulder with the image
            grain *= taper
        grain *= grain_taper(grey, display.toe, air)
    window_units = grey.copy() if display.toe > 0.0 else None
    if display.shoulder < 1.0:
        grey = shouldered(grey, display.shoulder, display.shoulder_reach)
    np.clip(grey, 0.0, 1.0, out=grey)
    if tone is not None:
        grey = tone_lookup(grey, tone)
    if display.gamma != 1.0:  # x ** 1 is x: a full-image power saved
        grey **= np.float32(display.gamma)
    if window_units is not None:
        knee = float((np.array([[display.toe]], np.float32) if tone is None
                      else tone_lookup(np.array([[display.toe]], np.float32), tone))[0, 0]) ** display.gamma
        grey = toed(grey, window_units, display.toe, display.toe_reach, air, knee)
    if steel is not None:
        grey += needle_shown(steel, grey)
    if grain is not None:
        grey += grain
    if display.edge_enhancement > 0:
        smooth = gaussian_blur(grey, display.edge_radius_mm / pixel_size_mm, truncate=2.5)
        grey += np.float32(display.edge_enhancement) * cored(grey - smooth, display.edge_coring, display.edge_limit)
        grey = soft_limited(grey, _END_MARGIN)
    if display.polarity == "bone_black":
        grey = 1.0 - grey
    grey *= field_edge(field_mask, display.field_edge_mm / pixel_size_mm)
    return np.clip(grey * np.float32(255.0) + np.float32(0.5), 0, 255).astype(np.uint8)


def needle_shown(steel: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """How much darker (float32, grey scale units, 0 off the needle) the needle's ``steel`` (its share of the
    measurement in window units, :func:`needle_share`) shows on ``grey`` (the image after the display's curves, the
    densest at 1): at the window's gain where it is thin, its depth rolled off where more, ``h (1 - exp(-k / h))`` for
    the shaft's peak ``k`` across it and the room ``h``, :data:`_NEEDLE_TO_BLACK` of the way to black.
    The whole profile across the shaft takes its peak's gain, so the shaft keeps its width (a roll-off of each pixel
    by its own value flattened the core and widened it); the quantum mottle is added after it at the window's gain
    (:func:`to_display`), so the needle's pixels show the noise of the fewer photons that reach them.

    >>> steel = np.zeros((1, 9), np.float32)
    >>> steel[0, 3:6] = (0.5, 1.0, 0.5)  # a shaft a window deep on mid-grey
    >>> shown = needle_shown(steel, np.full((1, 9), 0.4, np.float32))
    >>> [round(float(v), 3) for v in shown[0, 2:7]]
    [0.0, 0.228, 0.455, 0.228, 0.0]
    >>> round(float(needle_shown(steel * 50.0, np.full((1, 9), 0.4, np.float32)).max()), 3)  # 0.9 of the way to black
    0.54
    """
    shown = np.zeros_like(steel)
    if not (steel > 0).any():
        return shown
    box = _box_round(steel > 0, _NEEDLE_PEAK_PIXELS)
    local = np.maximum(steel[box], np.float32(0.0))
    peak = ndimage.maximum_filter(local, size=_NEEDLE_PEAK_PIXELS, mode="nearest")
    base = grey[box]
    room = np.maximum(np.float32(_NEEDLE_TO_BLACK) * (np.float32(1.0) - base), np.float32(1e-4))
    gain = np.where(peak > 0, room * -np.expm1(-peak / room) / np.maximum(peak, np.float32(1e-12)), np.float32(1.0))
    shown[box] = local * gain
    return shown


def soft_limited(grey: np.ndarray, margin: float) -> np.ndarray:
    """``grey`` (float32, window units, the densest at 1; changed in place and returned) kept off the dense end of
    the scale: unchanged up to ``1 - margin``, beyond it rolled off exponentially (slope 1 at the join), so a
    value past the end comes ever closer to it without reaching it (:data:`_END_MARGIN`). The other end is air,
    which burns out as on the monitor.

    Examples
    --------
    >>> [round(float(x), 4) for x in soft_limited(np.array([-0.2, 0.0, 0.5, 0.97, 1.0, 1.3], np.float32), 0.04)]
    [-0.2, 0.0, 0.5, 0.9688, 0.9853, 1.0]
    """
    above = grey > np.float32(1.0 - margin)
    m = np.float32(margin)
    grey[above] = np.float32(1.0) - m * np.exp((np.float32(1.0) - m - grey[above]) / m)
    return grey


def shouldered(grey: np.ndarray, knee: float, reach: float) -> np.ndarray:
    """``grey`` (float32, window units; changed in place and returned) rolled off above ``knee``:
    ``knee + (1 - knee)(1 - exp(-(x - knee) / reach))``, rising ever more slowly toward 1, never reaching it
    (:attr:`Display.shoulder`).

    Examples
    --------
    >>> [round(float(x), 4) for x in shouldered(np.array([0.5, 0.85, 1.0, 2.0, 9.0], np.float32), 0.85, 0.6)]
    [0.5, 0.85, 0.8832, 0.9779, 1.0]
    """
    above = grey > np.float32(knee)
    if above.any():
        excess = grey[above] - np.float32(knee)
        grey[above] = np.float32(knee) + np.float32(1.0 - knee) * -np.expm1(-excess / np.float32(reach))
    return grey


def _noise_sized(detail: np.ndarray, mottle: np.ndarray) -> np.ndarray:
    """The quantum-noise-sized part of ``detail`` (the value about its local mean): ``d c^2 / (d^2 + c^2)`` for ``c``
    three times ``mottle`` (the noise's standard deviation, same units): the noise itself nearly whole, an anatomy's
    edge many ``c`` high nearly nothing, so it keeps the display's curves and no halo forms (:func:`to_display`)."""
    limit = np.square(np.float32(3.0) * mottle)
    return detail * limit / (detail * detail + limit + np.float32(1e-12))


def _grain_near_dense(grey: np.ndarray, beyond: np.ndarray, radius: float, mottle: np.ndarray,
                      grain: np.ndarray) -> None:
    """Into ``grain`` (float32, window units), near what lies ``beyond`` the window's dense end (iodine, steel): the
    quantum-noise-sized part (:func:`_noise_sized`) of ``grey`` about an edge-preserving local mean, the bilateral mean
    (:func:`noise_reduced`) over ``radius`` pixels of the neighbours within a few ``mottle`` of each pixel's grey.

    Iodine past the window has quanta of its own, fewer than the tissue's, and its mottle is shown as the tissue's is.
    A plain mean cannot give it: over a pool it takes in the tissue round it, or, with the pool left out of the
    tissue's mean, the pool's mean was its own pixel, its grain went through the shoulder with the image ("opaque
    paint", noise SD 0.5-1.7 grey levels in the contrast against 4-8 in the tissue, stop 25's blind read); a mean over
    the pool's pixels alone lies on the far side of its fading edge, whose slope, read as grain, drew a contour round
    it. The bilateral mean stops at the pool's and the needle's edges and is centred on a slope. Computed on the box
    round them, blended in over two radii of their edge; the rest of ``grain`` is left as it is."""
    reach = gaussian_blur(beyond.astype(np.float32), radius)
    near = beyond | (reach > np.float32(0.01))  # a lone pixel beyond blurs below 0.01 over a wide radius
    box = _box_round(near, 0)
    mean = noise_reduced(grey[box], np.float32(3.0) * mottle[box], radius)
    share = np.clip(reach[box] * np.float32(10.0), 0.0, 1.0)
    grain[box] += share * (_noise_sized(grey[box] - mean, mottle[box]) - grain[box])


def black_taper(shouldered_grey: np.ndarray) -> np.ndarray:
    """The share of the quantum mottle the display shows near its dense end (float32): all of it up to
    1 - :data:`_BLACK_TAPER`, then falling linearly to none at black (1) [ED: the darkest end burns out without
    mottle, as a camera's clipped video does, the mirror of :func:`grain_taper`'s air; a needle's steel, many
    windows past the anatomy, is black, not speckled].

    >>> [round(float(v), 2) for v in black_taper(np.array([0.5, 0.9, 0.95, 1.0], np.float32))]
    [1.0, 1.0, 0.5, 0.0]
    """
    return np.clip((np.float32(1.0) - shouldered_grey) * np.float32(1.0 / _BLACK_TAPER), 0.0, 1.0)


def grain_taper(window_units: np.ndarray, toe: float, air: float) -> np.ndarray:
    """The share of the quantum mottle the display shows (float32): all of it down to the ``toe``, below it falling
    linearly to none at ``air`` and beyond [ED: air burns out white without mottle, as a camera's clipped video
    does]; all of it where ``air`` is not below the toe (a subtracted image's window).

    >>> [round(float(v), 2) for v in grain_taper(np.array([0.5, 0.3, -1.0, -2.0, -3.0], np.float32), 0.3, -2.0)]
    [1.0, 1.0, 0.43, 0.0, 0.0]
    """
    if air >= toe:
        return np.ones_like(window_units)
    return np.clip((window_units - np.float32(air)) * np.float32(1.0 / (toe - air)), 0.0, 1.0)


def toed(shown: np.ndarray, window_units: np.ndarray, toe: float, reach: float, air: float,
         knee: float) -> np.ndarray:
    """``shown`` (float32, grey 0-1 after the tone curve; changed in place and returned) rolled off where
    ``window_units`` (the value in the window, 0-1 across it) is below ``toe``: there the grey is the toe's own
    grey ``knee`` times ``(g(x) - g(air)) / (1 - g(air))`` for ``g(x) = exp(-(toe - x) / reach)``, falling ever
    more slowly to 0 exactly at ``air`` (the window position of a line integral of 0, ``-low / (high - low)``) and 0
    beyond: tissue thinner than the window is compressed instead of clipped, and only air is shown as air
    (:attr:`Display.toe`). Unchanged when ``air`` is not below the toe (a subtracted image's window).

    Examples
    --------
    >>> x = np.array([0.5, 0.3, 0.0, -1.0, -2.0, -3.0], np.float32)
    >>> [round(float(v), 4) for v in toed(x.copy(), x, 0.3, 1.0, -2.0, 0.3)]
    [0.5, 0.3, 0.2136, 0.0574, 0.0, 0.0]
    """
    if air >= toe:
        return shown
    below = window_units < np.float32(toe)
    floor = math.exp(-(toe - air) / reach)
    scale = np.float32(knee / (1.0 - floor))
    x = np.maximum(window_units[below], np.float32(air))
    shown[below] = scale * (np.exp((x - np.float32(toe)) / np.float32(reach)) - np.float32(floor))
    return shown


def _inner_field(field_mask: np.ndarray, radius_pixels: float) -> tuple[np.ndarray, np.ndarray]:
    """The exposed field less two ``radius_pixels`` of its rim (the whole field if that leaves nothing), and its
    Gaussian blur of ``radius_pixels`` (float32, at least 1e-6): the weights of :func:`to_display`'s local mean in the
    toe, made once per field (read only)."""
    mask = np.ascontiguousarray(field_mask, dtype=bool)
    return _inner_field_of(mask.shape, np.packbits(mask).tobytes(), round(float(radius_pixels), 3))


@lru_cache(maxsize=16)
def _inner_field_of(shape: tuple[int, int], packed: bytes, radius_pixels: float) -> tuple[np.ndarray, np.ndarray]:
    mask = np.unpackbits(np.frombuffer(packed, np.uint8), count=shape[0] * shape[1]).reshape(shape).astype(bool)
    inner = ndimage.binary_erosion(mask, iterations=max(1, math.ceil(2.0 * radius_pixels)))
    if not inner.any():
        inner = mask
    weight = np.maximum(gaussian_blur(inner.astype(np.float32), radius_pixels), np.float32(1e-6))
    for array in (inner, weight):
        array.setflags(write=False)
    return inner, weight


def field_edge(field_mask: np.ndarray, width_pixels: float) -> np.ndarray:
    """The monitor's brightness factor at the exposed field's edge (float32, read only): ``1 - exp(-(d / w)^2)``
    at each pixel's distance ``d`` (pixels, from its centre to the nearest unexposed pixel's edge or the
    detector's border) inside the field, for a roll-off ``w`` of ``width_pixels``; 0 outside the field.
    Below 0.05 pixels: the mask itself.

    Examples
    --------
    >>> row = field_edge(np.tile(np.arange(16) >= 4, (16, 1)), 1.5)[8]
    >>> [round(float(x), 2) for x in row[2:10]]
    [0.0, 0.0, 0.11, 0.63, 0.94, 1.0, 1.0, 1.0]
    """
    mask = np.ascontiguousarray(field_mask, dtype=bool)
    return _field_edge(mask.shape, np.packbits(mask).tobytes(), round(float(width_pixels), 3))


@lru_cache(maxsize=16)
def _field_edge(shape: tuple[int, int], packed: bytes, width_pixels: float) -> np.ndarray:
    mask = np.unpackbits(np.frombuffer(packed, np.uint8), count=shape[0] * shape[1]).reshape(shape).astype(bool)
    if width_pixels < 0.05:
        weight = mask.astype(np.float32)
    else:
        # Distance from the pixel's centre to the edge of the nearest unexposed pixel: half a pixel at the rim.
        # The detector's own border counts as unexposed (a square detector's field ends there).
        inside = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1] - 0.5
        weight = np.where(mask, 1.0 - np.exp(-(inside / width_pixels) ** 2), 0.0).astype(np.float32)
    weight.setflags(write=False)
    return weight


def display_noise_reduced(measured: np.ndarray, noise: np.ndarray | None, display: Display) -> np.ndarray:
    """``measured`` after the display's noise reduction: ``display.noise_reduction_strength`` of the way to
    :func:`noise_reduced` with a threshold of ``display.noise_reduction`` x ``noise`` (the frame's
    :func:`quantum_noise_log`); ``measured`` itself for a noiseless frame (``noise`` None) or with the noise
    reduction off."""
    if noise is None or display.noise_reduction <= 0:
        return measured
    mean = noise_reduced(measured, np.float32(display.noise_reduction) * noise, display.noise_reduction_sigma_px)
    return measured + np.float32(display.noise_reduction_strength) * (mean - measured)


def cored(detail: np.ndarray, level: float, limit: float = 0.0) -> np.ndarray:
    """The detail layer of an unsharp mask with its noise-sized part suppressed ("coring", as C-arm edge
    enhancement does so that it sharpens edges rather than quantum mottle): ``d * d^2 / (d^2 + c^2)``
    for the coring ``level`` ``c`` (grey-scale fraction); 0 returns ``detail``. A ``limit`` ``a`` above 0 then
    holds the result's amplitude under it, ``x / sqrt(1 + (x / a)^2)``, as multiscale processing compresses its
    largest detail coefficients (Vuylsteke & Schoeters 1994, :attr:`Display.edge_limit`): a strong edge's overshoot
    stays a few grey levels, a faint edge's detail is kept.

    Examples
    --------
    Detail of the noise's size is cut most, a strong edge is kept:

    >>> [round(float(x), 3) for x in cored(np.array([0.01, -0.01, 0.2], np.float32), 0.015)]
    [0.003, -0.003, 0.199]

    With a limit the strong edge's detail stays under it, a faint one's hardly changes:

    >>> [round(float(x), 3) for x in cored(np.array([0.01, 0.03, 0.2], np.float32), 0.005, 0.03)]
    [0.008, 0.021, 0.03]
    """
    if level > 0:
        squared = detail * detail
        detail = detail * squared / (squared + np.float32(level * level))
    if limit > 0:
        detail = detail / np.sqrt(np.float32(1.0) + np.square(detail * np.float32(1.0 / limit)))
    return detail


def orientation_letters(vector: np.ndarray) -> str:
    """Patient-direction letters (L/R, A/P, H/F) of an LPS direction, strongest first (DICOM style).

    Components under 35% of the largest are left out, so an oblique gets two letters.

    Examples
    --------
    >>> orientation_letters(np.array([-1.0, 0.0, 0.0])), orientation_letters(np.array([0.6, 0.8, 0.0]))
    ('R', 'PL')
    """
    vector = np.asarray(vector, dtype=np.float64)
    letters = (("L", "R"), ("P", "A"), ("H", "F"))
    biggest = np.abs(vector).max()
    order = np.argsort(-np.abs(vector))
    return "".join(letters[axis][0 if vector[axis] > 0 else 1] for axis in order if abs(vector[axis]) >= 0.35 * biggest)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=32)
def _label_layer(pixels: int, marker: str, caption: str) -> tuple[np.ndarray, np.ndarray]:
    """The burned-in text as (where it is drawn, its grey value), rendered once per layout: the side marker in
    its frame at the right edge, the caption at the top left."""
    layer = Image.new("LA", (pixels, pixels), (0, 0))
    draw = ImageDraw.Draw(layer)
    size = max(10, pixels // 24)
    margin = max(3, pixels // 64)
    x, y = pixels - 3 * margin, pixels // 4
    box = draw.textbbox((x, y), marker, font=_font(size), anchor="rm")
    pad = max(2, size // 5)
    draw.rectangle((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad), outline=(255, 255),
                   width=max(1, size // 12))
    draw.text((x, y), marker, fill=(255, 255), font=_font(size), anchor="rm", stroke_width=max(1, size // 8),
              stroke_fill=(0, 255))
    draw.text((margin, margin), caption, fill=(255, 255), font=_font(max(8, size * 2 // 3)), anchor="lt",
              stroke_width=1, stroke_fill=(0, 255))
    grey, alpha = (np.asarray(band) for band in layer.split())
    return alpha > 127, grey


def side_marker(carm: CArm) -> str:
    """The letter of the patient's side at the image's right edge: L or R, on an oblique too; A or P on a
    lateral, where no side is left or right.

    >>> side_marker(CArm()), side_marker(CArm(primary_deg=-50.0)), side_marker(CArm(primary_deg=90.0))
    ('R', 'R', 'P')
    """
    letters = orientation_letters(carm.screen_right)
    return next((letter for letter in letters if letter in "LR"), letters[0])


def burn_in_labels(pixels: np.ndarray, carm: CArm, caption: str) -> np.ndarray:
    """The side marker and a caption at the top left. The marker is what a radiographer's lead letter says:
    the patient's side at the image's right edge (L or R, on an oblique too; on a lateral, where no side is
    left or right, A or P), not a letter on every edge, which no C-arm shows."""
    drawn, grey = _label_layer(pixels.shape[0], side_marker(carm), caption)
    return np.where(drawn, grey, pixels)


def render_fluoro(
    anatomy: Anatomy,
    carm: CArm,
    needle: Needle | None = None,
    contrast: Volume | None = None,
    *,
    dose: Technique | None = Technique(),
    seed: int = 0,
    subtract: FluoroImage | None = None,
    display: Display = Display(),
    detector: DetectorModel = DetectorModel(),
    method: Method = "joseph",
    kev: float | None = None,
    projection_cell: int = 1,
    needle_trail: tuple[Needle | None, ...] = (),
) -> FluoroImage:
    """Render one fluoroscopy frame.

    Parameters
    ----------
    anatomy : Anatomy
        The patient (CT in HU); its DRR is cached per pose.
    carm : CArm
        Pose, detector and collimation.
    needle : Needle, optional
        Composited analytically (no re-projection of the CT).
    contrast : Volume, optional
        Iodine concentration, mg/mL, on any grid.
    dose : Technique or None
        Tube technique (kVp, filtration, frame rate, mAs or automatic exposure control); the image
        holds the quanta of its ``shown_frames`` (by default a pulse shot's: a tap whose frames the
        last-image hold averages, ``simulator.imaging.dose.tap_frames``). None renders without
        quantum noise and reports no dose (the beam is then the default technique's).
    seed : int
        Seed of the quantum noise (recorded in the image).
    subtract : FluoroImage, optional
        Mask frame (same pose) for digital subtraction: the displayed image is this frame's
        measurement minus the mask's, mid-grey where nothing changed. DSA runs acquire at
        ~3x the fluoroscopy dose rate, a few frames a second; take mask and live frames with
        ``dose.technique_for("dsa")``.
    display, detector : Display, DetectorModel
        Monitor settings (window/level, polarity) and imaging-chain physics (scatter and grid,
        intensifier or flat panel).
    method : {"joseph", "siddon"}
        DRR projector (``simulator.imaging.drr``).
    kev : float, optional
        None (default): the polychromatic beam of the technique's kVp and filtration
        (:mod:`simulator.imaging.spectrum`). A number: a single effective energy, keV (60-80), the
        model before the spectrum, kept for comparison.
    projection_cell : int
        The anatomy is projected with one ray per ``projection_cell`` x ``projection_cell`` detector
        pixels and interpolated to each (:func:`projected_on_cells`; a live frame's is
        :func:`live_projection_cell`); the needle and contrast always per pixel. 1: a ray per pixel.
    needle_trail : tuple of Needle or None
        The needle as it stood in the earlier frames that the live recursive filter still averages into
        this one (each weighing as much as this frame, like the quanta of ``dose.shown_frames``): the
        displayed image is their mean transmission, so a moving needle lags, its new part faint and its
        old place fading (:func:`averaged_frames`). Empty: the needle stood still.

    Returns
    -------
    FluoroImage

    Examples
    --------
    >>> from anatomy_models.anatomy import Anatomy
    >>> block = Anatomy(ct=Volume.from_spacing(np.full((30, 30, 30), 40, np.int16), (4, 4, 4), origin=(-58, -58, -58)))
    >>> image = render_fluoro(block, CArm(detector_pixels=64), seed=1)
    >>> image.pixels.shape, image.pixels.dtype.name, image.seed
    ((64, 64), 'uint8', 1)
    >>> np.array_equal(image.pixels, render_fluoro(block, CArm(detector_pixels=64), seed=1).pixels)
    True
    """
    technique = dose if dose is not None else Technique()
    spectrum = beam(technique.kvp, technique.filtration_mm_al) if kev is None else None
    # The needle's projections (this frame's and the trail's) and the frame without it are made once each: the
    # frame without the needle is the base its share is measured against (needle_share) and the trail's frames
    # are it with their own needle.
    blur_mm = needle_blur_mm(anatomy, carm)
    steel_kev = _NEEDLE_REFERENCE_KEV if kev is None else kev
    projected = None if needle is None else needle_as_projected(needle, carm, blur_mm, steel_kev)
    if spectrum is None:
        if projection_cell != 1:
            raise SpinesimError("a projection on cells is made for the polychromatic beam only",
                                hint="leave kev unset or projection_cell at 1")
        anatomy_frame = anatomy_line_integrals(anatomy, carm, method=method, kev=kev)
        without = anatomy_frame.copy()
        if contrast is not None:
            without += contrast_line_integrals(contrast, carm, kev=kev, method=method)

        def with_needle(steel: np.ndarray) -> np.ndarray:
            return without + steel
    else:
        anatomy_frame = detected_frame(anatomy, carm, spectrum, method, projection_cell)
        without = detected_with(anatomy, carm, spectrum, method, anatomy_frame, contrast, None, projection_cell)

        def with_needle(steel: np.ndarray) -> np.ndarray:
            return detected_with(anatomy, carm, spectrum, method, anatomy_frame, contrast, None, projection_cell,
                                 projected=steel)
    total = without if projected is None else with_needle(projected)
    if needle_trail:
        total = averaged_frames([total, *(without if earlier is None else
                                          with_needle(needle_as_projected(earlier, carm, blur_mm, steel_kev))
                                          for earlier in needle_trail)])
    field_mask = carm.field_mask()
    facts = _cached_facts(anatomy, carm, anatomy_frame, field_mask, display, detector, method, spectrum, kev,
                          projection_cell)
    exposure = exposure_for(carm, dose, facts.transmission, kev) if dose is not None else None
    quanta = None
    if exposure is not None:
        quanta = exposure.quanta_per_pixel * detector.grid.primary_transmission * dose.shown_frames
    frame_quanta = quanta
    # Only the pixels the needle and contrast changed are exposed anew; the anatomy's are the pose's own.
    exposed = exposed_input(total, detector=detector, carm=carm, scatter=facts.scatter,
                            base=(anatomy_frame, facts.exposed))
    measured = measure(total, field_mask, quanta, seed=seed, detector=detector, carm=carm, exposed=exposed)
    steel = None
    if needle is not None and subtract is None:  # a subtraction shows the needle's change against its mask's
        steel = needle_share(exposed, exposed_input(without, detector=detector, carm=carm, scatter=facts.scatter,
                                                    base=(anatomy_frame, facts.exposed)),
                             detector.blur_mm / carm.pixel_size_mm, detector.glare_fraction)
        steel *= shaft_fraction(needle, carm, blur_mm, projected if steel_kev == _NEEDLE_REFERENCE_KEV else None)
    caption = carm.label
    if subtract is not None:
        if subtract.measured.shape != measured.shape or not np.allclose(subtract.projection_matrix, carm.projection_matrix):
            raise SpinesimError("the subtraction mask was taken at another C-arm pose",
                                hint="take the mask frame at the same pose before injecting")
        measured = measured - subtract.measured
        if quanta is not None and subtract.metadata.get("quanta_per_pixel"):
            # Two frames' noise: the difference's variance is the sum of theirs.
            quanta = 1.0 / (1.0 / quanta + 1.0 / subtract.metadata["quanta_per_pixel"])
        window = (-_DSA_HALF_WINDOW, _DSA_HALF_WINDOW) if display.window is None else display.window
        background = None  # the anatomy's large-scale image cancels in the difference
        caption += "  DSA"
    else:
        window = facts.window if display.window is None else display.window
        background = facts.background
    tone = facts.tone if subtract is None and display.window is None else None
    # The quantum noise's standard deviation, once: it sets the noise reduction's threshold and, on a plain frame,
    # the mottle the toe keeps visible.
    noise = None if quanta is None else quantum_noise_log(facts.exposed, quanta, detector=detector,
                                                          pixel_size_mm=carm.pixel_size_mm)
    # The needle's share is taken out before the noise reduction and the display's curves and put back after them
    # (to_display): its pixels keep the noise of the photons that reach them, which the noise reduction, its
    # threshold set for the anatomy's, would otherwise have pulled towards the tissue beside a shaft end-on.
    shown = display_noise_reduced(measured if steel is None else measured - steel, noise, display)
    if subtract is None:  # a subtraction of two log images cancels the vignetting
        shown = camera_log(shown, field_mask, carm, detector)
    # The mottle the display keeps is the frame's own, from its input with the iodine and the steel: fewer quanta
    # behind them, more noise (the anatomy's alone showed a pool of contrast a third smoother than tissue as dark).
    mottle = None
    if subtract is None and quanta is not None:
        mottle = quantum_noise_log(exposed, quanta, detector=detector, pixel_size_mm=carm.pixel_size_mm)
    pixels = to_display(shown, field_mask, window, display, carm.pixel_size_mm, background, tone, mottle, steel)
    if display.letters:
        pixels = burn_in_labels(pixels, carm, caption)
    return FluoroImage(pixels=pixels, line_integrals=total, measured=measured, field=field_mask, carm=carm,
                       exposure=exposure, seed=int(seed), window=window, subtracted=subtract is not None,
                       metadata={"method": method, "kev": kev, "kvp": technique.kvp, "anatomy": anatomy.name,
                                 "scatter_to_primary": facts.scatter_to_primary, "quanta_per_pixel": frame_quanta})
