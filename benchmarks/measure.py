"""What a benchmark reports: a value, the same-run baseline it is divided by, and the goal."""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Measurement:
    """One benchmark figure as ``value / baseline`` with a goal on that ratio.

    ``goal_max`` bounds the ratio from above (e.g. time <= 1.5x a reference reader), ``goal_min``
    from below (e.g. >= 5x faster, with the ratio taken as reference / ours).
    """

    name: str
    value: float
    baseline: float
    unit: str
    baseline_name: str
    goal_max: float | None = None
    goal_min: float | None = None

    @property
    def ratio(self) -> float:
        return self.value / self.baseline

    @property
    def met(self) -> bool:
        return (self.goal_max is None or self.ratio <= self.goal_max) and (self.goal_min is None or self.ratio >= self.goal_min)

    @property
    def value_text(self) -> str:
        return f"{self.value:.4g} {self.unit}"

    @property
    def baseline_text(self) -> str:
        return f"{self.baseline:.4g} {self.unit} ({self.baseline_name})"

    @property
    def goal_text(self) -> str:
        parts = []
        if self.goal_max is not None:
            parts.append(f"<= {self.goal_max:g}x")
        if self.goal_min is not None:
            parts.append(f">= {self.goal_min:g}x")
        return " and ".join(parts) or "-"


def best_time(function: Callable[[], Any], repeats: int = 3, clock: Callable[[], float] = time.perf_counter) -> float:
    """Best seconds of ``repeats`` calls (the least disturbed run), wall-clock unless another ``clock``
    is given (``time.process_time`` counts the CPU time of all the process's threads)."""
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        function()
        best = min(best, clock() - start)
    return best


def peak_python_memory(function: Callable[[], Any]) -> tuple[Any, int]:
    """The result of ``function()`` and the peak bytes numpy/Python allocated while it ran."""
    tracemalloc.start()
    try:
        result = function()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak
