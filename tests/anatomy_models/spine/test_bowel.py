"""Bowel gas and stool look like a plain film's: mottled, rounded, irregular, never mirror-symmetric."""

from __future__ import annotations

import numpy as np
import pytest

from anatomy_models.spine.alignment import align_spine
from anatomy_models.spine.ct_synthesis import STOOL_GAS_SHARE, STOOL_HU, stool_hu
from anatomy_models.spine.parameters import SpineParameters
from anatomy_models.spine.skeleton import build_skeleton
from anatomy_models.spine.soft_tissue import (COLON_GAS_DIAMETER_MM, bowel_gas_shapes, colon_content_shapes,
                                              spine_profile)


@pytest.fixture(scope="module")
def profile():
    params = SpineParameters(spacing_mm=2.0)
    return spine_profile(build_skeleton(align_spine(params), params))


def _inside(shape, points):
    return shape.sdf(*(points[:, i].astype(np.float32) for i in range(3))) < 0.0


def test_the_two_sides_of_the_colon_are_not_mirror_images(profile):
    for seed in range(4):
        ascending, descending = colon_content_shapes(profile, seed)
        grid = np.stack(np.meshgrid(np.arange(40.0, 130.0, 3.0), np.arange(-250.0, 50.0, 3.0),
                                    np.arange(profile.z[0], profile.z[-1], 3.0), indexing="ij"), axis=-1).reshape(-1, 3)
        left = _inside(descending, grid)
        right = _inside(ascending, grid * np.array([-1.0, 1.0, 1.0]))
        assert left.sum() > 200 and right.sum() > 200  # both sides hold stool
        overlap = (left & right).sum() / (left | right).sum()
        assert overlap < 0.3, f"seed {seed}: the ascending colon mirrors the descending ({overlap:.2f} shared)"


def test_colon_gas_pockets_are_rounded_and_sized_like_a_films(profile):
    sizes = []
    for seed in range(6):
        for shape in bowel_gas_shapes(profile, seed):
            extent = np.asarray(shape.extent)
            if shape.local_sdf.__qualname__.startswith("ellipsoid"):
                sizes.append(2.0 * extent)
                assert extent.max() / extent.min() < 2.0  # rounded, not a tube
    sizes = np.concatenate(sizes)
    low, high = COLON_GAS_DIAMETER_MM
    assert sizes.min() >= low * 0.7 and sizes.max() <= high * 1.15
    assert np.percentile(sizes, 90) > 2.0 * np.percentile(sizes, 10)  # irregular in size


def test_bowel_content_is_seeded(profile):
    a, b = bowel_gas_shapes(profile, 5), bowel_gas_shapes(profile, 5)
    assert [s.frame.origin.tolist() for s in a] == [s.frame.origin.tolist() for s in b]
    assert [s.frame.origin.tolist() for s in a] != [s.frame.origin.tolist() for s in bowel_gas_shapes(profile, 6)]


def test_stool_is_mottled_gas_and_faeces_within_its_ct_range():
    hu = stool_hu(np.random.default_rng(1).standard_normal(20000))
    assert hu.min() >= STOOL_HU[0] and hu.max() <= STOOL_HU[1]
    assert abs((hu < np.mean(STOOL_HU)).mean() - STOOL_GAS_SHARE) < 0.02
    assert (hu > -200).mean() > 0.4  # mostly faeces, with bubbles
