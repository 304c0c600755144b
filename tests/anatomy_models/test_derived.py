"""Derived data held by its owner: computed once, bounded where asked, cleared in one call, freed with the owner."""

import copy
import gc
import pickle
import weakref
from dataclasses import replace

import numpy as np
import pytest

from anatomy_models.anatomy import Anatomy
from anatomy_models.derived import Derived
from anatomy_models.errors import SpinesimError
from anatomy_models.volume import Volume


def counting(value):
    """A compute function returning ``value`` and the list of its calls."""
    calls = []
    return (lambda: calls.append(1) or value), calls


def constant(value):
    return lambda: value


def small_anatomy() -> Anatomy:
    return Anatomy(ct=Volume.from_spacing(np.full((6, 6, 6), 40, np.int16), (2, 2, 2)))


def test_get_or_compute_computes_once_per_key():
    store = Derived()
    compute, calls = counting([1, 2])
    first = store(("module.thing", 1), compute)
    assert store(("module.thing", 1), compute) is first and len(calls) == 1
    store(("module.thing", 2), compute)
    assert len(calls) == 2 and len(store) == 2


def test_none_is_a_value_and_a_failed_compute_keeps_nothing():
    store = Derived()
    compute, calls = counting(None)
    assert store("nothing", compute) is None and store("nothing", compute) is None
    assert len(calls) == 1

    def fail():
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        store("failing", fail)
    assert len(store) == 1


def test_a_shelf_keeps_the_most_recently_used():
    store = Derived()
    for pose in (1, 2, 3):
        store.recent("frames", pose, lambda: object(), keep=3)
    oldest = store.recent("frames", 1, pytest.fail, keep=3)      # used again: now the newest
    store.recent("frames", 4, lambda: object(), keep=3)          # drops pose 2, the least recently used
    assert store.count("frames") == 3
    assert store.recent("frames", 1, pytest.fail, keep=3) is oldest
    compute, calls = counting("again")
    store.recent("frames", 2, compute, keep=3)
    assert calls == [1]


def test_shelves_are_bounded_apart_and_from_kept_values():
    store = Derived()
    store("frames", lambda: "kept")
    for pose in range(10):
        store.recent(("frames", 60.0), pose, lambda: pose, keep=2)
        store.recent(("frames", 80.0), pose, lambda: pose, keep=3)
    assert (store.count(("frames", 60.0)), store.count(("frames", 80.0)), store.count("elsewhere")) == (2, 3, 0)
    assert store("frames", pytest.fail) == "kept" and len(store) == 6


@pytest.mark.parametrize("keep", [0, -1, 1.5])
def test_a_shelf_must_keep_a_positive_whole_number(keep):
    with pytest.raises(SpinesimError, match="keep"):
        Derived().recent("frames", 1, lambda: 1, keep=keep)


def test_clear_drops_kept_and_shelved_values():
    store = Derived()
    store("table", lambda: 1)
    store.recent("frames", 1, lambda: 1, keep=4)
    store.clear()
    assert len(store) == 0 and store.count("frames") == 0
    compute, calls = counting(2)
    assert store("table", compute) == 2 and calls == [1]


def test_copies_and_pickles_carry_no_derived_data():
    store = Derived()
    store("table", lambda: np.zeros(3))
    for other in (copy.copy(store), copy.deepcopy(store), pickle.loads(pickle.dumps(store))):
        assert isinstance(other, Derived) and len(other) == 0


def test_anatomy_clear_derived_is_the_one_place():
    anatomy = small_anatomy()
    anatomy.tissue_map()
    anatomy.derived("engine.table", lambda: np.ones(4))
    anatomy.ct.derived("engine.prepared", lambda: np.ones(4))
    anatomy.clear_derived()
    assert len(anatomy.derived) == 0 and len(anatomy.ct.derived) == 0
    assert anatomy.tissue_map()[0].shape == anatomy.ct.shape


def test_a_replaced_anatomy_or_volume_starts_with_nothing_derived():
    anatomy = small_anatomy()
    anatomy.tissue_map()
    assert len(replace(anatomy, metadata={"name": "other"}).derived) == 0
    anatomy.ct.derived("engine.prepared", lambda: 1)
    assert len(anatomy.ct.with_array(anatomy.ct.array + 1).derived) == 0
    assert "derived" not in repr(anatomy.ct)


def test_derived_data_dies_with_its_anatomy():
    """Even a value that refers back to its anatomy (as the needle's tracer does) does not keep it alive."""
    anatomy = small_anatomy()
    table = np.ones(1000)
    anatomy.derived("engine.table", constant(table))
    anatomy.derived("engine.back_reference", constant([anatomy]))
    anatomy.ct.derived("engine.prepared", constant(table))
    owner, held = weakref.ref(anatomy), weakref.finalize(table, lambda: None)
    del anatomy, table
    gc.collect()
    assert owner() is None and not held.alive
