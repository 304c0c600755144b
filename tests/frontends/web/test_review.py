"""The instructor's Review tab: each grade's percentile among the attempts at its case, a CUSUM learning
curve per procedure that follows the trainee and scenario chosen, and the chosen attempts as CSV."""

from __future__ import annotations

import base64

import pytest

from frontends.store import Store, records_csv
from frontends.web.attempt import LiveAttempt
from frontends.web.review import review_view
from frontends.web.views import peers_text
from scenarios.schema import library_scenarios


@pytest.fixture(scope="module")
def scenarios():
    return library_scenarios()


def _finished(store, user_id, scenario, anatomy) -> int:
    attempt = LiveAttempt.start(store, user_id, scenario, anatomy)
    attempt.act({"type": "fluoro_shot", "mode": "pulse"})
    attempt.act({"type": "finish"})
    return attempt.attempt_id


def _copy(store, user_id, attempt_id, **changes) -> int:
    """Another finished attempt with the report of ``attempt_id`` changed by ``changes`` (grade, passed)."""
    stored = store.attempt(attempt_id)
    copy = store.start_attempt(user_id, stored.scenario_id, stored.seed)
    store.finish_attempt(copy, stored.report | changes)
    return copy


def test_review_ranks_grades_among_peers_draws_a_cusum_per_procedure_and_exports_the_rows(tmp_path, scenarios,
                                                                                         small_spine):
    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    ada = store.add_user("ada", "instructor", "correct horse")
    ben, cy = store.add_user("ben", "trainee", "battery staple"), store.add_user("cy", "trainee", "battery staple")
    ilesi = _finished(store, ben.id, scenarios["ilesi-default"], small_spine)
    tfesi = _finished(store, ben.id, scenarios["tfesi-default"], small_spine)
    # The first ILESI attempt fails (+1 - s = 0.814); then passes: 0.814 - n s <= h0 = -1.628 from n = 14.
    for _ in range(14):
        _copy(store, ben.id, ilesi, passed=True, grade=90.0)
    _copy(store, cy.id, ilesi, passed=False, grade=30.0)

    view = review_view(store, scenarios, ada, ben.id, None)
    rows = {row["id"]: row for row in view["review_rows"]}
    assert len(rows) == 16 and rows[tfesi]["percentile"] == "50 of 1"
    # A needle never placed grades below every peer (30 and 90): (0 below + 1/2 itself) / 16 = 3.1% -> 3;
    # the 90s: (2 below + 14 equal / 2) / 16 = 56.25%.
    assert not store.attempt(ilesi).report["passed"] and store.attempt(ilesi).report["grade"] < 30
    assert rows[ilesi]["percentile"] == "3 of 16"
    assert {rows[i]["percentile"] for i in rows if i not in (ilesi, tfesi)} == {"56 of 16"}
    curves = view["curve_svg"]
    assert curves.count('class="procedure-curve"') == 2 and curves.count("<svg") == 4  # a CUSUM and measures each
    assert 'data-procedure="interlaminar_epidural"' in curves and 'data-procedure="transforaminal_epidural"' in curves
    assert "competent (lower limit reached at attempt 15)" in curves
    assert "h0 competent (10%)" in curves and "h1 unacceptable (30%)" in curves

    one_case = review_view(store, scenarios, ada, ben.id, "tfesi-default")
    assert [row["id"] for row in one_case["review_rows"]] == [tfesi]
    assert one_case["curve_svg"].count('class="procedure-curve"') == 1 and "at tfesi-default: 1 attempt" in \
        one_case["curve_svg"]
    csv_text = base64.b64decode(one_case["review_csv"].removeprefix("data:text/csv;base64,")).decode()
    assert csv_text == records_csv(store.attempts(user_id=ben.id, scenario_id="tfesi-default"))
    assert review_view(store, scenarios, ada, None, None)["curve_svg"] == ""  # no trainee picked: no curve
    assert review_view(store, scenarios, ada, cy.id, "tfesi-default")["curve_svg"] == ""

    assert peers_text(store, store.attempt(tfesi)) == "50th percentile of 1 attempt at this case"
    assert peers_text(store, store.attempt(store.start_attempt(cy.id, "tfesi-default", 1))) == ""
