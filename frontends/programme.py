"""The programme view: per cohort and case, how its trainees do. Pass rate, grade distribution, the cohort's
CUSUM learning curve at the case, dose and fluoroscopy time (median and 75th percentile) and the most
frequent safety flags, from the stored attempts.

Only finished attempts are graded; abandoned ones are counted beside them (never as failures, as in the
trainee's own curve). The cohort's CUSUM runs over its trainees' finished attempts at the case in the order
they were started (:func:`scoring.curves.learning_curve`, Bolsin & Colson 2000): it tells whether the
cohort's failure rate at the case is acceptable (10%) or not (30%), a programme's view of the same test.
Percentiles interpolate linearly between attempts (NumPy's default), so the 75th of four doses lies
between the third and the fourth.

Pure: stored attempts and cohorts in, summaries out.

Examples
--------
>>> grade_band(69.9), grade_band(70.0), grade_band(100.0)
('50-69', '70-84', '85-100')
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from frontends.store import Attempt
from scoring.curves import LearningCurve, learning_curve

ALL_TRAINEES = "all trainees"
# Grade bands of the distribution, by their lower edges: the pass mark (70, the report's "score at least 70"
# gate) and 85 (the expert path grades at least 85, scoring/report.py's doctest) split the passes; 50 halves
# the failures. [ED]
GRADE_BANDS: tuple[tuple[str, float], ...] = (("0-49", 0.0), ("50-69", 50.0), ("70-84", 70.0), ("85-100", 85.0))
MOST_FREQUENT_FLAGS = 3


def grade_band(grade: float) -> str:
    """The band of :data:`GRADE_BANDS` a grade falls in."""
    return [name for name, lower in GRADE_BANDS if grade >= lower][-1]


@dataclass(frozen=True)
class CaseSummary:
    """How a cohort did at one case.

    ``grade_counts`` holds the finished attempts per band of :data:`GRADE_BANDS`, in order; doses and times
    are None without a finished attempt; ``flags`` the most frequent safety flags as (title, attempts
    raising it), most frequent first.
    """

    cohort: str
    scenario_id: str
    procedure: str
    trainees: int
    finished: int
    abandoned: int
    passed: int
    grade_counts: tuple[int, ...]
    curve: LearningCurve
    passes_in_order: tuple[bool, ...]
    dap_median_gy_cm2: float | None
    dap_p75_gy_cm2: float | None
    fluoro_median_s: float | None
    fluoro_p75_s: float | None
    flags: tuple[tuple[str, int], ...]

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.finished if self.finished else None


def case_summary(cohort: str, scenario_id: str, attempts: list[Attempt], procedure: str = "") -> CaseSummary:
    """The summary of ``attempts`` (a cohort's at ``scenario_id``, oldest first)."""
    done = [a for a in attempts if a.status == "finished" and a.report is not None]
    passes = tuple(bool(a.report["passed"]) for a in done)
    bands = Counter(grade_band(a.report["grade"]) for a in done)
    doses = [a.report["metrics"]["dose_area_product_gy_cm2"] for a in done]
    times = [a.report["metrics"]["fluoro_seconds"] for a in done]
    flags: Counter = Counter()
    for attempt in done:  # an attempt counts once per kind of flag
        flags.update({flag.get("title") or flag["code"] for flag in attempt.report.get("flags", [])})
    procedure = next((a.report["procedure"] for a in done), procedure)
    return CaseSummary(cohort=cohort, scenario_id=scenario_id, procedure=procedure,
                       trainees=len({a.user_id for a in attempts}), finished=len(done),
                       abandoned=sum(a.status == "abandoned" for a in attempts), passed=sum(passes),
                       grade_counts=tuple(bands[name] for name, _ in GRADE_BANDS),
                       curve=learning_curve([not p for p in passes]), passes_in_order=passes,
                       dap_median_gy_cm2=_percentile(doses, 50), dap_p75_gy_cm2=_percentile(doses, 75),
                       fluoro_median_s=_percentile(times, 50), fluoro_p75_s=_percentile(times, 75),
                       flags=tuple(sorted(flags.items(), key=lambda item: (-item[1], item[0]))[:MOST_FREQUENT_FLAGS]))


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def programme_summaries(attempts: list[Attempt], cohorts: dict[str, list[str]], *, cohort: str | None = None,
                        scenario_id: str | None = None,
                        procedures: dict[str, str] | None = None) -> list[CaseSummary]:
    """Per cohort (by name) and case (by id), the summary of its trainees' attempts; with ``cohort`` only
    that cohort, and :data:`ALL_TRAINEES` (every attempt, whatever its trainee's cohorts) when ``cohort`` is
    that name; with ``scenario_id`` only that case. Cases no trainee of a cohort attempted are left out.

    Parameters
    ----------
    attempts : list of Attempt
        Stored attempts, oldest first (:meth:`frontends.store.Store.attempts`).
    cohorts : dict
        Cohort name -> its trainees' user names (:meth:`frontends.store.Store.cohorts`).
    procedures : dict, optional
        Scenario id -> procedure, for cases without a finished attempt.
    """
    groups = {ALL_TRAINEES: None} | {name: set(members) for name, members in cohorts.items()}
    if cohort is not None:
        groups = {cohort: groups[cohort]} if cohort in groups else {}
    procedures = procedures or {}
    found = []
    for name, members in groups.items():
        chosen = [a for a in attempts if (members is None or a.user_name in members)
                  and (scenario_id is None or a.scenario_id == scenario_id)]
        for case in sorted({a.scenario_id for a in chosen}):
            at_case = [a for a in chosen if a.scenario_id == case]
            found.append(case_summary(name, case, at_case, procedures.get(case, "")))
    return found
