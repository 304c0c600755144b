"""Where an attempt stands among its peers: the percentile of its grade among the finished attempts at
the same scenario. Pure: grades in, a number out."""

from __future__ import annotations

from typing import Sequence


def percentile_rank(grade: float, peer_grades: Sequence[float]) -> float:
    """The percentile (0-100) of ``grade`` among ``peer_grades`` (which include the attempt's own grade):
    the share of grades below it, counting grades equal to it half (the mid-rank definition, so that
    equal grades share one percentile and a lone attempt stands at 50).

    Raises
    ------
    ValueError
        If ``peer_grades`` is empty.

    Examples
    --------
    >>> percentile_rank(80, [60, 70, 80, 90])
    62.5
    >>> percentile_rank(75, [75])
    50.0
    """
    if not peer_grades:
        raise ValueError("no peer grades to rank the grade among")
    below = sum(peer < grade for peer in peer_grades)
    equal = sum(peer == grade for peer in peer_grades)
    return 100.0 * (below + 0.5 * equal) / len(peer_grades)


def percentile_text(grade: float, peer_grades: Sequence[float]) -> str:
    """The percentile in words ("63rd percentile of 4 attempts at this case").

    >>> percentile_text(80, [60, 70, 80, 90])
    '63rd percentile of 4 attempts at this case'
    """
    rank = int(percentile_rank(grade, peer_grades) + 0.5)  # half up: 62.5 -> 63
    suffix = "th" if 10 <= rank % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(rank % 10, "th")
    count = len(peer_grades)
    return f"{rank}{suffix} percentile of {count} attempt{'s' if count != 1 else ''} at this case"
