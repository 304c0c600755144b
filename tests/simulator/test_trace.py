import gc
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.structures import Label, LabelTable
from simulator.needle.trace import BONE_STANDOFF_MM, Tracer, stop_at_bone, tracer_for
from tests.simulator.anatomy_phantoms import LAYER_TOPS, layered_phantom, mini_spine


def _unit(vector):
    vector = np.asarray(vector, float)
    return vector / np.linalg.norm(vector)


@settings(max_examples=60, deadline=None)
@given(x=st.floats(20, 44), z=st.floats(20, 44), dx=st.floats(-0.4, 0.4), dz=st.floats(-0.4, 0.4))
def test_depths_match_the_analytic_planes(x, z, dx, dz):
    """Planar interfaces y = const at known places: every depth in/out within 0.1 mm of analytic."""
    tracer = tracer_for(layered_phantom())
    direction = _unit([dx, -1.0, dz])
    entry = tracer.skin_entry([x, 62.0, z], direction)
    assert entry[1] == pytest.approx(LAYER_TOPS["skin"], abs=0.1)
    trace = tracer.trace(entry, direction, 40.0)
    by_name = {s.structure: s for s in trace.segments}
    tops = sorted(LAYER_TOPS.items(), key=lambda item: -item[1])
    for (name, top), (_, bottom) in zip(tops, tops[1:] + [("end", 20.5)]):
        expected_in = (entry[1] - top) / -direction[1]
        expected_out = (entry[1] - bottom) / -direction[1]
        assert by_name[name].depth_in_mm == pytest.approx(expected_in, abs=0.1)
        if expected_out < 40.0:
            assert by_name[name].depth_out_mm == pytest.approx(expected_out, abs=0.1)
    assert [s.structure for s in trace.segments][:6] == [name for name, _ in tops]


def test_bone_stops_the_needle_at_its_analytic_surface():
    tracer = tracer_for(layered_phantom())
    direction = _unit([0.3, -1.0, 0.2])
    entry = tracer.skin_entry([20.0, 62.0, 30.0], direction)
    trace = tracer.trace(entry, direction, 45.0)
    depth, bone = stop_at_bone(trace, 45.0)
    surface = (entry[1] - LAYER_TOPS["L4.lamina.left"]) / -direction[1]
    assert bone.structure == "L4.lamina.left"
    assert depth == pytest.approx(surface - BONE_STANDOFF_MM, abs=0.1)
    assert tracer.structure_at(entry + depth * direction) == "epidural_space"
    assert stop_at_bone(trace, surface - 1.0) == (surface - 1.0, None)


def test_the_tip_structure_is_the_last_segment_and_unlabelled_tissue_comes_from_ct():
    tracer = tracer_for(mini_spine())
    trace = tracer.trace([0, 45, -3], [0, -1, 0], 50.0)
    assert [s.structure for s in trace.segments][:4] == ["air", "skin", "fat", "muscle.erector_spinae.right"]
    assert trace.tip.structure == tracer.structure_at([0, -5, -3]) == "dural_sac.csf"
    assert "soft_tissue" in [s.structure for s in trace.segments]  # unlabelled body voxels: CT number
    assert tracer.structure_at([0, 42, 0]) == "air"
    assert tracer.structure_at([0, 80, 0]) == "outside"  # beyond the grid


def test_skin_entry_snaps_points_on_both_sides_of_the_skin():
    tracer = tracer_for(layered_phantom())
    down = np.array([0.0, -1.0, 0.0])
    np.testing.assert_allclose(tracer.skin_entry([30, 63, 30], down), [30, 60.5, 30], atol=1e-3)
    np.testing.assert_allclose(tracer.skin_entry([30, 52, 30], down), [30, 60.5, 30], atol=1e-3)
    with pytest.raises(SpinesimError, match="never meets the patient's skin"):
        tracer.skin_entry([30, 63, 30], [0, 1, 0])


def test_nerve_distance_matches_the_root_cylinder():
    tracer = tracer_for(mini_spine())
    a, b = np.array([6.0, -3.0, 9.0]), np.array([34.0, -3.0, -8.0])
    middle = 0.5 * (a + b)
    across = _unit(np.cross(b - a, [0, 1, 0]))
    for offset in (4.0, 6.0, 9.0):
        assert tracer.nerve_root_distance((middle + offset * across)[None])[0] == pytest.approx(offset - 2.5, abs=0.6)
    assert tracer.nerve_root_distance(middle[None])[0] == 0.0
    assert np.isinf(tracer_for(layered_phantom()).nerve_root_distance(np.array([[30.0, 30.0, 30.0]])))[0]


def test_a_tracer_is_cached_per_anatomy_and_fast():
    anatomy = mini_spine()
    assert tracer_for(anatomy) is tracer_for(anatomy)
    tracer = Tracer(anatomy)
    import time

    tracer.trace([0, 45, -3], [0, -1, 0], 80.0)
    start = time.perf_counter()
    for _ in range(50):
        tracer.trace([3, 45, -3], _unit([-0.1, -1, 0.2]), 80.0)
    assert (time.perf_counter() - start) / 50 < 0.005


def test_a_tracer_is_held_by_its_anatomy_and_dies_with_it():
    """The tracer refers back to its anatomy; held by the anatomy (not a module global), both are freed."""
    shared = layered_phantom()
    anatomy = Anatomy(ct=shared.ct, label_table=shared.label_table, labels=shared.labels)
    tracer = weakref.ref(tracer_for(anatomy))
    owner = weakref.ref(anatomy)
    del anatomy
    gc.collect()
    assert owner() is None and tracer() is None


def test_codes_take_one_byte_when_they_fit_and_two_when_a_label_id_needs_it():
    small = layered_phantom()
    assert Tracer(small).codes.dtype == np.uint8
    # The same layers with the ligament relabelled 300 (an importer's id): codes need uint16.
    table = LabelTable([Label(300 if label.name.startswith("ligamentum") else label.id, label.name, label.tissue)
                        for label in small.label_table])
    labels = np.where(small.labels.array == small.label_table.by_name("ligamentum_flavum.L4-L5").id, 300,
                      small.labels.array).astype(np.uint16)
    wide = Anatomy(ct=small.ct, label_table=table, labels=small.labels.with_array(labels))
    tracer = Tracer(wide)
    assert tracer.codes.dtype == np.uint16
    assert [s.structure for s in tracer.trace([30, 63, 30], [0, -1, 0], 40.0).segments] == \
        [s.structure for s in Tracer(small).trace([30, 63, 30], [0, -1, 0], 40.0).segments]
    assert tracer.structure_at([30, 35, 30]) == "ligamentum_flavum.L4-L5"
