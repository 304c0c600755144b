import numpy as np
import pytest
from scipy import stats

from anatomy_models.errors import SpinesimError
from simulator.needle.resistance import (CHECKS_BEFORE_EPIDURAL, FALSE_LOSS_PER_CHECK, FALSE_LOSS_PER_PLACEMENT,
                                         check_loss_of_resistance)


@pytest.mark.parametrize("structure, tissue, feel", [
    ("ligamentum_flavum.L4-L5", "ligament", "high"),
    ("epidural_space", "fat", "lost"),
    ("dural_sac.csf", "csf", "lost"),
    ("L4-L5.disc.annulus", "disc_annulus", "high"),
])
def test_feel_follows_the_tip_tissue(structure, tissue, feel):
    results = {check_loss_of_resistance(structure, tissue, seed=3, check_index=i) for i in range(200)}
    assert results == {type(next(iter(results)))(feel, False)}


def test_muscle_and_fat_feel_moderate_and_low_unless_a_false_loss():
    assert check_loss_of_resistance("muscle.multifidus.left", "muscle", 0, 0).feel in ("moderate", "lost")
    feels = {check_loss_of_resistance("fat", "fat", 0, i).feel for i in range(100)}
    assert feels == {"low_moderate", "lost"}


def test_the_per_check_probability_reproduces_the_per_placement_rate():
    assert 1 - (1 - FALSE_LOSS_PER_CHECK) ** CHECKS_BEFORE_EPIDURAL == pytest.approx(FALSE_LOSS_PER_PLACEMENT)
    assert FALSE_LOSS_PER_CHECK == pytest.approx(0.0943, abs=1e-4)


@pytest.mark.parametrize("structure, tissue", [("muscle.erector_spinae.left", "muscle"),
                                               ("interspinous_ligament.L4-L5", "ligament"), ("fat", "fat")])
def test_false_loss_rate_matches_the_documented_probability(structure, tissue):
    n = 4000
    false = sum(check_loss_of_resistance(structure, tissue, seed=seed, check_index=index).false_loss
                for seed in range(40) for index in range(n // 40))
    # Two-sided binomial test at 0.1%: a wrong rate (e.g. the per-placement 25.7%) fails it.
    assert stats.binomtest(false, n, FALSE_LOSS_PER_CHECK).pvalue > 1e-3
    assert stats.binomtest(false, n, FALSE_LOSS_PER_PLACEMENT).pvalue < 1e-6


def test_checks_are_reproducible_and_the_flavum_never_lies():
    first = [check_loss_of_resistance("fat", "fat", seed=9, check_index=i) for i in range(50)]
    assert first == [check_loss_of_resistance("fat", "fat", seed=9, check_index=i) for i in range(50)]
    assert not any(check_loss_of_resistance("ligamentum_flavum.L4-L5", "ligament", 9, i).false_loss for i in range(500))
    with pytest.raises(SpinesimError, match="not in the patient"):
        check_loss_of_resistance("air", "air", 0, 0)
    assert np.mean([r.feel == "lost" for r in first]) < 0.5
