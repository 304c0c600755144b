"""B-mode ultrasound of the anatomy through a probe, fast enough to follow a moving probe.

The method is a ray-based simulation from CT and labels, in the family of Wein et al. 2008
(reflection and transmission from acoustic impedance along each scan line, attenuation, shadowing)
and of the PLUS toolkit's simulator (per-tissue impedance, attenuation and diffuse backscatter):

1. **Per anatomy, once** (:func:`acoustic_maps`): each voxel's tissue class (``anatomy.tissue_map()``,
   one byte) and the direction of the impedance gradient (the local surface normal, three bytes),
   packed 4 bytes per voxel; per-class tables of ln(impedance), attenuation (dB/cm/MHz) and
   backscatter from the tissue table (clinical.md §5.3).
2. **Per frame, one pass along each scan line** (numba, parallel over lines): trilinear sampling of
   the class map; interfaces as runs of changing ln Z, each reflecting ``tanh(Δ ln Z / 2)`` (the
   exact ``(Z2 - Z1) / (Z2 + Z1)``, however many samples the voxelised interface spans) scaled by an
   angle term from the surface normal; the round trip loses ``1 - R`` at every interface and
   ``2 α f`` dB per cm, so shadows behind bone and air emerge from the physics; diffuse echoes are
   the local backscatter times a complex scatterer field fixed in tissue coordinates (hashed lattice
   noise, summed over the slice thickness; one independent field per compounded frame), so speckle
   stays put when the probe slides in plane and decorrelates when it moves out of plane; muscle
   and fat carry their septa (the walls of Voronoi cells: fascicles, lobules; specular, so brightest
   facing the beam), bone surfaces a slight unevenness, the cauda equina its rootlets. Both
   faces of a layer thinner than the label map can draw (fascia, dura) give one echo, not two. The
   transmission spreads sideways as it goes deeper (diffraction: an edge's penumbra grows as
   sqrt(wavelength x distance)), and the echoes are attenuated by it averaged across the transmit
   beam's width (neighbouring lines), so shadow edges are soft as with a real beam; bone is opaque
   (nothing shows beyond its cortex but the noise floor, reverberation clutter and, near a shadow's
   edge, the side lobes' clutter). Interface echoes are reached only by their own line's undiffracted
   transmission, not averaged across the beam: sound bent round a bone edge, or passing beside it in the
   transmit beam's flank, meets a surface behind it obliquely and is mirrored away, so nothing behind a
   lamina is drawn as if insonated.
3. **Point-spread function**: axial (the pulse-echo envelope, which ends with the pulse) and Gaussian
   lateral (beam width, depending on focus and depth) blur of each compounded frame's complex echo field in the beam domain; the
   frames' echo powers are averaged (spatial compounding: finer, less spread speckle), and the
   front end's noise, reverberation (a fraction of the echo at half the depth), diffuse reverberation
   clutter (a speckle-like haze trailing the echoes above, which fills shadows and fluid faintly) and,
   in shadows, side-lobe clutter (a fraction of the echo beside the line at the same depth) are added.
4. **Needle** (:func:`_needle_echoes`): analytic, from the needle geometry, composited on the cached
   tissue echo power: a specular shaft whose echo falls with the beam-to-shaft angle, reverberation (comet
   tail), the tip as a point reflector and a faint shadow; no re-tracing of the tissue. Under a probe that
   presses the skin in, the needle is drawn where the tissue around it is drawn (the same compression).
5. **Display**: gain and time-gain compensation, the noise of the stages after the TGC (so that
   shadows and fluid are dark but never exactly black), log compression over the dynamic range,
   then scan conversion (polar to Cartesian for curvilinear probes).

Bone's echo falls over tens of degrees with the angle between the beam and its surface (a rough surface's
lobe) and is placed on the bone's smoothed surface, not on the label map's voxel stairs; under it there is
nothing but the noise floor. The beam widens with depth past its focus and as the echoes' frequency falls
(downshift).

Not modelled: refraction and speed-of-sound errors (echoes sit at their true depth), side lobes
outside shadows, reverberation between tissue layers (only between an echo and the probe face), ring-down
under bone (a tail under every bone surface drew the glow the blind read rejected), the downshift's
lengthening of the pulse (only the beam's width follows it), the steering geometry of compounding
(interfaces seen from several angles), colour Doppler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
from numba import njit, prange
from scipy import ndimage, signal

from anatomy_models.errors import SpinesimError
from anatomy_models.tissues import BONE_TISSUES, tissue
from simulator.imaging.probe import GEL_MM, Probe
from simulator.needle.shaft import Needle

# --------------------------------------------------------------------------- model parameters [ED]
# Scatterer field: a lattice fixed in the patient (LPS mm) whose spacing is this many wavelengths
# (fine enough that the point-spread function, not the lattice, sets the speckle grain); each
# sample takes the random complex amplitude of its nearest lattice point, and the echo of one
# sample sums ELEVATION_PLANES lattice planes across the slice.
SPECKLE_LATTICE_WAVELENGTHS = 0.5
ELEVATION_PLANES = 4
# Spatial compounding, as scanners do by default (SonoCT, CrossBeam): the frame is the mean echo
# power of COMPOUND_FRAMES frames steered at different angles. Steering a few degrees decorrelates
# the speckle of the frames while the anatomy stays, so the log-compressed speckle's spread falls
# from 5.6 dB (one frame, fully developed speckle) toward 5.6 / sqrt(frames) dB. Modelled as
# independent scatterer realisations seen through the same beam; the steering's other effects
# (interfaces seen from several angles, the frame's trapezoid edges) are not.
COMPOUND_FRAMES = 2
# Echo level of diffuse backscatter 1.0 relative to a perfect plane reflector: soft-tissue speckle
# sits 30-40 dB below a bone surface on clinical images [ED].
DIFFUSE_REFERENCE_DB = -35.0
# Noise and clutter, so that no part of the field is empty [ED]: the receive chain after the TGC
# amplifier (beamformer, ADC) adds noise at a fixed level on the display, DISPLAY_NOISE_ABOVE_BLACK_DB
# above black whatever the gain (grey ~7 of 255 in a shadow at 55 dB range); the front end's thermal
# noise enters before the TGC, FRONT_END_NOISE_DB below a plane reflector, so it rises with depth (the
# TGC's 5.6 dB/cm at 3.5 MHz, 16 dB/cm at 10 MHz) and meets soft-tissue speckle near the probe's
# penetration depth (15 cm at 3.5 MHz, 5.3 cm at 10 MHz: the linear array's deep field turns grainy).
# Reverberation between a strong echo at depth d and the probe face returns at 2d: each sample
# gets REVERBERATION_DB of the echo power within REVERBERATION_SPREAD_MM of half its depth, weakened
# by the extra round trip, with the noise's own grain.
# Both noises are the receiver's thermal noise, which is white in the RF channels and passes the same
# receive filter and beamformer as the echoes: on the display it has the grain of speckle (a complex
# Gaussian field through the point-spread function, Rayleigh-distributed amplitude; Wagner et al., IEEE
# Trans Sonics Ultrason 1983; 30:156-163) [ED]. Its intensity is NOISE_STEADY of its mean everywhere plus
# that speckle-like rest, so that a shadow or fluid shows a faint grainy haze that never falls to black:
# its darkest grain (NOISE_STEADY of the mean, -1.2 dB) stays above black, its brightest 0.1 % reach grey
# ~15. A bone's acoustic shadow on a scanner is near black: bone reflects ~40 % of the incident power
# (muscle -> cortex, clinical.md §5.3) and absorbs the rest within a millimetre (15 dB/cm/MHz), so only
# the receiver's noise and a little reverberation remain, at the bottom of the display. (A white 1-2-1
# smoothed noise with half of it steady drew shadows as flat grey 18 +- 2; the speckle-like noise 4 dB
# above black, half of it steady, a grey speckle at 18 +- 6, which the sonographer's blind read took for
# tissue drawn under bone: "a constant floor".)
DISPLAY_NOISE_ABOVE_BLACK_DB = 1.5
NOISE_STEADY = 0.75
FRONT_END_NOISE_DB = -120.0
# The reverberation is weak and spread over a few mm (a haze, not a second copy of each line: a -40 dB
# copy spread over 2 mm drew doubled full-width fascia lines and a comb of dashes under bone on the
# lumbar views, which the blind read of the sonographer rejected).
REVERBERATION_DB = -50.0
REVERBERATION_SPREAD_MM = 4.0
# Interface echo = R * (angle term), the angle term mostly a lobe about the surface's normal with a floor, so
# that surfaces along the beam stay faintly visible (PLUS's bone preset splits its echo into specular and
# diffuse parts the same way, clinical.md §5.3 [S117]; a lobe plus a diffuse part is the Phong-like
# reflection of ray-based ultrasound simulators, Burger et al., IEEE Trans Med Imaging 2013; 32:609-618;
# Mattausch et al., Comput Graph Forum 2018; 37:202-213).
# Bone: the cortex is rough at the scale of the wavelength and above (periosteum, muscle and ligament
# insertions, vascular foramina), so its echo is that of a rough surface, not of a mirror: in the Kirchhoff
# (geometric optics) approximation a surface whose facets' slopes are Gaussian with rms slope s backscatters
# an intensity exp(-tan^2 angle / 2 s^2) / cos^4 angle (Beckmann and Spizzichino 1963; Ogilvy, Theory of
# Wave Scattering from Random Rough Surfaces, 1991, ch. 4): amplitude (1 + tan^2) exp(-tan^2 / 4 s^2). At
# s = BONE_RMS_SLOPE [ED] it falls over a few tens of degrees: -3 dB at 30 degrees, -12 dB at 45, -26 dB at
# 55, and from 60 degrees the sides along the beam fall to BONE_ROUGHNESS (-34 dB), the muscle's level: a
# surface is bright where it faces the probe and fades as it tilts away, and the walls of the spinous and
# articular processes, 60-90 degrees off, stay dark (a cap over a dark flank). A mirror's lobe (cos^8: -10 dB
# at 30 degrees, -24 dB at 45, -32 dB at 55) lit the laminae only at their apex, the sonographers' blind
# read's "shark fins"; at cos^3 the steep walls of the processes were drawn as bright as their tops (square
# "posts"); at 10 % roughness the sides drew box-shaped bone; at s = 0.45 (-5 dB at 45 degrees, -12 dB at
# 55) a surface's echo stood 24 dB over the muscle 45-60 degrees off the beam (grey 133-153 where it faced
# the probe at 196-221, paramedian and transverse views at 3.5 MHz), which log compression shows as nearly
# the same white: the stop-25 blind read's bone "capsules" of even brightness, "full brightness on 55 degree
# slopes". At 0.35 those slopes fall to grey 77-115, half way to the muscle (grey 37-47).
# Soft-tissue interfaces (fascia, ligament, dura) are large smooth sheets: their echo falls steeply with the
# angle (|cos|^SOFT_SPECULAR_EXPONENT; a sheet parallel to the beam, such as the thecal sac's lateral walls
# in a transverse view, returns only SOFT_ROUGHNESS of its reflection, -40 dB, and vanishes into the noise
# floor: the sac is a dark space with a bright roof and floor, not a ring). A smooth sheet is a mirror: its
# echo leaves the receive aperture (half angle atan(1 / 2 f-number), 9.5 degrees at f-number 3) once the
# sheet tilts by about half that, so the lobe is as steep as the septa's (cos^10 [ED]: -3 dB at 21 degrees,
# -20 dB at 40). At cos^4 (-12 dB at 45 degrees) the dura's round cross-section stayed lit to 60 degrees on
# either side and the voxel stairs' treads on its sides (normals leaning toward the beam) lit too: the sac a
# closed ring, the blind read's "crown" (a round sac's wall 70 degrees off the beam: grey 58, now 17, the
# noise floor 7). An interface counts as bone-like
# when its |Δ ln Z| exceeds BONE_LIKE_STEP (muscle -> cortex is 1.4, muscle -> ligament 0.09).
BONE_LIKE_STEP = 0.5
BONE_RMS_SLOPE, BONE_ROUGHNESS = 0.35, 0.02
SOFT_SPECULAR_EXPONENT, SOFT_ROUGHNESS = 10.0, 0.01
# Both faces of a layer thinner than this (mm) give one echo (their sum, at their centroid) [ED]:
# fascial planes, intermuscular septa, the dura and the posterior longitudinal ligament are sheets under
# a millimetre thick, which a 1-2 mm label map draws a voxel or two thick; traced face by face they
# gave two lines a voxel apart (doubled fascia, doubled complexes), which the sonographer's blind read
# rejected. A real thin sheet is one bright line.
THIN_LAYER_MM = 2.5
# Sub-voxel bone surfaces [ED]: the label map draws a sloping bone surface as stairs of whole voxels, whose
# treads face the probe (bright) and whose risers do not (dark): a staircase of dashes. The bone's surface
# is placed instead where its bone fraction, smoothed by a Gaussian of BONE_SURFACE_SIGMA voxels (which
# turns a one-voxel staircase into its mean slope) and interpolated trilinearly, crosses one half along
# the beam, when that lies within BONE_SURFACE_SNAP voxels of the voxelised interface's centroid (a plate
# thinner than the smoothing, whose fraction never reaches one half, keeps its centroid).
BONE_SURFACE_SIGMA = 1.0
BONE_SURFACE_SNAP = 1.5
# Bone is opaque [ED]: cortical bone's own attenuation (15 dB/cm/MHz, clinical.md §5.3) gives only
# 10 dB per mm round trip at 3.5 MHz, so a one-voxel cortex or a lamina the beam crosses obliquely
# let echoes show below it; scattering by the trabeculae, the inner cortical surfaces and mode
# conversion, which the line tracing does not follow, stop the rest. Bone classes attenuate this
# much instead (round trip > 100 dB per mm at 3.5 MHz): beyond the cortex only the noise floor and
# weak reverberation remain, whatever the angle of the surface (the angle term lowers the echo only;
# the transmission loss at the interface does not depend on it).
BONE_SHADOW_DB_PER_CM_MHZ = 150.0
# Diffraction behind an occluder [ED]: sound passing beside a bone edge spreads into its shadow; at a
# distance D behind the edge the penumbra is about a Fresnel zone wide, sqrt(wavelength D). The
# transmission is blurred across the lines as it goes deeper so that the penumbra's sigma is
# FRESNEL_SPREAD sqrt(wavelength D) (1.5 mm 20 mm below a bone edge at 3.5 MHz): shadows have soft
# edges that widen with depth, and a narrow one (a spinous process) fills in slowly beneath it, as on
# scanners; knife-edged, uniformly black shadows were the blind read's first giveaway.
FRESNEL_SPREAD = 0.5
# Side lobes and clutter [ED]: an array also hears, weakly, what lies beside its beam at the same
# depth. In a shadow, SIDE_LOBE_DB (power) of the echo power averaged across a triangle SIDE_LOBE_SPREAD
# lateral beam sigmas to either side (±3.3 mm at 3.5 MHz, ±1.2 mm at 10 MHz) is added, in proportion to
# how much darker the line's own transmission is than its neighbours': a shadow's edge fades into the
# dark over millimetres instead of at one line and the shadow beside lit tissue holds a faint haze
# (elsewhere the main lobe's echoes bury it: speckle and fluid are untouched).
SIDE_LOBE_DB = -12.0
SIDE_LOBE_SPREAD = 6.0
# The clutter is that of diffuse echoes: each sample's power counts at most SIDE_LOBE_CAP_DB above the
# diffuse reference level as attenuated to its depth (at the rate the automatic TGC makes up). A bone
# surface's specular echo, 25 dB above the speckle, otherwise smeared a bright glow from the laminae's lines
# into the shadow beside and below their steps (transverse views); with a cap fixed at the face's level,
# the deep lines (a vertebral body beside a lamina's shadow) passed under it and were drawn 5 mm into the
# shadow, the blind read's "structures inside shadows". The reference is a backscatter of 1.0; muscle and
# fat scatter 10-20 dB less, so the cap sits 15 dB under it: a line lends no more than the muscle beside it.
SIDE_LOBE_CAP_DB = -15.0
# Diffuse reverberation clutter: sound scattered back and forth between the layers above (fascia, fat
# septa, the bone surface) reaches the probe later than its direct echo, so each line carries an
# incoherent, speckle-like haze that trails the echoes above it. It is buried under the tissue's own
# echoes but fills shadows and fluid: in vivo its level is -30 to 0 dB of the tissue signal around an
# anechoic bladder (Lediju et al., Ultrason Imaging 2008; 30:151-168), its texture speckle-like (Byram and
# Shu, J Med Imaging 2016; 3:046005: speckle SNR 1.4), and it decays with depth below the layers that
# make it (Dahl and Sheth, Ultrasound Med Biol 2014; 40:714-726). Modelled as CLUTTER_DB (power) of the
# diffuse echo power above, averaged with an exponential memory of CLUTTER_TAIL_MM, with a speckle of its
# own through the point-spread function [ED within the published range]; it decays at the tissue's
# attenuation too (a late echo has travelled as far as a direct one from its depth), so the TGC does not
# lift it. Under a lamina the shadow holds a faint grainy haze 10-30 dB below the muscle above, fading
# deeper (at -18 dB the septa's bright echoes, which dominate the mean power, filled the fluid and shadows;
# -27 dB since the septa lie along the fibres and the skin, facing the beam more often).
CLUTTER_DB = -27.0
CLUTTER_TAIL_MM = 12.0
# The pulse-echo waveform, as Field II's examples build it (Jensen, Med Biol Eng Comput 1996; 34 suppl 1:
# 351-353): an excitation of EXCITATION_CYCLES cycles of the centre frequency through the transducer's
# impulse response, TRANSDUCER_CYCLES cycles of it weighted by a Hann window, once on transmit and once on
# receive. Its envelope lasts as long as the three together and ends there (1.3 mm of depth at 3.5 MHz,
# 0.45 mm at 10 MHz; FWHM 1.0 wavelength, 0.45 mm at 3.5 MHz): a bone surface is drawn as a line that
# thin even where its echo is 40-50 dB over the speckle and fills the display's range. (A Gaussian
# envelope of the same FWHM as a 3-cycle pulse's half length, 0.66 mm, has tails that log compression
# raises over the display's floor 1 mm either side: bone and the complexes were drawn as 1.5-3 mm thick
# bright capsules, the sonographers' blind read's "bone-bright pills".)
EXCITATION_CYCLES = 2.0
TRANSDUCER_CYCLES = 2.0
# Lateral beam: the two-way point-spread function is the product of the transmit beam's profile and the
# receive beam's (Szabo, Diagnostic Ultrasound Imaging: Inside Out, 2nd ed. 2014, ch. 7; for Gaussian
# profiles 1 / sigma^2 = 1 / sigma_t^2 + 1 / sigma_r^2), each one way of FWHM sqrt(2) x wavelength x
# f-number at its focus (so a beam focused alike on both ways is wavelength x f-number wide). Transmit: one
# fixed focus (``Probe.focus_mm``), f-number no smaller than TRANSMIT_F_NUMBER, Gaussian widening away from
# it (its Rayleigh range 9 mm at 3.5 MHz). Receive: focused dynamically at every depth with the aperture
# growing to f-number RECEIVE_F_NUMBER [ED: the usual setting of dynamic receive apertures, 1.5-2.5] up to
# the largest active aperture, ACTIVE_APERTURE_MM (a 60 mm convex array of 128-192 elements opens ~40 mm).
# A convex array's elements face outward along its radius R: an element hears a point only within its
# acceptance half angle (ELEMENT_ACCEPTANCE_DEG [ED]: an element 1-1.5 wavelengths wide is -6 dB at 20-30
# degrees, and the apodisation weights the outer ones down), so the elements that hear a point d deep span
# an arc of 2 R sin(acceptance) d / (R + d): a receive f-number (R + d) / (2 R sin(acceptance)) that grows with the
# depth (Szabo ch. 10, curved arrays). The beam, narrowest near the transmit focus, so widens past it as
# on a convex scanner's image, where the speckle coarsens with depth: lateral FWHM 1.6 mm at 20 mm, 2.3
# mm at 60 mm, 3.4 mm at 80 mm (3.5 MHz, 80 mm depth; with the downshift below). (A single receive
# f-number of 3 with the transmit beam's widening under a square root drew the speckle as fine at 20 mm as
# at 60 mm, "brushed", in the sonographer's blind read.)
TRANSMIT_F_NUMBER = 3.0
RECEIVE_F_NUMBER = 2.0
ACTIVE_APERTURE_MM = 40.0
ELEMENT_ACCEPTANCE_DEG = 17.5
# A convex array fires one line per element, ACQUIRED_LINES across its sector [ED: 128-192 element convex
# arrays], which the scan converter interpolates linearly to the display: at depth d the lines are (R + d)
# x the angle between them apart, and interpolation between them spreads the grain across by a triangle
# one spacing wide (variance spacing^2 / 6), 0.65 mm apart at 20 mm and 0.98 mm at 60 mm for 128 lines
# over 60 degrees: in a sector the grain widens with the line spacing. (A linear array's lines, one per
# 0.15-0.3 mm element, are finer than its beam.)
ACQUIRED_LINES = 128
# A convex array's sector darkens toward its edges: each line is transmitted from the elements centred on it,
# TRANSMIT_F_NUMBER x the focus depth wide, and the lines near the array's ends lose the part of that aperture
# that runs off the array (the outermost line half of it). The pressure at the focus is the sum of the
# elements' (Szabo 2014, ch. 6), so a line's echoes are as strong as the share of its transmit aperture on the
# array: -6 dB at the sector's edge, from 7.5 degrees inside it on the 60 degree preset. (The receive beamformer
# normalises its sum by the elements it uses, so its truncation widens the beam but keeps the echo's level.)
# Frequency downshift with depth: tissue attenuates the pulse's high frequencies more than its low ones,
# so the echoes from deep tissue are of a lower centre frequency (clinical.md §5.3: attenuation ~ linear in
# frequency) and the beam, whose width is wavelength x f-number, widens with them: the speckle coarsens
# with depth as on scanners (1.5 times coarser at 8 cm for a 3.5 MHz convex array). Pulses of 2-3 cycles
# have a -6 dB fractional bandwidth of about FRACTIONAL_BANDWIDTH [ED]; the shift is capped at
# MAX_DOWNSHIFT of the transmitted frequency (the spectrum's low end is cut by the transducer) [ED].
# Only the lateral width follows it; the axial pulse keeps its length (a single axial kernel per frame).
FRACTIONAL_BANDWIDTH = 0.6
MAX_DOWNSHIFT = 0.4
# Average soft tissue's one-way attenuation (dB/cm/MHz), between fat (0.7) and muscle (1.1) (clinical.md
# §5.3): the pulse's downshift with depth, a depth gain asked without a frame, and the automatic TGC where
# every line is in a shadow.
AUTO_TGC_DB_PER_CM_MHZ = 0.8
# Automatic TGC [ED]: a sonographer sets the TGC sliders, or the scanner's automatic optimisation sets them,
# so that the tissue's mean brightness is even from the skin to the depth set. The frame's gain at each
# depth makes up the round-trip loss of the lines that are lit there, their median, smoothed over
# TGC_SMOOTH_MM and never falling with depth; a line is lit where it has lost no more than soft tissue of
# the highest attenuation, ligament's (TGC_SOFT_TISSUE_DB_PER_CM_MHZ, clinical.md §5.3), plus
# TGC_INTERFACES_DB for the interfaces crossed: a bone's shadow is not made up (nor, where every line is
# in one, is more than average soft tissue's loss). (A fixed 0.8 dB/cm/MHz left a path of muscle, 1.1, and
# ligament, 1.6, 7-10 dB short by 7 cm at 3.5 MHz: the lit deep field half as bright as the muscle under
# the fat, the blind read's "deep field black everywhere".)
TGC_SOFT_TISSUE_DB_PER_CM_MHZ = 1.57
TGC_INTERFACES_DB = 6.0
TGC_SMOOTH_MM = 3.0
# ... and never so high that it lifts the front end's thermal noise (FRONT_END_NOISE_DB, before the TGC) to
# within TGC_NOISE_MARGIN_DB of black [ED]: a sonographer (or the automatic optimisation) turns the deep TGC
# down where the field shows only noise, so a bone's shadow stays dark. (Made up to the lit lines' loss alone,
# the paramedian sagittal view's gain reached 65 dB by 70 mm at 3.5 MHz, the noise 8 dB above black at its
# brightest: a grainy grey haze behind the laminae, 47 grey at the 99.9th percentile where 21 is the noise.)
TGC_NOISE_MARGIN_DB = 10.0
# ... and it makes up TGC_COMPENSATION of that loss, not all of it [ED]: TGC sliders are set by eye to an
# image that darkens gently toward the deep field, where the noise rises (the scanner's automatic
# optimisation aims at a uniform mean too, but from noisy, shadowed deep rows it settles short). With the
# whole loss made up, the soft tissue stood at grey ~60 from 15 to 80 mm deep, "flat gain with depth" in the
# sonographer's blind read; at 0.9 muscle 70 mm deep at 3.5 MHz (54 dB lost, 12 dB at 15 mm) is 4 dB (20 grey
# levels) under muscle 15 mm deep, on a display that keeps it well above the noise.
TGC_COMPENSATION = 0.9
# Gel layer (GEL_MM, from the probe module, which checks contact with it): air within this distance of
# the probe face, until the beam is fully in tissue, is coupling gel (a probe pressed on curved,
# voxelised skin); beyond it the probe has lost contact.
# The probe's face is pressed on the skin, which takes its shape: on a scanner the skin is the first bright
# line at the top of the image wherever the face touches, with no gel wedge between. The label map's skin
# is rigid and voxelised, so a face on a curved back leaves gaps of a few mm; on each line within GEL_MM
# of the skin the gap (found in steps of SKIN_STEP_MM) is closed by compressing the tissue under the face:
# sample depth d shows the tissue at d + gap (1 - d / SKIN_PRESS_DEPTH_MM) down to SKIN_PRESS_DEPTH_MM,
# as soft tissue indents most at the surface and not at all at depth [ED] (fat and muscle under a pressed
# probe thin by 10-30 %, the deep bone stays put). A black wedge of gel under one end of a convex face was
# the blind read's "skin not on the probe face". Attenuation follows the tissue crossed, not the depth.
SKIN_PRESS_DEPTH_MM = 25.0
SKIN_STEP_MM = 0.25
# Tissue textures [ED]: both are sheets of connective tissue around compartments that scatter less than
# the tissue table's mean. The compartments are the cells of a Voronoi tessellation (one seed per cell of
# a lattice, jittered within it), the septa its walls (within *_SEPTUM_MM of a wall); a septum is a smooth
# sheet, so its echo falls with the angle between the beam and its normal (cosine^SEPTUM_SPECULAR_EXPONENT
# plus SEPTUM_ROUGHNESS), as the fascia's does: walls facing the probe are bright lines, walls along the
# beam faint. The bulk scatters *_BULK of the table's amplitude, a septum up to bulk + *_SEPTA.
# Subcutaneous fat: hypoechoic lobules a few mm across, flattened against the skin of the back (thin along
# y), between thin echogenic septa that run roughly parallel to the skin and obliquely between lobules
# (Stecco's superficial fascia and lobules; the blind read called ridges of a smooth noise "worm tracks").
FAT_LOBULE_MM = (6.0, 2.5, 6.0)
FAT_SEPTUM_MM = 0.25
# Fat is hypoechoic, not anechoic: its lobules hold a fine speckle [ED] (bulk 0.25 x 0.55 of the diffuse
# reference, 5 dB under the muscle's bulk). At a bulk of 0.3 (10 dB under the muscle's) the lobules were
# near black (35 % of the fat's pixels within 4 grey of the display's floor on the sacral hiatus view) and
# the septa stood out as a net drawn on black, the sonographers' blind read's "net of polygon lines".
FAT_BULK, FAT_SEPTA = 0.55, 14.0
# Real septa are neither flat nor whole [ED]: they are thin, wavy sheets that thicken, thin and break off
# between lobules (retinacula cutis; Stecco's superficial fascia), so on a scan they are short, irregular,
# mostly skin-parallel bright lines of varying brightness, not the closed walls of a tessellation. The
# Voronoi coordinates are displaced by a smooth noise of FAT_SEPTUM_BEND_MM amplitude over
# FAT_SEPTUM_BEND_SCALE_MM (walls bend), and a septum's echo is scaled by a smooth noise on
# FAT_SEPTUM_PATCH_MM plus FAT_SEPTUM_PATCH_SHARE, cut at zero, as the muscle's perimysium is
# (MUSCLE_SEPTUM_PATCH_*): about three quarters of each wall shows, in pieces of a few mm of varying
# brightness. (Whole walls on near-black lobules: a third of the septa's bright pixels lay in pieces wider
# than 8 mm, a net; now a tenth, test_fat_is_fine_speckle_with_broken_wavy_septa_not_a_net.)
FAT_SEPTUM_BEND_MM, FAT_SEPTUM_BEND_SCALE_MM = 0.8, 3.0
FAT_SEPTUM_PATCH_MM = 2.0
FAT_SEPTUM_PATCH_SHARE = 0.2
# Muscle: fascicles of 1-3 mm wrapped in perimysium, running cranio-caudally (long along the fibre):
# a sagittal plane cuts the perimysium into long bright striations along the fibres, a transverse plane
# into a network whose walls facing the probe show as short bright dashes and dots in a hypoechoic,
# speckled field (the "starry night" of muscle in cross-section).
MUSCLE_FASCICLE_MM = (3.0, 2.5, 30.0)
MUSCLE_SEPTUM_MM = 0.15
MUSCLE_BULK, MUSCLE_SEPTA = 0.7, 1.5
# The perimysium is a smooth sheet, so its echo is specular and in phase along it, as a fascia's is, not
# speckle: a sheet facing the beam returns MUSCLE_SEPTUM_REFLECTION (amplitude, times the septa's angle
# term), continuous along the sheet, so a longitudinal view shows the parallel echogenic lines of the
# perimysium on hypoechoic fascicles (the local texture anisotropy of normal muscle, Dubois et al.,
# Ultrasound Med Biol 2018) and a transverse one short bright dashes. Drawn as speckle (the
# septa only raising the scatterers' amplitude), the lines broke into Rayleigh-distributed dashes a beam
# width long, a uniform cobblestone the sonographer's blind read called "like liver". The value [ED] puts
# a facing septum 10-20 dB over the muscle's bulk speckle (0.35 x 0.7 of the diffuse reference) and at most
# a fascia's echo (0.05). Fascicle bundles of a few mm (MUSCLE_FASCICLE_MM) [ED]: at 2 x 1.2 mm the septa
# were closer than the 3.5 MHz beam resolves and merged with the speckle.
MUSCLE_SEPTUM_REFLECTION = 0.04
# A septum's echo varies along it (the sheet thickens, thins, carries fat, bends): its amplitude is scaled
# by a smooth noise on MUSCLE_SEPTUM_PATCH_MM plus MUSCLE_SEPTUM_PATCH_SHARE, cut at zero, so the lines are
# broken into striations of a few mm to a centimetre, of varying brightness [ED] (uniform, they were
# drawn as ruled lines across the whole muscle).
MUSCLE_SEPTUM_PATCH_MM = 5.0
MUSCLE_SEPTUM_PATCH_SHARE = 0.4
# The septa's lobe is steep (cos^10 [ED]: -3 dB at 21 degrees, -20 dB at 40): at cos^4 the walls at 45
# degrees were drawn half as bright as those facing the probe, and the tessellation showed whole, a
# honeycomb in the linear probe's muscle and an X of crossing lines in the fat, which the sonographers'
# blind read singled out; a sheet's echo leaves the receive aperture within a few degrees, as bone's does.
SEPTUM_SPECULAR_EXPONENT, SEPTUM_ROUGHNESS = 10.0, 0.1
# The erector spinae's fascicles run cranio-caudally but not parallel to the skin: they are tilted
# toward it by this pennation angle [ED], so their striations slope gently on sagittal views.
PENNATION_DEG = 10.0
PENNATION_COS, PENNATION_SIN = math.cos(math.radians(PENNATION_DEG)), math.sin(math.radians(PENNATION_DEG))
# Cauda equina: rootlets of 1-2 mm running cranio-caudally in the CSF, a few mm apart [ED]: strands
# where two smooth noises on this lattice both cross zero (within ROOTLET_WIDTH); between them the
# sac is near anechoic (ROOTLET_BULK), on them brighter (bulk + ROOTLET_STRANDS): a rootlet scatters as its
# surface against the CSF does (_SUBVOXEL_CLASSES, against muscle's 0.35 x 0.7 to 0.35 x 3.7 with its septa),
# faint dots and strands in a black sac. (At 12 the strands were 27 dB over the muscle's bulk, drawn
# as bright as a lamina: the blind read's "bone under bone" in the paramedian sagittal oblique view, and a
# sac that was not anechoic.)
ROOTLET_LATTICE_MM = (2.0, 2.0, 20.0)
ROOTLET_WIDTH = 0.25
ROOTLET_BULK, ROOTLET_STRANDS = 0.05, 1.0
# A bony surface is not a uniform line [ED]: its cortex is slightly uneven at the scale of a millimetre or
# two, so its echo varies along it by a factor exp(+-BONE_RIPPLE) (+-3 dB) over BONE_RIPPLE_MM, on top of
# the angle term (brightest where the surface faces the probe).
BONE_RIPPLE, BONE_RIPPLE_MM = 0.35, 1.5
# Hydrodissection: where an injection's contrast is at least this concentration (mg iodine/mL; the
# media are 200-300 mg/mL, so a voxel this rich is mostly injectate), the tissue is replaced by fluid
# (water's acoustics: anechoic, no attenuation), so the injected volume is a dark pocket [ED].
FLUID_MIN_MG_PER_ML = 20.0
# Needle: specular acceptance (the echo falls as exp(-(angle/acceptance)^2) with the angle between the
# beam and the shaft's normal), the rough part that stays at any angle, the tip as a point reflector,
# and the comet tail (echo ratio per reverberation inside the shaft, number of echoes).
NEEDLE_ACCEPTANCE_DEG = 25.0
NEEDLE_ROUGHNESS = 0.05
NEEDLE_TIP_REFLECTION = 0.5
COMET_TAIL_RATIO = 0.3
COMET_TAIL_ECHOES = 4
NEEDLE_SHADOW = 0.3

_TEXTURE = {"muscle": 1, "fat": 2, "cauda_equina": 3}
# Classes the renderer adds (_acoustic_classes), each from the label of that name: (tissue whose
# impedance and attenuation they take, diffuse backscatter before their texture). The epidural fat is
# a thin, loose pad of fat lobules between the ligamentum flavum and the dura, hypoechoic and without
# the subcutaneous fat's septa [ED]: drawn as fat with its septa, the interlaminar window held a
# bright, tiled rectangle between the laminae' shadows (the blind read's "window patch").
# The rootlets' echo is that of their surfaces against the CSF, not of the hypoechoic nerve's inside (the
# tissue table's): nerve 1.62 MRayl against CSF's 1.48 reflects 0.046 in pressure, as a muscle's perimysium
# does (MUSCLE_SEPTUM_REFLECTION), so a strand scatters as the muscle's speckle does, 0.35 [ED]: faint strands
# no brighter than the muscle's grain (at 0.45 they echoed 53-132 grey 48-51 mm deep, as bright as the dura,
# once the automatic TGC made up the deep field's loss; at the nerve's 0.135 they vanished).
_SUBVOXEL_CLASSES = {"cauda_equina": ("csf", 0.35), "epidural_space": ("fat", 0.1)}
# Diffuse backscatter dropped where a tissue is a membrane far thinner than a CT voxel [ED]: the lumbar dura
# is ~0.3-0.5 mm thick and echoes at its surfaces, which the interfaces give; the tissue table's diffuse
# backscatter, spread over a whole voxel shell, would draw it as a bright ring whatever the beam's angle.
# (The other tissues' echogenicity, hypoechoic nerve and disc, a moderately echoic ligament, is the tissue
# table's, with its sources.)
_MEMBRANES = frozenset({"dura"})
# Impedance taken from another tissue where the label map draws a sharp boundary that the body does not
# have: the adult disc's nucleus blends into the annulus over millimetres (its lamellae loosen inward; the
# boundary grows less distinct with age, Adams and Roughley, Spine 2006; 31:2151-2161), so it returns no
# specular echo. Drawn as a sheet (reflection 0.04), the label boundary put a third bright dash 4 mm behind
# the anterior complex through the interlaminar window, a rung of the blind read's "dash ladder" [ED]. The
# nucleus keeps its own attenuation and (lower) backscatter.
_IMPEDANCE_OF = {"disc_nucleus": "disc_annulus"}
# How many probe settings' scan geometries and poses' tissue frames an anatomy keeps (each kind).
_FRAME_CACHE_SIZE = 4


# --------------------------------------------------------------------------- per-anatomy maps
@dataclass(eq=False)
class AcousticMaps:
    """Acoustic description of one anatomy, computed once (see :func:`acoustic_maps`).

    Attributes
    ----------
    voxels : ndarray (ni, nj, nk, 5) int8
        Per voxel of the body's bounding box: tissue class, the unit impedance-gradient direction
        (x, y, z in LPS) times 127, and the smoothed bone fraction times 127 (see :func:`_surface_normals`).
    world_to_index : ndarray (3, 4)
        LPS mm -> fractional (i, j, k) index into ``voxels``.
    names : list of str
        Tissue class names; index ``len(names)`` is the coupling gel (water).
    ln_impedance, attenuation_db_per_cm_mhz, backscatter : ndarray float32 (classes + 1,)
        Per-class ln(Z / MRayl), attenuation and diffuse backscatter amplitude (tissue table; bone
        attenuates at least ``BONE_SHADOW_DB_PER_CM_MHZ``).
    texture : ndarray int8
        Per-class texture: 0 none, 1 muscle fibres, 2 fat septa.
    """

    voxels: np.ndarray
    world_to_index: np.ndarray
    names: list[str]
    ln_impedance: np.ndarray
    attenuation_db_per_cm_mhz: np.ndarray
    backscatter: np.ndarray
    texture: np.ndarray

    @property
    def air(self) -> int:
        return self.names.index("air") if "air" in self.names else -1

    @property
    def gel(self) -> int:
        return len(self.names)


def acoustic_maps(anatomy) -> AcousticMaps:
    """The :class:`AcousticMaps` of ``anatomy``, computed on first use and held by it (``anatomy.derived``)."""
    return anatomy.derived("ultrasound.maps", lambda: _compute_maps(anatomy))


def _compute_maps(anatomy) -> AcousticMaps:
    classes, names = _acoustic_classes(anatomy)
    # The classes the label map cannot draw at their scale (see _acoustic_classes) take the acoustics
    # of what surrounds them, so that they add no interfaces of their own, and a backscatter of their own.
    properties = [tissue(_SUBVOXEL_CLASSES[name][0] if name in _SUBVOXEL_CLASSES else name) for name in names]
    properties.append(tissue("water"))
    ln_z = np.log([tissue(_IMPEDANCE_OF[t.name]).impedance_mrayl if t.name in _IMPEDANCE_OF else t.impedance_mrayl
                   for t in properties]).astype(np.float32)
    attenuation = np.array([max(t.attenuation_db_per_cm_mhz, BONE_SHADOW_DB_PER_CM_MHZ) if t.name in BONE_TISSUES
                            else t.attenuation_db_per_cm_mhz for t in properties], dtype=np.float32)
    backscatter = np.array([_SUBVOXEL_CLASSES[name][1] if name in _SUBVOXEL_CLASSES
                            else 0.0 if t.name in _MEMBRANES else t.backscatter
                            for name, t in zip(names + ["gel"], properties)], dtype=np.float32)
    texture = np.array([_TEXTURE.get(name, 0) for name in names] + [0], dtype=np.int8)
    # Only the body's bounding box (plus a voxel) is kept: CT air around a patient costs nothing then.
    air = names.index("air") if "air" in names else -1
    body = classes != air
    if not body.any():
        raise SpinesimError("the anatomy holds no tissue (every voxel is air)", hint="check the CT's HU scaling")
    extent = [np.flatnonzero(body.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    del body
    lower = np.array([max(int(e[0]) - 1, 0) for e in extent])
    upper = np.array([min(int(e[-1]) + 2, n) for e, n in zip(extent, classes.shape)])
    cropped = classes[tuple(slice(a, b) for a, b in zip(lower, upper))]
    voxels = np.empty(cropped.shape + (5,), dtype=np.int8)
    voxels[..., 0] = cropped
    is_bone = np.array([t.name in BONE_TISSUES for t in properties])
    _surface_normals(cropped, ln_z, is_bone, np.linalg.inv(anatomy.ct.affine[:3, :3]).astype(np.float32), voxels)
    world_to_index = np.linalg.inv(anatomy.ct.affine)[:3]
    world_to_index[:, 3] -= lower
    return AcousticMaps(voxels, world_to_index, list(names), ln_z, attenuation, backscatter, texture)


def _acoustic_classes(anatomy) -> tuple[np.ndarray, list[str]]:
    """The anatomy's tissue map, the labels named in ``_SUBVOXEL_CLASSES`` given classes of their own
    (appended to the names).

    The roots inside the dural sac are a bundle of 1-2 mm strands floating in CSF, which a 1-2 mm
    label map draws as one mass: traced as nerve it gave a grey blob with an outline. Its class takes
    CSF's acoustics and the rootlet texture (faint dots on transverse views, linear echoes on sagittal
    ones, the sac anechoic between them). The epidural fat keeps fat's acoustics but scatters less.
    """
    classes, names = anatomy.tissue_map()
    names = list(names)
    if anatomy.labels is None:
        return classes, names
    for name in _SUBVOXEL_CLASSES:
        ids = [label.id for label in anatomy.label_table if label.name == name]
        found = np.isin(anatomy.labels.array, ids) if ids else np.zeros(1, bool)
        if found.any():
            classes = np.where(found, np.uint8(len(names)), classes)
            names.append(name)
    return classes, names


# Normals are computed in slabs of this many index planes (plus a margin for the smoothing), so that
# a 1 mm CT needs tens of MB of scratch, not GB.
_NORMAL_SLAB = 32
_NORMAL_MARGIN = 5


def _surface_normals(classes: np.ndarray, ln_z: np.ndarray, is_bone: np.ndarray, index_to_world_inverse: np.ndarray,
                     voxels: np.ndarray) -> None:
    """Write the unit gradient of the slightly smoothed ln Z (LPS directions, times 127) of the class
    map ``classes`` into ``voxels[..., 1:4]`` and its smoothed bone fraction (``is_bone`` per class,
    Gaussian ``BONE_SURFACE_SIGMA`` voxels; times 127) into ``voxels[..., 4]``; ``index_to_world_inverse``
    turns index-space gradients into LPS ones."""
    n = classes.shape[0]
    for start in range(0, n, _NORMAL_SLAB):
        stop = min(start + _NORMAL_SLAB, n)
        low, high = max(start - _NORMAL_MARGIN, 0), min(stop + _NORMAL_MARGIN, n)
        smooth = ndimage.gaussian_filter(ln_z[classes[low:high]], sigma=1.0)
        gradient = np.stack(np.gradient(smooth), axis=-1)[start - low:stop - low] @ index_to_world_inverse
        norm = np.linalg.norm(gradient, axis=-1, keepdims=True)
        voxels[start:stop, ..., 1:4] = np.rint(gradient * (127.0 / np.maximum(norm, 1e-6))).astype(np.int8)
        fraction = ndimage.gaussian_filter(is_bone[classes[low:high]].astype(np.float32), sigma=BONE_SURFACE_SIGMA)
        voxels[start:stop, ..., 4] = np.rint(127.0 * fraction[start - low:stop - low]).astype(np.int8)


# --------------------------------------------------------------------------- beam geometry
@dataclass(frozen=True, eq=False)
class _Scan:
    """A probe's scan geometry in its own plane (u along the array, v along the central beam, mm;
    the face centre at the origin) and its point-spread function: everything but the pose."""

    line_origins: np.ndarray  # (L, 2) (u, v) mm where each scan line leaves the face
    line_directions: np.ndarray  # (L, 2) unit (u, v)
    sample_mm: float  # distance between samples along a line
    samples: int
    pixel_line: np.ndarray  # (rows, cols) float32 fractional line index, -1 outside the field
    pixel_sample: np.ndarray  # (rows, cols) float32 fractional sample index
    pixel_mm: float
    first_pixel: tuple[float, float]  # (u, v) mm of the centre of pixel (0, 0)
    lateral_sigma_mm: np.ndarray  # (M,) two-way point-spread sigmas
    elevation_sigma_mm: np.ndarray  # (M,)
    axial_kernel: np.ndarray  # along a line, peak 1
    lateral_weights: np.ndarray  # (2 reach + 1, M) unit-sum Gaussian across lines at each depth (contiguous in M)
    lateral_rows: np.ndarray  # (2 reach + 1, 2) first and last + 1 sample where each offset has weight
    diffuse_scale: np.ndarray  # (M,) keeps independent scatterers at unit variance through both kernels
    diffraction_weights: np.ndarray  # (M,) side weight of the 3-tap blur of the transmission per sample
    diffraction_substeps: np.ndarray  # (M,) int, passes of it per sample
    side_lobe_lines: np.ndarray  # (M,) int, half width of the side-lobe clutter's triangle across lines
    noise: np.ndarray  # (L, M) float32 unit-mean fluctuation of the receive noise (see _receive_noise)
    line_gain: np.ndarray  # (L,) float32 echo amplitude of each line's truncated transmit aperture (_line_gains)


def _scan_for(anatomy, probe: Probe) -> _Scan:
    """The probe's :class:`_Scan`, kept by the anatomy it scans for the last few settings."""
    return anatomy.derived.recent("ultrasound.scans", probe.scan_key, lambda: _scan(probe), keep=_FRAME_CACHE_SIZE)


def _scan(probe: Probe) -> _Scan:
    rows, cols = probe.image_shape
    lines = cols
    depth = probe.depth_mm
    sample_mm = depth / rows
    depths = (np.arange(rows) + 0.5) * sample_mm
    if probe.kind == "linear":
        width = probe.footprint_mm
        spacing = width / lines
        offsets = (np.arange(lines) + 0.5 - lines / 2) * spacing
        line_origins = np.stack([offsets, np.zeros(lines)], axis=1)
        line_directions = np.repeat([[0.0, 1.0]], lines, axis=0)
        line_spacing = np.full(rows, spacing)
        top_mm = 0.0
    else:
        radius = probe.radius_mm
        half = np.radians(probe.field_of_view_deg) / 2
        width = 2 * (radius + depth) * np.sin(half)
        step = 2 * half / lines
        angles = (np.arange(lines) + 0.5 - lines / 2) * step
        line_directions = np.stack([np.sin(angles), np.cos(angles)], axis=1)
        line_origins = radius * line_directions - [0.0, radius]   # the apex is radius behind the face
        line_spacing = (radius + depths) * step
        # The convex face touches the skin at its centre; its edges sit top_mm behind that, so the
        # image starts there (row 0) and the face centre is at v = 0.
        top_mm = radius * (1.0 - np.cos(half))
    # The field of view is scaled to fill the frame in its limiting dimension, and the image is cut
    # to the field of view's extent in the other, so that its aspect follows depth x width as on a
    # scanner's monitor: no black band below a wide sector, none beside a deep rectangle.
    pixel_mm = max((depth + top_mm) / rows, width / cols)
    shown_rows = min(rows, round((depth + top_mm) / pixel_mm))
    shown_cols = min(cols, round(width / pixel_mm))
    u = ((np.arange(shown_cols) + 0.5 - shown_cols / 2) * pixel_mm)[None, :]
    v = ((np.arange(shown_rows) + 0.5) * pixel_mm - top_mm)[:, None]
    line, distance, _ = _line_through(probe, *np.broadcast_arrays(u, v))
    sample = distance / sample_mm - 0.5
    inside = (np.abs(line + 0.5 - lines / 2) <= lines / 2) & (distance >= 0) & (distance <= depth)
    lateral_sigma, elevation_sigma = _beam_widths(probe, depths)
    axial_kernel = _axial_kernel(probe.wavelength_mm, sample_mm)
    lateral_weights = _lateral_kernels(np.maximum(lateral_sigma / line_spacing, 0.6), lines)
    diffuse_scale = 1.0 / np.sqrt(np.sum(axial_kernel**2) * np.sum(lateral_weights**2, axis=1))
    used = lateral_weights > 0
    lateral_rows = np.stack([used.argmax(axis=0), rows - used[::-1].argmax(axis=0)], axis=1).astype(np.int64)
    lateral_rows[~used.any(axis=0)] = 0
    weights, substeps = _diffraction_steps(probe.wavelength_mm, sample_mm, line_spacing)
    lateral_weights = np.ascontiguousarray(lateral_weights.T, dtype=np.float32)
    return _Scan(line_origins, line_directions, sample_mm, rows,
                 np.where(inside, line, -1.0).astype(np.float32),
                 np.broadcast_to(sample, (shown_rows, shown_cols)).astype(np.float32),
                 pixel_mm, (float(u[0, 0]), float(v[0, 0])), lateral_sigma, elevation_sigma,
                 axial_kernel, lateral_weights, lateral_rows, diffuse_scale, weights, substeps,
                 np.maximum(np.rint(2.0 * SIDE_LOBE_SPREAD * lateral_sigma / line_spacing), 2).astype(np.int64),
                 _receive_noise(axial_kernel, lateral_weights, lateral_rows, lines), _line_gains(probe, lines))


def _line_gains(probe: Probe, lines: int) -> np.ndarray:
    """Echo amplitude of each of ``lines`` scan lines: 1, or, on a convex array, the share of its transmit
    aperture (``TRANSMIT_F_NUMBER`` x focus wide, centred on the line) that lies on the array's arc.

    >>> from simulator.imaging.probe import Probe
    >>> convex = Probe("curvilinear", position=[0, 0, 0], axial=[0, -1, 0], lateral=[1, 0, 0], depth_mm=80.0)
    >>> [round(float(g), 2) for g in _line_gains(convex, 512)[[0, 32, 64, 256]]]   # 16 mm aperture, 62.8 mm arc
    [0.5, 0.75, 0.99, 1.0]
    """
    if probe.kind != "curvilinear":
        return np.ones(lines, dtype=np.float32)
    arc = probe.radius_mm * math.radians(probe.field_of_view_deg)
    aperture = probe.focus_mm / max(TRANSMIT_F_NUMBER, probe.focus_mm / ACTIVE_APERTURE_MM)
    centres = (np.arange(lines) + 0.5 - lines / 2) * arc / lines
    on_array = np.minimum(centres + aperture / 2, arc / 2) - np.maximum(centres - aperture / 2, -arc / 2)
    return (on_array / aperture).astype(np.float32)


def _diffraction_steps(wavelength_mm: float, sample_mm: float,
                       line_spacing_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Side weights and passes of the 3-tap blur :func:`_diffracted_transmission` applies at each
    sample: its variance (``2 w`` line spacings squared per pass) adds ``FRESNEL_SPREAD**2 * wavelength
    * sample_mm`` mm^2 per sample, so an edge's penumbra behind it grows as ``FRESNEL_SPREAD *
    sqrt(wavelength * distance)``; passes of at most ``w = 0.25`` keep the kernel smooth."""
    variance_lines = FRESNEL_SPREAD**2 * wavelength_mm * sample_mm / np.asarray(line_spacing_mm) ** 2
    substeps = np.maximum(np.ceil(variance_lines / 0.5), 1).astype(np.int64)
    return variance_lines / (2.0 * substeps), substeps


def _lateral_kernels(sigmas: np.ndarray, lines: int) -> np.ndarray:
    """Unit-sum Gaussian kernels across lines, one row per depth (sigmas in line spacings), cut at 2.5
    sigma (the amplitude there is 4 % of the peak, -27 dB)."""
    widths = np.minimum((2.5 * sigmas).astype(int) + 1, lines - 1)
    offsets = np.arange(-widths.max(), widths.max() + 1)
    weights = np.exp(-0.5 * (offsets[None, :] / sigmas[:, None]) ** 2) * (np.abs(offsets)[None, :] <= widths[:, None])
    return weights / weights.sum(axis=1, keepdims=True)


def _line_through(probe: Probe, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scan line through in-plane points (u along the array, v along the central beam, mm from the
    face centre): its fractional index (``image_shape[1]`` lines across the footprint or the sector),
    the point's distance from the face along it (mm) and its unit direction (..., 2) in (u, v)."""
    lines = probe.image_shape[1]
    if probe.kind == "linear":
        direction = np.stack(np.broadcast_arrays(0.0, 1.0 + 0.0 * v), axis=-1)
        return u / (probe.footprint_mm / lines) + lines / 2 - 0.5, v, direction
    radius = probe.radius_mm
    theta = np.arctan2(u, v + radius)
    step = np.radians(probe.field_of_view_deg) / lines
    return (theta / step + lines / 2 - 0.5, np.hypot(u, v + radius) - radius,
            np.stack([np.sin(theta), np.cos(theta)], axis=-1))


def _scan_lines(probe: Probe, scan: _Scan) -> tuple[np.ndarray, np.ndarray]:
    """LPS origins and unit directions (L, 3) of the probe's scan lines in its current pose."""
    frame = np.stack([probe.lateral, probe.axial])  # (u, v) -> LPS
    return probe.position + scan.line_origins @ frame, np.ascontiguousarray(scan.line_directions @ frame)


@cache
def _pulse_echo_envelope() -> tuple[np.ndarray, np.ndarray]:
    """The pulse-echo waveform's envelope (``EXCITATION_CYCLES``, ``TRANSDUCER_CYCLES``): depths (in
    wavelengths, 0 at its peak; an echo's delay of one period is half a wavelength of depth) and the
    envelope (peak 1, the magnitude of the analytic signal), on a fine grid that spans its support."""
    per_cycle = 256
    excitation = np.sin(2.0 * np.pi * np.arange(round(EXCITATION_CYCLES * per_cycle)) / per_cycle)
    taps = round(TRANSDUCER_CYCLES * per_cycle)
    impulse = np.sin(2.0 * np.pi * np.arange(taps) / per_cycle) * np.hanning(taps)
    waveform = np.convolve(np.convolve(excitation, impulse), impulse)
    envelope = np.abs(signal.hilbert(np.pad(waveform, len(waveform))))[len(waveform):2 * len(waveform)]
    depths = (np.arange(len(envelope)) - np.argmax(envelope)) / per_cycle / 2.0
    return depths, envelope / envelope.max()


def _pulse_fwhm_wavelengths() -> float:
    """Full width at half maximum of the pulse-echo envelope, in wavelengths of depth.

    >>> round(_pulse_fwhm_wavelengths(), 2)        # 0.45 mm at 3.5 MHz
    1.03
    """
    depths, envelope = _pulse_echo_envelope()
    above = depths[envelope >= 0.5]
    return float(above[-1] - above[0])


def _axial_kernel(wavelength_mm: float, sample_mm: float) -> np.ndarray:
    """The pulse-echo envelope sampled along a line (peak 1 at the middle tap), over its whole support.
    Where the samples are too coarse to draw it (FWHM under 1.6 samples) it is stretched to that width, so
    that an echo between two samples keeps its amplitude (it is deposited on both) and the speckle stays
    resolved (at 1.4 samples the display's interpolation between samples averaged a single frame's
    speckle spread down from 5.6 to 4.6 dB; at 2 a coarse frame's bone line was longer than the pulse).

    >>> np.round(_axial_kernel(0.44, 0.156), 2).tolist()     # 3.5 MHz, a 512-sample line 80 mm deep
    [0.0, 0.01, 0.22, 0.75, 1.0, 0.75, 0.22, 0.01, 0.0]
    """
    depths, envelope = _pulse_echo_envelope()
    scale = wavelength_mm * max(1.0, 1.6 * sample_mm / (_pulse_fwhm_wavelengths() * wavelength_mm))
    reach = int(math.floor(max(-depths[0], depths[-1]) * scale / sample_mm))
    return np.interp(np.arange(-reach, reach + 1) * sample_mm / scale, depths, envelope, left=0.0, right=0.0)


def _fwhm_to_sigma(fwhm: np.ndarray | float) -> np.ndarray | float:
    return fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def _beam_widths(probe: Probe, depths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-way Gaussian sigmas (mm) of the point-spread function across the beam: lateral(depth),
    elevation(depth) (along it, the pulse-echo envelope: :func:`_axial_kernel`).

    Lateral: the product of the transmit beam (fixed focus) and the dynamically focused receive beam,
    whose aperture a convex array's acceptance limits (``RECEIVE_F_NUMBER``, ``ELEMENT_ACCEPTANCE_DEG``),
    both at the echoes' downshifted wavelength, plus a convex array's interpolation between its
    ``ACQUIRED_LINES``. Elevation: the fixed lens, focused at ``elevation_focus_mm`` with
    ``elevation_f_number``.

    >>> from simulator.imaging.probe import Probe
    >>> convex = Probe("curvilinear", position=[0, 0, 0], axial=[0, -1, 0], lateral=[1, 0, 0], depth_mm=80.0)
    >>> lateral, _ = _beam_widths(convex, np.array([20.0, 48.0, 60.0, 80.0]))
    >>> np.round(2.3548 * lateral, 1).tolist()          # FWHM (mm), widening past the focus (48 mm)
    [1.6, 1.7, 2.3, 3.4]
    """
    depths = np.maximum(depths, 1e-3)
    # The echoes' own wavelength grows with depth (downshift), and the beam's width with it.
    wavelength = probe.wavelength_mm * probe.frequency_mhz / received_frequency_mhz(probe.frequency_mhz, depths)
    receive_f = np.maximum(RECEIVE_F_NUMBER, depths / ACTIVE_APERTURE_MM)
    if probe.kind == "curvilinear":
        radius = probe.radius_mm
        acceptance = math.sin(math.radians(ELEMENT_ACCEPTANCE_DEG))
        receive_f = np.maximum(receive_f, (radius + depths) / (2.0 * radius * acceptance))
    receive = math.sqrt(2.0) * _fwhm_to_sigma(wavelength * receive_f)
    transmit_f = max(TRANSMIT_F_NUMBER, probe.focus_mm / ACTIVE_APERTURE_MM)
    transmit = math.sqrt(2.0) * _gaussian_beam_sigma(probe.wavelength_mm, transmit_f, probe.focus_mm, depths)
    lateral = receive * transmit / np.sqrt(receive**2 + transmit**2)
    if probe.kind == "curvilinear":
        spacing = (probe.radius_mm + depths) * math.radians(probe.field_of_view_deg) / ACQUIRED_LINES
        lateral = np.sqrt(lateral**2 + spacing**2 / 6.0)
    elevation = _gaussian_beam_sigma(probe.wavelength_mm, probe.elevation_f_number, probe.elevation_focus_mm,
                                     depths) / math.sqrt(2.0)
    return lateral, elevation


def received_frequency_mhz(frequency_mhz: float, depths_mm: np.ndarray) -> np.ndarray:
    """Centre frequency (MHz) of the echoes from each depth: a pulse of Gaussian spectrum (amplitude sigma
    ``sigma_f``, from the -6 dB ``FRACTIONAL_BANDWIDTH``) through a round trip of attenuation linear in
    frequency (``AUTO_TGC_DB_PER_CM_MHZ``, the soft tissue's mean) keeps its Gaussian shape, its centre
    lowered by ``beta sigma_f^2`` (beta the round trip's attenuation in nepers per MHz; Narayana and Ophir,
    Ultrason Imaging 1983; 5:17-21), at most by ``MAX_DOWNSHIFT`` of the transmitted frequency.

    >>> [round(float(f), 2) for f in received_frequency_mhz(3.5, np.array([0.0, 40.0, 80.0]))]
    [3.5, 2.91, 2.33]
    """
    sigma_f = FRACTIONAL_BANDWIDTH * frequency_mhz / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    beta = 2.0 * AUTO_TGC_DB_PER_CM_MHZ / (20.0 / math.log(10.0)) * np.asarray(depths_mm) / 10.0
    return np.maximum(frequency_mhz - beta * sigma_f**2, (1.0 - MAX_DOWNSHIFT) * frequency_mhz)


def _gaussian_beam_sigma(wavelength: float, f_number: float, focus: float, depths: np.ndarray) -> np.ndarray:
    """Sigma (mm) of a Gaussian beam with waist FWHM ``wavelength * f_number`` at depth ``focus``."""
    waist_fwhm = wavelength * f_number
    waist_radius = waist_fwhm / math.sqrt(2.0 * math.log(2.0))  # 1/e^2 intensity radius
    rayleigh = math.pi * waist_radius**2 / wavelength
    return _fwhm_to_sigma(waist_fwhm) * np.sqrt(1.0 + ((depths - focus) / rayleigh) ** 2)


# --------------------------------------------------------------------------- kernels
# The line tracing and the point-spread passes (three compounded frames each) run in parallel over
# lines; the rest take a millisecond or less on one core, less than starting a parallel region costs
# on a busy two-core machine (benchmarks/bench_ultrasound.py).
@njit(cache=True)
def _hash(ix, iy, iz, salt):
    z = (np.uint64(salt) + np.uint64(ix) * np.uint64(0x9E3779B97F4A7C15)
         + np.uint64(iy) * np.uint64(0xC2B2AE3D27D4EB4F) + np.uint64(iz) * np.uint64(0x165667B19E3779F9))
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _unit_from_bits(h, shift):
    return np.float64((h >> np.uint64(shift)) & np.uint64(0xFFFFFF)) * (2.0 / 16777216.0) - 1.0


@njit(cache=True)
def _cell(x, y, z):
    """The lattice cell holding (x, y, z): its lower corner (int64) and the fractions inside it."""
    x0 = math.floor(x)
    y0 = math.floor(y)
    z0 = math.floor(z)
    return np.int64(x0), np.int64(y0), np.int64(z0), x - x0, y - y0, z - z0


@njit(cache=True)
def _lattice_noise(x, y, z, salt):
    """Trilinear interpolation of a complex white lattice (lattice units); components in [-1, 1]."""
    ix, iy, iz, fx, fy, fz = _cell(x, y, z)
    real = 0.0
    imag = 0.0
    for corner in range(8):
        dx = corner & 1
        dy = (corner >> 1) & 1
        dz = (corner >> 2) & 1
        w = (fx if dx else 1.0 - fx) * (fy if dy else 1.0 - fy) * (fz if dz else 1.0 - fz)
        h = _hash(ix + dx, iy + dy, iz + dz, salt)
        real += w * _unit_from_bits(h, 40)
        imag += w * _unit_from_bits(h, 12)
    return real, imag


@njit(cache=True)
def _lattice_point(x, y, z, salt):
    """The complex white lattice's value at the lattice point nearest (x, y, z) (lattice units);
    components uniform in [-1, 1]."""
    h = _hash(np.int64(math.floor(x + 0.5)), np.int64(math.floor(y + 0.5)), np.int64(math.floor(z + 0.5)), salt)
    return _unit_from_bits(h, 40), _unit_from_bits(h, 12)


@njit(cache=True)
def _ridge(noise, width):
    """Thin bright ridges along the zero set of a smooth noise: 1 on it, 0 beyond ``width``."""
    ridge = max(0.0, 1.0 - abs(noise) / width)
    return ridge * ridge


@njit(cache=True)
def _septum(x, y, z, sx, sy, sz, bx, by, bz, width, salt, seeds, cell):
    """Echo weight (0-1) of the septa of a Voronoi tessellation at (x, y, z) mm: one seed per cell of an
    (sx, sy, sz) mm lattice, jittered within its cell; on the wall between the nearest two seeds (within
    ``width`` mm, falling off as :func:`_ridge`) times the wall's specular angle term toward the beam
    (bx, by, bz): 1 facing it, ``SEPTUM_ROUGHNESS`` along it.

    Distances are measured in lattice units (the cells' own shape), so that a wall between cells
    stacked across the long axis runs along it: a fascicle's perimysium is a sheet along the fibres and
    a fat lobule's septa lie along the skin. (With distances in mm, the seeds' jitter along a 25 mm cell
    tilted the walls between fascicles to face along the fibres: short steep dashes, not striations.)
    ``seeds`` (27, 3) and ``cell`` (3,) are the caller's scratch: the 27 jittered seeds around the
    lattice cell ``cell``, hashed again only when the point moves to another cell (every few samples
    along a line), so a sample costs 27 distances, not 27 hashes.
    """
    u, v, w = x / sx, y / sy, z / sz
    cx, cy, cz = np.int64(math.floor(u)), np.int64(math.floor(v)), np.int64(math.floor(w))
    if cx != cell[0] or cy != cell[1] or cz != cell[2]:
        cell[0], cell[1], cell[2] = cx, cy, cz
        for corner in range(27):
            ix = cx + corner % 3 - 1
            iy = cy + (corner // 3) % 3 - 1
            iz = cz + corner // 9 - 1
            h = _hash(ix, iy, iz, salt)
            seeds[corner, 0] = ix + 0.5 + 0.45 * _unit_from_bits(h, 40)
            seeds[corner, 1] = iy + 0.5 + 0.45 * _unit_from_bits(h, 16)
            seeds[corner, 2] = iz + 0.5 + 0.45 * (np.float64(h & np.uint64(0xFFFF)) * (2.0 / 65536.0) - 1.0)
    best, second = 1e30, 1e30
    nearest, runner_up = 0, 0
    for corner in range(27):
        d = (u - seeds[corner, 0]) ** 2 + (v - seeds[corner, 1]) ** 2 + (w - seeds[corner, 2]) ** 2
        if d < best:
            second, runner_up = best, nearest
            best, nearest = d, corner
        elif d < second:
            second, runner_up = d, corner
    # The bisecting plane of the two seeds in lattice units, n . p = c with n = q - a, is the plane
    # (n / s) . x = c in mm: its normal there is n / s, and the point's distance to it (second - best)
    # / 2 / |n / s| mm.
    nx = (seeds[runner_up, 0] - seeds[nearest, 0]) / sx
    ny = (seeds[runner_up, 1] - seeds[nearest, 1]) / sy
    nz = (seeds[runner_up, 2] - seeds[nearest, 2]) / sz
    norm = math.sqrt(nx * nx + ny * ny + nz * nz)
    if norm == 0.0:
        return 0.0
    ridge = _ridge((second - best) / (2.0 * norm), width)
    cosine = abs(nx * bx + ny * by + nz * bz) / norm
    return ridge * ((1.0 - SEPTUM_ROUGHNESS) * cosine**SEPTUM_SPECULAR_EXPONENT + SEPTUM_ROUGHNESS)


@njit(cache=True)
def rough_surface_lobe(cosine):
    """Backscattered amplitude of a rough bone surface met at the angle whose cosine is given, 1 facing the
    beam: (1 + tan^2) exp(-tan^2 / 4 s^2), s = ``BONE_RMS_SLOPE`` (Kirchhoff, geometric optics); checked
    against the formula on the display by test_ultrasound's rough-surface test (a doctest here would not
    run: the doctest finder skips numba's dispatchers)."""
    squared = cosine * cosine
    if squared < 1e-6:
        return 0.0
    tan2 = (1.0 - squared) / squared
    return (1.0 + tan2) * math.exp(-tan2 / (4.0 * BONE_RMS_SLOPE * BONE_RMS_SLOPE))


@njit(cache=True)
def _interface_echo(run_sum, nx, ny, nz, dx, dy, dz, px, py, pz, salt):
    """Echo of an interface, tanh(|sum of ln Z steps / 2|), times its angle term toward the probe; a
    bone-like one also times its unevenness at (px, py, pz) mm (``BONE_RIPPLE``, fixed in the patient)."""
    norm = math.sqrt(nx * nx + ny * ny + nz * nz)
    cosine = abs(nx * dx + ny * dy + nz * dz) / norm if norm > 0.0 else 1.0
    if 2.0 * abs(run_sum) > BONE_LIKE_STEP:
        directivity = (1.0 - BONE_ROUGHNESS) * rough_surface_lobe(cosine) + BONE_ROUGHNESS
        ripple, _ = _lattice_noise(px / BONE_RIPPLE_MM, py / BONE_RIPPLE_MM, pz / BONE_RIPPLE_MM, salt)
        directivity *= math.exp(BONE_RIPPLE * ripple)
    else:
        directivity = (1.0 - SOFT_ROUGHNESS) * cosine**SOFT_SPECULAR_EXPONENT + SOFT_ROUGHNESS
    return math.tanh(abs(run_sum)) * directivity


@njit(cache=True)
def _skin_gap(voxels, world_to_index, air, origin, direction, gel_mm):
    """Distance (mm) from the face along a scan line to the first point whose nearest voxel is not air, in
    steps of SKIN_STEP_MM; 0 when the line starts in tissue or meets none within ``gel_mm`` (off the skin)."""
    ni, nj, nk = voxels.shape[0], voxels.shape[1], voxels.shape[2]
    for step in range(int(gel_mm / SKIN_STEP_MM) + 1):
        distance = step * SKIN_STEP_MM
        x = origin[0] + distance * direction[0]
        y = origin[1] + distance * direction[1]
        z = origin[2] + distance * direction[2]
        i = np.int64(math.floor(world_to_index[0, 0] * x + world_to_index[0, 1] * y + world_to_index[0, 2] * z
                                + world_to_index[0, 3] + 0.5))
        j = np.int64(math.floor(world_to_index[1, 0] * x + world_to_index[1, 1] * y + world_to_index[1, 2] * z
                                + world_to_index[1, 3] + 0.5))
        k = np.int64(math.floor(world_to_index[2, 0] * x + world_to_index[2, 1] * y + world_to_index[2, 2] * z
                                + world_to_index[2, 3] + 0.5))
        if 0 <= i < ni and 0 <= j < nj and 0 <= k < nk and voxels[i, j, k, 0] != air:
            return distance
    return 0.0


@njit(cache=True)
def _skin_gaps(voxels, world_to_index, air, origins, directions, gel_mm, out):
    """:func:`_skin_gap` of every scan line into ``out``."""
    for line in range(origins.shape[0]):
        out[line] = _skin_gap(voxels, world_to_index, air, origins[line], directions[line], gel_mm)


@njit(cache=True)
def _tissue_depth(depth, gap):
    """Distance (mm) from the face of the tissue a scan line shows at ``depth`` mm when its face was
    ``gap`` mm off the skin: the skin pressed onto the face (``SKIN_PRESS_DEPTH_MM``), the compression
    :func:`_trace_lines` draws; scalars or arrays (numpy or numba)."""
    return depth + gap * np.maximum(1.0 - depth / SKIN_PRESS_DEPTH_MM, 0.0)


@njit(cache=True)
def _pressed_depth(distance, gap):
    """Depth (mm) at which a scan line whose face was ``gap`` mm off the skin shows the tissue ``distance``
    mm from the face: the inverse of :func:`_tissue_depth`; negative for a point in the gap, outside the
    body the face pushes in. (The compressed branch is below ``distance`` exactly where it applies.)"""
    return np.minimum((distance - gap) / (1.0 - gap / SKIN_PRESS_DEPTH_MM), distance)


@njit(cache=True)
def _deposit(row, starts, position, value, start):
    """Add ``value`` at fractional sample ``position`` (split linearly), recording ``start``."""
    base = math.floor(position)
    frac = position - base
    i = np.int64(base)
    if 0 <= i < row.shape[0]:
        row[i] += value * (1.0 - frac)
        starts[i] = start
    if 0 <= i + 1 < row.shape[0]:
        row[i + 1] += value * frac
        starts[i + 1] = start


@njit(cache=True)
def _merge_or_deposit(row, starts, pending_at, pending_echo, pending_start, position, echo, start, merge_samples):
    """The interface echo ``echo`` at ``position`` (samples) merged into the pending one when they are
    within ``merge_samples`` (both faces of a thin layer: one echo at their echo-weighted centroid,
    reached through the first face's transmission); otherwise the pending one is deposited and this one
    waits. Returns the new pending (position, echo, start)."""
    if pending_echo > 0.0 and position - pending_at <= merge_samples:
        total = pending_echo + echo
        if total > 0.0:
            pending_at = (pending_at * pending_echo + position * echo) / total
        return pending_at, total, pending_start
    if pending_echo > 0.0:
        _deposit(row, starts, pending_at, pending_echo, pending_start)
    return position, echo, np.int32(start)


@njit(parallel=True, cache=True, fastmath=True)
def _trace_lines(voxels, world_to_index, ln_z, attenuation, backscatter, texture, air, gel,
                 origins, directions, elevation, sample_mm, frequency_mhz, gel_mm, lattice_mm, plane_offsets,
                 plane_weights, noise_gain, seed, fluid, fluid_world_to_index,
                 fluid_min, snap_samples, coherent, run_start, diffuse_re, diffuse_im, step_transmission, lost):
    """One pass along every scan line: the local echoes (not yet attenuated) and the round-trip
    transmission of each sample.

    ``coherent`` holds interface echoes at their positions, ``run_start`` the sample whose
    transmission reaches each of them (the sample before the interface began; -1 for the face);
    ``diffuse_re``/``diffuse_im`` the diffuse echoes; ``step_transmission`` the share of the round-trip
    amplitude each sample lets through (attenuation, interfaces). :func:`_diffracted_transmission`
    accumulates it along the lines, :func:`_beam_echoes` attenuates the echoes with the result.
    ``lost[line]`` is set to 1 when the line is not yet fully in tissue ``gel_mm`` beyond the face
    (the probe has lost skin contact there). Samples whose nearest voxel of ``fluid`` (a grid placed by
    ``fluid_world_to_index``) holds at least ``fluid_min`` are injected fluid (the gel class: water).
    A bone-like interface into bone is placed where the smoothed bone fraction crosses one half, when
    that is within ``snap_samples`` of its centroid (``BONE_SURFACE_*``).
    """
    lines, samples = coherent.shape
    ni, nj, nk = voxels.shape[0], voxels.shape[1], voxels.shape[2]
    # Round-trip amplitude factor per sample is exp(-alpha * per_db): 2 * alpha f d dB, / 20 for amplitude.
    per_db = 2.0 * frequency_mhz * (sample_mm / 10.0) * math.log(10.0) / 20.0
    muscle_salt = np.int64(seed) * 64 + 1
    fat_salt = np.int64(seed) * 64 + 2
    root_salt = np.int64(seed) * 64 + 40
    bone_salt = np.int64(seed) * 64 + 41
    speckle_salt = np.int64(seed) * 64 + 3  # frame k's scatterers: salt + 4 k
    inverse_lattice = 1.0 / lattice_mm
    merge_samples = THIN_LAYER_MM / sample_mm
    # A septum's ridge (_ridge, half width MUSCLE_SEPTUM_MM) integrates to 2/3 of the width over a crossing.
    septum_per_sample = MUSCLE_SEPTUM_REFLECTION * sample_mm / (2.0 / 3.0 * MUSCLE_SEPTUM_MM)
    for parallel_line in prange(lines):
        line = np.int64(parallel_line)  # prange counts unsigned; keep index arithmetic signed
        dx, dy, dz = directions[line, 0], directions[line, 1], directions[line, 2]
        # The skin pressed onto the face (SKIN_PRESS_DEPTH_MM): sample m lies in the tissue at
        # depth + gap * (1 - depth / SKIN_PRESS_DEPTH_MM) along the line until that depth, then at depth.
        # Positions advance along the line by the tissue each sample covers, in LPS mm and voxel indices.
        gap = _skin_gap(voxels, world_to_index, air, origins[line], directions[line], gel_mm)
        along = _tissue_depth(0.5 * sample_mm, gap)
        px = origins[line, 0] + along * dx
        py = origins[line, 1] + along * dy
        pz = origins[line, 2] + along * dz
        fi = world_to_index[0, 0] * px + world_to_index[0, 1] * py + world_to_index[0, 2] * pz + world_to_index[0, 3]
        fj = world_to_index[1, 0] * px + world_to_index[1, 1] * py + world_to_index[1, 2] * pz + world_to_index[1, 3]
        fk = world_to_index[2, 0] * px + world_to_index[2, 1] * py + world_to_index[2, 2] * pz + world_to_index[2, 3]
        si = world_to_index[0, 0] * dx + world_to_index[0, 1] * dy + world_to_index[0, 2] * dz   # index per mm
        sj = world_to_index[1, 0] * dx + world_to_index[1, 1] * dy + world_to_index[1, 2] * dz
        sk = world_to_index[2, 0] * dx + world_to_index[2, 1] * dy + world_to_index[2, 2] * dz
        stretch = 1.0 - gap / SKIN_PRESS_DEPTH_MM  # tissue (mm) per sample_mm of depth, here the first sample's
        corner_class = np.empty(8, dtype=np.int64)
        corner_weight = np.empty(8)
        muscle_seeds = np.empty((27, 3))
        fat_seeds = np.empty((27, 3))
        muscle_cell = np.full(3, np.iinfo(np.int64).min, dtype=np.int64)
        fat_cell = np.full(3, np.iinfo(np.int64).min, dtype=np.int64)
        previous = ln_z[gel]
        in_body = False
        run_at_skin = False     # the interface began before the line was fully in tissue: the skin's
        run_sign = 0
        run_sum = 0.0
        run_first = 0
        run_weight = 1.0
        run_moment = 0.0
        rnx = 0.0
        rny = 0.0
        rnz = 0.0
        pending_at = 0.0    # the last interface's echo, held until the next shows whether to merge them
        pending_echo = 0.0
        pending_start = np.int32(-1)
        pending_snaps = False   # the pending echo enters bone and may still move to the surface's crossing
        bone_before = 0.0       # the smoothed bone fraction at the previous sample
        crossed_at = -1e30      # where it last rose through one half (samples)
        for m in range(samples):
            depth = (m + 0.5) * sample_mm
            if m > 0:
                advance = _tissue_depth(depth, gap) - _tissue_depth(depth - sample_mm, gap)
                stretch = advance / sample_mm
                px += advance * dx
                py += advance * dy
                pz += advance * dz
                fi += advance * si
                fj += advance * sj
                fk += advance * sk
            amplitude = 1.0  # this sample's round-trip transmission factor
            if not in_body and depth >= gel_mm:
                lost[line] = 1
            ii, jj, kk, wx, wy, wz = _cell(fi, fj, fk)
            inside = not (ii < 0 or jj < 0 or kk < 0 or ii + 1 >= ni or jj + 1 >= nj or kk + 1 >= nk)
            if not inside:
                if in_body:
                    break  # the beam leaves the anatomy: no more echoes on this line
                outside = gel if depth < gel_mm else air
                lnz = ln_z[outside]
                alpha = attenuation[outside]
                scatter = 0.0
                muscle_scatter = 0.0
                fat_scatter = 0.0
                root_scatter = 0.0
            else:
                air_w = 0.0
                uniform = True
                for corner in range(8):
                    cx = corner & 1
                    cy = (corner >> 1) & 1
                    cz = (corner >> 2) & 1
                    w = (wx if cx else 1.0 - wx) * (wy if cy else 1.0 - wy) * (wz if cz else 1.0 - wz)
                    c = np.int64(voxels[ii + cx, jj + cy, kk + cz, 0])
                    if c == air:
                        air_w += w
                        if not in_body and depth < gel_mm:
                            c = gel  # gel fills the gap between the face and the (voxelised) skin
                    corner_class[corner] = c
                    corner_weight[corner] = w
                    uniform = uniform and c == corner_class[0]
                if air_w == 0.0:
                    in_body = True  # fully in tissue: from here on, air is air (gas, lung)
                fraction = np.float64(voxels[ii, jj, kk, 4])
                if not uniform or 0 < fraction < 127:
                    fraction = 0.0
                    for corner in range(8):
                        fraction += corner_weight[corner] * voxels[ii + (corner & 1), jj + ((corner >> 1) & 1),
                                                                   kk + ((corner >> 2) & 1), 4]
                fraction /= 127.0
                if fraction >= 0.5 > bone_before:
                    crossed_at = m - 1.0 + (0.5 - bone_before) / (fraction - bone_before)
                    if pending_snaps and abs(crossed_at - pending_at) <= snap_samples:
                        pending_at = crossed_at
                        pending_snaps = False
                bone_before = fraction
                if uniform:
                    c = corner_class[0]
                    lnz = ln_z[c]
                    alpha = attenuation[c]
                    scatter = backscatter[c]
                    muscle_scatter = scatter if texture[c] == 1 else 0.0
                    fat_scatter = scatter if texture[c] == 2 else 0.0
                    root_scatter = scatter if texture[c] == 3 else 0.0
                else:
                    lnz = 0.0
                    alpha = 0.0
                    scatter = 0.0
                    muscle_scatter = 0.0
                    fat_scatter = 0.0
                    root_scatter = 0.0
                    for corner in range(8):
                        c = corner_class[corner]
                        w = corner_weight[corner]
                        lnz += w * ln_z[c]
                        alpha += w * attenuation[c]
                        scatter += w * backscatter[c]
                        if texture[c] == 1:
                            muscle_scatter += w * backscatter[c]
                        elif texture[c] == 2:
                            fat_scatter += w * backscatter[c]
                        elif texture[c] == 3:
                            root_scatter += w * backscatter[c]
            if in_body and fluid_min > 0.0:
                qi = np.int64(math.floor(fluid_world_to_index[0, 0] * px + fluid_world_to_index[0, 1] * py
                                         + fluid_world_to_index[0, 2] * pz + fluid_world_to_index[0, 3] + 0.5))
                qj = np.int64(math.floor(fluid_world_to_index[1, 0] * px + fluid_world_to_index[1, 1] * py
                                         + fluid_world_to_index[1, 2] * pz + fluid_world_to_index[1, 3] + 0.5))
                qk = np.int64(math.floor(fluid_world_to_index[2, 0] * px + fluid_world_to_index[2, 1] * py
                                         + fluid_world_to_index[2, 2] * pz + fluid_world_to_index[2, 3] + 0.5))
                if (0 <= qi < fluid.shape[0] and 0 <= qj < fluid.shape[1] and 0 <= qk < fluid.shape[2]
                        and fluid[qi, qj, qk] >= fluid_min):
                    lnz = ln_z[gel]
                    alpha = attenuation[gel]
                    scatter = 0.0
            # Interfaces: a run of same-signed ln Z steps is one interface, whose echo tanh(|sum|/2)
            # is placed at the steps' centroid and whose transmission loss sech^2 accrues as it goes.
            step = 0.5 * (lnz - previous)
            previous = lnz
            sign = 1 if step > 1e-4 else (-1 if step < -1e-4 else 0)
            if run_sign != 0 and sign != run_sign:
                position = run_moment / run_weight
                into_bone = 2.0 * run_sum > BONE_LIKE_STEP
                snapped = into_bone and abs(crossed_at - position) <= snap_samples
                if snapped:
                    position = crossed_at
                merges = pending_echo > 0.0 and position - pending_at <= merge_samples
                if run_at_skin:
                    # The skin pressed onto the face takes its shape (SKIN_PRESS_DEPTH_MM): square to every
                    # line, whatever the label map's unpressed skin; a smooth sheet's steep lobe otherwise
                    # dimmed it 12 dB under a convex face's ends on a flat back.
                    rnx, rny, rnz = dx, dy, dz
                pending_at, pending_echo, pending_start = _merge_or_deposit(
                    coherent[line], run_start[line], pending_at, pending_echo, pending_start, position,
                    _interface_echo(run_sum, rnx, rny, rnz, dx, dy, dz, px, py, pz, bone_salt), run_first - 1,
                    merge_samples)
                pending_snaps = into_bone and not snapped and not merges
                run_sign = 0
            if sign != 0:
                if run_sign == 0:
                    run_sign = sign
                    run_at_skin = not in_body
                    run_sum = 0.0
                    run_first = m
                    run_weight = 0.0
                    run_moment = 0.0
                    rnx = 0.0
                    rny = 0.0
                    rnz = 0.0
                before = math.cosh(run_sum)
                run_sum += step
                after = math.cosh(run_sum)
                amplitude *= (before / after) ** 2
                weight = abs(step)
                run_weight += weight
                run_moment += weight * (m - 0.5)
                if inside:  # the interface's normal: impedance-gradient directions at the corners
                    for corner in range(8):
                        w = weight * corner_weight[corner]
                        cx = corner & 1
                        cy = (corner >> 1) & 1
                        cz = (corner >> 2) & 1
                        rnx += w * voxels[ii + cx, jj + cy, kk + cz, 1]
                        rny += w * voxels[ii + cx, jj + cy, kk + cz, 2]
                        rnz += w * voxels[ii + cx, jj + cy, kk + cz, 3]
            amplitude *= math.exp(-alpha * per_db * stretch)
            step_transmission[line, m] = amplitude
            if scatter > 0.0:
                # Each class's texture scales its own share of the backscatter: between the roots (texture
                # ROOTLET_BULK) and the CSF (no backscatter) a sample scatters the roots' share times their
                # texture. (A texture gain blended by the corners' weights and applied to the blended
                # backscatter left the untextured share at gain 1: the roots' own backscatter, 20 times
                # their bulk's, outlined the cauda equina's label as a bright ring in the black sac.)
                level = scatter
                if muscle_scatter > 0.0:
                    # Fibre coordinates: cranio-caudal fibres tilted toward the skin by the pennation angle.
                    fy = PENNATION_COS * py + PENNATION_SIN * pz
                    fz = PENNATION_COS * pz - PENNATION_SIN * py
                    wall = _septum(px, fy, fz, MUSCLE_FASCICLE_MM[0], MUSCLE_FASCICLE_MM[1], MUSCLE_FASCICLE_MM[2],
                                   dx, PENNATION_COS * dy + PENNATION_SIN * dz, PENNATION_COS * dz - PENNATION_SIN * dy,
                                   MUSCLE_SEPTUM_MM, muscle_salt, muscle_seeds, muscle_cell)
                    level += muscle_scatter * (MUSCLE_BULK + MUSCLE_SEPTA * wall - 1.0)
                    # The perimysium's specular echo, in phase along the sheet (see MUSCLE_SEPTUM_REFLECTION):
                    # per sample its share of the sheet's crossing, so the sum over a crossing is
                    # independent of the sample spacing. Reached, as an interface is, by the line's own
                    # transmission to the sample before.
                    if wall > 0.0:
                        patch, _ = _lattice_noise(px / MUSCLE_SEPTUM_PATCH_MM, fy / MUSCLE_SEPTUM_PATCH_MM,
                                                  fz / MUSCLE_SEPTUM_PATCH_MM, muscle_salt + 7)
                        coherent[line, m] += ((muscle_scatter / scatter) * wall * septum_per_sample
                                              * max(patch + MUSCLE_SEPTUM_PATCH_SHARE, 0.0))
                        if run_start[line, m] < 0:
                            run_start[line, m] = m - 1
                if fat_scatter > 0.0:
                    bend, sway = _lattice_noise(px / FAT_SEPTUM_BEND_SCALE_MM, py / FAT_SEPTUM_BEND_SCALE_MM,
                                                pz / FAT_SEPTUM_BEND_SCALE_MM, fat_salt + 7)
                    wall = _septum(px + FAT_SEPTUM_BEND_MM * sway, py + FAT_SEPTUM_BEND_MM * bend,
                                   pz - FAT_SEPTUM_BEND_MM * sway, FAT_LOBULE_MM[0], FAT_LOBULE_MM[1],
                                   FAT_LOBULE_MM[2], dx, dy, dz, FAT_SEPTUM_MM, fat_salt, fat_seeds, fat_cell)
                    if wall > 0.0:
                        patch, _ = _lattice_noise(px / FAT_SEPTUM_PATCH_MM, py / FAT_SEPTUM_PATCH_MM,
                                                  pz / FAT_SEPTUM_PATCH_MM, fat_salt + 8)
                        wall *= max(patch + FAT_SEPTUM_PATCH_SHARE, 0.0)
                    level += fat_scatter * (FAT_BULK + FAT_SEPTA * wall - 1.0)
                if root_scatter > 0.0:
                    # A rootlet runs where two independent smooth noises both cross zero: strands along z.
                    across, _ = _lattice_noise(px / ROOTLET_LATTICE_MM[0], py / ROOTLET_LATTICE_MM[1],
                                               pz / ROOTLET_LATTICE_MM[2], root_salt)
                    other, _ = _lattice_noise(px / ROOTLET_LATTICE_MM[0], py / ROOTLET_LATTICE_MM[1],
                                              pz / ROOTLET_LATTICE_MM[2], root_salt + 1)
                    strand = _ridge(across, ROOTLET_WIDTH) * _ridge(other, ROOTLET_WIDTH)
                    level += root_scatter * (ROOTLET_BULK + ROOTLET_STRANDS * strand - 1.0)
                level *= noise_gain
                for frame in range(diffuse_re.shape[0]):
                    real = 0.0
                    imag = 0.0
                    for plane in range(plane_offsets.shape[0]):
                        offset = plane_offsets[plane]
                        qr, qi = _lattice_point(px * inverse_lattice + offset * elevation[0],
                                                py * inverse_lattice + offset * elevation[1],
                                                pz * inverse_lattice + offset * elevation[2], speckle_salt + 4 * frame)
                        real += plane_weights[plane] * qr
                        imag += plane_weights[plane] * qi
                    diffuse_re[frame, line, m] = level * real
                    diffuse_im[frame, line, m] = level * imag
        if run_sign != 0:
            pending_at, pending_echo, pending_start = _merge_or_deposit(
                coherent[line], run_start[line], pending_at, pending_echo, pending_start, run_moment / run_weight,
                _interface_echo(run_sum, rnx, rny, rnz, dx, dy, dz, px, py, pz, bone_salt), run_first - 1,
                merge_samples)
        if pending_echo > 0.0:
            _deposit(coherent[line], run_start[line], pending_at, pending_echo, pending_start)


@njit(cache=True, fastmath=True)
def _diffracted_transmission(step_transmission, side_weights, substeps, out):
    """Round-trip transmission to every sample, spreading sideways as it goes down the lines.

    Sample by sample down the lines, the transmission reaching the previous depth is blurred across
    the lines (``substeps[m]`` passes of the kernel (w, 1 - 2 w, w), ``w = side_weights[m]``; the
    array's end lines repeat) and times each line's own ``step_transmission``. Sound that passes
    beside an occluder so spreads into its shadow as a wave does behind an edge: the shadow's edges
    soften with the distance beyond it (the blur's variance grows with that distance, as a Fresnel
    zone's width squared does) and a narrow shadow fills in with depth, while a wide one stays dark.
    """
    lines, samples = step_transmission.shape
    reached = np.ones(lines)
    blurred = np.empty(lines)
    for m in range(samples):
        w = side_weights[m]
        for _ in range(substeps[m]):
            for line in range(lines):
                left = reached[max(line - 1, 0)]
                right = reached[min(line + 1, lines - 1)]
                blurred[line] = (1.0 - 2.0 * w) * reached[line] + w * (left + right)
            reached[:] = blurred
        for line in range(lines):
            reached[line] *= step_transmission[line, m]
            out[line, m] = reached[line]


@njit(parallel=True, cache=True, fastmath=True)
def _beam_echoes(coherent, run_start, diffuse_re, diffuse_im, beam_transmission, straight, axial_kernel,
                 diffuse_scale, clutter, clutter_keep, origins, directions, sample_mm,
                 lattice_mm, seed, axial_re, axial_im):
    """Attenuate the local echoes with the beam's transmission, add the diffuse reverberation clutter,
    then blur them along each line, for each compounded frame (the first axis of ``diffuse_*`` and
    ``axial_*``).

    A beam is as wide as its lateral point-spread function, so what reaches depth m on line l is the
    lines' own transmissions averaged with the lateral weights (amplitudes add across the beam):
    partial shadows at bone edges, narrow windows dimmer than wide ones, no thin-ray shadow of a
    sheet the beam merely grazes. Diffuse echoes are reached by that ``beam_transmission`` (the
    diffracted transmission spread across the beam: :func:`_spread_lines`);
    interface echoes only by their own line's ``straight`` one (not spread behind edges nor across the
    beam): a specular surface returns to the probe only the sound that met it along the line, at its
    own angle; sound that bends round a bone edge, or the transmit beam's flank passing beside it,
    meets a surface in the shadow obliquely and is mirrored away from the probe, so nothing behind a
    lamina is drawn as if insonated (through a window it is). The echo field's lateral point-spread
    function still carries a lit surface's echo a beam width into the shadow beside it. (Averaged over
    the transmit beam, a lamina's shadow still let the deeper surfaces within two beam widths of its
    edges through at -20 to -40 dB of a lit one: the blind read's "bone under bone". The lesser of the
    two dimmed every sloping bone surface, whose own flank blocks the beam's side, by up to 8 dB.)
    Clutter: ``clutter`` (power ratio) of the diffuse echo power above, remembered with the factor
    ``clutter_keep[m]`` at sample m (:func:`_clutter_keep`), with random phases of its own: a complex white
    lattice of spacing ``lattice_mm`` fixed in the patient (the clutter comes from the tissue above, so
    it stays with the tissue when the probe slides, as the speckle does), seeded by ``seed``.
    The axial kernel has peak 1 (a plane reflector keeps its amplitude); diffuse echoes are scaled per
    depth (``diffuse_scale``) so that independent scatterers keep unit variance through the axial and
    lateral kernels.
    """
    frames, lines, samples = diffuse_re.shape
    half = axial_kernel.shape[0] // 2
    for parallel_line in prange(lines):
        line = np.int64(parallel_line)
        echo_re = np.empty(samples, dtype=np.float32)
        echo_im = np.empty(samples, dtype=np.float32)
        reached = np.empty(samples, dtype=np.float32)
        scale = np.empty(samples, dtype=np.float32)
        haze = np.empty(samples, dtype=np.float32)
        remembered = 0.0
        for m in range(samples):
            start = run_start[line, m]
            reached[m] = coherent[line, m] * (1.0 if start < 0 else straight[line, start])
            scale[m] = diffuse_scale[m] * beam_transmission[line, m]
            haze[m] = math.sqrt(clutter * remembered)
            local = 0.0
            for frame in range(frames):
                local += diffuse_re[frame, line, m] ** 2 + diffuse_im[frame, line, m] ** 2
            remembered = clutter_keep[m] * remembered + (1.0 - clutter_keep[m]) * local * scale[m] ** 2 / frames
        inverse_lattice = 1.0 / lattice_mm
        for frame in range(frames):
            salt = np.int64(seed) * 64 + 50 + frame
            for m in range(samples):
                # Unit-power complex phases of the clutter: two uniform components of variance 1/3 each.
                depth = (m + 0.5) * sample_mm
                qr, qi = _lattice_point((origins[line, 0] + depth * directions[line, 0]) * inverse_lattice,
                                        (origins[line, 1] + depth * directions[line, 1]) * inverse_lattice,
                                        (origins[line, 2] + depth * directions[line, 2]) * inverse_lattice, salt)
                echo_re[m] = reached[m] + scale[m] * diffuse_re[frame, line, m] + 1.2247 * haze[m] * qr
                echo_im[m] = scale[m] * diffuse_im[frame, line, m] + 1.2247 * haze[m] * qi
            out_re = axial_re[frame, line]
            out_im = axial_im[frame, line]
            out_re[:] = 0.0
            out_im[:] = 0.0
            # Tap by tap over contiguous samples (vectorises), the kernel cut at the line's ends.
            for j in range(-half, half + 1):
                tap = np.float32(axial_kernel[j + half])
                for m in range(max(-j, 0), min(samples - j, samples)):
                    out_re[m] += tap * echo_re[m + j]
                    out_im[m] += tap * echo_im[m + j]


@njit(cache=True)
def _spread_row(values, lateral_weights, lateral_rows, line, out):
    """Row ``line`` of ``values`` blurred across lines: out[m] = sum_i weights[m, i] values[line + i, m].

    ``lateral_rows[reach + i]`` is the (first, last + 1) sample at which offset i has any weight."""
    lines, samples = values.shape
    reach = lateral_weights.shape[0] // 2
    for m in range(samples):
        out[m] = 0.0
    for i in range(max(-reach, -line), min(reach + 1, lines - line)):
        for m in range(lateral_rows[i + reach, 0], lateral_rows[i + reach, 1]):  # contiguous: vectorises
            out[m] += lateral_weights[i + reach, m] * values[line + i, m]


@njit(parallel=True, cache=True, fastmath=True)
def _spread_lines(values, lateral_weights, lateral_rows, out):
    """``values`` (lines x samples) blurred across lines by the lateral point-spread function."""
    for parallel_line in prange(values.shape[0]):
        _spread_row(values, lateral_weights, lateral_rows, np.int64(parallel_line), out[np.int64(parallel_line)])


@njit(parallel=True, cache=True, fastmath=True)
def _lateral_spread(axial_re, axial_im, lateral_weights, lateral_rows, out_re, out_im):
    """The lateral point-spread function: a Gaussian across scan lines whose width depends on depth.

    ``lateral_weights[reach + i, m]`` weights line ``l + i`` at sample ``m``; they sum to 1 at each m, so a
    surface crossing many lines keeps its echo amplitude. Lines beyond the array's ends count as empty.
    Every frame's real and imaginary parts are accumulated in one pass over the offsets (one read of
    each weight row for all of them, contiguous inner loops that vectorise): the frame's costliest
    pass, so it is written for speed.
    """
    frames, lines, samples = axial_re.shape
    reach = lateral_weights.shape[0] // 2
    for parallel_line in prange(lines):
        line = np.int64(parallel_line)
        total = np.zeros((2 * frames, samples), dtype=np.float32)
        for i in range(max(-reach, -line), min(reach + 1, lines - line)):
            weights = lateral_weights[i + reach]
            first, last = lateral_rows[i + reach, 0], lateral_rows[i + reach, 1]
            for frame in range(frames):
                values_re = axial_re[frame, line + i]
                values_im = axial_im[frame, line + i]
                total_re = total[2 * frame]
                total_im = total[2 * frame + 1]
                for m in range(first, last):
                    total_re[m] += weights[m] * values_re[m]
                    total_im[m] += weights[m] * values_im[m]
        for frame in range(frames):
            out_re[frame, line, :] = total[2 * frame]
            out_im[frame, line, :] = total[2 * frame + 1]


@njit(cache=True)
def _triangle_across(values, m, half, cap, across, once, out):
    """``out[line]`` = ``values[line, m]``, each at most ``cap``, averaged across the lines by a triangle
    of half width about ``2 half`` (two passes of a box of half width ``half``, cut at the array's ends)."""
    lines = values.shape[0]
    for passes in range(2):
        across[0] = 0.0
        for line in range(lines):
            across[line + 1] = across[line] + (min(values[line, m], cap) if passes == 0 else once[line])
        for line in range(lines):
            first = max(line - half, 0)
            last = min(line + half + 1, lines)
            if passes == 0:
                once[line] = (across[last] - across[first]) / (last - first)
            else:
                out[line] = (across[last] - across[first]) / (last - first)


@njit(cache=True, fastmath=True)
def _compound(field_re, field_im, beam_transmission, front_end_noise, reverberation, reach, side_lobe, side_reach,
              side_cap, noise, power, level_db):
    """Echo level in dB: the compounded frames' mean echo power (spatial compounding, which also
    fills the one-sample dark lanes that log compression of a single complex field shows), plus the
    front end's noise and reverberation, both with the unit-mean fluctuation ``noise``, and side-lobe
    clutter in shadows.

    Reverberation: the mean echo power within ``reach`` samples of half the depth, weakened by one
    more round trip to there (``beam_transmission`` squared) and by ``reverberation`` (power ratio).
    Side-lobe clutter: ``side_lobe`` (power ratio) of the echo power at the same depth averaged across
    the lines by a triangle of half width ``side_reach[m]`` lines (each sample's power at most
    ``side_cap[m]``: the clutter of diffuse echoes), where the line's own transmission
    falls short of the same average of the transmission (``1 - own / average``): beside lit tissue a
    shadowed line's side lobes still hear it, while in lit tissue and in fluid the main lobe's own
    echoes bury the clutter (so speckle statistics and anechoic fluid are untouched). It is the
    tissue's own echo, averaged: it moves with the tissue, not with the beam. ``power`` is scratch.
    """
    frames, lines, samples = field_re.shape
    for line in range(lines):
        for m in range(samples):
            total = 0.0
            for frame in range(frames):
                total += field_re[frame, line, m] ** 2 + field_im[frame, line, m] ** 2
            power[line, m] = total / frames
    across = np.empty(lines + 1)
    once = np.empty(lines)
    side_power = np.empty(lines)
    side_transmission = np.empty(lines)
    side_clutter = np.zeros((lines, samples))
    for m in range(samples):
        half = max(side_reach[m] // 2, 1)
        _triangle_across(power, m, half, side_cap[m], across, once, side_power)
        _triangle_across(beam_transmission, m, half, np.inf, across, once, side_transmission)
        for line in range(lines):
            shadowed = 1.0 - beam_transmission[line, m] / max(side_transmission[line], 1e-30)
            side_clutter[line, m] = side_lobe * side_power[line] * min(max(shadowed, 0.0), 1.0)
    cumulative = np.empty(samples + 1)
    for line in range(lines):
        cumulative[0] = 0.0
        for m in range(samples):
            cumulative[m + 1] = cumulative[m] + power[line, m] * beam_transmission[line, m] ** 2
        for m in range(samples):
            first = max(m // 2 - reach, 0)
            last = min(m // 2 + reach + 1, samples)
            clutter = reverberation * (cumulative[last] - cumulative[first]) / max(last - first, 1)
            echo = power[line, m]
            level_db[line, m] = 10.0 * math.log10(
                echo + side_clutter[line, m] + (front_end_noise + clutter) * noise[line, m] + 1e-30)


def _receive_noise(axial_kernel: np.ndarray, lateral_weights: np.ndarray, lateral_rows: np.ndarray,
                   lines: int) -> np.ndarray:
    """Unit-mean fluctuation of the receive noise, fixed in the beam (lines x samples, float32): complex
    white Gaussian noise through the axial and lateral point-spread function, its intensity averaged
    over the compounded frames (the grain and statistics of speckle) and scaled to unit mean at each
    depth, on top of its steady part (``NOISE_STEADY``). One field per scan geometry; each frame takes
    it turned across the lines by its seed (:func:`_noise_for_seed`)."""
    samples = lateral_weights.shape[1]
    white = np.random.default_rng(60).standard_normal((2, COMPOUND_FRAMES, lines, samples), dtype=np.float32)
    axial = ndimage.convolve1d(white, axial_kernel.astype(np.float32), axis=3, mode="wrap")
    spread = np.empty_like(axial)
    _lateral_spread(axial[0], axial[1], lateral_weights, lateral_rows, spread[0], spread[1])
    intensity = (spread**2).sum(axis=0).mean(axis=0)
    intensity /= np.maximum(intensity.mean(axis=0, keepdims=True), 1e-30)
    return (NOISE_STEADY + (1.0 - NOISE_STEADY) * intensity).astype(np.float32)


def _noise_for_seed(scan: _Scan, seed: int) -> np.ndarray:
    """The scan's receive noise for the frame of ``seed``: its field turned across the lines by a
    seed-dependent number of lines (a frame's noise differs from the last one's, at no cost)."""
    lines = scan.noise.shape[0]
    return np.roll(scan.noise, (int(seed) * 7919) % lines, axis=0)


@njit(cache=True, fastmath=True)
def _needle_echoes(level_db, transmission, origins, directions, gaps, elevation, sample_mm, tip, axis, shaft_mm,
                   radius_mm, reflection, axial_kernel, lateral_sigma, elevation_sigma):
    """Add the needle's echo power to the tissue's echo level (dB), line by line, in place.

    ``axis`` is the unit vector from the tip toward the hub; the shaft is ``tip + t axis``,
    ``0 <= t <= shaft_mm``. Each scan line meets the shaft at its closest approach: the echo there is
    the steel's reflection weighted by the two-way beam profile at the offset (lateral and elevation),
    by the specular directivity of a cylinder (falling with the angle between the beam and the
    shaft's normal), and by the tissue's round-trip transmission to that depth; a comet tail of
    decaying reverberations follows it, and the shaft shadows what lies beyond. The needle lies in the
    tissue, so where the probe presses the skin in (``gaps``, each line's distance from the face to the
    skin) it is drawn where that tissue is, at :func:`_pressed_depth`, not at its distance from the face.
    """
    lines, samples = level_db.shape
    acceptance = math.radians(NEEDLE_ACCEPTANCE_DEG)
    half = axial_kernel.shape[0] // 2
    for line in range(lines):
        ox, oy, oz = origins[line, 0], origins[line, 1], origins[line, 2]
        dx, dy, dz = directions[line, 0], directions[line, 1], directions[line, 2]
        # Closest approach between the ray o + s d and the shaft tip + t a.
        wx, wy, wz = ox - tip[0], oy - tip[1], oz - tip[2]
        b = dx * axis[0] + dy * axis[1] + dz * axis[2]
        d_w = dx * wx + dy * wy + dz * wz
        a_w = axis[0] * wx + axis[1] * wy + axis[2] * wz
        denominator = 1.0 - b * b
        if denominator > 1e-9:
            t = (a_w - b * d_w) / denominator
        else:
            t = 0.0
        t = min(max(t, 0.0), shaft_mm)
        qx, qy, qz = tip[0] + t * axis[0], tip[1] + t * axis[1], tip[2] + t * axis[2]
        for is_tip in range(2):
            if is_tip == 1:
                qx, qy, qz = tip[0], tip[1], tip[2]
            s = (qx - ox) * dx + (qy - oy) * dy + (qz - oz) * dz
            vx, vy, vz = qx - (ox + s * dx), qy - (oy + s * dy), qz - (oz + s * dz)
            s = _pressed_depth(s, gaps[line])
            if s <= 0.0:
                continue
            off_el = vx * elevation[0] + vy * elevation[1] + vz * elevation[2]
            off_lat2 = max(vx * vx + vy * vy + vz * vz - off_el * off_el, 0.0)
            m_center = s / sample_mm - 0.5
            m_index = min(max(np.int64(m_center + 0.5), 0), samples - 1)
            if m_center > samples + half:
                continue
            sig_l = lateral_sigma[m_index]
            sig_e = elevation_sigma[m_index]
            weight = math.exp(-0.5 * off_lat2 / (sig_l * sig_l) - 0.5 * off_el * off_el / (sig_e * sig_e))
            if weight < 1e-4:
                continue
            if is_tip == 1:
                echo = NEEDLE_TIP_REFLECTION * weight
            else:
                angle = math.asin(min(abs(b), 1.0))
                echo = reflection * weight * ((1.0 - NEEDLE_ROUGHNESS) * math.exp(-(angle / acceptance) ** 2) + NEEDLE_ROUGHNESS)
            # The echo comes from the shaft's near wall.
            s_wall = s - radius_mm
            m_wall = max(s_wall / sample_mm - 0.5, 0.0)
            echo *= transmission[line, min(np.int64(m_wall), samples - 1)]
            echoes = 1 if is_tip == 1 else COMET_TAIL_ECHOES + 1
            spacing = 2.0 * radius_mm / sample_mm
            if is_tip == 0:
                # The shaft shadows what lies beyond its comet tail.
                shadow_db = 20.0 * math.log10(1.0 - NEEDLE_SHADOW * weight)
                for m in range(max(np.int64(m_wall + echoes * spacing) + half, 0), samples):
                    level_db[line, m] += shadow_db
            for k in range(echoes):
                center = m_wall + k * spacing
                level = echo * COMET_TAIL_RATIO**k
                first = max(np.int64(center) - half, 0)
                last = min(np.int64(center) + half + 1, samples)
                for m in range(first, last):
                    # The pulse-echo envelope (the tissue's axial kernel) at the echo's fractional offset.
                    tap = min(max(m - center + half, 0.0), 2.0 * half)
                    below = min(np.int64(tap), 2 * half - 1)
                    fraction = tap - below
                    shape = axial_kernel[below] * (1.0 - fraction) + axial_kernel[below + 1] * fraction
                    added = (level * shape) ** 2
                    level_db[line, m] = 10.0 * math.log10(10.0 ** (0.1 * level_db[line, m]) + added)


@njit(cache=True, fastmath=True)
def _grey_levels(level_db, noise, gain_db, dynamic_range_db, noise_above_black_db, grey):
    """Display level in [0, 1] of every beam sample: echo level plus gain (dB), plus the noise added
    after the TGC amplifier (``noise_above_black_db`` above black, times its fluctuation ``noise``),
    log-compressed over the dynamic range."""
    lines, samples = level_db.shape
    floor = 10.0 ** (0.1 * (noise_above_black_db - dynamic_range_db))
    for line in range(lines):
        for m in range(samples):
            level = 10.0 * math.log10(10.0 ** (0.1 * (level_db[line, m] + gain_db[m])) + floor * noise[line, m])
            grey[line, m] = min(max((level + dynamic_range_db) / dynamic_range_db, 0.0), 1.0)


@njit(cache=True, fastmath=True)
def _display(grey, pixel_line, pixel_sample, image):
    """Scan conversion: each pixel interpolates the display levels of the four beam samples around
    it (bilinear, as scanners interpolate detected data); uint8 out."""
    rows, cols = image.shape
    lines, samples = grey.shape
    for r in range(rows):
        for c in range(cols):
            lf = pixel_line[r, c]
            if lf < 0.0:
                image[r, c] = 0
                continue
            lf = min(max(lf, 0.0), lines - 1.0)
            sf = min(max(pixel_sample[r, c], 0.0), samples - 1.0)
            l0 = min(np.int64(lf), max(lines - 2, 0))
            s0 = min(np.int64(sf), max(samples - 2, 0))
            l1 = min(l0 + 1, lines - 1)
            s1 = min(s0 + 1, samples - 1)
            fl = lf - l0
            fs = sf - s0
            value = ((1 - fl) * ((1 - fs) * grey[l0, s0] + fs * grey[l0, s1])
                     + fl * ((1 - fs) * grey[l1, s0] + fs * grey[l1, s1]))
            image[r, c] = np.uint8(min(max(value * 255.0 + 0.5, 0.0), 255.0))


def _elevation_planes() -> tuple[np.ndarray, np.ndarray]:
    """Offsets (lattice units) and weights of the lattice planes summed across the slice thickness.

    ``ELEVATION_PLANES`` planes one lattice spacing apart (spanning 0.88 mm at 3.5 MHz, 0.31 mm at
    10 MHz), gently tapered (Gaussian, sigma half the stack): each sample takes its nearest lattice
    point in each plane, so the speckle decorrelates once the probe has swept about the stack's
    width out of plane (the two-way elevation beam's half-correlation sweep is 0.8 / 0.22 mm).
    """
    offsets = np.arange(ELEVATION_PLANES) + 0.5 - ELEVATION_PLANES / 2
    weights = np.exp(-0.5 * (offsets / (ELEVATION_PLANES / 2)) ** 2)
    return offsets, weights / weights.sum()


@cache
def _speckle_power() -> float:
    """Mean |noise|^2 of the elevation-summed lattice noise (measured once on fixed points)."""
    points = np.random.default_rng(12345).uniform(-500, 500, size=(20000, 3))
    return float(_noise_power(points, *_elevation_planes()))


@njit(cache=True)
def _noise_power(points, offsets, weights):
    total = 0.0
    for n in range(points.shape[0]):
        real = 0.0
        imag = 0.0
        for plane in range(offsets.shape[0]):
            qr, qi = _lattice_point(points[n, 0] + offsets[plane], points[n, 1], points[n, 2], 1)
            real += weights[plane] * qr
            imag += weights[plane] * qi
        total += real * real + imag * imag
    return total / points.shape[0]


# --------------------------------------------------------------------------- the image
@dataclass(frozen=True, eq=False)
class UltrasoundImage:
    """A B-mode frame and where its pixels are in the patient.

    Attributes
    ----------
    pixels : ndarray (rows, cols) uint8
        Display grey levels; black outside the field of view. Row 0 is at the probe face, rows go
        deeper along ``row_direction``; columns go along the array, ``column_direction``. The field
        of view fills the probe's ``image_shape`` in one dimension and the image is cut to its
        extent in the other (a wide sector gives fewer rows, a deep rectangle fewer columns).
    pixel_mm : float
        Pixel size (square), mm.
    origin : ndarray (3,)
        LPS mm of the centre of pixel (0, 0).
    row_direction, column_direction : ndarray (3,)
        LPS unit vectors of increasing row (the probe's axial direction) and column (lateral).
    field_of_view : ndarray (rows, cols) bool
        Pixels inside the scanned sector or rectangle.
    probe : Probe
    seed : int
        Seed of the scatterer field (speckle).
    contact_lost : float
        Share of the scan lines (0-1) whose beam met no skin within the gel's reach of the face: the
        probe is off the skin there and the image black (a scanner shows it; the sonographer rocks,
        tilts or presses the probe).
    skin_gap_mm : ndarray (lines,), optional
        How far each scan line's face was off the skin, which the probe presses onto its face
        (``SKIN_PRESS_DEPTH_MM``); the pixel <-> LPS mapping follows that compression. None: no press.
    """

    pixels: np.ndarray
    pixel_mm: float
    origin: np.ndarray
    row_direction: np.ndarray
    column_direction: np.ndarray
    field_of_view: np.ndarray
    probe: Probe
    seed: int
    contact_lost: float = 0.0
    skin_gap_mm: np.ndarray | None = None

    def pixel_to_lps(self, rows: np.ndarray | float, cols: np.ndarray | float) -> np.ndarray:
        """LPS mm of the tissue drawn at (fractional) pixel positions; result shape (..., 3). Within
        ``SKIN_PRESS_DEPTH_MM`` of the face the probe presses the skin in, so a pixel shows tissue
        deeper along its scan line than its distance from the face (:func:`_tissue_depth`)."""
        rows = np.asarray(rows, dtype=np.float64)[..., None]
        cols = np.asarray(cols, dtype=np.float64)[..., None]
        return self._along_lines(self.origin + self.pixel_mm * (rows * self.row_direction + cols * self.column_direction),
                                 _tissue_depth)

    def lps_to_pixel(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, col, out-of-plane distance mm) where LPS points are drawn, the inverse of
        :meth:`pixel_to_lps`; a point between the face and the pressed skin lands above the face."""
        offset = self._along_lines(np.asarray(points, dtype=np.float64), _pressed_depth) - self.origin
        rows = offset @ self.row_direction / self.pixel_mm
        cols = offset @ self.column_direction / self.pixel_mm
        return rows, cols, offset @ self.probe.elevation

    @property
    def face_row(self) -> float:
        """Row of the probe face's centre: depth 0 of the scanner's depth scale."""
        return float((self.probe.position - self.origin) @ self.row_direction / self.pixel_mm)

    def _along_lines(self, points: np.ndarray, depth_law) -> np.ndarray:
        """``points`` moved along their scan lines from their distance d from the face to
        ``depth_law(d, gap)``, the gap that line's face was off the skin (interpolated across lines)."""
        if self.skin_gap_mm is None:
            return points
        probe = self.probe
        offset = points - probe.position
        line, distance, direction = _line_through(probe, offset @ probe.lateral, offset @ probe.axial)
        gap = np.interp(line, np.arange(len(self.skin_gap_mm)), self.skin_gap_mm)
        shift = depth_law(distance, gap) - distance
        return points + shift[..., None] * (direction[..., :1] * probe.lateral + direction[..., 1:] * probe.axial)

    def grid_lps(self) -> np.ndarray:
        """LPS mm of every pixel centre, shape (rows, cols, 3)."""
        rows, cols = np.indices(self.pixels.shape)
        return self.pixel_to_lps(rows, cols)


# --------------------------------------------------------------------------- rendering
def _tissue_field(anatomy, probe: Probe, scan: _Scan, origins: np.ndarray, directions: np.ndarray,
                  seed: int, fluid=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The anatomy's echo level (dB, after the point-spread function and compounding, with front-end
    noise and reverberation), round-trip transmission and the unit-mean noise fluctuation for this
    probe pose, (L, M) each, and the share of lines without skin contact; the anatomy keeps the last few
    (without injected ``fluid``: a frame with it is traced anew)."""
    if fluid is not None:
        return _trace_tissue(acoustic_maps(anatomy), probe, scan, origins, directions, seed, fluid)
    return anatomy.derived.recent("ultrasound.frames", (probe.geometry_key, int(seed)),
                                  lambda: _trace_tissue(acoustic_maps(anatomy), probe, scan, origins, directions, seed),
                                  keep=_FRAME_CACHE_SIZE)


def _trace_tissue(maps: AcousticMaps, probe: Probe, scan: _Scan, origins: np.ndarray, directions: np.ndarray,
                  seed: int, fluid=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    lines, samples = origins.shape[0], scan.samples
    noise_gain = 10.0 ** (DIFFUSE_REFERENCE_DB / 20.0) / math.sqrt(_speckle_power())
    offsets, weights = _elevation_planes()
    coherent, step_transmission, transmission, beam_transmission, power, level_db = (
        np.zeros((lines, samples), dtype=np.float32) for _ in range(6))
    diffuse_re, diffuse_im, axial_re, axial_im = (np.zeros((COMPOUND_FRAMES, lines, samples), dtype=np.float32)
                                                  for _ in range(4))
    run_start = np.full((lines, samples), -1, dtype=np.int32)
    lost = np.zeros(lines, dtype=np.int8)
    if fluid is None:
        fluid_array, fluid_to_index = np.zeros((1, 1, 1), dtype=np.float32), np.zeros((3, 4))
    else:
        fluid_array = np.ascontiguousarray(fluid.array, dtype=np.float32)
        fluid_to_index = np.ascontiguousarray(np.linalg.inv(fluid.affine)[:3])
    _trace_lines(maps.voxels, maps.world_to_index, maps.ln_impedance, maps.attenuation_db_per_cm_mhz,
                 maps.backscatter, maps.texture, maps.air, maps.gel, origins, directions,
                 probe.elevation, scan.sample_mm, probe.frequency_mhz, GEL_MM,
                 SPECKLE_LATTICE_WAVELENGTHS * probe.wavelength_mm, offsets, weights, noise_gain, int(seed),
                 fluid_array, fluid_to_index,
                 FLUID_MIN_MG_PER_ML if fluid is not None else 0.0,
                 BONE_SURFACE_SNAP * _voxel_mm(maps.world_to_index) / scan.sample_mm, coherent, run_start, diffuse_re,
                 diffuse_im, step_transmission, lost)
    _diffracted_transmission(step_transmission, scan.diffraction_weights, scan.diffraction_substeps, transmission)
    # The transmit beam is wider than the two-way point-spread function (one-way sigma sqrt(2) times
    # the two-way one): spreading the transmission once and once more (the beam's) averages it
    # over that width, so shadow edges are as soft as the beam that casts them.
    one_way = power  # scratch until _compound
    _spread_lines(transmission, scan.lateral_weights, scan.lateral_rows, one_way)
    _spread_lines(one_way, scan.lateral_weights, scan.lateral_rows, beam_transmission)
    # The haze (clutter, side lobes) fades with depth as the tissue's echoes do, by the loss the automatic
    # TGC makes up: on the display it keeps its level against the tissue whatever that loss is.
    loss_db = tissue_loss_db(beam_transmission, (np.arange(samples) + 0.5) * scan.sample_mm, probe.frequency_mhz)
    straight = np.cumprod(step_transmission, axis=1)
    _beam_echoes(coherent, run_start, diffuse_re, diffuse_im, beam_transmission, straight, scan.axial_kernel,
                 scan.diffuse_scale, 10.0 ** (CLUTTER_DB / 10.0), _clutter_keep(loss_db, scan.sample_mm),
                 origins, directions, scan.sample_mm,
                 SPECKLE_LATTICE_WAVELENGTHS * probe.wavelength_mm, int(seed), axial_re, axial_im)
    field_re, field_im = diffuse_re, diffuse_im     # free again
    _lateral_spread(axial_re, axial_im, scan.lateral_weights, scan.lateral_rows, field_re, field_im)
    field_re *= scan.line_gain[:, None]
    field_im *= scan.line_gain[:, None]
    reach = max(int(round(REVERBERATION_SPREAD_MM / scan.sample_mm)), 1)
    noise = _noise_for_seed(scan, seed)
    _compound(field_re, field_im, beam_transmission, 10.0 ** (FRONT_END_NOISE_DB / 10.0),
              10.0 ** (REVERBERATION_DB / 10.0), reach, 10.0 ** (SIDE_LOBE_DB / 10.0), scan.side_lobe_lines,
              _side_lobe_caps(loss_db), noise, power, level_db)
    return level_db, beam_transmission, noise, float(lost.mean())


def _voxel_mm(world_to_index: np.ndarray) -> float:
    """Mean voxel size (mm) of a grid placed by ``world_to_index`` (LPS mm -> index)."""
    return float(np.mean(1.0 / np.linalg.norm(world_to_index[:, :3], axis=1)))


def _side_lobe_caps(loss_db: np.ndarray) -> np.ndarray:
    """Per sample, the most echo power (power ratio) a sample lends the side-lobe clutter:
    ``SIDE_LOBE_CAP_DB`` above the diffuse reference, attenuated to the sample's depth by the tissue's
    round-trip ``loss_db`` there (:func:`tissue_loss_db`, which the automatic TGC makes up), so that the cap
    means the same on the display at every depth."""
    return 10.0 ** ((DIFFUSE_REFERENCE_DB + SIDE_LOBE_CAP_DB - np.asarray(loss_db)) / 10.0)


def _clutter_keep(loss_db: np.ndarray, sample_mm: float) -> np.ndarray:
    """Per sample, the share of the remembered echo power the clutter keeps from the sample before: its
    tail (``CLUTTER_TAIL_MM``) times the tissue's round-trip loss over the sample (``loss_db``, per sample:
    :func:`tissue_loss_db`; a late echo has travelled as far through the tissue as a direct one from its
    depth, so the automatic TGC, which makes that loss up, does not lift the clutter against the tissue).

    >>> np.round(_clutter_keep(np.array([0.14, 0.42, 0.70]), 0.5), 4).tolist()  # 0.8 dB/cm/MHz at 3.5 MHz
    [0.9288, 0.8993, 0.8993]
    """
    tail_db = 10.0 * math.log10(math.e) * sample_mm / CLUTTER_TAIL_MM
    attenuation_db = np.diff(np.asarray(loss_db, dtype=np.float64), prepend=0.0)
    return 10.0 ** (-(tail_db + attenuation_db) / 10.0)


def depth_gain_db(probe: Probe, depths_mm: np.ndarray, transmission: np.ndarray | None = None) -> np.ndarray:
    """Gain (dB) applied at each depth: overall gain + time-gain compensation (slope and sliders).

    The slope is ``probe.tgc_db_per_cm`` if set; otherwise it is automatic: it makes up the loss that the
    frame's lit lines show (``transmission``, lines x samples at ``depths_mm``: :func:`tissue_loss_db`), its
    ``TGC_COMPENSATION`` share, up to
    where it would lift the front end's noise near black (``TGC_NOISE_MARGIN_DB``), or, without a frame,
    average soft tissue's (``AUTO_TGC_DB_PER_CM_MHZ``).
    """
    depths_mm = np.asarray(depths_mm)
    if probe.tgc_db_per_cm is not None:
        gain = probe.gain_db + probe.tgc_db_per_cm * depths_mm / 10.0
    elif transmission is None:
        gain = probe.gain_db + 2.0 * AUTO_TGC_DB_PER_CM_MHZ * probe.frequency_mhz * depths_mm / 10.0
    else:
        noise_limit = -FRONT_END_NOISE_DB - probe.dynamic_range_db - TGC_NOISE_MARGIN_DB
        loss = tissue_loss_db(transmission, depths_mm, probe.frequency_mhz)
        gain = probe.gain_db + np.minimum(TGC_COMPENSATION * loss, noise_limit)
    if probe.tgc_db:
        sliders = np.linspace(0.0, probe.depth_mm, len(probe.tgc_db)) if len(probe.tgc_db) > 1 else np.zeros(1)
        gain = gain + np.interp(depths_mm, sliders, probe.tgc_db)
    return gain


def tissue_loss_db(transmission: np.ndarray, depths_mm: np.ndarray, frequency_mhz: float) -> np.ndarray:
    """Per sample, the tissue's round-trip loss (dB), which the automatic TGC makes up: the median of
    the transmissions of the lines that lost no more than ligament would (``TGC_SOFT_TISSUE_DB_PER_CM_MHZ``,
    plus ``TGC_INTERFACES_DB``), or average soft tissue's loss where none did, smoothed along the depth by a
    Gaussian of ``TGC_SMOOTH_MM`` and never falling with depth, as a bank of TGC sliders is set.

    >>> depths = np.arange(40.0) + 0.5                                           # mm, at 3.5 MHz
    >>> lines = np.repeat(10 ** (-2 * 1.1 * 3.5 * depths / 10 / 20)[None], 8, axis=0)   # muscle, 1.1 dB/cm/MHz
    >>> lines[:3, 20:] = 1e-6                                                    # a bone's shadow
    >>> np.round(tissue_loss_db(lines, depths, 3.5)[[10, 30]], 1).tolist()    # 8.1 and 23.5 dB lost
    [8.1, 23.5]
    """
    loss_db = -20.0 * np.log10(np.maximum(transmission, 1e-30))
    soft = 2.0 * frequency_mhz * depths_mm / 10.0
    lit = loss_db <= TGC_SOFT_TISSUE_DB_PER_CM_MHZ * soft + TGC_INTERFACES_DB
    lit_loss = np.where(lit, loss_db, np.nan)
    unlit = ~lit.any(axis=0)
    lit_loss[:, unlit] = AUTO_TGC_DB_PER_CM_MHZ * soft[unlit]      # every line in a shadow: soft tissue's
    median = np.nanmedian(lit_loss, axis=0)
    smooth = ndimage.gaussian_filter1d(median, TGC_SMOOTH_MM / float(depths_mm[1] - depths_mm[0]), mode="nearest")
    return np.maximum.accumulate(smooth)


def needle_reflection() -> float:
    """Pressure reflection coefficient of a steel shaft in muscle, (Z_steel - Z_muscle) / (Z_steel + Z_muscle)."""
    steel, muscle = tissue("steel").impedance_mrayl, tissue("muscle").impedance_mrayl
    return (steel - muscle) / (steel + muscle)


def render_ultrasound(anatomy, probe: Probe, needle: Needle | None = None, *, seed: int = 0,
                      fluid=None) -> UltrasoundImage:
    """B-mode image of ``anatomy`` seen by ``probe``, with ``needle`` if given.

    Parameters
    ----------
    anatomy : Anatomy
        The patient; its acoustic maps are computed on first use and cached with it.
    probe : Probe
        Pose and settings (see :mod:`simulator.imaging.probe`).
    needle : Needle, optional
        Drawn analytically on top of the tissue (bright shaft with comet tail in plane, a dot where
        the image plane cuts it, the tip when it lies in the slice).
    seed : int
        Seed of the scatterer field; the same seed gives the same image.
    fluid : Volume, optional
        Injected contrast (mg iodine/mL, as ``Session.contrast`` gives it): where it reaches
        ``FLUID_MIN_MG_PER_ML`` the tissue is fluid, an anechoic pocket (hydrodissection).

    Returns
    -------
    UltrasoundImage
        uint8 display pixels plus the pixel -> LPS mapping.

    Examples
    --------
    >>> import numpy as np
    >>> from anatomy_models.anatomy import Anatomy
    >>> from anatomy_models.structures import LabelTable
    >>> from anatomy_models.volume import Volume
    >>> table = LabelTable(); _ = table.add("muscle", "muscle"); _ = table.add("L4", "cortical_bone")
    >>> labels = np.ones((40, 40, 40), np.uint16); labels[:, :12] = 2      # bone slab 28 mm deep
    >>> body = Anatomy(Volume.from_spacing(np.zeros((40, 40, 40), np.int16), (1, 1, 1)), table,
    ...                Volume.from_spacing(labels, (1, 1, 1)))
    >>> probe = Probe("linear", position=[20, 39, 20], axial=[0, -1, 0], lateral=[1, 0, 0], image_shape=(64, 64))
    >>> image = render_ultrasound(body, probe)
    >>> image.pixels.shape, image.pixels.dtype.name       # cut to the 38 mm x 40 mm field of view
    ((64, 61), 'uint8')
    >>> surface = int(image.lps_to_pixel([20.0, 11.5, 20.0])[0])     # the bone's top, 27.5 mm deep
    >>> line = image.pixels[surface - 1:surface + 2].mean(axis=1).max()
    >>> muscle, shadow = image.pixels[surface - 12:surface - 4].mean(), image.pixels[surface + 4:].mean()
    >>> bool(line > 2.5 * muscle), bool(shadow < muscle)              # a bright line, a shadow below it
    (True, True)
    >>> int(image.pixels[surface + 4:, 1:-1].min()) > 0               # holding the noise: dark, never black
    True
    """
    scan = _scan_for(anatomy, probe)
    origins, directions = _scan_lines(probe, scan)
    level_db, transmission, noise, contact_lost = _tissue_field(anatomy, probe, scan, origins, directions, seed, fluid)
    maps = acoustic_maps(anatomy)
    gaps = np.empty(len(origins))
    _skin_gaps(maps.voxels, maps.world_to_index, maps.air, origins, directions, GEL_MM, gaps)
    if needle is not None:
        level_db = level_db.copy()
        _needle_echoes(level_db, transmission, origins, directions, gaps, probe.elevation, scan.sample_mm,
                       needle.tip, -needle.direction, needle.spec.length_mm, needle.spec.outer_diameter_mm / 2,
                       needle_reflection(), scan.axial_kernel, scan.lateral_sigma_mm, scan.elevation_sigma_mm)
    depths = (np.arange(scan.samples) + 0.5) * scan.sample_mm
    grey = np.empty(level_db.shape, dtype=np.float32)
    _grey_levels(level_db, noise, depth_gain_db(probe, depths, transmission).astype(np.float64),
                 float(probe.dynamic_range_db),
                 DISPLAY_NOISE_ABOVE_BLACK_DB, grey)
    pixels = np.empty(scan.pixel_line.shape, dtype=np.uint8)
    _display(grey, scan.pixel_line, scan.pixel_sample, pixels)
    first = probe.position + scan.first_pixel[0] * probe.lateral + scan.first_pixel[1] * probe.axial
    return UltrasoundImage(pixels, scan.pixel_mm, first, probe.axial.copy(), probe.lateral.copy(),
                           scan.pixel_line >= 0, probe, int(seed), contact_lost, gaps)


__all__ = ["UltrasoundImage", "render_ultrasound", "acoustic_maps", "AcousticMaps", "depth_gain_db"]
