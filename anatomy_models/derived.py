"""Derived data held by the object it derives from: computed once, dropped with its owner.

An :class:`~anatomy_models.anatomy.Anatomy` or a :class:`~anatomy_models.volume.Volume` carries one
:class:`Derived` store. Costly results of it (projector tables, acoustic maps, the needle's structure
codes, a DRR per pose) go in that store instead of module globals, so they live exactly as long as
their owner, no cache is keyed on ``id()`` (ids are reused after garbage collection), and one call,
:meth:`Derived.clear`, drops them all. The store is generic (hashable key -> value): it knows nothing
of what the engine keeps in it.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

import numpy as np

from anatomy_models.errors import SpinesimError

T = TypeVar("T")


class Derived:
    """A get-or-compute store of values derived from its owner.

    Two kinds of entry: a value kept until :meth:`clear` (``store(key, compute)``), and a value on a
    *shelf* of the last few used (``store.recent(shelf, key, compute, keep=n)``), for results per
    pose that would otherwise pile up. Keys include everything the value depends on beyond the owner
    (energy, pose, detector, display settings...); by convention their first item names the module
    that made them (``("drr.table", kev, method, axis)``).

    A copy or a pickle of a store is empty: derived data is recomputed, never carried along.

    A process that keeps its owner for hours (a workstation keeps its patient) can also bound the shelves' bytes
    in all (:meth:`limit_shelves`): past the budget, the least recently used value of any shelf is dropped.

    Processes that hold the same owner (the workstations of one server, each with the same patient) can
    share its large kept arrays instead of each holding a copy: with :meth:`share_arrays` set, a kept value
    that is an array, or a dataclass with array fields, of at least ``min_bytes`` has those arrays replaced
    by what ``place`` returns for them (e.g. the same values memory-mapped read-only from a file every
    process maps: :func:`frontends.web.patients.shared_arrays`).

    Examples
    --------
    >>> store = Derived()
    >>> store(("square", 3), lambda: 3 * 3)
    9
    >>> store(("square", 3), lambda: 0)          # computed once: the kept value comes back
    9
    >>> [store.recent("frames", pose, lambda: pose * 10, keep=2) for pose in (1, 2, 3)]
    [10, 20, 30]
    >>> store.count("frames"), len(store)        # pose 1, the least recently used, was dropped
    (2, 3)
    >>> store.clear(); len(store)
    0
    """

    def __init__(self) -> None:
        self._kept: dict[Hashable, object] = {}
        self._shelves: dict[Hashable, OrderedDict[Hashable, object]] = {}
        self._place: Callable[[np.ndarray], np.ndarray] | None = None
        self._min_bytes = 0
        # Every shelved value's bytes by (shelf, key), least recently used first, when the shelves have a budget.
        self._shelved_bytes: OrderedDict[tuple[Hashable, Hashable], int] = OrderedDict()
        self._budget_bytes: int | None = None

    def __call__(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The value of ``key``, from ``compute()`` on first use and kept until :meth:`clear`."""
        if key not in self._kept:
            self._kept[key] = self._placed(compute())
        return self._kept[key]  # type: ignore[return-value]

    def share_arrays(self, place: Callable[[np.ndarray], np.ndarray], *, min_bytes: int) -> None:
        """From now on, put the large arrays of kept values where ``place`` puts them (see the class docstring):
        ``place(array)`` returns an array of the same values, shape and dtype (read-only: kept values are
        never written).

        Examples
        --------
        >>> store = Derived()
        >>> store.share_arrays(lambda array: np.full_like(array, 7), min_bytes=80)  # a stand-in that shows where
        >>> int(store("small", lambda: np.ones(4))[0]), int(store("large", lambda: np.ones(40))[0])
        (1, 7)
        """
        self._place, self._min_bytes = place, int(min_bytes)

    def _placed(self, value: T) -> T:
        if self._place is None:
            return value
        if isinstance(value, np.ndarray):
            return self._place(value) if value.nbytes >= self._min_bytes else value  # type: ignore[return-value]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            arrays = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.init}
            large = {name: self._place(array) for name, array in arrays.items()
                     if isinstance(array, np.ndarray) and array.nbytes >= self._min_bytes}
            return dataclasses.replace(value, **large) if large else value
        return value

    def recent(self, shelf: Hashable, key: Hashable, compute: Callable[[], T], *, keep: int) -> T:
        """The value of ``key`` on ``shelf``, which holds the ``keep`` most recently used values (and all the shelves
        together at most the bytes of :meth:`limit_shelves`, if set).

        Raises
        ------
        SpinesimError
            If ``keep`` is not a positive whole number.
        """
        if int(keep) != keep or keep < 1:
            raise SpinesimError(f"a shelf of derived data must keep at least one value, got keep={keep!r}",
                                hint="pass keep as a positive whole number")
        values = self._shelves.setdefault(shelf, OrderedDict())
        if key in values:
            values.move_to_end(key)
            if (shelf, key) in self._shelved_bytes:
                self._shelved_bytes.move_to_end((shelf, key))
            return values[key]  # type: ignore[return-value]
        value = values[key] = compute()
        while len(values) > keep:
            dropped, _ = values.popitem(last=False)
            self._shelved_bytes.pop((shelf, dropped), None)
        if self._budget_bytes is not None:
            self._shelved_bytes[(shelf, key)] = array_bytes(value)
            self._hold_to_budget()
        return value

    def limit_shelves(self, budget_bytes: int) -> None:
        """From now on, hold the arrays of every shelf's values to ``budget_bytes`` in all: past it, the least recently
        used value of any shelf is dropped (the one just made always stays, however large).

        Examples
        --------
        >>> store = Derived()
        >>> store.limit_shelves(2500)
        >>> [store.recent(shelf, n, lambda: np.zeros(n * 100), keep=8).nbytes for shelf, n in (("a", 1), ("b", 2))]
        [800, 1600]
        >>> store.recent("a", 1, lambda: None, keep=8).nbytes   # used again: now the most recent
        800
        >>> store.recent("b", 3, lambda: np.zeros(100), keep=8).nbytes, store.count("a"), store.count("b"), store.shelved_bytes()
        (800, 1, 1, 1600)
        """
        self._budget_bytes = int(budget_bytes)
        self._shelved_bytes = OrderedDict(((shelf, key), array_bytes(value)) for shelf, values in self._shelves.items()
                                          for key, value in values.items())
        self._hold_to_budget()

    def shelved_bytes(self) -> int:
        """The bytes of the arrays the shelves hold now (counted while a budget is set: :meth:`limit_shelves`)."""
        return sum(self._shelved_bytes.values())

    def _hold_to_budget(self) -> None:
        total = self.shelved_bytes()
        while total > self._budget_bytes and len(self._shelved_bytes) > 1:
            (shelf, key), size = self._shelved_bytes.popitem(last=False)
            del self._shelves[shelf][key]
            total -= size

    def count(self, shelf: Hashable) -> int:
        """How many values ``shelf`` holds now."""
        return len(self._shelves.get(shelf, ()))

    def clear(self) -> None:
        """Drop every value (kept and shelved): the one place derived data is forgotten."""
        self._kept.clear()
        self._shelves.clear()
        self._shelved_bytes.clear()

    def __len__(self) -> int:
        return len(self._kept) + sum(len(values) for values in self._shelves.values())

    def __reduce__(self) -> tuple:
        return (Derived, ())

    def __repr__(self) -> str:
        return f"Derived({len(self)} values)"


def array_bytes(value: object) -> int:
    """The bytes of the numpy arrays in ``value``: an array, or held by a tuple, list, dict, dataclass or object's
    attributes (each array once, however often it is reached; a view counts as its own bytes).

    Examples
    --------
    >>> image = np.zeros((4, 4), np.float32)
    >>> array_bytes(image), array_bytes((image, {"same": image, "half": image[:2]})), array_bytes(3.0)
    (64, 96, 0)
    """
    total, seen, stack = 0, set(), [value]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            total += item.nbytes
        elif isinstance(item, (tuple, list)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            stack.extend(vars(item).values())
        elif hasattr(item, "__slots__"):
            stack.extend(getattr(item, name) for name in item.__slots__ if hasattr(item, name))
    return total
