"""CT numbers for a generated anatomy: tissue HU, seeded texture, reconstruction blur and noise.

Each labelled voxel starts at its tissue's CT number from the tissue table (clinical.md §5.1).
Bone gets a cortical shell (cortical HU near the surface, fading into cancellous HU over the
shell's thickness) and a trabecular pattern inside; muscle gets fibre-like striation along the body
axis, fat and organs a faint speckle. The image is then blurred like a reconstruction kernel (about
0.8 mm FWHM [ED]) and gets a little white noise, so slices and DRRs look like CT, not a cartoon.
Work is done in slabs along z so the peak memory stays a few slabs above the final arrays.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage

from anatomy_models.structures import LabelTable
from anatomy_models.tissues import TISSUES

RECONSTRUCTION_FWHM_MM = 0.8         # [ED] a standard soft/bone kernel
NOISE_HU = 6.0                      # [ED] quantum noise after reconstruction
TRABECULAR_HU = 110.0               # [ED] amplitude of the trabecular pattern
TRABECULAR_SCALE_MM = 0.7           # [ED] trabecular spacing ~1 mm
MUSCLE_STRIATION_HU = 9.0
FAT_SPECKLE_HU = 10.0
ORGAN_VARIATION_HU = 12.0
SLAB_VOXELS = 48

ProgressCallback = Callable[[float, float, str], None]


def _fwhm_to_sigma(fwhm_mm: float, spacing_mm: float) -> float:
    return fwhm_mm / (2.0 * np.sqrt(2.0 * np.log(2.0))) / spacing_mm


def tissue_hu_lookup(table: LabelTable) -> tuple[np.ndarray, np.ndarray]:
    """(HU per label id, texture class per label id: 0 none, 1 muscle, 2 fat, 3 organ)."""
    size = max((label.id for label in table), default=0) + 1
    hu = np.full(size, TISSUES["air"].hu, dtype=np.float32)
    texture = np.zeros(size, dtype=np.uint8)
    for label in table:
        hu[label.id] = TISSUES[label.tissue].hu
        texture[label.id] = {"muscle": 1, "fat": 2, "soft_tissue": 3}.get(label.tissue, 0)
    return hu, texture


def synthesize_ct(labels: np.ndarray, table: LabelTable, bone_hu: list[tuple[tuple[slice, slice, slice], np.ndarray, np.ndarray]],
                  spacing_mm: float, seed: int, progress: ProgressCallback | None = None) -> np.ndarray:
    """CT numbers (int16 HU) for a label map.

    Parameters
    ----------
    labels : numpy.ndarray, uint16, shape (ni, nj, nk)
        Label ids on the grid.
    table : LabelTable
        Label id -> tissue.
    bone_hu : list of (box, mask, hu)
        Per bone region (index box), the voxels it owns (bool) and their CT numbers before texture
        (cortical shell and cancellous core from the bone's signed distance).
    spacing_mm : float
        Voxel size, mm.
    seed : int
        Seed of every texture and of the noise.
    """
    hu_of, texture_of = tissue_hu_lookup(table)
    ct = hu_of[labels]
    for box, mask, values in bone_hu:
        region = ct[box]
        region[mask] = values[mask]
    sigma_recon = _fwhm_to_sigma(RECONSTRUCTION_FWHM_MM, spacing_mm)
    texture = texture_of[labels]
    nk = labels.shape[2]
    out = np.empty(labels.shape, dtype=np.int16)
    halo = 6
    fine = TRABECULAR_SCALE_MM / spacing_mm
    bone_voxels = np.zeros(labels.shape, dtype=bool)
    for box, mask, _ in bone_hu:
        bone_voxels[box] |= mask
    for start in range(0, nk, SLAB_VOXELS):
        stop = min(start + SLAB_VOXELS, nk)
        lo, hi = max(start - halo, 0), min(stop + halo, nk)
        shape = (labels.shape[0], labels.shape[1], hi - lo)
        slab = ct[:, :, lo:hi].copy()
        # One white field, filtered three ways: trabecular band-pass, striation along z, speckle. It is
        # drawn slice by slice from per-slice seeds, so the halo of one slab holds the same noise as the
        # neighbouring slab and no seam shows between slabs.
        white = _white_noise(shape[:2], range(lo, hi), seed, 11)
        tex = texture[:, :, lo:hi]
        if fine >= 0.3:
            trabecular = ndimage.gaussian_filter(white, fine) - ndimage.gaussian_filter(white, 2.0 * fine)
            trabecular *= TRABECULAR_HU / max(float(trabecular.std()), 1e-6)
        else:  # a coarse grid cannot hold trabeculae: a faint mottle instead
            trabecular = white * (TRABECULAR_HU * 0.4)
        bones = bone_voxels[:, :, lo:hi]
        slab[bones] += trabecular[bones] * np.clip((slab[bones] - 150.0) / 300.0, 0.0, 1.0) * \
            np.clip((900.0 - slab[bones]) / 500.0, 0.0, 1.0)
        striation = ndimage.gaussian_filter(white, (0.5 / spacing_mm, 0.5 / spacing_mm, 2.5 / spacing_mm))
        striation *= 1.0 / max(float(striation.std()), 1e-6)
        slab[tex == 1] += MUSCLE_STRIATION_HU * striation[tex == 1]
        slab[tex == 2] += FAT_SPECKLE_HU * striation[tex == 2]
        organ = ndimage.gaussian_filter(white, 4.0 / spacing_mm)
        organ *= 1.0 / max(float(organ.std()), 1e-6)
        slab[tex == 3] += ORGAN_VARIATION_HU * organ[tex == 3]
        if sigma_recon > 0.2:
            slab = ndimage.gaussian_filter(slab, sigma_recon)
        slab += NOISE_HU * _white_noise(shape[:2], range(lo, hi), seed, 12)
        out[:, :, start:stop] = np.clip(np.rint(slab[:, :, start - lo:start - lo + stop - start]), -1024, 3071)
        if progress:
            progress(stop, nk, "CT texture")
    return out


def _white_noise(shape: tuple[int, int], slices: range, seed: int, stream: int) -> np.ndarray:
    """Standard normal float32 noise for the given z slices, each slice from its own seed."""
    return np.stack([np.random.default_rng([seed, stream, k]).standard_normal(shape, dtype=np.float32)
                     for k in slices], axis=2)


def bone_hu_from_depth(depth_mm: np.ndarray, cortex_mm: np.ndarray) -> np.ndarray:
    """CT numbers of bone from the depth below its surface (mm): cortical shell over cancellous core.

    >>> bone_hu_from_depth(np.array([0.2, 5.0]), np.array([1.0, 1.0])).round().tolist()
    [1200.0, 300.0]
    """
    cortical, cancellous = TISSUES["cortical_bone"].hu, TISSUES["cancellous_bone"].hu
    weight = np.clip(1.5 - depth_mm / np.maximum(cortex_mm, 1e-3), 0.0, 1.0)
    return (cancellous + (cortical - cancellous) * weight).astype(np.float32)
