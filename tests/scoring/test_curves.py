"""The CUSUM learning curve against a hand-computed example and its closed form, and the peer percentile."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.curves import cusum_limits, learning_curve, verdict_text
from scoring.peers import percentile_rank, percentile_text


def test_limits_match_the_hand_computed_values_of_bolsin_and_colson_formula():
    # p0 10%, p1 30%, alpha = beta = 0.10: P = ln 3 = 1.098612, Q = ln(0.9 / 0.7) = 0.251314,
    # s = Q / (P + Q) = 0.186169, h1 = ln 9 / (P + Q) = 1.627662 = -h0.
    limits = cusum_limits(0.10, 0.30, 0.10, 0.10)
    assert limits.success_step == pytest.approx(0.186169, abs=1e-6)
    assert limits.upper == pytest.approx(1.627662, abs=1e-6) and limits.lower == pytest.approx(-1.627662, abs=1e-6)
    # p0 5%, p1 15%, alpha 0.05, beta 0.20: P = ln 3, Q = ln(0.95 / 0.85) = 0.111226, s = 0.091934,
    # h1 = ln(0.8 / 0.05) / (P + Q) = 2.291703, h0 = -ln(0.95 / 0.2) / (P + Q) = -1.287895.
    skewed = cusum_limits(0.05, 0.15, 0.05, 0.20)
    assert skewed.success_step == pytest.approx(0.091934, abs=1e-6)
    assert skewed.upper == pytest.approx(2.291703, abs=1e-6) and skewed.lower == pytest.approx(-1.287895, abs=1e-6)


def test_a_trainee_who_fails_early_then_passes_reaches_the_upper_then_after_the_restart_the_lower_limit():
    # Fail, pass, fail, fail: 3 (1 - s) - s = 3 - 4 s = 2.255324 >= h1 at attempt 4; the sum restarts at 0.
    # Then passes only: n s >= 1.627662 from n = 9 (9 s = 1.675520), at attempt 13.
    curve = learning_curve([True, False, True, True] + [False] * 9)
    assert curve.values[:5] == pytest.approx((0.813831, 0.627662, 1.441493, 2.255324, -0.186169), abs=1e-6)
    assert curve.decisions == ((4, "unacceptable"), (13, "competent")) and curve.verdict == "competent"
    assert curve.unacceptable_at == 4 and curve.competent_at == 13
    assert verdict_text(curve) == "competent (lower limit reached at attempt 13)"
    assert learning_curve([True, False, True, True] + [False] * 8).verdict == "unacceptable"
    assert learning_curve([]).verdict == "undecided" and learning_curve([False] * 8).verdict == "undecided"
    assert learning_curve([False] * 18).decisions == ((9, "competent"), (18, "competent"))
    # Two failures in a row land exactly on h1: 2 (1 - s) = 2 P / (P + Q) = ln 9 / (P + Q) = h1.
    assert learning_curve([True, True]).decisions == ((2, "unacceptable"),)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), max_size=60),
       st.floats(0.01, 0.4), st.floats(0.05, 0.5), st.floats(0.01, 0.3), st.floats(0.01, 0.3))
def test_between_decisions_the_curve_is_failures_minus_s_times_attempts_and_the_verdict_is_the_latest(
        failed, acceptable, gap, alpha, beta):
    limits = cusum_limits(acceptable, min(acceptable + gap, 0.99), alpha, beta)
    curve = learning_curve(failed, limits)
    s = limits.success_step
    assert 0 < s < 1 and limits.lower < 0 < limits.upper and len(curve.values) == len(failed)
    restart = 0  # attempts before the current run of the test
    decided = dict(curve.decisions)
    for number, value in enumerate(curve.values, start=1):
        closed_form = sum(failed[restart:number]) - (number - restart) * s
        assert math.isclose(value, closed_form, abs_tol=1e-9)
        reached = value <= limits.lower + 1e-9 or value >= limits.upper - 1e-9
        assert (number in decided) == reached
        if reached:
            assert decided[number] == ("competent" if value < 0 else "unacceptable")
            restart = number
    assert curve.verdict == (curve.decisions[-1][1] if curve.decisions else "undecided")


def test_limits_refuse_rates_that_cannot_define_a_test():
    for rates in ((0.3, 0.1, 0.1, 0.1), (0.0, 0.3, 0.1, 0.1), (0.1, 0.3, 1.0, 0.1)):
        with pytest.raises(ValueError):
            cusum_limits(*rates)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 100), min_size=1, max_size=40), st.data())
def test_a_percentile_lies_in_0_100_and_a_higher_grade_never_ranks_lower(grades, data):
    mine, other = data.draw(st.sampled_from(grades)), data.draw(st.sampled_from(grades))
    assert 0 < percentile_rank(mine, grades) < 100 or len(set(grades)) == 1
    if mine > other:
        assert percentile_rank(mine, grades) > percentile_rank(other, grades)
    assert sum(percentile_rank(g, grades) for g in grades) == pytest.approx(50.0 * len(grades))


def test_percentile_by_hand():
    assert percentile_rank(80, [60, 70, 80, 90]) == 62.5  # (2 below + 1/2 equal) / 4
    assert percentile_rank(60, [60, 60, 90, 90]) == 25.0
    assert percentile_text(90, [60, 70, 80, 90]) == "88th percentile of 4 attempts at this case"
    with pytest.raises(ValueError):
        percentile_rank(50, [])
