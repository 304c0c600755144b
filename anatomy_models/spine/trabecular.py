"""Cancellous bone's trabecular pattern in the CT numbers of a generated bone.

Cancellous bone is a lattice of plates and rods about 0.1-0.2 mm thick, 0.5-1 mm apart; in a lumbar
vertebral body the vertical trabeculae, which carry the axial load, dominate and the horizontal ones
are thinner and fewer (micro-CT of human vertebrae: trabecular separation ~0.5-1 mm, the vertebral
body the most anisotropic site, vertical first; Hildebrand et al., "Direct three-dimensional
morphometric analysis of human cancellous bone", J Bone Miner Res 14:1167, 1999). A 1 mm CT voxel
averages several trabeculae, so what survives on the CT, and through it on a radiograph, is a
subtle mottle of a few per cent of the bone's contrast and vertical striation: the coarse texture a
radiologist calls the vertebral body's "trabecular pattern".

:func:`trabecular_texture_hu` makes that pattern for one bone: a mottle (band-pass white noise at
the trabecular spacing) plus vertical striation (white noise smoothed little across the body axis
and much along it, the vertical trabeculae), weighted by how cancellous each voxel is (none in the
cortical shell) and zero on average over the bone, so that the bone's mean CT number does not move.
The body axis is the grid's third axis (the generator's grids run inferior to superior along it).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# Standard deviation of the pattern in fully cancellous bone, HU [ED: at 1 mm voxels a cancellous
# core of ~250 HU (clinical.md §5.1: +200 to +400) varies by ~20-40% from voxel to voxel; 110 HU
# before the reconstruction blur, which halves it, is that].
TRABECULAR_HU = 110.0
# Share of the pattern's variance in vertical striation (the rest is isotropic mottle) [ED: vertical
# trabeculae dominate in the vertebral body, Hildebrand 1999]. 0.6 with 3 mm runs (STRIATION_SIGMAS_MM) until
# generator 38: through a body's 35-45 mm on the AP or lateral the striation averaged out into an even mottle
# (issue 15's "flat bone with no trabecular texture": on the lateral L4 the body's line integrals varied 1.53
# times as much across the body axis as along it); 0.8 with 8 mm runs keeps a vertical grain (1.78).
VERTICAL_SHARE = 0.8
# In the sacrum and the ilia the trabeculae follow the arcs that carry the load from the sacrum round to
# the acetabula, not the body's axis: vertical striation there, summed through their thick lateral masses
# and posterior ilia, drew straight vertical streaks on AP views (issue 15's "comb streaks") [ED].
PELVIC_VERTICAL_SHARE = 0.1
# Mottle: white noise band-passed between these Gaussian sigmas, mm [ED: trabecular spacing
# 0.5-1 mm, Hildebrand 1999; the coarser half of it is what a 1 mm voxel keeps].
MOTTLE_SIGMAS_MM = (0.7, 1.4)
# Striation: Gaussian sigmas across (both axes of the axial plane) and along the body axis, mm [ED: a
# vertical trabecula's spacing across; along, its run: the vertical trabeculae carry the axial load from
# endplate to endplate, the thinner horizontal struts between them (Hildebrand 1999), so a column stays
# coherent over much of the body's 25-30 mm height (clinical.md §4.1)].
STRIATION_SIGMAS_MM = (0.7, 8.0)
# CT numbers of bone (HU) where the pattern fades in from the cortical shell's surface (below the
# first, none) and out toward cortical bone (above the second, none): the cancellous weight.
CANCELLOUS_FROM_HU = 100.0
CANCELLOUS_FULL_HU = 200.0
CORTICAL_FROM_HU = 400.0
CORTICAL_FULL_HU = 900.0


def cancellous_weight(bone_hu: np.ndarray) -> np.ndarray:
    """How cancellous each bone voxel is (0-1, float32) from its untextured CT number: 0 at or below
    :data:`CANCELLOUS_FROM_HU` and in cortical bone (:data:`CORTICAL_FULL_HU` and above), 1 in between.

    >>> cancellous_weight(np.array([50.0, 150.0, 300.0, 650.0, 1200.0])).tolist()
    [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    rise = np.clip((bone_hu - CANCELLOUS_FROM_HU) / (CANCELLOUS_FULL_HU - CANCELLOUS_FROM_HU), 0.0, 1.0)
    fall = np.clip((CORTICAL_FULL_HU - bone_hu) / (CORTICAL_FULL_HU - CORTICAL_FROM_HU), 0.0, 1.0)
    return (rise * fall).astype(np.float32)


def _unit(field: np.ndarray) -> np.ndarray:
    """``field`` scaled in place to unit standard deviation."""
    field *= np.float32(1.0 / max(float(field.std()), 1e-6))
    return field


# The striation is added to the mixed pattern this many rows (first axis) at a time: a whole bone's box of
# float64 products at once was the generation's peak of memory.
MIXING_ROWS = 16


def trabecular_pattern(shape: tuple[int, int, int], spacing_mm: float, seed: object,
                       vertical_share: float = VERTICAL_SHARE) -> np.ndarray:
    """Zero-mean, unit-variance trabecular pattern (float64, ``shape``) on a grid of ``spacing_mm``:
    mottle and vertical striation (along the third axis) mixed by ``vertical_share`` of the variance.

    Drawn from ``seed`` (anything ``numpy.random.default_rng`` takes): the same seed, the same pattern.
    A grid coarser than the trabecular spacing holds no trabeculae: there the mottle is white noise.
    The hip bones' boxes hold ten million voxels: the fields are freed as soon as they are used and the
    mixing is done in place, to the same numbers as the expressions written out (test_trabecular).

    Examples
    --------
    The striation is long along the body axis and short across it:

    >>> p = trabecular_pattern((40, 40, 40), 1.0, 7)
    >>> along = np.corrcoef(p[:, :, 1:].ravel(), p[:, :, :-1].ravel())[0, 1]
    >>> across = np.corrcoef(p[1:].ravel(), p[:-1].ravel())[0, 1]
    >>> bool(along > across + 0.2), round(float(p.std()), 3)
    (True, 1.0)
    """
    rng = np.random.default_rng(seed)
    mottle = rng.standard_normal(shape, dtype=np.float32)
    fine, coarse = (sigma / spacing_mm for sigma in MOTTLE_SIGMAS_MM)
    if fine >= 0.3:
        white = mottle
        mottle = ndimage.gaussian_filter(white, fine, truncate=3.0)
        mottle -= ndimage.gaussian_filter(white, coarse, truncate=3.0)
        del white
    across, along = (sigma / spacing_mm for sigma in STRIATION_SIGMAS_MM)
    striation = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), (across, across, along),
                                        truncate=3.0)
    # sqrt(1 - share) * mottle + sqrt(share) * striation, in float64 (numpy's float64 weights promote them).
    mixed = _unit(mottle).astype(np.float64)
    del mottle
    mixed *= np.sqrt(1.0 - vertical_share)
    weight = np.sqrt(vertical_share)
    _unit(striation)
    for start in range(0, shape[0], MIXING_ROWS):
        rows = slice(start, start + MIXING_ROWS)
        mixed[rows] += weight * striation[rows]
    del striation
    mixed -= mixed.mean()
    return _unit(mixed)


def trabecular_texture_hu(bone_hu: np.ndarray, spacing_mm: float, seed: object,
                          vertical_share: float = VERTICAL_SHARE) -> np.ndarray:
    """HU to add to one bone's untextured CT numbers ``bone_hu`` for its trabecular pattern (float32).

    :data:`TRABECULAR_HU` of :func:`trabecular_pattern` (``vertical_share`` of it striation) where the bone is
    cancellous (:func:`cancellous_weight`), made zero-mean over the bone's cancellous weight so that the bone's
    mean CT number (and every part's, to the noise) is unchanged.

    Examples
    --------
    >>> core = np.full((30, 30, 30), 250.0, np.float32); core[:3] = 1200.0  # a cortical face
    >>> texture = trabecular_texture_hu(core, 1.0, 3)
    >>> float(np.abs(texture[:3]).max()), round(float(texture.mean()), 6), 60 < float(texture[3:].std()) < 160
    (0.0, 0.0, True)
    """
    weight = cancellous_weight(bone_hu)
    if not weight.any():
        return np.zeros(bone_hu.shape, np.float32)
    pattern = trabecular_pattern(bone_hu.shape, spacing_mm, seed, vertical_share)
    pattern -= np.float32((pattern * weight).sum() / weight.sum())
    weight *= np.float32(TRABECULAR_HU)
    pattern *= weight  # TRABECULAR_HU * weight * pattern, in place
    del weight
    return pattern.astype(np.float32)
