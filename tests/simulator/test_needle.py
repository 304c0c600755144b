import numpy as np
import pytest

from anatomy_models.errors import SpinesimError
from scenarios.needles import NeedleSpec
from simulator.needle.shaft import Needle


def test_tip_and_hub_lie_on_the_shaft():
    spec = NeedleSpec("tuohy", 20, 89.0)
    needle = Needle(entry=[10, 90, 5], direction=[0, -2, 0], depth_mm=40, spec=spec)
    np.testing.assert_allclose(needle.direction, [0, -1, 0])
    np.testing.assert_allclose(needle.tip, [10, 50, 5])
    np.testing.assert_allclose(np.linalg.norm(needle.hub - needle.tip), 89.0)
    assert spec.outer_diameter_mm == pytest.approx(0.908)


@pytest.mark.parametrize("kwargs, message", [
    ({"entry": [0, np.nan, 0]}, "entry"),
    ({"direction": [0, 0, 0]}, "direction"),
    ({"depth_mm": -1}, "depth"),
    ({"depth_mm": 100}, "depth"),
])
def test_nonsense_poses_are_refused(kwargs, message):
    pose = {"entry": [0, 0, 0], "direction": [0, 1, 0], "depth_mm": 10} | kwargs
    with pytest.raises(SpinesimError, match=message):
        Needle(**pose)


def test_nonsense_specs_are_refused():
    with pytest.raises(SpinesimError, match="gauge"):
        NeedleSpec(gauge=23)
    with pytest.raises(SpinesimError, match="kind"):
        NeedleSpec(kind="spoon")


def test_advance_withdraw_and_the_hub():
    needle = Needle(entry=[0, 80, 0], direction=[0, -1, 0], depth_mm=10, spec=NeedleSpec("quincke", 22, 89.0))
    assert needle.advanced(30).depth_mm == 40
    assert needle.advanced(500).depth_mm == 89.0  # the hub stops it at the skin
    assert needle.withdrawn(4).depth_mm == 6
    assert needle.withdrawn(50).depth_mm == 0.0
    turned = needle.redirected([1, -1, 0], 3.0)
    np.testing.assert_allclose(turned.entry, needle.entry)
    np.testing.assert_allclose(turned.direction, np.array([1, -1, 0]) / np.sqrt(2))


def test_bevel_deflection_is_deterministic_away_from_the_bevel_and_grows_with_depth_squared():
    from scenarios.needles import QUINCKE_BEVEL_DEFLECTION_DEG_PER_CM

    spec = NeedleSpec("quincke", 22, 120.0, bevel_deflection_deg_per_cm=QUINCKE_BEVEL_DEFLECTION_DEG_PER_CM)
    straight = Needle(entry=[0, 80, 0], direction=[0, -1, 0], depth_mm=0, spec=spec)
    np.testing.assert_allclose(straight.bevel_face, [0, 0, 1])  # roll 0: toward the head
    drift = {}
    for depth in (30.0, 60.0):
        bent = straight.advanced(depth)
        again = straight.advanced(depth)
        np.testing.assert_array_equal(bent.direction, again.direction)
        sideways = bent.tip - (straight.entry + depth * straight.direction)
        assert sideways[2] < 0  # away from the bevel face (which faces +z)
        assert abs(sideways[0]) < 1e-9
        drift[depth] = -sideways[2]
    # Tip offset = depth * angle, angle proportional to depth: 4x the drift at twice the depth.
    assert drift[60.0] / drift[30.0] == pytest.approx(4.0, rel=0.01)
    assert drift[60.0] == pytest.approx(60.0 * np.radians(QUINCKE_BEVEL_DEFLECTION_DEG_PER_CM * 6.0), rel=0.01)
    rolled = Needle(entry=[0, 80, 0], direction=[0, -1, 0], depth_mm=0, spec=spec, bevel_roll_deg=90).advanced(60)
    assert abs(rolled.tip[2]) < 1e-9 and abs(rolled.tip[0]) == pytest.approx(drift[60.0], rel=0.01)
    tuohy = Needle(entry=[0, 80, 0], direction=[0, -1, 0], depth_mm=0, spec=NeedleSpec("tuohy", 20, 89.0))
    np.testing.assert_allclose(tuohy.advanced(60).direction, [0, -1, 0])
    with pytest.raises(SpinesimError, match="bevel deflection"):
        NeedleSpec(bevel_deflection_deg_per_cm=-1)
