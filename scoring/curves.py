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
failure rate at p1 or worse. Between the two the data cannot yet tell.

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

    ``values[i]`` is the sum after attempt i + 1; ``competent_at`` and ``unacceptable_at`` are the first
    attempt numbers (1-based) at which it reached the lower or the upper limit; ``verdict`` is the limit
    reached last (the sequential test's decision stands until the curve reaches the other limit).
    """

    values: tuple[float, ...]
    limits: CusumLimits
    competent_at: int | None
    unacceptable_at: int | None
    verdict: Verdict


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
    """
    limits = limits or cusum_limits()
    values, total = [], 0.0
    competent_at = unacceptable_at = None
    verdict: Verdict = "undecided"
    for number, failure in enumerate(failed, start=1):
        total += (1.0 - limits.success_step) if failure else -limits.success_step
        values.append(total)
        if total <= limits.lower:
            verdict, competent_at = "competent", competent_at or number
        elif total >= limits.upper:
            verdict, unacceptable_at = "unacceptable", unacceptable_at or number
    return LearningCurve(tuple(values), limits, competent_at, unacceptable_at, verdict)


def verdict_text(curve: LearningCurve) -> str:
    """The curve's decision in words, for the review ("competent at attempt 9", ...)."""
    if curve.verdict == "competent":
        return f"competent (lower limit first reached at attempt {curve.competent_at})"
    if curve.verdict == "unacceptable":
        return f"failure rate unacceptable (upper limit first reached at attempt {curve.unacceptable_at})"
    return "not yet decided (between the limits)"
