"""The Scotty dog on the built-in spine's ipsilateral oblique (clinical.md §1 [S30]).

Each labelled part of the dog is found on the image by projecting its voxels with the C-arm's
projection matrix: the ear (SAP), the neck (pars interarticularis, the part of the lamina label that
is the pars bar of the model) and the front leg (IAP) must stand out from the vertebral body they
overlie, and the neck must be narrower than the ear and the leg.
"""

import numpy as np
import pytest
from scipy import ndimage

from anatomy_models.spine import SpineParameters
from anatomy_models.spine.vertebra import lamina_part, pars_part
from simulator.imaging.carm import scotty_dog
from simulator.imaging.fluoro import Display, render_fluoro
from tests.simulator.test_pedicle_ring import _walls

PIXELS = 256
LEVELS = ("L3", "L4", "L5")
POSTERIOR = ("pedicle", "lamina", "SAP", "IAP", "transverse_process", "spinous_process")
# Mean brightness of the ear, neck and leg above the bare body next to them, as a fraction of the
# display window. Measured on the 2 mm spine at L3/L4/L5: ear 0.22/0.18/0.49, neck 0.14/0.30/0.37,
# leg 0.16/0.19/0.16 with posterior elements built like the body (generator 3: the dog lost in the
# body); ear 0.29/0.24/0.54, neck 0.21/0.35/0.40, leg 0.22/0.25/0.20 with compact posterior
# elements over a sparser body (generator 4); ear 0.39/0.37/0.75, neck 0.22/0.45/0.55, leg
# 0.30/0.35/0.28 with the SAP's broad base over the pedicle (generator 6: ear widths 8.8/8.7/11.3 ->
# 9.5/9.9/12.3 mm at the isocentre). Generator 8, the CT numbers of real lumbar CT (posterior arch ~500
# HU against the body's ~230, clinical.md §5.4, where generator 7 had ~1000 against ~265) and bowel gas
# on by default (the display window now spans the gas too): ear 0.26/0.24/0.65, neck 0.13/0.44/0.52,
# leg 0.18/0.28/0.19 (without gas: ear 0.35/0.27/0.72, neck 0.17/0.43/0.57, leg 0.24/0.28/0.21).
# Generator 22: ear 0.31/0.30/0.28, neck 0.25/0.23/0.29, leg 0.16/0.22/0.16; generator 23 (the spinous
# processes keep their own height: L2's and L3's reach further down over the body beside L3's leg): leg
# 0.11/0.23/0.16, the rest alike.
MIN_CONTRAST = 0.10


def _pixels_of(anatomy, carm, mask: np.ndarray) -> np.ndarray:
    """Detector pixels hit by the centres of ``mask``'s voxels (bool, rows x columns)."""
    points = anatomy.labels.voxel_to_world(np.argwhere(mask).astype(float))
    uv = np.rint(carm.project(points)).astype(int)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < PIXELS) & (uv[:, 1] >= 0) & (uv[:, 1] < PIXELS)
    out = np.zeros((PIXELS, PIXELS), dtype=bool)
    out[uv[inside, 1], uv[inside, 0]] = True
    return ndimage.binary_closing(out, iterations=1)


def _pars_mask(anatomy, model, level: str, side: str) -> np.ndarray:
    """Voxels of ``level``'s lamina label inside the pars bar of ``anatomy``'s implicit model (the session's
    ``model_2mm`` for ``small_spine``: built once, ~30 s on a busy 2-core machine) and outside its lamina plate."""
    assert model.params == SpineParameters(**anatomy.metadata["parameters"]), "the model is not this anatomy's"
    layout = model.skeleton.layouts[level]
    lamina = anatomy.mask(f"{level}.lamina.{side}")
    points = anatomy.labels.voxel_to_world(np.argwhere(lamina).astype(float)).astype(np.float32)
    coords = tuple(points[:, i] for i in range(3))
    pure = (pars_part(layout, side).sdf(*coords) < 0) & (lamina_part(layout, side).sdf(*coords) > 0)
    out = np.zeros_like(lamina)
    out[tuple(np.argwhere(lamina)[pure].T)] = True
    return out


def _width_px(region: np.ndarray) -> float:
    """Width of a projected part across its long axis: 4 standard deviations of its minor axis, pixels."""
    points = np.argwhere(region).astype(float)
    points -= points.mean(axis=0)
    return 4.0 * float(np.sqrt(np.linalg.eigvalsh(np.cov(points.T))[0]))


def scotty_dog_measurements(anatomy, model, level: str, side: str = "left") -> dict[str, float]:
    """Contrast (fraction of the grey scale, on the displayed image) of the ear, neck and leg over the
    bare body next to them, and their widths across their long axes (pixels), on the noiseless
    Scotty-dog view."""
    carm = scotty_dog(anatomy, level, side, detector_pixels=PIXELS)
    image = render_fluoro(anatomy, carm, dose=None, display=Display(polarity="bone_black"))
    body = _pixels_of(anatomy, carm, anatomy.mask(f"{level}.body"))
    anywhere_posterior = np.zeros_like(body)
    for part in POSTERIOR:
        anywhere_posterior |= _pixels_of(anatomy, carm, anatomy.mask(f"{level}.{part}"))
    for other in ("L2", "L3", "L4", "L5", "S1"):
        if other != level:
            anywhere_posterior |= _pixels_of(anatomy, carm, np.isin(anatomy.labels.array, [
                label.id for label in anatomy.label_table
                if label.name.startswith(f"{other}.") and label.name.split(".")[1] in POSTERIOR]))
    bare_body = body & ~ndimage.binary_dilation(anywhere_posterior, iterations=2)
    regions = {"ear": _pixels_of(anatomy, carm, anatomy.mask(f"{level}.SAP.{side}")),
               "neck": _pixels_of(anatomy, carm, _pars_mask(anatomy, model, level, side)),
               "leg": _pixels_of(anatomy, carm, anatomy.mask(f"{level}.IAP.{side}"))}
    # Bone dark on the default (bone_black) monitor: measure how much more the parts attenuate, as grey.
    grey = 255.0 - image.pixels.astype(np.float64)
    near_body = {}
    for name, region in regions.items():
        near = bare_body & ndimage.binary_dilation(region, iterations=12)
        near_body[name] = near if near.sum() >= 10 else bare_body
    result = {}
    for name, region in regions.items():
        on_body = region & body
        result[f"{name}_contrast"] = float((grey[on_body].mean() - grey[near_body[name]].mean()) / 255.0)
        result[f"{name}_width"] = _width_px(region)
    return result


@pytest.mark.slow
# L4's ear and the L3 and L5 front legs, faint on the real vertebra shapes in issue 15, stand out since the
# display's dynamic range compression (issue 16) and the refitted articular processes (generator 18). Generator 44
# rounds the back's midline furrow (issue 16's CLO line): L3's leg fell from 0.111 to 0.095 with nothing else
# changed (the same display; ear 0.36, neck 0.25), under MIN_CONTRAST; L4 and L5 stand out as before.
@pytest.mark.parametrize("level", [pytest.param(level, marks=pytest.mark.xfail(
    strict=True, reason="issue 16: L3's front leg 0.04 of the window over the body on generator 47 (0.044 on 45 with "
    "xray9's display, 0.095 on 44, 0.111 on 41), its neck 0.095"))
    if level == "L3" else level for level in LEVELS])
def test_scotty_dog_ear_neck_and_leg_stand_out_and_the_neck_is_narrow(small_spine, model_2mm, level):
    dog = scotty_dog_measurements(small_spine, model_2mm, level)
    for part in ("ear", "neck", "leg"):
        assert dog[f"{part}_contrast"] > MIN_CONTRAST, (part, dog)
    assert dog["neck_width"] < min(dog["ear_width"], dog["leg_width"]), dog


# How much more the neck (pars) attenuates than the image just beside it, across its width, as a fraction
# of the grey scale: what makes it read as a narrow isthmus of bone between the eye and the front leg.
# Measured on the 2 mm spine (generator 23) at L3/L4/L5, neck centre over its two sides: 0.13/-0.11,
# 0.11/0.09, 0.09/0.11 (L3's lower side runs onto the eye: the dog's neck there is not seen). Generator 45:
# 0.08/-0.02, 0.10/0.07, 0.05/0.06, the pars bar running from the junction at the pedicle's mid-height (L5's
# "neck" then beside its eye). Generator 47, the pars from under the pedicle down to the facet joint below
# (vertebra.pars_part): 0.05/0.12, 0.08/0.16, 0.07/-0.03: L5's neck now lies between its eye and front leg,
# where one side of it is as dense as the neck.
MIN_NECK_EDGE = 0.05


def neck_profile(anatomy, model, level: str, side: str = "left") -> dict[str, float]:
    """Across the projected pars (its minor axis), the grey (attenuation) at its centre minus that just
    beyond each edge, as a fraction of the grey scale (mean of 5 parallel lines along the neck), and the
    widths of the neck and the eye (pixels), on the noiseless Scotty-dog view."""
    carm = scotty_dog(anatomy, level, side, detector_pixels=PIXELS)
    image = render_fluoro(anatomy, carm, dose=None, display=Display(polarity="bone_black"))
    grey = 255.0 - image.pixels.astype(np.float64)
    neck = _pixels_of(anatomy, carm, _pars_mask(anatomy, model, level, side))
    points = np.argwhere(neck).astype(float)
    centre = points.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov((points - centre).T))
    across, along = vectors[:, 0], vectors[:, 1]
    half = 2.0 * np.sqrt(values[0])
    t = np.arange(-half - 6.0, half + 6.01, 0.5)
    lines = [centre + s * along for s in (-2.0, -1.0, 0.0, 1.0, 2.0)]
    profile = np.mean([ndimage.map_coordinates(grey, line[:, None] + t[None, :] * across[:, None], order=1)
                       for line in lines], axis=0)
    middle = profile[np.abs(t) <= half / 2.0].mean()
    edges = [profile[(t < -half - 1.0) & (t > -half - 6.0)].mean(), profile[(t > half + 1.0) & (t < half + 6.0)].mean()]
    eye = _pixels_of(anatomy, carm, anatomy.mask(f"{level}.pedicle.{side}"))
    return {"neck_over_side_a": (middle - edges[0]) / 255.0, "neck_over_side_b": (middle - edges[1]) / 255.0,
            "neck_width": 2.0 * half, "eye_width": _width_px(eye)}


@pytest.mark.slow
@pytest.mark.parametrize("level", [pytest.param("L3", marks=pytest.mark.xfail(
    strict=True, reason="issue 16: L3's neck over its near side 0.048 (0.05 wanted) on generator 50 with xray10's "
    "display (its window a quarter window below the thinnest tissue: 0.051 on spine9's branch with the old one)")),
    "L4", pytest.param("L5", marks=pytest.mark.xfail(
        strict=True, reason="issue 15: L5's neck, now between its eye and front leg (generator 47), has one side "
        "0.03 denser than itself on the 2 mm patient"))])
def test_the_scotty_dogs_neck_is_a_narrow_isthmus_with_less_bone_on_both_sides(small_spine, model_2mm, level):
    dog = neck_profile(small_spine, model_2mm, level)
    assert dog["neck_width"] < dog["eye_width"], dog
    assert min(dog["neck_over_side_a"], dog["neck_over_side_b"]) > MIN_NECK_EDGE, dog


LEVELS_AND_SIDES = [(level, side) for level in ("L3", "L4") for side in ("left", "right")]


def _noiseless_scotty_view(anatomy, level: str, side: str):
    """The Scotty dog view of ``level`` from ``side`` and its noiseless frame."""
    carm = scotty_dog(anatomy, level, side, detector_pixels=PIXELS)
    return carm, render_fluoro(anatomy, carm, dose=None, display=Display(letters=False))


# The dog's eye is the pedicle seen nearly end-on: a tube of cortex round a cancellous core, so on the Scotty view
# the rays along its walls cross more bone than those through its middle (a ring, clinical.md §1 [S30]), measured
# as test_pedicle_ring measures the AP's ring (each wall's line integral over the lightest point between them,
# across the image through the pedicle's centre landmark). The 1 mm patient (generator 62 and 67 alike), walls
# lateral/medial: L3 left 0.09/0.19, right 0.21/0.13; L4 left 0.06/0.20, right 0.19/0.13. With the pedicle's cortex
# painted as its core (CORTEX_MM and PEDICLE_MEDIAL_CORTEX_MM 0) L3 left keeps 0.031/0.069, right 0.105/0.048 (the
# bone round it): red.
MIN_EYE_WALL_LINE_INTEGRAL = 0.05
# The neck (pars) is a narrow isthmus: across its long axis at most this fraction of the ear's (SAP's) width. The 1 mm
# patient (generators 62 and 67): L3 left 0.36, right 0.36; L4 left 0.43, right 0.48; with the pars bar 28 mm wide
# instead of 8 (vertebra.pars_part, naming more of the arch pars) L3 left 0.76, right 0.59: red.
MAX_NECK_OVER_EAR = 0.55


@pytest.mark.slow
@pytest.mark.parametrize("level, side", LEVELS_AND_SIDES)
def test_the_scotty_dogs_eye_is_a_ring_and_its_neck_narrower_than_its_ear(spine_1mm, model_1mm, level, side):
    carm, image = _noiseless_scotty_view(spine_1mm, level, side)
    eye = _walls(spine_1mm, carm, level, side, image.line_integrals, "")
    assert min(eye["wall_a"], eye["wall_b"]) > MIN_EYE_WALL_LINE_INTEGRAL, eye
    dog = scotty_dog_measurements(spine_1mm, model_1mm, level, side)
    assert dog["neck_width"] < MAX_NECK_OVER_EAR * dog["ear_width"], dog


def transverse_process_outline(anatomy, carm, line_integrals: np.ndarray, level: str, side: str) -> float:
    """How much more the transverse process's cranial and caudal borders attenuate than its core (line integrals,
    the mean of the two borders): down 5 image columns a pixel apart, 0.6 of the way from the pedicle's centre to the
    process's far end, the highest value in each outer third of the column's run across the process over the
    lowest in its middle third."""
    region = _pixels_of(anatomy, carm, anatomy.mask(f"{level}.transverse_process.{side}"))
    pedicle_column = np.argwhere(_pixels_of(anatomy, carm, anatomy.mask(f"{level}.pedicle.{side}")))[:, 1].mean()
    columns = np.flatnonzero(region.any(axis=0))
    far_end = columns[np.argmax(np.abs(columns - pedicle_column))]
    middle = int(round(pedicle_column + 0.6 * (far_end - pedicle_column)))
    borders = []
    for column in range(middle - 2, middle + 3):
        rows = np.flatnonzero(region[:, column])
        across = line_integrals[rows.min() - 1:rows.max() + 2, column]
        third = across.size // 3
        core = across[third:across.size - third].min()
        borders.append(0.5 * (across[:third + 1].max() + across[-third - 1:].max()) - core)
    return float(np.mean(borders))


# The far side's transverse process (clear of the body on the Scotty view) shows its cranial and caudal borders as a
# dense outline round a lighter core (generator.TRANSVERSE_PROCESS_SHELL_MM_BY_FACING), not an even paddle. The 1 mm
# patient, L3 left/right, L4 left/right (the side of the view; the process measured is the other one): generator 62
# (1.2 mm of cortex all round) 0.006/0.013/0.009/0.003, red; generator 67 0.031/0.042/0.026/0.021 (the mean of the
# middle column and those 2 px either side), of the process's ~0.15 over the soft tissue beside it.
MIN_TRANSVERSE_PROCESS_OUTLINE = 0.017


@pytest.mark.slow
@pytest.mark.parametrize("level, side", LEVELS_AND_SIDES)
def test_the_far_transverse_process_is_outlined_by_its_borders(spine_1mm, level, side):
    carm, image = _noiseless_scotty_view(spine_1mm, level, side)
    far = "right" if side == "left" else "left"
    outline = transverse_process_outline(spine_1mm, carm, image.line_integrals, level, far)
    assert outline > MIN_TRANSVERSE_PROCESS_OUTLINE, outline
