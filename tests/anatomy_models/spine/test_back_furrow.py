"""The back's midline furrow (issue 16: "a long straight line across the contralateral oblique"): its walls rose
steeply from a flat floor, the same at every level, so a CLO's rays, 35-40 deg to the back at CLO 50-55, ran along
one plane of skin and drew it as a straight line down the whole image."""

import numpy as np

# A CLO of 55 deg sends its rays at 90 - 55 = 35 deg to the back (CLO 50: 40 deg): skin at least as steep, for some
# height, holds rays along it. The tallest run of the back's skin steeper than 35 deg, sampled every 0.5 mm across
# (generator 44, soft_tissue.FURROW_ROUNDING_MM 7): L2-L5 0, 0.4, 0, 0 mm (the steepest 0.5 mm: 32-39 deg); with the
# walls unrounded 6.4, 7.0, 3.8 and 0.4 mm (66-74 deg at L2-L4). The furrow keeps 94-96% of its depth.
MAX_STEEP_RUN_MM = 1.0
RAY_TO_BACK_DEG = 35.0


def steep_run_mm(back_y: np.ndarray, step_mm: float) -> float:
    """The tallest run (mm of height) of a skin profile sampled every ``step_mm`` steeper than RAY_TO_BACK_DEG.

    >>> steep_run_mm(np.array([0.0, 0.0, 1.0, 2.0, 2.1, 3.1]), 0.5)
    2.0
    """
    rise = np.abs(np.diff(back_y))
    tallest = run = 0.0
    for steep, height in zip(np.degrees(np.arctan(rise / step_mm)) > RAY_TO_BACK_DEG, rise):
        run = run + float(height) if steep else 0.0
        tallest = max(tallest, run)
    return tallest


def test_the_back_has_no_wall_a_clo_ray_runs_along(small_spine, model_2mm):
    x = np.arange(-60.0, 60.01, 0.5, dtype=np.float32)
    runs = {}
    for level in ("L2", "L3", "L4", "L5"):
        z = np.float32(small_spine.landmark(f"{level}.body.center")[2])
        back_y = model_2mm.trunk.back_y(x[:, None], np.full((1, 1), z, np.float32))[:, 0]
        runs[level] = round(steep_run_mm(back_y, 0.5), 2)
    assert max(runs.values()) < MAX_STEEP_RUN_MM, runs
