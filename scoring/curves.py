"""Learning curves: a trainee's failures at one procedure, in order, as a CUSUM with its decision limits.

The standard CUSUM of procedural training (Bolsin S, Colson M. "The use of the Cusum technique in the
assessment of trainee competence in new procedures". Int J Qual Health Care 2000;12(5):433-438, after
Wald's sequential probability ratio test): with an acceptable failure rate p0, an unacceptable one p1 and
the chances alpha (of calling an acceptable trainee unacceptable) and beta (the reverse),

    P = ln(p1 / p0),  Q = ln((1 - p0) / (1 - p1)),  s = Q / (P + Q)
    a = ln((1 - beta) / alpha),  b = ln((1 - alpha) / beta)
    h0 = -b / (P + Q)   (lower limit),  h1 = a / (P + Q)   (upper limit)

Starting at 0, each failure adds 1 - s and each success subtracts s. A curve that reaches h0 shows a
failure rate no worse than p0 (the trainee is competent at the procedure); one that reaches h1 shows a
failure rate at p1 or worse. Between the two the data cannot yet tell. [ED] After each decision the sum
restarts at 0 (the sequential test repeated), so that an early run of failures does not hide a later
competence, nor an early run of passes a later decline: the verdict is the latest decision.

Pure: pass/fail in order in, the curve out. Nothing is read from the store here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

# No published failure rates exist for simulated fluoroscopic lumbar injections (clinical.md §6.3, §7).
# [ED] 10% acceptable and 30% unacceptable, with alpha = beta = 0.10, as in the CUSUM studies of trainee
# procedures (Bolsin & Colson 2000 used rates of this order for epidural and arterial cannulation).
ACCEPTABLE_FAILURE_RATE = 0.10  # p0 [ED]
UNACCEPTABLE_FAILURE_RATE = 0.30  # p1 [ED]
FALSE_ALARM_RISK = 0.10  # alpha: an acceptable trainee's curve reaching h1 [ED]
MISSED_ALARM_RISK = 0.10  # beta: an unacceptable trainee's curve reaching h0 [ED]

# A sum equal to a limit reaches it: with the default rates two failures in a row land exactly on h1
# (2 (1 - s) = 2 P / (P + Q) = ln 9 / (P + Q)), which floating point may miss by an ulp.
_ROUNDING = 1e-9

Verdict = Literal["competent", "unacceptable", "undecided"]


@dataclass(frozen=True)
class CusumLimits:
    """The CUSUM's step on a success and its two decision limits (dimensionless, in failures)."""

    success_step: float  # s: subtracted for a success; a failure adds 1 - s
    lower: float  # h0 (< 0): reached -> failure rate acceptable
    upper: float  # h1 (> 0): reached -> failure rate unacceptable


@dataclass(frozen=True)
class LearningCurve:
    """A CUSUM over attempts, oldest first.

    ``values[i]`` is the sum after attempt i + 1 (restarted at 0 after each decision); ``decisions`` the
    attempt numbers (1-based) at which it reached a limit, and which; ``competent_at`` and
    ``unacceptable_at`` the first attempt at which it reached the lower or the upper limit; ``verdict``
    the latest decision ("undecided" before the first).
    """

    values: tuple[float, ...]
    limits: CusumLimits
    decisions: tuple[tuple[int, Verdict], ...]
    verdict: Verdict

    @property
    def competent_at(self) -> int | None:
        return next((number for number, kind in self.decisions if kind == "competent"), None)

    @property
    def unacceptable_at(self) -> int | None:
        return next((number for number, kind in self.decisions if kind == "unacceptable"), None)


def cusum_limits(acceptable: float = ACCEPTABLE_FAILURE_RATE, unacceptable: float = UNACCEPTABLE_FAILURE_RATE,
                 alpha: float = FALSE_ALARM_RISK, beta: float = MISSED_ALARM_RISK) -> CusumLimits:
    """The step and limits for failure rates ``acceptable`` < ``unacceptable`` and risks ``alpha``, ``beta``.

    Raises
    ------
    ValueError
        If a rate or risk is outside (0, 1) or ``acceptable`` is not below ``unacceptable``.

    Examples
    --------
    >>> limits = cusum_limits(0.10, 0.30, 0.10, 0.10)
    >>> round(limits.success_step, 4), round(limits.lower, 4), round(limits.upper, 4)
    (0.1862, -1.6277, 1.6277)
    """
    if not all(0 < value < 1 for value in (acceptable, unacceptable, alpha, beta)):
        raise ValueError("failure rates and risks must lie strictly between 0 and 1")
    if acceptable >= unacceptable:
        raise ValueError(f"the acceptable failure rate {acceptable} must be below the unacceptable {unacceptable}")
    p = math.log(unacceptable / acceptable)
    q = math.log((1 - acceptable) / (1 - unacceptable))
    return CusumLimits(success_step=q / (p + q), lower=-math.log((1 - alpha) / beta) / (p + q),
                       upper=math.log((1 - beta) / alpha) / (p + q))


def learning_curve(failed: Sequence[bool], limits: CusumLimits | None = None) -> LearningCurve:
    """The CUSUM of attempts that ``failed`` (True) or passed (False), oldest first.

    Examples
    --------
    >>> curve = learning_curve([True] + [False] * 14)   # one failure, then 14 passes
    >>> curve.verdict, curve.competent_at, round(curve.values[0], 3)
    ('competent', 15, 0.814)
    >>> learning_curve([True, True, False, False]).decisions   # h1 reached at 2 (2 - 2 s = h1)
    ((2, 'unacceptable'),)
    """
    limits = limits or cusum_limits()
    values: list[float] = []
    decisions: list[tuple[int, Verdict]] = []
    total = 0.0
    for number, failure in enumerate(failed, start=1):
        total += (1.0 - limits.success_step) if failure else -limits.success_step
        values.append(total)
        if total <= limits.lower + _ROUNDING or total >= limits.upper - _ROUNDING:
            decisions.append((number, "competent" if total < 0 else "unacceptable"))
            total = 0.0
    return LearningCurve(tuple(values), limits, tuple(decisions), decisions[-1][1] if decisions else "undecided")


def verdict_text(curve: LearningCurve) -> str:
    """The curve's latest decision in words, for the review.

    >>> verdict_text(learning_curve([False] * 9))
    'competent (lower limit reached at attempt 9)'
    """
    if not curve.decisions:
        return "not yet decided (between the limits)"
    number, kind = curve.decisions[-1]
    if kind == "competent":
        return f"competent (lower limit reached at attempt {number})"
    return f"failure rate unacceptable (upper limit reached at attempt {number})"
