"""CT numbers for a generated anatomy: tissue HU, seeded texture, reconstruction blur and noise.

Each labelled voxel starts at its tissue's CT number from the tissue table (clinical.md §5.1).
Bone gets a cortical shell (cortical HU near the surface, fading into cancellous HU below the
shell's thickness) and a trabecular pattern inside (:mod:`anatomy_models.spine.trabecular`);
muscle gets fibre-like striation along the body axis, fat and organs a faint speckle. The colon's
content (label ``colon_content``) is stool mottled with gas: blotches a few millimetres across
between :data:`STOOL_HU`'s bounds.

Bone is partial-volume, like a real scanner's: a voxel the bone's surface passes through holds the
fraction ``clip(0.5 - sdf / spacing, 0, 1)`` of bone (from the bone's signed distance) and the
rest of its own tissue, so a surface oblique to the grid is a smooth ramp, not a staircase, and a
shell thinner than a voxel still shows as a continuous line (no dotted endplates, no moire on the
DRR). The labels stay nearest-centre (a voxel is bone where its centre is).

The image is then blurred like a reconstruction kernel (about 0.8 mm FWHM [ED], the same along the
body axis: :data:`SLICE_PROFILE_FWHM_MM`) and gets a little white noise, so slices and DRRs look like
CT, not a cartoon. Work is done in slabs along z so the peak memory stays a few slabs above the final
arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage, special

from anatomy_models.spine.trabecular import VERTICAL_SHARE, trabecular_texture_hu
from anatomy_models.structures import LabelTable
from anatomy_models.tissues import TISSUES

RECONSTRUCTION_FWHM_MM = 0.8         # [ED] a standard soft/bone kernel, in the slice plane
# Along the body axis the same blur as across it. A scanner's 1 mm helical slice is wider (~1.5 mm FWHM [ED], the value
# until generator 66), but this CT is not a scan to be read: it is the patient a fluoroscope sees, at ~0.2 mm
# (tests/anatomy_models/spine/test_body_shell.py). Along z lie the bodies' endplates, seen edge-on on the squared AP
# as a line at each level: the wider profile spread a real endplate's bone (its 0.53 mm of 1100 HU,
# generator.BODY_SHELL_MM_BY_FACING) over 1.5 mm and left the line 1.5-1.6 times the body's inside on the built-in
# patient's AP (tests/simulator/test_body_lines_on_ap.py), 1.6-1.8 now, with no bone added (the DXA's mineral,
# bone_mineral, unchanged: L1-L4 1.101 against 1.096 g/cm^2).
SLICE_PROFILE_FWHM_MM = RECONSTRUCTION_FWHM_MM
NOISE_HU = 6.0                      # [ED] quantum noise after reconstruction
MUSCLE_STRIATION_HU = 9.0
FAT_SPECKLE_HU = 10.0
ORGAN_VARIATION_HU = 12.0
ORGAN_SCALE_MM = 8.0                # [ED] size of the slow organ-density variation
ORGAN_WAVELENGTH_MM = 90.0
# Stool mixed with gas: -900 (a gas bubble) to -100 HU (packed faeces), mottled [ED, plain films and CT of
# the colon: faeces are a "mottled" or "bubbly" lucency]; STOOL_GAS_SHARE of it is gas. The mottle has two
# scales (Gaussian sigmas, mm, and their weights): small bubbles 2-3 mm across through all of it, and pockets
# of 6-10 mm that gather them, so a film shows bubbles clustered, not an even grain [ED].
STOOL_HU = (-900.0, -100.0)
STOOL_MOTTLE_MM = ((0.8, 0.6), (2.5, 0.8))
STOOL_GAS_SHARE = 0.35                # [ED]
SLAB_VOXELS = 32
CORTEX_RAMP_MM = 1.0                # [ED] cortical to cancellous over about a millimetre (endosteal margin)
# What a bone voxel's non-bone share holds where the surface passes through it: the periosteal soft
# tissue (ligament, muscle, fat, disc average) [ED]; it only matters in half a voxel's depth.
PERIOSTEAL_HU = 40.0

ProgressCallback = Callable[[float, float, str], None]


@dataclass
class BoneRegion:
    """One bone (a vertebra, the sacrum, an ilium) for the CT: its signed distance and CT numbers.

    ``box`` is the index box of ``grid``; ``sdf_mm`` (float32, the box's shape) the bone's signed
    distance in mm (negative inside); ``hu`` (float32, same shape) the CT number of bone at each voxel
    (shell and core, before texture), used wherever the voxel holds some bone; ``vertical_share`` the
    share of its trabecular pattern in vertical striation (:func:`trabecular_texture_hu`).
    """

    box: tuple[slice, slice, slice]
    sdf_mm: np.ndarray
    hu: np.ndarray
    vertical_share: float = VERTICAL_SHARE


@dataclass
class SurfaceBand:
    """The voxels a boundary between two tissues cuts (the skin's outer surface, say), for partial volume.

    ``ijk`` (int32, shape (n, 3)) are the voxels, ``inside_share`` (float32, (n,)) the share of each
    on the inside; the voxel's CT number becomes ``share * inside_hu + (1 - share) * outside_hu``.
    """

    ijk: np.ndarray
    inside_share: np.ndarray
    inside_hu: float
    outside_hu: float


def inside_fraction(sdf_mm: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Share of a voxel (0-1) that a surface with signed distance ``sdf_mm`` at its centre cuts off
    as inside: the anti-aliasing ramp over one voxel.

    >>> inside_fraction(np.array([-1.0, -0.25, 0.0, 0.25, 1.0]), 1.0).tolist()
    [1.0, 0.75, 0.5, 0.25, 0.0]
    """
    return np.clip(0.5 - sdf_mm / np.float32(spacing_mm), 0.0, 1.0).astype(np.float32)


def _fwhm_to_sigma(fwhm_mm: float, spacing_mm: float) -> float:
    return fwhm_mm / (2.0 * np.sqrt(2.0 * np.log(2.0))) / spacing_mm


def tissue_hu_lookup(table: LabelTable) -> tuple[np.ndarray, np.ndarray]:
    """(HU per label id, texture class per label id: 0 none, 1 muscle, 2 fat, 3 organ, 4 stool)."""
    size = max((label.id for label in table), default=0) + 1
    hu = np.full(size, TISSUES["air"].hu, dtype=np.float32)
    texture = np.zeros(size, dtype=np.uint8)
    for label in table:
        hu[label.id] = TISSUES[label.tissue].hu
        texture[label.id] = {"muscle": 1, "fat": 2, "soft_tissue": 3}.get(label.tissue, 0)
        if label.name.startswith("colon_content"):
            texture[label.id] = 4
    return hu, texture


def stool_hu(field: np.ndarray) -> np.ndarray:
    """CT numbers of stool from a standard normal blotch field: its top STOOL_GAS_SHARE is gas, soft edges.

    >>> [round(float(h)) for h in stool_hu(np.array([-3.0, 3.0]))]
    [-100, -900]
    """
    edge = float(np.sqrt(2.0) * special.erfinv(1.0 - 2.0 * STOOL_GAS_SHARE))  # the field's quantile at the gas share
    gas = 1.0 / (1.0 + np.exp(-(field - edge) / 0.25))
    low, high = STOOL_HU
    return (high + gas * (low - high)).astype(np.float32)



def smoothed_white_std(sigma_voxels: float) -> float:
    """Standard deviation of unit white noise in 3D after scipy's Gaussian filter (truncated at 3 sigma):
    the root of the sum of the squared weights of its kernel, per axis (away from the array's edges, where
    the reflected noise is doubled).

    >>> rng = np.random.default_rng(0)
    >>> smoothed = ndimage.gaussian_filter(rng.standard_normal((60, 60, 60)), 1.5, truncate=3.0)
    >>> abs(float(smoothed[10:-10, 10:-10, 10:-10].std()) / smoothed_white_std(1.5) - 1.0) < 0.03
    True
    """
    radius = int(3.0 * sigma_voxels + 0.5)
    weights = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_voxels) ** 2)
    weights /= weights.sum()
    return float(np.sqrt(np.sum(weights ** 2)) ** 3)


def stool_field(white: np.ndarray, where: np.ndarray, spacing_mm: float) -> np.ndarray:
    """The standard normal mottle field of :data:`STOOL_MOTTLE_MM` at the voxels ``where`` (bool, white's
    shape), from the white noise ``white``: filtered only over their box and scaled by the filter's known
    spread, not the slab's, so two slabs agree where they meet."""
    reach = int(3.0 * max(sigma for sigma, _ in STOOL_MOTTLE_MM) / spacing_mm + 0.5)
    found = np.argwhere(where)
    box = tuple(slice(max(a - reach, 0), min(b + reach + 1, n))
                for a, b, n in zip(found.min(axis=0), found.max(axis=0), where.shape))
    field = np.zeros(white[box].shape, dtype=np.float32)
    for sigma_mm, weight in STOOL_MOTTLE_MM:
        sigma = sigma_mm / spacing_mm
        field += ndimage.gaussian_filter(white[box], sigma, truncate=3.0) * np.float32(weight / smoothed_white_std(sigma))
    total = np.sqrt(sum(weight ** 2 for _, weight in STOOL_MOTTLE_MM))
    return field[where[box]] / np.float32(total)


def synthesize_ct(labels: np.ndarray, table: LabelTable, bones: list[BoneRegion], spacing_mm: float, seed: int,
                  progress: ProgressCallback | None = None, bands: tuple[SurfaceBand, ...] = ()) -> np.ndarray:
    """CT numbers (int16 HU) for a label map.

    Parameters
    ----------
    labels : numpy.ndarray, uint16, shape (ni, nj, nk)
        Label ids on the grid.
    table : LabelTable
        Label id -> tissue.
    bones : list of BoneRegion
        Every bone's signed distance and CT numbers (cortical shell and cancellous core from the
        depth under its surface). The trabecular texture is added to their ``hu`` in place.
    spacing_mm : float
        Voxel size, mm.
    seed : int
        Seed of every texture and of the noise.
    bands : tuple of SurfaceBand
        Boundaries between soft tissues (or air) to make partial-volume.
    """
    hu_of, texture_of = tissue_hu_lookup(table)
    texture_amplitude = np.array([0.0, MUSCLE_STRIATION_HU, FAT_SPECKLE_HU, 0.0, 0.0], dtype=np.float32)  # by class
    is_bone = np.zeros(len(hu_of), dtype=bool)
    for label in table:
        is_bone[label.id] = label.tissue == "cortical_bone"
    # Bone: the shell/core CT numbers, with a trabecular pattern where the bone is cancellous
    # (anatomy_models.spine.trabecular). Drawn per bone region: bones are a small part of the volume.
    for index, region in enumerate(bones):
        region.hu += trabecular_texture_hu(region.hu, spacing_mm, [seed, 13, index], region.vertical_share)
    # Organs: a slow variation, two smooth in-plane fields mixed by a slow wave along z (cheap, seamless).
    organ_rng = np.random.default_rng([seed, 14])
    organ_sigma = ORGAN_SCALE_MM / spacing_mm
    organ_fields = []
    for _ in range(2):
        field = ndimage.gaussian_filter(organ_rng.standard_normal(labels.shape[:2], dtype=np.float32), organ_sigma)
        organ_fields.append(field * (ORGAN_VARIATION_HU / max(float(field.std()), 1e-6)))
    organ_phase = 2.0 * np.pi * spacing_mm * np.arange(labels.shape[2]) / ORGAN_WAVELENGTH_MM + organ_rng.uniform(0, 2 * np.pi)
    sigma_recon = (_fwhm_to_sigma(RECONSTRUCTION_FWHM_MM, spacing_mm),) * 2 + (_fwhm_to_sigma(SLICE_PROFILE_FWHM_MM, spacing_mm),)
    striation_sigma = (0.5 / spacing_mm, 0.5 / spacing_mm, 2.5 / spacing_mm)
    nk = labels.shape[2]
    out = np.empty(labels.shape, dtype=np.int16)
    halo = int(np.ceil(3.0 * striation_sigma[2])) + 1
    slab_size = max(SLAB_VOXELS, 2 * halo)
    # The reconstruction blur's reach along z (scipy's radius for the truncation): only the slices it reads
    # for the slab's own are blurred.
    recon_reach = int(3.0 * sigma_recon[2] + 0.5) if sigma_recon[2] > 0.2 else 0
    previous = None
    for start in range(0, nk, slab_size):
        stop = min(start + slab_size, nk)
        lo, hi = max(start - halo, 0), min(stop + halo, nk)
        shape = (labels.shape[0], labels.shape[1], hi - lo)
        slab_labels = labels[:, :, lo:hi]
        slab = hu_of[slab_labels]
        for band in bands:
            k = band.ijk[:, 2]
            here = (k >= lo) & (k < hi)
            share = band.inside_share[here]
            slab[band.ijk[here, 0], band.ijk[here, 1], k[here] - lo] = \
                share * np.float32(band.inside_hu) + (1.0 - share) * np.float32(band.outside_hu)
        # Striation along the body axis (muscle fibres) and fat speckle from one white field, drawn
        # slice by slice from per-slice seeds so slab halos match their neighbours (no seams).
        white = _white_noise(shape[:2], range(lo, hi), seed, 11, previous)
        previous = (range(lo, hi), white)
        # In place, on two slab-sized buffers: each voxel gets the same float32 products and sums as
        # ``slab[muscle] += MUSCLE_STRIATION_HU * striation[muscle]`` and so on (the textures' voxels are
        # disjoint; elsewhere the amplitude is 0 and adds nothing), without a mask and three copies per texture.
        tex = texture_of[slab_labels]
        striation = ndimage.gaussian_filter(white, striation_sigma, truncate=3.0)
        striation *= 1.0 / max(float(striation.std()), 1e-6)
        amplitude = texture_amplitude[tex]
        amplitude *= striation
        slab += amplitude
        phase = organ_phase[lo:hi].astype(np.float32)
        organs = tex == 3
        organ, second = amplitude, striation  # the buffers, free again
        np.multiply(organ_fields[0][:, :, None], np.cos(phase), out=organ, where=organs)
        np.multiply(organ_fields[1][:, :, None], np.sin(phase), out=second, where=organs)
        np.add(organ, second, out=organ, where=organs)
        np.add(slab, organ, out=slab, where=organs)
        del amplitude, organ, second, striation
        stool = tex == 4
        if stool.any():
            # Blotches from the same white field, shifted apart from the other textures, isotropic.
            slab[stool] = stool_hu(stool_field(np.roll(white, (11, 3), axis=(0, 1)), stool, spacing_mm))
        # Bone over the soft tissue, by the share of each voxel it fills.
        slab[is_bone[slab_labels]] = PERIOSTEAL_HU
        # Each bone's share of a voxel from its signed distance, slab by slab: all the bones' shares at once were
        # 0.8 of the final arrays' bytes on top of their distances and CT numbers (the generation's peak).
        for bone in bones:
            box = bone.box
            k0, k1 = max(box[2].start, lo), min(box[2].stop, hi)
            if k0 >= k1:
                continue
            inside = (slice(None), slice(None), slice(k0 - box[2].start, k1 - box[2].start))
            share, values = inside_fraction(bone.sdf_mm[inside], spacing_mm), bone.hu[inside]
            region = slab[box[0], box[1], k0 - lo:k1 - lo]
            some = share > 0
            region[some] += share[some] * (values[some] - region[some])
        # The slab's own slices and the reconstruction blur's reach either side (where the slab has them).
        a, b = max(start - lo - recon_reach, 0), min(stop - lo + recon_reach, hi - lo)
        own = slice(start - lo - a, stop - lo - a)
        slab = slab[:, :, a:b]
        if max(sigma_recon) > 0.2:
            slab = ndimage.gaussian_filter(slab, [s if s > 0.2 else 0.0 for s in sigma_recon], truncate=3.0)
        # Quantum noise: the same white field, shifted so it is independent of the texture it made (in place
        # on the shifted copy: the same float32 sum, added the other way round).
        noisy = np.roll(white[:, :, start - lo:stop - lo], (7, 5), axis=(0, 1))
        noisy *= NOISE_HU
        noisy += slab[:, :, own]
        out[:, :, start:stop] = np.clip(np.rint(noisy, out=noisy), -1024, 3071, out=noisy)
        if progress:
            progress(stop, nk, "CT texture")
    return out


def _white_noise(shape: tuple[int, int], slices: range, seed: int, stream: int,
                 previous: tuple[range, np.ndarray] | None = None) -> np.ndarray:
    """Standard normal float32 noise for the given z slices, each slice from its own seed; the slices
    ``previous`` (the last slab's slices and noise) already holds are copied from it, not drawn again.

    >>> a = _white_noise((3, 2), range(0, 4), 1, 11)
    >>> b = _white_noise((3, 2), range(2, 6), 1, 11, (range(0, 4), a))
    >>> bool(np.array_equal(b[:, :, :2], a[:, :, 2:]))
    True
    >>> bool(np.array_equal(b, _white_noise((3, 2), range(2, 6), 1, 11)))
    True
    """
    noise = np.empty((*shape, len(slices)), dtype=np.float32)
    for index, k in enumerate(slices):
        if previous is not None and k in previous[0]:
            noise[:, :, index] = previous[1][:, :, k - previous[0].start]
        else:
            noise[:, :, index] = np.random.default_rng([seed, stream, k]).standard_normal(shape, dtype=np.float32)
    return noise


def bone_hu_from_depth(depth_mm: np.ndarray, cortex_mm: np.ndarray, core_hu: np.ndarray | float | None = None,
                       cortical_hu: np.ndarray | float | None = None) -> np.ndarray:
    """CT numbers of bone from the depth below its surface (mm): a cortical shell ``cortex_mm`` thick
    of ``cortical_hu`` (HU; the tissue table's cortical bone if None) over a cancellous core of
    ``core_hu`` (HU; the tissue table's cancellous bone if None), the two meeting over
    :data:`CORTEX_RAMP_MM`.

    >>> bone_hu_from_depth(np.array([-0.5, 0.2, 1.5, 5.0]), np.array([1.5, 1.5, 1.5, 1.5])).round().tolist()
    [1200.0, 1200.0, 750.0, 300.0]
    >>> bone_hu_from_depth(np.array([0.2, 5.0]), np.array([2.5, 2.5]), np.array([400.0, 200.0]), 900.0).round().tolist()
    [900.0, 200.0]
    """
    cortical = TISSUES["cortical_bone"].hu if cortical_hu is None else np.asarray(cortical_hu, dtype=np.float32)
    cancellous = TISSUES["cancellous_bone"].hu if core_hu is None else np.asarray(core_hu, dtype=np.float32)
    weight = np.clip((cortex_mm - depth_mm) / CORTEX_RAMP_MM + 0.5, 0.0, 1.0)
    return (cancellous + (cortical - cancellous) * weight).astype(np.float32)
