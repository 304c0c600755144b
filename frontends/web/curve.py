"""A trainee's learning curve as inline SVG: small line plots, one per measure, over their attempts, and the
CUSUM of their failures with its decision limits."""

from __future__ import annotations

from html import escape

import numpy as np

from scoring.curves import LearningCurve

_WIDTH, _ROW_HEIGHT, _LEFT, _RIGHT, _TOP = 520, 92, 118, 16, 10


def learning_curve_svg(series: list[tuple[str, list[float | None]]], *, passed: list[bool] | None = None) -> str:
    """SVG of several measures (one row each) against the attempt number.

    Parameters
    ----------
    series : list of (label, values)
        One value per attempt (None where the attempt has none, e.g. unfinished).
    passed : list of bool, optional
        Per attempt: a green dot if it passed, red if not.

    Examples
    --------
    >>> svg = learning_curve_svg([("Shots", [12, 9, 6]), ("Time (min)", [8.0, None, 4.5])], passed=[False, True, True])
    >>> svg.startswith("<svg") and svg.count("<polyline") == 2 and "#2e7d32" in svg
    True
    """
    count = max((len(values) for _, values in series), default=0)
    height = _TOP + _ROW_HEIGHT * len(series) + 24
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
             f'viewBox="0 0 {_WIDTH} {height}" font-family="Roboto, Arial, sans-serif" font-size="12">']
    plot_width = _WIDTH - _LEFT - _RIGHT

    def x_of(index: int) -> float:
        return _LEFT + (plot_width * (index / (count - 1)) if count > 1 else plot_width / 2)

    for row, (label, values) in enumerate(series):
        top = _TOP + row * _ROW_HEIGHT
        bottom = top + _ROW_HEIGHT - 22
        known = [v for v in values if v is not None]
        low, high = (min(known), max(known)) if known else (0.0, 1.0)
        if high - low < 1e-9:
            low, high = low - 1.0, high + 1.0
        parts.append(f'<text x="4" y="{top + 14}" fill="#37474f" font-weight="500">{escape(label)}</text>')
        parts.append(f'<text x="{_LEFT - 6}" y="{top + 10}" text-anchor="end" fill="#78909c">{_number(high)}</text>')
        parts.append(f'<text x="{_LEFT - 6}" y="{bottom}" text-anchor="end" fill="#78909c">{_number(low)}</text>')
        parts.append(f'<line x1="{_LEFT}" y1="{bottom}" x2="{_WIDTH - _RIGHT}" y2="{bottom}" stroke="#cfd8dc"/>')

        def y_of(value: float) -> float:
            return bottom - (bottom - top - 4) * (value - low) / (high - low)

        points = [(x_of(i), y_of(v)) for i, v in enumerate(values) if v is not None]
        if points:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="#1565c0" stroke-width="2"/>')
        for i, value in enumerate(values):
            if value is None:
                continue
            colour = "#1565c0" if passed is None else ("#2e7d32" if passed[i] else "#c62828")
            parts.append(f'<circle cx="{x_of(i):.1f}" cy="{y_of(value):.1f}" r="3.5" fill="{colour}">'
                         f'<title>attempt {i + 1}: {_number(value)}</title></circle>')
    axis_y = _TOP + _ROW_HEIGHT * len(series) + 2
    for i in _labelled(count):
        parts.append(f'<text x="{x_of(i):.1f}" y="{axis_y}" text-anchor="middle" fill="#78909c">{i + 1}</text>')
    parts.append(f'<text x="{_LEFT + plot_width / 2:.1f}" y="{axis_y + 16}" text-anchor="middle" fill="#546e7a">'
                 'attempt</text></svg>')
    return "".join(parts)


# At most this many attempt numbers under a plot: more overlap at its width (a programme's cohort has dozens).
_MAX_AXIS_LABELS = 12


def _labelled(count: int) -> list[int]:
    """The attempts (0-based) whose numbers are written under the axis: every one up to
    :data:`_MAX_AXIS_LABELS`, else the first and every 2nd, 5th, 10th, ... (the smallest such step that fits).

    >>> [i + 1 for i in _labelled(5)], [i + 1 for i in _labelled(36)]
    ([1, 2, 3, 4, 5], [1, 5, 10, 15, 20, 25, 30, 35])
    """
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10**9) if count / s <= _MAX_AXIS_LABELS)
    return [i for i in range(count) if i == 0 or (i + 1) % step == 0]


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{np.round(value, 1):g}"


_CUSUM_HEIGHT, _CUSUM_TOP = 190, 26
_LIMIT_COLOURS = {"lower": "#2e7d32", "upper": "#c62828"}


def cusum_svg(curve: LearningCurve, passed: list[bool], title: str, *, acceptable: float,
              unacceptable: float) -> str:
    """SVG of a CUSUM learning curve (:func:`scoring.curves.learning_curve`) over the attempts that
    ``passed`` or not: the sum after each attempt (a green dot a pass, red a failure, ringed where the curve
    reached a limit and restarted), its two decision limits, h1 (failure rate ``unacceptable`` or worse)
    above and h0 (``acceptable`` or better: competent) below, and 0 where it starts. The attempts sit
    where :func:`learning_curve_svg` puts them, so the two line up one above the other.

    Examples
    --------
    >>> from scoring.curves import learning_curve
    >>> svg = cusum_svg(learning_curve([True, False, False]), [False, True, True], "TFESI", acceptable=0.1,
    ...                 unacceptable=0.3)
    >>> svg.startswith("<svg") and svg.count("<circle") == 3 and "h0 competent (10%)" in svg
    True
    """
    limits, values = curve.limits, curve.values
    low = min((*values, limits.lower)) - 0.3
    high = max((*values, limits.upper)) + 0.3
    top, bottom = _CUSUM_TOP, _CUSUM_HEIGHT - 24
    plot_width = _WIDTH - _LEFT - _RIGHT
    count = len(values)
    decided = dict(curve.decisions)

    def x_of(index: int) -> float:
        return _LEFT + (plot_width * (index / (count - 1)) if count > 1 else plot_width / 2)

    def y_of(value: float) -> float:
        return bottom - (bottom - top) * (value - low) / (high - low)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_CUSUM_HEIGHT}" '
             f'viewBox="0 0 {_WIDTH} {_CUSUM_HEIGHT}" font-family="Roboto, Arial, sans-serif" font-size="12">',
             f'<text x="4" y="16" fill="#37474f" font-weight="500">{escape(title)}</text>',
             f'<text x="4" y="{top + 14}" fill="#37474f" font-weight="500">CUSUM</text>',
             f'<text x="{_LEFT - 6}" y="{y_of(0) + 4:.1f}" text-anchor="end" fill="#78909c">0</text>',
             f'<line x1="{_LEFT}" y1="{y_of(0):.1f}" x2="{_WIDTH - _RIGHT}" y2="{y_of(0):.1f}" stroke="#cfd8dc"/>']
    for kind, value, text in (("upper", limits.upper, f"h1 unacceptable ({unacceptable:.0%})"),
                              ("lower", limits.lower, f"h0 competent ({acceptable:.0%})")):
        y = y_of(value)
        parts.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" y2="{y:.1f}" '
                     f'stroke="{_LIMIT_COLOURS[kind]}" stroke-dasharray="5 4" class="cusum-{kind}"/>')
        parts.append(f'<text x="{_WIDTH - _RIGHT}" y="{y - 4:.1f}" text-anchor="end" fill="{_LIMIT_COLOURS[kind]}">'
                     f'{text}</text>')
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{_LIMIT_COLOURS[kind]}">'
                     f'{"h1" if kind == "upper" else "h0"}</text>')
    # One line per run of the test: a decision restarts the sum at 0.
    start = 0
    for end in [number for number in decided if number < count] + [count]:
        path = " ".join(f"{x_of(i):.1f},{y_of(values[i]):.1f}" for i in range(start, end))
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1565c0" stroke-width="2"/>')
        start = end
    for index, value in enumerate(values):
        number, outcome = index + 1, "pass" if passed[index] else "fail"
        style = f'r="3.5" fill="{"#2e7d32" if passed[index] else "#c62828"}"'
        note = ""
        if number in decided:
            limit = "lower" if decided[number] == "competent" else "upper"
            style = style.replace('r="3.5"', 'r="5"') + f' stroke="{_LIMIT_COLOURS[limit]}" stroke-width="3"'
            note = f"; {decided[number]}, the sum restarts at 0"
        parts.append(f'<circle cx="{x_of(index):.1f}" cy="{y_of(value):.1f}" {style}><title>attempt {number}: '
                     f'{outcome}, CUSUM {value:.2f}{note}</title></circle>')
    for index in _labelled(count):
        parts.append(f'<text x="{x_of(index):.1f}" y="{bottom + 16}" text-anchor="middle" fill="#78909c">'
                     f'{index + 1}</text>')
    parts.append(f'<text x="{_LEFT - 14}" y="{bottom + 16}" text-anchor="end" fill="#546e7a">attempt</text></svg>')
    return "".join(parts)
