import numpy as np
import pytest

from anatomy_models.errors import SpinesimError
from simulator.needle import Needle, NeedleSpec


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
