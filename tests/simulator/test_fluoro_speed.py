"""The live frame's shortcuts give the images a full computation gives (issue 18).

A live frame reuses its pose's input image (the anatomy's, kept with the frame facts) and exposes
only the pixels the needle and contrast changed; the tone curve is looked up by arithmetic and the
glare upsampled by a compiled pass. Each is checked against the computation it replaces. A live
frame projects the anatomy with a ray per few pixels (as fine as the CT's voxels): checked against
the binned detector's own DRR and against a ray per pixel.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import simulator.imaging.drr as drr
import simulator.imaging.fluoro as fluoro
import simulator.imaging.spectrum as spectrum
from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.volume import Volume
from simulator.imaging.carm import CArm
from simulator.imaging.dose import Technique
from simulator.imaging.drr import anatomy_basis_line_integrals
from simulator.imaging.fluoro import (DetectorModel, coarse_blur, detected_frame, detected_with, exposed_input,
                                      large_scale_image, live_projection_cell, projected_on_cells, render_fluoro,
                                      tone_lookup)
from simulator.imaging.spectrum import beam
from simulator.needle.shaft import Needle


@pytest.fixture(scope="module")
def phantom():
    """A soft-tissue block (2 mm voxels) with a bone block on its left, in air."""
    hu = np.full((60, 50, 40), -1000, np.int16)
    hu[10:50, 5:45, :] = 40
    hu[34:44, 20:30, 10:30] = 1200
    return Anatomy(ct=Volume.from_spacing(hu, (2, 2, 2), origin=(-59, -49, -39)), metadata={"name": "phantom"})


def _needle() -> Needle:
    return Needle(entry=np.array([10.0, -60.0, 5.0]), direction=np.array([0.2, 1.0, 0.1]), depth_mm=45.0)


@pytest.mark.parametrize("detector", [DetectorModel(), DetectorModel.flat_panel()], ids=["intensifier", "flat panel"])
def test_a_frame_exposes_only_what_changed_and_equals_a_full_exposure(phantom, detector):
    carm = CArm(detector_pixels=96)
    spectrum = beam(80.0)
    anatomy = detected_frame(phantom, carm, spectrum, "joseph")
    total = detected_with(phantom, carm, spectrum, "joseph", anatomy, None, _needle())
    changed = total != anatomy
    assert 0 < changed.sum() < 0.2 * changed.size  # the needle's pixels: a few, not none
    scatter = np.full(carm.shape, 0.05, np.float32)
    base = exposed_input(anatomy, detector=detector, carm=carm, scatter=scatter)
    reused = exposed_input(total, detector=detector, carm=carm, scatter=scatter, base=(anatomy, base))
    full = exposed_input(total, detector=detector, carm=carm, scatter=scatter)
    np.testing.assert_array_equal(reused, full)  # bit for bit: the same arithmetic on the changed pixels
    assert not np.array_equal(full, base)  # and the needle is in it


def test_rendered_frames_are_the_same_with_the_pose_cached_or_not(phantom):
    carm = CArm(detector_pixels=96)
    needles = [Needle(entry=np.array([10.0, -60.0, 5.0]), direction=np.array([0.2, 1.0, 0.1]), depth_mm=depth)
               for depth in (40.0, 45.0)]
    phantom.derived.clear()
    cold = render_fluoro(phantom, carm, needles[1], seed=3)
    phantom.derived.clear()
    render_fluoro(phantom, carm, needles[0], seed=2)  # the pose's facts made with another needle in view
    warm = render_fluoro(phantom, carm, needles[1], seed=3)
    np.testing.assert_array_equal(warm.measured, cold.measured)
    np.testing.assert_array_equal(warm.pixels, cold.pixels)


def test_tone_lookup_is_np_interp_on_even_knots():
    rng = np.random.default_rng(4)
    tone = np.sort(rng.random(257)).astype(np.float32)
    grey = rng.random((64, 64), dtype=np.float32)
    grey[0, :4] = (0.0, 1.0, 0.5, 1.0 / 256)  # the ends and knots themselves
    expected = np.interp(grey, np.linspace(0.0, 1.0, tone.size), tone)
    np.testing.assert_allclose(tone_lookup(grey, tone), expected, atol=2e-6)


def test_coarse_blur_upsamples_its_cells_linearly():
    """A linear ramp stays a ramp in the interior (a Gaussian and linear interpolation keep it), and
    the cell means are what is interpolated: against separable ``np.interp`` of the coarse blur."""
    n, cell = 64, 8
    ramp = np.tile(np.arange(n, dtype=np.float32), (n, 1))
    blurred = coarse_blur(ramp, 3.0, cell)
    inner = slice(2 * cell, n - 2 * cell)
    np.testing.assert_allclose(blurred[inner, inner], ramp[inner, inner], atol=1e-3)
    rng = np.random.default_rng(5)
    image = rng.random((n, n), dtype=np.float32)
    coarse_blurred = coarse_blur(image, 0.01, cell)  # ~no blur: the upsampled cell means
    means = image.reshape(n // cell, cell, n // cell, cell).mean(axis=(1, 3))
    centres = (np.arange(n // cell) + 0.5) * cell - 0.5
    rows = np.stack([np.interp(np.arange(n), centres, means[:, c]) for c in range(n // cell)], axis=1)
    expected = np.stack([np.interp(np.arange(n), centres, rows[r]) for r in range(n)])
    np.testing.assert_allclose(coarse_blurred, expected, atol=1e-5)


def test_a_projection_on_cells_interpolates_the_binned_detectors_drr(phantom):
    carm = CArm(detector_pixels=96)
    binned = anatomy_basis_line_integrals(phantom, carm.with_(detector_pixels=48))
    fine = projected_on_cells(phantom, carm, "joseph", 2)
    assert fine.shape == (2, 96, 96)
    # A binned pixel's centre lies between its 2 x 2 pixels (at 2k + 0.5): separable np.interp from there.
    centres = 2.0 * np.arange(48) + 0.5
    for path, coarse in zip(fine, binned):
        rows = np.stack([np.interp(np.arange(96), centres, coarse[:, c]) for c in range(48)], axis=1)
        expected = np.stack([np.interp(np.arange(96), centres, rows[r]) for r in range(96)])
        np.testing.assert_allclose(path, expected, rtol=1e-5, atol=1e-4)
    with pytest.raises(SpinesimError, match="multiple of 5"):
        projected_on_cells(phantom, CArm(detector_pixels=96), "joseph", 5)


def test_live_cell_keeps_rays_within_a_voxel_and_renders_the_same_frame(phantom):
    carm = CArm(detector_pixels=96)  # 2.4 mm pixels: 1.56 mm at the isocentre, 0.78 of a 2 mm voxel
    assert live_projection_cell(phantom, carm) == 1
    fine = CArm(detector_pixels=384)  # 0.39 mm at the isocentre: four pixels a ray are 0.78 voxel, two 0.39
    assert live_projection_cell(phantom, fine) == 2
    per_pixel, on_cells = anatomy_basis_line_integrals(phantom, fine), projected_on_cells(phantom, fine, "joseph", 2)
    field = fine.field_mask()  # an anatomy's frames are projected in the detector's round field
    for path, exact in zip(on_cells, per_pixel):  # water, bone: within half a per cent of their range
        assert np.sqrt(np.mean((path - exact)[field] ** 2)) < 0.005 * exact.max()
    needle = _needle()
    full = render_fluoro(phantom, fine, needle, seed=5)
    live = render_fluoro(phantom, fine, needle, seed=5, projection_cell=2)
    difference = (live.measured - full.measured)[full.field]
    noise = render_fluoro(phantom, fine, needle, seed=6).measured[full.field] - full.measured[full.field]
    # Under half the quantum noise (0.41): the quanta are blurred as the phantom's 2 mm voxels blur its projection
    # (projection_blur_mm, 1.5 px here), which takes the per-pixel noise to a third (the bound was a quarter).
    assert np.sqrt(np.mean(difference ** 2)) < 0.5 * np.sqrt(np.mean(noise ** 2))
    with pytest.raises(SpinesimError, match="polychromatic"):
        render_fluoro(phantom, fine, kev=60.0, projection_cell=2)


def _large_scale_image_numpy(measured, field_mask, sigma_pixels, range_sigma):
    """:func:`large_scale_image` as numpy and scipy compute it (until stop 28): each pixel's value and weight
    splatted by ``np.bincount``, read back by ``ndimage.map_coordinates`` (order 1, "nearest")."""
    n_rows, n_columns = measured.shape
    cell = max(1.0, sigma_pixels / 4.0)
    values = np.asarray(measured, np.float64)[field_mask]
    if values.size == 0:
        return measured.copy()
    bottom = float(values.min())
    levels = int((float(values.max()) - bottom) / range_sigma) + 2
    rows, columns = np.nonzero(field_mask)
    shape = (int(n_rows / cell) + 1, int(n_columns / cell) + 1, levels + 1)
    level = (values - bottom) / range_sigma
    lower = np.floor(level).astype(np.int64)
    upper_share = level - lower
    place = (rows // cell).astype(np.int64) * shape[1] + (columns // cell).astype(np.int64)
    sums = np.zeros(shape[0] * shape[1] * shape[2])
    counts = np.zeros_like(sums)
    for offset, share in ((0, 1.0 - upper_share), (1, upper_share)):
        index = place * shape[2] + lower + offset
        sums += np.bincount(index, share * values, sums.size)
        counts += np.bincount(index, share, sums.size)
    blur = (sigma_pixels / cell, sigma_pixels / cell, 1.0)
    sums = ndimage.gaussian_filter(sums.reshape(shape), blur, mode="constant", truncate=3.0)
    counts = ndimage.gaussian_filter(counts.reshape(shape), blur, mode="constant", truncate=3.0)
    at = [(rows + 0.5) / cell - 0.5, (columns + 0.5) / cell - 0.5, level]
    large = measured.copy()
    weight = ndimage.map_coordinates(counts, at, order=1, mode="nearest")
    large[field_mask] = ndimage.map_coordinates(sums, at, order=1, mode="nearest") / np.maximum(weight, 1e-12)
    return large


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 48), columns=st.integers(1, 48), seed=st.integers(0, 2 ** 32 - 1),
       field_share=st.floats(0.0, 1.0), spread=st.floats(0.0, 6.0), sigma_pixels=st.floats(0.5, 30.0),
       range_sigma=st.floats(0.02, 2.0))
def test_the_compiled_large_scale_image_is_numpys_bit_for_bit(rows, columns, seed, field_share, spread, sigma_pixels,
                                                              range_sigma):
    """The harmonisation's bilateral grid (splat and trilinear read-back compiled, a per-pose cost of the display)
    gives the image numpy's bincount and scipy's map_coordinates give, bit for bit, on any field and values."""
    rng = np.random.default_rng(seed)
    measured = (spread * rng.random((rows, columns))).astype(np.float32)
    field = rng.random((rows, columns)) < field_share
    np.testing.assert_array_equal(large_scale_image(measured, field, sigma_pixels, range_sigma),
                                  _large_scale_image_numpy(measured, field, sigma_pixels, range_sigma))


def test_the_compiled_passes_of_a_frame_let_other_threads_run():
    """The web workstation makes live frames in a worker thread while its event loop pushes them and takes
    the trainee's clicks: every compiled pass of a frame (and of a new pose's DRR) releases the GIL."""
    kernels = (fluoro._remap_where, fluoro._upsample_linear, fluoro._tone_lookup, fluoro._separable_filter,
               fluoro._normal_counts, fluoro._splat_on_grid, fluoro._read_grid, drr._needle_kernel, drr._joseph_kernel,
               drr._joseph_pair_kernel, drr._joseph_pair_kernel_avx2, drr._siddon_kernel, spectrum._detected_serial,
               spectrum._detected_parallel, spectrum._table_lookup)
    assert [kernel.py_func.__name__ for kernel in kernels if not kernel.targetoptions.get("nogil")] == []


@pytest.mark.parametrize("kev", [None, 65.0], ids=["spectrum", "one energy"])
def test_a_needle_frame_projects_its_needle_once_and_gives_the_frame_of_separate_projections(phantom, kev,
                                                                                          monkeypatch):
    """Issue 18: a needle frame projected the needle three times (the frame, then its shaft's share of the hub's
    plastic twice over) and the frame without it again. Now each once (the shaft alone a second time), and the frame
    is the one the separate projections give: its line integrals bit for bit those of each needle (this frame's and
    the recursive filter's trail) projected into the frame with contrast on its own, and the shaft's share the
    same as from a projection of its own."""
    carm = CArm(detector_pixels=96)
    needles = [Needle(entry=np.array([10.0, -60.0, 5.0]), direction=np.array([0.2, 1.0, 0.1]), depth_mm=depth)
               for depth in (45.0, 44.0)]
    iodine = np.zeros((20, 20, 20), np.float32)
    iodine[6:14, 8:12, 4:16] = 30.0
    contrast = Volume.from_spacing(iodine, (2, 2, 2), origin=(-10, -40, -20))
    render_fluoro(phantom, carm, needles[0], contrast, seed=1, kev=kev)  # the pose's facts, cached
    calls = []
    projected = fluoro.needle_as_projected

    def counted(*args, **kwargs):
        calls.append(kwargs.get("hub", True))
        return projected(*args, **kwargs)

    monkeypatch.setattr(fluoro, "needle_as_projected", counted)
    image = render_fluoro(phantom, carm, needles[0], contrast, seed=1, kev=kev, needle_trail=(needles[1], None))
    # The needle, its trail's needle, the shaft alone (the single-energy model's shaft share is read at the
    # reference energy, whose whole needle it projects too).
    assert calls == ([True, True, False] if kev is None else [True, True, True, False])
    monkeypatch.undo()
    blur = fluoro.needle_blur_mm(phantom, carm)
    if kev is None:
        spectrum = beam(Technique().kvp, Technique().filtration_mm_al)
        frame = detected_frame(phantom, carm, spectrum, "joseph")
        each = [detected_with(phantom, carm, spectrum, "joseph", frame, contrast, shown) for shown in (*needles, None)]
    else:
        frame = drr.anatomy_line_integrals(phantom, carm, kev=kev)
        with_contrast = frame + fluoro.contrast_line_integrals(contrast, carm, kev=kev)
        each = [with_contrast + fluoro.needle_as_projected(shown, carm, blur, kev) for shown in needles]
        each.append(with_contrast)
    assert np.array_equal(image.line_integrals, fluoro.averaged_frames(each))
    whole = fluoro.needle_as_projected(needles[0], carm, blur)
    assert np.array_equal(fluoro.shaft_fraction(needles[0], carm, blur, whole),
                          fluoro.shaft_fraction(needles[0], carm, blur))
